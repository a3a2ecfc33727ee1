"""Pipelines: the paper's data models, the equivalence contract, specs and grids."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from driftlab.camera import CameraParams
from driftlab.cfa import CFA_PATTERNS
from driftlab.pipeline import (
    PAPER_DATA_MODELS,
    PipelineSpec,
    StageConfig,
    build_differentiable,
    build_static,
    expand_pipeline_names,
    get_pipeline,
    grid,
    load_pipeline_file,
    reference_pipeline,
)
from driftlab.registry import get_registry
from driftlab.verify import verify_pipeline
from tests.helpers import openisp_frame

DIFFERENTIABLE_MODELS = list(PAPER_DATA_MODELS)  # all twelve have both forms

DRONE = get_registry().camera("raw-drone")


def _camera(cfa: str) -> CameraParams:
    return DRONE.replace(cfa=cfa)


def test_twelve_paper_data_models_by_name():
    names = list(PAPER_DATA_MODELS)
    assert len(names) == 12
    assert names[:4] == ["bi,s,me", "bi,s,ga", "bi,u,me", "bi,u,ga"]
    assert {n.split(",")[0] for n in names} == {"bi", "me", "ma"}
    spec = get_pipeline("me,u,me")
    variants = {c.slot: c.variant for c in spec.stages}
    assert variants["demosaic"] == "menon2007"
    assert variants["sharpen"] == "unsharp_masking"
    assert variants["denoise"] == "median"
    assert [c.slot for c in spec.stages] == [
        "black_level",
        "demosaic",
        "white_balance",
        "color_correction",
        "sharpen",
        "denoise",
        "gamma",
    ]


def test_all_twelve_data_models_have_both_forms():
    for name, spec in PAPER_DATA_MODELS.items():
        pipe = build_static(spec, DRONE)
        assert pipe.resolved.forms == ("static", "differentiable"), name


@pytest.mark.parametrize("cfa", CFA_PATTERNS)
@pytest.mark.parametrize("size", [(8, 8), (30, 46), (96, 64)])
@pytest.mark.parametrize("name", DIFFERENTIABLE_MODELS)
def test_equivalence_contract_random_mosaics(name, size, cfa):
    rng = np.random.default_rng(abs(hash((name, size, cfa))) % 2**32)
    raw = rng.random(size)
    diff = verify_pipeline(get_pipeline(name), _camera(cfa), raw)
    assert diff <= 1e-4


def test_equivalence_contract_in_float32_stays_small():
    rng = np.random.default_rng(0)
    raw = rng.random((64, 64))
    spec = get_pipeline("ma,s,ga")
    static = build_static(spec, DRONE)(raw)
    module = build_differentiable(spec, DRONE)
    with torch.no_grad():
        view = module(torch.as_tensor(raw[None, None], dtype=torch.float32))[0].numpy()
    assert np.abs(static - view).max() < 2e-3


@pytest.mark.realdata
@pytest.mark.parametrize("name", DIFFERENTIABLE_MODELS)
def test_equivalence_contract_on_real_frame(name):
    frame = openisp_frame()
    camera = get_registry().camera("openisp")
    # a 256x384 crop from the top-left corner and the full frame's bottom-right corner
    for crop in (frame[:256, :384], frame[-200:, -300:]):
        assert verify_pipeline(get_pipeline(name), camera, crop) <= 1e-4


@pytest.mark.realdata
def test_equivalence_contract_on_whole_real_frame():
    frame = openisp_frame()
    camera = get_registry().camera("openisp")
    assert verify_pipeline(get_pipeline("ma,u,ga"), camera, frame) <= 1e-4


def test_static_pipeline_output_and_intermediates():
    rng = np.random.default_rng(1)
    raw = rng.random((32, 48))
    pipe = build_static(get_pipeline("me,s,me"), DRONE)
    view, steps = pipe(raw, intermediates=True)
    assert view.shape == (3, 32, 48)
    assert view.min() >= 0.0 and view.max() <= 1.0
    assert list(steps) == [
        "black_level",
        "demosaic",
        "white_balance",
        "color_correction",
        "sharpen",
        "denoise",
        "gamma",
    ]
    assert steps["black_level"].shape == (32, 48)
    np.testing.assert_array_equal(steps["gamma"], view)


def test_differentiable_pipeline_parameters_domains_and_gradients():
    module = build_differentiable(get_pipeline("bi,s,ga"), DRONE)
    params = module.named_stage_parameters()
    assert set(params) == {
        "black_level.levels",
        "white_balance.gains",
        "color_correction.matrix",
        "sharpen.kernel",
        "denoise.sigma",
        "gamma.gamma",
    }
    np.testing.assert_allclose(
        params["white_balance.gains"].detach().numpy(), DRONE.white_balance, rtol=1e-6
    )
    raw = torch.rand(2, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    view, steps = module(raw, intermediates=True)
    assert view.shape == (2, 3, 16, 16)
    assert steps["demosaic"].shape == (2, 3, 16, 16)
    view.mean().backward()
    for key, p in params.items():
        assert p.grad is not None and torch.isfinite(p.grad).all(), key
    assert params["gamma.gamma"].grad.abs() > 0


def test_projection_brings_parameters_back_into_their_domains():
    module = build_differentiable(get_pipeline("bi,s,ga"), DRONE)
    params = module.named_stage_parameters()
    with torch.no_grad():
        params["gamma.gamma"].fill_(9.0)
        params["sharpen.kernel"].add_(3.0)
        params["white_balance.gains"].fill_(-1.0)
    module.project_()
    for key, domain in module.domains().items():
        assert domain.contains(params[key].detach().numpy()), key
    assert float(params["gamma.gamma"].detach()) == pytest.approx(2.8)
    assert float(params["sharpen.kernel"].detach().sum()) == pytest.approx(1.0, abs=1e-5)


def test_to_spec_round_trips_current_values():
    module = build_differentiable(get_pipeline("ma,u,ga"), DRONE)
    with torch.no_grad():
        module.named_stage_parameters()["gamma.gamma"].fill_(2.5)
    spec = module.to_spec("attacked")
    again = PipelineSpec.from_dict(spec.to_dict())
    assert again == spec
    rebuilt = build_differentiable(again, DRONE)
    assert float(rebuilt.named_stage_parameters()["gamma.gamma"].detach()) == pytest.approx(2.5)


def test_grid_builder_names_and_order():
    specs = grid(
        reference_pipeline(),
        {"demosaic": ["bilinear", "malvar2004"], "denoise": ["gaussian", "median"]},
    )
    assert [s.name for s in specs] == ["bi,ga", "bi,me", "ma,ga", "ma,me"]
    specs = grid(
        reference_pipeline(),
        {"gamma": ["power"]},
        namer=lambda choice: "gamma-" + choice["gamma"],
    )
    assert specs[0].name == "gamma-power"


def test_pipeline_toml_round_trip(tmp_path):
    import tomli_w

    spec = PipelineSpec(
        name="custom",
        stages=[
            StageConfig("black_level"),
            StageConfig("demosaic", "malvar2004"),
            StageConfig("white_balance", params={"gains": [2.0, 1.0, 1.5]}),
            StageConfig("gamma", params={"gamma": 2.4}, domains={"gamma": [1.0, 3.0]}),
        ],
    )
    path = tmp_path / "custom.toml"
    path.write_text(tomli_w.dumps(spec.to_dict()))
    (loaded,) = load_pipeline_file(path)
    assert loaded.to_dict() == spec.to_dict()
    view = build_static(loaded, CameraParams(name="t"))(np.full((8, 8), 0.25))
    np.testing.assert_allclose(view[1], 0.25 ** (1 / 2.4))
    assert expand_pipeline_names(f"bi,s,me,{path}")[1].name == "custom"


def test_expand_pipeline_names():
    assert len(expand_pipeline_names("all")) == 12
    assert [s.name for s in expand_pipeline_names("bi,s,me,ma,u,ga")] == ["bi,s,me", "ma,u,ga"]
    assert [s.name for s in expand_pipeline_names(["me,s,ga"])] == ["me,s,ga"]


def test_domain_override_in_spec_allows_wider_values():
    spec = PipelineSpec(
        name="wide",
        stages=[
            StageConfig("demosaic", "malvar2004"),
            StageConfig("gamma", params={"gamma": 1.0}, domains={"gamma": [0.9, 3.0]}),
        ],
    )
    view = build_static(spec, CameraParams(name="t"))(np.full((4, 4), 0.3))
    np.testing.assert_allclose(view, 0.3)


def test_microscopy_profile_builds_with_its_widened_domain():
    camera = get_registry().camera("raw-microscopy")
    pipe = build_differentiable(get_pipeline("bi,s,ga"), camera)
    assert pipe.domains()["white_balance.gains"].low == -1.0


def test_pipeline_seed_reaches_noise_stages():
    spec = PipelineSpec(
        name="dim",
        stages=[
            StageConfig("illumination", "gaussian", params={"ratio": 0.2}),
            StageConfig("demosaic", "bilinear"),
        ],
    )
    camera = get_registry().camera("embedded-smear")
    raw = np.full((16, 16), 0.5)
    a = build_static(spec, camera, seed=1)(raw, allow_out_of_range=True)
    b = build_static(spec, camera, seed=1)(raw, allow_out_of_range=True)
    c = build_static(spec, camera, seed=2)(raw, allow_out_of_range=True)
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).max() > 0
