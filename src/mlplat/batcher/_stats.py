"""Counters and the online predict-time estimate kept by the batcher; the frozen stats snapshot."""

from __future__ import annotations

import bisect
import math
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["BatcherStats", "percentiles"]

# Samples kept for the percentiles in stats(): recent behaviour, bounded memory.
WINDOW = 10_000
QUANTILES = (0.5, 0.9, 0.99, 0.999)


def percentiles(values: Iterable[float], qs: Iterable[float] = QUANTILES) -> dict[str, float]:
    """Nearest-rank percentiles ``{"p50": ..., "p999": ...}`` of ``values`` (NaN when empty).

    >>> percentiles([1.0, 2.0, 3.0, 4.0], [0.5, 0.99])
    {'p50': 2.0, 'p99': 4.0}
    """
    data = sorted(values)
    out = {}
    for q in qs:
        name = "p" + f"{q * 100:g}".replace(".", "")
        out[name] = data[max(0, math.ceil(q * len(data)) - 1)] if data else math.nan
    return out


class ServiceTimeEstimate:
    """Predict time per batch size, learned online: an EWMA of the time and of its absolute deviation.

    The estimate for a size is ``mean + 2 * deviation`` (a margin for jitter), raised to the 99th
    percentile of that size's last 100 times once 20 are measured. A size never seen borrows the nearest
    larger size seen (predict time does not fall as a batch grows), else scales the nearest smaller one
    linearly; with nothing seen there is no estimate (``None``).
    """

    ALPHA = 0.2
    # Predict times on a shared CPU are heavy-tailed (a descheduled thread, a GC pause): mean + 2 x
    # deviation then sits well inside the tail, and a dispatch planned on it misses whenever a batch lands
    # in the tail. A high quantile of recent times covers that; it waits for enough samples, because a
    # quantile of a handful of times says nothing (and the first estimates must come from the EWMA).
    QUANTILE = 0.99
    RECENT = 100
    MIN_RECENT = 20

    def __init__(self) -> None:
        self._mean: dict[int, float] = {}
        self._dev: dict[int, float] = {}
        self._recent: dict[int, deque[float]] = {}  # the last RECENT times per size, oldest first
        self._ordered: dict[int, list[float]] = {}  # the same times, sorted (kept by bisection, not re-sorted)
        self._tail: dict[int, float] = {}  # QUANTILE of _recent, refreshed per observation (not per look)

    def observe(self, size: int, seconds: float) -> None:
        recent, ordered = self._recent.get(size), self._ordered.get(size)
        if recent is None or ordered is None:
            self._recent[size] = recent = deque(maxlen=self.RECENT)
            self._ordered[size] = ordered = []
        if len(recent) == self.RECENT:
            del ordered[bisect.bisect_left(ordered, recent[0])]  # the time about to fall out of the window
        recent.append(seconds)
        bisect.insort(ordered, seconds)
        if len(ordered) >= self.MIN_RECENT:
            self._tail[size] = ordered[math.ceil(self.QUANTILE * len(ordered)) - 1]
        mean = self._mean.get(size)
        if mean is None:
            self._mean[size], self._dev[size] = seconds, 0.0
            return
        error = seconds - mean
        self._mean[size] = mean + self.ALPHA * error
        self._dev[size] += self.ALPHA * (abs(error) - self._dev[size])

    def estimate(self, size: int) -> float | None:
        if size in self._mean:
            return max(self._mean[size] + 2.0 * self._dev[size], self._tail.get(size, 0.0))
        larger = [s for s in self._mean if s > size]
        if larger:
            return self.estimate(min(larger))
        smaller = [s for s in self._mean if s < size]
        if smaller:
            nearest = max(smaller)
            estimate = self.estimate(nearest)
            return None if estimate is None else estimate * size / nearest
        return None


@dataclass
class Counters:
    """Mutable counters, changed only under the batcher's lock."""

    submitted: int = 0
    completed: int = 0
    rejected: int = 0
    expired: int = 0
    cancelled: int = 0
    failed: int = 0
    batches: int = 0
    padded: int = 0
    histogram: dict[int, int] = field(default_factory=dict)
    # Queue delays are kept per batch, as (dispatch time, arrival times), and subtracted only when stats()
    # asks: a subtraction per request would otherwise run on the dispatch path. `held` counts the arrival
    # times kept; whole batches are dropped once the rest still hold WINDOW of them.
    dispatches: deque[tuple[float, Sequence[float]]] = field(default_factory=deque)
    held: int = 0
    predict_time: deque[float] = field(default_factory=lambda: deque(maxlen=WINDOW))

    def dispatched(self, now: float, arrivals: Sequence[float]) -> None:
        """A batch left the queue at ``now``; ``arrivals`` are its requests' arrival times."""
        self.dispatches.append((now, arrivals))
        self.held += len(arrivals)
        while self.held - len(self.dispatches[0][1]) >= WINDOW:
            self.held -= len(self.dispatches.popleft()[1])

    def queue_delays(self) -> list[float]:
        """Arrival-to-dispatch times of the last WINDOW requests dispatched, oldest first."""
        delays = [now - arrival for now, arrivals in self.dispatches for arrival in arrivals]
        return delays[-WINDOW:]

    def snapshot(self, queued: int, in_flight: int) -> BatcherStats:
        delay = percentiles(self.queue_delays())
        predict = percentiles(self.predict_time)
        return BatcherStats(
            submitted=self.submitted, completed=self.completed, rejected=self.rejected, expired=self.expired,
            cancelled=self.cancelled, failed=self.failed, queued=queued, in_flight=in_flight,
            batches=self.batches, padded=self.padded, batch_sizes=dict(sorted(self.histogram.items())),
            queue_delay_ms={k: v * 1000 for k, v in delay.items()},
            predict_ms={k: v * 1000 for k, v in predict.items()},
        )


@dataclass(frozen=True)
class BatcherStats:
    """A snapshot of a :class:`DynamicBatcher`'s counters.

    Attributes
    ----------
    submitted, completed, rejected, expired, cancelled, failed : int
        Requests accepted into the queue; answered with a result; refused with ``QueueFull``; failed with
        ``DeadlineExceeded``; cancelled before dispatch; failed by ``predict`` (an exception or a wrong
        number of results) or by ``close(drain=False)``.
    queued, in_flight : int
        Requests waiting now, and requests inside a running ``predict`` call.
    batches, padded : int
        ``predict`` calls made, and padding items added to reach an allowed batch size.
    batch_sizes : dict[int, int]
        Histogram: number of requests in a batch (padding excluded) → how many batches had it.
    queue_delay_ms, predict_ms : dict[str, float]
        p50/p90/p99/p999 of the time from arrival to dispatch per request, and of the ``predict`` call
        per batch, over the last 10 000 samples (NaN before any).
    """

    submitted: int
    completed: int
    rejected: int
    expired: int
    cancelled: int
    failed: int
    queued: int
    in_flight: int
    batches: int
    padded: int
    batch_sizes: Mapping[int, int]
    queue_delay_ms: Mapping[str, float]
    predict_ms: Mapping[str, float]

    @property
    def mean_batch(self) -> float:
        """Mean requests per batch (NaN before the first batch)."""
        total = sum(size * count for size, count in self.batch_sizes.items())
        return total / self.batches if self.batches else math.nan

    def to_dict(self) -> dict[str, Any]:
        return {
            "submitted": self.submitted, "completed": self.completed, "rejected": self.rejected,
            "expired": self.expired, "cancelled": self.cancelled, "failed": self.failed, "queued": self.queued,
            "in_flight": self.in_flight, "batches": self.batches, "padded": self.padded,
            "mean_batch": self.mean_batch, "batch_sizes": {str(k): v for k, v in self.batch_sizes.items()},
            "queue_delay_ms": dict(self.queue_delay_ms), "predict_ms": dict(self.predict_ms),
        }

    def __rich__(self) -> str:
        counts = ", ".join(f"{name} {getattr(self, name)}" for name in
                           ("submitted", "completed", "rejected", "expired", "cancelled", "failed"))
        return (f"{counts}; {self.batches} batches, mean {self.mean_batch:.1f}; queue delay p99 "
                f"{self.queue_delay_ms['p99']:.2f} ms; predict p99 {self.predict_ms['p99']:.2f} ms")
