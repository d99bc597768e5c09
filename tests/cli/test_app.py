"""The root app: help, version, doctor, global options, exit codes and lazy imports."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer
from rich.console import Console
from typer.testing import CliRunner

from mlplat import __version__
from mlplat.cli import ExitCode, app
from mlplat.cli._output import JsonOption, Output, Settings, parse_option
from mlplat.cli.app import MlplatGroup, root
from mlplat.config import ConfigModel, load_config
from mlplat.errors import DataError, MlplatError
from mlplat.units import parse_duration


def test_help(runner: CliRunner) -> None:
    """`mlplat --help` lists the commands."""
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "doctor" in result.output


def test_version(runner: CliRunner) -> None:
    """`mlplat --version` prints the installed version."""
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"mlplat {__version__}"


def test_doctor_table(runner: CliRunner) -> None:
    """The doctor table shows Python, numpy and the server checks."""
    result = runner.invoke(app, ["doctor"])
    assert result.exit_code == 0
    for word in ("python", "numpy", "redis-server", "promtool", "torch device", "BLAS"):
        assert word in result.output


@pytest.mark.parametrize("args", [["--json", "doctor"], ["doctor", "--json"]])
def test_doctor_json(runner: CliRunner, args: list[str]) -> None:
    """`--json` before or after the command gives one JSON document with the documented fields."""
    result = runner.invoke(app, args)
    assert result.exit_code == 0
    doc = json.loads(result.stdout)
    assert doc["mlplat"] == __version__
    assert set(doc) == {"python", "platform", "mlplat", "packages", "torch", "servers", "blas"}
    assert doc["torch"]["device"] in {None, "cpu"} or doc["torch"]["device"].startswith("cuda")
    assert set(doc["servers"]) == {"redis-server", "prometheus", "promtool"}


def test_usage_error_is_exit_2(runner: CliRunner) -> None:
    """An unknown option is Typer's usage error."""
    assert runner.invoke(app, ["doctor", "--bogus"]).exit_code == ExitCode.USAGE


class _Cfg(ConfigModel):
    alpha: float


def _probe_app() -> typer.Typer:
    """A test-only app wired exactly like the real one, with a command that loads a config or crashes."""
    probe = typer.Typer(cls=MlplatGroup, pretty_exceptions_enable=False)
    probe.callback()(root)

    @probe.command("load")
    def load(ctx: typer.Context, path: Path, json: JsonOption = False) -> None:
        Output.from_ctx(ctx, json=json).result({"alpha": load_config(path, _Cfg).alpha})

    @probe.command("crash")
    def crash() -> None:
        raise RuntimeError("boom")

    return probe


EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.mark.parametrize("command", [
    ["canary", "plan", "--baseline-rate", "0.01", "--rps", "100"], ["canary", "rollout", "--rps", "300"],
    ["canary", "simulate", "-o", "x.csv"], ["sim", "run", str(EXAMPLES / "sim" / "steady.yaml")],
    ["sim", "compare", str(EXAMPLES / "sim" / "steady.yaml")],
    ["rubric", "score", str(EXAMPLES / "rubric" / "serving-platform.yaml")],
    ["ingest", "verify", str(EXAMPLES / "ingest" / "ingest.yaml"), "--source",
     str(EXAMPLES / "ingest" / "events.jsonl")],
])
def test_negative_seed_is_a_usage_error(runner: CliRunner, command: list[str]) -> None:
    """Every --seed is >= 0 (numpy refuses negative seeds deep inside; it used to be exit 5)."""
    result = runner.invoke(app, [*command, "--seed", "-1"])
    assert result.exit_code == ExitCode.USAGE
    assert "--seed" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize(("group", "example", "old", "new", "message"), [
    ("canary", "canary/canary.yaml", "alpha: 0.05", "alpha: true", ":6:8: alpha: expected a number, got true"),
    ("sim", "sim/bursty.yaml", "tolerance: 0.1", "tolerance: false",
     ":22:118: platforms[2].autoscaler.tolerance: expected a number, got false"),
    ("ingest", "ingest/ingest.yaml", "batch_size: 100", "batch_size: true",
     ":9:13: batch_size: expected a number, got true"),
    ("rubric", "rubric/serving-platform.yaml", "horizon_years: 3", "horizon_years: true",
     "tco.horizon_years: expected a number, got true"),
])
def test_yaml_bool_for_a_number_is_exit_4_in_every_group(runner: CliRunner, tmp_path: Path, group: str,
                                                         example: str, old: str, new: str, message: str) -> None:
    """YAML's true/false where a number belongs is refused at its place (pydantic read them as 1 and 0)."""
    text = (EXAMPLES / example).read_text()
    assert old in text
    path = tmp_path / "c.yaml"
    path.write_text(text.replace(old, new, 1))
    result = runner.invoke(app, [group, "validate", str(path)])
    assert result.exit_code == ExitCode.BAD_INPUT, result.output
    assert message in result.stderr and "Traceback" not in result.output


def test_parse_option_names_the_option_in_the_error_it_asks_for() -> None:
    """A parser's ValueError becomes the asked-for MlplatError led by the option; other errors pass through."""
    assert parse_option("--step", parse_duration, "90s") == 90.0
    with pytest.raises(MlplatError, match=r"^--step: expected a duration such as '90s'.*got 'soon'$") as caught:
        parse_option("--step", parse_duration, "soon")
    assert type(caught.value) is MlplatError
    with pytest.raises(DataError, match=r"^--step: "):
        parse_option("--step", parse_duration, "soon", error=DataError)
    # Only a ValueError is the user's; anything else is a bug (exit 5).
    with pytest.raises(ZeroDivisionError, match="division by zero"):
        parse_option("--step", lambda text: 1 / 0, "1")


def test_yaml_error_exit_4_without_traceback(runner: CliRunner, tmp_path: Path) -> None:
    """A config error prints file:line:col and the key path on stderr, exits 4, and shows no traceback."""
    path = tmp_path / "c.yaml"
    path.write_text("alpha: 0.1\nalhpa: 2\n")
    result = runner.invoke(_probe_app(), ["load", str(path)])
    assert result.exit_code == ExitCode.BAD_INPUT
    assert f"{path}:2:1: alhpa: unknown key 'alhpa'" in result.stderr
    assert "Traceback" not in result.output
    assert result.stdout == ""


def test_verbose_shows_traceback(runner: CliRunner, tmp_path: Path) -> None:
    """With --verbose the traceback is printed too."""
    path = tmp_path / "c.yaml"
    path.write_text("alpha: [\n")
    result = runner.invoke(_probe_app(), ["--verbose", "load", str(path)])
    assert result.exit_code == ExitCode.BAD_INPUT
    assert "Traceback" in result.stderr


def test_internal_error_exit_5(runner: CliRunner) -> None:
    """An unexpected exception is exit 5 with a short message; the traceback only with --verbose."""
    result = runner.invoke(_probe_app(), ["crash"])
    assert result.exit_code == ExitCode.INTERNAL
    assert "internal error: RuntimeError: boom" in result.stderr
    assert "Traceback" not in result.stderr
    verbose = runner.invoke(_probe_app(), ["--verbose", "crash"])
    assert "Traceback" in verbose.stderr


def test_an_interrupt_is_exit_130_not_the_rollback_code(runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C during a command (a `canary watch`) exited 1 through click's Abort, the ROLLBACK code, so a
    wrapper rolled back on an interrupt (found by a review pass). It is 130, as a shell reports SIGINT."""
    from mlplat.cli import doctor

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(doctor, "diagnose", interrupted)
    result = runner.invoke(app, ["doctor"])
    assert result.exit_code == ExitCode.INTERRUPTED == 130, result.output
    assert "interrupted" in result.stderr and "Traceback" not in result.output


def test_json_is_only_document_on_stdout(runner: CliRunner, tmp_path: Path) -> None:
    """With --json, stdout parses as one JSON document."""
    path = tmp_path / "c.yaml"
    path.write_text("alpha: 0.25\n")
    result = runner.invoke(_probe_app(), ["load", str(path), "--json"])
    assert json.loads(result.stdout) == {"alpha": 0.25}


def test_quiet_keeps_results_and_drops_notes(runner: CliRunner, tmp_path: Path) -> None:
    """--quiet means "only results and errors": the verdict and tables stay on stdout, the notes on stderr
    go (it used to silence the results too)."""
    examples = Path(__file__).resolve().parents[2] / "examples"
    args = ["canary", "analyze", str(examples / "canary" / "regression.csv"), "--config",
            str(examples / "canary" / "canary.yaml")]
    loud, quiet = runner.invoke(app, args), runner.invoke(app, ["--quiet", *args])
    assert loud.exit_code == quiet.exit_code == ExitCode.FAIL  # ROLLBACK
    assert quiet.stdout.startswith("ROLLBACK") and quiet.stdout == loud.stdout
    plot = ["ingest", "lateness", str(examples / "ingest" / "events.jsonl"), "--plot"]
    loud = runner.invoke(app, [*plot, str(tmp_path / "a.png")])
    quiet = runner.invoke(app, ["-q", *plot, str(tmp_path / "b.png")])
    assert "wrote" in loud.stderr and quiet.stderr == "" and quiet.stdout == loud.stdout


def _commands(command: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    if not hasattr(command, "commands"):
        return [(path, command)]
    return [found for name, sub in command.commands.items() for found in _commands(sub, (*path, name))]


def test_every_command_takes_json_after_it() -> None:
    """The README's promise: every command takes `--json` after its name too (`schema` prints JSON anyway).
    `init` and `canary simulate` took it only before the command."""
    lacking = [" ".join(path) for path, command in _commands(typer.main.get_command(app))
               if path[-1] != "schema" and "--json" not in {o for p in command.params for o in p.opts}]
    assert lacking == []


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=120, check=False)


def test_python_dash_m() -> None:
    """`python -m mlplat --help` works."""
    done = _run("-m", "mlplat", "--help")
    assert done.returncode == 0
    assert "doctor" in done.stdout


def test_a_reader_that_went_away_is_no_internal_error(runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    """`mlplat ... | head`: a write to a closed pipe ends the command as click ends it, not as exit 5."""
    from mlplat.cli import doctor

    def broken(*args: object, **kwargs: object) -> None:
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(doctor, "diagnose", broken)
    result = runner.invoke(app, ["doctor"])
    assert result.exit_code not in (ExitCode.INTERNAL, ExitCode.OK), result.output
    assert "internal error" not in result.output


def _doctor_with_forced_terminal(*flags: str, **env: str) -> str:
    # No servers on PATH, so doctor prints yellow "not on PATH" cells unless colour is off.
    done = subprocess.run([sys.executable, "-m", "mlplat", *flags, "doctor"], capture_output=True,
                          text=True, env={"FORCE_COLOR": "1", "PATH": "/nonexistent", **env},
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


COLOUR_CODE = re.compile(r"\x1b\[(?:\d+;)*3[0-8](?:;\d+)*m")


def test_colour_off_with_no_color_env_or_flag() -> None:
    """NO_COLOR and --no-color each remove colour codes that a forced terminal otherwise gets, and every
    other style too: bold and italic escapes stayed (a contract sweep found `\x1b[1m` under --no-color)."""
    assert COLOUR_CODE.search(_doctor_with_forced_terminal())
    assert "\x1b[" not in _doctor_with_forced_terminal(NO_COLOR="1")
    assert "\x1b[" not in _doctor_with_forced_terminal("--no-color")


def test_json_version_is_one_document(runner: CliRunner) -> None:
    """`mlplat --json --version` and `mlplat --version --json` print one JSON document; plain --version text."""
    assert json.loads(runner.invoke(app, ["--json", "--version"]).stdout)["version"]
    assert json.loads(runner.invoke(app, ["--version", "--json"]).stdout)["version"]
    assert runner.invoke(app, ["--version"]).stdout.startswith("mlplat ")


def test_cli_import_is_lazy() -> None:
    """Importing mlplat.cli (every group) must not import the heavy libraries."""
    heavy = ["torch", "scipy", "pandas", "statsmodels", "matplotlib", "redis"]
    code = ("import sys, mlplat.cli; "
            f"print(','.join(m for m in {heavy!r} if m in sys.modules))")
    done = _run("-c", code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""


def test_progress_goes_to_stderr_only(capsys: pytest.CaptureFixture[str]) -> None:
    """On a terminal the progress bar draws on stderr and leaves stdout alone; with --json it is silent."""
    out = Output(Settings())
    out.err = Console(file=sys.stderr, force_terminal=True, width=80)
    with out.progress("working", total=2) as advance:
        advance()
        advance()
    drawn = capsys.readouterr()
    assert "working" in drawn.err and drawn.out == ""
    with Output(Settings(json=True)).progress("working", total=2) as advance:
        advance()
    assert capsys.readouterr() == ("", "")


def test_tables_fold_rather_than_cut_cells_in_a_narrow_terminal() -> None:
    """A table wider than the terminal folds its cells onto more lines; rich's default cut REGRESSION to
    "REGRES…" and a p-value to "2.77e-…" at 80 columns."""
    from mlplat.cli._output import make_table

    console = Console(width=40, record=True, file=io.StringIO())
    console.print(make_table("tests", ["test", "status", "p", "detail"],
                             [["errors (critical)", "REGRESSION", "2.77e-05", "1067 events (98 canary)"]]))
    text = console.export_text()
    assert "…" not in text
    body = [line.split("│")[1:-1] for line in text.splitlines() if line.startswith("│")]
    columns = ["".join(row[i].strip() for row in body) for i in range(4)]
    assert columns == ["errors(critical)", "REGRESSION", "2.77e-05", "1067events(98canary)"]


def test_output_to_a_pipe_is_wide_unless_columns_says(runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    """Output to a file or pipe (a CI log) is 160 columns wide, so the canary table keeps each row on one
    line; COLUMNS still sets the width."""
    args = ["canary", "analyze", "examples/canary/regression.csv", "--config", "examples/canary/canary.yaml"]
    monkeypatch.delenv("COLUMNS", raising=False)
    wide = runner.invoke(app, args)
    assert wide.exit_code == 1
    assert re.search(r"errors \(critical\) +│ REGRESSION +│ \+92\.7% +│ \[\+26\.5%, \+149\.8%\]", wide.output)
    monkeypatch.setenv("COLUMNS", "80")
    narrow = runner.invoke(app, args)
    assert narrow.exit_code == 1
    assert max(len(line) for line in narrow.output.splitlines()) <= 80
    assert "…" not in narrow.output


@pytest.mark.parametrize("group", ["rubric", "sim", "canary", "ingest"])
def test_init_with_json_prints_one_document(runner: CliRunner, tmp_path: Path, group: str) -> None:
    """With --json, init printed nothing (rubric, sim, canary: the note went to stderr) or plain text (ingest)."""
    path = tmp_path / f"{group}.yaml"
    result = runner.invoke(app, ["--json", group, "init", str(path)])
    assert result.exit_code == 0 and json.loads(result.stdout) == {"wrote": str(path)} and path.exists()


EXAMPLE_CONFIGS = {"rubric": ["rubric/serving-platform.yaml"], "canary": ["canary/canary.yaml"],
                   "sim": ["sim/steady.yaml", "sim/bursty.yaml"], "ingest": ["ingest/ingest.yaml"]}


@pytest.mark.parametrize("group", sorted(EXAMPLE_CONFIGS))
def test_schema_accepts_the_configs_validate_accepts(runner: CliRunner, tmp_path: Path, group: str) -> None:
    """The schema described values after parsing: `max_duration: 60m` was 'not a number', so an editor
    checking a config against it refused every bundled example and template; and bounds on such fields
    came out as `gt`/`ge`, which JSON Schema has not (validators ignored them)."""
    import jsonschema
    import yaml

    schema = json.loads(runner.invoke(app, [group, "schema"]).stdout)
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    template = tmp_path / "init.yaml"
    assert runner.invoke(app, [group, "init", str(template)]).exit_code == 0
    examples = Path(__file__).resolve().parents[2] / "examples"
    for path in [template, *(examples / name for name in EXAMPLE_CONFIGS[group])]:
        config = yaml.safe_load(path.read_text())
        assert runner.invoke(app, [group, "validate", str(path)]).exit_code == 0
        assert [e.message for e in validator.iter_errors(config)] == [], path
        assert list(validator.iter_errors({**config, "no_such_key": 1}))  # still strict about keys
    text = json.dumps(schema)
    assert '"gt":' not in text and '"ge":' not in text


def test_table_and_warning_text_is_shown_exactly_as_written(capsys: pytest.CaptureFixture[str]) -> None:
    """Titles, headers, cells and warnings are plain text: brackets are not markup, and a trailing backslash
    is not doubled (rich.markup.escape doubled it, as it would before a following tag; found by a review)."""
    import io

    from rich.console import Console

    from mlplat.cli._output import Output, Settings, make_table

    console = Console(file=io.StringIO(), width=120)
    console.print(make_table("t[/x]\\", ["h[bold]\\"], [["a\\"], ["[red]b[/red]"]]))
    shown = console.file.getvalue()  # type: ignore[attr-defined]
    assert "t[/x]\\" in shown and "t[/x]\\\\" not in shown
    assert "h[bold]\\ " in shown and "a\\ " in shown and "[red]b[/red]" in shown
    Output(Settings()).warn("fn\\ and [/x]")
    assert capsys.readouterr().err.strip() == "warning: fn\\ and [/x]"
