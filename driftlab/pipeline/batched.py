"""The fast render path: batches of raw mosaics to views, without autograd.

:class:`FastRenderer` renders what a pipeline's static form renders (the
numpy / colour-demosaicing reference, which stays the definition), to within
float32 rounding, for a whole batch at once, on the CPU (torch's intra-op
threads) or a CUDA device:

* batched torch inference under :func:`torch.inference_mode`, channels
  first, in chunks small enough to stay in the CPU caches
  (``chunk_pixels``), written into one preallocated output;
* the built-in stages run as fused kernels (:mod:`driftlab.pipeline.fastops`):
  black level, a linear demosaic (bilinear, Malvar 2004), white balance and
  colour correction become one step on the four CFA site planes (black level
  subtracted from the planes, each colour at each site a short weighted sum
  of shifted plane samples, the colour matrices and the luma row applied to
  the site planes, then one strided copy to full resolution); Menon 2007 runs
  on site planes with float64 directional decisions (bit-identical to
  colour-demosaicing's) and its interpolation in ``linear_dtype``;
  the luma filters act on Y alone and the result is added back to RGB once
  (``rgb + yuv2rgb[:, 0] * (Y' - Y)``, the same map as converting to YUV and
  back; RGB is carried as ``RGB - Y`` and ``Y``, so that adding back is one
  pass per channel); gamma clips and raises to ``1 / gamma`` in place
  (``exp2(log2(v) / gamma)``, the ``log2`` through numpy on the CPU);
* no step modifies the tensors it is given, so the pipelines of a
  :class:`FastRenderGroup` share their common steps' results without copies;
* kernels (the demosaic's site-plane taps, filter taps, colour matrices) are
  built once, when the renderer is made, as plain numbers: nothing depends on
  the batch's shape, dtype or device, so nothing is rebuilt per call;
* any other stage (a plugin's) runs one view at a time through its static
  form, the reference, converted to and from tensors (or its differentiable
  form when it has no static one), and its output is checked (shape, dtype,
  finiteness) with an error naming the stage and its plugin.

Precision. The mosaic side (stages before the demosaic) runs in float64, as
the static form does, so that Menon's hard directional decisions are the
reference's. The linear part after the demosaic (colour matrices, luma
filters) runs in ``linear_dtype``, float64 by default, and only the final clip
and gamma curve in ``dtype`` (float32 by default). This split matters: the
gamma curve ``v ** (1 / 2.2)`` turns an absolute error ``e`` of a value near
black into up to ``e ** 0.45`` (float32's 1e-7 into 7e-4), so float32 linear
arithmetic cannot stay within 1e-4 of the reference on dark pixels, while
rounding the finished linear value to float32 only costs a relative 6e-8.
``linear_dtype=torch.float32`` is faster and fine where such dark-pixel
errors do not matter.

Speed. The path is a sequence of short torch operations on tensors of a few
MiB: on the CPU it is fastest with glibc told to reuse freed memory
(:func:`driftlab.workers.tune_allocator`, which the ``driftlab`` command and
its workers call) and with OpenMP's default wait policy (``OMP_WAIT_POLICY=
PASSIVE`` costs about 40 % on 2 cores). ``benchmarks/bench_render.py``
measures it.

Use :func:`render_views` for a one-off call, :class:`FastRenderer` to render
many batches with one pipeline, and
:meth:`driftlab.pipeline.DifferentiablePipeline.render_fast` for a
differentiable pipeline's current parameter values (forensics, optimisation).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any

import attrs
import numpy as np
import torch

from driftlab.pipeline.outputs import check_stage_output
from driftlab.pipeline.resolve import ResolvedPipeline, ResolvedStage
from driftlab.stages import black_level, color, demosaic, gamma, luma
from driftlab.stages.filters import RGB_FROM_YUV, YUV_FROM_RGB, pad_symmetric, split_sites_torch
from driftlab.validation import RawInputError, validate_raw_batch

from . import fastops

__all__ = ["FastRenderGroup", "FastRenderer", "render_views"]

# Built-in stages with a fused kernel, keyed by their (static, differentiable) functions, so
# that a plugin declaring another function under a built-in-looking key is never taken for it.
_KERNELS: Mapping[tuple[Callable, Callable], str] = MappingProxyType(
    {
        (black_level.black_level_static, black_level.black_level_torch): "black_level",
        (demosaic.bilinear_static, demosaic.bilinear_torch): "bilinear",
        (demosaic.malvar2004_static, demosaic.malvar2004_torch): "malvar2004",
        (demosaic.menon2007_static, demosaic.menon2007_torch): "menon2007",
        (color.white_balance_static, color.white_balance_torch): "gains",
        (color.color_correction_static, color.color_correction_torch): "matrix",
        (luma.sharpening_filter_static, luma.sharpening_filter_torch): "sharpening_filter",
        (luma.unsharp_masking_static, luma.unsharp_masking_torch): "unsharp_masking",
        (
            luma.column_unsharp_masking_static,
            luma.column_unsharp_masking_torch,
        ): "column_unsharp_masking",
        (luma.gaussian_static, luma.gaussian_torch): "gaussian",
        (luma.median_static, luma.median_torch): "median",
        (gamma.gamma_static, gamma.gamma_torch): "gamma",
    }
)
_LINEAR_DEMOSAIC = ("bilinear", "malvar2004")
_MATRIX_KINDS = ("gains", "matrix")
_LUMA_KINDS = (
    "sharpening_filter",
    "unsharp_masking",
    "column_unsharp_masking",
    "gaussian",
    "median",
)
_LUMA_ROW = YUV_FROM_RGB[0]  # Y = 0.299 R + 0.587 G + 0.114 B
_LUMA_BACK = RGB_FROM_YUV[:, 0]  # d(R, G, B) / dY at fixed U, V

CPU_CHUNK_PIXELS = 2**19
"""Default pixels per chunk on the CPU (8 views of 256x256): large enough that per-operation
overhead is small against the arithmetic, small enough that the working set stays near
the last-level cache of a typical CPU (2**18 and 2**20 measured slower on 2 cores)."""
CUDA_CHUNK_PIXELS = 2**24
"""Default pixels per chunk on a CUDA device (256 views of 256x256)."""


def kernel_kind(stage: ResolvedStage) -> str | None:
    """The fused kernel that renders ``stage``, or None for a generic (plugin) stage."""
    return _KERNELS.get((stage.spec.static, stage.spec.differentiable))


# -- the compiled plan ---------------------------------------------------------------------
@attrs.frozen
class _Step:
    """One step of a compiled plan: a fused kernel or a generic stage."""

    kind: str
    stages: tuple[ResolvedStage, ...]  # the stages it renders (a demosaic absorbs matrices)
    params: dict[str, Any] = attrs.field(factory=dict, eq=False)


class _State:
    """What flows between steps: a mosaic, or RGB = matrix @ base (+ back * y).

    With luma ``y`` (a luma filter's input or output), ``base`` holds the RGB
    *without* its luma part (``base = RGB - back * Y``, the colour matrix
    applied), so the luma filters change ``y`` alone and RGB is
    ``base + back * y`` at the end. Steps never modify the tensors of a state
    in place (they make new ones), so several branches of a
    :class:`FastRenderGroup` can share one state's tensors.
    """

    __slots__ = ("base", "matrix", "mosaic", "y")

    def __init__(self, mosaic: torch.Tensor) -> None:
        self.mosaic: torch.Tensor | None = mosaic
        self.base: torch.Tensor | None = None
        self.matrix = np.eye(3)
        self.y: torch.Tensor | None = None

    def branch(self) -> _State:
        """A state sharing this one's tensors (which no step modifies)."""
        other = _State.__new__(_State)
        other.mosaic, other.base, other.y = self.mosaic, self.base, self.y
        other.matrix = self.matrix.copy()
        return other


class FastRenderer:
    """Render batches of raw mosaics through one pipeline, fast and without autograd.

    Parameters
    ----------
    pipeline : ResolvedPipeline
        A resolved pipeline (:func:`driftlab.pipeline.resolve`); every stage
        needs a static or a differentiable form.
    device : str or torch.device
        Where to render (``"cpu"``, ``"cuda"``, ``"cuda:1"`` ...).
    dtype : torch.dtype
        Output dtype, in which the final clip and gamma curve are computed
        (``torch.float32`` or ``torch.float64``).
    linear_dtype : torch.dtype
        Dtype of the arithmetic between the demosaic and the gamma stage
        (float64 by default; see the module docstring). The mosaic side is
        always float64.
    values : mapping, optional
        ``{"stage name": {"param": array}}`` replacing resolved values (e.g.
        an attacked or learned pipeline's current parameters); not checked
        against the domains.
    chunk_pixels : int, optional
        Pixels rendered together; default :data:`CPU_CHUNK_PIXELS` or
        :data:`CUDA_CHUNK_PIXELS`.

    Raises
    ------
    ValueError
        Unknown dtype, a stage with neither form, or an override for an
        unknown stage or parameter.
    """

    def __init__(
        self,
        pipeline: ResolvedPipeline,
        *,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
        linear_dtype: torch.dtype = torch.float64,
        values: Mapping[str, Mapping[str, Any]] | None = None,
        chunk_pixels: int | None = None,
    ) -> None:
        for label, value in (("dtype", dtype), ("linear_dtype", linear_dtype)):
            if value not in (torch.float32, torch.float64):
                raise ValueError(f"FastRenderer: {label} must be float32 or float64, got {value}")
        self.pipeline = pipeline
        self.device = torch.device(device)
        self.dtype = dtype
        self.linear_dtype = linear_dtype
        default_chunk = CUDA_CHUNK_PIXELS if self.device.type == "cuda" else CPU_CHUNK_PIXELS
        self.chunk_pixels = int(chunk_pixels or default_chunk)
        if self.chunk_pixels < 1:
            raise ValueError(f"FastRenderer: chunk_pixels must be >= 1, got {chunk_pixels}")
        self.values = _merge_values(pipeline, values)
        self.steps = _compile(pipeline, self.values)
        self.context = pipeline.context

    @property
    def name(self) -> str:
        return self.pipeline.name

    def describe(self) -> list[str]:
        """One line per compiled step (what runs fused and what runs generically)."""
        return [f"{s.kind}: {', '.join(st.spec.key for st in s.stages)}" for s in self.steps]

    # -- public entry points -----------------------------------------------------------------
    def __call__(
        self, raw: torch.Tensor | np.ndarray, *, allow_out_of_range: bool = False
    ) -> torch.Tensor:
        """Render a batch of views.

        Parameters
        ----------
        raw : torch.Tensor or numpy.ndarray
            ``(B, 1, H, W)``, ``(B, H, W)`` or ``(H, W)`` mosaics in [0, 1]
            (raw / white level), H and W even, on any device.
        allow_out_of_range : bool
            Accept values outside [0, 1].

        Returns
        -------
        torch.Tensor
            ``(B, 3, H, W)`` views in ``dtype`` on the renderer's device (in
            [0, 1] when the pipeline ends with gamma).

        Raises
        ------
        driftlab.validation.RawInputError
            Wrong shape, odd sides, NaN/Inf, or values out of range.
        driftlab.pipeline.outputs.StageOutputError
            A generic stage returned the wrong shape, dtype or non-finite values.
        """
        batch = _as_batch(raw)
        n, _, h, w = batch.shape
        out = torch.empty((n, 3, h, w), dtype=self.dtype, device=self.device)
        per_chunk = max(1, self.chunk_pixels // (h * w))
        with torch.inference_mode():
            for start in range(0, n, per_chunk):
                chunk = batch[start : start + per_chunk].to(self.device, torch.float64)
                _check_raw(chunk, allow_out_of_range)
                self._render_chunk(chunk, out[start : start + per_chunk])
        return out

    def render_numpy(
        self, raw: torch.Tensor | np.ndarray, *, allow_out_of_range: bool = False
    ) -> np.ndarray:
        """:meth:`__call__` returning a ``(B, 3, H, W)`` numpy array on the CPU."""
        return self(raw, allow_out_of_range=allow_out_of_range).cpu().numpy()

    # -- execution -------------------------------------------------------------------------
    def _render_chunk(self, mosaic: torch.Tensor, out: torch.Tensor) -> None:
        state = _State(mosaic)
        last = len(self.steps) - 1
        for index, step in enumerate(self.steps):
            if index == last and step.kind == "gamma":  # straight into the output
                self._materialize(state, clip_gamma=step.params["gamma"], out=out)
                return
            getattr(self, f"_run_{_RUNNERS.get(step.kind, step.kind)}")(index, step, state)
        self._materialize(state, clip_gamma=None, out=out)

    def _run_black_level(self, index: int, step: _Step, state: _State) -> None:
        levels = step.params["levels"]
        x = state.mosaic
        b, _, h, w = x.shape
        sites = torch.tensor(levels.reshape(1, 1, 2, 1, 2), dtype=x.dtype, device=x.device)
        state.mosaic = (x.reshape(b, h // 2, 2, w // 2, 2) - sites).reshape(b, 1, h, w)

    def _run_linear_demosaic(self, index: int, step: _Step, state: _State) -> None:
        # Each colour at each CFA site is a short sum of shifted site-plane samples
        # (bilinear 7, Malvar 21 taps per pixel on average): sparse taps in the linear
        # dtype are much cheaper than a dense float64 convolution.
        x = state.mosaic.to(self.linear_dtype)
        b, _, h2, w2 = x.shape
        h, w = h2 // 2, w2 // 2
        planes = split_sites_torch(pad_symmetric(x, 2, 2, mode="reflect"))
        levels = step.params["levels"]
        if levels is not None:
            planes = planes - torch.tensor(levels, dtype=planes.dtype, device=planes.device).view(
                1, 4, 1, 1
            )
        estimates = torch.empty((b, 3, 4, h, w), dtype=self.linear_dtype, device=self.device)
        for (colour, site), taps in step.params["taps"].items():
            target = estimates[:, colour, site]
            for n, (source, u, v, weight) in enumerate(taps):
                window = planes[:, source, u : u + h, v : v + w]
                if n == 0:
                    torch.mul(window, weight, out=target)
                else:
                    target.add_(window, alpha=weight)
        state.mosaic = None
        self._set_rgb(
            state,
            lambda colour, site: estimates[:, colour, site],
            step.params["matrix"],
            step.params["want_y"],
        )

    def _run_menon(self, index: int, step: _Step, state: _State) -> None:
        red, green, blue = fastops.menon_site_planes(
            state.mosaic, self.context.cfa, self.linear_dtype
        )
        state.mosaic = None
        colours = (red, green, blue)
        self._set_rgb(
            state,
            lambda colour, site: colours[colour][site],
            step.params["matrix"],
            step.params["want_y"],
        )

    def _set_rgb(
        self,
        state: _State,
        estimate: Callable[[int, int], torch.Tensor],
        matrix: np.ndarray,
        want_y: bool,
    ) -> None:
        """RGB (or RGB without its luma part, and Y) from demosaiced site planes.

        ``estimate(colour, site)`` is the ``(B, h, w)`` plane of one colour
        at one CFA site. The colour matrix (and the luma row) is applied on
        the site planes, then one copy puts the sites into the
        full-resolution layout. With ``want_y`` the rows are ``matrix - back
        * luma @ matrix`` and ``luma @ matrix`` (see :class:`_State`).
        """
        if want_y:
            luma_row = _LUMA_ROW @ matrix
            rows = np.vstack([matrix - np.outer(_LUMA_BACK, luma_row), luma_row])
        else:
            rows = matrix
        b, h, w = estimate(0, 0).shape
        mixed = torch.empty((b, len(rows), 4, h, w), dtype=self.linear_dtype, device=self.device)
        for site in range(4):
            colours = [estimate(c, site) for c in range(3)]
            for q, row in enumerate(rows):
                _mix3(colours, row, mixed[:, q, site])
        full = demosaic.merge_site_channels(mixed.view(b, len(rows) * 4, h, w), len(rows))
        state.base = full[:, :3]
        state.matrix = np.eye(3)
        state.y = full[:, 3:4] if want_y else None

    def _run_matrix(self, index: int, step: _Step, state: _State) -> None:
        if state.y is not None:  # luma already filtered: bring the change into RGB first
            state.base = self._materialize(state, clip_gamma=None)
        state.matrix = step.params["matrix"] @ state.matrix

    def _run_luma(self, index: int, step: _Step, state: _State) -> None:
        if state.y is None:  # split RGB into luma and the rest (see _State)
            base, matrix = state.base, state.matrix
            b, _, h, w = base.shape
            y = torch.empty((b, 1, h, w), dtype=base.dtype, device=self.device)
            _mix3(base.unbind(1), _LUMA_ROW @ matrix, y[:, 0])
            rest = torch.empty_like(base)
            for c in range(3):
                _mix3(base.unbind(1), matrix[c], rest[:, c])
                rest[:, c : c + 1].sub_(y, alpha=float(_LUMA_BACK[c]))
            state.base, state.matrix, state.y = rest, np.eye(3), y
        p = step.params
        kind = step.kind
        y = state.y
        if kind == "sharpening_filter":
            state.y = fastops.convolve_taps(y, p["kernel"])
        elif kind == "gaussian":
            state.y = fastops.column_taps(fastops.column_taps(y, p["taps"], -2), p["taps"], -1)
        elif kind in ("unsharp_masking", "column_unsharp_masking"):
            blurred = fastops.column_taps(y, p["taps"], -2)
            if kind == "unsharp_masking":
                blurred = fastops.column_taps(blurred, p["taps"], -1)
            # y + (y - blurred) * amount
            state.y = blurred.mul_(-p["amount"]).add_(y, alpha=1.0 + p["amount"])
        elif kind == "median":
            state.y = fastops.median3x3_fast(y)
        else:  # pragma: no cover - _compile only emits the kinds above
            raise AssertionError(kind)

    def _run_gamma(self, index: int, step: _Step, state: _State) -> None:
        state.base = self._materialize(state, clip_gamma=step.params["gamma"])

    def _run_generic(self, index: int, step: _Step, state: _State) -> None:
        (stage,) = step.stages
        values = self.values[stage.name]
        if stage.spec.input_kind == "mosaic":
            x = state.mosaic
        else:
            x = self._materialize(state, clip_gamma=None)
        # a copy of each view: a plugin that wrote into its input would otherwise change the
        # tensors shared with other pipelines of a FastRenderGroup
        outputs = [self._generic_one(stage, values, x[i : i + 1].clone()) for i in range(len(x))]
        result = torch.cat(outputs)
        if stage.spec.output_kind == "mosaic":
            state.mosaic = result.to(torch.float64)
            state.base = None
        else:
            state.mosaic = None
            state.base = result.to(self.linear_dtype)
            state.matrix = np.eye(3)
            state.y = None

    def _generic_one(
        self, stage: ResolvedStage, values: Mapping[str, np.ndarray], x: torch.Tensor
    ) -> torch.Tensor:
        spec, ctx = stage.spec, self.context
        channels = 1 if spec.output_kind == "mosaic" else 3
        h, w = x.shape[-2:]
        if spec.static is not None:  # the reference, one view at a time
            array = x[0].double().cpu().numpy()
            array = array[0] if spec.input_kind == "mosaic" else array
            out = spec.static(array.copy(), ctx, **{k: np.array(v) for k, v in values.items()})
            expected = (h, w) if channels == 1 else (3, h, w)
            out = check_stage_output(stage, out, "static", expected, np.float64)
            tensor = torch.as_tensor(np.asarray(out, dtype=np.float64), device=self.device)
            return tensor.reshape(1, channels, h, w)
        dtype = x.dtype
        params = {
            k: torch.as_tensor(np.asarray(v), dtype=dtype, device=x.device)
            for k, v in values.items()
        }
        out = spec.differentiable(x, ctx, **params)
        return check_stage_output(stage, out, "differentiable", (1, channels, h, w), dtype)

    def _materialize(
        self, state: _State, clip_gamma: float | None, out: torch.Tensor | None = None
    ) -> torch.Tensor:
        """RGB of the state, new (or the state's own base, never to be modified) or in ``out``.

        With ``clip_gamma`` the result is clipped to [0, 1] and raised to
        ``1 / clip_gamma`` in ``dtype`` (after the linear arithmetic), in a
        new tensor or ``out``. The state's tensors are not modified; the
        state is left holding the RGB.
        """
        if state.base is None:
            raise AssertionError("pipeline ended on a mosaic")  # resolve() prevents this
        base, y = state.base, state.y
        identity = np.array_equal(state.matrix, np.eye(3))
        if identity and y is None:
            rgb = base  # nothing to compute; shared, so never modified below
        else:
            # with the identity, one add per channel: computed in the linear dtype and
            # rounded once on store, so it may go straight into a float32 output; a colour
            # matrix sums several terms, so it is mixed in the linear dtype first
            one_rounding = identity
            if out is not None and (out.dtype == base.dtype or one_rounding):
                rgb = out
            elif clip_gamma is not None and one_rounding:
                rgb = torch.empty_like(base, dtype=self.dtype)
            else:
                rgb = torch.empty_like(base)
            channels = base.unbind(1)
            for c in range(3):
                if identity:  # y is not None here
                    torch.add(channels[c], y[:, 0], alpha=float(_LUMA_BACK[c]), out=rgb[:, c])
                    continue
                _mix3(channels, state.matrix[c], rgb[:, c])
                if y is not None:
                    rgb[:, c].add_(y[:, 0], alpha=float(_LUMA_BACK[c]))
        if clip_gamma is None:
            state.base, state.matrix, state.y = rgb, np.eye(3), None
            return rgb if out is None or rgb is out else out.copy_(rgb)
        state.base, state.matrix, state.y = None, np.eye(3), None
        if out is not None and rgb is not out:
            rgb = out.copy_(rgb)
        elif rgb is base or rgb.dtype != self.dtype:
            rgb = rgb.to(self.dtype, copy=True)  # a tensor of our own, in the output dtype
        # rounding the finished linear value costs a relative error only (see module doc);
        # v ** p as exp2(p log2 v), in place: faster than pow on the CPU; 0 stays exactly 0
        clipped = rgb.clamp_(0.0, 1.0)
        return gamma.fast_log2(clipped, out=clipped).mul_(1.0 / clip_gamma).exp2_()


def _frozen(value: Any) -> Any:
    """A hashable, exact form of step parameters (arrays by dtype, shape and bytes)."""
    if isinstance(value, np.ndarray):
        return (value.dtype.str, value.shape, value.tobytes())
    if isinstance(value, Mapping):
        return tuple(sorted((str(k), _frozen(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(_frozen(v) for v in value)
    return value


def _step_signature(step: _Step, renderer: FastRenderer) -> tuple:
    """What makes two compiled steps compute the same thing: kind, stage functions, values."""
    functions = tuple(
        (s.spec.key, id(s.spec.static), id(s.spec.differentiable)) for s in step.stages
    )
    values = (
        tuple(_frozen(renderer.values[s.name]) for s in step.stages)
        if step.kind == "generic"
        else None
    )
    return (step.kind, functions, _frozen(step.params), values)


class _Node:
    __slots__ = ("children", "leaves", "signature", "step")

    def __init__(self, step: _Step | None, signature: tuple | None) -> None:
        self.step = step
        self.signature = signature
        self.children: list[_Node] = []
        self.leaves: list[int] = []  # renderers whose last step this node is


class FastRenderGroup:
    """Render one batch of mosaics through several pipelines, sharing their common prefixes.

    The paper's twelve data models share their first stages in groups (the
    same black level, demosaic and colour matrices for four models, the same
    sharpening for two): the compiled steps of every renderer are arranged in
    a prefix tree and each shared step runs once per batch; where the
    pipelines part, the branches share its result without copies (no step
    modifies its input tensors). Every pipeline's views equal those of its
    own :class:`FastRenderer` exactly (same steps, same arithmetic).

    Parameters
    ----------
    renderers : sequence of FastRenderer
        With the same device, dtypes, chunk size and CFA context; names unique.

    Raises
    ------
    ValueError
        Renderers that differ in device, dtype, linear dtype, chunk size or
        camera context, or repeated names.
    """

    def __init__(self, renderers: Sequence[FastRenderer]) -> None:
        if not renderers:
            raise ValueError("FastRenderGroup: expected at least one renderer")
        first = renderers[0]
        names = [r.name for r in renderers]
        if len(set(names)) != len(names):
            raise ValueError(f"FastRenderGroup: repeated pipeline names in {names}")
        for r in renderers[1:]:
            same = (r.device, r.dtype, r.linear_dtype, r.chunk_pixels, r.context) == (
                first.device, first.dtype, first.linear_dtype, first.chunk_pixels, first.context
            )  # fmt: skip
            if not same:
                raise ValueError(
                    f"FastRenderGroup: {r.name!r} differs from {first.name!r} in device, dtype, "
                    "chunk size or camera context; render them separately"
                )
        self.renderers = tuple(renderers)
        self.root = _Node(None, None)  # its "step" is the raw mosaic
        for k, renderer in enumerate(self.renderers):
            node = self.root
            for step in renderer.steps:
                signature = _step_signature(step, renderer)
                child = next((c for c in node.children if c.signature == signature), None)
                if child is None:
                    child = _Node(step, signature)
                    node.children.append(child)
                node = child
            node.leaves.append(k)

    @property
    def names(self) -> list[str]:
        return [r.name for r in self.renderers]

    def shared_steps(self) -> int:
        """Steps saved per batch by sharing (sum of steps minus nodes of the tree)."""
        nodes, stack = 0, list(self.root.children)
        while stack:
            node = stack.pop()
            nodes += 1
            stack.extend(node.children)
        return sum(len(r.steps) for r in self.renderers) - nodes

    def __call__(
        self, raw: torch.Tensor | np.ndarray, *, allow_out_of_range: bool = False
    ) -> dict[str, torch.Tensor]:
        """Render a batch through every pipeline.

        Parameters
        ----------
        raw : torch.Tensor or numpy.ndarray
            ``(B, 1, H, W)``, ``(B, H, W)`` or ``(H, W)`` mosaics in [0, 1].

        Returns
        -------
        dict of str to torch.Tensor
            Pipeline name -> ``(B, 3, H, W)`` views in the renderers' dtype.

        Raises
        ------
        driftlab.validation.RawInputError, driftlab.pipeline.outputs.StageOutputError
            As :meth:`FastRenderer.__call__`.
        """
        lead = self.renderers[0]
        batch = _as_batch(raw)
        n, _, h, w = batch.shape
        outs = [
            torch.empty((n, 3, h, w), dtype=lead.dtype, device=lead.device) for _ in self.renderers
        ]
        per_chunk = max(1, lead.chunk_pixels // (h * w))
        with torch.inference_mode():
            for start in range(0, n, per_chunk):
                chunk = batch[start : start + per_chunk].to(lead.device, torch.float64)
                _check_raw(chunk, allow_out_of_range)
                targets = [out[start : start + per_chunk] for out in outs]
                self._walk(self.root, _State(chunk), targets)
        return {r.name: out for r, out in zip(self.renderers, outs, strict=True)}

    def _walk(self, node: _Node, state: _State, targets: list[torch.Tensor]) -> None:
        """Continue from ``node`` (its step already applied to ``state``) to every branch."""
        branches: list[_Node | int] = [*node.children, *node.leaves]
        for position, branch in enumerate(branches):
            own = state if position == len(branches) - 1 else state.branch()
            if isinstance(branch, int):  # a pipeline that ends here without a final gamma
                renderer = self.renderers[branch]
                renderer._materialize(own, clip_gamma=None, out=targets[branch])
                continue
            step = branch.step
            renderer = self.renderers[_first_leaf(branch)]
            if step.kind == "gamma" and not branch.children and len(branch.leaves) == 1:
                out = targets[branch.leaves[0]]  # straight into the output, as FastRenderer does
                renderer._materialize(own, clip_gamma=step.params["gamma"], out=out)
                continue
            getattr(renderer, f"_run_{_RUNNERS.get(step.kind, step.kind)}")(0, step, own)
            self._walk(branch, own, targets)


def _first_leaf(node: _Node) -> int:
    while not node.leaves:
        node = node.children[0]
    return node.leaves[0]


def _mix3(colours: Sequence[torch.Tensor], row: np.ndarray, target: torch.Tensor) -> None:
    """``target = row[0] c0 + row[1] c1 + row[2] c2`` (zero weights skipped)."""
    terms = [(c, float(row[c])) for c in range(3) if row[c] != 0.0]
    if not terms:
        target.zero_()
        return
    first, weight = terms[0]
    torch.mul(colours[first], weight, out=target)
    for c, weight in terms[1:]:
        target.add_(colours[c], alpha=weight)


def _check_raw(chunk: torch.Tensor, allow_out_of_range: bool) -> None:
    """One pass: min and max (NaN propagates through both) decide; details only on failure."""
    low, high = (float(v) for v in torch.aminmax(chunk))
    finite = math.isfinite(low) and math.isfinite(high)
    if not finite or (not allow_out_of_range and (low < 0.0 or high > 1.0)):
        validate_raw_batch(chunk, "raw", allow_out_of_range=allow_out_of_range)


_RUNNERS: Mapping[str, str] = MappingProxyType(
    {
        "bilinear": "linear_demosaic",
        "malvar2004": "linear_demosaic",
        "menon2007": "menon",
        "gains": "matrix",
        "matrix": "matrix",
        **{k: "luma" for k in _LUMA_KINDS},
    }
)


# -- compiling -----------------------------------------------------------------------------
def _merge_values(
    pipeline: ResolvedPipeline, values: Mapping[str, Mapping[str, Any]] | None
) -> dict[str, dict[str, np.ndarray]]:
    merged = {
        s.name: {k: np.asarray(v, dtype=np.float64) for k, v in s.values.items()}
        for s in pipeline.stages
    }
    for name, params in (values or {}).items():
        if name not in merged:
            raise ValueError(
                f"FastRenderer: no stage {name!r} in pipeline {pipeline.name!r}; "
                f"stages: {', '.join(merged)}"
            )
        for key, value in params.items():
            if key not in merged[name]:
                raise ValueError(f"FastRenderer: stage {name!r} has no parameter {key!r}")
            array = np.asarray(value, dtype=np.float64)
            if array.shape != merged[name][key].shape:
                raise ValueError(
                    f"FastRenderer: {name}.{key} must have shape {merged[name][key].shape}, "
                    f"got {array.shape}"
                )
            merged[name][key] = array
    return merged


def _matrix_of(kind: str, values: Mapping[str, np.ndarray]) -> np.ndarray:
    if kind == "gains":
        return np.diag(values["gains"])
    return np.asarray(values["matrix"], dtype=np.float64).reshape(3, 3)


def _compile(
    pipeline: ResolvedPipeline, values: Mapping[str, Mapping[str, np.ndarray]]
) -> list[_Step]:
    stages = list(pipeline.stages)
    for stage in stages:
        if not stage.spec.forms:  # pragma: no cover - StageSpec requires a form
            raise ValueError(f"{stage.label}: no implementation")
    kinds = [kernel_kind(s) for s in stages]
    steps: list[_Step] = []
    i = 0
    while i < len(stages):
        stage, kind = stages[i], kinds[i]
        vals = values[stage.name]
        if kind in _LINEAR_DEMOSAIC or kind == "menon2007":
            # absorb the colour matrices that follow; the luma row too if a luma filter comes next
            matrix = np.eye(3)
            absorbed = [stage]
            j = i + 1
            while j < len(stages) and kinds[j] in _MATRIX_KINDS:
                matrix = _matrix_of(kinds[j], values[stages[j].name]) @ matrix
                absorbed.append(stages[j])
                j += 1
            want_y = j < len(stages) and kinds[j] in _LUMA_KINDS
            if kind == "menon2007":
                steps.append(
                    _Step("menon2007", tuple(absorbed), {"matrix": matrix, "want_y": want_y})
                )
            else:
                # a black-level subtraction right before a linear demosaic is done on its planes
                levels = None
                if steps and steps[-1].kind == "black_level":
                    levels = steps.pop().params["levels"]
                steps.append(
                    _Step(
                        kind,
                        tuple(absorbed),
                        {
                            "taps": _linear_taps(kind, pipeline.context.cfa),
                            "levels": levels,
                            "matrix": matrix,
                            "want_y": want_y,
                        },
                    )
                )
            i = j
            continue
        if kind == "black_level":
            steps.append(_Step(kind, (stage,), {"levels": np.asarray(vals["levels"])}))
        elif kind in _MATRIX_KINDS:
            steps.append(_Step(kind, (stage,), {"matrix": _matrix_of(kind, vals)}))
        elif kind == "sharpening_filter":
            steps.append(_Step(kind, (stage,), {"kernel": np.asarray(vals["kernel"])}))
        elif kind == "gaussian":
            steps.append(
                _Step(kind, (stage,), {"taps": fastops.gaussian_taps(float(vals["sigma"]))})
            )
        elif kind in ("unsharp_masking", "column_unsharp_masking"):
            taps = fastops.gaussian_taps(float(vals["radius"]), name="radius")
            steps.append(_Step(kind, (stage,), {"taps": taps, "amount": float(vals["amount"])}))
        elif kind == "median":
            steps.append(_Step(kind, (stage,), {}))
        elif kind == "gamma":
            steps.append(_Step(kind, (stage,), {"gamma": float(vals["gamma"])}))
        else:
            steps.append(_Step("generic", (stage,)))
        i += 1
    return steps


_Taps = dict[tuple[int, int], list[tuple[int, int, int, float]]]


def _linear_taps(variant: str, cfa: str) -> _Taps:
    """Non-zero site-plane taps of a linear demosaic, ``{(colour, site): [(source, u, v, w)]}``.

    ``u, v`` index a plane padded by one sample (0..2); see
    :func:`driftlab.stages.demosaic.site_plane_weights`.
    """
    weights = demosaic.site_plane_weights(variant, cfa).reshape(3, 4, 4, 3, 3)
    taps: _Taps = {}
    for colour in range(3):
        for site in range(4):
            taps[(colour, site)] = [
                (int(i), int(u), int(v), float(weights[colour, site, i, u, v]))
                for i, u, v in zip(*np.nonzero(weights[colour, site]), strict=True)
            ]
    return taps


def _as_batch(raw: torch.Tensor | np.ndarray) -> torch.Tensor:
    tensor = raw if isinstance(raw, torch.Tensor) else torch.as_tensor(np.asarray(raw))
    if tensor.ndim == 2:
        tensor = tensor[None, None]
    elif tensor.ndim == 3:
        tensor = tensor[:, None]
    if tensor.ndim != 4 or tensor.shape[1] != 1:
        raise RawInputError(
            f"raw: expected (B, 1, H, W), (B, H, W) or (H, W) mosaics, got shape "
            f"{tuple(tensor.shape)}"
        )
    if tensor.dtype.is_complex or tensor.dtype == torch.bool:
        raise RawInputError(f"raw: expected real numbers, got {tensor.dtype}")
    h, w = tensor.shape[-2:]
    if h < 2 or w < 2 or h % 2 or w % 2:
        raise RawInputError(
            f"raw: height and width must be even and at least 2 (whole 2x2 CFA blocks), got {h}x{w}"
        )
    return tensor


def render_views(
    pipeline: ResolvedPipeline,
    raw: torch.Tensor | np.ndarray | Sequence[np.ndarray],
    *,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    linear_dtype: torch.dtype = torch.float64,
    values: Mapping[str, Mapping[str, Any]] | None = None,
    allow_out_of_range: bool = False,
) -> np.ndarray:
    """Render mosaics through one resolved pipeline with the fast path.

    Parameters
    ----------
    pipeline : ResolvedPipeline
        See :func:`driftlab.pipeline.resolve`.
    raw : array_like
        ``(N, H, W)`` or ``(N, 1, H, W)`` mosaics in [0, 1], or a sequence of
        ``(H, W)`` mosaics of one shape.
    device, dtype, linear_dtype, values
        See :class:`FastRenderer`.
    allow_out_of_range : bool
        Accept raw values outside [0, 1].

    Returns
    -------
    numpy.ndarray
        ``(N, 3, H, W)`` views in ``dtype``.
    """
    if isinstance(raw, (list, tuple)):
        raw = np.stack([np.asarray(r) for r in raw])
    renderer = FastRenderer(
        pipeline, device=device, dtype=dtype, linear_dtype=linear_dtype, values=values
    )
    return renderer.render_numpy(raw, allow_out_of_range=allow_out_of_range)


def chunk_count(n: int, height: int, width: int, chunk_pixels: int) -> int:
    """Number of chunks :class:`FastRenderer` splits ``n`` views of ``height x width`` into."""
    return math.ceil(n / max(1, chunk_pixels // (height * width)))
