"""Data rendered through a mis-calibrated camera, so a learned ISP has something to correct."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest

from driftlab.configtools import ConfigError
from driftlab.datasets.bccd import BCCD_CAMERA
from driftlab.datasets.unprocess import linear_to_raw
from driftlab.errors import RunDirError
from driftlab.optimize import run_optimization
from driftlab.optimize.miscalibration import (
    CROSS_TALK,
    camera_transfer,
    miscalibrate_mosaics,
    true_camera,
)

QUANTUM = 1 / 4095  # BCCD_CAMERA is 12-bit: linear_to_raw quantises


def _scene(size=32, seed=0):
    """A smooth linear RGB scene (bilinear interpolation is nearly exact on it)."""
    yy, xx = np.mgrid[0:size, 0:size] / size
    rng = np.random.default_rng(seed)
    phase = rng.uniform(0, 1, 3)
    return np.stack(
        [
            0.30 + 0.15 * np.sin(2 * xx + phase[0]),
            0.40 + 0.15 * np.cos(2 * yy + phase[1]),
            0.25 + 0.10 * np.sin(xx + yy + phase[2]),
        ],
        axis=-1,
    )


def test_true_camera_offsets_gains_matrix_and_black_level():
    true = true_camera(BCCD_CAMERA, [1.1, 1.0, 0.9], 0.05, [0.001, 0.0, 0.0, 0.002])
    np.testing.assert_allclose(true.field_value("white_balance"), [1.43, 1.0, 1.845])
    np.testing.assert_allclose(
        true.field_value("color_matrix"),
        BCCD_CAMERA.field_value("color_matrix") + 0.05 * CROSS_TALK,
    )
    np.testing.assert_allclose(
        true.field_value("black_level") - BCCD_CAMERA.field_value("black_level"),
        [0.001, 0.0, 0.0, 0.002],
    )
    assert true.name == "bccd-unprocessed (mis-calibrated)"
    # the cross-talk pattern keeps row sums (BCCD's rows sum to 1: neutral grey stays grey)
    np.testing.assert_allclose(true.field_value("color_matrix").sum(axis=1), 1.0)
    explicit = true_camera(BCCD_CAMERA, color_matrix_delta=np.eye(3).tolist())
    np.testing.assert_allclose(
        explicit.field_value("color_matrix"), BCCD_CAMERA.field_value("color_matrix") + np.eye(3)
    )


def test_default_miscalibration_changes_nothing():
    assert true_camera(BCCD_CAMERA) == BCCD_CAMERA
    np.testing.assert_allclose(camera_transfer(BCCD_CAMERA, BCCD_CAMERA), np.eye(3), atol=1e-12)
    raws = np.random.default_rng(0).uniform(0, 1, (2, 8, 8)).astype(np.float32)
    assert np.array_equal(miscalibrate_mosaics(raws, BCCD_CAMERA, BCCD_CAMERA), raws)


@pytest.mark.parametrize(
    "changes",
    [
        {"white_balance": [1.2, 1.0, 0.8]},
        {"black_level": 0.003},
        {"white_balance": [0.9, 1.1, 1.25], "black_level": [0.001, 0.0, 0.002, 0.0]},
    ],
)
def test_gain_and_black_level_miscalibration_equals_unprocessing_for_the_true_camera(changes):
    true = true_camera(BCCD_CAMERA, **changes)
    scene = _scene()
    profile_raw = linear_to_raw(scene, BCCD_CAMERA, noise=False)
    expected = linear_to_raw(scene, true, noise=False)
    moved = miscalibrate_mosaics(profile_raw[None], BCCD_CAMERA, true)[0]
    assert moved.dtype == np.float32
    # exact per site, up to the quantisation of the two renderings
    assert np.abs(moved - expected).max() <= 1.01 * QUANTUM
    assert np.abs(profile_raw - expected).max() > 4 * QUANTUM  # the offsets are visible


def test_colour_matrix_miscalibration_matches_unprocessing_up_to_interpolation():
    true = true_camera(BCCD_CAMERA, [1.1, 1.0, 0.9], 0.08, 0.001)
    scene = _scene(seed=1)
    profile_raw = linear_to_raw(scene, BCCD_CAMERA, noise=False)
    expected = linear_to_raw(scene, true, noise=False)
    moved = miscalibrate_mosaics(profile_raw[None], BCCD_CAMERA, true)[0]
    # cross-channel terms use bilinearly interpolated neighbours: small on a smooth scene
    assert np.abs(moved - expected)[2:-2, 2:-2].max() < 1.5 * QUANTUM
    assert np.abs(moved - expected).max() < 4 * QUANTUM
    assert np.abs(profile_raw - expected).max() > 10 * QUANTUM


def test_miscalibrated_mosaics_stay_in_the_sensor_range():
    raws = np.random.default_rng(2).uniform(0, 1, (3, 8, 8)).astype(np.float32)
    true = true_camera(BCCD_CAMERA, [0.5, 1.0, 0.5], 0.3, 0.05)
    moved = miscalibrate_mosaics(raws, BCCD_CAMERA, true)
    assert moved.shape == raws.shape and moved.min() >= 0 and moved.max() <= 1
    with pytest.raises(ValueError, match=r"\(N, H, W\) with H, W even"):
        miscalibrate_mosaics(raws[:, :7], BCCD_CAMERA, true)
    with pytest.raises(ValueError, match="CFA"):
        miscalibrate_mosaics(raws, BCCD_CAMERA, true.replace(cfa="BGGR"))


TINY = {
    "dataset": {"name": "embedded-smear", "options": {"n_items": 32, "size": 16}},
    "pipeline": {"name": "bi,s,ga"},
    "model": {"name": "small-cnn", "options": {"width": 4}},
    "training": {"modes": ["frozen", "learned"], "epochs": 1, "batch_size": 16, "folds": 2},
    "run": {"workers": 0, "progress": False, "device": "cpu"},
}


@pytest.mark.parametrize(
    ("section", "match"),
    [
        ({"white_balance": [1.0, 0.0, 1.0]}, "3 positive factors"),
        ({"white_balance": [1.0, 1.0]}, "3 positive factors"),
        ({"color_matrix_delta": [[1.0, 0.0], [0.0, 1.0]]}, r"3x3 matrix \(3 rows of 3\)"),
        ({"color_matrix_delta": "large"}, "a number or a 3x3 matrix"),
        ({"black_level": [0.1, 0.2]}, r"one offset or 4 \(one per CFA site"),
        ({"black_level": 0.99}, r"\[miscalibration\]\.black_level: the true black level"),
        ({"color_matrix_delta": [[-1.62, 0.47, 0.15], [0.25, -1.52, 0.27], [-0.05, 0.56, -1.51]]},
         r"\[miscalibration\]\.color_matrix_delta: the true colour matrix .* is singular"),
        ({"white_ballance": [1, 1, 1]}, "did you mean 'white_balance'"),
    ],
)  # fmt: skip
def test_impossible_miscalibration_fails_before_any_work(tmp_path, section, match):
    config = {**copy.deepcopy(TINY), "miscalibration": section}
    with pytest.raises(ConfigError, match=match):
        run_optimization(config, out=tmp_path / "run")
    assert not (tmp_path / "run").exists()


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("miscalibration")
    calibrated = run_optimization(copy.deepcopy(TINY), out=folder / "calibrated")
    config = {
        **copy.deepcopy(TINY),
        "miscalibration": {"white_balance": [1.2, 1.0, 0.8], "black_level": 0.001},
    }
    mis = run_optimization(config, out=folder / "mis")
    return calibrated, mis, config


def _arrays(run_dir):
    return {p.name.split("-")[1]: np.load(p) for p in (run_dir / "arrays").glob("raw-*.npy")}


def test_miscalibrated_run_renders_other_mosaics_and_reports_the_true_camera(runs):
    calibrated, mis, _ = runs
    before = _arrays(calibrated.run_dir)["i1"]
    after = _arrays(mis.run_dir)["i1"]
    assert before.shape == after.shape and not np.allclose(before, after)
    summary = json.loads((mis.run_dir / "summary.json").read_text())
    true = summary["miscalibration"]["true_camera"]
    np.testing.assert_allclose(true["white_balance"], [1.45 * 1.2, 1.0, 2.30 * 0.8])
    assert json.loads((calibrated.run_dir / "summary.json").read_text())["miscalibration"] is None
    report = (mis.run_dir / "report.md").read_text()
    assert "## Mis-calibrated camera" in report
    assert (mis.run_dir / "figures" / "isp_calibration_error.png").is_file()
    manifest = json.loads((mis.run_dir / "manifest.json").read_text())
    assert manifest["true_camera"]["name"] == "embedded-smear (mis-calibrated)"


def test_trajectory_measures_the_distance_to_the_true_camera(runs):
    _, mis, _ = runs
    table = mis.run_dir / "isp_trajectory.csv"
    import pandas as pd

    trajectory = pd.read_csv(table)
    gains = trajectory[(trajectory["param"] == "white_balance.gains") & (trajectory["epoch"] == 0)]
    red = gains[gains["element"] == 0].iloc[0]
    assert red["target"] == pytest.approx(1.45 * 1.2)
    # camera domain: gains -+25% of the profile's, width 0.5 * 1.45
    assert red["width"] == pytest.approx(0.5 * 1.45)
    assert red["relative_error"] == pytest.approx(abs(1.45 - 1.74) / (0.5 * 1.45))
    gamma = trajectory[trajectory["param"] == "gamma.gamma"]
    assert gamma["target"].isna().all()  # not a camera parameter: no true value


def test_a_calibrated_run_is_not_resumed_with_a_miscalibration(runs, tmp_path):
    calibrated, _, config = runs
    with pytest.raises(RunDirError, match=r"miscalibration\.white_balance"):
        run_optimization(config, out=calibrated.run_dir)
