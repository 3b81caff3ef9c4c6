"""The UDP reader's blocking (``__skb_wait_for_more_packets``): an empty receive queue
costs it ``recv_block_ns`` before it sleeps, and a datagram queued meanwhile is taken
without sleeping."""

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


def test_a_datagram_queued_while_the_reader_blocks_is_taken_without_sleeping():
    """Paced at 500 kpps (2 us apart) a 1 us recvmsg leaves the reader idle before the
    next datagram, so without the blocking cost it sleeps and is woken through the
    wakelist IPI again and again; with a 2 us blocking path the next datagram is
    already queued when it re-checks (after prepare_to_wait), so only the first
    datagram wakes it."""
    assert _raw(_paced(500_000))["wakeup_ipis"] > 100
    blocked = _raw(_paced(500_000, recv_block_ns=2_000))
    assert blocked["delivered"] == 2_000
    assert blocked["wakeup_ipis"] == 1


def test_recv_block_keeps_runs_deterministic_and_packets_conserved():
    """Closed loop with a costly block: two runs agree and every packet is delivered,
    dropped or still queued."""
    base = scenarios.get("seed-lo").config
    config = base.evolve(packets=20_000, costs=attrs.evolve(base.costs, recv_block_ns=1_500))
    raw = _raw(config)
    assert raw == _raw(config)
    assert raw["arrived"] == raw["delivered"] + sum(raw["drops"].values()) + raw["queued"]
