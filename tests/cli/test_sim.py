"""`mlplat sim`: run, compare, pricing, init, validate, schema, and exit 4 on every bad input."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlplat.cli import ExitCode, app

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "sim"

BASE = """\
duration: 30m
warmup: 2m
replications: 2
slo: {p99_ms: 2000}
workload:
  kind: poisson
  rate: 2/s
service:
  warm: {dist: lognormal, mean_ms: 120, p99_ms: 400}
  cold_start: {image_pull_s: 0.5, init_s: 0.2, model_load_s: 1.0}
platforms:
  - {name: fn, kind: lambda, memory_gb: 2}
  - {name: run, kind: cloud_run, vcpu: 2, memory_gib: 4, concurrency: 4}
  - {name: k8s, kind: kubernetes, node: m5.xlarge, pod_concurrency: 4, min_replicas: 1, max_replicas: 4}
  - {name: kn, kind: knative, node: c6i.xlarge, target_concurrency: 4}
"""


@pytest.fixture
def scenario_file(tmp_path: Path) -> Path:
    path = tmp_path / "scenario.yaml"
    path.write_text(BASE)
    return path


def _bad(tmp_path: Path, old: str, new: str, name: str = "bad.yaml") -> Path:
    assert old in BASE
    path = tmp_path / name
    path.write_text(BASE.replace(old, new))
    return path


def test_run_json_fields(runner: CliRunner, scenario_file: Path) -> None:
    """`sim run --json` gives the documented fields for every platform, with CIs."""
    result = runner.invoke(app, ["sim", "run", str(scenario_file), "--json", "--seed", "3"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert [p["name"] for p in doc["platforms"]] == ["fn", "run", "k8s", "kn"]
    for p in doc["platforms"]:
        for key in ("name", "kind", "requests", "cold_start_fraction", "rejection_fraction", "latency_ms",
                    "mean_instances", "cost_per_month", "cost_per_million", "cost_breakdown", "slo_met", "ci",
                    "backlog_fraction", "at_max_size"):
            assert key in p
        assert set(p["latency_ms"]) == {"p50", "p95", "p99", "p999"}
        assert set(p["cost_breakdown"]) == {"compute", "requests", "provisioned_idle", "nodes", "gpu",
                                            "control_plane"}
        assert p["requests"] > 3000
        assert p["ci"]["p99"][0] <= p["latency_ms"]["p99"] <= p["ci"]["p99"][1]
        assert sum(p["cost_breakdown"].values()) == pytest.approx(p["cost_per_month"])
        assert 0 <= p["backlog_fraction"] <= 1 and 0 <= p["at_max_size"] <= 1
    assert doc["scenario"]["replications"] == 2


def test_run_table_jobs_and_plot(runner: CliRunner, scenario_file: Path, tmp_path: Path) -> None:
    """The table names every platform; --jobs 2 gives the same numbers as one process; --plot writes a PNG."""
    png = tmp_path / "out.png"
    one = runner.invoke(app, ["sim", "run", str(scenario_file), "--json"])
    two = runner.invoke(app, ["sim", "run", str(scenario_file), "--json", "--jobs", "2", "--plot", str(png)])
    assert two.exit_code == 0, two.output
    strip = lambda doc: [{k: v for k, v in p.items()} for p in json.loads(doc)["platforms"]]  # noqa: E731
    assert strip(one.stdout) == strip(two.stdout)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = runner.invoke(app, ["sim", "run", str(scenario_file), "-r", "1"])
    assert table.exit_code == 0
    for word in ("fn", "k8s", "kn", "per month", "cheapest meeting the SLO"):
        assert word in table.stdout


def test_run_names_an_overloaded_platform(runner: CliRunner, tmp_path: Path) -> None:
    """One pod of 4 slots at 120 ms serves about 33 req/s; at 50 req/s the table ends with a note saying so."""
    path = _bad(tmp_path, "rate: 2/s", "rate: 50/s")
    path.write_text(path.read_text().replace("max_replicas: 4", "max_replicas: 1"))
    result = runner.invoke(app, ["sim", "run", str(path), "-r", "1"])
    assert result.exit_code == 0, result.output
    text = " ".join(result.stdout.split())
    assert "k8s: " in text and "of requests were still queued when the run ended" in text
    assert "fn: " not in text  # Lambda scales to 1000 environments and queues nothing


def test_run_warns_when_a_replication_has_too_few_requests_for_a_p99(runner: CliRunner, tmp_path: Path) -> None:
    """At 0.01 req/s for 28 minutes each replication sees about 17 requests; stderr says the p99 is their maximum."""
    path = _bad(tmp_path, "rate: 2/s", "rate: 0.01/s")
    result = runner.invoke(app, ["sim", "run", str(path)])
    assert result.exit_code == 0, result.output
    assert "warning: each replication measured about" in result.stderr


def test_run_with_no_request_measured_shows_dashes_not_nan(runner: CliRunner, tmp_path: Path) -> None:
    """At 1e-6 req/s no request arrives: the shares print '-' (they printed nan%), no platform is called
    short of the SLO, and the warning says no request was measured."""
    path = _bad(tmp_path, "rate: 2/s", "rate: 1e-6/s")
    result = runner.invoke(app, ["sim", "run", str(path)])
    assert result.exit_code == 0, result.output
    text = " ".join(result.stdout.split())
    assert "nan" not in text and "no platform meets the SLO" not in text
    assert "no request was measured, so no platform can be held to the SLO" in text
    assert "warning: no replication measured a request" in result.stderr


THROTTLED = """duration: 100s
warmup: 10s
replications: 2
slo: {p99_ms: 2000}
workload: {kind: poisson, rate: 10/s}
service:
  warm: {dist: constant, mean_ms: 1000000}
  memory_gb: 1
platforms:
  - {name: fn, kind: lambda, memory_gb: 1, max_concurrency: 1}
  - {name: run, kind: cloud_run, max_instances: 1, concurrency: 1}
"""


def test_a_platform_that_refuses_every_request_misses_the_slo(runner: CliRunner, tmp_path: Path) -> None:
    """Every measured request throttled leaves no p99, which read as 'no request was measured' and an SLO
    cell of '-' (found by a review pass); --json already said slo_met false. The table says no, and the
    verdict that no platform meets the SLO; in a sweep, ✗ marks it."""
    path = tmp_path / "t.yaml"
    path.write_text(THROTTLED)
    result = runner.invoke(app, ["sim", "run", str(path)])
    assert result.exit_code == 0, result.output
    rows = [line for line in result.stdout.splitlines() if line.startswith(("│ fn", "│ run"))]
    assert len(rows) >= 2 and all(re.search(r"100\.00% .*│ no\s+│$", row) for row in rows[:2])
    text = " ".join(result.stdout.split())
    assert "no platform meets the SLO" in text and "no request was measured" not in text
    swept = runner.invoke(app, ["sim", "compare", str(path), "--rates", "5/s..10/s", "--points", "2", "-r", "1"])
    assert swept.exit_code == 0, swept.output
    table = [line for line in swept.stdout.splitlines() if re.match(r"│\s+\d", line)]
    assert table and all(row.count("✗") == 2 for row in table)


@pytest.mark.parametrize(("value", "text"), [(0.0, "0.00%"), (0.0137, "1.37%"), (1e-5, "0.001%"),
                                             (float("nan"), "-")])
def test_small_shares_keep_a_digit(value: float, text: str) -> None:
    """Cold-start and throttle shares under 0.01% keep two significant figures (1e-5 printed as 0.00%)."""
    from mlplat.cli.sim import _share

    assert _share(value) == text


def test_compare(runner: CliRunner, scenario_file: Path, tmp_path: Path) -> None:
    """`sim compare` sweeps the rates, finds break-evens and the cheapest platform within the SLO."""
    png = tmp_path / "sweep.png"
    result = runner.invoke(app, ["sim", "compare", str(scenario_file), "--rates", "0.01/s..20/s", "--points", "4",
                                 "-r", "1", "--duration", "20m", "--json", "--plot", str(png)])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["rates_per_s"][0] == pytest.approx(0.01)
    assert doc["rates_per_s"][-1] == pytest.approx(20)
    assert len(doc["cheapest_meeting_slo"]) == 4
    assert doc["cheapest_meeting_slo"][0] == "fn"  # a function is nearly free at 0.01/s
    assert doc["break_even"], "Lambda must stop being cheapest somewhere below 20/s"
    for b in doc["break_even"]:
        assert set(b) == {"rate_per_s", "cheaper_below", "cheaper_above"}
        assert 0.01 < b["rate_per_s"] < 20
        assert {b["cheaper_below"], b["cheaper_above"]} <= {"fn", "run", "k8s", "kn"}
    for p in doc["platforms"]:
        assert set(p) == {"name", "cost_per_month", "p99_ms", "slo_met", "slo_unsure"}
        assert len(p["cost_per_month"]) == len(p["p99_ms"]) == len(p["slo_met"]) == len(p["slo_unsure"]) == 4
    assert set(doc["cheapest_meeting_slo"]) <= {"fn", "run", "k8s", "kn", None}
    assert len(doc["cheapest_margin"]) == 4
    assert png.exists()
    table = runner.invoke(app, ["sim", "compare", str(scenario_file), "--rates", "0.1/s..1/s", "--points", "2",
                                "-r", "1", "--duration", "10m"])
    assert table.exit_code == 0
    assert "break-even" in table.stdout


def test_pricing_table_and_override(runner: CliRunner, tmp_path: Path) -> None:
    """`sim pricing` lists every price with as_of and source; a user file overrides one price."""
    result = runner.invoke(app, ["sim", "pricing", "--json"])
    assert result.exit_code == 0
    prices = {p["name"]: p for p in json.loads(result.stdout)["prices"]}
    # Issue 5's defaults.
    assert prices["lambda.x86_gb_second"]["usd"] == 0.0000166667
    assert prices["lambda.arm_gb_second"]["usd"] == 0.0000133334
    assert prices["lambda.requests_per_million"]["usd"] == 0.20
    assert prices["cloud_run.gpu_second.l4"]["usd"] == 0.0001867
    assert prices["ec2.g6.xlarge"]["usd"] == 0.8048
    assert prices["eks.cluster_hour"]["usd"] == 0.10
    assert all(p["as_of"] and p["source"] for p in prices.values())
    mine = tmp_path / "mine.yaml"
    mine.write_text("ec2:\n  m5.xlarge: {usd: 0.1, unit: hour, as_of: 2026-01-01, source: negotiated}\n")
    over = runner.invoke(app, ["sim", "pricing", "--pricing", str(mine), "--json"])
    got = {p["name"]: p for p in json.loads(over.stdout)["prices"]}
    assert got["ec2.m5.xlarge"]["usd"] == 0.1
    assert got["ec2.c6i.xlarge"]["usd"] == 0.17
    assert "source" in runner.invoke(app, ["sim", "pricing"]).stdout


def test_init_validate_schema(runner: CliRunner, tmp_path: Path) -> None:
    """`sim init` writes a template that validates; `sim schema` prints a JSON Schema."""
    path = tmp_path / "s.yaml"
    assert runner.invoke(app, ["sim", "init", str(path)]).exit_code == 0
    assert runner.invoke(app, ["sim", "init", str(path)]).exit_code == ExitCode.BAD_INPUT  # no --force
    checked = runner.invoke(app, ["sim", "validate", str(path)])
    assert checked.exit_code == 0, checked.output
    assert "valid" in checked.stdout
    schema = json.loads(runner.invoke(app, ["sim", "schema"]).stdout)
    assert "workload" in schema["properties"]


@pytest.mark.parametrize(("old", "new", "expected"), [
    ("rate: 2/s", "rate: -2/s", "bad.yaml:7:9: workload.rate: must be > 0"),
    ("rate: 2/s", "rate: 0/s", "bad.yaml:7:9: workload.rate: must be > 0, got '0/s'"),
    ("kind: lambda,", "kind: lamda,", "bad.yaml:12:5: platforms[0]: Input tag 'lamda'"),
    ("warmup: 2m", "warmup: 1h", "bad.yaml:2:9: warmup: must be < duration (1800 s), got 3600 s"),
    ("p99_ms: 400", "p99_ms: 100", "bad.yaml:9:49: service.warm.p99_ms: must be > mean_ms (120)"),
    ("node: m5.xlarge", "node: m9.huge", "bad.yaml:14:41: platforms[2].node: unknown node type 'm9.huge'"),
    ("min_replicas: 1, max_replicas: 4", "min_replicas: 5, max_replicas: 4",
     "bad.yaml:14:103: platforms[2].max_replicas: must be >= min_replicas (5), got 4"),
    ("memory_gib: 4, concurrency: 4}", "memory_gib: 4, concurrency: 4, min_instances: 3, max_instances: 2}",
     "bad.yaml:13:107: platforms[1].max_instances: must be >= min_instances (3), got 2"),
    ("target_concurrency: 4}", "target_concurrency: 4, min_scale: 2, max_scale: 1}",
     "bad.yaml:15:97: platforms[3].max_scale: must be >= min_scale (2), got 1"),
    ("name: fn, kind: lambda, memory_gb: 2", "name: fn, kind: lambda, memory_gb: 2, provisioned_concurrency: 20, "
     "max_concurrency: 10", "bad.yaml:12:90: platforms[0].max_concurrency: must be >= provisioned_concurrency (20), "
     "got 10"),
    ("name: fn, kind: lambda, memory_gb: 2", "name: fn, kind: lambda, memory_gb: 1",
     "bad.yaml:12:41: platforms[0].memory_gb: must hold service.memory_gb (2 GB = 1.86 of AWS's GB of 1,024 MB), "
     "got 1"),
    ("memory_gib: 4,", "memory_gib: 1,",
     "bad.yaml:13:55: platforms[1].memory_gib: must hold service.memory_gb (2 GB = 1.86 GiB), got 1 GiB"),
    # Knative's own bounds on the KPA windows (a stable window of years once took the simulation forever).
    ("target_concurrency: 4}", "target_concurrency: 4, stable_window_s: 7200}",
     "bad.yaml:15:89: platforms[3].stable_window_s: must be <= 3600.0, got 7200"),
    ("target_concurrency: 4}", "target_concurrency: 4, stable_window_s: 30, panic_window_s: 60}",
     "bad.yaml:15:109: platforms[3].panic_window_s: must be <= stable_window_s (30), got 60"),
    # Runs that could never finish (or fit in memory) are refused before they start, naming the cause.
    ("duration: 30m", "duration: 1e308",
     "bad.yaml:1:11: duration: expected a duration from 0 to 100 years such as '90s', '10m', '1h30m' or '1d', "
     "got '1e308'"),
    ("rate: 2/s", "rate: 1e308/s",
     "bad.yaml:1:11: duration: one replication of 1800 s would simulate countless events (countless requests)"),
    ("rate: 2/s", "rate: 1e6/s", "bad.yaml:1:11: duration: one replication of 1800 s would simulate about 1.8e+09"),
    ("target_concurrency: 4}", "target_concurrency: 4, tick_s: 0.00001}",
     "bad.yaml:1:11: duration: one replication of 1800 s would simulate about 1.8e+08 events (about 1.8e+08 kn "
     "KPA ticks), more than the 20,000,000 that fit in memory and time; shorten it (costs are scaled "
     "to a month from any duration), or raise platforms[3].tick_s"),
    # Infinite or NaN numbers are refused where they are written (they once stopped `sim run` with exit 5).
    ("kind: poisson\n  rate: 2/s", "kind: diurnal\n  mean_rate: 2/s\n  peak_to_trough: .inf",
     "bad.yaml:8:19: workload.peak_to_trough: must be a finite number, got inf"),
    ("target_concurrency: 4}", "target_concurrency: .inf}",
     "bad.yaml:15:69: platforms[3].target_concurrency: must be a finite number, got inf"),
    ("max_replicas: 4}", "max_replicas: 4, autoscaler: {kind: hpa, sync_period_s: .inf}}",
     "bad.yaml:14:145: platforms[2].autoscaler.sync_period_s: must be a finite number, got inf"),
    ("max_replicas: 4}", "max_replicas: 4, autoscaler: {kind: hpa, scale_up_percent: .nan}}",
     "bad.yaml:14:148: platforms[2].autoscaler.scale_up_percent: must be a finite number, got nan"),
    ("p99_ms: 2000", "p99_ms: .inf", "bad.yaml:4:15: slo.p99_ms: must be a finite number, got inf"),
    # ... and so are finite sizes past any real one, which billed inf (printed as '-') with exit 0.
    ("warm: {dist: lognormal, mean_ms: 120, p99_ms: 400}", "warm: {dist: exponential, mean_ms: .inf}",
     "bad.yaml:9:38: service.warm.mean_ms: must be a finite number, got inf"),
    ("warm: {dist: lognormal, mean_ms: 120, p99_ms: 400}", "warm: {dist: constant, mean_ms: 1.0e+308}",
     "bad.yaml:9:35: service.warm.mean_ms: must be <= 8.64e+07, got 1e+308"),
    ("warm: {dist: lognormal, mean_ms: 120, p99_ms: 400}", "warm: {dist: empirical, samples_ms: [1, .inf]}",
     "bad.yaml:9:43: service.warm.samples_ms[1]: must be a finite number, got inf"),
    ("image_pull_s: 0.5", "provision_s: 1.0e+308, image_pull_s: 0.5",
     "bad.yaml:10:29: service.cold_start.provision_s: must be <= 86400.0, got 1e+308"),
    ("vcpu: 2,", "vcpu: 1.0e+308,", "bad.yaml:13:40: platforms[1].vcpu: must be <= 1000.0, got 1e+308"),
    # Found by a review: 1e8 pods or instances passed validate, then ran for hours or out of memory (exit 5).
    ("min_replicas: 1, max_replicas: 4", "min_replicas: 100000000, max_replicas: 100000000",
     "bad.yaml:14:86: platforms[2].min_replicas: must be at most 100,000 (past any real service), got 100,000,000"),
    ("memory_gib: 4, concurrency: 4}", "memory_gib: 4, concurrency: 4, max_instances: 100000000}",
     "bad.yaml:13:89: platforms[1].max_instances: must be at most 100,000 (past any real service), got 100,000,000"),
    # Cloud Run's rules for a GPU: request billing billed the GPU only while busy, about 100x too low.
    ("memory_gib: 4,", "memory_gib: 4, gpu: l4, billing: request,",
     "bad.yaml:13:76: platforms[1].billing: a Cloud Run instance with a GPU is billed for its whole lifecycle: it "
     "needs instance billing (leave `billing` out, or set 'instance'), got 'request'"),
    ("memory_gib: 4,", "memory_gib: 4, gpu: l4,",
     "bad.yaml:13:40: platforms[1].vcpu: a Cloud Run instance with a GPU needs at least 4 vCPU, got 2"),
    ("vcpu: 2, memory_gib: 4,", "vcpu: 4, memory_gib: 4, gpu: l4,",
     "bad.yaml:13:55: platforms[1].memory_gib: a Cloud Run instance with a GPU needs at least 16 GiB, got 4"),
    ("memory_gib: 4,", "memory_gib: 1.0e+308,",
     "bad.yaml:13:55: platforms[1].memory_gib: must be <= 10000.0, got 1e+308"),
    ("pod_concurrency: 4,", "pod_concurrency: 4, pod_startup_s: 1.0e+308,",
     "bad.yaml:14:87: platforms[2].pod_startup_s: must be <= 86400.0, got 1e+308"),
    ("platforms:", "pricing: {ec2: {m5.xlarge: {usd: 1.0e+308, unit: hour}}}\nplatforms:",
     "bad.yaml:11:34: pricing.ec2.m5.xlarge.usd: must be <= 1e+09, got 1e+308"),
    ("platforms:", "pricing: {eks: {cluster_hour: {usd: .inf}}}\nplatforms:",
     "bad.yaml:11:37: pricing.eks.cluster_hour.usd: must be a finite number, got inf"),
    # From a review pass: finite but extreme autoscaler settings overflowed a ceil (exit 5).
    ("max_replicas: 4}", "max_replicas: 4, autoscaler: {kind: hpa, scale_up_percent: 1.0e+308}}",
     "bad.yaml:14:148: platforms[2].autoscaler.scale_up_percent: must be <= 10000.0, got 1e+308"),
    ("max_replicas: 4}", "max_replicas: 4, autoscaler: {kind: hpa, target_utilization: 1.0e-320}}",
     "bad.yaml:14:150: platforms[2].autoscaler.target_utilization: must be >= 0.01, got 1e-320"),
    ("target_concurrency: 4}", "target_concurrency: 1.0e-320}",
     "bad.yaml:15:69: platforms[3].target_concurrency: must be >= 0.01, got 1e-320"),
    ("target_concurrency: 4}", "target_concurrency: 4, panic_threshold: 1.0e+308}",
     "bad.yaml:15:89: platforms[3].panic_threshold: must be <= 10.0, got 1e+308"),
    # AWS allows 10,240 MB, which it bills as 10 GB-seconds a second (10.24 billed 2.4% more than any function).
    ("name: fn, kind: lambda, memory_gb: 2", "name: fn, kind: lambda, memory_gb: 10.24",
     "bad.yaml:12:41: platforms[0].memory_gb: must be <= 10.0, got 10.24"),
])
def test_bad_scenario_exit_4(runner: CliRunner, tmp_path: Path, old: str, new: str, expected: str) -> None:
    """Each bad input in issue 5 exits 4 with file:line:col: path: message and no traceback."""
    path = _bad(tmp_path, old, new)
    result = runner.invoke(app, ["sim", "run", str(path)])
    assert result.exit_code == ExitCode.BAD_INPUT
    assert f"{tmp_path}/{expected}" in result.stderr.replace("\n", " ")
    assert "Traceback" not in result.output


def test_missing_price_exit_4(runner: CliRunner, tmp_path: Path) -> None:
    """A pricing file that does not extend the defaults and lacks a price names the file, line and key."""
    prices = tmp_path / "prices.yaml"
    prices.write_text("extends: none\nlambda:\n  x86_gb_second: {usd: 0.00001, as_of: 2025-01-01, source: me}\n")
    path = _bad(tmp_path, "platforms:", "pricing: prices.yaml\nplatforms:")
    result = runner.invoke(app, ["sim", "validate", str(path)])
    assert result.exit_code == ExitCode.BAD_INPUT
    assert f"{prices}:3:3: lambda.arm_gb_second: required key is missing" in result.stderr
    unknown = tmp_path / "gpu.yaml"
    unknown.write_text(BASE.replace("vcpu: 2, memory_gib: 4, concurrency: 4}",
                                    "vcpu: 4, memory_gib: 16, concurrency: 4, gpu: a100}"))
    result = runner.invoke(app, ["sim", "validate", str(unknown)])
    assert result.exit_code == ExitCode.BAD_INPUT
    assert "platforms[1].gpu: no price for GPU 'a100'" in result.stderr


def test_inline_price_error_names_the_full_key_path(runner: CliRunner, tmp_path: Path) -> None:
    """An inline `pricing:` override with a bad price names its line and the key path from the file's top."""
    path = _bad(tmp_path, "platforms:", "pricing:\n  lambda:\n    x86_gb_second: {usd: -1}\nplatforms:")
    result = runner.invoke(app, ["sim", "validate", str(path)])
    assert result.exit_code == ExitCode.BAD_INPUT
    assert re.search(r":\d+:\d+: pricing\.lambda\.x86_gb_second\.usd: must be >= 0", result.stderr), result.stderr


def test_malformed_trace_names_line(runner: CliRunner, tmp_path: Path) -> None:
    """A malformed Azure trace or timestamps file exits 4 naming its line (and column)."""
    (tmp_path / "trace.csv").write_text("HashOwner,HashApp,HashFunction,Trigger,1,2,3\n"
                                        "a,b,f1,http,1,2,3\na,b,f2,http,1,x,3\n")
    path = _bad(tmp_path, "  kind: poisson\n  rate: 2/s\n", "  kind: trace\n  path: trace.csv\n  function: f2\n")
    result = runner.invoke(app, ["sim", "run", str(path)])
    assert result.exit_code == ExitCode.BAD_INPUT
    assert f"{tmp_path / 'trace.csv'}:3:15: minute 2: expected a count, got 'x'" in result.stderr
    (tmp_path / "ts.txt").write_text("time\n0.5\n1.0\nabc\n")
    path = _bad(tmp_path, "  kind: poisson\n  rate: 2/s\n", "  kind: trace\n  path: ts.txt\n  format: timestamps\n")
    result = runner.invoke(app, ["sim", "run", str(path)])
    assert result.exit_code == ExitCode.BAD_INPUT
    assert f"{tmp_path / 'ts.txt'}:4:1: expected a timestamp (a number), got 'abc'" in result.stderr


@pytest.mark.parametrize(("counts", "message"), [
    ("99999999999999999999,1", "trace.csv:2:12: minute 1: a count must be in [0, 20,000,000], got '9999999999"),
    ("100000000000,1", "trace.csv:2:12: minute 1: a count must be in [0, 20,000,000], got '100000000000'"),
    # Two cells that each fit an int64 but whose sum wraps around (it was exit 5, negative dimensions).
    ("9000000000000000000,9000000000000000000", "trace.csv:2:12: minute 1: a count must be in [0, 20,000,000]"),
    ("1,-3", "trace.csv:2:14: minute 2: a count must be in [0, 20,000,000], got '-3'"),
    ("9" * 5000 + ",1", "trace.csv:2:12: minute 1: a count must be in [0, 20,000,000], got '999"),  # int() refuses
    ("15000000,15000000", "trace.csv:2:1: the function has 30,000,000 invocations, more than the 20,000,000"),
])
def test_trace_too_big_to_hold_names_line(runner: CliRunner, tmp_path: Path, counts: str, message: str) -> None:
    """An Azure count out of range, or a row of more invocations than memory holds, is exit 4 at its cell."""
    (tmp_path / "trace.csv").write_text(f"HashOwner,HashApp,HashFunction,Trigger,1,2\no,a,f,http,{counts}\n")
    path = _bad(tmp_path, "  kind: poisson\n  rate: 2/s\n", "  kind: trace\n  path: trace.csv\n")
    result = runner.invoke(app, ["sim", "validate", str(path)])
    assert result.exit_code == ExitCode.BAD_INPUT
    assert message in " ".join(result.stderr.split())


def test_sparse_timestamps_trace(runner: CliRunner, tmp_path: Path) -> None:
    """Timestamps spanning 1e308 s are exit 4; a trace too sparse to replay at the swept rates is refused."""
    path = _bad(tmp_path, "  kind: poisson\n  rate: 2/s\n", "  kind: trace\n  path: ts.txt\n  format: timestamps\n")
    (tmp_path / "ts.txt").write_text("0\n1e308\n")
    result = runner.invoke(app, ["sim", "validate", str(path)])
    assert result.exit_code == ExitCode.BAD_INPUT
    assert "the timestamps span more seconds than a number holds" in result.stderr
    (tmp_path / "ts.txt").write_text("0\n1e12\n")
    result = runner.invoke(app, ["sim", "compare", str(path), "--rates", "0.5/s..1/s", "--points", "2",
                                 "--duration", "10m"])
    assert result.exit_code == ExitCode.BAD_INPUT
    assert "trace arrivals built: 2 over 2e+12 s" in " ".join(result.stderr.split())


def test_a_lambda_of_10_gb_holds_a_service_of_10_2_decimal_gb(runner: CliRunner, tmp_path: Path) -> None:
    """AWS's 10 GB is 10,240 MB, 10.7 decimal GB: it holds a 10.2 GB model (compared as numbers it could not,
    and 10.24 is refused, so no Lambda could; found by the diff review)."""
    text = (EXAMPLES / "steady.yaml").read_text().replace("memory_gb: 2\n", "memory_gb: 10.2\n", 1)
    text = text.replace("kind: lambda, memory_gb: 3", "kind: lambda, memory_gb: 10")
    text = text.replace("memory_gib: 4", "memory_gib: 10")
    path = tmp_path / "big.yaml"
    path.write_text(text)
    result = runner.invoke(app, ["sim", "validate", str(path)])
    assert result.exit_code == 0, result.output


def test_compare_says_when_it_cuts_the_warm_up(runner: CliRunner, scenario_file: Path) -> None:
    """A shorter run per rate takes at most a tenth of it as warm-up, and says so: it moved more of the
    autoscalers' ramp-up into what is measured without a word (found by a review pass)."""
    result = runner.invoke(app, ["sim", "compare", str(scenario_file), "--rates", "0.5/s..1/s", "--points", "2",
                                 "-r", "1", "--duration", "10m"])
    assert result.exit_code == 0, result.output
    assert "warm-up 2m cut to 1m, a tenth of the 10m simulated per rate" in " ".join(result.stderr.split())
    kept = runner.invoke(app, ["sim", "compare", str(scenario_file), "--rates", "0.5/s..1/s", "--points", "2",
                               "-r", "1", "--duration", "20m"])
    assert kept.exit_code == 0 and "warm-up" not in kept.stderr


def test_bad_rates_option_exit_4(runner: CliRunner, scenario_file: Path) -> None:
    """`--rates` with a zero, negative or reversed range is bad input."""
    for rates in ("0/s..10/s", "10/s..1/s", "-1/s..1/s", "fast"):
        result = runner.invoke(app, ["sim", "compare", str(scenario_file), "--rates", rates])
        assert result.exit_code == ExitCode.BAD_INPUT, rates
        assert "--rates" in result.stderr
    result = runner.invoke(app, ["sim", "compare", str(scenario_file), "--duration", "0s"])
    assert result.exit_code == ExitCode.BAD_INPUT and "--duration must be > 0, got '0s'" in result.stderr
    result = runner.invoke(app, ["sim", "compare", str(scenario_file), "--duration", "soon"])
    assert result.exit_code == ExitCode.BAD_INPUT and "--duration: expected a duration such as" in result.stderr


def test_compare_marks_no_miss_where_no_request_was_measured(runner: CliRunner, scenario_file: Path) -> None:
    """At rates that see no request, p99 is '-' and no ✗ calls the platform short of the SLO."""
    result = runner.invoke(app, ["sim", "compare", str(scenario_file), "--rates", "1e-6/s..2e-6/s", "--points",
                                 "2", "-r", "1", "--duration", "10m"])
    assert result.exit_code == 0, result.output
    rows = [line for line in result.stdout.splitlines() if line.startswith("│ ")]
    assert rows and all("/ -" in row and "✗" not in row for row in rows)


def test_compare_shortens_long_sweeps(runner: CliRunner, scenario_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without --duration, a sweep whose top rate would simulate too many requests is shortened, with a warning.
    Cut to the 10-minute floor, the top rate still passes the cap, and the warning says so: it claimed to keep
    the rate under the cap (found by a review pass)."""
    monkeypatch.setattr("mlplat.cli.sim.MAX_SWEEP_REQUESTS", 100)
    result = runner.invoke(app, ["sim", "compare", str(scenario_file), "--rates", "0.01/s..1/s", "--points", "2",
                                 "-r", "1", "--json"])
    assert result.exit_code == 0, result.output
    assert ("simulating 10m per rate (not 30m), the shortest a sweep is cut to; 1/s still simulates about 600 "
            "requests" in " ".join(result.stderr.split()))
    assert len(json.loads(result.stdout)["rates_per_s"]) == 2


def test_compare_never_lengthens_a_short_scenario(runner: CliRunner, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """A 2-minute scenario whose top rate passes the cap is not stretched to the 10-minute floor (it was, with a
    warning that said it kept the rate under the cap): it runs as written, and nothing claims a shortening."""
    monkeypatch.setattr("mlplat.cli.sim.MAX_SWEEP_REQUESTS", 100)
    path = _bad(tmp_path, "duration: 30m\nwarmup: 2m", "duration: 2m\nwarmup: 0s")
    result = runner.invoke(app, ["sim", "compare", str(path), "--rates", "0.01/s..1/s", "--points", "2", "-r", "1",
                                 "--json"])
    assert result.exit_code == 0, result.output
    assert "simulating" not in result.stderr
    assert json.loads(result.stdout)["requests"][1] < 200  # about 120 at 1/s over 2 minutes, not 600


def test_compare_refuses_a_rate_too_big_to_simulate_before_running_any(runner: CliRunner, scenario_file: Path) -> None:
    """With --duration given, a top rate whose replication could not finish is exit 4, before the low rates run."""
    result = runner.invoke(app, ["sim", "compare", str(scenario_file), "--rates", "1/s..1e6/s", "--points", "2",
                                 "--duration", "1h"])
    assert result.exit_code == ExitCode.BAD_INPUT
    assert "duration at 1e+06 req/s: one replication of 3600 s would simulate about 3.6e+09 events" in result.stderr
    assert "Traceback" not in result.output


def test_compare_caps_the_points_and_replications(runner: CliRunner, scenario_file: Path) -> None:
    """--points 100000 ran for hours; past 200 log-spaced rates is a usage error. -r past 1000 is too, as
    in the scenario file (the option skipped the file's bound)."""
    result = runner.invoke(app, ["sim", "compare", str(scenario_file), "--points", "100000"])
    assert result.exit_code == ExitCode.USAGE and "less than or equal to 200" in result.output
    for command in ("run", "compare"):
        result = runner.invoke(app, ["sim", command, str(scenario_file), "-r", "100000"])
        assert result.exit_code == ExitCode.USAGE and "Invalid value for '--replications'" in result.output


def test_free_tier_flag(runner: CliRunner, scenario_file: Path) -> None:
    """`--free-tier` subtracts the monthly free tiers: the serverless bills drop, the cluster's does not."""
    args = ["sim", "run", str(scenario_file), "-r", "1", "--json"]
    paid = {p["name"]: p for p in json.loads(runner.invoke(app, args).stdout)["platforms"]}
    free = {p["name"]: p for p in json.loads(runner.invoke(app, [*args, "--free-tier"]).stdout)["platforms"]}
    assert free["fn"]["cost_per_month"] < paid["fn"]["cost_per_month"]
    assert free["run"]["cost_per_month"] < paid["run"]["cost_per_month"]
    assert free["k8s"]["cost_per_month"] == paid["k8s"]["cost_per_month"]


@pytest.mark.parametrize(("content", "expected"), [
    (None, "is a directory"),
    (b"\x00\x01\x02binary", "is a binary file"),
    (b"", "the file is empty"),
    (b"- a list\n", "expected a YAML mapping"),
])
def test_odd_scenario_files_exit_4(runner: CliRunner, tmp_path: Path, content: bytes | None, expected: str) -> None:
    """A directory, binary, empty or non-mapping scenario is bad input (exit 4), never a traceback."""
    path = tmp_path / "odd.yaml"
    if content is None:
        path.mkdir()
    else:
        path.write_bytes(content)
    for command in ("run", "validate", "compare"):
        result = runner.invoke(app, ["sim", command, str(path)])
        assert result.exit_code == ExitCode.BAD_INPUT, (command, result.output)
        assert expected in result.stderr
        assert "Traceback" not in result.output


def test_existing_plot_refused_before_simulating(runner: CliRunner, scenario_file: Path, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """An existing --plot file without --force is exit 4 at once, not after the simulation."""
    png = tmp_path / "old.png"
    png.write_bytes(b"keep me")

    def fail(*args: object, **kwargs: object) -> None:
        raise AssertionError("simulated before checking the plot file")

    monkeypatch.setattr("mlplat.sim.simulate", fail)
    monkeypatch.setattr("mlplat.sim.sweep", fail)
    for command in (["run"], ["compare", "--points", "2"]):
        result = runner.invoke(app, ["sim", *command, str(scenario_file), "--plot", str(png)])
        assert result.exit_code == ExitCode.BAD_INPUT, result.output
        assert f"{png}: already exists; pass --force to overwrite it" in result.stderr.replace("\n", " ")
    assert png.read_bytes() == b"keep me"


def test_a_platform_name_with_brackets_is_shown_as_written(runner: CliRunner, tmp_path: Path) -> None:
    """Platform names are plain text in the tables and the verdict: 'fn[/x]' was read as markup (exit 5)."""
    path = _bad(tmp_path, "name: fn, kind: lambda", "name: 'fn[/x]', kind: lambda")
    result = runner.invoke(app, ["sim", "run", str(path), "-r", "2"])
    assert result.exit_code == 0, result.output
    assert "fn[/x]" in result.stdout
    checked = runner.invoke(app, ["sim", "validate", str(path)])
    assert checked.exit_code == 0 and "fn[/x]" in checked.stdout
