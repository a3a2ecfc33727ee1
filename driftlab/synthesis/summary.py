"""The synthesis summary is the shared drift verdict (:mod:`driftlab.verdicts.drift`)."""

from driftlab.verdicts.drift import RESULT_COLUMNS, corruption_matrix, isp_matrix, summarize

__all__ = ["RESULT_COLUMNS", "corruption_matrix", "isp_matrix", "summarize"]
