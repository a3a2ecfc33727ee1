"""A real (tiny) synthesis run states its verdict with intervals, guards and the chosen metric;
a diverging cell fails with a clear error instead of reporting chance-level numbers."""

from __future__ import annotations

import copy
import json

import pandas as pd
import pytest
from click.testing import CliRunner

from driftlab.cli import main
from driftlab.errors import CellError, ConfigError
from driftlab.synthesis import run_synthesis
from driftlab.verdicts.drift import MATRIX_COLUMNS

BASE = {
    "dataset": {"name": "embedded-smear", "options": {"n_items": 60, "size": 32}},
    "pipelines": {"train": ["bi,s,ga", "ma,s,me"], "test": ["bi,s,ga", "ma,s,me", "me,u,me"]},
    "corruptions": {"names": ["identity", "gaussian_noise"], "severities": [1, 3]},
    "model": {"name": "small-cnn", "options": {"width": 8}},
    "training": {"epochs": 1, "batch_size": 16, "lr": 3e-3, "folds": 2, "seed": 0},
    "report": {"bootstrap": 200, "seed": 1},
    "run": {"workers": 0, "progress": False, "device": "cpu"},
}


def _config(**sections):
    data = copy.deepcopy(BASE)
    for section, values in sections.items():
        data.setdefault(section, {}).update(values)
    return data


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    out = tmp_path_factory.mktemp("verdict") / "run"
    return run_synthesis(BASE, out=out)


def test_summary_json_carries_intervals_top3_probability_and_the_chance_guard(tiny):
    summary = json.loads((tiny.run_dir / "summary.json").read_text())
    for key in ("mean_diagonal", "mean_isp_drop", "mean_corruption_drop",
                "mean_corruption_drop_all_severities"):  # fmt: skip
        low, high = summary["intervals"][key]
        assert low <= summary[key] <= high
    for entry in summary["per_train_pipeline"].values():
        assert set(entry["intervals"]) >= {"diagonal", "isp_drop", "corruption_drop"}
    assert set(summary["top3_probability"]) == {"isp", "corruption"}
    assert set(summary["top3_probability"]["isp"]) == {"bi,s,ga", "ma,s,me"}
    assert 0 < summary["chance_level"] < 1
    assert isinstance(summary["above_chance"], bool)
    assert summary["above_chance"] == (summary["intervals"]["mean_diagonal"][0]
                                       > summary["chance_level"])  # fmt: skip
    assert summary["corruption_severity"] == 3
    assert summary["bootstrap"]["resamples"] == 200 and summary["bootstrap"]["seed"] == 1
    assert summary["test_items_per_fold"] and sum(summary["test_items_per_fold"]) == 60


def test_matrix_csv_report_and_figures_carry_the_intervals(tiny):
    run = tiny.run_dir
    matrix = pd.read_csv(run / "matrix.csv")
    assert list(matrix.columns) == list(MATRIX_COLUMNS)
    # 2 train pipelines x (3 test pipelines + identity + gaussian_noise at 2 severities)
    assert len(matrix) == 2 * 6
    assert ((matrix["low"] <= matrix["mean"]) & (matrix["mean"] <= matrix["high"])).all()
    text = (run / "report.md").read_text()
    assert "How to read this report" in text and "**top-3 probability**" in text
    assert "] |" in text  # table cells print `0.83 [0.80, 0.86]`
    assert (run / "figures" / "severity_drops.png").is_file()
    assert "figures/severity_drops.png" in text


def test_a_run_at_chance_opens_the_report_and_the_cli_with_a_warning(tmp_path):
    # a model that saw one batch of 60 items cannot beat the majority class on 30 test items
    data = _config(training={"epochs": 1, "lr": 1e-6})
    config = tmp_path / "c.toml"
    import tomli_w

    config.write_text(tomli_w.dumps(data))
    out = tmp_path / "run"
    result = CliRunner().invoke(main, ["synthesize", str(config), "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["above_chance"] is False
    assert summary["worst_pair"] is None and summary["top3_isp"] is None
    lines = result.output.splitlines()
    first = next(
        i for i, line in enumerate(lines) if not line.startswith(("run directory", "report:"))
    )
    assert lines[first].startswith("WARNING: the mean diagonal accuracy")
    assert not any("top-3" in line or "largest ISP drop" in line for line in lines)
    report = (out / "report.md").read_text()
    title_end = report.index("\n\n") + 2
    assert report[title_end:].startswith("> **Warning:** the mean diagonal accuracy")
    assert "Largest ISP drop" not in report and "top-3 train pipelines" not in report
    assert not (out / "figures" / "worst_pair.png").exists()


def test_report_metric_is_chosen_by_name_without_recomputing_cells(tiny, tmp_path):
    out = tmp_path / "run"
    first = run_synthesis(BASE, out=out)
    again = run_synthesis(_config(report={"metric": "balanced_accuracy"}), out=out)
    assert again.cells_reused == first.cells_computed and again.cells_computed == 0
    results = pd.read_csv(out / "results.csv")
    assert set(results["metric"]) == {"balanced_accuracy"}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["metric"] == "balanced_accuracy"
    assert "balanced_accuracy" in (out / "report.md").read_text()
    f1 = run_synthesis(_config(report={"metric": "macro_f1"}), out=out)
    assert f1.summary["metric"] == "macro_f1" and f1.cells_computed == 0


@pytest.mark.parametrize(
    ("metric", "message"),
    [
        ("iou", r"\[report\].metric: metric 'iou' is for segmentation"),
        ("balanced_acuracy", r"did you mean 'balanced_accuracy'"),
    ],
)
def test_a_metric_of_another_task_or_unknown_name_fails_before_any_work(tmp_path, metric, message):
    out = tmp_path / "run"
    with pytest.raises(ConfigError, match=message):
        run_synthesis(_config(report={"metric": metric}), out=out)
    assert not out.exists()


def test_a_diverging_cell_fails_with_a_clear_error_instead_of_chance_numbers(tmp_path):
    out = tmp_path / "run"
    data = _config(
        pipelines={"train": ["bi,s,ga"], "test": ["bi,s,ga"]},
        training={"lr": 1e30, "epochs": 2},
    )
    with pytest.raises(CellError) as info:
        run_synthesis(data, out=out)
    message = str(info.value)
    assert "TrainingDiverged" in message and "lower [training].lr" in message
    assert not (out / "summary.json").exists() and not (out / "results.csv").exists()


def test_cosine_schedule_is_part_of_the_run_identity(tmp_path):
    from driftlab.errors import RunDirError

    out = tmp_path / "run"
    data = _config(pipelines={"train": ["bi,s,ga"], "test": ["bi,s,ga"]},
                   corruptions={"names": ["identity"]})  # fmt: skip
    run_synthesis(data, out=out)
    cosine = copy.deepcopy(data)
    cosine["training"]["schedule"] = "cosine"
    with pytest.raises(RunDirError, match="schedule"):
        run_synthesis(cosine, out=out)
    run = run_synthesis(cosine, out=tmp_path / "cosine")
    assert run.cells_computed == 2


def test_a_segmentation_run_gets_iou_intervals_and_the_best_constant_mask_as_chance(tmp_path):
    data = {
        "dataset": {"name": "embedded-aerial", "options": {"n_items": 48, "size": 32}},
        "pipelines": {"train": ["bi,s,ga"], "test": ["bi,s,ga", "ma,u,me"]},
        "corruptions": {"names": ["identity", "contrast"], "severities": [3]},
        "model": {"name": "small-unet", "options": {"width": 4}},
        "training": {"epochs": 1, "batch_size": 8, "folds": 2, "seed": 0},
        "report": {"bootstrap": 100},
        "run": {"workers": 0, "progress": False, "device": "cpu"},
    }
    run = run_synthesis(data, out=tmp_path / "seg")
    s = run.summary
    assert s["metric"] == "iou"
    assert 0 < s["chance_level"] < 0.5  # cars cover a small part of each tile
    low, high = s["intervals"]["mean_diagonal"]
    assert low <= s["mean_diagonal"] <= high
    assert s["above_chance"] == (low > s["chance_level"])
    cells = list((run.run_dir / "cells").glob("*.npz"))
    import numpy as np

    with np.load(cells[0]) as arrays:
        assert {"fg", "pixels", "c0.inter", "c0.union"} <= set(arrays.files)
        assert (arrays["pixels"] == 32 * 32).all()


def test_reused_synthesis_cells_are_checked_against_the_plan(tiny):
    import attrs

    from driftlab.engine.rundir import RunDir
    from driftlab.synthesis.config import SynthesisConfig
    from driftlab.synthesis.experiment import SYNTHESIS, model_key
    from driftlab.verdicts.records import CellRecordError
    from tests.helpers import builtin_registry

    plan = SYNTHESIS.plan(SynthesisConfig.load(BASE), builtin_registry())
    run = RunDir(tiny.run_dir)
    records = {key: run.read_cell(key, SYNTHESIS.columns) for key in SYNTHESIS.keys(plan)}
    for record in records.values():
        SYNTHESIS.check(plan, record)
    record = records[model_key("ma,s,me", 1)]
    rows = record.rows.copy()
    rows.loc[2, "value"] = 1.0 - rows.loc[2, "value"]
    with pytest.raises(CellRecordError, match=r"cell ma,s,me__fold1: row 2 .* recomputed"):
        SYNTHESIS.check(plan, attrs.evolve(record, rows=rows))
    # another fold's record under this key: other test items
    other = attrs.evolve(records[model_key("ma,s,me", 0)], key=record.key)
    with pytest.raises(CellRecordError, match="info 'fold' is 0; expected 1"):
        SYNTHESIS.check(plan, other)
    short = {k: v[:-1] for k, v in record.arrays.items()}
    with pytest.raises(CellRecordError, match=r"expected \(\d+,\) integers"):
        SYNTHESIS.check(plan, attrs.evolve(record, arrays=short))
