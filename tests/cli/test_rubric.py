"""`mlplat rubric` on the command line: init, validate, schema, score (tables, JSON, report, plot), pilot."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlplat.cli import ExitCode, app

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "rubric" / "serving-platform.yaml"


@pytest.fixture
def rubric_file(tmp_path: Path, runner: CliRunner) -> Path:
    """A rubric written by `mlplat rubric init`."""
    path = tmp_path / "rubric.yaml"
    result = runner.invoke(app, ["rubric", "init", str(path)])
    assert result.exit_code == 0, result.output
    return path


def test_init_writes_template_and_refuses_overwrite(rubric_file: Path, runner: CliRunner) -> None:
    """init writes a commented template with six criteria and guides; a second init needs --force."""
    text = rubric_file.read_text()
    for word in ("tco", "time_to_market", "feature_parity", "lock_in", "security", "enablement", "guide:",
                 "pilot:", "# "):
        assert word in text
    again = runner.invoke(app, ["rubric", "init", str(rubric_file)])
    assert again.exit_code == ExitCode.BAD_INPUT
    assert "already exists; pass --force" in again.stderr
    assert runner.invoke(app, ["rubric", "init", str(rubric_file), "--force"]).exit_code == 0


def test_validate_ok_and_json(rubric_file: Path, runner: CliRunner) -> None:
    """validate says valid, in text or JSON."""
    result = runner.invoke(app, ["rubric", "validate", str(rubric_file)])
    assert result.exit_code == 0
    assert "valid (6 criteria, 3 options)" in " ".join(result.stdout.split())
    doc = json.loads(runner.invoke(app, ["rubric", "validate", str(rubric_file), "--json"]).stdout)
    assert doc == {"file": str(rubric_file), "valid": True, "criteria": 6, "options": 3}


def test_schema_is_json_schema(runner: CliRunner) -> None:
    """schema prints the JSON Schema of the rubric."""
    result = runner.invoke(app, ["rubric", "schema"])
    assert result.exit_code == 0
    schema = json.loads(result.stdout)
    assert schema["title"] == "Rubric"
    assert {"criteria", "options", "tco", "weights_ahp", "pilot"} <= set(schema["properties"])


def test_score_tables(runner: CliRunner) -> None:
    """score prints the ranking, TCO by year, Monte Carlo, crossovers and the decision sentence."""
    result = runner.invoke(app, ["rubric", "score", str(EXAMPLE), "--draws", "2000"])
    assert result.exit_code == 0, result.output
    out = result.stdout
    for piece in ("wsm, minmax normalisation", "TCO by year", "Monte Carlo: 2,000 draws", "Crossovers",
                  "Decision:", "of 2,000 draws"):
        assert piece in out, piece


def test_score_json_fields(runner: CliRunner) -> None:
    """--json gives one document with the fields of issue 3, checked one by one."""
    result = runner.invoke(app, ["rubric", "score", str(EXAMPLE), "--method", "topsis", "--normalization",
                                 "vector", "--draws", "1000", "--seed", "3", "--json"])
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["method"] == "topsis" and doc["normalization"] == "vector"
    assert list(doc["weights"]) == ["tco", "time_to_market", "feature_parity", "lock_in", "security", "enablement"]
    assert doc["ahp"] is None
    assert [r["rank"] for r in doc["ranking"]] == [1, 2, 3]
    assert set(doc["ranking"][0]["contributions"]) == set(doc["weights"])
    assert set(doc["tco"]) == {"build", "buy", "hybrid"}
    assert len(doc["tco"]["build"]["by_year"]) == 4
    assert doc["tco"]["build"]["risk_adjusted_npv"] > doc["tco"]["build"]["npv"]
    sens = doc["sensitivity"]
    assert sens["draws"] == 1000 and sens["seed"] == 3
    assert sum(sens["p_best"].values()) == pytest.approx(1.0)
    assert {c["criterion"] for c in sens["crossovers"]} == set(doc["weights"])
    assert doc["decision"]["winner"] == doc["ranking"][0]["option"]
    assert doc["decision"]["margin"] == pytest.approx(doc["ranking"][0]["score"] - doc["ranking"][1]["score"])


# Issue 3's reference judgements; weights, lambda_max and CR from ahpy 2.1 / numpy (as in tests/rubric/test_mcda.py).
REFERENCE_AHP = """\
weights_ahp:
  tco: {time_to_market: 2, feature_parity: 3, lock_in: 3, security: 2, enablement: 4}
  time_to_market: {feature_parity: 2, lock_in: 2, security: 1/2, enablement: 3}
  feature_parity: {lock_in: 1, security: 1/3, enablement: 2}
  lock_in: {security: 1/3, enablement: 2}
  security: {enablement: 4}
"""


def test_score_json_with_ahp(runner: CliRunner, tmp_path: Path) -> None:
    """With weights_ahp, --json carries the AHP weights and ahp {lambda_max, ci, cr, consistent}."""
    path = _ahp_example(tmp_path, REFERENCE_AHP)
    result = runner.invoke(app, ["rubric", "score", str(path), "--draws", "200", "--json"])
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert list(doc["weights"].values()) == pytest.approx(
        [0.325433, 0.167033, 0.096261, 0.096261, 0.256641, 0.058371], abs=1e-6)
    assert doc["ahp"]["lambda_max"] == pytest.approx(6.095972, abs=1e-6)
    assert doc["ahp"]["ci"] == pytest.approx((6.095972 - 6) / 5, abs=1e-6)
    assert doc["ahp"]["cr"] == pytest.approx(0.015479, abs=1e-6)
    assert doc["ahp"]["consistent"] is True
    crossover = doc["sensitivity"]["crossovers"][0]
    assert set(crossover) >= {"criterion", "winner_changes_at", "new_winner"}
    assert all(isinstance(r["score"], float) for r in doc["ranking"])


def test_score_seed_is_reproducible(runner: CliRunner) -> None:
    """The same seed gives the same P(best)."""
    args = ["rubric", "score", str(EXAMPLE), "--draws", "500", "--seed", "9", "--json"]
    first, second = (json.loads(runner.invoke(app, args).stdout) for _ in range(2))
    assert first["sensitivity"]["p_best"] == second["sensitivity"]["p_best"]


def test_score_report_and_plot(runner: CliRunner, tmp_path: Path) -> None:
    """--report writes the decision record and --plot a PNG; both refuse to overwrite without --force."""
    report, plot = tmp_path / "decision.md", tmp_path / "scores.png"
    args = ["rubric", "score", str(EXAMPLE), "--draws", "200", "--report", str(report), "--plot", str(plot)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert report.read_text().startswith("# Decision record: Model serving platform")
    assert plot.read_bytes()[:4] == b"\x89PNG"
    assert runner.invoke(app, args).exit_code == ExitCode.BAD_INPUT
    assert runner.invoke(app, [*args, "--force"]).exit_code == 0
    # Only the plot exists: the refusal comes before anything is written, so no lone decision record.
    report.unlink()
    refused = runner.invoke(app, args)
    assert refused.exit_code == ExitCode.BAD_INPUT and "scores.png: already exists" in refused.stderr
    assert not report.exists()


def test_plot_format_follows_the_suffix(runner: CliRunner, tmp_path: Path) -> None:
    """--plot x.svg writes SVG (it wrote PNG bytes under the .svg name); --plot x.txt is exit 4 before
    scoring, with no report written either."""
    svg = tmp_path / "scores.svg"
    result = runner.invoke(app, ["rubric", "score", str(EXAMPLE), "--draws", "100", "--plot", str(svg)])
    assert result.exit_code == 0, result.output
    assert svg.read_bytes().startswith(b"<?xml")
    report = tmp_path / "decision.md"
    refused = runner.invoke(app, ["rubric", "score", str(EXAMPLE), "--report", str(report), "--plot",
                                  str(tmp_path / "scores.txt")])
    assert refused.exit_code == ExitCode.BAD_INPUT and "name it .png, .svg or .pdf, got .txt" in refused.stderr
    assert not report.exists()


def test_report_and_plot_on_one_path_write_nothing(runner: CliRunner, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """--report and --plot naming one file (here through two spellings) is exit 4 before scoring; it wrote
    the report and then refused the plot as 'already exists'."""
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["rubric", "score", str(EXAMPLE), "--report", "same.png", "--plot", "./same.png"])
    assert result.exit_code == ExitCode.BAD_INPUT
    assert "--report and --plot name the same file" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_outputs_may_not_overwrite_the_rubric(runner: CliRunner, tmp_path: Path) -> None:
    """--report or pilot's -o naming the rubric itself is exit 4 even with --force (it replaced the rubric)."""
    rubric = tmp_path / "r.yaml"
    rubric.write_text(EXAMPLE.read_text())
    for args in (["score", str(rubric), "--report", str(rubric)], ["pilot", str(rubric), "-o", str(rubric)]):
        result = runner.invoke(app, ["rubric", *args, "--force"])
        assert result.exit_code == ExitCode.BAD_INPUT and "is an input of this command" in result.stderr
    assert rubric.read_text() == EXAMPLE.read_text()


def test_pilot_to_stdout_and_file(runner: CliRunner, tmp_path: Path) -> None:
    """pilot prints the plan, or writes it with -o (refusing to overwrite without --force)."""
    result = runner.invoke(app, ["rubric", "pilot", str(EXAMPLE), "--start", "2026-12-01"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("# Pilot plan: ")
    assert "### Setup: 2026-12-01 to 2026-12-07" in result.stdout
    assert "warning: rank reversal" in result.stderr  # the scoring's warnings, as `score` shows them
    out = tmp_path / "pilot.md"
    args = ["rubric", "pilot", str(EXAMPLE), "--option", "build", "--start", "2026-12-01", "-o", str(out)]
    assert runner.invoke(app, args).exit_code == 0
    assert out.read_text().startswith("# Pilot plan: Build on Kubernetes")
    assert runner.invoke(app, args).exit_code == ExitCode.BAD_INPUT
    assert runner.invoke(app, [*args, "--force"]).exit_code == 0


@pytest.mark.parametrize("where", [["--json"], []], ids=["command", "global"])
def test_pilot_json_is_one_document(runner: CliRunner, tmp_path: Path, where: list[str]) -> None:
    """With --json, pilot prints one JSON document (the plan's fields and its Markdown), not Markdown."""
    args = ["rubric", "pilot", str(EXAMPLE), "--start", "2026-12-01", *where]
    result = runner.invoke(app, args if where else ["--json", *args])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert (doc["option"], doc["start"], doc["end"], doc["weeks"]) == ("hybrid", "2026-12-01", "2027-01-12", 6)
    assert [p["name"] for p in doc["phases"]] == ["Setup", "Shadow traffic", "Canary", "Decision gate"]
    assert doc["phases"][0] == {"name": "Setup", "start": "2026-12-01", "end": "2026-12-07",
                                "purpose": doc["phases"][0]["purpose"], "commands": doc["phases"][0]["commands"]}
    assert doc["kill_criteria"][0]["metric"] == "error_rate" and doc["risks"]
    assert doc["markdown"].startswith("# Pilot plan: ") and doc["wrote"] is None
    out = tmp_path / "pilot.md"
    written = runner.invoke(app, [*args, "-o", str(out)] if where else ["--json", *args, "-o", str(out)])
    assert written.exit_code == 0, written.output
    assert json.loads(written.stdout)["wrote"] == str(out)
    assert out.read_text() == doc["markdown"]


def test_pilot_start_from_the_file_is_named_there(runner: CliRunner, tmp_path: Path) -> None:
    """A pilot.start in the file that ends the pilot after 9999 names the file's place and pilot.start."""
    text = EXAMPLE.read_text()
    assert "  duration_weeks: 6\n" in text
    path = tmp_path / "late.yaml"
    path.write_text(text.replace("  duration_weeks: 6\n", "  duration_weeks: 6\n  start: 9999-12-01\n", 1))
    result = runner.invoke(app, ["rubric", "pilot", str(path)])
    assert result.exit_code == ExitCode.BAD_INPUT
    line = text[: text.index("  duration_weeks: 6\n")].count("\n") + 2
    assert (f"{path}:{line}:10: pilot.start: a 6-week pilot from 9999-12-01 would end after the year 9999"
            in result.stderr.replace("\n", ""))
    assert "--start" not in result.stderr


def test_pilot_of_a_tie_says_which_option_it_took(runner: CliRunner, tmp_path: Path) -> None:
    """With no winner the plan is for the option listed first: pilot says so, and --option silences it."""
    tie = tmp_path / "tie.yaml"
    tie.write_text("title: tie\ncriteria: [{id: fit, direction: benefit, weight: 1}]\n"
                   "options: [{id: a, scores: {fit: 3}}, {id: b, scores: {fit: 3}}]\n")
    result = runner.invoke(app, ["rubric", "pilot", str(tie)])
    assert result.exit_code == 0, result.output
    assert ("warning: no winner: a and b tie on score; add a criterion or score more finely to separate "
            "them; this plan is for a, listed first: pass --option to choose") in " ".join(result.stderr.split())
    chosen = runner.invoke(app, ["rubric", "pilot", str(tie), "--option", "b"])
    assert chosen.exit_code == 0 and "no winner" not in chosen.stderr
    doc = json.loads(runner.invoke(app, ["rubric", "score", str(tie), "--json"]).stdout)
    assert doc["decision"]["tie"] is True


@pytest.mark.slow
def test_the_example_pilot_plan_commands_work(runner: CliRunner, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Each command the example's pilot plan prints works once the files it names exist.

    The bundled sim and canary examples stand in for the user's own. `sim compare` over the plan's range
    takes minutes and `canary watch` needs a Prometheus, so those two are checked for their option names
    (`--help`) and their values (the parsers the commands use); the others run as printed.
    """
    import shlex

    from mlplat.cli.canary import _seconds
    from mlplat.cli.sim import parse_rates

    examples = EXAMPLE.parents[1]
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sim.yaml").write_text((examples / "sim" / "steady.yaml").read_text())
    (tmp_path / "canary.yaml").write_text((examples / "canary" / "canary.yaml").read_text())
    (tmp_path / "canary-export.csv").write_text((examples / "canary" / "regression.csv").read_text())
    plan = runner.invoke(app, ["rubric", "pilot", str(EXAMPLE)])
    assert plan.exit_code == 0, plan.output
    commands = [line.strip() for line in plan.stdout.splitlines() if line.strip().startswith("mlplat ")]
    assert len(commands) == 8, commands
    for command in commands:
        args = shlex.split(command)[1:]
        if args[:2] == ["sim", "compare"]:
            assert parse_rates(args[args.index("--rates") + 1]) == (0.1, 2000.0)
            args.append("--help")
        elif args[:2] == ["canary", "watch"]:
            assert _seconds(args[args.index("--interval") + 1], "--interval") == 60.0
            args.append("--help")
        result = runner.invoke(app, args)
        # canary analyze exits 1 on the regression example: a verdict (block), not a failure to run.
        expected = (0, 1) if args[:2] == ["canary", "analyze"] else (0,)
        assert result.exit_code in expected, (command, result.output)
    written = {"pilot-sim.png", "pilot-rollout.md", "pilot-canary.md", "decision.md"}
    assert written <= {path.name for path in tmp_path.iterdir()}


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("high: 12}, feature_parity: 3,", "high: 12}, featur_parity: 3,", "unknown criterion 'featur_parity'"),
        ("    weight: 0.20\n", "    weight: -0.20\n", "criteria[1].weight: must be >= 0.0, got -0.2"),
        ("discount_rate: 0.10", "discount_rat: 0.10", "unknown key 'discount_rat'; did you mean 'discount_rate'?"),
        ("probability: 0.3", "probability: 3", "tco.options.build[2].probability: must be <= 1.0, got 3"),
        # 1e308 here once overflowed the NPV (an internal error, exit 5).
        ("growth: 0.25", "growth: 1e308", "tco.options.buy[1].growth: must be <= 10.0, got '1e308'"),
        ("{name: schedule overrun, year: 1", "{name: schedule overrun, year: 9",
         "year 9 is outside the horizon 0..3"),
        # A rate near -1 once made (1 + r)^t underflow to 0: a ZeroDivisionError (exit 5).
        ("discount_rate: 0.10", "discount_rate: -0.999999999999",
         "tco.discount_rate: must be > -0.5, got -0.999999999999"),
        ("  - id: buy\n", "  - id: build\n", "duplicate id 'build'"),
        ("feature_parity: 3, lock_in: 1, ", "lock_in: 1, ", "options[0].scores: missing score for criterion"),
        ("criteria:\n", "weights_ahp:\n  tco: {time_to_market: 2}\ncriteria:\n",
         "criteria[0].weight: give either `weight` on criteria or `weights_ahp`, not both"),
    ],
    ids=["unknown-criterion", "negative-weight", "typo", "probability", "huge-growth", "horizon", "discount-rate",
         "duplicate",
         "missing-score", "weight-and-ahp"],
)
def test_bad_input_exit_4(runner: CliRunner, tmp_path: Path, old: str, new: str, expected: str) -> None:
    """Bad input exits 4 with file:line:col and the message, no traceback, nothing on stdout."""
    text = EXAMPLE.read_text()
    assert old in text
    path = tmp_path / "bad.yaml"
    path.write_text(text.replace(old, new, 1))
    for command in ("validate", "score", "pilot"):
        result = runner.invoke(app, ["rubric", command, str(path)])
        assert result.exit_code == ExitCode.BAD_INPUT, (command, result.output)
        assert f"{path}:" in result.stderr and expected in result.stderr.replace("\n", "")
        assert "Traceback" not in result.output
        assert result.stdout == ""


INCONSISTENT_AHP = ("weights_ahp:\n"
                    "  tco: {time_to_market: 9, feature_parity: 1/9, lock_in: 1, security: 1, enablement: 1}\n"
                    "  time_to_market: {feature_parity: 9, lock_in: 1, security: 1, enablement: 1}\n"
                    "  feature_parity: {lock_in: 1, security: 1, enablement: 1}\n"
                    "  lock_in: {security: 1, enablement: 1}\n"
                    "  security: {enablement: 1}\n")


def _ahp_example(tmp_path: Path, ahp: str) -> Path:
    """The example with its weights replaced by AHP judgements."""
    text = EXAMPLE.read_text()
    for weight in ("0.25", "0.20", "0.15", "0.10"):
        text = text.replace(f"    weight: {weight}\n", "")
    path = tmp_path / "ahp.yaml"
    path.write_text(text.replace("criteria:\n", ahp + "criteria:\n", 1))
    return path


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [("feature_parity: 1/9,", "feature_parity: -1,",
      ":17:44: weights_ahp.tco.feature_parity: a judgement must be > 0, got -1.0"),
     ("  security: {enablement: 1}\n", "  security: {enablement: 1}\n  enablement: {security: 2}\n",
      ":22:26: weights_ahp.enablement.security: contradicts its reciprocal")],
    ids=["non-positive", "contradicts-reciprocal"],
)
def test_bad_ahp_exit_4(runner: CliRunner, tmp_path: Path, old: str, new: str, expected: str) -> None:
    """A non-positive judgement or one contradicting its reciprocal exits 4 at the judgement."""
    assert old in INCONSISTENT_AHP
    path = _ahp_example(tmp_path, INCONSISTENT_AHP.replace(old, new, 1))
    result = runner.invoke(app, ["rubric", "validate", str(path)])
    assert result.exit_code == ExitCode.BAD_INPUT
    assert f"{path}{expected}" in result.stderr.replace("\n", "")


def test_strict_makes_inconsistent_ahp_an_error(runner: CliRunner, tmp_path: Path) -> None:
    """An inconsistent AHP matrix is a warning (exit 0) and, with --strict, exit 4 at weights_ahp."""
    path = _ahp_example(tmp_path, INCONSISTENT_AHP)
    loose = runner.invoke(app, ["rubric", "score", str(path), "--draws", "100"])
    assert loose.exit_code == 0, loose.output
    assert "consistency ratio" in loose.stderr
    strict = runner.invoke(app, ["rubric", "score", str(path), "--draws", "100", "--strict"])
    assert strict.exit_code == ExitCode.BAD_INPUT
    assert f"{path}:" in strict.stderr and "weights_ahp: AHP consistency ratio" in strict.stderr


def test_bad_template_and_start_exit_4(runner: CliRunner, tmp_path: Path) -> None:
    """A template that does not render, or a bad --start, exits 4 with the place."""
    template = tmp_path / "t.md"
    template.write_text("Hello $nobody\n")
    result = runner.invoke(app, ["rubric", "pilot", str(EXAMPLE), "--template", str(template)])
    assert result.exit_code == ExitCode.BAD_INPUT
    assert f"{template}:1:7: $nobody: unknown placeholder" in result.stderr
    result = runner.invoke(app, ["rubric", "pilot", str(EXAMPLE), "--start", "soon"])
    assert result.exit_code == ExitCode.BAD_INPUT
    assert "--start must be a date as YYYY-MM-DD, got 'soon'" in result.stderr
    result = runner.invoke(app, ["rubric", "pilot", str(EXAMPLE), "--start", "9999-12-01"])
    assert result.exit_code == ExitCode.BAD_INPUT
    assert "--start 9999-12-01: a 6-week pilot from it would end after the year 9999" in result.stderr
    result = runner.invoke(app, ["rubric", "pilot", str(EXAMPLE), "--option", ""])
    assert result.exit_code == ExitCode.BAD_INPUT  # an empty name is not "the winner"
    assert "--option: unknown option ''" in result.stderr


@pytest.mark.parametrize("args", [["--method", "ahp"], ["--normalization", "l2"], ["--draws", "-5"], ["--seed", "-1"],
                                  ["--draws", "100000000000000000000"]])
def test_usage_errors_exit_2(runner: CliRunner, args: list[str]) -> None:
    """Bad option values are usage errors (exit 2)."""
    assert runner.invoke(app, ["rubric", "score", str(EXAMPLE), *args]).exit_code == ExitCode.USAGE


@pytest.mark.parametrize(("args", "message"), [(["--method", "ahp"], "must be wsm or topsis, got 'ahp'"),
                                               (["--normalization", "l2"], "must be minmax, vector, sum or max, got")])
def test_usage_errors_list_the_choices(runner: CliRunner, args: list[str], message: str) -> None:
    """A bad --method or --normalization names every allowed value."""
    result = runner.invoke(app, ["rubric", "score", str(EXAMPLE), *args])
    assert result.exit_code == ExitCode.USAGE
    assert message in result.stderr


def test_missing_file_exit_4(runner: CliRunner, tmp_path: Path) -> None:
    """A missing rubric file is bad input."""
    result = runner.invoke(app, ["rubric", "score", str(tmp_path / "none.yaml")])
    assert result.exit_code == ExitCode.BAD_INPUT
    assert "no such file" in result.stderr


def test_a_title_with_brackets_is_shown_as_written(runner: CliRunner, tmp_path: Path) -> None:
    """Rubric text is plain in the tables: a title like 'Serving [/v2]' was read as markup (exit 5)."""
    path = tmp_path / "r.yaml"
    path.write_text(EXAMPLE.read_text().replace("title: Model serving platform", "title: 'Serving [/v2] [bold]x'"))
    result = runner.invoke(app, ["rubric", "score", str(path), "--draws", "100"])
    assert result.exit_code == 0, result.output
    assert "Serving [/v2] [bold]x" in result.stdout


def test_a_share_of_draws_is_never_rounded_to_nothing(runner: CliRunner, tmp_path: Path) -> None:
    """Build wins a few draws in 10,000: the tables say '<0.1%', not '0.0%', in the terminal and in the
    decision record (found by a review pass)."""
    record = tmp_path / "d.md"
    result = runner.invoke(app, ["rubric", "score", str(EXAMPLE), "--report", str(record)])
    assert result.exit_code == 0, result.output
    build = [line for line in result.stdout.splitlines() if line.startswith("│ build") and "%" in line]
    assert build and "<0.1%" in build[0] and "0.0%" not in build[0]
    assert "| build | <0.1% |" in record.read_text()
