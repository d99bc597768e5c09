"""The semantics rules of docs/ingest.md, one test per rule, on the in-memory engine."""

from __future__ import annotations

import math

import pytest
from tests.ingest.helpers import config, records, run_engine, state

from mlplat.ingest import Checkpoint, Engine, Event, compute_batch, diff_states, feature_value, parse_event, parse_time
from mlplat.ingest._engine import partition_of

SEP = "\x1f"
LAST = [{"name": "last", "agg": "last", "field": "amount"}]


def test_last_is_latest_by_event_time_not_arrival() -> None:
    """Rule 1: `last` keeps the value of the largest event time, whatever the arrival order."""
    cfg = config(LAST, max_out_of_orderness=100)
    engine, _, _ = run_engine(cfg, [("a", "u", 50, 1), ("b", "u", 10, 2)])
    assert state(engine)[f"u{SEP}last{SEP}"] == [50.0, "a", 1]


def test_last_ties_broken_by_event_id() -> None:
    """Rule 1: equal event times are ordered by event id, so both arrival orders give one result."""
    cfg = config(LAST)
    one, _, _ = run_engine(cfg, [("a", "u", 5, 1), ("b", "u", 5, 2)])
    two, _, _ = run_engine(cfg, [("b", "u", 5, 2), ("a", "u", 5, 1)])
    assert state(one) == state(two) == {f"u{SEP}last{SEP}": [5.0, "b", 2]}


@pytest.mark.parametrize(("agg", "expected"), [("count", 3), ("sum", 6), ("mean", 2.0), ("min", 1), ("max", 3)])
def test_tumbling_aggregates(agg: str, expected: float) -> None:
    """Rule 2: count|sum|mean|min|max over a tumbling window; events in the next window start a new one."""
    spec = {"name": "f", "agg": agg, "window": 60, **({} if agg == "count" else {"field": "amount"})}
    engine, _, _ = run_engine(config([spec]), [("a", "u", 0, 1), ("b", "u", 59, 2), ("c", "u", 30, 3),
                                               ("d", "u", 60, 9)])
    st = state(engine)
    assert feature_value(agg, st[f"u{SEP}f{SEP}0"]) == expected
    assert feature_value(agg, st[f"u{SEP}f{SEP}60"]) == (1 if agg == "count" else 9)


def test_hopping_windows_each_event_in_window_over_hop_windows() -> None:
    """Rule 2: a 60 s window hopping every 20 s holds an event in three windows."""
    engine, _, _ = run_engine(config([{"name": "h", "agg": "count", "window": 60, "hop": 20}]),
                              [("a", "u", 45, 0)])
    assert sorted(state(engine)) == [f"u{SEP}h{SEP}{s}" for s in ("0", "20", "40")]


def test_feature_without_its_field_ignores_event() -> None:
    """Rule 2: a feature reading a field skips events that lack it; count without a field counts them."""
    cfg = config([{"name": "s", "agg": "sum", "field": "amount", "window": 60},
                  {"name": "n", "agg": "count", "window": 60}])
    engine, counts, _ = run_engine(cfg, [{"event_id": "a", "entity": "u", "event_time": 1}])
    assert counts["applied"] == 1
    assert state(engine) == {f"u{SEP}n{SEP}0": [1]}


def test_watermark_is_max_event_time_minus_out_of_orderness() -> None:
    """Rule 3: the watermark trails the largest event time seen, not the last one."""
    engine, _, _ = run_engine(config(max_out_of_orderness=30), [("a", "u", 100, 0), ("b", "u", 40, 0)])
    assert engine.watermark == 70


# Pinned example with Flink's semantics: 60 s tumbling windows, max out-of-orderness 30 s, allowed
# lateness 20 s, the watermark advanced after each event (a punctuated BoundedOutOfOrderness generator).
# Flink's watermark is max - ooo - 1 ms and a window is late once maxTimestamp (end - 1 ms) + lateness <=
# watermark; the two 1 ms offsets cancel, giving "late iff end + lateness <= max - ooo", as here.
FLINK = [("e1", "k", 10, 0), ("e2", "k", 70, 0), ("e3", "k", 50, 0), ("e4", "k", 95, 0),
         ("e5", "k", 30, 0), ("e6", "k", 130, 0), ("e7", "k", 20, 0), ("e8", "k", 100, 0)]


def test_flink_example_pinned() -> None:
    """e3 is out of order but on time, e5 is allowed-late (updates the final [0,60) window), e7 is late."""
    cfg = config(max_out_of_orderness=30, allowed_lateness=20)
    engine = Engine(cfg)
    recs = records(FLINK)
    outcome = engine.process(recs[:4], lambda keys: {})
    assert engine.watermark == 65 and engine.cache[f"k{SEP}n_1m{SEP}0"][1] == [2]  # [0,60) final: 65 >= 60
    outcome = engine.process(recs[4:5], lambda keys: {})
    assert outcome.counts["applied"] == 1 and engine.cache[f"k{SEP}n_1m{SEP}0"][1] == [3]  # updated in place
    outcome = engine.process(recs[5:], lambda keys: {})
    assert outcome.counts == {"read": 3, "applied": 2, "duplicates": 0, "late": 1, "malformed": 0,
                              "future": 0, "other_partition": 0}
    assert outcome.dead_letters[0].line == 7
    assert outcome.dead_letters[0].reason == ("late: window [0, 60) closed at horizon 80 "
                                              "(watermark 100 - allowed lateness 20)")
    assert state(engine) == {f"k{SEP}n_1m{SEP}0": [3], f"k{SEP}n_1m{SEP}60": [3], f"k{SEP}n_1m{SEP}120": [1]}


def test_late_boundary_is_horizon_at_window_end() -> None:
    """Rule 4: horizon == window end is late; one second earlier is still allowed."""
    cfg = config(max_out_of_orderness=0, allowed_lateness=10)
    _, on_time, _ = run_engine(cfg, [("a", "u", 69, 0), ("b", "u", 59, 0)])
    _, late, dead = run_engine(cfg, [("a", "u", 70, 0), ("b", "u", 59, 0)])
    assert on_time["late"] == 0 and late["late"] == 1
    assert dead[0].kind == "late" and dead[0].record["event_id"] == "b"


def test_last_only_config_lateness_is_on_event_time() -> None:
    """Rule 4: with only `last` features an event is late when the horizon has passed its own time."""
    cfg = config(LAST, max_out_of_orderness=5, allowed_lateness=5)
    _, counts, dead = run_engine(cfg, [("a", "u", 100, 0), ("b", "u", 90, 0), ("c", "u", 89, 0)])
    assert counts["late"] == 1 and dead[0].record["event_id"] == "c"


def test_duplicates_applied_once() -> None:
    """Rule 5: a repeated event id is counted as a duplicate and changes nothing, even in another batch."""
    cfg = config(max_out_of_orderness=60)
    engine, counts, _ = run_engine(cfg, [("a", "u", 5, 0), ("a", "u", 5, 0), ("b", "u", 6, 0), ("a", "u", 5, 0)],
                                   batch=2)
    assert counts["duplicates"] == 2 and state(engine) == {f"u{SEP}n_1m{SEP}0": [2]}


def test_dedup_ttl_default_is_safe_and_expired_marker_means_late() -> None:
    """Rule 5: once an id is forgotten (older than dedup_ttl) its repeat is already late, never re-applied."""
    cfg = config(max_out_of_orderness=0, allowed_lateness=10)
    assert cfg.effective_dedup_ttl == 70
    engine, counts, _ = run_engine(cfg, [("a", "u", 5, 0), ("z", "u", 500, 0), ("a", "u", 5, 0)])
    assert counts["late"] == 1 and counts["duplicates"] == 0
    assert state(engine)[f"u{SEP}n_1m{SEP}0"] == [1]


def test_replaying_a_suffix_changes_nothing() -> None:
    """Rule 6: versions are source offsets, so events at or below a key's version are skipped on replay."""
    cfg = config(max_out_of_orderness=60)
    recs = records([("a", "u", 5, 0), ("b", "u", 6, 0), ("c", "u", 7, 0)])
    engine = Engine(cfg)
    engine.process(recs, lambda keys: {})
    stored = dict(engine.cache)
    fresh = Engine(cfg)  # no dedup markers: only the versions protect the state
    outcome = fresh.process(recs[1:], lambda keys: {k: stored[k] for k in keys if k in stored})
    assert outcome.commit.states == {}
    assert fresh.cache == stored


def test_partition_applies_only_own_entities_and_shares_watermark() -> None:
    """`--partition i/N`: entities split by a stable hash; every worker advances the same watermark."""
    cfg = config(max_out_of_orderness=0)
    events = [(f"e{i}", f"user{i}", i, 0) for i in range(40)]
    parts = [Engine(cfg, partition=(p, 3)) for p in range(3)]
    outcomes = [p.process(records(events), lambda keys: {}) for p in parts]
    assert sum(o.counts["applied"] for o in outcomes) == 40
    assert all(o.counts["read"] + o.counts["other_partition"] == 40 for o in outcomes)
    assert {p.watermark for p in parts} == {39}
    # Each worker holds exactly its own entities, and the hash spreads them: no worker has them all.
    owned = [{key.split(SEP)[0] for key in state(p)} for p in parts]
    assert all(all(partition_of(entity, 3) == i for entity in mine) for i, mine in enumerate(owned))
    assert set().union(*owned) == {f"user{i}" for i in range(40)} and max(map(len, owned)) < 40


@pytest.mark.parametrize(("payload", "reason"), [
    ({"entity": "u", "event_time": 1}, "missing `event_id`"),
    ({"event_id": "a", "event_time": 1}, "missing `entity`"),
    ({"event_id": "a", "entity": "u"}, "missing `event_time`"),
    ({"event_id": "a", "entity": "u", "event_time": "soon"}, "expected epoch seconds or ISO 8601"),
    ({"event_id": "a", "entity": "u", "event_time": 1, "amount": "x"}, "`amount` must be a finite number"),
    # Beyond +-1e150 a window's sum could overflow to inf (unreadable in the store); a huge int reached the
    # mean as an OverflowError (exit 5).
    ({"event_id": "a", "entity": "u", "event_time": 1, "amount": 1e308}, "within ±1e150 (VALUE_LIMIT) for s"),
    ({"event_id": "a", "entity": "u", "event_time": 1, "amount": 10**400}, "within ±1e150"),
    ({"event_id": "a", "entity": "u", "event_time": 1, "amount": "-2e150"}, "within ±1e150"),
    ({"event_id": "a", "entity": "u", "event_time": 1, "amount": math.nan}, "within ±1e150"),
    ({"event_id": "a", "entity": "u\x1fv", "event_time": 1}, "must not contain the unit separator"),
    ({"event_id": "a", "entity": "u", "event_time": 1e30}, "expected a time in the years 1 to 9999"),
    ({"event_id": "a", "entity": "u", "event_time": -10**18}, "expected a time in the years 1 to 9999"),
    ({"event_id": "a", "entity": "u", "event_time": "1e308"}, "expected a time in the years 1 to 9999"),
    ({"event_id": "a", "entity": "u", "event_time": math.nan}, "expected a finite time"),
])
def test_malformed_events_dead_lettered_with_reason(payload: dict[str, object], reason: str) -> None:
    """Rule 7: malformed events are dead-lettered with their line and reason, and counted."""
    cfg = config([{"name": "s", "agg": "sum", "field": "amount", "window": 60}])
    _, counts, dead = run_engine(cfg, [{"event_id": "ok", "entity": "u", "event_time": 0}, payload])
    assert counts["malformed"] == 1 and dead[0].line == 2
    assert reason in dead[0].reason


def test_time_no_date_can_hold_is_malformed_and_leaves_the_watermark() -> None:
    """Rule 7: one event stamped past the year 9999 must not push the watermark past every later event."""
    cfg = config([{"name": "n", "agg": "count", "window": 60}], max_out_of_orderness=0)
    engine, counts, dead = run_engine(cfg, [{"event_id": "a", "entity": "u", "event_time": 100},
                                            {"event_id": "b", "entity": "u", "event_time": 1e30},
                                            {"event_id": "c", "entity": "u", "event_time": 110}])
    assert (counts["applied"], counts["malformed"], counts["late"]) == (2, 1, 0)
    assert engine.watermark == 110 and [d.line for d in dead] == [2]


def _stamped(event_id: str, time: float, ingest: object = None) -> dict[str, object]:
    event: dict[str, object] = {"event_id": event_id, "entity": "u", "event_time": time}
    if ingest is not None:
        event["ingest_time"] = ingest
    return event


def test_future_event_dead_lettered_and_leaves_the_watermark() -> None:
    """Rule 8: an event stamped more than max_future after its ingest time is refused before the watermark
    moves, so the events after it are not late; without max_future the same stream loses them."""
    events = [_stamped("a", 100, 101), _stamped("b", 10_000, 102), _stamped("c", 110, 111)]
    guarded = config(max_future=60)
    engine, counts, dead = run_engine(guarded, events)
    assert (counts["applied"], counts["future"], counts["late"], counts["read"]) == (2, 1, 0, 3)
    assert engine.watermark == 110 and [(d.line, d.kind) for d in dead] == [(2, "future")]
    assert dead[0].reason == "future: event time 10000 is 2h45m after ingest time 102 (max_future 1m)"
    unguarded, counts, _ = run_engine(config(), events)
    assert (counts["applied"], counts["late"], unguarded.watermark) == (2, 1, 10_000)


def test_future_bound_is_inclusive_and_reads_iso_ingest_times() -> None:
    """Rule 8: exactly max_future ahead is on time; an ISO ingest time counts like epoch seconds."""
    cfg = config(max_future=60)
    _, counts, _ = run_engine(cfg, [_stamped("a", 160, 100), _stamped("b", 160.5, "1970-01-01T00:01:40Z")])
    assert (counts["applied"], counts["future"]) == (1, 1)


def test_future_needs_an_ingest_time_and_a_readable_one() -> None:
    """Rule 8: an event without ingest_time is not checked; an unreadable one is malformed (rule 7) when
    max_future is set, and ignored when it is not."""
    events = [_stamped("a", 10**9), _stamped("b", 10**9 + 1, "soon")]
    engine, counts, dead = run_engine(config(max_future=60), events)
    assert (counts["applied"], counts["malformed"], counts["future"]) == (1, 1, 0)
    assert dead[0].reason == "malformed: `ingest_time`: expected epoch seconds or ISO 8601, got 'soon'"
    assert engine.watermark == 10**9
    _, counts, _ = run_engine(config(), events)
    assert counts["applied"] == 2


def test_future_event_counted_once_across_partitions() -> None:
    """Rule 8 with partitions: every worker skips the event (one watermark), and worker 0 counts it."""
    events = [_stamped(f"e{i}", i, i) for i in range(40)] + [_stamped("x", 10**6, 40)]
    cfg = config(max_future=60)
    parts = [Engine(cfg, partition=(p, 3)) for p in range(3)]
    outcomes = [p.process(records(events), lambda keys: {}) for p in parts]
    assert [o.counts["future"] for o in outcomes] == [1, 0, 0]
    assert sum(o.counts["applied"] for o in outcomes) == 40 and {p.watermark for p in parts} == {39}
    assert [o.counts["applied"] for o in outcomes] == [sum(partition_of("u", 3) == i for _ in range(40))
                                                       for i in range(3)]  # all 40 events are entity "u"


def test_inline_parse_matches_parse_event_for_every_shape() -> None:
    """The engine's inline parse of usual shapes gives the state parse_event gives, odd shapes included."""
    cfg = config([{"name": "s", "agg": "sum", "field": "amount", "window": 60},
                  {"name": "last", "agg": "last", "field": "tag"}, {"name": "n", "agg": "count", "window": 60}],
                 max_out_of_orderness=1000)
    payloads: list[dict[str, object]] = [
        {"event_id": "a", "entity": "u", "event_time": 1, "amount": 2, "tag": "x"},
        {"event_id": 7, "entity": 3, "event_time": "2.5", "amount": "4", "tag": True},
        {"event_id": "c", "entity": "u", "event_time": 3, "amount": 1.5, "tag": ""},
        {"event_id": "g", "entity": "v", "event_time": "1970-01-01T00:00:03Z", "amount": 1, "tag": "z"},
        {"event_id": "d", "entity": "u", "event_time": 4.0, "amount": "", "tag": None},
        {"event_id": "e", "entity": "v", "event_time": 5, "tag": [1, "y"]},
        {"event_id": "f", "entity": "v", "event_time": 6, "amount": True},
    ]
    engine, counts, _ = run_engine(cfg, payloads)
    parsed = []
    for payload in payloads:
        try:
            parsed.append(parse_event(payload, cfg))
        except ValueError:
            continue
    assert counts["applied"] == len(parsed) == 6 and counts["malformed"] == 1
    assert state(engine) == compute_batch(parsed, cfg)


def test_parse_time_forms() -> None:
    """Times are epoch seconds, numeric strings or ISO 8601; naive ISO means UTC."""
    assert parse_time("2026-01-01T00:00:00") == parse_time("2026-01-01T00:00:00Z") == 1767225600.0
    with pytest.raises(ValueError, match="finite"):
        parse_time(math.inf)
    # The years 1 to 9999 (UTC), what a date can hold: the first and last second are in, one more is out.
    assert parse_time("0001-01-01T00:00:00Z") == -62135596800.0
    assert parse_time("9999-12-31T23:59:59Z") == 253402300799.0
    for outside in (-62135596801, 253402300800, "0001-01-01T00:00:00+01:00"):
        with pytest.raises(ValueError, match="years 1 to 9999"):
            parse_time(outside)


def test_compute_batch_and_diff() -> None:
    """The batch reference deduplicates and diff_states tolerates float summation order."""
    cfg = config([{"name": "s", "agg": "sum", "field": "amount", "window": 60}])
    events = [Event("a", "u", 1, (0.1,)), Event("b", "u", 2, (0.2,)), Event("a", "u", 1, (0.1,))]
    ref = compute_batch(events, cfg)
    assert diff_states(ref, {f"u{SEP}s{SEP}0": [2, 0.30000000000000004]}) == []
    assert diff_states(ref, {}) == [f"u{SEP}s{SEP}0"]


def test_checkpoint_restores_watermark() -> None:
    """A restarted engine takes the watermark from the checkpoint's max event time."""
    engine = Engine(config(max_out_of_orderness=10), Checkpoint(max_time=100.0))
    assert engine.watermark == 90


@pytest.mark.parametrize("batch", [1, 2, 1000])
def test_a_marker_at_the_edge_of_its_ttl_is_the_same_duplicate_for_every_batch_size(batch: int) -> None:
    """At ttl 0.3, a repeat of an event at 0.1 seen at watermark 0.4 is a duplicate (0.1 + 0.3 >= 0.4). With
    one-event batches the marker was pruned at 0.4 - 0.3 = 0.10000000000000003 first, and the repeat was late."""
    cfg = config([{"name": "n", "agg": "count", "window": 0.1}], dedup_ttl=0.3)
    _, counts, dead = run_engine(cfg, [("e1", "u", 0.1, 1), ("e2", "u", 0.4, 1), ("e1", "u", 0.1, 1)], batch=batch)
    assert (counts["duplicates"], counts["late"], dead) == (1, 0, [])
