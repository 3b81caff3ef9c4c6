"""Softirq machinery (kernel-model.md A.2.4, A.2.6, B.4.1, B.6, B.3.4): net_rx_action's
budget and time limit, the restart loop handing over to ksoftirqd, forced-threaded
interrupts, and the RT warning for softirqs raised from the polling idle task."""

from __future__ import annotations

import attrs

from napikit import Config, CostModel, KernelParams, LoopbackUdp, NicIrq

#: A 2 us protocol receive saturates CPU 1 at 500 kpps; CPU 0 stays far from livelock.
SLOW_RX = CostModel(protocol_rx_ns=2_000)


def _saturated(policy: str = "softirq-ipi", packets: int = 40_000, **kernel) -> Config:
    """A NIC on CPU 0 steering twice CPU 1's capacity to it by RPS."""
    return Config(ncpus=2, costs=SLOW_RX, packets=packets, policy=policy,
                  kernel=KernelParams(**kernel),
                  workloads=[NicIrq(cpu=0, rate_pps=1_000_000, rps_cpus=[1])])


def _light(policy: str = "softirq-ipi", **kernel) -> Config:
    """A NIC on CPU 0 at 50 kpps, steered by RPS to the idle CPU 1."""
    return Config(ncpus=2, packets=5_000, policy=policy, kernel=KernelParams(**kernel),
                  workloads=[NicIrq(cpu=0, rate_pps=50_000, rps_cpus=[1])])


# ----------------------------------------------------------------- net_rx_action limits


def test_lone_saturated_backlog_is_not_squeezed_with_defaults(run):
    """With the defaults a lone backlog is polled once per pass (64 < 300) and a poll
    is far shorter than 2 jiffies: no time_squeeze even when saturated."""
    result = run(_saturated())
    assert result.drops.backlog > 0
    assert all(r.time_squeeze == 0 for r in result.softnet)


def test_budget_below_the_quota_squeezes(run):
    """netdev_budget below one poll's quota ends every full pass with a time_squeeze."""
    result = run(_saturated(netdev_budget=10))
    assert result.softnet[1].time_squeeze > 0
    assert result.softnet[0].time_squeeze == 0


def test_tiny_time_limit_squeezes(run):
    """netdev_budget_usecs of 1 (one jiffy) squeezes the polls that cross a tick, even
    with an unlimited packet budget; the default (2 jiffies) does not."""
    tiny = run(_saturated(netdev_budget=10**6, netdev_budget_usecs=1))
    default = run(_saturated(netdev_budget=10**6))
    assert tiny.softnet[1].time_squeeze > 0
    assert default.softnet[1].time_squeeze == 0


def test_poll_longer_than_the_time_limit_squeezes(run):
    """A poll quota of 1000 packets (2 ms at 2 us each) outlasts the default 2-jiffy
    limit even with an unlimited packet budget."""
    result = run(_saturated(netdev_budget=10**6, dev_weight=1000))
    assert result.softnet[1].time_squeeze > 0


def test_light_load_never_squeezes(run, policy):
    """At light load no pass runs out of budget or time, under any policy."""
    assert all(r.time_squeeze == 0 for r in run(_light().evolve(**policy)).softnet)


# ----------------------------------------------------------------- ksoftirqd


def test_saturated_softirq_hands_over_to_ksoftirqd(run):
    """softirq-ipi, saturated target: the restart loop gives up and ksoftirqd runs
    the backlog (wake-ups and ksoftirqd CPU time on the target)."""
    result = run(_saturated())
    assert result.ksoftirqd_wakeups > 0
    assert result.cpu_time[1].ksoftirqd > 0


def test_perf_a_overload_runs_ksoftirqd(run, scenario):
    """PERF-A at 5 Mpps under softirq-ipi: ksoftirqd gets CPU time."""
    result = run(scenario("perf-a-overload", packets=100_000))
    assert sum(t.ksoftirqd for t in result.cpu_time) > 0


def test_light_load_needs_no_ksoftirqd_without_forced_threads(run):
    """softirq-ipi at light load runs every softirq inline: ksoftirqd never wakes."""
    result = run(_light())
    assert result.ksoftirqd_wakeups == 0
    assert all(t.ksoftirqd == 0 for t in result.cpu_time)
    assert result.cpu_time[1].softirq > 0


def test_ipi_softirq_goes_to_ksoftirqd_with_forced_threads(run):
    """With threadirqs, NET_RX raised by the RPS IPI wakes ksoftirqd on the target."""
    result = run(_light(force_irqthreads=True))
    assert result.ksoftirqd_wakeups > 0
    assert result.cpu_time[1].ksoftirqd > 0
    assert result.cpu_time[1].softirq == 0


def test_ksoftirqd_policy_runs_target_backlog_in_ksoftirqd(run):
    """The ksoftirqd policy moves the target's backlog work from softirq to ksoftirqd."""
    classic = run(_light())
    threaded = run(_light(policy="ksoftirqd"))
    assert threaded.cpu_time[1].ksoftirqd > 0 and classic.cpu_time[1].ksoftirqd == 0
    assert threaded.cpu_time[1].softirq < classic.cpu_time[1].softirq


def test_restart_limit_one_wakes_ksoftirqd_sooner(run):
    """With MAX_SOFTIRQ_RESTART 1, a softirq re-raised by a saturated backlog goes to
    ksoftirqd at once; more of the backlog work runs there."""
    one = run(_saturated(max_softirq_restart=1))
    ten = run(_saturated())
    assert one.cpu_time[1].ksoftirqd >= ten.cpu_time[1].ksoftirqd
    assert one.cpu_time[1].softirq <= ten.cpu_time[1].softirq


# ----------------------------------------------------------------- forced-threaded IRQs


def test_forced_threads_run_the_nic_handler_in_the_irq_thread(run):
    """threadirqs: netif_rx runs in the IRQ thread (irq_thread CPU time on the NIC's
    CPU); without it, in hard-IRQ only."""
    config = Config(ncpus=2, packets=10_000,
                    workloads=[NicIrq(cpu=0, rate_pps=300_000)])
    inline = run(config)
    forced = run(config.evolve(kernel=KernelParams(force_irqthreads=True)))
    assert forced.cpu_time[0].irq_thread > 0 and forced.delivered == forced.arrived
    assert inline.cpu_time[0].irq_thread == 0


def test_irq_thread_time_is_the_netif_rx_cost(run):
    """The IRQ thread spends netif_rx_ns per packet it hands to the stack."""
    config = Config(ncpus=1, packets=10_000, kernel=KernelParams(force_irqthreads=True),
                    workloads=[NicIrq(cpu=0, rate_pps=100_000)])
    result = run(config)
    assert result.cpu_time[0].irq_thread == result.arrived * config.costs.netif_rx_ns


def test_forced_thread_softirq_runs_at_its_bh_enable(run):
    """The NET_RX raised inside the IRQ thread runs at its local_bh_enable, not in
    ksoftirqd (B.6.4)."""
    config = Config(ncpus=1, packets=10_000, kernel=KernelParams(force_irqthreads=True),
                    workloads=[NicIrq(cpu=0, rate_pps=100_000)])
    result = run(config)
    assert result.cpu_time[0].softirq > 0
    assert result.ksoftirqd_wakeups == 0


def test_device_ring_overflows_when_the_irq_thread_falls_behind(run, zero_costs):
    """A forced-threaded handler slower than the NIC fills the device ring, whose
    overflow is counted as nic_ring drops."""
    costs = attrs.evolve(zero_costs, netif_rx_ns=2_000)
    config = Config(ncpus=1, packets=40_000, costs=costs,
                    kernel=KernelParams(force_irqthreads=True),
                    workloads=[NicIrq(cpu=0, rate_pps=2_000_000, arrival="bursty", burst=64)])
    result = run(config)
    assert result.drops.nic_ring > 0 and result.conserved


# ----------------------------------------------------------------- RT idle warning


def test_idle_poll_with_forced_threads_warns(run):
    """A polling-idle target taking an RPS csd under threadirqs warns (B.3.4)."""
    result = run(_light(idle_poll=True, force_irqthreads=True))
    assert result.rt_idle_softirq_warnings > 0


def test_no_warning_without_idle_poll(run):
    """Without polling idle, the csd comes as an IPI: no warning."""
    assert run(_light(idle_poll=False, force_irqthreads=True)).rt_idle_softirq_warnings == 0


def test_no_warning_without_forced_threads(run):
    """Non-RT polling idle runs do_softirq in the idle task: no warning."""
    assert run(_light(idle_poll=True)).rt_idle_softirq_warnings == 0


def test_no_warning_with_backlog_threads(run):
    """backlog-threads sends no csd at all: no warning even with polling idle."""
    config = _light(policy="backlog-threads", idle_poll=True, force_irqthreads=True)
    assert run(config).rt_idle_softirq_warnings == 0


def test_polling_idle_target_takes_no_interrupt(run):
    """A polling-idle target runs the csd from the idle loop: no hard-IRQ handler time."""
    interrupt = run(_light())
    polling = run(_light(idle_poll=True))
    assert polling.cpu_time[1].hardirq < interrupt.cpu_time[1].hardirq


# ----------------------------------------------------------------- loopback softirq


def test_loopback_softirq_runs_in_the_sender(run, scenario):
    """SEED-LO: the NET_RX raised by loopback_xmit runs at the sender's
    local_bh_enable, in softirq on CPU 0, never in ksoftirqd."""
    result = run(scenario("seed-lo", packets=20_000))
    assert result.cpu_time[0].softirq > 0
    assert result.ksoftirqd_wakeups == 0


def test_softirq_entry_cost_is_charged(run, zero_costs):
    """softirq_entry_ns is paid per handle_softirqs pass: free entry means less softirq
    time for the same work."""
    base = Config(ncpus=1, packets=5_000, workloads=[LoopbackUdp(senders=[0], receivers=[0])])
    free = run(base.evolve(costs=attrs.evolve(CostModel(), softirq_entry_ns=0)))
    paid = run(base.evolve(costs=attrs.evolve(CostModel(), softirq_entry_ns=500)))
    assert paid.cpu_time[0].softirq > free.cpu_time[0].softirq
