"""Built-in plugin: simulated raw data.

* stages ``illumination.poisson``, ``illumination.binomial`` and
  ``illumination.gaussian`` (lower light with shot and read noise);
* datasets ``bccd-cells`` and ``bccd-wbc`` (BCCD photographs unprocessed to
  raw), ``embedded-smear`` and ``embedded-aerial`` (generated from a seed);
* the camera profiles those datasets are rendered with.
"""

from __future__ import annotations

from driftlab.camera import CameraParams
from driftlab.datasets.base import DatasetSpec
from driftlab.datasets.bccd import BCCD_CAMERA, BCCD_CELLS, BCCD_WBC
from driftlab.datasets.embedded_aerial import AERIAL_CAMERA, EMBEDDED_AERIAL
from driftlab.datasets.embedded_smear import EMBEDDED_SMEAR, SMEAR_CAMERA
from driftlab.hookspecs import hookimpl
from driftlab.stages.base import StageSpec
from driftlab.stages.illumination import STAGES as ILLUMINATION_STAGES


@hookimpl
def driftlab_stages() -> list[StageSpec]:
    """The lower-illumination simulators (slot ``illumination``)."""
    return list(ILLUMINATION_STAGES)


@hookimpl
def driftlab_datasets() -> list[DatasetSpec]:
    """``embedded-smear``, ``embedded-aerial``, ``bccd-cells`` and ``bccd-wbc``."""
    return [EMBEDDED_SMEAR, EMBEDDED_AERIAL, BCCD_CELLS, BCCD_WBC]


@hookimpl
def driftlab_camera_profiles() -> list[CameraParams]:
    """``embedded-smear``, ``embedded-aerial`` and ``bccd-unprocessed``."""
    return [SMEAR_CAMERA, AERIAL_CAMERA, BCCD_CAMERA]
