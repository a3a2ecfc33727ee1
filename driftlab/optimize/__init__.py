"""ISP optimisation: frozen vs jointly learned ISPs vs raw input (Oala et al., TMLR 2023)."""

from driftlab.optimize.config import MODES, OptimizeConfig, load_optimize_config
from driftlab.optimize.packing import pack_bayer
from driftlab.optimize.runner import OptimizationResult, run_optimization
from driftlab.optimize.summary import learning_curves, paired_differences, summary_table

__all__ = [
    "MODES",
    "OptimizationResult",
    "OptimizeConfig",
    "learning_curves",
    "load_optimize_config",
    "pack_bayer",
    "paired_differences",
    "run_optimization",
    "summary_table",
]
