"""The streaming loop (source -> engine -> store, one atomic commit per micro-batch), read, and repair."""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from mlplat.errors import DataError, OutputError
from mlplat.ingest._config import IngestConfig
from mlplat.ingest._engine import (
    SEP,
    Checkpoint,
    Commit,
    DeadLetter,
    Engine,
    StoredStateError,
    diff_states,
    feature_value,
    forget_before,
    not_a_state,
    partition_label,
    partition_of,
    show_key,
    split_key,
    state_fits,
    window_end,
)
from mlplat.ingest._sources import FileSource, Source
from mlplat.ingest._stores import FeatureStore, SQLiteStore, damaged
from mlplat.units import format_duration, format_exact, format_time

__all__ = ["EntityFeatures", "IngestResult", "RepairReport", "read_entity", "repair", "run_pipeline"]

COUNTS = ("read", "applied", "duplicates", "late", "malformed", "future")


def _iso(seconds: float | None) -> str | None:
    """:func:`~mlplat.units.format_time`, or None where there is no time yet (no watermark)."""
    return None if seconds is None or not math.isfinite(seconds) else format_time(seconds)


def _lines(rows: list[tuple[str, Any]]) -> str:
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


@dataclass(frozen=True)
class IngestResult:
    """What one ``run`` did; ``read == applied + duplicates + late + malformed + future`` always holds."""

    source: str
    store: str
    counts: dict[str, int]
    batches: int
    seconds: float
    watermark: float | None
    checkpoint: Checkpoint
    dead_letter: str
    first_malformed: str | None = None

    @property
    def warnings(self) -> list[str]:
        """A run where every record read was malformed most likely reads the wrong fields or file."""
        c = self.counts
        if c["read"] == 0 or c["malformed"] < c["read"] or self.first_malformed is None:
            return []
        return [f"all {c['read']:,} records read were malformed and dead-lettered to {self.dead_letter} "
                f"(the first: {self.first_malformed}); check the source against the config's field names, or "
                "set on_error: fail to stop at the first malformed line"]

    @property
    def reconciles(self) -> bool:
        """True when every record read is accounted for."""
        c = self.counts
        return c["read"] == c["applied"] + c["duplicates"] + c["late"] + c["malformed"] + c["future"]

    @property
    def events_per_second(self) -> float:
        total = self.counts["read"] + self.counts["other_partition"]
        return total / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "store": self.store, "counts": dict(self.counts),
                "reconciles": self.reconciles, "batches": self.batches, "seconds": self.seconds,
                "events_per_second": self.events_per_second, "watermark": self.watermark,
                "watermark_iso": _iso(self.watermark), "checkpoint": self.checkpoint.to_dict(),
                "dead_letter": self.dead_letter, "warnings": self.warnings}

    def summary(self) -> str:
        """``read 10 = applied 7 + duplicates 1 + late 1 + malformed 1 + future 0 (reconciled)``."""
        c = self.counts
        verdict = "reconciled" if self.reconciles else "DOES NOT RECONCILE"
        return (f"read {c['read']} = applied {c['applied']} + duplicates {c['duplicates']} + late {c['late']} "
                f"+ malformed {c['malformed']} + future {c['future']} ({verdict})")

    def __rich__(self) -> Any:
        rows: list[tuple[str, Any]] = [(name, self.counts[name]) for name in COUNTS]
        if self.counts["other_partition"]:
            rows.append(("other partitions", self.counts["other_partition"]))
        rows += [("batches", self.batches), ("events/s", f"{self.events_per_second:,.0f}"),
                 ("watermark", _iso(self.watermark) or "-"), ("dead letters", self.dead_letter)]
        return bold_first(f"ingest {self.source} -> {self.store}", f"\n{_lines(rows)}\n{self.summary()}")


def bold_first(bold: str, rest: str) -> Any:
    """``bold`` in bold, then ``rest``, as rich text: plain, so an entity, path or value with brackets is shown
    as written (read as markup, ``[/x]`` stopped the command with exit 5)."""
    from rich.text import Text  # only when rich prints a result

    return Text.assemble((bold, "bold"), rest)


def _dead_letter_path(config: IngestConfig, partition: tuple[int, int], override: str | Path | None) -> Path:
    path = Path(override) if override is not None else Path(config.dead_letter)
    if partition[1] > 1:
        path = path.with_name(f"{path.stem}.p{partition[0]}of{partition[1]}{path.suffix}")
    return path


def _check_dead_letter_apart(path: Path, source: Source, store: FeatureStore) -> None:
    """The dead-letter file is appended to, and cut back to its committed size on restart: naming the source
    file or the SQLite store there would write into (or truncate) the user's data."""
    others = [("source", source.path if isinstance(source, FileSource) else None),
              ("SQLite store", store.path if isinstance(store, SQLiteStore) else None)]
    for what, other in others:
        if other is not None and path.resolve() == other.resolve():
            raise OutputError(f"{path}: the dead-letter file is the {what}; dead letters are appended to it and "
                              "cut back after a crash, which would damage it: give it its own path")


@contextlib.contextmanager
def _dead_letter_file(path: Path, committed: int | None, store: str) -> Iterator[Any]:
    """The dead-letter file open for appending, with this store's uncommitted lines taken out first.

    Lines this store wrote after its last commit (a crash between the two) are removed, so the file, like
    the store, holds each dead letter exactly once. Lines other stores wrote there meanwhile (two stores
    may share the config's file) are kept, as is everything before ``committed``.
    """
    handle = _open_dead_letter(path, committed, store)
    try:
        yield handle
    finally:
        # Every write was flushed and synced by _write_dead; only a failed one leaves bytes in the buffer,
        # and close() retrying them must not hide that failure's message.
        with contextlib.suppress(OSError):
            handle.close()


def _open_dead_letter(path: Path, committed: int | None, store: str) -> Any:
    """:func:`_dead_letter_file`'s opening and cut (an OutputError when the file cannot be written)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)  # a config may name out/dead.jsonl on a fresh clone
        handle = path.open("ab+")
        if committed is not None and handle.tell() > committed:
            handle.seek(committed)
            tail = handle.read()
            kept = _others_lines(tail, store)
            if kept != tail:
                handle.truncate(committed)
                handle.write(kept)  # append mode: at the new end
                handle.flush()
                os.fsync(handle.fileno())
    except OSError as exc:
        raise OutputError(f"{path}: cannot write the dead-letter file: {exc.strerror}") from exc
    return handle


def _letter_json(letter: dict[str, Any]) -> str:
    """One dead letter as strict JSON: a number too large for a float (``1e999``) is written as its text,
    not as ``Infinity``, which JSON has not (a strict reader refused the line)."""
    try:
        return json.dumps(letter, default=str, allow_nan=False)
    except ValueError:
        return json.dumps(_finite(letter), default=str, allow_nan=False)


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value


def _identity(store: FeatureStore) -> str:
    """The store a dead letter names: a SQLite file by its absolute path (however the URL spelt it)."""
    return f"sqlite:///{store.path.resolve()}" if isinstance(store, SQLiteStore) else store.url


def _others_lines(tail: bytes, store: str) -> bytes:
    """The lines of ``tail`` that are not dead letters ``store`` wrote, without a last line cut short."""
    lines = tail.splitlines(keepends=True)
    if lines and not lines[-1].endswith(b"\n"):
        lines.pop()  # a write torn by a crash: no reader could take it
    kept = []
    for line in lines:
        try:
            letter = json.loads(line)
        except ValueError:
            letter = None
        # A letter without "store" was written before letters named their store: cut, as all were then.
        if not isinstance(letter, dict) or letter.get("store", store) != store:
            kept.append(line)
    return b"".join(kept)


def _write_dead(handle: Any, source: str, store: str, letters: list[DeadLetter]) -> int:
    """Append ``letters`` and make them durable before the commit that counts them; the file's new size."""
    try:
        if letters:
            handle.write(b"".join(_letter_json({"source": source, "store": store, **d.to_dict()}).encode()
                                  + b"\n" for d in letters))
            handle.flush()
            os.fsync(handle.fileno())
        return int(handle.tell())
    except OSError as exc:  # a full disk: the batch is not committed, and the next run cuts the torn lines
        raise OutputError(f"{handle.name}: cannot write the dead-letter file: {exc.strerror}; the batch was not "
                          "applied") from exc


def _meta(config: IngestConfig, partitions: int, recorded: dict[str, Any]) -> dict[str, Any]:
    """What ``read`` needs without the config: the watermark's lag, each feature's form, the partition count.

    Features ``recorded`` earlier and left out of this config keep their forms: their state stays in the
    store, and a later config that brings one back in another form must still be refused.
    """
    return {"max_out_of_orderness": config.max_out_of_orderness, "partitions": partitions,
            "features": {**recorded.get("features", {}), **_forms(config)}}


def _forms(config: IngestConfig) -> dict[str, dict[str, Any]]:
    """Each feature's form, as recorded in the store: what its stored state means."""
    return {f.name: {"agg": f.agg, "window": f.window, "hop": f.hop} for f in config.features}


def _form_value(value: Any) -> str:
    """A feature's window or hop as written (exact decimal seconds), or its aggregation's name."""
    return format_exact(value) if isinstance(value, int | float) else str(value)


def _check_same_features(recorded: dict[str, Any], config: IngestConfig, store: str) -> None:
    """Refuse a run whose feature of a recorded name has another form: its stored windows would be misread."""
    for name, new in _forms(config).items():
        old = recorded.get("features", {}).get(name)
        if old is not None and old != new:
            changed = ", ".join(f"{k} {_form_value(old.get(k))} -> {_form_value(new[k])}"
                                for k in new if old.get(k) != new[k])
            raise DataError(f"{store}: feature {name!r} is stored with another definition ({changed}); its "
                            "stored state would be read with the new one. Give the feature a new name, use a new "
                            "store, or rebuild this one from the source with `mlplat ingest repair`")


def _check_same_source(checkpoint: Checkpoint | None, source: Source, store: str) -> None:
    """Refuse to resume offsets counted in another source: they would skip (or re-read) unrelated records."""
    if checkpoint is None or not checkpoint.seq or not checkpoint.source or checkpoint.source == source.identity:
        return
    raise DataError(f"{store}: its checkpoint for partition {checkpoint.partition} is at record {checkpoint.seq} "
                    f"of {checkpoint.source}, not of {source.identity}; resume with that source, use a new "
                    f"store, or rebuild this one from the new source with `mlplat ingest repair`")


def run_pipeline(config: IngestConfig, source: Source, store: FeatureStore, *,
                 partition: tuple[int, int] = (0, 1), follow: bool = False,
                 stop: Callable[[], bool] = lambda: False, dead_letter: str | Path | None = None,
                 on_batch: Callable[[Checkpoint], None] | None = None) -> IngestResult:
    """Ingest ``source`` into ``store`` from the store's checkpoint on, one atomic commit per micro-batch.

    Parameters
    ----------
    config : IngestConfig
        Features, lateness policy and batch size.
    source, store
        Where events come from and where state goes (see :func:`open_source`, :func:`open_store`).
    partition : tuple of int
        ``(i, n)``: apply only the entities whose hash is ``i`` modulo ``n``.
    follow : bool
        Keep waiting for new events until ``stop()`` is true.
    dead_letter : path, optional
        Overrides ``config.dead_letter``.
    on_batch : callable, optional
        Called with the checkpoint after each commit.

    Returns
    -------
    IngestResult
        Counts that reconcile, throughput and the final checkpoint.

    References
    ----------
    .. [1] T. Akidau et al., "The Dataflow Model", PVLDB 8(12), 2015.
    .. [2] Apache Flink documentation, "Generating Watermarks"; "Windows: Allowed Lateness".

    Examples
    --------
    >>> import os, tempfile
    >>> from mlplat.ingest import FileSource, IngestConfig, open_store
    >>> d = tempfile.mkdtemp()
    >>> src = os.path.join(d, "e.jsonl")
    >>> _ = open(src, "w").write('{"event_id": "a", "entity": "u", "event_time": 5}\\n'
    ...                          '{"event_id": "a", "entity": "u", "event_time": 5}\\nnot json\\n')
    >>> cfg = IngestConfig(max_out_of_orderness=10, features=[{"name": "n", "agg": "count", "window": 60}])
    >>> store = open_store(f"sqlite:///{d}/f.db")
    >>> run_pipeline(cfg, FileSource(src), store, dead_letter=os.path.join(d, "dl.jsonl")).summary()
    'read 3 = applied 1 + duplicates 1 + late 0 + malformed 1 + future 0 (reconciled)'
    """
    label = partition_label(partition)
    dl_path = _dead_letter_path(config, partition, dead_letter)
    _check_dead_letter_apart(dl_path, source, store)
    start = time.perf_counter()
    checkpoint = store.checkpoint(label)
    # Every check before anything is written (or cut from dead letters).
    _check_same_source(checkpoint, source, store.url)
    recorded = store.meta()
    _check_same_features(recorded, config, store.url)
    owner = _identity(store)
    with _dead_letter_file(dl_path, checkpoint.dead_letter_size if checkpoint else None, owner) as handle:
        store.put_meta(_meta(config, partition[1], recorded))
        if checkpoint is None:
            # Record where this store's dead letters start, so a crash in the first batch is undone too.
            checkpoint = Checkpoint(partition=label, dead_letter_size=int(handle.tell()), source=source.identity)
            store.commit(Commit({}, {}, checkpoint))
        elif checkpoint.source != source.identity:  # a store from before sources were recorded, or one unread
            checkpoint = replace(checkpoint, source=source.identity)
        since = -math.inf if checkpoint.max_time is None else forget_before(
            checkpoint.max_time - config.max_out_of_orderness, config.effective_dedup_ttl)
        engine = Engine(config, checkpoint, store.markers(since), partition)
        totals = dict.fromkeys((*COUNTS, "other_partition"), 0)
        batches = 0
        first_malformed = None
        for batch in source.batches(checkpoint, config.batch_size, follow=follow, stop=stop):
            try:
                outcome = engine.process(batch, store.fetch)
            except StoredStateError as exc:
                raise damaged(store.url, f"the state of {show_key(exc.key)}", exc.detail) from None
            if outcome.counts["malformed"]:
                bad = next(d for d in outcome.dead_letters if d.kind == "malformed")
                if config.on_error == "fail":
                    raise DataError(f"{source.name}:{bad.line}: {bad.reason} (on_error: fail; the batch with "
                                    f"this line was not applied)")
                first_malformed = first_malformed or f"{source.name}:{bad.line}: {bad.reason}"
            size = _write_dead(handle, source.name, owner, outcome.dead_letters)
            commit = outcome.commit
            commit.checkpoint = replace(commit.checkpoint, dead_letter_size=size)
            engine.checkpoint = commit.checkpoint
            store.commit(commit)
            source.acknowledge(batch)
            for name, value in outcome.counts.items():
                totals[name] += value
            batches += 1
            if on_batch is not None:
                on_batch(commit.checkpoint)
    watermark = engine.watermark
    return IngestResult(source.name, store.url, totals, batches, time.perf_counter() - start,
                        watermark if math.isfinite(watermark) else None, engine.checkpoint, str(dl_path),
                        first_malformed)


@dataclass(frozen=True)
class FeatureRow:
    """One served value: a ``last`` value, or one window of an aggregate."""

    feature: str
    value: Any
    window_start: float | None = None
    window_end: float | None = None
    final: bool | None = None
    event_time: float | None = None
    version: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"feature": self.feature, "value": self.value, "window_start": self.window_start,
                "window_end": self.window_end, "final": self.final, "event_time": self.event_time,
                "version": self.version}


@dataclass(frozen=True)
class EntityFeatures:
    """Every feature value stored for one entity (windows newest first)."""

    entity: str
    store: str
    watermark: float | None
    rows: list[FeatureRow] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"entity": self.entity, "store": self.store, "watermark": self.watermark,
                "features": [r.to_dict() for r in self.rows]}

    def __rich__(self) -> Any:
        if not self.rows:
            return bold_first("", f"no features stored for entity {self.entity!r} in {self.store}")
        lines = [f"(watermark {_iso(self.watermark) or '-'})"]
        for r in self.rows:
            span = format_duration((r.window_end or 0) - (r.window_start or 0))
            where = (f"[{_iso(r.window_start)}, +{span}) {'final' if r.final else 'open'}"
                     if r.window_start is not None else f"at {_iso(r.event_time)}")
            lines.append(f"  {r.feature:<22} {r.value!s:>10}  {where}")
        return bold_first(self.entity, " " + "\n".join(lines))


def read_entity(store: FeatureStore, entity: str, feature: str | None = None,
                partition: str | None = None) -> EntityFeatures:
    """The features of ``entity`` as served from ``store`` (optionally only ``feature``).

    Windows are final or open by the watermark of ``partition`` (``"i/N"``); by default, of the partition
    that holds the entity, from the partition count the store records (1 for a store from before it did).
    """
    meta = store.meta()
    if not meta:
        raise DataError(f"{store.url}: holds no ingest pipeline yet (run `mlplat ingest run` first)")
    specs = meta["features"]
    if feature is not None and feature not in specs:
        raise DataError(f"{store.url}: no feature {feature!r}; stored features: {', '.join(sorted(specs))}")
    if partition is None:
        parts = int(meta.get("partitions", 1))
        partition = f"{partition_of(entity, parts)}/{parts}"
    checkpoint = store.checkpoint(partition)
    watermark = None
    if checkpoint is not None and checkpoint.max_time is not None:
        watermark = checkpoint.max_time - meta["max_out_of_orderness"]
    rows = []
    for key, (version, state) in store.entity(entity).items():
        _, name, start = split_key(key)
        if (feature is not None and name != feature) or name not in specs:
            continue
        spec = specs[name]
        if not state_fits(spec["agg"], state):
            raise damaged(store.url, f"the state of {show_key(key)}", not_a_state(spec["agg"], state))
        value = feature_value(spec["agg"], state)
        if start is None:
            rows.append(FeatureRow(name, value, event_time=state[0], version=version))
        else:
            end = window_end(start, spec["hop"] or spec["window"], spec["window"])
            rows.append(FeatureRow(name, value, start, end, watermark is not None and watermark >= end,
                                   version=version))
    rows.sort(key=lambda r: (r.feature, -(r.window_start or 0)))
    return EntityFeatures(entity, store.url, watermark, rows)


@dataclass(frozen=True)
class RepairReport:
    """Keys whose stored state differed from a recomputation from the source, and whether they were fixed."""

    source: str
    store: str
    compared: int
    differing: list[dict[str, Any]]
    fixed: bool
    dry_run: bool

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "store": self.store, "compared": self.compared,
                "differing": len(self.differing), "keys": self.differing, "fixed": self.fixed,
                "dry_run": self.dry_run}

    def __rich__(self) -> Any:
        lines = [f": {self.compared} keys compared, {len(self.differing)} differ"]
        for d in self.differing[:20]:
            where = _iso(d["window"]) or ""
            lines.append(f"  {d['entity']} {d['feature']} {where}: stored {d['stored']} "
                         f"-> expected {d['expected']}")
        if len(self.differing) > 20:
            lines.append(f"  ... and {len(self.differing) - 20} more (--json lists all)")
        if self.differing:
            lines.append("fixed" if self.fixed else "not fixed (--dry-run)")
        return bold_first(f"repair {self.store} from {self.source}", "\n".join(lines))


def recompute(config: IngestConfig, source: FileSource,
              partition: tuple[int, int] = (0, 1)) -> tuple[dict[str, tuple[int, list[Any]]], Engine]:
    """Replay a whole file through a fresh engine in memory: the state the store should hold."""
    rows, engine, _ = _replay(config, source, partition)
    return rows, engine


def _replay(config: IngestConfig, source: FileSource, partition: tuple[int, int]
            ) -> tuple[dict[str, tuple[int, list[Any]]], Engine, list[DeadLetter]]:
    """:func:`recompute`, with the dead letters of the whole file."""
    engine = Engine(config, partition=partition)
    dead: list[DeadLetter] = []
    for batch in source.batches(Checkpoint(), 10_000):
        dead += engine.process(batch, lambda keys: {}).dead_letters
    return {k: v for k, v in engine.cache.items() if v[1]}, engine, dead


def repair(config: IngestConfig, source: FileSource, store: FeatureStore, *, since: float | None = None,
           dry_run: bool = False, partition: tuple[int, int] = (0, 1),
           dead_letter: str | Path | None = None) -> RepairReport:
    """Recompute every feature from the source of truth and fix each key of ``store`` that differs.

    The fix is one atomic, forced commit of the differing keys, the dedup markers and a checkpoint at the
    end of the source, so a later ``run`` resumes after it; running repair twice finds nothing the second
    time. ``since`` (epoch seconds) limits the comparison to windows ending after it and ``last`` values
    newer than it, and keys that events past the store's checkpoint update (the checkpoint moves past them).
    The dead-letter file may not be the source or the SQLite store (:class:`~mlplat.errors.OutputError`).

    References
    ----------
    .. [1] T. Akidau et al., "The Dataflow Model", PVLDB 8(12), 2015 (recomputation from the source of
       truth as the batch half of a unified model).

    Examples
    --------
    >>> import os, tempfile
    >>> from mlplat.ingest import FileSource, IngestConfig, open_store
    >>> d = tempfile.mkdtemp(); src = os.path.join(d, "e.jsonl")
    >>> _ = open(src, "w").write('{"event_id": "a", "entity": "u", "event_time": 5}\\n')
    >>> cfg = IngestConfig(max_out_of_orderness=0, features=[{"name": "n", "agg": "count", "window": 60}])
    >>> report = repair(cfg, FileSource(src), open_store(f"sqlite:///{d}/f.db"), dead_letter=f"{d}/dl")
    >>> [(x["entity"], x["stored"], x["expected"]) for x in report.differing], report.fixed
    ([('u', None, [1])], True)
    """
    dl_path = _dead_letter_path(config, partition, dead_letter)
    _check_dead_letter_apart(dl_path, source, store)
    label = partition_label(partition)
    try:
        previous, readable = store.checkpoint(label), True
    except DataError:  # a damaged checkpoint: the fix below replaces it
        previous, readable = None, False
    # The checkpoint moves to the end of the source: every key an event past the committed one updates is
    # compared, ``since`` or not, or that event would be neither in the state nor read again. Which events a
    # damaged checkpoint had committed is unknown: then every key is.
    committed = previous.seq if previous is not None else 0
    expected_rows, engine, dead = _replay(config, source, partition)
    part, parts = partition
    # Only this partition's keys: another partition's are not in the recomputation, and would be deleted.
    actual_rows = {key: row for key, row in store.states().items()
                   if partition_of(key.split(SEP, 1)[0], parts) == part}
    windows = {f.name: (f.step, f.window) for f in config.features if f.window is not None}  # (step, length)

    def wanted(key: str) -> bool:
        stored = actual_rows.get(key)
        if since is None or (stored is not None and not isinstance(stored[1], list)):
            return True  # a damaged value (its raw text) is always compared, so that repair rewrites it
        row = expected_rows.get(key)
        if not readable or (row is not None and row[0] > committed):
            return True  # an event no run committed updates it (see above)
        _, name, start = split_key(key)
        if start is not None:
            if name not in windows:
                return True  # not a window of this config: compared, so that repair deletes it
            step, length = windows[name]
            return window_end(start, step, length) > since
        if not name:
            return True  # not a key mlplat writes: compared, so that repair deletes it
        states = [row[1] for row in (expected_rows.get(key), stored) if row]
        return any(isinstance(state, list) and state[0] >= since for state in states)

    expected = {k: v[1] for k, v in expected_rows.items() if wanted(k)}
    actual = {k: v[1] for k, v in actual_rows.items() if wanted(k)}
    keys = diff_states(expected, actual)
    differing = []
    for key in keys:
        entity, name, start = split_key(key)
        differing.append({"key": key, "entity": entity, "feature": name, "window": start,
                          "stored": actual.get(key), "expected": expected.get(key)})
    fixed = False
    if keys and not dry_run:
        if readable:
            # The checkpoint moves to the end of the source, past lines no run committed: their dead letters
            # are written here (this store's uncommitted ones cut first, as a run does), or no later run would.
            owner = _identity(store)
            with _dead_letter_file(dl_path, previous.dead_letter_size if previous else None, owner) as handle:
                size = _write_dead(handle, source.name, owner,
                                   [d for d in dead if d.line > committed])
        else:  # which letters a damaged checkpoint had counted is unknown: the file is left as it is
            size = dl_path.stat().st_size if dl_path.exists() else 0
        checkpoint = replace(engine.checkpoint, partition=label, dead_letter_size=size, source=source.identity)
        try:
            recorded = store.meta()
        except DataError:  # damaged definitions: this config's are all that can be recorded
            recorded = {}
        store.put_meta(_meta(config, partition[1], recorded))
        store.commit(Commit({k: expected_rows[k] for k in keys if k in expected_rows},
                            dict(engine.markers), checkpoint,
                            deletes=[k for k in keys if k not in expected_rows], force=True))
        fixed = True
    return RepairReport(source.name, store.url, len(set(expected) | set(actual)), differing, fixed, dry_run)
