"""Total cost of ownership as net present value, year by year, with probability-weighted risks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlplat.errors import ConfigError
from mlplat.rubric._model import CashFlow, Tco

__all__ = ["TcoResult", "YearCost", "npv", "tco_table"]


def npv(cash_flows: list[float], rate: float) -> float:
    """Net present value ``sum_t CF_t / (1 + r)^t``; ``cash_flows[0]`` is year 0 and is not discounted.

    Parameters
    ----------
    cash_flows : list of float
        One amount per year, from year 0.
    rate : float
        Discount rate per year, > -1 (0.10 is 10%).

    Returns
    -------
    float
        The discounted sum, in the units of ``cash_flows`` (0 for no cash flows).

    Raises
    ------
    ConfigError
        If ``rate`` is not > -1 (NaN included).

    References
    ----------
    .. [1] R. A. Brealey, S. C. Myers and F. Allen, *Principles of Corporate Finance*, McGraw-Hill.

    Examples
    --------
    >>> round(npv([100.0, 110.0, 121.0], 0.10), 6)
    300.0
    >>> npv([1000.0, 1000.0], 0.0)  # no discounting
    2000.0
    """
    if not rate > -1:  # NaN too
        raise ConfigError(f"`rate` must be > -1 (a discount rate), got {rate}")
    return sum((flow / (1.0 + rate) ** year for year, flow in enumerate(cash_flows)), 0.0)


@dataclass(frozen=True)
class YearCost:
    """One year of one option's TCO: the planned cost, the expected cost with risks, and its present value."""

    year: int
    base: float
    expected: float
    discount_factor: float

    @property
    def present_value(self) -> float:
        return self.expected * self.discount_factor

    def to_dict(self) -> dict[str, Any]:
        return {"year": self.year, "base": self.base, "expected": self.expected,
                "discount_factor": self.discount_factor, "present_value": self.present_value}


@dataclass(frozen=True)
class TcoResult:
    """One option's TCO: ``npv`` of the plan (certain costs only) and ``risk_adjusted_npv`` (expected value)."""

    option: str
    npv: float
    risk_adjusted_npv: float
    by_year: tuple[YearCost, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"npv": self.npv, "risk_adjusted_npv": self.risk_adjusted_npv,
                "by_year": [y.to_dict() for y in self.by_year]}

    def __rich__(self) -> str:
        return f"{self.option}: NPV {self.npv:,.0f}, risk-adjusted {self.risk_adjusted_npv:,.0f}"


def _yearly(flows: list[CashFlow], horizon: int, *, expected: bool) -> list[float]:
    years = [0.0] * (horizon + 1)
    for flow in flows:
        if flow.probability < 1.0 and not expected:
            continue
        weight = flow.probability if expected else 1.0
        for year in flow.year_list:
            years[year] += weight * flow.amount_in(year)
    return years


def tco_table(tco: Tco) -> dict[str, TcoResult]:
    """NPV per option over years ``0..horizon_years``.

    ``npv`` counts the certain costs (probability 1); ``risk_adjusted_npv`` counts every cost times its
    probability (its expected value). Volume-based fees cost ``unit_price * volume * (1 + growth)^k`` in
    the k-th year after the item's first year.
    """
    out = {}
    for option, flows in tco.options.items():
        base = _yearly(flows, tco.horizon_years, expected=False)
        expected = _yearly(flows, tco.horizon_years, expected=True)
        by_year = tuple(YearCost(year, base[year], expected[year], 1.0 / (1.0 + tco.discount_rate) ** year)
                        for year in range(tco.horizon_years + 1))
        out[option] = TcoResult(option, npv(base, tco.discount_rate), npv(expected, tco.discount_rate), by_year)
    return out
