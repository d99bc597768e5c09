"""Hypothesis strategies shared by the tests, one section per command group."""

from __future__ import annotations

from hypothesis import strategies as st

# batcher


def queue_scripts() -> st.SearchStrategy[list[tuple[str, float, float]]]:
    """Scripts for the batcher queue: (operation, clock step in seconds, latency or cancel pick)."""
    step = st.tuples(st.sampled_from(["add", "add", "take", "cancel"]),
                     st.floats(0.0, 0.006, allow_nan=False), st.floats(0.0005, 0.02, allow_nan=False))
    return st.lists(step, max_size=60)
