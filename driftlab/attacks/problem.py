"""What an attack works on: a frozen task model, a pipeline, raw items and targets."""

from __future__ import annotations

from collections.abc import Mapping

import attrs
import numpy as np
import torch
from torch import nn

from driftlab.attacks.similarity import mse, ssim
from driftlab.attacks.space import ParameterSpace, resolved_with_values
from driftlab.pipeline import DifferentiablePipeline, ResolvedPipeline
from driftlab.pipeline.static import StaticPipeline
from driftlab.train.losses import task_loss
from driftlab.train.metrics import accuracy, iou, task_metric_name

__all__ = ["AttackProblem", "freeze_model"]


def freeze_model(model: nn.Module) -> nn.Module:
    """Put ``model`` in eval mode (batch-norm statistics fixed) with
    ``requires_grad=False`` on every parameter; returns the same module."""
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


@attrs.define
class AttackProblem:
    """A frozen task model attacked through the parameters of one pipeline.

    Parameters
    ----------
    model : nn.Module
        Maps ``(B, 3, H, W)`` views in [0, 1] to logits; frozen on creation
        (see :func:`freeze_model`).
    resolved : ResolvedPipeline
        The base pipeline, resolved for the data's camera.
    raw : numpy.ndarray
        ``(N, H, W)`` float32 Bayer mosaics in [0, 1], H and W even.
    targets : numpy.ndarray
        ``(N,)`` class indices or ``(N, H, W)`` {0, 1} masks.
    task : {"classification", "segmentation"}
    batch_size : int
        Items per forward pass when evaluating.

    Raises
    ------
    ValueError
        Mismatched lengths, an empty item set or an unknown task.
    """

    model: nn.Module
    resolved: ResolvedPipeline
    raw: np.ndarray = attrs.field(eq=False)
    targets: np.ndarray = attrs.field(eq=False)
    task: str
    batch_size: int = 64

    def __attrs_post_init__(self) -> None:
        task_metric_name(self.task)
        self.raw = np.asarray(self.raw, dtype=np.float32)
        if self.raw.ndim != 3 or len(self.raw) == 0 or len(self.raw) != len(self.targets):
            raise ValueError(
                f"attack problem: expected (N, H, W) raw mosaics and N targets with N > 0, got "
                f"{self.raw.shape} and {len(self.targets)} targets"
            )
        freeze_model(self.model)

    def subset(self, index: np.ndarray | list[int]) -> AttackProblem:
        """The same model and pipeline on the items at ``index`` (in that order).

        Parameters
        ----------
        index : array-like of int
            Positions into :attr:`raw` / :attr:`targets`; at least one.

        Raises
        ------
        ValueError
            Empty ``index`` or a position out of range.
        """
        index = np.asarray(index, dtype=np.int64)
        if index.ndim != 1 or len(index) == 0 or index.min() < 0 or index.max() >= len(self.raw):
            raise ValueError(
                f"attack problem subset: expected 1..{len(self.raw)} positions in "
                f"[0, {len(self.raw)}), got {index.tolist()}"
            )
        return AttackProblem(
            self.model,
            self.resolved,
            self.raw[index],
            np.asarray(self.targets)[index],
            self.task,
            self.batch_size,
        )

    @property
    def differentiable(self) -> bool:
        """Whether every stage of the pipeline has a differentiable form."""
        return all(s.spec.differentiable is not None for s in self.resolved.stages)

    def space(self) -> ParameterSpace:
        """Attackable parameters: the ``nn.Parameter`` ones for a differentiable
        pipeline, every declared parameter of a static-only one."""
        return ParameterSpace.from_resolved(self.resolved, differentiable_only=self.differentiable)

    def pipeline(self) -> DifferentiablePipeline:
        """A fresh differentiable form (float32) with every parameter frozen."""
        pipe = DifferentiablePipeline(self.resolved)
        for p in pipe.parameters():
            p.requires_grad_(False)
        return pipe

    def raw_tensor(self) -> torch.Tensor:
        """``(N, 1, H, W)`` float32 tensor of the raw mosaics."""
        return torch.from_numpy(self.raw)[:, None]

    def targets_tensor(self) -> torch.Tensor:
        dtype = torch.long if self.task == "classification" else torch.float32
        return torch.as_tensor(np.asarray(self.targets), dtype=dtype)

    @torch.no_grad()
    def render(self, values: Mapping[str, np.ndarray] | None = None) -> np.ndarray:
        """Views of every item with some parameters replaced.

        Parameters
        ----------
        values : mapping, optional
            ``{"stage.param": array}``; others keep their resolved values.

        Returns
        -------
        numpy.ndarray
            ``(N, 3, H, W)`` float32 views.
        """
        values = dict(values or {})
        if self.differentiable:
            pipe = self.pipeline()
            params = pipe.named_stage_parameters()
            for key, value in values.items():
                params[key].copy_(torch.as_tensor(np.asarray(value), dtype=params[key].dtype))
            outs = [
                pipe(self.raw_tensor()[i : i + self.batch_size]).numpy()
                for i in range(0, len(self.raw), self.batch_size)
            ]
            return np.concatenate(outs).astype(np.float32)
        static = StaticPipeline(resolved_with_values(self.resolved, values))
        return np.stack([static(r) for r in self.raw]).astype(np.float32)

    @torch.no_grad()
    def logits(self, views: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Task-model outputs for ``(N, 3, H, W)`` views, in batches."""
        x = torch.as_tensor(np.asarray(views, dtype=np.float32))
        return torch.cat(
            [self.model(x[i : i + self.batch_size]) for i in range(0, len(x), self.batch_size)]
        )

    def metric_of_logits(self, logits: torch.Tensor) -> float:
        """Accuracy or dataset-level IoU of logits against the targets, in [0, 1]."""
        out = logits.detach().cpu().numpy()
        y = np.asarray(self.targets)
        return accuracy(out, y) if self.task == "classification" else iou(out, y)

    def scores_of_logits(self, logits: torch.Tensor) -> np.ndarray:
        """Per-item outcomes behind the metric, for intervals over items.

        Returns
        -------
        numpy.ndarray
            Classification: ``(N,)`` float64, 1.0 where the top-1 prediction
            is the target, else 0.0 (accuracy is their mean). Segmentation:
            ``(N, 2)`` int64 foreground intersection and union pixel counts
            per item, with the thresholds of :func:`driftlab.train.metrics.iou`
            (dataset IoU is ``sum(I) / sum(U)``, 1.0 when ``sum(U) == 0``).
        """
        out = logits.detach().cpu().numpy()
        y = np.asarray(self.targets)
        if self.task == "classification":
            return (out.argmax(axis=1) == y).astype(np.float64)
        pred = out[:, 0] > 0 if out.shape[1] == 1 else out.argmax(axis=1) == 1
        truth = y > 0
        inter = np.logical_and(pred, truth).reshape(len(y), -1).sum(axis=1)
        union = np.logical_or(pred, truth).reshape(len(y), -1).sum(axis=1)
        return np.stack([inter, union], axis=1).astype(np.int64)

    def scores(self, values: Mapping[str, np.ndarray] | None = None) -> np.ndarray:
        """Per-item outcomes (see :meth:`scores_of_logits`) of the views rendered
        with ``values``."""
        return self.scores_of_logits(self.logits(self.render(values)))

    def loss_of_logits(self, logits: torch.Tensor) -> torch.Tensor:
        """The task loss (cross-entropy, or Dice + BCE) of logits, scalar tensor."""
        return task_loss(self.task, logits, self.targets_tensor())

    def evaluate(self, values: Mapping[str, np.ndarray] | None = None) -> dict[str, float]:
        """Metric, task loss and view distances to the default views for ``values``.

        Returns
        -------
        dict
            ``metric`` in [0, 1]; ``loss``; ``l2`` (root mean squared
            difference of views, view units); ``ssim`` (mean SSIM, 1 = same).
        """
        views = torch.from_numpy(self.render(values))
        base = torch.from_numpy(self.render()) if values else views
        logits = self.logits(views)
        return {
            "metric": self.metric_of_logits(logits),
            "loss": float(self.loss_of_logits(logits)),
            "l2": float(mse(views, base).mean().sqrt()),
            "ssim": float(ssim(views, base).mean()),
        }

    def metric(self, values: Mapping[str, np.ndarray] | None = None) -> float:
        """Task metric (accuracy or IoU, in [0, 1]) of the views rendered with ``values``."""
        return self.metric_of_logits(self.logits(self.render(values)))
