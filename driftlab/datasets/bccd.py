"""BCCD blood-smear photographs as raw data (RGB-to-raw, DESIGN section 4).

The BCCD dataset (Shenggan/BCCD_Dataset, MIT licence) holds bright-field
blood-smear JPEGs (640 x 480 sRGB) with Pascal-VOC boxes of ``WBC``, ``RBC``
and ``Platelets``. Expected layout of ``data_root`` (or of ``data_root/bccd``)::

    Annotations/BloodImage_00000.xml    VOC boxes (xmin, ymin, xmax, ymax in pixels)
    JPEGImages/BloodImage_00000.jpg
    ImageSets/train.txt, val.txt, trainval.txt   (optional id lists; or ImageSets/Main/)

The folder is read with the general Pascal VOC reader
(:mod:`driftlab.datasets.voc`); this module adds the BCCD class vocabulary,
the assumed camera and the two datasets.

Two datasets are declared on top of it, both unprocessed to raw mosaics of
the :data:`BCCD_CAMERA` with :mod:`driftlab.datasets.unprocess` (Brooks et
al., CVPR 2019): the sRGB image is linearised, resampled by ``scale`` in
linear light, cropped, taken to camera RGB, sampled in the CFA pattern and
given shot and read noise seeded by ``(seed, item id)``.

``bccd-cells`` (classification)
    One ``crop_size`` x ``crop_size`` crop centred on every annotated cell
    (shifted inward at the image border), class WBC, RBC or Platelets.
``bccd-wbc`` (segmentation)
    ``tile_size`` tiles on a grid over each image (the last row/column flush
    with the border), kept when they contain white-blood-cell pixels; the mask
    is the union of the WBC boxes rasterised at tile resolution.

The group of every item is its source image, so crops of one image never
straddle a split; with ``group_overlapping=True`` photographs of overlapping
fields of view (BCCD holds shifted shots of the same cells under different
ids, e.g. BloodImage_00204 and 00277) share one group
(:mod:`driftlab.datasets.overlap`). Malformed XML, unknown labels, boxes outside the image or of
zero size, missing or unreadable JPEGs and size mismatches raise
:class:`BCCDError` naming the file; with ``skip_bad=True`` bad boxes (or whole
images when the file itself is bad) are left out and listed in
``dataset.skipped``. (The real subset has two zero-size RBC boxes.)
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from pathlib import Path
from typing import Any

import attrs
import numpy as np
from PIL import Image, UnidentifiedImageError
from skimage.transform import resize

from driftlab.camera import CameraParams
from driftlab.datasets import voc
from driftlab.datasets.base import DatasetSpec, RawDataset, Sample
from driftlab.datasets.intensity import item_seed, simulate_intensity
from driftlab.datasets.overlap import (
    OverlapReport,
    describe_components,
    detect_overlaps,
    file_digest,
    grey_from_rgb,
    parse_cache_option,
)
from driftlab.datasets.unprocess import linear_to_raw, srgb_to_linear
from driftlab.datasets.voc import (
    Skipped,
    VocBox,
    VocError,
    VocImage,
    VocIndex,
    find_voc_root,
    rasterise_boxes,
    scan_voc,
)

__all__ = [
    "BCCD_CAMERA",
    "BCCD_CELLS",
    "BCCD_WBC",
    "CELL_CLASSES",
    "BCCDCells",
    "BCCDError",
    "BCCDIndex",
    "BCCDWhiteCells",
    "Skipped",
    "VocBox",
    "VocImage",
    "check_bccd",
    "find_bccd_root",
    "open_bccd_cells",
    "open_bccd_wbc",
    "parse_voc",
    "rasterise_boxes",
    "scan_bccd",
]

CELL_CLASSES: tuple[str, ...] = ("WBC", "RBC", "Platelets")
SEGMENTATION_CLASSES: tuple[str, ...] = ("background", "WBC")
_REFERENCE = (
    "BCCD dataset (Shenggan/BCCD_Dataset, MIT licence), unprocessed to raw after Brooks et al., "
    "'Unprocessing Images for Learned Raw Denoising', CVPR 2019"
)

BCCD_CAMERA = CameraParams(
    name="bccd-unprocessed",
    cfa="RGGB",
    bit_depth=12,
    black_level=(64 / 4095,) * 4,
    white_balance=(1.30, 1.0, 2.05),
    color_matrix=((1.70, -0.52, -0.18), (-0.22, 1.50, -0.28), (0.03, -0.50, 1.47)),
    gain=0.45,
    read_noise=1.8,
    description=(
        "assumed 12-bit sensor behind a halogen-lit bright-field microscope, used to unprocess "
        "BCCD JPEGs: black level 64 DN, full well ~9,100 e- (0.45 DN/e-), read noise 1.8 DN; "
        "gains and matrix are plausible, not calibrated"
    ),
)


BCCDError = VocError
"""Errors of BCCD files (the general :class:`~driftlab.datasets.voc.VocError`)."""
BCCDIndex = VocIndex
"""Result of :func:`scan_bccd` (a :class:`~driftlab.datasets.voc.VocIndex`)."""


def parse_voc(
    xml_path: str | Path, jpeg_dir: str | Path, *, skip_bad: bool = False
) -> tuple[VocImage, list[Skipped]]:
    """Read one BCCD annotation: :func:`driftlab.datasets.voc.parse_voc` with the
    BCCD classes (:data:`CELL_CLASSES`).

    Raises
    ------
    BCCDError
        See :func:`driftlab.datasets.voc.parse_voc`.
    """
    return voc.parse_voc(xml_path, jpeg_dir, classes=CELL_CLASSES, skip_bad=skip_bad)


def find_bccd_root(data_root: str | Path) -> Path:
    """Folder holding ``Annotations`` and ``JPEGImages``: ``data_root`` or ``data_root/bccd``.

    Raises
    ------
    BCCDError
        If neither has both folders; the message names what is missing.
    """
    return find_voc_root(data_root, "bccd")


def scan_bccd(
    data_root: str | Path, *, skip_bad: bool = False, image_set: str | None = None
) -> VocIndex:
    """Parse every annotation of a BCCD folder (:func:`driftlab.datasets.voc.scan_voc`).

    Parameters
    ----------
    data_root : str or Path
        See :func:`find_bccd_root`.
    skip_bad : bool
        Leave out bad boxes and bad images instead of raising.
    image_set : str or None
        Restrict to the ids of ``ImageSets/Main/<name>.txt`` or
        ``ImageSets/<name>.txt`` (``train``, ``val``, ``trainval`` in the
        BCCD repository; ``test`` in the full release); None takes every
        ``Annotations/*.xml``.

    Returns
    -------
    VocIndex
        Images sorted by stem, and the report of skipped boxes and files.

    Raises
    ------
    BCCDError
        Not a BCCD folder, unknown or missing image set, no annotations, an
        unknown class, or any bad file or box unless ``skip_bad``.
    """
    return scan_voc(
        data_root, classes=CELL_CLASSES, skip_bad=skip_bad, image_set=image_set, subfolder="bccd"
    )


def _check_even(value: int, option: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise BCCDError(f"{option} must be an even integer, got {value!r}")
    if value < 2 or value % 2:
        raise BCCDError(f"{option} must be an even integer >= 2 (whole CFA blocks), got {value}")
    return int(value)


def _grid(length: int, window: int, stride: int) -> list[int]:
    positions = list(range(0, length - window + 1, stride))
    if positions and positions[-1] != length - window:
        positions.append(length - window)
    return positions


class _BCCDBase(RawDataset):
    """Shared loading: decode, linearise, resample and unprocess one window."""

    _CACHE_SIZE = 4

    def __init__(
        self,
        spec: DatasetSpec,
        index: BCCDIndex,
        *,
        size: int,
        size_option: str,
        scale: float,
        seed: int,
        noise: bool,
    ) -> None:
        super().__init__(spec, 1.0)
        self.size = _check_even(size, size_option)
        if not 0.0 < float(scale) <= 1.0:
            raise BCCDError(f"scale must lie in (0, 1] (downsampling factor), got {scale}")
        self.scale = float(scale)
        self.window = round(self.size / self.scale)
        for image in index.images:
            if self.window > min(image.width, image.height):
                raise BCCDError(
                    f"{image.jpeg_path}: {size_option}/scale = {self.window} px does not fit "
                    f"the {image.width}x{image.height} image; use a smaller {size_option} or scale"
                )
        self.root = index.root
        self.images = index.images
        self.skipped: list[Skipped] = list(index.skipped)
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise BCCDError(f"seed must be a non-negative integer, got {seed!r}")
        self.seed = int(seed)
        self.noise = bool(noise)
        self._decoded: OrderedDict[int, np.ndarray] = OrderedDict()
        self.overlap: OverlapReport | None = None
        self._merged: dict[str, str] = {}

    def group_of(self, stem: str) -> str:
        """Split group of the photograph ``stem``: itself, or the first photograph of its
        component of overlapping shots after :meth:`group_overlapping`."""
        return self._merged.get(stem, stem)

    def group_overlapping(self, cache: Path | bool | None = None) -> OverlapReport:
        """Merge the groups of photographs that show overlapping fields of view.

        Every photograph is registered against every other
        (:func:`driftlab.datasets.overlap.detect_overlaps` on the sRGB luma,
        cached by the JPEG files' SHA-256); items of images in one connected
        component of overlapping pairs then share one split group.

        Parameters
        ----------
        cache : Path, False or None
            Cache folder; False: none; None: the default folder.

        Returns
        -------
        OverlapReport
            Also kept in :attr:`overlap`; its notes go to :attr:`notes`.
        """
        images = self.images

        def load(k: int) -> np.ndarray:
            try:
                with Image.open(images[k].jpeg_path) as img:
                    return grey_from_rgb(np.asarray(img.convert("RGB")))
            except (UnidentifiedImageError, OSError) as exc:
                raise BCCDError(f"{images[k].jpeg_path}: cannot decode image: {exc}") from None

        report = detect_overlaps(
            [image.stem for image in images],
            load,
            [file_digest(image.jpeg_path) for image in images],
            cache_dir=cache,
            method="grey-rgb",
        )
        self.overlap = report
        self._merged = report.representative()
        self.notes.extend(report.notes)
        if report.components:
            self.notes.append(
                f"{report.merged_images} photograph(s) merged into the groups of overlapping "
                f"shots: " + describe_components(report)
            )
        return report

    def __getstate__(self) -> dict[str, Any]:
        # decoded images are a per-process cache: do not ship them to worker processes
        state = self.__dict__.copy()
        state["_decoded"] = OrderedDict()
        return state

    def skip_report(self) -> str:
        """Human-readable list of what ``skip_bad`` left out (empty string if nothing)."""
        return "\n".join(str(s) for s in self.skipped)

    def _srgb(self, image_index: int) -> np.ndarray:
        cached = self._decoded.get(image_index)
        if cached is not None:
            self._decoded.move_to_end(image_index)
            return cached
        image = self.images[image_index]
        try:
            with Image.open(image.jpeg_path) as img:
                array = np.asarray(img.convert("RGB"), dtype=np.uint8)
        except (UnidentifiedImageError, OSError) as exc:
            raise BCCDError(f"{image.jpeg_path}: cannot decode image: {exc}") from None
        self._decoded[image_index] = array
        if len(self._decoded) > self._CACHE_SIZE:
            self._decoded.popitem(last=False)
        return array

    def _raw(self, image_index: int, x0: int, y0: int, item_id: str) -> np.ndarray:
        srgb = self._srgb(image_index)[y0 : y0 + self.window, x0 : x0 + self.window]
        linear = srgb_to_linear(srgb)
        if self.window != self.size:
            linear = resize(
                linear,
                (self.size, self.size, 3),
                order=1,
                mode="reflect",
                anti_aliasing=self.window > self.size,
            )
        rng = np.random.default_rng(item_seed(self.seed, "bccd-noise", item_id))
        raw = linear_to_raw(linear, self.spec.camera, rng=rng, noise=self.noise)
        return raw.astype(np.float32)

    def _window_digest(self, image_index: int, x0: int, y0: int) -> str:
        """``bccd:`` + SHA-256 of the sRGB window an item is unprocessed from (before the
        noise, which is drawn per item id), with its geometry."""
        srgb = np.ascontiguousarray(
            self._srgb(image_index)[y0 : y0 + self.window, x0 : x0 + self.window]
        )
        h = hashlib.sha256(f"{srgb.shape}|{self.size}|".encode())
        h.update(srgb.tobytes())
        return f"bccd:{h.hexdigest()}"

    def _meta(self, image_index: int, item_id: str, x0: int, y0: int) -> dict[str, Any]:
        image = self.images[image_index]
        return {
            "id": item_id,
            "group": self.group_of(image.stem),
            "path": str(image.jpeg_path),
            "intensity": self.intensity,
            "window": (x0, y0, self.window),
            "scale": self.scale,
        }


class BCCDCells(_BCCDBase):
    """Raw crops centred on annotated cells, labelled WBC / RBC / Platelets.

    Parameters
    ----------
    spec : DatasetSpec
        ``bccd-cells`` (or a copy with another camera).
    index : BCCDIndex
        From :func:`scan_bccd`.
    crop_size : int
        Even side of the crops in pixels after resampling (default 64).
    scale : float
        Resampling factor of the 640x480 photographs before cropping (default
        0.5: a 64-pixel crop covers 128 original pixels, a whole RBC and most
        of a WBC).
    seed : int
        Base seed of the noise (per item: ``(seed, item id)``).
    noise : bool
        Add shot and read noise of the camera.
    max_per_class_per_image : int or None
        Keep at most this many cells of each class per image (file order),
        e.g. to temper the RBC majority.

    Raises
    ------
    BCCDError
        Odd or too large crop, bad scale, or no cells.
    """

    def __init__(
        self,
        spec: DatasetSpec,
        index: BCCDIndex,
        *,
        crop_size: int = 64,
        scale: float = 0.5,
        seed: int = 0,
        noise: bool = True,
        max_per_class_per_image: int | None = None,
    ) -> None:
        super().__init__(
            spec,
            index,
            size=crop_size,
            size_option="crop_size",
            scale=scale,
            seed=seed,
            noise=noise,
        )
        if max_per_class_per_image is not None and int(max_per_class_per_image) < 1:
            raise BCCDError(f"max_per_class_per_image must be >= 1, got {max_per_class_per_image}")
        items: list[tuple[int, VocBox]] = []
        for i, image in enumerate(self.images):
            taken: dict[str, int] = {}
            for box in image.boxes:
                count = taken.get(box.label, 0)
                if max_per_class_per_image is not None and count >= max_per_class_per_image:
                    continue
                taken[box.label] = count + 1
                items.append((i, box))
        if not items:
            raise BCCDError(f"{self.root}: no annotated cells to crop")
        self._items = items
        self._ids = [f"{self.images[i].stem}/{box.index:03d}-{box.label}" for i, box in self._items]

    def __len__(self) -> int:
        return len(self._items)

    @property
    def ids(self) -> list[str]:
        return list(self._ids)

    @property
    def labels(self) -> np.ndarray:
        return np.array([CELL_CLASSES.index(box.label) for _, box in self._items], dtype=np.int64)

    @property
    def groups(self) -> list[str]:
        return [self.group_of(self.images[i].stem) for i, _ in self._items]

    def class_counts(self) -> dict[str, int]:
        """Number of crops per class name."""
        labels = self.labels
        return {name: int((labels == k).sum()) for k, name in enumerate(CELL_CLASSES)}

    def origin(self, index: int) -> tuple[int, int]:
        """Top-left ``(x, y)`` of item ``index``'s window in the full image (pixels)."""
        image_index, box = self._items[index]
        image = self.images[image_index]
        cx, cy = box.centre
        x0 = int(np.clip(round(cx - self.window / 2), 0, image.width - self.window))
        y0 = int(np.clip(round(cy - self.window / 2), 0, image.height - self.window))
        return x0, y0

    def content_digest(self, index: int) -> str:
        """Digest of the crop's sRGB window (:meth:`_BCCDBase._window_digest`)."""
        image_index, _ = self._items[index]
        return self._window_digest(image_index, *self.origin(index))

    def load(self, index: int) -> Sample:
        """Crop ``index``: ``(crop_size, crop_size)`` float32 mosaic and class index."""
        image_index, box = self._items[index]
        x0, y0 = self.origin(index)
        item_id = self._ids[index]
        raw = self._raw(image_index, x0, y0, item_id)
        meta = {**self._meta(image_index, item_id, x0, y0), "box": attrs.astuple(box)[1:5]}
        return Sample(raw=raw, target=CELL_CLASSES.index(box.label), meta=meta)


class BCCDWhiteCells(_BCCDBase):
    """Raw tiles with white-blood-cell masks rasterised from the WBC boxes.

    Parameters
    ----------
    spec : DatasetSpec
        ``bccd-wbc`` (or a copy with another camera).
    index : BCCDIndex
        From :func:`scan_bccd`.
    tile_size : int
        Even side of the tiles after resampling (default 64).
    scale : float
        Resampling factor before tiling (default 0.25: a 64-pixel tile covers
        256 original pixels, a WBC about 49 x 44 pixels of it).
    stride : int or None
        Grid step in resampled pixels (default ``tile_size``); the last row
        and column are placed flush with the border.
    min_foreground : float
        Keep tiles whose WBC fraction exceeds this (default 0: any WBC pixel);
        a negative value keeps every tile.
    seed, noise
        As for :class:`BCCDCells`.

    Raises
    ------
    BCCDError
        Odd or too large tile, bad scale or stride, or no tile kept.
    """

    def __init__(
        self,
        spec: DatasetSpec,
        index: BCCDIndex,
        *,
        tile_size: int = 64,
        scale: float = 0.25,
        stride: int | None = None,
        min_foreground: float = 0.0,
        seed: int = 0,
        noise: bool = True,
    ) -> None:
        super().__init__(
            spec,
            index,
            size=tile_size,
            size_option="tile_size",
            scale=scale,
            seed=seed,
            noise=noise,
        )
        stride = self.size if stride is None else int(stride)
        if stride < 1:
            raise BCCDError(f"stride must be >= 1 pixel, got {stride}")
        step = max(1, round(stride / self.scale))
        items: list[tuple[int, int, int]] = []
        for i, image in enumerate(self.images):
            wbc = [b for b in image.boxes if b.label == "WBC"]
            for y0 in _grid(image.height, self.window, step):
                for x0 in _grid(image.width, self.window, step):
                    fraction = rasterise_boxes(wbc, x0, y0, self.window, self.size).mean()
                    if fraction > min_foreground:
                        items.append((i, x0, y0))
        if not items:
            raise BCCDError(f"{self.root}: no tile contains a white blood cell")
        self._items = items
        self._ids = [f"{self.images[i].stem}/y{y0:04d}x{x0:04d}" for i, x0, y0 in items]

    def __len__(self) -> int:
        return len(self._items)

    @property
    def ids(self) -> list[str]:
        return list(self._ids)

    @property
    def groups(self) -> list[str]:
        return [self.group_of(self.images[i].stem) for i, _, _ in self._items]

    def mask(self, index: int) -> np.ndarray:
        """``(tile_size, tile_size)`` uint8 WBC mask of item ``index`` (no image decoding)."""
        image_index, x0, y0 = self._items[index]
        wbc = [b for b in self.images[image_index].boxes if b.label == "WBC"]
        return rasterise_boxes(wbc, x0, y0, self.window, self.size)

    def content_digest(self, index: int) -> str:
        """Digest of the tile's sRGB window (:meth:`_BCCDBase._window_digest`)."""
        image_index, x0, y0 = self._items[index]
        return self._window_digest(image_index, x0, y0)

    def load(self, index: int) -> Sample:
        """Tile ``index``: ``(tile_size, tile_size)`` float32 mosaic and uint8 WBC mask."""
        image_index, x0, y0 = self._items[index]
        item_id = self._ids[index]
        raw = self._raw(image_index, x0, y0, item_id)
        return Sample(
            raw=raw, target=self.mask(index), meta=self._meta(image_index, item_id, x0, y0)
        )


def _with_camera(spec: DatasetSpec, cfa: str | None) -> DatasetSpec:
    if cfa is None or cfa.upper() == spec.camera.cfa:
        return spec
    try:
        camera = spec.camera.replace(cfa=cfa)
    except ValueError as exc:
        raise BCCDError(f"{spec.name}: {exc}") from None
    return attrs.evolve(spec, camera=camera)


def _finish(
    dataset: _BCCDBase,
    intensity: float,
    seed: int,
    noise: bool,
    noise_model: str | None,
    group_overlapping: bool,
    overlap_cache: object,
) -> RawDataset:
    if not isinstance(group_overlapping, bool):
        raise BCCDError(f"group_overlapping must be true or false, got {group_overlapping!r}")
    if group_overlapping:
        dataset.group_overlapping(parse_cache_option(overlap_cache, "overlap_cache"))
    model = noise_model or ("binomial" if noise else "poisson")
    return simulate_intensity(dataset, intensity, seed=seed, model=model)


def open_bccd_cells(
    spec: DatasetSpec,
    data_root: Path | None,
    intensity: float,
    *,
    crop_size: int = 64,
    scale: float = 0.5,
    seed: int = 0,
    noise: bool = True,
    skip_bad: bool = False,
    image_set: str | None = None,
    cfa: str | None = None,
    max_per_class_per_image: int | None = None,
    noise_model: str | None = None,
    group_overlapping: bool = False,
    overlap_cache: object = None,
) -> RawDataset:
    """Opener of ``bccd-cells`` (see :class:`BCCDCells` for the options).

    ``cfa`` replaces the camera's Bayer pattern (the returned dataset's
    ``spec.camera`` says which); ``intensity`` below 1 is simulated with
    :func:`~driftlab.datasets.intensity.simulate_intensity` (``noise_model``
    defaults to ``binomial`` when ``noise`` is on, else ``poisson``).
    ``group_overlapping=True`` merges the split groups of photographs that
    show overlapping fields of view (:meth:`_BCCDBase.group_overlapping`;
    ``overlap_cache`` is the cache folder, ``false`` for none).

    Raises
    ------
    BCCDError
        See :func:`scan_bccd` and :class:`BCCDCells`.
    """
    if data_root is None:
        raise BCCDError(f"{spec.name}: needs data_root, a folder in the BCCD layout")
    index = scan_bccd(data_root, skip_bad=skip_bad, image_set=image_set)
    dataset = BCCDCells(
        _with_camera(spec, cfa),
        index,
        crop_size=crop_size,
        scale=scale,
        seed=seed,
        noise=noise,
        max_per_class_per_image=max_per_class_per_image,
    )
    return _finish(dataset, intensity, seed, noise, noise_model, group_overlapping, overlap_cache)


def open_bccd_wbc(
    spec: DatasetSpec,
    data_root: Path | None,
    intensity: float,
    *,
    tile_size: int = 64,
    scale: float = 0.25,
    stride: int | None = None,
    min_foreground: float = 0.0,
    seed: int = 0,
    noise: bool = True,
    skip_bad: bool = False,
    image_set: str | None = None,
    cfa: str | None = None,
    noise_model: str | None = None,
    group_overlapping: bool = False,
    overlap_cache: object = None,
) -> RawDataset:
    """Opener of ``bccd-wbc`` (see :class:`BCCDWhiteCells` and :func:`open_bccd_cells`).

    Raises
    ------
    BCCDError
        See :func:`scan_bccd` and :class:`BCCDWhiteCells`.
    """
    if data_root is None:
        raise BCCDError(f"{spec.name}: needs data_root, a folder in the BCCD layout")
    index = scan_bccd(data_root, skip_bad=skip_bad, image_set=image_set)
    dataset = BCCDWhiteCells(
        _with_camera(spec, cfa),
        index,
        tile_size=tile_size,
        scale=scale,
        stride=stride,
        min_foreground=min_foreground,
        seed=seed,
        noise=noise,
    )
    return _finish(dataset, intensity, seed, noise, noise_model, group_overlapping, overlap_cache)


def check_bccd(spec: DatasetSpec, data_root: Path) -> list[str]:
    """Problems of a BCCD folder, for ``driftlab data check``.

    Returns
    -------
    list of str
        One line per missing folder, bad file or bad box; empty when clean.
    """
    try:
        index = scan_bccd(data_root, skip_bad=True)
    except BCCDError as exc:
        return [str(exc)]
    return [str(s) for s in index.skipped]


_COMMON_OPTIONS = {
    "scale": "resampling factor of the 640x480 photographs before cropping, in (0, 1]",
    "seed": "non-negative base seed of the sensor noise (per item: seed and item id)",
    "noise": "add the camera's shot and read noise (default true)",
    "skip_bad": "leave out and report bad boxes or files instead of failing",
    "image_set": "only the ids listed in ImageSets/Main/<name>.txt or ImageSets/<name>.txt",
    "cfa": "Bayer pattern replacing the camera's (RGGB, BGGR, GRBG, GBRG)",
    "noise_model": "simulated lower light: 'binomial' (default with noise) or 'poisson'",
    "group_overlapping": "merge the split groups of photographs of overlapping fields of view",
    "overlap_cache": "folder caching the overlap map (default: user cache; false: none)",
}

BCCD_CELLS = DatasetSpec(
    name="bccd-cells",
    task="classification",
    description="BCCD blood smears unprocessed to raw: crops centred on WBC, RBC and platelets",
    classes=CELL_CLASSES,
    camera=BCCD_CAMERA,
    opener=open_bccd_cells,
    checker=check_bccd,
    reference=_REFERENCE,
    options={
        "crop_size": "even side of the crops after resampling (default 64)",
        **_COMMON_OPTIONS,
        "max_per_class_per_image": "keep at most this many cells of each class per image",
    },
)

BCCD_WBC = DatasetSpec(
    name="bccd-wbc",
    task="segmentation",
    description="BCCD blood smears unprocessed to raw: tiles with masks from the WBC boxes",
    classes=SEGMENTATION_CLASSES,
    camera=BCCD_CAMERA,
    opener=open_bccd_wbc,
    checker=check_bccd,
    reference=_REFERENCE,
    options={
        "tile_size": "even side of the tiles after resampling (default 64)",
        "stride": "grid step in resampled pixels (default tile_size)",
        "min_foreground": "keep tiles whose WBC fraction exceeds this (default 0; < 0 keeps all)",
        **_COMMON_OPTIONS,
    },
)
