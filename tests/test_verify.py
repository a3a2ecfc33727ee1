"""driftlab verify: failures are caught and explained (issues 13.1 and 13.17)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from driftlab.params import Domain, ParamSpec
from driftlab.pipeline import PAPER_DATA_MODELS
from driftlab.stages.base import StageSpec
from driftlab.verify import (
    domain_corners,
    parameter_draws,
    report_lines,
    verify_data_models,
    verify_stage,
)

GAIN = ParamSpec(
    name="gain", shape=(), default=1.0, unit="x", domain=Domain(0.5, 2.0), doc="a gain"
)


def _stage(static, differentiable, params=(GAIN,), **kw) -> StageSpec:
    return StageSpec(
        slot="probe",
        variant="v",
        doc="a stage under test",
        params=params,
        static=static,
        differentiable=differentiable,
        **kw,
    )


def _good_static(x, ctx, *, gain):
    return x * float(gain)


def _good_torch(x, ctx, *, gain):
    return x * gain


def test_verify_passes_a_correct_stage_and_says_nothing():
    check = verify_stage(_stage(_good_static, _good_torch))
    assert check.passed and check.error == "" and check.gradcheck
    assert "pixel (row" in check.worst_case


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_verify_fails_a_static_form_that_returns_nan_or_inf(bad):
    # max(0.0, nan) == 0.0 let this pass before
    def static(x, ctx, *, gain):
        out = x * float(gain)
        out[..., 0, 0] = bad
        return out

    check = verify_stage(_stage(static, _good_torch))
    assert not check.passed
    assert "static form" in check.error and "NaN or Inf" in check.error
    assert "probe.v" in check.error  # names the stage


def test_verify_fails_a_differentiable_form_that_returns_nan():
    def diff(x, ctx, *, gain):
        return x * gain * torch.tensor(float("nan"), dtype=x.dtype)

    check = verify_stage(_stage(_good_static, diff))
    assert not check.passed
    assert "differentiable form" in check.error and "NaN or Inf" in check.error


def test_verify_fails_a_shape_or_dtype_other_than_declared():
    def float32_static(x, ctx, *, gain):
        return (x * float(gain)).astype(np.float32)

    check = verify_stage(_stage(float32_static, _good_torch))
    assert not check.passed and "static form: returned dtype float32" in check.error

    def cropped_torch(x, ctx, *, gain):
        return (x * gain)[..., 1:, :]

    check = verify_stage(_stage(_good_static, cropped_torch))
    assert not check.passed and "differentiable form: returned shape" in check.error


def test_verify_blames_a_wrong_output_kind_on_the_form_that_produced_it():
    # declared mosaic -> mosaic, but the differentiable form returns three channels
    def rgb_torch(x, ctx, *, gain):
        return (x * gain).expand(-1, 3, -1, -1).clone()

    stage = _stage(_good_static, rgb_torch, input_kind="mosaic", output_kind="mosaic")
    check = verify_stage(stage)
    assert not check.passed
    assert "differentiable form: returned shape (1, 3," in check.error
    assert "static form" not in check.error


def test_verify_reports_the_worst_case_and_its_location_when_forms_disagree():
    def off_by_one_pixel(x, ctx, *, gain):
        out = x * gain
        out = out.clone()
        out[..., -1, 0] += 0.5  # a border pixel, as padding mistakes do
        return out

    check = verify_stage(_stage(_good_static, off_by_one_pixel))
    assert not check.passed
    assert check.error, "assert check.passed, check.error must explain the failure"
    assert "the forms disagree" in check.error and "0.5" in check.error
    assert "column 0" in check.error and "row " in check.error and "CFA" in check.error


def test_gradcheck_failure_names_the_parameter_not_input_1():
    def detached(x, ctx, *, gain):
        return x * gain.detach()  # the gradient w.r.t. gain is lost

    check = verify_stage(_stage(_good_static, detached))
    assert not check.gradcheck and not check.passed
    assert "gradcheck failed for parameter 'gain'" in check.error
    assert "input 1" not in check.error


def test_a_static_form_that_modifies_its_input_in_place_fails():
    def in_place(x, ctx, *, gain):
        x *= float(gain)
        return x

    check = verify_stage(_stage(in_place, _good_torch))
    assert not check.passed and "modified its input in place" in check.error


def test_a_differentiable_form_that_modifies_its_input_in_place_fails():
    def in_place(x, ctx, *, gain):
        return x.mul_(gain)

    check = verify_stage(_stage(_good_static, in_place))
    assert not check.passed and "differentiable form modified its input in place" in check.error


def test_parameter_draws_include_the_domain_corners():
    stage = _stage(_good_static, _good_torch)
    labels = {label: params for label, params in parameter_draws(stage, np.random.default_rng(0))}
    assert set(labels) == {"defaults", "low corner", "high corner", "random draw"}
    assert float(labels["low corner"]["gain"]) == 0.5
    assert float(labels["high corner"]["gain"]) == 2.0
    # a corner that violates an equality constraint is projected onto it
    kernel = ParamSpec(
        name="k",
        shape=(3,),
        default=(0.2, 0.3, 0.5),
        unit="",
        domain=Domain(-1, 2, total=1.0),
        doc="",
    )
    low, high = domain_corners(kernel)
    assert abs(low.sum() - 1.0) < 1e-6 and abs(high.sum() - 1.0) < 1e-6


def test_a_stage_that_fails_only_at_a_domain_corner_is_caught():
    def wrong_above_1_9(x, ctx, *, gain):
        return x * gain * (1.0 + 0.1 * (gain > 1.9).to(x.dtype))

    check = verify_stage(_stage(_good_static, wrong_above_1_9))
    assert not check.passed and "high corner" in check.error


def test_param_default_scalar_is_broadcast_to_the_declared_shape():
    levels = ParamSpec(
        name="levels", shape=(4,), default=0.05, unit="", domain=Domain(0, 0.1), doc=""
    )
    assert levels.default == (0.05, 0.05, 0.05, 0.05)
    assert np.asarray(levels.default).shape == (4,)
    hash(levels)  # still a frozen, hashable declaration
    with pytest.raises(ValueError, match="shape"):
        ParamSpec(name="m", shape=(3,), default=(1.0, 2.0), unit="", domain=Domain(0, 3), doc="")


def test_verify_checks_the_twelve_data_models_in_three_forms():
    checks = verify_data_models(sizes=((8, 10),))
    assert [c.name for c in checks] == list(PAPER_DATA_MODELS)
    for check in checks:
        assert check.passed, check.error
        assert check.static_vs_differentiable < 1e-10
        assert check.static_vs_fast < 1e-6  # float32 views of a float64 computation
        assert check.cases == 4  # one size x four CFA patterns
    lines = report_lines([], checks)
    assert lines[-1] == "12 passed, 0 failed"


def test_verify_data_models_reports_a_fast_path_that_differs():
    import driftlab.pipeline.batched as batched

    original = batched.FastRenderer.render_numpy

    def shifted(self, raw, **kw):
        return original(self, raw, **kw) + 1e-3

    try:
        batched.FastRenderer.render_numpy = shifted
        (check,) = verify_data_models([PAPER_DATA_MODELS["bi,s,ga"]], sizes=((8, 10),))
    finally:
        batched.FastRenderer.render_numpy = original
    assert not check.passed and "fast form differs" in check.error and "pixel" in check.error
