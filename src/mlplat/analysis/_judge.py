"""The judge: rate and mean tests, the SRM check and the overall PROMOTE / ROLLBACK / CONTINUE.

Distribution metrics (quantiles, drift) are tested in ``_distribution.py``; the export is read through
``_prepared.py``; the result objects are in ``_results.py``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from mlplat.analysis._config import CanaryConfig, DistributionMetric, MeanMetric, RateMetric
from mlplat.analysis._distribution import distribution_test_names, judge_distribution
from mlplat.analysis._mean_sequence import mean_exceedance_p, relative_effect_sequence, running_lag1
from mlplat.analysis._prepared import (
    Prepared,
    apply_nan,
    canary_share,
    check_finite,
    dropped_mask,
    look_counts,
    place_of,
    prepare,
    reported_mask,
    row_match,
    warn_once,
)
from mlplat.analysis._rate_interval import cs_grid_points, rate_confidence_sequence
from mlplat.analysis._readers import CanaryData
from mlplat.analysis._results import (
    CanaryResult,
    MetricResult,
    Series,
    SrmResult,
    Status,
    Verdict,
    no_data_result,
    sided,
    status_from,
)
from mlplat.analysis._sequential import dirichlet_multinomial_test, rate_ratio_process
from mlplat.errors import DataError
from mlplat.units import format_change, format_exact

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

__all__ = ["CanaryResult", "MetricResult", "SrmResult", "Status", "Verdict", "analyze"]


# ------------------------------------------------------------------------------------------------- rate


def _rate(prep: Prepared, config: CanaryConfig, metric: RateMetric, alpha: float) -> list[MetricResult]:
    import numpy as np

    events = look_counts(prep, config, metric.events, metric.nan_policy)
    exposure = look_counts(prep, config, metric.exposure, metric.nan_policy)
    if events is None or exposure is None or exposure.sum() == 0:
        missing = metric.events if events is None else metric.exposure
        return [no_data_result(metric.name, metric.name, "rate", metric.critical, alpha,
                         f"no {missing!r} data" if events is None or exposure is None else "no requests")]
    over = events > exposure
    if over.any():  # a look without an exposure value is a gap the test skips (no share), not 0 requests
        over &= reported_mask(prep, config, metric.exposure)
    if over.any():
        t, arm = np.argwhere(over)[0]
        arm_name = (config.arms.baseline, config.arms.canary)[arm]
        where = place_of(prep, lambda f: row_match(metric.events, prep.looks[t], arm_name)(f) & f["le"].isna())
        raise DataError(f"{where}: metric {metric.name!r}: {metric.events} ({events[t, arm]:g}) greater "
                        f"than {metric.exposure} ({exposure[t, arm]:g}) at timestamp "
                        f"{format_exact(prep.looks[t])} ({arm_name})")
    valid, share = canary_share(exposure)
    if metric.nan_policy == "drop":
        # A look where an arm's count was NaN is not a look with 0 of them: read as 0, a canary whose error
        # counts were all NaN was promoted with an effect of -100%. Such looks are left out.
        dropped = (dropped_mask(prep, config, metric.events) | dropped_mask(prep, config, metric.exposure)).any(axis=1)
        if (dropped & valid).any():
            prep.warnings.append(f"metric {metric.name!r}: {int((dropped & valid).sum())} look(s) where an arm's "
                                 f"{metric.events} or {metric.exposure} count is NaN were left out (nan_policy: drop)")
            valid = valid & ~dropped
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

    p_reg, p_pass = sided(metric.direction, metric.tolerance, shown, alpha)
    estimate = next(iter(passes.values())).ratio
    # The reported interval sums the prior where the likelihood is: on the tests' grid, with many events,
    # the set would stop narrowing at about the grid's step around the estimate.
    ci_low, ci_high = rate_confidence_sequence(c, b, share, prior_share=prior, concentration=k, alpha=alpha,
                                               grid_points=cs_grid_points(len(c)))
    cum_events = np.cumsum(b + c)
    status, decided = status_from(p_reg, p_pass, cum_events >= metric.min_events, alpha, prep.looks)
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


# ------------------------------------------------------------------------------------------------- mean

#: The lag-1 autocorrelation of a mean metric's differences above which the long-run variance no longer
#: keeps the false-alarm rate at alpha (seeded AR(1) A/A runs, docs/canary.md).
STRONG_LAG1 = 0.5


def _mean(prep: Prepared, config: CanaryConfig, metric: MeanMetric, alpha: float) -> list[MetricResult]:
    import numpy as np

    f = prep.frame
    rows = f[(f["metric"] == metric.metric) & f["le"].isna()]
    if len(rows) == 0:
        return [no_data_result(metric.name, metric.name, "mean", metric.critical, alpha, f"no {metric.metric!r} data")]
    rows = apply_nan(rows, metric.nan_policy, metric.name, prep)
    check_finite(rows, prep, metric.metric, "gauges")
    repeated = int(rows.duplicated(["timestamp", "arm"]).sum())
    if repeated:  # a gauge is a level, not a count: repeated readings are averaged, and said so as counters are
        warn_once(prep, f"metric {metric.metric!r}: {repeated} duplicated (timestamp, arm) row(s) averaged")
    table = rows.groupby(["timestamp", "arm"])["value"].mean().unstack("arm")
    table = table.reindex(columns=[config.arms.baseline, config.arms.canary]).dropna()
    if len(table) == 0:
        return [no_data_result(metric.name, metric.name, "mean", metric.critical, alpha, "no interval with both arms")]
    base = table.iloc[:, 0].to_numpy(dtype=float)
    can = table.iloc[:, 1].to_numpy(dtype=float)
    times = table.index.to_numpy(dtype=float)
    d = can - base
    t = np.arange(1, len(d) + 1, dtype=float)
    mean_b = np.cumsum(base) / t
    burn = metric.min_samples

    sign = np.where(mean_b < 0, -1.0, 1.0)  # tolerances are shares of |baseline mean|

    def shown(relation: str, factor: float, a: float) -> NDArray[np.float64]:
        # "canary > factor x baseline" is "the mean of canary - baseline - (factor - 1) |baseline| > 0", tested
        # on each interval's value, so the variance is that of both arms. A margin from the running baseline
        # mean left the baseline's own noise out: with both arms swinging with load and the canary +10%, a 10%
        # tolerance read REGRESSION in 36% of runs at alpha 4.9%.
        shifted = d - (factor - 1) * sign * base
        if relation == "gt":
            return mean_exceedance_p(shifted, 0.0, a, burn_in=burn, autocorrelated=True)
        return mean_exceedance_p(-shifted, 0.0, a, burn_in=burn, autocorrelated=True)

    p_reg, p_pass = sided(metric.direction, metric.tolerance, shown, alpha)
    # Gauges drift together from one interval to the next (the same pods, the same load): the variance is
    # the AR(1) long-run one, and a strong autocorrelation, which even that undercovers, is reported.
    lag1 = float(running_lag1(d)[-1]) if len(d) >= 20 else math.nan
    if lag1 > STRONG_LAG1:
        prep.warnings.append(f"metric {metric.name!r}: interval differences are strongly autocorrelated (lag-1 "
                             f"r = {lag1:.2f}); the mean test allows for it, but above r = {STRONG_LAG1} its "
                             "false-alarm rate exceeds alpha (8% at 0.7, alpha 5%): lengthen the interval")
    # The interval inverts the same tests over every tolerance, so it agrees with the status: it holds both
    # arms' noise (the difference's own sequence over the running baseline mean left the baseline's out).
    # A look where no constant effect is left standing (the effect moved) reads unbounded.
    lo, hi = relative_effect_sequence(base, can, alpha, burn_in=burn, autocorrelated=True)
    ci_lo, ci_hi = np.nan_to_num(lo, nan=-np.inf), np.nan_to_num(hi, nan=np.inf)
    mean_d = np.cumsum(d) / t
    scale = np.where(np.abs(mean_b) > 0, np.abs(mean_b), np.nan)
    enough = t >= metric.min_samples
    status, decided = status_from(p_reg, p_pass, enough, alpha, times)
    detail = f"{base.mean():.4g} vs {can.mean():.4g}, {len(d)} intervals"
    if status is Status.PENDING and not enough[-1]:
        detail += f"; needs min_samples {metric.min_samples}"
    return [MetricResult(
        name=metric.name, metric=metric.name, kind="mean", status=status, p_value=float(p_reg[-1]),
        effect=float(mean_d[-1] / scale[-1]), ci=(float(ci_lo[-1]), float(ci_hi[-1])),
        n_baseline=float(len(base)), n_canary=float(len(can)), decided_at=decided, critical=metric.critical,
        alpha=alpha, detail=detail, series=Series(times, p_reg, ci_lo, ci_hi))]


# -------------------------------------------------------------------------------------------------- SRM


def _srm(prep: Prepared, config: CanaryConfig) -> SrmResult | None:
    import numpy as np

    counts = look_counts(prep, config, config.srm.metric, "drop")
    if counts is None:  # the check was asked for and cannot run: say so, as a skipped check reads as a pass
        prep.warnings.append(f"SRM: no {config.srm.metric!r} data, so the sample-ratio check did not run; set "
                             "srm.metric to the requests counter (or srm: {enabled: false} to go without it)")
        return None
    # A look where an arm has no row (a scrape not in yet, a gap, NaN) is not a look with 0 requests: read
    # as 0, one missing canary row at 60k requests a minute was a mismatch at p = 4e-11 in A/A runs.
    # A row that says 0 is an observation and stays.
    reported = reported_mask(prep, config, config.srm.metric).all(axis=1)
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
    prep = prepare(data, config, at)
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
            results_list += judge_distribution(prep, config, metric, alpha_m)
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
        names = distribution_test_names(metric)
        a = alpha / len(names)
        return [no_data_result(n, metric.name, metric.kind, metric.critical, a, "no data") for n in names]
    return [no_data_result(metric.name, metric.name, metric.kind, metric.critical, alpha, "no data")]


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
