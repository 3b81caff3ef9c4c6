"""What real-time users measure (issue 4): a cyclictest-like task's wake-up latency and
the softirq time charged to unrelated tasks (the "punished task"), per policy."""

from __future__ import annotations

import pytest

from napikit import Config, Cyclictest, LoopbackUdp


@pytest.fixture(scope="module")
def with_cyclictest(scenario):
    """``with_cyclictest(name, **changes)``: a scenario with a cyclictest task on the
    RPS target CPU 1, period 100 us."""

    def make(name: str, **changes):
        config = scenario(name, **changes)
        return config.evolve(workloads=config.workloads + (Cyclictest(cpu=1, period_ns=100_000),))

    return make


@pytest.mark.parametrize("name", ["seed-rps", "seed-rt"])
def test_cyclictest_and_punished_time_are_reported(with_cyclictest, policy, run, name):
    """Under SEED-RPS and SEED-RT every policy reports the cyclictest latency
    distribution and the per-task softirq time."""
    result = run(with_cyclictest(name, **policy))
    (latency,) = result.cyclictest_latency
    assert latency.count > 0 and latency.p99_ns > 0
    (task,) = [t for t in result.tasks if t.kind == "cyclictest"]
    assert task.cpu == 1 and task.runtime_ns > 0
    assert result.punished_softirq_ns(1) == sum(
        t.softirq_ns for t in result.tasks if t.cpu == 1 and t.kind in (
            "sender", "receiver", "cyclictest"))


def test_cyclictest_wakes_once_per_period(run):
    """The task runs once per period while input lasts (no overrun at light load)."""
    config = Config(
        ncpus=2,
        workloads=(LoopbackUdp(rate_pps=10_000), Cyclictest(cpu=1, period_ns=200_000)),
        packets=1_000,
    )
    result = run(config)
    periods = result.input_duration_ns // 200_000
    assert abs(result.cyclictest_latency[0].count - periods) <= 1


def test_cyclictest_latency_includes_the_timer_interrupt_and_the_switch(run):
    """On an idle CPU the wake-up latency is the hrtimer interrupt plus a context
    switch, exactly."""
    config = Config(
        ncpus=2,
        workloads=(LoopbackUdp(senders=(0,), receivers=(0,), rate_pps=10_000),
                   Cyclictest(cpu=1, period_ns=100_000)),
        packets=500,
    )
    result = run(config)
    expected = config.costs.hrtimer_irq_ns + config.costs.context_switch_ns
    lat = result.cyclictest_latency[0]
    assert lat.p50_ns == lat.max_ns == expected


def test_softirq_at_irq_exit_delays_the_cyclictest_task(with_cyclictest, run):
    """SEED-RPS, softirq-ipi: an IPI's softirq at irq_exit runs before the woken FIFO
    task gets the CPU, so its worst case exceeds the idle-CPU latency."""
    config = with_cyclictest("seed-rps", policy="softirq-ipi")
    idle = config.costs.hrtimer_irq_ns + config.costs.context_switch_ns
    assert run(config).cyclictest_latency[0].max_ns > idle


def test_backlog_threads_punish_unrelated_tasks_less_than_ipis(with_cyclictest, run):
    """SEED-RPS (non-RT): with softirq-ipi the RPS target's softirq runs at irq_exit on
    top of whatever task runs on CPU 1; backlog-threads runs it in backlog_napi/1, so
    less softirq time is charged to unrelated tasks there."""
    ipi = run(with_cyclictest("seed-rps", policy="softirq-ipi"))
    threads = run(with_cyclictest("seed-rps", policy="backlog-threads"))
    assert ipi.punished_softirq_ns(1) > 0
    assert threads.punished_softirq_ns(1) < ipi.punished_softirq_ns(1)


def test_ksoftirqd_and_backlog_threads_are_not_counted_as_punished(with_cyclictest, run):
    """The kernel threads whose job is softirq work are not punished tasks."""
    result = run(with_cyclictest("seed-rps", policy="backlog-threads"))
    worker = sum(t.softirq_ns for t in result.tasks
                 if t.kind in ("ksoftirqd", "backlog_napi"))
    total = sum(t.softirq_ns for t in result.tasks)
    assert result.punished_softirq_ns() == total - worker


def test_loopback_sender_is_charged_its_own_receive_path(scenario, run):
    """SEED-LO: NET_RX runs at the sender's local_bh_enable and is charged to it
    (kernel-model.md B.7.1): all CPU 0 softirq time is the sender's."""
    result = run(scenario("seed-lo", policy="softirq-ipi"))
    (sender,) = [t for t in result.tasks if t.kind == "sender"]
    assert sender.softirq_ns == result.cpu_time[0].softirq
