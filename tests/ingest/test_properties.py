"""Property tests: bounded disorder and duplicates give the sorted, deduplicated state; crashes change nothing."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from tests.ingest.helpers import CrashAt, run_engine, state, write_jsonl
from tests.strategies import INGEST_FEATURES, bounded_streams

from mlplat.ingest import (
    FileSource,
    IngestConfig,
    SQLiteStore,
    compute_batch,
    diff_states,
    parse_event,
    run_pipeline,
)


def _config(bound: int, lateness: int = 0, batch: int = 1000) -> IngestConfig:
    return IngestConfig(max_out_of_orderness=bound, allowed_lateness=lateness, batch_size=batch,
                        features=INGEST_FEATURES)


@settings(max_examples=60, deadline=None)
@given(bounded_streams(), st.integers(1, 9), st.sampled_from([0, 15]))
def test_bounded_disorder_equals_sorted_deduplicated(stream: tuple[int, list[dict[str, Any]]], batch: int,
                                                     lateness: int) -> None:
    """Any arrival order within the bound, any duplicates, any batch size: the batch computation's state."""
    bound, events = stream
    cfg = _config(bound, lateness)
    engine, counts, _ = run_engine(cfg, events, batch=batch)
    assert counts["late"] == 0
    assert counts["applied"] == len({e["event_id"] for e in events})
    reference = compute_batch([parse_event(e, cfg) for e in events], cfg)
    assert diff_states(reference, state(engine)) == []


class CrashingStore(CrashAt, SQLiteStore):
    """SQLite store that dies at its n-th commit."""


def ingest(cfg: IngestConfig, source: Path, db: Path, dead: Path, crash: tuple[int, bool] | None = None) -> None:
    """Run the pipeline into ``db``; with ``crash``, die at that commit and then restart once."""
    if crash is not None:
        store = CrashingStore(db).armed(*crash)
        try:
            run_pipeline(cfg, FileSource(source), store, dead_letter=dead)
        except KeyboardInterrupt:
            pass
        store.close()
    store = SQLiteStore(db)
    run_pipeline(cfg, FileSource(source), store, dead_letter=dead)
    store.close()


@settings(max_examples=40, deadline=None)
@given(bounded_streams(), st.integers(1, 6), st.integers(1, 30), st.booleans(), st.integers(0, 3))
def test_crash_and_restart_equals_uncrashed(stream: tuple[int, list[dict[str, Any]]], batch: int, crash_at: int,
                                            after: bool, shift: int) -> None:
    """A crash at any commit (before or after it lands) then a restart gives the uncrashed state and dead
    letters, byte for byte, including late and malformed events."""
    bound, events = stream
    cfg = _config(max(0, bound - shift * 5), 5, batch)  # a tighter bound than the stream's makes late events
    lines: list[Any] = list(events)
    lines.insert(len(lines) // 2, '{"event_id": "bad"')
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        source = write_jsonl(d / "events.jsonl", lines)
        ingest(cfg, source, d / "clean.db", d / "clean.dl")
        ingest(cfg, source, d / "crash.db", d / "crash.dl", crash=(crash_at, after))
        clean, crashed = SQLiteStore(d / "clean.db"), SQLiteStore(d / "crash.db")
        assert crashed.states() == clean.states()
        assert crashed.checkpoint("0/1") == clean.checkpoint("0/1")
        clean.close()
        crashed.close()
        assert _letters(d / "crash.dl", d / "crash.db") == _letters(d / "clean.dl", d / "clean.db")


def _letters(path: Path, db: Path) -> list[dict[str, Any]]:
    """The dead letters in ``path``, each checked to name the store ``db`` and then without that name."""
    letters = [json.loads(line) for line in path.read_text().splitlines()]
    assert all(letter.pop("store") == f"sqlite:///{db.resolve()}" for letter in letters)
    return letters
