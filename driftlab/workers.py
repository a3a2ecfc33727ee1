"""driftlab's one worker-process policy, used by every pool (cells, view rendering).

Worker processes are *spawned*, never forked: forking a process whose torch
(OpenMP) or CUDA threads are running can deadlock the child, which is what
made parts of the test suite hang when CUDA was visible. Each worker

* sees the parent's ``sys.path`` (plugins found on it stay importable),
* uses one torch thread (the processes already use the cores),
* keeps freed memory for reuse (:func:`tune_allocator`),
* sets ``CUBLAS_WORKSPACE_CONFIG=:4096:8`` unless the environment sets it
  (before CUDA starts in the process), so that cells on a GPU, which ask
  for deterministic kernels (:func:`driftlab.engine.cell.isolated_state`),
  get deterministic cuBLAS products too,
* exits as soon as its parent dies (``PR_SET_PDEATHSIG`` on Linux, and a
  watchdog thread everywhere), so no worker outlives a killed driver.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

__all__ = ["ALLOCATOR_SETTINGS", "process_pool", "tune_allocator", "watch_parent", "worker_events"]

_EVENTS: Any = None

# glibc's mallopt parameters (malloc.h) and the values tune_allocator sets
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3
ALLOCATOR_SETTINGS: dict[str, int] = {
    "M_MMAP_THRESHOLD": 32 * 2**20,
    "M_TRIM_THRESHOLD": 256 * 2**20,
    "M_TOP_PAD": 16 * 2**20,
}
"""What :func:`tune_allocator` sets: blocks up to 32 MiB come from the heap (not a fresh
``mmap`` each), up to 256 MiB of free heap is kept, the heap grows 16 MiB at a time."""


def tune_allocator() -> bool:
    """Let this process reuse freed memory instead of returning it to the system (glibc).

    The fast render path (:mod:`driftlab.pipeline.batched`) allocates and
    frees tensors of a few MiB per operation. With glibc's defaults such
    blocks are often ``mmap``-ed and ``munmap``-ed, or trimmed from the heap,
    so every operation first faults fresh pages in: 10 to 40 % of the render
    time on 2 cores, and erratic (the thresholds adapt to the history of
    frees). This sets :data:`ALLOCATOR_SETTINGS` with ``mallopt``, the
    effect the PyTorch CPU performance guide gets by preloading jemalloc or
    tcmalloc. The cost: this process keeps up to 256 MiB of freed memory.

    Process-wide; driftlab calls it at its entry points (the ``driftlab``
    command, its worker processes and its Ray tasks, whose worker processes
    belong to the run's Ray job), never from library code. Call it once at
    the start of a script that renders many views.

    Returns
    -------
    bool
        True when the settings were applied; False off glibc (macOS, musl,
        Windows), where nothing changes.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc
        return False
    codes = {
        "M_MMAP_THRESHOLD": _M_MMAP_THRESHOLD,
        "M_TRIM_THRESHOLD": _M_TRIM_THRESHOLD,
        "M_TOP_PAD": _M_TOP_PAD,
    }
    return all(mallopt(codes[k], v) == 1 for k, v in ALLOCATOR_SETTINGS.items())


def watch_parent(parent_pid: int, interval: float = 1.0) -> None:
    """Exit this (worker) process as soon as ``parent_pid`` is no longer its parent."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL("libc.so.6", use_errno=True)
            libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG
        except OSError:  # pragma: no cover - libc without prctl
            pass
    if os.getppid() != parent_pid:  # the parent died before the call above
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(interval)
            if os.getppid() != parent_pid:
                os._exit(1)

    threading.Thread(target=watch, name="driftlab-parent-watch", daemon=True).start()


def _initialise(events: Any, path: list[str], parent: int) -> None:
    global _EVENTS
    _EVENTS = events
    sys.path[:] = path
    watch_parent(parent)
    os.environ["DRIFTLAB_WORKER"] = "1"
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    tune_allocator()
    import torch

    torch.set_num_threads(1)


def worker_events() -> Any:
    """The event queue of this worker's pool (None outside a pool worker or without one)."""
    return _EVENTS


def process_pool(workers: int, events: Any = None) -> ProcessPoolExecutor:
    """A pool of ``workers`` spawned processes following the policy above.

    Parameters
    ----------
    workers : int
        Number of processes (>= 1).
    events : multiprocessing queue, optional
        Made available to the workers through :func:`worker_events` (progress).
    """
    context = multiprocessing.get_context("spawn")
    return ProcessPoolExecutor(
        max_workers=workers,
        mp_context=context,
        initializer=_initialise,
        initargs=(events, list(sys.path), os.getpid()),
    )
