"""Synthetic canary exports (CSV long format or Prometheus JSON) for demos and tests, seeded."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from mlplat.analysis._plan import MAX_PER_INTERVAL
from mlplat.analysis._readers import _categorical
from mlplat.errors import SimulationError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["LATENCY_BUCKETS", "Scenario", "SimulationSpec", "many_rate_metrics_export", "raw_latency_export",
           "simulate_export", "to_csv", "to_prometheus_json"]

Scenario = Literal["aa", "error-regression", "latency-regression", "srm"]
# Buckets growing by 2**(1/4) (about 19%) from 10 ms to 10 s, like a fine native histogram: coarse
# buckets would hide a latency change smaller than a bucket from any quantile test.
LATENCY_BUCKETS = (*(round(0.01 * 2 ** (i / 4), 6) for i in range(40)), math.inf)


# At most this many looks in one export: a look writes 88 rows (41 buckets and 3 metrics per arm), so 50,000
# looks are 4.4M rows, a CSV of about 170 MB (35 days at one look a minute).
MAX_LOOKS = 50_000


@dataclass(frozen=True)
class SimulationSpec:
    """What to simulate: traffic, the baseline, the effect of the scenario, and the seed."""

    scenario: Scenario = "aa"
    rps: float = 278.0
    traffic: float = 0.05
    duration: float = 3600.0
    interval: float = 60.0
    baseline_rate: float = 0.001
    effect: float = 2.0
    latency_median: float = 0.08
    latency_sigma: float = 0.6
    start: float = 1_767_225_600.0  # 2026-01-01T00:00:00Z
    seed: int = 0


def simulate_export(spec: SimulationSpec) -> pd.DataFrame:
    """A long frame ``timestamp, arm, metric, value, le`` with requests, errors, latency buckets and CPU.

    ``error-regression`` multiplies the canary's error rate by ``effect``; ``latency-regression`` its
    latency by ``effect``; ``srm`` sends the canary 15% fewer requests than configured.

    Examples
    --------
    >>> frame = simulate_export(SimulationSpec(duration=120, seed=1))
    >>> sorted(frame["metric"].unique())
    ['cpu', 'errors', 'latency_seconds', 'requests']
    """
    import numpy as np
    import pandas as pd
    from scipy.stats import norm

    # Written as "not (ok)" so that NaN, which fails every comparison, is refused too.
    if not 0 < spec.traffic < 1:
        raise SimulationError(f"traffic must be in (0, 1), got {spec.traffic}")
    if not (spec.interval > 0 and spec.duration >= spec.interval):
        raise SimulationError(f"need interval > 0 and duration >= interval, got interval {spec.interval:g} s and "
                              f"duration {spec.duration:g} s")
    if spec.duration // spec.interval > MAX_LOOKS:
        raise SimulationError(f"{spec.duration:g} s every {spec.interval:g} s is more than {MAX_LOOKS:,} looks "
                              "(each writes 88 rows); shorten the duration or lengthen the interval")
    if not 0 < spec.rps * spec.interval <= MAX_PER_INTERVAL:
        raise SimulationError(f"rps x interval must be in (0, {MAX_PER_INTERVAL:.0e}] requests per look, got "
                              f"{spec.rps:g}/s x {spec.interval:g} s")
    if not 0 < spec.baseline_rate < 1:
        raise SimulationError(f"baseline_rate must be in (0, 1), got {spec.baseline_rate:g}")
    if not (spec.effect > 0 and math.isfinite(spec.effect)):
        raise SimulationError(f"effect must be a finite number > 0 (a multiplier), got {spec.effect:g}")
    if spec.scenario == "error-regression" and spec.baseline_rate * spec.effect > 1:
        raise SimulationError(f"effect x baseline_rate is the canary's error rate and must be at most 1, got "
                              f"{spec.effect:g} x {spec.baseline_rate:g} = {spec.effect * spec.baseline_rate:g}")
    rng = np.random.default_rng(spec.seed)
    looks = int(spec.duration // spec.interval)
    times = spec.start + spec.interval * np.arange(1, looks + 1)
    share = spec.traffic * (0.85 if spec.scenario == "srm" else 1.0)
    err_effect = spec.effect if spec.scenario == "error-regression" else 1.0
    lat_effect = spec.effect if spec.scenario == "latency-regression" else 1.0
    requests = rng.poisson(spec.rps * spec.interval, size=looks)
    canary = rng.binomial(requests, share)
    per_arm = np.stack([requests - canary, canary], axis=1)  # (looks, 2)
    rates = np.array([spec.baseline_rate, spec.baseline_rate * err_effect])
    errors = rng.binomial(per_arm, rates)
    edges = np.array(LATENCY_BUCKETS)
    medians = np.array([spec.latency_median, spec.latency_median * lat_effect])
    cdf = norm.cdf((np.log(edges[None, :]) - np.log(medians[:, None])) / spec.latency_sigma)
    probs = np.diff(cdf, axis=1, prepend=0.0)  # (2, buckets)
    buckets = np.stack([rng.multinomial(per_arm[:, arm], probs[arm]) for arm in range(2)], axis=1)
    cumulative = np.cumsum(buckets, axis=-1)  # (looks, 2, buckets)
    cpu = rng.normal(0.55, 0.04, size=(looks, 2))
    arms = np.array(["baseline", "canary"])
    parts = []
    for name, values in (("requests", per_arm), ("errors", errors), ("cpu", cpu)):
        parts.append(pd.DataFrame({"timestamp": np.repeat(times, 2), "arm": np.tile(arms, looks),
                                   "metric": name, "value": values.reshape(-1).astype(float), "le": math.nan}))
    nb = len(edges)
    parts.append(pd.DataFrame({"timestamp": np.repeat(times, 2 * nb), "arm": np.tile(np.repeat(arms, nb), looks),
                               "metric": "latency_seconds", "value": cumulative.reshape(-1).astype(float),
                               "le": np.tile(edges, 2 * looks)}))
    return pd.concat(parts, ignore_index=True).sort_values(["timestamp", "metric", "arm", "le"],
                                                           kind="stable", ignore_index=True)


def to_csv(frame: pd.DataFrame) -> str:
    """CSV long format; ``le`` is blank on rows that are not buckets and ``+Inf`` for the top bucket."""
    out = frame.copy()
    out["le"] = out["le"].map(lambda v: "" if math.isnan(v) else ("+Inf" if math.isinf(v) else f"{v:g}"))
    out["timestamp"] = out["timestamp"].map(lambda v: f"{v:.0f}")
    out["value"] = out["value"].map(lambda v: f"{v:.6g}")
    return str(out.to_csv(index=False, lineterminator="\n"))


def to_prometheus_json(frame: pd.DataFrame, *, arm_label: str = "arm") -> str:
    """A list of ``{"metric", "response"}`` with one ``query_range`` matrix response per metric."""
    doc = []
    for metric, rows in frame.groupby("metric", sort=True):
        result = []
        keys = ["arm", "le"] if rows["le"].notna().any() else ["arm"]
        for key, series in rows.groupby(keys, sort=True, dropna=False):
            parts: tuple[Any, ...] = key if isinstance(key, tuple) else (key,)
            labels = {arm_label: str(parts[0])}
            if "le" in keys:
                le = float(parts[1])
                labels["le"] = "+Inf" if math.isinf(le) else f"{le:g}"
            result.append({"metric": labels, "values": [[float(t), f"{v:.6g}"] for t, v in
                                                         zip(series["timestamp"], series["value"], strict=True)]})
        doc.append({"metric": metric, "response": {"status": "success",
                                                   "data": {"resultType": "matrix", "result": result}}})
    return json.dumps(doc, indent=1) + "\n"


def many_rate_metrics_export(looks: int = 1440, metrics: int = 20, seed: int = 0
                             ) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """A large export for speed checks: ``looks`` intervals of requests and ``metrics`` bad-event counters.

    Returns the frame and the metric entries of a matching config.

    >>> frame, entries = many_rate_metrics_export(looks=3, metrics=2)
    >>> len(frame), [e["name"] for e in entries]
    (18, ['e0', 'e1'])
    """
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    times = np.repeat(60.0 * np.arange(1, looks + 1), 2)
    arms = np.tile(["baseline", "canary"], looks)
    parts = [pd.DataFrame({"timestamp": times, "arm": arms, "metric": "requests",
                           "value": np.tile([19000.0, 1000.0], looks)})]
    entries = []
    for i in range(metrics):
        parts.append(pd.DataFrame({"timestamp": times, "arm": arms, "metric": f"e{i}",
                                   "value": rng.poisson(np.tile([19.0, 1.0], looks)).astype(float)}))
        entries.append({"name": f"e{i}", "kind": "rate", "events": f"e{i}"})
    frame = pd.concat(parts, ignore_index=True).assign(le=math.nan)
    return _categorical(frame), entries  # as the readers give them


def raw_latency_export(samples: int = 10_000_000, looks: int = 60, seed: int = 0) -> pd.DataFrame:
    """Per-request latency samples (metric ``lat``), 5% of them from the canary, for speed checks.

    Arm and metric names are categoricals, as :func:`~mlplat.analysis.read_export` returns them.

    >>> len(raw_latency_export(samples=600, looks=6))
    600
    """
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    per_look = -(-samples // looks)
    n = per_look * looks
    canary = rng.random(n)[:samples] < 0.05
    return pd.DataFrame({"timestamp": np.repeat(60.0 * np.arange(1, looks + 1), per_look)[:samples],
                         "arm": pd.Categorical.from_codes(canary.astype(np.int8),
                                                          dtype=pd.CategoricalDtype(["baseline", "canary"])),
                         "metric": pd.Categorical.from_codes(np.zeros(samples, np.int8),
                                                             dtype=pd.CategoricalDtype(["lat"])),
                         "value": rng.lognormal(-2.5, 0.5, n)[:samples], "le": math.nan})
