"""The judge: per-metric sequential tests, the SRM check and the overall PROMOTE / ROLLBACK / CONTINUE."""

from __future__ import annotations

import enum
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mlplat.analysis._config import CanaryConfig, DistributionMetric, MeanMetric, RateMetric, quantile_label
from mlplat.analysis._quantile_ab import quantile_order_log_e, quantile_ratio_bound
from mlplat.analysis._rate_interval import cs_grid_points, rate_confidence_sequence
from mlplat.analysis._readers import CanaryData, csv_place
from mlplat.analysis._sequential import (
    dirichlet_multinomial_test,
    mean_confidence_sequence,
    mean_exceedance_p,
    p_from_log_e,
    rate_ratio_process,
    running_lag1,
)
from mlplat.errors import DataError
from mlplat.units import format_change, format_exact

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    from numpy.typing import NDArray

__all__ = ["CanaryResult", "MetricResult", "SrmResult", "Status", "Verdict", "analyze"]

# Raw samples are binned on a fine grid before the quantile sequences: 2048 log-spaced bins put the
# quantisation below 1% of the value for four decades of latency, well inside any useful tolerance.
_FINE_BINS = 2048
_DRIFT_GROUPS = 10


class Verdict(enum.StrEnum):
    """The overall decision; the CLI exit code follows it (0, 1, 3)."""

    PROMOTE = "PROMOTE"
    ROLLBACK = "ROLLBACK"
    CONTINUE = "CONTINUE"


class Status(enum.StrEnum):
    """One test's state at the last look."""

    REGRESSION = "REGRESSION"
    PASS = "PASS"
    NO_DATA = "NO_DATA"
    PENDING = "PENDING"


@dataclass(frozen=True)
class Series:
    """A test's path over the looks, for plots: anytime p-values and the confidence sequence."""

    times: NDArray[np.float64]
    p_value: NDArray[np.float64]
    ci_low: NDArray[np.float64]
    ci_high: NDArray[np.float64]


@dataclass(frozen=True)
class MetricResult:
    """One sequential test of one metric (a rate, one quantile, drift, or a mean)."""

    name: str
    metric: str
    kind: str
    status: Status
    p_value: float
    effect: float
    ci: tuple[float, float]
    n_baseline: float
    n_canary: float
    decided_at: float | None
    critical: bool
    alpha: float
    detail: str
    gates_promotion: bool = True
    series: Series | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "metric": self.metric, "kind": self.kind, "status": self.status.value,
                "p_value": self.p_value, "effect": self.effect, "ci": list(self.ci),
                "n_baseline": self.n_baseline, "n_canary": self.n_canary, "decided_at": self.decided_at,
                "critical": self.critical, "alpha": self.alpha, "detail": self.detail}


@dataclass(frozen=True)
class SrmResult:
    """Sample-ratio mismatch: the observed canary share of requests against the configured one."""

    p_value: float
    observed_share: float
    expected_share: float
    alpha: float
    n_baseline: float
    n_canary: float

    @property
    def mismatch(self) -> bool:
        return self.p_value <= self.alpha

    def to_dict(self) -> dict[str, Any]:
        return {"p_value": self.p_value, "observed_share": self.observed_share,
                "expected_share": self.expected_share, "alpha": self.alpha, "mismatch": self.mismatch,
                "n_baseline": self.n_baseline, "n_canary": self.n_canary}


@dataclass(frozen=True)
class CanaryResult:
    """The verdict with its reasons, the alpha split, the SRM check and every test."""

    decision: Verdict
    reasons: tuple[str, ...]
    alpha: float
    alpha_split: str
    srm: SrmResult | None
    metrics: tuple[MetricResult, ...]
    start: float | None
    at: float | None
    elapsed: float
    warnings: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"decision": self.decision.value, "reasons": list(self.reasons), "alpha": self.alpha,
                "alpha_split": self.alpha_split, "srm": None if self.srm is None else self.srm.to_dict(),
                "metrics": [m.to_dict() for m in self.metrics], "start": self.start, "at": self.at,
                "elapsed_s": self.elapsed, "warnings": list(self.warnings)}

    def __rich__(self) -> Any:
        # The tables are drawn by the CLI (library code does not import rich); rich calls this only when
        # it prints the result, so rich is already loaded then.
        from mlplat.cli.canary import render_result

        return render_result(self)


# --------------------------------------------------------------------------------------------- data prep


@dataclass
class _Prepared:
    frame: pd.DataFrame
    looks: NDArray[np.float64]
    warnings: list[str]
    source: str
    csv_paths: tuple[str, ...]
    # _counts results by (metric, nan_policy): twenty rate metrics over one `requests` column would
    # otherwise filter and group the whole frame twenty-one times. The arrays are read-only.
    counts: dict[tuple[str, str], NDArray[np.float64] | None] = field(default_factory=dict)


def _prepare(data: CanaryData, config: CanaryConfig, at: float | None) -> _Prepared:
    import numpy as np

    frame = data.frame
    warnings = list(data.warnings)
    arms = {config.arms.baseline, config.arms.canary}
    unknown = sorted(set(map(str, frame["arm"].unique())) - arms)
    if unknown:
        where = csv_place(data.csv_paths, lambda f: ~f["arm"].astype(str).isin(arms)) or data.source
        raise DataError(f"{where}: unknown arm name(s) {', '.join(map(repr, unknown))}; expected "
                        f"{config.arms.baseline!r} or {config.arms.canary!r} (set arms: in the config)")
    if len(frame) and not frame["timestamp"].is_monotonic_increasing:
        # Exports list series one after another; only a series going back in time is "unsorted".
        back = frame.groupby(["metric", "arm", "le"], dropna=False, sort=False)["timestamp"].diff() < 0
        if back.any():
            warnings.append(f"{int(back.sum())} row(s) had timestamps out of order; sorted them")
        frame = frame.sort_values("timestamp", kind="stable", ignore_index=True)
    if at is not None:
        frame = frame[frame["timestamp"] <= at]
    looks = np.unique(frame["timestamp"].to_numpy(dtype=float))
    return _Prepared(frame=frame, looks=looks, warnings=warnings, source=data.source, csv_paths=data.csv_paths)


def _where(prep: _Prepared, match: Callable[[pd.DataFrame], Any]) -> str:
    """Where an error found after reading is: ``file:line`` of the first row ``match`` picks in a CSV export
    (read again, on this error path only), else the export's name."""
    return csv_place(prep.csv_paths, match) or prep.source


def _of_metric(f: pd.DataFrame, metric: str) -> Any:
    """The rows of ``metric`` in a re-read export (its columns are categorical: compared as text)."""
    return f["metric"].astype(str) == metric


def _row_match(metric: str, timestamp: float, arm: str) -> Callable[[pd.DataFrame], Any]:
    """A ``match`` for :func:`_where`: the rows of ``metric`` at ``timestamp`` in ``arm``."""
    return lambda f: _of_metric(f, metric) & (f["timestamp"] == timestamp) & (f["arm"].astype(str) == arm)


def _apply_nan(values: pd.DataFrame, policy: str, name: str, prep: _Prepared) -> pd.DataFrame:
    nan = values["value"].isna()
    if not nan.any():
        return values
    if policy == "fail":
        metric = str(values["metric"].iloc[0])
        where = _where(prep, lambda f: _of_metric(f, metric) & f["value"].isna())
        raise DataError(f"{where}: metric {name!r} has {int(nan.sum())} NaN value(s) and nan_policy is 'fail'")
    if policy == "zero":
        return values.assign(value=values["value"].fillna(0.0))
    return values[~nan]


def _counts(prep: _Prepared, config: CanaryConfig, name: str, policy: str) -> NDArray[np.float64] | None:
    """Per-look counts of one counter metric, shape (looks, 2) as [baseline, canary]; None if absent.

    Computed once per (name, policy) and kept on ``prep``; the array is read-only, as callers share it.
    """
    key = (name, policy)
    if key not in prep.counts:
        prep.counts[key] = _count_table(prep, config, name, policy)
    return prep.counts[key]


#: The largest count a row may hold: 2^53, past which a float no longer counts whole events (identical
#: arms of 5e17 per bucket read as drift, p = 4e-223).
MAX_COUNT = 2.0**53
_COUNT_RULE = f"finite, >= 0 and at most 2^53 ({MAX_COUNT:.4g}, past which double precision loses whole events)"


def _bad_counts(values: NDArray[np.float64]) -> NDArray[np.bool_]:
    """The counts (of events, requests or a bucket) that break :data:`_COUNT_RULE`."""
    import numpy as np

    return ~np.isfinite(values) | (values < 0) | (values > MAX_COUNT)


def _warn_once(prep: _Prepared, warning: str) -> None:
    # The count cache is per nan_policy: one counter read under two policies (a rate metric's and the SRM
    # check's "drop") comes to its warnings twice.
    if warning not in prep.warnings:
        prep.warnings.append(warning)


def _count_table(prep: _Prepared, config: CanaryConfig, name: str, policy: str) -> NDArray[np.float64] | None:
    import numpy as np

    f = prep.frame
    rows = f[(f["metric"] == name) & f["le"].isna()]
    if len(rows) == 0:
        return None
    rows = _apply_nan(rows, policy, name, prep)
    bad = _bad_counts(rows["value"].to_numpy())
    if bad.any():
        row = rows[bad].iloc[0]
        what = "negative" if row["value"] < 0 else "non-finite" if not np.isfinite(row["value"]) else "too large a"
        where = _where(prep, lambda f: _row_match(name, row["timestamp"], row["arm"])(f) & f["le"].isna()
                       & _bad_counts(f["value"].to_numpy()))
        raise DataError(f"{where}: metric {name!r}: {what} count {row['value']} at timestamp "
                        f"{format_exact(row['timestamp'])} ({row['arm']}); counts must be {_COUNT_RULE}")
    values = rows["value"].to_numpy(dtype=float)
    if (np.abs(values - np.round(values)) > 1e-6).any():
        _warn_once(prep, f"metric {name!r}: counts are not whole numbers, as Prometheus increase() gives (it "
                   "extrapolates to its window); extrapolated counts are scaled up by window / (window - scrape "
                   "interval), which raises the rate and SRM tests' false-alarm rate (12% at 2x, alpha 5%): keep "
                   "the query window and --step at 5 or more scrape intervals (docs/canary.md, Prometheus counts)")
    keys = ["timestamp", "arm"]
    if rows.duplicated(keys).any():
        n = int(rows.duplicated(keys).sum())
        _warn_once(prep, f"metric {name!r}: {n} duplicated (timestamp, arm) row(s) summed")
    table = rows.groupby(keys)["value"].sum().unstack("arm")
    table = table.reindex(index=prep.looks, columns=[config.arms.baseline, config.arms.canary]).fillna(0.0)
    out = np.asarray(table.to_numpy(dtype=float))
    out.flags.writeable = False
    return out


def _reported(prep: _Prepared, config: CanaryConfig, name: str) -> NDArray[np.bool_]:
    """Per look and arm (looks, 2), whether counter ``name`` has a value there (a row, not NaN).

    :func:`_counts` reads a gap as 0; this tells the two apart where a gap must not count as 0.
    """
    import numpy as np

    f = prep.frame
    rows = f[(f["metric"] == name) & f["le"].isna() & f["value"].notna()]
    table = (rows.groupby(["timestamp", "arm"], observed=True).size().unstack("arm")
             .reindex(index=prep.looks, columns=[config.arms.baseline, config.arms.canary]))
    return np.asarray(table.notna().to_numpy(), dtype=bool)


def _first(hit: NDArray[np.bool_]) -> int | None:
    import numpy as np

    return int(np.argmax(hit)) if hit.any() else None


def _status_from(p_reg: NDArray[np.float64], p_pass: NDArray[np.float64], enough: NDArray[np.bool_],
                 alpha: float, looks: NDArray[np.float64]) -> tuple[Status, float | None]:
    reg = _first((p_reg <= alpha) & enough)
    ok = _first((p_pass <= alpha) & enough)
    if reg is not None and (ok is None or reg <= ok):
        return Status.REGRESSION, float(looks[reg])
    if ok is not None:
        return Status.PASS, float(looks[ok])
    return Status.PENDING, None


def _sided(direction: str, tol: float,
           shown: Callable[[str, float, float], NDArray[np.float64]], alpha: float
           ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Regression and non-inferiority p-values from one-sided tests ``shown(relation, factor, alpha)``.

    ``shown("gt", f, a)`` is the anytime p-value for "canary > f x baseline"; ``"lt"`` the reverse.
    """
    import numpy as np

    if direction == "increase":
        return shown("gt", 1 + tol, alpha), shown("lt", 1 + tol, alpha)
    if direction == "decrease":
        return shown("lt", 1 - tol, alpha), shown("gt", 1 - tol, alpha)
    reg = np.minimum(1.0, 2 * np.minimum(shown("gt", 1 + tol, alpha / 2), shown("lt", 1 - tol, alpha / 2)))
    ok = np.minimum(1.0, 2 * np.maximum(shown("lt", 1 + tol, alpha / 2), shown("gt", 1 - tol, alpha / 2)))
    return reg, ok


# ------------------------------------------------------------------------------------------------- rate


def _rate(prep: _Prepared, config: CanaryConfig, metric: RateMetric, alpha: float) -> list[MetricResult]:
    import numpy as np

    events = _counts(prep, config, metric.events, metric.nan_policy)
    exposure = _counts(prep, config, metric.exposure, metric.nan_policy)
    if events is None or exposure is None or exposure.sum() == 0:
        missing = metric.events if events is None else metric.exposure
        return [_no_data(metric.name, metric.name, "rate", metric.critical, alpha,
                         f"no {missing!r} data" if events is None or exposure is None else "no requests")]
    over = events > exposure
    if over.any():  # a look without an exposure value is a gap the test skips (no share), not 0 requests
        over &= _reported(prep, config, metric.exposure)
    if over.any():
        t, arm = np.argwhere(over)[0]
        arm_name = (config.arms.baseline, config.arms.canary)[arm]
        where = _where(prep, lambda f: _row_match(metric.events, prep.looks[t], arm_name)(f) & f["le"].isna())
        raise DataError(f"{where}: metric {metric.name!r}: {metric.events} ({events[t, arm]:g}) greater "
                        f"than {metric.exposure} ({exposure[t, arm]:g}) at timestamp "
                        f"{format_exact(prep.looks[t])} ({arm_name})")
    valid, share = _canary_share(exposure)
    b = np.where(valid, events[:, 0], 0.0)
    c = np.where(valid, events[:, 1], 0.0)
    k = metric.concentration
    prior = config.traffic_share

    # One pass per boundary gives both one-sided p-values, so increase/decrease need one pass and either
    # two. The interval comes from rate_confidence_sequence below, so the passes skip their own.
    passes: dict[float, Any] = {}

    def shown(relation: str, factor: float, a: float) -> NDArray[np.float64]:
        if factor not in passes:
            passes[factor] = rate_ratio_process(c, b, share, null_ratio=factor, prior_share=prior,
                                                concentration=k, alpha=alpha, direction="increase",
                                                sequence=False)
        proc = passes[factor]
        return proc.p_value if relation == "gt" else proc.pass_p_value

    p_reg, p_pass = _sided(metric.direction, metric.tolerance, shown, alpha)
    estimate = next(iter(passes.values())).ratio
    # The reported interval sums the prior where the likelihood is: on the tests' grid, with many events,
    # the set would stop narrowing at about the grid's step around the estimate.
    ci_low, ci_high = rate_confidence_sequence(c, b, share, prior_share=prior, concentration=k, alpha=alpha,
                                               grid_points=cs_grid_points(len(c)))
    cum_events = np.cumsum(b + c)
    status, decided = _status_from(p_reg, p_pass, cum_events >= metric.min_events, alpha, prep.looks)
    n_events = float(cum_events[-1])
    detail = f"{n_events:.0f} events ({c.sum():.0f} canary)"
    if status is Status.PENDING and n_events < metric.min_events:
        detail += f"; needs min_events {metric.min_events}"
    return [MetricResult(
        name=metric.name, metric=metric.name, kind="rate", status=status, p_value=float(p_reg[-1]),
        effect=float(estimate[-1] - 1), ci=(float(ci_low[-1] - 1), float(ci_high[-1] - 1)),
        n_baseline=float(exposure[:, 0].sum()), n_canary=float(exposure[:, 1].sum()), decided_at=decided,
        critical=metric.critical, alpha=alpha, detail=detail,
        series=Series(prep.looks, p_reg, ci_low - 1, ci_high - 1))]


def _canary_share(per_look: NDArray[np.float64]) -> tuple[NDArray[np.bool_], NDArray[np.float64]]:
    """Per look, from counts (looks, 2): whether both arms have some, and the canary's share (0.5 if not)."""
    import numpy as np

    total = per_look.sum(axis=1)
    valid = (per_look[:, 0] > 0) & (per_look[:, 1] > 0)
    return valid, np.where(valid, per_look[:, 1] / np.where(total > 0, total, 1), 0.5)


def _no_data(name: str, metric: str, kind: str, critical: bool, alpha: float, detail: str) -> MetricResult:
    nan = math.nan
    return MetricResult(name=name, metric=metric, kind=kind, status=Status.NO_DATA, p_value=1.0, effect=nan,
                        ci=(nan, nan), n_baseline=0.0, n_canary=0.0, decided_at=None, critical=critical,
                        alpha=alpha, detail=detail)


# ----------------------------------------------------------------------------------------- distribution


def _histograms(prep: _Prepared, config: CanaryConfig, metric: DistributionMetric
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
    rows = _apply_nan(rows, metric.nan_policy, metric.name, prep)
    if len(rows) == 0:
        return None  # every value was NaN and nan_policy dropped them: no data, as with no rows at all
    has_le = rows["le"].notna()
    if has_le.any() and not has_le.all():
        def other_kind(f: pd.DataFrame) -> Any:  # the first row unlike the metric's first row in the file
            ours, bucket = _of_metric(f, metric.metric), f["le"].notna()
            return ours & (bucket != bucket[ours].iloc[0]) if ours.any() else ours

        where = _where(prep, other_kind)
        raise DataError(f"{where}: metric {metric.metric!r} mixes raw samples and histogram buckets (le)")
    arm_idx = (rows["arm"] == config.arms.canary).to_numpy().astype(np.intp)
    look_idx = np.searchsorted(prep.looks, rows["timestamp"].to_numpy())
    values = rows["value"].to_numpy(dtype=float)
    if has_le.any():
        arms = (config.arms.baseline, config.arms.canary)
        edges, counts = _bucket_counts(prep, metric, arms, rows, arm_idx, look_idx, values)
        return edges, counts, (0.0 if edges[0] > 0 else -math.inf)
    _check_finite(rows, prep, metric.metric, "samples")
    lo, hi = float(values.min()), float(values.max())
    edges, bins = _fine_bins(values, lo, hi)
    flat = (look_idx * 2 + arm_idx) * _FINE_BINS + bins
    counts = np.bincount(flat, minlength=len(prep.looks) * 2 * _FINE_BINS).astype(float)
    return edges, counts.reshape(len(prep.looks), 2, _FINE_BINS), lo


def _fine_bins(values: NDArray[np.float64], lo: float, hi: float) -> tuple[NDArray[np.float64], NDArray[np.intp]]:
    """_FINE_BINS edges over raw samples from ``lo`` to ``hi``, and each sample's bin (bin 0 holds ``lo``).

    Log-spaced when the samples are >= 0 and span more than a hair, so the quantisation is relative (under
    1%); samples of exactly 0 get the first bin to themselves. Linear edges for samples below 0. A single
    0 among latencies used to switch everything to linear edges, 15 ms wide for 30 s of range: a p50 of
    50 ms was quantised by 30% and a decided rollback went back to PENDING.
    """
    import numpy as np

    positive = values[values > 0] if lo == 0 else values
    start = float(positive.min()) if lo >= 0 and len(positive) else math.nan
    if not (start > 0 and hi / start > 1.0001):  # NaN: below 0, or nothing above 0
        edges = np.linspace(lo, hi if hi > lo else lo + 1.0, _FINE_BINS)
        edges[-1] = max(edges[-1], hi)
        return edges, np.minimum(np.searchsorted(edges, values, side="left"), _FINE_BINS - 1)
    zeros = int(lo == 0)  # a first bin for the zeros, then log-spaced bins from the smallest positive sample
    n = _FINE_BINS - zeros
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


#: The lag-1 autocorrelation of a mean metric's differences above which the long-run variance no longer
#: keeps the false-alarm rate at alpha (seeded AR(1) A/A runs, docs/canary.md).
STRONG_LAG1 = 0.5

#: The largest magnitude a sample or gauge may have. The mean test sums squares, and 1e308 (finite) would
#: overflow them into NaN bounds; no real metric comes near 1e150.
MAX_VALUE = 1e150


def _check_finite(rows: pd.DataFrame, prep: _Prepared, name: str, what: str) -> None:
    """Raise :class:`DataError` naming the first infinite or huge value (NaN has been through nan_policy)."""
    import numpy as np

    values = rows["value"].to_numpy(dtype=float)
    bad = np.abs(values) > MAX_VALUE  # False for NaN
    if bad.any():
        row = rows[bad].iloc[0]
        where = _where(prep, lambda f: _row_match(name, row["timestamp"], row["arm"])(f)
                       & (f["value"].abs() > MAX_VALUE))
        raise DataError(f"{where}: metric {name!r}: {what} must be finite (NaN follows nan_policy) and within "
                        f"±{MAX_VALUE:g}, got {row['value']} at timestamp {format_exact(row['timestamp'])} "
                        f"({row['arm']}); {int(bad.sum())} such value(s)")


def _bucket_counts(prep: _Prepared, metric: DistributionMetric, arms: tuple[str, str], rows: pd.DataFrame,
                   arm_idx: NDArray[np.intp], look_idx: NDArray[np.intp], values: NDArray[np.float64]
                   ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    import numpy as np

    bad = _bad_counts(values)
    if bad.any():
        row = rows[bad].iloc[0]
        where = _where(prep, lambda f: _row_match(metric.metric, row["timestamp"], row["arm"])(f)
                       & f["le"].notna() & _bad_counts(f["value"].to_numpy()))
        raise DataError(f"{where}: metric {metric.metric!r}: bucket count {row['value']} at timestamp "
                        f"{format_exact(row['timestamp'])} ({row['arm']}); bucket counts must be {_COUNT_RULE}")
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
        where = _where(prep, lambda f: _row_match(metric.metric, prep.looks[t], arm_name)(f)
                       & (f["le"] == edges[j + 1]))
        raise DataError(f"{where}: metric {metric.metric!r}: histogram buckets are not cumulative at "
                        f"timestamp {format_exact(prep.looks[t])} ({arm_name}): "
                        f"le={edges[j + 1]:g} holds {filled[t, arm, j + 1]:g} < {filled[t, arm, j]:g} at "
                        f"le={edges[j]:g}")
    per_bucket = np.diff(filled, axis=-1, prepend=0.0)
    return edges, per_bucket


def _common_edges(prep: _Prepared, metric: DistributionMetric, edges: NDArray[np.float64],
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


def _quantile_p(cum_c: NDArray[np.float64], cum_b: NDArray[np.float64], edges: NDArray[np.float64], floor: float,
                q: float, relation: str, factor: float, alpha_opt: float) -> NDArray[np.float64]:
    """Anytime p-value that the canary's quantile is above (``gt``) or below (``lt``) ``factor`` times the
    baseline's, from one e-value over both arms (``_quantile_ab.py``)."""
    if relation == "gt":
        log_e = quantile_order_log_e(cum_c, cum_b, edges, q, factor, floor=floor, alpha_opt=alpha_opt)
    else:  # canary < f x baseline is baseline > canary / f
        log_e = quantile_order_log_e(cum_b, cum_c, edges, q, 1 / factor, floor=floor, alpha_opt=alpha_opt)
    return p_from_log_e(log_e)


def _distribution(prep: _Prepared, config: CanaryConfig, metric: DistributionMetric,
                  alpha: float) -> list[MetricResult]:
    import numpy as np

    names = _test_names(metric)
    a_test = alpha / len(names)
    hist = _histograms(prep, config, metric)
    if hist is None:
        return [_no_data(n, metric.name, "distribution", metric.critical, a_test, f"no {metric.metric!r} data")
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
            return _quantile_p(cum_c, cum_b, edges, floor, q, relation, factor, a_test / 2)

        p_reg, p_pass = _sided(metric.direction, metric.tolerance, shown, a_test)
        status, decided = _status_from(p_reg, p_pass, enough, a_test, prep.looks)
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


def _check_not_negative(prep: _Prepared, metric: DistributionMetric, edges: NDArray[np.float64],
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
        where = _where(prep, lambda f: _of_metric(f, metric.metric)
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


def _test_names(metric: DistributionMetric) -> list[str]:
    """A distribution metric's tests: one per quantile ("latency p99"), then drift if configured."""
    return [f"{metric.name} p{quantile_label(q)}" for q in metric.quantiles] + (
        [f"{metric.name} drift"] if metric.drift else [])


def _drift(prep: _Prepared, metric: DistributionMetric, counts: NDArray[np.float64], n_b: NDArray[np.float64],
           n_c: NDArray[np.float64], enough: NDArray[np.bool_], alpha: float, name: str) -> MetricResult:
    """Equality in distribution: a product of rate-ratio e-processes, one per group of pooled buckets."""
    import numpy as np

    pooled = counts.sum(axis=(0, 1))
    # Groups of about equal pooled mass, chosen from the pooled (unlabelled) values only.
    share_cum = np.cumsum(pooled) / max(pooled.sum(), 1.0)
    group = np.minimum((share_cum * _DRIFT_GROUPS - 1e-9).astype(int), _DRIFT_GROUPS - 1)
    grouped = np.stack([counts[..., group == g].sum(axis=-1) for g in range(_DRIFT_GROUPS)], axis=-1)
    valid, share = _canary_share(counts.sum(axis=-1))
    c = np.where(valid[:, None], grouped[:, 1, :], 0.0).T
    b = np.where(valid[:, None], grouped[:, 0, :], 0.0).T
    prior_share = float(np.clip(n_c[-1] / max(n_b[-1] + n_c[-1], 1.0), 1e-6, 1 - 1e-6))
    proc = rate_ratio_process(c, b, share[None, :], direction="either", prior_share=prior_share,
                              concentration=100.0, alpha=alpha, p_value_only=True)  # only log_e is read
    log_e = proc.log_e.sum(axis=0)
    p = p_from_log_e(log_e)
    hit = (p <= alpha) & enough
    first = _first(hit)
    status = Status.REGRESSION if first is not None else Status.PENDING
    decided = float(prep.looks[first]) if first is not None else None
    detail = "reject-only; does not gate promotion"
    nan = math.nan
    return MetricResult(name=name, metric=metric.name, kind="distribution", status=status, p_value=float(p[-1]),
                        effect=nan, ci=(nan, nan), n_baseline=float(n_b[-1]), n_canary=float(n_c[-1]),
                        decided_at=decided, critical=metric.critical, alpha=alpha, detail=detail,
                        gates_promotion=False, series=Series(prep.looks, p, np.full_like(p, nan), np.full_like(p, nan)))


# ------------------------------------------------------------------------------------------------- mean


def _mean(prep: _Prepared, config: CanaryConfig, metric: MeanMetric, alpha: float) -> list[MetricResult]:
    import numpy as np

    f = prep.frame
    rows = f[(f["metric"] == metric.metric) & f["le"].isna()]
    if len(rows) == 0:
        return [_no_data(metric.name, metric.name, "mean", metric.critical, alpha, f"no {metric.metric!r} data")]
    rows = _apply_nan(rows, metric.nan_policy, metric.name, prep)
    _check_finite(rows, prep, metric.metric, "gauges")
    table = rows.groupby(["timestamp", "arm"])["value"].mean().unstack("arm")
    table = table.reindex(columns=[config.arms.baseline, config.arms.canary]).dropna()
    if len(table) == 0:
        return [_no_data(metric.name, metric.name, "mean", metric.critical, alpha, "no interval with both arms")]
    base = table.iloc[:, 0].to_numpy(dtype=float)
    can = table.iloc[:, 1].to_numpy(dtype=float)
    times = table.index.to_numpy(dtype=float)
    d = can - base
    t = np.arange(1, len(d) + 1, dtype=float)
    mean_b = np.cumsum(base) / t
    burn = metric.min_samples

    def shown(relation: str, factor: float, a: float) -> NDArray[np.float64]:
        # "canary > factor x baseline" is "mean difference > (factor - 1) |baseline mean|".
        margin = (factor - 1) * np.abs(mean_b)
        if relation == "gt":
            return mean_exceedance_p(d, margin, a, burn_in=burn, autocorrelated=True)
        return mean_exceedance_p(-d, -margin, a, burn_in=burn, autocorrelated=True)

    p_reg, p_pass = _sided(metric.direction, metric.tolerance, shown, alpha)
    # Gauges drift together from one interval to the next (the same pods, the same load): the variance is
    # the AR(1) long-run one, and a strong autocorrelation, which even that undercovers, is reported.
    mean_d, lo, hi = mean_confidence_sequence(d, alpha, burn_in=burn, autocorrelated=True)
    lag1 = float(running_lag1(d)[-1]) if len(d) >= 20 else math.nan
    if lag1 > STRONG_LAG1:
        prep.warnings.append(f"metric {metric.name!r}: interval differences are strongly autocorrelated (lag-1 "
                             f"r = {lag1:.2f}); the mean test allows for it, but above r = {STRONG_LAG1} its "
                             "false-alarm rate exceeds alpha (8% at 0.7, alpha 5%): lengthen the interval")
    scale = np.where(np.abs(mean_b) > 0, np.abs(mean_b), np.nan)
    ci_lo = np.nan_to_num(lo / scale, nan=-np.inf)
    ci_hi = np.nan_to_num(hi / scale, nan=np.inf)
    enough = t >= metric.min_samples
    status, decided = _status_from(p_reg, p_pass, enough, alpha, times)
    detail = f"{base.mean():.4g} vs {can.mean():.4g}, {len(d)} intervals"
    if status is Status.PENDING and not enough[-1]:
        detail += f"; needs min_samples {metric.min_samples}"
    return [MetricResult(
        name=metric.name, metric=metric.name, kind="mean", status=status, p_value=float(p_reg[-1]),
        effect=float(mean_d[-1] / scale[-1]), ci=(float(ci_lo[-1]), float(ci_hi[-1])),
        n_baseline=float(len(base)), n_canary=float(len(can)), decided_at=decided, critical=metric.critical,
        alpha=alpha, detail=detail, series=Series(times, p_reg, ci_lo, ci_hi))]


# -------------------------------------------------------------------------------------------------- SRM


def _srm(prep: _Prepared, config: CanaryConfig) -> SrmResult | None:
    import numpy as np

    counts = _counts(prep, config, config.srm.metric, "drop")
    if counts is None:
        return None
    # A look where an arm has no row (a scrape not in yet, a gap, NaN) is not a look with 0 requests: read
    # as 0, one missing canary row at 60k requests a minute was a mismatch at p = 4e-11 in A/A runs.
    # A row that says 0 is an observation and stays.
    reported = _reported(prep, config, config.srm.metric).all(axis=1)
    if not reported.all():
        gaps = int((~reported).sum())
        prep.warnings.append(f"SRM: {gaps} look(s) where an arm has no {config.srm.metric!r} value were left out "
                             "(a gap is not zero requests)")
    counts = counts[reported]
    if counts.sum() == 0:
        return None
    cum = np.cumsum(counts, axis=0)
    s = config.traffic_share
    p = dirichlet_multinomial_test(cum, [1 - s, s], config.srm.concentration)
    total = cum[-1].sum()
    return SrmResult(p_value=float(p[-1]), observed_share=float(cum[-1, 1] / total), expected_share=s,
                     alpha=config.srm.alpha, n_baseline=float(cum[-1, 0]), n_canary=float(cum[-1, 1]))


# ------------------------------------------------------------------------------------------------ judge


def analyze(data: CanaryData, config: CanaryConfig, *, at: float | None = None,
            start: float | None = None) -> CanaryResult:
    """Run every configured test on ``data`` up to time ``at`` and decide PROMOTE, ROLLBACK or CONTINUE.

    Each metric gets ``(alpha - srm.alpha) / len(metrics)`` (Bonferroni), split again across a
    distribution metric's quantiles and drift test, so the family-wise false-rollback rate under
    continuous monitoring stays at most ``alpha``. No data is never a pass.

    References
    ----------
    M. Lindon and A. Malek (2022). Anytime-valid inference for multinomial count data. NeurIPS 2022.
    S. Howard and A. Ramdas (2022). Sequential estimation of quantiles with applications to A/B-testing
    and best-arm identification. Bernoulli 28(3).
    I. Waudby-Smith, D. Arbour, R. Sinha, E. H. Kennedy and A. Ramdas (2021). Time-uniform central limit
    theory and asymptotic confidence sequences. arXiv:2103.06476.

    Examples
    --------
    >>> import pandas as pd
    >>> from mlplat.analysis import CanaryConfig, CanaryData
    >>> cfg = CanaryConfig.model_validate({"metrics": [{"name": "errors", "kind": "rate", "events": "errors"}]})
    >>> rows = [(60 * t, arm, m, v) for t in range(1, 31) for arm, m, v in
    ...         [("baseline", "requests", 9500), ("canary", "requests", 500),
    ...          ("baseline", "errors", 10), ("canary", "errors", 5)]]
    >>> frame = pd.DataFrame(rows, columns=["timestamp", "arm", "metric", "value"]).assign(le=float("nan"))
    >>> analyze(CanaryData(frame, "demo"), cfg).decision.value
    'ROLLBACK'
    """
    prep = _prepare(data, config, at)
    alpha_m = config.metric_alpha()
    split = (f"SRM {config.srm.alpha:g}; " if config.srm.enabled else "") + (
        f"{alpha_m:.4g} per metric (Bonferroni over {len(config.metrics)} metric(s)), "
        "split again across a distribution metric's tests")
    if len(prep.looks) == 0:
        results = tuple(r for m in config.metrics for r in _empty(m, alpha_m))
        why = "the export is empty"
        if len(data.frame) and at is not None:  # --at cut every row
            first = float(data.frame["timestamp"].min())
            why = f"nothing in the export is at or before --at {format_exact(at)} (it starts at {format_exact(first)})"
        return CanaryResult(decision=Verdict.CONTINUE, reasons=(f"no data: {why}; no data is never a pass",),
                            alpha=config.alpha, alpha_split=split, srm=None, metrics=results,
                            start=start, at=at, elapsed=0.0, warnings=tuple(prep.warnings))
    results_list: list[MetricResult] = []
    for metric in config.metrics:
        if isinstance(metric, RateMetric):
            results_list += _rate(prep, config, metric, alpha_m)
        elif isinstance(metric, DistributionMetric):
            results_list += _distribution(prep, config, metric, alpha_m)
        else:
            results_list += _mean(prep, config, metric, alpha_m)
    srm = _srm(prep, config) if config.srm.enabled else None
    first = float(prep.looks[0]) if start is None else start
    step = float(prep.looks[1] - prep.looks[0]) if len(prep.looks) > 1 else 0.0
    elapsed = float(prep.looks[-1]) - first + step
    decision, reasons = _decide(config, tuple(results_list), srm, elapsed)
    return CanaryResult(decision=decision, reasons=tuple(reasons), alpha=config.alpha, alpha_split=split, srm=srm,
                        metrics=tuple(results_list), start=first, at=float(prep.looks[-1]), elapsed=elapsed,
                        warnings=tuple(prep.warnings))


def _empty(metric: RateMetric | DistributionMetric | MeanMetric, alpha: float) -> list[MetricResult]:
    if isinstance(metric, DistributionMetric):
        names = _test_names(metric)
        a = alpha / len(names)
        return [_no_data(n, metric.name, metric.kind, metric.critical, a, "no data") for n in names]
    return [_no_data(metric.name, metric.name, metric.kind, metric.critical, alpha, "no data")]


def _decide(config: CanaryConfig, results: Sequence[MetricResult], srm: SrmResult | None,
            elapsed: float) -> tuple[Verdict, list[str]]:
    reasons: list[str] = []
    if srm is not None and srm.mismatch:
        reasons.append(f"sample ratio mismatch: the comparison is not valid (canary share "
                       f"{srm.observed_share:.4f}, configured {srm.expected_share:.4f}, p = {srm.p_value:.3g})")
    regressed = [r for r in results if r.status is Status.REGRESSION]
    critical = [r for r in regressed if r.critical]
    for r in critical:
        reasons.append(f"critical regression: {r.name} (effect {format_change(r.effect)}, p = {r.p_value:.3g})")
    noncritical = sorted({r.metric for r in regressed if not r.critical})
    if len(noncritical) >= config.max_noncritical_failures:
        reasons.append(f"{len(noncritical)} non-critical metric(s) regressed ({', '.join(noncritical)}), "
                       f"max_noncritical_failures is {config.max_noncritical_failures}")
    if reasons:
        return Verdict.ROLLBACK, reasons
    for name in noncritical:
        reasons.append(f"non-critical regression tolerated: {name}")
    gating = [r for r in results if r.gates_promotion]
    if gating and all(r.status is Status.PASS for r in gating):
        return Verdict.PROMOTE, [*reasons, "every metric passed: non-inferiority shown within its tolerance"]
    no_data = [r.name for r in results if r.status is Status.NO_DATA]
    pending = [r.name for r in gating if r.status is Status.PENDING]
    timed_out = elapsed >= config.max_duration
    if timed_out and config.promote_on_timeout and not no_data and not regressed and all(
            "needs min_" not in r.detail for r in results):
        return Verdict.PROMOTE, [*reasons, "max_duration reached with enough data and no regression "
                                 "(promote_on_timeout: true)"]
    if no_data:
        reasons.append(f"no data for {', '.join(no_data)}: no data is never a pass")
    if pending:
        reasons.append(f"not enough evidence yet for {', '.join(pending)}")
    if timed_out:
        reasons.append("max_duration reached without a decision; promote_on_timeout is false" if not
                       config.promote_on_timeout else "max_duration reached but some metric lacks data")
    return Verdict.CONTINUE, reasons
