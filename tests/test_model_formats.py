"""Every model format driftlab promises, each from a real file written in the test."""

from __future__ import annotations

import io
import pickle
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import driftlab.models.formats as formats
from driftlab.models import (
    LOADED_FORMATS,
    SMALL_CNN,
    SMALL_UNET,
    ExportedProgramModule,
    LoadedModel,
    TaskModelError,
    WeightsError,
    detect_model_format,
    load_model,
)
from driftlab.registry import Registry
from driftlab.train.normalize import Normalized
from tests.model_files import (
    WRITERS,
    save_checkpoint,
    save_exported,
    save_safetensors,
    save_state_dict,
    save_synthesis_model,
    save_torchscript,
)


@pytest.fixture(scope="module")
def registry() -> Registry:
    return Registry.load(entry_points=False)


def _views(batch: int = 2, size: int = 32) -> torch.Tensor:
    return torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(3))


def _trained(spec=SMALL_CNN, classes: int = 3, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    model = spec.build(classes, width=4)
    with torch.no_grad():  # non-trivial batch-norm statistics
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.uniform_(-0.2, 0.2)
                module.running_var.uniform_(0.5, 2.0)
    return model.eval()


def _load(fmt: str, path: Path, spec, registry, **kwargs) -> LoadedModel:
    if fmt in ("torchscript", "exported"):
        return load_model(path, **kwargs)
    return load_model(
        path,
        name=spec.name,
        num_classes=3,
        options={"width": 4},
        key="state_dict" if fmt == "checkpoint" else None,
        registry=registry,
        **kwargs,
    )


# -- every format round trips ------------------------------------------------------------------
@pytest.mark.parametrize("spec", [SMALL_CNN, SMALL_UNET], ids=lambda s: s.name)
@pytest.mark.parametrize("fmt", LOADED_FORMATS)
def test_every_format_loads_and_predicts_as_the_saved_model(fmt, spec, tmp_path, registry):
    trained = _trained(spec)
    path = WRITERS[fmt](trained, tmp_path / f"model.{fmt}")
    loaded = _load(fmt, path, spec, registry)
    assert loaded.format == fmt
    assert loaded.source == path and loaded.normalization is None
    assert loaded.architecture == (None if fmt in ("torchscript", "exported") else spec.name)
    assert not loaded.module.training and loaded.device == torch.device("cpu")
    assert loaded.view_model() is loaded.module
    with torch.no_grad():
        want, got = trained(_views()), loaded.module(_views())
    if fmt in ("torchscript", "exported"):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    else:
        assert torch.equal(got, want)


@pytest.mark.parametrize("fmt", LOADED_FORMATS)
def test_format_is_recognised_from_content_not_file_name(fmt, tmp_path):
    path = WRITERS[fmt](_trained(), tmp_path / "model.bin")
    expected = {"state_dict": "torch", "checkpoint": "torch"}.get(fmt, fmt)
    assert detect_model_format(path) == expected


def test_random_initialisation_without_a_file(registry):
    loaded = load_model(name="small-cnn", num_classes=4, registry=registry)
    assert loaded.format is None and loaded.source is None and loaded.architecture == "small-cnn"
    assert not loaded.module.training
    assert loaded.describe() == "small-cnn, random initialisation"


def test_legacy_torch_save_format_loads(tmp_path, registry):
    trained = _trained()
    path = tmp_path / "legacy.pt"
    torch.save(trained.state_dict(), path, _use_new_zipfile_serialization=False)
    assert detect_model_format(path) == "torch"
    loaded = load_model(
        path, name="small-cnn", num_classes=3, options={"width": 4}, registry=registry
    )
    with torch.no_grad():
        assert torch.equal(loaded.module(_views()), trained(_views()))


# -- synthesis' own saved models and other wrappers ----------------------------------------------
@pytest.mark.parametrize(
    "writer", [save_state_dict, save_safetensors], ids=["torch", "safetensors"]
)
def test_synthesis_saved_model_loads_with_its_stored_normalization(writer, tmp_path, registry):
    inner = _trained()
    mean, std = (0.41, 0.52, 0.33), (0.12, 0.2, 0.07)
    net = Normalized(inner, np.asarray(mean, np.float32), np.asarray(std, np.float32)).eval()
    path = writer(net, tmp_path / "bi_s_ga__fold0.pt")
    loaded = load_model(
        path, name="small-cnn", num_classes=3, options={"width": 4}, registry=registry
    )
    assert loaded.prefix == "model."
    stored_mean, stored_std = loaded.normalization
    assert stored_mean == tuple(float(v) for v in np.asarray(mean, np.float32))
    assert stored_std == tuple(float(v) for v in np.asarray(std, np.float32))
    with torch.no_grad():
        assert torch.equal(loaded.module(_views()), inner(_views()))  # the bare inner model
        assert torch.equal(loaded.view_model()(_views()), net(_views()))  # as synthesis evaluated
    assert "stored normalisation mean (0.41, 0.52, 0.33)" in loaded.describe()


def test_synthesis_model_with_bad_stored_normalization_is_refused(tmp_path, registry):
    path = save_synthesis_model(_trained(), tmp_path / "m.pt", std=(0.1, 0.0, 0.2))
    with pytest.raises(WeightsError, match=r"stored normalisation has std <= 0"):
        load_model(path, name="small-cnn", num_classes=3, options={"width": 4}, registry=registry)


@pytest.mark.parametrize("prefix", ["module.", "model.", "net."])
def test_one_common_key_prefix_is_removed_when_the_rest_fits(prefix, tmp_path, registry):
    trained = _trained()
    path = tmp_path / "wrapped.pt"
    torch.save({prefix + k: v for k, v in trained.state_dict().items()}, path)
    loaded = load_model(
        path, name="small-cnn", num_classes=3, options={"width": 4}, registry=registry
    )
    assert loaded.prefix == prefix
    with torch.no_grad():
        assert torch.equal(loaded.module(_views()), trained(_views()))


def test_a_prefix_is_not_removed_when_the_rest_does_not_fit(tmp_path, registry):
    state = {f"module.{k}": v for k, v in _trained().state_dict().items()}
    state.pop("module.classifier.bias")
    path = tmp_path / "dp.pt"
    torch.save(state, path)
    with pytest.raises(
        WeightsError,
        match=r"1 missing key \('classifier\.bias'\) \(after removing the key prefix 'module\.'\)",
    ):
        load_model(path, name="small-cnn", num_classes=3, options={"width": 4}, registry=registry)


# -- archives: frozen, evaluation only --------------------------------------------------------
@pytest.mark.parametrize("fmt", ["torchscript", "exported"])
def test_archives_are_frozen_and_cannot_be_fine_tuned(fmt, tmp_path):
    path = WRITERS[fmt](_trained(), tmp_path / f"m.{fmt}")
    loaded = load_model(path)
    assert not loaded.trainable
    assert all(not p.requires_grad for p in loaded.module.parameters())
    with pytest.raises(
        WeightsError,
        match=r"can be evaluated \(audit, forensics\) but not used for training; set \[model\] weights",
    ):
        loaded.require_trainable()
    x = _views().requires_grad_(True)  # attacks still get gradients with respect to the input
    loaded.module(x).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_exported_program_keeps_its_example_input_shape(tmp_path):
    loaded = load_model(save_exported(_trained(), tmp_path / "m.pt2", size=40))
    assert isinstance(loaded.module, ExportedProgramModule)
    assert loaded.module.example_input_shapes == ((2, 3, 40, 40),)
    assert loaded.module.eval() is loaded.module and not loaded.module.training


@pytest.mark.parametrize("fmt", ["torchscript", "exported"])
@pytest.mark.parametrize(
    ("given", "named"),
    [
        ({"name": "small-cnn"}, r"remove \[model\] name$"),
        ({"options": {"width": 4}}, r"remove \[model\] options$"),
        ({"key": "model"}, r"remove \[model\] key$"),
    ],
)
def test_archive_with_architecture_keys_is_refused(fmt, given, named, tmp_path, registry):
    path = WRITERS[fmt](_trained(), tmp_path / f"m.{fmt}")
    with pytest.raises(WeightsError, match=r"carries its own architecture: " + named):
        load_model(path, registry=registry, **given)


def test_state_dict_without_name_asks_for_model_name(tmp_path, registry):
    path = save_state_dict(_trained(), tmp_path / "w.pt")
    with pytest.raises(
        WeightsError,
        match=r"without their architecture: set \[model\] name \(installed: .*small-cnn.*; .*-p MODULE\)",
    ):
        load_model(path, registry=registry)


def test_nothing_given_and_string_name_without_registry():
    with pytest.raises(TaskModelError, match=r"set \[model\] weights, \[model\] name, or both"):
        load_model()
    with pytest.raises(TaskModelError, match="needs a registry"):
        load_model(name="small-cnn", num_classes=3)
    with pytest.raises(TaskModelError, match=r"\[model\] key applies only with \[model\] weights"):
        load_model(name=SMALL_CNN, num_classes=3, key="model")


# -- checkpoints ----------------------------------------------------------------------------------
def test_checkpoint_needs_its_key_and_the_error_names_it(tmp_path, registry):
    path = save_checkpoint(_trained(), tmp_path / "ckpt.pt", key="model_state")
    args = {"name": "small-cnn", "num_classes": 3, "options": {"width": 4}, "registry": registry}
    with pytest.raises(
        WeightsError,
        match=r"is a checkpoint \(entries: 'epoch', 'model_state', 'optimizer'\), not a state dict: set \[model\] key = 'model_state'",
    ):
        load_model(path, **args)
    with pytest.raises(
        WeightsError,
        match=r"has no entry 'state' \(entries: 'epoch', 'model_state', 'optimizer'\): set \[model\] key",
    ):
        load_model(path, key="state", **args)
    loaded = load_model(path, key="model_state", **args)
    assert loaded.format == "checkpoint" and loaded.key == "model_state"
    assert "entry 'model_state'" in loaded.describe()


def test_key_on_a_plain_state_dict_or_safetensors_is_refused(tmp_path, registry):
    args = {"name": "small-cnn", "num_classes": 3, "options": {"width": 4}, "registry": registry}
    plain = save_state_dict(_trained(), tmp_path / "w.pt")
    with pytest.raises(
        WeightsError,
        match=r"is a state dict itself \(\d+ tensors\), it has no entry 'model': remove \[model\] key",
    ):
        load_model(plain, key="model", **args)
    flat = save_safetensors(_trained(), tmp_path / "w.safetensors")
    with pytest.raises(
        WeightsError,
        match=r"safetensors file, which holds one flat state dict: remove \[model\] key",
    ):
        load_model(flat, key="model", **args)


# -- untrusted and damaged files --------------------------------------------------------------------
class _Payload:
    """Unpickling this would create a file: proof that code ran."""

    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self):
        return (Path.touch, (self.target,))


def test_pickles_that_need_other_globals_are_refused_without_running_code(tmp_path, registry):
    sentinel = tmp_path / "code-ran"
    path = tmp_path / "evil.pt"
    torch.save({"weight": torch.zeros(2), "payload": _Payload(sentinel)}, path)
    with pytest.raises(
        WeightsError,
        match=r"holds pickled Python objects other than tensors .*arbitrary code.*\[model\] weights",
    ):
        load_model(path, name="small-cnn", num_classes=3, registry=registry)
    assert not sentinel.exists()
    whole = tmp_path / "whole.pt"
    torch.save(_trained(), whole)
    with pytest.raises(WeightsError, match=r"needs driftlab\.models\.small\.SmallCNN"):
        load_model(whole, name="small-cnn", num_classes=3, registry=registry)


def test_legacy_file_declaring_more_bytes_than_it_holds_is_refused(tmp_path, registry):
    buffer = io.BytesIO()
    torch.save({"w": torch.zeros(1000)}, buffer, _use_new_zipfile_serialization=False)
    data = buffer.getvalue()
    at = data.find(b"M\xe8\x03")  # BININT2 1000: the storage's element count
    forged = data[:at] + b"J" + struct.pack("<i", 2_000_000_000) + data[at + 3 :]
    path = tmp_path / "bomb.pt"
    path.write_bytes(forged)
    with pytest.raises(
        WeightsError,
        match=r"tensors declare 8000000000 bytes but the file has \d+; truncated or forged",
    ):
        load_model(path, name="small-cnn", num_classes=3, registry=registry)


def test_zip_whose_compressed_records_expand_too_far_is_refused(tmp_path, monkeypatch):
    plain = save_state_dict(_trained(), tmp_path / "plain.pt")
    packed = tmp_path / "packed.pt"
    with zipfile.ZipFile(plain) as src, zipfile.ZipFile(packed, "w", zipfile.ZIP_DEFLATED) as dst:
        for name in src.namelist():
            dst.writestr(name, src.read(name))
    monkeypatch.setattr(formats, "MAX_COMPRESSED_BYTES", 1000)
    with pytest.raises(
        WeightsError, match=r"compressed records would expand to \d+ bytes \(limit 1000\)"
    ):
        detect_model_format(packed)


def test_safetensors_header_pointing_outside_the_file_is_refused(tmp_path):
    path = save_safetensors(_trained(), tmp_path / "w.safetensors")
    path.write_bytes(path.read_bytes()[:-100])  # truncated
    with pytest.raises(
        WeightsError,
        match=r"lies outside the file's \d+ data bytes \(truncated or forged safetensors file\)",
    ):
        detect_model_format(path)


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"these are not weights", "is not a model file driftlab reads"),
        (b"\x80\x02" + b"\x00" * 30, r"could not be read as a torch\.save file"),
    ],
)
def test_files_that_are_not_models(content, match, tmp_path, registry):
    path = tmp_path / "x.pt"
    path.write_bytes(content)
    with pytest.raises(WeightsError, match=match):
        load_model(path, name="small-cnn", num_classes=3, registry=registry)


def test_damaged_archives(tmp_path, registry):
    other = tmp_path / "other.pt"
    with zipfile.ZipFile(other, "w") as archive:
        archive.writestr("readme.txt", "hello")
    with pytest.raises(WeightsError, match=r"zip archive but was not written by torch\.save"):
        load_model(other)
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(save_state_dict(_trained(), tmp_path / "w.pt").read_bytes()[:-200])
    with pytest.raises(WeightsError):
        load_model(
            truncated, name="small-cnn", num_classes=3, options={"width": 4}, registry=registry
        )
    broken = tmp_path / "broken.pt2"
    with zipfile.ZipFile(broken, "w") as archive:
        archive.writestr("broken/archive_format", "pt2")
    with pytest.raises(
        WeightsError, match=r"looks like a torch\.export archive but could not be loaded"
    ):
        load_model(broken)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"model file '.*nope\.pt' does not exist"):
        load_model(tmp_path / "nope.pt")
    with pytest.raises(WeightsError, match="is not a regular file"):
        load_model(tmp_path)


@pytest.mark.parametrize("fmt", LOADED_FORMATS)
def test_weights_with_nan_are_refused(fmt, tmp_path, registry):
    model = _trained()
    with torch.no_grad():
        model.classifier.weight[0, 0] = float("nan")
    path = WRITERS[fmt](model, tmp_path / f"m.{fmt}")
    with pytest.raises(
        WeightsError, match=r"1 tensor holds NaN or infinite values \('.*classifier\.weight'\)"
    ):
        _load(fmt, path, SMALL_CNN, registry)


# -- devices -------------------------------------------------------------------------------------
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("fmt", LOADED_FORMATS)
def test_every_format_loads_onto_cuda(fmt, tmp_path, registry):
    trained = _trained()
    path = WRITERS[fmt](trained, tmp_path / f"m.{fmt}")
    loaded = _load(fmt, path, SMALL_CNN, registry, device="cuda")
    assert loaded.device.type == "cuda"
    assert all(p.device.type == "cuda" for p in loaded.module.parameters())
    with torch.no_grad():
        got = loaded.view_model()(_views().cuda()).cpu()
    torch.testing.assert_close(got, trained(_views()), rtol=1e-4, atol=1e-4)


def test_synthesis_model_normalization_follows_the_device(tmp_path, registry):
    path = save_synthesis_model(_trained(), tmp_path / "m.pt")
    loaded = load_model(
        path, name="small-cnn", num_classes=3, options={"width": 4}, registry=registry
    )
    view_model = loaded.view_model()
    assert {b.device for b in view_model.buffers()} == {loaded.device}
    assert pickle.loads(pickle.dumps(loaded.normalization)) == loaded.normalization


def test_save_torchscript_helper_is_a_real_script_module(tmp_path):
    path = save_torchscript(_trained(), tmp_path / "m.pt")
    assert isinstance(load_model(path).module, torch.jit.ScriptModule)
