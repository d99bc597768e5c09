"""Durations, shares and rates as users write them."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mlplat.units import (
    MAX_DURATION,
    format_change,
    format_duration,
    format_time,
    parse_duration,
    parse_percent,
    parse_rate,
)


@pytest.mark.parametrize(("text", "seconds"), [("90", 90), ("90s", 90), ("10m", 600), ("1h30m", 5400),
                                               ("1d", 86400), ("250ms", 0.25), ("2min", 120), (" 1 h ", 3600)])
def test_parse_duration(text: str, seconds: float) -> None:
    """Durations with and without units."""
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(("text", "seconds"), [("1.1h", 3960.0), ("4.1m", 246.0), ("9ms", 0.009),
                                               ("0.3s", 0.3), ("1.5d2.5h", 138600.0)])
def test_parse_duration_is_the_decimal_written(text: str, seconds: float) -> None:
    """Each part is its decimal times the unit, exactly: 1.1h was 1.1 * 3600.0 = 3960.0000000000005, and an
    ingest window of that length moved an event on a boundary into the window before it."""
    assert parse_duration(text) == seconds


@given(st.integers(1, 999))
def test_every_whole_number_of_milliseconds_is_exact(ms: int) -> None:
    """`Nms` is the float nearest N/1000 (144 of 999 were not: 9ms gave 0.009000000000000001)."""
    assert parse_duration(f"{ms}ms") == ms / 1000

@pytest.mark.parametrize("bad", ["", "ten minutes", "10x", "-5s", "1h-3m", "nan", [1, 2], {"m": 1}, None])
def test_parse_duration_rejects(bad: object) -> None:
    """Anything else names the accepted forms."""
    with pytest.raises(ValueError, match="duration"):
        parse_duration(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("long", [MAX_DURATION + 1, 1e308, "5300w", str(MAX_DURATION * 2)])
def test_parse_duration_rejects_over_100_years(long: object) -> None:
    """Longer than 100 years is a typo, and would overflow a date or a window count downstream."""
    assert parse_duration(MAX_DURATION) == MAX_DURATION
    with pytest.raises(ValueError, match=r"a duration must be from 0 to 100 years, got"):
        parse_duration(long)  # type: ignore[arg-type]


@given(st.floats(min_value=0, max_value=1e7, allow_nan=False))
def test_duration_of_number_is_seconds(x: float) -> None:
    """A bare number is seconds."""
    assert parse_duration(x) == x


def test_format_duration() -> None:
    """Short forms for tables."""
    assert format_duration(45) == "45s"
    assert format_duration(3600) == "1h"
    assert format_duration(math.inf) == "inf"


def test_parse_percent() -> None:
    """Shares as percentages or fractions."""
    assert parse_percent("5%") == pytest.approx(0.05)
    assert parse_percent("0.5") == 0.5
    with pytest.raises(ValueError, match="share"):
        parse_percent("five")


def test_parse_rate() -> None:
    """Rates with a time unit."""
    assert parse_rate("1e6/h") == pytest.approx(277.777, rel=1e-4)
    assert parse_rate("3/min") == pytest.approx(0.05)
    with pytest.raises(ValueError, match="rate"):
        parse_rate("3/fortnight")
    with pytest.raises(ValueError, match=">= 0"):
        parse_rate("-1/s")


@pytest.mark.parametrize(("value", "text"), [
    (None, "-"), (math.nan, "-"), (np.float64("nan"), "-"), (np.float32("nan"), "-"), (math.inf, "+inf"),
    (-math.inf, "-inf"), (np.float64(0.25), "+25.0%"), (-0.5, "-50.0%"), (0, "+0.0%"),
    (0.00017, "+0.017%"), (-0.00017, "-0.017%"), (0.001, "+0.1%")])
def test_format_change(value: float | None, text: str) -> None:
    """Effects print as signed percentages, infinities by sign, and no effect (None or any NaN) as '-'."""
    assert format_change(value) == text


def test_format_time() -> None:
    """Times print as ISO 8601 in UTC, with a fraction only when the time has one (an ingest window at
    0.5 s must not read as the whole second)."""
    assert format_time(1767225600) == "2026-01-01T00:00:00Z"
    assert format_time(1767225600.25) == "2026-01-01T00:00:00.250000Z"
    assert format_time(1767225600.25, whole=True) == "2026-01-01T00:00:00Z"  # `now` in a message
