"""Class indices and mask values read from files stay inside the dataset's classes.

A label that indexes past the class list (or below 0), and a mask holding
more than the two values background/object, are refused while opening or
reading, with the file (and CSV line) named, instead of reaching a loss.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from driftlab.datasets import DatasetError
from driftlab.datasets.files import FileRawDataset, RawItem, ReadOptions, read_mask
from driftlab.datasets.folder import RAW_FOLDER
from driftlab.datasets.microscopy import MICROSCOPY


def _raws(folder: Path, names: list[str]) -> None:
    for k, name in enumerate(names):
        np.save(folder / f"{name}.npy", np.full((4, 4), 10 * k, np.uint16))


def _csv(folder: Path, rows: list[tuple[str, str]]) -> None:
    (folder / "labels.csv").write_text("file,label\n" + "".join(f"{f},{x}\n" for f, x in rows))


# -- labels CSV of raw-folder -------------------------------------------------------------------


def test_integer_labels_index_the_given_classes(tmp_path):
    _raws(tmp_path, ["a", "b", "c"])
    _csv(tmp_path, [("a.npy", "1"), ("b.npy", "cat"), ("c.npy", "0")])
    ds = RAW_FOLDER.open(tmp_path, labels_csv="labels.csv", classes=["cat", "dog"])
    assert ds.spec.classes == ("cat", "dog")
    assert ds.labels.tolist() == [1, 0, 0]
    assert [ds[i].meta["class_name"] for i in range(3)] == ["dog", "cat", "cat"]


@pytest.mark.parametrize("label", ["2", "7", "-1"])
def test_a_class_index_outside_the_given_classes_is_refused_naming_the_line(tmp_path, label):
    _raws(tmp_path, ["a", "b"])
    _csv(tmp_path, [("a.npy", "0"), ("b.npy", label)])
    with pytest.raises(
        DatasetError,
        match=rf"labels.csv:3: class index {label} outside 0..1 of the 2 classes \(cat, dog\)",
    ):
        RAW_FOLDER.open(tmp_path, labels_csv="labels.csv", classes=["cat", "dog"])
    ds = RAW_FOLDER.open(tmp_path, labels_csv="labels.csv", classes=["cat", "dog"], skip_bad=True)
    assert ds.ids == ["a"] and ds.labels.tolist() == [0]
    assert any(f"class index {label} outside" in s for s in ds.skipped)


def test_integer_labels_without_classes_are_numbered_by_value(tmp_path):
    _raws(tmp_path, ["a", "b", "c", "d"])
    _csv(tmp_path, [("a.npy", "10"), ("b.npy", "2"), ("c.npy", "0"), ("d.npy", "2")])
    ds = RAW_FOLDER.open(tmp_path, labels_csv="labels.csv")
    # numeric order (a string sort would put "10" before "2")
    assert ds.spec.classes == ("0", "2", "10")
    assert ds.labels.tolist() == [2, 1, 0, 1]
    assert any("0=0, 1=2, 2=10" in note for note in ds.notes)


def test_negative_or_doubly_written_integer_labels_are_refused(tmp_path):
    _raws(tmp_path, ["a", "b"])
    _csv(tmp_path, [("a.npy", "0"), ("b.npy", "-1")])
    with pytest.raises(DatasetError, match=r"labels.csv:3: class label -1 is negative"):
        RAW_FOLDER.open(tmp_path, labels_csv="labels.csv")
    _csv(tmp_path, [("a.npy", "1"), ("b.npy", "01")])
    with pytest.raises(DatasetError, match=r"labels.csv: integer labels written in several ways"):
        RAW_FOLDER.open(tmp_path, labels_csv="labels.csv")


def test_name_labels_keep_their_meaning_and_mixed_labels_are_names(tmp_path):
    _raws(tmp_path, ["a", "b", "c"])
    _csv(tmp_path, [("a.npy", "eel"), ("b.npy", "1"), ("c.npy", "cod")])
    ds = RAW_FOLDER.open(tmp_path, labels_csv="labels.csv")
    assert ds.spec.classes == ("1", "cod", "eel") and ds.labels.tolist() == [2, 0, 1]


# -- class indices given by a loader --------------------------------------------------------------


def _spec(task: str, classes: tuple[str, ...]):
    import attrs

    return attrs.evolve(MICROSCOPY, task=task, classes=classes)


def test_a_loader_label_outside_the_classes_is_refused_naming_the_files(tmp_path):
    _raws(tmp_path, ["a", "b"])
    extra = {"label_file": str(tmp_path / "labels.txt"), "label_line": 7}
    items = [
        RawItem("a", tmp_path / "a.npy", "a", 1),
        RawItem("b", tmp_path / "b.npy", "b", 9, None, extra),
    ]
    spec = _spec("classification", ("BAS", "EOS", "KSC"))
    with pytest.raises(
        DatasetError,
        match=r"b.npy: class index 9 outside 0..2 of the 3 classes of raw-microscopy "
        r"\(BAS, EOS, KSC\) \(.*labels.txt:7\)",
    ):
        FileRawDataset(spec, 1.0, items, ReadOptions())
    from driftlab.datasets.files import Problems

    ds = FileRawDataset(spec, 1.0, items, ReadOptions(), Problems(skip_bad=True))
    assert ds.ids == ["a"] and ds.labels.tolist() == [1]
    assert any("class index 9 outside" in s for s in ds.skipped)


@pytest.mark.parametrize(("label", "match"), [(-1, "class index -1 outside"),
                                              (None, "expected an integer class index, got None"),
                                              (True, "expected an integer class index, got True"),
                                              (1.0, "expected an integer class index, got 1.0")])  # fmt: skip
def test_labels_that_are_not_class_indices_are_refused(tmp_path, label, match):
    _raws(tmp_path, ["a"])
    items = [RawItem("a", tmp_path / "a.npy", "a", label)]
    with pytest.raises(DatasetError, match=rf"a.npy: {match}"):
        FileRawDataset(_spec("classification", ("x", "y")), 1.0, items, ReadOptions())


def test_a_mask_dataset_needs_two_classes(tmp_path):
    _raws(tmp_path, ["a"])
    items = [RawItem("a", tmp_path / "a.npy", "a", None, tmp_path / "a.png")]
    with pytest.raises(DatasetError, match="needs the classes background and object"):
        FileRawDataset(_spec("segmentation", ("car",)), 1.0, items, ReadOptions())
    with pytest.raises(DatasetError, match=r"a\.npy: segmentation item without a mask"):
        FileRawDataset(
            _spec("segmentation", ("background", "car")),
            1.0,
            [RawItem("a", tmp_path / "a.npy", "a")],
            ReadOptions(),
        )


# -- mask values --------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [1, 255, True])
def test_a_binary_mask_with_any_one_object_value_reads_as_0_and_1(tmp_path, value):
    array = np.zeros((4, 6), np.uint8 if value is not True else bool)
    array[1, 2:4] = value
    Image.fromarray(array).save(tmp_path / "m.png")
    mask = read_mask(tmp_path / "m.png")
    assert mask.dtype == np.uint8 and mask.tolist() == (array > 0).astype(np.uint8).tolist()


def test_a_mask_with_several_object_values_is_refused_naming_them(tmp_path):
    array = np.zeros((4, 6), np.uint8)
    array[0, 0], array[1, 1], array[2, 2] = 1, 2, 7
    Image.fromarray(array).save(tmp_path / "three.png")
    with pytest.raises(
        DatasetError, match=r"three.png: mask holds more than one non-zero value \(1, 2, 7\)"
    ):
        read_mask(tmp_path / "three.png")


def test_a_colour_mask_with_two_colours_or_a_voc_border_is_refused(tmp_path):
    rgb = np.zeros((4, 6, 3), np.uint8)
    rgb[0, 0] = (255, 0, 0)
    rgb[1, 1] = (255, 0, 0)
    Image.fromarray(rgb).save(tmp_path / "one.png")
    assert read_mask(tmp_path / "one.png").sum() == 2
    rgb[2, 2] = (0, 255, 0)
    Image.fromarray(rgb).save(tmp_path / "two.png")
    with pytest.raises(DatasetError, match=r"two.png: mask holds more than one non-zero colour"):
        read_mask(tmp_path / "two.png")
    # a Pascal VOC style palette mask: class 1 and the 255 "void" border
    index = np.zeros((4, 6), np.uint8)
    index[1, 1:3], index[0, 1:3] = 1, 255
    voc = Image.fromarray(index, mode="P")
    palette = [0, 0, 0, 128, 0, 0] + [0, 0, 0] * 253 + [224, 224, 192]
    voc.putpalette(palette)
    voc.save(tmp_path / "voc.png")
    with pytest.raises(DatasetError, match=r"voc.png: mask holds more than one non-zero colour"):
        read_mask(tmp_path / "voc.png")


@pytest.mark.parametrize(
    ("array", "match"),
    [
        (np.array([[0.0, -1.0], [0.0, 0.0]]), "negative values"),
        (np.array([[0.0, np.nan], [0.0, 0.0]]), "NaN or Inf"),
        (np.array([[0, -3], [0, 0]], np.int16), "negative values"),
        (np.array([["a", "b"], ["c", "d"]]), "of numbers"),
    ],
)
def test_npy_masks_with_values_no_class_has_are_refused(tmp_path, array, match):
    np.save(tmp_path / "m.npy", array)
    with pytest.raises(DatasetError, match=rf"m.npy: .*{match}"):
        read_mask(tmp_path / "m.npy")


def test_a_multi_class_mask_in_a_raw_folder_names_the_mask_file(tmp_path):
    (tmp_path / "img").mkdir()
    (tmp_path / "masks").mkdir()
    for k, stem in enumerate(("s0", "s1")):
        np.save(tmp_path / "img" / f"{stem}.npy", np.full((4, 4), 100, np.uint16))
        mask = np.zeros((4, 4), np.uint8)
        mask[0, 0] = 1
        mask[1, 1] = 1 + k  # s1 holds classes 1 and 2
        Image.fromarray(mask).save(tmp_path / "masks" / f"{stem}.png")
    ds = RAW_FOLDER.open(tmp_path, images_dir="img", masks_dir="masks")
    assert ds[0].target.sum() == 2
    with pytest.raises(DatasetError, match=r"masks/s1.png: mask holds more than one non-zero"):
        ds[1]
    ds = RAW_FOLDER.open(tmp_path, images_dir="img", masks_dir="masks", skip_bad=True)
    assert ds.ids == ["s0"] and any("s1.png: mask holds" in s for s in ds.skipped)
