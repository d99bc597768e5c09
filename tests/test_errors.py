"""The error tree: exit codes and rendered messages."""

from __future__ import annotations

import pytest

from mlplat import errors
from mlplat.errors import BatcherError, ConfigError, MlplatError, QueueFull, format_path


def test_every_error_is_an_mlplat_error() -> None:
    """Each class named in __all__ (but the helper) derives from MlplatError and exits with 4."""
    for name in errors.__all__:
        obj = getattr(errors, name)
        if isinstance(obj, type):
            assert issubclass(obj, MlplatError)
            assert obj.exit_code == 4


def test_errors_are_not_value_errors() -> None:
    """MlplatError must escape pydantic validators, which swallow ValueError."""
    assert not issubclass(MlplatError, ValueError)


def test_batcher_errors_nest() -> None:
    """QueueFull is a BatcherError, so one except clause catches every batcher failure."""
    with pytest.raises(BatcherError, match="full"):
        raise QueueFull("queue full")


def test_format_path() -> None:
    """Key paths render as a user writes them."""
    assert format_path(("metrics", 2, "tolerance")) == "metrics[2].tolerance"
    assert format_path((0, "a")) == "[0].a"
    assert format_path(()) == ""


def test_config_error_renders_source_and_path() -> None:
    """A ConfigError names the file, the key path and the message."""
    exc = ConfigError("must be >= 0, got -1", path=("a", 1), source="x.yaml")
    assert str(exc) == "x.yaml: a[1]: must be >= 0, got -1"
