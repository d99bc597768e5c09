"""`mlplat canary`: anytime-valid canary analysis, promotion gates and small-traffic planning."""

from __future__ import annotations

import datetime as dt
import json as jsonlib
import math
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Group
from rich.text import Text

from mlplat.cli._output import JsonOption, Output, check_outputs, first_repeat, make_table, parse_option
from mlplat.errors import ConfigError, DataError
from mlplat.files import atomic_write_text, read_template
from mlplat.jsonable import dumps
from mlplat.units import (
    MAX_EPOCH,
    MIN_EPOCH,
    format_change,
    format_duration,
    format_percent,
    format_time,
    parse_duration,
    parse_percent,
    parse_rate,
)

if TYPE_CHECKING:
    from mlplat.analysis import CanaryConfig, CanaryData, CanaryResult, PlanResult, RolloutPlan

app = typer.Typer(help="Anytime-valid canary analysis: promote, roll back, or wait for evidence.",
                  no_args_is_help=True)

TEMPLATE = "canary.yaml"

ConfigOption = Annotated[Path | None, typer.Option("--config", "-c", help="canary.yaml (default: the "
                                                   "bundled template, `mlplat canary init` writes it).")]
ForceOption = Annotated[bool, typer.Option("--force", help="Overwrite existing output files.")]
ShareOption = Annotated[str | None, typer.Option("--traffic-share", help="Override the config's traffic_share "
                                                 "(a rollout stage's weight, '5%').")]
MetricsOption = Annotated[str | None, typer.Option("--metrics", help="Comma-separated metric names to judge, "
                                                   "each at its share of alpha (default: all in the config).")]


def _metric_names(metrics: str | None) -> list[str] | None:
    return [name.strip() for name in metrics.split(",") if name.strip()] if metrics else None


def _load(path: Path | None, *, traffic_share: str | None = None, max_duration: float | None = None,
          metrics: str | None = None) -> CanaryConfig:
    from mlplat.analysis import CanaryConfig
    from mlplat.analysis._sequential import MIN_SHARE
    from mlplat.config import load_config, parse_yaml, validate_document

    if path is None:
        cfg = validate_document(parse_yaml(read_template(TEMPLATE), source=f"<bundled {TEMPLATE}>"), CanaryConfig)
    else:
        cfg = load_config(path, CanaryConfig)
    if traffic_share is not None:
        share = parse_option("--traffic-share", parse_percent, traffic_share, error=DataError)
        if not MIN_SHARE <= share <= 1 - MIN_SHARE:
            raise DataError(f"--traffic-share must be in [{MIN_SHARE:.4%}, {1 - MIN_SHARE:.4%}], "
                            f"got {traffic_share!r}")
        cfg.traffic_share = share
    if max_duration is not None:
        if max_duration <= 0:
            raise DataError(f"--max-duration must be > 0, got {max_duration:g} s")
        cfg.max_duration = max_duration
    return cfg.only(_metric_names(metrics))


def _fetch(cfg: CanaryConfig, config: Path | None, url: str, *, start: float, end: float, step: float) -> CanaryData:
    """:func:`fetch_prometheus`, with a config error it finds (a metric without a query) placed in ``config``'s
    file and line, as errors found while loading are: it named only ``metrics[0].query``."""
    from mlplat.analysis._prometheus import fetch_prometheus
    from mlplat.config import load_document

    try:
        return fetch_prometheus(cfg, url, start=start, end=end, step=step)
    except ConfigError as exc:
        if not exc.path or config is None or exc.source is not None:
            raise
        raise load_document(config).error(exc.path, exc.message) from None


def _time(value: str, name: str, *, now: float | None = None) -> float:
    """Seconds since the epoch from ``1767225600``, ``2026-01-01T00:00:00Z``, ``now`` or ``now-30m``."""
    seconds = _epoch(value.strip(), name, value, now)
    if not MIN_EPOCH <= seconds < MAX_EPOCH:  # NaN and inf too
        raise DataError(f"{name}: expected a time in the years 1 to 9999, got {value!r}")
    return seconds


def _epoch(text: str, name: str, value: str, now: float | None) -> float:
    if text.startswith("now"):
        base = time.time() if now is None else now
        rest = text[3:]
        if rest and rest[0] not in "+-":
            raise DataError(f"{name}: expected now, now-30m or now+5m, got {value!r}")
        offset = parse_option(name, parse_duration, rest[1:], error=DataError) if rest else 0.0
        return base - offset if rest.startswith("-") else base + offset
    try:
        return float(text)
    except ValueError:
        pass
    try:
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise DataError(f"{name}: expected seconds since the epoch, an ISO 8601 time or now-30m, "
                        f"got {value!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.timestamp()


def _seconds(value: str, name: str) -> float:
    return parse_option(name, parse_duration, value, error=DataError)


def _finish(out: Output, result: CanaryResult, *, plot: Path | None, report: Path | None,
            force: bool) -> None:
    from mlplat.analysis._report import markdown_report, write_plot

    # Imported here: cli/app.py imports this module while it is being built.
    from mlplat.cli.app import ExitCode

    codes = {"PROMOTE": ExitCode.OK, "ROLLBACK": ExitCode.FAIL, "CONTINUE": ExitCode.INCONCLUSIVE}

    for warning in result.warnings:
        out.warn(warning)
    if report is not None:
        atomic_write_text(report, markdown_report(result), force=force)
        out.note(f"wrote {report}")
    if plot is not None:
        write_plot(result, plot, force=force)
        out.note(f"wrote {plot}")
    out.result(result)
    raise typer.Exit(codes[result.decision.value])


@app.command()
def analyze(
    ctx: typer.Context,
    data: Annotated[list[Path] | None, typer.Argument(help="Export(s): CSV long format, Prometheus JSON (one "
                                                      "file per query, or a list) or Kayenta JSON.")] = None,
    config: ConfigOption = None,
    fmt: Annotated[str | None, typer.Option("--format", help="csv | prometheus | kayenta (default: "
                                            "guessed).")] = None,
    at: Annotated[str | None, typer.Option("--at", help="Judge only data up to this time.")] = None,
    prometheus: Annotated[str | None, typer.Option("--prometheus", help="Query this Prometheus instead "
                                                   "of reading DATA.")] = None,
    start: Annotated[str | None, typer.Option(
        "--start", help="With --prometheus (required there): start time (epoch s, ISO 8601, now-30m).")] = None,
    end: Annotated[str | None, typer.Option("--end", help="With --prometheus: end time (default now).")] = None,
    step: Annotated[str, typer.Option("--step", help="With --prometheus: resolution.")] = "60s",
    plot: Annotated[Path | None, typer.Option("--plot", help="Write a plot (.png, .svg or .pdf) of p-values "
                                              "and confidence sequences.")] = None,
    report: Annotated[Path | None, typer.Option("--report", help="Write a Markdown report.")] = None,
    traffic_share: ShareOption = None,
    max_duration: Annotated[str | None, typer.Option("--max-duration", help="Override the config's "
                                                     "max_duration (a rollout stage's dwell).")] = None,
    metrics: MetricsOption = None,
    force: ForceOption = False,
    json: JsonOption = False,
) -> None:
    """Judge a canary: PROMOTE (exit 0), ROLLBACK (exit 1) or CONTINUE (exit 3, not enough evidence yet)."""
    from mlplat.analysis import analyze as run_analysis
    from mlplat.analysis import combine_exports, read_export
    from mlplat.analysis._prometheus import check_url

    out = Output.from_ctx(ctx, json=json)
    check_outputs(report, plot, force=force, inputs=[*(data or []), config])
    cfg = _load(config, traffic_share=traffic_share,
                max_duration=_seconds(max_duration, "--max-duration") if max_duration is not None else None,
                metrics=metrics)
    if fmt is not None and fmt not in ("csv", "prometheus", "kayenta"):
        raise typer.BadParameter(f"must be csv, prometheus or kayenta, got {fmt!r}", param_hint="--format")
    at_s = _time(at, "--at") if at is not None else None
    if prometheus is not None:
        check_url(prometheus, "--prometheus")
        if data:
            raise typer.BadParameter("give either DATA or --prometheus, not both", param_hint="DATA")
        if start is None:
            raise DataError("--prometheus needs --start (for example --start now-30m)")
        start_s = _time(start, "--start")
        end_s = _time(end, "--end") if end is not None else time.time()
        export = _fetch(cfg, config, prometheus, start=start_s, end=end_s, step=_seconds(step, "--step"))
        result = run_analysis(export, cfg, at=at_s, start=start_s)
    else:
        if not data:
            raise typer.BadParameter("give an export file (DATA) or --prometheus URL", param_hint="DATA")
        seen: dict[Path, Path] = {}
        for path in data:  # the same export twice would sum every count with itself
            first = seen.setdefault(path.resolve(), path)
            if first is not path:
                raise DataError(f"{path}: the same export is given twice ({first}); give each file once")
        exports = [read_export(path, fmt, arm_label=cfg.prometheus.arm_label,  # type: ignore[arg-type]
                               arms=(cfg.arms.baseline, cfg.arms.canary)) for path in data]
        result = run_analysis(combine_exports(exports), cfg, at=at_s)
    _finish(out, result, plot=plot, report=report, force=force)


@app.command()
def watch(
    ctx: typer.Context,
    prometheus: Annotated[str, typer.Option("--prometheus", help="Prometheus base URL.")],
    config: ConfigOption = None,
    interval: Annotated[str, typer.Option("--interval", help="Time between checks.")] = "60s",
    step: Annotated[str, typer.Option("--step", help="Query resolution (one look per step).")] = "60s",
    start: Annotated[str | None, typer.Option("--start", help="Canary start (default: now).")] = None,
    max_duration: Annotated[str | None, typer.Option("--max-duration", help="Stop watching after this long "
                                                     "(default: the config's max_duration).")] = None,
    report: Annotated[Path | None, typer.Option("--report", help="Write a Markdown report at the end.")] = None,
    traffic_share: ShareOption = None,
    metrics: MetricsOption = None,
    force: ForceOption = False,
    json: JsonOption = False,
) -> None:
    """Re-query Prometheus every interval until a decision or max duration; exit code as for analyze.

    This is what an Argo Rollouts analysis Job runs (examples/argo/analysis-template.yaml).
    """
    from mlplat.analysis import analyze as run_analysis
    from mlplat.analysis._prometheus import check_url

    out = Output.from_ctx(ctx, json=json)
    check_outputs(report, force=force, inputs=[config])
    check_url(prometheus, "--prometheus")  # before any wait for --start
    limit_arg = _seconds(max_duration, "--max-duration") if max_duration is not None else None
    # The watch's limit is also the canary's max_duration, so promote_on_timeout applies at its end.
    cfg = _load(config, traffic_share=traffic_share, max_duration=limit_arg, metrics=metrics)
    began = time.time()
    start_s = _time(start, "--start") if start is not None else began
    every = _seconds(interval, "--interval")
    step_s = _seconds(step, "--step")
    limit = cfg.max_duration
    if every <= 0:
        raise DataError(f"--interval must be > 0, got {interval!r}")
    while True:
        now = time.time()
        timed_out = now - began >= limit
        result = None
        if now > start_s:
            export = _fetch(cfg, config, prometheus, start=start_s, end=now, step=step_s)
            result = run_analysis(export, cfg, start=start_s)
            out.note(f"{dt.datetime.fromtimestamp(now, dt.UTC):%H:%M:%S} {result.decision.value}: "
                     f"{'; '.join(result.reasons)}")
            if result.decision.value != "CONTINUE":
                break
        if timed_out:
            out.note(f"watched for {format_duration(now - began)} (max {format_duration(limit)}); stopping")
            break
        # Sleep to the next check, or to the limit if it comes first (then one last check).
        time.sleep(max(min(every, limit - (time.time() - began)), 0.0))
    if result is None:
        raise DataError(f"--start ({format_time(start_s, whole=True)}) is in the future; nothing to analyse")
    _finish(out, result, plot=None, report=report, force=force)


def _floats(text: str, name: str, parse: Any = float) -> list[float]:
    try:
        values = [float(parse(part)) for part in text.split(",") if part.strip()]
    except ValueError as exc:
        raise DataError(f"{name}: {exc}") from None
    if not values:
        raise DataError(f"{name}: expected a comma-separated list, got {text!r}")
    repeated = first_repeat(values)
    if repeated is not None:  # each would be simulated again, with its own noise, as another row
        raise DataError(f"{name}: {repeated:g} is given twice; list each value once")
    return values


@app.command()
def plan(
    ctx: typer.Context,
    baseline_rate: Annotated[float, typer.Option("--baseline-rate", help="Baseline error rate per request.")],
    rps: Annotated[str, typer.Option("--rps", help="Requests per second over both arms ('278', '1e6/h').")],
    traffic: Annotated[str, typer.Option("--traffic", help="Canary shares.")] = "1%,2%,5%,10%",
    effect: Annotated[str, typer.Option("--effect", help="Error-rate multipliers to detect.")] = "1.5,2,3",
    max_duration: Annotated[str, typer.Option("--max-duration", help="Longest canary.")] = "60m",
    interval: Annotated[str, typer.Option("--interval", help="Time between looks.")] = "60s",
    alpha: Annotated[float, typer.Option("--alpha", help="Family-wise alpha; the rate test gets what is left "
                                         "after srm_alpha.")] = 0.05,
    srm_alpha: Annotated[float, typer.Option("--srm-alpha", help="Alpha spent on the SRM check.")] = 0.001,
    tolerance: Annotated[float, typer.Option("--tolerance", help="The rate metric's tolerance.")] = 0.0,
    concentration: Annotated[float, typer.Option("--concentration", help="Prior concentration k.")] = 20.0,
    min_events: Annotated[int, typer.Option("--min-events", help="The rate metric's min_events: bad events "
                                            "(both arms) before the gate may decide.")] = 10,
    runs: Annotated[int, typer.Option("--runs", help="Monte Carlo runs per cell (>= 10).")] = 2000,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Seed of the simulation (>= 0).")] = 0,
    json: JsonOption = False,
) -> None:
    """Power and median time to detect per traffic share x effect, by seeded simulation of the same test."""
    from mlplat.analysis import plan as run_plan
    from mlplat.analysis._sequential import MAX_CONCENTRATION, MIN_CONCENTRATION

    out = Output.from_ctx(ctx, json=json)
    rate = _checked_rate(rps)
    shares = _floats(traffic, "--traffic", parse_percent)
    effects = _floats(effect, "--effect")
    _check_plan_inputs(baseline_rate, shares, effects, alpha, srm_alpha, runs)
    if not MIN_CONCENTRATION <= concentration <= MAX_CONCENTRATION:  # "not (ok)" refuses NaN too
        raise DataError(f"--concentration must be in [{MIN_CONCENTRATION:g}, {MAX_CONCENTRATION:g}], "
                        f"got {concentration:g}")
    if not (tolerance >= 0 and math.isfinite(tolerance)):
        raise DataError(f"--tolerance must be a finite number >= 0 (a relative margin), got {tolerance:g}")
    if min_events < 0:
        raise DataError(f"--min-events must be >= 0 (bad events before a verdict), got {min_events}")
    with out.progress("simulating", total=None):
        result = run_plan(rps=rate, baseline_rate=baseline_rate, traffic=shares, effects=effects,
                          max_duration=_seconds(max_duration, "--max-duration"),
                          interval=_seconds(interval, "--interval"), alpha=alpha - srm_alpha,
                          tolerance=tolerance, concentration=concentration, runs=runs, seed=seed,
                          min_events=min_events)
    out.result(result)


def _checked_rate(rps: str) -> float:
    rate = parse_option("--rps", parse_rate, rps, error=DataError)
    if not (rate > 0 and math.isfinite(rate)):
        raise DataError(f"--rps must be a finite number > 0, got {rps!r}")
    return rate


def _check_plan_inputs(baseline_rate: float, shares: list[float], effects: list[float], alpha: float,
                       srm_alpha: float, runs: int) -> None:
    from mlplat.analysis._sequential import MIN_SHARE

    if not 0 < baseline_rate < 1:
        raise DataError(f"--baseline-rate must be in (0, 1), got {baseline_rate}")
    for share in shares:
        if not MIN_SHARE <= share <= 1 - MIN_SHARE:
            raise DataError(f"--traffic: each share must be in [{MIN_SHARE:.4%}, {1 - MIN_SHARE:.4%}], "
                            f"got {share:.4g}")
    for e in effects:
        if e <= 1 or baseline_rate * e >= 1:
            raise DataError(f"--effect: each multiplier must be > 1 (and keep the rate below 1), got {e:g}")
    if not 0 < srm_alpha < alpha < 1:
        raise DataError(f"need 0 < --srm-alpha < --alpha < 1, got {srm_alpha:g} and {alpha:g}")
    if runs < 10:
        raise DataError(f"--runs must be >= 10, got {runs}")


@app.command()
def rollout(
    ctx: typer.Context,
    rps: Annotated[str, typer.Option("--rps", help="Requests per second over both arms ('300', '1e6/h').")],
    config: ConfigOption = None,
    stages: Annotated[str, typer.Option("--stages", help="Stage shares, smallest first.")] = (
        "shadow,1%,5%,25%,50%,100%"),
    power: Annotated[float, typer.Option("--power", help="Power each stage must reach, in (0, 1).")] = 0.9,
    effect: Annotated[float, typer.Option("--effect", help="Error-rate multiplier to detect.")] = 1.5,
    baseline_rate: Annotated[float, typer.Option("--baseline-rate", help="Baseline error rate.")] = 0.001,
    max_total: Annotated[str, typer.Option("--max-total", help="Longest the whole rollout may take.")] = "4h",
    unit: Annotated[str, typer.Option("--unit", help="What the split is on: request | session | user.")] = (
        "request"),
    metrics: MetricsOption = None,
    fmt: Annotated[str, typer.Option("--format", help="table | markdown | argo | flagger")] = "table",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write the plan to this file.")] = None,
    runs: Annotated[int, typer.Option("--runs", help="Monte Carlo runs per stage (>= 10).")] = 500,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Seed of the simulation (>= 0).")] = 0,
    force: ForceOption = False,
    json: JsonOption = False,
) -> None:
    """Plan the traffic stages of a canary, each dwell sized by the gate's own power simulation."""
    from mlplat.analysis import parse_stages, plan_rollout, rollout_argo, rollout_flagger, rollout_markdown

    out = Output.from_ctx(ctx, json=json)
    cfg = _load(config)
    if fmt not in ("table", "markdown", "argo", "flagger"):
        raise typer.BadParameter(f"must be table, markdown, argo or flagger, got {fmt!r}", param_hint="--format")
    if unit not in ("request", "session", "user"):
        raise typer.BadParameter(f"must be request, session or user, got {unit!r}", param_hint="--unit")
    if runs < 10:
        raise DataError(f"--runs must be >= 10, got {runs}")
    if not 0 < baseline_rate < 1:
        raise DataError(f"--baseline-rate must be in (0, 1), got {baseline_rate}")
    check_outputs(output, force=force, inputs=[config])  # before the simulation, and never over the config
    names = _metric_names(metrics)
    with out.progress("simulating stages", total=None):
        result = plan_rollout(cfg, rps=_checked_rate(rps), stages=parse_stages(stages), baseline_rate=baseline_rate,
                              power=power, effect=effect, max_total=_seconds(max_total, "--max-total"),
                              unit=unit, metrics=names, runs=runs, seed=seed)  # type: ignore[arg-type]
    if not result.fits:
        # Show which stages fail, but write no file: a plan that cannot reach its power in time must not
        # be applied to a cluster by accident.
        out.result(result)
        short = any(not stage.reachable for stage in result.stages)
        problem = (f"a stage cannot reach {power:g} power within --max-total {max_total}" if short else
                   f"every stage reaches {power:g} power, but together they take longer than --max-total "
                   f"{max_total}")
        raise DataError(f"{problem}: " + "; ".join(result.suggestions))
    text = {"markdown": rollout_markdown, "argo": rollout_argo, "flagger": rollout_flagger}.get(fmt)
    if output is not None:
        body = text(result) if text is not None else dumps(result) + "\n"
        atomic_write_text(output, body, force=force)
        out.note(f"wrote {output}")
    if out.json or text is None:
        out.result(result)
    elif output is None:
        typer.echo(text(result), nl=False)


@app.command()
def simulate(
    ctx: typer.Context,
    output: Annotated[Path, typer.Option("--output", "-o", help="File to write: .csv or .json (Prometheus).")],
    scenario: Annotated[str, typer.Option("--scenario", help="aa | error-regression | latency-regression | "
                                          "srm")] = "aa",
    rps: Annotated[str, typer.Option("--rps", help="Requests per second over both arms.")] = "278",
    traffic: Annotated[str, typer.Option("--traffic", help="Canary share.")] = "5%",
    duration: Annotated[str, typer.Option("--duration", help="Length of the export.")] = "60m",
    interval: Annotated[str, typer.Option("--interval", help="Time between rows.")] = "60s",
    baseline_rate: Annotated[float, typer.Option("--baseline-rate", help="Baseline error rate.")] = 0.001,
    effect: Annotated[float, typer.Option("--effect", help="Multiplier of the regression scenarios.")] = 2.0,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Seed of the simulation (>= 0).")] = 0,
    force: ForceOption = False,
    json: JsonOption = False,
) -> None:
    """Write a synthetic export (requests, errors, latency buckets, CPU) for demos and tests."""
    from mlplat.analysis._sequential import MIN_SHARE
    from mlplat.analysis._simulate import SimulationSpec, simulate_export, to_csv, to_prometheus_json

    out = Output.from_ctx(ctx, json=json)
    if scenario not in ("aa", "error-regression", "latency-regression", "srm"):
        raise typer.BadParameter(f"must be aa, error-regression, latency-regression or srm, got {scenario!r}",
                                 param_hint="--scenario")
    share = parse_option("--traffic", parse_percent, traffic, error=DataError)
    if not MIN_SHARE <= share <= 1 - MIN_SHARE:
        raise DataError(f"--traffic must be in [0.0001%, 99.9999%] (as traffic_share), got {traffic}")
    spec = SimulationSpec(scenario=scenario, rps=_checked_rate(rps), traffic=share,  # type: ignore[arg-type]
                          duration=_seconds(duration, "--duration"), interval=_seconds(interval, "--interval"),
                          baseline_rate=baseline_rate, effect=effect, seed=seed)
    frame = simulate_export(spec)
    if output.suffix.lower() == ".json":
        text = to_prometheus_json(frame)
    elif output.suffix.lower() == ".csv":
        text = to_csv(frame)
    else:
        raise DataError(f"{output}: expected a .csv or .json file name")
    atomic_write_text(output, text, force=force)
    out.wrote(output, f" ({scenario}, {len(frame):,} rows)", scenario=scenario, rows=len(frame))


@app.command()
def init(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="Where to write the commented config.")] = Path("canary.yaml"),
    force: ForceOption = False,
    json: JsonOption = False,
) -> None:
    """Write a commented canary.yaml to start from."""
    atomic_write_text(path, read_template(TEMPLATE), force=force)
    Output.from_ctx(ctx, json=json).wrote(path, f"; check it with `mlplat canary validate {path}`")


@app.command()
def validate(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="The canary config to check.")],
    json: JsonOption = False,
) -> None:
    """Check a canary config; errors point at file:line:column."""
    out = Output.from_ctx(ctx, json=json)
    cfg = _load(path)
    if out.json:
        out.result({"valid": True, "metrics": cfg.metric_names(), "alpha": cfg.alpha,
                    "alpha_per_metric": cfg.metric_alpha()})
    else:
        out.print(f"{path}: valid; {len(cfg.metrics)} metric(s): {', '.join(cfg.metric_names())}; "
                  f"alpha {cfg.alpha:g}, {cfg.metric_alpha():.4g} per metric after SRM")


@app.command()
def schema() -> None:
    """Print the JSON Schema of canary.yaml."""
    from mlplat.analysis import CanaryConfig

    typer.echo(jsonlib.dumps(CanaryConfig.config_schema(), indent=2))


def render_result(result: CanaryResult) -> Group:
    """The verdict, its reasons, the SRM check and a table of the tests."""

    colour = {"PROMOTE": "green", "ROLLBACK": "red", "CONTINUE": "yellow"}[result.decision.value]
    rows = []
    for m in result.metrics:
        style = {"REGRESSION": "red", "PASS": "green"}.get(m.status.value, "yellow")
        rows.append((m.name + (" (critical)" if m.critical else ""), Text(m.status.value, style=style),
                     format_change(m.effect), f"[{format_change(m.ci[0])}, {format_change(m.ci[1])}]",
                     f"{m.p_value:.3g}", f"{m.n_baseline:,.0f}", f"{m.n_canary:,.0f}", m.detail))
    table = make_table("canary tests", ("test", "status", "effect", "CI", "p", "n base", "n canary", "detail"),
                       rows, numeric=(2, 3, 4, 5, 6))
    lines: list[Any] = [f"[bold {colour}]{result.decision.value}[/bold {colour}]"]
    lines += [Text(f"  - {reason}") for reason in result.reasons]
    if result.srm is not None:
        lines.append(f"SRM: canary share {result.srm.observed_share:.4f} vs configured "
                     f"{result.srm.expected_share:.4f}, p = {result.srm.p_value:.3g} (alpha {result.srm.alpha:g})")
    lines.append(Text(f"alpha {result.alpha:g}: {result.alpha_split}"))
    lines.append(table)
    return Group(*lines)


def render_plan(result: PlanResult) -> Group:
    """The power grid, the false-alarm rates and the smallest share per effect."""
    from mlplat.analysis import binomial_upper

    def when(seconds: float) -> str:
        return "not reached" if math.isinf(seconds) else format_duration(seconds)

    columns = ("traffic", "effect", "P(detect) (95% CI)", "median time", "80% by", "95% by")
    rows = [(format_percent(c.traffic), f"{c.effect:g}x", f"{c.power:.3f} ({c.power_ci[0]:.2f}-{c.power_ci[1]:.2f})",
             when(c.median_time), when(c.time_to_80), when(c.time_to_95)) for c in result.cells]
    table = make_table(f"canary plan: {result.rps:g} req/s, baseline error rate {result.baseline_rate:g}, "
                       f"alpha {result.alpha:g}, min_events {result.min_events}, {result.runs} runs, max "
                       f"{format_duration(result.max_duration)}",
                       columns, rows, numeric=range(len(columns)))
    lines: list[Any] = [table]
    for t, r in result.false_alarm.items():
        lines.append(f"false-alarm rate at {format_percent(t)} (A/A, continuous monitoring): {r:.4f} "
                     f"(95% upper bound {binomial_upper(r, result.runs):.4f})")
    for effect in sorted({c.effect for c in result.cells}):
        for target in (0.8, 0.95):
            cell = result.smallest(effect, target)
            if cell is None:
                lines.append(f"{effect:g}x: no share in the grid reaches {target:.0%} power within "
                             f"{format_duration(result.max_duration)}")
            else:
                lines.append(f"{effect:g}x: {target:.0%} power from {format_percent(cell.traffic)} traffic "
                             f"in {format_duration(cell.time_to_power(target))}")
    return Group(*lines)


def render_rollout(result: RolloutPlan) -> Group:
    """The stages with dwell, power, blast radius and checks; the total and what to change."""
    rows = [(s.name, "-" if s.share >= 1 else format_duration(s.dwell) + ("" if s.reachable else " (!)"),
             "-" if math.isnan(s.power) else f"{s.power:.2f} ({s.power_ci[0]:.2f}-{s.power_ci[1]:.2f})",
             f"{s.affected_requests:,.0f}",
             f"{s.extra_errors:,.1f}", ", ".join(s.checks) or "-") for s in result.stages]
    table = make_table(f"canary rollout: {result.rps:g} req/s, detect {result.effect:g}x errors with "
                       f"{result.power:.0%} power per stage, split by {result.unit}",
                       ("stage", "dwell", "power (95% CI)", "requests exposed", "extra errors if bad", "checks"), rows,
                       numeric=(1, 2, 3, 4))
    lines: list[Any] = [table, f"total {format_duration(result.total)} of max {format_duration(result.max_total)}"
                        + ("" if result.fits else " — does not fit")]
    lines += [Text(f"  - {s}") for s in result.suggestions]
    lines.append(Text(result.stickiness))
    return Group(*lines)


__all__ = ["app", "render_plan", "render_result", "render_rollout"]
