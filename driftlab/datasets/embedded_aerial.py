"""``embedded-aerial``: generated aerial tiles with car masks (segmentation).

Each tile is a nadir view of textured ground (grass, soil, asphalt roads with
lane markings, parking lots with stall lines) at about 0.3 m per pixel for the
default 64-pixel tile, with cars (rounded rectangles with windows, roof
highlight and a cast shadow, in the colour mix of a car park) and distractors
of similar size and colour that are *not* cars (sheds, containers, bushes and
trees, dark road patches). The target is the car footprint, rasterised at
tile resolution; shadows and distractors are background.

Every flight (a group of ``TILES_PER_FLIGHT`` tiles, like the tiles of one
frame) has its own sun direction and strength, shadow length, haze, season
(vegetation colour) and focus, so tiles of one flight must not straddle a
split. The scene is the ground reflectance times the irradiance (sunlit or,
in shadow, bluish skylight) plus path radiance (haze), in linear sRGB.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from driftlab.camera import CameraParams
from driftlab.datasets.base import DatasetSpec
from driftlab.datasets.embedded import (
    PAPER_INTENSITIES,
    SUPERSAMPLING,
    Canvas,
    EmbeddedDataset,
    Scene,
    open_embedded,
    smooth_noise,
    soft_edge,
)

__all__ = [
    "AERIAL_CAMERA",
    "AERIAL_CLASSES",
    "CAR_COLOURS",
    "EMBEDDED_AERIAL",
    "TILES_PER_FLIGHT",
    "aerial_scene",
    "open_embedded_aerial",
]

AERIAL_CLASSES: tuple[str, ...] = ("background", "car")
TILES_PER_FLIGHT = 40

AERIAL_CAMERA = CameraParams(
    name="embedded-aerial",
    cfa="RGGB",
    bit_depth=12,
    black_level=(256 / 4095,) * 4,
    white_balance=(1.95, 1.0, 1.55),
    color_matrix=((1.55, -0.40, -0.15), (-0.22, 1.60, -0.38), (0.02, -0.45, 1.43)),
    gain=0.68,
    read_noise=2.5,
    description=(
        "simulated 12-bit RGGB drone camera in daylight (black level 256 DN, 0.68 DN/e- "
        "i.e. ~5,600 e- full well, read noise 2.5 DN); white balance and colour matrix invert "
        "the simulated sensor exactly"
    ),
)

# car paint reflectance in linear sRGB and its share of the fleet
CAR_COLOURS: tuple[tuple[str, tuple[float, float, float], float], ...] = (
    ("white", (0.62, 0.62, 0.60), 0.24),
    ("black", (0.035, 0.035, 0.04), 0.18),
    ("grey", (0.16, 0.16, 0.17), 0.17),
    ("silver", (0.36, 0.36, 0.38), 0.15),
    ("red", (0.32, 0.035, 0.03), 0.09),
    ("blue", (0.035, 0.07, 0.22), 0.08),
    ("green", (0.05, 0.11, 0.06), 0.04),
    ("beige", (0.40, 0.33, 0.22), 0.05),
)
_CAR_RGB = np.array([c[1] for c in CAR_COLOURS])
_CAR_P = np.array([c[2] for c in CAR_COLOURS]) / sum(c[2] for c in CAR_COLOURS)

_GRASS = np.array([0.045, 0.085, 0.03])
_DRY = np.array([0.15, 0.13, 0.075])
_SOIL = np.array([0.16, 0.115, 0.08])
_ASPHALT = np.array([0.085, 0.085, 0.09])
_CONCRETE = np.array([0.28, 0.27, 0.25])
_PAINT = np.array([0.55, 0.55, 0.50])


def _flight(group_rng: np.random.Generator) -> dict[str, object]:
    azimuth = group_rng.uniform(0, 2 * np.pi)
    return {
        "sun": group_rng.uniform(1.15, 1.6),
        "shadow": group_rng.uniform(1.2, 4.0) * np.array([np.sin(azimuth), np.cos(azimuth)]),
        "sky": np.array([0.30, 0.34, 0.45]) * group_rng.uniform(0.8, 1.2),
        "haze": np.array([0.008, 0.011, 0.018]) * group_rng.uniform(0.3, 2.0),
        "season": group_rng.uniform(0.0, 1.0),
        "blur": group_rng.uniform(0.5, 1.3),
    }


def _rounded_box(
    yy: np.ndarray,
    xx: np.ndarray,
    cy: float,
    cx: float,
    length: float,
    width: float,
    angle: float,
    corner: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Signed distance to a rounded rectangle and the local (along, across) coordinates."""
    c, s = np.cos(angle), np.sin(angle)
    u = (xx - cx) * c + (yy - cy) * s
    v = -(xx - cx) * s + (yy - cy) * c
    qu = np.abs(u) - (length / 2 - corner)
    qv = np.abs(v) - (width / 2 - corner)
    outside = np.hypot(np.maximum(qu, 0), np.maximum(qv, 0))
    inside = np.minimum(np.maximum(qu, qv), 0)
    return outside + inside - corner, u, v


def _ground(
    canvas: Canvas, rng: np.random.Generator, flight: dict[str, object], unit: float
) -> tuple[np.ndarray, str, float, float]:
    """Reflectance of the ground, the tile type and the main direction (roads, rows)."""
    n = canvas.samples
    coarse = smooth_noise(rng, (n, n), 12 * unit * SUPERSAMPLING)
    medium = smooth_noise(rng, (n, n), 4 * unit * SUPERSAMPLING)
    fine = smooth_noise(rng, (n, n), 0.6 * SUPERSAMPLING)
    season = float(flight["season"])  # type: ignore[arg-type]
    vegetation = (1 - season) * _GRASS + season * _DRY
    soil_share = 1 / (1 + np.exp(-(coarse + 0.5 * medium - rng.uniform(-0.5, 1.0)) * 2.5))
    ground = (1 - soil_share)[..., None] * vegetation + soil_share[..., None] * _SOIL
    ground *= (1 + 0.18 * fine + 0.12 * medium)[..., None]
    kind = str(rng.choice(["road", "parking", "rural"], p=[0.45, 0.35, 0.2]))
    direction = rng.uniform(0, np.pi)
    offset = 0.0
    c = canvas.coords
    yy, xx = c[:, None], c[None, :]
    across = -xx * np.sin(direction) + yy * np.cos(direction)
    along = xx * np.cos(direction) + yy * np.sin(direction)
    if kind == "road":
        offset = rng.uniform(-0.25, 0.25) * canvas.size
        half = rng.uniform(6.0, 9.0) * unit
        road = soft_edge(np.abs(across - offset) - half, 0.5)
        tone = _ASPHALT * rng.uniform(0.75, 1.5) * (1 + 0.1 * fine + 0.06 * medium)[..., None]
        ground = ground * (1 - road[..., None]) + tone * road[..., None]
        dashes = (np.mod(along + rng.uniform(0, 8), 8 * unit) < 4 * unit).astype(float)
        line = soft_edge(np.abs(across - offset) - 0.35 * unit, 0.3) * dashes * road
        ground = ground * (1 - line[..., None]) + _PAINT * line[..., None]
    elif kind == "parking":
        lot = soft_edge(
            np.maximum(np.abs(across), np.abs(along)) - rng.uniform(0.3, 0.7) * canvas.size, 0.5
        )
        base = _ASPHALT if rng.random() < 0.7 else _CONCRETE * 0.6
        tone = base * rng.uniform(0.8, 1.4) * (1 + 0.08 * fine + 0.05 * medium)[..., None]
        ground = ground * (1 - lot[..., None]) + tone * lot[..., None]
        pitch = rng.uniform(8.5, 10.0) * unit
        stalls = soft_edge(np.abs(np.mod(along, pitch) - pitch / 2) - 0.3 * unit, 0.3)
        rows = np.abs(np.mod(across + rng.uniform(0, 30), 30 * unit) - 15 * unit) > 4 * unit
        line = stalls * rows * lot * rng.uniform(0.4, 1.0)
        ground = ground * (1 - line[..., None]) + _PAINT * line[..., None]
    return ground, kind, direction, offset


def _car_positions(
    rng: np.random.Generator, kind: str, direction: float, offset: float, size: int, unit: float
) -> list[tuple[float, float, float]]:
    """Candidate (cy, cx, angle) of cars for a tile type."""
    half = size / 2
    out = []
    if kind == "road":
        for _ in range(rng.integers(1, 4)):
            lane = offset + rng.choice([-1, 1]) * rng.uniform(2.5, 4.0) * unit
            along = rng.uniform(-half, half)
            cy = along * np.sin(direction) + lane * np.cos(direction)
            cx = along * np.cos(direction) - lane * np.sin(direction)
            out.append((cy, cx, direction + rng.normal(0, 0.05)))
    elif kind == "parking":
        stall_angle = direction + np.pi / 2
        for _ in range(rng.integers(2, 8)):
            cy, cx = rng.uniform(-half * 0.9, half * 0.9, size=2)
            out.append((cy, cx, stall_angle + rng.normal(0, 0.08) + np.pi * rng.integers(0, 2)))
    else:
        for _ in range(rng.integers(1, 3)):
            cy, cx = rng.uniform(-half * 0.8, half * 0.8, size=2)
            out.append((cy, cx, rng.uniform(0, 2 * np.pi)))
    return out


def _paint_box(
    reflectance: np.ndarray,
    shade: np.ndarray,
    occupied: np.ndarray,
    canvas: Canvas,
    cy: float,
    cx: float,
    length: float,
    width: float,
    angle: float,
    colour: np.ndarray,
    shadow: np.ndarray,
    corner: float,
    car: bool,
    rng: np.random.Generator,
) -> np.ndarray | None:
    """Draw one box-shaped object (car or distractor) with its shadow; None if it overlaps."""
    reach = length / 2 + float(np.abs(shadow).max()) + 2.0
    index, yy, xx = canvas.window(cy, cx, reach)
    if yy.size == 0 or xx.size == 0:
        return None
    d, u, v = _rounded_box(yy, xx, cy, cx, length, width, angle, corner)
    body = soft_edge(d, 0.4)
    if (body * occupied[index]).max() > 0.2:
        return None
    ds, _, _ = _rounded_box(yy, xx, cy + shadow[0], cx + shadow[1], length, width, angle, corner)
    shadow_mask = soft_edge(ds, 0.8) * (1 - body)
    shade[index] = np.minimum(shade[index], 1 - shadow_mask)
    tone = colour * rng.uniform(0.85, 1.15) * (1 + 0.04 * rng.standard_normal(3))
    paint = np.broadcast_to(tone, (*body.shape, 3)).copy()
    if car:
        front = rng.choice([-1.0, 1.0])
        t = front * u / length  # -0.5 (rear) .. 0.5 (front)
        windshield = soft_edge(np.abs(t - 0.17) - 0.07, 0.03) * soft_edge(
            np.abs(v) - width * 0.38, 0.3
        )
        rear = soft_edge(np.abs(t + 0.3) - 0.045, 0.03) * soft_edge(np.abs(v) - width * 0.36, 0.3)
        glass = np.clip(windshield + rear, 0, 1)[..., None]
        roof = (soft_edge(np.abs(t + 0.06) - 0.17, 0.05) * soft_edge(np.abs(v) - width * 0.3, 0.3))[
            ..., None
        ]
        paint = paint * (1 + 0.25 * roof) + 0.02 * roof
        paint = paint * (1 - glass) + np.array([0.03, 0.035, 0.04]) * glass
    else:
        paint = paint * (1 + 0.08 * smooth_noise(rng, body.shape, 0.8 * SUPERSAMPLING))[..., None]
    region = reflectance[index]
    reflectance[index] = region * (1 - body[..., None]) + paint * body[..., None]
    shade[index] = np.maximum(shade[index], body)
    occupied[index] = np.maximum(occupied[index], soft_edge(d - 0.8, 0.4))
    full = canvas.zeros()
    full[index] = body
    return full


def _distractor(
    rng: np.random.Generator, unit: float, size: int
) -> tuple[str, float, float, float, float, np.ndarray, float]:
    kind = str(rng.choice(["shed", "container", "patch", "bush"], p=[0.3, 0.3, 0.15, 0.25]))
    half = size / 2
    cy, cx = rng.uniform(-half, half, size=2)
    if kind == "shed":
        length, width = rng.uniform(11, 22) * unit, rng.uniform(7, 14) * unit
        colour = [_CONCRETE, np.array([0.25, 0.09, 0.06]), np.array([0.5, 0.5, 0.5])][
            rng.integers(0, 3)
        ] * rng.uniform(0.7, 1.2)
        corner = 0.5 * unit
    elif kind == "container":
        length, width = rng.uniform(9, 16) * unit, rng.uniform(4.5, 7) * unit
        colour = _CAR_RGB[rng.choice(len(_CAR_RGB), p=_CAR_P)] * rng.uniform(0.6, 1.1)
        corner = 0.3 * unit
    elif kind == "patch":
        length, width = rng.uniform(8, 18) * unit, rng.uniform(4, 9) * unit
        colour = _ASPHALT * rng.uniform(0.4, 0.8)
        corner = 1.5 * unit
    else:
        r = rng.uniform(2.5, 7.0) * unit
        length = width = 2 * r
        colour = _GRASS * rng.uniform(0.5, 0.9)
        corner = r
    return kind, cy, cx, length, width, colour, corner


def aerial_scene(
    index: int,
    size: int,
    label: int | None,
    rng: np.random.Generator,
    group_rng: np.random.Generator,
) -> Scene:
    """Render the linear-RGB scene and car mask of one aerial tile.

    Parameters
    ----------
    index : int
        Item index (gives the flight group).
    size : int
        Even tile side in output pixels; lengths scale with ``size / 64``.
    label : None
        Unused (segmentation).
    rng : numpy.random.Generator
        Tile stream (ground, objects, textures).
    group_rng : numpy.random.Generator
        Flight stream (sun, shadows, haze, season, focus).

    Returns
    -------
    Scene
        ``(2*size, 2*size, 3)`` radiance, ``(size, size)`` uint8 car mask,
        PSF sigma of the flight, ``meta`` with ``group``, ``tile_type`` and
        ``cars``.
    """
    flight = _flight(group_rng)
    canvas = Canvas(size)
    unit = size / 64.0
    reflectance, kind, direction, offset = _ground(canvas, rng, flight, unit)
    shade = np.ones((canvas.samples, canvas.samples))
    occupied = canvas.zeros()
    shadow = np.asarray(flight["shadow"]) * unit
    for _ in range(rng.integers(0, 5)):
        _, cy, cx, length, width, colour, corner = _distractor(rng, unit, size)
        _paint_box(
            reflectance,
            shade,
            occupied,
            canvas,
            cy,
            cx,
            length,
            width,
            rng.uniform(0, np.pi),
            colour,
            shadow * (0.6 if length > 10 * unit else 1.0),
            corner,
            False,
            rng,
        )
    cars = canvas.zeros()
    count = 0
    for cy, cx, angle in _car_positions(rng, kind, direction, offset, size, unit):
        length = rng.normal(14.0, 1.3) * unit
        width = float(np.clip(rng.normal(6.0, 0.45), 4.8, 7.2)) * unit
        colour = _CAR_RGB[rng.choice(len(_CAR_RGB), p=_CAR_P)]
        body = _paint_box(
            reflectance,
            shade,
            occupied,
            canvas,
            cy,
            cx,
            length,
            width,
            angle,
            colour,
            shadow,
            1.2 * unit,
            True,
            rng,
        )
        if body is not None:
            cars = np.maximum(cars, body)
            count += 1
    sky = np.asarray(flight["sky"])
    light = float(flight["sun"]) * (shade[..., None] + (1 - shade[..., None]) * sky)
    radiance = reflectance * light + np.asarray(flight["haze"])
    s = SUPERSAMPLING
    coverage = cars.reshape(size, s, size, s).mean(axis=(1, 3))
    mask = (coverage >= 0.5).astype(np.uint8)
    return Scene(
        radiance=radiance,
        target=mask,
        blur_sigma=float(flight["blur"]) * unit,
        meta={"group": _group(index), "tile_type": kind, "cars": count},
    )


def _group(index: int) -> str:
    return f"flight{index // TILES_PER_FLIGHT:04d}"


def open_embedded_aerial(
    spec: DatasetSpec,
    data_root: Path | None,
    intensity: float,
    *,
    n_items: int = 400,
    size: int = 64,
    seed: int = 0,
) -> EmbeddedDataset:
    """Opener of ``embedded-aerial``.

    Parameters
    ----------
    spec : DatasetSpec
        :data:`EMBEDDED_AERIAL`.
    data_root : Path or None
        Ignored (generated data).
    intensity : float
        Light level in (0, 1], rendered natively.
    n_items : int
        Number of tiles.
    size : int
        Even tile side in pixels (>= 16).
    seed : int
        Non-negative seed; same seed, same bytes.

    Returns
    -------
    EmbeddedDataset
        Targets are ``(size, size)`` uint8 car masks; groups are flights of
        :data:`TILES_PER_FLIGHT` consecutive tiles.

    Raises
    ------
    DatasetError
        Bad ``n_items``, ``size`` or ``seed``.
    """
    return open_embedded(
        spec,
        data_root,
        intensity,
        scene_fn=aerial_scene,
        labels_fn=None,
        group_fn=_group,
        n_items=n_items,
        size=size,
        seed=seed,
    )


EMBEDDED_AERIAL = DatasetSpec(
    name="embedded-aerial",
    task="segmentation",
    description=(
        "generated aerial tiles with car masks among look-alike distractors "
        "(no files; any light level rendered natively)"
    ),
    classes=AERIAL_CLASSES,
    camera=AERIAL_CAMERA,
    opener=open_embedded_aerial,
    intensities=PAPER_INTENSITIES,
    needs_data_root=False,
    reference="driftlab procedural generator (reflectance x irradiance, photon-transfer sensor)",
    options={
        "n_items": "number of tiles (default 400)",
        "size": "even tile side in pixels, >= 16 (default 64)",
        "seed": "non-negative seed; same seed, same bytes (default 0)",
    },
)
