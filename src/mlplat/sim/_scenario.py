"""The scenario file: workload, service times, cold-start parts, platforms, SLO and pricing choice."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, ConfigDict, Field, model_validator

from mlplat.config import ConfigModel, Duration, PositiveDuration, load_document, validate_document
from mlplat.errors import ConfigError
from mlplat.units import parse_rate


def _rate(value: Any) -> float:
    try:
        return parse_rate(value)
    except ValueError:
        if str(value).strip().startswith("-"):
            raise ValueError("must be > 0") from None
        raise ValueError("expected a rate such as '5/s', '300/min' or '1e6/h'") from None


Rate = Annotated[float, BeforeValidator(_rate), Field(gt=0)]

GB_PER_GIB = 2**30 / 1e9
# Knative's container-concurrency-target-default: the KPA's target when a revision sets neither a target
# nor containerConcurrency (knative.dev/docs/serving/autoscaling/concurrency).
KNATIVE_TARGET_DEFAULT = 100.0

# Bounds no real scenario reaches; past them a finite number (1e308) still overflows the bill or the
# latencies to inf. A day of service time, cold-start part, pod start or node provisioning per request.
MAX_SECONDS = 86_400.0
MAX_VCPU = 1_000.0
MAX_MEMORY = 10_000.0  # GB or GiB
# The most instances, pods or concurrent executions of one platform: past any real service (a Kubernetes
# cluster tops out at 150,000 pods). 1e8 passed validate and then ran for hours or ran out of memory.
MAX_INSTANCES = 100_000
# Cloud Run's minimum instance shape with a GPU (an NVIDIA L4): 4 vCPU and 16 GiB.
GPU_MIN_VCPU = 4.0
GPU_MIN_MEMORY_GIB = 16.0


class FiniteModel(ConfigModel):
    """A config model whose numbers must be finite: YAML reads ``.inf`` and ``.nan`` as floats, and either
    one would turn the simulation's figures into NaN or stop it with an overflow."""

    model_config = ConfigDict(allow_inf_nan=False)


ServiceMs = Annotated[float, Field(gt=0, le=MAX_SECONDS * 1000, description="milliseconds, at most a day")]
StartSeconds = Annotated[float, Field(ge=0, le=MAX_SECONDS, description="seconds, at most a day")]

# z such that Phi(z) = 0.99 (scipy.stats.norm.ppf(0.99)), to solve a lognormal from its mean and p99.
Z99 = 2.3263478740408408


class Slo(FiniteModel):
    """The latency objective a platform must meet (p99 over all requests, cold starts included)."""

    p99_ms: float = Field(gt=0, description="99th percentile latency objective in milliseconds")
    max_rejection: float = Field(0.01, ge=0, le=1, description="largest share of throttled requests allowed")


class PoissonWorkload(FiniteModel):
    """Homogeneous Poisson arrivals."""

    kind: Literal["poisson"]
    rate: Rate = Field(description="mean arrivals per second, e.g. '5/s' or '300/min'")


class DiurnalWorkload(FiniteModel):
    """Poisson arrivals whose rate follows a sine wave over ``period`` (a day by default)."""

    kind: Literal["diurnal"]
    mean_rate: Rate
    peak_to_trough: float = Field(4.0, ge=1, description="peak rate divided by trough rate")
    period: PositiveDuration = 86400.0
    peak_at: Duration = Field(14 * 3600.0, description="time of the peak within the period")


class BurstyWorkload(FiniteModel):
    """On/off Markov-modulated Poisson process: exponential on and off periods with their own rates."""

    kind: Literal["bursty"]
    on_rate: Rate
    off_rate: Annotated[float, BeforeValidator(_rate), Field(ge=0)] = 0.0
    mean_on: PositiveDuration
    mean_off: PositiveDuration


class TraceWorkload(FiniteModel):
    """Arrivals replayed from a file: an Azure Functions 2019 per-minute CSV row, or one timestamp a line."""

    kind: Literal["trace"]
    path: str = Field(description="file name, relative to the scenario file")
    format: Literal["azure", "timestamps"] = "azure"
    function: str | None = Field(None, description="HashFunction of the Azure row to use (default: first row)")
    scale: float = Field(1.0, gt=0, description="multiply the trace rate by this factor")
    time_unit: Literal["s", "ms"] = "s"


Workload = Annotated[PoissonWorkload | DiurnalWorkload | BurstyWorkload | TraceWorkload,
                     Field(discriminator="kind")]


class LognormalService(FiniteModel):
    """Lognormal service time given by its mean and 99th percentile."""

    dist: Literal["lognormal"]
    mean_ms: ServiceMs
    p99_ms: ServiceMs

    def problem(self) -> str | None:
        """Why no lognormal has this mean and p99, or None."""
        if self.p99_ms <= self.mean_ms:
            return f"must be > mean_ms ({self.mean_ms:g}) for a lognormal, got {self.p99_ms:g}"
        if math.log(self.p99_ms / self.mean_ms) > Z99 * Z99 / 2:
            limit = math.exp(Z99 * Z99 / 2)
            return (f"a lognormal's p99 can be at most {limit:.2f} x its mean, got "
                    f"{self.p99_ms / self.mean_ms:.2f} x")
        return None

    def params(self) -> tuple[float, float]:
        """``(mu, sigma)`` of log-seconds: mean = exp(mu + sigma^2/2), p99 = exp(mu + z99 sigma)."""
        d = math.log(self.p99_ms / self.mean_ms)
        sigma = Z99 - math.sqrt(Z99 * Z99 - 2 * d)
        mu = math.log(self.mean_ms / 1000.0) - sigma * sigma / 2
        return mu, sigma

    def mean_s(self) -> float:
        return self.mean_ms / 1000.0


class ExponentialService(FiniteModel):
    """Exponential service time."""

    dist: Literal["exponential"]
    mean_ms: ServiceMs

    def mean_s(self) -> float:
        return self.mean_ms / 1000.0


class ConstantService(FiniteModel):
    """Every request takes the same time."""

    dist: Literal["constant"]
    mean_ms: ServiceMs

    def mean_s(self) -> float:
        return self.mean_ms / 1000.0


class EmpiricalService(FiniteModel):
    """Service times resampled from measured values."""

    dist: Literal["empirical"]
    samples_ms: list[ServiceMs] = Field(min_length=1)

    def mean_s(self) -> float:
        return sum(self.samples_ms) / len(self.samples_ms) / 1000.0


ServiceDist = Annotated[LognormalService | ExponentialService | ConstantService | EmpiricalService,
                        Field(discriminator="dist")]


class ColdStart(FiniteModel):
    """The parts of a cold start, in seconds; a new instance serves its first request after their sum."""

    provision_s: StartSeconds = 0.0
    image_pull_s: StartSeconds = 0.0
    init_s: StartSeconds = 0.0
    model_load_s: StartSeconds = 0.0

    def total(self) -> float:
        return self.provision_s + self.image_pull_s + self.init_s + self.model_load_s

    def billed_init(self) -> float:
        """The INIT phase Lambda bills: the runtime's init and the model load done in it."""
        return self.init_s + self.model_load_s


class Service(FiniteModel):
    """What one request costs the model server."""

    warm: ServiceDist
    cold_start: ColdStart = Field(default_factory=lambda: ColdStart.model_validate({}))
    memory_gb: float = Field(2.0, gt=0, le=MAX_MEMORY,
                             description="memory the model needs; every function instance must have it")


class LambdaPlatform(FiniteModel):
    """AWS Lambda: one request per execution environment, keep-alive, reserved cap, provisioned concurrency."""

    name: str
    kind: Literal["lambda"]
    # AWS allows 128 MB to 10,240 MB and bills GB-seconds of 1,024 MB: 0.125 to 10 GB here.
    memory_gb: float = Field(3.0, ge=0.125, le=10.0)
    arch: Literal["x86", "arm"] = "x86"
    keep_alive: Duration = 600.0
    provisioned_concurrency: int = Field(0, ge=0)
    max_concurrency: int = Field(1000, ge=1)


class CloudRunPlatform(FiniteModel):
    """Google Cloud Run: several requests per instance, idle timeout, min instances, optional GPU."""

    name: str
    kind: Literal["cloud_run"]
    vcpu: float = Field(1.0, gt=0, le=MAX_VCPU)
    memory_gib: float = Field(2.0, gt=0, le=MAX_MEMORY)
    gpu: str | None = Field(None, description="GPU type, e.g. 'l4' (priced as cloud_run.gpu_<type>_second)")
    concurrency: int = Field(80, ge=1)
    min_instances: int = Field(0, ge=0)
    max_instances: int = Field(100, ge=1)
    idle_timeout: Duration = 900.0
    billing: Literal["request", "instance"] | None = Field(
        None, description="request-based or instance-based billing (default: instance with a GPU, else request)")

    def billing_mode(self) -> str:
        return self.billing or ("instance" if self.gpu else "request")


class HpaAutoscaler(FiniteModel):
    """The Kubernetes Horizontal Pod Autoscaler on utilisation of the pods' request slots."""

    kind: Literal["hpa"] = "hpa"
    # Bounds past which the arithmetic overflows (a 1e-320 target or a 1e308 percent was exit 5), well past
    # any real setting: Kubernetes caps the stabilization window at an hour.
    target_utilization: float = Field(0.7, ge=0.01, le=1)
    sync_period_s: float = Field(15.0, gt=0, le=3600)
    scale_down_stabilization_s: float = Field(300.0, ge=0, le=3600)
    tolerance: float = Field(0.1, ge=0, lt=1)
    scale_up_pods: int = Field(4, ge=1, le=MAX_INSTANCES,
                               description="scale-up policy: at most this many pods per 15 s ...")
    scale_up_percent: float = Field(100.0, gt=0, le=10_000, description="... or this percent, whichever is more")


class FixedReplicas(FiniteModel):
    """No autoscaler: ``min_replicas`` pods, started before the measurement."""

    kind: Literal["fixed"]


class _ClusterPlatform(FiniteModel):
    """What Kubernetes and Knative share: pods on EC2 nodes of one type in an EKS cluster."""

    name: str
    node: str = Field(description="EC2 instance type, priced under ec2 in the pricing table")
    pods_per_node: int = Field(1, ge=1)
    node_provision_s: StartSeconds = 90.0
    node_scale_down_s: float = Field(600.0, ge=0, le=86_400, description="an empty node is removed after this long")
    control_plane: bool = Field(True, description="bill the EKS control-plane fee to this service")


class KubernetesPlatform(_ClusterPlatform):
    """A Deployment on a Kubernetes cluster (EKS), scaled by the HPA or fixed."""

    kind: Literal["kubernetes"]
    pods_per_node: int = Field(4, ge=1)
    pod_concurrency: int = Field(1, ge=1)
    min_replicas: int = Field(1, ge=1)
    max_replicas: int = Field(10, ge=1)
    pod_startup_s: StartSeconds = 20.0
    cold_start: bool = Field(True, description="new pods also pay the service's cold-start parts")
    autoscaler: HpaAutoscaler | FixedReplicas = Field(default_factory=lambda: HpaAutoscaler.model_validate({}),
                                                      discriminator="kind")


class KnativePlatform(_ClusterPlatform):
    """Knative Serving on Kubernetes with the Knative Pod Autoscaler (KPA) and scale to zero."""

    kind: Literal["knative"]
    # Knative takes a container concurrency up to 1,000; a target of 1e-320 overflowed (exit 5).
    target_concurrency: float | None = Field(
        None, ge=0.01, le=1000,
        description="soft target per pod (default: container_concurrency if set, else Knative's 100)")
    target_utilization: float = Field(0.7, ge=0.01, le=1)
    container_concurrency: int | None = Field(None, ge=1, le=1000, description="hard per-pod limit (default: target)")
    # Knative's own bounds: the stable window from 6 s to 1 h, the panic window at most that (its 1-100%).
    stable_window_s: float = Field(60.0, ge=6, le=3600)
    panic_window_s: float = Field(6.0, gt=0, le=3600, description="at most stable_window_s")
    panic_threshold: float = Field(2.0, gt=1, le=10, description="panic when panic-window demand / ready >= this")
    scale_to_zero_grace_s: float = Field(30.0, ge=0, le=3600)
    tick_s: float = Field(2.0, gt=0, le=60)
    min_scale: int = Field(0, ge=0)
    max_scale: int = Field(100, ge=1)
    pod_startup_s: StartSeconds = 5.0

    def target(self) -> float:
        """Concurrency per pod the KPA aims at before utilisation, resolved as Knative's ResolveMetricTarget does."""
        hard = self.container_concurrency
        if self.target_concurrency is None:
            return float(hard or KNATIVE_TARGET_DEFAULT)
        # No point aiming at more requests than a pod may take: the smaller of the soft and hard limits.
        return min(self.target_concurrency, hard) if hard else self.target_concurrency

    def slots(self) -> int:
        return self.container_concurrency or max(1, math.ceil(self.target()))


Platform = Annotated[LambdaPlatform | CloudRunPlatform | KubernetesPlatform | KnativePlatform,
                     Field(discriminator="kind")]


class Scenario(FiniteModel):
    """A whole ``mlplat sim`` scenario file."""

    duration: PositiveDuration = Field(description="simulated time per replication")
    warmup: Duration = Field(0.0, description="time discarded before measuring")
    replications: int = Field(10, ge=1, le=1000)
    slo: Slo = Field(default_factory=lambda: Slo.model_validate({"p99_ms": 1000.0}))
    workload: Workload
    service: Service
    platforms: list[Platform] = Field(min_length=1)
    pricing: str | dict[str, Any] = Field("default", description="'default', a pricing file, or overrides")
    free_tier: bool = Field(False, description="subtract the monthly free tiers")

    @model_validator(mode="after")
    def _check(self) -> Scenario:
        if self.warmup >= self.duration:
            raise ConfigError(f"must be < duration ({self.duration:g} s), got {self.warmup:g} s", path=("warmup",))
        warm = self.service.warm
        if isinstance(warm, LognormalService) and warm.problem():
            raise ConfigError(str(warm.problem()), path=("service", "warm", "p99_ms"))
        seen: dict[str, int] = {}
        need = self.service.memory_gb
        for index, platform in enumerate(self.platforms):
            # A Lambda's memory_gb is AWS's GB of 1,024 MB (10 GB is its 10,240 MB); the service's is decimal.
            if isinstance(platform, LambdaPlatform) and platform.memory_gb * GB_PER_GIB < need:
                raise ConfigError(f"must hold service.memory_gb ({need:g} GB = {need / GB_PER_GIB:.3g} of AWS's GB "
                                  f"of 1,024 MB), got {platform.memory_gb:g}", path=("platforms", index, "memory_gb"))
            if isinstance(platform, CloudRunPlatform) and platform.memory_gib * GB_PER_GIB < need:
                raise ConfigError(f"must hold service.memory_gb ({need:g} GB = {need / GB_PER_GIB:.3g} GiB), "
                                  f"got {platform.memory_gib:g} GiB", path=("platforms", index, "memory_gib"))
            if isinstance(platform, KnativePlatform) and platform.panic_window_s > platform.stable_window_s:
                raise ConfigError(f"must be <= stable_window_s ({platform.stable_window_s:g}), got "
                                  f"{platform.panic_window_s:g}", path=("platforms", index, "panic_window_s"))
            bounds = _scale_bounds(platform)
            if bounds[3] < bounds[1]:
                low, low_value, high, high_value = bounds
                raise ConfigError(f"must be >= {low} ({low_value}), got {high_value}",
                                  path=("platforms", index, high))
            for key, value in ((bounds[0], bounds[1]), (bounds[2], bounds[3])):
                if value > MAX_INSTANCES:
                    raise ConfigError(f"must be at most {MAX_INSTANCES:,} (past any real service), got {value:,}",
                                      path=("platforms", index, key))
            if isinstance(platform, CloudRunPlatform) and platform.gpu:
                _check_cloud_run_gpu(platform, index)
            if platform.name in seen:
                raise ConfigError(f"duplicate platform name {platform.name!r}", path=("platforms", index, "name"))
            seen[platform.name] = index
        return self


def _check_cloud_run_gpu(platform: CloudRunPlatform, index: int) -> None:
    """Cloud Run's rules for a GPU: instance-based billing (the GPU is billed for the instance's whole
    lifecycle), at least 4 vCPU and 16 GiB (cloud.google.com/run/docs/configuring/services/gpu)."""
    if platform.billing == "request":
        raise ConfigError("a Cloud Run instance with a GPU is billed for its whole lifecycle: it needs instance "
                          "billing (leave `billing` out, or set 'instance'), got 'request'",
                          path=("platforms", index, "billing"))
    if platform.vcpu < GPU_MIN_VCPU:
        raise ConfigError(f"a Cloud Run instance with a GPU needs at least {GPU_MIN_VCPU:g} vCPU, got "
                          f"{platform.vcpu:g}", path=("platforms", index, "vcpu"))
    if platform.memory_gib < GPU_MIN_MEMORY_GIB:
        raise ConfigError(f"a Cloud Run instance with a GPU needs at least {GPU_MIN_MEMORY_GIB:g} GiB, got "
                          f"{platform.memory_gib:g}", path=("platforms", index, "memory_gib"))


def _scale_bounds(platform: Platform) -> tuple[str, int, str, int]:
    """``(min key, min, max key, max)`` of a platform's instance count (for Lambda, provisioned concurrency
    may not exceed the function's cap, as AWS refuses it)."""
    if isinstance(platform, LambdaPlatform):
        return "provisioned_concurrency", platform.provisioned_concurrency, "max_concurrency", platform.max_concurrency
    if isinstance(platform, KubernetesPlatform):
        return "min_replicas", platform.min_replicas, "max_replicas", platform.max_replicas
    if isinstance(platform, KnativePlatform):
        return "min_scale", platform.min_scale, "max_scale", platform.max_scale
    return "min_instances", platform.min_instances, "max_instances", platform.max_instances


def load_scenario(path: str | Path) -> tuple[Scenario, Any]:
    """Read and validate a scenario file; return it and its parsed document (for later located errors)."""
    doc = load_document(path)
    return validate_document(doc, Scenario), doc
