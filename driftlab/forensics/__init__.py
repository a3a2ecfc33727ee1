"""Forensics: attacks on a trained task model through ISP parameters, and its signature."""

from driftlab.forensics.config import ForensicsConfig, load_forensics_config
from driftlab.forensics.runner import ForensicsResult, run_forensics
from driftlab.forensics.validate import SignatureError, load_signature
from driftlab.forensics.verify import VerifyResult, verify_signature

__all__ = [
    "ForensicsConfig",
    "ForensicsResult",
    "SignatureError",
    "VerifyResult",
    "load_forensics_config",
    "load_signature",
    "run_forensics",
    "verify_signature",
]
