"""Networks of MSA-Net: building blocks and the generator/critic pair."""

from .blocks import CDCBlock, CRACBlock, DoubleConvBlock, MSFEBlock, RFBBlock, RMSBlock
from .nets import MSANet, SegANCritic

__all__ = ["CDCBlock", "CRACBlock", "DoubleConvBlock", "MSFEBlock", "RFBBlock", "RMSBlock", "MSANet", "SegANCritic"]
