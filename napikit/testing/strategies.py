"""Hypothesis strategies for whole napikit runs, shared by napikit's tests and the kit.

A generated :class:`~napikit.Config` spans 1-64 CPUs, RPS masks (empty included), NIC
traffic from light load to several times overload, loopback UDP between random CPUs,
random costs (zeros included), tiny backlogs, flow limits, forced-threaded IRQs,
PREEMPT_RT, the pre-6.5 ksoftirqd rule, polling idle, every arrival kind and bursts,
cyclictest tasks, and (when asked) CPU hotplug sequences (kernel-model.md A.2).
:func:`supported_configs` leaves out what a policy declares it does not support
(:data:`napikit.plugins.FEATURES`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import attrs
from hypothesis import strategies as st

from napikit import Config, CostModel, CpuHotplug, Cyclictest, KernelParams, LoopbackUdp, NicIrq

__all__ = [
    "GENEROUS_DRAIN_NS", "TRAFFIC", "configs", "cost_models", "cyclictests", "hotplug_plans",
    "kernels", "loopbacks", "nic_irqs", "supported_configs",
]

#: Input stops after at most 20k packets; 2 s of simulated drain is plenty to empty
#: every queue, so a run that is not quiescent by then is itself a finding.
GENEROUS_DRAIN_NS = 2_000_000_000

#: The workload kinds a run may mix.
TRAFFIC = ("nic", "loopback")


def _cost_values() -> st.SearchStrategy[int]:
    return st.one_of(st.just(0), st.integers(0, 3_000), st.integers(0, 200))


@st.composite
def cost_models(draw: st.DrawFn) -> CostModel:
    """Random costs: each field 0 (often) or up to a few microseconds."""
    return CostModel(**{a.name: draw(_cost_values()) for a in attrs.fields(CostModel)})


def _cpus(ncpus: int) -> st.SearchStrategy[int]:
    return st.integers(0, ncpus - 1)


def _mask(ncpus: int) -> st.SearchStrategy[list[int]]:
    """A random subset of the CPUs (often empty: RPS off)."""
    return st.one_of(
        st.just([]),
        st.lists(_cpus(ncpus), unique=True, min_size=1, max_size=min(ncpus, 8)),
        st.just(list(range(ncpus))),
    )


def _rps_mask(draw: st.DrawFn, ncpus: int, rps: bool | None) -> list[int]:
    """An RPS mask: empty when ``rps`` is False, non-empty when True, else either."""
    mask = [] if rps is False else draw(_mask(ncpus))
    if rps and not mask:
        mask = draw(st.lists(_cpus(ncpus), unique=True, min_size=1, max_size=min(ncpus, 8)))
    return mask


@st.composite
def nic_irqs(draw: st.DrawFn, ncpus: int, rps: bool | None = None) -> NicIrq:
    """A non-NAPI NIC from light load (10 kpps) to far beyond what a CPU can absorb."""
    mask = _rps_mask(draw, ncpus, rps)
    return NicIrq(
        cpu=draw(_cpus(ncpus)),
        rate_pps=draw(st.one_of(st.floats(10_000, 5_000_000), st.sampled_from([1e5, 1e6, 5e6]))),
        arrival=draw(st.sampled_from(["constant", "poisson", "bursty"])),
        burst=draw(st.integers(1, 64)),
        flows=draw(st.integers(1, 2048)),
        flow_dist=draw(st.sampled_from(["uniform", "zipf"])),
        zipf_s=draw(st.floats(0, 3)),
        rps_cpus=mask,
    )


@st.composite
def loopbacks(draw: st.DrawFn, ncpus: int, rps: bool | None = None) -> LoopbackUdp:
    """Loopback UDP: 1-3 sender/receiver pairs on random CPUs, closed loop or paced."""
    n = draw(st.integers(1, min(3, ncpus)))
    senders = draw(st.lists(_cpus(ncpus), unique=True, min_size=n, max_size=n))
    receivers = draw(st.lists(_cpus(ncpus), unique=True, min_size=n, max_size=n))
    mask = _rps_mask(draw, ncpus, rps)
    return LoopbackUdp(
        senders=senders,
        receivers=receivers,
        flows=draw(st.integers(1, 16)),
        rate_pps=draw(st.one_of(st.none(), st.floats(10_000, 2_000_000))),
        rps_cpus=mask,
    )


def _flag(value: bool | None) -> st.SearchStrategy[bool]:
    return st.booleans() if value is None else st.just(value)


@st.composite
def kernels(
    draw: st.DrawFn,
    ncpus: int,
    force_irqthreads: bool | None = None,
    idle_poll: bool | None = None,
    preempt_rt: bool | None = None,
) -> KernelParams:
    """Kernel parameters around and far below the defaults, so queues overflow;
    ``force_irqthreads`` / ``idle_poll`` / ``preempt_rt`` fix those flags (``None``:
    either; PREEMPT_RT implies forced IRQ threads, so it is off when they are)."""
    if force_irqthreads is False:
        preempt_rt = False
    return KernelParams(
        hz=draw(st.sampled_from([100, 250, 300, 1000])),
        netdev_max_backlog=draw(st.one_of(st.integers(4, 64), st.integers(4, 1000))),
        dev_weight=draw(st.one_of(st.just(64), st.integers(1, 128))),
        netdev_budget=draw(st.one_of(st.just(300), st.integers(1, 600))),
        netdev_budget_usecs=draw(st.one_of(st.none(), st.integers(1, 8_000))),
        flow_limit_cpu_bitmap=draw(_mask(ncpus)),
        flow_limit_table_len=draw(st.sampled_from([1, 64, 4096])),
        force_irqthreads=draw(_flag(force_irqthreads)),
        idle_poll=draw(_flag(idle_poll)),
        preempt_rt=draw(_flag(preempt_rt)),
        let_ksoftirqd_do_its_job=draw(st.booleans()),
        max_softirq_restart=draw(st.integers(1, 10)),
        max_softirq_time_ms=draw(st.integers(1, 4)),
        rmem_default=draw(st.one_of(st.just(212_992), st.integers(768, 100_000))),
    )


@st.composite
def cyclictests(draw: st.DrawFn, ncpus: int) -> Cyclictest:
    """A cyclictest-like task: 20 us to 1 ms period, any priority."""
    return Cyclictest(
        cpu=draw(_cpus(ncpus)),
        period_ns=draw(st.integers(20_000, 1_000_000)),
        priority=draw(st.integers(1, 99)),
        work_ns=draw(st.integers(0, 5_000)),
    )


@st.composite
def hotplug_plans(
    draw: st.DrawFn, ncpus: int, busy: set[int]
) -> tuple[tuple[int, ...], tuple[CpuHotplug, ...]]:
    """``(offline_cpus, hotplug)`` on ``ncpus`` >= 2 CPUs: CPUs (none of ``busy``, the
    ones workloads start on) offline at start, and 1-6 requests in the first 20 ms,
    each changing one CPU's state and never taking the last CPU down."""
    spare = [c for c in range(ncpus) if c not in busy]
    offline = draw(st.lists(st.sampled_from(spare), unique=True, max_size=len(spare))
                   if spare else st.just([]))
    online = set(range(ncpus)) - set(offline)
    times = sorted(draw(st.lists(st.integers(0, 20_000_000), min_size=1, max_size=6)))
    requests = []
    for t in times:
        candidates = [c for c in range(ncpus) if c not in online or len(online) > 1]
        cpu = draw(st.sampled_from(candidates))
        up = cpu not in online
        (online.add if up else online.discard)(cpu)
        requests.append(CpuHotplug(time_ns=t, cpu=cpu, online=up))
    return tuple(offline), tuple(requests)


def _start_cpus(workloads: list[Any]) -> set[int]:
    """CPUs a workload's threads or interrupt start on: they must be online."""
    cpus: set[int] = set()
    for w in workloads:
        if isinstance(w, LoopbackUdp):
            cpus.update(w.senders + w.receivers)
        else:
            cpus.add(w.cpu)
    return cpus


@st.composite
def configs(
    draw: st.DrawFn,
    policy: Mapping[str, Any],
    *,
    rps: bool | None = None,
    traffic: tuple[str, ...] = TRAFFIC,
    force_irqthreads: bool | None = None,
    idle_poll: bool | None = None,
    preempt_rt: bool | None = None,
    cyclictest: bool | None = None,
    hotplug: bool = False,
    max_packets: int = 20_000,
) -> Config:
    """A whole run under ``policy`` (``Config`` fields: ``policy=``, ``policy_options=``).

    ``rps`` forces RPS on (True) or off (False) for every workload; ``traffic`` names
    the workload kinds to mix (from :data:`TRAFFIC`); ``force_irqthreads``,
    ``idle_poll`` and ``preempt_rt`` fix those kernel flags; ``cyclictest`` adds (or
    not) a cyclictest task. ``None`` leaves a choice to the draw. ``hotplug`` adds
    CPUs offline at start and a hotplug sequence.
    """
    lowest = 2 if hotplug else 1
    ncpus = draw(st.one_of(st.integers(lowest, 4), st.integers(lowest, 64)))
    kinds = st.sampled_from(traffic)
    workloads: list[Any] = [
        draw(nic_irqs(ncpus, rps) if draw(kinds) == "nic" else loopbacks(ncpus, rps))
        for _ in range(draw(st.integers(1, 3)))
    ]
    if draw(_flag(cyclictest)):
        workloads.append(draw(cyclictests(ncpus)))
    offline: tuple[int, ...] = ()
    requests: tuple[CpuHotplug, ...] = ()
    if hotplug:
        offline, requests = draw(hotplug_plans(ncpus, _start_cpus(workloads)))
    return Config(
        ncpus=ncpus,
        workloads=workloads,
        kernel=draw(kernels(ncpus, force_irqthreads, idle_poll, preempt_rt)),
        costs=draw(cost_models()),
        packets=draw(st.integers(2_000, max_packets)),
        drain_ns=GENEROUS_DRAIN_NS,
        offline_cpus=offline,
        hotplug=requests,
        seed=draw(st.integers(0, 2**32)),
        **policy,
    )


def supported_configs(
    policy: Mapping[str, Any],
    unsupported: Iterable[str] = (),
    require: str | None = None,
    max_packets: int = 20_000,
) -> st.SearchStrategy[Config]:
    """:func:`configs` that use no feature named in ``unsupported`` and, if ``require``
    names one, always use it (feature names: :data:`napikit.plugins.FEATURES`)."""
    off = set(unsupported)
    flags: dict[str, Any] = {
        name: (True if require == name else False if name in off else None)
        for name in ("rps", "force_irqthreads", "idle_poll", "preempt_rt")
    }
    flags["hotplug"] = require == "hotplug"
    traffic = tuple(
        kind for kind in TRAFFIC
        if kind not in off and (require not in TRAFFIC or require == kind)
    )
    if not traffic:
        raise ValueError(f"no traffic left to generate: unsupported={sorted(off)}, "
                         f"require={require!r}")
    return configs(policy, traffic=traffic, max_packets=max_packets, **flags)
