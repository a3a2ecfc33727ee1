"""Generic raw collections (``raw-folder``) and DNG metadata through rawpy."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from PIL import Image

from driftlab.builtin.cameras import OPENISP
from driftlab.datasets import DatasetError
from driftlab.datasets.folder import RAW_FOLDER
from driftlab.datasets.splits import dataset_folds
from driftlab.io.raw import RawReadError, read_camera_metadata, read_raw
from driftlab.registry import Registry
from tests.fixtures_zenodo import write_dng
from tests.helpers import builtin_registry

REGISTRY = builtin_registry()

# LibRaw's XYZ(D65) <- linear sRGB matrix, used to turn ColorMatrix1 into camera RGB -> sRGB
XYZ_FROM_SRGB = np.array(
    [[0.412453, 0.357580, 0.180423], [0.212671, 0.715160, 0.072169], [0.019334, 0.119193, 0.950227]]
)


def expected_rgb_from_camera(color_matrix1):
    """Camera RGB -> sRGB as LibRaw derives it from a DNG ColorMatrix1 (rows normalised)."""
    cam_from_srgb = np.reshape(color_matrix1, (3, 3)) @ XYZ_FROM_SRGB
    cam_from_srgb /= cam_from_srgb.sum(axis=1, keepdims=True)
    return np.linalg.inv(cam_from_srgb)


@pytest.mark.parametrize("cfa", ["RGGB", "GRBG", "BGGR", "GBRG"])
def test_dng_fixture_metadata_read_through_rawpy(tmp_path, cfa):
    rng = np.random.default_rng(1)
    data = rng.integers(300, 4000, size=(32, 48)).astype(np.uint16)
    cm = (0.9, -0.3, -0.1, -0.4, 1.3, 0.1, -0.05, 0.2, 0.6)
    path = write_dng(tmp_path / "frame.dng", data, cfa=cfa, color_matrix=cm)
    frame = read_raw(path)
    camera = frame.camera
    assert camera is not None and camera.cfa == cfa
    assert camera.white_level == 4095 and camera.bit_depth == 12 and frame.white_level == 4095
    np.testing.assert_allclose(camera.black_level, np.array([256, 260, 258, 262]) / 4095)
    np.testing.assert_allclose(camera.white_balance, [1 / 0.5, 1.0, 1 / 0.7], rtol=1e-6)
    np.testing.assert_allclose(camera.color_matrix, expected_rgb_from_camera(cm), atol=5e-4)
    np.testing.assert_array_equal(frame.raw, (data / np.float32(4095)).astype(np.float32))
    assert read_camera_metadata(path) == camera


def test_camera_metadata_rejects_non_camera_raw(tmp_path):
    tifffile.imwrite(tmp_path / "a.tif", np.zeros((4, 4), np.uint16))
    with pytest.raises(RawReadError, match="not a camera raw file"):
        read_camera_metadata(tmp_path / "a.tif")
    (tmp_path / "b.dng").write_bytes(b"\x00" * 64)
    with pytest.raises(RawReadError, match=r"b.dng: cannot be read as camera raw"):
        read_camera_metadata(tmp_path / "b.dng")


def write_csv(path, rows):
    path.write_text("file,label\n" + "".join(f"{f},{label}\n" for f, label in rows))


def test_tiff_collection_with_csv_labels_and_named_profile(tmp_path):
    rng = np.random.default_rng(0)
    rows = []
    for i in range(6):
        tifffile.imwrite(tmp_path / f"img{i}.tif", rng.integers(0, 1024, (8, 10), np.uint16))
        rows.append((f"img{i}.tif", ["dog", "cat"][i % 2]))
    tifffile.imwrite(tmp_path / "extra.tif", np.zeros((8, 10), np.uint16))
    write_csv(tmp_path / "labels.csv", rows)
    ds = RAW_FOLDER.open(tmp_path, labels_csv="labels.csv", camera="openisp", registry=REGISTRY)
    assert ds.spec.task == "classification" and ds.spec.classes == ("cat", "dog")
    assert ds.spec.camera == OPENISP and ds.read.bits == 10
    assert ds.labels.tolist() == [1, 0, 1, 0, 1, 0]
    sample = ds[3]
    stored = tifffile.imread(tmp_path / "img3.tif")
    np.testing.assert_array_equal(sample.raw, (stored / np.float32(1023)).astype(np.float32))
    assert sample.meta["class_name"] == "cat" and sample.meta["label_line"] == 5
    assert any("1 raw file(s) not in" in note for note in ds.notes)


def test_npy_and_headerless_raw_with_declared_geometry(tmp_path):
    rng = np.random.default_rng(2)
    a = rng.integers(0, 4096, (6, 8)).astype("<u2")
    a.tofile(tmp_path / "a.raw")
    np.save(tmp_path / "b.npy", a)
    write_csv(tmp_path / "l.csv", [("a.raw", "x"), ("b", "y")])
    with pytest.raises(DatasetError, match=r"headerless .raw files need the options shape"):
        RAW_FOLDER.open(tmp_path, labels_csv="l.csv")
    ds = RAW_FOLDER.open(tmp_path, labels_csv="l.csv", shape="6x8", bits=12)
    np.testing.assert_array_equal(ds[0].raw, ds[1].raw)
    np.testing.assert_allclose(ds[0].raw, a / 4095)
    with pytest.raises(DatasetError, match=r"a.raw: file has 96 bytes, expected 192"):
        RAW_FOLDER.open(tmp_path, labels_csv="l.csv", shape=[8, 12], bits=12)[0]


def test_masks_folder_makes_a_segmentation_dataset(tmp_path):
    images, masks = tmp_path / "img", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    for frame in ("f1", "f2"):
        for tile in range(2):
            stem = f"{frame}_{tile}"
            tifffile.imwrite(images / f"{stem}.tiff", np.full((4, 4), 100 * tile, np.uint16))
            mask = np.zeros((4, 4), np.uint8)
            mask[0, : tile + 1] = 255
            Image.fromarray(mask).save(masks / f"{stem}.png")
    ds = RAW_FOLDER.open(
        tmp_path, images_dir="img", masks_dir="masks", group_regex=r"^(?P<group>.+)_\d+$"
    )
    assert ds.spec.task == "segmentation" and ds.spec.classes == ("background", "object")
    assert ds.groups == ["f1", "f1", "f2", "f2"] and ds.labels is None
    assert ds[1].target.tolist()[0] == [1, 1, 0, 0] and ds[1].target.dtype == np.uint8
    folds = dataset_folds(ds, n_splits=2, seed=0)
    assert sorted(np.array(ds.groups)[f.test][0] for f in folds) == ["f1", "f2"]
    (masks / "f2_1.png").unlink()
    with pytest.raises(DatasetError, match=r"f2_1.tiff: no mask named f2_1.\* in"):
        RAW_FOLDER.open(tmp_path, images_dir="img", masks_dir="masks")


def test_dng_collection_takes_camera_from_metadata(tmp_path):
    rng = np.random.default_rng(3)
    for i in range(2):
        write_dng(tmp_path / f"shot{i}.dng", rng.integers(300, 4000, (32, 32)), cfa="GRBG")
    write_csv(tmp_path / "l.csv", [("shot0.dng", "a"), ("shot1.dng", "b")])
    ds = RAW_FOLDER.open(tmp_path, labels_csv="l.csv", camera="openisp")
    assert ds.spec.camera.cfa == "GRBG" and ds.spec.camera.white_level == 4095
    assert any("camera option ignored" in note for note in ds.notes)
    sample = ds[0]
    assert sample.meta["camera"].name == "file:shot0.dng" and sample.raw.max() <= 1


def test_camera_from_a_config_table_and_unknown_profile(tmp_path):
    np.save(tmp_path / "a.npy", np.zeros((4, 4), np.uint16))
    write_csv(tmp_path / "l.csv", [("a.npy", "x")])
    table = {"cfa": "BGGR", "bit_depth": 14, "white_balance": [2.0, 1.0, 1.5]}
    ds = RAW_FOLDER.open(tmp_path, labels_csv="l.csv", camera=table)
    assert ds.spec.camera.cfa == "BGGR" and ds.spec.camera.white_balance == (2.0, 1.0, 1.5)
    assert ds.read.bits == 14
    with pytest.raises(DatasetError, match=r"unknown camera profile 'opensip' \(did you mean"):
        RAW_FOLDER.open(tmp_path, labels_csv="l.csv", camera="opensip", registry=REGISTRY)
    with pytest.raises(DatasetError, match=r"'openisp' is a profile name.*registry="):
        RAW_FOLDER.open(tmp_path, labels_csv="l.csv", camera="openisp")
    with pytest.raises(DatasetError, match=r"invalid camera table .*cfa"):
        RAW_FOLDER.open(tmp_path, labels_csv="l.csv", camera={"cfa": "XYZW"})


def test_option_errors(tmp_path):
    np.save(tmp_path / "a.npy", np.zeros((4, 4), np.uint16))
    write_csv(tmp_path / "l.csv", [("a.npy", "x")])
    with pytest.raises(DatasetError, match="give exactly one of labels_csv"):
        RAW_FOLDER.open(tmp_path)
    with pytest.raises(DatasetError, match=r"option labels_csv: .*nope.csv does not exist"):
        RAW_FOLDER.open(tmp_path, labels_csv="nope.csv")
    with pytest.raises(DatasetError, match=r"intensity 0.5 was not captured; available levels: 1"):
        RAW_FOLDER.open(tmp_path, intensity=0.5, labels_csv="l.csv")
    with pytest.raises(DatasetError, match=r"option bits: expected an integer 1\.\.16"):
        RAW_FOLDER.open(tmp_path, labels_csv="l.csv", bits=20)
    with pytest.raises(DatasetError, match="option group_regex"):
        RAW_FOLDER.open(tmp_path, labels_csv="l.csv", group_regex="(")
    with pytest.raises(DatasetError, match=r"a.npy: name does not match group_regex"):
        RAW_FOLDER.open(tmp_path, labels_csv="l.csv", group_regex=r"^\d+")


def test_raw_folder_from_the_registry_like_a_config(tmp_path):
    tifffile.imwrite(tmp_path / "a.tif", np.full((4, 4), 65535, np.uint16))
    write_csv(tmp_path / "l.csv", [("a.tif", "x")])
    spec = Registry.load(entry_points=False).get("datasets", "raw-folder")
    options = {"labels_csv": "l.csv", "shape": [4, 4], "bits": 16, "skip_bad": True}
    ds = spec.open(str(tmp_path), **options)
    assert len(ds) == 1 and ds[0].raw.max() == 1.0 and ds.verified
