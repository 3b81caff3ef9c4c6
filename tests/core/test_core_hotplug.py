"""CPU hotplug (kernel-model.md A.2.10, B.5.4): ``dev_cpu_dead`` re-injection, smpboot
parking, tasks and interrupts leaving a dead CPU, RPS skipping it, and the invariants
over fuzzed hotplug sequences for every policy."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from napikit import Config, CostModel, CpuHotplug, LoopbackUdp, NicIrq

#: A NIC on CPU 0 steering everything to CPU 1, whose receive path is slow: CPU 1's
#: backlog sits at netdev_max_backlog, so taking it down re-injects a full backlog.
FULL_BACKLOG = Config(
    ncpus=3,
    workloads=(NicIrq(cpu=0, rate_pps=1_000_000, arrival="constant", flows=64,
                      rps_cpus=(1,)),),
    costs=CostModel(protocol_rx_ns=2_000),
    packets=20_000,
    hotplug=(CpuHotplug(time_ns=5_000_000, cpu=1, online=False),),
)


def _hotplugged(configs, policy, data):
    return data.draw(configs(policy, hotplug=True, max_packets=8_000))


# ----------------------------------------------------------------- fuzzed sequences


@given(data=st.data())
def test_hotplug_sequences_lose_no_packet(configs, policy, run, data):
    """Across any hotplug sequence, every packet is delivered, dropped or queued."""
    assert run(_hotplugged(configs, policy, data)).conserved


@given(data=st.data())
def test_hotplug_runs_drain_with_no_backlog_left_scheduled(configs, policy, run, data):
    """A run with hotplug still drains: nothing queued, no online backlog scheduled."""
    result = run(_hotplugged(configs, policy, data))
    assert result.quiescent
    assert result.queued == 0 and result.unpolled_backlogs == 0


@given(data=st.data())
def test_hotplug_runs_are_deterministic(configs, policy, run, data):
    """Same configuration with hotplug, byte-identical JSON."""
    config = _hotplugged(configs, policy, data)
    assert run(config).to_json() == run(config).to_json()


@given(data=st.data())
def test_hotplug_requests_complete_in_order(configs, policy, run, data):
    """Requests run one at a time: each completes no earlier than it was asked for,
    and after the one before it."""
    records = run(_hotplugged(configs, policy, data)).hotplug
    done = [h.done_ns for h in records]
    assert None not in done
    assert all(h.done_ns >= h.requested_ns for h in records)
    assert done == sorted(done)


@given(data=st.data())
def test_online_cpus_follow_the_requests(configs, policy, run, data):
    """At the end, the online CPUs are those the requests left online."""
    config = _hotplugged(configs, policy, data)
    online = set(range(config.ncpus)) - set(config.offline_cpus)
    for h in config.hotplug_sequence:
        (online.add if h.online else online.discard)(h.cpu)
    assert set(run(config).online_cpus) == online


@given(data=st.data())
def test_per_cpu_threads_run_exactly_on_online_cpus(configs, policy, run, data):
    """smpboot: each CPU ever online has its ksoftirqd (and backlog_napi, with
    backlog threads), parked while the CPU is offline; a CPU never online has none."""
    config = _hotplugged(configs, policy, data)
    result = run(config)
    ever = set(range(config.ncpus)) - set(config.offline_cpus)
    ever |= {h.cpu for h in config.hotplug if h.online}
    kinds = {t.kind for t in result.tasks} & {"ksoftirqd", "backlog_napi"}
    assert "ksoftirqd" in kinds
    for kind in kinds:
        threads = result.threads(kind)
        assert set(threads) == ever
        assert {cpu for cpu, state in threads.items() if state != "parked"} == set(
            result.online_cpus)


# ----------------------------------------------------------------- dev_cpu_dead


def test_cpu_with_a_full_backlog_goes_offline_losing_no_packet(policy, run):
    """Taking a CPU with a full backlog offline loses nothing, under every policy."""
    result = run(FULL_BACKLOG.evolve(**policy))
    assert result.hotplug[0].done_ns is not None
    assert result.reinjected == result.hotplug[0].reinjected
    assert result.conserved and result.queued == 0


@pytest.mark.parametrize("name", ["softirq-ipi", "ksoftirqd"])
def test_full_backlog_taken_offline_is_reinjected(run, name):
    """With softirq polling, the dead CPU's full backlog is re-injected by dev_cpu_dead."""
    result = run(FULL_BACKLOG.evolve(policy=name))
    assert result.hotplug[0].reinjected > FULL_BACKLOG.kernel.netdev_max_backlog // 2
    assert result.conserved


def test_backlog_thread_drains_its_backlog_before_it_parks(run):
    """backlog-threads: kthread_park waits for napi_threaded_poll_loop to return, and
    the loop drains the backlog, so under load the CPU goes down only once input
    stops, with (almost) nothing left to re-inject."""
    result = run(FULL_BACKLOG.evolve(policy="backlog-threads"))
    (record,) = result.hotplug
    assert record.done_ns >= result.input_duration_ns > record.requested_ns
    assert record.reinjected < FULL_BACKLOG.kernel.netdev_max_backlog // 2


@pytest.mark.parametrize("name", ["softirq-ipi", "ksoftirqd"])
def test_reinjected_packets_are_processed_elsewhere(run, name):
    """After CPU 1 dies, RPS no longer picks it: its flows go to the netif_rx CPU."""
    result = run(FULL_BACKLOG.evolve(policy=name))
    assert 1 not in result.online_cpus
    assert result.softnet[0].processed > 0
    assert not result.softnet[1].online


def test_offline_cpu_is_left_out_of_softnet_stat(policy, run):
    """``/proc/net/softnet_stat`` lists online CPUs only."""
    result = run(FULL_BACKLOG.evolve(**policy))
    cpus = [int(line.split()[12], 16) for line in result.softnet_stat().splitlines()]
    assert cpus == [0, 2]


def test_offline_time_is_accounted(policy, run):
    """The dead CPU's time after it went down is ``offline``, not idle."""
    result = run(FULL_BACKLOG.evolve(**policy))
    (record,) = result.hotplug
    assert result.cpu_time[1].offline == result.sim_time_ns - record.done_ns
    assert result.cpu_time[0].offline == 0


def test_dev_cpu_dead_work_is_charged_to_the_surviving_cpu(policy, run):
    """Re-injection costs ``netif_rx_ns`` per packet on the CPU running dev_cpu_dead."""
    result = run(FULL_BACKLOG.evolve(**policy))
    assert result.cpu_time[0].cpuhp >= (
        result.hotplug[0].reinjected * FULL_BACKLOG.costs.netif_rx_ns)
    assert result.cpu_time[2].cpuhp == 0


# ----------------------------------------------------------------- tasks and interrupts


def test_task_pinned_to_a_dead_cpu_moves_to_the_lowest_online_cpu(policy, run):
    """select_fallback_rq: the sender and receiver on CPU 2 move to CPU 0 and go on."""
    config = Config(
        ncpus=3,
        workloads=(LoopbackUdp(senders=(2,), receivers=(2,)),),
        packets=20_000,
        hotplug=(CpuHotplug(time_ns=2_000_000, cpu=2, online=False),),
        **policy,
    )
    result = run(config)
    moved = {t.name: t.cpu for t in result.tasks if t.kind in ("sender", "receiver")}
    assert set(moved.values()) == {0}
    # sharing CPU 0 the reader (and, without the fast path, the backlog thread) does not
    # preempt the sender for every datagram (EEVDF), so some overflow; nothing is left
    assert result.delivered + result.drops.total == config.packets and result.queued == 0
    # 2 ms of traffic came before the move: the reader went on reading on CPU 0
    assert result.delivered > config.packets // 4
    assert result.softnet[0].processed > 0 and result.softnet[2].processed > 0


def test_nic_interrupt_moves_off_a_dead_cpu(policy, run):
    """The NIC's interrupt leaves CPU 1 when it dies and arrives at CPU 0 since."""
    config = Config(
        ncpus=2,
        workloads=(NicIrq(cpu=1, rate_pps=200_000),),
        packets=4_000,
        hotplug=(CpuHotplug(time_ns=5_000_000, cpu=1, online=False),),
        **policy,
    )
    result = run(config)
    assert result.softnet[1].processed > 0 and result.softnet[0].processed > 0
    assert result.delivered == config.packets


def test_cpu_not_present_at_start_can_be_added(policy, run):
    """A CPU offline from the start joins RPS once it comes up, with its threads."""
    config = Config(
        ncpus=3,
        workloads=(NicIrq(cpu=0, rate_pps=500_000, flows=256, rps_cpus=(1, 2)),),
        offline_cpus=(2,),
        packets=20_000,
        hotplug=(CpuHotplug(time_ns=10_000_000, cpu=2, online=True),),
        **policy,
    )
    before = run(config.evolve(hotplug=()))
    after = run(config)
    assert before.softnet[2].processed == 0 and 2 not in before.threads("ksoftirqd")
    assert after.softnet[2].processed > 0 and after.threads("ksoftirqd")[2] != "parked"


def test_rps_never_picks_an_offline_cpu(policy, run):
    """get_rps_cpu skips an offline CPU of the mask (the packet stays local)."""
    config = Config(
        ncpus=3,
        workloads=(NicIrq(cpu=0, rate_pps=300_000, flows=256, rps_cpus=(1, 2)),),
        offline_cpus=(1,),
        packets=10_000,
        **policy,
    )
    result = run(config)
    assert result.softnet[1].processed == 0 and result.softnet[1].dropped == 0
    assert result.softnet[2].processed > 0 and result.softnet[0].processed > 0


# ----------------------------------------------------------------- smpboot


def test_backlog_threads_are_parked_and_unparked(run):
    """backlog-threads: backlog_napi/1 is parked while CPU 1 is down, and runs again
    (polling RPS work) once it is back."""
    down = FULL_BACKLOG.evolve(policy="backlog-threads", workloads=(
        NicIrq(cpu=0, rate_pps=300_000, arrival="constant", flows=64, rps_cpus=(1,)),))
    back = down.evolve(hotplug=down.hotplug + (CpuHotplug(time_ns=10_000_000, cpu=1,
                                                          online=True),))
    assert run(down).threads("backlog_napi")[1] == "parked"
    result = run(back)
    assert result.threads("backlog_napi")[1] != "parked"
    assert result.softnet[1].processed > run(down).softnet[1].processed


@pytest.mark.parametrize("online", [True, False])
def test_hotplug_request_after_the_run_does_not_run(run, online):
    """A request due after the run has drained is reported as not done."""
    config = Config(
        ncpus=2,
        packets=2_000,
        offline_cpus=(1,) if online else (),
        workloads=(LoopbackUdp(senders=(0,), receivers=(0,)),),
        hotplug=(CpuHotplug(time_ns=10**12, cpu=1, online=online),),
    )
    (record,) = run(config).hotplug
    assert record.done_ns is None
