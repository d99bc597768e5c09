"""Anytime-valid tests and confidence sequences for a mean (gauges: CPU, memory, a score per interval).

Vectorised with numpy over time; scipy is imported inside the functions that need it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

from mlplat.analysis._sequential import ConfidenceInterval, check_level, mixture_precision, running_intersection

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import ArrayLike, NDArray

__all__ = ["MeanConfidenceSequence", "mean_confidence_sequence", "mean_exceedance_p", "relative_effect_sequence"]


class MeanConfidenceSequence(NamedTuple):
    """The running ``mean`` and the confidence sequence ``low``, ``high`` around it, one value per look."""

    mean: Any
    low: Any
    high: Any

    @property
    def interval(self) -> ConfidenceInterval:
        return ConfidenceInterval(self.low, self.high)


def mean_confidence_sequence(
    values: ArrayLike, alpha: float, *, t_opt: float = 30.0, burn_in: int = 20, autocorrelated: bool = False
) -> MeanConfidenceSequence:
    """Asymptotic confidence sequence for a mean (Gaussian-mixture boundary), running intersection.

    ``mean_t +- sd_t sqrt(2 (t rho^2 + 1) / (t^2 rho^2) log(sqrt(t rho^2 + 1) / alpha))``; ``rho`` is tuned
    so the boundary is tightest near ``t_opt`` observations. The sequence is asymptotic: with a handful of
    observations the variance estimate is too noisy, so it is unbounded before ``burn_in`` observations
    (a seeded test shows coverage at 20 for near-normal data, such as per-interval averages, and for
    canary - baseline differences, which are symmetric under no change). Skewed one-sample data needs a
    longer burn-in: for lognormal(0, 0.5) values, 200 looks missed the mean in 6.9% of seeded runs at 20,
    3.8% at 50.

    The boundary assumes independent observations. With ``autocorrelated=True`` the variance is inflated
    by the AR(1) long-run factor ``(1 + r) / (1 - r)``, ``r`` the running lag-1 autocorrelation clipped to
    [0, 0.95] (a heuristic, validated by simulation in docs/canary.md, not part of the cited theory).

    Parameters
    ----------
    values : array_like
        Observations in time order on the last axis (leading axes, such as runs, are kept).
    alpha : float
        Miscoverage level in (0, 1): the sequence holds the mean at every look with probability about
        ``1 - alpha`` (asymptotically).
    t_opt : float
        Number of observations at which the boundary is tightest (default 30).
    burn_in : int
        Looks before which the sequence is unbounded (default 20; never fewer than 2).
    autocorrelated : bool
        Inflate the variance by the AR(1) long-run factor (default False).

    Returns
    -------
    MeanConfidenceSequence
        ``mean`` (the running mean), ``low`` and ``high``, each the shape of ``values``. ``low`` is -inf and
        ``high`` is inf before ``burn_in`` observations; over the looks ``low`` never falls and ``high``
        never rises (the running intersection), except that a look where the intersection is empty (the
        mean moved, or the alpha chance) reports its own interval, so ``low <= high`` always.

    Raises
    ------
    ConfigError
        If ``alpha`` is not in (0, 1).

    References
    ----------
    I. Waudby-Smith, D. Arbour, R. Sinha, E. H. Kennedy and A. Ramdas (2021). Time-uniform central limit
    theory and asymptotic confidence sequences. arXiv:2103.06476.
    S. Howard, A. Ramdas, J. McAuliffe and J. Sekhon (2021). Time-uniform, nonparametric, nonasymptotic
    confidence sequences. Annals of Statistics 49(2).

    Examples
    --------
    >>> import numpy as np
    >>> x = np.random.default_rng(0).normal(1.0, 1.0, 500)
    >>> cs = mean_confidence_sequence(x, 0.05)
    >>> bool(cs.low[-1] < 1.0 < cs.high[-1])
    True
    >>> bool(np.isinf(cs.high[18])), bool(np.isfinite(cs.high[19]))  # bounded from the 20th look
    (True, True)
    """
    import numpy as np

    check_level(alpha)
    mean, sd, t = _running_moments(values, autocorrelated=autocorrelated)
    rho2 = mixture_precision(alpha, t_opt)
    half = sd * np.sqrt(2 * (t * rho2 + 1) / (t * t * rho2) * np.log(np.sqrt(t * rho2 + 1) / alpha))
    half = np.where(t >= max(burn_in, 2), half, np.inf)
    # Intersected over looks like the other sequences: an empty intersection (a mean that moved, or the
    # alpha chance) reports each look's own interval, where accumulating alone left low above high.
    lo, hi = running_intersection(mean - half, mean + half)
    return MeanConfidenceSequence(mean, lo, hi)


def _running_moments(values: ArrayLike, *, autocorrelated: bool = False
                     ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Running mean and sample standard deviation along the last axis (the long-run one if ``autocorrelated``).

    The values are shifted by the first and scaled by the largest distance from it before squaring, so
    the sums of squares neither underflow (gauges near 1e-300 had a standard deviation of exactly 0, and
    decided at once) nor lose the variance to cancellation against a large mean.
    """
    import numpy as np

    x = np.asarray(values, dtype=float)
    t = np.arange(1, x.shape[-1] + 1, dtype=float)
    shift = x[..., :1]
    scale = np.max(np.abs(x - shift), axis=-1, keepdims=True) if x.shape[-1] else np.ones_like(shift)
    scale = np.where(scale > 0, scale, 1.0)
    z = (x - shift) / scale
    mean_z = np.cumsum(z, axis=-1) / t
    var_z = np.maximum(np.cumsum(z * z, axis=-1) / t - mean_z * mean_z, 0.0) * t / np.maximum(t - 1, 1)
    if autocorrelated:
        r = np.clip(np.nan_to_num(running_lag1(z)), 0.0, MAX_LAG1)
        var_z = var_z * (1 + r) / (1 - r)
    return mean_z * scale + shift, np.sqrt(var_z) * scale, t


#: The largest lag-1 autocorrelation the long-run variance believes (the factor is 39 there).
MAX_LAG1 = 0.95


def running_lag1(values: ArrayLike) -> NDArray[np.float64]:
    """Running lag-1 autocorrelation along the last axis: at ``t``, of the first ``t`` values (NaN below 3).

    >>> import numpy as np
    >>> x = np.random.default_rng(0).normal(size=2000)
    >>> for i in range(1, len(x)):  # AR(1) with coefficient 0.8
    ...     x[i] += 0.8 * x[i - 1]
    >>> round(float(running_lag1(x)[-1]), 2)
    0.8
    """
    import numpy as np

    x = np.asarray(values, dtype=float)
    c = x - x[..., :1]  # shifted by the first value, as in _running_moments
    t = np.arange(1, x.shape[-1] + 1, dtype=float)
    s1, s2 = np.cumsum(c, axis=-1), np.cumsum(c * c, axis=-1)
    lagged = np.cumsum(c[..., 1:] * c[..., :-1], axis=-1)
    lagged = np.concatenate([np.zeros((*c.shape[:-1], 1)), lagged], axis=-1)
    m = s1 / t
    # sum over i = 2..t of (c_i - m)(c_{i-1} - m), expanded into the running sums
    num = lagged - m * (s1 - c[..., :1]) - m * (s1 - c) + (t - 1) * m * m
    den = s2 - t * m * m
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(np.where((t >= 3) & (den > 0), num / den, np.nan), dtype=float)


def mean_exceedance_p(values: ArrayLike, margin: ArrayLike, alpha: float, *, t_opt: float = 30.0,
                      burn_in: int = 20, autocorrelated: bool = False) -> NDArray[np.float64]:
    """Anytime p-value that the mean exceeds ``margin``: the level at which the sequence's lower end passes it.

    Inverts the boundary of :func:`mean_confidence_sequence` (same ``rho`` from ``alpha``) at every look
    and keeps the running minimum. To test "mean below margin", pass the negated values and margin.
    ``autocorrelated`` as in :func:`mean_confidence_sequence`.

    Parameters
    ----------
    values : array_like
        Observations in time order on the last axis (leading axes, such as runs, are kept).
    margin : array_like
        The mean under the null; broadcast against ``values`` (a scalar, or one per look).
    alpha : float
        Level in (0, 1) that tunes the boundary (its mixture ``rho``), as in :func:`mean_confidence_sequence`.
    t_opt, burn_in, autocorrelated
        As in :func:`mean_confidence_sequence` (defaults 30, 20 and False).

    Returns
    -------
    numpy.ndarray
        P-values in [0, 1], non-increasing along the last axis. A look's own value is 1 before
        ``burn_in`` observations and wherever the running mean is not above ``margin``.

    Raises
    ------
    ConfigError
        If ``alpha`` is not in (0, 1).

    References
    ----------
    I. Waudby-Smith, D. Arbour, R. Sinha, E. H. Kennedy and A. Ramdas (2021). Time-uniform central limit
    theory and asymptotic confidence sequences. arXiv:2103.06476.
    S. Howard, A. Ramdas, J. McAuliffe and J. Sekhon (2021). Time-uniform, nonparametric, nonasymptotic
    confidence sequences. Annals of Statistics 49(2).

    Examples
    --------
    >>> import numpy as np
    >>> p = mean_exceedance_p(np.random.default_rng(1).normal(1.0, 1.0, 200), 0.0, 0.05)
    >>> bool(p[-1] < 1e-6)
    True
    >>> p0 = mean_exceedance_p(np.random.default_rng(0).normal(0.0, 1.0, 300), 0.0, 0.05)  # no change
    >>> bool(p0.min() > 0.05)
    True
    """
    import numpy as np

    check_level(alpha)
    mean, sd, t = _running_moments(values, autocorrelated=autocorrelated)
    rho2 = mixture_precision(alpha, t_opt)
    gap = mean - np.asarray(margin, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_inv = (gap / sd) ** 2 * t * t * rho2 / (2 * (t * rho2 + 1)) - 0.5 * np.log(t * rho2 + 1)
    ready = (gap > 0) & (t >= max(burn_in, 2))
    p = np.where(ready, np.exp(-np.nan_to_num(log_inv, nan=0.0, posinf=np.inf)), 1.0)
    return np.asarray(np.minimum.accumulate(np.minimum(p, 1.0), axis=-1))


def _effect_grid() -> NDArray[np.float64]:
    """Relative effects the ratio sequence is read on: steps of 0.5% from -100% to +100%, then log steps
    (about 5% apart) out to 1000 times either way. 700 rows: 0.4 s for a day of one-minute looks."""
    import numpy as np

    outer = np.geomspace(1.0, 1000.0, 151)[1:]
    return np.concatenate([-outer[::-1], np.linspace(-1.0, 1.0, 401), outer])


def relative_effect_sequence(baseline: ArrayLike, canary: ArrayLike, alpha: float, *, burn_in: int = 20,
                             autocorrelated: bool = False) -> ConfidenceInterval:
    """Confidence sequence of the canary's relative effect ``E[canary] / E[baseline] - 1``, by test inversion.

    An effect ``e`` is in the set at a look while the mean of ``canary - baseline - e |baseline|`` per interval
    (the sign of ``|baseline|`` from the running baseline mean) has a sequence that still holds 0, as the
    judge's tolerance tests do. Dividing the difference's sequence by the running baseline mean, as before,
    left the baseline mean's own noise out: a canary exactly 10% above a baseline swinging with load read
    [+9.5%, +10.2%]. Read on a grid of effects (0.5% apart within ±100%), each end one step outwards; an end
    the grid cannot bound is infinite, as is every end before ``burn_in`` intervals. NaN at a look where no
    effect is left standing (the effect moved).
    """
    import numpy as np

    b = np.asarray(baseline, dtype=float)
    c = np.asarray(canary, dtype=float)
    t = np.arange(1, b.size + 1, dtype=float)
    sign = np.where(np.cumsum(b) / t < 0, -1.0, 1.0)
    effects = _effect_grid()
    above = np.empty((effects.size, b.size), dtype=bool)  # the canary shown above (1 + e) x baseline
    below = np.empty((effects.size, b.size), dtype=bool)
    for start in range(0, effects.size, 256):  # a few MB at a time: a day of one-minute looks is 1440 each
        e = effects[start:start + 256, None]
        shifted = (c - b)[None, :] - e * (sign * b)[None, :]
        above[start:start + 256] = mean_exceedance_p(shifted, 0.0, alpha, burn_in=burn_in,
                                                     autocorrelated=autocorrelated) <= alpha
        below[start:start + 256] = mean_exceedance_p(-shifted, 0.0, alpha, burn_in=burn_in,
                                                     autocorrelated=autocorrelated) <= alpha
    inside = ~above & ~below
    held = inside.any(axis=0)
    first = np.argmax(inside, axis=0)
    last = effects.size - 1 - np.argmax(inside[::-1], axis=0)
    # One grid step outwards, so that the set's true ends (between two grid points) are inside.
    low = np.where(held, np.where(first == 0, -np.inf, effects[np.maximum(first - 1, 0)]), np.nan)
    high = np.where(held, np.where(last == effects.size - 1, np.inf, effects[np.minimum(last + 1, effects.size - 1)]),
                    np.nan)
    # Nothing on the grid left standing: past one of its ends (shown above the top or below the bottom), or
    # no constant effect at all (NaN).
    low = np.where(~held & above[-1], effects[-1], np.where(~held & below[0], -np.inf, low))
    high = np.where(~held & above[-1], np.inf, np.where(~held & below[0], effects[0], high))
    return ConfidenceInterval(low, high)
