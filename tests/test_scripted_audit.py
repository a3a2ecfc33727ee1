"""The Python API from a script: examples/scripted_audit.py runs as written, and a run
started at module level without the main guard stops with a clear error."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
from pathlib import Path

import pytest

from driftlab.engine.scriptguard import ScriptGuardError, check_not_reimported
from driftlab.synthesis import run_synthesis

REPO = Path(__file__).resolve().parents[1]
TINY = [
    "dataset.options={ n_items = 40, size = 32 }",
    "test.options={ seed = 1, n_items = 20 }",
    "training.epochs=1",
    "pipelines.train=['bi,s,ga', 'ma,s,me']",
    "pipelines.test=['bi,s,ga', 'ma,s,me']",
    "corruptions.names=['identity', 'contrast']",
]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    paths = [str(REPO), str(REPO / "plugins" / "driftlab-sensor-extras" / "src")]
    env["PYTHONPATH"] = os.pathsep.join([*paths, env.get("PYTHONPATH", "")])
    return env


def test_scripted_audit_example_runs_as_written_with_two_workers(tmp_path):
    out = tmp_path / "runs"
    done = subprocess.run(
        [sys.executable, str(REPO / "examples" / "scripted_audit.py"), str(out), *TINY],
        cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "ranking under ISP drift" in done.stdout
    assert "audit of the" in done.stdout and "under ISP drift" in done.stdout
    assert (out / "synthesis" / "report.html").is_file()
    assert (out / "audit" / "report.html").is_file()
    assert "BrokenProcessPool" not in done.stderr


UNGUARDED = """
from driftlab.synthesis import run_synthesis
CONFIG = {
    "dataset": {"name": "embedded-smear", "options": {"n_items": 60, "size": 16}},
    "model": {"name": "small-cnn"},
    "training": {"folds": 2, "epochs": 1},
    "run": {"workers": 2, "progress": False, "device": "cpu"},
}
result = run_synthesis(CONFIG, out=OUT)
"""


def test_a_module_level_run_with_workers_fails_with_a_clear_message(tmp_path):
    script = tmp_path / "my_audit.py"
    out = tmp_path / "never"
    script.write_text(UNGUARDED.replace("OUT", repr(str(out))))
    done = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, env=_env(), capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert "ScriptGuardError" in last and f"{script}:9 starts a synthesis run" in last
    assert 'if __name__ == "__main__":' in last and "workers to 0 or 1" in last
    assert "BrokenProcessPool" not in done.stderr
    assert not out.exists()


def test_guarded_and_single_process_scripts_are_left_alone(tmp_path):
    guarded = "if __name__ == '__main__':\n    " + UNGUARDED.strip().replace("\n", "\n    ")
    script = tmp_path / "guarded.py"
    script.write_text(
        guarded.replace("OUT", repr(str(tmp_path / "run"))).replace('"workers": 2', '"workers": 0')
        + "\n    print('cells', result.cells_computed)\n"
    )
    done = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, env=_env(), capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "cells 2" in done.stdout


def test_a_worker_that_starts_a_run_while_importing_the_script_refuses(monkeypatch, tmp_path):
    process = multiprocessing.current_process()
    monkeypatch.setattr(process, "_inheriting", True, raising=False)
    with pytest.raises(ScriptGuardError, match=r"while a spawned worker process was importing"):
        check_not_reimported("synthesis")
    with pytest.raises(ScriptGuardError):
        run_synthesis({"dataset": {"name": "embedded-smear"}}, out=tmp_path / "never")
    assert not (tmp_path / "never").exists()
