"""The canary config (``canary.yaml``): arms, alpha, the gates' metrics and the Prometheus queries."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Literal

from pydantic import Field, PrivateAttr, field_validator, model_validator

from mlplat.analysis._sequential import (
    MAX_CONCENTRATION,
    MAX_SRM_CONCENTRATION,
    MIN_CONCENTRATION,
    MIN_SHARE,
)
from mlplat.config import ConfigModel, PositiveDuration
from mlplat.errors import ConfigError
from mlplat.units import parse_percent

__all__ = [
    "ArmsConfig",
    "CanaryConfig",
    "DistributionMetric",
    "MeanMetric",
    "MetricConfig",
    "PrometheusConfig",
    "RateMetric",
    "SrmConfig",
]

Direction = Literal["increase", "decrease", "either"]
NanPolicy = Literal["drop", "zero", "fail"]


class _MetricBase(ConfigModel):
    name: Annotated[str, Field(min_length=1, description="Name shown in the verdict.")]
    direction: Annotated[Direction, Field(description="Which change is bad.")] = "increase"
    tolerance: Annotated[float, Field(ge=0, lt=1, description="Relative margin: a change within it is "
                                      "acceptable (0.1 = 10%).")] = 0.1
    critical: Annotated[bool, Field(description="A regression of this metric forces a rollback.")] = False
    nan_policy: Annotated[NanPolicy, Field(description="NaN values: drop them, read them as 0, or fail.")] = "drop"
    user_facing: Annotated[bool, Field(description="Needs a user to see the canary's answer (conversions, "
                                       "clicks): shadow traffic cannot judge it.")] = False


class RateMetric(_MetricBase):
    """Bad events (errors, timeouts, 5xx) with the request count as exposure."""

    kind: Literal["rate"] = "rate"
    events: Annotated[str, Field(description="Metric name of the bad-event counts in the data.")]
    exposure: Annotated[str, Field(description="Metric name of the request counts in the data.")] = "requests"
    min_events: Annotated[int, Field(ge=0, description="Bad events (both arms) needed before a verdict.")] = 10
    concentration: Annotated[float, Field(ge=MIN_CONCENTRATION, le=MAX_CONCENTRATION,
                                          description="Concentration k of the "
                                          "mixture prior on the "
                                          "canary's share of bad events (Dirichlet-multinomial).")] = 20.0
    query: Annotated[str | None, Field(description="PromQL for bad events per step, by the arm label.")] = None
    exposure_query: Annotated[str | None, Field(description="PromQL for requests per step, by arm.")] = None


MIN_QUANTILE = 1e-6


def quantile_label(q: float) -> str:
    """A quantile as its test is named: 0.99 is "99" (of "latency p99"); apart for quantiles 1e-6 apart."""
    return f"{q * 100:.10g}"


class DistributionMetric(_MetricBase):
    """Latency or prediction scores from raw samples or cumulative histogram buckets (``le``)."""

    kind: Literal["distribution"] = "distribution"
    metric: Annotated[str, Field(description="Metric name of the samples or buckets in the data.")]
    # Each item bounded on its own, so an error points at the item (a validator of this nested model could
    # only name a path relative to the metric, which the loader would read from the top of the file).
    # Six nines at most: a test of p99.99999 needs more samples than any export holds, and its name (p100 at
    # three significant figures more) collided with its neighbours'.
    quantiles: Annotated[list[Annotated[float, Field(ge=MIN_QUANTILE, le=1 - MIN_QUANTILE)]], Field(
        description="Quantiles to compare, each in [1e-6, 0.999999].")] = Field(
            default_factory=lambda: [0.5, 0.9, 0.99])
    drift: Annotated[bool, Field(description="Also test equality in distribution (model-output drift).")] = False
    min_samples: Annotated[int, Field(ge=0, description="Samples per arm needed before a verdict.")] = 100
    query: Annotated[str | None, Field(description="PromQL for bucket counts per step, by arm and le.")] = None

    @model_validator(mode="after")
    def _something_to_test(self) -> DistributionMetric:
        if not self.quantiles and not self.drift:
            raise ValueError("a distribution metric needs quantiles or drift: true")
        return self


class MeanMetric(_MetricBase):
    """Per-interval gauges (CPU, memory): the mean difference between arms."""

    kind: Literal["mean"] = "mean"
    metric: Annotated[str, Field(description="Metric name of the per-interval values in the data.")]
    min_samples: Annotated[int, Field(ge=2, description="Paired intervals needed before a verdict (the "
                                      "confidence sequence is asymptotic: keep it >= 20).")] = 20
    query: Annotated[str | None, Field(description="PromQL for the gauge per step, by arm.")] = None


MetricConfig = Annotated[RateMetric | DistributionMetric | MeanMetric, Field(discriminator="kind")]


class ArmsConfig(ConfigModel):
    """How the arms are named in the data (CSV ``arm`` column, Prometheus label values)."""

    baseline: str = "baseline"
    canary: str = "canary"


class SrmConfig(ConfigModel):
    """Sample-ratio mismatch: the observed request split against ``traffic_share``."""

    enabled: bool = True
    metric: Annotated[str, Field(description="Metric name of the request counts.")] = "requests"
    alpha: Annotated[float, Field(gt=0, lt=1, description="Part of alpha spent on the SRM check.")] = 0.001
    concentration: Annotated[float, Field(ge=MIN_CONCENTRATION, le=MAX_SRM_CONCENTRATION,
                                          description="Dirichlet concentration k.")] = 10000.0
    query: Annotated[str | None, Field(description="PromQL for requests per step, by arm.")] = None


class PrometheusConfig(ConfigModel):
    """Live queries: the label that tells the arms apart, and the HTTP timeout."""

    arm_label: str = "arm"
    timeout: Annotated[PositiveDuration, Field(description="Seconds per HTTP request (or '10s').")] = 10.0


class CanaryConfig(ConfigModel):
    """The whole ``canary.yaml``."""

    alpha: Annotated[float, Field(gt=0, lt=1, description="Family-wise false-rollback rate.")] = 0.05
    traffic_share: Annotated[float, Field(ge=MIN_SHARE, le=1 - MIN_SHARE,
                                          description="Configured canary share ('5%').")] = 0.05
    arms: ArmsConfig = Field(default_factory=ArmsConfig)
    max_duration: Annotated[PositiveDuration, Field(description="Longest the canary runs ('60m').")] = 3600.0
    promote_on_timeout: bool = False
    max_noncritical_failures: Annotated[int, Field(ge=1)] = 1
    srm: SrmConfig = Field(default_factory=SrmConfig)
    prometheus: PrometheusConfig = Field(default_factory=PrometheusConfig)
    metrics: Annotated[list[MetricConfig], Field(min_length=1)]
    # The config as written, when `only` narrowed this one: its metric indices name places in the file, and
    # a metric left out may still carry the query the SRM check reads requests with.
    _written: CanaryConfig | None = PrivateAttr(default=None)

    _parse_share = field_validator("traffic_share", mode="before")(
        lambda cls, v: parse_percent(v) if isinstance(v, str) else v)

    @model_validator(mode="after")
    def _checks(self) -> CanaryConfig:
        seen: set[str] = set()
        for index, metric in enumerate(self.metrics):
            if metric.name in seen:
                raise ConfigError(f"duplicate metric name {metric.name!r}", path=("metrics", index, "name"))
            seen.add(metric.name)
            # Checked here, not in the metric's own validator, so the error's path starts at the top.
            if isinstance(metric, RateMetric) and metric.events == metric.exposure:
                raise ConfigError(f"must differ from exposure ({metric.exposure!r}): bad events counted as "
                                  "requests give a rate of 1", path=("metrics", index, "events"))
            if isinstance(metric, DistributionMetric):
                labels = [quantile_label(q) for q in metric.quantiles]
                for q_index, q in enumerate(metric.quantiles):
                    if labels.index(labels[q_index]) < q_index:
                        raise ConfigError(f"{q:g} is listed twice (as p{labels[q_index]}): the same test would run "
                                          "twice and take twice its share of alpha",
                                          path=("metrics", index, "quantiles", q_index))
        if self.arms.baseline == self.arms.canary:
            raise ConfigError("baseline and canary must have different names", path=("arms", "canary"))
        if self.srm.enabled and self.srm.alpha >= self.alpha:
            if "alpha" in self.srm.model_fields_set:
                raise ConfigError(f"must be < alpha ({self.alpha}), got {self.srm.alpha}", path=("srm", "alpha"))
            # srm.alpha is its default, so the value the user wrote is alpha: point there, naming both.
            raise ConfigError(f"must be above srm.alpha ({self.srm.alpha}, its default), which it includes; got "
                              f"{self.alpha}: raise alpha, or set srm.alpha lower", path=("alpha",))
        return self

    def only(self, names: Sequence[str] | None) -> CanaryConfig:
        """This config judging only the metrics ``names`` (``--metrics``); all of them when None or empty.

        Each kept metric's alpha is then the family-wise alpha split among the kept ones.
        """
        if not names:
            return self
        known = {metric.name: metric for metric in self.metrics}
        unknown = [name for name in names if name not in known]
        if unknown:
            raise ConfigError(f"--metrics: unknown metric name(s) {', '.join(map(repr, unknown))}; the config has "
                              f"{', '.join(known)}")
        repeated = sorted({name for name in names if list(names).count(name) > 1})
        if repeated:
            raise ConfigError(f"--metrics: {', '.join(map(repr, repeated))} given twice; list each metric once")
        # In the file's order, whatever the order of `names`: the judge reports them in that order.
        narrowed = self.model_copy(update={"metrics": [metric for metric in self.metrics if metric.name in names]})
        narrowed._written = self.written
        return narrowed

    @property
    def written(self) -> CanaryConfig:
        """The config as the file has it: before ``only`` narrowed its metrics (itself if it did not)."""
        return self._written or self

    def metric_index(self, name: str) -> int:
        """Where the metric ``name`` is in the file's ``metrics`` list (for error paths)."""
        return self.written.metric_names().index(name)

    def metric_alpha(self) -> float:
        """Each metric's share of alpha (Bonferroni): what is left after SRM, split equally."""
        spent = self.srm.alpha if self.srm.enabled else 0.0
        return (self.alpha - spent) / len(self.metrics)

    def metric_names(self) -> list[str]:
        return [metric.name for metric in self.metrics]
