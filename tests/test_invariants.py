"""Invariants every run must satisfy, for every policy, over fuzzed configurations.

The configurations span 1-64 CPUs, RPS masks (empty included), NIC traffic from light
load to several times overload, loopback UDP between random CPUs, random costs (zeros
included), tiny backlogs, flow limits, forced-threaded IRQs, polling idle, every
arrival kind and bursts (kernel-model.md A.2). Nothing here depends on a figure the
model produces: each test states a law of the kernel's bookkeeping.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import napikit
from napikit import Config, LoopbackUdp, NicIrq
from napikit.testing.profiles import examples


def _traffic(config: Config) -> list[LoopbackUdp | NicIrq]:
    """The workloads that make packets (not the cyclictest tasks)."""
    return [w for w in config.workloads if isinstance(w, (LoopbackUdp, NicIrq))]


def _forced_irqthreads(config: Config, sim: napikit.Simulation) -> bool:
    """IRQs run in threads: ``threadirqs``, PREEMPT_RT, or a policy that asks for it."""
    return (config.kernel.force_irqthreads or config.kernel.preempt_rt
            or sim.decision.force_irqthreads)


def _netif_rx_cpus(config: Config) -> set[int]:
    """The CPUs that run ``netif_rx``: a NIC's interrupted CPU, a loopback sender's."""
    cpus: set[int] = set()
    for w in _traffic(config):
        cpus.update((w.cpu,) if isinstance(w, NicIrq) else w.senders)
    return cpus


def _backlog_cpus(config: Config) -> set[int]:
    """The CPUs whose backlog may receive packets: RPS targets, or the netif_rx CPU."""
    cpus: set[int] = set()
    for w in _traffic(config):
        if w.rps_cpus:
            cpus.update(w.rps_cpus)
        else:
            cpus.update((w.cpu,) if isinstance(w, NicIrq) else w.senders)
    return cpus


# ----------------------------------------------------------------- conservation


@given(data=st.data())
def test_every_packet_is_delivered_dropped_or_queued(configs, policy, run, data):
    """Conservation: arrived == delivered + dropped (any reason) + still queued."""
    result = run(data.draw(configs(policy)))
    assert result.arrived == result.delivered + result.drops.total + result.queued
    assert result.conserved


@given(data=st.data())
def test_input_stops_after_the_packets_asked_for(configs, policy, run, data):
    """With no duration limit, exactly ``packets`` packets arrive."""
    config = data.draw(configs(policy))
    assert run(config).arrived == config.packets


@given(data=st.data())
def test_processed_packets_reach_the_socket_or_its_drop(configs, policy, run, data):
    """In a drained run every packet a backlog processed was delivered or dropped at
    the socket, and every other one was dropped before any backlog took it."""
    config = data.draw(configs(policy))
    result = run(config)
    if not result.quiescent:
        pytest.fail(f"run did not drain within drain_ns={config.drain_ns}")
    processed = sum(row.processed for row in result.softnet)
    assert processed == result.delivered + result.drops.socket
    assert result.arrived - processed == (
        result.drops.backlog + result.drops.flow_limit + result.drops.nic_ring
    )


@given(data=st.data())
def test_softnet_drop_counters_match_the_drop_reasons(configs, policy, run, data):
    """softnet ``dropped`` sums the backlog and flow-limit drops; ``flow_limit_count``
    sums the flow-limit drops."""
    result = run(data.draw(configs(policy)))
    assert sum(r.dropped for r in result.softnet) == result.drops.backlog + result.drops.flow_limit
    assert sum(r.flow_limit_count for r in result.softnet) == result.drops.flow_limit


# ----------------------------------------------------------------- order and placement


@given(data=st.data())
def test_each_flow_is_delivered_in_order(configs, policy, run, data):
    """No packet of a flow overtakes an earlier one of the same flow."""
    assert run(data.draw(configs(policy))).reordered == 0


@given(data=st.data())
def test_packets_are_processed_on_their_backlog_cpu(configs, policy, run, data):
    """Every packet is processed by the CPU whose backlog it was queued on."""
    assert run(data.draw(configs(policy))).wrong_cpu == 0


@given(data=st.data())
def test_rps_off_processes_on_the_netif_rx_cpu(configs, policy, run, data):
    """With RPS off, only CPUs that ran ``netif_rx`` process or drop packets."""
    config = data.draw(configs(policy, rps=False))
    result = run(config)
    allowed = _netif_rx_cpus(config)
    assert {r.cpu for r in result.softnet if r.processed or r.dropped} <= allowed


@given(data=st.data())
def test_rps_on_processes_only_on_cpus_of_the_mask(configs, policy, run, data):
    """With RPS on, packets are processed (and backlog-dropped) only on mask CPUs."""
    config = data.draw(configs(policy, rps=True))
    result = run(config)
    allowed = set().union(*(w.rps_cpus for w in _traffic(config)))
    assert {r.cpu for r in result.softnet if r.processed or r.dropped} <= allowed


@given(data=st.data())
def test_only_backlogs_that_receive_packets_are_used(configs, policy, run, data):
    """No CPU outside the RPS targets and RPS-off ``netif_rx`` CPUs ever queues a packet."""
    config = data.draw(configs(policy))
    result = run(config)
    used = {r.cpu for r in result.softnet if r.processed or r.dropped or r.backlog_len}
    assert used <= _backlog_cpus(config)


# ----------------------------------------------------------------- draining


@given(data=st.data())
def test_run_quiesces_within_a_generous_drain(configs, policy, run, data):
    """Once input stops, the model runs out of events well within the (two-second)
    drain every fuzzed configuration gets."""
    assert run(data.draw(configs(policy))).quiescent


@given(data=st.data())
def test_drained_run_leaves_nothing_queued(configs, policy, run, data):
    """A quiescent run has no packet left in any queue."""
    result = run(data.draw(configs(policy)))
    if result.quiescent:
        assert result.queued == 0
        assert all(r.backlog_len == 0 for r in result.softnet)


@given(data=st.data())
def test_drained_run_leaves_no_backlog_unpolled(configs, policy, run, data):
    """A quiescent run has no backlog NAPI left scheduled (SCHED/SCHED_THREADED) or
    holding packets with nobody to poll it."""
    result = run(data.draw(configs(policy)))
    if result.quiescent:
        assert result.unpolled_backlogs == 0


# ----------------------------------------------------------------- determinism


@settings(max_examples=examples(25))
@given(data=st.data())
def test_same_config_twice_gives_identical_json(configs, policy, run, data):
    """A run is a function of its configuration and seed: byte-identical JSON."""
    config = data.draw(configs(policy, max_packets=8_000))
    assert run(config).to_json() == run(config).to_json()


# ----------------------------------------------------------------- IPIs, kicks, wake-ups


@given(data=st.data())
def test_every_rps_ipi_sent_is_received(configs, policy, run, data):
    """In a drained run, the targets' ``received_rps`` add up to the kicks sent: IPIs,
    and kicks to a CPU that still polled (``idle_entry_ns``), which need none."""
    result = run(data.draw(configs(policy)))
    if result.quiescent:
        assert sum(r.received_rps for r in result.softnet) == result.ipis + result.polled_kicks


@given(data=st.data())
def test_policy_without_backlog_threads_never_kicks_one(configs, policy, data):
    """A policy without backlog threads never wakes a backlog thread."""
    sim = napikit.Simulation(data.draw(configs(policy)))
    result = sim.run()
    if not sim.decision.backlog_threads:
        assert result.thread_kicks == 0
        assert result.backlog_thread_wakeups == 0
        assert all(t.backlog_thread == 0 for t in result.cpu_time)


@given(data=st.data())
def test_backlog_threads_never_send_rps_ipis(configs, policy, run, data):
    """backlog-threads kicks remote backlogs by thread only: no RPS IPI, no received_rps."""
    result = run(data.draw(configs(policy)))
    if policy["policy"] == "backlog-threads":
        assert result.ipis == 0
        assert all(r.received_rps == 0 for r in result.softnet)


@given(data=st.data())
def test_backlog_thread_wakeups_never_exceed_kicks(configs, policy, run, data):
    """A backlog thread is woken only by a THREAD kick (and not when already awake)."""
    result = run(data.draw(configs(policy)))
    assert result.backlog_thread_wakeups <= result.thread_kicks


@given(data=st.data())
def test_every_kernel_thread_wakeup_leads_to_a_switch(configs, policy, run, data):
    """In a drained run each woken ksoftirqd or backlog thread was switched to."""
    result = run(data.draw(configs(policy)))
    if result.quiescent:
        assert result.context_switches >= result.ksoftirqd_wakeups + result.backlog_thread_wakeups
        assert result.involuntary_switches <= result.context_switches


@given(data=st.data())
def test_idle_softirq_warning_needs_polling_idle_and_threaded_irqs(configs, policy, data):
    """The RT warning for softirqs raised from the idle task needs a polling idle CPU
    (``idle_poll``, or a kick that found one still polling: ``idle_entry_ns``) and
    forced-threaded IRQs, and an RPS kick to trigger it."""
    config = data.draw(configs(policy))
    sim = napikit.Simulation(config)
    result = sim.run()
    if not ((config.kernel.idle_poll or result.polled_kicks)
            and _forced_irqthreads(config, sim)):
        assert result.rt_idle_softirq_warnings == 0
    assert result.rt_idle_softirq_warnings <= result.ipis + result.polled_kicks


# ----------------------------------------------------------------- accounting


@given(data=st.data())
def test_cpu_time_fits_in_the_simulated_time(configs, policy, run, busy, data):
    """No CPU is busy longer than the run lasted, and busy + idle is the run's length."""
    result = run(data.draw(configs(policy)))
    for cpu, t in enumerate(result.cpu_time):
        assert busy(t) <= result.sim_time_ns, f"cpu {cpu}: {t} in {result.sim_time_ns} ns"
        assert busy(t) + t.idle + t.offline == result.sim_time_ns, f"cpu {cpu}"


@given(data=st.data())
def test_latency_histograms_count_what_they_measure(configs, policy, run, data):
    """The enqueue latency counts processed packets; send->recv counts loopback
    deliveries only."""
    config = data.draw(configs(policy))
    result = run(config)
    assert result.latency_enqueue.count == sum(r.processed for r in result.softnet)
    if all(isinstance(w, NicIrq) for w in _traffic(config)):
        assert result.latency_send_recv.count == 0
    if all(isinstance(w, LoopbackUdp) for w in _traffic(config)):
        assert result.latency_send_recv.count == result.delivered


@given(data=st.data())
def test_latency_percentiles_are_ordered(configs, policy, run, data):
    """p50 <= p90 <= p99 <= p99.9 <= max, and the mean is at most the max."""
    result = run(data.draw(configs(policy)))
    for lat in (result.latency_enqueue, result.latency_send_recv):
        assert 0 <= lat.p50_ns <= lat.p90_ns <= lat.p99_ns <= lat.p999_ns <= lat.max_ns
        assert 0 <= lat.mean_ns <= lat.max_ns


@given(data=st.data())
def test_force_threaded_nic_runs_its_handler_in_the_irq_thread(configs, policy, data):
    """Forced-threaded IRQs hand NIC packets to the IRQ thread (which then gets CPU
    time); without them no IRQ thread runs and nothing drops at the device ring."""
    config = data.draw(configs(policy, traffic=("nic",)))
    sim = napikit.Simulation(config)
    result = sim.run()
    if not _forced_irqthreads(config, sim):
        assert result.drops.nic_ring == 0
        assert all(t.irq_thread == 0 for t in result.cpu_time)
    elif config.costs.netif_rx_ns > 0 and any(r.processed for r in result.softnet):
        nic_cpus = {w.cpu for w in _traffic(config)}
        assert sum(result.cpu_time[c].irq_thread for c in nic_cpus) > 0
