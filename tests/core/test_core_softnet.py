"""softnet_data mechanisms (kernel-model.md A.2.1-A.2.5, B.2-B.4, B.8): the backlog
limit, flow limit, scheduling only on an empty queue, RPS IPIs, and softnet_stat."""

from __future__ import annotations

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from napikit import Action, Config, CostModel, KernelParams, LoopbackUdp, NicIrq, hookimpl
from napikit.testing.profiles import examples

#: Default costs but a 2 us protocol receive: CPU 1 saturates at 500 kpps while the
#: interrupted CPU 0 (0.4 us per packet) stays far from interrupt livelock.
SLOW_RX = CostModel(protocol_rx_ns=2_000)


def _steered(rate_pps: float = 1_000_000, **kernel) -> Config:
    """A NIC on CPU 0 whose RPS mask steers every packet to CPU 1."""
    return Config(ncpus=2, costs=SLOW_RX, packets=40_000, kernel=KernelParams(**kernel),
                  workloads=[NicIrq(cpu=0, rate_pps=rate_pps, flows=1, rps_cpus=[1])])


# ----------------------------------------------------------------- backlog limit


@settings(max_examples=examples(30))
@given(max_backlog=st.integers(1, 200), cut_after=st.integers(2_000, 20_000),
       policy=st.sampled_from([("softirq-ipi", {}), ("ksoftirqd", {}), ("backlog-threads", {}),
                               ("backlog-threads", {"fast_path": False})]))
def test_input_queue_never_exceeds_max_backlog_plus_one(run, max_backlog, cut_after, policy):
    """Cut anywhere in an overload, input_pkt_queue holds at most netdev_max_backlog + 1
    (the check is qlen > max), and process_queue no more than one splice of it."""
    config = _steered(netdev_max_backlog=max_backlog).evolve(
        packets=cut_after, drain_ns=0, policy=policy[0], policy_options=policy[1])
    result = run(config)
    for row in result.softnet:
        assert row.input_qlen <= max_backlog + 1
        assert row.process_qlen <= max_backlog + 1


def test_overloaded_backlog_drops_are_charged_to_the_target(run):
    """Backlog-full drops count in the target CPU's softnet ``dropped``, not the
    enqueueing CPU's."""
    result = run(_steered(netdev_max_backlog=16))
    assert result.drops.backlog > 0
    assert result.softnet[1].dropped == result.drops.backlog
    assert result.softnet[0].dropped == 0


def test_smaller_backlog_drops_more(run):
    """Under the same overload a smaller netdev_max_backlog drops more packets."""
    small = run(_steered(netdev_max_backlog=8))
    large = run(_steered(netdev_max_backlog=1000))
    assert small.drops.backlog > large.drops.backlog


def test_backlog_below_capacity_drops_nothing(run):
    """Well below CPU 1's capacity nothing drops, whatever the backlog size."""
    result = run(_steered(rate_pps=100_000, netdev_max_backlog=4).evolve(
        workloads=[NicIrq(cpu=0, rate_pps=100_000, arrival="constant", rps_cpus=[1])]))
    assert result.drops.total == 0


# ----------------------------------------------------------------- flow limit


def test_flow_limit_drops_only_when_enabled_on_the_enqueueing_cpu(run):
    """A heavy flow is flow-limited when CPU 0 (netif_rx) has a table, not when only
    the target CPU 1 has one, nor when none has."""
    off = run(_steered())
    on_target = run(_steered(flow_limit_cpu_bitmap=[1]))
    on_source = run(_steered(flow_limit_cpu_bitmap=[0]))
    assert off.drops.flow_limit == 0 and on_target.drops.flow_limit == 0
    assert on_source.drops.flow_limit > 0


def test_flow_limit_counts_on_the_enqueueing_cpu_and_drops_on_the_target(run):
    """flow_limit_count rises on the CPU whose table decided; the drop is charged to the
    target's ``dropped``."""
    result = run(_steered(flow_limit_cpu_bitmap=[0]))
    assert result.softnet[0].flow_limit_count == result.drops.flow_limit > 0
    assert result.softnet[1].flow_limit_count == 0
    assert result.softnet[1].dropped == result.drops.flow_limit + result.drops.backlog


def test_flow_limit_spares_flows_below_half_the_history(run):
    """1024 uniform flows never hold more than half the recent history: no flow-limit
    drops even with the table on and the backlog overflowing."""
    config = _steered(flow_limit_cpu_bitmap=[0]).evolve(
        workloads=[NicIrq(cpu=0, rate_pps=1_000_000, flows=1024, rps_cpus=[1])])
    result = run(config)
    assert result.drops.backlog > 0 and result.drops.flow_limit == 0


def test_flow_limit_needs_a_half_full_backlog(run):
    """Below half of netdev_max_backlog the flow limit never looks at a packet."""
    config = Config(ncpus=2, packets=20_000, kernel=KernelParams(flow_limit_cpu_bitmap=[0]),
                    workloads=[NicIrq(cpu=0, rate_pps=100_000, flows=1, rps_cpus=[1])])
    assert run(config).drops.flow_limit == 0


# ----------------------------------------------------------------- scheduling the backlog


class Counter:
    """softirq-ipi in Python, counting its backlog-schedule decisions."""

    def __init__(self):
        self.calls = 0

    @hookimpl
    def napikit_backlog_schedule(self, this_cpu, target_cpu, now_ns):
        self.calls += 1
        return Action.SOFTIRQ if this_cpu == target_cpu else Action.IPI


def test_backlog_is_scheduled_once_per_packet_when_it_always_empties(run, with_policy):
    """Packets 10 us apart each find an empty queue with SCHED clear: one scheduling
    decision per packet."""
    counter = Counter()
    config = Config(ncpus=2, packets=3_000, policy="counter",
                    workloads=[NicIrq(cpu=0, rate_pps=100_000, arrival="constant",
                                      rps_cpus=[1])])
    result = run(config, plugins=with_policy("counter", lambda: counter))
    assert counter.calls == result.arrived


def test_busy_backlog_is_not_rescheduled_per_packet(run, with_policy):
    """While a backlog is scheduled (SCHED set) arrivals do not schedule it again:
    under overload decisions are far fewer than packets."""
    counter = Counter()
    result = run(_steered().evolve(policy="counter"),
                 plugins=with_policy("counter", lambda: counter))
    assert 0 < counter.calls < result.arrived / 100


# ----------------------------------------------------------------- RPS IPIs


@pytest.mark.parametrize("policy_name", ["softirq-ipi", "ksoftirqd"])
def test_rps_ipis_are_received_by_remote_targets(run, scenario, policy_name):
    """Under an IPI policy every RPS IPI is received on a remote target
    (``received_rps``), never on the CPU that sent it."""
    result = run(scenario("perf-a", packets=50_000, policy=policy_name))
    assert result.ipis > 0
    assert sum(r.received_rps for r in result.softnet) == result.ipis
    assert result.softnet[0].received_rps == 0


def test_backlog_threads_kick_remote_targets_without_ipis(run, scenario):
    """backlog-threads on cross-CPU RPS wakes threads: no IPI, no received_rps."""
    result = run(scenario("perf-a", packets=50_000, policy="backlog-threads"))
    assert result.ipis == 0
    assert all(r.received_rps == 0 for r in result.softnet)
    assert result.thread_kicks > 0
    assert 0 < result.backlog_thread_wakeups <= result.thread_kicks


def test_rps_ipi_batches_packets_under_load(run, scenario):
    """A remote backlog woken by one IPI processes several packets when busy: fewer
    IPIs than remotely processed packets."""
    result = run(scenario("perf-a", packets=50_000))
    remote = sum(r.processed for r in result.softnet[1:])
    assert result.ipis < remote


def test_local_target_needs_no_ipi(run):
    """RPS steering to the interrupted CPU itself sends no IPI."""
    config = Config(ncpus=2, packets=10_000,
                    workloads=[NicIrq(cpu=0, rate_pps=500_000, rps_cpus=[0])])
    result = run(config)
    assert result.ipis == 0 and result.softnet[0].processed == result.delivered


def test_loopback_with_rps_off_processes_on_the_sender(run):
    """Loopback with RPS off queues on the sending CPU (loopback_xmit -> __netif_rx)."""
    config = Config(ncpus=4, packets=10_000,
                    workloads=[LoopbackUdp(senders=[2], receivers=[3])])
    result = run(config)
    assert result.softnet[2].processed == result.arrived
    assert sum(r.processed for r in result.softnet) == result.arrived


# ----------------------------------------------------------------- softnet_stat


def test_softnet_stat_has_one_line_of_fifteen_hex_fields_per_cpu(run, scenario):
    """softnet_stat: one row per CPU, 15 eight-digit hex fields each."""
    result = run(scenario("perf-a-overload", packets=20_000, drain_ns=0))
    lines = result.softnet_stat().splitlines()
    assert len(lines) == len(result.softnet) == 4
    for line in lines:
        fields = line.split(" ")
        assert len(fields) == 15
        assert all(len(f) == 8 and int(f, 16) >= 0 for f in fields)


def test_softnet_stat_columns_match_the_counters(run, scenario):
    """Columns 1, 2, 3, 10, 11 are processed, dropped, time_squeeze, received_rps,
    flow_limit_count; 12 the backlog length (13 + 14 ...); 13 the CPU; 4-9 zero."""
    result = run(scenario("perf-a-overload", packets=20_000, drain_ns=0))
    for row, line in zip(result.softnet, result.softnet_stat().splitlines(), strict=True):
        f = [int(x, 16) for x in line.split()]
        assert f[0] == row.processed
        assert f[1] == row.dropped
        assert f[2] == row.time_squeeze
        assert f[3:9] == [0] * 6
        assert f[9] == row.received_rps
        assert f[10] == row.flow_limit_count
        assert f[11] == f[13] + f[14] == row.input_qlen + row.process_qlen
        assert f[12] == row.cpu
        assert (f[13], f[14]) == (row.input_qlen, row.process_qlen)


def test_softnet_stat_processed_sums_to_processed_packets(run, scenario):
    """The processed column of all CPUs adds up to the packets the backlogs processed."""
    result = run(scenario("perf-a", packets=20_000))
    column = sum(int(line.split()[0], 16) for line in result.softnet_stat().splitlines())
    assert column == result.delivered == result.latency_enqueue.count


def test_processed_counts_every_packet_on_its_cpu(run, scenario):
    """PERF-A: the per-CPU processed counts sum to the delivered packets."""
    result = run(scenario("perf-a", packets=20_000))
    assert sum(r.processed for r in result.softnet) == result.delivered


def test_no_squeeze_or_drops_in_softnet_stat_at_light_load(run):
    """At light load every softnet counter but processed stays zero."""
    config = Config(ncpus=2, packets=5_000,
                    workloads=[NicIrq(cpu=0, rate_pps=50_000, rps_cpus=[0, 1])])
    for row in run(config).softnet:
        assert (row.dropped, row.time_squeeze, row.flow_limit_count) == (0, 0, 0)
        assert row.backlog_len == 0


def test_dev_weight_bias_scales_the_quota(run):
    """dev_rx_weight = dev_weight * bias: with weight 4 a lone saturated backlog never
    spends a budget of 16 in one pass; with bias 8 (quota 32) it does (time_squeeze)."""
    base = _steered(dev_weight=4, netdev_budget=16)
    plain = run(base)
    biased = run(base.evolve(kernel=attrs.evolve(base.kernel, dev_weight_rx_bias=8)))
    assert plain.softnet[1].time_squeeze == 0
    assert biased.softnet[1].time_squeeze > 0


@pytest.mark.parametrize(("max_backlog", "drops"), [(10, 9), (18, 1), (19, 0), (20, 0)])
def test_backlog_drops_only_above_netdev_max_backlog(run, max_backlog, drops):
    """A burst of 20 packets into CPU 1's empty backlog, all queued before CPU 1 polls
    (the IPI leaves when CPU 0's net_rx_action ends): enqueue_to_backlog drops when the
    queue already holds more than netdev_max_backlog, so it holds max + 1."""
    config = Config(ncpus=2, packets=20, drain_ns=10**8,
                    kernel=KernelParams(netdev_max_backlog=max_backlog),
                    workloads=[NicIrq(cpu=0, rate_pps=1000, arrival="bursty", burst=20,
                                      flows=1, rps_cpus=(1,))])
    result = run(config)
    assert (result.drops.backlog, result.delivered) == (drops, 20 - drops)
