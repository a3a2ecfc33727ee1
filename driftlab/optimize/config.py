"""Configuration of an optimisation run (TOML), validated before any work starts.

Example::

    [dataset]
    name = "embedded-smear"
    intensities = [1.0, 0.05]
    options = { n_items = 240, size = 32 }

    [pipeline]
    name = "bi,s,ga"           # a paper data model with a differentiable form, or a TOML file

    [model]
    name = "small-cnn"

    [training]
    modes = ["frozen", "learned", "raw"]
    epochs = 6
    batch_size = 32
    lr = 1e-3                  # Adam learning rate of the task model
    isp_lr = 1e-3              # Adam learning rate of the ISP parameters ("learned" mode)
    folds = 3
    seed = 0
    eval_every = 1             # evaluate on the fold's test split every N epochs
    summary_last = 0           # evaluations pooled in the summary: the last N (0 = all)

    [run]
    out = "runs/optimize-quickstart"
    workers = 2
    device = "auto"

Relative paths (``dataset.data_root``, a pipeline TOML file, ``run.out``)
are resolved against the config file's folder; the shared sections are
those of :mod:`driftlab.engine.config`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import attrs

from driftlab.engine.config import (
    ExecutorSection,
    ExperimentConfig,
    ModelSection,
    RunSection,
    TestSection,
    TrackingSection,
    check_integer,
    check_number,
    check_seed,
    setting,
)
from driftlab.errors import ConfigError
from driftlab.registry import suggest

__all__ = ["MODES", "OptimizeConfig", "load_optimize_config"]

MODES: tuple[str, ...] = ("frozen", "learned", "raw")


def _intensities(value: list[float], where: str) -> list[float]:
    bad = [v for v in value if not 0 < v <= 1]
    if not value or bad:
        raise ConfigError(f"{where}: expected a non-empty list of numbers in (0, 1], got {value!r}")
    if len(set(value)) != len(value):
        raise ConfigError(f"{where}: repeated intensity levels in {value}")
    return [float(v) for v in value]


_intensities.describe = "a non-empty list of numbers in (0, 1]"  # type: ignore[attr-defined]


def _modes(value: str | list[str], where: str) -> list[str]:
    value = [value] if isinstance(value, str) else value
    if not value:
        raise ConfigError(f"{where}: expected a non-empty list out of {list(MODES)}, got []")
    for mode in value:
        if mode not in MODES:
            raise ConfigError(
                f"{where}: unknown mode {mode!r}{suggest(mode, MODES)}; valid modes: "
                f"{', '.join(MODES)}"
            )
    if len(set(value)) != len(value):
        raise ConfigError(f"{where}: repeated modes in {value}")
    return [m for m in MODES if m in value]  # canonical order


_modes.describe = f"a non-empty list out of {list(MODES)}"  # type: ignore[attr-defined]


@attrs.frozen(kw_only=True)
class OptimizeDatasetSection:
    """``[dataset]``: the raw dataset, opened at every light level."""

    name: str = setting()
    data_root: str | None = setting(None, path="dir", identity=False)
    intensities: list[float] = setting(factory=lambda: [1.0], check=_intensities)
    options: dict[str, Any] = setting(factory=dict)


@attrs.frozen(kw_only=True)
class PipelineSection:
    """``[pipeline]``: the base ISP (a name or a TOML file) of the frozen and learned arms."""

    name: str = setting("bi,s,ga", path="toml-entries")


@attrs.frozen(kw_only=True)
class OptimizeTrainingSection:
    """``[training]``: the arms and how each is trained and evaluated."""

    MOVED: ClassVar[dict[str, str]] = {"device": "[run].device"}

    modes: str | list[str] = setting(factory=lambda: list(MODES), check=_modes)
    epochs: int = setting(5, check=check_integer(1))
    batch_size: int = setting(32, check=check_integer(1))
    lr: float = setting(1e-3, check=check_number(0, low_open=True))
    isp_lr: float = setting(1e-3, check=check_number(0, low_open=True))
    folds: int = setting(5, check=check_integer(1))  # 1 only with a [test] set (the plan checks)
    seed: int = setting(0, check=check_seed)
    eval_every: int = setting(1, check=check_integer(1))
    summary_last: int = setting(0, check=check_integer(0), identity=False)


@attrs.frozen
class OptimizeConfig(ExperimentConfig):
    """A validated optimisation configuration (registry checks happen in the plan)."""

    KIND: ClassVar[str] = "optimize"
    SECTIONS: ClassVar[dict[str, type]] = {
        "dataset": OptimizeDatasetSection,
        "pipeline": PipelineSection,
        "model": ModelSection,
        "training": OptimizeTrainingSection,
        "test": TestSection,
        "run": RunSection,
        "executor": ExecutorSection,
        "tracking": TrackingSection,
    }
    REQUIRED: ClassVar[tuple[str, ...]] = ("dataset", "model")

    def validate(self) -> None:
        tr = self.training
        if tr.eval_every > tr.epochs:
            raise ConfigError(
                f"{self.source} [training].eval_every: {tr.eval_every} exceeds epochs "
                f"({tr.epochs}); the test split would be evaluated only after the last epoch"
            )
        if self.model.weights:
            raise ConfigError(
                f"{self.source} [model].weights: optimisation trains every arm from the same "
                "random initialisation; remove the key"
            )


def load_optimize_config(
    source: str | Path | Mapping[str, Any] | OptimizeConfig, overrides: Sequence[str] = ()
) -> OptimizeConfig:
    """Read an optimisation config from a TOML path, a dict or an existing config.

    Raises
    ------
    ConfigError
        Missing file, invalid TOML or invalid content, naming file and key.
    """
    return OptimizeConfig.load(source, overrides)  # type: ignore[return-value]
