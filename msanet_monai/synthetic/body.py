"""A 3-D whole-body 99mTc-MDP phantom: skeleton, soft tissue, lungs, kidneys and bladder as voxels.

The body lies supine on the table, its back on the table plane. Coordinates are millimetres in the
anterior orientation of the planar views: ``x`` across (image columns, patient right on the left),
``y`` down the body (image rows, head to feet), ``z`` in depth from the anterior camera side to the
table (``z`` grows towards the posterior camera). Every structure is an analytic solid (tubes along 3-D
paths, ellipsoids, ellipsoidal shells and plates) rasterised with soft edges into three voxel maps:
tracer concentration, linear attenuation at 140 keV and a bone label. Voxels are twice the camera pixel
in-plane and :data:`DEPTH_VOXEL_MM` deep: the camera blur (~8 mm FWHM and more) is wider than that, and
small findings, which need the full pixel, are drawn analytically in the camera module instead.

Uptake values are concentrations in one arbitrary unit (soft tissue ~0.19 of it): MDP binds to bone mineral where bone is
being formed, so trabecular bone of the axial skeleton, the joints and (in young patients) the growth
plates are bright, long-bone shafts are faint, kidneys show through and the bladder holds urine.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
__all__ = ["BONE_LABELS", "BodyShape", "BodyVolume", "BoneSites", "sample_body", "draw_body", "DEPTH_VOXEL_MM",
           "MU_WATER_PER_MM", "MU_BONE_PER_MM"]

DEPTH_VOXEL_MM = 8.0
# linear attenuation at 140 keV: water 0.154 /cm, cortical bone ~0.28 /cm, lung ~0.05 /cm (narrow beam);
# scatter accepted by the energy window is added back by the camera model, so these stay narrow-beam
MU_WATER_PER_MM = 0.0154
MU_BONE_PER_MM = 0.028
LUNG_DENSITY = 0.3

# per-view skeleton label map values (0 = no bone): the regions a bone scan index is reported over
BONE_LABELS = {
    "skull": 1, "cervical spine": 2, "thoracic spine": 3, "lumbar spine": 4, "ribs": 5, "sternum": 6,
    "clavicles": 7, "scapulae": 8, "humeri": 9, "forearms": 10, "hands": 11, "pelvis": 12, "sacrum": 13,
    "femora": 14, "lower legs": 15, "feet": 16,
}

Vec = tuple[float, float, float]

# Landmarks are placed at textbook fractions of the standing height below the vertex (chin 0.13,
# acromion 0.18, L5 0.445, hip joint 0.49, crotch 0.525, knee 0.715, ankle 0.955). A supine patient on
# the table, shoulders relaxed up and legs straight, shows them higher: on the NEMA NM1 scan the
# shoulders rise at 0.145, the bladder lies at 0.43 and the knees at 0.68 of the body length. Fractions are
# warped through these knots so that the textbook proportions land where a real supine scan has them.
_TEXTBOOK = (0.0, 0.13, 0.18, 0.29, 0.445, 0.49, 0.525, 0.715, 0.955, 1.0)
_SUPINE = (0.0, 0.10, 0.135, 0.25, 0.39, 0.425, 0.465, 0.675, 0.93, 1.0)


@dataclass
class BodyShape:
    """One patient's build and biology, sampled by :func:`sample_body`. Lengths in mm.

    Attributes:
        height: vertex to sole.
        top: ``y`` of the vertex.
        midline: ``x`` of the spine.
        girth: lateral scale of the trunk (1 = slim adult male); weight shows here first.
        depth: antero-posterior scale of the trunk.
        female: breasts, narrower shoulders, wider pelvis.
        age: years; growth plates under 20, degenerative change above 55.
        arm_abduction: angle of the arms from the body, radians (0 = along the sides).
        elbow_flexion: angle of the forearms above the table, radians: supine patients rest their
            hands on the thighs or the table with the elbows a little bent, which brings the hands up
            to the hips in the views (NM1's hands lie at 0.47-0.51 of the body length).
        soft_tissue: soft-tissue concentration (bone tracer that is not in bone, 3 h after injection;
            hydration and renal function change it).
        bone_uptake: overall skeletal uptake factor.
        kidney: kidney concentration (same unit as ``soft_tissue``).
        bladder: bladder (urine) concentration, same unit; ``bladder_volume`` in ml.
        jitter: per-bone uptake factors (asymmetry between patients).
        paget: ``(bone, index)`` with Paget-like uptake (a whole bone hot and widened), or ``None``:
            ``("vertebra", 0..23)``, ``("hemipelvis", -1 | 1)``, ``("femur", -1 | 1)``, ``("tibia", -1 | 1)``.
    """

    height: float
    top: float
    midline: float
    girth: float
    depth: float
    female: bool
    age: float
    arm_abduction: float
    soft_tissue: float
    bone_uptake: float
    kidney: float
    bladder: float
    bladder_volume: float
    jitter: dict = field(default_factory=dict)
    paget: tuple | None = None
    elbow_flexion: float = 0.0

    def y(self, fraction: float) -> float:
        """``y`` of the landmark at textbook ``fraction`` of the height below the vertex (supine-warped)."""
        return self.top + float(np.interp(fraction, _TEXTBOOK, _SUPINE)) * self.height


def sample_body(rng: np.random.Generator, field_of_view_mm: tuple[float, float]) -> BodyShape:
    """Draw a patient: sex, height 1.50-1.92 m, build, age, arm pose, biodistribution."""
    rows_mm, cols_mm = field_of_view_mm
    female = bool(rng.uniform() < 0.45)  # lung cancer: slightly more men
    height = rng.normal(1630.0 if female else 1750.0, 60.0)
    height = float(np.clip(height, 1500.0, min(1920.0, rows_mm - 60.0)))
    top = rng.uniform(25.0, max(26.0, rows_mm - height - 40.0))
    weight = float(np.clip(rng.lognormal(0.0, 0.10), 0.8, 1.45))  # build relative to the sex's norm
    age = float(rng.uniform(38.0, 85.0)) if rng.uniform() < 0.95 else float(rng.uniform(16.0, 38.0))
    paget = None
    if rng.uniform() < 0.01 + 0.05 * max(0.0, (age - 55.0) / 30.0):
        kind = str(rng.choice(["vertebra", "hemipelvis", "femur", "tibia"]))
        paget = (kind, int(rng.integers(12, 24)) if kind == "vertebra" else int(rng.choice([-1, 1])))
    bones = ("skull", "spine", "ribs", "sternum", "clavicles", "scapulae", "pelvis", "sacrum", "arms", "legs",
             "joints")
    return BodyShape(
        height=height,
        top=top,
        midline=cols_mm / 2.0 + rng.uniform(-12.0, 12.0),
        girth=weight * (0.95 if female else 1.0),
        depth=weight * rng.uniform(0.92, 1.08),
        female=female,
        age=age,
        arm_abduction=float(rng.uniform(0.02, 0.22)),
        soft_tissue=float(rng.lognormal(np.log(0.19), 0.25)),
        bone_uptake=float(rng.lognormal(0.0, 0.15)),
        kidney=float(rng.uniform(0.2, 0.8)),
        bladder=float(np.clip(rng.lognormal(np.log(4.0), 0.3), 1.5, 10.0)),
        bladder_volume=float(np.clip(rng.lognormal(np.log(60.0), 0.25), 25.0, 180.0)),
        jitter={name: float(rng.uniform(0.85, 1.15)) for name in bones},
        paget=paget,
        elbow_flexion=float(rng.uniform(0.1, 0.5)),
    )


@dataclass
class BoneSites:
    """Points inside bones where findings may sit: ``{region: (n, 3) array of (x, y, z) mm}``."""

    points: dict = field(default_factory=dict)

    def add(self, region: str, points: np.ndarray) -> None:
        self.points.setdefault(region, []).append(np.asarray(points, dtype=np.float64).reshape(-1, 3))

    def get(self, region: str) -> np.ndarray:
        return np.concatenate(self.points[region]) if region in self.points else np.zeros((0, 3))


class BodyVolume:
    """Voxel maps of one body, ``(nz, ny, nx)`` (depth, rows, columns), each voxel ``voxel_mm`` (z, y, x).

    ``soft`` is the soft-tissue occupancy (0-1, overlapping parts take the maximum), ``uptake`` the extra
    tracer concentration of bones and organs (overlapping bones add: both hold tracer), ``mu_extra`` the
    attenuation above soft tissue, ``bone`` the :data:`BONE_LABELS` value of each voxel.
    """

    def __init__(self, shape: tuple[int, int, int], voxel_mm: tuple[float, float, float]) -> None:
        self.shape = shape
        self.voxel_mm = tuple(float(v) for v in voxel_mm)
        self.soft = np.zeros(shape, dtype=np.float32)
        self.lung = np.zeros(shape, dtype=np.float32)
        self.uptake = np.zeros(shape, dtype=np.float32)
        self.mu_extra = np.zeros(shape, dtype=np.float32)
        self.bone = np.zeros(shape, dtype=np.uint8)
        self.sites = BoneSites()
        self.edge_mm = 0.5 * (self.voxel_mm[1] + self.voxel_mm[2])

    # voxel windows -----------------------------------------------------------------------------------
    def _window(self, lo: np.ndarray, hi: np.ndarray):
        """Slices and voxel-centre coordinates (mm) of the box ``lo``-``hi`` ((x, y, z) mm), or None."""
        dz, dy, dx = self.voxel_mm
        idx = []
        for axis, size, step in ((2, self.shape[0], dz), (1, self.shape[1], dy), (0, self.shape[2], dx)):
            a = max(int(np.floor(lo[axis] / step)), 0)
            b = min(int(np.ceil(hi[axis] / step)) + 1, size)
            if a >= b:
                return None
            idx.append((a, b, step))
        (z0, z1, dz), (y0, y1, dy), (x0, x1, dx) = idx
        zz = ((np.arange(z0, z1) + 0.5) * dz).astype(np.float32)[:, None, None]
        yy = ((np.arange(y0, y1) + 0.5) * dy).astype(np.float32)[None, :, None]
        xx = ((np.arange(x0, x1) + 0.5) * dx).astype(np.float32)[None, None, :]
        return (slice(z0, z1), slice(y0, y1), slice(x0, x1)), xx, yy, zz

    def _apply(self, where, occupancy: np.ndarray, uptake: float, mu: float, label: int, soft: bool) -> None:
        if soft:
            np.maximum(self.soft[where], occupancy, out=self.soft[where])
            return
        self.uptake[where] += uptake * occupancy
        np.maximum(self.mu_extra[where], mu * occupancy, out=self.mu_extra[where])
        if label:
            self.bone[where][occupancy > 0.5] = label

    # solids ------------------------------------------------------------------------------------------
    def tube(self, points, radii, uptake: float = 0.0, mu: float = MU_BONE_PER_MM - MU_WATER_PER_MM,
             label: int = 0, soft: bool = False, region: str | None = None) -> None:
        """A tube of (linearly varying) radius along a 3-D polyline ``points`` ``(n, 3)`` (x, y, z) mm."""
        pts = np.asarray(points, dtype=np.float32).reshape(-1, 3)
        rad = np.broadcast_to(np.asarray(radii, dtype=np.float32), (len(pts),))
        pad = float(rad.max()) + 2 * self.edge_mm
        window = self._window(pts.min(0) - pad, pts.max(0) + pad)
        if window is None:
            return
        where, xx, yy, zz = window
        occupancy = np.zeros(np.broadcast_shapes(xx.shape, yy.shape, zz.shape), dtype=np.float32)
        if len(pts) == 1:
            pts, rad = np.repeat(pts, 2, 0), np.repeat(rad, 2)
        for (p, q), (r0, r1) in zip(zip(pts[:-1], pts[1:]), zip(rad[:-1], rad[1:])):
            d = q - p
            t = ((xx - p[0]) * d[0] + (yy - p[1]) * d[1] + (zz - p[2]) * d[2]) / max(float(d @ d), 1e-6)
            t = np.clip(t, 0.0, 1.0)
            dist = np.sqrt((xx - p[0] - t * d[0]) ** 2 + (yy - p[1] - t * d[1]) ** 2 + (zz - p[2] - t * d[2]) ** 2)
            np.maximum(occupancy, np.clip((r0 + t * (r1 - r0) - dist) / self.edge_mm + 0.5, 0.0, 1.0), out=occupancy)
        self._apply(where, occupancy, uptake, mu, label, soft)
        if region is not None:
            self.sites.add(region, _resample_polyline(pts, step=3.0))

    def ellipsoid(self, center: Vec, radii: Vec, uptake: float = 0.0, mu: float = MU_BONE_PER_MM - MU_WATER_PER_MM,
                  label: int = 0, rotation: np.ndarray | None = None, shell: float | None = None,
                  soft: bool = False, region: str | None = None, lung: bool = False) -> None:
        """A solid ellipsoid (or, with ``shell`` mm, its rim) with half-axes ``radii`` along ``rotation``'s columns."""
        c = np.asarray(center, dtype=np.float32)
        r = np.asarray(radii, dtype=np.float32)
        rot = np.eye(3, dtype=np.float32) if rotation is None else np.asarray(rotation, dtype=np.float32)
        extent = np.abs(rot) @ r + 2 * self.edge_mm
        window = self._window(c - extent, c + extent)
        if window is None:
            return
        where, xx, yy, zz = window
        rel = (xx - c[0], yy - c[1], zz - c[2])
        local = [rel[0] * rot[0, k] + rel[1] * rot[1, k] + rel[2] * rot[2, k] for k in range(3)]

        def occupancy_of(half_axes: np.ndarray) -> np.ndarray:
            s = np.sqrt(sum((local[k] / half_axes[k]) ** 2 for k in range(3)))
            return np.clip((1.0 - s) * float(half_axes.min()) / self.edge_mm + 0.5, 0.0, 1.0)

        occupancy = occupancy_of(r)
        if shell is not None:
            occupancy = np.clip(occupancy - occupancy_of(np.maximum(r - shell, 1.0)), 0.0, 1.0)
        if lung:
            np.maximum(self.lung[where], occupancy, out=self.lung[where])
            return
        self._apply(where, occupancy, uptake, mu, label, soft)
        if region is not None:
            self.sites.add(region, _points_in_ellipsoid(c, r * 0.8, rot, 24 if shell is None else 48, shell is not None))

    def trunk(self, y_keys, half_width, half_depth, center_x: float, table_z: float) -> None:
        """Soft tissue of the neck and trunk: elliptic cross-sections, back on the table, sized per row."""
        dz, dy, dx = self.voxel_mm
        y0 = max(int(np.floor(min(y_keys) / dy)), 0)
        y1 = min(int(np.ceil(max(y_keys) / dy)) + 1, self.shape[1])
        if y0 >= y1:
            return
        yy = (np.arange(y0, y1) + 0.5) * dy
        a = np.interp(yy, y_keys, half_width).astype(np.float32)[None, :, None]
        b = np.interp(yy, y_keys, half_depth).astype(np.float32)[None, :, None]
        zz = ((np.arange(self.shape[0]) + 0.5) * dz).astype(np.float32)[:, None, None]
        xx = ((np.arange(self.shape[2]) + 0.5) * dx).astype(np.float32)[None, None, :]
        inside = (xx - center_x) ** 2 / a ** 2 + (zz - (table_z - b)) ** 2 / b ** 2
        occupancy = np.clip((1.0 - np.sqrt(inside)) * np.minimum(a, b) / self.edge_mm + 0.5, 0.0, 1.0)
        where = (slice(None), slice(y0, y1), slice(None))
        np.maximum(self.soft[where], occupancy, out=self.soft[where])


def _resample_polyline(points: np.ndarray, step: float) -> np.ndarray:
    seg = np.linalg.norm(np.diff(points, axis=0), axis=1)
    s = np.concatenate([[0.0], np.cumsum(seg)])
    if s[-1] <= 0:
        return points[:1]
    grid = np.arange(0.0, s[-1] + 1e-6, step)
    return np.stack([np.interp(grid, s, points[:, k]) for k in range(3)], axis=1)


def _points_in_ellipsoid(c, r, rot, n: int, surface: bool) -> np.ndarray:
    # deterministic spread of points (a golden-angle spiral) so that sites do not consume random draws
    k = np.arange(n) + 0.5
    polar = np.arccos(1 - 2 * k / n)
    azimuth = np.pi * (1 + 5 ** 0.5) * k
    unit = np.stack([np.sin(polar) * np.cos(azimuth), np.sin(polar) * np.sin(azimuth), np.cos(polar)], axis=1)
    scale = 1.0 if surface else np.cbrt((np.arange(n) + 0.5) / n)[:, None]
    return c + (unit * scale * r) @ rot.T


def _rotation(axis_u, axis_v) -> np.ndarray:
    """Orthonormal frame whose first column points along ``axis_u`` and second as near ``axis_v`` as possible."""
    u = np.asarray(axis_u, dtype=np.float64)
    u /= np.linalg.norm(u)
    v = np.asarray(axis_v, dtype=np.float64)
    v = v - (v @ u) * u
    v /= np.linalg.norm(v)
    return np.stack([u, v, np.cross(u, v)], axis=1)


def draw_body(body: BodyShape, volume: BodyVolume) -> dict:
    """Rasterise ``body`` into ``volume``; returns landmarks (mm) used by findings and the generator.

    Returns:
        ``{"table_z", "front_z", "shoulder_y", "spine": [(x, y, z) C1..L5], "ribs": {(k, side): (n, 3)},
        "joints": {"knee" | "shoulder" | "hip" | "hand": [(x, y, z), ...]}, "injection": [...],
        "bladder": (center, radius), "paget": (center, radius) if any}``.
    """
    h, mid, g, dp = body.height, body.midline, body.girth, body.depth
    u = body.bone_uptake
    j = body.jitter
    table_z = volume.shape[0] * volume.voxel_mm[0] - 6.0
    s = h / 1750.0  # skeletal scale
    young = body.age < 20.0
    old = max(0.0, (body.age - 50.0) / 35.0)  # osteopenia lowers, degeneration raises uptake with age
    L = BONE_LABELS
    paget = body.paget or ("", 0)

    def pagetoid(kind: str, index: int) -> float:
        return 3.5 if paget == (kind, index) else 1.0

    landmarks: dict = {"ribs": {}, "joints": {"knee": [], "shoulder": [], "hip": [], "hand": []}, "injection": []}

    # soft tissue: trunk cross-sections (neck to crotch), head, limbs -----------------------------------
    fy = body.y
    y_keys = [fy(0.115), fy(0.135), fy(0.16), fy(0.178), fy(0.215), fy(0.29), fy(0.37), fy(0.43), fy(0.48), fy(0.525)]
    shoulder = (1.0 if not body.female else 0.9) * g ** 0.5
    hip = (1.0 if not body.female else 1.1) * g
    w = np.array([80 * g, 92 * g, 112 * g, 172 * shoulder, 178 * shoulder, 144 * g, 132 * g ** 1.3, 160 * hip, 172 * hip, 156 * hip]) * s
    d = np.array([66, 72, 80, 112, 122, 112, 88 * g ** 1.2, 112 * g ** 1.1, 115 * g, 104 * g]) * s * dp
    volume.trunk(y_keys, w, d, mid, table_z)
    head_c = (mid, fy(0.062), table_z - 95 * s)
    volume.ellipsoid(head_c, (76 * s, 108 * s, 95 * s), soft=True)
    if body.female:
        for side in (-1, 1):
            volume.ellipsoid((mid + side * 65 * s * g, fy(0.27), table_z - 2 * d[5] + 5), (55 * g, 50 * g, 40 * g ** 1.5),
                             soft=True)
    chest_b = d[5]
    front_z = table_z - 2 * chest_b
    # lungs: low density inside the rib cage, apex above the clavicles, bases at the diaphragm
    for side in (-1, 1):
        volume.ellipsoid((mid + side * 62 * s * g ** 0.3, fy(0.262), table_z - chest_b - 5),
                         (48 * s * g ** 0.3, 92 * s, 0.72 * chest_b), lung=True)

    # spine: C1..L5, vertebral bodies with pedicles, transverse and spinous processes -----------------
    heights = np.array([0.8] * 7 + [1.0] * 12 + [1.4] * 5)
    c1_y, l5_y = fy(0.108), fy(0.445)
    edges = c1_y + np.concatenate([[0.0], np.cumsum(heights)]) / heights.sum() * (l5_y - c1_y)
    spine = []
    for i in range(24):
        yc = 0.5 * (edges[i] + edges[i + 1])
        span = edges[i + 1] - edges[i]
        t = i / 23.0
        # distance of the vertebral body centre from the back: cervical and lumbar lordosis lift it
        back = (58 - 18 * np.sin(np.pi * t / 0.8) * (t < 0.8) + 26 * max(0.0, (t - 0.78) / 0.22)) * s * dp ** 0.6
        if i < 7:
            back = (48 + 6 * i) * s
        zc = table_z - back
        lateral = (9 + 5 * t + 9 * t ** 3) * s  # body half-width grows to the lumbar spine
        region = "cervical spine" if i < 7 else "thoracic spine" if i < 19 else "lumbar spine"
        label = L[region]
        level_uptake = 6.0 * u * j["spine"] * (1.0 + 0.4 * old * (i >= 19)) * pagetoid("vertebra", i)
        if paget == ("vertebra", i):
            landmarks["paget"] = ((mid, yc, zc), 1.3 * lateral)
        volume.ellipsoid((mid, yc, zc), (lateral, 0.47 * span, 0.9 * lateral), level_uptake, label=label,
                         region=region)
        for side in (-1, 1):  # pedicles and laminae to the spinous process, transverse processes
            volume.tube([(mid + side * 0.8 * lateral, yc, zc + 0.7 * lateral),
                         (mid + side * 0.5 * lateral, yc + 0.1 * span, zc + 1.6 * lateral + 6 * s)],
                        3.0 * s, 0.8 * level_uptake, label=label)
            reach = (22 if i < 7 else 38 - 0.7 * (i - 7) if i < 19 else 30) * s
            volume.tube([(mid + side * 0.8 * lateral, yc, zc + 1.1 * lateral),
                         (mid + side * reach, yc, zc + 1.5 * lateral + (8 * s if 7 <= i < 19 else 0))],
                        3.0 * s, 0.7 * level_uptake, label=label)
        volume.tube([(mid, yc, zc + 1.6 * lateral + 6 * s), (mid, yc + 0.5 * span * (7 <= i < 19), table_z - 14 * s)],
                    3.2 * s, 0.7 * level_uptake, label=label)
        spine.append((mid, yc, zc))

    # ribs: from the transverse process round the chest wall to the costal cartilage ------------------
    rib_uptake = 4.0 * u * j["ribs"]
    for k in range(12):
        x_v, y_v, z_v = spine[7 + k]
        half_w = (46 + 86 * np.sin(np.pi * min(k + 1.4, 8.0) / 16.0) + (0 if k < 8 else -6 * (k - 7))) * s * g ** 0.35
        half_d = chest_b * (0.55 + 0.035 * min(k, 7)) * (0.95 if k < 8 else 1.0)
        cz = table_z - chest_b - 4
        end = np.pi * (0.92 if k < 7 else 0.78 - 0.04 * (k - 7) if k < 10 else 0.55 - 0.1 * (k - 10))
        theta = np.linspace(0.16 * np.pi, end, 16)
        drop = (18 + 7.5 * min(k, 6)) * s * (theta - theta[0]) / np.pi * 2.2
        sag = 8 * s * np.sin(theta)  # ribs rise above their joint before sloping forward and down
        for side in (-1, 1):
            xs = x_v + side * half_w * np.sin(theta)
            zs = cz + half_d * np.cos(theta)
            ys = y_v - 0.3 * (edges[8 + k] - edges[7 + k]) + drop - sag
            pts = np.stack([xs, ys, zs], axis=1)
            pts = np.concatenate([[[x_v + side * 22 * s, y_v, z_v + 18 * s]], pts])
            volume.tube(pts, 4.2 * s, rib_uptake, label=L["ribs"], region="ribs")
            landmarks["ribs"][(k, side)] = pts
            if k < 10:  # costal cartilage to the sternum: little uptake
                tip = pts[-1]
                volume.tube([tip, (mid + side * 14 * s, tip[1] + (6 if k < 7 else 25) * s, front_z + 12 * s)],
                            4.0 * s, 0.35 * rib_uptake, mu=0.003)

    # sternum, clavicles, scapulae ----------------------------------------------------------------------
    st_top, st_bottom = fy(0.19), fy(0.29)
    st_uptake = 4.0 * u * j["sternum"]
    volume.ellipsoid((mid, st_top + 18 * s, front_z + 12 * s), (26 * s, 24 * s, 8 * s), 1.2 * st_uptake, label=L["sternum"],
                     region="sternum")
    volume.tube([(mid, st_top + 36 * s, front_z + 12 * s), (mid, st_bottom, front_z + 16 * s)], [15 * s, 12 * s],
                st_uptake, label=L["sternum"], region="sternum")
    acromion_y = fy(0.178)
    shoulder_x = 168 * s * shoulder
    clav_uptake = 3.0 * u * j["clavicles"]
    for side in (-1, 1):
        xs = mid + side * np.array([18, 60, 110, shoulder_x * 0.93]) * np.array([s, s, s, 1.0])
        pts = np.stack([xs, [st_top - 2, st_top - 6 * s, acromion_y + 2, acromion_y],
                        [front_z + 12 * s, front_z + 10 * s, front_z + 40 * s, table_z - chest_b * 0.9]], axis=1)
        volume.tube(pts, 5.5 * s, clav_uptake, label=L["clavicles"], region="clavicles")
    scap_uptake = 4.0 * u * j["scapulae"]
    for side in (-1, 1):
        c = np.array([mid + side * 98 * s * shoulder, fy(0.225), table_z - 42 * s])
        rot = _rotation((side * 0.25, 1.0, 0.0), (1.0, 0.0, 0.15 * side))
        volume.ellipsoid(tuple(c), (78 * s, 50 * s, 5 * s), scap_uptake, label=L["scapulae"], rotation=rot,
                         region="scapulae")
        volume.tube([(mid + side * 60 * s, fy(0.205), table_z - 45 * s),
                     (mid + side * shoulder_x * 0.92, acromion_y + 4, table_z - chest_b * 0.85)],
                    6.0 * s, scap_uptake, label=L["scapulae"], region="scapulae")
        volume.ellipsoid((mid + side * 85 * s, fy(0.262), table_z - 40 * s), (10 * s, 9 * s, 6 * s),
                         1.2 * scap_uptake, label=L["scapulae"])  # inferior angle
        volume.ellipsoid((mid + side * (shoulder_x - 22 * s), acromion_y + 24 * s, table_z - chest_b * 0.95),
                         (9 * s, 16 * s, 14 * s), 1.4 * scap_uptake, label=L["scapulae"])  # glenoid

    # skull: calvarium shell, skull base, facial bones, mandible -----------------------------------------
    sk_uptake = 1.5 * u * j["skull"]
    skull_c = (mid, fy(0.06), table_z - 98 * s)
    volume.ellipsoid(skull_c, (70 * s, 96 * s, 88 * s), sk_uptake, label=L["skull"], shell=8 * s, region="skull")
    volume.ellipsoid((mid, fy(0.092), table_z - 95 * s), (52 * s, 14 * s, 55 * s), 0.6 * sk_uptake, label=L["skull"],
                     region="skull")
    volume.ellipsoid((mid, fy(0.088), table_z - 160 * s), (34 * s, 26 * s, 24 * s), 1.2 * sk_uptake, label=L["skull"])
    mandible = [(mid + side * 48 * s, fy(0.095), table_z - 105 * s) for side in (-1,)]
    mandible += [(mid - 40 * s, fy(0.125), table_z - 150 * s), (mid, fy(0.132), table_z - 180 * s),
                 (mid + 40 * s, fy(0.125), table_z - 150 * s), (mid + 48 * s, fy(0.095), table_z - 105 * s)]
    volume.tube(mandible, 6.0 * s, 0.6 * sk_uptake, label=L["skull"])

    # arms: humerus, radius and ulna, wrist, hand ---------------------------------------------------------
    ab = body.arm_abduction
    arm_z = table_z - 45 * s
    arm_uptake = 2.4 * u * j["arms"]
    joint_uptake = 3.2 * u * j["joints"] * (1.0 + 0.4 * old)
    for side in (-1, 1):  # sternoclavicular joints: bright in most adults, more so with age
        volume.ellipsoid((mid + side * 20 * s, st_top + 2, front_z + 12 * s), (11 * s, 10 * s, 10 * s),
                         joint_uptake * (0.7 + 0.8 * old), label=L["clavicles"])
    plate = 3.0 if young else 1.0
    for side in (-1, 1):
        shoulder_pt = np.array([mid + side * (shoulder_x - 8 * s), acromion_y + 26 * s, table_z - chest_b * 0.95])
        direction = np.array([side * np.sin(ab), np.cos(ab), 0.0])
        elbow = shoulder_pt + 0.186 * h * direction + np.array([side * 0.02 * h * g, 0, 0])
        elbow[2] = arm_z
        flex = body.elbow_flexion  # the forearm rises off the table towards the front: shorter in the view
        wrist = elbow + 0.146 * h * np.array([side * np.sin(ab * 0.7) * np.cos(flex), np.cos(ab * 0.7) * np.cos(flex),
                                              -np.sin(flex)])
        wrist[0] += side * 6 * g
        hand_tip = wrist + 0.105 * h * np.array([side * 0.05, 1.0, -0.1])  # the hand lies flat
        landmarks["joints"]["shoulder"].append(tuple(shoulder_pt + np.array([-side * 20 * s, -20 * s, 0])))
        landmarks["joints"]["hand"].append(tuple(wrist + np.array([0, 40 * s, 0])))
        landmarks["injection"] += [tuple(elbow + np.array([0, 0, -30 * s])), tuple(wrist + np.array([0, 45 * s, -15 * s]))]
        volume.ellipsoid(tuple(shoulder_pt), (30 * s, 34 * s, 28 * s), joint_uptake * 0.9 * plate ** 0.3,
                         label=L["humeri"], region="humeri")
        volume.tube([shoulder_pt, elbow], [14 * s, 9 * s], arm_uptake, label=L["humeri"], region="humeri")
        volume.ellipsoid(tuple(elbow), (22 * s, 12 * s, 14 * s), joint_uptake * 0.35, label=L["humeri"])
        for offset in (-5.0, 5.0):
            volume.tube([elbow + np.array([offset * s, 8 * s, 0]), wrist + np.array([offset * s, 0, 0])],
                        6.0 * s, arm_uptake, label=L["forearms"], region="forearms")
        volume.ellipsoid(tuple(wrist + np.array([0, 12 * s, 0])), (18 * s, 14 * s, 10 * s), joint_uptake * 0.8,
                         label=L["hands"], region="hands")
        for f in range(5):  # metacarpals and fingers
            base = wrist + np.array([side * (f - 2) * 8 * s, 28 * s, 0])
            volume.tube([base, hand_tip + np.array([side * (f - 2) * 9 * s, -(abs(f - 2)) * 10 * s, 0])],
                        3.0 * s, 2.2 * u * j["arms"], label=L["hands"], region="hands")
        # arm soft tissue
        volume.tube([shoulder_pt + np.array([side * 6, 0, 0]), elbow, wrist], np.array([70, 44, 27]) * s * g ** 0.8,
                    soft=True)
        volume.ellipsoid(tuple(0.5 * (wrist + hand_tip)), (30 * s, 60 * s, 18 * s), soft=True)

    # pelvis: iliac wings, sacrum, sacroiliac joints, pubis, ischium ------------------------------------
    pelvis_uptake = 4.4 * u * j["pelvis"]
    crest_y, acet_y, pubis_y = fy(0.415), fy(0.488), fy(0.51)
    pel_w = 1.0 if not body.female else 1.08
    sacrum_top = edges[-1]
    volume.tube([(mid, sacrum_top + 8 * s, table_z - 62 * s), (mid, fy(0.49), table_z - 30 * s),
                 (mid, fy(0.51), table_z - 30 * s)], [38 * s * pel_w, 20 * s, 8 * s], 3.2 * u * j["sacrum"],
                label=L["sacrum"], region="sacrum")
    for side in (-1, 1):
        wing_c = np.array([mid + side * 92 * s * pel_w, 0.55 * crest_y + 0.45 * acet_y, table_z - 72 * s])
        rot = _rotation((side * 0.45, 1.0, -0.15), (1.0, -side * 0.3, 0.6 * side))
        volume.ellipsoid(tuple(wing_c), (60 * s, 52 * s * pel_w, 6 * s * pagetoid("hemipelvis", side) ** 0.3),
                         pelvis_uptake * pagetoid("hemipelvis", side), label=L["pelvis"], rotation=rot, region="pelvis")
        if paget == ("hemipelvis", side):
            landmarks["paget"] = (tuple(wing_c), 65 * s)
        volume.tube([(mid + side * 40 * s, sacrum_top + 18 * s, table_z - 50 * s),
                     (mid + side * 40 * s * pel_w, fy(0.475), table_z - 40 * s)], 9 * s, 1.25 * pelvis_uptake,
                    label=L["pelvis"], region="pelvis")  # sacroiliac joint
        acet = np.array([mid + side * 88 * s * pel_w, acet_y, table_z - 95 * s])
        volume.ellipsoid(tuple(acet), (22 * s, 22 * s, 22 * s), 0.6 * pelvis_uptake, label=L["pelvis"],
                         shell=9 * s, region="pelvis")
        volume.tube([acet, (mid + side * 16 * s, pubis_y, front_z + 30 * s * g)], 7 * s, 0.7 * pelvis_uptake,
                    label=L["pelvis"], region="pelvis")  # superior pubic ramus
        volume.tube([acet, (mid + side * 55 * s * pel_w, fy(0.525), table_z - 60 * s),
                     (mid + side * 18 * s, fy(0.52), front_z + 40 * s * g)], 6 * s, 0.5 * pelvis_uptake, label=L["pelvis"],
                    region="pelvis")  # ischium and inferior ramus

        # legs: femur with head, neck and trochanter; knee; tibia and fibula; ankle and foot ----------
        leg_x = mid + side * 98 * s * pel_w * g ** 0.3
        knee = np.array([mid + side * (52 * s * g ** 0.5), fy(0.715), table_z - 55 * s])
        ankle = np.array([mid + side * 50 * s * g ** 0.3, fy(0.955), table_z - 50 * s])
        troch = np.array([mid + side * 128 * s * pel_w, acet_y + 28 * s, table_z - 92 * s])
        leg_uptake = 2.4 * u * j["legs"]
        landmarks["joints"]["knee"].append(tuple(knee + np.array([-side * 22 * s, 0, 0])))
        landmarks["joints"]["hip"].append(tuple(acet + np.array([side * 5 * s, -15 * s, 0])))
        femur_paget, tibia_paget = pagetoid("femur", side), pagetoid("tibia", side)
        if paget == ("femur", side):
            landmarks["paget"] = (tuple(0.5 * (troch + knee)), 0.5 * float(np.linalg.norm(knee - troch)))
        if paget == ("tibia", side):
            landmarks["paget"] = (tuple(0.5 * (knee + ankle)), 0.5 * float(np.linalg.norm(ankle - knee)))
        volume.ellipsoid(tuple(acet), (23 * s, 23 * s, 23 * s), 0.6 * joint_uptake * plate ** 0.3, label=L["femora"],
                         region="femora")
        volume.tube([acet, troch], 16 * s, 0.75 * joint_uptake, label=L["femora"], region="femora")
        volume.tube([troch, knee + np.array([0, -30 * s, 0])], np.array([15 * s, 12 * s]) * femur_paget ** 0.2,
                    leg_uptake * femur_paget, label=L["femora"], region="femora")
        volume.ellipsoid(tuple(knee + np.array([0, -14 * s, 0])), (34 * s, 18 * s, 26 * s), 0.35 * joint_uptake * plate,
                         label=L["femora"])
        volume.ellipsoid(tuple(knee + np.array([0, 20 * s, 0])), (32 * s, 14 * s, 24 * s), 0.35 * joint_uptake * plate,
                         label=L["lower legs"])
        volume.ellipsoid(tuple(knee + np.array([0, 0, -40 * s])), (17 * s, 20 * s, 9 * s), 0.6 * joint_uptake,
                         label=L["lower legs"])  # patella
        volume.tube([knee + np.array([0, 30 * s, 0]), ankle], np.array([15 * s, 10 * s]) * tibia_paget ** 0.2,
                    0.7 * leg_uptake * tibia_paget, label=L["lower legs"], region="tibiae")
        volume.tube([knee + np.array([side * 28 * s, 28 * s, 10 * s]), ankle + np.array([side * 24 * s, 0, 8 * s])],
                    5.5 * s, 0.9 * leg_uptake, label=L["lower legs"])
        # supine feet point up: calcaneus on the table, metatarsals towards the anterior camera
        volume.ellipsoid(tuple(ankle + np.array([0, 28 * s, 18 * s])), (20 * s, 24 * s, 28 * s), joint_uptake * 0.9,
                         label=L["feet"], region="feet")
        volume.tube([ankle + np.array([0, 34 * s, -10 * s]), ankle + np.array([side * 14 * s, 125 * s, -75 * s])],
                    [18 * s, 12 * s], 0.55 * joint_uptake, label=L["feet"], region="feet")  # relaxed: toes point away
        # leg soft tissue (thigh to ankle) and foot
        volume.tube([(leg_x, fy(0.50), table_z - 80 * s * g), knee, ankle], np.array([86 * g, 50 * g ** 0.8, 32]) * s,
                    soft=True)
        volume.ellipsoid(tuple(ankle + np.array([0, 60 * s, -50 * s])), (40 * s, 60 * s, 70 * s), soft=True)

    # organs: kidneys (posterior, T12-L3), bladder (anterior pelvis) -----------------------------------
    for side in (-1, 1):
        rot = _rotation((side * 0.25, 1.0, 0.0), (1.0, 0.0, 0.3 * side))
        volume.ellipsoid((mid + side * 58 * s, spine[19][1] + 0.4 * side * 8 * s, table_z - 62 * s), (58 * s, 30 * s, 24 * s),
                         body.kidney, mu=0.0, rotation=rot)
    radius = (body.bladder_volume * 3 / (4 * np.pi)) ** (1 / 3) * 10.0  # ml -> mm
    # the bladder's base rests on the upper border of the pubic symphysis (~18 mm above its centre) and the
    # dome rises from there; on NM1 the bladder lies at the level of the hip joints
    bladder_c = (mid, pubis_y - 18 * s - 0.85 * radius, front_z + 35 * s * g + radius)
    volume.ellipsoid(bladder_c, (1.15 * radius, 0.85 * radius, radius),
                     body.bladder, mu=0.0)  # urine attenuates like the soft tissue it replaces

    if not body.female:  # penis and scrotum: blood-pool activity between the upper thighs on anterior views
        volume.ellipsoid((mid, fy(0.54), front_z + 45 * s * g), (30 * s, 48 * s, 32 * s), soft=True)
        # the blood pool of the penis and scrotum holds about twice the soft tissue's tracer (visible on NM1)
        volume.ellipsoid((mid, fy(0.54), front_z + 45 * s * g), (24 * s, 40 * s, 26 * s), body.soft_tissue, mu=0.0)

    landmarks.update(table_z=table_z, front_z=front_z, shoulder_y=acromion_y + 5.0, spine=spine,
                     bladder=(bladder_c, 1.15 * radius))
    return landmarks
