"""Every bad-input case gets a clear error naming what was expected."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from driftlab.camera import CameraParams
from driftlab.io.raw import RawReadError, read_raw
from driftlab.params import Domain, ParamSpec
from driftlab.pipeline import (
    PipelineSpec,
    SpecError,
    StageConfig,
    build_differentiable,
    build_static,
    get_pipeline,
    load_pipeline_file,
)
from driftlab.registry import get_registry
from driftlab.validation import RawInputError

CAMERA = CameraParams(name="test")


@pytest.fixture
def static():
    return build_static(get_pipeline("bi,s,ga"), CAMERA)


@pytest.fixture
def module():
    return build_differentiable(get_pipeline("bi,s,ga"), CAMERA)


def test_odd_raw(static, module):
    with pytest.raises(RawInputError, match=r"must be even .* got 7x8"):
        static(np.zeros((7, 8)))
    with pytest.raises(RawInputError, match=r"must be even .* got 8x9"):
        module(torch.zeros(1, 1, 8, 9))


def test_non_2d_raw(static, module):
    with pytest.raises(
        RawInputError, match=r"expected a 2-D \(H, W\) Bayer mosaic, got .*\(3, 8, 8\)"
    ):
        static(np.zeros((3, 8, 8)))
    with pytest.raises(RawInputError, match=r"expected a \(B, 1, H, W\) batch"):
        module(torch.zeros(1, 3, 8, 8))
    with pytest.raises(RawInputError, match="expected real numbers"):
        static(np.array([["a", "b"], ["c", "d"]]))


def test_nan_and_inf(static, module):
    raw = np.zeros((8, 8))
    raw[2, 3] = np.nan
    raw[4, 4] = np.inf
    with pytest.raises(RawInputError, match="contains 2 NaN or Inf"):
        static(raw)
    with pytest.raises(RawInputError, match="contains 2 NaN or Inf"):
        module(torch.as_tensor(raw, dtype=torch.float32)[None, None])


def test_out_of_range_unless_opted_in(static, module):
    raw = np.full((8, 8), 0.5)
    raw[0, 0] = 1.5
    with pytest.raises(
        RawInputError, match=r"values must lie in \[0, 1\].*max 1.5.*allow_out_of_range"
    ):
        static(raw)
    with pytest.raises(RawInputError, match="allow_out_of_range"):
        module(torch.as_tensor(raw, dtype=torch.float32)[None, None])
    assert static(raw, allow_out_of_range=True).shape == (3, 8, 8)
    assert module(
        torch.as_tensor(raw, dtype=torch.float32)[None, None], allow_out_of_range=True
    ).shape == (1, 3, 8, 8)


def test_unknown_cfa():
    with pytest.raises(
        ValueError, match=r"unknown CFA pattern 'RGBG'; expected one of RGGB, BGGR, GRBG, GBRG"
    ):
        CameraParams(name="x", cfa="RGBG")


def test_unknown_slot_and_variant():
    bad_slot = PipelineSpec("p", [StageConfig("demosiac", "bilinear")])
    with pytest.raises(SpecError, match=r"unknown slot 'demosiac' \(did you mean 'demosaic'\?\)"):
        build_static(bad_slot, CAMERA)
    bad_variant = PipelineSpec("p", [StageConfig("demosaic", "bilinaer")])
    with pytest.raises(
        SpecError,
        match=r"stage 0 \(demosaic\).*unknown variant 'bilinaer'.*did you mean 'bilinear'",
    ):
        build_static(bad_variant, CAMERA)
    ambiguous = PipelineSpec("p", [StageConfig("demosaic")])
    with pytest.raises(SpecError, match="has several variants"):
        build_static(ambiguous, CAMERA)


def test_unknown_parameter_name():
    spec = PipelineSpec(
        "p", [StageConfig("demosaic", "bilinear"), StageConfig("gamma", params={"gama": 2.0})]
    )
    with pytest.raises(SpecError, match=r"no parameter 'gama' \(did you mean 'gamma'\?\)"):
        build_static(spec, CAMERA)


def test_parameter_outside_domain():
    spec = PipelineSpec(
        "p", [StageConfig("demosaic", "bilinear"), StageConfig("gamma", params={"gamma": 4.0})]
    )
    with pytest.raises(
        SpecError,
        match=r"gamma.power.gamma \(exponent\) from the spec is outside its domain \[1.6, 2.8\]",
    ):
        build_static(spec, CAMERA)
    wb = CAMERA.replace(white_balance=(20.0, 1.0, 1.0))
    with pytest.raises(SpecError, match=r"white_balance.gains.gains.*from the camera 'test'"):
        build_static(get_pipeline("bi,s,ga"), wb)


def test_kernel_sum_constraint():
    spec = PipelineSpec(
        "p",
        [
            StageConfig("demosaic", "bilinear"),
            StageConfig(
                "sharpen", "sharpening_filter", params={"kernel": np.ones((3, 3)).tolist()}
            ),
        ],
    )
    with pytest.raises(SpecError, match="elements must sum to 1, got 9"):
        build_static(spec, CAMERA)


def test_wrong_parameter_shape():
    spec = PipelineSpec(
        "p",
        [
            StageConfig("demosaic", "bilinear"),
            StageConfig("white_balance", params={"gains": [1, 2]}),
        ],
    )
    with pytest.raises(SpecError, match=r"expected shape \(3,\), got shape \(2,\)"):
        build_static(spec, CAMERA)


def test_stage_chain_errors():
    no_demosaic = PipelineSpec("p", [StageConfig("black_level")])
    with pytest.raises(SpecError, match="ends with a mosaic; add a demosaic stage"):
        build_static(no_demosaic, CAMERA)
    rgb_first = PipelineSpec("p", [StageConfig("gamma"), StageConfig("demosaic", "bilinear")])
    with pytest.raises(SpecError, match="expects an RGB image but receives a mosaic"):
        build_static(rgb_first, CAMERA)


def test_static_only_stage_in_differentiable_pipeline():
    spec = PipelineSpec(
        "low-light",
        [
            StageConfig("black_level"),
            StageConfig("illumination", "poisson", params={"ratio": 0.5}),
            StageConfig("demosaic", "bilinear"),
            StageConfig("gamma"),
        ],
    )
    with pytest.raises(SpecError, match=r"no differentiable form for illumination.poisson"):
        build_differentiable(spec, CAMERA)


def test_toml_typos_name_key_and_closest_valid_name(tmp_path):
    path = tmp_path / "p.toml"
    path.write_text('name = "p"\n[[stagse]]\nslot = "demosaic"\n')
    with pytest.raises(
        SpecError, match=r"p.toml: unknown key 'stagse' \(did you mean 'stages'\?\)"
    ):
        load_pipeline_file(path)
    path.write_text('name = "p"\n[[stages]]\nslot = "demosaic"\nvarient = "bilinear"\n')
    with pytest.raises(
        SpecError, match=r"stages\[0\]: unknown key 'varient' \(did you mean 'variant'\?\)"
    ):
        load_pipeline_file(path)
    path.write_text('name = "p"\n[[stages]]\nslot = "demosaic"\nvariant = \n')
    with pytest.raises(ValueError, match=r"p\.toml: invalid TOML"):
        load_pipeline_file(path)
    path.write_text('name = "p"\n[[stages]]\nvariant = "bilinear"\n')
    with pytest.raises(SpecError, match="missing required key 'slot'"):
        load_pipeline_file(path)
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_pipeline_file(tmp_path / "missing.toml")


def test_domain_and_param_declaration_errors():
    with pytest.raises(ValueError, match="must not exceed"):
        Domain(2.0, 1.0)
    with pytest.raises(ValueError, match=r"default has shape \(2,\), declared shape is \(3,\)"):
        ParamSpec("g", (3,), (1.0, 2.0), "x", Domain(0, 1), "doc")


def test_unknown_camera_profile_suggests():
    with pytest.raises(
        LookupError, match=r"unknown camera profile 'openips' \(did you mean 'openisp'\?\)"
    ):
        get_registry().camera("openips")


def test_read_raw_errors(tmp_path):
    with pytest.raises(RawReadError, match="no such file"):
        read_raw(tmp_path / "nope.raw", shape=(4, 4), bits=10)
    path = tmp_path / "frame.raw"
    np.zeros((4, 6), dtype="<u2").tofile(path)
    with pytest.raises(RawReadError, match="needs its geometry"):
        read_raw(path)
    with pytest.raises(RawReadError, match=r"has 48 bytes, expected 64 for 4x8"):
        read_raw(path, shape=(4, 8), bits=10)
    np.full((4, 6), 4095, dtype="<u2").tofile(path)
    with pytest.raises(RawReadError, match="sample value 4095 exceeds the white level 1023"):
        read_raw(path, shape=(4, 6), bits=10)
    odd = tmp_path / "odd.npy"
    np.save(odd, np.zeros((5, 6), dtype=np.uint16))
    with pytest.raises(RawReadError, match="must be even"):
        read_raw(odd)
    tiff = tmp_path / "broken.tiff"
    tiff.write_bytes(b"II*\x00" + b"\x00" * 5)
    with pytest.raises(RawReadError, match="corrupt or truncated TIFF"):
        read_raw(tiff)
    with pytest.raises(RawReadError, match=r"unknown raw format '\.jpg'"):
        (tmp_path / "x.jpg").write_bytes(b"x")
        read_raw(tmp_path / "x.jpg")
