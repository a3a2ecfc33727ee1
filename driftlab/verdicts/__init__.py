"""Verdicts of drift experiments: the drift matrix, its headline numbers and their evidence.

Shared by every experiment that scores a model under ISP drift and
corruptions (synthesis, audit): :mod:`driftlab.verdicts.drift` turns tidy
results (and per-item outcomes) into the summary a report states.
"""

from driftlab.verdicts.drift import RESULT_COLUMNS, corruption_matrix, isp_matrix, summarize

__all__ = ["RESULT_COLUMNS", "corruption_matrix", "isp_matrix", "summarize"]
