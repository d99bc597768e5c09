"""The anytime-valid building blocks: the Dirichlet-multinomial test and the rate-ratio e-process.

References
----------
M. Lindon and A. Malek (2022). Anytime-valid inference for multinomial count data. NeurIPS 2022.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose
from numpy.typing import ArrayLike, NDArray
from tests.strategies import concentrations, event_counts, traffic_shares

from mlplat import analysis
from mlplat.analysis import (
    binomial_upper,
    dirichlet_multinomial_log_bf,
    dirichlet_multinomial_test,
    mean_confidence_sequence,
    mean_exceedance_p,
    p_from_log_e,
    rate_confidence_sequence,
    rate_ratio_process,
)
from mlplat.analysis._plan import binomial_interval
from mlplat.analysis._sequential import RatePrior
from mlplat.errors import ConfigError


def test_dirichlet_multinomial_closed_form() -> None:
    """Counts [946, 92] against shares [0.95, 0.05] with k = 100 give the published p-value.

    References
    ----------
    M. Lindon and A. Malek (2022). Anytime-valid inference for multinomial count data. NeurIPS 2022.
    """
    # Source: the savvi package's multinomial test example (Lindon & Malek 2022, "Anytime-valid inference
    # for multinomial count data", NeurIPS): p = 1.8186749e-05.
    p = dirichlet_multinomial_test([[946, 92]], [0.95, 0.05], 100.0)
    assert_allclose(p[-1], 1.8186749e-05, rtol=1e-7)


def test_dirichlet_multinomial_matches_the_log_gamma_formula() -> None:
    """The Stirling form equals lnG(k) - lnG(k + n) + sum lnG(a_i + x_i) - lnG(a_i) - x_i ln theta_i written
    directly, where that is accurate (n up to 1e6), on 500 seeded draws of 2-4 categories."""
    from scipy.special import gammaln

    rng = np.random.default_rng(9)
    for _ in range(500):
        m = int(rng.integers(2, 5))
        theta, k = rng.dirichlet(np.ones(m)), 10 ** rng.uniform(-1, 4)
        x = rng.multinomial(int(10 ** rng.uniform(0, 6)), rng.dirichlet(theta * 50 + 0.1)).astype(float)
        a = k * theta
        direct = (gammaln(k) - gammaln(k + x.sum()) + (gammaln(a + x) - gammaln(a) - x * np.log(theta)).sum())
        assert_allclose(dirichlet_multinomial_log_bf(x, theta, k), direct, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize(("counts", "shares", "k", "reference"), [
    # Reference: the defining sum of log-gammas in mpmath 1.3.0 at 60 digits, with the shares as exact
    # decimals (as floats 0.95 + 0.05 falls 4e-17 short of 1, which 1e18 requests multiply to 42).
    ([0.95e9, 0.05e9], [0.95, 0.05], 1e4, -5.75663483603001),
    ([0.95e15, 0.05e15], [0.95, 0.05], 1e4, -12.6643851167132),
    ([0.95e16, 0.05e16], [0.95, 0.05], 1e4, -13.8156776632057),
    ([0.95e18, 0.05e18], [0.95, 0.05], 1e4, -16.1182627561993),
    ([1e16 * (0.95 - 1e-7), 1e16 * (0.05 + 1e-7)], [0.95, 0.05], 1e4, 1038.81523564146),
    ([1e17 * (0.95 - 1e-7), 1e17 * (0.05 + 1e-7)], [0.95, 0.05], 1e4, 10511.3421721228),
    ([0.2e13, 0.3e13 + 12345, 0.5e13 - 12345], [0.2, 0.3, 0.5], 500.0, -23.7205130234326),
])
def test_dirichlet_multinomial_stays_accurate_with_huge_counts(counts: list[float], shares: list[float], k: float,
                                                              reference: float) -> None:
    """Up to 1e18 requests. Written directly, the log-gammas cancelled: off by 0.1 at 1e13, and +38 at
    1e16 on a perfect 95/5 split (an SRM false alarm, p = 3e-17)."""
    assert_allclose(dirichlet_multinomial_log_bf(counts, shares, k), reference, rtol=1e-9, atol=1e-9)


def test_rate_mixture_matches_closed_form() -> None:
    """With constant shares and the whole prior, the grid mixture equals the Dirichlet closed form."""
    # Same numbers as above: 92 canary and 946 baseline bad events at a 5% canary share. The grid's
    # uneven points next to the null cost the trapezoid rule some accuracy: 1.3e-5 here.
    res = rate_ratio_process([92], [946], [0.05], direction="either", prior_share=0.05, concentration=100.0)
    assert_allclose(res.p_value[-1], 1.8186749e-05, rtol=1e-4)


def test_rate_mixture_matches_closed_form_over_time() -> None:
    """Split over several intervals with the same share, every look matches the closed form on cumulative counts."""
    canary, baseline = np.array([10, 30, 25, 27]), np.array([300, 250, 200, 196])
    res = rate_ratio_process(canary, baseline, [0.05] * 4, direction="either", prior_share=0.05,
                             concentration=100.0)
    cumulative = np.stack([np.cumsum(baseline), np.cumsum(canary)], axis=1)
    expected = dirichlet_multinomial_test(cumulative, [0.95, 0.05], 100.0)
    # 1.5e-4 at worst, where the p-value is near 0.65 and the mass near the null weighs most.
    assert_allclose(res.p_value, expected, rtol=5e-4)


@pytest.mark.parametrize(("share", "k"), [(0.01, 5.0), (0.05, 20.0), (0.3, 100.0), (0.5, 1.0)])
def test_rate_prior_grid_keeps_the_whole_prior(share: float, k: float) -> None:
    """The grid's weights sum to 1 and give the Beta prior's mean of p, tails (beyond 1/1000 and 1000) included."""
    from scipy.special import expit, logit

    log_rho, log_w = RatePrior(share, k).grid(1.1)
    assert np.all(np.diff(log_rho) > 0)
    w = np.exp(log_w)
    assert w.sum() == pytest.approx(1.0, abs=1e-12)
    assert np.sum(w * expit(log_rho + logit(share))) == pytest.approx(share, rel=1e-3)


def test_rate_prior_grid_closes_in_on_the_null() -> None:
    """Points either side of the null ratio come within MIN_NULL_OFFSET of it, whatever the grid's step."""
    from mlplat.analysis._sequential import MIN_NULL_OFFSET

    log_rho, _ = RatePrior(0.05, 20.0).grid(1.1)
    offset = log_rho - np.log(1.1)
    assert 0 < offset[offset > 0].min() <= MIN_NULL_OFFSET
    assert 0 < -offset[offset < 0].max() <= MIN_NULL_OFFSET


@pytest.mark.parametrize(("share", "k", "looks"), [(0.05, 1e5, 10), (0.05, 1e4, 1), (0.5, 1e3, 1)])
def test_a_tight_prior_still_detects_a_regression_past_its_mass(share: float, k: float, looks: int) -> None:
    """Seeded: with a concentration whose prior mass lies inside (1/1.5, 1.5), a 5x canary is a regression
    within a few looks, and an A/A canary raises no more false alarms than alpha. The grid stopped at the
    prior's 1e-9 quantiles, so the side past the null had no point and its p-value stayed 1 (a 10x canary
    at k = 1e5 was promoted; found by a review pass). The tighter the prior, the more events it takes, as
    with the closed form: the prior restricted to the bad side sits just past the null."""
    from mlplat.analysis._sequential import NULL_REACH

    log_rho, _ = RatePrior(share, k).grid(1.5)
    assert log_rho[0] <= math.log(1.5) - NULL_REACH + 1e-9 and log_rho[-1] >= math.log(1.5) + NULL_REACH - 1e-9
    rng = np.random.default_rng(5)
    total = rng.poisson(2000, 30)
    worse = rng.binomial(total, 5 * share / (5 * share + 1 - share))
    res = rate_ratio_process(worse, total - worse, [share] * 30, null_ratio=1.5, prior_share=share,
                             concentration=k, alpha=0.05)
    assert (res.p_value[:looks] <= 0.05).any() and res.ci_low[-1] > 1.5
    runs = 400
    total = rng.poisson(2000, (runs, 30))
    same = rng.binomial(total, share)
    null = rate_ratio_process(same, total - same, np.full((runs, 30), share), null_ratio=1.5,
                              prior_share=share, concentration=k, alpha=0.05, p_value_only=True)
    alarms = int((null.p_value[:, -1] <= 0.05).sum())
    assert binomial_upper(alarms / runs, runs) <= 0.05, alarms


@pytest.mark.parametrize(("share", "ratio", "per_look"), [(0.05, 1.03, 100_000), (0.5, 1.01, 100_000),
                                                         (0.05, 1.03, 20_000), (0.01, 1.2, 5_000)])
def test_rate_detects_a_small_regression_over_many_events(share: float, ratio: float, per_look: int) -> None:
    """Seeded: small regressions over many events are found no more than two looks after the closed form.

    A mixture over a discrete grid only detects a ratio that lies nearer one of its points than the null;
    with an even grid alone (a step of 0.1 in log ratio at a 5% share) the first two went unseen, p = 1."""
    rng = np.random.default_rng(11)
    p = ratio * share / (ratio * share + 1 - share)
    total = rng.poisson(per_look, 60)
    canary = rng.binomial(total, p)
    res = rate_ratio_process(canary, total - canary, [share] * 60, direction="either", prior_share=share,
                             concentration=20)
    closed = dirichlet_multinomial_test(np.stack([np.cumsum(total - canary), np.cumsum(canary)], axis=1),
                                        [1 - share, share], 20.0)
    assert (res.p_value <= 0.05).any() and (closed <= 0.05).any()
    assert np.argmax(res.p_value <= 0.05) <= np.argmax(closed <= 0.05) + 2
    assert 1 < res.ci_low[-1] < ratio < res.ci_high[-1] < 1 + 3 * (ratio - 1)


def test_finer_grid_narrows_the_confidence_sequence_over_many_events() -> None:
    """Seeded, 5% share, a 5% regression over 200 looks of 500,000 bad events: the reported sequence is
    under a sixth as wide as the test's own grid's, and both hold the true ratio."""
    rng = np.random.default_rng(13)
    share, ratio = 0.05, 1.05
    total = rng.poisson(500_000, 200)
    canary = rng.binomial(total, ratio * share / (ratio * share + 1 - share))
    res = rate_ratio_process(canary, total - canary, [share] * 200, direction="either", prior_share=share,
                             concentration=20, alpha=0.05)
    low, high = rate_confidence_sequence(canary, total - canary, [share] * 200, prior_share=share,
                                         concentration=20, alpha=0.05)
    assert res.ci_low[-1] < ratio < res.ci_high[-1] and low[-1] < ratio < high[-1]
    assert high[-1] - low[-1] < 0.005 < 0.03 < res.ci_high[-1] - res.ci_low[-1]


def _beta_binomial_sequence(canary: ArrayLike, baseline: ArrayLike, share: float, k: float,
                            alpha: float) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """The rate sequence's ends in log rho from the closed form at a constant share, intersected over looks.

    Beta(k s, k (1 - s)) over p, the canary's share of bad events, makes the mixture Beta-binomial (Lindon &
    Malek 2022 with two categories); the ends are the roots of log M_t(rho0) = log(1 / alpha).
    """
    from scipy.optimize import brentq
    from scipy.special import betaln, expit, logit

    a, b = k * share, k * (1 - share)
    lows, highs = [], []
    for c, n_b in zip(np.cumsum(canary), np.cumsum(baseline), strict=True):
        def excess(log_rho: float, c: float = c, n_b: float = n_b) -> float:
            p = expit(log_rho + logit(share))
            return float(betaln(a + c, b + n_b) - betaln(a, b) - c * np.log(p) - n_b * np.log1p(-p)
                         - math.log(1 / alpha))

        mle = logit(c / (c + n_b)) - logit(share)
        lows.append(brentq(excess, mle - 30, mle))
        highs.append(brentq(excess, mle, mle + 30))
    return np.maximum.accumulate(lows), np.minimum.accumulate(highs)


@pytest.mark.parametrize(("events", "ratio"), [(2_000, 1.03), (200_000, 1.0), (20_000_000, 1.03),
                                               (2_000_000_000, 1.0003), (200_000_000_000, 1.3)])
def test_reported_sequence_matches_the_closed_form_at_any_count(events: int, ratio: float) -> None:
    """Seeded, constant 5% share, 100 looks: the reported sequence lies outside the closed form's
    (conservative) by at most a tenth of its width, however many events. On the grid alone it was 2.4
    times as wide as the closed form at 10 million events and 4.8 times at 100 million."""
    rng = np.random.default_rng(21)
    share, k, alpha = 0.05, 20.0, 0.05
    total = rng.poisson(events / 100, 100)
    canary = rng.binomial(total, ratio * share / (ratio * share + 1 - share))
    canary[0] = max(canary[0], 1)  # the closed form's root-finding needs events in both arms
    low, high = rate_confidence_sequence(canary, total - canary, [share] * 100, prior_share=share,
                                         concentration=k, alpha=alpha)
    want_low, want_high = _beta_binomial_sequence(canary, total - canary, share, k, alpha)
    width = want_high - want_low
    outward_low, outward_high = (want_low - np.log(low)) / width, (np.log(high) - want_high) / width
    assert (outward_low >= -1e-6).all() and (outward_high >= -1e-6).all()
    assert outward_low.max() < 0.1 and outward_high.max() < 0.1, (outward_low.max(), outward_high.max())


def test_a_set_reaching_its_fine_window_keeps_the_grid_s_ends(monkeypatch: pytest.MonkeyPatch) -> None:
    """A window too narrow to hold the set (1 nat, where the ends lie about 5 nats down) leaves every look
    with the grid's own ends, never a set cut at the window's edge; the default window (60 nats) gives a
    narrower set than the grid's."""
    import mlplat.analysis._rate_interval as rate_interval

    rng = np.random.default_rng(23)
    total = rng.poisson(100_000, 50)
    canary = rng.binomial(total, 1.02 * 0.05 / (1.02 * 0.05 + 0.95))
    args = (canary, total - canary, [0.05] * 50)
    monkeypatch.setattr(rate_interval, "MIN_STEPS", 0)
    grid_only = rate_confidence_sequence(*args, prior_share=0.05, concentration=20)
    monkeypatch.setattr(rate_interval, "MIN_STEPS", 88)
    monkeypatch.setattr(rate_interval, "WINDOW_NATS", 1.0)
    assert_allclose(rate_confidence_sequence(*args, prior_share=0.05, concentration=20), grid_only)
    monkeypatch.setattr(rate_interval, "WINDOW_NATS", 60.0)
    low, high = rate_confidence_sequence(*args, prior_share=0.05, concentration=20)
    assert high[-1] - low[-1] < 0.9 * (grid_only[1][-1] - grid_only[0][-1])


def test_finer_grid_confidence_sequence_covers_truth() -> None:
    """Seeded: with the judge's finer grid the 95% sequence still holds the true ratio 2 at every look."""
    rng = np.random.default_rng(14)
    runs, looks, share = 300, 30, 0.05
    total = rng.poisson(20, (runs, looks))
    canary = rng.binomial(total, 2 * share / (2 * share + 1 - share))
    low, high = rate_confidence_sequence(canary, total - canary, np.full((runs, looks), share), prior_share=share,
                                         concentration=20, alpha=0.05)
    missed = int(((low > 2) | (high < 2)).any(axis=-1).sum())
    assert binomial_upper(missed / runs, runs) <= 0.05, missed


@pytest.mark.slow
def test_reported_sequence_covers_truth_over_many_events_and_varying_shares() -> None:
    """Seeded: over a million bad events a look, where every look is summed on fine points, and with a share
    that changes every look, the 95% sequence holds the true ratio 1.03 at every look (binomial bound)."""
    rng = np.random.default_rng(22)
    runs, looks, ratio = 400, 40, 1.03
    share = rng.uniform(0.02, 0.1, (runs, looks))
    total = rng.poisson(1_000_000, (runs, looks))
    canary = rng.binomial(total, ratio * share / (ratio * share + 1 - share))
    low, high = rate_confidence_sequence(canary, total - canary, share, prior_share=0.05, concentration=20,
                                         alpha=0.05)
    assert np.median(high[:, -1] - low[:, -1]) < 0.01
    missed = int(((low > ratio) | (high < ratio)).any(axis=-1).sum())
    assert binomial_upper(missed / runs, runs) <= 0.05, missed


def test_p_value_only_gives_the_same_p_values() -> None:
    """The power simulation's shortcut computes the same regression p-values and nothing else."""
    rng = np.random.default_rng(15)
    total = rng.poisson(30, (50, 20))
    canary = rng.binomial(total, 0.08)
    args = (canary, total - canary, np.full((50, 20), 0.05))
    full = rate_ratio_process(*args, null_ratio=1.1, prior_share=0.05, concentration=20)
    quick = rate_ratio_process(*args, null_ratio=1.1, prior_share=0.05, concentration=20, p_value_only=True)
    assert_allclose(quick.p_value, full.p_value)
    assert_allclose(quick.ratio, full.ratio)
    assert (quick.pass_p_value == 1).all() and np.isnan(quick.ci_low).all() and np.isnan(quick.ci_high).all()


def test_cs_grid_points_shrink_for_very_long_exports() -> None:
    """The finer grid for exports of ordinary length; fewer points, never under the test's, past CS_CELLS."""
    from mlplat.analysis._rate_interval import CS_CELLS, CS_GRID, cs_grid_points

    assert cs_grid_points(1440) == CS_GRID
    assert cs_grid_points(CS_CELLS // 500) == 500
    assert cs_grid_points(10**9) == 241


def test_rate_estimate_holds_when_the_share_moves() -> None:
    """Seeded: the canary's share goes from 1% to 50% halfway with 2x the errors: the estimate is about 2 and
    inside its own interval. The pooled rates read 1.58 beside [1.98, 2.04] (found by a review pass)."""
    rng = np.random.default_rng(21)
    share = np.repeat([0.01, 0.5], 30)
    p = 2 * share / (2 * share + 1 - share)
    total = rng.poisson(20_000, 60)
    canary = rng.binomial(total, p)
    res = rate_ratio_process(canary, total - canary, share, direction="either", prior_share=0.05,
                             concentration=20)
    assert res.ratio[-1] == pytest.approx(2.0, rel=0.02)
    assert res.ci_low[-1] <= res.ratio[-1] <= res.ci_high[-1]


def test_rate_false_alarms_over_many_events() -> None:
    """Seeded A/A with 20,000 bad events a look: the points next to the null do not raise false alarms."""
    rng = np.random.default_rng(12)
    runs, looks, share = 1000, 30, 0.05
    total = rng.poisson(20_000, (runs, looks))
    canary = rng.binomial(total, share)
    res = rate_ratio_process(canary, total - canary, np.full((runs, looks), share), prior_share=share,
                             concentration=20, alpha=0.05)
    alarms = int((res.p_value[:, -1] <= 0.05).sum())
    assert binomial_upper(alarms / runs, runs) <= 0.05, alarms


@settings(max_examples=40, deadline=None)
@given(canary=event_counts, baseline=event_counts, share=traffic_shares, k=concentrations)
def test_rate_p_values_are_valid_and_monotone(canary: list[int], baseline: list[int], share: float,
                                              k: float) -> None:
    """Anytime p-values are in [0, 1] and never increase; the CS is never empty and holds the estimate."""
    n = min(len(canary), len(baseline))
    res = rate_ratio_process(canary[:n], baseline[:n], [share] * n, prior_share=share, concentration=k)
    assert np.all((res.p_value >= 0) & (res.p_value <= 1))
    assert np.all(res.p_value[1:] <= res.p_value[:-1] + 1e-12)
    assert np.all(res.ci_low <= res.ci_high)


@settings(max_examples=40, deadline=None)
@given(canary=event_counts, baseline=event_counts, share=traffic_shares, k=concentrations,
       scale=st.sampled_from([1, 1_000, 1_000_000]))
def test_reported_sequence_is_an_interval_at_any_count(canary: list[int], baseline: list[int], share: float,
                                                       k: float, scale: int) -> None:
    """At any counts (scaled up to where looks are summed on fine points) the reported sequence is a
    non-empty interval of ratios at every look, never NaN."""
    n = min(len(canary), len(baseline))
    c, b = np.asarray(canary[:n]) * scale, np.asarray(baseline[:n]) * scale
    low, high = rate_confidence_sequence(c, b, [share] * n, prior_share=share, concentration=k)
    assert not np.isnan(low).any() and not np.isnan(high).any()
    assert np.all((low >= 0) & (low < high))


def test_one_sided_direction() -> None:
    """A canary with fewer errors is no regression when increase is bad, but is one when decrease is bad."""
    canary, baseline = [1, 0, 1, 0, 1, 0] * 5, [60, 55, 58, 61, 57, 59] * 5
    share = [0.05] * len(canary)
    up = rate_ratio_process(canary, baseline, share, direction="increase", prior_share=0.05, concentration=20)
    down = rate_ratio_process(canary, baseline, share, direction="decrease", prior_share=0.05, concentration=20)
    assert up.p_value[-1] == 1.0
    assert down.p_value[-1] < 0.01
    assert up.pass_p_value[-1] < 0.05  # the canary is shown better than the baseline


def test_rate_conditional_on_varying_load() -> None:
    """Shares that change every interval are used per interval: a 1:1 rate split is not a regression."""
    rng = np.random.default_rng(3)
    share = rng.uniform(0.02, 0.3, 200)
    total = rng.poisson(50, 200)
    canary = rng.binomial(total, share)
    res = rate_ratio_process(canary, total - canary, share, prior_share=0.1, concentration=20)
    assert res.p_value[-1] > 0.05
    assert res.ci_low[-1] < 1 < res.ci_high[-1]


def test_rate_confidence_sequence_covers_truth() -> None:
    """Seeded: the 95% sequence for the ratio holds the true ratio 2 at every look (binomial upper bound)."""
    rng = np.random.default_rng(5)
    runs, looks = 1000, 60
    share = 0.05
    p = 2 * share / (2 * share + 1 - share)
    total = rng.poisson(20, (runs, looks))
    canary = rng.binomial(total, p)
    res = rate_ratio_process(canary, total - canary, np.full((runs, looks), share), direction="either",
                             prior_share=share, concentration=20, alpha=0.05)
    missed = ((res.ci_low > 2) | (res.ci_high < 2)).any(axis=-1).sum()
    assert binomial_upper(missed / runs, runs) <= 0.05, missed
    # The point estimate (the reported effect) is the ratio of rates: about 2 after 60 looks (each run's
    # has a standard error near 10%, so the median over 1000 runs is well inside 5%).
    assert np.median(res.ratio[:, -1]) == pytest.approx(2.0, rel=0.05)


def test_rate_confidence_sequence_matches_the_beta_binomial_closed_form() -> None:
    """With a constant share the mixture has a closed form (Beta-binomial). The test's sequence, on its grid,
    must match it to within one grid step outward."""
    share, k, alpha = 0.05, 20.0, 0.05
    canary, baseline = [3, 1, 4, 2, 5, 3, 2, 6], [40, 38, 45, 41, 39, 44, 40, 42]
    res = rate_ratio_process(canary, baseline, [share] * 8, direction="either", prior_share=share,
                             concentration=k, alpha=alpha)
    low, high = _beta_binomial_sequence(canary, baseline, share, k, alpha)
    log_rho, _ = RatePrior(share, k).grid()
    step = log_rho[1] - log_rho[0]
    got_low, got_high = np.log(res.ci_low), np.log(res.ci_high)
    assert np.all((got_low <= low + 1e-9) & (got_low >= low - step - 1e-9)), (got_low, low)
    assert np.all((got_high >= high - 1e-9) & (got_high <= high + step + 1e-9)), (got_high, high)


def test_dirichlet_log_bf_vectorised() -> None:
    """The log Bayes factor takes a batch of count rows."""
    out = dirichlet_multinomial_log_bf([[946, 92], [950, 50]], [0.95, 0.05], 100.0)
    assert out.shape == (2,)
    assert out[0] > out[1]


def test_p_from_log_e_running_maximum() -> None:
    """p-values come from the running maximum of the e-process (Ville's inequality)."""
    assert_allclose(p_from_log_e([0.0, np.log(40), 0.0]), [1.0, 0.025, 0.025])


def test_p_from_log_e_tiny_e_values_are_quiet() -> None:
    """An e-value far below 1 gives p = 1 without numpy's overflow warning reaching the user."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert_allclose(p_from_log_e([-1e6, -2e6]), [1.0, 1.0])


ONES = np.ones(30)
LEVEL_CALLS = {
    "mean_confidence_sequence": lambda a: mean_confidence_sequence(ONES, a),
    "mean_exceedance_p": lambda a: mean_exceedance_p(ONES, 0.0, a),
    "rate_ratio_process": lambda a: rate_ratio_process([1], [1], [0.5], prior_share=0.5, concentration=20, alpha=a),
    "rate_confidence_sequence": lambda a: rate_confidence_sequence([1], [1], [0.5], prior_share=0.5,
                                                                   concentration=20, alpha=a),
    "quantile_epsilon": lambda a: analysis.quantile_epsilon(100, [0.05, a]),
    "quantile_confidence_sequence": lambda a: analysis.quantile_confidence_sequence([1.0, 2.0], [[5.0, 10.0]],
                                                                                    0.5, a),
    "binomial_upper": lambda a: binomial_upper(0.1, 100, level=a),
    "binomial_interval": lambda a: binomial_interval(0.1, 100, level=a),
}


@pytest.mark.parametrize("alpha", [0.0, 1.0, 1.5, -1.0, math.nan])
@pytest.mark.parametrize("name", sorted(LEVEL_CALLS))
def test_public_functions_refuse_an_alpha_outside_0_1(name: str, alpha: float) -> None:
    """An alpha (or level) outside (0, 1) is a ConfigError naming it; it gave NaN, 1s or (-inf, inf) silently."""
    with pytest.raises(ConfigError, match=r"`(alpha|level)` must be in \(0, 1\), got "):
        LEVEL_CALLS[name](alpha)


def test_quantile_sequence_refuses_a_quantile_outside_0_1() -> None:
    """q = 1 (the maximum) has no finite-sample bound: a ConfigError, not a math domain error."""
    with pytest.raises(ConfigError, match=r"`q` must be in \(0, 1\), got 1"):
        analysis.quantile_confidence_sequence([1.0, 2.0], [[5.0, 10.0]], 1.0, 0.05)


def test_intervals_are_named_results() -> None:
    """Confidence intervals and sequences come back as DESIGN's ConfidenceInterval(low, high) (and the
    mean's with its running mean), named fields that still unpack as the tuples they were."""
    from mlplat.analysis import ConfidenceInterval, MeanConfidenceSequence, quantile_confidence_sequence

    cs = mean_confidence_sequence(np.random.default_rng(0).normal(1.0, 1.0, 200), 0.05)
    assert isinstance(cs, MeanConfidenceSequence)
    mean, low, high = cs
    assert mean is cs.mean and low is cs.low and high is cs.high
    assert cs.interval == ConfidenceInterval(cs.low, cs.high)
    rate = rate_confidence_sequence([5, 6], [95, 94], [0.05, 0.05], prior_share=0.05, concentration=20)
    assert isinstance(rate, ConfidenceInterval) and rate.low.shape == rate.high.shape == (2,)
    edges = np.array([1.0, 2.0, np.inf])
    quantile = quantile_confidence_sequence(edges, np.array([[10.0, 20.0, 30.0]]), 0.5, 0.05)
    assert isinstance(quantile, ConfidenceInterval)
    interval = binomial_interval(0.556, 500)
    assert isinstance(interval, ConfidenceInterval) and interval.low < 0.556 < interval.high
