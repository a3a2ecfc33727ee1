"""RGB-to-raw: turn processed sRGB images into approximately raw Bayer mosaics.

Follows the unprocessing idea of Brooks et al., "Unprocessing Images for
Learned Raw Denoising", CVPR 2019: invert the display processing step by step
in the reverse order of the reference ISP (DESIGN section 3), so that
rendering the result with the reference pipeline and the same camera gives
back (approximately) the original image:

1. inverse sRGB transfer curve (IEC 61966-2-1) to linear RGB;
2. optional inverse colour matrix, ``cam = M^-1 @ rgb`` (the ISP applies
   ``M @ cam``);
3. optional inverse white balance, ``cam_c / wb_c`` (the ISP multiplies);
4. scale into the range above the black level, ``b + (1 - b) * cam``;
5. CFA sampling: keep one colour per pixel in the camera's Bayer pattern;
6. optional shot and read noise from the camera's gain and read noise,
   clipping and quantisation to the bit depth
   (:func:`driftlab.sensor.simulate_low_light` at ratio 1).

Known approximations: the reference ISP ends with a power-law gamma (2.2), not
the piecewise sRGB curve, and out-of-gamut colours are clipped to [0, 1] in
camera space, so the round trip is close but not exact. Unlike Brooks et al.
no tone curve is inverted and camera parameters are fixed by the camera
declaration rather than sampled.
"""

from __future__ import annotations

import numpy as np

from driftlab.camera import CameraParams
from driftlab.cfa import cfa_masks, check_cfa, site_index_map
from driftlab.sensor import simulate_low_light

__all__ = ["linear_to_raw", "linear_to_srgb", "mosaic", "srgb_to_linear", "unprocess"]


def _as_float_image(image: np.ndarray, where: str) -> np.ndarray:
    array = np.asarray(image)
    if array.ndim != 3 or array.shape[-1] != 3:
        raise ValueError(f"{where}: expected an (H, W, 3) RGB image, got shape {array.shape}")
    if array.dtype == np.uint8:
        return array.astype(np.float64) / 255.0
    if array.dtype == np.uint16:
        return array.astype(np.float64) / 65535.0
    if not np.issubdtype(array.dtype, np.floating):
        raise ValueError(f"{where}: expected uint8, uint16 or float values, got {array.dtype}")
    out = array.astype(np.float64)
    if not np.all(np.isfinite(out)):
        raise ValueError(f"{where}: contains NaN or Inf")
    if out.min() < 0.0 or out.max() > 1.0:
        raise ValueError(
            f"{where}: float images must lie in [0, 1], got min {out.min():.4g}, "
            f"max {out.max():.4g}"
        )
    return out


def srgb_to_linear(image: np.ndarray) -> np.ndarray:
    """Inverse sRGB transfer curve (IEC 61966-2-1).

    Parameters
    ----------
    image : numpy.ndarray
        ``(H, W, 3)`` sRGB, uint8 (0..255), uint16 (0..65535) or float in [0, 1].

    Returns
    -------
    numpy.ndarray
        ``(H, W, 3)`` float64 linear RGB in [0, 1].

    Raises
    ------
    ValueError
        Wrong shape or dtype, NaN/Inf, or float values outside [0, 1].
    """
    v = _as_float_image(image, "srgb_to_linear")
    return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(linear: np.ndarray) -> np.ndarray:
    """Forward sRGB transfer curve (IEC 61966-2-1), the inverse of :func:`srgb_to_linear`.

    Parameters
    ----------
    linear : numpy.ndarray
        Linear RGB of any shape, clipped to [0, 1] first.

    Returns
    -------
    numpy.ndarray
        float64 sRGB values in [0, 1], same shape.
    """
    v = np.clip(np.asarray(linear, dtype=np.float64), 0.0, 1.0)
    return np.where(v <= 0.0031308, 12.92 * v, 1.055 * v ** (1 / 2.4) - 0.055)


def mosaic(rgb: np.ndarray, cfa: str) -> np.ndarray:
    """Keep one colour per pixel (CFA sampling).

    Parameters
    ----------
    rgb : numpy.ndarray
        ``(H, W, 3)`` float image, H and W even.
    cfa : str
        Bayer pattern: ``RGGB``, ``BGGR``, ``GRBG`` or ``GBRG``.

    Returns
    -------
    numpy.ndarray
        ``(H, W)`` float64 mosaic: at each pixel the channel the pattern
        places there.

    Raises
    ------
    ValueError
        Unknown pattern, not ``(H, W, 3)``, or odd H or W.
    """
    cfa = check_cfa(cfa, "mosaic cfa")
    rgb = np.asarray(rgb, dtype=np.float64)
    if rgb.ndim != 3 or rgb.shape[-1] != 3:
        raise ValueError(f"mosaic: expected an (H, W, 3) image, got shape {rgb.shape}")
    h, w = rgb.shape[:2]
    if h % 2 or w % 2 or h < 2 or w < 2:
        raise ValueError(f"mosaic: height and width must be even (whole 2x2 blocks), got {h}x{w}")
    masks = cfa_masks((h, w), cfa)
    return np.einsum("chw,hwc->hw", masks.astype(np.float64), rgb)


def linear_to_raw(
    linear: np.ndarray,
    camera: CameraParams,
    *,
    rng: np.random.Generator | None = None,
    invert_color: bool = True,
    invert_white_balance: bool = True,
    noise: bool = True,
    quantise: bool = True,
) -> np.ndarray:
    """Linear RGB to a raw Bayer mosaic for ``camera`` (steps 2-6 of the module).

    Parameters
    ----------
    linear : numpy.ndarray
        ``(H, W, 3)`` float linear RGB in [0, 1], H and W even.
    camera : CameraParams
        Supplies the CFA pattern, colour matrix, white-balance gains, black
        level, white level, ``gain`` (DN/e-) and ``read_noise`` (DN).
    rng : numpy.random.Generator or None
        Needed when ``noise`` is True.
    invert_color : bool
        Apply ``M^-1`` of the camera's colour matrix.
    invert_white_balance : bool
        Divide by the camera's white-balance gains.
    noise : bool
        Add Poisson shot noise and Gaussian read noise (needs ``camera.gain``).
    quantise : bool
        Round to integer DN of the white level (always clipped to [0, 1]).

    Returns
    -------
    numpy.ndarray
        ``(H, W)`` float64 mosaic in [0, 1] (stored value / white level),
        including the black level.

    Raises
    ------
    ValueError
        Bad image, a singular colour matrix, non-positive white-balance gains,
        or noise requested without ``rng`` or without ``camera.gain``.
    """
    rgb = np.asarray(linear, dtype=np.float64)
    if rgb.ndim != 3 or rgb.shape[-1] != 3:
        raise ValueError(f"linear_to_raw: expected an (H, W, 3) image, got shape {rgb.shape}")
    if invert_color:
        matrix = camera.field_value("color_matrix")
        if abs(np.linalg.det(matrix)) < 1e-8:
            raise ValueError(f"camera {camera.name!r}: colour matrix is singular, cannot invert")
        rgb = rgb @ np.linalg.inv(matrix).T
    if invert_white_balance:
        gains = camera.field_value("white_balance")
        if np.any(gains <= 0):
            raise ValueError(
                f"camera {camera.name!r}: white-balance gains must be positive to invert, "
                f"got {tuple(gains)}"
            )
        rgb = rgb / gains
    rgb = np.clip(rgb, 0.0, 1.0)
    levels = camera.field_value("black_level")
    black = levels[site_index_map(rgb.shape[:2])]
    raw = black + (1.0 - black) * mosaic(rgb, camera.cfa)
    white = float(camera.saturation)
    if noise:
        if rng is None:
            raise ValueError("linear_to_raw: noise=True needs an rng (numpy Generator)")
        if camera.gain is None:
            raise ValueError(
                f"camera {camera.name!r} declares no gain (DN per electron); "
                "set it or pass noise=False"
            )
        return simulate_low_light(
            raw,
            ratio=1.0,
            gain=camera.gain,
            read_noise=camera.read_noise or 0.0,
            white_level=white,
            rng=rng,
            black_level=levels,
            model="poisson",
            quantise=quantise,
        ).clip(0.0, 1.0)
    if quantise:
        raw = np.round(raw * white) / white
    return np.clip(raw, 0.0, 1.0)


def unprocess(
    image: np.ndarray,
    camera: CameraParams,
    *,
    rng: np.random.Generator | None = None,
    invert_color: bool = True,
    invert_white_balance: bool = True,
    noise: bool = True,
    quantise: bool = True,
) -> np.ndarray:
    """sRGB image to an approximately raw Bayer mosaic (Brooks et al., CVPR 2019).

    Parameters
    ----------
    image : numpy.ndarray
        ``(H, W, 3)`` sRGB, uint8, uint16 or float in [0, 1]; H and W even.
    camera : CameraParams
        Target camera (see :func:`linear_to_raw`).
    rng, invert_color, invert_white_balance, noise, quantise
        See :func:`linear_to_raw`.

    Returns
    -------
    numpy.ndarray
        ``(H, W)`` float64 mosaic in [0, 1].

    Raises
    ------
    ValueError
        See :func:`srgb_to_linear` and :func:`linear_to_raw`.
    """
    return linear_to_raw(
        srgb_to_linear(image),
        camera,
        rng=rng,
        invert_color=invert_color,
        invert_white_balance=invert_white_balance,
        noise=noise,
        quantise=quantise,
    )
