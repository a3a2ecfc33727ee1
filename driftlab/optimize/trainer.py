"""One optimisation cell: train through an ISP (frozen, learned, the paper's) or on packed raw.

The cell uses the one training loop (:func:`driftlab.train.fit`) with Adam
parameter groups per arm (see :mod:`driftlab.optimize.networks`):

- ``frozen``, ``frozen-bn``, ``paper-frozen``, ``raw``: the task model at
  ``lr``;
- ``learned``: the task model at ``lr`` and the ISP's unitless steps at
  ``isp_lr`` (:class:`~driftlab.optimize.scaled.WidthScaledIsp`: a fraction
  of each element's domain width per step, or parameter units with
  ``step_size = "absolute"``); after every optimiser step the ISP
  parameters are projected into their domains;
- ``paper``: the task model and every parameter of the paper's processor in
  one group at ``lr``, never projected (the paper's code).

The seed of initialisation and shuffling depends on (seed, intensity, fold)
only, so every arm of one fold starts its task model from the same weights
and sees the same batches in the same order: per-fold differences between
arms are paired.

Every ``eval_every`` epochs (and after the last epoch) the network is
evaluated on the fold's test split: accuracy (classification) or
dataset-level IoU (segmentation), together with the mean training loss of
the epoch. The ISP parameters of the learning arms are recorded after every
epoch (epoch 0: the start) for the trajectory table.
"""

from __future__ import annotations

import io
import json
from typing import Any

import attrs
import numpy as np
import torch
from torch import nn

from driftlab.camera import CameraParams
from driftlab.domains import ParamBounds
from driftlab.engine.cell import ArrayRef, CellContext, CellOutput
from driftlab.naming import derive_seed
from driftlab.optimize.config import LEARNING_MODES, MODES, PAPER_MODES
from driftlab.optimize.networks import IspTaskModel, PackedTaskModel, input_stats
from driftlab.optimize.paper import PaperIsp
from driftlab.optimize.scaled import WidthScaledIsp, learned_space
from driftlab.pipeline import DifferentiablePipeline, PipelineSpec, build_differentiable
from driftlab.registry import Registry
from driftlab.train import TrainConfig, evaluate, fit

__all__ = ["NORMALISATION_OF", "RESULT_COLUMNS", "OptimizeJob", "isp_values", "optimize_cell"]

RESULT_COLUMNS: dict[str, str] = {
    "intensity": "float",
    "mode": "str",
    "fold": "int",
    "epoch": "int",
    "metric": "str",
    "value": "float",
    "device": "str",
}


NORMALISATION_OF: dict[str, str] = {
    "frozen": "fixed",
    "learned": "fixed",
    "frozen-bn": "batch",
    "paper": "batch",
    "paper-frozen": "initial-batch",
}
"""Normalisation between ISP and task model of each ISP arm."""


@attrs.frozen
class OptimizeJob:
    """Everything one (intensity, mode, fold) cell needs, as picklable data.

    Attributes
    ----------
    intensity : float
    mode : str
        One of :data:`driftlab.optimize.config.MODES`.
    fold : int
    train_index, test_index : numpy.ndarray
        ``(n,)`` int64 item indices of the fold.
    raws : ArrayRef
        ``(N, H, W)`` float32 mosaics in [0, 1] at ``intensity`` (already
        rendered for the mis-calibrated camera when there is one).
    targets : ArrayRef
        ``(N,)`` class indices or ``(N, H, W)`` masks.
    pipeline : PipelineSpec
    camera : CameraParams
        The calibrated profile the ISP is built with.
    model_name : str
    model_options : dict
    output_channels : int
    task, metric : str
    training : dict
        epochs, batch_size, lr, isp_lr, eval_every, step_size.
    seed : int
    registry : Registry
    bounds : dict of str to ParamBounds
        Element-wise domains of the learnable ISP parameters at ``intensity``
        (``learned`` mode).
    """

    intensity: float
    mode: str
    fold: int
    train_index: np.ndarray = attrs.field(eq=False)
    test_index: np.ndarray = attrs.field(eq=False)
    raws: ArrayRef
    targets: ArrayRef
    pipeline: PipelineSpec
    camera: CameraParams
    model_name: str
    model_options: dict[str, Any]
    output_channels: int
    task: str
    metric: str
    training: dict[str, Any]
    seed: int
    registry: Registry
    bounds: dict[str, ParamBounds] = attrs.field(factory=dict, eq=False)


def isp_values(isp: nn.Module) -> dict[str, torch.Tensor]:
    """Current ISP parameters keyed ``"stage.param"``: a frozen pipeline's own parameters,
    or ``named_values()`` of a learned (:class:`WidthScaledIsp`) or paper ISP."""
    if isinstance(isp, DifferentiablePipeline):
        return dict(isp.named_stage_parameters())
    return dict(isp.named_values())


def _plain(values: dict[str, torch.Tensor]) -> dict[str, Any]:
    return {k: v.detach().cpu().double().numpy().tolist() for k, v in values.items()}


def _network(
    job: OptimizeJob, model: nn.Module, train_raw: np.ndarray, seed: int
) -> tuple[nn.Module, nn.Module | None]:
    """The arm's network and its ISP (None for raw)."""
    if job.mode == "raw":
        mean, std = input_stats(None, train_raw, job.camera.cfa)
        net = PackedTaskModel(
            job.camera.cfa, model, mean, std, segmentation=job.task == "segmentation"
        )
        return net, None
    pipeline = build_differentiable(job.pipeline, job.camera, job.registry, seed=seed)
    isp: nn.Module
    if job.mode == "learned":
        space = learned_space(pipeline, job.bounds)
        isp = WidthScaledIsp(pipeline, space, scale=job.training["step_size"])
    elif job.mode in PAPER_MODES:
        isp = PaperIsp(pipeline.resolved)
    else:
        isp = pipeline
    normalisation = NORMALISATION_OF[job.mode]
    mean = std = None
    if normalisation == "fixed":
        mean, std = input_stats(isp, train_raw, job.camera.cfa)
    net = IspTaskModel(
        isp,
        model,
        normalisation=normalisation,
        mean=mean,
        std=std,
        learn_isp=job.mode in LEARNING_MODES,
    )
    return net, isp


def optimize_cell(job: OptimizeJob, ctx: CellContext) -> CellOutput:
    """Train one network (and, in the learning arms, the ISP) and record its learning curve.

    Returns
    -------
    CellOutput
        Rows with :data:`RESULT_COLUMNS` (the task metric and ``train_loss``
        at every evaluation epoch); files ``pt`` (the network's state dict)
        and, for the ISP arms, ``isp.json``: ``intensity``, ``mode``,
        ``fold``, ``initial`` and ``final`` parameters and, for the learning
        arms, ``trajectory`` (``[{"epoch": e, "values": {...}}]`` for epochs
        0..epochs).

    Raises
    ------
    ValueError
        Empty training split or an unknown mode.
    driftlab.train.TrainingDiverged
        NaN or infinite loss or weights.
    """
    if job.mode not in MODES:
        raise ValueError(f"cell {job.mode} fold {job.fold}: unknown mode {job.mode!r}")
    tr = job.training
    seed = derive_seed(job.seed, job.intensity, job.fold)
    torch.manual_seed(seed)
    raws = ctx.load_array(job.raws)
    targets = ctx.load_array(job.targets)
    train_raw = np.ascontiguousarray(raws[job.train_index][:, None], dtype=np.float32)
    test_raw = np.ascontiguousarray(raws[job.test_index][:, None], dtype=np.float32)
    if len(train_raw) == 0:
        raise ValueError(f"cell {job.mode} fold {job.fold}: empty training split")
    in_channels = 4 if job.mode == "raw" else 3
    model = job.registry.get("task_models", job.model_name).build(
        job.output_channels, in_channels=in_channels, **job.model_options
    )
    net, isp = _network(job, model, train_raw, seed)
    learning = job.mode in LEARNING_MODES
    initial = _plain(isp_values(isp)) if isp is not None else {}
    trajectory = [{"epoch": 0, "values": initial}] if learning else []
    if job.mode == "learned":
        groups: list[dict[str, Any]] = [
            {"params": list(model.parameters()), "lr": tr["lr"]},
            {"params": net.isp_parameters(), "lr": tr["isp_lr"]},
        ]
    elif job.mode == "paper":
        groups = [{"params": [*model.parameters(), *net.isp_parameters()], "lr": tr["lr"]}]
    else:
        groups = [{"params": list(model.parameters()), "lr": tr["lr"]}]
    rows: list[dict[str, Any]] = []
    test_targets = targets[job.test_index]
    every, epochs = int(tr["eval_every"]), int(tr["epochs"])

    def after_epoch(epoch: int, loss: float) -> None:
        if learning:
            trajectory.append({"epoch": epoch, "values": _plain(isp_values(isp))})
        if epoch % every and epoch != epochs:
            return
        value = evaluate(net, test_raw, test_targets, job.task, device=ctx.device)
        net.train()
        base = {"intensity": job.intensity, "mode": job.mode, "fold": job.fold, "epoch": epoch}
        rows.append({**base, "metric": job.metric, "value": value, "device": ctx.device})
        rows.append({**base, "metric": "train_loss", "value": loss, "device": ctx.device})

    fit(
        net,
        train_raw,
        targets[job.train_index],
        job.task,
        TrainConfig(
            epochs=epochs, batch_size=tr["batch_size"], lr=tr["lr"], seed=seed, device=ctx.device
        ),
        param_groups=groups,
        after_step=isp.project_ if job.mode == "learned" else None,
        after_epoch=after_epoch,
        progress=ctx.progress,
        description=f"cell {job.mode} @ {job.intensity:g} fold {job.fold}",
    )
    net.cpu()
    if isinstance(isp, WidthScaledIsp):
        isp.write_back_()
    buffer = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in net.state_dict().items()}, buffer)
    files = {"pt": buffer.getvalue()}
    if isp is not None:
        record: dict[str, Any] = {
            "intensity": job.intensity,
            "mode": job.mode,
            "fold": job.fold,
            "initial": initial,
            "final": _plain(isp_values(isp)),
        }
        if learning:
            record["trajectory"] = trajectory
        files["isp.json"] = json.dumps(record, sort_keys=True, indent=1).encode()
    return CellOutput(rows=rows, files=files)
