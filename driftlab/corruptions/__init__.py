"""Post-hoc view corruptions (ImageNet-C style) and how to apply them.

Declarations (:class:`CorruptionSpec`) come from plugins through the
``driftlab_corruptions`` hook; the built-in plugin
:mod:`driftlab.builtin.corruptions` registers :data:`BUILTIN_CORRUPTIONS`:
the 19 corruptions of the ``imagecorruptions`` package (Hendrycks &
Dietterich, ICLR 2019) and ``identity``. Each of the 19 has two severity-table
families: ``imagenet-c`` (default; the library on 8-bit views) and
``cifar-c`` (the CIFAR-10-C tables the paper's code applied, in float); pass
``family=`` to :func:`apply_corruption`, :func:`apply_corruption_batch` or
:func:`get_corruption`, and list a family's numbers with
:func:`family_parameters` or :func:`corruption_parameters`.
"""

from driftlab.corruptions.apply import (
    apply_corruption,
    apply_corruption_batch,
    corruption_parameters,
    corruption_seeds,
    get_corruption,
)
from driftlab.corruptions.base import (
    DEFAULT_FAMILY,
    FAMILIES,
    SEVERITIES,
    CorruptionError,
    CorruptionSpec,
    SeverityTable,
)
from driftlab.corruptions.identity import IDENTITY
from driftlab.corruptions.imagenet_c import IMAGENET_C_CORRUPTIONS
from driftlab.corruptions.protocol import PAPER_CORRUPTIONS, PAPER_SEVERITIES
from driftlab.corruptions.tables import family_parameters

BUILTIN_CORRUPTIONS: tuple[CorruptionSpec, ...] = (IDENTITY, *IMAGENET_C_CORRUPTIONS)

__all__ = [
    "BUILTIN_CORRUPTIONS",
    "DEFAULT_FAMILY",
    "FAMILIES",
    "PAPER_CORRUPTIONS",
    "PAPER_SEVERITIES",
    "SEVERITIES",
    "CorruptionError",
    "CorruptionSpec",
    "SeverityTable",
    "apply_corruption",
    "apply_corruption_batch",
    "corruption_parameters",
    "corruption_seeds",
    "family_parameters",
    "get_corruption",
]
