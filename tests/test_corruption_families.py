"""Corruption severity-table families: ImageNet-C (default) and CIFAR-10-C (the paper's)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from imagecorruptions import corruption_dict
from PIL import Image
from skimage.filters import gaussian

from driftlab.corruptions import (
    BUILTIN_CORRUPTIONS,
    DEFAULT_FAMILY,
    FAMILIES,
    PAPER_CORRUPTIONS,
    CorruptionError,
    CorruptionSpec,
    SeverityTable,
    apply_corruption,
    apply_corruption_batch,
    corruption_parameters,
    family_parameters,
    get_corruption,
)
from driftlab.corruptions.kernels import KERNELS
from driftlab.corruptions.tables import CIFAR_C, IMAGENET_C, parameter_names
from tests.helpers import builtin_registry

REGISTRY = builtin_registry()
NAMES = [spec.name for spec in BUILTIN_CORRUPTIONS if spec.name != "identity"]


def _scene(size: int = 64, seed: int = 0) -> np.ndarray:
    """A smooth, structured view in [0.15, 0.85]: gradients, a disc and a few edges."""
    yy, xx = np.mgrid[0:size, 0:size] / size
    rng = np.random.default_rng(seed)
    disc = ((yy - 0.5) ** 2 + (xx - 0.45) ** 2 < 0.06).astype(float)
    bars = (np.floor(xx * 8) % 2) * 0.15
    texture = gaussian(rng.uniform(size=(size, size)), 1.5) * 0.3
    r = 0.2 + 0.4 * xx + 0.2 * disc + texture * 0.5
    g = 0.3 + 0.3 * yy + bars + texture * 0.3
    b = 0.5 - 0.2 * disc + 0.2 * xx * yy
    return np.clip(np.stack([r, g, b]), 0.15, 0.85).astype(np.float32)


def test_both_families_define_every_builtin_corruption():
    assert DEFAULT_FAMILY == "imagenet-c" and FAMILIES == ("imagenet-c", "cifar-c")
    for name in NAMES:
        spec = REGISTRY.get("corruptions", name)
        assert spec.families == ("imagenet-c", "cifar-c"), name
    assert set(family_parameters("cifar-c")) == set(NAMES) == set(family_parameters("imagenet-c"))


def test_cifar_c_parameters_per_severity_are_the_papers():
    table = family_parameters("cifar-c")
    column = lambda name, p: [table[name][s][p] for s in range(1, 6)]  # noqa: E731
    assert column("gaussian_noise", "sigma") == [0.04, 0.06, 0.08, 0.09, 0.10]
    assert column("gaussian_blur", "sigma") == [0.4, 0.6, 0.7, 0.8, 1.0]
    assert column("contrast", "factor") == [0.75, 0.5, 0.4, 0.3, 0.15]
    assert column("shot_noise", "photons") == [500, 250, 100, 75, 50]
    assert column("impulse_noise", "amount") == [0.01, 0.02, 0.03, 0.05, 0.07]
    assert column("speckle_noise", "sigma") == [0.06, 0.1, 0.12, 0.16, 0.2]
    assert column("brightness", "shift") == [0.05, 0.1, 0.15, 0.2, 0.3]
    assert column("zoom_blur", "max_zoom") == [1.06, 1.11, 1.16, 1.21, 1.26]
    assert table["saturate"][3] == {"scale": 1.5, "offset": 0}
    # make_cifar_c.py gives elastic_transform in units of its 32-pixel side: 32 * (0.05, 0.2, 0.07)
    assert table["elastic_transform"][2] == pytest.approx(
        {"alpha": 1.6, "sigma": 6.4, "affine": 2.24}
    )
    assert corruption_parameters("gaussian_noise", "cifar-c", REGISTRY)[3] == {"sigma": 0.08}


def test_imagenet_c_parameters_per_severity():
    table = family_parameters("imagenet-c")
    column = lambda name, p: [table[name][s][p] for s in range(1, 6)]  # noqa: E731
    assert column("gaussian_noise", "sigma") == [0.08, 0.12, 0.18, 0.26, 0.38]
    assert column("gaussian_blur", "sigma") == [1, 2, 3, 4, 6]
    assert column("contrast", "factor") == [0.4, 0.3, 0.2, 0.1, 0.05]
    assert column("elastic_transform", "alpha") == [12.5, 16.25, 21.25, 25.0, 30.0]
    assert corruption_parameters("contrast", registry=REGISTRY)[5] == {"factor": 0.05}
    assert corruption_parameters("identity", "cifar-c", REGISTRY) == {}
    with pytest.raises(CorruptionError, match="unknown corruption family 'svhn-c'"):
        family_parameters("svhn-c")


@pytest.mark.parametrize("name", ["contrast", "brightness", "saturate", "gaussian_blur"])
@pytest.mark.parametrize("severity", [1, 3, 5])
def test_imagenet_c_table_matches_the_library(name, severity):
    """The transcribed ImageNet-C rows, run through the float kernels, give the library's result."""
    image = np.round(_scene(48).transpose(1, 2, 0) * 255).astype(np.uint8)
    library = np.asarray(corruption_dict[name](Image.fromarray(image), severity), dtype=np.float64)
    names = parameter_names(name, "imagenet-c")[0]
    params = dict(zip(names, IMAGENET_C[name][severity - 1], strict=True))
    ours = KERNELS[name](image / 255.0, np.random.default_rng(0), **params)
    np.testing.assert_allclose(np.clip(ours, 0, 1) * 255, np.clip(library, 0, 255), atol=1e-6)


def test_cifar_c_applies_its_table_in_float():
    view = np.full((3, 96, 96), 0.5, dtype=np.float32)
    for severity, sigma in enumerate(CIFAR_C["gaussian_noise"], start=1):
        out = apply_corruption(
            view, "gaussian_noise", severity, 7, registry=REGISTRY, family="cifar-c"
        )
        assert np.std(out - view) == pytest.approx(sigma[0], rel=0.05)
    scene = _scene()
    out = apply_corruption(scene, "contrast", 2, 0, registry=REGISTRY, family="cifar-c")
    means = scene.mean(axis=(1, 2), keepdims=True)
    np.testing.assert_allclose(out, (scene - means) * 0.5 + means, atol=1e-6)
    blurred = apply_corruption(scene, "gaussian_blur", 5, 0, registry=REGISTRY, family="cifar-c")
    expected = gaussian(scene.transpose(1, 2, 0).astype(np.float64), sigma=1.0, channel_axis=-1)
    np.testing.assert_allclose(blurred, expected.transpose(2, 0, 1), atol=1e-6)
    assert not np.allclose(blurred * 255, np.round(blurred * 255))  # no 8-bit round trip


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize(
    "name",
    # the paper's protocol except saturate (severities 1-2 desaturate, 3-5 saturate, so the
    # change is not monotone by design) and elastic_transform (in CIFAR-10-C the affine part
    # shrinks while the elastic part grows); plus other corruptions whose strength only grows
    # (not pixelate: on a smooth view its change depends on where the box grid falls)
    sorted(
        (set(PAPER_CORRUPTIONS) - {"identity", "saturate", "elastic_transform"})
        | {"fog", "snow", "motion_blur"}
    ),
)
def test_mean_absolute_change_grows_with_severity(family, name):
    scene = _scene()
    changes = []
    for severity in range(1, 6):
        diffs = [
            np.abs(
                apply_corruption(scene, name, severity, seed, registry=REGISTRY, family=family)
                - scene
            ).mean()
            for seed in (1, 2, 3)
        ]
        changes.append(float(np.mean(diffs)))
    assert all(b >= a * 0.98 for a, b in itertools.pairwise(changes)), changes
    assert changes[-1] > changes[0] * 1.2, changes


def test_cifar_c_is_milder_than_imagenet_c_at_severity_3():
    scene = _scene()
    for name in ("gaussian_noise", "gaussian_blur", "contrast", "shot_noise", "impulse_noise"):
        delta = {
            family: np.abs(
                apply_corruption(scene, name, 3, 0, registry=REGISTRY, family=family) - scene
            ).mean()
            for family in FAMILIES
        }
        assert delta["cifar-c"] < delta["imagenet-c"], (name, delta)


@pytest.mark.parametrize("name", NAMES)
def test_every_cifar_c_corruption_is_valid_deterministic_and_leaves_global_rng(name):
    scene = _scene(40)
    state = np.random.get_state()
    a = apply_corruption(scene, name, 4, 11, registry=REGISTRY, family="cifar-c")
    b = apply_corruption(scene, name, 4, 11, registry=REGISTRY, family="cifar-c")
    assert a.shape == scene.shape and a.dtype == np.float32
    assert a.min() >= 0.0 and a.max() <= 1.0
    np.testing.assert_array_equal(a, b)
    after = np.random.get_state()
    assert state[0] == after[0] and np.array_equal(state[1], after[1]) and state[2:] == after[2:]


def test_batch_takes_the_family_and_matches_single_calls():
    views = np.stack([_scene(32, seed) for seed in range(3)])
    batch = apply_corruption_batch(
        views, "speckle_noise", 2, [5, 6, 7], registry=REGISTRY, family="cifar-c"
    )
    for i, seed in enumerate((5, 6, 7)):
        single = apply_corruption(
            views[i], "speckle_noise", 2, seed, registry=REGISTRY, family="cifar-c"
        )
        np.testing.assert_array_equal(batch[i], single)
    default = apply_corruption_batch(views, "speckle_noise", 2, [5, 6, 7], registry=REGISTRY)
    assert not np.allclose(default, batch)


def test_unknown_family_is_named_and_identity_is_family_independent():
    view = _scene(32)
    with pytest.raises(
        CorruptionError, match=r"no 'svhn-c' severity table; it defines: imagenet-c, cifar-c"
    ):
        apply_corruption(view, "gaussian_noise", 1, 0, registry=REGISTRY, family="svhn-c")
    out = apply_corruption(view, "identity", 3, 0, registry=REGISTRY, family="cifar-c")
    np.testing.assert_array_equal(out, view)
    assert get_corruption("identity", REGISTRY, family="cifar-c").name == "identity"


def test_a_plugin_corruption_may_declare_its_own_families():
    def darker(view, severity, seed):
        return view * (1 - 0.1 * severity)

    def much_darker(view, severity, seed):
        return view * (1 - 0.2 * severity)

    spec = CorruptionSpec(
        name="dim",
        family="digital",
        doc="dimming",
        function=darker,
        tables=[
            SeverityTable("imagenet-c", ("factor",), [0.9, 0.8, 0.7, 0.6, 0.5], darker),
            SeverityTable("cifar-c", ("factor",), [0.8, 0.6, 0.4, 0.2, 0.0], much_darker),
        ],
    )
    view = np.full((3, 8, 8), 0.5, dtype=np.float32)
    assert apply_corruption(view, spec, 2, 0, family="cifar-c")[0, 0, 0] == pytest.approx(0.3)
    assert apply_corruption(view, spec, 2, 0)[0, 0, 0] == pytest.approx(0.4)
    assert spec.tables["cifar-c"].describe() == "factor 0.8, 0.6, 0.4, 0.2, 0"
    with pytest.raises(ValueError, match="expected 5 rows"):
        SeverityTable("x", ("a",), [1, 2], darker)
    with pytest.raises(ValueError, match=r"tables\['cifar-c'\] holds the table of family 'x'"):
        CorruptionSpec(
            name="d2", family="digital", doc="d", function=darker,
            tables={"cifar-c": SeverityTable("x", ("a",), [1, 2, 3, 4, 5], darker)},
        )  # fmt: skip
