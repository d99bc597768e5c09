"""Hypothesis strategies shared by the tests, one section per command group."""

from __future__ import annotations

from hypothesis import strategies as st

# sim

#: Parameters of a one-request-per-instance function: (rate /s, cold start s, keep-alive s, cap, provisioned).
function_params = st.tuples(
    st.floats(0.05, 20.0),
    st.floats(0.0, 10.0),
    st.floats(1.0, 900.0),
    st.integers(1, 50),
    st.integers(0, 5),
)
