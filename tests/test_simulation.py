"""The research API: simulate() and Simulation, run length, drain and input shapes."""

from __future__ import annotations

import attrs
import pytest

import napikit
from napikit import CompiledPolicy, Config, LoopbackUdp, NicIrq, Simulation


def test_simulate_equals_simulation_run():
    """simulate(config) is Simulation(config).run()."""
    config = Config(packets=5_000)
    assert napikit.simulate(config).to_json() == Simulation(config).run().to_json()


def test_simulate_fields_override_the_config():
    """simulate(config, **fields) runs config.evolve(**fields)."""
    config = Config(packets=5_000)
    result = napikit.simulate(config, ncpus=3, seed=9)
    assert (result.config["ncpus"], result.seed) == (3, 9)
    assert result.to_json() == napikit.simulate(config.evolve(ncpus=3, seed=9)).to_json()


def test_simulate_without_config_uses_the_defaults():
    """simulate(**fields) starts from Config()."""
    assert napikit.simulate(packets=2_000).config == Config(packets=2_000).to_dict()


def test_simulation_needs_a_config():
    """Anything but a Config is a TypeError."""
    with pytest.raises(TypeError):
        Simulation({"ncpus": 2})


def test_policy_is_resolved_at_construction():
    """The Simulation holds the selected spec and its compiled decision object."""
    sim = Simulation(Config(policy="backlog-threads", policy_options={"fast_path": False}))
    assert sim.spec.name == "backlog-threads"
    assert isinstance(sim.decision, CompiledPolicy)
    assert sim.decision.backlog_threads


def test_run_is_cached():
    """A Simulation runs once; run() again returns the same Result."""
    sim = Simulation(Config(packets=2_000))
    assert sim.run() is sim.run()


def test_duration_limits_the_input():
    """With duration_ns and no packet limit, input stops at the duration."""
    rate, duration = 200_000, 5_000_000
    config = Config(ncpus=1, workloads=[NicIrq(cpu=0, rate_pps=rate, arrival="constant")],
                    packets=None, duration_ns=duration)
    result = napikit.simulate(config)
    assert abs(result.arrived - rate * duration / 1e9) <= 1
    assert result.input_duration_ns <= duration


def test_packets_or_duration_whichever_first():
    """packets stops the input before a longer duration does."""
    config = Config(ncpus=1, workloads=[NicIrq(cpu=0, rate_pps=200_000)],
                    packets=1_000, duration_ns=10**9)
    assert napikit.simulate(config).arrived == 1_000


def test_constant_arrivals_are_evenly_spaced():
    """N constant-rate packets take (N-1) to N gaps of 1/rate."""
    rate, n = 100_000, 10_000
    config = Config(ncpus=1, workloads=[NicIrq(cpu=0, rate_pps=rate, arrival="constant")],
                    packets=n)
    window = napikit.simulate(config).input_duration_ns
    gap = 1e9 / rate
    assert (n - 1) * gap - 1 <= window <= n * gap + 1


@pytest.mark.parametrize("arrival", ["poisson", "bursty"])
def test_random_arrivals_keep_the_mean_rate(arrival):
    """Poisson and bursty arrivals average the configured rate (50k packets: ~2 %)."""
    rate, n = 400_000, 50_000
    config = Config(ncpus=2, workloads=[NicIrq(cpu=0, rate_pps=rate, arrival=arrival,
                                               burst=8, rps_cpus=[1])], packets=n)
    result = napikit.simulate(config)
    measured = result.arrived * 1e9 / result.input_duration_ns
    assert measured == pytest.approx(rate, rel=0.05)


def test_bursty_arrivals_batch_hard_irq_work(zero_costs):
    """A bursty NIC takes one interrupt per burst: its hard-IRQ time is per interrupt."""
    costs = attrs.evolve(zero_costs, nic_irq_ns=1_000)
    base = Config(ncpus=1, costs=costs, packets=16_000,
                  workloads=[NicIrq(cpu=0, rate_pps=100_000, arrival="poisson")])
    single = napikit.simulate(base)
    bursty = napikit.simulate(base.evolve(workloads=[
        NicIrq(cpu=0, rate_pps=100_000, arrival="bursty", burst=16)]))
    assert single.cpu_time[0].hardirq == 16 * bursty.cpu_time[0].hardirq


def test_paced_sender_sends_at_its_rate():
    """A loopback sender with rate_pps sends at that rate, not as fast as it can."""
    rate, n = 50_000, 5_000
    config = Config(workloads=[LoopbackUdp(rate_pps=rate)], packets=n)
    result = napikit.simulate(config)
    assert result.arrived * 1e9 / result.input_duration_ns == pytest.approx(rate, rel=0.02)


def test_closed_loop_sender_is_faster_than_a_slow_paced_one():
    """A closed-loop sender outpaces one paced at 10 kpps."""
    closed = napikit.simulate(Config(packets=5_000))
    paced = napikit.simulate(Config(workloads=[LoopbackUdp(rate_pps=10_000)], packets=5_000))
    assert closed.input_duration_ns < paced.input_duration_ns


def test_several_workloads_share_the_packet_budget():
    """packets counts all sources together."""
    config = Config(ncpus=4, packets=9_000, workloads=[
        NicIrq(cpu=0, rate_pps=300_000), NicIrq(cpu=1, rate_pps=300_000),
        LoopbackUdp(senders=[2], receivers=[3])])
    result = napikit.simulate(config)
    assert result.arrived == 9_000 and result.conserved


def test_drain_zero_cuts_the_run_at_input_stop(scenario):
    """drain_ns=0 ends the run when the input stops, long before the queues could
    drain; what is left is reported queued and packets are still conserved."""
    config = scenario("perf-a-overload", packets=20_000)
    cut = napikit.simulate(config.evolve(drain_ns=0))
    drained = napikit.simulate(config)
    assert cut.input_duration_ns <= cut.sim_time_ns < drained.sim_time_ns
    assert cut.queued > 0 and cut.conserved and not cut.quiescent


def test_longer_drain_delivers_what_a_cut_run_left_queued(scenario):
    """The packets a cut run leaves queued are delivered or dropped once it may drain."""
    config = scenario("perf-a-overload", packets=20_000)
    cut = napikit.simulate(config.evolve(drain_ns=0))
    drained = napikit.simulate(config)
    assert drained.queued == 0
    assert drained.delivered + drained.drops.total == cut.delivered + cut.drops.total + cut.queued


def test_one_cpu_runs():
    """A single CPU with sender and receiver on it works and conserves."""
    config = Config(ncpus=1, workloads=[LoopbackUdp(senders=[0], receivers=[0])], packets=5_000)
    result = napikit.simulate(config)
    assert result.conserved and result.quiescent and result.delivered > 0


def test_many_cpus_run():
    """64 CPUs with RPS over all of them works and conserves."""
    config = Config(ncpus=64, workloads=[NicIrq(cpu=5, rate_pps=2_000_000,
                                                rps_cpus=list(range(64)))], packets=20_000)
    result = napikit.simulate(config)
    assert result.conserved and result.wrong_cpu == 0
    assert sum(1 for r in result.softnet if r.processed) > 32
