"""Attack declarations (:class:`AttackSpec`), settings and results.

An attack searches the parameters of an ISP pipeline for values that make a
frozen task model fail, keeping every parameter inside the domain its stage
declares (and inside a box of per-element bounds: a budget around the
default, or a signature envelope). All built-in attacks maximise the same
objective (Oala et al., TMLR 2023, Sec. 6)::

    J(theta) = L_task(f(P_theta(x)), y) - lambda * d(P_theta(x), P_theta0(x))

with ``d = 1 - SSIM`` or the mean squared difference of the views; they
differ in how they search (Adam, projected signed gradient, gradient-free).
The returned values are the best iterate seen: highest objective, ties
broken by the lower task metric; if that iterate's metric is above the clean
one, the defaults are returned instead (an attack never reports a gain).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import attrs
import numpy as np

from driftlab.attacks.problem import AttackProblem
from driftlab.attacks.similarity import SIMILARITIES
from driftlab.attacks.space import select_targets
from driftlab.registry import suggest

__all__ = ["AttackResult", "AttackSettings", "AttackSpec", "run_attack"]


def _choice(*allowed: str):
    def check(instance: object, attribute: attrs.Attribute, value: str) -> None:
        if value not in allowed:
            raise ValueError(
                f"attack.{attribute.name}: expected one of {', '.join(allowed)}, got {value!r}"
            )

    return check


def _positive(instance: object, attribute: attrs.Attribute, value: float) -> None:
    if isinstance(value, bool) or not value > 0:
        raise ValueError(f"attack.{attribute.name}: expected a positive number, got {value!r}")


def _non_negative(instance: object, attribute: attrs.Attribute, value: float) -> None:
    if isinstance(value, bool) or not value >= 0:
        raise ValueError(f"attack.{attribute.name}: expected a number >= 0, got {value!r}")


@attrs.frozen
class AttackSettings:
    """How an attack runs.

    Parameters
    ----------
    steps : int
        Gradient steps (``penalty``, ``projected``) or generations (``search``).
    lr : float
        Step size as a fraction of each parameter's domain width
        (``high - low``): Adam learning rate (``penalty``), signed-gradient
        step (``projected``), initial CMA-ES sigma (``search``).
    lam : float
        Weight of the view distance in the objective (>= 0).
    similarity : {"ssim", "l2"}
        View distance: ``1 - SSIM`` (11 x 11 Gaussian window, sigma 1.5 px)
        or the mean squared difference.
    budget : float or None
        Keep each element within ``budget * (high - low)`` of its default.
    method : {"random", "cma"}
        Gradient-free strategy of ``search``: uniform random sampling in the
        box, or CMA-ES (Hansen, the ``cma`` package).
    population : int
        Candidates per generation of ``search``.
    seed : int
        Seed of every random choice.
    """

    steps: int = attrs.field(default=20, validator=_positive)
    lr: float = attrs.field(default=0.02, validator=_positive)
    lam: float = attrs.field(default=0.0, validator=_non_negative)
    similarity: str = attrs.field(default="ssim", validator=_choice(*SIMILARITIES))
    budget: float | None = None
    method: str = attrs.field(default="random", validator=_choice("random", "cma"))
    population: int = attrs.field(default=8, validator=_positive)
    seed: int = 0


@attrs.frozen
class AttackResult:
    """Outcome of one attack.

    Attributes
    ----------
    attack : str
    values : dict of str to numpy.ndarray
        Final (best) value of every attacked ``"stage.param"``, float64.
    clean, attacked : dict
        :meth:`AttackProblem.evaluate` at the default and at ``values``:
        ``metric``, ``loss``, ``l2``, ``ssim``.
    history : tuple of float
        Task metric at each step (or best of each generation).
    """

    attack: str
    values: dict[str, np.ndarray] = attrs.field(eq=False)
    clean: dict[str, float]
    attacked: dict[str, float]
    history: tuple[float, ...]

    def values_json(self) -> dict[str, Any]:
        """Values as nested lists (JSON-ready)."""
        return {k: np.asarray(v).tolist() for k, v in self.values.items()}


AttackFunction = Callable[..., tuple[dict, list]]
"""``function(problem, space, settings, **options) -> (values, history)``."""


def _option_names(instance: object, attribute: attrs.Attribute, value: dict) -> None:
    for key, doc in value.items():
        if not isinstance(key, str) or not key.isidentifier():
            raise ValueError(
                f"attack.options: option names must be Python identifiers (they are passed "
                f"as keyword arguments), got {key!r}"
            )
        if not isinstance(doc, str):
            raise ValueError(f"attack.options[{key!r}]: expected a one-line description string")


@attrs.frozen
class AttackSpec:
    """Declaration of an attack, registered through the ``driftlab_attacks`` hook.

    Parameters
    ----------
    name : str
        Unique registry name (``penalty``, ``projected``, ``search``).
    doc : str
        One-line description with the algorithm's source.
    function : callable
        ``function(problem, space, settings, **options) -> (values, history)`` returning
        the best ``{"stage.param": float64 array}`` found inside
        ``space`` and the per-step task metric.
    needs_gradients : bool
        True when the attack back-propagates through the pipeline (it then
        needs every stage to have a differentiable form).
    options : mapping of str to str
        Keyword options the function accepts beyond ``settings``, each with a
        one-line description (name, meaning, unit, default). A run passes the
        user's values as ``function(problem, space, settings, **options)``;
        names not declared here are refused by :meth:`check_options` before
        any work. Empty for the built-in attacks.
    """

    name: str
    doc: str
    function: AttackFunction = attrs.field(eq=False)
    needs_gradients: bool = True
    options: dict[str, str] = attrs.field(factory=dict, converter=dict, validator=_option_names)

    def check_options(self, options: Mapping[str, Any] | None, where: str = "options") -> dict:
        """Check user options against :attr:`options` (names only; the attack
        function checks values and raises ``ValueError`` naming the option).

        Parameters
        ----------
        options : mapping or None
            ``{name: value}`` from a run configuration.
        where : str
            Prefix of error messages (e.g. ``"[attacks.options].my-attack"``).

        Returns
        -------
        dict
            A copy of ``options`` (``{}`` for None).

        Raises
        ------
        ValueError
            ``options`` is not a mapping, or names an option the attack does
            not declare (with the closest declared name).
        """
        if options is None:
            return {}
        if not isinstance(options, Mapping):
            raise ValueError(f"{where}: expected a table of options, got {options!r}")
        for key in options:
            if key not in self.options:
                declared = ", ".join(sorted(self.options)) or "none"
                raise ValueError(
                    f"{where}: attack {self.name!r} has no option {key!r}"
                    f"{suggest(str(key), self.options)}; options: {declared}"
                )
        return dict(options)


def run_attack(
    spec: AttackSpec,
    problem: AttackProblem,
    settings: AttackSettings | None = None,
    *,
    targets: str | list[str] = "all",
    bounds: Mapping[str, tuple[np.ndarray, np.ndarray]] | None = None,
    clean: Mapping[str, float] | None = None,
    options: Mapping[str, Any] | None = None,
) -> AttackResult:
    """Run one attack on ``problem`` over the selected parameters.

    Parameters
    ----------
    spec : AttackSpec
    problem : AttackProblem
    settings : AttackSettings, optional
    targets : str or list of str
        ``"all"``, stage names and/or ``"stage.param"`` keys.
    bounds : mapping, optional
        Extra element-wise ``(low, high)`` bounds per key (e.g. an envelope).
    clean : mapping, optional
        Precomputed ``problem.evaluate()`` (saves one evaluation).
    options : mapping, optional
        Attack-specific keyword options (see :attr:`AttackSpec.options`),
        checked by :meth:`AttackSpec.check_options` and passed to the function.

    Returns
    -------
    AttackResult

    Raises
    ------
    driftlab.attacks.space.AttackTargetError
        Unknown target names.
    ValueError
        A gradient attack on a pipeline with a static-only stage, or an option
        the attack does not declare.
    """
    settings = settings or AttackSettings()
    kwargs = spec.check_options(options, f"attack {spec.name!r} options")
    if spec.needs_gradients and not problem.differentiable:
        static = [s.spec.key for s in problem.resolved.stages if s.spec.differentiable is None]
        raise ValueError(
            f"attack {spec.name!r} needs gradients but pipeline {problem.resolved.name!r} has "
            f"static-only stages ({', '.join(static)}); use the 'search' attack"
        )
    full = problem.space()
    keys = select_targets(full.keys, targets)
    space = full.subset(keys).with_budget(settings.budget).with_bounds(bounds or {})
    clean = dict(clean) if clean is not None else problem.evaluate()
    values, history = spec.function(problem, space, settings, **kwargs)
    attacked = problem.evaluate(values)
    if attacked["metric"] > clean["metric"]:  # never report something worse than no attack
        values, attacked = space.defaults(), dict(clean)
    return AttackResult(spec.name, values, dict(clean), attacked, tuple(history))
