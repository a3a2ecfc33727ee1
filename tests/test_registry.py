"""Plugin discovery, error isolation, duplicate names and lookups."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from driftlab.camera import CameraParams
from driftlab.hookspecs import hookimpl
from driftlab.registry import BUILTIN_PLUGINS, Registry, RegistryError
from driftlab.stages import BUILTIN_STAGES
from driftlab.stages.base import StageSpec


class GoodPlugin:
    @hookimpl
    def driftlab_camera_profiles(self):
        return [CameraParams(name="test-sensor", cfa="GBRG", bit_depth=12)]


class RaisingPlugin:
    @hookimpl
    def driftlab_stages(self):
        raise RuntimeError("boom inside the hook")


class DuplicatePlugin:
    @hookimpl
    def driftlab_stages(self):
        bilinear = next(s for s in BUILTIN_STAGES if s.key == "demosaic.bilinear")
        return [StageSpec(slot="demosaic", variant="bilinear", doc="dup", static=bilinear.static)]


class MisspelledHookPlugin:
    @hookimpl
    def driftlab_stagez(self):
        return []


def test_builtins_register_through_the_hooks():
    registry = Registry.load(entry_points=False)
    assert [p.name for p in registry.plugins] == list(BUILTIN_PLUGINS)
    assert all(p.builtin and p.distribution == "driftlab" for p in registry.plugins)
    assert registry.errors == []
    stages = next(p for p in registry.plugins if p.name == "driftlab.builtin.stages")
    assert "demosaic.menon2007" in stages.provides["stages"]


def test_broken_plugins_are_reported_and_the_rest_load():
    registry = Registry.load(
        entry_points=False,
        extra=[
            ("broken-import", "driftlab_no_such_module_xyz"),
            ("raising", RaisingPlugin()),
            ("misspelled", MisspelledHookPlugin()),
            ("good", GoodPlugin()),
        ],
    )
    messages = {e.plugin: e.message for e in registry.errors}
    assert "ModuleNotFoundError" in messages["broken-import"]
    assert "hook driftlab_stages raised RuntimeError: boom inside the hook" in messages["raising"]
    assert "driftlab_stagez" in messages["misspelled"]
    assert registry.camera("test-sensor").cfa == "GBRG"
    assert "demosaic.bilinear" in registry.names("stages")


def test_duplicate_names_are_an_error_naming_both_plugins():
    registry = Registry.load(entry_points=False, extra=[("dupe", DuplicatePlugin())])
    (error,) = registry.errors
    assert "'demosaic.bilinear' is declared by more than one plugin" in error.message
    assert "'driftlab.builtin.stages'" in error.message and "'dupe'" in error.message
    with pytest.raises(
        RegistryError, match=r"declared by several plugins: 'driftlab.builtin.stages', 'dupe'"
    ):
        registry.stage("demosaic", "bilinear")
    assert registry.stage("demosaic", "malvar2004").variant == "malvar2004"


def test_lookup_errors_suggest_the_closest_name():
    registry = Registry.load(entry_points=False)
    with pytest.raises(RegistryError, match=r"unknown stage 'gamma.pwr'"):
        registry.get("stages", "gamma.pwr")
    with pytest.raises(
        RegistryError, match=r"unknown plugin kind 'stage' \(did you mean 'stages'\?\)"
    ):
        registry.get("stage", "x")


def _write_distribution(site, name, entry_points, modules):
    info = site / f"{name.replace('-', '_')}-1.2.3.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.2.3\n")
    lines = "\n".join(f"{k} = {v}" for k, v in entry_points.items())
    (info / "entry_points.txt").write_text(f"[driftlab]\n{lines}\n")
    for module, source in modules.items():
        (site / f"{module}.py").write_text(textwrap.dedent(source))


GOOD_MODULE = """
from driftlab.camera import CameraParams
from driftlab.hookspecs import hookimpl

@hookimpl
def driftlab_camera_profiles():
    return [CameraParams(name="ep-sensor", cfa="BGGR", bit_depth=14)]
"""


def test_entry_point_discovery_and_broken_plugin_in_cli(tmp_path):
    _write_distribution(
        tmp_path,
        "driftlab-fake-plugins",
        {"fake_good": "fake_good_plugin", "fake_broken": "fake_broken_plugin"},
        {
            "fake_good_plugin": GOOD_MODULE,
            "fake_broken_plugin": "raise ImportError('deliberately broken')\n",
        },
    )
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    result = subprocess.run(
        [sys.executable, "-m", "driftlab.cli", "plugins"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "driftlab.builtin.stages" in out
    assert "fake_good" in out and "driftlab-fake-plugins" in out and "1.2.3" in out
    assert "camera_profiles: ep-sensor" in out
    assert (
        "ERROR fake_broken (driftlab-fake-plugins): failed to load: ImportError: deliberately broken"
        in out
    )
    strict = subprocess.run(
        [sys.executable, "-m", "driftlab.cli", "plugins", "--strict", "--json"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert strict.returncode == 1
    data = json.loads(strict.stdout)
    assert [e["plugin"] for e in data["errors"]] == ["fake_broken"]
    assert any(p["name"] == "fake_good" for p in data["plugins"])


class WrongReturnPlugin:
    @hookimpl
    def driftlab_corruptions(self):
        return ["gaussian"]


class NoneReturnPlugin:
    @hookimpl
    def driftlab_stages(self):
        return None


class UnmarkedNamesPlugin:
    """Attributes that merely start with driftlab_ are not hooks unless marked."""

    driftlab_version = "1.0"

    @hookimpl
    def driftlab_camera_profiles(self):
        return [CameraParams(name="unmarked-ok")]


class MisspelledPrefixPlugin:
    @hookimpl
    def drftlab_stages(self):
        return []


def test_hook_return_values_are_checked_and_named():
    registry = Registry.load(
        entry_points=False,
        extra=[
            ("wrong", WrongReturnPlugin()),
            ("none", NoneReturnPlugin()),
            ("unmarked", UnmarkedNamesPlugin()),
            ("prefix", MisspelledPrefixPlugin()),
        ],
    )
    messages = {e.plugin: e.message for e in registry.errors}
    assert "returned 'gaussian' (str); expected CorruptionSpec instances" in messages["wrong"]
    assert "returned NoneType; expected a list of declarations" in messages["none"]
    assert (
        "'drftlab_stages' is not a driftlab hook (did you mean 'driftlab_stages'?)"
        in messages["prefix"]
    )
    assert "unmarked" not in messages
    assert registry.camera("unmarked-ok").name == "unmarked-ok"


def test_camera_field_is_validated():
    from driftlab.params import Domain, ParamSpec

    with pytest.raises(
        ValueError, match="camera_field must be black_level, white_balance or color_matrix"
    ):
        ParamSpec("g", (3,), (1.0, 1.0, 1.0), "x", Domain(0, 2), "doc", camera_field="wb")
