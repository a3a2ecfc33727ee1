"""Shared inputs of experiments that score models on rendered views (synthesis, audit).

:func:`view_stacks` renders every item of a dataset through every pipeline
once (the content-addressed view cache, fast batched path, on the run's
device) and stacks each pipeline's views into one checksummed array of the
run directory, which the cells then memory-map.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

from driftlab.cache import ViewCache
from driftlab.datasets.base import RawDataset
from driftlab.engine.cell import ArrayRef
from driftlab.engine.planning import render_view_keys
from driftlab.engine.progress import Progress
from driftlab.engine.rundir import RunDir
from driftlab.naming import file_name
from driftlab.pipeline import PipelineSpec
from driftlab.registry import Registry

__all__ = ["view_stacks"]


def view_stacks(
    run: RunDir,
    dataset: RawDataset,
    pipelines: Sequence[PipelineSpec],
    *,
    registry: Registry,
    workers: int,
    device: str,
    progress: Progress,
) -> dict[str, ArrayRef]:
    """Render and stack the views of ``dataset`` under every pipeline.

    Returns
    -------
    dict of str to ArrayRef
        Pipeline name -> ``(N, 3, H, W)`` float32 stack in item order.
    """
    cache = ViewCache(run.path / "views")
    view_keys, counts = render_view_keys(
        cache,
        dataset,
        list(pipelines),
        registry=registry,
        workers=int(workers),
        progress=lambda done, total: progress.step("views", done, total),
        device=device,
    )
    made = counts["rendered"] + counts["repaired"]
    rate = f", {made / counts['seconds']:.0f} views/s" if made and counts["seconds"] > 0 else ""
    progress.message(
        f"views: {counts['rendered']} rendered, {counts['reused']} reused, "
        f"{counts['repaired']} repaired ({counts['seconds']:.1f} s{rate})"
    )
    stacks: dict[str, ArrayRef] = {}
    for n, (name, keys) in enumerate(view_keys.items(), start=1):
        digest = hashlib.sha256("".join(keys).encode()).hexdigest()[:16]
        array_name = f"views-{file_name(name)}-{digest}"
        ref = run.reuse_array(array_name)
        if ref is not None:
            height, width = cache.load(keys[0]).shape[-2:]
            if ref.shape != (len(keys), 3, height, width) or ref.dtype != "float32":
                ref = None  # a checksummed file of the wrong size: written again
        if ref is None:
            stack = np.stack([cache.load(k) for k in keys]).astype(np.float32)
            ref = run.write_array(array_name, stack)
        stacks[name] = ref
        progress.step("view stacks", n, len(view_keys))
    return stacks
