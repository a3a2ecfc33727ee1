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
from driftlab.verdicts.config import CorruptionsSection, ReportSection, check_names

__all__ = [
    "CorruptionsSection",
    "PipelinesSection",
    "SynthesisConfig",
    "SynthesisTrainingSection",
    "load_synthesis_config",
]


@attrs.frozen(kw_only=True)
class PipelinesSection:
    """``[pipelines]``: train and test pipelines (names, ``"all"``, or TOML files)."""

    train: str | list[str] = setting("all", check=check_names, path="toml-entries")
    test: str | list[str] = setting("all", check=check_names, path="toml-entries")


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
