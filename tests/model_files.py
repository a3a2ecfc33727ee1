"""Write real model files of every format driftlab loads, for tests.

Each writer saves ``model`` (an ``nn.Module`` in eval mode mapping
``(B, 3, H, W)`` to logits) the way its format's tool does and returns the path.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from driftlab.train.normalize import Normalized

__all__ = [
    "WRITERS",
    "save_checkpoint",
    "save_exported",
    "save_safetensors",
    "save_state_dict",
    "save_synthesis_model",
    "save_torchscript",
]


def save_state_dict(model: nn.Module, path: Path) -> Path:
    """``torch.save(model.state_dict(), path)``."""
    torch.save(model.state_dict(), path)
    return path


def save_checkpoint(model: nn.Module, path: Path, key: str = "state_dict") -> Path:
    """A training checkpoint: ``{"epoch": 7, key: state_dict, "optimizer": {...}}``."""
    optimiser = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    torch.save({"epoch": 7, key: model.state_dict(), "optimizer": optimiser.state_dict()}, path)
    return path


def save_safetensors(model: nn.Module, path: Path) -> Path:
    """``safetensors.torch.save_file`` of the state dict."""
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    return path


def save_torchscript(model: nn.Module, path: Path) -> Path:
    """``torch.jit.save(torch.jit.script(model))``."""
    with warnings.catch_warnings():  # torch.jit.script is deprecated in recent torch
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(torch.jit.script(model.eval()), str(path))
    return path


def save_exported(model: nn.Module, path: Path, size: int = 32, dynamic_batch: bool = True) -> Path:
    """``torch.export.save`` of the model exported on ``(2, 3, size, size)``."""
    example = (torch.rand(2, 3, size, size, generator=torch.Generator().manual_seed(0)),)
    shapes = {"x": {0: torch.export.Dim("batch")}} if dynamic_batch else None
    program = torch.export.export(model.eval(), example, dynamic_shapes=shapes)
    torch.export.save(program, path)
    return path


def save_synthesis_model(
    model: nn.Module,
    path: Path,
    mean: tuple[float, ...] = (0.41, 0.52, 0.33),
    std: tuple[float, ...] = (0.12, 0.2, 0.07),
) -> Path:
    """As the synthesis runner saves ``models/*.pt``: the state dict of ``Normalized(model)``."""
    net = Normalized(model, np.asarray(mean, np.float32), np.asarray(std, np.float32))
    torch.save(net.state_dict(), path)
    return path


WRITERS = {
    "state_dict": save_state_dict,
    "checkpoint": save_checkpoint,
    "safetensors": save_safetensors,
    "torchscript": save_torchscript,
    "exported": save_exported,
}
"""Writer per :data:`driftlab.models.LOADED_FORMATS` entry."""
