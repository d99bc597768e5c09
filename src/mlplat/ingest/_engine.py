"""The event-time core: parse events, advance the watermark, drop duplicates, dead-letter late events,
and fold the rest into versioned feature state. Pure Python; stores and sources live elsewhere.

Every decision depends only on the events before it in arrival order (never on micro-batch boundaries),
so a run that crashes and resumes from its checkpoint decides exactly as an uncrashed run does.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from fractions import Fraction
from typing import Any, NamedTuple

from mlplat.errors import DataError
from mlplat.ingest._config import IngestConfig
from mlplat.units import MAX_EPOCH, MIN_EPOCH, format_duration, format_exact

__all__ = ["Checkpoint", "Commit", "DeadLetter", "Engine", "Event", "Record", "compute_batch",
           "diff_states", "feature_value", "future_reason", "parse_event", "parse_time", "partition_of",
           "split_key"]

SEP = "\x1f"  # separates entity, feature and window start in a state key; not valid in names
NUMERIC = frozenset({"sum", "mean", "min", "max"})
# Numeric feature values must lie within +-VALUE_LIMIT: a window's sum of them cannot overflow to inf (which
# would also be unreadable JSON in the store), and an integer too large for a float cannot reach the mean.
VALUE_LIMIT = 1e150


class Record(NamedTuple):
    """One raw record from a source: its sequence number, resume cursor, line and payload or parse error."""

    seq: int
    cursor: str
    line: int
    payload: Mapping[str, Any] | None
    error: str | None = None
    raw: str = ""


class Event(NamedTuple):
    """A valid event: id, entity, event time (epoch seconds) and the values of the fields features use."""

    event_id: str
    entity: str
    time: float
    values: tuple[Any, ...]


@dataclass(frozen=True)
class DeadLetter:
    """A record that was not applied, with the line it came from and why."""

    line: int
    reason: str
    kind: str  # "late", "malformed" or "future"
    record: Any

    def to_dict(self) -> dict[str, Any]:
        return {"line": self.line, "kind": self.kind, "reason": self.reason, "record": self.record}


#: How a Redis stream source names itself (``Source.identity``, kept in a checkpoint's ``source``), before
#: "<stream> in db <n>"; a file source's identity is its path.
STREAM_SOURCE = "redis stream "


@dataclass(frozen=True)
class Checkpoint:
    """What a store keeps per partition, committed with the state: where to resume and the watermark."""

    partition: str = "0/1"
    seq: int = 0
    cursor: str = ""
    max_time: float | None = None
    dead_letter_size: int = 0
    source: str = ""  # what seq and cursor count in (Source.identity); "" before a run records it

    def to_dict(self) -> dict[str, Any]:
        return {"partition": self.partition, "source": self.source, "seq": self.seq, "cursor": self.cursor,
                "max_time": self.max_time, "dead_letter_size": self.dead_letter_size}


@dataclass
class Commit:
    """One micro-batch's effect, applied by a store atomically.

    ``states`` maps a state key to ``(version, value)``; a store writes it only if ``version`` is greater
    than the stored one (compare-and-set), unless ``force`` (repair). ``markers`` are new dedup markers
    (event id to event time); markers older than ``forget_before`` may be deleted.
    """

    states: dict[str, tuple[int, list[Any]]]
    markers: dict[str, float]
    checkpoint: Checkpoint
    forget_before: float | None = None
    deletes: list[str] = field(default_factory=list)
    force: bool = False


def parse_time(value: Any) -> float:
    """Epoch seconds from a number, a numeric string, or an ISO 8601 string (naive means UTC).

    Examples
    --------
    >>> parse_time(1700000000), parse_time("60.5"), parse_time("1970-01-01T00:01:00Z")
    (1700000000.0, 60.5, 60.0)
    """
    if isinstance(value, bool) or value is None:
        raise ValueError(f"expected a time, got {value!r}")
    if isinstance(value, int | float):
        try:
            seconds = float(value)
        except OverflowError:  # an integer of hundreds of digits
            raise ValueError(f"expected a time in the years 1 to 9999 (UTC), got {value!r:.40}") from None
    else:
        text = str(value).strip()
        try:
            seconds = float(text)
        except ValueError:
            try:
                stamp = dt.datetime.fromisoformat(text)
            except ValueError:
                raise ValueError(f"expected epoch seconds or ISO 8601, got {value!r}") from None
            if stamp.tzinfo is None:
                stamp = stamp.replace(tzinfo=dt.UTC)
            seconds = stamp.timestamp()
    if not math.isfinite(seconds):
        raise ValueError(f"expected a finite time, got {value!r}")
    # Outside the dates (the years 1 to 9999) is malformed: one such event would otherwise become the
    # watermark, past every date (and past what a report can print).
    if not MIN_EPOCH <= seconds < MAX_EPOCH:
        raise ValueError(f"expected a time in the years 1 to 9999 (UTC), got {value!r}")
    return seconds


def _number(value: Any) -> float | int:
    """A numeric feature's value: a number, or a string of one, within +-VALUE_LIMIT (NaN is not)."""
    if isinstance(value, bool):
        raise ValueError
    if not isinstance(value, int | float):
        text = str(value).strip()
        try:
            value = int(text)
        except ValueError:
            value = float(text)
    if not -VALUE_LIMIT <= value <= VALUE_LIMIT:
        raise ValueError
    return value


_new_event = tuple.__new__


def field_plan(config: IngestConfig) -> list[tuple[str | None, bool, str]]:
    """``(field, numeric, feature name)`` per feature, in order: what :func:`parse_event` reads."""
    return [(f.field, f.agg in NUMERIC, f.name) for f in config.features]


def parse_event(payload: Mapping[str, Any], config: IngestConfig,
                plan: list[tuple[str | None, bool, str]] | None = None) -> Event:
    """Validate one payload into an :class:`Event`; raise :class:`ValueError` with the reason if malformed.

    ``plan`` is :func:`field_plan` of ``config``, computed once by callers that parse many events.
    """
    get = payload.get
    event_id = get(config.event_id)
    if event_id is None or event_id == "":
        raise ValueError(f"missing `{config.event_id}`")
    entity = get(config.entity)
    if entity is None or entity == "":
        raise ValueError(f"missing `{config.entity}`")
    raw_time = get(config.event_time)
    kind = type(raw_time)
    if (kind is float or kind is int) and MIN_EPOCH <= raw_time < MAX_EPOCH:  # type: ignore[operator]  # a date
        time = float(raw_time)  # type: ignore[arg-type]
    elif raw_time is None or raw_time == "":
        raise ValueError(f"missing `{config.event_time}`")
    else:
        try:
            time = parse_time(raw_time)
        except ValueError as exc:
            raise ValueError(f"`{config.event_time}`: {exc}") from None
    values: list[Any] = []
    for field_name, numeric, name in plan or field_plan(config):
        if field_name is None:
            values.append(None)
            continue
        value = get(field_name)
        if value == "":
            value = None
        elif value is not None and numeric and not (
                (type(value) is int or type(value) is float) and -VALUE_LIMIT <= value <= VALUE_LIMIT):
            try:
                value = _number(value)
            except ValueError:
                raise ValueError(f"`{field_name}` must be a finite number within ±1e150 (VALUE_LIMIT) for {name}, "
                                 f"got {value!r}") from None
        values.append(value)
    entity = entity if type(entity) is str else str(entity)
    if SEP in entity:
        raise ValueError(f"`{config.entity}` must not contain the unit separator \\x1f (it splits state keys)")
    # tuple.__new__ directly: a NamedTuple's generated __new__ is a Python call, measurable per event.
    return _new_event(Event, (event_id if type(event_id) is str else str(event_id), entity, time, tuple(values)))


def future_reason(payload: Mapping[str, Any], time: float, config: IngestConfig) -> str | None:
    """Why an event stamped more than ``max_future`` after its own ingest time is refused (rule 8), or None.

    Raises :class:`ValueError` (the event is malformed) when the ingest time is there but unreadable.

    >>> from mlplat.ingest import IngestConfig
    >>> cfg = IngestConfig(max_out_of_orderness=0, max_future="5m", features=[{"name": "n", "agg": "count",
    ...                                                                        "window": 60}])
    >>> future_reason({"ingest_time": 1000}, 1200, cfg) is None, future_reason({}, 9e9, cfg) is None
    (True, True)
    >>> future_reason({"ingest_time": 1000}, 8200, cfg)
    'future: event time 8200 is 2h after ingest time 1000 (max_future 5m)'
    """
    if config.max_future is None:
        return None
    raw = payload.get(config.ingest_time)
    if raw is None or raw == "":
        return None  # nothing to compare with: not checked
    try:
        ingest = parse_time(raw)
    except ValueError as exc:
        raise ValueError(f"`{config.ingest_time}`: {exc}") from None
    if time - ingest <= config.max_future:
        return None
    return (f"future: event time {format_exact(time)} is {format_duration(time - ingest)} after ingest time "
            f"{format_exact(ingest)} (max_future {format_duration(config.max_future)})")


def partition_label(partition: tuple[int, int]) -> str:
    """How a checkpoint names partition ``(index, count)``: ``"0/1"``."""
    return f"{partition[0]}/{partition[1]}"


def partition_of(entity: str, count: int) -> int:
    """The partition (of ``count``) that owns ``entity``: a stable CRC32 hash, the same in every process."""
    return zlib.crc32(entity.encode("utf-8")) % count if count > 1 else 0


def split_key(key: str) -> tuple[str, str, float | None]:
    """``(entity, feature, window start or None)`` of a state key.

    A key mlplat does not write (a field another program put in an entity's Redis hash) has feature ``""``,
    which names no feature: read skips it, and repair, which expects nothing there, deletes it.
    """
    parts = key.split(SEP)
    if len(parts) == 3:
        entity, feature, start = parts
        try:
            return entity, feature, (float(start) if start else None)
        except ValueError:
            pass
    return parts[0], "", None


def window_start(k: int, step: float) -> float:
    """The start of the k-th window of ``step`` seconds: ``k * step`` with ``step`` read as written.

    ``step`` is taken as the decimal it was written as (0.1 is a tenth, not the float a little over it), and
    k tenths is then rounded once, to the float nearest to it: 3 x 0.3 is 0.9 here (0.8999999999999999 as
    floats), and at epoch times, where floats are 2.4e-7 apart, the start is the float a user's event time
    at that instant parses to. Every key and bound goes through this one function, so two events always
    name a window by the same number. Integral steps (the usual case) are exact as they are.

    >>> window_start(3, 0.3), window_start(17672256003, 0.1), window_start(3, 60)
    (0.9, 1767225600.3, 180)
    """
    if type(step) is int:
        return k * step
    numerator, denominator = _exact(step)
    return k * numerator / denominator  # int / int: correctly rounded


@functools.lru_cache(maxsize=64)
def _exact(step: float) -> tuple[int, int]:
    """``step`` as the fraction of the decimal it prints as (0.1 -> 1/10)."""
    return Fraction(repr(step)).as_integer_ratio()


def forget_before(watermark: float, ttl: float) -> float:
    """A dedup marker whose time is below this has expired (``time + ttl < watermark``) however it rounds.

    ``watermark - ttl`` alone is a rounding away from the rule: at ttl 0.3 and watermark 0.4 it is
    0.10000000000000003, so a marker at 0.1 (0.1 + 0.3 >= 0.4: still live) was deleted, and one batch size
    or a restart made its repeat "late" where another made it a duplicate. A few ulps lower keeps such a
    marker; keeping an expired one changes nothing, as the decision tests ``time + ttl >= watermark``.

    >>> forget_before(0.4, 0.3) < 0.1 < 0.4 - 0.3
    True
    """
    return watermark - ttl - 4 * math.ulp(max(abs(watermark), abs(ttl)))


def window_end(start: float, step: float, length: float) -> float:
    """The end of the window of ``length`` seconds (a whole number of ``step``) that starts at ``start``.

    The start that many steps later, rounded once like every start: ``start + length`` in floats is not
    (0.2 + 0.1 is 0.30000000000000004, and ``read`` called a window open that the engine had closed).

    >>> window_end(0.2, 0.1, 0.1), window_end(120, 60, 180)
    (0.3, 300)
    """
    return window_start(window_index(start, step) + round(length / step), step)


def window_index(time: float, step: float) -> int:
    """The k with ``window_start(k) <= time < window_start(k + 1)``.

    ``(time // step) * step`` alone puts a whole second into the window before it where ``step`` is not a
    binary fraction: 0.1 is a little over a tenth, so 1767225600 // 0.1 is 17672255999. For integral
    steps (the usual case, kept as ints by the config) it is exact, and the engine uses it directly.

    >>> window_start(window_index(1767225600, 0.1), 0.1), window_index(59.9, 60), window_index(60, 60)
    (1767225600.0, 0, 1)
    """
    k = int(time // step)
    while window_start(k, step) > time:
        k -= 1
    while window_start(k + 1, step) <= time:
        k += 1
    return k


def show_key(key: str) -> str:
    """A state key as a user reads it: entity, feature and window start apart."""
    return repr(key.replace(SEP, " "))


def state_fits(agg: str, state: Any) -> bool:
    """Whether ``state`` has the form mlplat writes for ``agg``: a damaged store may hold any JSON.

    >>> state_fits("last", [60.0, "e1", "a"]), state_fits("mean", [4]), state_fits("count", ["4"])
    (True, False, False)
    """
    if type(state) is not list or len(state) != {"count": 1, "last": 3}.get(agg, 2):
        return False
    numbers = state[:1] if agg == "last" else state  # last: [time, event id, any value]
    return all(isinstance(x, int | float) and not isinstance(x, bool) for x in numbers) and (
        agg != "last" or isinstance(state[1], str))


def not_a_state(agg: str, state: Any) -> str:
    """How a message says that ``state`` is not of ``agg``'s form."""
    return f"not a {agg} state: {str(state)[:80]}"


class StoredStateError(DataError):
    """A state fetched from the store that is not of its feature's form (the pipeline names the store)."""

    def __init__(self, key: str, agg: str, state: Any) -> None:
        self.key, self.detail = key, not_a_state(agg, state)
        super().__init__(f"the stored state of {show_key(key)} is {self.detail}")


def feature_value(agg: str, state: list[Any]) -> Any:
    """The served value of a state list: the last value, a count, a sum, a mean, a min or a max.

    >>> feature_value("mean", [4, 10]), feature_value("last", [60.0, "e1", "a"])
    (2.5, 'a')
    """
    if agg == "last":
        return state[2]
    if agg == "count":
        return state[0]
    if agg == "mean":
        return state[1] / state[0] if state[0] else None
    return state[1]


def _fold(agg: str, state: list[Any] | None, time: float, event_id: str, value: Any) -> list[Any]:
    """Fold one event into one state (a new list; states are never shared between keys)."""
    if agg == "last":
        if state is None or time > state[0] or (time == state[0] and event_id > state[1]):
            return [time, event_id, value]
        return state
    if state is None:
        return [1] if agg == "count" else [1, value]
    if agg == "count":
        return [state[0] + 1]
    if agg in ("sum", "mean"):
        return [state[0] + 1, state[1] + value]
    if agg == "min":
        return [state[0] + 1, min(state[1], value)]
    return [state[0] + 1, max(state[1], value)]


class Engine:
    """Watermark, dedup, lateness and state folding for one partition.

    Parameters
    ----------
    config : IngestConfig
        Features and the lateness policy.
    checkpoint : Checkpoint
        Where the previous run stopped (its ``max_time`` restores the watermark).
    markers : dict
        Event id to event time of the events already applied (loaded from the store).
    partition : tuple of int
        ``(i, n)``: this engine applies only entities whose hash is ``i`` modulo ``n``.

    Notes
    -----
    The watermark is the largest event time seen minus ``max_out_of_orderness`` and advances after each
    event, as in Flink's bounded-out-of-orderness generator [2]_. An event is late when the horizon
    (watermark - ``allowed_lateness``) has passed the earliest-ending window that contains it (the instant
    of the event itself when no feature is windowed). The window model is the Dataflow model's [1]_.

    References
    ----------
    .. [1] T. Akidau et al., "The Dataflow Model: A Practical Approach to Balancing Correctness, Latency,
       and Cost in Massive-Scale, Unbounded, Out-of-Order Data Processing", PVLDB 8(12), 2015.
    .. [2] Apache Flink documentation, "Generating Watermarks" and "Windows: Allowed Lateness".

    Examples
    --------
    >>> from mlplat.ingest import IngestConfig
    >>> cfg = IngestConfig(max_out_of_orderness=30, allowed_lateness=20,
    ...                    features=[{"name": "n_1m", "agg": "count", "window": 60}])
    >>> engine = Engine(cfg)
    >>> recs = [Record(i + 1, str(i + 1), i + 1, {"event_id": f"e{i}", "entity": "u", "event_time": t})
    ...         for i, t in enumerate([10, 130, 20])]
    >>> out = engine.process(recs, lambda keys: {})
    >>> out.counts["applied"], out.counts["late"], out.dead_letters[0].reason
    (2, 1, 'late: window [0, 60) closed at horizon 80 (watermark 100 - allowed lateness 20)')
    """

    def __init__(self, config: IngestConfig, checkpoint: Checkpoint | None = None,
                 markers: Mapping[str, float] | None = None, partition: tuple[int, int] = (0, 1)) -> None:
        self.config = config
        self.checkpoint = checkpoint or Checkpoint(partition=partition_label(partition))
        self.max_time = -math.inf if self.checkpoint.max_time is None else self.checkpoint.max_time
        self.markers: dict[str, float] = dict(markers or {})
        # Marker ids grouped by the batch that added them, with that batch's latest marker time, so pruning
        # visits only the groups that expired instead of rebuilding the whole dict.
        self._marker_groups: list[tuple[float, list[str]]] = (
            [(max(self.markers.values()), list(self.markers))] if self.markers else [])
        self.partition = partition
        self.ttl = config.effective_dedup_ttl
        self.cache: dict[str, tuple[int, list[Any]]] = {}
        self._steps: list[tuple[float, float]] = sorted({(s.step, s.window) for s in config.features
                                                         if s.window is not None})
        self._pruned_at = -math.inf
        self._fields = field_plan(config)
        # What the inline parse in `process` reads: each feature's field (None for none) and the numeric ones.
        self._getters = tuple(f.field for f in config.features)
        self._numeric = tuple(i for i, (name, numeric, _) in enumerate(self._fields) if name and numeric)
        self._starts: dict[float, str] = {}
        self._plan = [(f"{SEP}{f.name}{SEP}", f.agg, f.field is not None, f.window, f.step if f.window else None,
                       round(f.window / f.step) if f.window else 0) for f in config.features]

    @property
    def watermark(self) -> float:
        """Largest event time seen minus ``max_out_of_orderness`` (``-inf`` before any event)."""
        return self.max_time - self.config.max_out_of_orderness

    def _late_reason(self, time: float, watermark: float) -> str | None:
        horizon = watermark - self.config.allowed_lateness
        why = (f"horizon {format_exact(horizon)} (watermark {format_exact(watermark)} - allowed lateness "
               f"{format_exact(self.config.allowed_lateness)})")
        if not self._steps:
            if horizon > time:
                return f"late: event time {format_exact(time)} is before {why}"
            return None
        # The earliest-ending window holding the event ends at the next multiple of the smallest step.
        k, step, length = min(((window_index(time, step) + 1, step, length) for step, length in self._steps),
                              key=lambda found: window_start(found[0], found[1]))
        end = window_start(k, step)
        if horizon >= end:
            start = window_start(k - round(length / step), step)
            return f"late: window [{format_exact(start)}, {format_exact(end)}) closed at {why}"
        return None

    def process(self, records: Iterable[Record],
                fetch: Callable[[set[str]], Mapping[str, tuple[int, list[Any]]]]) -> BatchOutcome:
        """Decide every record of one micro-batch in order and fold the applied ones into state.

        ``fetch(keys)`` returns the stored ``(version, state)`` of keys this engine has not cached yet.
        """
        dead: list[DeadLetter] = []
        applied = 0
        starts = self._starts
        # Every key an applied event updates, in arrival order, folded after one fetch of the keys not
        # cached yet (so each key still sees its events in order, and the store gets one round trip).
        pending: list[tuple[int, float, str, str, str, Any]] = []
        new_markers: dict[str, float] = {}
        config, markers, ttl = self.config, self.markers, self.ttl
        part, parts = self.partition
        record: Record | None = None
        # Every window holding an event ends after it, so an event at or after the horizon is on time.
        lateness, ooo = config.allowed_lateness, config.max_out_of_orderness
        low, high = MIN_EPOCH, MAX_EPOCH  # locals: read per event
        id_name, entity_name, time_name = config.event_id, config.entity, config.event_time
        fields, getters, numeric = self._fields, self._getters, self._numeric
        limit = VALUE_LIMIT
        plan: list[tuple[str, str, bool, Any, Any, int]] = self._plan  # type: ignore[assignment]
        max_time = self.max_time
        check_future = config.max_future is not None
        malformed = duplicates = late = future = other = 0
        event_id: Any
        entity: Any
        time: Any
        for record in records:
            payload = record.payload
            if payload is None:
                if part == 0:
                    malformed += 1
                    dead.append(DeadLetter(record.line, f"malformed: {record.error}", "malformed", record.raw))
                continue
            # parse_event, with the usual shapes accepted inline (a call per event is measurable): ids and
            # entities that are non-empty strings, numeric times in [low, high), values not blank (and
            # numbers within +-VALUE_LIMIT for numeric features) are exactly what parse_event would return.
            get = payload.get
            event_id, entity, time = get(id_name), get(entity_name), get(time_name)
            values = tuple(map(get, getters))  # type: ignore[arg-type]  # get(None) is None: keys are str
            usual = (type(event_id) is str and event_id != "" and type(entity) is str and entity != ""
                     and (type(time) is float or type(time) is int) and low <= time < high
                     and SEP not in entity and "" not in values)
            for i in numeric if usual else ():
                value = values[i]
                if value is not None and not ((type(value) is int or type(value) is float)
                                              and -limit <= value <= limit):
                    usual = False
                    break
            if usual:
                time = float(time)
            else:
                try:
                    event_id, entity, time, values = parse_event(payload, config, fields)
                except ValueError as exc:
                    if part == 0:
                        malformed += 1
                        dead.append(DeadLetter(record.line, f"malformed: {exc}", "malformed", dict(payload)))
                    continue
            if check_future:
                # Before the watermark moves: a time far ahead of its ingest time would make every later
                # event late. Like a malformed record, it is counted by one partition only.
                try:
                    reason, kind = future_reason(payload, time, config), "future"
                except ValueError as exc:
                    reason, kind = f"malformed: {exc}", "malformed"
                if reason is not None:
                    if part == 0:
                        if kind == "future":
                            future += 1
                        else:
                            malformed += 1
                        dead.append(DeadLetter(record.line, reason, kind, dict(payload)))
                    continue
            watermark = max_time - ooo
            if time > max_time:
                max_time = time
            if parts > 1 and partition_of(entity, parts) != part:
                other += 1
                continue
            seen = markers.get(event_id)
            if seen is not None and seen + ttl >= watermark:
                duplicates += 1
                continue
            if time < watermark - lateness:  # cheap pre-check; the rule itself is in _late_reason
                reason = self._late_reason(time, watermark)
                if reason is not None:
                    late += 1
                    dead.append(DeadLetter(record.line, reason, "late", dict(payload)))
                    continue
            markers[event_id] = new_markers[event_id] = time
            applied += 1
            seq = record.seq
            # The keys of keys_of, built inline for no window and one tumbling window (the usual shapes).
            for (name, agg, has_field, window, step, count), value in zip(plan, values, strict=True):
                if has_field and value is None:
                    continue  # a feature ignores events without its field
                if window is None:
                    key = entity + name
                elif count == 1:
                    last = ((time // step) * step if type(step) is int else
                            window_start(window_index(time, step), step))
                    text = starts.get(last)
                    if text is None:
                        text = starts[last] = format_exact(last)
                    key = entity + name + text
                else:  # hopping: several windows hold the event
                    for key in _hop_keys(entity + name, time, step, count):
                        pending.append((seq, time, event_id, key, agg, value))
                    continue
                pending.append((seq, time, event_id, key, agg, value))
        self.max_time = max_time
        dirty = self._fold_pending(pending, fetch)
        counts = {"read": applied + duplicates + late + malformed + future, "applied": applied,
                  "duplicates": duplicates, "late": late, "malformed": malformed, "future": future,
                  "other_partition": other}
        if record is not None:
            self.checkpoint = replace(self.checkpoint, seq=record.seq, cursor=record.cursor,
                                      max_time=None if self.max_time == -math.inf else self.max_time)
        if new_markers:
            self._marker_groups.append((max(new_markers.values()), list(new_markers)))
        return BatchOutcome(counts, dead, Commit(dirty, new_markers, self.checkpoint, self._prune_markers()))

    def _fold_pending(self, pending: list[tuple[int, float, str, str, str, Any]],
                      fetch: Callable[[set[str]], Mapping[str, tuple[int, list[Any]]]]
                      ) -> dict[str, tuple[int, list[Any]]]:
        """Fold the batch's applied events ``(seq, time, event_id, key, agg, value)`` into the cached state,
        after one fetch of the keys not cached yet; return the keys changed, with their new version and state."""
        cache = self.cache
        dirty: dict[str, tuple[int, list[Any]]] = {}
        missing = {item[3] for item in pending if item[3] not in cache}
        if missing:
            found = fetch(missing)
            for key in missing:
                cache[key] = found.get(key, (0, []))
        try:
            for seq, time, event_id, key, agg, value in pending:
                version, state = cache[key]
                if seq <= version:
                    continue  # already in the stored state: replaying a suffix changes nothing
                if agg == "count":  # the commonest features, folded inline
                    state = [state[0] + 1] if state else [1]
                elif agg == "last":  # an older event leaves the value; the version moves on either way
                    if not state or time > state[0] or (time == state[0] and event_id > state[1]):
                        state = [time, event_id, value]
                else:
                    state = _fold(agg, state or None, time, event_id, value)
                cache[key] = dirty[key] = (seq, state)
        except (IndexError, TypeError, ValueError):
            # Checked only on failure, so the usual path pays nothing: a damaged stored state is the
            # user's to repair; anything else is a bug and goes on as it is.
            if state and not state_fits(agg, state):
                raise StoredStateError(key, agg, state) from None
            raise
        return dirty

    def _prune_markers(self) -> float | None:
        """Forget dedup markers that can no longer match, every ``ttl / 8`` of watermark; the cut, or None."""
        ttl, markers = self.ttl, self.markers
        if not (self.watermark - self._pruned_at > ttl / 8 and math.isfinite(self.watermark)):
            return None
        # Forgetting is an optimisation only: a marker counts while time + ttl >= watermark, whether or
        # not it has been deleted, so pruning at batch boundaries cannot change any decision (nor can
        # keeping an expired marker whose group still holds a live one).
        forget = forget_before(self.watermark, ttl)
        kept = []
        for group in self._marker_groups:
            if group[0] >= forget:
                kept.append(group)
                continue
            for event_id in group[1]:
                if markers.get(event_id, forget) < forget:  # not re-added by a later batch
                    del markers[event_id]
        self._marker_groups = kept
        self._pruned_at = self.watermark
        return forget

    def keys_of(self, event: Event) -> list[tuple[str, str, Any]]:
        """The state keys one event updates, with the feature's aggregate and the event's value for it."""
        out = []
        entity, time = event.entity, event.time
        plan: list[tuple[str, str, bool, Any, Any, int]] = self._plan  # type: ignore[assignment]
        for (name, agg, has_field, window, step, count), value in zip(plan, event.values, strict=True):
            if has_field and value is None:
                continue
            if window is None:
                out.append((entity + name, agg, value))  # name is "\x1fname\x1f"
            else:
                out += ((key, agg, value) for key in _hop_keys(entity + name, time, step, count))
        return out


def _hop_keys(prefix: str, time: float, step: float, count: int) -> list[str]:
    """Keys of the ``count`` windows (of ``count`` x ``step``) every ``step`` that hold ``time`` (one if tumbling)."""
    last = window_index(time, step)
    # Every one of them holds the event: window = count x step, so the oldest ends at window_start(last + 1).
    return [prefix + format_exact(window_start(last - k, step)) for k in range(count)]


@dataclass(frozen=True)
class BatchOutcome:
    """Counts, dead letters and the store commit of one micro-batch."""

    counts: dict[str, int]
    dead_letters: list[DeadLetter]
    commit: Commit


def compute_batch(events: Iterable[Event], config: IngestConfig) -> dict[str, list[Any]]:
    """Feature state of a finite set of events computed in one pass, with no watermark at all.

    Duplicates (same event id) count once (the copy with the smallest ``(time, id)`` wins). This is the
    reference that ``verify`` and the property tests compare the streaming result with.

    >>> from mlplat.ingest import IngestConfig
    >>> cfg = IngestConfig(max_out_of_orderness=0, features=[{"name": "n", "agg": "count", "window": 60}])
    >>> compute_batch([Event("a", "u", 5, (None,)), Event("a", "u", 5, (None,))], cfg)
    {'u\\x1fn\\x1f0': [1]}
    """
    engine = Engine(config)
    unique: dict[str, Event] = {}
    for event in sorted(events, key=lambda e: (e.time, e.event_id)):
        unique.setdefault(event.event_id, event)
    state: dict[str, list[Any]] = {}
    for event in unique.values():
        for key, agg, value in engine.keys_of(event):
            state[key] = _fold(agg, state.get(key), event.time, event.event_id, value)
    return state


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float | int) and isinstance(b, float | int) and not isinstance(a, bool):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def diff_states(expected: Mapping[str, list[Any]], actual: Mapping[str, list[Any] | str]) -> list[str]:
    """Keys whose state differs (sums compared to 1e-9 relative: float addition order varies).

    A stored value that is text (a damaged one, see ``FeatureStore.states``) differs from every state.
    """
    keys = set(expected) | set(actual)
    return sorted(k for k in keys if k not in expected or k not in actual or not _same(expected[k], actual[k]))
