"""Image formation of a dual-head whole-body scan from a :class:`~msanet_monai.synthetic.body.BodyVolume`.

For each head (anterior above the patient, posterior under the table): every voxel's tracer is
attenuated on its way out of the body (``exp(-integral of mu)`` towards that head, 140 keV), blurred by
the collimator's depth-dependent response (:func:`collimator_fwhm_mm`: the farther from the head, the
wider), and a share of it comes back as scatter accepted by the energy window (a broad kernel). Small
findings (:class:`Blob`) are added analytically at the camera's full pixel, with the attenuation and
blur of their depth. The expected counts are then scaled to the study's total and Poisson noise drawn.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from msanet_monai.synthetic.body import LUNG_DENSITY, MU_WATER_PER_MM, BodyVolume

__all__ = ["Blob", "ViewGeometry", "collimator_fwhm_mm", "project_volume", "render_blobs", "skeleton_map"]

# low-energy high-resolution collimator: ~7.5 mm FWHM at 10 cm, intrinsic ~3.8 mm
INTRINSIC_FWHM_MM = 3.8
# scatter in the 15-20 % window of a whole-body trunk: fraction of the primary counts and its spread,
# chosen with the soft-tissue level to match NM1's count histogram and row profile (bundle/docs/benchmarks.md)
SCATTER_FRACTION = 0.50
SCATTER_SIGMA_MM = 36.0
DEPTH_BAND_VOXELS = 4  # slices blurred together (the blur changes little over 32 mm)


def collimator_fwhm_mm(distance_mm: np.ndarray | float) -> np.ndarray | float:
    """System resolution (FWHM, mm) at ``distance_mm`` from the collimator face."""
    return np.sqrt(INTRINSIC_FWHM_MM ** 2 + (1.6 + 0.058 * np.asarray(distance_mm)) ** 2)


@dataclass
class ViewGeometry:
    """Where the two heads are (``z`` of the anterior and posterior collimator faces, mm)."""

    anterior_z: float
    posterior_z: float

    def distance(self, view: int, z: np.ndarray | float) -> np.ndarray | float:
        return np.asarray(z) - self.anterior_z if view == 0 else self.posterior_z - np.asarray(z)


@dataclass
class Blob:
    """A small ellipsoid of tracer drawn at full resolution (a lesion part or a benign hot spot).

    Attributes:
        center: ``(x, y, z)`` mm.
        radii: ``(rx, ry, rz)`` half-axes, mm; ``angle`` turns ``rx``/``ry`` in the image plane (radians).
        concentration: tracer concentration (the body's units: soft tissue 1.0).
    """

    center: tuple[float, float, float]
    radii: tuple[float, float, float]
    angle: float
    concentration: float


def _concentration_and_mu(volume: BodyVolume, soft_tissue: float, texture: np.ndarray):
    density = volume.soft * (1.0 - (1.0 - LUNG_DENSITY) * volume.lung)
    activity = soft_tissue * density * texture[None] + volume.uptake * (volume.soft > 0.05)
    mu = MU_WATER_PER_MM * density + volume.mu_extra
    return activity, mu


def transmission(mu: np.ndarray, dz: float) -> tuple[np.ndarray, np.ndarray]:
    """Fraction of photons from each voxel that leave the body towards the anterior / posterior head."""
    cum = np.cumsum(mu, axis=0, dtype=np.float32) * dz
    own = 0.5 * mu * dz
    return np.exp(-(cum - own)), np.exp(-(cum[-1:] - cum + own))


def project_volume(volume: BodyVolume, geometry: ViewGeometry, soft_tissue: float, texture: np.ndarray):
    """Expected counts per mm^2 (arbitrary scale) on each head, at the volume's in-plane voxel.

    Args:
        texture: ``(ny, nx)`` slow soft-tissue variation (fat, muscle, perfusion), multiplies soft tissue.

    Returns:
        ``(views, transmissions)``: ``(2, ny, nx)`` projections (anterior orientation) and the two
        ``(nz, ny, nx)`` transmission maps (used to attenuate findings at their depth).
    """
    dz, dy, dx = volume.voxel_mm
    activity, mu = _concentration_and_mu(volume, soft_tissue, texture)
    trans = transmission(mu, dz)
    z = (np.arange(volume.shape[0]) + 0.5) * dz
    views = np.zeros((2, volume.shape[1], volume.shape[2]), dtype=np.float32)
    for view in (0, 1):
        weighted = activity * trans[view]
        for start in range(0, volume.shape[0], DEPTH_BAND_VOXELS):
            band = slice(start, start + DEPTH_BAND_VOXELS)
            primary = weighted[band].sum(axis=0) * dz
            if not primary.any():
                continue
            sigma_mm = collimator_fwhm_mm(max(float(geometry.distance(view, z[band].mean())), 0.0)) / 2.3548
            views[view] += ndimage.gaussian_filter(primary, (sigma_mm / dy, sigma_mm / dx), mode="constant")
        views[view] += SCATTER_FRACTION * ndimage.gaussian_filter(
            views[view], (SCATTER_SIGMA_MM / dy, SCATTER_SIGMA_MM / dx), mode="constant")
    return views, trans


def render_blobs(blobs: list[Blob], shape: tuple[int, int], spacing: tuple[float, float], volume: BodyVolume,
                 trans: tuple[np.ndarray, np.ndarray], geometry: ViewGeometry, supersample: int = 3):
    """Each blob's expected contribution to each view at the camera pixel.

    Returns:
        per blob, per view, ``(row_slice, col_slice, patch)``: ``patch`` in the units of
        :func:`project_volume` (per mm^2), already attenuated and blurred for that view; ``None`` where
        the blob falls outside the image.
    """
    rows_mm, cols_mm = spacing
    dz, dy, dx = volume.voxel_mm
    out = []
    for blob in blobs:
        x, y, z = blob.center
        rx, ry, rz = blob.radii
        iz = int(np.clip(z // dz, 0, volume.shape[0] - 1))
        iy = int(np.clip(y // dy, 0, volume.shape[1] - 1))
        ix = int(np.clip(x // dx, 0, volume.shape[2] - 1))
        per_view = []
        for view in (0, 1):
            sigma_mm = collimator_fwhm_mm(max(float(geometry.distance(view, z)), 0.0)) / 2.3548
            reach = max(rx, ry) + 3.5 * sigma_mm + 2 * rows_mm
            r0, r1 = int(np.floor((y - reach) / rows_mm)), int(np.ceil((y + reach) / rows_mm)) + 1
            c0, c1 = int(np.floor((x - reach) / cols_mm)), int(np.ceil((x + reach) / cols_mm)) + 1
            r0c, r1c, c0c, c1c = max(r0, 0), min(r1, shape[0]), max(c0, 0), min(c1, shape[1])
            if r0c >= r1c or c0c >= c1c:
                per_view.append(None)
                continue
            # line integral through the ellipsoid, on a supersampled grid so that 1-2 px blobs keep their mass
            k = supersample
            yy = (np.arange((r1 - r0) * k) + 0.5) / k * rows_mm + r0 * rows_mm - y
            xx = (np.arange((c1 - c0) * k) + 0.5) / k * cols_mm + c0 * cols_mm - x
            cos, sin = np.cos(blob.angle), np.sin(blob.angle)
            u = (xx[None, :] * cos + yy[:, None] * sin) / rx
            v = (-xx[None, :] * sin + yy[:, None] * cos) / ry
            chord = 2.0 * rz * np.sqrt(np.clip(1.0 - u * u - v * v, 0.0, None))
            patch = chord.reshape(r1 - r0, k, c1 - c0, k).mean(axis=(1, 3)) * blob.concentration
            patch *= float(trans[view][iz, iy, ix])
            patch = ndimage.gaussian_filter(patch, (sigma_mm / rows_mm, sigma_mm / cols_mm), mode="constant")
            patch = patch[r0c - r0:r1c - r0, c0c - c0:c1c - c0]
            per_view.append((slice(r0c, r1c), slice(c0c, c1c), patch.astype(np.float32)))
        out.append(per_view)
    return out


def skeleton_map(volume: BodyVolume, trans: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """``(2, ny, nx)`` uint8 bone label per view: the bone that gives each pixel most of its bone counts."""
    labels = np.zeros((2, volume.shape[1], volume.shape[2]), dtype=np.uint8)
    has_bone = volume.bone > 0
    for view in (0, 1):
        weight = np.where(has_bone, volume.uptake * trans[view], -1.0)
        depth = np.argmax(weight, axis=0)
        labels[view] = np.take_along_axis(volume.bone, depth[None], axis=0)[0]
    return labels
