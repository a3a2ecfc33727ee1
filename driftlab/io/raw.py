"""Reading raw Bayer frames from disk.

Supported formats
-----------------
``.npy``
    2-D array; integers are divided by the white level, floats must already
    lie in [0, 1].
``.tif`` / ``.tiff``
    2-D integer image read with tifffile (16-bit in the Zenodo datasets).
``.raw`` (or any name with ``shape`` given)
    Headerless little-endian samples; needs ``shape`` and ``bits``
    (``uint16`` above 8 bits, ``uint8`` otherwise).
``.dng`` and other camera raw formats (``.nef``, ``.cr2``, ``.arw`` ...)
    Read with rawpy (LibRaw); black level, white level, CFA pattern,
    as-shot white balance and colour matrix come from the file.
"""

from __future__ import annotations

from pathlib import Path

import attrs
import numpy as np

from driftlab.camera import CameraParams
from driftlab.cfa import check_cfa

__all__ = ["CAMERA_RAW_SUFFIXES", "RawFrame", "RawReadError", "read_raw"]

CAMERA_RAW_SUFFIXES = (
    ".dng", ".nef", ".nrw", ".cr2", ".cr3", ".arw", ".srf", ".sr2", ".orf", ".rw2",
    ".raf", ".pef", ".srw", ".3fr", ".iiq", ".erf", ".kdc", ".mos", ".x3f",
)  # fmt: skip
TIFF_SUFFIXES = (".tif", ".tiff")


class RawReadError(ValueError):
    """A raw file is missing, truncated, corrupt or does not match its declared geometry."""


@attrs.frozen
class RawFrame:
    """A raw frame normalised to [0, 1].

    Attributes
    ----------
    raw : numpy.ndarray
        ``(H, W)`` float32 mosaic, stored values divided by the white level.
    camera : CameraParams or None
        Camera parameters read from the file's metadata (camera raw formats
        only), with ``black_level`` as a fraction of the white level.
    white_level : int or None
        Value the stored integers were divided by (None for float input).
    path : pathlib.Path
        Source file.
    """

    raw: np.ndarray
    camera: CameraParams | None
    white_level: int | None
    path: Path


def _normalise(values: np.ndarray, white_level: int, path: Path, bits_hint: str) -> np.ndarray:
    top = int(values.max()) if values.size else 0
    if top > white_level:
        raise RawReadError(
            f"{path}: sample value {top} exceeds the white level {white_level} {bits_hint}; "
            "is the bit depth right?"
        )
    return (values.astype(np.float32) / np.float32(white_level)).astype(np.float32)


def _check_2d(array: np.ndarray, path: Path) -> None:
    if array.ndim != 2:
        raise RawReadError(
            f"{path}: expected a single-channel 2-D Bayer mosaic, got an array of shape "
            f"{array.shape}"
        )
    if array.shape[0] % 2 or array.shape[1] % 2:
        raise RawReadError(
            f"{path}: height and width must be even (whole 2x2 CFA blocks), got "
            f"{array.shape[0]}x{array.shape[1]}"
        )


def _from_array(array: np.ndarray, path: Path, bits: int | None) -> RawFrame:
    _check_2d(array, path)
    if np.issubdtype(array.dtype, np.floating):
        if not np.all(np.isfinite(array)):
            raise RawReadError(f"{path}: contains NaN or Inf values")
        if array.size and (array.min() < 0 or array.max() > 1):
            raise RawReadError(
                f"{path}: floating-point raw must already be normalised to [0, 1], got "
                f"[{array.min():.4g}, {array.max():.4g}]"
            )
        return RawFrame(array.astype(np.float32), None, None, path)
    if not np.issubdtype(array.dtype, np.integer):
        raise RawReadError(f"{path}: expected integer or float samples, got dtype {array.dtype}")
    if np.issubdtype(array.dtype, np.signedinteger) and array.size and array.min() < 0:
        raise RawReadError(f"{path}: negative raw sample values")
    depth = bits if bits is not None else array.dtype.itemsize * 8
    white = 2**depth - 1
    hint = f"for {depth}-bit data" + ("" if bits is not None else f" (from dtype {array.dtype})")
    return RawFrame(_normalise(array, white, path, hint), None, white, path)


def _read_headerless(path: Path, shape: tuple[int, int], bits: int) -> RawFrame:
    h, w = shape
    dtype = np.dtype("<u2") if bits > 8 else np.dtype("u1")
    expected = h * w * dtype.itemsize
    size = path.stat().st_size
    if size != expected:
        raise RawReadError(
            f"{path}: file has {size} bytes, expected {expected} for {h}x{w} samples of "
            f"{dtype.itemsize} byte(s) ({bits}-bit); check --shape and --bits"
        )
    array = np.fromfile(path, dtype=dtype).reshape(h, w)
    _check_2d(array, path)
    return RawFrame(
        _normalise(array, 2**bits - 1, path, f"for {bits}-bit data"), None, 2**bits - 1, path
    )


def _cfa_from_rawpy(raw) -> str:
    desc = raw.color_desc.decode()
    pattern = np.asarray(raw.raw_pattern)
    if pattern.shape != (2, 2):
        raise RawReadError(f"unsupported CFA layout {pattern.shape} (only 2x2 Bayer patterns)")
    return "".join(desc[int(i)] for i in pattern.ravel()).upper()


def _read_camera_raw(path: Path) -> RawFrame:
    import rawpy  # imported lazily: LibRaw is only needed for camera raw files

    try:
        handle = rawpy.imread(str(path))
    except Exception as exc:  # rawpy raises LibRawFileUnsupportedError, LibRawIOError ...
        raise RawReadError(
            f"{path}: cannot be read as camera raw ({type(exc).__name__}: {exc})"
        ) from exc
    with handle as raw:
        if raw.raw_type != rawpy.RawType.Flat or raw.num_colors != 3:
            raise RawReadError(f"{path}: not a single-plane 3-colour Bayer raw")
        visible = np.array(raw.raw_image_visible)
        cfa = check_cfa(_cfa_from_rawpy(raw), f"{path} CFA pattern")
        white = int(raw.white_level)
        pattern = np.asarray(raw.raw_pattern)
        per_channel = np.asarray(raw.black_level_per_channel, dtype=np.float64)
        black = [per_channel[int(i)] / white for i in pattern.ravel()]
        wb = np.asarray(raw.camera_whitebalance, dtype=np.float64)[:3]
        if not np.all(wb > 0):
            wb = np.ones(3)
        wb = wb / wb[1]
        matrix = np.asarray(raw.color_matrix, dtype=np.float64)[:, :3]
        if not np.any(matrix) or not np.all(np.isfinite(matrix)):
            matrix = np.eye(3)
    bits = max(1, int(np.ceil(np.log2(white + 1))))
    _check_2d(visible, path)
    camera = CameraParams(
        name=f"file:{path.name}",
        cfa=cfa,
        bit_depth=bits,
        white_level=white,
        black_level=black,
        white_balance=wb,
        color_matrix=matrix,
        description=f"read from the metadata of {path.name}",
    )
    return RawFrame(_normalise(visible, white, path, "(file's white level)"), camera, white, path)


def read_raw(
    path: str | Path,
    *,
    shape: tuple[int, int] | None = None,
    bits: int | None = None,
) -> RawFrame:
    """Read one raw frame and normalise it to [0, 1].

    Parameters
    ----------
    path : str or pathlib.Path
        File to read; the suffix selects the format (see module docstring).
    shape : tuple of int, optional
        ``(H, W)`` of a headerless file (required for ``.raw``).
    bits : int, optional
        Bit depth of stored integers; required for headerless files,
        optional elsewhere (defaults to the dtype's width).

    Returns
    -------
    RawFrame

    Raises
    ------
    RawReadError
        Missing, truncated or corrupt file; wrong size for the declared
        geometry; values above the white level; not a 2-D even-sized mosaic.
    """
    path = Path(path)
    if not path.is_file():
        raise RawReadError(f"{path}: no such file")
    if bits is not None and not 1 <= bits <= 16:
        raise RawReadError(f"{path}: --bits must be between 1 and 16, got {bits}")
    suffix = path.suffix.lower()
    if suffix == ".raw" or (shape is not None and suffix not in (".npy", *TIFF_SUFFIXES)):
        if shape is None or bits is None:
            raise RawReadError(
                f"{path}: a headerless raw file needs its geometry: shape (HxW) and bits"
            )
        return _read_headerless(path, shape, bits)
    if suffix == ".npy":
        try:
            array = np.load(path, allow_pickle=False)
        except Exception as exc:
            raise RawReadError(f"{path}: not a readable .npy file ({exc})") from exc
        return _from_array(array, path, bits)
    if suffix in TIFF_SUFFIXES:
        import tifffile

        try:
            array = tifffile.imread(path)
        except Exception as exc:
            raise RawReadError(
                f"{path}: corrupt or truncated TIFF ({type(exc).__name__}: {exc})"
            ) from exc
        return _from_array(np.asarray(array), path, bits)
    if suffix in CAMERA_RAW_SUFFIXES:
        return _read_camera_raw(path)
    raise RawReadError(
        f"{path}: unknown raw format {suffix!r}; expected .npy, .tif/.tiff, .raw (with shape "
        f"and bits) or a camera raw file ({', '.join(CAMERA_RAW_SUFFIXES)})"
    )
