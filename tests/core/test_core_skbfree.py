"""Deferred skb frees (kernel-model.md B.3.5; KernelParams.udp_skb_defer_free,
skb_defer_max; skb_attempt_defer_free, kick_defer_list_purge, skb_defer_free_flush):
the reader on CPU 1 hands each skb the sender allocated on CPU 0 back to CPU 0's
defer list; net_rx_action there frees it, and at half of skb_defer_max CPU 0 is kicked
(a csd that raises NET_RX, or its backlog thread)."""

from __future__ import annotations

import attrs
import pytest

from napikit import CostModel

N = 20_000


def _seed_lo(scenario, defer_max: int, policy: str = "softirq-ipi", **costs):
    config = scenario("seed-lo", packets=N, policy=policy)
    return config.evolve(
        kernel=attrs.evolve(config.kernel, udp_skb_defer_free=True, skb_defer_max=defer_max),
        costs=attrs.evolve(config.costs, **costs))


def _seed_rps_threads(scenario, defer_max: int, **costs):
    config = _seed_lo(scenario, defer_max, policy="backlog-threads", **costs)
    rps = scenario("seed-rps", packets=N, policy="backlog-threads")
    return rps.evolve(kernel=config.kernel, costs=config.costs)


def test_a_cpu_without_net_rx_is_kicked_every_half_list(run, scenario):
    """SEED-RPS with backlog threads: CPU 0 (the sender's) never runs net_rx_action
    (RPS wakes backlog_napi/1), so its defer list fills and every 32nd deferral
    (skb_defer_max 64 / 2) kicks it: kick_defer_list_purge schedules its backlog and
    wakes backlog_napi/0, whose poll flushes the list. About one kick per 32
    datagrams; no csd (thread mode); the frees are backlog-thread time on CPU 0."""
    on = run(_seed_rps_threads(scenario, 64))
    off = run(_seed_rps_threads(scenario, 0))
    # only these kicks wake backlog_napi/0, and it sleeps again after each flush (the
    # other backlog thread's wake-ups change with the CPU time the frees take)
    kicks = next(t.switches for t in on.tasks if t.name == "backlog_napi/0")
    assert next(t.switches for t in off.tasks if t.name == "backlog_napi/0") == 0
    assert on.delivered > N // 4
    assert on.delivered / 40 < kicks <= on.delivered / 32 + 1
    assert on.defer_ipis == 0
    # each flush frees at least the 32 the kick came at; the thread may be kicked while
    # the sender keeps CPU 0 (EEVDF), and then the list fills up and the reader frees
    # inline on CPU 1
    free_ns = CostModel().skb_free_ns
    frees, rest = divmod(on.cpu_time[0].backlog_thread, free_ns)
    assert rest == 0
    assert 32 * (kicks - 1) <= frees <= on.delivered
    assert off.cpu_time[0].backlog_thread == 0
    assert on.arrived == on.delivered + on.drops.total + on.queued


def test_the_senders_net_rx_action_flushes_its_list(run, scenario):
    """SEED-LO (classic): the sender's CPU runs net_rx_action for every datagram and
    skb_defer_free_flush empties its defer list there, so the list never reaches 32:
    no defer IPI, and CPU 0's softirq time includes the frees (skb_free_ns each) that
    the reader on CPU 1 pays inline when deferral is disabled (skb_defer_max 0)."""
    free_ns = 5_000
    off = run(_seed_lo(scenario, 0, skb_free_ns=free_ns))
    on = run(_seed_lo(scenario, 64, skb_free_ns=free_ns))
    assert on.defer_ipis == 0 and off.defer_ipis == 0
    frees = on.delivered * free_ns
    assert frees <= on.cpu_time[0].softirq - off.cpu_time[0].softirq < 1.1 * frees
    recv_ns = on.config["costs"]["udp_recvmsg_ns"]
    assert on.cpu_time[1].application == on.delivered * recv_ns
    assert off.cpu_time[1].application == off.delivered * (recv_ns + free_ns)


def test_a_list_kicked_at_its_first_skb_sends_csds(run, scenario):
    """skb_defer_max 1: the first deferral after each flush finds defer_count 0 = 1 / 2
    and sends the defer csd (unless one is in flight): trigger_rx_softirq raises NET_RX
    on CPU 0, counted in defer_ipis."""
    result = run(_seed_lo(scenario, 1))
    assert 0 < result.defer_ipis <= result.delivered
    assert result.arrived == result.delivered + result.drops.total + result.queued


def test_defer_max_zero_frees_inline_and_sends_nothing(run, scenario):
    """skb_defer_max 0: every free is inline, no defer IPI."""
    result = run(_seed_lo(scenario, 0))
    assert result.defer_ipis == 0
    assert result.delivered > 0


def test_off_by_default_and_off_changes_nothing(run, scenario):
    """udp_skb_defer_free is off by default (6.12's UDP): no defer IPI, and
    skb_defer_max then does not matter."""
    config = scenario("seed-lo", packets=5_000)
    assert config.kernel.udp_skb_defer_free is False
    base = run(config)
    assert base.defer_ipis == 0
    other = run(config.evolve(kernel=attrs.evolve(config.kernel, skb_defer_max=0)))
    assert attrs.evolve(other, config=base.config, fingerprint=base.fingerprint) == base


def test_backlog_threads_kick_the_thread_not_an_ipi(run, scenario):
    """With backlog threads kick_defer_list_purge schedules CPU 0's backlog NAPI,
    waking backlog_napi/0, instead of sending the csd."""
    on = run(_seed_rps_threads(scenario, 64))
    off = run(_seed_rps_threads(scenario, 0))
    assert on.defer_ipis == 0
    assert on.backlog_thread_wakeups > off.backlog_thread_wakeups + on.delivered // 64


@pytest.mark.parametrize("policy", ["softirq-ipi", "ksoftirqd", "backlog-threads"])
def test_deferred_packets_are_conserved(run, scenario, policy):
    """Every packet is delivered, dropped with a reason or still queued (a defer list
    counts as queued until its flush)."""
    result = run(_seed_lo(scenario, 64, policy=policy))
    assert result.arrived == result.delivered + result.drops.total + result.queued
