"""mlplat sim against SimFaaS (Mahmoudi & Khazaei 2021) on the SimFaaS README case, in one run.

The case: Poisson arrivals at 0.9/s, exponential warm service with mean 1.991 s, cold service 2.244 s,
keep-alive (expiration threshold) 600 s, one request per instance, 1e6 requests. Both simulators run in
this process on one core; the table gives their times and results side by side. A second table gives
mlplat's Lambda throughput at higher rates, where the keep-alive window holds many more requests.

Run: ``make bench`` (installs simfaas==0.2.2 from benchmarks/requirements.txt), or
``.venv/bin/python benchmarks/sim_vs_simfaas.py``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import table, write_section

from mlplat.sim import Scenario, simulate

REQUESTS = 1_000_000
RATE, WARM, COLD, KEEP = 0.9, 1.991, 2.244, 600.0


def _scenario(rate: float, requests: int, warm_ms: float, cold_s: float, dist: str = "exponential") -> Scenario:
    duration = requests / rate
    return Scenario.model_validate({
        "duration": duration, "warmup": 0, "replications": 1,
        "workload": {"kind": "poisson", "rate": rate},
        # SimFaaS draws a cold request's whole service from Exp(mean 2.244 s); mlplat adds a start-up time
        # to a warm draw, so the start-up is the difference of the means.
        "service": {"warm": {"dist": dist, "mean_ms": warm_ms}, "cold_start": {"init_s": cold_s}},
        "platforms": [{"name": "fn", "kind": "lambda", "keep_alive": KEEP, "max_concurrency": 10**9}],
    })


def _mlplat(sc: Scenario, repeats: int = 3) -> tuple[float, float, dict[str, float]]:
    """Best CPU seconds and wall seconds of simulate() (arrivals, service draws, model, metrics, bill)."""
    best_cpu = best_wall = float("inf")
    out: dict[str, float] = {}
    for seed in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        result = simulate(sc, seed=seed)
        best_cpu = min(best_cpu, time.process_time() - cpu)
        best_wall = min(best_wall, time.perf_counter() - wall)
        fn = result.platform("fn")
        out = {"requests": fn["requests"], "p_cold": fn["cold_start_fraction"], "instances": fn["mean_instances"],
               "running": fn["mean_busy"]}
    return best_cpu, best_wall, out


def _simfaas() -> tuple[float, float, dict[str, float]] | str:
    try:
        from simfaas.ServerlessSimulator import ServerlessSimulator
    except Exception as exc:  # the peer is optional: report why it is missing
        return f"simfaas not importable: {type(exc).__name__}: {exc}"
    np.random.seed(0)  # SimFaaS draws from numpy's global generator
    sim = ServerlessSimulator(arrival_rate=RATE, warm_service_rate=1 / WARM, cold_service_rate=1 / COLD,
                              expiration_threshold=KEEP, max_time=REQUESTS / RATE)
    wall, cpu = time.perf_counter(), time.process_time()
    sim.generate_trace(debug_print=False, progress=False)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    r = sim.get_result_dict()
    return cpu, wall, {"requests": float(r["reqs_total"]), "p_cold": float(r["prob_cold"]),
                       "instances": float(r["inst_count_avg"]), "running": float(r["inst_running_count_avg"])}


def main() -> None:
    ours_cpu, _ours_wall, ours = _mlplat(_scenario(RATE, REQUESTS, WARM * 1000, COLD - WARM))
    peer = _simfaas()
    rows = [["mlplat sim", f"{ours['requests']:,.0f}", f"{ours_cpu:.2f}", f"{ours['requests'] / ours_cpu:,.0f}",
             f"{ours['p_cold']:.5f}", f"{ours['instances']:.3f}", f"{ours['running']:.3f}"]]
    if isinstance(peer, str):
        verdict = peer
    else:
        cpu, _, theirs = peer
        rows.append(["SimFaaS 0.2.2", f"{theirs['requests']:,.0f}", f"{cpu:.2f}",
                     f"{theirs['requests'] / cpu:,.0f}", f"{theirs['p_cold']:.5f}", f"{theirs['instances']:.3f}",
                     f"{theirs['running']:.3f}"])
        ratio = (theirs["requests"] / cpu) / (ours["requests"] / ours_cpu)
        verdict = f"mlplat is **{1 / ratio:.0f}x** faster than SimFaaS (requests per CPU-second, same run)."
    body = ("SimFaaS README case (Poisson 0.9/s, Exp warm 1.991 s, cold 2.244 s, keep-alive 600 s), 1e6 "
            "requests, one core. mlplat's time is the best of 3 seeded runs of `mlplat.sim.simulate` "
            "(arrival and service draws, the level model, percentiles, the bill); SimFaaS's is one "
            "`generate_trace`. SimFaaS routes to the newest idle instance, mlplat to the most recently "
            "freed one; the published figures are P(cold) 0.0013-0.0014, 7.70 instances, 1.79 running.\n\n")
    body += table(["simulator", "requests", "CPU s", "requests per CPU-s", "P(cold)", "mean instances",
                   "mean running"], rows)
    body += f"\n\n{verdict}\n\n"
    high = []
    for rate, requests in ((50.0, 2_000_000), (1000.0, 4_000_000)):
        cpu, _wall, res = _mlplat(_scenario(rate, requests, 120.0, 6.5, dist="exponential"), repeats=2)
        high.append([f"{rate:g}/s", f"{res['requests']:,.0f}", f"{cpu:.2f}", f"{res['requests'] / cpu:,.0f}",
                     f"{res['p_cold']:.5f}", f"{res['instances']:.1f}"])
    body += ("Lambda model throughput at higher rates (Exp warm 120 ms, cold start 6.5 s, keep-alive 600 s; "
             "`simulate` end to end, best of 2):\n\n")
    body += table(["rate", "requests", "CPU s", "requests per CPU-s", "P(cold)", "mean instances"], high)
    write_section("sim", "mlplat sim vs SimFaaS", body, packages=["numpy", "simfaas"])
    print(body)


if __name__ == "__main__":
    main()
