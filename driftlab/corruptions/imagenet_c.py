"""The 19 ImageNet-C corruptions, applied to driftlab views.

(Each also carries the milder CIFAR-10-C severity table of the same authors,
applied in float by :mod:`driftlab.corruptions.tables`; choose it with
``family="cifar-c"``. This module is the default ``imagenet-c`` family.)

Algorithms and their severity tables are those of the ``imagecorruptions``
package (import name of the maintained ``imagecorruptions-imaug``
distribution), which packages the code of Hendrycks & Dietterich,
"Benchmarking Neural Network Robustness to Common Corruptions and
Perturbations", ICLR 2019 (ImageNet-C) and of Michaelis et al., "Benchmarking
Robustness in Object Detection", 2019. driftlab does not reimplement them; it
adapts views to the benchmark's input format and makes the randomness
reproducible.

Conversion (the ImageNet-C input format)
----------------------------------------
1. view ``(3, H, W)`` float in [0, 1] -> ``(H, W, 3)`` uint8 with
   ``np.round(np.clip(v, 0, 1) * 255)`` (round half to even);
2. the corruption runs on that 8-bit RGB image (a PIL image, as in
   ``imagecorruptions.corrupt``);
3. its float result is clipped to [0, 255] and cast to uint8 by truncation,
   exactly as ``imagecorruptions.corrupt`` does (``np.uint8(x)``);
4. back to a ``(3, H, W)`` float32 view with ``/ 255``.

Small views
-----------
The benchmark needs both sides to be at least 32 pixels. A view with a side
below 32 is padded to 32 on that axis by whole-sample mirroring
(``numpy.pad(mode="symmetric")``, the padding split evenly with the extra
pixel after), corrupted, and cropped back to ``(H, W)``; views of 32 pixels
or more are corrupted as they are, and the benchmark's functions keep their
shape (this module checks it). Note that kernel sizes are in pixels and were
chosen for 224-pixel ImageNet images, so blur-type corruptions are relatively
much stronger on small views.

Randomness
----------
Most of these functions draw from numpy's *global* generator. Each call seeds
it from ``numpy.random.SeedSequence(seed)`` inside a context that saves the
global state first and restores it afterwards (also on error), under a lock,
so the result depends only on ``(seed, view, severity)`` and the caller's
global random stream is left as it was. ``impulse_noise`` and ``glass_blur``
take an explicit seed argument instead, derived from the same
``SeedSequence``. Code in other threads that uses numpy's global generator
during a call is not blocked by the lock and would disturb it; ``glass_blur``
reseeds numba's own generator (separate from numpy's) and leaves it seeded.

Known defect handled
--------------------
``spatter`` at severities 1-3 divides by the maximum of its random liquid
layer, which is zero when no liquid passes the threshold (likely on views
under about 64 pixels); the library then returns NaN. Such pixels are given
the input value, which is the result of an empty liquid layer.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext

import attrs
import numpy as np

from driftlab.corruptions.base import CorruptionSpec, SeverityTable
from driftlab.corruptions.tables import (
    IMAGENET_C_REFERENCE,
    cifar_c_table,
    parameter_names,
    table_rows,
)

__all__ = [
    "IMAGENET_C_CORRUPTIONS",
    "MIN_SIDE",
    "ImageNetCCorruption",
    "library_seeds",
    "pad_to_min_side",
    "seeded_global_rng",
    "uint8_to_view",
    "view_to_uint8",
]

MIN_SIDE = 32

# Guards numpy's global generator while a corruption has seeded it.
_GLOBAL_RNG_LOCK = threading.RLock()

# corruptions whose randomness comes through a ``seed`` argument, not the global generator
_SEED_ARGUMENT = frozenset({"impulse_noise", "glass_blur"})
# corruptions that return NaN for an empty random layer (see module docstring)
_EMPTY_LAYER_NAN = frozenset({"spatter"})

_REFERENCE_COMMON = (
    "Hendrycks & Dietterich, ICLR 2019 (ImageNet-C, benchmark corruption); imagecorruptions package"
)
_REFERENCE_EXTRA = (
    "Hendrycks & Dietterich, ICLR 2019 (ImageNet-C, extra/validation corruption); "
    "imagecorruptions package"
)


def view_to_uint8(view: np.ndarray) -> np.ndarray:
    """Quantise a view to the benchmark's 8-bit RGB image.

    Parameters
    ----------
    view : numpy.ndarray
        ``(3, H, W)`` float; values outside [0, 1] are clipped.

    Returns
    -------
    numpy.ndarray
        ``(H, W, 3)`` uint8, ``np.round(np.clip(view, 0, 1) * 255)``
        (round half to even), C-contiguous.
    """
    scaled = np.round(np.clip(np.asarray(view, dtype=np.float64), 0.0, 1.0) * 255.0)
    return np.ascontiguousarray(scaled.astype(np.uint8).transpose(1, 2, 0))


def uint8_to_view(image: np.ndarray) -> np.ndarray:
    """Convert an 8-bit RGB image back to a view.

    Parameters
    ----------
    image : numpy.ndarray
        ``(H, W, 3)`` uint8.

    Returns
    -------
    numpy.ndarray
        ``(3, H, W)`` float32 in [0, 1], ``image / 255``.
    """
    return np.ascontiguousarray(image.transpose(2, 0, 1)).astype(np.float32) / np.float32(255.0)


def pad_to_min_side(image: np.ndarray, min_side: int = MIN_SIDE) -> tuple[np.ndarray, int, int]:
    """Mirror-pad an ``(H, W, C)`` image so that both sides are at least ``min_side``.

    Parameters
    ----------
    image : numpy.ndarray
        ``(H, W, C)`` array of any dtype.
    min_side : int
        Minimum side length in pixels (the benchmark's 32).

    Returns
    -------
    padded : numpy.ndarray
        ``(max(H, min_side), max(W, min_side), C)``, same dtype; whole-sample
        mirror padding (``numpy.pad(mode="symmetric")``), split evenly with the
        odd pixel after. ``image`` itself when no padding is needed.
    top, left : int
        Offsets of the original image inside ``padded`` (crop with
        ``padded[top:top + H, left:left + W]``).
    """
    h, w = image.shape[:2]
    pad_h, pad_w = max(min_side - h, 0), max(min_side - w, 0)
    if not pad_h and not pad_w:
        return image, 0, 0
    top, left = pad_h // 2, pad_w // 2
    widths = ((top, pad_h - top), (left, pad_w - left)) + ((0, 0),) * (image.ndim - 2)
    return np.pad(image, widths, mode="symmetric"), top, left


def library_seeds(seed: int) -> tuple[int, int]:
    """Derive the two 32-bit seeds a call uses from the user's seed.

    Parameters
    ----------
    seed : int
        Non-negative seed given to :func:`driftlab.corruptions.apply_corruption`.

    Returns
    -------
    global_seed, call_seed : int
        ``numpy.random.SeedSequence(seed).generate_state(2)``: the first seeds
        numpy's global generator, the second is passed as the ``seed``
        argument of ``impulse_noise`` and ``glass_blur``.
    """
    state = np.random.SeedSequence(seed).generate_state(2, dtype=np.uint32)
    return int(state[0]), int(state[1])


@contextmanager
def seeded_global_rng(seed: int) -> Iterator[None]:
    """Seed numpy's global generator for the duration of a ``with`` block.

    The global state is saved before and restored after the block, also when
    the block raises, under a process-wide re-entrant lock.

    Parameters
    ----------
    seed : int
        Seed for ``numpy.random.seed`` (0 <= seed < 2**32).
    """
    with _GLOBAL_RNG_LOCK:
        saved = np.random.get_state()
        np.random.seed(seed)
        try:
            yield
        finally:
            np.random.set_state(saved)


@attrs.frozen
class ImageNetCCorruption:
    """Callable applying one ``imagecorruptions`` function to a view.

    Implements the corruption function signature of
    :mod:`driftlab.corruptions.base`; see the module docstring for the
    conversion, the padding of small views and the seeding. A class rather
    than a closure so that declarations can be pickled (worker processes).

    Parameters
    ----------
    name : str
        Name in ``imagecorruptions.get_corruption_names("all")``.
    """

    name: str

    def __call__(self, view: np.ndarray, severity: int, seed: int) -> np.ndarray:
        """Corrupt ``view``.

        Parameters
        ----------
        view : numpy.ndarray
            ``(3, H, W)`` float in [0, 1], H, W >= 1.
        severity : int
            1..5.
        seed : int
            Non-negative.

        Returns
        -------
        numpy.ndarray
            ``(3, H, W)`` float32 in [0, 1], multiples of 1/255.

        Raises
        ------
        RuntimeError
            If the library returns another shape or non-finite values (other
            than the known ``spatter`` case).
        """
        # Imported here: imagecorruptions pulls in numba and OpenCV, which the
        # registry should not pay for when corruptions are not used.
        from imagecorruptions import corruption_dict
        from PIL import Image

        image = view_to_uint8(view)
        h, w = image.shape[:2]
        padded, top, left = pad_to_min_side(image)
        global_seed, call_seed = library_seeds(seed)
        kwargs = {"seed": call_seed} if self.name in _SEED_ARGUMENT else {}
        function = corruption_dict[self.name]
        quiet = self.name in _EMPTY_LAYER_NAN
        errors = np.errstate(invalid="ignore", divide="ignore") if quiet else nullcontext()
        with seeded_global_rng(global_seed), errors:
            result = np.asarray(function(Image.fromarray(padded), int(severity), **kwargs))
        if result.shape != padded.shape:
            raise RuntimeError(
                f"imagecorruptions {self.name} (severity {severity}) returned shape "
                f"{result.shape} for an input of shape {padded.shape}"
            )
        if np.issubdtype(result.dtype, np.floating):
            bad = ~np.isfinite(result)
            if bad.any():
                if not quiet:
                    raise RuntimeError(
                        f"imagecorruptions {self.name} (severity {severity}) returned "
                        f"{int(bad.sum())} NaN or Inf value(s)"
                    )
                result = np.where(bad, padded, result)
        # truncation, as imagecorruptions.corrupt's final np.uint8(...)
        quantised = np.clip(result, 0, 255).astype(np.uint8)
        return uint8_to_view(quantised[top : top + h, left : left + w])


# name, family, description (strengths over severities 1..5, from the library's tables)
_COMMON: tuple[tuple[str, str, str], ...] = (
    ("gaussian_noise", "noise", "additive Gaussian noise, sigma 0.08 to 0.38 of full scale"),
    ("shot_noise", "noise", "Poisson photon noise, 60 down to 3 photons at full scale"),
    ("impulse_noise", "noise", "salt-and-pepper noise on 3% to 27% of the samples"),
    ("defocus_blur", "blur", "convolution with an anti-aliased disk of radius 3 to 10 px"),
    (
        "glass_blur",
        "blur",
        "Gaussian blur (sigma 0.7 to 1.5 px), local pixel shuffling (1 to 4 px), blur again",
    ),
    ("motion_blur", "blur", "linear motion blur at a random angle, 10 to 20 px kernel radius"),
    ("zoom_blur", "blur", "mean of the view zoomed about its centre up to 1.1x to 1.3x"),
    ("snow", "weather", "random motion-blurred snow layer over a brightened, greyer view"),
    ("frost", "weather", "blend with a random crop of a frost photograph (weight 0.4 to 0.75)"),
    ("fog", "weather", "additive plasma-fractal haze of strength 1.5 to 3"),
    ("brightness", "weather", "HSV value raised by 0.1 to 0.5"),
    ("contrast", "digital", "deviations from the channel mean scaled by 0.4 down to 0.05"),
    (
        "elastic_transform",
        "digital",
        "elastic warp by a smoothed random displacement field (strength 12.5 to 30)",
    ),
    ("pixelate", "digital", "box downsampling to 60% to 25% and nearest-neighbour upsampling"),
    ("jpeg_compression", "digital", "JPEG encoding at quality 25 down to 7"),
)
_EXTRA: tuple[tuple[str, str, str], ...] = (
    ("speckle_noise", "noise", "multiplicative Gaussian noise v + v*n, sigma 0.15 to 0.6"),
    ("gaussian_blur", "blur", "Gaussian blur, sigma 1 to 6 px"),
    ("spatter", "weather", "water (severity 1-3) or mud (4-5) splashes from a random liquid layer"),
    ("saturate", "digital", "HSV saturation scaled by 0.3, 0.1, 2, 5 (+0.1), 20 (+0.2)"),
)


def _tables(name: str) -> tuple[SeverityTable, SeverityTable]:
    names, unit = parameter_names(name, "imagenet-c")
    imagenet = SeverityTable(
        family="imagenet-c",
        parameters=names,
        values=table_rows(name, "imagenet-c"),
        function=ImageNetCCorruption(name),
        unit=unit,
        reference=IMAGENET_C_REFERENCE,
    )
    return imagenet, cifar_c_table(name)


IMAGENET_C_CORRUPTIONS: tuple[CorruptionSpec, ...] = tuple(
    CorruptionSpec(
        name=name,
        family=family,
        doc=doc,
        function=ImageNetCCorruption(name),
        reference=reference,
        tables=_tables(name),
    )
    for group, reference in ((_COMMON, _REFERENCE_COMMON), (_EXTRA, _REFERENCE_EXTRA))
    for name, family, doc in group
)
"""The 15 benchmark and 4 extra ImageNet-C corruptions, severities 1..5, each with its
``imagenet-c`` table (this module's library adapter, the default) and its ``cifar-c``
table (:mod:`driftlab.corruptions.tables`)."""
