"""Hostile and careless input to the run commands (issue 13): size limits before
allocation, unwritable output, ``~`` in paths, optional extras, camera choice,
attack options from the config."""

from __future__ import annotations

import copy
import sys

import pytest
import tomli_w
from click.testing import CliRunner

from driftlab.cli import main
from driftlab.errors import ConfigError, ExtraMissingError
from driftlab.synthesis import run_synthesis

TINY = {
    "dataset": {"name": "embedded-smear", "options": {"n_items": 40, "size": 16}},
    "pipelines": {"train": ["bi,s,ga"], "test": ["bi,s,ga"]},
    "corruptions": {"names": ["identity"]},
    "model": {"name": "small-cnn", "options": {"width": 4}},
    "training": {"epochs": 1, "batch_size": 8, "folds": 2},
    "report": {"bootstrap": 0},
    "run": {"workers": 0, "progress": False, "device": "cpu"},
}


def _with(**changes) -> dict:
    data = copy.deepcopy(TINY)
    for dotted, value in changes.items():
        section, key = dotted.split("__")
        data.setdefault(section, {})[key] = value
    return data


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"n_items": 10**9, "size": 16}, "n_items = 1000000000 exceeds the limit"),
        ({"n_items": 40, "size": 10**6}, "size = 1000000 exceeds the limit"),
    ],
)
def test_memory_bombs_in_generated_dataset_options_are_refused(tmp_path, options, message):
    with pytest.raises(ConfigError, match=message):
        run_synthesis(_with(dataset__options=options), out=tmp_path / "never")
    assert not (tmp_path / "never").exists()


def test_unwritable_output_folder_is_a_clear_error_not_a_traceback(tmp_path, monkeypatch):
    from pathlib import Path

    locked = tmp_path / "locked"
    real_mkdir = Path.mkdir

    def read_only(self, *args, **kwargs):  # as a read-only filesystem answers (root included)
        if str(self).startswith(str(locked)):
            raise PermissionError(13, "Permission denied", str(self))
        return real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", read_only)
    config = tmp_path / "c.toml"
    config.write_text(tomli_w.dumps(TINY))
    result = CliRunner().invoke(main, ["synthesize", str(config), "--out", str(locked / "run")])
    assert result.exit_code == 3, result.output
    assert "Traceback" not in result.output and "cannot create the run directory" in result.output


def test_full_disk_while_writing_is_a_clear_error_not_a_traceback(tmp_path, monkeypatch):
    import driftlab.atomic as atomic

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device", str(tmp_path / "run" / "config.toml"))

    monkeypatch.setattr(atomic.os, "replace", full)
    config = tmp_path / "c.toml"
    config.write_text(tomli_w.dumps(TINY))
    result = CliRunner().invoke(main, ["synthesize", str(config), "--out", str(tmp_path / "run")])
    assert result.exit_code == 3, result.output
    assert "No space left on device" in result.output and "Traceback" not in result.output


def test_tilde_in_config_paths_is_expanded(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    result = run_synthesis(_with(run__out="~/runs/tilde"))
    assert result.run_dir == tmp_path / "runs" / "tilde"


def test_missing_cma_extra_names_the_extra(monkeypatch):
    from driftlab.errors import require_extra

    monkeypatch.setitem(sys.modules, "cma", None)  # what an absent package looks like to import
    with pytest.raises(ExtraMissingError, match=r"pip install 'driftlab\[cma\]'"):
        require_extra("cma", "cma", "the CMA-ES search")


def test_run_config_chooses_the_camera_profile(tmp_path):
    import json

    result = run_synthesis(_with(dataset__camera="raw-drone"), out=tmp_path / "run")
    manifest = json.loads((result.run_dir / "manifest.json").read_text())
    assert manifest["dataset"]["camera"]["name"] == "raw-drone"
    assert manifest["dataset"]["camera"]["cfa"] == "RGGB"  # embedded-smear's own is GRBG
    with pytest.raises(ConfigError, match=r"\[dataset\].camera: unknown camera profile 'rw-drone'"):
        run_synthesis(_with(dataset__camera="rw-drone"), out=tmp_path / "never")
    # a profile the generator cannot use is a configuration error, not a traceback
    with pytest.raises(ConfigError, match=r"\[dataset\]: item .* needs its gain"):
        run_synthesis(_with(dataset__camera="openisp"), out=tmp_path / "never")
    assert not (tmp_path / "never").exists()


def test_attack_options_come_from_the_config(tmp_path):
    from driftlab.attacks.base import AttackSpec
    from driftlab.forensics import run_forensics
    from driftlab.hookspecs import hookimpl
    from driftlab.registry import Registry

    seen = []

    def nudge(problem, space, settings, *, step=0.1):
        seen.append(step)
        return space.defaults(), [0.0]

    class Plugin:
        @hookimpl
        def driftlab_attacks(self):
            return [AttackSpec(name="nudge", doc="test", function=nudge, needs_gradients=False,
                               options={"step": "how far"})]  # fmt: skip

    registry = Registry.load(extra=[("nudge-plugin", Plugin())])
    synth = run_synthesis(TINY, out=tmp_path / "synth", registry=registry)
    config = {
        "model": {"run": str(synth.run_dir), "train_pipeline": "bi,s,ga"},
        "split": {"max_items": 4},
        "attacks": {"names": ["nudge"], "lambdas": [0.0], "options": {"nudge": {"step": 0.25}}},
        "signature": {"enabled": False},
        "run": {"progress": False, "device": "cpu", "workers": 0},
    }
    run_forensics(config, out=tmp_path / "fo", registry=registry)
    assert seen == [0.25]
    config["attacks"]["options"] = {"nudge": {"stpe": 0.25}}
    with pytest.raises(ConfigError, match=r"did you mean 'step'\?"):
        run_forensics(config, out=tmp_path / "fo2", registry=registry)
    assert not (tmp_path / "fo2").exists()


def test_camera_profile_supplies_stage_parameters_keyed_slot_param():
    from driftlab.camera import CameraParams
    from driftlab.pipeline import SpecError, get_pipeline, resolve
    from driftlab.registry import get_registry

    registry = get_registry()
    camera = CameraParams(name="lab-cam", params={"gamma.gamma": 2.4, "denoise.sigma": 0.7})
    resolved = resolve(get_pipeline("bi,s,ga"), camera, registry)
    values = {s.spec.slot: s.values for s in resolved.stages}
    assert float(values["gamma"]["gamma"]) == 2.4 and float(values["denoise"]["sigma"]) == 0.7
    # the pipeline's own value wins over the profile's
    spec = get_pipeline("bi,s,ga").to_dict()
    for stage in spec["stages"]:
        if stage["slot"] == "gamma":
            stage["params"] = {"gamma": 2.0}
    from driftlab.pipeline import PipelineSpec

    own = resolve(PipelineSpec.from_dict(spec), camera, registry)
    assert float(next(s.values["gamma"] for s in own.stages if s.spec.slot == "gamma")) == 2.0
    typo = CameraParams(name="typo-cam", params={"gamma.gama": 2.4})
    with pytest.raises(SpecError, match=r"params key 'gamma.gama'.*did you mean 'gamma'"):
        resolve(get_pipeline("bi,s,ga"), typo, registry)
    with pytest.raises(ValueError, match=r"must be 'slot.param'"):
        CameraParams(name="bad", params={"gamma": 2.4})
