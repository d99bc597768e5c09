"""The bench library: models, device choice, metric definitions, load generators, run_bench and the plot."""

from __future__ import annotations

import concurrent.futures
import gc
import itertools
import math
import re
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mlplat.batcher import (
    BenchConfig,
    ModelSpec,
    ProfilePoint,
    TorchPredictor,
    WindowBatcher,
    _bench,
    profile_predict,
    resolve_device,
    run_bench,
    write_plot,
)
from mlplat.batcher._bench import frozen_heap, measurement_runtime
from mlplat.batcher._load import (
    MIN_DEADLINE_MS,
    OK,
    REJECTED,
    UNANSWERED,
    Meter,
    Trace,
    closed_loop,
    generator_capacity,
    open_loop,
)
from mlplat.errors import BatcherClosed, BatcherError, DeviceError, MlplatError, OutputError

torch = pytest.importorskip("torch")
TINY = ModelSpec(width=8, hidden=16)
QUICK = {"model": TINY, "device": "cpu", "max_batch": 4, "duration": 0.2, "warmup": 0.05, "rate": 400.0}


def test_cuda_without_cuda_is_a_device_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """--device cuda on a machine without CUDA raises DeviceError saying what to use instead."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(DeviceError, match=r"--device cuda: CUDA is not available .*use --device cpu"):
        resolve_device("cuda")
    assert resolve_device("auto") == "cpu"
    with pytest.raises(DeviceError, match=r"--device must be auto, cpu or cuda, got 'tpu'"):
        resolve_device("tpu")


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"kind": "cnn"}, r"--model must be one of mlp, transformer, got 'cnn'"),
    ({"width": 0}, r"model `width` must be a positive integer, got 0"),
    ({"kind": "transformer", "width": 10, "heads": 4}, r"`width` \(10\) must be a multiple of `heads` \(4\)"),
    ({"width": 10**20}, r"about 4.1e\+23 weights, more than the 1,000,000,000 a benchmark model may have"),
    ({"kind": "transformer", "width": 64, "seq_len": 10**6}, r"shape \(1000000, 64\) holds more than 4,194,304"),
])
def test_model_spec_rejects_bad_sizes(kwargs: dict[str, Any], message: str) -> None:
    """A bad model option names the option and the value."""
    with pytest.raises(MlplatError, match=message):
        ModelSpec(**kwargs)


@pytest.mark.parametrize("spec", [TINY, ModelSpec(kind="transformer", width=8, hidden=16, heads=2, seq_len=3)])
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_predictor_returns_one_row_per_request(spec: ModelSpec, dtype: str) -> None:
    """predict on a batch returns one float32 output per request, shaped like the request."""
    predictor = TorchPredictor(spec, dtype=dtype)
    inputs = predictor.example_inputs(3)
    out = predictor(inputs)
    assert len(out) == 3
    assert out[0].shape == inputs[0].shape and out[0].dtype == torch.float32


def test_predictor_rejects_bad_dtype() -> None:
    """An unknown --dtype is refused."""
    with pytest.raises(MlplatError, match=r"--dtype must be one of float32, float16, bfloat16, got 'int8'"):
        TorchPredictor(TINY, dtype="int8")


def test_profile_has_one_point_per_size() -> None:
    """profile_predict measures S(b) for each size asked, with b / S(b) as the rate."""
    points = profile_predict(TorchPredictor(TINY), [1, 2, 4], repeats=2, warmup=1)
    assert [p.batch for p in points] == [1, 2, 4]
    assert all(p.ms > 0 and p.rps == pytest.approx(p.batch / p.ms * 1000) for p in points)


def test_summary_metric_definitions() -> None:
    """Throughput, goodput, miss and reject rates follow their documented definitions on a known trace."""
    # Window [1, 3): six arrivals inside. Of the two before it (warm-up), one is answered before the window
    # and one inside it: the second counts in the rates (answers inside the window), not in the requests.
    start = np.array([0.5, 0.992, 1.0, 1.2, 1.4, 1.6, 2.0, 2.5])
    finish = np.array([0.6, 1.002, 1.005, 1.25, 1.4, 1.62, 2.004, np.nan])
    status = np.array([OK, OK, OK, OK, REJECTED, OK, OK, 0], dtype=np.int8)
    meter = Meter(lambda xs: xs)
    # Batches and busy time count inside the window only: the warm-up batch of 4 is out, the batch of 5 that
    # started before it adds 0.1 s of busy time but no batch, the last one adds its 0.5 s inside.
    meter.log = [(0.5, 0.9, 4), (0.9, 1.1, 5), (1.0, 1.5, 2), (2.5, 3.5, 3)]
    result = _bench.summarize("deadline", Trace(start, finish, status, np.zeros(8), (1.0, 3.0)), meter,
                              offered=3.0, concurrency=None, max_batch=4, max_latency_ms=10, slo_ms=25)
    assert result.requests == 6
    assert result.throughput_rps == pytest.approx(5 / 2)  # five answered inside the window
    assert result.goodput_rps == pytest.approx(4 / 2)  # 10, 5, 20 and 4 ms are within 25 ms; 50 ms is not
    assert result.miss_rate == pytest.approx(3 / 6)  # 50 ms and 20 ms late, one never answered
    assert result.reject_rate == pytest.approx(1 / 6)
    assert (result.mean_batch, result.fill_ratio) == (2.5, 0.625)
    assert result.busy_fraction == pytest.approx(1.1 / 2)
    assert result.answered == 4
    # The CDF is over all six requests: the refused and the unanswered one never finish (inf).
    assert result.cdf_ms[0] == pytest.approx(4.0) and result.cdf_ms[-1] == math.inf
    assert sum(math.isfinite(x) for x in result.cdf_ms) == pytest.approx(201 * 4 / 6, abs=1)
    assert result.latency_ms["p50"] == pytest.approx(5.0)


def test_requests_sent_after_their_deadline_put_the_generator_behind() -> None:
    """A request the generator sends past its deadline is refused by the batchers at once: over 1% of them
    marks the run behind, and the count is kept, even when the lag's p99 is under a quarter of the SLO (such
    rejects were reported as the policy's own, found by a review pass)."""
    start = np.linspace(1.0, 2.9, 200)
    finish = start + 0.002
    status = np.full(200, OK, dtype=np.int8)
    lag = np.zeros(200)

    def summary(late: int) -> _bench.PolicyResult:
        lag[:] = 0.0
        lag[:late] = 0.012  # 12 ms late against a 10 ms deadline: under a quarter of the 1 s SLO
        return _bench.summarize("eager", Trace(start, finish, status, lag, (1.0, 3.0)), Meter(lambda xs: xs),
                                offered=100.0, concurrency=None, max_batch=4, max_latency_ms=10, slo_ms=1000)

    assert (summary(2).sent_late, summary(2).generator_behind) == (2, False)  # 1%: not more than it
    behind = summary(3)
    assert (behind.sent_late, behind.generator_behind, behind.to_dict()["sent_late"]) == (3, True, 3)
    assert behind.generator_lag_p99_ms is not None and behind.generator_lag_p99_ms < 250


def test_only_policies_that_refuse_late_requests_count_them_sent_late() -> None:
    """`window` serves a request sent after its deadline (its lag shows in its latency): none sent late, where
    it was said to refuse them (diff review). `eager` refuses them: all counted, even at 0.4 ms of lag
    against a 0.001 ms deadline (a 1 ms floor hid the generator's share of rejects at a 0.25 ms one)."""
    start = np.linspace(1.0, 2.9, 200)
    lag = np.full(200, 0.0004)  # 0.4 ms for every request, past a 0.001 ms deadline
    trace = Trace(start, start + 0.002, np.full(200, OK, dtype=np.int8), lag, (1.0, 3.0))
    counted = {policy: _bench.summarize(policy, trace, Meter(lambda xs: xs), offered=100.0, concurrency=None,
                                        max_batch=4, max_latency_ms=0.001, slo_ms=25)
               for policy in ("eager", "window")}
    assert (counted["eager"].sent_late, counted["eager"].generator_behind) == (200, True)
    assert (counted["window"].sent_late, counted["window"].generator_behind) == (0, False)


def test_late_sends_on_schedule_are_not_called_the_generator_falling_behind() -> None:
    """With a p99 lag of 0.4 ms the generator kept its schedule: the warning says the requests reached the
    policy after their deadline, not that the generator fell behind (diff review)."""
    result = _bench.PolicyResult(
        policy="eager", offered_rps=200.0, concurrency=None, requests=192, throughput_rps=0.0, goodput_rps=0.0,
        latency_ms={}, miss_rate=1.0, reject_rate=1.0, mean_batch=math.nan, fill_ratio=math.nan, busy_fraction=0.0,
        generator_lag_p99_ms=0.4, generator_behind=True, sent_late=192)
    config = BenchConfig(**{**QUICK, "max_latency_ms": 0.25})  # type: ignore[arg-type]
    point = ProfilePoint(batch=1, ms=0.05)
    warnings = _bench._run_warnings(config, [point], point, point, [result])
    assert ("192 of 192 requests reached eager after their deadline (0.25 ms; the generator's p99 lag 0.40 ms), "
            "and it refuses them at once: that part of its reject rate is the generator's") in warnings
    assert not any("fell behind" in w for w in warnings)


@pytest.mark.parametrize(("throughput", "offered", "warned"), [(0.0, 100.0, True), (89.0, 100.0, True),
                                                                 (90.0, 100.0, False), (50.0, None, False)])
def test_overload_warning_below_ninety_percent_of_the_offered_rate(throughput: float, offered: float | None,
                                                                  warned: bool) -> None:
    """An open-loop run answering under 90% of its offered rate in the interval is called overloaded."""
    result = _bench.PolicyResult(
        policy="none", offered_rps=offered, concurrency=None if offered else 64, requests=100,
        throughput_rps=throughput, goodput_rps=throughput, latency_ms={}, miss_rate=0.0, reject_rate=0.0,
        mean_batch=1.0, fill_ratio=1.0, busy_fraction=1.0, generator_lag_p99_ms=None, generator_behind=False)
    warning = _bench.overload_warning(result)
    assert (warning is not None) == warned
    if warned:
        assert warning is not None and warning.startswith(f"none: {throughput:,.0f} req/s of the 100 req/s sent")


def test_overload_warning_compares_with_what_was_sent() -> None:
    """Twenty answered of 30 req/s offered is no overload when only twenty were sent (Poisson noise at a low
    rate); ten answered of them is, and the warning prints the rate it compared with."""
    result = _bench.PolicyResult(
        policy="none", offered_rps=30.0, concurrency=None, requests=20, throughput_rps=20.0, goodput_rps=20.0,
        latency_ms={}, miss_rate=0.0, reject_rate=0.0, mean_batch=1.0, fill_ratio=1.0, busy_fraction=0.01,
        generator_lag_p99_ms=None, generator_behind=False, sent_rps=20.0)
    assert _bench.overload_warning(result) is None
    warning = _bench.overload_warning(replace(result, throughput_rps=10.0))
    assert warning == ("none: 10 req/s of the 20 req/s sent inside the measured interval were answered inside it "
                       "(10 requests short); it could not keep up with this load, its queue grew, and a request "
                       "answered late or refused counts as a miss or a reject")
    assert _bench.overload_warning(replace(result, requests=0, throughput_rps=0.0, sent_rps=0.0)) is None


@pytest.mark.parametrize(("requests", "answered", "warned"), [(4, 3, False), (40, 35, False), (40, 34, True),
                                                              (100, 91, False), (5, 0, False), (6, 0, True)])
def test_overload_warning_allows_the_requests_still_in_flight(requests: int, answered: int, warned: bool) -> None:
    """At 4 req/s, one of the 4 requests sent answered just after the interval is no overload (for 0.3 s it
    warned "10 of the 4 req/s offered", where 13.3 req/s were sent): a shortfall must be over 10% and over
    IN_FLIGHT_SLACK (5) requests."""
    interval = 0.25
    result = _bench.PolicyResult(
        policy="deadline", offered_rps=4.0, concurrency=None, requests=requests,
        throughput_rps=answered / interval, goodput_rps=answered / interval, latency_ms={}, miss_rate=0.0,
        reject_rate=0.0, mean_batch=1.0, fill_ratio=0.25, busy_fraction=0.01, generator_lag_p99_ms=0.1,
        generator_behind=False, sent_rps=requests / interval)
    assert (_bench.overload_warning(result) is not None) == warned


@pytest.mark.parametrize(("answered", "tail"), [(39, "p99 and p99.9 are"), (500, "p99.9 is"), (1000, None)])
def test_few_requests_warning_names_the_tail_that_is_only_a_maximum(answered: int, tail: str | None) -> None:
    """Under 1,000 answered requests the p99.9 is the slowest answer seen; under 100 the p99 is as well. It
    counts answers, not arrivals (2,000 arrivals of which 50 were answered gave no warning), and names every
    policy short of them, not only the fewest."""
    def result(policy: str, count: int) -> _bench.PolicyResult:
        return _bench.PolicyResult(
            policy=policy, offered_rps=20.0, concurrency=None, requests=2000, throughput_rps=20.0,
            goodput_rps=20.0, latency_ms={}, miss_rate=0.0, reject_rate=0.0, mean_batch=1.0, fill_ratio=1.0,
            busy_fraction=0.1, generator_lag_p99_ms=None, generator_behind=False, answered=count)

    warning = _bench.few_requests_warning([result("eager", 5000), result("deadline", answered)])
    if tail is None:
        assert warning is None
    else:
        assert warning is not None
        assert warning.startswith(f"deadline at 20 req/s has only {answered:,} answered requests (of 2,000 "
                                  f"measured): its {tail} just")
    both = _bench.few_requests_warning([result("eager", 500), result("deadline", 39)])
    assert both is not None and "eager at 20 req/s has only 500 answered" in both
    assert "deadline at 20 req/s has only 39 answered" in both
    # With no answer there is no slowest answer either (found by a review pass).
    none = _bench.few_requests_warning([result("deadline", 0)])
    assert none == ("deadline at 20 req/s answered none of its 2,000 measured requests: it has no latency "
                    "percentiles")  # more requests would not help: no advice to run longer (diff review)


def test_a_deadline_shorter_than_one_predict_is_named_not_called_an_overload() -> None:
    """--max-latency-ms 0.001 against a 0.35 ms predict: the batchers reject every request whatever the load;
    the warning says so (it said they could not keep up with 500 req/s)."""
    profile = [ProfilePoint(batch=1, ms=0.355), ProfilePoint(batch=2, ms=0.36)]
    warning = _bench.short_deadline_warning(0.001, profile, ("none", "window", "deadline", "eager"))
    assert warning == ("--max-latency-ms 0.001 is shorter than one request's predict time (0.355 ms at batch 1): "
                       "deadline and eager reject or miss every request, whatever the load")
    assert _bench.short_deadline_warning(10.0, profile, ("deadline",)) is None
    assert _bench.short_deadline_warning(0.001, profile, ("none", "window")) is None
    assert _bench.few_requests_warning([]) is None


def test_run_bench_says_when_a_policy_could_not_keep_up(monkeypatch: pytest.MonkeyPatch) -> None:
    """One request per predict at half the batched ceiling falls behind, and the result says so; its
    throughput is what it served in the interval (it read 0 while the warm-up's backlog was served)."""
    # Half of this tiny model's X* is above what the generator keeps a schedule for; a late generator still
    # overloads one request per predict, which is what is tested here.
    monkeypatch.setattr(_bench, "generator_limit", lambda *args: math.inf)
    result = run_bench(BenchConfig(**{**QUICK, "rate": None, "rate_share": 0.5, "policies": ("none",)}))  # type: ignore[arg-type]
    (none,) = result.policies
    assert 0 < none.throughput_rps < 0.9 * (none.offered_rps or 0)
    assert none.mean_batch == 1.0 and none.busy_fraction > 0.5
    assert any(w.startswith("none: ") and "could not keep up" in w for w in result.warnings)


def test_window_batcher_sends_full_batches() -> None:
    """The window baseline closes a batch as soon as it is full."""
    window = WindowBatcher(lambda xs: [x * 2 for x in xs], max_batch_size=2, window_s=60.0)
    futures = [window.submit(i) for i in range(4)]
    assert [f.result(10) for f in futures] == [0, 2, 4, 6]
    window.close()


def test_window_batcher_close_without_drain_fails_queued_work() -> None:
    """close(drain=False) lets the running batch finish and fails the batches still queued."""
    started, release = threading.Event(), threading.Event()

    def predict(items: list[int]) -> list[int]:
        started.set()
        release.wait(10)
        return items

    window = WindowBatcher(predict, max_batch_size=1, window_s=0.0)
    first = window.submit(1)
    assert started.wait(10)
    queued = window.submit(2)
    closer = threading.Thread(target=window.close, kwargs={"drain": False})
    closer.start()
    while window._drain:  # predict returns only once close() has marked the batcher closed
        closer.join(0.001)
    release.set()
    closer.join(10)
    assert first.result(10) == 1
    with pytest.raises(BatcherClosed, match="the window batcher closed before this request ran"):
        queued.result(10)


@pytest.mark.parametrize(("predict", "message"), [
    (lambda xs: xs[:-1], r"predict returned 2 results for a batch of 3"),
    (lambda xs: 5, r"predict returned int, not a sequence"),
    (lambda xs: 1 / 0, r"division by zero"),
])
def test_window_batcher_fails_a_bad_batch_and_lives_on(predict: Any, message: str) -> None:
    """A predict that returns the wrong count or no sequence, or raises, fails its batch; the next batch runs."""
    calls = itertools.count()

    def first_bad(items: list[int]) -> Any:
        return predict(items) if next(calls) == 0 else items

    window = WindowBatcher(first_bad, max_batch_size=3, window_s=60.0)
    bad = [window.submit(i) for i in range(3)]
    for future in bad:
        with pytest.raises((BatcherError, ZeroDivisionError), match=message):
            future.result(10)
    good = [window.submit(i) for i in range(3)]
    assert [f.result(10) for f in good] == [0, 1, 2]
    window.close()


def test_window_batcher_refuses_work_after_close() -> None:
    """submit() after close() raises BatcherClosed at once (its future would never complete)."""
    window = WindowBatcher(lambda xs: xs, max_batch_size=2, window_s=0.0)
    window.close()
    window.close()
    with pytest.raises(BatcherClosed, match="window batcher is closed"):
        window.submit(1)


class _Instant:
    """A server that answers at once."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.deadlines: list[float | None] = []

    def submit(self, item: Any, *, deadline_ms: float | None = None) -> concurrent.futures.Future[Any]:
        self.deadlines.append(deadline_ms)
        if self.delay:
            time.sleep(self.delay)  # a slow submit makes the generator send the next requests late
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        future.set_result(item)
        return future

    def close(self, drain: bool = True) -> None:
        pass


def test_open_loop_sends_a_seeded_poisson_schedule() -> None:
    """The open loop sends every scheduled arrival, measured from its schedule, the same for a seed."""
    runs = [open_loop(_Instant(), [0], rate=2000, duration=0.1, warmup=0.0, rng=np.random.default_rng(1))
            for _ in range(2)]
    first, second = runs
    assert len(first.start) == len(second.start) > 100
    assert np.allclose(np.diff(first.start), np.diff(second.start))
    assert (first.status == OK).all() and (first.finish >= first.start).all()


def test_open_loop_deadlines_count_from_the_scheduled_arrival() -> None:
    """A request sent late is told the time it has left; one sent after its deadline gets the minimum."""
    server = _Instant(delay=0.004)
    trace = open_loop(server, [0], rate=2000, duration=0.05, warmup=0.0, rng=np.random.default_rng(1),
                      deadline_ms=10.0)
    expected = np.maximum(10.0 - trace.lag * 1000.0, MIN_DEADLINE_MS)
    assert np.allclose(np.array(server.deadlines, dtype=float), expected)
    assert trace.lag.max() > 0.010 and min(server.deadlines) == MIN_DEADLINE_MS  # type: ignore[type-var]
    plain = _Instant()
    open_loop(plain, [0], rate=2000, duration=0.01, warmup=0.0, rng=np.random.default_rng(1))
    assert set(plain.deadlines) == {None}


class _Stamped(_Instant):
    """A slow server that records when each request was submitted."""

    def __init__(self, delay: float) -> None:
        super().__init__(delay)
        self.sent: list[float] = []

    def submit(self, item: Any, *, deadline_ms: float | None = None) -> concurrent.futures.Future[Any]:
        self.sent.append(time.perf_counter())
        return super().submit(item, deadline_ms=deadline_ms)


def test_open_loop_lag_is_each_request_s_own_when_it_falls_behind() -> None:
    """Overdue requests go out one after another: each one's lag is from its own send, not from when the
    burst began (that understated the lag, and left propagated deadlines too generous, by the burst)."""
    server = _Stamped(delay=0.002)
    trace = open_loop(server, [0], rate=5000, duration=0.03, warmup=0.0, rng=np.random.default_rng(3))
    actual = np.array(server.sent) - trace.start
    assert actual.max() > 0.05  # the generator fell well behind
    assert np.all(actual - trace.lag < 0.001)


class _Pool:
    """A server that answers on another thread."""

    def __init__(self) -> None:
        self.pool = concurrent.futures.ThreadPoolExecutor(1)

    def submit(self, item: Any, *, deadline_ms: float | None = None) -> concurrent.futures.Future[Any]:
        return self.pool.submit(lambda: item)

    def close(self, drain: bool = True) -> None:
        self.pool.shutdown()


def test_closed_loop_keeps_requests_outstanding() -> None:
    """The closed loop resends on each completion until the run ends, then stops."""
    server = _Pool()
    trace = closed_loop(server, [0], concurrency=3, duration=0.05, warmup=0.0)
    server.close()
    assert (trace.status == OK).all()
    # Far more than the three sent at start-up: each completion sent the next one for 50 ms.
    assert len(trace.start) > 30


class _Stalls(_Pool):
    """Answers at once, except its tenth request, which it never answers."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def submit(self, item: Any, *, deadline_ms: float | None = None) -> concurrent.futures.Future[Any]:
        self.count += 1
        if self.count == 10:
            return concurrent.futures.Future()
        return super().submit(item)


def test_closed_loop_records_a_request_never_answered_as_a_miss() -> None:
    """A request still unanswered after the drain is in the trace as never answered (status 0, no finish),
    so the report counts it as a miss; it was left out, and a stall at the end vanished from every figure."""
    server = _Stalls()
    trace = closed_loop(server, [0], concurrency=3, duration=0.05, warmup=0.0, drain_timeout=0.05)
    server.close()
    never = trace.status == UNANSWERED
    assert never.sum() == 1 and np.isnan(trace.finish[never]).all()
    # A deadline no answered request can miss, even on a loaded machine: the one miss is the unanswered one.
    result = _bench.summarize("eager", trace, Meter(lambda xs: xs), offered=None, concurrency=3, max_batch=4,
                              max_latency_ms=10_000, slo_ms=25)
    assert result.miss_rate == pytest.approx(1 / result.requests)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"max_batch": 0}, r"--max-batch must be an integer from 1 to 65,536, got 0"),
    ({"max_batch": 10**12}, r"--max-batch must be an integer from 1 to 65,536, got 1000000000000"),
    ({"max_batch": 40_000, "model": ModelSpec(width=40_000, hidden=8)}, r"holds more than 1,073,741,824 values"),
    ({"torch_threads": 10**20}, r"--torch-threads must be an integer from 1 to 1,024"),
    ({"seed": -1}, r"--seed must be an integer from 0 to 4,294,967,295, got -1"),
    ({"seed": 2**32}, r"--seed must be an integer from 0 to 4,294,967,295"),
    ({"max_latency_ms": -1.0}, r"--max-latency-ms must be a positive number, got -1.0"),
    ({"duration": 0.0}, r"--duration must be a positive number, got 0.0"),
    ({"rate": -5.0}, r"--rate must be a positive number of requests per second, got -5.0"),
    ({"policies": ("batchy",)}, r"--policies: unknown policy 'batchy'"),
    ({"policies": ()}, r"--policies must name at least one"),
    ({"policies": ("eager", "none", "eager")}, r"--policies: eager given more than once; name each policy once"),
    ({"concurrency": 0}, r"--concurrency must be an integer from 1 to 100,000, got 0"),
    ({"concurrency": 10**20}, r"--concurrency must be an integer from 1 to 100,000"),
])
def test_bench_config_rejects_bad_options(kwargs: dict[str, Any], message: str) -> None:
    """Each bad bench option raises MlplatError naming the option and the value."""
    with pytest.raises(MlplatError, match=message):
        BenchConfig(**kwargs)


def test_a_load_set_after_the_profile_is_checked_against_the_arrivals_a_run_can_hold(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The default load and a sweep's rates are known only after the profile: a schedule too long to hold is
    refused then, before any run, as a given --rate is up front (it was a MemoryError, exit 5)."""
    monkeypatch.setattr(_bench, "generator_limit", lambda *args: 100.0)
    for mode, what in (("rate", "the default load,"), ("sweep", "the sweep's highest load,")):
        config = BenchConfig(**{**QUICK, "rate": None, "mode": mode, "duration": 2e6})  # type: ignore[arg-type]
        with pytest.raises(MlplatError, match=f"{what} 100 req/s for --warmup \\+ --duration 23d4h schedules "
                                              r"200,000,0\d\d requests, more than the 100,000,000"):
            run_bench(config)


def test_run_bench_refuses_a_rate_the_generator_cannot_schedule(monkeypatch: pytest.MonkeyPatch) -> None:
    """A rate above the generator's measured capacity is refused instead of reported; a default load above it
    runs at the limit with a warning that names the default load, not a --rate the user never gave."""
    monkeypatch.setattr(_bench, "generator_limit", lambda *args: 100.0)
    with pytest.raises(MlplatError, match=r"--rate 400 req/s is above what the load generator can schedule on "
                                          r"this machine \(about 100 req/s\); lower the rate, or give --concurrency"):
        run_bench(BenchConfig(**QUICK))  # type: ignore[arg-type]
    result = run_bench(BenchConfig(**{**QUICK, "rate": None}))  # type: ignore[arg-type]
    assert [r.offered_rps for r in result.policies] == [100.0] * len(result.policies)  # ran at the limit
    assert any(re.match(r"the default load, half of X\* = [\d,]+ req/s, is above what the load generator can "
                        r"schedule on this machine \(about 100 req/s\), so it ran at that; give --concurrency",
                        w) for w in result.warnings)


def test_generator_capacity_is_measured_on_the_server_it_will_drive() -> None:
    """The capacity counts the server's own submit: a 1 ms submit caps it near 1,000 req/s (it timed bare
    futures, about 260k req/s here, and let through rates the generator then fell seconds behind on)."""
    server = _Instant(delay=0.001)
    capacity = generator_capacity(server, [0], seconds=0.02, deadline_ms=5.0)
    assert 0 < capacity <= 1000
    assert len(server.deadlines) >= 1 and set(server.deadlines) == {5.0}


def test_generator_limit_is_a_share_of_the_flat_out_rate(monkeypatch: pytest.MonkeyPatch) -> None:
    """The limit is GENERATOR_SHARE of the flat-out rate, measured against the real model's batcher."""
    seen: list[Any] = []

    def fake(server: Any, inputs: Any, *, deadline_ms: float | None = None) -> float:
        seen.append((type(server).__name__, deadline_ms))
        return 80_000.0

    monkeypatch.setattr(_bench, "generator_capacity", fake)
    predictor = TorchPredictor(TINY, device="cpu")
    limit = _bench.generator_limit(predictor, predictor.example_inputs(4), BenchConfig(**QUICK))  # type: ignore[arg-type]
    assert limit == _bench.GENERATOR_SHARE * 80_000.0 == 20_000.0
    assert seen == [("DynamicBatcher", 10.0)] * _bench.GENERATOR_TRIES


def test_generator_limit_takes_the_best_of_several_tries(monkeypatch: pytest.MonkeyPatch) -> None:
    """One 50 ms try ranged over 3x on a shared host, so the same --rate was refused or run by chance: the
    best try is the generator's rate (a disturbed try only comes out low)."""
    tries = iter([33_000.0, 93_000.0, 41_000.0, 80_000.0, 60_000.0])
    monkeypatch.setattr(_bench, "generator_capacity", lambda *args, **kwargs: next(tries))
    predictor = TorchPredictor(TINY, device="cpu")
    limit = _bench.generator_limit(predictor, predictor.example_inputs(4), BenchConfig(**QUICK))  # type: ignore[arg-type]
    assert limit == _bench.GENERATOR_SHARE * 93_000.0


def test_run_bench_sweep_picks_the_best_point(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A sweep runs every policy at every load share and reports each policy's highest goodput; it plots."""
    monkeypatch.setattr(_bench, "SWEEP_FRACTIONS", (0.001, 0.002))
    config = BenchConfig(**{**QUICK, "rate": None, "mode": "sweep", "policies": ("window", "eager")})  # type: ignore[arg-type]
    result = run_bench(config)
    assert len(result.sweep) == 4
    for best in result.policies:
        assert best.goodput_rps == max(p.goodput_rps for p in result.sweep if p.policy == best.policy)
    path = write_plot(result, tmp_path / "bench.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(OutputError, match="already exists"):
        write_plot(result, path)


@pytest.mark.parametrize(("after_ms", "warned"), [(1.0, False), (1.09, False), (0.91, False), (1.2, True),
                                                  (0.8, True)])
def test_ceiling_drift_is_reported_beyond_ten_percent(after_ms: float, warned: bool) -> None:
    """S(b) at the ceiling batch moving by more than 10% between the profiles is a warning, either way."""
    warning = _bench.ceiling_drift_warning(ProfilePoint(32, 1.0), ProfilePoint(32, after_ms))
    assert (warning is not None) == warned
    if warned:
        assert warning is not None and warning.startswith(f"S(32) was 1.00 ms before the runs and {after_ms:.2f} ms")


def test_run_bench_profiles_the_ceiling_again_and_warns_when_it_moved(monkeypatch: pytest.MonkeyPatch) -> None:
    """After the runs the ceiling batch is profiled again: its rate is reported, and a 2x slower S(b) warns."""
    real = _bench.profile_predict
    calls: list[list[int]] = []
    first: dict[int, float] = {}

    def slower_after(predictor: TorchPredictor, sizes: list[int], **kwargs: Any) -> list[ProfilePoint]:
        calls.append(list(sizes))
        if len(calls) == 1:
            points = real(predictor, sizes, **kwargs)
            first.update((p.batch, p.ms) for p in points)
            return points
        return [ProfilePoint(size, 2 * first[size]) for size in sizes]

    monkeypatch.setattr(_bench, "profile_predict", slower_after)
    result = run_bench(BenchConfig(**{**QUICK, "policies": ("eager",)}))  # type: ignore[arg-type]
    assert calls == [[1, 2, 3, 4], [result.ceiling_batch]]
    assert result.ceiling_after_rps == pytest.approx(result.ceiling_rps / 2)
    assert any("the machine's speed changed during the run" in w for w in result.warnings)
    assert result.to_dict()["ceiling_after_rps"] == result.ceiling_after_rps


def test_measurement_runtime_freezes_the_heap_and_restores_the_runtime_after() -> None:
    """The heap is frozen and the GIL switches every 0.5 ms inside; both undone after, even on an error."""
    switch = sys.getswitchinterval()
    kept = [object() for _ in range(10)]
    try:
        with measurement_runtime():
            assert gc.get_freeze_count() > len(kept)
            assert sys.getswitchinterval() == pytest.approx(0.0005)
            raise KeyError("the block fails")
    except KeyError:
        pass
    assert gc.get_freeze_count() == 0
    assert sys.getswitchinterval() == switch
    with frozen_heap():
        assert gc.get_freeze_count() > 0
        assert sys.getswitchinterval() == switch
    assert gc.get_freeze_count() == 0
