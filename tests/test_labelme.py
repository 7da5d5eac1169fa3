"""LabelMe JSON: mask -> polygons -> file -> mask round trip, label filtering, bad files."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import ndimage

from msanet_monai.errors import BoneScanError
from msanet_monai.io.labelme import mask_to_polygons, rasterize_polygons, read_labelme_mask, write_labelme


def _random_masks(count: int, shape=(48, 40)):
    rng = np.random.default_rng(7)
    for _ in range(count):
        noise = ndimage.gaussian_filter(rng.random(shape), rng.uniform(0.6, 3.0))
        yield noise > np.quantile(noise, rng.uniform(0.75, 0.97))


def test_round_trip_is_exact_for_random_masks(tmp_path):
    for k, mask in enumerate(_random_masks(60)):
        path = tmp_path / f"m{k}.json"
        write_labelme(path, mask, "image.dcm")
        back = read_labelme_mask(path, shape=mask.shape)
        assert back.dtype == np.uint8
        # LabelMe polygons have no holes: the round trip gives the mask with its holes filled
        np.testing.assert_array_equal(back, ndimage.binary_fill_holes(mask).astype(np.uint8))


def test_single_pixels_lines_and_diagonals(tmp_path):
    mask = np.zeros((12, 12), np.uint8)
    mask[1, 1] = 1  # isolated pixel
    mask[4, 2:9] = 1  # one-pixel-wide line
    for i in range(5):
        mask[6 + i, 2 + i] = 1  # diagonal chain (8-connected)
    assert len(mask_to_polygons(mask)) == 3
    np.testing.assert_array_equal(rasterize_polygons(mask_to_polygons(mask), mask.shape), mask)
    write_labelme(tmp_path / "m.json", mask, "x.dcm")
    np.testing.assert_array_equal(read_labelme_mask(tmp_path / "m.json"), mask)


def test_other_labels_are_not_lesion(tmp_path):
    mask = np.zeros((20, 20), np.uint8)
    mask[2:5, 2:5] = 1
    fracture = [[10.0, 10.0], [14.0, 10.0], [14.0, 14.0], [10.0, 14.0]]
    path = tmp_path / "m.json"
    write_labelme(path, mask, "x.dcm", other_shapes=[("fracture", fracture)])
    document = json.loads(path.read_text())
    assert [s["label"] for s in document["shapes"]] == ["metastasis", "fracture"]
    assert document["imageHeight"] == 20 and document["imagePath"] == "x.dcm" and document["imageData"] is None
    np.testing.assert_array_equal(read_labelme_mask(path), mask)
    only_fracture = read_labelme_mask(path, lesion_labels=("Fracture",))
    assert only_fracture[12, 12] == 1 and only_fracture[3, 3] == 0 and only_fracture.sum() == 25


def test_rectangles_are_read(tmp_path):
    path = tmp_path / "r.json"
    document = {"shapes": [{"label": "metastasis", "shape_type": "rectangle", "points": [[1, 2], [3, 5]]}],
                "imageHeight": 8, "imageWidth": 6}
    path.write_text(json.dumps(document))
    expected = np.zeros((8, 6), np.uint8)
    expected[2:6, 1:4] = 1
    np.testing.assert_array_equal(read_labelme_mask(path), expected)


@pytest.mark.parametrize(
    "content, problem",
    [
        ("{not json", "not a readable LabelMe"),
        ("[1, 2]", "top level"),
        ('{"shapes": []}', "imageHeight"),
        ('{"shapes": [{"label": "metastasis", "shape_type": "circle", "points": [[1, 1], [2, 2]]}],'
         ' "imageHeight": 4, "imageWidth": 4}', "not supported"),
    ],
)
def test_bad_files_name_the_file(tmp_path, content, problem):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(BoneScanError, match=problem) as info:
        read_labelme_mask(path)
    assert str(path) in str(info.value)


def test_size_mismatch_and_missing_file(tmp_path):
    path = tmp_path / "m.json"
    write_labelme(path, np.ones((4, 5), np.uint8), "x.dcm")
    with pytest.raises(BoneScanError, match="does not match"):
        read_labelme_mask(path, shape=(5, 4))
    with pytest.raises(BoneScanError, match="not a readable"):
        read_labelme_mask(tmp_path / "missing.json")
