"""Distribution metrics: quantile tests and drift, from raw samples or Prometheus histogram buckets."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from mlplat.analysis._config import CanaryConfig, DistributionMetric, quantile_label
from mlplat.analysis._prepared import (
    COUNT_RULE,
    Prepared,
    apply_nan,
    bad_counts,
    canary_share,
    check_finite,
    of_metric,
    place_of,
    row_match,
)
from mlplat.analysis._quantile_ab import quantile_order_log_e, quantile_ratio_bound
from mlplat.analysis._results import MetricResult, Series, Status, first_hit, no_data_result, sided, status_from
from mlplat.analysis._sequential import p_from_log_e, rate_ratio_process
from mlplat.errors import DataError
from mlplat.units import format_exact

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    from numpy.typing import NDArray


# Raw samples are binned on a fine grid before the quantile sequences: 2048 log-spaced bins put the
# quantisation below 1% of the value for four decades of latency, well inside any useful tolerance.
FINE_BINS = 2048
_DRIFT_GROUPS = 10


def _histograms(prep: Prepared, config: CanaryConfig, metric: DistributionMetric
                ) -> tuple[NDArray[np.float64], NDArray[np.float64], float] | None:
    """Bucket edges, per-look, per-arm bucket counts (looks, 2, buckets) and the first bucket's lower edge,
    from raw samples or ``le`` rows.

    Raw samples: the first bin holds only the smallest sample, so its lower edge is that sample. Buckets:
    as PromQL's ``histogram_quantile``, a first bucket with an upper edge above 0 starts at 0 (a histogram
    of durations or sizes); otherwise nothing is known below it.
    """
    import numpy as np

    f = prep.frame
    mask = (f["metric"] == metric.metric).to_numpy()
    # Boolean indexing copies every column: skip it when the export holds this metric only (raw samples).
    rows = f if mask.all() else f[mask]
    if len(rows) == 0:
        return None
    rows = apply_nan(rows, metric.nan_policy, metric.name, prep)
    if len(rows) == 0:
        return None  # every value was NaN and nan_policy dropped them: no data, as with no rows at all
    has_le = rows["le"].notna()
    if has_le.any() and not has_le.all():
        def other_kind(f: pd.DataFrame) -> Any:  # the first row unlike the metric's first row in the file
            ours, bucket = of_metric(f, metric.metric), f["le"].notna()
            return ours & (bucket != bucket[ours].iloc[0]) if ours.any() else ours

        where = place_of(prep, other_kind)
        raise DataError(f"{where}: metric {metric.metric!r} mixes raw samples and histogram buckets (le)")
    arm_idx = (rows["arm"] == config.arms.canary).to_numpy().astype(np.intp)
    look_idx = np.searchsorted(prep.looks, rows["timestamp"].to_numpy())
    values = rows["value"].to_numpy(dtype=float)
    if has_le.any():
        arms = (config.arms.baseline, config.arms.canary)
        edges, counts = _bucket_counts(prep, metric, arms, rows, arm_idx, look_idx, values)
        return edges, counts, (0.0 if edges[0] > 0 else -math.inf)
    check_finite(rows, prep, metric.metric, "samples")
    lo, hi = float(values.min()), float(values.max())
    edges, bins = fine_bins(values, lo, hi)
    flat = (look_idx * 2 + arm_idx) * FINE_BINS + bins
    counts = np.bincount(flat, minlength=len(prep.looks) * 2 * FINE_BINS).astype(float)
    return edges, counts.reshape(len(prep.looks), 2, FINE_BINS), lo


def fine_bins(values: NDArray[np.float64], lo: float, hi: float) -> tuple[NDArray[np.float64], NDArray[np.intp]]:
    """FINE_BINS edges over raw samples from ``lo`` to ``hi``, and each sample's bin (bin 0 holds ``lo``).

    Log-spaced when the samples are >= 0 and span more than a hair, so the quantisation is relative (under
    1%); samples of exactly 0 get the first bin to themselves. Linear edges for samples below 0. A single
    0 among latencies used to switch everything to linear edges, 15 ms wide for 30 s of range: a p50 of
    50 ms was quantised by 30% and a decided rollback went back to PENDING.
    """
    import numpy as np

    positive = values[values > 0] if lo == 0 else values
    start = float(positive.min()) if lo >= 0 and len(positive) else math.nan
    if not (start > 0 and hi / start > 1.0001):  # NaN: below 0, or nothing above 0
        edges = np.linspace(lo, hi if hi > lo else lo + 1.0, FINE_BINS)
        edges[-1] = max(edges[-1], hi)
        return edges, np.minimum(np.searchsorted(edges, values, side="left"), FINE_BINS - 1)
    zeros = int(lo == 0)  # a first bin for the zeros, then log-spaced bins from the smallest positive sample
    n = FINE_BINS - zeros
    edges = np.geomspace(start, hi, n)
    edges[-1] = max(edges[-1], hi)
    # The bin follows from the logarithm, no search needed (nudged where rounding put a value just past
    # its edge).
    step = math.log(hi / start) / (n - 1)
    with np.errstate(divide="ignore"):  # log(0) = -inf for the zeros, clipped to bin 0 and moved below
        bins = np.clip(np.ceil((np.log(values) - math.log(start)) / step - 1e-9), 0, n - 1).astype(np.intp)
    bins += (values > edges[bins]) & (bins < n - 1)
    bins -= (bins > 0) & (values <= edges[np.maximum(bins - 1, 0)])
    if zeros:
        edges = np.concatenate([[0.0], edges])
        bins = np.where(values > 0, bins + 1, 0)
    return edges, bins


def _bucket_counts(prep: Prepared, metric: DistributionMetric, arms: tuple[str, str], rows: pd.DataFrame,
                   arm_idx: NDArray[np.intp], look_idx: NDArray[np.intp], values: NDArray[np.float64]
                   ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    import numpy as np

    bad = bad_counts(values)
    if bad.any():
        row = rows[bad].iloc[0]
        where = place_of(prep, lambda f: row_match(metric.metric, row["timestamp"], row["arm"])(f)
                       & f["le"].notna() & bad_counts(f["value"].to_numpy()))
        raise DataError(f"{where}: metric {metric.metric!r}: bucket count {row['value']} at timestamp "
                        f"{format_exact(row['timestamp'])} ({row['arm']}); bucket counts must be {COUNT_RULE}")
    les = rows["le"].to_numpy(dtype=float)
    edges = np.unique(les)
    le_idx = np.searchsorted(edges, les)
    key = (look_idx * 2 + arm_idx) * len(edges) + le_idx
    if len(np.unique(key)) != len(key):
        prep.warnings.append(f"metric {metric.metric!r}: {len(key) - len(np.unique(key))} duplicated "
                             "(timestamp, arm, le) row(s) summed")
    cum = np.bincount(key, weights=values, minlength=len(prep.looks) * 2 * len(edges)).astype(float, copy=False)
    seen = np.bincount(key, minlength=len(prep.looks) * 2 * len(edges)) > 0
    cum = cum.reshape(len(prep.looks), 2, len(edges))
    seen = seen.reshape(cum.shape)
    edges, filled = _common_edges(prep, metric, edges, cum, seen)
    if not np.isinf(edges[-1]):
        prep.warnings.append(f"metric {metric.metric!r}: no le=+Inf bucket; samples above {edges[-1]:g} are unseen")
    step = np.diff(filled, axis=-1)
    if (step < -1e-9).any():
        t, arm, j = np.argwhere(step < -1e-9)[0]
        arm_name = arms[arm]
        where = place_of(prep, lambda f: row_match(metric.metric, prep.looks[t], arm_name)(f)
                       & (f["le"] == edges[j + 1]))
        raise DataError(f"{where}: metric {metric.metric!r}: histogram buckets are not cumulative at "
                        f"timestamp {format_exact(prep.looks[t])} ({arm_name}): "
                        f"le={edges[j + 1]:g} holds {filled[t, arm, j + 1]:g} < {filled[t, arm, j]:g} at "
                        f"le={edges[j]:g}")
    per_bucket = np.diff(filled, axis=-1, prepend=0.0)
    return edges, per_bucket


def _common_edges(prep: Prepared, metric: DistributionMetric, edges: NDArray[np.float64],
                  cum: NDArray[np.float64], seen: NDArray[np.bool_]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """The edges every histogram row has (a row: one arm at one look with buckets), and the counts there.

    A count missing at an edge is not guessed: the count of the bucket below is a lower bound of the
    cumulative count there, the one above an upper bound, and a test fed the wrong bound finds evidence
    that is not in the data (a canary exporting a coarser layout than its baseline rolled back A/A runs
    every time). Dropping the edge coarsens both arms alike, which the tests allow for.
    """

    rows = seen.any(axis=-1)  # (look, arm) pairs that exported this histogram
    common = seen[rows].all(axis=0)
    if common.all():
        return edges, cum
    if not common.any():
        raise DataError(f"{prep.source}: metric {metric.metric!r}: no bucket edge (le) is in every histogram row, "
                        "so the arms cannot be compared; export one bucket layout for both arms")
    shown = ", ".join(f"{edge:g}" for edge in edges[~common][:5]) + (" ..." if (~common).sum() > 5 else "")
    prep.warnings.append(f"metric {metric.metric!r}: le={shown} missing from some rows (the arms or scrapes use "
                         f"different bucket layouts); compared on the {int(common.sum())} edges every row has")
    return edges[common], cum[..., common]


def quantile_p(cum_c: NDArray[np.float64], cum_b: NDArray[np.float64], edges: NDArray[np.float64], floor: float,
                q: float, relation: str, factor: float, alpha_opt: float) -> NDArray[np.float64]:
    """Anytime p-value that the canary's quantile is above (``gt``) or below (``lt``) ``factor`` times the
    baseline's, from one e-value over both arms (``_quantile_ab.py``)."""
    if relation == "gt":
        log_e = quantile_order_log_e(cum_c, cum_b, edges, q, factor, floor=floor, alpha_opt=alpha_opt)
    else:  # canary < f x baseline is baseline > canary / f
        log_e = quantile_order_log_e(cum_b, cum_c, edges, q, 1 / factor, floor=floor, alpha_opt=alpha_opt)
    return p_from_log_e(log_e)


def judge_distribution(prep: Prepared, config: CanaryConfig, metric: DistributionMetric,
                  alpha: float) -> list[MetricResult]:
    import numpy as np

    names = distribution_test_names(metric)
    a_test = alpha / len(names)
    hist = _histograms(prep, config, metric)
    if hist is None:
        return [no_data_result(n, metric.name, "distribution", metric.critical, a_test, f"no {metric.metric!r} data")
                for n in names]
    edges, counts, floor = hist
    if metric.quantiles:
        _check_not_negative(prep, metric, edges, counts, floor)
    cum = np.cumsum(np.cumsum(counts, axis=0), axis=-1)  # over time, then over buckets
    cum_b, cum_c = cum[:, 0, :], cum[:, 1, :]
    n_b, n_c = cum_b[:, -1], cum_c[:, -1]
    enough = (n_b >= metric.min_samples) & (n_c >= metric.min_samples)
    out = []
    for q, name in zip(metric.quantiles, names, strict=False):
        def shown(relation: str, factor: float, a: float, q: float = q) -> NDArray[np.float64]:
            return quantile_p(cum_c, cum_b, edges, floor, q, relation, factor, a_test / 2)

        p_reg, p_pass = sided(metric.direction, metric.tolerance, shown, a_test)
        status, decided = status_from(p_reg, p_pass, enough, a_test, prep.looks)
        # The interval inverts the same e-values: its ends are the ratios the one-sided tests reject at
        # a_test, so a verdict and the interval never disagree.
        low = quantile_ratio_bound(cum_c, cum_b, edges, q, a_test, floor=floor, alpha_opt=a_test / 2)
        reverse = quantile_ratio_bound(cum_b, cum_c, edges, q, a_test, floor=floor, alpha_opt=a_test / 2)
        with np.errstate(divide="ignore"):
            ci_lo = np.where(low >= 0, low - 1, -np.inf)
            ci_hi = np.where(reverse > 0, 1 / reverse, np.inf) - 1
        est_c, est_b = (_interpolated_quantile(cum_c[-1], edges, floor, q),
                        _interpolated_quantile(cum_b[-1], edges, floor, q))
        effect = est_c / est_b - 1 if est_b > 0 and np.isfinite(est_b) and np.isfinite(est_c) else math.nan
        detail = f"{est_b:.4g} vs {est_c:.4g}"
        if status is Status.PENDING and not enough[-1]:
            detail += f"; needs min_samples {metric.min_samples} per arm"
        out.append(MetricResult(
            name=name, metric=metric.name, kind="distribution", status=status, p_value=float(p_reg[-1]),
            effect=float(effect), ci=(float(ci_lo[-1]), float(ci_hi[-1])), n_baseline=float(n_b[-1]),
            n_canary=float(n_c[-1]), decided_at=decided, critical=metric.critical, alpha=a_test, detail=detail,
            series=Series(prep.looks, p_reg, ci_lo, ci_hi)))
    if metric.drift:
        out.append(_drift(prep, metric, counts, n_b, n_c, enough, a_test, names[-1]))
    return out


def _check_not_negative(prep: Prepared, metric: DistributionMetric, edges: NDArray[np.float64],
                        counts: NDArray[np.float64], floor: float) -> None:
    """Quantile tests compare ratios (canary <= (1 + tolerance) x baseline), which below 0 turn round: two
    identical arms of negative scores would read as a regression. Values below 0 are refused."""
    # Raw samples: the floor is the smallest sample. Buckets: a count in a bucket whose upper edge is below 0
    # (the floor of buckets is 0 or -inf, which says nothing: a first bucket of le="0" is common for sizes).
    filled = counts.reshape(-1, counts.shape[-1]).any(axis=0)
    negative = filled & (edges < 0)
    lowest = floor if math.isfinite(floor) and floor < 0 else (
        float(edges[negative][0]) if negative.any() else 0.0)
    if lowest < 0:
        # The first sample below 0, or the first filled bucket whose upper edge is below 0.
        where = place_of(prep, lambda f: of_metric(f, metric.metric)
                       & (((f["value"] < 0) & f["le"].isna()) | ((f["le"] < 0) & (f["value"] > 0))))
        raise DataError(f"{where}: metric {metric.metric!r} ({metric.name}) has values below 0 (down to "
                        f"{lowest:.4g}); its quantile tests compare ratios, which need values >= 0. Shift the "
                        "values, or test the distribution with `drift: true` and `quantiles: []`")


def _interpolated_quantile(cum: NDArray[np.float64], edges: NDArray[np.float64], floor: float, q: float) -> float:
    """Point estimate of a quantile, linear inside its bucket (as PromQL's histogram_quantile): the first
    bucket starts at ``floor`` (at its upper edge if ``floor`` is -inf), the +Inf bucket answers its lower
    edge, and a histogram with the +Inf bucket alone has no estimate (NaN)."""
    import numpy as np

    n = cum[-1]
    if n <= 0:
        return math.nan
    j = int(np.searchsorted(cum, q * n, side="left"))
    j = min(j, len(edges) - 1)
    upper = edges[j]
    lower = edges[j - 1] if j > 0 else (floor if math.isfinite(floor) else upper)
    if not np.isfinite(upper):
        return float(lower) if j > 0 else math.nan
    below = cum[j - 1] if j > 0 else 0.0
    inside = cum[j] - below
    frac = (q * n - below) / inside if inside > 0 else 1.0
    return float(lower + (upper - lower) * frac)


# The chance, for each arm, that its empirical distribution strays from the true one by more than its DKW band.
_DOMINANCE_DELTA = 0.05


def distribution_test_names(metric: DistributionMetric) -> list[str]:
    """A distribution metric's tests: one per quantile ("latency p99"), then drift if configured."""
    return [f"{metric.name} p{quantile_label(q)}" for q in metric.quantiles] + (
        [f"{metric.name} drift"] if metric.drift else [])


def _better_everywhere(totals: NDArray[np.float64], direction: str) -> bool:
    """Whether the canary is clearly better and nowhere worse, for ``increase`` (higher values are worse;
    ``decrease`` mirrors it; never for ``either``): its share of values at or below every bucket boundary is
    at least the baseline's less the arms' sampling noise, and above it by more than that somewhere.

    ``totals`` holds each arm's samples per bucket (the export's, or the fine bins of raw samples), baseline
    first, in ascending order of value. The noise is the sum of the two arms' DKW bands at 95% (Massart
    1990): every boundary at once, since the sparse bins at the extremes differ by a stray sample (a canary
    0.9x as slow was rolled back 16 times in 20). Checked at the drift test's 10 groups' boundaries only, 6%
    of canary requests at 5 s, inside the pooled top group, read better everywhere and a 30x worse p99 was
    promoted; both are tests.
    """
    import numpy as np

    n_b, n_c = float(totals[0].sum()), float(totals[1].sum())
    if direction == "either" or n_b <= 0 or n_c <= 0:
        return False
    noise = sum(math.sqrt(math.log(2 / _DOMINANCE_DELTA) / (2 * n)) for n in (n_b, n_c))
    gain = np.cumsum(totals[1])[:-1] / n_c - np.cumsum(totals[0])[:-1] / n_b  # canary's extra share below
    if direction == "decrease":
        gain = -gain
    return bool(gain.size and gain.min() >= -noise and gain.max() > noise)


def _drift(prep: Prepared, metric: DistributionMetric, counts: NDArray[np.float64], n_b: NDArray[np.float64],
           n_c: NDArray[np.float64], enough: NDArray[np.bool_], alpha: float, name: str) -> MetricResult:
    """Equality in distribution: a product of rate-ratio e-processes, one per group of pooled buckets."""
    import numpy as np

    pooled = counts.sum(axis=(0, 1))
    # Groups of about equal pooled mass, chosen from the pooled (unlabelled) values only.
    share_cum = np.cumsum(pooled) / max(pooled.sum(), 1.0)
    group = np.minimum((share_cum * _DRIFT_GROUPS - 1e-9).astype(int), _DRIFT_GROUPS - 1)
    grouped = np.stack([counts[..., group == g].sum(axis=-1) for g in range(_DRIFT_GROUPS)], axis=-1)
    valid, share = canary_share(counts.sum(axis=-1))
    c = np.where(valid[:, None], grouped[:, 1, :], 0.0).T
    b = np.where(valid[:, None], grouped[:, 0, :], 0.0).T
    prior_share = float(np.clip(n_c[-1] / max(n_b[-1] + n_c[-1], 1.0), 1e-6, 1 - 1e-6))
    proc = rate_ratio_process(c, b, share[None, :], direction="either", prior_share=prior_share,
                              concentration=100.0, alpha=alpha, p_value_only=True)  # only log_e is read
    log_e = proc.log_e.sum(axis=0)
    p = p_from_log_e(log_e)
    hit = (p <= alpha) & enough
    first = first_hit(hit)
    detail = "reject-only; does not gate promotion"
    if first is not None and _better_everywhere(counts.sum(axis=0), metric.direction):
        # The test has no direction: a canary faster at every level of the pooled distribution changed it too,
        # and was rolled back beside its own passing quantiles (found by a review pass).
        first, detail = None, "changed, but better at every level of the distribution: not a regression"
    status = Status.REGRESSION if first is not None else Status.PENDING
    decided = float(prep.looks[first]) if first is not None else None
    nan = math.nan
    return MetricResult(name=name, metric=metric.name, kind="distribution", status=status, p_value=float(p[-1]),
                        effect=nan, ci=(nan, nan), n_baseline=float(n_b[-1]), n_canary=float(n_c[-1]),
                        decided_at=decided, critical=metric.critical, alpha=alpha, detail=detail,
                        gates_promotion=False, series=Series(prep.looks, p, np.full_like(p, nan), np.full_like(p, nan)))

