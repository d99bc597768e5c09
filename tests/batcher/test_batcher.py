"""DynamicBatcher with its threads: results, errors, cancellation, lifecycle, stats, and a stress run."""

from __future__ import annotations

import asyncio
import concurrent.futures
import re
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from mlplat.batcher import DynamicBatcher, _batcher
from mlplat.batcher._delivery import HAND_BACK_MAX
from mlplat.errors import BatcherClosed, BatcherError, DeadlineExceeded, QueueFull

WAIT = 10.0  # seconds a test waits for a worker thread before calling it hung (never a timing rule)
LONG = 60_000.0  # a deadline no stall of a loaded machine reaches, where a test is not about deadlines


class FakeClock:
    """A monotonic clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Gate:
    """A predict whose first call holds the worker until released, so tests can queue behind it."""

    def __init__(self, fn: Callable[[list[Any]], list[Any]] = lambda xs: list(xs)) -> None:
        self.fn = fn
        self.started = threading.Event()
        self.release = threading.Event()
        self.batches: list[list[Any]] = []

    def __call__(self, items: list[Any]) -> list[Any]:
        self.batches.append(list(items))
        if len(self.batches) == 1:
            self.started.set()
            assert self.release.wait(WAIT)
        return self.fn(items)


def _busy(gate: Gate, batcher: DynamicBatcher, item: Any = "first") -> Any:
    """Occupy the only worker with one request and return its future."""
    future = batcher.submit(item)
    assert gate.started.wait(WAIT)
    return future


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"max_batch_size": 0}, r"`max_batch_size` must be a positive integer, got 0"),
    ({"max_batch_size": 2.5}, r"`max_batch_size` must be a positive integer, got 2.5"),
    ({"max_latency_ms": -1}, r"`max_latency_ms` must be a positive finite number, got -1"),
    ({"max_latency_ms": float("inf")}, r"`max_latency_ms` must be a positive finite number, got inf"),
    ({"max_queue_size": 0}, r"`max_queue_size` must be a positive integer, got 0"),
    ({"workers": 0}, r"`workers` must be a positive integer, got 0"),
    ({"policy": "greedy"}, r"`policy` must be 'deadline' or 'eager', got 'greedy'"),
    ({"on_deadline": "drop"}, r"`on_deadline` must be 'reject' or 'serve', got 'drop'"),
    ({"allowed_batch_sizes": []}, r"`allowed_batch_sizes` must hold at least one size"),
    ({"allowed_batch_sizes": [0, 4]}, r"`allowed_batch_sizes` must be a positive integer, got 0"),
    ({"allowed_batch_sizes": [64]}, r"`allowed_batch_sizes` must be <= max_batch_size \(32\), got 64"),
    # Each of these was a bare TypeError, or (clock, max_latency_ms) a dead worker and a close() that hung.
    ({"allowed_batch_sizes": 5}, r"`allowed_batch_sizes` must be a sequence of positive integers, got 5"),
    ({"allowed_batch_sizes": [1, "2"]}, r"`allowed_batch_sizes` must be a sequence of positive integers"),
    ({"allowed_batch_sizes": [[1]]}, r"`allowed_batch_sizes` must be a sequence of positive integers"),
    ({"clock": 5}, r"`clock` must be callable, got int 5"),
    ({"max_latency_ms": 1e14}, r"`max_latency_ms` must be at most 1e\+09 \(about 11 days\), got 1e\+14"),
])
def test_bad_arguments_name_the_thing_the_rule_and_the_value(kwargs: dict[str, Any], message: str) -> None:
    """Each bad constructor argument raises BatcherError naming it, the rule and the value."""
    with pytest.raises(BatcherError, match=message):
        DynamicBatcher(lambda xs: xs, **kwargs)


def test_predict_must_be_callable() -> None:
    """A predict that is not callable is refused with its type."""
    with pytest.raises(BatcherError, match=r"`predict` must be callable, got int 3"):
        DynamicBatcher(3)  # type: ignore[arg-type]


def test_bad_request_deadline() -> None:
    """A non-positive per-request deadline is refused."""
    with DynamicBatcher(lambda xs: xs) as batcher, pytest.raises(BatcherError, match=r"`deadline_ms`.*got 0"):
        batcher.submit(1, deadline_ms=0)


def test_thread_and_asyncio_producers_get_their_results() -> None:
    """submit, __call__ and infer each return the result for their own item."""
    with DynamicBatcher(lambda xs: [x * 2 for x in xs], max_latency_ms=100, on_deadline="serve") as batcher:
        assert [f.result(WAIT) for f in [batcher.submit(i) for i in range(10)]] == list(range(0, 20, 2))
        assert batcher(21) == 42

        async def main() -> list[int]:
            return list(await asyncio.gather(*(batcher.infer(i) for i in range(50))))

        assert asyncio.run(main()) == [2 * i for i in range(50)]


def test_async_predict_runs_on_a_private_loop() -> None:
    """An async def predict is awaited on the batcher's own loop."""
    async def predict(items: list[int]) -> list[int]:
        await asyncio.sleep(0)
        return [-x for x in items]

    with DynamicBatcher(predict, policy="eager", max_latency_ms=LONG) as batcher:
        assert [batcher.submit(i).result(WAIT) for i in range(3)] == [0, -1, -2]


@pytest.mark.parametrize(("fn", "message"), [
    (lambda xs: xs[:-1] if len(xs) > 1 else [], r"predict returned \d+ results for a batch of \d+"),
    (lambda xs: None, r"predict returned NoneType, not a sequence with one result per item"),
    # Sized, so len() passed: every future got a dict key (its own input) or a character.
    (lambda xs: {x: x for x in xs}, r"predict returned a dict, not a sequence with one result per item"),
    (lambda xs: "a" * len(xs), r"predict returned a str, not a sequence"),
])
def test_wrong_number_of_results_fails_the_batch(fn: Callable[[list[Any]], Any], message: str) -> None:
    """A predict that does not return one result per item fails each request with BatcherError."""
    with DynamicBatcher(fn, policy="eager", max_latency_ms=LONG) as batcher:
        future = batcher.submit(1)
        with pytest.raises(BatcherError, match=message):
            future.result(WAIT)
    assert batcher.stats().failed == 1


def test_predict_error_reaches_its_batch_and_nothing_else() -> None:
    """An exception from predict fails every request of that batch and no other request."""
    def fn(items: list[str]) -> list[str]:
        if "poison" in items:
            raise ValueError("bad batch")
        return items

    gate = Gate(fn)
    with DynamicBatcher(gate, policy="eager", max_latency_ms=LONG) as batcher:
        first = _busy(gate, batcher)
        queued = [batcher.submit(x) for x in ("a", "poison", "b")]
        gate.release.set()
        assert first.result(WAIT) == "first"
        for future in queued:
            with pytest.raises(ValueError, match="bad batch"):
                future.result(WAIT)
        assert batcher("after") == "after"
    assert gate.batches[1] == ["a", "poison", "b"]
    stats = batcher.stats()
    assert (stats.completed, stats.failed) == (2, 3)


def test_next_batch_is_formed_only_when_the_worker_is_free() -> None:
    """Requests that arrive while predict runs go out together in the next batch, not in timer slices."""
    gate = Gate()
    with DynamicBatcher(gate, policy="eager", max_latency_ms=LONG, max_batch_size=32) as batcher:
        _busy(gate, batcher)
        futures = [batcher.submit(i) for i in range(20)]
        gate.release.set()
        assert [f.result(WAIT) for f in futures] == list(range(20))
    assert gate.batches[1] == list(range(20))


def test_deadline_policy_dispatches_when_the_fake_clock_reaches_deadline_minus_predict_time() -> None:
    """With a learned S(1) = 2 ms, a lone request is sent once the clock reaches its deadline - 2 ms."""
    clock = FakeClock()

    def predict(items: list[int]) -> list[int]:
        clock.now += 0.002  # predict "takes" 2 ms of fake time
        return items

    with DynamicBatcher(predict, max_latency_ms=10, clock=clock) as batcher:
        assert batcher(0) == 0  # unknown predict time: sent at once, S(1) learned
        clock.now = 1.0
        future = batcher.submit(1)
        # The worker wakes every 7.5 ms of real time (its timed wait), reads the fake clock still at 1.0,
        # and keeps the request: 50 ms later it is still queued (a policy that never waits sends it at once).
        batcher._kick()
        assert not concurrent.futures.wait([future], timeout=0.05).done
        clock.now = 1.0075  # past deadline 1.010 - S(1) 0.002 - guard 0.001
        batcher._kick()
        assert future.result(WAIT) == 1


def test_expired_request_gets_deadline_exceeded() -> None:
    """A request whose deadline passes while the worker is busy fails with DeadlineExceeded."""
    clock = FakeClock()
    gate = Gate()
    with DynamicBatcher(gate, policy="eager", max_latency_ms=10, clock=clock) as batcher:
        _busy(gate, batcher)
        late = batcher.submit("late")
        tight = batcher.submit("tight", deadline_ms=1)
        clock.now = 0.005
        on_time = batcher.submit("on time")
        gate.release.set()
        assert on_time.result(WAIT) == "on time"
        with pytest.raises(DeadlineExceeded, match=r"deadline passed 4.00 ms before dispatch"):
            tight.result(WAIT)
        assert late.result(WAIT) == "late"
    assert batcher.stats().expired == 1


def test_on_deadline_serve_runs_late_requests() -> None:
    """With on_deadline='serve' a late request still gets its result."""
    clock = FakeClock()
    gate = Gate()
    with DynamicBatcher(gate, policy="eager", on_deadline="serve", clock=clock) as batcher:
        _busy(gate, batcher)
        late = batcher.submit("late")
        clock.now = 1.0
        gate.release.set()
        assert late.result(WAIT) == "late"


def test_queue_full_at_once_or_after_blocking() -> None:
    """A full queue raises QueueFull at once; block=True waits for room and gets in."""
    gate = Gate()
    with DynamicBatcher(gate, policy="eager", max_latency_ms=LONG, max_queue_size=2) as batcher:
        _busy(gate, batcher)
        queued = [batcher.submit(1), batcher.submit(2)]
        with pytest.raises(QueueFull, match=r"max_queue_size=2"):
            batcher.submit(3)
        with pytest.raises(QueueFull, match=r"max_queue_size=2 requests for the whole timeout \(0 s\)"):
            batcher.submit(3, block=True, timeout=0)
        waited: list[Any] = []
        producer = threading.Thread(target=lambda: waited.append(batcher.submit(4, block=True)))
        producer.start()
        gate.release.set()
        producer.join(WAIT)
        assert [f.result(WAIT) for f in queued] == [1, 2]
        assert waited[0].result(WAIT) == 4
    assert batcher.stats().rejected == 2


def test_asyncio_queue_full() -> None:
    """infer fails the futures beyond max_queue_size with QueueFull."""
    gate = Gate()
    with DynamicBatcher(gate, policy="eager", max_latency_ms=LONG, max_queue_size=3) as batcher:
        _busy(gate, batcher)

        async def main() -> list[Any]:
            futures = [batcher.infer(i) for i in range(5)]
            await asyncio.sleep(0)
            gate.release.set()
            return list(await asyncio.gather(*futures, return_exceptions=True))

        results = asyncio.run(main())
    assert results[:3] == [0, 1, 2]
    assert all(isinstance(r, QueueFull) for r in results[3:])


def test_asyncio_block_waits_for_room() -> None:
    """infer(block=True) on a full queue waits, without blocking the loop, and gets in when a worker pops."""
    gate = Gate()
    with DynamicBatcher(gate, policy="eager", max_latency_ms=LONG, max_queue_size=1) as batcher:
        _busy(gate, batcher)
        queued = batcher.submit("queued")

        async def main() -> list[Any]:
            waiting = batcher.infer("waited", block=True)
            ticks = 0
            while ticks < 20:  # the loop keeps running while the request waits for room
                await asyncio.sleep(0)
                ticks += 1
            assert not waiting.done()
            gate.release.set()
            return [await waiting, ticks]

        assert asyncio.run(main()) == ["waited", 20]
        assert queued.result(WAIT) == "queued"
    stats = batcher.stats()
    assert (stats.submitted, stats.completed, stats.rejected) == (3, 3, 0)


def test_asyncio_block_times_out_with_queue_full() -> None:
    """infer(block=True, timeout=...) raises QueueFull when no room comes in time; it counts as rejected."""
    gate = Gate()
    with DynamicBatcher(gate, policy="eager", max_latency_ms=LONG, max_queue_size=1) as batcher:
        _busy(gate, batcher)
        batcher.submit("queued")

        async def main() -> None:
            with pytest.raises(QueueFull, match=r"max_queue_size=1 requests for the whole timeout \(0.01 s\)"):
                await batcher.infer("late", block=True, timeout=0.01)

        asyncio.run(main())
        assert batcher.stats().rejected == 1
        gate.release.set()


def test_asyncio_block_hears_close_and_cancel() -> None:
    """A request waiting for room gets BatcherClosed on close; a cancelled one never enters the queue."""
    gate = Gate()
    batcher = DynamicBatcher(gate, policy="eager", max_latency_ms=LONG, max_queue_size=1)
    _busy(gate, batcher)
    batcher.submit("queued")

    async def main() -> BaseException | None:
        cancelled = batcher.infer("cancelled", block=True)
        closed = batcher.infer("closed", block=True)
        await asyncio.sleep(0)
        cancelled.cancel()
        await asyncio.sleep(0)
        closer = asyncio.get_running_loop().run_in_executor(None, lambda: batcher.close(drain=False))
        error = None
        try:
            await closed
        except BatcherClosed as exc:
            error = exc
        gate.release.set()
        await closer
        assert cancelled.cancelled()
        return error

    assert isinstance(asyncio.run(main()), BatcherClosed)
    assert batcher.stats().submitted == 2  # the busy request and the queued one; neither waiter got in


def test_cancel_before_dispatch_removes_the_request() -> None:
    """A thread future cancelled before dispatch never reaches predict."""
    gate = Gate()
    with DynamicBatcher(gate, policy="eager", max_latency_ms=LONG) as batcher:
        _busy(gate, batcher)
        doomed, kept = batcher.submit("doomed"), batcher.submit("kept")
        assert doomed.cancel()
        gate.release.set()
        assert kept.result(WAIT) == "kept"
    assert gate.batches[1] == ["kept"]
    assert batcher.stats().cancelled == 1


def test_thread_future_cancelled_inside_a_batch_is_dropped_at_dispatch() -> None:
    """A cancelled thread future in the middle of the queue never reaches predict; its batch goes one short."""
    gate = Gate()
    with DynamicBatcher(gate, policy="eager", max_batch_size=2, max_latency_ms=LONG) as batcher:
        _busy(gate, batcher)
        a, doomed, b, c = (batcher.submit(x) for x in ("a", "doomed", "b", "c"))
        assert doomed.cancel()
        gate.release.set()
        assert [f.result(WAIT) for f in (a, b, c)] == ["a", "b", "c"]
    assert gate.batches[1:] == [["a"], ["b", "c"]]
    stats = batcher.stats()
    assert (stats.cancelled, stats.completed) == (1, 4)


def test_cancelled_task_removes_its_request() -> None:
    """An asyncio task cancelled before dispatch removes its request."""
    gate = Gate()
    with DynamicBatcher(gate, policy="eager", max_latency_ms=LONG) as batcher:
        _busy(gate, batcher)

        async def main() -> Any:
            doomed = asyncio.ensure_future(batcher.infer("doomed"))
            kept = batcher.infer("kept")
            await asyncio.sleep(0)
            doomed.cancel()
            await asyncio.sleep(0)
            gate.release.set()
            return await kept

        assert asyncio.run(main()) == "kept"
    assert gate.batches[1] == ["kept"]


def test_close_drain_finishes_queued_work() -> None:
    """close(drain=True) runs what is queued, then refuses new requests."""
    gate = Gate()
    batcher = DynamicBatcher(gate, policy="eager", max_latency_ms=LONG)
    _busy(gate, batcher)
    queued = [batcher.submit(i) for i in range(3)]
    closer = threading.Thread(target=batcher.close)
    closer.start()
    gate.release.set()
    closer.join(WAIT)
    assert [f.result(WAIT) for f in queued] == [0, 1, 2]
    with pytest.raises(BatcherClosed, match="closed"):
        batcher.submit(9)


def test_thread_futures_are_completed_off_the_worker_thread_when_more_work_waits() -> None:
    """With the next batch queued, a batch's done-callbacks run on the completer thread, not the worker's."""
    gate = Gate()
    seen: dict[str, str] = {}
    with DynamicBatcher(gate, policy="eager", max_batch_size=1, max_latency_ms=LONG) as batcher:
        first = _busy(gate, batcher)
        second = batcher.submit("second")
        for future, name in ((first, "first"), (second, "second")):
            future.add_done_callback(lambda _, name=name: seen.setdefault(name, threading.current_thread().name))
        gate.release.set()
        assert first.result(WAIT) == "first" and second.result(WAIT) == "second"
    # "second" was queued when "first" finished; nothing was queued when "second" finished.
    assert seen == {"first": "mlplat-batcher-completer", "second": "mlplat-batcher-0"}


def test_asyncio_results_wait_for_the_next_predict_when_more_work_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rule 12: with the next batch queued, a batch's results go back from the completer, HAND_BACK_MAX later.

    The fake clock makes predict take a second, so the delay is the cap; nothing was queued when the second
    batch finished, so the worker sends its result at once.
    """
    clock = FakeClock()
    ended: dict[str, float] = {}

    def slow(items: list[str]) -> list[str]:
        clock.now += 1.0
        ended[items[0]] = time.perf_counter()
        return list(items)

    gate = Gate(slow)
    sent: dict[str, tuple[str, float]] = {}
    send_back = _batcher.send_back

    def recording(outboxes: Any, futures: Any, loops: Any, values: Any, *, error: bool) -> None:
        sent[values[0]] = (threading.current_thread().name, time.perf_counter())
        send_back(outboxes, futures, loops, values, error=error)

    monkeypatch.setattr(_batcher, "send_back", recording)

    async def main(batcher: DynamicBatcher) -> list[str]:
        loop = asyncio.get_running_loop()
        first = batcher.infer("first")
        assert await loop.run_in_executor(None, gate.started.wait, WAIT)
        second = batcher.infer("second")
        await asyncio.sleep(0)  # the loop hands "second" to the queue
        gate.release.set()
        return [await first, await second]

    with DynamicBatcher(gate, policy="eager", max_batch_size=1, max_latency_ms=LONG, clock=clock) as batcher:
        assert asyncio.run(main(batcher)) == ["first", "second"]
    assert sent["first"][0] == "mlplat-batcher-completer"
    assert sent["first"][1] - ended["first"] >= HAND_BACK_MAX
    assert sent["second"][0] == "mlplat-batcher-0"


def test_close_without_drain_fails_queued_work() -> None:
    """close(drain=False) fails queued requests with BatcherClosed; the running batch completes."""
    gate = Gate()
    batcher = DynamicBatcher(gate, policy="eager", max_latency_ms=LONG)
    first = _busy(gate, batcher)
    queued = [batcher.submit(i) for i in range(3)]
    closer = threading.Thread(target=batcher.close, kwargs={"drain": False})
    closer.start()
    gate.release.set()
    closer.join(WAIT)
    assert first.result(WAIT) == "first"
    for future in queued:
        with pytest.raises(BatcherClosed, match="the batcher closed before this request ran"):
            future.result(WAIT)
    assert batcher.stats().failed == 3

    async def late() -> Any:
        return await batcher.infer(1)

    with pytest.raises(BatcherClosed, match="the batcher is closed; no new requests are accepted"):
        asyncio.run(late())


def test_blocked_producer_hears_close() -> None:
    """A producer blocked on a full queue gets BatcherClosed when the batcher closes."""
    gate = Gate()
    batcher = DynamicBatcher(gate, policy="eager", max_latency_ms=LONG, max_queue_size=1)
    _busy(gate, batcher)
    batcher.submit(1)
    errors: list[BaseException] = []

    def produce() -> None:
        try:
            batcher.submit(2, block=True)
        except BatcherClosed as exc:
            errors.append(exc)

    producer = threading.Thread(target=produce)
    producer.start()
    closer = threading.Thread(target=batcher.close, kwargs={"drain": False})
    closer.start()
    producer.join(WAIT)
    gate.release.set()
    closer.join(WAIT)
    assert len(errors) == 1


def test_allowed_batch_sizes_pad_and_drop_padding_results() -> None:
    """predict sees a padded batch; each request still gets its own result."""
    gate = Gate(lambda xs: [x * 10 for x in xs])
    with DynamicBatcher(gate, policy="eager", max_latency_ms=LONG, max_batch_size=8,
                        allowed_batch_sizes=[1, 4, 8]) as batcher:
        _busy(gate, batcher, 0)
        futures = [batcher.submit(i) for i in (1, 2, 3)]
        gate.release.set()
        assert [f.result(WAIT) for f in futures] == [10, 20, 30]
    assert gate.batches[1] == [1, 2, 3, 3]
    assert batcher.stats().padded == 1


def test_workers_run_batches_concurrently() -> None:
    """With workers=2 two predict calls run at the same time."""
    barrier = threading.Barrier(2, timeout=WAIT)

    def predict(items: list[int]) -> list[int]:
        barrier.wait()
        return items

    with DynamicBatcher(predict, policy="eager", max_latency_ms=LONG, workers=2, max_batch_size=1) as batcher:
        futures = [batcher.submit(i) for i in range(2)]
        assert [f.result(WAIT) for f in futures] == [0, 1]


def test_stats_counts_histogram_and_percentiles() -> None:
    """stats() reports counters, the batch-size histogram and percentiles in milliseconds."""
    clock = FakeClock()

    def predict(items: list[int]) -> list[int]:
        clock.now += 0.004
        return items

    gate = Gate(predict)
    with DynamicBatcher(gate, policy="eager", clock=clock) as batcher:
        _busy(gate, batcher, 0)
        futures = [batcher.submit(i) for i in range(1, 4)]
        gate.release.set()
        for f in futures:
            f.result(WAIT)
    stats = batcher.stats()
    assert (stats.submitted, stats.completed, stats.batches) == (4, 4, 2)
    assert stats.batch_sizes == {1: 1, 3: 1}
    assert stats.mean_batch == 2.0
    assert stats.predict_ms["p50"] == pytest.approx(4.0)
    assert stats.queue_delay_ms["p99"] == pytest.approx(4.0)
    doc = stats.to_dict()
    assert doc["batch_sizes"] == {"1": 1, "3": 1} and doc["mean_batch"] == 2.0
    assert "submitted 4" in stats.__rich__()


def test_stress_16_threads_and_4_event_loops() -> None:
    """16 producer threads and 4 event loops at once: no result lost, duplicated or sent to the wrong caller."""
    def predict(items: list[tuple[str, int]]) -> list[tuple[str, int, str]]:
        return [(owner, i, "done") for owner, i in items]

    per_thread, per_loop = 400, 1500
    failures: list[str] = []
    with DynamicBatcher(predict, max_batch_size=16, max_latency_ms=200, on_deadline="serve", workers=2) as batcher:
        def thread_producer(name: str) -> None:
            futures = [(i, batcher.submit((name, i))) for i in range(per_thread)]
            if any(f.result(WAIT) != (name, i, "done") for i, f in futures):
                failures.append(name)

        def loop_producer(name: str) -> None:
            async def one(i: int) -> bool:
                return await batcher.infer((name, i)) == (name, i, "done")

            async def main() -> list[bool]:
                return list(await asyncio.gather(*(one(i) for i in range(per_loop))))

            if not all(asyncio.run(main())):
                failures.append(name)

        threads = [threading.Thread(target=thread_producer, args=(f"t{i}",)) for i in range(16)]
        threads += [threading.Thread(target=loop_producer, args=(f"l{i}",)) for i in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    assert failures == []
    stats = batcher.stats()
    total = 16 * per_thread + 4 * per_loop
    assert stats.submitted == stats.completed == total
    assert sum(size * n for size, n in stats.batch_sizes.items()) == total
    assert stats.queued == stats.in_flight == 0


@pytest.mark.parametrize("error", [SystemExit(1), KeyboardInterrupt(), asyncio.CancelledError()])
def test_a_base_exception_from_predict_fails_its_batch_and_the_worker_goes_on(error: BaseException) -> None:
    """It killed the worker: every later future stayed pending and close() hung (rules 11 and 12)."""
    calls = []

    def predict(items: list[Any]) -> list[Any]:
        calls.append(items)
        if len(calls) == 1:
            raise error
        return list(items)

    batcher = DynamicBatcher(predict, policy="eager", max_latency_ms=LONG)
    with pytest.raises(type(error), match=f"^{re.escape(str(error))}$"):
        batcher.submit(1).result(WAIT)
    assert batcher.submit(2).result(WAIT) == 2
    _close_within(batcher, WAIT)
    assert batcher.stats().failed == 1


def _close_within(batcher: DynamicBatcher, seconds: float, **kwargs: Any) -> None:
    closer = threading.Thread(target=batcher.close, kwargs=kwargs, daemon=True)
    closer.start()
    closer.join(seconds)
    assert not closer.is_alive(), "close() hung"


@pytest.mark.parametrize("use_async", [False, True])
@pytest.mark.parametrize("where", ["callback", "predict"])
def test_close_from_a_batcher_thread_does_not_wait_on_itself(where: str, use_async: bool) -> None:
    """close() from a done-callback run by the worker, or from predict (sync, or async on the private loop),
    waited for the completer, which waited for this worker, or for the worker, which waited for this
    coroutine: each hung for good. The async loop is still stopped and closed."""
    box: list[DynamicBatcher] = []

    def sync_predict(items: list[Any]) -> list[Any]:
        if where == "predict":
            box[0].close()
        return list(items)

    async def async_predict(items: list[Any]) -> list[Any]:
        return sync_predict(items)

    batcher = DynamicBatcher(async_predict if use_async else sync_predict, policy="eager", max_latency_ms=LONG)
    box.append(batcher)
    future = batcher.submit(1)
    if where == "callback":
        future.add_done_callback(lambda _: batcher.close())
    assert future.result(WAIT) == 1
    _close_within(batcher, WAIT)
    assert batcher.closed and not any(t.is_alive() for t in batcher._threads)
    if batcher._loop_thread is not None:
        batcher._loop_thread.join(WAIT)
        assert batcher._async_loop is not None and batcher._async_loop.is_closed()


def test_close_without_drain_does_not_wait_for_a_stuck_predict_to_fail_the_queue() -> None:
    """Only a free worker failed the queue, so behind a predict that never returns, close(drain=False,
    timeout) returned with every queued future pending; a cancelled one counted as failed, not cancelled."""
    gate = Gate()
    batcher = DynamicBatcher(gate, policy="eager", max_latency_ms=LONG, max_batch_size=2)
    first = _busy(gate, batcher)
    queued = [batcher.submit(i) for i in range(3)]
    assert queued[1].cancel()
    batcher.close(drain=False, timeout=0.05)
    for future in (queued[0], queued[2]):
        with pytest.raises(BatcherClosed, match="the batcher closed before this request ran"):
            future.result(0)
    stats = batcher.stats()
    assert (stats.failed, stats.cancelled) == (2, 1)
    gate.release.set()
    assert first.result(WAIT) == "first"
    _close_within(batcher, WAIT)


def test_requests_infer_accepted_in_this_loop_iteration_are_drained_by_close() -> None:
    """infer() returned, so the requests were accepted; close(drain=True) on the same loop before it ran
    again failed them with BatcherClosed and counted them nowhere."""
    async def main() -> tuple[list[Any], Any]:
        with DynamicBatcher(lambda xs: [x * 2 for x in xs], policy="eager", max_latency_ms=LONG) as batcher:
            futures = [batcher.infer(i) for i in range(3)]
        return await asyncio.gather(*futures, return_exceptions=True), batcher.stats()

    results, stats = asyncio.run(main())
    assert results == [0, 2, 4] and (stats.submitted, stats.completed) == (3, 3)


def test_a_blocking_submit_may_wait_forever_with_an_infinite_timeout() -> None:
    """timeout=inf raised OverflowError (a wait past threading.TIMEOUT_MAX); it means no limit, as None."""
    gate = Gate()
    batcher = DynamicBatcher(gate, policy="eager", max_latency_ms=LONG, max_queue_size=1)
    _busy(gate, batcher)
    batcher.submit("queued")
    waiting = concurrent.futures.ThreadPoolExecutor(1).submit(batcher.submit, "third", block=True,
                                                                timeout=float("inf"))
    time.sleep(0.05)
    gate.release.set()
    assert waiting.result(WAIT).result(WAIT) == "third"
    _close_within(batcher, WAIT)


def test_an_async_predict_loop_is_closed_with_the_batcher() -> None:
    """close() stops and closes the private event loop an async predict runs on (its selector's files)."""
    async def predict(items: list[Any]) -> list[Any]:
        return list(items)

    batcher = DynamicBatcher(predict, policy="eager", max_latency_ms=LONG)
    assert batcher.submit(1).result(WAIT) == 1
    loop = batcher._async_loop
    _close_within(batcher, WAIT)
    deadline = time.monotonic() + WAIT
    while loop is not None and not loop.is_closed() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert loop is not None and loop.is_closed()


# ---- found by a review of the batcher's rules (each left futures pending, or broke a counter) -----------


def test_results_are_what_iterating_gives_not_what_len_says() -> None:
    """A DataFrame has one row per item, so its len() passed, but it iterates over its column names: one
    future got 'score' and the rest stayed pending, counted as completed. Each request now fails."""
    import pandas as pd

    def frame(items: list[int]) -> Any:
        return pd.DataFrame({"score": [x * 2 for x in items]})

    with DynamicBatcher(frame, max_batch_size=4, max_latency_ms=LONG, policy="eager") as batcher:
        gate_free = [batcher.submit(i) for i in range(4)]
        for future in gate_free:
            with pytest.raises(BatcherError, match=r"predict returned 1 results for a batch of \d \(as iterated\)"):
                future.result(WAIT)
    stats = batcher.stats()
    assert stats.completed == 0 and stats.failed == 4


@pytest.mark.parametrize("kind", ["keys", "items", "bytearray", "memoryview"])
def test_a_set_or_bytes_of_the_right_length_is_not_one_result_per_item(kind: str) -> None:
    """dict.keys() and .items() are sets, bytearray and memoryview bytes: they were handed out item by item."""
    def predict(items: list[int]) -> Any:
        pairs = {x: x for x in items}
        return {"keys": pairs.keys(), "items": pairs.items(), "bytearray": bytearray(b"ab"),
                "memoryview": memoryview(b"ab")}[kind]

    with DynamicBatcher(predict, max_batch_size=2, max_latency_ms=LONG, policy="eager") as batcher:
        with pytest.raises(BatcherError, match="not a sequence with one result per item"):
            batcher(1)


@pytest.mark.parametrize("raised", [SystemExit, KeyboardInterrupt])
def test_an_async_predict_raising_systemexit_fails_its_batch_and_the_worker_goes_on(
        raised: type[BaseException]) -> None:
    """SystemExit or KeyboardInterrupt from an async predict stopped its private loop: the batch, every later
    one and close() hung. The batch fails with it, and the next request is answered."""
    calls: list[list[int]] = []

    async def predict(items: list[int]) -> list[int]:
        calls.append(items)
        if len(calls) == 1:
            raise raised
        return items

    batcher = DynamicBatcher(predict, max_batch_size=1, max_latency_ms=LONG, policy="eager")
    with pytest.raises(raised):
        batcher.submit(1).result(WAIT)
    assert batcher.submit(2).result(WAIT) == 2
    batcher.close(timeout=WAIT)
    assert batcher._loop_thread is not None and not batcher._loop_thread.is_alive()
    assert batcher._async_loop is not None and batcher._async_loop.is_closed()  # closed with the batcher


def test_a_predict_raising_stopiteration_reaches_asyncio_producers() -> None:
    """An asyncio future refuses StopIteration (TypeError), which lost that answer and the loop's other
    batches with it. It reaches the producer as a BatcherError caused by the StopIteration."""
    def predict(items: list[int]) -> list[int]:
        if items == [1]:
            next(iter([]))
        return items

    async def main(batcher: DynamicBatcher) -> tuple[Any, ...]:
        return tuple(await asyncio.gather(batcher.infer(1), batcher.infer(2), return_exceptions=True))

    with DynamicBatcher(predict, max_batch_size=1, max_latency_ms=LONG, policy="eager") as batcher:
        failed, answered = asyncio.run(asyncio.wait_for(main(batcher), WAIT))
    assert isinstance(failed, BatcherError) and isinstance(failed.__cause__, StopIteration)
    assert answered == 2


def test_close_without_drain_counts_a_cancelled_asyncio_request_as_cancelled() -> None:
    """A queued asyncio request whose task was cancelled counted as failed at close(drain=False); a thread
    future's counted as cancelled, as rule 13 says for both."""
    gate = Gate()
    batcher = DynamicBatcher(gate, max_batch_size=1, max_latency_ms=LONG, policy="eager")
    first = _busy(gate, batcher)

    async def main() -> None:
        task = asyncio.ensure_future(batcher.infer("x"))
        await asyncio.sleep(0)  # the loop hands the request to the queue
        await asyncio.sleep(0)
        task.cancel()
        await asyncio.sleep(0)
        batcher.close(drain=False, timeout=0)

    asyncio.run(main())
    gate.release.set()
    first.result(WAIT)
    batcher.close(timeout=WAIT)
    stats = batcher.stats()
    assert (stats.cancelled, stats.failed) == (1, 0)


def test_a_blocking_infer_refused_by_close_is_counted() -> None:
    """infer(block=True) made in the same loop iteration as close() is refused with BatcherClosed (its task
    runs after the close); it was in no counter at all. It counts as rejected."""
    with DynamicBatcher(lambda xs: xs, max_batch_size=4, max_latency_ms=LONG, policy="eager") as batcher:
        async def main() -> tuple[Any, Any]:
            plain = batcher.infer("plain")
            blocking = batcher.infer("blocking", block=True)
            batcher.close()
            return tuple(await asyncio.gather(plain, blocking, return_exceptions=True))

        plain, blocking = asyncio.run(main())
    assert plain == "plain" and isinstance(blocking, BatcherClosed)
    assert batcher.stats().rejected == 1
