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
        (lambda d: d["initial"].update({"gamma.gamma": True}), "not an array of numbers"),
        (lambda d: d["initial"].update({"gamma.gamma": [[1.0], [1.0, 2.0]]}), "not an array"),
        (lambda d: d["initial"].update({"gamma.gamma": {"v": 2.2}}), "not an array of numbers"),
        (lambda d: d.update(intensity=None), "intensity must be a number, got None"),
        (lambda d: d.update(intensity="1.0"), "intensity must be a number"),
        (lambda d: d.update(intensity=10**400), "intensity must be a number"),
        (lambda d: d["initial"].update({"gamma.gamma": 10**400}), "not an array of numbers"),
        (lambda d: d.update(mode=["learned"]), "mode must be a string"),
        (lambda d: d.update(fold="0"), "fold must be an integer"),
        (lambda d: d.update(fold=0.0), "fold must be an integer"),
        (lambda d: d.update(fold=False), "fold must be an integer"),
        (lambda d: d.update(notes="x"), "unexpected key"),
        (lambda d: d.update(trajectory={"0": {}}), "trajectory must be a list"),
        (lambda d: d["trajectory"].__setitem__(1, [1, {}]), "entry 1 must be an object"),
        (lambda d: d["trajectory"][1].pop("values"), "entry 1 must be an object"),
        (lambda d: d["trajectory"][1].update(epoch="1"), "entry 1: epoch must be an integer"),
        (lambda d: d["trajectory"][2].update(values=None), "epoch 2 must be a non-empty"),
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


def test_check_isp_record_compares_parameters_with_the_cells_isp():
    values = {"gamma.gamma": 2.2, "white_balance.gains": [1.0, 1.0, 1.0]}
    data = {"intensity": 1.0, "mode": "frozen", "fold": 0, "initial": values, "final": values}
    known = {"gamma.gamma": (), "white_balance.gains": (3,)}
    check_isp_record(data, "x", intensity=1.0, mode="frozen", fold=0, epochs=2, parameters=known)
    wanted = r"x: initial holds parameters .*gains \(3,\), but this cell's ISP has .*gains \(4,\)"
    with pytest.raises(ValueError, match=wanted):
        check_isp_record(
            data,
            "x",
            intensity=1.0,
            mode="frozen",
            fold=0,
            epochs=2,
            parameters={"gamma.gamma": (), "white_balance.gains": (4,)},
        )


def _reseal(run_dir, relative: str, key: str, **record_changes) -> None:
    """Record the new checksum of ``relative`` (and other record fields) in cell ``key``'s
    record: the forgery is consistent, so only the content checks can catch it."""
    path = run_dir / relative
    record_path = run_dir / "cells" / f"{key}.json"
    record = json.loads(record_path.read_text())
    record["files"][relative] = hashlib.sha256(path.read_bytes()).hexdigest()
    record.update(record_changes)
    record_path.write_text(json.dumps(record))


@pytest.fixture
def copied(run, tmp_path):
    import shutil

    shutil.copytree(run.run_dir, tmp_path / "copy")
    return tmp_path / "copy"


def test_an_oversized_isp_record_is_refused_before_it_is_parsed(copied):
    key = "i1__learned__fold0"
    path = copied / "models" / f"{key}.isp.json"
    path.write_bytes(path.read_bytes() + b" " * (4 << 20))  # still valid JSON
    _reseal(copied, f"models/{key}.isp.json", key)
    with pytest.raises(RunDirError, match=rf"{key}: .*isp.json: \d+ bytes, more than"):
        rebuild_report(OPTIMIZE, copied, get_registry())


def test_an_isp_record_that_is_not_text_or_json_is_refused(copied):
    key = "i1__frozen__fold1"
    path = copied / "models" / f"{key}.isp.json"
    path.write_bytes(b"\xff\xfe{")
    _reseal(copied, f"models/{key}.isp.json", key)
    with pytest.raises(RunDirError, match=rf"{key}: .*not UTF-8 text.*delete {key}.json"):
        rebuild_report(OPTIMIZE, copied, get_registry())
    path.write_bytes(b'{"intensity": 1.0,')
    _reseal(copied, f"models/{key}.isp.json", key)
    with pytest.raises(RunDirError, match=rf"{key}: .*not JSON"):
        rebuild_report(OPTIMIZE, copied, get_registry())


def test_a_renamed_isp_parameter_is_refused_for_the_base_pipeline_arms(copied):
    key = "i1__frozen-bn__fold0"

    def rename(data):
        for part in (data["initial"], data["final"]):
            part["gamma.exponent"] = part.pop("gamma.gamma")

    _forge(copied, key, rename)
    with pytest.raises(RunDirError, match=rf"{key}: .*gamma.exponent \(\).*this cell's ISP has"):
        rebuild_report(OPTIMIZE, copied, get_registry())


def test_a_learning_arm_without_its_trajectory_is_refused(copied):
    key = "i1__paper__fold1"
    _forge(copied, key, lambda d: d.pop("trajectory"))
    with pytest.raises(RunDirError, match=rf"{key}: .*lacks the trajectory of the 'paper' arm"):
        rebuild_report(OPTIMIZE, copied, get_registry())


def test_an_isp_record_of_another_type_is_refused_with_the_documented_error(copied):
    key = "i1__learned__fold1"
    _forge(copied, key, lambda d: d.update(intensity=[1.0]))
    with pytest.raises(RunDirError, match=rf"{key}: .*intensity must be a number, got \[1.0\]"):
        rebuild_report(OPTIMIZE, copied, get_registry())


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (
            lambda rows: rows.assign(fold=1 - rows["fold"]),
            r"fold\(s\) \[1\], expected 'frozen' and 0",
        ),
        (lambda rows: rows.assign(intensity=0.5), r"intensity \[0.5\], expected 1"),
        (lambda rows: rows.assign(epoch=rows["epoch"].where(rows["epoch"] != 2, 1)), "epochs"),
        (lambda rows: rows.iloc[:-1], r"3 rows, expected 4"),
    ],
)
def test_rows_that_do_not_belong_to_their_cell_are_refused(copied, edit, match):
    key = "i1__frozen__fold0"
    relative = f"cells/{key}.csv"
    rows = edit(pd.read_csv(copied / relative))
    rows.to_csv(copied / relative, index=False)
    _reseal(copied, relative, key, rows=len(rows))
    with pytest.raises(RunDirError, match=rf"cell {key}: .*{match}.*delete {key}.json"):
        rebuild_report(OPTIMIZE, copied, get_registry())
