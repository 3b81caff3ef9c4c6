"""The UDP reader's blocking (``__skb_wait_for_more_packets``): past the re-check of an
empty receive queue, its path into ``schedule`` costs it ``recv_block_ns``; a datagram
queued meanwhile wakes it there, with no IPI."""

from __future__ import annotations

from typing import Any

import attrs

import napikit
from napikit import Config, scenarios
from napikit._core import Sim


def _raw(config: Config) -> dict[str, Any]:
    sim = Sim(config, napikit.Simulation(config).decision)
    assert sim.run() is None
    return sim.raw_results()


def _paced(rate_pps: float, **costs: int) -> Config:
    """SEED-LO, 2,000 datagrams, its sender paced at ``rate_pps``."""
    base = scenarios.get("seed-lo").config
    base = base.evolve(packets=2_000, costs=attrs.evolve(base.costs, **costs))
    return base.evolve(workloads=(attrs.evolve(base.workloads[0], rate_pps=rate_pps),))


def _reader(raw: dict[str, Any]) -> dict[str, Any]:
    return next(t for t in raw["tasks"] if t["kind"] == "receiver")


def test_each_block_costs_the_reader_recv_block_ns():
    """Paced at 50 kpps every datagram is read before the next is sent: the reader,
    asleep at the start, blocks once after each datagram, and its CPU time grows by
    exactly recv_block_ns per datagram."""
    for x in (0, 2_000):
        raw = _raw(_paced(50_000, recv_block_ns=x))
        n = raw["delivered"]
        assert n == 2_000
        assert _reader(raw)["runtime_ns"] == n * (1_000 + x)
        assert raw["cpu_time"][1]["application"] == n * (1_000 + x)


def test_a_wake_up_inside_the_blocking_path_needs_no_ipi():
    """Paced at 250 kpps (4 us apart) with a 2 us blocking path: the reader blocks once
    per datagram either way, but most datagrams now arrive while it is still in
    schedule(), before its CPU halts: those wake-ups send no IPI and cost the waker
    wakeup_ns only (the sender saves ipi_send_ns each); the reader still switches out
    once per datagram."""
    c = scenarios.get("seed-lo").config.costs
    plain = _raw(_paced(250_000))
    blocked = _raw(_paced(250_000, recv_block_ns=2_000))
    n = blocked["delivered"]
    assert n == plain["delivered"] == 2_000
    assert plain["wakeup_ipis"] == n
    inside = n - blocked["wakeup_ipis"]
    assert inside > n // 2
    reader = _reader(blocked)
    assert reader["switches"] == _reader(plain)["switches"] == n
    assert reader["runtime_ns"] == n * (c.udp_recvmsg_ns + 2_000)
    sender = next(t for t in blocked["tasks"] if t["kind"] == "sender")
    plain_sender = next(t for t in plain["tasks"] if t["kind"] == "sender")
    assert (plain_sender["runtime_ns"] + plain_sender["softirq_ns"]
            - sender["runtime_ns"] - sender["softirq_ns"]) == inside * c.ipi_send_ns


def test_recv_block_keeps_runs_deterministic_and_packets_conserved():
    """Closed loop with a costly block: two runs agree and every packet is delivered,
    dropped or still queued."""
    base = scenarios.get("seed-lo").config
    config = base.evolve(packets=20_000, costs=attrs.evolve(base.costs, recv_block_ns=1_500))
    raw = _raw(config)
    assert raw == _raw(config)
    assert raw["arrived"] == raw["delivered"] + sum(raw["drops"].values()) + raw["queued"]
