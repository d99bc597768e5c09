"""mlplat's DynamicBatcher against ``ray.serve.batch`` used standalone: same predict, same load, same run.

The predict is the MLP 512-2048-512 on the CPU with one torch thread; the load is the same seeded Poisson
schedule at ``--rate`` (8k req/s) from one asyncio generator that awaits each request; latency counts from
the scheduled arrival. Both batch up to 32; ray waits up to 10 ms for a batch (its ``batch_wait_timeout_s``),
mlplat's deadline is 10 ms. Goodput is answers within the 25 ms SLO per second. Runs alternate.
Run: `python benchmarks/batcher_vs_ray.py`; writes the "batcher_vs_ray" section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import statistics
from typing import Any

from _report import table, write_section
from batcher_common import Call, mlp_predictor, poisson, preload_ray, require_ray_batch, summary

from mlplat.batcher import DynamicBatcher
from mlplat.batcher._bench import measurement_runtime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rates", default="8000,4000",
                        help="comma-separated; the issue's target is at 8000, 4000 shows a load ray sustains")
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--slo-ms", type=float, default=25.0)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    predictor, inputs = mlp_predictor()
    for _ in range(5):
        predictor(inputs[:32])  # warm-up

    def ray_call() -> Call:
        return require_ray_batch(predictor, max_batch_size=32, wait_s=0.010)

    def row(name: str, runs: list[dict[str, float]]) -> tuple[Any, ...]:
        med = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
        return (name, f"{rate:,.0f}", f"{med['goodput']:,.0f}", f"{med['within_slo']:.1%}", f"{med['p50']:.1f}",
                f"{med['p99']:.1f}")

    # The same for both peers, after the warm-up as mlplat bench does: freezing the imports, model, weights
    # and inputs takes them out of the cyclic collector's generations (shorter GC pauses in the tail), and
    # GIL hand-offs come every 0.5 ms, not 5 ms.
    preload_ray()
    with measurement_runtime():
        rows, ratios = [], []
        for rate in [float(r) for r in args.rates.split(",")]:
            results: dict[str, list[dict[str, float]]] = {"mlplat": [], "ray": []}
            for repeat in range(args.repeats):
                # Each run is preceded by 1 s at the same rate, discarded (the deadline policy learns S(b)
                # online; ray gets the same), and the two take turns going first: the first run after the
                # previous pair was measurably slower on this shared machine.
                for name in ("mlplat", "ray") if repeat % 2 == 0 else ("ray", "mlplat"):
                    if name == "mlplat":
                        with DynamicBatcher(predictor, max_batch_size=32, max_latency_ms=10.0,
                                            policy="deadline") as batcher:
                            poisson(lambda b=batcher: b.infer, inputs, rate=rate, duration=1.0, seed=99)
                            latency = poisson(lambda b=batcher: b.infer, inputs, rate=rate, duration=args.duration,
                                              seed=repeat)
                    else:
                        poisson(ray_call, inputs, rate=rate, duration=1.0, seed=99)
                        latency = poisson(ray_call, inputs, rate=rate, duration=args.duration, seed=repeat)
                    results[name].append(summary(latency, args.duration, args.slo_ms))
            rows += [row("mlplat DynamicBatcher (deadline)", results["mlplat"]),
                     row("ray.serve.batch (standalone)", results["ray"])]
            ours = statistics.median(r["goodput"] for r in results["mlplat"])
            theirs = statistics.median(r["goodput"] for r in results["ray"])
            # A batcher that answered every request within the SLO would have goodput = rate: the ratio
            # cannot exceed rate / ray's goodput in this run, whatever the batcher does.
            ratios.append(f"{ours / theirs:.2f}x at {rate:,.0f} req/s, where answering every request within "
                          f"the SLO would give {rate / theirs:.2f}x" if theirs else f"inf at {rate:,.0f} req/s")
    body = (f"MLP 512-2048-512, CPU, one torch thread; Poisson arrivals for {args.duration:g} s; "
            f"SLO {args.slo_ms:g} ms; medians of {args.repeats} runs per rate, each after 1 s of warm-up at the "
            "same rate, the two batchers taking turns to go first.\n\n"
            + table(["batcher", "offered req/s", "goodput req/s", "answered within SLO", "p50 ms", "p99 ms"], rows)
            + f"\n\nGoodput mlplat / ray: **{'; '.join(ratios)}** (target >= 1.25x at 8000 req/s).")
    write_section("batcher_vs_ray", "Batcher vs ray.serve.batch (`benchmarks/batcher_vs_ray.py`)", body,
                  packages=["ray", "torch"])
    print(body)


if __name__ == "__main__":
    main()
