"""Mosaics as a mis-calibrated camera would have captured them.

A camera profile (black level ``b``, white-balance gains ``g``, colour
matrix ``M``) says how the ISP turns a mosaic into a view: camera RGB
``c = (raw - b) / (1 - b)`` at each site, then ``M @ (g * c)`` is the
scene's linear RGB ``s`` (up to the ``1 - b`` scale the ISP keeps). A camera
whose *true* parameters are ``b'``, ``g'``, ``M'`` records the same scene as
``c' = g'^-1 * M'^-1 @ s`` and ``raw' = b' + (1 - b') c'``. So each pixel's
camera RGB changes by the 3x3 matrix

``A = diag(1 / g') @ inv(M') @ M @ diag(g)``

and a dataset made for the profile is re-rendered for the true camera by
:func:`miscalibrate_mosaics`: a mosaic keeps only one colour per pixel, so
the pixel's own channel ``k`` is scaled exactly (``A_kk c_k``) and the
cross-channel terms ``A_kj c_j`` (``j != k``, only present when the colour
matrix differs) use the other channels interpolated by driftlab's
differentiable bilinear demosaicing (phase-preserving borders). Values are
clipped to [0, 1] (the sensor's range); quantisation and the noise of the
original capture are kept as they are (the noise is scaled with the signal).

An ISP built from the *profile* then renders these mosaics off colour and
off black; an ISP that learns its white balance, colour matrix and black
level can move towards the true ``g'``, ``M'`` and ``b'``. The true camera
is made by :func:`true_camera` from ``[miscalibration]``:

- ``white_balance``: factors ``f``, ``g' = g * f``;
- ``color_matrix_delta``: a number ``d`` gives ``M' = M + d * CROSS_TALK``
  (a cyclic cross-talk pattern whose rows sum to zero, so row sums and
  hence the rendering of neutral grey are kept), or a 3x3 matrix added to
  ``M``;
- ``black_level``: ``b' = b + o`` per CFA site (one offset or four, in
  raster order of the 2x2 block, fractions of the white level).
"""

from __future__ import annotations

import numpy as np
import torch

from driftlab.camera import CameraParams
from driftlab.cfa import cfa_masks, site_index_map
from driftlab.stages.base import StageContext
from driftlab.stages.demosaic import bilinear_torch

__all__ = ["CROSS_TALK", "camera_transfer", "miscalibrate_mosaics", "true_camera"]

CROSS_TALK = np.array([[0.0, 1.0, -1.0], [-1.0, 0.0, 1.0], [1.0, -1.0, 0.0]])
"""Cyclic cross-talk pattern added to the colour matrix by a scalar delta (rows sum to 0)."""


def true_camera(
    camera: CameraParams,
    white_balance: list[float] | tuple[float, ...] = (1.0, 1.0, 1.0),
    color_matrix_delta: float | list[list[float]] = 0.0,
    black_level: float | list[float] = 0.0,
) -> CameraParams:
    """The camera that really captured the data: ``camera`` offset by the given amounts.

    Parameters
    ----------
    camera : CameraParams
        The calibrated profile the ISP is built with.
    white_balance : sequence of 3 float
        Positive factors on the R, G, B gains.
    color_matrix_delta : float or 3x3 nested list
        ``d * CROSS_TALK`` (a number) or a matrix added to the colour matrix.
    black_level : float or sequence of 4 float
        Added to the black level of every site (or of each site), fraction
        of the white level.

    Returns
    -------
    CameraParams
        Same profile with ``white_balance``, ``color_matrix`` and
        ``black_level`` replaced, named ``"<name> (mis-calibrated)"`` when
        anything changed.

    Raises
    ------
    ValueError
        Factors not positive, shapes wrong, a black level leaving [0, 1),
        or a true colour matrix that is singular (it could not have
        produced the data).
    """
    factors = np.asarray(white_balance, dtype=np.float64)
    if factors.shape != (3,) or not np.all(np.isfinite(factors)) or np.any(factors <= 0):
        raise ValueError(f"white_balance: expected 3 positive factors, got {white_balance!r}")
    delta = np.asarray(color_matrix_delta, dtype=np.float64)
    if delta.ndim == 0:
        delta = float(delta) * CROSS_TALK
    if delta.shape != (3, 3) or not np.all(np.isfinite(delta)):
        raise ValueError(
            f"color_matrix_delta: expected a number or a 3x3 matrix, got {color_matrix_delta!r}"
        )
    offsets = np.broadcast_to(np.asarray(black_level, dtype=np.float64).ravel(), (4,))
    if np.asarray(black_level).size not in (1, 4):
        raise ValueError(f"black_level: expected one offset or 4, got {black_level!r}")
    gains = camera.field_value("white_balance") * factors
    matrix = camera.field_value("color_matrix") + delta
    levels = camera.field_value("black_level") + offsets
    if np.any(levels < 0) or np.any(levels >= 1):
        raise ValueError(
            f"black_level: the true black level {levels.round(6).tolist()} (profile "
            f"{camera.field_value('black_level').round(6).tolist()} + offsets) must lie in [0, 1) "
            "of the white level"
        )
    if abs(np.linalg.det(matrix)) < 1e-9 * max(1.0, np.abs(matrix).max() ** 3):
        raise ValueError(
            f"color_matrix_delta: the true colour matrix {matrix.round(4).tolist()} is singular"
        )
    changed = not (np.all(factors == 1.0) and np.all(delta == 0.0) and np.all(offsets == 0.0))
    name = f"{camera.name} (mis-calibrated)" if changed else camera.name
    return camera.replace(
        name=name,
        white_balance=tuple(gains.tolist()),
        color_matrix=tuple(map(tuple, matrix.tolist())),
        black_level=tuple(levels.tolist()),
    )


def camera_transfer(profile: CameraParams, true: CameraParams) -> np.ndarray:
    """The 3x3 matrix ``A`` taking profile camera RGB to true camera RGB (module docstring).

    Returns
    -------
    numpy.ndarray
        ``(3, 3)`` float64; the identity when both cameras agree.

    Raises
    ------
    ValueError
        A zero gain of the true camera, or a singular true colour matrix.
    """
    g = profile.field_value("white_balance")
    g_true = true.field_value("white_balance")
    if np.any(g_true == 0):
        raise ValueError(f"camera {true.name!r}: a zero white-balance gain cannot be inverted")
    m = profile.field_value("color_matrix")
    m_true = true.field_value("color_matrix")
    try:
        inverse = np.linalg.inv(m_true)
    except np.linalg.LinAlgError:
        raise ValueError(f"camera {true.name!r}: the colour matrix is singular") from None
    return np.diag(1.0 / g_true) @ inverse @ m @ np.diag(g)


def miscalibrate_mosaics(
    raws: np.ndarray, profile: CameraParams, true: CameraParams, *, batch_size: int = 64
) -> np.ndarray:
    """Re-render mosaics made for ``profile`` as ``true`` would have captured them.

    Parameters
    ----------
    raws : numpy.ndarray
        ``(N, H, W)`` mosaics in [0, 1] (fractions of the white level), H and
        W even, in ``profile.cfa``.
    profile : CameraParams
        The camera the mosaics were made for.
    true : CameraParams
        The mis-calibrated camera (:func:`true_camera`); same CFA pattern.
    batch_size : int
        Mosaics interpolated at once (only when cross-channel terms exist).

    Returns
    -------
    numpy.ndarray
        ``(N, H, W)`` float32 in [0, 1]; ``raws`` unchanged (as float32) when
        both cameras agree.

    Raises
    ------
    ValueError
        Wrong shape, odd sides, another CFA pattern, or a black level of 1.
    """
    raws = np.asarray(raws)
    if raws.ndim != 3 or raws.shape[1] % 2 or raws.shape[2] % 2:
        raise ValueError(
            f"miscalibrate_mosaics: expected (N, H, W) with H, W even, got {raws.shape}"
        )
    if profile.cfa != true.cfa:
        raise ValueError(f"miscalibrate_mosaics: CFA {profile.cfa} vs {true.cfa}")
    transfer = camera_transfer(profile, true)
    b = profile.field_value("black_level")
    b_true = true.field_value("black_level")
    if np.any(b >= 1) or np.any(b_true >= 1):
        raise ValueError("miscalibrate_mosaics: a black level of 1 (the white level) or more")
    if np.allclose(transfer, np.eye(3), rtol=0, atol=1e-15) and np.array_equal(b, b_true):
        return raws.astype(np.float32, copy=True)
    shape = raws.shape[1:]
    sites = site_index_map(shape)
    below, below_true = b[sites], b_true[sites]
    masks = cfa_masks(shape, profile.cfa)  # (3, H, W) bool
    own = np.argmax(masks, axis=0)  # colour index of every pixel
    diagonal = np.diag(transfer)[own]
    cross = not np.allclose(transfer, np.diag(np.diag(transfer)), rtol=0, atol=1e-15)
    out = np.empty(raws.shape, dtype=np.float32)
    context = StageContext(cfa=profile.cfa)
    for start in range(0, len(raws), batch_size):
        raw = raws[start : start + batch_size].astype(np.float64)
        camera_rgb = (raw - below) / (1.0 - below)
        moved = diagonal * camera_rgb
        if cross:
            with torch.no_grad():
                full = bilinear_torch(torch.from_numpy(camera_rgb)[:, None], context).numpy()
            # A_kj c_j for j != k at every pixel, k its own colour
            off = transfer - np.diag(np.diag(transfer))
            mixed = np.einsum("kj,njhw->nkhw", off, full)
            index = np.broadcast_to(own, (len(raw), 1, *shape))
            moved = moved + np.take_along_axis(mixed, index, axis=1)[:, 0]
        out[start : start + batch_size] = np.clip(below_true + (1.0 - below_true) * moved, 0, 1)
    return out
