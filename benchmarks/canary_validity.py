"""False alarms under continuous monitoring and power: mlplat's gate against the tests people re-run.

A/A: 1M requests/h, 0.1% errors in both arms, 5% canary, 60 one-minute looks, seeded runs. Beside
mlplat's anytime-valid rate test, the same simulated counts go through (a) a fixed-horizon one-sided
binomial test of the canary's share of errors re-run at every look, and (b) a Mann-Whitney test of the
per-interval error rates re-run at every look (what Kayenta does each interval). Then the `plan` grid
(1, 2, 5, 10% traffic x 1.5, 2, 3x) from `mlplat.analysis.plan`, the function `mlplat canary plan` runs.
Run: `python benchmarks/canary_validity.py [--runs 2000]`; writes the "canary-validity" and
"canary-plan" sections of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse

import numpy as np
from _report import table, write_section
from scipy.stats import binom, mannwhitneyu

from mlplat.analysis import binomial_upper, plan, rate_ratio_process
from mlplat.units import format_duration

RPS = 1e6 / 3600
BASE = 0.001
ALPHA = 0.05
METRIC_ALPHA = 0.049  # alpha left to one rate metric after the SRM check's 0.001


def _aa(runs: int, traffic: float, seed: int) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    looks = 60
    requests = rng.poisson(RPS * 60, (runs, looks))
    canary_req = rng.binomial(requests, traffic)
    base_req = requests - canary_req
    canary_err = rng.binomial(canary_req, BASE)
    base_err = rng.binomial(base_req, BASE)
    share = canary_req / requests
    alarms = {}
    # mlplat: the anytime-valid rate test (the judge's rate gate).
    proc = rate_ratio_process(canary_err, base_err, share, null_ratio=1.0, prior_share=traffic,
                              concentration=20.0)
    alarms["mlplat anytime-valid rate test"] = (proc.p_value <= METRIC_ALPHA).any(axis=1)
    # Fixed-horizon binomial test of the canary's share of errors, re-run at every look.
    cum_c, cum_n = np.cumsum(canary_err, axis=1), np.cumsum(canary_err + base_err, axis=1)
    expected = np.cumsum(canary_req, axis=1) / np.cumsum(requests, axis=1)
    p_binom = binom.sf(cum_c - 1, cum_n, expected)
    alarms["binomial test re-run at every look"] = (p_binom <= ALPHA).any(axis=1)
    # Mann-Whitney on per-interval error rates so far, re-run at every look (Kayenta's judge).
    rate_c, rate_b = canary_err / canary_req, base_err / base_req
    mw = np.zeros(runs, dtype=bool)
    for t in range(2, looks + 1):
        p = mannwhitneyu(rate_c[:, :t], rate_b[:, :t], axis=1, alternative="two-sided").pvalue
        mw |= np.nan_to_num(p, nan=1.0) <= ALPHA
    alarms["Mann-Whitney re-run at every look"] = mw
    return {name: float(hit.mean()) for name, hit in alarms.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()
    rows = []
    for traffic in (0.01, 0.05):
        for name, rate in _aa(args.runs, traffic, args.seed).items():
            rows.append((f"{traffic:.0%}", name, f"{rate:.4f}", f"{binomial_upper(rate, args.runs):.4f}"))
    body = (f"A/A, {args.runs} seeded runs (seed {args.seed}), 60 one-minute looks, 1M requests/h, 0.1% errors, "
            f"alpha {ALPHA} (mlplat's rate test at {METRIC_ALPHA}, the rest is the SRM check's). A false alarm "
            "is a rejection at any of the 60 looks. The upper bound is the one-sided 95% Clopper-Pearson bound.\n\n"
            + table(["traffic", "test", "false-alarm rate", "95% upper bound"], rows))
    write_section("canary-validity", "Canary false alarms under continuous monitoring "
                  "(`benchmarks/canary_validity.py`)", body, packages=["numpy", "scipy"])
    print(body)
    result = plan(rps=RPS, baseline_rate=BASE, traffic=[0.01, 0.02, 0.05, 0.1], effects=[1.5, 2.0, 3.0],
                  max_duration=3600, alpha=METRIC_ALPHA, runs=args.runs, seed=args.seed)
    grid = [(f"{c.traffic:.0%}", f"{c.effect:g}x", f"{c.power:.3f}", format_duration(c.median_time),
             format_duration(c.time_to_80), format_duration(c.time_to_95)) for c in result.cells]
    null = [(f"{t:.0%}", f"{r:.4f}", f"{binomial_upper(r, args.runs):.4f}") for t, r in result.false_alarm.items()]
    body = (f"`mlplat canary plan --rps 1e6/h --baseline-rate 0.001 --traffic 1%,2%,5%,10% --effect 1.5,2,3 "
            f"--runs {args.runs} --seed {args.seed}`: P(ROLLBACK within 60 min), median time to detect, and "
            "the time by which 80% / 95% of runs have rolled back (`inf`: not within 60 min). "
            f"Prior concentration k = 20, tolerance 0, min_events {result.min_events} (the gate decides only "
            "once that many bad events are in, both arms together).\n\n"
            + table(["traffic", "effect", "P(detect in 60 min)", "median time", "80% by", "95% by"], grid)
            + "\n\nA/A false-alarm rate of the same simulation:\n\n"
            + table(["traffic", "false-alarm rate", "95% upper bound"], null))
    write_section("canary-plan", "Canary power grid (`benchmarks/canary_validity.py`, `mlplat canary plan`)",
                  body, packages=["numpy", "scipy"])
    print(body)


if __name__ == "__main__":
    main()
