"""Writes an in-process plugin module (a stage and a task model) for engine tests.

The module is written to a temporary folder and imported from there, as a
user's own code would be, so cells can only reach it through the registry
that travels with them (it is shipped to Ray workers by value).
"""

from __future__ import annotations

import importlib
import sys
import uuid
from pathlib import Path

import tomli_w

from driftlab.pipeline import get_pipeline
from driftlab.registry import Registry

SOURCE = '''
"""In-process test plugin: a tint stage and a tiny classifier."""
import numpy as np
import torch
from torch import nn

from driftlab import hookimpl
from driftlab.models.base import TaskModelSpec
from driftlab.params import Domain, ParamSpec
from driftlab.stages.base import StageSpec

FACTOR = ParamSpec(name="factor", shape=(), default=0.9, unit="gain", domain=Domain(0.5, 1.5),
                   doc="multiplies every channel")


def tint_static(x, ctx, *, factor):
    return x * float(factor)


def tint_torch(x, ctx, *, factor):
    return x * factor


class TinyNet(nn.Module):
    def __init__(self, num_classes, in_channels=3):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, 4, 3, padding=1)
        self.head = nn.Linear(4, num_classes)

    def forward(self, x):
        return self.head(torch.relu(self.conv(x)).mean(dim=(2, 3)))


def tiny_net(num_classes, in_channels=3):
    return TinyNet(num_classes, in_channels)


FAIL_FLAG = __import__("pathlib").Path(__file__).with_name("FAIL")


class FlakyNet(TinyNet):
    """Raises in training mode while the file FAIL exists next to this module."""

    def forward(self, x):
        if self.training and FAIL_FLAG.exists():
            raise RuntimeError("flaky-net failed on purpose")
        return super().forward(x)


def flaky_net(num_classes, in_channels=3):
    return FlakyNet(num_classes, in_channels)


@hookimpl
def driftlab_stages():
    return [StageSpec(slot="tint", variant="scale", doc="scale every channel", params=(FACTOR,),
                      static=tint_static, differentiable=tint_torch, reference="engine tests")]


@hookimpl
def driftlab_task_models():
    return [TaskModelSpec(name="tiny-plugin-net", task="classification", doc="test net",
                          factory=tiny_net),
            TaskModelSpec(name="flaky-net", task="classification", doc="fails on demand",
                          factory=flaky_net)]
'''


def make_plugin(folder: Path) -> tuple[Registry, Path]:
    """Import a fresh plugin module from ``folder``; return a registry with it and a
    pipeline file ``tinted.toml`` that uses its stage."""
    name = f"engine_plugin_{uuid.uuid4().hex[:8]}"
    (folder / f"{name}.py").write_text(SOURCE)
    sys.path.insert(0, str(folder))
    try:
        module = importlib.import_module(name)
    finally:
        sys.path.remove(str(folder))
    registry = Registry.load(extra=[(name, module)])
    assert not registry.errors, registry.errors
    spec = get_pipeline("bi,s,ga").to_dict()
    stages = list(spec["stages"])
    stages.insert(len(stages) - 1, {"slot": "tint", "variant": "scale"})
    path = folder / "tinted.toml"
    path.write_text(tomli_w.dumps({"name": "tinted", "stages": stages}))
    return registry, path
