"""Location costs (kernel-model.md B.10.6): receive work costs ``remote_skb_ns`` more on
a CPU other than the one that last wrote the skb, and ``remote_sock_ns`` more where
another CPU last touched the socket's receive queue and accounting."""

from __future__ import annotations

from typing import Any

import attrs

import napikit
from napikit import Config, LoopbackUdp, scenarios
from napikit._core import Sim

#: Costs that put nothing but the receive work itself in the softirq bucket.
_PLAIN = dict(softirq_entry_ns=0, wakeup_ns=0, ipi_send_ns=0)


def _raw(config: Config) -> dict[str, Any]:
    sim = Sim(config, napikit.Simulation(config).decision)
    assert sim.run() is None
    return sim.raw_results()


def _cfg(name: str, packets: int = 20_000, **costs: int) -> Config:
    base = scenarios.get(name).config
    return base.evolve(packets=packets, costs=attrs.evolve(base.costs, **costs))


def _paced(name: str, **costs: int) -> Config:
    """``name`` with its sender paced at 50 kpps: each datagram is received and read
    before the next is sent."""
    base = _cfg(name, packets=2_000, **costs)
    return base.evolve(workloads=(attrs.evolve(base.workloads[0], rate_pps=50_000),))


def _processed(raw: dict[str, Any], cpu: int) -> int:
    return raw["softnet"][cpu]["processed"]


def _pps(raw: dict[str, Any]) -> float:
    return raw["delivered_in_window"] / raw["input_duration_ns"] * 1e9


def test_remote_skb_charges_protocol_receive_on_the_rps_target():
    """SEED-RPS: the sender's CPU 0 wrote every skb, CPU 1 runs their protocol receive:
    CPU 1's softirq time is exactly protocol_rx_ns + remote_skb_ns per packet it
    processed, remote_skb_ns per packet more than with it at 0."""
    per_packet = {}
    for x in (0, 400):
        raw = _raw(_cfg("seed-rps", remote_skb_ns=x, **_PLAIN))
        n = _processed(raw, 1)
        assert n > 0 and _processed(raw, 0) == 0
        assert raw["cpu_time"][1]["softirq"] == n * (500 + x)
        per_packet[x] = raw["cpu_time"][1]["softirq"] / n
    assert per_packet[400] - per_packet[0] == 400


def test_remote_skb_leaves_the_inline_receive_alone_and_charges_recvmsg():
    """SEED-LO: the receive runs inline on the sender's CPU, which wrote the skb: its
    softirq time per packet does not change with remote_skb_ns; the reader on CPU 1
    copies a datagram written on CPU 0 and pays remote_skb_ns per recvmsg."""
    for x in (0, 400):
        raw = _raw(_cfg("seed-lo", remote_skb_ns=x, **_PLAIN))
        assert raw["cpu_time"][0]["softirq"] == _processed(raw, 0) * 500
        assert raw["cpu_time"][1]["application"] == raw["delivered"] * (1000 + x)


def test_remote_sock_charges_the_enqueue_and_the_recvmsg_across_cpus():
    """SEED-LO paced: the reader on CPU 1 reads each datagram before the next is sent,
    so each enqueue on CPU 0 finds the socket last touched by CPU 1 (but the first), and
    each recvmsg finds it last touched by CPU 0."""
    y = 300
    raw = _raw(_paced("seed-lo", remote_sock_ns=y, **_PLAIN))
    n = raw["delivered"]
    assert n == 2_000
    assert raw["cpu_time"][0]["softirq"] == n * 500 + (n - 1) * y
    assert raw["cpu_time"][1]["application"] == n * (1000 + y)


def test_remote_sock_is_free_when_one_cpu_does_all_the_socket_work():
    """SEED-RPS: CPU 1 both enqueues and reads, so remote_sock_ns changes nothing."""
    assert _raw(_cfg("seed-rps", remote_sock_ns=700)) == _raw(_cfg("seed-rps"))


def test_everything_on_one_cpu_has_no_location_cost():
    """Sender and reader on CPU 0, RPS off: every skb and the socket stay on CPU 0, so
    neither location cost changes anything."""
    base = _cfg("seed-lo")
    one = base.evolve(workloads=(LoopbackUdp(senders=(0,), receivers=(0,)),))
    costly = one.evolve(costs=attrs.evolve(one.costs, remote_skb_ns=900, remote_sock_ns=900))
    assert _raw(costly) == _raw(one)


def test_nic_packets_cost_more_on_the_rps_cpus_than_on_the_interrupted_one():
    """PERF-A: the NIC interrupts CPU 0, which built every skb; RPS spreads them over
    CPUs 0-3: only CPUs 1-3 pay remote_skb_ns per packet they process."""
    config = _cfg("perf-a", remote_skb_ns=250, **_PLAIN)
    rx = config.costs.protocol_rx_ns
    raw = _raw(config)
    assert raw["cpu_time"][0]["softirq"] == _processed(raw, 0) * rx
    for cpu in (1, 2, 3):
        assert _processed(raw, cpu) > 0
        assert raw["cpu_time"][cpu]["softirq"] == _processed(raw, cpu) * (rx + 250)


def test_rps_helps_with_moderate_remote_costs_and_hurts_with_large_ones():
    """An expensive send and inline receive on CPU 0, a cheap reader: RPS to the
    reader's CPU moves the receive there and raises delivered packets/s over RPS off
    when the remote costs are moderate; when remote_skb_ns is large the receive costs
    CPU 1 more than it saved CPU 0 and RPS lowers it (without the mechanism it would
    still raise it)."""
    host = dict(protocol_rx_ns=1500, udp_sendmsg_ns=2500, udp_recvmsg_ns=200)
    moderate = dict(host, remote_skb_ns=300, remote_sock_ns=300)
    large = dict(host, remote_skb_ns=3000, remote_sock_ns=300)
    assert _pps(_raw(_cfg("seed-rps", **moderate))) > 1.3 * _pps(_raw(_cfg("seed-lo", **moderate)))
    assert _pps(_raw(_cfg("seed-rps", **large))) < 0.9 * _pps(_raw(_cfg("seed-lo", **large)))
    assert _pps(_raw(_cfg("seed-rps", **host))) > 1.3 * _pps(_raw(_cfg("seed-lo", **host)))


def test_location_costs_keep_runs_deterministic_and_packets_conserved():
    """Two runs agree; every packet is delivered, dropped or still queued."""
    config = _cfg("seed-rps-spread", remote_skb_ns=150, remote_sock_ns=80)
    raw = _raw(config)
    assert raw == _raw(config)
    assert raw["arrived"] == raw["delivered"] + sum(raw["drops"].values()) + raw["queued"]
    assert raw["packets_in_use"] == raw["queued"]
