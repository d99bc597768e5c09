"""Result objects of ``mlplat sim``: estimates with confidence intervals, per platform and per sweep."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

COST_PARTS = ("compute", "requests", "provisioned_idle", "nodes", "gpu", "control_plane")
LATENCY_KEYS = ("p50", "p95", "p99", "p999")
# A replication that measures fewer requests than this has a p99 that is about its slowest request.
FEW_REQUESTS = 100


def _few_requests(requests: float) -> bool:
    return math.isfinite(requests) and requests < FEW_REQUESTS


@dataclass(frozen=True)
class Estimate:
    """Mean over replications with a two-sided 95% Student-t confidence interval ``(low, high)``."""

    mean: float
    low: float
    high: float
    n: int

    @classmethod
    def of(cls, values: Sequence[float], level: float = 0.95) -> Estimate:
        """The estimate from one value per replication (NaN bounds with fewer than two).

        >>> Estimate.of([1.0, 2.0, 3.0]).mean
        2.0
        """
        x = np.asarray(values, dtype=float)
        x = x[np.isfinite(x)]
        if len(x) == 0:
            return cls(math.nan, math.nan, math.nan, 0)
        mean = float(x.mean())
        if len(x) < 2:
            return cls(mean, math.nan, math.nan, len(x))
        from scipy import stats

        half = float(stats.t.ppf(0.5 + level / 2, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x)))
        return cls(mean, mean - half, mean + half, len(x))

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high

    def to_dict(self) -> dict[str, Any]:
        return {"mean": self.mean, "low": self.low, "high": self.high}


@dataclass(frozen=True)
class PlatformResult:
    """Everything measured for one platform, each metric an :class:`Estimate` over replications."""

    name: str
    kind: str
    metrics: dict[str, Estimate]
    slo_met: bool
    notes: tuple[str, ...] = ()
    slo_unsure: bool = False
    """A 95% CI behind the verdict (p99, throttled share) spans the SLO's bound: more replications decide it."""

    def __getitem__(self, key: str) -> float:
        return self.metrics[key].mean

    def to_dict(self) -> dict[str, Any]:
        m = self.metrics
        return {
            "name": self.name,
            "kind": self.kind,
            "requests": m["requests"].mean,
            "cold_starts": m["cold_starts"].mean,
            "cold_start_fraction": m["cold_start_fraction"].mean,
            "rejections": m["rejections"].mean,
            "rejection_fraction": m["rejection_fraction"].mean,
            "latency_ms": {k: m[k].mean for k in LATENCY_KEYS},
            "mean_instances": m["mean_instances"].mean,
            "peak_instances": m["peak_instances"].mean,
            "mean_nodes": m["mean_nodes"].mean,
            "peak_nodes": m["peak_nodes"].mean,
            "mean_busy": m["mean_busy"].mean,
            "utilization": m["utilization"].mean,
            "wait_probability": m["wait_probability"].mean,
            "mean_wait_s": m["mean_wait_s"].mean,
            "backlog_fraction": m["backlog_fraction"].mean,
            "at_max_size": m["at_max_size"].mean,  # the share of replications whose pool reached its largest size
            "cost_per_month": m["cost_per_month"].mean,
            "cost_per_million": m["cost_per_million"].mean,
            "cost_breakdown": {k: m[f"cost_{k}"].mean for k in COST_PARTS},
            "usage": {k[len("usage_"):]: v.mean for k, v in m.items() if k.startswith("usage_")},
            "slo_met": self.slo_met,
            "slo_unsure": self.slo_unsure,
            "ci": {k: [v.low, v.high] for k, v in m.items()},
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class SimulationResult:
    """The outcome of :func:`mlplat.sim.simulate`: one :class:`PlatformResult` per platform."""

    platforms: tuple[PlatformResult, ...]
    replications: int
    seed: int
    duration_s: float
    warmup_s: float
    mean_rate: float
    workload: str
    slo_p99_ms: float
    pricing: str
    elapsed_s: float = 0.0
    simulated_requests: int = 0
    # Each platform's cost per month in each replication (the same arrivals for all, in one replication).
    replication_costs: dict[str, tuple[float, ...]] = field(default_factory=dict)

    def platform(self, name: str) -> PlatformResult:
        for p in self.platforms:
            if p.name == name:
                return p
        raise KeyError(name)

    @property
    def warnings(self) -> list[str]:
        """Said when each replication measured too few requests for its p99 to be more than a maximum."""
        requests = self.platforms[0]["requests"] if self.platforms else math.nan  # the same arrivals for all
        if not _few_requests(requests):
            return []
        if round(requests) == 0:
            return ["no replication measured a request (the window after warm-up saw none): lengthen `duration` "
                    "or raise the rate"]
        return [f"each replication measured about {requests:.0f} requests, so its p99 is about the slowest of "
                f"them (a p99 wants {FEW_REQUESTS}): lengthen `duration` or raise the rate"]

    def to_dict(self) -> dict[str, Any]:
        return {
            "scenario": {"workload": self.workload, "mean_rate_per_s": self.mean_rate, "duration_s": self.duration_s,
                         "warmup_s": self.warmup_s, "replications": self.replications, "seed": self.seed,
                         "slo_p99_ms": self.slo_p99_ms, "pricing": self.pricing},
            "platforms": [p.to_dict() for p in self.platforms],
            "cheapest_meeting_slo": self.cheapest(),
            "cheapest_margin": None if (margin := self.cheapest_margin()) is None else margin.to_dict(),
            "elapsed_s": self.elapsed_s,
            "simulated_requests": self.simulated_requests,
            "warnings": self.warnings,
        }

    def __rich__(self) -> Any:
        # The tables are drawn by the CLI (library code does not import rich); rich calls this only when
        # it prints the result, so rich is already loaded then.
        from mlplat.cli.sim import render_result

        return render_result(self)

    def meeting_slo(self) -> list[PlatformResult]:
        """The platforms that meet the SLO, cheapest first (a tie keeps the file's order)."""
        return sorted((p for p in self.platforms if p.slo_met), key=lambda p: p["cost_per_month"])

    def cheapest(self) -> str | None:
        """Name of the cheapest platform that meets the SLO, or None."""
        ok = self.meeting_slo()
        return ok[0].name if ok else None

    def cheapest_margin(self) -> Margin | None:
        """How much less the cheapest platform meeting the SLO costs per month than the next one that does.

        The difference is taken replication by replication: every platform sees the same arrivals and
        service times in a replication (common random numbers), so the paired interval is far narrower
        than the two platforms' own intervals side by side. None without two such platforms.
        """
        ok = self.meeting_slo()
        if len(ok) < 2 or not all(p.name in self.replication_costs for p in ok[:2]):
            return None
        best, runner_up = ok[0].name, ok[1].name
        diffs = np.subtract(self.replication_costs[runner_up], self.replication_costs[best])
        return Margin(best, runner_up, Estimate.of(diffs.tolist()))


@dataclass(frozen=True)
class Margin:
    """The cheapest platform meeting the SLO against the next: runner-up minus cheapest, per month."""

    cheapest: str
    runner_up: str
    saving: Estimate

    @property
    def sure(self) -> bool:
        """The paired 95% CI of the saving lies above 0 (with one replication there is no CI: not sure)."""
        return math.isfinite(self.saving.low) and self.saving.low > 0

    def to_dict(self) -> dict[str, Any]:
        return {"cheapest": self.cheapest, "runner_up": self.runner_up, "saving_per_month": self.saving.to_dict(),
                "sure": self.sure}


@dataclass(frozen=True)
class BreakEven:
    """A rate at which two platforms cost the same per month (interpolated between sweep points)."""

    rate: float
    cheaper_below: str
    cheaper_above: str

    def to_dict(self) -> dict[str, Any]:
        return {"rate_per_s": self.rate, "cheaper_below": self.cheaper_below, "cheaper_above": self.cheaper_above}


@dataclass(frozen=True)
class SweepResult:
    """Cost per month and p99 of each platform against the mean arrival rate."""

    rates: tuple[float, ...]
    names: tuple[str, ...]
    cost_per_month: dict[str, tuple[float, ...]]
    p99_ms: dict[str, tuple[float, ...]]
    slo_met: dict[str, tuple[bool, ...]]
    slo_p99_ms: float
    break_even: tuple[BreakEven, ...] = field(default=())
    requests: tuple[float, ...] = ()  # measured requests per replication at each rate
    slo_unsure: dict[str, tuple[bool, ...]] = field(default_factory=dict)  # PlatformResult.slo_unsure per rate
    margins: tuple[Margin | None, ...] = ()  # SimulationResult.cheapest_margin() per rate

    @property
    def warnings(self) -> list[str]:
        """Names the rates whose replications measured too few requests for a p99."""
        few = [(rate, n) for rate, n in zip(self.rates, self.requests, strict=False) if _few_requests(n)]
        if not few:
            return []
        rates = ", ".join(f"{rate:.3g}" for rate, _ in few)
        fewest = min(n for _, n in few)
        return [f"at {rates} req/s each replication measured under {FEW_REQUESTS} requests (about {fewest:.0f} at "
                "the fewest), so those p99s are about the slowest request of each: pass --duration, or sweep "
                "the low rates on their own"]

    def __rich__(self) -> Any:
        from mlplat.cli.sim import render_sweep

        return render_sweep(self)

    def cheapest(self) -> list[str | None]:
        """At each rate, the cheapest platform meeting the SLO (None if none does)."""
        out: list[str | None] = []
        for i in range(len(self.rates)):
            ok = [n for n in self.names if self.slo_met[n][i]]
            out.append(min(ok, key=lambda n: self.cost_per_month[n][i]) if ok else None)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "rates_per_s": list(self.rates),
            "slo_p99_ms": self.slo_p99_ms,
            "platforms": [{"name": n, "cost_per_month": list(self.cost_per_month[n]), "p99_ms": list(self.p99_ms[n]),
                           "slo_met": list(self.slo_met[n]), "slo_unsure": list(self.slo_unsure.get(n, ()))}
                          for n in self.names],
            "break_even": [b.to_dict() for b in self.break_even],
            "cheapest_meeting_slo": self.cheapest(),
            "cheapest_margin": [None if m is None else m.to_dict() for m in self.margins],
            "requests": list(self.requests),
            "warnings": self.warnings,
        }


def break_evens(rates: Sequence[float], names: Sequence[str],
                costs: Mapping[str, Sequence[float]]) -> list[BreakEven]:
    """Crossings of each pair of cost curves, interpolated linearly in log(rate) and log(cost)."""
    out: list[BreakEven] = []
    logr = np.log(np.asarray(rates))
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            ca, cb = np.asarray(costs[a], dtype=float), np.asarray(costs[b], dtype=float)
            with np.errstate(divide="ignore", invalid="ignore"):
                diff = np.log(np.maximum(ca, 1e-12)) - np.log(np.maximum(cb, 1e-12))
            for k in range(len(rates) - 1):
                d0, d1 = diff[k], diff[k + 1]
                if np.isfinite(d0) and np.isfinite(d1) and d0 * d1 < 0:
                    frac = d0 / (d0 - d1)
                    rate = float(np.exp(logr[k] + frac * (logr[k + 1] - logr[k])))
                    below, above = (a, b) if d0 < 0 else (b, a)
                    out.append(BreakEven(rate, below, above))
    return sorted(out, key=lambda b: b.rate)
