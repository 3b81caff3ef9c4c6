"""``napikit calibrate``: measure this host's micro-costs and write a cost-model file.

Every measurement is a bounded loop of the compiled helper (:mod:`napikit.host._bench`:
threads pinned with ``sched_setaffinity``, no Python inside a timed loop), repeated
``reps`` times with the measurements interleaved (all of them once, then again ...).
Each :class:`~napikit.config.CostModel` field is derived from the measurements of one
repetition at a time (:data:`DERIVATIONS`), so its spread is the range over the
repetitions; fields user space cannot measure keep napikit's default and say why
(:data:`UNMEASURABLE`). ``docs/validation.md`` documents the mapping.

Where a field comes from a probe that times single operations, the entry also carries
their measured shape (:data:`SHAPES`): the probe's 32 quantile points, shifted by what
the derivation subtracts and clamped at 0, as an ``empirical`` distribution; the entry's
``value`` is then that shape's mean (the model's field is the mean of its draws), not
the median. The other fields stay constant and their ``source`` says why
(:data:`NO_SHAPE`).

The RPS measurement writes ``rps_cpus`` of ``lo`` (root only) and restores it with
:class:`~napikit.host.kernel_bench.RpsGuard`; without root it is skipped and named.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import napikit
from napikit.config import CostDistribution, CostModel
from napikit.host import procfs
from napikit.host.costfile import (
    FIELDS,
    CostEntry,
    check_writable,
    default_entry,
    median_spread,
    write,
)
from napikit.host.facts import host_facts
from napikit.host.procfs import ROOT

REPS, QUICK_REPS = 7, 5
SECONDS, QUICK_SECONDS = 0.4, 0.08

#: The idle-entry probe's delays (ns after the block began), shortest first.
IDLE_ENTRY_DELAYS = (500, 1000, 1500, 2000, 3000)

#: What each raw measurement is, precisely (ns unless named otherwise).
MEASUREMENTS: dict[str, str] = {
    "send_inline_remote_reader": "sender thread CPU time per 64-byte sendto, RPS off "
    "(the receive softirq runs inside sendto), reader blocked in recvmsg on the other CPU",
    "recv_remote_reader": "reader thread CPU time per datagram in the same run",
    "reader_wakeups_per_packet": "reader's voluntary context switches per datagram sent "
    "in the same run (count, not ns)",
    "send_inline_same_cpu_reader": "sender thread CPU time per sendto, RPS off, reader on "
    "the sender's CPU",
    "send_inline_no_reader": "wall time per sendto of a batch of 128 to a socket no thread "
    "waits on (udp_drain), RPS off: send path + receive softirq, no wake-up",
    "recv_queued": "wall time per recv() of the datagrams queued by that batch",
    "send_rps_remote": "sender thread CPU time per sendto with rps_cpus = the reader's "
    "(other) CPU: the receive runs there",
    "rps_kick_extra": "send_rps_remote minus send_inline_remote_reader (negative: the "
    "receive work left the sender's CPU)",
    "protocol_rx_on_target": "in the RPS run, the reader's CPU time minus recv_queued per "
    "datagram it read, per packet processed on its CPU (the receive softirq charged to "
    "the reader it interrupts, plus the IPI handler and the reader's sleep/wake overhead)",
    "rps_kicks_per_packet": "received_rps on the reader's CPU per datagram sent in the RPS "
    "run (count)",
    "rps_reader_blocks_per_processed": "the reader's voluntary context switches per packet "
    "processed on its CPU in the RPS run (count)",
    "rps_cal_per_kick": "CAL interrupts on the reader's CPU per received_rps in the RPS run "
    "(count; below 1: kicks that needed no interrupt, or queued behind one)",
    "futex_handoff_same_cpu": "half a futex ping-pong round trip, both threads on one CPU "
    "(FUTEX_WAKE + FUTEX_WAIT + one context switch)",
    "futex_handoff_idle_target": "half a futex ping-pong round trip across CPUs, each "
    "thread blocked in FUTEX_WAIT so its CPU idles",
    "futex_handoff_busy_target": "the same with a sched_yield spinner sharing the target "
    "CPU, so a wake-up finds it running",
    "futex_wake_idle_target": "time of the FUTEX_WAKE system call waking a thread on an "
    "idle other CPU (ttwu_queue_wakelist: queue + IPI, none if it polls)",
    "futex_wake_busy_target": "time of FUTEX_WAKE waking a thread on a busy other CPU "
    "(direct enqueue, resched IPI if it preempts)",
    "futex_wake_no_waiter": "time of FUTEX_WAKE with nobody waiting (the bare syscall)",
    "idle_target_irqs_per_wakeup": "CAL + RES interrupts on the idle target per wake-up "
    "during futex_handoff_idle_target (count; other activity adds to it)",
    "kick_finds_target_polling": "1 - idle_target_irqs_per_wakeup, clamped to [0, 1]: "
    "the share of cross-CPU wake-ups that needed no interrupt (fraction)",
    **{f"idle_entry_irqs_{d}ns": f"CAL + RES interrupts on an otherwise idle CPU per "
       f"wake-up of a thread there {d} ns after it began to block in FUTEX_WAIT (count; "
       "below 1: its idle task still polled, TIF_POLLING_NRFLAG, before halting)"
       for d in IDLE_ENTRY_DELAYS},
    **{f"idle_entry_wake_{d}ns": f"median time from the start of such a wake-up ({d} ns "
       "after the block began) to the woken thread running, over the wake-ups it slept "
       "through (FUTEX_WAKE, the IPI if any, idle exit, the switch, FUTEX_WAIT's return)"
       for d in IDLE_ENTRY_DELAYS},
    "yield_alone": "sched_yield with no other thread on the CPU (no switch)",
    "yield_pair": "sched_yield with two threads on one CPU (a switch per call)",
    "cacheline_remote": "hand-off of a counter's cache line between threads on two CPUs "
    "spinning on it (a line transfer per hand-off)",
    "cacheline_local": "the same loads and stores by one thread (no transfer)",
    "cacheline_transfer": "cacheline_remote minus cacheline_local: the extra cost of "
    "touching memory last written by another CPU",
    "membarrier_alone": "membarrier(PRIVATE_EXPEDITED) with no other thread of the process "
    "running: the system call and cpumask walk, no IPI",
    "membarrier_busy_target": "median membarrier call with a thread of the process "
    "spinning on the other CPU: one IPI there, waited for (smp_call_function_many)",
    "ipi_arrival_busy_target": "median time from a membarrier call's start to the busy "
    "target's interruption, seen by the target's clock loop",
    "ipi_handler_busy_target": "median time the busy target's task lost to that interrupt "
    "(hard-IRQ entry, ipi_mb, exit; a guest's VM exit and entry included)",
    "ipi_matched": "share of the membarrier calls whose interruption the target saw "
    "(fraction)",
    "tgkill_remote_running": "median tgkill of a thread spinning on the other CPU "
    "(signal_wake_up -> kick_process: a reschedule IPI)",
    "tgkill_same_cpu": "median tgkill of a runnable thread on the caller's CPU (no IPI)",
    "ipi_send_sender": "tgkill_remote_running minus tgkill_same_cpu: the sender's cost of "
    "one IPI to a busy CPU",
    "ipi_flight": "ipi_arrival_busy_target - membarrier_alone - ipi_send_sender: from the "
    "end of the sender's IPI cost to the target's interruption (negative: the target "
    "is interrupted before the sender's cost is over, as a guest's ICR-write VM exit "
    "returns after the interrupt is posted)",
}

#: Measurements that are counts or fractions, not ns.
UNITLESS = {"reader_wakeups_per_packet", "rps_kicks_per_packet", "rps_cal_per_kick",
            "rps_reader_blocks_per_processed",
            *(f"idle_entry_irqs_{d}ns" for d in IDLE_ENTRY_DELAYS),
            "idle_target_irqs_per_wakeup", "kick_finds_target_polling", "ipi_matched"}

#: The fields no user-space measurement reaches, and why.
UNMEASURABLE: dict[str, str] = {
    "netif_rx_ns": "enqueue_to_backlog runs inside sendto; user space cannot time it apart "
    "from udp_sendmsg",
    "nic_irq_ns": "loopback has no device interrupt",
    "softirq_entry_ns": "handle_softirqs entry and exit happen inside sendto and cannot be "
    "timed apart from it",
    "hrtimer_irq_ns": "not measured (a timer interrupt's own cost needs tracing)",
    "skb_free_ns": "not measured (the free is inside recvmsg or net_rx_action; used only "
                   "with kernel.udp_skb_defer_free)",
}

_D = CostModel()

#: Cache lines of one 64-byte UDP datagram's skb that its receive touches after another
#: CPU wrote them (kernel-model.md B.10.6): 4 of ``struct sk_buff`` (232 bytes on
#: x86_64: the list and socket pointers, ``cb``, the lengths and header offsets,
#: ``truesize``/``users`` and ``head``/``data``, read by ``ip_rcv_core`` and
#: ``__udp4_lib_rcv``, written by ``__udp_enqueue_schedule_skb``), 1 of
#: ``skb_shared_info`` (``nr_frags``, ``frag_list``, ``dataref``: ``pskb_may_pull``,
#: ``skb_copy_datagram_msg``) and 2 of data (14 + 20 + 8 bytes of headers and 64 of
#: payload, 106 bytes from an offset inside a line, so two lines).
SKB_RX_LINES = 7

#: Cache lines of a UDP socket's receive side that the enqueue and ``recvmsg`` both
#: touch: ``sk_receive_queue`` with its lock, ``sk_rmem_alloc`` with ``sk_forward_alloc``
#: (``__udp_enqueue_schedule_skb``, ``udp_rmem_release``), and the wait queue that
#: ``sock_def_readable`` wakes and ``__skb_wait_for_more_packets`` sleeps on.
SOCK_RX_LINES = 3


def _remote_skb(m: dict[str, float]) -> float:
    return max(0.0, m["cacheline_transfer"]) * SKB_RX_LINES


def _remote_sock(m: dict[str, float]) -> float:
    return max(0.0, m["cacheline_transfer"]) * SOCK_RX_LINES


def _context_switch(m: dict[str, float]) -> float:
    """One ``__schedule`` switch: ``sched_yield`` in pairs, less alone."""
    return m["yield_pair"] - m["yield_alone"]


def _block_total(m: dict[str, float]) -> float:
    """A blocked reader's CPU time per block beyond its ``recvmsg`` work: the reader
    of the cross-CPU run, less ``recv_queued`` and the skb's and socket's remote lines
    per datagram, over its blocks per datagram."""
    return (m["recv_remote_reader"] - m["recv_queued"] - _remote_skb(m) - _remote_sock(m)) \
        / m["reader_wakeups_per_packet"]


def _idle_window(m: dict[str, float]) -> float:
    """The delay after a block began at which half the wake-ups need an interrupt,
    linear between the idle-entry probe's delays (from 0: none needed); the longest
    delay where even that one needed fewer."""
    prev_d, prev_share = 0.0, 0.0
    for d in IDLE_ENTRY_DELAYS:
        share = m[f"idle_entry_irqs_{d}ns"]
        if share >= 0.5:
            return prev_d + (d - prev_d) * (0.5 - prev_share) / (share - prev_share)
        prev_d, prev_share = float(d), share
    return prev_d


def _idle_exit_poll(m: dict[str, float]) -> float:
    """A wake-up to a still-polling CPU (the shortest delay, where most needed no
    interrupt), less the switch and one bare system call (FUTEX_WAKE's entry on the
    waker, FUTEX_WAIT's return on the woken)."""
    d = IDLE_ENTRY_DELAYS[0]
    if m[f"idle_entry_irqs_{d}ns"] >= 0.5:
        raise ValueError("the target had mostly halted at the shortest delay")
    return max(0.0, m[f"idle_entry_wake_{d}ns"] - _context_switch(m)
               - m["futex_wake_no_waiter"])


def _protocol_rx(m: dict[str, float]) -> float:
    """The inline receive: the RPS target's, less the skb lines it pulled from the
    sender's CPU (its socket was local: the reader runs there) and, where the run
    counted them, the reader's blocks there (:func:`_block_total` each)."""
    blocks = m.get("rps_reader_blocks_per_processed", 0.0)
    return m["protocol_rx_on_target"] - _remote_skb(m) \
        - (blocks * _block_total(m) if blocks else 0.0)

Derivation = tuple[str, Callable[[dict[str, float]], float]]

#: Field -> (the source recorded in the file, how one repetition's measurements give it).
DERIVATIONS: dict[str, Derivation] = {
    "udp_recvmsg_ns": ("recv_queued", lambda m: m["recv_queued"]),
    "context_switch_ns": ("yield_pair - yield_alone",
                          _context_switch),
    "wakeup_ns": ("futex_wake_busy_target - futex_wake_no_waiter",
                  lambda m: m["futex_wake_busy_target"] - m["futex_wake_no_waiter"]),
    "ipi_send_ns": ("ipi_send_sender = tgkill_remote_running - tgkill_same_cpu (the "
                    "sender's cost of a reschedule IPI to a busy CPU)",
                    lambda m: m["tgkill_remote_running"] - m["tgkill_same_cpu"]),
    "ipi_handler_ns": ("ipi_handler_busy_target: the busy target's time lost to one "
                       "membarrier IPI (hard-IRQ entry, handler, exit)",
                       lambda m: m["ipi_handler_busy_target"]),
    "wakeup_latency_ns": ("futex_handoff_idle_target - futex_handoff_same_cpu",
                          lambda m: m["futex_handoff_idle_target"]
                          - m["futex_handoff_same_cpu"]),
    "ipi_latency_ns": ("max(0, ipi_flight): ipi_arrival_busy_target - membarrier_alone - "
                       "ipi_send_ns, the model's IPI leaving when its send cost is paid",
                       lambda m: max(0.0, m["ipi_flight"])),
    "remote_skb_ns": (f"cacheline_transfer x {SKB_RX_LINES}: the lines of a 64-byte "
                      "datagram's skb its receive touches (4 of sk_buff, 1 of "
                      "skb_shared_info, 2 of headers and data), each written by another CPU",
                      _remote_skb),
    "remote_sock_ns": (f"cacheline_transfer x {SOCK_RX_LINES}: the socket's receive-side "
                       "lines (sk_receive_queue and its lock, sk_rmem_alloc and "
                       "sk_forward_alloc, the wait queue)",
                       _remote_sock),
    "recv_block_ns": ("(recv_remote_reader - recv_queued - remote_skb_ns - "
                      "remote_sock_ns) / reader_wakeups_per_packet - context_switch_ns: "
                      "the blocked reader's CPU per block beyond its recvmsg, less the "
                      "switch back in that the model charges apart",
                      lambda m: max(0.0, _block_total(m) - _context_switch(m))),
    "idle_entry_ns": ("the delay at which half the idle-entry probe's wake-ups need an "
                      "interrupt (linear between idle_entry_irqs_*; counted from the start "
                      "of the blocking call, so it includes the path into schedule)",
                      _idle_window),
    "idle_exit_poll_ns": (f"idle_entry_wake_{IDLE_ENTRY_DELAYS[0]}ns - context_switch_ns - "
                          "futex_wake_no_waiter: a wake-up to a CPU still polling, less the "
                          "switch and one bare system call (over the repetitions where most "
                          "of those wake-ups needed no interrupt)",
                          _idle_exit_poll),
    "protocol_rx_ns": ("protocol_rx_on_target - remote_skb_ns - "
                       "rps_reader_blocks_per_processed x the reader's CPU per block: the "
                       "RPS run's reader CPU time beyond recv_queued per datagram, per "
                       "packet processed on its CPU, less the skb lines pulled from the "
                       "sender's CPU and the reader's blocking (the receive as run inline; "
                       "still includes the IPI handler)",
                       _protocol_rx),
    "udp_sendmsg_ns": ("send_inline_no_reader - protocol_rx_ns - netif_rx_ns (default) - "
                       "softirq_entry_ns (default); all on one CPU, so no location cost",
                       lambda m: m["send_inline_no_reader"] - max(0.0, _protocol_rx(m))
                       - _D.netif_rx_ns - _D.softirq_entry_ns),
}

#: Per repetition: a probe's per-operation shape, keyed by the measurement it is the
#: median (or mean) of: the probe's quantile points (ns, sorted, equal weights).
Hists = dict[str, list[float]]

#: A field's shape: (the measurement whose samples it is, how the file describes it,
#: the points from one repetition's measurements and that measurement's points).
Shape = tuple[str, str, Callable[[dict[str, float], list[float]], list[float]]]


def _shifted(points: list[float], by: float) -> list[float]:
    return [max(0.0, p - by) for p in points]


#: The fields whose value comes from per-operation samples, and how their shape does.
#: A subtracted measurement is a constant (its own spread is not taken out), so these
#: shapes are the whole measured operation's spread: for the three differences an
#: upper bound on the part the field models.
SHAPES: dict[str, Shape] = {
    "ipi_handler_ns": ("ipi_handler_busy_target", "the matched membarrier IPIs' times "
                       "lost by the target, as measured",
                       lambda m, q: list(q)),
    "ipi_send_ns": ("tgkill_remote_running", "the remote tgkill calls' times less "
                    "tgkill_same_cpu (a constant), clamped at 0",
                    lambda m, q: _shifted(q, m["tgkill_same_cpu"])),
    "ipi_latency_ns": ("ipi_arrival_busy_target", "the matched arrivals less "
                       "membarrier_alone and ipi_send_sender (constants), clamped at 0",
                       lambda m, q: _shifted(q, m["membarrier_alone"]
                                             + m["ipi_send_sender"])),
    "wakeup_ns": ("futex_wake_busy_target", "the FUTEX_WAKE calls' times to the busy "
                  "target less futex_wake_no_waiter (a constant), clamped at 0",
                  lambda m, q: _shifted(q, m["futex_wake_no_waiter"])),
}

#: Why each other measured field stays constant (no per-operation samples behind it,
#: or samples whose spread is not the field's).
NO_SHAPE: dict[str, str] = {
    "udp_recvmsg_ns": "timed per batch of 128 recv() calls, no per-call samples",
    "context_switch_ns": "a difference of two loop averages",
    "wakeup_latency_ns": "the ping-pong times a whole loop of round trips, not each "
    "hand-off",
    "remote_skb_ns": "a loop average times a line count",
    "remote_sock_ns": "a loop average times a line count",
    "recv_block_ns": "from the run's CPU-time totals",
    "idle_entry_ns": "a delay found from interrupt counts, not a timed operation",
    "idle_exit_poll_ns": "its wake-up samples mix wake-ups of a still-polling CPU with "
    "ones that needed an interrupt, which the probe cannot tell apart one by one",
    "protocol_rx_ns": "from the RPS run's CPU-time totals",
    "udp_sendmsg_ns": "timed per batch of 128 sendto() calls; one call's time would be "
    "the whole inline send and receive, whose spread belongs to several fields at once",
}

#: Where the direct IPI probes failed (no membarrier, tgkill refused), the futex proxies.
FALLBACKS: dict[str, Derivation] = {
    "ipi_send_ns": ("futex_wake_idle_target - futex_wake_busy_target (the wakelist queue "
                    "+ IPI of a wake-up to an idle CPU, beyond a direct enqueue; the IPI "
                    "probes gave no value)",
                    lambda m: m["futex_wake_idle_target"] - m["futex_wake_busy_target"]),
    "ipi_latency_ns": ("futex_handoff_busy_target - futex_handoff_same_cpu (an interrupt "
                       "reaching a running CPU and the switch it causes; the IPI probes "
                       "gave no value)",
                       lambda m: m["futex_handoff_busy_target"]
                       - m["futex_handoff_same_cpu"]),
}


#: Without root (no RPS run), the send path is split with the default receive cost.
NO_ROOT_SENDMSG: Derivation = (
    "send_inline_no_reader - protocol_rx_ns (default) - netif_rx_ns (default) - "
    "softirq_entry_ns (default); no root, so the RPS run that separates them was skipped",
    lambda m: m["send_inline_no_reader"] - _D.protocol_rx_ns - _D.netif_rx_ns
    - _D.softirq_entry_ns,
)


def _per(n: float, d: float) -> float:
    return n / d if d else float("nan")


def _interrupts(root: Path | str) -> dict[str, tuple[int, ...]] | None:
    """CAL and RES per CPU, or ``None`` where /proc/interrupts cannot be read."""
    try:
        return procfs.interrupts(root)
    except procfs.HostError:
        return None


#: The share of membarrier calls whose interruption the target must see for the probe's
#: timings to count. Below it the target was often not running the probe's thread (on a
#: busy host membarrier_private_expedited skips a CPU running another process, so no IPI
#: is sent) or the interruptions were shorter than the clock loop can see; the few seen
#: are then the slow ones, and the futex proxies (:data:`FALLBACKS`) stand in.
MIN_IPI_MATCHED = 0.5


def _keep(h: Hists | None, name: str, result: dict[str, Any], key: str) -> None:
    """``result``'s ``key_hist`` (a probe's quantile points) as ``name``'s shape."""
    points = result.get(f"{key}_hist")
    if h is not None and points:
        h[name] = [float(p) for p in points]


def _measure_ipis(m: dict[str, float], cpu_a: int, cpu_b: int, seconds: float,
                  h: Hists | None = None) -> None:
    """The direct IPI probes; a kernel that refuses one (no ``CONFIG_MEMBARRIER``)
    leaves its measurements out, and the futex proxies stand in (:data:`FALLBACKS`)."""
    import napikit.host._bench as _bench

    try:
        b = _bench.ipi_membarrier(cpu_a, cpu_b, seconds=seconds)
        if b["calls"]:
            m["ipi_matched"] = b["matched"] / b["calls"]
        if b["alone_calls"] and m.get("ipi_matched", 0.0) >= MIN_IPI_MATCHED:
            m["membarrier_alone"] = b["alone_ns"] / b["alone_calls"]
            m["membarrier_busy_target"] = b["call_median"]
            m["ipi_arrival_busy_target"] = b["arrival_median"]
            m["ipi_handler_busy_target"] = b["handler_median"]
            _keep(h, "membarrier_busy_target", b, "call")
            _keep(h, "ipi_arrival_busy_target", b, "arrival")
            _keep(h, "ipi_handler_busy_target", b, "handler")
    except OSError:
        pass
    try:
        remote = _bench.ipi_tgkill(cpu_a, cpu_b, seconds=seconds)
        local = _bench.ipi_tgkill(cpu_a, cpu_a, seconds=seconds)
        if remote["calls"] and local["calls"]:
            m["tgkill_remote_running"] = remote["call_median"]
            m["tgkill_same_cpu"] = local["call_median"]
            m["ipi_send_sender"] = m["tgkill_remote_running"] - m["tgkill_same_cpu"]
            _keep(h, "tgkill_remote_running", remote, "call")
            _keep(h, "tgkill_same_cpu", local, "call")
    except OSError:
        pass
    if "ipi_send_sender" in m and "ipi_arrival_busy_target" in m:
        m["ipi_flight"] = (m["ipi_arrival_busy_target"] - m["membarrier_alone"]
                           - m["ipi_send_sender"])


def measure_once(cpu_a: int, cpu_b: int | None, seconds: float, rps: Any | None,
                 root: Path | str = ROOT, hists: Hists | None = None) -> dict[str, float]:
    """One repetition of every measurement: ``cpu_b`` ``None`` (a 1-CPU host) skips
    the cross-CPU ones; ``rps`` (an :class:`RpsGuard`) enables the RPS run. ``hists``,
    if given, receives the per-operation probes' shapes (:data:`Hists`)."""
    import napikit.host._bench as _bench

    m: dict[str, float] = {}
    d = _bench.udp_drain(cpu_a, seconds=seconds)
    m["send_inline_no_reader"] = _per(d["send_ns"], d["packets"])
    m["recv_queued"] = _per(d["recv_ns"], d["packets"])
    r = _bench.udp_flow(cpu_a, cpu_a, seconds=seconds)
    m["send_inline_same_cpu_reader"] = _per(r["sender_cpu_ns"], r["sent"])
    m["yield_alone"] = _bench.yield_ns(cpu_a, 1, seconds=seconds / 2)
    m["yield_pair"] = _bench.yield_ns(cpu_a, 2, seconds=seconds / 2)
    m["futex_wake_no_waiter"] = _bench.futex_wake_empty(cpu_a, seconds=seconds / 2)
    p = _bench.futex_pingpong(cpu_a, cpu_a, seconds=seconds)
    m["futex_handoff_same_cpu"] = _per(p["wall_ns"], 2 * p["round_trips"])
    m["cacheline_local"] = _bench.cacheline_ns(cpu_a, cpu_a, local=True, seconds=seconds / 2)
    if cpu_b is None:
        return m
    r = _bench.udp_flow(cpu_a, cpu_b, seconds=seconds)
    m["send_inline_remote_reader"] = _per(r["sender_cpu_ns"], r["sent"])
    m["recv_remote_reader"] = _per(r["receiver_cpu_ns"], r["received"])
    m["reader_wakeups_per_packet"] = _per(r["receiver_nvcsw"], r["sent"])
    before_irqs = _interrupts(root)
    p = _bench.futex_pingpong(cpu_a, cpu_b, seconds=seconds)
    after_irqs = _interrupts(root)
    m["futex_handoff_idle_target"] = _per(p["wall_ns"], 2 * p["round_trips"])
    m["futex_wake_idle_target"] = _per(p["wake_ns"], p["wake_calls"])
    _keep(hists, "futex_wake_idle_target", p, "wake")
    if before_irqs is not None and after_irqs is not None:
        irqs = sum(after_irqs[k][cpu_b] - before_irqs[k][cpu_b] for k in ("CAL", "RES"))
        m["idle_target_irqs_per_wakeup"] = _per(irqs, p["round_trips"])
        m["kick_finds_target_polling"] = min(1.0, max(
            0.0, 1 - m["idle_target_irqs_per_wakeup"]))
    p = _bench.futex_pingpong(cpu_a, cpu_b, busy_target=True, seconds=seconds)
    m["futex_handoff_busy_target"] = _per(p["wall_ns"], 2 * p["round_trips"])
    m["futex_wake_busy_target"] = _per(p["wake_ns"], p["wake_calls"])
    _keep(hists, "futex_wake_busy_target", p, "wake")
    for delay in IDLE_ENTRY_DELAYS:
        before_irqs = _interrupts(root)
        w = _bench.idle_entry(cpu_a, cpu_b, delay, seconds=seconds / 16)
        after_irqs = _interrupts(root)
        if w["slept"]:
            m[f"idle_entry_wake_{delay}ns"] = float(w["wake_median"])
            _keep(hists, f"idle_entry_wake_{delay}ns", w, "wake")
        if before_irqs is not None and after_irqs is not None:
            m[f"idle_entry_irqs_{delay}ns"] = _per(sum(
                after_irqs[k][cpu_b] - before_irqs[k][cpu_b] for k in ("CAL", "RES")),
                w["wakes"])
    m["cacheline_remote"] = _bench.cacheline_ns(cpu_a, cpu_b, seconds=seconds / 2)
    m["cacheline_transfer"] = m["cacheline_remote"] - m["cacheline_local"]
    _measure_ipis(m, cpu_a, cpu_b, seconds / 2, hists)
    if rps is not None:
        rps.set((cpu_b,))
        try:
            time.sleep(0.01)
            before_sn = procfs.softnet_stat(root)
            before = procfs.interrupts(root)
            r = _bench.udp_flow(cpu_a, cpu_b, seconds=seconds)
            after = procfs.interrupts(root)
            after_sn = procfs.softnet_stat(root)
        finally:
            rps.set(())
        kicks = after_sn[cpu_b].received_rps - before_sn[cpu_b].received_rps
        m["send_rps_remote"] = _per(r["sender_cpu_ns"], r["sent"])
        m["rps_kick_extra"] = m["send_rps_remote"] - m["send_inline_remote_reader"]
        m["rps_kicks_per_packet"] = _per(kicks, r["sent"])
        m["rps_cal_per_kick"] = _per(after["CAL"][cpu_b] - before["CAL"][cpu_b], kicks)
        # Without IRQ_TIME_ACCOUNTING softirq time is charged to the task it interrupts,
        # here mostly the reader on the RPS target. Its recvmsg share is taken from
        # recv_queued (data written on the reader's own CPU, as here), not from
        # recv_remote_reader (data from the other CPU: cache-line transfers and more
        # blocking). What runs in the idle task is charged to nobody; the reader's own
        # sleep/wake overhead and the IPI handler are charged to it.
        processed = after_sn[cpu_b].processed - before_sn[cpu_b].processed
        m["protocol_rx_on_target"] = _per(
            r["receiver_cpu_ns"] - m["recv_queued"] * r["received"], processed)
        m["rps_reader_blocks_per_processed"] = _per(r["receiver_nvcsw"], processed)
    return m


def _median(rule: Derivation, reps: list[dict[str, float]]) -> tuple[int, tuple[int, int]]:
    """Over the repetitions where the rule applies (it raises ValueError where the
    probe did not see what it needs, e.g. a target that had already halted)."""
    values = []
    for m in reps:
        try:
            values.append(rule[1](m))
        except ValueError:
            continue
    if not values:
        raise ValueError(f"no repetition gave {rule[0]!r}")
    return median_spread(values)


def _shaped(field: str, rule: Derivation, reps: list[dict[str, float]],
            hists: list[Hists]) -> CostEntry | None:
    """``field``'s entry with its measured shape (:data:`SHAPES`), or ``None`` where no
    repetition has the samples or the shape has no mean above 0. Each repetition's
    shape is its probe's quantile points less what the derivation subtracts; the entry
    takes the repetition whose shape's mean is the median (the upper middle of an even
    count) and writes that mean as the value, so the model's draws, whose mean is the
    field's value, are those points unscaled. The spread is the range of the means."""
    name, how, fn = SHAPES[field]
    shapes: list[tuple[float, list[float], float]] = []
    for m, h in zip(reps, hists, strict=True):
        if not h.get(name):
            continue
        try:
            points = fn(m, h[name])
            constant = rule[1](m)
        except (KeyError, ValueError, ZeroDivisionError):
            continue
        points = [p for p in points if p == p]
        if points and (mean := statistics.fmean(points)) > 0:
            shapes.append((mean, points, constant))
    if not shapes:
        return None
    shapes.sort(key=lambda s: s[0])
    mean, points, constant = shapes[len(shapes) // 2]
    dist = CostDistribution("empirical", values=tuple(round(p, 1) for p in points),
                            weights=(1.0,) * len(points))
    value = round(dist.mean)
    spread = (min(value, round(shapes[0][0])), max(value, round(shapes[-1][0])))
    return CostEntry(value, spread, f"{rule[0]}; shape: {how}, {len(points)} equal-weight "
                     f"quantile points of the median repetition; value = the shape's mean "
                     f"(that repetition's value by the formula: {constant:.0f} ns)", dist)


def derive(reps: list[dict[str, float]], have_root: bool, cross_cpu: bool,
           hists: list[Hists] | None = None) -> dict[str, CostEntry]:
    """Every CostModel field's entry from the repetitions' measurements; with
    ``hists`` (one per repetition), the fields in :data:`SHAPES` carry their shape."""
    entries: dict[str, CostEntry] = {}
    for field, why in UNMEASURABLE.items():
        entries[field] = default_entry(field, why)
    for field, (source, fn) in DERIVATIONS.items():
        rule: Derivation = (source, fn)
        if field == "udp_sendmsg_ns" and not have_root:
            rule = NO_ROOT_SENDMSG
        needs_root = field == "protocol_rx_ns"
        if needs_root and not have_root:
            entries[field] = default_entry(field, "needs root: the RPS run that moves the "
                                           "receive off the sender's CPU writes rps_cpus")
            continue
        rules = [rule] + ([FALLBACKS[field]] if field in FALLBACKS else [])
        for rule in rules:
            try:
                value, spread = _median(rule, reps)
            except (KeyError, ValueError, ZeroDivisionError):
                continue
            shaped = None
            if hists is not None and field in SHAPES and rule is not FALLBACKS.get(field):
                shaped = _shaped(field, rule, reps, hists)
            if shaped is not None:
                entries[field] = shaped
            else:
                why = NO_SHAPE.get(field, "a difference of two loop averages (the IPI "
                                   "probes' samples were not usable)")
                entries[field] = CostEntry(value, spread, f"{rule[0]} (constant: {why})")
            break
        else:
            why = "needs 2 CPUs" if not cross_cpu else \
                "its measurements gave no finite value (see [measurements])"
            entries[field] = default_entry(field, why)
    return {name: entries[name] for name in FIELDS}


def summarize(reps: list[dict[str, float]], hists: list[Hists] | None = None) -> dict[
    str, Any
]:
    """Each measurement's median and range, with what it measures; with ``hists``, a
    per-operation measurement also gets ``quantiles``, its probe's 32 quantile points
    (ns) in the repetition whose value is the median (the upper middle of an even
    count), also where no field uses them."""
    out: dict[str, Any] = {}
    for name, what in MEASUREMENTS.items():
        values = [m[name] for m in reps if name in m and m[name] == m[name]]
        if not values:
            continue
        digits = 4 if name in UNITLESS else 1
        out[name] = {
            "unit": "count" if name in UNITLESS else "ns",
            "median": round(statistics.median(values), digits),
            "min": round(min(values), digits),
            "max": round(max(values), digits),
            "what": what,
        }
        per_rep = hists if hists is not None else [{}] * len(reps)
        shaped = sorted(((m[name], h[name]) for m, h in zip(reps, per_rep, strict=True)
                         if h.get(name) and name in m and m[name] == m[name]),
                        key=lambda x: x[0])
        if shaped:
            out[name]["quantiles"] = [round(q) for q in shaped[len(shaped) // 2][1]]
    return out


def calibrate(quick: bool = False, root: Path | str = ROOT, euid: int | None = None,
              progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run the measurements; ``{"entries", "measurements", "host", "reps", "seconds"}``."""
    from napikit.host.kernel_bench import RpsGuard

    facts = host_facts(root)
    cpus = facts["online_cpus"]
    cpu_a = cpus[0]
    cpu_b = cpus[1] if len(cpus) > 1 else None
    have_root = (os.geteuid() if euid is None else euid) == 0
    reps, seconds = (QUICK_REPS, QUICK_SECONDS) if quick else (REPS, SECONDS)
    results: list[dict[str, float]] = []
    hists: list[Hists] = []
    if have_root and cpu_b is not None:
        with RpsGuard(root) as guard:
            for i in range(reps):
                if progress:
                    progress(f"[rep {i + 1}/{reps}] measuring")
                hists.append({})
                results.append(measure_once(cpu_a, cpu_b, seconds, guard, root, hists[-1]))
    else:
        for i in range(reps):
            if progress:
                progress(f"[rep {i + 1}/{reps}] measuring (no RPS run: "
                         + ("not root)" if not have_root else "1 CPU)"))
            hists.append({})
            results.append(measure_once(cpu_a, cpu_b, seconds, None, root, hists[-1]))
    entries = derive(results, have_root and cpu_b is not None, cpu_b is not None, hists)
    return {"entries": entries, "measurements": summarize(results, hists), "host": facts,
            "reps": reps, "seconds": seconds, "cpus": [cpu_a, cpu_b]}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``napikit calibrate``."""
    parser.add_argument("--out", type=Path, default=Path("costs.toml"), metavar="FILE",
                        help="cost-model file to write (default costs.toml)")
    parser.add_argument("--quick", action="store_true",
                        help=f"{QUICK_REPS} repetitions of {QUICK_SECONDS:g} s loops instead "
                        f"of {REPS} of {SECONDS:g} s")


def main(args: argparse.Namespace) -> int:
    """``napikit calibrate``: measure, write the cost file, print the table."""
    check_writable(args.out)
    out = calibrate(args.quick, progress=lambda s: print(s, file=sys.stderr, flush=True))
    entries: dict[str, CostEntry] = out["entries"]
    write(args.out, entries, out["host"], out["measurements"],
          napikit=napikit.__version__, created=time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                             time.gmtime()),
          notes=f"{out['reps']} repetitions of {out['seconds']:g} s loops on CPUs "
          f"{out['cpus'][0]} and {out['cpus'][1]}; value = median over the repetitions, "
          "spread = min-max; an entry with a distribution: its probe's 32 quantile points "
          "(of the repetition with the median mean) and value = their mean, the mean "
          "the model draws that cost with")
    width = max(map(len, entries))
    for name, e in entries.items():
        print(f"{name:<{width}}  {e.value:>7} ns  [{e.spread[0]}-{e.spread[1]}]  {e.source}")
    m = out["measurements"]
    for name in ("kick_finds_target_polling", "rps_cal_per_kick"):
        if name in m:
            print(f"{name:<{width}}  {m[name]['median']:>7} {m[name]['unit']}  "
                  f"[{m[name]['min']}-{m[name]['max']}]  (no CostModel field)")
    print(f"wrote {args.out}")
    return 0
