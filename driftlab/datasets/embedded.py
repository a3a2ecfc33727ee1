"""Embedded default data: labelled raw datasets generated from a seed, no files needed.

Two procedurally generated datasets serve demos, tests and tutorials:
``embedded-smear`` (blood-smear-like leukocyte classification, see
:mod:`driftlab.datasets.embedded_smear`) and ``embedded-aerial`` (aerial-like
car segmentation, see :mod:`driftlab.datasets.embedded_aerial`).

Every item is rendered physically by :func:`render_raw`:

1. a scene in linear sRGB (relative radiance, 1 = white at full exposure),
   drawn at ``SUPERSAMPLING`` times the output resolution;
2. optical blur (Gaussian point-spread function);
3. pixel integration (box average of the supersampled pixels);
4. camera RGB under the light source: ``diag(1 / wb) @ M^-1 @ rgb``, the exact
   inverse of the reference ISP's white balance and colour matrix, so the
   reference pipelines render sane colours;
5. CFA sampling in the camera's Bayer pattern, on top of the black level;
6. Poisson shot noise from the camera gain (DN/e-), Gaussian read noise,
   clipping and quantisation to the declared bit depth
   (:func:`driftlab.sensor.simulate_low_light`).

A lower ``intensity`` is rendered natively (fewer photons in step 6, the
scene is unchanged), so the datasets exist at any light level. Item ``i``
draws its scene and its noise from separate generators seeded by ``(seed,
dataset name, i)``: generation is deterministic, independent of access order
and of the process.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import numpy as np
from scipy.ndimage import gaussian_filter, zoom

from driftlab.camera import CameraParams
from driftlab.cfa import site_index_map
from driftlab.datasets.base import DatasetError, DatasetSpec, RawDataset, Sample
from driftlab.datasets.intensity import item_seed
from driftlab.datasets.unprocess import mosaic
from driftlab.sensor import simulate_low_light

__all__ = [
    "PAPER_INTENSITIES",
    "SUPERSAMPLING",
    "Canvas",
    "EmbeddedDataset",
    "Scene",
    "open_embedded",
    "render_raw",
    "smooth_noise",
    "soft_edge",
]

# limits checked before anything is allocated (a generated item is rendered
# supersampled, so size 4096 already needs ~1 GB per item)
MAX_ITEMS = 1_000_000
MAX_SIZE = 4096

SUPERSAMPLING = 2
PAPER_INTENSITIES: tuple[float, ...] = (1.0, 0.75, 0.5, 0.25, 0.1, 0.05, 0.01)


@attrs.frozen
class Scene:
    """What a scene generator returns for one item.

    Attributes
    ----------
    radiance : numpy.ndarray
        ``(SUPERSAMPLING * H, SUPERSAMPLING * W, 3)`` float64 linear sRGB,
        1 = white at full exposure (values above 1 saturate).
    target : int or numpy.ndarray
        Class index, or ``(H, W)`` uint8 mask.
    blur_sigma : float
        Standard deviation of the optical point-spread function in output pixels.
    meta : dict
        Generator facts worth keeping (class name, sizes ...); must contain ``group``.
    """

    radiance: np.ndarray
    target: int | np.ndarray
    blur_sigma: float
    meta: dict[str, Any] = attrs.field(factory=dict)


SceneFn = Callable[[int, int, int | None, np.random.Generator, np.random.Generator], Scene]


def render_raw(
    radiance: np.ndarray,
    camera: CameraParams,
    *,
    blur_sigma: float,
    intensity: float,
    rng: np.random.Generator,
    supersampling: int = SUPERSAMPLING,
) -> np.ndarray:
    """Physical raw capture of a linear-RGB scene (steps 2-6 of the module).

    Parameters
    ----------
    radiance : numpy.ndarray
        ``(s*H, s*W, 3)`` float linear sRGB relative radiance (1 = white).
    camera : CameraParams
        Needs ``gain`` and ``read_noise``; gives CFA, black level, white
        level, white balance and colour matrix.
    blur_sigma : float
        Gaussian PSF standard deviation in output pixels (>= 0).
    intensity : float
        Light level in (0, 1] (fewer photons, not rescaled).
    rng : numpy.random.Generator
        Noise source.
    supersampling : int
        ``s``, the scene's oversampling factor.

    Returns
    -------
    numpy.ndarray
        ``(H, W)`` float32 mosaic in [0, 1] (stored DN / white level).

    Raises
    ------
    ValueError
        A camera without gain, bad shapes, a negative blur or an intensity
        outside (0, 1].
    """
    if camera.gain is None:
        raise ValueError(f"camera {camera.name!r}: rendering raw data needs its gain (DN/e-)")
    if blur_sigma < 0:
        raise ValueError(f"blur_sigma must be >= 0 pixels, got {blur_sigma}")
    scene = np.asarray(radiance, dtype=np.float64)
    s = int(supersampling)
    if (
        scene.ndim != 3
        or scene.shape[-1] != 3
        or scene.shape[0] % (2 * s)
        or scene.shape[1] % (2 * s)
    ):
        raise ValueError(
            f"radiance must be (H, W, 3) with H and W multiples of {2 * s}, got {scene.shape}"
        )
    if blur_sigma > 0:
        scene = gaussian_filter(scene, sigma=(blur_sigma * s, blur_sigma * s, 0), mode="reflect")
    h, w = scene.shape[0] // s, scene.shape[1] // s
    pixels = scene.reshape(h, s, w, s, 3).mean(axis=(1, 3))
    matrix = camera.field_value("color_matrix")
    gains = camera.field_value("white_balance")
    camera_rgb = np.clip((pixels @ np.linalg.inv(matrix).T) / gains, 0.0, None)
    levels = camera.field_value("black_level")
    black = levels[site_index_map((h, w))]
    clean = black + (1.0 - black) * mosaic(camera_rgb, camera.cfa)
    raw = simulate_low_light(
        clean,
        ratio=intensity,
        gain=camera.gain,
        read_noise=camera.read_noise or 0.0,
        white_level=camera.saturation,
        rng=rng,
        black_level=levels,
        model="poisson",
        quantise=True,
    )
    return raw.astype(np.float32)


@attrs.frozen
class Canvas:
    """Supersampled square pixel grid with centred coordinates in output pixels.

    Parameters
    ----------
    size : int
        Side of the output image in pixels.
    supersampling : int
        Scene samples per output pixel along each axis.

    Notes
    -----
    Coordinates run from ``-size / 2`` to ``size / 2``; sample ``k`` sits at
    ``(k + 0.5) / supersampling - size / 2``. Shapes are drawn inside a
    :meth:`window` around them, which keeps generation fast.
    """

    size: int
    supersampling: int = SUPERSAMPLING

    @property
    def samples(self) -> int:
        """Samples along each axis (``size * supersampling``)."""
        return self.size * self.supersampling

    @property
    def coords(self) -> np.ndarray:
        """``(samples,)`` float64 sample-centre coordinates in output pixels."""
        return (np.arange(self.samples) + 0.5) / self.supersampling - self.size / 2.0

    def zeros(self, channels: int = 0) -> np.ndarray:
        """``(samples, samples)`` or ``(samples, samples, channels)`` float64 zeros."""
        shape = (self.samples, self.samples) + ((channels,) if channels else ())
        return np.zeros(shape)

    def window(
        self, cy: float, cx: float, reach: float
    ) -> tuple[tuple[slice, slice], np.ndarray, np.ndarray]:
        """Samples within ``reach`` pixels (a square) of ``(cy, cx)``.

        Returns
        -------
        (index, yy, xx)
            ``index`` = ``(slice, slice)`` into a canvas array; ``yy`` an
            ``(h, 1)`` and ``xx`` a ``(1, w)`` coordinate grid that broadcast
            to the window's ``(h, w)`` (h or w is 0 when off-canvas).
        """
        c = self.coords
        s, n, half = self.supersampling, self.samples, self.size / 2.0
        lo_y = int(np.clip(np.floor((cy - reach + half) * s), 0, n))
        hi_y = int(np.clip(np.ceil((cy + reach + half) * s), lo_y, n))
        lo_x = int(np.clip(np.floor((cx - reach + half) * s), 0, n))
        hi_x = int(np.clip(np.ceil((cx + reach + half) * s), lo_x, n))
        index = (slice(lo_y, hi_y), slice(lo_x, hi_x))
        return index, c[lo_y:hi_y, None], c[None, lo_x:hi_x]


def soft_edge(signed_distance: np.ndarray, width: float) -> np.ndarray:
    """Anti-aliased inside indicator from a signed distance (negative inside).

    Parameters
    ----------
    signed_distance : numpy.ndarray
        Distance to a shape's outline in pixels, negative inside, any shape.
    width : float
        Edge softness in pixels (> 0).

    Returns
    -------
    numpy.ndarray
        float64 in [0, 1]: ``0.5 * (1 - tanh(d / width))``.
    """
    return 0.5 * (1.0 - np.tanh(np.asarray(signed_distance) / float(width)))


def smooth_noise(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """Gaussian-filtered white noise normalised to zero mean and unit variance.

    Long correlation lengths are drawn on a coarser grid (one sample per
    ``sigma / 3`` pixels) and interpolated bilinearly, which keeps the cost
    independent of ``sigma``.

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of the white noise.
    shape : tuple of int
        ``(h, w)`` output shape.
    sigma : float
        Correlation length in array pixels (> 0).

    Returns
    -------
    numpy.ndarray
        ``(h, w)`` float64.
    """
    h, w = shape
    step = max(1, int(sigma // 3))
    coarse = (h // step + 2, w // step + 2) if step > 1 else (h, w)
    field = gaussian_filter(rng.standard_normal(coarse), sigma / step, mode="wrap")
    if step > 1:
        field = zoom(field, step, order=1, grid_mode=False)[:h, :w]
    return (field - field.mean()) / (field.std() + 1e-12)


class EmbeddedDataset(RawDataset):
    """A generated raw dataset: item ``i`` is rendered from ``(seed, name, i)`` on access.

    Parameters
    ----------
    spec : DatasetSpec
        The declaration (camera, classes).
    scene_fn : callable
        ``scene_fn(index, size, label, scene_rng, group_rng) -> Scene``; ``label``
        is the item's class index (None for segmentation), ``group_rng`` is
        seeded by the item's group (slide or flight) so group-level conditions
        are shared.
    labels_fn : callable or None
        ``labels_fn(n_items, rng) -> (N,) int64`` for classification (labels
        known without rendering), None for segmentation.
    group_fn : callable
        ``group_fn(index) -> str`` split group of an item.
    n_items : int
        Number of items (>= 1).
    size : int
        Even side of the square mosaics in pixels (>= 16).
    seed : int
        Non-negative base seed.
    intensity : float
        Light level in (0, 1], rendered natively.

    Raises
    ------
    DatasetError
        Bad ``n_items``, ``size`` or ``seed``.
    """

    def __init__(
        self,
        spec: DatasetSpec,
        scene_fn: SceneFn,
        *,
        labels_fn: Callable[[int, np.random.Generator], np.ndarray] | None,
        group_fn: Callable[[int], str],
        n_items: int,
        size: int,
        seed: int,
        intensity: float,
    ) -> None:
        super().__init__(spec, intensity)
        if isinstance(n_items, bool) or not isinstance(n_items, (int, np.integer)) or n_items < 1:
            raise DatasetError(f"{spec.name}: n_items must be a positive integer, got {n_items!r}")
        if n_items > MAX_ITEMS:
            raise DatasetError(
                f"{spec.name}: n_items = {n_items} exceeds the limit of {MAX_ITEMS} generated items"
            )
        if (
            isinstance(size, bool)
            or not isinstance(size, (int, np.integer))
            or size < 16
            or size % 2
        ):
            raise DatasetError(f"{spec.name}: size must be an even integer >= 16, got {size!r}")
        if size > MAX_SIZE:
            raise DatasetError(
                f"{spec.name}: size = {size} exceeds the limit of {MAX_SIZE} pixels per side"
            )
        try:
            item_seed(seed)
        except ValueError as exc:
            raise DatasetError(f"{spec.name}: {exc}") from None
        self.n_items = int(n_items)
        self.size = int(size)
        self.seed = int(seed)
        self._scene_fn = scene_fn
        self._group_fn = group_fn
        self._labels = (
            None
            if labels_fn is None
            else np.asarray(labels_fn(self.n_items, self._rng("labels")), dtype=np.int64).reshape(
                self.n_items
            )
        )

    def _rng(self, *parts: object) -> np.random.Generator:
        return np.random.default_rng(item_seed(self.seed, self.spec.name, *parts))

    def __len__(self) -> int:
        return self.n_items

    @property
    def ids(self) -> list[str]:
        return [f"{self.spec.name}-s{self.seed}-{i:05d}" for i in range(self.n_items)]

    @property
    def labels(self) -> np.ndarray | None:
        return None if self._labels is None else self._labels.copy()

    @property
    def groups(self) -> list[str]:
        return [self._group_fn(i) for i in range(self.n_items)]

    def label_of(self, index: int) -> int | None:
        """Class index of item ``index`` without rendering it (None for segmentation)."""
        return None if self._labels is None else int(self._labels[index])

    def scene(self, index: int) -> Scene:
        """The linear-RGB scene of item ``index`` before the camera (for inspection)."""
        group = self._group_fn(index)
        return self._scene_fn(
            index,
            self.size,
            self.label_of(index),
            self._rng("scene", index),
            self._rng("group", group),
        )

    def recipe_digest(self, index: int) -> str:
        """SHA-256 of what fixes item ``index``'s scene: the scene generator, dataset name,
        seed, index and size (not the camera or light level, which only change how the
        same scene is captured); no rendering."""
        if not 0 <= int(index) < self.n_items:
            raise IndexError(f"index {index} out of range for {self.spec.name}")
        fn = self._scene_fn
        maker = f"{getattr(fn, '__module__', '')}.{getattr(fn, '__qualname__', repr(fn))}"
        text = f"embedded|{maker}|{self.spec.name}|{self.seed}|{int(index)}|{self.size}"
        return hashlib.sha256(text.encode()).hexdigest()

    def load(self, index: int) -> Sample:
        """Render item ``index``: ``(size, size)`` float32 mosaic, target and metadata."""
        scene = self.scene(index)
        raw = render_raw(
            scene.radiance,
            self.spec.camera,
            blur_sigma=scene.blur_sigma,
            intensity=self.intensity,
            rng=self._rng("noise", index),
        )
        meta = {
            **scene.meta,
            "id": self.ids[index],
            "group": self._group_fn(index),
            "intensity": self.intensity,
            "seed": self.seed,
        }
        return Sample(raw=raw, target=scene.target, meta=meta)

    def materialise(self) -> tuple[np.ndarray, np.ndarray]:
        """Render every item at once.

        Returns
        -------
        (numpy.ndarray, numpy.ndarray)
            ``(N, size, size)`` float32 mosaics and the targets: ``(N,)`` int64
            class indices or ``(N, size, size)`` uint8 masks.
        """
        samples = [self.load(i) for i in range(self.n_items)]
        raws = np.stack([s.raw for s in samples])
        targets = np.stack([np.asarray(s.target) for s in samples])
        if self._labels is not None:
            targets = targets.astype(np.int64)
        return raws, targets


def open_embedded(
    spec: DatasetSpec,
    data_root: Path | None,
    intensity: float,
    *,
    scene_fn: SceneFn,
    labels_fn: Callable[[int, np.random.Generator], np.ndarray] | None,
    group_fn: Callable[[int], str],
    n_items: int,
    size: int,
    seed: int,
) -> EmbeddedDataset:
    """Shared opener body; ``data_root`` is ignored (nothing is read).

    Raises
    ------
    DatasetError
        See :class:`EmbeddedDataset`.
    """
    return EmbeddedDataset(
        spec,
        scene_fn,
        labels_fn=labels_fn,
        group_fn=group_fn,
        n_items=n_items,
        size=size,
        seed=seed,
        intensity=intensity,
    )
