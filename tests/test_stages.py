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
from driftlab.stages.base import StageContext
from driftlab.stages.filters import pad_symmetric, rgb_to_yuv_numpy, yuv_to_rgb_numpy
from driftlab.verify import verify_stage

BOTH_FORMS = [s for s in BUILTIN_STAGES if len(s.forms) == 2]


@pytest.mark.parametrize("stage", BOTH_FORMS, ids=lambda s: s.key)
def test_builtin_stage_contract(stage):
    check = verify_stage(stage, seed=3)
    assert check.error == ""
    assert check.gradcheck
    assert check.max_abs_diff <= 1e-10, check
    assert check.cases >= 3


def test_every_reference_variant_has_both_forms():
    registry = get_registry()
    for key in (
        "demosaic.bilinear",
        "demosaic.malvar2004",
        "demosaic.menon2007",
        "sharpen.sharpening_filter",
        "sharpen.unsharp_masking",
        "sharpen.column_unsharp_masking",
        "denoise.gaussian",
        "denoise.median",
    ):
        assert registry.stage(*key.split(".")).forms == ("static", "differentiable"), key


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


@pytest.mark.parametrize("mode", ["symmetric", "reflect"])
def test_padding_matches_numpy_with_and_without_autograd_and_its_gradients_check(mode):
    """Every pad width the slice path takes (with autograd: the custom backward that
    folds the borders back; without: one allocation) equals numpy.pad, and the backward
    passes gradcheck and gradgradcheck."""
    rng = np.random.default_rng(0)
    shift = 0 if mode == "symmetric" else 1
    for h, w in [(5, 7), (3, 4)]:
        for pad_y in range(h + 1 - shift):
            for pad_x in range(w + 1 - shift):
                x = torch.tensor(rng.random((2, 1, h, w)), requires_grad=True)
                expected = np.pad(
                    x.detach().numpy(), ((0, 0), (0, 0), (pad_y, pad_y), (pad_x, pad_x)), mode
                )
                with torch.no_grad():
                    plain = pad_symmetric(x, pad_y, pad_x, mode)
                np.testing.assert_array_equal(plain.numpy(), expected)
                padded = pad_symmetric(x, pad_y, pad_x, mode)
                np.testing.assert_array_equal(padded.detach().numpy(), expected)

                def pad(t, py=pad_y, px=pad_x):
                    return pad_symmetric(t, py, px, mode)

                assert torch.autograd.gradcheck(pad, (x,))
                assert torch.autograd.gradgradcheck(pad, (x,))


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


def test_unsharp_masking_is_range_preserving_without_image_wide_clip_switch():
    # The same pixel must get the same value whether or not another pixel of the
    # image has negative luma (scikit-image without preserve_range switches the
    # clip range of the whole image); values outside [0, 1] pass through.
    stage = get_registry().stage("sharpen", "unsharp_masking")
    rng = np.random.default_rng(5)
    x = rng.uniform(0.2, 1.0, size=(3, 12, 12))
    x[:, 5, 5] = 1.0  # a bright spot: sharpening overshoots above 1
    params = {"radius": np.array(1.0), "amount": np.array(1.5)}
    positive = stage.static(x, StageContext(), **params)
    assert positive.max() > 1.0  # not clipped
    with_negative = x.copy()
    with_negative[:, 0, 11] = -0.5  # one far-away pixel with negative luma
    other = stage.static(with_negative, StageContext(), **params)
    np.testing.assert_allclose(other[:, 4:7, 4:7], positive[:, 4:7, 4:7], atol=1e-12)
    torch_params = {k: torch.as_tensor(v) for k, v in params.items()}
    diff = stage.differentiable(
        torch.as_tensor(with_negative[None]), StageContext(), **torch_params
    )
    np.testing.assert_allclose(diff[0].numpy(), other, atol=1e-12)


def test_column_unsharp_masking_reproduces_scikit_image_018_multichannel_call():
    # skimage 0.18's unsharp_mask(Y, multichannel=True) looped over the last axis,
    # filtering each column of the 2-D luma as a 1-D signal, without clipping.
    from skimage.filters import unsharp_mask

    stage = get_registry().stage("sharpen", "column_unsharp_masking")
    rng = np.random.default_rng(6)
    x = rng.uniform(-0.1, 1.1, size=(3, 16, 10))
    out = stage.static(x, StageContext(), radius=np.array(1.0), amount=np.array(1.0))
    luma = rgb_to_yuv_numpy(x)[0]
    expected = np.stack(
        [unsharp_mask(luma[:, j], radius=1.0, amount=1.0, preserve_range=True) for j in range(10)],
        axis=1,
    )
    np.testing.assert_allclose(rgb_to_yuv_numpy(out)[0], expected, atol=1e-12)
    # rows are not mixed: a change in one column leaves the others alone
    y = x.copy()
    y[:, :, 3] += 0.2
    changed = stage.static(y, StageContext(), radius=np.array(1.0), amount=np.array(1.0))
    np.testing.assert_allclose(np.delete(changed, 3, axis=2), np.delete(out, 3, axis=2), atol=1e-12)


@pytest.mark.parametrize("cfa", CFA_PATTERNS)
def test_differentiable_menon_equals_colour_demosaicing_bit_for_bit(cfa):
    # float64: same directional decisions and same arithmetic order as the library
    stage = get_registry().stage("demosaic", "menon2007")
    rng = np.random.default_rng(7)
    for mosaic in (rng.random((26, 34)), np.round(rng.random((40, 40)) * 1023) / 1023):
        static = stage.static(mosaic, StageContext(cfa=cfa))
        diff = stage.differentiable(torch.as_tensor(mosaic[None, None]), StageContext(cfa=cfa))
        np.testing.assert_array_equal(diff[0].numpy(), static)


def test_menon_gradient_flows_through_the_selected_direction_only():
    # Columns constant, rows varying: the vertical estimate wins everywhere, so the
    # green value at a red site depends on its column only; the transposed scene
    # selects the horizontal estimate and gives the transposed gradient.
    stage = get_registry().stage("demosaic", "menon2007")
    scene = np.tile(0.5 + 0.4 * np.sin(np.arange(20) * 1.3), (20, 1))
    grads = []
    for mosaic in (scene, scene.T):
        x = torch.as_tensor(mosaic[None, None].copy()).requires_grad_(True)
        stage.differentiable(x, StageContext())[0, 1, 10, 10].backward()  # G at a red site
        grads.append(x.grad[0, 0].numpy())
    rows, cols = np.nonzero(grads[0])
    assert set(cols) == {10} and rows.min() < 10 < rows.max()
    np.testing.assert_array_equal(grads[1], grads[0].T)


def test_median_gradient_goes_to_the_selected_element():
    from driftlab.stages.filters import median3x3

    y = torch.tensor([[[[0.1, 0.9, 0.3], [0.7, 0.5, 0.2], [0.8, 0.4, 0.6]]]], dtype=torch.float64)
    y.requires_grad_(True)
    out = median3x3(y)
    assert float(out[0, 0, 1, 1].detach()) == 0.5
    out[0, 0, 1, 1].backward()
    expected = torch.zeros_like(y)
    expected[0, 0, 1, 1] = 1.0
    assert torch.equal(y.grad, expected)
