"""Pydantic models of the rubric YAML, with the cross-reference checks that pydantic cannot express."""

from __future__ import annotations

import math
from datetime import date
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, PrivateAttr, model_validator

from mlplat.config import ConfigModel, YamlDocument, load_document, validate_document
from mlplat.errors import ConfigError, KeyPath

Method = Literal["wsm", "topsis"]
Normalization = Literal["minmax", "vector", "sum", "max"]
# Infinite or NaN numbers would turn into NaN scores; YAML reads `.inf` and `.nan` as floats. Past a
# quadrillion a number is a typo, and 1e308 would overflow the NPV's draws or TOPSIS's squares to inf.
MAX_MAGNITUDE = 1e15
Finite = Annotated[float, Field(allow_inf_nan=False, ge=-MAX_MAGNITUDE, le=MAX_MAGNITUDE)]
# A discount rate of -0.99999 makes (1 + r)^t underflow to 0 over a few decades: the NPV divides by zero or
# overflows. Real rates (even negative real rates) lie far above -0.5, where (1 + r)^50 is still above 1e-15.
MIN_DISCOUNT_RATE = -0.5
Id = Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$", description="short identifier")]
# Judgements that differ by less than this from the reciprocal of their mirror entry count as equal:
# YAML users write 0.333 for 1/3.
_RECIPROCAL_RTOL = 0.01
# The smallest judgement (and 1 / it the largest): Saaty's scale runs from 1/9 to 9.
MIN_JUDGEMENT = 1e-9


class Triangular(ConfigModel):
    """An uncertain score: a triangular distribution from ``low`` through ``mode`` to ``high``."""

    low: Finite
    mode: Finite
    high: Finite


Score = Finite | Triangular


class Criterion(ConfigModel):
    """One criterion: its direction, weight (or AHP judgements instead), unit and scoring guide."""

    id: Id
    name: str | None = None
    direction: Literal["cost", "benefit"]
    weight: Annotated[Finite, Field(ge=0, description="relative weight; rescaled to sum to 1")] | None = None
    unit: str | None = None
    source: Literal["tco"] | None = Field(default=None, description="`tco`: the score is the risk-adjusted NPV")
    guide: dict[Annotated[int, Field(ge=1, le=5)], str] = Field(
        default_factory=dict, description="what a score of 1, 3 and 5 means, so two people score alike")

    @property
    def label(self) -> str:
        return self.name or self.id


class Option(ConfigModel):
    """One option (build, buy, hybrid...) and its score on every criterion not computed from TCO."""

    id: Id
    name: str | None = None
    description: str | None = None
    scores: dict[str, Score] = Field(default_factory=dict)
    consequences: list[str] = Field(default_factory=list)

    @property
    def label(self) -> str:
        return self.name or self.id


class CashFlow(ConfigModel):
    """One line of an option's TCO: a fixed ``amount`` or ``unit_price`` x ``volume`` growing yearly."""

    name: str
    year: Annotated[int, Field(ge=0)] | None = None
    years: list[Annotated[int, Field(ge=0)]] | None = None
    amount: Finite | None = None
    unit_price: Annotated[Finite, Field(ge=0)] | None = None
    volume: Annotated[Finite, Field(ge=0)] | None = None
    growth: Annotated[Finite, Field(gt=-1, le=10, description="yearly growth of the volume, at most 10 "
                                                              "(elevenfold a year)")] = 0.0
    probability: Annotated[float, Field(ge=0, le=1, description="chance the cost happens")] = 1.0

    @property
    def year_list(self) -> list[int]:
        return [self.year] if self.year is not None else list(self.years or [])

    def amount_in(self, year: int) -> float:
        """Cash out in ``year`` if the cost happens (volume grows from the item's first year)."""
        if self.amount is not None:
            return self.amount
        first = min(self.year_list)
        assert self.unit_price is not None and self.volume is not None  # guaranteed by _shape
        return self.unit_price * self.volume * (1.0 + self.growth) ** (year - first)


class Tco(ConfigModel):
    """Total cost of ownership: a discount rate, a horizon, and cash flows per option."""

    discount_rate: Annotated[Finite, Field(gt=MIN_DISCOUNT_RATE, le=1, description=(
        "yearly rate in (-0.5, 1]; a rate near -1 divides by (1 + r)^t, which vanishes"))] = 0.10
    horizon_years: Annotated[int, Field(ge=1, le=50)] = 3
    currency: str = "USD"
    options: dict[str, list[CashFlow]]


class Threshold(ConfigModel):
    """A numeric pilot criterion: ``metric op value``, for example ``p99_latency_ms <= 50``."""

    metric: str
    op: Literal["<", "<=", ">", ">=", "=="]
    value: Finite
    description: str | None = None

    def __str__(self) -> str:
        text = f"`{self.metric} {self.op} {self.value:g}`"
        return f"{text}: {self.description}" if self.description else text


class Workload(ConfigModel):
    """A representative workload the pilot must carry."""

    name: str
    description: str | None = None
    share: Annotated[float, Field(ge=0, le=1)] | None = None


class Pilot(ConfigModel):
    """How the chosen option is piloted before it is adopted."""

    owner: str = "unassigned"
    goal: str | None = None
    scope: str | None = None
    start: date | None = None
    duration_weeks: Annotated[int, Field(ge=1, le=52)] = 6
    workloads: list[Workload | str] = Field(default_factory=list)
    success_criteria: list[Threshold] = Field(default_factory=list)
    kill_criteria: list[Threshold] = Field(default_factory=list)
    canary_config: str = "canary.yaml"
    sim_config: str = "sim.yaml"
    # From one request in 11 days: the plan's `sim compare --rates` sweeps up from a tenth of it, which must
    # stay a positive number once printed.
    rps: Annotated[Finite, Field(ge=1e-6, description="peak requests/s in the pilot (sizes canary stages)")] | None = (
        None
    )
    prometheus_url: str | None = None


# Most Monte Carlo draws. Memory stays flat (draws are scored in blocks of 20,000, ~80 MB), but time grows
# with them: 10M draws take ~16 s on the bundled 3-option example and ~75 s on 10 options x 12 criteria
# (measured), and P(best) from 10M draws already has a standard error below 0.0002.
MAX_DRAWS = 10_000_000


class Sensitivity(ConfigModel):
    """Monte Carlo settings; the command line overrides draws and seed."""

    draws: Annotated[int, Field(ge=0, le=MAX_DRAWS)] = 10_000
    seed: Annotated[int, Field(ge=0, description="numpy's generator takes seeds >= 0")] = 0
    concentration: Annotated[Finite, Field(gt=0, description="Dirichlet concentration around the weights")] = 100.0


class Rubric(ConfigModel):
    """A build-vs-buy rubric: criteria, options, optional AHP judgements, TCO and pilot."""

    title: str
    context: str | None = None
    method: Method = "wsm"
    normalization: Normalization = "minmax"
    criteria: list[Criterion] = Field(min_length=1)
    weights_ahp: dict[str, dict[str, float | str]] | None = None
    options: list[Option] = Field(min_length=2)
    tco: Tco | None = None
    sensitivity: Sensitivity = Field(default_factory=Sensitivity)
    pilot: Pilot = Field(default_factory=Pilot)

    _document: YamlDocument | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _cross_references(self) -> Rubric:
        _unique(self.criterion_ids, "criteria")
        _unique(self.option_ids, "options")
        self._check_weights()
        self._check_scores()
        self._check_tco()
        return self

    def _check_weights(self) -> None:
        given = [c.weight is not None for c in self.criteria]
        if self.weights_ahp is not None:
            if any(given):
                index = given.index(True)
                raise ConfigError("give either `weight` on criteria or `weights_ahp`, not both",
                                  path=("criteria", index, "weight"))
            pairwise_matrix(self.weights_ahp, self.criterion_ids)  # raises ConfigError on a bad judgement
            return
        if not all(given):
            index = given.index(False)
            raise ConfigError("every criterion needs a `weight` (or give `weights_ahp`)", path=("criteria", index))
        if not any((c.weight or 0.0) > 0 for c in self.criteria):
            raise ConfigError("weights are all zero; at least one must be > 0", path=("criteria", 0, "weight"))

    def _check_scores(self) -> None:
        for index, option in enumerate(self.options):
            for key, value in option.scores.items():
                if isinstance(value, Triangular) and not (value.low <= value.mode <= value.high):
                    raise ConfigError(f"must satisfy low <= mode <= high, got {value.low}, {value.mode}, "
                                      f"{value.high}", path=("options", index, "scores", key))
        computed = {c.id for c in self.criteria if c.source == "tco"}
        scored = [c.id for c in self.criteria if c.source is None]
        for index, option in enumerate(self.options):
            for key in option.scores:
                if key in computed:
                    raise ConfigError(f"criterion {key!r} is computed from the `tco` section; remove this score",
                                      path=("options", index, "scores", key))
                if key not in scored:
                    raise ConfigError(f"unknown criterion {key!r}; criteria are: {', '.join(scored)}",
                                      path=("options", index, "scores", key))
            missing = [c for c in scored if c not in option.scores]
            if missing:
                raise ConfigError(f"missing score for criterion {missing[0]!r}", path=("options", index, "scores"))

    def _check_tco(self) -> None:
        ids = self.option_ids
        if self.tco is not None:
            for key, flows in self.tco.options.items():
                if key not in ids:
                    raise ConfigError(f"unknown option {key!r}; options are: {', '.join(ids)}",
                                      path=("tco", "options", key))
                for index, flow in enumerate(flows):
                    _check_flow(flow, self.tco.horizon_years, ("tco", "options", key, index))
        first = next((i for i, c in enumerate(self.criteria) if c.source == "tco"), None)
        if first is not None:
            if self.tco is None:
                raise ConfigError("`source: tco` needs a `tco` section", path=("criteria", first, "source"))
            for position, criterion in enumerate(self.criteria):
                if criterion.source == "tco" and criterion.direction != "cost":
                    raise ConfigError("a `source: tco` criterion is a cost (its score is an NPV of costs); "
                                      "set `direction: cost`", path=("criteria", position, "direction"))
            for position, option in enumerate(ids):
                if option not in self.tco.options:
                    raise ConfigError(f"option {option!r} has no cash flows under tco.options",
                                      path=("options", position, "id"))

    def error(self, path: KeyPath, message: str) -> ConfigError:
        """A :class:`ConfigError` at ``path``, with file, line and column when the rubric came from a file."""
        if self._document is not None:
            return self._document.error(path, message)
        return ConfigError(message, path=path)

    @property
    def criterion_ids(self) -> list[str]:
        return [c.id for c in self.criteria]

    @property
    def option_ids(self) -> list[str]:
        return [o.id for o in self.options]

    def criterion(self, criterion_id: str) -> Criterion:
        """The criterion with this id."""
        return next(c for c in self.criteria if c.id == criterion_id)

    def option(self, option_id: str) -> Option:
        """The option with this id."""
        return next(o for o in self.options if o.id == option_id)


def _check_flow(flow: CashFlow, horizon: int, where: tuple[str | int, ...]) -> None:
    if (flow.year is None) == (flow.years is None):
        raise ConfigError("give exactly one of `year` or `years`", path=(*where, "year"))
    if flow.years is not None and not flow.years:
        raise ConfigError("must list at least one year", path=(*where, "years"))
    years = flow.years or []
    repeated = sorted({y for y in years if years.count(y) > 1})
    if repeated:
        raise ConfigError(f"lists year {repeated[0]} more than once, which would count the cost again; give each "
                          "year once (another item for a second cost that year)", path=(*where, "years"))
    fee = flow.unit_price is not None or flow.volume is not None
    if fee and (flow.unit_price is None or flow.volume is None):
        raise ConfigError("a volume-based fee needs both `unit_price` and `volume`", path=(*where, "unit_price"))
    if fee == (flow.amount is not None):
        raise ConfigError("give either `amount` or `unit_price` with `volume`", path=(*where, "amount"))
    if flow.growth != 0.0 and not fee:
        raise ConfigError("`growth` applies to volume-based fees only", path=(*where, "growth"))
    for year in flow.year_list:
        if year > horizon:
            key = "year" if flow.year is not None else "years"
            raise ConfigError(f"year {year} is outside the horizon 0..{horizon}", path=(*where, key))


def _unique(ids: list[str], where: str) -> None:
    seen: dict[str, int] = {}
    for index, value in enumerate(ids):
        if value in seen:
            raise ConfigError(f"duplicate id {value!r} (also at {where}[{seen[value]}])", path=(where, index, "id"))
        seen[value] = index


def _judgement(value: float | str, where: KeyPath) -> float:
    """A Saaty judgement: a number or a fraction written as ``"1/3"``."""
    if isinstance(value, str):
        top, _, bottom = value.partition("/")
        try:
            return float(top) / float(bottom) if bottom else float(top)
        except (ValueError, ZeroDivisionError):
            raise ConfigError(f"a judgement must be a number or a fraction such as '1/3', got {value!r}",
                              path=where) from None
    return float(value)


def pairwise_matrix(judgements: dict[str, dict[str, float | str]], ids: list[str]) -> list[list[float]]:
    """The full reciprocal AHP matrix from judgements given as ``{row: {column: a_ij}}``.

    The upper triangle is enough; an entry given in both directions must equal the reciprocal of its
    mirror. Raises :class:`ConfigError` with the key path of the offending judgement.

    Parameters
    ----------
    judgements : dict
        ``{row: {column: a_ij}}``: how much more important criterion ``row`` is than ``column`` (Saaty's 1
        to 9), as a number or a fraction such as ``"1/3"``. One direction of each pair is enough.
    ids : list of str
        The criteria, in the order of the matrix's rows and columns.

    Returns
    -------
    list of list of float
        The ``n x n`` matrix: 1 on the diagonal and ``1 / a_ij`` mirrored below each given ``a_ij``.

    Raises
    ------
    ConfigError
        If a criterion is unknown, a judgement is not a positive number, a criterion compared with itself
        is not 1, a judgement given both ways is not its mirror's reciprocal (within 1%), or a pair has no
        judgement. The error's path is under ``weights_ahp``.

    References
    ----------
    .. [1] T. L. Saaty, *The Analytic Hierarchy Process*, McGraw-Hill, 1980.

    Examples
    --------
    >>> pairwise_matrix({"cost": {"speed": 4, "risk": "1/2"}, "speed": {"risk": "1/8"}}, ["cost", "speed", "risk"])
    [[1.0, 4.0, 0.5], [0.25, 1.0, 0.125], [2.0, 8.0, 1.0]]
    """
    n = len(ids)
    index = {cid: i for i, cid in enumerate(ids)}
    matrix: list[list[float | None]] = [[1.0 if i == j else None for j in range(n)] for i in range(n)]
    for row, entries in judgements.items():
        if row not in index:
            raise ConfigError(f"unknown criterion {row!r}; criteria are: {', '.join(ids)}", path=("weights_ahp", row))
        for col, raw in entries.items():
            where = ("weights_ahp", row, col)
            value = _judgement(raw, where)
            if col not in index:
                raise ConfigError(f"unknown criterion {col!r}; criteria are: {', '.join(ids)}", path=where)
            if not math.isfinite(value) or value <= 0:
                raise ConfigError(f"a judgement must be > 0, got {value!r}", path=where)
            if not MIN_JUDGEMENT <= value <= 1.0 / MIN_JUDGEMENT:
                # A mirror of inf was refused later without a place; past about 1e200 the eigenvector solver
                # broke down and gave a negative consistency ratio, which passed --strict.
                raise ConfigError(f"a judgement must be from {MIN_JUDGEMENT:g} to {1 / MIN_JUDGEMENT:g} (Saaty's "
                                  f"scale runs from 1/9 to 9), got {value!r}", path=where)
            i, j = index[row], index[col]
            if i == j:
                if not math.isclose(value, 1.0, rel_tol=_RECIPROCAL_RTOL):
                    raise ConfigError(f"a criterion compared with itself must be 1, got {value!r}", path=where)
                continue
            mirror = matrix[j][i]
            if mirror is not None and not math.isclose(value * mirror, 1.0, rel_tol=_RECIPROCAL_RTOL):
                raise ConfigError(f"contradicts its reciprocal: {col}.{row} is {mirror:g}, so this must be "
                                  f"{1 / mirror:.4g}, got {value!r}", path=where)
            matrix[i][j], matrix[j][i] = value, 1.0 / value
    for i in range(n):
        for j in range(i + 1, n):
            if matrix[i][j] is None:
                raise ConfigError(f"no judgement for {ids[i]} vs {ids[j]}; give weights_ahp.{ids[i]}.{ids[j]}",
                                  path=("weights_ahp",))
    return [[float(v) for v in row if v is not None] for row in matrix]


def load_rubric(path: str | Path) -> Rubric:
    """Read and validate a rubric YAML file; errors name ``file:line:column`` and the key path."""
    doc = load_document(path)
    rubric = validate_document(doc, Rubric)
    rubric._document = doc
    return rubric


def parse_start(value: str | None) -> date | None:
    """A pilot start date from the command line (``YYYY-MM-DD``)."""
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ConfigError(f"--start must be a date as YYYY-MM-DD, got {value!r}") from None
