"""Every arm in one run: ISP trajectory table, paired differences, summary and report."""

from __future__ import annotations

import copy
import hashlib
import json

import numpy as np
import pandas as pd
import pytest

from driftlab.engine.skeleton import rebuild_report
from driftlab.errors import RunDirError
from driftlab.optimize import run_optimization
from driftlab.optimize.experiment import OPTIMIZE
from driftlab.optimize.summary import check_isp_record, isp_change_summary, isp_trajectory_table
from driftlab.registry import get_registry

ARMS = ["frozen", "frozen-bn", "learned", "paper", "paper-frozen"]
CONFIG = {
    "dataset": {"name": "embedded-smear", "options": {"n_items": 32, "size": 16}},
    "pipeline": {"name": "bi,s,ga"},
    "model": {"name": "small-cnn", "options": {"width": 4}},
    "training": {
        "modes": ARMS,
        "epochs": 2,
        "batch_size": 8,
        "lr": 3e-3,
        "isp_lr": 2e-2,
        "folds": 2,
        "eval_every": 1,
    },
    "run": {"workers": 1, "progress": False, "device": "cpu"},
}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return run_optimization(copy.deepcopy(CONFIG), out=tmp_path_factory.mktemp("arms") / "run")


def test_every_arm_runs_and_frozen_isps_do_not_move(run):
    assert list(run.table["mode"]) == ARMS
    assert run.cells_computed == 10
    for key, record in run.isp.items():
        if "trajectory" not in record:
            assert record["final"] == record["initial"], key
    learning = {record["mode"] for record in run.isp.values() if "trajectory" in record}
    assert learning == {"learned", "paper"}


def test_trajectory_table_has_every_element_at_every_epoch(run):
    trajectory = pd.read_csv(run.run_dir / "isp_trajectory.csv")
    assert set(trajectory["mode"]) == {"learned", "paper"}
    assert sorted(trajectory["epoch"].unique()) == [0, 1, 2]
    learned = trajectory[(trajectory["mode"] == "learned") & (trajectory["fold"] == 0)]
    sizes = learned[learned["epoch"] == 2].groupby("param").size().to_dict()
    assert sizes == {
        "black_level.levels": 4,
        "white_balance.gains": 3,
        "color_correction.matrix": 9,
        "sharpen.kernel": 9,
        "denoise.sigma": 1,
        "gamma.gamma": 1,
    }
    start = learned[learned["epoch"] == 0]
    assert (start["change"] == 0).all() and (start["relative_change"] == 0).all()
    np.testing.assert_allclose(
        trajectory["relative_change"], trajectory["change"].abs() / trajectory["width"]
    )
    # the learned arm moved, inside its domains (|change| <= width)
    final = learned[learned["epoch"] == 2]
    assert final["relative_change"].max() > 0 and final["relative_change"].max() <= 1
    paper = trajectory[trajectory["mode"] == "paper"]
    assert paper[paper["param"] == "demosaic.kernel"]["width"].isna().all()  # no domain
    assert len(paper[(paper["param"] == "demosaic.kernel") & (paper["epoch"] == 1)]) == 2 * 81


def test_change_summary_takes_the_largest_element_and_averages_folds():
    records = [
        {
            "intensity": 1.0,
            "mode": "learned",
            "fold": fold,
            "initial": {"a.x": [0.0, 0.0]},
            "final": {"a.x": [step, -2 * step]},
            "trajectory": [
                {"epoch": 0, "values": {"a.x": [0.0, 0.0]}},
                {"epoch": 1, "values": {"a.x": [step, -2 * step]}},
            ],
        }
        for fold, step in enumerate([0.1, 0.3])
    ]
    table = isp_trajectory_table(records, {1.0: {"a.x": np.array([1.0, 4.0])}})
    assert list(table["element"].unique()) == [0, 1]
    summary = isp_change_summary(table)
    last = summary[summary["epoch"] == 1].iloc[0]
    # fold 0: max(0.1 / 1, 0.2 / 4) = 0.1; fold 1: max(0.3, 0.15) = 0.3
    assert last["max_relative_change"] == pytest.approx(0.2)
    assert last["max_abs_change"] == pytest.approx((0.2 + 0.6) / 2)
    assert np.isnan(last["max_relative_error"])
    assert last["folds"] == 2


def test_differences_table_pairs_folds_of_each_comparison(run):
    differences = pd.read_csv(run.run_dir / "differences.csv")
    assert set(differences["comparison"]) == {
        "learned − frozen",
        "paper − frozen-bn",
        "frozen-bn − frozen",
        "paper − paper-frozen",
    }
    results = run.results[run.results["metric"] == "accuracy"]
    final = results[results["epoch"] == 2].set_index(["mode", "fold"])["value"]
    row = differences[
        (differences["comparison"] == "learned − frozen") & (differences["statistic"] == "final")
    ].iloc[0]
    d = [final["learned", f] - final["frozen", f] for f in (0, 1)]
    assert row["mean"] == pytest.approx(np.mean(d))
    assert row["folds"] == 2 and row["method"] == "t" and row["confidence"] == 0.95
    assert row["low"] <= row["mean"] <= row["high"]


def test_summary_json_holds_differences_and_isp_changes_without_nan(run):
    text = (run.run_dir / "summary.json").read_text()
    summary = json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} in summary.json"))
    assert summary["interval"]["method"].startswith("Student t-interval")
    assert len(summary["differences"]) == 8  # 4 comparisons x (final, pooled)
    assert summary["isp"] | {"final_change": None} == {
        "domains": "camera",
        "step_size": "domain-width",
        "isp_lr": 0.02,
        "final_change": None,
    }
    paper_demosaic = [r for r in summary["isp"]["final_change"] if r["param"] == "demosaic.kernel"]
    assert paper_demosaic and paper_demosaic[0]["max_relative_change"] is None


def test_report_shows_differences_trajectories_and_the_paper_protocol(run):
    report = (run.run_dir / "report.md").read_text()
    assert "## Paired differences between arms" in report
    assert "Student t-interval over folds" in report
    assert "| 1 | learned − frozen | final |" in report
    assert "## Learned ISP parameters" in report
    assert "github.com/aiaudit-org/raw2logit" in report
    assert (run.run_dir / "figures" / "isp_trajectory.png").stat().st_size > 0
    assert not (run.run_dir / "figures" / "isp_calibration_error.png").exists()


def test_bootstrap_intervals_are_a_report_setting_that_does_not_recompute_cells(run):
    config = copy.deepcopy(CONFIG)
    config["summary"] = {"interval": "bootstrap", "bootstrap_samples": 500, "seed": 3}
    again = run_optimization(config, out=run.run_dir)
    assert (again.cells_reused, again.cells_computed) == (10, 0)
    differences = pd.read_csv(run.run_dir / "differences.csv")
    assert set(differences["method"]) == {"bootstrap"}
    run_optimization(copy.deepcopy(CONFIG), out=run.run_dir)  # back to t for the other tests


def _forge(run_dir, key: str, change) -> None:
    """Edit a cell's isp.json and the checksum its record holds (a consistent forgery)."""
    path = run_dir / "models" / f"{key}.isp.json"
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))
    record_path = run_dir / "cells" / f"{key}.json"
    record = json.loads(record_path.read_text())
    record["files"][f"models/{key}.isp.json"] = hashlib.sha256(path.read_bytes()).hexdigest()
    record_path.write_text(json.dumps(record))


def test_a_forged_isp_record_is_refused_when_the_report_is_rebuilt(run, tmp_path):
    import shutil

    copy_dir = tmp_path / "copy"
    shutil.copytree(run.run_dir, copy_dir)
    _forge(copy_dir, "i1__learned__fold1", lambda d: d["trajectory"].pop())
    with pytest.raises(RunDirError, match=r"i1__learned__fold1.*trajectory epochs \[0, 1\]"):
        rebuild_report(OPTIMIZE, copy_dir, get_registry())


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda d: d.pop("final"), "missing 'final'"),
        (lambda d: d.update(fold=1), r"belongs to intensity 1.0, mode 'learned', fold 1"),
        (lambda d: d["final"].update({"gamma.gamma": float("nan")}), r"final\['gamma.gamma'\]"),
        (lambda d: d["final"].update({"gamma.gamma": [2.2, 2.3]}), "other parameters or shapes"),
        (lambda d: d["trajectory"][1]["values"].pop("gamma.gamma"), "epoch 1 holds other"),
        (lambda d: d["initial"].update({"gamma.gamma": "high"}), "not an array of numbers"),
    ],
)
def test_check_isp_record_refuses_damaged_content(change, match):
    values = {"gamma.gamma": 2.2, "white_balance.gains": [1.0, 1.0, 1.0]}
    data = {
        "intensity": 1.0,
        "mode": "learned",
        "fold": 0,
        "initial": dict(values),
        "final": dict(values),
        "trajectory": [{"epoch": e, "values": dict(values)} for e in range(3)],
    }
    check_isp_record(
        copy.deepcopy(data), "x.isp.json", intensity=1.0, mode="learned", fold=0, epochs=2
    )
    change(data)
    with pytest.raises(ValueError, match=match):
        check_isp_record(data, "x.isp.json", intensity=1.0, mode="learned", fold=0, epochs=2)
