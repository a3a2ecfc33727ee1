"""Running independent cells of work, in this process or in worker processes.

Shared by the synthesis and optimisation runners: each cell is a picklable
job run by a module-level function; with ``workers > 1`` every cell runs in
a spawned worker process with one torch thread (the processes already use
every core), however many cells remain, so a resumed run computes each cell
exactly as an uninterrupted one does.
"""

from __future__ import annotations

import multiprocessing
import signal
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any, TypeVar

import torch

__all__ = ["execute_cells", "sigterm_as_interrupt"]

Job = TypeVar("Job")


def _worker_init() -> None:
    torch.set_num_threads(1)


def execute_cells(
    function: Callable[[Job], Any], jobs: Sequence[Job], workers: int
) -> Iterator[tuple[Job, Any]]:
    """Yield ``(job, function(job))`` as cells finish.

    Parameters
    ----------
    function : callable
        Module-level function (picklable for worker processes).
    jobs : sequence
        Picklable job descriptions.
    workers : int
        ``<= 1`` runs in this process; otherwise that many spawned processes.

    Notes
    -----
    If the consumer stops early (an exception, KeyboardInterrupt, SIGTERM
    turned into an interrupt), the cells still running are terminated.
    """
    if not jobs:
        return
    if workers <= 1:
        for job in jobs:
            yield job, function(job)
        return
    context = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_worker_init)
    completed = False
    try:
        futures = {pool.submit(function, job): job for job in jobs}
        for future in as_completed(futures):
            yield futures[future], future.result()
        completed = True
    finally:
        if completed:
            pool.shutdown(wait=True)
        else:  # interrupted or failed: stop the cells still running
            processes = list((getattr(pool, "_processes", None) or {}).values())
            pool.shutdown(wait=False, cancel_futures=True)
            for process in processes:
                process.terminate()


def sigterm_as_interrupt() -> Callable[[], None]:
    """Turn SIGTERM into KeyboardInterrupt so atomic writes clean up; return the undo.

    Does nothing (and returns a no-op) outside the main thread.
    """

    def handler(signum: int, frame: Any) -> None:  # pragma: no cover - needs an outside signal
        raise KeyboardInterrupt("terminated by SIGTERM; rerun the same command to resume")

    previous = signal.getsignal(signal.SIGTERM)
    try:
        signal.signal(signal.SIGTERM, handler)
    except ValueError:
        return lambda: None
    return lambda: signal.signal(signal.SIGTERM, previous)
