"""Bills computed by hand from simulated usage, and the platforms' cost structure."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from mlplat.errors import SimulationError
from mlplat.sim import Scenario, load_pricing, prepare, simulate, sweep
from mlplat.sim._simulate import run_platform

MONTH = 30 * 86400.0


def test_lambda_bill_by_hand(make_scenario: Callable[..., Scenario]) -> None:
    """Lambda cost = GB-s x $0.0000166667 + requests x $0.20/1M, scaled from the window to 30 days."""
    sc = make_scenario(duration=7200, warmup=600, replications=1,
                       service={"warm": {"dist": "constant", "mean_ms": 250.4},
                                "cold_start": {"image_pull_s": 1.0, "init_s": 0.3, "model_load_s": 0.7}},
                       platforms=[{"name": "fn", "kind": "lambda", "memory_gb": 2}])
    prices = load_pricing().table
    rng = np.random.default_rng(7)
    a = np.sort(rng.uniform(0, 7200, 10_000))
    s = np.full(len(a), 0.2504)
    m = run_platform(sc.platforms[0], sc, prices, a, s)
    requests = int(((a >= 600) & (a < 7200)).sum())
    cold = m["cold_starts"]
    # Billed duration per request: 251 ms (rounded up to 1 ms); a cold start also bills INIT = init + model
    # load = 1.0 s (the image pull is not billed). 2 GB of memory.
    gb_seconds = (requests * 0.251 + cold * 1.0) * 2
    assert m["usage_gb_seconds"] == pytest.approx(gb_seconds, rel=1e-9)
    window_cost = gb_seconds * 0.0000166667 + requests * 0.20 / 1e6
    assert m["cost_per_month"] == pytest.approx(window_cost * MONTH / 6600, rel=1e-9)
    assert m["cost_per_million"] == pytest.approx(window_cost / requests * 1e6, rel=1e-9)
    assert m["cost_compute"] + m["cost_requests"] == pytest.approx(m["cost_per_month"])


def test_provisioned_concurrency_billed_idle(make_scenario: Callable[..., Scenario]) -> None:
    """Provisioned concurrency is billed while idle and removes cold starts below its level."""
    sc = make_scenario(duration="1d", workload={"kind": "poisson", "rate": "0.005/s"},
                       platforms=[{"name": "fn", "kind": "lambda", "memory_gb": 2, "keep_alive": "1m"},
                                  {"name": "pc", "kind": "lambda", "memory_gb": 2, "keep_alive": "1m",
                                   "provisioned_concurrency": 2}])
    result = simulate(sc, seed=1)
    fn, pc = result.platform("fn"), result.platform("pc")
    assert fn["cold_start_fraction"] > 0.5
    assert pc["cold_start_fraction"] < 0.01
    # 2 instances x 2 GB x 30 days x $0.0000041667 per GB-s.
    assert pc["cost_provisioned_idle"] == pytest.approx(2 * 2 * MONTH * 0.0000041667, rel=1e-9)
    assert pc["mean_instances"] >= 2


def test_kubernetes_bills_nodes_and_control_plane(make_scenario: Callable[..., Scenario]) -> None:
    """Fixed pods on one m5.xlarge cost $0.192/h plus the $0.10/h EKS fee, whatever the traffic."""
    sc = make_scenario(platforms=[{"name": "k8s", "kind": "kubernetes", "node": "m5.xlarge", "pods_per_node": 4,
                                   "pod_concurrency": 4, "min_replicas": 2, "max_replicas": 2,
                                   "autoscaler": {"kind": "fixed"}}])
    k8s = simulate(sc, seed=2).platform("k8s")
    assert k8s["cost_nodes"] == pytest.approx(0.192 * 720, rel=1e-9)
    assert k8s["cost_control_plane"] == pytest.approx(0.10 * 720, rel=1e-9)
    assert k8s["mean_nodes"] == pytest.approx(1.0)


def test_a_bill_that_overflows_is_refused_naming_the_platform(make_scenario: Callable[..., Scenario]) -> None:
    """A bill that comes out inf is an error naming the platform, not a '-' in the cost column."""
    sc = make_scenario(platforms=[{"name": "k8s", "kind": "kubernetes", "node": "m5.xlarge",
                                   "autoscaler": {"kind": "fixed"}}])
    prepared = prepare(sc)
    table = prepared.pricing.table
    # The pricing model refuses such a price; bypass it to reach the last check, after the bill.
    hour = table.eks.cluster_hour.model_copy(update={"usd": 1e308})
    table = table.model_copy(update={"eks": table.eks.model_copy(update={"cluster_hour": hour})})
    prepared = replace(prepared, pricing=replace(prepared.pricing, table=table))
    with pytest.raises(SimulationError, match=r"^platforms\[0\]: the bill of 'k8s' is not a finite number "
                                              r"\(cost_control_plane\)"):
        simulate(prepared, replications=1)


def test_overloaded_pool_is_busy_at_most_all_its_slots(make_scenario: Callable[..., Scenario]) -> None:
    """Two fixed pods of 4 slots at 200 ms serve 40 req/s; offered 100 req/s, every slot is busy: 100%, not 250%.

    Busy time is counted inside the measured window; the queue holds most requests past its end."""
    sc = make_scenario(duration="20m", warmup="5m", replications=1, workload={"kind": "poisson", "rate": "100/s"},
                       service={"warm": {"dist": "constant", "mean_ms": 200}, "cold_start": {"init_s": 0.5}},
                       platforms=[{"name": "k8s", "kind": "kubernetes", "node": "m5.xlarge", "pods_per_node": 4,
                                   "pod_concurrency": 4, "min_replicas": 2, "max_replicas": 2,
                                   "autoscaler": {"kind": "fixed"}}])
    k8s = simulate(sc, seed=3).platform("k8s")
    assert 0.999 <= k8s["utilization"] <= 1.0 + 1e-9
    assert k8s["mean_busy"] == pytest.approx(8.0, rel=1e-3)
    # Well over half the window's arrivals still wait when it closes, at the pool's largest size.
    assert k8s["backlog_fraction"] > 0.5 and k8s["at_max_size"] == 1
    (note,) = k8s.notes
    assert "still queued when the run ended: the load is more than it serves at its largest size" in note


def test_backlog_below_the_largest_size_is_not_called_overload(make_scenario: Callable[..., Scenario],
                                                              tmp_path: Path) -> None:
    """A burst in the last 10 s after an idle hour waits for a node (90 s) on a scaled-to-zero Knative: the
    note says the requests were waiting for instances or nodes, not that the load is too much."""
    (tmp_path / "ts.txt").write_text("\n".join(["10"] + [f"{3590 + i * 0.05:.2f}" for i in range(200)]) + "\n")
    sc = make_scenario(duration="1h", warmup="1s", replications=1,
                       workload={"kind": "trace", "path": "ts.txt", "format": "timestamps"},
                       platforms=[{"name": "kn", "kind": "knative", "node": "c6i.xlarge", "target_concurrency": 4}])
    kn = simulate(prepare(sc, base=tmp_path), seed=1).platforms[0]
    assert kn["backlog_fraction"] > 0.9 and kn["at_max_size"] == 0
    (note,) = kn.notes
    assert "still queued when the run ended: they were waiting for instances or nodes to start" in note


def test_overloaded_fixed_deployment_is_at_its_largest_size(make_scenario: Callable[..., Scenario]) -> None:
    """A fixed Deployment of one pod offered twice what it serves is at its largest size (its replicas, not
    max_replicas), so the note calls the backlog overload rather than pods still starting."""
    sc = make_scenario(duration="10m", warmup="0s", workload={"kind": "poisson", "rate": "2/s"},
                       service={"warm": {"dist": "constant", "mean_ms": 1000}},
                       platforms=[{"name": "k8s", "kind": "kubernetes", "node": "m5.xlarge", "min_replicas": 1,
                                   "autoscaler": {"kind": "fixed"}}])
    k8s = simulate(sc, seed=1).platform("k8s")
    assert k8s["backlog_fraction"] > 0.4 and k8s["at_max_size"] == 1
    (note,) = k8s.notes
    assert "still queued when the run ended: the load is more than it serves at its largest size" in note


def test_cloud_run_gpu_instance_billing(make_scenario: Callable[..., Scenario]) -> None:
    """Cloud Run with an L4 bills instance-seconds x (vCPU, GiB, GPU rates); min instances never stop."""
    sc = make_scenario(platforms=[{"name": "run", "kind": "cloud_run", "vcpu": 4, "memory_gib": 16, "gpu": "l4",
                                   "concurrency": 4, "min_instances": 1, "max_instances": 1}],
                       workload={"kind": "poisson", "rate": "0.1/s"})
    run = simulate(sc, seed=2).platform("run")
    per_second = 4 * 0.000018 + 16 * 0.000002
    assert run["mean_instances"] == pytest.approx(1.0)
    assert run["cost_compute"] == pytest.approx(per_second * MONTH, rel=1e-9)
    assert run["cost_gpu"] == pytest.approx(0.0001867 * MONTH, rel=1e-9)
    assert run["cost_requests"] == 0


def test_free_tier_flag(make_scenario: Callable[..., Scenario]) -> None:
    """With free_tier the monthly free GB-seconds and requests are subtracted (a small function is free)."""
    paid = simulate(make_scenario(workload={"kind": "poisson", "rate": "0.01/s"})).platform("fn")
    free = simulate(make_scenario(workload={"kind": "poisson", "rate": "0.01/s"}, free_tier=True)).platform("fn")
    assert paid["cost_per_month"] > 0
    assert free["cost_per_month"] == 0


def test_free_tier_covers_cloud_run_instance_billing(make_scenario: Callable[..., Scenario]) -> None:
    """Instance billing has its own monthly free tier, 240,000 vCPU-s and 450,000 GiB-s, subtracted as well."""
    sc = make_scenario(replications=1, platforms=[{"name": "run", "kind": "cloud_run", "vcpu": 1, "memory_gib": 2,
                                                   "billing": "instance"}])
    paid = simulate(sc, seed=6).platform("run")
    free = simulate(sc.model_copy(update={"free_tier": True}), seed=6).platform("run")
    # Cloud Run pricing (cloud.google.com/run/pricing), Tier 1, instance-based billing: $0.000018 per vCPU-s and
    # $0.000002 per GiB-s beyond 240,000 vCPU-s and 450,000 GiB-s a month free (the free tier from a third-party
    # summary, unconfirmed on the page itself; docs/sim.md says where).
    vcpu_s = paid["usage_billed_instance_seconds"] * MONTH / 3300 * 1
    gib_s = paid["usage_billed_instance_seconds"] * MONTH / 3300 * 2
    assert vcpu_s > 240_000 and gib_s > 450_000
    assert paid["cost_compute"] == pytest.approx(vcpu_s * 0.000018 + gib_s * 0.000002, rel=1e-9)
    assert free["cost_compute"] == pytest.approx((vcpu_s - 240_000) * 0.000018 + (gib_s - 450_000) * 0.000002,
                                                 rel=1e-9)


def test_runs_repeat_exactly(make_scenario: Callable[..., Scenario]) -> None:
    """The same seed gives the same numbers, scale-downs and node choices included."""
    sc = make_scenario(workload={"kind": "bursty", "on_rate": "20/s", "off_rate": "0.01/s", "mean_on": "2m",
                                 "mean_off": "8m"},
                       platforms=[{"name": "kn", "kind": "knative", "node": "c6i.xlarge", "pods_per_node": 2,
                                   "target_concurrency": 2, "max_scale": 10},
                                  {"name": "k8s", "kind": "kubernetes", "node": "m5.xlarge", "max_replicas": 8}])
    first = simulate(sc, seed=4).to_dict()
    second = simulate(sc, seed=4).to_dict()
    first.pop("elapsed_s")
    second.pop("elapsed_s")
    assert first == second


def test_break_even_and_cheapest_meeting_slo() -> None:
    """Cost curves cross where log-log interpolation says; the cheapest skips a platform missing the SLO."""
    from mlplat.sim import SweepResult
    from mlplat.sim._results import break_evens

    rates = (1.0, 100.0)
    # fn's cost grows with the rate (1 -> 100), k8s is flat at 10: equal at sqrt(1 x 100) = 10 in log-log.
    costs = {"fn": (1.0, 100.0), "k8s": (10.0, 10.0), "run": (0.5, 50.0)}
    found = break_evens(rates, ("fn", "k8s", "run"), costs)
    assert [(b.cheaper_below, b.cheaper_above) for b in found] == [("fn", "k8s"), ("run", "k8s")]
    assert found[0].rate == pytest.approx(10.0, rel=1e-12)
    assert found[1].rate == pytest.approx(20.0, rel=1e-12)  # 0.5 x r = 10
    sweep = SweepResult(rates=rates, names=("fn", "k8s", "run"), cost_per_month=costs,
                        p99_ms={n: (100.0, 100.0) for n in costs}, slo_p99_ms=500.0,
                        slo_met={"fn": (True, True), "k8s": (False, True), "run": (False, False)})
    # run is the cheapest everywhere but misses the SLO; at 1/s k8s misses it too, so fn; at 100/s k8s.
    assert sweep.cheapest() == ["fn", "k8s"]


def test_too_few_requests_for_a_p99_are_named(make_scenario: Callable[..., Scenario]) -> None:
    """At 0.01 req/s for an hour each replication measures about 33 requests: the result says its p99 is
    about their maximum, a sweep names the rates where that happens, and enough requests say nothing."""
    sc = make_scenario(workload={"kind": "poisson", "rate": "0.01/s"})
    (warning,) = simulate(sc, seed=5).warnings
    assert warning.startswith("each replication measured about ") and "p99 is about the slowest" in warning
    assert simulate(make_scenario(), seed=5).warnings == []  # 2/s: about 6,600 requests
    swept = sweep(prepare(sc), [0.01, 2.0], seed=5)
    assert len(swept.requests) == 2 and swept.requests[0] < 100 < swept.requests[1]
    (warning,) = swept.warnings
    assert warning.startswith("at 0.01 req/s each replication measured under 100 requests")
    assert swept.to_dict()["warnings"] == [warning]


def test_slo_verdict_is_unsure_when_its_ci_spans_the_bound(make_scenario: Callable[..., Scenario]) -> None:
    """With the SLO set at the run's own mean p99, the p99's CI spans it: the verdict stands (the mean is
    compared) but is marked unsure, with a note naming the CI; an SLO far above the CI is sure."""
    from mlplat.cli._output import Output, Settings
    from mlplat.cli.sim import render_result

    first = simulate(make_scenario(replications=4), seed=2).platforms[0]
    p99 = first.metrics["p99"]
    assert p99.low < p99.mean < p99.high
    at_bound = simulate(make_scenario(replications=4, slo={"p99_ms": p99.mean * (1 + 1e-9)}), seed=2)
    (platform,) = at_bound.platforms
    assert platform.slo_met and platform.slo_unsure
    assert platform.to_dict()["slo_unsure"] is True
    (note,) = [n for n in platform.notes if n.startswith("SLO verdict unsure")]
    assert f"its p99's 95% CI ({p99.low:,.0f} to {p99.high:,.0f} ms) spans the SLO's" in note
    console = Output(Settings()).out
    with console.capture() as captured:
        console.print(render_result(at_bound))
    assert "yes?" in captured.get() and "fn (unsure: see its note)" in captured.get()
    sure = simulate(make_scenario(replications=4, slo={"p99_ms": p99.high * 2}), seed=2).platforms[0]
    assert sure.slo_met and not sure.slo_unsure
    assert not any(n.startswith("SLO verdict unsure") for n in sure.notes)


def test_slo_doubt_names_a_throttled_share_that_spans_the_bound(make_scenario: Callable[..., Scenario]) -> None:
    """A throttled share whose CI spans `max_rejection` makes the verdict unsure; a CI of one point does not."""
    from mlplat.sim._results import Estimate
    from mlplat.sim._simulate import _slo_doubt

    sc = make_scenario(slo={"p99_ms": 1000, "max_rejection": 0.01})
    metrics = {"p99": Estimate(400.0, 390.0, 410.0, 5), "rejection_fraction": Estimate(0.012, 0.004, 0.02, 5)}
    doubt = _slo_doubt(metrics, sc)
    assert doubt == ("SLO verdict unsure: its throttled share's 95% CI (0.40% to 2.00%) spans the SLO's 1.00%; "
                     "more replications (-r) narrow it")
    metrics["rejection_fraction"] = Estimate(0.0, 0.0, 0.0, 5)
    assert _slo_doubt(metrics, sc) is None
    metrics["p99"] = Estimate(400.0, math.nan, math.nan, 1)  # one replication: no CI, no doubt to state
    assert _slo_doubt(metrics, sc) is None


def test_sweep_table_marks_unsure_verdicts() -> None:
    """`sim compare` marks a rate whose SLO verdict is unsure with ?, beside ✗ when the mean misses, and says
    when the cheapest platform at a rate is not surely cheaper than the runner-up."""
    from mlplat.cli._output import Output, Settings
    from mlplat.cli.sim import render_sweep
    from mlplat.sim import Estimate, Margin, SweepResult

    margin = Margin("fn", "run", Estimate(0.5, -0.2, 1.2, 3))
    sweep = SweepResult(rates=(1.0, 100.0), names=("fn",), cost_per_month={"fn": (1.0, 100.0)},
                        p99_ms={"fn": (100.0, 900.0)}, slo_p99_ms=500.0, slo_met={"fn": (True, False)},
                        slo_unsure={"fn": (True, True)}, margins=(margin, None))
    console = Output(Settings()).out
    with console.capture() as captured:
        console.print(render_sweep(sweep))
    assert "$1.00 / 100 ?" in captured.get() and "$100 / 900 ✗?" in captured.get()
    assert "fn (not surely cheaper than run)" in captured.get()  # its paired saving's CI spans 0
    assert sweep.to_dict()["platforms"][0]["slo_unsure"] == [True, True]
    assert sweep.to_dict()["cheapest_margin"] == [margin.to_dict(), None]


def test_cheapest_margin_is_paired_over_replications(make_scenario: Callable[..., Scenario]) -> None:
    """The cheapest platform's saving over the runner-up is the mean of per-replication differences, with a
    paired t interval; it is sure only when that interval lies above 0, and the CLI says which."""
    from dataclasses import replace

    from mlplat.cli._output import Output, Settings
    from mlplat.cli.sim import render_result
    from mlplat.sim._results import Estimate

    sc = make_scenario(replications=4, slo={"p99_ms": 60_000}, platforms=[
        {"name": "fn", "kind": "lambda", "memory_gb": 2},
        {"name": "run", "kind": "cloud_run", "concurrency": 4}])
    result = simulate(sc, seed=3)
    margin = result.cheapest_margin()
    assert margin is not None and margin.cheapest == result.cheapest()
    costs = result.replication_costs
    want = Estimate.of([r - c for r, c in zip(costs[margin.runner_up], costs[margin.cheapest], strict=True)])
    assert margin.saving == want
    assert result.to_dict()["cheapest_margin"]["runner_up"] == margin.runner_up
    console = Output(Settings()).out

    def verdict(res: object) -> str:
        with console.capture() as captured:
            console.print(render_result(res))  # type: ignore[arg-type]
        return next(line for line in captured.get().splitlines() if line.startswith("cheapest meeting"))

    # Replace the per-replication costs: a steady saving is sure, one that changes sign is not.
    best, other = margin.cheapest, margin.runner_up
    sure = replace(result, replication_costs={best: (10.0, 11.0, 12.0, 13.0), other: (20.0, 21.5, 22.0, 23.5)})
    assert sure.cheapest_margin().sure  # type: ignore[union-attr]
    assert verdict(sure) == (f"cheapest meeting the SLO: {best}, $10.25/month less than {other} (paired 95% CI "
                             "$9.79 to $10.71 over 4 replications)")  # diffs 10, 10.5, 10, 10.5: t(3) half-width 0.46
    mixed = replace(result, replication_costs={best: (10.0, 30.0, 12.0, 13.0), other: (20.0, 21.5, 22.0, 3.5)})
    assert not mixed.cheapest_margin().sure  # type: ignore[union-attr]
    assert f"not surely cheaper than {other}: it saves $0.50/month on average, paired 95% CI -$" in verdict(mixed)


def test_cloud_run_bills_idle_min_instances_not_idle_instances_above_the_minimum() -> None:
    """min_instances 1, one slot each: while one instance serves, the other (above the minimum) is free. The
    idle min instance's time is the window less the time any instance starts or serves. Here every other
    instance starts while the first serves, so that time is the union of the requests' service spans."""
    from mlplat.sim._pool import PoolSpec, simulate_pool

    spec = PoolSpec(slots=1, startup_s=5.0, keep_alive=900.0, min_instances=1, initial=1)
    arrivals = np.array([1000.0, 1000.5, 1050.0, 3000.0, 3000.2])
    run = simulate_pool(spec, arrivals, np.full(5, 100.0), (600.0, 7200.0))
    spans = sorted(zip(run.start, run.finish, strict=True))
    covered, end = 0.0, -math.inf
    for start, finish in spans:  # the union of the spans' lengths
        covered += max(0.0, finish - max(start, end))
        end = max(end, finish)
    assert run.idle_min_seconds == pytest.approx(6600.0 - covered, rel=1e-12)
    # The old rule: every idle instance-second, capped at min_instances x the window.
    old = min(run.instance_seconds - run.busy_instance_seconds, 6600.0)
    assert old > run.idle_min_seconds + 100  # the second instance idled ~900 s after each burst


def test_cloud_run_idle_min_instances_take_their_own_rate(make_scenario: Callable[..., Scenario]) -> None:
    """Under request billing Google bills an idle minimum instance at a lower rate than the default: the
    pricing table's idle_min prices apply when given (the instance-billing rates stand in otherwise, an upper
    bound; found by a review pass)."""
    platform = {"name": "run", "kind": "cloud_run", "vcpu": 1, "memory_gib": 2, "min_instances": 1}
    workload = {"kind": "poisson", "rate": "0.01/s"}
    default = simulate(make_scenario(duration="2h", workload=workload, platforms=[platform]), seed=3)
    idle = {"usd": 0.0000025, "as_of": "2026-11-25", "source": "test"}
    cheaper = simulate(make_scenario(duration="2h", workload=workload, platforms=[platform],
                                     pricing={"cloud_run": {"idle_min_vcpu_second": idle,
                                                            "idle_min_gib_second": idle}}), seed=3)
    before, after = default.platform("run")["cost_provisioned_idle"], cheaper.platform("run")["cost_provisioned_idle"]
    assert before > 0
    assert after / before == pytest.approx((1 * 0.0000025 + 2 * 0.0000025) / (1 * 0.000018 + 2 * 0.000002),
                                           rel=1e-9)
    # Without idle prices, the instance rates in use stand in: an overlay that lowers them lowers the idle
    # bill too (the bundled table once set the idle rows itself, and an overlay left them; diff review).
    lower = {"as_of": "2026-11-25", "source": "test"}
    overlay = simulate(make_scenario(duration="2h", workload=workload, platforms=[platform], pricing={"cloud_run": {
        "instance_vcpu_second": {"usd": 0.6 * 0.000018, **lower},
        "instance_gib_second": {"usd": 0.6 * 0.000002, **lower}}}), seed=3)
    assert overlay.platform("run")["cost_provisioned_idle"] / before == pytest.approx(0.6, rel=1e-9)
