"""BCCD loader: VOC parsing, crops and WBC masks, bad-file handling, real subset when present."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from driftlab.datasets.base import DatasetError
from driftlab.datasets.bccd import (
    BCCD_CELLS,
    BCCD_WBC,
    CELL_CLASSES,
    BCCDError,
    VocBox,
    check_bccd,
    rasterise_boxes,
    scan_bccd,
)
from driftlab.datasets.intensity import SimulatedIntensity
from driftlab.registry import Registry

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "bccd"

# stem -> list of (label, xmin, ymin, xmax, ymax); images are 160 x 120
FIXTURE = {
    "BloodImage_00001": [("WBC", 40, 30, 90, 80), ("RBC", 100, 10, 130, 40), ("Platelets", 5, 90, 15, 100)],
    "BloodImage_00007": [("RBC", 0, 0, 30, 28), ("RBC", 120, 80, 160, 120), ("WBC", 100, 50, 150, 100)],
    "BloodImage_00012": [("RBC", 60, 60, 90, 90)],
}  # fmt: skip
WIDTH, HEIGHT = 160, 120


def _xml(filename: str, objects, width=WIDTH, height=HEIGHT) -> str:
    parts = [
        "<annotation>",
        "<folder>JPEGImages</folder>",
        f"<filename>{filename}</filename>",
        f"<size><width>{width}</width><height>{height}</height><depth>3</depth></size>",
    ]
    for label, x0, y0, x1, y1 in objects:
        parts.append(
            f"<object><name>{label}</name><pose>Unspecified</pose><truncated>0</truncated>"
            f"<difficult>0</difficult><bndbox><xmin>{x0}</xmin><ymin>{y0}</ymin>"
            f"<xmax>{x1}</xmax><ymax>{y1}</ymax></bndbox></object>"
        )
    parts.append("</annotation>")
    return "\n".join(parts)


def _jpeg(path: Path, objects, size=(WIDTH, HEIGHT)) -> None:
    image = np.empty((size[1], size[0], 3), dtype=np.uint8)
    image[:] = (225, 215, 205)
    colours = {"WBC": (120, 80, 170), "RBC": (220, 140, 140), "Platelets": (150, 110, 190)}
    for label, x0, y0, x1, y1 in objects:
        image[y0:y1, x0:x1] = colours.get(label, (0, 0, 0))
    Image.fromarray(image).save(path, quality=95)


def write_bccd(root: Path, fixture=FIXTURE, *, image_sets=None) -> Path:
    (root / "Annotations").mkdir(parents=True)
    (root / "JPEGImages").mkdir()
    for stem, objects in fixture.items():
        (root / "Annotations" / f"{stem}.xml").write_text(_xml(f"{stem}.jpg", objects))
        _jpeg(root / "JPEGImages" / f"{stem}.jpg", objects)
    if image_sets:
        (root / "ImageSets").mkdir()
        for name, stems in image_sets.items():
            (root / "ImageSets" / f"{name}.txt").write_text("\n".join(stems) + "\n")
    return root


@pytest.fixture
def bccd(tmp_path):
    return write_bccd(tmp_path / "bccd")


def test_max_per_class_per_image_caps_the_majority_class(bccd):
    ds = BCCD_CELLS.open(bccd, crop_size=32, max_per_class_per_image=1)
    assert ds.class_counts() == {"WBC": 2, "RBC": 3, "Platelets": 1}


def test_cells_crops_labels_groups_and_ids(bccd):
    ds = BCCD_CELLS.open(bccd, crop_size=32, scale=0.5)
    assert len(ds) == 7
    assert ds.class_counts() == {"WBC": 2, "RBC": 4, "Platelets": 1}
    assert ds.labels.tolist() == [
        CELL_CLASSES.index(o[0]) for objs in FIXTURE.values() for o in objs
    ]
    assert len(set(ds.ids)) == len(ds)
    assert ds.groups == [stem for stem, objs in FIXTURE.items() for _ in objs]
    sample = ds[0]
    assert sample.raw.shape == (32, 32) and sample.raw.dtype == np.float32
    assert sample.raw.min() >= 0.0 and sample.raw.max() <= 1.0
    assert sample.target == CELL_CLASSES.index("WBC")
    assert sample.meta["group"] == "BloodImage_00001"
    assert sample.meta["id"] == ds.ids[0]


def test_crops_are_centred_on_the_cell_and_shifted_inside_at_the_border(bccd):
    ds = BCCD_CELLS.open(bccd, crop_size=32, scale=0.5)  # window of 64 original pixels
    assert ds.window == 64
    x0, y0 = ds.origin(0)  # WBC centred at (65, 55)
    assert (x0, y0) == (33, 23)
    x0, y0 = ds.origin(3)  # RBC in the top-left corner: window clamped to the image
    assert (x0, y0) == (0, 0)
    x0, y0 = ds.origin(4)  # RBC in the bottom-right corner
    assert (x0, y0) == (WIDTH - 64, HEIGHT - 64)


def test_wbc_crop_shows_the_stained_cell(bccd):
    ds = BCCD_CELLS.open(bccd, crop_size=32, scale=0.5, noise=False)
    wbc, rbc = ds[0].raw, ds[1].raw
    # the purple WBC absorbs green: green CFA sites (RGGB: (0, 1)) are darker than on an RBC
    assert wbc[8:24:2, 9:24:2].mean() < rbc[8:24:2, 9:24:2].mean()


def test_loading_is_deterministic_and_seeded(bccd):
    a = BCCD_CELLS.open(bccd, crop_size=32, seed=3)
    b = BCCD_CELLS.open(bccd, crop_size=32, seed=3)
    c = BCCD_CELLS.open(bccd, crop_size=32, seed=4)
    assert np.array_equal(a[2].raw, b[2].raw)
    assert np.array_equal(a[2].raw, a[2].raw)
    assert not np.array_equal(a[2].raw, c[2].raw)
    clean = BCCD_CELLS.open(bccd, crop_size=32, noise=False)
    assert np.array_equal(clean[1].raw, BCCD_CELLS.open(bccd, crop_size=32, noise=False)[1].raw)


def test_wbc_tiles_and_masks(bccd):
    ds = BCCD_WBC.open(bccd, tile_size=32, scale=0.5)
    # 64-pixel windows on a grid 0, 64, 96 (x) and 0, 56 (y), kept when they hold WBC pixels
    assert len(ds) > 0 and ds.labels is None
    assert set(ds.groups) == {"BloodImage_00001", "BloodImage_00007"}
    for i in range(len(ds)):
        mask = ds[i].target
        assert mask.shape == (32, 32) and mask.dtype == np.uint8
        assert set(np.unique(mask)) <= {0, 1} and mask.any()
        assert np.array_equal(mask, ds.mask(i))
    every = BCCD_WBC.open(bccd, tile_size=32, scale=0.5, min_foreground=-1)
    assert len(every) == 3 * 6 > len(ds)


def test_mask_rasterisation_matches_the_box():
    box = VocBox("WBC", 10.0, 20.0, 30.0, 28.0, 0)
    mask = rasterise_boxes([box], 0.0, 0.0, 40.0, 20)  # 2 original pixels per mask pixel
    rows, cols = np.nonzero(mask)
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (10, 13, 5, 14)
    assert mask.sum() == 4 * 10


def test_image_set_limits_the_images(tmp_path):
    root = write_bccd(tmp_path / "b", image_sets={"train": ["BloodImage_00007"]})
    ds = BCCD_CELLS.open(root, crop_size=32, image_set="train")
    assert set(ds.groups) == {"BloodImage_00007"}
    with pytest.raises(BCCDError, match="image_set"):
        BCCD_CELLS.open(root, image_set="test")
    with pytest.raises(BCCDError, match=r"val\.txt"):
        BCCD_CELLS.open(root, image_set="val")


def test_data_root_may_be_the_parent_folder(bccd):
    assert len(BCCD_CELLS.open(bccd.parent, crop_size=32)) == 7


def test_cfa_option_and_simulated_intensity(bccd):
    ds = BCCD_CELLS.open(bccd, crop_size=32, cfa="bggr")
    assert ds.spec.camera.cfa == "BGGR" and BCCD_CELLS.camera.cfa == "RGGB"
    low = BCCD_CELLS.open(bccd, crop_size=32, intensity=0.1)
    assert isinstance(low, SimulatedIntensity) and low.intensity == 0.1
    full = BCCD_CELLS.open(bccd, crop_size=32)
    black = BCCD_CELLS.camera.black_level[0]
    ratio = (low[0].raw.mean() - black) / (full[0].raw.mean() - black)
    assert ratio == pytest.approx(0.1, abs=0.02)


def test_datasets_are_registered(bccd):
    registry = Registry.load(entry_points=False)
    spec = registry.get("datasets", "bccd-wbc")
    assert spec.task == "segmentation" and spec.needs_data_root
    assert registry.get("datasets", "bccd-cells").classes == CELL_CLASSES
    with pytest.raises(DatasetError, match="data-root"):
        spec.open()


# -- bad input --------------------------------------------------------------------------------


def _break(root: Path, stem: str, what: str) -> None:
    xml = root / "Annotations" / f"{stem}.xml"
    if what == "malformed":
        xml.write_text("<annotation><size><width>160</width>")
    elif what == "outside":
        xml.write_text(_xml(f"{stem}.jpg", [("RBC", 150, 100, 200, 130), ("WBC", 10, 10, 50, 50)]))
    elif what == "zero":
        xml.write_text(_xml(f"{stem}.jpg", [("RBC", 50, 50, 50, 50), ("WBC", 10, 10, 50, 50)]))
    elif what == "label":
        xml.write_text(_xml(f"{stem}.jpg", [("Neutrophil", 10, 10, 50, 50)]))
    elif what == "missing_jpeg":
        (root / "JPEGImages" / f"{stem}.jpg").unlink()
    elif what == "size":
        xml.write_text(_xml(f"{stem}.jpg", FIXTURE[stem], width=200))
    elif what == "not_an_image":
        (root / "JPEGImages" / f"{stem}.jpg").write_bytes(b"not a jpeg")
    elif what == "no_coordinate":
        text = _xml(f"{stem}.jpg", FIXTURE[stem]).replace("<xmin>60</xmin>", "", 1)
        xml.write_text(text)


@pytest.mark.parametrize(
    ("what", "match"),
    [
        ("malformed", "malformed XML"),
        ("outside", "outside"),
        ("zero", "zero or negative size"),
        ("label", "unknown class 'Neutrophil'"),
        ("missing_jpeg", "not found"),
        ("size", "declares a 200x120 image"),
        ("not_an_image", "not a readable image"),
        ("no_coordinate", "no <xmin>"),
    ],
)
def test_bad_files_raise_errors_naming_the_file(bccd, what, match):
    _break(bccd, "BloodImage_00012", what)
    with pytest.raises(BCCDError, match=match) as info:
        BCCD_CELLS.open(bccd, crop_size=32)
    assert "BloodImage_00012" in str(info.value)


@pytest.mark.parametrize(
    ("what", "kept", "skipped"),
    [("malformed", 6, 1), ("outside", 7, 1), ("zero", 7, 1), ("missing_jpeg", 6, 1)],
)
def test_skip_bad_leaves_out_and_reports(bccd, what, kept, skipped):
    _break(bccd, "BloodImage_00012", what)
    ds = BCCD_CELLS.open(bccd, crop_size=32, skip_bad=True)
    assert len(ds) == kept
    assert len(ds.skipped) == skipped
    assert "BloodImage_00012" in ds.skip_report()
    assert check_bccd(BCCD_CELLS, bccd) == [str(s) for s in ds.skipped]


def test_bad_options_and_layouts(bccd, tmp_path):
    with pytest.raises(BCCDError, match="even"):
        BCCD_CELLS.open(bccd, crop_size=33)
    with pytest.raises(BCCDError, match="does not fit"):
        BCCD_CELLS.open(bccd, crop_size=64, scale=0.5)
    with pytest.raises(BCCDError, match="scale"):
        BCCD_WBC.open(bccd, scale=1.5)
    with pytest.raises(BCCDError, match="seed"):
        BCCD_WBC.open(bccd, tile_size=32, scale=0.5, seed=-1)
    with pytest.raises(BCCDError, match="stride"):
        BCCD_WBC.open(bccd, tile_size=32, scale=0.5, stride=0)
    with pytest.raises(BCCDError, match="max_per_class_per_image"):
        BCCD_CELLS.open(bccd, crop_size=32, max_per_class_per_image=0)
    with pytest.raises(BCCDError, match="Annotations"):
        BCCD_CELLS.open(tmp_path / "empty")
    assert check_bccd(BCCD_CELLS, tmp_path / "empty")[0].startswith(str(tmp_path / "empty"))
    with pytest.raises(DatasetError, match=r"unknown option 'crop' \(did you mean 'crop_size'"):
        BCCD_CELLS.open(bccd, crop=32)


def test_decoding_errors_at_load_name_the_file(bccd):
    ds = BCCD_CELLS.open(bccd, crop_size=32)
    jpeg = bccd / "JPEGImages" / "BloodImage_00012.jpg"
    jpeg.write_bytes(jpeg.read_bytes()[:200])  # truncated after the header was checked
    with pytest.raises(BCCDError, match="BloodImage_00012"):
        ds[len(ds) - 1]


# -- the real subset ---------------------------------------------------------------------------


@pytest.mark.realdata
def test_real_bccd_subset():
    if not (REAL / "Annotations").is_dir():
        pytest.skip(f"real BCCD subset not found at {REAL}")
    with pytest.raises(BCCDError, match="BloodImage_00338"):
        scan_bccd(REAL)
    index = scan_bccd(REAL, skip_bad=True)
    assert len(index.images) == 292
    assert len(index.skipped) == 2  # two zero-size RBC boxes
    cells = BCCD_CELLS.open(REAL, skip_bad=True)
    assert cells.class_counts() == {"WBC": 301, "RBC": 3348, "Platelets": 292}
    sample = cells[0]
    assert sample.raw.shape == (64, 64) and 0.0 <= sample.raw.min() <= sample.raw.max() <= 1.0
    wbc = BCCD_WBC.open(REAL, skip_bad=True)
    assert len(wbc) > 290 and wbc[0].target.any()
