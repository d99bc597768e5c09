"""Canary analysis: readers, anytime-valid sequential tests, the judge, and planning by simulation.

The doors are :func:`analyze` (data and config in, a :class:`CanaryResult` out), :func:`read_export`,
:func:`plan` and :func:`simulate_detection`. Heavy libraries (numpy's friends scipy and pandas) are
imported inside the functions, so importing this package is cheap.
"""

from __future__ import annotations

from mlplat.analysis._config import (
    ArmsConfig,
    CanaryConfig,
    DistributionMetric,
    MeanMetric,
    MetricConfig,
    PrometheusConfig,
    RateMetric,
    SrmConfig,
)
from mlplat.analysis._judge import analyze
from mlplat.analysis._mean_sequence import MeanConfidenceSequence, mean_confidence_sequence, mean_exceedance_p
from mlplat.analysis._plan import (
    DetectionSimulation,
    PlanCell,
    PlanResult,
    binomial_upper,
    plan,
    simulate_detection,
)
from mlplat.analysis._quantile import quantile_confidence_sequence, quantile_epsilon
from mlplat.analysis._quantile_ab import quantile_order_log_e, quantile_ratio_bound
from mlplat.analysis._rate_interval import rate_confidence_sequence
from mlplat.analysis._readers import CanaryData, combine_exports, prometheus_frame, read_export
from mlplat.analysis._results import CanaryResult, MetricResult, Series, SrmResult, Status, Verdict
from mlplat.analysis._rollout import (
    RolloutPlan,
    RolloutStage,
    parse_stages,
    plan_rollout,
    rollout_argo,
    rollout_flagger,
    rollout_markdown,
)
from mlplat.analysis._sequential import (
    ConfidenceInterval,
    RatePrior,
    RateProcess,
    dirichlet_multinomial_log_bf,
    dirichlet_multinomial_test,
    p_from_log_e,
    rate_ratio_process,
)

__all__ = [
    "ArmsConfig",
    "CanaryConfig",
    "CanaryData",
    "CanaryResult",
    "ConfidenceInterval",
    "DetectionSimulation",
    "DistributionMetric",
    "MeanConfidenceSequence",
    "MeanMetric",
    "MetricConfig",
    "MetricResult",
    "PlanCell",
    "PlanResult",
    "PrometheusConfig",
    "RateMetric",
    "RatePrior",
    "RateProcess",
    "RolloutPlan",
    "RolloutStage",
    "Series",
    "SrmConfig",
    "SrmResult",
    "Status",
    "Verdict",
    "analyze",
    "binomial_upper",
    "combine_exports",
    "dirichlet_multinomial_log_bf",
    "dirichlet_multinomial_test",
    "mean_confidence_sequence",
    "mean_exceedance_p",
    "p_from_log_e",
    "parse_stages",
    "plan",
    "plan_rollout",
    "prometheus_frame",
    "quantile_confidence_sequence",
    "quantile_epsilon",
    "quantile_order_log_e",
    "quantile_ratio_bound",
    "rate_confidence_sequence",
    "rate_ratio_process",
    "read_export",
    "rollout_argo",
    "rollout_flagger",
    "rollout_markdown",
    "simulate_detection",
]
