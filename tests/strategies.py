"""Hypothesis strategies shared by the test suite, one section per command group."""

from __future__ import annotations

from hypothesis import strategies as st

# canary

#: Bad events per interval in one arm (sparse, as error counts are).
event_counts = st.lists(st.integers(min_value=0, max_value=50), min_size=1, max_size=40)

#: A canary traffic share as mlplat meets them: 0.5% to 50%.
traffic_shares = st.floats(min_value=0.005, max_value=0.5, allow_nan=False)

#: Concentrations of the rate prior.
concentrations = st.floats(min_value=1.0, max_value=1000.0, allow_nan=False)
