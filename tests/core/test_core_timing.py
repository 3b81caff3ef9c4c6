"""Per-packet timing inside a poll step and the order of RPS IPIs (kernel-model.md
B.4.3, B.3.4): each packet of a ``process_backlog`` step is done, reaches its socket and
wakes its reader at its own instant; ``net_rps_send_ipi`` sends one IPI after another."""

from __future__ import annotations

import attrs

from napikit import Config, CostModel, LoopbackUdp, NicIrq, scenarios


def _perf_a_costs() -> CostModel:
    return scenarios.get("perf-a").config.costs


def _lone(**nic) -> Config:
    """PERF-A's costs, one packet (or one burst) of one NIC interrupt on CPU 0."""
    base = scenarios.get("perf-a").config
    workload = attrs.evolve(base.workloads[0], **nic)
    return base.evolve(workloads=(workload,), packets=nic.get("burst", 1))


def test_lone_rps_packet_takes_the_sum_of_its_path(run):
    """A lone packet steered to CPU 1 is done netif_rx (100, the interrupt's own time on
    CPU 0, before net_rps_send_ipi runs) + ipi_send (200) + ipi_latency (1500) +
    ipi_handler (300, the hard IRQ that schedules the backlog on CPU 1) + protocol_rx
    (1000) = 3100 ns after it arrived (t_enq is its arrival: netif_rx runs in the NIC's
    interrupt)."""
    c = _perf_a_costs()
    expect = c.netif_rx_ns + c.ipi_send_ns + c.ipi_latency_ns + c.ipi_handler_ns + c.protocol_rx_ns
    assert expect == 3100
    result = run(_lone(flows=1, rps_cpus=(1,)))
    assert result.delivered == 1 and result.ipis == 1
    assert result.latency_enqueue.mean_ns == expect
    assert result.latency_enqueue.max_ns == expect


def test_rps_ipis_leave_one_after_another(run):
    """One interrupt of three packets for three CPUs queues three IPIs; the k-th leaves
    after k * ipi_send_ns, counted from the end of the interrupt's 3 * netif_rx_ns, so
    the three packets are done 3300, 3500 and 3700 ns after they arrived."""
    c = _perf_a_costs()
    for seed in range(1, 200):
        config = _lone(flows=3, rps_cpus=(1, 2, 3), arrival="bursty", burst=3).evolve(seed=seed)
        result = run(config)
        if result.ipis == 3:
            break
    else:
        raise AssertionError("no seed spreads the burst over three CPUs")
    first = (3 * c.netif_rx_ns + c.ipi_send_ns + c.ipi_latency_ns + c.ipi_handler_ns
             + c.protocol_rx_ns)
    assert result.delivered == 3
    assert result.latency_enqueue.max_ns == first + 2 * c.ipi_send_ns
    assert result.latency_enqueue.mean_ns == first + c.ipi_send_ns


def test_hard_irq_time_delays_only_the_packets_after_it(run):
    """One CPU, PERF-A's costs but netif_rx 150 ns, seven packets arriving every 500 ns.
    Worked by hand: p0 (500) is polled alone from 650 and done at 1950 (two IRQs of 150
    stole from it); p1 and p2 form the next step from 1950; the IRQs of p3-p5 (2000,
    2500, 3000) come before p1 is done, so p1 is done at 1950 + 1000 + 450 = 3400; p6's
    IRQ (3500) comes after, delaying only p2 (4550); p3-p6 follow at 5550 ... 8550.
    Enqueue latencies 1450, 2400, 3050, 3550, 4050, 4550, 5050: mean 24100 / 7. Were the
    step's IRQ time charged to all its packets, p1 would take 2550."""
    costs = attrs.evolve(_perf_a_costs(), netif_rx_ns=150)
    config = Config(ncpus=1, costs=costs, packets=7,
                    workloads=(NicIrq(cpu=0, rate_pps=2_000_000, arrival="constant", flows=1),))
    result = run(config)
    assert result.delivered == 7
    assert result.latency_enqueue.mean_ns == 24_100 // 7
    assert result.latency_enqueue.max_ns == 5_050


def _one_cpu_reference(n: int, period: int, irq: int, rx: int) -> list[int]:
    """Done times of ``n`` packets arriving every ``period`` ns on one CPU whose hard IRQ
    (``irq`` ns, at each arrival) preempts everything, and which otherwise receives the
    queued packets one after another (``rx`` ns each) whenever any is queued."""
    irqs = [((k + 1) * period, (k + 1) * period + irq) for k in range(n)]
    done, t, i = [], 0, 0
    for j in range(n):
        t = max(t, irqs[j][0])
        need = rx
        while True:
            while i < n and irqs[i][1] <= t:
                i += 1
            if i < n and irqs[i][0] <= t:
                t = irqs[i][1]
                continue
            nxt = irqs[i][0] if i < n else None
            if nxt is None or t + need <= nxt:
                t += need
                break
            need -= nxt - t
            t = nxt
        done.append(t)
    return done


def test_perf_a_costs_latency_not_inflated_by_hard_irqs(run):
    """PERF-A's costs on one CPU that takes the NIC's hard IRQs (netif_rx, 100 ns) and
    polls every packet (1000 ns), 2000 packets every 1024 ns: just over capacity, so the
    backlog grows to about 200 packets and every poll step of up to 64 packets is
    interrupted by about 64 hard IRQs. Each packet must be done when its own protocol
    receive and the IRQ time before it have run, as the work-conserving one-server
    reference computes; charging a step's IRQ time to all its packets, or stamping them
    at the step's end, would raise the mean by up to a whole step's IRQ time."""
    n, period = 2000, 1024
    costs = _perf_a_costs()
    config = Config(ncpus=1, costs=costs, packets=n,
                    workloads=(NicIrq(cpu=0, rate_pps=1e9 / period, arrival="constant",
                                      flows=1),))
    result = run(config)
    done = _one_cpu_reference(n, period, costs.netif_rx_ns, costs.protocol_rx_ns)
    lat = [d - (k + 1) * period for k, d in enumerate(done)]
    assert result.delivered == n
    assert result.latency_enqueue.max_ns == max(lat)
    assert result.latency_enqueue.mean_ns == sum(lat) // n


def test_reader_is_woken_by_the_first_packet_of_a_step(run):
    """A fast sender on CPU 0 steers its datagrams by RPS to CPU 1, whose poll steps
    (1000 ns a packet) hold many of them; the reader on idle CPU 2 costs nothing to wake
    or run. Each datagram reaches the socket, and the reader, the instant it is done, so
    its send-to-receive latency is its enqueue latency plus the sendmsg and netif_rx it
    took on CPU 0 before netif_rx time-stamped it, for every packet (mean and max)."""
    zero = CostModel(**{a.name: 0 for a in attrs.fields(CostModel)})
    costs = attrs.evolve(zero, udp_sendmsg_ns=100, netif_rx_ns=50, protocol_rx_ns=1000)
    config = Config(ncpus=3, costs=costs, packets=500,
                    workloads=(LoopbackUdp(senders=(0,), receivers=(2,), rps_cpus=(1,)),))
    result = run(config)
    assert result.delivered == 500
    shift = costs.udp_sendmsg_ns + costs.netif_rx_ns
    assert result.latency_send_recv.mean_ns == result.latency_enqueue.mean_ns + shift
    assert result.latency_send_recv.max_ns == result.latency_enqueue.max_ns + shift
