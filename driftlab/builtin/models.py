"""Built-in plugin: the paper's task models and CPU-sized ones."""

from __future__ import annotations

from driftlab.hookspecs import hookimpl
from driftlab.models import BUILTIN_TASK_MODELS, TaskModelSpec


@hookimpl
def driftlab_task_models() -> list[TaskModelSpec]:
    """``resnet18``, ``unetpp-resnet``, ``small-cnn`` and ``small-unet``."""
    return list(BUILTIN_TASK_MODELS)
