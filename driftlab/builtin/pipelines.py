"""Built-in plugin: the paper's twelve static data models as named pipelines.

Declaring them through the ``driftlab_pipelines`` hook, like any plugin,
makes a third-party pipeline that reuses one of these names a conflict
reported by the registry instead of a silent override.
"""

from __future__ import annotations

from driftlab.hookspecs import hookimpl
from driftlab.pipeline.spec import PipelineSpec
from driftlab.pipeline.zoo import PAPER_DATA_MODELS


@hookimpl
def driftlab_pipelines() -> list[PipelineSpec]:
    """``bi,s,me`` ... ``ma,u,ga`` (Oala et al., TMLR 2023, Table 1)."""
    return list(PAPER_DATA_MODELS.values())
