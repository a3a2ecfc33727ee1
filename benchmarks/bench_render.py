"""Rendering benchmark: driftlab's render paths vs a per-image reference, one run.

Renders the paper's twelve data models on 256x256 tiles of the real openISP
raw frame (``shared/data/openisp``; a seeded synthetic mosaic of the same size
when the file is absent, labelled as such) and prints:

1. views: the fast batched render path (:class:`driftlab.pipeline.FastRenderer`,
   one pipeline at a time, and :class:`driftlab.pipeline.FastRenderGroup`, the
   twelve models together sharing their common stages, as the view cache
   renders) and driftlab's static form against the per-image static reference
   (:func:`reference.reference_static`), ms per view, with the memory-traffic
   bound beside each figure and the issue-12 target (fast <= reference / 10);
2. differentiable forward + backward per image: driftlab at batch B against
   the reference module in a per-image loop (target >= 5x), and driftlab for
   all twelve models;
3. peak memory of a batch of 64 256x256 views (each measured in a fresh
   process);
4. scaling of the fast path over batch size and tile size (time per pixel);
5. with ``--device cuda``: views per second at batch 256 for all twelve models
   against the card's device-to-device copy bandwidth;
6. equivalence: max |fast - static| and |differentiable - static| per model.

Usage::

    python benchmarks/bench_render.py [--quick] [--tiles N] [--repeats R]
        [--threads T] [--device cpu|cuda] [--json OUT] [--raw PATH]

Timings are the best of ``R`` repeats after a warm-up; the reference and
driftlab are interleaved within each repeat so that both see the same load.
See ``benchmarks/README.md`` for every column.
"""

from __future__ import annotations

import argparse
import gc
import json
import multiprocessing
import os
import platform
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path


def _wait_policy(argv: Sequence[str]) -> str | None:
    """The ``--omp-wait`` value given on the command line, if any."""
    for i, arg in enumerate(argv):
        if arg == "--omp-wait" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--omp-wait="):
            return arg.split("=", 1)[1]
    return None


# OpenMP reads its wait policy when torch is imported. By default the environment is left as
# it is (what the driftlab command runs with); --omp-wait passive or active overrides it.
if __name__ == "__main__" and _wait_policy(sys.argv[1:]) in ("passive", "active"):
    os.environ["OMP_WAIT_POLICY"] = str(_wait_policy(sys.argv[1:])).upper()

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import scipy  # noqa: E402
import skimage  # noqa: E402
import torch  # noqa: E402
from reference import (  # noqa: E402
    ReferenceTorchISP,
    has_differentiable_reference,
    reference_static,
    tile_views_max_abs,
)
from scipy import ndimage  # noqa: E402

import driftlab  # noqa: E402
from driftlab.camera import CameraParams  # noqa: E402
from driftlab.pipeline import (  # noqa: E402
    PAPER_DATA_MODELS,
    FastRenderer,
    FastRenderGroup,
    PipelineSpec,
    build_differentiable,
    build_static,
    resolve,
)
from driftlab.workers import tune_allocator  # noqa: E402

TILE = 256
FRAME_SHAPE = (1080, 1920)
WHITE_LEVEL = 1023  # 10-bit openISP frame
DEFAULT_RAW = (
    Path(__file__).resolve().parents[2]
    / "shared"
    / "data"
    / "openisp"
    / "test_1920x1080_rggb_10bit.raw"
)
SYNTHETIC_SEED = 20230401
BYTES_PER_PIXEL = 4 + 12  # read a float32 mosaic sample, write three float32 view values
FAST_TARGET = 10.0  # issue 12: fast path at least 10x the per-image static reference
BACKWARD_TARGET = 5.0  # issue 12: forward + backward at least 5x the per-image reference

# shared/DESIGN.md section 7: the original research code on the same 2-core machine
ANCHORS: tuple[tuple[str, str], ...] = (
    ("static view, per image, mean of the 12 data models", "21-30 ms (re-measured 19.0 ms)"),
    ("differentiable pipeline forward + backward, per image", "34-37 ms (re-measured 26-27)"),
    ("static vs differentiable, same configuration", "max abs diff 0.405 (borders)"),
)


# --------------------------------------------------------------------------- data


def synthetic_frame(shape: tuple[int, int] = FRAME_SHAPE, seed: int = SYNTHETIC_SEED) -> np.ndarray:
    """A seeded stand-in for the openISP frame: smooth colour scene, RGGB-sampled.

    Returns
    -------
    numpy.ndarray
        ``(H, W)`` float64 mosaic in [0, 1], quantised to 10 bit.
    """
    rng = np.random.default_rng(seed)
    h, w = shape
    planes = []
    for _ in range(3):
        field = ndimage.gaussian_filter(rng.standard_normal((h, w)), sigma=12.0)
        planes.append((field - field.min()) / (np.ptp(field) + 1e-12))
    yy, xx = np.mgrid[-1 : 1 : h * 1j, -1 : 1 : w * 1j]
    vignette = 1.0 - 0.35 * (xx**2 + yy**2)
    mosaic = np.empty((h, w))
    mosaic[0::2, 0::2] = planes[0][0::2, 0::2]
    mosaic[0::2, 1::2] = planes[1][0::2, 1::2]
    mosaic[1::2, 0::2] = planes[1][1::2, 0::2]
    mosaic[1::2, 1::2] = planes[2][1::2, 1::2]
    mosaic = 0.05 + 0.8 * mosaic * vignette + rng.normal(0.0, 0.004, (h, w))
    return np.round(np.clip(mosaic, 0.0, 1.0) * WHITE_LEVEL) / WHITE_LEVEL


def load_frame(path: Path) -> tuple[np.ndarray, str]:
    """Read the openISP frame (``(1080, 1920)`` in [0, 1]) or fall back to a synthetic one.

    Raises
    ------
    ValueError
        If the file exists but does not hold 1080 x 1920 samples.
    """
    if not path.is_file():
        return (
            synthetic_frame(),
            f"SYNTHETIC seeded mosaic (seed {SYNTHETIC_SEED}); real frame absent: {path}",
        )
    data = np.fromfile(path, dtype="<u2")
    expected = FRAME_SHAPE[0] * FRAME_SHAPE[1]
    if data.size != expected:
        raise ValueError(f"{path}: expected {expected} uint16 samples, got {data.size}")
    return data.reshape(FRAME_SHAPE) / WHITE_LEVEL, f"real openISP frame {path}"


def make_tiles(frame: np.ndarray, size: int = TILE) -> np.ndarray:
    """Whole ``size x size`` tiles of a frame in raster order, ``(N, size, size)``.

    Raises
    ------
    ValueError
        Odd ``size`` or a frame smaller than one tile.
    """
    if size % 2:
        raise ValueError(f"tile size must be even (whole CFA blocks), got {size}")
    rows, cols = frame.shape[0] // size, frame.shape[1] // size
    if rows == 0 or cols == 0:
        raise ValueError(f"frame {frame.shape} is smaller than one {size}x{size} tile")
    crop = frame[: rows * size, : cols * size]
    tiles = crop.reshape(rows, size, cols, size).transpose(0, 2, 1, 3).reshape(-1, size, size)
    return np.ascontiguousarray(tiles)


def select_tiles(tiles: np.ndarray, count: int) -> np.ndarray:
    """``count`` tiles spread evenly over the frame (all when ``count`` is 0).

    Raises
    ------
    ValueError
        If ``count`` is negative or exceeds the number of tiles.
    """
    if count < 0 or count > len(tiles):
        raise ValueError(f"--tiles must be between 1 and {len(tiles)} (0 = all), got {count}")
    if count in (0, len(tiles)):
        return tiles
    index = np.unique(np.linspace(0, len(tiles) - 1, count).round().astype(int))
    return tiles[index]


def batch_of(tiles: np.ndarray, n: int) -> np.ndarray:
    """``n`` tiles, repeating the given ones as needed, float32 (as datasets hand them out)."""
    reps = -(-n // len(tiles))
    return np.ascontiguousarray(np.concatenate([tiles] * reps)[:n], dtype=np.float32)


# --------------------------------------------------------------------------- helpers


def variants(spec: PipelineSpec) -> dict[str, str]:
    """``{slot: variant}`` of a pipeline spec."""
    return {stage.slot: stage.variant for stage in spec.stages}


def camera_arrays(camera: CameraParams) -> dict[str, np.ndarray]:
    """The camera's black level ``(4,)``, gains ``(3,)`` and matrix ``(3, 3)``."""
    return {
        "black_level": np.asarray(camera.black_level, dtype=np.float64),
        "white_balance": np.asarray(camera.white_balance, dtype=np.float64),
        "colour_matrix": np.asarray(camera.color_matrix, dtype=np.float64).reshape(3, 3),
    }


def reference_renderer(
    spec: PipelineSpec, camera: CameraParams
) -> Callable[[np.ndarray], np.ndarray]:
    """Static reference for ``spec``: ``(H, W)`` mosaic to ``(H, W, 3)`` view."""
    v = variants(spec)
    arrays = camera_arrays(camera)

    def render(raw: np.ndarray) -> np.ndarray:
        return reference_static(
            raw,
            **arrays,
            cfa=camera.cfa,
            demosaic=v["demosaic"],
            sharpen=v["sharpen"],
            denoise=v["denoise"],
        )

    return render


def reference_module(spec: PipelineSpec, camera: CameraParams) -> ReferenceTorchISP:
    """Differentiable reference module for ``spec`` (float32)."""
    v = variants(spec)
    return ReferenceTorchISP(
        **camera_arrays(camera), cfa=camera.cfa, demosaic=v["demosaic"], sharpen=v["sharpen"]
    )


def best_of(repeats: int, fn: Callable[[], None], sync: Callable[[], None] = lambda: None) -> float:
    """Smallest wall time of ``repeats`` calls of ``fn`` (seconds)."""
    best = float("inf")
    for _ in range(repeats):
        sync()
        start = time.perf_counter()
        fn()
        sync()
        best = min(best, time.perf_counter() - start)
    return best


def copy_bandwidth(megabytes: int = 256, repeats: int = 3) -> float:
    """GB/s of a large numpy copy, counting the bytes read and written."""
    src = np.ones(megabytes * 2**20 // 8)
    dst = np.empty_like(src)
    np.copyto(dst, src)
    seconds = best_of(repeats, lambda: np.copyto(dst, src))
    return 2 * src.nbytes / seconds / 1e9


def device_copy_bandwidth(device: torch.device, megabytes: int = 1024, repeats: int = 5) -> float:
    """GB/s of a device-to-device copy on a CUDA device (bytes read + written)."""
    src = torch.ones(megabytes * 2**20 // 4, device=device)
    dst = torch.empty_like(src)
    dst.copy_(src)
    seconds = best_of(repeats, lambda: dst.copy_(src), torch.cuda.synchronize)
    return 2 * src.numel() * 4 / seconds / 1e9


def bound_ms(pixels: int, bandwidth: float) -> float:
    """Memory-traffic bound in ms: read the raw and write the view once, at ``bandwidth``."""
    return BYTES_PER_PIXEL * pixels / (bandwidth * 1e9) * 1e3


# --------------------------------------------------------------------------- benchmarks


def bench_views(
    tiles: np.ndarray,
    all_tiles: np.ndarray,
    camera: CameraParams,
    repeats: int,
    bandwidth: float,
    log: Callable[[str], None],
) -> pd.DataFrame:
    """Table 1: ms per view of the reference and driftlab static (one tile at a time, over
    ``tiles``) and of the fast path (one batch of ``all_tiles``)."""
    rows = []
    batch = batch_of(all_tiles, len(all_tiles))
    bound = bound_ms(TILE * TILE, bandwidth)
    for name, spec in PAPER_DATA_MODELS.items():
        log(f"views {name}")
        ref = reference_renderer(spec, camera)
        static = build_static(spec, camera)
        resolved = resolve(spec, camera)
        fast = FastRenderer(resolved)
        fast32 = FastRenderer(resolved, linear_dtype=torch.float32)
        ref(tiles[0]), static(tiles[0]), fast(batch[:2]), fast32(batch[:2])
        t_ref = best_of(repeats, lambda f=ref: [f(t) for t in tiles]) / len(tiles)
        t_static = best_of(repeats, lambda f=static: [f(t) for t in tiles]) / len(tiles)
        t_fast = best_of(repeats, lambda f=fast: f(batch)) / len(batch)
        t_fast32 = best_of(repeats, lambda f=fast32: f(batch)) / len(batch)
        rows.append(
            {
                "data model": name,
                "reference ms/view": 1e3 * t_ref,
                "static ms/view": 1e3 * t_static,
                "fast ms/view": 1e3 * t_fast,
                "fast views/s": 1.0 / t_fast,
                "speed-up": t_ref / t_fast,
                "fast32 ms/view": 1e3 * t_fast32,
                "bound ms/view": bound,
                "fast / bound": 1e3 * t_fast / bound,
            }
        )
    table = pd.DataFrame(rows)
    mean = {"data model": "mean (12)"}
    for column in table.columns[1:]:
        mean[column] = table[column].mean()
    mean["speed-up"] = table["reference ms/view"].mean() / table["fast ms/view"].mean()
    mean["fast views/s"] = 1e3 / table["fast ms/view"].mean()
    mean["fast / bound"] = table["fast ms/view"].mean() / bound
    log("views: the twelve models together (FastRenderGroup)")
    group = FastRenderGroup([FastRenderer(resolve(s, camera)) for s in PAPER_DATA_MODELS.values()])
    group(batch[:2])
    t_group = best_of(repeats, lambda: group(batch)) / (len(batch) * len(PAPER_DATA_MODELS))
    together = {
        "data model": "12 together",
        "reference ms/view": mean["reference ms/view"],
        "static ms/view": mean["static ms/view"],
        "fast ms/view": 1e3 * t_group,
        "fast views/s": 1.0 / t_group,
        "speed-up": mean["reference ms/view"] / (1e3 * t_group),
        "fast32 ms/view": float("nan"),
        "bound ms/view": bound,
        "fast / bound": 1e3 * t_group / bound,
    }
    return pd.concat([table, pd.DataFrame([mean, together])], ignore_index=True)


def forward_backward(model: torch.nn.Module, inputs: Sequence[torch.Tensor]) -> None:
    """For every batch: forward, loss = view mean, backward to the parameters."""
    for x in inputs:
        model.zero_grad(set_to_none=True)
        model(x).mean().backward()


def bench_backward(
    tiles: np.ndarray,
    all_tiles: np.ndarray,
    camera: CameraParams,
    repeats: int,
    device: torch.device,
    log: Callable[[str], None],
) -> pd.DataFrame:
    """Table 2: forward + backward ms per image, driftlab on a batch of ``all_tiles`` vs the
    reference one image of ``tiles`` at a time."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    batch = torch.as_tensor(batch_of(all_tiles, len(all_tiles))[:, None], device=device)
    picked = torch.as_tensor(batch_of(tiles, min(len(tiles), 8)), device=device)
    singles = [picked[i : i + 1] for i in range(len(picked))]
    rows = []
    for name, spec in PAPER_DATA_MODELS.items():
        log(f"forward + backward {name}")
        ours = build_differentiable(spec, camera).to(device)
        forward_backward(ours, [batch[:2]])
        t_ours = best_of(repeats, lambda ours=ours: forward_backward(ours, [batch]), sync)
        row: dict[str, object] = {
            "data model": name,
            "driftlab ms/image": 1e3 * t_ours / len(batch),
        }
        v = variants(spec)
        if has_differentiable_reference(v["demosaic"], v["denoise"]):
            ref = reference_module(spec, camera).to(device)
            forward_backward(ref, singles[:1])
            t_ref = best_of(repeats, lambda ref=ref: forward_backward(ref, singles), sync)
            row["reference ms/image"] = 1e3 * t_ref / len(singles)
            row["speed-up"] = (t_ref / len(singles)) / (t_ours / len(batch))
        rows.append(row)
    table = pd.DataFrame(rows)
    with_ref = table.dropna(subset=["reference ms/image"])
    mean = {
        "data model": f"mean ({len(with_ref)} with a reference)",
        "driftlab ms/image": with_ref["driftlab ms/image"].mean(),
        "reference ms/image": with_ref["reference ms/image"].mean(),
        "speed-up": with_ref["reference ms/image"].mean() / with_ref["driftlab ms/image"].mean(),
    }
    return pd.concat([table, pd.DataFrame([mean])], ignore_index=True)


def _memory_probe(kind: str, name: str, raw_path: str, threads: int, tuned: bool, queue) -> None:
    """Child process: peak resident memory added by one batch of 64 views (MiB)."""
    if tuned:
        tune_allocator()
    torch.set_num_threads(threads)
    frame, _ = load_frame(Path(raw_path))
    tiles = batch_of(make_tiles(frame), 64)
    camera = driftlab.get_registry().camera("openisp")
    spec = PAPER_DATA_MODELS[name]
    if kind.startswith("fast"):
        linear = torch.float32 if kind == "fast32" else torch.float64
        renderer = FastRenderer(resolve(spec, camera), linear_dtype=linear)
        renderer(tiles[:2])
        run = lambda: renderer(tiles)  # noqa: E731
    else:
        module = build_differentiable(spec, camera)
        x = torch.as_tensor(tiles[:, None])
        if kind == "forward":
            forward_backward(module, [x[:2]])

            def run() -> None:
                with torch.no_grad():
                    module(x)
        else:
            forward_backward(module, [x[:2]])
            run = lambda: forward_backward(module, [x])  # noqa: E731
    gc.collect()
    before = _rss_mib()
    peak = [before]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _rss_mib())
            time.sleep(0.001)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    run()
    done.set()
    sampler.join()
    queue.put(max(peak[0], _rss_mib()) - before)


def _rss_mib() -> float:
    """Resident set size of this process in MiB (Linux /proc; NaN elsewhere)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as handle:
            pages = int(handle.read().split()[1])
    except OSError:
        return float("nan")
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def bench_memory(raw: Path, threads: int, tuned: bool, log: Callable[[str], None]) -> pd.DataFrame:
    """Table 3: peak memory of a batch of 64 256x256 views, each case in a fresh process."""
    rows = []
    context = multiprocessing.get_context("spawn")
    for name in ("bi,s,ga", "me,s,me"):
        for kind, label in (
            ("fast", "fast path"),
            ("fast32", "fast path, float32 linear"),
            ("forward", "differentiable forward (no grad)"),
            ("backward", "differentiable forward + backward"),
        ):
            log(f"memory {name} {kind}")
            queue = context.Queue()
            process = context.Process(
                target=_memory_probe, args=(kind, name, str(raw), threads, tuned, queue)
            )
            process.start()
            process.join()
            peak = queue.get() if process.exitcode == 0 else float("nan")
            rows.append({"data model": name, "what": label, "peak MiB above setup": peak})
    table = pd.DataFrame(rows)
    table["views' own size MiB"] = 64 * 3 * TILE * TILE * 4 / 2**20
    return table


def bench_scaling(
    frame: np.ndarray,
    camera: CameraParams,
    repeats: int,
    bandwidth: float,
    quick: bool,
    log: Callable[[str], None],
) -> pd.DataFrame:
    """Table 4: fast-path time per pixel over batch size and tile size."""
    batches = (1, 16, 64) if quick else (1, 4, 16, 64, 256)
    sizes = (128, 256, 512) if quick else (128, 256, 512, 1024)
    pixels_per_call = 2**20
    rows = []
    for name in ("bi,s,ga", "me,s,me"):
        renderer = FastRenderer(resolve(PAPER_DATA_MODELS[name], camera))
        tiles256 = make_tiles(frame, TILE)
        for n in batches:
            log(f"scaling {name} batch {n}")
            batch = batch_of(tiles256, n)
            renderer(batch[:1])
            seconds = best_of(repeats, lambda b=batch, f=renderer: f(b))
            rows.append(_scaling_row(name, n, TILE, seconds, bandwidth))
        for size in sizes:
            log(f"scaling {name} tile {size}")
            tiles = make_tiles(frame, size)
            n = max(1, pixels_per_call // (size * size))
            batch = batch_of(tiles, n)
            renderer(batch[:1])
            seconds = best_of(repeats, lambda b=batch, f=renderer: f(b))
            rows.append(_scaling_row(name, n, size, seconds, bandwidth))
    return pd.DataFrame(rows).drop_duplicates(subset=["data model", "batch", "tile"])


def _scaling_row(name: str, n: int, size: int, seconds: float, bandwidth: float) -> dict:
    pixels = n * size * size
    return {
        "data model": name,
        "batch": n,
        "tile": f"{size}x{size}",
        "ms/call": 1e3 * seconds,
        "ns/pixel": 1e9 * seconds / pixels,
        "bound ns/pixel": 1e6 * bound_ms(1, bandwidth),
    }


def bench_cuda(
    tiles: np.ndarray, camera: CameraParams, device: torch.device, log: Callable[[str], None]
) -> tuple[pd.DataFrame, float]:
    """Table 5: views/s at batch 256 on 256x256 tiles for all twelve models, on CUDA."""
    bandwidth = device_copy_bandwidth(device)
    batch = torch.as_tensor(batch_of(tiles, 256)[:, None], device=device)
    rows = []
    for name, spec in PAPER_DATA_MODELS.items():
        log(f"cuda {name}")
        renderer = FastRenderer(resolve(spec, camera), device=device)
        renderer(batch[:8])
        seconds = best_of(5, lambda renderer=renderer: renderer(batch), torch.cuda.synchronize)
        bound = bound_ms(TILE * TILE, bandwidth) / 1e3
        rows.append(
            {
                "data model": name,
                "views/s": 256 / seconds,
                "ms/view": 1e3 * seconds / 256,
                "bound views/s": 1.0 / bound,
                "bound / measured": (seconds / 256) / bound,
            }
        )
    table = pd.DataFrame(rows)
    mean = {"data model": "mean (12)"}
    for column in table.columns[1:]:
        mean[column] = table[column].mean()
    log("cuda: the twelve models together")
    group = FastRenderGroup(
        [FastRenderer(resolve(s, camera), device=device) for s in PAPER_DATA_MODELS.values()]
    )
    group(batch[:8])
    seconds = best_of(5, lambda: group(batch), torch.cuda.synchronize) / len(PAPER_DATA_MODELS)
    bound = bound_ms(TILE * TILE, bandwidth) / 1e3
    together = {
        "data model": "12 together",
        "views/s": 256 / seconds,
        "ms/view": 1e3 * seconds / 256,
        "bound views/s": 1.0 / bound,
        "bound / measured": (seconds / 256) / bound,
    }
    return pd.concat([table, pd.DataFrame([mean, together])], ignore_index=True), bandwidth


def bench_equivalence(
    tile: np.ndarray, camera: CameraParams, log: Callable[[str], None]
) -> pd.DataFrame:
    """Table 6: max abs difference to the static form on one whole tile, borders included."""
    log("equivalence")
    rows = []
    for name, spec in PAPER_DATA_MODELS.items():
        static = build_static(spec, camera)(tile)
        fast = FastRenderer(resolve(spec, camera)).render_numpy(tile)[0]
        module = build_differentiable(spec, camera, dtype=torch.float64)
        with torch.no_grad():
            diff = module(torch.as_tensor(tile[None, None]))[0].numpy()
        ref = reference_renderer(spec, camera)(tile).transpose(2, 0, 1)
        rows.append(
            {
                "data model": name,
                "|fast - static|": tile_views_max_abs(static, fast),
                "|differentiable64 - static|": tile_views_max_abs(static, diff),
                "|reference - static| inside": tile_views_max_abs(static, ref, 8),
            }
        )
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- report


def machine_info(device: torch.device) -> dict[str, object]:
    """Facts about the machine and software that the timings depend on."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    info: dict[str, object] = {
        "cpu": cpu,
        "cores usable (affinity)": affinity,
        "torch threads": torch.get_num_threads(),
        "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "(unset)"),
        "device": str(device),
        "python": platform.python_version(),
        "driftlab": driftlab.__version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "scikit-image": skimage.__version__,
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    if hasattr(os, "getloadavg"):
        info["load average at start (1, 5, 15 min)"] = tuple(round(x, 2) for x in os.getloadavg())
    return info


def format_table(table: pd.DataFrame) -> str:
    """Fixed-width text: ms and ns with 3 decimals, rates with 1, ratios with 2, diffs %.2g."""

    def fmt(column: str) -> Callable[[float], str]:
        if column in ("speed-up", "fast / bound", "bound / measured"):
            return lambda x: "-" if pd.isna(x) else f"{x:.2f}x"
        if "views/s" in column or "MiB" in column:
            return lambda x: "-" if pd.isna(x) else f"{x:.1f}"
        if column.split(" ")[-1] in ("ms/view", "ms/image", "ms/call", "ns/pixel"):
            return lambda x: "-" if pd.isna(x) else f"{x:.3f}"
        if column == "batch":
            return lambda x: f"{int(x)}"
        return lambda x: "-" if pd.isna(x) else f"{x:.2g}"

    formatters = {c: fmt(c) for c in table.columns if c not in ("data model", "what", "tile")}
    return table.to_string(index=False, formatters=formatters)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmark driftlab's render paths against a per-image reference on "
        "256x256 tiles of the openISP raw frame (issue 12 targets)."
    )
    parser.add_argument("--quick", action="store_true", help="fewer tiles, repeats, sizes")
    parser.add_argument("--tiles", type=int, default=None, help="256x256 tiles (0 = all 28)")
    parser.add_argument("--repeats", type=int, default=None, help="timed repeats (best taken)")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument(
        "--omp-wait",
        choices=("default", "passive", "active"),
        default="default",
        help="OpenMP wait policy of torch's threads (default: as the environment sets it, as "
        "the driftlab command runs; passive suits a machine shared with other processes)",
    )
    parser.add_argument(
        "--allocator",
        choices=("tuned", "default"),
        default="tuned",
        help="tuned: driftlab.workers.tune_allocator(), as the driftlab command and its "
        "workers run; default: glibc's own malloc settings",
    )
    parser.add_argument("--no-memory", action="store_true", help="skip the memory table")
    parser.add_argument("--json", type=Path, default=None, help="also write results as JSON")
    parser.add_argument("--raw", type=Path, default=DEFAULT_RAW, help="openISP raw frame")
    args = parser.parse_args(argv)
    args.tiles = (4 if args.quick else 8) if args.tiles is None else args.tiles
    args.repeats = (1 if args.quick else 3) if args.repeats is None else args.repeats
    if args.threads < 1:
        parser.error(f"--threads must be at least 1, got {args.threads}")
    if args.repeats < 1:
        parser.error(f"--repeats must be at least 1, got {args.repeats}")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: torch sees no CUDA device on this machine")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print the tables; returns the exit code."""
    args = parse_args(argv)
    tuned = args.allocator == "tuned" and tune_allocator()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    began = time.perf_counter()

    def log(message: str) -> None:
        print(f"[{time.perf_counter() - began:6.1f} s] {message}", file=sys.stderr, flush=True)

    frame, source = load_frame(args.raw)
    if source.startswith("SYNTHETIC"):
        log(f"WARNING: {source}")
    all_tiles = make_tiles(frame)
    try:
        tiles = select_tiles(all_tiles, args.tiles)
    except ValueError as err:
        print(f"bench_render: {err}", file=sys.stderr)
        return 2
    camera = driftlab.get_registry().camera("openisp")
    info = machine_info(device)
    info["allocator"] = (
        "glibc malloc tuned (driftlab.workers.tune_allocator, as the driftlab command runs)"
        if tuned
        else "malloc defaults"
    )
    bandwidth = copy_bandwidth()
    log(f"numpy copy bandwidth {bandwidth:.1f} GB/s")

    views = bench_views(tiles, all_tiles, camera, args.repeats, bandwidth, log)
    backward = bench_backward(tiles, all_tiles, camera, args.repeats, device, log)
    memory = None if args.no_memory else bench_memory(args.raw, args.threads, tuned, log)
    scaling = bench_scaling(frame, camera, args.repeats, bandwidth, args.quick, log)
    cuda = bench_cuda(all_tiles, camera, device, log) if device.type == "cuda" else None
    equivalence = bench_equivalence(tiles[len(tiles) // 2], camera, log)
    elapsed = time.perf_counter() - began
    if hasattr(os, "getloadavg"):
        info["load average at end (1, 5, 15 min)"] = tuple(round(x, 2) for x in os.getloadavg())

    mean_views = views[views["data model"] == "mean (12)"].iloc[0]
    mean_backward = backward.iloc[-1]
    print("driftlab rendering benchmark")
    print(f"data: {source}")
    print(
        f"tiles: {len(tiles)} of {len(all_tiles)} whole {TILE}x{TILE} tiles (camera 'openisp'); "
        f"repeats: {args.repeats} (best), warm-up before timing"
    )
    for key, value in info.items():
        print(f"  {key}: {value}")
    print(
        f"  memory bandwidth (large numpy copy, read + write): {bandwidth:.1f} GB/s; "
        f"traffic bound = {BYTES_PER_PIXEL} bytes per pixel (float32 raw in, view out) / bandwidth"
    )
    print()
    print(
        f"1. views, ms per view (reference = per-image numpy reference and static = driftlab "
        f"build_static, over {len(tiles)} tiles one at a time; fast = FastRenderer, one batch "
        f"of {len(all_tiles)}, float64 linear arithmetic; fast32 = float32 linear arithmetic; "
        "'12 together' = FastRenderGroup, the twelve models on the batch at once sharing "
        "their common stages, as the view cache renders them)"
    )
    print(format_table(views))
    together = views[views["data model"] == "12 together"].iloc[0]
    ratio = float(together["speed-up"])
    print(
        f"target: mean fast <= mean reference / {FAST_TARGET:g} (the twelve together, as the "
        f"view cache renders): {together['fast ms/view']:.3f} ms vs "
        f"{together['reference ms/view']:.3f} ms, {ratio:.1f}x -> "
        f"{'PASS' if ratio >= FAST_TARGET else 'FAIL'}; one pipeline at a time: "
        f"{float(mean_views['speed-up']):.1f}x"
    )
    print()
    print(
        f"2. differentiable forward + backward, ms per image (driftlab at batch "
        f"{len(all_tiles)}, fused; reference module one image at a time over "
        f"{min(len(tiles), 8)} tiles, as the original code ran)"
    )
    print(format_table(backward))
    ratio_b = float(mean_backward["speed-up"])
    print(
        f"target: forward + backward >= {BACKWARD_TARGET:g}x the per-image reference: "
        f"{ratio_b:.1f}x -> {'PASS' if ratio_b >= BACKWARD_TARGET else 'FAIL'}"
    )
    if memory is not None:
        print()
        print("3. peak memory for a batch of 64 256x256 views (fresh process per row)")
        print(format_table(memory))
    print()
    print("4. fast-path scaling: time per pixel over batch size and tile size")
    print(format_table(scaling))
    if cuda is not None:
        table, gpu_bandwidth = cuda
        print()
        print(
            f"5. CUDA ({info.get('gpu')}), batch 256 of 256x256 tiles; device-to-device copy "
            f"{gpu_bandwidth:.0f} GB/s"
        )
        print(format_table(table))
    print()
    print("6. max abs difference to the static form on one whole tile (borders included)")
    print(format_table(equivalence))
    print()
    print("design anchors (shared/DESIGN.md section 7, original research code, same machine type):")
    for what, value in ANCHORS:
        print(f"  {what}: {value}")
    print(f"\ntotal benchmark time: {elapsed:.1f} s")

    if args.json is not None:
        payload = {
            "data": source,
            "tiles": len(tiles),
            "repeats": args.repeats,
            "machine": {k: list(v) if isinstance(v, tuple) else v for k, v in info.items()},
            "bandwidth_gb_s": bandwidth,
            "views": views.to_dict(orient="records"),
            "forward_backward": backward.to_dict(orient="records"),
            "memory": None if memory is None else memory.to_dict(orient="records"),
            "scaling": scaling.to_dict(orient="records"),
            "cuda": None if cuda is None else cuda[0].to_dict(orient="records"),
            "cuda_bandwidth_gb_s": None if cuda is None else cuda[1],
            "equivalence": equivalence.to_dict(orient="records"),
            "seconds": elapsed,
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(payload, indent=2, default=float) + "\n", encoding="utf-8")
        print(f"results written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
