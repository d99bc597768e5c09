"""The ingest pipeline's config file: field names, features, the lateness policy and retention."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from mlplat.config import ConfigModel, Duration, load_config
from mlplat.errors import ConfigError
from mlplat.units import parse_duration

__all__ = ["FeatureSpec", "IngestConfig", "load_ingest_config"]

Aggregate = Literal["last", "count", "sum", "mean", "min", "max"]


# A hopping window's length over its hop: how many windows each event updates in the store. A day of
# 10-second hops is 8,640, and costs about 25 ms per event here (about 3 µs a window); far more is a slip of
# the unit, and stalls the pipeline (a window of 1e12 s by 5 minutes never finishes its first event).
MAX_WINDOWS_PER_EVENT = 10_000
# The shortest window or hop: event times are floats, 0.24 µs apart at today's epoch times, and a window
# far below that never ended (1e-15 s hung the run stepping across one float's gap; a 1e-320 hop overflowed).
MIN_STEP = 0.001


def _seconds(value: object, what: str) -> float | int:
    try:
        seconds = parse_duration(value)  # type: ignore[arg-type]
    except ValueError as exc:
        raise ValueError(f"`{what}`: {exc}") from None
    # Integral durations stay ints so window starts are exact integers in state keys.
    return int(seconds) if seconds == math.floor(seconds) else seconds


class FeatureSpec(ConfigModel):
    """One feature: ``last`` value of a field, or a windowed aggregate over tumbling/hopping windows."""

    name: Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9_.:-]+$",
                               description="Feature name, e.g. txn_count_1h.")]
    agg: Annotated[Aggregate, Field(description="last | count | sum | mean | min | max.")]
    field: Annotated[str | None, Field(description="Event field aggregated (not needed for count).")] = None
    window: Annotated[Duration | None, Field(description="Window length, e.g. 1h (windowed aggregates).")] = None
    hop: Annotated[Duration | None, Field(description="Hop of a hopping window; omitted = tumbling.")] = None

    @model_validator(mode="after")
    def _check(self) -> FeatureSpec:
        # ValueError (not ConfigError) so pydantic adds the place: features[i] of the whole document.
        if self.agg == "last":
            if self.window is not None or self.hop is not None:
                raise ValueError("a `last` feature takes no window or hop")
            if self.field is None:
                raise ValueError("a `last` feature needs `field`")
            return self
        if self.agg != "count" and self.field is None:
            raise ValueError(f"a `{self.agg}` feature needs `field`")
        if self.window is None or self.window <= 0:
            raise ValueError(f"a `{self.agg}` feature needs `window` > 0")
        for name, value in (("window", self.window), ("hop", self.hop)):
            if value is not None and 0 < value < MIN_STEP:
                raise ValueError(f"`{name}` must be at least {MIN_STEP:g} s (1 ms), got {value:g} s")
        if self.hop is not None:
            if self.hop <= 0 or self.hop > self.window:
                raise ValueError(f"`hop` must be in (0, window], got {self.hop}")
            ratio = self.window / self.hop
            if abs(ratio - round(ratio)) > 1e-9:
                raise ValueError(f"`window` must be a multiple of `hop`, got {self.window:g} / {self.hop:g}")
            if ratio > MAX_WINDOWS_PER_EVENT:
                raise ValueError(f"`window` / `hop` must be at most {MAX_WINDOWS_PER_EVENT:,} (each event "
                                 f"updates that many windows), got {self.window:g} / {self.hop:g} = {ratio:,.0f}")
        return self

    @property
    def step(self) -> float:
        """The hop (the window length for tumbling windows)."""
        assert self.window is not None  # windowed features only; validated above
        return self.hop if self.hop is not None else self.window


class IngestConfig(ConfigModel):
    """The pipeline config (``mlplat ingest init`` writes a commented one)."""

    name: Annotated[str, Field(min_length=1, description="Pipeline name (shown in reports).")] = "features"
    event_id: Annotated[str, Field(description="Field holding the unique event id.")] = "event_id"
    entity: Annotated[str, Field(description="Field holding the entity key.")] = "entity"
    event_time: Annotated[str, Field(description="Field holding the event time (epoch s or ISO 8601).")] = (
        "event_time")
    ingest_time: Annotated[str, Field(description="Optional field holding the ingest time.")] = "ingest_time"
    max_out_of_orderness: Annotated[float, Field(ge=0, description="Watermark lag behind the max event time.")]
    allowed_lateness: Annotated[float, Field(ge=0, description="How long after the watermark passes a window "
                                                              "late events still update it.")] = 0
    dedup_ttl: Annotated[Duration | None, Field(description="How long (event time) an event id is remembered; "
                                                        "default: the smallest safe value.")] = None
    max_future: Annotated[Duration | None, Field(
        description="Refuse an event stamped more than this after its own `ingest_time` (a producer clock "
                    "ahead, or a bad time): it is dead-lettered as future and never moves the watermark. "
                    "Unset: not checked. Events without `ingest_time` are not checked.")] = None
    batch_size: Annotated[int, Field(gt=0, le=100_000, description="Events per micro-batch.")] = 1000
    on_error: Annotated[Literal["dead_letter", "fail"], Field(
        description="Malformed events: dead_letter (and continue) or fail (stop, exit 4).")] = "dead_letter"
    dead_letter: Annotated[str, Field(description="Dead-letter JSONL file (relative to the working dir).")] = (
        "ingest-dead-letter.jsonl")
    features: Annotated[list[FeatureSpec], Field(min_length=1, description="The features computed.")]

    # Not typed `Duration` (as window, hop and dedup_ttl are): on these two that would crash on null (Duration's
    # validator does not take None) and `ingest schema` would write the bound as "ge" instead of "minimum".
    @field_validator("max_out_of_orderness", "allowed_lateness", mode="before")
    @classmethod
    def _duration(cls, value: object) -> float | int | None:
        return None if value is None else _seconds(value, "duration")

    @model_validator(mode="after")
    def _check(self) -> IngestConfig:
        names = [f.name for f in self.features]
        for index, name in enumerate(names):
            if name in names[:index]:
                raise ConfigError(f"duplicate feature name {name!r}", path=("features", index, "name"))
        keys = [("event_id", self.event_id), ("entity", self.entity), ("event_time", self.event_time)]
        for index, (key, value) in enumerate(keys):
            for earlier, other in keys[:index]:
                if other == value:
                    raise ConfigError(f"names the same field as {earlier} ({value!r}); event_id, entity and "
                                      "event_time must be three different fields", path=(key,))
        if self.dedup_ttl is not None and self.dedup_ttl < self.min_dedup_ttl:
            raise ConfigError(
                f"must be >= allowed_lateness + the longest window ({self.min_dedup_ttl:g} s) so a forgotten "
                f"event id can only belong to a late event, got {self.dedup_ttl:g}", path=("dedup_ttl",))
        return self

    @property
    def min_dedup_ttl(self) -> float:
        """The smallest retention of event ids that can never let a duplicate update state twice."""
        longest = max((f.window or 0 for f in self.features), default=0)
        return self.allowed_lateness + longest

    @property
    def effective_dedup_ttl(self) -> float:
        """``dedup_ttl`` or, when unset, :attr:`min_dedup_ttl`."""
        return self.dedup_ttl if self.dedup_ttl is not None else self.min_dedup_ttl


def load_ingest_config(path: str | Path) -> IngestConfig:
    """Read and validate an ingest config; errors point at ``file:line:column``."""
    return load_config(path, IngestConfig)
