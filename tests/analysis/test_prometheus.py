"""A real Prometheus on loopback, backfilled with promtool, queried by `analyze --prometheus` and `watch`."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from tests.conftest import require_binary
from typer.testing import CliRunner

from mlplat.cli import ExitCode, app

pytestmark = pytest.mark.integration

CONFIG = """\
alpha: 0.05
traffic_share: 5%
max_duration: 60m
metrics:
  - name: errors
    kind: rate
    events: errors
    exposure: requests
    critical: true
    query: sum by (arm) (increase(http_requests_errors_total[1m]))
    exposure_query: sum by (arm) (increase(http_requests_total[1m]))
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _openmetrics(start: int, minutes: int, canary_rate: float, seed: int) -> str:
    """Counters scraped every 15 s: 278 req/s, 5% to the canary, baseline error rate 0.1%."""
    rng = np.random.default_rng(seed)
    steps = minutes * 4
    times = start + 15 * np.arange(1, steps + 1)
    blocks = {"http_requests": [], "http_requests_errors": []}
    for arm, share, rate in (("baseline", 0.95, 0.001), ("canary", 0.05, canary_rate)):
        requests = rng.poisson(278 * 15 * share, steps)
        errors = rng.binomial(requests, rate)
        for family, counts in (("http_requests", requests), ("http_requests_errors", errors)):
            total = np.cumsum(counts)
            blocks[family] += [f'{family}_total{{arm="{arm}"}} {v} {t}' for v, t in zip(total, times, strict=True)]
    lines = []
    for family, rows in blocks.items():
        lines += [f"# TYPE {family} counter", *rows]
    return "\n".join([*lines, "# EOF", ""])


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    """Prometheus serving 60 minutes of a canary with 4x the baseline error rate, backfilled 3 h ago."""
    binary = require_binary("prometheus")
    promtool = require_binary("promtool")
    root = tmp_path_factory.mktemp("prom")
    start = (int(time.time()) - 3 * 3600) // 60 * 60
    (root / "metrics.om").write_text(_openmetrics(start, 60, 0.004, seed=1))
    data = root / "data"
    subprocess.run([promtool, "tsdb", "create-blocks-from", "openmetrics", str(root / "metrics.om"), str(data)],
                   check=True, capture_output=True, timeout=120)
    (root / "prometheus.yml").write_text("global:\n  scrape_interval: 1h\n")
    port = _free_port()
    proc = subprocess.Popen([binary, f"--config.file={root / 'prometheus.yml'}", f"--storage.tsdb.path={data}",
                             f"--web.listen-address=127.0.0.1:{port}", "--storage.tsdb.retention.time=30d"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while True:
            try:
                with urllib.request.urlopen(url + "/-/ready", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                if time.time() > deadline or proc.poll() is not None:
                    raise RuntimeError("prometheus did not become ready") from None
                time.sleep(0.3)
        yield url, start
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "canary.yaml"
    path.write_text(CONFIG)
    return path


def test_analyze_prometheus_finds_regression(prometheus: tuple[str, int], config: Path) -> None:
    """`analyze --prometheus` reads both arms from the real server and rolls back a 4x error rate."""
    url, start = prometheus
    result = CliRunner().invoke(app, ["canary", "analyze", "--prometheus", url, "-c", str(config),
                                      "--start", str(start), "--end", str(start + 3600), "--step", "60s", "--json"])
    assert result.exit_code == ExitCode.FAIL, result.output
    doc = json.loads(result.stdout)
    assert doc["decision"] == "ROLLBACK"
    errors = doc["metrics"][0]
    assert errors["status"] == "REGRESSION"
    assert errors["n_canary"] > 40_000
    assert doc["srm"]["p_value"] > 0.001


def test_analyze_prometheus_early_window_continues(prometheus: tuple[str, int], config: Path) -> None:
    """The first three minutes hold too little evidence: CONTINUE, exit 3."""
    url, start = prometheus
    result = CliRunner().invoke(app, ["canary", "analyze", "--prometheus", url, "-c", str(config),
                                      "--start", str(start), "--end", str(start + 180), "--json"])
    assert result.exit_code == ExitCode.INCONCLUSIVE, result.output
    assert json.loads(result.stdout)["decision"] == "CONTINUE"


@pytest.mark.parametrize("step", ["1.5s", "250ms", "1000000s"])
def test_a_step_in_fractions_or_many_seconds_is_sent_as_prometheus_reads_it(prometheus: tuple[str, int],
                                                                           config: Path, step: str) -> None:
    """--step 1.5s went to Prometheus as "1.5s" and 250ms as "0.25s", which it cannot parse (bad_data, exit 4),
    and a long step as "1e+06s" (found by a review pass): the step is sent as plain seconds."""
    url, start = prometheus
    result = CliRunner().invoke(app, ["canary", "analyze", "--prometheus", url, "-c", str(config), "--start",
                                      str(start), "--end", str(start + 120), "--step", step, "--json"])
    assert result.exit_code in (ExitCode.OK, ExitCode.FAIL, ExitCode.INCONCLUSIVE), result.output
    assert "bad_data" not in result.output


def test_watch_stops_at_decision(prometheus: tuple[str, int], config: Path) -> None:
    """`watch` queries until a decision: the backfilled regression is a ROLLBACK on the first check."""
    url, start = prometheus
    result = CliRunner().invoke(app, ["canary", "watch", "--prometheus", url, "-c", str(config), "--start",
                                      str(start), "--interval", "1s", "--max-duration", "5s", "--json"])
    assert result.exit_code == ExitCode.FAIL, result.output
    assert json.loads(result.stdout)["decision"] == "ROLLBACK"


def test_metrics_option_judges_and_queries_only_the_named_metrics(prometheus: tuple[str, int],
                                                                 tmp_path: Path) -> None:
    """`--metrics errors` judges errors alone, at the whole 0.049 rather than half of it: the gate a
    rollout plan emits when it was sized with `--metrics`."""
    url, start = prometheus
    path = tmp_path / "two.yaml"
    path.write_text(CONFIG + """\
  - name: timeouts
    kind: rate
    events: timeouts
    exposure: requests
    query: sum by (arm) (increase(http_requests_timeouts_total[1m]))
    exposure_query: sum by (arm) (increase(http_requests_total[1m]))
""")
    both = CliRunner().invoke(app, ["canary", "analyze", "--prometheus", url, "-c", str(path), "--start",
                                    str(start), "--end", str(start + 3600), "--json"])
    assert both.exit_code == ExitCode.FAIL, both.output
    doc = json.loads(both.stdout)
    assert [m["name"] for m in doc["metrics"]] == ["errors", "timeouts"]
    assert "over 2 metric(s)" in doc["alpha_split"]
    for command in (["analyze", "--end", str(start + 3600)], ["watch", "--interval", "1s", "--max-duration", "5s"]):
        result = CliRunner().invoke(app, ["canary", command[0], "--prometheus", url, "-c", str(path), "--start",
                                          str(start), *command[1:], "--metrics", "errors", "--json"])
        assert result.exit_code == ExitCode.FAIL, result.output
        doc = json.loads(result.stdout)
        assert [m["name"] for m in doc["metrics"]] == ["errors"] and doc["decision"] == "ROLLBACK"
        assert "over 1 metric(s)" in doc["alpha_split"]


def test_watch_times_out_with_continue(prometheus: tuple[str, int], config: Path) -> None:
    """With no data in the watched window, `watch` re-queries until max duration, then exits 3."""
    url, _ = prometheus
    result = CliRunner().invoke(app, ["canary", "watch", "--prometheus", url, "-c", str(config), "--start",
                                      "now-10s", "--interval", "1s", "--max-duration", "2s", "--json"])
    assert result.exit_code == ExitCode.INCONCLUSIVE, result.output
    assert json.loads(result.stdout)["decision"] == "CONTINUE"
    # It checked more than once and stopped because of the limit, not after the first CONTINUE.
    assert result.stderr.count("CONTINUE:") >= 2
    assert re.search(r"watched for [\d.]+s \(max 2(\.0)?s\); stopping", result.stderr), result.stderr


def test_prometheus_query_error_is_exit_4(prometheus: tuple[str, int], tmp_path: Path) -> None:
    """A query the server rejects (status: error) is bad input with the server's message."""
    url, start = prometheus
    path = tmp_path / "bad.yaml"
    path.write_text(CONFIG.replace("sum by (arm) (increase(http_requests_errors_total[1m]))", "sum by (arm) ((("))
    result = CliRunner().invoke(app, ["canary", "analyze", "--prometheus", url, "-c", str(path),
                                      "--start", str(start), "--end", str(start + 600)])
    assert result.exit_code == ExitCode.BAD_INPUT
    assert "status error" in result.stderr


EXAMPLE_CONFIG = Path(__file__).resolve().parents[2] / "examples" / "canary" / "canary.yaml"


def test_narrowed_config_still_finds_the_srm_requests_query() -> None:
    """`--metrics cpu` leaves out errors, whose exposure_query is how the SRM check reads requests: it is
    still used (the command failed with 'the SRM check needs srm.query'), at its place in the file."""
    from mlplat.analysis import CanaryConfig
    from mlplat.analysis._prometheus import _queries
    from mlplat.config import load_config

    queries = {name: (query, path) for name, query, path in _queries(load_config(EXAMPLE_CONFIG, CanaryConfig)
                                                                       .only(["cpu"]))}
    assert queries["requests"] == ("sum by (arm) (increase(http_requests_total[1m]))",
                                   ("metrics", 0, "exposure_query"))
    assert queries["cpu"][1] == ("metrics", 2, "query")


def test_narrowed_config_errors_point_at_the_file(tmp_path: Path) -> None:
    """A missing query of a metric kept by `--metrics` is reported at its index in the file (metrics[1],
    not metrics[0] of the narrowed list)."""
    from mlplat.analysis import CanaryConfig
    from mlplat.analysis._prometheus import _queries
    from mlplat.config import load_config
    from mlplat.errors import ConfigError

    text = EXAMPLE_CONFIG.read_text().replace(
        "    query: sum by (arm, le) (increase(http_request_duration_seconds_bucket[1m]))\n", "")
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match="metric 'latency' needs query") as caught:
        _queries(load_config(path, CanaryConfig).only(["latency"]))
    assert "metrics[1].query" in str(caught.value)


def test_narrowed_config_reads_each_series_as_the_whole_config_does(tmp_path: Path) -> None:
    """A kept metric that reads requests only through another metric's exposure_query works in any
    `--metrics` order, and with srm.query set the narrowed gate still reads requests where the whole
    config does (errors' exposure_query, the first the file gives)."""
    from mlplat.analysis import CanaryConfig
    from mlplat.analysis._prometheus import _queries
    from mlplat.config import load_config

    text = EXAMPLE_CONFIG.read_text().replace("  metric: requests\n",
                                              "  metric: requests\n  query: sum by (arm) (up)\n", 1)
    text += ("  - name: timeouts\n    kind: rate\n    events: timeouts\n    exposure: requests\n"
             "    query: sum by (arm) (increase(http_requests_timeouts_total[1m]))\n")
    path = tmp_path / "shared.yaml"
    path.write_text(text)
    config = load_config(path, CanaryConfig)

    def read(names: list[str] | None) -> dict[str, tuple[str | int, ...]]:
        return {name: where for name, _, where in _queries(config.only(names))}

    whole = read(None)
    assert whole["requests"] == ("metrics", 0, "exposure_query")
    for names in (["timeouts"], ["timeouts", "errors"], ["errors", "timeouts"], ["cpu"]):
        assert read(names)["requests"] == whole["requests"], names
