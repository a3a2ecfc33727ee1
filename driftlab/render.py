"""Render one raw frame through many pipelines and write PNGs and a contact sheet."""

from __future__ import annotations

import re
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import attrs
import numpy as np
import torch

from driftlab.camera import CameraParams
from driftlab.io.images import save_contact_sheet, save_view_png
from driftlab.io.raw import RawFrame
from driftlab.pipeline.differentiable import build_differentiable
from driftlab.pipeline.spec import PipelineSpec
from driftlab.pipeline.static import build_static

__all__ = ["RenderResult", "camera_for_frame", "pipeline_file_name", "render_frame"]


def pipeline_file_name(name: str) -> str:
    """File-system safe name of a pipeline (``bi,s,me`` stays ``bi,s,me``)."""
    return re.sub(r"[^A-Za-z0-9,._+-]", "_", name)


def camera_for_frame(
    frame: RawFrame,
    profile: CameraParams | None = None,
    *,
    cfa: str | None = None,
    bits: int | None = None,
    white_balance: Sequence[float] | None = None,
    black_level: Sequence[float] | None = None,
    color_matrix: Sequence[float] | None = None,
) -> CameraParams:
    """Combine camera parameters from file metadata, a profile and explicit values.

    Precedence: explicit values > named profile > file metadata > neutral
    defaults. ``black_level`` takes 1 value (all sites) or 4, as a fraction
    of the white level.

    Raises
    ------
    ValueError
        Wrong number of values, naming the option.
    """
    if profile is not None:
        camera = profile
    elif frame.camera is not None:
        camera = frame.camera
    else:
        camera = CameraParams(name=f"file:{frame.path.name}")
    changes: dict[str, object] = {}
    if cfa is not None:
        changes["cfa"] = cfa
    if bits is not None:
        changes["bit_depth"] = bits
    if white_balance is not None:
        if len(white_balance) != 3:
            raise ValueError(
                f"--white-balance: expected 3 numbers (R,G,B), got {len(white_balance)}"
            )
        changes["white_balance"] = tuple(white_balance)
    if black_level is not None:
        if len(black_level) not in (1, 4):
            raise ValueError(
                f"--black-level: expected 1 or 4 numbers (one per CFA site), got {len(black_level)}"
            )
        changes["black_level"] = tuple(black_level) * (4 if len(black_level) == 1 else 1)
    if color_matrix is not None:
        if len(color_matrix) != 9:
            raise ValueError(
                f"--color-matrix: expected 9 numbers (row-major 3x3), got {len(color_matrix)}"
            )
        changes["color_matrix"] = tuple(color_matrix)
    return attrs.evolve(camera, **changes) if changes else camera


@attrs.frozen
class RenderResult:
    """Paths written by :func:`render_frame`."""

    views: dict[str, Path]
    contact_sheet: Path


def _render_static(args: tuple[PipelineSpec, CameraParams, np.ndarray]) -> np.ndarray:
    spec, camera, raw = args
    return build_static(spec, camera)(raw)


def _render_differentiable(
    spec: PipelineSpec, camera: CameraParams, raw: np.ndarray, device: str
) -> np.ndarray:
    module = build_differentiable(spec, camera).to(device)
    with torch.no_grad():
        x = torch.as_tensor(raw, dtype=torch.float32, device=device)[None, None]
        return module(x)[0].cpu().numpy().astype(np.float64)


def render_frame(
    raw: np.ndarray,
    camera: CameraParams,
    pipelines: Sequence[PipelineSpec],
    out_dir: str | Path,
    *,
    form: str = "static",
    device: str = "cpu",
    workers: int = 1,
    title: str = "",
) -> RenderResult:
    """Render ``raw`` through each pipeline; write ``NAME.png`` and ``contact_sheet.png``.

    Parameters
    ----------
    raw : numpy.ndarray
        ``(H, W)`` float mosaic in [0, 1].
    camera : CameraParams
        Camera the pipelines are built with.
    pipelines : sequence of PipelineSpec
        Pipelines to render; names must be unique.
    out_dir : str or Path
        Created if missing. Existing files of the same names are replaced
        atomically.
    form : {"static", "differentiable"}
        Which implementation renders.
    device : str
        Torch device for the differentiable form.
    workers : int
        Processes for static rendering (1 = in this process).

    Returns
    -------
    RenderResult

    Raises
    ------
    driftlab.pipeline.SpecError
        A pipeline does not resolve for ``camera`` or lacks the requested form;
        raised before anything is written.
    ValueError
        Duplicate pipeline names or an unknown ``form``.
    """
    names = [p.name for p in pipelines]
    if len(set(names)) != len(names):
        raise ValueError(f"pipelines: duplicate names in {names}")
    if form not in ("static", "differentiable"):
        raise ValueError(f"form: expected 'static' or 'differentiable', got {form!r}")
    # Resolve everything first so that a bad spec fails before any file is written.
    for spec in pipelines:
        if form == "static":
            build_static(spec, camera)
        else:
            build_differentiable(spec, camera)
    if form == "static" and workers > 1 and len(pipelines) > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            views = list(pool.map(_render_static, [(p, camera, raw) for p in pipelines]))
    elif form == "static":
        views = [_render_static((p, camera, raw)) for p in pipelines]
    else:
        views = [_render_differentiable(p, camera, raw, device) for p in pipelines]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = {
        spec.name: save_view_png(view, out / f"{pipeline_file_name(spec.name)}.png")
        for spec, view in zip(pipelines, views, strict=True)
    }
    step = max(1, int(np.ceil(max(raw.shape) / 960)))
    sheet = save_contact_sheet(
        [v[:, ::step, ::step] for v in views],
        names,
        out / "contact_sheet.png",
        suptitle=title,
    )
    return RenderResult(views=written, contact_sheet=sheet)
