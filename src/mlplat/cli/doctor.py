"""`mlplat doctor`: versions, device and servers, for bug reports."""

from __future__ import annotations

import typer
from rich.console import Group
from rich.table import Table

from mlplat.cli._output import JsonOption, Output
from mlplat.doctor import DoctorReport, diagnose


def _render(report: DoctorReport) -> Group:
    table = Table(title="mlplat doctor", title_justify="left", show_header=True, header_style="bold")
    table.add_column("check")
    table.add_column("value")
    table.add_row("python", report.python)
    table.add_row("platform", report.platform)
    table.add_row("mlplat", report.mlplat)
    for name, version in report.packages.items():
        table.add_row(name, version or "[yellow]not installed[/yellow]")
    torch = report.torch
    if torch.get("installed"):
        device = torch["device"]
        detail = torch.get("device_name", "")
        if torch.get("cuda"):
            detail += f", {torch['memory_gib']} GiB, CUDA {torch.get('cuda_version')}"
        table.add_row("torch device", f"{device} ({detail})")
    else:
        table.add_row("torch device", f"[yellow]torch not installed[/yellow]: {torch['hint']}")
    for name, info in report.servers.items():
        value = f"{info['path']} ({info['version']})" if info["path"] else "[yellow]not on PATH[/yellow]"
        table.add_row(name, value)
    blas = report.blas
    table.add_row("numpy BLAS", f"{blas.get('name') or 'unknown'} {blas.get('version') or ''}".strip())
    return Group(table)


def doctor(ctx: typer.Context, json: JsonOption = False) -> None:
    """Show Python, mlplat and library versions, the torch device, servers on PATH, and numpy's BLAS."""
    out = Output.from_ctx(ctx, json=json)
    report = diagnose()
    if out.json:
        out.result(report)
    else:
        out.out.print(_render(report))
