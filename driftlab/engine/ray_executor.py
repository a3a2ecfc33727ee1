"""The Ray executor (``[executor] kind = "ray"``; needs the ``driftlab[ray]`` extra).

Cells run as Ray tasks (``num_cpus`` / ``num_gpus`` per cell, fractions allowed,
so several cells share one GPU). ``address`` selects the cluster: ``None``
starts a local instance for the run and stops it afterwards (an instance the
caller already started with ``ray.init`` is used as is); ``"auto"`` joins the
cluster of this machine; ``"ray://host:port"`` connects through Ray Client.

Data movement: the driver alone writes the run directory; cells return
their outputs (rows, per-item arrays, model bytes) through Ray's object
store. Inputs (view stacks, mosaics) are read by path from the run directory,
which therefore must be on a filesystem every node mounts at the same path,
unless ``ship_arrays = true``: the driver then puts each input array into the
object store once and cells read it from there (no shared filesystem
needed; the arrays must fit the object store). Every node needs the same
Python environment (driftlab and installed plugins); plugins registered
in-process are shipped with the cells by value.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator, Sequence
from typing import Any

import attrs
import cloudpickle
import numpy as np

from driftlab.engine.cell import ArrayRef, Cell, CellFailure, CellSuccess, execute_cell
from driftlab.errors import ExecutorError, require_extra
from driftlab.workers import tune_allocator

__all__ = ["RayExecutor"]


def _ray_cell(payload: bytes, device: str, events: Any, shipped: dict[str, Any]):
    tune_allocator()  # a Ray worker process: as driftlab's own workers (driftlab.workers)
    cell = cloudpickle.loads(payload)

    def emit(event: tuple[Any, ...]) -> None:
        with contextlib.suppress(Exception):  # progress must never fail a cell
            events.put_nowait(event)

    return execute_cell(cell, device, emit, shipped)


@attrs.define
class RayExecutor:
    """Run cells as Ray tasks (see module docstring).

    Parameters
    ----------
    address : str or None
        Cluster address; None starts (and afterwards stops) a local instance.
    device : str
        Resolved torch device of the run; CUDA needs ``num_gpus > 0``.
    num_cpus, num_gpus : float
        Resources of each cell.
    ship_arrays : bool
        Move input arrays through the object store instead of a shared filesystem.

    Raises
    ------
    driftlab.errors.ExecutorError
        From :meth:`run`: Ray cannot start or reach the cluster at ``address``.
    """

    address: str | None = None
    device: str = "cpu"
    num_cpus: float = 1.0
    num_gpus: float = 0.0
    ship_arrays: bool = False
    name: str = "ray"

    def _init(self) -> bool:
        import ray

        if ray.is_initialized():
            return False
        options: dict[str, Any] = {
            "include_dashboard": False,
            "logging_level": logging.WARNING,
            "log_to_driver": True,
        }
        try:
            if self.address:
                ray.init(address=self.address, **options)
            else:
                paths = [p for p in sys.path if p and os.path.isdir(p)]
                ray.init(
                    num_cpus=os.cpu_count() or 1,
                    job_config=ray.job_config.JobConfig(code_search_path=paths),
                    **options,
                )
        except Exception as exc:  # Ray raises ConnectionError, RuntimeError, ValueError ...
            where = f"the Ray cluster at {self.address!r}" if self.address else "local Ray"
            raise ExecutorError(
                f"[executor]: cannot start {where} ({type(exc).__name__}: {exc}); check "
                "[executor].address, or use --executor local. Finished cells are kept"
            ) from None
        return True

    def run(
        self, cells: Sequence[Cell], sink, arrays: Sequence[ArrayRef] = ()
    ) -> Iterator[CellSuccess | CellFailure]:
        require_extra("ray", "ray", "the Ray executor ([executor] kind = 'ray')")
        import ray
        from ray.util.queue import Empty, Queue

        if not cells:
            return
        started = self._init()
        events = Queue()
        shipped: dict[str, Any] = {}
        if self.ship_arrays:
            for ref in arrays:
                shipped[ref.path] = ray.put(np.load(ref.path, allow_pickle=False))
        device = "cuda" if self.device.startswith("cuda") else self.device
        task = ray.remote(_ray_cell).options(
            num_cpus=self.num_cpus, num_gpus=self.num_gpus, max_retries=0
        )
        refs = {task.remote(cloudpickle.dumps(c), device, events, shipped): c for c in cells}
        pending = list(refs)
        finished = False

        def drain() -> None:
            while True:
                try:
                    sink(events.get_nowait())
                except Empty:
                    return

        try:
            while pending:
                ready, pending = ray.wait(pending, num_returns=1, timeout=0.2)
                drain()
                for ref in ready:
                    try:
                        yield ray.get(ref)
                    except Exception as exc:  # the task's worker died
                        yield CellFailure(refs[ref].key, f"Ray task failed: {exc}", "")
            drain()
            finished = True
        finally:
            if not finished:
                for ref in pending:
                    ray.cancel(ref, force=True)
            with contextlib.suppress(Exception):  # already gone
                ray.kill(events.actor)
            if started:
                ray.shutdown()
