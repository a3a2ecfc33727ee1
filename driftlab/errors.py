"""The error classes every driftlab error derives from, and the exit codes they map to.

Every error driftlab raises on purpose derives from :class:`DriftlabError`,
so a script can catch them all at once; each class also derives from the
matching built-in exception (``ValueError`` for bad input, ``RuntimeError``
for a run that cannot proceed, ``ImportError`` for a missing optional extra),
so code written against the built-in classes keeps working.

The command line turns them into exit codes (documented in the user guide):

===========  ==========================================================
exit code    meaning
===========  ==========================================================
0            success
1            a check failed (``verify``, ``data check``, ``signature
             verify``) or an unexpected error
2            bad usage or configuration (:class:`ConfigError`, unknown
             option); nothing was created
3            the run directory cannot be used (:class:`RunDirError`:
             another configuration, locked by another run, not writable)
4            a cell failed (:class:`CellError`); finished cells are kept,
             rerun to resume
5            an optional extra is missing (:class:`ExtraMissingError`)
6            the executor cannot start (:class:`ExecutorError`: a Ray
             cluster that cannot be reached or started)
130          interrupted (SIGINT/SIGTERM); rerun the same command to resume
===========  ==========================================================
"""

from __future__ import annotations

__all__ = [
    "CellError",
    "ConfigError",
    "DriftlabError",
    "ExecutorError",
    "ExtraMissingError",
    "RunDirError",
    "require_extra",
]


class DriftlabError(Exception):
    """Base class of every error driftlab raises on purpose.

    Attributes
    ----------
    exit_code : int
        Exit status of the ``driftlab`` command when this error ends it.
    """

    exit_code: int = 1


class ConfigError(DriftlabError, ValueError):
    """A run configuration (or a command-line value) is malformed; the message names the key."""

    exit_code = 2


class RunDirError(DriftlabError, RuntimeError):
    """A run directory holds another configuration, is locked by another run, or is unusable."""

    exit_code = 3


class ExecutorError(DriftlabError, RuntimeError):
    """The executor cannot start (e.g. ``ray.init`` failed); finished cells are kept."""

    exit_code = 6


class CellError(DriftlabError, RuntimeError):
    """A cell of an experiment failed; carries the cell key and the worker's traceback.

    Parameters
    ----------
    key : str
        The failed cell.
    message : str
        ``"<ExceptionType>: <message>"`` of the original error.
    traceback : str
        The formatted traceback from the process (or Ray worker) that ran the cell.
    """

    exit_code = 4

    def __init__(self, key: str, message: str, traceback: str = "") -> None:
        super().__init__(
            f"cell {key} failed: {message}; finished cells are kept, fix the cause and rerun "
            "the same command to resume"
        )
        self.key = key
        self.message = message
        self.traceback = traceback


class ExtraMissingError(DriftlabError, ImportError):
    """An optional dependency is not installed; the message names the extra to install."""

    exit_code = 5


def require_extra(module: str, extra: str, purpose: str) -> None:
    """Import ``module`` or raise :class:`ExtraMissingError` naming ``driftlab[extra]``.

    Parameters
    ----------
    module : str
        Importable module name, e.g. ``"ray"``.
    extra : str
        The driftlab extra that installs it, e.g. ``"ray"``.
    purpose : str
        What needs it, e.g. ``"the Ray executor"``.

    Raises
    ------
    ExtraMissingError
        When the import fails.
    """
    import importlib

    try:
        importlib.import_module(module)
    except ImportError as exc:
        raise ExtraMissingError(
            f"{purpose} needs the optional package {module!r} ({exc}); install it with "
            f"pip install 'driftlab[{extra}]'"
        ) from None
