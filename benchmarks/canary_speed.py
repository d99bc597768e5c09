"""mlplat canary against savvi on the same count data, in the same run; plus analyze on large exports.

Both tools compute the anytime-valid p-values of Lindon & Malek (2022): the Dirichlet-multinomial
sample-ratio test (savvi `Multinomial`, mlplat `dirichlet_multinomial_test`) and the canary rate test
(savvi `InhomogeneousPoissonProcess`, mlplat `rate_ratio_process`). savvi updates one interval at a time
in Python; mlplat is vectorised over time. The script also checks that the p-values agree.
Run: `python benchmarks/canary_speed.py`; writes the "canary-speed" section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
from _report import median, table, write_section

from mlplat.analysis import CanaryConfig, CanaryData, analyze, dirichlet_multinomial_test, rate_ratio_process
from mlplat.analysis._simulate import many_rate_metrics_export, raw_latency_export


def _best(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    times, out = [], None
    for _ in range(repeats):
        began = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - began)
    return median(times), out


def _counts(looks: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    requests = rng.poisson(1e6 / 60, looks)
    canary = rng.binomial(requests, 0.05)
    split = np.stack([requests - canary, canary], axis=1)
    errors = np.stack([rng.binomial(requests - canary, 0.001), rng.binomial(canary, 0.0015)], axis=1)
    return split, errors


def _peer(looks: int, repeats: int) -> tuple[list[tuple[str, ...]], list[str]]:
    from savvi.multinomial import InhomogeneousPoissonProcess, Multinomial

    split, errors = _counts(looks, 0)
    rows, notes = [], []

    def savvi_srm() -> np.ndarray:
        test = Multinomial(0.05, np.array([0.95, 0.05]), k=100)
        out = []
        for x in split:
            test.update(x)
            out.append(test.calculate_p_value())
        return np.minimum(1.0, np.minimum.accumulate(out))

    def savvi_rate() -> np.ndarray:
        test = InhomogeneousPoissonProcess(0.05, np.array([0.95, 0.05]), np.array([[-1, 1]]), k=100)
        out = []
        for x in errors:
            test.update(x)
            out.append(test.calculate_p_value())
        return np.minimum(1.0, np.minimum.accumulate(out))

    t_ss, p_ss = _best(savvi_srm, repeats)
    t_ms, p_ms = _best(lambda: dirichlet_multinomial_test(np.cumsum(split, axis=0), [0.95, 0.05], 100.0), repeats)
    t_sr, p_sr = _best(savvi_rate, repeats)
    t_mr, res = _best(lambda: rate_ratio_process(errors[:, 1], errors[:, 0], 0.05, direction="either",
                                                 prior_share=0.05, concentration=100.0), repeats)
    rows.append((f"SRM p-values, {looks} looks", f"{t_ss * 1000:.1f}", f"{t_ms * 1000:.2f}", f"{t_ss / t_ms:.0f}x",
                 f"{np.max(np.abs(p_ss - p_ms)):.1e} (abs)"))
    log_gap = np.max(np.abs(np.log(p_sr) - np.log(res.p_value)) / np.maximum(1.0, np.abs(np.log(p_sr))))
    rows.append((f"rate p-values, {looks} looks (mlplat also computes the confidence sequence)",
                 f"{t_sr * 1000:.1f}", f"{t_mr * 1000:.1f}", f"{t_sr / t_mr:.2f}x", f"{log_gap:.1e} (rel. log p)"))
    ci_looks = 60

    def savvi_ci() -> int:
        test = InhomogeneousPoissonProcess(0.05, np.array([0.95, 0.05]), np.array([[-1, 1]]), k=100)
        done = 0
        for x in errors[:ci_looks]:
            test.update(x)
            test.infer()  # p-value and confidence interval (cvxpy)
            done += 1
        return done

    try:
        t_sc, _ = _best(savvi_ci, 1)
        t_mc, _ = _best(lambda: rate_ratio_process(errors[:ci_looks, 1], errors[:ci_looks, 0], 0.05,
                                                   direction="either", prior_share=0.05, concentration=100.0),
                        repeats)
        rows.append((f"rate p-value + confidence sequence, {ci_looks} looks", f"{t_sc * 1000:.0f}",
                     f"{t_mc * 1000:.1f}", f"{t_sc / t_mc:.0f}x", "-"))
    except Exception as exc:  # savvi's cvxpy solver can fail on large counts; report it, do not hide it
        notes.append(f"savvi `infer()` (confidence interval) failed: {type(exc).__name__}")
    return rows, notes


def _large(repeats: int) -> list[tuple[str, str]]:
    frame, metrics = many_rate_metrics_export(looks=1440, metrics=20, seed=1)
    cfg = CanaryConfig.model_validate({"metrics": metrics})
    t_counts, _ = _best(lambda: analyze(CanaryData(frame, "bench"), cfg), repeats)
    raw = raw_latency_export(samples=10_000_000, seed=1)
    cfg_raw = CanaryConfig.model_validate({"srm": {"enabled": False}, "metrics": [
        {"name": "latency", "kind": "distribution", "metric": "lat", "quantiles": [0.5, 0.9, 0.99]}]})
    t_raw, _ = _best(lambda: analyze(CanaryData(raw, "bench"), cfg_raw), repeats)
    return [("1,440 one-minute intervals x 20 rate metrics (+ SRM)", f"{t_counts:.2f}"),
            ("10 million raw latency samples, p50/p90/p99", f"{t_raw:.2f}")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--looks", type=int, default=1440)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    warnings.simplefilter("ignore")  # cvxpy warns about solver accuracy on every call
    rows, notes = _peer(args.looks, args.repeats)
    large = _large(3)
    body = ("Same simulated counts for both tools (1M requests/h, 5% canary, k = 100), median of "
            f"{args.repeats} runs. Agreement is the largest difference between the two tools' running "
            "p-values.\n\n"
            + table(["task", "savvi ms", "mlplat ms", "savvi / mlplat", "agreement"], rows)
            + ("\n\n" + "\n".join(f"- {n}" for n in notes) if notes else "")
            + "\n\n`mlplat.analysis.analyze` on large exports (median of 3 runs):\n\n"
            + table(["export", "seconds"], large))
    write_section("canary-speed", "Canary analysis speed vs savvi (`benchmarks/canary_speed.py`)", body,
                  packages=["numpy", "scipy", "pandas", "savvi"])
    print(body)


if __name__ == "__main__":
    main()
