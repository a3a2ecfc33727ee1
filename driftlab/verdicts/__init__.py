"""Verdicts of drift experiments: the drift matrix, its headline numbers and their evidence.

Shared by every experiment that scores a model under ISP drift and
corruptions (synthesis, audit):

- :mod:`driftlab.verdicts.evidence` sets the conventions of a drift cell's
  record (:data:`CELL_COLUMNS`, per-item arrays) and checks and merges the
  per-item outcomes of cell records (:func:`evidence_from_records`);
- :mod:`driftlab.verdicts.cells` writes such records (a cell's conditions);
- :mod:`driftlab.verdicts.records` checks one stored record against its own
  rows (:func:`check_record`);
- :mod:`driftlab.verdicts.experiment` holds the steps synthesis and audit
  take alike (identity, manifest, shared inputs, the verdict of the records);
- :mod:`driftlab.verdicts.drift` turns a tidy results table (and the
  evidence) into the summary with bootstrap intervals, top-k probabilities
  and guards (:func:`drift_verdict`, :func:`summarize`, :func:`rescore`);
- :mod:`driftlab.verdicts.headline` words it (command-line lines);
- :mod:`driftlab.verdicts.report` draws the figures and describes the report.
"""

from driftlab.verdicts.drift import (
    MATRIX_COLUMNS,
    RESULT_COLUMNS,
    DriftSettings,
    DriftVerdict,
    corruption_matrix,
    drift_verdict,
    isp_matrix,
    rescore,
    summarize,
)
from driftlab.verdicts.evidence import (
    CELL_COLUMNS,
    Evidence,
    EvidenceError,
    EvidenceMissing,
    FoldEvidence,
    condition_label,
    evidence_from_records,
    parse_condition,
)
from driftlab.verdicts.headline import headline_lines
from driftlab.verdicts.records import CellRecordError, check_record

__all__ = [
    "CELL_COLUMNS",
    "MATRIX_COLUMNS",
    "RESULT_COLUMNS",
    "CellRecordError",
    "DriftSettings",
    "DriftVerdict",
    "Evidence",
    "EvidenceError",
    "EvidenceMissing",
    "FoldEvidence",
    "check_record",
    "condition_label",
    "corruption_matrix",
    "drift_verdict",
    "evidence_from_records",
    "headline_lines",
    "isp_matrix",
    "parse_condition",
    "rescore",
    "summarize",
]
