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
