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


def test_billable_periods_are_rounded_up_to_the_bill_step() -> None:
    """Cloud Run bills each period an instance starts or serves in whole 100 ms (found by a review pass: the
    bill used the exact seconds, 28% under on the bursty example). A 0.25 s request bills 0.3 s, a later
    0.05 s one 0.1 s; two overlapping requests on one instance are one period (0.2 s to 0.5 s: 0.3 s), and a
    request taking a slot freed at that instant continues it."""
    run = simulate_pool(PoolSpec(slots=1, bill_step=0.1), np.array([0.0, 10.0]), np.array([0.25, 0.05]),
                        (0.0, 20.0))
    assert np.isclose(run.busy_instance_seconds, 0.3) and np.isclose(run.billed_busy_seconds, 0.4)
    shared = simulate_pool(PoolSpec(slots=2, bill_step=0.1, keep_alive=100.0), np.array([0.0, 0.2, 0.3]),
                           np.array([0.1, 0.2, 0.2]), (0.0, 20.0))
    # [0, 0.1] rounds to 0.1; [0.2, 0.5] (two requests overlapping) to 0.3
    assert np.isclose(shared.busy_instance_seconds, 0.4) and np.isclose(shared.billed_busy_seconds, 0.4)
    chained = simulate_pool(PoolSpec(slots=1, bill_step=0.1, max_instances=1, on_demand=True, queue=True),
                            np.array([0.0, 0.01]), np.array([0.12, 0.12]), (0.0, 20.0))
    assert np.isclose(chained.busy_instance_seconds, 0.24) and np.isclose(chained.billed_busy_seconds, 0.3)
    exact = simulate_pool(PoolSpec(slots=1), np.array([0.0, 10.0]), np.array([0.25, 0.05]), (0.0, 20.0))
    assert exact.billed_busy_seconds == exact.busy_instance_seconds


def test_a_rounded_up_busy_period_is_not_billed_again_as_idle_minimum_time() -> None:
    """One minimum instance over 10 s serving one 0.12 s request: 0.2 s billed busy and 9.8 s idle, not 9.88
    idle as well, which billed 10.08 s of a 10 s instance (found by the review of the rounding)."""
    run = simulate_pool(PoolSpec(slots=1, min_instances=1, initial=1, keep_alive=900.0, bill_step=0.1),
                        np.array([1.0]), np.array([0.12]), (0.0, 10.0))
    assert np.isclose(run.billed_busy_seconds, 0.2) and np.isclose(run.idle_min_seconds, 9.8)
    assert np.isclose(run.billed_busy_seconds + run.idle_min_seconds, run.instance_seconds)
