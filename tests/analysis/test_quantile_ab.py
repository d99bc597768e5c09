"""Two-arm quantile tests: one e-value over both arms, its p-values and the ratio interval it gives.

References
----------
S. R. Howard and A. Ramdas (2022). Sequential estimation of quantiles with applications to A/B-testing and
best-arm identification. Bernoulli 28(3); the A/B test as confseq 0.0.11 implements it.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy.stats import norm
from tests.analysis.test_quantile import _cumulative

from mlplat.analysis import binomial_upper, quantile_confidence_sequence, quantile_order_log_e, quantile_ratio_bound
from mlplat.analysis._quantile_ab import LOG_E_CAP
from mlplat.analysis._sequential import p_from_log_e


def _arms(n_a: int, n_b: int, shift: float, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic log-normal arms (normal quantiles at fixed ranks): no seed, the same on every numpy."""
    a = np.exp(norm.ppf((np.arange(n_a) + 0.5) / n_a) * 0.5)
    b = np.exp(norm.ppf((np.arange(n_b) + 0.37) / n_b) * 0.5 * scale) * shift
    return a, b


def _exact(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """One look's cumulative counts at ``edges`` (every sample value an edge: counts known exactly)."""
    return np.searchsorted(np.sort(values), edges, side="right")[None, :].astype(float)


# -log of confseq 0.0.11's quantiles.quantile_ab_p_value(a, b, q, t_opt=10000, alpha_opt=0.01) on these
# arms (confseq built from source with pybind11 2.13; a scratch venv, not a dependency). confseq's test
# is two-sided; where the arms differ clearly its smallest sum lies between them, where each arm's term is
# the one-sided term here, so the values agree.
@pytest.mark.parametrize(("n_a", "n_b", "shift", "scale", "q", "want"), [
    (1000, 1000, 1.05, 1.0, 0.5, 0.006343713098431177),
    (2000, 500, 1.1, 1.0, 0.5, 0.9713834398828567),
    (5000, 5000, 1.012, 1.2, 0.9, 21.47372882462355),
    (20000, 20000, 1.08, 1.0, 0.99, 4.611437102903096),
    (300, 3000, 1.35, 0.8, 0.9, 0.1286841246406425),
    (50000, 10000, 1.02, 1.0, 0.5, 0.539886928652777),
    (4000, 4000, 0.9, 1.0, 0.5, 21.35960358498187),
    (10000, 2000, 0.85, 1.1, 0.95, 0.6909884842218049),
])
def test_order_log_e_matches_confseq(n_a: int, n_b: int, shift: float, scale: float, q: float,
                                     want: float) -> None:
    """With every sample an edge and the product alone (share 1), the log e-value equals confseq's quantile
    A/B test."""
    a, b = _arms(n_a, n_b, shift, scale)
    edges = np.unique(np.concatenate([a, b]))
    cum_a, cum_b = _exact(a, edges), _exact(b, edges)
    high, low = (cum_b, cum_a) if shift > 1 else (cum_a, cum_b)
    got = quantile_order_log_e(high, low, edges, q, 1.0, floor=float(edges[0]), alpha_opt=0.01, share=1.0)
    # confseq finds each arm's flat minimum by Brent's method to 20 bits; 1e-7 covers that.
    assert_allclose(got[0], want, rtol=1e-7, atol=1e-8)


def test_order_log_e_is_capped_and_zero_before_data() -> None:
    """Far apart arms reach the cap (p = 1e-12, where the judge's p-values stop); a look with an empty arm
    carries no evidence."""
    edges = np.arange(1.0, 201.0)
    low = np.cumsum(np.r_[np.full(100, 50.0), np.zeros(100)])
    high = np.cumsum(np.r_[np.zeros(100), np.full(100, 50.0)])
    got = quantile_order_log_e(np.vstack([np.zeros(200), high]), np.vstack([low, low]), edges, 0.5, 1.0,
                               floor=0.0, alpha_opt=0.01)
    assert got.tolist() == [0.0, LOG_E_CAP]


def test_the_factor_moves_the_null() -> None:
    """Medians 10% apart: strong evidence against "at most 1.0x" and "at most 1.05x", none against 1.2x;
    the e-value falls as the factor grows."""
    rng = np.random.default_rng(5)
    edges = np.geomspace(0.1, 100, 600)
    cum_c = _cumulative(rng.lognormal(0.1, 0.5, size=(1, 40_000)) * 1.1, edges)
    cum_b = _cumulative(rng.lognormal(0.1, 0.5, size=(1, 40_000)), edges)
    got = [float(quantile_order_log_e(cum_c, cum_b, edges, 0.5, f, floor=0.0, alpha_opt=0.01)[0])
           for f in (1.0, 1.05, 1.1, 1.2)]
    assert got[0] >= got[1] >= got[2] >= got[3]
    assert got[1] > math.log(1e4) and got[3] <= 0


@pytest.mark.parametrize("q", [0.5, 0.99])
def test_ratio_bound_inverts_the_test(q: float) -> None:
    """Seeded, 20 looks: a ratio is below the lower bound exactly when the one-sided test at that factor has
    reached log(1 / alpha) by then (random factors, so none sits on an edge ratio)."""
    rng = np.random.default_rng(11)
    edges = np.geomspace(0.5, 50, 300)
    cum_c = _cumulative(rng.lognormal(1, 0.4, size=(20, 500)) * 1.15, edges)
    cum_b = _cumulative(rng.lognormal(1, 0.4, size=(20, 2000)), edges)
    alpha = 0.01
    bound = quantile_ratio_bound(cum_c, cum_b, edges, q, alpha, floor=0.0, alpha_opt=alpha / 2)
    for factor in rng.uniform(0.8, 1.4, 60):
        log_e = quantile_order_log_e(cum_c, cum_b, edges, q, factor, floor=0.0, alpha_opt=alpha / 2)
        rejected = np.maximum.accumulate(log_e) >= math.log(1 / alpha)
        assert (rejected == (factor < bound)).all(), factor


def _lognormal_looks(rng: np.random.Generator, ratio: float, looks: int, n_c: int, n_b: int,
                     edges: np.ndarray, decimals: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    c = rng.lognormal(1, 0.5, size=(looks, n_c)) * ratio
    b = rng.lognormal(1, 0.5, size=(looks, n_b))
    if decimals is not None:  # ties: values rounded, as a coarse timer reports them
        c, b = np.round(c, decimals), np.round(b, decimals)
    return _cumulative(c, edges), _cumulative(b, edges)


@pytest.mark.slow
@pytest.mark.parametrize("decimals", [None, 0])
def test_ratio_interval_coverage(decimals: int | None) -> None:
    """Seeded, 400 runs x 30 looks, canary 300 and baseline 1,500 samples a look, true p50 and p99 ratio
    1.2: the interval from both one-sided bounds, each at alpha, misses the true ratio at some look in at
    most alpha of runs (binomial bound), with and without ties. With ties (values rounded to integers) the
    true ratio of the rounded quantiles is taken from a large sample."""
    rng = np.random.default_rng(2032 if decimals is None else 2033)
    edges = np.geomspace(0.05, 200, 500) if decimals is None else np.arange(0.0, 201.0)
    runs, looks, alpha = 400, 30, 0.05
    truth = {q: 1.2 for q in (0.5, 0.99)}
    if decimals is not None:
        big = rng.lognormal(1, 0.5, size=2_000_000)
        truth = {q: float(np.quantile(np.round(big * 1.2), q, method="inverted_cdf")
                          / np.quantile(np.round(big), q, method="inverted_cdf")) for q in truth}
    misses = dict.fromkeys(truth, 0)
    for _ in range(runs):
        cum_c, cum_b = _lognormal_looks(rng, 1.2, looks, 300, 1500, edges, decimals)
        for q, ratio in truth.items():
            low = quantile_ratio_bound(cum_c, cum_b, edges, q, alpha, floor=0.0, alpha_opt=alpha / 2)
            reverse = quantile_ratio_bound(cum_b, cum_c, edges, q, alpha, floor=0.0, alpha_opt=alpha / 2)
            with np.errstate(divide="ignore"):
                high = np.where(reverse > 0, 1 / reverse, np.inf)
            misses[q] += bool(((low > ratio) | (high < ratio)).any())
    for q, count in misses.items():
        assert binomial_upper(count / runs, runs) <= alpha, (q, count)


@pytest.mark.slow
def test_tied_values_do_not_raise_false_alarms() -> None:
    """Seeded A/A with most samples tied (integers 0 to 5), 400 runs x 30 looks: each one-sided p50 test at
    tolerance 0 rejects in at most alpha of runs (binomial bound)."""
    rng = np.random.default_rng(2034)
    edges = np.arange(0.0, 11.0)
    runs, looks, alpha = 400, 30, 0.05
    alarms = {"gt": 0, "lt": 0}
    for _ in range(runs):
        cum_c = _cumulative(rng.poisson(2.0, size=(looks, 200)).astype(float), edges)
        cum_b = _cumulative(rng.poisson(2.0, size=(looks, 1000)).astype(float), edges)
        for relation, (x, y) in {"gt": (cum_c, cum_b), "lt": (cum_b, cum_c)}.items():
            p = p_from_log_e(quantile_order_log_e(x, y, edges, 0.5, 1.0, floor=0.0, alpha_opt=alpha / 2))
            alarms[relation] += bool(p[-1] <= alpha)
    for relation, count in alarms.items():
        assert binomial_upper(count / runs, runs) <= alpha, (relation, count)


def test_pooled_test_decides_before_separate_sequences() -> None:
    """Seeded, 40 runs, canary p90 6% above the baseline's: the pooled test rejects no later than the two
    arms' sequences (each at alpha / 2) separate, and on average in under half their looks (6 against 15)."""
    rng = np.random.default_rng(2035)
    edges = np.geomspace(1, 1000, 400)
    looks, alpha = 60, 0.01
    pooled, separate = [], []
    for _ in range(40):
        cum_c, cum_b = _lognormal_looks(rng, 1.06, looks, 2000, 2000, edges)
        p = p_from_log_e(quantile_order_log_e(cum_c, cum_b, edges, 0.9, 1.0, floor=0.0, alpha_opt=alpha / 2))
        low_c, _ = quantile_confidence_sequence(edges, cum_c, 0.9, alpha / 2, floor=0.0)
        _, high_b = quantile_confidence_sequence(edges, cum_b, 0.9, alpha / 2, floor=0.0)
        split = low_c > high_b
        pooled.append(int(np.argmax(p <= alpha)) if (p <= alpha).any() else looks)
        separate.append(int(np.argmax(split)) if split.any() else looks)
    assert all(a <= b for a, b in zip(pooled, separate, strict=True))
    assert np.mean(pooled) < np.mean(separate) / 2, (np.mean(pooled), np.mean(separate))


def test_the_average_keeps_one_arms_evidence_when_the_other_is_pinned() -> None:
    """A baseline of 10 million samples with its p50 pinned inside one coarse bucket carries no evidence, and
    its mixture at its minimum is well below 1: the product alone pays that (about 4 nats here), the
    default average at most log 2 more than the average of the terms alone (share 0)."""
    edges = np.array([0.1, 0.2, 0.4, 0.8, np.inf])
    baseline = np.array([[1e6, 3e6, 8e6, 1e7, 1e7]])  # p50 inside (0.2, 0.4]
    canary = np.array([[500.0, 1500.0, 4700.0, 10_000.0, 10_000.0]])  # 47% at or below 0.4: p50 above it
    average = quantile_order_log_e(canary, baseline, edges, 0.5, 1.0, floor=0.0, alpha_opt=0.01)[0]
    product = quantile_order_log_e(canary, baseline, edges, 0.5, 1.0, floor=0.0, alpha_opt=0.01, share=1.0)[0]
    alone = quantile_order_log_e(canary, baseline, edges, 0.5, 1.0, floor=0.0, alpha_opt=0.01, share=0.0)[0]
    assert product < average - 3
    assert alone - math.log(2) - 1e-9 <= average < alone
