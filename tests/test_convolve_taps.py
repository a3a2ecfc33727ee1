"""driftlab.stages.filters.convolve2d: small kernels as shifted slices on the CPU."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

from driftlab.stages import filters

KERNELS = {
    "3x3": np.random.default_rng(0).normal(size=(3, 3)),
    "sharpen (zero taps)": np.array([[0.0, -1.0, 0.0], [-1.0, 5.0, -1.0], [0.0, -1.0, 0.0]]),
    "column of 5": np.random.default_rng(1).normal(size=(5, 1)),
    "row of 9": np.random.default_rng(2).normal(size=(1, 9)),
}


@pytest.mark.parametrize("name", sorted(KERNELS))
def test_taps_equal_scipy_and_the_grouped_convolution(name, monkeypatch):
    kernel = KERNELS[name]
    x = np.random.default_rng(3).uniform(size=(2, 3, 11, 13))
    out = filters.convolve2d(torch.as_tensor(x), torch.as_tensor(kernel))
    expected = np.stack([[ndimage.convolve(p, kernel, mode="reflect") for p in b] for b in x])
    assert np.abs(out.numpy() - expected).max() <= 1e-12
    monkeypatch.setattr(filters, "MAX_TAPS", 0)  # the grouped-convolution path
    grouped = filters.convolve2d(torch.as_tensor(x), torch.as_tensor(kernel))
    assert torch.allclose(out, grouped, rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", sorted(KERNELS))
def test_taps_pass_gradcheck_and_gradgradcheck(name):
    x = torch.rand(1, 2, 7, 12, dtype=torch.float64, requires_grad=True)
    kernel = torch.as_tensor(KERNELS[name]).clone().requires_grad_(True)
    assert torch.autograd.gradcheck(filters.convolve2d, (x, kernel))
    assert torch.autograd.gradgradcheck(filters.convolve2d, (x, kernel))


def test_an_all_zero_kernel_gives_zeros_with_gradients():
    x = torch.rand(1, 1, 5, 6, dtype=torch.float64, requires_grad=True)
    kernel = torch.zeros(3, 3, dtype=torch.float64, requires_grad=True)
    out = filters.convolve2d(x, kernel)
    assert out.shape == x.shape and not out.detach().any()
    out.sum().backward()
    assert x.grad is not None and kernel.grad.abs().sum() > 0
