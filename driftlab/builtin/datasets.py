"""Built-in plugin: the reference raw datasets and generic raw folders.

Raw-Microscopy and Raw-Drone (Oala et al., TMLR 2023; Zenodo DOI
10.5281/zenodo.5235536) read a local copy in the record's layout; ``raw-folder``
opens any folder of raw files with a labels CSV or a masks folder.
"""

from __future__ import annotations

from driftlab.datasets.base import DatasetSpec
from driftlab.datasets.drone import DRONE
from driftlab.datasets.folder import RAW_FOLDER
from driftlab.datasets.microscopy import MICROSCOPY
from driftlab.hookspecs import hookimpl


@hookimpl
def driftlab_datasets() -> list[DatasetSpec]:
    """``raw-microscopy``, ``raw-drone`` and ``raw-folder``."""
    return [MICROSCOPY, DRONE, RAW_FOLDER]
