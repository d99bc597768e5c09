"""How commands talk to the terminal: one JSON document on stdout, or rich tables; notes on stderr.

``--json`` puts exactly one JSON document on stdout and nothing else there. Progress bars go to stderr
and never appear with ``--json`` or ``--quiet``; notes go to stderr, and only ``--quiet`` silences them
(``watch --json`` still says what each look decided, while the document waits for the end).
``--no-color`` and the ``NO_COLOR`` environment variable turn colour off (rich reads ``NO_COLOR`` itself).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from mlplat.errors import MlplatError, OutputError
from mlplat.files import check_writable
from mlplat.jsonable import dumps
from mlplat.plots import check_plot

__all__ = ["JsonOption", "Output", "Settings", "first_repeat", "make_table", "parse_option"]

T = TypeVar("T")
# Width of output that goes to a file or a pipe (a CI log) rather than a terminal, unless COLUMNS says
# otherwise. rich's default there is 80 columns, which squeezed the canary table's eight columns into
# fragments; a log has no edge to wrap at.
PIPE_WIDTH = 160

JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout instead of tables.")]


@dataclass(frozen=True)
class Settings:
    """The global options, kept on the root click context (``ctx.obj``)."""

    json: bool = False
    quiet: bool = False
    verbose: bool = False
    no_color: bool = False


class Output:
    """Rendering for one command invocation. Consoles bind to the current stdout/stderr when made."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.json = settings.json
        width = None if sys.stdout.isatty() or os.environ.get("COLUMNS") else PIPE_WIDTH
        # --no-color (and NO_COLOR) turn every style off, bold and italic too, not only the colours.
        system: Literal["auto"] | None = None if settings.no_color else "auto"
        self.out = Console(file=sys.stdout, no_color=settings.no_color, soft_wrap=False, highlight=False,
                           width=width, color_system=system)
        self.err = Console(file=sys.stderr, no_color=settings.no_color, stderr=True, highlight=False,
                           soft_wrap=True, color_system=system)

    @classmethod
    def from_ctx(cls, ctx: typer.Context | None = None, *, json: bool = False) -> Output:
        """Output for the running command; a command's own ``--json`` adds to the global one."""
        settings = _settings(ctx)
        if json and not settings.json:
            settings = replace(settings, json=True)
        return cls(settings)

    def result(self, obj: Any) -> None:
        """Print a result: JSON (``to_dict()``) with ``--json``, else its ``__rich__`` rendering."""
        if self.json:
            sys.stdout.write(dumps(obj) + "\n")
            sys.stdout.flush()
        else:
            rendered = obj.__rich__() if hasattr(obj, "__rich__") else obj
            self.print(rendered)  # a result rendered as a str is plain text, as print() takes it

    def print(self, *objects: Any) -> None:
        """A result for people on stdout; suppressed with ``--json`` (stdout holds the document).

        ``--quiet`` keeps results ("only results and errors"): it silences notes and progress bars.
        """
        if not self.json:  # a str is plain text (a path or name with brackets is not markup); style with Text
            self.out.print(*(Text(obj) if isinstance(obj, str) else obj for obj in objects))

    def note(self, message: str, style: str | None = None) -> None:
        """An informational line on stderr (not with ``--quiet``; with ``--json`` too, stdout being the document's).

        ``message`` is plain text: brackets in a path or a name are shown, not read as markup.
        """
        if not self.settings.quiet:
            self.err.print(Text(message, style=style or ""))

    def wrote(self, path: Path, detail: str = "", **facts: Any) -> None:
        """Say that a command's one output file was written.

        With ``--json`` that is the document, ``{"wrote": path, **facts}``; else a note, ``wrote path`` and
        ``detail``.
        """
        if self.json:
            self.result({"wrote": str(path), **facts})
        else:
            self.note(f"wrote {path}{detail}")

    def warn(self, message: str) -> None:
        """A warning on stderr, shown even with ``--quiet`` (a user must see it)."""
        self.err.print(Text.assemble(("warning:", "yellow"), " ", message))

    @contextmanager
    def progress(self, description: str, total: float | None) -> Iterator[Any]:
        """A progress bar on stderr; a no-op advance function with ``--json``/``--quiet`` or off a terminal.

        Yields ``advance(n=1)``.
        """
        if self.json or self.settings.quiet or not self.err.is_terminal:
            yield lambda n=1: None
            return
        columns = (TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(), TimeElapsedColumn())
        with Progress(*columns, console=self.err, transient=True) as bar:
            task = bar.add_task(description, total=total)
            yield lambda n=1: bar.advance(task, n)


def parse_option(option: str, parse: Callable[[str], T], text: str, *,
                 error: type[MlplatError] = MlplatError) -> T:
    """``parse(text)`` for a command-line option: a ValueError becomes ``error``, its message led by ``option``.

    ``error`` names the kind of input the option stands for (``ConfigError`` for a setting, ``DataError``
    for data); every kind exits with code 4 and prints the one line.
    """
    try:
        return parse(text)
    except ValueError as exc:
        raise error(f"{option}: {exc}") from None


def first_repeat(values: Sequence[T]) -> T | None:
    """The first value of a command-line list that was given before it too, or None.

    >>> first_repeat([0.01, 0.05, 0.01]), first_repeat([2.0, 3.0])
    (0.01, None)
    """
    return next((v for i, v in enumerate(values) if v in values[:i]), None)


def _settings(ctx: typer.Context | None) -> Settings:
    if ctx is None:
        return Settings()
    obj = ctx.find_root().obj
    return obj if isinstance(obj, Settings) else Settings()


def make_table(title: str | None, columns: Sequence[str], rows: Sequence[Sequence[Any]],
               *, numeric: Sequence[int] = ()) -> Table:
    """A rich table with the house style: numeric columns right-aligned, as wide as its title (rich wraps a
    title to the table's width otherwise; the terminal's width still caps both).

    Titles, headers and cells are plain text, so a metric, option or platform named ``errors[/predict]`` is
    shown as written (as markup it stopped the command with exit 5); pass a ``rich.text.Text`` for a
    styled cell.
    """
    table = Table(title=None if title is None else Text(title), title_justify="left", header_style="bold",
                  min_width=len(title or ""))
    for index, name in enumerate(columns):
        # In a terminal too narrow for the table, a cell folds onto more lines: never cut with an ellipsis
        # (rich's default), which turned REGRESSION into "REGRES…" and a p-value into "2.77e-…".
        table.add_column(Text(name), justify="right" if index in numeric else "left", overflow="fold")
    for row in rows:
        table.add_row(*(cell if isinstance(cell, Text) else Text("" if cell is None else str(cell)) for cell in row))
    return table


def check_outputs(report: Path | None, plot: Path | None = None, *, force: bool,
                  inputs: Sequence[Path | None] = ()) -> None:
    """Refuse a command's output files up front, before its work, so it writes both or neither: each must be
    writable, the plot's suffix known, the two must not be the same file (the second write was refused
    after the first had happened), and neither may be one of the command's ``inputs`` (``--force`` would
    replace the user's export or rubric with the report)."""
    if report is not None and plot is not None and report.resolve() == plot.resolve():
        raise OutputError(f"{plot}: --report and --plot name the same file; give each its own")
    read = {path.resolve() for path in inputs if path is not None}
    for output in (report, plot):
        if output is not None and output.resolve() in read:
            raise OutputError(f"{output}: is an input of this command; write the output elsewhere")
    if report is not None:
        check_writable(report, force=force)
    if plot is not None:
        check_plot(plot, force=force)
