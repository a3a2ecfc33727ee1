"""driftlab: test machine-learning models against camera hardware drift.

Raw sensor data is rendered through explicit image-signal-processing (ISP)
pipelines, static (numpy) and differentiable (torch), following Oala, Aversa
et al., "Data Models for Dataset Drift Controls in Machine Learning With
Optical Images", TMLR 2023.
"""

from driftlab.camera import CameraParams
from driftlab.hookspecs import hookimpl
from driftlab.params import Domain, ParamSpec
from driftlab.pipeline import (
    PAPER_DATA_MODELS,
    PipelineSpec,
    StageConfig,
    build_differentiable,
    build_static,
    get_pipeline,
    grid,
    reference_pipeline,
)
from driftlab.registry import get_registry
from driftlab.stages.base import StageContext, StageSpec

__version__ = "0.1.0"

__all__ = [
    "PAPER_DATA_MODELS",
    "CameraParams",
    "Domain",
    "ParamSpec",
    "PipelineSpec",
    "StageConfig",
    "StageContext",
    "StageSpec",
    "__version__",
    "build_differentiable",
    "build_static",
    "get_pipeline",
    "get_registry",
    "grid",
    "hookimpl",
    "reference_pipeline",
]
