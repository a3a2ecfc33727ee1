"""The words of a drift verdict: formatted values with intervals and the headline lines.

Shared by the command line (the lines printed after a run) and the report,
so both state the same thing: a warning first when the model is not above
chance (then no ranking and no worst pair), drops at the headline severity
with the all-severity mean beside, the ratio only when the ISP drop is known
to be above 0, and top-k pipelines only where the bootstrap resolves them.
Every number in the words (interval level, ``k``, the probability needed to
name a pipeline, the headline severity) is read from the summary's
``settings`` (:func:`verdict_settings`), the values the verdict was computed
with, never assumed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs
import numpy as np

__all__ = [
    "VerdictSettings",
    "chance_warning",
    "explanation",
    "fmt_interval",
    "fmt_value",
    "headline_lines",
    "level_text",
    "overlap_text",
    "ratio_text",
    "top_text",
    "verdict_settings",
]


@attrs.frozen
class VerdictSettings:
    """The settings a summary was computed with (``summary["settings"]``).

    Attributes
    ----------
    level : float
        Interval coverage in (0, 1), e.g. 0.95.
    top_k : int
        Size of the rankings' top.
    named_at : float
        Top-k probability a pipeline needs to be named.
    severity : int
        Headline severity of corruption drops asked for (used when the run has it).
    """

    level: float
    top_k: int
    named_at: float
    severity: int


def verdict_settings(summary: dict[str, Any]) -> VerdictSettings:
    """The settings of a :func:`driftlab.verdicts.drift.drift_verdict` summary.

    Raises
    ------
    KeyError
        The summary has no ``settings`` (not made by :func:`drift_verdict`).
    """
    try:
        given = summary["settings"]
        return VerdictSettings(
            level=float(given["level"]),
            top_k=int(given["top_k"]),
            named_at=float(given["named_at"]),
            severity=int(given["severity"]),
        )
    except (KeyError, TypeError):
        raise KeyError(
            "summary['settings'] (level, top_k, named_at, severity): expected the summary of "
            "driftlab.verdicts.drift.drift_verdict"
        ) from None


def level_text(level: float) -> str:
    """``95%`` for 0.95, ``97.5%`` for 0.975 (the interval level as the words print it)."""
    return f"{level * 100:g}%"


def explanation(summary: dict[str, Any]) -> str:
    """One short paragraph defining diagonal, drop, ratio, interval, top-k probability and
    worst pair, with the settings of ``summary``."""
    s = verdict_settings(summary)
    k = s.top_k
    return (
        "How to read this report. The **diagonal** is the score of a model tested on views of "
        "the ISP pipeline it was trained on. A **drop** is the diagonal minus a score under "
        "drift: the ISP drop uses the mean over the other test pipelines, the corruption drop "
        "the mean over the corruptions of the model's own test views (identity excluded), at "
        f"severity {s.severity} when the run has it (the paper compares at severity 3), with "
        "the mean over every severity beside it; a positive drop is a loss. The **ratio** is "
        "the mean corruption drop divided by the mean ISP drop, given only when the ISP drop "
        "is known to be above 0; its interval comes from the same resamples and is unbounded "
        "above when too many resamples have no positive ISP drop (a small ISP drop makes the "
        f"ratio very uncertain). Each **interval** `[low, high]` is a {level_text(s.level)} "
        "percentile interval of a seeded paired bootstrap that resamples folds and then test "
        "items within folds; the same resamples serve every number, so differences keep their "
        f"pairing. The **top-{k} probability** of a train pipeline is the fraction of "
        f"bootstrap resamples in which it ranks among the {k} best; only pipelines with "
        f"probability of at least {s.named_at:g} are named, otherwise the ranking is not "
        "resolved at this sample size. The **worst pair** is the (train, test) pipeline pair "
        "with the largest drop from the training pipeline's own diagonal."
    )


def fmt_value(value: Any, digits: int = 3) -> str:
    """A number with ``digits`` decimals, ``n/a`` for None or non-finite."""
    if value is None:
        return "n/a"
    try:
        x = float(value)
    except (TypeError, ValueError):
        return str(value)
    return f"{x:.{digits}f}" if np.isfinite(x) else "n/a"


def fmt_interval(value: Any, interval: Sequence[float] | None, digits: int = 3) -> str:
    """``0.830 [0.800, 0.860]``; the bare value when there is no interval."""
    text = fmt_value(value, digits)
    if interval is None or value is None:
        return text
    low, high = interval
    return f"{text} [{fmt_value(low, digits)}, {fmt_value(high, digits)}]"


def _iv(summary: dict[str, Any], key: str) -> list[float] | None:
    return (summary.get("intervals") or {}).get(key)


def chance_warning(summary: dict[str, Any]) -> str | None:
    """The warning when the model is not above chance (``above_chance`` is False), else None."""
    if summary.get("above_chance") is not False:
        return None
    return (
        f"the mean diagonal {summary['metric']} "
        f"{fmt_interval(summary['mean_diagonal'], _iv(summary, 'mean_diagonal'))} is not above "
        f"chance ({fmt_value(summary.get('chance_level'))}, the best constant prediction): the "
        "model did not learn the task, so drops, rankings and the worst pair say nothing about "
        "drift; rankings and the worst pair are left out."
    )


def ratio_text(summary: dict[str, Any]) -> str:
    """The ratio, or why it is not given."""
    ratio = summary.get("drop_ratio_corruption_over_isp")
    if ratio is not None:
        interval = _iv(summary, "drop_ratio_corruption_over_isp")
        if interval is None:
            return fmt_value(ratio, 2)
        low, high = interval
        upper = "unbounded" if high is None else fmt_value(high, 2)
        return f"{fmt_value(ratio, 2)} [{fmt_value(low, 2)}, {upper}]"
    reason = (summary.get("reasons") or {}).get("drop_ratio_corruption_over_isp", "undefined")
    return f"not given: {reason}"


def top_text(summary: dict[str, Any], kind: str) -> str:
    """Resolved top-k pipelines of a ranking (``kind``: ``isp`` or ``corruption``) with their
    probabilities, or why none is named (``k`` and the probability needed from
    ``summary["settings"]``)."""
    s = verdict_settings(summary)
    k = s.top_k
    names = summary.get(f"top{k}_{kind}")
    reason = (summary.get("reasons") or {}).get(f"top{k}_{kind}")
    if names is None:
        return f"not stated: {reason}" if reason else "not stated"
    probability = (summary.get(f"top{k}_probability") or {}).get(kind, {})
    if not names:
        return (
            f"not resolved at this sample size (no pipeline has top-{k} probability >= "
            f"{s.named_at:g})"
        )
    text = ", ".join(f"{n} (P = {probability.get(n, float('nan')):.2f})" for n in names)
    if len(names) < k:
        text += f"; the rest of the top {k} is not resolved at this sample size"
    return text


def overlap_text(summary: dict[str, Any]) -> str:
    """The pipelines in both resolved top-k lists, ``none``, or why it is not stated."""
    k = verdict_settings(summary).top_k
    overlap = summary.get(f"top{k}_overlap")
    if overlap is None:
        reason = (summary.get("reasons") or {}).get(f"top{k}_overlap")
        return f"not stated: {reason}" if reason else "not stated"
    return ", ".join(overlap) if overlap else "none"


def headline_lines(summary: dict[str, Any], lead: Sequence[str] = ()) -> list[str]:
    """The lines a drift run prints at its end (see module docstring).

    Parameters
    ----------
    summary : dict
        :func:`driftlab.verdicts.drift.summarize` output.
    lead : sequence of str
        Lines printed after the chance warning (if any) and before the numbers.

    Returns
    -------
    list of str
    """
    lines = []
    warning = chance_warning(summary)
    if warning:
        lines.append("WARNING: " + warning)
    lines += list(lead)
    metric = summary["metric"]
    chance = summary.get("chance_level")
    diag = fmt_interval(summary["mean_diagonal"], _iv(summary, "mean_diagonal"))
    lines.append(
        f"mean {metric} on the training pipeline (diagonal): {diag}"
        + (f" (chance {fmt_value(chance)})" if chance is not None else "")
    )
    lines.append(
        "mean drop under ISP drift:    "
        + fmt_interval(summary["mean_isp_drop"], _iv(summary, "mean_isp_drop"))
    )
    if summary.get("mean_corruption_drop") is not None:
        severity = summary.get("corruption_severity")
        at = (
            f"at severity {severity}"
            if severity is not None
            else f"over all severities (none at {verdict_settings(summary).severity})"
        )
        line = f"mean drop under corruptions {at}:  " + fmt_interval(
            summary["mean_corruption_drop"], _iv(summary, "mean_corruption_drop")
        )
        if severity is not None:
            line += (
                " (all severities "
                + fmt_interval(
                    summary.get("mean_corruption_drop_all_severities"),
                    _iv(summary, "mean_corruption_drop_all_severities"),
                )
                + ")"
            )
        lines.append(line)
        lines.append(f"ratio corruptions / ISP drift: {ratio_text(summary)}")
    if warning:
        return lines
    k = verdict_settings(summary).top_k
    lines.append(f"top-{k} train pipelines under ISP drift:   {top_text(summary, 'isp')}")
    if summary.get("mean_corruption_drop") is not None:
        corruption = top_text(summary, "corruption")
        lines.append(f"top-{k} train pipelines under corruptions: {corruption}")
        lines.append(f"in both top-{k} lists: {overlap_text(summary)}")
    pair = summary.get("worst_pair")
    if pair:
        lines.append(
            f"largest ISP drop: trained on {pair['train']}, tested on {pair['test']}: "
            f"{fmt_value(pair['score'])}, "
            f"{fmt_interval(pair['drop'], pair.get('drop_interval'))} below its diagonal"
        )
    return lines
