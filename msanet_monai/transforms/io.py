"""Loading transforms: whole-body views and their lesion masks, as MONAI MapTransforms for configs."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence

import torch
from monai.config import KeysCollection
from monai.transforms import MapTransform

from msanet_monai.errors import BoneScanError
from msanet_monai.io.bone_scan import DEFAULT_SPACING, check_whole_body_geometry, read_bone_scan
from msanet_monai.io.labelme import DEFAULT_LESION_LABELS
from msanet_monai.io.masks import empty_mask_like, read_lesion_mask

__all__ = ["LoadBoneScand", "LoadLesionMaskd"]


class LoadBoneScand(MapTransform):
    """Replace file paths by ``(1, rows, cols)`` float32 MetaTensors of raw counts (:func:`read_bone_scan`).

    The view is taken from ``data[view_key]`` when the item has one (e.g. ``"posterior"`` of a dual-head
    file), else the file's default (the anterior view of a two-frame file, else the only view).

    Args:
        keys: keys holding file paths, typically ``"image"``.
        view_key: item key naming the view to read.
        mirror_posterior: flip posterior views left-right (meta ``mirrored``).
        default_spacing: ``(row_mm, col_mm)`` when the file gives none.
        check_geometry: refuse a view that is not shaped like a whole body (transposed, implausible
            height/width: :func:`~msanet_monai.io.bone_scan.check_whole_body_geometry`).
        required_spacing: ``(row_mm, col_mm)`` a view must have (within 2 %), or ``None`` to accept any.
            The default, the model's 2.26 mm, guards a pipeline that does not resample (its thorax
            window is ``roi_size`` pixels); the bundle's configs set ``None`` and resample with
            ``Spacingd`` to ``model_pixel_spacing`` instead (image and mask in ``configs/train.json``).
        allow_missing_keys: don't raise on missing keys.

    Raises:
        BoneScanError: unreadable or invalid file (:func:`read_bone_scan`), geometry or spacing refused.
    """

    def __init__(
        self,
        keys: KeysCollection,
        view_key: str = "view",
        mirror_posterior: bool = True,
        default_spacing: Sequence[float] = DEFAULT_SPACING,
        check_geometry: bool = True,
        required_spacing: Sequence[float] | None = DEFAULT_SPACING,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.check_geometry = bool(check_geometry)
        self.required_spacing = None if required_spacing is None else tuple(float(s) for s in required_spacing)
        self.view_key = view_key
        self.mirror_posterior = mirror_posterior
        self.default_spacing = tuple(default_spacing)

    def __call__(self, data: Mapping[Hashable, object]) -> dict[Hashable, object]:
        d = dict(data)
        view = d.get(self.view_key) or None
        for key in self.key_iterator(d):
            image = read_bone_scan(d[key], view=view, mirror_posterior=self.mirror_posterior,
                                   default_spacing=self.default_spacing)
            path, spacing = image.meta["filename_or_obj"], image.meta["pixel_spacing"]
            if self.check_geometry:
                check_whole_body_geometry(path, image.shape, spacing)
            if self.required_spacing is not None and not all(
                abs(s - r) <= 0.02 * r for s, r in zip(spacing, self.required_spacing)
            ):
                raise BoneScanError(path, f"pixel spacing {spacing[0]:g} x {spacing[1]:g} mm differs from the model's "
                                    f"{self.required_spacing[0]:g} x {self.required_spacing[1]:g} mm and this pipeline does not "
                                    "resample: set required_spacing None and add Spacingd (as configs/train.json does)")
            d[key] = image
        return d


class LoadLesionMaskd(MapTransform):
    """Replace mask paths by ``(1, rows, cols)`` float32 ``{0, 1}`` MetaTensors (:func:`read_lesion_mask`).

    Run after :class:`LoadBoneScand`: the mask takes the image's shape check, mirroring, spacing and affine
    from ``data[image_key]``. An item without a mask (key absent or ``None``) gets an all-zero mask when
    ``allow_empty`` is True (a view without lesions), else a :class:`BoneScanError` naming the image.
    ``allow_empty`` also governs all-zero mask files.

    Args:
        keys: keys holding mask paths, typically ``"label"`` (NIfTI, PNG or LabelMe JSON).
        image_key: key of the loaded image the mask belongs to.
        allow_empty: accept views without lesions (absent or all-zero masks).
        lesion_labels: LabelMe labels counted as lesion.
    """

    def __init__(
        self,
        keys: KeysCollection,
        image_key: str = "image",
        allow_empty: bool = True,
        lesion_labels: Sequence[str] = DEFAULT_LESION_LABELS,
    ) -> None:
        # missing keys are handled here (empty mask or error), so MapTransform must not raise on them
        super().__init__(keys, allow_missing_keys=True)
        self.image_key = image_key
        self.allow_empty = allow_empty
        self.lesion_labels = tuple(lesion_labels)

    def __call__(self, data: Mapping[Hashable, object]) -> dict[Hashable, object]:
        d = dict(data)
        image = d[self.image_key]
        if not isinstance(image, torch.Tensor) or image.ndim != 3:
            problem = f"LoadLesionMaskd needs the loaded (1, rows, cols) image under {self.image_key!r}"
            raise BoneScanError(None, problem + "; run LoadBoneScand first")
        for key in self.keys:
            if d.get(key) is None:
                if not self.allow_empty:
                    raise BoneScanError(image.meta.get("filename_or_obj"), f"no {key!r} mask for this view")
                d[key] = empty_mask_like(image)
            else:
                d[key] = read_lesion_mask(d[key], like=image, allow_empty=self.allow_empty,
                                          lesion_labels=self.lesion_labels)
        return d
