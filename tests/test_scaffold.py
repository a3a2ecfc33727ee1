"""``driftlab new-plugin``: the generated distribution passes its own tests and verify
untouched (issue 13.16), and bad names or occupied folders are refused."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from driftlab.cli import main


def _env(root) -> dict:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(root / "src"), *sys.path])}


def test_new_plugin_passes_its_own_tests_and_verify_untouched(tmp_path):
    result = CliRunner().invoke(main, ["new-plugin", "acme-cam", "--dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    root = tmp_path / "acme-cam"
    tests = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=root, env=_env(root), capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "4 passed" in tests.stdout
    verify = subprocess.run(
        [sys.executable, "-m", "driftlab.cli", "-p", "acme_cam.plugin", "verify", "--plugin",
         "acme_cam.plugin"],
        cwd=root, env=_env(root), capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "acme_cam_pedestal.sites" in verify.stdout and "1 passed, 0 failed" in verify.stdout


@pytest.mark.parametrize("name", ["Acme", "acme--cam", "1cam", "class", ""])
def test_new_plugin_refuses_bad_names(tmp_path, name):
    result = CliRunner().invoke(main, ["new-plugin", name, "--dir", str(tmp_path)])
    assert result.exit_code == 2 and "plugin name" in result.output
    assert not any(tmp_path.iterdir())


def test_new_plugin_never_overwrites(tmp_path):
    (tmp_path / "acme").mkdir()
    (tmp_path / "acme" / "keep.txt").write_text("mine")
    result = CliRunner().invoke(main, ["new-plugin", "acme", "--dir", str(tmp_path)])
    assert result.exit_code == 2 and "exists and is not empty" in result.output
    assert (tmp_path / "acme" / "keep.txt").read_text() == "mine"
