"""The canary verdict as Markdown (for a PR or an incident channel) and as a plot (matplotlib, Agg)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from mlplat.analysis._results import CanaryResult, MetricResult
from mlplat.units import format_change

__all__ = ["markdown_report", "write_plot"]


def _when(ts: float | None) -> str:
    if ts is None:
        return "-"
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _row(m: MetricResult) -> str:
    return (f"| {m.name}{' (critical)' if m.critical else ''} | **{m.status.value}** | {format_change(m.effect)} | "
            f"[{format_change(m.ci[0])}, {format_change(m.ci[1])}] | {m.p_value:.3g} | {m.alpha:.3g} | "
            f"{m.n_baseline:,.0f} | {m.n_canary:,.0f} | {_when(m.decided_at)} | {m.detail} |")


def markdown_report(result: CanaryResult, *, title: str = "Canary analysis") -> str:
    """A Markdown report: the decision and its reasons, the alpha split, SRM, and one row per test.

    Examples
    --------
    >>> from mlplat.analysis import CanaryResult, Verdict
    >>> r = CanaryResult(Verdict.CONTINUE, ("no data",), 0.05, "0.049 per metric", None, (), None, None, 0.0)
    >>> print(markdown_report(r).splitlines()[2])
    **Decision: CONTINUE**
    """
    lines = [f"# {title}", "", f"**Decision: {result.decision.value}**", ""]
    lines += [f"- {reason}" for reason in result.reasons]
    lines += ["", f"Data from {_when(result.start)} to {_when(result.at)} ({result.elapsed / 60:.0f} min). "
              f"Family-wise alpha {result.alpha:g} under continuous monitoring: {result.alpha_split}.", ""]
    if result.srm is not None:
        s = result.srm
        lines += [f"Sample-ratio check: canary share {s.observed_share:.4f} vs configured {s.expected_share:.4f}, "
                  f"anytime-valid p = {s.p_value:.3g} (alpha {s.alpha:g}): "
                  f"{'**MISMATCH**' if s.mismatch else 'consistent'}.", ""]
    lines += ["| test | status | effect | confidence sequence | p-value | alpha | n baseline | n canary | "
              "decided at | detail |", "|---|---|---|---|---|---|---|---|---|---|"]
    lines += [_row(m) for m in result.metrics]
    if result.warnings:
        lines += ["", "Warnings:", *[f"- {w}" for w in result.warnings]]
    lines += ["", "Effects are relative changes of the canary against the baseline (rate ratio - 1, quantile "
              "ratio - 1, mean difference over the baseline mean). p-values and confidence sequences are "
              "anytime-valid: they stay valid however often the canary is checked.", ""]
    return "\n".join(lines)


def write_plot(result: CanaryResult, path: str | Path, *, force: bool = False) -> Path:
    """Write a PNG to ``path``: per test, the anytime-valid p-value and the confidence sequence over time."""
    import numpy as np

    from mlplat.plots import pyplot, save_figure

    tests = [(m, m.series) for m in result.metrics if m.series is not None]
    rows = max(len(tests), 1)
    fig, axes = pyplot().subplots(rows, 2, figsize=(11, 2.6 * rows), squeeze=False)
    for row, (m, series) in enumerate(tests):
        t0 = result.start if result.start is not None else float(series.times[0])
        minutes = (series.times - t0) / 60.0
        ax_p, ax_ci = axes[row]
        ax_p.semilogy(minutes, np.maximum(series.p_value, 1e-12), color="C0")
        ax_p.axhline(m.alpha, color="C3", linestyle="--", linewidth=1, label=f"alpha {m.alpha:.3g}")
        ax_p.set_title(f"{m.name}: anytime p-value ({m.status.value})", fontsize=9)
        ax_p.set_xlabel("minutes")
        ax_p.legend(fontsize=7)
        if np.isnan(series.ci_low).all() and np.isnan(series.ci_high).all():
            # A test with no effect estimate (drift) has no sequence to draw; an empty band would look like one.
            ax_ci.text(0.5, 0.5, "no confidence sequence for this test", ha="center", va="center",
                       transform=ax_ci.transAxes, fontsize=8)
        else:
            # Open ends (a sequence not yet bounded) are drawn at the edge of the panel.
            lo = np.clip(np.nan_to_num(series.ci_low, nan=-1.0, neginf=-1.0), -1.0, 3.0)
            hi = np.clip(np.nan_to_num(series.ci_high, nan=3.0, posinf=3.0), -1.0, 3.0)
            ax_ci.fill_between(minutes, lo, hi, alpha=0.3, color="C1", label="confidence sequence")
        ax_ci.axhline(0.0, color="black", linewidth=0.8)
        ax_ci.set_title(f"{m.name}: relative effect", fontsize=9)
        ax_ci.set_xlabel("minutes")
        if m.decided_at is not None:
            for ax in (ax_p, ax_ci):
                ax.axvline((m.decided_at - t0) / 60.0, color="C2", linestyle=":", label="decision")
        if ax_ci.get_legend_handles_labels()[0]:
            ax_ci.legend(fontsize=7)
    fig.suptitle(f"canary: {result.decision.value}", fontsize=11)
    fig.tight_layout()
    return save_figure(fig, path, force=force, dpi=90)
