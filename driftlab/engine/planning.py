"""Planning steps shared by every experiment: datasets, models, pipelines, devices, weights.

Each helper resolves one part of a configuration against the registry and
turns any problem into a :class:`~driftlab.errors.ConfigError` naming the
config key, so experiments validate everything before a run directory
exists. Nothing here calls the process-wide registry: the caller passes the
registry the run uses.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from driftlab.corruptions.base import CorruptionSpec
from driftlab.datasets.base import DatasetError, DatasetSpec, RawDataset, Sample
from driftlab.datasets.heldout import check_mask_classes, check_no_shared_content
from driftlab.datasets.splits import Fold, dataset_folds
from driftlab.errors import ConfigError
from driftlab.models.base import TaskModelSpec
from driftlab.pipeline import PipelineSpec, SpecError, expand_pipeline_names
from driftlab.registry import Registry, RegistryError

__all__ = [
    "Condition",
    "DatasetTask",
    "HeldOut",
    "ItemSubset",
    "JoinedDataset",
    "check_initial_weights",
    "data_fingerprint",
    "held_out_folds",
    "held_out_manifest",
    "match_classes",
    "open_dataset",
    "open_held_out",
    "output_channels",
    "plan_folds",
    "read_id_list",
    "render_view_keys",
    "resolve_conditions",
    "resolve_model",
    "resolve_pipeline",
    "resolve_pipelines",
    "run_device",
]


def output_channels(spec: DatasetSpec) -> int:
    """Outputs of a task model for ``spec``: one per class, or 1 logit for binary segmentation."""
    classes = len(spec.classes)
    return classes if spec.task == "classification" else (1 if classes <= 2 else classes)


class DatasetTask:
    """What a plan derives from its ``dataset_spec`` (a mixin of the plans of synthesis,
    audit and optimisation): ``task``, the task's default ``metric`` and the model's
    ``output_channels``."""

    __slots__ = ()
    dataset_spec: DatasetSpec

    @property
    def task(self) -> str:
        """``"classification"`` or ``"segmentation"``."""
        return self.dataset_spec.task

    @property
    def metric(self) -> str:
        """The metric the cells record (the task's default)."""
        from driftlab.train.metrics import task_metric_name

        return task_metric_name(self.task)

    @property
    def output_channels(self) -> int:
        """:func:`output_channels` of ``dataset_spec``."""
        return output_channels(self.dataset_spec)


def open_dataset(
    section: Any,
    registry: Registry,
    *,
    intensity: float | None = None,
    where: str = "[dataset]",
) -> tuple[DatasetSpec, RawDataset]:
    """Look the dataset up and open it.

    Parameters
    ----------
    section : DatasetSection
        ``name``, ``data_root``, ``intensity``, ``options``.
    registry : Registry
    intensity : float, optional
        Overrides ``section.intensity``.

    Raises
    ------
    ConfigError
        Unknown dataset (closest name), or the loader refused the options
        or the files.
    """
    try:
        spec = registry.get("datasets", section.name)
    except RegistryError as exc:
        raise ConfigError(f"{where}.name: {exc}") from None
    level = section.intensity if intensity is None else intensity
    camera = getattr(section, "camera", None)
    if camera is not None:
        try:
            registry.camera(camera)
        except RegistryError as exc:
            raise ConfigError(f"{where}.camera: {exc}") from None
        spec = attrs.evolve(spec, camera=camera)
    try:
        dataset = spec.open(
            section.data_root, intensity=level, registry=registry, **section.options
        )
    except (DatasetError, TypeError, ValueError, FileNotFoundError) as exc:
        label = f"{where} at intensity {level:g}" if intensity is not None else where
        raise ConfigError(f"{label}: {exc}") from None
    return spec, dataset


def resolve_model(
    name: str, dataset_spec: DatasetSpec, registry: Registry, where: str = "[model].name"
) -> TaskModelSpec:
    """The task-model declaration ``name``, checked to fit the dataset's task.

    Raises
    ------
    ConfigError
        Unknown name (closest name) or a model of another task.
    """
    try:
        model = registry.get("task_models", name)
    except RegistryError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    if model.task != dataset_spec.task:
        raise ConfigError(
            f"{where}: {model.name!r} is a {model.task} model but dataset "
            f"{dataset_spec.name!r} is a {dataset_spec.task} dataset"
        )
    return model


def resolve_pipelines(
    selection: str | Sequence[str], where: str, registry: Registry
) -> tuple[PipelineSpec, ...]:
    """Pipeline specs of a selection; names must be unique.

    A selection is ``"all"`` (every named pipeline of the registry: the
    paper's twelve and those plugins ship through ``driftlab_pipelines``),
    names, or pipeline TOML files.

    Raises
    ------
    ConfigError
        Unknown name (closest name), unreadable file, repeated names.
    """
    try:
        specs = expand_pipeline_names(selection, registry.items("pipelines"))
    except (SpecError, FileNotFoundError, ValueError) as exc:
        raise ConfigError(f"{where}: {exc}") from None
    names = [s.name for s in specs]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(f"{where}: pipeline names must be unique, repeated: {', '.join(dupes)}")
    return tuple(specs)


def resolve_pipeline(name: str, where: str, registry: Registry) -> PipelineSpec:
    """Exactly one pipeline spec (a name or a TOML file holding one).

    Raises
    ------
    ConfigError
        Unknown, unreadable, or a file with several pipelines.
    """
    specs = resolve_pipelines([name], where, registry)
    if len(specs) != 1:
        raise ConfigError(f"{where}: expected one pipeline, {name!r} gives {len(specs)}")
    return specs[0]


def run_device(device: str, where: str = "[run].device") -> str:
    """The resolved torch device (``cpu``, ``cuda:N``) of a device request.

    Raises
    ------
    ConfigError
        Unknown device or CUDA not available.
    """
    from driftlab.models.device import resolve_device

    try:
        return str(resolve_device(device))
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def check_initial_weights(
    section: Any,
    dataset_spec: DatasetSpec,
    registry: Registry,
    *,
    for_training: bool,
    in_channels: int = 3,
) -> Any:
    """Load ``[model]`` (architecture and optional weights) once to prove it fits, before any work.

    Parameters
    ----------
    section : ModelSection
        ``name``, ``options``, ``weights``, ``key``.
    dataset_spec : DatasetSpec
        Gives the task and the class count the outputs must match.
    registry : Registry
    for_training : bool
        The model will be trained (TorchScript / exported archives cannot).

    Returns
    -------
    driftlab.models.LoadedModel

    Raises
    ------
    ConfigError
        Unreadable or unsafe file, missing checkpoint key, keys, shapes or
        outputs that do not fit (one line naming what to set).
    """
    from driftlab.models.check import check_weights

    try:
        return check_weights(
            section.weights,
            num_classes=output_channels(dataset_spec),
            task=dataset_spec.task,
            name=section.name,
            options=section.options,
            key=getattr(section, "key", None),
            in_channels=in_channels,
            for_training=for_training,
            registry=registry,
        )
    except ConfigError:
        raise
    except (ValueError, FileNotFoundError, RuntimeError, TypeError) as exc:
        first = str(exc).splitlines()[0]
        where = "[model].weights" if section.weights else "[model]"
        raise ConfigError(f"{where}: {first}") from None


def data_fingerprint(dataset: RawDataset) -> str:
    """SHA-256 over every item's id, target and raw mosaic (dtype, shape, bytes).

    Reads every item once; the run identity uses it, so the same config on
    edited data is a different run, and a moved copy of the same data is not.

    Raises
    ------
    ConfigError
        An item cannot be read (naming it).
    """
    digest = hashlib.sha256()
    for index, item_id in enumerate(dataset.ids):
        try:
            sample = dataset[index]
        except (DatasetError, ValueError, OSError) as exc:
            raise ConfigError(f"[dataset]: item {item_id!r} cannot be read: {exc}") from None
        raw = np.ascontiguousarray(sample.raw)
        target = np.ascontiguousarray(np.asarray(sample.target))
        digest.update(f"{item_id}|{raw.dtype.str}|{raw.shape}|{target.dtype.str}|".encode())
        digest.update(raw.tobytes())
        digest.update(target.tobytes())
    return digest.hexdigest()


# -- corruption conditions ---------------------------------------------------------------------


@attrs.frozen
class Condition:
    """One corruption test condition (``severity`` 0 for identity)."""

    corruption: CorruptionSpec
    severity: int

    @property
    def name(self) -> str:
        return self.corruption.name


def resolve_conditions(
    names: str | Sequence[str],
    severities: Sequence[int],
    family: str,
    registry: Registry,
    where: str = "[corruptions]",
) -> tuple[Condition, ...]:
    """Corruption x severity conditions of a ``[corruptions]`` section.

    Parameters
    ----------
    names : str or sequence of str
        ``"paper"`` (the paper's list, :data:`~driftlab.corruptions.protocol.PAPER_CORRUPTIONS`),
        ``"all"`` (every registered corruption), one name or a list of names.
    severities : sequence of int
        Severities 1..5 of every corruption that has several; ``identity``
        and single-severity corruptions get one condition of severity 0.
    family : str
        Severity tables (``"imagenet-c"`` or ``"cifar-c"``).

    Raises
    ------
    ConfigError
        An unknown corruption (closest name), a family it lacks, or a
        severity it does not have.
    """
    from driftlab.corruptions.apply import get_corruption
    from driftlab.corruptions.protocol import PAPER_CORRUPTIONS

    if names == "paper":
        names = list(PAPER_CORRUPTIONS)
    elif names == "all":
        names = registry.names("corruptions")
    elif isinstance(names, str):
        names = [names]
    out: list[Condition] = []
    for name in names:
        try:
            spec = get_corruption(name, registry, family=family)
        except (RegistryError, ValueError) as exc:
            raise ConfigError(f"{where}.names: {exc}") from None
        if len(spec.severities) == 1 or name == "identity":
            out.append(Condition(spec, 0))
            continue
        for severity in severities:
            if severity not in spec.severities:
                raise ConfigError(
                    f"{where}.severities: corruption {name!r} has severities "
                    f"{list(spec.severities)}, got {severity}"
                )
            out.append(Condition(spec, int(severity)))
    return tuple(out)


# -- fixed held-out test sets ------------------------------------------------------------------


class ItemSubset(RawDataset):
    """Some items of a dataset, optionally relabelled into another class list.

    Parameters
    ----------
    base : RawDataset
        The opened dataset.
    index : array-like of int
        ``(n,)`` item indices into ``base``, in the order the subset lists
        them (kept as :attr:`positions`).
    classes : sequence of str, optional
        Class names of the subset's labels (default: ``base.spec.classes``).
    class_map : array-like of int, optional
        ``(len(base.spec.classes),)`` new class index of each of ``base``'s
        classes (classification; -1 for a class absent from ``classes``,
        which no selected item may carry).
    """

    def __init__(
        self,
        base: RawDataset,
        index: Sequence[int] | np.ndarray,
        *,
        classes: Sequence[str] | None = None,
        class_map: Sequence[int] | np.ndarray | None = None,
    ) -> None:
        spec = base.spec if classes is None else attrs.evolve(base.spec, classes=tuple(classes))
        super().__init__(spec, base.intensity)
        self.base = base
        self.positions = np.asarray(index, dtype=np.int64)
        self.class_map = None if class_map is None else np.asarray(class_map, dtype=np.int64)
        self.skipped = list(base.skipped)
        self.notes = list(base.notes)
        self.camera_source = base.camera_source
        base_ids = base.ids
        self._ids = [base_ids[i] for i in self.positions]

    def __len__(self) -> int:
        return len(self.positions)

    @property
    def ids(self) -> list[str]:
        return list(self._ids)

    @property
    def labels(self) -> np.ndarray | None:
        labels = self.base.labels
        if labels is None:
            return None
        picked = np.asarray(labels, dtype=np.int64)[self.positions]
        return picked if self.class_map is None else self.class_map[picked]

    @property
    def groups(self) -> list[str]:
        groups = self.base.groups
        return [groups[i] for i in self.positions]

    def load(self, index: int) -> Sample:
        sample = self.base[int(self.positions[index])]
        if self.class_map is None or self.spec.task != "classification":
            return sample
        return attrs.evolve(sample, target=int(self.class_map[int(sample.target)]))


class JoinedDataset(RawDataset):
    """Training items followed by fixed test items, in one index space.

    Items ``0 .. len(train) - 1`` are ``train``'s, the rest ``test``'s. The
    two parts may come from different cameras: :attr:`parts` gives each
    part with its camera (:func:`render_view_keys` renders each with its own).
    ``spec`` is the training part's (its classes; ``test``'s labels are in
    that class order already, see :func:`open_held_out`).
    """

    def __init__(self, train: RawDataset, test: RawDataset) -> None:
        super().__init__(train.spec, train.intensity)
        self.train = train
        self.test = test
        self.skipped = [*train.skipped, *test.skipped]
        self.notes = [*train.notes, *test.notes]
        self.camera_source = train.camera_source
        self._n = len(train)

    @property
    def parts(self) -> tuple[RawDataset, RawDataset]:
        """``(train, test)``."""
        return self.train, self.test

    def __len__(self) -> int:
        return self._n + len(self.test)

    @property
    def ids(self) -> list[str]:
        return [*self.train.ids, *self.test.ids]

    @property
    def labels(self) -> np.ndarray | None:
        a, b = self.train.labels, self.test.labels
        if a is None or b is None:
            return None
        return np.concatenate([np.asarray(a, np.int64), np.asarray(b, np.int64)])

    @property
    def groups(self) -> list[str]:
        return [*self.train.groups, *(f"test:{g}" for g in self.test.groups)]

    def load(self, index: int) -> Sample:
        if index < self._n:
            return self.train[index]
        return self.test[index - self._n]


@attrs.frozen
class HeldOut:
    """A training set and a fixed held-out test set (from ``[test]``).

    Attributes
    ----------
    train : RawDataset
        The items models are trained on (``[dataset]``, less ``[test] ids``).
    test : RawDataset
        The fixed test items; for classification their labels are indices
        into ``train.spec.classes`` (matched by name) and ``spec.classes``
        is the training class list.
    source : str
        What the test set is, for reports (e.g. ``"split 'val' of bccd-cells"``).
    notes : tuple of str
        Facts worth reporting (training classes without test items ...).
    """

    train: RawDataset
    test: RawDataset
    source: str
    notes: tuple[str, ...] = ()

    def joined(self, where: str = "[test]") -> JoinedDataset:
        """Training items then test items in one index space (raw sizes must agree).

        Raises
        ------
        ConfigError
            The two sets' raw mosaics differ in size (their views are stacked
            together); naming both sizes.
        """
        if len(self.train) and len(self.test):
            a = np.shape(self.train[0].raw)
            b = np.shape(self.test[0].raw)
            if a != b:
                raise ConfigError(
                    f"{where}: test items are {b[0]}x{b[1]} mosaics but training items are "
                    f"{a[0]}x{a[1]}; set the test set's size options (e.g. crop_size) to match"
                )
        return JoinedDataset(self.train, self.test)

    @property
    def test_index(self) -> np.ndarray:
        """``(len(test),)`` indices of the test items in :meth:`joined`."""
        return np.arange(len(self.train), len(self.train) + len(self.test), dtype=np.int64)


def read_id_list(path: str | Path, where: str = "[test].ids") -> list[str]:
    """Item ids (or groups) of an id list: the first token of every non-empty line.

    Lines starting with ``#`` are comments. Raises :class:`ConfigError` for an
    unreadable file, a file that is not UTF-8 text or a list without ids.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{where}: cannot read {path} as a UTF-8 id list ({exc})") from None
    out = []
    for line in text.splitlines():
        tokens = line.split()
        if tokens and not tokens[0].startswith("#"):
            out.append(tokens[0])
    if not out:
        raise ConfigError(f"{where}: {path} lists no ids")
    return out


def _class_labels(dataset: RawDataset) -> np.ndarray:
    labels = dataset.labels
    if labels is not None:
        return np.asarray(labels, dtype=np.int64)
    return np.asarray([int(dataset[i].target) for i in range(len(dataset))], dtype=np.int64)


def match_classes(
    train_spec: DatasetSpec, test: RawDataset, where: str = "[test]"
) -> tuple[np.ndarray | None, tuple[str, ...]]:
    """Match the test set's classes to the training set's by name.

    Parameters
    ----------
    train_spec : DatasetSpec
        The training set's declaration (its ``classes`` order is the model's).
    test : RawDataset
        The opened test set.

    Returns
    -------
    (class_map, notes)
        ``class_map``: ``(len(test.spec.classes),)`` int64 training index of
        each test class (-1 for a declared test class no test item carries
        and the training set lacks), or None when the lists are identical;
        ``notes``: training classes without test items.

    Raises
    ------
    ConfigError
        Another task; a test class (carried by test items) that the
        training set does not have; for segmentation, other class lists.
        The message names the classes.
    """
    if test.spec.task != train_spec.task:
        raise ConfigError(
            f"{where}: the test set {test.spec.name!r} is a {test.spec.task} dataset but the "
            f"training set {train_spec.name!r} is a {train_spec.task} dataset"
        )
    train_classes = tuple(train_spec.classes)
    test_classes = tuple(test.spec.classes)
    if train_spec.task != "classification":
        try:  # mask values are class indices: the same classes in the same order
            check_mask_classes(train_spec, test.spec, where)
        except DatasetError as exc:
            raise ConfigError(str(exc)) from None
        return None, ()
    labels = _class_labels(test)
    present = sorted({int(v) for v in labels})
    bad = [v for v in present if not 0 <= v < len(test_classes)]
    if bad:
        raise ConfigError(f"{where}: test items carry class indices {bad} outside its class list")
    unknown = [test_classes[v] for v in present if test_classes[v] not in train_classes]
    if unknown:
        raise ConfigError(
            f"{where}: test class(es) {', '.join(unknown)} are not classes of the training set "
            f"(training classes: {', '.join(train_classes)}); classes are matched by name"
        )
    tested = {test_classes[v] for v in present}
    missing = [c for c in train_classes if c not in tested]
    notes = (f"training class(es) without test items: {', '.join(missing)}",) if missing else ()
    if test_classes == train_classes:
        return None, notes
    mapping = [train_classes.index(c) if c in train_classes else -1 for c in test_classes]
    return np.asarray(mapping, dtype=np.int64), notes


def _test_options(section: Any, test: Any, spec: DatasetSpec, same: bool) -> dict[str, Any]:
    options = {**(dict(section.options) if same else {}), **dict(test.options)}
    if test.split is not None:
        if "image_set" not in spec.options:
            raise ConfigError(
                f"[test].split: dataset {spec.name!r} has no named splits (no 'image_set' "
                'option); name the test items with [test] ids = "ids.txt" or give a second '
                "dataset ([test] name / data_root)"
            )
        if "image_set" in test.options:
            raise ConfigError("[test]: set either split or options.image_set, not both")
        options["image_set"] = test.split
    return options


def _select_ids(
    train: RawDataset, path: str, where: str = "[test].ids"
) -> tuple[np.ndarray, np.ndarray]:
    wanted = read_id_list(path, where)
    ids, groups = train.ids, train.groups
    wanted_set = set(wanted)
    chosen = np.asarray(
        [i for i, (a, g) in enumerate(zip(ids, groups, strict=True))
         if a in wanted_set or g in wanted_set],
        dtype=np.int64,
    )  # fmt: skip
    known = set(ids) | set(groups)
    unknown = [w for w in dict.fromkeys(wanted) if w not in known]
    if unknown:
        shown = ", ".join(repr(u) for u in unknown[:5])
        more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
        raise ConfigError(
            f"{where}: {len(unknown)} id(s) of {path} are neither item ids nor groups of "
            f"{train.spec.name!r}: {shown}{more}"
        )
    rest = np.setdiff1d(np.arange(len(train)), chosen)
    if not len(rest):
        raise ConfigError(
            f"{where}: {path} lists every item of [dataset]; none is left to train on"
        )
    shared = sorted({groups[i] for i in chosen} & {groups[i] for i in rest})
    if shared:
        raise ConfigError(
            f"{where}: group(s) {', '.join(shared[:5])} would sit in both the training and the "
            "test set; list whole groups (e.g. photograph stems) in the id list"
        )
    return chosen, rest


def open_held_out(
    section: Any,
    test: Any,
    registry: Registry,
    *,
    train: RawDataset | None = None,
    intensity: float | None = None,
) -> HeldOut | None:
    """Open the fixed test set of ``[test]`` next to the training set of ``[dataset]``.

    Parameters
    ----------
    section : DatasetSection
        ``[dataset]`` (``name``, ``data_root``, ``options``; ``intensity``
        unless given here).
    test : TestSection
        ``[test]``; when it sets nothing, the run has no held-out set.
    registry : Registry
    train : RawDataset, optional
        ``[dataset]`` already opened (else it is opened here).
    intensity : float, optional
        Light level of both sets (optimisation opens one pair per level);
        ``[test] intensity`` must then be unset.

    Returns
    -------
    HeldOut or None
        None without a ``[test]`` set.

    Raises
    ------
    ConfigError
        An unknown dataset or option, ``ids`` combined with other keys,
        ``split`` for a dataset without named splits, unknown ids, a group
        on both sides, training and test sets sharing items, another task,
        test classes the training set lacks (naming them), for segmentation another
        class list or order, or test items holding the same raw data as training
        items under other ids
        (:func:`driftlab.datasets.heldout.check_no_shared_content`, naming pairs).
    """
    if not test.given:
        return None
    if train is None:
        _, train = open_dataset(section, registry, intensity=intensity)
    if test.ids is not None:
        others = [k for k in ("name", "data_root", "intensity", "split") if getattr(test, k)]
        others += ["options"] if test.options else []
        if others:
            raise ConfigError(
                f"[test]: ids selects test items of [dataset]; remove {', '.join(others)} "
                "(or drop ids to name a second dataset or split)"
            )
        chosen, rest = _select_ids(train, test.ids)
        held_out = HeldOut(
            train=ItemSubset(train, rest),
            test=ItemSubset(train, chosen),
            source=f"the {len(chosen)} items of {train.spec.name} listed in {Path(test.ids).name}",
        )
        _refuse_shared_content(held_out.train, held_out.test)
        return held_out
    if intensity is not None and test.intensity is not None:
        raise ConfigError(
            "[test].intensity: this run opens the test set at each [dataset] intensity; "
            "remove [test].intensity"
        )
    name = test.name or section.name
    same = name == section.name
    try:
        spec = registry.get("datasets", name)
    except RegistryError as exc:
        raise ConfigError(f"[test].name: {exc}") from None
    from driftlab.engine.config import DatasetSection

    level = (
        test.intensity
        if test.intensity is not None
        else (intensity if intensity is not None else float(section.intensity))
    )
    data_root = test.data_root if test.data_root is not None else (
        section.data_root if same else None
    )  # fmt: skip
    options = _test_options(section, test, spec, same)
    opened = DatasetSection(name=name, data_root=data_root, intensity=level, options=options)
    _, held = open_dataset(opened, registry, where="[test]")
    if same and data_root == section.data_root:
        overlap = sorted(set(train.ids) & set(held.ids))
        if overlap:
            raise ConfigError(
                f"[test]: {len(overlap)} item(s) are in both the training and the test set "
                f"(e.g. {', '.join(overlap[:3])}); choose disjoint splits, e.g. [dataset] "
                'options.image_set = "train" and [test] split = "val"'
            )
        # generated datasets (no files) name their groups per seed-independent slide: only
        # files on disk make a shared group a shared source
        shared = sorted(set(train.groups) & set(held.groups)) if data_root is not None else []
        if shared:
            raise ConfigError(
                f"[test]: group(s) {', '.join(shared[:3])} have items in both the training and "
                "the test set (e.g. crops of one photograph); choose disjoint splits"
            )
    class_map, notes = match_classes(train.spec, held)
    _refuse_shared_content(train, held)
    if class_map is not None:
        held = ItemSubset(held, np.arange(len(held)), classes=train.spec.classes,
                          class_map=class_map)  # fmt: skip
    what = f"split {test.split!r} of {name}" if test.split else f"dataset {name}"
    if test.data_root is not None:
        what += f" at {test.data_root}"
    return HeldOut(train=train, test=held, source=what, notes=notes)


def _refuse_shared_content(train: RawDataset, test: RawDataset) -> None:
    """:func:`driftlab.datasets.heldout.check_no_shared_content` as a :class:`ConfigError`."""
    try:
        check_no_shared_content(train, test, "[test]")
    except DatasetError as exc:
        raise ConfigError(str(exc)) from None


def held_out_folds(
    held: HeldOut, n_splits: int, seed: int, where: str = "[training].folds"
) -> tuple[Fold, ...]:
    """Folds of a run with a fixed test set (indices into :meth:`HeldOut.joined`).

    With ``n_splits`` = 1 one model is trained on every training item; with
    k >= 2 fold ``i``'s model is trained on the training part of the k-fold
    split of the training set (for spread), and every fold is tested on the
    same fixed test items.

    Raises
    ------
    ConfigError
        Folds that cannot be made from the training items.
    """
    test = held.test_index
    test_ids = held.test.ids
    train_ids = held.train.ids
    if n_splits == 1:
        trains = [np.arange(len(held.train), dtype=np.int64)]
    else:
        try:
            trains = [f.train for f in dataset_folds(held.train, n_splits=n_splits, seed=seed)]
        except DatasetError as exc:
            raise ConfigError(f"{where}: {exc}") from None
    return tuple(
        Fold(k, train, test, [train_ids[i] for i in train], test_ids)
        for k, train in enumerate(trains)
    )


def plan_folds(
    dataset: RawDataset,
    held: HeldOut | None,
    n_splits: int,
    seed: int,
    where: str = "[training].folds",
) -> tuple[Fold, ...]:
    """k-fold cross-validation on ``dataset``, or :func:`held_out_folds` with a test set.

    Raises
    ------
    ConfigError
        Fewer than 2 folds without a ``[test]`` set, or folds the items
        cannot make.
    """
    if held is not None:
        return held_out_folds(held, n_splits, seed, where)
    if n_splits < 2:
        raise ConfigError(
            f"{where}: expected an integer >= 2 for k-fold cross-validation, got {n_splits} "
            "(one fold needs a fixed test set: add a [test] section)"
        )
    try:
        return tuple(dataset_folds(dataset, n_splits=n_splits, seed=seed))
    except DatasetError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def render_view_keys(
    cache: Any,
    dataset: RawDataset,
    pipelines: Sequence[PipelineSpec],
    *,
    registry: Registry,
    workers: int = 0,
    progress: Any = None,
    device: str = "cpu",
) -> tuple[dict[str, list[str]], dict[str, float]]:
    """Render every view of ``dataset`` into a :class:`~driftlab.cache.ViewCache`.

    A :class:`JoinedDataset` is rendered part by part, each with its own
    camera (a held-out set may come from another camera), by the fast
    batched path on ``device``; ``progress(done, total)`` counts items over
    all parts.

    Returns
    -------
    (keys, counts)
        ``keys``: pipeline name -> the cache key of every item's view, in
        item order; ``counts``: ``rendered``, ``reused``, ``repaired`` views
        and ``seconds``.
    """
    parts = dataset.parts if isinstance(dataset, JoinedDataset) else (dataset,)
    keys: dict[str, list[str]] = {p.name: [] for p in pipelines}
    counts = {"rendered": 0, "reused": 0, "repaired": 0, "seconds": 0.0}
    total, before = sum(len(p) for p in parts), 0
    for part in parts:
        offset = before

        def step(done: int, _: int, offset: int = offset) -> None:
            if progress is not None:
                progress(offset + done, total)

        report = cache.render(
            part,
            list(pipelines),
            camera=part.spec.camera,
            registry=registry,
            workers=int(workers),
            progress=step,
            device=device,
        )
        before += len(part)
        for name, part_keys in report.keys.items():
            keys[name].extend(part_keys)
        counts["rendered"] += report.rendered
        counts["reused"] += report.reused
        counts["repaired"] += report.repaired
        counts["seconds"] += report.seconds
    return keys, counts


def held_out_manifest(held: HeldOut | None) -> dict[str, Any] | None:
    """What a run's manifest records of its fixed test set (None without one)."""
    if held is None:
        return None
    return {
        "source": held.source,
        "dataset": held.test.spec.name,
        "train_items": len(held.train),
        "test_items": len(held.test),
        "test_ids_sha256": hashlib.sha256("\n".join(held.test.ids).encode()).hexdigest(),
        "notes": list(held.notes),
    }
