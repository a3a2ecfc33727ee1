"""The experiment engine: executors, the travelling registry, isolation, identity,
locking, checked cell records, progress, reports and trackers."""

from __future__ import annotations

import copy
import json
import os
import random
import signal
import subprocess
import sys
import time
from html.parser import HTMLParser
from io import StringIO
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tomli_w
import torch

from driftlab.atomic import file_sha256
from driftlab.engine.progress import Progress
from driftlab.engine.rundir import RunDir
from driftlab.errors import CellError, ConfigError, RunDirError
from driftlab.forensics import run_forensics
from driftlab.optimize import run_optimization
from driftlab.synthesis import run_synthesis
from tests.engine_plugin import make_plugin

TINY = {
    "dataset": {"name": "embedded-smear", "options": {"n_items": 40, "size": 16}},
    "pipelines": {"train": ["bi,s,ga", "ma,s,me"], "test": ["bi,s,ga", "ma,s,me"]},
    "corruptions": {"names": ["identity", "gaussian_noise"], "severities": [3]},
    "model": {"name": "small-cnn", "options": {"width": 4}},
    "training": {"epochs": 1, "batch_size": 8, "folds": 2, "seed": 0},
    "report": {"bootstrap": 50},
    "run": {"workers": 0, "progress": False, "device": "cpu"},
}


def tiny(**changes) -> dict:
    data = copy.deepcopy(TINY)
    for dotted, value in changes.items():
        section, key = dotted.split("__")
        data.setdefault(section, {})[key] = value
    return data


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The tiny synthesis run in this process (workers = 0)."""
    return run_synthesis(TINY, out=tmp_path_factory.mktemp("engine") / "reference")


@pytest.fixture(scope="module")
def plugin(tmp_path_factory):
    return make_plugin(tmp_path_factory.mktemp("plugin"))


def _executor(kind: str, request) -> list[str]:
    if kind == "ray":
        request.getfixturevalue("ray_instance")
        return ["executor.kind=ray", "run.workers=2"]
    return ["executor.kind=local", "run.workers=2"]


# -- the registry travels with the plan ---------------------------------------------------------


@pytest.mark.parametrize("executor", ["local", "ray"])
def test_in_process_plugin_runs_through_every_experiment(plugin, executor, tmp_path, request):
    registry, pipeline_file = plugin
    overrides = _executor(executor, request)
    synthesis = {
        **tiny(model__name="tiny-plugin-net", model__options={}),
        "pipelines": {"train": [str(pipeline_file)], "test": [str(pipeline_file), "bi,s,ga"]},
    }
    synth = run_synthesis(synthesis, out=tmp_path / "synth", registry=registry, overrides=overrides)
    assert set(synth.results["train_pipeline"]) == {"tinted"}
    assert synth.cells_computed == 2
    optimize = {
        "dataset": {
            "name": "embedded-smear",
            "intensities": [1.0],
            "options": {"n_items": 40, "size": 16},
        },
        "pipeline": {"name": str(pipeline_file)},
        "model": {"name": "tiny-plugin-net"},
        "training": {"modes": ["learned"], "epochs": 1, "batch_size": 12, "folds": 2},
        "run": {"progress": False, "device": "cpu"},
    }
    opt = run_optimization(optimize, out=tmp_path / "opt", registry=registry, overrides=overrides)
    assert opt.cells_computed == 2
    changed = [
        v for v in opt.isp.values() if v["initial"]["tint.factor"] != v["final"]["tint.factor"]
    ]
    assert changed, "the plugin stage's parameter did not learn inside the cells"
    forensics = {
        "model": {"run": str(tmp_path / "synth"), "train_pipeline": "tinted", "fold": 0},
        "split": {"max_items": 6},
        "pipeline": {"base": str(pipeline_file)},
        "attacks": {"names": ["projected"], "lambdas": [0.0], "targets": [["tint"]], "steps": 2},
        "signature": {"enabled": False},
        "run": {"progress": False, "device": "cpu"},
    }
    fo = run_forensics(forensics, out=tmp_path / "fo", registry=registry, overrides=overrides)
    assert fo.cells_computed == 1 and list(fo.results["targets"]) == ["tint"]


# -- isolation, determinism and executors -------------------------------------------------------


def test_running_cells_in_process_leaves_global_state_unchanged(tmp_path, monkeypatch):
    def no_umask(*args):
        raise AssertionError("os.umask must not be called")

    monkeypatch.setattr(os, "umask", no_umask)
    torch.manual_seed(123)
    np.random.seed(7)
    random.seed(5)
    before = (torch.get_rng_state(), np.random.get_state()[1].copy(), random.getstate())
    threads = torch.get_num_threads()
    run_synthesis(TINY, out=tmp_path / "run")
    assert torch.equal(torch.get_rng_state(), before[0])
    assert np.array_equal(np.random.get_state()[1], before[1])
    assert random.getstate() == before[2]
    assert torch.get_num_threads() == threads


def test_worker_processes_give_byte_identical_results(reference, tmp_path):
    pooled = run_synthesis(TINY, out=tmp_path / "pooled", overrides=["run.workers=2"])
    assert (pooled.run_dir / "results.csv").read_bytes() == (
        reference.run_dir / "results.csv"
    ).read_bytes()


def test_ray_executor_gives_byte_identical_results(reference, tmp_path, ray_instance):
    on_ray = run_synthesis(TINY, out=tmp_path / "ray", overrides=["executor.kind=ray"])
    assert on_ray.cells_computed == 4
    assert (on_ray.run_dir / "results.csv").read_bytes() == (
        reference.run_dir / "results.csv"
    ).read_bytes()
    manifest = json.loads((on_ray.run_dir / "manifest.json").read_text())
    assert manifest["executor"] == "ray"


@pytest.mark.parametrize("executor", ["local", "ray"])
def test_failed_cell_is_reported_with_its_traceback_and_the_run_resumes(
    plugin, executor, tmp_path, request, caplog
):
    registry, _ = plugin
    module = next(p.module for p in registry.plugins if p.module.startswith("engine_plugin_"))
    flag = Path(sys.modules[module].__file__).with_name("FAIL")
    config = tiny(model__name="flaky-net", model__options={})
    flag.write_text("fail")
    try:
        with pytest.raises(CellError, match=r"cell .* failed: RuntimeError: flaky-net failed"):
            run_synthesis(
                config, out=tmp_path / "run", registry=registry,
                overrides=_executor(executor, request),
            )  # fmt: skip
    finally:
        flag.unlink()
    assert "Traceback" in caplog.text and "flaky-net failed on purpose" in caplog.text
    assert not (tmp_path / "run" / "results.csv").exists()
    resumed = run_synthesis(config, out=tmp_path / "run", registry=registry)
    assert resumed.cells_computed == 4 and len(resumed.results) == 4 * 4


# -- identity, resumption, locking ---------------------------------------------------------------


def test_resume_ignores_quiet_workers_device_output_folder_and_moved_checkout(reference, tmp_path):
    copy_dir = tmp_path / "moved-run"
    subprocess.run(["cp", "-r", str(reference.run_dir), str(copy_dir)], check=True)
    again = run_synthesis(
        TINY,
        out=copy_dir,
        overrides=["run.workers=3", "run.progress=true", "executor.workers_per_gpu=4"],
    )
    assert again.cells_reused == 4 and again.cells_computed == 0
    assert json.loads((copy_dir / "manifest.json").read_text())["out"] == str(copy_dir)
    config = tomli_w.dumps(TINY)
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "config.toml").write_text(config)
    third = run_synthesis(tmp_path / "elsewhere" / "config.toml", out=copy_dir)
    assert third.cells_reused == 4


def test_refusal_names_every_differing_setting(reference):
    with pytest.raises(RunDirError) as info:
        run_synthesis(tiny(training__seed=1, training__epochs=2), out=reference.run_dir)
    message = str(info.value)
    assert "training.seed: 0 -> 1" in message and "training.epochs: 1 -> 2" in message


def test_a_second_run_into_a_locked_directory_fails_at_once(reference):
    with RunDir(reference.run_dir).lock():
        started = time.monotonic()
        with pytest.raises(RunDirError, match="in use by another driftlab run"):
            run_synthesis(TINY, out=reference.run_dir)
        assert time.monotonic() - started < 30


def test_everything_is_validated_before_anything_is_created(tmp_path):
    bad_weights = tmp_path / "weights.pt"
    bad_weights.write_bytes(b"not a weights file at all")
    for config in (
        tiny(training__folds=3),  # more folds than the 2 slides (groups)
        tiny(model__weights=str(bad_weights)),
        tiny(training__lr=float("inf")),
        tiny(run__workers=-1),
        tiny(report__bootstrap=-5),
    ):
        out = tmp_path / "never"
        with pytest.raises(ConfigError):
            run_synthesis(config, out=out)
        assert not out.exists(), config


# -- finished work is checked before it is trusted ----------------------------------------------


@pytest.mark.parametrize(
    "damage",
    ["edit-value", "empty-csv", "binary-csv", "drop-npz", "edit-record", "drop-model", "columns"],
)
def test_damaged_cells_are_recomputed(reference, tmp_path, damage, caplog):
    run = tmp_path / "run"
    subprocess.run(["cp", "-r", str(reference.run_dir), str(run)], check=True)
    key = "bi,s,ga__fold1"
    csv, record = run / "cells" / f"{key}.csv", run / "cells" / f"{key}.json"
    if damage == "edit-value":
        csv.write_text(csv.read_text().replace("accuracy,", "accuracy,0.999", 1))
    elif damage == "empty-csv":
        csv.write_text("")
    elif damage == "binary-csv":
        csv.write_bytes(os.urandom(300))
    elif damage == "drop-npz":
        (run / "cells" / f"{key}.npz").unlink()
    elif damage == "edit-record":
        record.write_text(record.read_text()[:40])
    elif damage == "drop-model":
        (run / "models" / f"{key}.pt").unlink()
    elif damage == "columns":
        frame = pd.read_csv(csv)
        frame.rename(columns={"value": "score"}).to_csv(csv, index=False)
    result = run_synthesis(TINY, out=run)
    assert result.cells_reused == 3 and result.cells_computed == 1 and result.cells_repaired == 1
    assert f"cell {key}:" in caplog.text
    assert (run / "results.csv").read_bytes() == (reference.run_dir / "results.csv").read_bytes()


def test_damaged_view_stack_is_rewritten(reference, tmp_path):
    run = tmp_path / "run"
    subprocess.run(["cp", "-r", str(reference.run_dir), str(run)], check=True)
    stack = sorted((run / "arrays").glob("views-bi,s,ga-*.npy"))[0]
    data = bytearray(stack.read_bytes())
    data[-10:] = b"\x00" * 10
    stack.write_bytes(bytes(data))
    for cell in (run / "cells").glob("*"):
        cell.unlink()
    result = run_synthesis(TINY, out=run)
    assert result.cells_computed == 4
    assert (run / "results.csv").read_bytes() == (reference.run_dir / "results.csv").read_bytes()


# -- progress, reports, trackers ----------------------------------------------------------------


def test_progress_writes_plain_lines_off_a_terminal_and_nothing_when_quiet(tmp_path):
    stream = StringIO()
    run_synthesis(TINY, out=tmp_path / "a", overrides=["run.progress=true"], stream=stream)
    text = stream.getvalue()
    assert "cell 1/4 done:" in text and "cell 4/4 done:" in text and "ETA" in text
    # 40 items x 2 pipelines rendered, at a stated rate
    line = next(x for x in text.splitlines() if "views: 80 rendered, 0 reused, 0 repaired" in x)
    assert line.rstrip().endswith("views/s)") and float(line.split(", ")[-1].split()[0]) > 0
    assert "\r" not in text and "\x1b[" not in text  # no bars, no terminal control codes
    quiet = StringIO()
    run_synthesis(TINY, out=tmp_path / "b", stream=quiet)
    assert quiet.getvalue() == ""


def test_live_progress_panel_shows_running_cells():
    stream = StringIO()
    with Progress("synthesis", stream=stream, live=True) as progress:
        progress.begin_cells(3, 1, {"a": "bi,s,ga fold 0", "b": "ma,s,me fold 1"})
        progress.event(("start", "a", "bi,s,ga fold 0", 1))
        progress.event(("progress", "a", 5, 10, "epoch 1/2"))
        panel = progress._render()
        progress.cell_finished("a", True, 1.0, "cpu")
    from rich.console import Console

    console = Console(file=StringIO(), width=120)
    console.print(panel)
    shown = console.file.getvalue()
    assert "synthesis cells" in shown and "bi,s,ga fold 0" in shown and "epoch 1/2 50%" in shown


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.images.append(dict(attrs)["src"])


def test_reports_are_self_contained_html_and_markdown(reference):
    html = (reference.run_dir / "report.html").read_text()
    parser = _Tags()
    parser.feed(html)
    assert parser.images and all(src.startswith("data:image/png;base64,") for src in parser.images)
    markdown = (reference.run_dir / "report.md").read_text()
    assert "![" in markdown and "figures/isp_heatmap.png" in markdown
    assert "Unnamed" not in html and "Unnamed" not in markdown  # no stray pandas header rows


def test_mlflow_tracker_logs_config_cells_summary_and_report(tmp_path):
    pytest.importorskip("mlflow", reason="the driftlab[mlflow] extra is not installed")
    from mlflow.tracking import MlflowClient

    uri = f"file:{tmp_path / 'mlruns'}"
    out = tmp_path / "run"
    run_synthesis(TINY, out=out, overrides=[f'tracking.mlflow_uri="{uri}"'])
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("driftlab-synthesis")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.data.params["training.epochs"] == "1"
    assert any(k.startswith("bi_s_ga__fold0/isp/") for k in run.data.metrics)
    assert "summary/mean_diagonal" in run.data.metrics
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"report.html", "results.csv", "summary.json"} <= artifacts
    assert run.info.status == "FINISHED"
    again = run_synthesis(TINY, out=out, overrides=[f'tracking.mlflow_uri="{uri}"'])
    assert again.cells_reused == 4
    assert len(client.search_runs([experiment.experiment_id])) == 1  # the same MLflow run


# -- processes -----------------------------------------------------------------------------------

LONG = tiny(training__epochs=400, training__batch_size=4, run__workers=2)


def _children(pid: int) -> set[int]:
    found = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        children = (task / "children").read_text().split()
        found.update(int(c) for c in children)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs Linux /proc")
def test_worker_processes_do_not_outlive_a_killed_driver(tmp_path):
    config = tmp_path / "long.toml"
    config.write_text(tomli_w.dumps(LONG))
    proc = subprocess.Popen(
        [sys.executable, "-m", "driftlab.cli", "synthesize", str(config), "--out",
         str(tmp_path / "run"), "--quiet"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 180
    workers: set[int] = set()
    while time.monotonic() < deadline and len(workers) < 2:
        time.sleep(0.5)
        workers = {
            c for c in _children(proc.pid) if "spawn" in Path(f"/proc/{c}/cmdline").read_text()
        }
    assert len(workers) >= 2, "the run did not start its worker processes"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and any(_alive(w) for w in workers):
        time.sleep(0.2)
    assert not any(_alive(w) for w in workers), "worker processes outlived the driver"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cells_on_cuda_record_their_device(tmp_path):
    result = run_synthesis(TINY, out=tmp_path / "cuda", overrides=['run.device="cuda"'])
    assert set(result.results["device"]) == {"cuda:0"}


@pytest.mark.slow
def test_driver_killed_on_ray_resumes_on_the_local_executor(tmp_path):
    pytest.importorskip("ray", reason="the driftlab[ray] extra is not installed")
    config_data = tiny(training__epochs=60, training__batch_size=4)
    config = tmp_path / "config.toml"
    config.write_text(tomli_w.dumps(config_data))
    reference = run_synthesis(config_data, out=tmp_path / "reference")
    out = tmp_path / "killed"
    proc = subprocess.Popen(
        [sys.executable, "-m", "driftlab.cli", "synthesize", str(config), "--out", str(out),
         "--executor", "ray", "--quiet"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        if list((out / "cells").glob("*.json")):
            break
        time.sleep(0.1)
    assert proc.poll() is None, "the run finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    finished = len(list((out / "cells").glob("*.json")))
    assert 1 <= finished < 4
    resumed = run_synthesis(config, out=out, overrides=["run.workers=2"])
    assert resumed.cells_reused == finished and resumed.cells_computed == 4 - finished
    assert (out / "results.csv").read_bytes() == (reference.run_dir / "results.csv").read_bytes()


def test_identity_follows_file_content_not_location(tmp_path):
    """Pipeline files and weights enter the identity by name and content, not by path."""
    from driftlab.synthesis.config import load_synthesis_config

    def identity_in(folder: Path, pipeline_text: str) -> dict:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "my_isp.toml").write_text(pipeline_text)
        config = copy.deepcopy(TINY)
        config["pipelines"] = {"train": ["my_isp.toml", "bi,s,ga"], "test": "all"}
        (folder / "config.toml").write_text(tomli_w.dumps(config))
        return load_synthesis_config(folder / "config.toml").identity()

    first = identity_in(tmp_path / "a", "# version 1\n")
    moved = identity_in(tmp_path / "b" / "c", "# version 1\n")
    edited = identity_in(tmp_path / "d", "# version 2\n")
    assert first == moved
    assert first["pipelines.train"][0].startswith("my_isp.toml:sha256:")
    assert first["pipelines.train"][1] == "bi,s,ga"
    assert first["pipelines.train"] != edited["pipelines.train"]


def test_a_non_empty_folder_is_refused_before_anything_is_written_into_it(tmp_path):
    folder = tmp_path / "my-photos"
    folder.mkdir()
    (folder / "holiday.jpg").write_bytes(b"jpeg")
    with pytest.raises(RunDirError, match="not empty and is not a driftlab run"):
        run_synthesis(TINY, out=folder)
    assert sorted(p.name for p in folder.iterdir()) == ["holiday.jpg"]


def test_a_shared_array_edited_together_with_its_index_is_written_again(tmp_path):
    run = RunDir(tmp_path / "run")
    with run.lock():
        run.arrays.mkdir(parents=True)
        targets = np.arange(12, dtype=np.int64)
        first = run.store_array("targets", targets)
        forged = np.zeros_like(targets)
        np.save(first.path, forged)  # same name, other content ...
        index = json.loads((run.arrays / "index.json").read_text())
        index[Path(first.path).stem]["sha256"] = file_sha256(first.path)  # ... and its index
        (run.arrays / "index.json").write_text(json.dumps(index))
        again = run.store_array("targets", targets)
    assert again.sha256 == first.sha256
    np.testing.assert_array_equal(np.load(again.path), targets)


def test_an_unreachable_ray_cluster_is_a_clear_error_and_keeps_finished_cells(reference, tmp_path):
    pytest.importorskip("ray")
    run = tmp_path / "run"
    subprocess.run(["cp", "-r", str(reference.run_dir), str(run)], check=True)
    (run / "cells" / "bi,s,ga__fold1.json").unlink()  # one cell left to compute
    (tmp_path / "config.toml").write_text(tomli_w.dumps(TINY))
    # a fresh process: a Ray instance started by another test would be used as is
    done = subprocess.run(
        [sys.executable, "-m", "driftlab.cli", "synthesize", str(tmp_path / "config.toml"),
         "--out", str(run), "--executor", "ray",
         "--set", 'executor.address="ray://no-such-host.invalid:1"'],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 6, done.stderr
    assert "cannot start the Ray cluster at 'ray://no-such-host.invalid:1'" in done.stderr
    assert len(list((run / "cells").glob("*.json"))) == 3


def test_a_bare_cuda_request_spreads_cells_over_every_gpu():
    from driftlab.engine.skeleton import executor_device

    assert executor_device("auto", "cuda:0") == "cuda"
    assert executor_device(" CUDA ", "cuda:0") == "cuda"
    assert executor_device("cuda:1", "cuda:1") == "cuda:1"
    assert executor_device("auto", "cpu") == "cpu"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cells_given_a_bare_cuda_device_record_its_index(tmp_path):
    result = run_synthesis(tiny(run__device="cuda"), out=tmp_path / "run")
    devices = set(result.results["device"])
    assert devices and all(d.startswith("cuda:") and d[5:].isdigit() for d in devices), devices


def test_plugin_modules_are_shipped_by_value_only_during_a_run(monkeypatch):
    import types

    import cloudpickle

    from driftlab.engine.executors import shipped_by_value

    mine, callers = types.ModuleType("my_lab_plugin"), types.ModuleType("callers_plugin")
    monkeypatch.setitem(sys.modules, "my_lab_plugin", mine)
    monkeypatch.setitem(sys.modules, "callers_plugin", callers)
    cloudpickle.register_pickle_by_value(callers)
    try:
        with shipped_by_value(["my_lab_plugin", "callers_plugin", "driftlab.builtin"]) as added:
            assert added == ["my_lab_plugin"]
            assert "my_lab_plugin" in cloudpickle.list_registry_pickle_by_value()
        registered = cloudpickle.list_registry_pickle_by_value()
        assert "my_lab_plugin" not in registered and "callers_plugin" in registered
    finally:
        cloudpickle.unregister_pickle_by_value(callers)


def test_report_rebuild_refuses_a_run_whose_identity_changed(reference, tmp_path):
    from driftlab.synthesis import rebuild_report

    run = tmp_path / "run"
    subprocess.run(["cp", "-r", str(reference.run_dir), str(run)], check=True)
    (run / "report.html").unlink()
    rebuild_report(run)
    assert (run / "report.html").is_file()
    config = run / "config.toml"
    config.write_text(config.read_text().replace("epochs = 1", "epochs = 7"))
    with pytest.raises(RunDirError, match=r"no longer match.*training.epochs: 1 -> 7"):
        rebuild_report(run)


def test_identity_follows_the_camera_and_the_rendering_code(plugin, tmp_path):
    """Cells are reused only for the same views: a changed camera declaration or an
    edited stage module changes the run identity even when the config is the same."""
    import attrs

    from driftlab.synthesis.config import SynthesisConfig
    from driftlab.synthesis.experiment import SYNTHESIS

    registry, pipeline_file = plugin
    config = {
        **tiny(model__name="tiny-plugin-net", model__options={}),
        "pipelines": {"train": [str(pipeline_file)], "test": [str(pipeline_file), "bi,s,ga"]},
    }
    plan = SYNTHESIS.plan(SynthesisConfig.load(config), registry)
    first = SYNTHESIS.identity(plan)
    assert first["camera.sha256"] and first["render.code"]
    assert SYNTHESIS.identity(plan) == first
    other_camera = attrs.evolve(
        plan.camera, black_level=tuple(b + 0.001 for b in plan.camera.black_level)
    )
    assert (
        SYNTHESIS.identity(attrs.evolve(plan, camera=other_camera))["camera.sha256"]
        != first["camera.sha256"]
    )
    stage_module = next(pipeline_file.parent.glob("engine_plugin_*.py"))
    stage_module.write_text(stage_module.read_text() + "\n# the stage's code was edited\n")
    edited = SYNTHESIS.identity(plan)
    assert edited["render.code"] != first["render.code"]
    assert edited["camera.sha256"] == first["camera.sha256"]


def test_cells_on_a_gpu_ask_for_deterministic_kernels_and_restore_the_settings():
    from driftlab.engine.cell import isolated_state

    before = (
        torch.are_deterministic_algorithms_enabled(),
        torch.backends.cudnn.deterministic,
        torch.backends.cudnn.benchmark,
    )
    torch.backends.cudnn.benchmark = True
    try:
        with isolated_state(threads=None, cuda=True):
            assert torch.are_deterministic_algorithms_enabled()
            assert torch.is_deterministic_algorithms_warn_only_enabled()
            assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark
        assert torch.backends.cudnn.benchmark
        assert torch.are_deterministic_algorithms_enabled() == before[0]
        assert torch.backends.cudnn.deterministic == before[1]
        with isolated_state(threads=None, cuda=False):  # CPU cells leave the settings alone
            assert torch.backends.cudnn.benchmark
    finally:
        torch.backends.cudnn.benchmark = before[2]
