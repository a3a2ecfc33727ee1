"""The paper's twelve static data models and a grid builder for more.

The reference order of slots is ``black_level -> demosaic -> white_balance ->
color_correction -> sharpen -> denoise -> gamma`` (Oala et al., "Data Models
for Dataset Drift Controls in Machine Learning With Optical Images", TMLR
2023). The twelve data models vary demosaic x sharpen x denoise and are named
by initials, e.g. ``bi,s,me`` = bilinear, sharpening filter, median.
"""

from __future__ import annotations

import difflib
import itertools
from collections.abc import Callable, Collection, Mapping, Sequence

from driftlab.pipeline.spec import PipelineSpec, SpecError, StageConfig
from driftlab.registry import suggest

__all__ = [
    "PAPER_DATA_MODELS",
    "REFERENCE_SLOTS",
    "expand_pipeline_names",
    "get_pipeline",
    "grid",
    "parse_pipeline_selection",
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


def parse_pipeline_selection(
    selection: str | Sequence[str], known: Collection[str] | None = None
) -> list[str]:
    """Split a pipeline selection into names and TOML paths.

    Pipeline names contain commas (``bi,s,me``), so a plain comma split is
    wrong. The rules, for each string of ``selection`` (a repeated command-line
    option or a config list gives several):

    * ``;`` always separates items;
    * within an item, comma-separated tokens are joined greedily into the
      longest known name (``"bi,s,me,ma,u,ga"`` gives ``bi,s,me`` and
      ``ma,u,ga``); ``all`` stands for every known name;
    * a token (or a run of tokens) ending in ``.toml`` is a pipeline file;
    * anything else is an unknown name. It is reported as the run of tokens
      that looks most like a known name, with that name as a suggestion
      (``"bi,x,ga"``: unknown pipeline ``'bi,x,ga'``, did you mean
      ``'bi,s,ga'``?).

    Parameters
    ----------
    selection : str or sequence of str
        What the user typed.
    known : collection of str, optional
        Valid names; default the paper's twelve data models.

    Returns
    -------
    list of str
        Names (``all`` expanded, in the order of ``known``) and paths, in
        order, each once.

    Raises
    ------
    SpecError
        An unknown name (with the closest valid one) or an empty selection.
    """
    names = list(known if known is not None else PAPER_DATA_MODELS)
    known_set = set(names)
    max_parts = max((n.count(",") + 1 for n in names), default=1)
    items = [selection] if isinstance(selection, str) else list(selection)
    out: list[str] = []
    for item in items:
        for part in str(item).split(";"):
            tokens = [t.strip() for t in part.split(",")]
            if not any(tokens):
                continue
            i = 0
            while i < len(tokens):
                if not tokens[i]:
                    i += 1
                    continue
                if tokens[i] == "all":
                    out.extend(names)
                    i += 1
                    continue
                match = next(
                    (
                        j
                        for j in range(min(len(tokens), i + max_parts), i, -1)
                        if ",".join(tokens[i:j]) in known_set
                    ),
                    None,
                )
                if match is not None:
                    out.append(",".join(tokens[i:match]))
                    i = match
                    continue
                toml = next(
                    (j for j in range(i + 1, len(tokens) + 1) if tokens[j - 1].endswith(".toml")),
                    None,
                )
                if toml is not None:
                    out.append(",".join(tokens[i:toml]))
                    i = toml
                    continue
                raise SpecError(_unknown_pipeline(tokens[i:], names, max_parts))
    if not out:
        raise SpecError(
            f"no pipeline selected in {selection!r}; use names such as "
            f"{', '.join(names[:2])}, 'all', or pipeline TOML files"
        )
    return list(dict.fromkeys(out))


def _unknown_pipeline(tokens: list[str], names: list[str], max_parts: int) -> str:
    """Message for an unknown name starting at ``tokens[0]``: the likeliest intended run."""
    best, best_score, best_match = tokens[0], -1.0, ""
    for k in range(1, min(len(tokens), max_parts) + 1):
        candidate = ",".join(tokens[:k])
        close = difflib.get_close_matches(candidate, names, n=1, cutoff=0.0)
        score = difflib.SequenceMatcher(None, candidate, close[0]).ratio() if close else 0.0
        if score > best_score:
            best, best_score, best_match = candidate, score, close[0] if close else ""
    hint = f" (did you mean {best_match!r}?)" if best_score >= 0.6 else ""
    return (
        f"unknown pipeline {best!r}{hint}; named pipelines: {' '.join(names)} "
        "(separate several with ',' or ';', or give pipeline TOML files)"
    )


def expand_pipeline_names(
    selection: str | Sequence[str], known: Mapping[str, PipelineSpec] | None = None
) -> list[PipelineSpec]:
    """Turn ``"all"``, a comma- or ``;``-separated string or a list of names/TOML paths into specs.

    Parsed by :func:`parse_pipeline_selection`; items ending in ``.toml``
    are read with :func:`driftlab.pipeline.spec.load_pipeline_file`.

    Parameters
    ----------
    selection : str or sequence of str
        What to render or train on.
    known : mapping of str to PipelineSpec, optional
        Named pipelines; default the paper's twelve data models.

    Raises
    ------
    SpecError
        Unknown name (with the closest valid one).
    """
    from driftlab.pipeline.spec import load_pipeline_file

    named = dict(known if known is not None else PAPER_DATA_MODELS)
    out: list[PipelineSpec] = []
    for item in parse_pipeline_selection(selection, named):
        if item in named:
            out.append(named[item])
        else:
            out.extend(load_pipeline_file(item))
    return out
