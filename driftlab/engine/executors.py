"""Executors: where the cells of an experiment run.

Two engines, chosen by ``[executor] kind`` or ``--executor``:

``local``
    This process when ``[run] workers`` is 0 or 1, otherwise a pool of
    spawned worker processes (:mod:`concurrent.futures`). On a CUDA device
    the pool has ``workers_per_gpu`` processes per visible GPU, cells being
    given GPUs in turn, so small cells keep the GPU busy.
``ray``
    Ray (:mod:`driftlab.engine.ray_executor`, the ``driftlab[ray]`` extra):
    an existing cluster (``address = "auto"`` or ``"ray://host:port"``) or a
    local instance started for the run; per-cell ``num_cpus`` / ``num_gpus``.

Cells and their jobs travel as cloudpickle payloads, so a plugin registered
in-process (not installed) is shipped by value to the workers. Workers send
progress events to the driver through a queue; only the driver writes to the
run directory. Either executor yields :class:`~driftlab.engine.cell.CellSuccess`
or :class:`~driftlab.engine.cell.CellFailure` per cell, in completion order.
Local worker processes never outlive the driver
(:func:`~driftlab.engine.cell.watch_parent`).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import queue as queue_module
import sys
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, wait
from typing import Any, Protocol

import attrs
import cloudpickle

from driftlab.engine.cell import ArrayRef, Cell, CellFailure, CellSuccess, execute_cell
from driftlab.errors import require_extra
from driftlab.workers import process_pool, worker_events

__all__ = [
    "Executor",
    "LocalExecutor",
    "device_for",
    "make_executor",
    "shipped_by_value",
]

Sink = Callable[[tuple[Any, ...]], None]


class Executor(Protocol):
    """Runs cells and yields their outcomes as they finish."""

    name: str

    def run(
        self, cells: Sequence[Cell], sink: Sink, arrays: Sequence[ArrayRef] = ()
    ) -> Iterator[CellSuccess | CellFailure]:
        """Run ``cells``; deliver progress events to ``sink`` in the driver; ``arrays``
        are the run's shared inputs (an executor may ship them to its workers)."""
        ...  # pragma: no cover - protocol


def device_for(device: str, index: int) -> str:
    """Device of the ``index``-th cell: GPUs in turn for a bare ``"cuda"`` request."""
    if device == "cuda":
        import torch

        count = max(torch.cuda.device_count(), 1)
        return f"cuda:{index % count}"
    return device


@contextlib.contextmanager
def shipped_by_value(modules: Sequence[str]) -> Iterator[list[str]]:
    """Ship these (in-process plugin) modules by value in cell payloads (cloudpickle).

    Registers each module with :func:`cloudpickle.register_pickle_by_value`
    for the duration of the block and unregisters, afterwards, the ones it
    registered (a module the caller had registered stays registered), so a
    run leaves cloudpickle's process-wide setting as it found it.

    Yields
    ------
    list of str
        The module names registered by this block.
    """
    before = set(cloudpickle.list_registry_pickle_by_value())
    added: list[Any] = []
    for name in modules:
        module = sys.modules.get(name)
        if module is None or name.startswith("driftlab.") or name in before:
            continue
        with contextlib.suppress(ValueError):  # not a real module
            cloudpickle.register_pickle_by_value(module)
            added.append(module)
    try:
        yield [module.__name__ for module in added]
    finally:
        for module in added:
            with contextlib.suppress(ValueError):
                cloudpickle.unregister_pickle_by_value(module)


# -- local process pool ------------------------------------------------------------------------


def _emit_to_queue(event: tuple[Any, ...]) -> None:
    events = worker_events()
    if events is not None:
        with contextlib.suppress(Exception):  # a full or closed queue must never fail a cell
            events.put_nowait(event)


def _run_payload(payload: bytes, device: str) -> CellSuccess | CellFailure:
    cell = cloudpickle.loads(payload)
    return execute_cell(cell, device, _emit_to_queue)


@attrs.define
class LocalExecutor:
    """In-process or spawned-process execution on this machine.

    Parameters
    ----------
    workers : int
        ``0`` or ``1``: run every cell in this process, one after another;
        more: that many worker processes (on CUDA: GPUs x ``workers_per_gpu``).
    device : str
        Resolved torch device of the run (``cpu``, ``cuda``, ``cuda:N``).
    workers_per_gpu : int
        Worker processes sharing one GPU.
    """

    workers: int = 2
    device: str = "cpu"
    workers_per_gpu: int = 2
    name: str = "local"

    def pool_size(self, cells: int) -> int:
        """Processes used for ``cells`` cells (0 means in-process)."""
        if self.workers <= 1 or cells <= 1:
            return 0
        size = self.workers
        if self.device.startswith("cuda"):
            import torch

            gpus = 1 if ":" in self.device else max(torch.cuda.device_count(), 1)
            size = gpus * self.workers_per_gpu
        return max(1, min(size, cells))

    def run(
        self, cells: Sequence[Cell], sink: Sink, arrays: Sequence[ArrayRef] = ()
    ) -> Iterator[CellSuccess | CellFailure]:
        size = self.pool_size(len(cells))
        if size == 0:
            for i, cell in enumerate(cells):
                yield execute_cell(cell, device_for(self.device, i), sink)
            return
        events = multiprocessing.get_context("spawn").Queue()
        pool = process_pool(size, events)
        finished = False
        try:
            futures = {
                pool.submit(_run_payload, cloudpickle.dumps(cell), device_for(self.device, i)): cell
                for i, cell in enumerate(cells)
            }
            pending = set(futures)
            while pending:
                done, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
                _drain(events, sink)
                for future in done:
                    exc = future.exception()
                    if exc is not None:  # the worker process died (killed, out of memory)
                        yield CellFailure(
                            futures[future].key,
                            f"worker process failed: {type(exc).__name__}: {exc}",
                            "",
                        )
                    else:
                        yield future.result()
            _drain(events, sink)
            finished = True
        finally:
            if finished:
                pool.shutdown(wait=True)
            else:  # interrupted or the consumer stopped: stop the cells still running
                processes = list((getattr(pool, "_processes", None) or {}).values())
                pool.shutdown(wait=False, cancel_futures=True)
                for process in processes:
                    process.terminate()
            events.close()
            events.cancel_join_thread()


def _drain(events: Any, sink: Sink) -> None:
    while True:
        try:
            sink(events.get_nowait())
        except queue_module.Empty:
            return
        except (OSError, ValueError, EOFError):  # pragma: no cover - queue closed
            return


def make_executor(
    kind: str,
    *,
    workers: int,
    device: str,
    workers_per_gpu: int = 2,
    address: str | None = None,
    num_cpus: float = 1.0,
    num_gpus: float = 0.0,
    ship_arrays: bool = False,
) -> Executor:
    """Build the executor named ``kind`` (``"local"`` or ``"ray"``).

    Raises
    ------
    driftlab.errors.ExtraMissingError
        ``"ray"`` without the ``driftlab[ray]`` extra installed.
    ValueError
        An unknown kind.
    """
    if kind == "local":
        return LocalExecutor(workers=workers, device=device, workers_per_gpu=workers_per_gpu)
    if kind == "ray":
        require_extra("ray", "ray", "the Ray executor ([executor] kind = 'ray')")
        from driftlab.engine.ray_executor import RayExecutor

        return RayExecutor(
            address=address,
            device=device,
            num_cpus=num_cpus,
            num_gpus=num_gpus,
            ship_arrays=ship_arrays,
        )
    raise ValueError(f"unknown executor {kind!r}; expected 'local' or 'ray'")
