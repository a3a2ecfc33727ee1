"""The plugin's stages and profile inside declared pipelines (dict and TOML)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from driftlab.pipeline import (
    PipelineSpec,
    SpecError,
    build_differentiable,
    build_static,
    load_pipeline_file,
)
from driftlab.verify import verify_pipeline

PROFILE = "rpi-cam-v2-imx219"

REFERENCE_TAIL = [
    {"slot": "demosaic", "variant": "bilinear"},
    {"slot": "white_balance"},
    {"slot": "color_correction", "variant": "matrix"},
    {"slot": "sharpen", "variant": "sharpening_filter"},
    {"slot": "denoise", "variant": "gaussian"},
    {"slot": "gamma"},
]


def _spec(hot_pixel=None, lens_shading=None, name="extras"):
    hot = {"slot": "hot_pixel", "variant": "median_replace", **(hot_pixel or {})}
    lens = {"slot": "lens_shading", "variant": "radial", **(lens_shading or {})}
    data = {"name": name, "stages": [hot, {"slot": "black_level"}, lens, *REFERENCE_TAIL]}
    return PipelineSpec.from_dict(data)


HOT_PIXELS = ((10, 20), (31, 57), (40, 8))


def _synthetic_raw(camera, shape=(64, 96), seed=0):
    """A smooth scene above the camera's black level, with a few hot pixels."""
    rng = np.random.default_rng(seed)
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w]
    scene = 0.3 + 0.2 * np.sin(xx / 9.0) * np.cos(yy / 7.0)
    raw = camera.black_level[0] + scene * (1 - camera.black_level[0])
    raw = raw + rng.normal(0, 0.002, size=shape)
    for i, j in HOT_PIXELS:
        raw[i, j] = 1.0
    return np.clip(raw, 0.0, 1.0)


def test_spec_with_plugin_stages_builds_and_renders_in_both_forms(registry):
    camera = registry.camera(PROFILE)
    spec = _spec()
    raw = _synthetic_raw(camera)
    static = build_static(spec, camera, registry)
    view, steps = static(raw, intermediates=True)
    assert view.shape == (3, 64, 96)
    assert view.min() >= 0.0 and view.max() <= 1.0
    assert list(steps)[:3] == ["hot_pixel", "black_level", "lens_shading"]
    hot = steps["hot_pixel"]
    for i, j in HOT_PIXELS:
        assert hot[i, j] < 0.6  # the stuck-white pixels were replaced
    module = build_differentiable(spec, camera, registry, dtype=torch.float64)
    with torch.no_grad():
        tensor_view = module(torch.as_tensor(raw)[None, None])[0].numpy()
    np.testing.assert_allclose(tensor_view, view, atol=1e-9)
    assert verify_pipeline(spec, camera, raw, registry) <= 1e-9


def test_float32_pipeline_learns_lens_shading_but_not_the_threshold(registry):
    camera = registry.camera(PROFILE)
    module = build_differentiable(_spec(), camera, registry)
    params = module.named_stage_parameters()
    assert {"lens_shading.k1", "lens_shading.k2", "lens_shading.center_offset"} <= set(params)
    assert not any(key.startswith("hot_pixel.") for key in params)
    assert module.domains()["lens_shading.k1"].high == 3.0
    raw = torch.as_tensor(_synthetic_raw(camera), dtype=torch.float32)[None, None]
    view = module(raw)
    assert view.dtype == torch.float32
    view.mean().backward()
    for key in ("lens_shading.k1", "lens_shading.k2", "lens_shading.center_offset"):
        assert params[key].grad is not None and torch.any(params[key].grad != 0), key
    # an attack step that leaves the domain is projected back
    with torch.no_grad():
        params["lens_shading.k1"].fill_(10.0)
        params["lens_shading.center_offset"].fill_(-1.0)
    module.project_()
    assert torch.all(params["lens_shading.k1"] == 3.0)
    assert torch.all(params["lens_shading.center_offset"] == -0.15)


def test_to_spec_round_trip_keeps_plugin_parameters(registry):
    camera = registry.camera(PROFILE)
    spec = _spec(lens_shading={"params": {"k1": [0.5, 0.6, 0.6, 0.7]}})
    module = build_differentiable(spec, camera, registry, dtype=torch.float64)
    again = PipelineSpec.from_dict(module.to_spec().to_dict())
    lens = next(s for s in again.stages if s.slot == "lens_shading")
    assert lens.params["k1"] == [0.5, 0.6, 0.6, 0.7]
    raw = _synthetic_raw(camera)
    np.testing.assert_array_equal(
        build_static(again, camera, registry)(raw), build_static(spec, camera, registry)(raw)
    )


@pytest.mark.parametrize(
    ("toml_name", "profile"),
    [("rpi_cam_v2_imx219.toml", PROFILE), ("openisp_sensor_extras.toml", "openisp")],
)
def test_example_toml_pipelines_build_and_agree(registry, examples_dir, toml_name, profile):
    (spec,) = load_pipeline_file(examples_dir / toml_name)
    assert [s.slot for s in spec.stages][:3] == ["hot_pixel", "black_level", "lens_shading"]
    camera = registry.camera(profile)
    raw = _synthetic_raw(camera, shape=(48, 64), seed=1)
    view = build_static(spec, camera, registry)(raw)
    assert view.shape == (3, 48, 64)
    assert verify_pipeline(spec, camera, raw, registry) <= 1e-9


def test_from_toml_text(tmp_path, registry):
    path = tmp_path / "p.toml"
    path.write_text(
        'name = "toml"\n'
        '[[stages]]\nslot = "hot_pixel"\nvariant = "isolated"\nparams = { threshold = 0.3 }\n'
        '[[stages]]\nslot = "black_level"\n'
        '[[stages]]\nslot = "lens_shading"\nparams = { center_offset = [0.05, -0.02] }\n'
        '[[stages]]\nslot = "demosaic"\nvariant = "bilinear"\n'
        '[[stages]]\nslot = "gamma"\n',
        encoding="utf-8",
    )
    spec = PipelineSpec.from_toml(path)
    camera = registry.camera(PROFILE)
    module = build_differentiable(spec, camera, registry, dtype=torch.float64)
    stage = module.stages["lens_shading"]
    np.testing.assert_array_equal(stage.learnable["center_offset"].detach(), [0.05, -0.02])
    np.testing.assert_array_equal(stage.learnable["k1"].detach(), [0.21] * 4)  # the default
    assert float(module.stages["hot_pixel"].param_tensors()["threshold"]) == 0.3


def test_profile_renders_a_daylight_grey_card_neutral(registry):
    camera = registry.camera(PROFILE)
    # a grey surface under ~5700 K as the IMX219 sees it: R/G and B/G are the inverse
    # white-balance gains; raw = black level + signal
    signal = 0.3 * np.array([1 / camera.white_balance[0], 1.0, 1 / camera.white_balance[2]])
    raw = np.empty((16, 16))
    raw[0::2, 0::2] = signal[0]
    raw[0::2, 1::2] = raw[1::2, 0::2] = signal[1]
    raw[1::2, 1::2] = signal[2]
    raw = raw + np.asarray(camera.black_level[0])
    spec = PipelineSpec.from_dict(
        {
            "name": "grey",
            "stages": [
                {"slot": "hot_pixel", "variant": "isolated"},
                {"slot": "black_level"},
                {"slot": "lens_shading", "params": {"k1": [0.0] * 4, "k2": [0.0] * 4}},
                {"slot": "demosaic", "variant": "bilinear"},
                {"slot": "white_balance"},
                {"slot": "color_correction", "variant": "white_preserving"},
                {"slot": "gamma"},
            ],
        }
    )
    view = build_static(spec, camera, registry)(raw)
    # inside: colour-demosaicing's bilinear border rule mixes sites on the outer pixels
    np.testing.assert_allclose(view[:, 2:-2, 2:-2], 0.3 ** (1 / 2.2), atol=1e-9)


@pytest.mark.parametrize(
    ("hot_pixel", "lens_shading", "fragments"),
    [
        (
            {"params": {"threshold": 0.0}},
            None,
            ["hot_pixel.median_replace.threshold", "fraction of white level", "[0.02, 1]"],
        ),
        (
            None,
            {"params": {"k1": [5.0, 5.0, 5.0, 5.0]}},
            ["lens_shading.radial.k1", "[-0.25, 3]", "max 5"],
        ),
        (
            None,
            {"params": {"center_offset": [0.5, 0.0]}},
            ["lens_shading.radial.center_offset", "half-diagonal", "[-0.15, 0.15]"],
        ),
        (None, {"params": {"k2": [0.1, 0.1, 0.1]}}, ["lens_shading.radial.k2", "shape (4,)"]),
        (
            None,
            {"params": {"centre_offset": [0.0, 0.0]}},
            ["no parameter 'centre_offset'", "did you mean 'center_offset'"],
        ),
        (None, {"params": {"k1": [float("nan")] * 4}}, ["lens_shading.radial.k1", "NaN"]),
        ({"variant": "median"}, None, ["unknown variant 'median'", "median_replace"]),
    ],
)
def test_bad_parameters_give_clear_errors(registry, hot_pixel, lens_shading, fragments):
    camera = registry.camera(PROFILE)
    spec = _spec(hot_pixel, lens_shading)
    with pytest.raises(SpecError) as info:
        build_static(spec, camera, registry)
    for fragment in fragments:
        assert fragment in str(info.value), str(info.value)


def test_widened_domain_is_accepted_when_declared(registry):
    camera = registry.camera(PROFILE)
    spec = _spec(lens_shading={"params": {"k1": [3.5] * 4}, "domains": {"k1": [0.0, 4.0]}})
    view = build_static(spec, camera, registry)(_synthetic_raw(camera))
    assert view.shape == (3, 64, 96)


def test_mosaic_stage_after_demosaic_is_rejected(registry):
    camera = registry.camera(PROFILE)
    spec = PipelineSpec.from_dict(
        {
            "name": "late",
            "stages": [
                {"slot": "demosaic", "variant": "bilinear"},
                {"slot": "lens_shading"},
                {"slot": "gamma"},
            ],
        }
    )
    with pytest.raises(SpecError, match=r"lens_shading.radial expects a mosaic"):
        build_static(spec, camera, registry)
