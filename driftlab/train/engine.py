"""Seeded, deterministic training and evaluation loops on in-memory views.

Plain PyTorch: Adam, the paper's losses (cross-entropy; Dice + BCE), optional
flip and 90-degree-rotation augmentation, tqdm progress bars with loss and
metric. Every random choice (initialisation, shuffling, augmentation) comes
from generators seeded by :attr:`TrainConfig.seed`, so two runs with the same
seed on CPU give identical weights.
"""

from __future__ import annotations

import attrs
import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from driftlab.train.losses import task_loss
from driftlab.train.metrics import accuracy, iou, task_metric_name

__all__ = ["FitResult", "TrainConfig", "evaluate", "fit", "predict"]


def _positive(instance: object, attribute: attrs.Attribute, value: float) -> None:
    if not value > 0:
        raise ValueError(f"training.{attribute.name}: expected a positive number, got {value!r}")


@attrs.frozen
class TrainConfig:
    """How a task model is trained.

    Parameters
    ----------
    epochs : int
        Passes over the training views.
    batch_size : int
        Views per optimiser step.
    lr : float
        Adam learning rate.
    seed : int
        Seed of initialisation, shuffling and augmentation.
    device : str
        Torch device (``cpu``, ``cuda``, ``cuda:1``).
    augment : bool
        Random horizontal/vertical flips and, for square views, 90-degree
        rotations of each batch.
    progress : bool
        Show a tqdm progress bar.
    """

    epochs: int = attrs.field(default=5, validator=_positive)
    batch_size: int = attrs.field(default=64, validator=_positive)
    lr: float = attrs.field(default=1e-3, validator=_positive)
    seed: int = 0
    device: str = "cpu"
    augment: bool = False
    progress: bool = True


@attrs.frozen
class FitResult:
    """Per-epoch mean training loss and metric."""

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
    out_np, y_np = out.detach().cpu().numpy(), y.detach().cpu().numpy()
    return accuracy(out_np, y_np) if task == "classification" else iou(out_np, y_np)


def fit(
    model: nn.Module,
    views: np.ndarray,
    targets: np.ndarray,
    task: str,
    config: TrainConfig,
    *,
    description: str = "train",
) -> FitResult:
    """Train ``model`` in place on views.

    Parameters
    ----------
    model : nn.Module
        Maps ``(B, 3, H, W)`` views to ``(B, C)`` (classification) or
        ``(B, 1 or C, H, W)`` (segmentation) logits; moved to ``config.device``.
    views : numpy.ndarray
        ``(N, 3, H, W)`` float32 in [0, 1].
    targets : numpy.ndarray
        ``(N,)`` class indices or ``(N, H, W)`` {0, 1} masks.
    task : {"classification", "segmentation"}
    config : TrainConfig
    description : str
        Progress-bar label.

    Returns
    -------
    FitResult

    Raises
    ------
    ValueError
        Mismatched lengths or empty training set.
    """
    n = len(views)
    if n == 0 or len(targets) != n:
        raise ValueError(
            f"fit: {n} views but {len(targets)} targets; need the same, non-zero count"
        )
    task_metric_name(task)
    device = torch.device(config.device)
    gen = torch.Generator().manual_seed(config.seed)
    model.to(device).train()
    optimiser = torch.optim.Adam(model.parameters(), lr=config.lr)
    x_all = torch.as_tensor(np.asarray(views, dtype=np.float32))
    y_all = _targets_tensor(targets, task)
    losses, metrics = [], []
    steps = config.epochs * int(np.ceil(n / config.batch_size))
    with tqdm(total=steps, desc=description, disable=not config.progress, leave=False) as bar:
        for _ in range(config.epochs):
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
                loss.backward()
                optimiser.step()
                k = len(idx)
                epoch_loss += float(loss.detach()) * k
                epoch_metric += _batch_metric(task, out, y) * k
                seen += k
                bar.update(1)
                bar.set_postfix(
                    loss=f"{epoch_loss / seen:.3f}", metric=f"{epoch_metric / seen:.3f}"
                )
            losses.append(epoch_loss / seen)
            metrics.append(epoch_metric / seen)
    model.eval()
    return FitResult(tuple(losses), tuple(metrics))


@torch.no_grad()
def predict(
    model: nn.Module, views: np.ndarray, *, batch_size: int = 128, device: str = "cpu"
) -> np.ndarray:
    """Model outputs for views, in eval mode.

    Parameters
    ----------
    views : numpy.ndarray
        ``(N, 3, H, W)`` float32 in [0, 1].

    Returns
    -------
    numpy.ndarray
        ``(N, ...)`` float32 logits on the CPU.
    """
    model.to(device).eval()
    outs = []
    for start in range(0, len(views), batch_size):
        x = torch.as_tensor(np.asarray(views[start : start + batch_size], dtype=np.float32))
        outs.append(model(x.to(device)).float().cpu().numpy())
    return np.concatenate(outs) if outs else np.zeros((0,), np.float32)


def evaluate(
    model: nn.Module,
    views: np.ndarray,
    targets: np.ndarray,
    task: str,
    *,
    batch_size: int = 128,
    device: str = "cpu",
) -> float:
    """Accuracy (classification) or dataset-level IoU (segmentation) of ``model`` on views.

    Parameters
    ----------
    views : numpy.ndarray
        ``(N, 3, H, W)`` float32 in [0, 1].
    targets : numpy.ndarray
        ``(N,)`` class indices or ``(N, H, W)`` masks.

    Returns
    -------
    float
        In [0, 1].
    """
    logits = predict(model, views, batch_size=batch_size, device=device)
    if task == "classification":
        return accuracy(logits, np.asarray(targets))
    return iou(logits, np.asarray(targets))
