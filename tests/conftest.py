"""Shared fixtures: real servers on loopback for integration tests, and the CLI runner."""

from __future__ import annotations

import os
import shutil

import pytest
from typer.testing import CliRunner


def require_binary(name: str) -> str:
    """Path of a server binary; skip the test without it, or fail when MLPLAT_REQUIRE_SERVICES=1 (CI)."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not on PATH (apt-get install it; .ci/run does)"
        if os.environ.get("MLPLAT_REQUIRE_SERVICES") == "1":
            pytest.fail(message + " and MLPLAT_REQUIRE_SERVICES=1")
        pytest.skip(message)
    return path


@pytest.fixture
def runner() -> CliRunner:
    """A Typer CLI runner; stdout and stderr are kept apart so `--json` output can be parsed."""
    return CliRunner()
