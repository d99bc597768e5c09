"""Arrival times for each workload kind, and the trace readers (Azure Functions 2019, timestamps)."""

from __future__ import annotations

import csv
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mlplat.errors import DataError
from mlplat.sim._scenario import (
    BurstyWorkload,
    DiurnalWorkload,
    PoissonWorkload,
    Service,
    TraceWorkload,
    Workload,
)

# Most invocations an Azure trace row may hold: each becomes an arrival time (8 bytes) before any replay.
MAX_TRACE_INVOCATIONS = 20_000_000


@dataclass(frozen=True)
class Trace:
    """Arrival times read from a file, in seconds from its start, and the time span they cover."""

    times: np.ndarray
    span: float


def mean_rate(workload: Workload, trace: Trace | None = None) -> float:
    """Long-run mean arrival rate per second of ``workload``.

    Poisson: its ``rate``; diurnal: its ``mean_rate`` (the sine averages out over a period); bursty: the
    on and off rates weighted by the mean lengths of the on and off periods; trace: the trace's arrivals
    over its span, times ``scale``.

    Parameters
    ----------
    workload : Workload
        A validated workload of any kind.
    trace : Trace, optional
        The trace read by :func:`read_trace`; needed for a trace workload only.

    Returns
    -------
    float
        Arrivals per second.

    Raises
    ------
    DataError
        If ``workload`` is a trace workload and ``trace`` is None.

    Examples
    --------
    >>> from mlplat.sim._scenario import BurstyWorkload, TraceWorkload
    >>> mean_rate(BurstyWorkload(kind="bursty", on_rate=10, off_rate=0, mean_on=60, mean_off=240))
    2.0
    >>> trace = Trace(times=np.array([0.0, 1.0, 2.0, 3.0]), span=4.0)
    >>> mean_rate(TraceWorkload(kind="trace", path="t.csv", scale=2), trace)
    2.0
    """
    if isinstance(workload, PoissonWorkload):
        return workload.rate
    if isinstance(workload, DiurnalWorkload):
        return workload.mean_rate
    if isinstance(workload, BurstyWorkload):
        w = workload
        return (w.on_rate * w.mean_on + w.off_rate * w.mean_off) / (w.mean_on + w.mean_off)
    if trace is None:
        raise DataError("a trace workload needs its trace (read_trace) to have a mean rate")
    return len(trace.times) / trace.span * workload.scale


def with_mean_rate(workload: Workload, rate: float, trace: Trace | None = None) -> Workload:
    """A copy of ``workload`` scaled so that its mean rate is ``rate`` (shape kept), for rate sweeps."""
    factor = rate / mean_rate(workload, trace)
    if isinstance(workload, PoissonWorkload):
        return workload.model_copy(update={"rate": rate})
    if isinstance(workload, DiurnalWorkload):
        return workload.model_copy(update={"mean_rate": rate})
    if isinstance(workload, BurstyWorkload):
        return workload.model_copy(update={"on_rate": workload.on_rate * factor,
                                           "off_rate": workload.off_rate * factor})
    return workload.model_copy(update={"scale": workload.scale * factor})


def _poisson(rate: float, start: float, end: float, rng: np.random.Generator) -> np.ndarray:
    count = rng.poisson(rate * (end - start))
    return np.sort(rng.uniform(start, end, count))


def arrivals(workload: Workload, duration: float, rng: np.random.Generator,
             trace: Trace | None = None) -> np.ndarray:
    """Sorted arrival times in ``[0, duration)`` for one replication.

    Poisson: a Poisson count spread uniformly; diurnal: thinning of a Poisson process at the peak rate;
    bursty: exponential on and off periods (starting in the stationary state), Poisson within each;
    trace: the trace looped to cover ``duration``, with a ``scale`` other than 1 thinning or repeating
    arrivals at random (each copy of a repeated arrival is moved by up to half a second).

    Parameters
    ----------
    workload : Workload
        A validated workload of any kind.
    duration : float
        Seconds to draw.
    rng : numpy.random.Generator
        Source of randomness (pass a seeded one).
    trace : Trace, optional
        The trace read by :func:`read_trace`; needed for a trace workload only.

    Returns
    -------
    numpy.ndarray
        Arrival times in seconds, sorted, each in ``[0, duration)``.

    Raises
    ------
    DataError
        If ``workload`` is a trace workload and ``trace`` is None.

    References
    ----------
    .. [1] P. A. W. Lewis and G. S. Shedler, "Simulation of nonhomogeneous Poisson processes by thinning",
       1979 (the diurnal workload).

    Examples
    --------
    >>> from mlplat.sim._scenario import PoissonWorkload
    >>> a = arrivals(PoissonWorkload(kind="poisson", rate=10), 1000.0, np.random.default_rng(1))
    >>> round(len(a) / 1000.0)
    10
    >>> bool(np.all(np.diff(a) >= 0) and a[0] >= 0 and a[-1] < 1000.0)
    True
    """
    if isinstance(workload, PoissonWorkload):
        return _poisson(workload.rate, 0.0, duration, rng)
    if isinstance(workload, DiurnalWorkload):
        amplitude = (workload.peak_to_trough - 1) / (workload.peak_to_trough + 1)
        peak = workload.mean_rate * (1 + amplitude)
        # Thinning (Lewis & Shedler 1979): keep each candidate with probability rate(t) / peak.
        times = _poisson(peak, 0.0, duration, rng)
        phase = 2 * math.pi * (times - workload.peak_at) / workload.period
        keep = rng.uniform(size=len(times)) * (1 + amplitude) < 1 + amplitude * np.cos(phase)
        return times[keep]
    if isinstance(workload, BurstyWorkload):
        return _bursty(workload, duration, rng)
    if trace is None:
        raise DataError("a trace workload needs its trace (read_trace) to draw arrivals")
    return _replay(trace, workload.scale, duration, rng)


def _bursty(w: BurstyWorkload, duration: float, rng: np.random.Generator) -> np.ndarray:
    # Alternate exponential on and off periods, starting in the stationary state. Arrivals are drawn only
    # inside [0, duration): a period that runs past the end is cut there, and later ones are dropped (a
    # sweep at a high rate simulates minutes of a workload whose cycle is an hour).
    cycles = int(duration / (w.mean_on + w.mean_off) * 1.2) + 16
    pieces: list[np.ndarray] = []
    t = 0.0
    on = bool(rng.uniform() < w.mean_on / (w.mean_on + w.mean_off))
    while t < duration:
        ons = rng.exponential(w.mean_on, cycles)
        offs = rng.exponential(w.mean_off, cycles)
        lengths = np.column_stack((ons, offs) if on else (offs, ons)).ravel()
        ends = t + np.cumsum(lengths)
        begins = np.concatenate(([t], ends[:-1]))
        inside = begins < duration
        begins, ends = begins[inside], np.minimum(ends[inside], duration)
        rates = np.tile([w.on_rate, w.off_rate] if on else [w.off_rate, w.on_rate], cycles)[inside]
        spans = ends - begins
        counts = rng.poisson(rates * spans)
        pieces.append(np.repeat(begins, counts) + rng.uniform(size=int(counts.sum())) * np.repeat(spans, counts))
        t = float(ends[-1])
    times = np.sort(np.concatenate(pieces))
    return times[times < duration]


def _replay(trace: Trace, scale: float, duration: float, rng: np.random.Generator) -> np.ndarray:
    # Loop the trace to cover the duration; a scale other than 1 thins or repeats arrivals at random.
    loops = math.ceil(duration / trace.span)
    times = (trace.times[None, :] + trace.span * np.arange(loops)[:, None]).ravel()
    if scale != 1.0:
        whole = int(scale)
        copies = np.full(len(times), whole) + (rng.uniform(size=len(times)) < scale - whole)
        times = np.repeat(times, copies)
        times = np.sort(times + rng.uniform(-0.5, 0.5, len(times)) * (copies.repeat(copies) > 1))
    return times[(times >= 0) & (times < duration)]


def read_trace(workload: TraceWorkload, base: Path, rng: np.random.Generator | None = None) -> Trace:
    """Read the trace file of ``workload`` (relative to ``base``); errors name the file and line.

    An Azure Functions 2019 invocation file has columns ``HashOwner, HashApp, HashFunction, Trigger,
    1 .. 1440`` (invocations per minute); each minute's count is spread uniformly over the minute with a
    fixed seed so replications see the same trace. A timestamps file has one time per line (a header line
    is allowed).
    """
    path = Path(workload.path)
    if not path.is_absolute():
        path = base / path
    try:
        # utf-8-sig: a BOM (Excel, PowerShell) would otherwise hide the header or the first timestamp.
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise DataError(f"{path}: no such trace file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read the trace: {exc}") from exc
    if workload.format == "timestamps":
        return _read_timestamps(path, text, 0.001 if workload.time_unit == "ms" else 1.0)
    return _read_azure(path, text, workload.function, rng or np.random.default_rng(0))


def _read_timestamps(path: Path, text: str, unit: float) -> Trace:
    values: list[float] = []
    for number, line in enumerate(text.splitlines(), start=1):
        cell = line.strip().split(",")[0].strip()
        if not cell:
            continue
        try:
            value = float(cell)
        except ValueError:
            if number == 1:
                continue
            raise DataError(f"{path}:{number}:1: expected a timestamp (a number), got {cell!r}") from None
        if not math.isfinite(value) or value < 0:
            raise DataError(f"{path}:{number}:1: a timestamp must be finite and >= 0, got {cell!r}")
        values.append(value * unit)
    if not values:
        raise DataError(f"{path}: no timestamps found")
    times = np.sort(np.asarray(values))
    times -= times[0]
    if times[-1] == 0:
        # The trace loops over its span; with one distinct time it has no span and no rate.
        raise DataError(f"{path}: expected at least two distinct timestamps, got {len(values)} equal to {values[0]:g}")
    span = float(times[-1]) + (float(np.mean(np.diff(times))) if len(times) > 1 else 1.0)
    if not math.isfinite(span):
        raise DataError(f"{path}: the timestamps span more seconds than a number holds ({times[-1]:g})")
    return Trace(times=times, span=span)


def _read_azure(path: Path, text: str, function: str | None, rng: np.random.Generator) -> Trace:
    reader = csv.reader(text.splitlines())
    header = next(reader, None)
    if header is None or header[:3] != ["HashOwner", "HashApp", "HashFunction"]:
        raise DataError(f"{path}:1:1: expected the Azure Functions 2019 header "
                        "'HashOwner,HashApp,HashFunction,Trigger,1,...,1440'")
    minutes = len(header) - 4
    if minutes < 1:
        raise DataError(f"{path}:1:1: no per-minute columns after Trigger")
    for number, row in enumerate(reader, start=2):
        if function is not None and (len(row) < 3 or row[2] != function):
            continue
        if len(row) != len(header):
            raise DataError(f"{path}:{number}:1: expected {len(header)} columns, got {len(row)}")
        counts = np.empty(minutes, dtype=np.int64)
        in_range = f"a count must be in [0, {MAX_TRACE_INVOCATIONS:,}]"
        for column, cell in enumerate(row[4:]):
            try:
                count = int(cell)
            except ValueError:  # also past Python's 4,300-digit limit on int(str)
                rule = in_range if cell.strip().isdigit() else "expected a count"
                raise _cell_error(path, number, row, column, rule) from None
            if not 0 <= count <= MAX_TRACE_INVOCATIONS:  # bounded cells keep the row's int64 sum from wrapping
                raise _cell_error(path, number, row, column, in_range)
            counts[column] = count
        total = int(counts.sum())
        if total == 0:
            raise DataError(f"{path}:{number}:1: the function has no invocations")
        if total > MAX_TRACE_INVOCATIONS:  # each becomes an arrival time in memory
            raise DataError(f"{path}:{number}:1: the function has {total:,} invocations, more than the "
                            f"{MAX_TRACE_INVOCATIONS:,} a trace may hold; use the scenario's `scale` instead")
        starts = np.repeat(np.arange(minutes) * 60.0, counts)
        times = np.sort(starts + rng.uniform(0, 60.0, len(starts)))
        return Trace(times=times, span=minutes * 60.0)
    what = f"function {function!r}" if function else "data rows"
    raise DataError(f"{path}: no {what} found")


def _cell_error(path: Path, number: int, row: list[str], column: int, rule: str) -> DataError:
    """``file:line:col: minute m: rule, got 'cell'`` for per-minute column ``column`` of ``row``."""
    col = sum(len(c) + 1 for c in row[: column + 4]) + 1
    return DataError(f"{path}:{number}:{col}: minute {column + 1}: {rule}, got {row[column + 4]!r}")


def service_sampler(service: Service) -> Callable[[np.random.Generator, int], np.ndarray]:
    """A function ``(rng, n) -> seconds`` drawing warm service times."""
    warm = service.warm
    if warm.dist == "lognormal":
        mu, sigma = warm.params()
        return lambda rng, n: rng.lognormal(mu, sigma, n)
    if warm.dist == "exponential":
        mean = warm.mean_s()
        return lambda rng, n: rng.exponential(mean, n)
    if warm.dist == "constant":
        mean = warm.mean_s()
        return lambda rng, n: np.full(n, mean)
    samples = np.asarray(warm.samples_ms) / 1000.0
    return lambda rng, n: rng.choice(samples, n)
