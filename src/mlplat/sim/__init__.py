"""``mlplat sim``: serverless functions or Kubernetes for model serving, simulated with the bill.

The door is :func:`simulate`; :func:`sweep` runs it over a range of arrival rates. Analytic queueing
formulas (:func:`erlang_b`, :func:`erlang_c`) are here too: the tests check the simulator against them.
"""

from mlplat.sim._analytic import erlang_b, erlang_c
from mlplat.sim._levels import LevelRun, simulate_levels
from mlplat.sim._pool import Hpa, Kpa, PoolRun, PoolSpec, simulate_pool
from mlplat.sim._pricing import Price, PriceTable, Pricing, load_pricing
from mlplat.sim._results import BreakEven, Estimate, Margin, PlatformResult, SimulationResult, SweepResult
from mlplat.sim._scenario import Scenario, load_scenario
from mlplat.sim._simulate import Prepared, load, prepare, run_platform, simulate, sweep
from mlplat.sim._workload import Trace, arrivals, mean_rate, read_trace

__all__ = [
    "BreakEven",
    "Estimate",
    "Hpa",
    "Kpa",
    "LevelRun",
    "Margin",
    "PlatformResult",
    "PoolRun",
    "PoolSpec",
    "Prepared",
    "Price",
    "PriceTable",
    "Pricing",
    "Scenario",
    "SimulationResult",
    "SweepResult",
    "Trace",
    "arrivals",
    "erlang_b",
    "erlang_c",
    "load",
    "load_pricing",
    "load_scenario",
    "mean_rate",
    "prepare",
    "read_trace",
    "run_platform",
    "simulate",
    "simulate_levels",
    "simulate_pool",
    "sweep",
]
