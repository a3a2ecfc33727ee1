"""Attacks over ISP parameters against a frozen task model (see :mod:`driftlab.attacks.base`)."""

from driftlab.attacks.base import AttackResult, AttackSettings, AttackSpec, run_attack
from driftlab.attacks.problem import AttackProblem, freeze_model
from driftlab.attacks.similarity import ssim, view_distance
from driftlab.attacks.space import AttackTargetError, ParameterSpace, select_targets

__all__ = [
    "AttackProblem",
    "AttackResult",
    "AttackSettings",
    "AttackSpec",
    "AttackTargetError",
    "ParameterSpace",
    "freeze_model",
    "run_attack",
    "select_targets",
    "ssim",
    "view_distance",
]
