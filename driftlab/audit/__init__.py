"""Drift audits: a frozen model tested under ISP drift and common corruptions.

An auditor's model (any format of :func:`driftlab.models.load_model`) is
evaluated, never trained, on a test set rendered through every chosen ISP
pipeline and under corruptions of the pipeline it was trained on; the
verdicts and report are those of drift synthesis (Oala et al., TMLR 2023).
"""

from driftlab.audit.config import AuditConfig, forensics_model_table, load_audit_config
from driftlab.audit.runner import AuditResult, run_audit

__all__ = ["AuditConfig", "AuditResult", "forensics_model_table", "load_audit_config", "run_audit"]
