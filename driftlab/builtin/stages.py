"""Built-in plugin: the reference ISP stages of DESIGN section 3."""

from __future__ import annotations

from driftlab.hookspecs import hookimpl
from driftlab.stages import BUILTIN_STAGES
from driftlab.stages.base import StageSpec


@hookimpl
def driftlab_stages() -> list[StageSpec]:
    """Black level, demosaic (3), white balance, colour correction (2), sharpen (2),
    denoise (2) and gamma."""
    return list(BUILTIN_STAGES)
