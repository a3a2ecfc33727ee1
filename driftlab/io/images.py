"""Writing views as PNG files and labelled contact sheets, atomically."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from driftlab.atomic import atomic_path

__all__ = ["save_contact_sheet", "save_view_png", "view_to_uint8"]


def view_to_uint8(view: np.ndarray) -> np.ndarray:
    """Convert a view to 8-bit ``(H, W, 3)`` for display.

    Parameters
    ----------
    view : numpy.ndarray
        ``(3, H, W)`` float; values are clipped to [0, 1].

    Returns
    -------
    numpy.ndarray
        ``(H, W, 3)`` uint8, ``round(255 * clip(view, 0, 1))``.

    Raises
    ------
    ValueError
        If ``view`` is not ``(3, H, W)``.
    """
    view = np.asarray(view)
    if view.ndim != 3 or view.shape[0] != 3:
        raise ValueError(f"view: expected shape (3, H, W), got {view.shape}")
    hwc = np.moveaxis(np.clip(np.nan_to_num(view, nan=0.0), 0.0, 1.0), 0, -1)
    return np.round(hwc * 255.0).astype(np.uint8)


def save_view_png(view: np.ndarray, path: str | Path) -> Path:
    """Write a ``(3, H, W)`` view in [0, 1] as an 8-bit PNG (atomically)."""
    from PIL import Image

    path = Path(path)
    with atomic_path(path) as tmp:
        Image.fromarray(view_to_uint8(view)).save(tmp, format="PNG")
    return path


def save_contact_sheet(
    views: Sequence[np.ndarray],
    titles: Sequence[str],
    path: str | Path,
    *,
    columns: int = 4,
    panel_inches: float = 3.2,
    suptitle: str = "",
) -> Path:
    """Write a labelled grid of views to a PNG (atomically).

    Parameters
    ----------
    views : sequence of numpy.ndarray
        ``(3, H, W)`` floats in [0, 1], all of one size.
    titles : sequence of str
        One label per view (pipeline names).
    path : str or Path
        Output PNG.
    columns : int
        Panels per row.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    if len(views) != len(titles) or not views:
        raise ValueError(f"contact sheet: {len(views)} views but {len(titles)} titles")
    columns = max(1, min(columns, len(views)))
    rows = int(np.ceil(len(views) / columns))
    h, w = np.asarray(views[0]).shape[1:]
    aspect = h / w
    fig, axes = plt.subplots(
        rows,
        columns,
        figsize=(columns * panel_inches, rows * panel_inches * aspect + 0.5 * rows),
        squeeze=False,
    )
    for ax in axes.ravel():
        ax.axis("off")
    for ax, view, title in zip(axes.ravel(), views, titles, strict=False):
        ax.imshow(view_to_uint8(view), interpolation="lanczos")
        ax.set_title(title, fontsize=10)
    if suptitle:
        fig.suptitle(suptitle, fontsize=11)
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return path
