"""Gamma correction (display transfer curve)."""

from __future__ import annotations

import math

import numpy as np
import torch

from driftlab.params import Domain, ParamSpec
from driftlab.stages.base import StageContext, StageSpec

GAMMA = ParamSpec(
    name="gamma",
    shape=(),
    default=2.2,
    unit="exponent",
    domain=Domain(1.6, 2.8),
    doc="display gamma; the view is clip(v, 0, 1) ** (1 / gamma)",
)


def gamma_static(x: np.ndarray, ctx: StageContext, *, gamma: np.ndarray) -> np.ndarray:
    """Clip to [0, 1] and apply ``v ** (1 / gamma)``.

    Parameters
    ----------
    x : numpy.ndarray
        ``(3, H, W)`` float64 linear RGB, any range.
    gamma : numpy.ndarray
        Scalar exponent (default 2.2).

    Returns
    -------
    numpy.ndarray
        ``(3, H, W)`` float64 view in [0, 1].
    """
    return np.clip(x, 0.0, 1.0) ** (1.0 / float(gamma))


NUMPY_LOG2_MAX_THREADS = 3
"""Up to this many torch threads, :func:`fast_log2` uses numpy on the CPU (numpy runs on one
thread, about 4x faster than torch's ``log2`` on one thread; with more threads torch's
parallel ``log2`` catches up)."""


def fast_log2(x: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """``log2(x)`` into ``out`` (a new tensor when None; ``x`` itself for in place).

    On the CPU with at most :data:`NUMPY_LOG2_MAX_THREADS` torch threads
    through numpy's SIMD ``log2`` (within a few ulp, as torch's); otherwise
    ``torch.log2``. Not differentiable (for use inside a forward pass or
    without autograd); ``log2(0) = -inf``.

    Parameters
    ----------
    x : torch.Tensor
        Float tensor, any shape and strides, values >= 0.
    out : torch.Tensor, optional
        Same shape and dtype as ``x``, on its device.

    Returns
    -------
    torch.Tensor
        ``out``.
    """
    x = x.detach()
    out = torch.empty_like(x) if out is None else out
    numpy_ok = (
        x.device.type == "cpu"
        and x.dtype in (torch.float32, torch.float64)
        and out.dtype == x.dtype
        and torch.get_num_threads() <= NUMPY_LOG2_MAX_THREADS
    )
    if not numpy_ok:
        return torch.log2(x, out=out)
    with np.errstate(divide="ignore"):
        np.log2(x.numpy(), out=out.detach().numpy())
    return out


class _Power(torch.autograd.Function):
    """``c ** (1 / gamma)`` for ``c`` in (0, 1], as ``exp2(log2(c) / gamma)``, cheap backward.

    The forward pass keeps ``log2(c)``, so the backward pass needs no
    transcendental function: ``d/dgamma = -ln(2) sum(g y log2(c)) / gamma**2``
    and ``d/dc = y / (gamma c)``.
    """

    @staticmethod
    def forward(ctx, c: torch.Tensor, gamma: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        log2_c = fast_log2(c)
        y = torch.mul(log2_c, 1.0 / gamma).exp2_()
        ctx.save_for_backward(c, log2_c, y, gamma)
        return y

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:  # type: ignore[override]
        c, log2_c, y, gamma = ctx.saved_tensors
        grad_c = grad_gamma = None
        if ctx.needs_input_grad[0]:
            grad_c = torch.div(y, c).mul_(1.0 / gamma).mul_(grad)
        if ctx.needs_input_grad[1]:
            total = torch.mul(grad, y).mul_(log2_c).sum()
            grad_gamma = (total * (-math.log(2.0)) / gamma**2).reshape(gamma.shape)
        return grad_c, grad_gamma


def gamma_torch(x: torch.Tensor, ctx: StageContext, *, gamma: torch.Tensor) -> torch.Tensor:
    """Differentiable :func:`gamma_static`, ``(B, 3, H, W)``.

    The clip is to [tiny, 1] (``tiny`` the dtype's smallest normal number)
    instead of [0, 1]: at and below 0 the view is ``tiny ** (1 / gamma)``
    (below 1e-17 in float32) with zero gradient with respect to ``x``,
    instead of the NaN that ``0 ** p`` gives with respect to the exponent.
    The power is ``exp2(log2(v) / gamma)``, whose backward pass reuses the
    logarithm.
    """
    clipped = x.clamp(torch.finfo(x.dtype).tiny, 1.0)
    return _Power.apply(clipped, gamma)


STAGES = [
    StageSpec(
        slot="gamma",
        variant="power",
        doc="clip to [0, 1] then v ** (1 / gamma)",
        params=(GAMMA,),
        static=gamma_static,
        differentiable=gamma_torch,
        reference="Oala et al., TMLR 2023, Sec. 3 (GC)",
    )
]
