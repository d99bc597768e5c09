"""The Lambda level model: edge cases where it must still equal the event loop one event at a time."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose

from mlplat.sim import PoolSpec, simulate_levels, simulate_pool
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


@pytest.mark.parametrize("seed", range(8))
def test_level_model_equals_event_loop_on_integer_times(seed: int) -> None:
    """Whole-second arrivals, service times and keep-alives make ends, arrivals and expiries share instants;
    both engines order them alike (ends, then expiries, then arrivals), so flags and integrals agree."""
    rng = np.random.default_rng(seed)
    a = np.sort(rng.integers(0, 2000, 3000)).astype(float)
    s = rng.integers(1, 30, len(a)).astype(float)
    cold, keep_alive = float(rng.integers(0, 5)), float(rng.integers(0, 40))
    cap = int(rng.integers(1, 60))
    provisioned = min(int(rng.integers(0, 4)), cap)
    horizon = (100.0, 2100.0)
    fast = simulate_levels(a, s, cold, keep_alive, cap, provisioned, horizon, chunk=256, max_work=None)
    slow = simulate_pool(PoolSpec(slots=1, startup_s=cold, keep_alive=keep_alive, max_instances=cap,
                                  min_instances=provisioned, initial=provisioned), a, s, horizon)
    np.testing.assert_array_equal(fast.cold, slow.cold)
    np.testing.assert_array_equal(fast.rejected, slow.rejected)
    assert_allclose(fast.instance_seconds, slow.instance_seconds, rtol=1e-9)
    assert fast.peak_instances == max(slow.peak_instances, provisioned)
    handed = simulate_levels(a, s, cold, keep_alive, cap, provisioned, horizon, max_work=1)  # to the event loop
    np.testing.assert_array_equal(handed.rejected, fast.rejected)
    np.testing.assert_array_equal(handed.cold, fast.cold)

