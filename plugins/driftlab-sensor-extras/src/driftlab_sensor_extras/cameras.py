"""Camera profile of the Raspberry Pi Camera Module v2 (Sony IMX219).

All numbers come from the camera tuning file that Raspberry Pi publishes with
libcamera, ``src/ipa/rpi/vc4/data/imx219.json`` (github.com/raspberrypi/libcamera,
BSD-2-Clause), and from the Linux ``imx219`` driver:

* bit depth 10 and CFA ``RGGB``: the driver's native media-bus format
  ``MEDIA_BUS_FMT_SRGGB10_1X10`` without flips (a horizontal and/or vertical
  flip turns it into GRBG, GBRG or BGGR; use ``profile.replace(cfa=...)``);
* black level: ``rpi.black_level`` = 4096 on libcamera's 16-bit scale, i.e.
  64 DN of 10 bit, 64 / 1023 of the white level;
* white balance at daylight: the ``rpi.awb`` colour-temperature curve at
  5716 K gives normalised R/G = 0.5712 and B/G = 0.7017, and libcamera's AWB
  sets gain = sensitivity / ratio with ``sensitivity_r = sensitivity_b = 1.05``:
  R 1.05 / 0.5712, G 1, B 1.05 / 0.7017;
* colour matrix: the ``rpi.ccm`` entry for 5858 K (camera RGB after white
  balance to linear sRGB; its rows sum to 1).

These are Raspberry Pi's calibration of the module, i.e. typical values for a
unit of that model, not a calibration of any particular unit. The tuning file
gives no conversion gain in DN per electron, so ``gain`` and ``read_noise``
are left unset.
"""

from __future__ import annotations

from driftlab.camera import CameraParams

__all__ = ["IMX219_RPI_V2", "PROFILES"]

IMX219_RPI_V2 = CameraParams(
    name="rpi-cam-v2-imx219",
    cfa="RGGB",
    bit_depth=10,
    black_level=(64 / 1023,) * 4,
    white_balance=(1.05 / 0.5712, 1.0, 1.05 / 0.7017),
    color_matrix=(
        (2.32392, -0.88421, -0.43971),
        (-0.63821, 2.58348, -0.94527),
        (-0.28541, -0.54112, 1.82653),
    ),
    description=(
        "Raspberry Pi Camera Module v2, Sony IMX219, 10-bit RGGB (no flips); black level "
        "64 DN, daylight (~5700-5900 K) white balance and colour matrix from Raspberry Pi's "
        "libcamera tuning file src/ipa/rpi/vc4/data/imx219.json (typical for the module, "
        "not a per-unit calibration). Its lens shading is strong: radial fit of the tuning's "
        "luminance table k1 = 2.2, k2 = 0.07 (see the driftlab-sensor-extras README)"
    ),
)

PROFILES: tuple[CameraParams, ...] = (IMX219_RPI_V2,)
