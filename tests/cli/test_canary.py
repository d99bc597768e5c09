"""`mlplat canary`: exit codes, JSON fields, reports, plots, bad input, planning, simulation and config commands."""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from mlplat.cli import ExitCode, app

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "canary"
CONFIG = EXAMPLES / "canary.yaml"


def _invoke(runner: CliRunner, *args: str) -> object:
    return runner.invoke(app, ["canary", *args])


def _simulate(runner: CliRunner, path: Path, scenario: str, *extra: str) -> Path:
    result = runner.invoke(app, ["canary", "simulate", "--scenario", scenario, "-o", str(path), "--seed", "1",
                                 *extra])
    assert result.exit_code == 0, result.output
    return path


def test_bundled_regression_export_rolls_back(runner: CliRunner) -> None:
    """The bundled regression export is a ROLLBACK (exit 1), with the error rate named as the reason."""
    result = runner.invoke(app, ["canary", "analyze", str(EXAMPLES / "regression.csv"), "-c", str(CONFIG), "--json"])
    assert result.exit_code == ExitCode.FAIL, result.output
    doc = json.loads(result.stdout)
    assert doc["decision"] == "ROLLBACK"
    assert any("critical regression: errors" in r for r in doc["reasons"])


def test_bundled_aa_export_promotes(runner: CliRunner) -> None:
    """The bundled A/A export is not rolled back; at max_duration it is promoted (promote_on_timeout)."""
    result = runner.invoke(app, ["canary", "analyze", str(EXAMPLES / "aa.json"), "-c", str(CONFIG), "--json"])
    assert result.exit_code == ExitCode.OK, result.output
    assert json.loads(result.stdout)["decision"] == "PROMOTE"


def test_json_fields(runner: CliRunner, tmp_path: Path) -> None:
    """--json carries decision, reasons, alpha, srm and per-metric fields."""
    data = _simulate(runner, tmp_path / "r.csv", "error-regression")
    result = runner.invoke(app, ["--json", "canary", "analyze", str(data), "-c", str(CONFIG)])
    doc = json.loads(result.stdout)
    assert doc["alpha"] == 0.05
    assert set(doc["srm"]) >= {"p_value", "observed_share", "expected_share"}
    first = doc["metrics"][0]
    assert set(first) >= {"name", "kind", "status", "p_value", "effect", "ci", "n_baseline", "n_canary",
                          "decided_at"}
    assert first["status"] == "REGRESSION" and len(first["ci"]) == 2


def test_continue_is_exit_3(runner: CliRunner, tmp_path: Path) -> None:
    """Five minutes of a regression is not enough evidence: CONTINUE, exit 3."""
    data = _simulate(runner, tmp_path / "r.csv", "error-regression", "--duration", "5m")
    result = _invoke(runner, "analyze", str(data), "-c", str(CONFIG))
    assert result.exit_code == ExitCode.INCONCLUSIVE
    assert "CONTINUE" in result.stdout


def test_at_option(runner: CliRunner, tmp_path: Path) -> None:
    """--at judges the data up to that time only."""
    data = _simulate(runner, tmp_path / "r.csv", "error-regression")
    result = _invoke(runner, "analyze", str(data), "-c", str(CONFIG), "--at", "2026-01-01T00:03:00Z", "--json")
    assert result.exit_code == ExitCode.INCONCLUSIVE
    assert json.loads(result.stdout)["at"] == 1767225780.0


def test_report_and_plot(runner: CliRunner, tmp_path: Path) -> None:
    """--report writes Markdown and --plot a PNG; both refuse to overwrite without --force."""
    data = _simulate(runner, tmp_path / "r.csv", "error-regression")
    report, plot = tmp_path / "r.md", tmp_path / "r.png"
    result = _invoke(runner, "analyze", str(data), "-c", str(CONFIG), "--report", str(report), "--plot", str(plot))
    assert result.exit_code == ExitCode.FAIL
    assert "**Decision: ROLLBACK**" in report.read_text()
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    again = _invoke(runner, "analyze", str(data), "-c", str(CONFIG), "--report", str(report))
    assert again.exit_code == ExitCode.BAD_INPUT
    assert "already exists" in again.stderr
    # An existing --plot is refused before the report is written: no half-done outputs.
    report.unlink()
    both = _invoke(runner, "analyze", str(data), "-c", str(CONFIG), "--report", str(report), "--plot", str(plot))
    assert both.exit_code == ExitCode.BAD_INPUT and "r.png: already exists" in both.stderr
    assert not report.exists()
    # One path for both: refused up front (the report was written, then the plot refused as existing).
    same = tmp_path / "same.md"
    clash = _invoke(runner, "analyze", str(data), "-c", str(CONFIG), "--report", str(same), "--plot", str(same))
    assert clash.exit_code == ExitCode.BAD_INPUT and "--report and --plot name the same file" in clash.stderr
    assert not same.exists()
    # The export itself as the report, even with --force: refused, the export kept.
    kept = data.read_bytes()
    own = _invoke(runner, "analyze", str(data), "-c", str(CONFIG), "--report", str(data), "--force")
    assert own.exit_code == ExitCode.BAD_INPUT and "is an input of this command" in own.stderr
    assert data.read_bytes() == kept


def test_the_same_export_twice_is_refused(runner: CliRunner, tmp_path: Path) -> None:
    """One export given twice (here as two spellings) summed every count with itself, with only warnings."""
    data = _simulate(runner, tmp_path / "r.csv", "aa")
    result = _invoke(runner, "analyze", str(data), str(tmp_path / "." / "r.csv"), "-c", str(CONFIG))
    assert result.exit_code == ExitCode.BAD_INPUT
    assert "the same export is given twice" in result.stderr


def test_srm_export_rolls_back(runner: CliRunner, tmp_path: Path) -> None:
    """The SRM scenario is rolled back because the comparison is not valid."""
    data = _simulate(runner, tmp_path / "s.json", "srm")
    result = _invoke(runner, "analyze", str(data), "-c", str(CONFIG), "--json")
    assert result.exit_code == ExitCode.FAIL
    assert json.loads(result.stdout)["reasons"][0].startswith("sample ratio mismatch")


def test_kayenta_format(runner: CliRunner, tmp_path: Path) -> None:
    """A Kayenta MetricSetPair export is judged with --format kayenta."""
    pairs = [{"name": "cpu", "values": {"control": [0.5 + 0.001 * (i % 7) for i in range(40)],
                                        "experiment": [0.8 + 0.001 * (i % 5) for i in range(40)]},
              "scopes": {"control": {"startTimeMillis": 0, "stepMillis": 60000},
                         "experiment": {"startTimeMillis": 0, "stepMillis": 60000}}}]
    data = tmp_path / "k.json"
    data.write_text(json.dumps(pairs))
    cfg = tmp_path / "c.yaml"
    cfg.write_text("srm: {enabled: false}\nmetrics:\n  - {name: cpu, kind: mean, metric: cpu, critical: true}\n")
    result = _invoke(runner, "analyze", str(data), "-c", str(cfg), "--format", "kayenta", "--json")
    assert result.exit_code == ExitCode.FAIL, result.output
    assert json.loads(result.stdout)["metrics"][0]["status"] == "REGRESSION"


def test_empty_export_is_exit_3(runner: CliRunner, tmp_path: Path) -> None:
    """An empty export is NO_DATA and CONTINUE (exit 3), not a bad input."""
    data = tmp_path / "e.csv"
    data.write_text("timestamp,arm,metric,value\n")
    result = _invoke(runner, "analyze", str(data), "-c", str(CONFIG), "--json")
    assert result.exit_code == ExitCode.INCONCLUSIVE
    doc = json.loads(result.stdout)
    assert doc["decision"] == "CONTINUE"
    assert {m["status"] for m in doc["metrics"]} == {"NO_DATA"}


def test_empty_prometheus_result_is_exit_3(runner: CliRunner, tmp_path: Path) -> None:
    """A Prometheus answer with an empty result list is NO_DATA and CONTINUE (exit 3), not a bad input."""
    data = tmp_path / "requests.json"
    data.write_text(json.dumps({"status": "success", "data": {"resultType": "matrix", "result": []}}))
    result = _invoke(runner, "analyze", str(data), "-c", str(CONFIG), "--json")
    assert result.exit_code == ExitCode.INCONCLUSIVE, result.output
    assert json.loads(result.stdout)["decision"] == "CONTINUE"


@pytest.mark.parametrize(("name", "message"), [("missing.csv", "no such file"), (".", "is a directory")])
def test_missing_file_or_directory_is_exit_4(runner: CliRunner, tmp_path: Path, name: str, message: str) -> None:
    """A missing file or a directory as DATA is exit 4 with one message naming it."""
    result = _invoke(runner, "analyze", str(tmp_path / name), "-c", str(CONFIG))
    assert result.exit_code == ExitCode.BAD_INPUT, result.output
    assert message in result.stderr and "Traceback" not in result.output


# A good first row and a blank line before each bad row: the message must name the bad row's own line
# (pandas skips blank lines, so a row's position + 2 is not its line).
GOOD = "timestamp,arm,metric,value,le\n60,baseline,requests,100,\n\n"
BAD_CSV = {
    "missing columns": ("timestamp,arm,value\n60,canary,1\n", r"bad.csv: missing column\(s\) metric"),
    "unknown arm": (GOOD + "60,green,requests,1,\n", r"bad.csv:4: unknown arm name\(s\) 'green'"),
    "negative counts": (GOOD + "60,canary,requests,-5,\n", r"bad.csv:4: metric 'requests': negative count -5"),
    "errors > requests": (GOOD + "60,canary,requests,5,\n60,canary,errors,9,\n",
                          r"bad.csv:5: metric 'errors': errors \(9\) greater than requests \(5\)"),
    "non-numeric": (GOOD + "60,canary,requests,many,\n", r"bad.csv:4: column value: expected a number, got 'many'"),
    "not cumulative": (GOOD + "60,canary,latency_seconds,9,0.1\n60,canary,latency_seconds,4,0.2\n",
                       r"bad.csv:5: metric 'latency_seconds': histogram buckets are not cumulative"),
    "bucket count": (GOOD + "60,canary,latency_seconds,9,0.1\n60,canary,latency_seconds,inf,+Inf\n",
                     r"bad.csv:5: metric 'latency_seconds': bucket count inf at timestamp 60 \(canary\)"),
    "samples and buckets": (GOOD + "60,canary,latency_seconds,0.2,\n60,canary,latency_seconds,9,0.1\n",
                            r"bad.csv:5: metric 'latency_seconds' mixes raw samples and histogram buckets"),
    "huge sample": (GOOD + "60,canary,latency_seconds,0.2,\n60,canary,latency_seconds,1e200,\n",
                    r"bad.csv:5: metric 'latency_seconds': samples must be finite"),
    "negative sample": (GOOD + "60,canary,latency_seconds,0.2,\n60,canary,latency_seconds,-1,\n",
                        r"bad.csv:5: metric 'latency_seconds' \(latency\) has values below 0"),
    "quoted line break": ('timestamp,arm,metric,value\n60,baseline,"re\nquests",100\n60,canary,requests,x\n',
                          r"bad.csv:4: column value: expected a number, got 'x'"),
}


@pytest.mark.parametrize("case", sorted(BAD_CSV))
def test_bad_csv_is_exit_4(runner: CliRunner, tmp_path: Path, case: str) -> None:
    """Each bad input is exit 4 with a message naming the file and the bad row's line, and no traceback."""
    text, message = BAD_CSV[case]
    data = tmp_path / "bad.csv"
    data.write_text(text)
    result = _invoke(runner, "analyze", str(data), "-c", str(CONFIG))
    assert result.exit_code == ExitCode.BAD_INPUT, result.output
    assert re.search(message, result.stderr), result.stderr
    assert "Traceback" not in result.output


def test_error_found_after_reading_names_the_file_of_several(runner: CliRunner, tmp_path: Path) -> None:
    """With two CSV exports, an unknown arm in the second is placed at its line in that file."""
    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    first.write_text(GOOD)
    second.write_text("timestamp,arm,metric,value\n60,canary,requests,5\n120,green,requests,5\n")
    result = _invoke(runner, "analyze", str(first), str(second), "-c", str(CONFIG))
    assert result.exit_code == ExitCode.BAD_INPUT, result.output
    assert f"{second}:3: unknown arm name(s) 'green'" in result.stderr


def test_duplicates_and_unsorted_warn(runner: CliRunner, tmp_path: Path) -> None:
    """Duplicated timestamps are summed and unsorted rows sorted, each with a warning on stderr."""
    data = tmp_path / "d.csv"
    data.write_text("timestamp,arm,metric,value\n120,canary,requests,5\n60,canary,requests,5\n"
                    "60,canary,requests,5\n60,baseline,requests,95\n120,baseline,requests,95\n")
    result = _invoke(runner, "analyze", str(data), "-c", str(CONFIG))
    assert result.exit_code == ExitCode.INCONCLUSIVE
    assert "duplicated" in result.stderr and "summed" in result.stderr
    assert "sorted" in result.stderr


def test_prometheus_status_error_file_is_exit_4(runner: CliRunner, tmp_path: Path) -> None:
    """A Prometheus export whose status is error is exit 4 with the server's message."""
    data = tmp_path / "errors.json"
    data.write_text(json.dumps({"status": "error", "errorType": "timeout", "error": "query timed out"}))
    result = _invoke(runner, "analyze", str(data), "-c", str(CONFIG))
    assert result.exit_code == ExitCode.BAD_INPUT
    assert "status error: timeout: query timed out" in result.stderr


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_prometheus_unreachable_is_exit_4(runner: CliRunner) -> None:
    """Nothing listening on the port: exit 4, "unreachable"."""
    url = f"http://127.0.0.1:{_free_port()}"
    result = _invoke(runner, "analyze", "--prometheus", url, "-c", str(CONFIG), "--start", "now-10m")
    assert result.exit_code == ExitCode.BAD_INPUT
    assert "unreachable" in result.stderr


def _analyze_against(runner: CliRunner, answer: bytes) -> tuple[str, Any]:
    """`analyze --prometheus` against a loopback port that answers every connection with ``answer``."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)

    def serve() -> None:
        with contextlib.suppress(OSError):
            while True:
                conn, _ = sock.accept()
                with conn:
                    conn.recv(65536)
                    conn.sendall(answer)

    threading.Thread(target=serve, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        return url, _invoke(runner, "analyze", "--prometheus", url, "-c", str(CONFIG), "--start", "now-10m")
    finally:
        sock.close()


@pytest.mark.parametrize("answer", [b"SSH-2.0-OpenSSH_9.6\r\n",
                                    b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"status\""])
def test_prometheus_port_that_is_not_http_is_exit_4(runner: CliRunner, answer: bytes) -> None:
    """A port that answers something other than HTTP, or cuts its answer short, is exit 4, not a traceback."""
    url, result = _analyze_against(runner, answer)
    assert result.exit_code == ExitCode.BAD_INPUT, result.output
    assert f"Prometheus at {url} did not answer HTTP" in result.stderr


def test_an_http_error_that_is_json_but_not_prometheus_s_is_exit_4(runner: CliRunner) -> None:
    """A proxy answering 502 with the JSON text "bad gateway" was exit 5 ('str' has no .get)."""
    body = b'"bad gateway"'
    url, result = _analyze_against(runner, b"HTTP/1.1 502 Bad Gateway\r\nContent-Type: application/json\r\n"
                                           b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
    assert result.exit_code == ExitCode.BAD_INPUT, result.output
    assert f"Prometheus at {url} answered HTTP 502" in result.stderr


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A socket that accepts connections and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    sock.close()


MALFORMED_URLS = [
    ("http://[::1", "--prometheus: expected http://HOST[:PORT] or https://HOST[:PORT], got 'http://[::1' "
     "(Invalid IPv6 URL)"),
    ("http://127.0.0.1:abc", "got 'http://127.0.0.1:abc' (Port could not be cast to integer"),
    ("http://exa mple.com", "--prometheus: must not contain spaces or control characters"),
    ("http://h:1/a b", "--prometheus: must not contain spaces or control characters"),
    ("ftp://prometheus", "--prometheus: expected http://HOST[:PORT] or https://HOST[:PORT] (a scheme and a host)"),
    # urllib's IDNA and ASCII encodings failed as they sent (exit 5; found by a review pass).
    ("http://prom..local:9090", "--prometheus: expected http://HOST[:PORT] or https://HOST[:PORT] with a valid host "
     "name and an ASCII path (percent-encode other characters), got 'http://prom..local:9090'"),
    ("http://127.0.0.1:1/ä", "with a valid host name and an ASCII path (percent-encode other characters)"),
    # A malformed URL with a password in it printed the password (from the diff review).
    ("http://user:s3cret@prom:99999/", "got 'http://***@prom:99999/' (the parser's message is left out: it may "
     "quote the credentials)"),
    # A token in the query was printed in every later error, and the API path went after it (diff review).
    ("http://127.0.0.1:9/?token=SECRETTOK", "--prometheus: a query or fragment in the URL is not supported (the API "
     "path is appended to the URL), got 'http://127.0.0.1:9/?token=***'"),
]


@pytest.mark.parametrize(("url", "message"), MALFORMED_URLS)
def test_malformed_prometheus_url_is_exit_4(runner: CliRunner, url: str, message: str) -> None:
    """A URL urllib cannot use is bad input named as --prometheus, checked before --start is read."""
    result = _invoke(runner, "analyze", "--prometheus", url, "-c", str(CONFIG))
    assert result.exit_code == ExitCode.BAD_INPUT, result.output
    assert message in " ".join(result.stderr.split())


@pytest.mark.parametrize(("url", "message"), MALFORMED_URLS)
def test_watch_malformed_prometheus_url_is_exit_4_before_waiting(runner: CliRunner, url: str, message: str) -> None:
    """canary watch refuses an unusable --prometheus at once, even when --start is hours away."""
    result = _invoke(runner, "watch", "--prometheus", url, "-c", str(CONFIG), "--start", "now+2h")
    assert result.exit_code == ExitCode.BAD_INPUT, result.output
    assert message in " ".join(result.stderr.split())


@pytest.mark.parametrize(("option", "value", "message"), [
    ("--start", "1e308", "--start: expected a time in the years 1 to 9999, got '1e308'"),
    ("--start", "nan", "--start: expected a time in the years 1 to 9999, got 'nan'"),
    ("--start", "nowhere", "--start: expected now, now-30m or now+5m, got 'nowhere'"),
    ("--start", "now-soon", "--start: expected a duration such as '90s', '10m', '1h30m' or '1d', got 'soon'"),
    ("--end", "inf", "--end: expected a time in the years 1 to 9999, got 'inf'"),
])
def test_time_no_date_can_hold_is_exit_4(runner: CliRunner, option: str, value: str, message: str) -> None:
    """Times are dates: NaN, inf and 1e308 are refused before any query (they used to crash the report)."""
    args = {"--start": "now-10m", option: value}
    result = _invoke(runner, "analyze", "--prometheus", "http://127.0.0.1:9", "-c", str(CONFIG),
                     *[item for pair in args.items() for item in pair])
    assert result.exit_code == ExitCode.BAD_INPUT, result.output
    assert message in " ".join(result.stderr.split())


def test_at_nan_is_exit_4(runner: CliRunner) -> None:
    """--at nan used to be accepted and judge nothing; it is bad input like any time no date can hold."""
    result = _invoke(runner, "analyze", str(EXAMPLES / "regression.csv"), "--at", "nan")
    assert result.exit_code == ExitCode.BAD_INPUT
    assert "--at: expected a time in the years 1 to 9999" in result.stderr


@pytest.mark.parametrize(("config", "extra", "message"), [
    (None, ["--traffic-share", "1e-300"], "--traffic-share must be in [0.0001%, 99.9999%], got '1e-300'"),
    (None, ["--traffic-share", "lots"], "--traffic-share: expected a share such as '5%' or '0.05', got 'lots'"),
    ("traffic_share: 1.0e-9\nmetrics:\n  - {name: errors, kind: rate, events: errors}\n", [],
     "c.yaml:1:16: traffic_share:"),
    ("metrics:\n  - {name: errors, kind: rate, events: errors, concentration: 1.0e+300}\n", [],
     "metrics[0].concentration:"),
])
def test_share_or_concentration_the_prior_cannot_hold_is_exit_4(
        runner: CliRunner, tmp_path: Path, config: str | None, extra: list[str], message: str) -> None:
    """A share within 1e-6 of 0 or 1, or a concentration over 1e6, is refused (it leaked numpy warnings)."""
    cfg = CONFIG
    if config is not None:
        cfg = tmp_path / "c.yaml"
        cfg.write_text(config)
    result = _invoke(runner, "analyze", str(EXAMPLES / "regression.csv"), "-c", str(cfg), *extra)
    assert result.exit_code == ExitCode.BAD_INPUT, result.output
    assert message in " ".join(result.stderr.split())
    assert "RuntimeWarning" not in result.stderr


@pytest.mark.parametrize(("metrics", "message"), [
    ("nope", "--metrics: unknown metric name(s) 'nope'; the config has errors, latency, cpu"),
    ("errors,errors", "--metrics: 'errors' given twice; list each metric once"),
])
def test_analyze_metrics_unknown_or_repeated_is_exit_4(runner: CliRunner, metrics: str, message: str) -> None:
    """`analyze --metrics` names metrics of the config, each once."""
    result = _invoke(runner, "analyze", str(EXAMPLES / "regression.csv"), "-c", str(CONFIG), "--metrics", metrics)
    assert result.exit_code == ExitCode.BAD_INPUT, result.output
    assert message in " ".join(result.stderr.split())


def test_analyze_metrics_judges_only_those(runner: CliRunner) -> None:
    """`analyze --metrics errors,cpu` judges those two, each at half of what is left after SRM."""
    result = _invoke(runner, "analyze", str(EXAMPLES / "regression.csv"), "-c", str(CONFIG), "--metrics",
                     "errors,cpu", "--json")
    doc = json.loads(result.stdout)
    assert [m["name"] for m in doc["metrics"]] == ["errors", "cpu"]
    assert "0.0245 per metric (Bonferroni over 2 metric(s))" in doc["alpha_split"]


def test_prometheus_end_before_start_is_exit_4(runner: CliRunner) -> None:
    """--end before --start is exit 4 naming both times readably, before any query is sent."""
    result = _invoke(runner, "analyze", "--prometheus", "http://127.0.0.1:9", "-c", str(CONFIG),
                     "--start", "2026-01-01T01:00:00Z", "--end", "2026-01-01T00:00:00Z")
    assert result.exit_code == ExitCode.BAD_INPUT, result.output
    assert "--end (2026-01-01T00:00:00Z) must be after --start (2026-01-01T01:00:00Z)" in result.stderr


def test_prometheus_timeout_is_exit_4(runner: CliRunner, silent_server: str, tmp_path: Path) -> None:
    """A server that never answers times out after prometheus.timeout: exit 4, "timed out"."""
    cfg = tmp_path / "c.yaml"
    cfg.write_text(CONFIG.read_text().replace("timeout: 10s", "timeout: 0.5s"))
    result = _invoke(runner, "analyze", "--prometheus", silent_server, "-c", str(cfg), "--start", "now-10m")
    assert result.exit_code == ExitCode.BAD_INPUT
    assert "timed out after 0.5s" in result.stderr  # the configured timeout, not the 10 s default


class _ErrorHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps({"status": "error", "errorType": "bad_data", "error": "1:5: parse error"}).encode()
        self.send_response(400)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_prometheus_http_status_error_is_exit_4(runner: CliRunner) -> None:
    """An HTTP 400 answer with status error is exit 4 and carries Prometheus' message."""
    server = HTTPServer(("127.0.0.1", 0), _ErrorHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        result = _invoke(runner, "analyze", "--prometheus", url, "-c", str(CONFIG), "--start", "now-10m")
    finally:
        server.shutdown()
        server.server_close()
    assert result.exit_code == ExitCode.BAD_INPUT
    assert "status error" in result.stderr and "1:5: parse error" in result.stderr


def test_analyze_needs_data_or_prometheus(runner: CliRunner) -> None:
    """No DATA and no --prometheus is a usage error (exit 2, as a missing argument is), with a clear message."""
    result = _invoke(runner, "analyze", "-c", str(CONFIG))
    assert result.exit_code == ExitCode.USAGE
    assert "give an export file" in result.output


def test_plan_small(runner: CliRunner) -> None:
    """plan prints power per cell, the false-alarm rate and the smallest designs (JSON)."""
    result = _invoke(runner, "plan", "--baseline-rate", "0.001", "--rps", "1e6/h", "--traffic", "5%",
                     "--effect", "2", "--runs", "200", "--seed", "1", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    cell = doc["cells"][0]
    assert cell["traffic"] == 0.05 and cell["power"] > 0.9
    assert doc["false_alarm"][0]["rate"] <= 0.05


def test_plan_simulates_the_gate_with_min_events(runner: CliRunner) -> None:
    """plan waits for the metric's min_events as the judge does (default 10, the config's): with 1000 bad
    events needed at 278 req/s and a 0.1% error rate (about an hour of errors), no run detects in 30 min."""
    args = ["plan", "--baseline-rate", "0.001", "--rps", "278", "--traffic", "10%", "--effect", "3",
            "--max-duration", "30m", "--runs", "100", "--seed", "1", "--json"]
    default, waiting = (json.loads(_invoke(runner, *args, *extra).stdout) for extra in ([], ["--min-events", "1000"]))
    assert default["min_events"] == 10 and waiting["min_events"] == 1000
    assert default["cells"][0]["power"] > 0.9 and waiting["cells"][0]["power"] == 0.0


def test_plan_table(runner: CliRunner) -> None:
    """The plan table names the cells and the smallest traffic for 80% power."""
    result = _invoke(runner, "plan", "--baseline-rate", "0.001", "--rps", "278", "--traffic", "2%,10%",
                     "--effect", "3", "--runs", "100")
    assert result.exit_code == 0, result.output
    assert "80% power from" in result.stdout


def test_plan_table_keeps_the_digits_of_extreme_shares(runner: CliRunner) -> None:
    """The smallest and largest shares plan accepts print as given; they printed as 0.00% and 100%."""
    result = _invoke(runner, "plan", "--baseline-rate", "0.001", "--rps", "278", "--traffic", "0.0001%,99.9999%",
                     "--effect", "3", "--runs", "20")
    assert result.exit_code == 0, result.output
    text = " ".join(result.stdout.split())
    assert "false-alarm rate at 0.0001%" in text and "false-alarm rate at 99.9999%" in text
    assert "0.00%" not in text and "at 100%" not in text


@pytest.mark.parametrize(("args", "message"), [
    (["--traffic", "150%"], "each share must be in [0.0001%, 99.9999%], got 1.5"),
    (["--traffic", "1e-300"], "each share must be in [0.0001%, 99.9999%], got 1e-300"),
    (["--effect", "0.5"], "each multiplier must be > 1"),
    # Each repeat was simulated again as another row, with its own noise.
    (["--traffic", "5%,0.05"], "--traffic: 0.05 is given twice; list each value once"),
    (["--effect", "2,2"], "--effect: 2 is given twice"),
    (["--rps", "fast"], "--rps"),
    (["--alpha", "1.5"], "--srm-alpha"),
    (["--concentration", "0"], "--concentration must be in [1e-06, 1e+06], got 0"),
    (["--concentration", "nan"], "--concentration must be in [1e-06, 1e+06], got nan"),
    (["--concentration", "1e300"], "--concentration must be in [1e-06, 1e+06], got 1e+300"),
    (["--tolerance", "-1"], "--tolerance must be a finite number >= 0"),
    (["--tolerance", "nan"], "--tolerance must be a finite number >= 0"),
    (["--tolerance", "1", "--effect", "3,1.5"], "--effect 1.5x is within --tolerance 1 (ratios up to 2 are"),
    (["--max-duration", "0s"], "the duration must be at least one interval"),
    (["--max-duration", "1e9"], "16,666,666 looks (1e+09 s every 60 s) is more than the 5,000,000"),
    (["--runs", "100000000000000000000"], "is more than the 5,000,000 a simulation may hold"),
    (["--rps", "1e308"], "rps x interval must be in (0, 1e+12] requests per look"),
    (["--min-events", "-1"], "--min-events must be >= 0 (bad events before a verdict), got -1"),
])
def test_plan_bad_input(runner: CliRunner, args: list[str], message: str) -> None:
    """plan refuses impossible inputs with exit 4."""
    base = {"--baseline-rate": "0.001", "--rps": "278", "--runs": "20"}
    for key, value in zip(args[::2], args[1::2], strict=True):
        base[key] = value
    flat = [item for pair in base.items() for item in pair]
    result = _invoke(runner, "plan", *flat)
    assert result.exit_code == ExitCode.BAD_INPUT, result.output
    assert message in result.stderr


def test_simulate_bad_scenario(runner: CliRunner, tmp_path: Path) -> None:
    """An unknown scenario is a usage error (exit 2, as an unknown --method of rubric is); an output extension
    the command cannot write is exit 4."""
    assert _invoke(runner, "simulate", "--scenario", "chaos", "-o", str(tmp_path / "x.csv")).exit_code == 2
    assert _invoke(runner, "simulate", "-o", str(tmp_path / "x.txt")).exit_code == 4


@pytest.mark.parametrize(("args", "message"), [
    (["--baseline-rate", "2"], r"baseline_rate must be in \(0, 1\), got 2"),
    (["--effect", "-1"], "effect must be a finite number > 0"),
    (["--effect", "nan"], "effect must be a finite number > 0"),
    # It was clamped silently to an error rate of 1.
    (["--scenario", "error-regression", "--effect", "1e9"],
     r"effect x baseline_rate is the canary's error rate and must be at most 1, got 1e\+09 x 0.001 = 1e\+06"),
    (["--duration", "0s"], "duration >= interval"),
    (["--duration", "1000d"], "is more than 50,000 looks"),
    (["--duration", "1e12"], "--duration: a duration must be from 0 to 100 years, got '1e12'"),
    (["--rps", "1e308"], r"rps x interval must be in \(0, 1e\+12\] requests per look"),
])
def test_simulate_bad_numbers(runner: CliRunner, tmp_path: Path, args: list[str], message: str) -> None:
    """Rates outside (0, 1), a negative effect or no interval are exit 4 with the value, not an internal error."""
    result = _invoke(runner, "simulate", "-o", str(tmp_path / "x.csv"), *args)
    assert result.exit_code == ExitCode.BAD_INPUT, result.output
    assert re.search(message, result.stderr), result.stderr
    assert not (tmp_path / "x.csv").exists()


def test_init_validate_schema(runner: CliRunner, tmp_path: Path) -> None:
    """init writes the commented template, validate accepts it, schema prints JSON Schema."""
    path = tmp_path / "canary.yaml"
    assert _invoke(runner, "init", str(path)).exit_code == 0
    assert "# mlplat canary config" in path.read_text()
    result = _invoke(runner, "validate", str(path))
    assert result.exit_code == 0 and "valid" in result.stdout
    schema = json.loads(_invoke(runner, "schema").stdout)
    assert "metrics" in schema["properties"]


def test_commands_that_only_write_a_file_print_one_json_document(runner: CliRunner, tmp_path: Path) -> None:
    """With --json, init and simulate printed nothing on stdout (the note went to stderr)."""
    result = runner.invoke(app, ["--json", "canary", "init", str(tmp_path / "c.yaml")])
    assert result.exit_code == 0 and json.loads(result.stdout) == {"wrote": str(tmp_path / "c.yaml")}
    result = runner.invoke(app, ["--json", "canary", "simulate", "-o", str(tmp_path / "x.csv"), "--duration", "5m"])
    assert result.exit_code == 0
    assert json.loads(result.stdout) == {"wrote": str(tmp_path / "x.csv"), "scenario": "aa", "rows": 440}


def test_validate_points_at_line(runner: CliRunner, tmp_path: Path) -> None:
    """A config error names file:line:column and the key path."""
    path = tmp_path / "c.yaml"
    path.write_text("alpha: 0.05\nmetrics:\n  - name: errors\n    kind: rate\n    events: errors\n"
                    "    tolerance: -0.1\n")
    result = _invoke(runner, "validate", str(path))
    assert result.exit_code == ExitCode.BAD_INPUT
    assert f"{path}:6:16: metrics[0].tolerance: must be >= 0" in result.stderr
    # A bound inside a nested list item: the item itself, not the top of the file.
    path.write_text("alpha: 0.05\nmetrics:\n  - name: lat\n    kind: distribution\n    metric: lat\n"
                    "    quantiles: [0.5, 1.5]\n")
    result = _invoke(runner, "validate", str(path))
    assert result.exit_code == ExitCode.BAD_INPUT
    assert f"{path}:6:22: metrics[0].quantiles[1]: must be <= 0.999999, got 1.5" in result.stderr


@pytest.mark.parametrize(("body", "expected"), [
    # Both were valid: the quantile's test ran twice on half its alpha each; the rate was 1 in both arms.
    ("  - name: lat\n    kind: distribution\n    metric: lat\n    quantiles: [0.5, 0.99, 0.5]\n",
     "c.yaml:6:28: metrics[0].quantiles[2]: 0.5 is listed twice"),
    ("  - name: errors\n    kind: rate\n    events: requests\n",
     "c.yaml:5:13: metrics[0].events: must differ from exposure ('requests')"),
])
def test_validate_refuses_a_repeated_quantile_and_events_counted_as_exposure(runner: CliRunner, tmp_path: Path,
                                                                             body: str, expected: str) -> None:
    """Mistakes that validated: each is exit 4 at its line."""
    path = tmp_path / "c.yaml"
    path.write_text("alpha: 0.05\nmetrics:\n" + body)
    result = _invoke(runner, "validate", str(path))
    assert result.exit_code == ExitCode.BAD_INPUT
    assert expected in result.stderr


def test_help_lists_commands(runner: CliRunner) -> None:
    """`mlplat canary --help` lists the commands."""
    result = _invoke(runner, "--help")
    for name in ("analyze", "watch", "plan", "simulate", "init", "validate", "schema"):
        assert name in result.stdout


ROLLOUT = ["rollout", "--rps", "300", "-c", str(CONFIG), "--stages", "shadow,5%,50%,100%", "--effect", "2",
           "--runs", "60", "--max-total", "3h"]


def test_rollout_table_and_json(runner: CliRunner) -> None:
    """rollout prints a table; --json carries stages with dwell, power, blast radius and checks."""
    result = _invoke(runner, *ROLLOUT)
    assert result.exit_code == 0, result.output
    assert "shadow" in result.stdout and "Split unit: request" in result.stdout
    doc = json.loads(_invoke(runner, *ROLLOUT, "--json").stdout)
    assert [s["name"] for s in doc["stages"]] == ["shadow", "5%", "50%", "100%"]
    assert {"dwell_s", "power", "affected_requests", "extra_errors_if_bad", "checks", "rollback"} <= set(
        doc["stages"][1])


@pytest.mark.parametrize("fmt", ["markdown", "argo", "flagger"])
def test_rollout_formats_to_file(runner: CliRunner, tmp_path: Path, fmt: str) -> None:
    """-o writes the runbook, the Argo steps or the Flagger block."""
    path = tmp_path / f"plan.{fmt}"
    result = _invoke(runner, *ROLLOUT, "--format", fmt, "-o", str(path))
    assert result.exit_code == 0, result.output
    text = path.read_text()
    assert {"markdown": "# Canary rollout runbook", "argo": "kind: Rollout", "flagger": "kind: Canary"}[fmt] in text


@pytest.mark.parametrize(("args", "message"), [
    (["--stages", "5%,1%"], "shares must increase"),
    (["--stages", "5%,120%"], "each share must be in (0, 100%]"),
    (["--metrics", "bogus"], "unknown metric name(s) 'bogus'"),
    (["--power", "1.5"], "--power must be in (0, 1)"),
    (["--max-total", "10s"], "is shorter than one look"),
    (["--max-total", "100d"], "144,000 looks (8.64e+06 s every 60 s) is more than the 5,000,000"),
    # The example's errors metric accepts ratios up to 1.1: a 1.05x canary is no regression to it.
    (["--effect", "1.05"], "--effect 1.05x is within the tolerance of rate metric 'errors' (0.1: ratios up to 1.1"),
])
def test_rollout_bad_input(runner: CliRunner, args: list[str], message: str) -> None:
    """Bad stages, unknown metrics, power outside (0, 1), an impossible --max-total, an effect the gate accepts:
    exit 4 with a message."""
    result = _invoke(runner, *ROLLOUT, *args)
    assert result.exit_code == ExitCode.BAD_INPUT, result.output
    assert message in result.stderr


@pytest.mark.parametrize("args", [["--format", "helm"], ["--unit", "team"]])
def test_rollout_unknown_choices_are_usage_errors(runner: CliRunner, args: list[str]) -> None:
    """A value outside an option's choices is exit 2 (usage), as rubric's --method is; it was exit 4."""
    result = _invoke(runner, *ROLLOUT, *args)
    assert result.exit_code == ExitCode.USAGE and f"Invalid value for {args[0]}: must be" in result.output


def test_rollout_that_cannot_fit_max_total_is_exit_4(runner: CliRunner, tmp_path: Path) -> None:
    """A --max-total too short for the stages' power is exit 4 with what to change, and writes no file."""
    path = tmp_path / "rollout.yaml"
    result = _invoke(runner, *ROLLOUT, "--max-total", "5m", "--format", "argo", "-o", str(path))
    assert result.exit_code == ExitCode.BAD_INPUT, result.output
    assert "a stage cannot reach 0.9 power within --max-total 5m" in result.stderr
    assert "more traffic" in result.stderr and "larger detectable effect" in result.stderr
    assert not path.exists()


def test_rollout_whose_stages_each_fit_but_not_together_says_so(runner: CliRunner) -> None:
    """Every stage reaches its power, but the total is over --max-total: the error says that, not that the
    stages cannot reach their power."""
    result = _invoke(runner, "rollout", "--config", str(CONFIG), "--rps", "300", "--stages", "5%,25%,50%",
                     "--effect", "2", "--runs", "100", "--max-total", "50m")
    assert result.exit_code == ExitCode.BAD_INPUT, result.output
    assert "every stage reaches 0.9 power, but together they take longer than --max-total 50m" in result.stderr


def test_one_prometheus_file_per_query(runner: CliRunner, tmp_path: Path) -> None:
    """Several Prometheus responses, one file per query named after its metric, are judged together."""
    combined = json.loads((EXAMPLES / "aa.json").read_text())
    paths = []
    for item in combined:
        path = tmp_path / f"{item['metric']}.json"
        path.write_text(json.dumps(item["response"]))
        paths.append(str(path))
    result = _invoke(runner, "analyze", *paths, "-c", str(CONFIG), "--json")
    assert result.exit_code == ExitCode.OK, result.output
    assert json.loads(result.stdout)["decision"] == "PROMOTE"


def _rows(path: Path, lines: list[str]) -> str:
    path.write_text("timestamp,arm,metric,value\n" + "".join(line + "\n" for line in lines))
    return str(path)


def test_negative_scores_are_refused_by_quantile_tests_and_taken_by_drift(runner: CliRunner, tmp_path: Path) -> None:
    """Quantile tests compare ratios: two identical arms of negative scores rolled back (p = 7e-11)."""
    data = _rows(tmp_path / "s.csv", [f"{t},{arm},score,{-0.5 - i / 200:.4f}" for t in range(60, 1260, 60)
                                      for arm in ("baseline", "canary") for i in range(200)])
    cfg = tmp_path / "c.yaml"
    cfg.write_text("traffic_share: 50%\nsrm: {enabled: false}\nmetrics:\n  - {name: score, kind: distribution, "
                   "metric: score, quantiles: [0.5], tolerance: 0.1, min_samples: 100}\n")
    result = _invoke(runner, "analyze", data, "--config", str(cfg))
    assert result.exit_code == ExitCode.BAD_INPUT
    assert "metric 'score' (score) has values below 0 (down to -1.495); its quantile tests" in result.stderr
    cfg.write_text(cfg.read_text().replace("quantiles: [0.5]", "quantiles: [], drift: true"))
    assert _invoke(runner, "analyze", data, "--config", str(cfg)).exit_code != ExitCode.FAIL


def test_buckets_below_0_are_refused_but_a_first_bucket_of_le_0_is_not(runner: CliRunner, tmp_path: Path) -> None:
    """A histogram of sizes with le="0" first has a floor of -inf, which is no sign of negative values."""
    cfg = tmp_path / "c.yaml"
    cfg.write_text("traffic_share: 50%\nsrm: {enabled: false}\nmetrics:\n  - {name: size, kind: distribution, "
                   "metric: size, quantiles: [0.5], min_samples: 10}\n")
    rows = [f"{t},{arm},size,{n},{le}" for t in (60, 120) for arm in ("baseline", "canary")
            for n, le in ((0, 0), (500, 1), (800, "+Inf"))]
    (tmp_path / "b.csv").write_text("timestamp,arm,metric,value,le\n" + "\n".join(rows) + "\n")
    assert _invoke(runner, "analyze", str(tmp_path / "b.csv"), "--config", str(cfg)).exit_code == ExitCode.INCONCLUSIVE
    (tmp_path / "b.csv").write_text("timestamp,arm,metric,value,le\n" + "\n".join(
        f"60,{arm},size,{n},{le}" for arm in ("baseline", "canary") for n, le in ((5, -1), (10, "+Inf"))) + "\n")
    result = _invoke(runner, "analyze", str(tmp_path / "b.csv"), "--config", str(cfg))
    assert result.exit_code == ExitCode.BAD_INPUT and "has values below 0 (down to -1)" in result.stderr


def test_new_errors_on_an_error_free_baseline_have_an_infinite_effect(runner: CliRunner, tmp_path: Path) -> None:
    """The estimate fell back to 1 / share (+100% here), below the interval's own lower end (+1360%)."""
    data = _rows(tmp_path / "z.csv", [line for t in range(60, 1260, 60) for line in (
        f"{t},baseline,requests,1000", f"{t},canary,requests,1000", f"{t},baseline,errors,0", f"{t},canary,errors,50")])
    cfg = tmp_path / "c.yaml"
    cfg.write_text("traffic_share: 50%\nmetrics:\n  - {name: errors, kind: rate, events: errors, min_events: 0}\n")
    result = runner.invoke(app, ["--json", "canary", "analyze", data, "--config", str(cfg)])
    assert result.exit_code == ExitCode.FAIL
    (metric,) = json.loads(result.stdout)["metrics"]
    assert metric["effect"] is None and metric["ci"][0] > 10  # JSON has no inf: null, as the interval's end
    assert "+inf" in _invoke(runner, "analyze", data, "--config", str(cfg)).stdout


@pytest.mark.parametrize(("text", "message"), [
    ("metrics:\n  - {name: e, kind: rate, events: errors, concentration: 1e-310}\n",
     "metrics[0].concentration: must be >= 1e-06"),  # boost's Beta overflowed: exit 5
    ("srm: {concentration: 1e16}\nmetrics:\n  - {name: e, kind: rate, events: errors}\n",
     "srm.concentration: must be <= 1e+12"),  # the bundled A/A export rolled back on SRM
    ("srm: {concentration: .inf}\nmetrics:\n  - {name: e, kind: rate, events: errors}\n",
     "srm.concentration: must be"),  # silently switched the SRM check off
    ("alpha: 1" + "0" * 5000 + "\nmetrics:\n  - {name: e, kind: rate, events: errors}\n",
     "a value cannot be read: Exceeds the limit (4300 digits) for integer string conversion"),
    ("metrics:\n  - {name: l, kind: distribution, metric: l, quantiles: [0.9999999]}\n",
     "metrics[0].quantiles[0]: must be <= 0.999999"),
    # srm.alpha left at its default: the value the user wrote is alpha (it was named as "alpha: must be <
    # alpha").
    ("alpha: 0.0005\nmetrics:\n  - {name: e, kind: rate, events: errors}\n",
     ":1:8: alpha: must be above srm.alpha (0.001, its default)"),
])
def test_config_values_past_what_the_tests_can_compute_exit_4(runner: CliRunner, tmp_path: Path, text: str,
                                                               message: str) -> None:
    """Config values the tests cannot compute with (extreme alphas, bounds) are exit 4 at their line."""
    cfg = tmp_path / "c.yaml"
    cfg.write_text(text)
    result = _invoke(runner, "validate", str(cfg))
    assert result.exit_code == ExitCode.BAD_INPUT and message in result.stderr, result.stderr


def test_counts_past_2_to_the_53_exit_4(runner: CliRunner, tmp_path: Path) -> None:
    """Identical arms of 5e17 per bucket read as drift (p = 4e-223): past 2^53 a float loses whole events."""
    (tmp_path / "b.csv").write_text("timestamp,arm,metric,value,le\n" + "".join(
        f"{t},{arm},latency,{n},{le}\n" for t in (60, 120) for arm in ("baseline", "canary")
        for n, le in ((5 * 10**17, 0.1), (10**18, "+Inf"))))
    cfg = tmp_path / "c.yaml"
    cfg.write_text("traffic_share: 50%\nmetrics:\n  - {name: latency, kind: distribution, metric: latency, "
                   "quantiles: [], drift: true, min_samples: 0}\n")
    result = _invoke(runner, "analyze", str(tmp_path / "b.csv"), "--config", str(cfg))
    assert result.exit_code == ExitCode.BAD_INPUT and "at most 2^53" in result.stderr


def test_rollout_never_writes_over_its_config_and_a_url_password_is_never_shown(runner: CliRunner,
                                                                                tmp_path: Path) -> None:
    """rollout -o naming its own --config is refused before any write, and a URL's password is masked."""
    cfg = tmp_path / "my.yaml"
    cfg.write_text((EXAMPLES / "canary.yaml").read_text())
    before = cfg.read_text()
    result = _invoke(runner, "rollout", "--config", str(cfg), "--rps", "300", "--runs", "20", "--stages", "5%,100%",
                     "--format", "argo", "-o", str(cfg), "--force")
    assert result.exit_code == ExitCode.BAD_INPUT and "is an input of this command" in result.stderr
    assert cfg.read_text() == before
    result = _invoke(runner, "analyze", "--prometheus", "http://user:s3cret@127.0.0.1:1", "--config", str(cfg))
    assert result.exit_code == ExitCode.BAD_INPUT and "s3cret" not in result.output
    assert "a user or password in the URL is not supported" in result.stderr


@pytest.mark.parametrize(("args", "message"), [
    (["analyze", str(EXAMPLES / "aa.json"), "-c", str(CONFIG), "--max-duration", "0s"],
     "--max-duration must be > 0, got 0 s"),
    (["watch", "--prometheus", "http://127.0.0.1:9", "-c", str(CONFIG), "--interval", "0s"],
     "--interval must be > 0, got '0s'"),
])
def test_non_positive_durations_name_the_value(runner: CliRunner, args: list[str], message: str) -> None:
    """A zero --max-duration or --interval is exit 4 with the value given (the message used to omit it)."""
    result = _invoke(runner, *args)
    assert result.exit_code == ExitCode.BAD_INPUT and message in result.stderr, result.stderr


def test_simulate_traffic_share_has_the_config_s_bounds(runner: CliRunner, tmp_path: Path) -> None:
    """simulate --traffic outside traffic_share's bounds is exit 4, and no file is written."""
    result = _invoke(runner, "simulate", "-o", str(tmp_path / "x.csv"), "--traffic", "0.00001%")
    assert result.exit_code == ExitCode.BAD_INPUT and "--traffic must be in [0.0001%, 99.9999%]" in result.stderr
    assert not (tmp_path / "x.csv").exists()


def test_names_with_brackets_are_shown_as_written(runner: CliRunner, tmp_path: Path) -> None:
    """A metric named 'errors[/predict]' stopped validate and analyze with rich's MarkupError (exit 5), and
    'latency[ms]' was shown as 'latency' (found by a review pass): names are plain text in every table and line."""
    config = tmp_path / "c.yaml"
    config.write_text(CONFIG.read_text().replace("name: errors", "name: errors[/predict]", 1)
                      .replace("name: latency", "name: latency[ms]", 1))
    checked = runner.invoke(app, ["canary", "validate", str(config)])
    assert checked.exit_code == 0, checked.output
    assert "errors[/predict]" in checked.stdout and "latency[ms]" in checked.stdout
    result = runner.invoke(app, ["canary", "analyze", str(EXAMPLES / "regression.csv"), "--config", str(config)])
    assert result.exit_code == 1, result.output
    text = "".join(result.stdout.split())
    assert "errors[/predict]" in text and "latency[ms]" in text


@pytest.mark.parametrize("command", ["analyze", "watch"])
def test_a_query_missing_for_prometheus_is_placed_in_the_config_file(runner: CliRunner, tmp_path: Path,
                                                                     command: str) -> None:
    """A metric without a query is found only when Prometheus is to be read: the error named 'metrics[0].query'
    without the file and line every other config error has (found by a review pass). Nothing is fetched."""
    config = tmp_path / "noq.yaml"
    config.write_text("metrics:\n  - name: errors\n    kind: rate\n    events: errors\n")
    result = _invoke(runner, command, "--prometheus", "http://127.0.0.1:9", "-c", str(config), "--start", "now-10m")
    assert result.exit_code == ExitCode.BAD_INPUT, result.output
    assert f"{config}:2:5: metrics[0].query: metric 'errors' needs query to read from Prometheus" in result.stderr


def _analyze_pipe(runner: CliRunner, tmp_path: Path, text: bytes) -> Any:
    """`analyze` of a named pipe (what /dev/stdin and <(...) are) that a thread fills with ``text``."""
    fifo = tmp_path / "export.csv"
    os.mkfifo(fifo)

    def feed() -> None:
        with open(fifo, "wb") as pipe:
            pipe.write(text)

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    result = _invoke(runner, "analyze", str(fifo), "-c", str(CONFIG), "--json")
    writer.join(timeout=10)
    return result


def test_an_export_read_from_a_pipe(runner: CliRunner, tmp_path: Path) -> None:
    """A named pipe was 'no such file' (found by a review pass): it is read."""
    result = _analyze_pipe(runner, tmp_path, (EXAMPLES / "regression.csv").read_bytes())
    assert result.exit_code == ExitCode.FAIL, result.output
    assert json.loads(result.stdout)["decision"] == "ROLLBACK"


def test_an_error_found_after_reading_a_pipe_names_the_export(runner: CliRunner, tmp_path: Path) -> None:
    """An error found after reading re-read the file to name its line: a pipe then gave '' (StopIteration,
    exit 5) or waited forever for a writer (found by the review of the pipe fix). It names the export."""
    text = b"timestamp,arm,metric,value\n60,baseline,requests,100\n60,canary,requests,10\n" \
           b"60,baseline,errors,1\n60,canary,errors,50\n"
    result = _analyze_pipe(runner, tmp_path, text)
    assert result.exit_code == ExitCode.BAD_INPUT, result.output
    assert f"{tmp_path / 'export.csv'}: metric 'errors': errors (50) greater than requests (10)" in result.stderr
