"""Build-vs-buy scoring: weighted MCDA (WSM, TOPSIS, AHP weights), TCO as NPV, sensitivity, a pilot plan.

The doors are :func:`load_rubric` (YAML to a validated :class:`Rubric`), :func:`score_rubric` (ranking,
TCO, Monte Carlo sensitivity, crossovers, rank reversals, decision), :func:`decision_record`,
:func:`plot_result`, :func:`pilot_plan` and :func:`render_pilot`. The array functions :func:`normalize`,
:func:`wsm`, :func:`topsis` and :func:`ahp` work on a single decision matrix or a stack of draws.
"""

from mlplat.rubric._mcda import AhpResult, ahp, normalize, topsis, wsm
from mlplat.rubric._model import Rubric, load_rubric, pairwise_matrix, parse_start
from mlplat.rubric._pilot import Phase, PilotPlan, pilot_phases, pilot_plan, render_pilot
from mlplat.rubric._record import decision_record, plot_result
from mlplat.rubric._score import Decision, RankedOption, RubricResult, SensitivityResult, score_rubric
from mlplat.rubric._sensitivity import (
    Crossover,
    RankReversal,
    crossovers,
    monte_carlo,
    rank_reversals,
    triangular,
)
from mlplat.rubric._tco import TcoResult, YearCost, npv, tco_table

__all__ = [
    "AhpResult",
    "Crossover",
    "Decision",
    "Phase",
    "PilotPlan",
    "RankReversal",
    "RankedOption",
    "Rubric",
    "RubricResult",
    "SensitivityResult",
    "TcoResult",
    "YearCost",
    "ahp",
    "crossovers",
    "decision_record",
    "load_rubric",
    "monte_carlo",
    "normalize",
    "npv",
    "pairwise_matrix",
    "parse_start",
    "pilot_phases",
    "pilot_plan",
    "plot_result",
    "rank_reversals",
    "render_pilot",
    "score_rubric",
    "tco_table",
    "topsis",
    "triangular",
    "wsm",
]
