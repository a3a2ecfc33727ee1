"""Post-hoc view corruptions (ImageNet-C style) and how to apply them.

Declarations (:class:`CorruptionSpec`) come from plugins through the
``driftlab_corruptions`` hook; the built-in plugin
:mod:`driftlab.builtin.corruptions` registers :data:`BUILTIN_CORRUPTIONS`:
the 19 corruptions of the ``imagecorruptions`` package (Hendrycks &
Dietterich, ICLR 2019) and ``identity``.
"""

from driftlab.corruptions.apply import (
    apply_corruption,
    apply_corruption_batch,
    corruption_seeds,
    get_corruption,
)
from driftlab.corruptions.base import SEVERITIES, CorruptionError, CorruptionSpec
from driftlab.corruptions.identity import IDENTITY
from driftlab.corruptions.imagenet_c import IMAGENET_C_CORRUPTIONS
from driftlab.corruptions.protocol import PAPER_CORRUPTIONS, PAPER_SEVERITIES

BUILTIN_CORRUPTIONS: tuple[CorruptionSpec, ...] = (IDENTITY, *IMAGENET_C_CORRUPTIONS)

__all__ = [
    "BUILTIN_CORRUPTIONS",
    "PAPER_CORRUPTIONS",
    "PAPER_SEVERITIES",
    "SEVERITIES",
    "CorruptionError",
    "CorruptionSpec",
    "apply_corruption",
    "apply_corruption_batch",
    "corruption_seeds",
    "get_corruption",
]
