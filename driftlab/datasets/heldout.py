"""Checks of a fixed held-out test set against its training set, beyond ids and groups.

A test set that shares item ids or split groups with the training set is
refused where the two are opened (:func:`driftlab.engine.planning.open_held_out`).
Two leaks pass that check; the functions here close them, and
:func:`~driftlab.engine.planning.open_held_out` calls them for every run with
a ``[test]`` set (synthesis, audit, optimisation), before anything is written:

* **content**: a renamed copy of a training item in the test set (another
  file name, another format, another photograph stem). :func:`shared_content`
  compares a digest of every item's content on both sides:
  :meth:`~driftlab.datasets.base.RawDataset.recipe_digest` when every item of
  both sets is generated (no rendering), else
  :meth:`~driftlab.datasets.base.RawDataset.content_digest` (one read of every
  item; a dataset simulated at a lower light level digests the item it
  re-exposes, a loader that draws noise per item id digests its noise-free
  source, so the light level and the noise do not hide a copy). Each item is
  digested once; the comparison is a hash lookup. Only identical content is
  found: near-duplicates (overlapping shots, re-encoded JPEGs) are the job of
  :mod:`driftlab.datasets.overlap`.
* **class order of masks**: a segmentation mask holds class *indices*, so a
  test set whose class list is a permutation of the training set's (same
  names, other order) would score every pixel against the wrong class.
  :func:`check_mask_classes` requires the same list in the same order.
"""

from __future__ import annotations

from driftlab.datasets.base import DatasetError, DatasetSpec, RawDataset

__all__ = ["check_held_out", "check_mask_classes", "check_no_shared_content", "shared_content"]

SHOWN = 5
"""How many pairs an error message quotes."""


def shared_content(train: RawDataset, test: RawDataset) -> list[tuple[str, str]]:
    """Pairs of a training and a test item with the same content (module docstring).

    Parameters
    ----------
    train, test : RawDataset
        The training set and the held-out test set (each may be a subset or
        a re-exposed wrapper of another dataset).

    Returns
    -------
    list of (str, str)
        ``(training item id, test item id)`` for every test item whose
        content equals a training item's (the first such training item), in
        test order; empty when the sets share no content.

    Raises
    ------
    DatasetError
        An item that cannot be read.
    """
    train_keys = _recipes(train)
    test_keys = _recipes(test) if train_keys is not None else None
    if train_keys is None or test_keys is None:
        train_keys = [train.content_digest(i) for i in range(len(train))]
        test_keys = [test.content_digest(i) for i in range(len(test))]
    first: dict[str, str] = {}
    for item_id, key in zip(train.ids, train_keys, strict=True):
        first.setdefault(key, item_id)
    return [
        (first[key], item_id)
        for item_id, key in zip(test.ids, test_keys, strict=True)
        if key in first
    ]


def _recipes(dataset: RawDataset) -> list[str] | None:
    """Every item's recipe digest, or None as soon as one item has none."""
    out = []
    for i in range(len(dataset)):
        recipe = dataset.recipe_digest(i)
        if recipe is None:
            return None
        out.append(recipe)
    return out


def check_no_shared_content(train: RawDataset, test: RawDataset, where: str = "[test]") -> None:
    """Refuse a test set holding a copy of a training item under another id.

    Raises
    ------
    DatasetError
        Naming the first :data:`SHOWN` pairs (training id and test id) and
        how many there are.
    """
    pairs = shared_content(train, test)
    if not pairs:
        return
    shown = ", ".join(f"test {b!r} = training {a!r}" for a, b in pairs[:SHOWN])
    more = f" and {len(pairs) - SHOWN} more" if len(pairs) > SHOWN else ""
    raise DatasetError(
        f"{where}: {len(pairs)} test item(s) hold the same raw data as a training item under "
        f"another id (renamed copies): {shown}{more}; remove them from one of the two sets"
    )


def check_mask_classes(
    train_spec: DatasetSpec, test_spec: DatasetSpec, where: str = "[test]"
) -> None:
    """Refuse a segmentation test set whose class list is not the training set's, in order.

    Mask values are class indices; classification labels are matched by
    name elsewhere, so this only checks datasets whose task is not
    ``"classification"``.

    Raises
    ------
    DatasetError
        Another task, or another class list or order (both lists named).
    """
    if test_spec.task != train_spec.task:
        raise DatasetError(
            f"{where}: the test set {test_spec.name!r} is a {test_spec.task} dataset but the "
            f"training set {train_spec.name!r} is a {train_spec.task} dataset"
        )
    if train_spec.task == "classification":
        return
    train_classes, test_classes = tuple(train_spec.classes), tuple(test_spec.classes)
    if test_classes != train_classes:
        same = sorted(train_classes) == sorted(test_classes)
        raise DatasetError(
            f"{where}: the test set's mask classes [{', '.join(test_classes)}] differ from the "
            f"training set's [{', '.join(train_classes)}]"
            + (" (same names in another order: mask values are class indices)" if same else "")
            + "; masks must use the training set's classes in its order"
        )


def check_held_out(train: RawDataset, test: RawDataset, where: str = "[test]") -> None:
    """:func:`check_mask_classes` then :func:`check_no_shared_content`.

    Raises
    ------
    DatasetError
        See both.
    """
    check_mask_classes(train.spec, test.spec, where)
    check_no_shared_content(train, test, where)
