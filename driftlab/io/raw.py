"""Reading raw Bayer frames from disk.

Supported formats
-----------------
``.npy``
    2-D array; integers are divided by the white level, floats must already
    lie in [0, 1] (or on the integer scale, with ``float_scale``).
``.tif`` / ``.tiff``
    2-D integer image read with tifffile (16-bit in the Zenodo datasets), or
    a float image (PIL mode ``F``) as for ``.npy``.
``.raw`` (or any name with ``shape`` given)
    Headerless little-endian samples; needs ``shape`` and ``bits``
    (``uint16`` above 8 bits, ``uint8`` otherwise).
``.dng`` and other camera raw formats (``.nef``, ``.cr2``, ``.arw`` ...)
    Read with rawpy (LibRaw); black level, white level, CFA pattern,
    as-shot white balance and colour matrix come from the file.

Orientation
-----------
A camera raw file stores the sensor's pixels as read out and an orientation
flag (EXIF/TIFF ``Orientation``, reported by LibRaw as ``sizes.flip``) saying
how to turn them upright. :func:`read_raw` applies it to the mosaic, as
LibRaw does to its processed output, so that a frame comes out upright like
the camera's own picture: bit 1 mirrors columns, bit 2 mirrors rows, then bit
4 transposes (flip 3 = 180 degrees, 5 = 90 degrees counter-clockwise, 6 = 90
degrees clockwise). Because H and W are even, the same operations applied to
the 2x2 CFA tile give the pattern of the turned mosaic: the CFA pattern and
the per-site black levels returned (:func:`read_camera_metadata` too) are
those of the upright mosaic, e.g. an RGGB sensor turned by 180 degrees reads
as BGGR. ``RawFrame.orientation`` records the flag that was applied.

Size limits
-----------
A small compressed file can declare a huge image (a 297 KB zlib TIFF can
inflate past 5 GB). TIFF, ``.npy`` and camera raw headers are read first and
the declared size (shape x dtype) is checked against ``max_bytes`` (default
:data:`MAX_RAW_BYTES`) before anything is decompressed or allocated; a
``.npy`` file whose data is shorter than its header declares is refused as
truncated, and a file without the NumPy header is reported as "not a .npy
file".
"""

from __future__ import annotations

from pathlib import Path

import attrs
import numpy as np

from driftlab.camera import CameraParams
from driftlab.cfa import check_cfa
from driftlab.errors import DriftlabError

__all__ = [
    "CAMERA_RAW_SUFFIXES",
    "MAX_RAW_BYTES",
    "RawFrame",
    "RawReadError",
    "check_tiff_size",
    "orient_mosaic",
    "read_camera_metadata",
    "read_npy",
    "read_raw",
]

MAX_RAW_BYTES = 1 << 30
"""Largest declared pixel data (bytes) a TIFF, ``.npy`` or camera raw file may hold:
1 GiB, about 25 times a 20-megapixel 16-bit frame."""

CAMERA_RAW_SUFFIXES = (
    ".dng", ".nef", ".nrw", ".cr2", ".cr3", ".arw", ".srf", ".sr2", ".orf", ".rw2",
    ".raf", ".pef", ".srw", ".3fr", ".iiq", ".erf", ".kdc", ".mos", ".x3f",
)  # fmt: skip
TIFF_SUFFIXES = (".tif", ".tiff")


class RawReadError(DriftlabError, ValueError):
    """A raw file is missing, truncated, corrupt or does not match its declared geometry."""

    exit_code = 2


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
    orientation : int
        LibRaw orientation flag (``sizes.flip``, 0..7) applied to a camera
        raw mosaic; 0 for other formats (see module notes).
    """

    raw: np.ndarray
    camera: CameraParams | None
    white_level: int | None
    path: Path
    orientation: int = 0


def _flip(array: np.ndarray, flip: int) -> np.ndarray:
    out = array
    if flip & 1:
        out = out[:, ::-1]
    if flip & 2:
        out = out[::-1, :]
    if flip & 4:
        out = out.T
    return out


def orient_mosaic(raw: np.ndarray, pattern: np.ndarray, flip: int) -> tuple[np.ndarray, np.ndarray]:
    """Turn a Bayer mosaic upright by LibRaw's orientation flag, keeping its CFA consistent.

    Parameters
    ----------
    raw : numpy.ndarray
        ``(H, W)`` mosaic as read out, H and W even.
    pattern : numpy.ndarray
        ``(2, 2)`` array describing the CFA tile of ``raw`` (colour indices,
        letters or per-site values such as black levels).
    flip : int
        LibRaw ``sizes.flip`` in 0..7: bit 1 mirrors columns, bit 2 rows,
        bit 4 then transposes (3 = 180 degrees, 5 = 90 degrees
        counter-clockwise, 6 = 90 degrees clockwise).

    Returns
    -------
    raw : numpy.ndarray
        ``(H, W)`` or ``(W, H)`` upright mosaic (C-contiguous copy when turned).
    pattern : numpy.ndarray
        ``(2, 2)`` tile of the upright mosaic (the same operations applied
        to the tile, valid because H and W are even).

    Raises
    ------
    ValueError
        ``flip`` outside 0..7, odd sides, or a pattern that is not 2x2.
    """
    flip = int(flip)
    if not 0 <= flip <= 7:
        raise ValueError(f"orientation flag must lie in 0..7 (LibRaw sizes.flip), got {flip}")
    raw = np.asarray(raw)
    pattern = np.asarray(pattern)
    if raw.ndim != 2 or raw.shape[0] % 2 or raw.shape[1] % 2:
        raise ValueError(f"expected an (H, W) mosaic with even sides, got shape {raw.shape}")
    if pattern.shape != (2, 2):
        raise ValueError(f"expected a 2x2 CFA tile, got shape {pattern.shape}")
    if flip == 0:
        return raw, pattern
    return np.ascontiguousarray(_flip(raw, flip)), np.ascontiguousarray(_flip(pattern, flip))


def _limit(max_bytes: int | None) -> int:
    return MAX_RAW_BYTES if max_bytes is None else int(max_bytes)


def _too_big(path: Path, what: str, shape: tuple[int, ...], dtype: np.dtype, limit: int) -> None:
    declared = int(np.prod(shape, dtype=np.float64)) * int(dtype.itemsize)
    if declared > limit:
        raise RawReadError(
            f"{path}: {what} declares a {'x'.join(str(int(v)) for v in shape)} image of {dtype} "
            f"({declared / 2**20:,.0f} MiB), more than the limit of {limit / 2**20:,.0f} MiB; "
            "refused before decompressing (raise max_bytes if the file is genuine)"
        )


def check_tiff_size(
    path: str | Path, max_bytes: int | None = None
) -> tuple[tuple[int, ...], np.dtype]:
    """Declared shape and dtype of a TIFF's first series, checked against a size limit.

    Only the TIFF header and image file directories are read; no pixel data
    is decompressed.

    Parameters
    ----------
    path : str or Path
        TIFF file.
    max_bytes : int, optional
        Largest declared pixel data accepted (default :data:`MAX_RAW_BYTES`).

    Returns
    -------
    (tuple of int, numpy.dtype)
        Shape and dtype of series 0, as declared.

    Raises
    ------
    RawReadError
        Not a TIFF, a header without an image, or a declared size above the
        limit (shape x dtype, in the message).
    """
    import tifffile

    path = Path(path)
    try:
        with tifffile.TiffFile(path) as tif:
            if not tif.series:
                raise RawReadError(f"{path}: corrupt or truncated TIFF (no image data)")
            series = tif.series[0]
            shape, dtype = tuple(int(v) for v in series.shape), np.dtype(series.dtype)
    except RawReadError:
        raise
    except Exception as exc:  # tifffile raises TiffFileError, ValueError, struct errors ...
        raise RawReadError(
            f"{path}: corrupt or truncated TIFF ({type(exc).__name__}: {exc})"
        ) from exc
    _too_big(path, "TIFF header", shape, dtype, _limit(max_bytes))
    return shape, dtype


def _read_tiff(path: Path, max_bytes: int | None) -> np.ndarray:
    import tifffile

    check_tiff_size(path, max_bytes)
    try:
        array = tifffile.imread(path)
    except Exception as exc:
        raise RawReadError(
            f"{path}: corrupt or truncated TIFF ({type(exc).__name__}: {exc})"
        ) from exc
    array = np.asarray(array)
    if array.size == 0:
        raise RawReadError(f"{path}: corrupt or truncated TIFF (no image data)")
    return array


def read_npy(path: str | Path, max_bytes: int | None = None) -> np.ndarray:
    """Load a ``.npy`` array after checking its header (never unpickling).

    Parameters
    ----------
    path : str or Path
        File in the NumPy ``.npy`` format.
    max_bytes : int, optional
        Largest declared array accepted (default :data:`MAX_RAW_BYTES`).

    Returns
    -------
    numpy.ndarray

    Raises
    ------
    RawReadError
        A file without the NumPy magic header ("not a .npy file"), a header
        that does not parse, an object (pickled) dtype, a declared size
        above the limit, or data shorter than the header declares.
    """
    path = Path(path)
    fmt = np.lib.format
    try:
        with path.open("rb") as handle:
            try:
                version = fmt.read_magic(handle)
            except ValueError:
                raise RawReadError(
                    f"{path}: not a .npy file (it does not start with the NumPy header "
                    "\\x93NUMPY); save arrays with numpy.save"
                ) from None
            try:
                if version == (1, 0):
                    shape, _, dtype = fmt.read_array_header_1_0(handle)
                else:
                    shape, _, dtype = fmt.read_array_header_2_0(handle)
            except (ValueError, SyntaxError) as exc:
                raise RawReadError(f"{path}: corrupt .npy header ({exc})") from None
            offset = handle.tell()
    except OSError as exc:
        raise RawReadError(f"{path}: cannot read ({exc})") from exc
    dtype = np.dtype(dtype)
    if dtype.hasobject:
        raise RawReadError(
            f"{path}: .npy file holds Python objects (dtype {dtype}); refused, since loading "
            "it would unpickle code. Save plain numeric arrays"
        )
    _too_big(path, ".npy header", tuple(shape), dtype, _limit(max_bytes))
    declared = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    available = path.stat().st_size - offset
    if available < declared:
        raise RawReadError(
            f"{path}: truncated .npy file: its header declares {declared} bytes of data, "
            f"the file holds {available}"
        )
    try:
        return np.load(path, allow_pickle=False)
    except Exception as exc:
        raise RawReadError(f"{path}: not a readable .npy file ({exc})") from exc


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


def _from_float(array: np.ndarray, path: Path, float_scale: float | None) -> RawFrame:
    if not np.all(np.isfinite(array)):
        raise RawReadError(f"{path}: contains NaN or Inf values")
    if float_scale is not None:
        if array.size and (array.min() < 0 or array.max() > float_scale):
            raise RawReadError(
                f"{path}: floating-point samples must lie in [0, {float_scale:g}] (the declared "
                f"full scale), got [{array.min():.6g}, {array.max():.6g}]"
            )
        return RawFrame((array / np.float64(float_scale)).astype(np.float32), None, None, path)
    if array.size and (array.min() < 0 or array.max() > 1):
        raise RawReadError(
            f"{path}: floating-point raw must already be normalised to [0, 1], got "
            f"[{array.min():.4g}, {array.max():.4g}]"
        )
    return RawFrame(array.astype(np.float32), None, None, path)


def _from_array(
    array: np.ndarray, path: Path, bits: int | None, float_scale: float | None = None
) -> RawFrame:
    _check_2d(array, path)
    if np.issubdtype(array.dtype, np.floating):
        return _from_float(array, path, float_scale)
    if not np.issubdtype(array.dtype, np.integer):
        raise RawReadError(f"{path}: expected integer or float samples, got dtype {array.dtype}")
    if np.issubdtype(array.dtype, np.signedinteger) and array.size and array.min() < 0:
        raise RawReadError(f"{path}: negative raw sample values")
    width = array.dtype.itemsize * 8
    if bits is not None and width < bits:
        raise RawReadError(
            f"{path}: stores {width}-bit samples ({array.dtype}) but {bits}-bit data was "
            "declared; wrong bit depth"
        )
    depth = bits if bits is not None else width
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


def _cfa_from_rawpy(raw) -> str:  # the CFA as stored (before the orientation flag)
    desc = raw.color_desc.decode()
    pattern = np.asarray(raw.raw_pattern)
    if pattern.shape != (2, 2):
        raise RawReadError(f"unsupported CFA layout {pattern.shape} (only 2x2 Bayer patterns)")
    return "".join(desc[int(i)] for i in pattern.ravel()).upper()


def _open_camera_raw(path: Path):
    import rawpy  # imported lazily: LibRaw is only needed for camera raw files

    try:
        handle = rawpy.imread(str(path))
    except Exception as exc:  # rawpy raises LibRawFileUnsupportedError, LibRawIOError ...
        raise RawReadError(
            f"{path}: cannot be read as camera raw ({type(exc).__name__}: {exc})"
        ) from exc
    if handle.raw_type != rawpy.RawType.Flat or handle.num_colors != 3:
        handle.close()
        raise RawReadError(f"{path}: not a single-plane 3-colour Bayer raw")
    return handle


def _flip_of(raw, path: Path) -> int:
    flip = int(getattr(raw.sizes, "flip", 0) or 0)
    if not 0 <= flip <= 7:
        raise RawReadError(
            f"{path}: unsupported orientation flag {flip} (LibRaw sizes.flip must be 0..7)"
        )
    return flip


def _camera_from_rawpy(raw, path: Path) -> CameraParams:
    check_cfa(_cfa_from_rawpy(raw), f"{path} CFA pattern")
    white = int(raw.white_level)
    flip = _flip_of(raw, path)
    pattern = np.asarray(raw.raw_pattern)
    if flip:
        pattern = np.ascontiguousarray(_flip(pattern, flip))
    desc = raw.color_desc.decode()
    cfa = check_cfa("".join(desc[int(i)] for i in pattern.ravel()).upper(), f"{path} CFA pattern")
    per_channel = np.asarray(raw.black_level_per_channel, dtype=np.float64)
    black = [per_channel[int(i)] / white for i in pattern.ravel()]
    wb = np.asarray(raw.camera_whitebalance, dtype=np.float64)[:3]
    if not np.all(wb > 0):
        wb = np.ones(3)
    wb = wb / wb[1]
    matrix = np.asarray(raw.color_matrix, dtype=np.float64)[:, :3]
    if not np.any(matrix) or not np.all(np.isfinite(matrix)):
        matrix = np.eye(3)
    return CameraParams(
        name=f"file:{path.name}",
        cfa=cfa,
        bit_depth=max(1, int(np.ceil(np.log2(white + 1)))),
        white_level=white,
        black_level=black,
        white_balance=wb,
        color_matrix=matrix,
        description=f"read from the metadata of {path.name}"
        + (f" (orientation flag {flip} applied)" if flip else ""),
    )


def _read_camera_raw(path: Path, max_bytes: int | None) -> RawFrame:
    with _open_camera_raw(path) as raw:
        camera = _camera_from_rawpy(raw, path)
        flip = _flip_of(raw, path)
        shape = (int(raw.sizes.height), int(raw.sizes.width))
        _too_big(path, "camera raw", shape, np.dtype("<u2"), _limit(max_bytes))
        try:
            visible = np.array(raw.raw_image_visible)
        except Exception as exc:  # LibRaw fails while unpacking truncated pixel data
            raise RawReadError(
                f"{path}: corrupt or truncated camera raw data ({type(exc).__name__}: {exc})"
            ) from exc
    _check_2d(visible, path)
    if flip:
        visible = np.ascontiguousarray(_flip(visible, flip))
    white = camera.saturation
    raw01 = _normalise(visible, white, path, "(file's white level)")
    return RawFrame(raw01, camera, white, path, flip)


def read_camera_metadata(path: str | Path) -> CameraParams:
    """Camera parameters from a camera raw file's metadata, without decoding pixels.

    Parameters
    ----------
    path : str or pathlib.Path
        A camera raw file (``.dng``, ``.nef`` ...), read with rawpy (LibRaw).

    Returns
    -------
    CameraParams
        CFA pattern and black level per CFA site of the upright mosaic (the
        file's orientation flag applied, see module notes), bit depth and
        white level, black level as a fraction of the white level, as-shot
        white-balance gains
        normalised to green (``1 / AsShotNeutral`` for DNG), and LibRaw's
        camera-RGB to sRGB matrix (derived from ``ColorMatrix1`` for DNG);
        unit gains and an identity matrix when the file has none.

    Raises
    ------
    RawReadError
        Missing file, a suffix that is not a camera raw format, a file
        LibRaw cannot open, or a layout other than a 2x2 Bayer CFA.
    """
    path = Path(path)
    if not path.is_file():
        raise RawReadError(f"{path}: no such file")
    if path.suffix.lower() not in CAMERA_RAW_SUFFIXES:
        raise RawReadError(
            f"{path}: not a camera raw file (expected one of {', '.join(CAMERA_RAW_SUFFIXES)})"
        )
    with _open_camera_raw(path) as raw:
        return _camera_from_rawpy(raw, path)


def read_raw(
    path: str | Path,
    *,
    shape: tuple[int, int] | None = None,
    bits: int | None = None,
    float_scale: float | None = None,
    max_bytes: int | None = None,
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
        optional elsewhere (defaults to the dtype's width). A file whose
        integer type is narrower than ``bits`` is rejected.
    float_scale : float, optional
        Full-scale value of floating-point ``.npy``/TIFF samples stored on
        the integer scale (e.g. ``65535`` for float TIFFs holding 16-bit
        values, as PIL writes mode ``F``); samples are divided by it. By
        default floating-point samples must already lie in [0, 1].
    max_bytes : int, optional
        Largest declared pixel data of a TIFF, ``.npy`` or camera raw file
        (default :data:`MAX_RAW_BYTES`), checked before decompressing.

    Returns
    -------
    RawFrame
        Camera raw mosaics are turned upright by their orientation flag
        (module notes).

    Raises
    ------
    RawReadError
        Missing, truncated or corrupt file; a declared size above
        ``max_bytes``; a ``.npy`` name on a file that is not one; wrong size
        for the declared geometry; values above the white level (or
        ``float_scale``); an integer type narrower than ``bits``; not a 2-D
        even-sized mosaic.
    """
    path = Path(path)
    if not path.is_file():
        raise RawReadError(f"{path}: no such file")
    if bits is not None and not 1 <= bits <= 16:
        raise RawReadError(f"{path}: --bits must be between 1 and 16, got {bits}")
    if float_scale is not None and not (np.isfinite(float_scale) and float_scale > 0):
        raise RawReadError(f"{path}: float_scale must be a positive number, got {float_scale}")
    suffix = path.suffix.lower()
    if suffix == ".raw" or (shape is not None and suffix not in (".npy", *TIFF_SUFFIXES)):
        if shape is None or bits is None:
            raise RawReadError(
                f"{path}: a headerless raw file needs its geometry: shape (HxW) and bits"
            )
        return _read_headerless(path, shape, bits)
    if suffix == ".npy":
        return _from_array(read_npy(path, max_bytes), path, bits, float_scale)
    if suffix in TIFF_SUFFIXES:
        return _from_array(_read_tiff(path, max_bytes), path, bits, float_scale)
    if suffix in CAMERA_RAW_SUFFIXES:
        return _read_camera_raw(path, max_bytes)
    raise RawReadError(
        f"{path}: unknown raw format {suffix!r}; expected .npy, .tif/.tiff, .raw (with shape "
        f"and bits) or a camera raw file ({', '.join(CAMERA_RAW_SUFFIXES)})"
    )
