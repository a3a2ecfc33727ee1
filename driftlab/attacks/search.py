"""Gradient-free attack: random search or CMA-ES over the parameter boxes."""

from __future__ import annotations

import numpy as np
import torch

from driftlab.attacks.base import AttackSettings
from driftlab.attacks.problem import AttackProblem
from driftlab.attacks.similarity import view_distance
from driftlab.attacks.space import ParameterSpace

__all__ = ["search_attack"]


def _decode(space: ParameterSpace, z: np.ndarray) -> dict[str, np.ndarray]:
    """Map ``z`` in [-1, 1]^d to values: box midpoint + z * half-width, then project."""
    out, start = {}, 0
    for s in space.slots:
        n = s.default.size
        mid, half = (s.low + s.high) / 2, (s.high - s.low) / 2
        value = mid + np.clip(z[start : start + n], -1, 1).reshape(s.default.shape) * half
        out[s.key] = s.project(torch.as_tensor(value)).numpy()
        start += n
    return out


def _encode(space: ParameterSpace, values: dict[str, np.ndarray]) -> np.ndarray:
    parts = []
    for s in space.slots:
        half = (s.high - s.low) / 2
        z = np.where(
            half > 0, (values[s.key] - (s.low + s.high) / 2) / np.where(half > 0, half, 1), 0
        )
        parts.append(z.ravel())
    return np.concatenate(parts)


def search_attack(
    problem: AttackProblem, space: ParameterSpace, settings: AttackSettings
) -> tuple[dict[str, np.ndarray], list[float]]:
    """Gradient-free search of the parameter boxes; works for static-only pipelines.

    Candidates are coded as ``z`` in ``[-1, 1]^d`` (box midpoint plus ``z``
    times the half-width, then projected onto the domain's equality
    constraints). ``method="random"`` draws ``population`` uniform candidates
    per generation (pure random search, Rastrigin 1963); ``method="cma"`` runs
    CMA-ES (Hansen and Ostermeier, 2001; the ``cma`` package) started at the
    default with sigma ``2 * lr``; the ``cma`` package needs at least two
    dimensions, so a single scalar target falls back to random search. Both
    maximise the objective of :mod:`driftlab.attacks.base`, evaluated by
    rendering every item.

    Returns
    -------
    (dict, list)
        Best values (highest objective, then lowest metric) and the best
        metric of each generation.
    """
    base = torch.from_numpy(problem.render())
    rng = np.random.default_rng(settings.seed)

    def score(values: dict[str, np.ndarray]) -> tuple[float, float]:
        views = torch.from_numpy(problem.render(values))
        logits = problem.logits(views)
        objective = float(problem.loss_of_logits(logits)) - settings.lam * float(
            view_distance(settings.similarity, views, base).mean()
        )
        return problem.metric_of_logits(logits), objective

    best_values = space.defaults()
    metric, objective = score(best_values)
    best_key = (-objective, metric)
    history: list[float] = []
    z0 = _encode(space, best_values)
    es = None
    if settings.method == "cma" and z0.size >= 2:  # the cma package needs >= 2 dimensions
        from driftlab.errors import require_extra

        require_extra("cma", "cma", "the CMA-ES search ([attacks] method = 'cma')")
        import cma

        es = cma.CMAEvolutionStrategy(
            z0,
            2 * settings.lr,
            {
                "bounds": [-1, 1],
                "popsize": max(settings.population, 2),
                "seed": settings.seed + 1,
                "verbose": -9,
            },
        )
    for _ in range(settings.steps):
        if es is not None:
            candidates = [np.asarray(c) for c in es.ask()]
        else:
            candidates = [rng.uniform(-1, 1, z0.shape) for _ in range(settings.population)]
        fitness, generation = [], []
        for z in candidates:
            values = _decode(space, z)
            metric, objective = score(values)
            fitness.append(-objective)
            generation.append(metric)
            if (-objective, metric) < best_key:
                best_key, best_values = (-objective, metric), values
        if es is not None:
            es.tell(candidates, fitness)
        history.append(min(generation))
    return best_values, history
