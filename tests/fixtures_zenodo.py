"""Small generated copies of the Raw-Microscopy / Raw-Drone Zenodo layout, and DNG files.

Used by the dataset tests and the CLI tests. Everything is written under a
caller-given folder (a pytest tmp path); nothing is downloaded.

Layout written (same names and suffixes as the record, DOI 10.5281/zenodo.5235536)::

    microscopy/images/raw_scale100 ... raw_scale001/<stem>.tiff   uint16
    microscopy/labels/labels.txt                                  "<stem> <CLASS>"
    drone/images_tiles_256/raw_scale100 ... raw_scale001/<FF>_<TTTTT>.tif   uint16
    drone/masks_tiles_256/<FF>_<TTTTT>.png                         1-bit PNG
    drone/images_full/raw_scale100/<FF>.tif                        uint16
    drone/masks_full/<FF>.png
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import attrs
import numpy as np
import tifffile
from PIL import Image

LEVEL_FOLDERS: dict[float, str] = {
    1.0: "raw_scale100",
    0.75: "raw_scale075",
    0.5: "raw_scale050",
    0.25: "raw_scale025",
    0.1: "raw_scale010",
    0.05: "raw_scale005",
    0.01: "raw_scale001",
}

# Kept: BAS, LYT, NGS (5 each). Dropped: MON (2, rare), MYB (1, not a training class).
MICROSCOPY_COUNTS: dict[str, int] = {"BAS": 5, "LYT": 5, "NGS": 5, "MON": 2, "MYB": 1}


@attrs.frozen
class MicroscopyFixture:
    """What :func:`make_microscopy` wrote."""

    root: Path
    labels: dict[str, str]  # stem -> class
    label_file: Path
    shape: tuple[int, int]

    def image(self, stem: str, level: float = 1.0) -> Path:
        """Path of one image at one level."""
        return self.root / "microscopy" / "images" / LEVEL_FOLDERS[level] / f"{stem}.tiff"

    @property
    def kept(self) -> dict[str, str]:
        """Entries of the training classes with more than 4 images."""
        return {s: c for s, c in self.labels.items() if c in ("BAS", "LYT", "NGS")}


@attrs.frozen
class DroneFixture:
    """What :func:`make_drone` wrote."""

    root: Path
    tiles: dict[str, str]  # tile stem -> frame
    shape: tuple[int, int]

    def tile(self, stem: str, level: float = 1.0) -> Path:
        """Path of one tile at one level."""
        return self.root / "drone" / "images_tiles_256" / LEVEL_FOLDERS[level] / f"{stem}.tif"

    def mask(self, stem: str) -> Path:
        """Path of one tile mask."""
        return self.root / "drone" / "masks_tiles_256" / f"{stem}.png"


def _mosaic(rng: np.random.Generator, shape: tuple[int, int], level: float, low: int, high: int):
    """Smooth-ish uint16 mosaic whose signal scales with the light level."""
    h, w = shape
    base = rng.uniform(low, high, size=(h // 2 + 1, w // 2 + 1))
    up = np.kron(base, np.ones((2, 2)))[:h, :w]
    noise = rng.normal(0, 0.01 * (high - low), size=shape)
    return np.clip(low + (up - low) * level + noise, 0, 65535).astype(np.uint16)


def make_microscopy(
    root: Path,
    *,
    counts: Mapping[str, int] = MICROSCOPY_COUNTS,
    shape: tuple[int, int] = (256, 256),
    levels: Sequence[float] = tuple(LEVEL_FOLDERS),
    seed: int = 0,
) -> MicroscopyFixture:
    """Write a Raw-Microscopy copy in the Zenodo layout.

    Returns
    -------
    MicroscopyFixture
        Root and the stem -> class labels written.
    """
    rng = np.random.default_rng(seed)
    labels: dict[str, str] = {}
    n = 0
    for name, count in counts.items():
        for _ in range(count):
            n += 1
            labels[f"Ma190c_lame{n % 3 + 1}_zone{n}_composite_Mcropped_{n % 4 + 1}"] = name
    base = root / "microscopy"
    (base / "labels").mkdir(parents=True, exist_ok=True)
    label_file = base / "labels" / "labels.txt"
    label_file.write_text("".join(f"{stem} {name}\n" for stem, name in labels.items()))
    full = {stem: _mosaic(rng, shape, 1.0, 2000, 60000) for stem in labels}
    for level in levels:
        folder = base / "images" / LEVEL_FOLDERS[level]
        folder.mkdir(parents=True, exist_ok=True)
        for stem, image in full.items():
            scaled = np.round(image.astype(np.float64) * level).astype(np.uint16)
            tifffile.imwrite(folder / f"{stem}.tiff", scaled)
    return MicroscopyFixture(root, labels, label_file, shape)


def make_drone(
    root: Path,
    *,
    frames: int = 3,
    tiles_per_frame: int = 2,
    shape: tuple[int, int] = (256, 256),
    full_shape: tuple[int, int] = (64, 96),
    levels: Sequence[float] = tuple(LEVEL_FOLDERS),
    seed: int = 0,
) -> DroneFixture:
    """Write a Raw-Drone copy in the Zenodo layout (tiles, masks, full frames).

    Tiles are named ``<frame>_<tile>`` like the authors' tiling code
    (``f"{n:02d}_{i:05d}"``); values are 12-bit data left-justified to 16 bit.
    """
    rng = np.random.default_rng(seed)
    base = root / "drone"
    mask_dir = base / "masks_tiles_256"
    mask_dir.mkdir(parents=True, exist_ok=True)
    tiles: dict[str, str] = {}
    data: dict[str, np.ndarray] = {}
    for f in range(frames):
        for t in range(tiles_per_frame):
            stem = f"{f:02d}_{t * 7 + f:05d}"
            tiles[stem] = f"{f:02d}"
            data[stem] = _mosaic(rng, shape, 1.0, 4096, 60000)
            mask = np.zeros(shape, dtype=bool)
            mask[t * 4 : t * 4 + shape[0] // 4, 8 : 8 + shape[1] // 3] = True
            Image.fromarray(mask).save(mask_dir / f"{stem}.png")
    for level in levels:
        folder = base / "images_tiles_256" / LEVEL_FOLDERS[level]
        folder.mkdir(parents=True, exist_ok=True)
        for stem, image in data.items():
            dark = 4096 + (image.astype(np.float64) - 4096) * level
            tifffile.imwrite(folder / f"{stem}.tif", ((dark.astype(np.uint16) >> 4) << 4))
    full_dir = base / "images_full" / "raw_scale100"
    full_masks = base / "masks_full"
    full_dir.mkdir(parents=True, exist_ok=True)
    full_masks.mkdir(parents=True, exist_ok=True)
    for f in range(frames):
        tifffile.imwrite(full_dir / f"{f:02d}.tif", _mosaic(rng, full_shape, 1.0, 4096, 60000))
        mask = np.zeros(full_shape, dtype=np.uint8)
        mask[4:20, 10:40] = 255
        Image.fromarray(mask).save(full_masks / f"{f:02d}.png")
    return DroneFixture(root, tiles, shape)


def write_dng(
    path: Path,
    data: np.ndarray,
    *,
    cfa: str = "RGGB",
    black_level: Sequence[int] = (256, 260, 258, 262),
    white_level: int = 4095,
    as_shot_neutral: Sequence[float] = (0.5, 1.0, 0.7),
    color_matrix: Sequence[float] = (0.9, -0.3, -0.1, -0.4, 1.3, 0.1, -0.05, 0.2, 0.6),
    orientation: int | None = None,
) -> Path:
    """Write a minimal valid DNG (CFA photometric) that LibRaw reads.

    Parameters
    ----------
    path : Path
        Output file (``.dng``).
    data : numpy.ndarray
        ``(H, W)`` uint16 mosaic; LibRaw rejects frames smaller than 22
        pixels on a side.
    cfa : str
        Bayer pattern in raster order (``RGGB`` ...).
    black_level : 4 ints
        BlackLevel per CFA site, raster order (BlackLevelRepeatDim 2x2).
    white_level : int
        WhiteLevel.
    as_shot_neutral : 3 floats
        AsShotNeutral (camera RGB of a neutral object).
    color_matrix : 9 floats
        ColorMatrix1 (XYZ to camera, D65 calibration illuminant).
    orientation : int, optional
        TIFF/EXIF Orientation tag (1 upright, 3 rotated 180 degrees, 6 and 8
        rotated by 90 degrees), which LibRaw reports as ``sizes.flip``.
    """

    def rationals(values: Sequence[float]) -> list[int]:
        out: list[int] = []
        for v in values:
            out += [round(v * 10000), 10000]
        return out

    codes = {"R": 0, "G": 1, "B": 2}
    tags = [
        (271, "s", 0, "driftlab", True),  # Make
        (272, "s", 0, "fixture", True),  # Model
        (33421, "H", 2, (2, 2), True),  # CFARepeatPatternDim
        (33422, "B", 4, tuple(codes[c] for c in cfa), True),  # CFAPattern
        (50706, "B", 4, (1, 4, 0, 0), True),  # DNGVersion
        (50707, "B", 4, (1, 1, 0, 0), True),  # DNGBackwardVersion
        (50708, "s", 0, "driftlab fixture", True),  # UniqueCameraModel
        (50710, "B", 3, (0, 1, 2), True),  # CFAPlaneColor
        (50711, "H", 1, 1, True),  # CFALayout: rectangular
        (50713, "H", 2, (2, 2), True),  # BlackLevelRepeatDim
        (50714, "H", 4, tuple(black_level), True),  # BlackLevel
        (50717, "H", 1, white_level, True),  # WhiteLevel
        (50721, "2i", 9, rationals(color_matrix), True),  # ColorMatrix1 (SRATIONAL)
        (50728, "2I", 3, rationals(as_shot_neutral), True),  # AsShotNeutral (RATIONAL)
        (50778, "H", 1, 21, True),  # CalibrationIlluminant1: D65
    ]
    if orientation is not None:
        tags.append((274, "H", 1, int(orientation), True))  # Orientation
    tifffile.imwrite(path, np.asarray(data, dtype=np.uint16), photometric=32803, extratags=tags)
    return path
