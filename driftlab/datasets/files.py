"""File-backed raw datasets: one raw file (and optionally one mask file) per item.

Shared by the Zenodo loaders (:mod:`driftlab.datasets.microscopy`,
:mod:`driftlab.datasets.drone`) and generic raw folders
(:mod:`driftlab.datasets.folder`). A loader scans its layout into a list of
:class:`RawItem`; :class:`FileRawDataset` reads them lazily with
:func:`driftlab.io.raw.read_raw` and :func:`read_mask`.

Bad entries either raise :class:`~driftlab.datasets.base.DatasetError` at
once or, with ``skip_bad=True``, are left out and reported in
``RawDataset.skipped`` (see :class:`Problems`).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from driftlab.datasets.base import DatasetError, DatasetSpec, RawDataset, Sample
from driftlab.io.raw import (
    CAMERA_RAW_SUFFIXES,
    RawFrame,
    RawReadError,
    check_tiff_size,
    read_npy,
    read_raw,
)

__all__ = [
    "MASK_SUFFIXES",
    "FileRawDataset",
    "Problems",
    "RawItem",
    "ReadOptions",
    "list_files",
    "parse_shape",
    "read_mask",
    "summarise_skipped",
    "write_skip_list",
]

MASK_SUFFIXES: tuple[str, ...] = (".png", ".tif", ".tiff", ".bmp", ".npy")


class Problems:
    """Collects what a loader found wrong while scanning a layout.

    Parameters
    ----------
    skip_bad : bool
        False: :meth:`bad` raises at once. True: it records the message in
        :attr:`skipped` and the caller leaves the entry out.

    Attributes
    ----------
    skipped : list of str
        Messages of entries left out because they are broken.
    notes : list of str
        Entries left out by design (rare classes, unlabelled files ...);
        never an error.
    """

    def __init__(self, skip_bad: bool) -> None:
        self.skip_bad = bool(skip_bad)
        self.skipped: list[str] = []
        self.notes: list[str] = []

    def bad(self, message: str) -> None:
        """Report a broken entry.

        Raises
        ------
        DatasetError
            With ``message``, unless ``skip_bad`` is set.
        """
        if not self.skip_bad:
            raise DatasetError(message)
        self.skipped.append(message)

    def note(self, message: str) -> None:
        """Record an entry left out by design."""
        self.notes.append(message)


SKIP_SUMMARY_LIMIT = 5
"""How many skipped entries a message quotes before pointing at the full list."""


def write_skip_list(messages: Sequence[str], path: str | Path | None = None) -> Path:
    """Write one skipped entry per line to a text file.

    Parameters
    ----------
    messages : sequence of str
        One message per skipped file or entry (each names its path).
    path : str or Path, optional
        Where to write; default: a new file ``driftlab-skipped-*.txt`` in the
        system's temporary folder (never next to the data, which may be
        read-only).

    Returns
    -------
    pathlib.Path
        The file written (complete: written to a temporary name, then moved).
    """
    text = "".join(f"{' '.join(str(m).splitlines())}\n" for m in messages)
    if path is None:
        fd, name = tempfile.mkstemp(prefix="driftlab-skipped-", suffix=".txt")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        return Path(name)
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path


def summarise_skipped(
    messages: Sequence[str], *, limit: int = SKIP_SUMMARY_LIMIT, listing: str | Path | None = None
) -> str:
    """One short line about skipped entries: a count, the first few, and a file with all.

    Parameters
    ----------
    messages : sequence of str
        One message per skipped entry.
    limit : int
        How many messages to quote.
    listing : str or Path, optional
        Where to write the full list when there are more than ``limit``
        (default: a temporary file, see :func:`write_skip_list`).

    Returns
    -------
    str
        ``"N skipped: first; second; ..."`` plus ``"; all N listed in FILE"``
        when some were left unquoted.
    """
    messages = [str(m) for m in messages]
    if not messages:
        return "0 skipped"
    head = "; ".join(messages[:limit])
    text = f"{len(messages)} skipped: {head}"
    if len(messages) > limit:
        written = write_skip_list(messages, listing)
        text += f"; ... all {len(messages)} listed in {written}"
    return text


@attrs.frozen
class RawItem:
    """One item of a file-backed dataset, before its pixels are read.

    Attributes
    ----------
    id : str
        Unique, stable identifier (usually the file stem); the same item has
        the same id at every intensity level.
    path : pathlib.Path
        Raw file.
    group : str
        Split group (source frame of a tile; the id for independent items).
    label : int or None
        Class index into the dataset's classes (classification).
    mask_path : pathlib.Path or None
        Mask file (segmentation).
    extra : mapping
        More metadata copied into ``Sample.meta`` (label name, label file
        and line ...).
    """

    id: str
    path: Path
    group: str
    label: int | None = None
    mask_path: Path | None = None
    extra: Mapping[str, Any] = attrs.field(factory=dict)


def parse_shape(value: object, where: str = "shape") -> tuple[int, int] | None:
    """Read an ``(H, W)`` option as given in Python or a TOML config.

    Parameters
    ----------
    value : None, False, "any", "HxW" string or sequence of two ints
        None, False and ``"any"`` mean "no fixed shape".
    where : str
        Option name for the error message.

    Returns
    -------
    tuple of int or None

    Raises
    ------
    DatasetError
        Anything else, or non-positive sizes.
    """
    if value is None or value is False or (isinstance(value, str) and value.lower() == "any"):
        return None
    try:
        if isinstance(value, str):
            parts = value.lower().replace(",", "x").split("x")
            shape = tuple(int(p) for p in parts)
        else:
            shape = tuple(int(v) for v in value)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        shape = ()
    if len(shape) != 2 or min(shape) <= 0:
        raise DatasetError(
            f"{where}: expected two positive integers (H, W), e.g. [256, 256] or '256x256', "
            f"got {value!r}"
        )
    return shape  # type: ignore[return-value]


@attrs.frozen
class ReadOptions:
    """How the raw files of a dataset are decoded and validated.

    Attributes
    ----------
    bits : int or None
        Bit depth of stored integers (files with a narrower integer type, or
        values above ``2**bits - 1``, are rejected); None: the dtype width.
    headerless_shape : tuple of int or None
        ``(H, W)`` of headerless ``.raw`` files.
    float_scale : float or None
        Full scale of floating-point files stored on the integer scale.
    expect_shape : tuple of int or None
        Every raw item must be ``(H, W)`` exactly; None accepts any even size.
    """

    bits: int | None = None
    headerless_shape: tuple[int, int] | None = attrs.field(default=None, converter=parse_shape)
    float_scale: float | None = None
    expect_shape: tuple[int, int] | None = attrs.field(default=None, converter=parse_shape)


def list_files(folder: Path, suffixes: Iterable[str]) -> list[Path]:
    """Regular, non-hidden files of ``folder`` whose suffix is in ``suffixes``.

    Parameters
    ----------
    folder : pathlib.Path
        Folder to list (not recursive).
    suffixes : iterable of str
        Lower-case suffixes with the dot (``.tif``); matching ignores case.

    Returns
    -------
    list of pathlib.Path
        Sorted by name.
    """
    wanted = {s.lower() for s in suffixes}
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in wanted
    )


def _read_mask_array(path: Path) -> np.ndarray:
    suffix = path.suffix.lower()
    if suffix == ".npy":
        return read_npy(path)
    if suffix in (".tif", ".tiff"):
        import tifffile

        check_tiff_size(path)
        return np.asarray(tifffile.imread(path))
    from PIL import Image

    with Image.open(path) as image:
        image.load()
        if image.mode == "P":
            image = image.convert("RGB")
        return np.asarray(image)


def _distinct(values: np.ndarray, limit: int = 5) -> str:
    """The first ``limit`` distinct values (or colours) of a small sample, for messages."""
    sample = np.unique(values[: 1 << 16], axis=0)
    shown = [v.tolist() if isinstance(v, np.ndarray) else v.item() for v in sample[:limit]]
    return ", ".join(map(str, shown)) + (" ..." if len(sample) > limit else "")


def read_mask(path: str | Path) -> np.ndarray:
    """Read a binary segmentation mask.

    A mask stores the background as 0 and the object class as **one**
    non-zero value (1 for index masks, 255 for 8-bit images, ``True`` for
    1-bit PNGs) or, in a colour image, one non-black colour. Masks with two
    or more distinct non-zero values or colours (a multi-class mask, an
    anti-aliased edge, a Pascal VOC palette with its 255 border) are refused
    rather than merged into the object class; there is no ignore index.

    Parameters
    ----------
    path : str or pathlib.Path
        PNG/BMP (Pillow), TIFF (tifffile) or ``.npy`` file holding a 2-D
        mask, or an ``(H, W, C)`` image whose colour channels are combined
        (an alpha channel is ignored).

    Returns
    -------
    numpy.ndarray
        ``(H, W)`` uint8 class indices: 1 on the object, 0 elsewhere.

    Raises
    ------
    DatasetError
        Missing, corrupt or truncated file, a TIFF or ``.npy`` declaring more
        than :data:`driftlab.io.raw.MAX_RAW_BYTES`, an array that is not
        2-D or ``(H, W, C)``, negative or NaN values, or more than one
        distinct object value or colour (the message names the file and the
        values found).
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: mask file not found")
    try:
        array = _read_mask_array(path)
    except RawReadError as exc:  # too large, not a .npy file, truncated: already explained
        raise DatasetError(f"mask {exc}") from exc
    except Exception as exc:  # PIL/tifffile/numpy raise many types for broken files
        raise DatasetError(
            f"{path}: corrupt or truncated mask ({type(exc).__name__}: {exc})"
        ) from exc
    if array.ndim == 3 and array.shape[2] in (2, 4):
        array = array[..., :-1]  # drop alpha
    if array.ndim not in (2, 3) or array.size == 0 or array.dtype.kind not in "biuf":
        raise DatasetError(
            f"{path}: expected a 2-D mask (or an (H, W, C) image) of numbers, got "
            f"{array.dtype} of shape {array.shape}"
        )
    if array.dtype.kind == "f" and not np.all(np.isfinite(array)):
        raise DatasetError(f"{path}: mask holds NaN or Inf")
    if array.dtype.kind in "if" and array.min() < 0:
        raise DatasetError(
            f"{path}: mask holds negative values (lowest {array.min()}); expected 0 for the "
            "background and one non-negative object value"
        )
    on = np.any(array > 0, axis=2) if array.ndim == 3 else array > 0
    objects = array[on]  # (K,) values or (K, C) colours of the object pixels
    if len(objects) and np.any(objects != objects[0]):
        what = "colours" if array.ndim == 3 else "values"
        raise DatasetError(
            f"{path}: mask holds more than one non-zero {what[:-1]} ({_distinct(objects)}); a "
            "mask of the 2 classes background, object holds 0 and one object value (e.g. 1 or "
            "255) or one colour; multi-class or anti-aliased masks are not read: threshold "
            "them to one value first"
        )
    return on.astype(np.uint8)


class FileRawDataset(RawDataset):
    """Raw dataset whose items are files listed by a loader.

    Parameters
    ----------
    spec : DatasetSpec
        Declaration (with the classes the labels index into).
    intensity : float
        Light level of the files, 1.0 = full.
    items : sequence of RawItem
        Items in index order; ids must be unique.
    read : ReadOptions
        Decoding and validation of raw files.
    problems : Problems, optional
        Messages gathered while scanning; copied to :attr:`skipped` and
        :attr:`notes`. With ``problems.skip_bad`` set, every item is read
        once here and unreadable ones are left out too, so that every
        remaining item loads (:attr:`verified` is then True).
    extra_meta : mapping, optional
        Metadata added to every sample (intensity level folder ...).

    Raises
    ------
    DatasetError
        Duplicate ids, a segmentation declaration with fewer than 2
        classes, or no item left; and (without ``problems.skip_bad``) a
        classification item whose label is not a class index in
        ``0 .. len(spec.classes) - 1`` or a segmentation item without a mask,
        naming the raw file and the label file and line when known (with
        ``skip_bad`` such items are left out and reported in
        :attr:`skipped`).
    """

    def __init__(
        self,
        spec: DatasetSpec,
        intensity: float,
        items: Sequence[RawItem],
        read: ReadOptions,
        problems: Problems | None = None,
        extra_meta: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(spec, intensity)
        if spec.task == "segmentation" and len(spec.classes) < 2:
            raise DatasetError(
                f"{spec.name}: a mask dataset needs the classes background and object, got "
                f"{list(spec.classes)}"
            )
        self.read = read
        self.extra_meta = dict(extra_meta or {})
        problems = problems if problems is not None else Problems(skip_bad=False)
        seen: dict[str, Path] = {}
        for item in items:
            if item.id in seen:
                raise DatasetError(
                    f"{spec.name}: item id {item.id!r} is used by both {seen[item.id]} and "
                    f"{item.path}"
                )
            seen[item.id] = item.path
        self.items: list[RawItem] = [i for i in items if self._target_ok(i, spec, problems)]
        self.verified = problems.skip_bad
        if self.verified:
            self.items = [item for item in self.items if self._readable(item, problems)]
        self.skipped = list(problems.skipped)
        self.notes = list(problems.notes)
        if not self.items:
            detail = f"; {summarise_skipped(self.skipped)}" if self.skipped else ""
            raise DatasetError(f"{spec.name}: no usable items at intensity {intensity}{detail}")

    @staticmethod
    def _target_ok(item: RawItem, spec: DatasetSpec, problems: Problems) -> bool:
        """Whether ``item`` has the target its task needs, in the class range."""
        n = len(spec.classes)
        source = (
            f" ({item.extra['label_file']}:{item.extra['label_line']})"
            if "label_file" in item.extra and "label_line" in item.extra
            else ""
        )
        if spec.task == "classification":
            label = item.label
            if label is None or isinstance(label, bool) or not isinstance(label, (int, np.integer)):
                problems.bad(f"{item.path}: expected an integer class index, got {label!r}{source}")
                return False
            if not 0 <= int(label) < n:
                problems.bad(
                    f"{item.path}: class index {int(label)} outside 0..{n - 1} of the {n} classes "
                    f"of {spec.name} ({', '.join(spec.classes)}){source}"
                )
                return False
            return True
        if item.mask_path is None:
            problems.bad(f"{item.path}: segmentation item without a mask")
            return False
        return True

    def _readable(self, item: RawItem, problems: Problems) -> bool:
        try:
            self._load_item(item)
        except DatasetError as exc:
            problems.bad(str(exc))
            return False
        return True

    def __len__(self) -> int:
        return len(self.items)

    @property
    def ids(self) -> list[str]:
        """Item ids in index order."""
        return [item.id for item in self.items]

    @property
    def groups(self) -> list[str]:
        """Split group of every item, in index order."""
        return [item.group for item in self.items]

    @property
    def labels(self) -> np.ndarray | None:
        """``(N,)`` int64 class indices for classification, else None."""
        if self.spec.task != "classification":
            return None
        return np.array([item.label for item in self.items], dtype=np.int64)

    def read_raw(self, item: RawItem) -> RawFrame:
        """Decode one raw file and validate its shape.

        Returns
        -------
        driftlab.io.raw.RawFrame

        Raises
        ------
        DatasetError
            Unreadable, truncated or corrupt file, wrong bit depth, or a
            shape other than :attr:`ReadOptions.expect_shape`.
        """
        suffix = item.path.suffix.lower()
        try:
            frame = read_raw(
                item.path,
                shape=self.read.headerless_shape if suffix == ".raw" else None,
                bits=self.read.bits if suffix not in CAMERA_RAW_SUFFIXES else None,
                float_scale=self.read.float_scale,
            )
        except RawReadError as exc:
            raise DatasetError(str(exc)) from exc
        expect = self.read.expect_shape
        if expect is not None and frame.raw.shape != expect:
            raise DatasetError(
                f"{item.path}: raw image is {frame.raw.shape[0]}x{frame.raw.shape[1]}, expected "
                f"{expect[0]}x{expect[1]}"
            )
        return frame

    def _load_item(self, item: RawItem) -> Sample:
        frame = self.read_raw(item)
        meta: dict[str, Any] = {
            "id": item.id,
            "group": item.group,
            "path": str(item.path),
            "intensity": self.intensity,
            **self.extra_meta,
            **item.extra,
        }
        if frame.camera is not None:
            meta["camera"] = frame.camera
        if self.spec.task == "classification":
            if item.label is None:
                raise DatasetError(f"{item.path}: classification item without a label")
            return Sample(frame.raw, int(item.label), meta)
        if item.mask_path is None:
            raise DatasetError(f"{item.path}: segmentation item without a mask")
        mask = read_mask(item.mask_path)
        if mask.shape != frame.raw.shape:
            raise DatasetError(
                f"{item.mask_path}: mask is {mask.shape[0]}x{mask.shape[1]} but its raw image "
                f"{item.path} is {frame.raw.shape[0]}x{frame.raw.shape[1]}"
            )
        meta["mask_path"] = str(item.mask_path)
        return Sample(frame.raw, mask, meta)

    def content_digest(self, index: int) -> str:
        """:func:`driftlab.cache.raw_digest` of item ``index``'s decoded raw mosaic (the
        mask is not read): a copy under another name or in another file format has the
        same digest.

        Raises
        ------
        DatasetError
            As :meth:`read_raw`.
        """
        from driftlab.cache import raw_digest

        return raw_digest(self.read_raw(self.items[index]).raw)

    def load(self, index: int) -> Sample:
        """Read item ``index``: raw ``(H, W)`` float32 in [0, 1] and its target.

        Raises
        ------
        DatasetError
            Unreadable raw or mask file, wrong bit depth or shape, or a mask
            whose size differs from its raw image; the message names the file.
        """
        return self._load_item(self.items[index])
