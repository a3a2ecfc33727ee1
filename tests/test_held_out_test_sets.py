"""Fixed held-out test sets ([test]) in synthesis, optimisation and audit."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
import tifffile

from driftlab.cache import ViewCache
from driftlab.configtools import ConfigError
from driftlab.engine.config import TestSection as HeldOutSection
from driftlab.engine.planning import (
    JoinedDataset,
    held_out_folds,
    open_dataset,
    open_held_out,
    render_view_keys,
)
from driftlab.engine.rundir import RunDir
from driftlab.optimize import run_optimization
from driftlab.pipeline import build_static, expand_pipeline_names
from driftlab.synthesis import run_synthesis
from driftlab.synthesis.cells import RESULT_COLUMNS
from tests.helpers import SHARED_DATA, builtin_registry
from tests.test_bccd import write_bccd

REGISTRY = builtin_registry()
BCCD = SHARED_DATA / "bccd"

# six photographs with one cell of each class: four for training, two held out; the cells
# differ in width from photograph to photograph, so that no crop is a copy of another
# (a test set holding copies of training crops is refused)
PHOTOS = {
    f"BloodImage_{k:05d}": [
        ("WBC", 40, 30, 90 + k, 80),
        ("RBC", 100, 10, 130 + k, 40),
        ("Platelets", 5, 90, 15 + k, 100),
    ]
    for k in range(6)
}
SPLITS = {"train": [f"BloodImage_{k:05d}" for k in range(4)], "val": ["BloodImage_00004",
                                                                       "BloodImage_00005"]}  # fmt: skip
BCCD_OPTIONS = {"crop_size": 32, "scale": 0.5}


def _section(**values):
    from driftlab.engine.config import DatasetSection

    return DatasetSection(**values)


@pytest.fixture(scope="module")
def voc(tmp_path_factory) -> Path:
    return write_bccd(tmp_path_factory.mktemp("bccd") / "bccd", PHOTOS, image_sets=SPLITS)


def _synthesis(root: Path, **sections) -> dict:
    config = {
        "dataset": {
            "name": "bccd-cells",
            "data_root": str(root),
            "options": {**BCCD_OPTIONS, "image_set": "train"},
        },
        "pipelines": {"train": ["bi,s,ga"], "test": ["bi,s,ga", "ma,s,me"]},
        "corruptions": {"names": ["identity", "contrast"], "severities": [3]},
        "model": {"name": "small-cnn", "options": {"width": 4}},
        "training": {"epochs": 1, "batch_size": 8, "lr": 3e-3, "folds": 2, "seed": 0},
        "test": {"split": "val"},
        "run": {"workers": 0, "progress": False, "device": "cpu"},
    }
    config.update(copy.deepcopy(sections))
    return config


def _cells(run_dir: Path):
    run = RunDir(run_dir)
    return [run.read_cell(p.stem, RESULT_COLUMNS) for p in sorted(run_dir.glob("cells/*.json"))]


def test_synthesis_trains_on_train_ids_and_tests_every_fold_on_the_val_ids(voc, tmp_path):
    result = run_synthesis(_synthesis(voc), out=tmp_path / "run", registry=REGISTRY)
    records = _cells(result.run_dir)
    assert sorted(r.info["fold"] for r in records) == [0, 1]
    val = REGISTRY.get("datasets", "bccd-cells").open(
        voc, registry=REGISTRY, image_set="val", **BCCD_OPTIONS
    )
    for record in records:
        # every fold's model is tested on the same fixed set: the val photographs' cells
        assert record.info["test_ids"] == val.ids
        assert all(i.split("/")[0] in SPLITS["val"] for i in record.info["test_ids"])
        np.testing.assert_array_equal(record.arrays["targets"], val.labels)
    assert set(result.results["fold"]) == {0, 1}
    manifest = json.loads((result.run_dir / "manifest.json").read_text())
    assert manifest["test_set"]["source"] == "split 'val' of bccd-cells"
    assert manifest["test_set"]["train_items"] == 12 and manifest["test_set"]["test_items"] == 6


def test_one_fold_trains_once_on_every_training_item(voc):
    config = _synthesis(voc)
    from driftlab.synthesis.config import SynthesisConfig
    from driftlab.synthesis.plan import plan_synthesis

    plan = plan_synthesis(
        SynthesisConfig.load(config, ["training.folds=1"]), REGISTRY
    )  # fmt: skip
    (fold,) = plan.folds
    assert len(fold.train) == 12 and len(fold.test) == 6
    assert isinstance(plan.dataset, JoinedDataset)
    assert set(fold.train) == set(range(12)) and set(fold.test) == set(range(12, 18))
    two = plan_synthesis(SynthesisConfig.load(config), REGISTRY).folds
    assert [len(f.train) for f in two] == [6, 6]
    assert all(np.array_equal(f.test, fold.test) for f in two)
    config.pop("test")
    with pytest.raises(ConfigError, match=r"folds: expected an integer >= 2.*add a \[test\]"):
        plan_synthesis(SynthesisConfig.load(config, ["training.folds=1"]), REGISTRY)
    with pytest.raises(ConfigError, match=r"\[test\].split: expected the name of a split"):
        SynthesisConfig.load(config, ["test.split='../val'"])


def test_an_id_list_of_photographs_holds_out_their_cells(voc, tmp_path):
    ids = tmp_path / "held.txt"
    ids.write_text("# held-out photographs\nBloodImage_00001\nBloodImage_00003 extra tokens\n")
    dataset_section = _section(name="bccd-cells", data_root=str(voc), options=BCCD_OPTIONS)
    held = open_held_out(dataset_section, HeldOutSection(ids=str(ids)), REGISTRY)
    assert len(held.train) == 12 and len(held.test) == 6
    assert {i.split("/")[0] for i in held.test.ids} == {"BloodImage_00001", "BloodImage_00003"}
    assert not {i.split("/")[0] for i in held.train.ids} & {"BloodImage_00001", "BloodImage_00003"}
    np.testing.assert_array_equal(held.test.labels, [held.test[i].target for i in range(6)])
    # single items of a photograph may be listed too, but never split a group
    crop = held.test.ids[0]
    ids.write_text(crop + "\n")
    with pytest.raises(ConfigError, match=r"BloodImage_00001 would sit in both"):
        open_held_out(dataset_section, HeldOutSection(ids=str(ids)), REGISTRY)
    ids.write_text("BloodImage_00001\nBloodImage_0009\n")
    with pytest.raises(ConfigError, match=r"neither item ids nor groups.*'BloodImage_0009'"):
        open_held_out(dataset_section, HeldOutSection(ids=str(ids)), REGISTRY)
    with pytest.raises(ConfigError, match=r"ids selects test items of \[dataset\]; remove split"):
        open_held_out(dataset_section, HeldOutSection(ids=str(ids), split="val"), REGISTRY)
    ids.write_text("\n# nothing\n")
    with pytest.raises(ConfigError, match=r"lists no ids"):
        open_held_out(dataset_section, HeldOutSection(ids=str(ids)), REGISTRY)


def test_overlapping_train_and_test_sets_are_refused(voc):
    section = _section(name="bccd-cells", data_root=str(voc), options=BCCD_OPTIONS)
    # [dataset] has every photograph, so the val photographs sit on both sides
    with pytest.raises(ConfigError, match=r"6 item\(s\) are in both the training and the test set"):
        open_held_out(section, HeldOutSection(split="val"), REGISTRY)
    with pytest.raises(ConfigError, match=r"set either split or options.image_set"):
        open_held_out(section, HeldOutSection(split="val", options={"image_set": "val"}), REGISTRY)
    with pytest.raises(ConfigError, match=r"\[test\]: image_set 'tset'.*available: train, val"):
        open_held_out(
            _section(
                name="bccd-cells",
                data_root=str(voc),
                options={**BCCD_OPTIONS, "image_set": "train"},
            ),
            HeldOutSection(split="tset"),
            REGISTRY,
        )


def _folder(root: Path, labels: dict[str, str], seed: int) -> Path:
    root.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for stem in labels:
        tifffile.imwrite(root / f"{stem}.tif", rng.integers(0, 1024, (16, 16), np.uint16))
    (root / "labels.csv").write_text(
        "file,label\n" + "".join(f"{s}.tif,{c}\n" for s, c in labels.items())
    )
    return root


def test_classes_are_matched_by_name_and_unknown_ones_named(tmp_path):
    train = _folder(tmp_path / "train", {f"t{i}": "abc"[i % 3] for i in range(9)}, 0)
    test = _folder(tmp_path / "test", {"u0": "c", "u1": "a", "u2": "c"}, 1)
    options = {"labels_csv": "labels.csv", "camera": "openisp"}
    section = _section(name="raw-folder", data_root=str(train), options=options)
    held = open_held_out(section, HeldOutSection(data_root=str(test)), REGISTRY)
    # the test folder's own classes are (a, c); the training set's (a, b, c)
    assert held.test.spec.classes == ("a", "b", "c")
    assert held.test.labels.tolist() == [2, 0, 2]
    assert [held.test[i].target for i in range(3)] == [2, 0, 2]
    assert held.notes == ("training class(es) without test items: b",)
    bad = _folder(tmp_path / "bad", {"v0": "a", "v1": "dog"}, 2)
    with pytest.raises(ConfigError, match=r"test class\(es\) dog are not classes of the training "
                       r"set \(training classes: a, b, c\)"):  # fmt: skip
        open_held_out(section, HeldOutSection(data_root=str(bad)), REGISTRY)
    other = _section(name="embedded-smear", options={"n_items": 10, "size": 16})
    with pytest.raises(ConfigError, match=r"is a segmentation dataset but the training set"):
        open_held_out(other, HeldOutSection(name="embedded-aerial", options={"n_items": 4}),
                      REGISTRY)  # fmt: skip


def test_a_second_camera_renders_with_its_own_parameters(voc, tmp_path):
    section = _section(
        name="bccd-cells", data_root=str(voc), options={**BCCD_OPTIONS, "image_set": "train"}
    )
    held = open_held_out(section, HeldOutSection(split="val", options={"cfa": "GBRG"}), REGISTRY)
    assert held.test.spec.camera.cfa == "GBRG" and held.train.spec.camera.cfa == "RGGB"
    joined = held.joined()
    (spec,) = expand_pipeline_names(["ma,s,me"])
    keys, counts = render_view_keys(ViewCache(tmp_path / "views"), joined, [spec],
                                    registry=REGISTRY)  # fmt: skip
    assert counts["rendered"] == len(joined) == 18
    cache = ViewCache(tmp_path / "views")
    for index, part, camera in ((0, held.train, "RGGB"), (12, held.test, "GBRG")):
        pipe = build_static(spec, part.spec.camera, REGISTRY)
        local = index - (12 if part is held.test else 0)
        np.testing.assert_allclose(  # the cache renders by the fast path: 1e-4 contract
            cache.load(keys["ma,s,me"][index]), pipe(part[local].raw), atol=1e-4, rtol=0
        )
        assert part.spec.camera.cfa == camera
    folds = held_out_folds(held, 2, 0)
    assert all(np.array_equal(f.test, np.arange(12, 18)) for f in folds)


def test_mosaics_of_another_size_are_refused(voc):
    section = _section(
        name="bccd-cells", data_root=str(voc), options={**BCCD_OPTIONS, "image_set": "train"}
    )
    held = open_held_out(section, HeldOutSection(split="val", options={"crop_size": 16}), REGISTRY)
    with pytest.raises(ConfigError, match=r"test items are 16x16 mosaics but training items are "
                       r"32x32"):  # fmt: skip
        held.joined()


def test_optimisation_tests_on_the_fixed_set(voc, tmp_path):
    config = {
        "dataset": {
            "name": "bccd-cells",
            "data_root": str(voc),
            "options": {**BCCD_OPTIONS, "image_set": "train"},
            "intensities": [1.0, 0.5],
        },
        "pipeline": {"name": "bi,s,ga"},
        "model": {"name": "small-cnn", "options": {"width": 4}},
        "training": {"modes": ["frozen"], "epochs": 1, "batch_size": 8, "folds": 1},
        "test": {"split": "val"},
        "run": {"workers": 0, "progress": False, "device": "cpu"},
    }
    result = run_optimization(config, out=tmp_path / "run", registry=REGISTRY)
    assert set(result.results["fold"]) == {0}
    scores = result.results[result.results["metric"] == "accuracy"]
    assert sorted(scores["intensity"]) == [0.5, 1.0]  # one evaluation per level
    manifest = json.loads((result.run_dir / "manifest.json").read_text())
    assert manifest["test_set"]["test_items"] == 6
    config["test"] = {"split": "val", "options": {"cfa": "GBRG"}}
    with pytest.raises(ConfigError, match=r"the test set's camera .* differs"):
        run_optimization(config, out=tmp_path / "never", registry=REGISTRY)
    config["test"] = {"split": "val", "intensity": 0.5}
    with pytest.raises(ConfigError, match=r"remove \[test\].intensity"):
        run_optimization(config, out=tmp_path / "never", registry=REGISTRY)
    assert not (tmp_path / "never").exists()


def test_audit_of_the_held_out_items_only(voc, tmp_path):
    import torch

    from driftlab.audit import run_audit
    from driftlab.models import SmallCNN
    from tests.model_files import save_state_dict

    torch.manual_seed(0)
    weights = save_state_dict(SmallCNN(3, width=4), tmp_path / "m.pt")
    config = {
        "dataset": {
            "name": "bccd-cells",
            "data_root": str(voc),
            "options": {**BCCD_OPTIONS, "image_set": "train"},
        },
        "test": {"split": "val"},
        "model": {"weights": str(weights), "name": "small-cnn", "options": {"width": 4},
                  "train_pipeline": "bi,s,ga"},
        "pipelines": {"test": ["bi,s,ga"]},
        "corruptions": {"names": ["identity"]},
        "run": {"workers": 0, "progress": False, "device": "cpu"},
    }  # fmt: skip
    result = run_audit(config, out=tmp_path / "run", registry=REGISTRY)
    records = _cells(result.run_dir)
    assert all(len(r.info["test_ids"]) == 6 for r in records)
    assert result.summary["audit"]["test_set"] == "split 'val' of bccd-cells"


def test_real_bccd_trained_on_train_ids_and_tested_on_val_ids(tmp_path):
    if not (BCCD / "Annotations").is_dir():
        pytest.skip(f"BCCD not available at {BCCD}")
    options = {"crop_size": 32, "scale": 0.5, "skip_bad": True, "max_per_class_per_image": 1}
    config = {
        "dataset": {"name": "bccd-cells", "data_root": str(BCCD),
                    "options": {**options, "image_set": "train"}},
        "test": {"split": "val"},
        "pipelines": {"train": ["bi,s,ga"], "test": ["bi,s,ga", "me,u,me"]},
        "corruptions": {"names": ["identity"]},
        "model": {"name": "small-cnn", "options": {"width": 4}},
        "training": {"epochs": 1, "batch_size": 64, "lr": 3e-3, "folds": 1, "seed": 0},
        "run": {"workers": 0, "progress": False, "device": "cpu"},
    }  # fmt: skip
    result = run_synthesis(config, out=tmp_path / "run", registry=REGISTRY)
    (record,) = _cells(result.run_dir)
    val = set((BCCD / "ImageSets" / "val.txt").read_text().split())
    train = set((BCCD / "ImageSets" / "train.txt").read_text().split())
    tested = {i.split("/")[0] for i in record.info["test_ids"]}
    assert tested and tested <= val and not tested & train
    manifest = json.loads((result.run_dir / "manifest.json").read_text())
    assert manifest["test_set"]["source"] == "split 'val' of bccd-cells"
    assert manifest["test_set"]["train_items"] > manifest["test_set"]["test_items"] > 0
    assert set(result.results["test_kind"]) == {"isp", "corruption"}


def test_open_dataset_and_held_out_share_the_dataset_section_keys():
    section = _section(name="embedded-smear", options={"n_items": 10, "size": 16})
    _, train = open_dataset(section, REGISTRY)
    held = open_held_out(section, HeldOutSection(options={"seed": 4}), REGISTRY, train=train)
    # unset keys follow [dataset]: same size and item count, another seed
    assert len(held.test) == 10 and held.test[0].raw.shape == (16, 16)
    assert not set(held.test.ids) & set(train.ids)
    assert open_held_out(section, HeldOutSection(), REGISTRY) is None


def test_an_oversized_or_binary_id_list_is_refused(tmp_path, monkeypatch):
    import driftlab.engine.config as engine_config
    from driftlab.synthesis.config import SynthesisConfig

    ids = tmp_path / "ids.txt"
    ids.write_text("a\nb\n" * 20)
    base = {"dataset": {"name": "embedded-smear"}, "model": {"name": "small-cnn"}}
    monkeypatch.setattr(engine_config, "MAX_ID_LIST_BYTES", 16)
    with pytest.raises(ConfigError, match=r"\[test\].ids: .* is 80 bytes; an id list may hold"):
        SynthesisConfig.load({**base, "test": {"ids": str(ids)}})
    monkeypatch.undo()
    with pytest.raises(ConfigError, match=r"\[test\].ids: .*no such file"):
        SynthesisConfig.load({**base, "test": {"ids": str(tmp_path / "missing.txt")}})
    ids.write_bytes(b"\xff\xfe\x00binary")
    section = _section(name="embedded-smear", options={"n_items": 10, "size": 16})
    with pytest.raises(ConfigError, match=r"cannot read .* as a UTF-8 id list"):
        open_held_out(section, HeldOutSection(ids=str(ids)), REGISTRY)


def test_the_test_sets_camera_enters_the_run_identity(tmp_path):
    """A [test] set's views are rendered with its own camera: another camera for the same
    test folder is another run (cells are not reused)."""
    from driftlab.cache import camera_digest
    from driftlab.synthesis.config import SynthesisConfig
    from driftlab.synthesis.experiment import SYNTHESIS

    train = _folder(tmp_path / "train", {f"t{i}": "ab"[i % 2] for i in range(6)}, 0)
    test = _folder(tmp_path / "test", {"u0": "a", "u1": "b"}, 1)

    def identity(camera: str) -> dict:
        config = {
            "dataset": {
                "name": "raw-folder",
                "data_root": str(train),
                "options": {"labels_csv": "labels.csv", "camera": "openisp"},
            },
            "test": {"data_root": str(test), "options": {"labels_csv": "labels.csv",
                                                         "camera": camera}},
            "pipelines": {"train": ["bi,s,ga"], "test": ["bi,s,ga"]},
            "model": {"name": "small-cnn"},
            "training": {"folds": 2},
            "run": {"device": "cpu"},
        }  # fmt: skip
        plan = SYNTHESIS.plan(SynthesisConfig.load(config), REGISTRY)
        out = SYNTHESIS.identity(plan)
        assert out["camera.test.sha256"] == camera_digest(plan.held_out.test.spec.camera)
        return out

    same, other = identity("openisp"), identity("raw-microscopy")
    assert same["camera.test.sha256"] == same["camera.sha256"]
    assert other["camera.test.sha256"] != same["camera.test.sha256"]
    assert other["camera.sha256"] == same["camera.sha256"]
