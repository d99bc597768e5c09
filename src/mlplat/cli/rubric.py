"""`mlplat rubric`: build-vs-buy scoring with TCO, sensitivity and a pilot plan."""

from __future__ import annotations

import json as jsonlib
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Group
from rich.text import Text

from mlplat.cli._output import JsonOption, Output, check_outputs, make_table
from mlplat.files import atomic_write_text, read_template

# The library (numpy, pydantic models) is imported inside the commands so `mlplat --help` stays fast.
if TYPE_CHECKING:
    from mlplat.rubric import RubricResult

app = typer.Typer(help="Build vs buy: weighted scoring (WSM, TOPSIS, AHP), TCO as NPV, sensitivity, pilot plan.",
                  no_args_is_help=True)

TEMPLATE = "rubric.yaml"
FileArg = Annotated[Path, typer.Argument(help="Rubric YAML file.", show_default=False)]
ForceOption = Annotated[bool, typer.Option("--force", help="Overwrite files that exist.")]


def render(result: RubricResult) -> Group:
    """Rich tables for a scored rubric: ranking with contributions, TCO by year, sensitivity, decision."""
    from mlplat.rubric._score import margin_text, share_cell

    criteria = list(result.criteria)
    parts: list[object] = []
    rows = [[r.rank, r.option, f"{r.score:.4f}", *(f"{r.contributions[c]:.3f}" for c in criteria)]
            for r in result.ranking]
    rows.append(["", "weight", "", *(f"{result.weights[c]:.3f}" for c in criteria)])
    parts.append(make_table(f"{result.title}: {result.method}, {result.normalization} normalisation",
                            ["rank", "option", "score", *criteria], rows,
                            numeric=range(2, 3 + len(criteria))))
    if result.ahp is not None:
        state = "consistent" if result.ahp.consistent else "INCONSISTENT"
        parts.append(Text(f"AHP weights: λmax {result.ahp.lambda_max:.4f}, CI {result.ahp.ci:.4f}, "
                          f"CR {result.ahp.cr:.4f} ({state})"))
    if result.tco is not None:
        horizon = max(len(t.by_year) for t in result.tco.values())
        rows = [[o, *(f"{y.expected:,.0f}" for y in t.by_year), f"{t.npv:,.0f}", f"{t.risk_adjusted_npv:,.0f}"]
                for o, t in result.tco.items()]
        parts.append(make_table("TCO by year (expected cost; year 0 undiscounted)",
                                ["option", *(f"year {y}" for y in range(horizon)), "NPV", "risk-adj. NPV"],
                                rows, numeric=range(1, horizon + 3)))
    s = result.sensitivity
    if s.p_best is not None:
        rows = [[o, share_cell(p), *(share_cell(q) for q in (s.rank_distribution or {})[o])]
                for o, p in s.p_best.items()]
        parts.append(make_table(f"Monte Carlo: {s.draws:,} draws, seed {s.seed}, Dirichlet({s.concentration:g} × w)",
                                ["option", "P(best)", *(f"rank {k + 1}" for k in range(len(s.p_best)))], rows,
                                numeric=range(1, 2 + len(s.p_best))))
    rows = [[result.criteria[c.criterion], f"{c.weight:.3f}",
             "none in [0, 1]" if c.winner_changes_at is None else c.at_text, c.new_winner or "-"]
            for c in s.crossovers]
    parts.append(make_table("Crossovers (other weights rescaled proportionally)",
                            ["criterion", "weight", "winner changes at", "new winner"], rows, numeric=(1, 2)))
    for r in s.rank_reversals:
        parts.append(Text(f"Rank reversal: removing {r.removed} turns {' > '.join(r.before)} into "
                          f"{' > '.join(r.after)}", style="yellow"))
    parts.append(Text(f"Decision: {result.decision.sentence}. Margin {margin_text(result.decision.margin)} over "
                      f"{result.decision.runner_up}.", style="bold"))
    return Group(*parts)  # type: ignore[arg-type]  # rich renderables


def _one_of(names: list[str]) -> str:
    """``a, b or c``: the allowed values in a usage error."""
    *rest, last = names
    return f"{', '.join(rest)} or {last}" if rest else last


@app.command()
def init(ctx: typer.Context,
         path: Annotated[Path, typer.Argument(help="Where to write the template.")] = Path("rubric.yaml"),
         force: ForceOption = False, json: JsonOption = False) -> None:
    """Write a commented rubric: model serving platform, build vs buy vs hybrid."""
    atomic_write_text(path, read_template(TEMPLATE), force=force)
    Output.from_ctx(ctx, json=json).wrote(path, f"; score it with: mlplat rubric score {path}")


@app.command()
def validate(ctx: typer.Context, file: FileArg, json: JsonOption = False) -> None:
    """Check a rubric file; errors name file:line:column and the key."""
    from mlplat.rubric import load_rubric

    rubric = load_rubric(file)
    out = Output.from_ctx(ctx, json=json)
    summary = {"file": str(file), "valid": True, "criteria": len(rubric.criteria), "options": len(rubric.options)}
    if out.json:
        out.result(summary)
    else:
        out.print(f"{file}: valid ({len(rubric.criteria)} criteria, {len(rubric.options)} options)")


@app.command()
def schema() -> None:
    """Print the JSON Schema of the rubric file."""
    from mlplat.rubric import Rubric

    typer.echo(jsonlib.dumps(Rubric.config_schema(), indent=2))


@app.command()
def score(
    ctx: typer.Context,
    file: FileArg,
    method: Annotated[str | None, typer.Option(help="wsm or topsis (default: the file's).")] = None,
    normalization: Annotated[str | None, typer.Option(help="minmax, vector, sum or max (default: the file's).")] = None,
    # max is rubric._model.MAX_DRAWS (see why there), written out so `mlplat --help` need not import the models.
    draws: Annotated[int | None, typer.Option(min=0, max=10_000_000, help="Monte Carlo draws; 0 skips it.")] = None,
    seed: Annotated[int | None, typer.Option(min=0, help="Random seed (>= 0).")] = None,
    strict: Annotated[bool, typer.Option("--strict", help="An AHP consistency ratio above 0.10 is an error.")] = False,
    report: Annotated[Path | None, typer.Option(help="Write a Markdown decision record.")] = None,
    plot: Annotated[Path | None, typer.Option(help="Write a plot (.png, .svg or .pdf): contributions, P(best).")]
    = None,
    force: ForceOption = False,
    json: JsonOption = False,
) -> None:
    """Rank the options, show the TCO, test the winner's robustness and say it in one sentence."""
    out = Output.from_ctx(ctx, json=json)
    # Here, not at the top: _mcda imports numpy, and the scoring below needs it anyway.
    from mlplat.rubric._mcda import METHODS, NORMALIZATIONS

    if method is not None and method not in METHODS:
        raise typer.BadParameter(f"must be {_one_of(list(METHODS))}, got {method!r}", param_hint="--method")
    if normalization is not None and normalization not in NORMALIZATIONS:
        raise typer.BadParameter(f"must be {_one_of(list(NORMALIZATIONS))}, got {normalization!r}",
                                 param_hint="--normalization")
    check_outputs(report, plot, force=force, inputs=[file])  # before scoring: refuse both or write both
    from mlplat.rubric import decision_record, load_rubric, plot_result, score_rubric

    rubric = load_rubric(file)
    result = score_rubric(rubric, method=method, normalization=normalization, draws=draws, seed=seed, strict=strict)
    for warning in result.warnings:
        out.warn(warning)
    if report is not None:
        atomic_write_text(report, decision_record(rubric, result), force=force)
        out.note(f"wrote {report}")
    if plot is not None:
        plot_result(result, plot, force=force)
        out.note(f"wrote {plot}")
    if out.json:
        out.result(result)
    else:
        out.print(render(result))


@app.command()
def pilot(
    ctx: typer.Context,
    file: FileArg,
    option: Annotated[str | None, typer.Option(help="Option to pilot (default: the winner).")] = None,
    start: Annotated[str | None, typer.Option(help="Start date YYYY-MM-DD (default: pilot.start or today).")] = None,
    template: Annotated[Path | None, typer.Option(help="Markdown template with $placeholders.")] = None,
    output: Annotated[Path | None,
                      typer.Option("--output", "-o", help="Write the plan here (default: stdout).")] = None,
    force: ForceOption = False,
    json: JsonOption = False,
) -> None:
    """Write a Markdown pilot plan: dated phases, success and kill criteria, risks, commands to run."""
    out = Output.from_ctx(ctx, json=json)
    if output is not None:
        check_outputs(output, force=force, inputs=[file, template])
    from mlplat.rubric import load_rubric, parse_start, pilot_plan, score_rubric

    rubric = load_rubric(file)
    result = score_rubric(rubric)
    for warning in result.warnings:  # the plan rests on this scoring: an inconsistent AHP matters here too
        out.warn(warning)
    if option is None and result.decision.tie:
        out.warn(f"{result.decision.sentence}; this plan is for {result.decision.winner}, listed first: "
                 "pass --option to choose")
    plan = pilot_plan(rubric, result, option=option, start=parse_start(start), template=template,
                      rubric_file=str(file))
    if output is not None:
        atomic_write_text(output, plan.markdown, force=force)
        out.note(f"wrote {output}")
    if out.json:
        out.result({**plan.to_dict(), "wrote": str(output) if output is not None else None})
    elif output is None:
        typer.echo(plan.markdown, nl=False)
