"""Render one raw frame through many pipelines and write PNGs and a contact sheet."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from pathlib import Path

import attrs
import numpy as np
import torch

from driftlab.camera import CameraParams
from driftlab.io.images import save_contact_sheet, save_view_png
from driftlab.io.raw import RawFrame
from driftlab.pipeline.batched import FastRenderer
from driftlab.pipeline.differentiable import build_differentiable
from driftlab.pipeline.resolve import ResolvedPipeline, resolve
from driftlab.pipeline.spec import PipelineSpec
from driftlab.pipeline.static import StaticPipeline, build_static
from driftlab.registry import Registry
from driftlab.workers import process_pool

__all__ = ["FORMS", "RenderResult", "camera_for_frame", "pipeline_file_name", "render_frame"]

FORMS: tuple[str, ...] = ("fast", "static", "differentiable")
_PLAIN_NAME = re.compile(r"[a-z0-9][a-z0-9,._+-]{0,99}")


def pipeline_file_name(name: str) -> str:
    """File-system safe, injective file stem for a pipeline name.

    A name of lower-case letters, digits and ``, . _ + -`` (starting with a
    letter or digit, at most 100 characters) is its own file name:
    ``bi,s,me`` stays ``bi,s,me``. Any other name keeps a readable,
    sanitised form followed by ``~`` and 10 hex digits of the SHA-256 of the
    exact name: ``g a`` gives ``g_a~...`` and never collides with ``g_a``,
    nor ``Foo`` with ``foo`` on a case-insensitive file system (``~`` never
    occurs in a plain name, and different names get different digests).

    Parameters
    ----------
    name : str
        Pipeline name, any non-empty string.

    Returns
    -------
    str
        At most 111 characters from ``[A-Za-z0-9,._+~-]``, not starting with ``.``.
    """
    if _PLAIN_NAME.fullmatch(name):
        return name
    readable = re.sub(r"[^A-Za-z0-9,._+-]", "_", name)[:100].lstrip(".") or "_"
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:10]
    return f"{readable}~{digest}"


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


def _render_static(args: tuple[ResolvedPipeline, np.ndarray]) -> np.ndarray:
    resolved, raw = args
    return StaticPipeline(resolved)(raw)


def _render_differentiable(
    spec: PipelineSpec, camera: CameraParams, raw: np.ndarray, device: str, registry
) -> np.ndarray:
    module = build_differentiable(spec, camera, registry).to(device)
    with torch.no_grad():
        x = torch.as_tensor(raw, dtype=torch.float32, device=device)[None, None]
        return module(x)[0].cpu().numpy().astype(np.float64)


def _render_fast(
    spec: PipelineSpec, camera: CameraParams, raw: np.ndarray, device: str, registry
) -> np.ndarray:
    renderer = FastRenderer(resolve(spec, camera, registry), device=device)
    return renderer.render_numpy(raw)[0].astype(np.float64)


def render_frame(
    raw: np.ndarray,
    camera: CameraParams,
    pipelines: Sequence[PipelineSpec],
    out_dir: str | Path,
    *,
    form: str = "fast",
    device: str = "cpu",
    workers: int = 1,
    title: str = "",
    registry: Registry | None = None,
) -> RenderResult:
    """Render ``raw`` through each pipeline; write ``NAME.png`` and ``contact_sheet.png``.

    Parameters
    ----------
    raw : numpy.ndarray
        ``(H, W)`` float mosaic in [0, 1].
    camera : CameraParams
        Camera the pipelines are built with.
    pipelines : sequence of PipelineSpec
        Pipelines to render; names must be unique. Files are named by
        :func:`pipeline_file_name`.
    out_dir : str or Path
        Created if missing. Existing files of the same names are replaced
        atomically.
    form : {"fast", "static", "differentiable"}
        Which implementation renders: the fast batched path (default, see
        :mod:`driftlab.pipeline.batched`), the static reference or the
        differentiable form (float32).
    device : str
        Torch device for the fast and differentiable forms.
    workers : int
        Processes for static rendering (1 = in this process).
    registry : Registry or None
        Registry the pipelines are resolved with (default: installed plugins).

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
    if form not in FORMS:
        raise ValueError(f"form: expected one of {', '.join(FORMS)}, got {form!r}")
    # Resolve everything first so that a bad spec fails before any file is written.
    for spec in pipelines:
        if form == "differentiable":
            build_differentiable(spec, camera, registry)
        elif form == "static":
            build_static(spec, camera, registry)
        else:
            FastRenderer(resolve(spec, camera, registry))
    if form == "static":
        jobs = [(build_static(p, camera, registry).resolved, raw) for p in pipelines]
        if workers > 1 and len(pipelines) > 1:
            with process_pool(workers) as pool:
                views = list(pool.map(_render_static, jobs))
        else:
            views = [_render_static(job) for job in jobs]
    elif form == "differentiable":
        views = [_render_differentiable(p, camera, raw, device, registry) for p in pipelines]
    else:
        views = [_render_fast(p, camera, raw, device, registry) for p in pipelines]
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
