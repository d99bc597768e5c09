"""Readers: CSV long format, Prometheus query_range JSON and Kayenta MetricSetPair JSON."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from mlplat.analysis import prometheus_frame, read_export
from mlplat.analysis._simulate import SimulationSpec, simulate_export, to_csv, to_prometheus_json
from mlplat.errors import DataError


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_csv_round_trip(tmp_path: Path) -> None:
    """A simulated export written as CSV reads back with the same rows, buckets included."""
    frame = simulate_export(SimulationSpec(duration=300, seed=2))
    data = read_export(_write(tmp_path, "e.csv", to_csv(frame)))
    assert len(data.frame) == len(frame)
    assert set(data.frame["metric"]) == {"requests", "errors", "latency_seconds", "cpu"}
    assert math.isinf(data.frame["le"].max())
    # Row for row: the same values at the same (timestamp, arm, metric, le).
    keys = ["timestamp", "arm", "metric", "le"]
    got = data.frame.sort_values(keys, na_position="first").reset_index(drop=True)
    want = frame.sort_values(keys, na_position="first").reset_index(drop=True)
    assert (got["metric"] == want["metric"]).all() and (got["arm"] == want["arm"]).all()
    np.testing.assert_allclose(got["timestamp"].to_numpy(dtype=float), want["timestamp"].to_numpy(dtype=float))
    np.testing.assert_allclose(got["value"].to_numpy(dtype=float), want["value"].to_numpy(dtype=float),
                               rtol=1e-6)


def test_prometheus_round_trip(tmp_path: Path) -> None:
    """The Prometheus JSON form (a list of metric + response) reads back to the same totals."""
    frame = simulate_export(SimulationSpec(duration=300, seed=2))
    data = read_export(_write(tmp_path, "e.json", to_prometheus_json(frame)))
    assert data.frame["value"].sum() == pytest.approx(frame["value"].sum(), rel=1e-5)


def test_csv_iso_timestamps_and_inf(tmp_path: Path) -> None:
    """ISO 8601 timestamps become epoch seconds; 'NaN' and '+Inf' are numbers."""
    path = _write(tmp_path, "e.csv", "timestamp,arm,metric,value,le\n"
                  "2026-01-01T00:01:00Z,canary,lat,NaN,\n2026-01-01T00:01:00Z,canary,lat,3,+Inf\n")
    frame = read_export(path).frame
    assert frame["timestamp"].iloc[0] == 1767225660.0
    assert math.isnan(frame["value"].iloc[0]) and math.isinf(frame["le"].iloc[1])


def test_csv_missing_columns(tmp_path: Path) -> None:
    """A CSV without the required columns names them."""
    path = _write(tmp_path, "e.csv", "time,arm,value\n1,canary,3\n")
    with pytest.raises(DataError, match=r"missing column\(s\) timestamp, metric"):
        read_export(path)


def test_csv_non_numeric_value(tmp_path: Path) -> None:
    """A non-numeric value names the line and the value."""
    path = _write(tmp_path, "e.csv", "timestamp,arm,metric,value\n60,canary,errors,3\n120,canary,errors,lots\n")
    with pytest.raises(DataError, match=r"e.csv:3: column value: expected a number, got 'lots'"):
        read_export(path)


@pytest.mark.parametrize(("text", "message"), [
    ("\n  \n60,canary,errors,lots\n", r"e.csv:4: column value: expected a number, got 'lots'"),
    ('60,"can\nary",errors,3\n\n120,canary,errors,lots\n', r"e.csv:5: column value"),
    ("\n60,canary,errors,3\nyesterday,canary,errors,3\n", r"e.csv:4: column timestamp: expected seconds or an ISO"),
    ("60,canary,errors,3\n\n1e308,canary,errors,3\n", r"e.csv:4: column timestamp: expected a time in the years"),
    ("60,canary,errors,3\n,,,\n", r"e.csv:3: column timestamp: expected seconds or an ISO 8601 time, got ''"),
])
def test_csv_line_numbers_count_blank_lines(tmp_path: Path, text: str, message: str) -> None:
    """A bad value is placed at its own line: blank lines and a quoted line break count as lines."""
    path = _write(tmp_path, "e.csv", "timestamp,arm,metric,value\n" + text)
    with pytest.raises(DataError, match=message):
        read_export(path)


def test_csv_bad_timestamp(tmp_path: Path) -> None:
    """A timestamp that is neither a number nor ISO 8601 is an error."""
    path = _write(tmp_path, "e.csv", "timestamp,arm,metric,value\nyesterday,canary,errors,3\n")
    with pytest.raises(DataError, match="column timestamp"):
        read_export(path)


@pytest.mark.parametrize("text", ["", "timestamp,arm,metric,value\n"])
def test_empty_export_is_no_data(tmp_path: Path, text: str) -> None:
    """An empty file or a header without rows reads as no data (not an error)."""
    data = read_export(_write(tmp_path, "e.csv", text))
    assert data.empty


def test_missing_file() -> None:
    """A file that does not exist is a DataError."""
    with pytest.raises(DataError, match="no such file"):
        read_export("/nonexistent/export.csv")


def test_prometheus_status_error(tmp_path: Path) -> None:
    """A query_range answer with status error is reported, not parsed."""
    doc = {"status": "error", "errorType": "bad_data", "error": "parse error at char 5"}
    with pytest.raises(DataError, match="status error: bad_data: parse error at char 5"):
        read_export(_write(tmp_path, "errors.json", json.dumps(doc)))


def test_prometheus_values_are_strings_with_nan_and_inf() -> None:
    """Values are strings; NaN and +Inf are kept as floats; the file stem names a bare response."""
    response = {"status": "success", "data": {"resultType": "matrix", "result": [
        {"metric": {"arm": "canary"}, "values": [[60, "1"], [120, "NaN"], [180, "+Inf"]]}]}}
    frame = prometheus_frame(response, "errors", "test")
    assert frame["value"].iloc[0] == 1.0
    assert math.isnan(frame["value"].iloc[1]) and math.isinf(frame["value"].iloc[2])


def test_prometheus_missing_arm_label() -> None:
    """A series without the arm label is an error that says how to aggregate."""
    response = {"status": "success", "data": {"resultType": "matrix", "result": [
        {"metric": {"job": "x"}, "values": [[60, "1"]]}]}}
    with pytest.raises(DataError, match=r"no 'arm' label.*by \(arm\)"):
        prometheus_frame(response, "errors", "test")


def test_prometheus_bare_response_named_by_file(tmp_path: Path) -> None:
    """A bare query_range file takes its metric name from the file name."""
    response = {"status": "success", "data": {"resultType": "matrix", "result": [
        {"metric": {"arm": "baseline"}, "values": [[60, "5"]]}]}}
    frame = read_export(_write(tmp_path, "requests.json", json.dumps(response))).frame
    assert frame["metric"].tolist() == ["requests"]


def test_invalid_json(tmp_path: Path) -> None:
    """Broken JSON names the line and column."""
    with pytest.raises(DataError, match=r"e.json:1:\d+: not valid JSON"):
        read_export(_write(tmp_path, "e.json", "{\"status\": "))


def test_kayenta_metric_set_pairs(tmp_path: Path) -> None:
    """Kayenta control/experiment values become baseline/canary rows at the scope's steps."""
    doc = [{"name": "cpu", "tags": {}, "values": {"control": [0.5, 0.6], "experiment": [0.7, "NaN"]},
            "scopes": {"control": {"startTimeMillis": 60000, "stepMillis": 60000},
                       "experiment": {"startTimeMillis": 60000, "stepMillis": 60000}}}]
    frame = read_export(_write(tmp_path, "k.json", json.dumps(doc))).frame
    assert sorted(frame["arm"].unique()) == ["baseline", "canary"]
    assert frame["timestamp"].tolist() == [120.0, 180.0, 120.0, 180.0]
    assert frame["value"].isna().sum() == 1


@pytest.mark.parametrize(("scope", "first", "warned"), [
    ({"startTimeIso": "2026-11-25T08:00:00Z", "stepMillis": 30000}, 1795593630.0, False),
    ({"startTimeIso": "2026-11-25T08:00:00", "startTimeMillis": 60000}, 120.0, False),  # the millis win
    ({"stepMillis": 30000}, 30.0, True),
])
def test_kayenta_scope_start_from_iso_or_warned_when_missing(tmp_path: Path, scope: dict[str, object],
                                                             first: float, warned: bool) -> None:
    """A scope with only startTimeIso starts there (it was read as 1970, and combined with a CSV export a
    20-minute canary reached max_duration); a scope with no start time warns that its times count from 0."""
    doc = [{"name": "cpu", "values": {"control": [0.5], "experiment": [0.7]},
            "scopes": {"control": scope, "experiment": scope}}]
    data = read_export(_write(tmp_path, "k.json", json.dumps(doc)))
    assert data.frame["timestamp"].tolist() == [first, first]
    assert bool(data.warnings) is warned
    assert all("no scope start time (startTimeMillis or startTimeIso)" in w for w in data.warnings)


def test_csv_mixed_epoch_and_iso_timestamps(tmp_path: Path) -> None:
    """A CSV mixing seconds since the epoch and ISO 8601 times reads both."""
    data = read_export(_write(tmp_path, "e.csv", "timestamp,arm,metric,value\n2026-01-01T00:01:00Z,canary,x,1\n"
                                                 "1767225660,baseline,x,2\n"))
    assert data.frame["timestamp"].tolist() == [1767225660.0, 1767225660.0]


def test_csv_with_bom_and_crlf(tmp_path: Path) -> None:
    """A CSV saved by a spreadsheet (UTF-8 byte order mark, CRLF line ends) reads like a plain one."""
    path = tmp_path / "e.csv"
    path.write_bytes(b"\xef\xbb\xbftimestamp,arm,metric,value\r\n60,canary,requests,100\r\n")
    data = read_export(path)
    assert data.frame[["timestamp", "arm", "value"]].values.tolist() == [[60.0, "canary", 100.0]]


def test_directory_is_refused(tmp_path: Path) -> None:
    """A directory passed as DATA is named as one, not reported as a missing file."""
    with pytest.raises(DataError, match="is a directory"):
        read_export(tmp_path)


@pytest.mark.parametrize(("doc", "message"), [
    ({"status": "success", "data": {"resultType": "matrix", "result": [5]}}, r"data.result\[0\]: expected a series"),
    ({"status": "success", "data": {"resultType": "matrix", "result": {}}}, "expected a list of series"),
])
def test_prometheus_malformed_series(tmp_path: Path, doc: object, message: str) -> None:
    """Series that are not objects are bad input, not an internal error."""
    with pytest.raises(DataError, match=message):
        read_export(_write(tmp_path, "requests.json", json.dumps(doc)))


def test_prometheus_empty_result_is_no_rows(tmp_path: Path) -> None:
    """A successful answer with an empty result list is an empty export (NO_DATA), not an error."""
    doc = {"status": "success", "data": {"resultType": "matrix", "result": []}}
    assert read_export(_write(tmp_path, "requests.json", json.dumps(doc))).empty


@pytest.mark.parametrize(("pair", "message"), [
    ({"name": "errors", "values": {"control": [1], "experiment": [1]},
      "scopes": {"control": {"startTimeMillis": "soon"}}}, r"scopes.control.startTimeMillis: expected a finite number"),
    ({"name": "errors", "values": {"control": [1], "experiment": "x"}}, "values.experiment: expected a list"),
    ({"name": "errors", "values": {"control": [1], "experiment": [1]},
      "scopes": {"experiment": {"stepMillis": 0}}}, "stepMillis: must be > 0"),
    ({"name": "errors", "values": {"control": [1], "experiment": [1]},
      "scopes": {"control": {"startTimeIso": "yesterday"}}}, r"scopes.control.startTimeIso: expected an ISO 8601"),
    # pandas read these as the reading's own time and as year 1 (found by a review pass).
    ({"name": "errors", "values": {"control": [1], "experiment": [1]},
      "scopes": {"control": {"startTimeIso": "now"}}}, r"scopes.control.startTimeIso: expected an ISO 8601.*'now'"),
    ({"name": "errors", "values": {"control": [1], "experiment": [1]},
      "scopes": {"control": {"startTimeIso": "today"}}}, r"startTimeIso: expected an ISO 8601 time, got 'today'"),
    ({"name": "errors", "values": {"control": [1], "experiment": [1]},
      "scopes": {"control": {"startTimeIso": "T00:00"}}}, r"startTimeIso: expected an ISO 8601 time, got 'T00:00'"),
])
def test_kayenta_malformed(tmp_path: Path, pair: dict[str, object], message: str) -> None:
    """Malformed MetricSetPair fields are bad input with the field named."""
    with pytest.raises(DataError, match=message):
        read_export(_write(tmp_path, "k.json", json.dumps([pair])))


@pytest.mark.parametrize(("text", "message"), [
    ("[5]", r"\[0\]: expected a MetricSetPair object with 'name' and 'values', got 5"),
    ('[null]', r"\[0\]: expected a MetricSetPair object"),
    ('"x"', r"\[0\]: expected a MetricSetPair object"),
    ('[{"name": "x"}]', r"\[0\] \(x\): values: expected an object with 'control' and 'experiment' lists"),
    ('[{"name": "x", "values": [1]}]', r"values: expected an object"),
    ('[{"name": ["a", "b"], "values": {"control": [1], "experiment": [1]}}]', r"needs a 'name' \(a string\)"),
    ('[{"name": "x", "values": {"control": [1], "experiment": [1]}, "scopes": {"control": {"stepMillis": 1'
     + "0" * 309 + "}}}]", r"scopes.control.stepMillis: expected a finite number of milliseconds"),
])
def test_kayenta_document_of_the_wrong_shape(tmp_path: Path, text: str, message: str) -> None:
    """A Kayenta document that is not a list of MetricSetPair objects is bad input naming the item."""
    with pytest.raises(DataError, match=message):
        read_export(_write(tmp_path, "k.json", text), "kayenta")


def test_a_kayenta_list_with_one_bad_item_is_read_as_kayenta_and_names_that_item(tmp_path: Path) -> None:
    """Detection needed every item to be a MetricSetPair: one bad item sent the file to the Prometheus reader,
    which blamed item [0]."""
    pair = {"name": "errors", "values": {"control": [1], "experiment": [1]}}
    with pytest.raises(DataError, match=r"\[2\]: expected a MetricSetPair object with 'name' and 'values', got 5"):
        read_export(_write(tmp_path, "k.json", json.dumps([pair, pair, 5])))


def test_prometheus_arm_label_must_be_a_string(tmp_path: Path) -> None:
    """A label value that is a list (not what Prometheus sends) is bad input, not a pandas error."""
    doc = {"status": "success", "data": {"result": [{"metric": {"arm": ["a", "b"]}, "values": [[1, "1"]]}]}}
    with pytest.raises(DataError, match=r"data.result\[0\].metric.arm: expected a string, got \['a', 'b'\]"):
        read_export(_write(tmp_path, "p.json", json.dumps(doc)))


@pytest.mark.parametrize(("rows", "message"), [
    ("1,canary,errors,5,6,7\n2,canary,errors,5\n", r"e.csv:2: 6 fields, but the header has 4"),
    ("1,canary,errors,5\n2,canary,errors,5,6\n", r"e.csv:3: 5 fields, but the header has 4"),
    ("1,canary,errors,5\n2,canary,errors,5,6,7\n", r"e.csv:3: 6 fields, but the header has 4"),
    ('1,canary,errors,5\n"2\n",canary,errors,5\n3,canary,errors,5,6\n', r"e.csv:5: 5 fields, but the header has 4"),
])
def test_csv_row_longer_than_the_header(tmp_path: Path, rows: str, message: str) -> None:
    """A row with more fields than the header names its own line (pandas would shift every column)."""
    with pytest.raises(DataError, match=message):
        read_export(_write(tmp_path, "e.csv", "timestamp,arm,metric,value\n" + rows))


@pytest.mark.parametrize(("name", "text", "message"), [
    ("e.csv", "timestamp,arm,metric,value\n1,canary,errors,5\ninf,canary,errors,5\n",
     r"e.csv:3: column timestamp: expected a time in the years 1 to 9999 \(finite seconds since the epoch\), "
     r"got 'inf'"),
    ("e.csv", "timestamp,arm,metric,value\n1e308,canary,errors,5\n", r"e.csv:2: column timestamp: .*got '1e308'"),
    ("e.csv", "timestamp,arm,metric,value\nnan,canary,errors,5\n", r"e.csv:2: column timestamp: .*got 'nan'"),
    ("errors.json", json.dumps({"status": "success", "data": {"result": [
        {"metric": {"arm": "canary"}, "values": [[60, "1"], ["NaN", "1"]]}]}}),
     r"errors.json \(errors\): data.result\[0\] timestamp, item 1: expected a time in the years 1 to 9999 "
     r".*got 'NaN'"),
    ("errors.json", json.dumps({"status": "success", "data": {"result": [
        {"metric": {"arm": "canary"}, "values": [["+Inf", "1"]]}]}}),
     r"data.result\[0\] timestamp, item 0: .*got '\+Inf'"),
    ("k.json", json.dumps([{"name": "errors", "values": {"control": [1], "experiment": [1, 2]},
                            "scopes": {"experiment": {"startTimeMillis": 0, "stepMillis": 1e308}}}]),
     # A JSON list's item, not a line (it read "k.json:0: column"), and 1e+305, not np.float64(1e+305).
     r"k.json: \[0\] experiment time \(from scopes.experiment\), item 0: expected a time in the years 1 to 9999 "
     r"\(finite seconds since the epoch\), got 1e\+305$"),
])
def test_timestamp_no_date_can_hold_is_refused(tmp_path: Path, name: str, text: str, message: str) -> None:
    """A NaN, infinite or out-of-calendar timestamp is bad input in every format (reports print dates)."""
    with pytest.raises(DataError, match=message):
        read_export(_write(tmp_path, name, text))


def test_csv_iso_timestamps_outside_nanoseconds(tmp_path: Path) -> None:
    """Years pandas cannot hold in nanoseconds (before 1678, after 2261) still read as epoch seconds."""
    path = _write(tmp_path, "e.csv", "timestamp,arm,metric,value\n9999-12-31,canary,errors,5\n"
                  "1677-01-01,canary,errors,5\n")
    assert read_export(path).frame["timestamp"].tolist() == [253402214400.0, -9246096000.0]


@pytest.mark.parametrize(("text", "message"), [
    ("[" * 1000 + "]" * 1000, "nested too deeply to read"),
    ('{"status": "success", "data": {"result": [[1, ' + "9" * 5000 + "]]}}", "holds a number thousands of digits long"),
])
def test_json_python_cannot_parse(tmp_path: Path, text: str, message: str) -> None:
    """JSON nested hundreds deep, or with a 5,000-digit number, is bad input naming the file."""
    with pytest.raises(DataError, match=rf"e.json: {message}"):
        read_export(_write(tmp_path, "e.json", text))


def test_file_name_too_long(tmp_path: Path) -> None:
    """A name over the file system's 255 bytes is bad input, not an OSError."""
    with pytest.raises(DataError, match="cannot use this path: File name too long"):
        read_export(tmp_path / ("a" * 300 + ".csv"))


def test_json_file_that_is_not_an_export(tmp_path: Path) -> None:
    """A .json file holding something else is reported as JSON of the wrong shape, not as a CSV header."""
    with pytest.raises(DataError, match="expected a Prometheus query_range response"):
        read_export(_write(tmp_path, "e.json", '"hello"'))
