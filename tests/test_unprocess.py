"""RGB-to-raw (unprocessing): transfer curve, CFA sampling, inversion of the reference ISP."""

from __future__ import annotations

import numpy as np
import pytest

from driftlab.camera import CameraParams
from driftlab.cfa import CFA_PATTERNS
from driftlab.datasets.unprocess import (
    linear_to_raw,
    linear_to_srgb,
    mosaic,
    srgb_to_linear,
    unprocess,
)
from driftlab.pipeline import PipelineSpec, StageConfig, build_static, reference_pipeline

CAMERA = CameraParams(
    name="unprocess-test",
    cfa="RGGB",
    bit_depth=12,
    black_level=(64 / 4095,) * 4,
    white_balance=(1.8, 1.0, 1.4),
    color_matrix=((1.6, -0.45, -0.15), (-0.2, 1.45, -0.25), (0.05, -0.5, 1.45)),
    gain=0.5,
    read_noise=2.0,
)


def test_srgb_transfer_curve_values_and_round_trip():
    values = np.array([[[0.0, 0.04045, 0.5]], [[1.0, 0.2, 0.9]]])
    linear = srgb_to_linear(values)
    assert linear[0, 0, 0] == 0.0 and linear[1, 0, 0] == pytest.approx(1.0)
    assert linear[0, 0, 1] == pytest.approx(0.04045 / 12.92)
    assert linear[0, 0, 2] == pytest.approx(0.21404, abs=1e-5)
    assert np.allclose(linear_to_srgb(linear), values, atol=1e-12)
    as_uint8 = srgb_to_linear(np.full((2, 2, 3), 255, dtype=np.uint8))
    assert np.allclose(as_uint8, 1.0)
    as_uint16 = srgb_to_linear(np.full((2, 2, 3), 65535, dtype=np.uint16))
    assert np.allclose(as_uint16, 1.0)


@pytest.mark.parametrize("pattern", CFA_PATTERNS)
def test_mosaic_keeps_the_colour_the_pattern_places_at_each_site(pattern):
    rgb = np.empty((4, 6, 3))
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 0.1, 0.5, 0.9
    out = mosaic(rgb, pattern)
    value = {"R": 0.1, "G": 0.5, "B": 0.9}
    for k, colour in enumerate(pattern):
        dy, dx = divmod(k, 2)
        assert np.all(out[dy::2, dx::2] == value[colour])


def test_linear_to_raw_without_noise_is_inverted_by_the_reference_isp():
    colour = np.array([0.3, 0.5, 0.2])
    linear = np.broadcast_to(colour, (16, 16, 3)).copy()
    raw = linear_to_raw(linear, CAMERA, noise=False)
    assert raw.shape == (16, 16) and raw.min() >= 0.0 and raw.max() <= 1.0
    assert np.allclose(raw * 4095, np.round(raw * 4095))
    spec = PipelineSpec(
        name="linear",
        stages=[
            StageConfig(slot="black_level"),
            StageConfig(slot="demosaic", variant="bilinear"),
            StageConfig(slot="white_balance"),
            StageConfig(slot="color_correction", variant="matrix"),
        ],
    )
    view = build_static(spec, CAMERA)(raw)
    black = 64 / 4095
    inner = view[:, 2:-2, 2:-2].reshape(3, -1)
    assert np.allclose(inner, (1 - black) * colour[:, None], atol=2e-3)


def test_unprocessed_image_renders_back_close_to_the_original():
    yy, xx = np.mgrid[0:32, 0:32] / 31.0
    srgb = np.stack([0.3 + 0.5 * xx, 0.25 + 0.5 * yy, 0.6 - 0.3 * xx], axis=-1)
    raw = unprocess(srgb, CAMERA, noise=False)
    view = build_static(reference_pipeline("bilinear"), CAMERA)(raw)
    error = np.abs(view.transpose(1, 2, 0) - srgb)[3:-3, 3:-3]
    assert error.mean() < 0.02 and error.max() < 0.06


@pytest.mark.parametrize("pattern", CFA_PATTERNS)
def test_every_cfa_pattern_round_trips(pattern):
    camera = CAMERA.replace(cfa=pattern)
    srgb = np.broadcast_to([0.7, 0.4, 0.55], (12, 12, 3))
    view = build_static(reference_pipeline("bilinear"), camera)(
        unprocess(srgb, camera, noise=False)
    )
    assert np.allclose(view[:, 4:-4, 4:-4].mean(axis=(1, 2)), [0.7, 0.4, 0.55], atol=0.03)


def test_noise_is_seeded_and_grows_with_signal():
    linear = np.zeros((64, 64, 3))
    linear[:, 32:] = 0.5
    a = linear_to_raw(linear, CAMERA, rng=np.random.default_rng(1))
    b = linear_to_raw(linear, CAMERA, rng=np.random.default_rng(1))
    c = linear_to_raw(linear, CAMERA, rng=np.random.default_rng(2))
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    dark, bright = a[:, :32:2], a[:, 33::2]  # a green site column in each half
    assert bright.std() > 3 * dark.std() > 0


def test_inversions_can_be_switched_off():
    linear = np.full((4, 4, 3), 0.4)
    raw = linear_to_raw(
        linear,
        CAMERA,
        noise=False,
        quantise=False,
        invert_color=False,
        invert_white_balance=False,
    )
    black = 64 / 4095
    assert np.allclose(raw, black + (1 - black) * 0.4)


@pytest.mark.parametrize(
    ("image", "match"),
    [
        (np.zeros((4, 4)), r"\(H, W, 3\)"),
        (np.full((4, 4, 3), 1.5), r"\[0, 1\]"),
        (np.full((4, 4, 3), np.nan), "NaN"),
        (np.zeros((4, 4, 3), dtype=np.int32), "dtype|uint8"),
    ],
)
def test_bad_images_are_rejected(image, match):
    with pytest.raises(ValueError, match=match):
        unprocess(image, CAMERA, noise=False)


def test_bad_cameras_and_options_are_rejected():
    linear = np.full((4, 4, 3), 0.4)
    with pytest.raises(ValueError, match="singular"):
        linear_to_raw(linear, CAMERA.replace(color_matrix=np.zeros((3, 3))), noise=False)
    with pytest.raises(ValueError, match="positive"):
        linear_to_raw(linear, CAMERA.replace(white_balance=(-1.0, 1.0, 1.0)), noise=False)
    with pytest.raises(ValueError, match="rng"):
        linear_to_raw(linear, CAMERA)
    with pytest.raises(ValueError, match="gain"):
        linear_to_raw(linear, CAMERA.replace(gain=None), rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="even"):
        linear_to_raw(np.full((5, 4, 3), 0.4), CAMERA, noise=False)
    with pytest.raises(ValueError, match="CFA"):
        mosaic(linear, "RGBG")
