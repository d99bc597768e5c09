"""Anytime-valid confidence sequences for quantiles, from histograms of each arm's samples.

For one quantile ``q`` the count of samples at or below it grows like a Binomial(n, q) sum; a beta-binomial
mixture over that sum's success probability gives a time-uniform bound on the count whose width follows
``sqrt(q (1 - q) n)`` (Howard & Ramdas 2022, the fixed-quantile sequence; the mixture of Howard et al.
2021). ``quantile_epsilon`` is the other kind: one band for the whole CDF, valid for every quantile at
once, and so much wider in the tails.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Literal

from mlplat.analysis._sequential import ConfidenceInterval, check_level, mixture_precision, running_intersection

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import ArrayLike, NDArray

__all__ = ["quantile_confidence_sequence", "quantile_epsilon", "quantile_log_e", "quantile_rank_bound"]

# Samples per arm at which the quantile sequences are tightest (the mixture's tuning; any value gives a
# valid sequence, and the width grows only slowly away from it). Canary exports hold thousands to
# millions of samples per arm; 10,000 sits between.
QUANTILE_N_OPT = 10_000
# Newton steps for a rank's edge: from a start within a few half-widths of the edge, six land on the exact
# integer edge in every case tests/analysis/test_quantile.py checks (1 to 1e9 samples); an early stop
# only widens the bound.
_NEWTON_STEPS = 6


def _mixture_prior(q: float, alpha_opt: float, n_opt: float) -> tuple[float, float]:
    """Beta prior ``(a, b)`` over the share of samples at or below the quantile, centred on ``q``.

    The normal-mixture variance that makes the boundary tightest at ``n_opt`` samples (Howard et al. 2021),
    less the Bernoulli variance, sets the prior's strength ``r``; the prior is Beta(r / (1 - q), r / q).
    """
    variance = q * (1 - q)
    r = max(1 / mixture_precision(alpha_opt, n_opt * variance) - variance, 1e-3 * variance)
    return r / (1 - q), r / q


def quantile_log_e(k: ArrayLike, n: ArrayLike, q: float, *, alpha_opt: float,
                   n_opt: float = QUANTILE_N_OPT) -> NDArray[np.float64]:
    """Log of the beta-binomial mixture e-process at ``k`` of ``n`` samples at or below the ``q`` quantile.

    Under the null that the true quantile's count is Binomial(n, q), this is a nonnegative martingale in
    ``n`` starting at 1, so by Ville's inequality it passes ``1 / alpha`` at some ``n`` with probability at
    most ``alpha``. It is convex in ``k`` and at most 0 at ``k = q n``.

    References
    ----------
    S. Howard, A. Ramdas, J. McAuliffe and J. Sekhon (2021). Time-uniform, nonparametric, nonasymptotic
    confidence sequences. Annals of Statistics 49(2), section 3.4 (beta-binomial mixture).
    S. Howard and A. Ramdas (2022). Sequential estimation of quantiles with applications to A/B-testing
    and best-arm identification. Bernoulli 28(3).

    Examples
    --------
    >>> round(float(quantile_log_e(500, 1000, 0.5, alpha_opt=0.05)), 4)
    -0.2924
    """
    import numpy as np

    a, b = _mixture_prior(q, alpha_opt, n_opt)
    return _log_e(np.asarray(k, dtype=float), np.asarray(n, dtype=float), q, a, b)


def _log_e(k: NDArray[np.float64], n: NDArray[np.float64], q: float, a: float, b: float) -> NDArray[np.float64]:
    """:func:`quantile_log_e` with the prior's ``(a, b)`` given (the rank search calls it a dozen times)."""
    import numpy as np
    from scipy.special import betaln

    return np.asarray(betaln(a + k, b + n - k) - betaln(a, b) - k * math.log(q) - (n - k) * math.log1p(-q))


def quantile_rank_bound(n: ArrayLike, q: float, alpha: ArrayLike, side: Literal["low", "high"], *,
                        alpha_opt: float, n_opt: float = QUANTILE_N_OPT) -> NDArray[np.float64]:
    """The fewest (``low``) or most (``high``) of ``n`` samples that may lie at or below the ``q`` quantile.

    Uniformly over ``n``, with probability at least ``1 - alpha``, the count lies between the two: they
    are the integers nearest the edges of ``{k : quantile_log_e(k, n) < log(1 / alpha)}``, which holds
    ``q n``. ``low`` is 0 and ``high`` is ``n`` where the set reaches them. ``alpha`` may vary per element
    (the judge bisects on it); ``alpha_opt`` tunes the mixture and must not depend on the data.

    The edge is found by Newton's method from outside the set: the log e-process is convex in ``k``, so
    each step stays outside and closes in on the edge, and stopping early only widens the bound.
    """
    import numpy as np
    from scipy.special import digamma

    n_ = np.asarray(n, dtype=float)
    level = np.log(1 / np.asarray(alpha, dtype=float))
    n_, level = np.broadcast_arrays(n_, level)
    a, b = _mixture_prior(q, alpha_opt, n_opt)
    sign = -1.0 if side == "low" else 1.0
    end = np.zeros_like(n_) if side == "low" else n_.copy()

    def excess(k: NDArray[np.float64]) -> NDArray[np.float64]:
        return _log_e(k, n_, q, a, b) - level

    # Start outside the set and near its edge: the nearest of 2, 4, 8 and 16 times the normal
    # approximation's half-width that lies outside (the mixture's width grows like sqrt(n log n) past
    # n_opt); else the end itself. All four and the end are tried in one evaluation.
    spread = np.sqrt(2 * np.maximum(level, 0.0) * q * (1 - q) * n_ + 1)
    factors = np.array([2.0, 4.0, 8.0, 16.0])[:, None]
    trials = np.concatenate([np.clip(q * n_.ravel() + sign * factors * spread.ravel(), 0, n_.ravel()),
                             end.ravel()[None, :]])
    out = _log_e(trials, n_.ravel(), q, a, b) > level.ravel()
    first = np.argmax(out, axis=0)
    k = np.where(out.any(axis=0), trials[first, np.arange(trials.shape[1])], end.ravel()).reshape(n_.shape)
    reaches = ~out[-1].reshape(n_.shape)  # the set holds the end itself: no bound on that side
    for _ in range(_NEWTON_STEPS):
        slope = digamma(a + k) - digamma(b + n_ - k) - math.log(q / (1 - q))
        with np.errstate(divide="ignore", invalid="ignore"):
            step = np.where(slope != 0, excess(k) / slope, 0.0)
        k = np.clip(k - step, 0, n_)
    # The integers strictly inside (at the edge itself the e-process equals 1 / alpha).
    bound = np.clip(np.floor(k) + 1 if side == "low" else np.ceil(k) - 1, 0, n_)
    return np.where(reaches, end, bound)


def quantile_epsilon(n: ArrayLike, alpha: ArrayLike) -> NDArray[np.float64]:
    """Half-width, in probability, of the time-uniform band around the empirical CDF after ``n`` samples.

    Uniformly over all sample sizes and all quantiles, with probability at least ``1 - alpha``,
    ``|F_n(x) - F(x)| <= eps_n`` where ``eps_n = 0.85 sqrt((log log(e n) + 0.8 log(1612 / alpha)) / n)``.

    Parameters
    ----------
    n : array_like
        Samples seen; values below 1 count as 1.
    alpha : array_like
        Miscoverage level(s) in (0, 1), broadcast against ``n``.

    Returns
    -------
    numpy.ndarray
        ``eps_n`` per element of the broadcast inputs (0-d for scalars). It falls with ``n`` and can pass 1
        for a handful of samples (no information).

    Raises
    ------
    ConfigError
        If any ``alpha`` is not in (0, 1).

    References
    ----------
    S. Howard and A. Ramdas (2022). Sequential estimation of quantiles with applications to A/B-testing
    and best-arm identification. Bernoulli 28(3), Theorem 2.

    Examples
    --------
    >>> round(float(quantile_epsilon(10_000, 0.05)), 4)
    0.0277
    >>> quantile_epsilon([100, 400], 0.05).round(3).tolist()  # four times the samples, about half the width
    [0.269, 0.136]
    """
    import numpy as np

    check_level(alpha)
    m = np.maximum(np.asarray(n, dtype=float), 1.0)
    a = np.asarray(alpha, dtype=float)
    return np.asarray(0.85 * np.sqrt((np.log(np.log(np.e * m)) + 0.8 * np.log(1612 / a)) / m))


def quantile_confidence_sequence(
    edges: ArrayLike, cum_counts: ArrayLike, q: float, alpha: float, *, floor: float = -math.inf,
    n_opt: float = QUANTILE_N_OPT,
) -> ConfidenceInterval:
    """Time-uniform confidence sequence for the ``q`` quantile from cumulative histograms.

    ``edges`` are the upper bounds of the buckets (increasing); ``cum_counts[t, j]`` is the number of
    samples up to look ``t`` that are ``<= edges[j]`` (cumulative over buckets and time). With ``k_lo`` and
    ``k_hi`` from :func:`quantile_rank_bound`, the quantile lies at or above the ``k_lo``-th smallest sample
    and at or below the ``(k_hi + 1)``-th. A sample in bucket ``j`` lies in ``(edges[j-1], edges[j]]``, so
    the lower end takes its bucket's lower edge and the upper end its upper edge: coarse buckets widen the
    interval, never make it invalid. Ties are covered too: drawing each sample from one uniform, the count
    at or below the quantile is at least a Binomial(n, q) count and the count strictly below it at most the
    same count. ``floor`` is the first bucket's lower edge: no sample lies below it (default: nothing is
    known). The ends are intersected over looks; a look where the intersection is empty reports its own
    interval, so ``low <= high`` always.

    Parameters
    ----------
    edges : array_like, shape (m,)
        Upper edges of the buckets, increasing.
    cum_counts : array_like, shape (looks, m) or (m,)
        Samples up to each look at or below each edge (a single row is one look).
    q : float
        The quantile, in (0, 1).
    alpha : float
        Miscoverage level in (0, 1), for all looks together. It also tunes the mixture.
    floor : float
        Lower edge of the first bucket (default -inf: unknown).
    n_opt : float
        Samples at which the sequence is tightest (default 10,000).

    Returns
    -------
    ConfidenceInterval
        ``low`` and ``high``, arrays of shape (looks,) in the units of ``edges``. ``low`` is -inf where the
        lower rank bound is 0, ``high`` is inf where the upper rank is past the samples seen, and both are
        infinite before the first sample.

    Raises
    ------
    ConfigError
        If ``alpha`` or ``q`` is not in (0, 1).

    References
    ----------
    S. Howard and A. Ramdas (2022). Sequential estimation of quantiles with applications to A/B-testing
    and best-arm identification. Bernoulli 28(3).

    Examples
    --------
    >>> import numpy as np
    >>> edges = np.arange(1.0, 101.0)
    >>> cum = np.cumsum(np.full((1, 100), 100.0), axis=1)   # 10,000 samples spread evenly on (0, 100]
    >>> lo, hi = quantile_confidence_sequence(edges, cum, 0.5, 0.05)
    >>> float(lo[0]), float(hi[0])
    (48.0, 52.0)

    With 100 samples the p99 has a lower end but no upper one yet:

    >>> lo, hi = quantile_confidence_sequence(edges, np.cumsum(np.ones((1, 100)), axis=1), 0.99, 0.05)
    >>> float(lo[0]), float(hi[0])
    (88.0, inf)
    """
    import numpy as np

    check_level(alpha)
    check_level(q, "q")
    e = np.asarray(edges, dtype=float)
    cum = np.atleast_2d(np.asarray(cum_counts, dtype=float))
    n = cum[:, -1]
    low = edge_at_rank(cum, e, floor, quantile_rank_bound(n, q, alpha, "low", alpha_opt=alpha, n_opt=n_opt),
                       side="low")
    high = edge_at_rank(cum, e, floor,
                        quantile_rank_bound(n, q, alpha, "high", alpha_opt=alpha, n_opt=n_opt) + 1, side="high")
    # Before the first sample nothing is known. Intersected over looks; an empty intersection (a quantile
    # that moved, or the alpha chance) reports each look's own interval, where accumulating alone left low
    # above high.
    return running_intersection(np.where(n > 0, low, -np.inf), np.where(n > 0, high, np.inf))


def edge_at_rank(cum: NDArray[np.float64], edges: NDArray[np.float64], floor: float, rank: NDArray[np.float64],
                 *, side: Literal["low", "high"]) -> NDArray[np.float64]:
    """Per row, the bucket edge that bounds the ``rank``-th smallest sample: the lower edge of its bucket
    (``floor`` for the first; -inf for a rank of 0 or less) or the upper edge (inf past the last sample)."""
    import numpy as np

    idx = count_upto(cum, rank - 1e-9, side="left")
    idx_c = np.minimum(idx, len(edges) - 1)
    if side == "low":
        lower = np.concatenate([[floor], edges[:-1]])
        return np.where(rank <= 0, -np.inf, lower[idx_c])
    return np.where((rank > cum[:, -1]) | (idx >= len(edges)), np.inf, edges[idx_c])


def count_upto(cum: NDArray[np.float64], limit: NDArray[np.float64], *, side: Literal["left", "right"],
               rows: NDArray[np.intp] | None = None) -> NDArray[np.intp]:
    """How many edges of row ``rows[i]`` (row ``i`` if not given) have a cumulative count below
    ``limit[i]`` (``left``) or at most it (``right``); each row of ``cum`` is nondecreasing.

    One limit per row is a comparison over the whole array. With ``rows`` (many limits per row, sorted by
    row) each row's limits are found by bisection, one row at a time: a whole-array comparison per limit
    would take a row's worth of memory for each.
    """
    import numpy as np

    limit = np.asarray(limit, dtype=float)
    if rows is None:
        below = cum < limit[:, None] if side == "left" else cum <= limit[:, None]
        return np.asarray(below.sum(axis=1))
    out = np.empty(len(rows), dtype=np.intp)
    bounds = np.searchsorted(rows, np.arange(len(cum) + 1))
    for row in np.flatnonzero(np.diff(bounds)):
        part = slice(bounds[row], bounds[row + 1])
        out[part] = np.searchsorted(cum[row], limit[part], side=side)
    return out
