"""Pascal VOC annotations: a general reader for folders in the VOC layout.

Layout (Everingham et al., "The PASCAL Visual Object Classes (VOC)
Challenge", IJCV 2010; the devkit's folder structure)::

    Annotations/<stem>.xml          <annotation> with <size> and <object><bndbox>
    JPEGImages/<stem>.jpg           the photographs
    ImageSets/Main/<set>.txt        optional id lists (one stem per line);
    ImageSets/<set>.txt             also accepted (e.g. the BCCD repository)

Box coordinates are read as pixel edges, ``0 <= xmin < xmax <= width`` (and
the same for y); the declared ``<size>`` is checked against the image file.
Every problem raises :class:`VocError` naming the file (and the object
number); with ``skip_bad=True`` bad boxes, or whole images when the file
itself is bad, are left out and listed as :class:`Skipped` entries.

Dataset-specific rules (class vocabulary, where the folder sits) are
parameters: :mod:`driftlab.datasets.bccd` builds on this module.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

import attrs
import numpy as np
from PIL import Image, UnidentifiedImageError

from driftlab.datasets.base import DatasetError
from driftlab.registry import suggest

__all__ = [
    "Skipped",
    "VocBox",
    "VocError",
    "VocImage",
    "VocIndex",
    "available_image_sets",
    "find_voc_root",
    "image_set_path",
    "parse_voc",
    "rasterise_boxes",
    "scan_voc",
]


class VocError(DatasetError):
    """A VOC file is missing or malformed; the message names the file."""


@attrs.frozen
class VocBox:
    """One annotated box, pixel-edge coordinates in the full image.

    Attributes
    ----------
    label : str
        Class name from ``<name>``.
    xmin, ymin, xmax, ymax : float
        Box edges in pixels, ``0 <= xmin < xmax <= width`` (same for y).
    index : int
        Position of the ``<object>`` in the XML file.
    """

    label: str
    xmin: float
    ymin: float
    xmax: float
    ymax: float
    index: int

    @property
    def centre(self) -> tuple[float, float]:
        """``(x, y)`` centre in pixels."""
        return (self.xmin + self.xmax) / 2.0, (self.ymin + self.ymax) / 2.0


@attrs.frozen
class VocImage:
    """One annotated image.

    Attributes
    ----------
    stem : str
        File stem of the annotation (``BloodImage_00000``).
    xml_path, jpeg_path : pathlib.Path
        Annotation and image files.
    width, height : int
        Image size in pixels, checked against the image file.
    boxes : tuple of VocBox
        Valid boxes, in file order.
    """

    stem: str
    xml_path: Path
    jpeg_path: Path
    width: int
    height: int
    boxes: tuple[VocBox, ...]


@attrs.frozen
class Skipped:
    """Something left out because ``skip_bad=True``: the file and why."""

    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


@attrs.frozen
class VocIndex:
    """Result of :func:`scan_voc`: usable images and what was skipped."""

    root: Path
    images: tuple[VocImage, ...]
    skipped: tuple[Skipped, ...]


def _text(node: ET.Element, tag: str, xml_path: Path, where: str) -> str:
    child = node.find(tag)
    if child is None or child.text is None or not child.text.strip():
        raise VocError(f"{xml_path}: {where} has no <{tag}>")
    return child.text.strip()


def _number(node: ET.Element, tag: str, xml_path: Path, where: str) -> float:
    text = _text(node, tag, xml_path, where)
    try:
        value = float(text)
    except ValueError:
        raise VocError(f"{xml_path}: {where} <{tag}> is not a number: {text!r}") from None
    if not np.isfinite(value):
        raise VocError(f"{xml_path}: {where} <{tag}> is not finite: {text!r}")
    return value


def _parse_box(
    obj: ET.Element,
    k: int,
    xml_path: Path,
    width: int,
    height: int,
    classes: Sequence[str] | None,
) -> VocBox:
    where = f"object {k}"
    label = _text(obj, "name", xml_path, where)
    where = f"object {k} ({label})"
    if classes is not None and label not in classes:
        raise VocError(
            f"{xml_path}: {where}: unknown class {label!r}{suggest(label, classes)}; "
            f"expected one of {', '.join(classes)}"
        )
    bnd = obj.find("bndbox")
    if bnd is None:
        raise VocError(f"{xml_path}: {where} has no <bndbox>")
    x0, y0, x1, y1 = (_number(bnd, t, xml_path, where) for t in ("xmin", "ymin", "xmax", "ymax"))
    if not (x1 > x0 and y1 > y0):
        raise VocError(
            f"{xml_path}: {where}: box ({x0:g}, {y0:g}, {x1:g}, {y1:g}) has zero or negative "
            "size; expected xmin < xmax and ymin < ymax"
        )
    if x0 < 0 or y0 < 0 or x1 > width or y1 > height:
        raise VocError(
            f"{xml_path}: {where}: box ({x0:g}, {y0:g}, {x1:g}, {y1:g}) lies outside the "
            f"{width}x{height} image"
        )
    return VocBox(label, x0, y0, x1, y1, k)


def parse_voc(
    xml_path: str | Path,
    jpeg_dir: str | Path,
    *,
    classes: Sequence[str] | None = None,
    skip_bad: bool = False,
) -> tuple[VocImage, list[Skipped]]:
    """Read one Pascal VOC annotation and check it against its image.

    Parameters
    ----------
    xml_path : str or Path
        Annotation file.
    jpeg_dir : str or Path
        Folder of the images; the file is ``<filename>`` from the XML, else
        ``<stem>.jpg``.
    classes : sequence of str, optional
        Allowed class names; None accepts any ``<name>``.
    skip_bad : bool
        Leave out bad boxes (listed in the returned report) instead of raising.

    Returns
    -------
    (VocImage, list of Skipped)
        The image with its valid boxes, and the boxes left out.

    Raises
    ------
    VocError
        Malformed XML, missing size fields, a missing, unreadable or
        differently sized image (always), or a bad box (unknown class, zero
        size, outside the image) unless ``skip_bad``.
    """
    xml_path = Path(xml_path)
    try:
        root = ET.parse(xml_path).getroot()
    except ET.ParseError as exc:
        raise VocError(f"{xml_path}: malformed XML: {exc}") from None
    except OSError as exc:
        raise VocError(f"{xml_path}: cannot read annotation: {exc}") from None
    if root.tag != "annotation":
        raise VocError(f"{xml_path}: expected a Pascal-VOC <annotation>, got <{root.tag}>")
    size = root.find("size")
    if size is None:
        raise VocError(f"{xml_path}: annotation has no <size>")
    width = int(_number(size, "width", xml_path, "<size>"))
    height = int(_number(size, "height", xml_path, "<size>"))
    if width < 2 or height < 2:
        raise VocError(f"{xml_path}: image size {width}x{height} is too small")
    name_node = root.find("filename")
    filename = (
        name_node.text.strip()
        if name_node is not None and name_node.text and name_node.text.strip()
        else f"{xml_path.stem}.jpg"
    )
    jpeg_path = Path(jpeg_dir) / Path(filename).name
    if not jpeg_path.is_file():
        raise VocError(f"{xml_path}: image {jpeg_path} not found")
    try:
        with Image.open(jpeg_path) as img:
            actual = img.size
    except (UnidentifiedImageError, OSError) as exc:
        raise VocError(f"{jpeg_path}: not a readable image: {exc}") from None
    if actual != (width, height):
        raise VocError(
            f"{xml_path}: declares a {width}x{height} image but {jpeg_path.name} is "
            f"{actual[0]}x{actual[1]}"
        )
    boxes: list[VocBox] = []
    skipped: list[Skipped] = []
    for k, obj in enumerate(root.findall("object")):
        try:
            boxes.append(_parse_box(obj, k, xml_path, width, height, classes))
        except VocError as exc:
            if not skip_bad:
                raise VocError(f"{exc} (open with skip_bad=True to leave it out)") from None
            message = str(exc).removeprefix(f"{xml_path}: ")
            skipped.append(Skipped(str(xml_path), message))
    image = VocImage(xml_path.stem, xml_path, jpeg_path, width, height, tuple(boxes))
    return image, skipped


def find_voc_root(data_root: str | Path, subfolder: str | None = None) -> Path:
    """Folder holding ``Annotations`` and ``JPEGImages``: ``data_root`` or ``data_root/subfolder``.

    Raises
    ------
    VocError
        If neither has both folders; the message names what is missing.
    """
    base = Path(data_root)
    candidates = [base] + ([base / subfolder] if subfolder else [])
    for candidate in candidates:
        if (candidate / "Annotations").is_dir() and (candidate / "JPEGImages").is_dir():
            return candidate
    missing = [d for d in ("Annotations", "JPEGImages") if not (base / d).is_dir()]
    also = f"; also looked in {base / subfolder}" if subfolder else ""
    raise VocError(f"{base}: not a Pascal VOC folder (missing {', '.join(missing)}{also})")


def available_image_sets(root: Path) -> list[str]:
    """Names of the id lists in ``ImageSets/Main`` and ``ImageSets`` (sorted, unique)."""
    names: set[str] = set()
    for folder in (root / "ImageSets" / "Main", root / "ImageSets"):
        if folder.is_dir():
            names.update(p.stem for p in folder.glob("*.txt") if p.is_file())
    return sorted(names)


def image_set_path(root: Path, name: str) -> Path:
    """``ImageSets/Main/<name>.txt`` (the VOC devkit's place) or ``ImageSets/<name>.txt``.

    Raises
    ------
    VocError
        A name that is not a plain file name, or no such list (naming the
        lists that exist, with the closest one).
    """
    if not name or Path(name).name != name or name.startswith("."):
        raise VocError(f"image_set: expected the name of an id list, got {name!r}")
    for folder in (root / "ImageSets" / "Main", root / "ImageSets"):
        path = folder / f"{name}.txt"
        if path.is_file():
            return path
    found = available_image_sets(root)
    listed = ", ".join(found) if found else "none"
    raise VocError(
        f"image_set {name!r}{suggest(name, found)}: no id list {root / 'ImageSets'}/Main/"
        f"{name}.txt or {root / 'ImageSets'}/{name}.txt; available: {listed}"
    )


def _read_id_list(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise VocError(f"{path}: cannot read image set list ({exc})") from None
    stems = []
    for number, line in enumerate(text.splitlines(), start=1):
        token = line.split()[0] if line.split() else ""
        if not token:
            continue
        if Path(token).name != token or token.startswith("."):
            raise VocError(f"{path}:{number}: not an image id: {token!r}")
        stems.append(token)
    return stems


def scan_voc(
    data_root: str | Path,
    *,
    classes: Sequence[str] | None = None,
    skip_bad: bool = False,
    image_set: str | None = None,
    subfolder: str | None = None,
) -> VocIndex:
    """Parse every annotation of a VOC folder.

    Parameters
    ----------
    data_root : str or Path
        See :func:`find_voc_root`.
    classes : sequence of str, optional
        Allowed class names (None: any).
    skip_bad : bool
        Leave out bad boxes and bad images instead of raising.
    image_set : str or None
        Restrict to the ids of an id list (:func:`image_set_path`; the first
        token of each line, as in the devkit's per-class lists); None takes
        every ``Annotations/*.xml``.
    subfolder : str, optional
        Where the VOC folder may sit below ``data_root``.

    Returns
    -------
    VocIndex
        Images sorted by stem, and the report of skipped boxes and files.

    Raises
    ------
    VocError
        Not a VOC folder, unknown image set, no annotations, or any bad file
        or box unless ``skip_bad``.
    """
    root = find_voc_root(data_root, subfolder)
    annotations = root / "Annotations"
    if image_set is None:
        xml_paths = sorted(annotations.glob("*.xml"))
    else:
        stems = _read_id_list(image_set_path(root, image_set))
        xml_paths = [annotations / f"{stem}.xml" for stem in sorted(set(stems))]
    if not xml_paths:
        raise VocError(f"{annotations}: no annotation files (*.xml)")
    images: list[VocImage] = []
    skipped: list[Skipped] = []
    for xml_path in xml_paths:
        try:
            if not xml_path.is_file():
                raise VocError(f"{xml_path}: annotation file not found")
            image, bad_boxes = parse_voc(
                xml_path, root / "JPEGImages", classes=classes, skip_bad=skip_bad
            )
        except VocError as exc:
            if not skip_bad:
                raise
            skipped.append(Skipped(str(xml_path), f"image left out: {exc}"))
            continue
        images.append(image)
        skipped.extend(bad_boxes)
    return VocIndex(root, tuple(images), tuple(skipped))


def rasterise_boxes(
    boxes: Sequence[VocBox], x0: float, y0: float, window: float, size: int
) -> np.ndarray:
    """Mask of the union of boxes over a square window, sampled at pixel centres.

    Parameters
    ----------
    boxes : sequence of VocBox
        Boxes in full-image pixels.
    x0, y0 : float
        Top-left of the window in full-image pixels.
    window : float
        Side of the window in full-image pixels.
    size : int
        Side of the output mask in pixels.

    Returns
    -------
    numpy.ndarray
        ``(size, size)`` uint8, 1 where a pixel centre lies inside a box.
    """
    centres = (np.arange(size) + 0.5) * (window / size)
    xs, ys = x0 + centres, y0 + centres
    mask = np.zeros((size, size), dtype=bool)
    for box in boxes:
        inside_x = (xs >= box.xmin) & (xs < box.xmax)
        inside_y = (ys >= box.ymin) & (ys < box.ymax)
        mask |= inside_y[:, None] & inside_x[None, :]
    return mask.astype(np.uint8)
