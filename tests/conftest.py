"""Shared pytest fixtures.

Zenodo-layout copies of Raw-Microscopy and Raw-Drone are generated once per
session (read-only: tests that damage a copy make their own with
:func:`tests.fixtures_zenodo.make_microscopy` / ``make_drone`` in ``tmp_path``).
"""

from __future__ import annotations

import os

import pytest

from tests.fixtures_zenodo import DroneFixture, MicroscopyFixture, make_drone, make_microscopy


@pytest.fixture(autouse=True)
def no_terminal_width(monkeypatch):
    """CLI tables printed in tests are not wrapped to a width the runner happens to set
    (pytest-xdist workers set ``COLUMNS=80``): without ``COLUMNS`` and a terminal,
    :func:`driftlab.cli.common.echo_table` prints one line per row."""
    monkeypatch.delenv("COLUMNS", raising=False)


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


@pytest.fixture(scope="session", autouse=True)
def signatures_follow_the_schema():
    """Every signature any test writes (through ``write_signature``, which the
    forensics runner uses) must also validate against ``docs/signature.schema.json``;
    ``write_signature`` itself runs driftlab's own validator before writing."""
    import json
    from pathlib import Path

    import driftlab.forensics.signature as signature_module

    written: list[dict] = []
    try:
        import jsonschema  # in the 'test' extra
    except ImportError:  # pragma: no cover - the test extra installs it
        yield written
        return

    schema = json.loads(
        (Path(__file__).resolve().parents[1] / "docs" / "signature.schema.json").read_text()
    )
    own = signature_module.validate_signature

    def both(sig, where="signature"):
        own(sig, where)
        jsonschema.validate(json.loads(json.dumps(sig)), schema)
        written.append(sig)
        return sig

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(signature_module, "validate_signature", both)
        yield written


def pytest_configure(config):
    """Under pytest-xdist, share the cores between the test processes.

    Each process would otherwise start one torch (OpenMP) thread per core, so
    ``-n 15`` on 16 cores runs about 240 spinning threads. Each worker gets
    ``cores // workers`` threads (at least one), also for the processes it
    starts (``OMP_NUM_THREADS``).
    """
    count = os.environ.get("PYTEST_XDIST_WORKER_COUNT")
    if not count or not os.environ.get("PYTEST_XDIST_WORKER"):
        return
    threads = max(1, (os.cpu_count() or 1) // max(1, int(count)))
    os.environ["OMP_NUM_THREADS"] = str(threads)
    import torch

    torch.set_num_threads(threads)
