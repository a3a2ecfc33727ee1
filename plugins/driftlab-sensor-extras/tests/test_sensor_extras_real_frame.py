"""The stages on the real openISP frame (skipped when ../shared/data is absent).

The frame is a 10-bit RGGB shot of a test chart with real vignetting. It has
no single-pixel defects above 10 % of the white level (the small bright specks
in its dark patches are blurred over several pixels by the lens, so they are
scene content), so hot pixels are injected here at known places.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage as ndi
import torch
from driftlab.pipeline import build_static, load_pipeline_file
from driftlab.stages.base import StageContext
from driftlab.verify import verify_pipeline

pytestmark = pytest.mark.realdata

CTX = StageContext(cfa="RGGB", bit_depth=10)
OFFSETS = [(dy, dx) for dy in (-2, 0, 2) for dx in (-2, 0, 2) if (dy, dx) != (0, 0)]


def _inject_hot_pixels(raw, count=300, seed=0):
    """Set ``count`` well-separated pixels of dark areas to 1.0 (stuck-white photosites)."""
    dark = ndi.maximum_filter(raw, size=5) < 0.35
    grid = np.zeros_like(dark)
    grid[8:-8:16, 8:-8:16] = True  # 16 px apart: no two share a same-colour neighbourhood
    candidates = np.argwhere(dark & grid)
    rng = np.random.default_rng(seed)
    chosen = candidates[rng.choice(len(candidates), size=count, replace=False)]
    chosen[:, 1] += rng.integers(0, 2, size=count)  # also hit G and B sites, not only R
    chosen[:, 0] += rng.integers(0, 2, size=count)
    hot = raw.copy()
    hot[chosen[:, 0], chosen[:, 1]] = 1.0
    return hot, chosen


def _forms(extras, variant):
    hp = extras.hot_pixel
    pair = {
        "median_replace": (hp.median_replace_static, hp.median_replace_torch),
        "isolated": (hp.isolated_static, hp.isolated_torch),
    }
    return pair[variant]


@pytest.mark.parametrize("variant", ["median_replace", "isolated"])
def test_injected_hot_pixels_are_found_and_replaced_by_the_neighbour_median(
    extras, openisp_raw, variant
):
    hot, where = _inject_hot_pixels(openisp_raw)
    static_fn, torch_fn = _forms(extras, variant)
    spec_threshold = 0.2 if variant == "median_replace" else 0.1
    out = static_fn(hot, CTX, threshold=np.asarray(spec_threshold))
    for i, j in where:
        expected = np.median([openisp_raw[i + dy, j + dx] for dy, dx in OFFSETS])
        assert out[i, j] == pytest.approx(expected, abs=1e-15), (i, j)
    changed = out != hot
    injected = np.zeros_like(changed)
    injected[where[:, 0], where[:, 1]] = True
    if variant == "isolated":
        # the real frame has no isolated defect above 10 % of white: only the injected change
        np.testing.assert_array_equal(changed, injected)
    else:
        # everything else the median rule touches is high-contrast scene structure
        others = changed & ~injected
        local_range = ndi.maximum_filter(hot, size=5) - ndi.minimum_filter(hot, size=5)
        assert np.all(local_range[others] > 0.3)
        assert others.sum() < 0.002 * others.size
    with torch.no_grad():
        tensor_out = torch_fn(
            torch.as_tensor(hot)[None, None],
            CTX,
            threshold=torch.tensor(spec_threshold, dtype=torch.float64),
        )[0, 0].numpy()
    np.testing.assert_array_equal(tensor_out, out)


def _paper_band_falloff(mosaic, reference):
    """Mean of the white paper at r > 0.55 over the paper at r < 0.2, for R and B sites.

    Paper: 2x2 blocks of ``reference`` whose green sites are near saturation in a
    5x5-block neighbourhood and whose R/B ratio is the paper's (about 0.69).
    Only the horizontal middle band of the frame (|y| < 0.2 of the half-height)
    is used, where the chart's illumination is even top to bottom.
    """
    h, w = mosaic.shape
    blocks = mosaic.reshape(h // 2, 2, w // 2, 2)
    ref = reference.reshape(h // 2, 2, w // 2, 2)
    red, blue = ref[:, 0, :, 0], ref[:, 1, :, 1]
    green = np.minimum(ref[:, 0, :, 1], ref[:, 1, :, 0])
    ratio = red / np.maximum(blue, 1e-3)
    paper = (ndi.minimum_filter(green, size=5) >= 0.88) & (np.abs(ratio - 0.69) < 0.04)
    paper &= (red < 0.99) & (blue < 0.99)
    yy, xx = np.mgrid[0 : h // 2, 0 : w // 2]
    r = np.hypot(2 * yy - (h - 1) / 2, 2 * xx - (w - 1) / 2) / (0.5 * np.hypot(h, w))
    band = paper & (np.abs(2 * yy - (h - 1) / 2) < 0.2 * h / 2)
    outer, inner = band & (r > 0.55), band & (r < 0.2)
    assert outer.sum() > 1000 and inner.sum() > 1000
    return [
        blocks[:, dy, :, dx][outer].mean() / blocks[:, dy, :, dx][inner].mean()
        for dy, dx in ((0, 0), (1, 1))
    ]


def test_default_lens_shading_flattens_the_real_vignetting(extras, registry, openisp_raw):
    spec = registry.stage("lens_shading", "radial")
    defaults = {p.name: np.asarray(p.default, dtype=np.float64) for p in spec.params}
    before = _paper_band_falloff(openisp_raw, openisp_raw)
    corrected = extras.lens_shading.radial_static(openisp_raw, CTX, **defaults)
    after = _paper_band_falloff(corrected, openisp_raw)
    for b, a in zip(before, after, strict=True):
        assert b < 0.95  # R and B paper is 5-7 % darker at the sides
        assert abs(a - 1.0) < 0.025
    with torch.no_grad():
        tensor = extras.lens_shading.radial_torch(
            torch.as_tensor(openisp_raw)[None, None],
            CTX,
            **{k: torch.as_tensor(v) for k, v in defaults.items()},
        )[0, 0].numpy()
    np.testing.assert_array_equal(tensor, corrected)


def test_example_pipeline_on_a_real_crop_in_both_forms(registry, examples_dir, openisp_raw):
    (spec,) = load_pipeline_file(examples_dir / "openisp_sensor_extras.toml")
    camera = registry.camera("openisp")
    crop = openisp_raw[128:384, 1000:1256]  # dark patches and a bright edge
    view = build_static(spec, camera, registry)(crop)
    assert view.shape == (3, 256, 256)
    assert verify_pipeline(spec, camera, crop, registry) <= 1e-9
