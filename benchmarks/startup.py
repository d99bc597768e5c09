"""How long `mlplat --help` takes, as a ratio to `python -c pass` (median of repeated runs).

Heavy libraries are imported lazily, so the CLI should start in a small multiple of a bare interpreter.
Run: `python benchmarks/startup.py [--runs 21]`; writes the "startup" section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

from _report import median, table, write_section


def _time(cmd: list[str], runs: int) -> list[float]:
    subprocess.run(cmd, capture_output=True, check=True)  # warm the file cache
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, capture_output=True, check=True)
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=21)
    args = parser.parse_args()
    bare = median(_time([sys.executable, "-c", "pass"], args.runs))
    help_ = median(_time([sys.executable, "-m", "mlplat", "--help"], args.runs))
    doctor_import = median(_time([sys.executable, "-c", "import mlplat.cli"], args.runs))
    rows = [
        ("`python -c pass`", f"{bare * 1000:.0f}", "1.0"),
        ("`python -c 'import mlplat.cli'`", f"{doctor_import * 1000:.0f}", f"{doctor_import / bare:.1f}"),
        ("`mlplat --help`", f"{help_ * 1000:.0f}", f"{help_ / bare:.1f}"),
    ]
    body = (f"Median of {args.runs} runs each, in the same run.\n\n"
            + table(["command", "median ms", "ratio to bare python"], rows))
    write_section("startup", "CLI start-up (`benchmarks/startup.py`)", body, packages=["typer", "rich"])
    print(body)


if __name__ == "__main__":
    main()
