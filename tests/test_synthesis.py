"""Drift synthesis: config validation, tables, determinism, resumption, interruption."""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tomli_w
from click.testing import CliRunner

from driftlab.cli import main
from driftlab.configtools import ConfigError
from driftlab.errors import RunDirError
from driftlab.synthesis import run_synthesis
from driftlab.synthesis.summary import summarize

TINY = {
    "dataset": {"name": "embedded-smear", "options": {"n_items": 60, "size": 32}},
    "pipelines": {"train": ["bi,s,ga", "ma,s,me"], "test": ["bi,s,ga", "ma,s,me", "me,u,me"]},
    "corruptions": {"names": ["identity", "gaussian_noise"], "severities": [1, 5]},
    "model": {"name": "small-cnn", "options": {"width": 8}},
    "training": {"epochs": 1, "batch_size": 16, "lr": 3e-3, "folds": 2, "seed": 0},
    "run": {"workers": 0, "progress": False, "device": "cpu"},
}


def _config(**changes):
    data = copy.deepcopy(TINY)
    for dotted, value in changes.items():
        section, key = dotted.split("__")
        data[section][key] = value
    return data


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("synthesis") / "run"
    return run_synthesis(TINY, out=out)


def test_tables_figures_and_report(tiny_run):
    results = tiny_run.results
    # 2 train pipelines x 2 folds x (3 ISP tests + identity + gaussian_noise at 2 severities)
    assert len(results) == 2 * 2 * (3 + 1 + 2)
    assert list(results.columns) == [
        "train_pipeline", "fold", "test_kind", "test_condition", "severity", "metric", "value",
        "device",
    ]  # fmt: skip
    assert set(results["device"]) == {"cpu"}
    assert set(results["test_kind"]) == {"isp", "corruption"}
    assert set(results["metric"]) == {"accuracy"}
    assert results["value"].between(0, 1).all()
    run = tiny_run.run_dir
    for name in (
        "results.csv",
        "summary.json",
        "report.md",
        "report.html",
        "config.toml",
        "manifest.json",
    ):
        assert (run / name).is_file(), name
    for name in ("isp_heatmap.png", "corruption_heatmap.png", "severity_drops.png"):
        assert (run / "figures" / name).is_file(), name
    assert len(list((run / "models").glob("*.pt"))) == 4
    summary = json.loads((run / "summary.json").read_text())
    # the worst pair (and its figure) is left out when the model is not above chance
    assert (run / "figures" / "worst_pair.png").is_file() == (summary["worst_pair"] is not None)
    assert (summary["worst_pair"] is None) == (summary["above_chance"] is False)
    assert summary["train_pipelines"] == ["bi,s,ga", "ma,s,me"]
    assert set(summary["ranking_isp"]) == {"bi,s,ga", "ma,s,me"}
    assert "drop_ratio_corruption_over_isp" in summary
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["identity_sha256"] and manifest["packages"]["torch"]
    assert manifest["out"] == str(run) and manifest["kind"] == "synthesis"
    html = (run / "report.html").read_text()
    assert "data:image/png;base64," in html and "Oala" in html  # self-contained
    assert "figures/isp_heatmap.png" in (run / "report.md").read_text()


def test_summary_definitions():
    rows = []
    for fold in (0, 1):
        for train in ("a", "b"):
            for test, value in (
                ("a", 0.9 if train == "a" else 0.6),
                ("b", 0.7 if train == "a" else 0.8),
            ):
                rows.append((train, fold, "isp", test, 0, "accuracy", value))
            rows.append((train, fold, "corruption", "identity", 0, "accuracy", 0.95))
            rows.append(
                (train, fold, "corruption", "noise", 3, "accuracy", 0.5 if train == "a" else 0.4)
            )
    frame = pd.DataFrame(
        rows,
        columns=[
            "train_pipeline",
            "fold",
            "test_kind",
            "test_condition",
            "severity",
            "metric",
            "value",
        ],
    )
    s = summarize(frame)
    assert s["per_train_pipeline"]["a"]["diagonal"] == pytest.approx(0.9)
    assert s["per_train_pipeline"]["a"]["isp_drop"] == pytest.approx(0.2)
    assert s["per_train_pipeline"]["b"]["isp_drop"] == pytest.approx(0.2)
    assert s["mean_isp_drop"] == pytest.approx(0.2)
    # identity is excluded from the corruption mean
    assert s["per_train_pipeline"]["a"]["corruption_drop"] == pytest.approx(0.4)
    assert s["mean_corruption_drop"] == pytest.approx(0.4)
    # a plain table has no per-item evidence, hence no ISP-drop interval and no ratio
    assert s["drop_ratio_corruption_over_isp"] is None
    assert "not known to be above 0" in s["reasons"]["drop_ratio_corruption_over_isp"]
    assert s["ranking_isp"] == ["a", "b"]


def test_same_seed_gives_identical_results(tiny_run, tmp_path):
    again = run_synthesis(TINY, out=tmp_path / "again")
    assert (again.run_dir / "results.csv").read_bytes() == (
        tiny_run.run_dir / "results.csv"
    ).read_bytes()


def test_resume_reuses_finished_cells(tiny_run, tmp_path):
    import shutil

    copy_dir = tmp_path / "copy"
    shutil.copytree(tiny_run.run_dir, copy_dir)
    (copy_dir / "cells" / "ma,s,me__fold1.csv").unlink()
    (copy_dir / "results.csv").unlink()
    (copy_dir / "cells" / ".ma,s,me__fold0.csv.tmp123.csv").write_text("half-writ")
    resumed = run_synthesis(TINY, out=copy_dir)
    assert (resumed.cells_reused, resumed.cells_computed) == (3, 1)
    assert (copy_dir / "results.csv").read_bytes() == (
        tiny_run.run_dir / "results.csv"
    ).read_bytes()
    assert not list((copy_dir / "cells").glob(".*tmp*"))


def test_run_directory_of_another_config_is_refused(tiny_run):
    with pytest.raises(RunDirError, match="different configuration"):
        run_synthesis(_config(training__seed=1), out=tiny_run.run_dir)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"pipelines__train": ["bi,s,gx"]},
            r"\[pipelines\].train: unknown pipeline 'bi,s,gx' \(did you mean 'bi,s,ga'\?\)",
        ),
        ({"corruptions__names": ["gausian_noise"]}, r"did you mean 'gaussian_noise'"),
        (
            {"corruptions__severities": [7]},
            r"\[corruptions\].severities: expected a non-empty list of integers 1..5",
        ),
        (
            {"dataset__name": "embedded-smaer"},
            r"\[dataset\].name: unknown dataset 'embedded-smaer' \(did you mean 'embedded-smear'\?\)",
        ),
        ({"model__name": "small-cn"}, r"did you mean 'small-cnn'"),
        (
            {"model__name": "small-unet"},
            r"'small-unet' is a segmentation model but dataset 'embedded-smear' is a classification dataset",
        ),
        ({"training__epoch": 3}, r"\[training\]: unknown key 'epoch' \(did you mean 'epochs'\?\)"),
        ({"training__folds": 1}, r"folds: expected an integer >= 2"),
        ({"training__lr": "fast"}, r"\[training\].lr: expected a positive number"),
        ({"run__device": "cuda:7"}, r"\[run\].device"),
        ({"training__device": "cpu"}, r"\[training\]: key 'device' moved to \[run\].device"),
        ({"training__lr": float("nan")}, r"\[training\].lr: expected a positive number"),
        ({"training__seed": -1}, r"\[training\].seed: expected an integer in \[0, 4294967295\]"),
        ({"run__workers": -1}, r"\[run\].workers: expected an integer >= 0"),
        ({"training__folds": 61}, r"\[training\].folds"),
    ],
)
def test_config_errors_fail_before_any_work(tmp_path, changes, message):
    out = tmp_path / "never"
    with pytest.raises(ConfigError, match=message):
        run_synthesis(_config(**changes), out=out)
    assert not out.exists()


def test_unknown_section_and_toml_file_errors(tmp_path):
    data = copy.deepcopy(TINY)
    data["trainig"] = data.pop("training")
    with pytest.raises(ConfigError, match=r"unknown key 'trainig' \(did you mean 'training'\?\)"):
        run_synthesis(data, out=tmp_path / "x")
    path = tmp_path / "bad.toml"
    path.write_text("[dataset\nname = 1")
    with pytest.raises(ConfigError, match=r"bad\.toml: invalid TOML"):
        run_synthesis(path, out=tmp_path / "y")


def _write_config(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(tomli_w.dumps(data))
    return path


def test_cli_synthesize_with_overrides_and_report(tmp_path):
    config = _write_config(tmp_path, _config(training__epochs=3))
    out = tmp_path / "cli-run"
    result = CliRunner().invoke(
        main,
        ["synthesize", str(config), "--out", str(out), "--set", "training.epochs=1",
         "--set", 'pipelines.train=["bi,s,ga"]', "--quiet"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "report:" in result.output and "mean drop under ISP drift" in result.output
    results = pd.read_csv(out / "results.csv")
    assert set(results["train_pipeline"]) == {"bi,s,ga"}
    (out / "report.html").unlink()
    rebuilt = CliRunner().invoke(main, ["report", str(out)])
    assert rebuilt.exit_code == 0, rebuilt.output
    assert (out / "report.html").is_file()
    bad = CliRunner().invoke(
        main,
        ["synthesize", str(config), "--out", str(tmp_path / "z"), "--set", "model.name=resnet-18"],
    )
    assert bad.exit_code == 2  # configuration errors exit with 2 (docs/user-guide.md)
    assert "did you mean 'resnet18'" in bad.output


INTERRUPT = {
    **TINY,
    "pipelines": {"train": ["bi,s,ga", "ma,s,ga", "bi,u,ga"], "test": ["bi,s,ga", "ma,s,ga"]},
    "training": {**TINY["training"], "epochs": 3},
}


def _cli(config: Path, out: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "driftlab.cli",
            "synthesize",
            str(config),
            "--out",
            str(out),
            "--quiet",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_interrupted_run_resumes_to_the_same_results(tmp_path, sig):
    config = _write_config(tmp_path, INTERRUPT)
    reference = run_synthesis(INTERRUPT, out=tmp_path / "reference")
    out = tmp_path / "interrupted"
    proc = _cli(config, out)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if len(list((out / "cells").glob("*.json"))) >= 2:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "run finished before it could be interrupted"
    proc.send_signal(sig)
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode != 0
    if sig == signal.SIGTERM:
        assert "interrupted" in output
    finished = len(list((out / "cells").glob("*.json")))
    assert 2 <= finished < 6
    assert not (out / "results.csv").exists()
    rerun = _cli(config, out)
    output, _ = rerun.communicate(timeout=600)
    assert rerun.returncode == 0, output
    assert f"cells: {finished} reused, {6 - finished} computed" in output
    assert (out / "results.csv").read_bytes() == (reference.run_dir / "results.csv").read_bytes()
    assert np.isfinite(pd.read_csv(out / "results.csv")["value"]).all()


def test_worker_processes_give_the_same_results(tiny_run, tmp_path):
    data = copy.deepcopy(TINY)
    data["run"]["workers"] = 2
    pooled = run_synthesis(data, out=tmp_path / "pooled")
    a = pd.read_csv(pooled.run_dir / "results.csv")
    b = pd.read_csv(tiny_run.run_dir / "results.csv")
    pd.testing.assert_frame_equal(
        a[["train_pipeline", "fold", "test_kind", "test_condition", "severity"]],
        b[["train_pipeline", "fold", "test_kind", "test_condition", "severity"]],
    )
    assert np.abs(a["value"] - b["value"]).max() <= 0.05  # torch thread counts may differ


def test_summary_without_off_diagonal_cells_has_no_nan():
    rows = [("a", f, "isp", "a", 0, "accuracy", 0.8) for f in (0, 1)]
    rows += [("a", f, "corruption", "noise", 3, "accuracy", 0.5) for f in (0, 1)]
    frame = pd.DataFrame(
        rows,
        columns=[
            "train_pipeline",
            "fold",
            "test_kind",
            "test_condition",
            "severity",
            "metric",
            "value",
        ],
    )
    s = summarize(frame)
    assert s["mean_isp_drop"] is None
    assert s["drop_ratio_corruption_over_isp"] is None
    assert s["per_train_pipeline"]["a"]["isp_drop"] is None
    json.dumps(s, allow_nan=False)
