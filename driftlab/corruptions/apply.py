"""Apply registered corruptions to views and batches of views."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from driftlab.corruptions.base import DEFAULT_FAMILY, CorruptionError, CorruptionSpec
from driftlab.registry import Registry, get_registry

__all__ = [
    "apply_corruption",
    "apply_corruption_batch",
    "corruption_parameters",
    "corruption_seeds",
    "get_corruption",
]

_RANGE_TOLERANCE = 1e-6


def get_corruption(
    name: str | CorruptionSpec,
    registry: Registry | None = None,
    *,
    family: str | None = None,
) -> CorruptionSpec:
    """Look a corruption up by name, in a severity-table family.

    Parameters
    ----------
    name : str or CorruptionSpec
        Registry key (e.g. ``"gaussian_noise"``) or a declaration.
    registry : Registry, optional
        Where to look; the process-wide :func:`~driftlab.registry.get_registry`
        by default (runners pass theirs).
    family : str, optional
        ``"imagenet-c"`` (default) or ``"cifar-c"`` (or a plugin's family):
        the returned declaration's ``function`` applies that family's
        severity table (:meth:`CorruptionSpec.for_family`).

    Returns
    -------
    CorruptionSpec

    Raises
    ------
    driftlab.registry.RegistryError
        Unknown name (with the closest installed one) or a name declared by
        several plugins.
    CorruptionError
        If ``name`` is neither a string nor a :class:`CorruptionSpec`, or the
        corruption has no table of ``family``.
    """
    if isinstance(name, CorruptionSpec):
        spec = name
    elif isinstance(name, str):
        spec = (registry or get_registry()).get("corruptions", name)
    else:
        raise CorruptionError(
            f"corruption must be a name or a CorruptionSpec, got {type(name).__name__}"
        )
    if family is not None and not isinstance(family, str):
        raise CorruptionError(f"family must be a name such as 'cifar-c', got {family!r}")
    return spec.for_family(family)


def corruption_parameters(
    name: str | CorruptionSpec,
    family: str = DEFAULT_FAMILY,
    registry: Registry | None = None,
) -> dict[int, dict[str, object]]:
    """A corruption's parameters at each severity, in one family.

    Parameters
    ----------
    name : str or CorruptionSpec
        Registered corruption.
    family : str
        Severity-table family (default ``"imagenet-c"``).
    registry : Registry, optional
        Where to look ``name`` up.

    Returns
    -------
    dict
        ``{severity: {parameter: value}}`` for the declared severities;
        empty for a corruption without tables (same in every family).

    Raises
    ------
    CorruptionError
        The corruption has tables but none of ``family``.
    driftlab.registry.RegistryError
        Unknown name.
    """
    spec = get_corruption(name, registry, family=family)
    table = spec.tables.get(family)
    if table is None:
        return {}
    return {severity: table.at(severity) for severity in spec.severities}


def _check_seed(seed: object, where: str = "seed") -> int:
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise CorruptionError(f"{where} must be a non-negative int, got {seed!r}")
    return int(seed)


def _check_severity(spec: CorruptionSpec, severity: object) -> int:
    valid = isinstance(severity, int | np.integer) and not isinstance(severity, bool)
    if not valid or severity not in spec.severities:
        raise CorruptionError(
            f"corruption {spec.name!r}: severity must be one of {list(spec.severities)}, "
            f"got {severity!r}"
        )
    return int(severity)


def _check_values(array: np.ndarray, where: str, clip: bool) -> np.ndarray:
    if not np.issubdtype(array.dtype, np.floating):
        raise CorruptionError(
            f"{where}: expected a floating-point view in [0, 1], got dtype {array.dtype} "
            "(convert 8-bit images with image / 255)"
        )
    bad = int((~np.isfinite(array)).sum())
    if bad:
        raise CorruptionError(f"{where}: contains {bad} NaN or Inf value(s)")
    low, high = float(array.min()), float(array.max())
    if not clip and (low < -_RANGE_TOLERANCE or high > 1.0 + _RANGE_TOLERANCE):
        raise CorruptionError(
            f"{where}: values must lie in [0, 1], got min {low:.6g}, max {high:.6g}; "
            "pass clip=True to clip them first"
        )
    return np.clip(array, 0.0, 1.0).astype(np.float32, copy=False)


def _check_view(view: object, where: str, clip: bool) -> np.ndarray:
    array = np.asarray(view)
    if array.ndim != 3 or array.shape[0] != 3 or array.shape[1] < 1 or array.shape[2] < 1:
        hint = (
            " (it looks channels-last: use view.transpose(2, 0, 1))"
            if array.ndim == 3 and array.shape[-1] == 3
            else ""
        )
        raise CorruptionError(f"{where}: expected a (3, H, W) view, got shape {array.shape}{hint}")
    return _check_values(array, where, clip)


def _run(spec: CorruptionSpec, view: np.ndarray, severity: int, seed: int) -> np.ndarray:
    result = np.asarray(spec.function(view.copy(), severity, seed))
    where = f"corruption {spec.name!r} (severity {severity})"
    if result.shape != view.shape:
        raise CorruptionError(
            f"{where} returned shape {result.shape} for a view of shape {view.shape}"
        )
    if not (np.issubdtype(result.dtype, np.floating) or np.issubdtype(result.dtype, np.integer)):
        raise CorruptionError(f"{where} returned dtype {result.dtype}; expected real numbers")
    result = result.astype(np.float64, copy=False)
    bad = int((~np.isfinite(result)).sum())
    if bad:
        raise CorruptionError(f"{where} returned {bad} NaN or Inf value(s)")
    low, high = float(result.min()), float(result.max())
    if low < -_RANGE_TOLERANCE or high > 1.0 + _RANGE_TOLERANCE:
        raise CorruptionError(
            f"{where} returned values outside [0, 1]: min {low:.6g}, max {high:.6g}"
        )
    return np.clip(result, 0.0, 1.0).astype(np.float32)


def apply_corruption(
    view: np.ndarray,
    name: str | CorruptionSpec,
    severity: int,
    seed: int,
    *,
    clip: bool = False,
    registry: Registry | None = None,
    family: str | None = None,
) -> np.ndarray:
    """Corrupt one view.

    Parameters
    ----------
    view : array_like
        ``(3, H, W)`` floating point in [0, 1] (channels first), H, W >= 1.
    name : str or CorruptionSpec
        Registered corruption, e.g. ``"gaussian_noise"`` or ``"identity"``.
    severity : int
        One of the corruption's severities (1..5 for the built-ins; ignored
        by ``identity`` but still checked).
    seed : int
        Non-negative. The result depends only on ``(view, name, severity,
        seed)``; numpy's global random state is left unchanged.
    clip : bool
        Clip out-of-range input to [0, 1] instead of raising.
    registry : Registry, optional
        Where to look ``name`` up (default: the process-wide registry).
    family : str, optional
        Severity-table family, ``"imagenet-c"`` (default) or ``"cifar-c"``.

    Returns
    -------
    numpy.ndarray
        ``(3, H, W)`` float32 in [0, 1]; a new array (``view`` is not modified).
        The ImageNet-C corruptions return multiples of 1/255 (see
        :mod:`driftlab.corruptions.imagenet_c` for the 8-bit conversion);
        the CIFAR-10-C ones stay in float (:mod:`driftlab.corruptions.kernels`).

    Raises
    ------
    CorruptionError
        Wrong view shape or dtype, NaN/Inf, values outside [0, 1] without
        ``clip``, an undeclared severity, a negative or non-int seed, a
        family the corruption has no table for, or a corruption function
        returning a wrong shape or out-of-range values.
    driftlab.registry.RegistryError
        Unknown corruption name.
    """
    spec = get_corruption(name, registry, family=family)
    level = _check_severity(spec, severity)
    seed = _check_seed(seed)
    checked = _check_view(view, "view", clip)
    return _run(spec, checked, level, seed)


def corruption_seeds(seed: int, count: int) -> list[int]:
    """Per-image seeds of a batch, derived from one seed.

    Parameters
    ----------
    seed : int
        Non-negative batch seed.
    count : int
        Number of images (>= 0).

    Returns
    -------
    list of int
        ``numpy.random.SeedSequence(seed).generate_state(count)`` as 32-bit
        ints; image ``i`` of :func:`apply_corruption_batch` with this
        ``seed`` equals :func:`apply_corruption` of it with seed ``[i]``.

    Raises
    ------
    CorruptionError
        Negative or non-int ``seed`` or ``count``.
    """
    seed = _check_seed(seed)
    if isinstance(count, bool) or not isinstance(count, int | np.integer) or count < 0:
        raise CorruptionError(f"count must be a non-negative int, got {count!r}")
    if count == 0:
        return []
    return [int(s) for s in np.random.SeedSequence(seed).generate_state(count, dtype=np.uint32)]


def apply_corruption_batch(
    views: np.ndarray,
    name: str | CorruptionSpec,
    severity: int,
    seed: int | Sequence[int],
    *,
    clip: bool = False,
    registry: Registry | None = None,
    family: str | None = None,
) -> np.ndarray:
    """Corrupt a batch of views, image by image.

    Parameters
    ----------
    views : numpy.ndarray
        ``(B, 3, H, W)`` floating point in [0, 1] (for a torch tensor, pass
        ``tensor.detach().cpu().numpy()``).
    name : str or CorruptionSpec
        Registered corruption.
    severity : int
        One of the corruption's severities.
    seed : int or sequence of int
        One non-negative seed per image, or one seed from which per-image
        seeds are derived with :func:`corruption_seeds`. Pass per-image seeds
        (e.g. from a stable sample id) to make each image's corruption
        independent of how the data were batched.
    clip : bool
        Clip out-of-range input to [0, 1] instead of raising.
    registry : Registry, optional
        Where to look ``name`` up.
    family : str, optional
        Severity-table family, ``"imagenet-c"`` (default) or ``"cifar-c"``.

    Returns
    -------
    numpy.ndarray
        ``(B, 3, H, W)`` float32 in [0, 1].

    Raises
    ------
    CorruptionError
        As :func:`apply_corruption`, and for a wrong batch shape or a number
        of seeds different from ``B``.
    """
    spec = get_corruption(name, registry, family=family)
    level = _check_severity(spec, severity)
    array = np.asarray(views)
    if array.ndim != 4 or array.shape[1] != 3 or 0 in array.shape[2:]:
        raise CorruptionError(
            f"views: expected a (B, 3, H, W) batch of views, got shape {array.shape}"
        )
    batch = _check_values(array, "views", clip)
    if isinstance(seed, int | np.integer) and not isinstance(seed, bool):
        seeds = corruption_seeds(seed, batch.shape[0])
    else:
        try:
            seeds = [_check_seed(s, f"seed[{i}]") for i, s in enumerate(seed)]  # type: ignore[union-attr]
        except TypeError:
            raise CorruptionError(
                f"seed must be an int or a sequence of ints, got {type(seed).__name__}"
            ) from None
        if len(seeds) != batch.shape[0]:
            raise CorruptionError(
                f"seed: got {len(seeds)} seeds for a batch of {batch.shape[0]} views"
            )
    out = np.empty(batch.shape, dtype=np.float32)
    for i, (view, image_seed) in enumerate(zip(batch, seeds, strict=True)):
        out[i] = _run(spec, view, level, image_seed)
    return out
