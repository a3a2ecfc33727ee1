"""Raw-Drone: car segmentation from raw drone camera data.

Layout of the Zenodo record (DOI 10.5281/zenodo.5235536)::

    drone/
      images_tiles_256/raw_scale100/<frame>_<tile>.tif   256x256 raw tiles with cars
      images_tiles_256/raw_scale075/ ... raw_scale001/   the same tiles at lower light
      masks_tiles_256/<frame>_<tile>.png                 binary masks: 0, one value on cars
      images_full/raw_scale100/<frame>.(dng|tif)         12 frames, 3648x5472
      masks_full/<frame>.png                             their masks

Masks are named like their image (full-frame masks may add a prefix or
suffix, e.g. ``mask_03.png`` for ``03.dng``, as long as exactly one mask
contains the frame name as a separate token).

**Split groups.** Tiles of one frame must never sit on both sides of a
split. The authors' tiling code names each tile ``f"{n:02d}_{i:05d}"``
(frame index, tile index), so the group of a tile is its file stem up to the
*last* underscore (``03_00012`` -> ``03``). A tile whose name does not end in
``_<digits>`` is rejected rather than guessed. Full frames are their own group.

Tiles are read as stored 16-bit integers / 65535; float TIFFs holding values
on the 16-bit scale (as Pillow writes mode ``F``) are divided by 65535 too.
"""

from __future__ import annotations

import re
from pathlib import Path

from driftlab.datasets.base import DatasetError, DatasetSpec
from driftlab.datasets.files import (
    MASK_SUFFIXES,
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
    "CLASSES",
    "DRONE",
    "FRAME_SHAPE",
    "TILE_SHAPE",
    "check_drone",
    "open_drone",
    "scan_drone",
    "tile_group",
]

TITLE = "Raw-Drone"
CLASSES: tuple[str, ...] = ("background", "car")
TILE_SHAPE = (256, 256)
FRAME_SHAPE = (3648, 5472)
TILE_SUFFIXES = (".tif", ".tiff")
FRAME_SUFFIXES = (".dng", ".tif", ".tiff", ".npy")
TILE_NAME = re.compile(r"^(?P<frame>.+)_(?P<tile>\d+)$")
FRAMES = ("tiles", "full")


def tile_group(stem: str) -> str | None:
    """Source frame of a tile from its file stem.

    Parameters
    ----------
    stem : str
        Tile file name without suffix, ``<frame>_<tile index>``.

    Returns
    -------
    str or None
        Everything before the last underscore when the rest is digits
        (``"03_00012"`` -> ``"03"``), else None.
    """
    match = TILE_NAME.match(stem)
    return match.group("frame") if match else None


def _folders(root: Path, frames: str, folder: str) -> tuple[Path, Path]:
    if frames == "tiles":
        return root / "images_tiles_256" / folder, root / "masks_tiles_256"
    return root / "images_full" / folder, root / "masks_full"


def _index(paths: list[Path], problems: Problems, what: str) -> dict[str, Path]:
    index: dict[str, Path] = {}
    for path in paths:
        if path.stem in index:
            problems.bad(f"{path}: same {what} stem as {index[path.stem]}; keep only one of them")
            continue
        index[path.stem] = path
    return index


def _match_mask(stem: str, masks: dict[str, Path], exact_only: bool) -> Path | None:
    if stem in masks:
        return masks[stem]
    if exact_only:
        return None
    token = re.compile(rf"(^|[^0-9A-Za-z]){re.escape(stem)}([^0-9A-Za-z]|$)")
    candidates = [path for key, path in masks.items() if token.search(key)]
    return candidates[0] if len(candidates) == 1 else None


def scan_drone(
    spec: DatasetSpec,
    data_root: Path,
    intensity: float,
    skip_bad: bool,
    frames: str = "tiles",
) -> tuple[list[RawItem], Problems]:
    """List the image/mask pairs of one intensity level without reading pixels.

    Parameters
    ----------
    spec : DatasetSpec
        The Raw-Drone declaration.
    data_root : pathlib.Path
        Unpacked record (holding ``drone/``) or the ``drone`` folder.
    intensity : float
        One of the seven captured levels.
    skip_bad : bool
        Leave broken entries out (reported) instead of raising.
    frames : {"tiles", "full"}
        256x256 tiles (default) or the full frames.

    Returns
    -------
    items : list of RawItem
        Sorted by stem; tiles grouped by source frame (see module notes).
    problems : Problems

    Raises
    ------
    DatasetError
        Unknown ``frames``, missing or empty folders (with where to get the
        data), an intensity that was not captured, or (without
        ``skip_bad``) the first image without mask, mask without image, or
        tile name without a frame.
    """
    if frames not in FRAMES:
        raise DatasetError(f"{spec.name}: frames must be one of {FRAMES}, got {frames!r}")
    problems = Problems(skip_bad)
    folder = level_folder(spec.name, intensity)
    root = dataset_root(data_root, "drone", ("images_tiles_256", "masks_tiles_256"), TITLE)
    image_dir, mask_dir = _folders(root, frames, folder)
    suffixes = TILE_SUFFIXES if frames == "tiles" else FRAME_SUFFIXES
    if not image_dir.is_dir():
        raise DatasetError(missing(image_dir, TITLE, f"raw {'/'.join(suffixes)} files"))
    if not mask_dir.is_dir():
        raise DatasetError(missing(mask_dir, TITLE, "binary .png masks"))
    images = _index(list_files(image_dir, suffixes), problems, "image")
    if not images:
        raise DatasetError(f"{image_dir}: empty folder (no {'/'.join(suffixes)} files)")
    masks = _index(list_files(mask_dir, MASK_SUFFIXES), problems, "mask")
    items: list[RawItem] = []
    used: set[Path] = set()
    for stem, path in sorted(images.items()):
        group = tile_group(stem) if frames == "tiles" else stem
        if group is None:
            problems.bad(
                f"{path}: tile name does not end in '_<tile index>' (e.g. 03_00012.tif), so "
                "its source frame is unknown"
            )
            continue
        mask = _match_mask(stem, masks, exact_only=frames == "tiles")
        if mask is None:
            problems.bad(f"{path}: no mask {mask_dir / (stem + '.png')}")
            continue
        used.add(mask)
        items.append(RawItem(stem, path, group, None, mask, {"frame": group}))
    for mask in sorted(set(masks.values()) - used):
        problems.bad(f"{mask}: mask without a raw image in {image_dir}")
    return items, problems


def open_drone(
    spec: DatasetSpec,
    data_root: Path | None,
    intensity: float,
    *,
    skip_bad: bool = False,
    frames: str = "tiles",
    image_shape: object = "default",
) -> FileRawDataset:
    """Open Raw-Drone at one captured intensity level.

    Parameters
    ----------
    spec : DatasetSpec
        The Raw-Drone declaration.
    data_root : pathlib.Path
        Unpacked record or its ``drone`` folder.
    intensity : float
        1.0, 0.75, 0.5, 0.25, 0.1, 0.05 or 0.01 (full frames: the levels
        present under ``images_full``, ``raw_scale100`` in the record).
    skip_bad : bool
        Leave out (and report in ``dataset.skipped``) unpaired or unreadable
        files; every file is read once while opening. Default: raise.
    frames : {"tiles", "full"}
        256x256 tiles or full 3648x5472 frames.
    image_shape : "default", (int, int), "HxW", None or "any"
        Required ``(H, W)`` of every raw image; ``"default"`` is 256x256
        for tiles and 3648x5472 for full frames.

    Returns
    -------
    FileRawDataset
        Samples: ``(H, W)`` float32 mosaic in [0, 1] and an ``(H, W)`` uint8
        mask, 1 on cars; ``meta["group"]`` is the source frame.

    Raises
    ------
    DatasetError
        See :func:`scan_drone`; also unreadable files and image/mask size
        mismatches when skipping is off (raised when the item is loaded).
    """
    items, problems = scan_drone(spec, data_root, intensity, skip_bad, frames)
    if isinstance(image_shape, str) and image_shape == "default":
        shape = TILE_SHAPE if frames == "tiles" else FRAME_SHAPE
    else:
        shape = parse_shape(image_shape, f"{spec.name} option image_shape")
    read = ReadOptions(
        bits=spec.camera.bit_depth, float_scale=float(spec.camera.saturation), expect_shape=shape
    )
    meta = {"level": level_folder(spec.name, intensity), "frames": frames}
    return FileRawDataset(spec, intensity, items, read, problems, meta)


def _scan_tiles(
    spec: DatasetSpec, data_root: Path, intensity: float, skip_bad: bool
) -> tuple[list[RawItem], Problems]:
    return scan_drone(spec, data_root, intensity, skip_bad, "tiles")


def check_drone(spec: DatasetSpec, data_root: Path) -> list[str]:
    """Layout problems of a local Raw-Drone copy.

    Checks the tiles and their masks at all seven levels, and the full
    frames with their masks at ``raw_scale100`` (and any other level folder
    present under ``images_full``); pixels are not read (``driftlab data
    check`` opens every file itself).

    Returns
    -------
    list of str
        One message per problem, each naming its path.
    """
    found = check_levels(spec, data_root, _scan_tiles)
    try:
        root = dataset_root(data_root, "drone", ("images_tiles_256", "masks_tiles_256"), TITLE)
    except DatasetError:
        return found  # already reported by the tile scan
    for level, folder in LEVELS.items():
        if level != 1.0 and not (root / "images_full" / folder).is_dir():
            continue
        try:
            found.extend(scan_drone(spec, data_root, level, True, "full")[1].skipped)
        except DatasetError as exc:
            found.append(str(exc))
    return list(dict.fromkeys(found))


DRONE = DatasetSpec(
    name="raw-drone",
    task="segmentation",
    description=(
        "Raw-Drone: car segmentation, 256x256 RGGB tiles of 12 DJI Mavic 2 Pro frames "
        "(12-bit left-justified to 16 bit), 7 light levels"
    ),
    classes=CLASSES,
    camera="raw-drone",
    opener=open_drone,
    intensities=tuple(LEVELS),
    needs_data_root=True,
    checker=check_drone,
    reference=REFERENCE,
    options={
        "skip_bad": "leave out and report bad or unpaired files instead of failing (reads all)",
        "frames": "'tiles' (256x256, default) or 'full' (3648x5472 frames)",
        "image_shape": "required [H, W] ('default': 256x256 tiles / 3648x5472 frames; 'any')",
    },
    n_items=548,
    image_shape=TILE_SHAPE,
)
"""Declaration of Raw-Drone (camera profile ``raw-drone``)."""
