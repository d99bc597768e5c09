"""The decision record (Markdown) and the plot of a scored rubric."""

from __future__ import annotations

from pathlib import Path

from mlplat.plots import pyplot, save_figure
from mlplat.rubric._model import Rubric
from mlplat.rubric._score import RubricResult, margin_text, share_cell, tied_with_winner
from mlplat.rubric._sensitivity import weight_text

__all__ = ["decision_record", "plot_result"]


def _table(columns: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _num(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"


def decision_record(rubric: Rubric, result: RubricResult) -> str:
    """A Markdown decision record: context, options, criteria and guides, scores, TCO, sensitivity,
    decision, consequences, and what would change it."""
    criteria = rubric.criteria
    out = [f"# Decision record: {rubric.title}", "", "## Context", "",
           rubric.context or "_No context given in the rubric's `context` field._", "", "## Options", ""]
    out += [f"- **{o.label}** (`{o.id}`)" + (f": {o.description}" if o.description else "") for o in rubric.options]
    out += ["", "## Criteria and scoring guides", ""]
    rows = []
    for c in criteria:
        guide = "; ".join(f"{k} = {v}" for k, v in sorted(c.guide.items())) or "-"
        source = "risk-adjusted NPV" if c.source == "tco" else (c.unit or "score")
        rows.append([c.label, c.direction, f"{result.weights[c.id]:.3f}", source, guide])
    out += [_table(["criterion", "direction", "weight", "measured as", "guide"], rows), ""]
    if result.ahp is not None:
        verdict = "consistent" if result.ahp.consistent else "**inconsistent**: revise the judgements"
        out += [f"Weights from AHP pairwise judgements (Saaty 1980): λmax {result.ahp.lambda_max:.4f}, "
                f"CI {result.ahp.ci:.4f}, CR {result.ahp.cr:.4f} ({verdict}).", ""]
    out += ["## Scores", "", f"Method **{result.method}**, normalisation **{result.normalization}** "
            "(the normalisation can change the winner). Each cell is the criterion's weighted contribution; "
            "the raw score is in brackets.", ""]
    rows = [[str(r.rank), r.option, f"{r.score:.4f}",
             *(f"{r.contributions[c.id]:.3f} ({_num(r.raw[c.id])})" for c in criteria)] for r in result.ranking]
    out += [_table(["rank", "option", "score", *(c.label for c in criteria)], rows), ""]
    if result.tco is not None and rubric.tco is not None:
        years = range(rubric.tco.horizon_years + 1)
        out += ["## Total cost of ownership", "",
                f"Discount rate {rubric.tco.discount_rate * 100:.4g}%, {rubric.tco.currency}; year 0 is not "
                "discounted. Expected cost per year (risks times their probability).", ""]
        rows = [[o, *(_num(y.expected) for y in t.by_year), _num(t.npv), _num(t.risk_adjusted_npv)]
                for o, t in result.tco.items()]
        out += [_table(["option", *(f"year {y}" for y in years), "NPV", "risk-adjusted NPV"], rows), ""]
    s = result.sensitivity
    out += ["## Sensitivity", ""]
    if s.p_best is not None:
        out += [f"{s.draws:,} draws (seed {s.seed}): weights from Dirichlet({s.concentration:g} × w), scores "
                "from their triangular ranges.", ""]
        out += [_table(["option", "P(best)"], [[o, share_cell(p)] for o, p in s.p_best.items()]), ""]
    rows = [[result.criteria[c.criterion], f"{c.weight:.3f}",
             c.at_text, c.new_winner or "-"]
            for c in s.crossovers]
    out += ["Crossovers: the weight at which the winner changes when the other weights are rescaled "
            "proportionally.", "", _table(["criterion", "weight", "winner changes at", "new winner"], rows), ""]
    if s.rank_reversals:
        out += [f"- Removing **{r.removed}** reorders the others: {' > '.join(r.before)} becomes "
                f"{' > '.join(r.after)}." for r in s.rank_reversals]
    else:
        out.append("Rank-reversal check: removing any one option leaves the order of the others unchanged.")
    out += ["", "## Decision", ""]
    if result.decision.tie:  # the winner is only the option listed first: no option is the decision
        tied = [rubric.option(name) for name in tied_with_winner(result.ranking)]
        out += [f"**No winner**: {result.decision.sentence.removeprefix('no winner: ')}.", "",
                "## Consequences", "", "Of each tied option, once one is chosen:", ""]
        for option in tied:
            out += [f"- **{option.label}**"]
            out += [f"  - {line}" for line in option.consequences] or ["  - _none listed_"]
    else:
        winner = rubric.option(result.decision.winner)
        out += [f"**{winner.label}**, by {margin_text(result.decision.margin)} over {result.decision.runner_up}. "
                f"{result.decision.sentence}.", "", "## Consequences", ""]
        out += [f"- {line}" for line in winner.consequences] or ["- _List them under the option's `consequences`._"]
    out += ["", "## What would change it", ""]
    changes = [f"- The {result.criteria[c.criterion]} weight moving {c.direction} {c.at_text} "
               f"(now {weight_text(c.weight)}): {c.new_winner} wins."
               for c in s.changing_crossovers()]
    out += changes or ["- No single weight change makes another option win."]
    out += [f"- Warning: {w}" for w in result.warnings]
    return "\n".join(out) + "\n"


def plot_result(result: RubricResult, path: str | Path, *, force: bool = False) -> Path:
    """A PNG with the stacked contributions per option and P(best), written atomically."""
    options = [r.option for r in result.ranking]
    panels = 2 if result.sensitivity.p_best is not None else 1
    fig, axes = pyplot().subplots(1, panels, figsize=(5 * panels + 2, 4), squeeze=False)
    left = axes[0][0]
    bottom = [0.0] * len(options)
    for criterion, label in result.criteria.items():
        heights = [r.contributions[criterion] for r in result.ranking]
        left.bar(options, heights, bottom=bottom, label=label)
        bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
    left.set_title(f"Weighted contributions ({result.method}, {result.normalization})")
    left.legend(fontsize="small")
    if result.sensitivity.p_best is not None:
        right = axes[0][1]
        right.bar(options, [result.sensitivity.p_best[o] for o in options], color="tab:gray")
        right.set_ylim(0, 1)
        right.set_title(f"P(best) over {result.sensitivity.draws:,} draws")
    fig.tight_layout()
    return save_figure(fig, path, force=force)
