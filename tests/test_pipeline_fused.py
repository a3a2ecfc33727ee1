"""The fused differentiable forward pass equals the stage-by-stage one, gradients included."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from driftlab.pipeline import PAPER_DATA_MODELS, PipelineSpec, StageConfig, build_differentiable
from driftlab.registry import get_registry

CAMERA = get_registry().camera("raw-drone")


def _both(module, raw):
    fused = module(raw)
    fused.pow(2).mean().backward()
    grads = {k: p.grad.clone() for k, p in module.named_stage_parameters().items()}
    module.zero_grad()
    staged, _ = module(raw, intermediates=True)
    staged.pow(2).mean().backward()
    staged_grads = {k: p.grad.clone() for k, p in module.named_stage_parameters().items()}
    return fused, staged, grads, staged_grads


@pytest.mark.parametrize("name", list(PAPER_DATA_MODELS))
def test_fused_forward_equals_stage_by_stage_with_gradients(name):
    module = build_differentiable(PAPER_DATA_MODELS[name], CAMERA, dtype=torch.float64)
    raw = torch.rand(2, 1, 18, 22, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    fused, staged, grads, staged_grads = _both(module, raw)
    assert (fused - staged).abs().max() <= 1e-12
    assert set(grads) == set(staged_grads) and grads
    for key in grads:
        assert (grads[key] - staged_grads[key]).abs().max() <= 1e-12, key


def test_fused_forward_handles_other_orders_and_extra_stages():
    # colour stages after the luma filters, a repeated slot, a stage without a fused kernel
    spec = PipelineSpec(
        "odd",
        [
            StageConfig("black_level"),
            StageConfig("illumination", "gaussian", params={"ratio": 0.5}),
            StageConfig("demosaic", "malvar2004"),
            StageConfig("sharpen", "sharpening_filter"),
            StageConfig("white_balance"),
            StageConfig("denoise", "median"),
            StageConfig("color_correction", "white_preserving"),
            StageConfig("gamma"),
            StageConfig("white_balance", params={"gains": [1.1, 1.0, 0.9]}),
        ],
    )
    camera = CAMERA.replace(gain=2.0, read_noise=2.0, color_matrix=np.eye(3).tolist())
    module = build_differentiable(spec, camera, dtype=torch.float64)
    raw = torch.rand(2, 1, 16, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    fused, staged, grads, staged_grads = _both(module, raw * 0.8 + 0.1)
    assert (fused - staged).abs().max() <= 1e-12
    for key in grads:
        assert (grads[key] - staged_grads[key]).abs().max() <= 1e-12, key


@pytest.mark.parametrize("name", ["bi,s,ga", "ma,u,me", "me,s,ga"])
def test_the_gradient_to_the_raw_input_equals_stage_by_stage(name):
    # attacks on the raw mosaic need it: the demosaic's convolution is then differentiated
    module = build_differentiable(PAPER_DATA_MODELS[name], CAMERA, dtype=torch.float64)
    generator = torch.Generator().manual_seed(2)
    raw = torch.rand(2, 1, 20, 16, dtype=torch.float64, generator=generator) * 0.8 + 0.1
    grads = []
    for intermediates in (False, True):
        x = raw.clone().requires_grad_(True)
        out = module(x, intermediates=True)[0] if intermediates else module(x)
        (out.pow(2) * torch.linspace(0, 1, 16, dtype=torch.float64)).mean().backward()
        grads.append(x.grad)
    assert grads[0].abs().max() > 0
    assert (grads[0] - grads[1]).abs().max() <= 1e-12 * max(1.0, float(grads[1].abs().max()))
