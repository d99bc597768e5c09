"""The root `mlplat` Typer app: global options, exit codes, and the one place errors are caught.

Exit codes (DESIGN.md): 0 success/PASS/PROMOTE, 1 FAIL/ROLLBACK, 2 usage error, 3 INCONCLUSIVE/CONTINUE,
4 bad input (:class:`~mlplat.errors.MlplatError`), 5 an unexpected internal error. A write to a closed
pipe (`mlplat ... | head`) is left to click, which quiets the pipe and exits 1, as for `--help`.
"""

from __future__ import annotations

import enum
import json as jsonlib
import os
import traceback
from typing import Annotated, Any

import typer
from rich.markup import escape
from typer.core import TyperGroup

from mlplat.cli import bench, canary, doctor, ingest, rubric, sim
from mlplat.cli._output import Output, Settings
from mlplat.errors import MlplatError

__all__ = ["ExitCode", "MlplatGroup", "app", "main"]


class ExitCode(enum.IntEnum):
    """Process exit codes shared by every command group."""

    OK = 0
    FAIL = 1
    USAGE = 2
    INCONCLUSIVE = 3
    BAD_INPUT = 4
    INTERNAL = 5
    INTERRUPTED = 130  # 128 + SIGINT, as shells report it: never 1, which a wrapper reads as ROLLBACK


class MlplatGroup(TyperGroup):
    """Click group that turns exceptions into exit codes, once, for every command below it."""

    def invoke(self, ctx: typer.Context) -> Any:  # type: ignore[override]  # typer.Context is the click one
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, typer.TyperException):
            raise
        except BrokenPipeError:
            # The reader went away (`mlplat ... | head`): click quiets the pipe and exits, as for --help.
            raise
        except MlplatError as exc:
            out = Output.from_ctx(ctx)
            out.err.print(f"[red]error:[/red] {escape(str(exc))}")
            if out.settings.verbose:
                out.err.print(escape(traceback.format_exc()))
            raise typer.Exit(ExitCode.BAD_INPUT) from exc
        except KeyboardInterrupt:
            # click's Abort exits 1, the ROLLBACK code: a script wrapping `canary watch` rolled back on Ctrl-C.
            Output.from_ctx(ctx).err.print("[yellow]interrupted[/yellow]")
            raise typer.Exit(ExitCode.INTERRUPTED) from None
        except Exception as exc:
            out = Output.from_ctx(ctx)
            message = f"internal error: {type(exc).__name__}: {exc}"
            if out.settings.verbose:
                out.err.print(escape(traceback.format_exc()))
            else:
                message += " (run with --verbose for the traceback, and please report it)"
            out.err.print(f"[red]{escape(message)}[/red]")
            raise typer.Exit(ExitCode.INTERNAL) from exc


def _version_callback(ctx: typer.Context, value: bool) -> None:
    if value:
        from mlplat import __version__

        # --version is not eager and --json is, so --json has been read whatever the order on the command
        # line (`mlplat --version --json` printed text when both were eager): one JSON document then.
        typer.echo(jsonlib.dumps({"version": __version__}) if ctx.params.get("json") else f"mlplat {__version__}")
        raise typer.Exit()


app = typer.Typer(
    name="mlplat",
    cls=MlplatGroup,
    help="Numbers an ML platform engineer can check before deciding how models are served.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def root(
    ctx: typer.Context,
    json: Annotated[bool, typer.Option("--json", is_eager=True,
                                       help="One JSON document on stdout, nothing else.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only results and errors.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Tracebacks on errors.")] = False,
    no_color: Annotated[bool, typer.Option("--no-color", help="No colour (NO_COLOR also works).")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version_callback, help="Print the version.")
    ] = False,
) -> None:
    """mlplat: build vs buy, canaries, serverless vs Kubernetes, batching, feature ingestion."""
    # rich lets FORCE_COLOR win over NO_COLOR; mlplat honours NO_COLOR whenever it is set (no-color.org).
    no_color = no_color or bool(os.environ.get("NO_COLOR"))
    ctx.obj = Settings(json=json, quiet=quiet, verbose=verbose, no_color=no_color)


app.command("doctor")(doctor.doctor)
app.add_typer(rubric.app, name="rubric")
app.add_typer(sim.app, name="sim")
app.add_typer(ingest.app, name="ingest")
app.add_typer(canary.app, name="canary")
app.command("bench")(bench.bench)


def main() -> None:
    """Console-script entry point."""
    app(prog_name="mlplat")
