"""Loader options of the paper's datasets: drone read noise, microscopy float_scale and zones."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from driftlab.builtin.cameras import DRONE_GAIN, DRONE_READ_NOISE_ELECTRONS, RAW_DRONE
from driftlab.datasets import DatasetError, RawDataset, Sample
from driftlab.datasets.drone import DRONE
from driftlab.datasets.intensity import simulate_intensity
from driftlab.datasets.microscopy import MICROSCOPY, zone_group
from driftlab.datasets.splits import dataset_folds
from tests.fixtures_zenodo import make_drone
from tests.helpers import builtin_registry

REGISTRY = builtin_registry()

# slide zones: two crops of zone 3, three of zone 7, one of each other; 5 crops per class
STEMS = {
    "Ma190c_lame1_zone3_composite_Mcropped_1": "BAS",
    "Ma190c_lame1_zone3_composite_Mcropped_2": "LYT",
    "Ma190c_lame2_zone7_composite_Mcropped_1": "NGS",
    "Ma190c_lame2_zone7_composite_Mcropped_2": "BAS",
    "Ma190c_lame2_zone7_composite_Mcropped_3": "LYT",
    **{f"Ma190c_lame3_zone{z}_composite_Mcropped_1": c for z, c in
       zip((1, 2, 4, 9, 11, 12, 13, 14, 15, 16), ["NGS", "LYT", "BAS"] * 4, strict=False)},
}  # fmt: skip


def _microscopy(root, stems=STEMS, dtype=np.uint16, scale=65535):
    base = root / "microscopy"
    (base / "labels").mkdir(parents=True)
    (base / "labels" / "labels.txt").write_text("".join(f"{s} {c}\n" for s, c in stems.items()))
    folder = base / "images" / "raw_scale100"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for stem in stems:
        values = rng.uniform(0.1, 0.9, size=(8, 8)) * scale
        tifffile.imwrite(folder / f"{stem}.tiff", values.astype(dtype))
    return root


def test_drone_camera_has_imx183_read_noise_in_16_bit_dn():
    assert DRONE_GAIN == 8.448 and 2.0 <= DRONE_READ_NOISE_ELECTRONS <= 3.0
    assert RAW_DRONE.read_noise == pytest.approx(DRONE_READ_NOISE_ELECTRONS * 8.448)
    assert RAW_DRONE.read_noise == pytest.approx(21.12)
    assert REGISTRY.camera("raw-drone").read_noise == RAW_DRONE.read_noise


class _Dark(RawDataset):
    """One dark drone tile: only the black level, so a lower light level shows read noise alone."""

    def __init__(self, spec):
        super().__init__(spec, 1.0)
        levels = np.reshape(spec.camera.black_level, (2, 2))
        self.raw = np.tile(levels, (32, 32)).astype(np.float32)

    def __len__(self):
        return 1

    @property
    def ids(self):
        return ["dark"]

    def load(self, index):
        return Sample(self.raw, np.zeros(self.raw.shape, np.uint8), {"id": "dark", "group": "d"})


def test_simulated_drone_light_level_carries_read_noise(tmp_path):
    make_drone(tmp_path, frames=1, tiles_per_frame=1, shape=(64, 64), levels=(1.0,))
    tiles = DRONE.open(tmp_path, image_shape=(64, 64), registry=REGISTRY)
    assert tiles.spec.camera.read_noise == pytest.approx(21.12)
    dark = _Dark(tiles.spec)
    low = simulate_intensity(dark, 0.1, seed=3)
    residual = (low[0].raw.astype(np.float64) - dark.raw) * 65535
    # binomial model (a real capture thinned): read noise of sigma * sqrt(1 - r^2) is added
    expected = RAW_DRONE.read_noise * np.sqrt(1 - 0.1**2)
    assert residual.std() == pytest.approx(expected, rel=0.1)


def test_microscopy_float_scale_reads_float_tiffs_on_the_16_bit_scale(tmp_path):
    root = _microscopy(tmp_path, dtype=np.float32)
    with pytest.raises(DatasetError, match="must already be normalised"):
        MICROSCOPY.open(root, image_shape="any", registry=REGISTRY)[0]
    ds = MICROSCOPY.open(root, image_shape="any", float_scale=65535, registry=REGISTRY)
    stored = tifffile.imread(root / "microscopy" / "images" / "raw_scale100" / f"{ds.ids[0]}.tiff")
    np.testing.assert_allclose(ds[0].raw, stored / 65535, rtol=1e-6)
    with pytest.raises(DatasetError, match="option float_scale: expected a positive number"):
        MICROSCOPY.open(root, image_shape="any", float_scale=-1, registry=REGISTRY)


def test_microscopy_group_by_zone_keeps_a_zone_on_one_side_of_every_split(tmp_path):
    root = _microscopy(tmp_path)
    by_image = MICROSCOPY.open(root, image_shape="any", registry=REGISTRY)
    assert by_image.groups == by_image.ids
    by_zone = MICROSCOPY.open(root, image_shape="any", group_by="zone", registry=REGISTRY)
    groups = dict(zip(by_zone.ids, by_zone.groups, strict=True))
    assert groups["Ma190c_lame2_zone7_composite_Mcropped_3"] == "Ma190c_lame2_zone7"
    assert set(by_zone.groups) == {zone_group(i) for i in by_zone.ids}
    assert len(set(by_zone.groups)) == len(by_zone) - 3  # zone 3 holds 2 crops, zone 7 holds 3
    for fold in dataset_folds(by_zone, n_splits=3, seed=0):
        train = {by_zone.groups[i] for i in fold.train}
        test = {by_zone.groups[i] for i in fold.test}
        assert not train & test
    with pytest.raises(DatasetError, match="option group_by: expected one of image, zone"):
        MICROSCOPY.open(root, image_shape="any", group_by="slide", registry=REGISTRY)


def test_zone_of_a_stem_and_stems_without_zone(tmp_path):
    assert zone_group("Ma190c_lame3_zone13_composite_Mcropped_2") == "Ma190c_lame3_zone13"
    assert zone_group("Ma190c_lame3_zone13") == "Ma190c_lame3_zone13"
    assert zone_group("Ma190c_lame3_zone13b_x") is None and zone_group("crop_12") is None
    stems = {**STEMS, "odd_crop_1": "BAS"}
    root = _microscopy(tmp_path, stems=stems)
    with pytest.raises(DatasetError, match=r"odd_crop_1.tiff: file name names no slide zone"):
        MICROSCOPY.open(root, image_shape="any", group_by="zone", registry=REGISTRY)
    kept = MICROSCOPY.open(
        root, image_shape="any", group_by="zone", skip_bad=True, registry=REGISTRY
    )
    assert "odd_crop_1" not in kept.ids and len(kept.skipped) == 1
