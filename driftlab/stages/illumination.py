"""Lower-illumination simulator: render a raw mosaic as if captured with less light.

Physical model (DESIGN section 4, "Lower illumination"; the photon-transfer
model of Janesick, "Photon Transfer", SPIE 2007). A mosaic ``x`` is the stored
value divided by the white level ``WL = 2**bits - 1`` DN and contains a black
level ``b`` (fraction of ``WL``, one value per CFA site). With a conversion
gain ``g`` (DN per electron, on the stored scale) the signal above black is
``(x - b) * WL / g`` electrons. At a light level ``I_ratio`` of the original
exposure the expected count is ``lam = I_ratio * (x - b) * WL / g``; the sensor
then records

``DN = b * WL + g * Poisson(lam) + Normal(0, sigma_read)``

so that, in normalised units (divide by ``WL``)::

    mean     = b + I_ratio * (x - b)
    variance = (g * mean_DN + sigma_read**2) / WL**2,   mean_DN = I_ratio * (x - b) * WL

(plus ``1 / (12 * WL**2)`` when the output is quantised to integer DN).

Design decisions
----------------
* The output is **not** rescaled by ``1 / I_ratio``: like the paper's
  ``raw_scaleNNN`` captures, a lower light level gives a darker and noisier
  mosaic. Brightness is restored (or not) by the ISP, never by the simulator.
* The black level is an offset of the read-out electronics, not light: it is
  kept as is and only the signal above it is dimmed.
* ``illumination.poisson`` and ``illumination.binomial`` (static only) clip to
  ``[0, WL]`` and quantise to integer DN like an analogue-to-digital converter.
* ``illumination.gaussian`` (static and differentiable) approximates the shot
  noise by a Gaussian of the same variance, written with the
  reparameterisation ``mean + sqrt(variance) * z``. It neither clips nor
  quantises, so gradients flow to ``x``, ``ratio``, ``gain`` and ``read_noise``.

Random numbers
--------------
Every variant draws from a :class:`numpy.random.Generator` seeded from
``StageContext.seed``:

* ``gaussian`` takes ``z`` from a generator seeded by ``(seed, H, W, b)`` for
  the ``b``-th image of a batch (the static form is image 0), so both forms
  use *identical* noise and agree to float precision. The noise field is fixed
  for a given seed and shape (a frozen reparameterisation); change the seed to
  draw another field.
* ``poisson`` and ``binomial`` seed their generator with ``seed`` and a digest
  of the input mosaic, so different images get independent noise and the same
  image always gets the same noise.

The physics (:func:`simulate_low_light`, re-exported here) lives in
:mod:`driftlab.sensor`, shared with the datasets, which apply the same model
per item seeded by ``(seed, item id)`` (:mod:`driftlab.datasets.intensity`).
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch

from driftlab.cfa import site_index_map
from driftlab.params import Domain, ParamSpec
from driftlab.sensor import NOISE_MODELS, simulate_low_light
from driftlab.stages.base import StageContext, StageSpec

__all__ = [
    "NOISE_MODELS",
    "STAGES",
    "gaussian_noise_field",
    "illumination_binomial_static",
    "illumination_gaussian_static",
    "illumination_gaussian_torch",
    "illumination_poisson_static",
    "simulate_low_light",
]

# stream tags keep the draws of different variants independent for one seed
_TAG_GAUSSIAN = 0x6761
_TAG_CONTENT = 0x7069

RATIO = ParamSpec(
    name="ratio",
    shape=(),
    default=1.0,
    unit="fraction of the original illumination",
    domain=Domain(0.001, 1.0),
    doc="light level I_ratio relative to the input exposure (0.1 = 10x fewer photons)",
)
GAIN = ParamSpec(
    name="gain",
    shape=(),
    default=1.0,
    unit="DN per electron (stored scale)",
    domain=Domain(0.01, 100.0),
    doc="conversion gain of the sensor on the stored bit depth",
)
READ_NOISE = ParamSpec(
    name="read_noise",
    shape=(),
    default=2.0,
    unit="DN (standard deviation, stored scale)",
    domain=Domain(0.0, 500.0),
    doc="standard deviation of the Gaussian read noise",
)
BLACK_LEVEL = ParamSpec(
    name="black_level",
    shape=(4,),
    default=(0.0, 0.0, 0.0, 0.0),
    unit="fraction of white level",
    domain=Domain(0.0, 0.1),
    doc="black level of each CFA site (raster order); only the signal above it is dimmed",
    camera_field="black_level",
    differentiable=False,
)
PARAMS = (RATIO, GAIN, READ_NOISE, BLACK_LEVEL)


def _white_level(ctx: StageContext) -> float:
    # the camera's saturation value, as datasets use it (StageContext.white_level)
    return float(ctx.white_level)


def _check_seed(seed: int) -> int:
    if not isinstance(seed, (int, np.integer)) or int(seed) < 0:
        raise ValueError(f"StageContext.seed must be a non-negative integer, got {seed!r}")
    return int(seed)


def _content_rng(x: np.ndarray, seed: int) -> np.random.Generator:
    digest = hashlib.blake2b(np.ascontiguousarray(x, dtype=np.float64).tobytes(), digest_size=16)
    words = np.frombuffer(digest.digest(), dtype=np.uint32).tolist()
    return np.random.default_rng([_check_seed(seed), _TAG_CONTENT, *x.shape, *words])


def gaussian_noise_field(seed: int, shape: tuple[int, int], batch: int = 1) -> np.ndarray:
    """Standard-normal numbers shared by both forms of ``illumination.gaussian``.

    Parameters
    ----------
    seed : int
        Non-negative seed (``StageContext.seed``).
    shape : tuple of int
        ``(H, W)`` of the mosaic.
    batch : int
        Number of images; image ``b`` uses a generator seeded by
        ``(seed, H, W, b)``, so image 0 of a batch equals the static draw.

    Returns
    -------
    numpy.ndarray
        ``(batch, H, W)`` float64, standard normal.

    Raises
    ------
    ValueError
        If ``seed`` is negative or not an integer.
    """
    seed = _check_seed(seed)
    h, w = (int(v) for v in shape)
    return np.stack(
        [
            np.random.default_rng([seed, _TAG_GAUSSIAN, h, w, b]).standard_normal((h, w))
            for b in range(int(batch))
        ]
    )


def _static(x: np.ndarray, ctx: StageContext, model: str, **p: np.ndarray) -> np.ndarray:
    return simulate_low_light(
        x,
        ratio=float(p["ratio"]),
        gain=float(p["gain"]),
        read_noise=float(p["read_noise"]),
        white_level=_white_level(ctx),
        rng=_content_rng(x, ctx.seed),
        black_level=p["black_level"],
        model=model,
        quantise=True,
    )


def illumination_poisson_static(
    x: np.ndarray,
    ctx: StageContext,
    *,
    ratio: np.ndarray,
    gain: np.ndarray,
    read_noise: np.ndarray,
    black_level: np.ndarray,
) -> np.ndarray:
    """Exact Poisson shot noise plus Gaussian read noise at a lower light level.

    Parameters
    ----------
    x : numpy.ndarray
        ``(H, W)`` float64 mosaic in [0, 1], treated as a noise-free exposure.
    ctx : StageContext
        ``bit_depth`` gives the white level, ``seed`` the random stream
        (combined with a digest of ``x``).
    ratio, gain, read_noise : numpy.ndarray
        Scalars: ``I_ratio`` in (0, 1], DN per electron, DN.
    black_level : numpy.ndarray
        ``(4,)`` per CFA site, fraction of the white level.

    Returns
    -------
    numpy.ndarray
        ``(H, W)`` float64 in [0, 1], quantised to integer DN, darker by
        ``ratio`` (not rescaled).
    """
    return _static(
        x, ctx, "poisson", ratio=ratio, gain=gain, read_noise=read_noise, black_level=black_level
    )


def illumination_binomial_static(
    x: np.ndarray,
    ctx: StageContext,
    *,
    ratio: np.ndarray,
    gain: np.ndarray,
    read_noise: np.ndarray,
    black_level: np.ndarray,
) -> np.ndarray:
    """Lower light for a real capture: binomial thinning of its electrons.

    Same arguments and output as :func:`illumination_poisson_static`; use it
    when ``x`` already carries the shot and read noise of its own exposure
    (real ``raw_scale100`` data), so that noise is not counted twice.
    """
    return _static(
        x, ctx, "binomial", ratio=ratio, gain=gain, read_noise=read_noise, black_level=black_level
    )


def illumination_gaussian_static(
    x: np.ndarray,
    ctx: StageContext,
    *,
    ratio: np.ndarray,
    gain: np.ndarray,
    read_noise: np.ndarray,
    black_level: np.ndarray,
) -> np.ndarray:
    """Gaussian approximation of shot plus read noise (reparameterised).

    ``out = b + ratio * s + sqrt((gain * ratio * s * WL + read_noise**2) / WL**2) * z``
    with ``s = max(x - b, 0)`` and ``z`` from :func:`gaussian_noise_field`.

    Parameters
    ----------
    x : numpy.ndarray
        ``(H, W)`` float64 mosaic in [0, 1].
    ctx : StageContext
        ``bit_depth`` gives ``WL``; ``seed`` the noise field.
    ratio, gain, read_noise, black_level : numpy.ndarray
        As for :func:`illumination_poisson_static`.

    Returns
    -------
    numpy.ndarray
        ``(H, W)`` float64, not clipped and not quantised (may leave [0, 1]
        slightly), darker by ``ratio``.
    """
    wl = _white_level(ctx)
    black = np.asarray(black_level, dtype=np.float64)[site_index_map(x.shape)]
    signal = np.clip(x - black, 0.0, None)
    variance = (float(gain) * float(ratio) * signal * wl + float(read_noise) ** 2) / wl**2
    z = gaussian_noise_field(ctx.seed, x.shape, 1)[0]
    return black + float(ratio) * signal + np.sqrt(variance + 1e-30) * z


def illumination_gaussian_torch(
    x: torch.Tensor,
    ctx: StageContext,
    *,
    ratio: torch.Tensor,
    gain: torch.Tensor,
    read_noise: torch.Tensor,
    black_level: torch.Tensor,
) -> torch.Tensor:
    """Differentiable :func:`illumination_gaussian_static`, ``(B, 1, H, W)`` to ``(B, 1, H, W)``.

    Gradients flow to ``x``, ``ratio``, ``gain`` and ``read_noise``; the
    noise ``z`` is a constant drawn with numpy (identical to the static form).
    """
    b, _, h, w = x.shape
    wl = _white_level(ctx)
    index = torch.as_tensor(site_index_map((h, w)), device=x.device)
    black = black_level[index]
    signal = (x - black).clamp(min=0.0)
    variance = (gain * ratio * signal * wl + read_noise**2) / wl**2
    z = torch.as_tensor(gaussian_noise_field(ctx.seed, (h, w), b)[:, None], dtype=x.dtype)
    return black + ratio * signal + torch.sqrt(variance + 1e-30) * z.to(x.device)


_REFERENCE = (
    "photon-transfer sensor model (Janesick, Photon Transfer, SPIE 2007); lower illumination "
    "as in Oala et al., TMLR 2023 (raw_scaleNNN)"
)

STAGES = [
    StageSpec(
        slot="illumination",
        variant="poisson",
        doc="lower light: Poisson shot noise + Gaussian read noise, clipped and quantised",
        params=PARAMS,
        static=illumination_poisson_static,
        input_kind="mosaic",
        output_kind="mosaic",
        reference=_REFERENCE,
    ),
    StageSpec(
        slot="illumination",
        variant="binomial",
        doc="lower light for a noisy capture: binomial thinning of its electrons + read noise",
        params=PARAMS,
        static=illumination_binomial_static,
        input_kind="mosaic",
        output_kind="mosaic",
        reference=_REFERENCE,
    ),
    StageSpec(
        slot="illumination",
        variant="gaussian",
        doc="lower light, Gaussian approximation of shot + read noise (differentiable)",
        params=PARAMS,
        static=illumination_gaussian_static,
        differentiable=illumination_gaussian_torch,
        input_kind="mosaic",
        output_kind="mosaic",
        reference=_REFERENCE,
    ),
]
