"""Sensor noise physics shared by datasets and the illumination stage.

The photon-transfer model (Janesick, "Photon Transfer", SPIE 2007; DESIGN
section 4, "Lower illumination"). A mosaic ``x`` is the stored value divided
by the white level ``WL`` in DN and contains a black level ``b`` (fraction of
``WL``, one value per CFA site). With a conversion gain ``g`` (DN per
electron, on the stored scale) the signal above black is ``(x - b) * WL / g``
electrons. At a light level ``I_ratio`` of the original exposure the expected
count is ``lam = I_ratio * (x - b) * WL / g``; the sensor then records

``DN = b * WL + g * Poisson(lam) + Normal(0, sigma_read)``

so that, in normalised units (divide by ``WL``)::

    mean     = b + I_ratio * (x - b)
    variance = (g * mean_DN + sigma_read**2) / WL**2,   mean_DN = I_ratio * (x - b) * WL

(plus ``1 / (12 * WL**2)`` when the output is quantised to integer DN).

The output is **not** rescaled by ``1 / I_ratio`` (a lower light level gives a
darker and noisier mosaic, like the paper's ``raw_scaleNNN`` captures), and
the black level, an offset of the read-out electronics, is kept as is.

Users: the ``illumination`` stages (:mod:`driftlab.stages.illumination`),
simulated intensity levels of datasets (:mod:`driftlab.datasets.intensity`),
RGB-to-raw (:mod:`driftlab.datasets.unprocess`) and the generated datasets
(:mod:`driftlab.datasets.embedded`).
"""

from __future__ import annotations

import numpy as np

from driftlab.cfa import site_index_map

__all__ = ["NOISE_MODELS", "check_noise_values", "electrons_to_dn", "simulate_low_light"]

NOISE_MODELS: tuple[str, ...] = ("poisson", "binomial")
"""Shot-noise models of :func:`simulate_low_light`."""


def electrons_to_dn(electrons: float, gain: float) -> float:
    """Convert a charge (e.g. a read-noise standard deviation) from electrons to DN.

    Parameters
    ----------
    electrons : float
        Charge in electrons (e-), >= 0.
    gain : float
        Conversion gain in DN per electron on the stored scale, > 0.

    Returns
    -------
    float
        ``electrons * gain`` in DN of the stored scale.

    Raises
    ------
    ValueError
        Negative or non-finite charge, or a non-positive gain.
    """
    electrons, gain = float(electrons), float(gain)
    if not (np.isfinite(electrons) and electrons >= 0.0):
        raise ValueError(f"electrons must be a finite number >= 0, got {electrons}")
    if not (np.isfinite(gain) and gain > 0.0):
        raise ValueError(f"gain must be positive (DN per electron), got {gain}")
    return electrons * gain


def check_noise_values(ratio: float, gain: float, read_noise: float, white_level: float) -> None:
    """Validate the scalars of the photon-transfer model.

    Raises
    ------
    ValueError
        ``ratio`` outside (0, 1], a non-positive ``gain`` (DN/e-), a negative
        ``read_noise`` (DN) or a ``white_level`` below 1 DN.
    """
    if not 0.0 < ratio <= 1.0:
        raise ValueError(f"illumination ratio must lie in (0, 1], got {ratio}")
    if not gain > 0.0:
        raise ValueError(f"gain must be positive (DN per electron), got {gain}")
    if not read_noise >= 0.0:
        raise ValueError(f"read_noise must be >= 0 (DN), got {read_noise}")
    if not white_level >= 1.0:
        raise ValueError(f"white_level must be >= 1 DN, got {white_level}")


def simulate_low_light(
    raw: np.ndarray,
    *,
    ratio: float,
    gain: float,
    read_noise: float,
    white_level: float,
    rng: np.random.Generator,
    black_level: np.ndarray | tuple[float, ...] = (0.0, 0.0, 0.0, 0.0),
    model: str = "poisson",
    quantise: bool = True,
) -> np.ndarray:
    """Render a mosaic at a lower light level with shot and read noise.

    Parameters
    ----------
    raw : numpy.ndarray
        ``(H, W)`` float mosaic, stored value / ``white_level``, in [0, 1].
    ratio : float
        ``I_ratio`` in (0, 1], light relative to ``raw``'s exposure.
    gain : float
        Conversion gain, DN per electron on the stored scale.
    read_noise : float
        Read-noise standard deviation in DN.
    white_level : float
        ``WL`` in DN (``2**bits - 1`` or the camera's saturation value).
    rng : numpy.random.Generator
        Source of all random numbers.
    black_level : array_like
        ``(4,)`` black level per CFA site (raster order), fraction of ``WL``.
    model : {"poisson", "binomial"}
        ``poisson``: ``raw`` is a clean (noise-free) exposure; the electron
        count is drawn from ``Poisson(ratio * signal)``. ``binomial``: ``raw``
        is a real capture that already holds shot and read noise; each of its
        electrons survives with probability ``ratio`` (binomial thinning,
        exact for Poisson input) and read noise of ``read_noise *
        sqrt(1 - ratio**2)`` tops the original's (scaled by ``ratio``) back up
        to ``read_noise``. Both give mean and variance of the module model.
    quantise : bool
        Round to integer DN and clip to ``[0, WL]`` (an ADC). Without it the
        result is neither rounded nor clipped.

    Returns
    -------
    numpy.ndarray
        ``(H, W)`` float64 mosaic, stored value / ``WL``, **not** rescaled by
        ``1 / ratio``.

    Raises
    ------
    ValueError
        Bad ``model``, a ratio outside (0, 1], a non-positive gain, a negative
        read noise, or a mosaic that is not 2-D.
    """
    if model not in NOISE_MODELS:
        raise ValueError(f"noise model must be one of {NOISE_MODELS}, got {model!r}")
    ratio, gain, read_noise = float(ratio), float(gain), float(read_noise)
    white_level = float(white_level)
    check_noise_values(ratio, gain, read_noise, white_level)
    x = np.asarray(raw, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"expected an (H, W) mosaic, got shape {x.shape}")
    levels = np.asarray(black_level, dtype=np.float64).reshape(4)
    black = levels[site_index_map(x.shape)]
    electrons = np.clip(x - black, 0.0, None) * (white_level / gain)
    if model == "poisson":
        counts = rng.poisson(ratio * electrons).astype(np.float64)
        read_sigma = read_noise
    else:
        whole = np.floor(electrons)
        # unbiased stochastic rounding of fractional electron counts, then thinning
        whole += rng.random(x.shape) < (electrons - whole)
        counts = rng.binomial(whole.astype(np.int64), ratio).astype(np.float64)
        read_sigma = read_noise * np.sqrt(max(0.0, 1.0 - ratio**2))
    dn = black * white_level + gain * counts
    if read_sigma > 0.0:
        dn = dn + rng.normal(0.0, read_sigma, size=x.shape)
    if quantise:
        dn = np.clip(np.round(dn), 0.0, white_level)
    return dn / white_level
