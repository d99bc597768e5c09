"""Against a real redis-server on loopback: the Lua commit, crash + restart, Streams with consumer groups."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.conftest import require_binary
from tests.ingest.helpers import CrashAt, config, write_jsonl
from tests.strategies import INGEST_FEATURES, bounded_streams

from mlplat.errors import DataError, ServiceError
from mlplat.ingest import (
    Checkpoint,
    Commit,
    FileSource,
    IngestConfig,
    RedisStore,
    RedisStreamSource,
    SQLiteStore,
    read_entity,
    run_pipeline,
)

pytestmark = pytest.mark.integration
EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "ingest"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def redis_server() -> Iterator[str]:
    """A redis-server of our own on a free loopback port, no persistence; yields its base URL."""
    binary = require_binary("redis-server")
    port = _free_port()
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                 "--appendonly", "no", "--dir", tmp], stdout=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 10
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
            yield f"redis://127.0.0.1:{port}"
        finally:
            proc.terminate()
            proc.wait(timeout=10)


@pytest.fixture
def redis_url(redis_server: str) -> str:
    """Database 0 of the server, emptied."""
    import redis

    redis.Redis.from_url(redis_server + "/0").flushdb()
    return redis_server + "/0"


def test_redis_equals_sqlite_on_example(redis_url: str, tmp_path: Path) -> None:
    """The bundled example gives the same state (and versions) in Redis as in SQLite."""
    from mlplat.ingest import load_ingest_config

    cfg = load_ingest_config(EXAMPLES / "ingest.yaml")
    source = EXAMPLES / "events.jsonl"
    in_redis = run_pipeline(cfg, FileSource(source), RedisStore(redis_url), dead_letter=tmp_path / "r.dl")
    in_sqlite = run_pipeline(cfg, FileSource(source), SQLiteStore(tmp_path / "f.db"), dead_letter=tmp_path / "s.dl")
    assert in_redis.counts == in_sqlite.counts and (in_redis.counts["read"], in_redis.counts["applied"]) == (429, 398)
    assert RedisStore(redis_url).states() == SQLiteStore(tmp_path / "f.db").states()
    assert read_entity(RedisStore(redis_url), "card-001").rows == read_entity(SQLiteStore(tmp_path / "f.db"),
                                                                               "card-001").rows


def test_redis_compare_and_set(redis_url: str) -> None:
    """The Lua script ignores a write whose version is not above the stored one; force overrides."""
    store = RedisStore(redis_url)
    store.commit(Commit({"u\x1fn\x1f0": (5, [3])}, {"a": 1.0}, Checkpoint(seq=5)))
    store.commit(Commit({"u\x1fn\x1f0": (4, [99])}, {}, Checkpoint(seq=6)))
    assert store.states() == {"u\x1fn\x1f0": (5, [3])}
    assert store.checkpoint("0/1") == Checkpoint(seq=6)
    store.commit(Commit({"u\x1fn\x1f0": (1, [7])}, {}, Checkpoint(), deletes=[], force=True, forget_before=2.0))
    assert store.states() == {"u\x1fn\x1f0": (1, [7])} and store.markers(-1e18) == {}


class CrashingRedis(CrashAt, RedisStore):
    """Redis store that dies at its n-th commit."""


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(stream=bounded_streams(), batch=st.integers(1, 5), crash_at=st.integers(1, 20), after=st.booleans())
def test_redis_crash_and_restart_equals_sorted_deduplicated(redis_url: str, stream: tuple[int, list[dict[str, Any]]],
                                                            batch: int, crash_at: int, after: bool) -> None:
    """Against real Redis: bounded disorder + duplicates + a crash at any commit = the batch computation."""
    import redis

    from mlplat.ingest import compute_batch, diff_states, parse_event

    redis.Redis.from_url(redis_url).flushdb()
    bound, events = stream
    cfg = IngestConfig(max_out_of_orderness=bound, batch_size=batch, features=INGEST_FEATURES)
    with tempfile.TemporaryDirectory() as tmp:
        source = write_jsonl(Path(tmp) / "e.jsonl", events)
        try:
            run_pipeline(cfg, FileSource(source), CrashingRedis(redis_url).armed(crash_at, after),
                         dead_letter=Path(tmp) / "dl")
        except KeyboardInterrupt:
            pass
        run_pipeline(cfg, FileSource(source), RedisStore(redis_url), dead_letter=Path(tmp) / "dl")
    actual = {k: v for k, (_, v) in RedisStore(redis_url).states().items()}
    assert diff_states(compute_batch([parse_event(e, cfg) for e in events], cfg), actual) == []


def _xadd(url: str, stream: str, events: list[dict[str, Any]]) -> None:
    import redis

    client = redis.Redis.from_url(url)
    for event in events:
        client.xadd(stream, {"data": json.dumps(event)})


EVENTS = [{"event_id": f"e{i}", "entity": f"user{i % 7}", "event_time": i, "amount": i} for i in range(60)]


def test_stream_consumer_group_acks_after_commit(redis_url: str, tmp_path: Path) -> None:
    """A stream is read through a consumer group; every message is acknowledged once committed; a resumed
    run reads only new messages."""
    import redis

    cfg = config([{"name": "n", "agg": "count", "window": 60}], batch_size=8)
    _xadd(redis_url, "events", EVENTS[:40])
    store = RedisStore(redis_url)
    first = run_pipeline(cfg, RedisStreamSource(redis_url + "/events"), store, dead_letter=tmp_path / "dl")
    _xadd(redis_url, "events", [*EVENTS[40:], {"flat": "no id"}])
    second = run_pipeline(cfg, RedisStreamSource(redis_url + "/events"), store, dead_letter=tmp_path / "dl")
    assert (first.counts["applied"], second.counts["applied"], second.counts["malformed"]) == (40, 20, 1)
    assert redis.Redis.from_url(redis_url).xpending("events", "mlplat-ingest")["pending"] == 0
    assert sum(r.value for e in range(7) for r in read_entity(store, f"user{e}").rows) == 60
    # The checkpoint names the stream, not the host or the consumer group: another stream is refused.
    assert store.checkpoint("0/1").source == "redis stream events in db 0"
    _xadd(redis_url, "other", EVENTS[:5])
    with pytest.raises(DataError, match="at record 61 of redis stream events in db 0, not of redis stream other"):
        run_pipeline(cfg, RedisStreamSource(redis_url + "/other"), store, dead_letter=tmp_path / "dl")
    resumed = run_pipeline(cfg, RedisStreamSource(redis_url + "/events?group=g2"), store, dead_letter=tmp_path / "dl")
    assert resumed.counts["read"] == 0


def test_stream_crash_between_commit_and_ack(redis_url: str, tmp_path: Path) -> None:
    """Messages committed but not acknowledged before a crash are redelivered, skipped, and acked."""
    import redis

    cfg = config([{"name": "n", "agg": "count", "window": 60}], batch_size=8)
    _xadd(redis_url, "events", EVENTS)
    with pytest.raises(KeyboardInterrupt, match="crash after commit"):
        run_pipeline(cfg, RedisStreamSource(redis_url + "/events"), CrashingRedis(redis_url).armed(3, True),
                     dead_letter=tmp_path / "dl")
    assert redis.Redis.from_url(redis_url).xpending("events", "mlplat-ingest")["pending"] == 8
    result = run_pipeline(cfg, RedisStreamSource(redis_url + "/events"), RedisStore(redis_url),
                          dead_letter=tmp_path / "dl")
    assert result.counts["applied"] == 60 - 16 and result.counts["duplicates"] == 0
    assert redis.Redis.from_url(redis_url).xpending("events", "mlplat-ingest")["pending"] == 0
    total = sum(r.value for e in range(7) for r in read_entity(RedisStore(redis_url), f"user{e}").rows)
    assert total == 60


def test_a_stream_recreated_with_lower_ids_is_refused(redis_url: str, tmp_path: Path) -> None:
    """A stream deleted and created again under the checkpoint's ids is exit 4, not read as applied."""
    import redis

    client = redis.Redis.from_url(redis_url)
    cfg = config([{"name": "n", "agg": "count", "window": 60}], batch_size=8)
    for i, event in enumerate(EVENTS[:10]):
        client.xadd("events", {"data": json.dumps(event)}, id=f"{1000 + i}-0")
    store = RedisStore(redis_url)
    assert run_pipeline(cfg, RedisStreamSource(redis_url + "/events"), store,
                        dead_letter=tmp_path / "dl").counts["applied"] == 10
    # XDEL keeps the last id: the same stream, read on as before.
    client.xdel("events", "1009-0")
    assert run_pipeline(cfg, RedisStreamSource(redis_url + "/events"), store,
                        dead_letter=tmp_path / "dl").counts["read"] == 0
    client.delete("events")
    for i, event in enumerate(EVENTS[10:15]):
        client.xadd("events", {"data": json.dumps(event)}, id=f"{1 + i}-0")
    with pytest.raises(DataError, match=r"events: the stream's last id 5-0 is below the checkpoint's stream id "
                                        r"1009-0: the stream was deleted and created again"):
        run_pipeline(cfg, RedisStreamSource(redis_url + "/events"), store, dead_letter=tmp_path / "dl")


def test_stream_messages_that_are_not_text_or_were_trimmed_are_malformed_with_their_reason(
        redis_url: str, tmp_path: Path) -> None:
    """Bytes that are not UTF-8 were replaced by U+FFFD, which merged distinct entities into one; a pending
    message trimmed before its restart was 'missing event_id'."""
    import redis

    client = redis.Redis.from_url(redis_url)
    for event_id, card in (("f4", b"\xff\xfe"), ("f5", b"\xff\xfd")):
        client.xadd("odd", {"event_id": event_id, "entity": card, "event_time": 5})
    cfg = config([{"name": "n", "agg": "count", "window": 60}], batch_size=8)
    result = run_pipeline(cfg, RedisStreamSource(redis_url + "/odd"), RedisStore(redis_url),
                          dead_letter=tmp_path / "dl")
    assert (result.counts["applied"], result.counts["malformed"]) == (0, 2)
    reasons = [json.loads(line)["reason"] for line in (tmp_path / "dl").read_text().splitlines()]
    assert all(r.startswith("malformed: not UTF-8 text") for r in reasons)
    _xadd(redis_url, "cut", EVENTS[:16])
    with pytest.raises(KeyboardInterrupt, match="crash before commit"):  # dies before its first commit: 8 stay pending
        run_pipeline(cfg, RedisStreamSource(redis_url + "/cut"), CrashingRedis(redis_url + "/2").armed(2, False),
                     dead_letter=tmp_path / "dl2")
    client.xtrim("cut", maxlen=8, approximate=False)  # the 8 pending ones go
    result = run_pipeline(cfg, RedisStreamSource(redis_url + "/cut"), RedisStore(redis_url + "/2"),
                          dead_letter=tmp_path / "dl2")
    reasons = [json.loads(line)["reason"] for line in (tmp_path / "dl2").read_text().splitlines()]
    assert result.counts["malformed"] == 8 and all(re.fullmatch(
        r"malformed: the message \d+-\d+ was deleted from the stream \(XTRIM or XDEL\) before it was applied", r)
        for r in reasons)


@pytest.mark.parametrize("gone", [["3-0"], ["1-0", "3-0", "5-0"]])
def test_pending_messages_deleted_anywhere_are_malformed_in_their_place(redis_url: str, tmp_path: Path,
                                                                         gone: list[str]) -> None:
    """A worker took five messages and died before committing; messages were then deleted. One deleted from
    the middle of the pending list was dropped without a trace (only those below every pending one were
    reported). Each is now a malformed record in its stream-id place, and the rest are applied once."""
    import redis

    client = redis.Redis.from_url(redis_url)
    for i in range(1, 6):
        client.xadd("mid", {"data": json.dumps({"event_id": f"e{i}", "entity": "u", "event_time": i})}, id=f"{i}-0")
    client.xgroup_create("mid", "mlplat-ingest", id="0")
    client.xreadgroup("mlplat-ingest", "worker", {"mid": ">"}, count=5)  # delivered, never acknowledged
    client.xdel("mid", *gone)
    cfg = config([{"name": "n", "agg": "count", "window": 60}], batch_size=2)
    result = run_pipeline(cfg, RedisStreamSource(redis_url + "/mid"), RedisStore(redis_url),
                          dead_letter=tmp_path / "dl")
    assert (result.counts["applied"], result.counts["malformed"]) == (5 - len(gone), len(gone))
    letters = [json.loads(line) for line in (tmp_path / "dl").read_text().splitlines()]
    assert [letter["reason"].split()[3] for letter in letters] == gone
    assert client.xpending("mid", "mlplat-ingest")["pending"] == 0
    assert read_entity(RedisStore(redis_url), "u", "n").rows[0].value == 5 - len(gone)


def test_repair_deletes_a_field_another_program_put_in_an_entity_hash(redis_url: str, tmp_path: Path) -> None:
    """A field without mlplat's key form made repair exit 5 (split_key could not unpack it)."""
    import redis

    from mlplat.ingest import load_ingest_config, repair

    cfg = load_ingest_config(EXAMPLES / "ingest.yaml")
    source = EXAMPLES / "events.jsonl"
    store = RedisStore(redis_url)
    run_pipeline(cfg, FileSource(source), store, dead_letter=tmp_path / "dl")
    good = store.states()
    redis.Redis.from_url(redis_url).hset("mlplat:ingest:e:card-001", "amount_last", "1|[1]")
    assert read_entity(store, "card-001").rows  # read skips it
    report = repair(cfg, FileSource(source), store, since=1e9, dead_letter=tmp_path / "dl")
    assert [d["key"] for d in report.differing] == ["card-001\x1famount_last"] and report.fixed
    assert store.states() == good


def test_a_worker_restarted_under_another_consumer_name_finishes_the_old_name_s_messages(
        redis_url: str, tmp_path: Path) -> None:
    """A worker restarted after a crash under a new consumer= name (as a replaced pod is) read only its own
    pending list: the old name's delivered, unacknowledged messages were never applied, silently."""
    import redis

    cfg = config([{"name": "n", "agg": "count", "window": 60}], batch_size=8)
    _xadd(redis_url, "events", EVENTS)
    with pytest.raises(KeyboardInterrupt, match="crash before commit"):  # its third batch stays pending
        run_pipeline(cfg, RedisStreamSource(redis_url + "/events?consumer=pod-a"),
                     CrashingRedis(redis_url).armed(3, False), dead_letter=tmp_path / "dl")
    client = redis.Redis.from_url(redis_url)
    assert client.xpending("events", "mlplat-ingest")["pending"] == 8
    result = run_pipeline(cfg, RedisStreamSource(redis_url + "/events?consumer=pod-b"), RedisStore(redis_url),
                          dead_letter=tmp_path / "dl")
    assert result.counts["read"] == 60 - 8 and client.xpending("events", "mlplat-ingest")["pending"] == 0
    total = sum(r.value for e in range(7) for r in read_entity(RedisStore(redis_url), f"user{e}").rows)
    assert total == 60


def test_stream_partitions_share_the_work(redis_url: str, tmp_path: Path) -> None:
    """Two workers with --partition 0/2 and 1/2 on one stream apply disjoint entities that cover all."""
    cfg = config([{"name": "n", "agg": "count", "window": 60}], batch_size=16)
    _xadd(redis_url, "events", EVENTS)
    results = [run_pipeline(cfg, RedisStreamSource(redis_url + "/events", (i, 2)), RedisStore(redis_url),
                            partition=(i, 2), dead_letter=tmp_path / "dl.jsonl") for i in range(2)]
    assert sorted(r.counts["applied"] for r in results) != [0, 60]
    assert sum(r.counts["applied"] for r in results) == 60
    assert all(r.counts["read"] + r.counts["other_partition"] == 60 for r in results)


def test_unreachable_redis_is_service_error() -> None:
    """A Redis that does not answer is a ServiceError naming the URL."""
    port = _free_port()
    with pytest.raises(ServiceError, match=f"redis://127.0.0.1:{port}/0: cannot reach Redis"):
        RedisStore(f"redis://127.0.0.1:{port}/0")


def test_a_password_in_a_redis_url_is_never_shown(redis_url: str, tmp_path: Path) -> None:
    """Messages and results show a Redis URL with its user and password as ***: they go to logs and CI."""
    unreachable = "redis://:s3cret@127.0.0.1:9/0"
    with pytest.raises(ServiceError, match=r"^redis://\*\*\*@127\.0\.0\.1:9/0: cannot reach Redis") as caught:
        RedisStore(unreachable)
    with pytest.raises(ServiceError, match=r"^redis://\*\*\*@127\.0\.0\.1:9/0: cannot reach Redis"):
        RedisStreamSource(unreachable + "/events")
    # A user of the server's, with a password: the results show the URL without it.
    import redis

    admin = redis.Redis.from_url(redis_url)
    admin.acl_setuser("user", enabled=True, passwords=["+s3cret"], keys=["*"], channels=["*"], commands=["+@all"])
    try:
        with_password = redis_url.replace("redis://", "redis://user:s3cret@")
        cfg = config([{"name": "n", "agg": "count", "window": 60}], batch_size=8)
        _xadd(redis_url, "events", EVENTS[:5])
        result = run_pipeline(cfg, RedisStreamSource(with_password + "/events"), RedisStore(with_password),
                              dead_letter=tmp_path / "dl")
    finally:
        admin.acl_deluser("user")
    assert result.counts["applied"] == 5
    assert "s3cret" not in result.source + result.store + str(caught.value)
    assert result.store == redis_url.replace("redis://", "redis://***@")


def test_a_redis_gone_while_clearing_is_service_error(redis_url: str) -> None:
    """clear() scans lazily: the server going away during the scan is a ServiceError, not a raw redis error."""
    import redis

    store = RedisStore(redis_url)

    def scan_iter(*args: Any, **kwargs: Any) -> Iterator[bytes]:
        yield b"mlplat:e:u1"
        raise redis.ConnectionError("Connection closed by server.")

    store.client.scan_iter = scan_iter
    with pytest.raises(ServiceError, match=rf"{redis_url}: Redis error: Connection closed by server"):
        store.clear()
    store.close()


@pytest.mark.parametrize(("text", "problem"), [
    (b'1|[0,"x",0]', None),  # a wrong value of the right form: read serves it, repair finds it
    (b"hello", "expected 'version|JSON array'"),  # not mlplat's form: read stops naming the key
    (b"3|inf", "expected a JSON array"),
    (b"3|\xff", "expected a JSON array"),
])
def test_repair_against_redis(redis_url: str, tmp_path: Path, text: bytes, problem: str | None) -> None:
    """`repair` finds and fixes a corrupted or damaged Redis hash field, and a second repair finds nothing; a
    damaged one stops read with the key named (it was exit 5)."""
    import redis

    from mlplat.ingest import load_ingest_config, repair

    cfg = load_ingest_config(EXAMPLES / "ingest.yaml")
    source = EXAMPLES / "events.jsonl"
    store = RedisStore(redis_url)
    run_pipeline(cfg, FileSource(source), store, dead_letter=tmp_path / "dl")
    good = store.states()
    redis.Redis.from_url(redis_url).hset("mlplat:ingest:e:card-002", "amount_last\x1f", text)
    if problem is not None:
        with pytest.raises(DataError, match=f"the state of 'card-002 amount_last ' is not what mlplat ingest "
                                            f"writes \\({problem}"):
            read_entity(store, "card-002")
    report = repair(cfg, FileSource(source), store, dead_letter=tmp_path / "dl")
    assert [d["key"] for d in report.differing] == ["card-002\x1famount_last\x1f"] and report.fixed
    assert store.states() == good
    assert repair(cfg, FileSource(source), store, dead_letter=tmp_path / "dl").differing == []


def test_stream_follow_stops_when_asked(redis_url: str, tmp_path: Path) -> None:
    """With follow, an idle stream is polled until stop() is true, then the run returns its counts."""
    cfg = config([{"name": "n", "agg": "count", "window": 60}], batch_size=8)
    _xadd(redis_url, "events", EVENTS[:5])
    polls = iter([False, True])
    result = run_pipeline(cfg, RedisStreamSource(redis_url + "/events"), RedisStore(redis_url), follow=True,
                          stop=lambda: next(polls, True), dead_letter=tmp_path / "dl")
    assert result.counts["applied"] == 5
