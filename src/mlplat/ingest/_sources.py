"""Sources of events: JSONL and CSV files (the offset is the line) and Redis Streams (consumer groups)."""

from __future__ import annotations

import csv
import json
import time
from collections import deque
from collections.abc import Callable, Iterator
from itertools import accumulate, chain, islice
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qs, urlparse

from mlplat.errors import DataError, ServiceError, format_url, format_url_error
from mlplat.files import path_kind
from mlplat.ingest._engine import STREAM_SOURCE, Checkpoint, Record

__all__ = ["FileSource", "RedisStreamSource", "Source", "open_source"]

Stop = Callable[[], bool]
_Lines = tuple[list[int], list[int], list[bytes]]  # line numbers, end offsets, stripped texts


class Source(Protocol):
    """A replayable, ordered source of records."""

    name: str
    #: What a checkpoint's offsets count in, the same from any working directory: a store refuses to
    #: resume another source's offsets.
    identity: str

    def batches(self, checkpoint: Checkpoint, size: int, *, follow: bool = False,
                stop: Stop = lambda: False) -> Iterator[list[Record]]:
        """Micro-batches of at most ``size`` records after ``checkpoint``; with ``follow``, wait for more."""

    def acknowledge(self, records: list[Record]) -> None:
        """Called after a batch is committed to the store (a stream acks its messages here)."""

    def close(self) -> None:
        """Release the source."""


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON; write null, or a number")


# Python's json module reads NaN, Infinity and -Infinity, which JSON does not have: a NaN `last` value
# would be stored as text no JSON reader takes back. This decoder refuses them, so the line is malformed.
_DECODER = json.JSONDecoder(parse_constant=_refuse_constant)
# The decoder's scanner (C where available), as raw_decode calls it: (value, index past it). Not in typeshed.
_SCAN: Callable[[str, int], tuple[Any, int]] = _DECODER.scan_once  # type: ignore[attr-defined]


_BOM = b"\xef\xbb\xbf"


def _may_hold_surrogate(raw: bytes) -> bool:
    """Whether JSON text may escape a UTF-16 surrogate (``\\ud800``): two byte searches, so cheap per batch."""
    return b"\\ud" in raw or b"\\uD" in raw


def _parse_json(raw: bytes) -> tuple[dict[str, Any] | None, str | None]:
    try:
        value = _DECODER.decode(raw.decode("utf-8-sig"))  # as json.loads reads bytes: a BOM is skipped
    except (ValueError, UnicodeDecodeError) as exc:
        return None, f"not valid JSON ({exc})"
    except RecursionError:
        return None, "JSON nested too deeply to read (hundreds of levels)"
    if not isinstance(value, dict):
        return None, f"expected a JSON object, got {type(value).__name__}"
    if _may_hold_surrogate(raw):
        try:  # a lone surrogate is valid JSON but no UTF-8: no store, key or dead-letter file could hold it
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            return None, "a string holds a lone UTF-16 surrogate (such as \\ud800), which is not text"
    return value, None


def _plain_objects(texts: list[bytes]) -> list[dict[str, Any]] | None:
    """Each line decoded as one JSON object with nothing after it; None when some line is not, or may escape
    a surrogate: the caller then decodes line by line, for each bad line's reason.

    ``_SCAN`` returns where the value ends, so a line is taken only when its value spans it exactly.
    Decoding the batch as one joined array was as fast, but lines invalid on their own could join into
    valid objects ('{"v": [1' and '2]}').
    """
    if _may_hold_surrogate(b"".join(texts)):
        return None
    scan = _SCAN
    values = []
    try:
        for raw in texts:
            text = raw.decode("utf-8")
            value, end = scan(text, 0)
            if end != len(text) or type(value) is not dict:
                return None
            values.append(value)
    except (StopIteration, ValueError, RecursionError):  # StopIteration: no value at 0 (blank, a space, a BOM)
        return None
    return values


class FileSource:
    """A JSONL or CSV file read line by line; the cursor is ``line:byte`` so a restart seeks straight there.

    CSV needs a header line; a quoted field may not span lines (a record is a line).
    """

    def __init__(self, path: str | Path, fmt: str | None = None, poll: float = 0.2) -> None:
        self.path = Path(path)
        self.name = str(path)
        self.poll = poll
        kind = path_kind(self.path, name=str(path), error=DataError)
        if kind != "file":
            raise DataError(f"{path}: no such file" if kind == "missing" else f"{path}: not a file")
        self.identity = str(self.path.resolve())
        suffix = self.path.suffix.lower()
        self.format = fmt or ("csv" if suffix == ".csv" else "jsonl")
        self.header: list[str] | None = None

    def _read_header(self, handle: Any) -> int:
        first = handle.readline()
        try:
            self.header = next(csv.reader([first.decode("utf-8-sig")]))  # a BOM is skipped, as for JSONL
        except (StopIteration, UnicodeDecodeError):
            raise DataError(f"{self.path}:1: expected a CSV header line") from None
        return len(first)

    def _decode(self, lines: _Lines) -> list[Record]:
        """Records of the lines; JSONL lines that are plain objects are decoded on a fast path."""
        numbers, ends, texts = lines
        values = _plain_objects(texts) if self.format == "jsonl" else None
        if values is not None:
            new = tuple.__new__  # skips the NamedTuple's Python-level __new__: measurable per event
            return [new(Record, (n, f"{n}:{end}", n, value, None, ""))
                    for n, end, value in zip(numbers, ends, values, strict=True)]
        return [self._record(text, n, f"{n}:{end}") for n, end, text in zip(numbers, ends, texts, strict=True)]

    def _record(self, text: bytes, line: int, cursor: str) -> Record:
        if self.format == "csv":
            assert self.header is not None
            try:
                row = next(csv.reader([text.decode("utf-8")]))
            except (csv.Error, UnicodeDecodeError) as exc:
                return Record(line, cursor, line, None, f"not a CSV row ({exc})", text.decode(errors="replace"))
            if len(row) != len(self.header):
                return Record(line, cursor, line, None, f"expected {len(self.header)} CSV fields, got {len(row)}",
                              text.decode(errors="replace"))
            return Record(line, cursor, line, dict(zip(self.header, row, strict=True)))
        payload, error = _parse_json(text)
        return Record(line, cursor, line, payload, error, "" if payload else text.decode(errors="replace"))

    def batches(self, checkpoint: Checkpoint, size: int, *, follow: bool = False,
                stop: Stop = lambda: False) -> Iterator[list[Record]]:
        line, _, byte_text = checkpoint.cursor.partition(":")
        line_no, byte = (int(line), int(byte_text)) if checkpoint.cursor else (0, 0)
        try:
            handle = self.path.open("rb")
        except OSError as exc:
            raise DataError(f"{self.path}: cannot read: {exc.strerror}") from exc
        with handle:
            if self.format == "csv":
                header_size = self._read_header(handle)
                if not checkpoint.cursor:
                    line_no, byte = 1, header_size
            handle.seek(byte)
            batch: _Lines = ([], [], [])
            while True:
                # Lines are split and measured in C (islice over the file, map, accumulate), not in one
                # Python iteration each.
                raws = list(islice(handle, size - len(batch[0])))
                at_end = len(raws) < size - len(batch[0])
                if follow and raws and not raws[-1].endswith(b"\n"):
                    raws.pop()  # a partial last line is read again once it is complete
                    at_end = True
                texts = list(map(bytes.strip, raws))
                if _BOM in texts:  # a file holding only a byte order mark: a blank line once it is skipped
                    texts = [b"" if text == _BOM else text for text in texts]
                numbers = list(range(line_no + 1, line_no + len(raws) + 1))
                ends = list(accumulate(map(len, raws), initial=byte))[1:]
                if raws:
                    line_no, byte = numbers[-1], ends[-1]
                if not all(texts):  # blank lines take a line number but no place in the batch
                    keep = [i for i, text in enumerate(texts) if text]
                    numbers, ends, texts = [numbers[i] for i in keep], [ends[i] for i in keep], [texts[i] for i in keep]
                batch[0].extend(numbers)
                batch[1].extend(ends)
                batch[2].extend(texts)
                if at_end:
                    handle.seek(byte)
                    if batch[0]:
                        yield self._decode(batch)
                        batch = ([], [], [])
                    if not follow or stop():
                        return
                    time.sleep(self.poll)
                elif len(batch[0]) >= size:
                    yield self._decode(batch)
                    batch = ([], [], [])
                    if stop():
                        return

    def records(self) -> Iterator[Record]:
        """Every record of the file from its start, in order (the batch-at-once readers' loop)."""
        return chain.from_iterable(self.batches(Checkpoint(), 10_000))

    def acknowledge(self, records: list[Record]) -> None:
        """Files need no acknowledgement: the checkpoint is the offset."""

    def close(self) -> None:
        """Nothing is held open between batches."""


def _stream_id(value: str) -> tuple[int, int]:
    ms, _, seq = value.partition("-")
    return int(ms), int(seq or 0)


class RedisStreamSource:
    """A Redis Stream read through a consumer group; messages are acknowledged after their batch commits.

    ``redis://host:port/db/STREAM?group=G&consumer=C``. A message is either one field ``data`` holding a
    JSON object, or flat fields (strings, read like CSV cells). With ``partition=(i, n)`` each worker gets
    its own group ``G-p{i}of{n}``: every worker sees every message (so all share one watermark) and
    applies only its own entities.
    """

    def __init__(self, url: str, partition: tuple[int, int] = (0, 1)) -> None:
        from mlplat.ingest._stores import redis_client

        try:
            parsed = urlparse(url)
        except ValueError as exc:  # an unclosed IPv6 bracket
            raise DataError(f"{format_url(url)}: not a Redis stream URL: {format_url_error(url, exc)}") from None
        parts = [p for p in parsed.path.split("/") if p]
        if len(parts) != 2 or not parts[0].isdigit():
            raise DataError(f"{format_url(url)}: expected redis://host:port/DB/STREAM")
        query = parse_qs(parsed.query)
        self.name = format_url(url)  # shown in messages and results: never a password
        self.stream = parts[1]
        # Not the host (a failover or another name for it is the same stream), nor a password.
        self.identity = f"{STREAM_SOURCE}{parts[1]} in db {parts[0]}"
        group = query.get("group", ["mlplat-ingest"])[0]
        self.group = f"{group}-p{partition[0]}of{partition[1]}" if partition[1] > 1 else group
        self.consumer = query.get("consumer", ["worker"])[0]
        self.client = redis_client(f"{parsed.scheme}://{parsed.netloc}/{parts[0]}")
        import redis

        try:
            self.client.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise ServiceError(f"{self.name}: cannot create consumer group: {exc}") from exc

    def batches(self, checkpoint: Checkpoint, size: int, *, follow: bool = False,
                stop: Stop = lambda: False) -> Iterator[list[Record]]:
        seq = checkpoint.seq
        done = _stream_id(checkpoint.cursor) if checkpoint.cursor else (-1, -1)
        if checkpoint.cursor:
            self._check_not_recreated(checkpoint.cursor)
        # Pending messages deleted from the stream (XTRIM, XDEL), which XAUTOCLAIM has taken out of the group:
        # each is reported as malformed in its place among the pending messages (stream-id order), so the
        # checkpoint's stream id never passes a pending message not yet applied, and none is dropped.
        deleted = deque(ident for ident in self._claim_pending() if _stream_id(ident) > done)
        start = "0"  # first the messages delivered before a crash but never acknowledged
        while True:
            reply = self._call(self.client.xreadgroup, self.group, self.consumer, {self.stream: start},
                               count=size, block=500 if follow and start == ">" else None)
            entries = reply[0][1] if reply else []
            if start != ">" and not entries:
                start = ">"
                if deleted:  # above every pending message, below every new one
                    first = seq + 1
                    seq += len(deleted)
                    yield [self._record(first + i, ident, None) for i, ident in enumerate(deleted)]
                    deleted.clear()
                continue
            if not entries:
                if not follow or stop():
                    return
                continue
            if start != ">":
                start = entries[-1][0].decode()
            batch, stale = [], []
            for message_id, fields in entries:
                ident = message_id.decode()
                if _stream_id(ident) <= done:
                    stale.append(ident)  # committed before the crash, ack lost: already in the state
                    continue
                while deleted and _stream_id(deleted[0]) < _stream_id(ident):
                    seq += 1
                    batch.append(self._record(seq, deleted.popleft(), None))
                seq += 1
                batch.append(self._record(seq, ident, fields))
            if stale:
                self._call(self.client.xack, self.stream, self.group, *stale)
            if batch:
                yield batch
                if stop() and not deleted:  # deleted ids are in no pending list: they are reported first
                    return

    def _check_not_recreated(self, cursor: str) -> None:
        """Refuse a stream whose last id is below the checkpoint's: it was deleted and created again.

        A stream's last generated id never goes down while it exists (XDEL and XTRIM keep it), so a lower one
        means another stream under the same name, whose messages would all read as applied before a crash
        (at or below the checkpoint) and be acknowledged without being applied.
        """
        info = self._call(self.client.xinfo_stream, self.stream)
        last = info["last-generated-id"]
        last = last.decode() if isinstance(last, bytes) else str(last)
        if _stream_id(last) < _stream_id(cursor):
            raise DataError(f"{self.name}: the stream's last id {last} is below the checkpoint's stream id "
                            f"{cursor}: the stream was deleted and created again (or its ids set back), and its "
                            "messages would be taken as already applied; give it a new store, or a new name")

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        from mlplat.ingest._stores import redis_call

        return redis_call(self.name, fn, *args, **kwargs)

    def _claim_pending(self) -> list[str]:
        """Take over the group's messages delivered to other consumer names and never acknowledged; return
        the ids of pending messages deleted from the stream meanwhile (XAUTOCLAIM drops those).

        A worker restarted after a crash under a new ``consumer=`` name (a pod's name changes when it is
        replaced) read only its own pending list, so the old name's messages were never applied: silently
        lost. One worker reads a group (partitions have groups of their own), so every pending message of
        the group is this worker's to finish. XAUTOCLAIM needs Redis 6.2; without it, nothing is claimed.
        """
        import redis

        cursor: Any = "0-0"
        deleted: list[str] = []
        while True:
            try:
                reply = self._call(self.client.xautoclaim, self.stream, self.group, self.consumer,
                                   min_idle_time=0, start_id=cursor, count=1000)
            except ServiceError as exc:
                if isinstance(exc.__cause__, redis.ResponseError) and "unknown command" in str(exc).lower():
                    return []
                raise
            cursor = reply[0]
            deleted += [ident.decode() for ident in (reply[2] if len(reply) > 2 else [])]
            if cursor in (b"0-0", "0-0"):
                return sorted(deleted, key=_stream_id)

    def _record(self, seq: int, ident: str, fields: dict[bytes, bytes] | None) -> Record:
        if not fields:  # a pending message trimmed (XTRIM, XDEL) from the stream before it was applied
            return Record(seq, ident, seq, None, f"the message {ident} was deleted from the stream (XTRIM or XDEL) "
                                                 "before it was applied", "")
        try:
            decoded = {k.decode(): v.decode() for k, v in fields.items()}
        except UnicodeDecodeError as exc:  # replacing the bytes would merge distinct entities into one
            return Record(seq, ident, seq, None, f"not UTF-8 text ({exc})", repr(fields)[:500])
        if set(decoded) == {"data"}:
            payload, error = _parse_json(decoded["data"].encode())
            return Record(seq, ident, seq, payload, error, decoded["data"] if error else "")
        return Record(seq, ident, seq, decoded)

    def acknowledge(self, records: list[Record]) -> None:
        """XACK a committed batch; a Redis gone meanwhile is a ServiceError, and a restart acknowledges it as
        stale."""
        if records:
            self._call(self.client.xack, self.stream, self.group, *(r.cursor for r in records))

    def close(self) -> None:
        self.client.close()


def open_source(spec: str, partition: tuple[int, int] = (0, 1)) -> Source:
    """A :class:`RedisStreamSource` for ``redis://``, else a :class:`FileSource` (``.csv`` or JSONL)."""
    if spec.startswith(("redis://", "rediss://")):
        return RedisStreamSource(spec, partition)
    return FileSource(spec)
