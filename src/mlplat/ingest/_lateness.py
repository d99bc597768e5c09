"""How late events arrive, and which out-of-orderness / allowed lateness a dead-letter target needs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlplat.errors import DataError
from mlplat.ingest._engine import parse_time
from mlplat.ingest._pipeline import bold_first
from mlplat.ingest._sources import FileSource

__all__ = ["LatenessReport", "analyze_lateness"]

QUANTILES = (0.5, 0.9, 0.99, 0.999, 1.0)


@dataclass(frozen=True)
class LatenessReport:
    """The lateness distribution of a file and, per target share, the bound that meets it.

    ``behind`` is how far each event's time is behind the largest event time that arrived before it: an
    event is dead-lettered when ``behind`` exceeds ``max_out_of_orderness + allowed_lateness`` (exactly so
    for ``last`` features; for windowed ones it is conservative, since a window ends after its events).
    """

    source: str
    events: int
    lateness_quantiles: dict[str, float] | None
    behind_quantiles: dict[str, float]
    targets: list[dict[str, float]]
    behind: list[float]
    #: Events stamped after their own ingest time, the largest lead, and how many of them were left out as
    #: ``max_future`` refuses them (None when no event has an ingest time).
    ahead: dict[str, float] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "events": self.events, "lateness_quantiles": self.lateness_quantiles,
                "behind_quantiles": self.behind_quantiles, "targets": self.targets, "ahead": self.ahead}

    def summary(self) -> str:
        """The two distributions, one line each (without the per-target table)."""
        from mlplat.units import format_duration as fd

        lines = [f"lateness of {self.source} ({self.events:,} event{'' if self.events == 1 else 's'})"]
        if self.lateness_quantiles:
            lines.append("ingest_time - event_time: " + ", ".join(
                f"{k} {fd(v)}" for k, v in self.lateness_quantiles.items()))
        if self.ahead and self.ahead["events"]:
            count = int(self.ahead["events"])
            line = (f"stamped after their ingest time: {count:,} event{'s' if count > 1 else ''}, up to "
                    f"{fd(self.ahead['max'])} ahead; ")
            if self.ahead["left_out"]:
                line += f"{self.ahead['left_out']:,.0f} past max_future left out below, as a run refuses them"
            else:
                line += "--max-future leaves out those a run would refuse (one far ahead skews every figure below)"
            lines.append(line)
        lines.append("behind the max event time on arrival: " + ", ".join(
            f"{k} {fd(v)}" for k, v in self.behind_quantiles.items()))
        return "\n".join(lines)

    def __rich__(self) -> Any:
        from mlplat.units import format_duration as fd

        lines = [self.summary()]
        lines.append(f"  {'target':>8} {'ooo+lateness':>13} {'dead-lettered':>14} {'suggested ooo':>14} "
                     f"{'allowed lateness':>17} {'final after':>12}")
        for t in self.targets:
            lines.append(f"{t['target'] * 100:>7.3g}% {fd(t['bound']):>13} {t['dead_lettered'] * 100:>13.3g}% "
                         f"{fd(t['max_out_of_orderness']):>14} {fd(t['allowed_lateness']):>17} "
                         f"{fd(t['freshness']):>12}")
        head, newline, rest = "\n".join(lines).partition("\n")
        return bold_first(head, newline + rest)

    def plot(self, path: str | Path, *, force: bool = False) -> Path:
        """Histogram of ``behind`` with each target's bound (matplotlib, Agg); written atomically.

        An existing ``path`` is overwritten only with ``force``, as every mlplat output file is.
        """
        from mlplat.plots import pyplot, save_figure

        fig, ax = pyplot().subplots(figsize=(7, 4))
        ax.hist(self.behind, bins=60, color="#4477aa")
        for t in self.targets:
            ax.axvline(t["bound"], color="#cc3311", linestyle="--", label=f"{t['target'] * 100:g}%: {t['bound']:g} s")
        ax.set_xlabel("seconds behind the max event time on arrival")
        ax.set_ylabel("events")
        ax.set_yscale("log")
        ax.legend()
        return save_figure(fig, path, force=force, dpi=110, tight=True)


def analyze_lateness(source: FileSource, *, event_time: str = "event_time", ingest_time: str = "ingest_time",
                     targets: tuple[float, ...] = (0.001, 0.01), max_future: float | None = None) -> LatenessReport:
    """Lateness of the events in a file, in arrival order (``ingest_time`` order when every event has one).

    With ``max_future`` (seconds), an event stamped more than that after its own ingest time is left out,
    as the pipeline refuses it (rule 8): one such event would otherwise put every later one far behind.

    For each target share ``q`` the bound is the ``1 - q`` quantile of ``behind`` (so at most ``q`` of
    events exceed it). The suggested split keeps the watermark at the ``1 - 10 q`` quantile (results are
    final that long after a window ends) and covers the rest with allowed lateness, which updates windows
    in place after they were first final [1]_ [2]_.

    Parameters
    ----------
    source : FileSource
        The events, read in file order; records that are not JSON objects, or lack a readable event time,
        are skipped.
    event_time, ingest_time : str
        Field names of the event's own time and of the time it reached the pipeline (optional per event).
    targets : tuple of float
        Shares of events, each in (0, 1), that a bound may leave out (dead-lettered).
    max_future : float, optional
        Seconds an event may be stamped after its ingest time before the pipeline refuses it (rule 8).

    Returns
    -------
    LatenessReport
        Quantiles of ``ingest_time - event_time`` (None unless every event has an ingest time) and of
        ``behind``, and per target its bound and the suggested split into ``max_out_of_orderness`` and
        ``allowed_lateness``.

    Raises
    ------
    DataError
        If no event has a readable event time (or every one is refused by ``max_future``), or a target is
        outside (0, 1).

    References
    ----------
    .. [1] T. Akidau et al., "The Dataflow Model", PVLDB 8(12), 2015.
    .. [2] Apache Flink documentation, "Windows: Allowed Lateness".

    Examples
    --------
    >>> import os, tempfile
    >>> p = os.path.join(tempfile.mkdtemp(), "e.jsonl")
    >>> _ = open(p, "w").write("".join(f'{{"event_time": {t}}}\\n' for t in [0, 10, 5, 20, 19]))
    >>> analyze_lateness(FileSource(p), targets=(0.25,)).targets[0]["bound"]
    1.0
    """
    import numpy as np

    times, ingests = [], []
    leads = left_out = 0
    max_lead = 0.0
    for record in source.records():
        if record.payload is None:
            continue
        try:  # parse_time raises ValueError on a missing (None) or blank time, as on any unreadable one
            when = parse_time(record.payload.get(event_time))
        except ValueError:
            continue
        raw = record.payload.get(ingest_time)
        try:
            arrived = parse_time(raw) if raw not in (None, "") else None
        except ValueError:
            arrived = None  # the event still counts for out-of-orderness; ingest lateness needs every time
        if arrived is not None and when > arrived:
            leads += 1
            max_lead = max(max_lead, when - arrived)
            if max_future is not None and when - arrived > max_future:
                left_out += 1
                continue
        # Appended together, so times[i] and ingests[i] are always the same event.
        times.append(when)
        ingests.append(arrived)
    if not times:
        if left_out:
            raise DataError(f"{source.name}: every event is stamped more than max_future ({max_future:g} s) after "
                            f"its `{ingest_time}`")
        raise DataError(f"{source.name}: no events with a readable `{event_time}`")
    t = np.asarray(times)
    have_ingest = all(i is not None for i in ingests)
    lateness = None
    ahead = ({"events": leads, "max": max_lead, "left_out": left_out}
             if left_out or any(i is not None for i in ingests) else None)
    if have_ingest:
        ing = np.asarray(ingests, dtype=float)
        order = np.argsort(ing, kind="stable")
        t, ing = t[order], ing[order]
        lateness = {f"p{q * 100:g}" if q < 1 else "max": float(np.quantile(ing - t, q)) for q in QUANTILES}
    running = np.maximum.accumulate(t)
    before = np.concatenate(([-np.inf], running[:-1]))
    behind = np.clip(before - t, 0, None)
    rows = []
    for q in targets:
        if not 0 < q < 1:
            raise DataError(f"a target share must be in (0, 1), got {q}")
        bound = float(np.quantile(behind, 1 - q, method="higher"))
        ooo = min(bound, float(np.quantile(behind, max(0.0, 1 - 10 * q), method="higher")))
        rows.append({"target": q, "bound": bound, "dead_lettered": float(np.mean(behind > bound)),
                     "max_out_of_orderness": ooo, "allowed_lateness": bound - ooo, "freshness": ooo})
    behind_q = {f"p{q * 100:g}" if q < 1 else "max": float(np.quantile(behind, q)) for q in QUANTILES}
    return LatenessReport(source.name, len(times), lateness, behind_q, rows, behind.tolist(), ahead)
