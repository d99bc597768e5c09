"""Monte Carlo over weights and scores, weight crossovers, and the rank-reversal check.

Everything is vectorised over draws: a block of draws is one ``(d, m, n)`` array scored by the same
functions that score the single matrix.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from mlplat.errors import ConfigError
from mlplat.rubric._mcda import FloatArray, check_normalization, normalize, scorer

BoolArray = NDArray[np.bool_]

__all__ = ["TIE", "Crossover", "RankReversal", "crossovers", "monte_carlo", "rank_counts", "rank_reversals",
           "rank_shares", "triangular", "weight_text"]

_BLOCK = 20_000  # draws scored at once: bounds memory at ~ _BLOCK * m * n * 8 bytes per array
_RANK_CELLS = _BLOCK * 64  # ranking a block takes (draws, m, m) arrays: more than 8 options, fewer draws
_GRID = 1001  # TOPSIS crossovers: grid points in [0, 1] before bisection
_BISECT = 50
_EDGE = 1e-10  # roots this close to 0, 1 or the current weight are rounding, not crossings
_PAST = 1e-7  # how far past a crossing the new winner is read
# Scores closer than this are a tie: any order between them is only the order of the file. A score moves at
# most 2 per unit of one weight, so a margin over TIE puts the crossing over TIE / 2 > _EDGE away: it was
# 1e-12 against an _EDGE of 1e-9, and a margin of 2e-10 was a win whose crossing at 1e-10 was skipped
# ("no single weight change makes another option win").
TIE = 1e-9


def weight_text(weight: float | None) -> str:
    """A weight in a sentence: two decimals, or two significant figures below 0.01 (not "falls below 0.00");
    "-" for none.

    >>> weight_text(0.25), weight_text(0.00105), weight_text(None)
    ('0.25', '0.001', '-')
    """
    if weight is None:
        return "-"
    return f"{weight:.2f}" if abs(weight) >= 0.01 or weight == 0 else f"{weight:.2g}"


@dataclass(frozen=True)
class Crossover:
    """The weight of ``criterion`` at which the winner changes (other weights rescaled proportionally)."""

    criterion: str
    weight: float
    winner_changes_at: float | None
    new_winner: str | None

    @property
    def direction(self) -> str | None:
        if self.winner_changes_at is None:
            return None
        return "above" if self.winner_changes_at > self.weight else "below"

    @property
    def distance(self) -> float:
        return abs(self.winner_changes_at - self.weight) if self.winner_changes_at is not None else float("inf")

    @property
    def verb(self) -> str | None:
        """How the weight must move to change the winner: "rises above" or "falls below"; None if nothing does."""
        if self.direction is None:
            return None
        return "rises above" if self.direction == "above" else "falls below"

    @property
    def at_text(self) -> str:
        """``winner_changes_at`` to three significant figures, rounded past the crossing (down for "falls
        below", up for "rises above"), so any weight beyond the printed value changes the winner; "-" for none.

        Rounded to nearest, a crossing at 0.0696 read "below 0.07", and 0.0699 kept the winner.

        Within 1e-9 of a step it is taken as on it (0.07 is 700.0000000000001 ten-thousandths as a float, which
        read "0.0701"), and a weight is never printed as 1 (a crossing at 0.9996 read "rises above 1"): more
        digits are shown instead.

        >>> [Crossover("c", 0.15, at, "buy").at_text for at in (0.069614, 0.30012, 0.5, 0.07, 0.9996)]
        ['0.0696', '0.301', '0.5', '0.07', '0.9996']
        """
        at = self.winner_changes_at
        if at is None or at <= 0:
            return "-" if at is None else f"{at:g}"
        digits = 2 - math.floor(math.log10(at))
        while True:
            scaled = at * 10.0**digits
            scaled = math.floor(scaled + 1e-9) if self.direction == "below" else math.ceil(scaled - 1e-9)
            value = scaled / 10.0**digits
            if value < 1 or self.direction == "below" or digits >= 9:
                return f"{value:.{max(digits, 0)}f}".rstrip("0").rstrip(".")
            digits += 1

    def to_dict(self) -> dict[str, Any]:
        return {"criterion": self.criterion, "weight": self.weight, "winner_changes_at": self.winner_changes_at,
                "new_winner": self.new_winner, "direction": self.direction}


@dataclass(frozen=True)
class RankReversal:
    """Removing ``removed`` reordered the remaining options from ``before`` to ``after``."""

    removed: str
    before: tuple[str, ...]
    after: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"removed": self.removed, "before": list(self.before), "after": list(self.after)}


def score(matrix: FloatArray, cost: FloatArray, weights: FloatArray, method: str, normalization: str) -> FloatArray:
    """Scores of the options (last-but-one axis) for one matrix or a stack of draws."""
    return scorer(method)(normalize(matrix, cost, normalization), weights)


def triangular(low: FloatArray, mode: FloatArray, high: FloatArray, u: FloatArray) -> FloatArray:
    """Inverse CDF of the triangular distribution at uniforms ``u``; ``low == high`` gives the fixed value.

    Below ``u = (mode - low) / (high - low)`` the value is ``low + sqrt(u (high - low) (mode - low))``,
    above it ``high - sqrt((1 - u) (high - low) (high - mode))``.

    Parameters
    ----------
    low, mode, high : numpy.ndarray
        The distribution's bounds and mode, ``low <= mode <= high``; broadcast against ``u``.
    u : numpy.ndarray
        Uniform draws in [0, 1).

    Returns
    -------
    numpy.ndarray
        One draw per element of the broadcast inputs, in ``[low, high]``; ``mode`` where ``low == high``.

    Examples
    --------
    >>> import numpy as np
    >>> triangular(np.array([0.0]), np.array([0.5]), np.array([1.0]), np.array([0.5])).tolist()
    [0.5]
    >>> u = np.random.default_rng(0).random(100_000)
    >>> x = triangular(np.zeros_like(u), np.ones_like(u), np.full_like(u, 4.0), u)
    >>> round(float(x.mean()), 2)  # the mean is (low + mode + high) / 3
    1.67
    """
    span = high - low
    safe = np.where(span > 0, span, 1.0)
    cut = (mode - low) / safe
    rising = low + np.sqrt(u * span * (mode - low))
    falling = high - np.sqrt((1.0 - u) * span * (high - mode))
    return np.where(span > 0, np.where(u < cut, rising, falling), mode)


def monte_carlo(low: FloatArray, mode: FloatArray, high: FloatArray, cost: FloatArray, weights: FloatArray,
                *, method: str, normalization: str, draws: int, rng: np.random.Generator,
                concentration: float = 100.0) -> FloatArray:
    """Rank counts ``(m, m)``: how often option ``i`` ranked ``r``-th (0 = best) over ``draws`` draws.

    Weights are drawn from Dirichlet(``concentration * w``) (criteria with weight 0 stay at 0), scores from
    their triangular ranges; every draw is scored in one vectorised call per block of draws. Options that
    tie in a draw share the ranks they span equally (two tied for best get half a first and half a second
    place each), so a tie never goes to the option listed first.

    Parameters
    ----------
    low, mode, high : numpy.ndarray, shape (m, n)
        Each score's triangular range: options on rows, criteria on columns (equal for a fixed score).
    cost : numpy.ndarray of bool, shape (n,)
        True where lower is better.
    weights : numpy.ndarray, shape (n,)
        Criterion weights, summing to 1: the mean of the drawn weights.
    method : {"wsm", "topsis"}
        How a draw is scored.
    normalization : {"minmax", "vector", "sum", "max"}
        As in :func:`~mlplat.rubric.normalize`.
    draws : int
        Number of draws.
    rng : numpy.random.Generator
        Source of randomness (pass a seeded one).
    concentration : float
        Dirichlet concentration: larger keeps the drawn weights nearer ``weights`` (default 100).

    Returns
    -------
    numpy.ndarray, shape (m, m)
        ``counts[i, r]``: how many draws ranked option ``i`` in place ``r`` (0 = best); fractional where
        draws tie. Each row and each column sums to ``draws``.

    Raises
    ------
    ConfigError
        If ``method`` is not wsm or topsis, or :func:`~mlplat.rubric.normalize` refuses ``normalization``
        or the drawn scores.

    Examples
    --------
    >>> import numpy as np
    >>> low = np.array([[4.0, 5.0], [5.0, 4.0]])
    >>> high = np.array([[6.0, 5.0], [5.0, 6.0]])
    >>> mode = np.full((2, 2), 5.0)
    >>> counts = monte_carlo(low, mode, high, np.array([False, False]), np.array([0.5, 0.5]), method="wsm",
    ...                      normalization="minmax", draws=1000, rng=np.random.default_rng(0))
    >>> counts.sum(axis=1).tolist(), bool(abs(counts[0, 0] - 500) < 50)  # a symmetric case: about even
    ([1000.0, 1000.0], True)
    """
    scorer(method)  # refuses an unknown method or normalisation even with no draws to score
    check_normalization(normalization)
    if draws < 0:
        raise ConfigError(f"`draws` must be >= 0, got {draws}")
    m, n = mode.shape
    counts = np.zeros((m, m))
    positive = weights > 0
    done = 0
    block = min(_BLOCK, max(1, _RANK_CELLS // (m * m)))
    while done < draws:
        d = min(block, draws - done)
        w = np.zeros((d, n))
        w[:, positive] = rng.dirichlet(concentration * weights[positive], size=d)
        x = triangular(low, mode, high, rng.random((d, m, n)))
        counts += rank_counts(score(x, cost, w, method, normalization))
        done += d
    return counts


def rank_counts(scores: FloatArray) -> FloatArray:
    """``(m, m)``: :func:`rank_shares` summed over the draws (rows of ``scores``).

    Draws without a tie take the quick path (a rank is a position in the sort); only draws with a tie
    build the ``(m, m)`` share table.
    """
    m = scores.shape[1]
    order = np.argsort(-scores, axis=1, kind="stable")
    tied = (-np.diff(np.take_along_axis(scores, order, axis=1), axis=1) <= TIE).any(axis=1)
    ranks = np.argsort(order[~tied], axis=1, kind="stable")
    counts = np.bincount((np.arange(m) * m + ranks).ravel(), minlength=m * m).reshape(m, m).astype(float)
    return counts + rank_shares(scores[tied]).sum(axis=0)


def rank_shares(scores: FloatArray, tie: float = TIE) -> FloatArray:
    """``(d, m, m)``: the share of rank ``r`` (0 = best) that option ``i`` takes in each draw of ``scores``.

    An option with ``a`` options strictly above it and ``k`` within ``tie`` of it (itself included) takes
    ``1/k`` of each rank ``a .. a+k-1``.

    Examples
    --------
    >>> import numpy as np
    >>> rank_shares(np.array([[0.2, 0.9, 0.2]]))[0].tolist()
    [[0.0, 0.5, 0.5], [1.0, 0.0, 0.0], [0.0, 0.5, 0.5]]
    """
    gap = scores[:, None, :] - scores[:, :, None]  # [d, i, j] = s_j - s_i
    above = (gap > tie).sum(axis=2)
    tied = (np.abs(gap) <= tie).sum(axis=2)
    r = np.arange(scores.shape[1])
    spanned = (r >= above[..., None]) & (r < (above + tied)[..., None])
    return spanned / tied[..., None]


def _rescaled(weights: FloatArray, k: int, x: FloatArray) -> FloatArray:
    """Weights with ``w_k = x`` and the others scaled by ``(1 - x) / (1 - w_k)``; one row per ``x``."""
    rest = weights / (1.0 - weights[k])
    w = (1.0 - x)[:, None] * rest[None, :]
    w[:, k] = x
    return w


def _tied_with(v: FloatArray, weights: FloatArray, winner: int, method: str) -> BoolArray:
    """The winner and the options within :data:`TIE` of it: the decision calls them a tie, not a win."""
    base = scorer(method)(v, weights)
    return np.asarray(base[winner] - base <= TIE)


def _wsm_crossing(v: FloatArray, weights: FloatArray, k: int, winner: int) -> float | None:
    """Exact: each WSM score is linear in ``x = w_k``, ``S_i(x) = x a_i + (1 - x) b_i``.

    The candidates are where a line of the leading group (the winner and the options tied with it) meets a
    line of another option; the nearest one past which an option outside the group leads is the crossing.
    Lines within the group cross at the current weight, which is the tie the decision already reports. A
    candidate must be checked: with a tie, the winner's line can fall below another option's where a tied
    option still leads them both (a crossing to an option that never wins was reported).
    """
    a = v[:, k]
    b = (v @ weights - weights[k] * a) / (1.0 - weights[k])
    tied = _tied_with(v, weights, winner, "wsm")
    lead, rest = np.flatnonzero(tied), np.flatnonzero(~tied)
    da = a[lead][:, None] - a[rest][None, :]
    db = b[lead][:, None] - b[rest][None, :]
    denominator = db - da
    with np.errstate(divide="ignore", invalid="ignore"):
        roots = np.where(denominator != 0, db / denominator, np.nan).ravel()
    # A tie exactly at 0 or 1 is not a change: there is no weight beyond it where the other option leads.
    inside = np.isfinite(roots) & (roots > _EDGE) & (roots < 1.0 - _EDGE) & (np.abs(roots - weights[k]) > _EDGE)
    candidates = roots[inside]
    for x in candidates[np.argsort(np.abs(candidates - weights[k]), kind="stable")]:
        past = float(np.clip(x + (_PAST if x > weights[k] else -_PAST), 0.0, 1.0))
        if not tied[int(np.argmax(past * a + (1.0 - past) * b))]:
            return float(x)
    return None


def _numeric_crossing(v: FloatArray, weights: FloatArray, k: int, winner: int, method: str) -> float | None:
    """Grid over [0, 1] (vectorised), then bisection between the nearest change and its neighbour.

    ``v`` is the normalised matrix: the weights do not change it, so it is normalised once for every criterion.
    The winner changes where an option that does not tie with it now leads; as for WSM, a crossing within
    rounding of 0, 1 or the current weight is not a change.
    """
    tied = _tied_with(v, weights, winner, method)
    if tied.all():
        return None

    def overtaken(scores: FloatArray) -> BoolArray:
        # An option outside the leading group ahead of all of it by more than TIE. Where two options' scores
        # are equal to the last bit (a weight of 1e-9 changes nothing), argmax picks the first listed, which
        # read as a crossing at 6.45e-9 (found by the diff review).
        return np.asarray(scores[..., ~tied].max(axis=-1) - scores[..., tied].max(axis=-1) > TIE)

    # Open interval (a tie at 0 or 1 is not a change), with points packed towards both ends: a winner that
    # changes only past 0.999 (or before 0.001) fell between the last grid point and 1, and read as none.
    edges = np.geomspace(10 * _EDGE, 1.0 / (_GRID - 1), 20)
    grid = np.unique(np.concatenate([edges, np.linspace(0.0, 1.0, _GRID)[1:-1], 1.0 - edges]))
    changed = np.flatnonzero(overtaken(scorer(method)(v[None, :, :], _rescaled(weights, k, grid))))
    if changed.size == 0:
        return None
    target = changed[np.argmin(np.abs(grid[changed] - weights[k]))]
    inside, outside = float(np.clip(weights[k], 0, 1)), float(grid[target])
    for _ in range(_BISECT):
        middle = 0.5 * (inside + outside)
        if overtaken(scorer(method)(v, _rescaled(weights, k, np.array([middle]))[0])):
            outside = middle
        else:
            inside = middle
    at = 0.5 * (inside + outside)
    if at <= _EDGE or at >= 1.0 - _EDGE or abs(at - weights[k]) <= _EDGE:
        return None
    return at


def crossovers(matrix: FloatArray, cost: FloatArray, weights: FloatArray, criteria: list[str], options: list[str],
               *, method: str, normalization: str) -> list[Crossover]:
    """For each criterion, the weight where the winner changes when the other weights rescale proportionally.

    WSM is solved exactly (each score is linear in the weight); TOPSIS by a grid search refined by
    bisection. ``winner_changes_at`` is ``None`` when no weight in [0, 1] changes the winner.

    Parameters
    ----------
    matrix : numpy.ndarray, shape (m, n)
        Raw scores: options on rows, criteria on columns.
    cost : numpy.ndarray of bool, shape (n,)
        True where lower is better.
    weights : numpy.ndarray, shape (n,)
        Criterion weights, summing to 1.
    criteria, options : list of str
        Names of the columns and of the rows.
    method : {"wsm", "topsis"}
        How the options are scored.
    normalization : {"minmax", "vector", "sum", "max"}
        As in :func:`~mlplat.rubric.normalize`.

    Returns
    -------
    list of Crossover
        One per criterion, in the order of ``criteria``: its weight, the nearest weight at which an option
        not tied with the current winner leads (``None``: none does, or the weight is already 1), and that
        option.

    Raises
    ------
    ConfigError
        If ``method`` is not wsm or topsis, or :func:`~mlplat.rubric.normalize` refuses ``normalization``
        or the scores.

    Examples
    --------
    >>> import numpy as np
    >>> out = crossovers(np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([False, False]), np.array([0.6, 0.4]),
    ...                  ["speed", "price"], ["a", "b"], method="wsm", normalization="minmax")
    >>> [(c.criterion, c.winner_changes_at, c.new_winner, c.direction) for c in out]
    [('speed', 0.5, 'b', 'below'), ('price', 0.5, 'b', 'above')]
    """
    v = normalize(matrix, cost, normalization)
    base = scorer(method)(v, weights)
    winner = int(np.argmax(base))
    tied = _tied_with(v, weights, winner, method)
    out = []
    for k, criterion in enumerate(criteria):
        at: float | None = None
        if weights[k] < 1.0:
            if method == "wsm":
                at = _wsm_crossing(v, weights, k, winner)
            else:
                at = _numeric_crossing(v, weights, k, winner, method)
        new = None
        if at is not None:
            # Just past the crossing, in the direction away from the current weight.
            step = _PAST if at > weights[k] else -_PAST
            past = float(np.clip(at + step, 0.0, 1.0))
            after = scorer(method)(v, _rescaled(weights, k, np.array([past]))[0])
            new = options[int(np.argmax(np.where(tied, -np.inf, after)))]
        out.append(Crossover(criterion, float(weights[k]), at, new))
    return out


def rank_reversals(matrix: FloatArray, cost: FloatArray, weights: FloatArray, options: list[str],
                   *, method: str, normalization: str) -> list[RankReversal]:
    """Remove each option in turn and report when the others change order.

    Under every normalisation (``max`` too: x / max|x| depends on who holds the maximum) and with TOPSIS's
    ideal points an option's score depends on the other options, so removing an irrelevant one can reorder
    the rest.

    Parameters
    ----------
    matrix : numpy.ndarray, shape (m, n)
        Raw scores: options on rows, criteria on columns.
    cost : numpy.ndarray of bool, shape (n,)
        True where lower is better.
    weights : numpy.ndarray, shape (n,)
        Criterion weights.
    options : list of str
        Names of the rows.
    method : {"wsm", "topsis"}
        How the options are scored.
    normalization : {"minmax", "vector", "sum", "max"}
        As in :func:`~mlplat.rubric.normalize`.

    Returns
    -------
    list of RankReversal
        One per removed option after which two of the others swap order (more than a tie apart both
        times), in the order of ``options``: the order of the rest before and after. Empty with fewer
        than three options.

    Raises
    ------
    ConfigError
        If ``method`` is not wsm or topsis, or :func:`~mlplat.rubric.normalize` refuses ``normalization``
        or the scores.

    Examples
    --------
    >>> import numpy as np
    >>> m, cost, w = np.array([[10.0, 0.0], [0.0, 10.0], [6.0, 3.0]]), np.array([False, False]), np.array([0.5, 0.5])
    >>> [(r.removed, r.after) for r in rank_reversals(m, cost, w, ["a", "b", "c"], method="topsis",
    ...                                                  normalization="vector")]
    [('a', ('c', 'b')), ('b', ('c', 'a'))]
    >>> rank_reversals(m, cost, w, ["a", "b", "c"], method="wsm", normalization="minmax")
    []
    """
    scorer(method)  # refuses an unknown method or normalisation even where there is nothing to score
    check_normalization(normalization)
    m = len(options)
    if m < 3:
        return []
    full = score(matrix, cost, weights, method, normalization)
    order = [options[i] for i in np.argsort(-full, kind="stable")]
    out = []
    for removed in range(m):
        keep = [i for i in range(m) if i != removed]
        s = score(matrix[keep], cost, weights, method, normalization)
        if _swapped(full[keep], s):
            after = tuple(options[keep[i]] for i in np.argsort(-s, kind="stable"))
            before = tuple(o for o in order if o != options[removed])
            out.append(RankReversal(options[removed], before, after))
    return out


def _swapped(before: FloatArray, after: FloatArray) -> bool:
    """Whether some option that scored more than :data:`TIE` above another now scores more than TIE below it.

    Options within TIE of each other tie on either side, and a tie is no order to reverse.
    """
    above = before[:, None] - before[None, :] > TIE  # [i, j]: i led j
    below = after[None, :] - after[:, None] > TIE  # [i, j]: j now leads i
    return bool((above & below).any())
