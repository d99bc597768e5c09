"""Arrival processes, trace readers, service-time distributions and the scenario schema."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_allclose

from mlplat.errors import ConfigError, DataError
from mlplat.sim import Scenario, arrivals, mean_rate, read_trace
from mlplat.sim._scenario import LognormalService, TraceWorkload
from mlplat.sim._workload import service_sampler, with_mean_rate


@pytest.mark.parametrize("workload", [
    {"kind": "poisson", "rate": "5/s"},
    {"kind": "diurnal", "mean_rate": "5/s", "peak_to_trough": 4, "period": "1h"},
    {"kind": "bursty", "on_rate": "40/s", "off_rate": "0.5/s", "mean_on": "30s", "mean_off": "4m"},
])
def test_mean_rate_matches_simulated(make_scenario: Callable[..., Scenario], workload: dict[str, object]) -> None:
    """Each generator's long-run rate matches mean_rate(), and times are sorted inside [0, duration)."""
    sc = make_scenario(workload=workload)
    a = arrivals(sc.workload, 200_000.0, np.random.default_rng(0))
    assert np.all(np.diff(a) >= 0) and a[0] >= 0 and a[-1] < 200_000
    assert_allclose(len(a) / 200_000.0, mean_rate(sc.workload), rtol=0.03)
    scaled = with_mean_rate(sc.workload, 1.0)
    assert_allclose(mean_rate(scaled), 1.0)


def test_bursty_draws_arrivals_only_inside_a_window_shorter_than_its_cycle(
        make_scenario: Callable[..., Scenario]) -> None:
    """A second of a workload whose cycle is an hour costs a second's arrivals (before, 16 whole cycles
    were drawn and then cut: 99 GiB at this rate); cut periods keep the mean count right."""
    steady = make_scenario(workload={"kind": "bursty", "on_rate": "200000/s", "off_rate": "200000/s",
                                     "mean_on": "30m", "mean_off": "30m"})
    a = arrivals(steady.workload, 1.0, np.random.default_rng(0))
    assert abs(len(a) - 200_000) < 5 * math.sqrt(200_000) and a[-1] < 1.0
    # On half the time on average, and a minute rarely sees a switch: each count is about 0 or 6,000.
    sc = make_scenario(workload={"kind": "bursty", "on_rate": "100/s", "off_rate": "0/s", "mean_on": "30m",
                                 "mean_off": "30m"})
    counts = [len(arrivals(sc.workload, 60.0, np.random.default_rng(seed))) for seed in range(2000)]
    assert_allclose(np.mean(counts), mean_rate(sc.workload) * 60.0, rtol=0.1)  # se about 2.2%


def test_lognormal_from_mean_and_p99(make_scenario: Callable[..., Scenario]) -> None:
    """The lognormal solved from mean 120 ms and p99 400 ms has that mean and p99."""
    warm = LognormalService(dist="lognormal", mean_ms=120, p99_ms=400)
    mu, sigma = warm.params()
    assert_allclose(math.exp(mu + sigma**2 / 2), 0.120, rtol=1e-12)
    assert_allclose(math.exp(mu + 2.3263478740408408 * sigma), 0.400, rtol=1e-12)
    sc = make_scenario(service={"warm": {"dist": "lognormal", "mean_ms": 120, "p99_ms": 400}})
    x = service_sampler(sc.service)(np.random.default_rng(0), 400_000)
    assert_allclose([x.mean(), np.quantile(x, 0.99)], [0.120, 0.400], rtol=0.02)
    with pytest.raises(ConfigError, match="p99 can be at most"):
        make_scenario(service={"warm": {"dist": "lognormal", "mean_ms": 10, "p99_ms": 400}})


def test_azure_trace(tmp_path: Path) -> None:
    """An Azure Functions 2019 row becomes arrivals with the per-minute counts; the row is chosen by its
    HashFunction, or is the first row when none is named."""
    header = "HashOwner,HashApp,HashFunction,Trigger," + ",".join(str(i) for i in range(1, 6))
    (tmp_path / "t.csv").write_text(f"{header}\no,a,f1,http,0,0,0,0,1\no,a,f2,timer,3,0,5,0,1\n")
    trace = read_trace(TraceWorkload(kind="trace", path="t.csv", function="f2"), tmp_path)
    assert len(trace.times) == 9 and trace.span == 300
    counts = np.bincount((trace.times // 60).astype(int), minlength=5)
    assert counts.tolist() == [3, 0, 5, 0, 1]
    first = read_trace(TraceWorkload(kind="trace", path="t.csv"), tmp_path)  # no function named: the first row
    assert np.bincount((first.times // 60).astype(int), minlength=5).tolist() == [0, 0, 0, 0, 1]
    a = arrivals(TraceWorkload(kind="trace", path="t.csv"), 900.0, np.random.default_rng(0), trace)
    assert len(a) == 27  # looped three times
    with pytest.raises(DataError, match="no function 'nope' found"):
        read_trace(TraceWorkload(kind="trace", path="t.csv", function="nope"), tmp_path)
    (tmp_path / "bad.csv").write_text("a,b\n")
    with pytest.raises(DataError, match=r"bad.csv:1:1: expected the Azure Functions 2019 header"):
        read_trace(TraceWorkload(kind="trace", path="bad.csv"), tmp_path)
    (tmp_path / "short.csv").write_text(f"{header}\no,a,f1,http,1,2\n")
    with pytest.raises(DataError, match=r"short.csv:2:1: expected 9 columns, got 6"):
        read_trace(TraceWorkload(kind="trace", path="short.csv"), tmp_path)


def test_timestamp_trace(tmp_path: Path) -> None:
    """A timestamps file (ms) is read with its header skipped; negative values name their line."""
    (tmp_path / "ts.txt").write_text("t_ms\n1000\n1500\n3000\n")
    trace = read_trace(TraceWorkload(kind="trace", path="ts.txt", format="timestamps", time_unit="ms"), tmp_path)
    assert trace.times.tolist() == [0.0, 0.5, 2.0]
    (tmp_path / "neg.txt").write_text("1\n-2\n")
    with pytest.raises(DataError, match=r"neg.txt:2:1: a timestamp must be finite and >= 0"):
        read_trace(TraceWorkload(kind="trace", path="neg.txt", format="timestamps"), tmp_path)
    with pytest.raises(DataError, match="no such trace file"):
        read_trace(TraceWorkload(kind="trace", path="missing.txt", format="timestamps"), tmp_path)


def test_trace_odd_files(tmp_path: Path) -> None:
    """A BOM is ignored (the first timestamp is not taken for a header); empty, equal or binary files are errors."""
    (tmp_path / "bom.txt").write_text("0.5\n1.0\n2.0\n", encoding="utf-8-sig")
    trace = read_trace(TraceWorkload(kind="trace", path="bom.txt", format="timestamps"), tmp_path)
    assert trace.times.tolist() == [0.0, 0.5, 1.5]
    (tmp_path / "bom.csv").write_text("HashOwner,HashApp,HashFunction,Trigger,1,2\no,a,f,http,3,4\n",
                                      encoding="utf-8-sig")
    assert len(read_trace(TraceWorkload(kind="trace", path="bom.csv"), tmp_path).times) == 7
    (tmp_path / "same.txt").write_text("5\n5\n5\n")
    with pytest.raises(DataError, match=r"same.txt: expected at least two distinct timestamps, got 3 equal to 5"):
        read_trace(TraceWorkload(kind="trace", path="same.txt", format="timestamps"), tmp_path)
    (tmp_path / "empty.txt").write_text("")
    with pytest.raises(DataError, match=r"empty.txt: no timestamps found"):
        read_trace(TraceWorkload(kind="trace", path="empty.txt", format="timestamps"), tmp_path)
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(DataError, match=r"empty.csv:1:1: expected the Azure Functions 2019 header"):
        read_trace(TraceWorkload(kind="trace", path="empty.csv"), tmp_path)
    (tmp_path / "bin.dat").write_bytes(bytes(range(256)))
    with pytest.raises(DataError, match=r"bin.dat: cannot read the trace"):
        read_trace(TraceWorkload(kind="trace", path="bin.dat"), tmp_path)
    with pytest.raises(DataError, match=r"cannot read the trace"):
        read_trace(TraceWorkload(kind="trace", path=".", format="timestamps"), tmp_path)
