"""Pipelines: declared as data, resolved against plugins and a camera, built
as static (numpy) or differentiable (torch) callables."""

from driftlab.pipeline.batched import FastRenderer, FastRenderGroup, render_views
from driftlab.pipeline.differentiable import DifferentiablePipeline, build_differentiable
from driftlab.pipeline.outputs import StageOutputError
from driftlab.pipeline.resolve import ResolvedPipeline, ResolvedStage, resolve
from driftlab.pipeline.spec import PipelineSpec, SpecError, StageConfig, load_pipeline_file
from driftlab.pipeline.static import StaticPipeline, build_static
from driftlab.pipeline.zoo import (
    PAPER_DATA_MODELS,
    REFERENCE_SLOTS,
    expand_pipeline_names,
    get_pipeline,
    grid,
    parse_pipeline_selection,
    reference_pipeline,
)

__all__ = [
    "PAPER_DATA_MODELS",
    "REFERENCE_SLOTS",
    "DifferentiablePipeline",
    "FastRenderGroup",
    "FastRenderer",
    "PipelineSpec",
    "ResolvedPipeline",
    "ResolvedStage",
    "SpecError",
    "StageConfig",
    "StageOutputError",
    "StaticPipeline",
    "build_differentiable",
    "build_static",
    "expand_pipeline_names",
    "get_pipeline",
    "grid",
    "load_pipeline_file",
    "parse_pipeline_selection",
    "reference_pipeline",
    "render_views",
    "resolve",
]
