"""Configuration of a forensics run (TOML), validated before any work starts.

Example::

    [model]
    run = "../runs/quickstart"     # a synthesis run directory ...
    train_pipeline = "bi,s,ga"
    fold = 0
    # ... or: name = "small-cnn", options = {...}, weights = "model.pt"

    [dataset]                      # optional with [model].run (the run's dataset)
    name = "embedded-smear"
    options = { n_items = 600, size = 48 }

    [split]
    part = "test"                  # the fold's "test" items, "train" items, or "all"
    max_items = 48

    [pipeline]
    base = "bi,s,ga"               # default: [model].train_pipeline

    [attacks]
    names = ["penalty", "projected", "search"]
    lambdas = [0.0, 1.0]
    targets = [["all"], ["gamma"], ["white_balance.gains"]]
    steps = 20

    [signature]
    threshold = 0.95

    [run]
    out = "../runs/forensics-quickstart"
    workers = 2
    device = "auto"

Relative paths (``model.run``, ``model.weights``, ``dataset.data_root``,
pipeline files, ``run.out``) are resolved against the config file's folder.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import attrs

from driftlab.engine.config import (
    ExecutorSection,
    ExperimentConfig,
    RunSection,
    TrackingSection,
    check_choice,
    check_integer,
    check_number,
    check_seed,
    setting,
)
from driftlab.errors import ConfigError

__all__ = ["ForensicsConfig", "load_forensics_config"]


def _run_identity(path: str) -> str:
    """A synthesis run enters the identity by its recorded identity, not its location."""
    import json

    try:
        manifest = json.loads((Path(path) / "manifest.json").read_text())
        return f"run:{manifest.get('identity_sha256')}"
    except (OSError, ValueError, AttributeError):
        return "run:unreadable"


@attrs.frozen(kw_only=True)
class ForensicsModelSection:
    """``[model]``: a model of a synthesis run, or an architecture plus a weights file."""

    run: str | None = setting(None, path="dir", identity=_run_identity)
    train_pipeline: str | None = setting(None)
    fold: int = setting(0, check=check_integer(0))
    name: str | None = setting(None)
    options: dict[str, Any] = setting(factory=dict)
    weights: str | None = setting(None, path="file")
    key: str | None = setting(None, doc="key of the state dict inside a checkpoint dict")


@attrs.frozen(kw_only=True)
class ForensicsDatasetSection:
    """``[dataset]``: the examined data (defaults to the synthesis run's dataset).

    A key left out (None) takes the synthesis run's value when the dataset is
    the run's (``intensity`` 1.0 and no ``options`` otherwise), so a forensics
    run examines the very items the model's fold held out.
    """

    name: str | None = setting(None)
    data_root: str | None = setting(None, path="dir", identity=False)
    intensity: float | None = setting(
        None, check=check_number(0, 1, low_open=True), doc="default: the run's, else 1.0"
    )
    options: dict[str, Any] | None = setting(None, doc="default: the run's, else none")
    camera: str | None = setting(
        None,
        doc="camera profile the data was captured with (default: the run's, else the "
        "dataset's own)",
    )


@attrs.frozen(kw_only=True)
class SplitSection:
    """``[split]``: which items are examined."""

    part: str = setting("test", check=check_choice("test", "train", "all"))
    folds: int | None = setting(None, check=check_integer(2))
    fold: int | None = setting(None, check=check_integer(0))
    seed: int | None = setting(None, check=check_seed)
    max_items: int = setting(
        280,
        check=check_integer(1, 100_000),
        doc="examined items (half held out); 280 lets the default [signature] declare a "
        "box safe (140 held-out items needed)",
    )


@attrs.frozen(kw_only=True)
class BasePipelineSection:
    """``[pipeline]``: the attacked ISP (default: the model's training pipeline)."""

    base: str | None = setting(None, path="toml-entries")


def _names(value: str | list[str], where: str) -> list[str]:
    value = [value] if isinstance(value, str) else value
    if not value:
        raise ConfigError(f"{where}: expected a name or a non-empty list of names, got []")
    return value


_names.describe = "a name or a non-empty list of names"  # type: ignore[attr-defined]


def _lambdas(value: list[float], where: str) -> list[float]:
    if not value or any(not (v >= 0 and v == v and v != float("inf")) for v in value):
        raise ConfigError(f"{where}: expected a non-empty list of finite numbers >= 0, got {value}")
    return [float(v) for v in value]


_lambdas.describe = "a non-empty list of numbers >= 0"  # type: ignore[attr-defined]


def _targets(value: Any, where: str) -> list[list[str]]:
    if isinstance(value, str) or (isinstance(value, list) and value and
                                  all(isinstance(t, str) for t in value)):  # fmt: skip
        value = [value]
    if not isinstance(value, list) or not value:
        raise ConfigError(f"{where}: expected a list of target lists, got {value!r}")
    out = []
    for item in value:
        if isinstance(item, str):
            item = [item]
        if not isinstance(item, list) or not item or not all(isinstance(t, str) for t in item):
            raise ConfigError(f"{where}: expected a list of target lists, got {value!r}")
        out.append(list(item))
    return out


_targets.describe = "a list of target lists"  # type: ignore[attr-defined]


@attrs.frozen(kw_only=True)
class AttacksSection:
    """``[attacks]``: which attacks, their strength and search settings."""

    names: str | list[str] = setting(
        factory=lambda: ["penalty", "projected", "search"], check=_names
    )
    lambdas: list[float] = setting(factory=lambda: [0.0, 1.0], check=_lambdas)
    targets: Any = setting(factory=lambda: [["all"]], check=_targets)
    steps: int = setting(20, check=check_integer(1, 100_000))
    lr: float = setting(0.02, check=check_number(0, low_open=True))
    similarity: str = setting("ssim", check=check_choice("ssim", "l2"))
    budget: float | None = setting(
        None, check=check_number(0, 1, low_open=True, what="a fraction in (0, 1]")
    )
    method: str = setting("random", check=check_choice("random", "cma"))
    population: int = setting(8, check=check_integer(1, 10_000))
    seed: int = setting(0, check=check_seed)
    samples: int = setting(4, check=check_integer(1, 64), identity=False)
    options: dict[str, Any] = setting(
        factory=dict, doc="per-attack options: [attacks.options.NAME] key = value"
    )


@attrs.frozen(kw_only=True)
class SignatureSection:
    """``[signature]``: the forensic signature's envelope and acceptance."""

    enabled: bool = setting(True)
    threshold: float = setting(
        0.95, check=check_number(0, 1, low_open=True, what="a fraction in (0, 1]")
    )
    points: int = setting(6, check=check_integer(1, 1000))
    refine: int = setting(4, check=check_integer(0, 60))
    tolerance: float = setting(
        1e-6, check=check_number(0), doc="recorded verification tolerance (a suggestion only)"
    )
    steps: int = setting(20, check=check_integer(1, 100_000))
    seed: int = setting(0, check=check_seed, doc="seed of the search / held-out split")
    confidence: float = setting(
        0.95,
        check=check_number(0.5, 0.999, what="a confidence level in [0.5, 0.999]"),
        doc="family-wise one-sided confidence; each bound is Bonferroni-corrected to "
        "1 - (1 - confidence) / 2 ** shrink_steps",
    )
    resamples: int = setting(1000, check=check_integer(100, 100_000), doc="bootstrap (IoU)")
    shrink_steps: int = setting(
        5, check=check_integer(0, 30), doc="bisections of the box (2 ** shrink_steps boxes)"
    )
    corners: int = setting(16, check=check_integer(1, 4096), doc="box corners evaluated")


@attrs.frozen
class ForensicsConfig(ExperimentConfig):
    """A validated forensics configuration (registry checks happen in the planner)."""

    KIND: ClassVar[str] = "forensics"
    SECTIONS: ClassVar[dict[str, type]] = {
        "model": ForensicsModelSection,
        "dataset": ForensicsDatasetSection,
        "split": SplitSection,
        "pipeline": BasePipelineSection,
        "attacks": AttacksSection,
        "signature": SignatureSection,
        "run": RunSection,
        "executor": ExecutorSection,
        "tracking": TrackingSection,
    }
    REQUIRED: ClassVar[tuple[str, ...]] = ("model",)

    def validate(self) -> None:
        mo, where = self.model, f"{self.source} [model]"
        if mo.run is not None:
            if not mo.train_pipeline:
                raise ConfigError(f"{where}: 'run' needs 'train_pipeline' (e.g. \"bi,s,ga\")")
            if not (Path(mo.run) / "config.toml").is_file():
                raise ConfigError(
                    f"{where}.run: {mo.run} is not a synthesis run directory (no config.toml)"
                )
            return
        if mo.weights is None:
            raise ConfigError(
                f"{where}: give either run + train_pipeline (+ fold), or weights (+ name for "
                "a state dict, checkpoint or safetensors file); missing 'weights'"
            )
        if self.dataset.name is None:
            raise ConfigError(
                f"{self.source} [dataset]: missing required key 'name' (no [model].run)"
            )


def load_forensics_config(
    source: str | Path | Mapping[str, Any] | ForensicsConfig, overrides: Sequence[str] = ()
) -> ForensicsConfig:
    """Read a forensics config from a TOML path, a dict or an existing config.

    Raises
    ------
    ConfigError
        Missing file, invalid TOML or invalid content, naming file and key.
    """
    return ForensicsConfig.load(source, overrides)  # type: ignore[return-value]
