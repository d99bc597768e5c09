"""Dynamic batching for model inference, and the load generator behind `mlplat bench`.

:class:`DynamicBatcher` groups requests from threads and event loops into batches for one ``predict``
call within a per-request deadline. The bench functions profile a torch model and compare batching
policies under open-loop and closed-loop load; torch is imported only inside them.
"""

from mlplat.batcher._batcher import DynamicBatcher
from mlplat.batcher._stats import BatcherStats, percentiles

__all__ = ["BatcherStats", "DynamicBatcher", "percentiles"]
