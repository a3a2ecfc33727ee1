"""A held-out test set may not hold renamed copies of training items, and its mask classes
must be the training set's in the same order (driftlab.datasets.heldout)."""

from __future__ import annotations

import shutil
from pathlib import Path

import attrs
import numpy as np
import pytest
import tifffile
from PIL import Image

from driftlab.datasets.base import DatasetError, RawDataset, Sample
from driftlab.datasets.embedded import EmbeddedDataset
from driftlab.datasets.heldout import (
    check_held_out,
    check_mask_classes,
    check_no_shared_content,
    shared_content,
)
from driftlab.datasets.intensity import simulate_intensity
from driftlab.engine.planning import ItemSubset
from tests.helpers import builtin_registry
from tests.test_bccd import _xml, write_bccd

REGISTRY = builtin_registry()


def _folder(root: Path, stems: list[str], seed: int) -> Path:
    root.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for stem in stems:
        tifffile.imwrite(root / f"{stem}.tif", rng.integers(64, 1024, (16, 16), np.uint16))
    (root / "labels.csv").write_text(
        "file,label\n" + "".join(f"{s}.tif,{'ab'[k % 2]}\n" for k, s in enumerate(stems))
    )
    return root


def _open_folder(root: Path):
    spec = REGISTRY.get("datasets", "raw-folder")
    return spec.open(root, registry=REGISTRY, labels_csv="labels.csv", camera="openisp")


def test_a_renamed_copy_of_a_training_file_in_the_test_folder_is_found(tmp_path):
    train = _folder(tmp_path / "train", [f"t{i}" for i in range(6)], seed=0)
    test = _folder(tmp_path / "test", ["u0", "u1"], seed=1)
    assert shared_content(_open_folder(train), _open_folder(test)) == []
    check_no_shared_content(_open_folder(train), _open_folder(test))
    # the same pixels under another name and in another format
    np.save(test / "u9.npy", tifffile.imread(train / "t3.tif"))
    shutil.copy(train / "t5.tif", test / "zz.tif")
    (test / "labels.csv").write_text("file,label\nu0.tif,a\nu1.tif,b\nu9.npy,b\nzz.tif,a\n")
    pairs = shared_content(_open_folder(train), _open_folder(test))
    assert pairs == [("t3", "u9"), ("t5", "zz")]
    with pytest.raises(
        DatasetError,
        match=r"\[test\]: 2 test item\(s\) hold the same raw data as a training item under "
        r"another id \(renamed copies\): test 'u9' = training 't3', test 'zz' = training 't5'",
    ):
        check_held_out(_open_folder(train), _open_folder(test))


def test_a_copy_is_found_at_a_simulated_light_level_whose_noise_differs_by_id(tmp_path):
    train = _folder(tmp_path / "train", ["t0", "t1", "t2"], seed=0)
    test = _folder(tmp_path / "test", ["u0"], seed=1)
    shutil.copy(train / "t1.tif", test / "u1.tif")
    (test / "labels.csv").write_text("file,label\nu0.tif,a\nu1.tif,b\n")
    dim_train = simulate_intensity(_open_folder(train), 0.25, gain=0.5)
    dim_test = simulate_intensity(_open_folder(test), 0.25, gain=0.5)
    # the noise is drawn per item id, so the two mosaics of one scene differ ...
    assert not np.array_equal(dim_train[1].raw, dim_test[1].raw)
    # ... and the copy is still found, also across light levels
    assert shared_content(dim_train, dim_test) == [("t1", "u1")]
    assert shared_content(_open_folder(train), dim_test) == [("t1", "u1")]


def test_a_renamed_bccd_photograph_is_found_although_its_noise_differs(tmp_path):
    photos = {
        f"BloodImage_{k:05d}": [("WBC", 40, 30, 90 + k, 80), ("RBC", 100, 10, 130 + k, 40)]
        for k in range(3)
    }
    train_root = write_bccd(tmp_path / "train", photos)
    test_root = write_bccd(tmp_path / "test", {"BloodImage_00100": [("WBC", 20, 20, 60, 60)]})
    # the same photograph under another name, with its annotation
    shutil.copy(
        train_root / "JPEGImages" / "BloodImage_00002.jpg",
        test_root / "JPEGImages" / "BloodImage_00077.jpg",
    )
    (test_root / "Annotations" / "BloodImage_00077.xml").write_text(
        _xml("BloodImage_00077.jpg", photos["BloodImage_00002"])
    )
    spec = REGISTRY.get("datasets", "bccd-cells")
    options = {"crop_size": 32, "scale": 0.5}
    train = spec.open(train_root, registry=REGISTRY, **options)
    test = spec.open(test_root, registry=REGISTRY, **options)
    assert test.ids[0] == "BloodImage_00077/000-WBC"
    assert not np.array_equal(train[4].raw, test[0].raw)  # noise seeded by the item id
    assert shared_content(train, test) == [
        ("BloodImage_00002/000-WBC", "BloodImage_00077/000-WBC"),
        ("BloodImage_00002/001-RBC", "BloodImage_00077/001-RBC"),
    ]
    tiles = REGISTRY.get("datasets", "bccd-wbc")
    tile_train = tiles.open(train_root, registry=REGISTRY, tile_size=32, scale=0.5)
    tile_test = tiles.open(test_root, registry=REGISTRY, tile_size=32, scale=0.5)
    pairs = shared_content(tile_train, tile_test)
    copied = [i for i in tile_test.ids if i.startswith("BloodImage_00077/")]
    # every tile of the copy is found (a flat corner tile also equals other photographs' own:
    # the synthetic photographs differ only in the width of their cells)
    assert [b for _, b in pairs] == copied
    assert any(a.startswith("BloodImage_00002/") for a, _ in pairs)


def _embedded(name: str, **options):
    return REGISTRY.get("datasets", name).open(None, registry=REGISTRY, **options)


def test_generated_sets_are_compared_by_recipe_without_rendering(monkeypatch):
    def no_rendering(self, index):
        raise AssertionError("a generated item was rendered")

    monkeypatch.setattr(EmbeddedDataset, "load", no_rendering)
    train = _embedded("embedded-smear", n_items=1000, size=16, seed=0)
    assert shared_content(train, _embedded("embedded-smear", n_items=50, size=16, seed=1)) == []
    # another camera or light level shows the same scenes
    same = _embedded("embedded-smear", n_items=3, size=16, seed=0, intensity=0.5)
    assert shared_content(train, same) == [(i, i) for i in same.ids]
    other_size = _embedded("embedded-smear", n_items=3, size=32, seed=0)
    assert shared_content(train, other_size) == []
    with pytest.raises(DatasetError, match=r"3 test item\(s\) hold the same raw data"):
        check_no_shared_content(train, same)


class _Arrays(RawDataset):
    """Raw mosaics held in memory (a test set read from anywhere)."""

    def __init__(self, spec, raws, ids):
        super().__init__(spec)
        self._raws, self._ids = raws, ids

    def __len__(self):
        return len(self._raws)

    @property
    def ids(self):
        return list(self._ids)

    def load(self, index):
        return Sample(self._raws[index], 0, {"id": self._ids[index]})


def test_a_generated_training_set_against_files_falls_back_to_raw_digests():
    train = _embedded("embedded-smear", n_items=8, size=16, seed=0)
    exported = _Arrays(
        train.spec, [train[5].raw.copy(), np.zeros((16, 16), np.float32)], ["x", "y"]
    )
    assert shared_content(train, exported) == [(train.ids[5], "x")]


def test_subsets_of_one_dataset_with_a_duplicated_file_are_found(tmp_path):
    root = _folder(tmp_path / "all", [f"t{i}" for i in range(5)], seed=0)
    shutil.copy(root / "t1.tif", root / "t9.tif")
    (root / "labels.csv").write_text(
        "file,label\n" + "".join(f"t{i}.tif,a\n" for i in (0, 1, 2, 3, 4, 9))
    )
    dataset = _open_folder(root)
    assert dataset.ids[-1] == "t9"
    train, test = ItemSubset(dataset, np.arange(0, 4)), ItemSubset(dataset, np.array([4, 5]))
    assert shared_content(train, test) == [("t1", "t9")]


# -- class order of masks -----------------------------------------------------------------------


def _masks(root: Path, classes: list[str] | None):
    (root / "img").mkdir(parents=True)
    (root / "masks").mkdir()
    rng = np.random.default_rng(len(str(root)))
    for stem in ("a", "b"):
        tifffile.imwrite(root / "img" / f"{stem}.tif", rng.integers(0, 1024, (8, 8), np.uint16))
        mask = np.zeros((8, 8), np.uint8)
        mask[:3, :3] = 1
        Image.fromarray(mask).save(root / "masks" / f"{stem}.png")
    options = {"images_dir": "img", "masks_dir": "masks"}
    if classes is not None:
        options["classes"] = classes
    return REGISTRY.get("datasets", "raw-folder").open(root, registry=REGISTRY, **options)


def test_a_permuted_mask_class_list_is_refused_naming_both_lists(tmp_path):
    train = _masks(tmp_path / "train", ["background", "car"])
    check_mask_classes(train.spec, _masks(tmp_path / "same", ["background", "car"]).spec)
    permuted = _masks(tmp_path / "permuted", ["car", "background"])
    with pytest.raises(
        DatasetError,
        match=r"\[test\]: the test set's mask classes \[car, background\] differ from the "
        r"training set's \[background, car\] \(same names in another order: mask values are "
        r"class indices\)",
    ):
        check_held_out(train, permuted)
    renamed = _masks(tmp_path / "renamed", ["background", "vehicle"])
    with pytest.raises(DatasetError, match=r"\[background, vehicle\] differ") as info:
        check_mask_classes(train.spec, renamed.spec, where="[test] data_root")
    assert "another order" not in str(info.value) and "[test] data_root" in str(info.value)


def test_classification_class_order_is_left_to_matching_by_name_but_the_task_is_checked():
    smear = _embedded("embedded-smear", n_items=4, size=16)
    reordered = attrs.evolve(smear.spec, classes=tuple(reversed(smear.spec.classes)))
    check_mask_classes(smear.spec, reordered)
    aerial = _embedded("embedded-aerial", n_items=2, size=16)
    with pytest.raises(DatasetError, match="is a segmentation dataset but the training set"):
        check_mask_classes(smear.spec, aerial.spec)
    permuted = attrs.evolve(aerial.spec, classes=tuple(reversed(aerial.spec.classes)))
    with pytest.raises(DatasetError, match="same names in another order"):
        check_mask_classes(aerial.spec, permuted)


# -- the checks run where a [test] set is opened --------------------------------------------------


def test_open_held_out_refuses_a_renamed_copy_and_a_permuted_mask_class_list(tmp_path):
    """The checks above are not only functions: every run with a [test] set goes through
    open_held_out, which refuses both leaks with a ConfigError naming [test]."""
    from driftlab.engine.config import DatasetSection
    from driftlab.engine.config import TestSection as HeldOutSection
    from driftlab.engine.planning import open_held_out
    from driftlab.errors import ConfigError

    train = _folder(tmp_path / "train", [f"t{i}" for i in range(6)], seed=0)
    test = _folder(tmp_path / "test", ["u0", "u1"], seed=1)
    options = {"labels_csv": "labels.csv", "camera": "openisp"}
    section = DatasetSection(name="raw-folder", data_root=str(train), options=options)
    assert open_held_out(section, HeldOutSection(data_root=str(test)), REGISTRY) is not None
    shutil.copy(train / "t2.tif", test / "copy.tif")
    (test / "labels.csv").write_text("file,label\nu0.tif,a\nu1.tif,b\ncopy.tif,a\n")
    with pytest.raises(ConfigError, match=r"\[test\]: 1 test item\(s\) hold the same raw data.*"
                       r"test 'copy' = training 't2'"):  # fmt: skip
        open_held_out(section, HeldOutSection(data_root=str(test)), REGISTRY)

    masks = {"images_dir": "img", "masks_dir": "masks"}
    _masks(tmp_path / "seg-train", ["background", "car"])
    _masks(tmp_path / "seg-test", ["car", "background"])
    seg = DatasetSection(
        name="raw-folder",
        data_root=str(tmp_path / "seg-train"),
        options={**masks, "classes": ["background", "car"]},
    )
    permuted = HeldOutSection(
        data_root=str(tmp_path / "seg-test"), options={**masks, "classes": ["car", "background"]}
    )
    with pytest.raises(ConfigError, match=r"same names in another order"):
        open_held_out(seg, permuted, REGISTRY)


def test_a_synthesis_run_with_a_copied_test_item_is_refused_before_its_folder_exists(tmp_path):
    from driftlab.errors import ConfigError
    from driftlab.synthesis import run_synthesis

    train = _folder(tmp_path / "train", [f"t{i}" for i in range(6)], seed=0)
    test = _folder(tmp_path / "test", ["u0", "u1"], seed=1)
    shutil.copy(train / "t4.tif", test / "u1.tif")  # same name in the other set, t4's pixels
    options = {"labels_csv": "labels.csv", "camera": "openisp"}
    config = {
        "dataset": {"name": "raw-folder", "data_root": str(train), "options": options},
        "test": {"data_root": str(test)},
        "pipelines": {"train": ["bi,s,ga"], "test": ["bi,s,ga"]},
        "corruptions": {"names": ["identity"], "severities": [1]},
        "model": {"name": "small-cnn", "options": {"width": 4}},
        "training": {"epochs": 1, "batch_size": 4, "folds": 2, "seed": 0},
        "run": {"workers": 0, "progress": False, "device": "cpu"},
    }
    out = tmp_path / "run"
    with pytest.raises(ConfigError, match=r"test 'u1' = training 't4'"):
        run_synthesis(config, out=out, registry=REGISTRY)
    assert not out.exists()
