"""Dataset declarations: what a dataset plugin returns from ``driftlab_datasets``.

A :class:`DatasetSpec` declares a raw dataset (task, classes, camera,
intensity levels) and how to open it; opening returns a :class:`RawDataset`,
a sequence of :class:`Sample` objects with raw mosaics normalised to [0, 1].
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np

from driftlab.camera import CameraParams
from driftlab.errors import DriftlabError

if TYPE_CHECKING:  # the registry imports dataset declarations lazily; avoid a cycle
    from driftlab.registry import Registry

__all__ = ["TASKS", "DatasetError", "DatasetSpec", "RawDataset", "Sample"]

TASKS: tuple[str, ...] = ("classification", "segmentation")


class DatasetError(DriftlabError, ValueError):
    """A dataset is missing, malformed or asked for something it does not have."""

    exit_code = 2


@attrs.frozen
class Sample:
    """One item of a raw dataset.

    Attributes
    ----------
    raw : numpy.ndarray
        ``(H, W)`` float32 Bayer mosaic in [0, 1] (stored value / white level),
        H and W even.
    target : int or numpy.ndarray
        Class index into ``DatasetSpec.classes`` (classification), or an
        ``(H, W)`` uint8 mask with 1 on the object class (segmentation).
    meta : mapping
        At least ``id`` (unique, stable string) and ``group`` (items sharing a
        group, e.g. tiles of one frame, never straddle a split); loaders add
        ``path``, ``intensity`` and what else they know.
    """

    raw: np.ndarray
    target: int | np.ndarray
    meta: Mapping[str, Any] = attrs.field(factory=dict)


class RawDataset(Sequence[Sample]):
    """Indexable raw dataset returned by :meth:`DatasetSpec.open`.

    Subclasses implement :meth:`__len__`, :meth:`load` and the index
    properties; items are loaded lazily.

    Attributes
    ----------
    spec : DatasetSpec
        The declaration this dataset was opened from (loaders whose classes
        or camera are only known once the files are read return a copy with
        those fields filled in).
    intensity : float
        Light level relative to the full-intensity capture (1.0 = full).
    skipped : list of str
        One message per file or label entry left out when the dataset was
        opened with ``skip_bad=True`` (each names the path and the reason);
        empty otherwise.
    notes : list of str
        Entries left out by design (rare classes, unlabelled files ...);
        informative, never an error.
    camera_source : str
        Where ``spec.camera`` came from (the declaration, a profile named in
        the options, file metadata ...), for ``driftlab data check``.
    """

    def __init__(self, spec: DatasetSpec, intensity: float = 1.0) -> None:
        self.spec = spec
        self.intensity = float(intensity)
        self.skipped: list[str] = []
        self.notes: list[str] = []
        self.camera_source = f"the declaration of {spec.name}"

    def __len__(self) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    def load(self, index: int) -> Sample:  # pragma: no cover - abstract
        """Read item ``index`` (0 <= index < len)."""
        raise NotImplementedError

    @property
    def ids(self) -> list[str]:  # pragma: no cover - abstract
        """Stable identifier of every item, in index order."""
        raise NotImplementedError

    @property
    def labels(self) -> np.ndarray | None:
        """``(N,)`` int64 class index per item for classification, else None."""
        return None

    @property
    def groups(self) -> list[str]:
        """Split group of every item; by default each item is its own group."""
        return list(self.ids)

    def content_digest(self, index: int) -> str:
        """Digest of what item ``index`` shows, to find copies of an item under another id.

        The default is :func:`driftlab.cache.raw_digest` of the item's raw
        mosaic (SHA-256 of its dtype, shape and bytes), so reading it costs
        one :meth:`load`. Loaders whose mosaics hold noise drawn per item id
        (a renamed copy would get other noise) digest the noise-free source
        instead, and wrappers that re-expose a dataset at another light level
        digest the item of the dataset they wrap; equal digests therefore
        mean the same source content, whatever the id, light level or noise.

        Parameters
        ----------
        index : int
            ``0 <= index < len(self)``.

        Returns
        -------
        str
            64 hex characters (a loader may prefix its own kind, e.g. ``bccd:``).

        Raises
        ------
        DatasetError
            The item cannot be read (as :meth:`load`).
        """
        from driftlab.cache import raw_digest  # the view cache's digest (lazy: no cycle)

        return raw_digest(self[index].raw)

    def recipe_digest(self, index: int) -> str | None:
        """Digest of how a generated item is made, or None for data read from files.

        Generated datasets return a digest of what determines the item's
        scene (generator, seed, position, size), so that comparing two
        generated datasets needs no rendering; two items with equal recipes
        show the same scene. None (the default) means: compare
        :meth:`content_digest` instead.

        Parameters
        ----------
        index : int
            ``0 <= index < len(self)``.

        Returns
        -------
        str or None
        """
        return None

    def __getitem__(self, index: int) -> Sample:  # type: ignore[override]
        if not isinstance(index, (int, np.integer)):
            raise TypeError(f"dataset index must be an int, got {type(index).__name__}")
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"index {index} out of range for {self.spec.name} with {n} items")
        return self.load(int(index) % n)


def _check_task(instance: object, attribute: attrs.Attribute, value: str) -> None:
    if value not in TASKS:
        raise ValueError(f"dataset task must be one of {TASKS}, got {value!r}")


def _check_camera(instance: object, attribute: attrs.Attribute, value: object) -> None:
    if isinstance(value, CameraParams):
        return
    if not isinstance(value, str) or not value:
        raise ValueError(
            f"dataset camera must be a CameraParams or the name of a camera profile, got {value!r}"
        )


def _accepts_keyword(function: Callable[..., Any], name: str) -> bool:
    try:
        parameters = inspect.signature(function).parameters
    except (TypeError, ValueError):  # builtins or C callables without a signature
        return False
    found = parameters.get(name)
    return found is not None and found.kind in (
        inspect.Parameter.KEYWORD_ONLY,
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
    )


def _opener_options(function: Callable[..., Any]) -> list[str] | None:
    """Keyword options of an opener, or None when it takes ``**kwargs`` (or has no signature)."""
    try:
        parameters = list(inspect.signature(function).parameters.values())
    except (TypeError, ValueError):
        return None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return None
    return [
        p.name
        for p in parameters[3:]
        if p.kind in (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        and p.name != "registry"
    ]


@attrs.frozen
class DatasetSpec:
    """Declaration of a raw dataset.

    Parameters
    ----------
    name : str
        Registry name (``raw-microscopy`` ...).
    task : {"classification", "segmentation"}
        What targets mean.
    description : str
        One line for ``driftlab data list``.
    classes : tuple of str
        Class names (classification) or ``("background", "car")`` style
        names (segmentation).
    camera : CameraParams or str
        Camera the raw data was captured (or simulated) with, or the name of
        a camera profile resolved through the registry when the dataset is
        opened (datasets reach profiles declared by other plugins this way,
        never by importing a plugin module).
    opener : callable
        ``opener(spec, data_root, intensity, **options) -> RawDataset``; it
        receives the spec with the camera resolved, and ``registry=`` too
        when it declares a keyword parameter of that name.
    intensities : tuple of float
        Light levels available as real captures (1.0 = full); other levels
        are simulated.
    needs_data_root : bool
        Whether a local copy of files is required (``--data-root``).
    checker : callable or None
        ``checker(spec, data_root) -> list of problem strings`` used by
        ``driftlab data check``.
    reference : str
        Source of the data (paper, DOI).
    options : mapping of str to str
        Loader-specific keyword options accepted by :meth:`open`, each with
        a one-line description (shown by ``driftlab data list``). When any
        are declared, :meth:`open` rejects every other option with the
        closest declared name.
    n_items : int or None
        Number of items at full intensity in the published copy, if fixed.
    image_shape : tuple of int or None
        ``(H, W)`` of every raw item in the published copy, if fixed.
    """

    name: str
    task: str = attrs.field(validator=_check_task)
    description: str
    classes: tuple[str, ...] = attrs.field(converter=tuple)
    camera: CameraParams | str = attrs.field(validator=_check_camera)
    opener: Callable[..., RawDataset] = attrs.field(eq=False)
    intensities: tuple[float, ...] = attrs.field(default=(1.0,), converter=tuple)
    needs_data_root: bool = True
    checker: Callable[[DatasetSpec, Path], list[str]] | None = attrs.field(default=None, eq=False)
    reference: str = ""
    options: dict[str, str] = attrs.field(factory=dict, converter=dict)
    n_items: int | None = None
    image_shape: tuple[int, int] | None = attrs.field(
        default=None, converter=attrs.converters.optional(tuple)
    )

    @property
    def camera_name(self) -> str:
        """Name of the camera profile (resolved or not)."""
        return self.camera.name if isinstance(self.camera, CameraParams) else self.camera

    def resolve_camera(self, registry: Registry | None = None) -> CameraParams:
        """The camera as :class:`~driftlab.camera.CameraParams`.

        Parameters
        ----------
        registry : Registry, optional
            Needed when :attr:`camera` is a profile name.

        Raises
        ------
        DatasetError
            A profile name without a registry, or a name the registry does
            not know (with the closest one).
        """
        if isinstance(self.camera, CameraParams):
            return self.camera
        if registry is None:
            raise DatasetError(
                f"{self.name}: its camera is the profile {self.camera!r}, looked up in the plugin "
                "registry; open it with registry=... (DatasetSpec.open(..., registry=registry))"
            )
        from driftlab.registry import RegistryError

        try:
            return registry.camera(self.camera)
        except RegistryError as exc:
            raise DatasetError(f"{self.name}: camera: {exc}") from None

    def check_options(self, options: Mapping[str, Any]) -> dict[str, Any]:
        """Reject options the dataset does not declare.

        Parameters
        ----------
        options : mapping
            Loader options as given by the user (config or ``-o KEY=VALUE``).

        Returns
        -------
        dict
            The same options.

        Raises
        ------
        DatasetError
            An option that is not declared in :attr:`options` (or, for a
            dataset that declares none, not a keyword of its opener), naming
            the closest valid one and listing them all.
        """
        from driftlab.registry import suggest

        valid = list(self.options) if self.options else _opener_options(self.opener)
        if valid is None:
            return dict(options)
        for key in options:
            if key not in valid:
                raise DatasetError(
                    f"{self.name}: unknown option {key!r}{suggest(key, valid)}; options: "
                    + (", ".join(valid) or "none")
                )
        return dict(options)

    def open(
        self,
        data_root: str | Path | None = None,
        *,
        intensity: float = 1.0,
        registry: Registry | None = None,
        **options: Any,
    ) -> RawDataset:
        """Open the dataset.

        Parameters
        ----------
        data_root : str or Path, optional
            Local copy of the files; required when :attr:`needs_data_root`.
        intensity : float
            Light level in (0, 1]; real captures when listed in
            :attr:`intensities`, simulated otherwise.
        registry : Registry, optional
            Plugin registry the camera profile (and any profile named in the
            options) is looked up in; required when :attr:`camera` is a name.
        **options
            Loader-specific options (crop size, ``skip_bad`` ...), checked
            with :meth:`check_options`.

        Returns
        -------
        RawDataset
            Its ``spec`` carries the resolved camera.

        Raises
        ------
        DatasetError
            Missing data root, intensity outside (0, 1], an unknown option
            (with the closest valid one), an unresolvable camera, or loader
            errors.
        """
        if not 0.0 < float(intensity) <= 1.0:
            raise DatasetError(f"{self.name}: intensity must lie in (0, 1], got {intensity}")
        options = self.check_options(options)
        if self.needs_data_root and data_root is None:
            raise DatasetError(
                f"{self.name}: needs a local copy of its files (--data-root); {self.reference}"
            )
        root = Path(data_root) if data_root is not None else None
        spec = attrs.evolve(self, camera=self.resolve_camera(registry))
        if _accepts_keyword(self.opener, "registry"):
            options["registry"] = registry
        try:
            dataset = self.opener(spec, root, float(intensity), **options)
        except TypeError as exc:
            if "unexpected keyword argument" not in str(exc):
                raise
            known = _opener_options(self.opener)
            raise DatasetError(
                f"{self.name}: {exc}; options: {', '.join(known or []) or 'none'}"
            ) from None
        if (
            isinstance(self.camera, str)
            and dataset.camera_source == f"the declaration of {spec.name}"
        ):
            dataset.camera_source = f"profile {self.camera!r} from the plugin registry"
        return dataset
