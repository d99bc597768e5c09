"""What the judge returns: the verdict, each test's result, and how a test's p-values become its status."""

from __future__ import annotations

import enum
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray


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


def first_hit(hit: NDArray[np.bool_]) -> int | None:
    import numpy as np

    return int(np.argmax(hit)) if hit.any() else None


def status_from(p_reg: NDArray[np.float64], p_pass: NDArray[np.float64], enough: NDArray[np.bool_],
                 alpha: float, looks: NDArray[np.float64]) -> tuple[Status, float | None]:
    """A regression found at any look, before or after a pass; else a pass at any look; else pending.

    An earlier pass does not hide a later regression: a canary equal for 30 minutes and three times the
    errors after read PASS (decided at its first minute) with its own interval at +100%. Ville's inequality
    bounds the chance that the regression test ever rejects, at any look, so looking at every look keeps
    each test's error rate; only a canary that changes during the export is judged differently.
    """
    reg = first_hit((p_reg <= alpha) & enough)
    ok = first_hit((p_pass <= alpha) & enough)
    if reg is not None:
        return Status.REGRESSION, float(looks[reg])
    if ok is not None:
        return Status.PASS, float(looks[ok])
    return Status.PENDING, None


def sided(direction: str, tol: float,
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


def no_data_result(name: str, metric: str, kind: str, critical: bool, alpha: float, detail: str) -> MetricResult:
    nan = math.nan
    return MetricResult(name=name, metric=metric, kind=kind, status=Status.NO_DATA, p_value=1.0, effect=nan,
                        ci=(nan, nan), n_baseline=0.0, n_canary=0.0, decided_at=None, critical=critical,
                        alpha=alpha, detail=detail)
