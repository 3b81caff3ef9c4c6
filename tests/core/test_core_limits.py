"""The core at its limits: queues that grow, memory that follows the packets in flight,
an allocation that fails, Ctrl-C, and the clock at the configuration's maxima
(docs/kernel-model.md, "Bounds"). Every run also conserves its packets."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import attrs
import pytest

import napikit
from napikit import Config, CostModel, CpuHotplug, Cyclictest, KernelParams, LoopbackUdp, NicIrq

#: Children import the napikit this test process imports: they start where it lies
#: (``python -c`` puts the working directory first on ``sys.path``).
HOME = Path(napikit.__file__).parent.parent
CHILD_ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(
    [str(HOME), *filter(None, [os.environ.get("PYTHONPATH")])])}

#: Far more than the 16 slots a ring starts with and the 1,024 packets the pool does,
#: and less than the 4,096 of a device ring.
BURST = 2000


def _child(code: str, limit_mb: int | None = None) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter, its address space limited to ``limit_mb``."""
    prelude = ""
    if limit_mb is not None:
        prelude = ("import resource\n"
                   f"limit = {limit_mb} << 20\n"
                   "resource.setrlimit(resource.RLIMIT_AS, (limit, limit))\n")
    return subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(code)],
                          capture_output=True, text=True, env=CHILD_ENV, cwd=HOME, timeout=120,
                          check=False)


# ----------------------------------------------------------------- rings grow, in order


def test_a_backlog_holding_a_burst_grows_and_keeps_fifo_order(run, policy):
    """Bursts of 2,000 packets into one CPU's backlog are all delivered, none out of
    order: its rings and the packet pool grew past their initial size, FIFO kept."""
    config = Config(ncpus=1, packets=20 * BURST, drain_ns=10**9,
                    kernel=KernelParams(netdev_max_backlog=4 * BURST),
                    workloads=[NicIrq(cpu=0, rate_pps=500_000, arrival="bursty", burst=BURST,
                                      flows=8)]).evolve(**policy)
    result = run(config)
    assert result.delivered == result.arrived == config.packets
    assert result.reordered == 0
    assert result.conserved


def test_an_overloaded_backlog_keeps_fifo_order_while_it_grows(run, policy):
    """Overload with the queue wrapping as it grows: every packet delivered is in order."""
    config = Config(ncpus=2, packets=40 * BURST, drain_ns=10**9,
                    kernel=KernelParams(netdev_max_backlog=100_000),
                    workloads=[NicIrq(cpu=0, rate_pps=4_000_000, arrival="bursty", burst=1000,
                                      flows=16, rps_cpus=[1])]).evolve(**policy)
    result = run(config)
    assert max(row.processed for row in result.softnet) > 0
    assert result.reordered == 0
    assert result.conserved


def test_a_socket_queue_grows_to_its_rcvbuf_in_order(run, policy):
    """A slow reader's socket queue grows to thousands of packets, drops none, keeps
    their order."""
    config = Config(ncpus=3, packets=10_000, drain_ns=10**10,
                    kernel=KernelParams(rmem_default=10**8, netdev_max_backlog=100_000),
                    costs=CostModel(udp_recvmsg_ns=20_000),
                    workloads=[LoopbackUdp(senders=[0], receivers=[2], flows=3, rps_cpus=[1])]
                    ).evolve(**policy)
    result = run(config)
    assert result.drops.socket == 0
    assert result.delivered == result.arrived == config.packets
    assert result.reordered == 0
    assert result.conserved


def test_a_threaded_nic_ring_grows_to_a_whole_burst_in_order(run, policy):
    """Forced-threaded IRQs: a 2,000-packet burst waits in the device ring (grown from
    16 slots) and is delivered whole, in order."""
    config = Config(ncpus=2, packets=10 * BURST, drain_ns=10**9,
                    kernel=KernelParams(force_irqthreads=True, netdev_max_backlog=4 * BURST),
                    workloads=[NicIrq(cpu=0, rate_pps=100_000, arrival="bursty", burst=BURST,
                                      flows=4, rps_cpus=[1])]).evolve(**policy)
    result = run(config)
    assert result.drops.nic_ring == 0
    assert result.delivered == result.arrived == config.packets
    assert result.reordered == 0
    assert result.conserved


# ----------------------------------------------------------------- memory by need


def test_memory_follows_the_packets_not_netdev_max_backlog():
    """netdev_max_backlog = 10**7 with 2,000 packets runs in a 512 MB address space
    (sizing rings and pool by the limit took 1.6 GB) with a peak RSS under 150 MB."""
    proc = _child("""
        import napikit
        from napikit import Config, KernelParams
        r = napikit.simulate(Config(packets=2000, kernel=KernelParams(netdev_max_backlog=10**7)))
        # VmHWM, not ru_maxrss: Linux folds the forking process's peak (pytest's) into
        # the child's ru_maxrss
        hwm = [ln.split()[1] for ln in open("/proc/self/status") if ln.startswith("VmHWM:")][0]
        print(r.conserved, r.delivered, hwm)
    """, limit_mb=512)
    assert proc.returncode == 0, proc.stderr
    conserved, delivered, maxrss_kb = proc.stdout.split()
    assert (conserved, delivered) == ("True", "2000")
    assert int(maxrss_kb) < 150 * 1024


def test_an_allocation_that_fails_is_a_one_line_memory_error():
    """A valid run whose backlog outgrows a 300 MB address space ends in MemoryError,
    one line naming what could not be allocated, not a crash."""
    proc = _child("""
        import sys, napikit
        from napikit import Config, CostModel, KernelParams, NicIrq
        config = Config(ncpus=1, packets=10**8, stall_timeout_ns=None,
                        kernel=KernelParams(netdev_max_backlog=2**31 - 1),
                        costs=CostModel(protocol_rx_ns=10**10),
                        workloads=[NicIrq(cpu=0, rate_pps=10**9, arrival="bursty", burst=4096)])
        try:
            napikit.simulate(config)
        except MemoryError as e:
            print(e)
            sys.exit(3)
    """, limit_mb=300)
    assert proc.returncode == 3, proc.stderr
    assert proc.stdout.startswith("napikit: cannot allocate ")
    assert proc.stdout.count("\n") == 1
    assert proc.stdout.rstrip().endswith(" packets)")


# ----------------------------------------------------------------- Ctrl-C


def test_sigint_stops_a_run_within_a_second():
    """A 10**12-packet run gets SIGINT after 1 s: simulate() raises KeyboardInterrupt
    within 1 s of it."""
    code = textwrap.dedent("""
        import sys, napikit
        config = napikit.Config(packets=10**12)
        print("running", flush=True)
        try:
            napikit.simulate(config)
        except KeyboardInterrupt:
            print("KeyboardInterrupt", flush=True)
            sys.exit(42)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=CHILD_ENV, cwd=HOME)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == "running\n"
        time.sleep(1)
        proc.send_signal(signal.SIGINT)
        start = time.monotonic()
        out, err = proc.communicate(timeout=10)
        took = time.monotonic() - start
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert (proc.returncode, out) == (42, "KeyboardInterrupt\n"), err
    assert took < 1


# ----------------------------------------------------------------- the clock


def test_costs_at_the_maximum_for_input_of_2_61_ns_end_and_conserve(run, policy):
    """udp_sendmsg_ns = 10**10 with duration_ns = 2**61: the run ends, every packet
    accounted for."""
    config = Config(packets=1000, duration_ns=2**61, drain_ns=2**61, stall_timeout_ns=2**61,
                    costs=CostModel(udp_sendmsg_ns=10**10)).evolve(**policy)
    result = run(config)
    assert result.quiescent
    assert result.delivered == result.arrived == config.packets
    assert result.conserved


def test_every_cost_and_time_at_its_maximum_ends_and_conserves(run, policy):
    """Every cost 10**10 ns, every time 2**61 ns (hotplug at 2**61 included), weights,
    budget and backlog at INT_MAX: the clock passes 2**61 without wrapping, the run
    ends, and every packet is accounted for."""
    costs = CostModel(**{a.name: 10**10 for a in attrs.fields(CostModel)})
    config = Config(
        ncpus=4, packets=2000, duration_ns=2**61, drain_ns=2**61, stall_timeout_ns=2**61,
        costs=costs,
        kernel=KernelParams(dev_weight=2**31 - 1, netdev_budget=2**31 - 1,
                            netdev_max_backlog=2**31 - 1),
        workloads=[LoopbackUdp(senders=[0], receivers=[1], flows=4, rps_cpus=[2, 3]),
                   NicIrq(cpu=3, rate_pps=1, arrival="bursty", burst=4096, rps_cpus=[0, 1, 2, 3]),
                   Cyclictest(cpu=2, period_ns=10**10, work_ns=10**10 - 1)],
        hotplug=[CpuHotplug(time_ns=2**61, cpu=1, online=False),
                 CpuHotplug(time_ns=2**61, cpu=1, online=True)],
    ).evolve(**policy)
    result = run(config)
    assert 2**61 <= result.sim_time_ns < 2**62
    assert all(h.done_ns is not None for h in result.hotplug)
    assert all(0 <= lat.mean_ns <= lat.max_ns for lat in (result.latency_enqueue,
                                                           result.latency_send_recv))
    assert result.arrived == config.packets
    assert result.conserved


@pytest.mark.parametrize("ncpus", [1, 1024])
def test_a_huge_backlog_limit_costs_no_memory_up_front(run, ncpus):
    """netdev_max_backlog = INT_MAX on up to 1,024 CPUs sets up and runs (its rings
    start at 16 slots), every packet accounted for."""
    config = Config(ncpus=ncpus, packets=5000, kernel=KernelParams(netdev_max_backlog=2**31 - 1),
                    workloads=[NicIrq(cpu=0, rate_pps=10**7, rps_cpus=list(range(min(ncpus, 64))))])
    result = run(config)
    assert result.delivered == result.arrived == config.packets
    assert result.conserved
