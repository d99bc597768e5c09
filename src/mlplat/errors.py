"""The one error tree of mlplat.

Every error a user can cause derives from :class:`MlplatError`; the CLI catches it once and exits with
code 4 and the message alone. Anything else is a bug (exit 5)::

    MlplatError
    ├── ConfigError            a config file is unreadable, not YAML, or breaks the schema
    ├── DataError              an input data file (CSV, JSON, trace, export) is malformed
    ├── ServiceError           a server (Prometheus, Redis) is unreachable or answered an error
    ├── OutputError            a file cannot be written, or exists and --force was not given
    ├── TemplateError          a template is missing or does not render
    ├── SimulationError        a simulation cannot run as configured
    ├── DeviceError            the requested compute device is not available
    └── BatcherError           the dynamic batcher failed a request
        ├── QueueFull          the queue is at max_queue_size
        ├── DeadlineExceeded   the request's deadline passed before dispatch
        └── BatcherClosed      the batcher is closed

Errors from yaml, pydantic and pandas are translated where they enter: ``raise ConfigError(...) from exc``.
``MlplatError`` deliberately does not derive from ``ValueError``: pydantic would swallow it inside a
validator, whereas a :class:`ConfigError` raised there with a ``path`` reaches the config loader, which
turns the path into ``file:line:column``.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Sequence
from typing import Any

__all__ = [
    "BatcherClosed",
    "BatcherError",
    "ConfigError",
    "DataError",
    "DeadlineExceeded",
    "DeviceError",
    "MlplatError",
    "OutputError",
    "QueueFull",
    "ServiceError",
    "SimulationError",
    "TemplateError",
    "format_path",
    "format_url",
    "format_url_error",
    "format_value",
]

KeyPath = Sequence[str | int]


def format_path(path: KeyPath) -> str:
    """Render a key path the way a user writes it: ``metrics[2].tolerance``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def format_value(value: Any) -> str:
    """A value as an error message shows it: a numpy scalar as its Python value (not ``np.float64(...)``),
    a float of a million or more in short form when that is exact (``1e+15``, not ``1000000000000000.0``),
    anything else as ``repr``, every digit kept (a millisecond timestamp must read as one).

    >>> format_value(1e15), format_value(1767225660123.5), format_value(0.5), format_value("x")
    ('1e+15', '1767225660123.5', '0.5', "'x'")
    """
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        value = value.item()
    if isinstance(value, float) and abs(value) >= 1e6 and float(f"{value:g}") == value:
        return f"{value:g}"
    return repr(value)


class MlplatError(Exception):
    """Base of every error a user of mlplat can cause; the CLI exits with code 4."""

    exit_code = 4


class ConfigError(MlplatError):
    """A config file is unreadable, not valid YAML, or breaks the schema.

    ``path`` is the key path inside the document (``("metrics", 2, "tolerance")``); when the error is
    raised inside a pydantic validator, the config loader adds the file name, line and column.
    """

    def __init__(self, message: str, *, path: KeyPath = (), source: str | None = None) -> None:
        self.message = message
        self.path = tuple(path)
        self.source = source
        super().__init__(self._render())

    def _render(self) -> str:
        prefix = f"{self.source}: " if self.source else ""
        where = f"{format_path(self.path)}: " if self.path else ""
        return f"{prefix}{where}{self.message}"


class DataError(MlplatError):
    """An input data file is malformed: missing columns, bad values, a broken trace."""


class ServiceError(MlplatError):
    """A server mlplat talks to is unreachable, timed out, or answered with an error."""


class OutputError(MlplatError):
    """A file cannot be written, or exists and overwriting was not asked for."""


class TemplateError(MlplatError):
    """A template is missing or fails to render."""


class SimulationError(MlplatError):
    """A simulation cannot run as configured."""


class DeviceError(MlplatError):
    """The requested compute device (for example ``cuda``) is not available."""


class BatcherError(MlplatError):
    """The dynamic batcher failed a request (bad predict output, overload, deadline, closed)."""


class QueueFull(BatcherError):
    """The batcher queue holds ``max_queue_size`` requests already."""


class DeadlineExceeded(BatcherError):
    """The request's deadline passed before it could be dispatched."""


class BatcherClosed(BatcherError):
    """The batcher is closed: no new requests, and undrained requests fail with this."""


def format_url(url: str) -> str:
    """A URL as messages and results show it: a user and password in it, and a credential query value
    (``password=``, ``token=``, also percent-encoded), replaced by ``***``.

    Text only, so that a URL no parser takes is hidden too. A password may hold a raw ``/``, ``?`` or ``#``
    (a base64 one) that a parser ends the host at: when the text before the first of them is no plain
    ``host[:port]``, everything up to the last ``@`` goes. An ``@`` after a plain host is the path's
    (``redis://h:6379/0/events@v2`` stays as it is).

    >>> format_url("redis://:s3cret@db:6379/0/events"), format_url("sqlite:///f.db")
    ('redis://***@db:6379/0/events', 'sqlite:///f.db')
    >>> format_url("redis://db:6379/0?password=s3cret&ssl=true"), format_url("redis://:pa/ss@db/0")
    ('redis://db:6379/0?password=***&ssl=true', 'redis://***@db/0')
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    head = rest[:end]
    if "@" in head:
        rest = "***@" + head.rpartition("@")[2] + rest[end:]
    elif head and "@" in rest and not _PLAIN_HOST.fullmatch(head):  # no host at all (sqlite:///a@b.db): no user
        rest = "***@" + rest.rpartition("@")[2]
    return f"{scheme}://{_SECRET_QUERY.sub(_masked_value, rest)}"


def _masked_value(match: re.Match[str]) -> str:
    key = urllib.parse.unquote(match.group(2)).lower()
    return f"{match.group(1)}{match.group(2)}=***" if key in _SECRET_KEYS else match.group(0)


def format_url_error(url: str, exc: BaseException) -> str:
    """A URL parser's complaint about ``url``, unless the URL holds credentials: the parser quotes the part it
    failed on (``Port could not be cast to integer value as 'pa'``), which may be part of a password.

    >>> format_url_error("redis://:pa#ss@db/0", ValueError("Port could not be cast to integer value as 'pa'"))
    "the parser's message is left out: it may quote the credentials"
    """
    if format_url(url) != url:
        return "the parser's message is left out: it may quote the credentials"
    return str(exc)


# Query parameters whose value is a credential (redis-py reads ?password=, and unquotes the key first).
_SECRET_KEYS = {"password", "passwd", "pwd", "pass", "secret", "token", "auth"}
_SECRET_QUERY = re.compile(r"([?&])([^=&#]*)=[^&#]*")
# A host name, IPv4 or bracketed IPv6 address, and an optional port: what precedes a URL's path.
_PLAIN_HOST = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._~%-]+)(:\d*)?")
