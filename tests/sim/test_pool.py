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


def test_a_new_pod_goes_to_the_oldest_node_with_room() -> None:
    """Nodes A and B hold three pods; one leaves A, and a new pod at 6.5 s goes to A (the oldest with room),
    so B empties once its pod expires and is removed at 13 s: A 50 s + B 13 s of nodes. On B it would have
    kept B for the whole run and let A go at 16 s (66 s). Placement keeps its order now that it no longer
    scans every node per pod."""
    a = np.array([0.0, 0.0, 0.0, 6.5])
    service = np.array([10.0, 1.0, 7.0, 100.0])
    spec = PoolSpec(slots=1, keep_alive=5.0, pods_per_node=2, node_scale_down_s=1.0)
    run = simulate_pool(spec, a, service, (0.0, 50.0))
    assert run.peak_nodes == 2
    assert run.node_seconds == 63.0
