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
import logging
import os
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage

from msanet_monai.errors import BoneScanError
from msanet_monai.io.atomic import atomic_output

__all__ = [
    "LABELME_VERSION",
    "DEFAULT_LESION_LABELS",
    "rasterize_polygons",
    "mask_to_polygons",
    "write_labelme",
    "read_labelme",
    "read_labelme_mask",
]

logger = logging.getLogger(__name__)

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
            # LabelMe's own types for regions of 1 or 2 pixels: a polygon needs 3 points
            "shape_type": {1: "point", 2: "line"}.get(len(polygon), "polygon"),
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
    with atomic_output(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        json.dump(document, f, indent=1)


def read_labelme(path: str | os.PathLike) -> dict:
    """Read and check a LabelMe JSON file; returns the parsed document.

    Raises:
        BoneScanError: not JSON, without ``shapes`` / ``imageHeight`` / ``imageWidth``, or a size
            that is not a positive whole number.
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
    for key in ("imageHeight", "imageWidth"):
        value = document[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value) or value < 1:
            raise BoneScanError(path, f"LabelMe '{key}' is {value!r}, not a positive whole number of pixels")
        document[key] = int(value)
    return document


def _shape_name(index: int, shape: dict) -> str:
    return f"shape {index} (label {shape.get('label')!r})"


def _check_points(path: str | os.PathLike, index: int, shape: dict, points: list) -> list[list[float]]:
    """Every point an ``[x, y]`` pair of finite numbers; returns them as floats."""
    checked = []
    for point in points:
        ok = isinstance(point, (list, tuple)) and len(point) == 2 and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v) for v in point
        )
        if not ok:
            raise BoneScanError(path, f"{_shape_name(index, shape)} has a point {point!r} that is not [x, y] numbers")
        checked.append([float(point[0]), float(point[1])])
    return checked


def _shape_polygon(path: str | os.PathLike, shape: dict, index: int = 0,
                   image_shape: Sequence[int] | None = None) -> list[list[float]]:
    """The polygon of one LabelMe shape; rectangles become their four corners.

    Raises:
        BoneScanError: no points, a point that is not two finite numbers, a polygon of fewer than 3
            points, an unsupported shape type, or (with ``image_shape``) a shape entirely outside the image.
    """
    points = shape.get("points")
    kind = shape.get("shape_type") or "polygon"
    if not isinstance(points, list) or not points:
        raise BoneScanError(path, f"{_shape_name(index, shape)} has no points")
    points = _check_points(path, index, shape, points)
    if kind == "polygon":
        if len(points) < 3:
            raise BoneScanError(path, f"{_shape_name(index, shape)} is a polygon of {len(points)} point(s); "
                                "a polygon needs at least 3")
        polygon = points
    elif (kind, len(points)) in (("point", 1), ("line", 2)):
        polygon = points  # a one- or two-pixel region, as write_labelme stores it
    elif kind == "rectangle" and len(points) == 2:
        (x0, y0), (x1, y1) = points
        polygon = [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]
    else:
        raise BoneScanError(path, f"shape type {kind!r} ({_shape_name(index, shape)}) is not supported; use polygons")
    if image_shape is not None:
        rows, cols = int(image_shape[0]), int(image_shape[1])
        xs, ys = [p[0] for p in polygon], [p[1] for p in polygon]
        if max(xs) < -0.5 or min(xs) > cols - 0.5 or max(ys) < -0.5 or min(ys) > rows - 0.5:
            raise BoneScanError(path, f"{_shape_name(index, shape)} lies entirely outside the "
                                f"{rows} x {cols} image (x {min(xs):g}..{max(xs):g}, y {min(ys):g}..{max(ys):g})")
    return polygon


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
        BoneScanError: unreadable file, size mismatch, an unsupported shape type, a point that is not a
            number, a polygon of fewer than 3 points or one entirely outside the image (each naming the
            shape). A file with shapes none of which is a lesion label is logged as a warning naming
            the file and its labels (a view with look-alikes only is legitimate).
    """
    document = read_labelme(path)
    file_shape = (int(document["imageHeight"]), int(document["imageWidth"]))
    if shape is not None and tuple(int(s) for s in shape) != file_shape:
        raise BoneScanError(
            path, f"LabelMe image size (rows, cols) = {file_shape} does not match the image {tuple(shape)}"
        )
    wanted = {str(label).strip().lower() for label in lesion_labels}
    shapes = [(i, s) for i, s in enumerate(document["shapes"]) if isinstance(s, dict)]
    if len(shapes) != len(document["shapes"]):
        raise BoneScanError(path, "LabelMe 'shapes' holds an entry that is not a JSON object")
    polygons = [
        _shape_polygon(path, s, i, file_shape) for i, s in shapes if str(s.get("label", "")).strip().lower() in wanted
    ]
    if shapes and not polygons:
        # may be right (a view with look-alikes only), may be a typo in every label: say so, by name
        labels = sorted({str(s.get("label", "")) for _, s in shapes})
        logger.warning("%s: none of its %d shape label(s) %s is a lesion label %s; its lesion mask is empty",
                       path, len(shapes), labels, sorted(wanted))
    return rasterize_polygons(polygons, file_shape)
