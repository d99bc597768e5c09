"""The pipeline on files and SQLite: reconciled counts, dead letters, resume, repair, read, lateness, verify."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from tests.ingest.helpers import CrashAt, config, write_jsonl

from mlplat.errors import DataError, OutputError
from mlplat.ingest import (
    Commit,
    FileSource,
    SQLiteStore,
    analyze_lateness,
    open_source,
    open_store,
    read_entity,
    repair,
    run_pipeline,
    verify,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "ingest"
SUM = [{"name": "n_1m", "agg": "count", "window": 60},
       {"name": "last", "agg": "last", "field": "amount"}]


def _events(tmp_path: Path) -> Path:
    return write_jsonl(tmp_path / "e.jsonl", [
        {"event_id": "a", "entity": "u", "event_time": 10, "amount": 1},
        {"event_id": "a", "entity": "u", "event_time": 10, "amount": 1},
        "not json",
        {"event_id": "b", "entity": "u", "event_time": 200, "amount": 2},
        {"event_id": "c", "entity": "u", "event_time": 20, "amount": 3},
        {"event_id": "d", "event_time": 30},
        {"event_id": "e", "entity": "v", "event_time": 190, "amount": 4},
    ])


def test_counts_reconcile_and_dead_letters_name_lines(tmp_path: Path) -> None:
    """read = applied + duplicates + late + malformed; each dead letter has its line and reason."""
    cfg = config(SUM, max_out_of_orderness=30, batch_size=2)
    store = SQLiteStore(tmp_path / "f.db")
    result = run_pipeline(cfg, FileSource(_events(tmp_path)), store, dead_letter=tmp_path / "dl.jsonl")
    assert result.counts == {"read": 7, "applied": 3, "duplicates": 1, "late": 1, "malformed": 2,
                             "future": 0, "other_partition": 0}
    assert result.reconciles
    dead = [json.loads(line) for line in (tmp_path / "dl.jsonl").read_text().splitlines()]
    assert [(d["line"], d["kind"]) for d in dead] == [(3, "malformed"), (5, "late"), (6, "malformed")]
    assert "missing `entity`" in dead[2]["reason"]
    assert result.to_dict()["reconciles"] is True


def test_restart_resumes_from_checkpoint(tmp_path: Path) -> None:
    """A second run over a grown file reads only the new lines."""
    events = [{"event_id": f"e{i}", "entity": "u", "event_time": i, "amount": i} for i in range(10)]
    path = write_jsonl(tmp_path / "e.jsonl", events[:6])
    cfg = config(SUM, batch_size=4)
    store = SQLiteStore(tmp_path / "f.db")
    first = run_pipeline(cfg, FileSource(path), store, dead_letter=tmp_path / "dl")
    write_jsonl(path, events)
    second = run_pipeline(cfg, FileSource(path), store, dead_letter=tmp_path / "dl")
    assert (first.counts["read"], second.counts["read"]) == (6, 4)
    assert read_entity(store, "u", "n_1m").rows[0].value == 10


def test_checkpoint_of_another_source_is_refused_before_anything_is_written(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """A store resumes only the source its offsets count in: a second file would start at record 6 of
    something else. Nothing is written, nor cut from the dead-letter file; the same file named from another
    working directory resumes."""
    events = [{"event_id": f"e{i}", "entity": "u", "event_time": i} for i in range(6)]
    first = write_jsonl(tmp_path / "a.jsonl", events)
    other = write_jsonl(tmp_path / "b.jsonl", [*events, "not json"])
    store = SQLiteStore(tmp_path / "f.db")
    dl = tmp_path / "dl.jsonl"
    run_pipeline(config(), FileSource(first), store, dead_letter=dl)
    dl.write_text("kept\n")
    before = store.checkpoint("0/1")
    with pytest.raises(DataError, match=r"at record 6 of .*a\.jsonl, not of .*b\.jsonl; resume with"):
        run_pipeline(config(), FileSource(other), store, dead_letter=dl)
    assert store.checkpoint("0/1") == before and dl.read_text() == "kept\n"
    monkeypatch.chdir(tmp_path)
    assert run_pipeline(config(), FileSource("a.jsonl"), store, dead_letter=dl).counts["read"] == 0
    assert dl.read_text() == "kept\n"  # not this store's line: never cut


def test_checkpoint_without_a_source_adopts_the_first_one(tmp_path: Path) -> None:
    """A store written before checkpoints named their source resumes, and records the source from then on;
    repair records the source it rebuilt the store from."""
    events = [{"event_id": f"e{i}", "entity": "u", "event_time": i} for i in range(4)]
    path = write_jsonl(tmp_path / "a.jsonl", events[:2])
    store = SQLiteStore(tmp_path / "f.db")
    run_pipeline(config(), FileSource(path), store, dead_letter=tmp_path / "dl")
    store.commit(Commit({}, {}, replace(store.checkpoint("0/1"), source="")))  # as an older mlplat wrote it
    write_jsonl(path, events)
    result = run_pipeline(config(), FileSource(path), store, dead_letter=tmp_path / "dl")
    assert result.counts["read"] == 2 and store.checkpoint("0/1").source == str(path.resolve())
    other = write_jsonl(tmp_path / "b.jsonl", events[:3])
    repair(config(), FileSource(other), store, dead_letter=tmp_path / "dl")
    assert store.checkpoint("0/1").source == str(other.resolve())
    assert run_pipeline(config(), FileSource(other), store, dead_letter=tmp_path / "dl").counts["read"] == 0


def test_csv_source(tmp_path: Path) -> None:
    """CSV rows are events; values are read as numbers where a feature needs one; short rows are malformed."""
    path = tmp_path / "e.csv"
    path.write_text("event_id,entity,event_time,amount\na,u,1,2.5\nb,u,2,3\nc,u\n")
    cfg = config([{"name": "s", "agg": "sum", "field": "amount", "window": 60}])
    store = open_store(f"sqlite:///{tmp_path}/f.db")
    result = run_pipeline(cfg, open_source(str(path)), store, dead_letter=tmp_path / "dl")
    assert (result.counts["applied"], result.counts["malformed"]) == (2, 1)
    assert read_entity(store, "u").rows[0].value == 5.5
    assert json.loads((tmp_path / "dl").read_text())["line"] == 4


def test_on_error_fail_stops_with_line(tmp_path: Path) -> None:
    """`on_error: fail` raises DataError naming the file and line, and does not apply that batch."""
    cfg = config(SUM, on_error="fail")
    store = SQLiteStore(tmp_path / "f.db")
    with pytest.raises(DataError, match=r"e\.jsonl:3: malformed: not valid JSON"):
        run_pipeline(cfg, FileSource(_events(tmp_path)), store, dead_letter=tmp_path / "dl")
    assert store.states() == {}


def test_json_nested_too_deep_is_a_malformed_line(tmp_path: Path) -> None:
    """A line nested a thousand deep exhausts json's recursion: it is dead-lettered, the rest applied."""
    path = tmp_path / "e.jsonl"
    path.write_text("[" * 1000 + "]" * 1000 + "\n" + json.dumps({"event_id": "a", "entity": "u", "event_time": 1,
                                                                   "amount": 1}) + "\n")
    result = run_pipeline(config(SUM), FileSource(path), SQLiteStore(tmp_path / "f.db"), dead_letter=tmp_path / "dl")
    assert (result.counts["applied"], result.counts["malformed"]) == (1, 1)
    assert "nested too deeply" in json.loads((tmp_path / "dl").read_text())["reason"]


def test_nan_and_infinity_are_malformed_lines_and_a_bom_is_skipped(tmp_path: Path) -> None:
    """Python's json reads NaN and Infinity, which JSON has not: a `last` value of NaN was stored as text no
    reader takes back (`ingest read` failed with exit 5). Such a line is malformed; a UTF-8 BOM is skipped,
    as json.loads does for bytes."""
    path = tmp_path / "e.jsonl"
    path.write_bytes(b'\xef\xbb\xbf{"event_id": "a", "entity": "u", "event_time": 1, "v": 1}\n'
                     b'{"event_id": "b", "entity": "u", "event_time": 2, "v": NaN}\n'
                     b'{"event_id": "c", "entity": "u", "event_time": 3, "v": [-Infinity]}\n')
    store = SQLiteStore(tmp_path / "f.db")
    cfg = config([{"name": "v_last", "agg": "last", "field": "v"}])
    result = run_pipeline(cfg, FileSource(path), store, dead_letter=tmp_path / "dl")
    assert (result.counts["applied"], result.counts["malformed"]) == (1, 2)
    reasons = [json.loads(line)["reason"] for line in (tmp_path / "dl").read_text().splitlines()]
    assert reasons == ["malformed: not valid JSON (NaN is not JSON; write null, or a number)",
                       "malformed: not valid JSON (-Infinity is not JSON; write null, or a number)"]
    assert read_entity(store, "u").rows[0].value == 1


@pytest.mark.parametrize("batch_size", [1, 3])
def test_lines_invalid_alone_are_malformed_whatever_the_batch(tmp_path: Path, batch_size: int) -> None:
    """Three lines, none valid JSON alone, joined into three valid objects when a batch was decoded as one
    array ('{"v": [1' + '2]}', and two objects on one line): applied 3 in one batch, malformed 3 in batches of
    one. Each line is decoded on its own now."""
    path = tmp_path / "e.jsonl"
    path.write_text('{"event_id": "a", "entity": "u", "event_time": 10, "v": [1\n'
                    '2]}\n'
                    '{"event_id": "b", "entity": "u", "event_time": 20, "v": 3}, '
                    '{"event_id": "c", "entity": "u", "event_time": 30, "v": 4}\n', encoding="utf-8")
    cfg = config(batch_size=batch_size)
    result = run_pipeline(cfg, FileSource(path), SQLiteStore(tmp_path / "f.db"), dead_letter=tmp_path / "dl")
    assert (result.counts["applied"], result.counts["malformed"]) == (0, 3)
    reasons = [json.loads(line)["reason"] for line in (tmp_path / "dl").read_text().splitlines()]
    assert all(r.startswith("malformed: not valid JSON") for r in reasons)


def test_huge_integers_and_lone_surrogates_are_malformed_lines(tmp_path: Path) -> None:
    """A time of 400 digits overflowed float() (exit 5), and a lone UTF-16 surrogate (valid JSON, not text)
    failed the store's UTF-8 encoding (exit 5); both are malformed lines now, and the fast path of a batch
    with no such line is unchanged."""
    path = write_jsonl(tmp_path / "e.jsonl", [
        '{"event_id": "a", "entity": "u", "event_time": ' + "9" * 400 + ', "v": 1}',
        '{"event_id": "b", "entity": "u\\ud800", "event_time": 2, "v": 1}',
        '{"event_id": "c", "entity": "u", "event_time": 3, "v": "x\\uDFFF"}',
        '{"event_id": "d", "entity": "u", "event_time": 4, "v": "\\ud83d\\ude00"}',  # a pair: one character
    ])
    store = SQLiteStore(tmp_path / "f.db")
    cfg = config([{"name": "v_last", "agg": "last", "field": "v"}], max_future=60, ingest_time="t")
    result = run_pipeline(cfg, FileSource(path), store, dead_letter=tmp_path / "dl")
    assert (result.counts["applied"], result.counts["malformed"]) == (1, 3)
    reasons = [json.loads(line)["reason"] for line in (tmp_path / "dl").read_text().splitlines()]
    assert reasons[0].startswith("malformed: `event_time`: expected a time in the years 1 to 9999 (UTC), got 999")
    assert reasons[1:] == ["malformed: a string holds a lone UTF-16 surrogate (such as \\ud800), which is not text"] * 2
    assert read_entity(store, "u").rows[0].value == "\U0001f600"


def test_a_number_too_large_for_a_float_neither_poisons_the_store_nor_the_dead_letters(tmp_path: Path) -> None:
    """1e999 is valid JSON that Python reads as inf: a `last` value of it was stored as the text 'inf',
    which no reader takes (every later read and run of the entity exited 4), and a malformed event holding
    it was dead-lettered as 'Infinity', which a strict JSON reader refuses."""
    path = write_jsonl(tmp_path / "e.jsonl", [
        '{"event_id": "a", "entity": "u", "event_time": 1, "v": 1e999, "amount": 1}',
        '{"event_id": "b", "entity": "w", "event_time": 2, "v": 1, "amount": 1e999}',
    ])
    store = SQLiteStore(tmp_path / "f.db")
    cfg = config([{"name": "v_last", "agg": "last", "field": "v"},
                  {"name": "total", "agg": "sum", "field": "amount", "window": 60}])
    result = run_pipeline(cfg, FileSource(path), store, dead_letter=tmp_path / "dl")
    assert (result.counts["applied"], result.counts["malformed"]) == (1, 1)
    assert [r.value for r in read_entity(store, "u").rows if r.feature == "v_last"] == [float("inf")]

    def strict(name: str) -> None:
        raise ValueError(name)

    (letter,) = [json.loads(line, parse_constant=strict) for line in (tmp_path / "dl").read_text().splitlines()]
    assert letter["record"]["amount"] == "inf"


def test_a_jsonl_file_holding_only_a_bom_is_empty(tmp_path: Path) -> None:
    """A JSONL file with nothing but a byte order mark reads no record (it was one malformed record '\ufeff');
    an event appended after the mark is then line 1, as it would be in a file that had it all along."""
    path = tmp_path / "e.jsonl"
    path.write_bytes(b"\xef\xbb\xbf")
    store = SQLiteStore(tmp_path / "f.db")
    assert run_pipeline(config(), FileSource(path), store, dead_letter=tmp_path / "dl").counts["read"] == 0
    with path.open("ab") as handle:
        handle.write(b'{"event_id": "a", "entity": "u", "event_time": 5}\n')
    result = run_pipeline(config(), FileSource(path), store, dead_letter=tmp_path / "dl")
    assert (result.counts["applied"], result.counts["malformed"]) == (1, 0)


def test_a_bom_before_a_csv_header_is_skipped(tmp_path: Path) -> None:
    """A CSV source saved with a byte order mark reads its header, not a column named '\ufeffevent_id'."""
    path = tmp_path / "e.csv"
    path.write_bytes(b"\xef\xbb\xbfevent_id,entity,event_time,v\r\na1,u,100,1\r\n")
    store = SQLiteStore(tmp_path / "f.db")
    result = run_pipeline(config(), FileSource(path), store, dead_letter=tmp_path / "dl")
    assert (result.counts["applied"], result.counts["malformed"]) == (1, 0)


def test_dead_letters_never_go_into_the_source_or_the_store(tmp_path: Path) -> None:
    """A dead-letter path naming the source file or the SQLite store is refused before anything is written:
    the source's malformed line was appended to the source itself, and a restart could cut it back."""
    source = tmp_path / "e.jsonl"
    source.write_text(json.dumps({"event_id": "a", "entity": "u", "event_time": 1, "amount": 1}) + "\nnot json\n")
    before = source.read_bytes()
    store = SQLiteStore(tmp_path / "f.db")
    for path, what in ((source, "the source"), (tmp_path / "f.db", "the SQLite store")):
        with pytest.raises(OutputError, match=f"the dead-letter file is {what}; dead letters are appended"):
            run_pipeline(config(SUM), FileSource(source), store, dead_letter=path)
    assert source.read_bytes() == before and store.states() == {}


def test_unwritable_store_path(tmp_path: Path) -> None:
    """A store in a missing folder, or on a directory, is an OutputError with the URL."""
    with pytest.raises(OutputError, match=r"folder .* does not exist"):
        open_store(f"sqlite:///{tmp_path}/nope/f.db")
    with pytest.raises(OutputError, match="is a directory"):
        open_store(f"sqlite:///{tmp_path}")
    with pytest.raises(OutputError, match="unknown store"):
        open_store("mongodb://x")


def test_missing_source_file(tmp_path: Path) -> None:
    """A missing source is a DataError."""
    with pytest.raises(DataError, match="no such file"):
        FileSource(tmp_path / "none.jsonl")


def test_sqlite_compare_and_set(tmp_path: Path) -> None:
    """A write with a version not above the stored one is ignored; force (repair) overrides."""
    store = SQLiteStore(tmp_path / "f.db")
    ckpt = store.checkpoint("0/1")
    assert ckpt is None
    from mlplat.ingest import Checkpoint

    store.commit(Commit({"u\x1fn\x1f0": (5, [3])}, {}, Checkpoint()))
    store.commit(Commit({"u\x1fn\x1f0": (4, [99])}, {}, Checkpoint()))
    store.commit(Commit({"u\x1fn\x1f0": (5, [99])}, {}, Checkpoint()))
    assert store.states() == {"u\x1fn\x1f0": (5, [3])}
    store.commit(Commit({"u\x1fn\x1f0": (1, [7])}, {}, Checkpoint(), force=True))
    assert store.states() == {"u\x1fn\x1f0": (1, [7])}


def test_sqlite_commit_is_atomic(tmp_path: Path) -> None:
    """A commit that fails part-way leaves neither its state nor its checkpoint."""
    from mlplat.ingest import Checkpoint

    store = SQLiteStore(tmp_path / "f.db")
    bad = Commit({"u\x1fn\x1f0": (1, [1])}, {"a": 1.0}, Checkpoint(seq=9), forget_before=object())  # type: ignore[arg-type]
    with pytest.raises(OutputError, match="cannot write"):
        store.commit(bad)
    assert store.states() == {} and store.checkpoint("0/1") is None and store.markers(-1e18) == {}


def test_read_entity_final_and_open_windows(tmp_path: Path) -> None:
    """`read` serves each window with final/open from the watermark, and `last` with its time."""
    cfg = config(SUM, max_out_of_orderness=30, allowed_lateness=20)
    store = SQLiteStore(tmp_path / "f.db")
    path = write_jsonl(tmp_path / "e.jsonl", [{"event_id": i, "entity": "k", "event_time": t, "amount": t}
                                              for i, t in enumerate([10, 70, 50, 95])])
    run_pipeline(cfg, FileSource(path), store, dead_letter=tmp_path / "dl")
    result = read_entity(store, "k")
    windows = {r.window_start: (r.value, r.final) for r in result.rows if r.feature == "n_1m"}
    assert windows == {0.0: (2, True), 60.0: (2, False)}
    assert [r.value for r in result.rows if r.feature == "last"] == [95]
    assert "final" in result.__rich__()
    with pytest.raises(DataError, match="no feature 'nope'"):
        read_entity(store, "k", "nope")
    with pytest.raises(DataError, match="holds no ingest pipeline"):
        read_entity(SQLiteStore(tmp_path / "empty.db"), "k")


def test_repair_fixes_every_differing_key_and_is_idempotent(tmp_path: Path) -> None:
    """Corrupted, missing and extra keys are reported and fixed; a second repair finds nothing."""
    cfg = config(SUM, max_out_of_orderness=30)
    source = _events(tmp_path)
    store = SQLiteStore(tmp_path / "f.db")
    run_pipeline(cfg, FileSource(source), store, dead_letter=tmp_path / "dl")
    good = store.states()
    from mlplat.ingest import Checkpoint

    store.commit(Commit({"u\x1fn_1m\x1f0": (0, [42]), "ghost\x1fn_1m\x1f0": (1, [1])}, {}, Checkpoint(),
                        force=True))
    store.db.execute("DELETE FROM state WHERE key = ?", ("v\x1flast\x1f",))
    dry = repair(cfg, FileSource(source), store, dry_run=True, dead_letter=tmp_path / "dl")
    assert len(dry.differing) == 3 and not dry.fixed
    report = repair(cfg, FileSource(source), store, dead_letter=tmp_path / "dl")
    assert report.fixed and {d["entity"] for d in report.differing} == {"u", "ghost", "v"}
    assert store.states() == good
    assert repair(cfg, FileSource(source), store, dead_letter=tmp_path / "dl").differing == []
    assert run_pipeline(cfg, FileSource(source), store, dead_letter=tmp_path / "dl").counts["read"] == 0


def test_a_damaged_state_is_a_clear_error_and_repair_rewrites_it(tmp_path: Path) -> None:
    """A stored state that is not mlplat's JSON (the text 'inf' an old version wrote, an object, a list of the
    wrong shape) stops read and run with the key named; verify's view shows it, and repair rewrites it."""
    cfg = config(SUM, max_out_of_orderness=30)
    source = _events(tmp_path)
    store = SQLiteStore(tmp_path / "f.db")
    run_pipeline(cfg, FileSource(source), store, dead_letter=tmp_path / "dl")
    good = store.states()
    for key, text, problem in [("u\x1fn_1m\x1f0", "[inf]", "expected a JSON array"),
                               ("u\x1fn_1m\x1f0", '{"n": 1}', "expected a JSON array"),
                               ("u\x1flast\x1f", "[200.0]", "not a last state")]:
        store.db.execute("UPDATE state SET value = ? WHERE key = ?", (text, key))
        with pytest.raises(DataError, match=f"the state of {key.replace(chr(31), ' ')!r} is not what mlplat "
                                            f"ingest writes \\({problem}.*`mlplat ingest repair`"):
            read_entity(store, "u")
        not_json = problem != "not a last state"
        assert (store.states()[key] == (good[key][0], text)) == not_json  # verify and repair see the raw text
        report = repair(cfg, FileSource(source), store, since=1e9 if not_json else None,  # text: whatever since
                        dead_letter=tmp_path / "dl")
        assert [d["key"] for d in report.differing] == [key] and report.fixed
        assert store.states() == good
    store.db.execute("UPDATE state SET value = 'inf' WHERE key = ?", ("u\x1fn_1m\x1f180",))
    with source.open("a", encoding="utf-8") as out:  # an event that updates the damaged window
        out.write(json.dumps({"event_id": "z", "entity": "u", "event_time": 195}) + "\n")
    with pytest.raises(DataError, match="the state of 'u n_1m 180' is not what"):
        run_pipeline(cfg, FileSource(source), store, dead_letter=tmp_path / "dl")
    store.db.execute("""UPDATE state SET value = '["x"]' WHERE key = ?""", ("u\x1fn_1m\x1f180",))
    with pytest.raises(DataError, match=r"the state of 'u n_1m 180' is not what mlplat ingest writes \(not a "
                                        r"count state: \['x'\]\)"):
        run_pipeline(cfg, FileSource(source), store, dead_letter=tmp_path / "dl")
    assert repair(cfg, FileSource(source), store, dead_letter=tmp_path / "dl").fixed
    assert run_pipeline(cfg, FileSource(source), store, dead_letter=tmp_path / "dl").counts["read"] == 0


@pytest.mark.parametrize(("table", "name", "text", "place"), [
    ("checkpoint", "0/1", "{", "the checkpoint of partition 0/1"),
    ("checkpoint", "0/1", '{"offset": 3}', "the checkpoint of partition 0/1"),
    ("checkpoint", "#meta", "[]", "the recorded feature definitions"),
    ("checkpoint", "#meta", '{"features": {}}', "the recorded feature definitions"),
])
def test_a_damaged_checkpoint_or_definition_is_a_clear_error_and_repair_rewrites_it(
        tmp_path: Path, table: str, name: str, text: str, place: str) -> None:
    """A checkpoint or recorded definition not in mlplat's form stops a run naming it; repair rewrites it."""
    cfg = config(SUM, max_out_of_orderness=30)
    source = _events(tmp_path)
    store = SQLiteStore(tmp_path / "f.db")
    run_pipeline(cfg, FileSource(source), store, dead_letter=tmp_path / "dl")
    good = store.checkpoint("0/1"), store.meta()
    store.db.execute(f"UPDATE {table} SET value = ? WHERE partition = ?", (text, name))
    with pytest.raises(DataError, match=f"{place} is not what mlplat ingest writes.*`mlplat ingest repair`"):
        read_entity(store, "u")
    store.db.execute("DELETE FROM state WHERE key = ?", ("v\x1flast\x1f",))  # so that repair has a key to fix
    assert repair(cfg, FileSource(source), store, dead_letter=tmp_path / "dl").fixed
    assert (store.checkpoint("0/1"), store.meta()) == good


@pytest.mark.parametrize(("field", "value", "expected"), [
    ("cursor", 5, "cursor must be '' or LINE:BYTE (a file's cursor), got 5"),
    ("cursor", "2:abc", "cursor must be '' or LINE:BYTE (a file's cursor), got '2:abc'"),
    # Found by the review of the check itself: another source's form, and an int no float can hold, were exit 5.
    ("cursor", "429-0", "cursor must be '' or LINE:BYTE (a file's cursor), got '429-0'"),
    ("max_time", 10**400, "max_time must be null or a finite number, got 1" + "0" * 36 + "..."),
    ("max_time", "80", "max_time must be null or a finite number, got '80'"),
    ("dead_letter_size", "0", "dead_letter_size must be a whole number >= 0, got '0'"),
    ("seq", -1, "seq must be a whole number >= 0, got -1"),
    ("seq", True, "seq must be a whole number >= 0, got True"),
])
def test_a_checkpoint_field_of_the_wrong_type_is_a_clear_error_and_repair_rewrites_it(
        tmp_path: Path, field: str, value: Any, expected: str) -> None:
    """A checkpoint with the right keys but a wrong value was exit 5 deep in the source or the engine (an int
    cursor has no .partition; '80' < 100 is a TypeError), in repair too. It is a damaged checkpoint now."""
    cfg = config(SUM, max_out_of_orderness=30)
    source = _events(tmp_path)
    store = SQLiteStore(tmp_path / "f.db")
    run_pipeline(cfg, FileSource(source), store, dead_letter=tmp_path / "dl")
    good = store.checkpoint("0/1")
    assert good is not None
    store.db.execute("UPDATE checkpoint SET value = ? WHERE partition = '0/1'",
                     (json.dumps({**good.to_dict(), field: value}),))
    place = r"the checkpoint of partition 0/1 is not what mlplat ingest writes"
    with pytest.raises(DataError, match=f"{place} \\({re.escape(expected)}\\)"):
        run_pipeline(cfg, FileSource(source), store, dead_letter=tmp_path / "dl")
    with pytest.raises(DataError, match=place):
        read_entity(store, "u")
    store.db.execute("DELETE FROM state WHERE key = ?", ("v\x1flast\x1f",))  # so that repair has a key to fix
    assert repair(cfg, FileSource(source), store, dead_letter=tmp_path / "dl").fixed
    assert store.checkpoint("0/1") == good


def test_damaged_dedup_markers_stop_a_run_with_a_clear_error(tmp_path: Path) -> None:
    """Dedup markers that are not mlplat's form stop a run with DataError pointing to a new store."""
    cfg = config(SUM, max_out_of_orderness=30)
    source = _events(tmp_path)
    store = SQLiteStore(tmp_path / "f.db")
    run_pipeline(cfg, FileSource(source), store, dead_letter=tmp_path / "dl")
    store.db.execute("UPDATE dedup SET markers = ?", (b"\x05\x00",))
    with pytest.raises(DataError, match=r"a batch of dedup markers is not what mlplat ingest writes.*new store"):
        run_pipeline(cfg, FileSource(source), store, dead_letter=tmp_path / "dl")


def test_repair_of_one_partition_leaves_the_others_alone(tmp_path: Path) -> None:
    """Repair with a partition compares that partition's keys only: the others' are not in its recomputation,
    and were deleted as 'expected None'. read finds each entity's partition and its watermark."""
    cfg = config(SUM, max_out_of_orderness=30)
    source = _events(tmp_path)
    store = SQLiteStore(tmp_path / "f.db")
    for i in range(2):
        run_pipeline(cfg, FileSource(source), store, partition=(i, 2), dead_letter=tmp_path / "dl")
    good = store.states()
    assert {k.split("\x1f")[0] for k in good} == {"u", "v"}  # in different partitions of 2
    for i in range(2):
        report = repair(cfg, FileSource(source), store, partition=(i, 2), dead_letter=tmp_path / "dl")
        assert report.differing == [] and not report.fixed
    assert store.states() == good
    # Each entity's partition has its own checkpoint (no "0/1" here); both read the whole file, up to 200.
    assert read_entity(store, "u").watermark == read_entity(store, "v").watermark == 200 - 30


def test_dead_letters_of_another_store_in_the_same_file_are_kept(tmp_path: Path) -> None:
    """Two stores may share the config's dead-letter file: a store's restart takes out only its own lines
    written after its last commit (a crash), never another store's, and a torn last line goes too."""
    dl = tmp_path / "dl.jsonl"
    a = write_jsonl(tmp_path / "a.jsonl", [{"event_id": "a1", "entity": "u", "event_time": 100}, "junk A"])
    b = write_jsonl(tmp_path / "b.jsonl", [{"event_id": "b1", "entity": "u", "event_time": 100}, "junk B"])
    store_a, store_b = SQLiteStore(tmp_path / "a.db"), SQLiteStore(tmp_path / "b.db")
    run_pipeline(config(), FileSource(a), store_a, dead_letter=dl)
    run_pipeline(config(), FileSource(b), store_b, dead_letter=dl)
    both = dl.read_text()
    assert run_pipeline(config(), FileSource(a), store_a, dead_letter=dl).counts["read"] == 0
    assert dl.read_text() == both
    # A crash of store a after writing a dead letter and before its commit, then a torn line.
    own = json.dumps({"source": str(a), "store": f"sqlite:///{(tmp_path / 'a.db').resolve()}", "line": 9})
    dl.write_text(both + own + "\n" + '{"source": "torn')
    run_pipeline(config(), FileSource(a), store_a, dead_letter=dl)
    assert dl.read_text() == both
    letters = [json.loads(line) for line in both.splitlines()]
    assert [(x["store"].endswith(n), x["line"]) for x, n in zip(letters, ("a.db", "b.db"), strict=True)] == [
        (True, 2), (True, 2)]


def test_a_changed_feature_definition_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    """A feature of a recorded name with another window would have its stored windows read with the new
    one; the run is refused, and a refused run leaves the recorded definitions as they were."""
    source = _events(tmp_path)
    store = SQLiteStore(tmp_path / "f.db")
    run_pipeline(config(SUM, max_out_of_orderness=30), FileSource(source), store, dead_letter=tmp_path / "dl")
    meta = store.meta()
    wider = [{"name": "n_1m", "agg": "count", "window": 120}, SUM[1]]
    with pytest.raises(DataError, match=r"feature 'n_1m' is stored with another definition \(window 60 -> 120\)"):
        run_pipeline(config(wider, max_out_of_orderness=30), FileSource(source), store, dead_letter=tmp_path / "dl")
    assert store.meta() == meta
    with pytest.raises(OutputError, match="cannot write the dead-letter file"):  # refused later: still unchanged
        run_pipeline(config([*SUM, {"name": "total", "agg": "sum", "field": "amount", "window": 60}],
                            max_out_of_orderness=30), FileSource(source), store, dead_letter=source / "dl")
    assert store.meta() == meta


@pytest.mark.parametrize(("window", "times", "expected"), [
    ("100ms", [1767225600], {1767225600.0: 1}),  # a whole second is the start of its 100 ms window
    ("100ms", [0.3, "1970-01-01T00:00:00.300Z", 0.25], {0.2: 1, 0.3: 2}),
    ("300ms", [0.9, 0.6, 0.3], {0.3: 1, 0.6: 1, 0.9: 1}),
    # At epoch times floats are 2.4e-7 apart: 17672256003 x 0.1 rounded as floats gave 1767225600.2000003,
    # and the event at .3 went to the window before it. The start is k tenths, rounded once.
    ("100ms", [1767225600.3, 1767225600.7], {1767225600.3: 1, 1767225600.7: 1}),
])
def test_windows_under_a_second_hold_their_events(tmp_path: Path, window: str, times: list[Any],
                                                  expected: dict[float, int]) -> None:
    """Window starts are k * step with k * step <= t < (k + 1) * step as floats: time // 0.1 alone put
    1767225600 into [1767225599.9, 1767225600)."""
    events = [{"event_id": f"e{i}", "entity": "u", "event_time": t} for i, t in enumerate(times)]
    cfg = config([{"name": "n", "agg": "count", "window": window}], max_out_of_orderness=10)
    store = SQLiteStore(tmp_path / "f.db")
    run_pipeline(cfg, FileSource(write_jsonl(tmp_path / "e.jsonl", events)), store, dead_letter=tmp_path / "dl")
    rows = read_entity(store, "u").rows
    assert {r.window_start: r.value for r in rows} == pytest.approx(expected)
    assert all(r.window_start <= r.window_start + 1e-9 for r in rows)


def test_hopping_windows_of_fractional_hops_share_keys(tmp_path: Path) -> None:
    """Every event names a window by the same start (k * step), so a window's count is not split in two."""
    times = [0.05 + 0.1 * k for k in range(30)] + [1767225600.3]  # every hop boundary at epoch time too
    events = [{"event_id": f"e{i}", "entity": "u", "event_time": t} for i, t in enumerate(times)]
    cfg = config([{"name": "n", "agg": "count", "window": 0.3, "hop": 0.1}], max_out_of_orderness=10)
    store = SQLiteStore(tmp_path / "f.db")
    run_pipeline(cfg, FileSource(write_jsonl(tmp_path / "e.jsonl", events)), store, dead_letter=tmp_path / "dl")
    counts = sorted(r.value for r in read_entity(store, "u").rows)
    assert sum(counts) == 3 * len(times)  # each event in all three of its windows (it lost one at .3)
    assert counts.count(3) == len(counts) - 7


def test_repair_since_limits_keys(tmp_path: Path) -> None:
    """`--since` compares only windows ending after it."""
    cfg = config(SUM, max_out_of_orderness=30)
    source = _events(tmp_path)
    store = SQLiteStore(tmp_path / "f.db")
    run_pipeline(cfg, FileSource(source), store, dead_letter=tmp_path / "dl")
    store.db.execute("DELETE FROM state")
    keys = {d["key"] for d in repair(cfg, FileSource(source), store, since=100, dry_run=True,
                                           dead_letter=tmp_path / "dl").differing}
    assert keys == {"u\x1fn_1m\x1f180", "v\x1fn_1m\x1f180", "u\x1flast\x1f", "v\x1flast\x1f"}


def test_lateness_targets(tmp_path: Path) -> None:
    """The bound for a target is the quantile of how far events arrive behind the max event time."""
    events = [{"event_time": t, "ingest_time": t + 1} for t in range(100)]
    events[50]["event_time"] = 20  # one event 29 s behind
    report = analyze_lateness(FileSource(write_jsonl(tmp_path / "e.jsonl", events)), targets=(0.001, 0.02))
    by_target = {t["target"]: t for t in report.targets}
    assert by_target[0.001]["bound"] == 29 and by_target[0.001]["dead_lettered"] == 0
    assert by_target[0.02]["bound"] == 0 and by_target[0.02]["dead_lettered"] == 0.01
    assert report.lateness_quantiles is not None and report.lateness_quantiles["p50"] == 1
    assert report.ahead == {"events": 0, "max": 0.0, "left_out": 0}
    png = report.plot(tmp_path / "l.png")
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_lateness_keeps_an_event_whose_ingest_time_is_unreadable(tmp_path: Path) -> None:
    """An unreadable ingest time leaves the event in the out-of-orderness figures and drops ingest lateness."""
    events = [{"event_time": 0, "ingest_time": 1}, {"event_time": 10, "ingest_time": "soon"},
              {"event_time": 5, "ingest_time": 12}]
    report = analyze_lateness(FileSource(write_jsonl(tmp_path / "e.jsonl", events)), targets=(0.25,))
    assert report.events == 3 and report.behind == [0.0, 0.0, 5.0]
    assert report.lateness_quantiles is None


def test_lateness_reports_events_stamped_after_their_ingest_time(tmp_path: Path) -> None:
    """`lateness` counts the events ahead of their ingest time and the largest lead (what max_future bounds)."""
    events = [{"event_time": t, "ingest_time": t + 1} for t in range(10)]
    events[3]["event_time"], events[7]["event_time"] = 3 + 30, 7 + 3600
    source = FileSource(write_jsonl(tmp_path / "e.jsonl", events))
    report = analyze_lateness(source, targets=(0.25,))
    assert report.ahead == {"events": 2, "max": 3599.0, "left_out": 0}
    assert "stamped after their ingest time: 2 events, up to 59m59s ahead; --max-future" in report.summary()
    assert max(report.behind) == 3599  # the event an hour ahead puts every later one behind
    guarded = analyze_lateness(source, targets=(0.25,), max_future=60)
    assert guarded.ahead == {"events": 2, "max": 3599.0, "left_out": 1} and guarded.events == 9
    assert max(guarded.behind) == 29 and "1 past max_future left out below" in guarded.summary()
    with pytest.raises(DataError, match="every event is stamped more than max_future"):
        analyze_lateness(FileSource(write_jsonl(tmp_path / "f.jsonl", events[7:8])), max_future=60)


def test_example_file_has_every_fate(tmp_path: Path) -> None:
    """The bundled example exercises every outcome (the demo shows them); the dead-letter folder is made."""
    from mlplat.ingest import load_ingest_config

    cfg = load_ingest_config(EXAMPLES / "ingest.yaml")
    result = run_pipeline(cfg, FileSource(EXAMPLES / "events.jsonl"), SQLiteStore(tmp_path / "f.db"),
                          dead_letter=tmp_path / "new" / "dl")
    # Pinned, not only "reconciles" (read is the sum of the others by construction): a record skipped
    # silently would change `read`.
    assert result.counts == {"read": 429, "applied": 398, "duplicates": 25, "late": 2, "malformed": 3,
                             "future": 1, "other_partition": 0}


def test_verify_few_crashes(tmp_path: Path) -> None:
    """`verify` kills real subprocesses and finds every run identical to the batch computation."""
    cfg_path = tmp_path / "c.yaml"
    cfg_path.write_text("max_out_of_orderness: 30\nallowed_lateness: 10\nfeatures:\n"
                        "  - {name: n, agg: count, window: 60}\n  - {name: s, agg: sum, field: amount, window: 60}\n")
    from mlplat.ingest import load_ingest_config

    source = write_jsonl(tmp_path / "e.jsonl", [{"event_id": i, "entity": f"u{i % 5}", "event_time": i * 3,
                                                  "amount": i} for i in range(300)])
    report = verify(cfg_path, load_ingest_config(cfg_path), FileSource(source), f"sqlite:///{tmp_path}/v.db",
                    crashes=2, seed=1)
    assert report.passed and report.identical == 2 and report.events == 300 and report.killed >= 1


def test_verify_reports_runs_that_differ(tmp_path: Path) -> None:
    """`verify` fails when the pipeline computes something else: here the subprocess runs a config whose
    window is 120 s while the batch computation uses 60 s, so every run differs and each is reported."""
    from mlplat.ingest import load_ingest_config

    run_cfg, ref_cfg = tmp_path / "run.yaml", tmp_path / "ref.yaml"
    run_cfg.write_text("max_out_of_orderness: 30\nfeatures:\n  - {name: n, agg: count, window: 120}\n")
    ref_cfg.write_text("max_out_of_orderness: 30\nfeatures:\n  - {name: n, agg: count, window: 60}\n")
    source = write_jsonl(tmp_path / "e.jsonl", [{"event_id": i, "entity": f"u{i % 5}", "event_time": i * 3}
                                                for i in range(200)])
    report = verify(run_cfg, load_ingest_config(ref_cfg), FileSource(source), f"sqlite:///{tmp_path}/v.db",
                    crashes=2, seed=3)
    assert not report.passed and report.identical == 0
    assert [f["run"] for f in report.failures] == [1, 2] and all(f["differing"] > 0 for f in report.failures)


def test_verify_leaves_future_events_out_of_the_batch_computation(tmp_path: Path) -> None:
    """`verify` compares with a batch computation of the events a run applies: future ones are not."""
    cfg_path = tmp_path / "c.yaml"
    cfg_path.write_text("max_out_of_orderness: 30\nmax_future: 60\nfeatures:\n  - {name: n, agg: count, window: 60}\n")
    from mlplat.ingest import load_ingest_config

    events = [{"event_id": i, "entity": f"u{i % 5}", "event_time": i * 3, "ingest_time": i * 3 + 1}
              for i in range(200)]
    events[100]["event_time"] = 10**6  # a year of clock skew would not do more harm
    source = write_jsonl(tmp_path / "e.jsonl", events)
    report = verify(cfg_path, load_ingest_config(cfg_path), FileSource(source), f"sqlite:///{tmp_path}/v.db",
                    crashes=1, seed=2)
    assert report.passed and report.events == 199


def test_follow_waits_for_complete_lines_and_stops(tmp_path: Path) -> None:
    """With --follow a partial last line is left for later, and the run ends when asked to stop."""
    path = tmp_path / "e.jsonl"
    path.write_text('{"event_id": "a", "entity": "u", "event_time": 1}\n{"event_id": "b", "ent')
    store = SQLiteStore(tmp_path / "f.db")
    polls = iter([False, True])
    source = FileSource(path, poll=0.01)
    result = run_pipeline(config(SUM), source, store, follow=True, stop=lambda: next(polls, True),
                          dead_letter=tmp_path / "dl")
    assert result.counts["read"] == 1 and result.counts["malformed"] == 0
    with path.open("a") as handle:
        handle.write('ity": "u", "event_time": 2}\n')
    assert run_pipeline(config(SUM), source, store, dead_letter=tmp_path / "dl").counts["applied"] == 1


def test_a_window_written_as_a_decimal_duration_has_its_boundary_where_written(tmp_path: Path) -> None:
    """window 1.1h is 3960 s exactly: an event at 446269 x 3960 opens its own window (1.1 * 3600.0 was
    3960.0000000000005, and the event was counted in the window before it)."""
    from mlplat.ingest import IngestConfig

    cfg = IngestConfig(max_out_of_orderness=0, features=[{"name": "n", "agg": "count", "window": "1.1h"}])
    source = write_jsonl(tmp_path / "e.jsonl", [{"event_id": "a", "entity": "u", "event_time": 1767225239.9999998},
                                                {"event_id": "b", "entity": "u", "event_time": 1767225240}])
    store = SQLiteStore(tmp_path / "f.db")
    run_pipeline(cfg, FileSource(source), store, dead_letter=tmp_path / "dl")
    rows = read_entity(store, "u").rows
    assert [(r.window_start, r.window_end, r.value) for r in rows] == [
        (1767225240, 1767229200, 1), (1767221280, 1767225240, 1)]


@pytest.mark.parametrize(("times", "final"), [((0.25, 0.3), True), ((1767225619.85, 1767225619.8999999), False)])
def test_read_ends_a_sub_second_window_where_the_engine_does(tmp_path: Path, times: tuple[float, float],
                                                            final: bool) -> None:
    """A 0.1 s window's end is the next start rounded once (0.3, not 0.2 + 0.1 = 0.30000000000000004), so
    `read` calls it final exactly when the engine has closed it."""
    cfg = config([{"name": "n", "agg": "count", "window": 0.1}])
    source = write_jsonl(tmp_path / "e.jsonl", [{"event_id": str(i), "entity": "u", "event_time": t}
                                                for i, t in enumerate(times)])
    store = SQLiteStore(tmp_path / "f.db")
    run_pipeline(cfg, FileSource(source), store, dead_letter=tmp_path / "dl")
    first = min(read_entity(store, "u").rows, key=lambda r: r.window_start or 0)
    assert first.final is final
    assert first.window_end == {True: 0.3, False: 1767225619.9}[final]


def test_a_marker_at_the_edge_of_its_ttl_survives_a_restart(tmp_path: Path) -> None:
    """The markers a restart loads are those the rule keeps (0.1 + 0.3 >= 0.4), not those above
    0.4 - 0.3 in floats: the repeat after the restart is a duplicate, as in one run."""
    cfg = config([{"name": "n", "agg": "count", "window": 0.1}], dedup_ttl=0.3)
    events = [{"event_id": "e1", "entity": "u", "event_time": 0.1},
              {"event_id": "e2", "entity": "u", "event_time": 0.4}]
    source = write_jsonl(tmp_path / "e.jsonl", events)
    store = SQLiteStore(tmp_path / "f.db")
    run_pipeline(cfg, FileSource(source), store, dead_letter=tmp_path / "dl")
    with source.open("a") as handle:
        handle.write(json.dumps(events[0]) + "\n")
    result = run_pipeline(cfg, FileSource(source), store, dead_letter=tmp_path / "dl")
    assert (result.counts["duplicates"], result.counts["late"]) == (1, 0)


class _CrashingSQLite(CrashAt, SQLiteStore):
    """A SQLite store that crashes at a chosen commit."""


def _letters(path: Path) -> list[int]:
    return [json.loads(line)["line"] for line in path.read_text().splitlines()]


def test_repair_after_a_crash_writes_the_dead_letters_no_run_committed(tmp_path: Path) -> None:
    """repair moves the checkpoint past lines no run committed; their late events now reach the dead-letter
    file once (line 4's letter was cut by the next run and never written again)."""
    source = write_jsonl(tmp_path / "e.jsonl", [{"event_id": f"e{i}", "entity": "u", "event_time": t}
                                                for i, t in enumerate([100, 10, 200, 20])])
    cfg = config(batch_size=2)
    dl = tmp_path / "dl.jsonl"
    crashing = _CrashingSQLite(tmp_path / "f.db").armed(3, False)  # the initial commit, batch 1, then batch 2
    with pytest.raises(KeyboardInterrupt, match="crash before commit"):
        run_pipeline(cfg, FileSource(source), crashing, dead_letter=dl)
    assert _letters(dl) == [2, 4]  # line 4's letter is written but not committed
    assert repair(cfg, FileSource(source), SQLiteStore(tmp_path / "f.db"), dead_letter=dl).fixed
    assert _letters(dl) == [2, 4]
    after = run_pipeline(cfg, FileSource(source), SQLiteStore(tmp_path / "f.db"), dead_letter=dl)
    assert after.counts["read"] == 0 and _letters(dl) == [2, 4]


def test_repair_of_a_store_never_run_writes_every_dead_letter_once(tmp_path: Path) -> None:
    """A repair into an empty store reproduces the run's decisions, dead letters included; a second repair
    finds nothing and writes nothing."""
    source = write_jsonl(tmp_path / "e.jsonl", [{"event_id": f"e{i}", "entity": "u", "event_time": t}
                                                for i, t in enumerate([100, 10, 200, 20])])
    dl = tmp_path / "dl.jsonl"
    assert repair(config(), FileSource(source), SQLiteStore(tmp_path / "f.db"), dead_letter=dl).fixed
    assert _letters(dl) == [2, 4]
    assert not repair(config(), FileSource(source), SQLiteStore(tmp_path / "f.db"), dead_letter=dl).differing
    assert _letters(dl) == [2, 4]


@pytest.mark.parametrize("which", ["source", "store"])
def test_repair_refuses_a_dead_letter_file_that_is_the_source_or_the_store(tmp_path: Path, which: str) -> None:
    """As run does: repair cuts the dead-letter file back to its committed size, and naming the source or the
    SQLite store there cut the source to its dead letters (429 lines to 16) or damaged the database."""
    source = _events(tmp_path)
    store = SQLiteStore(tmp_path / "f.db")
    run_pipeline(config(SUM, max_out_of_orderness=30), FileSource(source), store, dead_letter=tmp_path / "dl")
    store.db.execute("DELETE FROM state")
    before = source.read_bytes(), (tmp_path / "f.db").read_bytes()
    target = source if which == "source" else tmp_path / "f.db"
    what = "source" if which == "source" else "SQLite store"
    with pytest.raises(OutputError, match=f"the dead-letter file is the {what}"):
        repair(config(SUM, max_out_of_orderness=30), FileSource(source), store, dead_letter=target)
    assert (source.read_bytes(), (tmp_path / "f.db").read_bytes()) == before


def test_repair_since_still_applies_events_past_the_checkpoint(tmp_path: Path) -> None:
    """repair moves the checkpoint to the end of the source, so an allowed-late event appended since the last
    run updates its (old) window even outside `since`: it was neither applied nor dead-lettered before."""
    cfg = config(allowed_lateness=100)
    rows = [{"event_id": "a", "entity": "u", "event_time": 10}, {"event_id": "b", "entity": "u", "event_time": 100}]
    source = write_jsonl(tmp_path / "e.jsonl", rows)
    store = SQLiteStore(tmp_path / "f.db")
    run_pipeline(cfg, FileSource(source), store, dead_letter=tmp_path / "dl")
    write_jsonl(source, [*rows, {"event_id": "c", "entity": "u", "event_time": 20},
                         {"event_id": "d", "entity": "u", "event_time": 130}])
    report = repair(cfg, FileSource(source), store, since=120, dead_letter=tmp_path / "dl")
    assert {d["window"] for d in report.differing} == {0.0, 120.0}
    assert run_pipeline(cfg, FileSource(source), store, dead_letter=tmp_path / "dl").counts["read"] == 0
    assert not repair(cfg, FileSource(source), store, dead_letter=tmp_path / "dl").differing


def test_a_feature_left_out_for_a_run_keeps_its_recorded_definition(tmp_path: Path) -> None:
    """A run without feature n used to overwrite the recorded definitions with its own, so a later run could
    bring n back as a 120 s count over its stored 60 s windows: [0, 2m) = 2 beside a stray [60s, 1m) = 1.
    The left-out definition is kept (and read still serves n), so the change is refused."""
    source = write_jsonl(tmp_path / "e.jsonl", [{"event_id": "a", "entity": "u", "event_time": 10},
                                                {"event_id": "b", "entity": "u", "event_time": 70}])
    store = SQLiteStore(tmp_path / "f.db")
    n60 = {"name": "n", "agg": "count", "window": 60}
    other = {"name": "m", "agg": "count", "window": 30}
    run_pipeline(config([n60]), FileSource(source), store, dead_letter=tmp_path / "dl")
    run_pipeline(config([other]), FileSource(source), store, dead_letter=tmp_path / "dl")
    assert [row.value for row in read_entity(store, "u", "n").rows] == [1, 1]
    with pytest.raises(DataError, match=r"feature 'n' is stored with another definition \(window 60 -> 120\)"):
        run_pipeline(config([{**n60, "window": 120}]), FileSource(source), store, dead_letter=tmp_path / "dl")
