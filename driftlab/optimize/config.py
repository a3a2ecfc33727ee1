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
    modes = ["frozen", "frozen-bn", "learned", "paper", "raw"]
    epochs = 6
    batch_size = 32
    lr = 1e-3                  # Adam learning rate of the task model (and of the paper arm's ISP)
    isp_lr = 1e-2              # ISP step of the "learned" arm: fraction of each domain width
    folds = 3
    seed = 0
    eval_every = 1             # evaluate on the fold's test split every N epochs
    summary_last = 0           # evaluations pooled in the summary: the last N (0 = all)

    [isp]
    domains = "camera"         # calibrated, camera-relative domains; "generic": declared ones
    step_size = "domain-width" # Adam on (theta - theta0) / width; "absolute": on theta itself

    [miscalibration]           # the camera that really captured the data (the ISP is not told)
    white_balance = [1.15, 1.0, 0.85]  # factors on the profile's gains
    color_matrix_delta = 0.05  # added along the cross-talk pattern (or a 3x3 matrix)
    black_level = 0.002        # added to every site (fraction of white level; or 4 values)

    [summary]
    interval = "t"             # paired differences over folds: Student t or "bootstrap"
    confidence = 0.95

    [run]
    out = "runs/optimize-quickstart"
    workers = 2
    device = "auto"

The arms (``[training].modes``, see :mod:`driftlab.optimize.networks`):
``frozen`` (base ISP fixed, fixed per-channel normalisation), ``frozen-bn``
(base ISP fixed, batch normalisation after it), ``learned`` (base ISP learned
with steps scaled to each parameter's domain width and projected into the
domains), ``paper`` (the paper's released processor: free parameters,
learnable demosaic convolution, free sharpen and denoise kernels, batch
normalisation after it, one Adam rate), ``paper-frozen`` (that processor
frozen, as the paper's code ran its frozen arm) and ``raw`` (packed Bayer
planes, no ISP).

``[miscalibration]`` renders every mosaic (training and test items, every
light level) as if captured by a camera whose white balance, colour matrix
and black level differ from the profile the ISP is built with
(:mod:`driftlab.optimize.miscalibration`); the defaults change nothing.
``[summary]`` only changes how the finished cells are summarised.

Relative paths (``dataset.data_root``, a pipeline TOML file, ``run.out``)
are resolved against the config file's folder; the shared sections are
those of :mod:`driftlab.engine.config`.
"""

from __future__ import annotations

import math
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
    check_choice,
    check_integer,
    check_number,
    check_seed,
    setting,
)
from driftlab.errors import ConfigError
from driftlab.registry import suggest

__all__ = [
    "DEFAULT_MODES",
    "FROZEN_MODES",
    "ISP_MODES",
    "LEARNING_MODES",
    "MODES",
    "IspSection",
    "MiscalibrationSection",
    "OptimizeConfig",
    "SummarySection",
    "load_optimize_config",
]

MODES: tuple[str, ...] = ("frozen", "frozen-bn", "learned", "paper", "paper-frozen", "raw")
"""Every arm, in canonical order (see :mod:`driftlab.optimize.networks`)."""
DEFAULT_MODES: tuple[str, ...] = ("frozen", "frozen-bn", "learned", "paper", "raw")
"""Arms run when ``[training].modes`` is not given."""
ISP_MODES: tuple[str, ...] = ("frozen", "frozen-bn", "learned", "paper", "paper-frozen")
"""Arms with an ISP in front of the task model."""
LEARNING_MODES: tuple[str, ...] = ("learned", "paper")
"""Arms whose ISP parameters learn."""
FROZEN_MODES: tuple[str, ...] = ("frozen", "frozen-bn", "paper-frozen")
"""Arms whose ISP stays fixed."""
PAPER_MODES: tuple[str, ...] = ("paper", "paper-frozen")
"""Arms built from the paper's processor (need a ``bi,s,ga``-shaped base pipeline)."""


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

    modes: str | list[str] = setting(
        factory=lambda: list(DEFAULT_MODES), check=_modes, doc="the arms to train"
    )
    epochs: int = setting(5, check=check_integer(1))
    batch_size: int = setting(32, check=check_integer(1))
    lr: float = setting(
        1e-3,
        check=check_number(0, low_open=True),
        doc="Adam rate of the task model (and of every parameter of the paper arm)",
    )
    isp_lr: float = setting(
        1e-2,
        check=check_number(0, low_open=True),
        doc="Adam rate of the learned arm's ISP: a fraction of each element's domain width "
        'per step ([isp].step_size = "domain-width") or parameter units ("absolute")',
    )
    folds: int = setting(5, check=check_integer(1))  # 1 only with a [test] set (the plan checks)
    seed: int = setting(0, check=check_seed)
    eval_every: int = setting(1, check=check_integer(1))
    summary_last: int = setting(0, check=check_integer(0), identity=False)


STEP_SIZES: tuple[str, ...] = ("domain-width", "absolute")


@attrs.frozen(kw_only=True)
class IspSection:
    """``[isp]``: the domains of the learned ISP and how its steps are sized."""

    domains: str = setting(
        "camera",
        check=check_choice("camera", "generic"),
        doc="camera: calibrated, camera- and light-relative domains; generic: declared ones",
    )
    step_size: str = setting(
        "domain-width",
        check=check_choice(*STEP_SIZES),
        doc="domain-width: Adam on (theta - theta0) / width, so isp_lr is a fraction of each "
        "element's domain width per step; absolute: Adam on theta (one rate for all)",
    )


def _factors(value: list[float], where: str) -> list[float]:
    if len(value) != 3 or not all(math.isfinite(v) and v > 0 for v in value):
        raise ConfigError(
            f"{where}: expected 3 positive factors on the R, G, B gains, got {value!r}"
        )
    return [float(v) for v in value]


_factors.describe = "3 positive factors on the R, G, B gains"  # type: ignore[attr-defined]


def _matrix_delta(value: float | list[list[float]], where: str) -> float | list[list[float]]:
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ConfigError(f"{where}: expected a finite number or a 3x3 matrix, got {value}")
        return value
    if len(value) != 3 or any(len(row) != 3 for row in value):
        raise ConfigError(
            f"{where}: expected a number or a 3x3 matrix (3 rows of 3), got {value!r}"
        )
    if not all(math.isfinite(v) for row in value for v in row):
        raise ConfigError(f"{where}: matrix entries must be finite, got {value!r}")
    return [[float(v) for v in row] for row in value]


_matrix_delta.describe = "a number or a 3x3 matrix"  # type: ignore[attr-defined]


def _black_offsets(value: float | list[float], where: str) -> float | list[float]:
    values = [value] if isinstance(value, float) else value
    if len(values) not in (1, 4) or not all(math.isfinite(v) and -1 < v < 1 for v in values):
        raise ConfigError(
            f"{where}: expected one offset or 4 (one per CFA site, raster order) in (-1, 1) "
            f"as fractions of the white level, got {value!r}"
        )
    return value if isinstance(value, float) else [float(v) for v in value]


_black_offsets.describe = "a number or 4 numbers in (-1, 1)"  # type: ignore[attr-defined]


@attrs.frozen(kw_only=True)
class MiscalibrationSection:
    """``[miscalibration]``: how the camera that captured the data differs from its profile.

    The defaults describe a perfectly calibrated camera (nothing changes).
    """

    white_balance: list[float] = setting(
        factory=lambda: [1.0, 1.0, 1.0],
        check=_factors,
        doc="true gains = profile gains * these factors (R, G, B)",
    )
    color_matrix_delta: float | list[list[float]] = setting(
        0.0,
        check=_matrix_delta,
        doc="true matrix = profile matrix + delta * CROSS_TALK (a number) or + the 3x3 given",
    )
    black_level: float | list[float] = setting(
        0.0,
        check=_black_offsets,
        doc="true black level = profile level + this (fraction of the white level; 1 or 4 values)",
    )


def _confidence(value: float, where: str) -> float:
    if not (math.isfinite(value) and 0.5 <= value < 1):
        raise ConfigError(f"{where}: expected a confidence level in [0.5, 1), got {value}")
    return float(value)


_confidence.describe = "a number in [0.5, 1)"  # type: ignore[attr-defined]


@attrs.frozen(kw_only=True)
class SummarySection:
    """``[summary]``: the intervals of paired differences (report-only, not in the identity)."""

    interval: str = setting(
        "t",
        check=check_choice("t", "bootstrap"),
        identity=False,
        doc="t: Student t-interval over folds; bootstrap: paired percentile bootstrap over folds",
    )
    confidence: float = setting(0.95, check=_confidence, identity=False)
    bootstrap_samples: int = setting(
        10000, check=check_integer(100, 10_000_000), identity=False, doc="bootstrap resamples"
    )
    seed: int = setting(0, check=check_seed, identity=False, doc="seed of the bootstrap")


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
        "isp": IspSection,
        "miscalibration": MiscalibrationSection,
        "summary": SummarySection,
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
