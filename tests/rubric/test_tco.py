"""TCO: NPV with year 0 undiscounted, probability-weighted risks, and growing volume-based fees."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from numpy.testing import assert_allclose

from mlplat.errors import ConfigError
from mlplat.rubric import Rubric, load_rubric, npv, tco_table
from mlplat.rubric._model import Tco


def test_npv_year_zero_undiscounted() -> None:
    """NPV = sum CF_t / (1 + r)^t with t = 0 undiscounted (hand computation)."""
    assert npv([100.0], 0.10) == 100.0
    assert_allclose(npv([360_000, 390_000, 390_000, 390_000], 0.10),
                    360_000 + 390_000 * (1 / 1.1 + 1 / 1.1**2 + 1 / 1.1**3))


@pytest.mark.parametrize("rate", [-1.0, -2.0, float("nan")])
def test_npv_refuses_a_rate_at_or_below_minus_one(rate: float) -> None:
    """A discount rate of -1 divided by zero (a raw ZeroDivisionError from the public function)."""
    with pytest.raises(ConfigError, match=r"`rate` must be > -1 \(a discount rate\), got"):
        npv([100.0, 110.0], rate)


def test_risk_adjusted_is_expected_value(write_rubric: Callable[..., Path]) -> None:
    """A cost with probability p adds p x its present value to the risk-adjusted NPV only."""
    rubric = load_rubric(write_rubric())
    assert rubric.tco is not None
    table = tco_table(rubric.tco)
    build = table["build"]
    base = 300 + 100 / 1.1 + 100 / 1.1**2 + 100 / 1.1**3
    assert_allclose(build.npv, base)
    assert_allclose(build.risk_adjusted_npv, base + 0.3 * 200 / 1.1)
    assert build.by_year[1].base == 100 and build.by_year[1].expected == pytest.approx(160)
    assert_allclose(build.by_year[2].present_value, 100 / 1.1**2)


def test_volume_fee_grows_from_first_year(write_rubric: Callable[..., Path]) -> None:
    """unit_price x volume x (1 + growth)^k in the k-th year after the fee's first year."""
    rubric = load_rubric(write_rubric())
    assert rubric.tco is not None
    buy = tco_table(rubric.tco)["buy"]
    assert_allclose([y.expected for y in buy.by_year], [0, 100, 110, 121])
    assert_allclose(buy.npv, 100 / 1.1 + 110 / 1.1**2 + 121 / 1.1**3)
    assert buy.to_dict()["by_year"][3]["year"] == 3


def test_tco_model_direct() -> None:
    """The Tco model works without a rubric (a library user building it in code)."""
    tco = Tco.model_validate({"discount_rate": 0.0, "horizon_years": 2,
                              "options": {"a": [{"name": "x", "years": [0, 1, 2], "amount": 10}]}})
    assert tco_table(tco)["a"].npv == 30


def test_npv_of_no_cash_flows_is_a_float_zero() -> None:
    """No cash flows are worth 0.0, a float as annotated (the int 0 before)."""
    value = npv([], 0.05)
    assert value == 0.0 and isinstance(value, float)


def test_rubric_uses_risk_adjusted_npv(write_rubric: Callable[..., Path]) -> None:
    """The `source: tco` criterion's raw score is the option's risk-adjusted NPV."""
    from mlplat.rubric import score_rubric

    rubric: Rubric = load_rubric(write_rubric())
    result = score_rubric(rubric, draws=0)
    assert result.tco is not None
    assert result.option("build").raw["cost"] == pytest.approx(result.tco["build"].risk_adjusted_npv)


def test_an_npv_that_overflows_is_refused_at_its_option(write_rubric: Callable[..., Path]) -> None:
    """An NPV that comes out inf is exit 4 at the option's cash flows, not nan scores and a null NPV."""
    from mlplat.errors import ConfigError
    from mlplat.rubric import score_rubric

    path = write_rubric(("horizon_years: 3", "horizon_years: 50"),
                        ("years: [1, 2, 3], unit_price: 0.001, volume: 100000, growth: 0.1",
                         "years: [1, 50], unit_price: 1.0e+15, volume: 1.0e+15, growth: 10"))
    rubric = load_rubric(path)
    assert rubric.tco is not None
    # The model refuses a rate this close to -1; bypass it to reach the check on the NPV itself.
    rubric = rubric.model_copy(update={"tco": rubric.tco.model_copy(update={"discount_rate": -0.99999})})
    with pytest.raises(ConfigError, match=r"r\.yaml:22:7: tco\.options\.buy: the NPV of 'buy' is not a finite "
                                          r"number \(inf\)"):
        score_rubric(rubric, draws=0)
