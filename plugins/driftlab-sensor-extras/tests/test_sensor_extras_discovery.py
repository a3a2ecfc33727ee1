"""The installed plugin is discovered, listed and verified by driftlab."""

from __future__ import annotations

import importlib.metadata as metadata
import json

import pytest

STAGE_KEYS = ("hot_pixel.isolated", "hot_pixel.median_replace", "lens_shading.radial")
PROFILE = "rpi-cam-v2-imx219"


def test_installation_check_names_the_install_command(check_installation):
    message = check_installation("driftlab-sensor-extras-not-a-real-distribution")
    assert message is not None
    assert "pip install -e plugins/driftlab-sensor-extras" in message
    assert check_installation() is None


def test_registry_discovers_the_plugin_through_its_entry_point(registry):
    infos = [p for p in registry.plugins if p.name == "sensor_extras"]
    assert len(infos) == 1, [p.name for p in registry.plugins]
    info = infos[0]
    assert info.distribution == "driftlab-sensor-extras"
    assert info.version == metadata.version("driftlab-sensor-extras")
    assert info.module == "driftlab_sensor_extras.plugin"
    assert not info.builtin
    assert sorted(info.provides["stages"]) == list(STAGE_KEYS)
    assert info.provides["camera_profiles"] == [PROFILE]
    ours = [e for e in registry.errors if e.distribution == "driftlab-sensor-extras"]
    assert ours == []


def test_plugin_is_absent_without_entry_points():
    from driftlab.registry import Registry, RegistryError

    builtin_only = Registry.load(entry_points=False)
    assert "lens_shading" not in builtin_only.slots()
    with pytest.raises(RegistryError, match="unknown camera profile"):
        builtin_only.camera(PROFILE)


def test_registry_serves_the_new_slots_and_profile(registry):
    assert {"hot_pixel", "lens_shading"} <= set(registry.slots())
    assert registry.variants("hot_pixel") == ["isolated", "median_replace"]
    assert registry.stage("lens_shading").key == "lens_shading.radial"
    for key in STAGE_KEYS:
        assert registry.owner("stages", key) == "sensor_extras"
        spec = registry.get("stages", key)
        assert spec.forms == ("static", "differentiable")
        assert (spec.input_kind, spec.output_kind) == ("mosaic", "mosaic")
        for p in spec.params:
            assert p.unit and p.doc
            assert p.domain.contains(p.default)
    camera = registry.camera(PROFILE)
    assert (camera.cfa, camera.bit_depth) == ("RGGB", 10)
    assert "imx219.json" in camera.description


def test_cli_lists_the_plugin_with_distribution_and_version():
    from click.testing import CliRunner
    from driftlab.cli import main

    result = CliRunner().invoke(main, ["plugins", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    entry = next(p for p in data["plugins"] if p["name"] == "sensor_extras")
    assert entry["distribution"] == "driftlab-sensor-extras"
    assert entry["version"] == metadata.version("driftlab-sensor-extras")
    assert sorted(entry["provides"]["stages"]) == list(STAGE_KEYS)
    assert entry["provides"]["camera_profiles"] == [PROFILE]


@pytest.mark.parametrize("key", STAGE_KEYS)
def test_stage_passes_driftlab_verify(registry, key):
    from driftlab.verify import verify_stage

    check = verify_stage(registry.get("stages", key), registry.owner("stages", key))
    assert check.error == ""
    assert check.gradcheck
    # 3 sizes x 4 CFA patterns x (defaults, low corner, high corner, random draw)
    assert check.cases == 48
    assert check.max_abs_diff <= 1e-12
    assert check.passed
