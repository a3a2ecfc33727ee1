"""Plugin authors get public, documented helpers and typing information (issue 13.15)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import torch

import driftlab
from driftlab.stages import filters

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "plugin-guide.md"


def test_public_stage_helpers_are_exported_and_documented():
    guide = GUIDE.read_text(encoding="utf-8")
    for name in filters.__all__:
        obj = getattr(filters, name)
        if callable(obj):
            assert obj.__doc__, f"driftlab.stages.filters.{name} has no docstring"
    for name in ("split_sites", "merge_sites_torch", "pad_symmetric", "convolve2d", "median3x3"):
        assert f"`{name}" in guide, f"{name} missing from the plugin guide"
    for name in ("SpecError", "StageConfig"):
        assert name in guide


def test_cfa_split_and_merge_round_trip_in_both_forms():
    mosaic = np.random.default_rng(0).random((6, 8))
    planes = filters.split_sites(mosaic)
    assert planes.shape == (4, 3, 4) and np.array_equal(planes[1], mosaic[0::2, 1::2])
    assert np.array_equal(filters.merge_sites(planes), mosaic)
    tensor = torch.as_tensor(mosaic)[None, None]
    torch_planes = filters.split_sites_torch(tensor)
    assert np.array_equal(torch_planes[0].numpy(), planes)
    assert torch.equal(filters.merge_sites_torch(torch_planes), tensor)


def test_the_example_plugin_uses_the_public_helpers_not_its_own_copy():
    assert importlib.util.find_spec("driftlab_sensor_extras._sites") is None
    from driftlab_sensor_extras import hot_pixel

    assert hot_pixel.split_sites is filters.split_sites
    assert hot_pixel.pad_symmetric is filters.pad_symmetric


def test_driftlab_ships_a_py_typed_marker():
    assert (Path(driftlab.__file__).parent / "py.typed").is_file()
