"""csd coalescing on ``call_single_queue`` (kernel-model.md B.10.1): a csd queued while
an IPI to its target is in flight rides on it (``__smp_call_single_queue`` sends one
only when ``llist_add`` finds the queue empty)."""

from __future__ import annotations

from typing import Any

import napikit
from napikit import Config, CostModel, KernelParams, LoopbackUdp, NicIrq
from napikit._core import Sim


def _raw(config: Config) -> dict[str, Any]:
    sim = Sim(config, napikit.Simulation(config).decision)
    assert sim.run() is None
    return sim.raw_results()


def _two_sources(latency: int, coalescing: bool = True) -> Config:
    """CPU 1 is kicked from two CPUs: CPU 0's inline receive wakes the reader on CPU 1
    (ttwu_queue_wakelist, a call-function IPI), the NIC on CPU 2 steers its packets to
    CPU 1 by RPS (an RPS IPI); both arrive ``latency`` ns after they are sent."""
    return Config(
        ncpus=3, packets=4_000,
        workloads=(LoopbackUdp(senders=(0,), receivers=(1,), rate_pps=20_000),
                   NicIrq(cpu=2, rate_pps=20_000, flows=4, rps_cpus=(1,))),
        kernel=KernelParams(csd_coalescing=coalescing),
        costs=CostModel(ipi_latency_ns=latency, wakeup_latency_ns=latency))


def _interrupts(raw: dict[str, Any]) -> int:
    return raw["ipis"] + raw["wakeup_ipis"]


def test_a_csd_queued_behind_an_ipi_in_flight_sends_none():
    """With a 40 us latency a kick often finds an IPI in flight to CPU 1 and rides on
    it: fewer RPS IPIs than RPS csds run (received_rps counts each csd), every csd is an
    IPI or a coalesced one, and CPU 1's hard-IRQ time is one handler per interrupt."""
    raw = _raw(_two_sources(40_000))
    rps_csds = raw["softnet"][1]["received_rps"]
    rode = rps_csds - raw["ipis"]
    assert raw["coalesced_csds"] > 0
    assert 0 < rode <= raw["coalesced_csds"]
    assert raw["ipis"] < rps_csds
    assert raw["cpu_time"][1]["hardirq"] == _interrupts(raw) * CostModel().ipi_handler_ns
    assert raw["delivered"] + sum(raw["drops"].values()) + raw["queued"] == raw["arrived"]


def test_the_longer_an_ipi_is_in_flight_the_more_csds_ride_on_it():
    """From 2 us to 40 us of latency: more coalesced csds, fewer interrupts."""
    short, long = _raw(_two_sources(2_000)), _raw(_two_sources(40_000))
    assert long["coalesced_csds"] > short["coalesced_csds"] > 0
    assert _interrupts(long) < _interrupts(short)


def test_one_source_alone_never_coalesces():
    """RPS kicks from one CPU alone: a target's backlog stays SCHED until its csd has run
    and it is polled, so no second RPS csd can be queued behind the first."""
    config = _two_sources(40_000)
    raw = _raw(config.evolve(workloads=config.workloads[1:]))
    assert raw["coalesced_csds"] == 0
    assert raw["ipis"] == raw["softnet"][1]["received_rps"] > 0


def test_without_coalescing_every_csd_sends_an_ipi():
    """csd_coalescing off (the default): every RPS csd is an IPI, as before."""
    raw = _raw(_two_sources(40_000, coalescing=False))
    assert raw["coalesced_csds"] == 0
    assert raw["ipis"] == raw["softnet"][1]["received_rps"] > 0
    assert raw["cpu_time"][1]["hardirq"] == _interrupts(raw) * CostModel().ipi_handler_ns


def test_coalescing_is_deterministic():
    """Two runs agree."""
    assert _raw(_two_sources(40_000)) == _raw(_two_sources(40_000))
