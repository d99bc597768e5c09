"""Dynamic batching for model inference, and the load generator behind `mlplat bench`.

:class:`DynamicBatcher` groups requests from threads and event loops into batches for one ``predict``
call within a per-request deadline. :func:`run_bench` profiles a torch model and compares batching
policies under open-loop and closed-loop load; torch is imported only inside the functions that use it.
"""

from mlplat.batcher._batcher import DynamicBatcher
from mlplat.batcher._bench import BenchConfig, BenchResult, PolicyResult, run_bench, write_plot
from mlplat.batcher._load import POLICIES, WindowBatcher
from mlplat.batcher._models import ModelSpec, ProfilePoint, TorchPredictor, profile_predict, resolve_device
from mlplat.batcher._stats import BatcherStats, percentiles

__all__ = [
    "POLICIES",
    "BatcherStats",
    "BenchConfig",
    "BenchResult",
    "DynamicBatcher",
    "ModelSpec",
    "PolicyResult",
    "ProfilePoint",
    "TorchPredictor",
    "WindowBatcher",
    "percentiles",
    "profile_predict",
    "resolve_device",
    "run_bench",
    "write_plot",
]
