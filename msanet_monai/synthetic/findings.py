"""Bone metastases (labelled) and benign hot spots (unlabelled) placed in the 3-D body.

Lung cancer spreads to the red marrow of the axial skeleton: thoracic and lumbar spine, ribs, pelvis,
sternum, scapulae, then the proximal femora and humeri and the skull. Each metastasis is one to four
overlapping ellipsoids of raised uptake (irregular outline) inside a bone, from 1-2 px to about 30 px
across; some come as clusters along a bone, and a few patients have diffuse spread (many small deposits
in one region). Because a finding sits at a depth, each head sees it with its own attenuation and blur.

Look-alikes are hot but benign and are not labelled: rib fractures (spots on consecutive ribs in a
line), degenerative spine and joints, arthritis of the hands and knees, Paget-like uptake of a whole
bone (drawn by the body), the injection site, urine contamination on the skin; bladder and kidneys.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from msanet_monai.synthetic.body import BodyShape, BodyVolume
from msanet_monai.synthetic.camera import Blob

__all__ = ["Finding", "METASTASIS_SITES", "sample_metastases", "sample_look_alikes"]

# relative frequency of metastasis sites in lung cancer bone scans
METASTASIS_SITES = {
    "thoracic spine": 0.22, "ribs": 0.26, "lumbar spine": 0.12, "pelvis": 0.11, "sacrum": 0.04, "sternum": 0.06,
    "scapulae": 0.07, "femora": 0.04, "humeri": 0.03, "skull": 0.03, "cervical spine": 0.02, "clavicles": 0.01,
}


@dataclass
class Finding:
    """One finding: its blobs, whether it is a metastasis (``label`` "metastasis") or its look-alike kind."""

    label: str
    region: str
    blobs: list = field(default_factory=list)


def _uptake_at(volume: BodyVolume, point: np.ndarray) -> float:
    dz, dy, dx = volume.voxel_mm
    idx = tuple(int(np.clip(point[k] // step, 0, n - 1))
                for k, step, n in ((2, dz, volume.shape[0]), (1, dy, volume.shape[1]), (0, dx, volume.shape[2])))
    return float(volume.uptake[idx])


def _deposit(rng: np.random.Generator, volume: BodyVolume, point: np.ndarray, radius: float, contrast: float,
             depth_radius: float) -> list[Blob]:
    """An irregular deposit: 1-4 overlapping ellipsoids around ``point`` of total size ``radius`` mm."""
    bone = max(_uptake_at(volume, point), 2.0)
    blobs = []
    for part in range(int(rng.integers(1, 5)) if radius > 4.0 else 1):
        offset = rng.normal(0.0, 0.35 * radius, size=3) if part else np.zeros(3)
        offset[2] *= 0.4
        r = radius * (rng.uniform(0.45, 0.85) if part else 1.0)
        elongation = rng.uniform(1.0, 1.7)
        blobs.append(Blob(center=tuple(point + offset), radii=(r * elongation, r, min(r, depth_radius)),
                          angle=float(rng.uniform(0, np.pi)), concentration=contrast * bone * rng.uniform(0.7, 1.2)))
    return blobs


def sample_metastases(rng: np.random.Generator, volume: BodyVolume, metastasis_free: float = 0.15,
                      mean_count: float = 4.0) -> list[Finding]:
    """Metastases of one patient: none with probability ``metastasis_free``; some patients diffuse spread."""
    if rng.uniform() < metastasis_free:
        return []
    regions = [r for r in METASTASIS_SITES if len(volume.sites.get(r))]
    p = np.array([METASTASIS_SITES[r] for r in regions])
    p /= p.sum()
    findings = []
    diffuse = rng.uniform() < 0.08
    count = 1 + rng.poisson(mean_count - 1.0)
    for n in range(count):
        region = regions[rng.choice(len(regions), p=p)]
        sites = volume.sites.get(region)
        point = sites[rng.integers(len(sites))] + rng.normal(0, 1.5, size=3)
        # sizes: many small, few large: diameter log-uniform 1.5 px .. 30 px
        radius = float(np.exp(rng.uniform(np.log(1.7), np.log(34.0))))
        if region == "ribs":
            radius = min(radius, 14.0)
        contrast = float(np.exp(rng.uniform(np.log(0.5), np.log(5.0))))  # extra uptake relative to the bone
        depth_radius = 9.0 if region in ("ribs", "sternum", "scapulae", "skull", "clavicles") else 16.0
        finding = Finding("metastasis", region, _deposit(rng, volume, point, radius, contrast, depth_radius))
        if rng.uniform() < 0.25:  # a cluster: satellites along the same bone
            near = sites[np.linalg.norm(sites - point, axis=1) < 45.0]
            for _ in range(int(rng.integers(1, 4))):
                q = near[rng.integers(len(near))]
                finding.blobs += _deposit(rng, volume, q, max(1.7, radius * rng.uniform(0.3, 0.8)), contrast, depth_radius)
        findings.append(finding)
        if diffuse and n == 0:  # diffuse spread: many small deposits in the first region
            for q in sites[rng.choice(len(sites), size=min(len(sites), int(rng.integers(8, 20))), replace=False)]:
                findings.append(Finding("metastasis", region,
                                        _deposit(rng, volume, q, float(rng.uniform(2.0, 6.0)), contrast, depth_radius)))
    return findings


def sample_look_alikes(rng: np.random.Generator, body: BodyShape, volume: BodyVolume, landmarks: dict) -> list[Finding]:
    """Benign hot spots of one patient (not labelled), more frequent with age."""
    found: list[Finding] = []
    old = max(0.0, (body.age - 45.0) / 40.0)

    def spot(label: str, region: str, point, radius: float, concentration: float, depth: float | None = None):
        found.append(Finding(label, region, [Blob(tuple(np.asarray(point, dtype=float)),
                                                  (radius, radius * rng.uniform(0.7, 1.2), depth or radius),
                                                  float(rng.uniform(0, np.pi)), concentration)]))

    if rng.uniform() < 0.15:  # consecutive rib fractures in a line (fall against the chest wall)
        side = int(rng.choice([-1, 1]))
        first = int(rng.integers(3, 8))
        t = int(rng.integers(5, 12))
        for k in range(first, min(first + int(rng.integers(2, 5)), 12)):
            rib = landmarks["ribs"][(k, side)]
            point = rib[min(t, len(rib) - 1)]
            spot("fracture", "ribs", point, rng.uniform(3.0, 5.0), 2.5 * max(_uptake_at(volume, point), 2.0), 5.0)
    if rng.uniform() < 0.2 + 0.5 * old:  # degenerative lower spine: endplates and facets, off the midline
        for _ in range(int(rng.integers(1, 3))):
            x, y, z = landmarks["spine"][int(rng.integers(18, 24))]
            side = int(rng.choice([-1, 1]))
            spot("degenerative", "lumbar spine", (x + side * rng.uniform(10, 22), y + rng.uniform(-8, 8), z),
                 rng.uniform(4.0, 8.0), rng.uniform(8.0, 20.0))
    if rng.uniform() < 0.2 + 0.5 * old:  # degenerative shoulders, hips, knees
        for _ in range(int(rng.integers(1, 3))):
            joint = str(rng.choice(["knee", "shoulder", "hip"]))
            point = np.asarray(landmarks["joints"][joint][int(rng.integers(2))]) + rng.normal(0, 5, 3)
            spot("degenerative", joint, point, rng.uniform(6.0, 12.0), rng.uniform(8.0, 18.0))
    if rng.uniform() < 0.1 + 0.3 * old:  # arthritis of the hands (wrists, finger joints)
        for hand in landmarks["joints"]["hand"]:
            for _ in range(int(rng.integers(1, 4))):
                spot("arthritis", "hands", np.asarray(hand) + rng.normal(0, 12, 3), rng.uniform(3.0, 6.0),
                     rng.uniform(8.0, 20.0))
    if rng.uniform() < 0.25:  # tracer left at the injection site: elbow crease or back of the hand
        point = landmarks["injection"][int(rng.integers(len(landmarks["injection"])))]
        spot("injection site", "arm", point, rng.uniform(3.0, 8.0), float(np.exp(rng.uniform(np.log(20), np.log(300)))))
    if rng.uniform() < 0.06:  # urine on the skin or the clothes near the groin or a thigh
        x = body.midline + rng.uniform(-90, 90)
        y = body.y(rng.uniform(0.50, 0.62))
        z = landmarks["front_z"] + 45.0 if rng.uniform() < 0.5 else landmarks["table_z"] - 4.0
        spot("contamination", "skin", (x, y, z), rng.uniform(3.0, 10.0), float(np.exp(rng.uniform(np.log(10), np.log(100)))))
    return found
