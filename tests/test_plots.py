"""The shared plot writer: Agg PNGs, atomic, no overwrite without force, figures closed."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlplat.errors import OutputError
from mlplat.plots import png_bytes, pyplot, write_png


def _figure() -> object:
    fig, ax = pyplot().subplots()
    ax.plot([0, 1], [0, 1])
    return fig


def test_write_png_and_refuse_overwrite(tmp_path: Path) -> None:
    """A PNG is written; an existing file is kept unless force is given."""
    path = write_png(_figure(), tmp_path / "p.png")
    assert path.read_bytes().startswith(b"\x89PNG")
    with pytest.raises(OutputError, match="already exists"):
        write_png(_figure(), path)
    write_png(_figure(), path, force=True, tight=True)


def test_png_bytes_closes_the_figure() -> None:
    """After saving, the figure is closed so long runs do not keep figures alive."""
    plt = pyplot()
    fig = _figure()
    assert png_bytes(fig, dpi=50).startswith(b"\x89PNG")
    assert fig.number not in plt.get_fignums()
