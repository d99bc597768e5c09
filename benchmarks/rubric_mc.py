"""`mlplat rubric` Monte Carlo: vectorised TOPSIS over all draws vs a Python loop of pymcdm's TOPSIS.

Both score the same 10,000 draws (10 options x 12 criteria: Dirichlet weights, triangular scores) in the
same run; the P(best) of the two must agree exactly, which also checks mlplat's TOPSIS against pymcdm's.
Run: `python benchmarks/rubric_mc.py [--draws 10000] [--repeats 5]`; writes the "rubric_mc" section of
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _report import median, table, write_section

from mlplat.rubric import monte_carlo, normalize, topsis, triangular


def _problem(rng: np.random.Generator, m: int, n: int) -> tuple[np.ndarray, ...]:
    mode = rng.uniform(1, 10, size=(m, n))
    low, high = mode - rng.uniform(0, 1, size=(m, n)), mode + rng.uniform(0, 1, size=(m, n))
    cost = np.arange(n) % 3 == 0
    weights = rng.dirichlet(np.ones(n))
    return low, mode, high, cost, weights


def _draws(low: np.ndarray, mode: np.ndarray, high: np.ndarray, weights: np.ndarray, draws: int,
           seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    w = rng.dirichlet(100 * weights, size=draws)
    x = triangular(low, mode, high, rng.random((draws, *mode.shape)))
    return w, x


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--draws", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    from pymcdm.methods import TOPSIS
    from pymcdm.normalizations import minmax_normalization

    m, n = 10, 12
    low, mode, high, cost, weights = _problem(np.random.default_rng(7), m, n)
    w, x = _draws(low, mode, high, weights, args.draws, seed=1)
    types = np.where(cost, -1, 1)
    peer = TOPSIS(normalization_function=minmax_normalization)

    ours_core, ours_full, theirs = [], [], []
    for _ in range(args.repeats):
        start = time.perf_counter()
        best_ours = np.argmax(topsis(normalize(x, cost, "minmax"), w), axis=1)
        ours_core.append(time.perf_counter() - start)
        start = time.perf_counter()
        monte_carlo(low, mode, high, cost, weights, method="topsis", normalization="minmax", draws=args.draws,
                    rng=np.random.default_rng(1))
        ours_full.append(time.perf_counter() - start)
    for _ in range(max(1, args.repeats // 2)):
        start = time.perf_counter()
        best_peer = np.array([np.argmax(peer(x[d], w[d], types, validation=False)) for d in range(args.draws)])
        theirs.append(time.perf_counter() - start)
    agree = float(np.mean(best_ours == best_peer))
    core, full, loop = median(ours_core), median(ours_full), median(theirs)
    rows = [
        ("pymcdm 1.4 `TOPSIS` in a Python loop over draws", f"{loop * 1000:.0f}", "1.0"),
        ("mlplat `normalize` + `topsis` on the (draws, m, n) stack", f"{core * 1000:.1f}", f"{loop / core:.0f}x"),
        ("mlplat `monte_carlo` (sampling + scoring + rank counts)", f"{full * 1000:.1f}", f"{loop / full:.0f}x"),
    ]
    body = (f"{args.draws:,} draws of a {m} options x {n} criteria TOPSIS (min-max) problem, the same draws for "
            f"both; median of {args.repeats} runs for mlplat, {max(1, args.repeats // 2)} for the loop. "
            f"The winner agrees in {agree:.2%} of draws.\n\n"
            + table(["scorer", "median ms", "speed-up over the loop"], rows))
    write_section("rubric_mc", "Rubric Monte Carlo (`benchmarks/rubric_mc.py`)", body,
                  packages=["numpy", "pymcdm"])
    print(body)


if __name__ == "__main__":
    main()
