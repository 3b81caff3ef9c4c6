"""Results of a run: frozen attrs values, rendered as JSON, text and softnet_stat."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import attrs
from attrs import frozen

from napikit.errors import NapikitError


@frozen
class SoftnetStat:
    """One CPU's row of ``/proc/net/softnet_stat`` (``softnet_seq_show``). The file
    shows online CPUs only; an offline CPU's counters are kept for its return."""

    cpu: int
    online: bool
    processed: int
    dropped: int
    time_squeeze: int
    received_rps: int
    flow_limit_count: int
    input_qlen: int
    process_qlen: int

    @property
    def backlog_len(self) -> int:
        """Column 12: ``input_pkt_queue`` plus ``process_queue`` length."""
        return self.input_qlen + self.process_qlen

    def line(self) -> str:
        """The row as the kernel prints it: 15 ``%08x`` fields."""
        fields = [
            self.processed, self.dropped, self.time_squeeze, 0, 0, 0, 0, 0, 0,
            self.received_rps, self.flow_limit_count, self.backlog_len, self.cpu,
            self.input_qlen, self.process_qlen,
        ]
        return " ".join(f"{v & 0xFFFFFFFF:08x}" for v in fields)


@frozen
class Latency:
    """A latency distribution, from a fixed-memory log-linear histogram (~1.6 %)."""

    count: int
    mean_ns: int
    p50_ns: int
    p90_ns: int
    p99_ns: int
    p999_ns: int
    max_ns: int


def _bucket_tuple(value: Any) -> tuple[tuple[int, int, int], ...]:
    return tuple(tuple(b) for b in value)  # type: ignore[misc]


@frozen
class Histogram:
    """A latency histogram as the core keeps it (log-linear: exact below 128 ns, then 64
    buckets per power of two): its non-empty buckets ``(lower_ns, upper_ns, count)``,
    upper bound exclusive, with the exact count, sum and maximum. Histograms of several
    runs (a sweep's seeds) :meth:`merge` into one distribution."""

    count: int
    sum_ns: int
    max_ns: int
    buckets: tuple[tuple[int, int, int], ...] = attrs.field(converter=_bucket_tuple)

    @classmethod
    def merge(cls, histograms: Sequence[Histogram]) -> Histogram:
        """The histogram of every value the ``histograms`` hold."""
        counts: dict[tuple[int, int], int] = {}
        for h in histograms:
            for lo, hi, n in h.buckets:
                counts[lo, hi] = counts.get((lo, hi), 0) + n
        return cls(sum(h.count for h in histograms), sum(h.sum_ns for h in histograms),
                   max((h.max_ns for h in histograms), default=0),
                   tuple((lo, hi, n) for (lo, hi), n in sorted(counts.items())))

    def quantile(self, q: float) -> int:
        """The ``q`` quantile (0 < q <= 1) as the core reports it: the midpoint of the
        bucket holding it, at most the exact maximum."""
        if not self.count:
            return 0
        need = -(-self.count * round(q * 1000) // 1000)
        cum = 0
        for lo, hi, n in self.buckets:
            cum += n
            if cum >= need:
                return min((lo + hi) // 2 if hi > lo + 1 else lo, self.max_ns)
        return self.max_ns

    def summary(self) -> Latency:
        """The :class:`Latency` figures of this histogram."""
        mean = abs(self.sum_ns) // self.count if self.count else 0
        return Latency(count=self.count, mean_ns=mean if self.sum_ns >= 0 else -mean,
                       p50_ns=self.quantile(0.5), p90_ns=self.quantile(0.9),
                       p99_ns=self.quantile(0.99), p999_ns=self.quantile(0.999),
                       max_ns=self.max_ns)


@frozen
class CpuTime:
    """One CPU's time by context, in simulated ns. ``sched`` is context-switch time,
    ``cpuhp`` hotplug work done on this CPU for another (``dev_cpu_dead``), ``offline``
    the time the CPU was not online."""

    hardirq: int
    softirq: int
    ksoftirqd: int
    backlog_thread: int
    irq_thread: int
    application: int
    sched: int
    cpuhp: int
    offline: int
    idle: int


#: Task kinds whose job is not softirq work: softirq time charged to them is the
#: "punished task" time of the kernel change's argument.
APPLICATION_TASKS = frozenset({"sender", "receiver", "cyclictest"})


@frozen
class TaskStat:
    """One task at the end of the run. ``runtime_ns`` is its own work; ``softirq_ns``
    the softirq work that ran while it was the current task: softirqs an interrupt
    exit ran on top of it, or its own ``local_bh_enable`` ran (ksoftirqd: its job)."""

    name: str  #: ``comm``: ``ksoftirqd/1``, ``backlog_napi/1``, ``udp-recv/0``, ...
    kind: str  #: sender, receiver, ksoftirqd, backlog_napi, irq_thread, cyclictest, stopper
    cpu: int  #: the CPU it is on (tasks move when their CPU goes offline)
    state: str  #: running, runnable, sleeping, waking, dead, parked or absent
    runtime_ns: int
    softirq_ns: int
    #: Times ``__schedule`` switched it out, blocking or preempted (its ``nvcsw`` +
    #: ``nivcsw``, as ``getrusage`` reports them).
    switches: int


@frozen
class HotplugRecord:
    """What became of one :class:`~napikit.config.CpuHotplug` request."""

    cpu: int
    online: bool
    requested_ns: int
    done_ns: int | None  #: when it completed; ``None``: the run ended first
    reinjected: int  #: packets ``dev_cpu_dead`` re-injected (going offline)


@frozen
class Drops:
    """Packets dropped, by reason."""

    backlog: int  #: ``input_pkt_queue`` above ``netdev_max_backlog``
    flow_limit: int  #: ``skb_flow_limit``
    socket: int  #: UDP receive buffer full
    nic_ring: int  #: device ring full ahead of a forced-threaded handler

    @property
    def total(self) -> int:
        return self.backlog + self.flow_limit + self.socket + self.nic_ring


def _deltas(cumulative: list[int]) -> tuple[int, ...]:
    return tuple(b - a for a, b in zip([0, *cumulative[:-1]], cumulative, strict=True))


#: The counters of a :class:`Samples` row, per interval.
_SAMPLE_COUNTERS = ("arrived", "delivered", "drops", "ipis", "wakeup_ipis", "thread_kicks",
                    "context_switches")


@frozen
class CpuSamples:
    """One CPU over the run: its backlog's length (``input_pkt_queue`` plus
    ``process_queue``) at each sample, and its CPU time by context in each interval
    (ns; time is counted when the step that spent it ends, as in :class:`CpuTime`)."""

    backlog_len: tuple[int, ...]
    cpu_time: dict[str, tuple[int, ...]]


@frozen
class Samples:
    """The time series :attr:`Config.sample_interval_ns` asks for: interval ``i`` ends at
    ``time_ns[i]``, and each counter is what happened in it. ``truncated``: the series
    stopped early because its buffer (2**21 values) was full."""

    interval_ns: int
    truncated: bool
    time_ns: tuple[int, ...]
    arrived: tuple[int, ...]
    delivered: tuple[int, ...]
    drops: tuple[int, ...]
    ipis: tuple[int, ...]
    wakeup_ipis: tuple[int, ...]
    thread_kicks: tuple[int, ...]
    context_switches: tuple[int, ...]
    cpus: tuple[CpuSamples, ...]

    @classmethod
    def from_raw(cls, raw: dict[str, Any]) -> Samples:
        """From the core's columns of cumulative counters."""
        counters = {k: _deltas(raw[k]) for k in _SAMPLE_COUNTERS}
        cpus = tuple(
            CpuSamples(tuple(c["backlog_len"]),
                       {k: _deltas(v) for k, v in c.items() if k != "backlog_len"})
            for c in raw["cpus"])
        return cls(raw["interval_ns"], raw["truncated"], tuple(raw["time_ns"]),
                   cpus=cpus, **counters)

    def rows(self) -> list[dict[str, int]]:
        """One dict per interval: the counters, then ``cpuN.backlog_len`` and
        ``cpuN.<context>`` for every CPU."""
        out = []
        for i, t in enumerate(self.time_ns):
            row = {"time_ns": t}
            for name in _SAMPLE_COUNTERS:
                row[name] = getattr(self, name)[i]
            for n, c in enumerate(self.cpus):
                row[f"cpu{n}.backlog_len"] = c.backlog_len[i]
                for ctx, values in c.cpu_time.items():
                    row[f"cpu{n}.{ctx}"] = values[i]
            out.append(row)
        return out

    def frame(self) -> Any:
        """:meth:`rows` as a pandas DataFrame (``pip install 'napikit[analysis]'``)."""
        try:
            import pandas as pd
        except ImportError:
            raise NapikitError("Samples.frame() needs pandas: "
                               "pip install 'napikit[analysis]'") from None
        return pd.DataFrame(self.rows())


@frozen
class Result:
    """What a run did. ``delivered`` counts packets that reached their consumer: the
    receiving thread's ``recvmsg`` for loopback UDP, the protocol receive for NIC
    traffic. ``delivered_pps`` is the rate while input was offered."""

    napikit_version: str
    policy: str
    policy_package: str
    seed: int
    #: The configuration run, :func:`napikit.config_dict` (``Config.to_dict`` of its
    #: canonical form): complete, so :func:`napikit.replay` can rerun it.
    config: dict[str, Any]
    #: sha256 (hex) of ``config`` and ``napikit_version``
    #: (:func:`napikit.config_fingerprint`): equal for equal configurations, in every
    #: process; different for any change to a field or to napikit's version.
    fingerprint: str
    sim_time_ns: int
    input_duration_ns: int
    quiescent: bool
    events: int
    arrived: int
    delivered: int
    delivered_pps: float
    queued: int
    drops: Drops
    softnet: tuple[SoftnetStat, ...]
    cpu_time: tuple[CpuTime, ...]
    latency_enqueue: Latency
    latency_send_recv: Latency
    #: Wake-up latency of each :class:`~napikit.config.Cyclictest` task, in order.
    cyclictest_latency: tuple[Latency, ...]
    tasks: tuple[TaskStat, ...]
    hotplug: tuple[HotplugRecord, ...]
    #: Packets ``dev_cpu_dead`` passed to ``netif_rx`` again (they are not counted in
    #: ``arrived`` twice).
    reinjected: int
    #: RPS IPIs sent (``net_rps_send_ipi``).
    ipis: int
    #: RPS kicks that found their target idling in a polling state and sent no
    #: interrupt (``set_nr_if_polling``; ``KernelParams.cpuidle``).
    polled_kicks: int
    #: Function-call IPIs of remote wake-ups (``ttwu_queue_wakelist``); with ``ipis``
    #: and ``defer_ipis``, what ``/proc/interrupts`` counts as CAL.
    wakeup_ipis: int
    #: Defer-list csds (``kick_defer_list_purge``) sent with
    #: ``KernelParams.udp_skb_defer_free``; also CAL interrupts on a real host.
    defer_ipis: int
    thread_kicks: int
    backlog_thread_wakeups: int
    ksoftirqd_wakeups: int
    context_switches: int
    involuntary_switches: int
    rt_idle_softirq_warnings: int
    #: Decisions that kicked nothing (``Action.NONE``).
    lost_kicks: int
    reordered: int
    wrong_cpu: int
    unpolled_backlogs: int
    #: The time series, when :attr:`Config.sample_interval_ns` asked for one.
    samples: Samples | None = None
    #: The latency histograms behind ``latency_enqueue``, ``latency_send_recv`` and
    #: each ``cyclictest_latency`` (``"enqueue"``, ``"send_recv"``, ``"cyclictest/N"``).
    histograms: dict[str, Histogram] = attrs.field(factory=dict)

    @classmethod
    def from_raw(cls, raw: dict[str, Any], **meta: Any) -> Result:
        window = raw["input_duration_ns"]
        return cls(
            sim_time_ns=raw["sim_time_ns"],
            input_duration_ns=window,
            quiescent=raw["quiescent"],
            events=raw["events"],
            arrived=raw["arrived"],
            delivered=raw["delivered"],
            delivered_pps=round(raw["delivered_in_window"] * 1e9 / window, 3) if window else 0.0,
            queued=raw["queued"],
            drops=Drops(**raw["drops"]),
            softnet=tuple(SoftnetStat(**row) for row in raw["softnet"]),
            cpu_time=tuple(CpuTime(**row) for row in raw["cpu_time"]),
            latency_enqueue=Latency(**raw["latency_enqueue"]),
            latency_send_recv=Latency(**raw["latency_send_recv"]),
            cyclictest_latency=tuple(Latency(**h) for h in raw["cyclictest_latency"]),
            tasks=tuple(TaskStat(**t) for t in raw["tasks"]),
            hotplug=tuple(HotplugRecord(**h) for h in raw["hotplug"]),
            reinjected=raw["reinjected"],
            samples=Samples.from_raw(raw["samples"]) if raw.get("samples") else None,
            histograms={k: Histogram(**h) for k, h in raw.get("histograms", {}).items()},
            **{k: raw[k] for k in (
                "ipis", "polled_kicks", "wakeup_ipis", "defer_ipis", "thread_kicks",
                "backlog_thread_wakeups", "ksoftirqd_wakeups",
                "context_switches", "involuntary_switches", "rt_idle_softirq_warnings",
                "lost_kicks", "reordered", "wrong_cpu", "unpolled_backlogs",
            )},
            **meta,
        )

    @property
    def conserved(self) -> bool:
        """Every packet that arrived was delivered, dropped with a reason, or is queued."""
        return self.arrived == self.delivered + self.drops.total + self.queued

    def softnet_stat(self) -> str:
        """The text of ``/proc/net/softnet_stat`` at the end of the run (online CPUs)."""
        return "".join(row.line() + "\n" for row in self.softnet if row.online)

    @property
    def online_cpus(self) -> tuple[int, ...]:
        """The CPUs online at the end of the run."""
        return tuple(row.cpu for row in self.softnet if row.online)

    def threads(self, kind: str) -> dict[int, str]:
        """Per-CPU kernel threads of ``kind`` (``ksoftirqd``, ``backlog_napi``) that exist
        at the end: CPU -> state (``parked`` for an offline CPU's)."""
        return {t.cpu: t.state for t in self.tasks if t.kind == kind and t.state != "absent"}

    def punished_softirq_ns(self, cpu: int | None = None) -> int:
        """Softirq time charged to application tasks (senders, receivers, cyclictest),
        on ``cpu`` or on all CPUs: work done for others in whichever task was running.
        A loopback sender's own receive path counts too: the kernel charges it there."""
        return sum(
            t.softirq_ns for t in self.tasks
            if t.kind in APPLICATION_TASKS and (cpu is None or t.cpu == cpu)
        )

    def to_dict(self) -> dict[str, Any]:
        """Every field as plain data (what :meth:`to_json` writes)."""
        return attrs.asdict(self)

    def to_json(self) -> str:
        """Deterministic JSON: same configuration and seed, byte-identical text."""
        return json.dumps(self.to_dict(), sort_keys=True, indent=2) + "\n"

    def summary(self) -> str:
        """A short human-readable report."""
        lat = self.latency_send_recv if self.latency_send_recv.count else self.latency_enqueue
        which = "send->recv" if self.latency_send_recv.count else "enqueue->delivery"
        busy = [
            f"cpu{i}: " + (", ".join(
                f"{k} {v / max(1, self.sim_time_ns):.0%}"
                for k, v in attrs.asdict(t).items() if k not in ("idle", "offline") and v
            ) or "idle")
            for i, t in enumerate(self.cpu_time)
        ]
        lines = [
            f"policy {self.policy} ({self.policy_package}), seed {self.seed}",
            f"packets: {self.arrived} arrived, {self.delivered} delivered, "
            f"{self.drops.total} dropped (backlog {self.drops.backlog}, flow limit "
            f"{self.drops.flow_limit}, socket {self.drops.socket}, nic ring "
            f"{self.drops.nic_ring}), {self.queued} queued",
            f"delivered: {self.delivered_pps:,.0f} packets/s over "
            f"{self.input_duration_ns / 1e6:.3f} ms of input",
            f"latency {which}: p50 {lat.p50_ns / 1e3:.2f} us, p99 {lat.p99_ns / 1e3:.2f} us, "
            f"p99.9 {lat.p999_ns / 1e3:.2f} us, max {lat.max_ns / 1e3:.2f} us",
            f"IPIs {self.ipis}, backlog thread wake-ups {self.backlog_thread_wakeups}, "
            f"ksoftirqd wake-ups {self.ksoftirqd_wakeups}, context switches "
            f"{self.context_switches} ({self.involuntary_switches} involuntary)",
            "cpu time: " + ("; ".join(busy) if busy else "-"),
            f"softirq time charged to application tasks: "
            f"{self.punished_softirq_ns() / 1e6:.3f} ms",
        ]
        lines += [
            f"cyclictest/{i}: wake-up latency p50 {c.p50_ns / 1e3:.2f} us, "
            f"p99 {c.p99_ns / 1e3:.2f} us, max {c.max_ns / 1e3:.2f} us ({c.count} wake-ups)"
            for i, c in enumerate(self.cyclictest_latency)
        ]
        lines += [
            f"hotplug: cpu{h.cpu} {'online' if h.online else 'offline'} requested at "
            f"{h.requested_ns / 1e6:.3f} ms, "
            + (f"done at {h.done_ns / 1e6:.3f} ms, {h.reinjected} packets re-injected"
               if h.done_ns is not None else "not done when the run ended")
            for h in self.hotplug
        ]
        return "\n".join(lines)
