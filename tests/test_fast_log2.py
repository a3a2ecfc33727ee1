"""driftlab.stages.gamma.fast_log2: numpy's log2 on the CPU, torch's elsewhere."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from driftlab.stages import gamma


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_it_agrees_with_torch_to_a_few_ulp_on_any_strides(dtype):
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(4, 5, 6, dtype=dtype, generator=generator).transpose(0, 2)[::2]
    x[0, 0, 0] = 0.0
    expected = torch.log2(x)
    got = gamma.fast_log2(x)
    assert got.shape == x.shape and got.dtype == dtype
    assert got[0, 0, 0] == -np.inf
    finite = torch.isfinite(expected)
    ulp = torch.finfo(dtype).eps * expected[finite].abs().clamp_min(1.0)
    assert ((got[finite] - expected[finite]).abs() <= 4 * ulp).all()


def test_in_place_and_with_an_input_that_requires_grad():
    x = torch.rand(3, 7) + 0.5
    expected = torch.log2(x)
    same = x.clone()
    assert gamma.fast_log2(same, out=same) is same
    assert torch.allclose(same, expected, rtol=1e-6, atol=0)
    leaf = x.clone().requires_grad_(True)
    out = gamma.fast_log2(leaf)
    assert not out.requires_grad and torch.allclose(out, expected, rtol=1e-6, atol=0)


def test_many_threads_use_torch(monkeypatch):
    calls = []
    monkeypatch.setattr(gamma.torch, "get_num_threads", lambda: 16)
    monkeypatch.setattr(gamma.np, "log2", lambda *a, **k: calls.append(a))
    x = torch.rand(5) + 0.1
    assert torch.equal(gamma.fast_log2(x), torch.log2(x)) and not calls


def test_the_gamma_stage_gradient_still_checks():
    x = (torch.rand(1, 3, 4, 5, dtype=torch.float64) * 1.2 - 0.1).requires_grad_(True)
    g = torch.tensor(2.2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda v, p: gamma.gamma_torch(v, None, gamma=p), (x, g))
