"""MSA-Net generator, SegAN critic, and the baselines' pieces (SegAN segmenter, MONAI-network adapter)."""

from .adapters import SigmoidOutput
from .msanet import MSANet
from .segan_critic import SegANCritic
from .segan_segmenter import SegANSegmenter

__all__ = ["MSANet", "SegANCritic", "SegANSegmenter", "SigmoidOutput"]
