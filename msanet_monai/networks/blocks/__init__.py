"""Building blocks of the MSA-Net generator, one paper concept per module."""

from .cdc import CDCBlock, conv_bn_relu
from .crac import CRACBlock
from .double_conv import DoubleConvBlock
from .msfe import MSFEBlock
from .rfb import RFBBlock
from .rms import RMSBlock

__all__ = ["CDCBlock", "CRACBlock", "DoubleConvBlock", "MSFEBlock", "RFBBlock", "RMSBlock", "conv_bn_relu"]
