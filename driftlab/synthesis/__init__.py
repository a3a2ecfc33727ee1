"""Drift synthesis: ISP drift versus common corruptions (Oala et al., TMLR 2023, Sec. 5)."""

from driftlab.synthesis.config import SynthesisConfig, load_synthesis_config
from driftlab.synthesis.rebuild import rebuild_report
from driftlab.synthesis.runner import SynthesisResult, run_synthesis
from driftlab.synthesis.summary import summarize

__all__ = [
    "SynthesisConfig",
    "SynthesisResult",
    "load_synthesis_config",
    "rebuild_report",
    "run_synthesis",
    "summarize",
]
