"""Dataset options, class numbering, cameras through the registry and what ``data check`` says."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import numpy as np
import pytest
import tifffile
from click.testing import CliRunner

import driftlab.datasets as datasets_package
from driftlab.camera import CameraParams
from driftlab.cli.data import data
from driftlab.datasets import DatasetError, DatasetSpec
from driftlab.datasets.folder import RAW_FOLDER
from driftlab.datasets.microscopy import MICROSCOPY
from tests.helpers import builtin_registry

REGISTRY = builtin_registry()


def run(*args):
    return CliRunner().invoke(data, [str(a) for a in args], catch_exceptions=False)


def _folder(tmp_path: Path, labels: dict[str, str]) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    for stem in labels:
        tifffile.imwrite(tmp_path / f"{stem}.tif", np.full((4, 4), 100, np.uint16))
    rows = "".join(f"{stem}.tif,{label}\n" for stem, label in labels.items())
    (tmp_path / "labels.csv").write_text("file,label\n" + rows)
    return tmp_path


@pytest.mark.parametrize("name", sorted(REGISTRY.names("datasets")))
def test_every_builtin_dataset_declares_options_and_suggests_on_a_typo(name):
    spec = REGISTRY.get("datasets", name)
    assert spec.options, f"{name} declares no options"
    first = next(iter(spec.options))
    typo = first[:-1] + ("x" if first[-1] != "x" else "y")
    with pytest.raises(DatasetError, match=rf"unknown option {typo!r} \(did you mean {first!r}"):
        spec.open("/nonexistent", registry=REGISTRY, **{typo: 1})


def test_undeclared_options_of_a_plugin_dataset_are_checked_against_its_opener():
    def opener(spec, data_root, intensity, *, size=8):
        raise AssertionError("not reached")

    spec = DatasetSpec(
        name="plugin-set",
        task="classification",
        description="d",
        classes=("a",),
        camera=CameraParams(name="c"),
        opener=opener,
        needs_data_root=False,
    )
    with pytest.raises(DatasetError, match=r"unknown option 'sise' \(did you mean 'size'"):
        spec.open(sise=4)


def test_data_list_shows_the_options_of_generated_and_bccd_datasets():
    out = run("list").output
    smear = out[out.index("embedded-smear  [") :]
    smear = smear[: smear.index("source:")]
    assert "options:" in smear and "n_items:" in smear and "seed:" in smear
    rows = {row["name"]: row for row in json.loads(run("list", "--json").output)}
    assert set(rows["embedded-aerial"]["options"]) == {"n_items", "size", "seed"}
    assert "crop_size" in rows["bccd-cells"]["options"]
    assert "tile_size" in rows["bccd-wbc"]["options"]
    # the Zenodo datasets name their camera profile; the list resolves it
    assert rows["raw-microscopy"]["camera"] == {
        "name": "raw-microscopy",
        "cfa": "RGGB",
        "bit_depth": 16,
    }


def test_camera_profile_name_resolved_through_the_registry_when_opened(tmp_path):
    assert MICROSCOPY.camera == "raw-microscopy"
    with pytest.raises(DatasetError, match=r"profile 'raw-microscopy'.*registry="):
        MICROSCOPY.open(tmp_path)
    other = DatasetSpec(
        name="x",
        task="classification",
        description="d",
        classes=("a",),
        camera="raw-microscopi",
        opener=lambda spec, root, intensity: None,
        needs_data_root=False,
    )
    with pytest.raises(DatasetError, match=r"did you mean 'raw-microscopy'"):
        other.open(registry=REGISTRY)


def test_datasets_never_call_get_registry_nor_import_builtin_plugins():
    folder = Path(datasets_package.__file__).parent
    for path in sorted(folder.glob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                assert not (node.module or "").startswith("driftlab.builtin"), path.name
                assert "get_registry" not in {a.name for a in node.names}, path.name
            if isinstance(node, ast.Name):
                assert node.id != "get_registry", path.name


def test_raw_folder_test_set_missing_a_class_keeps_the_numbering(tmp_path):
    train = _folder(tmp_path / "train", {"a0": "cat", "a1": "dog", "a2": "eel"})
    test = _folder(tmp_path / "test", {"b0": "eel", "b1": "cat"})  # no dog
    trained = RAW_FOLDER.open(train, labels_csv="labels.csv")
    assert trained.spec.classes == ("cat", "dog", "eel")
    assert any("cat" in n and "2=eel" in n and "classes" in n for n in trained.notes)
    tested = RAW_FOLDER.open(test, labels_csv="labels.csv", classes=list(trained.spec.classes))
    assert tested.spec.classes == ("cat", "dog", "eel")
    assert dict(zip(tested.ids, tested.labels.tolist(), strict=True)) == {"b0": 2, "b1": 0}
    # the same with a file of class names, one per line
    (test / "classes.txt").write_text("cat\ndog\neel\n")
    from_file = RAW_FOLDER.open(test, labels_csv="labels.csv", classes="classes.txt")
    assert from_file.labels.tolist() == tested.labels.tolist()
    assert not any("numbered from the sorted labels" in n for n in from_file.notes)
    # without the list the numbering would shift: say so instead of doing it silently
    alone = RAW_FOLDER.open(test, labels_csv="labels.csv")
    assert alone.spec.classes == ("cat", "eel")
    assert any("numbered from the sorted labels" in n and "1=eel" in n for n in alone.notes)


def test_raw_folder_class_list_errors(tmp_path):
    root = _folder(tmp_path, {"a0": "cat"})
    with pytest.raises(DatasetError, match="class names repeat: cat"):
        RAW_FOLDER.open(root, labels_csv="labels.csv", classes=["cat", "cat"])
    with pytest.raises(DatasetError, match=r"option classes: .*nope.txt does not exist"):
        RAW_FOLDER.open(root, labels_csv="labels.csv", classes="nope.txt")
    with pytest.raises(DatasetError, match="unknown class 'cat'"):
        RAW_FOLDER.open(root, labels_csv="labels.csv", classes=["dog"])


def test_data_check_states_the_camera_and_bit_depth_used(tmp_path):
    root = _folder(tmp_path, {"a0": "cat", "a1": "dog"})
    base = ("check", "raw-folder", "--data-root", root, "-o", "labels_csv=labels.csv")
    result = run(*base)
    assert result.exit_code == 0, result.output
    assert (
        "camera raw-folder (RGGB, 16-bit, white level 65535) from neutral default" in result.output
    )
    assert "decoded as the stored integer width" in result.output
    result = run(*base, "-o", "camera=openisp")
    assert "camera openisp (RGGB, 10-bit, white level 1023) from profile openisp" in result.output
    assert "decoded as 10-bit integers" in result.output
    report = json.loads(run(*base, "-o", "camera=openisp", "--json").output)
    assert report["levels"][0]["camera"]["bit_depth"] == 10
    assert report["levels"][0]["camera"]["source"] == "profile openisp"


def test_data_check_prints_the_first_problems_and_lists_all_in_a_file(tmp_path):
    labels = {f"a{i:02d}": "cat" for i in range(15)}
    root = _folder(tmp_path / "data", labels)
    for stem in list(labels)[1:]:
        (root / f"{stem}.tif").write_bytes(b"not a tiff at all")
    listing = tmp_path / "problems.txt"
    result = run(
        "check", "raw-folder", "--data-root", root, "-o", "labels_csv=labels.csv",
        "--problems-file", listing,
    )  # fmt: skip
    assert result.exit_code == 1
    shown = [line for line in result.output.splitlines() if line.startswith("problem:")]
    assert len(shown) == 10
    assert f"all 14 listed in {listing}" in result.output
    assert len(listing.read_text().splitlines()) == 14
    assert max(len(line) for line in result.output.splitlines()) < 1000
