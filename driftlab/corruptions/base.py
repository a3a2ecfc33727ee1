"""Declaration of post-hoc view corruptions: what ``driftlab_corruptions`` returns.

A corruption perturbs a finished view (after the ISP), as opposed to a change
of the ISP itself; driftlab compares both kinds of drift (Oala et al., TMLR
2023, following the ImageNet-C protocol of Hendrycks & Dietterich, ICLR 2019).

Function signature
------------------
function(view, severity, seed) -> numpy.ndarray
    ``view`` is a ``(3, H, W)`` float32 array in [0, 1], ``severity`` one of
    the declared severities and ``seed`` a non-negative int. The function must
    return a ``(3, H, W)`` array in [0, 1], must not modify ``view`` and must
    give the same result for the same ``(view, severity, seed)``: draw random
    numbers from ``numpy.random.default_rng(seed)`` (or an equivalent local
    generator), never from numpy's global generator without restoring it.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs
import numpy as np

__all__ = ["SEVERITIES", "CorruptionError", "CorruptionFn", "CorruptionSpec"]

SEVERITIES: tuple[int, ...] = (1, 2, 3, 4, 5)

CorruptionFn = Callable[[np.ndarray, int, int], np.ndarray]


class CorruptionError(ValueError):
    """A corruption, its severity, seed or the view it is applied to is invalid."""


def _check_name(instance: object, attribute: attrs.Attribute, value: str) -> None:
    if not isinstance(value, str) or not value or not value[0].isalnum():
        raise ValueError(
            f"{attribute.name} must be a non-empty string starting with a letter or digit, "
            f"got {value!r}"
        )
    if not all(ch.isalnum() or ch in "_-" for ch in value):
        raise ValueError(
            f"{attribute.name} may contain only letters, digits, '_' and '-', got {value!r}"
        )


def _to_severities(value: object) -> tuple[int, ...]:
    try:
        items = tuple(value)  # type: ignore[arg-type]
    except TypeError:
        raise ValueError(f"severities must be a sequence of ints in 1..5, got {value!r}") from None
    return items


def _check_severities(instance: object, attribute: attrs.Attribute, value: tuple) -> None:
    if not value:
        raise ValueError("severities must not be empty (declare at least one of 1..5)")
    for s in value:
        if isinstance(s, bool) or not isinstance(s, int | np.integer) or s not in SEVERITIES:
            raise ValueError(f"severities must be ints in 1..5, got {s!r} in {value!r}")
    if list(value) != sorted(set(value)):
        raise ValueError(f"severities must be strictly increasing, got {value!r}")


def _check_callable(instance: object, attribute: attrs.Attribute, value: object) -> None:
    if not callable(value):
        raise ValueError(f"{attribute.name} must be callable, got {type(value).__name__}")


@attrs.frozen
class CorruptionSpec:
    """Declaration of one post-hoc view corruption.

    Parameters
    ----------
    name : str
        Registry key, e.g. ``gaussian_noise``; letters, digits, ``_`` and ``-``.
    family : str
        Group used in reports: ``noise``, ``blur``, ``weather``, ``digital``
        (the ImageNet-C families), ``none`` for the identity, or a family a
        plugin introduces.
    doc : str
        One-line description, with the strength range over the severities.
    function : callable
        ``function(view, severity, seed)``; see the module docstring.
    severities : tuple of int
        Accepted severities, strictly increasing, each in 1..5.
    reference : str
        Source of the algorithm (paper or library).

    Raises
    ------
    ValueError
        On an invalid name or family, empty or out-of-range severities, or a
        non-callable function.
    """

    name: str = attrs.field(validator=_check_name)
    family: str = attrs.field(validator=_check_name)
    doc: str
    function: CorruptionFn = attrs.field(eq=False, validator=_check_callable)
    severities: tuple[int, ...] = attrs.field(
        default=SEVERITIES, converter=_to_severities, validator=_check_severities
    )
    reference: str = ""
