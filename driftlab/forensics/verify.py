"""Re-check a forensic signature against a model file and the data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from driftlab.attacks.problem import AttackProblem
from driftlab.datasets.base import DatasetError
from driftlab.forensics.model import file_sha256, load_normalized
from driftlab.forensics.plan import data_fingerprint
from driftlab.forensics.signature import SCHEMA_ID
from driftlab.models.loading import get_task_model
from driftlab.pipeline import PipelineSpec, resolve
from driftlab.registry import Registry, get_registry
from driftlab.synthesis.plan import output_channels

__all__ = ["SignatureError", "VerifyResult", "verify_signature"]


class SignatureError(ValueError):
    """A signature is unreadable, or the model, data or metrics do not match it."""


@attrs.frozen
class VerifyResult:
    """Outcome of :func:`verify_signature` (only returned when everything matched).

    Attributes
    ----------
    clean, worst : float
        Recomputed metric at the default and at the recorded worst case.
    recorded_clean, recorded_worst : float
        The values stored in the signature.
    tolerance : float
    """

    clean: float
    worst: float
    recorded_clean: float
    recorded_worst: float
    tolerance: float


def _read(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise SignatureError(f"{path}: no such signature file")
    try:
        sig = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise SignatureError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(sig, dict) or sig.get("schema") != SCHEMA_ID:
        raise SignatureError(f"{path}: not a driftlab signature (expected schema {SCHEMA_ID!r})")
    return sig


def verify_signature(
    signature: str | Path,
    *,
    model: str | Path | None = None,
    data_root: str | Path | None = None,
    tolerance: float | None = None,
    registry: Registry | None = None,
) -> VerifyResult:
    """Check that a model and data still match a signature.

    Checks, in order: the SHA-256 of the weights file; the data fingerprint
    (item ids, raw bytes and targets of the recorded items, re-read from the
    dataset); the metric at the default pipeline and at the recorded worst
    case, each within ``tolerance`` of the recorded value.

    Parameters
    ----------
    signature : path
        ``signature.json``.
    model : path, optional
        Weights file (default: the one recorded in the signature).
    data_root : path, optional
        Dataset folder (default: the recorded one; embedded datasets need none).
    tolerance : float, optional
        Absolute metric tolerance (default: the recorded one).

    Returns
    -------
    VerifyResult

    Raises
    ------
    SignatureError
        Unreadable signature, missing or changed model file (the message gives
        both hashes), changed data, or a metric outside the tolerance.
    """
    registry = registry or get_registry()
    sig = _read(signature)
    tol = float(sig["verification"]["tolerance"] if tolerance is None else tolerance)
    weights = Path(model or sig["model"]["weights"])
    if not weights.is_file():
        raise SignatureError(f"model file {weights}: no such file")
    digest = file_sha256(weights)
    if digest != sig["model"]["sha256"]:
        raise SignatureError(
            f"model file {weights} changed: sha256 {digest[:16]}... but the signature "
            f"records {sig['model']['sha256'][:16]}...; this is not the signed model"
        )
    data = sig["data"]
    spec = registry.get("datasets", data["name"])
    root = data_root if data_root is not None else data.get("data_root")
    try:
        dataset = spec.open(root, intensity=data["intensity"], registry=registry, **data["options"])
    except (DatasetError, TypeError, ValueError, FileNotFoundError) as exc:
        raise SignatureError(f"data {data['name']!r}: cannot open ({exc})") from None
    where = {item: i for i, item in enumerate(dataset.ids)}
    missing = [i for i in data["ids"] if i not in where]
    if missing:
        raise SignatureError(
            f"data {data['name']!r}: {len(missing)} signed items are missing (e.g. {missing[0]!r})"
        )
    samples = [dataset[where[i]] for i in data["ids"]]
    raw = np.stack([s.raw for s in samples]).astype(np.float32)
    targets = np.stack([np.asarray(s.target) for s in samples])
    prints = data_fingerprint(list(data["ids"]), raw, targets)
    if prints["sha256"] != data["sha256"]:
        raise SignatureError(
            f"data {data['name']!r} changed: fingerprint {prints['sha256'][:16]}... but the "
            f"signature records {data['sha256'][:16]}..."
        )
    net = get_task_model(sig["model"]["name"], registry).build(
        output_channels(dataset.spec), **sig["model"]["options"]
    )
    net = load_normalized(net, weights)
    resolved = resolve(
        PipelineSpec.from_dict(sig["pipeline"]["spec"]), dataset.spec.camera, registry
    )
    problem = AttackProblem(net, resolved, raw, targets, sig["task"])
    clean = problem.metric()
    worst_values = {k: np.asarray(v) for k, v in sig["worst_case"]["values"].items()}
    worst = problem.metric(worst_values)
    recorded_clean, recorded_worst = sig["acceptance"]["clean"], sig["worst_case"]["metric"]
    for label, got, want in (
        ("default pipeline", clean, recorded_clean),
        ("recorded worst case", worst, recorded_worst),
    ):
        if abs(got - want) > tol:
            raise SignatureError(
                f"{sig['metric']} at the {label} is {got:.4f}, the signature records "
                f"{want:.4f} (tolerance {tol})"
            )
    return VerifyResult(clean, worst, recorded_clean, recorded_worst, tol)
