"""Tests of task-model declarations, built-in architectures, weights and model loading."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from driftlab.models import (
    BUILTIN_TASK_MODELS,
    RESNET18,
    SMALL_CNN,
    SMALL_UNET,
    UNETPP_RESNET,
    DeviceError,
    TaskModelError,
    TaskModelSpec,
    WeightsError,
    load_task_model,
    load_weights,
    resolve_device,
    save_weights,
)
from driftlab.registry import Registry

SPECS = {spec.name: spec for spec in BUILTIN_TASK_MODELS}


@pytest.fixture(scope="module")
def registry() -> Registry:
    return Registry.load(entry_points=False)


@pytest.fixture
def one_thread():
    """Tiny models train faster on one thread, and do not stall on a busy 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _views(batch: int = 2, size: int = 64, channels: int = 3) -> torch.Tensor:
    return torch.rand(batch, channels, size, size, generator=torch.Generator().manual_seed(0))


def _expected_shape(spec: TaskModelSpec, batch: int, classes: int, size: int) -> tuple:
    if spec.task == "classification":
        return (batch, classes)
    return (batch, classes, size, size)


def _built(spec: TaskModelSpec, classes: int, seed: int, **options) -> nn.Module:
    torch.manual_seed(seed)
    return spec.build(classes, **options).eval()


# -- declarations and registration ----------------------------------------------------------
def test_builtins_are_registered_through_the_plugin(registry):
    assert set(registry.names("task_models")) == set(SPECS)
    for name in SPECS:
        assert registry.owner("task_models", name) == "driftlab.builtin.models"
    assert {n: s.task for n, s in SPECS.items()} == {
        "resnet18": "classification",
        "unetpp-resnet": "segmentation",
        "small-cnn": "classification",
        "small-unet": "segmentation",
    }
    assert UNETPP_RESNET.size_multiple == 32 and SMALL_UNET.size_multiple == 1


def test_option_defaults():
    assert RESNET18.option_defaults == {}
    assert UNETPP_RESNET.option_defaults == {"encoder_name": "resnet34"}
    assert SMALL_CNN.option_defaults == {"width": 16}
    assert SMALL_UNET.option_defaults == {"width": 16}


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"task": "detection"}, "task must be one of"),
        ({"name": "my net"}, "may contain only"),
        ({"factory": None}, "factory must be callable"),
        ({"size_multiple": 0}, "size_multiple must be an int >= 1"),
        ({"factory": lambda num_classes: nn.Identity()}, "has no in_channels parameter"),
    ],
)
def test_spec_validation(kwargs, match):
    args = {"name": "m", "task": "classification", "doc": "d", "factory": SMALL_CNN.factory}
    with pytest.raises(ValueError, match=match):
        TaskModelSpec(**(args | kwargs))


# -- the built-ins -----------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(SPECS))
@pytest.mark.parametrize("classes", [3, 9])
def test_builds_and_forward_shape(name, classes):
    spec = SPECS[name]
    model = _built(spec, classes, seed=0)
    with torch.no_grad():
        out = model(_views())
    assert tuple(out.shape) == _expected_shape(spec, 2, classes, 64)
    assert out.dtype == torch.float32 and torch.isfinite(out).all()


@pytest.mark.parametrize("name", ["small-unet", "unetpp-resnet"])
def test_binary_segmentation_has_one_logit_channel(name):
    model = _built(SPECS[name], 1, seed=0, **({"encoder_name": "resnet18"} if "pp" in name else {}))
    with torch.no_grad():
        assert tuple(model(_views(1, 32)).shape) == (1, 1, 32, 32)


@pytest.mark.parametrize("name", list(SPECS))
def test_other_input_channel_counts(name):
    spec = SPECS[name]
    options = {"encoder_name": "resnet18"} if name == "unetpp-resnet" else {}
    model = spec.build(4, in_channels=1, **options).eval()
    with torch.no_grad():
        out = model(_views(2, 32, channels=1))
    assert tuple(out.shape) == _expected_shape(spec, 2, 4, 32)


def test_small_models_take_any_size():
    x = torch.rand(2, 3, 37, 50)
    with torch.no_grad():
        assert tuple(_built(SMALL_CNN, 5, 0)(x).shape) == (2, 5)
        assert tuple(_built(SMALL_UNET, 2, 0)(x).shape) == (2, 2, 37, 50)
        assert tuple(_built(SMALL_UNET, 2, 0)(torch.rand(1, 3, 1, 1)).shape) == (1, 2, 1, 1)


def test_unetpp_needs_multiples_of_32():
    model = _built(UNETPP_RESNET, 1, 0, encoder_name="resnet18")
    with pytest.raises(RuntimeError, match="divisible by 32"):
        model(torch.rand(1, 3, 40, 40))


@pytest.mark.parametrize(
    ("spec", "classes", "kwargs", "match"),
    [
        (SMALL_CNN, 1, {}, "num_classes must be an int >= 2"),
        (RESNET18, "3", {}, "num_classes must be an int >= 2"),
        (SMALL_UNET, 0, {}, "num_classes must be an int >= 1"),
        (SMALL_UNET, 2, {"in_channels": 0}, "in_channels must be an int >= 1"),
        (SMALL_CNN, 3, {"depth": 4}, r"no option\(s\) 'depth'; options: width=16"),
        (RESNET18, 3, {"width": 4}, r"no option\(s\) 'width'; options: none"),
        (SMALL_CNN, 3, {"width": 0}, "width must be an int >= 1"),
        (UNETPP_RESNET, 1, {"encoder_name": "vgg11"}, "encoder_name must be one of resnet18"),
    ],
)
def test_build_errors(spec, classes, kwargs, match):
    with pytest.raises(TaskModelError, match=match):
        spec.build(classes, **kwargs)


def test_factory_must_return_a_module():
    spec = TaskModelSpec(
        name="not-a-model", task="segmentation", doc="d", factory=lambda n, in_channels=3: n
    )
    with pytest.raises(TaskModelError, match=r"factory returned int, expected a torch\.nn\.Module"):
        spec.build(2)


def _stripes(labels: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Vertical (class 0) or horizontal (class 1) 4-pixel stripes under uniform noise."""
    vertical = ((torch.arange(64) // 4) % 2).float().view(1, 64).expand(64, 64)
    pattern = torch.where(labels.view(-1, 1, 1) == 0, vertical, vertical.t())
    noise = torch.rand(len(labels), 3, 64, 64, generator=gen)
    return 0.5 * pattern.unsqueeze(1) + 0.5 * noise


def test_small_cnn_learns_in_a_few_steps(one_thread):
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(1)
    labels = torch.arange(16) % 2
    model = SMALL_CNN.build(2)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    x = _stripes(labels, gen)
    losses = []
    for _ in range(10):
        optimiser.zero_grad()
        loss = nn.functional.cross_entropy(model(x), labels)
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    model.eval()
    with torch.no_grad():
        accuracy = (model(_stripes(labels, gen)).argmax(1) == labels).float().mean().item()
    assert losses[-1] < 0.2 * losses[0]
    assert accuracy == 1.0  # on fresh noise


def test_small_unet_learns_in_a_few_steps(one_thread):
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(2)
    masks = torch.zeros(8, 1, 64, 64)
    for i in range(8):
        r, c = 8 * (i % 4), 6 * (i // 2)
        masks[i, :, r : r + 24, c : c + 20] = 1
    x = 0.3 * torch.rand(8, 3, 64, 64, generator=gen) + 0.6 * masks
    model = SMALL_UNET.build(1)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(12):
        optimiser.zero_grad()
        loss = nn.functional.binary_cross_entropy_with_logits(model(x), masks)
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    # batch statistics: a dozen steps are too few for batch norm's running averages
    with torch.no_grad():
        predicted = model(x) > 0
    iou = (predicted & (masks > 0)).sum() / (predicted | (masks > 0)).sum()
    assert losses[-1] < losses[0]
    assert iou.item() > 0.75


# -- weights ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(SPECS))
def test_weights_round_trip(name, tmp_path):
    spec = SPECS[name]
    options = {"encoder_name": "resnet18"} if name == "unetpp-resnet" else {}
    trained = _built(spec, 3, seed=0, **options)
    path = save_weights(trained, tmp_path / f"{name}.pt")
    fresh = _built(spec, 3, seed=1, **options)
    x = _views(1, 32)
    with torch.no_grad():
        assert not torch.equal(fresh(x), trained(x))
        assert load_weights(fresh, path) is fresh
        assert torch.equal(fresh(x), trained(x))
    loaded = fresh.state_dict()
    for key, value in trained.state_dict().items():
        assert torch.equal(loaded[key], value), key


def test_save_weights_needs_an_existing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"folder .* does not exist"):
        save_weights(SMALL_CNN.build(3), tmp_path / "no" / "w.pt")


def test_load_weights_refuses_a_misfit_and_loads_nothing(tmp_path):
    state = SMALL_CNN.build(3).state_dict()
    state.pop("classifier.bias")
    path = tmp_path / "keys.pt"
    torch.save(state, path)
    model = SMALL_CNN.build(3)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(
        WeightsError, match=r"does not fit SmallCNN: 1 missing key \('classifier\.bias'\)"
    ):
        load_weights(model, path)
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key


def test_load_weights_reads_a_synthesis_model_as_initial_weights(tmp_path):
    """Synthesis' own ``models/*.pt`` (a ``Normalized`` state dict) loads into the bare model."""
    from driftlab.train.normalize import Normalized

    trained = _built(SMALL_CNN, 3, seed=0, width=4)
    net = Normalized(trained, np.full(3, 0.4, np.float32), np.full(3, 0.2, np.float32))
    path = tmp_path / "bi_s_ga__fold0.pt"
    torch.save(net.state_dict(), path)
    fresh = load_weights(_built(SMALL_CNN, 3, seed=1, width=4), path)
    with torch.no_grad():
        assert torch.equal(fresh(_views()), trained(_views()))


def test_load_task_model_gives_a_view_model(tmp_path, registry):
    """The script shortcut returns ``load_model(...).view_model()``: stored normalisation applied."""
    trained = _built(SMALL_UNET, 2, seed=0, width=8)
    path = save_weights(trained, tmp_path / "unet.pt")
    loaded = load_task_model(
        path, architecture="small-unet", num_classes=2, options={"width": 8}, registry=registry
    )
    assert isinstance(loaded, nn.Module) and not loaded.training
    with torch.no_grad():
        assert torch.equal(loaded(_views()), trained(_views()))
    random_init = load_task_model(architecture="small-cnn", num_classes=4, registry=registry)
    assert not random_init.training


# -- devices ---------------------------------------------------------------------------------
def _fake_gpus(monkeypatch: pytest.MonkeyPatch, count: int) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: count > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: count)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)


def test_resolve_device_without_gpu(monkeypatch):
    _fake_gpus(monkeypatch, 0)
    assert resolve_device("auto") == torch.device("cpu")
    assert resolve_device(" CPU ") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    for request in ("cuda", "cuda:0"):
        with pytest.raises(DeviceError, match=f"device '{request}' requested but CUDA is not"):
            resolve_device(request)
    with pytest.raises(DeviceError, match="CUDA is not available"):
        load_task_model(architecture="small-cnn", num_classes=3, device="cuda")


def test_resolve_device_with_gpus(monkeypatch):
    _fake_gpus(monkeypatch, 2)
    assert resolve_device("auto") == torch.device("cuda", 0)
    assert resolve_device("cuda") == torch.device("cuda", 0)
    assert resolve_device("cuda:1") == torch.device("cuda", 1)
    with pytest.raises(DeviceError, match=r"only 2 CUDA device\(s\) are visible"):
        resolve_device("cuda:2")


@pytest.mark.parametrize("request_", ["gpu", "cuda:x", "mps0", ""])
def test_unknown_device(request_):
    with pytest.raises(DeviceError, match="device must be 'auto', 'cpu', 'cuda' or 'cuda:N'"):
        resolve_device(request_)
