"""Rule 12's hand-back delay, with plain numbers for time."""

from __future__ import annotations

import pytest

from mlplat.batcher._delivery import HAND_BACK_MAX, hand_back_delay

MS = 0.001


def test_hand_back_delay_is_a_share_of_predict_capped_and_clear_of_every_deadline() -> None:
    """Rule 12: results wait a quarter of predict time, at most HAND_BACK_MAX, never into a deadline's guard."""
    assert hand_back_delay(1 * MS, [10.0], 1.0) == pytest.approx(0.25 * MS)
    assert hand_back_delay(1.0, [10.0], 1.0) == HAND_BACK_MAX
    assert hand_back_delay(1.0, [10.0, 1.0 + 0.3 * MS], 1.0) == pytest.approx(0.3 * MS)  # the tightest
    assert hand_back_delay(0.1 * MS, [10.0], 1.0) == 0.0  # shorter than a sleep can be: at once
    assert hand_back_delay(1.0, [0.5], 1.0) == 0.0  # already late (on_deadline="serve"): at once
    # Never into the guard the deadline policy keeps for the hand-back (rule 5's g): 1.3 ms of slack with
    # 1 ms kept leaves 0.3 ms to hold; 1.01 ms leaves less than a sleep, so none.
    assert hand_back_delay(1.0, [1.0 + 1.3 * MS], 1.0, keep=1 * MS) == pytest.approx(0.3 * MS)
    assert hand_back_delay(1.0, [1.0 + 1.01 * MS], 1.0, keep=1 * MS) == 0.0
