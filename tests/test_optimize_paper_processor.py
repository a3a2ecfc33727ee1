"""The paper's processor (``paper`` and ``paper-frozen`` arms) and the normalisations after an ISP."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from driftlab.configtools import ConfigError
from driftlab.datasets.bccd import BCCD_CAMERA
from driftlab.optimize import run_optimization
from driftlab.optimize.networks import IspTaskModel
from driftlab.optimize.paper import PaperIsp, check_paper_pipeline
from driftlab.pipeline import PipelineSpec, build_differentiable, get_pipeline
from driftlab.pipeline.spec import StageConfig


def _raw(shape=(3, 1, 16, 20), seed=0):
    gen = torch.Generator().manual_seed(seed)
    return 0.03 + 0.9 * torch.rand(*shape, generator=gen, dtype=torch.float64)


def _tuned_pipeline() -> PipelineSpec:
    """bi,s,ga with non-default kernel, sigma and gamma (a 7x7 Gaussian)."""
    stages = [StageConfig(slot=s.slot, variant=s.variant) for s in get_pipeline("bi,s,ga").stages]
    stages[4] = StageConfig(
        slot="sharpen",
        variant="sharpening_filter",
        params={"kernel": [[0, -0.5, 0], [-0.5, 3, -0.5], [0, -0.5, 0]]},
    )
    stages[5] = StageConfig(slot="denoise", variant="gaussian", params={"sigma": 0.8})
    stages[6] = StageConfig(slot="gamma", variant="power", params={"gamma": 2.0})
    return PipelineSpec(name="tuned", stages=stages)


@pytest.mark.parametrize("cfa", ["RGGB", "BGGR", "GRBG", "GBRG"])
@pytest.mark.parametrize(
    "spec", [get_pipeline("bi,s,ga"), _tuned_pipeline()], ids=["bi,s,ga", "tuned"]
)
def test_paper_processor_starts_exactly_at_the_base_pipeline(cfa, spec):
    camera = BCCD_CAMERA.replace(cfa=cfa)
    pipeline = build_differentiable(spec, camera, dtype=torch.float64)
    paper = PaperIsp(pipeline.resolved, dtype=torch.float64)
    raw = _raw()
    torch.testing.assert_close(paper(raw), pipeline(raw), rtol=0, atol=1e-10)


def test_paper_processor_has_the_papers_free_parameters_and_all_of_them_learn():
    pipeline = build_differentiable(get_pipeline("bi,s,ga"), BCCD_CAMERA, dtype=torch.float64)
    paper = PaperIsp(pipeline.resolved, dtype=torch.float64)
    shapes = {k: tuple(v.shape) for k, v in paper.named_values().items()}
    assert shapes == {
        "black_level.levels": (4,),
        "demosaic.kernel": (3, 3, 3, 3),  # full 3 -> 3 channel convolution
        "white_balance.gains": (3,),
        "color_correction.matrix": (3, 3),
        "sharpen.kernel": (3, 3),
        "denoise.kernel": (5, 5),  # Gaussian sigma 0.5, radius 2
        "gamma.gamma": (),
    }
    assert sum(p.numel() for p in paper.parameters()) == 4 + 81 + 3 + 9 + 9 + 25 + 1
    paper(_raw()).mean().backward()
    for name, p in paper.named_parameters():
        assert p.grad is not None and float(p.grad.abs().sum()) > 0, name
    # cross-channel demosaic weights start at 0 and still receive gradient
    assert float(paper.demosaic.grad[0, 1].abs().sum()) > 0
    # the sharpening kernel is free: its sum may leave 1 after a plain step
    with torch.no_grad():
        paper.sharpen -= 0.1 * torch.sign(paper.sharpen.grad)
    assert abs(float(paper.sharpen.detach().sum()) - 1.0) > 1e-3


@pytest.mark.parametrize("name", ["ma,s,ga", "bi,u,ga"])
def test_paper_processor_refuses_pipelines_of_another_structure(name):
    pipeline = build_differentiable(get_pipeline(name), BCCD_CAMERA)
    with pytest.raises(ValueError, match=r"paper's processor needs black_level.subtract"):
        check_paper_pipeline(pipeline.resolved)
    with pytest.raises(ValueError, match="bi,s,ga"):
        PaperIsp(pipeline.resolved)


def test_paper_arm_with_another_pipeline_fails_before_any_work(tmp_path):
    config = {
        "dataset": {"name": "embedded-smear", "options": {"n_items": 32, "size": 16}},
        "pipeline": {"name": "bi,u,ga"},
        "model": {"name": "small-cnn", "options": {"width": 4}},
        "training": {"modes": ["frozen", "paper"], "folds": 2, "epochs": 1},
        "run": {"workers": 0, "progress": False, "device": "cpu"},
    }
    with pytest.raises(ConfigError, match=r"\[training\].modes: 'paper' follow the paper's"):
        run_optimization(config, out=tmp_path / "run")
    assert not (tmp_path / "run").exists()


def _net(normalisation: str) -> IspTaskModel:
    pipeline = build_differentiable(get_pipeline("bi,s,ga"), BCCD_CAMERA)
    return IspTaskModel(
        pipeline,
        torch.nn.Identity(),
        normalisation=normalisation,
        mean=np.full(3, 0.5) if normalisation == "fixed" else None,
        std=np.full(3, 0.25) if normalisation == "fixed" else None,
        learn_isp=False,
    )


def test_frozen_bn_normalises_with_batch_statistics_and_learns_running_ones():
    net = _net("batch").train()
    raw = _raw(seed=1).float()
    out = net(raw)
    torch.testing.assert_close(out.mean(dim=(0, 2, 3)), torch.zeros(3), rtol=0, atol=1e-5)
    assert float(net.norm.running_mean.abs().sum()) > 0
    net.eval()
    views = net.isp(raw)
    expected = (views - net.norm.running_mean.view(1, 3, 1, 1)) / torch.sqrt(
        net.norm.running_var.view(1, 3, 1, 1) + net.norm.eps
    )
    torch.testing.assert_close(net(raw), expected)


def test_paper_frozen_normalisation_stays_at_its_initial_statistics_even_when_training():
    net = _net("initial-batch").train()
    raw = _raw(seed=2).float()
    out = net(raw)
    assert not net.norm.training
    torch.testing.assert_close(out, net.isp(raw) / np.sqrt(1 + net.norm.eps))
    assert torch.equal(net.norm.running_mean, torch.zeros(3))
    assert torch.equal(net.norm.running_var, torch.ones(3))


def test_fixed_normalisation_uses_the_given_statistics_and_needs_them():
    net = _net("fixed")
    raw = _raw(seed=3).float()
    torch.testing.assert_close(net(raw), (net.isp(raw) - 0.5) / 0.25)
    pipeline = build_differentiable(get_pipeline("bi,s,ga"), BCCD_CAMERA)
    with pytest.raises(ValueError, match="needs the mean and std"):
        IspTaskModel(pipeline, torch.nn.Identity(), learn_isp=False)
    with pytest.raises(ValueError, match="expected one of fixed, batch, initial-batch"):
        IspTaskModel(pipeline, torch.nn.Identity(), normalisation="layer", learn_isp=False)
