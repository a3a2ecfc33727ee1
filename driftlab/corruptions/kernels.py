"""Parameterised corruption kernels on floating-point views (the CIFAR-10-C way).

Each kernel takes an ``(H, W, 3)`` float64 image in [0, 1], a
:class:`numpy.random.Generator` and the parameters of one severity-table row,
and returns an ``(H, W, 3)`` float64 image (clipped to [0, 1] by the caller).
The algorithms are those of Hendrycks & Dietterich's released
``make_cifar_c.py`` (ICLR 2019; github.com/hendrycks/robustness), re-written
here for any view size and without the 8-bit round trip: the paper whose
protocol driftlab follows (Oala et al., TMLR 2023) applied them to float
views in [0, 1] the same way. Every random number comes from the generator
passed in; numpy's global generator is never used.

Differences from ``make_cifar_c.py`` (which assumes 32-pixel PIL images)
-----------------------------------------------------------------------
* Sizes in pixels (blur sigmas, elastic displacements) are applied as given,
  in pixels of the view, as the paper's code did on its 256-pixel crops; they
  are not rescaled from 32 pixels.
* ``glass_blur`` shuffles pixels over the whole view (``make_cifar_c.py``
  loops over a fixed 32-pixel square), in float rather than 8 bits.
* ``motion_blur`` and the snow layer's streaks use ImageMagick's
  ``MotionBlurImage`` in the original; here the shift-and-add Gaussian line
  kernel of the ``imagecorruptions`` package (its re-implementation of the
  same ImageMagick call) is used, in float.
* ``fog``'s plasma fractal covers the view (next power of two), not 32 pixels.
* ``frost`` resizes the frost photograph by 0.2 as the table does, or by the
  smallest factor that covers the view when 0.2 is too small; the photographs
  are those shipped with ``imagecorruptions`` (the originals of ImageNet-C).
* ``jpeg_compression`` necessarily goes through 8-bit RGB; ``pixelate``
  resamples float images (PIL mode ``F``) with box filters both ways.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable

import numpy as np
from scipy.ndimage import correlate, map_coordinates
from scipy.ndimage import zoom as scipy_zoom

__all__ = ["KERNELS", "clipped_zoom", "motion_blur_layer", "plasma_fractal"]

Kernel = Callable[..., np.ndarray]


def _gaussian(image: np.ndarray, sigma: float, **kwargs: object) -> np.ndarray:
    from skimage.filters import gaussian

    if sigma <= 0:
        return np.array(image, dtype=np.float64, copy=True)
    return gaussian(image, sigma=sigma, **kwargs)


def gaussian_noise(x: np.ndarray, rng: np.random.Generator, sigma: float) -> np.ndarray:
    """Additive Gaussian noise of standard deviation ``sigma`` (fraction of full scale)."""
    return x + rng.normal(0.0, sigma, size=x.shape)


def shot_noise(x: np.ndarray, rng: np.random.Generator, photons: float) -> np.ndarray:
    """Poisson noise: ``Poisson(x * photons) / photons``."""
    return rng.poisson(x * photons) / float(photons)


def impulse_noise(x: np.ndarray, rng: np.random.Generator, amount: float) -> np.ndarray:
    """Salt-and-pepper noise on a fraction ``amount`` of the samples (scikit-image ``s&p``)."""
    from skimage.util import random_noise

    return random_noise(x, mode="s&p", amount=amount, rng=rng)


def speckle_noise(x: np.ndarray, rng: np.random.Generator, sigma: float) -> np.ndarray:
    """Multiplicative noise ``x + x * Normal(0, sigma)``."""
    return x + x * rng.normal(0.0, sigma, size=x.shape)


def gaussian_blur(x: np.ndarray, rng: np.random.Generator, sigma: float) -> np.ndarray:
    """Gaussian blur of ``sigma`` pixels per channel (scikit-image, border ``nearest``)."""
    return _gaussian(x, sigma, channel_axis=-1)


def _shuffle_permutation(
    h: int, w: int, rng: np.random.Generator, delta: int, iterations: int
) -> np.ndarray:
    # the swap order of make_cifar_c.py: rows and columns from the far edge inward
    rows = range(h - delta, delta, -1)
    cols = range(w - delta, delta, -1)
    steps = len(rows) * len(cols)
    perm = list(range(h * w))
    for _ in range(iterations):
        offsets = rng.integers(-delta, delta, size=(steps, 2)).tolist()
        k = 0
        for r in rows:
            for c in cols:
                dx, dy = offsets[k]
                k += 1
                a, b = r * w + c, (r + dy) * w + (c + dx)
                perm[a], perm[b] = perm[b], perm[a]
    return np.asarray(perm, dtype=np.int64)


def glass_blur(
    x: np.ndarray, rng: np.random.Generator, sigma: float, max_delta: int, iterations: int
) -> np.ndarray:
    """Blur, shuffle pixels locally (up to ``max_delta`` pixels, ``iterations`` passes), blur."""
    h, w = x.shape[:2]
    blurred = _gaussian(x, sigma, channel_axis=-1)
    perm = _shuffle_permutation(h, w, rng, int(max_delta), int(iterations))
    shuffled = blurred.reshape(h * w, -1)[perm].reshape(x.shape)
    return _gaussian(shuffled, sigma, channel_axis=-1)


def _disk(radius: float, alias_blur: float) -> np.ndarray:
    # make_cifar_c.disk: aliased disk on a grid of at least 17 x 17, smoothed by a
    # 3 x 3 (radius <= 8) or 5 x 5 Gaussian (OpenCV GaussianBlur, reflect-101 border)
    if radius <= 8:
        grid, size = np.arange(-8, 9), 3
    else:
        grid, size = np.arange(-int(radius), int(radius) + 1), 5
    xx, yy = np.meshgrid(grid, grid)
    disk = ((xx**2 + yy**2) <= radius**2).astype(np.float64)
    disk /= disk.sum()
    taps = np.arange(size) - (size - 1) / 2
    g = np.exp(-(taps**2) / (2 * alias_blur**2))
    g /= g.sum()
    return correlate(correlate(disk, g[None, :], mode="mirror"), g[:, None], mode="mirror")


def defocus_blur(
    x: np.ndarray, rng: np.random.Generator, radius: float, alias_blur: float
) -> np.ndarray:
    """Convolution with an anti-aliased disk of ``radius`` pixels (reflect-101 border)."""
    kernel = _disk(radius, alias_blur)
    return np.stack([correlate(x[..., c], kernel, mode="mirror") for c in range(3)], axis=-1)


def _shift(image: np.ndarray, dx: int, dy: int) -> np.ndarray:
    # translate by (dx, dy) pixels, repeating the edge row/column into the gap
    h, w = image.shape[:2]
    pad = [(max(dy, 0), max(-dy, 0)), (max(dx, 0), max(-dx, 0))] + [(0, 0)] * (image.ndim - 2)
    padded = np.pad(image, pad, mode="edge")
    top, left = max(-dy, 0), max(-dx, 0)
    return padded[top : top + h, left : left + w]


def motion_blur_layer(image: np.ndarray, radius: int, sigma: float, angle: float) -> np.ndarray:
    """Linear motion blur: a Gaussian-weighted sum of shifted copies along ``angle`` degrees.

    The kernel of ``imagecorruptions`` (its re-implementation of ImageMagick's
    ``MotionBlurImage``): ``2 * radius + 1`` taps weighted by a half Gaussian
    of ``sigma`` pixels, shifted with edge repetition.

    Parameters
    ----------
    image : numpy.ndarray
        ``(H, W)`` or ``(H, W, C)`` float.
    radius : int
        Kernel radius in pixels.
    sigma : float
        Standard deviation of the tap weights in pixels.
    angle : float
        Direction in degrees.

    Returns
    -------
    numpy.ndarray
        Same shape, float64.
    """
    width = 2 * int(radius) + 1
    taps = np.exp(-(np.arange(width) ** 2) / (2 * sigma**2))
    taps /= taps.sum()
    py, px = width * math.sin(math.radians(angle)), width * math.cos(math.radians(angle))
    hypot = math.hypot(py, px)
    out = np.zeros(image.shape, dtype=np.float64)
    h, w = image.shape[:2]
    for i in range(width):
        dy = -math.ceil(i * py / hypot - 0.5)
        dx = -math.ceil(i * px / hypot - 0.5)
        if abs(dy) >= h or abs(dx) >= w:
            break
        out += taps[i] * _shift(image, dx, dy)
    return out


def motion_blur(x: np.ndarray, rng: np.random.Generator, radius: int, sigma: float) -> np.ndarray:
    """Motion blur at a random angle in [-45, 45) degrees."""
    return motion_blur_layer(x, int(radius), float(sigma), float(rng.uniform(-45, 45)))


def clipped_zoom(image: np.ndarray, factor: float) -> np.ndarray:
    """Zoom into the centre by ``factor`` (>= 1) and trim back to the input size.

    Parameters
    ----------
    image : numpy.ndarray
        ``(H, W, C)`` float.
    factor : float
        Zoom factor (linear interpolation, ``scipy.ndimage.zoom`` order 1).

    Returns
    -------
    numpy.ndarray
        ``(H, W, C)``; the centre crop of ``ceil(H / factor)`` x
        ``ceil(W / factor)`` pixels magnified, centred as in
        ``make_cifar_c.clipped_zoom``.
    """
    h, w = image.shape[:2]
    ch, cw = math.ceil(h / factor), math.ceil(w / factor)
    top, left = (h - ch) // 2, (w - cw) // 2
    zoomed = scipy_zoom(image[top : top + ch, left : left + cw], (factor, factor, 1), order=1)
    trim_top, trim_left = (zoomed.shape[0] - h) // 2, (zoomed.shape[1] - w) // 2
    return zoomed[trim_top : trim_top + h, trim_left : trim_left + w]


def zoom_blur(x: np.ndarray, rng: np.random.Generator, max_zoom: float, step: float) -> np.ndarray:
    """Mean of the view and its centre zooms by ``numpy.arange(1, max_zoom, step)``."""
    factors = np.arange(1, max_zoom, step)
    out = np.zeros_like(x)
    for factor in factors:
        out += clipped_zoom(x, float(factor))
    return (x + out) / (len(factors) + 1)


def plasma_fractal(size: int, decay: float, rng: np.random.Generator) -> np.ndarray:
    """Diamond-square height map in [0, 1] (after FLHerne/mapgen, as in ImageNet-C).

    Parameters
    ----------
    size : int
        Side, a power of two.
    decay : float
        Factor by which the random amplitude shrinks at each level.
    rng : numpy.random.Generator

    Returns
    -------
    numpy.ndarray
        ``(size, size)`` float64 in [0, 1].
    """
    if size < 1 or size & (size - 1):
        raise ValueError(f"plasma_fractal: size must be a power of two, got {size}")
    grid = np.zeros((size, size), dtype=np.float64)
    step, wibble = size, 100.0
    while step >= 2:
        half = step // 2
        corners = grid[0:size:step, 0:size:step]
        square = corners + np.roll(corners, -1, axis=0)
        square = square + np.roll(square, -1, axis=1)
        grid[half:size:step, half:size:step] = square / 4 + wibble * rng.uniform(
            -wibble, wibble, square.shape
        )
        centres = grid[half:size:step, half:size:step]
        ul = grid[0:size:step, 0:size:step]
        left = centres + np.roll(centres, 1, axis=0) + ul + np.roll(ul, -1, axis=1)
        grid[0:size:step, half:size:step] = left / 4 + wibble * rng.uniform(
            -wibble, wibble, left.shape
        )
        top = centres + np.roll(centres, 1, axis=1) + ul + np.roll(ul, -1, axis=0)
        grid[half:size:step, 0:size:step] = top / 4 + wibble * rng.uniform(
            -wibble, wibble, top.shape
        )
        step //= 2
        wibble /= decay
    grid -= grid.min()
    top_value = grid.max()
    return grid / top_value if top_value > 0 else grid


def fog(x: np.ndarray, rng: np.random.Generator, strength: float, decay: float) -> np.ndarray:
    """Additive plasma-fractal haze, rescaled to keep the view's maximum."""
    h, w = x.shape[:2]
    size = 1 << (max(h, w) - 1).bit_length()  # next power of two covering the view
    haze = plasma_fractal(size, decay, rng)[:h, :w, None]
    top = x.max()
    return (x + strength * haze) * top / (top + strength)


def _frost_texture(index: int, scale: float, shape: tuple[int, int]) -> np.ndarray:
    import importlib.resources

    import cv2

    name = ["frost1.png", "frost2.png", "frost3.png", "frost4.jpg", "frost5.jpg", "frost6.jpg"]
    ref = importlib.resources.files("imagecorruptions") / "frost" / name[index]
    with importlib.resources.as_file(ref) as path:
        bgr = cv2.imread(str(path))
    if bgr is None:
        raise RuntimeError(f"frost photograph {name[index]} of imagecorruptions is missing")
    h, w = shape
    cover = max((h + 1) / bgr.shape[0], (w + 1) / bgr.shape[1])
    factor = scale if scale >= cover else 1.1 * cover
    resized = cv2.resize(bgr, (0, 0), fx=factor, fy=factor)
    return resized[..., ::-1].astype(np.float64) / 255.0


def frost(
    x: np.ndarray, rng: np.random.Generator, image_weight: float, frost_weight: float
) -> np.ndarray:
    """Blend with a random crop of one of five frost photographs (resized by 0.2)."""
    h, w = x.shape[:2]
    texture = _frost_texture(int(rng.integers(5)), 0.2, (h, w))
    top = int(rng.integers(0, texture.shape[0] - h))
    left = int(rng.integers(0, texture.shape[1] - w))
    return image_weight * x + frost_weight * texture[top : top + h, left : left + w]


def _grey(x: np.ndarray) -> np.ndarray:
    # ITU-R BT.601 luma, as OpenCV's COLOR_RGB2GRAY
    return x @ np.array([0.299, 0.587, 0.114])


def snow(
    x: np.ndarray,
    rng: np.random.Generator,
    loc: float,
    scale: float,
    zoom: float,
    threshold: float,
    blur_radius: int,
    blur_sigma: float,
    blend: float,
) -> np.ndarray:
    """A thresholded, zoomed, motion-blurred noise layer over a brightened, greyer view."""
    h, w = x.shape[:2]
    layer = rng.normal(loc, scale, size=(h, w))
    layer = clipped_zoom(layer[..., None], zoom)[..., 0]
    layer[layer < threshold] = 0
    layer = np.clip(layer, 0, 1)
    angle = float(rng.uniform(-135, -45))
    layer = motion_blur_layer(layer, int(blur_radius), float(blur_sigma), angle)[..., None]
    bright = np.maximum(x, _grey(x)[..., None] * 1.5 + 0.5)
    return blend * x + (1 - blend) * bright + layer + np.rot90(layer, k=2)


def spatter(
    x: np.ndarray,
    rng: np.random.Generator,
    loc: float,
    scale: float,
    sigma: float,
    threshold: float,
    intensity: float,
    mud: int,
) -> np.ndarray:
    """Water (``mud = 0``) or mud (``mud = 1``) splashes from a thresholded random layer."""
    import cv2

    h, w = x.shape[:2]
    liquid = _gaussian(rng.normal(loc, scale, size=(h, w)), sigma)
    liquid[liquid < threshold] = 0
    if int(mud) == 0:
        layer = np.clip(liquid * 255, 0, 255).astype(np.uint8)
        dist = 255 - cv2.Canny(layer, 50, 150)
        dist = cv2.distanceTransform(dist, cv2.DIST_L2, 5)
        _, dist = cv2.threshold(dist, 20, 20, cv2.THRESH_TRUNC)
        dist = cv2.blur(dist, (3, 3)).astype(np.uint8)
        dist = cv2.equalizeHist(dist)
        ker = np.array([[-2, -1, 0], [-1, 1, 1], [0, 1, 2]])
        dist = cv2.filter2D(dist, cv2.CV_8U, ker)
        dist = cv2.blur(dist, (3, 3)).astype(np.float64)
        m = layer.astype(np.float64) * dist
        top = m.max()
        if top <= 0:  # no liquid passed the threshold: nothing to add
            return x.copy()
        m = m / top * intensity
        water = np.array([175, 238, 238]) / 255.0
        return x + m[..., None] * water
    m = _gaussian((liquid > threshold).astype(np.float64), intensity)
    m[m < 0.8] = 0
    mud_colour = np.array([63, 42, 20]) / 255.0
    return x * (1 - m[..., None]) + mud_colour * m[..., None]


def contrast(x: np.ndarray, rng: np.random.Generator, factor: float) -> np.ndarray:
    """Deviations from each channel's mean scaled by ``factor``."""
    means = x.mean(axis=(0, 1), keepdims=True)
    return (x - means) * factor + means


def brightness(x: np.ndarray, rng: np.random.Generator, shift: float) -> np.ndarray:
    """HSV value raised by ``shift`` (scikit-image HSV)."""
    from skimage.color import hsv2rgb, rgb2hsv

    hsv = rgb2hsv(np.clip(x, 0, 1))
    hsv[..., 2] = np.clip(hsv[..., 2] + shift, 0, 1)
    return hsv2rgb(hsv)


def saturate(x: np.ndarray, rng: np.random.Generator, scale: float, offset: float) -> np.ndarray:
    """HSV saturation ``s * scale + offset`` (scikit-image HSV)."""
    from skimage.color import hsv2rgb, rgb2hsv

    hsv = rgb2hsv(np.clip(x, 0, 1))
    hsv[..., 1] = np.clip(hsv[..., 1] * scale + offset, 0, 1)
    return hsv2rgb(hsv)


def jpeg_compression(x: np.ndarray, rng: np.random.Generator, quality: int) -> np.ndarray:
    """JPEG round trip at ``quality`` (Pillow), through 8-bit RGB."""
    from PIL import Image

    image = Image.fromarray(np.round(np.clip(x, 0, 1) * 255).astype(np.uint8))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=int(quality))
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        return np.asarray(decoded.convert("RGB"), dtype=np.float64) / 255.0


def pixelate(x: np.ndarray, rng: np.random.Generator, factor: float) -> np.ndarray:
    """Box downsampling to ``factor`` of the size and box upsampling back (float, Pillow)."""
    from PIL import Image

    h, w = x.shape[:2]
    small = (max(1, int(w * factor)), max(1, int(h * factor)))
    channels = []
    for c in range(3):
        plane = Image.fromarray(np.ascontiguousarray(x[..., c], dtype=np.float32), mode="F")
        plane = plane.resize(small, Image.Resampling.BOX).resize((w, h), Image.Resampling.BOX)
        channels.append(np.asarray(plane, dtype=np.float64))
    return np.stack(channels, axis=-1)


def elastic_transform(
    x: np.ndarray, rng: np.random.Generator, alpha: float, sigma: float, affine: float
) -> np.ndarray:
    """Random affine warp (corners moved up to ``affine`` px), then a smoothed random
    displacement field of ``sigma`` px scaled by ``alpha`` px (reflect borders)."""
    import cv2

    h, w = x.shape[:2]
    centre = np.float32([h, w]) // 2
    square = min(h, w) // 3
    pts1 = np.float32([centre + square, [centre[0] + square, centre[1] - square], centre - square])
    pts2 = pts1 + rng.uniform(-affine, affine, size=pts1.shape).astype(np.float32)
    matrix = cv2.getAffineTransform(pts1, pts2)
    warped = cv2.warpAffine(
        np.ascontiguousarray(x, dtype=np.float32),
        matrix,
        (w, h),
        borderMode=cv2.BORDER_REFLECT_101,
    ).astype(np.float64)
    dx = _gaussian(rng.uniform(-1, 1, size=(h, w)), sigma, mode="reflect", truncate=3) * alpha
    dy = _gaussian(rng.uniform(-1, 1, size=(h, w)), sigma, mode="reflect", truncate=3) * alpha
    yy, xx = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    coords = [yy + dy, xx + dx]
    return np.stack(
        [map_coordinates(warped[..., c], coords, order=1, mode="reflect") for c in range(3)],
        axis=-1,
    )


KERNELS: dict[str, Kernel] = {
    "gaussian_noise": gaussian_noise,
    "shot_noise": shot_noise,
    "impulse_noise": impulse_noise,
    "speckle_noise": speckle_noise,
    "gaussian_blur": gaussian_blur,
    "glass_blur": glass_blur,
    "defocus_blur": defocus_blur,
    "motion_blur": motion_blur,
    "zoom_blur": zoom_blur,
    "snow": snow,
    "frost": frost,
    "fog": fog,
    "brightness": brightness,
    "contrast": contrast,
    "elastic_transform": elastic_transform,
    "pixelate": pixelate,
    "jpeg_compression": jpeg_compression,
    "spatter": spatter,
    "saturate": saturate,
}
"""Kernel of each corruption name, called as ``kernel(image, rng, **parameters)``."""
