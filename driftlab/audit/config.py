"""Configuration of a drift audit (TOML), validated before any work starts.

An audit evaluates a frozen model, never trains it. Example::

    [dataset]                  # the data the model's classes come from
    name = "bccd-cells"
    data_root = "../../shared/data/bccd"
    options = { crop_size = 64, image_set = "train" }

    [test]                     # optional: audit only these items (default: all of [dataset])
    split = "val"              # or ids = "val.txt", or name / data_root / options of a 2nd set

    [model]
    weights = "model.pt"       # state dict, checkpoint, safetensors, TorchScript, torch.export
    name = "small-cnn"         # the architecture of a state dict (unset for archives)
    key = "state_dict"         # entry of a checkpoint dict (optional)
    train_pipeline = "bi,s,ga" # the pipeline the model was trained on: the reference column
    mean = [0.5, 0.5, 0.5]     # normalisation (x - mean) / std, or leave both out
    std = [0.2, 0.2, 0.2]
    size = [64, 64]            # [H, W] the model takes (default: the views' size)
    value_range = [0, 1]       # range of the model's input pixels

    [pipelines]
    test = "all"               # ISP pipelines the model is tested under (+ the reference)

    [corruptions]
    names = "paper"            # corruptions of the reference views; or a list, or "all"
    severities = [1, 3, 5]
    family = "imagenet-c"      # or "cifar-c" (the paper's code)
    seed = 0                   # seed of the random corruptions (per item and condition)

    [report]
    bootstrap = 1000

    [run]
    out = "runs/audit"
    workers = 2
    device = "auto"

Relative paths (``dataset.data_root``, ``test.data_root``, ``test.ids``,
``model.weights``, pipeline files, ``run.out``) are resolved against the
config file's folder. The input-contract keys are those of
:class:`driftlab.models.InputContract`.
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
    RunSection,
    TestSection,
    TrackingSection,
    check_seed,
    setting,
)
from driftlab.errors import ConfigError
from driftlab.verdicts.config import CorruptionsSection, ReportSection, check_names

__all__ = [
    "AuditConfig",
    "AuditCorruptionsSection",
    "AuditModelSection",
    "AuditPipelinesSection",
    "forensics_model_table",
    "load_audit_config",
]


def _train_pipeline(value: str, where: str) -> str:
    if not value.strip():
        raise ConfigError(f'{where}: expected a pipeline name such as "bi,s,ga", got {value!r}')
    return value


@attrs.frozen(kw_only=True)
class AuditModelSection:
    """``[model]``: the frozen model and its input contract.

    ``weights`` in any format of :func:`driftlab.models.load_model`; ``name``
    (and ``options``) for a state dict, checkpoint or safetensors file;
    ``key`` for a checkpoint dict. The contract (``train_pipeline``,
    ``mean``, ``std``, ``size``, ``value_range``) says how views become the
    model's input (:class:`driftlab.models.InputContract`).
    """

    weights: str = setting(
        path="file",
        doc="the model file (content enters the identity)",
    )
    name: str | None = setting(None, doc="registered architecture of a state dict")
    options: dict[str, Any] = setting(factory=dict, doc="architecture options")
    key: str | None = setting(None, doc="key of the state dict inside a checkpoint dict")
    train_pipeline: str = setting(
        path="toml-entries",
        check=_train_pipeline,
        doc="the pipeline the model was trained on (the reference column)",
    )
    mean: list[float] | None = setting(None, doc="per-channel normalisation mean")
    std: list[float] | None = setting(None, doc="per-channel normalisation std")
    size: int | list[int] | None = setting(None, doc="[H, W] of the model input")
    value_range: list[float] = setting(
        factory=lambda: [0.0, 1.0], doc="[lo, hi] of the model's input pixels"
    )

    def contract_table(self) -> dict[str, Any]:
        """The input-contract keys as a table for :meth:`InputContract.from_dict`."""
        table: dict[str, Any] = {
            "train_pipeline": self.train_pipeline,
            "value_range": self.value_range,
        }
        for key in ("mean", "std", "size"):
            value = getattr(self, key)
            if value is not None:
                table[key] = value
        return table


@attrs.frozen(kw_only=True)
class AuditPipelinesSection:
    """``[pipelines]``: ISP pipelines the model is tested under (the reference is added)."""

    test: str | list[str] = setting("all", check=check_names, path="toml-entries")


@attrs.frozen(kw_only=True)
class AuditCorruptionsSection(CorruptionsSection):
    """``[corruptions]``: post-hoc corruptions of the reference pipeline's views, and the seed
    of the random ones."""

    seed: int = setting(0, check=check_seed, doc="seed of the random corruptions")


@attrs.frozen
class AuditConfig(ExperimentConfig):
    """A validated audit configuration (registry checks happen in the planner)."""

    KIND: ClassVar[str] = "audit"
    SECTIONS: ClassVar[dict[str, type]] = {
        "dataset": DatasetSection,
        "test": TestSection,
        "model": AuditModelSection,
        "pipelines": AuditPipelinesSection,
        "corruptions": AuditCorruptionsSection,
        "report": ReportSection,
        "run": RunSection,
        "executor": ExecutorSection,
        "tracking": TrackingSection,
    }
    REQUIRED: ClassVar[tuple[str, ...]] = ("dataset", "model")

    def validate(self) -> None:
        from driftlab.models.contract import InputContract, InputContractError

        try:
            InputContract.from_dict(self.model.contract_table(), where=f"{self.source} [model]")
        except InputContractError as exc:
            raise ConfigError(str(exc)) from None


def load_audit_config(
    source: str | Path | Mapping[str, Any] | AuditConfig, overrides: Sequence[str] = ()
) -> AuditConfig:
    """Read an audit config from a TOML path, a dict or an existing config.

    Raises
    ------
    ConfigError
        Missing file, invalid TOML or invalid content, naming file and key.
    """
    return AuditConfig.load(source, overrides)  # type: ignore[return-value]


def forensics_model_table(config: AuditConfig) -> dict[str, Any]:
    """The ``[model]`` table of a forensics config that examines the audited model.

    Forensics reads the same ``weights``, ``name``, ``options``, ``key`` and
    ``train_pipeline`` keys (the last one is its default base pipeline). It
    feeds the model views in [0, 1] at the data's size, so a contract that
    resizes, rescales or normalises the input is refused here rather than
    silently dropped.

    Returns
    -------
    dict
        TOML-ready table (absolute paths).

    Raises
    ------
    ConfigError
        The contract sets ``mean``/``std``, ``size`` or a ``value_range``
        other than [0, 1] (naming the keys).
    """
    mo = config.model
    contract = [k for k in ("mean", "std", "size") if getattr(mo, k) is not None]
    if [float(v) for v in mo.value_range] != [0.0, 1.0]:
        contract.append("value_range")
    if contract:
        raise ConfigError(
            f"{config.source} [model]: forensics feeds the model views in [0, 1] at the data's "
            f"size and does not read {', '.join(contract)}; give forensics a model that takes "
            "such views (e.g. one exported with its normalisation and resizing inside)"
        )
    table: dict[str, Any] = {"weights": mo.weights, "train_pipeline": mo.train_pipeline}
    if mo.name is not None:
        table["name"] = mo.name
    if mo.options:
        table["options"] = dict(mo.options)
    if mo.key is not None:
        table["key"] = mo.key
    return table
