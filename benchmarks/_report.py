"""Shared by the benchmarks: machine facts, medians, and writing one section of docs/benchmarks.md.

Each benchmark owns one section, delimited by HTML comments, and replaces only that section, so the
benchmarks can run in any order and the page keeps every result with the machine it was measured on.
"""

from __future__ import annotations

import os
import platform
import re
import statistics
import sys
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

PAGE = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
HEADER = """# Benchmarks

Each section is written by the script named in it (`make bench` runs them all). The machine is shared and
noisy: quote the ratios, which compare mlplat with its peer in the same run, rather than absolute times.
"""


def versions(*packages: str) -> str:
    """``name version`` for each installed package, comma separated."""
    found = []
    for name in packages:
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            found.append(f"{name} (not installed)")
    return ", ".join(found)


def machine() -> str:
    """One line describing the machine and Python."""
    cpu = platform.processor() or platform.machine()
    return (f"{platform.system()} {platform.machine()} ({cpu}), {os.cpu_count()} CPUs, "
            f"Python {sys.version.split()[0]}")


def median(values: Iterable[float]) -> float:
    return statistics.median(list(values))


def table(columns: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def write_section(name: str, title: str, body: str, *, packages: Sequence[str] = ()) -> None:
    """Replace (or append) the section ``name`` of docs/benchmarks.md with ``body``."""
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    facts = f"_Measured {stamp} on {machine()}"
    if packages:
        facts += f"; {versions(*packages)}"
    # The machine is shared: how loaded it was over the run (1, 5, 15 minutes) belongs with the numbers.
    facts += "; load average {:.2f}, {:.2f}, {:.2f} when written".format(*os.getloadavg())
    facts += "._"
    section = f"<!-- begin:{name} -->\n## {title}\n\n{facts}\n\n{body.strip()}\n<!-- end:{name} -->"
    text = PAGE.read_text(encoding="utf-8") if PAGE.exists() else HEADER
    pattern = re.compile(rf"<!-- begin:{re.escape(name)} -->.*?<!-- end:{re.escape(name)} -->", re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: section, text)
    else:
        text = text.rstrip() + "\n\n" + section + "\n"
    PAGE.parent.mkdir(parents=True, exist_ok=True)
    tmp = PAGE.with_suffix(".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, PAGE)
