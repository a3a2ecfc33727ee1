"""Sections shared by the experiments that state a drift verdict (synthesis, audit):
``[corruptions]`` and ``[report]``."""

from __future__ import annotations

import attrs

from driftlab.engine.config import check_choice, check_integer, setting
from driftlab.errors import ConfigError

__all__ = ["CorruptionsSection", "ReportSection", "check_names", "check_severities"]


def check_names(value: str | list[str], where: str) -> str | list[str]:
    """``"all"`` (or another keyword the planner resolves) or a non-empty list of names.

    Raises
    ------
    ConfigError
        An empty list, naming ``where``.
    """
    if isinstance(value, list) and not value:
        raise ConfigError(f'{where}: expected "all" or a non-empty list of names, got []')
    return value


check_names.describe = '"all" or a non-empty list of names'  # type: ignore[attr-defined]


def check_severities(value: list[int], where: str) -> list[int]:
    """A non-empty list of corruption severities 1..5, sorted, repeats removed.

    Raises
    ------
    ConfigError
        An empty list or a severity outside 1..5, naming ``where``.
    """
    if not value or any(not 1 <= s <= 5 for s in value):
        raise ConfigError(f"{where}: expected a non-empty list of integers 1..5, got {value!r}")
    return sorted(dict.fromkeys(value))


check_severities.describe = "a list of integers 1..5"  # type: ignore[attr-defined]


@attrs.frozen(kw_only=True)
class CorruptionsSection:
    """``[corruptions]``: post-hoc corruptions of the views of the pipeline a model was
    trained on (synthesis: each train pipeline's test views; audit: the reference views)."""

    names: str | list[str] = setting("paper", check=check_names)
    severities: list[int] = setting(factory=lambda: [1, 3, 5], check=check_severities)
    family: str = setting(
        "imagenet-c",
        check=check_choice("imagenet-c", "cifar-c"),
        doc="severity tables: ImageNet-C or CIFAR-10-C (the paper's code)",
    )


def _metric(value: str | None, where: str) -> str | None:
    from driftlab.registry import suggest
    from driftlab.train.metrics import metric_names

    if value is not None and value not in metric_names():
        raise ConfigError(
            f"{where}: expected one of {', '.join(metric_names())}, got {value!r}"
            f"{suggest(value, metric_names())}"
        )
    return value


_metric.describe = "a metric name (accuracy, balanced_accuracy, macro_f1, iou)"  # type: ignore[attr-defined]


@attrs.frozen(kw_only=True)
class ReportSection:
    """``[report]``: the headline metric and how its uncertainty is estimated (changes no cell:
    every metric is computed from the per-item outcomes the cells keep)."""

    bootstrap: int = setting(
        1000,
        check=check_integer(0, 100_000),
        identity=False,
        doc="bootstrap resamples (0: no intervals)",
    )
    seed: int = setting(
        0, check=check_integer(0, 2**32 - 1), identity=False, doc="seed of the bootstrap"
    )
    metric: str | None = setting(
        None,
        check=_metric,
        identity=False,
        doc="headline metric: accuracy, balanced_accuracy, macro_f1 (classification) or iou "
        "(segmentation); default the task's first",
    )
