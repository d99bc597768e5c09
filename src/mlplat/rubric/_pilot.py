"""The pilot plan for the chosen option: dated phases, numeric criteria, risks and the commands to run."""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from mlplat.errors import ConfigError, TemplateError
from mlplat.files import read_template
from mlplat.rubric._model import Rubric, Threshold
from mlplat.rubric._score import RubricResult
from mlplat.rubric._sensitivity import weight_text

__all__ = ["Phase", "PilotPlan", "pilot_phases", "pilot_plan", "render_pilot"]

PILOT_TEMPLATE = "rubric-pilot.md"
_INVALID = re.compile(r"line (\d+), col (\d+)")


@dataclass(frozen=True)
class Phase:
    """One dated phase of the pilot and the mlplat commands to run in it."""

    name: str
    start: date
    end: date
    purpose: str
    commands: tuple[str, ...]

    def markdown(self) -> str:
        when = self.start.isoformat()
        if self.end != self.start:
            when += f" to {self.end.isoformat()}"
        lines = [f"### {self.name}: {when}", "", self.purpose, ""]
        if self.commands:
            lines += ["```bash", *self.commands, "```", ""]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "start": self.start.isoformat(), "end": self.end.isoformat(),
                "purpose": self.purpose, "commands": list(self.commands)}


def pilot_phases(rubric: Rubric, start: date | None = None, rubric_file: str = "rubric.yaml") -> list[Phase]:
    """Setup, shadow traffic, canary and decision gate, splitting ``duration_weeks`` about 1 : 2 : 3.

    ``start`` is the first day (``--start``); without it, ``pilot.start`` from the file, else today.
    """
    pilot = rubric.pilot
    first = start or pilot.start or date.today()
    total = pilot.duration_weeks * 7
    setup = max(1, round(total / 6))
    shadow = max(1, round(total / 3))
    canary = max(1, total - setup - shadow)
    try:
        t1, t2 = first + timedelta(setup), first + timedelta(setup + shadow)
        t3 = first + timedelta(setup + shadow + canary)
    except OverflowError:  # date arithmetic stops at 9999-12-31
        raise _ends_too_late(rubric, first, from_file=start is None and pilot.start is not None) from None
    sim, canary_cfg = pilot.sim_config, pilot.canary_config
    rps = f"{pilot.rps:g}" if pilot.rps else "<peak-rps>"
    prometheus = pilot.prometheus_url or "<prometheus-url>"
    return [
        Phase("Setup", first, t1 - timedelta(1),
              "Provision the option, wire metrics, and size it for the representative workloads.",
              (f"mlplat sim validate {sim}", f"mlplat sim run {sim} --plot pilot-sim.png",
               f"mlplat sim compare {sim} --rates {_sweep_rates(rps)} --plot pilot-sweep.png")),
        Phase("Shadow traffic", t1, t2 - timedelta(1),
              "Mirror production requests to the option without serving its answers; compare latency, "
              "errors and cost with the current path.",
              (f"mlplat canary validate {canary_cfg}",
               f"mlplat canary rollout --config {canary_cfg} --rps {rps} --format markdown -o pilot-rollout.md")),
        Phase("Canary", t2, t3 - timedelta(1),
              "Serve a small, rising share of live traffic; stop at once on a kill criterion.",
              (f"mlplat canary watch --prometheus {prometheus} --config {canary_cfg} --interval 60s",
               f"mlplat canary analyze canary-export.csv --config {canary_cfg} --report pilot-canary.md")),
        Phase("Decision gate", t3, t3,
              "Adopt, extend or reject against the success and kill criteria; re-score the rubric with "
              "the measured figures.",
              (f"mlplat rubric score {rubric_file} --report decision.md",)),
    ]


def _ends_too_late(rubric: Rubric, first: date, *, from_file: bool) -> ConfigError:
    """The pilot would end after 9999-12-31: at ``pilot.start`` when the date came from the file, else ``--start``."""
    weeks = rubric.pilot.duration_weeks
    if from_file:
        return rubric.error(("pilot", "start"), f"a {weeks}-week pilot from {first.isoformat()} would end after "
                                                "the year 9999")
    return ConfigError(f"--start {first.isoformat()}: a {weeks}-week pilot from it would end after the year 9999")


def _sweep_rates(rps: str) -> str:
    """The ``sim compare --rates`` range up to the peak ``rps`` (as printed): from 0.1/s, or from a tenth of
    the peak when that is lower, so the range always rises as ``--rates`` requires."""
    if rps.startswith("<"):
        return f"0.1/s..{rps}/s"
    return f"{min(0.1, float(rps) / 10):g}/s..{rps}/s"


def _bullets(items: list[str], empty: str) -> str:
    return "\n".join(f"- {item}" for item in items) if items else f"- _{empty}_"


def _thresholds(items: list[Threshold], empty: str) -> str:
    return _bullets([str(t) for t in items], empty)


def _risks(rubric: Rubric, result: RubricResult, option: str) -> list[str]:
    ranked = result.option(option)
    strengths = [(ranked.contributions[c] / w, c) for c, w in result.weights.items() if w > 0]
    risks = []
    # Weakest first; among equals, the heavier weight first (a tie went to the alphabet).
    for value, criterion_id in sorted(strengths, key=lambda s: (s[0], -result.weights[s[1]], s[1]))[:2]:
        criterion = rubric.criterion(criterion_id)
        # The guide's weak end: a 1 for a benefit, a 5 for a cost (a cost's 1 is the best score there is).
        weak = 5 if criterion.direction == "cost" else 1
        low = criterion.guide.get(weak) if criterion.source is None else None
        detail = f" (a {weak} here means: {low})" if low else ""
        risks.append(f"Weak on **{criterion.label}**: normalised {value:.2f} of 1, weight "
                     f"{result.weights[criterion_id]:.2f}{detail}. Measure it first in the pilot.")
    if option == result.decision.winner:
        for c in result.sensitivity.changing_crossovers()[:2]:
            at, now = c.at_text, weight_text(c.weight)
            risks.append(f"If the **{result.criteria[c.criterion]}** weight {c.verb} {at} (now {now}), "
                         f"{c.new_winner} wins instead.")
    else:
        risks.append(f"{option} is not the rubric's winner ({result.decision.winner} is); the pilot must "
                     "show why the rubric is wrong.")
    return risks


@dataclass(frozen=True)
class PilotPlan:
    """The pilot plan for one option: its owner, dated phases, criteria and risks, and the Markdown of it all."""

    option: str
    owner: str
    start: date
    end: date
    weeks: int
    phases: tuple[Phase, ...]
    success_criteria: tuple[Threshold, ...]
    kill_criteria: tuple[Threshold, ...]
    risks: tuple[str, ...]
    markdown: str

    def to_dict(self) -> dict[str, Any]:
        return {"option": self.option, "owner": self.owner, "start": self.start.isoformat(),
                "end": self.end.isoformat(), "weeks": self.weeks, "phases": [p.to_dict() for p in self.phases],
                "success_criteria": [t.model_dump(mode="json") for t in self.success_criteria],
                "kill_criteria": [t.model_dump(mode="json") for t in self.kill_criteria],
                "risks": list(self.risks), "markdown": self.markdown}


def pilot_plan(rubric: Rubric, result: RubricResult, *, option: str | None = None, start: date | None = None,
               template: str | Path | None = None, rubric_file: str = "rubric.yaml") -> PilotPlan:
    """The pilot plan for ``option`` (default: the winner), starting on ``start`` (default: ``pilot.start``,
    else today), rendered to Markdown with ``template`` (default: the shipped ``rubric-pilot.md``).

    A template placeholder that is unknown or malformed raises :class:`TemplateError` with ``file:line:col``.
    """
    option = result.decision.winner if option is None else option
    if option not in rubric.option_ids:
        raise TemplateError(f"--option: unknown option {option!r}; options are: {', '.join(rubric.option_ids)}")
    pilot = rubric.pilot
    phases = pilot_phases(rubric, start, rubric_file)
    chosen = rubric.option(option)
    ranked = result.option(option)
    risks = _risks(rubric, result, option)
    workloads = [w if isinstance(w, str) else
                 w.name + (f" ({w.share:.0%} of traffic)" if w.share is not None else "")
                 + (f": {w.description}" if w.description else "") for w in pilot.workloads]
    values = {
        "title": rubric.title, "option": option, "option_name": chosen.label, "owner": pilot.owner,
        "start": phases[0].start.isoformat(), "end": phases[-1].end.isoformat(), "weeks": str(pilot.duration_weeks),
        "decision": (f"rank {ranked.rank} of {len(result.ranking)} with {result.method} / "
                     f"{result.normalization}; {result.decision.sentence}"),
        "goal": pilot.goal or f"Confirm that {chosen.label} meets the numbers the rubric assumed.",
        "scope": pilot.scope or (chosen.description or ""),
        "workloads": _bullets(workloads, "none listed in the rubric's pilot.workloads"),
        "phases": "\n".join(p.markdown() for p in phases).rstrip(),
        "success_criteria": _thresholds(pilot.success_criteria, "none listed: add pilot.success_criteria"),
        "kill_criteria": _thresholds(pilot.kill_criteria, "none listed: add pilot.kill_criteria"),
        "risks": _bullets(risks, "none found"),
    }
    source, text = _template_text(template)
    return PilotPlan(option, pilot.owner, phases[0].start, phases[-1].end, pilot.duration_weeks, tuple(phases),
                     tuple(pilot.success_criteria), tuple(pilot.kill_criteria), tuple(risks),
                     _substitute(text, values, source))


def render_pilot(rubric: Rubric, result: RubricResult, *, option: str | None = None, start: date | None = None,
                 template: str | Path | None = None, rubric_file: str = "rubric.yaml") -> str:
    """The Markdown pilot plan for ``option`` (default: the winner): :func:`pilot_plan`'s ``markdown``.

    ``template`` is a Markdown file with ``$placeholders`` (see the shipped ``rubric-pilot.md``); a
    placeholder that is unknown or malformed raises :class:`TemplateError` with ``file:line:col``.
    """
    return pilot_plan(rubric, result, option=option, start=start, template=template,
                      rubric_file=rubric_file).markdown


def _template_text(template: str | Path | None) -> tuple[str, str]:
    """``(source, text)`` of the pilot template: the shipped one, or the user's file."""
    if template is None:
        return PILOT_TEMPLATE, read_template(PILOT_TEMPLATE)
    source = str(template)
    try:
        return source, Path(template).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TemplateError(f"{source}: cannot read the template: {exc}") from exc


def _substitute(text: str, values: dict[str, str], source: str) -> str:
    try:
        return string.Template(text).substitute(values)
    except KeyError as exc:
        name = str(exc.args[0])
        match = re.search(rf"\$(\{{)?{re.escape(name)}\b", text)
        offset = match.start() if match else 0
        line = text.count("\n", 0, offset) + 1
        col = offset - (text.rfind("\n", 0, offset) + 1) + 1
        raise TemplateError(f"{source}:{line}:{col}: ${name}: unknown placeholder; available: "
                            f"{', '.join('$' + k for k in sorted(values))}") from None
    except ValueError as exc:
        found = _INVALID.search(str(exc))
        where = f"{source}:{found.group(1)}:{found.group(2)}" if found else source
        raise TemplateError(f"{where}: $: invalid placeholder; write $$ for a literal dollar sign") from None
