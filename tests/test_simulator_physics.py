"""The 3-D simulator behaves like a gamma camera looking at a body: depth, attenuation, blur, labels."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage

from msanet_monai.datalist import load_datalist
from msanet_monai.synthetic import simulate_patient
from msanet_monai.synthetic.body import BONE_LABELS, BodyVolume
from msanet_monai.synthetic.camera import Blob, ViewGeometry, project_volume, render_blobs


def _slab_volume() -> BodyVolume:
    """A 20 cm thick soft-tissue trunk, 64 x 32 voxels in-plane, its back on the table."""
    volume = BodyVolume((40, 64, 32), (8.0, 4.52, 4.52))
    volume.trunk([0.0, 64 * 4.52], [60.0, 60.0], [100.0, 100.0], center_x=16 * 4.52, table_z=300.0)
    return volume


def test_a_deep_lesion_is_fainter_and_wider_in_the_far_view():
    volume = _slab_volume()
    geometry = ViewGeometry(anterior_z=80.0, posterior_z=320.0)
    _, trans = project_volume(volume, geometry, 0.16, np.ones(volume.shape[1:], dtype=np.float32))
    near_back = Blob((16 * 4.52, 32 * 4.52, 280.0), (4.0, 4.0, 4.0), 0.0, 50.0)
    near_front = Blob((16 * 4.52, 32 * 4.52, 115.0), (4.0, 4.0, 4.0), 0.0, 50.0)
    (back_ant, back_post), (front_ant, front_post) = render_blobs(
        [near_back, near_front], (128, 64), (2.26, 2.26), volume, trans, geometry)
    # attenuation: ~17 cm of water between the back lesion and the anterior head
    assert back_post[2].sum() > 5 * back_ant[2].sum()
    assert front_ant[2].sum() > 5 * front_post[2].sum()
    # depth-dependent collimator blur: the far view spreads the same lesion over more pixels
    def width(patch):
        p = patch[2]
        return int((p >= 0.5 * p.max()).sum())
    assert width(back_ant) > width(back_post) and width(front_post) > width(front_ant)


def test_spine_brighter_from_behind_sternum_from_the_front():
    scan = simulate_patient(42, 3)
    anterior = scan.counts["anterior"].astype(float)
    posterior = scan.counts["posterior"][:, ::-1].astype(float)  # in the anterior orientation, pixel by pixel
    ratio = {}
    for name in ("thoracic spine", "lumbar spine", "sternum", "clavicles"):
        where = scan.skeleton["anterior"] == BONE_LABELS[name]
        ratio[name] = anterior[where].mean() / posterior[where].mean()
    # the spine lies near the back: the posterior head sees it brighter; sternum and clavicles are
    # front bones (superimposed on the spine from behind), so their anterior share is larger
    assert ratio["thoracic spine"] < 0.8 and ratio["lumbar spine"] < 0.8, ratio
    assert min(ratio["sternum"], ratio["clavicles"]) > 1.3 * max(ratio["thoracic spine"], ratio["lumbar spine"]), ratio
    # the skeleton map names every bone region in both views
    for view in ("anterior", "posterior"):
        assert set(np.unique(scan.skeleton[view])) == {0, *BONE_LABELS.values()}


@pytest.mark.parametrize("index", [1, 2, 4, 5])
def test_labelled_metastases_are_hot_spots(index):
    scan = simulate_patient(42, index)
    for view in ("anterior", "posterior"):
        mask = scan.masks[view].astype(bool)
        if not mask.any():
            continue
        counts = ndimage.gaussian_filter(scan.counts[view].astype(float), 1.0)
        labels, n = ndimage.label(mask)
        hot = 0
        for k in range(1, n + 1):
            region = labels == k
            ring = ndimage.binary_dilation(region, iterations=4) & ~ndimage.binary_dilation(mask, iterations=1)
            hot += counts[region].mean() > counts[ring].mean()
        assert hot >= 0.8 * n, f"{scan.patient_id} {view}: {hot} of {n} labelled lesions brighter than around them"


def test_other_camera_matrix_images_the_same_body():
    standard = simulate_patient(42, 6)
    fine = simulate_patient(42, 6, shape=(2048, 512), pixel_spacing=(1.13, 1.13))
    assert fine.counts["anterior"].shape == (2048, 512) and fine.skeleton["anterior"].shape == (2048, 512)

    def body_length_mm(counts, spacing):
        rows = np.nonzero(ndimage.uniform_filter1d(counts.sum(axis=1).astype(float), 9) > 0)[0]
        return (rows[-1] - rows[0]) * spacing
    assert body_length_mm(fine.counts["anterior"], 1.13) == pytest.approx(
        body_length_mm(standard.counts["anterior"], 2.26), rel=0.03)
    assert abs(fine.total_counts - standard.total_counts) < 1e-6 * standard.total_counts


def test_planar_simulator_is_the_baseline_and_names_are_checked():
    planar = simulate_patient(42, 1, simulator="planar")
    assert planar.skeleton is None and planar.counts["anterior"].shape == (1024, 256)
    assert not np.array_equal(planar.counts["anterior"], simulate_patient(42, 1).counts["anterior"])
    with pytest.raises(ValueError, match="simulator must be one of"):
        simulate_patient(42, 1, simulator="cartoon")


def test_generated_set_has_skeleton_maps_in_file_orientation(synthetic_dataset):
    items = load_datalist(synthetic_dataset, "training")
    for item in items[:4]:
        skeleton = np.asarray(nib.load(item["skeleton"]).dataobj)
        label = np.asarray(nib.load(item["label"]).dataobj)
        assert skeleton.shape == label.shape
        assert set(np.unique(skeleton)) <= {0, *BONE_LABELS.values()} and (skeleton > 0).mean() > 0.05
        scan = simulate_patient(42, int(item["patient_id"][3:]))
        expected = scan.skeleton[item["view"]]
        # the NIfTI writer stores (rows, cols) as the file's (x, y) voxel order
        assert np.array_equal(skeleton.reshape(-1), expected.T.reshape(-1)) or np.array_equal(
            skeleton.reshape(expected.shape), expected)


def test_bladder_at_the_hip_joints_and_hands_beside_the_hips():
    """Where a supine patient's bladder and hands appear, as on the real NM1 scan (generator version 5)."""
    for index in (1, 2, 3, 4):
        scan = simulate_patient(42, index)
        skeleton = scan.skeleton["anterior"]

        def rows(name: str) -> np.ndarray:
            return np.nonzero((skeleton == BONE_LABELS[name]).any(axis=1))[0]

        femoral_head_top = rows("femora")[0]
        bladder = [np.asarray(points)[:, 1].mean() for kind, points in scan.look_alikes["anterior"] if kind == "bladder"]
        assert len(bladder) == 1
        # the bladder rests on the symphysis: its centre at the level of the hip joints (femoral heads are
        # ~10 rows tall); with the centre just above the pubis it sat 17-21 rows below the heads' top
        assert femoral_head_top <= bladder[0] <= femoral_head_top + 15, (index, bladder[0], femoral_head_top)
        # bent elbows bring the hands up beside the hips: the hands begin above the bottom of the pelvis + 12
        assert rows("hands")[0] < rows("pelvis")[-1] + 12, index
