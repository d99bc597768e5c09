"""`mlplat bench` on a CUDA GPU: what each batching policy gets from the same GPU under the same load.

Three runs of the library behind `mlplat bench --device cuda`, each comparing no batching, the fixed
window baseline and mlplat's deadline and eager policies in one run (the window policy is the peer here:
it is how `ray.serve.batch` forms batches):

- the MLP 512-2048-512 in float32 at a fixed open-loop rate (20k req/s): on a GPU its predict is so short
  that the load, not the GPU, is the limit, which the run's generator lag shows;
- a 6-layer transformer encoder (width 1024, feed-forward 4096, 64 tokens per request) in float32 and in
  bfloat16 under autocast, swept from 20% to 110% of X*, reporting each policy's best goodput.

The transformer runs use a 20 ms deadline and a 50 ms SLO, since its predict at batch 64 takes longer
than the default 10 ms deadline. Needs CUDA: without it the script says so and writes nothing.
Run: `python benchmarks/bench_gpu.py`; writes the "bench_gpu" section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import functools
import math
from collections.abc import Sequence

from _report import table, write_section

from mlplat.batcher import BenchConfig, BenchResult, ModelSpec, PolicyResult, run_bench

MLP = ModelSpec()
TRANSFORMER = ModelSpec(kind="transformer", width=1024, hidden=4096, layers=6, seq_len=64)


def _policy_rows(label: str, points: Sequence[PolicyResult]) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for p in points:
        lag = "-" if p.generator_lag_p99_ms is None else f"{p.generator_lag_p99_ms:.1f}"
        p99 = p.latency_ms["p99"]
        rows.append((label, p.policy, f"{p.offered_rps:,.0f}", f"{p.throughput_rps:,.0f}", f"{p.goodput_rps:,.0f}",
                     "-" if math.isnan(p99) else f"{p99:.1f}", f"{p.miss_rate:.1%}", f"{p.reject_rate:.1%}",
                     f"{p.mean_batch:.1f}", f"{p.busy_fraction:.0%}", lag))
    return rows


def _profile_line(result: BenchResult) -> str:
    picks = {1, 8, 16, 32, result.max_batch}
    shown = ", ".join(f"S({p.batch}) = {p.ms:.3f} ms" for p in result.profile if p.batch in picks)
    return (f"{result.model}, {result.dtype}: {shown}; X* = {result.ceiling_rps:,.0f} req/s at batch "
            f"{result.ceiling_batch}.")


def _ratio_line(result: BenchResult, label: str) -> str:
    best = {p.policy: p.goodput_rps for p in result.policies}
    window = best.get("window", 0.0)
    parts = [f"{policy} {best[policy] / window:.2f}x" for policy in ("deadline", "eager") if policy in best and window]
    return f"{label}: best goodput against the window baseline: " + (", ".join(parts) or "window served nothing")


def _progress(label: str, message: str) -> None:
    print(f"{label}: {message}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=float, default=3.0, help="measured seconds per run")
    parser.add_argument("--mlp-rate", type=float, default=20_000.0)
    args = parser.parse_args()
    import torch

    if not torch.cuda.is_available():
        print("bench_gpu: no CUDA GPU here; nothing measured, docs/benchmarks.md left as is")
        return
    on_gpu = functools.partial(BenchConfig, device="cuda", duration=args.duration, warmup=1.0)
    transformer_sweep = functools.partial(on_gpu, model=TRANSFORMER, max_batch=64, max_latency_ms=20.0, slo_ms=50.0,
                                          mode="sweep")
    runs = [
        ("MLP, float32, Poisson", on_gpu(model=MLP, rate=args.mlp_rate)),
        ("transformer, float32, sweep", transformer_sweep()),
        ("transformer, bfloat16, sweep", transformer_sweep(dtype="bfloat16")),
    ]
    rows: list[tuple[str, ...]] = []
    notes: list[str] = []
    for label, config in runs:
        result = run_bench(config, progress=functools.partial(_progress, label))
        rows += _policy_rows(label, result.policies)
        notes.append(f"- {_profile_line(result)}")
        if config.mode == "sweep":
            notes.append(f"- {_ratio_line(result, label)}.")
        notes += [f"- warning ({label}): {w}" for w in result.warnings]
    gpu = torch.cuda.get_device_name(0)
    body = "\n\n".join([
        f"GPU: {gpu}, torch {torch.__version__}, CUDA {torch.version.cuda}. One torch thread on the CPU; "
        f"{args.duration:g} s measured per run after 1 s of warm-up. The MLP runs use the default 10 ms deadline "
        "and 25 ms SLO; the transformer runs a 20 ms deadline and a 50 ms SLO. Sweep rows show each policy's "
        "point of highest goodput.",
        table(["run", "policy", "offered req/s", "throughput", "goodput", "p99 ms", "misses", "rejected",
               "mean batch", "busy", "generator lag p99 ms"], rows),
        "\n".join(notes),
    ])
    write_section("bench_gpu", "mlplat bench on a CUDA GPU (`benchmarks/bench_gpu.py`)", body,
                  packages=["torch"])
    print(body)


if __name__ == "__main__":
    main()
