"""Monte Carlo, crossovers and rank reversals: exactness, agreement between methods, validity."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose
from scipy import stats
from tests.strategies import decision_matrices

from mlplat.rubric import Crossover, crossovers, monte_carlo, normalize, rank_reversals, topsis, triangular, wsm
from mlplat.rubric._sensitivity import _numeric_crossing, _rescaled, rank_counts, rank_shares

MATRIX = np.array([[2100, 9, 6, 1, 8, 9], [1650, 3, 9, 4, 7, 4], [1800, 5, 7, 2, 8, 7]], dtype=float)
COST = np.array([True, True, False, True, False, False])
WEIGHTS = np.array([0.25, 0.20, 0.15, 0.15, 0.15, 0.10])
CRITERIA = ["cost", "ttm", "parity", "lockin", "security", "enablement"]
OPTIONS = ["build", "buy", "hybrid"]
METHODS = {"wsm": wsm, "topsis": topsis}


def _winner(method: str, k: int, x: float) -> int:
    w = _rescaled(WEIGHTS, k, np.array([x]))[0]
    return int(np.argmax(METHODS[method](normalize(MATRIX, COST, "minmax"), w)))


@pytest.mark.parametrize("method", ["wsm", "topsis"])
def test_crossovers_change_the_winner(method: str) -> None:
    """Just inside a crossover the winner is unchanged; just past it, the reported new winner leads."""
    found = crossovers(MATRIX, COST, WEIGHTS, CRITERIA, OPTIONS, method=method, normalization="minmax")
    assert [c.criterion for c in found] == CRITERIA
    assert any(c.winner_changes_at is not None for c in found)
    for k, c in enumerate(found):
        if c.winner_changes_at is None:
            grid = np.linspace(0.001, 0.999, 999)
            assert all(_winner(method, k, x) == 2 for x in grid)
            continue
        step = 1e-6 if c.direction == "above" else -1e-6
        assert _winner(method, k, c.winner_changes_at - step) == 2  # hybrid, the winner
        assert OPTIONS[_winner(method, k, c.winner_changes_at + step)] == c.new_winner


def test_wsm_crossover_is_exact_and_agrees_with_search() -> None:
    """The closed-form WSM crossover equalises the two scores and matches the numeric search."""
    found = crossovers(MATRIX, COST, WEIGHTS, CRITERIA, OPTIONS, method="wsm", normalization="minmax")
    v = normalize(MATRIX, COST, "minmax")
    for k, c in enumerate(found):
        if c.winner_changes_at is None:
            continue
        s = wsm(v, _rescaled(WEIGHTS, k, np.array([c.winner_changes_at]))[0])
        assert_allclose(s[2], s[OPTIONS.index(c.new_winner or "")], atol=1e-12)
        numeric = _numeric_crossing(v, WEIGHTS, k, 2, "wsm")
        assert numeric is not None
        assert_allclose(numeric, c.winner_changes_at, atol=1e-9)
    # Hand computation: the TCO weight x where hybrid (0.6667x + b_h(1-x)) meets buy (x + b_b(1-x)).
    b_h, b_b = (0.66 - 0.25 * 2 / 3) / 0.75, (0.60 - 0.25) / 0.75
    assert_allclose(found[0].winner_changes_at, (b_h - b_b) / ((b_h - b_b) - (2 / 3 - 1)))
    assert found[0].new_winner == "buy" and found[0].direction == "above"


def test_no_crossover_when_one_option_dominates() -> None:
    """An option best on every criterion wins at every weight: every crossover is None."""
    x = np.array([[1.0, 5.0], [2.0, 3.0]])
    for method in ("wsm", "topsis"):
        found = crossovers(x, np.array([True, False]), np.array([0.5, 0.5]), ["a", "b"], ["p", "q"],
                           method=method, normalization="minmax")
        assert all(c.winner_changes_at is None and c.new_winner is None and c.direction is None for c in found)
        assert found[0].to_dict()["winner_changes_at"] is None


def test_rank_reversal_detected_with_minmax() -> None:
    """Removing build flips hybrid > buy under min-max (scores depend on the option set)."""
    found = rank_reversals(MATRIX, COST, WEIGHTS, OPTIONS, method="wsm", normalization="minmax")
    assert [r.to_dict() for r in found] == [{"removed": "build", "before": ["hybrid", "buy"],
                                             "after": ["buy", "hybrid"]}]


# Three options that TOPSIS scores 0.5 each, y's 1e-16 above the others: a tie within TIE (1e-12).
TIED = np.array([[0.7, 1.1], [1.1, 0.7], [1.7, 0.1]])
TIED_COST = np.array([False, False])
TIED_WEIGHTS = np.array([0.5, 0.5])


def test_a_tie_within_tolerance_has_no_crossover_at_the_current_weight() -> None:
    """Options that tie within TIE have no crossover "at the current weight": the tie is no winner to change."""
    found = crossovers(TIED, TIED_COST, TIED_WEIGHTS, ["c0", "c1"], ["x", "y", "z"], method="topsis",
                       normalization="minmax")
    assert [c.winner_changes_at for c in found] == [None, None]
    assert [c.new_winner for c in found] == [None, None]


def test_a_tie_within_tolerance_is_no_rank_reversal() -> None:
    """Removing an option that leaves two tied options tied (in another file order) is no rank reversal."""
    assert rank_reversals(TIED, TIED_COST, TIED_WEIGHTS, ["x", "y", "z"], method="topsis",
                          normalization="minmax") == []


def test_no_rank_reversal_for_two_options_or_dominance() -> None:
    """Two options cannot reverse; a strictly ordered, dominated set does not either."""
    assert rank_reversals(MATRIX[:2], COST, WEIGHTS, OPTIONS[:2], method="wsm", normalization="minmax") == []
    x = np.array([[3.0, 3.0], [2.0, 2.0], [1.0, 1.0]])
    assert rank_reversals(x, np.array([False, False]), np.array([0.5, 0.5]), ["a", "b", "c"],
                          method="topsis", normalization="vector") == []


def _mc(draws: int, seed: int, concentration: float = 100.0) -> np.ndarray:
    low, high = MATRIX * 0.9, MATRIX * 1.1
    return monte_carlo(low, MATRIX, high, COST, WEIGHTS, method="topsis", normalization="minmax", draws=draws,
                       rng=np.random.default_rng(seed), concentration=concentration)


def test_monte_carlo_reproducible_and_normalised() -> None:
    """The same seed gives the same counts; every option has one rank per draw; ranks are a permutation."""
    a, b = _mc(2_000, 3), _mc(2_000, 3)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, _mc(2_000, 4))
    assert np.all(a.sum(axis=1) == 2_000) and np.all(a.sum(axis=0) == 2_000)


def test_monte_carlo_without_spread_agrees_with_deterministic() -> None:
    """Fixed scores and a huge concentration: the deterministic winner wins (almost) every draw."""
    counts = monte_carlo(MATRIX, MATRIX, MATRIX, COST, WEIGHTS, method="wsm", normalization="minmax", draws=500,
                         rng=np.random.default_rng(0), concentration=1e7)
    assert counts[2, 0] == 500


def test_rank_counts_quick_path_matches_the_share_table() -> None:
    """Counting ranks by sorting (draws without a tie) and by the share table (draws with one) agree on
    seeded draws with many ties (small integer scores) and with none; ranks and options each sum to draws."""
    rng = np.random.default_rng(2)
    for m in range(2, 7):
        for scores in (rng.integers(0, 3, size=(200, m)).astype(float), rng.random((200, m))):
            counts = rank_counts(scores)
            assert_allclose(counts, rank_shares(scores).sum(axis=0), atol=1e-9)
            assert_allclose(counts.sum(axis=0), 200) and assert_allclose(counts.sum(axis=1), 200)


def test_zero_weight_criterion_stays_zero() -> None:
    """A criterion with weight 0 is left out of the Dirichlet draw instead of breaking it."""
    w = np.array([0.5, 0.5, 0.0, 0.0, 0.0, 0.0])
    counts = monte_carlo(MATRIX, MATRIX, MATRIX, COST, w, method="wsm", normalization="minmax", draws=100,
                         rng=np.random.default_rng(0))
    assert counts[1, 0] == 100  # buy is best on cost and ttm


def test_triangular_fixed_and_bounds() -> None:
    """A degenerate range gives the fixed value; draws stay inside [low, high]."""
    u = np.random.default_rng(0).random(1000)
    assert np.all(triangular(np.full(1000, 2.0), np.full(1000, 2.0), np.full(1000, 2.0), u) == 2.0)
    x = triangular(np.zeros(1000), np.full(1000, 0.2), np.ones(1000), u)
    assert x.min() >= 0 and x.max() <= 1


@pytest.mark.slow
def test_triangular_and_dirichlet_moments() -> None:
    """Triangular draws have mean (a + b + c) / 3; Dirichlet(c w) weights have mean w (seeded, 200k draws)."""
    rng = np.random.default_rng(11)
    n = 200_000
    x = triangular(np.full(n, 1.0), np.full(n, 2.0), np.full(n, 6.0), rng.random(n))
    assert stats.kstest(x, stats.triang(c=0.2, loc=1.0, scale=5.0).cdf).pvalue > 0.001
    assert abs(x.mean() - 3.0) < 4 * x.std() / np.sqrt(n)
    w = rng.dirichlet(100 * WEIGHTS, size=n)
    assert_allclose(w.mean(axis=0), WEIGHTS, atol=2e-3)


@pytest.mark.slow
def test_p_best_matches_known_probability() -> None:
    """Option A ~ Triangular(0, 0.5, 1) against B fixed at 0.5 on one criterion: P(A best) = 1/2.

    The Monte Carlo estimate over 40,000 draws must fall inside the 99.9% binomial interval around 0.5.
    """
    low, mode, high = np.array([[0.0], [0.5]]), np.array([[0.5], [0.5]]), np.array([[1.0], [0.5]])
    draws = 40_000
    counts = monte_carlo(low, mode, high, np.array([False]), np.array([1.0]), method="wsm",
                         normalization="max", draws=draws, rng=np.random.default_rng(5))
    lo, hi = stats.binom.interval(0.999, draws, 0.5)
    assert lo <= counts[0, 0] <= hi


@settings(max_examples=30, deadline=None)
@given(decision_matrices(), st.sampled_from(["wsm", "topsis"]))
def test_crossover_property(case: tuple[np.ndarray, np.ndarray, np.ndarray], method: str) -> None:
    """On random problems, the winner holds up to each reported crossover and the new winner leads past it."""
    x, cost, w = case[0][0], case[1], case[2][0]
    v = normalize(x, cost, "minmax")
    base = METHODS[method](v, w)
    ordered = np.sort(base)
    assume(ordered[-1] - ordered[-2] > 1e-6)  # a clear winner
    winner = int(np.argmax(base))
    names = [f"o{i}" for i in range(x.shape[0])]
    for k, c in enumerate(crossovers(x, cost, w, [f"c{j}" for j in range(x.shape[1])], names, method=method,
                                     normalization="minmax")):
        if c.winner_changes_at is None:
            continue
        assert 0 < c.winner_changes_at < 1
        halfway = 0.5 * (c.weight + c.winner_changes_at)
        assert int(np.argmax(METHODS[method](v, _rescaled(w, k, np.array([halfway]))[0]))) == winner
        step = 1e-7 if c.direction == "above" else -1e-7
        past = METHODS[method](v, _rescaled(w, k, np.array([c.winner_changes_at + step]))[0])
        assert past[names.index(c.new_winner or "")] >= past[winner] - 1e-9


def test_a_tied_lead_has_no_crossover_to_an_option_that_never_wins() -> None:
    """W = (10, 0) and I = (0, 10) tie at 0.5/0.5 and J = (4.5, 4.5) never leads (max(x, 1 - x) >= 0.5 >
    0.45); the winner's own line meeting J's at 0.45 was reported as 'J wins below 0.45'."""
    matrix = np.array([[10.0, 0.0], [0.0, 10.0], [4.5, 4.5]])
    found = crossovers(matrix, np.array([False, False]), np.array([0.5, 0.5]), ["c1", "c2"], ["W", "I", "J"],
                       method="wsm", normalization="minmax")
    assert [(c.winner_changes_at, c.new_winner) for c in found] == [(None, None), (None, None)]


def test_topsis_finds_a_crossing_past_the_last_grid_point() -> None:
    """A TOPSIS winner that changes only above 0.999 of one weight (and below 0.001 of the other) is found:
    the grid stopped at 0.999, and the crossing read as none (found against a fine scan and bisection)."""
    matrix = np.array([[4.6027087089224334, 2.394675222385979], [4.125567456970327, 2.3104976505040016],
                       [4.599640391152438, 6.290123943953862]])
    found = crossovers(matrix, np.array([False, False]), np.array([0.445817, 0.554183]), ["a", "b"],
                       ["o0", "o1", "o2"], method="topsis", normalization="vector")
    assert found[0].winner_changes_at == pytest.approx(0.999268, abs=1e-5) and found[0].new_winner == "o0"
    assert found[1].winner_changes_at == pytest.approx(1 - 0.999268, abs=1e-5)


def test_unknown_method_is_a_config_error() -> None:
    """A method that is neither wsm nor topsis is refused with its name (it was a bare KeyError), as are an
    unknown normalisation and a negative number of draws, even where there is nothing to score."""
    from mlplat.errors import ConfigError

    matrix, cost, weights = np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([False, False]), np.array([0.5, 0.5])
    with pytest.raises(ConfigError, match="method must be one of wsm, topsis, got 'ahp'"):
        monte_carlo(matrix, matrix, matrix, cost, weights, method="ahp", normalization="minmax", draws=10,
                    rng=np.random.default_rng(0))
    with pytest.raises(ConfigError, match="got 'ahp'"):
        crossovers(matrix, cost, weights, ["a", "b"], ["x", "y"], method="ahp", normalization="minmax")
    with pytest.raises(ConfigError, match="got 'ahp'"):
        rank_reversals(np.eye(3), np.array([False] * 3), np.full(3, 1 / 3), ["x", "y", "z"], method="ahp",
                       normalization="minmax")
    # Also where there is nothing to score: two options, no draws.
    with pytest.raises(ConfigError, match="got 'ahp'"):
        rank_reversals(matrix, cost, weights, ["x", "y"], method="ahp", normalization="minmax")
    with pytest.raises(ConfigError, match="got 'ahp'"):
        monte_carlo(matrix, matrix, matrix, cost, weights, method="ahp", normalization="minmax", draws=0,
                    rng=np.random.default_rng(0))
    # The normalisation and the number of draws too.
    with pytest.raises(ConfigError, match="normalization must be one of minmax, vector, sum, max, got 'bogus'"):
        rank_reversals(matrix, cost, weights, ["x", "y"], method="wsm", normalization="bogus")
    with pytest.raises(ConfigError, match="got 'bogus'"):
        monte_carlo(matrix, matrix, matrix, cost, weights, method="wsm", normalization="bogus", draws=0,
                    rng=np.random.default_rng(0))
    with pytest.raises(ConfigError, match="`draws` must be >= 0, got -1"):
        monte_carlo(matrix, matrix, matrix, cost, weights, method="wsm", normalization="minmax", draws=-1,
                    rng=np.random.default_rng(0))


def test_a_printed_crossover_is_exact_on_a_step_and_never_one() -> None:
    """Every crossing k/1000 prints at or past itself, to within one step, and never as 1: float error made
    0.07 read "0.0701" and 0.009 read "0.00899", and 0.9996 read "rises above 1" (found by a review pass)."""
    for k in range(1, 1000):
        at = k / 1000
        for weight in (0.0005, 0.9995):
            crossover = Crossover("c", weight, at, "x")
            shown = float(crossover.at_text)
            assert crossover.at_text == f"{at:g}", (at, crossover.direction, crossover.at_text)
            assert shown < 1
    assert Crossover("c", 0.5, 0.9996, "x").at_text == "0.9996"


def test_topsis_reports_no_crossing_where_two_scores_are_equal_to_the_last_bit() -> None:
    """Alpha and beta tie only at a speed weight of exactly 0; below about 1e-8 their TOPSIS scores are the
    same float, and argmax's first-listed pick read as a crossing at 6.45e-9 (found by the diff review)."""
    matrix = np.array([[5.0, 1.0, 4.0], [2.0, 2.0, 3.0]])
    cost = np.array([True, False, False])
    weights = np.array([0.475, 0.05, 0.475])
    found = crossovers(matrix, cost, weights, ["price", "speed", "safety"], ["alpha", "beta"], method="topsis",
                       normalization="minmax")
    assert found[1].winner_changes_at is None
    assert found[0].winner_changes_at is not None and found[2].winner_changes_at is not None
