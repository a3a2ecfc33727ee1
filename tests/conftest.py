"""Shared pytest fixtures.

Zenodo-layout copies of Raw-Microscopy and Raw-Drone are generated once per
session (read-only: tests that damage a copy make their own with
:func:`tests.fixtures_zenodo.make_microscopy` / ``make_drone`` in ``tmp_path``).
"""

from __future__ import annotations

import pytest

from tests.fixtures_zenodo import DroneFixture, MicroscopyFixture, make_drone, make_microscopy


@pytest.fixture(scope="session")
def microscopy_copy(tmp_path_factory) -> MicroscopyFixture:
    """Raw-Microscopy in the Zenodo layout: 256x256 crops, 7 levels, 18 labels."""
    return make_microscopy(tmp_path_factory.mktemp("zenodo-microscopy"))


@pytest.fixture(scope="session")
def drone_copy(tmp_path_factory) -> DroneFixture:
    """Raw-Drone in the Zenodo layout: 3 frames x 2 tiles of 256x256, 7 levels."""
    return make_drone(tmp_path_factory.mktemp("zenodo-drone"))


@pytest.fixture(scope="session")
def ray_instance():
    """A real local Ray instance with 2 CPUs, started once per session (skips without ray)."""
    ray = pytest.importorskip("ray", reason="the driftlab[ray] extra is not installed")
    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR")
    yield ray
    ray.shutdown()
