"""The learned arm's ISP steps are scaled to each parameter element's domain width."""

from __future__ import annotations

import attrs
import numpy as np
import pytest
import torch

from driftlab.datasets.bccd import BCCD_CAMERA
from driftlab.domains import stage_domains
from driftlab.optimize.networks import IspTaskModel
from driftlab.optimize.paper import PaperIsp
from driftlab.optimize.scaled import WidthScaledIsp, learned_space, tangent_gradient
from driftlab.pipeline import build_differentiable, get_pipeline


def _isp(scale="domain-width", mode="camera", dtype=torch.float64, bounds_change=None):
    pipeline = build_differentiable(get_pipeline("bi,s,ga"), BCCD_CAMERA, dtype=dtype)
    bounds = stage_domains(pipeline.resolved, BCCD_CAMERA, 0.05, mode=mode)
    if bounds_change:
        bounds = {**bounds, **bounds_change(bounds)}
    return WidthScaledIsp(pipeline, learned_space(pipeline, bounds), scale=scale), bounds


def _raw(seed=0, dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    return 0.02 + 0.5 * torch.rand(4, 1, 16, 16, generator=gen, dtype=dtype)


def _loss(views: torch.Tensor) -> torch.Tensor:
    weights = torch.linspace(-1, 1, views[0].numel(), dtype=views.dtype).reshape(views.shape[1:])
    return (views * weights).mean()


def test_width_scaled_isp_starts_at_the_base_pipeline():
    isp, _ = _isp()
    raw = _raw()
    torch.testing.assert_close(isp(raw), isp.pipeline(raw), rtol=0, atol=1e-12)
    assert all(torch.count_nonzero(u) == 0 for u in isp.steps)


@pytest.mark.parametrize(
    ("scale", "mode"), [("domain-width", "camera"), ("domain-width", "generic")]
)
def test_first_adam_step_moves_each_element_by_the_rate_times_its_domain_width(scale, mode):
    isp, bounds = _isp(scale, mode)
    before = {k: v.detach().clone() for k, v in isp.named_values().items()}
    adam = torch.optim.Adam(isp.learnable_parameters(), lr=1e-3)
    _loss(isp(_raw())).backward()
    adam.step()  # no projection: the raw Adam step
    for slot, u in zip(isp.space.slots, isp.steps, strict=True):
        moved = (isp.named_values()[slot.key] - before[slot.key]).detach().abs().numpy()
        width = bounds[slot.key].high - bounds[slot.key].low
        live = u.grad.abs().numpy() > 1e-4  # Adam's first step: lr * g / (|g| + 1e-8)
        assert live.any(), slot.key
        np.testing.assert_allclose(moved[live], 1e-3 * width[live], rtol=1e-3, err_msg=slot.key)


def test_absolute_step_size_is_one_rate_in_parameter_units():
    isp, _ = _isp("absolute")
    before = {k: v.detach().clone() for k, v in isp.named_values().items()}
    adam = torch.optim.Adam(isp.learnable_parameters(), lr=1e-3)
    _loss(isp(_raw())).backward()
    adam.step()
    for slot, u in zip(isp.space.slots, isp.steps, strict=True):
        moved = (isp.named_values()[slot.key] - before[slot.key]).detach().abs().numpy()
        live = u.grad.abs().numpy() > 1e-4
        np.testing.assert_allclose(moved[live], 1e-3, rtol=1e-3, err_msg=slot.key)


def test_every_parameter_moves_a_comparable_fraction_of_its_domain_only_when_scaled():
    """The issue's failure: one rate moves the black level across its domain and the
    sharpening kernel by a tiny fraction of its own."""

    def fractions(scale: str) -> dict[str, float]:
        isp, bounds = _isp(scale)
        start = {k: v.detach().clone() for k, v in isp.named_values().items()}
        adam = torch.optim.Adam(isp.learnable_parameters(), lr=2e-3)
        raw = _raw()
        for _ in range(10):
            adam.zero_grad()
            _loss(isp(raw)).backward()
            adam.step()
            isp.project_()
        out = {}
        for key, value in isp.named_values().items():
            width = bounds[key].high - bounds[key].low
            out[key] = float(((value.detach() - start[key]).abs().numpy() / width).max())
        return out

    scaled = fractions("domain-width")
    assert max(scaled.values()) <= 1.5 * 10 * 2e-3  # about lr per step; projection adds a little
    assert min(scaled.values()) > 0.2 * max(scaled.values()), scaled
    absolute = fractions("absolute")
    assert absolute["black_level.levels"] > 0.4  # at the edge of its 3-sigma box
    assert absolute["sharpen.kernel"] < 0.01  # 10 steps of 2e-3 in a domain 8 wide
    assert absolute["black_level.levels"] > 50 * absolute["sharpen.kernel"]


def test_projection_keeps_calibrated_boxes_and_the_kernel_sum():
    isp, bounds = _isp()
    gen = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for u in isp.steps:
            u.copy_(3 * torch.randn(u.shape, generator=gen, dtype=u.dtype))
    isp.project_()
    for key, value in isp.named_values().items():
        assert bounds[key].contains(value.detach().numpy(), slack=1e-7), key
    assert float(isp.named_values()["sharpen.kernel"].detach().sum()) == pytest.approx(1, abs=1e-6)


def test_elements_of_zero_domain_width_stay_fixed():
    def pin_first_gain(bounds):
        b = bounds["white_balance.gains"]
        low, high = b.low.copy(), b.high.copy()
        low[0] = high[0] = BCCD_CAMERA.white_balance[0]
        return {"white_balance.gains": attrs.evolve(b, low=low, high=high)}

    isp, _ = _isp(bounds_change=pin_first_gain)
    adam = torch.optim.Adam(isp.learnable_parameters(), lr=0.05)
    for _ in range(3):
        adam.zero_grad()
        _loss(isp(_raw())).backward()
        adam.step()
        isp.project_()
    gains = isp.named_values()["white_balance.gains"].detach()
    assert float(gains[0]) == pytest.approx(BCCD_CAMERA.white_balance[0], abs=1e-12)
    assert float((gains[1:] - torch.tensor(BCCD_CAMERA.white_balance[1:])).abs().max()) > 0


def test_write_back_puts_the_learned_values_into_the_pipeline():
    isp, _ = _isp()
    with torch.no_grad():
        isp.steps[-1].fill_(0.25)  # gamma + 0.25 * 1.2
    isp.write_back_()
    gamma = isp.pipeline.named_stage_parameters()["gamma.gamma"]
    assert float(gamma) == pytest.approx(2.2 + 0.3)
    raw = _raw()
    torch.testing.assert_close(isp(raw), isp.pipeline(raw))


def test_width_scaled_isp_rejects_a_foreign_space_and_bad_scales():
    isp, _ = _isp()
    other = build_differentiable(get_pipeline("bi,u,ga"), BCCD_CAMERA)
    with pytest.raises(ValueError, match="space holds"):
        WidthScaledIsp(other, isp.space)
    with pytest.raises(ValueError, match="scale"):
        WidthScaledIsp(isp.pipeline, isp.space, scale="relative")


def test_only_the_steps_learn_in_the_learned_network():
    isp, _ = _isp(dtype=torch.float32)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.LazyLinear(3))
    net = IspTaskModel(isp, model, mean=np.zeros(3), std=np.ones(3), learn_isp=True)
    assert net.isp_parameters() == list(isp.steps)
    assert all(p.requires_grad for p in isp.steps)
    assert not any(p.requires_grad for p in isp.pipeline.parameters())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_width_scaled_and_paper_isps_agree_on_cuda_and_cpu():
    raw = _raw(dtype=torch.float32)
    isp, _ = _isp(dtype=torch.float32)
    paper = PaperIsp(isp.pipeline.resolved)
    for module in (isp, paper):
        cpu = module(raw)
        gpu = module.to("cuda")(raw.cuda())
        torch.testing.assert_close(gpu.cpu(), cpu, rtol=1e-4, atol=1e-5)
        module.cpu()
    isp.cuda()
    with torch.no_grad():
        for u in isp.steps:
            u.fill_(2.0)
    isp.project_()
    assert float(isp.named_values()["sharpen.kernel"].sum()) == pytest.approx(1.0, abs=1e-5)


def test_tangent_gradient_removes_the_component_across_the_constraint():
    width = torch.tensor([[1.0, 1.0, 2.0], [0.5, 0.5, 0.5]], dtype=torch.float64)
    grad = torch.tensor([[1.0, 2.0, 3.0], [1.0, 1.0, 1.0]], dtype=torch.float64)
    rows = tangent_gradient(grad, width, rows=True)
    # a step along the result keeps sum_j w_j u_j of every row
    torch.testing.assert_close((width * rows).sum(dim=-1), torch.zeros(2, dtype=torch.float64))
    assert torch.count_nonzero(rows[1]) == 0  # uniform push on a uniform row: nothing left
    total = tangent_gradient(grad, width, rows=False)
    assert float((width * total).sum()) == pytest.approx(0.0, abs=1e-12)
    pinned = tangent_gradient(grad, torch.zeros_like(width), rows=True)
    torch.testing.assert_close(pinned, grad)
