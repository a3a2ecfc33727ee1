"""Near-duplicate grouping: registration, the verified cache, raw folders and BCCD."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image
from scipy.ndimage import gaussian_filter

from driftlab.cli.data import data
from driftlab.datasets import DatasetError
from driftlab.datasets.bccd import BCCD_CELLS, BCCD_WBC
from driftlab.datasets.folder import RAW_FOLDER
from driftlab.datasets.overlap import (
    OverlapSettings,
    components,
    detect_overlaps,
    find_overlaps,
    merge_groups,
)
from driftlab.datasets.splits import dataset_folds
from tests.helpers import SHARED_DATA, builtin_registry

REGISTRY = builtin_registry()
BCCD_REAL = SHARED_DATA / "bccd"


def _scene(shape=(420, 560), seed=0) -> np.ndarray:
    """A textured grey scene in [0, 1]: smooth noise plus dark blobs (cells)."""
    rng = np.random.default_rng(seed)
    texture = gaussian_filter(rng.normal(size=shape), 3.0)
    texture = (texture - texture.min()) / (np.ptp(texture) + 1e-12)
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    for _ in range(40):
        cy, cx, r = rng.uniform(0, shape[0]), rng.uniform(0, shape[1]), rng.uniform(8, 25)
        texture -= 0.4 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r**2))
    return np.clip(0.3 + 0.6 * (texture - texture.min()) / np.ptp(texture), 0, 1)


# crops (top, left) of one scene: a-b overlap 55%, a-c 47%, b-c 40%; d and e are other scenes
CROPS = {"a": (40, 60), "b": (80, 140), "c": (130, 20)}
SIZE = (200, 260)


def _crops(seed=0) -> dict[str, np.ndarray]:
    scene = _scene(seed=seed)
    h, w = SIZE
    out = {k: scene[y : y + h, x : x + w] for k, (y, x) in CROPS.items()}
    out["b"] = 0.8 * out["b"] + 0.05  # another exposure of the same field
    out["d"] = _scene(seed=seed + 1)[:h, :w]
    out["e"] = _scene(seed=seed + 2)[100 : 100 + h, 50 : 50 + w]
    return out


def test_shifted_crops_of_one_image_are_found_with_their_shifts():
    crops = _crops()
    ids = sorted(crops)
    pairs = find_overlaps([crops[k] for k in ids], ids)
    found = {(p.a, p.b): p for p in pairs}
    assert set(found) == {("a", "b"), ("a", "c"), ("b", "c")}
    # a[y, x] shows b[y - dy, x - dx]: b starts 40 rows and 80 columns after a
    assert (found["a", "b"].dy, found["a", "b"].dx) == (40, 80)
    assert (found["a", "c"].dy, found["a", "c"].dx) == (90, -40)
    assert (found["b", "c"].dy, found["b", "c"].dx) == (50, -120)
    assert found["a", "b"].overlap == pytest.approx((160 * 180) / (200 * 260), abs=1e-6)
    assert all(p.ncc > 0.95 for p in pairs)
    assert components(ids, [(p.a, p.b) for p in pairs]) == [("a", "b", "c")]


def test_small_overlaps_and_unrelated_images_are_not_merged():
    crops = _crops(seed=5)
    strict = OverlapSettings(min_overlap=0.5)
    pairs = find_overlaps([crops[k] for k in sorted(crops)], sorted(crops), strict)
    assert {(p.a, p.b) for p in pairs} == {("a", "b")}
    with pytest.raises(DatasetError, match="one unique id per image"):
        find_overlaps([crops["a"]], ["a", "b"])
    with pytest.raises(ValueError, match="min_ncc"):
        OverlapSettings(min_ncc=2.0)


def test_merge_groups_joins_components_of_groups():
    crops = _crops()
    ids = sorted(crops)
    report = detect_overlaps(ids, lambda k: crops[ids[k]], ids, cache_dir=False)
    assert report.merged_images == 2 and report.representative()["c"] == "a"
    # items: two crops per image; d and e keep their own groups
    groups = merge_groups(
        ["ga", "ga", "gb", "gc", "gd", "ge"], ["a", "a", "b", "c", "d", "e"], report
    )
    assert groups == ["ga", "ga", "ga", "ga", "gd", "ge"]


def _detect(crops, cache, settings=None):
    ids = sorted(crops)
    calls = []

    def load(k):
        calls.append(ids[k])
        return crops[ids[k]]

    report = detect_overlaps(
        ids, load, [f"digest-{i}" for i in ids], cache_dir=cache, settings=settings
    )
    return report, calls


def test_cache_by_content_hash_is_reused_and_verified(tmp_path):
    crops = _crops()
    first, calls = _detect(crops, tmp_path)
    assert not first.from_cache and len(calls) == 5 and first.cache_path.is_file()
    second, calls = _detect(crops, tmp_path)
    assert second.from_cache and second.pairs == first.pairs
    assert set(calls) == {"a", "b", "c"}  # only the images of recorded pairs are re-measured
    # other settings -> other key, other file
    third, _ = _detect(crops, tmp_path, OverlapSettings(min_overlap=0.5))
    assert third.cache_path != first.cache_path and not third.from_cache


@pytest.mark.parametrize("damage", ["edit", "truncate", "forge", "garbage", "huge"])
def test_damaged_or_forged_cache_is_ignored_and_recomputed(tmp_path, damage):
    crops = _crops()
    first, _ = _detect(crops, tmp_path)
    path = first.cache_path
    data = json.loads(path.read_text())
    if damage == "edit":
        data["pairs"][0]["dx"] += 3  # checksum no longer matches
        path.write_text(json.dumps(data))
    elif damage == "truncate":
        path.write_bytes(path.read_bytes()[:50])
    elif damage == "forge":  # a consistent file claiming a pair that does not exist
        import hashlib

        from driftlab.datasets.overlap import _canonical

        data["pairs"].append({"a": "d", "b": "e", "dy": 0, "dx": 0, "overlap": 1.0, "ncc": 0.99})
        body = {k: v for k, v in data.items() if k != "checksum"}
        data["checksum"] = hashlib.sha256(_canonical(body)).hexdigest()
        path.write_text(json.dumps(data))
    elif damage == "garbage":
        path.write_bytes(b"\x00\xff not json")
    else:
        with path.open("ab") as handle:
            handle.truncate(17 * 2**20)
    again, calls = _detect(crops, tmp_path)
    assert not again.from_cache and set(calls) == set(crops)
    assert again.pairs == first.pairs
    assert any("ignored" in note for note in again.notes)
    assert json.loads(path.read_text())["pairs"] == [
        {k: getattr(p, k) for k in ("a", "b", "dy", "dx", "overlap", "ncc")} for p in first.pairs
    ]


def _mosaic(grey: np.ndarray) -> np.ndarray:
    """A Bayer mosaic whose 2x2 blocks average to the grey image, as uint16."""
    up = np.kron(grey, np.ones((2, 2)))
    return np.round(up * 60000).astype(np.uint16)


def test_raw_folder_group_overlapping_merges_split_groups(tmp_path):
    crops = _crops()
    root = tmp_path / "data"
    root.mkdir()
    rows = []
    for k, crop in crops.items():
        for copy in range(2):  # two labelled files per image id letter
            name = f"{k}{copy}"
            np.save(root / f"{name}.npy", _mosaic(crop if copy == 0 else np.roll(crop, 0)))
            rows.append(f"{name}.npy,{'cat' if k in 'ace' else 'dog'}")
    (root / "labels.csv").write_text("file,label\n" + "\n".join(rows) + "\n")
    plain = RAW_FOLDER.open(root, labels_csv="labels.csv")
    assert len(set(plain.groups)) == 10
    ds = RAW_FOLDER.open(
        root, labels_csv="labels.csv", group_overlapping=True, overlap_cache=tmp_path / "cache"
    )
    groups = dict(zip(ds.ids, ds.groups, strict=True))
    # a0/a1 are identical copies, b* and c* are shifted crops of the same scene: one group
    assert {groups[i] for i in ("a0", "a1", "b0", "b1", "c0", "c1")} == {"a0"}
    assert groups["d0"] == groups["d1"] != groups["e0"] == groups["e1"]
    # three components: a*/b*/c* (6 files), d0+d1 and e0+e1 (identical copies)
    assert ds.overlap.merged_images == 5 + 1 + 1
    assert any("7 image(s) merged" in note for note in ds.notes)
    for fold in dataset_folds(ds, n_splits=2, seed=0):
        assert not {ds.groups[i] for i in fold.train} & {ds.groups[i] for i in fold.test}
    with pytest.raises(DatasetError, match="group_overlapping: expected true or false"):
        RAW_FOLDER.open(root, labels_csv="labels.csv", group_overlapping="yes")


def test_data_check_reports_how_many_images_were_merged(tmp_path):
    crops = _crops()
    root = tmp_path / "data"
    root.mkdir()
    for k, crop in crops.items():
        np.save(root / f"{k}.npy", _mosaic(crop))
    (root / "labels.csv").write_text("file,label\n" + "".join(f"{k}.npy,x\n" for k in crops))
    result = CliRunner().invoke(
        data,
        ["check", "raw-folder", "--data-root", str(root), "-o", "labels_csv=labels.csv",
         "-o", "group_overlapping=true", "-o", f"overlap_cache={tmp_path / 'cache'}"],
        catch_exceptions=False,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert (
        "5 items in 3 groups (2 image(s) merged into groups of overlapping images)" in result.output
    )
    assert "note: 2 image(s) merged into the groups of overlapping images: a+b+c" in result.output


def _voc(path: Path, stem: str, width: int, height: int) -> None:
    path.write_text(
        f"<annotation><filename>{stem}.jpg</filename><size><width>{width}</width>"
        f"<height>{height}</height><depth>3</depth></size><object><name>WBC</name>"
        "<bndbox><xmin>60</xmin><ymin>50</ymin><xmax>140</xmax><ymax>130</ymax></bndbox>"
        "</object></annotation>"
    )


def test_bccd_group_overlapping_on_synthetic_photographs(tmp_path):
    crops = _crops()
    root = tmp_path / "bccd"
    (root / "Annotations").mkdir(parents=True)
    (root / "JPEGImages").mkdir()
    stems = {k: f"BloodImage_{i:05d}" for i, k in enumerate(sorted(crops))}
    for k, crop in crops.items():
        rgb = np.stack([crop, crop * 0.8, crop * 0.9 + 0.05], axis=-1)
        Image.fromarray(np.round(rgb * 255).astype(np.uint8)).save(
            root / "JPEGImages" / f"{stems[k]}.jpg", quality=92
        )
        _voc(root / "Annotations" / f"{stems[k]}.xml", stems[k], SIZE[1], SIZE[0])
    options = {"crop_size": 32, "group_overlapping": True, "overlap_cache": tmp_path / "cache"}
    cells = BCCD_CELLS.open(root, **options)
    assert sorted(set(cells.groups)) == [stems["a"], stems["d"], stems["e"]]
    assert cells.overlap.merged_images == 2
    assert cells[1].meta["group"] == stems["a"]
    wbc_options = {**options, "tile_size": 32}
    del wbc_options["crop_size"]
    low = BCCD_WBC.open(root, intensity=0.5, **wbc_options)
    assert low.overlap.merged_images == 2 and sorted(set(low.groups)) == sorted(set(cells.groups))
    plain = BCCD_CELLS.open(root, crop_size=32)
    assert len(set(plain.groups)) == 5 and plain.overlap is None


@pytest.mark.realdata
def test_real_bccd_near_duplicate_pairs_share_a_group(tmp_path):
    if not (BCCD_REAL / "Annotations").is_dir():
        pytest.skip(f"real BCCD subset not found at {BCCD_REAL}")
    cells = BCCD_CELLS.open(
        BCCD_REAL, skip_bad=True, group_overlapping=True, overlap_cache=tmp_path
    )
    group_of = dict(zip((i.split("/")[0] for i in cells.ids), cells.groups, strict=True))
    for a, b in (("00204", "00277"), ("00382", "00395"), ("00230", "00257"), ("00037", "00038")):
        assert group_of[f"BloodImage_{a}"] == group_of[f"BloodImage_{b}"], (a, b)
    assert cells.overlap.merged_images >= 9
    assert group_of["BloodImage_00204"] != group_of["BloodImage_00382"]
    again = BCCD_CELLS.open(
        BCCD_REAL, skip_bad=True, group_overlapping=True, overlap_cache=tmp_path
    )
    assert again.overlap.from_cache and again.groups == cells.groups
