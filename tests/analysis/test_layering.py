"""Library code of the canary group draws nothing itself: typer and rich stay in `mlplat.cli`."""

from __future__ import annotations

import ast
from pathlib import Path

import mlplat.analysis

ANALYSIS = Path(mlplat.analysis.__file__).parent


def test_analysis_imports_no_typer_or_rich() -> None:
    """No module of mlplat.analysis imports typer or rich, not even inside a function."""
    offenders = []
    for path in sorted(ANALYSIS.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            offenders += [f"{path.name}:{node.lineno}: {n}" for n in names if n.split(".")[0] in ("typer", "rich")]
    assert offenders == []
