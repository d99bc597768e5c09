"""Shared by the batcher benchmarks: the MLP predict, an asyncio open-loop generator, ray's batcher if present.

The same generator drives every server through ``await call(item)``, so each peer sees the same Poisson
arrivals; latency counts from each request's scheduled arrival (no coordinated omission).
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import numpy as np

Call = Callable[[Any], Awaitable[Any]]


def mlp_predictor(threads: int = 1) -> tuple[Any, list[Any]]:
    """The issue's model: MLP 512-2048-512 on the CPU with one torch thread; and 256 request inputs."""
    import torch

    from mlplat.batcher import ModelSpec, TorchPredictor

    torch.set_num_threads(threads)
    predictor = TorchPredictor(ModelSpec(width=512, hidden=2048), device="cpu")
    return predictor, predictor.example_inputs(256, seed=1)


def ray_batch(predict: Callable[[list[Any]], Sequence[Any]], *, max_batch_size: int, wait_s: float) -> Call | None:
    """``ray.serve.batch`` used standalone around ``predict`` (None when ray is not installed)."""
    try:
        from ray import serve
        from ray.serve import batching
    except ImportError:
        return None
    # ray 2.60 asks for the Serve replica context in a helper that only logs a warning about
    # max_ongoing_requests; outside a deployment that lookup raises. The helper is silenced so the
    # batcher runs standalone; the batching code itself is untouched.
    batching._BatchQueue._warn_if_max_batch_size_exceeds_max_ongoing_requests = lambda self: None

    class Model:
        @serve.batch(max_batch_size=max_batch_size, batch_wait_timeout_s=wait_s)
        async def __call__(self, items: list[Any]) -> list[Any]:
            return list(predict(items))

    return Model().__call__


async def _poisson(call: Call, inputs: Sequence[Any], rate: float, duration: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    offsets = np.cumsum(rng.exponential(1.0 / rate, size=int(rate * duration * 1.2) + 16))
    offsets = offsets[offsets < duration]
    latency = np.full(len(offsets), np.nan)
    start = time.perf_counter() + 0.01
    pending = []

    def record(i: int, scheduled: float, future: asyncio.Future[Any]) -> None:
        # A refused or failed request has no latency: it counts as missing the SLO.
        if not future.cancelled() and future.exception() is None:
            latency[i] = time.perf_counter() - scheduled

    i = 0
    while i < len(offsets):
        now = time.perf_counter()
        while i < len(offsets) and start + offsets[i] <= now:
            # A coroutine API (ray) gets a task here; an API that returns a future (mlplat) does not.
            future = asyncio.ensure_future(call(inputs[i % len(inputs)]))
            future.add_done_callback(functools.partial(record, i, start + offsets[i]))
            pending.append(future)
            i += 1
        if i < len(offsets):
            await asyncio.sleep(max(0.0, start + offsets[i] - time.perf_counter()))
    await asyncio.wait(pending, timeout=5.0)
    # Whatever is still queued (an overloaded peer) is cancelled when the loop closes; ray logs each
    # cancelled batch task as an error, which says nothing about the measurement.
    asyncio.get_running_loop().set_exception_handler(lambda loop, context: None)
    return latency * 1000.0


def poisson(call_factory: Callable[[], Call], inputs: Sequence[Any], *, rate: float, duration: float,
            seed: int = 0) -> np.ndarray:
    """Latencies (ms; NaN when not answered) of Poisson arrivals at ``rate`` for ``duration`` seconds."""

    async def main() -> np.ndarray:
        return await _poisson(call_factory(), inputs, rate, duration, seed)

    # Not asyncio.run: on exit it cancels every task and waits for them, and ray's batch-processing task,
    # cancelled in the middle of an overloaded queue, does not finish. The loop is closed with whatever
    # is left pending (the measurement is already taken).
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(main())
    finally:
        for task in asyncio.all_tasks(loop):
            task.cancel()
        loop.close()


def summary(latency: np.ndarray, duration: float, slo_ms: float) -> dict[str, float]:
    """Goodput within the SLO, answered share and latency percentiles of one run."""
    answered = latency[~np.isnan(latency)]
    return {
        "goodput": float((answered <= slo_ms).sum()) / duration,
        "answered": answered.size / max(latency.size, 1),
        "p50": float(np.percentile(answered, 50)) if answered.size else float("nan"),
        "p99": float(np.percentile(answered, 99)) if answered.size else float("nan"),
        "within_slo": float((answered <= slo_ms).sum()) / max(latency.size, 1),
    }
