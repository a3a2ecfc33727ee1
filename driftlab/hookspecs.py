"""Hook specifications: the whole plugin interface of driftlab.

A plugin is a module (or object) with functions named like the hooks below,
decorated with :data:`hookimpl`, and advertised through the ``driftlab``
entry-point group of its distribution::

    [project.entry-points.driftlab]
    my_plugin = "my_package.driftlab_plugin"

Every hook takes no arguments and returns a list of *declarations* (attrs
instances). The built-in plugins in :mod:`driftlab.builtin` use these very
hooks. A name declared twice, by one or two plugins, is an error that names
both; a plugin that fails to import or raises inside a hook is reported by
name (``driftlab plugins``) and the others still load.
"""

from __future__ import annotations

from typing import Any

import pluggy

PROJECT_NAME = "driftlab"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def driftlab_stages() -> list[Any]:
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
def driftlab_camera_profiles() -> list[Any]:
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
def driftlab_datasets() -> list[Any]:
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
def driftlab_task_models() -> list[Any]:
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
def driftlab_corruptions() -> list[Any]:
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
def driftlab_attacks() -> list[Any]:
    """Declare attacks over ISP parameters.

    Returns
    -------
    list
        :class:`driftlab.attacks.base.AttackSpec` instances (unique
        ``name``, ``doc``, ``function(problem, space, settings)``,
        ``needs_gradients``): a search over stage parameters against a
        frozen task model, keeping every parameter inside its declared domain.
    """


@hookspec
def driftlab_trackers() -> list[Any]:
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
