"""The one way mlplat draws a ``--plot``: matplotlib's Agg backend, imported only when a plot is asked for.

Every command group builds its own figure with :func:`pyplot`, then hands it to :func:`png_bytes` or
:func:`write_png`, which close it (so a long run that plots does not keep figures alive) and write the PNG
atomically, refusing to overwrite without ``force``.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from mlplat.files import atomic_write_bytes

__all__ = ["png_bytes", "pyplot", "write_png"]


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the Agg backend (no display needed); heavy, so imported here only."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def png_bytes(fig: Any, *, dpi: int = 100, tight: bool = False) -> bytes:
    """The figure as PNG bytes; the figure is closed afterwards."""
    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight" if tight else None)
    finally:
        pyplot().close(fig)
    return buffer.getvalue()


def write_png(fig: Any, path: str | Path, *, force: bool = False, dpi: int = 100, tight: bool = False) -> Path:
    """Write the figure to ``path`` as PNG atomically (see :func:`mlplat.files.atomic_write_bytes`)."""
    return atomic_write_bytes(path, png_bytes(fig, dpi=dpi, tight=tight), force=force)
