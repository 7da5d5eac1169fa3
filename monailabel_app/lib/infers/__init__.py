from .msanet import MSANetInfer

__all__ = ["MSANetInfer"]
