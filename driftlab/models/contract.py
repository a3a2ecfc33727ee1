"""What a frozen model expects as input: :class:`InputContract`.

An audited model was trained on views made a certain way; the contract
states that way so the audit feeds it the same kind of input:

``train_pipeline``
    name of the ISP pipeline the model was trained on (the audit's
    reference column), e.g. ``"bi,s,ga"``;
``mean``, ``std``
    per-channel normalisation ``(x - mean) / std``, in the units of
    ``value_range``; omitted: none;
``size``
    ``[H, W]`` (or one integer for a square) the model takes; omitted: the
    views' own size;
``value_range``
    ``[lo, hi]`` the model's input pixels span, e.g. ``[0, 1]`` (default) or
    ``[0, 255]``.

:meth:`InputContract.apply` turns views ``(N, 3, h, w)`` in [0, 1] into the
model's input in three steps:

1. **Geometry** (only when ``size = (H, W)`` differs from ``(h, w)``):
   scale by ``s = max(H / h, W / w)`` so that the image covers the target
   (aspect ratio kept; new size ``(max(H, round(s h)), max(W, round(s w)))``),
   with bilinear interpolation (``align_corners=False``, antialiased when
   shrinking, as torchvision's ``Resize`` and PIL do), then crop the centre
   ``(H, W)`` (offsets ``(new - target) // 2``, as torchvision's
   ``CenterCrop``). With equal aspect ratios this is a plain resize.
2. **Range**: ``x = lo + x (hi - lo)``.
3. **Normalisation**: ``x = (x - mean) / std`` per channel.

:meth:`InputContract.apply_masks` applies the same geometry to segmentation
masks with nearest-neighbour sampling.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import attrs
import numpy as np
import torch
import torch.nn.functional as F

from driftlab.configtools import ConfigError
from driftlab.registry import suggest

if TYPE_CHECKING:
    from driftlab.models.loading import LoadedModel

__all__ = ["MAX_INPUT_SIDE", "InputContract", "InputContractError"]

MAX_INPUT_SIDE = 8192
"""Largest accepted ``size`` side, in pixels (a guard against typos that would allocate GiB)."""


class InputContractError(ConfigError):
    """An input contract is invalid, or views do not suit it."""


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _channels(instance: InputContract, attribute: attrs.Attribute, value: Any) -> None:
    if value is None:
        return
    if (
        not isinstance(value, tuple)
        or not value
        or not all(_is_number(v) and math.isfinite(v) for v in value)
    ):
        raise InputContractError(
            f"{attribute.name} must be a non-empty list of finite numbers, got {value!r}"
        )


def _to_floats(value: Any) -> Any:
    if value is None or isinstance(value, (str, bytes)):
        return value
    if _is_number(value):
        return (float(value),)
    try:
        return tuple(float(v) if _is_number(v) else v for v in value)
    except TypeError:
        return value


def _to_size(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        return (value, value)
    if isinstance(value, (list, tuple)):
        return tuple(value)
    return value


def _check_size(instance: InputContract, attribute: attrs.Attribute, value: Any) -> None:
    if value is None:
        return
    if (
        not isinstance(value, tuple)
        or len(value) != 2
        or not all(
            isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= MAX_INPUT_SIDE
            for v in value
        )
    ):
        raise InputContractError(
            f"size must be [H, W] (or one integer) with sides 1..{MAX_INPUT_SIDE} pixels, "
            f"got {value!r}"
        )


def _check_range(instance: InputContract, attribute: attrs.Attribute, value: Any) -> None:
    if (
        not isinstance(value, tuple)
        or len(value) != 2
        or not all(_is_number(v) and math.isfinite(v) for v in value)
        or not value[0] < value[1]
    ):
        raise InputContractError(
            f"value_range must be [lo, hi] with finite lo < hi, e.g. [0, 1] or [0, 255]; "
            f"got {value!r}"
        )


def _check_pipeline(instance: InputContract, attribute: attrs.Attribute, value: Any) -> None:
    if value is not None and (not isinstance(value, str) or not value.strip()):
        raise InputContractError(
            f'train_pipeline must be a pipeline name such as "bi,s,ga", got {value!r}'
        )


@attrs.frozen
class InputContract:
    """How views become the input of a frozen model (see the module docstring).

    Parameters
    ----------
    train_pipeline : str, optional
        Pipeline the model was trained on (the reference column).
    mean, std : sequence of float, optional
        Per-channel normalisation in ``value_range`` units; both or neither;
        one value per input channel, ``std > 0``.
    size : (int, int) or int, optional
        ``(H, W)`` of the model's input, sides 1..:data:`MAX_INPUT_SIDE`.
    value_range : (float, float)
        ``(lo, hi)`` the model's pixels span; default ``(0, 1)``.

    Raises
    ------
    InputContractError
        On any invalid field (naming it).
    """

    KEYS: ClassVar[tuple[str, ...]] = ("train_pipeline", "mean", "std", "size", "value_range")

    train_pipeline: str | None = attrs.field(default=None, validator=_check_pipeline)
    mean: tuple[float, ...] | None = attrs.field(
        default=None, converter=_to_floats, validator=_channels
    )
    std: tuple[float, ...] | None = attrs.field(
        default=None, converter=_to_floats, validator=_channels
    )
    size: tuple[int, int] | None = attrs.field(
        default=None, converter=_to_size, validator=_check_size
    )
    value_range: tuple[float, float] = attrs.field(
        default=(0.0, 1.0), converter=_to_floats, validator=_check_range
    )

    def __attrs_post_init__(self) -> None:
        if (self.mean is None) != (self.std is None):
            given, other = ("mean", "std") if self.mean is not None else ("std", "mean")
            raise InputContractError(f"{given} is set but {other} is not: give both or neither")
        if self.mean is not None and self.std is not None:
            if len(self.mean) != len(self.std):
                raise InputContractError(
                    f"mean has {len(self.mean)} values but std has {len(self.std)}"
                )
            if min(self.std) <= 0:
                raise InputContractError(f"std must be > 0, got {list(self.std)}")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "[model]") -> InputContract:
        """Build a contract from a config table, checking every key.

        Parameters
        ----------
        data : mapping
            Keys among :attr:`KEYS` (others are errors, with the closest
            valid key); TOML lists for ``mean``, ``std``, ``size``,
            ``value_range``.
        where : str
            Where the table comes from, for error messages (e.g. ``"[model]"``).

        Returns
        -------
        InputContract

        Raises
        ------
        InputContractError
            ``"{where} <key>: <problem>"`` for an unknown key, a wrong type
            or an invalid value.
        """
        if not isinstance(data, Mapping):
            raise InputContractError(f"{where}: expected a table, got {type(data).__name__}")
        for name in data:
            if name not in cls.KEYS:
                raise InputContractError(
                    f"{where}: unknown input-contract key {name!r}{suggest(name, cls.KEYS)}; "
                    f"keys: {', '.join(cls.KEYS)}"
                )
        kinds = {
            "mean": "a list of numbers",
            "std": "a list of numbers",
            "size": "[H, W] or one integer",
            "value_range": "[lo, hi]",
        }
        for name, kind in kinds.items():
            value = data.get(name)
            if value is None:
                continue
            scalar_ok = name == "size" and isinstance(value, int) and not isinstance(value, bool)
            if not scalar_ok and not isinstance(value, (list, tuple)):
                raise InputContractError(f"{where} {name}: expected {kind}, got {value!r}")
        try:
            return cls(**{k: data[k] for k in cls.KEYS if k in data})
        except InputContractError as exc:
            raise InputContractError(f"{where} {exc}") from None

    def to_dict(self) -> dict[str, Any]:
        """The set fields as a TOML-ready table (inverse of :meth:`from_dict`)."""
        out: dict[str, Any] = {}
        for name in self.KEYS:
            value = getattr(self, name)
            if value is not None:
                out[name] = list(value) if isinstance(value, tuple) else value
        return out

    def check_model(self, loaded: LoadedModel) -> None:
        """Refuse a contract that would normalise twice or mismatch the stored normalisation.

        Parameters
        ----------
        loaded : LoadedModel
            The model the contract feeds.

        Raises
        ------
        InputContractError
            The weights store their own normalisation (a synthesis model, see
            :attr:`LoadedModel.normalization`) and the contract sets ``mean``
            and ``std`` too.
        """
        if loaded.normalization is not None and self.mean is not None:
            mean, std = loaded.normalization
            raise InputContractError(
                f"the weights {str(loaded.source)!r} store their normalisation (mean {list(mean)}, "
                f"std {list(std)}) and the model applies it: remove [model] mean and std"
            )

    # -- geometry -----------------------------------------------------------------------------
    def output_size(self, height: int, width: int) -> tuple[int, int]:
        """``(H, W)`` of the model input for views of ``(height, width)``."""
        return self.size if self.size is not None else (height, width)

    def _cover(self, height: int, width: int) -> tuple[int, int] | None:
        """Size the views are resampled to before the centre crop (``None``: no resampling)."""
        if self.size is None or (height, width) == self.size:
            return None
        target_h, target_w = self.size
        scale = max(target_h / height, target_w / width)
        new = (max(target_h, round(height * scale)), max(target_w, round(width * scale)))
        return None if new == (height, width) else new

    def _crop(self, tensor: torch.Tensor) -> torch.Tensor:
        if self.size is None:
            return tensor
        height, width = tensor.shape[-2:]
        target_h, target_w = self.size
        top, left = (height - target_h) // 2, (width - target_w) // 2
        return tensor[..., top : top + target_h, left : left + target_w]

    def _check_views(self, views: np.ndarray) -> np.ndarray:
        if not isinstance(views, np.ndarray) or views.ndim != 4:
            shape = getattr(views, "shape", None)
            raise InputContractError(f"views must be a numpy array (N, C, H, W), got {shape}")
        channels = len(self.mean) if self.mean is not None else views.shape[1]
        if views.shape[1] != channels:
            raise InputContractError(
                f"views have {views.shape[1]} channels but the contract's mean/std have {channels}"
            )
        if not np.issubdtype(views.dtype, np.floating):
            raise InputContractError(f"views must be float in [0, 1], got dtype {views.dtype}")
        if views.size and not np.isfinite(views).all():
            raise InputContractError("views hold NaN or infinite values")
        return views

    def apply(self, views: np.ndarray, device: str | torch.device | None = None) -> torch.Tensor:
        """Turn views into the model's input (geometry, range, normalisation).

        Parameters
        ----------
        views : numpy.ndarray
            ``(N, C, h, w)`` float views in [0, 1] (C = 3 for RGB, or the
            contract's channel count).
        device : str or torch.device, optional
            Where the result goes (default: the CPU).

        Returns
        -------
        torch.Tensor
            ``(N, C, H, W)`` float32, ``(H, W)`` = :meth:`output_size`.

        Raises
        ------
        InputContractError
            Not a 4-D float array, a channel count other than the contract's,
            or NaN/inf values.
        """
        views = self._check_views(views)
        x = torch.from_numpy(np.ascontiguousarray(views, dtype=np.float32))
        if device is not None:
            x = x.to(device)
        new = self._cover(*x.shape[-2:])
        if new is not None and x.shape[0] > 0:
            shrinking = new[0] < x.shape[-2] or new[1] < x.shape[-1]
            x = F.interpolate(
                x, size=new, mode="bilinear", align_corners=False, antialias=shrinking
            )
        x = self._crop(x)
        lo, hi = self.value_range
        if (lo, hi) != (0.0, 1.0):
            x = x * (hi - lo) + lo
        if self.mean is not None and self.std is not None:
            shape = (1, -1, 1, 1)
            mean = torch.tensor(self.mean, dtype=x.dtype, device=x.device).view(shape)
            std = torch.tensor(self.std, dtype=x.dtype, device=x.device).view(shape)
            x = (x - mean) / std
        return x.contiguous()

    def apply_masks(self, masks: np.ndarray) -> np.ndarray:
        """Give segmentation masks the geometry :meth:`apply` gives views.

        Parameters
        ----------
        masks : numpy.ndarray
            ``(N, h, w)`` integer class maps of the views.

        Returns
        -------
        numpy.ndarray
            ``(N, H, W)``, same dtype; resampled with nearest neighbour
            (``mode="nearest-exact"``: pixel centres, as the bilinear step)
            and centre-cropped.

        Raises
        ------
        InputContractError
            Not a 3-D integer array.
        """
        if not isinstance(masks, np.ndarray) or masks.ndim != 3:
            shape = getattr(masks, "shape", None)
            raise InputContractError(f"masks must be a numpy array (N, H, W), got {shape}")
        if not (np.issubdtype(masks.dtype, np.integer) or masks.dtype == np.bool_):
            raise InputContractError(f"masks must hold integer classes, got dtype {masks.dtype}")
        new = self._cover(*masks.shape[-2:])
        out = torch.from_numpy(np.ascontiguousarray(masks).astype(np.int64))
        if new is not None and out.shape[0] > 0:
            resized = F.interpolate(out[:, None].double(), size=new, mode="nearest-exact")
            out = resized[:, 0].round().long()
        return self._crop(out).numpy().astype(masks.dtype, copy=False)
