"""Severity tables of the two corruption families, and the CIFAR-10-C corruption functions.

``imagenet-c``
    The tables of the ``imagecorruptions`` package (the ImageNet-C release of
    Hendrycks & Dietterich, ICLR 2019; Michaelis et al. 2019). The corruptions
    themselves are the library's (:mod:`driftlab.corruptions.imagenet_c`, on
    8-bit views); the numbers here document what it applies.
``cifar-c``
    The tables of ``make_cifar_c.py`` in Hendrycks & Dietterich's release
    (github.com/hendrycks/robustness, ``ImageNet-C/create_c/make_cifar_c.py``),
    much milder, which the code of Oala et al. (TMLR 2023) applied to float
    views in [0, 1]. Applied by :class:`TableCorruption` with the kernels of
    :mod:`driftlab.corruptions.kernels` (float, no 8-bit round trip, except
    JPEG).

Lengths (blur sigmas, radii, displacements) are in pixels of the view. For
``elastic_transform`` the CIFAR-10-C table gives fractions of its 32-pixel
image side; they are listed here multiplied by 32, in pixels, as the paper's
code applied them to its 256-pixel crops. ``zoom_blur`` lists the end and step
of ``numpy.arange(1, max_zoom, step)``.
"""

from __future__ import annotations

import attrs
import numpy as np

from driftlab.corruptions.base import CorruptionError, SeverityTable
from driftlab.corruptions.kernels import KERNELS

__all__ = [
    "CIFAR_C",
    "CIFAR_C_REFERENCE",
    "FAMILY_REFERENCES",
    "IMAGENET_C",
    "IMAGENET_C_REFERENCE",
    "PARAMETERS",
    "TableCorruption",
    "cifar_c_table",
    "family_parameters",
    "parameter_names",
    "table_rows",
]

IMAGENET_C_REFERENCE = (
    "Hendrycks & Dietterich, ICLR 2019 (ImageNet-C severity tables, imagecorruptions package)"
)
CIFAR_C_REFERENCE = (
    "Hendrycks & Dietterich, ICLR 2019 (CIFAR-10-C severity tables, make_cifar_c.py), as "
    "applied by Oala et al., TMLR 2023"
)

FAMILY_REFERENCES = {"imagenet-c": IMAGENET_C_REFERENCE, "cifar-c": CIFAR_C_REFERENCE}

PARAMETERS: dict[str, tuple[tuple[str, ...], str]] = {
    "gaussian_noise": (("sigma",), "fraction of full scale"),
    "shot_noise": (("photons",), "photons at full scale"),
    "impulse_noise": (("amount",), "fraction of samples"),
    "speckle_noise": (("sigma",), "relative"),
    "gaussian_blur": (("sigma",), "px"),
    "glass_blur": (("sigma", "max_delta", "iterations"), "px, px, passes"),
    "defocus_blur": (("radius", "alias_blur"), "px"),
    "motion_blur": (("radius", "sigma"), "px"),
    "zoom_blur": (("max_zoom", "step"), "zoom factor"),
    "snow": (
        ("loc", "scale", "zoom", "threshold", "blur_radius", "blur_sigma", "blend"),
        "layer mean, spread, zoom, threshold, px, px, weight",
    ),
    "frost": (("image_weight", "frost_weight"), "weights"),
    "fog": (("strength", "decay"), "haze strength, fractal decay"),
    "brightness": (("shift",), "HSV value"),
    "contrast": (("factor",), "scale of deviations"),
    "elastic_transform": (("alpha", "sigma", "affine"), "px"),
    "pixelate": (("factor",), "size fraction"),
    "jpeg_compression": (("quality",), "JPEG quality"),
    "spatter": (
        ("loc", "scale", "sigma", "threshold", "intensity", "mud"),
        "layer mean, spread, px, threshold, strength, 0 water / 1 mud",
    ),
    "saturate": (("scale", "offset"), "HSV saturation"),
}
"""Parameter names and units of each corruption's table rows (see :func:`parameter_names`)."""

_FAMILY_PARAMETERS: dict[str, dict[str, tuple[tuple[str, ...], str]]] = {
    "imagenet-c": {
        "elastic_transform": (
            ("alpha",),
            "px; the smoothing sigma is 1% and the displacement 0.5% of the image side",
        ),
    },
}


def parameter_names(name: str, family: str) -> tuple[tuple[str, ...], str]:
    """Names and unit of the parameters in ``family``'s rows for corruption ``name``."""
    return _FAMILY_PARAMETERS.get(family, {}).get(name, PARAMETERS[name])


# ImageNet-C, as in imagecorruptions 1.1 (corruptions.py); elastic_transform lists
# its alpha (sigma is 1% and the displacement 0.5% of the image side there).
IMAGENET_C: dict[str, tuple[tuple[object, ...], ...]] = {
    "gaussian_noise": ((0.08,), (0.12,), (0.18,), (0.26,), (0.38,)),
    "shot_noise": ((60,), (25,), (12,), (5,), (3,)),
    "impulse_noise": ((0.03,), (0.06,), (0.09,), (0.17,), (0.27,)),
    "speckle_noise": ((0.15,), (0.2,), (0.35,), (0.45,), (0.6,)),
    "gaussian_blur": ((1,), (2,), (3,), (4,), (6,)),
    "glass_blur": ((0.7, 1, 2), (0.9, 2, 1), (1, 2, 3), (1.1, 3, 2), (1.5, 4, 2)),
    "defocus_blur": ((3, 0.1), (4, 0.5), (6, 0.5), (8, 0.5), (10, 0.5)),
    "motion_blur": ((10, 3), (15, 5), (15, 8), (15, 12), (20, 15)),
    "zoom_blur": ((1.11, 0.01), (1.16, 0.01), (1.21, 0.02), (1.26, 0.02), (1.31, 0.03)),
    "snow": (
        (0.1, 0.3, 3, 0.5, 10, 4, 0.8),
        (0.2, 0.3, 2, 0.5, 12, 4, 0.7),
        (0.55, 0.3, 4, 0.9, 12, 8, 0.7),
        (0.55, 0.3, 4.5, 0.85, 12, 8, 0.65),
        (0.55, 0.3, 2.5, 0.85, 12, 12, 0.55),
    ),
    "frost": ((1, 0.4), (0.8, 0.6), (0.7, 0.7), (0.65, 0.7), (0.6, 0.75)),
    "fog": ((1.5, 2), (2.0, 2), (2.5, 1.7), (2.5, 1.5), (3.0, 1.4)),
    "brightness": ((0.1,), (0.2,), (0.3,), (0.4,), (0.5,)),
    "contrast": ((0.4,), (0.3,), (0.2,), (0.1,), (0.05,)),
    "elastic_transform": ((12.5,), (16.25,), (21.25,), (25.0,), (30.0,)),
    "pixelate": ((0.6,), (0.5,), (0.4,), (0.3,), (0.25,)),
    "jpeg_compression": ((25,), (18,), (15,), (10,), (7,)),
    "spatter": (
        (0.65, 0.3, 4, 0.69, 0.6, 0),
        (0.65, 0.3, 3, 0.68, 0.6, 0),
        (0.65, 0.3, 2, 0.68, 0.5, 0),
        (0.65, 0.3, 1, 0.65, 1.5, 1),
        (0.67, 0.4, 1, 0.65, 1.5, 1),
    ),
    "saturate": ((0.3, 0), (0.1, 0), (2, 0), (5, 0.1), (20, 0.2)),
}
"""ImageNet-C parameters per corruption, one row per severity 1..5."""

_CIFAR_SIDE = 32  # make_cifar_c.py gives elastic_transform as fractions of its image side

CIFAR_C: dict[str, tuple[tuple[object, ...], ...]] = {
    "gaussian_noise": ((0.04,), (0.06,), (0.08,), (0.09,), (0.10,)),
    "shot_noise": ((500,), (250,), (100,), (75,), (50,)),
    "impulse_noise": ((0.01,), (0.02,), (0.03,), (0.05,), (0.07,)),
    "speckle_noise": ((0.06,), (0.1,), (0.12,), (0.16,), (0.2,)),
    "gaussian_blur": ((0.4,), (0.6,), (0.7,), (0.8,), (1.0,)),
    "glass_blur": ((0.05, 1, 1), (0.25, 1, 1), (0.4, 1, 1), (0.25, 1, 2), (0.4, 1, 2)),
    "defocus_blur": ((0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1, 0.2), (1.5, 0.1)),
    "motion_blur": ((6, 1), (6, 1.5), (6, 2), (8, 2), (9, 2.5)),
    "zoom_blur": ((1.06, 0.01), (1.11, 0.01), (1.16, 0.01), (1.21, 0.01), (1.26, 0.01)),
    "snow": (
        (0.1, 0.2, 1, 0.6, 8, 3, 0.95),
        (0.1, 0.2, 1, 0.5, 10, 4, 0.9),
        (0.15, 0.3, 1.75, 0.55, 10, 4, 0.9),
        (0.25, 0.3, 2.25, 0.6, 12, 6, 0.85),
        (0.3, 0.3, 1.25, 0.65, 14, 12, 0.8),
    ),
    "frost": ((1, 0.2), (1, 0.3), (0.9, 0.4), (0.85, 0.4), (0.75, 0.45)),
    "fog": ((0.2, 3), (0.5, 3), (0.75, 2.5), (1, 2), (1.5, 1.75)),
    "brightness": ((0.05,), (0.1,), (0.15,), (0.2,), (0.3,)),
    "contrast": ((0.75,), (0.5,), (0.4,), (0.3,), (0.15,)),
    "elastic_transform": tuple(
        tuple(round(_CIFAR_SIDE * f, 6) for f in row)
        for row in (
            (0, 0, 0.08),
            (0.05, 0.2, 0.07),
            (0.08, 0.06, 0.06),
            (0.1, 0.04, 0.05),
            (0.1, 0.03, 0.03),
        )
    ),
    "pixelate": ((0.95,), (0.9,), (0.85,), (0.75,), (0.65,)),
    "jpeg_compression": ((80,), (65,), (58,), (50,), (40,)),
    "spatter": (
        (0.62, 0.1, 0.7, 0.7, 0.5, 0),
        (0.65, 0.1, 0.8, 0.7, 0.5, 0),
        (0.65, 0.3, 1, 0.69, 0.5, 0),
        (0.65, 0.1, 0.7, 0.69, 0.6, 1),
        (0.65, 0.1, 0.5, 0.68, 0.6, 1),
    ),
    "saturate": ((0.3, 0), (0.1, 0), (1.5, 0), (2, 0.1), (2.5, 0.2)),
}
"""CIFAR-10-C parameters per corruption, one row per severity 1..5 (lengths in pixels)."""

_TABLES = {"imagenet-c": IMAGENET_C, "cifar-c": CIFAR_C}


def table_rows(name: str, family: str) -> tuple[tuple[object, ...], ...]:
    """Rows (severities 1..5) of a built-in table.

    Raises
    ------
    CorruptionError
        Unknown family or a corruption the family does not define.
    """
    table = _TABLES.get(family)
    if table is None:
        raise CorruptionError(
            f"unknown corruption family {family!r}; built-in families: {', '.join(_TABLES)}"
        )
    if name not in table:
        raise CorruptionError(f"family {family!r} defines no corruption {name!r}")
    return table[name]


def family_parameters(family: str) -> dict[str, dict[int, dict[str, object]]]:
    """Every built-in corruption's parameters at each severity, in one family.

    Parameters
    ----------
    family : {"imagenet-c", "cifar-c"}

    Returns
    -------
    dict
        ``{corruption: {severity: {parameter: value}}}``, severities 1..5.

    Raises
    ------
    CorruptionError
        Unknown family.
    """
    if family not in _TABLES:
        raise CorruptionError(
            f"unknown corruption family {family!r}; built-in families: {', '.join(_TABLES)}"
        )
    out: dict[str, dict[int, dict[str, object]]] = {}
    for name, rows in _TABLES[family].items():
        names = parameter_names(name, family)[0]
        out[name] = {k: dict(zip(names, row, strict=True)) for k, row in enumerate(rows, start=1)}
    return out


def _as_hwc(view: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(view, dtype=np.float64).transpose(1, 2, 0))


@attrs.frozen
class TableCorruption:
    """Corruption function applying one severity-table row with a float kernel.

    Implements the function signature of :mod:`driftlab.corruptions.base`:
    the view goes to ``(H, W, 3)`` float64, the kernel of
    :data:`driftlab.corruptions.kernels.KERNELS` runs with the row's
    parameters and a generator ``numpy.random.default_rng(seed)``, and the
    result is clipped to [0, 1] and returned as ``(3, H, W)`` float32. A
    class, not a closure, so that declarations pickle to worker processes.

    Parameters
    ----------
    name : str
        Kernel name (a key of ``KERNELS``).
    rows : tuple of tuples
        Parameters at severities 1..5, in the order of :data:`PARAMETERS`.
    """

    name: str
    rows: tuple[tuple[object, ...], ...]

    def __call__(self, view: np.ndarray, severity: int, seed: int) -> np.ndarray:
        """Corrupt ``view`` (``(3, H, W)`` float in [0, 1]); see the class docstring."""
        kernel = KERNELS[self.name]
        names = PARAMETERS[self.name][0]
        parameters = dict(zip(names, self.rows[int(severity) - 1], strict=True))
        rng = np.random.default_rng(int(seed))
        out = kernel(_as_hwc(view), rng, **parameters)
        out = np.clip(out, 0.0, 1.0)
        return np.ascontiguousarray(out.transpose(2, 0, 1)).astype(np.float32)


def cifar_c_table(name: str) -> SeverityTable:
    """The ``cifar-c`` :class:`SeverityTable` of a built-in corruption."""
    rows = table_rows(name, "cifar-c")
    names, unit = PARAMETERS[name]
    return SeverityTable(
        family="cifar-c",
        parameters=names,
        values=rows,
        function=TableCorruption(name, rows),
        unit=unit,
        reference=CIFAR_C_REFERENCE,
    )
