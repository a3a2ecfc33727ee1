"""The ``[report]`` section of experiments that state a drift verdict (synthesis, audit)."""

from __future__ import annotations

import attrs

from driftlab.engine.config import check_integer, setting
from driftlab.errors import ConfigError

__all__ = ["ReportSection"]


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
