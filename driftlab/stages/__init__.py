"""Built-in ISP stages (declared in :mod:`driftlab.stages.base`).

The built-in plugin :mod:`driftlab.builtin.stages` registers every stage
listed in :data:`BUILTIN_STAGES` through the ``driftlab_stages`` hook, the same
way third-party plugins do.
"""

from driftlab.stages import black_level, color, demosaic, gamma, luma
from driftlab.stages.base import DifferentiableStage, StageContext, StageSpec

BUILTIN_STAGES: tuple[StageSpec, ...] = (
    *black_level.STAGES,
    *demosaic.STAGES,
    *color.STAGES,
    *luma.STAGES,
    *gamma.STAGES,
)

__all__ = ["BUILTIN_STAGES", "DifferentiableStage", "StageContext", "StageSpec"]
