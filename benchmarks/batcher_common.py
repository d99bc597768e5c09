"""Shared by the batcher benchmarks: the MLP predict, an asyncio open-loop generator, ray's batcher if present.

The same generator drives every server through ``await call(item)``, so each peer sees the same Poisson
arrivals; latency counts from each request's scheduled arrival (no coordinated omission).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
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


def preload_ray() -> None:
    """Import ray's batcher now, when installed, so that the heap frozen for measuring holds it too.

    Imported during a measurement, ray's modules (about 137k objects) would sit in the cyclic collector's
    generations, and every full collection would walk them: in mlplat's runs as much as in ray's own.
    """
    with contextlib.suppress(ImportError):
        import ray.serve  # noqa: F401


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


def require_ray_batch(predict: Callable[[list[Any]], Sequence[Any]], *, max_batch_size: int, wait_s: float) -> Call:
    """``ray_batch``, for a benchmark that cannot run without ray: exits with the install command instead."""
    call = ray_batch(predict, max_batch_size=max_batch_size, wait_s=wait_s)
    if call is None:
        raise SystemExit("ray is not installed: pip install -r benchmarks/requirements.txt")
    return call


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


async def _closed(call: Call, inputs: Sequence[Any], concurrency: int, duration: float,
                  warmup: float) -> np.ndarray:
    low = time.perf_counter() + warmup
    high = low + duration
    latency: list[float] = []

    async def client(first: int) -> None:
        for i in itertools.count(first, concurrency):
            sent = time.perf_counter()
            if sent >= high:
                return
            try:
                await call(inputs[i % len(inputs)])
            except Exception:
                continue  # a refused or failed request is not counted as served
            finished = time.perf_counter()
            if low <= finished < high:
                latency.append(finished - sent)

    await asyncio.gather(*(client(k) for k in range(concurrency)))
    return np.array(latency) * 1000.0


def poisson(call_factory: Callable[[], Call], inputs: Sequence[Any], *, rate: float, duration: float,
            seed: int = 0) -> np.ndarray:
    """Latencies (ms; NaN when not answered) of Poisson arrivals at ``rate`` for ``duration`` seconds."""
    return _run(lambda: _poisson(call_factory(), inputs, rate, duration, seed))


def closed_loop(call_factory: Callable[[], Call], inputs: Sequence[Any], *, concurrency: int, duration: float,
                warmup: float) -> np.ndarray:
    """Closed loop from asyncio clients: ``concurrency`` tasks, each awaiting its request, then sending the next.

    Returns the latencies (ms) of the requests answered inside the ``duration`` after ``warmup``, so
    ``len(result) / duration`` is the throughput.
    """
    return _run(lambda: _closed(call_factory(), inputs, concurrency, duration, warmup))


def _run(main: Callable[[], Awaitable[np.ndarray]]) -> np.ndarray:
    # Not asyncio.run: on exit it cancels every task and waits for them, and ray's batch-processing task,
    # cancelled in the middle of an overloaded queue, does not finish. The tasks left are cancelled and
    # given a moment, then the loop is closed with whatever is still pending (the measurement is taken).
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(main())
    finally:
        tasks = asyncio.all_tasks(loop)
        for task in tasks:
            task.cancel()
        if tasks:
            loop.run_until_complete(asyncio.wait(tasks, timeout=0.1))
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
