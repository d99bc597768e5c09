"""The CUDA path of `mlplat bench`: device choice, pinned uploads, autocast, timing and a short run.

These tests need an NVIDIA GPU and are skipped without one (CI has none); docs/development.md says how
they were run on a lent GPU machine.
"""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from typer.testing import CliRunner

from mlplat.batcher import (
    BenchConfig,
    DynamicBatcher,
    ModelSpec,
    TorchPredictor,
    profile_predict,
    resolve_device,
    run_bench,
)
from mlplat.cli import app

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
SMALL = ModelSpec(width=64, hidden=256)


def _assert_rows_match(got: Any, want: Any) -> None:
    """Same number of rows, each equal to float32 GPU-vs-CPU rounding."""
    torch.testing.assert_close(list(got), list(want), rtol=1e-3, atol=1e-3)


def test_auto_picks_cuda() -> None:
    """--device auto picks the GPU when CUDA is available."""
    assert resolve_device("auto") == "cuda"
    assert resolve_device("cuda") == "cuda"


@pytest.mark.parametrize("spec", [SMALL, ModelSpec(kind="transformer", width=64, hidden=128, heads=4, seq_len=5)])
def test_cuda_float32_matches_the_cpu(spec: ModelSpec) -> None:
    """The same seeded model gives the same rows on the GPU as on the CPU, back on the host as float32."""
    gpu = TorchPredictor(spec, device="cuda")
    cpu = TorchPredictor(spec, device="cpu")
    inputs = cpu.example_inputs(7, seed=3)
    got, want = gpu(inputs), cpu(inputs)
    assert len(got) == 7
    assert all(g.device.type == "cpu" and g.dtype == torch.float32 for g in got)
    _assert_rows_match(got, want)


def test_uploads_go_through_pinned_memory() -> None:
    """The batch is staged in page-locked host memory, which the non-blocking upload needs to overlap."""
    predictor = TorchPredictor(SMALL, device="cuda")
    predictor(predictor.example_inputs(5))
    staged = predictor._local.pinned
    assert staged.is_pinned() and staged.shape[0] >= 5


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_autocast_runs_in_half_precision_and_returns_float32(dtype: str) -> None:
    """float16/bfloat16 run under autocast and still return float32 rows close to the float32 answer."""
    inputs = TorchPredictor(SMALL).example_inputs(4)
    half = TorchPredictor(SMALL, device="cuda", dtype=dtype)(inputs)
    full = TorchPredictor(SMALL, device="cuda")(inputs)
    assert all(h.dtype == torch.float32 for h in half)
    torch.testing.assert_close(list(half), list(full), rtol=0.05, atol=0.05)


def test_concurrent_workers_get_their_own_rows() -> None:
    """Four worker threads sharing one predictor each get the rows of their own batch (no shared staging)."""
    predictor = TorchPredictor(SMALL, device="cuda")
    cpu = TorchPredictor(SMALL, device="cpu")
    batches = [cpu.example_inputs(8, seed=s) for s in range(4)]
    want = [cpu(b) for b in batches]
    got: dict[int, list[Any]] = {i: [] for i in range(4)}

    def run(i: int) -> None:
        for _ in range(50):
            got[i].append(predictor(batches[i]))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in range(4):
        for rows in got[i]:  # every call's rows, not only the last one's
            _assert_rows_match(rows, want[i])


def test_batcher_with_two_cuda_workers_routes_every_result() -> None:
    """Through a DynamicBatcher with two workers on the GPU, each answer belongs to its own request."""
    predictor = TorchPredictor(SMALL, device="cuda")
    cpu = TorchPredictor(SMALL, device="cpu")
    inputs = cpu.example_inputs(200, seed=5)
    want = cpu(inputs)
    with DynamicBatcher(predictor, max_batch_size=16, max_latency_ms=200, workers=2) as batcher:
        futures = [batcher.submit(x) for x in inputs]
        got = [f.result(timeout=60) for f in futures]
    _assert_rows_match(got, want)


def test_profile_times_the_finished_gpu_work() -> None:
    """S(b) on the GPU is at least the device time CUDA events measure for the same call."""
    predictor = TorchPredictor(ModelSpec(width=512, hidden=4096, layers=4), device="cuda")
    batch = predictor.example_inputs(32)
    (point,) = profile_predict(predictor, [32], repeats=5, warmup=2)
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    predictor(batch)
    start.record()
    predictor(batch)
    end.record()
    torch.cuda.synchronize()
    assert point.ms >= 0.5 * start.elapsed_time(end)  # wall time covers the device time (with noise slack)


def test_short_cuda_bench_runs_every_policy() -> None:
    """A short open-loop run on the GPU reports every policy, with batching under load."""
    config = BenchConfig(model=SMALL, device="cuda", max_batch=8, duration=0.5, warmup=0.2, rate=2000.0)
    result = run_bench(config)
    assert result.device == "cuda" and result.ceiling_rps > 0
    assert [p.policy for p in result.policies] == ["none", "window", "deadline", "eager"]
    assert all(p.throughput_rps > 0 for p in result.policies)


def test_cli_bench_on_cuda(runner: CliRunner) -> None:
    """`mlplat bench --device cuda --json` reports the GPU."""
    args = ["bench", "--device", "cuda", "--width", "64", "--hidden", "256", "--max-batch", "8", "--duration", "0.3s",
            "--warmup", "100ms", "--rate", "1000", "--dtype", "bfloat16", "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["device"] == "cuda" and doc["dtype"] == "bfloat16"
