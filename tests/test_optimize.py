"""Optimisation runner: packing, config validation, tables, ISP learning, resumption, CLI."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tomli_w
import torch
from click.testing import CliRunner

from driftlab.cli import main
from driftlab.configtools import ConfigError
from driftlab.models.loading import get_task_model
from driftlab.optimize import pack_bayer, run_optimization, summary_table
from driftlab.optimize.networks import PackedTaskModel
from driftlab.optimize.packing import packed_offsets
from driftlab.pipeline import build_differentiable, get_pipeline

TINY = {
    "dataset": {
        "name": "embedded-smear",
        "intensities": [1.0, 0.05],
        "options": {"n_items": 32, "size": 16},
    },
    "pipeline": {"name": "bi,s,ga"},
    "model": {"name": "small-cnn", "options": {"width": 4}},
    "training": {
        "modes": ["frozen", "learned", "raw"],
        "epochs": 2,
        "batch_size": 16,
        "lr": 3e-3,
        "isp_lr": 5e-2,
        "folds": 2,
        "seed": 0,
        "eval_every": 1,
    },
    "run": {"workers": 1, "progress": False, "device": "cpu"},
}


def _config(**changes) -> dict:
    data = copy.deepcopy(TINY)
    for dotted, value in changes.items():
        section, key = dotted.split("__")
        data.setdefault(section, {})[key] = value
    return data


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("optimize")
    config = folder / "tiny.toml"
    config.write_text(tomli_w.dumps(TINY))
    result = run_optimization(config, out=folder / "run")
    return config, result


# ---------------------------------------------------------------- packing


# value 1 on R, 2 on the green of the red row, 3 on the green of the blue row, 4 on B
BLOCKS = {
    "RGGB": [[1, 2], [3, 4]],
    "BGGR": [[4, 3], [2, 1]],
    "GRBG": [[2, 1], [4, 3]],
    "GBRG": [[3, 4], [1, 2]],
}


@pytest.mark.parametrize("pattern", sorted(BLOCKS))
def test_pack_bayer_puts_each_colour_in_its_plane(pattern):
    mosaic = np.tile(np.asarray(BLOCKS[pattern], dtype=np.float32), (2, 3))  # 4 x 6
    packed = pack_bayer(torch.as_tensor(mosaic)[None, None], pattern)
    assert packed.shape == (1, 4, 2, 3)
    for channel in range(4):
        assert torch.all(packed[0, channel] == channel + 1), (pattern, channel)


def test_pack_bayer_keeps_positions():
    raw = torch.arange(16, dtype=torch.float32).reshape(1, 1, 4, 4)
    packed = pack_bayer(raw, "GRBG")  # R at (0, 1), Gr (0, 0), Gb (1, 1), B (1, 0)
    expected = torch.tensor(
        [[[1, 3], [9, 11]], [[0, 2], [8, 10]], [[5, 7], [13, 15]], [[4, 6], [12, 14]]],
        dtype=torch.float32,
    )
    assert torch.equal(packed[0], expected)
    assert packed_offsets("rggb") == ((0, 0), (0, 1), (1, 0), (1, 1))


@pytest.mark.parametrize(
    ("shape", "pattern", "match"),
    [
        ((1, 1, 4, 5), "RGGB", "even"),
        ((1, 3, 4, 4), "RGGB", r"\(B, 1, H, W\)"),
        ((4, 4), "RGGB", r"\(B, 1, H, W\)"),
        ((1, 1, 4, 4), "RGBG", "unknown CFA pattern"),
    ],
)
def test_pack_bayer_rejects_bad_input(shape, pattern, match):
    with pytest.raises(ValueError, match=match):
        pack_bayer(torch.zeros(shape), pattern)


def test_raw_segmentation_logits_are_upsampled_to_the_mosaic():
    model = get_task_model("small-unet").build(1, in_channels=4)
    net = PackedTaskModel("RGGB", model, np.zeros(4), np.ones(4), segmentation=True)
    out = net(torch.rand(2, 1, 32, 48))
    assert out.shape == (2, 1, 32, 48)


# ---------------------------------------------------------------- configuration


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        (
            {"training__modes": ["frozen", "lerned"]},
            "unknown mode 'lerned'.*did you mean 'learned'",
        ),
        ({"pipeline__name": "bi,s,gx"}, r"\[pipeline\].name.*unknown pipeline"),
        ({"training__epoch": 3}, "unknown key 'epoch'.*did you mean 'epochs'"),
        ({"dataset__name": "embedded-smir"}, r"\[dataset\].name"),
        (
            {"dataset__intensities": [1.0, 0.0]},
            r"intensities: expected a non-empty list of numbers in \(0, 1\]",
        ),
        ({"training__isp_lr": -1.0}, "isp_lr: expected a positive number"),
        ({"training__eval_every": 5}, "eval_every: 5 exceeds epochs"),
        ({"model__name": "small-unet"}, "segmentation model"),
        ({"training__modes": ["frozen", "paper-frozn"]}, "did you mean 'paper-frozen'"),
        ({"isp__domains": "camra"}, r"\[isp\].domains: expected one of 'camera', 'generic'"),
        ({"isp__step_size": "width"}, r"step_size: expected one of 'domain-width', 'absolute'"),
        ({"isp__domain": "camera"}, "unknown key 'domain'.*did you mean 'domains'"),
        ({"summary__interval": "wilcoxon"}, r"interval: expected one of 't', 'bootstrap'"),
        ({"summary__confidence": 1.0}, r"confidence: expected a confidence level in \[0.5, 1\)"),
        (
            {"summary__bootstrap_samples": 10},
            r"bootstrap_samples: expected an integer in \[100, 10000000\]",
        ),
        ({"miscalibration__black_level": True}, "a number or 4 numbers"),
    ],
)
def test_config_errors_fail_before_any_work(tmp_path, changes, match):
    out = tmp_path / "run"
    with pytest.raises(ConfigError, match=match):
        run_optimization(_config(**changes), out=out)
    assert not out.exists()


def test_isp_and_miscalibration_settings_change_the_identity_summary_settings_do_not():
    from driftlab.optimize import OptimizeConfig

    identity = OptimizeConfig.from_dict(_config()).identity()
    assert identity["isp.domains"] == "camera"
    assert identity["isp.step_size"] == "domain-width"
    assert identity["miscalibration.white_balance"] == [1.0, 1.0, 1.0]
    assert identity["training.isp_lr"] == 5e-2
    assert not any(key.startswith("summary.") for key in identity)


def test_unknown_section_is_named(tmp_path):
    data = _config()
    data["trainig"] = {}
    with pytest.raises(ConfigError, match="did you mean 'training'"):
        run_optimization(data, out=tmp_path / "run")


# ---------------------------------------------------------------- tables


def test_summary_pools_folds_and_the_last_evaluations():
    rows = [
        (1.0, "learned", fold, epoch, "accuracy", value)
        for fold, values in enumerate([[0.2, 0.4, 0.6], [0.4, 0.6, 0.8]])
        for epoch, value in zip((1, 2, 3), values, strict=True)
    ]
    results = pd.DataFrame(rows, columns=["intensity", "mode", "fold", "epoch", "metric", "value"])
    every = summary_table(results, "accuracy", last=0).iloc[0]
    assert every["pooled_mean"] == pytest.approx(0.5)
    assert every["pooled_std"] == pytest.approx(np.std([0.2, 0.4, 0.6, 0.4, 0.6, 0.8]))
    assert every["pooled_epochs"] == "1,2,3"
    last = summary_table(results, "accuracy", last=2).iloc[0]
    assert last["pooled_mean"] == pytest.approx(np.mean([0.4, 0.6, 0.6, 0.8]))
    assert last["final_mean"] == pytest.approx(0.7)
    assert last["final_std"] == pytest.approx(0.1)
    with pytest.raises(ValueError, match="no 'iou' rows"):
        summary_table(results, "iou")


def test_run_covers_every_intensity_mode_and_fold(tiny_run):
    _, result = tiny_run
    acc = result.results[result.results["metric"] == "accuracy"]
    cells = set(zip(acc["intensity"], acc["mode"], acc["fold"], strict=True))
    assert cells == {
        (i, m, f) for i in (1.0, 0.05) for m in ("frozen", "learned", "raw") for f in (0, 1)
    }
    assert sorted(acc["epoch"].unique()) == [1, 2]
    assert acc["value"].between(0, 1).all()
    assert len(result.table) == 6
    assert set(result.table["folds"]) == {2}
    run = result.run_dir
    for name in ("results.csv", "table.csv", "curves.csv", "summary.json", "report.md"):
        assert (run / name).is_file(), name
    assert (run / "figures" / "learning_curves.png").stat().st_size > 0
    assert "| 0.05 | raw |" in (run / "report.md").read_text()


def test_learned_isp_changes_inside_its_calibrated_domains_and_frozen_isp_does_not(tiny_run):
    _, result = tiny_run
    from driftlab.datasets.embedded_smear import SMEAR_CAMERA
    from driftlab.domains import stage_domains

    resolved = build_differentiable(get_pipeline("bi,s,ga"), SMEAR_CAMERA).resolved
    learned = {k: v for k, v in result.isp.items() if "__learned__" in k}
    frozen = {k: v for k, v in result.isp.items() if "__frozen__" in k}
    assert len(learned) == 4 and len(frozen) == 4
    assert not any("__raw__" in k for k in result.isp)
    for key, values in learned.items():
        moved = [
            name
            for name, start in values["initial"].items()
            if not np.allclose(values["final"][name], start, rtol=0, atol=1e-7)
        ]
        assert len(moved) >= 3, (key, moved)
        intensity = 1.0 if key.startswith("i1__") else 0.05
        domains = stage_domains(resolved, SMEAR_CAMERA, intensity, mode="camera")
        for name, value in values["final"].items():
            assert domains[name].contains(np.asarray(value), slack=1e-6), (key, name)
    for key, values in frozen.items():
        assert values["final"] == values["initial"], key


def test_resume_reuses_finished_cells(tiny_run):
    config, result = tiny_run
    again = run_optimization(config, out=result.run_dir)
    assert (again.cells_reused, again.cells_computed) == (12, 0)
    pd.testing.assert_frame_equal(again.results, result.results)
    (result.run_dir / "cells" / "i0.05__learned__fold1.csv").unlink()
    redo = run_optimization(config, out=result.run_dir)
    assert (redo.cells_reused, redo.cells_computed) == (11, 1)
    pd.testing.assert_frame_equal(redo.results, result.results)  # same seed, same numbers


def test_cli_prints_report_and_table(tiny_run):
    config, result = tiny_run
    out = CliRunner().invoke(
        main, ["optimize", str(config), "--out", str(result.run_dir), "--quiet"]
    )
    assert out.exit_code == 0, out.output
    assert f"report: {result.run_dir / 'report.html'}" in out.output
    assert "12 reused, 0 computed" in out.output
    lines = [line for line in out.output.splitlines() if line.startswith(("1 ", "0.05 "))]
    assert len(lines) == 6


def test_cli_reports_config_errors(tmp_path):
    config = tmp_path / "bad.toml"
    config.write_text(tomli_w.dumps(_config(training__modes=["raw", "frozzen"])))
    out = CliRunner().invoke(main, ["optimize", str(config), "--out", str(tmp_path / "run")])
    assert out.exit_code != 0
    assert "unknown mode 'frozzen'" in out.output
    assert str(config) in out.output
    assert not (tmp_path / "run").exists()


def test_isp_json_matches_saved_weights(tiny_run):
    _, result = tiny_run
    key = "i1__learned__fold0"
    state = torch.load(result.run_dir / "models" / f"{key}.pt", weights_only=True)
    final = json.loads(Path(result.run_dir / "models" / f"{key}.isp.json").read_text())["final"]
    gamma = state["isp.pipeline.stages.gamma.learnable.gamma"]  # written back after training
    assert float(gamma) == pytest.approx(final["gamma.gamma"])
    # theta = origin + width * step; gamma is the sixth learnable parameter of bi,s,ga
    assert len([k for k in state if k.startswith("isp.origin_")]) == 6
    theta = state["isp.origin_5"] + state["isp.width_5"] * state["isp.steps.5"]
    assert float(theta) == pytest.approx(final["gamma.gamma"])


def test_folds_that_cannot_be_made_fail_before_any_work(tmp_path):
    data = _config(dataset__options={"n_items": 20, "size": 16})  # one slide: one group
    with pytest.raises(ConfigError, match=r"\[training\].folds.*1 group"):
        run_optimization(data, out=tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_segmentation_runs_in_every_mode(tmp_path):
    data = {
        "dataset": {
            "name": "embedded-aerial",
            "intensities": [0.2],
            "options": {"n_items": 48, "size": 16},  # two flights
        },
        "model": {"name": "small-unet", "options": {"width": 4}},
        "training": {"epochs": 1, "batch_size": 24, "folds": 2},
        "run": {"workers": 1, "progress": False, "device": "cpu"},
    }
    result = run_optimization(data, out=tmp_path / "run")
    assert list(result.table["mode"]) == ["frozen", "frozen-bn", "learned", "paper", "raw"]
    iou = result.results[result.results["metric"] == "iou"]
    assert len(iou) == 10 and iou["value"].between(0, 1).all()
