"""The MLP 512-2048-512 on the CPU (one torch thread): mlplat's throughput at saturation against the
ceiling X*, and deadline misses under Poisson load at 40% of X*.

X* = max_b b / S(b) from a profile of the predict alone; saturation is a closed loop with many requests
outstanding, so the batcher's share of the time is what keeps throughput below X*. X* is profiled with the
machine otherwise idle; the script also profiles the ceiling batch while another process keeps the second
core busy (as the load generator and completions do during a run), which gives the ceiling the machine
itself allows under load, so the batcher's share can be told from the machine's; the ceiling batch is also
profiled just before and after each saturation run. Saturation is measured twice: with the thread
producers of `mlplat bench --concurrency`, and with asyncio clients through ``infer``, the harness in which
``ray.serve.batch`` runs too (same predict, same run). Each deadline miss
under Poisson load is traced to its batch and given a cause, so misses the batcher decided can be told
from misses the machine caused (a predict far slower than its profile, a load generator sent late).
Run: `python benchmarks/batcher_mlp.py`; writes the "batcher_mlp" section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib.util
import math
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from _report import table, write_section
from batcher_common import Call, closed_loop, mlp_predictor, preload_ray, require_ray_batch

from mlplat.batcher import BenchConfig, DynamicBatcher, ModelSpec, PolicyResult, profile_predict
from mlplat.batcher._bench import _run_policy, measurement_runtime, run_policy
from mlplat.batcher._load import OK, Meter, Trace


def miss_causes(trace: Trace, calls: list[tuple[float, float, int]], profile_s: Callable[[int], float],
                max_latency: float) -> Counter[str]:
    """Why each measured request missed ``max_latency``, from its batch's dispatch and predict times.

    A late answer's batch is the last predict call that ended before the answer was recorded (results are
    recorded on the worker thread right after predict returns). The first cause that applies is counted:
    the predict ran more than 10% of ``max_latency`` over its profiled time (the machine), the load
    generator sent the request over 1 ms after its scheduled time (the machine: the batcher's clock
    starts at the send), the request waited longer than ``max_latency - S(n)`` before dispatch while the
    worker was in an earlier predict (the machine if that predict ran as far over its profile, else the
    batcher) or out of predict (the deadline policy's wait or a late wake-up of it, or, for either
    policy, the worker thread held off the CPU or the GIL, or handing back the previous batch: eager
    never waits, so its count of this cause is the machine's share), the hand-back after predict took
    over 1 ms, else the request was sent before its last safe moment but close to it and its predict ran
    over the profile by less than the 10% above (the margin the deadline policy keeps was too small).
    """
    low, high = trace.window
    starts = np.array([c[0] for c in calls])
    ends = np.array([c[1] for c in calls])
    sizes = [c[2] for c in calls]
    causes: Counter[str] = Counter()
    for i in np.flatnonzero((trace.start >= low) & (trace.start < high)):
        scheduled, finish = trace.start[i], trace.finish[i]
        if trace.status[i] != OK:
            causes["expired or refused before dispatch"] += 1
            continue
        if finish - scheduled <= max_latency:
            continue
        k = int(np.searchsorted(ends, finish, side="right")) - 1
        budget = profile_s(sizes[k])
        safe = scheduled + max_latency - budget  # the last dispatch time that could still make the deadline
        j = int(np.searchsorted(starts, safe, side="right")) - 1
        if ends[k] - starts[k] > budget + 0.1 * max_latency:
            causes["predict slower than profiled by > 10% of the deadline (machine)"] += 1
        elif trace.lag.size and trace.lag[i] > 0.001:
            causes["generator sent it > 1 ms late (machine)"] += 1
        elif starts[k] > safe and 0 <= j < k and ends[j] > safe:
            slow = ends[j] - starts[j] > profile_s(sizes[j]) + 0.1 * max_latency
            causes["held up by an earlier, slow predict (machine)" if slow else
                   "queued behind an earlier batch (batcher)"] += 1
        elif starts[k] > safe:
            causes["sent after the last safe moment, worker out of predict (policy wait or thread held off)"] += 1
        elif finish - ends[k] > 0.001:
            causes["hand-back took > 1 ms (a thread held off)"] += 1
        else:
            causes["sent near the last safe moment, predict slightly over profile (the margin)"] += 1
    return causes


def run_poisson(policy: str, predictor: Any, inputs: list[Any], config: BenchConfig, rate: float, seed: int,
                profile_s: Callable[[int], float]) -> tuple[PolicyResult, Counter[str]]:
    """One open-loop run like ``mlplat bench --rate``, keeping the trace to give each miss a cause."""
    recorder = Meter(predictor)  # keeps (start, end, size) of every call, so each late answer has its batch
    result, trace = _run_policy(policy, recorder, inputs, config, rate=rate, rng=np.random.default_rng(seed))
    return result, miss_causes(trace, recorder.log, profile_s, config.max_latency_ms / 1000.0)


def busy_core_ceiling(predictor: Any) -> float:
    """X* profiled while another process spins on the other core."""
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)
        return ceiling_now(predictor)
    finally:
        spinner.kill()
        spinner.wait()


# X* is the best b / S(b) over every batch size the batcher may send, as `mlplat bench` profiles it: the
# sizes 1, 8, 16, 24, 32 alone, and the paired ceiling at the first profile's best size only, judged runs
# at batch 32 against a ceiling they beat (found by a review pass).
SIZES = list(range(1, 33))


def ceiling_now(predictor: Any) -> float:
    """X* = max over b of b / S(b), profiled now (21 calls a size): also taken just before and after each
    saturation run."""
    return max(point.rps for point in profile_predict(predictor, SIZES, repeats=21))


Server = Callable[[Meter], contextlib.AbstractContextManager[Call]]


@contextlib.contextmanager
def mlplat_server(meter: Meter, policy: Any) -> Iterator[Call]:
    with DynamicBatcher(meter, max_batch_size=32, max_latency_ms=10.0, policy=policy) as batcher:
        yield batcher.infer


def ray_server(meter: Meter) -> contextlib.AbstractContextManager[Call]:
    return contextlib.nullcontext(require_ray_batch(meter, max_batch_size=32, wait_s=0.010))


@dataclass
class Segment:
    """One short saturation run from asyncio clients, with the ceiling profiled around it."""

    throughput: float
    ceiling: float  # X* (every batch size): the mean of the profiles just before and just after
    busy: float  # share of the run the worker spent inside predict
    mean_batch: float
    p99: float


def async_segment(server: Server, predictor: Any, inputs: list[Any], concurrency: int,
                  seconds: float) -> Segment:
    """Saturate ``server`` from asyncio clients for ``seconds``, profiling X* just before and after."""
    before = ceiling_now(predictor)
    meter = Meter(predictor)
    started = time.perf_counter()
    with server(meter) as call:
        latency = closed_loop(lambda: call, inputs, concurrency=concurrency, duration=seconds, warmup=0.25)
    elapsed = time.perf_counter() - started
    after = ceiling_now(predictor)
    usage = meter.usage()
    return Segment(latency.size / seconds, statistics.mean((before, after)), usage.busy / elapsed,
                   usage.items / usage.calls if usage.calls else math.nan,
                   float(np.percentile(latency, 99)) if latency.size else math.nan)


def async_saturation(predictor: Any, inputs: list[Any], concurrency: int, segments: int,
                     seconds: float, ceiling: float) -> tuple[list[tuple[str, ...]], dict[str, float]]:
    """mlplat's two policies and ``ray.serve.batch`` (when installed), saturated from asyncio clients.

    Each server runs ``segments`` short runs, the servers taking turns in alternating order, and each run
    is divided by the ceiling profiled just before and after it (a paired measurement): on this shared
    machine S(32) moved between about 1.5 and 2.1 ms from one minute to the next, and a ceiling taken
    once at the start would mostly measure that. Returns the table rows and each server's median
    throughput.
    """
    servers: dict[str, Server] = {f"mlplat {policy}": functools.partial(mlplat_server, policy=policy)
                                  for policy in ("deadline", "eager")}
    if importlib.util.find_spec("ray") is not None:
        servers["ray.serve.batch"] = ray_server
    runs: dict[str, list[Segment]] = {name: [] for name in servers}
    for k in range(segments):
        for name in list(servers)[::1 if k % 2 else -1]:
            runs[name].append(async_segment(servers[name], predictor, inputs, concurrency, seconds))
    rows, medians = [], {}
    for name, done in runs.items():
        paired = np.array([run.throughput / run.ceiling for run in done])
        medians[name] = statistics.median(run.throughput for run in done)
        rows.append((name, f"{medians[name]:,.0f}", f"{medians[name] / ceiling:.0%}",
                     f"{np.median(paired):.1%}",
                     f"{np.percentile(paired, 25):.1%} - {np.percentile(paired, 75):.1%}",
                     f"{paired.min():.1%} - {paired.max():.1%}",
                     f"{statistics.median(run.busy for run in done):.1%}",
                     f"{statistics.median(run.mean_batch for run in done):.1f}",
                     f"{statistics.median(run.p99 for run in done):.1f}"))
    return rows, medians


def _row(label: str, result: PolicyResult, ceiling: float, busy_ceiling: float, around: tuple[float, float] | None,
         why: str = "") -> tuple[str, ...]:
    """One table row; ``around`` is the ceiling profiled just before and after a saturation run."""
    bracket = (f"{around[0]:,.0f} / {around[1]:,.0f}", f"{result.throughput_rps / statistics.mean(around):.1%}"
               ) if around else ("-", "-")
    return (label, f"{result.throughput_rps:,.0f}", f"{result.throughput_rps / ceiling:.0%}",
            f"{result.throughput_rps / busy_ceiling:.0%}", *bracket,
            f"{result.busy_fraction:.0%}", f"{result.mean_batch:.1f}", f"{result.latency_ms['p99']:.1f}",
            f"{result.miss_rate:.2%}", f"{result.reject_rate:.2%}", why)


def _round(repeat: int, predictor: Any, inputs: list[Any], config: BenchConfig, ceilings: tuple[float, float],
           rate: float, concurrency: int, profile_s: Callable[[int], float]) -> list[tuple[str, ...]]:
    """One saturation run and one Poisson run per policy.

    The policies swap order from round to round: the first run after the profile (or after the previous
    round) was measurably slower on the shared machine, which would otherwise always count against the
    same policy.
    """
    rows = []
    policies = ("deadline", "eager") if repeat % 2 else ("eager", "deadline")
    for policy in policies:
        before = ceiling_now(predictor)
        saturated = run_policy(policy, predictor, inputs, config, rate=None, rng=np.random.default_rng(repeat))
        around = (before, ceiling_now(predictor))
        rows.append(_row(f"#{repeat} {policy}, closed loop ({concurrency} outstanding)", saturated, *ceilings,
                         around))
    for policy in policies:
        poisson, causes = run_poisson(policy, predictor, inputs, config, rate, repeat, profile_s)
        why = "; ".join(f"{count} {cause}" for cause, count in causes.most_common()) or "none"
        rows.append(_row(f"#{repeat} {policy}, Poisson at 40% of X* ({rate:,.0f}/s)", poisson, *ceilings, None,
                         why))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--segments", type=int, default=10, help="short paired runs per server, asyncio clients")
    parser.add_argument("--segment-seconds", type=float, default=1.0)
    args = parser.parse_args()
    predictor, inputs = mlp_predictor()
    profile = profile_predict(predictor, SIZES, repeats=21)
    best = max(profile, key=lambda p: p.rps)
    ceiling = best.rps
    busy_ceiling = busy_core_ceiling(predictor)
    sizes, ms = [p.batch for p in profile], [p.ms for p in profile]

    def profile_s(size: int) -> float:
        return float(np.interp(size, sizes, ms)) / 1000.0

    # As mlplat bench does after its warm-up: the imports, model, weights and inputs live for the whole
    # run, so freezing takes them out of the cyclic collector's generations (shorter GC pauses in the
    # tail), and GIL hand-offs come every 0.5 ms, not 5 ms.
    preload_ray()
    with measurement_runtime():
        config = BenchConfig(model=ModelSpec(width=512, hidden=2048), device="cpu", max_batch=32,
                             max_latency_ms=10.0, mode="concurrency", concurrency=args.concurrency,
                             duration=args.duration, warmup=1.0, slo_ms=25.0)
        rows = []
        rate = 0.4 * ceiling
        for repeat in range(1, args.repeats + 1):
            rows += _round(repeat, predictor, inputs, config, (ceiling, busy_ceiling), rate,
                           args.concurrency, profile_s)
        async_rows, medians = async_saturation(predictor, inputs, args.concurrency, args.segments,
                                               args.segment_seconds, ceiling)
    ray = medians.get("ray.serve.batch")
    versus_ray = ("; mlplat / ray at the median: " + ", ".join(
        f"{name.removeprefix('mlplat ')} {medians[name] / ray:.2f}x" for name in medians if name.startswith("mlplat"))
        if ray else "")
    curve = ", ".join(f"S({p.batch}) = {p.ms:.2f} ms" for p in profile)
    body = (f"MLP 512-2048-512, float32, one torch thread, max batch 32, max latency 10 ms, {args.duration:g} s "
            f"measured per run after 1 s of warm-up, "
            f"{args.repeats} rounds (every run shown). {curve}; ceiling X* = {ceiling:,.0f} req/s at batch "
            f"{best.batch}. With another process spinning on the second core, X* = {busy_ceiling:,.0f} req/s "
            f"({busy_ceiling / ceiling:.0%} of X*). The issue's figures on this kind of machine: S(32) about "
            "1.57 ms, X* about 20.4k req/s, `ray.serve.batch` 14.9k req/s (73% of X*).\n\n"
            + table(["run", "throughput req/s", "share of X*", "share of X* (other core busy)",
                     "X* before / after", "share of X* before/after", "worker busy",
                     "mean batch", "p99 ms", "deadline misses", "rejected", "miss causes (requests)"], rows)
            + "\n\nTargets: >= 90% of X* at saturation; no deadline misses at 40% of X*. 'share of X* (other core "
            "busy)' divides by the ceiling measured while another process spins on the second core: the "
            "load generator and the completions keep that core busy during a run, and predict slows down "
            "when it is. 'X* before / after' is X* (every batch size) profiled just before and just "
            "after a saturation run, and the next column divides by their mean: on this shared machine S(32) "
            "moved between about 1.5 and 2.1 ms from one minute to the next, so a run is also compared with "
            "the ceiling of its own minute. The closed loop here is `mlplat bench --concurrency`'s: thread "
            "producers, with a thread that records each answer and sends the next. 'worker busy' is the "
            "share of the run the worker spent inside predict: when other processes take the CPU, predict "
            "itself slows down (throughput falls below X*) while the worker stays busy. 'miss causes' traces "
            "each Poisson miss to its batch (see `miss_causes` in the script): 'machine' causes are a "
            "predict (its own or an earlier one) that ran well over its profile, or a request the generator "
            "sent late; '(batcher)' is the batcher's own decision. 'Worker out of predict' is the deadline "
            "policy's wait (or a late wake-up) or the worker thread held off the CPU: eager never waits, so "
            "eager's count of it is the machine's share.\n\n"
            f"Saturation from asyncio clients ({args.concurrency} tasks, each awaiting its request and then "
            "sending the next): the same harness for mlplat's `infer` and `ray.serve.batch`, in "
            f"{args.segments} runs of {args.segment_seconds:g} s each (after 0.25 s of warm-up), the servers "
            "taking turns. Each run is divided by the ceiling profiled just before and just after it "
            "('paired'); the table gives the median over the runs and the spread of the paired share. "
            "'worker busy' is the share of the run spent inside predict; ray runs predict on the clients' "
            f"event loop, so its clients cannot send while a batch runs{versus_ray}.\n\n"
            + table(["server", "throughput req/s (median)", "share of X*", "paired share of X* (median)",
                     "paired: middle half", "paired: min - max", "worker busy", "mean batch", "p99 ms"],
                    async_rows))
    write_section("batcher_mlp", "Batcher with the MLP on the CPU (`benchmarks/batcher_mlp.py`)", body,
                  packages=["torch"])
    print(body)


if __name__ == "__main__":
    main()
