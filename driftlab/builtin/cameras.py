"""Built-in plugin: camera profiles of the reference data.

Numbers for Raw-Microscopy and Raw-Drone are the authors' (Oala et al., TMLR
2023; Zenodo DOI 10.5281/zenodo.5235536); openISP's come from its source
configuration (see ``shared/data/openisp/README.md``).
"""

from __future__ import annotations

from driftlab.camera import CameraParams
from driftlab.hookspecs import hookimpl
from driftlab.sensor import electrons_to_dn

DRONE_GAIN = 8.448
"""Raw-Drone conversion gain, DN per electron on the 16-bit scale (Oala et al., TMLR 2023)."""
DRONE_READ_NOISE_ELECTRONS = 2.5
"""Read noise of the Sony IMX183 in electrons (standard deviation).

Sensors built on the IMX183 are specified at about 1.6 to 3 e- of read noise,
lower at higher analogue gain (e.g. the ZWO ASI183 camera's published curve);
at ISO 200, near the sensor's base gain, 2-3 e- applies (issue 11.6). 2.5 e-
is the middle of that range: an assumption, not a calibration of the
authors' drone. In DN of the 16-bit scale it is ``2.5 * 8.448 = 21.1 DN``."""

IDENTITY = CameraParams(
    name="identity",
    cfa="RGGB",
    bit_depth=16,
    description="neutral: no black level, unit gains, identity colour matrix",
)

OPENISP = CameraParams(
    name="openisp",
    cfa="RGGB",
    bit_depth=10,
    black_level=(0.0, 0.0, 0.0, 0.0),
    white_balance=(1860 / 1024, 1.0, 1280 / 1024),
    description="openISP test sensor: 10-bit RGGB, as-shot gains from its config, no matrix",
)

RAW_MICROSCOPY = CameraParams(
    name="raw-microscopy",
    cfa="RGGB",
    bit_depth=16,
    black_level=(9.834e-06,) * 4,
    white_balance=(-0.6567, 1.9673, 3.5304),
    color_matrix=(-2.0338, 0.0933, 0.4157, -0.0286, 2.6464, -0.0574, -0.5516, -0.0947, 2.9308),
    # The authors fitted gains and matrix jointly; the red gain is negative and
    # the matrix entries leave the default domains, so widen them explicitly.
    domains={"white_balance.gains": [-1.0, 8.0]},
    description=(
        "PCO edge 5.5 sCMOS bright-field microscope, 16-bit TIFF; black level, gains and "
        "matrix fitted by Oala et al. (TMLR 2023)"
    ),
)

RAW_DRONE = CameraParams(
    name="raw-drone",
    cfa="RGGB",
    bit_depth=16,
    black_level=(0.0625, 0.0626, 0.0625, 0.0626),
    white_balance=(2.86653646, 1.0, 1.73079425),
    color_matrix=(
        1.50768983,
        -0.33571374,
        -0.17197604,
        -0.23048614,
        1.70698738,
        -0.47650126,
        -0.03119153,
        -0.32803956,
        1.35923111,
    ),
    gain=DRONE_GAIN,
    read_noise=electrons_to_dn(DRONE_READ_NOISE_ELECTRONS, DRONE_GAIN),
    description=(
        "DJI Mavic 2 Pro (Hasselblad L1D-20c, Sony IMX183), 12-bit left-justified to 16 bit, "
        "ISO 200; black level, gains, matrix and gain (8.448 DN/e-) from Oala et al. (TMLR "
        "2023); read noise 2.5 e- (21.1 DN) assumed from IMX183 specifications (1.6-3 e-)"
    ),
)


@hookimpl
def driftlab_camera_profiles() -> list[CameraParams]:
    """The neutral profile and the sensors of the reference data."""
    return [IDENTITY, OPENISP, RAW_MICROSCOPY, RAW_DRONE]
