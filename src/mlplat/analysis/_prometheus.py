"""Query a live Prometheus (HTTP API ``/api/v1/query_range``) with the queries of a canary config."""

from __future__ import annotations

import http.client
import json
import socket
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from mlplat.analysis._config import CanaryConfig, MetricConfig, RateMetric
from mlplat.analysis._readers import CanaryData, _categorical, prometheus_frame
from mlplat.errors import ConfigError, DataError, ServiceError, format_url, format_url_error
from mlplat.units import format_time

__all__ = ["fetch_prometheus", "query_range"]


def query_range(url: str, query: str, start: float, end: float, step: float, *, timeout: float = 10.0) -> Any:
    """One ``query_range`` call; unreachable, timed out or error answers raise :class:`ServiceError`."""
    check_url(url)
    # The step in seconds as a plain number, which the API takes: "1.5s" is not a Prometheus duration, and
    # f"{step:g}s" wrote a 250 ms step that way and a long one as "1.23457e+06s", both refused.
    params = urllib.parse.urlencode({"query": query, "start": f"{start:.3f}", "end": f"{end:.3f}",
                                     "step": repr(float(step))})
    endpoint = url.rstrip("/") + "/api/v1/query_range?" + params
    shown = format_url(url)
    try:
        with urllib.request.urlopen(endpoint, timeout=timeout) as response:
            body = response.read()
    except urllib.error.HTTPError as exc:
        body = exc.read()
        try:
            doc = json.loads(body)
        except ValueError:
            doc = None
        if not isinstance(doc, dict):  # not Prometheus's error document: a proxy's page, or JSON text
            raise ServiceError(f"Prometheus at {shown} answered HTTP {exc.code} for {query!r}") from exc
        raise ServiceError(f"Prometheus at {shown} answered status error for {query!r}: "
                           f"{doc.get('errorType', 'error')}: {doc.get('error', 'no message')}") from exc
    except TimeoutError as exc:
        raise ServiceError(f"Prometheus at {shown} timed out after {timeout:g}s") from exc
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, TimeoutError | socket.timeout):
            raise ServiceError(f"Prometheus at {shown} timed out after {timeout:g}s") from exc
        raise ServiceError(f"Prometheus at {shown} is unreachable: {exc.reason}") from exc
    except OSError as exc:
        raise ServiceError(f"Prometheus at {shown} is unreachable: {exc}") from exc
    except http.client.HTTPException as exc:  # not an OSError: a server that does not speak HTTP, a cut answer
        raise ServiceError(f"Prometheus at {shown} did not answer HTTP ({type(exc).__name__}: {exc!s:.80}); "
                           "is it the Prometheus port?") from exc
    try:
        return json.loads(body)
    except ValueError as exc:
        raise ServiceError(f"Prometheus at {shown} did not answer JSON for {query!r}") from exc


def check_url(url: str, name: str = "Prometheus URL") -> None:
    """Raise :class:`ConfigError` unless ``url`` is an http(s) URL with a host and a numeric port, if any.

    ``name`` says where the URL came from in the message (the CLI passes ``--prometheus``).
    """
    expected = "expected http://HOST[:PORT] or https://HOST[:PORT]"
    shown = format_url(url)  # every message shows the URL without a user or password
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018  # reading it raises ValueError for a port that is not a number
    except ValueError as exc:  # an unclosed IPv6 bracket, a port such as ':abc'
        raise ConfigError(f"{name}: {expected}, got {shown!r} ({format_url_error(url, exc)})") from None
    if parts.username is not None or parts.password is not None:
        # urllib sends no credentials from a URL, and a message would print them: refuse without echoing.
        raise ConfigError(f"{name}: a user or password in the URL is not supported (nothing would send it), got "
                          f"{shown!r}; put Prometheus behind a proxy on loopback that adds them")
    if parts.query or parts.fragment:  # the API path goes after it: http://h/?token=x/api/v1/... asks nothing
        raise ConfigError(f"{name}: a query or fragment in the URL is not supported (the API path is appended "
                          f"to the URL), got {shown!r}; put Prometheus behind a proxy on loopback that adds them")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{name}: {expected} (a scheme and a host), got {shown!r}")
    if any(ch.isspace() or ord(ch) < 32 for ch in url):
        raise ConfigError(f"{name}: must not contain spaces or control characters, got {shown!r}")
    try:  # urllib encodes the host with IDNA and the rest as ASCII when it sends: a bad name was exit 5
        parts.hostname.encode("idna")
        parts._replace(netloc="").geturl().encode("ascii")
    except UnicodeError:
        raise ConfigError(f"{name}: {expected} with a valid host name and an ASCII path (percent-encode other "
                          f"characters), got {shown!r}") from None


def _reads(metric: MetricConfig) -> list[tuple[str, str | None, str]]:
    """(data metric name, its PromQL or None, the config key that holds it) for what ``metric`` reads."""
    if isinstance(metric, RateMetric):
        return [(metric.events, metric.query, "query"), (metric.exposure, metric.exposure_query, "exposure_query")]
    return [(metric.metric, metric.query, "query")]


def _queries(config: CanaryConfig) -> list[tuple[str, str, tuple[str | int, ...]]]:
    """(data metric name, PromQL, config path) for every query the config needs, without repeats.

    A data name is read with the first query the file gives for it, whichever metric gives it, and whether
    or not ``--metrics`` kept that metric (the narrowed gate reads the same series as the whole config).
    """
    supplied: dict[str, tuple[str, tuple[str | int, ...]]] = {}
    for index, metric in enumerate(config.written.metrics):
        for name, query, key in _reads(metric):
            if query is not None:
                supplied.setdefault(name, (query, ("metrics", index, key)))
    out: dict[str, tuple[str, tuple[str | int, ...]]] = {}
    for metric in config.metrics:
        for name, _, key in _reads(metric):
            if name not in supplied:
                raise ConfigError(f"metric {metric.name!r} needs {key} to read from Prometheus",
                                  path=("metrics", config.metric_index(metric.name), key))
            out.setdefault(name, supplied[name])
    srm = config.srm
    if srm.enabled and srm.metric not in out:
        if srm.metric in supplied:
            out[srm.metric] = supplied[srm.metric]
        elif srm.query is not None:
            out[srm.metric] = (srm.query, ("srm", "query"))
        else:
            raise ConfigError("the SRM check needs srm.query (or a metric's exposure_query for "
                              f"{srm.metric!r})", path=("srm", "query"))
    return [(name, query, path) for name, (query, path) in out.items()]


def fetch_prometheus(config: CanaryConfig, url: str, *, start: float, end: float, step: float) -> CanaryData:
    """Run every query of ``config`` over ``[start, end]`` and return the rows as :class:`CanaryData`.

    Rate queries should give counts per step (``increase(...[STEP])``), histogram queries bucket counts
    per step by ``le``; every series must carry ``prometheus.arm_label``.
    """
    import pandas as pd

    if end <= start:
        raise DataError(f"--end ({format_time(end, whole=True)}) must be after --start "
                        f"({format_time(start, whole=True)})")
    if step <= 0:
        raise DataError(f"--step must be > 0, got {step:g}")
    frames = []
    shown = format_url(url)
    for name, query, _ in _queries(config):
        response = query_range(url, query, start, end, step, timeout=config.prometheus.timeout)
        frames.append(prometheus_frame(response, name, f"{shown} ({name})", arm_label=config.prometheus.arm_label))
    return CanaryData(_categorical(pd.concat(frames, ignore_index=True)), shown)
