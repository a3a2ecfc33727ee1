"""Raw readers against hostile files: size bombs, fake .npy files, and the orientation flag."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from driftlab.datasets import DatasetError
from driftlab.datasets.files import read_mask
from driftlab.io.raw import (
    MAX_RAW_BYTES,
    RawReadError,
    check_tiff_size,
    orient_mosaic,
    read_camera_metadata,
    read_npy,
    read_raw,
)
from tests.fixtures_zenodo import write_dng


def _forge_tiff_size(path, height: int, width: int) -> None:
    """Rewrite the declared image size of a TIFF's first page in place (a forged header)."""
    with tifffile.TiffFile(path, mode="r+b") as tif:
        tags = tif.pages[0].tags
        tags["ImageLength"].overwrite(height)
        tags["ImageWidth"].overwrite(width)
        tags["RowsPerStrip"].overwrite(height)


def test_zlib_tiff_declaring_gigabytes_is_refused_before_decompressing(tmp_path, monkeypatch):
    path = tmp_path / "bomb.tif"
    tifffile.imwrite(path, np.zeros((16, 16), np.uint16), compression="zlib")
    _forge_tiff_size(path, 60000, 50000)  # 6 GB of uint16 declared by a file of a few hundred bytes
    assert path.stat().st_size < 4096

    def no_decoding(*args, **kwargs):
        raise AssertionError("pixel data must not be decoded")

    monkeypatch.setattr(tifffile, "imread", no_decoding)
    with pytest.raises(RawReadError, match=r"bomb.tif: TIFF header declares a 60000x50000 image"):
        read_raw(path)
    with pytest.raises(RawReadError, match="more than the limit of 1,024 MiB"):
        check_tiff_size(path)
    with pytest.raises(DatasetError, match="declares a 60000x50000 image"):
        read_mask(path)


def test_tiff_size_limit_is_a_parameter(tmp_path):
    path = tmp_path / "frame.tif"
    tifffile.imwrite(path, np.ones((64, 64), np.uint16), compression="zlib")
    assert check_tiff_size(path) == ((64, 64), np.dtype("uint16"))
    with pytest.raises(RawReadError, match="64x64 image of uint16"):
        read_raw(path, max_bytes=4096)
    assert read_raw(path, max_bytes=8192).raw.shape == (64, 64)
    assert MAX_RAW_BYTES == 2**30


def test_text_file_named_npy_is_not_called_pickled(tmp_path):
    path = tmp_path / "frame.npy"
    path.write_text("1 2 3\n4 5 6\n")
    with pytest.raises(RawReadError, match=r"frame.npy: not a .npy file") as info:
        read_raw(path)
    assert "pickle" not in str(info.value)
    with pytest.raises(DatasetError, match=r"not a \.npy file"):
        read_mask(path)


def test_npy_object_arrays_truncated_data_and_declared_size(tmp_path):
    objects = tmp_path / "objects.npy"
    np.save(objects, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    with pytest.raises(RawReadError, match="holds Python objects"):
        read_npy(objects)
    cut = tmp_path / "cut.npy"
    np.save(cut, np.zeros((64, 64), np.uint16))
    cut.write_bytes(cut.read_bytes()[:-100])
    with pytest.raises(RawReadError, match=r"truncated .npy file: its header declares 8192 bytes"):
        read_raw(cut)
    big = tmp_path / "big.npy"
    np.save(big, np.zeros((64, 64), np.uint16))
    with pytest.raises(RawReadError, match=r".npy header declares a 64x64 image of uint16"):
        read_npy(big, max_bytes=1000)
    np.testing.assert_array_equal(read_npy(big), np.zeros((64, 64), np.uint16))


LEVELS = {"R": 1000, "G": 2000, "B": 3000}


def _mosaic(cfa: str, shape=(24, 32)) -> np.ndarray:
    tile = np.array([[LEVELS[cfa[0]], LEVELS[cfa[1]]], [LEVELS[cfa[2]], LEVELS[cfa[3]]]])
    data = np.tile(tile, (shape[0] // 2, shape[1] // 2)).astype(np.uint16)
    data[:2, :4] += 7  # marks the top-left corner of the stored frame
    return data


# EXIF Orientation -> (LibRaw flip, how the stored frame is turned upright, measured
# against LibRaw's own processed output)
ORIENTATIONS = {
    3: (3, lambda a: np.rot90(a, 2)),
    6: (6, lambda a: np.rot90(a, -1)),
    8: (5, lambda a: np.rot90(a, 1)),
    2: (1, lambda a: a[:, ::-1]),
}


@pytest.mark.parametrize("orientation", sorted(ORIENTATIONS))
@pytest.mark.parametrize("cfa", ["RGGB", "GBRG"])
def test_camera_raw_orientation_flag_turns_the_mosaic_and_its_cfa(tmp_path, orientation, cfa):
    data = _mosaic(cfa)
    black = (256, 260, 258, 262)
    path = write_dng(tmp_path / "f.dng", data, cfa=cfa, black_level=black, orientation=orientation)
    flip, turn = ORIENTATIONS[orientation]
    frame = read_raw(path)
    assert frame.orientation == flip
    expected = turn(data.astype(np.float32) / np.float32(4095))
    np.testing.assert_array_equal(frame.raw, expected)
    camera = frame.camera
    # every pixel of the upright mosaic carries the colour its CFA pattern places there
    values = np.array([LEVELS[c] for c in camera.cfa]).reshape(2, 2)
    upright = np.rint(frame.raw * 4095).astype(int)
    upright[upright % 1000 == 7] -= 7
    np.testing.assert_array_equal(
        upright, np.tile(values, (upright.shape[0] // 2, upright.shape[1] // 2))
    )
    # per-site black levels move with their sites
    np.testing.assert_allclose(
        np.reshape(camera.black_level, (2, 2)), turn(np.reshape(black, (2, 2)) / 4095)
    )
    assert read_camera_metadata(path) == camera


def test_upright_camera_raw_is_unchanged(tmp_path):
    data = _mosaic("RGGB")
    frame = read_raw(write_dng(tmp_path / "u.dng", data, orientation=1))
    assert frame.orientation == 0 and frame.camera.cfa == "RGGB"
    np.testing.assert_array_equal(frame.raw, data / np.float32(4095))


def test_orient_mosaic_validates_its_input():
    pattern = np.array([["R", "G"], ["G", "B"]])
    raw, turned = orient_mosaic(np.zeros((4, 6)), pattern, 3)
    assert "".join(turned.ravel()) == "BGGR" and raw.shape == (4, 6)
    assert "".join(orient_mosaic(np.zeros((4, 6)), pattern, 6)[1].ravel()) == "GRBG"
    with pytest.raises(ValueError, match=r"0\.\.7"):
        orient_mosaic(np.zeros((4, 4)), pattern, 9)
    with pytest.raises(ValueError, match="even sides"):
        orient_mosaic(np.zeros((3, 4)), pattern, 3)
