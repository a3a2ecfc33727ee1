"""Cells: the unit of work and of resumption of every experiment.

An experiment turns its plan into :class:`Cell` objects: a key (the stem of
the cell's files), a label for the progress display, a module-level function
and a picklable job. An executor runs ``function(job, context)`` somewhere
(this process, a local worker process, a Ray worker) and hands the returned
:class:`CellOutput` back to the driver, which alone writes to the run
directory. A cell must depend only on its job: every random choice comes
from seeds in the job (see :func:`driftlab.naming.derive_seed`).

:func:`execute_cell` is what every executor calls. It isolates the cell
from its host process: the global torch, numpy and ``random`` generator
states and the torch thread count are restored afterwards, so running a
cell in the caller's process has no side effect on the caller, and every
cell runs with one torch thread wherever it runs (results are then
byte-identical across executors).
"""

from __future__ import annotations

import os
import random
import socket
import time
import traceback
from collections.abc import Callable, Mapping
from contextlib import contextmanager
from typing import Any

import attrs
import numpy as np
import torch

__all__ = [
    "ArrayRef",
    "Cell",
    "CellContext",
    "CellFailure",
    "CellOutput",
    "CellSuccess",
    "execute_cell",
    "isolated_state",
]

Event = tuple[Any, ...]


@attrs.frozen
class ArrayRef:
    """A shared input array of a run (e.g. a stack of views), by path and checksum.

    Attributes
    ----------
    path : str
        ``.npy`` file in the run directory's ``arrays/`` folder.
    sha256 : str
        Checksum recorded when it was written (verified by the driver before
        the cells start).
    shape : tuple of int
    dtype : str
    """

    path: str
    sha256: str
    shape: tuple[int, ...]
    dtype: str


@attrs.frozen
class CellOutput:
    """What one cell hands back to the driver.

    Attributes
    ----------
    rows : list of dict
        Tidy result rows; the experiment's schema names their columns.
    arrays : dict of str to numpy.ndarray
        Per-item data (predictions, ...), stored as ``cells/KEY.npz`` (no pickle).
    files : dict of str to bytes
        Named artefacts stored as ``models/KEY.NAME`` (e.g. ``"pt"`` weights).
    info : dict
        JSON-ready details stored in the cell record.
    """

    rows: list[dict[str, Any]]
    arrays: dict[str, np.ndarray] = attrs.field(factory=dict)
    files: dict[str, bytes] = attrs.field(factory=dict)
    info: dict[str, Any] = attrs.field(factory=dict)


@attrs.frozen
class Cell:
    """One unit of work.

    Attributes
    ----------
    key : str
        Unique within the run; stem of the cell's files (see
        :func:`driftlab.naming.cell_key`).
    label : str
        Shown by the progress display.
    function : callable
        Module-level ``function(job, context) -> CellOutput``.
    job : object
        Picklable description of the work (plain data, specs, the registry).
    """

    key: str
    label: str
    function: Callable[[Any, CellContext], CellOutput]
    job: Any


@attrs.frozen
class CellSuccess:
    """A finished cell: its output and where/how long it ran."""

    key: str
    output: CellOutput
    device: str
    seconds: float
    host: str
    pid: int


@attrs.frozen
class CellFailure:
    """A cell that raised: the error and the traceback from the process that ran it."""

    key: str
    message: str
    traceback: str


class CellContext:
    """What a running cell may use besides its job.

    Parameters
    ----------
    key : str
        The cell's key.
    device : str
        Torch device to compute on (``cpu``, ``cuda:0`` ...).
    emit : callable, optional
        Sends progress events to the driver.
    arrays : mapping, optional
        Arrays shipped through an object store, by path (Ray); others are
        memory-mapped from the shared run directory.
    """

    def __init__(
        self,
        key: str,
        device: str,
        emit: Callable[[Event], None] | None = None,
        arrays: Mapping[str, Any] | None = None,
    ) -> None:
        self.key = key
        self.device = device
        self._emit = emit
        self._arrays = dict(arrays or {})
        self._last = 0.0

    def progress(self, done: int, total: int, text: str = "") -> None:
        """Report progress of this cell (throttled to a few events per second)."""
        now = time.monotonic()
        if self._emit is None or (now - self._last < 0.25 and done < total):
            return
        self._last = now
        self._emit(("progress", self.key, int(done), int(total), text))

    def load_array(self, ref: ArrayRef, index: np.ndarray | None = None) -> np.ndarray:
        """Rows ``index`` (all when None) of a shared array, as float32/int64 in memory.

        Raises
        ------
        ValueError
            If the file's shape or dtype differ from the reference (it was
            replaced after the driver checked it).
        """
        if ref.path in self._arrays:
            array = self._arrays[ref.path]
            if not isinstance(array, np.ndarray):  # a Ray object reference
                import ray

                array = ray.get(array)
        else:
            array = np.load(ref.path, mmap_mode="r", allow_pickle=False)
        if tuple(array.shape) != tuple(ref.shape) or str(array.dtype) != ref.dtype:
            raise ValueError(
                f"{ref.path}: holds {array.dtype}{tuple(array.shape)}, expected "
                f"{ref.dtype}{tuple(ref.shape)}; the run directory changed while running"
            )
        return np.array(array if index is None else array[index])


@contextmanager
def isolated_state(threads: int | None = 1, cuda: bool | None = None):
    """Run a block with ``threads`` torch threads and restore every global RNG afterwards.

    Saves and restores the torch CPU generator state, the CUDA generator
    states of every visible GPU (when ``cuda`` is true; ``None``: when CUDA
    is already initialised in this process), numpy's legacy global state
    and Python's ``random`` state, and the torch intra-op thread count
    (``threads=None`` leaves it alone).

    When ``cuda`` is true the block also runs with deterministic kernels
    (``torch.use_deterministic_algorithms(True, warn_only=True)``, cuDNN
    deterministic and not benchmarking), restored afterwards: a cell computed
    again on the same GPU, e.g. after an interrupted run, gives the same
    numbers. Operations without a deterministic CUDA kernel warn instead of
    failing; cuBLAS is deterministic only with ``CUBLAS_WORKSPACE_CONFIG``
    set before CUDA starts, which driftlab's worker processes do
    (:mod:`driftlab.workers`).
    """
    previous_threads = torch.get_num_threads()
    previous_kernels = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
        torch.backends.cudnn.deterministic,
        torch.backends.cudnn.benchmark,
    )
    np_state = np.random.get_state()
    py_state = random.getstate()
    if cuda is None:
        cuda = torch.cuda.is_initialized()
    devices = list(range(torch.cuda.device_count())) if cuda and torch.cuda.is_available() else []
    if threads is not None:
        torch.set_num_threads(threads)
    if cuda:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
    try:
        with torch.random.fork_rng(devices=devices):
            yield
    finally:
        torch.set_num_threads(previous_threads)
        enabled, warn_only, cudnn_deterministic, cudnn_benchmark = previous_kernels
        torch.use_deterministic_algorithms(enabled, warn_only=warn_only)
        torch.backends.cudnn.deterministic = cudnn_deterministic
        torch.backends.cudnn.benchmark = cudnn_benchmark
        np.random.set_state(np_state)
        random.setstate(py_state)


def execute_cell(
    cell: Cell,
    device: str,
    emit: Callable[[Event], None] | None = None,
    arrays: Mapping[str, Any] | None = None,
) -> CellSuccess | CellFailure:
    """Run one cell in this process, isolated (see module docstring); never raises
    for an error of the cell itself (KeyboardInterrupt and SystemExit propagate)."""
    if device == "cuda":  # a bare request (e.g. a Ray task given one GPU): name the index
        device = f"cuda:{torch.cuda.current_device()}"
    context = CellContext(cell.key, device, emit, arrays)
    if emit is not None:
        emit(("start", cell.key, cell.label, os.getpid()))
    started = time.perf_counter()
    try:
        with isolated_state(threads=1, cuda=device.startswith("cuda")):
            output = cell.function(cell.job, context)
        if not isinstance(output, CellOutput):
            raise TypeError(
                f"cell function {getattr(cell.function, '__name__', cell.function)!r} returned "
                f"{type(output).__name__}; expected CellOutput"
            )
    except Exception as exc:
        return CellFailure(cell.key, f"{type(exc).__name__}: {exc}", traceback.format_exc())
    finally:
        if emit is not None:
            emit(("end", cell.key))
    return CellSuccess(
        key=cell.key,
        output=output,
        device=device,
        seconds=time.perf_counter() - started,
        host=socket.gethostname(),
        pid=os.getpid(),
    )
