"""The named reference scenarios (napikit/scenarios.py): their configuration as
documented, their expected shapes, and every policy running each of them cleanly."""

from __future__ import annotations

import attrs
import pytest

import napikit
import napikit.scenarios
from napikit import CostModel, KernelParams, LoopbackUdp, NicIrq

ALL = ["seed-lo", "seed-rps", "seed-rps-spread", "seed-rt", "perf-a", "perf-a-overload"]


def test_every_documented_scenario_is_shipped():
    """PERF-A (and its overload), SEED-LO, SEED-RPS (and spread) and SEED-RT exist."""
    assert set(ALL) <= set(napikit.scenarios.names())
    for name in napikit.scenarios.names():
        assert napikit.scenarios.get(name).description


def test_scenario_names_are_case_insensitive():
    """SEED-LO and seed-lo are the same scenario."""
    assert napikit.scenarios.get("SEED-LO") == napikit.scenarios.get("seed-lo")


def test_unknown_scenario_lists_the_names():
    """An unknown scenario is a ConfigError listing the known ones."""
    with pytest.raises(napikit.ConfigError) as info:
        napikit.scenarios.get("seed-low")
    msg = str(info.value)
    assert msg.startswith("scenario:") and all(n in msg for n in ALL)


def test_default_compare_names_shipped_scenarios():
    """The default comparison runs SEED-LO and SEED-RPS."""
    assert set(napikit.scenarios.DEFAULT_COMPARE) == {"seed-lo", "seed-rps"}


@pytest.mark.parametrize("name, rate", [("perf-a", 2_000_000), ("perf-a-overload", 5_000_000)])
def test_perf_a_is_configured_as_documented(scenario, name, rate):
    """PERF-A: 4 CPUs, a Poisson NIC on CPU 0, 1024 uniform flows RPS'd over all CPUs,
    1M packets, the documented costs with every other cost 0, kernel defaults."""
    c = scenario(name)
    assert c.ncpus == 4 and c.packets == 1_000_000 and c.kernel == KernelParams()
    assert c.workloads == (NicIrq(cpu=0, rate_pps=rate, arrival="poisson", flows=1024,
                                  flow_dist="uniform", rps_cpus=(0, 1, 2, 3)),)
    named = dict(netif_rx_ns=100, protocol_rx_ns=1000, ipi_send_ns=200,
                 ipi_latency_ns=1500, ipi_handler_ns=300)
    zero = {a.name: 0 for a in attrs.fields(CostModel)}
    assert c.costs == CostModel(**{**zero, **named})


@pytest.mark.parametrize("name, rps, rt", [
    ("seed-lo", (), False), ("seed-rps", (1,), False), ("seed-rt", (1,), True),
])
def test_seed_scenarios_are_configured_as_documented(scenario, name, rps, rt):
    """SEED-*: 2 CPUs, closed-loop sender on CPU 0, receiver on CPU 1, default costs."""
    c = scenario(name)
    assert c.ncpus == 2 and c.costs == CostModel()
    assert c.workloads == (LoopbackUdp(senders=(0,), receivers=(1,), rate_pps=None,
                                       rps_cpus=rps),)
    assert c.kernel == KernelParams(preempt_rt=rt)


def test_seed_rps_spread_is_configured_as_documented(scenario):
    """SEED-RPS spread: 4 CPUs, 8 flows RPS'd over all of them."""
    c = scenario("seed-rps-spread")
    (w,) = c.workloads
    assert c.ncpus == 4 and w.flows == 8 and w.rps_cpus == (0, 1, 2, 3)


@pytest.mark.parametrize("name", ALL)
def test_every_policy_runs_every_scenario_cleanly(scenario, run, policy, name):
    """Each scenario under each policy conserves packets, keeps flow order, processes
    on the right CPU and drains completely."""
    result = run(scenario(name, packets=50_000, **policy))
    assert result.conserved
    assert (result.reordered, result.wrong_cpu) == (0, 0)
    assert result.quiescent
    assert result.queued == 0 and result.unpolled_backlogs == 0


# ----------------------------------------------------------------- expected shapes


@pytest.fixture(scope="module")
def perf_a(scenario, run):
    """PERF-A under softirq-ipi, 200k packets."""
    return run(scenario("perf-a", packets=200_000))


def test_perf_a_drops_nothing(perf_a):
    """At 2 Mpps over 4 CPUs nothing is dropped."""
    assert perf_a.drops.total == 0 and perf_a.delivered == perf_a.arrived


def test_perf_a_spreads_a_quarter_per_cpu(perf_a):
    """RPS over 1024 uniform flows gives each CPU about a quarter of the packets."""
    for row in perf_a.softnet:
        assert row.processed == pytest.approx(perf_a.delivered / 4, rel=0.15)


def test_perf_a_one_ipi_per_remote_wakeup(perf_a):
    """Each IPI is received once, only remote CPUs receive them, and a remote backlog
    run handles at least one packet per IPI."""
    assert perf_a.ipis == sum(r.received_rps for r in perf_a.softnet) > 0
    assert perf_a.softnet[0].received_rps == 0
    for row in perf_a.softnet[1:]:
        assert 0 < row.received_rps <= row.processed


def test_perf_a_latency_is_a_few_microseconds(perf_a, scenario):
    """Mean enqueue-to-delivery latency is a few microseconds: above the protocol cost,
    below ten times it."""
    cost = scenario("perf-a").costs.protocol_rx_ns
    assert cost <= perf_a.latency_enqueue.mean_ns < 10 * cost


def test_perf_a_overload_drops_about_thirty_percent(scenario, run):
    """At 5 Mpps CPU 0 is overloaded and about 30 % of packets drop at the backlog."""
    result = run(scenario("perf-a-overload", packets=200_000))
    assert 0.2 <= result.drops.backlog / result.arrived <= 0.4
    assert result.drops.backlog == result.drops.total


def test_perf_a_overload_drops_more_than_perf_a(scenario, run):
    """Raising the rate from 2 to 5 Mpps raises the drop fraction."""
    low = run(scenario("perf-a", packets=100_000))
    high = run(scenario("perf-a-overload", packets=100_000))
    assert high.drops.total / high.arrived > low.drops.total / low.arrived


def test_seed_lo_receives_inside_the_send_call(scenario, run):
    """SEED-LO under softirq-ipi: every packet is processed on the sender's CPU, in
    softirq context there, and none on the receiver's CPU."""
    result = run(scenario("seed-lo", packets=50_000))
    assert result.softnet[0].processed == result.arrived
    assert result.softnet[1].processed == 0
    assert result.cpu_time[0].softirq > 0 and result.cpu_time[1].softirq == 0
    assert result.ipis == 0


def test_seed_rps_processes_on_the_target(scenario, run):
    """SEED-RPS: the backlog work moves to CPU 1; CPU 0 processes nothing."""
    result = run(scenario("seed-rps", packets=50_000))
    assert result.softnet[0].processed == 0
    assert result.softnet[1].processed == result.arrived - result.drops.backlog


# ----------------------------------------------------------------- on more CPUs


@pytest.mark.parametrize("name", napikit.scenarios.SCALABLE)
def test_at_two_cpus_is_the_shipped_scenario(name):
    """at_ncpus(name, 2) is the scenario as shipped."""
    assert napikit.scenarios.at_ncpus(name, 2) == napikit.scenarios.get(name).config


@pytest.mark.parametrize("name", napikit.scenarios.SCALABLE)
def test_at_ncpus_makes_one_pair_per_two_cpus(name):
    """On 8 CPUs a SEED scenario is 4 copies of its 2-CPU pair, each with its packets."""
    base = napikit.scenarios.get(name).config
    config = napikit.scenarios.at_ncpus(name, 8)
    assert config.ncpus == 8 and config.packets == 4 * base.packets
    (pair,) = base.workloads
    for i, w in enumerate(config.workloads):
        assert w.senders == (2 * i,) and w.receivers == (2 * i + 1,)
        assert w.rps_cpus == ((2 * i + 1,) if pair.rps_cpus else ())
        assert w.flows == pair.flows and w.rate_pps == pair.rate_pps
    assert config.kernel == base.kernel and config.costs == base.costs


@pytest.mark.parametrize("ncpus", [1, 3])
def test_at_ncpus_needs_an_even_count_for_seed_scenarios(ncpus):
    """A SEED scenario pairs CPUs: an odd count is a clear error."""
    with pytest.raises(napikit.ConfigError, match="^ncpus: must be an even number"):
        napikit.scenarios.at_ncpus("seed-lo", ncpus)


def test_at_ncpus_only_changes_ncpus_of_other_scenarios():
    """PERF-A on 8 CPUs keeps its NIC and mask."""
    config = napikit.scenarios.at_ncpus("perf-a", 8)
    assert config == napikit.scenarios.get("perf-a").config.evolve(ncpus=8)
