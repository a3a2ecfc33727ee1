"""``embedded-smear``: generated bright-field blood-smear crops, five leukocyte classes.

Each item is a crop centred on one white blood cell among red blood cells,
imaged in transmitted light: the scene is the lamp times the transmittance of
stained cells, ``T = 10 ** (-sum_s c_s * OD_s)`` (Beer-Lambert law, one
optical-density vector per stain, after the colour-deconvolution model of
Ruifrok and Johnston, Anal. Quant. Cytol. Histol. 23, 2001). Classes differ
in morphology and stain colour as in a Romanowsky (Wright/Giemsa) stain:

=============  ==============================================================
lymphocyte     small; round dense nucleus filling most of the cell; thin blue rim
monocyte       large; paler oval or kidney-shaped nucleus; grey-blue cytoplasm
neutrophil     segmented nucleus (2-5 lobes); pale lilac, finely granular cytoplasm
eosinophil     mostly bilobed nucleus; coarse orange-red granules
basophil       dark purple granules over nucleus and cytoplasm
=============  ==============================================================

Appearance distributions overlap on purpose (sizes, lobe counts, nuclear
shape, granule density) and every slide (a group of ``ITEMS_PER_SLIDE``
items) has its own stain strength, exposure, lamp colour and focus, so a small
CNN learns the task well but not perfectly, and ISP or illumination drift
moves its accuracy. Pixel scale at the default 64-pixel crop: about 3.2 px per
micrometre (a red cell is ~24 px across, the white cell about half the crop).
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
from scipy.ndimage import gaussian_filter

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
    "EMBEDDED_SMEAR",
    "ITEMS_PER_SLIDE",
    "SMEAR_CAMERA",
    "SMEAR_CLASSES",
    "STAIN_OD",
    "open_embedded_smear",
    "smear_scene",
]

SMEAR_CLASSES: tuple[str, ...] = ("lymphocyte", "monocyte", "neutrophil", "eosinophil", "basophil")
ITEMS_PER_SLIDE = 25

# optical density per unit concentration in linear R, G, B (transmittance 10 ** -OD)
STAIN_OD: dict[str, np.ndarray] = {
    "nuclear": np.array([0.62, 0.80, 0.24]),  # azure-eosin chromatin: purple-blue
    "basophilic": np.array([0.42, 0.18, 0.05]),  # RNA-rich cytoplasm: sky blue
    "eosin": np.array([0.05, 0.42, 0.24]),  # cytoplasm and red cells: pink
    "haemoglobin": np.array([0.07, 0.50, 0.36]),  # red cells: salmon
    "eosinophilic": np.array([0.03, 0.52, 0.80]),  # eosinophil granules: orange-red
    "basophil_granule": np.array([0.78, 0.98, 0.48]),  # basophil granules: blue-black
    "neutrophilic": np.array([0.18, 0.34, 0.10]),  # neutrophil granules: lilac
}
_STAINS = tuple(STAIN_OD)

SMEAR_CAMERA = CameraParams(
    name="embedded-smear",
    cfa="GRBG",
    bit_depth=12,
    black_level=(100 / 4095,) * 4,
    white_balance=(1.45, 1.0, 2.30),
    color_matrix=((1.62, -0.47, -0.15), (-0.25, 1.52, -0.27), (0.05, -0.56, 1.51)),
    gain=0.35,
    read_noise=1.6,
    description=(
        "simulated 12-bit GRBG sensor on a halogen-lit bright-field microscope "
        "(black level 100 DN, 0.35 DN/e- i.e. ~11,400 e- full well, read noise 1.6 DN); "
        "white balance and colour matrix invert the simulated lamp and sensor exactly"
    ),
)


# Output pixels per "unit" below at a 64-pixel crop (a unit is ~0.62 um: a red cell, ~7.5 um,
# is 12 units across). The white cell fills about half of the crop, as in the centred crops of
# Raw-Microscopy, so its granules and lobes stay a few pixels wide even at 40-pixel crops.
CELL_SCALE = 2.0


def _ellipse_distance(
    yy: np.ndarray, xx: np.ndarray, cy: float, cx: float, a: float, b: float, angle: float
) -> np.ndarray:
    """Approximate signed distance (pixels) to an ellipse with semi-axes ``a``, ``b``."""
    c, s = np.cos(angle), np.sin(angle)
    u = (xx - cx) * c + (yy - cy) * s
    v = -(xx - cx) * s + (yy - cy) * c
    return (np.sqrt((u / a) ** 2 + (v / b) ** 2) - 1.0) * min(a, b)


def _granules(
    rng: np.random.Generator, region: np.ndarray, density: float, sigma: float
) -> np.ndarray:
    """Granule field: Poisson points with ``density`` per output pixel^2, Gaussian dots."""
    weights = np.clip(region, 0.0, None).ravel()
    total = weights.sum()
    count = rng.poisson(density * total / SUPERSAMPLING**2) if total > 0 else 0
    if not count:
        return np.zeros_like(region)
    cdf = np.cumsum(weights)
    picks = np.searchsorted(cdf, rng.uniform(0.0, cdf[-1], size=count), side="right")
    field = np.bincount(np.minimum(picks, region.size - 1), minlength=region.size)
    s = sigma * SUPERSAMPLING
    dots = gaussian_filter(field.reshape(region.shape).astype(np.float64), s) * (2 * np.pi * s**2)
    return np.minimum(dots, 1.5)


def _disc(yy: np.ndarray, xx: np.ndarray, cy: float, cx: float, r: float) -> np.ndarray:
    return soft_edge(np.hypot(yy - cy, xx - cx) - r, 0.45)


def _lobes(
    yy: np.ndarray,
    xx: np.ndarray,
    rng: np.random.Generator,
    cy: float,
    cx: float,
    radius: float,
    count: int,
    lobe: float,
) -> np.ndarray:
    """Segmented nucleus: ``count`` round lobes on an arc, joined by thin strands."""
    start = rng.uniform(0, 2 * np.pi)
    span = rng.uniform(0.5, 1.0) * np.pi * min(count - 1, 3) / 2.2
    arc = radius * rng.uniform(0.38, 0.52)
    angles = start + np.linspace(0, span, count) + rng.normal(0, 0.12, count)
    centres = [(cy + arc * np.sin(t), cx + arc * np.cos(t)) for t in angles]
    mask = np.zeros((yy.shape[0], xx.shape[1]))
    for (ly, lx), r in zip(centres, lobe * rng.uniform(0.85, 1.15, count), strict=True):
        d = _ellipse_distance(yy, xx, ly, lx, r, r * rng.uniform(0.75, 1.0), rng.uniform(0, np.pi))
        mask = np.maximum(mask, soft_edge(d, 0.45))
    for (ay, ax), (by, bx) in itertools.pairwise(centres):
        for t in np.linspace(0.2, 0.8, 4):
            strand = _disc(yy, xx, ay + t * (by - ay), ax + t * (bx - ax), lobe * 0.35)
            mask = np.maximum(mask, strand)
    return mask


def _red_cells(canvas: Canvas, rng: np.random.Generator, unit: float, density: float) -> np.ndarray:
    """Haemoglobin concentration of red cells: biconcave discs with central pallor."""
    conc = canvas.zeros()
    half = canvas.size / 2.0
    for _ in range(rng.poisson(density * (canvas.size / unit) ** 2 / 1000.0)):
        r = rng.normal(6.0, 0.45) * unit
        cy, cx = rng.uniform(-half - r / 2, half + r / 2, size=2)
        index, yy, xx = canvas.window(cy, cx, r + 2.0)
        if yy.size == 0 or xx.size == 0:
            continue
        d = np.hypot(yy - cy, xx - cx)
        pallor = 1.0 - rng.uniform(0.35, 0.6) * np.exp(-((d / (0.45 * r)) ** 2))
        disc = soft_edge(d - r, 0.5) * pallor * rng.uniform(0.75, 1.1)
        conc[index] = np.maximum(conc[index], disc)
    return conc


def _slide(group_rng: np.random.Generator) -> dict[str, float | np.ndarray]:
    return {
        "nuclear": group_rng.uniform(0.75, 1.3),
        "eosin": group_rng.uniform(0.7, 1.35),
        "basophilic": group_rng.uniform(0.7, 1.3),
        "exposure": group_rng.uniform(0.72, 0.95),
        "cast": np.array(
            [1.0 + group_rng.uniform(-0.07, 0.07), 1.0, 1.0 + group_rng.uniform(-0.08, 0.08)]
        ),
        "blur": group_rng.uniform(0.6, 1.8),
        "rbc_density": group_rng.uniform(1.8, 4.5),  # red cells per 1000 square units
    }


# Appearance of each class, as distributions that overlap on purpose.
# radius: (mean, sd, low, high) in units; nucleus: probabilities of round, kidney and lobed
# nuclei and of 2..5 lobes; granules: stain, density range (per px^2), amplitude range.
_CLASS_MODEL: dict[str, dict[str, tuple]] = {
    "lymphocyte": {
        "radius": (7.8, 1.3, 5.5, 11.5),
        "kind": (0.85, 0.15, 0.0),
        "lobes": (1.0, 0.0, 0.0, 0.0),
        "fill": (0.68, 0.92),
        "strength": (1.15, 0.25),
        "blue": (0.2, 0.6),
        "pink": (0.0, 0.06),
        "granules": ("neutrophilic", (0.0, 0.08), (0.3, 0.5), (0.45, 0.5)),
    },
    "monocyte": {
        "radius": (9.8, 1.5, 7.0, 14.0),
        "kind": (0.25, 0.55, 0.2),
        "lobes": (1.0, 0.0, 0.0, 0.0),
        "fill": (0.55, 0.78),
        "strength": (0.9, 0.22),
        "blue": (0.1, 0.4),
        "pink": (0.05, 0.2),
        "granules": ("neutrophilic", (0.05, 0.4), (0.25, 0.4), (0.45, 0.5)),
    },
    "neutrophil": {
        "radius": (9.2, 1.1, 7.0, 12.5),
        "kind": (0.0, 0.2, 0.8),
        "lobes": (0.15, 0.4, 0.3, 0.15),
        "fill": (0.55, 0.7),
        "strength": (1.2, 0.22),
        "blue": (0.0, 0.08),
        "pink": (0.05, 0.2),
        "granules": ("neutrophilic", (0.2, 0.9), (0.3, 0.6), (0.4, 0.5)),
    },
    "eosinophil": {
        "radius": (9.4, 1.1, 7.0, 12.5),
        "kind": (0.0, 0.1, 0.9),
        "lobes": (0.75, 0.25, 0.0, 0.0),
        "fill": (0.55, 0.7),
        "strength": (1.05, 0.22),
        "blue": (0.0, 0.05),
        "pink": (0.05, 0.18),
        "granules": ("eosinophilic", (0.2, 0.8), (0.1, 0.65), (0.5, 0.7)),
    },
    "basophil": {
        "radius": (8.8, 1.0, 6.5, 11.5),
        "kind": (0.3, 0.2, 0.5),
        "lobes": (0.6, 0.4, 0.0, 0.0),
        "fill": (0.5, 0.7),
        "strength": (0.9, 0.22),
        "blue": (0.0, 0.1),
        "pink": (0.03, 0.12),
        "granules": ("basophil_granule", (0.08, 0.5), (0.15, 0.6), (0.5, 0.75)),
    },
}


def _nucleus(
    model: dict[str, tuple],
    yy: np.ndarray,
    xx: np.ndarray,
    rng: np.random.Generator,
    cy: float,
    cx: float,
    radius: float,
    angle: float,
) -> np.ndarray:
    """Nucleus mask: round/oval, kidney (indented oval) or segmented (lobes)."""
    kind = rng.choice(3, p=np.asarray(model["kind"]) / sum(model["kind"]))
    fill = rng.uniform(*model["fill"])
    if kind == 2:
        count = 2 + int(rng.choice(4, p=np.asarray(model["lobes"]) / sum(model["lobes"])))
        lobe = radius * fill * rng.uniform(0.36, 0.48)
        return _lobes(yy, xx, rng, cy, cx, radius, count, lobe)
    a = radius * fill
    b = a * rng.uniform(0.75, 1.0)
    off = rng.uniform(0.0, 0.18) * radius
    ny, nx = cy + off * np.sin(angle), cx + off * np.cos(angle)
    nucleus = soft_edge(_ellipse_distance(yy, xx, ny, nx, a, b, angle), 0.45)
    if kind == 1:  # kidney, horseshoe or band shape
        depth = rng.uniform(0.35, 0.85) * b
        iy = ny - (b + 0.5 * depth) * np.cos(angle)
        ix = nx + (b + 0.5 * depth) * np.sin(angle)
        nucleus = nucleus * (1 - _disc(yy, xx, iy, ix, depth * 1.1))
    return nucleus


def _leukocyte(
    name: str,
    yy: np.ndarray,
    xx: np.ndarray,
    rng: np.random.Generator,
    cy: float,
    cx: float,
    radius: float,
    unit: float,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Cell mask and stain concentrations of one white blood cell in a window."""
    model = _CLASS_MODEL[name]
    angle = rng.uniform(0, np.pi)
    ecc = rng.uniform(0.0, 0.1)
    cell = soft_edge(
        _ellipse_distance(yy, xx, cy, cx, radius * (1 + ecc), radius * (1 - ecc), angle), 0.5
    )
    shape = (yy.shape[0], xx.shape[1])
    conc = {s: np.zeros(shape) for s in _STAINS}
    nucleus = _nucleus(model, yy, xx, rng, cy, cx, radius, angle) * cell
    conc["basophilic"] += cell * rng.uniform(*model["blue"])
    conc["eosin"] += cell * rng.uniform(*model["pink"])
    stain, density, amplitude, size = model["granules"]
    region = cell * (1 - 0.6 * nucleus) if stain != "basophil_granule" else cell
    conc[stain] += _granules(rng, region, rng.uniform(*density), rng.uniform(*size)) * rng.uniform(
        *amplitude
    )
    if name == "monocyte":
        for _ in range(rng.poisson(1.2)):  # vacuoles
            t, rho = rng.uniform(0, 2 * np.pi), rng.uniform(0.3, 0.85) * radius
            r = rng.uniform(0.7, 1.6) * unit
            vacuole = 1 - 0.8 * _disc(yy, xx, cy + rho * np.sin(t), cx + rho * np.cos(t), r)
            conc["basophilic"] *= vacuole
            conc["eosin"] *= vacuole
    texture = smooth_noise(rng, shape, 0.8 * SUPERSAMPLING)
    strength = max(rng.normal(*model["strength"]), 0.4)
    conc["nuclear"] += nucleus * strength * (1.0 + 0.25 * texture)
    return cell, conc


def smear_scene(
    index: int,
    size: int,
    label: int | None,
    rng: np.random.Generator,
    group_rng: np.random.Generator,
) -> Scene:
    """Render the linear-RGB scene of one smear crop.

    Parameters
    ----------
    index : int
        Item index (gives the slide group; randomness comes from the generators).
    size : int
        Even crop side in output pixels; lengths scale with ``size / 64``.
    label : int
        Class index into :data:`SMEAR_CLASSES`.
    rng : numpy.random.Generator
        Item stream (cell shape, position, granules, red cells).
    group_rng : numpy.random.Generator
        Slide stream (stain strengths, exposure, lamp colour cast, focus).

    Returns
    -------
    Scene
        ``(2*size, 2*size, 3)`` radiance in [0, 1] (lamp times transmittance),
        target ``label``, PSF sigma of the slide, ``meta`` with ``group``,
        ``class`` and ``cell_radius`` (pixels).

    Raises
    ------
    ValueError
        If ``label`` is not a valid class index.
    """
    if label is None or not 0 <= int(label) < len(SMEAR_CLASSES):
        raise ValueError(f"label must be a class index 0..{len(SMEAR_CLASSES) - 1}, got {label}")
    name = SMEAR_CLASSES[int(label)]
    slide = _slide(group_rng)
    canvas = Canvas(size)
    unit = CELL_SCALE * size / 64.0
    mean, spread, low, high = _CLASS_MODEL[name]["radius"]
    radius = float(np.clip(rng.normal(mean, spread), low, high)) * unit
    cy, cx = rng.normal(0.0, 1.6 * size / 64.0, size=2)
    index_w, yy, xx = canvas.window(cy, cx, radius * 1.15 + 2.0)
    cell_local, local = _leukocyte(name, yy, xx, rng, cy, cx, radius, unit)
    # slide stain strengths scale the optical-density vectors
    strength = {s: 1.0 for s in _STAINS}
    strength["nuclear"] = float(slide["nuclear"])
    for stain in ("eosin", "haemoglobin", "eosinophilic"):
        strength[stain] = float(slide["eosin"])
    for stain in ("basophilic", "basophil_granule", "neutrophilic"):
        strength[stain] = float(slide["basophilic"])
    od = {s: STAIN_OD[s] * strength[s] for s in _STAINS}
    density = canvas.zeros(3) + 0.025 * od["eosin"]  # plasma
    cell = canvas.zeros()
    cell[index_w] = cell_local
    rbc = _red_cells(canvas, rng, unit, float(slide["rbc_density"])) * (1 - cell)
    density += rbc[..., None] * od["haemoglobin"]
    window = density[index_w]
    for stain, values in local.items():
        if values.any():
            window += values[..., None] * od[stain]
    transmittance = 10.0 ** (-np.clip(density, 0.0, None))
    radiance = transmittance * (float(slide["exposure"]) * slide["cast"])
    return Scene(
        radiance=radiance,
        target=int(label),
        blur_sigma=float(slide["blur"]) * size / 64.0,
        meta={"class": name, "cell_radius": radius, "group": _group(index)},
    )


def _group(index: int) -> str:
    return f"slide{index // ITEMS_PER_SLIDE:04d}"


def _balanced_labels(n_items: int, rng: np.random.Generator) -> np.ndarray:
    return rng.permutation(np.arange(n_items) % len(SMEAR_CLASSES)).astype(np.int64)


def open_embedded_smear(
    spec: DatasetSpec,
    data_root: Path | None,
    intensity: float,
    *,
    n_items: int = 600,
    size: int = 64,
    seed: int = 0,
) -> EmbeddedDataset:
    """Opener of ``embedded-smear``.

    Parameters
    ----------
    spec : DatasetSpec
        :data:`EMBEDDED_SMEAR`.
    data_root : Path or None
        Ignored (generated data).
    intensity : float
        Light level in (0, 1], rendered natively.
    n_items : int
        Number of crops (balanced classes, shuffled by ``seed``).
    size : int
        Even crop side in pixels (>= 16).
    seed : int
        Non-negative seed; same seed, same bytes.

    Returns
    -------
    EmbeddedDataset
        Groups are slides of :data:`ITEMS_PER_SLIDE` consecutive items.

    Raises
    ------
    DatasetError
        Bad ``n_items``, ``size`` or ``seed``.
    """
    return open_embedded(
        spec,
        data_root,
        intensity,
        scene_fn=smear_scene,
        labels_fn=_balanced_labels,
        group_fn=_group,
        n_items=n_items,
        size=size,
        seed=seed,
    )


EMBEDDED_SMEAR = DatasetSpec(
    name="embedded-smear",
    task="classification",
    description=(
        "generated bright-field blood-smear crops, 5 leukocyte classes "
        "(no files; any light level rendered natively)"
    ),
    classes=SMEAR_CLASSES,
    camera=SMEAR_CAMERA,
    opener=open_embedded_smear,
    intensities=PAPER_INTENSITIES,
    needs_data_root=False,
    reference="driftlab procedural generator (Beer-Lambert stains, photon-transfer sensor model)",
    options={
        "n_items": "number of crops, balanced classes (default 600)",
        "size": "even crop side in pixels, >= 16 (default 64)",
        "seed": "non-negative seed; same seed, same bytes (default 0)",
    },
)
