"""`mlplat bench` as a library call: profile S(b), then drive each batching policy with the same load."""

from __future__ import annotations

import gc
import math
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from mlplat.batcher._load import (
    OK,
    POLICIES,
    REJECTED,
    Meter,
    Trace,
    closed_loop,
    generator_capacity,
    make_server,
    open_loop,
)
from mlplat.batcher._models import ModelSpec, ProfilePoint, TorchPredictor, profile_predict, resolve_device
from mlplat.batcher._stats import percentiles
from mlplat.errors import ConfigError
from mlplat.plots import pyplot, save_figure
from mlplat.units import format_duration

__all__ = ["SWEEP_FRACTIONS", "BenchConfig", "BenchResult", "PolicyResult", "run_bench", "write_plot"]

SWEEP_FRACTIONS = (0.2, 0.4, 0.6, 0.8, 0.9, 1.0, 1.1)
# S(b) at the ceiling batch is profiled again after the runs; a change larger than this share means the
# machine's speed changed during the run (a shared host, thermal or frequency limits), and it is reported.
CEILING_DRIFT = 0.10
# An open-loop run that answers under this share of the rate it sent inside its measured interval, and
# more than IN_FLIGHT_SLACK requests short of it, could not keep up; the report says so beside its rates.
OVERLOADED_SHARE = 0.9
# A server that keeps up still has the requests of its last latency in flight when the interval closes
# (and answers a few warm-up requests after it opens): about rate x latency of them, Poisson. At a trivial
# load that is 0 to 2 (more than 5 with a mean of 1: under 0.1%), and one of 4 requests answered late is
# already 25% short; where rate x latency is more than a handful, 10% of what was sent is many times more.
IN_FLIGHT_SLACK = 5
# The open loop sends from one Python thread that shares the GIL with the server's worker and its
# completions, sleeps between Poisson arrivals and must win the GIL back after each sleep, so it keeps a
# schedule only well under the rate it reaches sending flat out against the same server and model. Rates
# are allowed up to this share of that (mlp 64-128-64, max batch 8, 2 shared CPU cores: flat out 65-90k
# req/s; at 19k the p99 lag was 8 ms; at the 57k once allowed, 0.3-1.4 s and 16 req/s answered).
GENERATOR_SHARE = 0.25
# The flat-out rate is the best of this many 50 ms tries: one try on a shared host ranged over 3x (33-93k
# req/s in ten tries), so the same --rate was refused or run by chance.
GENERATOR_TRIES = 5
# A run whose generator sent more than this share of its requests after their deadline had passed is behind:
# the batchers refuse such a request at once, and their reject rate would be the generator's.
SENT_LATE_SHARE = 0.01
# The policies that refuse a request whose deadline passed before dispatch; `none` and `window` serve it.
DEADLINE_POLICIES = ("deadline", "eager")
# With fewer measured requests than this, a run's p99.9 (and under a tenth of it, its p99) is only the
# slowest request seen, and the report says so.
FEW_REQUESTS = 1000
# The most arrivals an open-loop run schedules: each keeps about 43 bytes of arrays for the report, so this
# is about 4 GB. Past it the schedule could not be allocated (36,000 days at 1,000 req/s wanted 27 TiB).
MAX_ARRIVALS = 100_000_000
# The longest --max-latency-ms and --slo-ms: a day. The run waits a few SLOs for stragglers, and a wait past
# threading.TIMEOUT_MAX overflowed (--slo-ms 1e13 was exit 5).
MAX_MS = 86_400_000
Mode = Literal["rate", "concurrency", "sweep"]


@dataclass(frozen=True)
class BenchConfig:
    """What `mlplat bench` runs; every field is a command-line option (see ``docs/bench.md``).

    ``rate`` and ``rate_share`` are alternatives: an absolute rate, or a share of the measured ceiling
    X* (the default load is half of X*).
    """

    model: ModelSpec = field(default_factory=ModelSpec)
    device: str = "auto"
    dtype: str = "float32"
    max_batch: int = 32
    max_latency_ms: float = 10.0
    mode: Mode = "rate"
    rate: float | None = None
    rate_share: float = 0.5
    concurrency: int = 64
    duration: float = 10.0
    warmup: float = 1.0
    slo_ms: float = 25.0
    policies: tuple[str, ...] = POLICIES
    torch_threads: int | None = 1
    seed: int = 0

    def __post_init__(self) -> None:
        # Upper bounds keep an absurd value from hanging or failing deep in torch: a batch of more than
        # 65,536 requests, more requests outstanding than a queue holds, threads the machine cannot have.
        for name, flag, most in (("max_batch", "--max-batch", 65_536), ("concurrency", "--concurrency", 100_000),
                                 ("torch_threads", "--torch-threads", 1024)):
            value = getattr(self, name)
            if value is None and name == "torch_threads":
                continue  # leave torch's own choice
            if not isinstance(value, int) or not 0 < value <= most:
                raise ConfigError(f"{flag} must be an integer from 1 to {most:,}, got {value!r}")
        if not isinstance(self.seed, int) or not 0 <= self.seed < 2**32:
            raise ConfigError(f"--seed must be an integer from 0 to {2**32 - 1:,}, got {self.seed!r}")
        if self.max_batch * math.prod(self.model.input_shape()) > 2**30:
            raise ConfigError(f"a batch of {self.max_batch} requests of shape {self.model.input_shape()} holds more "
                              f"than {2**30:,} values (4 GB); lower --max-batch, --width or --seq-len")
        for name, flag in (("max_latency_ms", "--max-latency-ms"), ("duration", "--duration"),
                           ("slo_ms", "--slo-ms"), ("rate_share", "rate share")):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise ConfigError(f"{flag} must be a positive number, got {value!r}")
            if name.endswith("_ms") and value > MAX_MS:
                raise ConfigError(f"{flag} must be at most {MAX_MS:,} (one day), got {value:g}")
        if self.rate is not None and not (math.isfinite(self.rate) and self.rate > 0):
            raise ConfigError(f"--rate must be a positive number of requests per second, got {self.rate!r}")
        if self.rate is not None and self.rate * self.duration < 1:
            raise ConfigError(f"--rate {self.rate:g} req/s for --duration {self.duration:g} s sends "
                              f"{self.rate * self.duration:.2g} requests on average; a run needs at least one "
                              "(a p99.9 wants 1,000): raise the rate or the duration")
        if self.warmup < 0:
            raise ConfigError(f"--warmup must be >= 0, got {self.warmup!r}")
        if self.rate is not None:
            check_arrivals(self.rate, self, "--rate")
        if not self.policies:
            raise ConfigError(f"--policies must name at least one of {', '.join(POLICIES)}")
        for policy in self.policies:
            if policy not in POLICIES:
                raise ConfigError(f"--policies: unknown policy {policy!r}; choose from {', '.join(POLICIES)}")
        repeated = sorted({p for p in self.policies if self.policies.count(p) > 1})
        if repeated:
            raise ConfigError(f"--policies: {', '.join(repeated)} given more than once; name each policy once")


@dataclass(frozen=True)
class PolicyResult:
    """One policy under one load: rates, latency percentiles (ms, from the scheduled arrival), batching.

    ``miss_rate`` is the share of requests answered after ``max_latency_ms`` or never answered;
    ``reject_rate`` the share refused (``QueueFull`` or ``DeadlineExceeded``); ``throughput_rps`` and
    ``goodput_rps`` count answers (within the SLO, for goodput) that came back inside the measured interval,
    whenever their request arrived; the other fields cover the requests that arrived inside it.
    """

    policy: str
    offered_rps: float | None
    concurrency: int | None
    requests: int
    throughput_rps: float
    goodput_rps: float
    latency_ms: dict[str, float]
    miss_rate: float
    reject_rate: float
    mean_batch: float
    fill_ratio: float
    busy_fraction: float
    generator_lag_p99_ms: float | None
    generator_behind: bool
    cdf_ms: tuple[float, ...] = field(default=(), repr=False)
    # Open loop: requests sent in the measured interval per second, the offered rate plus Poisson noise.
    sent_rps: float | None = None
    answered: int = 0  # requests of the interval answered: the samples behind latency_ms
    sent_late: int = 0  # open loop, deadline and eager: requests sent after their deadline had passed

    def to_dict(self) -> dict[str, Any]:
        return {
            "policy": self.policy, "offered_rps": self.offered_rps, "concurrency": self.concurrency,
            "requests": self.requests, "throughput_rps": self.throughput_rps, "goodput_rps": self.goodput_rps,
            "latency_ms": dict(self.latency_ms), "miss_rate": self.miss_rate, "reject_rate": self.reject_rate,
            "mean_batch": self.mean_batch, "fill_ratio": self.fill_ratio, "busy_fraction": self.busy_fraction,
            "generator_lag_p99_ms": self.generator_lag_p99_ms, "generator_behind": self.generator_behind,
            "sent_rps": self.sent_rps, "answered": self.answered, "sent_late": self.sent_late,
        }


@dataclass(frozen=True)
class BenchResult:
    """Everything one `mlplat bench` run measured.

    ``policies`` holds one result per policy (in a sweep: its point of highest goodput); ``sweep``
    holds every (policy, offered load) point of a sweep.
    """

    device: str
    model: str
    dtype: str
    mode: str
    max_batch: int
    max_latency_ms: float
    slo_ms: float
    ceiling_rps: float
    ceiling_batch: int
    profile: tuple[ProfilePoint, ...]
    policies: tuple[PolicyResult, ...]
    sweep: tuple[PolicyResult, ...] = ()
    warnings: tuple[str, ...] = ()
    ceiling_after_rps: float | None = None  # b / S(b) at the ceiling batch, profiled again after the runs

    def to_dict(self) -> dict[str, Any]:
        return {
            "device": self.device, "model": self.model, "dtype": self.dtype, "mode": self.mode,
            "max_batch": self.max_batch, "max_latency_ms": self.max_latency_ms, "slo_ms": self.slo_ms,
            "ceiling_rps": self.ceiling_rps, "ceiling_batch": self.ceiling_batch,
            "ceiling_after_rps": self.ceiling_after_rps,
            "profile": [p.to_dict() for p in self.profile],
            "policies": [p.to_dict() for p in self.policies],
            "sweep": [p.to_dict() for p in self.sweep],
            "warnings": list(self.warnings),
        }

    def __rich__(self) -> str:
        lines = [f"{self.model} on {self.device} ({self.dtype}): ceiling X* = {self.ceiling_rps:,.0f} req/s "
                 f"at batch {self.ceiling_batch}"]
        for p in self.policies:
            lines.append(f"{p.policy:>8}: goodput {p.goodput_rps:,.0f} req/s, p99 {p.latency_ms['p99']:.2f} ms, "
                         f"mean batch {p.mean_batch:.1f}")
        return "\n".join(lines + [f"warning: {w}" for w in self.warnings])


def overload_warning(result: PolicyResult) -> str | None:
    """A warning when an open-loop run answered under OVERLOADED_SHARE of the rate it sent in the interval.

    Rates count answers that came back inside the measured interval (rule 7), so a server that falls
    behind shows its own completion rate, under the offered one; this says why.
    """
    offered = result.offered_rps
    if offered is None or result.requests == 0:
        return None  # closed loop; or no request sent in the interval, which few_requests_warning says
    # Against what was sent, not the offer: with few requests, Poisson noise alone can put the answers 10%
    # under the offer. The same figure is printed. A shortfall within IN_FLIGHT_SLACK requests is the
    # requests still in flight as the interval closed, not an overload.
    sent = result.sent_rps if result.sent_rps is not None else offered
    short = result.requests * (1.0 - result.throughput_rps / sent)  # sent_rps = requests / interval
    if result.throughput_rps >= OVERLOADED_SHARE * sent or short <= IN_FLIGHT_SLACK:
        return None
    return (f"{result.policy}: {rate_text(result.throughput_rps)} of the {rate_text(sent)} sent inside the "
            f"measured interval were answered inside it ({short:,.0f} requests short); it could not keep up "
            "with this load, its queue grew, and a request answered late or refused counts as a miss or a reject")


def rate_text(rate: float) -> str:
    """A rate for messages: whole requests per second from 100 up, three figures under (0.5 is not 0)."""
    return f"{rate:,.0f} req/s" if rate >= 100 else f"{rate:.3g} req/s"


def few_requests_warning(results: Sequence[PolicyResult]) -> str | None:
    """A warning naming each policy whose latency percentiles rest on under FEW_REQUESTS answered requests, so
    its tail percentiles are its slowest answers (the percentiles are over answered requests)."""
    notes = []
    for r in results:
        # In a sweep the same policy runs at several loads: say which.
        name = r.policy if r.offered_rps is None else f"{r.policy} at {rate_text(r.offered_rps)}"
        if r.requests == 0:
            notes.append(f"{name} measured no requests (none arrived after the warm-up)")
        elif r.answered == 0:
            notes.append(f"{name} answered none of its {r.requests:,} measured requests: it has no latency "
                         "percentiles")
        elif r.answered < FEW_REQUESTS:
            tail = "p99.9 is" if r.answered >= FEW_REQUESTS // 10 else "p99 and p99.9 are"
            of = "" if r.answered == r.requests else f" (of {r.requests:,} measured)"
            notes.append(f"{name} has only {r.answered:,} answered requests{of}: its {tail} just the slowest "
                         "answer seen")
    if not notes:
        return None
    text = "; ".join(notes)
    # More requests help a run short of them; one that answered none of many is another matter (its other warnings).
    if any(r.requests == 0 or 0 < r.answered < FEW_REQUESTS for r in results):
        text += f" (a p99.9 wants {FEW_REQUESTS:,}); run longer (--duration) or at a higher rate"
    return text


def short_deadline_warning(max_latency_ms: float, profile: Sequence[ProfilePoint],
                           policies: Sequence[str]) -> str | None:
    """A warning when the batchers' deadline is shorter than a predict of one request: they can answer none."""
    batchers = [p for p in policies if p in ("deadline", "eager")]
    if not batchers or not profile or max_latency_ms >= profile[0].ms:
        return None
    return (f"--max-latency-ms {max_latency_ms:g} is shorter than one request's predict time ({profile[0].ms:.3g} ms "
            f"at batch 1): {' and '.join(batchers)} reject or miss every request, whatever the load")


def ceiling_drift_warning(before: ProfilePoint, after: ProfilePoint) -> str | None:
    """A warning when S(b) at the ceiling batch moved by more than CEILING_DRIFT between two profiles."""
    change = after.ms / before.ms - 1.0
    if abs(change) <= CEILING_DRIFT:
        return None
    return (f"S({before.batch}) was {before.ms:.2f} ms before the runs and {after.ms:.2f} ms after them "
            f"({change:+.0%}): the machine's speed changed during the run, so shares of X* are off by about "
            "as much; compare the policies with each other, or run again on a quieter machine")


def _profile_sizes(max_batch: int) -> list[int]:
    if max_batch <= 64:
        return list(range(1, max_batch + 1))
    sizes = {max_batch}
    size = 1
    while size < max_batch:
        sizes.add(size)
        size *= 2
    return sorted(sizes)


def summarize(policy: str, trace: Trace, meter: Meter, *, offered: float | None, concurrency: int | None,
              max_batch: int, max_latency_ms: float, slo_ms: float) -> PolicyResult:
    """Turn one run's per-request trace into a :class:`PolicyResult` (only arrivals after warm-up; batches
    and busy time inside the measured interval)."""
    low, high = trace.window
    keep = (trace.start >= low) & (trace.start < high)
    status, start, finish = trace.status[keep], trace.start[keep], trace.finish[keep]
    measured = max(high - low, 1e-9)
    requests = int(keep.sum())
    served = status == OK
    latency = (finish[served] - start[served]) * 1000.0
    # Rates count answers that came back inside the measured interval, whenever their request arrived: the
    # server's completion rate. An overloaded server is credited with what it served, not with the offered
    # rate; counting only requests that also arrived inside made it 0 while it served a warm-up backlog.
    answered = (trace.status == OK) & (trace.finish >= low) & (trace.finish < high)
    answered_latency = (trace.finish[answered] - trace.start[answered]) * 1000.0
    # The CDF is over every request of the interval, an unanswered or refused one as never done (inf): a
    # policy that refuses half its requests tops out at 0.5, not at 1 over the half it answered.
    everyone = np.where(served, (finish - start) * 1000.0, math.inf)
    cdf = tuple(np.quantile(everyone, np.linspace(0, 1, 201), method="inverted_cdf").tolist()) if requests else ()
    usage = meter.usage(low, high)
    lag = trace.lag[keep] if trace.lag.size else trace.lag
    lag_p99 = float(np.quantile(lag, 0.99) * 1000.0) if lag.size else None
    sent_late = int((lag * 1000.0 >= max_latency_ms).sum()) if policy in DEADLINE_POLICIES else 0
    # Neither answered nor refused: still queued when the run stopped waiting (then failed by close), or
    # failed by predict. Each counts as a deadline miss.
    unanswered = int(((status != OK) & (status != REJECTED)).sum())
    return PolicyResult(
        policy=policy, offered_rps=offered, concurrency=concurrency, requests=requests,
        throughput_rps=float(answered.sum()) / measured,
        goodput_rps=float((answered_latency <= slo_ms).sum()) / measured,
        latency_ms=percentiles(latency.tolist()),
        miss_rate=float((latency > max_latency_ms).sum() + unanswered) / requests if requests else math.nan,
        reject_rate=float((status == REJECTED).sum()) / requests if requests else math.nan,
        mean_batch=usage.items / usage.calls if usage.calls else math.nan,
        fill_ratio=(usage.items / usage.calls / max_batch) if usage.calls else math.nan,
        busy_fraction=min(usage.busy / measured, 1.0),
        generator_lag_p99_ms=lag_p99,
        generator_behind=lag_p99 is not None and (lag_p99 > 0.25 * slo_ms or sent_late > SENT_LATE_SHARE * requests),
        cdf_ms=cdf,
        sent_rps=requests / measured if offered is not None else None,
        answered=int(served.sum()), sent_late=sent_late,
    )


def check_arrivals(rate: float, config: BenchConfig, what: str) -> None:
    """Raise ConfigError when an open loop at ``rate`` would schedule more than MAX_ARRIVALS requests."""
    arrivals = rate * (config.warmup + config.duration)
    if arrivals > MAX_ARRIVALS:
        raise ConfigError(f"{what} {rate_text(rate)} for --warmup + --duration "
                          f"{format_duration(config.warmup + config.duration)} "
                          f"schedules {arrivals:,.0f} requests, more than the {MAX_ARRIVALS:,} a run can hold (about "
                          "43 bytes each for the report): shorten --duration, or lower the rate")


@contextmanager
def frozen_heap() -> Iterator[None]:
    """Collect, then freeze the objects built so far for the block; unfrozen on exit."""
    # Everything built so far (imports, the model, its weights, the inputs) lives for the whole run.
    # Freezing moves it out of the cyclic garbage collector's generations, so collections during the
    # measurement do not walk it: fewer and shorter GC pauses, which would otherwise show up as tail
    # latency and lost throughput. Requests in flight survive young collections and trigger full ones;
    # with ray imported (about 137k objects), an identity predict lost 15-20% of its throughput to them.
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


@contextmanager
def measurement_runtime() -> Iterator[None]:
    """:func:`frozen_heap`, and the GIL switched every 0.5 ms; both restored on exit."""
    # The generator, the batcher's worker and the completions are Python threads sharing the GIL. With
    # the default 5 ms switch interval a thread that wants the GIL can wait 5 ms, which would show up as
    # load-generator lag and latency for every policy alike; 0.5 ms keeps the harness out of the numbers.
    switch = sys.getswitchinterval()
    sys.setswitchinterval(0.0005)
    try:
        with frozen_heap():
            yield
    finally:
        sys.setswitchinterval(switch)


def run_policy(policy: str, predict: Callable[[list[Any]], Any], inputs: Sequence[Any], config: BenchConfig,
               *, rate: float | None, rng: np.random.Generator) -> PolicyResult:
    """Drive one policy with open-loop Poisson load at ``rate``, or closed-loop load when ``rate`` is None."""
    return _run_policy(policy, predict, inputs, config, rate=rate, rng=rng)[0]


def _run_policy(policy: str, predict: Callable[[list[Any]], Any], inputs: Sequence[Any], config: BenchConfig,
                *, rate: float | None, rng: np.random.Generator) -> tuple[PolicyResult, Trace]:
    """`run_policy`, also returning the run's trace (benchmarks/batcher_mlp.py gives each miss a cause from it)."""
    meter = Meter(predict)
    # Requests still queued this long after the last arrival have missed any sensible SLO.
    drain = max(0.5, 4 * config.slo_ms / 1000.0)
    server = make_server(policy, meter, max_batch_size=config.max_batch, max_latency_ms=config.max_latency_ms)
    try:
        if rate is not None:
            trace = open_loop(server, inputs, rate=rate, duration=config.duration, warmup=config.warmup, rng=rng,
                              drain_timeout=drain, deadline_ms=config.max_latency_ms)
        else:
            trace = closed_loop(server, inputs, concurrency=config.concurrency, duration=config.duration,
                                warmup=config.warmup, drain_timeout=drain)
    finally:
        server.close(drain=False)
    result = summarize(policy, trace, meter, offered=rate,
                       concurrency=None if rate is not None else config.concurrency, max_batch=config.max_batch,
                       max_latency_ms=config.max_latency_ms, slo_ms=config.slo_ms)
    return result, trace


def generator_limit(predict: Callable[[list[Any]], Any], inputs: Sequence[Any], config: BenchConfig) -> float:
    """The highest open-loop rate to run: GENERATOR_SHARE of the generator's flat-out rate on this model."""
    server = make_server("eager", predict, max_batch_size=config.max_batch, max_latency_ms=config.max_latency_ms)
    try:
        return GENERATOR_SHARE * max(generator_capacity(server, inputs, deadline_ms=config.max_latency_ms)
                                     for _ in range(GENERATOR_TRIES))
    finally:
        server.close(drain=False)


def run_bench(config: BenchConfig, *, progress: Callable[[str], None] = lambda message: None) -> BenchResult:
    """Profile the model, then run every policy of ``config`` under the same load; see ``docs/bench.md``.

    Examples
    --------
    >>> from mlplat.batcher import BenchConfig, ModelSpec, run_bench
    >>> config = BenchConfig(model=ModelSpec(width=16, hidden=32), device="cpu", max_batch=4, duration=0.2,
    ...                      warmup=0.05, rate=500, policies=("none", "deadline"))
    >>> result = run_bench(config)
    >>> [p.policy for p in result.policies], len(result.profile)
    (['none', 'deadline'], 4)
    """
    import torch

    device = resolve_device(config.device)
    if config.torch_threads is not None:
        torch.set_num_threads(config.torch_threads)
    predictor = TorchPredictor(config.model, device=device, dtype=config.dtype, seed=config.seed)
    progress("profiling S(b)")
    profile = tuple(profile_predict(predictor, _profile_sizes(config.max_batch)))
    best = max(profile, key=lambda p: p.rps)
    ceiling = best.rps
    inputs = predictor.example_inputs(256, seed=config.seed + 1)
    warnings: list[str] = []
    rates: list[float | None]
    if config.mode == "sweep":
        rates = [share * ceiling for share in SWEEP_FRACTIONS]
    elif config.mode == "concurrency":
        rates = [None]
    else:
        rates = [config.rate if config.rate is not None else config.rate_share * ceiling]
    with measurement_runtime():
        # Measured under the runs' GIL switch interval, after the profile: before any rate is refused.
        limit = generator_limit(predictor, inputs, config) if rates[0] is not None else math.inf
        if config.mode == "sweep" and any(r is not None and r > limit for r in rates):
            warnings.append(f"sweep points above {rate_text(limit)} (what the load generator can schedule "
                            "here) were skipped")
            rates = [r for r in rates if r is not None and r <= limit] or [limit]
        elif rates[0] is not None and rates[0] > limit:
            if config.rate is not None:
                raise ConfigError(f"--rate {rate_text(rates[0])} is above what the load generator can schedule on "
                                  f"this machine (about {rate_text(limit)}); lower the rate, or give --concurrency")
            # No load was asked for: run at what the generator can keep (a fast GPU's X* is far past it), and
            # say so, rather than refuse the command a user runs first.
            share = "half" if config.rate_share == 0.5 else f"{config.rate_share:g} times"
            warnings.append(f"the default load, {share} of X* = {rate_text(rates[0])}, is above what the load "
                            f"generator can schedule on this machine (about {rate_text(limit)}), so it ran at "
                            "that; give --concurrency to saturate the model")
            rates = [limit]
        if config.rate is None and rates[0] is not None:  # a given --rate was checked up front
            check_arrivals(max(r for r in rates if r is not None), config,
                           "the sweep's highest load," if config.mode == "sweep" else "the default load,")
        results: list[PolicyResult] = []
        for rate in rates:
            for policy in config.policies:
                label = "closed loop" if rate is None else rate_text(rate)
                progress(f"{policy} at {label}")
                rng = np.random.default_rng([config.seed, int(rate or 0)])  # same arrivals for every policy
                results.append(run_policy(policy, predictor, inputs, config, rate=rate, rng=rng))
    if config.mode == "sweep":
        chosen = tuple(max((r for r in results if r.policy == policy), key=lambda r: r.goodput_rps)
                       for policy in config.policies)
        sweep = tuple(results)
    else:
        chosen, sweep = tuple(results), ()
    (after,) = profile_predict(predictor, [best.batch])
    warnings += _run_warnings(config, profile, best, after, results)
    return BenchResult(device=device, model=config.model.describe(), dtype=config.dtype, mode=config.mode,
                       max_batch=config.max_batch, max_latency_ms=config.max_latency_ms, slo_ms=config.slo_ms,
                       ceiling_rps=ceiling, ceiling_batch=best.batch, profile=profile, policies=chosen,
                       sweep=sweep, warnings=tuple(warnings), ceiling_after_rps=after.rps)


def _run_warnings(config: BenchConfig, profile: Sequence[ProfilePoint], best: ProfilePoint, after: ProfilePoint,
                  results: Sequence[PolicyResult]) -> list[str]:
    """What a finished run warns about: a drifting ceiling, a generator behind schedule, a deadline shorter
    than any predict, an overloaded policy, too few requests for the tail percentiles."""
    warnings = []
    drift = ceiling_drift_warning(best, after)
    if drift is not None:
        warnings.append(drift)
    for result in results:
        if not result.generator_behind:
            continue
        lag = result.generator_lag_p99_ms or 0.0
        if lag > 0.25 * config.slo_ms:
            late = (f", {result.sent_late:,} of {result.requests:,} requests sent after their deadline, which "
                    f"{result.policy} refuses at once" if result.sent_late else "")
            warnings.append(f"the load generator fell behind its schedule at {result.offered_rps:,.0f} req/s "
                            f"({result.policy}: p99 lag {lag:.1f} ms{late}); latencies still count from the "
                            "scheduled arrival, but the offered load was not delivered on schedule")
        else:  # on schedule, but not within deadlines this short: the rejects are the generator's, not the policy's
            warnings.append(f"{result.sent_late:,} of {result.requests:,} requests reached {result.policy} after "
                            f"their deadline ({config.max_latency_ms:g} ms; the generator's p99 lag {lag:.2f} ms), "
                            "and it refuses them at once: that part of its reject rate is the generator's")
    short = short_deadline_warning(config.max_latency_ms, profile, config.policies)
    if short is not None:
        warnings.append(short)
    if config.mode == "rate":  # in a sweep, points past a policy's capacity are expected
        # With a deadline shorter than any predict the batchers answer nothing: that is said above, not the load.
        warnings += [w for r in results if (w := overload_warning(r)) is not None
                     and not (short and r.policy in ("deadline", "eager"))]
    few = few_requests_warning(results)
    if few is not None:
        warnings.append(few)
    return warnings


def write_plot(result: BenchResult, path: str | Path, *, force: bool = False) -> Path:
    """A PNG: latency CDF per policy; for a sweep, throughput, goodput and p99 against offered load."""
    panels = 3 if result.sweep else 1
    fig, axes = pyplot().subplots(1, panels, figsize=(5.5 * panels, 4), squeeze=False)
    ax = axes[0][0]
    for p in result.policies:
        if p.cdf_ms:  # unanswered requests are inf: matplotlib leaves them off, so a curve tops out early
            share = p.answered / p.requests if p.requests else 0.0
            ax.plot(p.cdf_ms, np.linspace(0, 1, len(p.cdf_ms)), label=f"{p.policy} ({share:.0%} answered)")
    ax.axvline(result.slo_ms, color="grey", linestyle="--", linewidth=1, label="SLO")
    ax.set(xlabel="latency (ms)", ylabel="share of all requests", title="latency CDF (unanswered: never)",
           xscale="log")
    ax.legend()
    if result.sweep:
        for policy in dict.fromkeys(p.policy for p in result.sweep):
            points = [p for p in result.sweep if p.policy == policy]
            offered = [p.offered_rps for p in points]
            line = axes[0][1].plot(offered, [p.throughput_rps for p in points], marker="o", label=policy)
            axes[0][1].plot(offered, [p.goodput_rps for p in points], marker="x", linestyle="--",
                            color=line[0].get_color())
            axes[0][2].plot(offered, [p.latency_ms["p99"] for p in points], marker="o", label=policy)
        axes[0][1].set(xlabel="offered (req/s)", ylabel="req/s",
                       title="throughput (solid) and goodput within SLO (dashed)")
        axes[0][2].axhline(result.slo_ms, color="grey", linestyle="--", linewidth=1)
        axes[0][2].set(xlabel="offered (req/s)", ylabel="p99 (ms)", title="p99 latency", yscale="log")
        axes[0][1].legend()
    fig.suptitle(f"{result.model} on {result.device}, X* = {result.ceiling_rps:,.0f} req/s")
    fig.tight_layout()
    return save_figure(fig, path, force=force)
