"""Validity and power by seeded simulation of the rate gate (the same function `plan` uses).

References
----------
M. Lindon and A. Malek (2022). Anytime-valid inference for multinomial count data. NeurIPS 2022.
J. Ville (1939). Étude critique de la notion de collectif. Gauthier-Villars.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from mlplat.analysis import CanaryConfig, CanaryData, Verdict, analyze, binomial_upper, plan, simulate_detection
from mlplat.analysis._simulate import SimulationSpec, simulate_export
from mlplat.errors import ConfigError, SimulationError

ALPHA = 0.05
# One rate metric and the SRM check: the rate test gets alpha - srm.alpha (canary.yaml's defaults).
METRIC_ALPHA = 0.049


@pytest.mark.slow
@pytest.mark.parametrize("traffic", [0.01, 0.05])
def test_aa_false_rollback_rate_is_at_most_alpha(traffic: float) -> None:
    """A/A, 60 one-minute looks, 2000 runs: the binomial upper bound of the false-ROLLBACK rate is <= alpha.

    References
    ----------
    M. Lindon and A. Malek (2022). Anytime-valid inference for multinomial count data. NeurIPS 2022.
    J. Ville (1939). Étude critique de la notion de collectif (Ville's inequality).
    """
    sim = simulate_detection(rps=1e6 / 3600, traffic=traffic, baseline_rate=0.001, effect=1.0, duration=3600,
                             alpha=ALPHA, runs=2000, rng=np.random.default_rng(2026))
    assert sim.runs == 2000
    assert sim.duration / sim.interval == 60  # 60 looks
    assert binomial_upper(sim.power(), sim.runs) <= ALPHA
    # Not vacuous: the gate does fire under the null now and then (it is not stuck at p = 1), and the
    # same set-up with a real 3x regression is caught.
    assert np.isfinite(sim.detect_times).any()
    live = simulate_detection(rps=1e6 / 3600, traffic=traffic, baseline_rate=0.001, effect=3.0, duration=3600,
                              alpha=ALPHA, runs=200, rng=np.random.default_rng(2026))
    assert live.power() >= 0.9


@pytest.mark.slow
def test_power_2x_at_5_percent() -> None:
    """1M req/h, 0.1% errors, canary 2x at 5%: P(ROLLBACK in 60 min) >= 0.99, median time to detect <= 13 min.

    The issue requires <= 17 min and sets 13 min as the goal; the goal is asserted.

    References
    ----------
    M. Lindon and A. Malek (2022). Anytime-valid inference for multinomial count data. NeurIPS 2022.
    """
    sim = simulate_detection(rps=1e6 / 3600, traffic=0.05, baseline_rate=0.001, effect=2.0, duration=3600,
                             alpha=METRIC_ALPHA, runs=2000, rng=np.random.default_rng(7))
    assert sim.power() >= 0.99
    assert sim.median_time() <= 13 * 60


@pytest.mark.slow
def test_aa_full_judge_false_alarms() -> None:
    """The whole judge (rate, latency quantiles and drift, CPU mean, SRM) on 300 seeded A/A exports."""
    cfg = CanaryConfig.model_validate({"metrics": [
        {"name": "errors", "kind": "rate", "events": "errors", "critical": True},
        {"name": "latency", "kind": "distribution", "metric": "latency_seconds", "quantiles": [0.5, 0.99],
         "drift": True},
        {"name": "cpu", "kind": "mean", "metric": "cpu"}]})
    rollbacks = 0
    runs = 300
    for seed in range(runs):
        frame = simulate_export(SimulationSpec(scenario="aa", duration=1800, seed=seed))
        rollbacks += analyze(CanaryData(frame, "aa"), cfg).decision is Verdict.ROLLBACK
    # The Bonferroni split is conservative here: the binomial upper bound itself stays below alpha.
    assert binomial_upper(rollbacks / runs, runs) <= ALPHA, rollbacks


def test_detection_is_monotone_in_traffic() -> None:
    """More traffic never slows detection (same seeds, 300 runs)."""
    result = plan(rps=278, baseline_rate=0.001, traffic=[0.02, 0.1], effects=[2.0], runs=300, seed=3)
    low, high = result.cells
    assert high.power >= low.power
    assert high.median_time <= low.median_time


def test_plan_is_seeded() -> None:
    """The same seed gives the same plan."""
    kwargs = {"rps": 278, "baseline_rate": 0.001, "traffic": [0.05], "effects": [3.0], "runs": 100, "seed": 4}
    assert plan(**kwargs).to_dict() == plan(**kwargs).to_dict()


def test_plan_cell_does_not_depend_on_the_grid() -> None:
    """A cell's numbers are the same whatever shares and effects sit beside it (its generator is keyed by
    the seed, its share and its effect, not by its position in the grid)."""
    kwargs = {"rps": 278, "baseline_rate": 0.001, "runs": 100, "seed": 4}
    alone = plan(traffic=[0.05], effects=[3.0], **kwargs)
    grid = plan(traffic=[0.01, 0.05], effects=[2.0, 3.0], **kwargs)
    cell = next(c for c in grid.cells if c.traffic == 0.05 and c.effect == 3.0)
    assert cell == alone.cells[0]
    assert grid.false_alarm[0.05] == alone.false_alarm[0.05]


def test_plan_to_dict_smallest() -> None:
    """The plan names the smallest traffic share that reaches 80% and 95% power."""
    result = plan(rps=278, baseline_rate=0.001, traffic=[0.01, 0.1, 0.3], effects=[3.0], runs=200, seed=5)
    doc = result.to_dict()
    assert set(doc["smallest"]["3.0"]) == {"power_80", "power_95"}
    assert doc["false_alarm"][0]["ci_upper"] >= doc["false_alarm"][0]["rate"]
    # The named share is the smallest of those whose simulated power reaches the target, checked against
    # the cells themselves (more than one share reaches it here, so "smallest" is not the only choice).
    for target, key in ((0.8, "power_80"), (0.95, "power_95")):
        reaching = sorted(c.traffic for c in result.cells if c.effect == 3.0 and c.power >= target)
        assert len(reaching) >= 2
        assert doc["smallest"]["3.0"][key]["traffic"] == reaching[0]


def test_simulation_rejects_bad_inputs() -> None:
    """Shares outside (0, 1) and rates of 1 or more are refused."""
    rng = np.random.default_rng(0)
    with pytest.raises(SimulationError, match="traffic share"):
        simulate_detection(rps=1, traffic=1.5, baseline_rate=0.1, effect=1, duration=60, rng=rng)
    with pytest.raises(SimulationError, match="error rates"):
        simulate_detection(rps=1, traffic=0.5, baseline_rate=0.6, effect=2, duration=60, rng=rng)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"interval": float("nan")}, "at least one interval"),
    ({"tolerance": float("nan")}, r"tolerance must be finite and >= 0 and concentration in \[1e-06, 1e\+06\]"),
    ({"concentration": float("inf")}, r"concentration in \[1e-06, 1e\+06\]"),
    ({"concentration": 1e9}, r"concentration in \[1e-06, 1e\+06\], got 0.0 and 1000000000.0"),
    ({"concentration": 1e-310}, r"concentration in \[1e-06, 1e\+06\]"),  # boost's Beta overflowed (exit 5)
    ({"effect": float("nan")}, r"the effect \(an error-rate multiplier\) must be finite"),
    ({"traffic": 1e-300}, r"traffic share must be in \[1e-06, 1 - 1e-06\], got 1e-300"),
    ({"rps": 1e300}, r"rps x interval must be in \(0, 1e\+12\]"),
    ({"runs": 10**6, "duration": 3600}, r"1,000,000 runs x 60 looks .* is more than the 5,000,000"),
])
def test_simulation_refuses_nan_and_work_it_cannot_finish(kwargs: dict[str, float], message: str) -> None:
    """NaN fails every comparison, so each bound is written to refuse it; absurd sizes are refused up front."""
    args = {"rps": 100.0, "traffic": 0.05, "baseline_rate": 0.01, "effect": 2.0, "duration": 600.0,
            "rng": np.random.default_rng(0)} | kwargs
    with pytest.raises(SimulationError, match=message):
        simulate_detection(**args)  # type: ignore[arg-type]


def test_time_to_power() -> None:
    """time_to_power is the order statistic of the detection times."""
    from mlplat.analysis import DetectionSimulation

    sim = DetectionSimulation(detect_times=np.array([60.0, 120.0, 180.0, np.inf]), interval=60, duration=240)
    assert sim.time_to_power(0.5) == 120.0
    assert sim.power() == 0.75
    assert pd.isna(sim.time_to_power(1.0)) or np.isinf(sim.time_to_power(1.0))


def test_power_interval_is_clopper_pearson() -> None:
    """The plan's power carries its simulation error: the exact binomial interval of runs that detected.

    Reference: statsmodels 0.15.0 ``proportion_confint(278, 500, alpha=0.05, method="beta")`` =
    (0.511226988439975, 0.6001071221297423); at 0 and 500 of 500 the interval reaches 0 and 1.
    """
    from mlplat.analysis._plan import binomial_interval

    assert_allclose(binomial_interval(278 / 500, 500), (0.511226988439975, 0.6001071221297423), rtol=1e-9)
    assert binomial_interval(0.0, 500)[0] == 0.0 and binomial_interval(1.0, 500)[1] == 1.0
    result = plan(rps=278, baseline_rate=0.001, traffic=[0.05], effects=[2.0], runs=200, seed=4)
    (cell,) = result.to_dict()["cells"]
    low, high = cell["power_ci"]
    assert low <= cell["power"] <= high and high - low < 0.2


def test_plan_cell_time_to_power_takes_only_the_shares_it_measured() -> None:
    """A cell holds the 80% and 95% times only; any other share answered with the 95% time, silently."""
    cell = plan(rps=278, baseline_rate=0.001, traffic=[0.05], effects=[3.0], runs=50, seed=1).cells[0]
    assert cell.time_to_power(0.8) == cell.time_to_80 and cell.time_to_power(0.95) == cell.time_to_95
    with pytest.raises(ConfigError, match=r"`target` must be 0.8 or 0.95 \(the shares the plan measures\), got 0.5"):
        cell.time_to_power(0.5)
