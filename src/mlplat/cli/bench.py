"""`mlplat bench`: what dynamic batching buys on this device, policy by policy, under the same load."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Group
from rich.text import Text

from mlplat.cli._output import JsonOption, Output, make_table, parse_option
from mlplat.errors import ConfigError
from mlplat.plots import check_plot
from mlplat.units import parse_duration, parse_rate

if TYPE_CHECKING:
    from rich.table import Table

    from mlplat.batcher import BenchResult, PolicyResult

__all__ = ["bench", "render"]


def _ms(value: float) -> str:
    if not math.isfinite(value):
        return "-"
    return f"{value:.2f}" if value < 100 else f"{value:.0f}"


def _pct(value: float) -> str:
    """A share as a whole percent, but two significant figures under 1%: 8 late answers in 40,000 read
    0%, where the deadline target is none."""
    if value is None or not math.isfinite(value):
        return "-"
    return f"{value * 100:.2g}%" if 0 < value < 0.01 else f"{value * 100:.0f}%"


def _num(value: float) -> str:
    return f"{value:.1f}" if math.isfinite(value) else "-"


def _k(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "-"
    if value >= 10_000:
        return f"{value / 1000:.1f}k"
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"  # 0.5 req/s is not 0


def render(result: BenchResult) -> Group:
    """Tables for a bench result: the S(b) profile, then one row per policy (and the sweep, if any)."""
    after = "" if result.ceiling_after_rps is None else f" ({result.ceiling_after_rps:,.0f} after the runs)"
    head = Text(f"{result.model} on {result.device} ({result.dtype}); ceiling X* = {result.ceiling_rps:,.0f} "
                f"req/s at batch {result.ceiling_batch}{after}; SLO {result.slo_ms:g} ms, max latency "
                f"{result.max_latency_ms:g} ms, max batch {result.max_batch}")
    profile = make_table("predict time S(b)", ["batch", "ms", "req/s"],
                         [(p.batch, f"{p.ms:.3f}", f"{p.rps:,.0f}") for p in result.profile], numeric=(0, 1, 2))
    rate_cols = ["policy", "offered", "thruput", "goodput", "miss", "reject", "batch", "fill", "busy"]
    latency_cols = ["policy", "offered", "p50", "p90", "p99", "p99.9"]
    # A closed loop sends each request when the previous answer comes back: there is no schedule.
    since = "from sending" if result.mode == "concurrency" else "from the scheduled arrival"

    def tables(results: tuple[PolicyResult, ...], title: str) -> list[Table]:
        rates = [(p.policy, _k(p.offered_rps), _k(p.throughput_rps), _k(p.goodput_rps), _pct(p.miss_rate),
                  _pct(p.reject_rate), _num(p.mean_batch), _pct(p.fill_ratio), _pct(p.busy_fraction))
                 for p in results]
        latency = [(p.policy, _k(p.offered_rps), *(_ms(p.latency_ms[q]) for q in ("p50", "p90", "p99", "p999")))
                   for p in results]
        return [make_table(f"{title}: rates (req/s) and batching", rate_cols, rates, numeric=range(1, 9)),
                make_table(f"{title}: latency (ms, {since})", latency_cols, latency,
                           numeric=range(1, 6))]

    parts: list[object] = [head, profile]
    parts += tables(result.policies, "best point per policy" if result.sweep else "policies")
    if result.sweep:
        parts += tables(result.sweep, "sweep")
    return Group(*parts)  # type: ignore[arg-type]


def _check_choices(*, device: str, model: str, dtype: str, policies: str) -> None:
    """A value outside an option's choices is a usage error (exit 2), as for every group."""
    from mlplat.batcher._load import POLICIES
    from mlplat.batcher._models import DTYPES, MODELS

    for option, value, allowed in (("--device", device, ("auto", "cpu", "cuda")), ("--model", model, MODELS),
                                   ("--dtype", dtype, DTYPES)):
        if value not in allowed:
            raise typer.BadParameter(f"must be one of {', '.join(allowed)}, got {value!r}", param_hint=option)
    unknown = [p.strip() for p in policies.split(",") if p.strip() and p.strip() not in POLICIES]
    if unknown:
        raise typer.BadParameter(f"unknown policy {unknown[0]!r}; choose from {', '.join(POLICIES)}",
                                 param_hint="--policies")


def bench(
    ctx: typer.Context,
    device: Annotated[str, typer.Option(help="auto (CUDA when available), cpu or cuda.")] = "auto",
    model: Annotated[str, typer.Option(help="mlp or transformer.")] = "mlp",
    dtype: Annotated[str, typer.Option(help="float32, or float16/bfloat16 under autocast.")] = "float32",
    width: Annotated[int, typer.Option(help="Model input/output width.")] = 512,
    hidden: Annotated[int, typer.Option(help="MLP hidden width, or transformer feed-forward width.")] = 2048,
    layers: Annotated[int, typer.Option(help="Hidden layers (mlp) or encoder layers (transformer).")] = 1,
    seq_len: Annotated[int, typer.Option(help="Tokens per request (transformer).")] = 16,
    max_batch: Annotated[int, typer.Option(help="Largest batch.")] = 32,
    max_latency_ms: Annotated[float, typer.Option(help="Deadline after arrival; also the window timer.")] = 10.0,
    rate: Annotated[str | None, typer.Option(help="Open-loop Poisson rate, e.g. 8000 or 8000/s "
                                                   "(default: half the ceiling X*).")] = None,
    concurrency: Annotated[int | None, typer.Option(help="Closed loop: requests outstanding.")] = None,
    sweep: Annotated[bool, typer.Option("--sweep", help="Open loop at 20%..110% of X*; best goodput.")] = False,
    duration: Annotated[str, typer.Option(help="Measured time per run (after warm-up), e.g. 10s.")] = "10s",
    warmup: Annotated[str, typer.Option(help="Warm-up per run, not measured.")] = "1s",
    slo_ms: Annotated[float, typer.Option(help="Latency objective for goodput.")] = 25.0,
    policies: Annotated[str, typer.Option(help="Comma-separated: none,window,deadline,eager.")] =
        "none,window,deadline,eager",
    torch_threads: Annotated[int, typer.Option(help="torch intra-op threads.")] = 1,
    seed: Annotated[int, typer.Option(help="Seed for inputs, weights and arrivals.")] = 0,
    plot: Annotated[Path | None, typer.Option(
        help="Write a plot (.png, .svg or .pdf): latency CDF, and the sweep curves.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite the --plot file.")] = False,
    json: JsonOption = False,
) -> None:
    """Profile predict time S(b), then compare no batching, a fixed window, and mlplat's deadline and eager
    batchers under the same load: throughput, goodput within the SLO, latency percentiles, batch fill.
    """
    from mlplat.batcher import BenchConfig, ModelSpec, run_bench, write_plot

    out = Output.from_ctx(ctx, json=json)
    _check_choices(device=device, model=model, dtype=dtype, policies=policies)
    chosen = [name for name, on in (("--rate", rate is not None), ("--concurrency", concurrency is not None),
                                    ("--sweep", sweep)) if on]
    if len(chosen) > 1:
        raise ConfigError(f"choose one load of --rate, --concurrency or --sweep, got {' and '.join(chosen)}")
    run_s = parse_option("--duration", parse_duration, duration)
    warm_s = parse_option("--warmup", parse_duration, warmup)
    rate_rps = None if rate is None else parse_option("--rate", parse_rate, rate)
    mode = "sweep" if sweep else "concurrency" if concurrency is not None else "rate"
    config = BenchConfig(
        model=ModelSpec(kind=model, width=width, hidden=hidden, layers=layers, seq_len=seq_len),  # type: ignore[arg-type]
        device=device, dtype=dtype, max_batch=max_batch, max_latency_ms=max_latency_ms, mode=mode,  # type: ignore[arg-type]
        rate=rate_rps, concurrency=concurrency if concurrency is not None else 64, duration=run_s,
        warmup=warm_s, slo_ms=slo_ms, policies=tuple(p.strip() for p in policies.split(",") if p.strip()),
        torch_threads=torch_threads, seed=seed)
    if plot is not None:
        check_plot(plot, force=force)  # before the minutes of benchmarking, not after
    with out.progress("bench", total=None) as advance:
        def step(message: str) -> None:
            advance()
            if not out.json:
                out.note(message, style="dim")

        result = run_bench(config, progress=step)
    for warning in result.warnings:
        out.warn(warning)
    # The results first: a plot that cannot be written after all (the folder went away) must not lose them.
    if out.json:
        out.result(result)
    else:
        out.print(render(result))
    if plot is not None:
        write_plot(result, plot, force=force)
        out.note(f"wrote {plot}")
