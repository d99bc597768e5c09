"""Hypothesis strategies shared by the tests, one section per command group."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

# rubric


@st.composite
def decision_matrices(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A stack of decision matrices ``(d, m, n)`` with positive scores, cost flags ``(n,)`` and weights ``(d, n)``."""
    d = draw(st.integers(1, 4))
    m = draw(st.integers(2, 5))
    n = draw(st.integers(1, 5))
    x = draw(arrays(np.float64, (d, m, n), elements=st.floats(0.5, 100.0)))
    cost = draw(arrays(np.bool_, (n,)))
    raw = draw(arrays(np.float64, (d, n), elements=st.floats(0.01, 1.0)))
    return x, cost, raw / raw.sum(axis=1, keepdims=True)


# sim

#: Parameters of a one-request-per-instance function: (rate /s, cold start s, keep-alive s, cap, provisioned).
function_params = st.tuples(
    st.floats(0.05, 20.0),
    st.floats(0.0, 10.0),
    st.floats(1.0, 900.0),
    st.integers(1, 50),
    st.integers(0, 5),
)
