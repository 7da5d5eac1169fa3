"""LabelMe annotation files: lesion polygons on one view, and the masks they stand for.

LabelMe (https://github.com/wkentaro/labelme) stores one JSON file per image with a list of labelled
shapes; points are ``[x, y]`` = ``[col, row]`` in pixel units of the image the file refers to. The
paper's annotators used LabelMe; so do the synthetic data here.

Writer and reader rasterize polygons with the same function (:func:`rasterize_polygons`, PIL's
``ImageDraw.polygon``), so that a mask written next to a LabelMe file equals the mask read back from it,
pixel for pixel. Shapes whose label is not in ``lesion_labels`` (e.g. ``"fracture"``,
``"degenerative"``, ``"injection site"``) are kept in the file but left out of the lesion mask.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw

from msanet_monai.errors import BoneScanError

__all__ = [
    "LABELME_VERSION",
    "DEFAULT_LESION_LABELS",
    "rasterize_polygons",
    "write_labelme",
    "read_labelme",
    "read_labelme_mask",
]

LABELME_VERSION = "5.4.1"
DEFAULT_LESION_LABELS = ("metastasis",)

Polygon = Sequence[Sequence[float]]  # [[x=col, y=row], ...]


def rasterize_polygons(polygons: Sequence[Polygon], shape: Sequence[int]) -> np.ndarray:
    """Fill polygons (outline included) into a ``(rows, cols)`` uint8 ``{0, 1}`` mask.

    Args:
        polygons: each a sequence of ``[x, y]`` = ``[col, row]`` vertices (at least one).
        shape: ``(rows, cols)`` of the mask.
    """
    rows, cols = int(shape[0]), int(shape[1])
    canvas = Image.new("L", (cols, rows), 0)
    draw = ImageDraw.Draw(canvas)
    for polygon in polygons:
        points = [(float(x), float(y)) for x, y in polygon]
        if len(points) == 1:
            draw.point(points, fill=1)
        elif len(points) == 2:
            draw.line(points, fill=1)
        else:
            draw.polygon(points, fill=1, outline=1)
    return np.asarray(canvas, dtype=np.uint8)


def write_labelme(
    path: str | os.PathLike,
    polygons: Sequence[Polygon],
    labels: Sequence[str],
    image_path: str,
    shape: Sequence[int],
    group_ids: Sequence[int | None] | None = None,
    flags: dict | None = None,
) -> None:
    """Write a LabelMe 5 JSON file of polygons (``imageData`` null: the image is a separate file).

    Args:
        path: output ``.json`` file.
        polygons: ``[[x=col, y=row], ...]`` per shape.
        labels: one label per polygon, e.g. ``"metastasis"`` or ``"fracture"``.
        image_path: the image the annotation belongs to, relative to the JSON file (LabelMe convention).
        shape: ``(rows, cols)`` of that image.
        group_ids: optional LabelMe group id per polygon (e.g. one id for the spots of a cluster).
        flags: image-level LabelMe flags.
    """
    if len(polygons) != len(labels):
        raise BoneScanError(path, f"{len(polygons)} polygons but {len(labels)} labels")
    group_ids = [None] * len(polygons) if group_ids is None else list(group_ids)
    shapes = [
        {
            "label": str(label),
            "points": [[float(x), float(y)] for x, y in polygon],
            "group_id": None if group_id is None else int(group_id),
            "description": "",
            "shape_type": "polygon",
            "flags": {},
            "mask": None,
        }
        for polygon, label, group_id in zip(polygons, labels, group_ids)
    ]
    document = {
        "version": LABELME_VERSION,
        "flags": dict(flags or {}),
        "shapes": shapes,
        "imagePath": image_path,
        "imageData": None,
        "imageHeight": int(shape[0]),
        "imageWidth": int(shape[1]),
    }
    with open(path, "w", encoding="utf-8") as f:
        json.dump(document, f, indent=1)


def read_labelme(path: str | os.PathLike) -> dict:
    """Read and check a LabelMe JSON file; returns the parsed document.

    Raises:
        BoneScanError: not JSON, or without ``shapes`` / ``imageHeight`` / ``imageWidth``.
    """
    try:
        with open(path, encoding="utf-8") as f:
            document = json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise BoneScanError(path, f"not a readable LabelMe JSON file ({e})") from e
    if not isinstance(document, dict):
        raise BoneScanError(path, "not a LabelMe file (top level is not a JSON object)")
    for key in ("shapes", "imageHeight", "imageWidth"):
        if key not in document:
            raise BoneScanError(path, f"not a LabelMe file (no '{key}' field)")
    if not isinstance(document["shapes"], list):
        raise BoneScanError(path, "LabelMe 'shapes' is not a list")
    return document


def _shape_polygon(path: str | os.PathLike, shape: dict) -> list[list[float]]:
    """The polygon of one LabelMe shape; rectangles become their four corners."""
    points = shape.get("points")
    kind = shape.get("shape_type") or "polygon"
    if not isinstance(points, list) or not points:
        raise BoneScanError(path, f"shape labelled {shape.get('label')!r} has no points")
    if kind == "polygon":
        return points
    if kind == "rectangle" and len(points) == 2:
        (x0, y0), (x1, y1) = points
        return [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]
    raise BoneScanError(path, f"shape type {kind!r} (label {shape.get('label')!r}) is not supported; use polygons")


def read_labelme_mask(
    path: str | os.PathLike,
    shape: Sequence[int] | None = None,
    lesion_labels: Sequence[str] = DEFAULT_LESION_LABELS,
) -> np.ndarray:
    """Rasterize the lesion shapes of a LabelMe file into a ``(rows, cols)`` uint8 ``{0, 1}`` mask.

    Args:
        path: LabelMe ``.json`` file.
        shape: expected ``(rows, cols)`` of the image; checked against ``imageHeight``/``imageWidth``.
            ``None`` takes the file's own size.
        lesion_labels: labels counted as lesion; other shapes (look-alikes) are ignored. Matching is
            case-insensitive.

    Raises:
        BoneScanError: unreadable file, size mismatch, or an unsupported shape type.
    """
    document = read_labelme(path)
    file_shape = (int(document["imageHeight"]), int(document["imageWidth"]))
    if shape is not None and tuple(int(s) for s in shape) != file_shape:
        raise BoneScanError(
            path, f"LabelMe image size (rows, cols) = {file_shape} does not match the image {tuple(shape)}"
        )
    wanted = {str(label).strip().lower() for label in lesion_labels}
    polygons = [
        _shape_polygon(path, s) for s in document["shapes"] if str(s.get("label", "")).strip().lower() in wanted
    ]
    return rasterize_polygons(polygons, file_shape)
