"""Two-arm quantile comparisons that pool both arms' evidence into one e-value per look.

If ``Q_x <= f Q_y`` (the null), some value ``w`` has ``Q_y`` at or above it and ``Q_x`` at or below ``f w``:
arm ``y`` has at most a Binomial(n, q) count strictly below ``w`` and arm ``x`` at least one at or below
``f w``. Each arm's beta-binomial mixture (``_quantile.py``), made one-sided, is then a supermartingale at
that ``w``, and so is their product, because the arms' samples are independent, and so is any average of
the three. The smallest value of that average over every ``w`` bounds it, and is the e-value. With the
product alone this is the A/B test of Howard & Ramdas (2022) as confseq implements it, made one-sided:
one level for the pair, where two separate confidence sequences would each need half.

Counts are known only at bucket edges, so ``w`` is taken one bucket at a time with the counts least in
favour of the alternative: arm ``y``'s count below the bucket's lower edge and arm ``x``'s count at the
first edge at or above ``f`` times the bucket's upper edge.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from mlplat.analysis._quantile import QUANTILE_N_OPT, _log_e, _mixture_prior, count_upto, quantile_rank_bound
from mlplat.analysis._sequential import check_level

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

__all__ = ["quantile_order_log_e", "quantile_ratio_bound"]

# An e-value past exp(LOG_E_CAP) gives p < 1e-12; the judge's p-values stop there.
LOG_E_CAP = math.log(1e12)
# The e-value averages the product of the arms' terms (this weight) with each arm's term alone (the rest,
# halved): any average of test supermartingales is one. The product wins when both arms carry evidence, a
# term alone when one arm's quantile is pinned (a large baseline with coarse buckets), where the product
# would pay that arm's mixture at its minimum, a few nats. Seeded comparisons in docs/canary.md.
PRODUCT_SHARE = 0.5
_ARGMIN_STEPS = 8


def _argmin(n: NDArray[np.float64], q: float, a: float, b: float) -> NDArray[np.float64]:
    """Per ``n``, the real ``k`` at which the (convex) log e-process is smallest: Newton on its slope."""
    import numpy as np
    from scipy.special import digamma, polygamma

    k = q * n
    for _ in range(_ARGMIN_STEPS):
        slope = digamma(a + k) - digamma(b + n - k) - math.log(q / (1 - q))
        k = np.clip(k - slope / (polygamma(1, a + k) + polygamma(1, b + n - k)), 0, n)
    return np.asarray(k)


class _Pair:
    """Both arms' cumulative histograms and, per look, arm ``y``'s candidate buckets for ``w``.

    Bucket ``j`` (0 to m) holds ``w`` in ``(edges[j-1], edges[j]]``; bucket m is above the last edge. Arm
    ``y``'s term is flat (at its minimum) below its own quantile, so only the last flat bucket can give the
    smallest average there (arm ``x``'s term does not grow with ``w``). Past the bucket where ``y``'s term
    alone lifts the average to ``level`` no bucket can be smallest either. So each look keeps the buckets
    in between, as one flat array (``rows`` the look, ``j`` the bucket, ``starts`` where each look's run
    begins).
    """

    def __init__(self, cum_x: NDArray[np.float64], cum_y: NDArray[np.float64], q: float, level: float,
                 alpha_opt: float, share: float) -> None:
        import numpy as np

        self.cum_x, self.q, self.share = cum_x, q, share
        self.single = (1 - share) / 2
        self.a, self.b = _mixture_prior(q, alpha_opt, QUANTILE_N_OPT)
        self.n_x, n_y = cum_x[:, -1], cum_y[:, -1]
        self.star_x = _argmin(self.n_x, q, self.a, self.b)
        self.floor_x = _log_e(self.star_x, self.n_x, q, self.a, self.b)
        star_y = _argmin(n_y, q, self.a, self.b)
        # y's term alone past level - log(single), or with x's smallest past level - log(share) - floor_x.
        with np.errstate(divide="ignore"):
            enough = np.minimum(level - np.log(self.single), level - np.log(share) - self.floor_x)
        top_y = quantile_rank_bound(n_y, q, np.exp(-enough), "high", alpha_opt=alpha_opt)
        first = count_upto(cum_y, star_y, side="right")
        last = np.maximum(count_upto(cum_y, top_y, side="right"), first)
        width = last - first + 1
        starts = np.concatenate([[0], np.cumsum(width)[:-1]])
        rows = np.repeat(np.arange(len(cum_y)), width)
        j = first[rows] + np.arange(len(rows)) - starts[rows]
        # Where y's bucket j is empty, bucket j + 1 has the same y term and an x term no larger: keep the
        # last bucket of each such run (sparse samples on fine bins leave most buckets empty).
        filled = np.append(cum_y, cum_y[:, -1:], axis=1)[rows, j] > np.where(j > 0, cum_y[rows, j - 1], 0.0)
        keep = filled | (j == last[rows])
        self.rows, self.j = rows[keep], j[keep]
        self.starts = np.concatenate([[0], np.cumsum(np.bincount(self.rows, minlength=len(cum_y)))[:-1]])
        k_y = np.where(self.j > 0, cum_y[self.rows, np.maximum(self.j - 1, 0)], 0.0)
        self.term_y = _log_e(np.maximum(k_y, star_y[self.rows]), n_y[self.rows], q, self.a, self.b)
        self.known = (self.n_x > 0) & (n_y > 0)

    def term_x(self, count: NDArray[np.float64]) -> NDArray[np.float64]:
        """Arm ``x``'s one-sided term at ``count`` samples at or below ``f w`` (per flat entry)."""
        import numpy as np

        rows = self.rows
        return _log_e(np.minimum(count, self.star_x[rows]), self.n_x[rows], self.q, self.a, self.b)

    def average(self, term_x: NDArray[np.float64]) -> NDArray[np.float64]:
        """Log of the e-value per flat entry: the weighted product of both terms and each term alone."""
        import numpy as np

        with np.errstate(divide="ignore"):
            both = math.log(self.share) + term_x + self.term_y if self.share > 0 else -np.inf
            alone = np.log(self.single) + np.logaddexp(term_x, self.term_y)
        return np.asarray(np.logaddexp(both, alone))

    def need(self, level: float) -> NDArray[np.float64]:
        """Per flat entry, the log term x must reach for the e-value to reach ``level`` (-inf: any will)."""
        import numpy as np

        e_y = np.exp(self.term_y)
        with np.errstate(divide="ignore", invalid="ignore"):
            rest = math.exp(level) - self.single * e_y
            return np.where(rest > 0, np.log(rest) - np.log(self.share * e_y + self.single), -np.inf)

    def per_look_min(self, values: NDArray[np.float64]) -> NDArray[np.float64]:
        import numpy as np

        return np.minimum.reduceat(values, self.starts)


def quantile_order_log_e(cum_x: NDArray[np.float64], cum_y: NDArray[np.float64], edges: NDArray[np.float64],
                         q: float, factor: float, *, floor: float, alpha_opt: float,
                         share: float = PRODUCT_SHARE) -> NDArray[np.float64]:
    """Per look, the log e-value against "the ``q`` quantile of ``x`` is at most ``factor`` times ``y``'s".

    ``cum_x[t, j]`` and ``cum_y[t, j]`` count each arm's samples up to look ``t`` at or below ``edges[j]``;
    ``floor`` is the first bucket's lower edge (no sample lies below it). Not a running maximum: the
    anytime p-value is :func:`~mlplat.analysis.p_from_log_e` of it. Capped at
    :data:`LOG_E_CAP`; 0 before either arm has a sample.

    Parameters
    ----------
    cum_x, cum_y : numpy.ndarray, shape (looks, m)
        Cumulative counts of each arm's samples at or below each edge, per look.
    edges : numpy.ndarray, shape (m,)
        Upper edges of the buckets, increasing, shared by both arms.
    q : float
        The quantile, in (0, 1).
    factor : float
        The null's ratio ``f``: the null is ``Q_x <= factor * Q_y``.
    floor : float
        Lower edge of the first bucket (no sample lies below it).
    alpha_opt : float
        Level that tunes each arm's mixture; it must not depend on the data.
    share : float
        Weight of the arms' product in the e-value, in [0, 1]; each arm's term alone gets half the rest
        (default 0.5).

    Returns
    -------
    numpy.ndarray, shape (looks,)
        Log e-value per look, at most ``log(1e12)``; 0 at looks where either arm has no sample yet.

    References
    ----------
    S. Howard and A. Ramdas (2022). Sequential estimation of quantiles with applications to A/B-testing
    and best-arm identification. Bernoulli 28(3).

    Examples
    --------
    >>> import numpy as np
    >>> edges = np.arange(1.0, 201.0)
    >>> low = np.cumsum(np.r_[np.full(100, 50.0), np.zeros(100)])[None, :]   # 5,000 samples on (0, 100]
    >>> high = np.cumsum(np.r_[np.zeros(6), np.full(100, 50.0), np.zeros(94)])[None, :]  # on (6, 106]
    >>> round(float(quantile_order_log_e(high, low, edges, 0.5, 1.0, floor=0.0, alpha_opt=0.01)[0]), 2)
    8.52
    >>> looks_x, looks_y = np.vstack([0 * high, high]), np.vstack([low, low])  # x has no sample at look 0
    >>> quantile_order_log_e(looks_x, looks_y, edges, 0.5, 1.0, floor=0.0, alpha_opt=0.01).round(2).tolist()
    [0.0, 8.52]
    """
    import numpy as np

    pair = _Pair(cum_x, cum_y, q, LOG_E_CAP, alpha_opt, share)
    # Arm x's count at or below f w, at its largest over the bucket: at f times the bucket's upper edge.
    upper = np.append(factor * edges, np.inf)
    at = np.searchsorted(edges, upper, side="left")
    cum_x_ext = np.concatenate([np.zeros((len(cum_x), 1)), cum_x, pair.n_x[:, None]], axis=1)
    column = np.where(upper < floor, 0, np.minimum(at, len(edges)) + 1)
    total = pair.average(pair.term_x(cum_x_ext[pair.rows, column[pair.j]]))
    return np.where(pair.known, np.minimum(pair.per_look_min(total), LOG_E_CAP), 0.0)


def quantile_ratio_bound(cum_x: NDArray[np.float64], cum_y: NDArray[np.float64], edges: NDArray[np.float64],
                         q: float, alpha: float, *, floor: float, alpha_opt: float,
                         share: float = PRODUCT_SHARE) -> NDArray[np.float64]:
    """Per look, the largest ``r`` for which :func:`quantile_order_log_e` with factor ``r`` reaches
    ``log(1 / alpha)`` by then: a lower confidence sequence for the ratio of the arms' ``q`` quantiles.

    The e-value falls as ``r`` grows, so the rejected ratios are those up to the bound. Per bucket of ``w``
    the largest rejected ``r`` is an edge ratio: ``x``'s term must stay at or above ``log(1/alpha)`` less
    ``y``'s, which holds while ``x``'s count at ``r w`` is below the rank bound for that level. -inf where
    nothing is rejected yet, or where a bucket's edge is not positive (a ratio says nothing there). Running
    maximum over looks. Paired with the same bound for ``y`` over ``x``, the two ends hold together with
    probability at least ``1 - alpha``: either end's miss makes the same average of the arms' two-sided
    mixtures at the true ratio reach ``1 / alpha``, and that average is a martingale.

    Parameters
    ----------
    cum_x, cum_y : numpy.ndarray, shape (looks, m)
        Cumulative counts of each arm's samples at or below each edge, per look; the bound is on ``Q_x / Q_y``.
    edges : numpy.ndarray, shape (m,)
        Upper edges of the buckets, increasing, shared by both arms.
    q : float
        The quantile, in (0, 1).
    alpha : float
        Miscoverage level in (0, 1).
    floor : float
        Lower edge of the first bucket (no sample lies below it).
    alpha_opt : float
        Level that tunes each arm's mixture; it must not depend on the data.
    share : float
        Weight of the arms' product in the e-value, as in :func:`quantile_order_log_e` (default 0.5).

    Returns
    -------
    numpy.ndarray, shape (looks,)
        Lower bound on the ratio of the ``q`` quantiles at each look, non-decreasing over the looks; -inf
        where no ratio is rejected yet (and before either arm has a sample).

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
    Two arms of 2,000 samples, spread evenly on (0, 50] and on (10, 60]: their p90s are 45 and 55.

    >>> import numpy as np
    >>> edges = np.arange(1.0, 101.0)
    >>> base = np.cumsum(np.r_[np.full(50, 40.0), np.zeros(50)])[None, :]
    >>> canary = np.cumsum(np.r_[np.zeros(10), np.full(50, 40.0), np.zeros(40)])[None, :]
    >>> round(float(quantile_ratio_bound(canary, base, edges, 0.9, 0.05, floor=0.0, alpha_opt=0.05)[0]), 4)
    1.1489
    """
    import numpy as np

    check_level(alpha)
    check_level(q, "q")
    level = math.log(1 / alpha)
    pair = _Pair(cum_x, cum_y, q, level, alpha_opt, share)
    rows, j = pair.rows, pair.j
    need = pair.need(level)
    open_ = need > pair.floor_x[rows] + 1e-12  # else x's term reaches `need` at any count: no limit here
    below = np.zeros(len(rows))
    if open_.any():
        below[open_] = quantile_rank_bound(pair.n_x[rows[open_]], q, np.exp(-need[open_]), "low",
                                           alpha_opt=alpha_opt)
    # Edges whose count is below the rank bound, per entry: r may reach the last such edge over w's edge.
    ends = np.append(edges, np.inf)
    upto = count_upto(pair.cum_x, below, side="left", rows=rows)
    top = ends[np.minimum(j, len(edges))]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(upto > 0, edges[np.maximum(upto - 1, 0)] / top,
                         np.where(below >= 1, floor / top, -np.inf))
    ratio = np.where(open_, ratio, np.inf)
    ratio = np.where((top > 0) & ~np.isnan(ratio), ratio, -np.inf)
    bound = np.where(pair.known, pair.per_look_min(ratio), -np.inf)
    return np.maximum.accumulate(bound)
