"""Embedded generated datasets: determinism, physics of the capture, targets and declarations."""

from __future__ import annotations

import numpy as np
import pytest

from driftlab.datasets.base import DatasetError
from driftlab.datasets.embedded import Canvas, render_raw, smooth_noise
from driftlab.datasets.embedded_aerial import EMBEDDED_AERIAL, TILES_PER_FLIGHT
from driftlab.datasets.embedded_smear import EMBEDDED_SMEAR, ITEMS_PER_SLIDE, SMEAR_CLASSES
from driftlab.pipeline import build_static, get_pipeline
from driftlab.registry import Registry

SPECS = [EMBEDDED_SMEAR, EMBEDDED_AERIAL]


def _bytes(ds, indices):
    out = []
    for i in indices:
        sample = ds[i]
        out.append(sample.raw.tobytes() + np.asarray(sample.target).tobytes())
    return out


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_same_seed_gives_the_same_bytes_in_any_order(spec):
    a = spec.open(n_items=30, seed=11)
    b = spec.open(n_items=30, seed=11)
    indices = [0, 7, 29, 13]
    assert _bytes(a, indices) == _bytes(b, indices[::-1])[::-1]
    c = spec.open(n_items=30, seed=12)
    assert _bytes(a, [0]) != _bytes(c, [0])
    assert a.ids == b.ids and a.ids != c.ids


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_raw_is_a_quantised_mosaic_above_the_black_level(spec):
    ds = spec.open(n_items=6, size=48)
    camera = spec.camera
    for i in range(len(ds)):
        raw = ds[i].raw
        assert raw.shape == (48, 48) and raw.dtype == np.float32
        assert raw.min() >= 0.0 and raw.max() <= 1.0
        dn = raw.astype(np.float64) * camera.saturation
        assert np.allclose(dn, np.round(dn), atol=1e-3)
        assert np.median(raw) > camera.black_level[0]


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_lower_intensity_is_rendered_natively_with_the_same_scene(spec):
    full = spec.open(n_items=4, seed=2)
    low = spec.open(n_items=4, seed=2, intensity=0.1)
    black = spec.camera.black_level[0]
    for i in range(4):
        ratio = (low[i].raw.mean() - black) / (full[i].raw.mean() - black)
        assert ratio == pytest.approx(0.1, rel=0.15)
        assert low[i].meta["intensity"] == 0.1
        assert np.array_equal(np.asarray(low[i].target), np.asarray(full[i].target))


def test_smear_labels_are_balanced_and_match_the_samples():
    ds = EMBEDDED_SMEAR.open(n_items=50)
    labels = ds.labels
    assert np.bincount(labels).tolist() == [10] * len(SMEAR_CLASSES)
    assert [ds[i].target for i in range(10)] == labels[:10].tolist()
    assert ds[3].meta["class"] == SMEAR_CLASSES[labels[3]]
    assert ds.groups[ITEMS_PER_SLIDE - 1] != ds.groups[ITEMS_PER_SLIDE]
    assert len(set(ds.groups)) == 2


def test_smear_slides_share_their_conditions():
    ds = EMBEDDED_SMEAR.open(n_items=60)
    blur = [ds.scene(i).blur_sigma for i in (0, 1, 24, 25, 26)]
    assert blur[0] == blur[1] == blur[2] != blur[3] == blur[4]


def test_smear_renders_with_sane_colours_through_the_reference_isp():
    ds = EMBEDDED_SMEAR.open(n_items=5)
    pipeline = build_static(get_pipeline("bi,s,ga"), ds.spec.camera)
    for i in range(5):
        view = pipeline(ds[i].raw)
        background = np.median(view.reshape(3, -1), axis=1)  # plasma, lit by the lamp
        assert background.min() > 0.6
        assert background.max() - background.min() < 0.12


def test_aerial_masks_mark_cars():
    ds = EMBEDDED_AERIAL.open(n_items=40)
    raws, masks = ds.materialise()
    assert raws.shape == (40, 64, 64) and masks.shape == (40, 64, 64)
    assert masks.dtype == np.uint8 and set(np.unique(masks)) <= {0, 1}
    with_cars = masks.reshape(40, -1).any(axis=1)
    assert with_cars.mean() > 0.75
    assert 0.01 < masks.mean() < 0.15
    assert ds.labels is None
    assert len(set(ds.groups)) == 1  # one flight
    groups = EMBEDDED_AERIAL.open(n_items=TILES_PER_FLIGHT + 1).groups  # no rendering needed
    assert groups[TILES_PER_FLIGHT - 1] != groups[TILES_PER_FLIGHT]
    assert sum(ds[i].meta["cars"] > 0 for i in range(10)) >= 7


def test_aerial_renders_with_plausible_colours():
    ds = EMBEDDED_AERIAL.open(n_items=4)
    pipeline = build_static(get_pipeline("ma,s,ga"), ds.spec.camera)
    means = np.stack([pipeline(ds[i].raw).mean(axis=(1, 2)) for i in range(4)])
    assert np.all(means > 0.1) and np.all(means < 0.8)


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_declarations_and_registration(spec):
    registry = Registry.load(entry_points=False)
    assert registry.get("datasets", spec.name) is spec
    assert registry.camera(spec.camera.name) == spec.camera
    assert not spec.needs_data_root and 0.01 in spec.intensities
    assert spec.camera.gain is not None and spec.camera.read_noise is not None
    assert len(spec.open(n_items=3)) == 3


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"n_items": 0}, "n_items"),
        ({"size": 63}, "size"),
        ({"size": 8}, "size"),
        ({"seed": -1}, "seed"),
    ],
)
@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_bad_options_are_rejected(spec, options, match):
    with pytest.raises(DatasetError, match=match):
        spec.open(**options)


def test_render_raw_checks_its_input():
    rng = np.random.default_rng(0)
    scene = np.full((32, 32, 3), 0.5)
    camera = EMBEDDED_SMEAR.camera
    with pytest.raises(ValueError, match="gain"):
        render_raw(scene, camera.replace(gain=None), blur_sigma=1, intensity=1, rng=rng)
    with pytest.raises(ValueError, match="multiples"):
        render_raw(scene[:30], camera, blur_sigma=1, intensity=1, rng=rng)
    with pytest.raises(ValueError, match="blur"):
        render_raw(scene, camera, blur_sigma=-1, intensity=1, rng=rng)
    raw = render_raw(scene, camera, blur_sigma=0.0, intensity=1, rng=rng)
    assert raw.shape == (16, 16)


def test_canvas_window_and_smooth_noise():
    canvas = Canvas(8)
    index, yy, xx = canvas.window(0.0, 0.0, 1.0)
    assert yy.shape == (4, 1) and xx.shape == (1, 4)
    assert np.allclose(yy.ravel(), canvas.coords[index[0]])
    _, yy, xx = canvas.window(100.0, 0.0, 1.0)
    assert yy.size == 0
    field = smooth_noise(np.random.default_rng(0), (40, 30), 9.0)
    assert field.shape == (40, 30)
    assert abs(field.mean()) < 1e-9 and field.std() == pytest.approx(1.0)
