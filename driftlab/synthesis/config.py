"""Configuration of a drift-synthesis run (TOML), validated before any work starts.

Example::

    [dataset]
    name = "embedded-smear"
    intensity = 1.0
    options = { n_items = 600 }

    [pipelines]
    train = "all"              # "all", a list of names, or pipeline TOML files
    test = "all"

    [corruptions]
    names = ["identity", "gaussian_noise", "contrast"]   # or "paper" / "all"
    severities = [1, 3, 5]

    [model]
    name = "small-cnn"

    [training]
    epochs = 4
    batch_size = 64
    lr = 1e-3
    folds = 3
    seed = 0
    augment = false
    schedule = "constant"      # or "cosine": learning rate annealed to 0 over the run

    [test]                     # optional fixed held-out test set (see engine.config.TestSection)
    split = "val"              # or ids = "val.txt", or name / data_root / options of a 2nd set

    [report]
    bootstrap = 1000           # resamples of the paired bootstrap intervals
    seed = 0                   # seed of the bootstrap
    metric = "accuracy"        # headline metric; default accuracy (classification) / iou

    [run]
    out = "runs/quickstart"
    workers = 2
    device = "auto"

    [executor]                 # optional: kind = "ray", address = "auto" ...
    [tracking]                 # optional: mlflow_uri = "sqlite:///mlflow.db"

Relative paths (``dataset.data_root``, pipeline files, ``model.weights``,
``run.out``) are resolved against the config file's folder; ``~`` is
expanded. The shared sections are those of :mod:`driftlab.engine.config`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import attrs

from driftlab.engine.config import (
    DatasetSection,
    ExecutorSection,
    ExperimentConfig,
    ModelSection,
    RunSection,
    TestSection,
    TrackingSection,
    TrainingSection,
    check_choice,
    setting,
)
from driftlab.errors import ConfigError
from driftlab.verdicts.config import ReportSection

__all__ = [
    "CorruptionsSection",
    "PipelinesSection",
    "SynthesisConfig",
    "SynthesisTrainingSection",
    "load_synthesis_config",
]


def _names(value: str | list[str], where: str) -> str | list[str]:
    if isinstance(value, list) and not value:
        raise ConfigError(f'{where}: expected "all" or a non-empty list of names, got []')
    return value


_names.describe = '"all" or a non-empty list of names'  # type: ignore[attr-defined]


def _severities(value: list[int], where: str) -> list[int]:
    if not value or any(not 1 <= s <= 5 for s in value):
        raise ConfigError(f"{where}: expected a non-empty list of integers 1..5, got {value!r}")
    return sorted(dict.fromkeys(value))


_severities.describe = "a list of integers 1..5"  # type: ignore[attr-defined]


@attrs.frozen(kw_only=True)
class PipelinesSection:
    """``[pipelines]``: train and test pipelines (names, ``"all"``, or TOML files)."""

    train: str | list[str] = setting("all", check=_names, path="toml-entries")
    test: str | list[str] = setting("all", check=_names, path="toml-entries")


@attrs.frozen(kw_only=True)
class CorruptionsSection:
    """``[corruptions]``: post-hoc corruptions of the training pipeline's test views."""

    names: str | list[str] = setting("paper", check=_names)
    severities: list[int] = setting(factory=lambda: [1, 3, 5], check=_severities)
    family: str = setting(
        "imagenet-c",
        check=check_choice("imagenet-c", "cifar-c"),
        doc="severity tables: ImageNet-C or CIFAR-10-C (the paper's code)",
    )


@attrs.frozen(kw_only=True)
class SynthesisTrainingSection(TrainingSection):
    """``[training]`` of synthesis: the shared keys plus the learning-rate schedule."""

    schedule: str = setting(
        "constant",
        check=check_choice("constant", "cosine"),
        doc="learning rate: constant, or cosine annealing to 0 over the run",
    )


@attrs.frozen
class SynthesisConfig(ExperimentConfig):
    """A validated synthesis configuration (registry checks happen in the planner)."""

    KIND: ClassVar[str] = "synthesis"
    SECTIONS: ClassVar[dict[str, type]] = {
        "dataset": DatasetSection,
        "pipelines": PipelinesSection,
        "corruptions": CorruptionsSection,
        "model": ModelSection,
        "training": SynthesisTrainingSection,
        "test": TestSection,
        "report": ReportSection,
        "run": RunSection,
        "executor": ExecutorSection,
        "tracking": TrackingSection,
    }
    REQUIRED: ClassVar[tuple[str, ...]] = ("dataset", "model")


def load_synthesis_config(
    source: str | Path | Mapping[str, Any] | SynthesisConfig, overrides: Sequence[str] = ()
) -> SynthesisConfig:
    """Read a synthesis config from a TOML path, a dict or an existing config.

    Raises
    ------
    ConfigError
        Missing file, invalid TOML or invalid content, naming file and key.
    """
    return SynthesisConfig.load(source, overrides)  # type: ignore[return-value]
