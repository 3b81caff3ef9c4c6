"""Tasks and the per-CPU scheduler (kernel-model.md A.2.7, B.5.2, B.6.4): context
switches and their cost, wake-up preemption and fairness, SCHED_FIFO IRQ threads,
backlog-thread wake-ups."""

from __future__ import annotations

import attrs
import pytest

from napikit import Config, CostModel, KernelParams, LoopbackUdp, NicIrq


def test_sleeping_receiver_causes_context_switches(run, scenario):
    """SEED-LO: the receiver sleeps on an empty socket and is woken: switches happen."""
    result = run(scenario("seed-lo", packets=20_000))
    assert result.context_switches > 0
    assert result.cpu_time[1].sched > 0


def test_switch_time_is_a_whole_number_of_switch_costs(run, scenario):
    """Each switch to a task costs context_switch_ns, switching to idle nothing: the
    sched time is k * cost for some k <= context_switches."""
    cost = 777
    config = scenario("seed-rps-spread", packets=20_000, policy="backlog-threads")
    result = run(config.evolve(costs=attrs.evolve(config.costs, context_switch_ns=cost)))
    total = sum(t.sched for t in result.cpu_time)
    assert total > 0 and total % cost == 0
    assert total // cost <= result.context_switches


def test_free_context_switches_cost_no_time(run, scenario):
    """With context_switch_ns = 0 no CPU spends time switching."""
    config = scenario("seed-lo", packets=20_000)
    result = run(config.evolve(costs=attrs.evolve(config.costs, context_switch_ns=0)))
    assert result.context_switches > 0
    assert all(t.sched == 0 for t in result.cpu_time)


def test_involuntary_switches_are_a_subset(run, scenario, policy):
    """Involuntary switches never outnumber all switches."""
    result = run(scenario("seed-rps-spread", packets=20_000, **policy))
    assert result.involuntary_switches <= result.context_switches


def test_no_preemption_when_nothing_competes(run, scenario):
    """SEED-LO: sender and receiver each own a CPU, so nobody is preempted."""
    assert run(scenario("seed-lo", packets=20_000)).involuntary_switches == 0


def test_woken_receiver_preempts_the_sender_on_its_cpu(run):
    """A receiver sharing the sender's CPU is woken and preempts it, so it receives
    while the sender is still sending."""
    config = Config(ncpus=1, packets=10_000,
                    workloads=[LoopbackUdp(senders=[0], receivers=[0])])
    result = run(config)
    assert result.involuntary_switches > 0
    assert result.delivered_pps > 0


def test_two_hogs_share_a_cpu_fairly(run):
    """Two closed-loop senders on CPU 0 get about equal shares: their receivers (on
    CPUs 1 and 2) spend about equal time receiving."""
    config = Config(ncpus=3, packets=40_000, workloads=[
        LoopbackUdp(senders=[0], receivers=[1]), LoopbackUdp(senders=[0], receivers=[2])])
    result = run(config)
    a, b = result.cpu_time[1].application, result.cpu_time[2].application
    assert a > 0 and b > 0
    assert a == pytest.approx(b, rel=0.1)


def test_shorter_latency_period_preempts_more(run):
    """CFS: a shorter sched_latency (smaller slices) makes two CPU hogs switch more
    often."""
    def hogs(latency_ns: int) -> Config:
        return Config(ncpus=3, packets=40_000,
                      kernel=KernelParams(scheduler="cfs", sched_latency_ns=latency_ns,
                                          sched_min_granularity_ns=latency_ns // 8),
                      workloads=[LoopbackUdp(senders=[0], receivers=[1]),
                                 LoopbackUdp(senders=[0], receivers=[2])])
    assert run(hogs(1_000_000)).involuntary_switches > run(hogs(6_000_000)).involuntary_switches


def test_shorter_base_slice_preempts_more(run):
    """EEVDF: a shorter sched_base_slice (earlier deadlines) makes two CPU hogs switch
    more often."""
    def hogs(slice_ns: int) -> Config:
        return Config(ncpus=3, packets=40_000,
                      kernel=KernelParams(sched_base_slice_ns=slice_ns),
                      workloads=[LoopbackUdp(senders=[0], receivers=[1]),
                                 LoopbackUdp(senders=[0], receivers=[2])])
    assert run(hogs(1_000_000)).involuntary_switches > run(hogs(6_000_000)).involuntary_switches


# ----------------------------------------------------------------- SCHED_FIFO IRQ threads


def test_fifo_irq_thread_gets_the_cpu_from_a_cfs_hog(run):
    """A forced-threaded NIC handler (SCHED_FIFO 50) on the CPU of a closed-loop sender
    preempts it and gets CPU time; its ring never overflows."""
    config = Config(ncpus=2, packets=40_000, kernel=KernelParams(force_irqthreads=True),
                    workloads=[LoopbackUdp(senders=[0], receivers=[1]),
                               NicIrq(cpu=0, rate_pps=100_000)])
    result = run(config)
    assert result.cpu_time[0].irq_thread > 0
    assert result.involuntary_switches > 0
    assert result.drops.nic_ring == 0


def test_irq_thread_exists_only_with_forced_threading(run):
    """Without threadirqs the NIC handler runs in hard-IRQ: no IRQ-thread time, and the
    sender on that CPU is never preempted by it."""
    config = Config(ncpus=2, packets=40_000,
                    workloads=[LoopbackUdp(senders=[0], receivers=[1]),
                               NicIrq(cpu=0, rate_pps=100_000)])
    result = run(config)
    assert all(t.irq_thread == 0 for t in result.cpu_time)
    assert result.cpu_time[0].hardirq > 0


# ----------------------------------------------------------------- backlog threads


@pytest.mark.parametrize("name", ["perf-a", "seed-rps-spread", "seed-rps"])
def test_backlog_thread_wakeups_never_exceed_kicks(run, scenario, name):
    """A kick wakes the backlog thread only if it sleeps: wake-ups <= kicks."""
    result = run(scenario(name, packets=50_000, policy="backlog-threads"))
    assert 0 < result.backlog_thread_wakeups <= result.thread_kicks


def test_backlog_thread_time_is_on_the_target_cpus(run, scenario):
    """PERF-A under backlog-threads: remote targets poll in their backlog thread, the
    interrupted CPU 0 polls its own backlog in softirq (the fast path)."""
    result = run(scenario("perf-a", packets=50_000, policy="backlog-threads"))
    assert all(t.backlog_thread > 0 for t in result.cpu_time[1:])
    assert result.cpu_time[0].backlog_thread == 0
    assert result.cpu_time[0].softirq > 0


@pytest.mark.parametrize("context_switch_ns", [0, 500])
@pytest.mark.parametrize("rps_cpus", [[], [0]], ids=["rps-off", "rps-self"])
def test_thread_woken_from_hardirq_on_an_idle_cpu_sees_the_packet(run, context_switch_ns,
                                                                  rps_cpus):
    """A NIC packet whose local backlog is handed to backlog_napi/N (no fast path) is
    polled, whatever a context switch costs: the thread must find the packet that
    enqueue_to_backlog queued when it kicked the thread."""
    config = Config(ncpus=1, packets=2_000, policy="backlog-threads",
                    policy_options={"fast_path": False},
                    costs=CostModel(context_switch_ns=context_switch_ns),
                    workloads=[NicIrq(cpu=0, rate_pps=100_000, arrival="constant",
                                      rps_cpus=rps_cpus)])
    result = run(config)
    assert result.delivered == result.arrived
    assert result.cpu_time[0].backlog_thread > 0


@pytest.mark.parametrize("wakeup_latency_ns", [0, 2_000])
def test_remote_thread_wakeup_sees_the_packet(run, zero_costs, wakeup_latency_ns):
    """A remote backlog thread kicked with zero-cost switches and wake-ups still
    polls every packet."""
    costs = attrs.evolve(zero_costs, protocol_rx_ns=500, wakeup_latency_ns=wakeup_latency_ns)
    config = Config(ncpus=2, packets=2_000, policy="backlog-threads", costs=costs,
                    workloads=[NicIrq(cpu=0, rate_pps=100_000, rps_cpus=[1])])
    result = run(config)
    assert result.delivered == result.arrived
    assert result.cpu_time[1].backlog_thread > 0


def test_remote_wakeup_latency_delays_delivery(run, scenario):
    """A slower remote wake-up makes backlog-thread deliveries later."""
    config = scenario("perf-a", packets=50_000, policy="backlog-threads")
    fast = run(config.evolve(costs=attrs.evolve(config.costs, wakeup_latency_ns=1_000)))
    slow = run(config.evolve(costs=attrs.evolve(config.costs, wakeup_latency_ns=20_000)))
    assert slow.latency_enqueue.mean_ns > fast.latency_enqueue.mean_ns


def test_ipi_latency_delays_delivery(run, scenario):
    """A slower IPI makes softirq-ipi deliveries on remote CPUs later."""
    config = scenario("perf-a", packets=50_000)
    fast = run(config.evolve(costs=attrs.evolve(config.costs, ipi_latency_ns=500)))
    slow = run(config.evolve(costs=attrs.evolve(config.costs, ipi_latency_ns=20_000)))
    assert slow.latency_enqueue.mean_ns > fast.latency_enqueue.mean_ns


def test_ksoftirqd_wakeups_lead_to_switches(run, scenario):
    """SEED-RT under the ksoftirqd policy: every ksoftirqd wake-up is a switch to it."""
    result = run(scenario("seed-rt", packets=50_000, policy="ksoftirqd"))
    assert 0 < result.ksoftirqd_wakeups <= result.context_switches


@pytest.mark.parametrize("granularity", [0, 10**9])
def test_wakeup_granularity_decides_wakeup_preemption(run, scenario, granularity):
    """CFS, SEED-LO under backlog-threads without the fast path: every packet wakes CPU
    0's backlog thread while the sender runs. With sched_wakeup_granularity_ns = 0 each
    wake-up preempts the sender (check_preempt_wakeup: vdiff > gran); with 1 s almost
    none does (the sender's vruntime lead is never that large)."""
    config = scenario("seed-lo", packets=20_000, policy="backlog-threads",
                      policy_options={"fast_path": False})
    kernel = attrs.evolve(config.kernel, scheduler="cfs",
                          sched_wakeup_granularity_ns=granularity)
    result = run(config.evolve(kernel=kernel))
    if granularity == 0:
        assert result.involuntary_switches >= 10_000
    else:
        assert result.involuntary_switches <= 100
