"""Static (numpy) pipelines: ``(H, W)`` raw mosaic to ``(3, H, W)`` view."""

from __future__ import annotations

import numpy as np

from driftlab.camera import CameraParams
from driftlab.pipeline.outputs import check_stage_output, expected_output_shape
from driftlab.pipeline.resolve import ResolvedPipeline, resolve
from driftlab.pipeline.spec import PipelineSpec, SpecError
from driftlab.registry import Registry
from driftlab.validation import validate_raw

__all__ = ["StaticPipeline", "build_static"]


class StaticPipeline:
    """A resolved pipeline run with the stages' numpy implementations.

    Call it on one mosaic; see :meth:`__call__`.
    """

    def __init__(self, resolved: ResolvedPipeline) -> None:
        missing = [s.spec.key for s in resolved.stages if s.spec.static is None]
        if missing:
            raise SpecError(
                f"pipeline {resolved.name!r}: no static form for {', '.join(missing)}; "
                "build it with build_differentiable instead"
            )
        self.resolved = resolved
        self.name = resolved.name

    def __call__(
        self,
        raw: np.ndarray,
        *,
        allow_out_of_range: bool = False,
        intermediates: bool = False,
    ) -> np.ndarray | tuple[np.ndarray, dict[str, np.ndarray]]:
        """Render one view.

        Parameters
        ----------
        raw : numpy.ndarray
            ``(H, W)`` Bayer mosaic, float in [0, 1] (raw / white level), H and
            W even.
        allow_out_of_range : bool
            Accept raw values outside [0, 1].
        intermediates : bool
            Also return every stage's output.

        Returns
        -------
        numpy.ndarray or (numpy.ndarray, dict)
            The ``(3, H, W)`` float64 view in [0, 1] when the pipeline ends
            with gamma, and optionally ``{stage name: output}`` with
            ``(H, W)`` mosaics or ``(3, H, W)`` images.

        Raises
        ------
        driftlab.validation.RawInputError
            Non-2-D or odd-sized input, NaN/Inf, or values out of range.
        driftlab.pipeline.outputs.StageOutputError
            A stage returned something other than a float64 array of its
            output kind and the input's size, or NaN/Inf values (naming the
            stage and its plugin).
        """
        x = validate_raw(raw, allow_out_of_range=allow_out_of_range)
        ctx = self.resolved.context
        h, w = x.shape
        steps: dict[str, np.ndarray] = {}
        for stage in self.resolved.stages:
            x = stage.spec.static(x, ctx, **{k: v.copy() for k, v in stage.values.items()})
            check_stage_output(stage, x, "static", expected_output_shape(stage, h, w), np.float64)
            if intermediates:
                steps[stage.name] = x
        return (x, steps) if intermediates else x

    def __repr__(self) -> str:
        keys = " -> ".join(s.spec.key for s in self.resolved.stages)
        return f"StaticPipeline({self.name!r}: {keys})"


def build_static(
    spec: PipelineSpec, camera: CameraParams, registry: Registry | None = None, *, seed: int = 0
) -> StaticPipeline:
    """Resolve ``spec`` for ``camera`` and build its static form.

    ``seed`` is handed to stages that draw random numbers.

    Raises
    ------
    SpecError
        See :func:`driftlab.pipeline.resolve.resolve`; also when a stage has
        no static form.
    """
    return StaticPipeline(resolve(spec, camera, registry, seed=seed))
