"""Hypothesis strategies shared by the tests, one section per command group."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

# rubric


@st.composite
def decision_matrices(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A stack of decision matrices ``(d, m, n)`` with positive scores, cost flags ``(n,)`` and weights ``(d, n)``."""
    d = draw(st.integers(1, 4))
    m = draw(st.integers(2, 5))
    n = draw(st.integers(1, 5))
    x = draw(arrays(np.float64, (d, m, n), elements=st.floats(0.5, 100.0)))
    cost = draw(arrays(np.bool_, (n,)))
    raw = draw(arrays(np.float64, (d, n), elements=st.floats(0.01, 1.0)))
    return x, cost, raw / raw.sum(axis=1, keepdims=True)


# sim

#: Parameters of a one-request-per-instance function: (rate /s, cold start s, keep-alive s, cap, provisioned).
function_params = st.tuples(
    st.floats(0.05, 20.0),
    st.floats(0.0, 10.0),
    st.floats(1.0, 900.0),
    st.integers(1, 50),
    st.integers(0, 5),
)


# ingest

INGEST_FEATURES = [
    {"name": "amount_last", "agg": "last", "field": "amount"},
    {"name": "n_1m", "agg": "count", "window": 60},
    {"name": "sum_1m", "agg": "sum", "field": "amount", "window": 60},
    {"name": "mean_1m", "agg": "mean", "field": "amount", "window": 60},
    {"name": "max_1m_by_20s", "agg": "max", "field": "amount", "window": 60, "hop": 20},
    {"name": "min_1m_by_20s", "agg": "min", "field": "amount", "window": 60, "hop": 20},
]


@st.composite
def bounded_streams(draw: st.DrawFn) -> tuple[int, list[dict[str, Any]]]:
    """``(max_out_of_orderness, events in arrival order)``: each copy of an event arrives before the largest
    event time seen passes its own time + the bound, some events are repeated, and time ties are common."""
    bound = draw(st.sampled_from([0, 5, 30]))
    count = draw(st.integers(1, 40))
    events = [{"event_id": f"e{i}", "entity": draw(st.sampled_from(["a", "b", "c"])),
               "event_time": draw(st.integers(0, 300)), "amount": draw(st.integers(-50, 50))}
              for i in range(count)]
    copies = []
    for event in events:
        for _ in range(draw(st.integers(1, 3))):
            delay = draw(st.integers(0, bound - 1)) if bound else 0
            copies.append((event["event_time"] + delay, draw(st.integers(0, 1000)), event))
    copies.sort(key=lambda c: (c[0], c[1]))
    return bound, [dict(e) for _, _, e in copies]


# canary

#: Bad events per interval in one arm (sparse, as error counts are).
event_counts = st.lists(st.integers(min_value=0, max_value=50), min_size=1, max_size=40)

#: A canary traffic share as mlplat meets them: 0.5% to 50%.
traffic_shares = st.floats(min_value=0.005, max_value=0.5, allow_nan=False)

#: Concentrations of the rate prior.
concentrations = st.floats(min_value=1.0, max_value=1000.0, allow_nan=False)

#: Raw samples >= 0 (latencies, sizes), zeros and ties included, spanning many orders of magnitude.
nonnegative_samples = arrays(np.float64, st.integers(1, 200), elements=st.one_of(
    st.just(0.0), st.floats(min_value=1e-9, max_value=1e6, allow_nan=False)))


# batcher


def queue_scripts() -> st.SearchStrategy[list[tuple[str, float, float]]]:
    """Scripts for the batcher queue: (operation, clock step in seconds, latency or cancel pick)."""
    step = st.tuples(st.sampled_from(["add", "add", "take", "cancel"]),
                     st.floats(0.0, 0.006, allow_nan=False), st.floats(0.0005, 0.02, allow_nan=False))
    return st.lists(step, max_size=60)
