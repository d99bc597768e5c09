"""The one way mlplat draws a ``--plot``: matplotlib's Agg backend, imported only when a plot is asked for.

Every command group builds its own figure with :func:`pyplot`, then hands it to :func:`figure_bytes` or
:func:`save_figure`, which close it (so a long run that plots does not keep figures alive) and write it
atomically, refusing to overwrite without ``force``. The file's name says the format: ``.png`` (also a
name without a suffix), ``.svg`` or ``.pdf``.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from mlplat.errors import OutputError
from mlplat.files import atomic_write_bytes, check_writable

__all__ = ["PLOT_FORMATS", "check_plot", "figure_bytes", "plot_format", "pyplot", "save_figure"]

PLOT_FORMATS = ("png", "svg", "pdf")


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the Agg backend (no display needed); heavy, so imported here only."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_format(path: str | Path) -> str:
    """The format a plot at ``path`` is written in, from its suffix; a name without one is PNG.

    >>> plot_format("sweep.png"), plot_format("report/latency.SVG"), plot_format("plot")
    ('png', 'svg', 'png')
    """
    suffix = Path(path).suffix.lower().lstrip(".")
    if not suffix:
        return "png"
    if suffix not in PLOT_FORMATS:
        raise OutputError(f"{path}: a plot is written as PNG, SVG or PDF; name it .png, .svg or .pdf, got .{suffix}")
    return suffix


def check_plot(path: str | Path, *, force: bool = False) -> Path:
    """Raise :class:`OutputError` now if :func:`save_figure` would refuse ``path`` (its suffix or the file)."""
    plot_format(path)
    return check_writable(path, force=force)


def figure_bytes(fig: Any, fmt: str = "png", *, dpi: int = 100, tight: bool = False) -> bytes:
    """The figure as bytes in ``fmt`` (one of :data:`PLOT_FORMATS`); the figure is closed afterwards."""
    plt = pyplot()
    buffer = io.BytesIO()
    # No date in PDF or SVG metadata and fixed SVG ids, so the same plot gives the same bytes.
    metadata = {"CreationDate": None} if fmt == "pdf" else {"Date": None} if fmt == "svg" else None
    try:
        with plt.rc_context({"svg.hashsalt": "mlplat"}):
            fig.savefig(buffer, format=fmt, dpi=dpi, bbox_inches="tight" if tight else None, metadata=metadata)
    finally:
        plt.close(fig)
    return buffer.getvalue()


def save_figure(fig: Any, path: str | Path, *, force: bool = False, dpi: int = 100, tight: bool = False) -> Path:
    """Write the figure to ``path`` atomically, in the format its suffix names (see :func:`plot_format`)."""
    return atomic_write_bytes(path, figure_bytes(fig, plot_format(path), dpi=dpi, tight=tight), force=force)
