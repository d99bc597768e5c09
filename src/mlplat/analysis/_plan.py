"""Planning by simulation of the very test the judge runs: detection probability and time to detect.

:func:`simulate_detection` is the one simulation behind ``mlplat canary plan`` and ``mlplat canary
rollout``: seeded, vectorised over runs (blocks of runs at a time, never a Python loop per observation).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mlplat.analysis._sequential import (
    MAX_CONCENTRATION,
    MIN_CONCENTRATION,
    MIN_SHARE,
    NO_INTERVAL,
    ConfidenceInterval,
    check_level,
    rate_ratio_process,
)
from mlplat.errors import ConfigError, SimulationError

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

__all__ = ["DetectionSimulation", "PlanCell", "PlanResult", "cell_rng", "plan", "simulate_detection"]

# Runs per vectorised block: runs x looks x grid floats stay near 30 MB (256 runs at 60 looks).
_CELLS_PER_BLOCK = 256 * 60
# Bounds on one simulation: a run-look costs about 7 µs, so 5M of them is under a minute; numpy's Poisson
# sampler cannot draw means past about 1e18, and no canary sees 1e12 requests a minute.
MAX_CELLS = 5_000_000
MAX_PER_INTERVAL = 1e12


@dataclass(frozen=True)
class DetectionSimulation:
    """Times (seconds) at which the seeded runs rolled back; ``inf`` where a run never did."""

    detect_times: NDArray[np.float64]
    interval: float
    duration: float

    @property
    def runs(self) -> int:
        return int(self.detect_times.shape[0])

    def power(self, within: float | None = None) -> float:
        """Share of runs that rolled back within ``within`` seconds (default: the whole duration)."""
        import numpy as np

        limit = self.duration if within is None else within
        return float(np.mean(self.detect_times <= limit + 1e-9))

    def median_time(self) -> float:
        """Median time to detect over all runs (``inf`` when fewer than half detect)."""
        import numpy as np

        return float(np.median(self.detect_times))

    def time_to_power(self, power: float) -> float:
        """Shortest dwell (a whole number of intervals) in which a share ``power`` of runs detect."""
        import numpy as np

        ordered = np.sort(self.detect_times)
        index = max(math.ceil(power * self.runs) - 1, 0)
        return float(ordered[index])


def simulate_detection(
    *,
    rps: float,
    traffic: float,
    baseline_rate: float,
    effect: float,
    duration: float,
    interval: float = 60.0,
    alpha: float = 0.05,
    tolerance: float = 0.0,
    concentration: float = 20.0,
    runs: int = 2000,
    rng: np.random.Generator,
    min_events: int = 0,
) -> DetectionSimulation:
    """Simulate the rate gate on a canary whose error rate is ``effect`` times the baseline's.

    Each interval, ``rps * interval`` requests are split at random with canary share ``traffic``, errors
    are binomial in each arm, and :func:`~mlplat.analysis.rate_ratio_process` is evaluated at every
    look. ``effect = 1`` is the A/A null (the false-alarm rate under continuous monitoring).

    Parameters
    ----------
    rps : float
        Requests per second over both arms.
    traffic : float
        Canary share of requests, in (0, 1) (at least 1e-6 from either end).
    baseline_rate : float
        Baseline error rate per request.
    effect : float
        Canary error rate over the baseline's.
    duration, interval : float
        Seconds simulated, and seconds between looks (default 60). Only whole intervals are simulated.
    alpha, tolerance, concentration : float
        The gate: the metric's alpha, its relative tolerance and the prior concentration ``k`` (defaults
        0.05, 0 and 20).
    runs : int
        Monte Carlo runs (default 2000).
    rng : numpy.random.Generator
        Source of randomness (pass a seeded one).
    min_events : int
        Bad events (both arms) before the gate may decide, as the metric's ``min_events`` in the judge
        (default 0 here; the config's default is 10).

    Returns
    -------
    DetectionSimulation
        ``detect_times``: per run, the time (seconds, a whole number of intervals) of the first look at
        which the gate rolled back, ``inf`` where it never did; ``duration`` is ``duration`` rounded down
        to whole intervals.

    Raises
    ------
    ConfigError
        If ``alpha`` is not in (0, 1).
    SimulationError
        If ``traffic`` is outside [1e-6, 1 - 1e-6], ``effect`` is not finite, ``baseline_rate`` is not in
        (0, 1), ``baseline_rate * effect`` is not in [0, 1), ``tolerance`` is negative or not finite,
        ``concentration`` is outside [1e-6, 1e6], ``runs`` < 1, ``duration`` is shorter than one
        ``interval``, ``rps * interval`` is not in (0, 1e12], or ``runs`` times the looks passes 5,000,000.

    References
    ----------
    M. Lindon and A. Malek (2022). Anytime-valid inference for multinomial count data. NeurIPS 2022.

    Examples
    --------
    >>> import numpy as np
    >>> sim = simulate_detection(rps=278, traffic=0.05, baseline_rate=0.001, effect=3, duration=3600,
    ...                          runs=200, rng=np.random.default_rng(1))
    >>> sim.power() > 0.9
    True
    """
    import numpy as np

    check_level(alpha)
    # Written as "not (ok)" so that NaN, which fails every comparison, is refused too.
    if not MIN_SHARE <= traffic <= 1 - MIN_SHARE:
        raise SimulationError(f"traffic share must be in [{MIN_SHARE:g}, 1 - {MIN_SHARE:g}], got {traffic:g}")
    if not math.isfinite(effect):
        raise SimulationError(f"the effect (an error-rate multiplier) must be finite, got {effect}")
    if not 0 < baseline_rate < 1 or not 0 <= baseline_rate * effect < 1:
        raise SimulationError(f"error rates must be in (0, 1), got {baseline_rate} and {baseline_rate * effect}")
    if not (tolerance >= 0 and math.isfinite(tolerance)) or not (
            MIN_CONCENTRATION <= concentration <= MAX_CONCENTRATION):
        raise SimulationError(f"tolerance must be finite and >= 0 and concentration in [{MIN_CONCENTRATION:g}, "
                              f"{MAX_CONCENTRATION:g}], got {tolerance} and {concentration}")
    if runs < 1:
        raise SimulationError(f"runs must be >= 1, got {runs}")
    if not (interval > 0 and duration >= interval):
        raise SimulationError(f"the duration must be at least one interval (> 0), got duration {duration:g} s and "
                              f"interval {interval:g} s")
    if not 0 < rps * interval <= MAX_PER_INTERVAL:
        raise SimulationError(f"rps x interval must be in (0, {MAX_PER_INTERVAL:.0e}] requests per look, got "
                              f"{rps:g}/s x {interval:g} s")
    if runs * (duration // interval) > MAX_CELLS:
        raise SimulationError(f"{runs:,} runs x {duration // interval:,.0f} looks ({duration:g} s every {interval:g} "
                              f"s) is more than the {MAX_CELLS:,} a simulation may hold (a minute of work): "
                              "lower the runs or the longest duration")
    looks = int(duration // interval)
    per_interval = rps * interval
    times = interval * np.arange(1, looks + 1)
    detect = np.full(runs, np.inf)
    block = max(1, _CELLS_PER_BLOCK // looks)
    for start in range(0, runs, block):
        n = min(block, runs - start)
        requests = rng.poisson(per_interval, size=(n, looks))
        canary_req = rng.binomial(requests, traffic)
        base_req = requests - canary_req
        canary_err = rng.binomial(canary_req, min(baseline_rate * effect, 1.0))
        base_err = rng.binomial(base_req, baseline_rate)
        with np.errstate(divide="ignore", invalid="ignore"):
            share = np.where(requests > 0, canary_req / np.maximum(requests, 1), traffic)
        share = np.clip(share, 1e-9, 1 - 1e-9)
        process = rate_ratio_process(canary_err, base_err, share, null_ratio=1 + tolerance,
                                     direction="increase", prior_share=traffic,
                                     concentration=concentration, alpha=alpha, p_value_only=True)
        # The judge decides only once min_events bad events are in: a plan without that rule promised
        # dwells the gate could not keep (min_events 1000 at 300 req/s needs about 37 minutes of errors).
        hit = (process.p_value <= alpha) & (np.cumsum(canary_err + base_err, axis=-1) >= min_events)
        first = np.argmax(hit, axis=-1)
        detect[start:start + n] = np.where(hit.any(axis=-1), times[first], np.inf)
    return DetectionSimulation(detect_times=detect, interval=interval, duration=float(looks * interval))


@dataclass(frozen=True)
class PlanCell:
    """One traffic share x effect cell of the plan."""

    traffic: float
    effect: float
    power: float
    median_time: float
    time_to_80: float
    time_to_95: float
    power_ci: ConfidenceInterval = NO_INTERVAL
    """95% Clopper-Pearson interval of ``power``: the simulation's own error, from its number of runs."""

    def to_dict(self) -> dict[str, Any]:
        return {"traffic": self.traffic, "effect": self.effect, "power": self.power,
                "power_ci": list(self.power_ci), "median_time_to_detect_s": self.median_time,
                "time_to_80_s": self.time_to_80, "time_to_95_s": self.time_to_95}

    def time_to_power(self, target: float) -> float:
        """The time to detect in a share ``target`` of runs: 0.8 or 0.95, the two the plan measures."""
        if target not in (0.8, 0.95):  # any other share silently answered with the 95% time
            raise ConfigError(f"`target` must be 0.8 or 0.95 (the shares the plan measures), got {target:g}")
        return self.time_to_80 if target == 0.8 else self.time_to_95


@dataclass(frozen=True)
class PlanResult:
    """Detection power per cell, the false-alarm rate per share, and the smallest designs that reach power."""

    rps: float
    baseline_rate: float
    max_duration: float
    alpha: float
    runs: int
    seed: int
    cells: tuple[PlanCell, ...]
    false_alarm: dict[float, float] = field(default_factory=dict)
    min_events: int = 0

    def smallest(self, effect: float, power: float) -> PlanCell | None:
        """The smallest traffic share whose power within max duration reaches ``power`` for ``effect``."""
        fit = [c for c in self.cells if c.effect == effect and c.power >= power]
        return min(fit, key=lambda c: c.traffic) if fit else None

    def to_dict(self) -> dict[str, Any]:
        effects = sorted({c.effect for c in self.cells})
        smallest = {}
        for effect in effects:
            row = {}
            for target, key in ((0.8, "power_80"), (0.95, "power_95")):
                cell = self.smallest(effect, target)
                row[key] = None if cell is None else {
                    "traffic": cell.traffic, "duration_s": cell.time_to_power(target)}
            smallest[str(effect)] = row
        return {"rps": self.rps, "baseline_rate": self.baseline_rate, "max_duration_s": self.max_duration,
                "alpha": self.alpha, "runs": self.runs, "seed": self.seed, "min_events": self.min_events,
                "cells": [c.to_dict() for c in self.cells],
                "false_alarm": [{"traffic": t, "rate": r, "ci_upper": binomial_upper(r, self.runs)}
                                for t, r in self.false_alarm.items()],
                "smallest": smallest}

    def __rich__(self) -> Any:
        from mlplat.cli.canary import render_plan

        return render_plan(self)


def binomial_interval(rate: float, runs: int, level: float = 0.95) -> ConfidenceInterval:
    """Two-sided Clopper-Pearson interval of a rate seen in ``runs`` trials (scipy's exact interval).

    Parameters
    ----------
    rate : float
        The share of successes seen, in [0, 1]; ``rate * runs`` is rounded to a whole count.
    runs : int
        Number of trials (at least 1).
    level : float
        Confidence level, in (0, 1) (default 0.95).

    Returns
    -------
    ConfidenceInterval
        ``(low, high)``, floats in [0, 1].

    Raises
    ------
    ConfigError
        If ``level`` is not in (0, 1).

    References
    ----------
    C. J. Clopper and E. S. Pearson (1934). The use of confidence or fiducial limits illustrated in the case
    of the binomial. Biometrika 26(4).

    Examples
    --------
    >>> [round(x, 4) for x in binomial_interval(0.556, 500)]
    [0.5112, 0.6001]
    >>> low, high = binomial_interval(0.0, 100)
    >>> low, round(high, 4)
    (0.0, 0.0362)
    """
    from scipy.stats import binomtest

    check_level(level, "level")
    ci = binomtest(round(rate * runs), runs).proportion_ci(confidence_level=level, method="exact")
    return ConfidenceInterval(float(ci.low), float(ci.high))


def binomial_upper(rate: float, runs: int, level: float = 0.95) -> float:
    """One-sided Clopper-Pearson upper confidence bound of a rate seen in ``runs`` trials.

    Parameters
    ----------
    rate : float
        The share of successes seen, in [0, 1]; ``rate * runs`` is rounded to a whole count.
    runs : int
        Number of trials.
    level : float
        Confidence level, in (0, 1) (default 0.95).

    Returns
    -------
    float
        The ``level`` quantile of Beta(k + 1, runs - k), ``k`` the count; 1.0 when every trial succeeded.

    Raises
    ------
    ConfigError
        If ``level`` is not in (0, 1).

    References
    ----------
    C. J. Clopper and E. S. Pearson (1934). The use of confidence or fiducial limits illustrated in the case
    of the binomial. Biometrika 26(4).

    Examples
    --------
    >>> round(binomial_upper(0.0, 2000), 5)
    0.0015
    >>> binomial_upper(1.0, 10)
    1.0
    """
    from scipy.stats import beta

    check_level(level, "level")
    k = round(rate * runs)
    return 1.0 if k >= runs else float(beta.ppf(level, k + 1, runs - k))


def cell_rng(seed: int, *keys: float) -> np.random.Generator:
    """The generator of one simulated cell, keyed by ``seed`` and the cell's own values (share, effect).

    A cell draws the same numbers whatever grid it sits in: spawning streams in grid order would give a
    cell the stream of its position, so adding a share to ``--traffic`` (or a stage) changed the others.

    >>> float(cell_rng(1, 0.05, 2.0).random()) == float(cell_rng(1, 0.05, 2.0).random())
    True
    """
    import numpy as np

    # A float's exact bits, so 0.05 and 0.05000000000000001 are different keys and no two values collide.
    words = [seed, *(int(np.float64(key).view(np.uint64)) for key in keys)]
    return np.random.default_rng(np.random.SeedSequence(words))


def plan(
    *,
    rps: float,
    baseline_rate: float,
    traffic: Sequence[float],
    effects: Sequence[float],
    max_duration: float = 3600.0,
    interval: float = 60.0,
    alpha: float = 0.05,
    tolerance: float = 0.0,
    concentration: float = 20.0,
    runs: int = 2000,
    seed: int = 0,
    min_events: int = 10,
) -> PlanResult:
    """Power and time to detect on a grid of traffic shares and effects, plus the A/A false-alarm rate.

    Every cell has its own generator, keyed by ``seed``, its share and its effect (:func:`cell_rng`), so a
    cell's result does not depend on the grid around it. ``min_events`` is the rate metric's (the config's
    default, 10): the gate decides only once that many bad events are in, in both arms together.

    Parameters
    ----------
    rps : float
        Requests per second over both arms.
    baseline_rate : float
        Baseline error rate per request, in (0, 1).
    traffic : sequence of float
        Canary shares of requests to try, each in (0, 1).
    effects : sequence of float
        Canary error rate over the baseline's, to try; each must be above ``1 + tolerance``.
    max_duration, interval : float
        Longest dwell simulated and seconds between looks (defaults 3600 and 60).
    alpha, tolerance, concentration : float
        The gate, as in :func:`simulate_detection` (defaults 0.05, 0 and 20).
    runs : int
        Monte Carlo runs per cell (default 2000).
    seed : int
        Root seed of every cell's generator (default 0).
    min_events : int
        Bad events (both arms) before the gate may decide (default 10).

    Returns
    -------
    PlanResult
        One :class:`PlanCell` per share and effect (in the order given): power within ``max_duration``
        with its 95% Clopper-Pearson interval, the median time to detect and the times to 80% and 95%
        power (seconds; ``inf`` where not reached). ``false_alarm`` maps each share to the A/A
        (effect 1) rate of roll-backs.

    Raises
    ------
    SimulationError
        If an effect is at most ``1 + tolerance``, or :func:`simulate_detection` refuses the inputs.
    ConfigError
        If ``alpha`` is not in (0, 1).

    References
    ----------
    M. Lindon and A. Malek (2022). Anytime-valid inference for multinomial count data. NeurIPS 2022.
    C. J. Clopper and E. S. Pearson (1934). The use of confidence or fiducial limits illustrated in the case
    of the binomial. Biometrika 26(4).

    Examples
    --------
    >>> res = plan(rps=278, baseline_rate=0.001, traffic=[0.05], effects=[3], runs=100, seed=1)
    >>> res.cells[0].power > 0.8
    True
    """

    accepted = [e for e in effects if e <= 1 + tolerance]
    if accepted:
        raise SimulationError(f"--effect {accepted[0]:g}x is within --tolerance {tolerance:g} (ratios up to "
                              f"{1 + tolerance:g} are acceptable), so the gate is meant not to detect it; give "
                              f"effects above {1 + tolerance:g}x (the A/A line reports the false alarms at 1x)")
    cells = []
    false_alarm = {}
    common: dict[str, Any] = {
        "rps": rps, "baseline_rate": baseline_rate, "duration": max_duration, "interval": interval, "alpha": alpha,
        "tolerance": tolerance, "concentration": concentration, "runs": runs, "min_events": min_events}
    for share in traffic:
        null = simulate_detection(traffic=share, effect=1.0, rng=cell_rng(seed, share, 1.0), **common)
        false_alarm[share] = null.power()
        for effect in effects:
            sim = simulate_detection(traffic=share, effect=effect, rng=cell_rng(seed, share, effect), **common)
            cells.append(PlanCell(traffic=share, effect=effect, power=sim.power(), median_time=sim.median_time(),
                                  time_to_80=sim.time_to_power(0.8), time_to_95=sim.time_to_power(0.95),
                                  power_ci=binomial_interval(sim.power(), runs)))
    return PlanResult(rps=rps, baseline_rate=baseline_rate, max_duration=max_duration, alpha=alpha, runs=runs,
                      seed=seed, cells=tuple(cells), false_alarm=false_alarm, min_events=min_events)
