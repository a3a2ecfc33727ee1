"""Request a raw dataset at any light level.

Real captures exist only at the levels a dataset declares
(:attr:`~driftlab.datasets.base.DatasetSpec.intensities`); every other level is
*simulated* here by wrapping the dataset: each item is re-exposed with
:func:`driftlab.sensor.simulate_low_light` (shot noise from the
camera gain, Gaussian read noise, clipping and quantisation), with a random
stream seeded by ``(seed, item id)`` so that an item looks the same every
time and in every process, whatever the access order.
"""

from __future__ import annotations

import hashlib

import numpy as np

from driftlab.datasets.base import DatasetError, RawDataset, Sample
from driftlab.sensor import NOISE_MODELS, simulate_low_light

__all__ = ["SimulatedIntensity", "item_seed", "simulate_intensity"]


def item_seed(seed: int, *parts: object) -> np.random.SeedSequence:
    """Seed sequence derived from a base seed and item identifiers.

    Parameters
    ----------
    seed : int
        Non-negative base seed.
    *parts : object
        Identifiers (item id, purpose tag ...), turned into text.

    Returns
    -------
    numpy.random.SeedSequence
        Same parts give the same sequence in every process (a SHA-256 digest
        of the text, not Python's salted ``hash``).

    Raises
    ------
    ValueError
        If ``seed`` is negative or not an integer.
    """
    if not isinstance(seed, (int, np.integer)) or int(seed) < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    text = "\x1f".join(str(p) for p in parts).encode()
    words = np.frombuffer(hashlib.sha256(text).digest(), dtype=np.uint32).tolist()
    return np.random.SeedSequence([int(seed), *words])


class SimulatedIntensity(RawDataset):
    """A raw dataset re-exposed at a lower light level, item by item.

    Parameters
    ----------
    base : RawDataset
        Dataset at a higher light level (usually full intensity).
    intensity : float
        Target light level relative to full intensity, in (0, base.intensity].
    seed : int
        Base seed; item ``i`` uses :func:`item_seed` ``(seed, "intensity", id)``.
    gain : float or None
        DN per electron on the stored scale; defaults to the camera's ``gain``.
    read_noise : float or None
        Read noise in DN; defaults to the camera's ``read_noise``, else 0.
    model : {"binomial", "poisson"}
        ``binomial`` (default) treats the base items as real captures that
        already hold shot noise; ``poisson`` treats them as noise-free (see
        :func:`~driftlab.sensor.simulate_low_light`).

    Raises
    ------
    DatasetError
        Target above the base level, unknown model, or no gain known.

    Notes
    -----
    ``skipped``, ``notes``, ``camera_source`` and ``overlap`` (the
    near-duplicate report, when the base has one) are copied from ``base``.
    """

    def __init__(
        self,
        base: RawDataset,
        intensity: float,
        *,
        seed: int = 0,
        gain: float | None = None,
        read_noise: float | None = None,
        model: str = "binomial",
    ) -> None:
        name = base.spec.name
        intensity = float(intensity)
        if not 0.0 < intensity <= base.intensity:
            raise DatasetError(
                f"{name}: can only simulate less light than the source (intensity "
                f"{base.intensity:g}); asked for {intensity:g}"
            )
        if model not in NOISE_MODELS:
            raise DatasetError(f"{name}: noise model must be one of {NOISE_MODELS}, got {model!r}")
        camera = base.spec.camera
        gain = camera.gain if gain is None else gain
        if gain is None or not float(gain) > 0.0:
            raise DatasetError(
                f"{name}: simulating intensity {intensity:g} needs the sensor gain in DN per "
                f"electron; camera {camera.name!r} declares none, pass gain=..."
            )
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise DatasetError(f"{name}: seed must be a non-negative integer, got {seed!r}")
        read_noise = (camera.read_noise or 0.0) if read_noise is None else read_noise
        if not float(read_noise) >= 0.0:
            raise DatasetError(f"{name}: read_noise must be >= 0 DN, got {read_noise}")
        super().__init__(base.spec, intensity)
        # what the base dataset found while opening still describes these items
        self.skipped = list(base.skipped)
        self.notes = list(base.notes)
        self.camera_source = base.camera_source
        self.overlap = getattr(base, "overlap", None)
        self.base = base
        self.ratio = intensity / base.intensity
        self.seed = int(seed)
        self.gain = float(gain)
        self.read_noise = float(read_noise)
        self.model = model

    def __len__(self) -> int:
        return len(self.base)

    @property
    def ids(self) -> list[str]:
        return self.base.ids

    @property
    def labels(self) -> np.ndarray | None:
        return self.base.labels

    @property
    def groups(self) -> list[str]:
        return self.base.groups

    def content_digest(self, index: int) -> str:
        """The base item's :meth:`~RawDataset.content_digest`: the re-exposure (and its
        noise, drawn per item id) is not content."""
        return self.base.content_digest(index)

    def recipe_digest(self, index: int) -> str | None:
        """The base item's :meth:`~RawDataset.recipe_digest`."""
        return self.base.recipe_digest(index)

    def load(self, index: int) -> Sample:
        """Item ``index`` of the base dataset, re-exposed.

        Returns
        -------
        Sample
            ``raw`` ``(H, W)`` float32 in [0, 1] (darker by the ratio, not
            rescaled); target unchanged; ``meta`` gains ``intensity``,
            ``simulated_intensity=True`` and ``noise_model``.
        """
        sample = self.base[index]
        item_id = sample.meta.get("id", self.base.ids[index])
        rng = np.random.default_rng(item_seed(self.seed, "intensity", item_id))
        raw = simulate_low_light(
            sample.raw,
            ratio=self.ratio,
            gain=self.gain,
            read_noise=self.read_noise,
            white_level=self.spec.camera.saturation,
            rng=rng,
            black_level=self.spec.camera.black_level,
            model=self.model,
        )
        meta = {
            **sample.meta,
            "intensity": self.intensity,
            "simulated_intensity": True,
            "noise_model": self.model,
        }
        return Sample(raw=raw.astype(np.float32), target=sample.target, meta=meta)


def simulate_intensity(
    dataset: RawDataset,
    intensity: float,
    *,
    seed: int = 0,
    gain: float | None = None,
    read_noise: float | None = None,
    model: str = "binomial",
) -> RawDataset:
    """Return ``dataset`` at ``intensity``, simulating the level when needed.

    Parameters
    ----------
    dataset : RawDataset
        Source dataset (its :attr:`~RawDataset.intensity` is the level it holds).
    intensity : float
        Wanted light level in (0, 1].
    seed, gain, read_noise, model
        See :class:`SimulatedIntensity`.

    Returns
    -------
    RawDataset
        ``dataset`` itself when it already is at ``intensity``, else a
        :class:`SimulatedIntensity` wrapper.

    Raises
    ------
    DatasetError
        See :class:`SimulatedIntensity`.
    """
    if np.isclose(float(intensity), dataset.intensity, rtol=0.0, atol=1e-12):
        return dataset
    return SimulatedIntensity(
        dataset, intensity, seed=seed, gain=gain, read_noise=read_noise, model=model
    )
