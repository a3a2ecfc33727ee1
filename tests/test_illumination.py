"""Lower-illumination simulator: physics, seeding, equivalence and the dataset wrapper."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from driftlab.camera import CameraParams
from driftlab.datasets.base import DatasetError, DatasetSpec, RawDataset, Sample
from driftlab.datasets.intensity import SimulatedIntensity, item_seed, simulate_intensity
from driftlab.pipeline import PipelineSpec, StageConfig, build_static
from driftlab.registry import Registry
from driftlab.stages.base import StageContext
from driftlab.stages.illumination import (
    STAGES,
    gaussian_noise_field,
    illumination_binomial_static,
    illumination_gaussian_static,
    illumination_gaussian_torch,
    illumination_poisson_static,
    simulate_low_light,
)
from driftlab.verify import verify_stage

BITS = 12
WL = 2**BITS - 1
SIZE = (256, 256)


def _params(ratio=0.25, gain=2.0, read_noise=3.0, black=0.0):
    return {
        "ratio": np.asarray(ratio, dtype=np.float64),
        "gain": np.asarray(gain, dtype=np.float64),
        "read_noise": np.asarray(read_noise, dtype=np.float64),
        "black_level": np.full(4, black, dtype=np.float64),
    }


def _check_moments(out, mean, variance, *, mean_sigmas=5.0, var_rel=0.05):
    n = out.size
    assert abs(out.mean() - mean) < mean_sigmas * np.sqrt(variance / n), (out.mean(), mean)
    assert out.var() == pytest.approx(variance, rel=var_rel)


@pytest.mark.parametrize("black", [0.0, 0.05])
def test_poisson_mean_and_variance_follow_the_photon_transfer_model(black):
    x = np.full(SIZE, black + 0.4)
    ratio, gain, read = 0.25, 2.0, 3.0
    out = illumination_poisson_static(
        x, StageContext(bit_depth=BITS, seed=3), **_params(ratio, gain, read, black)
    )
    # signal above black is dimmed, the black level stays, nothing is rescaled by 1/ratio
    mean = black + ratio * 0.4
    mean_dn = ratio * 0.4 * WL
    variance = (gain * mean_dn + read**2 + 1 / 12) / WL**2
    _check_moments(out, mean, variance)
    assert np.allclose(out * WL, np.round(out * WL))  # quantised to integer DN
    assert out.min() >= 0.0 and out.max() <= 1.0


def test_gaussian_variant_has_the_same_moments_without_quantisation():
    x = np.full(SIZE, 0.6)
    ratio, gain, read = 0.1, 4.0, 5.0
    out = illumination_gaussian_static(
        x, StageContext(bit_depth=BITS, seed=1), **_params(ratio, gain, read)
    )
    mean_dn = ratio * 0.6 * WL
    _check_moments(out, ratio * 0.6, (gain * mean_dn + read**2) / WL**2)
    assert not np.allclose(out * WL, np.round(out * WL))


def test_binomial_thinning_of_a_noisy_capture_matches_the_model():
    gain, read = 1.5, 2.0
    clean = np.full(SIZE, 0.5)
    capture = simulate_low_light(
        clean,
        ratio=1.0,
        gain=gain,
        read_noise=read,
        white_level=WL,
        rng=np.random.default_rng(0),
    )
    ratio = 0.2
    out = illumination_binomial_static(
        capture, StageContext(bit_depth=BITS, seed=2), **_params(ratio, gain, read)
    )
    mean_dn = ratio * 0.5 * WL
    # thinning Poisson electrons gives Poisson; read noise is topped back up to `read`
    variance = (gain * mean_dn + read**2 + 1 / 12) / WL**2
    _check_moments(out, ratio * 0.5, variance, var_rel=0.06)
    # a plain Poisson re-draw would count the capture's shot noise twice
    double = illumination_poisson_static(
        capture, StageContext(bit_depth=BITS, seed=2), **_params(ratio, gain, read)
    )
    assert double.var() > variance * 1.1


def test_lower_ratio_is_darker_and_noisier_relative_to_signal():
    x = np.full((64, 64), 0.5)
    ctx = StageContext(bit_depth=BITS)
    high = illumination_poisson_static(x, ctx, **_params(ratio=1.0))
    low = illumination_poisson_static(x, ctx, **_params(ratio=0.05))
    assert low.mean() < 0.1 * high.mean()
    assert low.std() / low.mean() > 3 * high.std() / high.mean()


def test_static_variants_are_seeded_by_seed_and_content():
    rng = np.random.default_rng(0)
    x = rng.uniform(0.1, 0.9, (32, 32))
    p = _params()
    a = illumination_poisson_static(x, StageContext(bit_depth=BITS, seed=7), **p)
    b = illumination_poisson_static(x, StageContext(bit_depth=BITS, seed=7), **p)
    c = illumination_poisson_static(x, StageContext(bit_depth=BITS, seed=8), **p)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
    # two different images of the same shape get independent noise
    y = x[::-1].copy()
    noise_x = a - 0.25 * x
    noise_y = illumination_poisson_static(y, StageContext(bit_depth=BITS, seed=7), **p) - 0.25 * y
    assert abs(np.corrcoef(noise_x.ravel(), noise_y[::-1].ravel())[0, 1]) < 0.2


def test_both_gaussian_forms_draw_identical_noise():
    rng = np.random.default_rng(1)
    x = rng.uniform(0.05, 0.95, (3, 1, 10, 12))
    ctx = StageContext(cfa="GRBG", bit_depth=10, seed=5)
    p = _params(ratio=0.3, gain=0.8, read_noise=1.5, black=0.02)
    with torch.no_grad():
        got = illumination_gaussian_torch(
            torch.as_tensor(x), ctx, **{k: torch.as_tensor(v) for k, v in p.items()}
        ).numpy()
    expected = illumination_gaussian_static(x[0, 0], ctx, **p)
    assert np.abs(expected - got[0, 0]).max() < 1e-12
    # images of one batch get different noise; image 0 is the static draw
    fields = gaussian_noise_field(5, (10, 12), 3)
    assert not np.allclose(fields[0], fields[1])
    assert np.array_equal(fields[0], gaussian_noise_field(5, (10, 12), 1)[0])


def test_gaussian_stage_passes_the_equivalence_contract():
    stage = next(s for s in STAGES if s.variant == "gaussian")
    check = verify_stage(stage, "test")
    assert check.passed, check
    assert check.max_abs_diff < 1e-10


def test_gradient_reaches_ratio_gain_and_read_noise():
    x = torch.full((1, 1, 8, 8), 0.5, dtype=torch.float64)
    ratio = torch.tensor(0.3, dtype=torch.float64, requires_grad=True)
    gain = torch.tensor(1.0, dtype=torch.float64, requires_grad=True)
    read = torch.tensor(2.0, dtype=torch.float64, requires_grad=True)
    out = illumination_gaussian_torch(
        x,
        StageContext(bit_depth=BITS),
        ratio=ratio,
        gain=gain,
        read_noise=read,
        black_level=torch.zeros(4, dtype=torch.float64),
    )
    (out**2).sum().backward()
    for tensor in (ratio, gain, read):
        assert tensor.grad is not None and tensor.grad.abs() > 0


def test_parameters_declare_units_and_domains():
    stage = next(s for s in STAGES if s.variant == "poisson")
    ratio, gain, read = (stage.param(n) for n in ("ratio", "gain", "read_noise"))
    assert "DN per electron" in gain.unit and "DN" in read.unit
    assert ratio.domain.contains(np.asarray(0.01)) and not ratio.domain.contains(np.asarray(1.5))
    assert not gain.domain.contains(np.asarray(0.0))
    assert stage.param("black_level").camera_field == "black_level"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"ratio": 0.0}, "ratio"),
        ({"ratio": 1.5}, "ratio"),
        ({"gain": 0.0}, "gain"),
        ({"read_noise": -1.0}, "read_noise"),
        ({"model": "gamma"}, "noise model"),
    ],
)
def test_simulate_low_light_rejects_bad_values(kwargs, match):
    args = {"ratio": 0.5, "gain": 1.0, "read_noise": 1.0, "white_level": WL}
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        simulate_low_light(np.full((4, 4), 0.5), rng=np.random.default_rng(0), **args)


def test_negative_seed_is_rejected():
    with pytest.raises(ValueError, match="seed"):
        gaussian_noise_field(-1, (4, 4))


def test_stages_are_registered_by_the_builtin_plugin_and_run_in_a_pipeline():
    registry = Registry.load(entry_points=False)
    assert set(registry.variants("illumination")) >= {"poisson", "binomial", "gaussian"}
    assert registry.owner("stages", "illumination.poisson") == "driftlab.builtin.simulated"
    spec = PipelineSpec(
        name="low-light",
        stages=[
            StageConfig(slot="illumination", variant="poisson", params={"ratio": 0.1}),
            StageConfig(slot="black_level"),
            StageConfig(slot="demosaic", variant="bilinear"),
            StageConfig(slot="gamma"),
        ],
    )
    camera = CameraParams(name="t", bit_depth=BITS, black_level=(0.02,) * 4)
    raw = np.full((16, 16), 0.5)
    view = build_static(spec, camera, registry)(raw)
    full_light = spec.replace_stage("illumination", "poisson", ratio=1.0)
    assert view.shape == (3, 16, 16)
    assert view.mean() < build_static(full_light, camera, registry)(raw).mean()


# -- dataset wrapper -------------------------------------------------------------------------


class _Constant(RawDataset):
    def __init__(self, spec, n=6, value=0.45):
        super().__init__(spec, 1.0)
        self.n, self.value = n, value

    def __len__(self):
        return self.n

    @property
    def ids(self):
        return [f"item{i}" for i in range(self.n)]

    def load(self, index):
        raw = np.full((32, 32), self.value, dtype=np.float32)
        return Sample(raw, index % 2, {"id": self.ids[index], "group": "g"})


def _spec(gain=1.5):
    camera = CameraParams(name="t", bit_depth=BITS, gain=gain, read_noise=2.0)
    return DatasetSpec(
        name="const",
        task="classification",
        description="",
        classes=("a", "b"),
        camera=camera,
        opener=lambda *a, **k: None,
        needs_data_root=False,
    )


def test_simulated_intensity_is_deterministic_per_item_and_order_free():
    base = _Constant(_spec())
    low = simulate_intensity(base, 0.25, seed=4)
    assert isinstance(low, SimulatedIntensity) and low.intensity == 0.25
    forward = [low[i].raw for i in range(len(low))]
    backward = [low[i].raw for i in reversed(range(len(low)))][::-1]
    assert all(np.array_equal(a, b) for a, b in zip(forward, backward, strict=True))
    again = simulate_intensity(_Constant(_spec()), 0.25, seed=4)
    assert np.array_equal(again[2].raw, forward[2])
    assert not np.array_equal(forward[0], forward[1])  # different items, different noise
    other_seed = simulate_intensity(base, 0.25, seed=5)
    assert not np.array_equal(other_seed[0].raw, forward[0])
    sample = low[3]
    assert sample.target == 1 and sample.meta["simulated_intensity"] is True
    assert sample.raw.dtype == np.float32
    assert sample.raw.mean() == pytest.approx(0.25 * 0.45, abs=0.01)


def test_simulate_intensity_returns_the_dataset_at_its_own_level():
    base = _Constant(_spec())
    assert simulate_intensity(base, 1.0) is base


def test_simulated_intensity_errors_name_the_problem():
    base = _Constant(_spec())
    with pytest.raises(DatasetError, match="less light"):
        SimulatedIntensity(simulate_intensity(base, 0.5), 0.75)
    with pytest.raises(DatasetError, match="gain"):
        SimulatedIntensity(_Constant(_spec(gain=None)), 0.5)
    with pytest.raises(DatasetError, match="noise model"):
        SimulatedIntensity(base, 0.5, model="exact")
    with pytest.raises(DatasetError, match="seed"):
        SimulatedIntensity(base, 0.5, seed=-1)
    assert SimulatedIntensity(_Constant(_spec(gain=None)), 0.5, gain=2.0).gain == 2.0


def test_item_seed_is_stable_and_validated():
    a = np.random.default_rng(item_seed(3, "x", 1)).integers(0, 2**31)
    b = np.random.default_rng(item_seed(3, "x", 1)).integers(0, 2**31)
    c = np.random.default_rng(item_seed(3, "x", 2)).integers(0, 2**31)
    assert a == b != c
    with pytest.raises(ValueError, match="seed"):
        item_seed(-2, "x")
