"""Fixtures to build small scenarios in the sim tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from mlplat.sim import Scenario


def _scenario(**overrides: Any) -> Scenario:
    data: dict[str, Any] = {
        "duration": "1h",
        "warmup": "5m",
        "replications": 2,
        "slo": {"p99_ms": 1000},
        "workload": {"kind": "poisson", "rate": "2/s"},
        "service": {"warm": {"dist": "exponential", "mean_ms": 200},
                    "cold_start": {"init_s": 0.5, "model_load_s": 1}},
        "platforms": [{"name": "fn", "kind": "lambda", "memory_gb": 2}],
    }
    data.update(overrides)
    return Scenario.model_validate(data)


@pytest.fixture
def make_scenario() -> Callable[..., Scenario]:
    """Build a small valid scenario; keyword arguments replace top-level keys."""
    return _scenario
