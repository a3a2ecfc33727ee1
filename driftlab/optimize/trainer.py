"""Training of one (intensity, mode, fold) cell, with a learning curve on the test split.

The loop is plain PyTorch: Adam with one parameter group for the task model
(``lr``) and, in ``learned`` mode, one for the ISP parameters (``isp_lr``);
after every optimiser step the ISP parameters are projected into their
declared domains (:meth:`DifferentiablePipeline.project_`). The seed of
initialisation and shuffling depends on (seed, intensity, fold) only, so the
three modes of one fold see the same batches in the same order.

Every ``eval_every`` epochs (and after the last epoch) the network is
evaluated on the fold's test split: accuracy (classification) or
dataset-level IoU (segmentation), together with the mean training loss of the
epoch.
"""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from driftlab.camera import CameraParams
from driftlab.optimize.networks import IspTaskModel, PackedTaskModel, input_stats
from driftlab.pipeline import PipelineSpec, build_differentiable
from driftlab.synthesis.runner import derive_seed
from driftlab.train import evaluate, task_loss

__all__ = ["RESULT_COLUMNS", "CellJob", "CellOutcome", "run_cell"]

RESULT_COLUMNS = ("intensity", "mode", "fold", "epoch", "metric", "value")


@attrs.frozen
class CellJob:
    """Everything one cell needs, as plain picklable data.

    Attributes
    ----------
    intensity : float
        Light level of the mosaics.
    mode : {"frozen", "learned", "raw"}
    fold : int
    train_index, test_index : numpy.ndarray
        ``(n,)`` int64 item indices of the fold.
    raws : str
        ``.npy`` file of ``(N, H, W)`` float32 mosaics in [0, 1] at ``intensity``.
    targets : str
        ``.npy`` file of ``(N,)`` class indices or ``(N, H, W)`` masks.
    pipeline : PipelineSpec
        Base pipeline (ignored in raw mode).
    camera : CameraParams
    model_name : str
    model_options : dict
    output_channels : int
    task, metric : str
    training : dict
        The ``[training]`` section.
    device : str
    progress : bool
    """

    intensity: float
    mode: str
    fold: int
    train_index: np.ndarray = attrs.field(eq=False)
    test_index: np.ndarray = attrs.field(eq=False)
    raws: str
    targets: str
    pipeline: PipelineSpec
    camera: CameraParams
    model_name: str
    model_options: dict[str, Any]
    output_channels: int
    task: str
    metric: str
    training: dict[str, Any]
    device: str
    progress: bool


@attrs.frozen
class CellOutcome:
    """What a cell produced.

    Attributes
    ----------
    rows : pandas.DataFrame
        Tidy rows with :data:`RESULT_COLUMNS` (the task metric and
        ``train_loss`` at every evaluation epoch).
    state : dict
        The trained network's ``state_dict`` on the CPU.
    isp : dict
        ``{"initial": {...}, "final": {...}}`` ISP parameter values as
        nested lists keyed ``"stage.param"`` (empty in raw mode).
    """

    rows: pd.DataFrame
    state: dict[str, torch.Tensor]
    isp: dict[str, dict[str, Any]]


def _isp_values(pipeline) -> dict[str, Any]:
    return {
        k: p.detach().cpu().double().numpy().tolist()
        for k, p in pipeline.named_stage_parameters().items()
    }


def _targets(array: np.ndarray, task: str) -> torch.Tensor:
    dtype = torch.long if task == "classification" else torch.float32
    return torch.as_tensor(np.asarray(array), dtype=dtype)


def run_cell(job: CellJob) -> CellOutcome:
    """Train one task model (and, in learned mode, the ISP) and record its learning curve.

    Parameters
    ----------
    job : CellJob

    Returns
    -------
    CellOutcome

    Raises
    ------
    ValueError
        Empty train split or mismatched targets.
    """
    from driftlab.models.loading import get_task_model

    tr = job.training
    seed = derive_seed(tr["seed"], job.intensity, job.fold)
    torch.manual_seed(seed)
    raws = np.load(job.raws, mmap_mode="r")
    targets = np.load(job.targets)
    train_raw = np.ascontiguousarray(raws[job.train_index][:, None], dtype=np.float32)
    test_raw = np.ascontiguousarray(raws[job.test_index][:, None], dtype=np.float32)
    if len(train_raw) == 0:
        raise ValueError(f"cell {job.mode} fold {job.fold}: empty training split")
    in_channels = 4 if job.mode == "raw" else 3
    model = get_task_model(job.model_name).build(
        job.output_channels, in_channels=in_channels, **job.model_options
    )
    pipeline = None
    if job.mode == "raw":
        mean, std = input_stats(None, train_raw, job.camera.cfa)
        net = PackedTaskModel(
            job.camera.cfa, model, mean, std, segmentation=job.task == "segmentation"
        )
    else:
        pipeline = build_differentiable(job.pipeline, job.camera, seed=seed)
        mean, std = input_stats(pipeline, train_raw, job.camera.cfa)
        net = IspTaskModel(pipeline, model, mean, std, learn_isp=job.mode == "learned")
    initial = _isp_values(pipeline) if pipeline is not None else {}
    groups = [{"params": list(model.parameters()), "lr": tr["lr"]}]
    if job.mode == "learned":
        groups.append({"params": list(pipeline.parameters()), "lr": tr["isp_lr"]})
    optimiser = torch.optim.Adam(groups)
    device = torch.device(job.device)
    net.to(device)
    gen = torch.Generator().manual_seed(seed)
    x_all = torch.as_tensor(train_raw)
    y_all = _targets(targets[job.train_index], job.task)
    test_targets = targets[job.test_index]
    n, batch = len(x_all), int(tr["batch_size"])
    epochs, every = int(tr["epochs"]), int(tr["eval_every"])
    rows: list[tuple] = []
    label = f"{job.mode} @ {job.intensity:g} fold {job.fold}"
    steps = epochs * int(np.ceil(n / batch))
    with tqdm(total=steps, desc=label, disable=not job.progress, leave=False) as bar:
        for epoch in range(1, epochs + 1):
            net.train()
            order = torch.randperm(n, generator=gen)
            total, seen = 0.0, 0
            for start in range(0, n, batch):
                idx = order[start : start + batch]
                x, y = x_all[idx].to(device), y_all[idx].to(device)
                optimiser.zero_grad(set_to_none=True)
                loss = task_loss(job.task, net(x), y)
                loss.backward()
                optimiser.step()
                if job.mode == "learned":
                    pipeline.project_()
                total += float(loss.detach()) * len(idx)
                seen += len(idx)
                bar.update(1)
                bar.set_postfix(loss=f"{total / seen:.3f}")
            if epoch % every == 0 or epoch == epochs:
                value = evaluate(net, test_raw, test_targets, job.task, device=job.device)
                key = (job.intensity, job.mode, job.fold, epoch)
                rows.append((*key, job.metric, value))
                rows.append((*key, "train_loss", total / seen))
    net.cpu()
    isp = {"initial": initial, "final": _isp_values(pipeline)} if pipeline is not None else {}
    frame = pd.DataFrame(rows, columns=list(RESULT_COLUMNS))
    return CellOutcome(frame, net.state_dict(), isp)
