"""One optimisation cell: train through a frozen or learned ISP, or on packed raw.

The cell uses the one training loop (:func:`driftlab.train.fit`): Adam with
one parameter group for the task model (``lr``) and, in ``learned`` mode,
one for the ISP parameters (``isp_lr``); after every optimiser step the ISP
parameters are projected into their declared domains
(:meth:`DifferentiablePipeline.project_`). The seed of initialisation and
shuffling depends on (seed, intensity, fold) only, so the three modes of one
fold see the same batches in the same order.

Every ``eval_every`` epochs (and after the last epoch) the network is
evaluated on the fold's test split: accuracy (classification) or
dataset-level IoU (segmentation), together with the mean training loss of
the epoch.
"""

from __future__ import annotations

import io
import json
from typing import Any

import attrs
import numpy as np
import torch

from driftlab.camera import CameraParams
from driftlab.engine.cell import ArrayRef, CellContext, CellOutput
from driftlab.naming import derive_seed
from driftlab.optimize.networks import IspTaskModel, PackedTaskModel, input_stats
from driftlab.pipeline import PipelineSpec, build_differentiable
from driftlab.registry import Registry
from driftlab.train import TrainConfig, evaluate, fit

__all__ = ["RESULT_COLUMNS", "OptimizeJob", "optimize_cell"]

RESULT_COLUMNS: dict[str, str] = {
    "intensity": "float",
    "mode": "str",
    "fold": "int",
    "epoch": "int",
    "metric": "str",
    "value": "float",
    "device": "str",
}


@attrs.frozen
class OptimizeJob:
    """Everything one (intensity, mode, fold) cell needs, as picklable data.

    Attributes
    ----------
    intensity : float
    mode : {"frozen", "learned", "raw"}
    fold : int
    train_index, test_index : numpy.ndarray
        ``(n,)`` int64 item indices of the fold.
    raws : ArrayRef
        ``(N, H, W)`` float32 mosaics in [0, 1] at ``intensity``.
    targets : ArrayRef
        ``(N,)`` class indices or ``(N, H, W)`` masks.
    pipeline : PipelineSpec
    camera : CameraParams
    model_name : str
    model_options : dict
    output_channels : int
    task, metric : str
    training : dict
        epochs, batch_size, lr, isp_lr, eval_every.
    seed : int
    registry : Registry
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


def _isp_values(pipeline) -> dict[str, Any]:
    return {
        k: p.detach().cpu().double().numpy().tolist()
        for k, p in pipeline.named_stage_parameters().items()
    }


def optimize_cell(job: OptimizeJob, ctx: CellContext) -> CellOutput:
    """Train one network (and, in learned mode, the ISP) and record its learning curve.

    Returns
    -------
    CellOutput
        Rows with :data:`RESULT_COLUMNS` (the task metric and ``train_loss``
        at every evaluation epoch); files ``pt`` (the network's state dict)
        and, for the ISP arms, ``isp.json`` (initial and final parameters).

    Raises
    ------
    ValueError
        Empty training split.
    driftlab.train.TrainingDiverged
        NaN or infinite loss or weights.
    """
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
    pipeline = None
    if job.mode == "raw":
        mean, std = input_stats(None, train_raw, job.camera.cfa)
        net = PackedTaskModel(
            job.camera.cfa, model, mean, std, segmentation=job.task == "segmentation"
        )
    else:
        pipeline = build_differentiable(job.pipeline, job.camera, job.registry, seed=seed)
        mean, std = input_stats(pipeline, train_raw, job.camera.cfa)
        net = IspTaskModel(pipeline, model, mean, std, learn_isp=job.mode == "learned")
    initial = _isp_values(pipeline) if pipeline is not None else {}
    groups: list[dict[str, Any]] = [{"params": list(model.parameters()), "lr": tr["lr"]}]
    if job.mode == "learned":
        groups.append({"params": list(pipeline.parameters()), "lr": tr["isp_lr"]})
    rows: list[dict[str, Any]] = []
    test_targets = targets[job.test_index]
    every, epochs = int(tr["eval_every"]), int(tr["epochs"])

    def after_epoch(epoch: int, loss: float) -> None:
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
        after_step=pipeline.project_ if job.mode == "learned" else None,
        after_epoch=after_epoch,
        progress=ctx.progress,
        description=f"cell {job.mode} @ {job.intensity:g} fold {job.fold}",
    )
    net.cpu()
    buffer = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in net.state_dict().items()}, buffer)
    files = {"pt": buffer.getvalue()}
    if pipeline is not None:
        isp = {"initial": initial, "final": _isp_values(pipeline)}
        files["isp.json"] = json.dumps(isp, sort_keys=True, indent=1).encode()
    return CellOutput(rows=rows, files=files)
