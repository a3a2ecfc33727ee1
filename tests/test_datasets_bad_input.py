"""Bad input to the raw dataset loaders: each gets a clear error, or is skipped and reported."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from driftlab.datasets import DatasetError
from driftlab.datasets.drone import DRONE
from driftlab.datasets.files import read_mask
from driftlab.datasets.folder import RAW_FOLDER
from driftlab.datasets.microscopy import MICROSCOPY
from tests.fixtures_zenodo import make_drone, make_microscopy
from tests.helpers import builtin_registry

REGISTRY = builtin_registry()

SHAPE = (16, 16)


@pytest.fixture
def micro(tmp_path):
    return make_microscopy(tmp_path, shape=SHAPE, levels=(1.0, 0.5))


@pytest.fixture
def drone(tmp_path):
    return make_drone(tmp_path, frames=2, tiles_per_frame=2, shape=SHAPE, levels=(1.0,))


def open_micro(fx, **options):
    return MICROSCOPY.open(fx.root, image_shape=SHAPE, **options, registry=REGISTRY)


def truncate(path, keep=0.5):
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def test_truncated_tiff_raises_on_load_and_is_skipped_with_skip_bad(micro):
    victim = micro.image(sorted(micro.kept)[4])
    truncate(victim)
    ds = open_micro(micro)
    index = ds.ids.index(victim.stem)
    with pytest.raises(DatasetError, match=rf"{victim}: corrupt or truncated TIFF"):
        ds[index]
    ds[index - 1]  # the others still load
    skipped = open_micro(micro, skip_bad=True)
    assert len(skipped) == 14 and victim.stem not in skipped.ids
    assert len(skipped.skipped) == 1 and str(victim) in skipped.skipped[0]
    assert all(skipped[i].raw.shape == SHAPE for i in range(len(skipped)))


def test_tiff_cut_inside_its_header(micro):
    victim = micro.image(sorted(micro.kept)[0])
    truncate(victim, keep=0.0)
    victim.write_bytes(b"II*\x00\x08\x00\x00\x00")
    with pytest.raises(DatasetError, match=rf"{victim}: corrupt or truncated TIFF"):
        open_micro(micro)[0]


def test_garbage_file_named_tiff(micro):
    victim = micro.image(sorted(micro.kept)[1])
    victim.write_bytes(b"this is not an image" * 50)
    with pytest.raises(DatasetError, match=rf"{victim}: corrupt or truncated TIFF"):
        open_micro(micro)[1]


def test_wrong_bit_depth(micro):
    victim = micro.image(sorted(micro.kept)[0])
    tifffile.imwrite(victim, np.full(SHAPE, 200, np.uint8))
    with pytest.raises(DatasetError, match=rf"{victim}: stores 8-bit samples .* wrong bit depth"):
        open_micro(micro)[0]
    ds = open_micro(micro, skip_bad=True)
    assert "wrong bit depth" in ds.skipped[0]


@pytest.mark.parametrize(
    ("array", "message"),
    [
        (np.zeros((32, 16), np.uint16), "raw image is 32x16, expected 16x16"),
        (np.zeros((15, 16), np.uint16), "height and width must be even"),
        (np.zeros((16, 16, 3), np.uint16), "single-channel 2-D Bayer mosaic"),
    ],
)
def test_wrong_shape(micro, array, message):
    victim = micro.image(sorted(micro.kept)[0])
    tifffile.imwrite(victim, array)
    with pytest.raises(DatasetError, match=rf"{victim}: .*{message}"):
        open_micro(micro)[0]


def test_published_shape_is_enforced_by_default(micro):
    with pytest.raises(DatasetError, match="raw image is 16x16, expected 256x256"):
        MICROSCOPY.open(micro.root, registry=REGISTRY)[0]
    with pytest.raises(DatasetError, match="image_shape: expected two positive integers"):
        MICROSCOPY.open(micro.root, image_shape=[16], registry=REGISTRY)


def test_malformed_label_line_names_file_and_line(micro):
    lines = micro.label_file.read_text().splitlines()
    lines.insert(3, "Ma190c_lame9_zone99 BAS extra-token")
    micro.label_file.write_text("\n".join(lines) + "\n")
    with pytest.raises(DatasetError, match=rf"{micro.label_file}:4: malformed label line"):
        open_micro(micro)
    ds = open_micro(micro, skip_bad=True)
    assert len(ds) == 15 and ds.skipped == [
        f"{micro.label_file}:4: malformed label line 'Ma190c_lame9_zone99 BAS extra-token'; "
        "expected '<file stem> <CLASS>'"
    ]


def test_unknown_class_names_file_line_and_known_classes(micro):
    with micro.label_file.open("a") as f:
        f.write("Ma190c_lame1_zone77 XYZ\n")
    n = len(micro.labels) + 1
    with pytest.raises(DatasetError, match=rf"labels.txt:{n}: unknown class 'XYZ'.*BAS, EBO"):
        open_micro(micro)
    assert "unknown class 'XYZ'" in open_micro(micro, skip_bad=True).skipped[0]


def test_duplicate_label_entry(micro):
    stem = sorted(micro.kept)[0]
    with micro.label_file.open("a") as f:
        f.write(f"{stem} LYT\n")
    with pytest.raises(DatasetError, match=rf"{stem} is labelled again \(first at .*labels.txt:"):
        open_micro(micro)


def test_no_label_file(micro):
    micro.label_file.unlink()
    with pytest.raises(DatasetError, match=r"labels/\*\.txt: not found .*zenodo"):
        open_micro(micro)


def test_missing_image_for_a_label_entry(micro):
    stem = sorted(micro.kept)[5]
    micro.image(stem, 0.5).unlink()
    assert len(open_micro(micro)) == 15  # level 1.0 is complete
    with pytest.raises(DatasetError, match=rf"raw_scale050/{stem}.tiff: missing image for label"):
        open_micro(micro, intensity=0.5)
    assert len(open_micro(micro, intensity=0.5, skip_bad=True)) == 14


def test_empty_level_folder(micro):
    for path in micro.image(sorted(micro.kept)[0], 0.5).parent.iterdir():
        path.unlink()
    with pytest.raises(DatasetError, match=r"raw_scale050: empty folder"):
        open_micro(micro, intensity=0.5, skip_bad=True)


def test_nothing_left_after_skipping(micro):
    for stem in micro.kept:
        truncate(micro.image(stem))
    with pytest.raises(
        DatasetError, match=r"no usable items at intensity 1.0; 15 skipped: .*trunc"
    ):
        open_micro(micro, skip_bad=True)


def test_skipped_files_reported_as_count_first_few_and_a_listing_file(micro):
    for stem in micro.kept:
        truncate(micro.image(stem))
    with pytest.raises(DatasetError) as info:
        open_micro(micro, skip_bad=True)
    message = str(info.value)
    assert "15 skipped:" in message and message.count("truncated TIFF") == 5
    listing = re.search(r"all 15 listed in (\S+)$", message)
    assert listing is not None, message
    lines = Path(listing.group(1)).read_text().splitlines()
    assert len(lines) == 15 and all("truncated TIFF" in line for line in lines)
    Path(listing.group(1)).unlink()


def test_drone_image_mask_size_mismatch(drone):
    stem = sorted(drone.tiles)[1]
    Image.fromarray(np.ones((8, 16), bool)).save(drone.mask(stem))
    ds = DRONE.open(drone.root, image_shape=SHAPE, registry=REGISTRY)
    with pytest.raises(DatasetError, match=rf"{drone.mask(stem)}: mask is 8x16 but its raw image"):
        ds[1]
    skipped = DRONE.open(drone.root, image_shape=SHAPE, skip_bad=True, registry=REGISTRY)
    assert len(skipped) == 3 and "mask is 8x16" in skipped.skipped[0]


def test_drone_tile_without_mask_and_mask_without_tile(drone):
    stem = sorted(drone.tiles)[0]
    drone.mask(stem).rename(drone.mask(stem).with_name("09_00001.png"))
    with pytest.raises(DatasetError, match=rf"{drone.tile(stem)}: no mask .*{stem}.png"):
        DRONE.open(drone.root, image_shape=SHAPE, registry=REGISTRY)
    ds = DRONE.open(drone.root, image_shape=SHAPE, skip_bad=True, registry=REGISTRY)
    assert len(ds) == 3
    assert any("09_00001.png: mask without a raw image" in s for s in ds.skipped)


def test_drone_tile_name_without_frame(drone):
    stem = sorted(drone.tiles)[0]
    drone.tile(stem).rename(drone.tile(stem).with_name("tileA.tif"))
    drone.mask(stem).rename(drone.mask(stem).with_name("tileA.png"))
    with pytest.raises(DatasetError, match=r"tileA.tif: tile name does not end in '_<tile index>'"):
        DRONE.open(drone.root, image_shape=SHAPE, registry=REGISTRY)


def test_corrupt_mask(drone):
    stem = sorted(drone.tiles)[2]
    truncate(drone.mask(stem), keep=0.3)
    with pytest.raises(DatasetError, match=rf"{drone.mask(stem)}: corrupt or truncated mask"):
        DRONE.open(drone.root, image_shape=SHAPE, registry=REGISTRY)[2]


def test_read_mask_accepts_rgb_and_palette_and_rejects_missing(tmp_path):
    rgb = np.zeros((4, 6, 3), np.uint8)
    rgb[1, 2, 0] = 255
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    mask = read_mask(tmp_path / "rgb.png")
    assert mask.shape == (4, 6) and mask.sum() == 1 and mask[1, 2] == 1
    rgba = np.zeros((4, 6, 4), np.uint8)
    rgba[..., 3] = 255  # opaque alpha must not count as object
    Image.fromarray(rgba).save(tmp_path / "rgba.png")
    assert read_mask(tmp_path / "rgba.png").sum() == 0
    with pytest.raises(DatasetError, match="mask file not found"):
        read_mask(tmp_path / "none.png")


def test_raw_folder_empty_folder(tmp_path):
    (tmp_path / "labels.csv").write_text("file,label\n")
    (tmp_path / "notes.txt").write_text("not raw")
    with pytest.raises(DatasetError, match=rf"{tmp_path}: empty folder: no raw files"):
        RAW_FOLDER.open(tmp_path, labels_csv="labels.csv")


def test_raw_folder_bad_csv_rows(tmp_path):
    for name in ("a", "b", "c"):
        np.save(tmp_path / f"{name}.npy", np.zeros((4, 4), np.uint16))
    (tmp_path / "labels.csv").write_text("file,label\na.npy,cat\nb.npy\nzzz.npy,dog\nc,cow\n")
    with pytest.raises(DatasetError, match=r"labels.csv:3: expected 2 columns, got 1"):
        RAW_FOLDER.open(tmp_path, labels_csv="labels.csv")
    ds = RAW_FOLDER.open(tmp_path, labels_csv="labels.csv", skip_bad=True)
    assert ds.ids == ["a", "c"] and ds.spec.classes == ("cat", "cow")
    assert any("labels.csv:4: raw file" in s and "zzz.npy not found" in s for s in ds.skipped)
    (tmp_path / "labels.csv").write_text("file,label\na.npy,cat\nc,cow\n")
    with pytest.raises(DatasetError, match=r"labels.csv:3: unknown class 'cow'; classes: cat, dog"):
        RAW_FOLDER.open(tmp_path, labels_csv="labels.csv", classes=["cat", "dog"])


def test_raw_folder_csv_without_header(tmp_path):
    np.save(tmp_path / "a.npy", np.zeros((4, 4), np.uint16))
    (tmp_path / "labels.csv").write_text("a.npy,cat\n")
    with pytest.raises(DatasetError, match=r"labels.csv:1: header must name the columns"):
        RAW_FOLDER.open(tmp_path, labels_csv="labels.csv")
