"""Overhead per request of the batcher with a predict that returns its input, from asyncio producers.

mlplat's DynamicBatcher and ``ray.serve.batch`` (standalone) run in the same process, alternating, under
the same two asyncio harnesses, with ``--outstanding`` requests in flight on one event loop:

- ``clients``: that many producer tasks, each awaiting one request at a time (concurrent clients);
- ``gather``: one producer that sends ``--outstanding`` requests, awaits them all with
  ``asyncio.gather``, and repeats; gather's per-future bookkeeping is Python code (about 2 µs per request).

With a predict that costs nothing, time per request is the batcher's overhead plus the harness's. The
best of ``--repeats`` runs is quoted (the machine is shared; the best run is the least disturbed), with
the median beside it.
Run: `python benchmarks/batcher_overhead.py`; writes the "batcher_overhead" section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any

from _report import table, write_section
from batcher_common import Call, preload_ray, ray_batch

from mlplat.batcher import DynamicBatcher
from mlplat.batcher._bench import frozen_heap


def identity(items: list[Any]) -> list[Any]:
    return items


async def _clients(call: Call, requests: int, outstanding: int) -> float:
    """``outstanding`` producer tasks, each sending its next request when the last one is answered."""
    each = requests // outstanding

    async def client() -> None:
        for i in range(each):
            await call(i)

    start = time.perf_counter()
    await asyncio.gather(*[client() for _ in range(outstanding)])
    return each * outstanding / (time.perf_counter() - start)


async def _gather(call: Call, requests: int, outstanding: int) -> float:
    """One producer: send ``outstanding`` requests, await them all, repeat."""
    start = time.perf_counter()
    for _ in range(requests // outstanding):
        await asyncio.gather(*[call(i) for i in range(outstanding)])
    return (requests // outstanding) * outstanding / (time.perf_counter() - start)


HARNESSES = {"clients": _clients, "gather": _gather}


def run_mlplat(harness: str, requests: int, outstanding: int, batch: int) -> float:
    with DynamicBatcher(identity, max_batch_size=batch, max_latency_ms=1000, policy="eager",
                        max_queue_size=outstanding * 2) as batcher:
        return asyncio.run(HARNESSES[harness](batcher.infer, requests, outstanding))


def run_floor(harness: str, requests: int, outstanding: int, batch: int) -> float:
    """The same harness with no batcher: each loop iteration's requests are completed on the loop itself,
    ``batch`` at a time. What asyncio alone costs on this host: no batcher can be faster from one loop."""

    async def main() -> float:
        loop = asyncio.get_running_loop()
        pending: list[tuple[asyncio.Future[Any], Any]] = []

        def answer() -> None:
            while pending:
                chunk = pending[:batch]
                del pending[:batch]
                for future, item in identity(chunk):
                    future.set_result(item)

        def call(item: Any) -> asyncio.Future[Any]:
            future = loop.create_future()
            if not pending:
                loop.call_soon(answer)
            pending.append((future, item))
            return future

        return await HARNESSES[harness](call, requests, outstanding)

    return asyncio.run(main())


def run_ray(harness: str, requests: int, outstanding: int, batch: int) -> float | None:
    async def main() -> float | None:
        call = ray_batch(identity, max_batch_size=batch, wait_s=0.01)
        return None if call is None else await HARNESSES[harness](call, requests, outstanding)

    return asyncio.run(main())


def _row(harness: str, batcher: str, rates: list[float]) -> tuple[str, ...]:
    """Best and median requests/s of the runs, and the time per request each stands for."""
    best, median = max(rates), statistics.median(rates)
    return (harness, batcher, f"{best:,.0f}", f"{median:,.0f}", f"{1e6 / best:.2f}", f"{1e6 / median:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=200_000)
    parser.add_argument("--outstanding", type=int, default=2048)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    ray_requests = max(args.requests // 10, args.outstanding)
    # Each run, for both peers, starts with the heap collected and frozen (imports included), as mlplat bench
    # does after its warm-up: otherwise full collections walk ray's modules during every later run.
    preload_ray()
    rows, ratios, shares = [], [], []
    for harness in HARNESSES:
        ours: list[float] = []
        theirs: list[float] = []
        floor: list[float] = []
        for _ in range(args.repeats):
            with frozen_heap():
                floor.append(run_floor(harness, args.requests, args.outstanding, args.batch))
            with frozen_heap():
                ours.append(run_mlplat(harness, args.requests, args.outstanding, args.batch))
            with frozen_heap():
                ray = run_ray(harness, ray_requests, args.outstanding, args.batch)
            if ray is not None:
                theirs.append(ray)
        rows.append(_row(harness, "asyncio alone, no batcher (the floor)", floor))
        rows.append(_row(harness, "mlplat DynamicBatcher (eager)", ours))
        shares.append(f"{harness} {statistics.median(ours) / statistics.median(floor):.0%}")
        if theirs:
            rows.append(_row(harness, "ray.serve.batch (standalone)", theirs))
            ratios.append(f"{harness} {statistics.median(ours) / statistics.median(theirs):.1f}x")
    ratio = ", ".join(ratios) if ratios else "n/a (ray not installed)"
    body = (f"Predict returns its input; {args.outstanding} requests in flight on one event loop; max batch "
            f"{args.batch}; best and median of {args.repeats} alternating runs per harness "
            f"({args.requests:,} requests per mlplat run, {ray_requests:,} per ray run, as ray is slower). "
            "`clients`: as many producer tasks, each awaiting one request at a time; `gather`: one producer "
            "awaiting them all with `asyncio.gather`, whose per-future bookkeeping is Python code. Time per "
            "request is the whole cost of a request through the batcher and the harness, so it bounds the "
            "batcher's overhead from above. Each run starts with the heap collected and frozen (`gc.freeze()`, "
            "ray's modules included), as `mlplat bench` does after its warm-up.\n\n"
            + table(["harness", "batcher", "best req/s", "median req/s", "µs per request (best)",
                     "µs per request (median)"], rows)
            + f"\n\nmlplat / ray (medians): **{ratio}**. mlplat / the floor (medians): {', '.join(shares)}: "
            "'asyncio alone' runs the same harness with each loop iteration's requests completed on the loop "
            f"itself, {args.batch} at a time, so it bounds from above what any batcher fed from one event loop "
            "can reach on this host. Target: >= 300k req/s, <= 5 µs per request.")
    write_section("batcher_overhead", "Batcher overhead, identity predict (`benchmarks/batcher_overhead.py`)",
                  body, packages=["ray"])
    print(body)


if __name__ == "__main__":
    main()
