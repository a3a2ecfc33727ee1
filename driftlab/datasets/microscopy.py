"""Raw-Microscopy: leukocyte classification from raw bright-field microscope crops.

Layout of the Zenodo record (DOI 10.5281/zenodo.5235536)::

    microscopy/
      images/raw_scale100/<stem>.tiff     16-bit Bayer crops, 256x256
      images/raw_scale075/ ... raw_scale001/   the same crops at lower light
      labels/<name>.txt (or .dat)        lines "<stem> <CLASS>", whitespace-separated

Class rules follow the authors' loader (Oala et al., TMLR 2023): annotations
use the 16-class vocabulary of :data:`ANNOTATION_CLASSES`; classes with 4 or
fewer labelled images are dropped, which on the published labels leaves the
nine :data:`CLASSES`; the image the authors marked invalid
(:data:`EXCLUDED_STEMS`) is left out. ``--data-root`` may point at the
unpacked record (holding ``microscopy/``) or at ``microscopy/`` itself.

**Split groups.** By default every image is its own group, as in the
authors' splits. File stems name the slide and the zone of the smear the crop
was taken from (``Ma190c_lame3_zone13_composite_Mcropped_2``: slide
``lame3``, zone 13, crop 2); crops of one zone can show neighbouring cells of
the same field, so ``group_by="zone"`` groups them by the stem up to and
including ``zone<N>`` (``Ma190c_lame3_zone13``) and keeps them on one side of
every split. A stem without a ``zone<N>`` part is then an error naming the
file.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import attrs
import numpy as np

from driftlab.datasets.base import DatasetError, DatasetSpec
from driftlab.datasets.files import (
    FileRawDataset,
    Problems,
    RawItem,
    ReadOptions,
    list_files,
    parse_shape,
)
from driftlab.datasets.zenodo import (
    LEVELS,
    REFERENCE,
    check_levels,
    dataset_root,
    level_folder,
    missing,
)

__all__ = [
    "ANNOTATION_CLASSES",
    "CLASSES",
    "EXCLUDED_STEMS",
    "GROUP_BY",
    "MICROSCOPY",
    "MIN_CLASS_SIZE",
    "LabelEntry",
    "check_microscopy",
    "open_microscopy",
    "read_labels",
    "scan_microscopy",
    "zone_group",
]

TITLE = "Raw-Microscopy"
ANNOTATION_CLASSES: tuple[str, ...] = (
    "BAS", "EBO", "EOS", "KSC", "LYA", "LYT", "MMZ", "MOB",
    "MON", "MYB", "MYO", "NGB", "NGS", "PMB", "PMO", "UNC",
)  # fmt: skip
"""Every class an annotation line may name (the leukocyte morphology scheme used by the authors)."""
CLASSES: tuple[str, ...] = ("BAS", "EOS", "KSC", "LYA", "LYT", "MON", "NGB", "NGS", "UNC")
"""The nine classes used for training; targets index into this tuple."""
MIN_CLASS_SIZE = 5
"""Classes with fewer labelled images (4 or fewer) are dropped."""
EXCLUDED_STEMS: tuple[str, ...] = ("Ma190c_lame3_zone13_composite_Mcropped_2",)
"""Images the authors' loader leaves out as invalid."""
LABEL_SUFFIXES = (".txt", ".dat")
IMAGE_SUFFIXES = (".tiff", ".tif")
IMAGE_SHAPE = (256, 256)
GROUP_BY: tuple[str, ...] = ("image", "zone")
"""Values of the ``group_by`` option."""
ZONE = re.compile(r"^(?P<zone>.*?_zone\d+)(?:_|$)", re.IGNORECASE)


def zone_group(stem: str) -> str | None:
    """Slide zone of a crop from its file stem.

    Parameters
    ----------
    stem : str
        ``Ma190c_lame3_zone13_composite_Mcropped_2`` style name.

    Returns
    -------
    str or None
        The stem up to and including ``zone<N>`` (``Ma190c_lame3_zone13``),
        or None when it names no zone.
    """
    match = ZONE.match(stem)
    return match.group("zone") if match else None


@attrs.frozen
class LabelEntry:
    """One line of a label file.

    Attributes
    ----------
    stem : str
        Image file name without suffix.
    name : str
        Class code (``BAS`` ...).
    file : pathlib.Path
        Label file.
    line : int
        1-based line number.
    """

    stem: str
    name: str
    file: Path
    line: int

    @property
    def where(self) -> str:
        """``file:line`` for messages."""
        return f"{self.file}:{self.line}"


def _strip_image_suffix(token: str) -> str:
    lower = token.lower()
    for suffix in IMAGE_SUFFIXES:
        if lower.endswith(suffix):
            return token[: -len(suffix)]
    return token


def read_labels(folder: Path, problems: Problems) -> list[LabelEntry]:
    """Parse every label file of ``microscopy/labels``.

    Parameters
    ----------
    folder : pathlib.Path
        The labels folder; its ``*.txt`` and ``*.dat`` files are read in
        name order. Blank lines are ignored.
    problems : Problems
        Receives malformed lines, unknown classes and duplicate stems (with
        file and line number); raises at the first one unless skipping.

    Returns
    -------
    list of LabelEntry
        Valid entries, in file and line order.

    Raises
    ------
    DatasetError
        No label file, an unreadable file, or (without ``skip_bad``) the
        first bad line.
    """
    files = list_files(folder, LABEL_SUFFIXES) if folder.is_dir() else []
    if not files:
        raise DatasetError(missing(folder / "*.txt", TITLE, "a label file '<stem> <CLASS>'"))
    entries: list[LabelEntry] = []
    first: dict[str, LabelEntry] = {}
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise DatasetError(f"{path}: cannot read label file ({exc})") from exc
        for number, line in enumerate(text.splitlines(), start=1):
            tokens = line.split()
            if not tokens:
                continue
            if len(tokens) != 2:
                problems.bad(
                    f"{path}:{number}: malformed label line {line.strip()!r}; expected "
                    "'<file stem> <CLASS>'"
                )
                continue
            entry = LabelEntry(_strip_image_suffix(tokens[0]), tokens[1], path, number)
            if entry.name not in ANNOTATION_CLASSES:
                problems.bad(
                    f"{entry.where}: unknown class {entry.name!r} for {entry.stem}; known "
                    f"classes: {', '.join(ANNOTATION_CLASSES)}"
                )
                continue
            if entry.stem in first:
                problems.bad(
                    f"{entry.where}: {entry.stem} is labelled again (first at "
                    f"{first[entry.stem].where})"
                )
                continue
            first[entry.stem] = entry
            entries.append(entry)
    return entries


def _kept_entries(entries: list[LabelEntry], problems: Problems) -> list[LabelEntry]:
    counts = Counter(entry.name for entry in entries)
    for name in sorted(counts):
        if name not in CLASSES:
            problems.note(f"class {name}: {counts[name]} labelled image(s), not a training class")
        elif counts[name] < MIN_CLASS_SIZE:
            problems.note(
                f"class {name}: {counts[name]} labelled image(s) (at most {MIN_CLASS_SIZE - 1}), "
                "dropped as rare"
            )
    kept = []
    for entry in entries:
        if entry.name not in CLASSES or counts[entry.name] < MIN_CLASS_SIZE:
            continue
        if entry.stem in EXCLUDED_STEMS:
            problems.note(f"{entry.where}: {entry.stem} left out (marked invalid by the authors)")
            continue
        kept.append(entry)
    return kept


def _image_index(folder: Path, problems: Problems) -> dict[str, Path]:
    index: dict[str, Path] = {}
    for path in list_files(folder, IMAGE_SUFFIXES):
        if path.stem in index:
            problems.bad(f"{path}: same image stem as {index[path.stem]}; keep only one of them")
            continue
        index[path.stem] = path
    return index


def scan_microscopy(
    spec: DatasetSpec,
    data_root: Path,
    intensity: float,
    skip_bad: bool,
    group_by: str = "image",
) -> tuple[list[RawItem], Problems]:
    """List the labelled images of one intensity level without reading pixels.

    Parameters
    ----------
    spec : DatasetSpec
        The Raw-Microscopy declaration.
    data_root : pathlib.Path
        Unpacked record or its ``microscopy`` folder.
    intensity : float
        One of the seven captured levels.
    skip_bad : bool
        Leave broken entries out (reported) instead of raising.
    group_by : {"image", "zone"}
        Split group of each crop: the image itself, or its slide zone
        (:func:`zone_group`).

    Returns
    -------
    items : list of RawItem
        Sorted by stem; ``label`` indexes :data:`CLASSES`; groups as
        ``group_by`` says.
    problems : Problems

    Raises
    ------
    DatasetError
        Missing folders or label file (with where to get the data), an
        intensity that was not captured, an unknown ``group_by``, or
        (without ``skip_bad``) the first bad label line, missing image or
        (with ``group_by="zone"``) stem without a zone.
    """
    if group_by not in GROUP_BY:
        raise DatasetError(
            f"{spec.name} option group_by: expected one of {', '.join(GROUP_BY)}, got {group_by!r}"
        )
    problems = Problems(skip_bad)
    folder = level_folder(spec.name, intensity)
    root = dataset_root(data_root, "microscopy", ("images", "labels"), TITLE)
    labelled = read_labels(root / "labels", problems)
    entries = _kept_entries(labelled, problems)
    image_dir = root / "images" / folder
    if not image_dir.is_dir():
        raise DatasetError(missing(image_dir, TITLE, "16-bit .tiff crops"))
    images = _image_index(image_dir, problems)
    if not images:
        raise DatasetError(f"{image_dir}: empty folder (no .tiff/.tif images)")
    items = []
    for entry in entries:
        path = images.get(entry.stem)
        if path is None:
            problems.bad(
                f"{image_dir / (entry.stem + '.tiff')}: missing image for label entry "
                f"{entry.where} ({entry.name})"
            )
            continue
        group = entry.stem if group_by == "image" else zone_group(entry.stem)
        if group is None:
            problems.bad(
                f"{path}: file name names no slide zone ('..._zone<N>_...'), needed by "
                "group_by='zone'"
            )
            continue
        extra = {"class_name": entry.name, "label_file": str(entry.file), "label_line": entry.line}
        items.append(RawItem(entry.stem, path, group, CLASSES.index(entry.name), None, extra))
    stems = {entry.stem for entry in labelled}
    unlabelled = sorted(stem for stem in images if stem not in stems)
    if unlabelled:
        problems.note(
            f"{image_dir}: {len(unlabelled)} image(s) without a label line left out "
            f"(e.g. {images[unlabelled[0]].name})"
        )
    items.sort(key=lambda item: item.id)
    return items, problems


def open_microscopy(
    spec: DatasetSpec,
    data_root: Path | None,
    intensity: float,
    *,
    skip_bad: bool = False,
    image_shape: object = IMAGE_SHAPE,
    float_scale: float | None = None,
    group_by: str = "image",
) -> FileRawDataset:
    """Open Raw-Microscopy at one captured intensity level.

    Parameters
    ----------
    spec : DatasetSpec
        The Raw-Microscopy declaration.
    data_root : pathlib.Path
        Unpacked record or its ``microscopy`` folder.
    intensity : float
        1.0, 0.75, 0.5, 0.25, 0.1, 0.05 or 0.01.
    skip_bad : bool
        Leave out (and report in ``dataset.skipped``) bad label lines,
        missing images and files that fail to read; every file is read
        once while opening. Default: raise at the first problem.
    image_shape : (int, int), "HxW", None or "any"
        Required ``(H, W)`` of every crop (256x256 in the record); None,
        False or ``"any"`` accept any even size.
    float_scale : float, optional
        Full scale of crops stored as floating-point TIFFs on the integer
        scale (e.g. 65535 for float copies of the 16-bit data); samples are
        divided by it. Default: float samples must already lie in [0, 1].
    group_by : {"image", "zone"}
        Split group of each crop (module notes): the image (default) or its
        slide zone.

    Returns
    -------
    FileRawDataset
        Items sorted by stem; samples are ``(256, 256)`` float32 mosaics in
        [0, 1] (stored 16-bit values / 65535) with the class index of
        :data:`CLASSES` as target.

    Raises
    ------
    DatasetError
        See :func:`scan_microscopy`; also unreadable files when skipping is
        off (raised when the item is loaded).
    """
    if float_scale is not None and not (
        isinstance(float_scale, (int, float)) and not isinstance(float_scale, bool)
        and np.isfinite(float_scale) and float_scale > 0
    ):  # fmt: skip
        raise DatasetError(
            f"{spec.name} option float_scale: expected a positive number (e.g. 65535), got "
            f"{float_scale!r}"
        )
    items, problems = scan_microscopy(spec, data_root, intensity, skip_bad, group_by)
    shape = parse_shape(image_shape, f"{spec.name} option image_shape")
    read = ReadOptions(
        bits=spec.camera.bit_depth,
        expect_shape=shape,
        float_scale=float(float_scale) if float_scale is not None else None,
    )
    return FileRawDataset(
        spec, intensity, items, read, problems, {"level": level_folder(spec.name, intensity)}
    )


def check_microscopy(spec: DatasetSpec, data_root: Path) -> list[str]:
    """Layout problems of a local Raw-Microscopy copy at all seven levels.

    Checks the folders, every label line and that every labelled image
    exists at every level; pixels are not read (``driftlab data check``
    opens every file itself).

    Returns
    -------
    list of str
        One message per problem, each naming its path (and line).
    """
    return check_levels(spec, data_root, scan_microscopy)


MICROSCOPY = DatasetSpec(
    name="raw-microscopy",
    task="classification",
    description=(
        "Raw-Microscopy: leukocyte classification, 256x256 16-bit RGGB crops from a "
        "bright-field microscope, 7 light levels"
    ),
    classes=CLASSES,
    camera="raw-microscopy",
    opener=open_microscopy,
    intensities=tuple(LEVELS),
    needs_data_root=True,
    checker=check_microscopy,
    reference=REFERENCE,
    options={
        "skip_bad": "leave out and report bad labels or files instead of failing (reads all)",
        "image_shape": "required [H, W] of every crop (default [256, 256]; 'any' to accept any)",
        "float_scale": "full scale of float TIFF crops stored on the integer scale (e.g. 65535)",
        "group_by": "split group of a crop: 'image' (default) or its slide 'zone'",
    },
    n_items=940,
    image_shape=IMAGE_SHAPE,
)
"""Declaration of Raw-Microscopy (camera profile ``raw-microscopy``)."""
