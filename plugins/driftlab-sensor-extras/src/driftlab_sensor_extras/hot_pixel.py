"""Hot-pixel (defective pixel) correction on the Bayer mosaic.

A hot pixel is a photosite whose dark current or gain is far above its
neighbours'; it shows as an isolated bright dot of one colour. Because the
optics blur every real scene detail over several photosites, a pixel that is
much brighter than its *same-colour* neighbours (distance 2 in the mosaic) is
more likely a sensor defect than scene content. Detection and replacement by
the neighbours' median follow the usual defective-pixel-correction scheme of
camera ISPs (e.g. the DPC module of openISP / fast-openISP, which also
compares each pixel with its 8 same-colour neighbours); see also Ramanath et
al., "Color image processing pipeline", IEEE Signal Processing Magazine 22(1),
2005.

Two variants differ only in the detection rule:

``median_replace``
    replace ``x`` by ``m`` where ``x - m > threshold``, ``m`` being the median
    of the 8 same-colour neighbours. Catches hot pixels also next to an edge,
    but also flattens bright corners and one-pixel-wide bright lines whose
    contrast exceeds the threshold.
``isolated``
    replace ``x`` by ``m`` only where ``x - max(neighbours) > threshold``, i.e.
    the pixel is brighter than *all* 8 same-colour neighbours. Leaves edges and
    lines alone; misses a hot pixel that touches bright structure.

Median of the 8 neighbours: the mean of the 4th and 5th smallest value
(:func:`numpy.median`'s convention for an even count). Border rule, the same
in both forms: each CFA site plane (see :mod:`driftlab.stages.filters`)
is padded by whole-sample symmetric reflection about its edge pixel, scipy
``mode="mirror"`` = numpy ``mode="reflect"`` (``c b | a b c``), so padding
never mixes colours and, in site planes of at least 2x2 pixels, a border
pixel is never its own neighbour. With half-sample reflection (scipy's
``"reflect"``) a corner pixel would count itself 3 times among its 8
neighbours, and the ``isolated`` rule could never fire on the two outermost
rows and columns of the mosaic. The static form uses
:func:`scipy.ndimage.rank_filter` and :func:`scipy.ndimage.maximum_filter`;
the differentiable form pads the same way
(:func:`driftlab.stages.filters.pad_symmetric` with ``mode="reflect"``), gathers the 8
shifted neighbours and sorts them, so the gradient flows through the selected
(median) values. Both forms give bit-identical results in float64.

The threshold is a fixed buffer, not an ``nn.Parameter``: the decision is a
step function of it, whose gradient is zero almost everywhere.
"""

from __future__ import annotations

import numpy as np
import scipy.ndimage as ndi
import torch
from driftlab.params import Domain, ParamSpec
from driftlab.stages.base import StageContext, StageSpec
from driftlab.stages.filters import (
    check_mosaic,
    check_mosaic_batch,
    merge_sites,
    merge_sites_torch,
    pad_symmetric,
    split_sites,
    split_sites_torch,
)

__all__ = [
    "STAGES",
    "hot_pixel_mask",
    "isolated_static",
    "isolated_torch",
    "median_replace_static",
    "median_replace_torch",
]

# 3x3 neighbourhood of a site plane without its centre: the 8 same-colour neighbours
NEIGHBOURS = np.ones((3, 3), dtype=bool)
NEIGHBOURS[1, 1] = False
# (dy, dx) of the same neighbours, in raster order, for the torch form
OFFSETS: tuple[tuple[int, int], ...] = tuple(
    (dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dy, dx) != (0, 0)
)


def _threshold_param(default: float, doc: str) -> ParamSpec:
    return ParamSpec(
        name="threshold",
        shape=(),
        default=default,
        unit="fraction of white level",
        domain=Domain(0.02, 1.0),
        doc=doc,
        differentiable=False,
    )


THRESHOLD_MEDIAN = _threshold_param(
    0.2,
    "a pixel is hot when it exceeds the median of its 8 same-colour neighbours by more than this",
)
THRESHOLD_ISOLATED = _threshold_param(
    0.1,
    "a pixel is hot when it exceeds every one of its 8 same-colour neighbours by more than this",
)


# -- neighbour statistics ------------------------------------------------------------------
def _plane_stats_static(planes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Median and maximum of the 8 same-colour neighbours, ``(4, h, w)`` each."""
    median = np.empty_like(planes)
    maximum = np.empty_like(planes)
    for i, plane in enumerate(planes):
        lower = ndi.rank_filter(plane, 3, footprint=NEIGHBOURS, mode="mirror")
        upper = ndi.rank_filter(plane, 4, footprint=NEIGHBOURS, mode="mirror")
        median[i] = (lower + upper) / 2
        maximum[i] = ndi.maximum_filter(plane, footprint=NEIGHBOURS, mode="mirror")
    return median, maximum


def _sorted_neighbours_torch(planes: torch.Tensor) -> torch.Tensor:
    """``(B, 4, h, w)`` site planes to their 8 same-colour neighbours sorted ascending.

    Returns
    -------
    torch.Tensor
        ``(B, 4, 8, h, w)``; differentiable (sorting is a gather).
    """
    h, w = planes.shape[-2:]
    padded = pad_symmetric(planes, 1, 1, mode="reflect")
    shifted = [padded[..., 1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w] for dy, dx in OFFSETS]
    return torch.sort(torch.stack(shifted, dim=2), dim=2).values


# -- static forms --------------------------------------------------------------------------
def hot_pixel_mask(x: np.ndarray, threshold: float, rule: str = "median") -> np.ndarray:
    """Where a hot-pixel stage replaces values.

    Parameters
    ----------
    x : numpy.ndarray
        ``(H, W)`` float mosaic in [0, 1] (fraction of the white level), H and W even.
    threshold : float
        Detection threshold, fraction of the white level.
    rule : {"median", "isolated"}
        Detection rule of the ``median_replace`` or the ``isolated`` variant.

    Returns
    -------
    numpy.ndarray
        ``(H, W)`` bool, True at detected hot pixels.

    Raises
    ------
    ValueError
        Not an even-sized 2-D mosaic, or an unknown ``rule``.
    """
    if rule not in ("median", "isolated"):
        raise ValueError(f"hot_pixel_mask: rule must be 'median' or 'isolated', got {rule!r}")
    x = np.asarray(x, dtype=np.float64)
    check_mosaic(x, "hot_pixel_mask")
    planes = split_sites(x)
    median, maximum = _plane_stats_static(planes)
    reference = median if rule == "median" else maximum
    return merge_sites(planes - reference > float(threshold))


def _replace_static(x: np.ndarray, threshold: np.ndarray, rule: str, where: str) -> np.ndarray:
    check_mosaic(x, where)
    planes = split_sites(np.asarray(x, dtype=np.float64))
    median, maximum = _plane_stats_static(planes)
    reference = median if rule == "median" else maximum
    return merge_sites(np.where(planes - reference > float(threshold), median, planes))


def median_replace_static(x: np.ndarray, ctx: StageContext, *, threshold: np.ndarray) -> np.ndarray:
    """Replace pixels that exceed their same-colour neighbours' median by ``threshold``.

    Parameters
    ----------
    x : numpy.ndarray
        ``(H, W)`` float64 mosaic, fraction of the white level; H and W even.
    ctx : StageContext
        Unused: the rule treats every CFA site alike.
    threshold : numpy.ndarray
        Scalar, fraction of the white level (default 0.2).

    Returns
    -------
    numpy.ndarray
        ``(H, W)`` float64; hot pixels replaced by the median of their 8
        same-colour neighbours, every other pixel unchanged.

    Raises
    ------
    ValueError
        If ``x`` is not an even-sized 2-D mosaic.
    """
    return _replace_static(x, threshold, "median", "hot_pixel.median_replace")


def isolated_static(x: np.ndarray, ctx: StageContext, *, threshold: np.ndarray) -> np.ndarray:
    """Replace pixels brighter than all 8 same-colour neighbours by more than ``threshold``.

    Same shapes, units and errors as :func:`median_replace_static`; the
    replacement is again the neighbours' median (default threshold 0.1).
    """
    return _replace_static(x, threshold, "isolated", "hot_pixel.isolated")


# -- differentiable forms ------------------------------------------------------------------
def _replace_torch(x: torch.Tensor, threshold: torch.Tensor, rule: str, where: str) -> torch.Tensor:
    check_mosaic_batch(x, where)
    planes = split_sites_torch(x)
    ordered = _sorted_neighbours_torch(planes)
    median = (ordered[:, :, 3] + ordered[:, :, 4]) / 2
    reference = median if rule == "median" else ordered[:, :, 7]
    hot = (planes - reference) > threshold
    return merge_sites_torch(torch.where(hot, median, planes))


def median_replace_torch(
    x: torch.Tensor, ctx: StageContext, *, threshold: torch.Tensor
) -> torch.Tensor:
    """Differentiable :func:`median_replace_static`: ``(B, 1, H, W)`` to ``(B, 1, H, W)``.

    The gradient of a replaced pixel flows to the two neighbours that form
    the median; other pixels pass their gradient through unchanged.
    """
    return _replace_torch(x, threshold, "median", "hot_pixel.median_replace")


def isolated_torch(x: torch.Tensor, ctx: StageContext, *, threshold: torch.Tensor) -> torch.Tensor:
    """Differentiable :func:`isolated_static`: ``(B, 1, H, W)`` to ``(B, 1, H, W)``."""
    return _replace_torch(x, threshold, "isolated", "hot_pixel.isolated")


REFERENCE = (
    "defective-pixel correction with the 8 same-colour neighbours as in openISP's DPC "
    "(cruxopen/openISP, QiuJueqin/fast-openISP); Ramanath et al., IEEE SPM 22(1), 2005"
)

STAGES = [
    StageSpec(
        slot="hot_pixel",
        variant="median_replace",
        doc="replace pixels above the median of their 8 same-colour neighbours by that median",
        params=(THRESHOLD_MEDIAN,),
        static=median_replace_static,
        differentiable=median_replace_torch,
        input_kind="mosaic",
        output_kind="mosaic",
        reference=REFERENCE,
        tolerance=1e-12,
    ),
    StageSpec(
        slot="hot_pixel",
        variant="isolated",
        doc="replace pixels above all 8 same-colour neighbours by the neighbours' median",
        params=(THRESHOLD_ISOLATED,),
        static=isolated_static,
        differentiable=isolated_torch,
        input_kind="mosaic",
        output_kind="mosaic",
        reference=REFERENCE,
        tolerance=1e-12,
    ),
]
