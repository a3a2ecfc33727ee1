"""The identity corruption: the clean reference column of a corruption table."""

from __future__ import annotations

import numpy as np

from driftlab.corruptions.base import CorruptionSpec

__all__ = ["IDENTITY", "identity"]


def identity(view: np.ndarray, severity: int, seed: int) -> np.ndarray:
    """Return the view unchanged (as a float32 copy).

    Parameters
    ----------
    view : numpy.ndarray
        ``(3, H, W)`` float in [0, 1].
    severity : int
        Ignored: identity is the same at every severity, so that the paper's
        tables (severities 1, 3, 5) have a clean cell in every column.
    seed : int
        Ignored (the identity draws no random numbers).

    Returns
    -------
    numpy.ndarray
        ``(3, H, W)`` float32, equal to ``view``. The view is not quantised
        to 8 bits, unlike the ImageNet-C corruptions.
    """
    return np.array(view, dtype=np.float32, copy=True)


IDENTITY = CorruptionSpec(
    name="identity",
    family="none",
    doc="no corruption: the view as rendered (severity ignored)",
    function=identity,
    reference="Oala et al., TMLR 2023 (clean column of the corruption protocol)",
)
