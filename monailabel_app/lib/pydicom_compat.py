"""Make MONAI Label 0.8.5 importable beside pydicom 3.

``monailabel.endpoints.infer`` imports ``pydicom_seg`` at module level, and pydicom-seg 0.4.1 imports
``pydicom._storage_sopclass_uids``, a module pydicom 3 removed (its UIDs live in ``pydicom.uid``). The
project needs pydicom 3 (``pydicom.pixels``, highdicom), so instead of downgrading it the module name is
pointed at ``pydicom.uid``. This app never writes DICOM SEG through pydicom-seg; the alias only lets the
server import. Loaded at interpreter start by the ``.pth`` file that ``setup_and_test.sh`` installs.
"""

import importlib
import sys

__all__ = ["install"]


def install() -> None:
    """Register ``pydicom._storage_sopclass_uids`` as an alias of ``pydicom.uid`` if it is missing."""
    if "pydicom._storage_sopclass_uids" in sys.modules:
        return
    try:
        importlib.import_module("pydicom._storage_sopclass_uids")
    except ImportError:
        sys.modules["pydicom._storage_sopclass_uids"] = importlib.import_module("pydicom.uid")
