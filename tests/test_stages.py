"""Each built-in stage: static == differentiable (borders included) and gradcheck."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from colour_demosaicing import demosaicing_CFA_Bayer_bilinear
from skimage.color import rgb2yuv, yuv2rgb

from driftlab.cfa import CFA_PATTERNS, cfa_masks
from driftlab.registry import get_registry
from driftlab.stages import BUILTIN_STAGES
from driftlab.stages._filters import pad_symmetric, rgb_to_yuv_numpy, yuv_to_rgb_numpy
from driftlab.stages.base import StageContext
from driftlab.verify import verify_stage

BOTH_FORMS = [s for s in BUILTIN_STAGES if len(s.forms) == 2]


@pytest.mark.parametrize("stage", BOTH_FORMS, ids=lambda s: s.key)
def test_builtin_stage_contract(stage):
    check = verify_stage(stage, seed=3)
    assert check.error == ""
    assert check.gradcheck
    assert check.max_abs_diff <= 1e-10, check
    assert check.cases >= 3


def test_static_only_variants_are_declared_as_such():
    registry = get_registry()
    assert registry.stage("demosaic", "menon2007").forms == ("static",)
    assert registry.stage("denoise", "median").forms == ("static",)


def test_every_reference_variant_is_registered():
    keys = set(get_registry().names("stages"))
    expected = {
        "black_level.subtract",
        "demosaic.bilinear",
        "demosaic.malvar2004",
        "demosaic.menon2007",
        "white_balance.gains",
        "color_correction.matrix",
        "sharpen.sharpening_filter",
        "sharpen.unsharp_masking",
        "denoise.gaussian",
        "denoise.median",
        "gamma.power",
    }
    assert expected <= keys


def test_yuv_matrices_match_scikit_image():
    rng = np.random.default_rng(0)
    rgb = rng.random((3, 5, 7))
    ours = rgb_to_yuv_numpy(rgb)
    theirs = np.moveaxis(rgb2yuv(np.moveaxis(rgb, 0, -1)), -1, 0)
    np.testing.assert_allclose(ours, theirs, atol=1e-12)
    back = np.moveaxis(yuv2rgb(np.moveaxis(ours, 0, -1)), -1, 0)
    np.testing.assert_allclose(yuv_to_rgb_numpy(ours), back, atol=1e-12)


def test_symmetric_padding_matches_numpy_even_when_wider_than_image():
    x = torch.arange(12.0).reshape(1, 1, 3, 4)
    for pad in (1, 2, 5):
        expected = np.pad(x[0, 0].numpy(), pad, mode="symmetric")
        np.testing.assert_array_equal(pad_symmetric(x, pad, pad)[0, 0].numpy(), expected)


@pytest.mark.parametrize("cfa", CFA_PATTERNS)
def test_differentiable_bilinear_matches_colour_demosaicing_on_padded_mosaic(cfa):
    rng = np.random.default_rng(1)
    mosaic = rng.random((12, 18))
    padded = np.pad(mosaic, 2, mode="reflect")
    expected = np.moveaxis(demosaicing_CFA_Bayer_bilinear(padded, cfa), -1, 0)[:, 2:-2, 2:-2]
    stage = get_registry().stage("demosaic", "bilinear")
    got = stage.differentiable(torch.as_tensor(mosaic[None, None]), StageContext(cfa=cfa))
    np.testing.assert_allclose(got[0].numpy(), expected, atol=1e-12)


@pytest.mark.parametrize("variant", ["bilinear", "malvar2004", "menon2007"])
def test_demosaic_keeps_measured_samples_and_flat_fields(variant):
    stage = get_registry().stage("demosaic", variant)
    flat = np.full((16, 16), 0.4)
    out = stage.static(flat, StageContext(cfa="GRBG"))
    np.testing.assert_allclose(out, 0.4, atol=1e-9)  # borders included
    rng = np.random.default_rng(2)
    mosaic = rng.random((16, 16))
    out = stage.static(mosaic, StageContext(cfa="GRBG"))
    masks = cfa_masks(mosaic.shape, "GRBG")
    if variant != "menon2007":  # Menon's refining step also revises measured samples
        for c in range(3):
            np.testing.assert_allclose(out[c][masks[c]], mosaic[masks[c]], atol=1e-12)


@pytest.mark.parametrize("variant", ["bilinear", "malvar2004", "menon2007"])
def test_demosaic_interior_equals_colour_demosaicing(variant):
    # the phase-preserving border padding only changes the outermost pixels
    from colour_demosaicing import (
        demosaicing_CFA_Bayer_bilinear,
        demosaicing_CFA_Bayer_Malvar2004,
        demosaicing_CFA_Bayer_Menon2007,
    )

    library = {
        "bilinear": demosaicing_CFA_Bayer_bilinear,
        "malvar2004": demosaicing_CFA_Bayer_Malvar2004,
        "menon2007": demosaicing_CFA_Bayer_Menon2007,
    }[variant]
    mosaic = np.random.default_rng(4).random((40, 48))
    ours = get_registry().stage("demosaic", variant).static(mosaic, StageContext(cfa="BGGR"))
    theirs = np.moveaxis(library(mosaic, "BGGR"), -1, 0)
    np.testing.assert_allclose(ours[:, 8:-8, 8:-8], theirs[:, 8:-8, 8:-8], atol=1e-12)


def test_black_level_subtracts_per_site():
    stage = get_registry().stage("black_level")
    x = np.full((4, 4), 0.5)
    out = stage.static(x, StageContext(), levels=np.array([0.1, 0.2, 0.3, 0.4]))
    np.testing.assert_allclose(out[0, 0], 0.4)
    np.testing.assert_allclose(out[0, 1], 0.3)
    np.testing.assert_allclose(out[1, 0], 0.2)
    np.testing.assert_allclose(out[3, 3], 0.1)


def test_gamma_gradient_is_finite_at_zero():
    stage = get_registry().stage("gamma")
    x = torch.zeros(1, 3, 2, 2, dtype=torch.float64, requires_grad=True)
    gamma = torch.tensor(2.2, dtype=torch.float64, requires_grad=True)
    stage.differentiable(x, StageContext(), gamma=gamma).sum().backward()
    assert torch.isfinite(gamma.grad)
    assert torch.isfinite(x.grad).all()


def test_unsharp_masking_clip_rule_follows_scikit_image():
    # Y with negative values is clipped to [-1, 1] instead of [0, 1].
    stage = get_registry().stage("sharpen", "unsharp_masking")
    rng = np.random.default_rng(5)
    x = rng.uniform(-0.3, 1.2, size=(3, 10, 10))
    params = {"radius": np.array(1.0), "amount": np.array(1.5)}
    static = stage.static(x, StageContext(), **params)
    torch_params = {k: torch.as_tensor(v) for k, v in params.items()}
    diff = stage.differentiable(torch.as_tensor(x[None]), StageContext(), **torch_params)
    np.testing.assert_allclose(diff[0].numpy(), static, atol=1e-12)
