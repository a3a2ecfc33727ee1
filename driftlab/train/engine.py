"""The one training loop of driftlab, and seeded evaluation on in-memory inputs.

Plain PyTorch, used by drift synthesis (a task model on views) and drift
optimisation (an ISP + task model on raw mosaics) alike: Adam over one or
more parameter groups, the paper's losses (cross-entropy; Dice + BCE),
optional flip / 90-degree-rotation augmentation, an optional hook after
every optimiser step (e.g. projecting ISP parameters into their domains) and
after every epoch (e.g. a learning curve on the test split). Every random
choice (shuffling, augmentation) comes from a generator seeded by
:attr:`TrainConfig.seed`; initialisation is the caller's, under its own seed.

A run that diverges (a non-finite loss or non-finite weights, e.g. with
``lr = inf``) stops with :class:`TrainingDiverged` instead of reporting
chance-level numbers.

Progress is reported through a callback ``progress(done, total, text)``
(the experiment engine forwards it to the driver's display); nothing is
drawn here.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import attrs
import numpy as np
import torch
from torch import nn

from driftlab.errors import DriftlabError
from driftlab.train.losses import task_loss
from driftlab.train.metrics import accuracy, iou, task_metric_name

__all__ = [
    "FitResult",
    "TrainConfig",
    "TrainingDiverged",
    "evaluate",
    "fit",
    "item_outcomes",
    "metric_from_outcomes",
    "predict",
]

ProgressFn = Callable[[int, int, str], None]


class TrainingDiverged(DriftlabError, RuntimeError):
    """The loss or the weights became NaN or infinite during training."""


SCHEDULES = ("constant", "cosine")


def _schedule(instance: object, attribute: attrs.Attribute, value: str) -> None:
    if value not in SCHEDULES:
        raise ValueError(f"training.schedule: expected one of {SCHEDULES}, got {value!r}")


def _positive(instance: object, attribute: attrs.Attribute, value: float) -> None:
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(
            f"training.{attribute.name}: expected a positive finite number, got {value!r}"
        )


@attrs.frozen
class TrainConfig:
    """How a task model is trained.

    Parameters
    ----------
    epochs : int
        Passes over the training inputs.
    batch_size : int
        Inputs per optimiser step.
    lr : float
        Adam learning rate (of parameter groups that do not set their own).
    seed : int
        Seed of shuffling and augmentation.
    device : str
        Torch device (``cpu``, ``cuda``, ``cuda:1``).
    augment : bool
        Random horizontal/vertical flips and, for square inputs, 90-degree
        rotations of each batch (targets follow for segmentation).
    schedule : {"constant", "cosine"}
        Learning rate over the run: constant, or cosine annealing from ``lr``
        to 0 over all optimiser steps (Loshchilov and Hutter, "SGDR",
        ICLR 2017; torch's ``CosineAnnealingLR`` without restarts), which
        ends training on a settled model instead of the last noisy step.
    """

    epochs: int = attrs.field(default=5, validator=_positive)
    batch_size: int = attrs.field(default=64, validator=_positive)
    lr: float = attrs.field(default=1e-3, validator=_positive)
    seed: int = 0
    device: str = "cpu"
    augment: bool = False
    schedule: str = attrs.field(default="constant", validator=_schedule)


@attrs.frozen
class FitResult:
    """Per-epoch mean training loss and training metric."""

    losses: tuple[float, ...]
    metrics: tuple[float, ...]


def _augment(x: torch.Tensor, y: torch.Tensor, task: str, gen: torch.Generator):
    """Same random flip/rotation for the whole batch (targets follow for segmentation)."""
    flips = torch.randint(0, 2, (3,), generator=gen).tolist()
    dims = []
    if flips[0]:
        dims.append(-1)
    if flips[1]:
        dims.append(-2)
    if dims:
        x = x.flip(dims)
        if task == "segmentation":
            y = y.flip(dims)
    if flips[2] and x.shape[-1] == x.shape[-2]:
        x = x.rot90(1, dims=(-2, -1))
        if task == "segmentation":
            y = y.rot90(1, dims=(-2, -1))
    return x, y


def _targets_tensor(targets: np.ndarray, task: str) -> torch.Tensor:
    if task == "classification":
        return torch.as_tensor(np.asarray(targets), dtype=torch.long)
    return torch.as_tensor(np.asarray(targets), dtype=torch.float32)


def _batch_metric(task: str, out: torch.Tensor, y: torch.Tensor) -> float:
    out_np, y_np = out.detach().float().cpu().numpy(), y.detach().cpu().numpy()
    return accuracy(out_np, y_np) if task == "classification" else iou(out_np, y_np)


def _check_finite_weights(model: nn.Module, where: str) -> None:
    for name, param in model.named_parameters():
        if not torch.isfinite(param.detach()).all():
            raise TrainingDiverged(
                f"{where}: parameter {name!r} became NaN or infinite; lower [training].lr "
                "(or the ISP learning rate)"
            )


def fit(
    model: nn.Module,
    inputs: np.ndarray | torch.Tensor,
    targets: np.ndarray,
    task: str,
    config: TrainConfig,
    *,
    param_groups: Sequence[dict[str, Any]] | None = None,
    after_step: Callable[[], None] | None = None,
    after_epoch: Callable[[int, float], None] | None = None,
    progress: ProgressFn | None = None,
    description: str = "train",
) -> FitResult:
    """Train ``model`` in place.

    Parameters
    ----------
    model : nn.Module
        Maps a batch of ``inputs`` (``(B, C, H, W)`` float32) to ``(B, K)``
        (classification) or ``(B, 1 or K, H, W)`` (segmentation) logits;
        moved to ``config.device``.
    inputs : numpy.ndarray or torch.Tensor
        ``(N, C, H, W)`` float32: views in [0, 1] (``C = 3``) or mosaics
        (``C = 1``).
    targets : numpy.ndarray
        ``(N,)`` class indices or ``(N, H, W)`` {0, 1} masks.
    task : {"classification", "segmentation"}
    config : TrainConfig
    param_groups : sequence of dict, optional
        Adam parameter groups (``{"params": [...], "lr": ...}``); default
        every parameter of ``model`` at ``config.lr``.
    after_step : callable, optional
        Called after every optimiser step (e.g. a projection).
    after_epoch : callable, optional
        ``after_epoch(epoch, mean_loss)`` after every epoch (1-based).
    progress : callable, optional
        ``progress(done_steps, total_steps, text)``.
    description : str
        Names the run in error messages.

    Returns
    -------
    FitResult

    Raises
    ------
    ValueError
        Mismatched lengths or empty training set.
    TrainingDiverged
        The loss or a weight became NaN or infinite.
    """
    n = len(inputs)
    if n == 0 or len(targets) != n:
        raise ValueError(
            f"fit: {n} inputs but {len(targets)} targets; need the same, non-zero count"
        )
    task_metric_name(task)
    device = torch.device(config.device)
    gen = torch.Generator().manual_seed(config.seed)
    model.to(device).train()
    groups = list(param_groups) if param_groups is not None else [{"params": model.parameters()}]
    optimiser = torch.optim.Adam(groups, lr=config.lr)
    x_all = torch.as_tensor(np.asarray(inputs, dtype=np.float32))
    y_all = _targets_tensor(targets, task)
    losses, metrics = [], []
    per_epoch = int(np.ceil(n / config.batch_size))
    total = config.epochs * per_epoch
    scheduler = None
    if config.schedule == "cosine":
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=total)
    done = 0
    for epoch in range(1, config.epochs + 1):
        model.train()
        order = torch.randperm(n, generator=gen)
        epoch_loss, epoch_metric, seen = 0.0, 0.0, 0
        for start in range(0, n, config.batch_size):
            idx = order[start : start + config.batch_size]
            x, y = x_all[idx], y_all[idx]
            if config.augment:
                x, y = _augment(x, y, task, gen)
            x, y = x.to(device), y.to(device)
            optimiser.zero_grad(set_to_none=True)
            out = model(x)
            loss = task_loss(task, out, y)
            value = float(loss.detach())
            if not math.isfinite(value):
                raise TrainingDiverged(
                    f"{description}: loss became {value} at epoch {epoch}, step "
                    f"{start // config.batch_size + 1}; lower [training].lr"
                )
            loss.backward()
            optimiser.step()
            if scheduler is not None:
                scheduler.step()
            if after_step is not None:
                after_step()
            k = len(idx)
            epoch_loss += value * k
            epoch_metric += _batch_metric(task, out, y) * k
            seen += k
            done += 1
            if progress is not None:
                progress(done, total, f"epoch {epoch}/{config.epochs} loss {epoch_loss / seen:.3f}")
        _check_finite_weights(model, description)
        losses.append(epoch_loss / seen)
        metrics.append(epoch_metric / seen)
        if after_epoch is not None:
            after_epoch(epoch, losses[-1])
    model.eval()
    return FitResult(tuple(losses), tuple(metrics))


@torch.no_grad()
def predict(
    model: nn.Module,
    inputs: np.ndarray | torch.Tensor,
    *,
    batch_size: int = 128,
    device: str = "cpu",
) -> np.ndarray:
    """Model outputs in eval mode.

    Parameters
    ----------
    inputs : numpy.ndarray or torch.Tensor
        ``(N, C, H, W)`` float32.

    Returns
    -------
    numpy.ndarray
        ``(N, ...)`` float32 logits on the CPU.
    """
    model.to(device).eval()
    outs = []
    for start in range(0, len(inputs), batch_size):
        x = torch.as_tensor(np.asarray(inputs[start : start + batch_size], dtype=np.float32))
        outs.append(model(x.to(device)).float().cpu().numpy())
    return np.concatenate(outs) if outs else np.zeros((0,), np.float32)


def item_outcomes(logits: np.ndarray, targets: np.ndarray, task: str) -> dict[str, np.ndarray]:
    """Per-item outcomes from which any task metric (and its bootstrap) is computed.

    Parameters
    ----------
    logits : numpy.ndarray
        ``(N, K)`` (classification) or ``(N, C, H, W)`` (segmentation).
    targets : numpy.ndarray
        ``(N,)`` class indices or ``(N, H, W)`` masks.
    task : {"classification", "segmentation"}

    Returns
    -------
    dict
        Classification: ``{"pred": (N,) int64}`` (top-1 class). Segmentation:
        ``{"inter": (N,) int64, "union": (N,) int64}`` foreground pixel counts
        (sigmoid > 0.5 for one channel, argmax == 1 otherwise).
    """
    logits = np.asarray(logits)
    if task == "classification":
        return {"pred": logits.argmax(axis=1).astype(np.int64)}
    pred = logits[:, 0] > 0 if logits.shape[1] == 1 else logits.argmax(axis=1) == 1
    truth = np.asarray(targets) > 0
    axes = tuple(range(1, pred.ndim))
    return {
        "inter": np.logical_and(pred, truth).sum(axis=axes).astype(np.int64),
        "union": np.logical_or(pred, truth).sum(axis=axes).astype(np.int64),
    }


def metric_from_outcomes(outcomes: dict[str, np.ndarray], targets: np.ndarray, task: str) -> float:
    """Accuracy (classification) or dataset-level IoU (segmentation) from :func:`item_outcomes`.

    Returns
    -------
    float
        In [0, 1]; accuracy of no item is NaN; IoU with no foreground
        anywhere is 1.0.
    """
    if task == "classification":
        pred = np.asarray(outcomes["pred"])
        return float(np.mean(pred == np.asarray(targets))) if len(pred) else float("nan")
    union = int(np.sum(outcomes["union"]))
    return 1.0 if union == 0 else float(np.sum(outcomes["inter"]) / union)


def evaluate(
    model: nn.Module,
    inputs: np.ndarray | torch.Tensor,
    targets: np.ndarray,
    task: str,
    *,
    batch_size: int = 128,
    device: str = "cpu",
) -> float:
    """Accuracy (classification) or dataset-level IoU (segmentation) of ``model``.

    Parameters
    ----------
    inputs : numpy.ndarray or torch.Tensor
        ``(N, C, H, W)`` float32.
    targets : numpy.ndarray
        ``(N,)`` class indices or ``(N, H, W)`` masks.

    Returns
    -------
    float
        In [0, 1].
    """
    logits = predict(model, inputs, batch_size=batch_size, device=device)
    if task == "classification":
        return accuracy(logits, np.asarray(targets))
    return iou(logits, np.asarray(targets))
