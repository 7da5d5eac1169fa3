from .msanet import MSANetTrain, labelled_datalist

__all__ = ["MSANetTrain", "labelled_datalist"]
