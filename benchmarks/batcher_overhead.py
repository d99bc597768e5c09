"""Overhead per request of the batcher with a predict that returns its input, from asyncio producers.

mlplat's DynamicBatcher and ``ray.serve.batch`` (standalone) run in the same process, alternating, on the
same producer: one event loop keeps ``--outstanding`` requests in flight with ``asyncio.gather``. With a
predict that costs nothing, time per request is the batcher's overhead. The best of ``--repeats`` runs is
quoted (the machine is shared; the best run is the least disturbed), with the median beside it.
Run: `python benchmarks/batcher_overhead.py`; writes the "batcher_overhead" section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

from _report import table, write_section
from batcher_common import ray_batch

from mlplat.batcher import DynamicBatcher


def identity(items: list[Any]) -> list[Any]:
    return items


async def _drive(call: Callable[[Any], Awaitable[Any]], requests: int, outstanding: int) -> float:
    start = time.perf_counter()
    for _ in range(requests // outstanding):
        await asyncio.gather(*[call(i) for i in range(outstanding)])
    return (requests // outstanding) * outstanding / (time.perf_counter() - start)


def run_mlplat(requests: int, outstanding: int, batch: int) -> float:
    with DynamicBatcher(identity, max_batch_size=batch, max_latency_ms=1000, policy="eager",
                        max_queue_size=outstanding * 2) as batcher:
        return asyncio.run(_drive(batcher.infer, requests, outstanding))


def run_ray(requests: int, outstanding: int, batch: int) -> float | None:
    async def main() -> float | None:
        call = ray_batch(identity, max_batch_size=batch, wait_s=0.01)
        return None if call is None else await _drive(call, requests, outstanding)

    return asyncio.run(main())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=200_000)
    parser.add_argument("--outstanding", type=int, default=2048)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    ours: list[float] = []
    theirs: list[float] = []
    for _ in range(args.repeats):
        ours.append(run_mlplat(args.requests, args.outstanding, args.batch))
        ray = run_ray(max(args.requests // 10, args.outstanding), args.outstanding, args.batch)
        if ray is not None:
            theirs.append(ray)
    rows = [("mlplat DynamicBatcher (eager)", f"{max(ours):,.0f}", f"{statistics.median(ours):,.0f}",
             f"{1e6 / max(ours):.2f}")]
    if theirs:
        rows.append(("ray.serve.batch (standalone)", f"{max(theirs):,.0f}", f"{statistics.median(theirs):,.0f}",
                     f"{1e6 / max(theirs):.2f}"))
    ratio = f"{max(ours) / max(theirs):.1f}x" if theirs else "n/a (ray not installed)"
    body = (f"Predict returns its input; one asyncio producer keeps {args.outstanding} requests in flight; "
            f"max batch {args.batch}; best and median of {args.repeats} alternating runs "
            f"({args.requests:,} requests per mlplat run, {max(args.requests // 10, args.outstanding):,} per "
            "ray run, as ray is slower). Time per request is the whole cost of a request through the "
            "batcher and the asyncio producer, so it bounds the batcher's overhead from above.\n\n"
            + table(["batcher", "best req/s", "median req/s", "µs per request (best)"], rows)
            + f"\n\nmlplat / ray (best runs): **{ratio}**. Target: >= 300k req/s, <= 5 µs per request.")
    write_section("batcher_overhead", "Batcher overhead, identity predict (`benchmarks/batcher_overhead.py`)",
                  body, packages=["ray"])
    print(body)


if __name__ == "__main__":
    main()
