"""Names derived from labels in one place: seeds, file names and cell keys.

* :func:`derive_seed` turns any labels (a base seed, a pipeline name, a fold)
  into a 31-bit seed that is stable across runs, platforms and orders of
  execution, so a cell computes the same thing wherever and whenever it runs.
* :func:`file_name` turns a free-form name (pipeline names hold commas,
  spaces, slashes) into a readable, **injective** file-name component: names
  that are already safe are kept; any other name keeps its readable part and
  gains a short hash of the exact name, so ``"g a"`` and ``"g_a"`` never
  share a file.
* :func:`cell_key` joins such components into the key of one cell of an
  experiment (the stem of its files in ``cells/`` and ``models/``).
"""

from __future__ import annotations

import hashlib
import re

__all__ = ["cell_key", "derive_seed", "file_name"]

_SAFE = re.compile(r"[A-Za-z0-9,.+=-]+")
_UNSAFE_CHAR = re.compile(r"[^A-Za-z0-9,.+=-]")
_MAX_READABLE = 60


def derive_seed(*parts: object) -> int:
    """A 31-bit seed from any labels (SHA-256 of their ``str`` forms).

    Parameters
    ----------
    *parts : object
        Labels; their ``str`` forms are joined with a unit separator.

    Returns
    -------
    int
        In ``[0, 2**31 - 1]``.
    """
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


def file_name(name: str) -> str:
    """A file-name component for ``name`` that no other name maps to.

    Parameters
    ----------
    name : str
        Any non-empty name.

    Returns
    -------
    str
        ``name`` itself when it consists of ``A-Z a-z 0-9 , . + = -`` only,
        does not start with a dot and is at most 60 characters; otherwise the
        name with every other character replaced by ``_`` (cut to 60
        characters) followed by ``~`` and 8 hex digits of the SHA-256 of the
        exact name. ``~`` never occurs in the first form, so the two forms
        cannot collide.

    Raises
    ------
    ValueError
        For an empty name.
    """
    if not name:
        raise ValueError("file_name: expected a non-empty name")
    if _SAFE.fullmatch(name) and not name.startswith(".") and len(name) <= _MAX_READABLE:
        return name
    readable = _UNSAFE_CHAR.sub("_", name)[:_MAX_READABLE].lstrip(".") or "_"
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{readable}~{digest}"


def cell_key(*parts: object) -> str:
    """Key of one cell: the :func:`file_name` of each part joined by ``__``.

    Parameters
    ----------
    *parts : object
        E.g. ``("bi,s,ga", "fold0")``; ``str`` is applied first.

    Returns
    -------
    str
        Unique for distinct part tuples as long as no part contains ``__``
        in its readable form (parts that do are hashed by :func:`file_name`).
    """
    out = []
    for part in parts:
        text = str(part)
        safe = file_name(text)
        if "__" in safe and "~" not in safe:
            safe = file_name(text + "\x00")  # force the hashed form
        out.append(safe)
    return "__".join(out)
