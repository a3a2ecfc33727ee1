"""A pytest plugin for driftlab plugin authors, in the spirit of pytest's ``pytester``.

Enable it in your plugin's ``tests/conftest.py``::

    pytest_plugins = ["driftlab.testing"]

and you get:

fixtures
    ``driftlab_registry_for`` -- a factory ``(*modules) -> Registry``: every
    installed plugin plus the given modules loaded in-process (a module that
    its installed entry point already registered is not loaded twice), so a
    plugin's tests pass whether or not it is installed;
    ``tiny_raw_frame`` -- a seeded ``(32, 48)`` float64 Bayer mosaic in [0, 1];
    ``tiny_run`` -- a factory running a few-second drift synthesis on the
    embedded data with your registry and pipelines, returning its result.

assertions
    :func:`assert_stage_contract` -- runs ``driftlab verify`` on one stage
    (static == differentiable to its tolerance, gradcheck, shapes, dtypes,
    finiteness, no in-place edits, the domain's corners) and fails with the
    checker's full explanation; :func:`assert_pipeline_renders` -- builds a
    pipeline in every form it has and checks the views agree.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from driftlab.registry import Registry

__all__ = [
    "assert_pipeline_renders",
    "assert_stage_contract",
    "driftlab_registry_for",
    "tiny_raw_frame",
    "tiny_run",
]


def _load(modules: Sequence[str]) -> Registry:
    installed = Registry.load()
    loaded = {p.module for p in installed.plugins}
    missing = [m for m in modules if m not in loaded]
    if not missing:
        return installed
    for name in missing:
        importlib.import_module(name)  # an import error surfaces here, with its traceback
    registry = Registry.load(extra=[(m, m) for m in missing])
    ours = [e for e in registry.errors if e.plugin in missing]
    if ours:
        raise AssertionError("; ".join(f"{e.plugin}: {e.message}" for e in ours))
    return registry


@pytest.fixture
def driftlab_registry_for() -> Callable[..., Registry]:
    """Factory: ``driftlab_registry_for("my_pkg.plugin") -> Registry`` with that plugin.

    Raises
    ------
    AssertionError
        The plugin failed to load or one of its hooks failed (the message
        is the registry's report for that plugin).
    """
    return lambda *modules: _load(modules)


@pytest.fixture
def tiny_raw_frame() -> np.ndarray:
    """A seeded ``(32, 48)`` float64 mosaic in [0, 1] with smooth content and noise."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:32, 0:48] / 48.0
    return np.clip(0.2 + 0.5 * x * (1 - y) + rng.normal(0, 0.02, (32, 48)), 0.0, 1.0)


@pytest.fixture
def tiny_run(tmp_path: Path) -> Callable[..., Any]:
    """Factory: ``tiny_run(registry, train=[...], test=[...]) -> SynthesisResult``.

    Trains a 4-wide CNN for one epoch on 40 generated blood-smear items
    (2 folds) under each ``train`` pipeline and tests it under each ``test``
    pipeline and under gaussian noise; takes a few seconds on a CPU.
    """

    def run(registry: Registry, train: Sequence[str], test: Sequence[str] | None = None):
        from driftlab.synthesis import run_synthesis

        config = {
            "dataset": {"name": "embedded-smear", "options": {"n_items": 40, "size": 16}},
            "pipelines": {"train": list(train), "test": list(test or train)},
            "corruptions": {"names": ["identity", "gaussian_noise"], "severities": [3]},
            "model": {"name": "small-cnn", "options": {"width": 4}},
            "training": {"epochs": 1, "batch_size": 8, "folds": 2},
            "report": {"bootstrap": 100},
            "run": {"workers": 0, "progress": False, "device": "cpu"},
        }
        return run_synthesis(config, out=tmp_path / "tiny-run", registry=registry)

    return run


def assert_stage_contract(registry: Registry, key: str, seed: int = 0) -> Any:
    """Fail unless stage ``key`` (``"slot.variant"``) passes ``driftlab verify``.

    Returns
    -------
    driftlab.verify.StageCheck
        The passing check (its ``max_abs_diff``, ``cases`` ...).
    """
    from driftlab.verify import check_summary, verify_stage

    slot, _, variant = key.partition(".")
    stage = registry.stage(slot, variant or None)
    check = verify_stage(stage, registry.owner("stages", stage.key), seed)
    if not check.passed:
        details = check_summary(check)
        raise AssertionError(f"stage {key} fails the stage contract: {check.error or details}")
    return check


def assert_pipeline_renders(
    registry: Registry,
    pipeline: Any,
    raw: np.ndarray,
    camera: str | Any = "identity",
    tolerance: float = 1e-4,
) -> np.ndarray:
    """Build ``pipeline`` (a name, TOML file or spec) in every form and compare the views.

    Returns
    -------
    numpy.ndarray
        The static form's ``(3, H, W)`` view of ``raw``.
    """
    import torch

    from driftlab.pipeline import (
        build_differentiable,
        build_static,
        expand_pipeline_names,
        resolve,
    )

    (spec,) = expand_pipeline_names([pipeline], registry.items("pipelines"))
    cam = registry.camera(camera) if isinstance(camera, str) else camera
    view = build_static(spec, cam, registry)(raw)
    assert view.shape == (3, *raw.shape) and np.isfinite(view).all()
    if all(s.spec.differentiable is not None for s in resolve(spec, cam, registry).stages):
        module = build_differentiable(spec, cam, registry).double()
        other = module(torch.as_tensor(raw, dtype=torch.float64)[None, None])[0].detach().numpy()
        worst = float(np.abs(other - view).max())
        assert worst <= tolerance, f"{spec.name}: static and differentiable differ by {worst:.3g}"
    return view
