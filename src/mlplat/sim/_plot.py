"""Plots for ``--plot``: latency and cost per platform, and cost / p99 against rate with crossovers."""

from __future__ import annotations

from pathlib import Path

from mlplat.plots import pyplot, save_figure
from mlplat.sim._results import SimulationResult, SweepResult


def plot_result(result: SimulationResult, path: str | Path, *, force: bool = False) -> Path:
    """Bar charts of p99 latency (with the SLO) and cost per month (stacked by part) per platform."""
    plt = pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    names = [p.name for p in result.platforms]
    p99 = [p["p99"] for p in result.platforms]
    left.bar(names, p99, color=["tab:green" if p.slo_met else "tab:red" for p in result.platforms])
    left.axhline(result.slo_p99_ms, color="black", linestyle="--", label=f"SLO {result.slo_p99_ms:g} ms")
    left.set_ylabel("p99 latency (ms)")
    left.set_yscale("log")
    left.legend()
    bottom = [0.0] * len(names)
    from mlplat.sim._results import COST_PARTS

    for part in COST_PARTS:
        values = [p[f"cost_{part}"] for p in result.platforms]
        if any(values):
            right.bar(names, values, bottom=bottom, label=part)
            bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    right.set_ylabel("USD per month")
    right.legend()
    fig.suptitle(f"{result.workload} workload, mean {result.mean_rate:.3g} req/s")
    return save_figure(fig, path, force=force, dpi=120, tight=True)


def plot_sweep(sweep: SweepResult, path: str | Path, *, force: bool = False) -> Path:
    """Cost per month and p99 against the mean rate, log-log, break-even rates marked."""
    plt = pyplot()
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 8), sharex=True)
    for name in sweep.names:
        top.plot(sweep.rates, sweep.cost_per_month[name], marker="o", label=name)
        bottom.plot(sweep.rates, sweep.p99_ms[name], marker="o", label=name)
    for b in sweep.break_even:
        top.axvline(b.rate, color="grey", linestyle=":", linewidth=1)
        top.annotate(f"{b.rate:.3g}/s", (b.rate, top.get_ylim()[1]), rotation=90, va="top", fontsize=7)
    bottom.axhline(sweep.slo_p99_ms, color="black", linestyle="--", label="SLO")
    for axis in (top, bottom):
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.grid(True, which="both", alpha=0.3)
    top.set_ylabel("USD per month")
    bottom.set_ylabel("p99 latency (ms)")
    bottom.set_xlabel("mean arrival rate (requests/s)")
    top.legend()
    return save_figure(fig, path, force=force, dpi=120, tight=True)
