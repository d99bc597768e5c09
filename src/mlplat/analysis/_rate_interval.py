"""The rate ratio's reported confidence sequence: the rate test's Beta prior, resolved wherever it matters.

On a fixed grid the set narrows to about the grid's step around the estimate: with millions of bad
events the likelihood is far narrower than any grid that fits in memory for every look. So the mixture
is first summed on the grid, and each look whose likelihood the grid does not resolve is summed again on
fine points around its peak: the same continuous prior, integrated where its mass is.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from mlplat.analysis._sequential import (
    GRID,
    ConfidenceInterval,
    RatePrior,
    check_level,
    grid_loglik,
    look_ends,
    rate_arrays,
    running_intersection,
)

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import ArrayLike, NDArray

__all__ = ["CS_CELLS", "CS_GRID", "cs_grid_points", "rate_confidence_sequence"]

# Even points of the grid that finds each look's peak and sums the mixture where the likelihood is wide.
# 961 (four times the test's 241) keep the fine windows below short: the fewer points, the more looks
# need one.
CS_GRID = 961
# Most looks x grid points one confidence sequence holds (about 160 MB per array of them).
CS_CELLS = 20_000_000
# Each look's window holds the ratios whose log-likelihood is within this of its peak. The mixture beyond
# it is under e^-60 of the peak's and is left out: leaving mass out only widens the set. The set's ends
# lie inside unless the prior's density at the estimate is below about e^-40; then the look keeps the
# grid's ends (conservative too).
WINDOW_NATS = 60.0
# A look is summed again when its window spans fewer even steps than this: a window holds about 22
# standard deviations of the likelihood, so the grid's step is then over a quarter of one, and the
# reported ends (the excluded neighbours) would be up to a step wide of the set.
MIN_STEPS = 88
# Fine points across the narrowest window of a block of looks: steps of about 1/8 standard deviation.
# The trapezoid rule is then exact to far below double precision on a peak this smooth.
FINE_POINTS = 176


def cs_grid_points(looks: int) -> int:
    """CS_GRID points, fewer (down to the test's 241) when looks x points would pass CS_CELLS."""
    return max(GRID, min(CS_GRID, CS_CELLS // max(looks, 1)))


def rate_confidence_sequence(canary: ArrayLike, baseline: ArrayLike, canary_share: ArrayLike, *,
                             prior_share: float, concentration: float, alpha: float = 0.05,
                             grid_points: int = CS_GRID) -> ConfidenceInterval:
    """Time-uniform confidence sequence for the rate ratio, ``(low, high)`` per look.

    The set is ``{rho0 : M_t(rho0) < 1/alpha}``, intersected over looks, where ``M_t`` is the mixture of
    :func:`rate_ratio_process` (Beta prior over the canary's share of bad events) divided by the
    likelihood at ``rho0``. Every ``rho0`` may be tested, not only grid points, and the mixture is the
    prior's integral. It is summed on ``grid_points`` even points and, at looks where the likelihood is
    narrower than a quarter of their step, again on fine points around its peak, so the set keeps
    narrowing as events accrue instead of stopping at the grid's step. With a constant share it matches
    the Beta-binomial closed form to within an eighth of a standard deviation, outward.

    Parameters
    ----------
    canary, baseline : array_like
        Bad events per interval in each arm (time on the last axis; leading axes, such as runs, are kept).
    canary_share : array_like
        The canary's share of requests in each interval, in (0, 1); broadcast to the shape of ``canary``.
    prior_share, concentration : float
        The :class:`~mlplat.analysis.RatePrior`: its centre (the configured canary share) and its
        concentration ``k``.
    alpha : float
        Miscoverage level in (0, 1), for all looks together (default 0.05).
    grid_points : int
        Even points of the coarse grid (default 961).

    Returns
    -------
    ConfidenceInterval
        ``low`` and ``high`` of the rate ratio (the canary's bad events per request over the baseline's),
        one pair per look, in the shape of ``canary``. Each look is intersected with the looks before it
        (when that would leave nothing, the look's own set is kept). An end the data do not bound yet is 0
        or inf.

    Raises
    ------
    ConfigError
        If ``alpha`` is not in (0, 1).

    References
    ----------
    M. Lindon and A. Malek (2022). Anytime-valid inference for multinomial count data. NeurIPS 2022.
    S. Howard, A. Ramdas, J. McAuliffe and J. Sekhon (2021). Time-uniform, nonparametric, nonasymptotic
    confidence sequences. Annals of Statistics 49(2).

    Examples
    --------
    >>> low, high = rate_confidence_sequence([5, 6, 7, 9], [50, 48, 55, 52], [0.05] * 4, prior_share=0.05,
    ...                                      concentration=50)
    >>> bool(1 < low[-1] < high[-1])
    True
    >>> low, high = rate_confidence_sequence([0, 5], [0, 50], [0.05] * 2, prior_share=0.05, concentration=50)
    >>> float(low[0]), float(high[0])  # no events yet: no bound
    (0.0, inf)
    """
    import numpy as np
    from scipy.special import logsumexp

    check_level(alpha)
    c, b, s = rate_arrays(canary, baseline, canary_share)
    prior = RatePrior(prior_share, concentration)
    log_rho, log_w = prior.grid(1.0, grid_points)
    ll = grid_loglik(c, b, s, log_rho)
    low, high = look_ends(ll, logsumexp(ll + log_w, axis=-1), log_rho, alpha)
    for index in np.ndindex(c.shape[:-1]):
        _resolve_narrow_looks(c[index], b[index], s[index], ll[index], log_rho, prior, alpha, low[index],
                              high[index])
    return running_intersection(np.exp(low), np.exp(high))


def _resolve_narrow_looks(c: NDArray[np.float64], b: NDArray[np.float64], s: NDArray[np.float64],
                          ll: NDArray[np.float64], log_rho: NDArray[np.float64], prior: RatePrior, alpha: float,
                          low: NDArray[np.float64], high: NDArray[np.float64]) -> None:
    """Recompute, in place, the ends of the looks (of one series) whose likelihood the grid does not resolve.

    Each look's peak and curvature come from the parabola through the grid's best point and its two
    neighbours: the log-likelihood is smooth, so the parabola holds over a step even when the peak is far
    narrower than one. Consecutive looks share fine points while the union of their windows is at most
    twice the narrowest; each block costs its last look times its points, and windows narrow as events
    accrue, so a long export needs a handful of blocks.
    """
    import numpy as np
    from scipy.special import logsumexp

    size = log_rho.size
    best = np.argmax(ll, axis=-1)
    # A peak at the grid's ends meets the prior's tail mass lumped there: such a look keeps the grid's sum.
    inner = (best > 0) & (best < size - 1)
    mid = np.clip(best, 1, size - 2)
    rows = np.arange(ll.shape[0])
    h1, h2 = log_rho[mid] - log_rho[mid - 1], log_rho[mid + 1] - log_rho[mid]
    d1 = (ll[rows, mid] - ll[rows, mid - 1]) / h1
    d2 = (ll[rows, mid + 1] - ll[rows, mid]) / h2
    info = 2 * (d1 - d2) / (h1 + h2)  # minus the second derivative
    with np.errstate(divide="ignore", invalid="ignore"):
        peak = log_rho[mid] - h1 / 2 + d1 / info
        # 10% over the window a parabola gives, and the parabola's own error at the vertex (about a
        # squared step: the third derivative is of the order of the second).
        reach = 1.1 * np.sqrt(2 * WINDOW_NATS / info) + np.maximum(h1, h2) ** 2
    # The even step, not the local one: the ladder around 1 is finer, but the set's ends lie beyond it.
    narrow = inner & (info > 0) & (2 * reach < MIN_STEPS * np.max(np.diff(log_rho)))
    looks = np.flatnonzero(narrow)
    start = 0
    while start < looks.size:
        stop = start + 1
        first = looks[start]
        lo, hi, least = peak[first] - reach[first], peak[first] + reach[first], 2 * reach[first]
        while stop < looks.size:
            t = looks[stop]
            new_lo, new_hi = min(lo, peak[t] - reach[t]), max(hi, peak[t] + reach[t])
            new_least = min(least, 2 * reach[t])
            if new_hi - new_lo > 2 * new_least:
                break
            lo, hi, least, stop = new_lo, new_hi, new_least, stop + 1
        block = looks[start:stop]
        start = stop
        nodes = np.linspace(lo, hi, math.ceil((hi - lo) / least * FINE_POINTS) + 1)
        fine = grid_loglik(c[:block[-1] + 1], b[:block[-1] + 1], s[:block[-1] + 1], nodes)[block]
        log_mix = logsumexp(fine + prior.log_density(nodes) + math.log(nodes[1] - nodes[0]), axis=-1)
        fine_low, fine_high = look_ends(fine, log_mix, nodes, alpha)
        # A set that reaches the window's edge (a prior nearly 0 at the estimate) keeps the grid's ends.
        held = np.isfinite(fine_low) & np.isfinite(fine_high)
        low[block[held]] = fine_low[held]
        high[block[held]] = fine_high[held]
