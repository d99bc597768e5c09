"""`mlplat sim`: serverless functions vs Kubernetes for model serving, simulated with the bill."""

from __future__ import annotations

import json as jsonlib
import math
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Group
from rich.markup import escape
from rich.text import Text

from mlplat.cli._output import JsonOption, Output, make_table, parse_option
from mlplat.errors import ConfigError
from mlplat.files import atomic_write_text, read_template
from mlplat.plots import check_plot
from mlplat.units import format_duration, parse_duration, parse_rate

if TYPE_CHECKING:
    from mlplat.sim import Estimate, PlatformResult, Prepared, SimulationResult, SweepResult

app = typer.Typer(help="Serverless functions or Kubernetes for a model: latency with cold starts, and the bill.",
                  no_args_is_help=True)

MAX_SWEEP_REQUESTS = 2_000_000
MIN_SWEEP_SECONDS = 600.0  # a shortened sweep keeps at least this much simulated time per rate
ScenarioArg = Annotated[Path, typer.Argument(help="Scenario YAML (mlplat sim init writes one).")]
Replications = Annotated[int | None, typer.Option("--replications", "-r", min=1, max=1000,
                                                   help="Override the scenario's (1 to 1000, as in the file).")]
Seed = Annotated[int, typer.Option("--seed", min=0, help="Root seed (>= 0); replication seeds are spawned from it.")]
Jobs = Annotated[int, typer.Option("--jobs", "-j", min=1, help="Worker processes for the replications.")]
PlotOpt = Annotated[Path | None, typer.Option("--plot", help="Write a plot here (.png, .svg or .pdf).")]
Force = Annotated[bool, typer.Option("--force", help="Overwrite existing output files.")]
PricingOpt = Annotated[Path | None, typer.Option("--pricing", help="Pricing YAML laid over the defaults.")]
FreeTier = Annotated[bool, typer.Option("--free-tier", help="Subtract the monthly free tiers.")]


def _money(value: float) -> str:
    if not math.isfinite(value):
        return "-"
    sign = "-" if value < 0 else ""
    return f"{sign}${abs(value):,.0f}" if abs(value) >= 100 else f"{sign}${abs(value):,.2f}"


def _ms(value: float) -> str:
    return "-" if not math.isfinite(value) else (f"{value:,.0f}" if value >= 100 else f"{value:.1f}")


def _share(value: float) -> str:
    """A fraction of requests: two decimals of a percent, or two significant figures below 0.01% (a cold
    start in 100,000 read 0.00%); "-" for NaN (no request measured)."""
    if not math.isfinite(value):
        return "-"
    return f"{value:.2%}" if value >= 1e-4 or value == 0 else f"{value * 100:.2g}%"


def _pm(est: Estimate, fmt: Callable[[float], str]) -> str:
    text = fmt(est.mean)
    if math.isfinite(est.low) and math.isfinite(est.high) and est.high > est.low:
        text += f" ±{fmt((est.high - est.low) / 2).lstrip('$')}"
    return text


def _slo_cell(platform: PlatformResult) -> str | Text:
    """yes or no; with ? when a CI behind the verdict spans the SLO; - when no request was measured.

    A platform that refused every measured request has no p99 either, but it misses the SLO: no.
    """
    if not platform.metrics["requests"].mean > 0:
        return "-"
    if platform.slo_unsure:
        return Text("yes?" if platform.slo_met else "no?", style="yellow")
    return Text("yes", style="green") if platform.slo_met else Text("no", style="red")


def render_result(result: SimulationResult) -> Group:
    """Tables of one simulation: latency and SLO, capacity and cost, cost by part; the cheapest platform."""
    from mlplat.sim._results import COST_PARTS

    latency, capacity = [], []
    for p in result.platforms:
        m = p.metrics
        latency.append([p.name, f"{m['requests'].mean:,.0f}", _share(m["cold_start_fraction"].mean),
                        _share(m["rejection_fraction"].mean), _ms(m["p50"].mean), _ms(m["p95"].mean),
                        _pm(m["p99"], _ms), _ms(m["p999"].mean), _slo_cell(p)])
        capacity.append([p.name, p.kind, f"{m['mean_instances'].mean:.1f} ({m['peak_instances'].mean:.0f})",
                         f"{m['mean_nodes'].mean:.1f}" if m["mean_nodes"].mean else "-",
                         f"{m['utilization'].mean:.0%}", _pm(m["cost_per_month"], _money),
                         _money(m["cost_per_million"].mean)])
    title = (f"{result.workload} workload, mean {result.mean_rate:.3g} req/s, {result.replications} x "
             f"{result.duration_s / 3600:.3g} h; SLO p99 <= {result.slo_p99_ms:g} ms; ± is the 95% CI half-width; "
             "?: the CI spans the SLO")
    table = make_table(title, ["platform", "requests", "cold", "throttled", "p50 ms", "p95 ms", "p99 ms",
                               "p99.9 ms", "SLO"], latency, numeric=range(1, 8))
    sizes = make_table("Capacity and cost", ["platform", "kind", "instances (peak)", "nodes", "util",
                                             "per month", "per 1M req"], capacity, numeric=range(2, 7))
    parts = [c for c in COST_PARTS if any(p[f"cost_{c}"] for p in result.platforms)]
    costs = make_table("Cost per month by part", ["platform", *parts, "total"],
                       [[p.name, *(_money(p[f"cost_{c}"]) for c in parts), _money(p["cost_per_month"])]
                        for p in result.platforms], numeric=range(1, len(parts) + 2))
    best = result.cheapest()
    measured = any(p.metrics["requests"].mean > 0 for p in result.platforms)
    unsure = " (unsure: see its note)" if best and result.platform(best).slo_unsure else ""
    verdict = Text.from_markup(f"cheapest meeting the SLO: [bold]{escape(best)}[/bold]{unsure}{_margin_text(result)}"
                               if best
                               else "[yellow]no platform meets the SLO[/yellow]" if measured
                               else "[yellow]no request was measured, so no platform can be held to the SLO"
                                    "[/yellow]")
    notes = [Text(f"{p.name}: {note}", style="yellow") for p in result.platforms for note in p.notes]
    return Group(table, sizes, costs, verdict, *notes)


def _margin_text(result: SimulationResult) -> str:
    """How much the cheapest saves over the runner-up, paired over replications; or that it may not."""
    margin = result.cheapest_margin()
    if margin is None:
        return ""
    s = margin.saving
    if not math.isfinite(s.low):
        return f", {_money(s.mean)}/month less than {escape(margin.runner_up)} (one replication: no interval)"
    interval = f"paired 95% CI {_money(s.low)} to {_money(s.high)} over {s.n} replications"
    if margin.sure:
        return f", {_money(s.mean)}/month less than {escape(margin.runner_up)} ({interval})"
    return (f"; [yellow]not surely cheaper than {escape(margin.runner_up)}[/yellow]: it saves {_money(s.mean)}/month "
            f"on average, {interval}")


def render_sweep(sweep: SweepResult) -> Group:
    """The rate sweep as a table, and the break-even rates."""
    cheapest = sweep.cheapest()
    rows = []
    for i, rate in enumerate(sweep.rates):
        cells = [f"{rate:.3g}"]
        for name in sweep.names:
            mark = ""
            measured = sweep.requests[i] > 0 if i < len(sweep.requests) else math.isfinite(sweep.p99_ms[name][i])
            if measured:  # else nothing to hold to the SLO (a platform that refused every request misses it)
                unsure = sweep.slo_unsure.get(name, ())
                flags = ("" if sweep.slo_met[name][i] else "✗") + ("?" if i < len(unsure) and unsure[i] else "")
                mark = f" {flags}" if flags else ""
            cells.append(f"{_money(sweep.cost_per_month[name][i])} / {_ms(sweep.p99_ms[name][i])}{mark}")
        margin = sweep.margins[i] if i < len(sweep.margins) else None
        doubt = f" (not surely cheaper than {margin.runner_up})" if margin is not None and not margin.sure else ""
        cells.append(f"{cheapest[i]}{doubt}" if cheapest[i] else "-")
        rows.append(cells)
    table = make_table("Cost per month / p99 ms against mean rate (✗: misses the SLO; ?: a 95% CI spans it)",
                       ["rate /s", *sweep.names, "cheapest meeting SLO"], rows, numeric=range(0, len(sweep.names) + 1))
    lines = [f"break-even at {b.rate:.3g} req/s: {b.cheaper_below} cheaper below, {b.cheaper_above} above"
             for b in sweep.break_even] or ["no break-even inside the swept range"]
    return Group(table, Text("\n".join(lines)))


def _show(out: Output, result: SimulationResult | SweepResult, plot: Path | None, force: bool) -> None:
    """Write the plot if asked, then print JSON or the tables."""
    from mlplat.sim import SimulationResult
    from mlplat.sim._plot import plot_result, plot_sweep

    if plot is not None:
        written = (plot_result(result, plot, force=force) if isinstance(result, SimulationResult)
                   else plot_sweep(result, plot, force=force))
        out.note(f"plot written to {written}")
    out.result(result)
    for warning in result.warnings:
        out.warn(warning)


def _load(scenario: Path, pricing: Path | None, free_tier: bool) -> Prepared:
    from mlplat.sim import load

    prepared = load(scenario, pricing=pricing)
    if free_tier:
        prepared = replace(prepared, scenario=prepared.scenario.model_copy(update={"free_tier": True}))
    return prepared


@app.command("run")
def run(ctx: typer.Context, scenario: ScenarioArg, replications: Replications = None, seed: Seed = 0,
        jobs: Jobs = 1, plot: PlotOpt = None, force: Force = False, pricing: PricingOpt = None,
        free_tier: FreeTier = False, json: JsonOption = False) -> None:
    """Simulate every platform of the scenario; latency, cold starts, instances and cost per month."""
    from mlplat.sim import simulate

    out = Output.from_ctx(ctx, json=json)
    if plot is not None:
        check_plot(plot, force=force)  # before the minutes of simulating, not after
    prepared = _load(scenario, pricing, free_tier)
    reps = replications or prepared.scenario.replications
    with out.progress("replications", total=reps) as advance:
        result = simulate(prepared, replications=reps, seed=seed, jobs=jobs, progress=advance)
    _show(out, result, plot, force)


def parse_rates(text: str) -> tuple[float, float]:
    """``"0.01/s..1000/s"`` as ``(0.01, 1000.0)``; both positive and increasing."""
    lo_text, sep, hi_text = text.partition("..")
    try:
        if not sep:
            raise ValueError(f"expected a range such as '0.01/s..1000/s', got {text!r}")
        lo, hi = parse_rate(lo_text), parse_rate(hi_text)
    except ValueError as exc:
        raise ConfigError(f"--rates: {exc}") from None
    if lo <= 0 or hi <= lo:
        raise ConfigError(f"--rates: expected 0 < low < high, got {text!r}")
    return lo, hi


@app.command("compare")
def compare(ctx: typer.Context, scenario: ScenarioArg,
            rates: Annotated[str, typer.Option("--rates", help="Mean-rate range, log-spaced.")] = "0.01/s..1000/s",
            points: Annotated[int, typer.Option("--points", min=2, max=200,
                                                help="Rates in the sweep, log-spaced (2 to 200).")] = 13,
            duration: Annotated[str | None, typer.Option("--duration", help="Override the simulated time.")] = None,
            replications: Replications = None, seed: Seed = 0, jobs: Jobs = 1, plot: PlotOpt = None,
            force: Force = False, pricing: PricingOpt = None, free_tier: FreeTier = False,
            json: JsonOption = False) -> None:
    """Sweep the mean rate: cost per month and p99 per platform, break-even rates, cheapest within the SLO."""
    import numpy as np

    from mlplat.sim import sweep

    out = Output.from_ctx(ctx, json=json)
    if plot is not None:
        check_plot(plot, force=force)  # before the minutes of simulating, not after
    lo, hi = parse_rates(rates)
    prepared = _load(scenario, pricing, free_tier)
    seconds = prepared.scenario.duration
    if duration is not None:
        seconds = parse_option("--duration", parse_duration, duration, error=ConfigError)
        if not seconds > 0:
            raise ConfigError(f"--duration must be > 0, got {duration!r}")
    elif hi * seconds > MAX_SWEEP_REQUESTS and seconds > MIN_SWEEP_SECONDS:
        # The event loop runs ~200,000 requests/s: keep the top rate's replication to seconds, not hours. Never
        # below 10 minutes (the low rates need requests), and so never for a scenario that short: lengthening it
        # would simulate more, not less.
        seconds = max(MAX_SWEEP_REQUESTS / hi, MIN_SWEEP_SECONDS)
        why = (f"to keep {hi:g}/s under {MAX_SWEEP_REQUESTS:,.0f} requests" if hi * seconds <= MAX_SWEEP_REQUESTS
               else f"the shortest a sweep is cut to; {hi:g}/s still simulates about {hi * seconds:,.0f} requests")
        out.warn(f"simulating {format_duration(seconds)} per rate (not {format_duration(prepared.scenario.duration)}),"
                 f" {why}; pass --duration to choose")
    if seconds != prepared.scenario.duration:
        warmup = min(prepared.scenario.warmup, seconds / 10)
        if warmup < prepared.scenario.warmup:  # said, as it moves more of the ramp-up into what is measured
            out.warn(f"warm-up {format_duration(prepared.scenario.warmup)} cut to {format_duration(warmup)}, a "
                     f"tenth of the {format_duration(seconds)} simulated per rate")
        update = {"duration": seconds, "warmup": warmup}
        prepared = replace(prepared, scenario=prepared.scenario.model_copy(update=update))
    grid = np.geomspace(lo, hi, points)
    with out.progress("rates", total=points) as advance:
        result = sweep(prepared, grid, replications=replications, seed=seed, jobs=jobs, progress=advance)
    _show(out, result, plot, force)


@app.command("pricing")
def pricing_cmd(ctx: typer.Context, pricing: PricingOpt = None, json: JsonOption = False) -> None:
    """The price table in use: every price with its as-of date and source."""
    from mlplat.sim import load_pricing

    out = Output.from_ctx(ctx, json=json)
    table = load_pricing(pricing or "default")
    if out.json:
        out.result(table)
        return
    rows = [[name, f"{p.usd:.10g}", p.unit, str(p.as_of), p.source] for name, p in table.table.rows()]
    out.print(make_table(f"Prices in USD ({table.origin})", ["price", "USD", "per", "as of", "source"], rows,
                         numeric=[1]))


@app.command("init")
def init(ctx: typer.Context, path: Annotated[Path, typer.Argument(help="Where to write.")] = Path("scenario.yaml"),
         force: Force = False, json: JsonOption = False) -> None:
    """Write a commented scenario template."""
    written = atomic_write_text(path, read_template("sim.yaml"), force=force)
    Output.from_ctx(ctx, json=json).wrote(written, f"; edit it, then: mlplat sim run {written}")


@app.command("validate")
def validate(ctx: typer.Context, scenario: ScenarioArg, pricing: PricingOpt = None, json: JsonOption = False) -> None:
    """Check a scenario (schema, prices, node types, trace file, size) without simulating."""
    out = Output.from_ctx(ctx, json=json)
    prepared = _load(scenario, pricing, False)
    names = [p.name for p in prepared.scenario.platforms]
    if out.json:
        out.result({"valid": True, "platforms": names, "pricing": prepared.pricing.origin})
    else:
        out.print(f"{scenario}: valid; platforms: {', '.join(names)}; pricing: {prepared.pricing.origin}")


@app.command("schema")
def schema() -> None:
    """Print the JSON Schema of the scenario file."""
    from mlplat.sim import Scenario

    typer.echo(jsonlib.dumps(Scenario.config_schema(), indent=2))
