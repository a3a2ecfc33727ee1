"""Shared facts of the Raw-Microscopy and Raw-Drone Zenodo layout.

Both datasets (Oala, Aversa et al., TMLR 2023; Zenodo DOI
10.5281/zenodo.5235536, CC BY 4.0) store each light level in a folder
``raw_scaleNNN`` where ``NNN`` is the intensity in percent of the full
capture. Nothing is downloaded: loaders read a local copy and tell the user
what is missing and where to get it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from driftlab.datasets.base import DatasetError, DatasetSpec
from driftlab.datasets.files import Problems, RawItem

__all__ = [
    "DOI",
    "LEVELS",
    "REFERENCE",
    "check_levels",
    "dataset_root",
    "level_folder",
    "missing",
]

DOI = "10.5281/zenodo.5235536"
REFERENCE = (
    "Oala, Aversa et al., 'Data Models for Dataset Drift Controls in Machine Learning With "
    f"Optical Images', TMLR 2023; data: Zenodo DOI {DOI} (CC BY 4.0)"
)

LEVELS: dict[float, str] = {
    1.0: "raw_scale100",
    0.75: "raw_scale075",
    0.5: "raw_scale050",
    0.25: "raw_scale025",
    0.1: "raw_scale010",
    0.05: "raw_scale005",
    0.01: "raw_scale001",
}
"""Intensity (fraction of the full capture) -> folder name of the real captures."""


def level_folder(name: str, intensity: float) -> str:
    """Folder name of a captured intensity level.

    Parameters
    ----------
    name : str
        Dataset name, for the error message.
    intensity : float
        Light level in (0, 1].

    Returns
    -------
    str
        ``raw_scale100`` ... ``raw_scale001``.

    Raises
    ------
    DatasetError
        If ``intensity`` is not one of the seven captured levels (the
        message lists them).
    """
    for level, folder in LEVELS.items():
        if abs(float(intensity) - level) < 1e-9:
            return folder
    available = ", ".join(f"{level:g}" for level in LEVELS)
    raise DatasetError(
        f"{name}: intensity {intensity:g} was not captured; available levels: {available}"
    )


def missing(path: Path, dataset: str, expected: str) -> str:
    """Message for a missing part of the Zenodo layout, with where to get it.

    Parameters
    ----------
    path : pathlib.Path
        What was looked for.
    dataset : str
        ``Raw-Microscopy`` or ``Raw-Drone``.
    expected : str
        What should be there (e.g. ``'*.tiff images'``).
    """
    return (
        f"{path}: not found (expected {expected}). {dataset} is not downloaded by driftlab: get "
        f"it from Zenodo, DOI {DOI}, and unpack it so that this path exists"
    )


def dataset_root(data_root: Path | None, sub: str, markers: tuple[str, ...], title: str) -> Path:
    """Locate the ``microscopy`` or ``drone`` folder of a local copy.

    Parameters
    ----------
    data_root : pathlib.Path
        Either the folder holding ``sub`` (the unpacked Zenodo record) or
        ``sub`` itself.
    sub : str
        ``microscopy`` or ``drone``.
    markers : tuple of str
        Entries that identify ``sub`` itself (``images``, ``labels`` ...).
    title : str
        Dataset title for messages.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    DatasetError
        If neither ``data_root/sub`` nor ``data_root`` has the layout.
    """
    if data_root is None:
        raise DatasetError(f"{title}: needs --data-root (a local copy of Zenodo DOI {DOI})")
    data_root = Path(data_root)
    if not data_root.is_dir():
        raise DatasetError(missing(data_root, title, f"a folder holding {sub}/"))
    if (data_root / sub).is_dir():
        return data_root / sub
    if data_root.name == sub or all((data_root / m).exists() for m in markers):
        return data_root
    raise DatasetError(missing(data_root / sub, title, f"the {sub}/ folder of the record"))


def check_levels(
    spec: DatasetSpec,
    data_root: Path,
    scan: Callable[[DatasetSpec, Path, float, bool], tuple[list[RawItem], Problems]],
) -> list[str]:
    """Run a layout scan at every captured level and collect its problems.

    Parameters
    ----------
    spec : DatasetSpec
        Dataset being checked.
    data_root : pathlib.Path
        Local copy.
    scan : callable
        ``scan(spec, data_root, intensity, skip_bad) -> (items, problems)``;
        lists files and parses labels without reading pixels.

    Returns
    -------
    list of str
        Problems in order of discovery, each once.
    """
    found: list[str] = []
    for level in spec.intensities:
        try:
            _, problems = scan(spec, data_root, level, True)
        except DatasetError as exc:
            found.append(str(exc))
            continue
        found.extend(problems.skipped)
    return list(dict.fromkeys(found))
