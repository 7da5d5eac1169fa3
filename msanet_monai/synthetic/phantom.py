"""Whole-body 99mTc-MDP anatomy of one synthetic patient, drawn as expected-count maps.

Everything is drawn in the anterior orientation (rows head to feet, columns patient right to patient
left as seen from the front) into two maps at once, one per view: each structure has an anterior and a
posterior weight, because the camera head nearer to a bone sees it brighter (spine, scapulae and
kidneys from behind; sternum, clavicles, pubis and bladder from the front). Landmarks are fractions of
the body height measured on the NEMA NM1 scan (head top near row 75, shoulders near 200, bladder near
415, soles near 860).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from msanet_monai.io.bone_scan import DEFAULT_SPACING

__all__ = ["Anatomy", "Canvas", "BoneSite", "sample_anatomy", "draw_anatomy", "WHOLE_BODY_SHAPE", "PIXEL_SPACING_MM"]

WHOLE_BODY_SHAPE = (1024, 256)
PIXEL_SPACING_MM = DEFAULT_SPACING  # NM1-like: 256 x 1024 over ~2.3 m

Point = tuple[float, float]  # (row, col)


@dataclass
class BoneSite:
    """A bone as a polyline, where lesions may be placed.

    Attributes:
        region: anatomical region ("spine", "ribs", "sternum", "scapula", "pelvis", "skull", "femur", ...).
        points: ``(n, 2)`` polyline vertices ``(row, col)``, anterior orientation.
        radius: half-width of the bone in pixels.
        weights: ``(anterior, posterior)`` visibility of the bone from each camera head.
    """

    region: str
    points: np.ndarray
    radius: float
    weights: tuple[float, float]


@dataclass
class Anatomy:
    """Size and position of one patient's body; all rows/cols in pixels, anterior orientation."""

    top: float  # row of the vertex of the skull
    height: float  # rows from the vertex to the soles
    midline: float  # column of the spine
    width: float  # lateral scale (1.0 = NM1-like build)
    soft_tissue: float  # soft-tissue uptake relative to the spine
    arm_spread: float  # extra lateral offset of elbows and hands, pixels
    bladder: float  # bladder uptake relative to the spine
    kidney: float  # kidney uptake relative to the spine
    scan_rows: tuple[int, int]  # first and last+1 row the whole-body scan covered
    jitter: dict = field(default_factory=dict)  # per-bone uptake factors

    def row(self, fraction: float) -> float:
        """Row at ``fraction`` of the body height below the vertex."""
        return self.top + fraction * self.height

    @property
    def shoulder_row(self) -> float:
        """Row of the top of the humeral heads (the shoulders)."""
        return self.row(0.160)


def sample_anatomy(rng: np.random.Generator, shape: tuple[int, int] = WHOLE_BODY_SHAPE) -> Anatomy:
    """Draw a body: height 1.55-1.85 m, vertical position, build, arm pose, organ uptake."""
    rows = shape[0]
    height = rng.uniform(690.0, 820.0)
    top = rng.uniform(12.0, max(13.0, rows - height - 40.0))
    scan_start = int(max(0.0, top - rng.uniform(8.0, 45.0)))
    scan_stop = int(min(rows, top + height + rng.uniform(5.0, 60.0)))
    bones = ("skull", "spine", "ribs", "sternum", "clavicle", "scapula", "pelvis", "limbs", "joints")
    return Anatomy(
        top=top,
        height=height,
        midline=shape[1] / 2.0 + rng.uniform(-6.0, 6.0),
        width=rng.uniform(0.85, 1.08),
        soft_tissue=rng.uniform(0.15, 0.35),
        arm_spread=rng.uniform(0.0, 14.0),
        bladder=rng.uniform(0.8, 3.0),
        kidney=rng.uniform(0.25, 0.7),
        scan_rows=(scan_start, scan_stop),
        jitter={name: float(rng.uniform(0.8, 1.2)) for name in bones},
    )


class Canvas:
    """Two float32 maps (anterior, posterior view, both in anterior orientation) drawn into together.

    Shapes are rendered only inside their bounding box; edges are soft (about one pixel) so that the
    later blur by the camera's point spread does not alias.
    """

    def __init__(self, shape: tuple[int, int] = WHOLE_BODY_SHAPE) -> None:
        self.shape = shape
        self.views = np.zeros((2, *shape), dtype=np.float32)

    def _window(self, r0: float, r1: float, c0: float, c1: float):
        rs, re_ = max(int(np.floor(r0)), 0), min(int(np.ceil(r1)) + 1, self.shape[0])
        cs, ce = max(int(np.floor(c0)), 0), min(int(np.ceil(c1)) + 1, self.shape[1])
        if rs >= re_ or cs >= ce:
            return None
        rr = np.arange(rs, re_, dtype=np.float32)[:, None]
        cc = np.arange(cs, ce, dtype=np.float32)[None, :]
        return (slice(rs, re_), slice(cs, ce)), rr, cc

    def add(self, where, profile: np.ndarray, weights: tuple[float, float], amplitude: float) -> None:
        self.views[0][where] += (amplitude * weights[0]) * profile
        self.views[1][where] += (amplitude * weights[1]) * profile

    def polyline(self, points, radius: float, weights, amplitude: float, soft: float = 0.8, taper=None) -> None:
        """A bone or limb: a thick polyline (capsules along ``points`` ``(n, 2)`` of ``(row, col)``)."""
        pts = np.asarray(points, dtype=np.float32)
        pad = radius + 2 * soft + 1
        window = self._window(pts[:, 0].min() - pad, pts[:, 0].max() + pad, pts[:, 1].min() - pad, pts[:, 1].max() + pad)
        if window is None:
            return
        where, rr, cc = window
        distance = np.full((rr.shape[0], cc.shape[1]), np.inf, dtype=np.float32)
        for (r0, c0), (r1, c1) in zip(pts[:-1], pts[1:]):
            dr, dc = r1 - r0, c1 - c0
            t = np.clip(((rr - r0) * dr + (cc - c0) * dc) / max(dr * dr + dc * dc, 1e-6), 0.0, 1.0)
            distance = np.minimum(distance, np.hypot(rr - (r0 + t * dr), cc - (c0 + t * dc)))
        self.add(where, np.clip((radius - distance) / soft + 0.5, 0.0, 1.0), weights, amplitude)

    def ellipse(self, center: Point, radii: tuple[float, float], weights, amplitude: float, angle: float = 0.0,
                ring: float | None = None, soft: float = 0.8) -> None:
        """A filled ellipse (or, with ``ring`` = rim width in pixels, its rim); ``angle`` in radians."""
        r, c = center
        extent = max(radii) + 2 * soft + 1
        window = self._window(r - extent, r + extent, c - extent, c + extent)
        if window is None:
            return
        where, rr, cc = window
        cos, sin = np.cos(angle), np.sin(angle)
        u = ((rr - r) * cos + (cc - c) * sin) / radii[0]
        v = (-(rr - r) * sin + (cc - c) * cos) / radii[1]
        # signed distance to the rim, approximately, in pixels
        inside = (1.0 - np.sqrt(u * u + v * v)) * min(radii)
        if ring is not None:
            inside = ring / 2.0 - np.abs(inside - ring / 2.0)
        self.add(where, np.clip(inside / soft + 0.5, 0.0, 1.0), weights, amplitude)

    def gaussian(self, center: Point, sigma: float, weights, amplitude: float) -> None:
        """A round hot spot (joint, injection site), peak value ``amplitude``."""
        r, c = center
        window = self._window(r - 4 * sigma, r + 4 * sigma, c - 4 * sigma, c + 4 * sigma)
        if window is None:
            return
        where, rr, cc = window
        self.add(where, np.exp(-((rr - r) ** 2 + (cc - c) ** 2) / (2 * sigma * sigma)), weights, amplitude)


# (anterior, posterior) weights of each structure
_BOTH = (1.0, 1.0)
_BACK = (0.55, 1.0)  # spine, posterior ribs, sacrum: nearer the posterior head
_FRONT = (1.0, 0.4)  # sternum, clavicles, pubis
_SCAPULA = (0.35, 1.0)
_KIDNEY = (0.25, 1.0)
_BLADDER = (1.0, 0.75)


def _arc(center: Point, radii: tuple[float, float], start: float, stop: float, n: int = 9) -> np.ndarray:
    t = np.linspace(start, stop, n)
    return np.stack([center[0] + radii[0] * np.sin(t), center[1] + radii[1] * np.cos(t)], axis=1)


def draw_anatomy(anatomy: Anatomy, rng: np.random.Generator, canvas: Canvas) -> list[BoneSite]:
    """Draw soft tissue, skeleton, kidneys and bladder of ``anatomy`` into ``canvas``.

    Amplitudes are relative to the spine (1.0); the generator scales the maps to the patient's count
    level afterwards. Returns the bones lesions can be placed on.
    """
    a, rw, mid = anatomy, anatomy.width, anatomy.midline
    j = a.jitter
    R = a.row
    H = a.height / 785.0  # rows per NM1-row of body length
    sites: list[BoneSite] = []

    def bone(region, points, radius, weights, amplitude, site=True):
        points = np.asarray(points, dtype=np.float32)
        canvas.polyline(points, radius, weights, amplitude)
        if site:
            sites.append(BoneSite(region, points, radius, weights))

    # soft tissue: head, neck, trunk, arms, legs
    st = a.soft_tissue
    canvas.ellipse((R(0.072), mid), (0.075 * a.height, 44 * rw), _BOTH, st, soft=3.0)
    canvas.polyline([(R(0.12), mid), (R(0.17), mid)], 22 * rw, _BOTH, st, soft=3.0)
    trunk = [(R(0.19), mid), (R(0.30), mid), (R(0.42), mid), (R(0.50), mid)]
    canvas.polyline(trunk, 66 * rw, _BOTH, st, soft=6.0)
    shoulder_c = 78 * rw
    elbow_c = 88 * rw + a.arm_spread
    hand_c = 92 * rw + 1.5 * a.arm_spread
    for side in (-1, 1):
        arm = [(R(0.175), mid + side * shoulder_c), (R(0.34), mid + side * elbow_c), (R(0.50), mid + side * hand_c)]
        canvas.polyline(arm, 16 * rw, _BOTH, st, soft=4.0)
        leg = [(R(0.48), mid + side * 34 * rw), (R(0.72), mid + side * 26 * rw), (R(0.97), mid + side * 22 * rw)]
        canvas.polyline(leg, 25 * rw, _BOTH, st, soft=5.0)

    # skull: calvarium rim, face, mandible
    skull = (R(0.070), mid)
    canvas.ellipse(skull, (0.068 * a.height, 38 * rw), _BOTH, 0.9 * j["skull"], ring=5.0)
    canvas.ellipse(skull, (0.060 * a.height, 32 * rw), _BOTH, 0.35 * j["skull"])
    canvas.ellipse((R(0.115), mid), (10 * H, 22 * rw), (1.0, 0.5), 0.5 * j["skull"])
    sites.append(BoneSite("skull", np.asarray(_arc(skull, (0.066 * a.height, 37 * rw), -np.pi, 0.0), np.float32),
                          3.0, _BOTH))

    # spine: cervical, thoracic, lumbar, sacrum; vertebral bodies every ~2 % of the height
    spine_rows = np.arange(R(0.125), R(0.43), 0.021 * a.height)
    sway = rng.uniform(-3.0, 3.0)
    for k, r in enumerate(spine_rows):
        f = (r - a.top) / a.height
        radius = (4.0 if f < 0.17 else 5.5 if f < 0.345 else 7.0) * rw
        col = mid + sway * np.sin(np.pi * (f - 0.12) / 0.31)
        region = "spine" if f < 0.345 else "lumbar spine"
        bone(region, [(r, col), (r + 0.017 * a.height, col)], radius, _BACK, 1.0 * j["spine"] * rng.uniform(0.9, 1.1))
    sacrum = [(R(0.43), mid), (R(0.49), mid)]
    bone("pelvis", sacrum, 9 * rw, _BACK, 0.9 * j["pelvis"])

    # ribs: 12 pairs, posterior arcs from the spine out and down, seen through the chest
    rib_top, rib_bottom = R(0.175), R(0.335)
    cage = 66 * rw
    for k in range(12):
        r = rib_top + k * (rib_bottom - rib_top) / 11.0
        reach = cage * (0.55 + 0.45 * np.sin(np.pi * (k + 2) / 15.0))
        for side in (-1, 1):
            t = np.linspace(0.0, 1.0, 7)
            pts = np.stack([r + (0.035 * a.height) * t ** 1.6, mid + side * (5 + reach * np.sin(0.5 * np.pi * t))], 1)
            bone("ribs", pts, 2.0, (0.6, 0.9), 0.55 * j["ribs"] * rng.uniform(0.85, 1.15))

    # sternum, clavicles, scapulae
    notch = R(0.172)
    bone("sternum", [(notch, mid), (R(0.285), mid)], 4.0 * rw, _FRONT, 0.75 * j["sternum"])
    for side in (-1, 1):
        bone("clavicle", [(notch, mid + side * 6), (R(0.163), mid + side * 45 * rw), (R(0.158), mid + side * 70 * rw)],
             2.5, _FRONT, 0.7 * j["clavicle"])
        blade = [(R(0.170), mid + side * 66 * rw), (R(0.195), mid + side * 52 * rw), (R(0.255), mid + side * 42 * rw)]
        bone("scapula", blade, 6.0 * rw, _SCAPULA, 0.45 * j["scapula"])
        canvas.polyline([(R(0.168), mid + side * 36 * rw), (R(0.168), mid + side * 68 * rw)], 2.5, _SCAPULA,
                        0.5 * j["scapula"])  # spine of the scapula

    # shoulders and arms: humeral heads, humeri, forearms, hands
    for side in (-1, 1):
        head = (R(0.166), mid + side * 74 * rw)
        canvas.gaussian(head, 5.0, _BOTH, 1.2 * j["joints"])
        bone("humerus", [head, (R(0.34), mid + side * (elbow_c - 2))], 4.0, _BOTH, 0.5 * j["limbs"])
        bone("forearm", [(R(0.34), mid + side * (elbow_c - 2)), (R(0.49), mid + side * (hand_c - 3))], 3.0, _BOTH,
             0.4 * j["limbs"], site=False)
        canvas.ellipse((R(0.515), mid + side * (hand_c - 3)), (14 * H, 7.0), _BOTH, 0.45 * j["limbs"])

    # pelvis: iliac wings, hips, pubis
    for side in (-1, 1):
        wing = (R(0.425), mid + side * 40 * rw)
        canvas.ellipse(wing, (27 * H, 24 * rw), _BACK, 0.35 * j["pelvis"], angle=side * 0.35, ring=5.0)
        canvas.ellipse(wing, (25 * H, 22 * rw), _BACK, 0.4 * j["pelvis"], angle=side * 0.35, soft=3.0)
        sites.append(BoneSite("pelvis", np.asarray(_arc(wing, (25 * H, 22 * rw), -np.pi, 0.0), np.float32), 3.0,
                              _BACK))
        hip = (R(0.478), mid + side * 40 * rw)
        canvas.gaussian(hip, 5.0, _BOTH, 1.1 * j["joints"])
        canvas.polyline([hip, (R(0.495), mid + side * 6)], 3.5, _FRONT, 0.6 * j["pelvis"])  # pubic ramus
    # legs: femurs, knees, tibiae, feet
    for side in (-1, 1):
        hip = (R(0.478), mid + side * 42 * rw)
        knee = (R(0.715), mid + side * 27 * rw)
        ankle = (R(0.955), mid + side * 22 * rw)
        bone("femur", [hip, knee], 6.5, _BOTH, 0.6 * j["limbs"])
        canvas.gaussian(knee, 6.0, _BOTH, 0.9 * j["joints"])
        canvas.polyline([knee, ankle], 5.0, _BOTH, 0.5 * j["limbs"])
        canvas.ellipse((R(0.985), ankle[1]), (12 * H, 8.0), (0.8, 0.8), 0.7 * j["joints"])

    # kidneys and bladder
    for side in (-1, 1):
        canvas.ellipse((R(0.33), mid + side * 28 * rw), (22 * H, 12 * rw), _KIDNEY, a.kidney, angle=-side * 0.2,
                       soft=2.0)
    canvas.ellipse((R(0.455), mid + rng.uniform(-4, 4)), (rng.uniform(10, 17) * H, rng.uniform(15, 22) * rw),
                   _BLADDER, a.bladder, soft=2.0)
    return sites
