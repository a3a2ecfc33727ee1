"""View cache: reuse on rerun, atomic writes, stale temporary files, corruption repair."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

import driftlab
from driftlab.cache import (
    MAGIC,
    CacheError,
    ViewCache,
    camera_digest,
    code_version,
    raw_digest,
)
from driftlab.datasets.embedded_smear import EMBEDDED_SMEAR
from driftlab.pipeline import build_static, get_pipeline

PIPELINES = [get_pipeline("bi,s,ga"), get_pipeline("ma,u,me")]


@pytest.fixture
def dataset():
    return EMBEDDED_SMEAR.open(n_items=5, size=32, seed=1)


def test_views_are_rendered_once_and_reused(tmp_path, dataset):
    cache = ViewCache(tmp_path / "views")
    first = cache.render(dataset, PIPELINES)
    assert (first.rendered, first.reused, first.repaired) == (10, 0, 0)
    second = cache.render(dataset, PIPELINES)
    assert (second.rendered, second.reused, second.repaired) == (0, 10, 0)
    assert second.keys == first.keys and second.total == 10
    assert set(first.keys) == {"bi,s,ga", "ma,u,me"}
    pipeline = build_static(PIPELINES[1], dataset.spec.camera)
    for i in range(len(dataset)):  # the fast path matches the static reference
        expected = pipeline(dataset[i].raw)
        np.testing.assert_allclose(cache.load(first.keys["ma,u,me"][i]), expected, atol=1e-6)
    files = list((tmp_path / "views").rglob("*.view"))
    assert len(files) == 10
    assert first.summary()["rendered"] == 10


def test_partial_rerun_renders_only_what_is_new(tmp_path, dataset):
    cache = ViewCache(tmp_path)
    cache.render(dataset, PIPELINES[:1])
    report = cache.render(dataset, PIPELINES)
    assert (report.rendered, report.reused) == (5, 5)


def test_keys_change_with_camera_spec_code_version_and_dtype(tmp_path, dataset):
    base = ViewCache(tmp_path).render(dataset, PIPELINES[:1]).keys["bi,s,ga"]
    camera = dataset.spec.camera.replace(white_balance=(1.5, 1.0, 2.3))
    other_camera = ViewCache(tmp_path).render(dataset, PIPELINES[:1], camera=camera)
    gamma = PIPELINES[0].replace_stage("gamma", "power", gamma=2.4)
    other_spec = ViewCache(tmp_path).render(dataset, [gamma])
    other_code = ViewCache(tmp_path, code_version="test").render(
        dataset,
        PIPELINES[:1],
    )
    other_dtype = ViewCache(tmp_path, dtype="float16").render(
        dataset,
        PIPELINES[:1],
    )
    for report in (other_camera, other_spec, other_code, other_dtype):
        assert report.rendered == 5
        assert not set(next(iter(report.keys.values()))) & set(base)


def test_digests():
    a = np.zeros((4, 4), dtype=np.float32)
    assert raw_digest(a) == raw_digest(a.copy())
    assert raw_digest(a) != raw_digest(a.astype(np.float64))
    b = a.copy()
    b[0, 0] = 1e-7
    assert raw_digest(a) != raw_digest(b)
    camera = EMBEDDED_SMEAR.camera
    assert camera_digest(camera) == camera_digest(camera.replace())
    assert camera_digest(camera) != camera_digest(camera.replace(gain=1.0))
    version = code_version(build_static(PIPELINES[0], camera))
    assert version.startswith(driftlab.__version__ + "+")
    assert version == code_version(build_static(PIPELINES[1], camera))


def test_stale_temporary_file_is_ignored_and_cleaned(tmp_path, dataset):
    cache = ViewCache(tmp_path)
    key = cache.key(dataset[0].raw, build_static(PIPELINES[0], dataset.spec.camera))
    folder = cache.path(key).parent
    folder.mkdir(parents=True)
    stale = folder / f".{key}.view.killed.tmp.view"
    stale.write_bytes(MAGIC + b"half a view")  # what a killed writer leaves behind
    report = cache.render(dataset, PIPELINES[:1])
    assert report.rendered == 5 and report.reused == 0
    assert cache.read(key)[0] == "ok"
    assert stale.exists()
    assert cache.clean_temp(older_than=3600) == 0  # too recent: might belong to a live writer
    assert cache.clean_temp(older_than=0) == 1
    assert not stale.exists()


def test_temporary_file_of_a_dead_writer_is_cleaned_on_the_next_render(tmp_path, dataset):
    from driftlab.atomic import _HOST

    cache = ViewCache(tmp_path)
    key = cache.key(dataset[0].raw, build_static(PIPELINES[0], dataset.spec.camera))
    folder = cache.path(key).parent
    folder.mkdir(parents=True)
    # a pid far above any pid_max: a writer that is certainly gone
    dead = folder / f".{key}.view.99999999@{_HOST}.0123abcd.tmp.view"
    dead.write_bytes(MAGIC + b"half a view")
    live = folder / f".{key}.view.{os.getpid()}@{_HOST}.4567cdef.tmp.view"
    live.write_bytes(MAGIC + b"being written")  # this process: a live writer
    other_host = folder / f".{key}.view.99999999@elsewhere.89abcdef.tmp.view"
    other_host.write_bytes(MAGIC)
    cache.render(dataset, PIPELINES[:1])
    assert not dead.exists()
    assert live.exists() and other_host.exists()  # recent and not provably dead


def test_view_files_get_the_permissions_of_any_new_file(tmp_path, dataset):
    previous = os.umask(0o022)
    try:
        cache = ViewCache(tmp_path)
        keys = cache.render(dataset, PIPELINES[:1]).keys["bi,s,ga"]
    finally:
        os.umask(previous)
    mode = cache.path(keys[0]).stat().st_mode & 0o777
    assert mode == 0o644, oct(mode)
    assert not list(tmp_path.rglob(".*.tmp*"))


def test_keys_name_the_renderer(tmp_path, dataset):
    from driftlab.cache import RENDERER

    cache = ViewCache(tmp_path)
    assert RENDERER in cache.key_part(build_static(PIPELINES[0], dataset.spec.camera))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_views_rendered_on_cuda_match_the_cpu_ones(tmp_path, dataset):
    cpu = ViewCache(tmp_path / "cpu").render(dataset, PIPELINES)
    gpu_cache = ViewCache(tmp_path / "gpu")
    gpu = gpu_cache.render(dataset, PIPELINES, device="cuda")
    assert gpu.keys == cpu.keys and gpu.rendered == 10
    for name in cpu.keys:
        for key in cpu.keys[name]:
            cpu_view = ViewCache(tmp_path / "cpu").load(key)
            np.testing.assert_allclose(gpu_cache.load(key), cpu_view, atol=1e-5)


@pytest.mark.parametrize("damage", ["truncate", "flip", "garbage", "empty"])
def test_corrupt_file_is_detected_and_rendered_again(tmp_path, dataset, damage):
    cache = ViewCache(tmp_path)
    keys = cache.render(dataset, PIPELINES[:1]).keys["bi,s,ga"]
    path = cache.path(keys[2])
    good = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(good[: len(good) // 2])
    elif damage == "flip":
        data = bytearray(good)
        data[-5] ^= 0x01
        path.write_bytes(bytes(data))
    elif damage == "garbage":
        path.write_bytes(b"\x00" * len(good))
    else:
        path.write_bytes(b"")
    assert cache.read(keys[2]) == ("corrupt", None)
    with pytest.raises(CacheError, match="corrupt"):
        cache.load(keys[2])
    report = cache.render(dataset, PIPELINES[:1])
    assert (report.rendered, report.reused, report.repaired) == (0, 4, 1)
    assert path.read_bytes() == good


def test_failed_write_leaves_no_file(tmp_path, monkeypatch):
    cache = ViewCache(tmp_path)
    key = "ab" * 32

    def explode(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", explode)
    with pytest.raises(OSError, match="disk full"):
        cache.write(key, np.zeros((3, 4, 4)))
    assert cache.read(key) == ("missing", None)
    assert not list(tmp_path.rglob(".*.tmp*"))


def test_parallel_workers_give_the_same_views(tmp_path, dataset):
    serial = ViewCache(tmp_path / "serial").render(dataset, PIPELINES)
    cache = ViewCache(tmp_path / "parallel")
    parallel = cache.render(dataset, PIPELINES, workers=2, chunk_size=2)
    assert parallel.keys == serial.keys and parallel.rendered == 10
    again = cache.render(dataset, PIPELINES, workers=2, chunk_size=2)
    assert again.reused == 10
    key = serial.keys["bi,s,ga"][4]
    assert np.array_equal(cache.load(key), ViewCache(tmp_path / "serial").load(key))


def test_progress_is_reported_to_the_callback(tmp_path, dataset):
    calls = []
    ViewCache(tmp_path).render(
        dataset, PIPELINES[:1], chunk_size=2, progress=lambda d, t: calls.append((d, t))
    )
    n = len(dataset)
    assert calls[-1] == (n, n) and [d for d, _ in calls] == sorted(d for d, _ in calls)


def test_uint16_storage_round_trips(tmp_path):
    cache = ViewCache(tmp_path, dtype="uint16")
    view = np.random.default_rng(0).uniform(0, 1, (3, 6, 8))
    key = "cd" * 32
    cache.write(key, view)
    assert np.abs(cache.load(key) - view).max() <= 0.5 / 65535 + 1e-7


def test_errors(tmp_path, dataset):
    with pytest.raises(CacheError, match="dtype"):
        ViewCache(tmp_path, dtype="int8")
    cache = ViewCache(tmp_path)
    with pytest.raises(CacheError, match="unique"):
        cache.render(dataset, [PIPELINES[0], PIPELINES[0]])
    with pytest.raises(CacheError, match="workers"):
        cache.render(dataset, PIPELINES, workers=-1)
    with pytest.raises(CacheError, match="64 hex"):
        cache.path("../../etc/passwd")
    with pytest.raises(CacheError, match="missing"):
        cache.load("ef" * 32)
    with pytest.raises(CacheError, match=r"\(3, H, W\)"):
        cache.write("ef" * 32, np.zeros((4, 4)))


@pytest.mark.parametrize("forgery", ["nan", "wrong-size"])
def test_well_formed_view_of_the_wrong_size_or_with_nan_is_rendered_again(
    tmp_path, dataset, forgery
):
    """A view file with a valid checksum but impossible content counts as corrupt."""
    cache = ViewCache(tmp_path)
    keys = cache.render(dataset, PIPELINES[:1]).keys["bi,s,ga"]
    good = cache.load(keys[1])
    forged = good.copy()
    if forgery == "nan":
        forged[0, 3, 3] = np.nan
    else:
        forged = forged[:, :-4, :]
    cache.write(keys[1], forged)  # the file's own checksum is consistent
    report = cache.render(dataset, PIPELINES[:1])
    assert (report.rendered, report.reused, report.repaired) == (0, 4, 1)
    np.testing.assert_array_equal(cache.load(keys[1]), good)


def test_views_are_not_fsynced_but_a_damaged_one_is_rendered_again(tmp_path, dataset, monkeypatch):
    # the cache's checksum, not fsync, guards against what a power loss leaves behind;
    # run-directory files (no such check on every read) are still fsynced
    from driftlab import atomic

    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(atomic.os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd)))
    cache = ViewCache(tmp_path / "views")
    keys = cache.render(dataset, PIPELINES[:1]).keys["bi,s,ga"]
    assert synced == []
    atomic.write_json_atomic({"a": 1}, tmp_path / "manifest.json")
    assert len(synced) == 1
    cache.path(keys[0]).write_bytes(b"")  # what a crash before the data reached the disk leaves
    again = cache.render(dataset, PIPELINES[:1])
    assert (again.rendered, again.repaired) == (0, 1)
