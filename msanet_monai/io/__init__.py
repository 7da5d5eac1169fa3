"""Reading and writing bone-scan files: whole-body views, lesion masks, NM DICOM, LabelMe."""

from msanet_monai.io.bone_scan import DEFAULT_SPACING, VIEWS, list_views, read_bone_scan
from msanet_monai.io.labelme import read_labelme_mask, write_labelme
from msanet_monai.io.masks import empty_mask_like, read_lesion_mask
from msanet_monai.io.nm_dicom import write_whole_body_nm

__all__ = [
    "DEFAULT_SPACING",
    "VIEWS",
    "list_views",
    "read_bone_scan",
    "read_lesion_mask",
    "empty_mask_like",
    "read_labelme_mask",
    "write_labelme",
    "write_whole_body_nm",
]
