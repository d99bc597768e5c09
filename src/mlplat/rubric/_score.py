"""Score a rubric: weights (direct or AHP), TCO, ranking with contributions, sensitivity, decision."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mlplat.errors import ConfigError
from mlplat.rubric._mcda import CR_LIMIT, AhpResult, ahp, check_normalization, normalize, scorer
from mlplat.rubric._model import MAX_DRAWS, Rubric, pairwise_matrix
from mlplat.rubric._sensitivity import (
    TIE,
    Crossover,
    RankReversal,
    crossovers,
    monte_carlo,
    rank_reversals,
)
from mlplat.rubric._tco import TcoResult, tco_table

__all__ = ["Decision", "RankedOption", "RubricResult", "SensitivityResult", "score_rubric"]


@dataclass(frozen=True)
class RankedOption:
    """One option's place: score, rank (1 = best), each criterion's weighted contribution and raw score."""

    option: str
    score: float
    rank: int
    contributions: dict[str, float]
    raw: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return {"option": self.option, "score": self.score, "rank": self.rank,
                "contributions": self.contributions, "raw": self.raw}


@dataclass(frozen=True)
class SensitivityResult:
    """Monte Carlo P(best) and rank distribution, weight crossovers, and rank reversals."""

    draws: int
    seed: int
    concentration: float
    p_best: dict[str, float] | None
    rank_distribution: dict[str, list[float]] | None
    crossovers: tuple[Crossover, ...]
    rank_reversals: tuple[RankReversal, ...]

    def changing_crossovers(self) -> tuple[Crossover, ...]:
        """The crossovers that change the winner, nearest to the current weight first (ties keep criterion order)."""
        return tuple(sorted((c for c in self.crossovers if c.winner_changes_at is not None), key=lambda c: c.distance))

    def nearest_crossover(self) -> Crossover | None:
        changing = self.changing_crossovers()
        return changing[0] if changing else None

    def to_dict(self) -> dict[str, Any]:
        return {"draws": self.draws, "seed": self.seed, "concentration": self.concentration,
                "p_best": self.p_best, "rank_distribution": self.rank_distribution,
                "crossovers": [c.to_dict() for c in self.crossovers],
                "rank_reversals": [r.to_dict() for r in self.rank_reversals]}


@dataclass(frozen=True)
class Decision:
    """The winner, its margin over the runner-up, and one sentence a director can read."""

    winner: str
    runner_up: str
    margin: float
    sentence: str

    @property
    def tie(self) -> bool:
        """The top options score the same: the winner is only the one listed first."""
        return self.margin <= TIE

    def to_dict(self) -> dict[str, Any]:
        return {"winner": self.winner, "runner_up": self.runner_up, "margin": self.margin, "tie": self.tie,
                "sentence": self.sentence}


@dataclass(frozen=True)
class RubricResult:
    """Everything `mlplat rubric score` reports; ``to_dict()`` is the ``--json`` document."""

    title: str
    method: str
    normalization: str
    criteria: dict[str, str]
    weights: dict[str, float]
    ahp: AhpResult | None
    ranking: tuple[RankedOption, ...]
    tco: dict[str, TcoResult] | None
    sensitivity: SensitivityResult
    decision: Decision
    warnings: tuple[str, ...] = field(default_factory=tuple)

    def option(self, option_id: str) -> RankedOption:
        return next(r for r in self.ranking if r.option == option_id)

    def to_dict(self) -> dict[str, Any]:
        return {
            "title": self.title, "method": self.method, "normalization": self.normalization,
            "weights": self.weights, "ahp": self.ahp.to_dict() if self.ahp else None,
            "ranking": [r.to_dict() for r in self.ranking],
            "tco": {k: v.to_dict() for k, v in self.tco.items()} if self.tco is not None else None,
            "sensitivity": self.sensitivity.to_dict(), "decision": self.decision.to_dict(),
            "warnings": list(self.warnings),
        }

    def __rich__(self) -> Any:
        from rich.text import Text  # plain text: a title with brackets is shown as written, not read as markup

        lines = [f"{self.title} ({self.method}, {self.normalization} normalisation)"]
        lines += [f"{r.rank}. {r.option}  {r.score:.4f}" for r in self.ranking]
        lines.append(self.decision.sentence)
        return Text("\n".join(lines))


def tied_with_winner(ranking: Sequence[RankedOption]) -> list[str]:
    """The options whose scores lie within ``TIE`` of the first (best) one's, that one first."""
    top = ranking[0].score
    return [r.option for r in ranking if top - r.score <= TIE]


def rubric_weights(rubric: Rubric) -> tuple[np.ndarray, AhpResult | None]:
    """Weights summing to 1, from the criteria's ``weight`` or from the AHP judgements."""
    if rubric.weights_ahp is not None:
        result = ahp(pairwise_matrix(rubric.weights_ahp, rubric.criterion_ids))
        return np.array(result.weights), result
    raw = np.array([c.weight or 0.0 for c in rubric.criteria])
    return raw / raw.sum(), None


def score_arrays(rubric: Rubric, tco: dict[str, TcoResult] | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``low``, ``mode`` and ``high`` score matrices (options x criteria); TCO criteria use the risk-adjusted NPV."""
    m, n = len(rubric.options), len(rubric.criteria)
    low, mode, high = np.zeros((m, n)), np.zeros((m, n)), np.zeros((m, n))
    for i, option in enumerate(rubric.options):
        for j, criterion in enumerate(rubric.criteria):
            if criterion.source == "tco":
                assert tco is not None  # Rubric validation requires a tco section for source: tco
                low[i, j] = mode[i, j] = high[i, j] = tco[option.id].risk_adjusted_npv
                continue
            value = option.scores[criterion.id]
            if isinstance(value, float | int):
                low[i, j] = mode[i, j] = high[i, j] = float(value)
            else:
                low[i, j], mode[i, j], high[i, j] = value.low, value.mode, value.high
    return low, mode, high


def _check_sum_signs(rubric: Rubric, low: np.ndarray, cost: np.ndarray) -> None:
    """Sum normalisation divides by cost scores (1/x), so they must be > 0; and by a benefit column's sum, whose
    sign a negative score can flip (ranking the worst option first), so benefit scores must be >= 0. Both are
    checked down to the low end of each range."""
    for i, j in zip(*np.nonzero(np.where(cost, low <= 0, low < 0)), strict=True):
        option, criterion = rubric.options[i], rubric.criteria[j]
        path = (("tco", "options", option.id) if criterion.source == "tco"
                else ("options", int(i), "scores", criterion.id))
        need = "cost scores > 0 (it uses 1/x)" if cost[j] else "benefit scores >= 0 (it divides by their sum)"
        raise rubric.error(path, f"sum normalisation needs {need}, got {low[i, j]:g}; use minmax or vector")


def _check_npv(rubric: Rubric, tco: dict[str, TcoResult]) -> None:
    """An NPV that overflowed (fees growing for decades) would score NaN: refuse it at the option's cash flows."""
    for option, result in tco.items():
        if not (math.isfinite(result.npv) and math.isfinite(result.risk_adjusted_npv)):
            raise rubric.error(("tco", "options", option), f"the NPV of {option!r} is not a finite number "
                               f"({result.risk_adjusted_npv}); lower its amounts, volumes or growth")


def _check_finite(rubric: Rubric, normalized: np.ndarray, scores: np.ndarray) -> None:
    """Scores that came out inf or NaN would rank at random and print as nan: refuse them at their criterion."""
    columns = np.flatnonzero(~np.isfinite(normalized).all(axis=0))
    if columns.size or not np.isfinite(scores).all():
        j = int(columns[0]) if columns.size else 0
        raise rubric.error(("criteria", j), f"the scores of criterion {rubric.criteria[j].id!r} do not normalise "
                           "to finite numbers; make them smaller")


def _share_of_draws(p: float) -> str:
    """A whole percent that never rounds a loss or a win away: 0.9996 is "over 99.9%", not "100%", and
    0.0042 is "0.4%", not "0%".

    >>> _share_of_draws(0.76), _share_of_draws(1.0), _share_of_draws(0.9996), _share_of_draws(0.997)
    ('76%', '100%', 'over 99.9%', '99.7%')
    >>> _share_of_draws(0.0042), _share_of_draws(0.0004), _share_of_draws(0.0)
    ('0.4%', 'under 0.1%', '0%')
    """
    if 0 < p < 0.0005:
        return "under 0.1%"
    if 0 < p < 0.005:
        return f"{p:.1%}"
    if p >= 1 or p < 0.995:
        return f"{p:.0%}"
    return f"{p:.1%}" if p < 0.9995 else "over 99.9%"


def margin_text(margin: float) -> str:
    """A score margin as printed: four decimals, or two significant figures under 0.00005 (a win by 2e-9
    printed "0.0000", which read as a tie it is not).

    >>> margin_text(0.0812), margin_text(2e-9), margin_text(0.0)
    ('0.0812', '2e-09', '0.0000')
    """
    return f"{margin:.4f}" if margin == 0 or margin >= 5e-5 else f"{margin:.2g}"


def share_cell(p: float) -> str:
    """A share of draws in a table: one decimal, never rounding a win or a loss away (it printed 0.0% for
    0.03% of draws and would have printed 100.0% for 99.96%).

    >>> share_cell(0.7612), share_cell(0.0003), share_cell(0.9996), share_cell(0.0), share_cell(1.0)
    ('76.1%', '<0.1%', '>99.9%', '0.0%', '100.0%')
    """
    if 0 < p < 0.0005:
        return "<0.1%"
    if 0.9995 <= p < 1:
        return ">99.9%"
    return f"{p:.1%}"


def _sentence(winner: str, tied: list[str], p_best: dict[str, float] | None, draws: int, nearest: Crossover | None,
              labels: dict[str, str], margin: float) -> str:
    if tied:
        names = ", ".join([winner, *tied[:-1]]) + f" and {tied[-1]}"
        return f"no winner: {names} tie on score; add a criterion or score more finely to separate them"
    head = (f"{winner} wins in {_share_of_draws(p_best[winner])} of {draws:,} draws" if p_best is not None
            else f"{winner} wins by a margin of {margin_text(margin)}")
    if nearest is None or nearest.winner_changes_at is None:
        return head + "; no single weight change in [0, 1] makes another option win"
    return (f"{head}; {nearest.new_winner} overtakes it if the {labels[nearest.criterion]} weight {nearest.verb} "
            f"{nearest.at_text}")


def score_rubric(rubric: Rubric, *, method: str | None = None, normalization: str | None = None,
                 draws: int | None = None, seed: int | None = None, strict: bool = False) -> RubricResult:
    """Score a rubric: rank the options, compute the TCO, and test how robust the winner is.

    Parameters
    ----------
    rubric : Rubric
        A validated rubric (:func:`load_rubric` or ``Rubric.model_validate``).
    method, normalization : str, optional
        Override the file's ``method`` (``wsm`` or ``topsis``) and ``normalization``
        (``minmax``, ``vector``, ``sum``, ``max``).
    draws, seed : int, optional
        Monte Carlo draws (0 skips the simulation) and seed; default from the file's ``sensitivity``.
    strict : bool
        Make an AHP consistency ratio above 0.10 an error instead of a warning.

    Returns
    -------
    RubricResult
        Ranking with contributions (``w_j * n_ij``; for WSM they sum to the score), TCO per option,
        sensitivity (P(best), rank distribution, crossovers, rank reversals) and the decision.

    References
    ----------
    .. [1] T. L. Saaty, *The Analytic Hierarchy Process*, McGraw-Hill, 1980.
    .. [2] C.-L. Hwang and K. Yoon, *Multiple Attribute Decision Making: Methods and Applications*,
       Springer, 1981.

    Examples
    --------
    >>> rubric = Rubric.model_validate({
    ...     "title": "demo",
    ...     "criteria": [{"id": "cost", "direction": "cost", "weight": 0.6},
    ...                  {"id": "speed", "direction": "benefit", "weight": 0.4}],
    ...     "options": [{"id": "build", "scores": {"cost": 9, "speed": 8}},
    ...                 {"id": "buy", "scores": {"cost": 5, "speed": 6}}]})
    >>> result = score_rubric(rubric, draws=1000, seed=1)
    >>> result.decision.winner, [round(r.score, 2) for r in result.ranking]
    ('buy', [0.6, 0.4])
    >>> result.sensitivity.crossovers[0].winner_changes_at  # with min-max: buy scores w_cost, build 1 - w_cost
    0.5
    >>> result.decision.sentence
    'buy wins in 97% of 1,000 draws; build overtakes it if the cost weight falls below 0.5'
    """
    method = method or rubric.method
    normalization = normalization or rubric.normalization
    scorer(method)  # refuses an unknown method before any work
    check_normalization(normalization)
    draws = rubric.sensitivity.draws if draws is None else draws
    seed = rubric.sensitivity.seed if seed is None else seed
    if not 0 <= draws <= MAX_DRAWS:
        raise ConfigError(f"draws must be in [0, {MAX_DRAWS:,}], got {draws}")
    if seed < 0:
        raise ConfigError(f"seed must be >= 0, got {seed}")
    warnings: list[str] = []

    weights, ahp_result = rubric_weights(rubric)
    if ahp_result is not None and not ahp_result.consistent:
        message = (f"AHP consistency ratio {ahp_result.cr:.4f} > {CR_LIMIT:.2f}: the judgements contradict "
                   "each other; revise them")
        if strict:
            raise rubric.error(("weights_ahp",), message + " (--strict)")
        warnings.append(message)

    tco = tco_table(rubric.tco) if rubric.tco is not None else None
    if tco is not None:
        _check_npv(rubric, tco)
    low, mode, high = score_arrays(rubric, tco)
    cost = np.array([c.direction == "cost" for c in rubric.criteria])
    options, criteria = rubric.option_ids, rubric.criterion_ids

    if normalization == "sum":
        _check_sum_signs(rubric, low, cost)
    normalized = normalize(mode, cost, normalization)
    scores = scorer(method)(normalized, weights)
    _check_finite(rubric, normalized, scores)
    order = np.argsort(-scores, kind="stable")
    contributions = normalized * weights
    ranking = tuple(
        RankedOption(options[i], float(scores[i]), rank + 1,
                     {c: float(contributions[i, j]) for j, c in enumerate(criteria)},
                     {c: float(mode[i, j]) for j, c in enumerate(criteria)})
        for rank, i in enumerate(order))

    p_best = distribution = None
    if draws > 0:
        counts = monte_carlo(low, mode, high, cost, weights, method=method, normalization=normalization,
                             draws=draws, rng=np.random.default_rng(seed),
                             concentration=rubric.sensitivity.concentration)
        p_best = {o: float(counts[i, 0] / draws) for i, o in enumerate(options)}
        distribution = {o: [float(c / draws) for c in counts[i]] for i, o in enumerate(options)}
    sensitivity = SensitivityResult(
        draws, seed, rubric.sensitivity.concentration, p_best, distribution,
        tuple(crossovers(mode, cost, weights, criteria, options, method=method, normalization=normalization)),
        tuple(rank_reversals(mode, cost, weights, options, method=method, normalization=normalization)))
    if sensitivity.rank_reversals:
        removed = ", ".join(r.removed for r in sensitivity.rank_reversals)
        warnings.append(f"rank reversal: removing {removed} reorders the other options ({normalization} "
                        "normalisation makes scores depend on the option set)")

    winner, runner_up = ranking[0], ranking[1]
    labels = {c.id: c.label for c in rubric.criteria}
    margin = winner.score - runner_up.score
    tied = tied_with_winner(ranking)[1:]
    sentence = _sentence(winner.option, tied, p_best, draws, sensitivity.nearest_crossover(), labels, margin)
    decision = Decision(winner.option, runner_up.option, margin, sentence)
    return RubricResult(rubric.title, method, normalization, labels, dict(zip(criteria, weights.tolist(), strict=True)),
                        ahp_result, ranking, tco, sensitivity, decision, tuple(warnings))
