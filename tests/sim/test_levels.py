"""The Lambda level model: edge cases where it must still equal the event loop one event at a time."""

from __future__ import annotations

import numpy as np
from numpy.testing import assert_allclose

from mlplat.sim import simulate_levels
from mlplat.sim._levels import _by_event_loop


def test_zero_keep_alive_makes_every_request_cold() -> None:
    """With keep_alive 0 an idle instance stops at once: every request starts its own, as in the event loop."""
    rng = np.random.default_rng(0)
    a = np.cumsum(rng.exponential(0.5, 2000))  # Poisson 2/s, exponential 500 ms, 0.5 s init (the reviewer's case)
    s = rng.exponential(0.5, len(a))
    horizon = (0.0, float(a[-1]) + 100.0)
    fast = simulate_levels(a, s, 0.5, 0.0, 1000, 0, horizon, max_work=None)
    slow = _by_event_loop(a, s, 0.5, 0.0, 1000, 0, horizon)
    assert fast.cold.all()
    np.testing.assert_array_equal(fast.cold, slow.cold)
    # Each instance lives exactly as long as its one request occupies it.
    assert_allclose(fast.instance_seconds, fast.occupancy.sum(), rtol=1e-9)
    assert_allclose(fast.instance_seconds, slow.instance_seconds, rtol=1e-9)
    assert fast.peak_instances == slow.peak_instances


def test_provisioned_instances_before_the_first_arrival_count_once() -> None:
    """Two provisioned instances over (0, 200) s with one request at 100 s are 400 instance-seconds, not 600."""
    a, s = np.array([100.0]), np.array([1.0])
    fast = simulate_levels(a, s, 5.0, 600.0, 1000, 2, (0.0, 200.0), max_work=None)
    slow = _by_event_loop(a, s, 5.0, 600.0, 1000, 2, (0.0, 200.0))
    # The request runs on a provisioned instance, so no third one starts: 2 instances x 200 s.
    assert not fast.cold.any()
    assert fast.instance_seconds == slow.instance_seconds == 400.0
    assert fast.instance_seconds / 200.0 <= fast.peak_instances == 2
