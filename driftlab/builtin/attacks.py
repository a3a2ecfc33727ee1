"""Built-in plugin: the ``penalty``, ``projected`` and ``search`` attacks."""

from __future__ import annotations

from driftlab.attacks.base import AttackSpec
from driftlab.attacks.gradient import penalty_attack, projected_attack
from driftlab.attacks.search import search_attack
from driftlab.hookspecs import hookimpl

BUILTIN_ATTACKS = (
    AttackSpec(
        name="penalty",
        doc="Adam ascent on task loss minus lambda x view distance (Oala et al., TMLR 2023)",
        function=penalty_attack,
        needs_gradients=True,
    ),
    AttackSpec(
        name="projected",
        doc="projected signed-gradient ascent inside domains and budget (Madry et al., 2018)",
        function=projected_attack,
        needs_gradients=True,
    ),
    AttackSpec(
        name="search",
        doc="gradient-free random search or CMA-ES inside domains; static-only pipelines too",
        function=search_attack,
        needs_gradients=False,
    ),
)


@hookimpl
def driftlab_attacks() -> list[AttackSpec]:
    """``penalty``, ``projected`` and ``search``."""
    return list(BUILTIN_ATTACKS)
