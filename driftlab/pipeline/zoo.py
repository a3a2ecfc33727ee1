"""The paper's twelve static data models and a grid builder for more.

The reference order of slots is ``black_level -> demosaic -> white_balance ->
color_correction -> sharpen -> denoise -> gamma`` (Oala et al., "Data Models
for Dataset Drift Controls in Machine Learning With Optical Images", TMLR
2023). The twelve data models vary demosaic x sharpen x denoise and are named
by initials, e.g. ``bi,s,me`` = bilinear, sharpening filter, median.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence

from driftlab.pipeline.spec import PipelineSpec, SpecError, StageConfig
from driftlab.registry import suggest

__all__ = [
    "PAPER_DATA_MODELS",
    "REFERENCE_SLOTS",
    "expand_pipeline_names",
    "get_pipeline",
    "grid",
    "reference_pipeline",
]

REFERENCE_SLOTS: tuple[str, ...] = (
    "black_level",
    "demosaic",
    "white_balance",
    "color_correction",
    "sharpen",
    "denoise",
    "gamma",
)

# initials used in the paper's data-model names
PAPER_INITIALS: dict[str, dict[str, str]] = {
    "demosaic": {"bilinear": "bi", "menon2007": "me", "malvar2004": "ma"},
    "sharpen": {"sharpening_filter": "s", "unsharp_masking": "u", "column_unsharp_masking": "uc"},
    "denoise": {"median": "me", "gaussian": "ga"},
}


def reference_pipeline(
    demosaic: str = "bilinear",
    sharpen: str = "sharpening_filter",
    denoise: str = "gaussian",
    *,
    name: str | None = None,
    color_correction: str = "matrix",
) -> PipelineSpec:
    """The reference ISP with the given variants (camera supplies BL, WB, CC).

    Returns
    -------
    PipelineSpec
        Seven stages in :data:`REFERENCE_SLOTS` order.
    """
    variants = {
        "demosaic": demosaic,
        "sharpen": sharpen,
        "denoise": denoise,
        "color_correction": color_correction,
    }
    stages = [StageConfig(slot=slot, variant=variants.get(slot)) for slot in REFERENCE_SLOTS]
    label = name or f"{demosaic},{sharpen},{denoise}"
    return PipelineSpec(
        name=label,
        stages=stages,
        description=f"reference ISP: demosaic {demosaic}, sharpen {sharpen}, denoise {denoise}",
    )


def _initials_name(choice: Mapping[str, str]) -> str:
    parts = []
    for slot, variant in choice.items():
        parts.append(PAPER_INITIALS.get(slot, {}).get(variant, variant))
    return ",".join(parts)


def grid(
    base: PipelineSpec,
    choices: Mapping[str, Sequence[str]],
    namer: Callable[[Mapping[str, str]], str] = _initials_name,
) -> list[PipelineSpec]:
    """Expand chosen slots x variants into named pipelines.

    Parameters
    ----------
    base : PipelineSpec
        Pipeline whose stages in the chosen slots are replaced.
    choices : mapping of slot to list of variants
        E.g. ``{"demosaic": ["bilinear", "malvar2004"], "gamma": ["power"]}``.
        The product is taken in the mapping's order.
    namer : callable
        Builds a name from ``{slot: variant}``; defaults to the paper's
        initials (``bi,s,me``), falling back to full variant names.

    Returns
    -------
    list of PipelineSpec
        One per combination, in product order.

    Raises
    ------
    SpecError
        If a chosen slot is absent from ``base`` or two combinations get the
        same name.
    """
    slots = list(choices)
    base_slots = [s.slot for s in base.stages]
    for slot in slots:
        if slot not in base_slots:
            raise SpecError(
                f"grid: pipeline {base.name!r} has no slot {slot!r}{suggest(slot, base_slots)}"
            )
    out: list[PipelineSpec] = []
    seen: set[str] = set()
    for combo in itertools.product(*(choices[s] for s in slots)):
        choice = dict(zip(slots, combo, strict=True))
        stages = [
            StageConfig(slot=s.slot, variant=choice[s.slot]) if s.slot in choice else s
            for s in base.stages
        ]
        name = namer(choice)
        if name in seen:
            raise SpecError(f"grid: two combinations are both named {name!r}; pass a namer")
        seen.add(name)
        desc = ", ".join(f"{slot} {variant}" for slot, variant in choice.items())
        out.append(PipelineSpec(name=name, stages=stages, description=desc))
    return out


PAPER_DATA_MODELS: dict[str, PipelineSpec] = {
    spec.name: spec
    for spec in grid(
        reference_pipeline(),
        {
            "demosaic": ["bilinear", "menon2007", "malvar2004"],
            "sharpen": ["sharpening_filter", "unsharp_masking"],
            "denoise": ["median", "gaussian"],
        },
    )
}


def get_pipeline(name: str) -> PipelineSpec:
    """One of the paper's twelve data models by name (``bi,s,me`` ... ``ma,u,ga``).

    Raises
    ------
    SpecError
        Unknown name, with the closest valid one.
    """
    try:
        return PAPER_DATA_MODELS[name]
    except KeyError:
        raise SpecError(
            f"unknown pipeline {name!r}{suggest(name, PAPER_DATA_MODELS)}; "
            f"named pipelines: {' '.join(PAPER_DATA_MODELS)}"
        ) from None


def expand_pipeline_names(selection: str | Sequence[str]) -> list[PipelineSpec]:
    """Turn ``"all"``, a comma-separated string or a list of names/TOML paths into specs.

    Names of the paper's data models contain commas, so a comma-separated
    string is split into groups of three initials where that matches
    (``"bi,s,me,ma,u,ga"`` gives two pipelines). Items ending in ``.toml``
    are read with :func:`driftlab.pipeline.spec.load_pipeline_file`.

    Raises
    ------
    SpecError
        Unknown name (with the closest valid one).
    """
    from driftlab.pipeline.spec import load_pipeline_file

    if isinstance(selection, str):
        if selection.strip() == "all":
            return list(PAPER_DATA_MODELS.values())
        items = _split_names(selection)
    else:
        items = list(selection)
    out: list[PipelineSpec] = []
    for item in items:
        if item == "all":
            out.extend(PAPER_DATA_MODELS.values())
        elif item.endswith(".toml"):
            out.extend(load_pipeline_file(item))
        else:
            out.append(get_pipeline(item))
    return out


def _split_names(text: str) -> list[str]:
    tokens = [t.strip() for t in text.split(",") if t.strip()]
    items: list[str] = []
    i = 0
    while i < len(tokens):
        triple = ",".join(tokens[i : i + 3])
        if triple in PAPER_DATA_MODELS:
            items.append(triple)
            i += 3
        else:
            items.append(tokens[i])
            i += 1
    return items
