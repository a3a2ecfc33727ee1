"""Generic raw collections: a folder of raw files with labels or masks.

The ``raw-folder`` dataset turns any folder of raw Bayer files into a
dataset from a config, without Python::

    [dataset]
    name = "raw-folder"
    data_root = "/data/my-sensor"
    [dataset.options]
    labels_csv = "labels.csv"     # classification: columns file,label
    # masks_dir = "masks"         # or segmentation: one mask per raw file, same stem
    camera = "openisp"            # profile name, or a table of CameraParams fields
    shape = [1080, 1920]          # geometry of headerless .raw files (and of every item)
    bits = 10

Raw files: 16-bit TIFF, ``.npy``, headerless ``.raw`` (needs ``shape`` and
``bits``) and camera raw (DNG ... via rawpy), all read with
:func:`driftlab.io.raw.read_raw`. Camera parameters come from the metadata
of camera raw files when there are any, else from the ``camera`` option,
else a neutral profile (no black level, unit gains, identity matrix).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from driftlab.camera import CameraParams
from driftlab.datasets.base import DatasetError, DatasetSpec
from driftlab.datasets.files import (
    MASK_SUFFIXES,
    FileRawDataset,
    Problems,
    RawItem,
    ReadOptions,
    list_files,
    parse_shape,
    summarise_skipped,
)
from driftlab.datasets.overlap import (
    describe_components,
    detect_overlaps,
    file_digest,
    grey_from_mosaic,
    merge_groups,
    parse_cache_option,
)
from driftlab.io.raw import CAMERA_RAW_SUFFIXES, RawReadError, read_camera_metadata

if TYPE_CHECKING:
    from driftlab.registry import Registry

__all__ = ["RAW_FOLDER", "RAW_SUFFIXES", "open_folder", "read_labels_csv", "resolve_camera"]

RAW_SUFFIXES: tuple[str, ...] = (".npy", ".tif", ".tiff", ".raw", *CAMERA_RAW_SUFFIXES)
DEFAULT_SEGMENTATION_CLASSES = ("background", "object")
NEUTRAL_CAMERA = CameraParams(
    name="raw-folder",
    cfa="RGGB",
    bit_depth=16,
    description="neutral: no black level, unit gains, identity colour matrix",
)
"""Camera of a raw folder without camera raw files and without a ``camera`` option."""


def _resolve(root: Path, value: str | Path, option: str) -> Path:
    path = Path(value).expanduser()
    path = path if path.is_absolute() else root / path
    if not path.exists():
        raise DatasetError(f"raw-folder option {option}: {path} does not exist")
    return path


def _raw_files(folder: Path, pattern: str, exclude: Path | None) -> list[Path]:
    if not folder.is_dir():
        raise DatasetError(f"{folder}: not a folder")
    if pattern == "*":
        found = list_files(folder, RAW_SUFFIXES)
    else:
        found = sorted(
            p
            for p in folder.glob(pattern)
            if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in RAW_SUFFIXES
        )
    if exclude is not None:
        exclude = exclude.resolve()
        found = [p for p in found if exclude not in p.resolve().parents]
    if not found:
        raise DatasetError(
            f"{folder}: empty folder: no raw files ({', '.join(RAW_SUFFIXES[:5])}, camera raw) "
            f"matching {pattern!r}"
        )
    return found


def _stem_index(files: list[Path], problems: Problems) -> dict[str, Path]:
    index: dict[str, Path] = {}
    for path in files:
        if path.stem in index:
            problems.bad(f"{path}: same stem as {index[path.stem]}; item ids must be unique")
            continue
        index[path.stem] = path
    return index


_INDEX = re.compile(r"^[+-]?\d+$")


def read_labels_csv(
    path: Path,
    files: Mapping[str, Path],
    folder: Path,
    classes: Sequence[str] | None,
    problems: Problems,
) -> tuple[list[tuple[Path, str, int]], tuple[str, ...]]:
    """Parse a ``file,label`` CSV.

    A label is a class name or, when it is a decimal integer, possibly a
    class index:

    * with ``classes`` given, a label that is one of the names is that class;
      any other integer label is an index into ``classes`` and must lie in
      ``0 .. len(classes) - 1``;
    * without ``classes``, when every label is an integer the classes are the
      distinct integers in numeric order (``2`` before ``10``; their names
      are the labels as written) and a negative one is refused; otherwise
      every label is a name and the classes are the sorted distinct names.

    Parameters
    ----------
    path : pathlib.Path
        CSV file with a header row naming the columns ``file`` and
        ``label`` (other columns are ignored).
    files : mapping of str to Path
        Raw files found, by stem; ``file`` may be a path relative to
        ``folder`` or a bare stem.
    folder : pathlib.Path
        Folder the ``file`` entries are relative to.
    classes : sequence of str or None
        Allowed class names in index order; None: derived from the labels
        as above.
    problems : Problems
        Receives malformed rows, unknown files or classes, class indices
        out of range, duplicates (with CSV line numbers).

    Returns
    -------
    rows : list of (Path, str, int)
        Raw file, class name, CSV line number.
    classes : tuple of str

    Raises
    ------
    DatasetError
        Unreadable CSV, missing columns, no valid row, or (without
        ``skip_bad``) the first bad row, naming the CSV file and line.
    """
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: cannot read labels CSV ({exc})") from exc
    reader = csv.reader(text.splitlines())
    header = [cell.strip().lower() for cell in next(reader, [])]
    if "file" not in header or "label" not in header:
        raise DatasetError(
            f"{path}:1: header must name the columns 'file' and 'label', got {header}"
        )
    col_file, col_label = header.index("file"), header.index("label")
    rows: list[tuple[Path, str, int]] = []
    first: dict[Path, int] = {}
    for number, row in enumerate(reader, start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            problems.bad(f"{path}:{number}: expected {len(header)} columns, got {len(row)}: {row}")
            continue
        name, label = row[col_file].strip(), row[col_label].strip()
        if not name or not label:
            problems.bad(f"{path}:{number}: empty file or label: {row}")
            continue
        target = folder / name
        raw = target if target.is_file() else files.get(name)
        if raw is None:
            problems.bad(f"{path}:{number}: raw file {target} not found")
            continue
        if classes is not None and label not in classes:
            if not _INDEX.match(label):
                problems.bad(
                    f"{path}:{number}: unknown class {label!r}; classes: {', '.join(classes)}"
                )
                continue
            index = int(label)
            if not 0 <= index < len(classes):
                problems.bad(
                    f"{path}:{number}: class index {index} outside 0..{len(classes) - 1} of the "
                    f"{len(classes)} classes ({', '.join(classes)})"
                )
                continue
            label = classes[index]
        if raw in first:
            problems.bad(f"{path}:{number}: {raw.name} is labelled again (first on line "
                         f"{first[raw]})")  # fmt: skip
            continue
        first[raw] = number
        rows.append((raw, label, number))
    if classes is None and rows and all(_INDEX.match(r[1]) for r in rows):
        kept = []
        for row in rows:
            if int(row[1]) < 0:
                problems.bad(
                    f"{path}:{row[2]}: class label {row[1]} is negative; without classes, "
                    "integer labels must be >= 0 (the classes are the distinct labels in "
                    "numeric order)"
                )
                continue
            kept.append(row)
        rows = kept
        by_value = {int(r[1]): r[1] for r in rows}
        names = tuple(by_value[v] for v in sorted(by_value))
        if len(by_value) != len({r[1] for r in rows}):  # e.g. "1" and "01"
            raise DatasetError(
                f"{path}: integer labels written in several ways for one class "
                f"({', '.join(sorted({r[1] for r in rows}))}); write each index once"
            )
    else:
        names = tuple(classes) if classes is not None else tuple(sorted({r[1] for r in rows}))
    if not rows:
        raise DatasetError(f"{path}: no valid label rows")
    return rows, names


def resolve_camera(
    option: str | Mapping[str, Any] | CameraParams | None,
    files: Sequence[Path],
    problems: Problems,
    registry: Registry | None = None,
) -> tuple[CameraParams, str]:
    """Camera parameters of a raw collection.

    Parameters
    ----------
    option : str, mapping, CameraParams or None
        Profile name (looked up in ``registry``), a table of
        :class:`~driftlab.camera.CameraParams` fields, or a ready object.
    files : sequence of pathlib.Path
        Raw files; the metadata of the first camera raw file among them
        wins over ``option`` (a note says so).
    problems : Problems
        Receives the note.
    registry : Registry, optional
        Plugin registry holding the camera profiles; needed when ``option``
        is a profile name.

    Returns
    -------
    camera : CameraParams
    source : str
        Where the parameters came from: ``"file metadata (<name>)"``,
        ``"profile <name>"``, ``"camera table"``, ``"CameraParams"`` or
        ``"neutral default"``.

    Raises
    ------
    DatasetError
        Unknown profile name (with the closest one), a profile name without
        a registry, an invalid camera table, or unreadable camera raw
        metadata.
    """
    camera_raw = [p for p in files if p.suffix.lower() in CAMERA_RAW_SUFFIXES]
    if camera_raw:
        try:
            camera = read_camera_metadata(camera_raw[0])
        except RawReadError as exc:
            raise DatasetError(str(exc)) from exc
        if option is not None:
            problems.note(f"camera option ignored: parameters read from {camera_raw[0]} metadata")
        return camera, f"file metadata ({camera_raw[0].name})"
    if option is None:
        return NEUTRAL_CAMERA, "neutral default (no camera option, no camera raw file)"
    if isinstance(option, CameraParams):
        return option, "CameraParams"
    if isinstance(option, str):
        if registry is None:
            raise DatasetError(
                f"raw-folder option camera: {option!r} is a profile name, looked up in the plugin "
                "registry; open the dataset with registry=... or give a table of camera fields"
            )
        from driftlab.registry import RegistryError

        try:
            return registry.camera(option), f"profile {option}"
        except RegistryError as exc:
            raise DatasetError(f"raw-folder option camera: {exc}") from exc
    if isinstance(option, Mapping):
        try:
            return CameraParams(**{"name": "raw-folder", **dict(option)}), "camera table"
        except (TypeError, ValueError) as exc:
            raise DatasetError(f"raw-folder option camera: invalid camera table ({exc})") from exc
    raise DatasetError(
        f"raw-folder option camera: expected a profile name or a table, got {option!r}"
    )


def _group_of(stem: str, regex: re.Pattern[str] | None) -> str | None:
    if regex is None:
        return stem
    match = regex.search(stem)
    if match is None:
        return None
    if "group" in regex.groupindex:
        return match.group("group")
    return match.group(1) if regex.groups else match.group(0)


def _masks(folder: Path, problems: Problems) -> dict[str, Path]:
    index: dict[str, Path] = {}
    for path in list_files(folder, MASK_SUFFIXES):
        if path.stem in index:
            problems.bad(f"{path}: same mask stem as {index[path.stem]}")
            continue
        index[path.stem] = path
    return index


def _parse_classes(value: object, root: Path, where: str) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, (str, Path)):
        path = _resolve(root, value, where.rsplit(" ", 1)[-1])
        try:
            lines = path.read_text(encoding="utf-8-sig").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise DatasetError(f"{where}: cannot read class list {path} ({exc})") from exc
        names = tuple(line.strip() for line in lines if line.strip())
        where = f"{where} ({path})"
    elif isinstance(value, Sequence):
        names = tuple(value)
    else:
        raise DatasetError(f"{where}: expected a list of class names or a file, got {value!r}")
    if not names or not all(isinstance(n, str) and n.strip() for n in names):
        raise DatasetError(f"{where}: expected non-empty class names, got {list(names)}")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise DatasetError(f"{where}: class names repeat: {', '.join(repeated)}")
    return tuple(n.strip() for n in names)


def open_folder(
    spec: DatasetSpec,
    data_root: Path | None,
    intensity: float,
    *,
    labels_csv: str | Path | None = None,
    masks_dir: str | Path | None = None,
    classes: Sequence[str] | None = None,
    images_dir: str | Path = ".",
    pattern: str = "*",
    shape: object = None,
    bits: int | None = None,
    float_scale: float | None = None,
    camera: str | Mapping[str, Any] | CameraParams | None = None,
    group_regex: str | None = None,
    skip_bad: bool = False,
    group_overlapping: bool = False,
    overlap_cache: object = None,
    registry: Registry | None = None,
) -> FileRawDataset:
    """Open a folder of raw files as a classification or segmentation dataset.

    Parameters
    ----------
    spec : DatasetSpec
        The ``raw-folder`` declaration; the returned dataset carries a copy
        with the task, classes and camera found here.
    data_root : pathlib.Path
        Root folder; relative options are resolved against it.
    intensity : float
        Only 1.0 (the files as captured).
    labels_csv : str or Path, optional
        CSV with columns ``file,label``: a classification dataset of the
        listed files (``file`` relative to ``images_dir`` or a bare stem).
    masks_dir : str or Path, optional
        Folder of masks (PNG/TIFF/BMP/.npy: 0 background, one object value
        such as 1 or 255, see :func:`~driftlab.datasets.files.read_mask`)
        named like the raw files: a segmentation dataset. Exactly one of the
        two is required.
    classes : sequence of str or str, optional
        Class names in index order (other labels are errors, except integer
        labels, which index this list and must lie in ``0 .. N - 1``), or
        the path (relative to ``data_root``) of a text file with one name per
        line. Give the training set's classes when opening a test folder so
        that a class missing from it keeps its number. Default: the distinct
        CSV labels, integers in numeric order (negative ones refused) or else
        names sorted (a note in ``dataset.notes`` lists the numbering), or
        ``("background", "object")``.
    images_dir : str or Path
        Folder of the raw files, relative to ``data_root`` (default: itself).
    pattern : str
        Glob for the raw files inside ``images_dir`` (``"**/*"`` recurses).
    shape : (int, int) or "HxW", optional
        Geometry of headerless ``.raw`` files, and the required shape of
        every item.
    bits : int, optional
        Bit depth of stored integers (required for ``.raw``); default: the
        camera profile's bit depth when ``camera`` is given, else the dtype.
    float_scale : float, optional
        Full scale of float files stored on the integer scale.
    camera : str, mapping or CameraParams, optional
        Profile name or table of camera fields; file metadata wins.
    group_regex : str, optional
        Regular expression applied to each file stem (``re.search``) whose
        named group ``group`` (or first group, or whole match) is the split
        group, e.g. ``"^(?P<group>.+)_\\d+$"`` for tiles named
        ``<frame>_<index>``. Default: every file is its own group.
    skip_bad : bool
        Leave out (and report in ``dataset.skipped``) bad rows and files;
        every file is read once while opening.
    group_overlapping : bool
        Read every raw file, find near-duplicates (overlapping fields of
        view, :mod:`driftlab.datasets.overlap`, on the 2x2-binned mosaics)
        and merge their split groups; ``dataset.overlap`` holds the report.
    overlap_cache : str, Path, False or None
        Folder caching the overlap map (default: the user cache folder;
        False: no cache).
    registry : Registry, optional
        Plugin registry in which a ``camera`` profile name is looked up.

    Returns
    -------
    FileRawDataset
        ``camera_source`` says where the camera parameters came from.

    Raises
    ------
    DatasetError
        Missing or conflicting options, empty folder, headerless files
        without geometry, unknown camera profile, or (without ``skip_bad``)
        the first bad CSV row (unknown class, class index out of range ...),
        missing mask or unreadable file (a mask with more than one object
        value when its item is read), naming the file and line.
    """
    if abs(float(intensity) - 1.0) > 1e-9:
        raise DatasetError(
            f"{spec.name}: intensity {intensity:g} was not captured; available levels: 1"
        )
    if data_root is None:
        raise DatasetError(f"{spec.name}: needs a data root (the folder of raw files)")
    root = Path(data_root)
    if not root.is_dir():
        raise DatasetError(f"{root}: data root is not a folder")
    if (labels_csv is None) == (masks_dir is None):
        raise DatasetError(
            f"{spec.name}: give exactly one of labels_csv (classification, CSV 'file,label') "
            "or masks_dir (segmentation, masks named like the raw files)"
        )
    if bits is not None and not (isinstance(bits, int) and 1 <= bits <= 16):
        raise DatasetError(f"{spec.name} option bits: expected an integer 1..16, got {bits!r}")
    problems = Problems(skip_bad)
    folder = _resolve(root, images_dir, "images_dir")
    mask_folder = _resolve(root, masks_dir, "masks_dir") if masks_dir is not None else None
    if mask_folder is not None and mask_folder.resolve() == folder.resolve():
        raise DatasetError(f"{spec.name}: masks_dir must differ from the raw image folder")
    files = _raw_files(folder, pattern, mask_folder)
    geometry = parse_shape(shape, f"{spec.name} option shape")
    cam, camera_source = resolve_camera(camera, files, problems, registry)
    from_file = camera_source.startswith("file metadata")
    if bits is None and camera is not None and not from_file:
        bits = cam.bit_depth
    wanted = _parse_classes(classes, root, f"{spec.name} option classes")
    if any(p.suffix.lower() == ".raw" for p in files) and (geometry is None or bits is None):
        raise DatasetError(
            f"{folder}: headerless .raw files need the options shape (e.g. [1080, 1920]) and bits"
        )
    regex = None
    if group_regex is not None:
        try:
            regex = re.compile(group_regex)
        except re.error as exc:
            raise DatasetError(f"{spec.name} option group_regex: {exc}") from exc
    index = _stem_index(files, problems)
    items: list[RawItem] = []

    def group_or_report(path: Path) -> str | None:
        group = _group_of(path.stem, regex)
        if group is None:
            problems.bad(f"{path}: name does not match group_regex {group_regex!r}")
        return group

    if labels_csv is not None:
        task = "classification"
        csv_path = _resolve(root, labels_csv, "labels_csv")
        rows, names = read_labels_csv(csv_path, index, folder, wanted, problems)
        if wanted is None:
            problems.note(
                f"classes numbered from the sorted labels of {csv_path.name} (integers by "
                "value, else names alphabetically): "
                + ", ".join(f"{k}={name}" for k, name in enumerate(names))
                + "; pass the option classes (a list or a file of names) to fix the numbering, "
                "e.g. for a test set that lacks a class"
            )
        for raw, label, number in rows:
            group = group_or_report(raw)
            if group is not None:
                extra = {"class_name": label, "label_file": str(csv_path), "label_line": number}
                items.append(RawItem(raw.stem, raw, group, names.index(label), None, extra))
        listed = {raw for raw, _, _ in rows}
        unlisted = [p for p in index.values() if p not in listed]
        if unlisted:
            problems.note(f"{len(unlisted)} raw file(s) not in {csv_path} left out "
                          f"(e.g. {unlisted[0].name})")  # fmt: skip
    else:
        task = "segmentation"
        names = wanted if wanted is not None else DEFAULT_SEGMENTATION_CLASSES
        if len(names) != 2:
            raise DatasetError(f"{spec.name} option classes: a mask dataset has 2 classes "
                               f"(background, object), got {list(names)}")  # fmt: skip
        masks = _masks(mask_folder, problems)  # type: ignore[arg-type]
        for stem, raw in index.items():
            mask = masks.get(stem)
            if mask is None:
                problems.bad(f"{raw}: no mask named {stem}.* in {mask_folder}")
                continue
            group = group_or_report(raw)
            if group is not None:
                items.append(RawItem(stem, raw, group, None, mask))
        orphans = sorted(set(masks) - set(index))
        if orphans:
            problems.note(f"{len(orphans)} mask(s) without raw file left out "
                          f"(e.g. {masks[orphans[0]].name})")  # fmt: skip
    if not items:
        detail = f"; {summarise_skipped(problems.skipped)}" if problems.skipped else ""
        raise DatasetError(f"{spec.name}: no usable items in {folder}{detail}")
    opened = attrs.evolve(spec, task=task, classes=names, camera=cam)
    read = ReadOptions(
        bits=bits, headerless_shape=geometry, float_scale=float_scale, expect_shape=geometry
    )
    items.sort(key=lambda item: item.id)
    if not isinstance(group_overlapping, bool):
        raise DatasetError(
            f"{spec.name} option group_overlapping: expected true or false, got "
            f"{group_overlapping!r}"
        )
    cache = parse_cache_option(overlap_cache, f"{spec.name} option overlap_cache")
    dataset = FileRawDataset(opened, intensity, items, read, problems, {"root": str(root)})
    dataset.camera_source = camera_source
    if group_overlapping:
        _group_overlapping(dataset, cache)
    return dataset


def _group_overlapping(dataset: FileRawDataset, cache: Path | bool | None) -> None:
    items = dataset.items

    def load(k: int) -> Any:
        return grey_from_mosaic(dataset.read_raw(items[k]).raw)

    report = detect_overlaps(
        [item.id for item in items],
        load,
        [file_digest(item.path) for item in items],
        cache_dir=cache,
        method="grey-mosaic",
    )
    groups = merge_groups([item.group for item in items], [item.id for item in items], report)
    dataset.items = [attrs.evolve(item, group=g) for item, g in zip(items, groups, strict=True)]
    dataset.overlap = report
    dataset.notes.extend(report.notes)
    if report.components:
        dataset.notes.append(
            f"{report.merged_images} image(s) merged into the groups of overlapping images: "
            + describe_components(report)
        )


RAW_FOLDER = DatasetSpec(
    name="raw-folder",
    task="classification",
    description=(
        "any folder of raw files (TIFF, DNG/camera raw, .npy, headerless .raw) with labels "
        "from a CSV (classification) or masks from a folder (segmentation)"
    ),
    classes=(),
    camera=NEUTRAL_CAMERA,
    opener=open_folder,
    intensities=(1.0,),
    needs_data_root=True,
    checker=None,
    reference="user data",
    options={
        "labels_csv": "CSV with columns file,label (classification)",
        "masks_dir": "masks named like the raw files, 0 and one object value (segmentation)",
        "classes": "class names in index order (integer labels index it), or a file of names",
        "images_dir": "folder of raw files relative to the data root (default: the root)",
        "pattern": "glob for raw files (default '*'; '**/*' recurses)",
        "shape": "[H, W] of headerless .raw files and of every item",
        "bits": "bit depth of stored integers (required for .raw)",
        "float_scale": "full scale of float files stored on the integer scale",
        "camera": "camera profile name or table of camera fields (DNG metadata wins)",
        "group_regex": "regex on the file stem giving the split group (named group 'group')",
        "skip_bad": "leave out and report bad rows or files instead of failing (reads all)",
        "group_overlapping": "merge the groups of images of overlapping fields of view (reads all)",
        "overlap_cache": "folder caching the overlap map (default: user cache; false: none)",
    },
)
"""Declaration of the generic ``raw-folder`` dataset; task, classes and camera
are set when it is opened."""
