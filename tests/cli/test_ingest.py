"""`mlplat ingest` commands: output, --json, exit codes."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlplat.cli import ExitCode, app

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "ingest"
CONFIG = str(EXAMPLES / "ingest.yaml")
EVENTS = str(EXAMPLES / "events.jsonl")


def _run(runner: CliRunner, tmp_path: Path, *extra: str) -> object:
    return runner.invoke(app, ["ingest", "run", CONFIG, "--source", EVENTS, "--store", f"sqlite:///{tmp_path}/f.db",
                               "--dead-letter", str(tmp_path / "dl.jsonl"), *extra])


def test_init_validate_schema(runner: CliRunner, tmp_path: Path) -> None:
    """init writes a template that validates; init refuses to overwrite; schema is JSON Schema."""
    path = tmp_path / "ingest.yaml"
    assert runner.invoke(app, ["ingest", "init", str(path)]).exit_code == 0
    assert runner.invoke(app, ["ingest", "init", str(path)]).exit_code == ExitCode.BAD_INPUT
    result = runner.invoke(app, ["ingest", "validate", str(path), "--json"])
    assert result.exit_code == 0 and json.loads(result.stdout)["valid"] is True
    assert json.loads(result.stdout)["max_future"] == 300  # the template sets 5m
    shown = runner.invoke(app, ["ingest", "validate", str(path)]).stdout
    assert "dedup_ttl 3900 s; max_future 300 s)" in " ".join(shown.split())
    schema = json.loads(runner.invoke(app, ["ingest", "schema"]).stdout)
    assert {"max_out_of_orderness", "max_future"} <= set(schema["properties"])
    result = runner.invoke(app, ["--json", "ingest", "init", str(tmp_path / "again.yaml")])
    assert result.exit_code == 0 and json.loads(result.stdout) == {"wrote": str(tmp_path / "again.yaml")}


@pytest.mark.parametrize(("text", "message"), [
    ("max_out_of_orderness: 1m\nfeatures:\n  - {name: n, agg: count}\n", ":3:5: features[0]"),
    ("max_out_of_orderness: soon\nfeatures: [{name: n, agg: count, window: 1h}]\n", "max_out_of_orderness"),
    ("max_out_of_orderness: 1m\nfeatures: [{name: n, agg: count, window: soon}]\n",
     ":2:42: features[0].window: expected a duration from 0 to 100 years such as '90s', '10m', '1h30m' or '1d', "
     "got 'soon'\n"),
    ("max_out_of_orderness: 1m\ndedup_ttl: 1m\nfeatures: [{name: n, agg: count, window: 1h}]\n",
     ":2:12: dedup_ttl: must be >= allowed_lateness + the longest window"),
    # Raised by a feature's own validator: the place is that feature, not the top of the file.
    ("max_out_of_orderness: 1m\nfeatures:\n  - {name: a, agg: count, window: 1h}\n"
     "  - {name: n, agg: count, window: 1h, hop: 7m}\n",
     ":4:5: features[1]: `window` must be a multiple of `hop`, got 3600 / 420"),
    # A slip of the unit: each event would update 86,400 windows (found hanging with a window of 1e308 s).
    ("max_out_of_orderness: 1m\nfeatures: [{name: n, agg: count, window: 1d, hop: 1s}]\n",
     ":2:12: features[0]: `window` / `hop` must be at most 10,000 (each event updates that many windows), "
     "got 86400 / 1 = 86,400"),
    # Far below the float spacing of epoch times: a 1e-15 s window hung the run, a 1e-320 s hop was exit 5.
    ("max_out_of_orderness: 1m\nfeatures: [{name: n, agg: count, window: 1e-15}]\n",
     ":2:12: features[0]: `window` must be at least 0.001 s (1 ms), got 1e-15 s"),
    ("max_out_of_orderness: 1m\nfeatures: [{name: n, agg: count, window: 3, hop: 1e-300}]\n",
     ":2:12: features[0]: `hop` must be at least 0.001 s (1 ms), got 1e-300 s"),
    ("max_out_of_orderness: 1m\nfeatures: [{name: n, agg: count, window: 3, hop: 1e-320}]\n",
     ":2:12: features[0]: `hop` must be at least 0.001 s (1 ms), got "),
    ("max_out_of_orderness: 1e308\nfeatures: [{name: n, agg: count, window: 1h}]\n",
     ":1:23: max_out_of_orderness: `duration`: a duration must be from 0 to 100 years"),
    ("max_out_of_orderness: 1m\nfeaturs: []\n", "unknown key 'featurs'"),
    # YAML's true is not a duration (nor read as 1 s).
    ("max_out_of_orderness: true\nfeatures: [{name: n, agg: count, window: 1h}]\n",
     ":1:23: max_out_of_orderness: expected a number, got true\n"),
    # Validated before: every event was then its own entity, or every time unreadable (all malformed).
    ("max_out_of_orderness: 1m\nentity: event_id\nfeatures: [{name: n, agg: count, window: 1h}]\n",
     ":2:9: entity: names the same field as event_id ('event_id'); event_id, entity and event_time must be "
     "three different fields"),
    ("max_out_of_orderness: 1m\nentity: card\nevent_time: card\nfeatures: [{name: n, agg: count, window: 1h}]\n",
     ":3:13: event_time: names the same field as entity ('card')"),
])
def test_config_errors_exit_4_with_position(runner: CliRunner, tmp_path: Path, text: str, message: str) -> None:
    """Config errors are exit 4 with file:line:column and the key path, no traceback."""
    path = tmp_path / "c.yaml"
    path.write_text(text)
    result = runner.invoke(app, ["ingest", "validate", str(path)])
    assert result.exit_code == ExitCode.BAD_INPUT
    assert message in result.stderr and "Traceback" not in result.output


def test_run_prints_reconciled_counts(runner: CliRunner, tmp_path: Path) -> None:
    """`run` shows the counts and the reconciliation line; --json has the same counts."""
    result = _run(runner, tmp_path)
    assert result.exit_code == 0, result.output
    assert "(reconciled)" in result.stdout
    (tmp_path / "x").mkdir()
    doc = json.loads(_run(runner, tmp_path / "x", "--json").stdout)
    c = doc["counts"]
    assert doc["reconciles"] and c["read"] == (c["applied"] + c["duplicates"] + c["late"] + c["malformed"]
                                               + c["future"])
    # The example has each fate; its one future event is stamped a year after its ingest time. Pinned:
    # `read` is the sum of the others by construction, so only a pinned count catches a skipped record.
    assert (c["read"], c["applied"], c["duplicates"], c["late"], c["malformed"], c["future"]) == (
        429, 398, 25, 2, 3, 1)


def test_run_on_error_fail_exit_4(runner: CliRunner, tmp_path: Path) -> None:
    """`on_error: fail` stops at the first malformed line with exit 4 and names it."""
    cfg = tmp_path / "c.yaml"
    cfg.write_text(Path(CONFIG).read_text() + "on_error: fail\n")
    result = runner.invoke(app, ["ingest", "run", str(cfg), "--source", EVENTS, "--store",
                                 f"sqlite:///{tmp_path}/f.db", "--dead-letter", str(tmp_path / "dl")])
    assert result.exit_code == ExitCode.BAD_INPUT
    assert "events.jsonl:151: malformed: missing `event_time`" in result.stderr


def test_run_where_every_record_is_malformed_warns(runner: CliRunner, tmp_path: Path) -> None:
    """Events keyed by a field the config does not name are all dead-lettered: the run says so on stderr."""
    source = tmp_path / "events.jsonl"
    source.write_text("".join(json.dumps({"event_id": f"e{i}", "user": "u1", "event_time": 1767225600 + i}) + "\n"
                              for i in range(3)))
    result = runner.invoke(app, ["ingest", "run", CONFIG, "--source", str(source), "--store",
                                 f"sqlite:///{tmp_path}/f.db", "--dead-letter", str(tmp_path / "dl.jsonl")])
    assert result.exit_code == 0, result.output
    assert "warning: all 3 records read were malformed" in result.stderr
    assert "events.jsonl:1: malformed: missing `card`" in result.stderr
    doc = json.loads(runner.invoke(app, ["ingest", "run", CONFIG, "--source", str(source), "--store",
                                         f"sqlite:///{tmp_path}/g.db", "--dead-letter", str(tmp_path / "dl2.jsonl"),
                                         "--json"]).stdout)
    assert len(doc["warnings"]) == 1
    # A run with some good records has no such warning.
    assert "warning" not in _run(runner, tmp_path).stderr


def test_run_event_time_past_year_9999_is_malformed(runner: CliRunner, tmp_path: Path) -> None:
    """An event stamped 1e30 s is dead-lettered; it used to become the watermark and crash the summary."""
    lines = Path(EVENTS).read_text().splitlines()[:5]
    poisoned = json.loads(lines[1]) | {"event_time": 1e30}
    source = tmp_path / "events.jsonl"
    source.write_text("\n".join([lines[0], json.dumps(poisoned), *lines[2:]]) + "\n")
    result = runner.invoke(app, ["ingest", "run", CONFIG, "--source", str(source), "--store",
                                 f"sqlite:///{tmp_path}/f.db", "--dead-letter", str(tmp_path / "dl.jsonl")])
    assert result.exit_code == 0, result.output
    assert "(reconciled)" in result.stdout and "2025-12-31T" in result.stdout  # the watermark, a real date
    (dead,) = [json.loads(line) for line in (tmp_path / "dl.jsonl").read_text().splitlines()]
    assert dead["line"] == 2 and "years 1 to 9999" in dead["reason"]


def test_run_on_a_store_of_another_source_exit_4(runner: CliRunner, tmp_path: Path) -> None:
    """Resuming another file's checkpoint would skip its first 429 lines: exit 4, naming both sources."""
    assert _run(runner, tmp_path).exit_code == 0
    other = tmp_path / "other.jsonl"
    other.write_text(Path(EVENTS).read_text())
    result = runner.invoke(app, ["ingest", "run", CONFIG, "--source", str(other), "--store",
                                 f"sqlite:///{tmp_path}/f.db", "--dead-letter", str(tmp_path / "dl.jsonl")])
    assert result.exit_code == ExitCode.BAD_INPUT, result.output
    message = " ".join(result.stderr.split())
    assert f"at record 429 of {Path(EVENTS).resolve()}, not of {other.resolve()}" in message
    assert "Traceback" not in result.output


def test_run_unreachable_redis_and_bad_store_exit_4(runner: CliRunner, tmp_path: Path) -> None:
    """An unreachable Redis and an unwritable store path are exit 4 with a clear message."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = _run(runner, tmp_path, "--store", f"redis://127.0.0.1:{port}/0")
    assert result.exit_code == ExitCode.BAD_INPUT and "cannot reach Redis" in result.stderr
    result = _run(runner, tmp_path, "--store", f"sqlite:///{tmp_path}/missing/f.db")
    assert result.exit_code == ExitCode.BAD_INPUT and "does not exist" in result.stderr
    result = _run(runner, tmp_path, "--partition", "3/2")
    assert result.exit_code == ExitCode.BAD_INPUT and "0 <= i < N" in result.stderr


@pytest.mark.parametrize(("args", "message"), [
    (["read", "x", "--store", "redis://127.0.0.1:1/0?x=y"], "redis://127.0.0.1:1/0?x=y: not a Redis URL"),
    (["read", "x", "--store", "redis://[::1/0"], "redis://[::1/0: not a store URL: Invalid IPv6 URL"),
    (["run", CONFIG, "--source", "redis://[::1/0/s"], "not a Redis stream URL: Invalid IPv6 URL"),
    (["run", CONFIG, "--source", "a" * 300], "cannot use this path: File name too long"),
    (["repair", CONFIG, "--source", "redis://127.0.0.1:1/0/s"], "`ingest repair` replays a file from its first line"),
    (["verify", CONFIG, "--source", "redis://127.0.0.1:1/0/s"], "`ingest verify` replays a file from its first line"),
    (["run", CONFIG, "--source", EVENTS, "--store", "sqlite:///" + "a" * 300 + ".db"],
     "cannot use this path: File name too long"),
])
def test_unusable_urls_and_paths_exit_4(runner: CliRunner, tmp_path: Path, args: list[str], message: str) -> None:
    """A URL urllib or redis cannot use, or a name over 255 bytes, is exit 4 naming it (it was exit 5)."""
    if args[0] == "run" and "--store" not in args:
        args = [*args, "--store", f"sqlite:///{tmp_path}/f.db"]  # not the default store in the working dir
    result = runner.invoke(app, ["ingest", *args])
    assert result.exit_code == ExitCode.BAD_INPUT, result.output
    assert message in " ".join(result.stderr.split())


def test_batch_size_over_the_config_bound_is_a_usage_error(runner: CliRunner, tmp_path: Path) -> None:
    """--batch-size has the config's bound (100,000); past it used to be a raw pydantic error, exit 5."""
    result = _run(runner, tmp_path, "--batch-size", "100001")
    assert result.exit_code == ExitCode.USAGE and "--batch-size" in result.output


def test_missing_dead_letter_folder_and_store_are_refused(runner: CliRunner, tmp_path: Path) -> None:
    """A --dead-letter in a missing folder, or reading a missing store, is exit 4 and creates nothing."""
    result = runner.invoke(app, ["ingest", "run", CONFIG, "--source", EVENTS, "--store", f"sqlite:///{tmp_path}/f.db",
                                 "--dead-letter", str(tmp_path / "nope" / "dl.jsonl")])
    assert result.exit_code == ExitCode.BAD_INPUT
    assert f"--dead-letter {tmp_path}/nope/dl.jsonl: folder {tmp_path}/nope does not exist" in " ".join(
        result.stderr.split())
    result = runner.invoke(app, ["ingest", "read", "x", "--store", f"sqlite:///{tmp_path}/nope.db"])
    assert result.exit_code == ExitCode.BAD_INPUT
    assert f"sqlite:///{tmp_path}/nope.db: no such store" in " ".join(result.stderr.split())
    assert sorted(tmp_path.iterdir()) == []


@pytest.mark.parametrize("args", [
    ["run", CONFIG, "--source", "nope.jsonl"],
    ["repair", CONFIG, "--source", "nope.jsonl"],
    ["repair", CONFIG, "--source", "redis://127.0.0.1:1/0/s"],
    ["repair", CONFIG, "--source", EVENTS, "--partition", "2/2"],
    ["repair", CONFIG, "--source", EVENTS, "--dry-run"],
])
def test_refused_run_or_repair_leaves_no_store(runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               args: list[str]) -> None:
    """Bad input is refused before the default store (features.db here) is opened, which would create it;
    a dry run never creates one."""
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["ingest", *args])
    assert result.exit_code == ExitCode.BAD_INPUT, result.output
    assert sorted(tmp_path.iterdir()) == []


def test_read_and_repair(runner: CliRunner, tmp_path: Path) -> None:
    """`read` serves an entity's features; `repair` on a correct store finds nothing to fix."""
    assert _run(runner, tmp_path).exit_code == 0
    store = f"sqlite:///{tmp_path}/f.db"
    result = runner.invoke(app, ["ingest", "read", "card-001", "--store", store, "--feature", "txn_count_10m"])
    assert result.exit_code == 0 and "txn_count_10m" in result.stdout and "final" in result.stdout
    doc = json.loads(runner.invoke(app, ["ingest", "read", "card-001", "--store", store, "--json"]).stdout)
    assert {f["feature"] for f in doc["features"]} >= {"amount_last", "txn_count_10m"}
    result = runner.invoke(app, ["ingest", "repair", CONFIG, "--source", EVENTS, "--store", store, "--json"])
    assert result.exit_code == 0 and json.loads(result.stdout)["differing"] == 0
    result = runner.invoke(app, ["ingest", "repair", CONFIG, "--source", EVENTS, "--store", store,
                                 "--since", "2026-01-01T00:20:00Z", "--dry-run"])
    assert result.exit_code == 0 and "0 differ" in result.stdout
    result = runner.invoke(app, ["ingest", "repair", CONFIG, "--source", EVENTS, "--store", store,
                                 "--since", "yesterday", "--dry-run"])
    assert result.exit_code == ExitCode.BAD_INPUT
    assert "--since: expected epoch seconds or ISO 8601, got 'yesterday'" in result.stderr


def test_read_of_a_damaged_store_exit_4_and_repair_fixes_it(runner: CliRunner, tmp_path: Path) -> None:
    """A stored value that is not mlplat's form makes `read` exit 4 naming it; `repair` rewrites it."""
    import sqlite3

    assert _run(runner, tmp_path).exit_code == 0
    store = f"sqlite:///{tmp_path}/f.db"
    with sqlite3.connect(tmp_path / "f.db") as db:
        db.execute("UPDATE state SET value = 'inf' WHERE key LIKE 'card-001%'")
    result = runner.invoke(app, ["ingest", "read", "card-001", "--store", store])
    assert result.exit_code == ExitCode.BAD_INPUT and "Traceback" not in result.output
    assert "is not what mlplat ingest writes (expected a JSON array)" in result.stderr
    result = runner.invoke(app, ["ingest", "repair", CONFIG, "--source", EVENTS, "--store", store,
                                 "--dead-letter", str(tmp_path / "dl.jsonl")])
    assert result.exit_code == 0 and "fixed" in result.stdout
    assert runner.invoke(app, ["ingest", "read", "card-001", "--store", store]).exit_code == 0


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs Linux's /dev/full")
def test_a_full_disk_for_dead_letters_is_exit_4_and_the_rerun_finishes(runner: CliRunner, tmp_path: Path) -> None:
    """A dead-letter write that fails (a full disk) stops the run with exit 4 before its batch is committed;
    a run with room then ends where a clean run does."""
    store = f"sqlite:///{tmp_path}/f.db"
    base = ["ingest", "run", CONFIG, "--source", EVENTS, "--store", store, "--json"]
    result = runner.invoke(app, [*base, "--dead-letter", "/dev/full"])
    assert result.exit_code == ExitCode.BAD_INPUT, result.output
    assert "/dev/full: cannot write the dead-letter file: No space left on device; the batch was not applied" \
        in result.stderr
    assert runner.invoke(app, [*base, "--dead-letter", str(tmp_path / "dl.jsonl")]).exit_code == 0
    clean = f"sqlite:///{tmp_path}/clean.db"
    assert runner.invoke(app, ["ingest", "run", CONFIG, "--source", EVENTS, "--store", clean, "--dead-letter",
                               str(tmp_path / "clean.jsonl")]).exit_code == 0
    assert (tmp_path / "dl.jsonl").read_text().count("\n") == (tmp_path / "clean.jsonl").read_text().count("\n")
    dump = ["ingest", "read", "card-001", "--feature", "txn_count_10m", "--json", "--store"]
    got, want = (json.loads(runner.invoke(app, [*dump, url]).stdout) for url in (store, clean))
    assert got["features"] == want["features"] and got["features"]


@pytest.mark.parametrize("command", [["read", "u"], ["repair"]])
def test_a_store_whose_tables_another_program_changed_is_exit_4(runner: CliRunner, tmp_path: Path,
                                                               command: list[str]) -> None:
    """A SQLite file with the store's table names but other columns is exit 4 naming the store, not a traceback."""
    import sqlite3

    other = tmp_path / "other.db"
    with sqlite3.connect(other) as db:
        # The indexed columns are there (so the store opens), the values are not.
        db.executescript("CREATE TABLE state (key TEXT, entity TEXT); CREATE TABLE dedup (id, max_time); "
                         "CREATE TABLE checkpoint (partition TEXT);")
    args = [*command, "--store", f"sqlite:///{other}"]
    if command[0] == "repair":
        args += [str(EXAMPLES / "ingest.yaml"), "--source", EVENTS]
    result = runner.invoke(app, ["ingest", *args])
    assert result.exit_code == ExitCode.BAD_INPUT, result.output
    assert f"sqlite:///{other}: cannot read the SQLite store: no such column" in result.stderr


def test_odd_stores_and_dead_letter_paths_exit_4_and_change_nothing(runner: CliRunner, tmp_path: Path) -> None:
    """redis://host/x wrote (and `verify --store` cleared) database 0; `read` turned any SQLite file into WAL
    mode with mlplat's tables; a dead-letter file naming the config broke the config for the next run."""
    import sqlite3

    result = _run(runner, tmp_path, "--store", "redis://127.0.0.1:1/x")
    assert result.exit_code == ExitCode.BAD_INPUT
    assert "redis://127.0.0.1:1/x: expected redis://host:port/DB with DB a number" in result.stderr
    # A password holding '/' made the parser's path part of the password, which the message quoted.
    for url in ("redis://:pa/ss@127.0.0.1:1/0", "redis://:pa#ss@127.0.0.1:1/0"):
        result = _run(runner, tmp_path, "--store", url)
        assert result.exit_code == ExitCode.BAD_INPUT and "redis://***@127.0.0.1:1/0: " in result.stderr
        assert "pa" not in result.stderr.replace("parse", "") and "ss@" not in result.stderr
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE checkpoint (x)")
    before = other.read_bytes()
    result = runner.invoke(app, ["ingest", "read", "u", "--store", f"sqlite:///{other}"])
    assert result.exit_code == ExitCode.BAD_INPUT and "not an mlplat ingest store" in result.stderr
    assert other.read_bytes() == before and not (tmp_path / "other.db-wal").exists()
    config = tmp_path / "c.yaml"
    config.write_text((EXAMPLES / "ingest.yaml").read_text())
    text = config.read_text()
    result = runner.invoke(app, ["ingest", "run", str(config), "--source", EVENTS, "--store",
                                 f"sqlite:///{tmp_path}/f.db", "--dead-letter", str(config)])
    assert result.exit_code == ExitCode.BAD_INPUT and "the dead-letter file is the config file" in result.stderr
    assert config.read_text() == text and not (tmp_path / "f.db").exists()


def test_lateness_without_a_target_exit_4(runner: CliRunner) -> None:
    """`lateness --target ,` (no share in the list) is exit 4 with the expected form."""
    result = runner.invoke(app, ["ingest", "lateness", EVENTS, "--target", ","])
    assert result.exit_code == ExitCode.BAD_INPUT and "--target: expected shares such as" in result.stderr


def test_lateness_command(runner: CliRunner, tmp_path: Path) -> None:
    """`lateness` prints the distribution and per-target bounds; --plot writes a PNG."""
    result = runner.invoke(app, ["ingest", "lateness", EVENTS, "--target", "0.1%,1%", "--plot",
                                 str(tmp_path / "l.png")])
    assert result.exit_code == 0 and "ingest_time - event_time" in result.stdout
    assert (tmp_path / "l.png").exists()
    again = ["ingest", "lateness", EVENTS, "--plot", str(tmp_path / "l.png")]
    refused = runner.invoke(app, again)
    assert refused.exit_code == ExitCode.BAD_INPUT and "--force" in refused.stderr
    assert refused.stdout == ""  # refused before the analysis, not after printing it
    assert runner.invoke(app, [*again, "--force"]).exit_code == 0
    doc = json.loads(runner.invoke(app, ["ingest", "lateness", EVENTS, "--json"]).stdout)
    assert [t["target"] for t in doc["targets"]] == [0.001, 0.01]
    assert runner.invoke(app, ["ingest", "lateness", EVENTS, "--target", "lots"]).exit_code == ExitCode.BAD_INPUT


def test_lateness_prints_targets_as_given(runner: CliRunner) -> None:
    """Targets print to six significant figures, as canary plan's shares: 1e-9% read 0.000%."""
    result = runner.invoke(app, ["ingest", "lateness", EVENTS, "--target", "0.1%,1e-9%"])
    assert result.exit_code == 0, result.output
    assert "│   0.1% │" in result.stdout and "│ 1e-09% │" in result.stdout
    repeated = runner.invoke(app, ["ingest", "lateness", EVENTS, "--target", "1%,0.01"])
    assert repeated.exit_code == ExitCode.BAD_INPUT and "--target: 1% is given twice" in repeated.stderr


def test_lateness_leaves_out_future_events_like_a_run(runner: CliRunner) -> None:
    """The example's one event stamped a year ahead is left out with the config's max_future (or
    --max-future); without either it is reported, and every later event reads as a year behind."""
    plain = json.loads(runner.invoke(app, ["ingest", "lateness", EVENTS, "--json"]).stdout)
    assert plain["ahead"]["left_out"] == 0 and plain["behind_quantiles"]["p90"] > 300 * 86400
    for extra in (["--config", CONFIG], ["--max-future", "5m"]):
        doc = json.loads(runner.invoke(app, ["ingest", "lateness", EVENTS, "--json", *extra]).stdout)
        assert doc["ahead"]["left_out"] == 1 and doc["behind_quantiles"]["max"] < 3600
    result = runner.invoke(app, ["ingest", "lateness", EVENTS, "--max-future", "soon"])
    assert result.exit_code == ExitCode.BAD_INPUT and "--max-future: expected a duration" in result.stderr


@pytest.mark.slow
def test_verify_command(runner: CliRunner, tmp_path: Path) -> None:
    """`verify` reports N/N identical runs and exits 0."""
    result = runner.invoke(app, ["ingest", "verify", CONFIG, "--source", EVENTS, "--store",
                                 f"sqlite:///{tmp_path}/v.db", "--crashes", "3", "--seed", "7", "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["identical"] == doc["runs"] == 3


def test_verify_does_not_clear_a_store_that_holds_features_without_force(runner: CliRunner, tmp_path: Path) -> None:
    """verify clears its --store before each run: naming a real store wiped it (a contract sweep found it)."""
    assert _run(runner, tmp_path).exit_code == 0
    db = tmp_path / "f.db"
    before = db.read_bytes()
    args = ["ingest", "verify", CONFIG, "--source", EVENTS, "--store", f"sqlite:///{db}", "--crashes", "1"]
    result = runner.invoke(app, args)
    assert result.exit_code == ExitCode.BAD_INPUT and "holds ingest features" in result.stderr
    assert db.read_bytes() == before
    assert runner.invoke(app, [*args, "--force"]).exit_code == 0


def test_verify_command_exits_1_when_a_run_differs(runner: CliRunner, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A run that differs from the batch computation is exit 1 with the run listed (the reference is
    made wrong here: one extra key the pipeline never writes). Without --store the scratch store is a
    temporary file, and nothing is left in the working directory."""
    import mlplat.ingest._verify as verify_module

    real = verify_module.compute_batch
    monkeypatch.setattr(verify_module, "compute_batch", lambda events, cfg: {**real(events, cfg), "ghost": [1]})
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["ingest", "verify", CONFIG, "--source", EVENTS, "--crashes", "1", "--json"])
    assert result.exit_code == ExitCode.FAIL, result.output
    doc = json.loads(result.stdout)
    assert doc["passed"] is False and doc["failures"][0]["example"] == "ghost"
    assert list(tmp_path.iterdir()) == []


def test_an_entity_or_path_with_brackets_is_shown_as_written(runner: CliRunner, tmp_path: Path) -> None:
    """Entities, paths and store URLs are plain text: an entity 'user[/x]' stopped `read` with rich's
    MarkupError (exit 5), and one named '[bold]' lost its brackets."""
    (tmp_path / "[bold]").mkdir()
    source = tmp_path / "[bold]" / "e.jsonl"
    source.write_text('{"event_id": "a", "card": "user[/x]", "event_time": 1767225600, "amount": 1}\n')
    store = f"sqlite:///{tmp_path}/f.db"
    ran = runner.invoke(app, ["ingest", "run", CONFIG, "--source", str(source), "--store", store,
                              "--dead-letter", str(tmp_path / "dl.jsonl")])
    assert ran.exit_code == 0, ran.output
    assert "[bold]/e.jsonl" in ran.stdout
    read = runner.invoke(app, ["ingest", "read", "user[/x]", "--store", store])
    assert read.exit_code == 0, read.output
    assert read.stdout.startswith("user[/x] (watermark")
