"""Atomic writes and shipped templates."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mlplat.errors import OutputError, TemplateError
from mlplat.files import atomic_write_bytes, atomic_write_text, check_writable, path_kind, read_template, template_names


def test_write_then_refuse_overwrite(tmp_path: Path) -> None:
    """A new file is written; an existing one is kept unless force is given."""
    path = tmp_path / "r.md"
    atomic_write_text(path, "one")
    with pytest.raises(OutputError, match=r"r\.md: already exists; pass --force"):
        atomic_write_text(path, "two")
    assert path.read_text() == "one"
    atomic_write_text(path, "two", force=True)
    assert path.read_text() == "two"


def test_check_writable_refuses_like_the_write(tmp_path: Path) -> None:
    """check_writable raises what atomic_write_bytes would, and writes nothing."""
    path = tmp_path / "r.md"
    assert check_writable(path) == path and not path.exists()
    path.write_text("one")
    with pytest.raises(OutputError, match=r"r\.md: already exists; pass --force"):
        check_writable(path)
    assert check_writable(path, force=True) == path
    with pytest.raises(OutputError, match="does not exist"):
        check_writable(tmp_path / "missing" / "r.md")
    with pytest.raises(OutputError, match="cannot use this path: File name too long"):
        check_writable(tmp_path / ("a" * 300 + ".md"))  # over the 255 bytes a name may have
    # A folder: said so at once (it said "already exists; pass --force", which could not help).
    for force in (False, True):
        with pytest.raises(OutputError, match=r"is a directory; expected a file name"):
            check_writable(tmp_path, force=force)


def test_no_temp_file_left(tmp_path: Path) -> None:
    """Only the destination remains after a write."""
    atomic_write_bytes(tmp_path / "a.bin", b"\x00\x01")
    assert os.listdir(tmp_path) == ["a.bin"]


def test_mode_is_that_of_a_plain_open(tmp_path: Path) -> None:
    """A new file gets 0666 less the umask (not mkstemp's 0600); a replaced file keeps its mode."""
    old = os.umask(0o022)
    try:
        path = atomic_write_text(tmp_path / "r.md", "x")
        assert path.stat().st_mode & 0o777 == 0o644
        path.chmod(0o600)
        atomic_write_text(path, "y", force=True)
        assert path.stat().st_mode & 0o777 == 0o600
    finally:
        os.umask(old)


def test_missing_folder(tmp_path: Path) -> None:
    """Writing into a folder that does not exist is a clear error."""
    with pytest.raises(OutputError, match="does not exist"):
        atomic_write_text(tmp_path / "no" / "r.md", "x")


def test_failed_write_keeps_old_content(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """If the rename fails the old file is untouched and no temp file is left."""
    path = tmp_path / "r.md"
    path.write_text("old")

    def broken_replace(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OutputError, match="No space left"):
        atomic_write_text(path, "new", force=True)
    assert path.read_text() == "old"
    assert os.listdir(tmp_path) == ["r.md"]


def test_unknown_template() -> None:
    """Asking for a template that is not shipped names the ones that are."""
    with pytest.raises(TemplateError, match=r"no template named 'nope\.yaml'"):
        read_template("nope.yaml")


def test_shipped_templates_are_readable() -> None:
    """Every shipped template reads as UTF-8 text (and the package does ship them)."""
    names = template_names()
    assert {"canary.yaml", "ingest.yaml", "rubric.yaml", "sim.yaml", "pricing.yaml"} <= set(names)
    for name in names:
        assert read_template(name)


def test_path_kind_from_one_stat(tmp_path: Path) -> None:
    """file, dir, other (a FIFO), missing (also under a file); a name the OS refuses raises the given error."""
    (tmp_path / "f").write_text("x")
    os.mkfifo(tmp_path / "p")
    assert [path_kind(tmp_path / n) for n in ("f", ".", "p", "nope")] == ["file", "dir", "other", "missing"]
    assert path_kind(tmp_path / "f" / "below") == "missing"
    with pytest.raises(TemplateError, match=r"^where: cannot use this path: File name too long$"):
        path_kind(tmp_path / ("a" * 300), name="where", error=TemplateError)
