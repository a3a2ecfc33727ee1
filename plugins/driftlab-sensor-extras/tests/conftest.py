"""Shared fixtures of the driftlab-sensor-extras tests.

These tests are about the *installed* plugin: discovery goes through the
``driftlab`` entry-point group of the installed distribution. When it is not
installed every test fails (it does not skip) and says how to install it.
Test modules reach the plugin only through the :func:`extras` fixture, so that
a missing installation gives that message instead of an import error.
"""

from __future__ import annotations

import importlib
import importlib.metadata as metadata
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

DISTRIBUTION = "driftlab-sensor-extras"
ENTRY_POINT = "sensor_extras"
INSTALL_COMMAND = "pip install -e plugins/driftlab-sensor-extras"

PLUGIN_DIR = Path(__file__).resolve().parents[1]
REPO_ROOT = PLUGIN_DIR.parents[1]
EXAMPLES = PLUGIN_DIR / "examples"
# real data lives beside the repository: <repo root>/../shared/data
OPENISP_FRAME = REPO_ROOT.parent / "shared" / "data" / "openisp" / "test_1920x1080_rggb_10bit.raw"


def installation_problem(distribution: str = DISTRIBUTION) -> str | None:
    """Why the plugin cannot be tested, or None when it is installed properly.

    Parameters
    ----------
    distribution : str
        Distribution name to look up (a parameter so that the check itself
        can be tested).

    Returns
    -------
    str or None
        A message that names the distribution and the install command.
    """
    try:
        dist = metadata.distribution(distribution)
    except metadata.PackageNotFoundError:
        return (
            f"the plugin distribution {distribution!r} is not installed in this environment; "
            f"run `{INSTALL_COMMAND}` from the driftlab repository root and run the tests again"
        )
    names = [ep.name for ep in dist.entry_points if ep.group == "driftlab"]
    if ENTRY_POINT not in names:
        return (
            f"{distribution!r} {dist.version} is installed but declares no {ENTRY_POINT!r} entry "
            f"point in the 'driftlab' group (found {names}); reinstall it with "
            f"`{INSTALL_COMMAND}`"
        )
    return None


@pytest.fixture(scope="session", autouse=True)
def require_installed() -> None:
    """Fail every test, with the install command, when the plugin is not installed."""
    problem = installation_problem()
    if problem is not None:
        pytest.fail(problem, pytrace=False)


@pytest.fixture(scope="session")
def examples_dir() -> Path:
    """The plugin's ``examples/`` folder with pipeline TOML files."""
    return EXAMPLES


@pytest.fixture(scope="session")
def check_installation():
    """The installation check itself, for testing its message."""
    return installation_problem


@pytest.fixture(scope="session")
def extras(require_installed: None) -> SimpleNamespace:
    """The plugin's modules: ``plugin``, ``hot_pixel``, ``lens_shading``, ``cameras``."""
    names = ("plugin", "hot_pixel", "lens_shading", "cameras")
    modules = {n: importlib.import_module(f"driftlab_sensor_extras.{n}") for n in names}
    return SimpleNamespace(**modules)


@pytest.fixture(scope="session")
def registry(require_installed: None):
    """A registry freshly loaded from the built-ins and the installed entry points."""
    from driftlab.registry import Registry

    return Registry.load()


@pytest.fixture(scope="session")
def openisp_raw() -> np.ndarray:
    """The real openISP frame, ``(1080, 1920)`` float64 in [0, 1]; skips when absent."""
    if not OPENISP_FRAME.is_file():
        pytest.skip(f"real frame not available: {OPENISP_FRAME}")
    raw = np.fromfile(OPENISP_FRAME, dtype="<u2").reshape(1080, 1920)
    return raw.astype(np.float64) / 1023.0
