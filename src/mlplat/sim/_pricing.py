"""Prices: the shipped table (``templates/pricing.yaml``), user overrides, and lookups by platform."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from mlplat.config import YamlDocument, load_document, parse_yaml, validate_document
from mlplat.files import read_template
from mlplat.sim._scenario import FiniteModel

HOURS_PER_MONTH = 730.0
SECONDS_PER_MONTH = 30 * 86400.0
# No price (per hour, GB-second or million requests) and no free tier (a count such as 2,000,000 requests)
# comes near a billion; 1e308 would bill inf.
MAX_USD = 1e9


class Price(FiniteModel):
    """One price in USD, with the date it was read and where."""

    usd: float = Field(ge=0, le=MAX_USD)
    unit: str = ""
    as_of: dt.date | str
    source: str = Field(min_length=1)


class NodePrice(Price):
    """An on-demand VM price per hour, with its shape."""

    vcpu: float = Field(0, ge=0)
    memory_gib: float = Field(0, ge=0)
    gpus: int = Field(0, ge=0)


class LambdaPrices(FiniteModel):
    x86_gb_second: Price
    arm_gb_second: Price
    requests_per_million: Price
    provisioned_gb_second: Price
    provisioned_executing_gb_second: Price
    free_requests_per_month: Price
    free_gb_seconds_per_month: Price


class CloudRunPrices(FiniteModel):
    request_vcpu_second: Price
    request_gib_second: Price
    requests_per_million: Price
    instance_vcpu_second: Price
    instance_gib_second: Price
    gpu_second: dict[str, Price] = Field(default_factory=dict)
    free_vcpu_seconds_per_month: Price
    free_gib_seconds_per_month: Price
    free_requests_per_month: Price
    free_instance_vcpu_seconds_per_month: Price  # instance billing has a free tier of its own
    free_instance_gib_seconds_per_month: Price
    # Under request billing Google bills an idle minimum instance "at a lower rate" (its min-instances page);
    # left out, the instance-billing rates stand in for it, an upper bound.
    idle_min_vcpu_second: Price | None = None
    idle_min_gib_second: Price | None = None


class EksPrices(FiniteModel):
    cluster_hour: Price


class PriceTable(FiniteModel):
    """Every price the simulator bills with."""

    extends: Literal["default", "none"] = Field("default", description="lay this file over the defaults?")
    lambda_: LambdaPrices = Field(alias="lambda")
    cloud_run: CloudRunPrices
    ec2: dict[str, NodePrice]
    eks: EksPrices

    def rows(self) -> list[tuple[str, Price]]:
        """``(dotted name, price)`` for every price, in file order."""
        out: list[tuple[str, Price]] = []
        for section in ("lambda", "cloud_run", "ec2", "eks"):
            value = getattr(self, "lambda_" if section == "lambda" else section)
            fields = type(value).model_fields if not isinstance(value, dict) else {}
            items = value.items() if isinstance(value, dict) else ((k, getattr(value, k)) for k in fields)
            for key, price in items:
                if price is None:  # an optional price left out
                    continue
                if isinstance(price, dict):
                    out += [(f"{section}.{key}.{sub}", p) for sub, p in price.items()]
                else:
                    out.append((f"{section}.{key}", price))
        return out


@dataclass(frozen=True)
class Pricing:
    """A validated price table and where it came from (``default`` or a file name)."""

    table: PriceTable
    origin: str

    def to_dict(self) -> dict[str, Any]:
        return {"origin": self.origin,
                "prices": [{"name": name, **price.model_dump(mode="json")} for name, price in self.table.rows()]}


def _merge(base: Any, over: Any) -> Any:
    if isinstance(base, dict) and isinstance(over, dict):
        merged = dict(base)
        for key, value in over.items():
            merged[key] = _merge(base.get(key), value) if key in base else value
        return merged
    return over


def _default_document() -> YamlDocument:
    return parse_yaml(read_template("pricing.yaml"), source="mlplat/templates/pricing.yaml")


def _validate_overrides(doc: YamlDocument) -> PriceTable:
    data = doc.data
    if isinstance(data, dict) and data.get("extends", "default") == "default":
        data = _merge(_default_document().data, data)
    merged = replace(doc, data=data)
    return validate_document(merged, PriceTable)


def load_pricing(spec: str | Path | dict[str, Any] | None = "default", *, base: Path | None = None,
                 scenario_doc: YamlDocument | None = None) -> Pricing:
    """The price table for ``spec``: ``"default"``, a pricing file, or a mapping of overrides.

    A relative file name is read relative to ``base`` (the scenario's folder). Inline overrides from a
    scenario are located in ``scenario_doc`` under its ``pricing`` key.

    Examples
    --------
    >>> print(f"{load_pricing().table.lambda_.x86_gb_second.usd:.10f}")
    0.0000166667
    """
    if spec is None or spec == "default":
        return Pricing(validate_document(_default_document(), PriceTable), "default")
    if isinstance(spec, dict):
        if scenario_doc is None:
            doc = YamlDocument(source="<pricing>", data=spec)
        else:
            cut = {k[1:]: v for k, v in scenario_doc.positions.items() if k[:1] == ("pricing",)}
            keys = {k[1:]: v for k, v in scenario_doc.key_positions.items() if k[:1] == ("pricing",)}
            doc = YamlDocument(source=scenario_doc.source, data=spec, positions=cut, key_positions=keys,
                               prefix=("pricing",))
        return Pricing(_validate_overrides(doc), "scenario overrides")
    path = Path(spec)
    if not path.is_absolute() and base is not None:
        path = base / path
    return Pricing(_validate_overrides(load_document(path)), str(path))
