"""The fast batched render path matches the static reference (issue 12)."""

from __future__ import annotations

import types

import numpy as np
import pytest
import torch

from driftlab import hookimpl
from driftlab.camera import CameraParams
from driftlab.cfa import CFA_PATTERNS
from driftlab.pipeline import (
    PAPER_DATA_MODELS,
    FastRenderer,
    PipelineSpec,
    StageConfig,
    StageOutputError,
    build_differentiable,
    build_static,
    render_views,
    resolve,
)
from driftlab.registry import Registry, get_registry
from driftlab.stages.base import StageSpec
from tests.helpers import openisp_frame

CAMERA = get_registry().camera("raw-drone")


@pytest.mark.parametrize("cfa", CFA_PATTERNS)
def test_fast_path_matches_the_static_reference_for_all_twelve_models(cfa):
    camera = CAMERA.replace(cfa=cfa)
    rng = np.random.default_rng(CFA_PATTERNS.index(cfa))
    raws = rng.uniform(0.0, 1.0, size=(3, 26, 38))
    for name, spec in PAPER_DATA_MODELS.items():
        static = build_static(spec, camera)
        expected = np.stack([static(r) for r in raws])
        views = render_views(resolve(spec, camera), raws)
        assert views.shape == (3, 3, 26, 38) and views.dtype == np.float32
        assert np.abs(views - expected).max() <= 1e-6, name  # float32 rounding of the result
        exact = render_views(resolve(spec, camera), raws, dtype=torch.float64)
        assert np.abs(exact - expected).max() <= 1e-12, name


@pytest.mark.realdata
def test_fast_path_matches_the_static_reference_on_the_real_frame():
    frame = openisp_frame()
    camera = get_registry().camera("openisp")
    # whole 256x256 tiles at the frame's corners, edges and centre: image borders included
    corners = [(0, 0), (0, 1664), (824, 0), (824, 1664), (412, 832), (0, 832)]
    tiles = np.stack([frame[y : y + 256, x : x + 256] for y, x in corners])
    for name, spec in PAPER_DATA_MODELS.items():
        static = build_static(spec, camera)
        expected = np.stack([static(t) for t in tiles])
        views = FastRenderer(resolve(spec, camera)).render_numpy(tiles)
        assert np.abs(views - expected).max() <= 1e-4, name


def test_chunks_and_batch_sizes_do_not_change_the_views():
    spec = PAPER_DATA_MODELS["me,u,me"]
    raws = np.random.default_rng(1).uniform(0, 1, size=(5, 16, 20))
    resolved = resolve(spec, CAMERA)
    whole = FastRenderer(resolved).render_numpy(raws)
    one_by_one = FastRenderer(resolved, chunk_pixels=1).render_numpy(raws)
    singles = np.stack([FastRenderer(resolved).render_numpy(r)[0] for r in raws])
    assert np.array_equal(whole, one_by_one) and np.array_equal(whole, singles)


def test_kernels_are_built_once_when_the_renderer_is_made(monkeypatch):
    import driftlab.pipeline.batched as batched

    renderer = FastRenderer(resolve(PAPER_DATA_MODELS["ma,s,ga"], CAMERA))

    def rebuilt(*args, **kwargs):
        raise AssertionError("kernels rebuilt during rendering")

    monkeypatch.setattr(batched, "_linear_taps", rebuilt)
    monkeypatch.setattr(batched.fastops, "gaussian_taps", rebuilt)
    renderer(np.random.default_rng(2).uniform(0, 1, size=(2, 8, 8)))
    renderer(np.random.default_rng(3).uniform(0, 1, size=(4, 12, 10)))  # another shape


def test_fused_steps_cover_the_reference_pipeline():
    renderer = FastRenderer(resolve(PAPER_DATA_MODELS["bi,s,me"], CAMERA))
    # black level, demosaic, white balance and colour correction are one convolution
    assert [s.kind for s in renderer.steps] == [
        "bilinear",
        "sharpening_filter",
        "median",
        "gamma",
    ]
    assert [st.spec.key for st in renderer.steps[0].stages] == [
        "demosaic.bilinear",
        "white_balance.gains",
        "color_correction.matrix",
    ]


def test_render_fast_uses_the_current_parameter_values():
    module = build_differentiable(PAPER_DATA_MODELS["me,s,ga"], CAMERA, dtype=torch.float64)
    with torch.no_grad():
        module.named_stage_parameters()["gamma.gamma"].fill_(1.8)
        module.named_stage_parameters()["denoise.sigma"].fill_(1.2)
    raw = torch.rand(3, 1, 20, 24, dtype=torch.float64)
    with torch.no_grad():
        expected = module(raw)
    fast = module.render_fast(raw)
    assert not fast.requires_grad and fast.dtype == torch.float32
    assert (fast.double() - expected).abs().max() <= 1e-6


def test_value_overrides_are_checked():
    resolved = resolve(PAPER_DATA_MODELS["bi,s,ga"], CAMERA)
    with pytest.raises(ValueError, match="no stage 'gama'"):
        FastRenderer(resolved, values={"gama": {"gamma": 2.0}})
    with pytest.raises(ValueError, match="shape"):
        FastRenderer(resolved, values={"gamma": {"gamma": [2.0, 2.2]}})


def test_bad_raw_input_is_refused():
    renderer = FastRenderer(resolve(PAPER_DATA_MODELS["bi,s,ga"], CAMERA))
    with pytest.raises(ValueError, match="even"):
        renderer(np.zeros((2, 7, 8)))
    with pytest.raises(ValueError, match="NaN"):
        renderer(np.full((1, 8, 8), np.nan))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        renderer(np.full((1, 8, 8), 2.0))


# -- plugin stages --------------------------------------------------------------------------
def _plugin_registry(*stages: StageSpec) -> Registry:
    @hookimpl
    def driftlab_stages():
        return list(stages)

    return Registry.load(
        entry_points=False,
        extra=[("acme_isp", types.SimpleNamespace(driftlab_stages=driftlab_stages))],
    )


def _mosaic_stage(static, differentiable=None, variant="v") -> StageSpec:
    return StageSpec(
        slot="acme",
        variant=variant,
        doc="plugin stage under test",
        static=static,
        differentiable=differentiable,
        input_kind="mosaic",
        output_kind="mosaic",
    )


def _spec(variant="v") -> PipelineSpec:
    return PipelineSpec(
        "with-plugin",
        [
            StageConfig("black_level"),
            StageConfig("acme", variant),
            StageConfig("demosaic", "menon2007"),
            StageConfig("gamma"),
        ],
    )


def test_plugin_stages_run_through_their_static_form_one_view_at_a_time():
    calls = []

    def static(x, ctx):
        calls.append(x.shape)
        return np.sqrt(np.clip(x, 0, None))

    registry = _plugin_registry(_mosaic_stage(static))
    raws = np.random.default_rng(4).uniform(0, 1, size=(3, 12, 16))
    resolved = resolve(_spec(), CAMERA, registry)
    views = FastRenderer(resolved).render_numpy(raws)
    reference = build_static(_spec(), CAMERA, registry)
    calls.clear()
    expected = np.stack([reference(r) for r in raws])
    assert np.abs(views - expected).max() <= 1e-6
    assert calls == [(12, 16)] * 3


def test_seeded_stages_give_the_static_form_s_views_in_any_batch():
    spec = PipelineSpec(
        "low-light",
        [
            StageConfig("black_level"),
            StageConfig("illumination", "gaussian", params={"ratio": 0.3}),
            StageConfig("demosaic", "bilinear"),
            StageConfig("gamma"),
        ],
    )
    camera = CAMERA.replace(gain=2.0, read_noise=3.0)
    raws = np.random.default_rng(5).uniform(0.1, 0.9, size=(3, 16, 16))
    static = build_static(spec, camera)
    expected = np.stack([static(r, allow_out_of_range=True) for r in raws])
    views = render_views(resolve(spec, camera), raws, allow_out_of_range=True)
    assert np.abs(views - expected).max() <= 1e-6


@pytest.mark.parametrize("fault", ["shape", "nan", "dtype"])
def test_a_plugin_stage_with_a_bad_output_is_named_with_its_plugin(fault, tmp_path):
    def static(x, ctx):
        if fault == "shape":
            return x[:-2]
        if fault == "nan":
            out = x.copy()
            out[3, 3] = np.nan
            return out
        return x.astype(np.float32)

    def differentiable(x, ctx):
        if fault == "shape":
            return x[..., :-2, :]
        if fault == "nan":
            return x * torch.tensor(float("nan"), dtype=x.dtype)
        return x.to(torch.float16)

    registry = _plugin_registry(_mosaic_stage(static, differentiable))
    raw = np.random.default_rng(6).uniform(0, 1, size=(12, 16))
    expected = {"shape": "returned shape", "nan": "NaN or Inf", "dtype": "returned dtype"}[fault]
    where = "stage 'acme' (acme.v, plugin 'acme_isp')"
    with pytest.raises(StageOutputError, match=expected) as info:
        build_static(_spec(), CAMERA, registry)(raw)
    assert where in str(info.value) and "static form" in str(info.value)
    with pytest.raises(StageOutputError, match=expected) as info:
        build_differentiable(_spec(), CAMERA, registry)(torch.as_tensor(raw[None, None]).float())
    assert where in str(info.value) and "differentiable form" in str(info.value)
    with pytest.raises(StageOutputError, match=expected):
        FastRenderer(resolve(_spec(), CAMERA, registry)).render_numpy(raw)

    from driftlab.render import render_frame

    out = tmp_path / "out"
    with pytest.raises(StageOutputError, match="acme_isp"):
        render_frame(raw, CAMERA, [_spec()], out, registry=registry)
    assert not out.exists()  # nothing written


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_fast_path_on_cuda_matches_the_cpu():
    raws = np.random.default_rng(7).uniform(0, 1, size=(4, 32, 48))
    for name, spec in PAPER_DATA_MODELS.items():
        resolved = resolve(spec, CAMERA)
        cpu = FastRenderer(resolved).render_numpy(raws)
        gpu = FastRenderer(resolved, device="cuda")(raws)
        assert gpu.device.type == "cuda"
        assert np.abs(gpu.cpu().numpy() - cpu).max() <= 1e-5, name


def test_camera_without_black_level_or_matrix_also_matches():
    camera = CameraParams(name="plain")
    raws = np.random.default_rng(8).uniform(0, 1, size=(2, 10, 14))
    for name in ("bi,u,me", "ma,s,ga", "me,s,ga"):
        spec = PAPER_DATA_MODELS[name]
        static = build_static(spec, camera)
        expected = np.stack([static(r) for r in raws])
        assert np.abs(render_views(resolve(spec, camera), raws) - expected).max() <= 1e-6


def test_rendering_the_twelve_models_together_shares_stages_and_equals_one_at_a_time():
    from driftlab.pipeline import FastRenderGroup

    raws = np.random.default_rng(7).uniform(0, 1, size=(5, 24, 32))
    renderers = [FastRenderer(resolve(s, CAMERA)) for s in PAPER_DATA_MODELS.values()]
    group = FastRenderGroup(renderers)
    assert group.shared_steps() >= 12  # demosaic + matrices shared by four, sharpening by two
    together = group(raws)
    for renderer in renderers:
        assert torch.equal(together[renderer.name], renderer(raws)), renderer.name


def test_a_group_with_plugin_stages_and_pipelines_without_gamma_equals_one_at_a_time():
    from driftlab.pipeline import FastRenderGroup

    registry = _plugin_registry(_mosaic_stage(lambda x, ctx: np.sqrt(np.clip(x, 0, None))))
    no_gamma = PipelineSpec("no-gamma", [StageConfig("black_level"), StageConfig("acme", "v"),
                                         StageConfig("demosaic", "menon2007")])  # fmt: skip
    specs = [_spec(), no_gamma, PAPER_DATA_MODELS["me,s,me"]]
    renderers = [FastRenderer(resolve(s, CAMERA, registry)) for s in specs]
    raws = np.random.default_rng(8).uniform(0, 1, size=(3, 12, 16))
    together = FastRenderGroup(renderers)(raws)
    for renderer in renderers:
        assert torch.equal(together[renderer.name], renderer(raws)), renderer.name


def test_a_group_refuses_renderers_it_cannot_share():
    from driftlab.pipeline import FastRenderGroup

    spec = PAPER_DATA_MODELS["bi,s,ga"]
    with pytest.raises(ValueError, match="repeated pipeline names"):
        FastRenderGroup([FastRenderer(resolve(spec, CAMERA)), FastRenderer(resolve(spec, CAMERA))])
    other = CAMERA.replace(cfa="GRBG")
    with pytest.raises(ValueError, match="camera context"):
        FastRenderGroup(
            [FastRenderer(resolve(spec, CAMERA)),
             FastRenderer(resolve(PAPER_DATA_MODELS["ma,s,ga"], other))]
        )  # fmt: skip


REORDERED = {
    # a colour matrix after a luma filter: the luma change is brought into RGB first
    "matrix-after-luma": [StageConfig("black_level"), StageConfig("demosaic", "bilinear"),
                          StageConfig("sharpen", "sharpening_filter"),
                          StageConfig("color_correction", "matrix"),
                          StageConfig("denoise", "median"), StageConfig("gamma")],
    # gamma in the middle: the luma filters split the gamma-encoded RGB themselves
    "mid-gamma": [StageConfig("black_level"), StageConfig("demosaic", "malvar2004"),
                  StageConfig("gamma"), StageConfig("sharpen", "unsharp_masking"),
                  StageConfig("denoise", "gaussian")],
    "no-gamma": [StageConfig("demosaic", "menon2007"), StageConfig("denoise", "median"),
                 StageConfig("white_balance")],
    "matrices-between-filters": [StageConfig("demosaic", "bilinear"),
                                 StageConfig("sharpen", "sharpening_filter"),
                                 StageConfig("white_balance"),
                                 StageConfig("color_correction", "matrix"),
                                 StageConfig("denoise", "gaussian"), StageConfig("gamma")],
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(REORDERED))
def test_stages_in_any_order_match_the_static_reference(name):
    spec = PipelineSpec(name, REORDERED[name])
    raws = np.random.default_rng(3).uniform(0, 1, size=(3, 20, 24))
    static = build_static(spec, CAMERA)
    expected = np.stack([static(r) for r in raws])
    renderer = FastRenderer(resolve(spec, CAMERA), dtype=torch.float64)
    assert np.abs(renderer.render_numpy(raws) - expected).max() <= 1e-12
    views = FastRenderer(resolve(spec, CAMERA)).render_numpy(raws)
    assert np.abs(views - expected).max() <= 1e-6


def test_a_group_shares_intermediate_tensors_without_changing_them():
    from driftlab.pipeline import FastRenderGroup

    # branches share their parent's tensors (no copies): a step writing into its input
    # would change the views of the branches rendered after it
    specs = [PipelineSpec(name, stages) for name, stages in REORDERED.items()]
    renderers = [FastRenderer(resolve(s, CAMERA)) for s in specs]
    renderers += [FastRenderer(resolve(s, CAMERA)) for s in PAPER_DATA_MODELS.values()]
    raws = torch.as_tensor(np.random.default_rng(4).uniform(0, 1, size=(3, 1, 20, 24)))
    before = raws.clone()
    for order in (renderers, renderers[::-1]):
        together = FastRenderGroup(order)(raws)
        for renderer in order:
            assert torch.equal(together[renderer.name], renderer(raws)), renderer.name
    assert torch.equal(raws, before)


def test_a_colour_matrix_pending_at_gamma_is_summed_before_rounding():
    # a matrix after the last luma filter is applied in the linear dtype and the sum rounded
    # once: a red value of 6e-9 (6e-9 ** (1 / 2.2) = 1.8e-4) must not move by float32 steps
    spec = PipelineSpec("late-matrix", [StageConfig("black_level"),
                                        StageConfig("demosaic", "bilinear"),
                                        StageConfig("sharpen", "sharpening_filter"),
                                        StageConfig("color_correction", "matrix"),
                                        StageConfig("gamma")])  # fmt: skip
    resolved = resolve(spec, CAMERA)
    matrix = np.asarray(resolved.stages[3].values["matrix"]).reshape(3, 3)
    levels = np.ravel(resolved.stages[0].values["levels"])
    green, blue = 0.41, 0.37
    red = (6e-9 - matrix[0, 1] * green - matrix[0, 2] * blue) / matrix[0, 0]
    raw = np.empty((16, 16))
    raw[0::2, 0::2], raw[0::2, 1::2] = red + levels[0], green + levels[1]
    raw[1::2, 0::2], raw[1::2, 1::2] = green + levels[2], blue + levels[3]
    expected = build_static(spec, CAMERA)(raw)
    assert expected[0].max() > 1e-4  # the case is sensitive
    views = FastRenderer(resolved).render_numpy(raw[None])[0]
    assert np.abs(views - expected).max() <= 1e-6


def test_a_plugin_writing_into_its_input_does_not_change_other_pipelines_of_a_group():
    from driftlab.pipeline import FastRenderGroup

    def careless(x, ctx):
        return x.clamp_(0.0, 0.2)  # breaks the plugin contract: modifies its input

    stage = StageSpec(slot="acme", variant="v", doc="d", static=None, differentiable=careless,
                      input_kind="rgb", output_kind="rgb")  # fmt: skip

    @hookimpl
    def driftlab_stages():
        return [stage]

    plugin = types.SimpleNamespace(driftlab_stages=driftlab_stages)
    registry = Registry.load(entry_points=False, extra=[("acme_isp", plugin)])
    prefix = [StageConfig("black_level"), StageConfig("demosaic", "bilinear")]
    specs = [PipelineSpec("a", [*prefix, StageConfig("acme", "v"), StageConfig("gamma")]),
             PipelineSpec("b", [*prefix, StageConfig("gamma")])]  # fmt: skip
    raws = np.random.default_rng(0).uniform(0, 1, size=(2, 12, 16))
    for dtype in (torch.float32, torch.float64):
        renderers = [FastRenderer(resolve(s, CAMERA, registry), dtype=dtype) for s in specs]
        together = FastRenderGroup(renderers)(raws)
        for renderer in renderers:
            assert torch.equal(together[renderer.name], renderer(raws)), renderer.name
