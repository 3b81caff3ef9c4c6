"""Preemption models (KernelParams.preempt; PREEMPT_DYNAMIC's preempt=none|voluntary|full,
kernel-model.md B.10.5): need_resched is set by the wake-up in every model, but under
none and voluntary a task in kernel code is switched out only at its return to user
space, when it blocks, at cond_resched() and (voluntary) at might_resched() points."""

from __future__ import annotations

import attrs
import pytest

from napikit import Config, CostModel, Cyclictest, KernelParams, LoopbackUdp

PERIOD = 777_777  # prime to the sender's loop, so the timer hits every phase of it


def _cyclictest_on_the_senders_cpu(preempt: str, **costs: int) -> Config:
    """A closed-loop sender on CPU 0 with a SCHED_FIFO 95 cyclictest on CPU 0 too: every
    hrtimer wake-up finds the sender running (receiver on CPU 1)."""
    return Config(
        ncpus=2, packets=100,
        workloads=[LoopbackUdp(senders=[0], receivers=[1]),
                   Cyclictest(cpu=0, period_ns=PERIOD, work_ns=1_000)],
        kernel=KernelParams(preempt=preempt),
        costs=CostModel(**costs),
    )


def test_a_wakeup_during_a_long_sendmsg_is_served_at_once_only_under_full(run):
    """udp_sendmsg of 1 ms: under full the timer's wake-up preempts the sender in its
    system call at once (hrtimer IRQ plus a switch); under none it waits until the
    sender returns to user space, at the end of its sendmsg step, so the latency is the
    rest of that step (up to 1 ms plus the short transmit)."""
    full = run(_cyclictest_on_the_senders_cpu("full", udp_sendmsg_ns=1_000_000))
    none = run(_cyclictest_on_the_senders_cpu("none", udp_sendmsg_ns=1_000_000))
    lf, ln = full.cyclictest_latency[0], none.cyclictest_latency[0]
    assert lf.count > 50 and ln.count > 50
    assert lf.max_ns < 10_000
    assert ln.mean_ns > 200_000 and ln.max_ns > 800_000
    assert ln.max_ns < 1_000_000 + 20_000  # never beyond the step's end (+ transmit)
    # the wake-up preempts the sender either way: involuntary switches in both
    assert full.involuntary_switches > 0 and none.involuntary_switches > 0


def test_voluntary_also_switches_at_might_resched_in_sendmsg(run):
    """udp_sendmsg and the BH-disabled transmit 1 ms each: voluntary switches at the
    sender's skb allocation (might_resched, the end of its sendmsg step), none only at
    the end of the system call, one transmit later: none's mean latency is higher by
    about half the transmit; full's (only the BH section delays it) is lowest."""
    costs = {"udp_sendmsg_ns": 1_000_000, "netif_rx_ns": 1_000_000}
    lat = {m: run(_cyclictest_on_the_senders_cpu(m, **costs)).cyclictest_latency[0]
           for m in ("none", "voluntary", "full")}
    assert lat["full"].mean_ns + 200_000 < lat["voluntary"].mean_ns
    assert lat["voluntary"].mean_ns + 200_000 < lat["none"].mean_ns


def test_a_task_in_user_code_is_preempted_at_once_in_every_model(run):
    """cyclictest's work loop is user code: a higher-priority cyclictest on its CPU
    preempts it at once under none as under full (the interrupt's return to user space,
    exit_to_user_mode_loop)."""
    def config(preempt):
        return Config(
            ncpus=2, packets=2_000,
            workloads=[LoopbackUdp(senders=[1], receivers=[1]),
                       Cyclictest(cpu=0, period_ns=1_000_000, priority=50, work_ns=900_000),
                       Cyclictest(cpu=0, period_ns=PERIOD, priority=95, work_ns=1_000)],
            kernel=KernelParams(preempt=preempt))
    full, none = run(config("full")), run(config("none"))
    assert full.cyclictest_latency[1].count > 0
    assert none.cyclictest_latency[1] == full.cyclictest_latency[1]
    assert none.cyclictest_latency[1].max_ns < 10_000


@pytest.mark.parametrize("policy", ["ksoftirqd", "backlog-threads"])
def test_kthread_wakeup_latency_rises_under_none(run, scenario, policy):
    """SEED-RPS with a long udp_recvmsg (50 us) and the sender paced at 25 kpps, a
    little more than the reader takes, so that it is always in its system call when a
    datagram comes: the thread that polls CPU 1's backlog (ksoftirqd/1 woken by the RPS
    IPI's softirq under threaded IRQs, backlog_napi/1 woken from CPU 0) preempts it there
    under full, but waits for its return to user space under none: packets wait longer
    from netif_rx to protocol receive. (Closed-loop, CPU 1 is so overloaded that under
    EEVDF a thread preempting for every packet is what makes packets wait.)"""
    base = scenario("seed-rps", packets=5_000, policy=policy)
    base = base.evolve(workloads=[attrs.evolve(base.workloads[0], rate_pps=25_000)],
                       costs=attrs.evolve(base.costs, udp_recvmsg_ns=50_000),
                       kernel=attrs.evolve(base.kernel, force_irqthreads=policy == "ksoftirqd"))
    full = run(base)
    none = run(base.evolve(kernel=attrs.evolve(base.kernel, preempt="none")))
    assert none.latency_enqueue.p50_ns > full.latency_enqueue.p50_ns + 5_000
    assert none.latency_enqueue.mean_ns > full.latency_enqueue.mean_ns
    # the receiver is switched out only where it would have yielded anyway
    assert none.involuntary_switches < full.involuntary_switches


def test_full_is_the_default(run, scenario, policy):
    """preempt="full" set explicitly changes nothing: the default is today's model."""
    config = scenario("seed-rps-spread", packets=5_000, **policy)
    explicit = config.evolve(kernel=attrs.evolve(config.kernel, preempt="full"))
    assert run(config) == run(explicit)
