"""Parse (and print) the human units used on command lines and in config files: durations, percentages, rates."""

from __future__ import annotations

import math
import re
from fractions import Fraction

__all__ = ["MAX_DURATION", "MAX_EPOCH", "MIN_EPOCH", "format_change", "format_duration", "format_exact",
           "format_percent", "format_time", "parse_duration", "parse_percent", "parse_rate"]

# Epoch seconds a date can hold (UTC, the years 1 to 9999; MAX_EPOCH excluded). Integers, as most times
# in data are: comparing an int with a float takes twice as long, and ingest does it per event.
MIN_EPOCH = -62_135_596_800  # 0001-01-01T00:00:00Z
MAX_EPOCH = 253_402_300_800  # 10000-01-01T00:00:00Z
# The longest duration accepted: 100 years of 365.25 days. Longer is a typo in any of our settings, and
# would overflow a date (a watermark that far behind an event) or a count (windows, cycles) downstream.
MAX_DURATION = 3_155_760_000

# Exact, so "1.1h" is the decimal written times 3600 (3960 s), not 1.1 * 3600.0 = 3960.0000000000005: a
# window of that length put an event exactly on a boundary into the window before it.
_DURATION_UNITS = {"ms": Fraction(1, 1000), "s": Fraction(1), "m": Fraction(60), "min": Fraction(60),
                   "h": Fraction(3600), "d": Fraction(86400), "w": Fraction(604800)}
_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*(ms|min|s|m|h|d|w)")
_RATE_UNITS = {"s": 1.0, "m": 1 / 60.0, "min": 1 / 60.0, "h": 1 / 3600.0, "d": 1 / 86400.0}


def _not_a_duration(value: object) -> ValueError:
    return ValueError(f"expected a duration such as '90s', '10m', '1h30m' or '1d', got {value!r}")


def parse_duration(value: str | float | int) -> float:
    """Seconds in a duration such as ``90``, ``"90s"``, ``"10m"``, ``"1h30m"``, ``"1d"``, ``"250ms"``.

    A bare number is seconds. Each part is its decimal times the unit, summed exactly and rounded once
    (``"1.1h"`` is 3960.0, ``"9ms"`` 0.009). Raises :class:`ValueError` (for pydantic validators) on anything
    else.

    Examples
    --------
    >>> parse_duration("1h30m"), parse_duration("250ms"), parse_duration(12)
    (5400.0, 0.25, 12.0)
    """
    if isinstance(value, bool) or not isinstance(value, int | float | str):  # a YAML bool, list, mapping, null
        raise _not_a_duration(value)
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        text = value.strip().lower().replace(" ", "")
        try:
            seconds = float(text)
        except ValueError:
            pos, exact = 0, Fraction(0)
            for match in _DURATION.finditer(text):
                if match.start() != pos:
                    break
                exact += Fraction(match.group(1)) * _DURATION_UNITS[match.group(2)]
                pos = match.end()
            if pos != len(text) or not text:
                raise _not_a_duration(value) from None
            seconds = float(exact)
    if not math.isfinite(seconds) or not 0 <= seconds <= MAX_DURATION:
        raise ValueError(f"a duration must be from 0 to 100 years, got {value!r}")
    return seconds


def format_exact(value: float) -> str:
    """A number as exact text, integers without ``.0``: for times that must be found again in the input.

    ``f"{t:g}"`` would print an epoch time as ``1.76723e+09``.

    >>> format_exact(1767225660.0), format_exact(60.5), format_exact(-3)
    ('1767225660', '60.5', '-3')
    """
    as_int = int(value)
    return str(as_int) if value == as_int else repr(float(value))


def format_duration(seconds: float) -> str:
    """Short human form of a duration: ``"45s"``, ``"12m30s"``, ``"2h05m"``, ``"3d4h"``.

    >>> format_duration(750), format_duration(7500), format_duration(0.25)
    ('12m30s', '2h05m', '250ms')
    """
    if not math.isfinite(seconds):
        return "inf"
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.0f}s" if seconds >= 10 else f"{seconds:.1f}s"
    if seconds < 3600:
        m, s = divmod(round(seconds), 60)
        return f"{m}m{s:02d}s" if s else f"{m}m"
    if seconds < 86400:
        h, m = divmod(round(seconds / 60), 60)
        return f"{h}h{m:02d}m" if m else f"{h}h"
    d, h = divmod(round(seconds / 3600), 24)
    return f"{d}d{h}h" if h else f"{d}d"


def format_percent(share: float) -> str:
    """A share as a percentage to six significant figures, so 0.0001% and 99.9999% keep their digits.

    >>> format_percent(0.05), format_percent(0.000001), format_percent(0.999999), format_percent(0.025)
    ('5%', '0.0001%', '99.9999%', '2.5%')
    """
    return f"{share * 100:.6g}%"


def format_change(x: float | None) -> str:
    """A relative change as a signed percentage, one decimal, or two significant figures under 0.1% (an
    interval of +-0.017% over billions of requests read -0.0%, +0.0%); '-' when there is none.

    >>> format_change(0.123), format_change(-0.00017), format_change(None)
    ('+12.3%', '-0.017%', '-')
    """
    if x is None or math.isnan(x):
        return "-"
    if math.isinf(x):
        return "+inf" if x > 0 else "-inf"
    return f"{x * 100:+.2g}%" if 0 < abs(x) < 0.001 else f"{x:+.1%}"


def format_time(seconds: float, *, whole: bool = False) -> str:
    """Seconds since the epoch as ISO 8601 in UTC (fractions only when there are; none with ``whole``,
    for times such as ``now`` whose microseconds say nothing).

    >>> format_time(1767225600), format_time(1767225600.5), format_time(1767225600.5, whole=True)
    ('2026-01-01T00:00:00Z', '2026-01-01T00:00:00.500000Z', '2026-01-01T00:00:00Z')
    """
    import datetime as dt

    when = dt.datetime.fromtimestamp(seconds, dt.UTC)
    return when.isoformat(timespec="seconds" if whole else "auto").replace("+00:00", "Z")


def parse_percent(value: str | float) -> float:
    """A share in [0, 1] from ``"5%"``, ``"0.05"`` or ``0.05``.

    >>> parse_percent("5%"), parse_percent("0.25"), parse_percent(0.5)
    (0.05, 0.25, 0.5)
    """
    if isinstance(value, int | float) and not isinstance(value, bool):
        share = float(value)
    else:
        text = str(value).strip()
        try:
            share = float(text[:-1]) / 100.0 if text.endswith("%") else float(text)
        except ValueError:
            raise ValueError(f"expected a share such as '5%' or '0.05', got {value!r}") from None
    if not math.isfinite(share):
        raise ValueError(f"a share must be finite, got {value!r}")
    return share


def parse_rate(value: str | float) -> float:
    """Events per second from ``"278"``, ``"278/s"``, ``"1e6/h"``, ``"3/min"``.

    >>> parse_rate("3600/h"), parse_rate("0.5/s"), parse_rate(2)
    (1.0, 0.5, 2.0)
    """
    if isinstance(value, int | float) and not isinstance(value, bool):
        rate = float(value)
    else:
        text = str(value).strip().lower().replace(" ", "")
        number, _, unit = text.partition("/")
        try:
            rate = float(number) * _RATE_UNITS[unit or "s"]
        except (ValueError, KeyError):
            raise ValueError(f"expected a rate such as '278/s', '5/min' or '1e6/h', got {value!r}") from None
    if not math.isfinite(rate) or rate < 0:
        raise ValueError(f"a rate must be finite and >= 0, got {value!r}")
    return rate
