"""driftlab-sensor-extras: extra raw-domain ISP stages and a camera profile for driftlab.

Stages (static numpy and differentiable torch forms, bit-identical in float64):

* ``hot_pixel.median_replace`` and ``hot_pixel.isolated``: hot-pixel correction
  with the 8 same-colour neighbours (:mod:`driftlab_sensor_extras.hot_pixel`);
* ``lens_shading.radial``: vignetting correction by a radial gain polynomial
  (:mod:`driftlab_sensor_extras.lens_shading`).

Camera profile ``rpi-cam-v2-imx219`` (:mod:`driftlab_sensor_extras.cameras`).
Installed, the distribution registers :mod:`driftlab_sensor_extras.plugin`
through the ``driftlab`` entry-point group; nothing needs importing by hand.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("driftlab-sensor-extras")
except PackageNotFoundError:  # imported from a source tree that is not installed
    __version__ = "unknown"

__all__ = ["__version__"]
