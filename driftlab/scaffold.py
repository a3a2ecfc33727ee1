"""``driftlab new-plugin NAME``: write a working plugin distribution to start from.

The generated distribution has a stage with both forms (a per-CFA-site
pedestal subtraction written with the public :mod:`driftlab.stages.filters`
helpers), a camera profile, a named pipeline that uses both, its
``driftlab`` entry point, and tests that use the :mod:`driftlab.testing`
pytest plugin. It passes its own tests and ``driftlab verify`` untouched,
installed (``pip install -e NAME``) or not (``driftlab -p PACKAGE.plugin``).
"""

from __future__ import annotations

import keyword
import re
from pathlib import Path

from driftlab.errors import ConfigError

__all__ = ["package_name", "write_plugin"]

_NAME = re.compile(r"[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*")


def package_name(name: str) -> str:
    """The import package of distribution ``name`` (``acme-cam`` -> ``acme_cam``).

    Raises
    ------
    ConfigError
        ``name`` is not lower-case letters, digits and single ``-`` / ``_``
        separators starting with a letter, or is a Python keyword.
    """
    if not _NAME.fullmatch(name or ""):
        raise ConfigError(
            f"plugin name {name!r}: expected lower-case letters and digits separated by single "
            "'-' or '_', starting with a letter (e.g. 'acme-cam')"
        )
    package = name.replace("-", "_")
    if keyword.iskeyword(package):
        raise ConfigError(f"plugin name {name!r}: {package!r} is a Python keyword")
    return package


def _files(name: str, package: str) -> dict[str, str]:
    slot = f"{package}_pedestal"
    camera = f"{name}-cam"
    pipeline = f"{name}-default"
    return {
        "pyproject.toml": f'''[build-system]
requires = ["setuptools>=77"]
build-backend = "setuptools.build_meta"

[project]
name = "{name}"
version = "0.1.0"
description = "driftlab plugin: a pedestal stage, the {camera} camera profile and a pipeline."
requires-python = ">=3.10"
dependencies = ["driftlab>=0.1", "numpy>=1.24", "torch>=2.1"]

[project.optional-dependencies]
test = ["pytest>=7.4"]

[project.entry-points.driftlab]
{package} = "{package}.plugin"

[tool.setuptools.packages.find]
where = ["src"]

[tool.pytest.ini_options]
testpaths = ["tests"]
pythonpath = ["src"]
''',
        "README.md": f"""# {name}

A driftlab plugin made by `driftlab new-plugin {name}`:

* stage `{slot}.sites`: subtracts a per-CFA-site pedestal (both forms);
* camera profile `{camera}`;
* pipeline `{pipeline}`: the paper's `bi,s,ga` with the pedestal stage first.

```sh
pip install -e .                 # or: driftlab -p {package}.plugin ...
python -m pytest -q              # the plugin's own tests
driftlab verify --plugin {package}
driftlab pipelines --show {pipeline}
```
""",
        f"src/{package}/__init__.py": f'"""driftlab plugin {name}."""\n',
        f"src/{package}/stages.py": f'''"""Stage ``{slot}.sites``: subtract a pedestal from each CFA site of the mosaic."""

from __future__ import annotations

import numpy as np
import torch

from driftlab.params import Domain, ParamSpec
from driftlab.stages.base import StageContext, StageSpec
from driftlab.stages.filters import merge_sites, merge_sites_torch, split_sites, split_sites_torch

PEDESTAL = ParamSpec(
    name="pedestal",
    shape=(4,),
    default=0.01,
    unit="fraction of the white level",
    domain=Domain(0.0, 0.05),
    doc="offset removed from each CFA site (row-major 2x2 order)",
)


def pedestal_static(x: np.ndarray, ctx: StageContext, *, pedestal: np.ndarray) -> np.ndarray:
    """``(H, W)`` float64 mosaic -> the same minus ``pedestal[site]`` (no clipping)."""
    planes = split_sites(x) - np.asarray(pedestal, dtype=x.dtype).reshape(4, 1, 1)
    return merge_sites(planes)


def pedestal_torch(x: torch.Tensor, ctx: StageContext, *, pedestal: torch.Tensor) -> torch.Tensor:
    """``(B, 1, H, W)`` differentiable form of :func:`pedestal_static`."""
    planes = split_sites_torch(x) - pedestal.to(x.dtype).reshape(1, 4, 1, 1)
    return merge_sites_torch(planes)


STAGES = [
    StageSpec(
        slot="{slot}",
        variant="sites",
        doc="subtract a per-CFA-site pedestal",
        params=(PEDESTAL,),
        static=pedestal_static,
        differentiable=pedestal_torch,
        input_kind="mosaic",
        output_kind="mosaic",
        reference="offset subtraction as for the black level (Oala et al., TMLR 2023, Sec. 3)",
    )
]
''',
        f"src/{package}/cameras.py": f'''"""Camera profile ``{camera}`` (replace the values with your sensor's calibration)."""

from __future__ import annotations

from driftlab.camera import CameraParams

CAMERA = CameraParams(
    name="{camera}",
    cfa="GRBG",
    bit_depth=12,
    black_level=(64 / 4095,) * 4,
    white_balance=(1.9, 1.0, 1.6),
    color_matrix=((1.6, -0.4, -0.2), (-0.3, 1.5, -0.2), (0.0, -0.5, 1.5)),
    description="example profile written by driftlab new-plugin",
)
''',
        f"src/{package}/plugin.py": f'''"""The driftlab plugin module (entry point ``{package}`` in the ``driftlab`` group)."""

from __future__ import annotations

from driftlab.camera import CameraParams
from driftlab.hookspecs import hookimpl
from driftlab.pipeline import PipelineSpec, get_pipeline
from driftlab.stages.base import StageSpec

from {package}.cameras import CAMERA
from {package}.stages import STAGES


@hookimpl
def driftlab_stages() -> list[StageSpec]:
    """``{slot}.sites``."""
    return list(STAGES)


@hookimpl
def driftlab_camera_profiles() -> list[CameraParams]:
    """``{camera}``."""
    return [CAMERA]


@hookimpl
def driftlab_pipelines() -> list[PipelineSpec]:
    """``{pipeline}``: the pedestal stage, then the paper's ``bi,s,ga``."""
    base = get_pipeline("bi,s,ga").to_dict()
    stages = [{{"slot": "{slot}", "variant": "sites"}}, *base["stages"]]
    return [PipelineSpec.from_dict({{"name": "{pipeline}", "stages": stages}})]
''',
        "tests/conftest.py": '''"""The driftlab.testing plugin gives the registry, raw-frame and tiny-run fixtures."""

pytest_plugins = ["driftlab.testing"]
''',
        "tests/test_plugin.py": f'''"""The plugin's contract: its stage verifies, its profile and pipeline register and run."""

from __future__ import annotations

import pytest

from driftlab.testing import assert_pipeline_renders, assert_stage_contract

PLUGIN = "{package}.plugin"


@pytest.fixture
def registry(driftlab_registry_for):
    return driftlab_registry_for(PLUGIN)


def test_stage_passes_the_stage_contract(registry):
    check = assert_stage_contract(registry, "{slot}.sites")
    assert check.max_abs_diff <= 1e-4


def test_camera_profile_is_registered(registry):
    camera = registry.camera("{camera}")
    assert camera.cfa == "GRBG" and camera.bit_depth == 12


def test_pipeline_renders_in_both_forms(registry, tiny_raw_frame):
    view = assert_pipeline_renders(registry, "{pipeline}", tiny_raw_frame, camera="{camera}")
    assert view.shape == (3, *tiny_raw_frame.shape)


def test_pipeline_runs_in_a_tiny_synthesis(registry, tiny_run):
    result = tiny_run(registry, train=["{pipeline}"], test=["{pipeline}", "bi,s,ga"])
    assert set(result.results["test_condition"]) >= {{"{pipeline}", "bi,s,ga"}}
''',
    }


def write_plugin(name: str, folder: str | Path = ".") -> Path:
    """Write the distribution ``name`` into ``folder/name``.

    Returns
    -------
    Path
        The distribution's folder.

    Raises
    ------
    ConfigError
        A bad name, or a target folder that exists and is not empty (nothing
        is overwritten).
    """
    package = package_name(name)
    root = Path(folder).expanduser() / name
    if root.exists() and any(root.iterdir()):
        raise ConfigError(f"{root} exists and is not empty; choose another name or folder")
    for relative, text in _files(name, package).items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root
