"""driftlab's one worker-process policy, used by every pool (cells, view rendering).

Worker processes are *spawned*, never forked: forking a process whose torch
(OpenMP) or CUDA threads are running can deadlock the child, which is what
made parts of the test suite hang when CUDA was visible. Each worker

* sees the parent's ``sys.path`` (plugins found on it stay importable),
* uses one torch thread (the processes already use the cores),
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

__all__ = ["process_pool", "watch_parent", "worker_events"]

_EVENTS: Any = None


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
