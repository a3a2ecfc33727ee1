"""Camera-calibrated parameter domains: black level, white balance, colour matrix, light level."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from driftlab.attacks.space import ParameterSpace
from driftlab.camera import CameraParams, DomainTolerances
from driftlab.cli import main
from driftlab.domains import DOMAIN_MODES, stage_domains
from driftlab.pipeline import PipelineSpec, StageConfig, get_pipeline
from driftlab.pipeline.resolve import resolve
from tests.helpers import builtin_registry

REGISTRY = builtin_registry()
DRONE = REGISTRY.camera("raw-drone")
MICRO = REGISTRY.camera("raw-microscopy")


def _resolved(camera, name="bi,s,ga"):
    return resolve(get_pipeline(name), camera, REGISTRY)


def test_black_level_within_k_read_noise_sigmas_of_its_calibration():
    bounds = stage_domains(_resolved(DRONE), DRONE, intensity=0.05)["black_level.levels"]
    sigma = DRONE.read_noise / DRONE.saturation  # 21.12 DN / 65535
    np.testing.assert_allclose(bounds.low, np.asarray(DRONE.black_level) - 3 * sigma)
    np.testing.assert_allclose(bounds.high, np.asarray(DRONE.black_level) + 3 * sigma)
    assert bounds.high.max() < 0.064  # not 10% of the white level at 5% light
    assert "3 read-noise sigma" in bounds.source
    # a camera without a read-noise figure keeps the generic domain, and says why
    micro = stage_domains(_resolved(MICRO), MICRO)["black_level.levels"]
    assert micro.low.min() == 0.0 and micro.high.max() == 0.1
    assert "declares no read noise" in micro.source


def test_white_balance_within_a_fraction_of_the_calibrated_gains_never_crossing_zero():
    drone = stage_domains(_resolved(DRONE), DRONE)["white_balance.gains"]
    gains = np.asarray(DRONE.white_balance)
    np.testing.assert_allclose(drone.low, gains * 0.75)
    np.testing.assert_allclose(drone.high, gains * 1.25)
    micro = stage_domains(_resolved(MICRO), MICRO)["white_balance.gains"]
    red = MICRO.white_balance[0]
    assert red < 0 and micro.high[0] < 0 and micro.low[0] == pytest.approx(red * 1.25)
    assert np.all(np.sign(micro.low) == np.sign(micro.high))
    with pytest.raises(ValueError, match=r"fraction in \[0, 1\)"):
        DomainTolerances(white_balance_fraction=1.0)


def test_colour_matrix_within_delta_and_rows_summing_to_one():
    resolved = _resolved(DRONE)
    bounds = stage_domains(resolved, DRONE)["color_correction.matrix"]
    matrix = np.asarray(DRONE.color_matrix)
    np.testing.assert_allclose(bounds.low, matrix - 0.1)
    np.testing.assert_allclose(bounds.high, matrix + 0.1)
    assert bounds.domain.row_sum == 1.0
    space = ParameterSpace.from_resolved(resolved, domains=stage_domains(resolved, DRONE))
    slot = space["color_correction.matrix"]
    wild = torch.as_tensor(matrix + np.random.default_rng(0).normal(0, 0.3, (3, 3)))
    projected = slot.project(wild).numpy()
    np.testing.assert_allclose(projected.sum(axis=1), 1.0, atol=1e-6)
    assert np.all(projected >= bounds.low - 1e-9) and np.all(projected <= bounds.high + 1e-9)
    # Raw-Microscopy's fitted matrix has rows that do not sum to 1: no row constraint invented
    micro = stage_domains(_resolved(MICRO), MICRO)["color_correction.matrix"]
    assert micro.domain.row_sum is None


def test_light_level_sets_the_illumination_ratio_domain():
    stage = REGISTRY.stage("illumination", "gaussian")
    bounds = stage_domains([stage], DRONE, intensity=0.05)
    ratio = bounds["illumination.gaussian.ratio"]
    assert (ratio.low.item(), ratio.high.item()) == pytest.approx((0.045, 0.055))
    gain = bounds["illumination.gaussian.gain"]
    assert (gain.low.item(), gain.high.item()) == pytest.approx((8.448 * 0.9, 8.448 * 1.1))
    assert bounds["illumination.gaussian.black_level"].high.max() < 0.064
    with pytest.raises(ValueError, match=r"light level must lie in \(0, 1\]"):
        stage_domains([stage], DRONE, intensity=0.0)


def test_generic_mode_returns_the_declared_domains():
    generic = stage_domains(_resolved(DRONE), DRONE, mode="generic")
    assert generic["black_level.levels"].high.max() == 0.1
    assert generic["white_balance.gains"].low.min() == 0.25
    assert all(b.source == "generic" for b in generic.values())
    assert DOMAIN_MODES == ("camera", "generic")
    with pytest.raises(ValueError, match="expected one of camera, generic"):
        stage_domains(_resolved(DRONE), DRONE, mode="paper")


def test_a_camera_profile_declares_its_own_tolerances_and_bounds():
    camera = DRONE.replace(
        name="tight-drone",
        tolerances={
            "white_balance_fraction": 0.05,
            "color_matrix_delta": 0.02,
            "bounds": {"gamma.gamma": [2.0, 2.4]},
        },
    )
    bounds = stage_domains(_resolved(camera), camera)
    np.testing.assert_allclose(
        bounds["white_balance.gains"].high, np.asarray(camera.white_balance) * 1.05
    )
    np.testing.assert_allclose(
        bounds["color_correction.matrix"].high, np.asarray(camera.color_matrix) + 0.02
    )
    assert (bounds["gamma.gamma"].low.item(), bounds["gamma.gamma"].high.item()) == (2.0, 2.4)
    assert "declared by the profile" in bounds["gamma.gamma"].source
    with pytest.raises(ValueError, match=r"keys are 'slot.param'"):
        CameraParams(name="x", tolerances={"bounds": {"gamma": [1, 2]}})
    with pytest.raises(ValueError, match="low exceeds high"):
        CameraParams(name="x", tolerances={"bounds": {"gamma.gamma": [3, 2]}})


def test_attack_space_takes_the_chosen_domains_and_budgets_per_element():
    resolved = _resolved(DRONE)
    camera_space = ParameterSpace.from_resolved(resolved, domains=stage_domains(resolved, DRONE))
    generic_space = ParameterSpace.from_resolved(resolved)
    wb = camera_space["white_balance.gains"]
    np.testing.assert_allclose(wb.width, np.asarray(DRONE.white_balance) * 0.5)
    assert generic_space["white_balance.gains"].width.tolist() == [7.75, 7.75, 7.75]
    budget = camera_space.with_budget(0.1)["white_balance.gains"]
    np.testing.assert_allclose(budget.high - budget.default, 0.1 * wb.width)
    assert "calibrated gains" in wb.source


def test_a_pipeline_value_outside_the_camera_domain_stays_admissible():
    spec = PipelineSpec(
        name="miscalibrated",
        stages=[
            StageConfig("black_level"),
            StageConfig("demosaic", "bilinear"),
            StageConfig("white_balance", params={"gains": [4.0, 1.0, 1.7]}),
            StageConfig("gamma"),
        ],
    )
    resolved = resolve(spec, DRONE, REGISTRY)
    bounds = stage_domains(resolved, DRONE)["white_balance.gains"]
    assert bounds.high[0] == 4.0 and bounds.contains(np.array([4.0, 1.0, 1.7]))
    assert "widened to include the pipeline's value" in bounds.source


def test_driftlab_stages_lists_camera_or_generic_domains():
    # wide enough that no cell wraps, whatever the terminal of the test run is
    runner = CliRunner(env={"COLUMNS": "400"})
    camera = runner.invoke(main, ["stages", "--camera", "raw-drone", "--intensity", "0.05"])
    assert camera.exit_code == 0, camera.output
    line = next(r for r in camera.output.splitlines() if r.startswith("white_balance.gains"))
    assert "[2.15, 3.583]" in line
    generic = runner.invoke(main, ["stages", "--camera", "raw-drone", "--domains", "generic"])
    line = next(r for r in generic.output.splitlines() if r.startswith("black_level.subtract"))
    assert "[0, 0.1]" in line
    plain = runner.invoke(main, ["stages"])
    assert "give --camera NAME" in plain.output
    data = json.loads(runner.invoke(main, ["stages", "--json", "--camera", "raw-drone"]).output)
    wb = next(d for d in data if d["key"] == "white_balance.gains")["params"][0]
    assert wb["domain_source"].startswith("camera 'raw-drone'")
    bad = runner.invoke(main, ["stages", "--camera", "raw-dron"])
    assert bad.exit_code == 2 and "did you mean 'raw-drone'" in bad.output
