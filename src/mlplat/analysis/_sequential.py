"""Anytime-valid tests and confidence sequences: rate ratios and sample-ratio mismatch, and the shared parts.

Means are in ``_mean_sequence.py``, quantiles in ``_quantile.py`` and ``_quantile_ab.py``.

Every function here is vectorised with numpy over time (and, for the simulator, over runs); none loops
per observation. scipy is imported inside the functions that need it so ``import mlplat.cli`` stays light.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from mlplat.errors import ConfigError

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import ArrayLike, NDArray

Direction = Literal["increase", "decrease", "either"]

__all__ = [
    "ConfidenceInterval",
    "RatePrior",
    "RateProcess",
    "dirichlet_multinomial_log_bf",
    "dirichlet_multinomial_test",
    "p_from_log_e",
    "rate_ratio_process",
]

# Even grid points of the mixture over the rate ratio; 241 points in logit space (plus the ladder below)
# keep the Dirichlet closed form within about 1e-5 relative at moderate counts (tests/analysis/
# test_sequential.py checks it).
GRID = 241
# The grid covers rate ratios from 1/1000 to 1000 at most: the Beta prior's tails reach ratios of 1e-9 for
# small shares, which spent most of the points on differences no canary needs and left the rest 0.1 apart.
MAX_LOG_RATIO = math.log(1e3)
# Extra points either side of the null ratio, each half as far as the one before, down to this distance in
# log ratio. A discrete mixture only detects a ratio that lies nearer some point than the null: with the
# grid's step alone, a 3% regression at a 5% share went unseen even over millions of events.
MIN_NULL_OFFSET = 1e-4
# Least reach of the grid past the null ratio on each side, in log rate ratio (a factor of 4).
NULL_REACH = math.log(4.0)
# The grid spans quantiles of Beta(k s, k (1 - s)) in logit space: for a share s nearer 0 or 1 than MIN_SHARE,
# or a concentration k above MAX_CONCENTRATION, they leave double precision and the weights become NaN.
MIN_SHARE = 1e-6
MAX_CONCENTRATION = 1e6
# Below it the Beta function of the prior's weights overflows (1e-310 raised an OverflowError in boost).
MIN_CONCENTRATION = 1e-6
# The SRM check's prior: past this the computation loses precision with real traffic (1e16 gave the
# bundled A/A export p = 7e-33), and such a prior is a point mass for any traffic anyway.
MAX_SRM_CONCENTRATION = 1e12


def dirichlet_multinomial_log_bf(counts: ArrayLike, shares: ArrayLike, concentration: float) -> NDArray[np.float64]:
    """Log Bayes factor of the Dirichlet-multinomial mixture against fixed multinomial shares.

    ``counts`` has the categories on its last axis (one row per look for cumulative counts). Under the
    null the counts are multinomial with probabilities ``shares``; the mixture puts a
    Dirichlet(``concentration * shares``) prior on them. The Bayes factor is a test martingale under the
    null, so ``min(1, 1 / max_t BF_t)`` is an anytime-valid p-value.

    Parameters
    ----------
    counts : array_like
        Non-negative counts, categories on the last axis.
    shares : array_like
        Null probabilities of the categories (sum to 1).
    concentration : float
        Dirichlet concentration ``k`` > 0: larger puts the prior closer to the null.

    Returns
    -------
    numpy.ndarray
        ``log BF`` with the last axis removed.

    References
    ----------
    M. Lindon and A. Malek (2022). Anytime-valid inference for multinomial count data. NeurIPS 2022.

    Examples
    --------
    >>> float(dirichlet_multinomial_log_bf([946, 92], [0.95, 0.05], 100.0))  # doctest: +ELLIPSIS
    10.91...
    """
    import numpy as np
    from scipy.special import gammaln

    # log BF = lnG(k) - sum lnG(a_i) + sum lnG(z_i) - lnG(Z) - sum x_i ln(theta_i), with a = k theta,
    # z = a + x, Z = k + n. Written directly, the large log-gammas cancel: at 1e13 requests the error was
    # 0.1, at 1e16 it read +38 (an SRM false alarm on a perfect split). With Stirling's formula for each
    # lnG and q = z / Z, the z ln z and z terms cancel exactly, leaving
    #   (m - 1)/2 (ln 2 pi - ln Z) + Z KL(q || theta) + sum a_i ln theta_i - 1/2 sum ln q_i
    #   + sum r(z_i) - r(Z),
    # where r is Stirling's remainder and KL = sum theta_i phi(q_i / theta_i - 1) with
    # phi(u) = (1 + u) ln(1 + u) - u >= 0, computed with log1p (scipy's kl_div cancels to eps * q, which
    # Z = 1e17 multiplies to 10).
    x = np.asarray(counts, dtype=float)
    theta = np.asarray(shares, dtype=float)
    a = concentration * theta
    z = a + x
    total = z.sum(axis=-1)
    q = z / total[..., None]
    u = q / theta - 1.0
    kl = (theta * ((1.0 + u) * np.log1p(u) - u)).sum(axis=-1)
    m = x.shape[-1]
    out = (gammaln(concentration) - gammaln(a).sum(axis=-1)
           + (m - 1) / 2 * (2 * _HALF_LOG_2PI - np.log(total)) + total * kl
           + (a * np.log(theta)).sum(axis=-1) - 0.5 * np.log(q).sum(axis=-1)
           + _stirling_remainder(z).sum(axis=-1) - _stirling_remainder(total))
    return np.asarray(out, dtype=float)


_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def _stirling_remainder(z: ArrayLike) -> NDArray[np.float64]:
    """``lnG(z) - ((z - 1/2) ln z - z + ln(2 pi) / 2)``: directly below 30, else its asymptotic series
    (the first omitted term is under 1e-16 there)."""
    import numpy as np
    from scipy.special import gammaln

    z = np.asarray(z, dtype=float)
    small = z < 30.0
    near = np.where(small, z, 30.0)
    direct = gammaln(near) - ((near - 0.5) * np.log(near) - near + _HALF_LOG_2PI)
    inv = 1.0 / np.where(small, 30.0, z)
    inv2 = inv * inv
    series = inv * (1 / 12 - inv2 * (1 / 360 - inv2 * (1 / 1260 - inv2 / 1680)))
    return np.asarray(np.where(small, direct, series), dtype=float)


def dirichlet_multinomial_test(counts: ArrayLike, shares: ArrayLike, concentration: float) -> NDArray[np.float64]:
    """Anytime-valid p-values ``min(1, 1 / max_s<=t BF_s)`` for cumulative counts, one per row.

    Parameters
    ----------
    counts : array_like
        Cumulative non-negative counts: categories on the last axis, looks on the axis before it (one row
        per look). A single row is one look.
    shares : array_like
        Null probabilities of the categories (sum to 1).
    concentration : float
        Dirichlet concentration ``k`` > 0: larger puts the prior closer to the null.

    Returns
    -------
    numpy.ndarray
        One p-value in [0, 1] per look (at least one dimensional), non-increasing over the looks: the
        running maximum of :func:`dirichlet_multinomial_log_bf` through :func:`p_from_log_e`.

    References
    ----------
    M. Lindon and A. Malek (2022). Anytime-valid inference for multinomial count data. NeurIPS 2022.

    Examples
    --------
    >>> p = dirichlet_multinomial_test([[946, 92]], [0.95, 0.05], 100.0)
    >>> print(f"{p[-1]:.7e}")
    1.8186749e-05

    A split on the null stays at 1; a drift to 40 of 340 in the second category is seen at once:

    >>> p = dirichlet_multinomial_test([[95, 5], [190, 10], [300, 40]], [0.95, 0.05], 100.0)
    >>> p[:2].tolist(), bool(p[2] < 0.001)
    ([1.0, 1.0], True)
    """
    import numpy as np

    return p_from_log_e(np.atleast_1d(dirichlet_multinomial_log_bf(counts, shares, concentration)))


@dataclass(frozen=True)
class RatePrior:
    """Mixing distribution over the canary's share of bad events, mapped to the rate ratio.

    The prior is Beta(``k s``, ``k (1 - s)``) on ``p = rho s / (rho s + 1 - s)``, the probability that a
    bad event comes from the canary when it gets share ``s`` of the requests. With constant shares the
    mixture is exactly the Dirichlet-multinomial mixture of Lindon & Malek (2022) with two categories.
    """

    share: float
    concentration: float

    def grid(self, null_ratio: float = 1.0, points: int = GRID) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Log rate ratios of the grid and log prior weights (normalised over the whole grid).

        The grid is uniform in logit ``p`` over the prior's mass (ratios 1/1000 to 1000 at most), plus a
        ladder of points that closes in on ``null_ratio`` from both sides, so that the test detects any
        ratio other than the null once there are enough events. The weights are the Beta density times
        each point's trapezoid width, so the ladder's points carry little prior mass. Any fixed discrete
        prior gives a valid mixture; this one stays within about 1e-5 of the closed form at moderate counts.
        """
        import numpy as np
        from scipy.special import expit, logit
        from scipy.stats import beta

        s = self.share
        a, b = self.concentration * s, self.concentration * (1 - s)
        # Cover the prior's mass in logit space; evenly spaced logits make the quadrature stable.
        lo, hi = beta.ppf([1e-9, 1 - 1e-9], a, b)
        lo, hi = max(lo, 1e-12), min(hi, 1 - 1e-12)
        centre = float(logit(s))
        null = centre + math.log(null_ratio)
        # A tight prior (a large concentration) can hold all its mass between the null and its mirror: with
        # no node past the null, the side a test mixes over was empty and its p-value stayed 1 whatever the
        # data (a 10x canary was promoted). The grid reaches NULL_REACH past the null on both sides.
        first = max(min(float(logit(lo)), null - NULL_REACH), centre - MAX_LOG_RATIO)
        last = min(max(float(logit(hi)), null + NULL_REACH), centre + MAX_LOG_RATIO)
        uniform = np.linspace(first, last, points)
        step = uniform[1] - uniform[0]
        levels = max(0, math.ceil(math.log2(step / MIN_NULL_OFFSET)))
        offsets = step * 0.5 ** np.arange(1, levels + 1)
        ladder = np.concatenate([null - offsets, null + offsets])
        nodes = np.union1d(uniform, ladder[(ladder > first) & (ladder < last)])
        p = expit(nodes)
        # The density over logit p (the same as over log rho), then trapezoid weights on the uneven nodes.
        log_w = self._log_density_at(p)
        gaps = np.diff(nodes)
        width = np.concatenate([gaps, [0.0]]) / 2 + np.concatenate([[0.0], gaps]) / 2
        log_w = log_w + np.log(width)
        # The weights are prior mass; the mass beyond the ratio limits goes to the end points.
        tails = beta.cdf(p[0], a, b), beta.sf(p[-1], a, b)
        for end, mass in zip((0, -1), tails, strict=True):
            if mass > 0:
                log_w[end] = np.logaddexp(log_w[end], math.log(mass))
        log_w -= _logsumexp(log_w)
        log_rho = np.log(p * (1 - s)) - np.log(s * (1 - p))
        return log_rho, log_w

    def log_density(self, log_rho: NDArray[np.float64]) -> NDArray[np.float64]:
        """Log density of the prior over ``log rho`` (the same as over ``logit p``: they differ by a shift)."""
        from scipy.special import expit, logit

        return self._log_density_at(expit(log_rho + logit(self.share)))

    def _log_density_at(self, p: NDArray[np.float64]) -> NDArray[np.float64]:
        """The Beta density of ``p`` times ``dp / dlogit p = p (1 - p)``, in logs."""
        import numpy as np
        from scipy.stats import beta

        k, s = self.concentration, self.share
        return np.asarray(beta.logpdf(p, k * s, k * (1 - s)) + np.log(p) + np.log1p(-p))


def _logsumexp(a: NDArray[np.float64], axis: int = -1) -> NDArray[np.float64]:
    import numpy as np
    from scipy.special import logsumexp

    return np.asarray(logsumexp(a, axis=axis))


@dataclass(frozen=True)
class RateProcess:
    """The rate-ratio e-process at every look: p-values and the running confidence sequence."""

    p_value: NDArray[np.float64]
    """Anytime-valid one-sided p-value for H0: the ratio is not beyond ``null_ratio`` on the bad side."""
    pass_p_value: NDArray[np.float64]
    """Anytime-valid p-value for H0: the ratio is beyond ``null_ratio`` on the bad side (non-inferiority)."""
    ci_low: NDArray[np.float64]
    ci_high: NDArray[np.float64]
    ratio: NDArray[np.float64]
    """Point estimate (cumulative canary events over expected) at each look."""
    log_e: NDArray[np.float64]
    """Log of the bad-side mixture e-value at each look (not maximised over time)."""


def rate_ratio_process(
    canary: ArrayLike,
    baseline: ArrayLike,
    canary_share: ArrayLike,
    *,
    null_ratio: float = 1.0,
    direction: Direction = "increase",
    prior_share: float,
    concentration: float,
    alpha: float = 0.05,
    grid_points: int = GRID,
    p_value_only: bool = False,
    sequence: bool = True,
) -> RateProcess:
    """Anytime-valid test of the rate ratio of bad events, conditional on the events in each interval.

    In interval ``t`` the canary sees ``canary[t]`` bad events and the baseline ``baseline[t]``; the canary
    got share ``canary_share[t]`` of the requests. Conditional on the interval's bad events, the canary's
    count is binomial with probability ``rho s / (rho s + 1 - s)``, whatever the load does over time. A
    mixture over ``rho`` (:class:`RatePrior`, restricted to the bad side of ``null_ratio``) gives an
    e-process for the one-sided null; the same mixture, divided by the likelihood at each candidate ratio,
    gives a time-uniform confidence sequence for ``rho`` (running intersection). Leading axes of the
    inputs (runs of a simulation) are kept; time is the last axis.

    Parameters
    ----------
    canary, baseline : array_like
        Bad events per interval in each arm (time on the last axis).
    canary_share : array_like
        The canary's share of requests in each interval, in (0, 1).
    null_ratio : float
        The ratio at the edge of acceptable: ``1 + tolerance`` for ``increase``, ``1 - tolerance`` for
        ``decrease``.
    direction : {"increase", "decrease", "either"}
        Which change is bad.
    prior_share, concentration : float
        The :class:`RatePrior`: its centre (the configured canary share) and its concentration ``k``.
    alpha : float
        Level of the confidence sequence.
    grid_points : int
        Even points of the prior's grid (a ladder around ``null_ratio`` is added). Any fixed grid gives a
        valid mixture; more points give a narrower confidence sequence with many events, at a cost
        proportional to the points.
    p_value_only : bool
        Compute only ``p_value`` (and ``log_e``, ``ratio``); ``pass_p_value`` is then 1 and the sequence NaN.
        The power simulation needs no more, and the other two are over 80% of the work at its shapes.
    sequence : bool
        Compute the confidence sequence (otherwise NaN). ``analyze`` takes its interval from
        :func:`rate_confidence_sequence`, which resolves narrow likelihoods, so its tests skip this one.

    Returns
    -------
    RateProcess

    References
    ----------
    M. Lindon and A. Malek (2022). Anytime-valid inference for multinomial count data. NeurIPS 2022.
    S. Howard, A. Ramdas, J. McAuliffe and J. Sekhon (2021). Time-uniform, nonparametric, nonasymptotic
    confidence sequences. Annals of Statistics 49(2).

    Examples
    --------
    >>> import numpy as np
    >>> res = rate_ratio_process([5, 6, 7, 9], [50, 48, 55, 52], [0.05] * 4, prior_share=0.05,
    ...                          concentration=50)
    >>> bool(res.p_value[-1] < 0.05), bool(res.ci_low[-1] > 1)
    (True, True)
    """
    import numpy as np

    check_level(alpha)
    c, b, s = rate_arrays(canary, baseline, canary_share)
    log_rho, log_w = RatePrior(prior_share, concentration).grid(null_ratio, grid_points)
    ll = grid_loglik(c, b, s, log_rho)
    log_null = np.log(null_ratio)
    if direction == "increase":
        bad, good = log_rho > log_null, log_rho < log_null
    elif direction == "decrease":
        bad, good = log_rho < log_null, log_rho > log_null
    else:
        bad = np.ones_like(log_rho, dtype=bool)
        good = np.zeros_like(log_rho, dtype=bool)
    ll0 = grid_loglik(c, b, s, np.array([log_null]))[..., 0]
    log_e = _mixture_log_e(ll, ll0, log_w, bad)
    p_value = p_from_log_e(log_e)
    # Non-inferiority: mixture on the good side against the boundary.
    pass_p = (p_from_log_e(_mixture_log_e(ll, ll0, log_w, good)) if good.any() and not p_value_only
              else np.ones_like(p_value))
    if sequence and not p_value_only:
        ci_low, ci_high = _sequence_ends(ll, log_w, log_rho, alpha)
    else:
        ci_low, ci_high = np.full_like(p_value, np.nan), np.full_like(p_value, np.nan)
    cum_c = np.cumsum(c, axis=-1)
    expected = np.cumsum((c + b) * s, axis=-1)
    # Mantel-Haenszel: each interval's c (1 - s) / (b s) estimates the ratio at its own share, so the sums do
    # too. The pooled rates (canary events over expected, over the same for the baseline) did not when the
    # share moved: 1% then 50% with a 2x canary read +58% beside an interval of [+98%, +104%].
    ratio_num = np.cumsum(c * (1 - s), axis=-1)
    ratio_den = np.cumsum(b * s, axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(expected > 0, (cum_c / np.where(expected > 0, expected, 1)), np.nan)
        # No baseline events but some canary events: the estimate is +inf (it fell back to canary events
        # over expected, 1 / share, which lay below the interval's own lower end).
        refined = np.where(ratio_den > 0, ratio_num / np.where(ratio_den > 0, ratio_den, 1),
                           np.where(ratio_num > 0, np.inf, ratio))
    return RateProcess(p_value=p_value, pass_p_value=pass_p, ci_low=ci_low, ci_high=ci_high, ratio=refined,
                       log_e=log_e)


def rate_arrays(canary: ArrayLike, baseline: ArrayLike,
                canary_share: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Bad events per interval in each arm as floats, and the canary's share broadcast to their shape."""
    import numpy as np

    c = np.asarray(canary, dtype=float)
    return c, np.asarray(baseline, dtype=float), np.broadcast_to(np.asarray(canary_share, dtype=float), c.shape)


def grid_loglik(c: NDArray[np.float64], b: NDArray[np.float64], s: NDArray[np.float64],
                log_rho: NDArray[np.float64]) -> NDArray[np.float64]:
    """Per-interval log-likelihood at each ratio of ``log_rho``, cumulated over time: shape (..., T, G)."""
    import numpy as np

    share = s[..., None]
    denom = np.log(np.exp(log_rho) * share + (1 - share))
    ll = c[..., None] * (log_rho + np.log(share) - denom) + b[..., None] * (np.log1p(-share) - denom)
    return np.asarray(np.cumsum(ll, axis=-2))


def _sequence_ends(ll: NDArray[np.float64], log_w: NDArray[np.float64], log_rho: NDArray[np.float64],
                   alpha: float) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Ends of the confidence sequence: ratios whose mixture e-value stays below 1/alpha, over time."""
    import numpy as np

    low, high = look_ends(ll, _logsumexp(ll + log_w, axis=-1), log_rho, alpha)
    return running_intersection(np.exp(low), np.exp(high))


def look_ends(ll: NDArray[np.float64], log_mix: NDArray[np.float64], log_rho: NDArray[np.float64],
              alpha: float) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Each look's set ``{rho : mixture / likelihood(rho) < 1/alpha}`` on the points ``log_rho``, in log rho.

    The log-likelihood is concave in log rho, so the set is an interval; its true ends lie between the
    outermost points inside and their excluded neighbours, which are returned (conservative; -inf or inf
    past the points). The set always holds the best point, as the mixture is at most its likelihood.
    """
    import numpy as np

    inside = (log_mix[..., None] - ll) < math.log(1 / alpha)
    size = log_rho.size
    lo_idx = np.argmax(inside, axis=-1) - 1
    hi_idx = size - np.argmax(inside[..., ::-1], axis=-1)
    low = np.where(lo_idx < 0, -np.inf, log_rho[np.clip(lo_idx, 0, size - 1)])
    high = np.where(hi_idx > size - 1, np.inf, log_rho[np.clip(hi_idx, 0, size - 1)])
    return low, high


class ConfidenceInterval(NamedTuple):
    """``low`` and ``high``: floats for one interval, or arrays (one bound per look) for a confidence sequence.

    A tuple, so ``low, high = interval`` unpacks as before.
    """

    low: Any
    high: Any


# An interval not computed (a stage that is not judged): immutable, so a safe dataclass default.
NO_INTERVAL = ConfidenceInterval(math.nan, math.nan)


def running_intersection(low: NDArray[np.float64],
                         high: NDArray[np.float64]) -> ConfidenceInterval:
    """The intersection of each look's interval with all before it (time on the last axis).

    An empty intersection is possible (with probability at most alpha); from then on each look's own
    interval is reported.
    """
    import numpy as np

    run_low = np.maximum.accumulate(low, axis=-1)
    run_high = np.minimum.accumulate(high, axis=-1)
    empty = run_low > run_high  # a single point (touching bucket edges) is an intersection, not an empty one
    return ConfidenceInterval(np.where(empty, low, run_low), np.where(empty, high, run_high))


def _mixture_log_e(ll: NDArray[np.float64], ll0: NDArray[np.float64], log_w: NDArray[np.float64],
                   side: NDArray[np.bool_]) -> NDArray[np.float64]:
    """Log e-value of the mixture restricted (and renormalised) to ``side`` of the grid."""
    w = log_w[side] - _logsumexp(log_w[side])
    return _logsumexp(ll[..., side] + w, axis=-1) - ll0


def p_from_log_e(log_e: ArrayLike) -> NDArray[np.float64]:
    """Anytime-valid p-values ``min(1, 1 / max_s<=t E_s)`` from log e-values (time on the last axis).

    By Ville's inequality an e-process exceeds ``1/alpha`` with probability at most ``alpha`` under the
    null, at any time, so the running maximum gives a p-value valid under continuous monitoring.

    Parameters
    ----------
    log_e : array_like
        Natural logs of the e-values, time on the last axis (leading axes, such as runs, are kept).

    Returns
    -------
    numpy.ndarray
        P-values ``min(1, exp(-running max of log_e))`` in [0, 1], the shape of ``log_e``, non-increasing
        along the last axis. An e-value at or below 1 (``log_e <= 0``) gives 1, however far below.

    References
    ----------
    J. Ville (1939). Étude critique de la notion de collectif.

    Examples
    --------
    >>> p_from_log_e([0.0, 3.0, 1.0]).round(4).tolist()
    [1.0, 0.0498, 0.0498]
    >>> p_from_log_e([-800.0, 0.5]).round(4).tolist()
    [1.0, 0.6065]
    """
    import numpy as np

    running = np.maximum.accumulate(np.asarray(log_e, dtype=float), axis=-1)
    # An e-value far below 1 overflows exp(-running) to inf; its p-value is 1 either way.
    with np.errstate(over="ignore"):
        return np.asarray(np.minimum(1.0, np.exp(-running)), dtype=float)


def check_level(value: ArrayLike, name: str = "alpha") -> None:
    """Raise :class:`~mlplat.errors.ConfigError` unless every ``value`` is in (0, 1) (an alpha or a level).

    Outside it the boundaries take logs of 0 or of negatives and came out as NaN, or as an interval of
    everything, without a word.
    """
    import numpy as np

    values = np.asarray(value, dtype=float)
    bad = ~((values > 0) & (values < 1))  # NaN fails both comparisons
    if bad.any():
        raise ConfigError(f"`{name}` must be in (0, 1), got {values[bad].flat[0]:g}")


def mixture_precision(alpha: float, t_opt: float) -> float:
    """Mixture precision that makes the normal-mixture boundary tightest near ``t_opt`` observations."""
    la = -2 * math.log(alpha)
    return (la + math.log(la + 1)) / t_opt
