"""Raw-Microscopy and Raw-Drone loaders on generated copies of the Zenodo layout."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from PIL import Image

from driftlab.builtin.cameras import RAW_DRONE, RAW_MICROSCOPY
from driftlab.datasets import DatasetError
from driftlab.datasets.drone import DRONE, tile_group
from driftlab.datasets.microscopy import CLASSES, MICROSCOPY
from driftlab.datasets.splits import dataset_folds
from driftlab.registry import Registry
from tests.fixtures_zenodo import LEVEL_FOLDERS, make_drone, make_microscopy
from tests.helpers import builtin_registry

REGISTRY = builtin_registry()


@pytest.fixture(scope="module")
def registry():
    return Registry.load(entry_points=False)


def test_builtin_plugin_declares_the_datasets_with_the_authors_cameras(registry):
    assert {"raw-microscopy", "raw-drone", "raw-folder"} <= set(registry.names("datasets"))
    micro = registry.get("datasets", "raw-microscopy")
    drone = registry.get("datasets", "raw-drone")
    # datasets name their camera profile; the registry resolves it when they are opened
    assert micro.camera == "raw-microscopy" and drone.camera == "raw-drone"
    assert micro.resolve_camera(registry) is RAW_MICROSCOPY
    assert drone.resolve_camera(registry) is RAW_DRONE
    assert micro.classes == ("BAS", "EOS", "KSC", "LYA", "LYT", "MON", "NGB", "NGS", "UNC")
    assert micro.task == "classification" and drone.task == "segmentation"
    assert micro.intensities == (1.0, 0.75, 0.5, 0.25, 0.1, 0.05, 0.01)
    assert micro.checker is not None and drone.checker is not None


@pytest.mark.parametrize("level", list(LEVEL_FOLDERS))
def test_microscopy_every_level_reads_the_right_folder(microscopy_copy, level):
    ds = MICROSCOPY.open(microscopy_copy.root, intensity=level, registry=REGISTRY)
    assert len(ds) == 15
    assert ds.ids == sorted(microscopy_copy.kept)
    sample = ds[3]
    stem = sample.meta["id"]
    stored = tifffile.imread(microscopy_copy.image(stem, level))
    assert sample.raw.dtype == np.float32 and sample.raw.shape == (256, 256)
    np.testing.assert_array_equal(sample.raw, (stored / np.float32(65535)).astype(np.float32))
    assert sample.raw.min() >= 0.0 and sample.raw.max() <= 1.0
    assert sample.meta["path"].endswith(f"{LEVEL_FOLDERS[level]}/{stem}.tiff")
    assert sample.meta["intensity"] == level and sample.meta["group"] == stem
    assert CLASSES[sample.target] == microscopy_copy.labels[stem]


def test_microscopy_classes_filtered_as_in_the_paper(microscopy_copy):
    ds = MICROSCOPY.open(microscopy_copy.root, registry=REGISTRY)
    counts = np.bincount(ds.labels, minlength=len(CLASSES))
    assert dict(zip(CLASSES, counts.tolist(), strict=True)) == {
        "BAS": 5, "EOS": 0, "KSC": 0, "LYA": 0, "LYT": 5, "MON": 0, "NGB": 0, "NGS": 5, "UNC": 0,
    }  # fmt: skip
    notes = " ".join(ds.notes)
    assert "class MON: 2" in notes and "rare" in notes
    assert "class MYB: 1" in notes
    assert ds.skipped == []


def test_microscopy_lower_light_is_darker(microscopy_copy):
    means = [
        MICROSCOPY.open(microscopy_copy.root, intensity=v, registry=REGISTRY)[0].raw.mean()
        for v in (1, 0.1)
    ]
    assert means[1] < 0.2 * means[0]


def test_microscopy_accepts_the_microscopy_folder_itself(microscopy_copy):
    ds = MICROSCOPY.open(microscopy_copy.root / "microscopy", intensity=0.25, registry=REGISTRY)
    assert len(ds) == 15


def test_microscopy_uncaptured_level_names_the_available_ones(microscopy_copy):
    with pytest.raises(DatasetError, match=r"0\.3 was not captured; available levels: 1, 0\.75"):
        MICROSCOPY.open(microscopy_copy.root, intensity=0.3, registry=REGISTRY)


def test_microscopy_missing_copy_says_where_to_get_it(tmp_path):
    with pytest.raises(DatasetError, match=r"microscopy.*not found.*10\.5281/zenodo\.5235536"):
        MICROSCOPY.open(tmp_path, registry=REGISTRY)
    with pytest.raises(DatasetError, match="--data-root"):
        MICROSCOPY.open(None, registry=REGISTRY)


def test_microscopy_missing_level_folder_is_named(tmp_path):
    make_microscopy(tmp_path, shape=(8, 8), levels=(1.0, 0.5))
    with pytest.raises(DatasetError, match=r"images/raw_scale025: not found"):
        MICROSCOPY.open(tmp_path, intensity=0.25, image_shape=[8, 8], registry=REGISTRY)


def test_microscopy_authors_invalid_image_is_left_out(tmp_path):
    fx = make_microscopy(tmp_path, shape=(8, 8), levels=(1.0,))
    stem = "Ma190c_lame3_zone13_composite_Mcropped_2"
    with fx.label_file.open("a") as f:
        f.write(f"{stem} BAS\n")
    tifffile.imwrite(fx.image(stem), np.zeros((8, 8), np.uint16))
    ds = MICROSCOPY.open(tmp_path, image_shape="8x8", registry=REGISTRY)
    assert stem not in ds.ids and len(ds) == 15
    assert any("marked invalid by the authors" in n for n in ds.notes)


def test_microscopy_label_lines_may_carry_the_suffix_and_dat_files(tmp_path):
    fx = make_microscopy(tmp_path, shape=(8, 8), levels=(1.0,))
    lines = fx.label_file.read_text().splitlines()
    fx.label_file.unlink()
    dat = fx.label_file.with_name("Ma190c_annotations.dat")
    dat.write_text("\n".join(line.replace(" ", ".tiff   ", 1) for line in lines) + "\n\n")
    ds = MICROSCOPY.open(tmp_path, image_shape=(8, 8), registry=REGISTRY)
    assert len(ds) == 15 and ds[0].meta["label_file"] == str(dat)


def test_microscopy_folds_stratified_by_class(microscopy_copy):
    ds = MICROSCOPY.open(microscopy_copy.root, registry=REGISTRY)
    folds = dataset_folds(ds, n_splits=5, seed=7)
    for fold in folds:
        assert np.bincount(ds.labels[fold.test], minlength=9).tolist() == [
            1, 0, 0, 0, 1, 0, 0, 1, 0,
        ]  # fmt: skip
    low = MICROSCOPY.open(microscopy_copy.root, intensity=0.05, registry=REGISTRY)
    assert [f.test_ids for f in dataset_folds(low, seed=7)] == [f.test_ids for f in folds]


def test_tile_group_from_the_authors_tile_names():
    assert tile_group("03_00012") == "03"
    assert tile_group("frame_a_7") == "frame_a"
    assert tile_group("00012") is None
    assert tile_group("03_tile") is None


@pytest.mark.parametrize("level", [1.0, 0.5, 0.01])
def test_drone_tiles_with_masks_and_frame_groups(drone_copy, level):
    ds = DRONE.open(drone_copy.root, intensity=level, registry=REGISTRY)
    assert len(ds) == 6 and ds.labels is None
    assert ds.groups == ["00", "00", "01", "01", "02", "02"]
    sample = ds[2]
    stem = sample.meta["id"]
    stored = tifffile.imread(drone_copy.tile(stem, level))
    np.testing.assert_array_equal(sample.raw, (stored / np.float32(65535)).astype(np.float32))
    expected = (np.asarray(Image.open(drone_copy.mask(stem))) > 0).astype(np.uint8)
    assert sample.target.dtype == np.uint8 and set(np.unique(sample.target)) == {0, 1}
    np.testing.assert_array_equal(sample.target, expected)
    assert sample.meta["group"] == drone_copy.tiles[stem]
    assert LEVEL_FOLDERS[level] in sample.meta["path"]


def test_drone_full_frames(drone_copy):
    ds = DRONE.open(drone_copy.root, frames="full", image_shape="any", registry=REGISTRY)
    assert ds.ids == ["00", "01", "02"] and ds.groups == ["00", "01", "02"]
    sample = ds[1]
    assert sample.raw.shape == (64, 96) == sample.target.shape
    assert sample.target[4:20, 10:40].all() and sample.target.sum() == 16 * 30
    with pytest.raises(DatasetError, match=r"expected 3648x5472"):
        DRONE.open(drone_copy.root, frames="full", registry=REGISTRY)[0]
    with pytest.raises(DatasetError, match=r"images_full/raw_scale050: not found.*zenodo"):
        DRONE.open(
            drone_copy.root, intensity=0.5, frames="full", image_shape="any", registry=REGISTRY
        )
    with pytest.raises(DatasetError, match="frames must be one of"):
        DRONE.open(drone_copy.root, frames="tiled", registry=REGISTRY)


def test_drone_float_tiles_on_the_16_bit_scale(tmp_path):
    fx = make_drone(tmp_path, frames=2, tiles_per_frame=1, shape=(8, 8), levels=(1.0,))
    stem = sorted(fx.tiles)[0]
    stored = tifffile.imread(fx.tile(stem)).astype(np.float32)
    Image.fromarray(stored, mode="F").save(fx.tile(stem))  # as the authors' tiling wrote them
    assert tifffile.imread(fx.tile(stem)).dtype == np.float32
    sample = DRONE.open(tmp_path, image_shape=(8, 8), registry=REGISTRY)[0]
    np.testing.assert_allclose(sample.raw, stored / 65535, rtol=0, atol=1e-7)


def test_drone_folds_never_split_a_frame(drone_copy):
    ds = DRONE.open(drone_copy.root, registry=REGISTRY)
    folds = dataset_folds(ds, n_splits=3, seed=1)
    groups = np.array(ds.groups)
    for fold in folds:
        assert not set(groups[fold.train]) & set(groups[fold.test])
        assert len(set(groups[fold.test])) == 1
    with pytest.raises(DatasetError, match=r"raw-drone: cannot make 5 folds from 3 group"):
        dataset_folds(ds, n_splits=5)


def test_checkers_pass_on_a_complete_copy(microscopy_copy, drone_copy):
    assert MICROSCOPY.checker(MICROSCOPY, microscopy_copy.root) == []
    assert DRONE.checker(DRONE, drone_copy.root) == []


def test_checker_reports_every_missing_file_at_every_level(tmp_path):
    fx = make_microscopy(tmp_path, shape=(8, 8))
    stem = sorted(fx.kept)[2]
    fx.image(stem, 0.05).unlink()
    fx.image(stem, 0.75).unlink()
    problems = MICROSCOPY.checker(MICROSCOPY, tmp_path)
    assert len(problems) == 2
    assert str(fx.image(stem, 0.75)) in problems[0] and str(fx.image(stem, 0.05)) in problems[1]
    assert f"{fx.label_file}:" in problems[0]


def test_drone_checker_reports_missing_full_frames(tmp_path):
    fx = make_drone(tmp_path, frames=2, tiles_per_frame=1, shape=(8, 8), levels=(1.0,))
    (fx.root / "drone" / "masks_full" / "01.png").unlink()
    problems = DRONE.checker(DRONE, tmp_path)
    assert any("raw_scale075: not found" in p for p in problems)
    assert any("images_full/raw_scale100/01.tif: no mask" in p for p in problems)


def test_drone_full_frame_masks_may_carry_a_prefix(tmp_path):
    fx = make_drone(tmp_path, frames=2, tiles_per_frame=1, shape=(8, 8), levels=(1.0,))
    masks = fx.root / "drone" / "masks_full"
    (masks / "00.png").rename(masks / "mask_00.png")
    (masks / "01.png").rename(masks / "010.png")  # "01" is not a token of "010"
    ds = DRONE.open(tmp_path, frames="full", image_shape="any", skip_bad=True, registry=REGISTRY)
    assert ds.ids == ["00"] and ds[0].meta["mask_path"].endswith("mask_00.png")
    assert any("01.tif: no mask" in s for s in ds.skipped)
