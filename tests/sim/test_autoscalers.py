"""The HPA and KPA control loops, driven by a step in load."""

from __future__ import annotations

from dataclasses import replace
from itertools import pairwise

import numpy as np
import pytest

from mlplat.sim import Hpa, Kpa, PoolSpec, Scenario, simulate_pool
from mlplat.sim._simulate import _pool_spec


def _step_load(rate_low: float, rate_high: float, switch: float, end: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    low = rng.uniform(0, switch, rng.poisson(rate_low * switch))
    high = rng.uniform(switch, end, rng.poisson(rate_high * (end - switch)))
    return np.sort(np.concatenate((low, high)))


def test_hpa_scale_up_is_rate_limited_and_scale_down_stabilised() -> None:
    """HPA: pods grow by at most max(4, 100%) per 15 s sync and shrink only after the 300 s window."""
    a = _step_load(1.0, 40.0, 300.0, 900.0)
    a = np.concatenate((a, 900.0 + np.sort(np.random.default_rng(1).uniform(0, 900, 900))))
    s = np.full(len(a), 0.5)
    spec = PoolSpec(slots=1, startup_s=5.0, min_instances=1, max_instances=100, on_demand=False, queue=True,
                    initial=1, autoscaler=Hpa())
    run = simulate_pool(spec, a, s, (0.0, 1800.0))
    # 40/s x 0.5 s = 20 busy slots at 70% target -> ceil(20 / 0.7) = 29 pods; the backlog built while pods
    # were added 4 at a time keeps them saturated, so the HPA overshoots before the queue drains.
    assert 29 <= run.peak_instances <= 120
    # After the load drops to 1/s at 900 s, the 300 s stabilisation window keeps the pods until ~1200 s.
    late = simulate_pool(spec, a, s, (1000.0, 1150.0))
    assert late.instance_seconds / 150.0 >= 20
    assert np.all(np.isfinite(run.finish))
    # The first minutes after the step queue: saturated pods read as 100% busy, so each sync asks for at
    # most ceil(pods / 0.7) (1 -> 2 -> 3 -> 5 ...) until the new pods are ready.
    waits = (run.start - a)[(a > 300) & (a < 330)]
    assert waits.mean() > 1.0
    assert (run.start - a)[(a > 800) & (a < 900)].mean() < 0.1


def _pods_after_syncs(spec: PoolSpec, a: np.ndarray, s: np.ndarray, syncs: range, period: float = 15.0) -> list[float]:
    # Pods alive between sync k and sync k + 1 (nothing else changes the count when pods never expire):
    # the mean over the second (period k + 1, period k + 2).
    return [simulate_pool(spec, a, s, (period * k + 1.0, period * k + 2.0)).instance_seconds for k in syncs]


def test_hpa_scale_up_limit_per_period() -> None:
    """A step to 100 busy slots at a 10% target asks for 10x the pods; each sync adds at most max(4, 100%)."""
    a = np.arange(0.0, 150.0, 0.01)
    s = np.full(len(a), 1.0)
    spec = PoolSpec(slots=1, startup_s=5.0, min_instances=1, max_instances=1000, on_demand=False, queue=True,
                    initial=1, autoscaler=Hpa(target=0.1))
    pods = _pods_after_syncs(spec, a, s, range(8))
    # Kubernetes default scale-up policies (Pods 4 and Percent 100 per 15 s, the larger wins):
    # 1 -> max(1 + 4, 2) = 5 -> max(9, 10) = 10 -> 20 -> 40 ...
    assert pods == [1, 5, 10, 20, 40, 80, 160, 320]
    assert all(b <= max(p + 4, 2 * p) for p, b in pairwise(pods))


def test_hpa_scale_up_limit_counts_the_last_15_s_whatever_the_sync_period() -> None:
    """Syncing every 5 s, the HPA adds at most max(4, 100%) of the pods it had 15 s before, not per sync."""
    a = np.arange(0.0, 60.0, 0.01)  # 100 busy slots at a 10% target: each sync asks for 10x the pods
    s = np.full(len(a), 1.0)
    spec = PoolSpec(slots=1, min_instances=1, max_instances=1000, on_demand=False, queue=True, initial=1,
                    autoscaler=Hpa(target=0.1, period=5.0))
    # Kubernetes' default scale-up policies (Pods 4, Percent 100) have periodSeconds 15; the limit grows from
    # the replicas at the start of the last 15 s, the changes after now - 15 s taken off
    # (getReplicasChangePerPeriod in pkg/controller/podautoscaler/horizontal.go). The scale-up at 5 s leaves
    # that window at 20 s: 1 -> 5, held until 20 s -> 10, held until 35 s -> 20.
    assert _pods_after_syncs(spec, a, s, range(9), period=5.0) == [1, 5, 5, 5, 10, 10, 10, 20, 20]


def test_hpa_scale_down_waits_for_stabilisation_window() -> None:
    """After the load stops at 600 s, 15 pods stay until the 300 s window holds no high recommendation (900 s)."""
    a = np.arange(0.0, 600.0, 0.05)  # 20/s x 0.5 s = 10 busy slots -> ceil(10 / 0.7) = 15 pods
    s = np.full(len(a), 0.5)
    spec = PoolSpec(slots=1, startup_s=5.0, min_instances=1, max_instances=100, on_demand=False, queue=True,
                    initial=15, autoscaler=Hpa())
    # The last sync that saw the load is at 600 s; its recommendation (15) leaves the window at 900 s, when it
    # is 300 s old: Kubernetes keeps only recommendations after now - window (stabilizeRecommendationWithBehaviors
    # in pkg/controller/podautoscaler/horizontal.go, timestamp.After(downCutoff)).
    assert _pods_after_syncs(spec, a, s, range(40, 64)) == [15] * 20 + [1] * 4
    no_window = replace(spec, autoscaler=Hpa(stabilization=0.0))
    assert _pods_after_syncs(no_window, a, s, range(40, 42)) == [15, 1]


def test_hpa_tolerance() -> None:
    """Within 10% of the target the HPA leaves the pods alone; with no tolerance it scales."""
    a = np.arange(0.0, 300.0, 0.05)  # 10 busy slots on 14 pods: 10 / (14 x 0.7) = 1.02 of the target
    s = np.full(len(a), 0.5)
    spec = PoolSpec(slots=1, min_instances=1, max_instances=100, on_demand=False, queue=True, initial=14,
                    autoscaler=Hpa())
    assert _pods_after_syncs(spec, a, s, range(1, 10)) == [14] * 9
    strict = replace(spec, autoscaler=Hpa(tolerance=0.0))
    assert _pods_after_syncs(strict, a, s, range(1, 10)) == [15] * 9


def test_autoscaler_defaults_reach_the_engine() -> None:
    """Scenario defaults become the documented HPA and KPA settings in the event loop."""
    sc = Scenario.model_validate({
        "duration": "1h", "workload": {"kind": "poisson", "rate": 1},
        "service": {"warm": {"dist": "constant", "mean_ms": 100}},
        "platforms": [{"name": "k8s", "kind": "kubernetes", "node": "m5.xlarge"},
                      {"name": "kn", "kind": "knative", "node": "m5.xlarge"}]})
    hpa = _pool_spec(sc.platforms[0], sc).autoscaler
    kpa = _pool_spec(sc.platforms[1], sc).autoscaler
    # Kubernetes "Horizontal Pod Autoscaling": 15 s sync, 10% tolerance, scale-up max(4 pods, 100%) per
    # period, 300 s scale-down stabilization.
    assert hpa == Hpa(target=0.7, period=15.0, tolerance=0.1, stabilization=300.0, up_pods=4, up_percent=100.0)
    # Knative "Configuring the autoscaler": 60 s stable window, 6 s panic window (10%), 200% panic
    # threshold, 30 s scale-to-zero grace, target 100 concurrent at 70% utilisation, 2 s tick.
    assert kpa == Kpa(target=70.0, stable_window=60.0, panic_window=6.0, panic_threshold=2.0,
                      scale_to_zero_grace=30.0, tick=2.0)


@pytest.mark.parametrize(("keys", "target", "slots"), [
    ({}, 70.0, 100),
    ({"target_concurrency": 4}, 2.8, 4),
    ({"container_concurrency": 4}, 2.8, 4),
    ({"target_concurrency": 10, "container_concurrency": 4}, 2.8, 4),
    ({"target_concurrency": 2, "container_concurrency": 4}, 1.4, 4),
    ({"container_concurrency": 200}, 140.0, 200),
])
def test_kpa_target_is_the_smaller_of_the_soft_target_and_container_concurrency(
        keys: dict[str, float], target: float, slots: int) -> None:
    """The KPA aims at container_concurrency when no soft target is set, at the smaller of the two when both
    are, and at Knative's default 100 when neither is; times the 70% target utilisation."""
    # Knative "Configuring concurrency": "If both a soft and a hard limit are specified, the smaller of the two
    # values will be used"; knative/serving pkg/reconciler/autoscaling/resources/target.go (ResolveMetricTarget)
    # takes containerConcurrency as the target when no target annotation is set.
    sc = Scenario.model_validate({
        "duration": "1h", "workload": {"kind": "poisson", "rate": 1},
        "service": {"warm": {"dist": "constant", "mean_ms": 100}},
        "platforms": [{"name": "kn", "kind": "knative", "node": "m5.xlarge", **keys}]})
    spec = _pool_spec(sc.platforms[0], sc)
    assert isinstance(spec.autoscaler, Kpa)
    assert spec.autoscaler.target == pytest.approx(target, rel=1e-12)
    assert spec.slots == slots


def test_kpa_panics_and_scales_to_zero() -> None:
    """KPA: a burst triggers panic mode (fast scale-up); after traffic stops, pods go to zero."""
    rng = np.random.default_rng(3)
    burst = np.sort(rng.uniform(100, 400, 300 * 30))
    s = np.full(len(burst), 0.4)
    spec = PoolSpec(slots=4, startup_s=3.0, min_instances=0, max_instances=50, on_demand=False, queue=True,
                    initial=0, autoscaler=Kpa(target=2.8), pods_per_node=1, node_provision_s=0.0,
                    node_scale_down_s=60.0)
    run = simulate_pool(spec, burst, s, (0.0, 1200.0))
    # 30/s x 0.4 s = 12 concurrent, target 2.8 per pod -> 5 pods; the ~90 requests queued at the activator
    # during the first start-up count as concurrency too, so panic mode asks for more at first.
    assert 5 <= run.peak_instances <= 50
    assert run.cold[:5].all()  # the first requests meet zero pods and wait for one
    assert np.all(np.isfinite(run.finish))
    # Traffic ends at 400 s: 60 s stable window + 30 s grace, then zero pods; nodes follow 60 s later.
    steady = simulate_pool(spec, burst, s, (250.0, 400.0))
    assert 4.0 <= steady.instance_seconds / 150.0 <= 7.0
    after = simulate_pool(spec, burst, s, (600.0, 1200.0))
    assert after.instance_seconds == 0 and after.node_seconds == 0


def test_kpa_panic_window_threshold_and_hold() -> None:
    """A 20 s burst to 10x the load: the 6 s panic window scales up within seconds and holds for 60 s."""
    # 3 requests in flight (5/s x 0.6 s), then 30 from 300 s to 320 s; target 7 per pod, no queueing.
    a = np.concatenate((np.arange(0, 300, 0.2), np.arange(300, 320, 0.02), np.arange(320, 600, 0.2)))
    s = np.full(len(a), 0.6)
    spec = PoolSpec(slots=100, startup_s=1.0, min_instances=1, max_instances=50, on_demand=False, queue=True,
                    initial=1, autoscaler=Kpa(target=7.0))

    def pods(spec: PoolSpec, t: float) -> float:
        # Pods between the KPA ticks at t and t + 2.
        return simulate_pool(spec, a, s, (t + 0.5, t + 1.0)).instance_seconds / 0.5

    # At 302 s the panic window asks for 2 pods against 1 ready (200%: panic); by 306 s ceil(30 / 7) = 5.
    assert [pods(spec, t) for t in (300, 302, 304, 306)] == [1, 2, 3, 5]
    # Panic mode never scales down: 5 pods until a stable window (60 s) after panic began at 302 s, then
    # at most halving per tick.
    assert all(pods(spec, t) == 5 for t in range(306, 362, 4))
    assert pods(spec, 362) == 2
    # Without panic (threshold never reached) the 60 s stable window reacts only after ~10 s, to 2 pods.
    calm = replace(spec, autoscaler=Kpa(target=7.0, panic_threshold=1000.0))
    assert [pods(calm, t) for t in (306, 310, 330)] == [1, 2, 2]


def test_no_autoscaler_tick_after_the_horizon() -> None:
    """A 10 s run with a 15 s HPA sync has no sync: the first one was scheduled past the horizon anyway and
    started pods for the queued requests, flagging half of them cold (found by a review pass)."""
    a = np.linspace(0.0, 9.9, 100)
    spec = PoolSpec(slots=1, min_instances=1, max_instances=100, on_demand=False, queue=True, initial=1,
                    autoscaler=Hpa())
    run = simulate_pool(spec, a, np.full(len(a), 0.5), (0.0, 10.0))
    assert run.peak_instances == 1 and not run.cold.any()
