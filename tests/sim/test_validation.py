"""The simulator against closed forms (Erlang B and C) and against SimFaaS's published numbers."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from numpy.testing import assert_allclose

from mlplat.errors import SimulationError
from mlplat.sim import Estimate, Scenario, erlang_b, erlang_c, simulate, simulate_levels, simulate_pool
from mlplat.sim._pool import PoolSpec


def assert_in_narrow_ci(estimate: Estimate, reference: float, rel_half_width: float) -> None:
    """The reference lies in the 95% CI, and the CI is narrow enough for that to be a real check."""
    assert estimate.contains(reference), (estimate, reference)
    assert (estimate.high - estimate.low) / 2 <= rel_half_width * reference, (estimate, reference)


def test_erlang_c_reference_values() -> None:
    """Erlang C matches the values quoted in issue 5 (computed with the recursion, 10 digits)."""
    # M/M/10, lambda = 8, mu = 1: P(wait) = 0.4091801508, Wq = 0.2045900754 s (issue 5; Kleinrock 1975 3.5).
    assert_allclose(erlang_c(10, 8.0), (0.4091801508, 0.2045900754), rtol=1e-9)
    # M/M/5, lambda = 4: P(wait) = Wq = 0.5541125541.
    assert_allclose(erlang_c(5, 4.0), (0.5541125541, 0.5541125541), rtol=1e-9)
    with pytest.raises(SimulationError, match=r"Erlang C needs `load` < `servers` \(2\) for a steady state, got 2.0"):
        erlang_c(2, 2.0)


def _fixed_pool(make_scenario: Callable[..., Scenario], servers: int, rate: float) -> Scenario:
    return make_scenario(
        duration=10_000, warmup=500, replications=8,
        workload={"kind": "poisson", "rate": rate},
        service={"warm": {"dist": "exponential", "mean_ms": 1000}},
        platforms=[{"name": "k8s", "kind": "kubernetes", "node": "m5.xlarge", "pods_per_node": 100,
                    "pod_concurrency": 1, "min_replicas": servers, "max_replicas": servers, "cold_start": False,
                    "autoscaler": {"kind": "fixed"}}])


@pytest.mark.parametrize(("servers", "rate", "p_wait", "wq"), [
    # Issue 5: M/M/10 with lambda = 8/s, mean service 1 s (Erlang C).
    (10, 8.0, 0.4091801508, 0.2045900754),
    # Issue 5: M/M/5 with lambda = 4/s: P(wait) = Wq = 0.5541125541.
    (5, 4.0, 0.5541125541, 0.5541125541),
])
def test_fixed_replicas_is_mmc(make_scenario: Callable[..., Scenario], servers: int, rate: float,
                               p_wait: float, wq: float) -> None:
    """Fixed Kubernetes replicas with one request per pod are M/M/c: Erlang C inside the replication CIs."""
    result = simulate(_fixed_pool(make_scenario, servers, rate), seed=5).platform("k8s")
    # Half-widths with this seed: P(wait) 1.4-1.6% of the reference, Wq 6-7%.
    assert_in_narrow_ci(result.metrics["wait_probability"], p_wait, 0.05)
    assert_in_narrow_ci(result.metrics["mean_wait_s"], wq, 0.15)
    assert result["cold_start_fraction"] == 0


def test_capped_function_is_erlang_b(make_scenario: Callable[..., Scenario]) -> None:
    """A function capped at c concurrent executions, no queue, no expiry: blocking = Erlang B."""
    sc = make_scenario(duration=20_000, warmup=1000, replications=6,
                       workload={"kind": "poisson", "rate": 3.0},
                       service={"warm": {"dist": "exponential", "mean_ms": 1000}},
                       platforms=[{"name": "fn", "kind": "lambda", "max_concurrency": 4, "keep_alive": "100d"}])
    result = simulate(sc, seed=3).platform("fn")
    # Erlang B(4, 3) = (3^4/4!) / sum_{k<=4} 3^k/k! = 3.375 / 16.375 = 0.2061068702 (Erlang 1917).
    assert_allclose(erlang_b(4, 3.0), 0.2061068702, rtol=1e-9)
    assert_in_narrow_ci(result.metrics["rejection_fraction"], erlang_b(4, 3.0), 0.05)


def test_simfaas_readme_case() -> None:
    """SimFaaS README: lambda 0.9/s, warm 1.991 s, cold 2.244 s, keep-alive 600 s -> P(cold) 0.0013-0.0014,
    about 7.70 instances of which about 1.79 running (Mahmoudi & Khazaei 2021, github.com/pacslab/simfaas)."""
    rng = np.random.default_rng(2021)
    n = 1_000_000
    a = np.cumsum(rng.exponential(1 / 0.9, n))
    s = rng.exponential(1.991, n)
    # Cold requests take 2.244 s in SimFaaS: modelled as warm service plus 0.253 s of start-up.
    run = simulate_levels(a, s, 2.244 - 1.991, 600.0, 10**9, 0, (0.0, float(a[-1])))
    assert 0.0013 <= run.cold.mean() <= 0.0014
    assert_allclose(run.instance_seconds / a[-1], 7.70, rtol=0.01)
    assert_allclose(run.occupancy.sum() / a[-1], 1.79, rtol=0.01)


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize(("cap", "provisioned", "keep_alive"), [(10**6, 0, 600.0), (3, 0, 60.0), (8, 2, 30.0)])
def test_level_model_equals_event_loop(seed: int, cap: int, provisioned: int, keep_alive: float) -> None:
    """The vectorised Lambda model and the event loop give the same flags and instance-seconds."""
    rng = np.random.default_rng(seed)
    n = 20_000
    a = np.cumsum(rng.exponential(1 / 1.5, n))
    s = rng.lognormal(0.0, 1.0, n)
    horizon = (100.0, float(a[-1]))
    fast = simulate_levels(a, s, 2.0, keep_alive, cap, provisioned, horizon, chunk=4096, max_work=None)
    slow = simulate_pool(PoolSpec(slots=1, startup_s=2.0, keep_alive=keep_alive, max_instances=cap,
                                  min_instances=provisioned, initial=provisioned), a, s, horizon)
    np.testing.assert_array_equal(fast.cold, slow.cold)
    np.testing.assert_array_equal(fast.rejected, slow.rejected)
    assert_allclose(fast.instance_seconds, slow.instance_seconds, rtol=1e-9)
    assert fast.peak_instances == max(slow.peak_instances, provisioned)
    # Past its work budget the level model hands the run to the event loop: the same flags and integrals.
    handed = simulate_levels(a, s, 2.0, keep_alive, cap, provisioned, horizon, chunk=4096, max_work=1)
    for field in ("cold", "rejected", "provisioned", "occupancy"):
        np.testing.assert_array_equal(getattr(handed, field), getattr(fast, field), err_msg=field)
    assert_allclose(handed.instance_seconds, fast.instance_seconds, rtol=1e-9)
    assert handed.peak_instances == fast.peak_instances


def test_cloud_run_at_max_instances_is_erlang_b(make_scenario: Callable[..., Scenario]) -> None:
    """One always-on Cloud Run instance with 4 slots rejects like M/M/4/4: Erlang B(4, 3) = 0.2061068702."""
    sc = make_scenario(duration=20_000, warmup=1000, replications=5,
                       workload={"kind": "poisson", "rate": 3.0},
                       service={"warm": {"dist": "exponential", "mean_ms": 1000}},
                       platforms=[{"name": "run", "kind": "cloud_run", "concurrency": 4, "min_instances": 1,
                                   "max_instances": 1}])
    run = simulate(sc, seed=8).platform("run")
    assert_in_narrow_ci(run.metrics["rejection_fraction"], erlang_b(4, 3.0), 0.05)
    assert run["mean_instances"] == pytest.approx(1.0)


@pytest.mark.slow
def test_wait_ci_coverage_mm5(make_scenario: Callable[..., Scenario]) -> None:
    """Seeded Monte Carlo: the 95% CI of the M/M/5 mean wait covers Erlang C's 0.5541 in >= 34 of 40 runs."""
    sc = _fixed_pool(make_scenario, 5, 4.0).model_copy(update={"duration": 3000.0, "warmup": 300.0,
                                                               "replications": 5})
    hits = sum(simulate(sc, seed=seed).platform("k8s").metrics["mean_wait_s"].contains(0.5541125541)
               for seed in range(40))
    # With true coverage 0.95, P(hits < 34 of 40) = 0.0034 (scipy.stats.binom.cdf(33, 40, 0.95)); the bound
    # leaves room for the small bias of 5 short replications with t-intervals.
    assert hits >= 34
