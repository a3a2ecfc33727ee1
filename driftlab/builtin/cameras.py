"""Built-in plugin: camera profiles of the reference data.

Numbers for Raw-Microscopy and Raw-Drone are the authors' (Oala et al., TMLR
2023; Zenodo DOI 10.5281/zenodo.5235536); openISP's come from its source
configuration (see ``shared/data/openisp/README.md``).
"""

from __future__ import annotations

from driftlab.camera import CameraParams
from driftlab.hookspecs import hookimpl

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
    gain=8.448,
    description=(
        "DJI Mavic 2 Pro (Hasselblad L1D-20c, Sony IMX183), 12-bit left-justified to 16 bit, "
        "ISO 200; parameters from Oala et al. (TMLR 2023)"
    ),
)


@hookimpl
def driftlab_camera_profiles() -> list[CameraParams]:
    """The neutral profile and the sensors of the reference data."""
    return [IDENTITY, OPENISP, RAW_MICROSCOPY, RAW_DRONE]
