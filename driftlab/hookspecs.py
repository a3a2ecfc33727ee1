"""Hook specifications: the whole plugin interface of driftlab.

A plugin is a module (or object) with functions named like the hooks below,
decorated with :data:`hookimpl`, and advertised through the ``driftlab``
entry-point group of its distribution::

    [project.entry-points.driftlab]
    my_plugin = "my_package.driftlab_plugin"

Every hook takes no arguments and returns a list of *declarations* (attrs
instances of the class named in its return annotation). The built-in
plugins in :mod:`driftlab.builtin` use these very hooks. A name declared
twice, by one or two plugins, is a conflict that names both and withdraws
the name; a plugin that fails to import, calls ``sys.exit()`` or raises
inside a hook is reported by name (``driftlab plugins``) and the others
still load.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:  # declaration classes import this module; annotations only
    from driftlab.attacks.base import AttackSpec
    from driftlab.camera import CameraParams
    from driftlab.corruptions.base import CorruptionSpec
    from driftlab.datasets.base import DatasetSpec
    from driftlab.models.base import TaskModelSpec
    from driftlab.pipeline.spec import PipelineSpec
    from driftlab.stages.base import StageSpec
    from driftlab.tracking import TrackerSpec

__all__ = [
    "PROJECT_NAME",
    "driftlab_attacks",
    "driftlab_camera_profiles",
    "driftlab_corruptions",
    "driftlab_datasets",
    "driftlab_pipelines",
    "driftlab_stages",
    "driftlab_task_models",
    "driftlab_trackers",
    "hookimpl",
    "hookspec",
]

PROJECT_NAME = "driftlab"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def driftlab_stages() -> list[StageSpec]:
    """Declare ISP stage variants.

    Returns
    -------
    list of driftlab.stages.base.StageSpec
        Each identified by ``slot.variant``. A stage provides a static numpy
        form, a differentiable torch form, or both; with both it must pass
        ``driftlab verify`` (equal outputs to 1e-4, gradcheck in float64).

    Example
    -------
    >>> @hookimpl
    ... def driftlab_stages():
    ...     return [StageSpec(slot="lens_shading", variant="radial", doc="...",
    ...                       static=f_np, differentiable=f_torch,
    ...                       input_kind="mosaic", output_kind="mosaic")]
    """


@hookspec
def driftlab_camera_profiles() -> list[CameraParams]:
    """Declare named camera profiles.

    Returns
    -------
    list of driftlab.camera.CameraParams
        Identified by ``name``: CFA pattern, bit depth, black level (4 sites),
        white-balance gains (3), colour matrix (3x3), optional noise model.

    Example
    -------
    >>> @hookimpl
    ... def driftlab_camera_profiles():
    ...     return [CameraParams(name="my-sensor", cfa="GRBG", bit_depth=12)]
    """


@hookspec
def driftlab_datasets() -> list[DatasetSpec]:
    """Declare raw datasets.

    Returns
    -------
    list of driftlab.datasets.base.DatasetSpec
        Identified by ``name``: task (classification or segmentation), class
        names, camera parameters, intensity levels, and an
        ``opener(spec, data_root, intensity, **options)`` returning a
        :class:`~driftlab.datasets.base.RawDataset` of
        :class:`~driftlab.datasets.base.Sample` (raw ``(H, W)`` float32 in
        [0, 1], target, metadata).

    Example
    -------
    >>> @hookimpl
    ... def driftlab_datasets():
    ...     return [DatasetSpec(name="my-slides", task="classification",
    ...                         description="...", classes=("a", "b"),
    ...                         camera=CameraParams(name="my-sensor"), opener=open_slides)]
    """


@hookspec
def driftlab_task_models() -> list[TaskModelSpec]:
    """Declare task-model architectures.

    Returns
    -------
    list of driftlab.models.TaskModelSpec
        Identified by ``name``: the task (``classification`` or
        ``segmentation``) and a factory ``factory(num_classes, in_channels=3,
        **options) -> nn.Module`` mapping views ``(B, 3, H, W)`` to logits
        ``(B, num_classes)`` or ``(B, C, H, W)``. Trained weights are loaded
        with ``driftlab.models.load_task_model``.

    Example
    -------
    >>> @hookimpl
    ... def driftlab_task_models():
    ...     return [TaskModelSpec(name="my-net", task="classification", doc="...",
    ...                           factory=lambda num_classes, in_channels=3: MyNet(...))]
    """


@hookspec
def driftlab_corruptions() -> list[CorruptionSpec]:
    """Declare post-hoc view corruptions.

    Returns
    -------
    list of driftlab.corruptions.CorruptionSpec
        Identified by ``name``: a family (``noise``, ``blur``, ``weather``,
        ``digital`` ...), the accepted severities (within 1..5) and a function
        ``function(view, severity, seed)`` taking a ``(3, H, W)`` float32 view
        in [0, 1] and returning the same shape in [0, 1], reproducibly for a
        seed. Applied with ``driftlab.corruptions.apply_corruption``.

    Example
    -------
    >>> @hookimpl
    ... def driftlab_corruptions():
    ...     return [CorruptionSpec(name="vignette", family="digital", doc="...",
    ...                            function=vignette)]
    """


@hookspec
def driftlab_attacks() -> list[AttackSpec]:
    """Declare attacks over ISP parameters.

    Returns
    -------
    list of driftlab.attacks.base.AttackSpec
        Identified by ``name``: ``doc``, ``function(problem, space, settings,
        **options) -> (values, history)``, ``needs_gradients`` and the
        ``options`` it accepts (name -> one-line description, passed from the
        run configuration as keyword arguments): a search over stage
        parameters against a frozen task model, keeping every parameter inside
        its declared domain.

    Example
    -------
    >>> @hookimpl
    ... def driftlab_attacks():
    ...     return [AttackSpec(name="my-attack", doc="...", function=my_search,
    ...                        needs_gradients=False, options={"radius": "step size"})]
    """


@hookspec
def driftlab_pipelines() -> list[PipelineSpec]:
    """Declare named pipelines.

    Returns
    -------
    list of driftlab.pipeline.spec.PipelineSpec
        Identified by ``name``: ordered stages (``slot``, ``variant``,
        parameter values, optional domains), looked up with
        ``registry.get("pipelines", name)``. The paper's twelve data models
        are declared by the built-in plugin :mod:`driftlab.builtin.pipelines`,
        so reusing one of their names is a conflict.

    Example
    -------
    >>> @hookimpl
    ... def driftlab_pipelines():
    ...     return [PipelineSpec.from_dict({"name": "acme-default", "stages": [...]})]
    """


@hookspec
def driftlab_trackers() -> list[TrackerSpec]:
    """Declare experiment trackers (MLflow, ...).

    Returns
    -------
    list of driftlab.tracking.TrackerSpec
        Identified by ``name``: ``create(settings, run_dir) -> Tracker``
        where ``settings`` is the run's ``[tracking]`` section. A tracker
        receives the resolved config at the start, each finished cell's
        metrics, and the summary and report files at the end; the run
        directory stays the source of truth. ``extra`` names the driftlab
        extra that installs its dependencies.

    Example
    -------
    >>> @hookimpl
    ... def driftlab_trackers():
    ...     return [TrackerSpec(name="stdout", doc="print metrics", create=PrintTracker)]
    """
