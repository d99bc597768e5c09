"""Crash testing: run the real CLI as a subprocess, SIGKILL it at random points, restart, compare."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlplat.errors import DataError
from mlplat.ingest._config import IngestConfig
from mlplat.ingest._engine import Event, compute_batch, diff_states, field_plan, future_reason, parse_event
from mlplat.ingest._sources import FileSource
from mlplat.ingest._stores import open_store

__all__ = ["VerifyReport", "perturb", "read_events", "verify"]


def read_events(source: FileSource, config: IngestConfig) -> list[tuple[Event, dict[str, Any]]]:
    """The valid events of a file with their payloads (malformed and future records are skipped)."""
    out = []
    plan = field_plan(config)
    for record in source.records():
        if record.payload is None:
            continue
        try:
            event = parse_event(record.payload, config, plan)
            if future_reason(record.payload, event.time, config) is not None:
                continue  # never applied by a run (rule 8), so not in the batch computation either
        except ValueError:
            continue
        out.append((event, dict(record.payload)))
    return out


def perturb(events: list[tuple[Event, dict[str, Any]]], bound: float, rng: Any,
            duplicate_share: float = 0.1) -> list[dict[str, Any]]:
    """A deduplicated, sorted stream re-ordered within ``bound`` and with some events repeated.

    Each copy arrives at ``time + u`` with ``u`` uniform in ``[0, bound)``; sorting by arrival means every
    event arrives before the stream's maximum time passes ``time + bound``, so nothing is late.
    """
    unique: dict[str, tuple[Event, dict[str, Any]]] = {}
    for event, payload in sorted(events, key=lambda ep: (ep[0].time, ep[0].event_id)):
        unique.setdefault(event.event_id, (event, payload))
    copies: list[tuple[float, int, dict[str, Any]]] = []
    for event, payload in unique.values():
        repeats = 1 + int(rng.random() < duplicate_share)
        for _ in range(repeats):
            copies.append((event.time + rng.random() * bound * 0.999, len(copies), payload))
    copies.sort(key=lambda c: (c[0], c[1]))
    return [payload for _, _, payload in copies]


@dataclass(frozen=True)
class VerifyReport:
    """How many crash-and-restart runs ended with exactly the batch computation's state."""

    runs: int
    identical: int
    killed: int
    seed: int
    events: int
    keys: int
    failures: list[dict[str, Any]]
    seconds: float

    @property
    def passed(self) -> bool:
        return self.identical == self.runs

    def to_dict(self) -> dict[str, Any]:
        return {"runs": self.runs, "identical": self.identical, "killed_mid_run": self.killed,
                "passed": self.passed, "seed": self.seed,
                "events": self.events, "keys": self.keys, "failures": self.failures, "seconds": self.seconds}

    def __rich__(self) -> Any:
        from rich.text import Text  # plain text: an example key with brackets is shown as written

        verdict = ("PASS", "green") if self.passed else ("FAIL", "red")
        lines = [f"{self.killed} of the {self.runs} processes were killed with SIGKILL mid-run, then restarted"]
        lines += [f"  run {f['run']}: {f['differing']} keys differ, e.g. {f['example']}" for f in self.failures]
        return Text.assemble(f"{self.identical}/{self.runs} runs identical to the batch computation ({self.events} "
                             f"events, {self.keys} keys, seed {self.seed}, {self.seconds:.1f} s): ", verdict,
                             "\n" + "\n".join(lines))


def _run_once(cmd: list[str], kill_after: int | None, rng: Any, timeout: float) -> bool:
    """Run ``cmd``; with ``kill_after``, SIGKILL it once it has committed that many batches (plus jitter).

    Returns whether the process was still running when the signal was sent (a real crash).
    """
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    deadline = time.monotonic() + timeout
    try:
        if kill_after is not None:
            seen = 0
            while seen < kill_after:
                line = proc.stderr.readline()
                if not line:
                    break
                seen += line.startswith("committed ")
            time.sleep(rng.random() * 0.004)  # land somewhere inside the next batch
            alive = proc.poll() is None
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
            return alive
        _, err = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
        if proc.returncode != 0:
            raise DataError(f"the pipeline subprocess failed (exit {proc.returncode}): {err.strip()[-500:]}")
        return False
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def verify(config_path: str | Path, config: IngestConfig, source: FileSource, store_url: str | None = None, *,
           crashes: int = 50, seed: int = 0, timeout: float = 120.0) -> VerifyReport:
    """Run the pipeline ``crashes`` times, each killed with SIGKILL at a random batch and restarted.

    Each run gets the source's events deduplicated, shuffled within ``max_out_of_orderness`` and with 10%
    repeated, ingests them into a cleared ``store_url`` through ``python -m mlplat ingest run``, and
    compares the final state with :func:`compute_batch` on the events. The store is a scratch store: it
    is cleared before every run. Without ``store_url`` it is a SQLite file in a temporary folder, removed
    at the end.

    References
    ----------
    .. [1] T. Akidau et al., "The Dataflow Model", PVLDB 8(12), 2015 (exactly-once as idempotent effect).
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    events = read_events(source, config)
    if not events:
        raise DataError(f"{source.name}: no valid events to verify with")
    reference = compute_batch([e for e, _ in events], config)
    failures = []
    killed = 0
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="mlplat-verify-") as tmp:
        stream, dead = Path(tmp) / "events.jsonl", Path(tmp) / "dead.jsonl"
        store_url = store_url or f"sqlite:///{Path(tmp) / 'verify.db'}"
        batch = max(1, len(events) // 20)
        for run in range(1, crashes + 1):
            payloads = perturb(events, config.max_out_of_orderness, rng)
            stream.write_text("".join(json.dumps(p) + "\n" for p in payloads), encoding="utf-8")
            dead.unlink(missing_ok=True)
            store = open_store(store_url)
            store.clear()
            store.close()
            cmd = [sys.executable, "-m", "mlplat", "ingest", "run", str(config_path), "--source", str(stream),
                   "--store", store_url, "--dead-letter", str(dead), "--batch-size", str(batch), "--trace"]
            batches = -(-len(payloads) // batch)
            killed += _run_once(cmd, int(rng.integers(0, batches)), rng, timeout)
            _run_once(cmd, None, rng, timeout)
            store = open_store(store_url)
            actual = {k: v for k, (_, v) in store.states().items()}
            store.close()
            diff = diff_states(reference, actual)
            if diff:
                failures.append({"run": run, "differing": len(diff), "example": diff[0].replace("\x1f", " ")})
    return VerifyReport(crashes, crashes - len(failures), killed, seed, len(events), len(reference), failures,
                        time.perf_counter() - started)


