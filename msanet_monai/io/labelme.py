"""LabelMe annotation files: lesion polygons on one view, and the masks they stand for.

LabelMe (https://github.com/wkentaro/labelme) stores one JSON file per image with a list of labelled
shapes; points are ``[x, y]`` = ``[col, row]`` in pixel units of the image the file refers to. The
paper's annotators used LabelMe; so do the synthetic data here.

The writer traces each connected region of a mask into a polygon through its boundary pixel centres;
the reader fills polygons with their outline (:func:`rasterize_polygons`, PIL's ``ImageDraw.polygon``),
so a mask written as LabelMe equals the mask read back from it, pixel for pixel (holes filled). Shapes whose label is not in ``lesion_labels`` (e.g. ``"fracture"``,
``"degenerative"``, ``"injection site"``) are kept in the file but left out of the lesion mask.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage

from msanet_monai.errors import BoneScanError

__all__ = [
    "LABELME_VERSION",
    "DEFAULT_LESION_LABELS",
    "rasterize_polygons",
    "mask_to_polygons",
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


# Moore-neighbourhood directions, clockwise on screen (rows grow downwards), starting west.
_NEIGHBOURS = ((0, -1), (-1, -1), (-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1))


def _trace_outline(component: np.ndarray) -> list[list[float]]:
    """Outer boundary of one 8-connected component as pixel centres ``[[x=col, y=row], ...]``.

    Moore-neighbour tracing (written here because neither scipy nor PIL traces pixel outlines); with
    ``rasterize_polygons`` (fill plus outline) the polygon gives back the component with its holes filled.
    """
    padded = np.pad(component.astype(bool), 1)
    rows, cols = np.nonzero(padded)
    start = (int(rows[0]), int(cols[0]))  # top-most, then left-most pixel: its west neighbour is background
    outline = [start]
    current, backtrack = start, 0  # came in from the west
    first_step = None
    while True:
        for k in range(1, 9):
            d = (backtrack + k) % 8
            candidate = (current[0] + _NEIGHBOURS[d][0], current[1] + _NEIGHBOURS[d][1])
            if padded[candidate]:
                break
        else:
            break  # isolated pixel
        previous = (d + 7) % 8  # the background neighbour examined just before the hit
        prev_pixel = (current[0] + _NEIGHBOURS[previous][0], current[1] + _NEIGHBOURS[previous][1])
        # direction from the new pixel to that background neighbour
        backtrack = _NEIGHBOURS.index((prev_pixel[0] - candidate[0], prev_pixel[1] - candidate[1]))
        step = (current, candidate)
        if first_step is None:
            first_step = step
        elif step == first_step:  # Jacob's criterion: the first move repeats
            break
        current = candidate
        outline.append(current)
    if len(outline) > 1 and outline[-1] == outline[0]:
        outline.pop()
    return [[float(c - 1), float(r - 1)] for r, c in outline]


def mask_to_polygons(mask: np.ndarray) -> list[list[list[float]]]:
    """One polygon (pixel centres, ``[[x=col, y=row], ...]``) per 8-connected component of a 2-D mask.

    ``rasterize_polygons(mask_to_polygons(m), m.shape)`` equals ``m`` with holes filled (LabelMe polygons
    have no holes).
    """
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D (rows, cols), got shape {mask.shape}")
    labels, count = ndimage.label(mask > 0, structure=np.ones((3, 3), dtype=bool))
    polygons = []
    for index, box in enumerate(ndimage.find_objects(labels), start=1):
        outline = _trace_outline(labels[box] == index)
        polygons.append([[x + box[1].start, y + box[0].start] for x, y in outline])
    return polygons


def write_labelme(
    path: str | os.PathLike,
    mask: np.ndarray,
    image_path: str,
    label: str = DEFAULT_LESION_LABELS[0],
    other_shapes: Sequence[tuple[str, Polygon]] = (),
    flags: dict | None = None,
) -> None:
    """Write a LabelMe 5 JSON file: one ``label`` polygon per connected region of ``mask``.

    ``imageData`` is null (the image is a separate file). Reading the file back with
    :func:`read_labelme_mask` returns ``mask`` (holes filled).

    Args:
        path: output ``.json`` file.
        mask: ``(rows, cols)`` lesion mask, nonzero = lesion, in the orientation of the image file.
        image_path: the image the annotation belongs to, relative to the JSON file (LabelMe convention).
        label: label of the mask's polygons.
        other_shapes: extra ``(label, [[x=col, y=row], ...])`` polygons, e.g. unlabelled look-alikes
            (``"fracture"``, ``"degenerative"``, ``"injection site"``) that are not lesion.
        flags: image-level LabelMe flags.
    """
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise BoneScanError(path, f"mask must be 2-D (rows, cols), got shape {mask.shape}")
    pairs = [(label, polygon) for polygon in mask_to_polygons(mask)] + [(str(n), p) for n, p in other_shapes]
    shapes = [
        {
            "label": str(name),
            "points": [[float(x), float(y)] for x, y in polygon],
            "group_id": None,
            "description": "",
            "shape_type": "polygon",
            "flags": {},
            "mask": None,
        }
        for name, polygon in pairs
    ]
    document = {
        "version": LABELME_VERSION,
        "flags": dict(flags or {}),
        "shapes": shapes,
        "imagePath": image_path,
        "imageData": None,
        "imageHeight": int(mask.shape[0]),
        "imageWidth": int(mask.shape[1]),
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
