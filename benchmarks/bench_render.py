"""Rendering benchmark: driftlab's ISP pipelines vs a per-image reference, one run.

Renders the paper's twelve data models on 256x256 tiles of the real openISP
raw frame (``shared/data/openisp``; a seeded synthetic mosaic of the same size
when the file is absent, labelled as such) and prints three tables:

1. static views per second and ms per view, driftlab
   (:func:`driftlab.pipeline.build_static`) vs :func:`reference.reference_static`;
2. differentiable forward and forward+backward ms per image for the four data
   models with a differentiable form, driftlab at batch B (all tiles) and at
   batch 1 vs the reference module in a per-image (batch 1) loop;
3. static-vs-differentiable max abs difference on one tile, driftlab (float64
   and float32) and the reference (the design anchor is 0.405 at borders).

Usage::

    python benchmarks/bench_render.py [--tiles N] [--repeats R] [--device cpu|cuda]
                                      [--json OUT] [--raw PATH] [--threads T]

Timings are medians over ``R`` repeats after a warm-up; driftlab and the
reference are interleaved within each repeat so that both see the same load.
See ``benchmarks/README.md`` for the meaning of every column.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import scipy
import skimage
import torch
from reference import (
    ReferenceTorchISP,
    has_differentiable_reference,
    reference_static,
    tile_views_max_abs,
)
from scipy import ndimage

import driftlab
from driftlab.camera import CameraParams
from driftlab.pipeline import PAPER_DATA_MODELS, PipelineSpec, build_differentiable, build_static

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
BORDER = 8  # pixels ignored on each side for the "inside" differences
SINGLE_TILES = 8  # tiles looped over one at a time for the batch-1 columns
SYNTHETIC_SEED = 20230401

# shared/DESIGN.md section 7: the original research code on the same 2-core machine
ANCHORS: tuple[tuple[str, str], ...] = (
    (
        "static view, per image, mean of the 12 data models",
        "21-30 ms over two runs (bilinear 15-27, malvar 19-32, menon 28-52)",
    ),
    ("differentiable pipeline forward, per image (batch 28)", "3.3 ms"),
    ("differentiable pipeline forward + backward, per image", "34-37 ms"),
    ("static vs differentiable, same configuration", "max abs diff 0.405 (borders), 0.0053 inside"),
)


# --------------------------------------------------------------------------- data


def synthetic_frame(shape: tuple[int, int] = FRAME_SHAPE, seed: int = SYNTHETIC_SEED) -> np.ndarray:
    """A seeded stand-in for the openISP frame: smooth colour scene, RGGB-sampled.

    Parameters
    ----------
    shape : tuple of int
        ``(H, W)``, both even.
    seed : int
        Seed of :func:`numpy.random.default_rng`.

    Returns
    -------
    numpy.ndarray
        ``(H, W)`` float64 mosaic in [0, 1]: low-pass filtered noise per
        colour plus a vignetting ramp, quantised to 10 bit.
    """
    rng = np.random.default_rng(seed)
    h, w = shape
    planes = []
    for _ in range(3):
        field = ndimage.gaussian_filter(rng.standard_normal((h, w)), sigma=12.0)
        field = (field - field.min()) / (np.ptp(field) + 1e-12)
        planes.append(field)
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
    """Read the openISP frame, or fall back to :func:`synthetic_frame`.

    Parameters
    ----------
    path : pathlib.Path
        Headerless little-endian uint16 file of 1080 x 1920 10-bit samples.

    Returns
    -------
    (numpy.ndarray, str)
        ``(1080, 1920)`` float64 mosaic in [0, 1] (raw / 1023) and a label
        saying where it came from.

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
        raise ValueError(
            f"{path}: expected {expected} uint16 samples ({FRAME_SHAPE[0]}x{FRAME_SHAPE[1]}), "
            f"got {data.size}"
        )
    return data.reshape(FRAME_SHAPE) / WHITE_LEVEL, f"real openISP frame {path}"


def make_tiles(frame: np.ndarray, size: int = TILE) -> np.ndarray:
    """Cut a frame into whole ``size x size`` tiles in raster order.

    Parameters
    ----------
    frame : numpy.ndarray
        ``(H, W)`` mosaic; the bottom and right remainders are cropped.
    size : int
        Tile side, even so that every tile starts on the same CFA site.

    Returns
    -------
    numpy.ndarray
        ``(N, size, size)`` contiguous tiles, ``N = (H // size) * (W // size)``.

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


# --------------------------------------------------------------------------- benchmarks


def bench_static(
    tiles: np.ndarray, camera: CameraParams, repeats: int, log: Callable[[str], None]
) -> pd.DataFrame:
    """Static rendering speed of every data model, driftlab vs reference.

    Returns
    -------
    pandas.DataFrame
        One row per data model plus a ``mean (12)`` row.
    """
    rows = []
    probe = tiles[len(tiles) // 2]
    for name, spec in PAPER_DATA_MODELS.items():
        log(f"static {name}")
        ours = build_static(spec, camera)
        ref = reference_renderer(spec, camera)
        gap = tile_views_max_abs(ours(probe), ref(probe).transpose(2, 0, 1), BORDER)
        ours(tiles[0])
        ref(tiles[0])
        t_ours, t_ref = [], []
        for _ in range(repeats):  # interleaved so both see the same machine load
            start = time.perf_counter()
            for tile in tiles:
                ours(tile)
            t_ours.append((time.perf_counter() - start) / len(tiles))
            start = time.perf_counter()
            for tile in tiles:
                ref(tile)
            t_ref.append((time.perf_counter() - start) / len(tiles))
        ms_ours, ms_ref = 1e3 * statistics.median(t_ours), 1e3 * statistics.median(t_ref)
        rows.append(
            {
                "data model": name,
                "driftlab ms/view": ms_ours,
                "driftlab views/s": 1e3 / ms_ours,
                "reference ms/view": ms_ref,
                "reference views/s": 1e3 / ms_ref,
                "speed-up": ms_ref / ms_ours,
                "max|driftlab-ref| inside": gap,
            }
        )
    table = pd.DataFrame(rows)
    mean_ours = table["driftlab ms/view"].mean()
    mean_ref = table["reference ms/view"].mean()
    mean = {
        "data model": f"mean ({len(table)})",
        "driftlab ms/view": mean_ours,
        "driftlab views/s": 1e3 / mean_ours,
        "reference ms/view": mean_ref,
        "reference views/s": 1e3 / mean_ref,
        "speed-up": mean_ref / mean_ours,
        "max|driftlab-ref| inside": table["max|driftlab-ref| inside"].max(),
    }
    return pd.concat([table, pd.DataFrame([mean])], ignore_index=True)


def forward(model: torch.nn.Module, inputs: Sequence[torch.Tensor]) -> None:
    """Render every input batch without autograd."""
    with torch.no_grad():
        for x in inputs:
            model(x)


def forward_backward(model: torch.nn.Module, inputs: Sequence[torch.Tensor]) -> None:
    """For every input batch: forward, loss = view mean, backward to the parameters."""
    for x in inputs:
        model.zero_grad(set_to_none=True)
        model(x).mean().backward()


def bench_differentiable(
    tiles: np.ndarray,
    camera: CameraParams,
    repeats: int,
    device: torch.device,
    log: Callable[[str], None],
) -> pd.DataFrame:
    """Differentiable forward and forward+backward time per image.

    driftlab runs at batch B (all tiles at once) and at batch 1; the
    reference runs per image (batch 1) in a loop. The batch-1 loops use
    :data:`SINGLE_TILES` tiles spread over the selection, to keep the run
    short. ``forward`` is measured under :func:`torch.no_grad`; ``fwd+bwd`` is
    a forward with autograd, loss = mean of the views, and a backward to the
    pipeline parameters.

    Returns
    -------
    pandas.DataFrame
        One row per differentiable data model plus a mean row; times in ms
        per image.
    """
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    n = len(tiles)
    batch = torch.as_tensor(tiles[:, None], dtype=torch.float32, device=device)
    picked = np.unique(np.linspace(0, n - 1, min(n, SINGLE_TILES)).round().astype(int))
    singles = [batch[i : i + 1] for i in picked]
    singles_ref = [batch[i : i + 1, 0] for i in picked]
    rows = []
    for name, spec in PAPER_DATA_MODELS.items():
        v = variants(spec)
        if not has_differentiable_reference(v["demosaic"], v["denoise"]):
            continue
        log(f"differentiable {name}")
        ours = build_differentiable(spec, camera, dtype=torch.float32).to(device)
        ref = reference_module(spec, camera).to(device)

        cases = {
            f"driftlab fwd (B={n})": (forward, ours, [batch], [batch]),
            f"driftlab fwd+bwd (B={n})": (forward_backward, ours, [batch], [batch]),
            "driftlab fwd (B=1)": (forward, ours, singles, singles[:2]),
            "driftlab fwd+bwd (B=1)": (forward_backward, ours, singles, singles[:2]),
            "reference fwd (B=1)": (forward, ref, singles_ref, singles_ref[:2]),
            "reference fwd+bwd (B=1)": (forward_backward, ref, singles_ref, singles_ref[:2]),
        }
        for fn, model, _inputs, warm in cases.values():
            fn(model, warm)
        times: dict[str, list[float]] = {label: [] for label in cases}
        for _ in range(repeats):  # interleaved so every case sees the same machine load
            for label, (fn, model, inputs, _warm) in cases.items():
                sync()
                start = time.perf_counter()
                fn(model, inputs)
                sync()
                images = sum(len(x) for x in inputs)
                times[label].append(1e3 * (time.perf_counter() - start) / images)
        row: dict[str, object] = {"data model": name}
        row.update({label: statistics.median(ts) for label, ts in times.items()})
        rows.append(row)
    table = pd.DataFrame(rows)
    mean = {"data model": f"mean ({len(table)})"}
    mean.update(table.drop(columns="data model").mean().to_dict())
    table = pd.concat([table, pd.DataFrame([mean])], ignore_index=True)
    table["speed-up fwd"] = table["reference fwd (B=1)"] / table[f"driftlab fwd (B={n})"]
    table["speed-up fwd+bwd"] = (
        table["reference fwd+bwd (B=1)"] / table[f"driftlab fwd+bwd (B={n})"]
    )
    return table


def equivalence(
    tile: np.ndarray, camera: CameraParams, device: torch.device, log: Callable[[str], None]
) -> pd.DataFrame:
    """Static vs differentiable max abs difference on one tile.

    Returns
    -------
    pandas.DataFrame
        Per differentiable data model: driftlab float64 and float32, and the
        reference (float32), over the whole tile and with an 8-pixel border
        dropped.
    """
    log("equivalence")
    rows = []
    for name, spec in PAPER_DATA_MODELS.items():
        v = variants(spec)
        if not has_differentiable_reference(v["demosaic"], v["denoise"]):
            continue
        static_view = build_static(spec, camera)(tile)
        row: dict[str, object] = {"data model": name}
        for dtype, label in ((torch.float64, "float64"), (torch.float32, "float32")):
            model = build_differentiable(spec, camera, dtype=dtype).to(device)
            x = torch.as_tensor(tile[None, None], dtype=dtype, device=device)
            with torch.no_grad():
                view = model(x)[0].cpu().double().numpy()
            row[f"driftlab {label}"] = tile_views_max_abs(static_view, view)
            row[f"driftlab {label} inside"] = tile_views_max_abs(static_view, view, BORDER)
        ref_static = reference_renderer(spec, camera)(tile).transpose(2, 0, 1)
        ref = reference_module(spec, camera).to(device)
        with torch.no_grad():
            x = torch.as_tensor(tile[None], dtype=torch.float32, device=device)
            ref_view = ref(x)[0].cpu().double().numpy()
        row["reference"] = tile_views_max_abs(ref_static, ref_view)
        row["reference inside"] = tile_views_max_abs(ref_static, ref_view, BORDER)
        rows.append(row)
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
        "cores (os.cpu_count)": os.cpu_count(),
        "cores usable (affinity)": affinity,
        "torch threads": torch.get_num_threads(),
        "torch interop threads": torch.get_num_interop_threads(),
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


def busy_note(info: dict[str, object]) -> str:
    """A warning when other processes already loaded the CPU at the start, else ``""``."""
    load = info.get("load average at start (1, 5, 15 min)")
    cores = info.get("cores usable (affinity)") or 1
    if not isinstance(load, tuple) or load[0] < 0.5:
        return ""
    return (
        f"  NOTE: 1-min load average was {load[0]} on {cores} cores before the benchmark "
        "started; other processes compete for the CPU, so timings are inflated and noisy "
        "(torch's intra-op threads suffer most). Quote figures from an idle machine; "
        "--threads 1 steadies the torch columns meanwhile."
    )


def format_table(table: pd.DataFrame) -> str:
    """Fixed-width text of a table: ms with 2 decimals, views/s with 1, differences %.3g."""

    def fmt(column: str) -> Callable[[float], str]:
        if column.startswith("speed-up"):
            return lambda x: f"{x:.2f}x"
        if "views/s" in column:
            return lambda x: f"{x:.1f}"
        if "ms" in column or "fwd" in column:
            return lambda x: f"{x:.2f}"
        return lambda x: f"{x:.3g}"

    formatters = {c: fmt(c) for c in table.columns if c != "data model"}
    return table.to_string(index=False, formatters=formatters)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmark driftlab's static and differentiable ISP rendering against a "
        "straightforward per-image reference on 256x256 tiles of the openISP raw frame."
    )
    parser.add_argument(
        "--tiles", type=int, default=0, help="number of 256x256 tiles to use (0 = all, 28)"
    )
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats (median taken)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--json", type=Path, default=None, help="also write results as JSON here")
    parser.add_argument("--raw", type=Path, default=DEFAULT_RAW, help="openISP raw frame")
    parser.add_argument(
        "--threads",
        type=int,
        default=0,
        help="torch intra-op threads (0 = torch default; 1 is steadier on a busy machine)",
    )
    args = parser.parse_args(argv)
    if args.threads < 0:
        parser.error(f"--threads must be 0 (default) or more, got {args.threads}")
    if args.repeats < 1:
        parser.error(f"--repeats must be at least 1, got {args.repeats}")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: torch sees no CUDA device on this machine")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print the tables; returns the exit code."""
    args = parse_args(argv)
    if args.threads:
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

    static = bench_static(tiles, camera, args.repeats, log)
    diff = bench_differentiable(tiles, camera, args.repeats, device, log)
    equiv = equivalence(tiles[len(tiles) // 2], camera, device, log)
    elapsed = time.perf_counter() - began
    if hasattr(os, "getloadavg"):
        info["load average at end (1, 5, 15 min)"] = tuple(round(x, 2) for x in os.getloadavg())

    print("driftlab rendering benchmark")
    print(f"data: {source}")
    print(
        f"tiles: {len(tiles)} of {len(all_tiles)} whole {TILE}x{TILE} tiles "
        f"(camera profile 'openisp'); repeats: {args.repeats} (median), warm-up before timing"
    )
    for key, value in info.items():
        print(f"  {key}: {value}")
    busy = busy_note(info)
    if busy:
        print(busy)
    print()
    print("1. static views (numpy; driftlab build_static vs per-image reference)")
    print(format_table(static))
    print()
    print(
        "2. differentiable pipelines, ms per image (torch float32; fwd = no_grad forward, "
        "fwd+bwd = forward + backward of the view mean to the pipeline parameters; "
        f"B=1 columns loop over {min(len(tiles), SINGLE_TILES)} tiles one at a time; "
        f"speed-up = reference per-image loop / driftlab at B={len(tiles)})"
    )
    print(format_table(diff))
    print()
    print(
        "3. static vs differentiable, max abs difference on one tile "
        f"(tile {len(tiles) // 2}; 'inside' drops {BORDER} px at every border)"
    )
    print(format_table(equiv))
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
            "static": static.to_dict(orient="records"),
            "differentiable": diff.to_dict(orient="records"),
            "equivalence": equiv.to_dict(orient="records"),
            "anchors": dict(ANCHORS),
            "seconds": elapsed,
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
        print(f"results written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
