"""StageContext carries the camera's facts to stages (issue 13.13)."""

from __future__ import annotations

import numpy as np

from driftlab.camera import CameraParams
from driftlab.pipeline import PipelineSpec, StageConfig, build_static, resolve
from driftlab.registry import get_registry
from driftlab.stages.base import StageContext


def test_stage_context_exposes_the_camera_white_level():
    # a DNG-derived camera whose saturation is not 2**bits - 1
    camera = CameraParams(name="dng", bit_depth=12, white_level=3760)
    spec = PipelineSpec("p", [StageConfig("demosaic", "bilinear")])
    context = resolve(spec, camera).context
    assert context.white_level == 3760 == camera.saturation
    assert StageContext(bit_depth=10).white_level == 1023  # default: 2**bits - 1


def test_illumination_stage_uses_the_camera_white_level():
    # the same gain in DN per electron means more electrons per unit of the [0, 1]
    # scale when the white level is higher, so the relative shot noise must shrink
    stage = get_registry().stage("illumination", "gaussian")
    raw = np.full((32, 32), 0.5)
    params = {
        "ratio": np.array(0.2),
        "gain": np.array(2.0),
        "read_noise": np.array(0.0),
        "black_level": np.zeros(4),
    }
    low = stage.static(raw, StageContext(bit_depth=12, white_level=1000), **params)
    high = stage.static(raw, StageContext(bit_depth=12, white_level=4000), **params)
    assert high.std() < 0.7 * low.std()


def test_pipelines_built_for_a_camera_pass_its_white_level_to_stages():
    seen = []

    def spy_static(x, ctx):
        seen.append(ctx.white_level)
        return x.copy()

    from driftlab.stages.base import StageSpec

    spy = StageSpec(
        slot="spy",
        variant="ctx",
        doc="records the context",
        static=spy_static,
        input_kind="mosaic",
        output_kind="mosaic",
    )
    import types

    from driftlab import hookimpl
    from driftlab.registry import Registry

    @hookimpl
    def driftlab_stages():
        return [spy]

    registry = Registry.load(
        entry_points=False, extra=[("spy", types.SimpleNamespace(driftlab_stages=driftlab_stages))]
    )
    spec = PipelineSpec("p", [StageConfig("spy", "ctx"), StageConfig("demosaic", "bilinear")])
    camera = CameraParams(name="dng", bit_depth=14, white_level=15000)
    build_static(spec, camera, registry)(np.full((4, 4), 0.25))
    assert seen == [15000]
