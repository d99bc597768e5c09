"""A traffic-splitting rollout whose stage dwell times come from the gate's own power simulation.

Every stage's dwell is the time by which a share ``power`` of seeded runs of
:func:`~mlplat.analysis.simulate_detection` (the function ``mlplat canary plan`` uses) roll back a canary
with ``effect`` times the baseline error rate at that stage's traffic share.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from mlplat.analysis._config import CanaryConfig, RateMetric
from mlplat.analysis._plan import binomial_interval, cell_rng, simulate_detection
from mlplat.analysis._sequential import NO_INTERVAL, ConfidenceInterval
from mlplat.errors import ConfigError, SimulationError
from mlplat.units import format_duration, parse_percent

__all__ = ["RolloutPlan", "RolloutStage", "parse_stages", "plan_rollout", "rollout_argo", "rollout_flagger",
           "rollout_markdown"]

Unit = Literal["request", "session", "user"]
SHADOW = "shadow"
# A mirrored shadow copies this share of production requests to the canary.
SHADOW_MIRROR = 1.0


def parse_stages(text: str | Sequence[str]) -> list[float]:
    """Stage shares from ``"shadow,1%,5%,25%,50%,100%"``; shadow is 0. Shares must increase in (0, 100%].

    >>> parse_stages("shadow,1%,5%,100%")
    [0.0, 0.01, 0.05, 1.0]
    """
    parts = [p.strip() for p in (text.split(",") if isinstance(text, str) else text) if p.strip()]
    if not parts:
        raise SimulationError("--stages: expected a list such as shadow,1%,5%,25%,50%,100%")
    shares = []
    for index, part in enumerate(parts):
        if part.lower() == SHADOW:
            if index != 0:
                raise SimulationError(f"--stages: shadow must come first, got it at position {index + 1}")
            shares.append(0.0)
            continue
        try:
            share = parse_percent(part)
        except ValueError as exc:
            raise SimulationError(f"--stages: {exc}") from None
        if not 0 < share <= 1:
            raise SimulationError(f"--stages: each share must be in (0, 100%], got {part!r}; "
                                  "write shares such as 5% or 0.05")
        shares.append(share)
    for a, b in itertools.pairwise(shares):
        if b <= a:
            raise SimulationError(f"--stages: shares must increase, got {_label(a)} then {_label(b)}; "
                                  "order them from the smallest to 100%")
    return shares


def _label(share: float) -> str:
    return SHADOW if share == 0 else f"{share * 100:g}%"


@dataclass(frozen=True)
class RolloutStage:
    """One stage: its share, planned dwell, power reached, blast radius, checks and rollback criteria."""

    name: str
    share: float
    dwell: float
    power: float
    reachable: bool
    affected_requests: float
    expected_affected_with_gate: float
    extra_errors: float
    checks: tuple[str, ...]
    cannot_judge: tuple[str, ...]
    rollback: tuple[str, ...]
    note: str = ""
    power_ci: ConfidenceInterval = NO_INTERVAL
    """95% Clopper-Pearson interval of ``power`` over the simulation's runs (its Monte Carlo error)."""

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "share": self.share, "dwell_s": self.dwell, "power": self.power,
                "power_ci": list(self.power_ci), "reachable": self.reachable,
                "affected_requests": self.affected_requests,
                "expected_affected_with_gate": self.expected_affected_with_gate,
                "extra_errors_if_bad": self.extra_errors, "checks": list(self.checks),
                "cannot_judge": list(self.cannot_judge), "rollback": list(self.rollback), "note": self.note}


@dataclass(frozen=True)
class RolloutPlan:
    """The stages, whether they fit ``max_total``, the split unit and what to change if they do not."""

    rps: float
    baseline_rate: float
    effect: float
    power: float
    max_total: float
    unit: Unit
    runs: int
    seed: int
    stages: tuple[RolloutStage, ...]
    total: float
    fits: bool
    suggestions: tuple[str, ...] = field(default_factory=tuple)
    stickiness: str = ""
    metrics: tuple[str, ...] = ()
    """The metrics the gate judges (``--metrics``); empty: every metric of the config."""

    def to_dict(self) -> dict[str, Any]:
        return {"rps": self.rps, "baseline_rate": self.baseline_rate, "effect": self.effect, "power": self.power,
                "max_total_s": self.max_total, "unit": self.unit, "runs": self.runs, "seed": self.seed,
                "stages": [s.to_dict() for s in self.stages], "total_s": self.total, "fits": self.fits,
                "suggestions": list(self.suggestions), "stickiness": self.stickiness,
                "metrics": list(self.metrics) or None}

    def __rich__(self) -> Any:
        from mlplat.cli.canary import render_rollout

        return render_rollout(self)


def _stickiness(unit: Unit) -> str:
    if unit == "request":
        return ("Split unit: request. Each request is routed independently, which is what the tests assume "
                "(independent requests). Do not split by request when users must see consistent answers or "
                "per-user caches matter; pin them with --unit user or session.")
    return (f"Split unit: {unit}. Pin each {unit} to one arm by hashing its {unit} key, so per-{unit} metrics "
            "and caches stay consistent. Requests of one {unit} are correlated, so the per-request tests see "
            "fewer independent units than requests: the planned dwell times are optimistic by the design "
            "effect (1 + (requests per unit - 1) x intra-unit correlation); lengthen them or test per-unit "
            "aggregates.").replace("{unit}", unit)


def plan_rollout(
    config: CanaryConfig,
    *,
    rps: float,
    stages: Sequence[float],
    baseline_rate: float = 0.001,
    power: float = 0.9,
    effect: float = 1.5,
    max_total: float = 4 * 3600.0,
    unit: Unit = "request",
    metrics: Sequence[str] | None = None,
    interval: float = 60.0,
    runs: int = 1000,
    seed: int = 0,
) -> RolloutPlan:
    """Size every stage's dwell from the seeded simulation of the configured rate gate.

    Dwell times are made monotone in the balance of the split: on each side of 50%, a share further from
    50% never gets a shorter dwell than one nearer it (Monte Carlo noise could otherwise suggest it; past 50%
    the baseline is the smaller arm, so a larger share detects no faster). A stage that cannot reach
    ``power`` within what is left of ``max_total`` is flagged, with what to change.

    Examples
    --------
    >>> cfg = CanaryConfig.model_validate({"metrics": [{"name": "errors", "kind": "rate", "events": "errors"}]})
    >>> plan = plan_rollout(cfg, rps=300, stages=[0.05, 0.5, 1.0], effect=2.0, runs=50, max_total=3600)
    >>> [s.name for s in plan.stages], plan.stages[0].dwell >= plan.stages[1].dwell
    (['5%', '50%', '100%'], True)
    """

    if not 0 < power < 1:
        raise SimulationError(f"--power must be in (0, 1), got {power:g}")
    if effect <= 1 or baseline_rate * effect >= 1:
        raise SimulationError(f"--effect must be > 1 and keep the error rate below 1, got {effect:g}")
    if max_total < interval:
        raise SimulationError(f"--max-total ({format_duration(max_total)}) is shorter than one look "
                              f"({format_duration(interval)}); give at least 30m per stage")
    config = config.only(metrics)  # the gate then judges these alone, each at its share of alpha
    chosen = list(config.metrics)
    # Sized by a rate whose increase is bad (the simulated canary has `effect` times the baseline's errors).
    rate = next((m for m in chosen if isinstance(m, RateMetric) and m.direction != "decrease"), None)
    if rate is None:
        raise ConfigError("the rollout is sized by a rate metric whose increase is bad (errors); the config or "
                          "--metrics has none")
    if effect <= 1 + rate.tolerance:
        raise SimulationError(f"--effect {effect:g}x is within the tolerance of rate metric {rate.name!r} "
                              f"({rate.tolerance:g}: ratios up to {1 + rate.tolerance:g} are acceptable), so its "
                              f"gate never rolls back for it; plan for an effect above {1 + rate.tolerance:g}x")
    # `either` rolls back when 2 min(p_up, p_down) <= alpha: the increase side at alpha / 2.
    alpha = config.metric_alpha() / (2 if rate.direction == "either" else 1)
    judged = [s for s in stages if 0 <= s < 1]
    sims: dict[float, Any] = {}
    for share in judged:
        # Shadow mirrors production to the canary: the comparison then runs at a 50/50 split of 2x the load.
        sim_share, sim_rps = (0.5, rps * (1 + SHADOW_MIRROR)) if share == 0 else (share, rps)
        sims[share] = simulate_detection(
            rps=sim_rps, traffic=sim_share, baseline_rate=baseline_rate, effect=effect, duration=max_total,
            interval=interval, alpha=alpha, tolerance=rate.tolerance, concentration=rate.concentration,
            runs=runs, rng=cell_rng(seed, share, effect), min_events=rate.min_events)
    dwell = {s: sims[s].time_to_power(power) for s in judged}
    # Monotone by construction: walk out from the most balanced share on each side of 50%, never getting
    # shorter. One walk over every share made a 95% stage (baseline 5%, as slow as a 5% canary) lengthen
    # the 50% stage and every smaller one.
    for side in (sorted((s for s in judged if 0 < s <= 0.5), reverse=True), sorted(s for s in judged if s > 0.5)):
        longest = 0.0
        for share in side:
            longest = max(longest, dwell[share])
            dwell[share] = longest
    out = [_stage(config, chosen, share, dwell.get(share, 0.0), sims.get(share), rps, baseline_rate, effect,
                  power, max_total) for share in stages]
    # A stage that cannot reach the power has no dwell to add (it is shown at max_total): counting it there
    # made two such stages read as "more than --max-total in all" on top of "cannot reach".
    total = sum(s.dwell for s in out if s.reachable)
    unreachable = [s for s in out if not s.reachable]
    fits = not unreachable and total <= max_total
    suggestions = _suggestions(unreachable, total, max_total, effect, fits)
    return RolloutPlan(rps=rps, baseline_rate=baseline_rate, effect=effect, power=power, max_total=max_total,
                       unit=unit, runs=runs, seed=seed, stages=tuple(out), total=total, fits=fits,
                       suggestions=tuple(suggestions), stickiness=_stickiness(unit), metrics=tuple(metrics or ()))


def _stage(config: CanaryConfig, chosen: list[Any], share: float, dwell: float, sim: Any, rps: float,
           baseline_rate: float, effect: float, power: float, max_total: float) -> RolloutStage:
    import numpy as np

    name = _label(share)
    if share >= 1:
        return RolloutStage(name=name, share=1.0, dwell=0.0, power=float("nan"), reachable=True,
                            affected_requests=0.0, expected_affected_with_gate=0.0, extra_errors=0.0, checks=(),
                            cannot_judge=(), rollback=("no baseline is left to compare with: watch SLOs and "
                                                       "roll back by redeploying the previous model",),
                            note="promotion complete")
    reachable = bool(np.isfinite(dwell)) and dwell <= max_total
    reached = sim.power(dwell if reachable else max_total)
    shown_dwell = dwell if reachable else max_total
    exposed = 0.0 if share == 0 else share * rps * shown_dwell
    with_gate = 0.0 if share == 0 else share * rps * float(np.mean(np.minimum(sim.detect_times, shown_dwell)))
    checks: list[str] = []
    cannot: list[str] = []
    for m in chosen:
        label = m.name + (" (critical)" if m.critical else "")
        (cannot if share == 0 and m.user_facing else checks).append(label)
    if config.srm.enabled and share > 0:
        checks.append("SRM")
    rollback = ["ROLLBACK on a regression of a critical metric ("
                + (", ".join(m.name for m in chosen if m.critical) or "none configured") + ")"]
    # Non-critical metrics judged at this stage (a shadow stage cannot judge user-facing ones).
    noncritical = sum(not m.critical and not (share == 0 and m.user_facing) for m in chosen)
    if noncritical >= config.max_noncritical_failures:
        rollback.append(f"ROLLBACK when {config.max_noncritical_failures} non-critical metric(s) regress")
    elif noncritical:  # fewer judged here than the config tolerates: the rule can never fire
        rollback.append(f"a non-critical regression is reported, never a rollback: {noncritical} judged, "
                        f"max_noncritical_failures {config.max_noncritical_failures}")
    if share > 0:
        rollback.append(f"ROLLBACK on a sample-ratio mismatch against {name}")
    rollback.append(f"go on after {format_duration(shown_dwell)} with no regression (or at PROMOTE)")
    note = ("mirrored traffic, no user impact: judges errors, latency and prediction drift; user-facing "
            "business metrics cannot be judged" if share == 0 else "")
    if not reachable:
        note = (note + "; " if note else "") + f"cannot reach {power:.0%} power within the max total"
    return RolloutStage(name=name, share=share, dwell=float(shown_dwell), power=float(reached),
                        power_ci=binomial_interval(reached, sim.runs), reachable=reachable,
                        affected_requests=exposed, expected_affected_with_gate=with_gate,
                        extra_errors=exposed * baseline_rate * (effect - 1), checks=tuple(checks),
                        cannot_judge=tuple(cannot), rollback=tuple(rollback), note=note)


def _suggestions(unreachable: list[RolloutStage], total: float, max_total: float, effect: float,
                 fits: bool) -> list[str]:
    if fits:
        return []
    out = []
    if unreachable:
        names = ", ".join(s.name for s in unreachable)
        out.append(f"stage(s) {names} cannot reach the power within {format_duration(max_total)}: drop them or "
                   "start at a larger share (more traffic)")
    if total > max_total:
        out.append(f"the stages need {format_duration(total)} in all, more than --max-total "
                   f"{format_duration(max_total)}: allow a longer total or use fewer stages")
    out.append(f"or plan for a larger detectable effect than {effect:g}x (--effect), or a lower --power")
    return out


def rollout_markdown(plan: RolloutPlan) -> str:
    """The runbook a person follows by hand, stage by stage.

    >>> cfg = CanaryConfig.model_validate({"metrics": [{"name": "errors", "kind": "rate", "events": "errors"}]})
    >>> text = rollout_markdown(plan_rollout(cfg, rps=300, stages=[0.1, 1.0], effect=3.0, runs=50))
    >>> text.splitlines()[0]
    '# Canary rollout runbook'
    """
    lines = ["# Canary rollout runbook", "",
             f"Traffic {plan.rps:g} requests/s. Each stage dwells long enough for the gate to catch a canary with "
             f"{plan.effect:g}x the baseline error rate ({plan.baseline_rate:g}) with {plan.power:.0%} power "
             f"(seeded simulation of the gate, {plan.runs} runs, seed {plan.seed}). Total "
             f"{format_duration(plan.total)} of at most {format_duration(plan.max_total)}.", "",
             plan.stickiness, ""]
    if not plan.fits:
        lines += ["**The plan does not fit:**", *[f"- {s}" for s in plan.suggestions], ""]
    for index, s in enumerate(plan.stages, 1):
        lines += [f"## {index}. {s.name}", ""]
        if s.share >= 1:
            lines += [f"- Set the canary to 100%: {s.note}.", *[f"- {r}" for r in s.rollback], ""]
            continue
        action = "Mirror production traffic to the canary (no user sees its answers)" if s.share == 0 else (
            f"Set the canary weight to {s.name}")
        lines += [f"- {action}.",
                  f"- Dwell {format_duration(s.dwell)}: `mlplat canary watch --prometheus URL --config canary.yaml "
                  f"--traffic-share {s.share if s.share > 0 else 0.5:g} --max-duration {int(s.dwell)}s"
                  f"{_metrics_flag(plan)}`.",
                  f"- Power to catch {plan.effect:g}x in that time: {s.power:.2f}"
                  + ("" if s.reachable else " (below the target: see above)") + ".",
                  f"- Blast radius if the canary is bad: {s.affected_requests:,.0f} requests at most "
                  f"({s.expected_affected_with_gate:,.0f} expected, the gate stops it early), "
                  f"{s.extra_errors:,.1f} extra errors at most.",
                  f"- Checks: {', '.join(s.checks) or 'none'}."]
        if s.cannot_judge:
            lines.append(f"- Cannot judge here: {', '.join(s.cannot_judge)}.")
        if s.note:
            lines.append(f"- Note: {s.note}.")
        lines += [*[f"- {r}." for r in s.rollback], ""]
    return "\n".join(lines)


def _metrics_args(plan: RolloutPlan) -> list[str]:
    """``--metrics`` for the gate's command when the plan judges only some metrics (the same ones it sized)."""
    return ["--metrics", ",".join(plan.metrics)] if plan.metrics else []


def _metrics_flag(plan: RolloutPlan) -> str:
    """:func:`_metrics_args` for a shell command line: quoted, with a leading space (empty when none)."""
    import shlex

    args = _metrics_args(plan)
    return " " + shlex.join(args) if args else ""


def _weight(share: float) -> int:
    """Argo's setWeight and Flagger's stepWeights are whole percents."""
    weight = round(share * 100)
    if weight < 1 or abs(weight - share * 100) > 1e-9:
        raise SimulationError(f"Argo and Flagger take whole-percent weights; {share * 100:g}% is not one "
                              "(use stages such as 1%, 5%, 25%)")
    return weight


def rollout_argo(plan: RolloutPlan, *, template: str = "mlplat-canary-stage-gate") -> str:
    """A Rollout ``strategy.canary`` block and the AnalysisTemplate it calls, as YAML documents."""
    import yaml

    steps: list[dict[str, Any]] = []
    for s in plan.stages:
        if s.share >= 1:
            steps.append({"setWeight": 100})
            continue
        if s.share == 0:
            steps.append({"setMirrorRoute": {"name": "mlplat-shadow", "percentage": 100,
                                             "match": [{"path": {"prefix": "/"}}]}})
        else:
            steps.append({"setWeight": _weight(s.share)})
        window = f"{math.ceil(s.dwell)}s"
        steps.append({"pause": {"duration": window}})
        steps.append({"analysis": {"templates": [{"templateName": template}], "args": [
            {"name": "window", "value": window},
            {"name": "traffic-share", "value": f"{s.share if s.share > 0 else 0.5:g}"}]}})
        if s.share == 0:
            steps.append({"setMirrorRoute": {"name": "mlplat-shadow"}})
    # workloadRef points the Rollout at an existing Deployment. Without a traffic router Argo splits traffic
    # by pod counts, so the replicas make every weight a whole number of pods (4 replicas made 5% one pod of
    # five: 20% of the traffic, and the stage's SRM check against 5% would roll back).
    weights = [step["setWeight"] for step in steps if "setWeight" in step]
    replicas = max(2, math.lcm(*(100 // math.gcd(w, 100) for w in weights)))
    shadow = any(s.share == 0 for s in plan.stages)
    # Argo accepts setMirrorRoute only with Istio routing: a VirtualService named here, to be renamed.
    routing = {"trafficRouting": {"istio": {"virtualService": {"name": "model", "routes": ["primary"]}},
                                  "managedRoutes": [{"name": "mlplat-shadow"}]}} if shadow else {}
    rollout = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "metadata": {"name": "model"},
               "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "model"}},
                        "workloadRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "model"},
                        "strategy": {"canary": {**routing, "steps": steps}}}}
    analysis = {"apiVersion": "argoproj.io/v1alpha1", "kind": "AnalysisTemplate", "metadata": {"name": template},
                "spec": {"args": [{"name": "prometheus-url", "value": "http://prometheus.monitoring.svc:9090"},
                                  {"name": "window"}, {"name": "traffic-share"}],
                         "metrics": [{"name": "mlplat-canary", "count": 1, "failureLimit": 0, "provider": {"job": {
                             "spec": {"backoffLimit": 0, "template": {"spec": {
                                 "restartPolicy": "Never",
                                 "containers": [{"name": "mlplat", "image": "ghcr.io/example/mlplat:0.1.0",
                                                 "command": ["mlplat", "canary", "analyze"],
                                                 "args": ["--prometheus", "{{args.prometheus-url}}", "--config",
                                                          "/config/canary.yaml", "--start",
                                                          "now-{{args.window}}", "--max-duration",
                                                          "{{args.window}}", "--traffic-share",
                                                          "{{args.traffic-share}}", *_metrics_args(plan)],
                                                 "volumeMounts": [{"name": "config", "mountPath": "/config"}]}],
                                 # The ConfigMap of examples/argo/analysis-template.yaml holds canary.yaml.
                                 "volumes": [{"name": "config",
                                              "configMap": {"name": "mlplat-canary-config"}}]}}}}}}]}}
    header = (f"# mlplat canary rollout: {plan.rps:g} req/s, {plan.effect:g}x errors at {plan.power:.0%} power "
              f"per stage; total {format_duration(plan.total)}.\n# Rename `model` to your workload (or merge "
              "spec.strategy into your Rollout).\n# Each stage sets its weight, pauses for its planned dwell, "
              "then a Job\n# runs `mlplat canary analyze` on "
              "that window (canary.yaml from the ConfigMap mlplat-canary-config, with\n# "
              "promote_on_timeout: true, so a clean stage passes; "
              "ROLLBACK or CONTINUE fails the step).\n# For rollback during the dwell, run `mlplat canary "
              "watch` as background analysis (examples/argo/analysis-template.yaml).\n")
    header += (f"# replicas: {replicas} makes every weight a whole number of pods, as Argo splits traffic by pod "
               "counts without a traffic router.\n")
    if shadow:
        header += ("# setMirrorRoute needs Istio routing: rename the VirtualService `model` and its route "
                   "`primary` to yours.\n")
    return header + yaml.safe_dump_all([rollout, analysis], sort_keys=False)


def rollout_flagger(plan: RolloutPlan) -> str:
    """A Flagger Canary ``analysis`` block whose webhook runs the gate through the Flagger load tester.

    Traffic stages become ``stepWeights``; a shadow stage becomes ``mirror: true`` (Istio only), which Flagger
    runs as one interval of mirroring before the first weight, or, with no traffic stage, as Blue/Green
    mirroring for one iteration. A plan with no judged stage at all is ``skipAnalysis: true``.
    """
    import yaml

    weights = [_weight(s.share) for s in plan.stages if 0 < s.share < 1]
    judged = [s for s in plan.stages if s.share < 1]
    shadow = any(s.share == 0 for s in judged)
    dwell = max((s.dwell for s in judged), default=60.0)
    minutes = max(1, math.ceil(dwell / 60))
    # Passes on PROMOTE (0) and CONTINUE (3) only: a gate that could not judge (bad input 4, an error 5)
    # fails closed, as a ROLLBACK does; `test $? -ne 1` let those promote an unjudged canary.
    gate = ("mlplat canary analyze --prometheus http://prometheus.monitoring.svc:9090 --config /config/canary.yaml "
            f"--start now-{minutes}m --step 60s{_metrics_flag(plan)}; rc=$?; test $rc -eq 0 -o $rc -eq 3")
    analysis: dict[str, Any] = {"interval": f"{minutes}m", "threshold": 1}
    if weights:
        analysis.update({"stepWeights": weights, "maxWeight": weights[-1]})
    else:
        # Flagger's CRD wants one of iterations, stepWeight or stepWeights. With a shadow stage this is its
        # Blue/Green mirroring; with none, skipAnalysis (below) skips it, and the field only satisfies the CRD.
        analysis["iterations"] = 1
    if shadow:
        analysis.update({"mirror": True, "mirrorWeight": 100})
    # bash, not cmd: the loadtester runs a cmd task in the background and answers at once, so the gate's
    # exit code never reached Flagger
    analysis["webhooks"] = [{"name": "mlplat-gate", "type": "rollout", "url": "http://flagger-loadtester.test/",
                             "timeout": "120s", "metadata": {"type": "bash", "cmd": gate}}]
    spec: dict[str, Any] = {"targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "model"},
                            "service": {"port": 80}}
    if not judged:
        spec["skipAnalysis"] = True
    spec["analysis"] = analysis
    canary = {"apiVersion": "flagger.app/v1beta1", "kind": "Canary", "metadata": {"name": "model"}, "spec": spec}
    header = ("# mlplat canary rollout for Flagger. Flagger gives every step the same interval, so it is set to "
              + (f"the longest planned dwell ({format_duration(dwell)})" if judged else "one minute (no stage dwells)")
              + ".\n# The webhook passes on PROMOTE or CONTINUE and fails (Flagger rolls back) on ROLLBACK or when "
              "the gate cannot judge\n# (exit 4, 5). Mount a canary.yaml with srm.enabled: false, since the weight, "
              "hence the expected split,\n# changes between steps inside the window. The rate test stays valid at "
              "every weight; canary.yaml's\n# traffic_share only centres its prior.\n")
    if shadow and weights:
        header += ("# The shadow stage is `mirror: true`: Flagger mirrors every request to the canary for one "
                   "interval\n# before the first weight. Istio only.\n")
    elif shadow:
        header += ("# The shadow stage is `mirror: true` with `iterations: 1`, Flagger's Blue/Green mirroring "
                   "(Istio only): one interval\n# mirrored, then all live traffic goes to the canary for one more "
                   "interval (the gate then has no baseline and\n# answers CONTINUE, which passes) before the "
                   "promotion.\n")
    if not judged:
        header += ("# No stage below 100%: nothing to judge, so skipAnalysis: true promotes the canary once its "
                   "pods are healthy.\n")
    return header + yaml.safe_dump(canary, sort_keys=False)
