"""`mlplat doctor`: versions, device and servers, for bug reports."""

from __future__ import annotations

import typer
from rich.table import Table
from rich.text import Text

from mlplat.cli._output import JsonOption, Output, make_table
from mlplat.doctor import DoctorReport, diagnose


def _render(report: DoctorReport) -> Table:
    rows: list[tuple[str, str | Text]] = [("python", report.python), ("platform", report.platform),
                                          ("mlplat", report.mlplat)]
    rows += [(name, version or Text("not installed", style="yellow")) for name, version in report.packages.items()]
    torch = report.torch
    if torch.get("installed"):
        device = torch["device"]
        detail = torch.get("device_name", "")
        if torch.get("cuda"):
            detail += f", {torch['memory_gib']} GiB, CUDA {torch.get('cuda_version')}"
        rows.append(("torch device", f"{device} ({detail})"))
    else:
        rows.append(("torch device", Text.assemble(("torch not installed", "yellow"), f": {torch['hint']}")))
    for name, info in report.servers.items():
        value = f"{info['path']} ({info['version']})" if info["path"] else Text("not on PATH", style="yellow")
        rows.append((name, value))
    blas = report.blas
    rows.append(("numpy BLAS", f"{blas.get('name') or 'unknown'} {blas.get('version') or ''}".strip()))
    return make_table("mlplat doctor", ["check", "value"], rows)


def doctor(ctx: typer.Context, json: JsonOption = False) -> None:
    """Show Python, mlplat and library versions, the torch device, servers on PATH, and numpy's BLAS."""
    out = Output.from_ctx(ctx, json=json)
    report = diagnose()
    if out.json:
        out.result(report)
    else:
        out.out.print(_render(report))
