"""View cache: render a raw dataset through many pipelines once and reuse the views.

Each view is stored in its own file, addressed by a key that hashes

* the raw mosaic's content (dtype, shape and bytes),
* the pipeline declaration (:meth:`driftlab.pipeline.spec.PipelineSpec.fingerprint`),
* the camera parameters the pipeline is built with,
* the code version (driftlab version plus a digest of the rendering source:
  the stage, pipeline and CFA modules and the modules of every stage function
  used, so an edited or third-party stage never returns a stale view),
* the renderer (:data:`RENDERER`: the fast batched path and its precision), and
* the storage dtype.

Views are rendered by the fast batched path
(:class:`driftlab.pipeline.batched.FastRenderer`), on the CPU or on a CUDA
device, in batches of the items whose views are missing; it matches the
static reference to float32 rounding.

Files are written atomically (a temporary file in the same folder, then
:func:`os.replace`; not fsynced, since the checksum below catches what a
power loss can leave), with the permissions of any new file
(``0o666`` less the umask), so a killed run leaves at worst a temporary file
that is never read. Temporary files are named after their writer (process id
and host) and each render first deletes those of writers that are gone (same
host, process no longer running) and any older than an hour. Every file
carries a SHA-256 checksum of its payload; a file that fails the check
(truncated, bit rot, edited) is reported as corrupt and rendered again.

File format: ``b"DLVIEW1\\n"`` + 32-byte SHA-256 of the payload + payload, the
payload being a ``.npy`` array (no pickle) of shape ``(3, H, W)``.
"""

from __future__ import annotations

import hashlib
import inspect
import io
import json
import math
import time
from collections.abc import Callable, Sequence
from concurrent.futures import as_completed
from pathlib import Path
from typing import Any

import attrs
import cloudpickle
import numpy as np
import torch

import driftlab
from driftlab.atomic import remove_stale_temporaries, write_bytes_atomic
from driftlab.camera import CameraParams
from driftlab.datasets.base import RawDataset
from driftlab.errors import DriftlabError
from driftlab.pipeline.batched import FastRenderer, FastRenderGroup
from driftlab.pipeline.resolve import ResolvedPipeline, resolve
from driftlab.pipeline.spec import PipelineSpec
from driftlab.pipeline.static import StaticPipeline
from driftlab.registry import Registry
from driftlab.workers import process_pool

__all__ = [
    "RENDERER",
    "STORE_DTYPES",
    "CacheError",
    "RenderReport",
    "ViewCache",
    "camera_digest",
    "code_version",
    "raw_digest",
    "render_identity",
]

MAGIC = b"DLVIEW1\n"
SUFFIX = ".view"
STORE_DTYPES: tuple[str, ...] = ("float32", "float16", "uint16")
RENDERER = "fast-v1:mosaic=float64,linear=float64,out=float32"
"""Identity of the renderer that makes cached views (part of every key)."""
DEFAULT_CHUNK_ITEMS = 32

_PACKAGE_DIR = Path(driftlab.__file__).resolve().parent
# driftlab sources that decide what a static pipeline renders
_RENDER_SOURCES = ("stages", "pipeline", "cfa.py", "validation.py", "params.py", "camera.py")


class CacheError(DriftlabError, RuntimeError):
    """A view is missing or corrupt, or the cache cannot be used as asked."""

    exit_code = 3


def raw_digest(raw: np.ndarray) -> str:
    """SHA-256 hex digest of a raw mosaic's dtype, shape and bytes.

    Parameters
    ----------
    raw : numpy.ndarray
        ``(H, W)`` mosaic of any dtype.

    Returns
    -------
    str
        64 hex characters; equal arrays of equal dtype give equal digests.
    """
    array = np.ascontiguousarray(raw)
    h = hashlib.sha256()
    h.update(f"{array.dtype.str}|{array.shape}|".encode())
    h.update(array.tobytes())
    return h.hexdigest()


def camera_digest(camera: CameraParams) -> str:
    """SHA-256 hex digest of every field of a camera declaration."""
    data = attrs.asdict(camera, recurse=True)
    blob = json.dumps(data, sort_keys=True, default=repr, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


def _resolved(pipeline: StaticPipeline | ResolvedPipeline) -> ResolvedPipeline:
    return pipeline.resolved if isinstance(pipeline, StaticPipeline) else pipeline


def _source_files(pipeline: StaticPipeline | ResolvedPipeline) -> list[Path]:
    files: set[Path] = set()
    for name in _RENDER_SOURCES:
        path = _PACKAGE_DIR / name
        files.update(path.rglob("*.py") if path.is_dir() else [path])
    for stage in _resolved(pipeline).stages:
        for function in (stage.spec.static, stage.spec.differentiable):
            try:
                source = inspect.getsourcefile(function)  # type: ignore[arg-type]
            except TypeError:
                source = None
            if source:
                files.add(Path(source).resolve())
    return sorted(p for p in files if p.is_file())


def code_version(pipeline: StaticPipeline | ResolvedPipeline) -> str:
    """Version tag of the code that renders ``pipeline``.

    Parameters
    ----------
    pipeline : StaticPipeline or ResolvedPipeline
        A built or resolved pipeline; the modules of its stages' functions
        (both forms) are included.

    Returns
    -------
    str
        ``"<driftlab version>+<16 hex digits>"``, the digest covering the
        content of driftlab's stage, pipeline (the fast render path
        included), CFA, parameter, camera and validation modules and of every
        stage function's module.
    """
    h = hashlib.sha256()
    for path in _source_files(pipeline):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return f"{driftlab.__version__}+{h.hexdigest()[:16]}"


def render_identity(
    camera: CameraParams, pipelines: Sequence[StaticPipeline | ResolvedPipeline]
) -> dict[str, str]:
    """Run-identity entries for what renders a run's views beside its declarations.

    A pipeline's fingerprint covers its declaration only; the camera the
    views are rendered for and the code that renders them change every view
    too. Experiments add these entries to their run identity, so a resumed run
    whose camera or rendering code changed recomputes its cells instead of
    reusing results of other views.

    Parameters
    ----------
    camera : CameraParams
        The camera every pipeline is built for.
    pipelines : sequence of StaticPipeline or ResolvedPipeline
        Every pipeline the run renders (resolved for ``camera``).

    Returns
    -------
    dict
        ``{"camera.sha256": camera_digest(camera), "render.code": version}``,
        ``version`` being :func:`code_version` of each pipeline joined in
        order (one entry per distinct version, so a run of pipelines of
        built-in stages has one).
    """
    versions = list(dict.fromkeys(code_version(p) for p in pipelines))
    return {"camera.sha256": camera_digest(camera), "render.code": " ".join(versions)}


@attrs.frozen
class RenderReport:
    """Outcome of :meth:`ViewCache.render`.

    Attributes
    ----------
    rendered : int
        Views rendered because no file existed.
    reused : int
        Views found in the cache and verified.
    repaired : int
        Views whose file was corrupt and that were rendered again.
    keys : dict of str to tuple of str
        Per pipeline name, the cache key of every item in dataset order.
    seconds : float
        Wall-clock time.
    """

    rendered: int
    reused: int
    repaired: int
    keys: dict[str, tuple[str, ...]]
    seconds: float

    @property
    def total(self) -> int:
        """Number of (item, pipeline) views handled."""
        return self.rendered + self.reused + self.repaired

    def summary(self) -> dict[str, Any]:
        """Plain-data counts for manifests and logs (keys left out)."""
        return {
            "rendered": self.rendered,
            "reused": self.reused,
            "repaired": self.repaired,
            "seconds": round(self.seconds, 3),
            "pipelines": sorted(self.keys),
        }


def _encode(view: np.ndarray, dtype: str) -> np.ndarray:
    if dtype == "uint16":
        return np.round(np.clip(view, 0.0, 1.0) * 65535.0).astype(np.uint16)
    return np.asarray(view, dtype=dtype)


def _decode(stored: np.ndarray) -> np.ndarray:
    if stored.dtype == np.uint16:
        return (stored.astype(np.float32) / np.float32(65535.0)).astype(np.float32)
    return stored.astype(np.float32)


@attrs.frozen
class _Job:
    """Work sent to a worker: a chunk of items and everything needed to render them."""

    dataset: RawDataset
    indices: tuple[int, ...]
    pipelines: tuple[ResolvedPipeline, ...]
    key_parts: tuple[str, ...]
    root: str
    dtype: str
    device: str = "cpu"
    threads: int = 0  # torch intra-op threads to use in a worker process (0: leave as is)


class ViewCache:
    """A folder of rendered views, addressed by content.

    Parameters
    ----------
    root : str or Path
        Cache folder (created on first write); views live in
        ``root/<key[:2]>/<key>.view``.
    dtype : {"float32", "float16", "uint16"}
        Storage type: ``float32`` is exact; ``float16`` halves the size
        (about 3 significant digits); ``uint16`` clips to [0, 1] and
        quantises to 1/65535.
    code_version : str or None
        Override the automatic :func:`code_version` (e.g. to share a cache
        across checkouts you know to be equivalent).

    Raises
    ------
    CacheError
        Unknown ``dtype``.
    """

    def __init__(
        self, root: str | Path, *, dtype: str = "float32", code_version: str | None = None
    ) -> None:
        if dtype not in STORE_DTYPES:
            raise CacheError(f"cache dtype must be one of {STORE_DTYPES}, got {dtype!r}")
        self.root = Path(root)
        self.dtype = dtype
        self._code_version = code_version

    # -- keys and files --------------------------------------------------------------------
    def key_part(self, pipeline: StaticPipeline | ResolvedPipeline) -> str:
        """Everything in a key except the raw: pipeline, camera, code version, renderer, dtype."""
        resolved = _resolved(pipeline)
        version = self._code_version or code_version(resolved)
        return "|".join(
            (
                resolved.spec.fingerprint(),
                camera_digest(resolved.camera),
                version,
                RENDERER,
                self.dtype,
            )
        )

    @staticmethod
    def combine(raw_hash: str, key_part: str) -> str:
        """Key of one view from :func:`raw_digest` and :meth:`key_part` (SHA-256 hex)."""
        return hashlib.sha256(f"{raw_hash}|{key_part}".encode()).hexdigest()

    def key(self, raw: np.ndarray, pipeline: StaticPipeline | ResolvedPipeline) -> str:
        """Cache key of ``pipeline(raw)``."""
        return self.combine(raw_digest(raw), self.key_part(pipeline))

    def path(self, key: str) -> Path:
        """File of a key (whether or not it exists)."""
        if len(key) != 64 or any(c not in "0123456789abcdef" for c in key):
            raise CacheError(f"not a cache key (64 hex digits): {key!r}")
        return self.root / key[:2] / f"{key}{SUFFIX}"

    def read(self, key: str) -> tuple[str, np.ndarray | None]:
        """Look a view up.

        Returns
        -------
        (status, view)
            ``("missing", None)``, ``("corrupt", None)`` (bad magic, checksum,
            array format or shape) or ``("ok", view)`` with the ``(3, H, W)``
            float32 view.
        """
        return _read(self.path(key), self.dtype)

    def load(self, key: str) -> np.ndarray:
        """The ``(3, H, W)`` float32 view of ``key``.

        Raises
        ------
        CacheError
            If the file is missing or corrupt (naming the file).
        """
        status, view = self.read(key)
        if view is None:
            raise CacheError(f"{self.path(key)}: view is {status}; render it again")
        return view

    def write(self, key: str, view: np.ndarray) -> Path:
        """Store a view atomically (temporary file, :func:`os.replace`; see the module doc).

        Parameters
        ----------
        key : str
            Cache key.
        view : numpy.ndarray
            ``(3, H, W)`` float view.

        Returns
        -------
        Path
            The final file.

        Raises
        ------
        CacheError
            If ``view`` is not ``(3, H, W)``.
        """
        return _write(self.path(key), view, self.dtype)

    def clean_temp(self, older_than: float = 3600.0) -> int:
        """Delete temporary files left by killed or failed writers.

        A temporary file is deleted when its writer is gone (its name
        records the process id and host; same host, process not running) or
        when it has not been modified for ``older_than`` seconds (writers on
        other hosts of a shared folder, names without a writer). A live
        writer's recent file is never touched.

        Parameters
        ----------
        older_than : float
            Age in seconds after which any temporary file is deleted.

        Returns
        -------
        int
            Number of files removed.
        """
        return remove_stale_temporaries(self.root, older_than)

    # -- rendering -------------------------------------------------------------------------
    def render(
        self,
        dataset: RawDataset,
        pipelines: Sequence[PipelineSpec | StaticPipeline | ResolvedPipeline],
        *,
        camera: CameraParams | None = None,
        registry: Registry | None = None,
        workers: int = 0,
        chunk_size: int | None = None,
        progress: Callable[[int, int], None] | None = None,
        device: str | torch.device = "cpu",
    ) -> RenderReport:
        """Make sure every view of ``dataset`` through ``pipelines`` is in the cache.

        Missing views are rendered by the fast batched path
        (:class:`~driftlab.pipeline.batched.FastRenderer`), a chunk of items
        at a time, on ``device``.

        Parameters
        ----------
        dataset : RawDataset
            Items to render (``sample.raw`` ``(H, W)`` in [0, 1]).
        pipelines : sequence of PipelineSpec, StaticPipeline or ResolvedPipeline
            Pipelines to render; names must be unique.
        camera : CameraParams or None
            Camera for :class:`PipelineSpec` entries; defaults to the dataset's.
        registry : Registry or None
            Registry to resolve specs with (default: installed plugins).
        workers : int
            0 renders in this process; ``n > 0`` uses ``n`` CPU worker
            processes, one torch thread each (the dataset and pipelines must
            be picklable). Ignored on a CUDA device, which renders in this
            process.
        chunk_size : int or None
            Items per task (default: about four tasks per worker, or
            :data:`DEFAULT_CHUNK_ITEMS` in this process).
        progress : callable, optional
            ``progress(items_done, items_total)`` after every chunk of items
            (the experiment engine forwards it to its display).
        device : str or torch.device
            Where to render: ``"cpu"`` or a CUDA device (``"cuda"``, ``"cuda:1"``).

        Returns
        -------
        RenderReport
            Counts of rendered, reused and repaired views and every key.

        Raises
        ------
        CacheError
            Duplicate pipeline names, negative ``workers``, or objects that
            cannot be sent to worker processes.
        driftlab.pipeline.spec.SpecError
            A pipeline that does not resolve for the camera.
        driftlab.pipeline.outputs.StageOutputError
            A stage returned a wrong shape or dtype or NaN/Inf values.
        """
        start = time.perf_counter()
        camera = camera or dataset.spec.camera
        resolved = [
            p
            if isinstance(p, ResolvedPipeline)
            else (p.resolved if isinstance(p, StaticPipeline) else resolve(p, camera, registry))
            for p in pipelines
        ]
        names = [p.name for p in resolved]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise CacheError(f"pipeline names must be unique, repeated: {', '.join(duplicates)}")
        if isinstance(workers, bool) or int(workers) < 0:
            raise CacheError(f"workers must be >= 0, got {workers!r}")
        device = str(torch.device(device))
        workers = 0 if device.startswith("cuda") else int(workers)
        for p in resolved:  # fails on a stage without any form before anything is written
            FastRenderer(p, device="cpu")
        self.clean_temp()
        n = len(dataset)
        parts = tuple(self.key_part(p) for p in resolved)
        if chunk_size is None:
            chunk_size = max(1, math.ceil(n / (4 * workers))) if workers else DEFAULT_CHUNK_ITEMS
        chunks = [tuple(range(i, min(n, i + chunk_size))) for i in range(0, n, chunk_size)]
        jobs = [
            _Job(
                dataset,
                chunk,
                tuple(resolved),
                parts,
                str(self.root),
                self.dtype,
                device,
                threads=1 if workers else 0,
            )
            for chunk in chunks
        ]
        keys: list[list[str]] = [[""] * n for _ in resolved]
        counts = {"rendered": 0, "reused": 0, "repaired": 0}

        def collect(result: list[tuple[int, list[tuple[str, str]]]]) -> int:
            for index, entries in result:
                for k, (key, status) in enumerate(entries):
                    keys[k][index] = key
                    counts[status] += 1
            return len(result)

        done = 0

        def advance(count: int) -> None:
            nonlocal done
            done += count
            if progress is not None:
                progress(done, n)

        if workers == 0 or len(jobs) <= 1:
            for job in jobs:
                advance(collect(_run_job(attrs.evolve(job, threads=0))))
        else:
            try:
                payloads = [cloudpickle.dumps(job) for job in jobs]
            except Exception as exc:
                raise CacheError(
                    "the dataset or a pipeline cannot be sent to worker processes "
                    f"({type(exc).__name__}: {exc}); use workers=0"
                ) from exc
            with process_pool(workers) as pool:
                futures = [pool.submit(_run_job_payload, payload) for payload in payloads]
                for future in as_completed(futures):
                    advance(collect(future.result()))
        return RenderReport(
            rendered=counts["rendered"],
            reused=counts["reused"],
            repaired=counts["repaired"],
            keys={name: tuple(k) for name, k in zip(names, keys, strict=True)},
            seconds=time.perf_counter() - start,
        )


def _read(path: Path, dtype: str) -> tuple[str, np.ndarray | None]:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return "missing", None
    head = len(MAGIC) + 32
    if len(data) < head or not data.startswith(MAGIC):
        return "corrupt", None
    digest, payload = data[len(MAGIC) : head], data[head:]
    if hashlib.sha256(payload).digest() != digest:
        return "corrupt", None
    try:
        stored = np.load(io.BytesIO(payload), allow_pickle=False)
    except (ValueError, OSError, EOFError):
        return "corrupt", None
    if stored.ndim != 3 or stored.shape[0] != 3 or stored.dtype != np.dtype(dtype):
        return "corrupt", None
    return "ok", _decode(stored)


def _write(path: Path, view: np.ndarray, dtype: str) -> Path:
    array = np.asarray(view)
    if array.ndim != 3 or array.shape[0] != 3:
        raise CacheError(f"{path}: a view must be (3, H, W), got shape {array.shape}")
    buffer = io.BytesIO()
    np.save(buffer, _encode(array, dtype), allow_pickle=False)
    payload = buffer.getvalue()
    # not fsynced: every read checks the checksum and recomputes a damaged entry
    return write_bytes_atomic(
        MAGIC + hashlib.sha256(payload).digest() + payload, path, durable=False
    )


def _fits(view: np.ndarray | None, raw: np.ndarray) -> bool:
    """Whether a cached ``(3, H, W)`` view has the raw mosaic's ``H, W`` and finite values."""
    return view is not None and view.shape[-2:] == raw.shape[-2:] and bool(np.isfinite(view).all())


def _run_job_payload(payload: bytes) -> list[tuple[int, list[tuple[str, str]]]]:
    """:func:`_run_job` on a cloudpickled job (plugins registered in-process travel by value)."""
    return _run_job(cloudpickle.loads(payload))


def _render_together(
    renderers: list[FastRenderer], members: list[int], batch: np.ndarray
) -> dict[int, np.ndarray]:
    """Views of ``batch`` per pipeline index, pipelines of one camera context rendered as one
    :class:`~driftlab.pipeline.batched.FastRenderGroup`."""
    by_context: dict[Any, list[int]] = {}
    for position, renderer in enumerate(renderers):
        by_context.setdefault(renderer.context, []).append(position)
    out: dict[int, np.ndarray] = {}
    for positions in by_context.values():
        group = FastRenderGroup([renderers[p] for p in positions])
        views = group(batch)
        for p in positions:
            out[members[p]] = views[renderers[p].name].cpu().numpy()
    return out


def _run_job(job: _Job) -> list[tuple[int, list[tuple[str, str]]]]:
    """Render or reuse every view of a chunk; returns (index, [(key, status)]) per item.

    Missing views are rendered with the fast path: the pipelines missing the
    same items together (:class:`~driftlab.pipeline.batched.FastRenderGroup`,
    sharing their common stages), one batch per raw shape.
    """
    if job.threads:
        torch.set_num_threads(job.threads)  # a worker process of ours: no oversubscription
    root = Path(job.root)
    raws = {index: np.asarray(job.dataset[index].raw) for index in job.indices}
    entries: dict[int, list[tuple[str, str]]] = {index: [] for index in job.indices}
    # which views are missing, per pipeline
    missing: dict[int, dict[int, tuple[Path, str]]] = {}
    for k, part in enumerate(job.key_parts):
        missing[k] = {}
        for index, raw in raws.items():
            key = ViewCache.combine(raw_digest(raw), part)
            path = root / key[:2] / f"{key}{SUFFIX}"
            status, view = _read(path, job.dtype)
            if status == "ok" and not _fits(view, raw):
                status = "corrupt"  # a well-formed file holding the wrong size or NaN/Inf
            if status == "ok":
                entries[index].append((key, "reused"))
            else:
                entries[index].append((key, "pending"))
                missing[k][index] = (path, status)
    # pipelines missing the same items render together, sharing their common stages
    groups: dict[tuple[int, ...], list[int]] = {}
    for k, items in missing.items():
        if items:
            groups.setdefault(tuple(sorted(items)), []).append(k)
    for indices, members in groups.items():
        renderers = [FastRenderer(job.pipelines[k], device=job.device) for k in members]
        by_shape: dict[tuple[int, ...], list[int]] = {}
        for index in indices:
            by_shape.setdefault(raws[index].shape, []).append(index)
        for same_shape in by_shape.values():
            batch = np.stack([raws[index] for index in same_shape])
            for k, views in _render_together(renderers, members, batch).items():
                for index, view in zip(same_shape, views, strict=True):
                    path, status = missing[k][index]
                    _write(path, view, job.dtype)
                    key = entries[index][k][0]
                    entries[index][k] = (key, "repaired" if status == "corrupt" else "rendered")
    return [(index, entries[index]) for index in job.indices]
