"""Properties of the Lambda level model that must hold for any parameters."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from tests.strategies import function_params

from mlplat.sim import PoolSpec, simulate_levels, simulate_pool


@settings(max_examples=15, deadline=None)
@given(function_params)
def test_level_model_matches_event_loop(params: tuple[float, float, float, int, int]) -> None:
    """For any rate, cold start, keep-alive, cap and provisioned count, both engines agree flag for flag."""
    rate, cold, keep, cap, provisioned = params
    provisioned = min(provisioned, cap)
    rng = np.random.default_rng(0)
    a = np.cumsum(rng.exponential(1 / rate, 1500))
    s = rng.exponential(0.5, len(a))
    fast = simulate_levels(a, s, cold, keep, cap, provisioned, (0.0, float(a[-1])), chunk=256, max_work=None)
    slow = simulate_pool(PoolSpec(slots=1, startup_s=cold, keep_alive=keep, max_instances=cap,
                                  min_instances=provisioned, initial=provisioned), a, s, (0.0, float(a[-1])))
    np.testing.assert_array_equal(fast.cold, slow.cold)
    np.testing.assert_array_equal(fast.rejected, slow.rejected)
    # Never more alive than the cap, never fewer than the provisioned instances.
    assert provisioned <= fast.peak_instances <= max(cap, provisioned)
    assert fast.instance_seconds >= provisioned * float(a[-1]) - 1e-6
