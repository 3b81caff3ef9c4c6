"""PREEMPT_RT semantics and the pre-6.5 ksoftirqd rule as kernel options, independent
of the policy (kernel-model.md A.2.6, B.6.3, B.6.4)."""

from __future__ import annotations

import pytest

from napikit import Cyclictest, KernelParams, hookimpl

RT = KernelParams(preempt_rt=True)


def _without_policy(result) -> dict:
    d = result.to_dict()
    for key in ("policy", "policy_package", "config", "fingerprint"):
        d.pop(key)
    return d


def test_rt_invoke_softirq_does_not_depend_on_the_policy(scenario, run):
    """Under PREEMPT_RT the IPI policies differ only in name: where softirqs run is the
    kernel's rule, not the policy's."""
    config = scenario("seed-rt")
    assert _without_policy(run(config.evolve(policy="softirq-ipi"))) == _without_policy(
        run(config.evolve(policy="ksoftirqd")))


def test_rt_softirq_from_hardirq_hook_is_not_asked(scenario, run, with_policy):
    """Under PREEMPT_RT a Python policy's softirq_from_hardirq hook is never called."""
    calls = []

    class Policy:
        @hookimpl
        def napikit_softirq_from_hardirq(self, cpu, force_irqthreads, now_ns):
            calls.append(cpu)

    pm = with_policy("spy", Policy)
    run(scenario("seed-rt", policy="spy"), plugins=pm)
    assert calls == []
    run(scenario("seed-rt", policy="spy", kernel=KernelParams(force_irqthreads=True)),
        plugins=pm)
    assert calls, "without PREEMPT_RT the hook is asked"


def test_rt_ipi_kicked_backlog_runs_in_ksoftirqd(scenario, run):
    """SEED-RT, ksoftirqd policy: the RPS IPI's softirq wakes ksoftirqd/1, which polls."""
    result = run(scenario("seed-rt", policy="ksoftirqd"))
    assert result.ksoftirqd_wakeups > 0
    assert result.cpu_time[1].ksoftirqd > 0
    assert result.cpu_time[1].softirq == 0


def test_rt_backlog_threads_never_wake_ksoftirqd(scenario, run):
    """SEED-RT, backlog-threads: the backlog path wakes no ksoftirqd."""
    result = run(scenario("seed-rt", policy="backlog-threads"))
    assert result.ksoftirqd_wakeups == 0
    assert all(t.ksoftirqd == 0 for t in result.cpu_time)


@pytest.mark.parametrize("name", ["softirq-ipi", "ksoftirqd", "backlog-threads"])
def test_rt_softirq_raised_in_a_task_runs_in_that_task(scenario, run, name):
    """PREEMPT_RT, SEED-LO: loopback's NET_RX is raised in the sender's BH section and
    runs at its local_bh_enable, in the sender, never in ksoftirqd."""
    result = run(scenario("seed-lo", policy=name, kernel=RT))
    (sender,) = [t for t in result.tasks if t.kind == "sender"]
    assert sender.softirq_ns > 0
    assert result.ksoftirqd_wakeups == 0


def test_rt_makes_softirq_work_preemptible_by_a_fifo_task(scenario, run):
    """A SCHED_FIFO task on the RPS target waits for softirq work on !RT (irq_exit
    and ksoftirqd run it non-preemptibly); on PREEMPT_RT it preempts it."""
    config = scenario("seed-rps", policy="ksoftirqd")
    config = config.evolve(workloads=config.workloads + (Cyclictest(cpu=1, period_ns=100_000),))
    classic = run(config).cyclictest_latency[0]
    rt = run(config.evolve(kernel=RT)).cyclictest_latency[0]
    assert rt.max_ns < classic.p99_ns


def test_rt_preempted_bh_section_keeps_its_cpu(scenario, run):
    """PREEMPT_RT with hotplug: a CPU goes down only once no task on it is inside a BH
    section (migrate_disable), and no packet is lost."""
    from napikit import CpuHotplug

    config = scenario("seed-rt", policy="ksoftirqd", ncpus=3).evolve(
        hotplug=(CpuHotplug(time_ns=20_000_000, cpu=0, online=False),),
    )
    result = run(config)
    assert result.hotplug[0].done_ns is not None
    assert result.conserved and result.delivered > 0


def test_rt_warns_for_softirqs_raised_from_the_idle_task(scenario, run):
    """PREEMPT_RT with polling idle: an RPS IPI run from the idle loop warns
    (do_softirq_post_smp_call_flush); the classic kernel does not."""
    kernel = KernelParams(idle_poll=True)
    config = scenario("seed-rps", policy="softirq-ipi")
    assert run(config.evolve(kernel=kernel)).rt_idle_softirq_warnings == 0
    rt = run(config.evolve(kernel=KernelParams(idle_poll=True, preempt_rt=True)))
    assert rt.rt_idle_softirq_warnings > 0


def test_rt_implies_forced_irq_threads(run, scenario):
    """PREEMPT_RT force-threads device interrupts: a NIC's handler runs in its thread."""
    config = scenario("perf-a", packets=20_000, kernel=RT)
    result = run(config)
    assert result.cpu_time[0].irq_thread > 0
    assert any(t.kind == "irq_thread" for t in result.tasks)


# ----------------------------------------------------------------- pre-6.5 ksoftirqd


def test_let_ksoftirqd_do_its_job_leaves_softirqs_to_a_runnable_ksoftirqd(scenario, run):
    """Before v6.5 ("softirq: Let ksoftirqd do its job"), once ksoftirqd is runnable,
    interrupt exits leave it the work: on the overloaded CPU 0 of PERF-A at 5 Mpps
    under the ksoftirqd policy, more softirq time moves into ksoftirqd."""
    config = scenario("perf-a-overload", packets=200_000, policy="ksoftirqd")
    since_65 = run(config)
    before_65 = run(config.evolve(kernel=KernelParams(let_ksoftirqd_do_its_job=True)))
    assert before_65.cpu_time[0].ksoftirqd > since_65.cpu_time[0].ksoftirqd
    assert before_65.cpu_time[0].softirq < since_65.cpu_time[0].softirq


def test_let_ksoftirqd_do_its_job_is_off_by_default():
    """The default kernel is the one since v6.5."""
    assert KernelParams().let_ksoftirqd_do_its_job is False
    assert KernelParams().preempt_rt is False
