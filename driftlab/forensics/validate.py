"""Read and validate forensic signatures: structure, types, sizes and internal consistency.

A ``signature.json`` may be truncated, edited or forged. :func:`load_signature`
checks the file size before reading, parses strictly (no NaN or infinity),
then :func:`validate_signature` checks every field against the layout of
``docs/signature.schema.json`` (types, ranges, string and list sizes, no
unknown keys) and the relations between fields (item split recomputed from
its seed, envelope ends around the defaults and inside the recorded domains,
the published box equal to the scaled envelope, the worst case inside the
box, the ranking recomputed from the envelope, floors equal to threshold x
the held-out clean metric's upper bound (search floor: threshold x the search
clean metric), the error split, the floor's level, the Bonferroni count and
per-test confidence recomputed from ``shrink_steps`` and ``confidence``, for
accuracy the held-out clean bounds recomputed from the correct count, the
held-out count a safe box needs recomputed from the bound). Every problem raises one error class,
:class:`SignatureError`, whose message names the file and the field
(``field 'envelope.gamma.gamma.elements[0].low'``).

Nothing here re-measures: :mod:`driftlab.forensics.verify` does that, after
this validation, on the recorded model and items.

Limits (a forged file must not make the reader allocate without bound):

=========================  ==========================================
what                       limit
=========================  ==========================================
file size                  :data:`MAX_FILE_BYTES` (32 MiB)
examined items             :data:`MAX_ITEMS` (100 000)
id / string length         :data:`MAX_ID_LENGTH` (1 024) / :data:`MAX_TEXT` (8 192)
parameters, elements each  :data:`MAX_PARAMETERS` (256), :data:`MAX_ELEMENTS` (4 096)
corners, box checks        :data:`MAX_CORNERS` (4 096), :data:`MAX_CHECKS` (64)
integers in options        ``|n| <=`` :data:`MAX_OPTION_INTEGER` (1 000 000)
nesting of option tables   :data:`MAX_DEPTH` (8)
=========================  ==========================================

Dataset and model options are passed to the dataset opener and the model
factory when a signature is verified; their integers (item counts, image
sizes, widths) are capped so that a forged ``n_items = 1e9`` is refused before
anything is allocated.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from driftlab.errors import DriftlabError

__all__ = [
    "DEFAULT_TOLERANCE",
    "MAX_CHECKS",
    "MAX_CORNERS",
    "MAX_DEPTH",
    "MAX_ELEMENTS",
    "MAX_FILE_BYTES",
    "MAX_ID_LENGTH",
    "MAX_ITEMS",
    "MAX_OPTION_INTEGER",
    "MAX_PARAMETERS",
    "MAX_SHRINK_STEPS",
    "MAX_TEXT",
    "SCHEMA_ID",
    "SignatureError",
    "load_signature",
    "validate_signature",
]

SCHEMA_ID = "driftlab-signature/4"
DEFAULT_TOLERANCE = 1e-6
"""Default absolute tolerance of ``signature verify`` on every re-measured metric,
view distance and bound: equal software on equal hardware reproduces each
value exactly, so only rounding is allowed. On other hardware (CUDA vs CPU,
another BLAS) a borderline item may flip; pass e.g. ``--tolerance 0.02``."""
MAX_FILE_BYTES = 32 * 1024 * 1024
MAX_ITEMS = 100_000
MAX_ID_LENGTH = 1024
MAX_TEXT = 8192
MAX_PARAMETERS = 256
MAX_ELEMENTS = 4096
MAX_CORNERS = 4096
MAX_CHECKS = 64
MAX_OPTION_INTEGER = 1_000_000
MAX_DEPTH = 8
MAX_SHRINK_STEPS = 30
_SLACK = 1e-9  # float slack of recomputed relations
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*$")


class SignatureError(DriftlabError, ValueError):
    """A signature is unreadable or malformed, or the model, data or metrics do
    not match it. The message names the file or the field."""

    exit_code = 1


class _Invalid(Exception):
    def __init__(self, path: str, message: str) -> None:
        super().__init__(path, message)
        self.path, self.message = path, message


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


Check = Callable[[Any, str], Any]


def _string(maxlen: int = MAX_TEXT, pattern: re.Pattern | None = None, empty: bool = True) -> Check:
    def check(value: Any, path: str) -> str:
        if not isinstance(value, str):
            raise _Invalid(path, f"expected a string, got {_short(value)}")
        if len(value) > maxlen:
            raise _Invalid(path, f"expected at most {maxlen} characters, got {len(value)}")
        if not empty and not value:
            raise _Invalid(path, "expected a non-empty string")
        if pattern is not None and not pattern.match(value):
            raise _Invalid(
                path, f"expected a string matching {pattern.pattern}, got {_short(value)}"
            )
        return value

    return check


def _number(
    low: float | None = None,
    high: float | None = None,
    *,
    integer: bool = False,
    low_open: bool = False,
) -> Check:
    def check(value: Any, path: str) -> float | int:
        kind = "an integer" if integer else "a number"
        ok = isinstance(value, int) if integer else isinstance(value, (int, float))
        if isinstance(value, bool) or not ok:
            raise _Invalid(path, f"expected {kind}, got {_short(value)}")
        if not math.isfinite(value):
            raise _Invalid(path, f"expected a finite number, got {_short(value)}")
        below = value <= low if low_open else value < low if low is not None else False
        if (low is not None and below) or (high is not None and value > high):
            lo = "-inf" if low is None else f"{low:g}"
            hi = "inf" if high is None else f"{high:g}"
            bracket = "(" if low_open else "["
            raise _Invalid(path, f"expected {kind} in {bracket}{lo}, {hi}], got {_short(value)}")
        return value

    return check


_METRIC = _number(0.0, 1.0)
_COUNT = _number(0, None, integer=True)


def _enum(*allowed: Any) -> Check:
    def check(value: Any, path: str) -> Any:
        if isinstance(value, bool) and not any(isinstance(a, bool) for a in allowed):
            raise _Invalid(path, f"expected one of {allowed}, got {_short(value)}")
        if value not in allowed:
            raise _Invalid(
                path, f"expected one of {', '.join(map(repr, allowed))}, got {_short(value)}"
            )
        return value

    return check


def _boolean(value: Any, path: str) -> bool:
    if not isinstance(value, bool):
        raise _Invalid(path, f"expected true or false, got {_short(value)}")
    return value


def _nullable(check: Check) -> Check:
    return lambda value, path: None if value is None else check(value, path)


def _array(item: Check, maxlen: int, minlen: int = 0) -> Check:
    def check(value: Any, path: str) -> list:
        if not isinstance(value, list):
            raise _Invalid(path, f"expected a list, got {_short(value)}")
        if not minlen <= len(value) <= maxlen:
            raise _Invalid(path, f"expected {minlen} to {maxlen} entries, got {len(value)}")
        return [item(v, f"{path}[{i}]") for i, v in enumerate(value)]

    return check


def _obj(required: Mapping[str, Check], optional: Mapping[str, Check] | None = None) -> Check:
    optional = optional or {}

    def check(value: Any, path: str) -> dict:
        if not isinstance(value, dict):
            raise _Invalid(path, f"expected a table (JSON object), got {_short(value)}")
        for key in value:
            if key not in required and key not in optional:
                raise _Invalid(
                    f"{path}.{key}" if path else key,
                    f"unknown field; expected {', '.join(sorted({*required, *optional}))}",
                )
        out = {}
        for key, sub in required.items():
            where = f"{path}.{key}" if path else key
            if key not in value:
                raise _Invalid(where, "missing required field")
            out[key] = sub(value[key], where)
        for key, sub in optional.items():
            if key in value:
                out[key] = sub(value[key], f"{path}.{key}" if path else key)
        return out

    return check


def _mapping(item: Check, maxlen: int, key: Check | None = None) -> Check:
    key = key or _string(256, empty=False)

    def check(value: Any, path: str) -> dict:
        if not isinstance(value, dict):
            raise _Invalid(path, f"expected a table (JSON object), got {_short(value)}")
        if len(value) > maxlen:
            raise _Invalid(path, f"expected at most {maxlen} entries, got {len(value)}")
        return {key(k, f"{path} key"): item(v, f"{path}.{k}") for k, v in value.items()}

    return check


def _tensor(value: Any, path: str) -> list | float:
    """A number or a nested list of numbers of at most 4 levels and MAX_ELEMENTS numbers."""
    count = 0

    def walk(v: Any, where: str, depth: int) -> None:
        nonlocal count
        if isinstance(v, list):
            if depth >= 4:
                raise _Invalid(where, "expected at most 4 nested levels")
            for i, x in enumerate(v):
                walk(x, f"{where}[{i}]", depth + 1)
            return
        _number()(v, where)
        count += 1
        if count > MAX_ELEMENTS:
            raise _Invalid(path, f"expected at most {MAX_ELEMENTS} numbers")

    walk(value, path, 0)
    try:
        array = np.asarray(value, dtype=np.float64)
    except ValueError:
        raise _Invalid(path, "expected a rectangular array of numbers") from None
    if array.dtype != np.float64:
        raise _Invalid(path, "expected a rectangular array of numbers")
    return value


def _free(value: Any, path: str, depth: int = 0) -> Any:
    """Options of a dataset or model: JSON values with capped integers, strings and nesting."""
    if depth > MAX_DEPTH:
        raise _Invalid(path, f"expected at most {MAX_DEPTH} nested levels")
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        if abs(value) > MAX_OPTION_INTEGER:
            raise _Invalid(
                path,
                f"integer {value} exceeds the limit {MAX_OPTION_INTEGER} for options in a "
                "signature (sizes are capped before anything is allocated)",
            )
        return value
    if isinstance(value, float):
        return _number(-float(MAX_OPTION_INTEGER), float(MAX_OPTION_INTEGER))(value, path)
    if isinstance(value, str):
        return _string()(value, path)
    if isinstance(value, list):
        if len(value) > MAX_ELEMENTS:
            raise _Invalid(path, f"expected at most {MAX_ELEMENTS} entries, got {len(value)}")
        return [_free(v, f"{path}[{i}]", depth + 1) for i, v in enumerate(value)]
    if isinstance(value, dict):
        if len(value) > 256:
            raise _Invalid(path, f"expected at most 256 entries, got {len(value)}")
        return {
            _string(256)(k, f"{path} key"): _free(v, f"{path}.{k}", depth + 1)
            for k, v in value.items()
        }
    raise _Invalid(path, f"expected a JSON value, got {_short(value)}")


_IDS = _array(_string(MAX_ID_LENGTH, empty=False), MAX_ITEMS)
_SHA = _string(64, _SHA256)
_TEXT = _string()

_MODEL = _obj(
    {
        "name": _nullable(_string(256, empty=False)),
        "options": _free,
        "weights": _TEXT,
        "sha256": _SHA,
    },
    {
        "key": _string(256, empty=False),
        "run": _TEXT,
        "train_pipeline": _string(1024),
        "fold": _number(0, MAX_OPTION_INTEGER, integer=True),
    },
)
_DATA = _obj(
    {
        "name": _string(256, empty=False),
        "intensity": _number(0.0, 1.0, low_open=True),
        "options": _free,
        "split": _obj(
            {
                "part": _enum("test", "train", "all"),
                "folds": _number(2, MAX_OPTION_INTEGER, integer=True),
                "fold": _number(0, MAX_OPTION_INTEGER, integer=True),
                "seed": _number(0, 2**63 - 1, integer=True),
            }
        ),
        "items": _number(2, MAX_ITEMS, integer=True),
        "ids": _array(_string(MAX_ID_LENGTH, empty=False), MAX_ITEMS, 2),
        "ids_sha256": _SHA,
        "sha256": _SHA,
    },
    {"data_root": _nullable(_TEXT), "max_items": _number(1, MAX_ITEMS, integer=True)},
)
_PARAMETER = _obj(
    {
        "key": _string(256, _KEY),
        "unit": _string(256),
        "domain": _string(1024),
        "low": _number(),
        "high": _number(),
        "shape": _array(_number(1, MAX_ELEMENTS, integer=True), 4),
        "default": _tensor,
    }
)
_STEEPEST = _obj({"value": _number(), "metric": _METRIC, "view_rms": _number(0.0)})
_ELEMENT = _obj(
    {
        "index": _array(_number(0, MAX_ELEMENTS, integer=True), 4),
        "default": _number(),
        "low": _number(),
        "high": _number(),
        "relative_width": _number(0.0, 1.0),
        "metric_low": _METRIC,
        "metric_high": _METRIC,
        "steepest": _nullable(_STEEPEST),
        "sensitivity": _number(0.0),
        "slope": _number(0.0),
    }
)
_ENVELOPE_ENTRY = _obj(
    {
        "unit": _string(256),
        "domain": _string(1024),
        "shape": _array(_number(1, MAX_ELEMENTS, integer=True), 4),
        "elements": _array(_ELEMENT, MAX_ELEMENTS, 1),
    }
)
_STAGE = _obj(
    {
        "stage": _string(256, empty=False),
        "sensitivity": _number(0.0),
        "steepest": _nullable(_string(300)),
        "tightest": _string(300),
        "relative_width": _number(0.0, 1.0),
    }
)
_CORNER = _obj(
    {"pattern": _string(MAX_PARAMETERS * MAX_ELEMENTS), "metric": _METRIC, "lower_bound": _METRIC}
)
_CHECK = _obj(
    {
        "scale": _number(0.0, 1.0),
        "worst_source": _enum("default", "corner", "search"),
        "worst_metric": _METRIC,
        "worst_lower_bound": _METRIC,
        "passed": _boolean,
    }
)
_VALUES = _mapping(_tensor, MAX_PARAMETERS, _string(256, _KEY))
_SIGNATURE = _obj(
    {
        "schema": _enum(SCHEMA_ID),
        "driftlab": _string(256),
        "created": _string(64),
        "task": _enum("classification", "segmentation"),
        "metric": _enum("accuracy", "iou"),
        "model": _MODEL,
        "data": _DATA,
        "pipeline": _obj(
            {
                "name": _string(1024, empty=False),
                "spec": _free,
                "parameters": _array(_PARAMETER, MAX_PARAMETERS, 1),
            }
        ),
        "cross_fit": _obj(
            {
                "seed": _number(0, 2**63 - 1, integer=True),
                "method": _TEXT,
                "search_ids": _IDS,
                "holdout_ids": _IDS,
            }
        ),
        "statistics": _obj(
            {
                "confidence": _number(0.0, 1.0, low_open=True),
                "error_split": _obj(
                    {
                        "floor": _number(0.0, 1.0, low_open=True),
                        "boxes": _number(0.0, 1.0, low_open=True),
                    }
                ),
                "floor_confidence": _number(0.0, 1.0, low_open=True),
                "correction": _enum("bonferroni"),
                "tests": _number(1, 2**MAX_SHRINK_STEPS, integer=True),
                "per_test_confidence": _number(0.0, 1.0, low_open=True),
                "method": _enum("clopper-pearson", "percentile-bootstrap"),
                "floor_method": _enum("clopper-pearson-upper", "percentile-bootstrap-upper"),
                "description": _TEXT,
                "resamples": _nullable(_number(1, MAX_OPTION_INTEGER, integer=True)),
                "seed": _nullable(_number(0, 2**63 - 1, integer=True)),
                "extreme_resample": _nullable(_boolean),
            }
        ),
        "acceptance": _obj(
            {
                "threshold": _number(0.0, 1.0, low_open=True),
                "clean": _METRIC,
                "clean_search": _METRIC,
                "clean_holdout": _METRIC,
                "clean_holdout_lower_bound": _METRIC,
                "clean_holdout_upper_bound": _METRIC,
                "floor": _METRIC,
                "floor_search": _METRIC,
                "min_holdout_items": _nullable(_number(1, MAX_ITEMS, integer=True)),
            }
        ),
        "sweep": _obj(
            {
                "points": _number(1, 10_000, integer=True),
                "refine": _number(0, 64, integer=True),
                "items": _enum("search"),
                "method": _TEXT,
            }
        ),
        "envelope": _mapping(_ENVELOPE_ENTRY, MAX_PARAMETERS, _string(256, _KEY)),
        "tightest": _obj(
            {
                "parameter": _string(300),
                "default": _number(),
                "low": _number(),
                "high": _number(),
                "unit": _string(256),
                "relative_width": _number(0.0, 1.0),
            }
        ),
        "stages": _array(_STAGE, MAX_PARAMETERS, 1),
        "sensitivity": _obj(
            {"unit": _TEXT, "method": _TEXT, "most_sensitive": _nullable(_string(256))}
        ),
        "box": _obj(
            {
                "status": _enum("safe", "per-axis tolerance"),
                "scale": _number(0.0, 1.0),
                "reason": _TEXT,
                "shrink_steps": _number(0, MAX_SHRINK_STEPS, integer=True),
                "corner_limit": _number(2, MAX_CORNERS, integer=True),
                "low": _VALUES,
                "high": _VALUES,
                "corners": _array(_CORNER, MAX_CORNERS, 1),
                "checks": _array(_CHECK, MAX_CHECKS, 1),
            }
        ),
        "worst_case": _obj(
            {
                "attack": _string(256, empty=False),
                "steps": _number(1, 100_000, integer=True),
                "source": _enum("default", "corner", "search"),
                "corner": _nullable(_string(MAX_PARAMETERS * MAX_ELEMENTS)),
                "metric": _METRIC,
                "lower_bound": _METRIC,
                "accepted": _boolean,
                "l2": _number(0.0),
                "ssim": _number(-1.0, 1.0),
                "values": _VALUES,
                "search_point": _obj(
                    {
                        "metric": _METRIC,
                        "lower_bound": _METRIC,
                        "metric_search": _METRIC,
                        "values": _VALUES,
                    }
                ),
            }
        ),
        "verification": _obj({"tolerance": _number(0.0)}),
    }
)


def _close(a: float, b: float, scale: float = 1.0) -> bool:
    return abs(a - b) <= _SLACK * max(1.0, abs(scale), abs(a), abs(b))


def _consistency(sig: dict[str, Any]) -> None:
    from driftlab.forensics.confidence import (
        BoundSettings,
        clopper_pearson_lower,
        clopper_pearson_upper,
        min_holdout_items,
    )
    from driftlab.forensics.crossfit import PER_AXIS, SAFE, box_tests, split_items
    from driftlab.forensics.envelope import (
        corner_patterns,
        element_label,
        element_sensitivity,
        most_sensitive,
        rank_stages,
    )

    expected_metric = {"classification": "accuracy", "segmentation": "iou"}[sig["task"]]
    if sig["metric"] != expected_metric:
        raise _Invalid("metric", f"expected {expected_metric!r} for a {sig['task']} task")
    stats = sig["statistics"]
    method = "clopper-pearson" if sig["task"] == "classification" else "percentile-bootstrap"
    if stats["method"] != method:
        raise _Invalid("statistics.method", f"expected {method!r} for {sig['metric']}")
    if method == "percentile-bootstrap" and (stats["resamples"] is None or stats["seed"] is None):
        raise _Invalid("statistics", "a bootstrap needs 'resamples' and 'seed'")
    tests = box_tests(sig["box"]["shrink_steps"])
    if stats["tests"] != tests:
        raise _Invalid(
            "statistics.tests",
            f"expected 2 ** box.shrink_steps = {tests} (every box the bisection can test)",
        )
    if not stats["confidence"] < 1:
        raise _Invalid("statistics.confidence", "expected a level below 1")
    try:
        bounds = BoundSettings(
            confidence=stats["confidence"],
            resamples=stats["resamples"] or 1,
            seed=stats["seed"] or 0,
            tests=tests,
        )
    except ValueError as exc:
        raise _Invalid("statistics", str(exc)) from None
    for field, want, what in (
        ("error_split.floor", bounds.floor_error, "(1 - confidence) / 2"),
        ("error_split.boxes", bounds.box_error, "(1 - confidence) / 2"),
        ("floor_confidence", bounds.floor_level, "1 - (1 - confidence) / 2"),
        ("per_test_confidence", bounds.level, "1 - (1 - confidence) / (2 tests) (Bonferroni)"),
    ):
        head, _, tail = field.partition(".")
        got = stats[head][tail] if tail else stats[head]
        if not _close(got, want):
            raise _Invalid(f"statistics.{field}", f"expected {what} = {want!r}, got {got!r}")
    floor_method = f"{method}-upper"
    if stats["floor_method"] != floor_method:
        raise _Invalid("statistics.floor_method", f"expected {floor_method!r} for {sig['metric']}")
    extreme = None if method == "clopper-pearson" else bounds.extreme_resample
    if stats["extreme_resample"] is not extreme:
        raise _Invalid(
            "statistics.extreme_resample",
            f"expected {extreme!r} (resamples x (1 - per_test_confidence) < 10 for a bootstrap, "
            "null for Clopper-Pearson)",
        )

    data = sig["data"]
    ids = data["ids"]
    if data["items"] != len(ids):
        raise _Invalid("data.items", f"expected {len(ids)} (the number of ids)")
    if len(set(ids)) != len(ids):
        raise _Invalid("data.ids", "expected distinct ids")
    cross = sig["cross_fit"]
    search_idx, holdout_idx = split_items(len(ids), cross["seed"])
    for field, index in (("search_ids", search_idx), ("holdout_ids", holdout_idx)):
        if cross[field] != [ids[i] for i in index]:
            raise _Invalid(
                f"cross_fit.{field}",
                f"does not match the split of data.ids by seed {cross['seed']} "
                "(search and held-out items must be the recorded seeded split)",
            )

    acc = sig["acceptance"]
    for field, clean in (
        ("floor", "clean_holdout_upper_bound"),
        ("floor_search", "clean_search"),
    ):
        if not _close(acc[field], acc["threshold"] * acc[clean]):
            raise _Invalid(f"acceptance.{field}", f"expected threshold x {clean}")
    if sig["task"] == "classification":  # the bounds of k correct of n, recomputed exactly
        n = len(holdout_idx)
        k = round(acc["clean_holdout"] * n)
        if not _close(acc["clean_holdout"], k / n):
            raise _Invalid(
                "acceptance.clean_holdout", f"expected a count of correct items / {n} held out"
            )
        for field, want in (
            ("clean_holdout_upper_bound", clopper_pearson_upper(k, n, bounds.floor_level)),
            ("clean_holdout_lower_bound", clopper_pearson_lower(k, n, bounds.level)),
        ):
            if not _close(acc[field], want):
                raise _Invalid(
                    f"acceptance.{field}",
                    f"expected the Clopper-Pearson bound of {k} of {n} held-out items at "
                    f"statistics' levels, {want!r}",
                )
    needed = min_holdout_items(sig["task"], acc["threshold"], bounds)
    if acc["min_holdout_items"] != needed:
        raise _Invalid(
            "acceptance.min_holdout_items",
            f"expected {needed!r} (least held-out count whose bound can reach the threshold)",
        )
    if sig["box"]["status"] == "safe" and (needed is None or len(holdout_idx) < needed):
        raise _Invalid(
            "box.status",
            f"'safe' needs >= {needed} held-out items, the split has {len(holdout_idx)}",
        )

    params = {}
    for i, p in enumerate(sig["pipeline"]["parameters"]):
        where = f"pipeline.parameters[{i}]"
        if p["key"] in params:
            raise _Invalid(f"{where}.key", f"{p['key']!r} appears twice")
        if not p["low"] <= p["high"]:
            raise _Invalid(f"{where}.high", "expected low <= high")
        default = np.asarray(p["default"], dtype=np.float64)
        if list(default.shape) != p["shape"]:
            raise _Invalid(
                f"{where}.default", f"expected shape {p['shape']}, got {list(default.shape)}"
            )
        slack = 1e-6 * max(1.0, p["high"] - p["low"])
        if np.any(default < p["low"] - slack) or np.any(default > p["high"] + slack):
            raise _Invalid(f"{where}.default", "outside the recorded domain [low, high]")
        params[p["key"]] = (p, default)
    if sum(d.size for _, d in params.values()) > MAX_PARAMETERS * 64:
        raise _Invalid("pipeline.parameters", "too many elements in total")

    envelope = sig["envelope"]
    if set(envelope) != set(params):
        raise _Invalid("envelope", "expected one entry per pipeline parameter")
    for key, entry in envelope.items():
        p, default = params[key]
        where = f"envelope.{key}"
        if entry["shape"] != p["shape"]:
            raise _Invalid(f"{where}.shape", f"expected {p['shape']}")
        for field in ("unit", "domain"):
            if entry[field] != p[field]:
                raise _Invalid(f"{where}.{field}", f"expected the parameter's {p[field]!r}")
        positions = [tuple(e["index"]) for e in entry["elements"]]
        if sorted(positions) != sorted(np.ndindex(tuple(p["shape"]))):
            raise _Invalid(f"{where}.elements", "expected exactly one element per position")
        width = p["high"] - p["low"]
        slack = 1e-6 * max(1.0, width)
        for j, e in enumerate(entry["elements"]):
            at = f"{where}.elements[{j}]"
            d = float(default[tuple(e["index"])])
            if not _close(e["default"], d):
                raise _Invalid(f"{at}.default", f"expected the pipeline default {d!r}")
            if not p["low"] - slack <= e["low"] <= e["default"] <= e["high"] <= p["high"] + slack:
                raise _Invalid(
                    f"{at}.low",
                    f"expected domain low <= low <= default <= high <= domain high "
                    f"([{p['low']:g}, {p['high']:g}])",
                )
            relative = (e["high"] - e["low"]) / width if width > 0 else 1.0
            if not _close(e["relative_width"], relative):
                raise _Invalid(
                    f"{at}.relative_width", f"expected (high - low) / domain width = {relative!r}"
                )
            for side in ("metric_low", "metric_high"):
                if e[side] < acc["floor_search"] - _SLACK:
                    raise _Invalid(f"{at}.{side}", "below the search floor: not an envelope end")
            steep = e["steepest"]
            if steep is None:
                if e["sensitivity"] != 0 or e["slope"] != 0:
                    raise _Invalid(f"{at}.sensitivity", "expected 0 without a steepest point")
                continue
            if not p["low"] - slack <= steep["value"] <= p["high"] + slack:
                raise _Invalid(f"{at}.steepest.value", "outside the recorded domain")
            sens, slope = element_sensitivity(
                acc["clean_search"], steep["metric"], steep["view_rms"], abs(steep["value"] - d)
            )
            if not (_close(e["sensitivity"], sens) and _close(e["slope"], slope)) or sens == 0:
                raise _Invalid(
                    f"{at}.sensitivity",
                    "expected (clean_search - steepest.metric) / steepest.view_rms (> 0)",
                )

    ranked = {r["stage"]: r for r in rank_stages(envelope)}
    stages = sig["stages"]
    if sorted(r["stage"] for r in stages) != sorted(ranked):
        raise _Invalid("stages", f"expected one entry per stage: {', '.join(sorted(ranked))}")
    for i, r in enumerate(stages):
        want = ranked[r["stage"]]
        for field in ("sensitivity", "relative_width"):
            if not _close(r[field], want[field]):
                raise _Invalid(
                    f"stages[{i}].{field}", f"expected {want[field]!r} (from the envelope)"
                )
        if (r["steepest"] is None) != (want["steepest"] is None):
            raise _Invalid(f"stages[{i}].steepest", f"expected {want['steepest']!r}")
        if i and r["sensitivity"] > stages[i - 1]["sensitivity"]:
            raise _Invalid("stages", "expected the most sensitive stage first")
    if sig["sensitivity"]["most_sensitive"] != most_sensitive(stages):
        raise _Invalid(
            "sensitivity.most_sensitive",
            f"expected {most_sensitive(stages)!r} (none when every sensitivity is 0)",
        )
    labelled = {
        element_label(key, e["index"]): (key, e)
        for key, entry in envelope.items()
        for e in entry["elements"]
    }
    for i, r in enumerate(stages):
        own = {k: e for k, (key, e) in labelled.items() if key.split(".", 1)[0] == r["stage"]}
        narrowest = min(e["relative_width"] for e in own.values())
        if r["tightest"] not in own or own[r["tightest"]]["relative_width"] != narrowest:
            raise _Invalid(f"stages[{i}].tightest", "expected the stage's narrowest element")
        if r["steepest"] is not None and (
            r["steepest"] not in own or own[r["steepest"]]["sensitivity"] != r["sensitivity"]
        ):
            raise _Invalid(f"stages[{i}].steepest", "expected the stage's most sensitive element")
    tight = sig["tightest"]
    narrowest = min(e["relative_width"] for _, e in labelled.values())
    if tight["parameter"] not in labelled:
        raise _Invalid("tightest.parameter", "expected an element of the envelope")
    key, e = labelled[tight["parameter"]]
    if e["relative_width"] != narrowest:
        raise _Invalid(
            "tightest.parameter", f"expected an element of narrowest width {narrowest!r}"
        )
    for field in ("default", "low", "high", "relative_width"):
        if tight[field] != e[field]:
            raise _Invalid(f"tightest.{field}", f"expected {e[field]!r} (its envelope element)")
    if tight["unit"] != envelope[key]["unit"]:
        raise _Invalid("tightest.unit", f"expected {envelope[key]['unit']!r}")

    box = sig["box"]
    total = sum(d.size for _, d in params.values())
    for side in ("low", "high"):
        if set(box[side]) != set(params):
            raise _Invalid(f"box.{side}", "expected one entry per pipeline parameter")
    for key, entry in envelope.items():
        p, default = params[key]
        low = np.asarray(box["low"][key], dtype=np.float64)
        high = np.asarray(box["high"][key], dtype=np.float64)
        for side, array in (("low", low), ("high", high)):
            if list(array.shape) != p["shape"]:
                raise _Invalid(f"box.{side}.{key}", f"expected shape {p['shape']}")
        for e in entry["elements"]:
            i, d = tuple(e["index"]), e["default"]
            for side, array in (("low", low), ("high", high)):
                want = d + box["scale"] * (e[side] - d)
                if not _close(float(array[i]), want, p["high"] - p["low"]):
                    raise _Invalid(
                        f"box.{side}.{key}",
                        f"expected default + scale x (envelope {side} - default) = {want!r} at "
                        f"{list(i)}",
                    )
    if box["status"] == PER_AXIS and box["scale"] != 1.0:
        raise _Invalid("box.scale", "a per-axis tolerance is the whole envelope (scale 1)")
    if box["status"] == SAFE and box["scale"] <= 0:
        raise _Invalid("box.scale", "a safe box needs a scale above 0")
    patterns = [c["pattern"] for c in box["corners"]]
    for j, pattern in enumerate(patterns):
        if len(pattern) != total or set(pattern) - {"l", "h"}:
            raise _Invalid(f"box.corners[{j}].pattern", f"expected {total} letters l/h")
    if patterns != corner_patterns(total, box["corner_limit"], cross["seed"]):
        raise _Invalid(
            "box.corners",
            f"expected the corners drawn for {total} elements, limit {box['corner_limit']} and "
            f"seed {cross['seed']} (corners cannot be chosen by hand)",
        )
    checks = box["checks"]
    if len(checks) > 1 + box["shrink_steps"]:
        raise _Invalid(
            "box.checks", f"expected at most 1 + shrink_steps = {1 + box['shrink_steps']}"
        )
    low, high = 0.0, 1.0
    for j, c in enumerate(checks):  # 1, then the bisection the pass/fail results imply
        expected = 1.0 if j == 0 else (low + high) / 2
        if c["scale"] != expected:
            raise _Invalid(f"box.checks[{j}].scale", f"expected {expected!r} (bisection)")
        if j:
            low, high = (c["scale"], high) if c["passed"] else (low, c["scale"])
    passed = [c["scale"] for c in checks if c["passed"]]
    if box["status"] == SAFE and (not passed or box["scale"] != max(passed)):
        raise _Invalid("box.scale", "'safe' publishes the largest scale whose check passed")
    if box["status"] == PER_AXIS and passed:
        raise _Invalid("box.status", "a box passed its check, so the status must be 'safe'")
    for j, c in enumerate(checks):
        if c["passed"] != (c["worst_lower_bound"] >= acc["floor"]):
            raise _Invalid(f"box.checks[{j}].passed", "expected worst_lower_bound >= floor")

    worst = sig["worst_case"]
    for field in ("values",):
        if set(worst[field]) != set(params):
            raise _Invalid(f"worst_case.{field}", "expected one entry per pipeline parameter")
    if set(worst["search_point"]["values"]) != set(params):
        raise _Invalid(
            "worst_case.search_point.values", "expected one entry per pipeline parameter"
        )
    for where, values in (
        ("worst_case.values", worst["values"]),
        ("worst_case.search_point.values", worst["search_point"]["values"]),
    ):
        for key, value in values.items():
            p, _ = params[key]
            array = np.asarray(value, dtype=np.float64)
            if list(array.shape) != p["shape"]:
                raise _Invalid(f"{where}.{key}", f"expected shape {p['shape']}")
            low = np.asarray(box["low"][key], dtype=np.float64)
            high = np.asarray(box["high"][key], dtype=np.float64)
            slack = 1e-6 * max(1.0, p["high"] - p["low"])
            if np.any(array < low - slack) or np.any(array > high + slack):
                raise _Invalid(f"{where}.{key}", "outside the published box")
    if worst["accepted"] != (box["status"] == SAFE):
        raise _Invalid("worst_case.accepted", "expected true exactly when the box is 'safe'")
    if (worst["source"] == "corner") != (worst["corner"] is not None):
        raise _Invalid(
            "worst_case.corner", "expected a pattern exactly when the source is a corner"
        )
    candidates = [(c["lower_bound"], c["metric"]) for c in box["corners"]]
    candidates.append((worst["search_point"]["lower_bound"], worst["search_point"]["metric"]))
    candidates.append((acc["clean_holdout_lower_bound"], acc["clean_holdout"]))
    if (worst["lower_bound"], worst["metric"]) != min(candidates):
        raise _Invalid(
            "worst_case.lower_bound", "expected the lowest bound among corners and the search point"
        )
    if worst["source"] == "corner":
        match = [c for c in box["corners"] if c["pattern"] == worst["corner"]]
        if not match or (match[0]["lower_bound"], match[0]["metric"]) != (
            worst["lower_bound"],
            worst["metric"],
        ):
            raise _Invalid("worst_case.corner", "expected one of box.corners with the same numbers")
    if worst["source"] == "search" and worst["values"] != worst["search_point"]["values"]:
        raise _Invalid("worst_case.values", "expected the search point's values")
    if worst["source"] == "default":
        for key, value in worst["values"].items():
            if not np.allclose(np.asarray(value, dtype=np.float64), params[key][1], atol=1e-9):
                raise _Invalid(f"worst_case.values.{key}", "expected the default value")
    published = [c for c in checks if c["scale"] == box["scale"]][-1:]
    if not published or (
        published[0]["worst_metric"],
        published[0]["worst_lower_bound"],
        published[0]["worst_source"],
    ) != (worst["metric"], worst["lower_bound"], worst["source"]):
        raise _Invalid("box.checks", "expected the published scale's check to match worst_case")
    if box["status"] == SAFE and worst["lower_bound"] < acc["floor"] - _SLACK:
        raise _Invalid("worst_case.lower_bound", "'safe' needs a lower bound >= acceptance.floor")


def validate_signature(sig: Any, where: str = "signature") -> dict[str, Any]:
    """Check a parsed signature completely (see module docstring).

    Parameters
    ----------
    sig : object
        The parsed JSON.
    where : str
        Name used in messages (the file path).

    Returns
    -------
    dict
        ``sig`` itself.

    Raises
    ------
    SignatureError
        ``"<where>: field '<path>': <what was expected>, got <value>"``.
    """
    if (
        isinstance(sig, dict)
        and sig.get("schema") not in (SCHEMA_ID, None)
        and isinstance(sig.get("schema"), str)
    ):
        raise SignatureError(
            f"{where}: field 'schema': {sig['schema']!r} is not {SCHEMA_ID!r}; signatures "
            "of older layouts (without held-out evidence, with bounds not corrected for "
            "the boxes tested, or with a floor from the clean point estimate instead of its "
            "upper confidence bound) are no longer accepted, run 'driftlab forensics' again"
        )
    try:
        _SIGNATURE(sig, "")
        _consistency(sig)
    except _Invalid as exc:
        raise SignatureError(f"{where}: field '{exc.path}': {exc.message}") from None
    return sig


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


def load_signature(path: str | Path) -> dict[str, Any]:
    """Read and fully validate a ``signature.json``.

    The size is checked before reading (:data:`MAX_FILE_BYTES`); the text must
    be UTF-8 JSON without NaN or infinity; then :func:`validate_signature`.

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    dict
        The validated signature.

    Raises
    ------
    SignatureError
        Missing or oversized file, invalid JSON, or any invalid field (named).
    """
    path = Path(path)
    if not path.is_file():
        raise SignatureError(f"{path}: no such signature file")
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise SignatureError(
            f"{path}: {size} bytes, more than the {MAX_FILE_BYTES} a signature may have"
        )
    try:
        text = path.read_bytes().decode("utf-8")
        sig = json.loads(text, parse_constant=_reject_constant)
    except UnicodeDecodeError as exc:
        raise SignatureError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except (json.JSONDecodeError, ValueError) as exc:
        raise SignatureError(f"{path}: not valid JSON ({exc})") from None
    except RecursionError:
        raise SignatureError(f"{path}: not valid JSON (nested too deeply)") from None
    if not isinstance(sig, dict) or "schema" not in sig:
        raise SignatureError(f"{path}: not a driftlab signature (expected schema {SCHEMA_ID!r})")
    return validate_signature(sig, str(path))
