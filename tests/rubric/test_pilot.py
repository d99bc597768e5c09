"""Pilot plan: dated phases, criteria, risks, commands, and templates that do not render."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest

from mlplat.errors import ConfigError, TemplateError
from mlplat.rubric import decision_record, load_rubric, pilot_phases, plot_result, render_pilot, score_rubric

PILOT = """\
pilot:
  owner: ana@example.com
  duration_weeks: 6
  workloads: [ranking, {name: fraud, share: 0.3, description: bursty}]
  success_criteria: [{metric: p99_latency_ms, op: "<=", value: 50}]
  kill_criteria: [{metric: error_rate, op: ">", value: 0.01, description: roll back}]
  canary_config: c.yaml
"""


def _scored(write_rubric: Callable[..., Path]):  # type: ignore[no-untyped-def]
    rubric = load_rubric(write_rubric(("tco:\n", PILOT + "tco:\n")))
    return rubric, score_rubric(rubric, draws=200)


def test_phases_are_dated_and_contiguous(write_rubric: Callable[..., Path]) -> None:
    """Six weeks split into setup, shadow, canary (contiguous) and a one-day decision gate at the end."""
    rubric, _ = _scored(write_rubric)
    phases = pilot_phases(rubric, date(2026, 12, 1))
    assert [p.name for p in phases] == ["Setup", "Shadow traffic", "Canary", "Decision gate"]
    assert phases[0].start == date(2026, 12, 1)
    for before, after in itertools.pairwise(phases):
        assert (after.start - before.end).days == 1
    assert (phases[-1].end - phases[0].start).days == 42
    assert "mlplat canary analyze canary-export.csv --config c.yaml --report pilot-canary.md" in phases[2].commands
    assert "mlplat canary watch --prometheus <prometheus-url> --config c.yaml --interval 60s" in phases[2].commands
    assert any(c.startswith("mlplat sim run") for c in phases[0].commands)
    assert "mlplat canary rollout --config c.yaml --rps <peak-rps> --format markdown -o pilot-rollout.md" in (
        phases[1].commands)


def test_a_start_from_the_file_too_late_is_named_at_pilot_start(write_rubric: Callable[..., Path]) -> None:
    """A pilot.start in the file that runs the pilot past 9999 is an error at pilot.start, not at --start."""
    rubric = load_rubric(write_rubric(("tco:\n", PILOT + "  start: 9999-12-01\ntco:\n")))
    with pytest.raises(ConfigError, match=r"r\.yaml:20:10: pilot\.start: a 6-week pilot from 9999-12-01 would end "
                                          "after the year 9999"):
        pilot_phases(rubric)
    with pytest.raises(ConfigError, match=r"^--start 9999-12-02: a 6-week pilot from it would end"):
        pilot_phases(rubric, date(9999, 12, 2))


@pytest.mark.parametrize("rps", ["1e-6", "0.05", "0.1", "0.1000004", "0.15", "2000", "1e15"])
def test_the_sweep_command_takes_its_rates_for_any_rps(write_rubric: Callable[..., Path], rps: str) -> None:
    """The plan's `sim compare --rates` range rises for any allowed pilot.rps (0.05 once gave 0.1/s..0.05/s)."""
    from mlplat.cli.sim import parse_rates

    rubric = load_rubric(write_rubric(("tco:\n", PILOT + f"  rps: {rps}\ntco:\n")))
    command = pilot_phases(rubric, date(2026, 12, 1))[0].commands[2].split()
    low, high = parse_rates(command[command.index("--rates") + 1])
    assert 0 < low < high == pytest.approx(float(rps), rel=1e-5)


def test_plan_contents(write_rubric: Callable[..., Path]) -> None:
    """The plan names the winner, owner, workloads, numeric criteria, risks and commands."""
    rubric, result = _scored(write_rubric)
    text = render_pilot(rubric, result, start=date(2026, 12, 1), rubric_file="r.yaml")
    winner = result.decision.winner
    assert text.startswith(f"# Pilot plan: {winner} for Serving platform")
    for piece in ("ana@example.com", "2026-12-01 to 2027-01-12", "- ranking", "fraud (30% of traffic): bursty",
                  "`p99_latency_ms <= 50`", "`error_rate > 0.01`: roll back", "Weak on **",
                  "mlplat rubric score r.yaml --report decision.md", "mlplat canary rollout --config c.yaml",
                  "**adopt**", "**extend**", "**reject**"):
        assert piece in text, piece
    assert "$" not in text


def test_plan_for_another_option(write_rubric: Callable[..., Path]) -> None:
    """Piloting a non-winner says so in the risks; an unknown option is an error."""
    rubric, result = _scored(write_rubric)
    other = next(o for o in rubric.option_ids if o != result.decision.winner)
    text = render_pilot(rubric, result, option=other, start=date(2026, 12, 1))
    assert f"{other} is not the rubric's winner" in text
    with pytest.raises(TemplateError, match="--option: unknown option 'nope'; options are: build, buy, hybrid"):
        render_pilot(rubric, result, option="nope")


def test_custom_template_and_errors(write_rubric: Callable[..., Path], tmp_path: Path) -> None:
    """A user template renders; an unknown or malformed placeholder is an error at file:line:col."""
    rubric, result = _scored(write_rubric)
    good = tmp_path / "good.md"
    good.write_text("Pilot $option_name by $owner costs $$0\n")
    expected = f"Pilot {result.decision.winner} by ana@example.com costs $0\n"
    assert render_pilot(rubric, result, template=good) == expected
    unknown = tmp_path / "unknown.md"
    unknown.write_text("# Plan\n\nOwner: $owner, budget ${budget}\n")
    with pytest.raises(TemplateError, match=r"unknown\.md:3:23: \$budget: unknown placeholder; available: "):
        render_pilot(rubric, result, template=unknown)
    malformed = tmp_path / "malformed.md"
    malformed.write_text("ok\ncost: $ 5\n")
    with pytest.raises(TemplateError, match=r"malformed\.md:2:7: \$: invalid placeholder"):
        render_pilot(rubric, result, template=malformed)
    with pytest.raises(TemplateError, match=r"missing\.md: cannot read the template"):
        render_pilot(rubric, result, template=tmp_path / "missing.md")


def test_the_record_of_a_tie_names_no_winner() -> None:
    """With the top options tied, the record said '**x**, by 0.0000 over y' and gave x's consequences alone,
    presenting the option listed first as the decision (found by a review pass). It says there is no winner
    and lists each tied option's consequences."""
    from mlplat.rubric import Rubric

    rubric = Rubric.model_validate({
        "title": "tie",
        "criteria": [{"id": "a", "direction": "benefit", "weight": 1}, {"id": "b", "direction": "cost", "weight": 1}],
        "options": [{"id": "x", "scores": {"a": 1, "b": 2}, "consequences": ["x runs it"]},
                    {"id": "y", "scores": {"a": 2, "b": 3}, "consequences": ["y pays for it"]}]})
    result = score_rubric(rubric, draws=100, seed=0)
    assert result.decision.tie
    text = decision_record(rubric, result)
    decision = text.split("## Decision")[1].split("## What would change it")[0]
    assert "**No winner**: x and y tie on score; add a criterion" in decision and "by 0.0000" not in decision
    assert "- **x**\n  - x runs it" in decision and "- **y**\n  - y pays for it" in decision


def test_decision_record_sections(write_rubric: Callable[..., Path]) -> None:
    """The decision record has every section issue 3 lists."""
    rubric, result = _scored(write_rubric)
    text = decision_record(rubric, result)
    for heading in ("## Context", "## Options", "## Criteria and scoring guides", "## Scores",
                    "## Total cost of ownership", "## Sensitivity", "## Decision", "## Consequences",
                    "## What would change it"):
        assert heading in text, heading
    assert "Rank-reversal check" in text or "reorders the others" in text


def test_decision_record_shows_the_discount_rate_as_given(write_rubric: Callable[..., Path]) -> None:
    """A 3.5% discount rate reads 3.5% in the record (it was rounded to a whole percent: 4%)."""
    rubric = load_rubric(write_rubric(("discount_rate: 0.1", "discount_rate: 0.035")))
    assert "Discount rate 3.5%," in decision_record(rubric, score_rubric(rubric, draws=0))


def test_plot_writes_png(write_rubric: Callable[..., Path], tmp_path: Path) -> None:
    """--plot writes a PNG atomically and refuses to overwrite without force."""
    _, result = _scored(write_rubric)
    path = plot_result(result, tmp_path / "p.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    from mlplat.errors import OutputError

    with pytest.raises(OutputError, match="already exists; pass --force"):
        plot_result(result, path)
    plot_result(result, path, force=True)


def test_every_phase_command_exists_in_the_cli(write_rubric: Callable[..., Path]) -> None:
    """Each command line in the plan names a real mlplat command with options it accepts."""
    import shlex

    from typer.testing import CliRunner

    from mlplat.cli import app

    rubric, _ = _scored(write_rubric)
    runner = CliRunner()
    for phase in pilot_phases(rubric, date(2026, 12, 1)):
        for command in phase.commands:
            args = shlex.split(command)[1:]
            # --help is eager, but unknown options still fail parsing first (exit 2).
            result = runner.invoke(app, [*args, "--help"])
            assert result.exit_code == 0, (command, result.output)


def test_a_cost_criterion_s_weak_end_is_its_5_and_heavier_weights_come_first() -> None:
    """Buy is weakest on lock-in (a cost: it scores 4): the plan quotes the guide's 5, not its 1 ('open APIs,
    leave in a week', the best there is); of the criteria tied at 0, the heavier (security, 0.15) comes
    before enablement (0.10), not the first in the alphabet (found by a review pass)."""
    example = Path(__file__).resolve().parents[2] / "examples" / "rubric" / "serving-platform.yaml"
    rubric = load_rubric(example)
    plan = render_pilot(rubric, score_rubric(rubric, draws=200), option="buy", start=date(2026, 12, 1))
    weak = [line for line in plan.splitlines() if line.startswith("- Weak on")]
    assert "**Vendor lock-in risk**" in weak[0] and "(a 5 here means: proprietary formats" in weak[0]
    assert "**Security and compliance**" in weak[1]
