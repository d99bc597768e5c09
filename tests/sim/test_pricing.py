"""The shipped price table: issue 5's defaults, each with its date and source."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from mlplat.errors import SimulationError
from mlplat.sim import Scenario, load_pricing, prepare

# Issue 5, "Pricing defaults" (AWS Lambda, Cloud Run, EC2 on-demand us-east-1 and EKS pricing pages).
ISSUE_PRICES = {
    "lambda.x86_gb_second": 0.0000166667,
    "lambda.arm_gb_second": 0.0000133334,
    "lambda.requests_per_million": 0.20,
    "lambda.provisioned_gb_second": 0.0000041667,
    "lambda.provisioned_executing_gb_second": 0.0000097222,
    "cloud_run.request_vcpu_second": 0.000024,
    "cloud_run.request_gib_second": 0.0000025,
    "cloud_run.requests_per_million": 0.40,
    "cloud_run.instance_vcpu_second": 0.000018,
    "cloud_run.instance_gib_second": 0.000002,
    "cloud_run.gpu_second.l4": 0.0001867,
    "ec2.m5.xlarge": 0.192,
    "ec2.c6i.xlarge": 0.17,
    "ec2.g5.xlarge": 1.006,
    "ec2.g6.xlarge": 0.8048,
    "eks.cluster_hour": 0.10,
}


@pytest.mark.parametrize(("name", "usd"), ISSUE_PRICES.items())
def test_default_prices_match_issue(name: str, usd: float) -> None:
    """Every default price in issue 5 ships unchanged, with an as-of date and a source URL."""
    prices = dict(load_pricing().table.rows())
    assert prices[name].usd == usd
    assert prices[name].as_of
    assert prices[name].source.startswith("https://")


def test_free_tiers_off_by_default(make_scenario: Callable[..., Scenario]) -> None:
    """A scenario bills without free tiers unless it (or --free-tier) turns them on."""
    assert make_scenario().free_tier is False


@pytest.mark.parametrize(("platform", "message"), [
    ({"name": "k8s", "kind": "kubernetes", "node": "m9.huge"}, r"^platforms\[1\]\.node: unknown node type 'm9.huge'"),
    ({"name": "run", "kind": "cloud_run", "gpu": "a100", "vcpu": 4, "memory_gib": 16},
     r"^platforms\[1\]\.gpu: no price for GPU 'a100'"),
])
def test_unpriced_platform_named_by_path(make_scenario: Callable[..., Scenario], platform: dict[str, str],
                                        message: str) -> None:
    """A scenario built in code with an unpriced node or GPU is refused with the platform's key path."""
    sc = make_scenario(platforms=[{"name": "fn", "kind": "lambda"}, platform])
    with pytest.raises(SimulationError, match=message):
        prepare(sc)
