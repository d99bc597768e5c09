"""The dynamic batcher: one queue, one condition, worker threads, thread and asyncio producers.

Invariants (why there is no race and why every future is completed exactly once):

1. ``BatchQueue`` and the counters are touched only while holding ``DynamicBatcher._cond`` (one lock, one
   condition). Producers append, workers pop; nothing else mutates the deque.
2. A request leaves the deque exactly once, under the lock, by one of: dispatch, expiry, cancellation
   noticed at the head or while forming a batch, or ``close(drain=False)``. Whoever removes it completes it,
   outside the lock. A request that never entered the deque (``QueueFull``, closed) is completed by the
   producer call that refused it; for ``infer(block=True)`` that is the task the caller awaits, which
   raises, and the request's own future, never seen by anyone, is left pending. A worker that hands a
   finished batch back through the completer thread (rule 12) passes the batch's futures and values in
   one queue put: from then on only the completer touches them.
3. A thread future goes through ``set_running_or_notify_cancel()`` once, when it leaves the deque: after
   that a user's ``cancel()`` fails, so the one ``set_result``/``set_exception`` that follows cannot race it.
   An asyncio future is completed only on its own loop (``call_soon_threadsafe``) and only if not yet done
   (a task cancelled while its batch was running).
4. A worker forms a batch only when it is free (it is the worker), so no batch is ever closed while all
   workers are busy; ``workers`` bounds the number of concurrent ``predict`` calls.
5. ``_idle`` counts workers inside ``cond.wait`` and changes only under the lock (before the wait, and
   after it returns with the lock re-acquired). ``Condition.wait`` registers its waiter before it releases
   the lock, so a producer that appends under the lock and sees ``_idle == 0`` knows every worker will
   look at the queue before it next waits: skipping ``notify()`` then loses no wake-up.
6. An ``infer(block=True)`` caller finds the queue full and registers its room future in
   ``_room_waiters`` under the same lock hold; a worker takes that list under the lock whenever it
   removes requests, and ``close`` takes it after marking the batcher closed, so no room or close
   is missed.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import math
import queue
import threading
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from typing import Any

from mlplat.batcher._delivery import Outboxes, claim, columns_of, complete, deliver, hand_back_delay, send_back
from mlplat.batcher._scheduler import ARRIVAL, DEADLINE, FUTURE, ITEM, LOOP, BatchQueue, OnDeadline, Policy, Request
from mlplat.batcher._stats import BatcherStats, Counters
from mlplat.errors import BatcherClosed, BatcherError, DeadlineExceeded, QueueFull

__all__ = ["DynamicBatcher"]

# Share of max_latency the deadline policy keeps in hand for thread wake-up and result hand-back.
GUARD_SHARE = 0.1
# The longest default deadline: 1e9 ms is about 11.6 days, far inside threading.TIMEOUT_MAX (a worker's
# timed wait past that raises OverflowError and the worker dies).
MAX_LATENCY_MS = 1e9
PredictFn = Callable[[list[Any]], Sequence[Any] | Awaitable[Sequence[Any]]]


def _expired_error(request: Request, now: float) -> DeadlineExceeded:
    return DeadlineExceeded(f"deadline passed {(now - request[DEADLINE]) * 1000:.2f} ms before dispatch "
                            f"(the request waited {(now - request[ARRIVAL]) * 1000:.2f} ms in the queue)")


def _check_results(results: Any, count: int) -> tuple[Any, BatcherError | None]:
    """The results to hand out, and None when they hold one result per item, else the error every request of
    the batch gets.

    What is handed out is what iterating ``results`` gives: a list or tuple as it is; anything else as the
    list of its items. A pandas DataFrame has one row per item but iterates over its column names, and its
    len() once let the batch through with futures left pending.
    """
    if type(results) is not list and type(results) is not tuple:
        if isinstance(results, Mapping | AbstractSet | str | bytes | bytearray | memoryview):
            return results, BatcherError(f"predict returned a {type(results).__name__}, not a sequence with one "
                                         f"result per item (batch of {count})")
        try:
            results = list(results)
        except TypeError:
            return results, BatcherError(f"predict returned {type(results).__name__}, not a sequence with one "
                                         f"result per item (batch of {count})")
    if len(results) != count:
        return results, BatcherError(f"predict returned {len(results)} results for a batch of {count} (as "
                                     "iterated); it must return one result per item, in order")
    return results, None


async def _guarded(predict: Awaitable[Any]) -> tuple[Any, BaseException | None]:
    """Await an async predict on the private loop, returning what it raised instead of raising it: a
    SystemExit or KeyboardInterrupt raised by a task stops the loop itself, and every later batch hung."""
    try:
        return await predict, None
    except BaseException as exc:
        return None, exc


def _run_loop(loop: asyncio.AbstractEventLoop) -> None:
    """Run an async predict's private loop until close() stops it, then close it (its selector's fds)."""
    try:
        loop.run_forever()
    finally:
        loop.close()


def _positive(name: str, value: Any, kind: type = int) -> None:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and value > 0 and math.isfinite(value)
    if kind is int:
        ok = ok and isinstance(value, int)
    if not ok:
        what = "a positive integer" if kind is int else "a positive finite number"
        raise BatcherError(f"`{name}` must be {what}, got {value!r}")


def _checked(predict: Any, max_batch_size: Any, max_latency_ms: Any, policy: Any, max_queue_size: Any,
             on_deadline: Any, workers: Any, allowed_batch_sizes: Any, clock: Any) -> tuple[int, ...] | None:
    """Raise :class:`BatcherError` for a bad constructor argument; return the allowed sizes, sorted, or None."""
    if not callable(predict):
        raise BatcherError(f"`predict` must be callable, got {type(predict).__name__} {predict!r:.60}")
    _positive("max_batch_size", max_batch_size)
    _positive("max_latency_ms", max_latency_ms, float)
    if max_latency_ms > MAX_LATENCY_MS:  # a timed wait past threading.TIMEOUT_MAX would kill the worker
        raise BatcherError(f"`max_latency_ms` must be at most {MAX_LATENCY_MS:g} (about 11 days), got "
                           f"{max_latency_ms:g}")
    if not callable(clock):
        raise BatcherError(f"`clock` must be callable, got {type(clock).__name__} {clock!r:.60}")
    _positive("max_queue_size", max_queue_size)
    _positive("workers", workers)
    if policy not in ("deadline", "eager"):
        raise BatcherError(f"`policy` must be 'deadline' or 'eager', got {policy!r}")
    if on_deadline not in ("reject", "serve"):
        raise BatcherError(f"`on_deadline` must be 'reject' or 'serve', got {on_deadline!r}")
    allowed = None
    if allowed_batch_sizes is not None:
        try:
            allowed = tuple(sorted(set(allowed_batch_sizes)))
        except TypeError:  # not iterable, unhashable items, or items that do not compare
            raise BatcherError(f"`allowed_batch_sizes` must be a sequence of positive integers, got "
                               f"{allowed_batch_sizes!r:.60}") from None
        if not allowed:
            raise BatcherError("`allowed_batch_sizes` must hold at least one size, got an empty sequence")
        for size in allowed:
            _positive("allowed_batch_sizes", size)
            if size > max_batch_size:
                raise BatcherError(f"`allowed_batch_sizes` must be <= max_batch_size ({max_batch_size}), "
                                   f"got {size}")
    return allowed


class DynamicBatcher:
    """Group requests from many producers into batches for one ``predict`` call, within a deadline.

    Parameters
    ----------
    predict : callable
        ``predict(items: list) -> sequence`` with one result per item, in order; a plain function runs on
        worker threads, an ``async def`` runs on a private event loop. Anything but one result per item
        fails each request of that batch with :class:`~mlplat.errors.BatcherError`.
    max_batch_size : int
        Most requests per ``predict`` call.
    max_latency_ms : float
        Default deadline of a request: arrival + this; a request may pass a tighter one.
    policy : {"deadline", "eager"}
        ``"deadline"`` waits to fill a batch while the tightest deadline in it can still be met after one
        predict of the batch it would send (estimated online per batch size) with 10% of
        ``max_latency_ms`` plus the learned wake-up lateness to spare; ``"eager"`` sends whatever is
        queued as soon as a worker is free.
    max_queue_size : int
        Most requests waiting; beyond it :class:`~mlplat.errors.QueueFull`.
    on_deadline : {"reject", "serve"}
        A request whose deadline passed before dispatch fails with
        :class:`~mlplat.errors.DeadlineExceeded` (``"reject"``) or is served anyway (``"serve"``).
    workers : int
        Concurrent ``predict`` calls (worker threads).
    allowed_batch_sizes : sequence of int, optional
        Sizes ``predict`` accepts (for fixed-shape engines, CUDA graphs). A batch holds at most the largest
        allowed size (trim) and is padded, by repeating its last item, to the smallest allowed size that
        holds it (pad); results for padding are dropped.
    clock : callable
        Monotonic clock in seconds (injected by tests).

    Notes
    -----
    The rules are numbered in ``docs/bench.md``. A batch is formed only when a worker is free, so a batch
    never closes on a timer while the model is busy: a fixed timer that keeps closing batches while a long
    predict runs leaves the next batches small and queued behind it.

    References
    ----------
    .. [1] NVIDIA Triton Inference Server, "Dynamic batcher" (``max_queue_delay_microseconds``,
       ``preferred_batch_size``), https://docs.nvidia.com/deeplearning/triton-inference-server/
    .. [2] D. Crankshaw et al., "Clipper: A Low-Latency Online Prediction Serving System", NSDI 2017
       (adaptive batching under a latency objective).
    .. [3] Ray Serve, "Dynamic Request Batching" (``@serve.batch``, ``max_batch_size``,
       ``batch_wait_timeout_s``), https://docs.ray.io/en/latest/serve/advanced-guides/dyn-req-batch.html

    Examples
    --------
    >>> from mlplat.batcher import DynamicBatcher
    >>> double = lambda xs: [x * 2 for x in xs]
    >>> with DynamicBatcher(double, max_batch_size=8, max_latency_ms=1000, policy="eager") as batcher:
    ...     futures = [batcher.submit(i) for i in range(5)]
    ...     [f.result() for f in futures], batcher(10)
    ([0, 2, 4, 6, 8], 20)

    From asyncio:

    >>> import asyncio
    >>> async def main(batcher):
    ...     return await asyncio.gather(*(batcher.infer(i) for i in range(3)))
    >>> with DynamicBatcher(lambda xs: [x + 1 for x in xs], max_latency_ms=1000, policy="eager") as batcher:
    ...     asyncio.run(main(batcher))
    [1, 2, 3]
    """

    def __init__(self, predict: PredictFn, *, max_batch_size: int = 32, max_latency_ms: float = 10.0,
                 policy: Policy = "deadline", max_queue_size: int = 10_000, on_deadline: OnDeadline = "reject",
                 workers: int = 1, allowed_batch_sizes: Sequence[int] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        allowed = _checked(predict, max_batch_size, max_latency_ms, policy, max_queue_size, on_deadline, workers,
                           allowed_batch_sizes, clock)
        self.max_batch_size = max_batch_size
        self.max_latency = max_latency_ms / 1000.0
        self.max_queue_size = max_queue_size
        self.policy = policy
        self.workers = workers
        self._predict = predict
        self._clock = clock
        self._cond = threading.Condition(threading.Lock())
        self._queue = BatchQueue(max_batch_size=max_batch_size, policy=policy, on_deadline=on_deadline,
                             allowed_batch_sizes=allowed, guard=GUARD_SHARE * self.max_latency)
        self._counters = Counters()
        self._closed = False
        self._drain = True
        self._in_flight = 0
        self._blocked = 0  # producers waiting for room (block=True); workers notify them when they pop
        # Event-loop producers waiting for room (infer(block=True)): one future per waiting request on its
        # own loop. A worker that pops, or close(), takes the list under the lock and wakes each future.
        self._room_waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        # Workers inside cond.wait(). A producer wakes one only if there is one: Condition.notify() is
        # Python code costing about a microsecond, paid per request by thread producers even while
        # every worker is busy in predict and nobody listens.
        self._idle = 0
        # asyncio requests gathered during one loop iteration, per loop; only that loop's thread touches
        # its own entry (dict get/set/pop are atomic), and _flush hands them over under one lock.
        self._pending: dict[asyncio.AbstractEventLoop, list[Request]] = {}
        self._async_loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: threading.Thread | None = None
        if inspect.iscoroutinefunction(predict) or inspect.iscoroutinefunction(type(predict).__call__):
            self._async_loop = asyncio.new_event_loop()
            self._loop_thread = threading.Thread(target=_run_loop, args=(self._async_loop,),
                                                 name="mlplat-batcher-loop", daemon=True)
            self._loop_thread.start()
        # When the next batch is ready, a finished batch's results go back from this thread, not the
        # worker's (rule 12): setting a concurrent.futures.Future runs its done-callbacks (the caller's code)
        # and costs a few µs each, and waking the producers starts their Python, both of which would
        # otherwise compete with the worker's own between one predict and the next. The worker hands them
        # over and starts the next predict at once; the last worker to stop sends None, so nothing is left
        # behind.
        self._completions: queue.SimpleQueue[tuple[float, Sequence[Any], Sequence[Any], Sequence[Any], bool] | None] = \
            queue.SimpleQueue()
        self._live_workers = workers
        self._outboxes = Outboxes()
        self._completer = threading.Thread(target=self._hand_back, name="mlplat-batcher-completer",
                                           daemon=True)
        self._completer.start()
        self._threads = [threading.Thread(target=self._work, name=f"mlplat-batcher-{i}", daemon=True)
                         for i in range(workers)]
        for thread in self._threads:
            thread.start()

    # ---- producers -----------------------------------------------------------------------------------

    def _deadline(self, now: float, deadline_ms: float | None) -> float:
        if deadline_ms is None:
            return now + self.max_latency
        _positive("deadline_ms", deadline_ms, float)
        return now + min(deadline_ms / 1000.0, self.max_latency)

    def submit(self, item: Any, *, deadline_ms: float | None = None, block: bool = False,
               timeout: float | None = None) -> concurrent.futures.Future[Any]:
        """Queue ``item``; the future gets its result, or a :class:`~mlplat.errors.BatcherError`.

        ``deadline_ms`` tightens the deadline (never loosens it past ``max_latency_ms``). A full queue
        raises :class:`~mlplat.errors.QueueFull` at once, or with ``block=True`` waits up to ``timeout``
        seconds (forever when ``None``) for room. Raises :class:`~mlplat.errors.BatcherClosed` after
        :meth:`close`.
        """
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        with self._cond:
            now = self._clock()
            request = (item, now, self._deadline(now, deadline_ms), future, None)
            self._admit_locked(request, block, timeout)
            if self._idle:
                self._cond.notify()
        return future

    def _admit_locked(self, request: Request, block: bool, timeout: float | None) -> None:
        if timeout is not None and timeout > threading.TIMEOUT_MAX:
            timeout = None  # inf: forever (a longer wait raises OverflowError)
        if self._closed:
            raise BatcherClosed("the batcher is closed; no new requests are accepted")
        if len(self._queue.items) >= self.max_queue_size:
            if block and (timeout is None or timeout > 0):
                self._blocked += 1
                try:
                    room = self._cond.wait_for(
                        lambda: self._closed or len(self._queue.items) < self.max_queue_size, timeout)
                finally:
                    self._blocked -= 1
                if self._closed:
                    raise BatcherClosed("the batcher closed while this request waited for room")
            else:
                room = False
            if not room:
                self._counters.rejected += 1
                if block:  # the caller waited already: advising block=True would be no help
                    raise QueueFull(f"the queue held max_queue_size={self.max_queue_size} requests for the "
                                    f"whole timeout ({timeout} s)")
                raise QueueFull(f"the queue holds max_queue_size={self.max_queue_size} requests; "
                                "retry later, raise max_queue_size, or submit with block=True")
        self._queue.items.append(request)
        self._counters.submitted += 1

    def __call__(self, item: Any, *, deadline_ms: float | None = None, timeout: float | None = None) -> Any:
        """Submit ``item`` and wait for its result (raises what the future holds)."""
        return self.submit(item, deadline_ms=deadline_ms).result(timeout)

    def infer(self, item: Any, *, deadline_ms: float | None = None, block: bool = False,
              timeout: float | None = None) -> asyncio.Future[Any]:
        """Queue ``item`` from a running event loop: ``result = await batcher.infer(item)``.

        Requests made during one iteration of the loop reach the queue together (one lock, one wake-up),
        and results come back to the loop once per batch, which is what keeps the overhead per request
        to a few microseconds. A full queue fails the future with :class:`~mlplat.errors.QueueFull`, or
        with ``block=True`` the request waits up to ``timeout`` seconds (forever when ``None``) for room
        without blocking the loop. Cancelling the awaiting task before dispatch removes the request.
        """
        loop = asyncio.get_running_loop()
        if self._closed:
            raise BatcherClosed("the batcher is closed; no new requests are accepted")
        future = loop.create_future()
        now = self._clock()
        deadline = now + self.max_latency if deadline_ms is None else self._deadline(now, deadline_ms)
        request = (item, now, deadline, future, loop)
        if block:
            return loop.create_task(self._infer_when_room(request, loop, timeout))
        pending = self._pending.get(loop)
        if pending is None:
            self._pending[loop] = [request]
            loop.call_soon(self._flush, loop)
        else:
            pending.append(request)
        return future

    async def _infer_when_room(self, request: Request, loop: asyncio.AbstractEventLoop,
                               timeout: float | None) -> Any:
        """``infer(block=True)``: admit ``request`` when the queue has room, then await its result.

        The rare path, taken only by callers who asked to wait: the request goes in under the lock on its
        own, not through the per-iteration hand-over, and its deadline counts from the call.
        """
        end = None if timeout is None else loop.time() + timeout
        while True:
            with self._cond:
                if self._closed:  # close() ran before this task: refused, and counted (it was in no counter)
                    self._counters.rejected += 1
                    raise BatcherClosed("the batcher is closed; no new requests are accepted")
                if len(self._queue.items) < self.max_queue_size:
                    self._queue.items.append(request)
                    self._counters.submitted += 1
                    if self._idle:
                        self._cond.notify()
                    break
                remaining = None if end is None else end - loop.time()
                if remaining is not None and remaining <= 0:
                    self._counters.rejected += 1
                    raise QueueFull(f"the queue held max_queue_size={self.max_queue_size} requests for the "
                                    f"whole timeout ({timeout} s)")
                room: asyncio.Future[None] = loop.create_future()
                self._room_waiters.append((loop, room))
            try:
                await asyncio.wait_for(room, remaining)
            except TimeoutError:
                pass  # the next pass finds the time spent and raises QueueFull, unless there is room now
        return await request[FUTURE]

    def _take_room_waiters_locked(self) -> list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]]:
        waiters, self._room_waiters = self._room_waiters, []
        return waiters

    def _wake_room_waiters(self, waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]]) -> None:
        """Tell ``infer(block=True)`` callers to look for room again: the results' path, one hop per loop."""
        loops, futures = zip(*waiters, strict=True)
        send_back(self._outboxes, futures, loops, [None] * len(futures), error=False)

    def _flush(self, loop: asyncio.AbstractEventLoop) -> None:
        """Hand this loop's gathered requests to the queue under one lock (runs on ``loop``)."""
        requests = self._pending.pop(loop, None)
        if requests is None:
            return  # close() on this loop's thread handed them over already
        refused: list[Request] = []
        with self._cond:
            if self._closed:
                refused = requests
                self._counters.rejected += len(refused)
            else:
                room = self.max_queue_size - len(self._queue.items)
                if room < len(requests):
                    refused = requests[max(room, 0):]
                    requests = requests[:max(room, 0)]
                    self._counters.rejected += len(refused)
                self._queue.items.extend(requests)
                self._counters.submitted += len(requests)
                if self._idle:
                    self._cond.notify()
        if refused:
            error: BatcherError = (BatcherClosed("the batcher is closed; no new requests are accepted")
                                   if self._closed else
                                   QueueFull(f"the queue holds max_queue_size={self.max_queue_size} requests"))
            deliver([request[FUTURE] for request in refused], [error] * len(refused), True)

    # ---- workers -------------------------------------------------------------------------------------

    def _work(self) -> None:
        while True:
            with self._cond:
                due: float | None = None  # when the last timed wait was meant to end
                while True:
                    now = self._clock()
                    # close(drain=False) empties the queue itself, and nothing joins it after close.
                    closing = self._closed
                    take = self._queue.take(now, closing=closing)
                    self._counters.expired += len(take.expired)
                    self._counters.cancelled += len(take.cancelled)
                    if take.batch or take.expired or take.cancelled:
                        break
                    if closing:
                        self._live_workers -= 1
                        if not self._live_workers:
                            self._completions.put(None)  # after every batch this worker handed over
                            if self._async_loop is not None:  # no predict will run on it again
                                self._async_loop.call_soon_threadsafe(self._async_loop.stop)
                        return
                    timeout = None if take.wake_at is None else max(take.wake_at - now, 0.0)
                    due = take.wake_at
                    self._idle += 1
                    try:
                        self._cond.wait(timeout)
                    finally:
                        self._idle -= 1
                if take.batch and due is not None and now >= due:
                    # Sent because a timed wait ran out: learn how late the wake-up came, and keep that
                    # much more in hand from now on (rule 5).
                    self._queue.observe_lateness(now - due)
                columns = columns_of(take.batch)
                if take.batch:
                    self._in_flight += len(take.batch)
                    self._counters.dispatched(now, columns[ARRIVAL])
                if self._blocked:
                    self._cond.notify_all()
                waiters = self._take_room_waiters_locked() if self._room_waiters else []
            # Outside the lock from here: these requests are ours alone (invariant 2).
            if waiters:
                self._wake_room_waiters(waiters)
            claim(take.cancelled)
            if take.expired:
                expired = claim(take.expired)
                complete(self._outboxes, expired, [_expired_error(r, now) for r in expired], error=True)
            if take.batch:
                self._run(take.batch, columns)

    def _run(self, taken: list[Request], columns: list[tuple[Any, ...]]) -> None:
        """Predict one batch and complete its futures; ``columns`` is ``columns_of(taken)``."""
        if None in columns[LOOP]:  # thread futures move to running now; a few may have been cancelled
            batch = claim(taken)
            if len(batch) != len(taken):
                columns = columns_of(batch)
        else:
            batch = taken  # asyncio futures only: nothing to claim (invariant 3)
        size = self._queue.padded_size(len(batch)) if batch else 0
        items = list(columns[ITEM])
        if items and size > len(items):
            items.extend([items[-1]] * (size - len(items)))
        start = self._clock()
        error: BaseException | None = None
        results: Any = ()
        if items:
            try:
                if self._async_loop is not None:
                    guarded = _guarded(self._predict(items))  # type: ignore[arg-type]
                    results, raised = asyncio.run_coroutine_threadsafe(guarded, self._async_loop).result()
                    if raised is not None:
                        raise raised
                else:
                    results = self._predict(items)
                results, error = _check_results(results, len(items))
            except BaseException as exc:  # any predict failure belongs to this batch alone:
                error = exc  # SystemExit or CancelledError too, or the worker would die with futures pending
            if isinstance(error, StopIteration):
                # An asyncio future refuses StopIteration (TypeError), which lost the loop's other results too.
                wrapped = BatcherError(f"predict raised StopIteration: {error!r}")
                wrapped.__cause__ = error
                error = wrapped
        seconds = self._clock() - start
        with self._cond:
            self._in_flight -= len(taken)
            counters = self._counters
            counters.cancelled += len(taken) - len(batch)
            if items:
                counters.batches += 1
                counters.padded += size - len(batch)
                counters.histogram[len(batch)] = counters.histogram.get(len(batch), 0) + 1
                counters.predict_time.append(seconds)
                self._queue.estimate.observe(size, seconds)
            if error is None:
                counters.completed += len(batch)
            else:
                counters.failed += len(batch)
        values = results if error is None else [error] * len(batch)
        if self._queue.next_batch_ready():
            # The next predict can start now (rule 12). This batch's results wake their producers, whose
            # Python would compete for the GIL with this worker's own until the next predict is under way:
            # the completer hands them back a little later (invariant 2).
            delay = (hand_back_delay(seconds, columns[DEADLINE], start + seconds, self._queue.guard)
                     if batch else 0.0)
            if delay or None in columns[LOOP]:
                due = time.perf_counter() + delay
                self._completions.put((due, columns[FUTURE], columns[LOOP], values, error is not None))
                return
        # Nothing to start (the worker would only wait), or a short predict with asyncio futures only
        # (one call_soon_threadsafe per loop): completing here saves the results a thread hop.
        send_back(self._outboxes, columns[FUTURE], columns[LOOP], values, error=error is not None)

    def _hand_back(self) -> None:
        while (job := self._completions.get()) is not None:
            due, futures, loops, values, error = job
            wait = due - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            send_back(self._outboxes, futures, loops, values, error=error)

    # ---- lifecycle -----------------------------------------------------------------------------------

    def close(self, drain: bool = True, timeout: float | None = None) -> None:
        """Stop accepting requests; ``drain=True`` runs what is queued, ``False`` fails it with BatcherClosed.

        Returns when the workers have finished and every future they completed is set (or after ``timeout``
        seconds for each of them). Closing twice is harmless.
        """
        try:
            loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is not None and loop in self._pending and not self._closed:
            self._flush(loop)  # infer() calls of this loop iteration were accepted: they are queued work too
        with self._cond:
            if not self._closed:
                self._closed = True
                self._drain = drain
            doomed = [] if self._drain else list(self._queue.items)
            if doomed:
                self._queue.items.clear()
            self._cond.notify_all()
            waiters = self._take_room_waiters_locked()
        if waiters:  # waiting infer(block=True) callers look again, see the batcher closed: BatcherClosed
            self._wake_room_waiters(waiters)
        if doomed:  # failed here, not by a free worker: a predict that never returns must not hold them
            self._fail_closed(doomed)
        if threading.current_thread() in (*self._threads, self._completer, self._loop_thread):
            # Called from predict (sync or async) or a done-callback on a batcher thread: waiting here would
            # wait on this thread itself (the completer waits for the last worker, a worker for its async
            # predict). The threads finish on their own; the last worker stops the async loop.
            return
        for thread in self._threads:
            thread.join(timeout)
        self._completer.join(timeout)
        if self._loop_thread is not None:  # the last worker stopped it: closed with the batcher (rule 13)
            self._loop_thread.join(timeout)

    def _fail_closed(self, requests: list[Request]) -> None:
        """Fail queued requests with BatcherClosed (``close(drain=False)``); cancelled ones count as cancelled."""
        claimed = claim(requests)  # a thread future cancelled before now leaves here; an asyncio one is checked
        claimed = [r for r in claimed if r[LOOP] is None or not r[FUTURE].cancelled()]
        with self._cond:
            self._counters.failed += len(claimed)
            self._counters.cancelled += len(requests) - len(claimed)
        closed = BatcherClosed("the batcher closed before this request ran")
        complete(self._outboxes, claimed, [closed] * len(claimed), error=True)

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        return self._closed

    def __enter__(self) -> DynamicBatcher:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close(drain=True)

    def stats(self) -> BatcherStats:
        """A snapshot of the counters, the batch-size histogram and the delay and predict percentiles."""
        with self._cond:
            return self._counters.snapshot(len(self._queue.items), self._in_flight)

    def _kick(self) -> None:
        """Wake the workers to look at the queue again (tests call it after moving a fake clock)."""
        with self._cond:
            self._cond.notify_all()
