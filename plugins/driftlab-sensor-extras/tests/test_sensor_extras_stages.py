"""Behaviour of the hot-pixel and lens-shading stages on small synthetic mosaics."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from driftlab.stages.base import StageContext

CTX = StageContext(cfa="RGGB", bit_depth=10)
VARIANTS = ("median_replace", "isolated")


def _forms(extras, variant):
    hp = extras.hot_pixel
    if variant == "median_replace":
        return hp.median_replace_static, hp.median_replace_torch
    return hp.isolated_static, hp.isolated_torch


def _run_both(static, torch_fn, x, **params):
    out_static = static(x.copy(), CTX, **{k: np.asarray(v, float) for k, v in params.items()})
    with torch.no_grad():
        out_torch = torch_fn(
            torch.as_tensor(x)[None, None],
            CTX,
            **{k: torch.as_tensor(v, dtype=torch.float64) for k, v in params.items()},
        )[0, 0].numpy()
    return out_static, out_torch


def _same_colour_neighbours(x, i, j):
    return [x[i + dy, j + dx] for dy in (-2, 0, 2) for dx in (-2, 0, 2) if (dy, dx) != (0, 0)]


# -- hot pixel ----------------------------------------------------------------------------
@pytest.mark.parametrize("variant", VARIANTS)
def test_hot_pixel_is_replaced_by_median_of_same_colour_neighbours(extras, variant):
    rng = np.random.default_rng(1)
    x = rng.uniform(0.2, 0.3, size=(32, 32))
    x[10, 13] = 0.95
    expected = np.median(_same_colour_neighbours(x, 10, 13))
    for out in _run_both(*_forms(extras, variant), x, threshold=0.1):
        assert out[10, 13] == pytest.approx(expected, abs=1e-15)
        changed = np.argwhere(out != x)
        assert changed.tolist() == [[10, 13]]


@pytest.mark.parametrize("variant", VARIANTS)
def test_hot_pixel_compares_only_pixels_of_the_same_colour(extras, variant):
    # a saturated red scene: every R site is far above its G and B neighbours,
    # but equal to the other R sites, so nothing is a hot pixel
    x = np.full((16, 20), 0.1)
    x[0::2, 0::2] = 0.9
    for out in _run_both(*_forms(extras, variant), x, threshold=0.05):
        np.testing.assert_array_equal(out, x)


@pytest.mark.parametrize("variant", VARIANTS)
def test_hot_pixel_at_corner_and_edge_uses_mirrored_same_colour_neighbours(extras, variant):
    rng = np.random.default_rng(2)
    x = rng.uniform(0.2, 0.3, size=(12, 14))
    x[0, 0] = 1.0  # corner of the R plane
    x[11, 7] = 1.0  # last row of the B plane (row and column odd)
    r = x[0::2, 0::2]
    # mirroring about the edge pixel: the corner's 8 neighbours are its 3 real ones
    corner = np.median([r[1, 1]] * 4 + [r[0, 1]] * 2 + [r[1, 0]] * 2)
    b = x[1::2, 1::2]
    i, j = 5, 3  # (11, 7) in the B plane
    edge = np.median(
        [b[i - 1, j - 1], b[i - 1, j], b[i - 1, j + 1]] * 2 + [b[i, j - 1], b[i, j + 1]]
    )
    static, differentiable = _run_both(*_forms(extras, variant), x, threshold=0.1)
    np.testing.assert_array_equal(static, differentiable)
    assert static[0, 0] == pytest.approx(corner, abs=1e-15)
    assert static[11, 7] == pytest.approx(edge, abs=1e-15)
    assert np.argwhere(static != x).tolist() == [[0, 0], [11, 7]]


def test_median_rule_flattens_bright_corners_isolated_rule_does_not(extras):
    x = np.full((32, 32), 0.1)
    x[8:, 8:] = 0.9  # bright quadrant: its corner 2x2 block sees 5 of 8 dark same-colour pixels
    hp = extras.hot_pixel
    median_mask = hp.hot_pixel_mask(x, 0.2, "median")
    assert np.argwhere(median_mask).tolist() == [[8, 8], [8, 9], [9, 8], [9, 9]]
    assert not hp.hot_pixel_mask(x, 0.2, "isolated").any()
    static, differentiable = _run_both(*_forms(extras, "median_replace"), x, threshold=0.2)
    np.testing.assert_array_equal(static, differentiable)
    assert static[8, 8] == pytest.approx(0.1)


def test_gradient_flows_through_the_two_median_values(extras):
    x = np.linspace(0.20, 0.30, 24 * 24).reshape(24, 24)  # distinct values, no ties
    x[12, 12] = 1.0
    neighbours = _same_colour_neighbours(x, 12, 12)
    order = np.argsort(neighbours)
    offsets = [(dy, dx) for dy in (-2, 0, 2) for dx in (-2, 0, 2) if (dy, dx) != (0, 0)]
    middle = {(12 + offsets[k][0], 12 + offsets[k][1]) for k in order[3:5]}
    xt = torch.as_tensor(x)[None, None].requires_grad_(True)
    out = extras.hot_pixel.median_replace_torch(xt, CTX, threshold=torch.tensor(0.2).double())
    out.sum().backward()
    grad = xt.grad[0, 0].numpy()
    assert grad[12, 12] == 0.0  # the replaced value does not depend on the hot pixel
    for pos in middle:
        assert grad[pos] == pytest.approx(1.5)  # itself + half of the replaced median
    others = np.ones_like(grad, dtype=bool)
    others[12, 12] = False
    for pos in middle:
        others[pos] = False
    np.testing.assert_array_equal(grad[others], 1.0)


@pytest.mark.parametrize("variant", VARIANTS)
def test_gradcheck_with_replaced_pixels(extras, variant):
    rng = np.random.default_rng(3)
    x = rng.uniform(0.2, 0.3, size=(8, 10))
    x[2, 4] = x[5, 5] = 0.95
    fn = _forms(extras, variant)[1]
    threshold = torch.tensor(0.1, dtype=torch.float64)
    xt = torch.as_tensor(x)[None, None].requires_grad_(True)
    assert (fn(xt, CTX, threshold=threshold) != xt).sum() == 2
    assert torch.autograd.gradcheck(lambda t: fn(t, CTX, threshold=threshold), (xt,))


def test_hot_pixel_mask_counts_fall_with_threshold(extras):
    rng = np.random.default_rng(4)
    x = rng.uniform(0.0, 1.0, size=(64, 64))
    counts = [int(extras.hot_pixel.hot_pixel_mask(x, t).sum()) for t in (0.05, 0.2, 0.5)]
    assert counts[0] > counts[1] > counts[2] > 0


def test_hot_pixel_bad_input_names_the_stage(extras):
    hp = extras.hot_pixel
    with pytest.raises(ValueError, match=r"hot_pixel.median_replace: .*even.*7x8"):
        hp.median_replace_static(np.zeros((7, 8)), CTX, threshold=np.asarray(0.2))
    with pytest.raises(ValueError, match=r"hot_pixel.isolated: expected a \(B, 1, H, W\)"):
        hp.isolated_torch(torch.zeros(1, 3, 8, 8), CTX, threshold=torch.tensor(0.1))
    with pytest.raises(ValueError, match="rule must be 'median' or 'isolated'"):
        hp.hot_pixel_mask(np.zeros((8, 8)), 0.1, rule="mean")


# -- lens shading -------------------------------------------------------------------------
def _lens_params(k1=0.21, k2=0.07, offset=(0.0, 0.0)):
    return {
        "k1": np.broadcast_to(np.asarray(k1, float), (4,)).copy(),
        "k2": np.broadcast_to(np.asarray(k2, float), (4,)).copy(),
        "center_offset": np.asarray(offset, float),
    }


def test_lens_gain_follows_the_documented_polynomial(extras):
    h, w = 30, 40
    k1, k2 = 0.4, 0.1
    gain = extras.lens_shading.radial_gain((h, w), **_lens_params(k1, k2))
    half_diagonal = 0.5 * math.hypot(h, w)
    for i, j in [(0, 0), (h - 1, w - 1), (15, 3), (7, 22)]:
        r2 = ((i - (h - 1) / 2) ** 2 + (j - (w - 1) / 2) ** 2) / half_diagonal**2
        assert gain[i, j] == pytest.approx(1 + k1 * r2 + k2 * r2**2, rel=1e-14)
    # the four central pixels are equidistant from the centre; gain grows outwards
    centre = gain[14:16, 19:21]
    np.testing.assert_allclose(centre, centre[0, 0], rtol=1e-15)
    assert gain[0, 0] > gain[5, 5] > centre[0, 0] > 1.0


def test_lens_shading_undoes_synthetic_vignetting(extras):
    ls = extras.lens_shading
    params = _lens_params(0.8, 0.3)
    scene = np.full((48, 64), 0.5)
    vignetted = scene / ls.radial_gain(scene.shape, **params)
    assert vignetted[0, 0] < 0.5 * 0.5  # strong fall-off in the corner
    static, differentiable = _run_both(ls.radial_static, ls.radial_torch, vignetted, **params)
    np.testing.assert_allclose(static, scene, rtol=1e-12)
    np.testing.assert_array_equal(static, differentiable)


def test_lens_coefficients_apply_per_cfa_site(extras):
    ls = extras.lens_shading
    x = np.full((16, 16), 0.25)
    params = _lens_params(0.0, 0.0)
    params["k1"][3] = 1.0  # bottom-right site of the 2x2 block only
    static, differentiable = _run_both(ls.radial_static, ls.radial_torch, x, **params)
    np.testing.assert_array_equal(static, differentiable)
    site3 = np.zeros_like(x, dtype=bool)
    site3[1::2, 1::2] = True
    assert np.all(static[site3] > 0.25)
    np.testing.assert_array_equal(static[~site3], 0.25)


def test_center_offset_moves_the_optical_centre(extras):
    h, w = 40, 60
    offset_x = 0.1
    gain = extras.lens_shading.radial_gain((h, w), **_lens_params(0.5, 0.0, (offset_x, 0.0)))
    xc = (w - 1) / 2 + offset_x * 0.5 * math.hypot(h, w)
    row = gain[20]
    assert abs(int(np.argmin(row)) - xc) <= 0.5
    # y offset moves the centre down
    gain_y = extras.lens_shading.radial_gain((h, w), **_lens_params(0.5, 0.0, (0.0, -0.1)))
    assert int(np.argmin(gain_y[:, 30])) < h // 2 - 3


def test_lens_float32_form_matches_float64_static(extras):
    ls = extras.lens_shading
    rng = np.random.default_rng(5)
    x = rng.uniform(0, 1, size=(40, 50))
    params = _lens_params(1.2, 0.4, (0.05, -0.03))
    static = ls.radial_static(x, CTX, **params)
    with torch.no_grad():
        single = ls.radial_torch(
            torch.as_tensor(x, dtype=torch.float32)[None, None],
            CTX,
            **{k: torch.as_tensor(v, dtype=torch.float32) for k, v in params.items()},
        )
    assert single.dtype == torch.float32
    np.testing.assert_allclose(single[0, 0].numpy(), static, atol=1e-5)


def test_lens_bad_input_names_the_stage(extras):
    ls = extras.lens_shading
    with pytest.raises(ValueError, match=r"lens_shading.radial: expected an \(H, W\) mosaic"):
        ls.radial_static(np.zeros((3, 8, 8)), CTX, **_lens_params())
    with pytest.raises(ValueError, match=r"lens_shading.radial: .*even.*8x9"):
        ls.radial_torch(
            torch.zeros(1, 1, 8, 9),
            CTX,
            **{k: torch.as_tensor(v) for k, v in _lens_params().items()},
        )
