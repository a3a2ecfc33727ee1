"""Safe use of the ``run_*`` functions from a script with several worker processes.

Local worker processes are *spawned* (:func:`driftlab.engine.executors.process_pool`):
each one starts a fresh interpreter that imports the calling script again
(as ``__mp_main__``) before it runs a cell. A script that starts a run at
module level, outside ``if __name__ == "__main__":``, would start the run
again in every worker, which Python's multiprocessing forbids while the
worker is starting; the pool breaks and the user sees ``BrokenProcessPool``.
This is the standard rule of Python multiprocessing ("Safe importing of main
module" in the :mod:`multiprocessing` documentation); two checks turn it
into a clear error:

* :func:`check_script_guard` (in the driver, before anything starts): the
  run is started from the top level of the ``__main__`` script, on a line
  that no ``if __name__ == "__main__":`` block holds, with more than one
  local worker;
* :func:`check_not_reimported` (in a worker): a run is started while the
  worker is still importing the main script.
"""

from __future__ import annotations

import ast
import multiprocessing
import sys
from pathlib import Path
from types import FrameType

from driftlab.errors import DriftlabError

__all__ = ["ScriptGuardError", "check_not_reimported", "check_script_guard", "unguarded_call"]

ADVICE = (
    'put the call under `if __name__ == "__main__":` (spawned worker processes import the '
    "script again and would start the run again), or set [run] workers to 0 or 1"
)


class ScriptGuardError(DriftlabError, RuntimeError):
    """A run is started where spawned worker processes would start it again."""

    exit_code = 2


def _is_main_guard(node: ast.AST) -> bool:
    if not isinstance(node, ast.If) or not isinstance(node.test, ast.Compare):
        return False
    test = node.test
    if len(test.ops) != 1 or not isinstance(test.ops[0], ast.Eq):
        return False
    sides = [test.left, test.comparators[0]]
    names = [s for s in sides if isinstance(s, ast.Name) and s.id == "__name__"]
    texts = [s for s in sides if isinstance(s, ast.Constant) and s.value == "__main__"]
    return len(names) == 1 and len(texts) == 1


def _guarded(tree: ast.Module, line: int) -> bool:
    for node in ast.walk(tree):
        if _is_main_guard(node):
            assert isinstance(node, ast.If)
            first = node.body[0].lineno
            last = max(getattr(n, "end_lineno", None) or n.lineno for n in node.body)
            if first <= line <= last:
                return True
    return False


def _main_module_frame() -> FrameType | None:
    main = sys.modules.get("__main__")
    if main is None:
        return None
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code.co_name == "<module>" and frame.f_globals is vars(main):
            return frame
        frame = frame.f_back
    return None


def unguarded_call() -> tuple[Path, int] | None:
    """Where the ``__main__`` script starts this call outside its main guard, if it does.

    Returns
    -------
    (Path, int) or None
        The script and the line of its top-level statement that leads to
        this call, when that line is not inside an ``if __name__ ==
        "__main__":`` block; None otherwise, also for interactive sessions
        (no script file, nothing re-imported) and unreadable sources.
    """
    frame = _main_module_frame()
    if frame is None:
        return None
    path = Path(frame.f_code.co_filename)
    if not path.is_file():
        return None
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except (OSError, UnicodeDecodeError, SyntaxError, ValueError):
        return None
    line = frame.f_lineno
    return None if _guarded(tree, line) else (path, line)


def check_script_guard(workers: int, executor: str, what: str = "run") -> None:
    """Refuse a run that spawned workers would start again (see the module docstring).

    Parameters
    ----------
    workers : int
        ``[run] workers``; only more than one local worker spawns processes.
    executor : str
        ``[executor] kind``; Ray workers do not import the script.
    what : str
        The run's kind, for the message.

    Raises
    ------
    ScriptGuardError
        Naming the script, the line and what to do.
    """
    if executor != "local" or workers <= 1:
        return
    found = unguarded_call()
    if found is None:
        return
    path, line = found
    raise ScriptGuardError(
        f"{path}:{line} starts a {what} run at the top level of the script with "
        f"[run] workers = {workers}: {ADVICE}"
    )


def check_not_reimported(what: str = "run") -> None:
    """Refuse to start a run while this (worker) process is still importing the main script.

    Python's spawn start method marks a starting process (``_inheriting``,
    the flag :mod:`multiprocessing` itself checks before refusing to start
    processes during that phase).

    Raises
    ------
    ScriptGuardError
    """
    if getattr(multiprocessing.current_process(), "_inheriting", False):
        raise ScriptGuardError(
            f"a {what} was started while a spawned worker process was importing the main "
            f"script: {ADVICE}"
        )
