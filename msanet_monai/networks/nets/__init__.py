"""MSA-Net generator and SegAN critic."""

from .msanet import MSANet
from .segan_critic import SegANCritic

__all__ = ["MSANet", "SegANCritic"]
