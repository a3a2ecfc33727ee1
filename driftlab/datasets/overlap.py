"""Near-duplicate images: find photographs of overlapping fields of view and merge their groups.

A dataset can hold several shots of the same scene shifted a little (the 292
BCCD ``trainval`` photographs hold 18 such pairs, overlapping by 35 to 99%).
If each shot is its own split group, a model can be trained on one and tested
on its twin. :func:`detect_overlaps` registers every pair of images of equal
size, and datasets opened with ``group_overlapping=True`` merge the groups of
overlapping images into connected components.

Registration (translation only)
-------------------------------
1. **Coarse scale.** Each grey image is block-averaged so that its longer side
   is about ``reduce_to`` pixels (factor ``f``), standardised (zero mean, unit
   variance) and, when at least ``fixed_pattern_min_images`` images of that
   size are compared, the pixel-wise mean of all of them is subtracted first:
   it holds what every shot shares at the same place (dust, vignetting, JPEG
   block phase), which would otherwise correlate unrelated images at zero
   shift. Phase correlation (Kuglin & Hines, "The phase correlation image
   alignment method", 1975; Reddy & Chatterji, IEEE TIP 1996) of every pair,
   with a Tukey window (25% cosine taper, so that overlaps reaching the border
   still correlate), gives the two highest peaks of the normalised
   cross-power spectrum; a peak of at least ``min_peak`` is a candidate shift.
2. **Coarse check.** Each candidate shift (and its wrap-around aliases, since
   phase correlation is circular) is scored by the normalised
   cross-correlation (NCC) of the overlapping parts of the coarse images; the
   best alias of at least ``min_coarse_ncc`` and covering at least
   ``min_overlap`` of the image goes on.
3. **Full scale.** The shift is scaled back by ``f``, refined by the
   cross-correlation peak of the overlapping full-resolution parts within
   ``+- f`` pixels and then by climbing the full-resolution NCC over integer
   shifts; the pair is a near-duplicate when the NCC of the overlap reaches
   ``min_ncc`` (invariant to exposure and offset changes).

Thresholds (:class:`OverlapSettings`) come from the real BCCD subset (292
images, 42,486 pairs): the 18 pairs found reach full-scale NCC 0.91-0.98 over
overlaps of 35-99%, while the best of all other pairs that pass the coarse
stages reaches 0.61; ``min_ncc = 0.8`` sits in that gap. Overlaps well below
half the image correlate weakly at the coarse scale and may be missed. The
cost is quadratic in the number of images of one size (about 3 s for 292
images of 640 x 480 on one core, under load).

Cache
-----
The pairs found are stored in a JSON file named by a SHA-256 key of the
algorithm version, the settings and every image's id and content digest, in
``overlap_cache`` (default :func:`default_cache_dir`). A cache file is
checked before use (size, format, key, settings, image list, checksum, value
ranges) and every recorded pair is re-measured at its recorded shift; a file
failing any check is ignored, reported in the notes and rewritten. A forged
file can still hide a pair (absences are not re-measured): delete the cache
or pass ``overlap_cache=False`` to recompute everything.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from driftlab.datasets.base import DatasetError

__all__ = [
    "OVERLAP_VERSION",
    "OverlapPair",
    "OverlapReport",
    "OverlapSettings",
    "components",
    "default_cache_dir",
    "describe_components",
    "detect_overlaps",
    "file_digest",
    "find_overlaps",
    "grey_from_mosaic",
    "grey_from_rgb",
    "merge_groups",
    "parse_cache_option",
    "summarise",
]

OVERLAP_VERSION = 3
"""Version of the detection algorithm, part of the cache key."""
_FORMAT = "driftlab-overlap"
_MAX_CACHE_BYTES = 16 * 2**20
TAPER = 0.25
"""Fraction of each side tapered by the Tukey window before phase correlation."""
_CHUNK = 128


def _fraction(lo: float, hi: float):
    def check(instance: object, attribute: attrs.Attribute, value: float) -> None:
        if not (isinstance(value, (int, float)) and lo <= float(value) <= hi):
            raise ValueError(
                f"overlap setting {attribute.name}: expected {lo}..{hi}, got {value!r}"
            )

    return check


@attrs.frozen
class OverlapSettings:
    """Thresholds of :func:`find_overlaps` (module docstring, with their source).

    Attributes
    ----------
    reduce_to : int
        Longer side in pixels of the coarse images (block-averaging factor
        ``ceil(longer side / reduce_to)``).
    min_peak : float
        Smallest phase-correlation peak (0..1) taken as a candidate shift.
    min_coarse_ncc : float
        Smallest coarse-scale NCC of the overlap for a candidate to be
        checked at full scale.
    min_ncc : float
        Smallest full-scale NCC of the overlap for a near-duplicate.
    min_overlap : float
        Smallest overlap, as a fraction of the image area.
    fixed_pattern_min_images : int
        Subtract the mean image (fixed pattern) when at least this many
        images of one size are compared.
    """

    reduce_to: int = attrs.field(default=80, converter=int)
    min_peak: float = attrs.field(default=0.1, validator=_fraction(0.0, 1.0))
    min_coarse_ncc: float = attrs.field(default=0.6, validator=_fraction(-1.0, 1.0))
    min_ncc: float = attrs.field(default=0.8, validator=_fraction(-1.0, 1.0))
    min_overlap: float = attrs.field(default=0.25, validator=_fraction(0.0, 1.0))
    fixed_pattern_min_images: int = attrs.field(default=16, converter=int)

    def __attrs_post_init__(self) -> None:
        if self.reduce_to < 8:
            raise ValueError(
                f"overlap setting reduce_to: expected >= 8 pixels, got {self.reduce_to}"
            )


@attrs.frozen
class OverlapPair:
    """Two images of overlapping fields of view.

    Attributes
    ----------
    a, b : str
        Image ids, ``a < b``.
    dy, dx : int
        Shift in full-resolution pixels: ``image_a[y, x]`` shows what
        ``image_b[y - dy, x - dx]`` shows.
    overlap : float
        Overlapping area as a fraction of the image area.
    ncc : float
        Full-resolution normalised cross-correlation of the overlap.
    """

    a: str
    b: str
    dy: int
    dx: int
    overlap: float
    ncc: float


def components(ids: Sequence[str], pairs: Sequence[tuple[str, str]]) -> list[tuple[str, ...]]:
    """Connected components of the graph whose edges are ``pairs`` (union-find).

    Returns
    -------
    list of tuple of str
        Components with more than one member, each sorted, sorted by first member.
    """
    parent = {i: i for i in ids}

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in pairs:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    members: dict[str, list[str]] = {}
    for i in ids:
        members.setdefault(find(i), []).append(i)
    return sorted(tuple(sorted(m)) for m in members.values() if len(m) > 1)


@attrs.frozen
class OverlapReport:
    """Result of :func:`detect_overlaps`.

    Attributes
    ----------
    ids : tuple of str
        Images compared.
    pairs : tuple of OverlapPair
        Near-duplicate pairs, sorted.
    cache_path : pathlib.Path or None
        Cache file read or written (None when caching is off).
    from_cache : bool
        Whether the pairs came from a verified cache file.
    notes : tuple of str
        Cache files rejected or not writable, images skipped (constant).
    """

    ids: tuple[str, ...]
    pairs: tuple[OverlapPair, ...]
    cache_path: Path | None = None
    from_cache: bool = False
    notes: tuple[str, ...] = ()

    @property
    def components(self) -> list[tuple[str, ...]]:
        """Groups of more than one mutually overlapping image (connected components)."""
        return components(self.ids, [(p.a, p.b) for p in self.pairs])

    @property
    def merged_images(self) -> int:
        """Images that join another image's group: sum of (component size - 1)."""
        return sum(len(c) - 1 for c in self.components)

    def representative(self) -> dict[str, str]:
        """Image id -> first (sorted) id of its component (itself when alone)."""
        out = {i: i for i in self.ids}
        for component in self.components:
            for member in component:
                out[member] = component[0]
        return out


def grey_from_rgb(image: np.ndarray) -> np.ndarray:
    """``(H, W, 3)`` image (uint8 or float in [0, 1]) to ``(H, W)`` float32 luma (Rec. 601)."""
    array = np.asarray(image)
    scale = 255.0 if array.dtype == np.uint8 else 1.0
    return (
        array[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    ) / np.float32(scale)


def grey_from_mosaic(raw: np.ndarray) -> np.ndarray:
    """``(H, W)`` Bayer mosaic to an ``(H/2, W/2)`` float32 grey image (mean of each 2x2 block)."""
    raw = np.asarray(raw, dtype=np.float32)
    h, w = raw.shape[0] // 2 * 2, raw.shape[1] // 2 * 2
    return raw[:h, :w].reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))


def _reduce(image: np.ndarray, factor: int) -> np.ndarray:
    h, w = image.shape[0] // factor * factor, image.shape[1] // factor * factor
    return image[:h, :w].reshape(h // factor, factor, w // factor, factor).mean(axis=(1, 3))


def _standardise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return (x - x.mean()) / (x.std() + 1e-12)


def _ncc(a: np.ndarray, b: np.ndarray) -> float:
    a = a - a.mean()
    b = b - b.mean()
    denominator = math.sqrt(float((a * a).sum()) * float((b * b).sum()))
    return float((a * b).sum() / denominator) if denominator > 0 else 0.0


def _overlap(
    a: np.ndarray, b: np.ndarray, dy: int, dx: int
) -> tuple[np.ndarray, np.ndarray] | None:
    h, w = a.shape
    y0, y1, x0, x1 = max(0, dy), min(h, h + dy), max(0, dx), min(w, w + dx)
    if y1 - y0 < 2 or x1 - x0 < 2:
        return None
    return a[y0:y1, x0:x1], b[y0 - dy : y1 - dy, x0 - dx : x1 - dx]


def _window(shape: tuple[int, int]) -> np.ndarray:
    # Tukey window (cosine taper over 25% of each side): flat in the middle so that
    # overlaps near the border still correlate, unlike a full Hann window
    from scipy.signal.windows import tukey

    return np.outer(tukey(shape[0], TAPER), tukey(shape[1], TAPER))


def _local_shift(a: np.ndarray, b: np.ndarray, limit: int) -> tuple[int, int]:
    # cross-correlation (not phase-only: whitening two crops cut by the same window
    # favours zero shift) of two equally sized crops, peak within +- limit pixels
    fa = np.fft.rfft2(a - a.mean())
    fb = np.fft.rfft2(b - b.mean())
    surface = np.fft.irfft2(fa * np.conj(fb), s=a.shape)
    surface = np.roll(surface, (limit, limit), axis=(0, 1))[: 2 * limit + 1, : 2 * limit + 1]
    ky, kx = np.unravel_index(int(surface.argmax()), surface.shape)
    return int(ky) - limit, int(kx) - limit


def _climb(a: np.ndarray, b: np.ndarray, dy: int, dx: int, steps: int) -> tuple[float, int, int]:
    """Hill-climb the full-resolution NCC over integer shifts from ``(dy, dx)``."""
    cache: dict[tuple[int, int], float] = {}

    def score(y: int, x: int) -> float:
        if (y, x) not in cache:
            views = _overlap(a, b, y, x)
            cache[(y, x)] = _ncc(*views) if views is not None else -1.0
        return cache[(y, x)]

    best = (score(dy, dx), dy, dx)
    for _ in range(steps):
        y, x = best[1], best[2]
        around = max((score(y + i, x + j), y + i, x + j) for i in (-1, 0, 1) for j in (-1, 0, 1))
        if around[0] <= best[0]:
            break
        best = around
    return best


def _coarse_candidates(
    small: np.ndarray, settings: OverlapSettings
) -> list[tuple[int, int, int, int]]:
    """``(i, j, cy, cx)`` of pairs whose phase correlation has a peak >= min_peak."""
    n, h, w = small.shape
    window = _window((h, w))
    spectra = np.fft.rfft2(small * window)
    found: list[tuple[int, int, int, int]] = []
    for i in range(n - 1):
        for start in range(i + 1, n, _CHUNK):
            others = spectra[start : start + _CHUNK]
            cross = spectra[i][None] * np.conj(others)
            surface = np.fft.irfft2(cross / (np.abs(cross) + 1e-12), s=(h, w))
            flat = surface.reshape(len(others), -1)
            top = (
                np.argpartition(flat, -2, axis=1)[:, -2:]
                if flat.shape[1] > 2
                else np.argsort(flat, axis=1)
            )
            for row, index in enumerate(top):
                for k in index:
                    if flat[row, k] >= settings.min_peak:
                        cy, cx = divmod(int(k), w)
                        found.append((i, start + row, cy, cx))
    return found


def _aliases(c: int, size: int) -> tuple[int, ...]:
    return (0,) if c == 0 else (c, c - size)


def find_overlaps(
    images: Sequence[np.ndarray],
    ids: Sequence[str],
    settings: OverlapSettings | None = None,
) -> list[OverlapPair]:
    """Near-duplicate pairs among grey images (module docstring).

    Parameters
    ----------
    images : sequence of numpy.ndarray
        ``(H, W)`` float grey images; only images of equal shape are compared.
    ids : sequence of str
        Unique id of each image.
    settings : OverlapSettings, optional

    Returns
    -------
    list of OverlapPair
        Sorted by ``(a, b)``.

    Raises
    ------
    DatasetError
        Images that are not 2-D, non-finite values, or ids that are not
        unique or do not match the images.
    """
    settings = settings or OverlapSettings()
    if len(images) != len(ids) or len(set(ids)) != len(ids):
        raise DatasetError("find_overlaps: expected one unique id per image")
    by_shape: dict[tuple[int, int], list[int]] = {}
    for k, image in enumerate(images):
        array = np.asarray(image)
        if array.ndim != 2 or min(array.shape) < 8:
            raise DatasetError(
                f"find_overlaps: image {ids[k]!r} is not a 2-D image of 8 px or more"
            )
        if not np.all(np.isfinite(array)):
            raise DatasetError(f"find_overlaps: image {ids[k]!r} holds NaN or Inf")
        by_shape.setdefault(array.shape, []).append(k)
    pairs: list[OverlapPair] = []
    for shape, members in by_shape.items():
        if len(members) > 1:
            pairs.extend(
                _find_same_shape(
                    [images[k] for k in members], [ids[k] for k in members], shape, settings
                )
            )
    return sorted(pairs, key=lambda p: (p.a, p.b))


def _find_same_shape(
    images: Sequence[np.ndarray],
    ids: Sequence[str],
    shape: tuple[int, int],
    settings: OverlapSettings,
) -> list[OverlapPair]:
    factor = max(1, math.ceil(max(shape) / settings.reduce_to))
    full = [np.asarray(image, dtype=np.float64) for image in images]
    coarse = np.stack([_reduce(image, factor) for image in full])
    registered = (
        coarse - coarse.mean(axis=0) if len(full) >= settings.fixed_pattern_min_images else coarse
    )
    registered = np.stack([_standardise(x) for x in registered])
    h, w = coarse.shape[1:]
    best: dict[tuple[int, int], OverlapPair] = {}
    area = shape[0] * shape[1]
    for i, j, cy, cx in _coarse_candidates(registered, settings):
        scored = []
        for dy in _aliases(cy, h):
            for dx in _aliases(cx, w):
                views = _overlap(coarse[i], coarse[j], dy, dx)
                if views is None or views[0].size < settings.min_overlap * h * w:
                    continue
                scored.append((_ncc(*views), dy, dx))
        if not scored:
            continue
        coarse_ncc, dy, dx = max(scored)
        if coarse_ncc < settings.min_coarse_ncc:
            continue
        fy, fx = dy * factor, dx * factor
        views = _overlap(full[i], full[j], fy, fx)
        if views is not None and min(views[0].shape) > 2 * factor + 1:
            ry, rx = _local_shift(*views, factor)
            fy, fx = fy + ry, fx + rx
        value, fy, fx = _climb(full[i], full[j], fy, fx, 2 * factor)
        views = _overlap(full[i], full[j], fy, fx)
        if views is None:
            continue
        fraction = views[0].size / area
        if fraction < settings.min_overlap or value < settings.min_ncc:
            continue
        a, b = (ids[i], ids[j]) if ids[i] < ids[j] else (ids[j], ids[i])
        sign = 1 if ids[i] < ids[j] else -1
        pair = OverlapPair(
            a, b, sign * int(fy), sign * int(fx), round(fraction, 6), round(value, 6)
        )
        if (i, j) not in best or pair.ncc > best[(i, j)].ncc:
            best[(i, j)] = pair
    return list(best.values())


def default_cache_dir() -> Path:
    """``$DRIFTLAB_CACHE_DIR/overlap``, else ``$XDG_CACHE_HOME/driftlab/overlap``, else
    ``~/.cache/driftlab/overlap``."""
    base = os.environ.get("DRIFTLAB_CACHE_DIR")
    if base:
        return Path(base).expanduser() / "overlap"
    xdg = os.environ.get("XDG_CACHE_HOME")
    root = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return root / "driftlab" / "overlap"


def _canonical(data: Any) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


def _cache_key(
    ids: Sequence[str], digests: Sequence[str], settings: OverlapSettings, method: str
) -> str:
    body = {
        "format": _FORMAT,
        "version": OVERLAP_VERSION,
        "method": method,
        "settings": attrs.asdict(settings),
        "images": sorted(zip(ids, digests, strict=True)),
    }
    return hashlib.sha256(_canonical(body)).hexdigest()


def _check_cached(
    data: object,
    key: str,
    ids: Sequence[str],
    digests: Sequence[str],
    settings: OverlapSettings,
) -> list[OverlapPair]:
    """Pairs of a parsed cache file, or ValueError saying what is wrong with it."""
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    expected = {"format", "version", "key", "settings", "images", "pairs", "checksum"}
    if set(data) != expected:
        raise ValueError(f"fields {sorted(data)}, expected {sorted(expected)}")
    body = {k: v for k, v in data.items() if k != "checksum"}
    if data["checksum"] != hashlib.sha256(_canonical(body)).hexdigest():
        raise ValueError("checksum mismatch (truncated or edited)")
    if data["format"] != _FORMAT or data["version"] != OVERLAP_VERSION or data["key"] != key:
        raise ValueError("written by another version or for other images")
    if data["settings"] != attrs.asdict(settings):
        raise ValueError("other settings")
    if data["images"] != dict(zip(ids, digests, strict=True)):
        raise ValueError("other images")
    known = set(ids)
    pairs = []
    if not isinstance(data["pairs"], list):
        raise ValueError("pairs is not a list")
    for entry in data["pairs"]:
        if not isinstance(entry, dict) or set(entry) != {"a", "b", "dy", "dx", "overlap", "ncc"}:
            raise ValueError(f"malformed pair {entry!r}")
        a, b, dy, dx = entry["a"], entry["b"], entry["dy"], entry["dx"]
        overlap, ncc = entry["overlap"], entry["ncc"]
        if a not in known or b not in known or not a < b:
            raise ValueError(f"pair of unknown or unordered images {a!r}, {b!r}")
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (dy, dx)):
            raise ValueError(f"pair {a}/{b}: shift is not integer")
        if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in (overlap, ncc)):
            raise ValueError(f"pair {a}/{b}: non-numeric overlap or NCC")
        if not (settings.min_overlap <= overlap <= 1 and settings.min_ncc <= ncc <= 1):
            raise ValueError(f"pair {a}/{b}: overlap {overlap} or NCC {ncc} out of range")
        pairs.append(OverlapPair(a, b, dy, dx, float(overlap), float(ncc)))
    return pairs


def _remeasure(
    pair: OverlapPair, image_a: np.ndarray, image_b: np.ndarray, settings: OverlapSettings
) -> bool:
    a, b = np.asarray(image_a, np.float64), np.asarray(image_b, np.float64)
    if a.shape != b.shape:
        return False
    views = _overlap(a, b, pair.dy, pair.dx)
    if views is None:
        return False
    value, fraction = _ncc(*views), views[0].size / a.size
    return (
        value >= settings.min_ncc
        and abs(value - pair.ncc) < 1e-4
        and abs(fraction - pair.overlap) < 1e-4
    )


def _write_cache(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(_canonical(data))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def detect_overlaps(
    ids: Sequence[str],
    load: Callable[[int], np.ndarray],
    digests: Sequence[str],
    *,
    settings: OverlapSettings | None = None,
    cache_dir: str | Path | bool | None = None,
    method: str = "grey",
) -> OverlapReport:
    """Near-duplicate pairs of a set of images, through a verified cache.

    Parameters
    ----------
    ids : sequence of str
        Unique image ids.
    load : callable
        ``load(k) -> (H, W)`` float grey image of ``ids[k]`` (called for every
        image on a cache miss, for the images of cached pairs on a hit).
    digests : sequence of str
        Content digest of each image's file (e.g. SHA-256 of its bytes).
    settings : OverlapSettings, optional
    cache_dir : str, Path, False or None
        Folder of cache files; None: :func:`default_cache_dir`; False: no cache.
    method : str
        How ``load`` derives grey images (``"grey-rgb"``, ``"grey-mosaic"``);
        part of the cache key.

    Returns
    -------
    OverlapReport

    Raises
    ------
    DatasetError
        Ids and digests of different lengths or repeated ids, or images
        :func:`find_overlaps` rejects.
    """
    settings = settings or OverlapSettings()
    ids, digests = list(ids), list(digests)
    if len(ids) != len(digests) or len(set(ids)) != len(ids):
        raise DatasetError("detect_overlaps: expected one digest per unique image id")
    notes: list[str] = []
    path: Path | None = None
    if cache_dir is not False:
        folder = default_cache_dir() if cache_dir in (None, True) else Path(cache_dir).expanduser()
        path = folder / f"{_cache_key(ids, digests, settings, method)}.json"
    key = path.stem if path is not None else ""
    if path is not None and path.is_file():
        try:
            if path.stat().st_size > _MAX_CACHE_BYTES:
                raise ValueError(f"larger than {_MAX_CACHE_BYTES} bytes")
            pairs = _check_cached(json.loads(path.read_bytes()), key, ids, digests, settings)
            index = {i: k for k, i in enumerate(ids)}
            for pair in pairs:
                if not _remeasure(pair, load(index[pair.a]), load(index[pair.b]), settings):
                    raise ValueError(f"pair {pair.a}/{pair.b} does not re-measure as recorded")
            return OverlapReport(tuple(ids), tuple(pairs), path, True, tuple(notes))
        except (OSError, ValueError, UnicodeDecodeError) as exc:
            notes.append(f"overlap cache {path} ignored ({exc}); recomputed")
    pairs = find_overlaps([load(k) for k in range(len(ids))], ids, settings)
    if path is not None:
        body = {
            "format": _FORMAT,
            "version": OVERLAP_VERSION,
            "key": key,
            "settings": attrs.asdict(settings),
            "images": dict(zip(ids, digests, strict=True)),
            "pairs": [attrs.asdict(p) for p in pairs],
        }
        body["checksum"] = hashlib.sha256(_canonical(body)).hexdigest()
        try:
            _write_cache(path, body)
        except OSError as exc:
            notes.append(f"overlap cache not written to {path} ({exc})")
    return OverlapReport(tuple(ids), tuple(pairs), path, False, tuple(notes))


def merge_groups(
    groups: Sequence[str], image_of_item: Sequence[str], report: OverlapReport
) -> list[str]:
    """Split groups with the groups of overlapping images merged.

    Parameters
    ----------
    groups : sequence of str
        Current group of every item.
    image_of_item : sequence of str
        Image id of every item (an id of ``report.ids``).
    report : OverlapReport

    Returns
    -------
    list of str
        New group of every item: all groups joined by an overlapping pair
        form one component, named by its first (sorted) group.

    Raises
    ------
    DatasetError
        Lengths differ or an image id is unknown to the report.
    """
    if len(groups) != len(image_of_item):
        raise DatasetError("merge_groups: one image id per item expected")
    known = set(report.ids)
    group_of_image: dict[str, str] = {}
    for group, image in zip(groups, image_of_item, strict=True):
        if image not in known:
            raise DatasetError(f"merge_groups: image {image!r} was not compared")
        group_of_image.setdefault(image, group)
    edges = [
        (group_of_image[p.a], group_of_image[p.b])
        for p in report.pairs
        if p.a in group_of_image and p.b in group_of_image
    ]
    labels = sorted(set(groups))
    renamed = {g: g for g in labels}
    for component in components(labels, edges):
        for member in component:
            renamed[member] = component[0]
    return [renamed[g] for g in groups]


def file_digest(path: str | Path) -> str:
    """SHA-256 of a file's bytes (hex)."""
    sha = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            sha.update(block)
    return sha.hexdigest()


def parse_cache_option(value: object, where: str) -> Path | bool | None:
    """Read the ``overlap_cache`` option: a folder, ``False``/``"none"`` (off) or None (default)."""
    if value is None or value is True:
        return None
    if value is False or (isinstance(value, str) and value.lower() in ("none", "off", "false")):
        return False
    if isinstance(value, (str, Path)):
        return Path(value).expanduser()
    raise DatasetError(f"{where}: expected a folder, false or none, got {value!r}")


def describe_components(report: OverlapReport, limit: int = 10) -> str:
    """``"a+b; c+d+e"`` for the first ``limit`` components, then how many more."""
    parts = ["+".join(c) for c in report.components]
    text = "; ".join(parts[:limit])
    if len(parts) > limit:
        text += f"; ... and {len(parts) - limit} more"
    return text


def summarise(report: OverlapReport) -> Mapping[str, Any]:
    """``{"pairs", "components", "merged_images"}`` for reports."""
    return {
        "pairs": len(report.pairs),
        "components": [list(c) for c in report.components],
        "merged_images": report.merged_images,
    }
