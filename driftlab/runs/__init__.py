"""Self-describing run directories shared by the synthesis, forensics and optimisation runners."""

from driftlab.runs.rundir import (
    RunDir,
    RunDirError,
    package_versions,
    write_csv_atomic,
    write_json_atomic,
)

__all__ = ["RunDir", "RunDirError", "package_versions", "write_csv_atomic", "write_json_atomic"]
