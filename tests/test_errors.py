"""The error tree: exit codes and rendered messages."""

from __future__ import annotations

import numpy as np
import pytest

from mlplat import errors
from mlplat.errors import (
    BatcherError,
    ConfigError,
    MlplatError,
    QueueFull,
    format_path,
    format_url,
    format_value,
)


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


def test_format_value() -> None:
    """Values in messages: numpy scalars as Python values, large floats in short form, the rest as repr."""
    assert format_value(np.float64(0.5)) == "0.5" and format_value(np.int64(3)) == "3"
    assert format_value(1e15) == "1e+15" and format_value(np.float64(2e9)) == "2e+09"
    assert format_value("abc") == "'abc'" and format_value(None) == "None"
    # Every digit where the short form would drop some: a millisecond timestamp must read as one.
    assert format_value(1767225660123.5) == "1767225660123.5" and format_value(1767225660123.0) == "1767225660123.0"


def test_config_error_renders_source_and_path() -> None:
    """A ConfigError names the file, the key path and the message."""
    exc = ConfigError("must be >= 0, got -1", path=("a", 1), source="x.yaml")
    assert str(exc) == "x.yaml: a[1]: must be >= 0, got -1"


@pytest.mark.parametrize(("url", "shown"), [
    ("redis://:s3cret@db:6379/0", "redis://***@db:6379/0"),
    ("redis://user:s3cret@db/0/events?group=g", "redis://***@db/0/events?group=g"),
    ("http://u:p@host:9090", "http://***@host:9090"),
    ("redis://:s3cret@[::1/0", "redis://***@[::1/0"),  # no parser takes it: hidden all the same
    # redis-py reads ?password= (and unquotes the key first); from the diff reviews.
    ("redis://db:6379/0?password=s3cret&ssl=true", "redis://db:6379/0?password=***&ssl=true"),
    ("redis://db:6379/0?password=x@y", "redis://db:6379/0?password=***"),
    ("redis://db:6379/0?pass%77ord=S3CRET", "redis://db:6379/0?pass%77ord=***"),
    ("redis://db/0?passphrase=x&auth_mode=y", "redis://db/0?passphrase=x&auth_mode=y"),
    # An @ after a plain host is the path's (a stream named events@v2), and a path has no user (sqlite).
    ("redis://h:6379/0/events@v2", "redis://h:6379/0/events@v2"),
    ("sqlite:///out/a@b.db", "sqlite:///out/a@b.db"),
    # A raw /, ? or # in a password (base64) ended the host for a parser, and the password was shown.
    ("redis://:pa/ss@db:6379/1/events", "redis://***@db:6379/1/events"),
    ("redis://:pa#ss@db:6379/0", "redis://***@db:6379/0"),
    ("redis://:pa?ss@db/0", "redis://***@db/0"),
    ("sqlite:///out/f.db", "sqlite:///out/f.db"),
    ("out/f.db", "out/f.db"),
])
def test_format_url_hides_user_and_password(url: str, shown: str) -> None:
    """A URL in a message or result never shows its password (a Redis URL carries one)."""
    assert format_url(url) == shown
