"""Gradient attacks: ``penalty`` (Adam) and ``projected`` (projected signed gradient)."""

from __future__ import annotations

import numpy as np
import torch

from driftlab.attacks.base import AttackSettings
from driftlab.attacks.problem import AttackProblem
from driftlab.attacks.similarity import view_distance
from driftlab.attacks.space import ParameterSpace

__all__ = ["penalty_attack", "projected_attack"]


def _ascent(problem: AttackProblem, space: ParameterSpace, settings: AttackSettings, make_update):
    """Shared ascent loop; ``make_update(attacked)`` returns ``update(grads)`` (in place)."""
    pipe = problem.pipeline()
    params = pipe.named_stage_parameters()
    attacked = [params[k] for k in space.keys]
    with torch.no_grad():
        for slot, p in zip(space.slots, attacked, strict=True):
            p.copy_(slot.project(torch.as_tensor(slot.default, dtype=p.dtype)))
    for p in attacked:
        p.requires_grad_(True)
    update = make_update(attacked)
    raw = problem.raw_tensor()
    with torch.no_grad():
        base = pipe(raw)
    best_key, best = None, space.defaults()
    history: list[float] = []
    for step in range(settings.steps + 1):
        views = pipe(raw)
        logits = problem.model(views)
        metric = problem.metric_of_logits(logits)
        objective = (
            problem.loss_of_logits(logits)
            - settings.lam * view_distance(settings.similarity, views, base).mean()
        )
        history.append(metric)
        key = (-float(objective.detach()), metric)
        if best_key is None or key < best_key:
            best_key = key
            best = {
                k: p.detach().double().numpy().copy()
                for k, p in zip(space.keys, attacked, strict=True)
            }
        if step == settings.steps:
            break
        grads = torch.autograd.grad(objective, attacked)
        with torch.no_grad():
            update(grads)
            for slot, p in zip(space.slots, attacked, strict=True):
                p.copy_(slot.project(p))
    return best, history[1:] if len(history) > 1 else history


def penalty_attack(
    problem: AttackProblem, space: ParameterSpace, settings: AttackSettings
) -> tuple[dict[str, np.ndarray], list[float]]:
    """Penalty attack of Oala et al. (TMLR 2023): Adam ascent on the objective.

    Maximises ``task loss - lam * d(view, default view)`` with Adam (Kingma and
    Ba, 2015) whose learning rate for each parameter is ``settings.lr`` times
    its domain width; after every step each parameter is projected back into
    its box and domain (physically valid values only).

    Returns
    -------
    (dict, list)
        Best values found (float64 arrays keyed ``"stage.param"``) and the
        task metric per step.
    """

    def make_update(attacked):
        groups = [
            {"params": [p], "lr": settings.lr * (s.domain.high - s.domain.low)}
            for s, p in zip(space.slots, attacked, strict=True)
        ]
        adam = torch.optim.Adam(groups, maximize=True)

        def update(grads):
            for p, g in zip(attacked, grads, strict=True):
                p.grad = g
            adam.step()

        return update

    return _ascent(problem, space, settings, make_update)


def projected_attack(
    problem: AttackProblem, space: ParameterSpace, settings: AttackSettings
) -> tuple[dict[str, np.ndarray], list[float]]:
    """Projected gradient ascent with signed steps (Madry et al., ICLR 2018).

    Each step moves every element by ``settings.lr * (high - low)`` of its
    domain in the direction of the objective's gradient sign, then projects
    onto the parameter's box (domain bounds intersected with the budget
    around the default or explicit bounds) and the domain's equality
    constraints (Dykstra's algorithm), so every iterate is a valid parameter.

    Returns
    -------
    (dict, list)
        Best values found and the task metric per step.
    """

    def make_update(attacked):
        def update(grads):
            for s, p, g in zip(space.slots, attacked, grads, strict=True):
                p.add_(settings.lr * (s.domain.high - s.domain.low) * torch.sign(g))

        return update

    return _ascent(problem, space, settings, make_update)
