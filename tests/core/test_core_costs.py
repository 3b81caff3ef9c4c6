"""Drawn costs (``Config.cost_distributions``, core/costs.pxi): a cost's value is the mean
of its draws, the shape says how single operations spread; queueing theory checks both.

The single-server configuration: one CPU, a Poisson NIC (``nic_irq``) under
softirq-ipi, every cost 0 except ``protocol_rx_ns`` = 1 us (the service time), a backlog
that never overflows. Each packet's enqueue-to-delivery latency is then its sojourn in
an M/G/1 FIFO queue (softirq entry, the IRQ and ``netif_rx`` cost nothing, and the
backlog is work-conserving), whose mean is Pollaczek-Khinchine's
``S + lambda * E[S**2] / (2 * (1 - rho))``: ``S / (1 - rho)`` for exponential service
(M/M/1), ``S + rho * S / (2 * (1 - rho))`` for constant service (M/D/1).
"""

from __future__ import annotations

import math

import attrs
import pytest

import napikit
from napikit import Config, CostDistribution, CostModel, Cyclictest, KernelParams, NicIrq

S = 1000  # ns of service
ZERO_COSTS = CostModel(**{a.name: 0 for a in attrs.fields(CostModel)})


def _server(rho: float, dist: CostDistribution | None, packets: int = 300_000,
            seed: int = 1, policy: str = "softirq-ipi") -> Config:
    return Config(
        ncpus=1, policy=policy, seed=seed, packets=packets,
        workloads=(NicIrq(cpu=0, rate_pps=rho * 1e9 / S, arrival="poisson", flows=1),),
        costs=attrs.evolve(ZERO_COSTS, protocol_rx_ns=S),
        cost_distributions={"protocol_rx_ns": dist} if dist else {},
        kernel=KernelParams(netdev_max_backlog=1_000_000),
    )


def _pk_mean(rho: float, second_moment: float) -> float:
    """Pollaczek-Khinchine: the mean sojourn of an M/G/1 queue with service mean S."""
    lam = rho / S
    return S + lam * second_moment / (2 * (1 - rho))


def _sojourn(config: Config) -> int:
    r = napikit.simulate(config)
    assert r.drops.total == 0 and r.conserved
    return r.latency_enqueue.mean_ns


@pytest.mark.parametrize("rho", [0.5, 0.7])
def test_exponential_service_gives_the_mm1_mean_sojourn(rho: float) -> None:
    got = _sojourn(_server(rho, CostDistribution("exponential")))
    assert got == pytest.approx(S / (1 - rho), rel=0.03)


@pytest.mark.parametrize("rho", [0.5, 0.7])
def test_constant_service_gives_the_md1_mean_sojourn(rho: float) -> None:
    got = _sojourn(_server(rho, None))
    assert got == pytest.approx(S + rho * S / (2 * (1 - rho)), rel=0.03)


def test_lognormal_service_gives_the_pollaczek_khinchine_mean() -> None:
    """sigma 0.6: E[S**2] = S**2 * exp(sigma**2), the mean S as configured."""
    sigma = 0.6
    got = _sojourn(_server(0.5, CostDistribution("lognormal", sigma=sigma), packets=400_000))
    assert got == pytest.approx(_pk_mean(0.5, S * S * math.exp(sigma**2)), rel=0.03)


def test_empirical_service_is_scaled_to_the_mean_and_keeps_its_shape() -> None:
    """Values 1 and 3 (weights 3:1) have mean 1.5: scaled to 1 us they are 667 and
    2000 ns, E[S**2] = (3 * 667**2 + 2000**2) / 4."""
    dist = CostDistribution("empirical", values=(1, 3), weights=(3, 1))
    second = (3 * (S / 1.5) ** 2 + (3 * S / 1.5) ** 2) / 4
    got = _sojourn(_server(0.5, dist))
    assert got == pytest.approx(_pk_mean(0.5, second), rel=0.03)


@pytest.mark.parametrize("dist", [
    CostDistribution("exponential"),
    CostDistribution("lognormal", sigma=1.0),
    CostDistribution("empirical", values=(5, 10, 40), weights=(1, 2, 1)),
], ids=["exponential", "lognormal", "empirical"])
def test_a_drawn_cost_keeps_the_cost_models_mean(dist: CostDistribution) -> None:
    """All softirq time is protocol receive here: per packet it is the configured mean."""
    r = napikit.simulate(_server(0.5, dist, packets=200_000))
    per_packet = r.cpu_time[0].softirq / r.softnet[0].processed
    assert per_packet == pytest.approx(S, rel=0.015)


def test_draws_are_the_same_for_a_seed_and_differ_across_seeds() -> None:
    dist = CostDistribution("exponential")
    a, b = (napikit.simulate(_server(0.5, dist, 20_000, seed=7)).to_json() for _ in range(2))
    c = napikit.simulate(_server(0.5, dist, 20_000, seed=8)).to_json()
    assert a == b and a != c


def test_a_drawn_cost_moves_no_arrival() -> None:
    """The draws have a stream of their own: over the same 20 ms the NIC brings the same
    packets whether the service is constant or drawn."""
    runs = [napikit.simulate(_server(0.5, d).evolve(packets=None, duration_ns=20_000_000))
            for d in (None, CostDistribution("exponential"))]
    assert runs[0].arrived == runs[1].arrived > 0
    assert runs[0].latency_enqueue != runs[1].latency_enqueue


def _every_cost_at_work(policy: dict) -> Config:
    """Loopback UDP with RPS, a NIC and a cyclictest task on 3 CPUs, every cost above 0,
    deferred skb frees, location costs, a blocking path and a polling idle entry: each
    cost of the CostModel is charged somewhere."""
    costs = CostModel(remote_skb_ns=150, remote_sock_ns=80, recv_block_ns=300,
                      idle_entry_ns=700, idle_exit_poll_ns=900)
    return Config(
        ncpus=3, packets=6_000, costs=costs, **policy,
        workloads=(
            napikit.LoopbackUdp(senders=(0,), receivers=(1,), rps_cpus=(1,), rate_pps=200_000),
            NicIrq(cpu=2, rate_pps=100_000, rps_cpus=(0, 1), flows=4),
            Cyclictest(cpu=1, period_ns=50_000),
        ),
        kernel=KernelParams(udp_skb_defer_free=True),
    )


@pytest.mark.parametrize("name", [a.name for a in attrs.fields(CostModel)])
def test_every_cost_can_be_drawn_and_nothing_is_lost(name: str, policy: dict) -> None:
    """Drawing one cost changes the run (so each place that charges it draws) and
    every packet is still processed, dropped with a reason, or queued."""
    config = _every_cost_at_work(policy)
    drawn = napikit.simulate(config.evolve(
        cost_distributions={name: CostDistribution("exponential")}))
    assert drawn.conserved
    assert drawn.to_json() != napikit.simulate(config).to_json()


def test_the_core_has_a_draw_slot_for_every_cost_model_field() -> None:
    """core/defs.pxi's K_* slots follow COST_NAMES: a CostModel field added without a
    slot could not be drawn."""
    from napikit._core import COST_NAMES

    assert COST_NAMES == tuple(a.name for a in attrs.fields(CostModel))
