"""The shared plot writer: Agg figures as PNG, SVG or PDF by the file's suffix, atomic, no overwrite
without force, figures closed."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlplat.errors import OutputError
from mlplat.plots import check_plot, figure_bytes, pyplot, save_figure


def _figure() -> object:
    fig, ax = pyplot().subplots()
    ax.plot([0, 1], [0, 1])
    return fig


def test_save_figure_and_refuse_overwrite(tmp_path: Path) -> None:
    """A PNG is written; an existing file is kept unless force is given."""
    path = save_figure(_figure(), tmp_path / "p.png")
    assert path.read_bytes().startswith(b"\x89PNG")
    with pytest.raises(OutputError, match="already exists"):
        save_figure(_figure(), path)
    save_figure(_figure(), path, force=True, tight=True)


@pytest.mark.parametrize(("name", "magic"), [("p.svg", b"<?xml"), ("p.PDF", b"%PDF"), ("p", b"\x89PNG")])
def test_the_suffix_chooses_the_format(tmp_path: Path, name: str, magic: bytes) -> None:
    """`--plot x.svg` wrote PNG bytes under an .svg name; the suffix now chooses SVG or PDF (none: PNG)."""
    assert save_figure(_figure(), tmp_path / name).read_bytes().startswith(magic)


def test_an_unknown_suffix_is_refused_before_any_work(tmp_path: Path) -> None:
    """A .txt or .jpg plot is refused by check_plot, which commands call before their work, and by save."""
    for name in ("p.txt", "p.jpg"):
        with pytest.raises(OutputError, match=r"a plot is written as PNG, SVG or PDF; name it \.png, \.svg or \.pdf"):
            check_plot(tmp_path / name)
        with pytest.raises(OutputError, match=r"name it \.png"):
            save_figure(_figure(), tmp_path / name)
        assert not (tmp_path / name).exists()


def test_figure_bytes_closes_the_figure_and_repeats() -> None:
    """After saving, the figure is closed so long runs do not keep figures alive; PDF and SVG carry no
    creation date, so the same figure gives the same bytes."""
    plt = pyplot()
    fig = _figure()
    assert figure_bytes(fig, dpi=50).startswith(b"\x89PNG")
    assert fig.number not in plt.get_fignums()
    for fmt in ("pdf", "svg"):
        assert figure_bytes(_figure(), fmt) == figure_bytes(_figure(), fmt)
