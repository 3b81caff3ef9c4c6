"""cpuidle states (kernel-model.md B.10.1-B.10.2): a CPU idling in a polling state has
TIF_POLLING_NRFLAG set, so an RPS kick (``smp_call_function_single_async`` ->
``set_nr_if_polling``) or a remote wake-up sends it no interrupt; a halted CPU is
interrupted and takes ``idle_exit_latency_ns`` to resume."""

from __future__ import annotations

from typing import Any

import attrs

import napikit
from napikit import Config, KernelParams, NicIrq, scenarios
from napikit._core import Sim


def _raw(config: Config) -> dict[str, Any]:
    """The core's raw counters of one run."""
    sim = Sim(config, napikit.Simulation(config).decision)
    assert sim.run() is None
    return sim.raw_results()


def _kernel(config: Config, **kernel) -> Config:
    return config.evolve(kernel=attrs.evolve(config.kernel, **kernel))


def _lone_rps(packets: int = 1, rate_pps: float = 100_000, **kernel) -> Config:
    """PERF-A's costs; ``packets`` packets of one flow, one every 1e9 / rate_pps ns,
    arriving on CPU 0 and steered to idle CPU 1."""
    base = scenarios.get("perf-a").config
    nic = NicIrq(cpu=0, rate_pps=rate_pps, arrival="constant", flows=1, rps_cpus=(1,))
    return base.evolve(workloads=(nic,), packets=packets, kernel=KernelParams(**kernel))


def test_polling_idle_takes_kicks_without_ipis():
    """SEED-RPS with its sender paced at 50 kpps, so that CPU 1 idles between datagrams
    (the closed-loop SEED-RPS keeps it busy, and a busy CPU needs an IPI): with
    cpuidle="poll" every RPS kick is a polled kick and none an IPI, as many kicks as
    "halt" sends IPIs, each reaching the backlog (received_rps); each datagram saves
    the IPI's latency and handler and three quarters of its send cost."""
    base = scenarios.get("seed-rps").config
    paced = base.evolve(packets=5_000,
                        workloads=(attrs.evolve(base.workloads[0], rate_pps=50_000),))
    halt = _raw(paced)
    poll = _raw(_kernel(paced, cpuidle="poll"))
    assert halt["ipis"] > 0 and halt["polled_kicks"] == 0
    assert halt["ipis"] == sum(row["received_rps"] for row in halt["softnet"])
    assert poll["ipis"] == 0 and poll["polled_kicks"] == halt["ipis"]
    assert poll["polled_kicks"] == sum(row["received_rps"] for row in poll["softnet"])
    assert poll["delivered"] == halt["delivered"] == 5_000
    c = base.costs
    saved = c.ipi_send_ns - c.ipi_send_ns // 4 + c.ipi_latency_ns + c.ipi_handler_ns
    assert (halt["latency_send_recv"]["mean_ns"] - poll["latency_send_recv"]["mean_ns"]
            == saved)


def test_polled_kick_costs_no_ipi_latency():
    """A lone packet kicked to a polling CPU is done netif_rx (100) + a quarter of
    ipi_send (50) + protocol_rx (1000) after it arrived: no ipi_latency, no hard-IRQ
    entry on the target."""
    c = scenarios.get("perf-a").config.costs
    result = napikit.Simulation(_lone_rps(cpuidle="poll")).run()
    assert result.ipis == 0
    assert result.latency_enqueue.max_ns == c.netif_rx_ns + c.ipi_send_ns // 4 + c.protocol_rx_ns


def test_halted_cpu_adds_its_exit_latency_per_wake_from_idle():
    """Packets 50 us apart each find CPU 1 halted: with idle_exit_latency_ns = 7000 each
    takes exactly 7000 ns more than with 0 (every kick wakes it from idle)."""
    fast = napikit.Simulation(_lone_rps(packets=20, rate_pps=20_000)).run()
    slow = napikit.Simulation(_lone_rps(packets=20, rate_pps=20_000,
                                        idle_exit_latency_ns=7_000)).run()
    assert fast.ipis == slow.ipis == 20
    assert slow.latency_enqueue.mean_ns == fast.latency_enqueue.mean_ns + 7_000
    assert slow.latency_enqueue.max_ns == fast.latency_enqueue.max_ns + 7_000


def test_haltpoll_polls_then_halts():
    """haltpoll with an 8 us window, packets every 10 us: the first kick (10 us) finds
    CPU 1 idle since boot, past the window: halted, an IPI. CPU 1 is then busy until
    13.1 us (100 + 200 + 1500 + 300 + 1000 ns after the arrival), so the second kick
    (20 us) comes 6.9 us into its idleness, within the window: polled, no IPI."""
    raw = _raw(_lone_rps(packets=2, cpuidle="haltpoll", haltpoll_ns=8_000))
    assert raw["ipis"] == 1 and raw["polled_kicks"] == 1
    wide = _raw(_lone_rps(packets=2, cpuidle="haltpoll", haltpoll_ns=20_000))
    assert wide["ipis"] == 0 and wide["polled_kicks"] == 2
    narrow = _raw(_lone_rps(packets=2, cpuidle="haltpoll", haltpoll_ns=5_000))
    assert narrow["ipis"] == 2 and narrow["polled_kicks"] == 0


def _costs(config: Config, **costs: int) -> Config:
    return config.evolve(costs=attrs.evolve(config.costs, **costs))


def test_a_cpu_polls_for_idle_entry_ns_before_it_halts():
    """The default halt with an 8 us idle-entry window (do_idle with TIF_POLLING_NRFLAG
    before the halt) gives the kicks of haltpoll with an 8 us window: the first kick
    (CPU 1 idle since boot) is an IPI, the second, 6.9 us into its idleness, polled;
    under haltpoll the window adds to guest_halt_poll_ns."""
    entry = _raw(_costs(_lone_rps(packets=2), idle_entry_ns=8_000))
    assert entry["ipis"] == 1 and entry["polled_kicks"] == 1
    none = _raw(_lone_rps(packets=2))
    assert none["ipis"] == 2 and none["polled_kicks"] == 0
    both = _raw(_costs(_lone_rps(packets=2, cpuidle="haltpoll", haltpoll_ns=5_000),
                       idle_entry_ns=3_000))
    assert both["ipis"] == 1 and both["polled_kicks"] == 1


def test_leaving_a_polling_idle_loop_delays_a_polled_kick():
    """A lone packet kicked to a polling CPU takes idle_exit_poll_ns more (do_idle's
    exit, tick_nohz_idle_exit, before flush_smp_call_function_queue runs the csd)."""
    c = scenarios.get("perf-a").config.costs
    result = napikit.Simulation(_costs(_lone_rps(cpuidle="poll"), idle_exit_poll_ns=700)).run()
    assert result.ipis == 0
    assert result.latency_enqueue.max_ns == (c.netif_rx_ns + c.ipi_send_ns // 4 + 700
                                             + c.protocol_rx_ns)


def test_leaving_a_polling_idle_loop_delays_a_polled_wake_up():
    """SEED-LO paced at 20 kpps with CPU 1 polling: every datagram wakes the sleeping
    reader with no interrupt, and each send-to-receive latency grows by exactly
    idle_exit_poll_ns."""
    base = _kernel(scenarios.get("seed-lo").config.evolve(packets=200), cpuidle="poll")
    base = base.evolve(workloads=(attrs.evolve(base.workloads[0], rate_pps=20_000),))
    fast = napikit.Simulation(base).run()
    slow = napikit.Simulation(_costs(base, idle_exit_poll_ns=900)).run()
    assert fast.wakeup_ipis == slow.wakeup_ipis == 0
    assert slow.latency_send_recv.mean_ns == fast.latency_send_recv.mean_ns + 900
    assert slow.latency_send_recv.max_ns == fast.latency_send_recv.max_ns + 900


def test_remote_wakeup_of_a_polling_cpu_needs_no_interrupt():
    """A reader on an idle polling CPU is woken without wakeup_latency_ns: SEED-LO's
    send-to-receive latency drops by it, at least for the first datagram's wake-up."""
    seed_lo = scenarios.get("seed-lo").config.evolve(packets=2_000)
    halt = napikit.Simulation(seed_lo).run()
    poll = napikit.Simulation(_kernel(seed_lo, cpuidle="poll")).run()
    assert poll.latency_send_recv.mean_ns < halt.latency_send_recv.mean_ns
    assert poll.delivered == halt.delivered == 2_000
