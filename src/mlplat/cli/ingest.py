"""`mlplat ingest`: stream events into an online store exactly once, read, repair, verify, lateness."""

from __future__ import annotations

import json as jsonlib
import signal
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from mlplat.cli._output import JsonOption, Output, first_repeat, make_table, parse_option
from mlplat.files import path_kind
from mlplat.plots import check_plot

app = typer.Typer(help="Online features from an event stream, written exactly once (watermarks, late "
                       "events, dedup, repair).", no_args_is_help=True)

ConfigArg = Annotated[Path, typer.Argument(help="Ingest config YAML (`mlplat ingest init` writes one).")]
SourceOpt = Annotated[str, typer.Option("--source", help="JSONL/CSV file or redis://host:port/db/stream.")]
FileSourceOpt = Annotated[str, typer.Option("--source", help="JSONL/CSV file: the whole history, replayed.")]
StoreOpt = Annotated[str, typer.Option("--store", help="sqlite:///path.db (default) or redis://host:port/db.")]
PartitionOpt = Annotated[str, typer.Option("--partition", help="i/N: apply only entities hashing to i of N.")]
DEFAULT_STORE = "sqlite:///features.db"


def _partition(text: str) -> tuple[int, int]:
    from mlplat.errors import ConfigError

    index, _, count = text.partition("/")
    try:
        i, n = int(index), int(count)
    except ValueError:
        raise ConfigError(f"--partition must look like i/N (e.g. 0/4), got {text!r}") from None
    if n < 1 or not 0 <= i < n:
        raise ConfigError(f"--partition i/N needs 0 <= i < N, got {text!r}")
    return i, n


def _config(path: Path, batch_size: int | None = None) -> Any:
    from mlplat.ingest import load_ingest_config

    config = load_ingest_config(path)
    if batch_size is not None:
        config.batch_size = batch_size
    return config


def _check_folder(option: str, path: Path) -> None:
    """Refuse an output path given on the command line whose folder is missing, as --plot and --report do."""
    # The config's own `dead_letter` folder is still made by run_pipeline: it may name out/ on a fresh clone.
    from mlplat.errors import OutputError

    if path_kind(path.parent, name=f"{option} {path}") != "dir":
        raise OutputError(f"{option} {path}: folder {path.parent} does not exist")


def _check_dead_letter(override: Path | None, configured: str, config: Path) -> None:
    """The dead-letter file of `run` and `repair`: a --dead-letter in a folder that exists, and never the config."""
    if override is not None:
        _check_folder("--dead-letter", override)
    _check_not_config(override if override is not None else Path(configured), config)


def _check_not_config(dead_letter: Path, config: Path) -> None:
    """Dead letters are appended to their file: naming the config there would break it for the next run."""
    from mlplat.errors import OutputError

    if dead_letter.resolve() == config.resolve():
        raise OutputError(f"{dead_letter}: the dead-letter file is the config file; dead letters are appended to "
                          "it, which would break the config: give it its own path")


@app.command()
def init(ctx: typer.Context,
         path: Annotated[Path, typer.Argument(help="Where to write the template.")] = Path("ingest.yaml"),
         force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
         json: JsonOption = False) -> None:
    """Write a commented config template."""
    from mlplat.files import atomic_write_text, read_template

    atomic_write_text(path, read_template("ingest.yaml"), force=force)
    Output.from_ctx(ctx, json=json).wrote(path, f"; check it with `mlplat ingest validate {path}`")


@app.command()
def validate(ctx: typer.Context, config: ConfigArg, json: JsonOption = False) -> None:
    """Check a config file; errors point at file:line:column."""
    cfg = _config(config)
    out = Output.from_ctx(ctx, json=json)
    summary = {"valid": True, "config": str(config), "features": [f.name for f in cfg.features],
               "dedup_ttl": cfg.effective_dedup_ttl, "max_future": cfg.max_future}
    if out.json:
        out.result(summary)
    else:
        future = "not checked" if cfg.max_future is None else f"{cfg.max_future:g} s"
        out.print(f"{config}: valid ({len(cfg.features)} features; dedup_ttl {cfg.effective_dedup_ttl:g} s; "
                  f"max_future {future})")


@app.command()
def schema() -> None:
    """Print the JSON Schema of the config."""
    from mlplat.ingest import IngestConfig

    typer.echo(jsonlib.dumps(IngestConfig.config_schema(), indent=2))


DeadLetterOpt = Annotated[Path | None, typer.Option("--dead-letter", help="Overrides the config's.")]


@app.command()
def run(ctx: typer.Context, config: ConfigArg, source: SourceOpt, store: StoreOpt = DEFAULT_STORE,
        follow: Annotated[bool, typer.Option("--follow", help="Keep reading new events until Ctrl-C.")] = False,
        partition: PartitionOpt = "0/1",
        dead_letter: DeadLetterOpt = None,
        batch_size: Annotated[int | None, typer.Option("--batch-size", min=1, max=100_000,
                                                       help="Overrides the config's.")] = None,
        trace: Annotated[bool, typer.Option("--trace", hidden=True)] = False,
        json: JsonOption = False) -> None:
    """Ingest a file or a Redis Stream into the store, resuming from its checkpoint; print reconciled counts."""
    from mlplat.ingest import open_source, open_store, run_pipeline

    out = Output.from_ctx(ctx, json=json)
    cfg = _config(config, batch_size)
    part = _partition(partition)
    _check_dead_letter(dead_letter, cfg.dead_letter, config)
    stopping = {"now": False}

    def _stop(*_: object) -> None:
        stopping["now"] = True

    if follow:
        signal.signal(signal.SIGINT, _stop)
        signal.signal(signal.SIGTERM, _stop)

    def _trace(checkpoint: Any) -> None:
        sys.stderr.write(f"committed {checkpoint.seq}\n")
        sys.stderr.flush()

    src = open_source(source, part)  # first: opening a SQLite store creates it, even for a missing source
    try:
        feature_store = open_store(store)
        try:
            result = run_pipeline(cfg, src, feature_store, partition=part, follow=follow,
                                  stop=lambda: stopping["now"], dead_letter=dead_letter,
                                  on_batch=_trace if trace else None)
        finally:
            feature_store.close()
    finally:
        src.close()
    out.result(result)
    for warning in result.warnings:
        out.warn(warning)


@app.command()
def read(ctx: typer.Context, entity: Annotated[str, typer.Argument(help="The entity key.")],
         store: StoreOpt = DEFAULT_STORE,
         feature: Annotated[str | None, typer.Option("--feature", help="Only this feature.")] = None,
         json: JsonOption = False) -> None:
    """Show the stored features of one entity (windows newest first, with final/open)."""
    from mlplat.ingest import open_store, read_entity

    feature_store = open_store(store, create=False)  # reading must not leave an empty store behind
    try:
        result = read_entity(feature_store, entity, feature)
    finally:
        feature_store.close()
    Output.from_ctx(ctx, json=json).result(result)


@app.command()
def lateness(ctx: typer.Context, file: Annotated[Path, typer.Argument(help="JSONL or CSV events file.")],
             target: Annotated[str, typer.Option("--target", help="Dead-letter shares to meet, comma separated.")]
             = "0.1%,1%",
             config: Annotated[Path | None, typer.Option("--config", help="Take field names from this config.")]
             = None,
             max_future: Annotated[str | None, typer.Option(
                 "--max-future", help="Leave out events stamped more than this after their ingest_time, as a "
                                      "run refuses them (default: the --config's max_future).")] = None,
             plot: Annotated[Path | None, typer.Option(
                 "--plot", help="Write a histogram here (.png, .svg or .pdf).")] = None,
             force: Annotated[bool, typer.Option("--force", help="Overwrite the --plot file.")] = False,
             json: JsonOption = False) -> None:
    """Lateness distribution and the out-of-orderness / allowed lateness each target share needs."""
    from mlplat.errors import ConfigError
    from mlplat.ingest import FileSource, analyze_lateness
    from mlplat.units import format_duration, format_percent, parse_duration, parse_percent

    try:
        targets = tuple(parse_percent(t) for t in target.split(",") if t.strip())
    except ValueError as exc:
        raise ConfigError(f"--target: {exc}") from None
    if not targets:
        raise ConfigError(f"--target: expected shares such as '0.1%,1%', got {target!r}")
    repeated = first_repeat(targets)
    if repeated is not None:
        raise ConfigError(f"--target: {format_percent(repeated)} is given twice; list each target once")
    fields: dict[str, Any] = {}
    if config is not None:
        cfg = _config(config)
        fields = {"event_time": cfg.event_time, "ingest_time": cfg.ingest_time, "max_future": cfg.max_future}
    if max_future is not None:
        fields["max_future"] = parse_option("--max-future", parse_duration, max_future, error=ConfigError)
    if plot is not None:
        check_plot(plot, force=force)  # before the analysis is printed, not after
    report = analyze_lateness(FileSource(file), targets=targets, **fields)
    out = Output.from_ctx(ctx, json=json)
    if out.json:
        out.result(report)
    else:
        out.print(report.summary())
        out.print(make_table("ooo + lateness needed per target, and a split", ["target", "bound",
                                    "dead-lettered", "ooo", "lateness", "final after"],
                             [(format_percent(t["target"]), format_duration(t["bound"]), f"{t['dead_lettered']:.3%}",
                               format_duration(t["max_out_of_orderness"]), format_duration(t["allowed_lateness"]),
                               format_duration(t["freshness"])) for t in report.targets],
                             numeric=range(6)))
    if plot is not None:
        out.note(f"wrote {report.plot(plot, force=force)}")


def _check_scratch(url: str) -> None:
    """verify clears its --store before every run: a store that holds features is cleared only with --force."""
    from mlplat.errors import MlplatError, OutputError, format_url
    from mlplat.ingest import open_store

    try:
        existing = open_store(url, create=False)
    except MlplatError:
        return  # no such store (or not one of ours, which verify refuses on its own)
    try:
        holds = bool(existing.meta() or existing.states())
    finally:
        existing.close()
    if holds:
        raise OutputError(f"--store {format_url(url)}: holds ingest features, and verify clears its store before "
                          "every run; give a scratch store, or --force to clear this one")


def _file_source(spec: str, command: str) -> Any:
    """The file ``repair`` and ``verify`` replay from its start; a stream cannot be replayed that way."""
    from mlplat.errors import ConfigError
    from mlplat.ingest import FileSource

    if spec.startswith(("redis://", "rediss://")):
        raise ConfigError(f"--source {spec}: `ingest {command}` replays a file from its first line; export the "
                          "stream to JSONL (one message per line) and pass that file")
    return FileSource(spec)


@app.command()
def repair(ctx: typer.Context, config: ConfigArg, source: FileSourceOpt, store: StoreOpt = DEFAULT_STORE,
           since: Annotated[str | None, typer.Option("--since", help="Only windows ending after this time "
                                                                     "(epoch s or ISO 8601).")] = None,
           dry_run: Annotated[bool, typer.Option("--dry-run", help="Report, change nothing.")] = False,
           partition: PartitionOpt = "0/1",
           dead_letter: DeadLetterOpt = None,
           json: JsonOption = False) -> None:
    """Recompute every feature from the source file and fix each stored key that differs (idempotent).

    The fix also writes the dead letters of source lines no run had committed, as `run` would have.
    """
    from mlplat.errors import ConfigError
    from mlplat.ingest import open_store, parse_time
    from mlplat.ingest import repair as do_repair

    cfg = _config(config)
    since_s = parse_option("--since", parse_time, since, error=ConfigError) if since is not None else None
    # Every input checked before the store is opened: opening a SQLite store creates it. A dry run never does.
    replayed, part = _file_source(source, "repair"), _partition(partition)
    _check_dead_letter(dead_letter, cfg.dead_letter, config)
    feature_store = open_store(store, create=not dry_run)
    try:
        report = do_repair(cfg, replayed, feature_store, since=since_s, dry_run=dry_run, partition=part,
                           dead_letter=dead_letter)
    finally:
        feature_store.close()
    Output.from_ctx(ctx, json=json).result(report)


@app.command()
def verify(ctx: typer.Context, config: ConfigArg, source: FileSourceOpt,
           store: Annotated[str | None, typer.Option(
               "--store", help="A scratch store, cleared before each run [default: a SQLite file in a "
                               "temporary folder, removed at the end].")] = None,
           crashes: Annotated[int, typer.Option("--crashes", min=1, help="Runs, each SIGKILLed once.")] = 50,
           seed: Annotated[int, typer.Option("--seed", min=0, help="Seed (>= 0) for shuffles, duplicates, kills.")] = 0,
           force: Annotated[bool, typer.Option("--force", help="Clear a --store that holds features.")] = False,
           json: JsonOption = False) -> None:
    """Kill the pipeline with SIGKILL at random points, restart it, and compare with a batch computation."""
    from mlplat.cli.app import ExitCode
    from mlplat.ingest import verify as do_verify

    cfg = _config(config)
    if store is not None and not force:
        _check_scratch(store)
    report = do_verify(config, cfg, _file_source(source, "verify"), store, crashes=crashes, seed=seed)
    Output.from_ctx(ctx, json=json).result(report)
    if not report.passed:
        raise typer.Exit(ExitCode.FAIL)
