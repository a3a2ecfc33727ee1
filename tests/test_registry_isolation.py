"""Issue 13.7 (registry side) and 13.14/13.15: plugins that exit at import,
duplicate declarations as conflicts, the ``driftlab_pipelines`` hook, attack
options, precise hook return types."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import pytest

from driftlab.attacks.base import AttackSettings, AttackSpec, run_attack
from driftlab.hookspecs import hookimpl
from driftlab.pipeline import PipelineSpec, get_pipeline
from driftlab.registry import Registry, RegistryError
from driftlab.stages.base import StageSpec


def _gamma_power(registry: Registry) -> StageSpec:
    return registry.stage("gamma", "power")


class RedeclaresGamma:
    @hookimpl
    def driftlab_stages(self):
        builtin = _gamma_power(Registry.load(entry_points=False))
        return [StageSpec(slot="gamma", variant="power", doc="copy", static=builtin.static)]


def _write_distribution(site: Path, name: str, modules: dict[str, str]) -> None:
    info = site / f"{name.replace('-', '_')}-0.1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1.0\n")
    lines = "\n".join(f"{m} = {m}" for m in modules)
    (info / "entry_points.txt").write_text(f"[driftlab]\n{lines}\n")
    for module, source in modules.items():
        (site / f"{module}.py").write_text(textwrap.dedent(source))


def _cli(site: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": f"{site}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    return subprocess.run(
        [sys.executable, "-m", "driftlab.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )


def test_plugin_calling_sys_exit_at_import_is_isolated_and_named(tmp_path):
    (tmp_path / "exits_at_import.py").write_text("import sys\nsys.exit(3)\n")
    sys.path.insert(0, str(tmp_path))
    try:
        registry = Registry.load(entry_points=False, extra=[("quitter", "exits_at_import")])
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("exits_at_import", None)
    (error,) = registry.errors
    assert error.plugin == "quitter"
    assert error.message == "failed to load: SystemExit: the plugin called sys.exit(3)"
    assert "gamma" in registry.slots()  # the rest loaded


def test_plugin_calling_sys_exit_in_a_hook_is_isolated():
    class Exits:
        @hookimpl
        def driftlab_camera_profiles(self):
            sys.exit("no calibration")

    registry = Registry.load(entry_points=False, extra=[("exits-in-hook", Exits())])
    (error,) = registry.errors
    assert error.plugin == "exits-in-hook"
    assert "hook driftlab_camera_profiles raised SystemExit" in error.message
    assert "no calibration" in error.message


def test_keyboard_interrupt_in_a_plugin_still_interrupts():
    class Interrupted:
        @hookimpl
        def driftlab_stages(self):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        Registry.load(entry_points=False, extra=[("ctrl-c", Interrupted())])


def test_cli_commands_survive_a_plugin_that_exits_at_import(tmp_path):
    _write_distribution(
        tmp_path, "driftlab-quitter", {"quitter_plugin": "import sys\nsys.exit(3)\n"}
    )
    listed = _cli(tmp_path, "plugins")
    assert listed.returncode == 0, listed.stderr
    assert (
        "ERROR quitter_plugin (driftlab-quitter): failed to load: SystemExit: "
        "the plugin called sys.exit(3)" in listed.stdout
    )
    stages = _cli(tmp_path, "stages")
    assert stages.returncode == 0, stages.stderr
    assert "gamma.power" in stages.stdout


def test_duplicate_declaration_is_a_conflict_wherever_the_name_is_used():
    registry = Registry.load(entry_points=False, extra=[("gamma-copy", RedeclaresGamma())])
    (error,) = registry.errors
    assert error.plugin == "gamma-copy"
    assert "stage 'gamma.power' is declared by more than one plugin" in error.message
    assert "'driftlab.builtin.stages', 'gamma-copy'" in error.message
    assert registry.conflicts() == {
        "stages": {"gamma.power": ["driftlab.builtin.stages", "gamma-copy"]}
    }
    # the slot still exists: every use reports the conflict, never "unknown slot 'gamma'"
    assert "gamma" in registry.slots() and registry.variants("gamma") == ["power"]
    conflict = r"stage 'gamma.power' is declared by several plugins: 'driftlab.builtin.stages', 'gamma-copy'"
    for lookup in (
        lambda: registry.stage("gamma"),
        lambda: registry.stage("gamma", "power"),
        lambda: registry.get("stages", "gamma.power"),
        lambda: registry.owner("stages", "gamma.power"),
    ):
        with pytest.raises(RegistryError, match=conflict):
            lookup()
    from driftlab.pipeline import resolve

    camera = registry.camera("identity")
    with pytest.raises(Exception, match="declared by several plugins"):
        resolve(get_pipeline("bi,s,ga"), camera, registry)
    assert registry.stage("demosaic", "bilinear").key == "demosaic.bilinear"


def test_three_claimants_are_all_named():
    registry = Registry.load(
        entry_points=False,
        extra=[("copy-a", RedeclaresGamma()), ("copy-b", RedeclaresGamma())],
    )
    assert registry.conflicts("stages")["stages"]["gamma.power"] == [
        "driftlab.builtin.stages",
        "copy-a",
        "copy-b",
    ]
    with pytest.raises(RegistryError, match=r"'driftlab\.builtin\.stages', 'copy-a', 'copy-b'"):
        registry.stage("gamma")


GAMMA_COPY = """
from driftlab.hookspecs import hookimpl
from driftlab.stages.base import StageSpec

@hookimpl
def driftlab_stages():
    return [StageSpec(slot="gamma", variant="power", doc="copy", static=lambda x, ctx, gamma: x)]
"""


def test_plugins_command_shows_the_conflict(tmp_path):
    _write_distribution(tmp_path, "driftlab-gamma-copy", {"gamma_copy": GAMMA_COPY})
    listed = _cli(tmp_path, "plugins")
    assert listed.returncode == 0, listed.stderr
    assert (
        "CONFLICT stages 'gamma.power': declared by 'driftlab.builtin.stages', 'gamma_copy'"
        in listed.stdout
    )
    as_json = json.loads(_cli(tmp_path, "plugins", "--json").stdout)
    assert as_json["conflicts"] == {
        "stages": {"gamma.power": ["driftlab.builtin.stages", "gamma_copy"]}
    }


def test_pipelines_hook_registers_named_pipelines():
    shipped = PipelineSpec.from_dict(
        {**get_pipeline("bi,s,ga").to_dict(), "name": "acme-default", "description": "acme"}
    )

    class Ships:
        @hookimpl
        def driftlab_pipelines(self):
            return [shipped]

    registry = Registry.load(entry_points=False, extra=[("acme", Ships())])
    assert registry.errors == []
    assert registry.get("pipelines", "acme-default") is shipped
    assert registry.pipeline("acme-default") is shipped
    assert "acme-default" in registry.names("pipelines")
    assert registry.owner("pipelines", "bi,s,ga") == "driftlab.builtin.pipelines"
    assert len([n for n in registry.names("pipelines") if n.count(",") == 2]) == 12
    acme = next(p for p in registry.plugins if p.name == "acme")
    assert acme.provides == {"pipelines": ["acme-default"]}
    with pytest.raises(
        RegistryError, match=r"unknown pipeline 'acme-defualt' \(did you mean 'acme-default'\?\)"
    ):
        registry.get("pipelines", "acme-defualt")


def test_pipeline_reusing_a_builtin_name_is_a_conflict():
    class Reuses:
        @hookimpl
        def driftlab_pipelines(self):
            return [get_pipeline("bi,s,ga")]

    class Wrong:
        @hookimpl
        def driftlab_pipelines(self):
            return [{"name": "not-a-spec"}]

    registry = Registry.load(entry_points=False, extra=[("reuses", Reuses()), ("wrong", Wrong())])
    messages = {e.plugin: e.message for e in registry.errors}
    assert "pipeline 'bi,s,ga' is declared by more than one plugin" in messages["reuses"]
    assert "expected PipelineSpec instances" in messages["wrong"]
    with pytest.raises(RegistryError, match="declared by several plugins"):
        registry.get("pipelines", "bi,s,ga")


def tiny_problem():
    """An untrained 2-class model on four 16x16 mosaics through ``bi,s,ga``."""
    import numpy as np
    import torch
    from torch import nn

    from driftlab.attacks import AttackProblem
    from driftlab.pipeline import resolve

    registry = Registry.load(entry_points=False)
    resolved = resolve(get_pipeline("bi,s,ga"), registry.camera("identity"), registry)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 2, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    raw = np.random.default_rng(0).uniform(0.1, 0.9, (4, 16, 16)).astype(np.float32)
    return AttackProblem(model, resolved, raw, np.array([0, 1, 0, 1]), "classification")


def test_attack_options_are_declared_checked_and_passed():
    received = []

    def shift_gamma(problem, space, settings, *, shift=0.0):
        received.append(shift)
        values = space.defaults()
        values["gamma.gamma"] = values["gamma.gamma"] + shift
        return values, [problem.metric(values)]

    spec = AttackSpec(
        name="shift",
        doc="moves gamma by a fixed shift",
        function=shift_gamma,
        needs_gradients=False,
        options={"shift": "gamma change, unitless exponent (default 0)"},
    )
    assert spec.check_options(None) == {}
    assert spec.check_options({"shift": 0.1}) == {"shift": 0.1}
    with pytest.raises(ValueError, match=r"has no option 'shfit' \(did you mean 'shift'\?\)"):
        spec.check_options({"shfit": 0.1}, where="[attacks.options].shift")
    with pytest.raises(ValueError, match="expected a table"):
        spec.check_options([("shift", 1)])
    with pytest.raises(ValueError, match="Python identifiers"):
        AttackSpec(name="x", doc="x", function=shift_gamma, options={"not valid": "x"})

    problem = tiny_problem()
    run_attack(spec, problem, AttackSettings(steps=1), targets=["gamma"], options={"shift": 0.3})
    run_attack(spec, problem, AttackSettings(steps=1), targets=["gamma"])
    assert received == [0.3, 0.0]
    with pytest.raises(ValueError, match="has no option 'radius'"):
        run_attack(spec, problem, targets=["gamma"], options={"radius": 1})
    assert received == [0.3, 0.0]  # refused before the attack ran


def test_hook_specs_declare_precise_return_types_and_package_is_typed():
    import driftlab
    from driftlab import hookspecs

    expected = {
        "driftlab_stages": "list[StageSpec]",
        "driftlab_camera_profiles": "list[CameraParams]",
        "driftlab_datasets": "list[DatasetSpec]",
        "driftlab_task_models": "list[TaskModelSpec]",
        "driftlab_corruptions": "list[CorruptionSpec]",
        "driftlab_attacks": "list[AttackSpec]",
        "driftlab_pipelines": "list[PipelineSpec]",
    }
    for name, annotation in expected.items():
        assert getattr(hookspecs, name).__annotations__["return"] == annotation, name
    assert (Path(driftlab.__file__).parent / "py.typed").is_file()
    assert isinstance(hookspecs, types.ModuleType)
