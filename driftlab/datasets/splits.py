"""Seeded k-fold splits that keep classes balanced and groups whole.

Classification data is stratified by class; data whose items share a source
(tiles of one frame) is split by group, so that no group sits on both sides
of a split. The fold assignment comes from scikit-learn
(``StratifiedKFold``, ``StratifiedGroupKFold``, ``KFold``, ``GroupKFold``
with ``shuffle=True`` and ``random_state=seed``); this module adds the
checks that make tiny datasets fail with a clear message instead of a
warning and a degenerate fold.

The paper's protocol uses 5-fold cross-validation (Oala et al., TMLR 2023).
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs
import numpy as np

from driftlab.datasets.base import DatasetError, RawDataset

__all__ = ["Fold", "check_folds", "dataset_folds", "kfold"]


def _index_array(value: object) -> np.ndarray:
    array = np.asarray(value, dtype=np.int64)
    array.setflags(write=False)
    return array


@attrs.frozen
class Fold:
    """One train/test split of a k-fold cross-validation.

    Attributes
    ----------
    index : int
        Fold number, 0-based.
    train, test : numpy.ndarray
        ``(n_train,)`` and ``(n_test,)`` int64 item indices, sorted,
        disjoint; read-only.
    train_ids, test_ids : tuple of str
        Item ids of the same items (empty when the ids were not given);
        ids are the same at every intensity level of a dataset, so a fold
        chosen at one level selects the same items at another.
    """

    index: int
    train: np.ndarray = attrs.field(converter=_index_array, eq=False)
    test: np.ndarray = attrs.field(converter=_index_array, eq=False)
    train_ids: tuple[str, ...] = attrs.field(default=(), converter=tuple)
    test_ids: tuple[str, ...] = attrs.field(default=(), converter=tuple)


def _check_n_splits(n_splits: object) -> int:
    if isinstance(n_splits, bool) or not isinstance(n_splits, (int, np.integer)):
        raise DatasetError(f"n_splits must be an integer >= 2, got {n_splits!r}")
    if n_splits < 2:
        raise DatasetError(f"n_splits must be at least 2, got {n_splits}")
    return int(n_splits)


def _check_seed(seed: object) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise DatasetError(f"seed must be a non-negative integer, got {seed!r}")
    return int(seed)


def _too_small(
    labels: np.ndarray, groups: np.ndarray, n_splits: int, class_names: Sequence[str] | None
) -> list[str]:
    small = []
    for value in np.unique(labels):
        members = np.unique(groups[labels == value]).size
        if members < n_splits:
            name = (
                class_names[int(value)]
                if class_names is not None and 0 <= int(value) < len(class_names)
                else str(value)
            )
            small.append(f"{name} ({members})")
    return small


def kfold(
    n_items: int,
    *,
    n_splits: int = 5,
    seed: int = 0,
    labels: Sequence[int] | np.ndarray | None = None,
    groups: Sequence[str] | np.ndarray | None = None,
    ids: Sequence[str] | None = None,
    class_names: Sequence[str] | None = None,
) -> list[Fold]:
    """Seeded k-fold split, stratified by class and/or grouped.

    Parameters
    ----------
    n_items : int
        Number of items.
    n_splits : int
        Number of folds, >= 2 (5 in the paper).
    seed : int
        Non-negative seed; the same inputs and seed give the same folds.
    labels : array-like of int, optional
        ``(n_items,)`` class index per item: stratify so every fold keeps the
        class proportions (classification).
    groups : array-like, optional
        ``(n_items,)`` group per item (e.g. source frame of a tile): items of
        one group always land in the same test fold. Default: every item is
        its own group.
    ids : sequence of str, optional
        ``(n_items,)`` item ids copied into the folds.
    class_names : sequence of str, optional
        Names for error messages.

    Returns
    -------
    list of Fold
        ``n_splits`` folds; every item is in exactly one test set.

    Raises
    ------
    DatasetError
        ``n_splits`` < 2 or not an integer, negative seed, inputs of the
        wrong length, fewer items or groups than folds, or (with labels) a
        class whose members (groups) are fewer than ``n_splits``; the
        message names the classes and their counts.
    """
    from sklearn.model_selection import GroupKFold, KFold, StratifiedGroupKFold, StratifiedKFold

    n_splits = _check_n_splits(n_splits)
    seed = _check_seed(seed)
    n_items = int(n_items)
    for name, value in (("labels", labels), ("groups", groups), ("ids", ids)):
        if value is not None and len(value) != n_items:
            raise DatasetError(f"{name} has {len(value)} entries for {n_items} items")
    if n_items < n_splits:
        raise DatasetError(f"cannot make {n_splits} folds from {n_items} item(s)")
    group_array = np.asarray([str(g) for g in groups]) if groups is not None else np.arange(n_items)
    n_groups = np.unique(group_array).size
    if n_groups < n_splits:
        raise DatasetError(
            f"cannot make {n_splits} folds from {n_groups} group(s) (e.g. source frames); "
            "items of one group must stay together"
        )
    grouped = n_groups < n_items
    dummy = np.zeros((n_items, 1))
    if labels is not None:
        label_array = np.asarray(labels)
        if label_array.ndim != 1 or not np.issubdtype(label_array.dtype, np.integer):
            raise DatasetError(f"labels must be a 1-D integer array, got {label_array.dtype}")
        small = _too_small(label_array, group_array, n_splits, class_names)
        if small:
            unit = "groups" if grouped else "members"
            raise DatasetError(
                f"cannot stratify {n_splits} folds: class(es) with fewer {unit} than folds: "
                f"{', '.join(small)}; drop those classes or use fewer folds"
            )
        if grouped:
            splitter = StratifiedGroupKFold(n_splits, shuffle=True, random_state=seed)
            pairs = splitter.split(dummy, label_array, group_array)
        else:
            splitter = StratifiedKFold(n_splits, shuffle=True, random_state=seed)
            pairs = splitter.split(dummy, label_array)
    elif grouped:
        pairs = GroupKFold(n_splits, shuffle=True, random_state=seed).split(
            dummy, groups=group_array
        )
    else:
        pairs = KFold(n_splits, shuffle=True, random_state=seed).split(dummy)
    folds = []
    for k, (train, test) in enumerate(pairs):
        train, test = np.sort(train), np.sort(test)
        folds.append(
            Fold(
                k,
                train,
                test,
                [ids[i] for i in train] if ids is not None else (),
                [ids[i] for i in test] if ids is not None else (),
            )
        )
    check_folds(folds, n_items, group_array)
    return folds


def check_folds(folds: Sequence[Fold], n_items: int, groups: Sequence | np.ndarray) -> None:
    """Verify that folds partition the items and keep groups whole.

    Parameters
    ----------
    folds : sequence of Fold
    n_items : int
    groups : array-like
        ``(n_items,)`` group per item.

    Raises
    ------
    DatasetError
        An empty test fold, an item tested in no fold or in several, a
        train/test overlap, or a group on both sides of a split (naming it).
    """
    groups = np.asarray(groups)
    tested = np.zeros(n_items, dtype=np.int64)
    for fold in folds:
        if fold.test.size == 0:
            raise DatasetError(f"fold {fold.index} has an empty test set")
        if np.intersect1d(fold.train, fold.test).size:
            raise DatasetError(f"fold {fold.index}: an item is both in train and test")
        np.add.at(tested, fold.test, 1)
        shared = np.intersect1d(groups[fold.train], groups[fold.test])
        if shared.size:
            raise DatasetError(
                f"fold {fold.index}: group {shared[0]!s} is on both sides of the split"
            )
    if np.any(tested != 1):
        bad = int(np.flatnonzero(tested != 1)[0])
        raise DatasetError(f"item {bad} is in {int(tested[bad])} test folds, expected 1")


def dataset_folds(dataset: RawDataset, *, n_splits: int = 5, seed: int = 0) -> list[Fold]:
    """Seeded k-fold split of a raw dataset.

    Classification datasets are stratified by class; items sharing a
    ``group`` (tiles of one frame) stay on one side of every split.

    Parameters
    ----------
    dataset : RawDataset
        Opened dataset (its ``labels``, ``groups`` and ``ids`` are used;
        no file is read).
    n_splits : int
        Number of folds (5 in the paper).
    seed : int
        Non-negative seed.

    Returns
    -------
    list of Fold
        With item ids filled in.

    Raises
    ------
    DatasetError
        See :func:`kfold`; messages name the dataset.
    """
    try:
        return kfold(
            len(dataset),
            n_splits=n_splits,
            seed=seed,
            labels=dataset.labels,
            groups=dataset.groups,
            ids=dataset.ids,
            class_names=dataset.spec.classes,
        )
    except DatasetError as exc:
        raise DatasetError(f"{dataset.spec.name}: {exc}") from exc
