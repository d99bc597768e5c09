"""JSON conversion of result objects."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from mlplat.jsonable import dumps, to_jsonable


@dataclass(frozen=True)
class Result:
    value: float
    samples: np.ndarray


def test_numpy_and_nan() -> None:
    """numpy scalars and arrays become plain values; NaN and inf become null."""
    doc = json.loads(dumps({"a": np.float32(1.5), "b": np.array([1.0, np.nan]), "c": float("inf")}))
    assert doc == {"a": 1.5, "b": [1.0, None], "c": None}


def test_dataclass_and_to_dict() -> None:
    """Dataclasses become dicts; objects with to_dict() are asked for it."""

    class WithDict:
        def to_dict(self) -> dict[str, int]:
            return {"x": 1}

    assert to_jsonable(Result(1.0, np.arange(2))) == {"value": 1.0, "samples": [0, 1]}
    assert to_jsonable([WithDict()]) == [{"x": 1}]
