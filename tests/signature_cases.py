"""Constructed forensic problems with known behaviour, shared by the signature tests."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from driftlab.attacks import AttackProblem
from driftlab.forensics.plan import data_fingerprint
from driftlab.forensics.signature import signature_from_problem
from driftlab.pipeline import PipelineSpec, resolve
from driftlab.registry import Registry

# demosaic -> white balance -> gamma: 4 attackable elements (3 gains, gamma)
SMALL_PIPELINE = {
    "name": "dm-wb-gc",
    "stages": [
        {"slot": "demosaic", "variant": "bilinear"},
        {"slot": "white_balance", "variant": "gains"},
        {"slot": "gamma", "variant": "power"},
    ],
}
GREY = 0.3  # raw level of every item
CENTER = GREY ** (1 / 2.2)  # mean view brightness at the defaults
BAND = 0.05


class BrightnessBand(nn.Module):
    """Predicts class 0 while the mean view brightness stays within ``band`` of
    ``center``, class 1 otherwise: logits ``(band - |b - center|, 0)`` for
    ``(B, 3, H, W)`` views. Each gain or gamma alone may move ``b`` by up to
    ``band``; moved together they add up, so a per-axis box fails jointly."""

    def __init__(self, center: float = CENTER, band: float = BAND) -> None:
        super().__init__()
        self.center, self.band = center, band

    def forward(self, views: torch.Tensor) -> torch.Tensor:
        b = views.mean(dim=(1, 2, 3))
        return torch.stack([self.band - (b - self.center).abs(), torch.zeros_like(b)], dim=1)


class Constant(nn.Module):
    """Ignores the view: always predicts class 0 (``(B, 2)`` logits)."""

    def forward(self, views: torch.Tensor) -> torch.Tensor:
        return torch.tensor([1.0, 0.0]).expand(len(views), 2).clone()


def grey_items(n: int = 40, size: int = 8, seed: int = 0) -> np.ndarray:
    """``(n, size, size)`` float32 mosaics at :data:`GREY` +- 0.001."""
    rng = np.random.default_rng(seed)
    return (GREY + rng.uniform(-1e-3, 1e-3, (n, 1, 1)) * np.ones((1, size, size))).astype(
        np.float32
    )


def constructed_problem(
    model: nn.Module, n: int = 60, wrong: int = 0
) -> tuple[AttackProblem, list[str]]:
    """``model`` through :data:`SMALL_PIPELINE` (identity camera) on ``n`` grey items, all
    class 0 except every ``n // wrong``-th item (``wrong`` of them), labelled class 1, so that a
    model predicting class 0 is wrong on those."""
    registry = Registry.load(entry_points=False)
    resolved = resolve(
        PipelineSpec.from_dict(SMALL_PIPELINE), registry.camera("identity"), registry
    )
    raw = grey_items(n)
    ids = [f"grey-{i:03d}" for i in range(n)]
    targets = np.zeros(n, np.int64)
    if wrong:
        targets[:: n // wrong][:wrong] = 1
    return AttackProblem(model, resolved, raw, targets, "classification"), ids


def constructed_signature(model: nn.Module, n: int = 60, wrong: int = 0, **settings) -> dict:
    """A cross-fitted signature of ``model`` on the constructed problem."""
    problem, ids = constructed_problem(model, n, wrong)
    info = {
        "name": "grey-items",
        "data_root": None,
        "intensity": 1.0,
        "options": {"n_items": n},
        "split": {"part": "all", "folds": 2, "fold": 0, "seed": 0},
        "max_items": n,
        "items": n,
        "ids": ids,
        **data_fingerprint(ids, problem.raw, np.asarray(problem.targets)),
    }
    model_info = {
        "name": type(model).__name__,
        "options": {},
        "weights": "none.pt",
        "sha256": "0" * 64,
    }
    options = {
        "threshold": 0.8,
        "points": 4,
        "refine": 6,
        "steps": 3,
        "shrink_steps": 4,
        "corners": 16,
        "seed": 0,
        **settings,
    }
    return signature_from_problem(
        problem,
        ids=ids,
        metric="accuracy",
        model_info=model_info,
        data_info=info,
        registry=Registry.load(entry_points=False),
        **options,
    )
