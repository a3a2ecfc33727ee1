"""Inference kernels of the fast render path (:mod:`driftlab.pipeline.batched`).

Each kernel computes what a built-in stage computes, on a batch, without
autograd, with as few passes over memory as the arithmetic allows:

* luma filters as sums of shifted slices (a multiply-add per non-zero tap,
  written in place into one buffer) instead of convolutions of one channel;
* the 3x3 median by sorting columns of three once and combining neighbouring
  columns (Paeth's 3x3 median: ``med(max(lows), med(mids), min(highs))``),
  18 min/max passes instead of a sort;
* Menon (2007) demosaicing on the four CFA site planes, evaluating each
  quantity only at the sites where colour-demosaicing's result uses it, with
  the library's order of floating-point operations for the directional
  decision (see :func:`menon_site_planes`).

All kernels take and return ``(B, C, H, W)`` tensors (site planes:
``(B, h, w)`` per site) and work on any device.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from driftlab.cfa import check_cfa
from driftlab.stages.filters import gaussian_radius, pad_symmetric, split_sites_torch

__all__ = [
    "column_taps",
    "convolve_taps",
    "gaussian_taps",
    "median3x3_fast",
    "menon_site_planes",
]


# -- luma filters --------------------------------------------------------------------------
def gaussian_taps(sigma: float, name: str = "sigma") -> np.ndarray:
    """scipy's 1-D Gaussian weights ``(2r + 1,)`` for ``sigma`` (truncate 4), float64.

    Raises
    ------
    ValueError
        Kernel larger than :data:`driftlab.stages.filters.MAX_KERNEL_RADIUS`.
    """
    radius = gaussian_radius(sigma, name=name)
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    phi = np.exp(-0.5 / float(sigma) ** 2 * x**2)
    return phi / phi.sum()


def column_taps(y: torch.Tensor, taps: np.ndarray, dim: int) -> torch.Tensor:
    """Symmetric 1-D filter along ``dim`` (-2 columns, -1 rows), scipy ``reflect`` borders.

    Parameters
    ----------
    y : torch.Tensor
        ``(B, 1, H, W)``.
    taps : numpy.ndarray
        ``(2r + 1,)`` weights (a correlation, as scipy's ``correlate1d``).
    dim : {-2, -1}

    Returns
    -------
    torch.Tensor
        ``(B, 1, H, W)``, a new tensor.
    """
    radius = len(taps) // 2
    n = y.shape[dim]
    padded = pad_symmetric(y, radius, 0) if dim == -2 else pad_symmetric(y, 0, radius)
    out = torch.mul(padded.narrow(dim, radius, n), float(taps[radius]))
    for k in range(len(taps)):
        if k != radius and taps[k] != 0.0:
            out.add_(padded.narrow(dim, k, n), alpha=float(taps[k]))
    return out


def convolve_taps(y: torch.Tensor, kernel: np.ndarray) -> torch.Tensor:
    """True 2-D convolution with a small kernel, scipy ``reflect`` borders, zero taps skipped.

    Parameters
    ----------
    y : torch.Tensor
        ``(B, 1, H, W)``.
    kernel : numpy.ndarray
        ``(kh, kw)``, odd sides.

    Returns
    -------
    torch.Tensor
        ``(B, 1, H, W)``, a new tensor.
    """
    kh, kw = kernel.shape
    h, w = y.shape[-2:]
    padded = pad_symmetric(y, kh // 2, kw // 2)
    out: torch.Tensor | None = None
    for a in range(kh):
        for b in range(kw):
            weight = float(kernel[kh - 1 - a, kw - 1 - b])  # convolution: flipped kernel
            if weight == 0.0:
                continue
            window = padded[..., a : a + h, b : b + w]
            if out is None:
                out = torch.mul(window, weight)
            else:
                out.add_(window, alpha=weight)
    return out if out is not None else torch.zeros_like(y)


def median3x3_fast(y: torch.Tensor) -> torch.Tensor:
    """3x3 median with scipy ``reflect`` borders (``scipy.ndimage.median_filter(size=3)``).

    Each column of three is sorted once; the median of a window is then
    ``med3(max of the three lows, med3 of the three middles, min of the
    three highs)`` (A. Paeth, "Median finding on a 3x3 grid", Graphics Gems,
    1990): 18 minimum / maximum passes (instead of a sort), written in place
    where an operand is no longer needed. The result is exactly one of the
    nine values.

    Parameters
    ----------
    y : torch.Tensor
        ``(B, C, H, W)``.

    Returns
    -------
    torch.Tensor
        ``(B, C, H, W)``.
    """
    h, w = y.shape[-2:]
    p = pad_symmetric(y, 1, 1)
    top, mid, bottom = p[..., 0:h, :], p[..., 1 : h + 1, :], p[..., 2 : h + 2, :]
    # each column of three: its lowest, middle and highest value
    low, high = torch.minimum(top, mid), torch.maximum(top, mid)
    middle = torch.minimum(high, bottom)
    torch.maximum(middle, low, out=middle)
    torch.minimum(low, bottom, out=low)
    torch.maximum(high, bottom, out=high)

    def cols(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return t[..., 0:w], t[..., 1 : w + 1], t[..., 2 : w + 2]

    a, b, c = cols(low)
    lows = torch.maximum(a, b)
    torch.maximum(lows, c, out=lows)
    a, b, c = cols(high)
    highs = torch.minimum(a, b)
    torch.minimum(highs, c, out=highs)
    a, b, c = cols(middle)
    middles = _median3(a, b, c)
    return _median3(lows, middles, highs)


def _median3(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """``max(min(a, b), min(max(a, b), c))``, a new tensor (``a``, ``b``, ``c`` unchanged)."""
    low, high = torch.minimum(a, b), torch.maximum(a, b)
    torch.minimum(high, c, out=high)
    return torch.maximum(low, high, out=low)


# -- Menon 2007 on site planes -------------------------------------------------------------
class _Plane:
    """One quantity at one CFA site: ``(B, top + h + bottom, left + w + right)``.

    The margins say how far beyond the image (in plane pixels) the values
    are valid; a shifted read narrows them.
    """

    __slots__ = ("bottom", "left", "right", "t", "top")

    def __init__(self, t: torch.Tensor, top: int, bottom: int, left: int, right: int) -> None:
        self.t, self.top, self.bottom, self.left, self.right = t, top, bottom, left, right


class _SiteGrid:
    """Plane geometry and the neighbour map of a CFA pattern."""

    def __init__(self, cfa: str, h: int, w: int) -> None:
        pattern = check_cfa(cfa)
        self.h, self.w = h, w
        self.r = pattern.index("R")
        self.b = pattern.index("B")
        greens = [s for s in range(4) if pattern[s] == "G"]
        # the green site in the red row, and the one in the blue row
        self.gr = next(s for s in greens if s // 2 == self.r // 2)
        self.gb = next(s for s in greens if s // 2 == self.b // 2)

    @staticmethod
    def neighbour(site: int, dy: int, dx: int) -> tuple[int, int, int]:
        """Site and plane offset of the pixel ``(dy, dx)`` away from a pixel of ``site``."""
        a, b = divmod(site, 2)
        y, x = a + dy, b + dx
        return 2 * (y % 2) + (x % 2), y // 2, x // 2

    def evaluate(
        self,
        fn: Callable[..., torch.Tensor],
        *terms: tuple[dict[int, _Plane], int, int, int],
    ) -> _Plane:
        """``fn`` of several quantities read at full-resolution offsets from one site.

        Each term is ``(quantity, site, dy, dx)``: the quantity (``{site:
        _Plane}``) read ``(dy, dx)`` pixels away from the pixels of ``site``.
        The result is valid where every operand is.
        """
        reads = []
        for quantity, site, dy, dx in terms:
            other, oy, ox = self.neighbour(site, dy, dx)
            reads.append((quantity[other], oy, ox))
        top = min(p.top + oy for p, oy, _ in reads)
        bottom = min(p.bottom - oy for p, oy, _ in reads)
        left = min(p.left + ox for p, _, ox in reads)
        right = min(p.right - ox for p, _, ox in reads)
        rows, cols = self.h + top + bottom, self.w + left + right
        if rows <= 0 or cols <= 0:
            raise RuntimeError("Menon site planes: margin exhausted (pad the mosaic more)")
        args = [
            p.t[
                ...,
                p.top + oy - top : p.top + oy - top + rows,
                p.left + ox - left : p.left + ox - left + cols,
            ]
            for p, oy, ox in reads
        ]
        return _Plane(fn(*args), top, bottom, left, right)

    def crop(self, plane: _Plane) -> torch.Tensor:
        """The ``(B, h, w)`` image part of a plane (all margins must be >= 0)."""
        if min(plane.top, plane.bottom, plane.left, plane.right) < 0:
            raise RuntimeError("Menon site planes: output not valid at the image border")
        return plane.t[..., plane.top : plane.top + self.h, plane.left : plane.left + self.w]


# colour-demosaicing's 5x5 classifier kernel; scipy's convolve flips it and adds the
# non-zero terms in raster order of the flipped kernel, starting from 0.
_CLASSIFIER = np.array(
    [
        [0.0, 0.0, 1.0, 0.0, 1.0],
        [0.0, 0.0, 0.0, 1.0, 0.0],
        [0.0, 0.0, 3.0, 0.0, 3.0],
        [0.0, 0.0, 0.0, 1.0, 0.0],
        [0.0, 0.0, 1.0, 0.0, 1.0],
    ]
)


def _classifier_terms(kernel: np.ndarray) -> list[tuple[int, int, float]]:
    flipped = kernel[::-1, ::-1]
    return [
        (int(a) - 2, int(b) - 2, float(flipped[a, b]))
        for a, b in zip(*np.nonzero(flipped), strict=True)
    ]


_TERMS_H = _classifier_terms(_CLASSIFIER)
_TERMS_V = _classifier_terms(_CLASSIFIER.T)
MENON_PAD = 8  # mosaic margin (pixels) of the static form


def menon_site_planes(
    mosaic: torch.Tensor, cfa: str, dtype: torch.dtype
) -> tuple[list[torch.Tensor], list[torch.Tensor], list[torch.Tensor]]:
    """Menon (2007) demosaicing with refining step, as R, G, B site planes.

    Computes what :func:`driftlab.stages.demosaic.menon2007_static` computes
    (colour-demosaicing on the mosaic mirror-padded by 8 pixels, cropped),
    evaluating every quantity of the algorithm only at the CFA sites where
    its result is used, on the four site planes. The directional decision
    (``d_V >= d_H``) is computed in the dtype of ``mosaic`` with the
    library's order of floating-point operations, so a float64 mosaic gives
    exactly the library's decisions; the rest is computed in ``dtype``.

    Parameters
    ----------
    mosaic : torch.Tensor
        ``(B, 1, H, W)`` mosaics (float64 for exact decisions), H and W even.
    cfa : str
        CFA pattern.
    dtype : torch.dtype
        Dtype of the interpolation after the decision and of the result.

    Returns
    -------
    (list, list, list)
        R, G and B, each four ``(B, H/2, W/2)`` site planes (site in raster
        order of the 2x2 block), in ``dtype`` (views, not necessarily
        contiguous).
    """
    h, w = mosaic.shape[-2] // 2, mosaic.shape[-1] // 2
    grid = _SiteGrid(cfa, h, w)
    m = MENON_PAD // 2
    padded = split_sites_torch(pad_symmetric(mosaic, MENON_PAD, MENON_PAD, mode="reflect"))
    x = {s: _Plane(padded[:, s], m, m, m, m) for s in range(4)}
    ev = grid.evaluate
    sr, sb, sgr, sgb = grid.r, grid.b, grid.gr, grid.gb
    colour_sites = (sr, sb)

    # -- directional green estimates and the a posteriori decision, in the library's order
    def green_estimate(site: int, vertical: bool) -> _Plane:
        def at(d: int) -> tuple[dict[int, _Plane], int, int, int]:
            return (x, site, d, 0) if vertical else (x, site, 0, d)

        return ev(
            _green_sum,
            at(-1),
            at(1),
            at(0),
            at(-2),
            at(2),
        )

    g_h = {s: green_estimate(s, False) for s in colour_sites}
    g_v = {s: green_estimate(s, True) for s in colour_sites}

    def half_sub(a: torch.Tensor, twice: torch.Tensor) -> torch.Tensor:
        return torch.sub(a, twice, alpha=0.5)  # a - twice / 2: the product is exact

    c_h = {s: ev(half_sub, (x, s, 0, 0), (g_h, s, 0, 0)) for s in colour_sites}
    c_v = {s: ev(half_sub, (x, s, 0, 0), (g_v, s, 0, 0)) for s in colour_sites}
    d_h = {s: ev(lambda a, b: (a - b).abs_(), (c_h, s, 0, 0), (c_h, s, 0, 2)) for s in colour_sites}
    d_v = {s: ev(lambda a, b: (a - b).abs_(), (c_v, s, 0, 0), (c_v, s, 2, 0)) for s in colour_sites}

    def classifier(d: dict[int, _Plane], site: int, terms: list) -> _Plane:
        # terms landing on green sites add exact zeros in the library: skipped
        reads = [(dy, dx, wt) for dy, dx, wt in terms if grid.neighbour(site, dy, dx)[0] in d]

        def total(*values: torch.Tensor) -> torch.Tensor:
            # scipy: 0 + w0 v0 + w1 v1 + ..., each product rounded before the sum
            terms = [
                v * wt if wt != 1.0 else v for v, (_, _, wt) in zip(values, reads, strict=True)
            ]
            acc = torch.add(terms[0], terms[1]) if len(terms) > 1 else terms[0].clone()
            for term in terms[2:]:
                acc.add_(term)
            return acc

        return ev(total, *[(d, site, dy, dx) for dy, dx, _ in reads])

    # 1.0 where the horizontal estimate is chosen, else 0.0: a selection by torch.lerp with
    # these weights is exact (and much faster than torch.where on CPU)
    chosen = {}
    for s in colour_sites:
        vertical_sum = {s: classifier(d_v, s, _TERMS_V)}
        horizontal_sum = {s: classifier(d_h, s, _TERMS_H)}
        chosen[s] = ev(
            lambda dv, dh: torch.ge(dv, dh).to(dv.dtype),
            (vertical_sum, s, 0, 0),
            (horizontal_sum, s, 0, 0),
        )

    # -- interpolation after the decision, in the working dtype
    def cast(p: _Plane) -> _Plane:
        return _Plane(p.t.to(dtype), p.top, p.bottom, p.left, p.right)

    xs = {s: cast(x[s]) for s in range(4)}
    green = {sgr: xs[sgr], sgb: xs[sgb]}
    for s in colour_sites:
        green[s] = cast(
            ev(
                lambda wt, gh, gv: _select(wt, gh, gv).mul_(0.5),
                (chosen, s, 0, 0),
                (g_h, s, 0, 0),
                (g_v, s, 0, 0),
            )
        )
    horizontal = {s: cast(chosen[s]) for s in colour_sites}
    red = {sr: xs[sr]}
    blue = {sb: xs[sb]}

    def kb(q: dict[int, _Plane], site: int, vertical: bool) -> tuple:
        # colour-demosaicing's k_b = [0.5, 0, 0.5]: (v[-1] + v[+1]) * 0.5
        return (
            ((q, site, -1, 0), (q, site, 1, 0)) if vertical else ((q, site, 0, -1), (q, site, 0, 1))
        )

    def interp(target: dict, site: int, vertical: bool, own: dict, other: dict) -> _Plane:
        # own(site) + kb(target) - kb(other)
        return ev(
            _colour_difference,
            (own, site, 0, 0),
            *kb(target, site, vertical),
            *kb(other, site, vertical),
        )

    red[sgr] = interp(red, sgr, False, green, green)
    red[sgb] = interp(red, sgb, True, green, green)
    blue[sgb] = interp(blue, sgb, False, green, green)
    blue[sgr] = interp(blue, sgr, True, green, green)

    def directional(decide: dict, target: dict, site: int, own: dict, other: dict) -> _Plane:
        return ev(
            lambda hz, o, h1, h2, oh1, oh2, v1, v2, ov1, ov2: _select(
                hz, _colour_difference(o, h1, h2, oh1, oh2), _colour_difference(o, v1, v2, ov1, ov2)
            ),
            (decide, site, 0, 0),
            (own, site, 0, 0),
            *kb(target, site, False),
            *kb(other, site, False),
            *kb(target, site, True),
            *kb(other, site, True),
        )

    red[sb] = directional(horizontal, red, sb, blue, blue)
    blue[sr] = directional(horizontal, blue, sr, red, red)

    # -- refining step
    third = 1.0 / 3.0

    def fir(q: dict, site: int) -> _Plane:
        # where(horizontal, FIR_h, FIR_v), FIR = ones(3) / 3: v * 1/3 + (v[-1] + v[+1]) * 1/3
        return ev(
            lambda hz, c, h1, h2, v1, v2: _select(
                hz, torch.add(h1, h2).add_(c), torch.add(v1, v2).add_(c)
            ).mul_(third),
            (horizontal, site, 0, 0),
            (q, site, 0, 0),
            (q, site, 0, -1),
            (q, site, 0, 1),
            (q, site, -1, 0),
            (q, site, 1, 0),
        )

    def difference(a: dict, b: dict, sites: tuple[int, ...] = (0, 1, 2, 3)) -> dict[int, _Plane]:
        return {s: ev(torch.sub, (a, s, 0, 0), (b, s, 0, 0)) for s in sites}

    r_g = difference(red, green, (sr, sgr, sgb))
    b_g = difference(blue, green, (sb, sgr, sgb))
    green2 = dict(green)
    green2[sr] = ev(torch.sub, (red, sr, 0, 0), (_one(fir(r_g, sr), sr), sr, 0, 0))
    green2[sb] = ev(torch.sub, (blue, sb, 0, 0), (_one(fir(b_g, sb), sb), sb, 0, 0))
    r_g2 = {sr: ev(torch.sub, (red, sr, 0, 0), (green2, sr, 0, 0))}
    b_g2 = {sb: ev(torch.sub, (blue, sb, 0, 0), (green2, sb, 0, 0))}

    def plus_kb(base: dict, diff: dict, site: int, vertical: bool) -> _Plane:
        return ev(
            lambda g, a, b: torch.add(a, b).mul_(0.5).add_(g),
            (base, site, 0, 0),
            *kb(diff, site, vertical),
        )

    red2 = dict(red)
    red2[sgb] = plus_kb(green2, r_g2, sgb, True)
    red2[sgr] = plus_kb(green2, r_g2, sgr, False)
    blue2 = dict(blue)
    blue2[sgr] = plus_kb(green2, b_g2, sgr, True)
    blue2[sgb] = plus_kb(green2, b_g2, sgb, False)
    r_b = difference(red2, blue2)
    red3 = dict(red2)
    red3[sb] = ev(torch.add, (blue2, sb, 0, 0), (_one(fir(r_b, sb), sb), sb, 0, 0))
    blue3 = dict(blue2)
    blue3[sr] = ev(torch.sub, (red2, sr, 0, 0), (_one(fir(r_b, sr), sr), sr, 0, 0))

    def planes(q: dict[int, _Plane]) -> list[torch.Tensor]:
        return [grid.crop(q[s]) for s in range(4)]

    return planes(red3), planes(green2), planes(blue3)


def _green_sum(
    m1: torch.Tensor, p1: torch.Tensor, c: torch.Tensor, m2: torch.Tensor, p2: torch.Tensor
) -> torch.Tensor:
    # Twice colour-demosaicing's green estimate convolve1d(h_0) + convolve1d(h_1),
    # h_0 = [0, .5, 0, .5, 0], h_1 = [-.25, 0, .5, 0, -.25], which scipy sums as
    # (m1 + p1) * .5 + (c * .5 + (m2 + p2) * -.25) (centre first, then the pairs from the
    # outside in; zero terms are exact no-ops). Scaling by powers of two is exact and
    # commutes with rounding, so (m1 + p1) + (c - (m2 + p2) / 2) is exactly twice it.
    total = torch.add(m1, p1)
    total.add_(torch.sub(c, torch.add(m2, p2), alpha=0.5))
    return total


def _colour_difference(
    own: torch.Tensor, t1: torch.Tensor, t2: torch.Tensor, o1: torch.Tensor, o2: torch.Tensor
) -> torch.Tensor:
    # own + (t1 + t2) / 2 - (o1 + o2) / 2: interpolate a colour difference
    return torch.add(t1, t2).sub_(o1).sub_(o2).mul_(0.5).add_(own)


def _select(weight: torch.Tensor, when_one: torch.Tensor, when_zero: torch.Tensor) -> torch.Tensor:
    # torch.lerp(a, b, w) is exactly a for w = 0 and exactly b for w = 1
    return torch.lerp(when_zero, when_one, weight)


def _one(plane: _Plane, site: int) -> dict[int, _Plane]:
    return {site: plane}
