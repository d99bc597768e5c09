"""A small valid rubric as text, so each bad-input test changes one line and knows where the error is."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

BASE = """\
title: Serving platform
criteria:
  - {id: cost, direction: cost, weight: 0.5, source: tco}
  - {id: speed, direction: benefit, weight: 0.3}
  - {id: fit, direction: benefit, weight: 0.2}
options:
  - id: build
    scores: {speed: 3, fit: {low: 2, mode: 3, high: 4}}
  - id: buy
    scores: {speed: 5, fit: 2}
  - id: hybrid
    scores: {speed: 4, fit: 4}
tco:
  discount_rate: 0.1
  horizon_years: 3
  options:
    build:
      - {name: build, year: 0, amount: 300}
      - {name: run, years: [1, 2, 3], amount: 100}
      - {name: overrun, year: 1, amount: 200, probability: 0.3}
    buy:
      - {name: fee, years: [1, 2, 3], unit_price: 0.001, volume: 100000, growth: 0.1}
    hybrid:
      - {name: setup, year: 0, amount: 150}
      - {name: run, years: [1, 2, 3], amount: 120}
"""


@pytest.fixture
def write_rubric(tmp_path: Path) -> Callable[..., Path]:
    """Write BASE with ``old -> new`` replacements applied (each must match) to ``r.yaml``."""

    def write(*replacements: tuple[str, str], text: str = BASE) -> Path:
        for old, new in replacements:
            assert old in text, old
            text = text.replace(old, new, 1)
        path = tmp_path / "r.yaml"
        path.write_text(text)
        return path

    return write
