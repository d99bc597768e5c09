"""Each subpackage's __all__ names exactly its public face (STYLE.md rule 1)."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys
import types

import pytest

import mlplat

SUBPACKAGES = sorted(m.name for m in pkgutil.iter_modules(mlplat.__path__) if m.ispkg and m.name != "cli")


@pytest.mark.parametrize("name", SUBPACKAGES)
def test_all_is_complete(name: str) -> None:
    """Every public, non-module name in the package is listed in __all__, and every listed name exists."""
    module = importlib.import_module(f"mlplat.{name}")
    exported = set(module.__all__)
    public = {attr for attr, value in vars(module).items()
              if not attr.startswith("_") and not isinstance(value, types.ModuleType)
              and attr not in {"annotations", "TYPE_CHECKING"}}
    assert public == exported
    for attr in exported:
        assert hasattr(module, attr)


@pytest.mark.parametrize("name", SUBPACKAGES)
def test_library_imports_no_cli_or_heavy_modules(name: str) -> None:
    """Library code never imports typer or rich, and imports the heavy libraries lazily (DESIGN.md)."""
    banned = ["typer", "rich", "matplotlib", "scipy", "pandas", "torch", "statsmodels"]
    code = f"import sys, mlplat.{name}; print(','.join(m for m in {banned!r} if m in sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == ""
