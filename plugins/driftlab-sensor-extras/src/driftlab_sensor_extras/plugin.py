"""The driftlab plugin module, advertised in the ``driftlab`` entry-point group.

``pyproject.toml`` of this distribution declares::

    [project.entry-points.driftlab]
    sensor_extras = "driftlab_sensor_extras.plugin"

driftlab's registry loads this module and calls the two hooks below.
"""

from __future__ import annotations

from driftlab.camera import CameraParams
from driftlab.hookspecs import hookimpl
from driftlab.stages.base import StageSpec

from driftlab_sensor_extras import cameras, hot_pixel, lens_shading

__all__ = ["driftlab_camera_profiles", "driftlab_stages"]


@hookimpl
def driftlab_stages() -> list[StageSpec]:
    """``hot_pixel.median_replace``, ``hot_pixel.isolated`` and ``lens_shading.radial``."""
    return [*hot_pixel.STAGES, *lens_shading.STAGES]


@hookimpl
def driftlab_camera_profiles() -> list[CameraParams]:
    """The ``rpi-cam-v2-imx219`` profile (Raspberry Pi Camera Module v2)."""
    return list(cameras.PROFILES)
