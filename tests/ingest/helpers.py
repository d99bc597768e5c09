"""Small builders shared by the ingest tests."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from mlplat.ingest import Engine, IngestConfig, Record

COUNT_1M = [{"name": "n_1m", "agg": "count", "window": 60}]


def config(features: list[dict[str, Any]] | None = None, **kw: Any) -> IngestConfig:
    """A config with the given features (a 60 s count by default)."""
    kw.setdefault("max_out_of_orderness", 0)
    return IngestConfig(features=features or COUNT_1M, **kw)


def records(events: Iterable[dict[str, Any] | tuple[Any, ...]]) -> list[Record]:
    """Records numbered from line 1; a tuple ``(id, entity, time, amount)`` is turned into a payload."""
    out = []
    for line, event in enumerate(events, start=1):
        if isinstance(event, tuple):
            event = {"event_id": event[0], "entity": event[1], "event_time": event[2], "amount": event[3]}
        out.append(Record(line, f"{line}:0", line, event))
    return out


def run_engine(cfg: IngestConfig, events: Iterable[Any], batch: int = 1000) -> tuple[Engine, dict[str, int], list[Any]]:
    """Run events through a fresh in-memory engine in batches; returns it, the counts and dead letters."""
    engine = Engine(cfg)
    recs = records(events)
    counts: dict[str, int] = {}
    dead: list[Any] = []
    for start in range(0, len(recs), batch):
        outcome = engine.process(recs[start:start + batch], lambda keys: {})
        for name, value in outcome.counts.items():
            counts[name] = counts.get(name, 0) + value
        dead += outcome.dead_letters
    return engine, counts, dead


def state(engine: Engine) -> dict[str, list[Any]]:
    """The engine's state without versions or never-written keys."""
    return {k: v for k, (_, v) in engine.cache.items() if v}


def write_jsonl(path: Path, events: Iterable[dict[str, Any] | str]) -> Path:
    """Write events (dicts, or raw lines for malformed ones) as JSONL."""
    path.write_text("".join((e if isinstance(e, str) else json.dumps(e)) + "\n" for e in events), encoding="utf-8")
    return path


class CrashAt:
    """Mixin for a store class: die (KeyboardInterrupt, like a SIGKILL) at the n-th commit, before or after it."""

    crash_at = 0
    after = False
    commits = 0

    def armed(self, crash_at: int, after: bool) -> CrashAt:
        self.crash_at, self.after, self.commits = crash_at, after, 0
        return self

    def commit(self, commit: Any) -> None:
        self.commits += 1
        if self.commits == self.crash_at and not self.after:
            raise KeyboardInterrupt("crash before commit")
        super().commit(commit)  # type: ignore[misc]
        if self.commits == self.crash_at:
            raise KeyboardInterrupt("crash after commit")
