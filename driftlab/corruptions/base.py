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

Severity-table families
-----------------------
Hendrycks & Dietterich released one algorithm per corruption with two sets
of strengths: the ImageNet-C tables (``"imagenet-c"``, for 224-pixel
photographs) and the much milder CIFAR-10-C tables (``"cifar-c"``, their
``make_cifar_c.py``, for 32-pixel images), which the code of Oala et al.
(TMLR 2023) applied. A declaration may carry one :class:`SeverityTable` per
family (:attr:`CorruptionSpec.tables`): the parameters at each severity and
the function that applies them. :meth:`CorruptionSpec.for_family` picks one;
a declaration without tables (``identity``, most plugins) is the same in
every family.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs
import numpy as np

from driftlab.errors import DriftlabError

__all__ = [
    "DEFAULT_FAMILY",
    "FAMILIES",
    "SEVERITIES",
    "CorruptionError",
    "CorruptionFn",
    "CorruptionSpec",
    "SeverityTable",
]

SEVERITIES: tuple[int, ...] = (1, 2, 3, 4, 5)
DEFAULT_FAMILY = "imagenet-c"
"""Severity-table family used when none is named."""
FAMILIES: tuple[str, ...] = ("imagenet-c", "cifar-c")
"""Families of the built-in corruptions (plugins may declare others)."""

CorruptionFn = Callable[[np.ndarray, int, int], np.ndarray]


class CorruptionError(DriftlabError, ValueError):
    """A corruption, its severity, seed or the view it is applied to is invalid."""

    exit_code = 2


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


def _check_family(instance: object, attribute: attrs.Attribute, value: str) -> None:
    if not isinstance(value, str) or not value or not all(c.isalnum() or c in "-_." for c in value):
        raise ValueError(
            f"{attribute.name} must be a name of letters, digits, '-', '_' or '.', got {value!r}"
        )


def _to_rows(value: object) -> tuple[tuple[object, ...], ...]:
    return tuple(tuple(row) if isinstance(row, (tuple, list)) else (row,) for row in value)  # type: ignore[union-attr]


@attrs.frozen
class SeverityTable:
    """The parameters of one corruption at each severity, in one family, and how to apply them.

    Parameters
    ----------
    family : str
        Family name (``"imagenet-c"``, ``"cifar-c"`` ...).
    parameters : tuple of str
        Parameter names, e.g. ``("sigma",)``.
    values : sequence of tuples
        One row per severity 1..5 (a scalar row may be given bare), each
        with one value per parameter.
    function : callable
        ``function(view, severity, seed)`` applying this table (see the
        module docstring).
    unit : str
        Units of the parameters, for reports.
    reference : str
        Where the numbers come from.

    Raises
    ------
    ValueError
        Not five rows, or a row whose length differs from ``parameters``.
    """

    family: str = attrs.field(validator=_check_family)
    parameters: tuple[str, ...] = attrs.field(converter=tuple)
    values: tuple[tuple[object, ...], ...] = attrs.field(converter=_to_rows)
    function: CorruptionFn = attrs.field(eq=False, validator=_check_callable)
    unit: str = ""
    reference: str = ""

    def __attrs_post_init__(self) -> None:
        if len(self.values) != len(SEVERITIES):
            raise ValueError(
                f"severity table {self.family!r}: expected {len(SEVERITIES)} rows (severities "
                f"1..5), got {len(self.values)}"
            )
        for k, row in enumerate(self.values, start=1):
            if len(row) != len(self.parameters):
                raise ValueError(
                    f"severity table {self.family!r}: row {k} has {len(row)} values for the "
                    f"parameters {list(self.parameters)}"
                )

    def at(self, severity: int) -> dict[str, object]:
        """Parameters at ``severity`` (1..5), by name.

        Raises
        ------
        CorruptionError
            Severity outside 1..5.
        """
        if isinstance(severity, bool) or severity not in SEVERITIES:
            raise CorruptionError(f"severity must be one of 1..5, got {severity!r}")
        return dict(zip(self.parameters, self.values[int(severity) - 1], strict=True))

    def describe(self) -> str:
        """``"sigma 0.04, 0.06, 0.08, 0.09, 0.1"``-style one-liner for reports."""
        parts = []
        for i, name in enumerate(self.parameters):
            column = ", ".join(f"{row[i]:g}" if isinstance(row[i], float | int) else str(row[i])
                               for row in self.values)  # fmt: skip
            parts.append(f"{name} {column}")
        unit = f" ({self.unit})" if self.unit else ""
        return "; ".join(parts) + unit


def _convert_tables(value: object) -> dict[str, SeverityTable]:
    if isinstance(value, dict):
        return dict(value)
    return {table.family: table for table in value}  # type: ignore[union-attr]


def _check_tables(instance: object, attribute: attrs.Attribute, value: dict) -> None:
    for family, table in value.items():
        if not isinstance(table, SeverityTable):
            raise ValueError(f"tables[{family!r}] must be a SeverityTable, got {table!r}")
        if table.family != family:
            raise ValueError(f"tables[{family!r}] holds the table of family {table.family!r}")


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
    tables : mapping of str to SeverityTable, or a sequence of them
        Severity tables by family (module docstring); ``function`` is the
        default family's. Empty: the corruption is the same in every family.

    Raises
    ------
    ValueError
        On an invalid name or family, empty or out-of-range severities, a
        non-callable function, or a table filed under another family.
    """

    name: str = attrs.field(validator=_check_name)
    family: str = attrs.field(validator=_check_name)
    doc: str
    function: CorruptionFn = attrs.field(eq=False, validator=_check_callable)
    severities: tuple[int, ...] = attrs.field(
        default=SEVERITIES, converter=_to_severities, validator=_check_severities
    )
    reference: str = ""
    tables: dict[str, SeverityTable] = attrs.field(
        factory=dict, converter=_convert_tables, validator=_check_tables, eq=False
    )

    @property
    def families(self) -> tuple[str, ...]:
        """Families this corruption has severity tables for (empty: family-independent)."""
        return tuple(self.tables)

    def for_family(self, family: str | None) -> CorruptionSpec:
        """This corruption with the function of ``family``'s severity table.

        Parameters
        ----------
        family : str or None
            ``"imagenet-c"``, ``"cifar-c"`` ...; None means :data:`DEFAULT_FAMILY`.

        Returns
        -------
        CorruptionSpec
            ``self`` when the corruption has no tables (it is the same in
            every family); else a copy whose ``function`` applies the table.

        Raises
        ------
        CorruptionError
            The corruption has tables but none for ``family``.
        """
        family = DEFAULT_FAMILY if family is None else family
        if not self.tables:
            return self
        table = self.tables.get(family)
        if table is None:
            raise CorruptionError(
                f"corruption {self.name!r} has no {family!r} severity table; it defines: "
                + ", ".join(self.tables)
            )
        return attrs.evolve(self, function=table.function)
