"""The time series (``Config.sample_interval_ns``, core/samples.pxi): a row of counters
every interval, which adds up to the run's totals and changes nothing else."""

from __future__ import annotations

from typing import Any

import pytest

import napikit
from napikit import Config, CpuHotplug, LoopbackUdp, Samples, scenarios

MS = 1_000_000


def _without_samples(result: napikit.Result) -> dict[str, Any]:
    d = result.to_dict()
    d.pop("samples")
    d.pop("fingerprint")  # of the configuration, which asked for the series
    d["config"].pop("sample_interval_ns")
    return d


@pytest.mark.parametrize("name", ["seed-rps", "seed-rt", "perf-a"])
def test_sampling_changes_nothing_else(name: str, policy: dict) -> None:
    config = scenarios.get(name).config.evolve(packets=20_000, **policy)
    plain = napikit.simulate(config)
    sampled = napikit.simulate(config.evolve(sample_interval_ns=MS // 4))
    assert plain.samples is None and sampled.samples is not None
    assert _without_samples(sampled) == _without_samples(plain)


def test_the_intervals_add_up_to_the_totals(policy: dict) -> None:
    config = scenarios.get("seed-rps-spread").config.evolve(
        packets=30_000, sample_interval_ns=MS, **policy)
    r = napikit.simulate(config)
    s = r.samples
    assert s is not None and not s.truncated
    assert sum(s.arrived) == r.arrived and sum(s.delivered) == r.delivered
    assert sum(s.drops) == r.drops.total and sum(s.ipis) == r.ipis
    assert sum(s.wakeup_ipis) == r.wakeup_ipis and sum(s.thread_kicks) == r.thread_kicks
    assert sum(s.context_switches) == r.context_switches
    for cpu, c in enumerate(s.cpus):
        for ctx, values in c.cpu_time.items():
            assert sum(values) == getattr(r.cpu_time[cpu], ctx)


def test_samples_come_every_interval_and_the_last_at_the_end() -> None:
    r = napikit.simulate(scenarios.get("seed-lo").config.evolve(
        packets=20_000, sample_interval_ns=300_000))
    s = r.samples
    assert s is not None
    assert s.time_ns[:-1] == tuple(300_000 * (i + 1) for i in range(len(s.time_ns) - 1))
    assert s.time_ns[-1] == r.sim_time_ns and len(s.cpus) == 2


def test_the_series_shows_a_cpu_going_offline_and_its_work_moving(policy: dict) -> None:
    """A hotplug study sees the change: CPU 2's pair runs there until it goes down at
    5 ms, then on CPU 0; CPU 2 does nothing in the intervals it is offline."""
    config = Config(ncpus=3, workloads=(LoopbackUdp(senders=(2,), receivers=(2,)),),
                    packets=40_000, sample_interval_ns=MS,
                    hotplug=(CpuHotplug(time_ns=5 * MS, cpu=2, online=False),), **policy)
    s = napikit.simulate(config).samples
    assert s is not None
    busy = [[sum(v[i] for v in c.cpu_time.values()) for i in range(len(s.time_ns))]
            for c in s.cpus]
    before = [i for i, t in enumerate(s.time_ns) if t <= 4 * MS]
    after = [i for i, t in enumerate(s.time_ns) if t >= 7 * MS][:-1]
    assert after and all(busy[2][i] > 0.5 * MS for i in before)
    assert all(busy[2][i] == 0 and s.cpus[2].backlog_len[i] == 0 for i in after)
    assert all(busy[0][i] > 0.5 * MS for i in after)
    # the pair shares one CPU now: the reader reads in its slices, not every interval
    assert sum(s.delivered[i] for i in after) > 0


def test_a_series_too_long_for_its_buffer_is_cut_and_says_so() -> None:
    """2**21 values at most: on 2,048 CPUs (18,440 per row) that is 113 rows."""
    config = Config(ncpus=2048, packets=None, duration_ns=2 * MS, drain_ns=0,
                    sample_interval_ns=1_000)
    s = napikit.simulate(config).samples
    assert s is not None and s.truncated
    assert len(s.time_ns) == (1 << 21) // (8 + 2048 * 9)


def test_rows_and_frame_carry_every_column() -> None:
    pd = pytest.importorskip("pandas")
    s = napikit.simulate(scenarios.get("seed-rps").config.evolve(
        packets=5_000, sample_interval_ns=MS)).samples
    assert isinstance(s, Samples)
    frame = s.frame()
    assert isinstance(frame, pd.DataFrame) and len(frame) == len(s.time_ns)
    assert list(frame["delivered"]) == list(s.delivered)
    assert list(frame["cpu1.softirq"]) == list(s.cpus[1].cpu_time["softirq"])
