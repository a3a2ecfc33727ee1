"""Drift audits: a frozen model evaluated, never trained, under ISP pipelines and corruptions."""

from __future__ import annotations

import copy
import json
import warnings

import numpy as np
import pytest
import tomli_w
import torch
from click.testing import CliRunner

from driftlab.audit import run_audit
from driftlab.cli import main
from driftlab.configtools import ConfigError
from driftlab.corruptions.apply import apply_corruption_batch
from driftlab.engine.cell import isolated_state
from driftlab.engine.rundir import RunDir
from driftlab.models import InputContract, SmallCNN, SmallUNet
from driftlab.naming import cell_key, derive_seed
from driftlab.pipeline import build_static, expand_pipeline_names
from driftlab.synthesis import run_synthesis
from driftlab.train import TrainConfig, fit
from driftlab.verdicts.evidence import CELL_COLUMNS, condition_label
from tests.helpers import builtin_registry
from tests.model_files import save_state_dict, save_torchscript

REGISTRY = builtin_registry()
MEAN = (0.45, 0.4, 0.5)
STD = (0.2, 0.25, 0.2)
DATA = {"name": "embedded-smear", "options": {"n_items": 40, "size": 32, "seed": 3}}
TESTS = ["ma,s,me", "me,u,ga"]
CORRUPTIONS = {
    "names": ["identity", "gaussian_noise", "contrast"],
    "severities": [1, 3],
    "family": "cifar-c",
}


def _views(dataset, pipeline: str) -> np.ndarray:
    """Hand-rendered ``(N, 3, H, W)`` float32 views (no cache)."""
    (spec,) = expand_pipeline_names([pipeline])
    pipe = build_static(spec, dataset.spec.camera, REGISTRY)
    return np.stack([pipe(dataset[i].raw) for i in range(len(dataset))]).astype(np.float32)


@pytest.fixture(scope="module")
def scripted_model(tmp_path_factory):
    """A small CNN trained briefly on normalised bi,s,ga views, saved as TorchScript."""
    train = REGISTRY.get("datasets", "embedded-smear").open(
        None, registry=REGISTRY, n_items=80, size=32, seed=11
    )
    views = _views(train, "bi,s,ga")
    mean = np.asarray(MEAN, np.float32)[None, :, None, None]
    std = np.asarray(STD, np.float32)[None, :, None, None]
    torch.manual_seed(0)
    model = SmallCNN(5, width=8)
    config = TrainConfig(epochs=4, batch_size=16, lr=3e-3, seed=0, device="cpu")
    fit(model, (views - mean) / std, train.labels, "classification", config)
    path = tmp_path_factory.mktemp("model") / "model.ts"
    return save_torchscript(model.eval(), path)


def _config(weights, **sections) -> dict:
    config = {
        "dataset": copy.deepcopy(DATA),
        "model": {
            "weights": str(weights),
            "train_pipeline": "bi,s,ga",
            "mean": list(MEAN),
            "std": list(STD),
        },
        "pipelines": {"test": list(TESTS)},
        "corruptions": copy.deepcopy(CORRUPTIONS),
        "run": {"workers": 0, "progress": False, "device": "cpu"},
    }
    for name, table in sections.items():
        config[name] = table
    return config


@pytest.fixture(scope="module")
def audit_run(scripted_model, tmp_path_factory):
    out = tmp_path_factory.mktemp("audit") / "run"
    return run_audit(_config(scripted_model), out=out, registry=REGISTRY)


def _records(run_dir):
    run = RunDir(run_dir)
    out = {}
    for path in sorted((run_dir / "cells").glob("*.json")):
        record = run.read_cell(path.stem, CELL_COLUMNS)
        out[path.stem] = record
    return out


def _hand_predictions(model_path, views: np.ndarray) -> np.ndarray:
    """The hand-written loop: normalise, forward, top-1 class."""
    with warnings.catch_warnings():  # torch.jit.load is deprecated upstream
        warnings.simplefilter("ignore", FutureWarning)
        model = torch.jit.load(str(model_path))
    with isolated_state(threads=1), torch.no_grad():
        x = torch.from_numpy(views)
        mean = torch.tensor(MEAN, dtype=torch.float32).view(1, 3, 1, 1)
        std = torch.tensor(STD, dtype=torch.float32).view(1, 3, 1, 1)
        return model((x - mean) / std).argmax(dim=1).numpy()


def test_torchscript_audit_equals_a_hand_written_evaluation_loop(audit_run, scripted_model):
    dataset = REGISTRY.get("datasets", "embedded-smear").open(
        None, registry=REGISTRY, **DATA["options"]
    )
    labels = dataset.labels
    results = audit_run.results
    expected = {}
    for pipeline in ["bi,s,ga", *TESTS]:
        expected[("isp", pipeline, 0)] = _hand_predictions(
            scripted_model, _views(dataset, pipeline)
        )
    reference = _views(dataset, "bi,s,ga")
    for name, severities in (("identity", [0]), ("gaussian_noise", [1, 3]), ("contrast", [1, 3])):
        for severity in severities:
            seeds = [derive_seed(0, name, severity, i) for i in dataset.ids]
            corrupted = apply_corruption_batch(
                reference, name, max(severity, 1), seeds, clip=True, registry=REGISTRY,
                family="cifar-c",
            )  # fmt: skip
            expected[("corruption", name, severity)] = _hand_predictions(scripted_model, corrupted)
    assert len(results) == len(expected) == 3 + 1 + 2 + 2
    for (kind, name, severity), pred in expected.items():
        row = results[
            (results["test_kind"] == kind)
            & (results["test_condition"] == name)
            & (results["severity"] == severity)
        ]
        assert len(row) == 1
        assert row["value"].iloc[0] == float(np.mean(pred == labels)), (kind, name, severity)
    # the per-item predictions kept in the cells are the hand-written loop's
    found = {}
    for record in _records(audit_run.run_dir).values():
        for i, label in enumerate(record.info["conditions"]):
            found[label] = record.arrays[f"c{i}.pred"]
    for (kind, name, severity), pred in expected.items():
        np.testing.assert_array_equal(found[condition_label(kind, name, severity)], pred)
    # the model learned something, so the comparison is not between constant predictions
    assert len(np.unique(expected[("isp", "bi,s,ga", 0)])) > 1


def test_records_follow_the_synthesis_cell_conventions(audit_run):
    from driftlab.audit.experiment import AUDIT
    from driftlab.synthesis.experiment import SYNTHESIS

    assert AUDIT.columns is SYNTHESIS.columns is CELL_COLUMNS  # one schema, one definition
    records = _records(audit_run.run_dir)
    # one cell per test pipeline and one per corruption
    expected = [cell_key("isp", p) for p in ("bi,s,ga", *TESTS)]
    expected += [cell_key("corruption", n) for n in CORRUPTIONS["names"]]
    assert sorted(records) == sorted(expected)
    ids = audit_run.summary["audit"]["items"]
    labels = []
    for record in records.values():
        info = record.info
        assert info["train_pipeline"] == "bi,s,ga" and info["fold"] == 0
        assert len(info["test_ids"]) == ids
        assert set(record.rows["train_pipeline"]) == {"bi,s,ga"}
        assert set(record.rows["fold"]) == {0}
        assert record.arrays["targets"].dtype == np.int64
        for i in range(len(info["conditions"])):
            assert record.arrays[f"c{i}.pred"].shape == (ids,)
        labels += info["conditions"]
    assert sorted(labels) == sorted(
        ["isp:bi,s,ga", "isp:ma,s,me", "isp:me,u,ga", "corruption:identity",
         "corruption:gaussian_noise@1", "corruption:gaussian_noise@3", "corruption:contrast@1",
         "corruption:contrast@3"]
    )  # fmt: skip
    assert not list(audit_run.run_dir.glob("models/*"))  # nothing is trained or saved


def test_summary_report_and_resumption(audit_run, scripted_model):
    summary = json.loads((audit_run.run_dir / "summary.json").read_text())
    assert summary["train_pipelines"] == ["bi,s,ga"]
    assert summary["audit"]["reference_pipeline"] == "bi,s,ga"
    assert summary["audit"]["model"].startswith("model, torchscript")
    assert summary["audit"]["contract"]["mean"] == list(MEAN)
    results = audit_run.results
    diagonal = results[(results["test_kind"] == "isp") & (results["test_condition"] == "bi,s,ga")]
    assert summary["audit"]["reference_score"] == diagonal["value"].iloc[0]
    report = (audit_run.run_dir / "report.md").read_text()
    assert "Drift audit report" in report and "Audited model" in report
    assert "is trained on the views" not in report
    assert (audit_run.run_dir / "report.html").is_file()
    assert (audit_run.run_dir / "figures" / "isp_heatmap.png").is_file()
    again = run_audit(_config(scripted_model), out=audit_run.run_dir, registry=REGISTRY)
    assert again.cells_reused == 6 and again.cells_computed == 0
    assert again.results.equals(audit_run.results)


def test_cli_audit_and_report(scripted_model, tmp_path):
    config = _config(scripted_model, pipelines={"test": ["ma,s,me"]},
                     corruptions={"names": ["identity", "contrast"], "severities": [1]})  # fmt: skip
    path = tmp_path / "audit.toml"
    path.write_text(tomli_w.dumps(config))
    out = tmp_path / "run"
    result = CliRunner().invoke(main, ["audit", str(path), "--out", str(out), "--json", "--quiet"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["kind"] == "audit" and data["cells"]["computed"] == 4
    assert data["summary"]["audit"]["reference_pipeline"] == "bi,s,ga"
    text = CliRunner().invoke(main, ["audit", str(path), "--out", str(out), "--quiet"])
    assert text.exit_code == 0, text.output
    assert "reference pipeline bi,s,ga" in text.output
    assert "lowest under corruptions" in text.output
    rebuilt = CliRunner().invoke(main, ["report", str(out)])
    assert rebuilt.exit_code == 0, rebuilt.output
    assert "report_html" in rebuilt.output or "report.html" in rebuilt.output


def test_audit_of_a_synthesis_model_reproduces_its_numbers(tmp_path):
    """A model trained by synthesis on a fixed test set, audited on that set: same numbers."""
    test = {"options": {"n_items": 24, "seed": 9}}
    corruptions = {"names": ["identity", "gaussian_noise"], "severities": [3]}
    synthesis = run_synthesis(
        {
            "dataset": copy.deepcopy(DATA),
            "pipelines": {"train": ["bi,s,ga"], "test": ["bi,s,ga", "ma,s,me"]},
            "corruptions": corruptions,
            "model": {"name": "small-cnn", "options": {"width": 8}},
            "training": {"epochs": 2, "batch_size": 16, "lr": 3e-3, "folds": 1, "seed": 4},
            "test": test,
            "run": {"workers": 0, "progress": False, "device": "cpu"},
        },
        out=tmp_path / "synthesis",
        registry=REGISTRY,
    )
    weights = tmp_path / "synthesis" / "models" / "bi,s,ga__fold0.pt"
    audit = run_audit(
        {
            "dataset": copy.deepcopy(DATA),
            "test": test,
            "model": {
                "weights": str(weights), "name": "small-cnn", "options": {"width": 8},
                "train_pipeline": "bi,s,ga",
            },
            "pipelines": {"test": ["ma,s,me"]},
            "corruptions": {**corruptions, "seed": 4},
            "run": {"workers": 0, "progress": False, "device": "cpu"},
        },
        out=tmp_path / "audit",
        registry=REGISTRY,
    )  # fmt: skip
    keys = ["test_kind", "test_condition", "severity"]
    a = synthesis.results.sort_values(keys).reset_index(drop=True)[[*keys, "value"]]
    b = audit.results.sort_values(keys).reset_index(drop=True)[[*keys, "value"]]
    assert a.equals(b)
    assert "stored normalisation" in audit.summary["audit"]["model"]


def test_segmentation_audit_resizes_views_and_masks_through_the_contract(tmp_path):
    torch.manual_seed(1)
    weights = save_state_dict(SmallUNet(1, width=4).eval(), tmp_path / "unet.pt")
    config = {
        "dataset": {"name": "embedded-aerial", "options": {"n_items": 6, "size": 32}},
        "model": {
            "weights": str(weights), "name": "small-unet", "options": {"width": 4},
            "train_pipeline": "bi,s,ga", "size": [48, 48], "value_range": [0, 2],
        },
        "pipelines": {"test": ["bi,s,ga"]},
        "corruptions": {"names": ["contrast"], "severities": [5]},
        "run": {"workers": 0, "progress": False, "device": "cpu"},
    }  # fmt: skip
    result = run_audit(config, out=tmp_path / "run", registry=REGISTRY)
    assert set(result.results["metric"]) == {"iou"}
    dataset = REGISTRY.get("datasets", "embedded-aerial").open(
        None, registry=REGISTRY, n_items=6, size=32
    )
    contract = InputContract(train_pipeline="bi,s,ga", size=48, value_range=(0, 2))
    masks = contract.apply_masks(np.stack([dataset[i].target for i in range(6)]))
    assert masks.shape == (6, 48, 48)
    model = SmallUNet(1, width=4)
    model.load_state_dict(torch.load(weights, weights_only=True))
    with isolated_state(threads=1), torch.no_grad():
        logits = model.eval()(contract.apply(_views(dataset, "bi,s,ga"))).numpy()
    pred = logits[:, 0] > 0
    inter = np.logical_and(pred, masks > 0).sum(axis=(1, 2))
    union = np.logical_or(pred, masks > 0).sum(axis=(1, 2))
    record = _records(result.run_dir)["isp__bi,s,ga"]
    np.testing.assert_array_equal(record.arrays["c0.inter"], inter)
    np.testing.assert_array_equal(record.arrays["c0.union"], union)
    assert "targets" not in record.arrays


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda c: c["model"].pop("train_pipeline"), r"\[model\]: missing required key 'train_pipeline'"),
        (lambda c: c["model"].update(train_pipeline="bi,s,gx"), r"\[model\].train_pipeline"),
        (lambda c: c["model"].pop("std"), r"mean is set but std is not"),
        (lambda c: c["model"].update(means=[0.5]), r"unknown key 'means' \(did you mean 'mean'\?\)"),
        (lambda c: c["model"].update(name="small-cnn"), r"TorchScript archive.*remove \[model\] name"),
        (lambda c: c["model"].update(size=[0, 4]), r"size must be"),
        (lambda c: c["pipelines"].update(test=["bi,s,gz"]), r"\[pipelines\].test"),
        (lambda c: c["corruptions"].update(severities=[7]), r"\[corruptions\].severities"),
        (lambda c: c["corruptions"].update(names=["gausian_noise"]), r"did you mean 'gaussian_noise'"),
        (lambda c: c["dataset"].update(name="embedded-aerial"), r"gives .* for a|outputs per"),
        (lambda c: c["test"].update(split="val"), r"\[test\].split: dataset 'embedded-smear' has no named splits"),
    ],
)  # fmt: skip
def test_config_errors_fail_before_any_work(scripted_model, tmp_path, change, message):
    config = _config(scripted_model, test={})
    change(config)
    out = tmp_path / "never"
    with pytest.raises(ConfigError, match=message):
        run_audit(config, out=out, registry=REGISTRY)
    assert not out.exists()


def test_weights_of_another_class_count_are_refused_in_one_line(tmp_path):
    weights = save_torchscript(SmallCNN(3, width=4).eval(), tmp_path / "three.ts")
    config = _config(weights)
    with pytest.raises(ConfigError) as info:
        run_audit(config, out=tmp_path / "never", registry=REGISTRY)
    text = str(info.value)
    assert "gives 3 outputs per image but the dataset needs 5" in text and "\n" not in text
    state = save_state_dict(SmallCNN(5, width=4), tmp_path / "sd.pt")
    config = _config(state)
    with pytest.raises(ConfigError, match=r"set \[model\] name"):
        run_audit(config, out=tmp_path / "never", registry=REGISTRY)
    assert not (tmp_path / "never").exists()


def test_forensics_starts_from_the_audited_model(scripted_model, tmp_path):
    from driftlab.audit import forensics_model_table
    from driftlab.audit.config import AuditConfig
    from driftlab.forensics.config import ForensicsConfig
    from driftlab.forensics.plan import plan_forensics

    config = _config(scripted_model)
    with pytest.raises(ConfigError, match=r"does not read mean, std; give forensics"):
        forensics_model_table(AuditConfig.load(config))
    for key in ("mean", "std"):
        config["model"].pop(key)
    table = forensics_model_table(AuditConfig.load(config))
    assert table == {"weights": str(scripted_model), "train_pipeline": "bi,s,ga"}
    forensics = ForensicsConfig.load(
        {
            "model": table,
            "dataset": copy.deepcopy(DATA),
            "split": {"part": "all", "max_items": 4},
            "attacks": {"names": ["search"], "steps": 1},
            "run": {"workers": 0, "progress": False, "device": "cpu"},
        }
    )
    plan = plan_forensics(forensics, REGISTRY)
    assert plan.base.name == "bi,s,ga" and plan.model_info["weights"] == str(scripted_model)


def test_the_example_audit_config_runs(tmp_path):
    """examples/audit_quickstart.toml, pointed at a small synthesis model and shrunk."""
    from pathlib import Path

    from driftlab.audit.config import AuditConfig

    synthesis = run_synthesis(
        {
            "dataset": {"name": "embedded-smear", "options": {"n_items": 40, "size": 48}},
            "pipelines": {"train": ["bi,s,ga"], "test": ["bi,s,ga"]},
            "corruptions": {"names": ["identity"]},
            "model": {"name": "small-cnn"},
            "training": {"epochs": 1, "folds": 2},
            "run": {"workers": 0, "progress": False, "device": "cpu"},
        },
        out=tmp_path / "synthesis",
        registry=REGISTRY,
    )
    example = Path(__file__).resolve().parents[1] / "examples" / "audit_quickstart.toml"
    overrides = [
        f"model.weights='{synthesis.run_dir / 'models' / 'bi,s,ga__fold0.pt'}'",
        "test.options={ seed = 1, n_items = 10 }",
        "pipelines.test=['bi,s,ga', 'ma,u,me']",
        "corruptions.names=['identity', 'gaussian_blur']",
        "corruptions.severities=[5]",
        "run.workers=0",
        "run.progress=false",
    ]
    config = AuditConfig.load(example, overrides)
    assert config.model.train_pipeline == "bi,s,ga" and config.pipelines.test
    result = run_audit(config, out=tmp_path / "audit", registry=REGISTRY)
    assert len(result.results) == 2 + 2
    assert result.summary["audit"]["items"] == 10


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_audit_agrees_with_the_cpu_audit(audit_run, scripted_model, tmp_path):
    result = run_audit(
        _config(scripted_model, run={"workers": 0, "progress": False, "device": "cuda"}),
        out=tmp_path / "cuda",
        registry=REGISTRY,
    )
    assert set(result.results["device"]) == {"cuda:0"}
    keys = ["test_kind", "test_condition", "severity"]
    cpu = audit_run.results.sort_values(keys).reset_index(drop=True)
    gpu = result.results.sort_values(keys).reset_index(drop=True)
    assert cpu[keys].equals(gpu[keys])
    # float results differ in the last bits between devices; top-1 classes almost never
    np.testing.assert_allclose(gpu["value"], cpu["value"], atol=2 / 40)


def test_audit_verdict_has_the_intervals_and_guards_of_synthesis(audit_run):
    summary = audit_run.summary
    low, high = summary["intervals"]["mean_diagonal"]
    assert low <= summary["mean_diagonal"] <= high
    assert "chance_level" in summary and "above_chance" in summary
    assert set(summary["top3_probability"]) == {"isp", "corruption"}
    assert "matrix.csv" in {p.name for p in audit_run.run_dir.iterdir()}


def _facts_plan(reference: str):
    from types import SimpleNamespace

    return SimpleNamespace(
        reference=SimpleNamespace(name=reference),
        dataset=[0] * 10,
        model=SimpleNamespace(description="model"),
        contract=InputContract(train_pipeline=reference),
        held_out=None,
    )


def _facts_results(values: dict[tuple[str, str, int], float], metric: str = "accuracy"):
    import pandas as pd

    return pd.DataFrame(
        [("bi,s,ga", 0, k, n, s, metric, v, "cpu") for (k, n, s), v in values.items()],
        columns=list(CELL_COLUMNS),
    )


def test_the_lowest_isp_score_is_a_drift_never_the_reference_column():
    """A model whose reference column is its worst reports the worst *other* pipeline."""
    from driftlab.audit.experiment import audit_facts

    results = _facts_results({
        ("isp", "bi,s,ga", 0): 0.40, ("isp", "ma,s,me", 0): 0.70, ("isp", "me,u,ga", 0): 0.55,
        ("corruption", "identity", 0): 0.10, ("corruption", "contrast", 3): 0.30,
    })  # fmt: skip
    summary = {"metric": "accuracy", "per_train_pipeline": {"bi,s,ga": {"diagonal": 0.40}}}
    facts = audit_facts(_facts_plan("bi,s,ga"), results, summary)
    assert facts["worst_isp"] == {"pipeline": "me,u,ga", "value": 0.55}
    assert facts["worst_corruption"] == {"corruption": "contrast", "severity": 3, "value": 0.30}
    assert facts["reference_score"] == 0.40 and facts["metric"] == "accuracy"
    only_reference = results[results["test_condition"] != "ma,s,me"]
    only_reference = only_reference[only_reference["test_condition"] != "me,u,ga"]
    facts = audit_facts(_facts_plan("bi,s,ga"), only_reference, summary)
    assert facts["worst_isp"] is None


def test_the_report_names_the_metric_its_numbers_are_in(audit_run, scripted_model, tmp_path):
    """[report] metric changes the numbers (rescored from the cells) and so every label."""
    import shutil

    out = tmp_path / "run"
    shutil.copytree(audit_run.run_dir, out)
    config = _config(scripted_model, report={"metric": "macro_f1", "bootstrap": 50})
    result = run_audit(config, out=out, registry=REGISTRY)
    assert result.cells_reused == 6 and result.cells_computed == 0
    facts = result.summary["audit"]
    assert result.summary["metric"] == facts["metric"] == "macro_f1"
    diagonal = result.results.query("test_kind == 'isp' and test_condition == 'bi,s,ga'")
    assert facts["reference_score"] == diagonal["value"].iloc[0]
    accuracy = audit_run.results.query("test_kind == 'isp' and test_condition == 'bi,s,ga'")
    assert facts["reference_score"] != accuracy["value"].iloc[0]  # the numbers did change
    report = (out / "report.md").read_text()
    assert "macro_f1 on the reference bi,s,ga" in report
    assert (
        "lowest macro_f1 under ISP drift" in report
        and "lowest macro_f1 under corruptions" in report
    )
    assert "accuracy on the reference" not in report


def test_reused_audit_cells_are_checked_against_the_plan(audit_run, scripted_model):
    import attrs

    from driftlab.audit.config import AuditConfig
    from driftlab.audit.experiment import AUDIT
    from driftlab.verdicts.records import CellRecordError

    plan = AUDIT.plan(AuditConfig.load(_config(scripted_model)), REGISTRY)
    records = _records(audit_run.run_dir)
    for record in records.values():
        AUDIT.check(plan, record)
    record = records[cell_key("corruption", "contrast")]
    rows = record.rows.copy()
    rows.loc[1, "value"] = 1.0 - rows.loc[1, "value"]
    with pytest.raises(CellRecordError, match=r"cell corruption__contrast: row 1 .* recomputed"):
        AUDIT.check(plan, attrs.evolve(record, rows=rows))
    pred = record.arrays["c0.pred"].copy()
    pred[0] = 5  # the audited model has five classes
    arrays = {**record.arrays, "c0.pred": pred}
    with pytest.raises(CellRecordError, match=r"'c0.pred'.*class indices in \[0, 5\)"):
        AUDIT.check(plan, attrs.evolve(record, arrays=arrays))
    # classes 0 and 1 swapped in targets and predictions: rows agree, targets are not the items'
    swap = np.array([1, 0, 2, 3, 4])
    relabelled = {name: swap[array] for name, array in record.arrays.items()}
    with pytest.raises(CellRecordError, match="'targets' differs from the test items'"):
        AUDIT.check(plan, attrs.evolve(record, arrays=relabelled))
    other = records[cell_key("isp", "ma,s,me")]
    with pytest.raises(CellRecordError, match=r"info 'conditions' \['isp:ma,s,me'\] differ"):
        AUDIT.check(plan, attrs.evolve(other, key=cell_key("isp", "me,u,ga")))
    with pytest.raises(CellRecordError, match="not a cell of this audit"):
        AUDIT.check(plan, attrs.evolve(other, key="isp__x"))
