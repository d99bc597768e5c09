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
from typing import Any, Protocol

import numpy as np

from mlplat.batcher._batcher import DynamicBatcher, _check_results
from mlplat.errors import BatcherClosed, BatcherError, ConfigError, DeadlineExceeded, QueueFull

__all__ = ["POLICIES", "Meter", "Server", "Trace", "WindowBatcher", "closed_loop", "generator_capacity",
           "make_server", "open_loop"]

POLICIES = ("none", "window", "deadline", "eager")
OK, REJECTED, FAILED = 1, 2, 3
MIN_DEADLINE_MS = 1e-6  # the time left given to a request sent after its deadline: it expires in the queue


class Server(Protocol):
    """What the load generator drives: ``submit`` returns a future; ``close`` finishes queued work.

    ``deadline_ms`` is the time the request has left; a server without deadlines ignores it.
    """

    def submit(self, item: Any, *, deadline_ms: float | None = None) -> concurrent.futures.Future[Any]: ...

    def close(self, drain: bool = True) -> None: ...


class Meter:
    """Wraps predict to count calls, items and busy time (one worker calls it at a time)."""

    def __init__(self, predict: Callable[[list[Any]], Sequence[Any]]) -> None:
        self.predict = predict
        self.calls = 0
        self.items = 0
        self.busy = 0.0

    def __call__(self, items: list[Any]) -> Sequence[Any]:
        start = time.perf_counter()
        out = self.predict(items)
        self.busy += time.perf_counter() - start
        self.calls += 1
        self.items += len(items)
        return out


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
                error = _check_results(results, len(batch))
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
    status = np.zeros(n, dtype=np.int8)
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
    """
    records: list[tuple[float, float, int]] = []
    completions: queue.SimpleQueue[tuple[float, float, int]] = queue.SimpleQueue()
    clock = time.perf_counter
    t0 = clock()
    end = t0 + warmup + duration
    sent = itertools.count()

    def done(started: float, future: concurrent.futures.Future[Any]) -> None:
        completions.put((started, clock(), _status(future)))

    def send() -> None:
        started = clock()
        try:
            future = server.submit(inputs[next(sent) % len(inputs)])
        except BatcherError:
            completions.put((started, clock(), REJECTED))
            return
        future.add_done_callback(functools.partial(done, started))

    for _ in range(concurrency):
        send()
    outstanding = concurrency
    while outstanding:
        try:
            record = completions.get(timeout=max(end + drain_timeout - clock(), 0.001))
        except queue.Empty:
            break  # the rest never came back: they are not in the trace, and the run stops here
        records.append(record)
        if record[1] < end:
            send()
        else:
            outstanding -= 1
    data = np.array(records, dtype=float).reshape(-1, 3)
    return Trace(data[:, 0], data[:, 1], data[:, 2].astype(np.int8), np.zeros(0), (t0 + warmup, end))
