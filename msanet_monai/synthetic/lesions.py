"""Bone metastases (labelled) and benign look-alikes (unlabelled) on a synthetic skeleton.

Metastases of lung cancer sit mostly in the axial skeleton of the thorax: thoracic spine, ribs,
sternum, scapulae, then pelvis; a few in lumbar spine, skull and femurs. Each lesion is an irregular
star-shaped polygon (from 1-2 px to about 30 px across), sometimes with satellites (a cluster), with
its own contrast to the bone. Its polygon filled is its label; its uptake is the same polygon filled,
added to the bone before the camera blur. Look-alikes are hot too but are not lesions: rows of rib
fracture spots, degenerative joint uptake and the injection site.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from msanet_monai.io.labelme import rasterize_polygons
from msanet_monai.synthetic.phantom import Anatomy, BoneSite, Canvas

__all__ = ["Lesion", "LookAlike", "LESION_REGIONS", "sample_lesions", "draw_lesions", "add_look_alikes"]

# relative frequency of lesion sites (lung cancer, whole-body bone scan)
LESION_REGIONS = {
    "spine": 0.32,
    "ribs": 0.30,
    "pelvis": 0.12,
    "sternum": 0.07,
    "scapula": 0.08,
    "lumbar spine": 0.05,
    "humerus": 0.02,
    "femur": 0.02,
    "skull": 0.02,
}


@dataclass
class Lesion:
    """One metastasis: polygon ``(n, 2)`` of ``(row, col)`` (anterior orientation), uptake per view."""

    region: str
    polygon: np.ndarray
    uptake: tuple[float, float]  # extra uptake relative to the spine, (anterior, posterior)


@dataclass
class LookAlike:
    """A hot spot that is not a metastasis (kept as a non-lesion LabelMe shape)."""

    label: str  # "fracture", "degenerative" or "injection site"
    center: tuple[float, float]
    radius: float


def _star_polygon(rng: np.random.Generator, center, radius: float) -> np.ndarray:
    """Irregular blob outline: a circle with smooth random radial bumps."""
    n = 16
    angles = np.linspace(0.0, 2 * np.pi, n, endpoint=False) + rng.uniform(0, 2 * np.pi)
    bumps = sum(rng.normal(0, 0.18) * np.cos(k * angles + rng.uniform(0, 2 * np.pi)) for k in (2, 3, 5))
    elongation = rng.uniform(1.0, 1.6)  # along-bone stretch
    tilt = rng.uniform(0, np.pi)
    r = radius * np.clip(1.0 + bumps, 0.5, 1.6)
    dr, dc = r * np.sin(angles) * elongation, r * np.cos(angles)
    rows = center[0] + dr * np.cos(tilt) - dc * np.sin(tilt)
    cols = center[1] + dr * np.sin(tilt) + dc * np.cos(tilt)
    return np.stack([rows, cols], axis=1)


def _point_on(rng: np.random.Generator, site: BoneSite) -> tuple[float, float]:
    pts = site.points
    k = int(rng.integers(0, len(pts) - 1)) if len(pts) > 1 else 0
    p, q = pts[k], pts[min(k + 1, len(pts) - 1)]
    t = rng.uniform()
    jitter = rng.normal(0, 0.3 * site.radius, size=2)
    return float(p[0] + t * (q[0] - p[0]) + jitter[0]), float(p[1] + t * (q[1] - p[1]) + jitter[1])


def sample_lesions(rng: np.random.Generator, sites: list[BoneSite], lesion_free: float = 0.15,
                   mean_lesions: float = 4.0) -> list[Lesion]:
    """Metastases of one patient: none with probability ``lesion_free``, else 1 + Poisson(``mean_lesions`` - 1)."""
    if rng.uniform() < lesion_free:
        return []
    by_region: dict[str, list[BoneSite]] = {}
    for site in sites:
        by_region.setdefault(site.region, []).append(site)
    regions = [r for r in LESION_REGIONS if r in by_region]
    p = np.array([LESION_REGIONS[r] for r in regions])
    lesions = []
    for _ in range(1 + rng.poisson(mean_lesions - 1.0)):
        region = regions[rng.choice(len(regions), p=p / p.sum())]
        site = by_region[region][rng.integers(len(by_region[region]))]
        # sizes: many small, few large (log-uniform radius 0.7..15 px = 1.5..30 px across)
        radius = float(np.exp(rng.uniform(np.log(0.7), np.log(15.0))))
        radius = min(radius, 3.5 * site.radius + 2.0)
        contrast = rng.uniform(0.6, 4.0)  # extra uptake, in units of spine uptake
        center = _point_on(rng, site)
        members = [(center, radius)]
        if rng.uniform() < 0.25:  # a cluster: satellites along the same bone
            for _ in range(rng.integers(1, 4)):
                offset = rng.normal(0, 2.5 * radius + 2, size=2)
                members.append(((center[0] + offset[0], center[1] + offset[1]), max(0.7, radius * rng.uniform(0.3, 0.8))))
        for c, r in members:
            uptake = contrast * rng.uniform(0.8, 1.2)
            lesions.append(Lesion(region, _star_polygon(rng, c, r), (uptake * site.weights[0], uptake * site.weights[1])))
    return lesions


def draw_lesions(lesions: list[Lesion], canvas: Canvas, visible: float = 0.35) -> np.ndarray:
    """Add lesion uptake to ``canvas``; returns the ``(2, rows, cols)`` uint8 label masks (anterior, posterior).

    A lesion is labelled in a view when its extra uptake there is at least ``visible`` (a sternal lesion
    that the posterior head barely sees is not drawn by the annotators on the posterior view). Holes
    enclosed by a cluster are filled, as an annotator's outline (and LabelMe's polygons) would.
    """
    masks = np.zeros(canvas.views.shape, dtype=np.uint8)
    for lesion in lesions:
        polygon_xy = lesion.polygon[:, ::-1]  # LabelMe/PIL order: (x=col, y=row)
        mask = rasterize_polygons([polygon_xy], canvas.shape)
        for view in (0, 1):
            canvas.views[view] += lesion.uptake[view] * mask
            if lesion.uptake[view] >= visible:
                masks[view] |= mask
    for view in (0, 1):  # annotators outline a cluster as a region: gaps enclosed by its spots are lesion too
        masks[view] = ndimage.binary_fill_holes(masks[view])
    return masks


def add_look_alikes(rng: np.random.Generator, anatomy: Anatomy, canvas: Canvas) -> list[LookAlike]:
    """Benign hot spots: rib fracture rows, degenerative joints, the injection site (not labelled)."""
    a, mid, rw = anatomy, anatomy.midline, anatomy.width
    spots: list[LookAlike] = []
    if rng.uniform() < 0.15:  # consecutive rib fractures in a vertical row, lateral chest wall
        side = rng.choice([-1, 1])
        first = rng.integers(3, 8)
        for k in range(first, first + rng.integers(2, 5)):
            r = a.row(0.175) + k * (a.row(0.335) - a.row(0.175)) / 11.0 + 0.03 * a.height
            spots.append(LookAlike("fracture", (r, mid + side * 58 * rw), 1.8))
    if rng.uniform() < 0.4:  # degenerative uptake: knees, shoulders, lower lumbar facets
        for _ in range(rng.integers(1, 3)):
            kind = rng.integers(3)
            side = rng.choice([-1, 1])
            if kind == 0:
                center = (a.row(0.715), mid + side * 27 * rw)
            elif kind == 1:
                center = (a.row(0.166), mid + side * 74 * rw)
            else:
                center = (a.row(0.40), mid + side * 7)
            spots.append(LookAlike("degenerative", center, 3.5))
    if rng.uniform() < 0.3:  # tracer left at the injection site: elbow or back of the hand
        side = rng.choice([-1, 1])
        f = rng.choice([0.34, 0.50])
        col = mid + side * (88 * rw + a.arm_spread + (0 if f < 0.4 else 2.0))
        spots.append(LookAlike("injection site", (a.row(f), col), rng.uniform(1.5, 3.0)))
    for spot in spots:
        peak = {"fracture": 1.6, "degenerative": 1.3, "injection site": rng.uniform(3.0, 8.0)}[spot.label]
        canvas.gaussian(spot.center, spot.radius, (1.0, 1.0), peak * rng.uniform(0.7, 1.3))
    return spots
