"""The export as the judge reads it: sorted, cut at ``--at``, with per-look counts and the place of a bad row.

Every error found after reading names ``file:line`` of the first offending row (:func:`place_of`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mlplat.analysis._config import CanaryConfig
from mlplat.analysis._readers import CanaryData, csv_place
from mlplat.errors import DataError
from mlplat.units import format_exact

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    from numpy.typing import NDArray


@dataclass
class Prepared:
    """The export cut at ``--at``, its looks (distinct timestamps), warnings so far and per-look count cache."""

    frame: pd.DataFrame
    looks: NDArray[np.float64]
    warnings: list[str]
    source: str
    csv_paths: tuple[str, ...]
    # look_counts results by (metric, nan_policy): twenty rate metrics over one `requests` column would
    # otherwise filter and group the whole frame twenty-one times. The arrays are read-only.
    counts: dict[tuple[str, str], NDArray[np.float64] | None] = field(default_factory=dict)


def prepare(data: CanaryData, config: CanaryConfig, at: float | None) -> Prepared:
    """Check the arm names, sort series that go back in time (with a warning) and keep rows up to ``at``."""
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
    return Prepared(frame=frame, looks=looks, warnings=warnings, source=data.source, csv_paths=data.csv_paths)


def place_of(prep: Prepared, match: Callable[[pd.DataFrame], Any]) -> str:
    """Where an error found after reading is: ``file:line`` of the first row ``match`` picks in a CSV export
    (read again, on this error path only), else the export's name."""
    return csv_place(prep.csv_paths, match) or prep.source


def of_metric(f: pd.DataFrame, metric: str) -> Any:
    """The rows of ``metric`` in a re-read export (its columns are categorical: compared as text)."""
    return f["metric"].astype(str) == metric


def row_match(metric: str, timestamp: float, arm: str) -> Callable[[pd.DataFrame], Any]:
    """A ``match`` for :func:`place_of`: the rows of ``metric`` at ``timestamp`` in ``arm``."""
    return lambda f: of_metric(f, metric) & (f["timestamp"] == timestamp) & (f["arm"].astype(str) == arm)


def apply_nan(values: pd.DataFrame, policy: str, name: str, prep: Prepared) -> pd.DataFrame:
    nan = values["value"].isna()
    if not nan.any():
        return values
    if policy == "fail":
        metric = str(values["metric"].iloc[0])
        where = place_of(prep, lambda f: of_metric(f, metric) & f["value"].isna())
        raise DataError(f"{where}: metric {name!r} has {int(nan.sum())} NaN value(s) and nan_policy is 'fail'")
    if policy == "zero":
        return values.assign(value=values["value"].fillna(0.0))
    return values[~nan]


def look_counts(prep: Prepared, config: CanaryConfig, name: str, policy: str) -> NDArray[np.float64] | None:
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
COUNT_RULE = f"finite, >= 0 and at most 2^53 ({MAX_COUNT:.4g}, past which double precision loses whole events)"


def bad_counts(values: NDArray[np.float64]) -> NDArray[np.bool_]:
    """The counts (of events, requests or a bucket) that break :data:`COUNT_RULE`."""
    import numpy as np

    return ~np.isfinite(values) | (values < 0) | (values > MAX_COUNT)


def warn_once(prep: Prepared, warning: str) -> None:
    # The count cache is per nan_policy: one counter read under two policies (a rate metric's and the SRM
    # check's "drop") comes to its warnings twice.
    if warning not in prep.warnings:
        prep.warnings.append(warning)


def _count_table(prep: Prepared, config: CanaryConfig, name: str, policy: str) -> NDArray[np.float64] | None:
    import numpy as np

    f = prep.frame
    rows = f[(f["metric"] == name) & f["le"].isna()]
    if len(rows) == 0:
        return None
    rows = apply_nan(rows, policy, name, prep)
    bad = bad_counts(rows["value"].to_numpy())
    if bad.any():
        row = rows[bad].iloc[0]
        what = "negative" if row["value"] < 0 else "non-finite" if not np.isfinite(row["value"]) else "too large a"
        where = place_of(prep, lambda f: row_match(name, row["timestamp"], row["arm"])(f) & f["le"].isna()
                       & bad_counts(f["value"].to_numpy()))
        raise DataError(f"{where}: metric {name!r}: {what} count {row['value']} at timestamp "
                        f"{format_exact(row['timestamp'])} ({row['arm']}); counts must be {COUNT_RULE}")
    values = rows["value"].to_numpy(dtype=float)
    if (np.abs(values - np.round(values)) > 1e-6).any():
        warn_once(prep, f"metric {name!r}: counts are not whole numbers, as Prometheus increase() gives (it "
                   "extrapolates to its window); extrapolated counts are scaled up by window / (window - scrape "
                   "interval), which raises the rate and SRM tests' false-alarm rate (12% at 2x, alpha 5%): keep "
                   "the query window and --step at 5 or more scrape intervals (docs/canary.md, Prometheus counts)")
    keys = ["timestamp", "arm"]
    if rows.duplicated(keys).any():
        n = int(rows.duplicated(keys).sum())
        warn_once(prep, f"metric {name!r}: {n} duplicated (timestamp, arm) row(s) summed")
    table = rows.groupby(keys)["value"].sum().unstack("arm")
    table = table.reindex(index=prep.looks, columns=[config.arms.baseline, config.arms.canary]).fillna(0.0)
    out = np.asarray(table.to_numpy(dtype=float))
    out.flags.writeable = False
    return out


def reported_mask(prep: Prepared, config: CanaryConfig, name: str) -> NDArray[np.bool_]:
    """Per look and arm (looks, 2), whether counter ``name`` has a value there (a row, not NaN).

    :func:`look_counts` reads a gap as 0; this tells the two apart where a gap must not count as 0.
    """
    f = prep.frame
    return _cells(prep, config, f[(f["metric"] == name) & f["le"].isna() & f["value"].notna()])


def dropped_mask(prep: Prepared, config: CanaryConfig, name: str) -> NDArray[np.bool_]:
    """Per look and arm (looks, 2), whether counter ``name`` has rows there but all of them NaN: the cells
    ``nan_policy: drop`` empties. They carry no evidence; :func:`look_counts` reads them as 0."""
    f = prep.frame
    rows = f[(f["metric"] == name) & f["le"].isna()]
    return _cells(prep, config, rows) & ~_cells(prep, config, rows[rows["value"].notna()])


def _cells(prep: Prepared, config: CanaryConfig, rows: pd.DataFrame) -> NDArray[np.bool_]:
    """Per look and arm (looks, 2), whether ``rows`` has a row there."""
    import numpy as np

    table = (rows.groupby(["timestamp", "arm"], observed=True).size().unstack("arm")
             .reindex(index=prep.looks, columns=[config.arms.baseline, config.arms.canary]))
    return np.asarray(table.notna().to_numpy(), dtype=bool)


def canary_share(per_look: NDArray[np.float64]) -> tuple[NDArray[np.bool_], NDArray[np.float64]]:
    """Per look, from counts (looks, 2): whether both arms have some, and the canary's share (0.5 if not)."""
    import numpy as np

    total = per_look.sum(axis=1)
    valid = (per_look[:, 0] > 0) & (per_look[:, 1] > 0)
    return valid, np.where(valid, per_look[:, 1] / np.where(total > 0, total, 1), 0.5)


#: The largest magnitude a sample or gauge may have. The mean test sums squares, and 1e308 (finite) would
#: overflow them into NaN bounds; no real metric comes near 1e150.
MAX_VALUE = 1e150


def check_finite(rows: pd.DataFrame, prep: Prepared, name: str, what: str) -> None:
    """Raise :class:`DataError` naming the first infinite or huge value (NaN has been through nan_policy)."""
    import numpy as np

    values = rows["value"].to_numpy(dtype=float)
    bad = np.abs(values) > MAX_VALUE  # False for NaN
    if bad.any():
        row = rows[bad].iloc[0]
        where = place_of(prep, lambda f: row_match(name, row["timestamp"], row["arm"])(f)
                       & (f["value"].abs() > MAX_VALUE))
        raise DataError(f"{where}: metric {name!r}: {what} must be finite (NaN follows nan_policy) and within "
                        f"±{MAX_VALUE:g}, got {row['value']} at timestamp {format_exact(row['timestamp'])} "
                        f"({row['arm']}); {int(bad.sum())} such value(s)")

