"""Files mlplat writes and the templates it ships.

Writes are atomic: the content goes to a temporary file in the destination folder, is flushed to disk,
then renamed over the destination with :func:`os.replace`, so a reader never sees half a report and a
crash never leaves a truncated store. An existing file is only replaced when ``force`` is true.
"""

from __future__ import annotations

import os
import stat
import tempfile
from importlib import resources
from pathlib import Path

from mlplat.errors import MlplatError, OutputError, TemplateError

__all__ = ["atomic_write_bytes", "atomic_write_text", "check_writable", "path_kind", "read_template",
           "template_names"]


def path_kind(path: Path, *, name: str | None = None, error: type[MlplatError] = OutputError) -> str:
    """What is at ``path``: ``"file"``, ``"dir"``, ``"other"`` or ``"missing"``, from one ``stat``.

    ``Path.exists()`` and ``is_file()`` let some refusals of the operating system through as
    :class:`OSError` (a name over 255 bytes); here they raise ``error`` naming ``name`` (default: the path).
    """
    try:
        mode = path.stat().st_mode
    except (FileNotFoundError, NotADirectoryError):
        return "missing"
    except OSError as exc:
        raise error(f"{name or path}: cannot use this path: {exc.strerror}") from None
    return "dir" if stat.S_ISDIR(mode) else "file" if stat.S_ISREG(mode) else "other"


def check_writable(path: str | Path, *, force: bool = False) -> Path:
    """Raise :class:`OutputError` now if :func:`atomic_write_bytes` would refuse ``path``.

    A command that writes several files calls it for each before writing any, so a refusal leaves none
    half-done. Returns ``path`` as a :class:`~pathlib.Path`.
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    kind = path_kind(path)
    if kind == "dir":  # before "already exists": --force could not help
        raise OutputError(f"{path}: is a directory; expected a file name")
    if kind != "missing" and not force:
        raise OutputError(f"{path}: already exists; pass --force to overwrite it")
    if path_kind(folder) != "dir":
        raise OutputError(f"{path}: folder {folder} does not exist")
    return path


def atomic_write_bytes(path: str | Path, data: bytes, *, force: bool = False) -> Path:
    """Write ``data`` to ``path`` atomically; refuse to replace an existing file unless ``force``."""
    path = check_writable(path, force=force)
    folder = path.parent if str(path.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise OutputError(f"{path}: cannot write in {folder}: {exc.strerror}") from exc
    try:
        # mkstemp creates the file 0600; give it the mode a plain open() would (or the replaced file's).
        os.chmod(tmp, path.stat().st_mode & 0o7777 if path.exists() else 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise OutputError(f"{path}: cannot write: {exc.strerror}") from exc
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | Path, text: str, *, force: bool = False) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; see :func:`atomic_write_bytes`."""
    return atomic_write_bytes(path, text.encode("utf-8"), force=force)


def template_names() -> list[str]:
    """Names of the templates shipped under ``mlplat/templates/``."""
    root = resources.files("mlplat") / "templates"
    if not root.is_dir():
        return []
    return sorted(entry.name for entry in root.iterdir() if entry.is_file() and not entry.name.startswith("_"))


def read_template(name: str) -> str:
    """Text of the shipped template ``name`` (package data read with :mod:`importlib.resources`)."""
    entry = resources.files("mlplat") / "templates" / name
    if not entry.is_file():
        known = ", ".join(template_names()) or "none"
        raise TemplateError(f"no template named {name!r}; shipped templates: {known}")
    return entry.read_text(encoding="utf-8")
