"""Readers of canary exports into one long table: ``timestamp, arm, metric, value, le``.

CSV long format, Prometheus ``query_range`` JSON and Kayenta ``MetricSetPair`` JSON all become the same
pandas frame (timestamps in seconds since the epoch, ``le`` NaN for rows that are not histogram buckets).
Everything is vectorised; pandas is imported inside the functions.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from mlplat.errors import DataError, format_value
from mlplat.files import path_kind
from mlplat.units import MAX_EPOCH, MIN_EPOCH

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["CanaryData", "combine_exports", "prometheus_frame", "read_export"]

Format = Literal["csv", "prometheus", "kayenta"]
COLUMNS = ["timestamp", "arm", "metric", "value", "le"]


@dataclass(frozen=True)
class CanaryData:
    """A long table of observations and the warnings met while reading it.

    ``csv_paths`` names the CSV files the rows came from, so that an error found after reading (an unknown
    arm, a negative count) can be traced back to its line without carrying line numbers on every row.
    """

    frame: pd.DataFrame
    source: str
    warnings: tuple[str, ...] = field(default_factory=tuple)
    csv_paths: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return len(self.frame) == 0


def _categorical(frame: pd.DataFrame) -> pd.DataFrame:
    """Arm and metric names as categoricals: the judge compares them per metric, and comparing integer
    codes is about five times faster than comparing ten million strings."""
    return frame.astype({"arm": "category", "metric": "category"})


def _empty_frame() -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame({"timestamp": pd.Series(dtype=float), "arm": pd.Series(dtype=object),
                         "metric": pd.Series(dtype=object), "value": pd.Series(dtype=float),
                         "le": pd.Series(dtype=float)})


def read_export(path: str | Path, fmt: Format | None = None, *, arm_label: str = "arm",
                arms: tuple[str, str] = ("baseline", "canary")) -> CanaryData:
    """Read an export file; ``fmt`` is guessed from the extension (``.csv``) or the JSON content.

    ``arm_label`` names the Prometheus label that tells the arms apart; ``arms`` are the names given to
    Kayenta's control and experiment.

    Examples
    --------
    >>> import tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "e.csv")
    >>> _ = open(p, "w").write("timestamp,arm,metric,value\\n60,canary,requests,100\\n")
    >>> read_export(p).frame[["arm", "value"]].values.tolist()
    [['canary', 100.0]]
    """
    path = Path(path)
    kind = path_kind(path, error=DataError)
    if kind == "dir":
        raise DataError(f"{path}: is a directory; expected an export file (CSV, Prometheus or Kayenta JSON)")
    if kind == "missing":
        raise DataError(f"{path}: no such file")
    # "other": a pipe or a device (`cat x.csv | mlplat canary analyze /dev/stdin`, `<(...)`), read as a file.
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read as UTF-8 text: {exc}") from exc
    if not text.strip():
        return CanaryData(_empty_frame(), str(path), ("the export is empty",))
    if fmt is None:
        looks_json = path.suffix.lower() == ".json" or text.lstrip().startswith(("{", "["))
        fmt = "csv" if path.suffix.lower() == ".csv" or not looks_json else None
    if fmt == "csv":
        data = _read_csv(text, str(path))
        # A pipe cannot be read again to name the line of an error found later: that error names the export.
        # (Read again, stdin gave '' and a named pipe waited for a writer that never came.)
        return data if kind == "file" else replace(data, csv_paths=())
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}") from exc
    except RecursionError:
        raise DataError(f"{path}: nested too deeply to read (hundreds of levels); expected an export") from None
    except ValueError:  # Python refuses to convert an integer of over 4,300 digits
        raise DataError(f"{path}: holds a number thousands of digits long; expected timestamps and values") from None
    if fmt is None:
        fmt = "kayenta" if _looks_kayenta(doc) else "prometheus"
    if fmt == "kayenta":
        return _read_kayenta(doc, str(path), arms)
    return _read_prometheus_doc(doc, str(path), default_metric=path.stem, arm_label=arm_label)


def _read_csv(text: str, source: str) -> CanaryData:
    import io

    import pandas as pd

    try:
        raw = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, skipinitialspace=True)
    except (pd.errors.ParserError, ValueError) as exc:
        # pandas names a later row longer than the header by its record number, not its line: find it.
        raise DataError(_long_row(text, source) or f"{source}: not a readable CSV file: {exc}") from exc
    if not isinstance(raw.index, pd.RangeIndex):
        # pandas reads a first row longer than the header as an index, shifting every column: find it.
        raise DataError(_long_row(text, source) or f"{source}: a row has more fields than the header")
    raw.columns = [str(c).strip().lower() for c in raw.columns]
    missing = [c for c in ("timestamp", "arm", "metric", "value") if c not in raw.columns]
    if missing:
        raise DataError(f"{source}: missing column(s) {', '.join(missing)}; expected a header "
                        f"'timestamp,arm,metric,value[,le]', got {','.join(raw.columns)}")
    if len(raw) == 0:
        return CanaryData(_empty_frame(), source, ("the export has a header but no rows",))
    lines = functools.partial(_row_line, text)  # a row's line, counted only on an error path
    frame = pd.DataFrame({
        "timestamp": _timestamps(raw["timestamp"], source, lines),
        "arm": raw["arm"].str.strip(),
        "metric": raw["metric"].str.strip(),
        "value": _numbers(raw["value"], source, "value", lines=lines),
        "le": _numbers(raw["le"], source, "le", blank_is_nan=True, lines=lines) if "le" in raw.columns else math.nan,
    })
    return CanaryData(_categorical(frame), source, csv_paths=(source,))


def _row_line(text: str, row: int) -> int:
    """The line of the CSV file on which data row ``row`` (0-based, as pandas reads them) starts.

    pandas skips blank and whitespace-only lines and lets a quoted field span lines, so a row's position
    plus 2 is not its line; counted here on the error path only.
    """
    import csv
    import io

    reader = csv.reader(io.StringIO(text))
    next(reader, None)  # the header
    last = reader.line_num
    seen = -1
    for fields in reader:
        start, last = last + 1, reader.line_num
        if fields and not (len(fields) == 1 and not fields[0].strip()):
            seen += 1
            if seen == row:
                return start
    return row + 2  # not reached for a row pandas read; the plain count is the best guess


def csv_place(paths: Sequence[str], match: Callable[[pd.DataFrame], Any]) -> str | None:
    """``path:line`` of the first row that ``match(frame)`` picks in these CSV exports, read again.

    For errors found after reading (the judge's checks): ``match`` gets the parsed frame of one file and
    returns a boolean mask. None when no file can be read again or none holds such a row.
    """
    for path in paths:
        try:
            text = Path(path).read_text(encoding="utf-8")
            frame = _read_csv(text, path).frame
            hits = match(frame).to_numpy().nonzero()[0]
        except (OSError, UnicodeDecodeError, DataError, KeyError, IndexError):
            continue  # the file changed or went away since it was read: name the export, not a line
        if len(hits):
            return f"{path}:{_row_line(text, int(hits[0]))}"
    return None


def _long_row(text: str, source: str) -> str | None:
    """The message for the first CSV row with more fields than the header, if any (a slow path, errors only)."""
    import csv
    import io

    reader = csv.reader(io.StringIO(text))
    first = next(reader, None)
    if first is None:
        return None  # no header at all (a file emptied since it was read)
    header = len(first)
    for row in reader:
        if len(row) > header:
            return (f"{source}:{reader.line_num}: {len(row)} fields, but the header has {header}; "
                    "expected 'timestamp,arm,metric,value[,le]'")
    return None


Lines = Callable[[int], int]


def _place(source: str, name: str, first: int, lines: Lines | None) -> str:
    """Where a bad value is: a CSV's line (``lines(first)``) or, without ``lines``, a JSON list's item."""
    if lines is None:
        return f"{source}: {name}, item {first}"
    return f"{source}:{lines(first)}: column {name}"


def _numbers(column: pd.Series, source: str, name: str, *, blank_is_nan: bool = False,
             lines: Lines | None = None) -> pd.Series:
    """Floats from strings; 'NaN', '+Inf', '-Inf' are allowed, anything else non-numeric is an error.

    ``lines`` turns a CSV row into its line; None names the item of a JSON list instead.
    """
    import pandas as pd

    text = column.astype(str).str.strip()
    normal = text.str.replace(r"^\+?[Ii]nf$", "inf", regex=True).str.replace(r"^-[Ii]nf$", "-inf", regex=True)
    normal = normal.replace({"NaN": "nan", "nan": "nan"})
    if blank_is_nan:
        normal = normal.where(normal != "", "nan")
    values = pd.to_numeric(normal, errors="coerce")
    bad = values.isna() & ~normal.str.lower().eq("nan")
    if bad.any():
        first = int(bad.to_numpy().argmax())
        raise DataError(f"{_place(source, name, first, lines)}: expected a number, "
                        f"got {format_value(column.iloc[first])} ({int(bad.sum())} non-numeric value(s))")
    return values.astype(float)


def _timestamps(column: pd.Series, source: str, lines: Lines) -> pd.Series:
    """Seconds since the epoch from numbers or ISO 8601 strings."""
    import pandas as pd

    numeric = pd.to_numeric(column, errors="coerce")
    if numeric.notna().all():
        return _dates(numeric.astype(float), column, source, "timestamp", lines=lines)
    # Parse only the non-numeric cells as ISO 8601, so a file mixing both forms still reads.
    text = column[numeric.isna()]
    parsed = pd.to_datetime(text, errors="coerce", utc=True, format="ISO8601")
    bad = parsed.isna()
    if bad.any():
        first = int(bad.to_numpy().argmax())
        raise DataError(f"{source}:{lines(int(text.index[first]))}: column timestamp: expected seconds or an "
                        f"ISO 8601 time, got {text.iloc[first]!r}")
    # The epoch in the parsed unit: a year pandas cannot hold in nanoseconds (9999) comes back in µs.
    seconds = (parsed - pd.Timestamp(0, tz="UTC").as_unit(parsed.dt.unit)).dt.total_seconds()
    return _dates(numeric.astype(float).where(numeric.notna(), seconds), column, source, "timestamp", lines=lines)


def _dates(seconds: pd.Series, raw: pd.Series, source: str, name: str, *, lines: Lines | None) -> pd.Series:
    """``seconds`` unless a time is NaN, infinite or outside the years 1 to 9999 (no report can show it)."""
    bad = ~seconds.between(MIN_EPOCH, MAX_EPOCH, inclusive="left")  # NaN is outside too
    if bad.any():
        first = int(bad.to_numpy().argmax())
        raise DataError(f"{_place(source, name, first, lines)}: expected a time in the years 1 to 9999 "
                        f"(finite seconds since the epoch), got {format_value(raw.iloc[first])}")
    return seconds


def _looks_kayenta(doc: Any) -> bool:
    """Whether any item is a MetricSetPair: then the Kayenta reader names the item that is not (all items
    had to be, so one bad item sent the file to the Prometheus reader, which blamed item [0])."""
    items = doc if isinstance(doc, list) else [doc]
    return any(isinstance(i, dict) and "values" in i and isinstance(i["values"], dict)
               and "control" in i["values"] for i in items)


def prometheus_frame(response: Any, metric: str, source: str, *, arm_label: str = "arm") -> pd.DataFrame:
    """One ``query_range`` response (``{"status": ..., "data": {"resultType": "matrix", ...}}``) as rows.

    Series are told apart by ``arm_label``; an ``le`` label makes the rows histogram buckets. Values are
    strings and may be ``"NaN"`` or ``"+Inf"``. A ``status: error`` answer raises :class:`DataError`.
    """
    import numpy as np
    import pandas as pd

    if not isinstance(response, Mapping):
        raise DataError(f"{source}: expected a Prometheus query_range response object, got {type(response).__name__}")
    status = response.get("status")
    if status == "error":
        raise DataError(f"{source}: Prometheus answered status error: "
                        f"{response.get('errorType', 'error')}: {response.get('error', 'no message')}")
    data = response.get("data")
    if status != "success" or not isinstance(data, Mapping) or "result" not in data:
        raise DataError(f"{source}: expected 'status': 'success' and 'data.result' in a query_range response")
    if data.get("resultType", "matrix") != "matrix":
        raise DataError(f"{source}: expected resultType 'matrix' (query_range), got {data.get('resultType')!r}")
    parts = []
    if not isinstance(data["result"], list):
        raise DataError(f"{source}: data.result: expected a list of series, got {type(data['result']).__name__}")
    for index, series in enumerate(data["result"]):
        if not isinstance(series, Mapping) or not isinstance(series.get("metric", {}), Mapping):
            raise DataError(f"{source}: data.result[{index}]: expected a series "
                            "{\"metric\": {labels}, \"values\": [[timestamp, \"value\"], ...]}")
        labels = series.get("metric", {})
        if arm_label not in labels:
            raise DataError(f"{source}: data.result[{index}] has no {arm_label!r} label to tell the arms "
                            f"apart (labels: {sorted(labels)}); aggregate with 'by ({arm_label})'")
        if not isinstance(labels[arm_label], str):
            raise DataError(f"{source}: data.result[{index}].metric.{arm_label}: expected a string, "
                            f"got {labels[arm_label]!r}")
        values = series.get("values", [])
        if not values:
            continue
        pairs = np.asarray(values, dtype=object)
        if pairs.ndim != 2 or pairs.shape[1] != 2:
            raise DataError(f"{source}: data.result[{index}].values: expected [timestamp, \"value\"] pairs")
        le = labels.get("le")
        times, where = pd.Series(pairs[:, 0]), f"data.result[{index}] timestamp"
        parts.append(pd.DataFrame({
            "timestamp": _dates(_numbers(times, source, where), times, source, where, lines=None),
            "arm": labels[arm_label],
            "metric": metric,
            "value": _numbers(pd.Series(pairs[:, 1]), source, f"data.result[{index}] value"),
            "le": (_numbers(pd.Series([le]), source, f"data.result[{index}].metric.le").iloc[0]
                   if le is not None else math.nan),
        }))
    return pd.concat(parts, ignore_index=True) if parts else _empty_frame()


def _read_prometheus_doc(doc: Any, source: str, *, default_metric: str, arm_label: str) -> CanaryData:
    """A raw response (metric named after the file), a list of ``{"metric", "response"}``, or a mapping."""
    import pandas as pd

    if isinstance(doc, Mapping) and "status" in doc:
        items: Sequence[tuple[str, Any]] = [(default_metric, doc)]
    elif isinstance(doc, list):
        items = []
        for index, item in enumerate(doc):
            if not isinstance(item, Mapping) or "metric" not in item or "response" not in item:
                raise DataError(f"{source}: item [{index}]: expected {{\"metric\": NAME, \"response\": "
                                "query_range response}")
            items.append((str(item["metric"]), item["response"]))
    elif isinstance(doc, Mapping):
        items = [(str(k), v) for k, v in doc.items()]
    else:
        raise DataError(f"{source}: expected a Prometheus query_range response, a list or a mapping")
    frames = [prometheus_frame(resp, name, f"{source} ({name})", arm_label=arm_label) for name, resp in items]
    frame = pd.concat(frames, ignore_index=True) if frames else _empty_frame()
    return CanaryData(_categorical(frame), source)


def _read_kayenta(doc: Any, source: str, arms: tuple[str, str]) -> CanaryData:
    """Kayenta MetricSetPair list: control is the baseline, experiment the canary."""
    import numpy as np
    import pandas as pd

    items = doc if isinstance(doc, list) else [doc]
    parts = []
    undated: list[str] = []
    for index, item in enumerate(items):
        if not isinstance(item, Mapping):
            raise DataError(f"{source}: [{index}]: expected a MetricSetPair object with 'name' and 'values', "
                            f"got {item!r:.60}")
        name = item.get("name")
        if not isinstance(name, str) or not name:
            raise DataError(f"{source}: [{index}]: a MetricSetPair needs a 'name' (a string), got {name!r:.60}")
        scopes = item.get("scopes", {})
        if not isinstance(scopes, Mapping):
            raise DataError(f"{source}: [{index}] ({name}): scopes: expected an object, got {type(scopes).__name__}")
        pair = item.get("values")
        if not isinstance(pair, Mapping):
            raise DataError(f"{source}: [{index}] ({name}): values: expected an object with 'control' and "
                            f"'experiment' lists, got {pair!r:.60}")
        for key, arm in (("control", arms[0]), ("experiment", arms[1])):
            values = pair.get(key)
            if values is None:
                raise DataError(f"{source}: [{index}] ({name}): values.{key} is missing")
            if not isinstance(values, list):
                raise DataError(f"{source}: [{index}] ({name}): values.{key}: expected a list of numbers, "
                                f"got {type(values).__name__}")
            start, step = _kayenta_scope(scopes, key, f"{source}: [{index}] ({name})")
            if start is None:
                undated.append(f"[{index}] {key}")
                start = 0.0
            times = pd.Series(start + step * (np.arange(len(values)) + 1))
            parts.append(pd.DataFrame({
                "timestamp": _dates(times, times, source, f"[{index}] {key} time (from scopes.{key})", lines=None),
                "arm": arm,
                "metric": name,
                "value": _numbers(pd.Series(values, dtype=object), source, f"[{index}] values.{key}"),
                "le": math.nan,
            }))
    frame = pd.concat(parts, ignore_index=True) if parts else _empty_frame()
    warnings = (f"{', '.join(undated[:4])}{' ...' if len(undated) > 4 else ''}: no scope start time "
                "(startTimeMillis or startTimeIso): its times count from 0, 1970; do not combine it with "
                "other exports or use --at",) if undated else ()
    return CanaryData(_categorical(frame), source, warnings)


def _kayenta_scope(scopes: Mapping[str, Any], key: str, where: str) -> tuple[float | None, float]:
    """(start, step) in seconds from a MetricSetPair scope: ``startTimeMillis`` (else ``startTimeIso``;
    None without either) and ``stepMillis`` (60 s when absent)."""
    scope = scopes.get(key, {})
    if not isinstance(scope, Mapping):
        raise DataError(f"{where}: scopes.{key}: expected an object, got {type(scope).__name__}")
    start = (_kayenta_millis(scope, "startTimeMillis", key, where) if "startTimeMillis" in scope
             else _kayenta_iso(scope["startTimeIso"], key, where) if "startTimeIso" in scope else None)
    step = _kayenta_millis(scope, "stepMillis", key, where) if "stepMillis" in scope else 60.0
    if not step > 0:
        raise DataError(f"{where}: scopes.{key}.stepMillis: must be > 0, got {step * 1000:g}")
    return start, step


def _kayenta_millis(scope: Mapping[str, Any], field_name: str, key: str, where: str) -> float:
    value = scope[field_name]
    try:
        seconds = float(value) / 1000.0
    except (TypeError, ValueError, OverflowError):
        seconds = math.nan
    if not math.isfinite(seconds):
        raise DataError(f"{where}: scopes.{key}.{field_name}: expected a finite number of milliseconds, "
                        f"got {value!r:.60}")
    return seconds


def _kayenta_iso(value: Any, key: str, where: str) -> float:
    # datetime's ISO 8601 reader, not pandas': pd.Timestamp also takes "now" and "today" (the reading's own
    # time, which misaligned an arm) and "T00:00" (year 1).
    try:
        stamp = dt.datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        stamp = None
    if stamp is None:
        raise DataError(f"{where}: scopes.{key}.startTimeIso: expected an ISO 8601 time, got {value!r:.60}")
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=dt.UTC)
    return stamp.timestamp()


def combine_exports(exports: Sequence[CanaryData]) -> CanaryData:
    """One :class:`CanaryData` from several files (for example one Prometheus response per query).

    >>> import pandas as pd
    >>> a = CanaryData(pd.DataFrame({"timestamp": [60.0], "arm": ["canary"], "metric": ["x"], "value": [1.0],
    ...                              "le": [float("nan")]}), "a.json")
    >>> combine_exports([a, a]).source, len(combine_exports([a, a]).frame)
    ('a.json, a.json', 2)
    """
    import pandas as pd

    if len(exports) == 1:
        return exports[0]
    frames = [e.frame for e in exports if len(e.frame)]
    frame = _categorical(pd.concat(frames, ignore_index=True)) if frames else _empty_frame()
    warnings = tuple(f"{e.source}: {w}" for e in exports for w in e.warnings)
    return CanaryData(frame, ", ".join(e.source for e in exports), warnings,
                      tuple(path for e in exports for path in e.csv_paths))
