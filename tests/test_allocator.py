"""driftlab.workers.tune_allocator: glibc's malloc keeps freed memory for reuse."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

from driftlab import workers


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc",
    reason="glibc's mallopt",
)
def test_tuning_is_applied_on_linux_and_rendering_still_matches():
    code = (
        "import numpy as np\n"
        "from driftlab.workers import tune_allocator\n"
        "assert tune_allocator() is True\n"
        "assert tune_allocator() is True  # idempotent\n"
        "from driftlab.pipeline import PAPER_DATA_MODELS, build_static, render_views, resolve\n"
        "from driftlab.registry import get_registry\n"
        "camera = get_registry().camera('raw-drone')\n"
        "raws = np.random.default_rng(0).uniform(0, 1, size=(2, 64, 64))\n"
        "spec = PAPER_DATA_MODELS['me,u,me']\n"
        "static = build_static(spec, camera)\n"
        "expected = np.stack([static(r) for r in raws])\n"
        "views = render_views(resolve(spec, camera), raws)\n"
        "assert np.abs(views - expected).max() <= 1e-6\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_tuning_is_a_no_op_off_linux(monkeypatch):
    monkeypatch.setattr(workers.sys, "platform", "darwin")
    assert workers.tune_allocator() is False


def test_tuning_is_a_no_op_without_glibc(monkeypatch):
    import ctypes

    def missing(name, *args, **kwargs):
        raise OSError(f"{name}: cannot open shared object file")

    monkeypatch.setattr(workers.sys, "platform", "linux")
    monkeypatch.setattr(ctypes, "CDLL", missing)
    assert workers.tune_allocator() is False
