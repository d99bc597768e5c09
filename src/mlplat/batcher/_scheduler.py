"""The scheduling rules, without threads: which queued requests a free worker sends at a given time.

Kept apart from the threads (``_batcher.py``) so that every timing rule is tested with plain numbers for time.
Only the batcher's worker, under the batcher's lock, calls :meth:`BatchQueue.take`.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from dataclasses import dataclass
from typing import Any, Final, Literal, NamedTuple

from mlplat.batcher._stats import ServiceTimeEstimate

Policy = Literal["deadline", "eager"]
OnDeadline = Literal["reject", "serve"]


class RequestFields(NamedTuple):
    """One queued item and the future its producer waits on (``loop`` set for asyncio futures).

    The batcher itself builds requests as plain tuples in this layout and reads them by position
    (``request[DEADLINE]``): an asyncio producer builds one per request on the hot path, and a plain tuple
    costs about a fifth of an object with an ``__init__`` (or of this class's own constructor), which is
    a measurable share of rule 15's few microseconds. The named class keeps the layout in one place.
    """

    item: Any
    arrival: float
    deadline: float
    future: Any
    loop: asyncio.AbstractEventLoop | None


# Positions in a request tuple (the fields of RequestFields).
ITEM: Final = 0
ARRIVAL: Final = 1
DEADLINE: Final = 2
FUTURE: Final = 3
LOOP: Final = 4
Request = tuple[Any, float, float, Any, "asyncio.AbstractEventLoop | None"]


@dataclass
class Take:
    """What a free worker should do now: send ``batch`` (padded to ``size``), fail ``expired``, or wait."""

    batch: list[Request]
    size: int
    expired: list[Request]
    cancelled: list[Request]
    wake_at: float | None  # clock time to look again when nothing is sent; None: wait for a new request


class BatchQueue:
    """The scheduling rules, without threads: what a free worker sends at time ``now``.

    Kept apart from the threads so that every timing rule is tested with plain numbers for time.
    """

    def __init__(self, *, max_batch_size: int, policy: Policy, on_deadline: OnDeadline,
                 allowed_batch_sizes: tuple[int, ...] | None, guard: float = 0.0) -> None:
        self.base_guard = guard
        self._late = ServiceTimeEstimate()  # the same EWMA, kept under one key, for wake-up lateness
        # Time kept in hand by the deadline policy: base_guard plus the learned wake-up lateness. Set only by
        # observe_lateness (under the batcher's lock); a plain float, so a worker handing back results reads
        # it outside the lock (rule 12) without walking the estimate's dicts while another worker adds to them.
        self.guard = guard
        self.items: deque[Request] = deque()
        self.policy = policy
        self.reject_expired = on_deadline == "reject"
        self.allowed = allowed_batch_sizes
        self.cap = max(allowed_batch_sizes) if allowed_batch_sizes else max_batch_size
        self.estimate = ServiceTimeEstimate()

    def observe_lateness(self, seconds: float) -> None:
        """A timed wait that was due at ``wake_at`` dispatched ``seconds`` later (a busy or slow machine)."""
        self._late.observe(1, max(seconds, 0.0))
        self.guard = self.base_guard + (self._late.estimate(1) or 0.0)

    def next_batch_ready(self) -> bool:
        """True when a free worker would send at once: a full batch is queued (eager: anything is).

        Read without the lock by a worker choosing where to complete its futures; a stale answer only
        picks the other path, and both are correct.
        """
        queued = len(self.items)
        return queued >= self.cap or (self.policy == "eager" and queued > 0)

    def padded_size(self, n: int) -> int:
        """Size predict sees for ``n`` requests: the smallest allowed size >= n (n without allowed sizes)."""
        if not self.allowed:
            return n
        return min(size for size in self.allowed if size >= n)

    def _dead(self, request: Request, now: float) -> bool:
        return bool(request[FUTURE].cancelled()) or (self.reject_expired and request[DEADLINE] <= now)

    def take(self, now: float, *, closing: bool = False) -> Take:
        """Decide for a free worker at clock time ``now`` (called under the batcher's lock)."""
        items = self.items
        expired: list[Request] = []
        cancelled: list[Request] = []
        # Dead requests at the head leave now, so their producers hear at once.
        while items and self._dead(items[0], now):
            request = items.popleft()
            (cancelled if request[FUTURE].cancelled() else expired).append(request)
        if not items:
            return Take([], 0, expired, cancelled, None)
        cutoff = now if self.reject_expired else -math.inf
        cap = self.cap
        if self.policy == "deadline" and not closing:
            # This scan runs each time a request arrives while a worker waits, so it is kept to plain
            # comparisons (no method or builtin calls but an asyncio future's cancelled(); see below).
            live, soonest = 0, math.inf
            for request in items:
                deadline = request[DEADLINE]
                if deadline <= cutoff or (request[LOOP] is not None and request[FUTURE].cancelled()):
                    continue
                live += 1
                if deadline < soonest:
                    soonest = deadline
                if live == cap:
                    break
            if live < cap:
                service = self.estimate.estimate(self.padded_size(live))
                # Unknown predict time: send now and learn it. Otherwise wait while the tightest
                # deadline in the batch can still be met after one predict of the batch we'd send, with
                # `guard` to spare for a late thread wake-up and the hand-back of results.
                if service is not None and now < soonest - service - self.guard:
                    return Take([], 0, expired, cancelled, soonest - service - self.guard)
        batch: list[Request] = []
        popleft, append = items.popleft, batch.append
        # The hot loop, _dead() inlined. A thread future's cancelled() takes the future's lock (about 1 µs,
        # a third of the worker's own time per request), and claim() drops a cancelled thread future
        # at dispatch anyway, so only asyncio futures (about 20 ns) are checked here (rule 10).
        while items and len(batch) < cap:
            request = popleft()
            if request[DEADLINE] <= cutoff or (request[LOOP] is not None and request[FUTURE].cancelled()):
                (cancelled if request[FUTURE].cancelled() else expired).append(request)
            else:
                append(request)
        size = self.padded_size(len(batch)) if batch else 0
        return Take(batch, size, expired, cancelled, None)
