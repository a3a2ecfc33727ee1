"""Tests of the corruption declarations, the ImageNet-C adapter and its randomness."""

from __future__ import annotations

import numpy as np
import pytest
from imagecorruptions import corrupt, corruption_dict, get_corruption_names
from PIL import Image

from driftlab.corruptions import (
    BUILTIN_CORRUPTIONS,
    PAPER_CORRUPTIONS,
    PAPER_SEVERITIES,
    CorruptionError,
    CorruptionSpec,
    apply_corruption,
    apply_corruption_batch,
    corruption_seeds,
    get_corruption,
)
from driftlab.corruptions.imagenet_c import (
    IMAGENET_C_CORRUPTIONS,
    library_seeds,
    pad_to_min_side,
    seeded_global_rng,
    uint8_to_view,
    view_to_uint8,
)
from driftlab.hookspecs import hookimpl
from driftlab.registry import Registry, RegistryError

LIBRARY_NAMES = get_corruption_names("all")
NOISE = ("gaussian_noise", "shot_noise", "impulse_noise", "speckle_noise")


@pytest.fixture(scope="module")
def registry() -> Registry:
    return Registry.load(entry_points=False)


def _view(h: int = 32, w: int = 32, seed: int = 0, low: float = 0.0, high: float = 1.0):
    return np.random.default_rng(seed).uniform(low, high, size=(3, h, w))


def _quantised(view: np.ndarray) -> np.ndarray:
    return np.round(np.clip(view, 0, 1) * 255) / 255


# -- declarations and registration ----------------------------------------------------------
def test_builtins_cover_every_library_corruption_with_its_family():
    names = [spec.name for spec in IMAGENET_C_CORRUPTIONS]
    assert len(names) == 19
    assert sorted(names) == sorted(LIBRARY_NAMES)
    by_family = {spec.name: spec.family for spec in IMAGENET_C_CORRUPTIONS}
    for family in ("noise", "blur", "weather", "digital"):
        for name in get_corruption_names(family):
            assert by_family[name] == family, name
    extra = {"speckle_noise": "noise", "gaussian_blur": "blur"}
    extra |= {"spatter": "weather", "saturate": "digital"}
    assert set(get_corruption_names("validation")) == set(extra)
    for name, family in extra.items():
        assert by_family[name] == family
    assert all(spec.severities == (1, 2, 3, 4, 5) for spec in BUILTIN_CORRUPTIONS)


def test_registered_through_the_builtin_plugin(registry):
    assert not [e for e in registry.errors if "corruptions" in e.plugin]
    names = registry.names("corruptions")
    assert set(names) == {*LIBRARY_NAMES, "identity"}
    assert {registry.owner("corruptions", n) for n in names} == {"driftlab.builtin.corruptions"}
    assert set(PAPER_CORRUPTIONS) <= set(names)
    assert PAPER_SEVERITIES == (1, 3, 5)
    assert get_corruption("fog", registry).family == "weather"


def test_third_party_corruption_is_applied_by_name():
    def invert(view, severity, seed):
        return 1.0 - view * (severity / 5)

    spec = CorruptionSpec(name="invert", family="digital", doc="invert", function=invert)

    class Plugin:
        @hookimpl
        def driftlab_corruptions(self):
            return [spec]

    reg = Registry.load(entry_points=False, extra=[("invert-plugin", Plugin())])
    assert reg.owner("corruptions", "invert") == "invert-plugin"
    view = _view(8, 8)
    out = apply_corruption(view, "invert", 5, seed=0, registry=reg)
    np.testing.assert_allclose(out, 1 - view, atol=1e-6)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"name": "bad name"}, "name may contain only"),
        ({"name": ""}, "non-empty"),
        ({"family": "no/ise"}, "family may contain only"),
        ({"severities": ()}, "must not be empty"),
        ({"severities": (0, 1)}, "ints in 1..5"),
        ({"severities": (1, 6)}, "ints in 1..5"),
        ({"severities": (3, 1)}, "strictly increasing"),
        ({"severities": (1.0,)}, "ints in 1..5"),
        ({"severities": 3}, "sequence of ints"),
        ({"function": "gaussian"}, "must be callable"),
    ],
)
def test_spec_validation(kwargs, match):
    args = {"name": "x", "family": "noise", "doc": "d", "function": lambda v, s, r: v}
    with pytest.raises(ValueError, match=match):
        CorruptionSpec(**(args | kwargs))


# -- every corruption, every severity --------------------------------------------------------
@pytest.mark.parametrize("name", LIBRARY_NAMES)
def test_every_severity_shape_dtype_range_and_determinism(name, registry):
    view = _view(32, 32, seed=1)
    before = view.copy()
    for severity in (1, 2, 3, 4, 5):
        out = apply_corruption(view, name, severity, seed=11, registry=registry)
        assert out.shape == (3, 32, 32)
        assert out.dtype == np.float32
        assert out.min() >= 0.0 and out.max() <= 1.0
        # 8-bit results, as the benchmark defines them
        np.testing.assert_allclose(out * 255, np.round(out * 255), atol=1e-3)
        again = apply_corruption(view, name, severity, seed=11, registry=registry)
        np.testing.assert_array_equal(out, again)
        assert np.abs(out - _quantised(view)).max() > 0, f"{name} {severity} changed nothing"
    np.testing.assert_array_equal(view, before)


@pytest.mark.parametrize("name", LIBRARY_NAMES)
def test_equals_imagecorruptions_corrupt_on_8_bit_views(name, registry):
    """The adapter is the benchmark: same 8-bit output as ``imagecorruptions.corrupt``."""
    image = np.random.default_rng(2).integers(0, 256, size=(32, 48, 3), dtype=np.uint8)
    view = image.transpose(2, 0, 1) / 255.0
    np.testing.assert_array_equal(view_to_uint8(view), image)
    seed, severity = 4, 3
    global_seed, call_seed = library_seeds(seed)
    kwargs = {"seed": call_seed} if name in ("impulse_noise", "glass_blur") else {}
    with seeded_global_rng(global_seed):
        expected = corrupt(image, severity, name, **kwargs)
    out = apply_corruption(view, name, severity, seed, registry=registry)
    np.testing.assert_array_equal(np.round(out * 255).astype(np.uint8).transpose(1, 2, 0), expected)


@pytest.mark.parametrize("name", NOISE)
def test_noise_grows_with_severity(name, registry):
    view = _view(64, 64, seed=3, low=0.2, high=0.8)
    clean = _quantised(view)
    change = [
        float(np.abs(apply_corruption(view, name, s, seed=5, registry=registry) - clean).mean())
        for s in (1, 5)
    ]
    assert change[1] > 1.5 * change[0] > 0


def test_seed_changes_the_draw_but_not_the_clean_corruptions(registry):
    view = _view(32, 32)
    a = apply_corruption(view, "gaussian_noise", 3, seed=0, registry=registry)
    b = apply_corruption(view, "gaussian_noise", 3, seed=1, registry=registry)
    assert np.abs(a - b).max() > 0.1
    c = apply_corruption(view, "contrast", 3, seed=0, registry=registry)
    d = apply_corruption(view, "contrast", 3, seed=1, registry=registry)
    np.testing.assert_array_equal(c, d)


# -- randomness does not leak -----------------------------------------------------------------
def test_global_numpy_random_state_is_left_unchanged(registry):
    np.random.seed(123)
    expected = np.random.random(4)
    np.random.seed(123)
    for name in ("gaussian_noise", "frost", "glass_blur", "impulse_noise", "fog"):
        apply_corruption(_view(), name, 2, seed=9, registry=registry)
    np.testing.assert_array_equal(np.random.random(4), expected)


def test_global_state_is_restored_when_the_corruption_raises():
    np.random.seed(7)
    expected = np.random.random(3)
    np.random.seed(7)
    with pytest.raises(RuntimeError, match="boom"), seeded_global_rng(99):
        np.random.random(10)
        raise RuntimeError("boom")
    np.testing.assert_array_equal(np.random.random(3), expected)


def test_result_does_not_depend_on_the_global_state(registry):
    view = _view()
    np.random.seed(1)
    a = apply_corruption(view, "snow", 4, seed=3, registry=registry)
    np.random.seed(2)
    np.random.random(100)
    b = apply_corruption(view, "snow", 4, seed=3, registry=registry)
    np.testing.assert_array_equal(a, b)


# -- small views and the library's defects -----------------------------------------------------
@pytest.mark.parametrize("shape", [(1, 1), (8, 8), (17, 40), (31, 33), (40, 5)])
def test_views_smaller_than_32_pixels(shape, registry):
    view = _view(*shape, seed=4)
    for spec in IMAGENET_C_CORRUPTIONS:
        for severity in (1, 5):
            out = apply_corruption(view, spec.name, severity, seed=2, registry=registry)
            assert out.shape == (3, *shape), spec.name
            assert out.dtype == np.float32
            assert out.min() >= 0.0 and out.max() <= 1.0


def test_padding_rule_for_small_views(registry):
    """Mirror-pad to 32 (odd pixel after), corrupt, crop back: checked against the library."""
    view = _view(9, 13, seed=6)
    image = view_to_uint8(view)
    padded = np.pad(image, ((11, 12), (9, 10), (0, 0)), mode="symmetric")
    own, top, left = pad_to_min_side(image)
    np.testing.assert_array_equal(own, padded)
    assert (top, left) == (11, 9)
    expected = corrupt(padded, 4, "contrast")[11:20, 9:22]
    out = apply_corruption(view, "contrast", 4, seed=0, registry=registry)
    np.testing.assert_array_equal(out, uint8_to_view(expected))
    large = view_to_uint8(_view(32, 40))
    assert pad_to_min_side(large)[0] is large


def test_spatter_with_an_empty_liquid_layer_returns_the_view(registry):
    """imagecorruptions' spatter returns NaN when no liquid passes its threshold."""
    view = _view(32, 32, seed=8)
    image = view_to_uint8(view)
    for seed in range(400):
        global_seed, _ = library_seeds(seed)
        with seeded_global_rng(global_seed), np.errstate(invalid="ignore"):
            raw = corruption_dict["spatter"](Image.fromarray(image), 1)
        if np.isnan(raw).any():
            break
    else:
        pytest.fail("no seed in 0..399 gives an empty liquid layer on a 32x32 view")
    out = apply_corruption(view, "spatter", 1, seed=seed, registry=registry)
    assert np.isfinite(out).all()
    np.testing.assert_array_equal(out, uint8_to_view(image))


# -- batches ---------------------------------------------------------------------------------
def test_batch_equals_per_image_calls_with_derived_seeds(registry):
    views = np.stack([_view(32, 32, seed=i) for i in range(3)]).astype(np.float32)
    out = apply_corruption_batch(views, "shot_noise", 2, seed=5, registry=registry)
    assert out.shape == views.shape and out.dtype == np.float32
    seeds = corruption_seeds(5, 3)
    assert len(set(seeds)) == 3
    for i in range(3):
        single = apply_corruption(views[i], "shot_noise", 2, seed=seeds[i], registry=registry)
        np.testing.assert_array_equal(out[i], single)
    explicit = apply_corruption_batch(views, "shot_noise", 2, seed=[7, 7, 8], registry=registry)
    np.testing.assert_array_equal(
        explicit[1], apply_corruption(views[1], "shot_noise", 2, seed=7, registry=registry)
    )
    assert corruption_seeds(5, 0) == []


@pytest.mark.parametrize(
    ("views", "seed", "match"),
    [
        (np.zeros((3, 32, 32)), 0, r"\(B, 3, H, W\)"),
        (np.zeros((2, 4, 32, 32)), 0, r"\(B, 3, H, W\)"),
        (np.zeros((2, 3, 32, 32)), [1], "got 1 seeds for a batch of 2"),
        (np.zeros((2, 3, 32, 32)), [1, -1], r"seed\[1\] must be a non-negative int"),
        (np.zeros((2, 3, 32, 32)), 1.5, "int or a sequence of ints"),
        (np.full((2, 3, 32, 32), 2.0), 0, "values must lie in"),
    ],
)
def test_batch_errors(views, seed, match, registry):
    with pytest.raises(CorruptionError, match=match):
        apply_corruption_batch(views, "gaussian_noise", 1, seed=seed, registry=registry)


# -- identity --------------------------------------------------------------------------------
def test_identity_returns_the_view_unquantised(registry):
    view = _view(5, 7)
    for severity in (1, 3, 5):
        out = apply_corruption(view, "identity", severity, seed=severity, registry=registry)
        assert out.dtype == np.float32
        np.testing.assert_array_equal(out, view.astype(np.float32))
    assert get_corruption("identity", registry).family == "none"


# -- bad input -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("view", "severity", "seed", "error", "match"),
    [
        (_view(), 0, 0, CorruptionError, r"severity must be one of \[1, 2, 3, 4, 5\]"),
        (_view(), 6, 0, CorruptionError, "severity must be one of"),
        (_view(), True, 0, CorruptionError, "severity must be one of"),
        (_view(), 2.0, 0, CorruptionError, "severity must be one of"),
        (_view(), 1, -1, CorruptionError, "seed must be a non-negative int"),
        (_view(), 1, 1.5, CorruptionError, "seed must be a non-negative int"),
        (_view().transpose(1, 2, 0), 1, 0, CorruptionError, "looks channels-last"),
        (np.zeros((32, 32)), 1, 0, CorruptionError, r"expected a \(3, H, W\) view"),
        (np.zeros((3, 0, 4)), 1, 0, CorruptionError, r"expected a \(3, H, W\) view"),
        (np.zeros((3, 8, 8), np.uint8), 1, 0, CorruptionError, "dtype uint8"),
        (np.full((3, 8, 8), np.nan), 1, 0, CorruptionError, "NaN or Inf"),
        (_view() * 255, 1, 0, CorruptionError, "pass clip=True"),
    ],
)
def test_bad_input_is_named(view, severity, seed, error, match, registry):
    with pytest.raises(error, match=match):
        apply_corruption(view, "gaussian_noise", severity, seed, registry=registry)


def test_unknown_name_suggests_the_closest(registry):
    with pytest.raises(RegistryError, match="did you mean 'gaussian_noise'"):
        apply_corruption(_view(), "gausian_noise", 1, 0, registry=registry)
    with pytest.raises(CorruptionError, match="name or a CorruptionSpec"):
        apply_corruption(_view(), 3, 1, 0, registry=registry)


def test_clip_opts_in_to_out_of_range_views(registry):
    view = _view() * 1.5 - 0.2
    out = apply_corruption(view, "identity", 1, 0, clip=True, registry=registry)
    np.testing.assert_array_equal(out, np.clip(view, 0, 1).astype(np.float32))


@pytest.mark.parametrize(
    ("function", "match"),
    [
        (lambda v, s, r: v[:, :4], "returned shape"),
        (lambda v, s, r: v + 2.0, "outside"),
        (lambda v, s, r: np.full_like(v, np.nan), "NaN or Inf"),
        (lambda v, s, r: v.astype(np.complex64), "expected real numbers"),
    ],
)
def test_broken_plugin_corruption_is_named(function, match):
    spec = CorruptionSpec(name="broken", family="noise", doc="d", function=function)
    with pytest.raises(CorruptionError, match=rf"corruption 'broken' \(severity 2\) .*{match}"):
        apply_corruption(_view(8, 8), spec, 2, 0)
