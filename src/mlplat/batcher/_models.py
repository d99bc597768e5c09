"""The torch models `mlplat bench` serves, the device choice, and a batch predict that is honest about time.

torch is imported inside the functions: importing :mod:`mlplat.batcher` must not import it.
"""

from __future__ import annotations

import itertools
import math
import statistics
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from mlplat.errors import ConfigError, DeviceError

__all__ = ["ModelSpec", "ProfilePoint", "TorchPredictor", "profile_predict", "resolve_device"]

DTYPES = ("float32", "float16", "bfloat16")
MODELS = ("mlp", "transformer")
# Sizes a benchmark model may have, checked before torch allocates anything: 1e9 float32 weights are 4 GB,
# and one request of 2**22 values is 16 MB. Past these torch fails deep in an allocation, or swaps.
MAX_PARAMETERS = 1_000_000_000
MAX_REQUEST_VALUES = 2**22


def _torch() -> Any:
    try:
        import torch
    except ImportError as exc:
        raise DeviceError("torch is not installed; install the bench extra: pip install 'mlplat[bench]'") from exc
    return torch


def resolve_device(name: str) -> str:
    """``"cpu"`` or ``"cuda"`` for ``auto|cpu|cuda``; ``cuda`` without a usable GPU raises DeviceError."""
    torch = _torch()
    if name not in ("auto", "cpu", "cuda"):
        raise DeviceError(f"--device must be auto, cpu or cuda, got {name!r}")
    available = torch.cuda.is_available()
    if name == "cuda" and not available:
        build = "built without CUDA" if torch.version.cuda is None else f"CUDA {torch.version.cuda}, no GPU visible"
        raise DeviceError(f"--device cuda: CUDA is not available (torch {torch.__version__}, {build}); "
                          "use --device cpu or --device auto")
    if name == "auto":
        return "cuda" if available else "cpu"
    return name


@dataclass(frozen=True)
class ModelSpec:
    """Which model to build: an MLP ``width-hidden-width`` or a small transformer encoder.

    ``layers`` is the number of hidden layers (MLP) or encoder layers (transformer); ``seq_len`` and
    ``heads`` apply to the transformer, whose requests are ``seq_len x width`` token embeddings.
    """

    kind: Literal["mlp", "transformer"] = "mlp"
    width: int = 512
    hidden: int = 2048
    layers: int = 1
    seq_len: int = 16
    heads: int = 8

    def __post_init__(self) -> None:
        if self.kind not in MODELS:
            raise ConfigError(f"--model must be one of {', '.join(MODELS)}, got {self.kind!r}")
        for name in ("width", "hidden", "layers", "seq_len", "heads"):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise ConfigError(f"model `{name}` must be a positive integer, got {value!r}")
        if self.kind == "transformer" and self.width % self.heads:
            raise ConfigError(f"transformer `width` ({self.width}) must be a multiple of `heads` ({self.heads})")
        if self.parameters() > MAX_PARAMETERS:
            raise ConfigError(f"{self.describe()} has about {self.parameters():.3g} weights, more than the "
                              f"{MAX_PARAMETERS:,} a benchmark model may have; lower --width, --hidden or --layers")
        if math.prod(self.input_shape()) > MAX_REQUEST_VALUES:
            raise ConfigError(f"one request of shape {self.input_shape()} holds more than {MAX_REQUEST_VALUES:,} "
                              "values; lower --width or --seq-len")

    def parameters(self) -> int:
        """Weights (biases left out) of the model :meth:`build` makes: enough to refuse an absurd size."""
        if self.kind == "mlp":
            return self.width * self.hidden * 2 + self.hidden * self.hidden * (self.layers - 1)
        return self.layers * (4 * self.width * self.width + 2 * self.width * self.hidden)

    def describe(self) -> str:
        if self.kind == "mlp":
            return f"mlp {self.width}-" + f"{self.hidden}-" * self.layers + f"{self.width}"
        return (f"transformer {self.layers} layer(s), width {self.width}, ffn {self.hidden}, "
                f"{self.heads} heads, {self.seq_len} tokens")

    def build(self) -> Any:
        """The torch module, in eval mode, on the CPU in float32."""
        torch = _torch()
        nn = torch.nn
        if self.kind == "mlp":
            dims = [self.width] + [self.hidden] * self.layers + [self.width]
            parts: list[Any] = []
            for i, (a, b) in enumerate(itertools.pairwise(dims)):
                parts.append(nn.Linear(a, b))
                if i < len(dims) - 2:
                    parts.append(nn.ReLU())
            return nn.Sequential(*parts).eval()
        layer = nn.TransformerEncoderLayer(self.width, self.heads, self.hidden, dropout=0.0, batch_first=True)
        return nn.TransformerEncoder(layer, self.layers, enable_nested_tensor=False).eval()

    def input_shape(self) -> tuple[int, ...]:
        return (self.width,) if self.kind == "mlp" else (self.seq_len, self.width)


class TorchPredictor:
    """``predict(items) -> rows``: stack the requests, run the model, return one output row per request.

    On CUDA the batch is stacked into pinned host memory and copied with ``non_blocking=True``; the
    output comes back with a blocking copy, so when ``__call__`` returns the GPU work is finished and the
    caller's clock reads real time. ``float16``/``bfloat16`` run under :func:`torch.autocast` with
    float32 weights. Everything runs under :func:`torch.inference_mode`.
    """

    def __init__(self, spec: ModelSpec, *, device: str = "cpu", dtype: str = "float32", seed: int = 0) -> None:
        torch = _torch()
        if dtype not in DTYPES:
            raise ConfigError(f"--dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
        torch.manual_seed(seed)
        self.spec = spec
        self.device = torch.device(device)
        self.dtype = dtype
        self.model = spec.build().to(self.device)
        self._autocast = dtype != "float32"
        self._torch = torch
        self._local = threading.local()  # one pinned staging buffer per worker thread

    def example_inputs(self, count: int, seed: int = 0) -> list[Any]:
        """``count`` request inputs (CPU float32 tensors), drawn from a seeded generator."""
        gen = self._torch.Generator().manual_seed(seed)
        return list(self._torch.randn((count, *self.spec.input_shape()), generator=gen).unbind(0))

    def _to_device(self, items: Sequence[Any]) -> Any:
        torch = self._torch
        if self.device.type != "cuda":
            return torch.stack(list(items))
        pinned = getattr(self._local, "pinned", None)
        if pinned is None or pinned.shape[0] < len(items):
            pinned = torch.empty((max(len(items), 1), *self.spec.input_shape()), pin_memory=True)
            self._local.pinned = pinned
        host = pinned[: len(items)]
        torch.stack(list(items), out=host)
        # Safe to refill on this thread's next call: __call__ ends with a blocking copy on the same stream,
        # so this upload has finished by then.
        return host.to(self.device, non_blocking=True)

    def __call__(self, items: Sequence[Any]) -> Sequence[Any]:
        torch = self._torch
        with torch.inference_mode():
            batch = self._to_device(items)
            if self._autocast:
                with torch.autocast(device_type=self.device.type, dtype=getattr(torch, self.dtype)):
                    out = self.model(batch)
            else:
                out = self.model(batch)
            out = out.float().cpu()  # a blocking copy: the device work is done when it returns
        return out.unbind(0)

    def synchronize(self) -> None:
        """Wait for queued device work (a no-op on the CPU); call before reading a clock."""
        if self.device.type == "cuda":
            self._torch.cuda.synchronize(self.device)


@dataclass(frozen=True)
class ProfilePoint:
    """Median predict time ``ms`` for a batch of ``batch`` requests."""

    batch: int
    ms: float

    @property
    def rps(self) -> float:
        """Requests per second one worker serves at this batch size: ``batch / S(batch)``."""
        return self.batch / (self.ms / 1000.0) if self.ms > 0 else float("inf")

    def to_dict(self) -> dict[str, float]:
        return {"batch": self.batch, "ms": self.ms, "rps": self.rps}


def profile_predict(predictor: TorchPredictor, sizes: Sequence[int], *, repeats: int = 7,
                    warmup: int = 3) -> list[ProfilePoint]:
    """S(b): the median time of ``repeats`` predict calls at each batch size, after ``warmup`` calls."""
    inputs = predictor.example_inputs(max(sizes))
    points = []
    for size in sizes:
        batch = inputs[:size]
        for _ in range(warmup):
            predictor(batch)
        times = []
        for _ in range(repeats):
            predictor.synchronize()
            start = time.perf_counter()
            predictor(batch)
            predictor.synchronize()
            times.append(time.perf_counter() - start)
        points.append(ProfilePoint(size, statistics.median(times) * 1000.0))
    return points
