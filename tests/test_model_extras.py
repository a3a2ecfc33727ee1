"""Optional extras: segmentation-models-pytorch is imported only for ``unetpp-resnet``."""

from __future__ import annotations

import builtins
import sys

import pytest

from driftlab.models import SMALL_UNET, UNETPP_RESNET, TaskModelError, check_weights
from driftlab.registry import Registry


@pytest.fixture
def without_smp(monkeypatch):
    """Make ``import segmentation_models_pytorch`` fail as if it were not installed."""
    for name in list(sys.modules):
        if name == "segmentation_models_pytorch" or name.startswith("segmentation_models_pytorch."):
            monkeypatch.delitem(sys.modules, name)
    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name == "segmentation_models_pytorch" or name.startswith("segmentation_models_pytorch."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)


def test_missing_segmentation_extra_names_the_extra(without_smp):
    with pytest.raises(
        TaskModelError,
        match=(
            r"task model 'unetpp-resnet' needs segmentation-models-pytorch, which could not be "
            r"imported \(No module named 'segmentation_models_pytorch'\); install the extra: "
            r"pip install 'driftlab\[segmentation\]'"
        ),
    ):
        UNETPP_RESNET.build(1, encoder_name="resnet18")


def test_everything_else_works_without_the_segmentation_extra(without_smp):
    registry = Registry.load(entry_points=False)
    assert registry.errors == []
    assert "unetpp-resnet" in registry.names("task_models")
    assert SMALL_UNET.build(1).training
    with pytest.raises(TaskModelError, match=r"driftlab\[segmentation\]"):
        check_weights(num_classes=1, task="segmentation", name="unetpp-resnet", registry=registry)
    assert "segmentation_models_pytorch" not in sys.modules
