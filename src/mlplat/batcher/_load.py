"""Load generation for `mlplat bench`: the servers compared, open-loop Poisson and closed-loop load.

Latency in the open loop is measured from each request's *scheduled* arrival, not from when the generator
got round to sending it, so a generator that falls behind cannot hide queueing (no coordinated omission);
a generator that falls behind is reported as such.
"""

from __future__ import annotations

import concurrent.futures
import functools
import itertools
import math
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

import numpy as np

from mlplat.batcher._batcher import DynamicBatcher, _check_results
from mlplat.errors import BatcherClosed, BatcherError, ConfigError, DeadlineExceeded, QueueFull

__all__ = ["POLICIES", "Meter", "Server", "Trace", "WindowBatcher", "closed_loop", "generator_capacity",
           "make_server", "open_loop"]

POLICIES = ("none", "window", "deadline", "eager")
UNANSWERED, OK, REJECTED, FAILED = 0, 1, 2, 3  # a request's status; UNANSWERED: no answer when the run stopped
MIN_DEADLINE_MS = 1e-6  # the time left given to a request sent after its deadline: it expires in the queue


class Server(Protocol):
    """What the load generator drives: ``submit`` returns a future; ``close`` finishes queued work.

    ``deadline_ms`` is the time the request has left; a server without deadlines ignores it.
    """

    def submit(self, item: Any, *, deadline_ms: float | None = None) -> concurrent.futures.Future[Any]: ...

    def close(self, drain: bool = True) -> None: ...


class Usage(NamedTuple):
    """Predict calls in an interval: how many, the items they held, and the seconds spent inside predict."""

    calls: int
    items: int
    busy: float


class Meter:
    """Wraps predict and logs each call's start, end and size (one worker calls it at a time)."""

    def __init__(self, predict: Callable[[list[Any]], Sequence[Any]]) -> None:
        self.predict = predict
        self.log: list[tuple[float, float, int]] = []  # (start, end, items), perf_counter seconds

    def __call__(self, items: list[Any]) -> Sequence[Any]:
        start = time.perf_counter()
        out = self.predict(items)
        self.log.append((start, time.perf_counter(), len(items)))
        return out

    def usage(self, low: float = -math.inf, high: float = math.inf) -> Usage:
        """The calls that started in [low, high), their items, and the predict seconds inside [low, high).

        A run's measured interval excludes its warm-up and drain: batch sizes and busy time outside it
        (a cold deadline policy's first batches, the close) are not the steady state the report describes.
        """
        log = np.array(self.log, dtype=float).reshape(-1, 3)
        start, end, size = log[:, 0], log[:, 1], log[:, 2]
        inside = (start >= low) & (start < high)
        busy = np.clip(np.minimum(end, high) - np.maximum(start, low), 0.0, None).sum()
        return Usage(int(inside.sum()), int(size[inside].sum()), float(busy))


class WindowBatcher:
    """The common baseline: a timer starts at the first dequeue and closes the batch when it fires or the
    batch is full, whether or not the model is busy; closed batches queue for the one worker.

    Every future is completed once: by the worker (a result, predict's error, or BatcherClosed after
    ``close(drain=False)``), or, after close, by ``submit`` refusing it. ``_closed`` and the sentinel that
    stops the collector change under ``_lock`` with ``submit``'s put, so no request follows the sentinel.
    """

    def __init__(self, predict: Callable[[list[Any]], Sequence[Any]], *, max_batch_size: int,
                 window_s: float) -> None:
        self._predict = predict
        self._max = max_batch_size
        self._window = window_s
        self._lock = threading.Lock()
        self._closed = False
        # Read by the worker without the lock: a batch that the worker looks at just before close() sets it
        # runs, one just after fails; both complete their futures.
        self._drain = True
        self._in: queue.SimpleQueue[tuple[Any, concurrent.futures.Future[Any]] | None] = queue.SimpleQueue()
        self._batches: queue.SimpleQueue[list[tuple[Any, concurrent.futures.Future[Any]]] | None] = \
            queue.SimpleQueue()
        self._threads = [threading.Thread(target=self._collect, daemon=True),
                         threading.Thread(target=self._work, daemon=True)]
        for thread in self._threads:
            thread.start()

    def submit(self, item: Any, *, deadline_ms: float | None = None) -> concurrent.futures.Future[Any]:
        """Queue ``item``; a fixed window knows no deadlines, so ``deadline_ms`` is ignored."""
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        with self._lock:
            if self._closed:
                raise BatcherClosed("the window batcher is closed; no new requests are accepted")
            self._in.put((item, future))
        return future

    def _collect(self) -> None:
        while (first := self._in.get()) is not None:
            batch = [first]
            closes = time.perf_counter() + self._window
            stop = False
            while len(batch) < self._max:
                remaining = closes - time.perf_counter()
                if remaining <= 0:
                    break
                try:
                    entry = self._in.get(timeout=remaining)
                except queue.Empty:
                    break
                if entry is None:
                    stop = True
                    break
                batch.append(entry)
            self._batches.put(batch)
            if stop:
                break
        self._batches.put(None)

    def _work(self) -> None:
        while (batch := self._batches.get()) is not None:
            futures = [future for _, future in batch]
            if not self._drain:
                _fail(futures, BatcherClosed("the window batcher closed before this request ran"))
                continue
            error: BaseException | None
            try:
                results = self._predict([item for item, _ in batch])
                results, error = _check_results(results, len(batch))
            except BaseException as exc:  # a failed batch fails its own requests only; the worker lives on
                error = exc
            if error is not None:
                _fail(futures, error)
                continue
            for future, result in zip(futures, results, strict=True):
                future.set_result(result)

    def close(self, drain: bool = True) -> None:
        """Stop; ``drain=False`` fails what is still queued instead of running it. Closing twice is harmless."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._drain = drain
            self._in.put(None)
        for thread in self._threads:
            thread.join()


def _fail(futures: Sequence[concurrent.futures.Future[Any]], error: BaseException) -> None:
    for future in futures:
        future.set_exception(error)


def make_server(policy: str, predict: Callable[[list[Any]], Sequence[Any]], *, max_batch_size: int,
                max_latency_ms: float) -> Server:
    """The server for one policy name: none, window, deadline or eager."""
    if policy == "none":
        # One request per predict call; late requests are still served (nothing is rejected).
        return DynamicBatcher(predict, max_batch_size=1, max_latency_ms=3.6e6, policy="eager",
                              on_deadline="serve", max_queue_size=10**9)
    if policy == "window":
        return WindowBatcher(predict, max_batch_size=max_batch_size, window_s=max_latency_ms / 1000.0)
    if policy in ("deadline", "eager"):
        return DynamicBatcher(predict, max_batch_size=max_batch_size, max_latency_ms=max_latency_ms,
                              policy=policy, max_queue_size=10**6)  # type: ignore[arg-type]
    raise ConfigError(f"--policies: unknown policy {policy!r}; choose from {', '.join(POLICIES)}")


@dataclass
class Trace:
    """What one load run saw, per request: send time (scheduled for open loop), finish time, status."""

    start: np.ndarray
    finish: np.ndarray
    status: np.ndarray
    lag: np.ndarray  # open loop: actual send - scheduled send, seconds; closed loop: empty
    window: tuple[float, float]  # the measured interval (after warm-up)


def _status(future: concurrent.futures.Future[Any]) -> int:
    exc = future.exception()
    if exc is None:
        return OK
    return REJECTED if isinstance(exc, QueueFull | DeadlineExceeded) else FAILED


def _drain(done: Callable[[], int], total: int, timeout: float) -> None:
    give_up = time.perf_counter() + timeout
    while done() < total and time.perf_counter() < give_up:
        time.sleep(0.005)


def _submit(server: Server, item: Any, *, lag: float, deadline_ms: float | None,
            on_done: Callable[[concurrent.futures.Future[Any]], object]) -> None:
    """The open loop's send step: one request ``lag`` seconds late, its deadline counted from its schedule."""
    left = None if deadline_ms is None else max(deadline_ms - lag * 1000.0, MIN_DEADLINE_MS)
    server.submit(item, deadline_ms=left).add_done_callback(on_done)


def generator_capacity(server: Server, inputs: Sequence[Any], *, seconds: float = 0.05,
                       deadline_ms: float | None = None) -> float:
    """Requests per second the open loop's send step reaches on ``server`` sending flat out for ``seconds``.

    ``server`` should run the real model: its worker and its completions share the GIL with the sender.
    """
    statuses: list[int] = []

    def record(future: concurrent.futures.Future[Any]) -> None:
        statuses.append(_status(future))  # what open_loop's callback does per request, near enough

    clock = time.perf_counter
    start = clock()
    end = start + seconds
    sent = 0
    while clock() < end:
        try:
            _submit(server, inputs[sent % len(inputs)], lag=0.0, deadline_ms=deadline_ms, on_done=record)
        except BatcherError:
            statuses.append(REJECTED)
        sent += 1
    return sent / (clock() - start)


def open_loop(server: Server, inputs: Sequence[Any], *, rate: float, duration: float, warmup: float,
              rng: np.random.Generator, drain_timeout: float = 5.0, deadline_ms: float | None = None) -> Trace:
    """Poisson arrivals at ``rate`` for ``warmup + duration`` seconds; latency from the scheduled arrival.

    With ``deadline_ms``, each request's deadline also counts from its scheduled arrival: one sent late
    tells the server the time it has left (at least ``MIN_DEADLINE_MS``, so one already past its deadline
    is refused), as a client that propagates its deadline would.
    """
    horizon = warmup + duration
    gaps = rng.exponential(1.0 / rate, size=int(rate * horizon * 1.2) + 16)
    offsets = np.cumsum(gaps)
    offsets = offsets[offsets < horizon]
    n = len(offsets)
    finish = np.full(n, math.nan)
    status = np.full(n, UNANSWERED, dtype=np.int8)
    lag = np.zeros(n)
    counter = itertools.count()
    finished = [0]

    def record(i: int, future: concurrent.futures.Future[Any]) -> None:
        finish[i] = time.perf_counter()
        status[i] = _status(future)
        finished[0] = next(counter) + 1

    clock = time.perf_counter
    t0 = clock() + 0.01
    scheduled = t0 + offsets
    i = 0
    while i < n:
        now = clock()
        while i < n and scheduled[i] <= now:
            lag[i] = now - scheduled[i]
            try:
                _submit(server, inputs[i % len(inputs)], lag=lag[i], deadline_ms=deadline_ms,
                        on_done=functools.partial(record, i))
            except BatcherError:
                finish[i], status[i] = now, REJECTED
                finished[0] = next(counter) + 1
            i += 1
            now = clock()  # the next overdue request goes out now, not when this burst began
        if i < n:
            pause = scheduled[i] - clock()
            if pause > 0:
                time.sleep(pause)
    _drain(lambda: finished[0], n, drain_timeout)
    return Trace(scheduled, finish, status, lag, (t0 + warmup, t0 + horizon))


def closed_loop(server: Server, inputs: Sequence[Any], *, concurrency: int, duration: float, warmup: float,
                drain_timeout: float = 5.0) -> Trace:
    """``concurrency`` requests outstanding at all times; each completion sends the next one.

    The client work (recording, sending the next request) runs on the calling thread, not inside the
    server's completion callback, so it does not borrow the server's worker thread as a real client would not.
    Requests still unanswered ``drain_timeout`` seconds after the end are in the trace as never answered
    (UNANSWERED, no finish), as in the open loop: a stall at the end of a run must show as misses.
    """
    records: list[tuple[float, float, int]] = []
    completions: queue.SimpleQueue[tuple[int, float, int]] = queue.SimpleQueue()
    in_flight: dict[int, float] = {}  # request number -> send time; touched by this thread only
    clock = time.perf_counter
    t0 = clock()
    end = t0 + warmup + duration
    sent = itertools.count()

    def done(number: int, future: concurrent.futures.Future[Any]) -> None:
        completions.put((number, clock(), _status(future)))

    def send() -> None:
        number = next(sent)
        in_flight[number] = clock()
        try:
            future = server.submit(inputs[number % len(inputs)])
        except BatcherError:
            completions.put((number, clock(), REJECTED))
            return
        future.add_done_callback(functools.partial(done, number))

    for _ in range(concurrency):
        send()
    while in_flight:
        try:
            number, finished, status = completions.get(timeout=max(end + drain_timeout - clock(), 0.001))
        except queue.Empty:
            break  # the rest never came back: recorded below as never answered
        records.append((in_flight.pop(number), finished, status))
        if finished < end:
            send()
    records += [(started, math.nan, UNANSWERED) for started in in_flight.values()]
    data = np.array(records, dtype=float).reshape(-1, 3)
    return Trace(data[:, 0], data[:, 1], data[:, 2].astype(np.int8), np.zeros(0), (t0 + warmup, end))
