"""``check_weights``: early, one-line errors whose advice names something a user can set."""

from __future__ import annotations

import re

import pytest
import torch
from torch import nn

from driftlab.models import (
    LOADED_FORMATS,
    SMALL_CNN,
    SMALL_UNET,
    LoadedModel,
    WeightsError,
    check_weights,
)
from driftlab.registry import Registry, RegistryError
from tests.model_files import (
    WRITERS,
    save_checkpoint,
    save_exported,
    save_state_dict,
    save_synthesis_model,
    save_torchscript,
)

# what a user can set: config keys, the input contract's size, the -p flag
SETTABLE = re.compile(r"\[model\] (name|options|key|weights|size|mean)|-p MODULE")
# advice no runner can follow
UNFOLLOWABLE = re.compile(r"load_task_model|load_model\(|key=|architecture=|pass ")


@pytest.fixture(scope="module")
def registry() -> Registry:
    return Registry.load(entry_points=False)


def _cnn(classes: int = 3, width: int = 4) -> nn.Module:
    torch.manual_seed(0)
    return SMALL_CNN.build(classes, width=width).eval()


def _unet(classes: int = 1, width: int = 4) -> nn.Module:
    torch.manual_seed(0)
    return SMALL_UNET.build(classes, width=width).eval()


def _assert_actionable(exc: BaseException) -> str:
    message = str(exc)
    assert "\n" not in message, message
    assert SETTABLE.search(message), message
    assert not UNFOLLOWABLE.search(message), message
    return message


@pytest.mark.parametrize("fmt", LOADED_FORMATS)
def test_check_weights_accepts_every_format_and_returns_the_loaded_model(fmt, tmp_path, registry):
    path = WRITERS[fmt](_cnn(), tmp_path / f"m.{fmt}")
    archive = fmt in ("torchscript", "exported")
    loaded = check_weights(
        path,
        num_classes=3,
        task="classification",
        name=None if archive else "small-cnn",
        options=None if archive else {"width": 4},
        key="state_dict" if fmt == "checkpoint" else None,
        registry=registry,
    )
    assert isinstance(loaded, LoadedModel) and loaded.format == fmt


def test_check_weights_of_a_segmenter_and_of_a_synthesis_model(tmp_path, registry):
    path = save_torchscript(_unet(), tmp_path / "unet.pt")
    assert check_weights(path, num_classes=1, task="segmentation").format == "torchscript"
    synthesis = save_synthesis_model(_cnn(), tmp_path / "bi_s_ga__fold0.pt")
    loaded = check_weights(
        synthesis,
        num_classes=3,
        task="classification",
        name="small-cnn",
        options={"width": 4},
        for_training=True,
        registry=registry,
    )
    assert loaded.normalization is not None and loaded.trainable


def _state_dict_case(tmp_path, registry, **kwargs):
    args = {
        "num_classes": 3,
        "task": "classification",
        "name": "small-cnn",
        "options": {"width": 4},
        "registry": registry,
    }
    return args | kwargs


def test_unrecognised_format(tmp_path, registry):
    path = tmp_path / "notes.pt"
    path.write_text("not a model")
    with pytest.raises(WeightsError) as info:
        check_weights(path, **_state_dict_case(tmp_path, registry))
    message = _assert_actionable(info.value)
    assert "is not a model file driftlab reads" in message
    assert message.endswith("point [model] weights at one")


def test_architecture_mismatch_summarises_missing_and_unexpected_keys(tmp_path, registry):
    path = save_state_dict(_unet(classes=3), tmp_path / "unet.pt")
    with pytest.raises(WeightsError) as info:
        check_weights(path, **_state_dict_case(tmp_path, registry))
    message = _assert_actionable(info.value)
    assert (
        "does not fit task model 'small-cnn': 20 missing keys ('features.0.weight', 'features.1.weight', 'features.1.bias' and 17 more)"
        in message
    )
    assert re.search(
        r"\d+ unexpected keys \('enc1\.0\.weight', 'enc1\.1\.weight', 'enc1\.1\.bias' and \d+ more\)",
        message,
    )
    assert "check [model] name" in message and "-p MODULE" in message and "(now width=4)" in message


def test_shape_mismatch_names_the_first_layers(tmp_path, registry):
    path = save_state_dict(_cnn(width=8), tmp_path / "wide.pt")
    with pytest.raises(WeightsError) as info:
        check_weights(path, **_state_dict_case(tmp_path, registry))
    message = _assert_actionable(info.value)
    assert (
        "shapes differ for 16 tensors, first 'features.0.weight' (file (8, 3, 3, 3), model (4, 3, 3, 3)), "
        "'features.1.weight' (file (8,), model (4,)), 'features.1.bias' (file (8,), model (4,)) and 13 more"
    ) in message
    assert "[model] options (now width=4)" in message


def test_missing_checkpoint_key_lists_the_keys_present(tmp_path, registry):
    path = save_checkpoint(_cnn(), tmp_path / "ckpt.pt", key="weights")
    with pytest.raises(WeightsError) as info:
        check_weights(path, **_state_dict_case(tmp_path, registry, key="model"))
    message = _assert_actionable(info.value)
    assert (
        "has no entry 'model' (entries: 'epoch', 'weights', 'optimizer'): set [model] key"
        in message
    )
    with pytest.raises(WeightsError) as info:
        check_weights(path, **_state_dict_case(tmp_path, registry))
    assert "set [model] key = 'weights'" in _assert_actionable(info.value)


@pytest.mark.parametrize("fmt", LOADED_FORMATS)
def test_class_count_other_than_the_datasets_is_named(fmt, tmp_path, registry):
    path = WRITERS[fmt](_cnn(classes=5), tmp_path / f"m.{fmt}")
    archive = fmt in ("torchscript", "exported")
    with pytest.raises(WeightsError) as info:
        check_weights(
            path,
            num_classes=3,
            task="classification",
            name=None if archive else "small-cnn",
            options=None if archive else {"width": 4},
            key="state_dict" if fmt == "checkpoint" else None,
            registry=registry,
        )
    message = _assert_actionable(info.value)
    if archive:
        assert "gives 5 outputs per image but the dataset needs 3 (one per class)" in message
    else:
        assert (
            "the weights give 5 outputs (layer 'classifier.weight', shape (5, 16)) but the dataset "
            "needs 3 (one per class)"
        ) in message


def test_segmentation_channel_count_of_an_archive(tmp_path):
    path = save_exported(_unet(classes=2), tmp_path / "unet.pt2")
    with pytest.raises(WeightsError) as info:
        check_weights(path, num_classes=1, task="segmentation")
    assert "gives 2 outputs per pixel but the dataset needs 1" in _assert_actionable(info.value)


def test_archive_of_the_other_task(tmp_path):
    path = save_torchscript(_unet(classes=3), tmp_path / "unet.pt")
    with pytest.raises(WeightsError) as info:
        check_weights(path, num_classes=3, task="classification")
    message = _assert_actionable(info.value)
    assert (
        "gives output (2, 3, 64, 64) for a (2, 3, 64, 64) input; a classification model must give (2, 3)"
        in message
    )


def test_registered_architecture_of_the_other_task(tmp_path, registry):
    with pytest.raises(WeightsError) as info:
        check_weights(num_classes=3, task="segmentation", name="small-cnn", registry=registry)
    assert (
        "'small-cnn' is a classification model but the dataset is a segmentation dataset"
        in _assert_actionable(info.value)
    )


def test_exported_program_with_a_fixed_batch_fails_on_the_probe(tmp_path):
    path = save_exported(_cnn(), tmp_path / "static.pt2", size=32, dynamic_batch=False)
    # the probe uses the program's example size; batch 2 matches the export, so it passes
    assert check_weights(path, num_classes=3, task="classification").format == "exported"
    with pytest.raises(WeightsError) as info:
        check_weights(path, num_classes=3, task="classification", input_size=(48, 48))
    message = _assert_actionable(info.value)
    assert message.startswith(f"{str(path)!r} fails on a (2, 3, 48, 48) input")
    assert "input contract ([model] size)" in message


def test_archive_as_initial_weights_for_training_is_refused(tmp_path):
    path = save_torchscript(_cnn(), tmp_path / "scripted.pt")
    with pytest.raises(WeightsError) as info:
        check_weights(path, num_classes=3, task="classification", for_training=True)
    message = _assert_actionable(info.value)
    assert (
        "is a TorchScript archive: it can be evaluated (audit, forensics) but not used for training (as initial weights)"
        in message
    )


def test_state_dict_without_name_and_archive_with_name(tmp_path, registry):
    weights = save_state_dict(_cnn(), tmp_path / "w.pt")
    with pytest.raises(WeightsError) as info:
        check_weights(weights, num_classes=3, task="classification", registry=registry)
    assert "set [model] name" in _assert_actionable(info.value)
    scripted = save_torchscript(_cnn(), tmp_path / "s.pt")
    with pytest.raises(WeightsError) as info:
        check_weights(
            scripted, num_classes=3, task="classification", name="small-cnn", registry=registry
        )
    assert "remove [model] name" in _assert_actionable(info.value)


def test_unknown_architecture_suggests_and_names_the_plugin_flag(registry):
    with pytest.raises(RegistryError) as info:
        check_weights(num_classes=3, task="classification", name="smal-cnn", registry=registry)
    message = _assert_actionable(info.value)
    assert "did you mean 'small-cnn'" in message and "loaded with -p MODULE" in message


def test_model_giving_nan_on_the_probe(tmp_path):
    class Broken(nn.Module):
        def forward(self, x):
            return torch.log(-x.mean(dim=(2, 3)))

    path = save_torchscript(Broken(), tmp_path / "nan.pt")
    with pytest.raises(WeightsError, match="gives NaN or infinite outputs on a constant input"):
        check_weights(path, num_classes=3, task="classification")


def test_bad_task_is_a_value_error():
    with pytest.raises(ValueError, match="task must be one of"):
        check_weights(num_classes=3, task="detection", name=SMALL_CNN)
