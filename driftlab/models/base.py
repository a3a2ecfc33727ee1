"""Declaration of task models: what a plugin returns from ``driftlab_task_models``.

A task model (``Phi_task``) consumes views ``(B, 3, H, W)`` float in [0, 1]
(or normalised views; normalisation is the runner's job) and returns logits:
``(B, num_classes)`` for a classifier, ``(B, C, H, W)`` for a segmenter.

Factory signature
-----------------
factory(num_classes, in_channels=3, **options) -> torch.nn.Module
    ``options`` are keyword arguments with defaults declared in the factory's
    signature (they are listed by :attr:`TaskModelSpec.option_defaults`); a
    factory must not download anything (random initialisation; user weights
    are loaded afterwards with :func:`driftlab.models.load_weights`).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import attrs
from torch import nn

from driftlab.datasets.base import TASKS
from driftlab.errors import DriftlabError

__all__ = ["TASKS", "TaskModelError", "TaskModelFactory", "TaskModelSpec"]

TaskModelFactory = Callable[..., nn.Module]


class TaskModelError(DriftlabError, ValueError):
    """A task model cannot be built or loaded as asked."""

    exit_code = 2


def _check_name(instance: object, attribute: attrs.Attribute, value: str) -> None:
    if not isinstance(value, str) or not value or not value[0].isalnum():
        raise ValueError(
            f"{attribute.name} must be a non-empty string starting with a letter or digit, "
            f"got {value!r}"
        )
    if not all(ch.isalnum() or ch in "_-." for ch in value):
        raise ValueError(
            f"{attribute.name} may contain only letters, digits, '_', '-' and '.', got {value!r}"
        )


def _check_task(instance: object, attribute: attrs.Attribute, value: str) -> None:
    if value not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {value!r}")


def _check_factory(instance: object, attribute: attrs.Attribute, value: object) -> None:
    if not callable(value):
        raise ValueError(f"factory must be callable, got {type(value).__name__}")
    try:
        params = inspect.signature(value).parameters.values()
    except (TypeError, ValueError):  # builtins without a signature: trust the declaration
        return
    names = {p.name for p in params}
    if "in_channels" not in names and not any(p.kind is p.VAR_KEYWORD for p in params):
        raise ValueError(
            "factory must accept factory(num_classes, in_channels=3, **options); "
            f"{getattr(value, '__name__', value)!r} has no in_channels parameter"
        )


def _check_positive(instance: object, attribute: attrs.Attribute, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{attribute.name} must be an int >= 1, got {value!r}")


def _check_count(value: object, what: str, minimum: int, model: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise TaskModelError(
            f"task model {model!r}: {what} must be an int >= {minimum}, got {value!r}"
        )
    return value


@attrs.frozen
class TaskModelSpec:
    """Declaration of one task-model architecture.

    Parameters
    ----------
    name : str
        Registry key, e.g. ``resnet18``; letters, digits, ``_``, ``-``, ``.``.
    task : {"classification", "segmentation"}
        What the model solves; decides the output shape.
    doc : str
        One-line description.
    factory : callable
        ``factory(num_classes, in_channels=3, **options) -> nn.Module`` (see
        the module docstring).
    reference : str
        Source of the architecture (paper, library).
    size_multiple : int
        Input height and width must be multiples of this (e.g. 32 for a
        five-level U-Net++); 1 when any size works.

    Raises
    ------
    ValueError
        On an invalid name, task, non-callable factory or ``size_multiple < 1``.
    """

    name: str = attrs.field(validator=_check_name)
    task: str = attrs.field(validator=_check_task)
    doc: str
    factory: TaskModelFactory = attrs.field(eq=False, validator=_check_factory)
    reference: str = ""
    size_multiple: int = attrs.field(default=1, validator=_check_positive)

    @property
    def option_defaults(self) -> dict[str, Any]:
        """Keyword options of the factory (besides ``in_channels``) with their defaults."""
        params = inspect.signature(self.factory).parameters.values()
        return {
            p.name: p.default
            for p in list(params)[1:]
            if p.name != "in_channels"
            and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
            and p.default is not p.empty
        }

    def _accepts_any_option(self) -> bool:
        params = inspect.signature(self.factory).parameters.values()
        return any(p.kind is p.VAR_KEYWORD for p in params)

    def build(self, num_classes: int, in_channels: int = 3, **options: Any) -> nn.Module:
        """Build a randomly initialised model.

        Parameters
        ----------
        num_classes : int
            Classes: output logits per image (classification, >= 2) or output
            channels per pixel (segmentation, >= 1; 1 means binary
            foreground/background logits, e.g. car vs not car).
        in_channels : int
            Channels of the input views (3 for RGB views).
        **options
            Architecture options (see :attr:`option_defaults`).

        Returns
        -------
        torch.nn.Module
            In training mode, on the CPU, float32.

        Raises
        ------
        TaskModelError
            Bad ``num_classes`` or ``in_channels``, an unknown option (the
            message lists the valid ones), a factory that rejects an option
            value, or a factory that does not return an ``nn.Module``.
        """
        minimum = 2 if self.task == "classification" else 1
        _check_count(num_classes, "num_classes", minimum, self.name)
        _check_count(in_channels, "in_channels", 1, self.name)
        if not self._accepts_any_option():
            valid = self.option_defaults
            unknown = sorted(set(options) - set(valid))
            if unknown:
                raise TaskModelError(
                    f"task model {self.name!r} has no option(s) {', '.join(map(repr, unknown))}; "
                    f"options: {', '.join(f'{k}={v!r}' for k, v in valid.items()) or 'none'}"
                )
        model = self.factory(num_classes, in_channels=in_channels, **options)
        if not isinstance(model, nn.Module):
            raise TaskModelError(
                f"task model {self.name!r}: factory returned {type(model).__name__}, "
                "expected a torch.nn.Module"
            )
        return model
