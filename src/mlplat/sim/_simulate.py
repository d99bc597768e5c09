"""``simulate``: run every platform of a scenario over seeded replications and bill the result."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from mlplat.config import YamlDocument
from mlplat.errors import SimulationError, format_path
from mlplat.sim._levels import simulate_levels
from mlplat.sim._pool import Hpa, Kpa, PoolRun, PoolSpec, simulate_pool
from mlplat.sim._pricing import SECONDS_PER_MONTH, PriceTable, Pricing, load_pricing
from mlplat.sim._results import (
    COST_PARTS,
    LATENCY_KEYS,
    Estimate,
    Margin,
    PlatformResult,
    SimulationResult,
    SweepResult,
    break_evens,
)
from mlplat.sim._scenario import (
    BurstyWorkload,
    CloudRunPlatform,
    HpaAutoscaler,
    KnativePlatform,
    KubernetesPlatform,
    LambdaPlatform,
    Platform,
    Scenario,
    TraceWorkload,
    load_scenario,
)
from mlplat.sim._workload import Trace, arrivals, mean_rate, read_trace, service_sampler, with_mean_rate


@dataclass(frozen=True)
class Prepared:
    """A scenario with everything read from disk: its prices, its trace, and its file (to locate errors)."""

    scenario: Scenario
    pricing: Pricing
    trace: Trace | None
    doc: YamlDocument | None = None


def prepare(scenario: Scenario, *, base: Path | None = None, doc: YamlDocument | None = None,
            pricing: str | Path | None = None) -> Prepared:
    """Resolve the scenario's prices (``pricing`` overrides its own choice) and trace; check node types and size.

    Parameters
    ----------
    scenario : Scenario
        A validated scenario.
    base : Path, optional
        Folder that the scenario's own pricing file and trace path are relative to (default: the working
        directory).
    doc : YamlDocument, optional
        The scenario's file, so that errors name its line and column.
    pricing : str or Path, optional
        ``"default"`` or a pricing file (relative to the working directory, not ``base``), used instead of
        the scenario's ``pricing``.

    Returns
    -------
    Prepared
        The scenario, its prices, its trace (None unless the workload is a trace) and ``doc``.

    Raises
    ------
    ConfigError
        If the pricing cannot be read or validated, or, when ``doc`` is given, a platform names a node
        type or GPU without a price, or one replication would simulate more than 20 million events.
    SimulationError
        The last two, when ``doc`` is None.
    DataError
        If the trace file cannot be read.

    Examples
    --------
    >>> from mlplat.sim import Scenario
    >>> sc = Scenario.model_validate({
    ...     "duration": "1h", "workload": {"kind": "poisson", "rate": 1},
    ...     "service": {"warm": {"dist": "constant", "mean_ms": 100}},
    ...     "platforms": [{"name": "k8s", "kind": "kubernetes", "node": "c6i.xlarge",
    ...                    "autoscaler": {"kind": "fixed"}}]})
    >>> prepared = prepare(sc)
    >>> prepared.pricing.origin, prepared.trace is None
    ('default', True)
    >>> bad = sc.model_copy(update={"platforms": [sc.platforms[0].model_copy(update={"node": "x9.huge"})]})
    >>> prepare(bad)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    mlplat.errors.SimulationError: platforms[0].node: unknown node type 'x9.huge'; priced: ...
    """
    base = base or Path(".")
    spec: Any = pricing if pricing is not None else scenario.pricing
    prices = load_pricing(spec, base=base if pricing is None else Path("."), scenario_doc=doc)
    for index, platform in enumerate(scenario.platforms):
        problem = _unpriced(platform, prices.table)
        if problem is not None:
            key, message = problem
            if doc is not None:
                raise doc.error(("platforms", index, key), message)
            raise SimulationError(f"{format_path(('platforms', index, key))}: {message}")
    trace = read_trace(scenario.workload, base) if isinstance(scenario.workload, TraceWorkload) else None
    too_big = size_problem(scenario, trace)
    if too_big is not None:
        if doc is not None:
            raise doc.error(("duration",), too_big)
        raise SimulationError(f"duration: {too_big}")
    return Prepared(scenario, prices, trace, doc)


# Most events one replication may simulate (requests, control-loop ticks, on/off periods). With four
# platforms a request costs about 14 µs and 130 bytes, so this is about 5 minutes and 2.6 GB; a duration
# or rate far past it would exhaust memory or never finish.
MAX_EVENTS = 20_000_000
# Cloud Run bills request-billed instance time "rounded up to the nearest 100 millisecond"
# (https://cloud.google.com/run/pricing): each billable period of an instance, here.
CLOUD_RUN_BILL_STEP = 0.1
# A platform with more than this share of its requests still queued at the end of the run gets a note.
BACKLOG_NOTE = 0.01


def size_problem(scenario: Scenario, trace: Trace | None = None) -> str | None:
    """Why one replication of ``scenario`` would hold more than :data:`MAX_EVENTS` events, or None (it fits)."""
    duration = scenario.duration
    workload = scenario.workload
    shorten = "shorten it (costs are scaled to a month from any duration)"
    # (events, what they are, what to change)
    parts: list[tuple[float, str, str]] = [(mean_rate(workload, trace) * duration, "requests", shorten)]
    if isinstance(workload, BurstyWorkload):
        parts.append((2 * duration / (workload.mean_on + workload.mean_off), "on and off periods",
                      f"{shorten}, or raise workload.mean_on"))
    if isinstance(workload, TraceWorkload) and trace is not None:
        # The replay builds the looped trace over its whole span before cutting it to the duration.
        loops = math.ceil(duration / trace.span) if math.isfinite(duration / trace.span) else math.inf
        parts.append((len(trace.times) * loops * max(workload.scale, 1.0),
                      f"trace arrivals built: {len(trace.times):,} over {trace.span:g} s, replayed x "
                      f"{workload.scale:g}", "trim the trace to the times you mean to simulate"))
    for index, platform in enumerate(scenario.platforms):
        if isinstance(platform, KubernetesPlatform) and isinstance(platform.autoscaler, HpaAutoscaler):
            parts.append((duration / platform.autoscaler.sync_period_s, f"{platform.name} HPA syncs",
                          f"{shorten}, or raise {format_path(('platforms', index, 'autoscaler', 'sync_period_s'))}"))
        elif isinstance(platform, KnativePlatform):
            parts.append((duration / platform.tick_s, f"{platform.name} KPA ticks",
                          f"{shorten}, or raise {format_path(('platforms', index, 'tick_s'))}"))
    total = sum(count for count, _, _ in parts)
    if total <= MAX_EVENTS:
        return None
    count, what, advice = max(parts, key=lambda part: part[0])
    return (f"one replication of {duration:g} s would simulate {_about(total)} events ({_about(count)} {what}), "
            f"more than the {MAX_EVENTS:,} that fit in memory and time; {advice}")


def _about(count: float) -> str:
    return f"about {count:.3g}" if math.isfinite(count) else "countless"


def _unpriced(platform: Platform, table: PriceTable) -> tuple[str, str] | None:
    if isinstance(platform, KubernetesPlatform | KnativePlatform) and platform.node not in table.ec2:
        return "node", f"unknown node type {platform.node!r}; priced: {', '.join(sorted(table.ec2))}"
    if isinstance(platform, CloudRunPlatform) and platform.gpu and platform.gpu not in table.cloud_run.gpu_second:
        known = ", ".join(sorted(table.cloud_run.gpu_second)) or "none"
        return "gpu", f"no price for GPU {platform.gpu!r} (cloud_run.gpu_second); priced: {known}"
    return None


def load(path: str | Path, pricing: str | Path | None = None) -> Prepared:
    """Read, validate and prepare a scenario file; every error names the file, line and column."""
    scenario, doc = load_scenario(path)
    return prepare(scenario, base=Path(path).parent, doc=doc, pricing=pricing)


# -- one platform, one replication ---------------------------------------------------------------------

def _ms_ceil(seconds: np.ndarray | float) -> np.ndarray | float:
    # Lambda bills duration rounded up to the millisecond.
    return np.ceil(np.round(seconds * 1000.0, 6)) / 1000.0


def _percentiles(latency_s: np.ndarray) -> dict[str, float]:
    if len(latency_s) == 0:
        return dict.fromkeys(LATENCY_KEYS, math.nan)
    q = np.percentile(latency_s, [50, 95, 99, 99.9]) * 1000.0
    return dict(zip(LATENCY_KEYS, (float(v) for v in q), strict=True))


def _busy_in(start: np.ndarray, finish: np.ndarray, window: tuple[float, float]) -> float:
    """Slot-seconds busy inside the measured window; a request that straddles an edge counts in part.

    Counting whole requests that arrive inside the window is wrong when a queue holds them past its end:
    an overloaded pool then showed a utilisation of 300%.
    """
    t0, t1 = window
    with np.errstate(invalid="ignore"):  # a request never started has start inf or NaN: no overlap
        overlap = np.minimum(finish, t1) - np.maximum(start, t0)
        return float(np.sum(overlap, where=overlap > 0))


def _run_lambda(p: LambdaPlatform, sc: Scenario, prices: PriceTable, a: np.ndarray, s: np.ndarray,
                window: tuple[float, float]) -> dict[str, float]:
    cs = sc.service.cold_start
    run = simulate_levels(a, s, cs.total(), p.keep_alive, p.max_concurrency, p.provisioned_concurrency, window)
    t0, t1 = window
    m = (a >= t0) & (a < t1)
    served = m & ~run.rejected
    lat = run.occupancy[served]
    billed = (_ms_ceil(s) + np.where(run.cold, _ms_ceil(cs.billed_init()), 0.0)) * p.memory_gb
    on_demand_gbs = float(billed[served & ~run.provisioned].sum())
    prov_gbs = float(billed[served & run.provisioned].sum())
    lp = prices.lambda_
    gb_price = (lp.x86_gb_second if p.arch == "x86" else lp.arm_gb_second).usd
    span = t1 - t0
    out = _common(m, run.cold, run.rejected, lat, run.instance_seconds, run.peak_instances, span)
    # A function's latency is its occupancy (0 for a throttled request).
    busy = _busy_in(a, a + run.occupancy, window)
    out["mean_busy"] = busy / span
    out["utilization"] = busy / max(run.instance_seconds, 1e-12)
    requests = float(served.sum())
    cost = {"compute": on_demand_gbs * gb_price + prov_gbs * lp.provisioned_executing_gb_second.usd,
            "requests": requests * lp.requests_per_million.usd / 1e6,
            "provisioned_idle": p.provisioned_concurrency * p.memory_gb * span * lp.provisioned_gb_second.usd}
    if sc.free_tier:
        month = SECONDS_PER_MONTH / span
        free_gbs = min(on_demand_gbs, lp.free_gb_seconds_per_month.usd / month)
        free_req = min(requests, lp.free_requests_per_month.usd / month)
        cost["compute"] -= free_gbs * gb_price
        cost["requests"] -= free_req * lp.requests_per_million.usd / 1e6
    out["usage_gb_seconds"] = on_demand_gbs + prov_gbs
    out["usage_billed_requests"] = requests
    return _bill(out, cost, span, requests)


def _common(m: np.ndarray, cold: np.ndarray, rejected: np.ndarray, lat: np.ndarray,
            instance_seconds: float, peak: int, span: float) -> dict[str, float]:
    total = float(m.sum())
    out = {"requests": total, "cold_starts": float((cold & m).sum()), "rejections": float((rejected & m).sum())}
    out["cold_start_fraction"] = out["cold_starts"] / total if total else math.nan
    out["rejection_fraction"] = out["rejections"] / total if total else math.nan
    out.update(_percentiles(lat))
    out["mean_instances"] = instance_seconds / span
    out["peak_instances"] = float(peak)
    out["mean_nodes"] = 0.0
    out["peak_nodes"] = 0.0
    out["wait_probability"] = 0.0
    out["mean_wait_s"] = 0.0
    out["backlog_fraction"] = 0.0
    out["at_max_size"] = 0.0
    return out


def _bill(out: dict[str, float], cost: dict[str, float], span: float, requests: float) -> dict[str, float]:
    month = SECONDS_PER_MONTH / span
    total = 0.0
    for part in COST_PARTS:
        value = max(0.0, cost.get(part, 0.0))
        out[f"cost_{part}"] = value * month
        total += value
    out["cost_per_month"] = total * month
    out["cost_per_million"] = total / requests * 1e6 if requests else math.nan
    return out


def _pool_spec(p: Platform, sc: Scenario) -> PoolSpec:
    cs = sc.service.cold_start.total()
    if isinstance(p, LambdaPlatform):
        return PoolSpec(slots=1, startup_s=cs, keep_alive=p.keep_alive, max_instances=p.max_concurrency,
                        min_instances=p.provisioned_concurrency, initial=p.provisioned_concurrency)
    if isinstance(p, CloudRunPlatform):
        return PoolSpec(slots=p.concurrency, startup_s=cs, keep_alive=p.idle_timeout, min_instances=p.min_instances,
                        max_instances=p.max_instances, initial=p.min_instances,
                        bill_step=CLOUD_RUN_BILL_STEP if p.billing_mode() == "request" else 0.0)
    if isinstance(p, KubernetesPlatform):
        scaler = None
        if isinstance(p.autoscaler, HpaAutoscaler):
            h = p.autoscaler
            scaler = Hpa(target=h.target_utilization, period=h.sync_period_s, tolerance=h.tolerance,
                         stabilization=h.scale_down_stabilization_s, up_pods=h.scale_up_pods,
                         up_percent=h.scale_up_percent)
        # A fixed Deployment never grows past its replicas: that, not max_replicas, is its largest size.
        largest = p.max_replicas if scaler is not None else p.min_replicas
        return PoolSpec(slots=p.pod_concurrency, startup_s=p.pod_startup_s + (cs if p.cold_start else 0.0),
                        min_instances=p.min_replicas, max_instances=largest, on_demand=False, queue=True,
                        initial=p.min_replicas, autoscaler=scaler, pods_per_node=p.pods_per_node,
                        node_provision_s=p.node_provision_s, node_scale_down_s=p.node_scale_down_s)
    k = Kpa(target=p.target() * p.target_utilization, stable_window=p.stable_window_s,
            panic_window=p.panic_window_s, panic_threshold=p.panic_threshold,
            scale_to_zero_grace=p.scale_to_zero_grace_s, tick=p.tick_s)
    return PoolSpec(slots=p.slots(), startup_s=p.pod_startup_s + cs, min_instances=p.min_scale,
                    max_instances=p.max_scale, on_demand=False, queue=True, initial=p.min_scale, autoscaler=k,
                    pods_per_node=p.pods_per_node, node_provision_s=p.node_provision_s,
                    node_scale_down_s=p.node_scale_down_s)


def _run_pool(p: Platform, sc: Scenario, prices: PriceTable, a: np.ndarray, s: np.ndarray,
              window: tuple[float, float]) -> dict[str, float]:
    spec = _pool_spec(p, sc)
    run: PoolRun = simulate_pool(spec, a, s, window)
    t0, t1 = window
    span = t1 - t0
    m = (a >= t0) & (a < t1)
    served = m & ~run.rejected & np.isfinite(run.finish)
    lat = (run.finish - a)[served]
    out = _common(m, run.cold, run.rejected, lat, run.instance_seconds, run.peak_instances, span)
    wait = (run.start - a)[served]
    out["wait_probability"] = float((wait > 1e-12).mean()) if len(wait) else math.nan
    out["mean_wait_s"] = float(wait.mean()) if len(wait) else math.nan
    # Requests still queued when the window closed, and whether the pool ever reached its largest size
    # (if so it could not keep up; if not, they waited for instances or nodes to start).
    out["backlog_fraction"] = float((run.start[served] >= t1).mean()) if served.any() else 0.0
    out["at_max_size"] = float(run.peak_instances >= spec.max_instances)
    busy = _busy_in(run.start, run.finish, window)  # a refused request never started: its start is NaN
    out["mean_busy"] = busy / span
    out["utilization"] = busy / max(run.instance_seconds * spec.slots, 1e-12)
    out["mean_nodes"] = run.node_seconds / span
    out["peak_nodes"] = float(run.peak_nodes)
    requests = float(served.sum())
    cost: dict[str, float] = {}
    if isinstance(p, CloudRunPlatform):
        cr = prices.cloud_run
        gpu_price = cr.gpu_second[p.gpu].usd if p.gpu else 0.0
        if p.billing_mode() == "instance":
            seconds = run.instance_seconds
            vcpu_s = _billable(seconds * p.vcpu, cr.free_instance_vcpu_seconds_per_month.usd, span, sc.free_tier)
            gib_s = _billable(seconds * p.memory_gib, cr.free_instance_gib_seconds_per_month.usd, span, sc.free_tier)
            cost["compute"] = vcpu_s * cr.instance_vcpu_second.usd + gib_s * cr.instance_gib_second.usd
            cost["gpu"] = seconds * gpu_price
        else:
            seconds = run.billed_busy_seconds
            vcpu_s = _billable(seconds * p.vcpu, cr.free_vcpu_seconds_per_month.usd, span, sc.free_tier)
            gib_s = _billable(seconds * p.memory_gib, cr.free_gib_seconds_per_month.usd, span, sc.free_tier)
            billed_req = _billable(requests, cr.free_requests_per_month.usd, span, sc.free_tier)
            cost["compute"] = vcpu_s * cr.request_vcpu_second.usd + gib_s * cr.request_gib_second.usd
            cost["requests"] = billed_req * cr.requests_per_million.usd / 1e6
            cost["gpu"] = seconds * gpu_price
            idle_vcpu = (cr.idle_min_vcpu_second or cr.instance_vcpu_second).usd
            idle_gib = (cr.idle_min_gib_second or cr.instance_gib_second).usd
            cost["provisioned_idle"] = run.idle_min_seconds * (p.vcpu * idle_vcpu + p.memory_gib * idle_gib
                                                               + gpu_price)
        out["usage_instance_seconds"] = run.instance_seconds
        out["usage_billed_instance_seconds"] = seconds
    else:
        if not isinstance(p, KubernetesPlatform | KnativePlatform):
            raise SimulationError(f"platform {p.name!r}: no bill for kind {p.kind!r}")
        node = prices.ec2[p.node]
        node_cost = run.node_seconds / 3600.0 * node.usd
        cost["gpu" if node.gpus else "nodes"] = node_cost
        if p.control_plane:
            cost["control_plane"] = span / 3600.0 * prices.eks.cluster_hour.usd
        out["usage_node_hours"] = run.node_seconds / 3600.0
    return _bill(out, cost, span, requests)


def _billable(used: float, free_per_month: float, span: float, free_tier: bool) -> float:
    """``used`` (over a run of ``span`` seconds) less the monthly free allowance scaled to the run, if it applies."""
    return max(0.0, used - free_per_month / (SECONDS_PER_MONTH / span)) if free_tier else used


def run_platform(platform: Platform, scenario: Scenario, prices: PriceTable, a: np.ndarray,
                 s: np.ndarray) -> dict[str, float]:
    """Metrics of one platform on one replication's arrivals ``a`` and warm service times ``s``.

    Lambda runs in the level model (:func:`simulate_levels`), the rest in the event loop.

    Parameters
    ----------
    platform : Platform
        One of ``scenario.platforms``.
    scenario : Scenario
        The scenario: its warm-up and duration set the measured window, its service the cold starts.
    prices : PriceTable
        The prices to bill with (``Prepared.pricing.table``).
    a : numpy.ndarray
        Arrival times in seconds, sorted (as from :func:`arrivals`).
    s : numpy.ndarray
        Warm service time in seconds of each request, the length of ``a``.

    Returns
    -------
    dict of str to float
        Over the requests that arrive in ``[warmup, duration)``: ``requests``, ``cold_starts``,
        ``rejections`` and their fractions; latency percentiles ``p50``, ``p95``, ``p99``, ``p999`` in
        milliseconds (NaN with no request); instances, nodes, waits, backlog and utilisation; the bill
        scaled to a 30-day month, ``cost_per_month`` with its parts ``cost_*``, and ``cost_per_million``
        requests (NaN with none served); ``usage_*`` figures of what was billed.

    Raises
    ------
    SimulationError
        If the platform is of a kind with no bill.

    Examples
    --------
    >>> from mlplat.sim import Scenario
    >>> sc = Scenario.model_validate({
    ...     "duration": "1h", "workload": {"kind": "poisson", "rate": 1},
    ...     "service": {"warm": {"dist": "constant", "mean_ms": 100}},
    ...     "platforms": [{"name": "fn", "kind": "lambda"}]})
    >>> a = np.arange(0.0, 3600.0, 10.0)  # a request every 10 s, each 100 ms
    >>> out = run_platform(sc.platforms[0], sc, prepare(sc).pricing.table, a, np.full(len(a), 0.1))
    >>> out["requests"], out["cold_starts"], out["p99"]
    (360.0, 1.0, 100.0)
    """
    window = (scenario.warmup, scenario.duration)
    if isinstance(platform, LambdaPlatform):
        return _run_lambda(platform, scenario, prices, a, s, window)
    return _run_pool(platform, scenario, prices, a, s, window)


def _replicate(prepared: Prepared, seed: np.random.SeedSequence) -> tuple[dict[str, dict[str, float]], int]:
    sc = prepared.scenario
    rng = np.random.default_rng(seed)
    a = arrivals(sc.workload, sc.duration, rng, prepared.trace)
    s = service_sampler(sc.service)(rng, len(a))
    # Common random numbers: every platform sees the same arrivals and service times in a replication.
    return {p.name: run_platform(p, sc, prepared.pricing.table, a, s) for p in sc.platforms}, len(a)


def _slo_met(metrics: dict[str, Estimate], sc: Scenario) -> bool:
    p99 = metrics["p99"].mean
    rejected = metrics["rejection_fraction"].mean
    return bool(math.isfinite(p99) and p99 <= sc.slo.p99_ms and rejected <= sc.slo.max_rejection)


def _slo_doubt(metrics: dict[str, Estimate], sc: Scenario) -> str | None:
    """Why the SLO verdict is unsure, when a 95% CI behind it spans the SLO's bound; else None.

    The verdict compares means over replications; a p99 near a cold-start boundary varies so much between
    replications that the mean can land on either side of the bound by chance.
    """
    p99, rejected = metrics["p99"], metrics["rejection_fraction"]
    spans = []
    if p99.high > p99.low and p99.contains(sc.slo.p99_ms):
        spans.append(f"its p99's 95% CI ({max(p99.low, 0.0):,.0f} to {p99.high:,.0f} ms) spans the SLO's "
                     f"{sc.slo.p99_ms:,.0f} ms")
    if rejected.high > rejected.low and rejected.contains(sc.slo.max_rejection):
        spans.append(f"its throttled share's 95% CI ({max(rejected.low, 0.0):.2%} to {rejected.high:.2%}) spans "
                     f"the SLO's {sc.slo.max_rejection:.2%}")
    if not spans:
        return None
    return f"SLO verdict unsure: {' and '.join(spans)}; more replications (-r) narrow it"


def _check_bill(prepared: Prepared, index: int, metrics: dict[str, Estimate]) -> None:
    """Refuse a bill that came out inf or NaN rather than print it as "-" (prices, sizes and times are
    bounded, so only an extreme mix of them gets here)."""
    broken = [part for part in (*COST_PARTS, "per_month") if not math.isfinite(metrics[f"cost_{part}"].mean)]
    if not broken:
        return
    name = prepared.scenario.platforms[index].name
    message = (f"the bill of {name!r} is not a finite number (cost_{broken[0]}); lower the prices, sizes or rate "
               "it is billed with")
    path = ("platforms", index)
    if prepared.doc is not None:
        raise prepared.doc.error(path, message)
    raise SimulationError(f"{format_path(path)}: {message}")


def simulate(scenario: Scenario | Prepared | str | Path, *, replications: int | None = None, seed: int = 0,
             jobs: int = 1, progress: Callable[[int], None] | None = None) -> SimulationResult:
    """Simulate every platform of ``scenario`` and bill it; the door of :mod:`mlplat.sim`.

    Each replication draws its own arrivals and service times from a seed spawned from ``seed``
    (:meth:`numpy.random.SeedSequence.spawn`), so results do not depend on ``jobs``; every platform sees
    the same draws within a replication. Functions (Lambda) are simulated by a vectorised level model,
    the rest by an event loop with the Kubernetes HPA and Knative KPA as periodic events.

    Parameters
    ----------
    scenario : Scenario, Prepared, str or Path
        A validated scenario, or the path of a scenario file.
    replications : int, optional
        Overrides the scenario's ``replications``.
    seed : int
        Root seed.
    jobs : int
        Worker processes for the replications (1: in this process).
    progress : callable, optional
        Called with 1 after each replication.

    Returns
    -------
    SimulationResult
        Per platform: requests, cold starts, rejections, latency percentiles, instances, nodes, cost per
        month and per million requests with its breakdown, SLO verdict; means with 95% CIs.

    References
    ----------
    .. [1] A. K. Erlang, "Solution of some problems in the theory of probabilities of significance in
       automatic telephone exchanges", 1917 (Erlang B and C, used to validate the queue).
    .. [2] N. Mahmoudi and H. Khazaei, "SimFaaS: A Performance Simulator for Serverless Computing
       Platforms", CLOSER 2021, arXiv:2102.08904.
    .. [3] Kubernetes documentation, "Horizontal Pod Autoscaling" (algorithm details, scaling policies,
       stabilization window).
    .. [4] Knative documentation, "Configuring the autoscaler": KPA stable and panic windows.

    Examples
    --------
    >>> from mlplat.sim import Scenario
    >>> sc = Scenario.model_validate({
    ...     "duration": "2h", "warmup": "10m", "replications": 2,
    ...     "workload": {"kind": "poisson", "rate": "1/s"},
    ...     "service": {"warm": {"dist": "constant", "mean_ms": 100}, "cold_start": {"init_s": 1}},
    ...     "platforms": [{"name": "fn", "kind": "lambda", "memory_gb": 2}]})
    >>> result = simulate(sc, seed=1)
    >>> fn = result.platform("fn")
    >>> fn["cold_start_fraction"] < 0.01, round(fn["p50"])
    (True, 100)
    """
    if isinstance(scenario, str | Path):
        scenario = load(scenario)
    prepared = scenario if isinstance(scenario, Prepared) else prepare(scenario)
    sc = prepared.scenario
    reps = replications or sc.replications
    seeds = np.random.SeedSequence(seed).spawn(reps)
    started = time.perf_counter()
    outcomes: list[tuple[dict[str, dict[str, float]], int]] = []
    if jobs > 1 and reps > 1:
        workers = min(jobs, reps, os.cpu_count() or 1)
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for outcome in pool.map(_replicate, [prepared] * reps, seeds):
                outcomes.append(outcome)
                if progress:
                    progress(1)
    else:
        for child in seeds:
            outcomes.append(_replicate(prepared, child))
            if progress:
                progress(1)
    elapsed = time.perf_counter() - started
    platforms = []
    for index, p in enumerate(sc.platforms):
        keys = outcomes[0][0][p.name].keys()
        metrics = {k: Estimate.of([o[0][p.name][k] for o in outcomes]) for k in keys}
        notes: list[str] = []
        if metrics["requests"].mean > 0 and metrics["rejection_fraction"].mean > 0:
            notes.append(f"{metrics['rejection_fraction'].mean:.2%} of requests throttled")
        backlog = metrics["backlog_fraction"].mean
        if backlog > BACKLOG_NOTE:
            why = ("the load is more than it serves at its largest size, so its latencies grow with the length "
                   "of the run" if metrics["at_max_size"].mean > 0 else
                   "they were waiting for instances or nodes to start, below its largest size")
            notes.append(f"{backlog:.1%} of requests were still queued when the run ended: {why}")
        _check_bill(prepared, index, metrics)
        doubt = _slo_doubt(metrics, sc)
        if doubt is not None:
            notes.append(doubt)
        platforms.append(PlatformResult(p.name, p.kind, metrics, _slo_met(metrics, sc), tuple(notes),
                                        slo_unsure=doubt is not None))
    return SimulationResult(
        platforms=tuple(platforms), replications=reps, seed=seed, duration_s=sc.duration, warmup_s=sc.warmup,
        mean_rate=mean_rate(sc.workload, prepared.trace), workload=sc.workload.kind, slo_p99_ms=sc.slo.p99_ms,
        pricing=prepared.pricing.origin, elapsed_s=elapsed, simulated_requests=sum(o[1] for o in outcomes),
        replication_costs={p.name: tuple(o[0][p.name]["cost_per_month"] for o in outcomes) for p in sc.platforms})


def sweep(scenario: Prepared | str | Path, rates: np.ndarray | list[float], *, replications: int | None = None,
          seed: int = 0, jobs: int = 1, progress: Callable[[int], None] | None = None) -> SweepResult:
    """Simulate the scenario at each mean arrival rate (the workload's shape kept) and find break-evens.

    Break-even rates are where two platforms' monthly costs cross, interpolated in log(rate), log(cost)
    between neighbouring sweep points; see :func:`simulate` for the model and its references.

    Parameters
    ----------
    scenario : Prepared, str or Path
        A prepared scenario (:func:`prepare`), or the path of a scenario file.
    rates : array_like of float
        Mean arrival rates per second, > 0, in increasing order (break-evens are looked for between
        neighbours).
    replications : int, optional
        Overrides the scenario's ``replications`` at every rate.
    seed : int
        Root seed, the same at every rate.
    jobs : int
        Worker processes for the replications (1: in this process).
    progress : callable, optional
        Called with 1 after each rate.

    Returns
    -------
    SweepResult
        Per platform and rate: cost per month, p99 (ms), whether the SLO is met (and whether that is
        unsure); the break-even rates; requests measured per replication; the cheapest platform's margin.

    Raises
    ------
    SimulationError
        If one replication at some rate would simulate more than 20 million events (checked for every rate
        before any runs).

    References
    ----------
    .. [1] A. K. Erlang, "Solution of some problems in the theory of probabilities of significance in
       automatic telephone exchanges", 1917 (Erlang B and C, used to validate the queue).
    .. [2] N. Mahmoudi and H. Khazaei, "SimFaaS: A Performance Simulator for Serverless Computing
       Platforms", CLOSER 2021, arXiv:2102.08904.

    Examples
    --------
    >>> from mlplat.sim import Scenario
    >>> sc = Scenario.model_validate({
    ...     "duration": "1h", "replications": 1, "workload": {"kind": "poisson", "rate": 1},
    ...     "service": {"warm": {"dist": "constant", "mean_ms": 200}},
    ...     "platforms": [{"name": "fn", "kind": "lambda"},
    ...                   {"name": "k8s", "kind": "kubernetes", "node": "c6i.xlarge", "pod_concurrency": 8,
    ...                    "autoscaler": {"kind": "fixed"}}]})
    >>> out = sweep(prepare(sc), [0.1, 10.0])
    >>> out.cheapest()
    ['fn', 'k8s']
    """
    if isinstance(scenario, str | Path):
        scenario = load(scenario)
    base = scenario
    names = tuple(p.name for p in base.scenario.platforms)
    cost: dict[str, list[float]] = {n: [] for n in names}
    p99: dict[str, list[float]] = {n: [] for n in names}
    met: dict[str, list[bool]] = {n: [] for n in names}
    unsure: dict[str, list[bool]] = {n: [] for n in names}
    requests: list[float] = []
    scenarios = [base.scenario.model_copy(update={
        "workload": with_mean_rate(base.scenario.workload, float(rate), base.trace)}) for rate in rates]
    for rate, sc in zip(rates, scenarios, strict=True):  # every rate is checked before any runs
        too_big = size_problem(sc, base.trace)
        if too_big is not None:
            raise SimulationError(f"duration at {float(rate):g} req/s: {too_big}")
    margins: list[Margin | None] = []
    for sc in scenarios:
        result = simulate(replace(base, scenario=sc), replications=replications, seed=seed, jobs=jobs)
        requests.append(result.platforms[0]["requests"])
        margins.append(result.cheapest_margin())
        for p in result.platforms:
            cost[p.name].append(p["cost_per_month"])
            p99[p.name].append(p["p99"])
            met[p.name].append(p.slo_met)
            unsure[p.name].append(p.slo_unsure)
        if progress:
            progress(1)
    rates_t = tuple(float(r) for r in rates)
    cost_t = {n: tuple(v) for n, v in cost.items()}
    return SweepResult(rates=rates_t, names=names, cost_per_month=cost_t,
                       p99_ms={n: tuple(v) for n, v in p99.items()}, slo_met={n: tuple(v) for n, v in met.items()},
                       slo_p99_ms=base.scenario.slo.p99_ms, break_even=tuple(break_evens(rates_t, names, cost_t)),
                       requests=tuple(requests), slo_unsure={n: tuple(v) for n, v in unsure.items()},
                       margins=tuple(margins))
