"""Forensics runner: run directory, results, figures, report, resumption, config errors."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from driftlab.configtools import ConfigError
from driftlab.errors import RunDirError
from driftlab.forensics import load_forensics_config, run_forensics
from driftlab.forensics.runner import RESULT_COLUMNS
from driftlab.pipeline import get_pipeline, resolve
from driftlab.registry import get_registry
from driftlab.synthesis import run_synthesis

SYNTHESIS = {
    "dataset": {"name": "embedded-smear", "options": {"n_items": 40, "size": 32}},
    "pipelines": {"train": ["bi,s,ga"], "test": ["bi,s,ga"]},
    "corruptions": {"names": ["identity"]},
    "model": {"name": "small-cnn", "options": {"width": 8}},
    "training": {"epochs": 2, "folds": 2, "lr": 3e-3, "seed": 0},
    "run": {"workers": 1, "progress": False},
}


def forensics_config(run_dir, **changes) -> dict:
    config = {
        "model": {"run": str(run_dir), "train_pipeline": "bi,s,ga", "fold": 0},
        "split": {"max_items": 8},
        "attacks": {
            "names": ["penalty", "projected", "search"],
            "lambdas": [0.0, 1.0],
            "targets": [["all"]],
            "steps": 2,
            "lr": 0.1,
            "population": 2,
            "samples": 2,
        },
        "signature": {"enabled": False},
    }
    for key, value in changes.items():
        section, _, name = key.partition("__")
        config.setdefault(section, {})[name] = value
    return config


@pytest.fixture(scope="module")
def synthesis_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth") / "run"
    run_synthesis(SYNTHESIS, out=out)
    return out


@pytest.fixture(scope="module")
def forensics_run(synthesis_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("forensics") / "run"
    return run_forensics(forensics_config(synthesis_run), out=out), out


def test_run_directory_results_and_report(forensics_run):
    _, out = forensics_run
    for name in ("config.toml", "manifest.json", "results.csv", "report.md", "report.html"):
        assert (out / name).is_file(), name
    for name in ("metric_vs_lambda", "metric_vs_distance", "views", "gradient_maps"):
        assert (out / "figures" / f"{name}.png").stat().st_size > 1000, name
    table = pd.read_csv(out / "results.csv")
    assert list(table.columns) == list(RESULT_COLUMNS)
    assert len(table) == 3 * 2  # attacks x lambdas x one target set
    assert set(table["attack"]) == {"penalty", "projected", "search"}
    assert (table["attacked_metric"] <= table["clean_metric"]).all()
    assert table["clean_metric"].nunique() == 1
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["kind"] == "forensics"
    assert len(manifest["model"]["sha256"]) == 64
    report = (out / "report.md").read_text()
    assert "figures/gradient_maps.png" in report and "projected" in report


def test_final_values_inside_domains(forensics_run):
    result, _ = forensics_run
    camera = get_registry().get("datasets", "embedded-smear").camera
    resolved = resolve(get_pipeline("bi,s,ga"), camera)
    domains = {f"{s.name}.{k}": d for s in resolved.stages for k, d in s.domains.items()}
    for _, row in result.results.iterrows():
        values = json.loads(row["values"])
        assert values, row["attack"]
        for key, value in values.items():
            assert domains[key].contains(np.asarray(value)), (row["attack"], key)


def test_rerun_resumes_without_recomputing(forensics_run, synthesis_run):
    result, out = forensics_run
    again = run_forensics(forensics_config(synthesis_run), out=out)
    assert again.cells_computed == 0 and again.cells_reused == len(result.results)
    pd.testing.assert_frame_equal(again.results, result.results)


def test_other_config_in_same_directory_is_refused(forensics_run, synthesis_run):
    _, out = forensics_run
    with pytest.raises(RunDirError, match="different configuration"):
        run_forensics(forensics_config(synthesis_run, attacks__steps=3), out=out)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"attacks__lamdas": [0.0]}, "did you mean 'lambdas'"),
        ({"attacks__names": ["penalti"]}, "did you mean 'penalty'"),
        ({"attacks__targets": [["gama"]]}, "did you mean 'gamma'"),
        ({"attacks__similarity": "psnr"}, "similarity"),
        ({"model__fold": 7}, "no finished model for train pipeline 'bi,s,ga' fold 7"),
        ({"pipeline__base": "bi,s,gx"}, "pipeline"),
        ({"split__part": "validation"}, "split].part"),
    ],
)
def test_config_errors_name_the_key(synthesis_run, tmp_path, changes, message):
    out = tmp_path / "never"
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("(", r"\(")):
        run_forensics(forensics_config(synthesis_run, **changes), out=out)
    assert not out.exists()  # checked before any work


def test_examined_items_are_the_runs_own_held_out_fold(synthesis_run):
    """Keys left out of [dataset] take the run's values: the model is examined on the items
    its fold held out, not on a dataset generated with default options."""
    from driftlab.datasets.splits import dataset_folds
    from driftlab.engine.planning import open_dataset
    from driftlab.forensics.plan import _dataset_section, plan_forensics, read_run_config

    registry = get_registry()
    config = load_forensics_config(forensics_config(synthesis_run, split__max_items=1000))
    plan = plan_forensics(config, registry)
    assert plan.data_info["options"] == SYNTHESIS["dataset"]["options"]
    run_cfg = read_run_config(str(synthesis_run))
    _, dataset = open_dataset(_dataset_section(config, run_cfg), registry)
    assert len(dataset) == SYNTHESIS["dataset"]["options"]["n_items"]
    fold = dataset_folds(dataset, n_splits=SYNTHESIS["training"]["folds"], seed=0)[0]
    assert plan.data_info["ids"] == [dataset.ids[i] for i in np.sort(fold.test)]
    # a key given in the config wins; another dataset inherits nothing of the run's
    given = load_forensics_config(
        forensics_config(synthesis_run, dataset__intensity=0.5, dataset__options={"size": 24})
    )
    section = _dataset_section(given, run_cfg)
    assert (section.intensity, section.options) == (0.5, {"size": 24})
    other = load_forensics_config(forensics_config(synthesis_run, dataset__name="other-set"))
    section = _dataset_section(other, run_cfg)
    assert (section.name, section.intensity, section.options) == ("other-set", 1.0, {})
    # the run's camera too: the items are rendered for the camera the model was trained on
    with_camera = {**run_cfg, "dataset": {**run_cfg["dataset"], "camera": "openisp"}}
    section = _dataset_section(config, with_camera)
    assert section.camera == "openisp"
    assert open_dataset(section, registry)[1].spec.camera.name == "openisp"
    assert _dataset_section(other, with_camera).camera is None
    own = load_forensics_config(forensics_config(synthesis_run, dataset__camera="identity"))
    assert _dataset_section(own, with_camera).camera == "identity"


def test_gradient_attack_on_static_only_pipeline_is_refused(synthesis_run, tmp_path):
    # every paper data model has both forms: use a stage with a static form only
    base = tmp_path / "low_light.toml"
    base.write_text(
        'name = "low-light"\n[[stages]]\nslot = "black_level"\n'
        '[[stages]]\nslot = "illumination"\nvariant = "poisson"\nparams = { ratio = 0.5 }\n'
        '[[stages]]\nslot = "demosaic"\nvariant = "bilinear"\n[[stages]]\nslot = "gamma"\n'
    )
    config = forensics_config(synthesis_run, pipeline__base=str(base))
    with pytest.raises(ConfigError, match="needs gradients"):
        run_forensics(config, out=tmp_path / "never")


def test_model_from_weights_file(synthesis_run, tmp_path):
    config = {
        "model": {
            "name": "small-cnn",
            "options": {"width": 8},
            "weights": str(synthesis_run / "models" / "bi,s,ga__fold0.pt"),
        },
        "dataset": {"name": "embedded-smear", "options": {"n_items": 40, "size": 32}},
        "split": {"part": "all", "max_items": 6},
        "pipeline": {"base": "bi,s,ga"},
        "attacks": {"names": ["projected"], "lambdas": [0.0], "targets": ["gamma"], "steps": 1},
        "signature": {"enabled": False},
    }
    result = run_forensics(config, out=tmp_path / "run")
    assert len(result.results) == 1
    assert result.results.loc[0, "targets"] == "gamma"
    assert set(json.loads(result.results.loc[0, "values"])) == {"gamma.gamma"}


def test_missing_model_source_is_reported():
    with pytest.raises(ConfigError, match="run \\+ train_pipeline"):
        load_forensics_config({"model": {"name": "small-cnn"}})


def test_cli_reports_config_errors(synthesis_run, tmp_path):
    import tomli_w
    from click.testing import CliRunner

    from driftlab.cli import main

    config = tmp_path / "forensics.toml"
    config.write_text(tomli_w.dumps(forensics_config(synthesis_run)))
    result = CliRunner().invoke(
        main, ["forensics", str(config), "--out", str(tmp_path / "o"), "--set", "attacks.stpes=3"]
    )
    assert result.exit_code != 0
    assert "did you mean 'steps'" in result.output
