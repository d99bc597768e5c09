"""The event loop's own rules: what happens first when events share an instant."""

from __future__ import annotations

import numpy as np

from mlplat.sim import PoolSpec, simulate_pool


def test_a_request_ending_at_t_frees_its_slot_for_one_arriving_at_t() -> None:
    """One slot, a request each second for 1 s: each ends as the next arrives, so none is refused."""
    a = np.arange(1000.0)
    run = simulate_pool(PoolSpec(slots=1, max_instances=1), a, np.ones(len(a)), (0.0, 1000.0))
    assert not run.rejected.any()
    np.testing.assert_array_equal(run.start, a)


def test_an_instance_whose_keep_alive_ends_at_t_has_stopped_for_a_request_at_t() -> None:
    """Freed at 1 s with a 10 s keep-alive, an instance serves a request at 10.5 s but not one at 21 s."""
    a = np.array([0.0, 10.5, 21.5])  # the second ends at 11.5: alive until 21.5, not at 21.5
    run = simulate_pool(PoolSpec(slots=1, keep_alive=10.0), a, np.ones(3), (0.0, 30.0))
    assert run.cold.tolist() == [True, False, True]
