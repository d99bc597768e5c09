"""Online stores for feature state: SQLite (embedded, the default) and Redis.

Both apply one micro-batch as one atomic unit: versioned compare-and-set state writes, the new dedup
markers and the source checkpoint. A crash therefore leaves either the whole batch or none of it, and the
checkpoint always names the last event whose effect is in the state.
"""

from __future__ import annotations

import json
import re
import sqlite3
import struct
from abc import ABC, abstractmethod
from array import array
from collections.abc import Iterable, Sequence
from json.encoder import encode_basestring as _quote  # the C string encoder json.dumps uses
from pathlib import Path
from typing import Any, NamedTuple, Protocol
from urllib.parse import urlparse

from mlplat.errors import DataError, OutputError, ServiceError, format_url, format_url_error
from mlplat.files import path_kind
from mlplat.ingest._engine import SEP, STREAM_SOURCE, Checkpoint, Commit, show_key

__all__ = ["FeatureStore", "RedisStore", "SQLiteStore", "open_store"]

StateRow = tuple[int, list[Any]]
StoredRow = tuple[int, list[Any] | str]  # from states(): a damaged value comes as its raw text


class FeatureStore(Protocol):
    """What the pipeline needs from an online store."""

    url: str

    def checkpoint(self, partition: str) -> Checkpoint | None:
        """The committed checkpoint of ``partition`` (``"i/n"``), or None before the first commit."""

    def markers(self, since: float) -> dict[str, float]:
        """Dedup markers (event id to event time) with a time >= ``since``."""

    def fetch(self, keys: set[str]) -> dict[str, StateRow]:
        """Stored ``(version, state)`` of the keys that exist."""

    def commit(self, commit: Commit) -> None:
        """Apply one micro-batch atomically (compare-and-set on versions unless ``commit.force``)."""

    def entity(self, entity: str) -> dict[str, StateRow]:
        """Every state key of one entity."""

    def states(self) -> dict[str, StoredRow]:
        """Every state key (for repair and verify); a damaged value comes as its raw text, not a list."""

    def put_meta(self, meta: dict[str, Any]) -> None:
        """Record the pipeline's feature definitions (so ``read`` can serve values without the config)."""

    def meta(self) -> dict[str, Any]:
        """The recorded feature definitions, or an empty dict."""

    def clear(self) -> None:
        """Delete everything this store holds for mlplat ingest."""

    def close(self) -> None:
        """Release the connection."""


def encode_state(value: list[Any]) -> str:
    """JSON of a state list, fast for the usual items (finite numbers, strings); else the json module.

    A `last` value too large for a float (``1e999`` in an event) is written as ``Infinity``, which the json
    module reads back: ``repr`` wrote ``inf``, which no reader takes, and the key could no longer be read.
    """
    parts = []
    for item in value:
        kind = type(item)
        if kind is int or (kind is float and item - item == 0.0):  # a finite float: inf - inf is nan
            parts.append(repr(item))
        elif kind is str:
            parts.append(_quote(item))
        else:
            return json.dumps(value, separators=(",", ":"))
    return "[" + ",".join(parts) + "]"


def _pack_markers(markers: dict[str, float]) -> bytes:
    """A batch's dedup markers as one blob (one row or hash field per batch, not per event).

    Layout: the count (uint32), the event times as raw doubles (exact, and far cheaper than decimal text),
    then the ids as a JSON array.
    """
    times = array("d", markers.values())
    return struct.pack("<I", len(times)) + times.tobytes() + json.dumps(list(markers)).encode()


def _unpack_markers(url: str, blobs: Iterable[bytes], since: float) -> dict[str, float]:
    found: dict[str, float] = {}
    for blob in blobs:
        try:
            (count,) = struct.unpack_from("<I", blob)
            times = array("d")
            times.frombytes(blob[4:4 + 8 * count])
            ids = json.loads(blob[4 + 8 * count:])
            found.update((k, v) for k, v in zip(ids, times, strict=True) if v >= since)
        except (struct.error, ValueError, TypeError) as exc:  # ValueError: bad JSON, bad bytes, or lengths apart
            raise damaged(url, "a batch of dedup markers", str(exc),
                          fix="Run the pipeline into a new store (repair keeps the markers it finds)") from exc
    return found


REPAIR_HINT = "`mlplat ingest repair` rewrites the states, the checkpoint and the feature definitions from the source"


# A file source's cursor (line:byte) and a Redis stream's (an id, milliseconds-sequence).
_FILE_CURSOR = re.compile(r"\d+:\d+")
_STREAM_CURSOR = re.compile(r"\d+-\d+")


def damaged(url: str, place: str, detail: str, *, fix: str = REPAIR_HINT) -> DataError:
    """The error for a stored value that mlplat ingest does not write: the store was damaged or edited."""
    return DataError(f"{url}: {place} is not what mlplat ingest writes ({detail}); the store was damaged or "
                     f"changed by another program. {fix}")


def _checkpoint_problem(checkpoint: Checkpoint) -> str | None:
    """What is wrong with a checkpoint read back from a store (each field's type and form), or None."""

    def whole(value: Any) -> bool:
        return type(value) is int and value >= 0

    time, cursor, source = checkpoint.max_time, checkpoint.cursor, checkpoint.source
    # The cursor's form follows the source it counts in (one recorded before sources were: either form).
    forms: tuple[re.Pattern[str], ...]
    if type(source) is str and source.startswith(STREAM_SOURCE):
        forms, shown = (_STREAM_CURSOR,), "'' or a stream id MS-SEQ (a Redis stream's cursor)"
    elif source:
        forms, shown = (_FILE_CURSOR,), "'' or LINE:BYTE (a file's cursor)"
    else:
        forms, shown = (_FILE_CURSOR, _STREAM_CURSOR), "'' or LINE:BYTE or a stream id MS-SEQ"
    checks = [
        ("seq", whole(checkpoint.seq), "a whole number >= 0"),
        ("cursor", type(cursor) is str and (cursor == "" or any(f.fullmatch(cursor) for f in forms)), shown),
        # Compared, not math.isfinite(): an integer of 400 digits overflows a float (exit 5); NaN fails both.
        ("max_time", time is None or (type(time) in (int, float) and -1e300 < time < 1e300),
         "null or a finite number"),
        ("dead_letter_size", whole(checkpoint.dead_letter_size), "a whole number >= 0"),
        ("partition", type(checkpoint.partition) is str, "text"),
        ("source", type(checkpoint.source) is str, "text"),
    ]
    for name, ok, expected in checks:
        if not ok:
            value = repr(getattr(checkpoint, name))
            return f"{name} must be {expected}, got {value if len(value) <= 40 else value[:37] + '...'}"
    return None


def decode_state(url: str, key: str, text: str | bytes, *, lenient: bool = False) -> Any:
    """The state list stored under ``key``.

    Text that is not a JSON array is a damaged store: a :class:`DataError`, or with ``lenient`` the text
    itself, which compares unequal to every state, so verify reports the key and repair rewrites it.
    """
    try:
        state = json.loads(text)
    except ValueError:  # JSONDecodeError and UnicodeDecodeError both are
        state = None
    if type(state) is list:
        return state
    if lenient:
        return text if isinstance(text, str) else text.decode(errors="replace")
    raise damaged(url, f"the state of {show_key(key)}", "expected a JSON array")


def _chunks(items: list[Any], size: int) -> Iterable[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


class _EncodedCommit(NamedTuple):
    """The parts of a :class:`Commit` that both stores write, encoded once."""

    states: list[tuple[str, str, str, int, str]]  # key, entity, the rest of the key, version, state JSON
    markers: tuple[float, bytes] | None  # the latest marker time and the packed markers; None without markers
    checkpoint: str  # the checkpoint's JSON


def _encode_commit(commit: Commit) -> _EncodedCommit:
    states = []
    for key, (version, value) in commit.states.items():
        entity, rest = key.split(SEP, 1)  # every state key holds SEP: entity, feature, window start
        states.append((key, entity, rest, version, encode_state(value)))
    markers = (max(commit.markers.values()), _pack_markers(commit.markers)) if commit.markers else None
    return _EncodedCommit(states, markers, json.dumps(commit.checkpoint.to_dict()))


class _CheckpointTexts(ABC):
    """``checkpoint``, ``meta`` and ``put_meta`` over a store's JSON text per partition (``"#meta"``: the meta)."""

    url: str

    @abstractmethod
    def _text(self, name: str) -> str | bytes | None:
        """The text stored under ``name``, or None."""

    @abstractmethod
    def _put_text(self, name: str, text: str) -> None:
        """Store ``text`` under ``name``."""

    def checkpoint(self, partition: str) -> Checkpoint | None:
        raw = self._text(partition)
        if raw is None:
            return None
        place = f"the checkpoint of partition {partition}"
        data = self._object(raw, place)
        try:
            checkpoint = Checkpoint(**data)
        except TypeError as exc:  # a key Checkpoint does not have
            raise damaged(self.url, place, str(exc)) from exc
        problem = _checkpoint_problem(checkpoint)
        if problem is not None:  # a wrong type failed later, deep in a source or the engine (exit 5)
            raise damaged(self.url, place, problem)
        return checkpoint

    def put_meta(self, meta: dict[str, Any]) -> None:
        self._put_text("#meta", json.dumps(meta))

    def meta(self) -> dict[str, Any]:
        raw = self._text("#meta")
        if raw is None:
            return {}
        meta = self._object(raw, "the recorded feature definitions")
        if not isinstance(meta.get("features"), dict) or "max_out_of_orderness" not in meta:
            raise damaged(self.url, "the recorded feature definitions", "no 'features' or 'max_out_of_orderness'")
        return meta

    def _object(self, raw: str | bytes, place: str) -> dict[str, Any]:
        try:
            value = json.loads(raw)
        except ValueError as exc:
            raise damaged(self.url, place, f"not JSON: {exc}") from exc
        if not isinstance(value, dict):
            raise damaged(self.url, place, "expected a JSON object")
        return value


# A partition's checkpoint (or "#meta") as JSON text: written inside each commit's transaction and on its own.
_PUT_CHECKPOINT = "INSERT OR REPLACE INTO checkpoint (partition, value) VALUES (?, ?)"


class SQLiteStore(_CheckpointTexts):
    """Feature state in one SQLite file; each micro-batch is one transaction with conditional upserts.

    WAL mode with ``synchronous=NORMAL``: a killed process never loses a committed batch; a power cut may
    roll back the last batches, but state and checkpoint roll back together, so a restart stays exact.
    """

    def __init__(self, path: str | Path, url: str | None = None, *, create: bool = True) -> None:
        self.path = Path(path)
        self.url = url or f"sqlite:///{path}"
        kind = path_kind(self.path, name=self.url)
        if kind == "dir":
            raise OutputError(f"{self.url}: {self.path} is a directory; expected a database file")
        if path_kind(self.path.parent, name=self.url) != "dir":
            raise OutputError(f"{self.url}: folder {self.path.parent} does not exist")
        if kind == "missing" and not create:
            raise DataError(f"{self.url}: no such store ({self.path} does not exist; `mlplat ingest run` makes it)")
        try:
            self.db = sqlite3.connect(self.path, isolation_level=None)
            if not create:
                self._check_is_store()
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.executescript("""
                CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, entity TEXT NOT NULL,
                    version INTEGER NOT NULL, value TEXT NOT NULL) WITHOUT ROWID;
                CREATE INDEX IF NOT EXISTS state_entity ON state(entity);
                CREATE TABLE IF NOT EXISTS dedup (id INTEGER PRIMARY KEY, max_time REAL NOT NULL,
                    markers BLOB NOT NULL);
                CREATE INDEX IF NOT EXISTS dedup_time ON dedup(max_time);
                CREATE TABLE IF NOT EXISTS checkpoint (partition TEXT PRIMARY KEY, value TEXT NOT NULL);
            """)
        except sqlite3.Error as exc:
            raise OutputError(f"{self.url}: cannot open the SQLite store: {exc}") from exc

    def _check_is_store(self) -> None:
        """Refuse, before changing anything, a database that is not an ingest store (read must not alter it)."""
        tables = {name for (name,) in self.db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if not {"state", "dedup", "checkpoint"} <= tables:
            self.db.close()
            raise DataError(f"{self.url}: not an mlplat ingest store (it has no state, dedup and checkpoint "
                            "tables); `mlplat ingest run` makes one")

    def _read(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        """All rows of a query; an SQLite error (a table changed by another program, a damaged file) is a
        DataError naming the store. Fetched at once, as a lazy cursor would raise later, unwrapped."""
        try:
            return self.db.execute(sql, args).fetchall()
        except sqlite3.Error as exc:
            raise DataError(f"{self.url}: cannot read the SQLite store: {exc}") from exc

    def _text(self, name: str) -> str | None:
        rows = self._read("SELECT value FROM checkpoint WHERE partition = ?", (name,))
        return rows[0][0] if rows else None

    def _put_text(self, name: str, text: str) -> None:
        try:
            self.db.execute(_PUT_CHECKPOINT, (name, text))
        except sqlite3.Error as exc:
            raise OutputError(f"{self.url}: cannot write the SQLite store: {exc}") from exc

    def markers(self, since: float) -> dict[str, float]:
        rows = self._read("SELECT markers FROM dedup WHERE max_time >= ? ORDER BY id", (since,))
        return _unpack_markers(self.url, (blob for (blob,) in rows), since)

    def fetch(self, keys: set[str]) -> dict[str, StateRow]:
        found: dict[str, StateRow] = {}
        for chunk in _chunks(list(keys), 500):
            marks = ",".join("?" * len(chunk))
            found.update(self._rows(f"SELECT key, version, value FROM state WHERE key IN ({marks})", chunk))
        return found

    def commit(self, commit: Commit) -> None:
        condition = "" if commit.force else " WHERE excluded.version > state.version"
        encoded = _encode_commit(commit)
        rows = [(key, entity, version, value) for key, entity, _, version, value in encoded.states]
        try:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                self.db.executemany(
                    "INSERT INTO state (key, entity, version, value) VALUES (?, ?, ?, ?) ON CONFLICT(key) "
                    "DO UPDATE SET version = excluded.version, value = excluded.value" + condition, rows)
                if encoded.markers is not None:
                    self.db.execute("INSERT INTO dedup (max_time, markers) VALUES (?, ?)", encoded.markers)
                self.db.executemany("DELETE FROM state WHERE key = ?", [(k,) for k in commit.deletes])
                if commit.forget_before is not None:
                    self.db.execute("DELETE FROM dedup WHERE max_time < ?", (commit.forget_before,))
                self.db.execute(_PUT_CHECKPOINT, (commit.checkpoint.partition, encoded.checkpoint))
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise OutputError(f"{self.url}: cannot write the SQLite store: {exc}") from exc

    def _rows(self, sql: str, args: Sequence[Any] = (), *, lenient: bool = False) -> dict[str, tuple[int, Any]]:
        url = self.url
        return {key: (version, decode_state(url, key, value, lenient=lenient))
                for key, version, value in self._read(sql, args)}

    def entity(self, entity: str) -> dict[str, StateRow]:
        return self._rows("SELECT key, version, value FROM state WHERE entity = ?", (entity,))

    def states(self) -> dict[str, StoredRow]:
        return self._rows("SELECT key, version, value FROM state", lenient=True)

    def clear(self) -> None:
        try:
            self.db.executescript("BEGIN; DELETE FROM state; DELETE FROM dedup; DELETE FROM checkpoint; COMMIT;")
        except sqlite3.Error as exc:
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")
            raise OutputError(f"{self.url}: cannot write the SQLite store: {exc}") from exc

    def close(self) -> None:
        self.db.close()


# One script call applies a whole micro-batch: Redis runs scripts atomically, so no reader or crash sees
# part of a batch. Versions are compared as numbers; the stored value is "version|json". The state writes
# come as one JSON array of strings (entity, field, version, value; four per key), decoded by the server's
# cjson: the client then packs one argument per batch instead of four per key, which was most of its CPU.
_COMMIT_LUA = """
local p = ARGV[1]
local force = ARGV[2] == '1'
local rows = cjson.decode(ARGV[3])
for r = 1, #rows, 4 do
  local h = p .. 'e:' .. rows[r]
  local cur = redis.call('HGET', h, rows[r + 1])
  if not cur then
    redis.call('HSET', h, rows[r + 1], rows[r + 2] .. '|' .. rows[r + 3])
    redis.call('SADD', p .. 'entities', rows[r])
  elseif force or tonumber(rows[r + 2]) > tonumber(string.match(cur, '^(%d+)|')) then
    redis.call('HSET', h, rows[r + 1], rows[r + 2] .. '|' .. rows[r + 3])
  end
end
local i = 4
if ARGV[i] ~= '' then
  local n = redis.call('INCR', p .. 'dedup_n')
  redis.call('HSET', p .. 'dedup', n, ARGV[i + 1])
  redis.call('ZADD', p .. 'dedup_t', ARGV[i], n)
end
i = i + 2
local d = tonumber(ARGV[i]); i = i + 1
for _ = 1, d do redis.call('HDEL', p .. 'e:' .. ARGV[i], ARGV[i + 1]); i = i + 2 end
if ARGV[i] ~= '' then
  local old = redis.call('ZRANGEBYSCORE', p .. 'dedup_t', '-inf', '(' .. ARGV[i])
  for _, n in ipairs(old) do redis.call('HDEL', p .. 'dedup', n) end
  redis.call('ZREMRANGEBYSCORE', p .. 'dedup_t', '-inf', '(' .. ARGV[i])
end
redis.call('HSET', p .. 'ckpt', ARGV[i + 1], ARGV[i + 2])
return 1
"""


def redis_call(where: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)``, a Redis command; a Redis error (or a server gone) is a ServiceError naming ``where``."""
    import redis

    try:
        return fn(*args, **kwargs)
    except redis.RedisError as exc:
        raise ServiceError(f"{where}: Redis error: {exc}") from exc


def redis_client(url: str) -> Any:
    """A connected ``redis.Redis`` for ``url``; :class:`ServiceError` if the server cannot be reached."""
    try:
        import redis
    except ImportError as exc:  # pragma: no cover - the ingest extra is installed by make
        raise ServiceError("the Redis client is not installed: pip install 'mlplat[ingest]'") from exc
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=30)
        client.ping()
    except (ValueError, TypeError) as exc:  # TypeError: a query argument redis does not take (?x=y)
        raise ServiceError(f"{format_url(url)}: not a Redis URL: {format_url_error(url, exc)}") from exc
    except redis.RedisError as exc:
        raise ServiceError(f"{format_url(url)}: cannot reach Redis: {exc}") from exc
    return client


class RedisStore(_CheckpointTexts):
    """Feature state in Redis: one hash per entity, dedup markers one blob per batch, a checkpoint hash.

    A Lua script applies each micro-batch (versioned writes, markers, checkpoint) atomically; reads of a
    batch's keys are pipelined. Keys live under ``prefix``; one pipeline per Redis database.
    """

    def __init__(self, url: str, prefix: str = "mlplat:ingest:") -> None:
        self.url = format_url(url)  # shown in messages and results: never a password
        self.prefix = prefix
        self.client = redis_client(url)
        self._script = self.client.register_script(_COMMIT_LUA)

    def _call(self, fn: Any, *args: Any) -> Any:
        return redis_call(self.url, fn, *args)

    def _text(self, name: str) -> bytes | None:
        return self._call(self.client.hget, self.prefix + "ckpt", name) or None  # b"" counts as absent, as it did

    def _put_text(self, name: str, text: str) -> None:
        self._call(self.client.hset, self.prefix + "ckpt", name, text)

    def markers(self, since: float) -> dict[str, float]:
        batches = self._call(self.client.zrangebyscore, self.prefix + "dedup_t", since, "+inf")
        if not batches:
            return {}
        blobs = self._call(self.client.hmget, self.prefix + "dedup", batches)
        return _unpack_markers(self.url, (b for b in blobs if b is not None), since)

    def fetch(self, keys: set[str]) -> dict[str, StateRow]:
        by_entity: dict[str, list[str]] = {}
        for key in keys:
            entity, field = key.split(SEP, 1)
            by_entity.setdefault(entity, []).append(field)
        pipe = self.client.pipeline(transaction=False)
        order = list(by_entity.items())
        for entity, fields in order:
            pipe.hmget(self.prefix + "e:" + entity, fields)
        found: dict[str, StateRow] = {}
        for (entity, fields), values in zip(order, self._call(pipe.execute), strict=True):
            for field, raw in zip(fields, values, strict=True):
                if raw is not None:
                    key = entity + SEP + field
                    found[key] = self._decode(key, raw)
        return found

    def commit(self, commit: Commit) -> None:
        encoded = _encode_commit(commit)
        rows: list[str] = []
        for _, entity, rest, version, value in encoded.states:
            rows += (entity, rest, str(version), value)
        # ensure_ascii=False: text goes as UTF-8, as the separate arguments did; cjson reads it unchanged.
        args: list[Any] = [self.prefix, "1" if commit.force else "0", json.dumps(rows, ensure_ascii=False)]
        if encoded.markers is not None:
            args += [repr(float(encoded.markers[0])), encoded.markers[1]]
        else:
            args += ["", ""]
        args.append(len(commit.deletes))
        for key in commit.deletes:
            args += key.split(SEP, 1)
        args += ["" if commit.forget_before is None else repr(float(commit.forget_before)),
                 commit.checkpoint.partition, encoded.checkpoint]
        self._call(lambda: self._script(keys=[], args=args))

    def entity(self, entity: str, *, lenient: bool = False) -> dict[str, StateRow]:
        raw = self._call(self.client.hgetall, self.prefix + "e:" + entity)
        found: dict[str, tuple[int, Any]] = {}
        for field, value in raw.items():
            key = entity + SEP + field.decode(errors="replace")
            found[key] = self._decode(key, value, lenient=lenient)
        return found

    def _decode(self, key: str, raw: bytes, *, lenient: bool = False) -> tuple[int, Any]:
        """A stored "version|json" value; see :func:`decode_state` for ``lenient``."""
        version, _, text = raw.partition(b"|")
        if version.isdigit():
            return int(version), decode_state(self.url, key, text, lenient=lenient)
        if lenient:
            return 0, raw.decode(errors="replace")
        raise damaged(self.url, f"the state of {show_key(key)}", "expected 'version|JSON array'")

    def states(self) -> dict[str, StoredRow]:
        found: dict[str, StoredRow] = {}
        for entity in sorted(m.decode() for m in self._call(self.client.smembers, self.prefix + "entities")):
            found.update(self.entity(entity, lenient=True))
        return found

    def clear(self) -> None:
        # scan_iter is lazy: the scan runs (and fails, with the server gone) inside the wrapped call.
        names = self._call(lambda: list(self.client.scan_iter(self.prefix + "*")))
        for chunk in _chunks(names, 500):
            self._call(self.client.delete, *chunk)

    def close(self) -> None:
        self.client.close()


def open_store(url: str, *, create: bool = True) -> FeatureStore:
    """A store for ``sqlite:///path.db`` (relative; four slashes for absolute), a bare path, or ``redis://``.

    With ``create=False`` a missing SQLite file is a :class:`DataError` instead of a new, empty store.

    >>> import tempfile, os
    >>> store = open_store("sqlite:///" + os.path.join(tempfile.mkdtemp(), "f.db"))
    >>> store.checkpoint("0/1") is None
    True
    """
    try:
        parsed = urlparse(url)
    except ValueError as exc:  # an unclosed IPv6 bracket
        raise OutputError(f"{format_url(url)}: not a store URL: {format_url_error(url, exc)}") from None
    if parsed.scheme in ("redis", "rediss"):
        # redis-py reads a path that is not a number as database 0, so redis://host/x would write (and
        # `verify --store` clear) database 0 unasked.
        if parsed.path not in ("", "/") and not parsed.path[1:].isdigit():
            raise OutputError(f"{format_url(url)}: expected redis://host:port/DB with DB a number")
        return RedisStore(url)
    if parsed.scheme == "unix":
        return RedisStore(url)
    if parsed.scheme == "sqlite":
        path = url[len("sqlite:///"):] if url.startswith("sqlite:///") else ""
        if not path:
            raise OutputError(f"{format_url(url)}: expected sqlite:///relative/path.db or sqlite:////absolute/path.db")
        return SQLiteStore(path, url, create=create)
    if parsed.scheme in ("", "file") or len(parsed.scheme) == 1:  # a bare path (or a Windows drive)
        return SQLiteStore(parsed.path if parsed.scheme == "file" else url, create=create)
    raise OutputError(f"{format_url(url)}: unknown store; expected sqlite:///path.db or redis://host:port/db")
