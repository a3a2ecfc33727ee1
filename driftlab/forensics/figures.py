"""Figures of a forensics run: metric vs lambda, metric vs view distance,
default vs attacked views, per-stage gradient magnitude maps."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from driftlab.atomic import atomic_path
from driftlab.attacks.problem import AttackProblem
from driftlab.io.images import view_to_uint8

__all__ = ["gradient_maps", "write_figures"]


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return path


def gradient_maps(problem: AttackProblem) -> dict[str, np.ndarray]:
    """Per-stage gradient magnitude of the task loss at the default parameters.

    For each stage output ``s`` (``DifferentiablePipeline(..., intermediates=True)``),
    ``|dL/ds|`` averaged over items and channels.

    Returns
    -------
    dict of str to numpy.ndarray
        ``{stage name: (H, W) float32 map}`` (units: loss per unit of the
        stage's output), in pipeline order.
    """
    pipe = problem.pipeline()
    raw = problem.raw_tensor().requires_grad_(True)  # so every stage output carries grad
    views, steps = pipe(raw, intermediates=True)
    for s in steps.values():
        s.retain_grad()
    loss = problem.loss_of_logits(problem.model(views))
    loss.backward()
    out = {}
    for name, s in steps.items():
        g = s.grad.abs().mean(dim=0)
        out[name] = (g.mean(dim=0) if g.ndim == 3 else g).numpy().astype(np.float32)
    return out


def write_figures(
    problem: AttackProblem, results: pd.DataFrame, folder: Path, metric: str, samples: int = 4
) -> dict[str, Path]:
    """Write the run's figures into ``folder`` (PNG, atomically).

    Parameters
    ----------
    problem : AttackProblem
    results : pandas.DataFrame
        ``results.csv`` rows (see :mod:`driftlab.forensics.runner`).
    folder : Path
    metric : str
        Metric name for axis labels.
    samples : int
        Items shown in the views figure.

    Returns
    -------
    dict of str to Path
    """
    folder.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    fig, ax = plt.subplots(figsize=(6, 4))
    for (attack, targets), group in results.groupby(["attack", "targets"], sort=False):
        group = group.sort_values("lam")
        ax.plot(group["lam"], group["attacked_metric"], marker="o", label=f"{attack} [{targets}]")
    ax.axhline(results["clean_metric"].iloc[0], color="k", ls="--", lw=1, label="clean")
    ax.set_xlabel("lambda (view-distance weight)")
    ax.set_ylabel(f"attacked {metric}")
    ax.legend(fontsize=7)
    written["metric_vs_lambda"] = _save(fig, folder / "metric_vs_lambda.png")

    fig, ax = plt.subplots(figsize=(6, 4))
    for attack, group in results.groupby("attack", sort=False):
        ax.scatter(group["l2"], group["attacked_metric"], label=attack)
    ax.set_xlabel("view distance to default (RMS difference)")
    ax.set_ylabel(f"attacked {metric}")
    ax.legend(fontsize=7)
    written["metric_vs_distance"] = _save(fig, folder / "metric_vs_distance.png")

    worst = results.sort_values(["attacked_metric", "l2"]).iloc[0]
    values = {k: np.asarray(v) for k, v in json.loads(worst["values"]).items()}
    n = min(samples, len(problem.raw))
    base, attacked = problem.render()[:n], problem.render(values)[:n]
    fig, axes = plt.subplots(2, n, figsize=(2 * n, 4.2), squeeze=False)
    for j in range(n):
        for i, (label, views) in enumerate((("default", base), ("attacked", attacked))):
            axes[i, j].imshow(view_to_uint8(views[j]))
            axes[i, j].set_axis_off()
            if j == 0:
                axes[i, j].set_title(label, fontsize=8, loc="left")
    fig.suptitle(
        f"{worst['attack']}, lambda {worst['lam']:g}, targets {worst['targets']}", fontsize=9
    )
    written["views"] = _save(fig, folder / "views.png")

    if problem.differentiable:
        maps = gradient_maps(problem)
        fig, axes = plt.subplots(1, len(maps), figsize=(2.2 * len(maps), 2.6), squeeze=False)
        for ax, (name, m) in zip(axes[0], maps.items(), strict=True):
            image = ax.imshow(m, cmap="magma")
            ax.set_title(f"{name}\nmean {m.mean():.2e}", fontsize=7)
            ax.set_axis_off()
            fig.colorbar(image, ax=ax, fraction=0.046)
        written["gradient_maps"] = _save(fig, folder / "gradient_maps.png")
    return written
