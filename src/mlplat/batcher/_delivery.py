"""How results travel back to producers: thread futures directly, asyncio futures in one hop per event loop.

See invariants 2 and 3 in ``_batcher.py`` and rule 12 in docs/bench.md.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Iterable, Sequence
from typing import Any

from mlplat.batcher._scheduler import FUTURE, LOOP, Request

# When the next batch is ready, a finished batch's results go back this share of its predict time after
# the next predict starts, at most HAND_BACK_MAX (rule 12). None below HAND_BACK_MIN: Linux sleeps at
# least its default timer slack, 50 µs, so a shorter delay would only come out longer.
HAND_BACK_SHARE = 0.25
HAND_BACK_MAX = 0.0005
HAND_BACK_MIN = 0.00005


def deliver(futures: Sequence[Any], values: Iterable[Any], error: bool) -> None:
    """Complete asyncio futures on their own loop; a future cancelled meanwhile is left alone."""
    # Runs on the producers' loop, once per batch, for every request: try/except rather than a done()
    # check per future, because a future here is almost never cancelled (the exception is the rare path).
    for future, value in zip(futures, values, strict=False):
        try:
            if error:
                future.set_exception(value)
            else:
                future.set_result(value)
        except asyncio.InvalidStateError:
            pass  # the awaiting task was cancelled while its batch ran (rule 10)


class Outbox:
    """Finished batches on their way back to one event loop, delivered with as few wake-ups as possible.

    A worker that finishes a batch while the loop has not yet run the previous delivery adds to it
    instead of waking the loop again: each wake-up is a write to the loop's self-pipe (a system call)
    plus a loop iteration, and a worker that outruns its producers' loop would pay one per batch.
    Invariant: ``_batches`` is non-empty exactly while a ``_drain`` is scheduled and has not yet taken
    them (both sides change it under ``_lock``), so no batch is left without a delivery on the way.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._batches: list[tuple[Sequence[Any], Iterable[Any], bool]] = []

    def put(self, loop: asyncio.AbstractEventLoop, futures: Sequence[Any], values: Iterable[Any],
            error: bool) -> None:
        with self._lock:
            self._batches.append((futures, values, error))
            if len(self._batches) > 1:
                return  # a delivery is scheduled and has not run yet: it takes this batch too
        try:
            loop.call_soon_threadsafe(self._drain)
        except RuntimeError:
            pass  # the producer's loop is closed: nobody is left to receive the result

    def _drain(self) -> None:
        with self._lock:
            batches, self._batches = self._batches, []
        for futures, values, error in batches:
            deliver(futures, values, error)


class Outboxes:
    """One :class:`Outbox` per producer loop, held weakly so a finished loop takes its outbox with it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._boxes: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Outbox] = weakref.WeakKeyDictionary()

    def send(self, loop: asyncio.AbstractEventLoop, futures: Sequence[Any], values: Iterable[Any],
             error: bool) -> None:
        with self._lock:  # workers and the completer send concurrently; the first one creates the box
            box = self._boxes.get(loop)
            if box is None:
                self._boxes[loop] = box = Outbox()
        box.put(loop, futures, values, error)


def columns_of(requests: Sequence[Request]) -> list[tuple[Any, ...]]:
    """The fields of ``requests`` as five tuples, indexed like a request (``columns[FUTURE]``).

    One transposition in C instead of a comprehension per field: this is per-request work on the hot path.
    """
    return list(zip(*requests, strict=True)) if requests else [()] * 5


def send_back(outboxes: Outboxes, futures: Sequence[Any], loops: Sequence[asyncio.AbstractEventLoop | None],
               values: Sequence[Any], *, error: bool) -> None:
    """Complete each future once (invariant 3): thread futures here, asyncio futures in one hop per loop."""
    only = loops[0] if loops else None
    if only is not None and loops.count(only) == len(loops):
        # The common case for asyncio producers: the whole batch goes back to one loop in one hop.
        outboxes.send(only, futures, values, error)
        return
    by_loop: dict[asyncio.AbstractEventLoop, tuple[list[Any], list[Any]]] = {}
    for future, loop, value in zip(futures, loops, values, strict=False):
        if loop is None:
            if error:
                future.set_exception(value)
            else:
                future.set_result(value)
        else:
            group = by_loop.get(loop)
            if group is None:
                by_loop[loop] = group = ([], [])
            group[0].append(future)
            group[1].append(value)
    for loop, (loop_futures, loop_values) in by_loop.items():
        outboxes.send(loop, loop_futures, loop_values, error)


def complete(outboxes: Outboxes, requests: Sequence[Request], values: Sequence[Any], *, error: bool) -> None:
    columns = columns_of(requests)
    send_back(outboxes, columns[FUTURE], columns[LOOP], values, error=error)


def claim(requests: list[Request]) -> list[Request]:
    """Move thread futures to running; drop those a producer cancelled at the last moment."""
    return [request for request in requests
            if request[LOOP] is not None or request[FUTURE].set_running_or_notify_cancel()]


def hand_back_delay(seconds: float, deadlines: Sequence[float], now: float, keep: float = 0.0) -> float:
    """Seconds to hold a finished batch's results while the next predict gets under way (rule 12).

    ``seconds`` is the batch's predict time and ``now`` the clock when it ended. The delay never reaches
    into the last ``keep`` seconds before any of its requests' deadlines (the deadline policy's guard, kept
    for a late thread and the hand-back itself), and is 0 when it would be shorter than the system can sleep.
    """
    delay = HAND_BACK_SHARE * seconds
    if delay < HAND_BACK_MIN:
        return 0.0  # a short predict (an identity predict at 300k req/s): no per-batch scan of deadlines
    delay = min(delay, HAND_BACK_MAX, min(deadlines) - now - keep)
    return delay if delay >= HAND_BACK_MIN else 0.0

