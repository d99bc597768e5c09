"""What a user checks before filing a bug: versions, the compute device, the servers, the BLAS."""

from __future__ import annotations

import platform
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

__all__ = ["DoctorReport", "diagnose"]

KEY_PACKAGES = ("typer", "rich", "pydantic", "PyYAML", "numpy", "scipy", "pandas", "statsmodels",
                "matplotlib", "torch", "redis")
SERVERS = ("redis-server", "prometheus", "promtool")


@dataclass(frozen=True)
class DoctorReport:
    """Facts about this installation; ``to_dict()`` for ``--json``."""

    python: str
    platform: str
    mlplat: str
    packages: dict[str, str | None]
    torch: dict[str, Any]
    servers: dict[str, dict[str, str | None]]
    blas: dict[str, str | None] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "python": self.python,
            "platform": self.platform,
            "mlplat": self.mlplat,
            "packages": dict(self.packages),
            "torch": dict(self.torch),
            "servers": {k: dict(v) for k, v in self.servers.items()},
            "blas": dict(self.blas),
        }


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _torch_facts() -> dict[str, Any]:
    if _version("torch") is None:
        return {"installed": False, "device": None, "cuda": False,
                "hint": "pip install 'mlplat[bench]' to run `mlplat bench`"}
    import torch  # heavy: only here, when doctor runs

    facts: dict[str, Any] = {"installed": True, "version": torch.__version__,
                             "cuda": bool(torch.cuda.is_available()), "threads": torch.get_num_threads()}
    if facts["cuda"]:
        index = torch.cuda.current_device()
        props = torch.cuda.get_device_properties(index)
        facts.update(device=f"cuda:{index}", device_name=props.name,
                     memory_gib=round(props.total_memory / 2**30, 1), cuda_version=torch.version.cuda)
    else:
        facts.update(device="cpu", device_name=platform.processor() or platform.machine())
    return facts


def _server_version(path: str) -> str | None:
    try:
        done = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    lines = (done.stdout or done.stderr).strip().splitlines()
    return lines[0][:120] if lines else None


def _blas() -> dict[str, str | None]:
    import numpy as np

    try:
        config = np.show_config(mode="dicts")
        blas = config["Build Dependencies"]["blas"]
        return {"name": blas.get("name"), "version": blas.get("version")}
    except Exception:  # numpy's config layout changes between releases; this is a diagnostic only
        return {"name": None, "version": None}


def diagnose() -> DoctorReport:
    """Collect the facts a bug report needs; imports torch only if it is installed."""
    from mlplat import __version__

    servers = {}
    for name in SERVERS:
        path = shutil.which(name)
        servers[name] = {"path": path, "version": _server_version(path) if path else None}
    return DoctorReport(
        python=sys.version.split()[0],
        platform=platform.platform(),
        mlplat=__version__,
        packages={name: _version(name) for name in KEY_PACKAGES},
        torch=_torch_facts(),
        servers=servers,
        blas=_blas(),
    )
