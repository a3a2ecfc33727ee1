"""Attacks over ISP parameters: declarations, SSIM, targets, domains, and that
gradient attacks lower the metric of a trained model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from driftlab.attacks import (
    AttackProblem,
    AttackSettings,
    AttackSpec,
    AttackTargetError,
    run_attack,
    select_targets,
    ssim,
)
from driftlab.attacks.space import spec_with_values
from driftlab.models.loading import get_task_model
from driftlab.pipeline import build_static, get_pipeline, resolve
from driftlab.pipeline.spec import StageConfig
from driftlab.registry import get_registry
from driftlab.train import Normalized, TrainConfig, channel_stats, fit

N_ATTACK = 16


@pytest.fixture(scope="module")
def trained():
    """A small CNN trained for a few epochs on bi,s,ga views of 60 embedded smear items."""
    registry = get_registry()
    dataset = registry.get("datasets", "embedded-smear").open(None, n_items=60, size=32)
    raw = np.stack([dataset[i].raw for i in range(len(dataset))])
    labels = np.asarray([dataset[i].target for i in range(len(dataset))])
    resolved = resolve(get_pipeline("bi,s,ga"), dataset.spec.camera, registry)
    torch.manual_seed(0)
    model = get_task_model("small-cnn", registry).build(5, width=8)
    views = AttackProblem(model, resolved, raw, labels, "classification").render()
    net = Normalized(model, *channel_stats(views))
    for p in net.parameters():
        p.requires_grad_(True)
    fit(net, views, labels, "classification", TrainConfig(epochs=8, lr=3e-3, seed=0))
    return net, resolved, raw[:N_ATTACK], labels[:N_ATTACK], registry


def problem_of(trained):
    net, resolved, raw, labels, _ = trained
    return AttackProblem(net, resolved, raw, labels, "classification")


def test_builtin_attacks_registered():
    registry = get_registry()
    assert registry.names("attacks") == ["penalty", "projected", "search"]
    specs = [registry.get("attacks", n) for n in registry.names("attacks")]
    assert all(isinstance(s, AttackSpec) and s.doc for s in specs)
    assert [s.needs_gradients for s in specs] == [True, True, False]


def test_ssim_matches_scikit_image():
    metrics = pytest.importorskip("skimage.metrics")
    gen = torch.Generator().manual_seed(1)
    a = torch.rand(3, 3, 32, 32, generator=gen, dtype=torch.float64)
    b = (a + 0.1 * torch.randn(a.shape, generator=gen, dtype=torch.float64)).clamp(0, 1)
    ours = ssim(a, b).numpy()
    ref = [
        metrics.structural_similarity(
            a[i].numpy(),
            b[i].numpy(),
            channel_axis=0,
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
            data_range=1.0,
        )
        for i in range(3)
    ]
    np.testing.assert_allclose(ours, ref, atol=1e-6)
    assert torch.allclose(ssim(a, a), torch.ones(3, dtype=torch.float64))
    with pytest.raises(ValueError, match="one shape"):
        ssim(a, b[:, :2])


def test_select_targets_names_the_closest_key():
    keys = ("gamma.gamma", "white_balance.gains", "denoise.sigma")
    assert select_targets(keys, "all") == keys
    assert select_targets(keys, ["white_balance", "gamma.gamma"]) == (
        "gamma.gamma",
        "white_balance.gains",
    )
    with pytest.raises(AttackTargetError, match="did you mean 'white_balance'"):
        select_targets(keys, ["white_balanse"])


def test_settings_reject_bad_values():
    with pytest.raises(ValueError, match=r"attack\.similarity"):
        AttackSettings(similarity="psnr")
    with pytest.raises(ValueError, match=r"attack\.steps"):
        AttackSettings(steps=0)
    with pytest.raises(ValueError, match=r"attack\.lam"):
        AttackSettings(lam=-1.0)


def test_penalty_lowers_metric_and_keeps_model_frozen(trained):
    problem = problem_of(trained)
    before = {k: v.clone() for k, v in problem.model.state_dict().items()}
    spec = get_registry().get("attacks", "penalty")
    result = run_attack(spec, problem, AttackSettings(steps=4, lr=0.1, lam=0.1))
    assert result.clean["metric"] > 0.4  # the model learned something
    assert result.attacked["metric"] < result.clean["metric"]
    assert result.attacked["ssim"] < 1.0
    after = problem.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # no batch-norm updates
    assert not any(p.requires_grad for p in problem.model.parameters())


def test_projected_lowers_metric_inside_domains_and_budget(trained):
    problem = problem_of(trained)
    spec = get_registry().get("attacks", "projected")
    budget = 0.3
    result = run_attack(spec, problem, AttackSettings(steps=4, lr=0.1, budget=budget))
    assert result.attacked["metric"] < result.clean["metric"]
    space = problem.space()
    assert set(result.values) == set(space.keys)
    for key, value in result.values.items():
        slot = space[key]
        assert slot.domain.contains(value), (key, slot.domain.problems(value))
        width = slot.domain.high - slot.domain.low
        assert np.all(np.abs(value - slot.default) <= budget * width + 1e-6), key


def test_projected_only_moves_selected_targets(trained):
    problem = problem_of(trained)
    spec = get_registry().get("attacks", "projected")
    result = run_attack(spec, problem, AttackSettings(steps=2, lr=0.1), targets=["gamma"])
    assert set(result.values) == {"gamma.gamma"}


@pytest.mark.parametrize("method", ["random", "cma"])
def test_search_respects_domains(trained, method):
    problem = problem_of(trained)
    spec = get_registry().get("attacks", "search")
    result = run_attack(
        spec, problem, AttackSettings(steps=2, population=3, lr=0.3, method=method, seed=3)
    )
    space = problem.space()
    for key, value in result.values.items():
        assert space[key].domain.contains(value), key
    assert result.attacked["metric"] <= result.clean["metric"]


def test_cma_search_on_a_single_scalar_falls_back_to_random(trained):
    problem = problem_of(trained)
    spec = get_registry().get("attacks", "search")
    settings = AttackSettings(steps=1, population=2, method="cma")
    result = run_attack(spec, problem, settings, targets=["gamma"])
    assert set(result.values) == {"gamma.gamma"}
    assert problem.space()["gamma.gamma"].domain.contains(result.values["gamma.gamma"])


def test_search_works_on_static_only_pipeline(trained):
    """A pipeline with ``illumination.poisson`` (no differentiable form: the
    Poisson draw is clipped and quantised) has only the static path: gradient
    attacks are refused by name and the search attacks it through every
    declared parameter, rendering with the static form."""
    net, resolved, raw, labels, registry = trained
    assert registry.get("stages", "illumination.poisson").differentiable is None
    base = get_pipeline("bi,s,ga")
    dimmer = StageConfig(slot="illumination", variant="poisson", params={"ratio": 0.5})
    spec = type(base)(name="dim,bi,s,ga", stages=[dimmer, *base.stages])
    static_resolved = resolve(spec, resolved.camera, registry)
    problem = AttackProblem(net, static_resolved, raw[:8], labels[:8], "classification")
    assert not problem.differentiable
    space = problem.space()
    # static-only: every declared parameter is attackable, not only the nn.Parameter ones
    assert {"illumination.ratio", "illumination.gain", "illumination.read_noise"} <= set(space.keys)
    for name in ("penalty", "projected"):
        with pytest.raises(ValueError, match=r"needs gradients.*illumination\.poisson"):
            run_attack(registry.get("attacks", name), problem)
    result = run_attack(
        registry.get("attacks", "search"),
        problem,
        AttackSettings(steps=1, population=2, seed=0),
        targets=["illumination.ratio", "gamma"],
    )
    assert set(result.values) == {"illumination.ratio", "gamma.gamma"}
    for key, value in result.values.items():
        assert space[key].domain.contains(value), key
    assert result.attacked["metric"] <= result.clean["metric"]
    # the render with replaced values is the static form of that spec, Poisson draw included
    views = problem.render(result.values)
    static = build_static(spec_with_values(static_resolved, result.values), resolved.camera)
    np.testing.assert_allclose(views[0], static(raw[0]), atol=1e-6)
    # and the dimmed static render really differs from the plain one
    assert not np.allclose(views[0], build_static(base, resolved.camera)(raw[0]), atol=1e-3)


def test_resolved_with_values_replaces_checked_values_without_a_registry(trained):
    """Replacing values keeps the resolved stages (no registry lookup) and checks
    each value as resolving would: unknown key, wrong shape and out-of-domain
    values are refused naming the key."""
    from driftlab.attacks.space import AttackTargetError, resolved_with_values

    _, resolved, raw, _, _ = trained
    changed = resolved_with_values(resolved, {"gamma.gamma": np.float32(1.8)})
    assert changed.spec.fingerprint() == (
        spec_with_values(resolved, {"gamma.gamma": np.float32(1.8)}).fingerprint()
    )
    gamma = next(s for s in changed.stages if s.name == "gamma")
    assert float(gamma.values["gamma"]) == pytest.approx(1.8)
    for before, after in zip(resolved.stages, changed.stages, strict=True):
        assert (after is before) == (before.name != "gamma")
    # same result as resolving the edited spec through the registry
    from driftlab.pipeline.static import StaticPipeline

    expected = build_static(
        spec_with_values(resolved, {"gamma.gamma": np.float32(1.8)}), resolved.camera
    )
    np.testing.assert_allclose(StaticPipeline(changed)(raw[0]), expected(raw[0]), atol=1e-6)
    with pytest.raises(AttackTargetError, match=r"gamma\.gamm"):
        resolved_with_values(resolved, {"gamma.gamm": np.float32(2.0)})
    with pytest.raises(AttackTargetError, match=r"gamma\.gamma"):
        resolved_with_values(resolved, {"gamma.gamma": np.float32(-5.0)})
    with pytest.raises(AttackTargetError, match=r"gamma\.gamma"):
        resolved_with_values(resolved, {"gamma.gamma": np.ones(3, np.float32)})
