"""Online feature ingestion with exactly-once effect: watermarks, allowed lateness, dedup, versioned writes.

The doors: :func:`run_pipeline` (stream a source into a store), :func:`read_entity`, :func:`repair`,
:func:`verify`, :func:`analyze_lateness`; the pluggable parts are :class:`FeatureStore` and
:class:`Source`. Semantics are written as rules in ``docs/ingest.md``.
"""

from __future__ import annotations

from mlplat.ingest._config import FeatureSpec, IngestConfig, load_ingest_config
from mlplat.ingest._engine import (
    Checkpoint,
    Commit,
    DeadLetter,
    Engine,
    Event,
    Record,
    compute_batch,
    diff_states,
    feature_value,
    parse_event,
    parse_time,
    partition_of,
    split_key,
)
from mlplat.ingest._lateness import LatenessReport, analyze_lateness
from mlplat.ingest._pipeline import (
    EntityFeatures,
    FeatureRow,
    IngestResult,
    RepairReport,
    read_entity,
    recompute,
    repair,
    run_pipeline,
)
from mlplat.ingest._sources import FileSource, RedisStreamSource, Source, open_source
from mlplat.ingest._stores import FeatureStore, RedisStore, SQLiteStore, open_store
from mlplat.ingest._verify import VerifyReport, perturb, read_events, verify

__all__ = [
    "Checkpoint",
    "Commit",
    "DeadLetter",
    "Engine",
    "EntityFeatures",
    "Event",
    "FeatureRow",
    "FeatureSpec",
    "FeatureStore",
    "FileSource",
    "IngestConfig",
    "IngestResult",
    "LatenessReport",
    "Record",
    "RedisStore",
    "RedisStreamSource",
    "RepairReport",
    "SQLiteStore",
    "Source",
    "VerifyReport",
    "analyze_lateness",
    "compute_batch",
    "diff_states",
    "feature_value",
    "load_ingest_config",
    "open_source",
    "open_store",
    "parse_event",
    "parse_time",
    "partition_of",
    "perturb",
    "read_entity",
    "read_events",
    "recompute",
    "repair",
    "run_pipeline",
    "split_key",
    "verify",
]
