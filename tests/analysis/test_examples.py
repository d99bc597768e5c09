"""The shipped examples: the Argo AnalysisTemplate has the fields Argo Rollouts reads, and its config is valid."""

from __future__ import annotations

from pathlib import Path

import yaml

from mlplat.analysis import CanaryConfig
from mlplat.config import load_config, parse_yaml, validate_document

ROOT = Path(__file__).resolve().parents[2]


def test_argo_analysis_template_shape() -> None:
    """AnalysisTemplate: a Job provider running `mlplat canary watch` with the Prometheus URL argument."""
    template, config_map = yaml.safe_load_all((ROOT / "examples/argo/analysis-template.yaml").read_text())
    assert template["apiVersion"] == "argoproj.io/v1alpha1" and template["kind"] == "AnalysisTemplate"
    metric = template["spec"]["metrics"][0]
    container = metric["provider"]["job"]["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["mlplat", "canary", "watch"]
    assert "{{args.prometheus-url}}" in container["args"]
    assert {a["name"] for a in template["spec"]["args"]} == {"prometheus-url", "max-duration"}
    embedded = parse_yaml(config_map["data"]["canary.yaml"], source="configmap")
    assert validate_document(embedded, CanaryConfig).metric_names() == ["errors", "latency"]


def test_example_config_is_valid() -> None:
    """examples/canary/canary.yaml validates."""
    assert load_config(ROOT / "examples/canary/canary.yaml", CanaryConfig).metric_names() == [
        "errors", "latency", "cpu"]
