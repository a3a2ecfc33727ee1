"""Built-in plugin: the ImageNet-C corruptions and ``identity``."""

from __future__ import annotations

from driftlab.corruptions import BUILTIN_CORRUPTIONS, CorruptionSpec
from driftlab.hookspecs import hookimpl


@hookimpl
def driftlab_corruptions() -> list[CorruptionSpec]:
    """The 19 corruptions of ``imagecorruptions`` (severities 1..5) and ``identity``."""
    return list(BUILTIN_CORRUPTIONS)
