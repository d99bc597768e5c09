"""Every timing rule of the batcher, driven with plain numbers for time (no threads, no sleeps)."""

from __future__ import annotations

import asyncio
import concurrent.futures

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.strategies import queue_scripts

from mlplat.batcher._delivery import claim
from mlplat.batcher._scheduler import BatchQueue, RequestFields

MS = 0.001


def _queue(policy: str = "deadline", *, cap: int = 4, on_deadline: str = "reject",
           allowed: tuple[int, ...] | None = None, guard: float = 0.0) -> BatchQueue:
    return BatchQueue(max_batch_size=cap, policy=policy, on_deadline=on_deadline,  # type: ignore[arg-type]
                  allowed_batch_sizes=allowed, guard=guard)


def _add(queue: BatchQueue, item: int, now: float, latency: float = 10 * MS,
         loop: asyncio.AbstractEventLoop | None = None) -> RequestFields:
    """Queue a request with a thread future, or an asyncio future of ``loop``."""
    future = concurrent.futures.Future() if loop is None else loop.create_future()
    request = RequestFields(item, now, now + latency, future, loop)
    queue.items.append(request)
    return request


def test_deadline_sends_a_full_batch_at_once() -> None:
    """A full batch goes as soon as a worker is free, whatever the deadline."""
    queue = _queue(cap=4)
    queue.estimate.observe(4, 1 * MS)
    for i in range(5):
        _add(queue, i, 0.0)
    take = queue.take(0.0)
    assert [r.item for r in take.batch] == [0, 1, 2, 3]
    assert len(queue.items) == 1


def test_deadline_with_unknown_predict_time_sends_now() -> None:
    """Before any predict time is known the deadline policy sends at once, to learn it."""
    queue = _queue()
    _add(queue, 0, 0.0)
    assert [r.item for r in queue.take(0.0).batch] == [0]


def test_deadline_waits_until_deadline_minus_predict_time() -> None:
    """With S(2) = 3 ms and the oldest deadline at 10 ms the worker waits until 7 ms, then sends."""
    queue = _queue()
    queue.estimate.observe(2, 3 * MS)
    _add(queue, 0, 0.0)
    _add(queue, 1, 1 * MS)
    take = queue.take(2 * MS)
    assert take.batch == []
    assert take.wake_at == pytest.approx(7 * MS)
    assert queue.take(6.9 * MS).batch == []
    assert [r.item for r in queue.take(7 * MS).batch] == [0, 1]


def test_deadline_keeps_a_guard_in_hand() -> None:
    """The guard (10% of max_latency in the batcher) moves the dispatch time earlier by itself."""
    queue = _queue(guard=1 * MS)
    queue.estimate.observe(1, 3 * MS)
    _add(queue, 0, 0.0)
    assert queue.take(0.0).wake_at == pytest.approx(6 * MS)


def test_deadline_learns_wake_up_lateness() -> None:
    """Timed waits that woke late make the deadline policy dispatch that much earlier."""
    queue = _queue(guard=1 * MS)
    queue.estimate.observe(1, 3 * MS)
    queue.observe_lateness(2 * MS)
    _add(queue, 0, 0.0)
    assert queue.take(0.0).wake_at == pytest.approx(4 * MS)
    assert queue.guard == pytest.approx(3 * MS)


def test_deadline_uses_the_tightest_deadline_in_the_batch() -> None:
    """A later request with a tighter deadline moves the dispatch time earlier."""
    queue = _queue()
    queue.estimate.observe(2, 1 * MS)
    _add(queue, 0, 0.0)
    _add(queue, 1, 1 * MS, latency=3 * MS)
    assert queue.take(1 * MS).wake_at == pytest.approx(3 * MS)


def test_deadline_margin_includes_jitter() -> None:
    """The estimate is the EWMA of predict time plus twice its mean absolute deviation."""
    queue = _queue()
    queue.estimate.observe(1, 2 * MS)
    queue.estimate.observe(1, 4 * MS)  # mean 2.4 ms, deviation 0.4 ms
    _add(queue, 0, 0.0)
    assert queue.take(0.0).wake_at == pytest.approx(10 * MS - 3.2 * MS)


def test_estimate_rises_to_a_high_quantile_of_recent_times() -> None:
    """Once 20 times of a size are known, the estimate is at least their 99th percentile (a heavy tail)."""
    queue = _queue()
    for _ in range(18):
        queue.estimate.observe(1, 1 * MS)
    queue.estimate.observe(1, 5 * MS)  # one slow batch among 19: the EWMA alone still decides
    ewma = queue.estimate.estimate(1)
    assert ewma is not None and ewma < 5 * MS
    queue.estimate.observe(1, 1 * MS)  # the 20th time: the 99th percentile of 20 is the slowest, 5 ms
    assert queue.estimate.estimate(1) == pytest.approx(5 * MS)
    _add(queue, 0, 0.0)
    assert queue.take(0.0).wake_at == pytest.approx(10 * MS - 5 * MS)


def test_estimate_for_unseen_size_borrows_larger_then_scales_smaller() -> None:
    """An unseen size takes the nearest larger size's time, else scales the nearest smaller one."""
    queue = _queue(cap=8)
    queue.estimate.observe(4, 2 * MS)
    assert queue.estimate.estimate(3) == pytest.approx(2 * MS)
    assert queue.estimate.estimate(8) == pytest.approx(4 * MS)


def test_eager_sends_whatever_is_queued() -> None:
    """Eager is work-conserving: a free worker takes what is queued now, up to the cap."""
    queue = _queue("eager")
    queue.estimate.observe(1, 5 * MS)
    _add(queue, 0, 0.0)
    assert [r.item for r in queue.take(0.0).batch] == [0]


def test_empty_queue_waits_for_a_request() -> None:
    """With nothing queued the worker sleeps until a producer wakes it."""
    take = _queue().take(0.0)
    assert take.batch == [] and take.wake_at is None


def test_expired_requests_are_rejected_not_sent() -> None:
    """A request whose deadline passed before dispatch is handed back as expired, never batched."""
    queue = _queue()
    _add(queue, 0, 0.0, latency=1 * MS)
    _add(queue, 1, 0.5 * MS)
    take = queue.take(2 * MS)
    assert [r.item for r in take.expired] == [0]
    assert [r.item for r in take.batch] == [1]


def test_expired_requests_are_served_with_on_deadline_serve() -> None:
    """With on_deadline='serve' a late request is still sent."""
    queue = _queue(on_deadline="serve")
    _add(queue, 0, 0.0, latency=1 * MS)
    take = queue.take(5 * MS)
    assert take.expired == [] and [r.item for r in take.batch] == [0]


def test_cancelled_requests_leave_without_being_sent() -> None:
    """A request cancelled before dispatch is removed and never reaches predict."""
    queue = _queue()
    first = _add(queue, 0, 0.0)
    _add(queue, 1, 0.0)
    assert first.future.cancel()
    take = queue.take(0.0)
    assert take.cancelled == [first]
    assert [r.item for r in take.batch] == [1]


def test_cancelled_head_does_not_set_the_dispatch_time() -> None:
    """The oldest live request, not a cancelled one, decides how long to wait."""
    queue = _queue()
    queue.estimate.observe(1, 1 * MS)
    first = _add(queue, 0, 0.0)
    _add(queue, 1, 5 * MS)
    first.future.cancel()
    assert queue.take(5 * MS).wake_at == pytest.approx(14 * MS)


def test_closing_sends_without_waiting() -> None:
    """While draining on close, queued requests go at once."""
    queue = _queue()
    queue.estimate.observe(1, 1 * MS)
    _add(queue, 0, 0.0)
    assert [r.item for r in queue.take(0.0, closing=True).batch] == [0]


def test_allowed_sizes_pad_to_the_smallest_that_holds_the_batch() -> None:
    """With allowed sizes (1, 4, 8), three requests are padded to four."""
    queue = _queue("eager", cap=8, allowed=(1, 4, 8))
    for i in range(3):
        _add(queue, i, 0.0)
    take = queue.take(0.0)
    assert len(take.batch) == 3 and take.size == 4


def test_allowed_sizes_trim_to_the_largest() -> None:
    """A batch never holds more than the largest allowed size."""
    queue = _queue("eager", cap=8, allowed=(2, 4))
    for i in range(7):
        _add(queue, i, 0.0)
    take = queue.take(0.0)
    assert len(take.batch) == 4 and take.size == 4


def test_deadline_estimate_uses_the_padded_size() -> None:
    """The wait is computed from the predict time of the size predict will actually see."""
    queue = _queue(cap=8, allowed=(4, 8))
    queue.estimate.observe(4, 2 * MS)
    _add(queue, 0, 0.0)
    assert queue.take(0.0).wake_at == pytest.approx(8 * MS)


@settings(max_examples=150, deadline=None)
@given(queue_scripts(), st.booleans())
def test_every_request_leaves_exactly_once_in_order(script: list[tuple[str, float, float]],
                                                    asyncio_futures: bool) -> None:
    """Whatever the arrivals, cancellations and clock steps, each request leaves once, FIFO, in capped batches,
    and no cancelled request reaches predict (a thread future is dropped by claim at dispatch, rule 10)."""
    loop = asyncio.new_event_loop() if asyncio_futures else None
    try:
        for policy in ("deadline", "eager"):
            queue = _queue(policy, cap=3)
            queue.estimate.observe(2, 1 * MS)
            requests: list[RequestFields] = []
            out: list[RequestFields] = []
            dispatched: list[int] = []
            now = 0.0
            for op, dt, latency in script:
                now += dt
                if op == "add":
                    requests.append(_add(queue, len(requests), now, latency, loop))
                elif op == "cancel" and requests:
                    requests[int(latency * 1e6) % len(requests)].future.cancel()
                else:
                    take = queue.take(now)
                    assert len(take.batch) <= 3
                    assert all(r.deadline > now for r in take.batch)
                    assert not any(r.future.cancelled() for r in claim(take.batch))
                    assert all(r.deadline <= now for r in take.expired)
                    if take.batch == [] and queue.items and take.wake_at is not None:
                        assert take.wake_at > now
                    out += take.batch + take.expired + take.cancelled
                    dispatched += [r.item for r in take.batch]
            out += list(queue.items)
            assert dispatched == sorted(dispatched)  # FIFO: batches leave in arrival order, across batches too
            assert sorted(r.item for r in out) == list(range(len(requests)))
            sent = [r.item for r in out]
            assert len(set(sent)) == len(sent)
    finally:
        if loop is not None:
            loop.close()


@given(st.lists(st.integers(1, 64), min_size=1, max_size=6, unique=True), st.integers(1, 64))
def test_padded_size_is_the_smallest_allowed_that_holds(allowed: list[int], n: int) -> None:
    """padded_size(n) is allowed, >= n, and no smaller allowed size holds n."""
    queue = _queue(cap=64, allowed=tuple(sorted(allowed)))
    n = min(n, queue.cap)
    size = queue.padded_size(n)
    assert size in allowed and size >= n
    assert not [s for s in allowed if n <= s < size]
