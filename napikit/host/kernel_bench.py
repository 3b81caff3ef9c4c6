"""``napikit kernel-bench``: the real loopback-UDP experiment napikit's model predicts.

A sender thread pinned to one CPU sends 64-byte datagrams from 8 sockets (8 source
ports, so 8 flows for RPS to hash) to one socket read by a receiver pinned to the same
or another CPU, all on 127.0.0.1, with ``rps_cpus`` of ``lo`` set to: off, the
receiver's CPU, the sender's CPU, all CPUs; closed loop and paced. Repetitions are
interleaved over the configurations (A B C D A B C D ...), and every figure is reported
as the median and range over them.

The bench writes ``/sys/class/net/lo/queues/rx-*/rps_cpus`` (so it needs root) and
restores every queue's original text when it ends: normally, on an exception, and on
SIGINT or SIGTERM (:class:`RpsGuard`).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

import attrs
from attrs import frozen

import napikit
from napikit.errors import NapikitError
from napikit.host import procfs
from napikit.host.costfile import check_writable
from napikit.host.facts import host_facts
from napikit.host.procfs import ROOT

FORMAT = "napikit-kernel-bench/1"
FLOWS = 8
PAYLOAD = 64
#: The RPS settings of a configuration, in table order.
RPS_MODES = ("off", "receiver", "sender", "all")
#: Paced rates (per sender, packets/s) of a full run, and of ``--quick``.
RATES = (20_000.0, 100_000.0)
QUICK_RATES = (20_000.0,)
SECONDS, QUICK_SECONDS = 1.0, 0.25
REPS, QUICK_REPS = 5, 3
#: Every run's hard packet cap (the C helper stops at it, or at the duration).
MAX_PACKETS = 20_000_000
NEEDS_ROOT = ("napikit: kernel-bench needs root: it writes /sys/class/net/lo/queues/rx-*/"
              "rps_cpus (and restores it); run it as root, e.g. sudo napikit kernel-bench")

Runner = Callable[["BenchConfig", float], list[dict[str, Any]]]


@frozen
class BenchConfig:
    """One configuration: sender/receiver pairs, the RPS setting, the rate."""

    pairs: tuple[tuple[int, int], ...]
    rps: str
    rate_pps: float | None
    ncpus: int

    @property
    def placement(self) -> str:
        """``same`` (receiver on its sender's CPU) or ``other``."""
        return "same" if all(s == r for s, r in self.pairs) else "other"

    @property
    def rps_cpus(self) -> tuple[int, ...]:
        """The CPUs of the ``rps_cpus`` mask (empty: RPS off)."""
        if self.rps == "off":
            return ()
        if self.rps == "all":
            return tuple(range(self.ncpus))
        side = 1 if self.rps == "receiver" else 0
        return tuple(sorted({p[side] for p in self.pairs}))

    @property
    def name(self) -> str:
        """``other/rps-receiver/closed``, ``same/rps-off/20000pps``, ..."""
        rate = "closed" if self.rate_pps is None else f"{self.rate_pps:.0f}pps"
        return f"{self.placement}/rps-{self.rps}/{rate}"


def plan(cpus: tuple[int, ...], rates: tuple[float, ...]) -> tuple[list[BenchConfig], str]:
    """The configurations for a host with online ``cpus``, and a note on the pairs.

    One sender/receiver pair on the first two CPUs; on 8 CPUs or more, ``ncpus // 4``
    pairs (senders on the first half, receivers on the second), so the CPUs stay
    mostly idle between them. With the receiver on its sender's CPU, "RPS to the
    receiver" and "RPS to the sender" are one setting, run once.
    """
    ncpus = max(cpus) + 1
    if len(cpus) >= 8:
        n = len(cpus) // 4
        half = len(cpus) // 2
        other = tuple((cpus[i], cpus[half + i]) for i in range(n))
        note = f"{len(cpus)} CPUs: {n} sender/receiver pairs run at once"
    elif len(cpus) >= 2:
        other = ((cpus[0], cpus[1]),)
        note = (f"{len(cpus)} CPUs: one sender/receiver pair (several pairs need >= 8 "
                "CPUs)")
    else:
        other = ()
        note = "1 CPU: only the receiver-on-the-sender's-CPU runs"
    same = tuple((s, s) for s, _ in other) or ((cpus[0], cpus[0]),)
    configs = []
    for rate in (None, *rates):
        for pairs in (other, same):
            if not pairs:
                continue
            for rps in RPS_MODES:
                if pairs is same and rps == "sender":
                    continue
                configs.append(BenchConfig(pairs, rps, rate, ncpus))
    return configs, note


# ------------------------------------------------------------------ restoring lo


class RpsGuard:
    """Remembers the ``rps_cpus`` text of every receive queue of ``dev`` and writes it
    back on :meth:`restore`: at exit of the ``with`` block whatever happens, and at once
    on SIGINT or SIGTERM (then KeyboardInterrupt is raised, so the run unwinds)."""

    def __init__(self, root: Path | str = ROOT, dev: str = "lo") -> None:
        self.root, self.dev = root, dev
        self.saved = procfs.rps_cpus(root, dev)
        self._old: dict[int, Any] = {}

    def set(self, cpus: tuple[int, ...]) -> None:
        """Point every receive queue at ``cpus`` (empty: RPS off)."""
        mask = procfs.format_mask(cpus) if cpus else "0"
        for queue in self.saved:
            procfs.write_rps_cpus(queue, mask, self.root, self.dev)

    def restore(self) -> None:
        """Write every queue's original text back; keep going if one write fails."""
        errors = []
        for queue, text in self.saved.items():
            try:
                procfs.write_rps_cpus(queue, text, self.root, self.dev)
            except procfs.HostError as e:
                errors.append(str(e))
        if errors:
            raise procfs.HostError("could not restore rps_cpus: " + "; ".join(errors))

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.restore()
        raise KeyboardInterrupt(f"{signal.Signals(signum).name}: rps_cpus of "
                                f"{self.dev} restored")

    def __enter__(self) -> RpsGuard:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._on_signal)
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.restore()
        finally:
            for sig, handler in self._old.items():
                signal.signal(sig, handler)


# ------------------------------------------------------------------ counters


def snapshot(root: Path | str, ksoftirqd: dict[int, int]) -> dict[str, Any]:
    """The kernel counters one run is measured by, read once."""
    irqs = procfs.interrupts(root)
    snap: dict[str, Any] = {
        "softnet": {c: attrs.asdict(r) for c, r in procfs.softnet_stat(root).items()},
        "CAL": irqs["CAL"],
        "RES": irqs["RES"],
        "NET_RX": procfs.softirqs(root, "NET_RX"),
        "udp": procfs.snmp(root, "Udp"),
        "ctxt": procfs.context_switches(root),
        "ksoftirqd": {},
    }
    for cpu, pid in ksoftirqd.items():
        try:
            t = procfs.task_times(pid, root)
        except procfs.HostError:
            continue
        snap["ksoftirqd"][cpu] = (t.utime_ticks + t.stime_ticks, t.run_ns or 0, t.timeslices or 0)
    return snap


def counters_delta(before: dict[str, Any], after: dict[str, Any], ncpus: int) -> dict[str, Any]:
    """Per-CPU and system-wide differences of two :func:`snapshot` readings."""
    out: dict[str, Any] = {}
    for key in ("processed", "dropped", "time_squeeze", "received_rps"):
        out[key] = [after["softnet"].get(c, {}).get(key, 0) - before["softnet"].get(c, {}).get(
            key, 0) for c in range(ncpus)]
    for key in ("CAL", "RES", "NET_RX"):
        out[key] = [a - b for a, b in zip(after[key], before[key], strict=False)][:ncpus]
    tick_ns = 1e9 / (os.sysconf("SC_CLK_TCK") or 100)
    ks_cpu, ks_runs = [], []
    for c in range(ncpus):
        b, a = before["ksoftirqd"].get(c), after["ksoftirqd"].get(c)
        if a is None or b is None:
            ks_cpu.append(0.0)
            ks_runs.append(0)
            continue
        # schedstat's run time is in ns; stat's ticks only when schedstat is absent.
        ks_cpu.append(float(a[1] - b[1]) if a[1] or b[1] else (a[0] - b[0]) * tick_ns)
        ks_runs.append(a[2] - b[2])
    out["ksoftirqd_cpu_ns"] = ks_cpu
    out["ksoftirqd_runs"] = ks_runs
    out["udp_rcvbuf_errors"] = after["udp"].get("RcvbufErrors", 0) - before["udp"].get(
        "RcvbufErrors", 0)
    out["udp_in_errors"] = after["udp"].get("InErrors", 0) - before["udp"].get("InErrors", 0)
    out["system_context_switches"] = after["ctxt"] - before["ctxt"]
    return out


def udp_runner(config: BenchConfig, seconds: float) -> list[dict[str, Any]]:
    """Run ``config``'s pairs at once with the compiled helper; one dict per pair."""
    import napikit.host._bench as _bench

    def one(pair: tuple[int, int]) -> dict[str, Any]:
        result: dict[str, Any] = _bench.udp_flow(
            pair[0], pair[1], flows=FLOWS, payload=PAYLOAD, seconds=seconds,
            max_packets=MAX_PACKETS, rate_pps=config.rate_pps or 0.0,
        )
        return result

    if len(config.pairs) == 1:
        return [one(config.pairs[0])]
    results: list[dict[str, Any] | BaseException] = [RuntimeError("not run")] * len(
        config.pairs)

    def work(i: int) -> None:
        try:
            results[i] = one(config.pairs[i])
        except BaseException as e:  # noqa: B036 - re-raised in the main thread
            results[i] = e

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(config.pairs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for r in results:
        if isinstance(r, BaseException):
            raise r
    return [r for r in results if isinstance(r, dict)]


def figures(run: dict[str, Any], config: BenchConfig) -> dict[str, float]:
    """The scalar figures of one run (totals over its pairs), per-CPU ones as
    ``name.cpuN``."""
    pairs = run["pairs"]
    wall = max(p["send_wall_ns"] for p in pairs) / 1e9 or 1e-9
    sent = sum(p["sent"] for p in pairs)
    received = sum(p["received_in_window"] for p in pairs)
    d = run["counters"]
    paced = config.rate_pps is not None
    f: dict[str, float] = {
        "sent_pps": sent / wall,
        "delivered_pps": received / wall,
        "socket_drops": float(sum(p["socket_drops"] for p in pairs)),
        "socket_drops_per_sent": sum(p["socket_drops"] for p in pairs) / max(1, sent),
        "udp_rcvbuf_errors": float(d["udp_rcvbuf_errors"]),
        "backlog_drops": float(sum(d["dropped"])),
        "backlog_drops_per_sent": sum(d["dropped"]) / max(1, sent),
        "ipis_cal_per_sent": sum(d["CAL"]) / max(1, sent),
        "received_rps_per_sent": sum(d["received_rps"]) / max(1, sent),
        "time_squeeze_per_sent": sum(d["time_squeeze"]) / max(1, sent),
        "ksoftirqd_cpu_share": sum(d["ksoftirqd_cpu_ns"]) / (wall * 1e9) / config.ncpus,
        "receiver_wakeups_per_delivered":
            sum(p["receiver_nvcsw"] for p in pairs) / max(1, received),
        "context_switches_per_sent": sum(
            p["sender_nvcsw"] + p["sender_nivcsw"] + p["receiver_nvcsw"] + p["receiver_nivcsw"]
            for p in pairs) / max(1, sent),
        # Paced: the sender also spins between packets, so its CPU per packet is the
        # time inside sendto; closed loop: its thread CPU time.
        "sender_ns_per_packet": sum(
            p["send_call_ns"] if paced else p["sender_cpu_ns"] for p in pairs) / max(1, sent),
        "receiver_cpu_ns_per_delivered":
            sum(p["receiver_cpu_ns"] for p in pairs) / max(1, received),
        "ipis_cal": float(sum(d["CAL"])),
        "received_rps": float(sum(d["received_rps"])),
        "packets_per_rps_kick": sent / sum(d["received_rps"]) if sum(d["received_rps"]) else 0.0,
        "cal_per_rps_kick":
            sum(d["CAL"]) / sum(d["received_rps"]) if sum(d["received_rps"]) else 0.0,
        "time_squeeze": float(sum(d["time_squeeze"])),
        "ksoftirqd_cpu_ms": sum(d["ksoftirqd_cpu_ns"]) / 1e6,
    }
    for key in ("processed", "dropped", "time_squeeze", "received_rps", "CAL", "RES",
                "NET_RX", "ksoftirqd_cpu_ns", "ksoftirqd_runs"):
        for cpu, v in enumerate(d[key]):
            f[f"{key}.cpu{cpu}"] = float(v)
    return f


def summarize(values: list[float]) -> dict[str, float]:
    """Median, min and max of one figure over the repetitions."""
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


# ------------------------------------------------------------------ the bench


def run_bench(
    configs: list[BenchConfig], reps: int, seconds: float, root: Path | str = ROOT,
    runner: Runner = udp_runner, progress: Callable[[str], None] | None = None,
    settle_s: float = 0.02,
) -> list[dict[str, Any]]:
    """Run every configuration ``reps`` times, interleaved; one entry per
    configuration with its raw runs and summarized figures. ``rps_cpus`` of ``lo`` is
    restored at the end, on an exception and on SIGINT/SIGTERM."""
    ncpus = max(c.ncpus for c in configs)
    ksoftirqd = procfs.ksoftirqd_pids(root)
    runs: dict[str, list[dict[str, Any]]] = {c.name: [] for c in configs}
    with RpsGuard(root) as guard:
        for rep in range(reps):
            for config in configs:
                if progress:
                    progress(f"[rep {rep + 1}/{reps}] {config.name}")
                guard.set(config.rps_cpus)
                time.sleep(settle_s)
                before = snapshot(root, ksoftirqd)
                pairs = runner(config, seconds)
                after = snapshot(root, ksoftirqd)
                runs[config.name].append(
                    {"pairs": pairs, "counters": counters_delta(before, after, ncpus)})
    out = []
    for config in configs:
        per_run = [figures(r, config) for r in runs[config.name]]
        names = list(per_run[0]) if per_run else []
        out.append({
            "name": config.name,
            "placement": config.placement,
            "pairs": [list(p) for p in config.pairs],
            "rps": config.rps,
            "rps_cpus": list(config.rps_cpus),
            "rate_pps": config.rate_pps,
            "figures": {n: summarize([f[n] for f in per_run]) for n in names},
            "runs": runs[config.name],
        })
    return out


def bench(
    quick: bool = False, seconds: float | None = None, reps: int | None = None,
    root: Path | str = ROOT, runner: Runner = udp_runner, euid: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """The whole kernel-bench document (what ``real.json`` holds)."""
    if (os.geteuid() if euid is None else euid) != 0:
        raise NeedsRoot(NEEDS_ROOT)
    facts = host_facts(root)
    cpus = tuple(facts["online_cpus"])
    configs, note = plan(cpus, QUICK_RATES if quick else RATES)
    seconds = seconds or (QUICK_SECONDS if quick else SECONDS)
    reps = reps or (QUICK_REPS if quick else REPS)
    started = time.time()
    results = run_bench(configs, reps, seconds, root, runner, progress)
    return {
        "format": FORMAT,
        "napikit": napikit.__version__,
        "started_unix": round(started),
        "seconds": seconds,
        "repetitions": reps,
        "flows": FLOWS,
        "payload": PAYLOAD,
        "pairs_note": note,
        "validates": facts["validates"],
        "host": facts,
        "configurations": results,
    }


class NeedsRoot(NapikitError):
    """kernel-bench was started without root."""


def _format_summary(doc: dict[str, Any]) -> str:
    """Medians per configuration, with the min-max of the packet rates."""
    def rate(f: dict[str, float]) -> str:
        return f"{f['median']:,.0f} ({f['min'] / 1e3:,.0f}k-{f['max'] / 1e3:,.0f}k)"

    rows = [["configuration", "sent/s (min-max)", "delivered/s (min-max)", "sock drops",
             "backlog drops", "CAL", "rx_rps", "send ns/pkt"]]
    for c in doc["configurations"]:
        f = c["figures"]
        rows.append([c["name"], rate(f["sent_pps"]), rate(f["delivered_pps"]),
                     *(f"{f[k]['median']:,.0f}" for k in (
                         "socket_drops", "backlog_drops", "ipis_cal", "received_rps",
                         "sender_ns_per_packet"))])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) if i == 0 else cell.rjust(w)
                               for i, (cell, w) in enumerate(zip(r, widths, strict=True)))
                     for r in rows)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``napikit kernel-bench``."""
    parser.add_argument("--out", type=Path, default=Path("real.json"), metavar="FILE",
                        help="where to write the results (default real.json)")
    parser.add_argument("--quick", action="store_true",
                        help=f"{QUICK_REPS} repetitions of {QUICK_SECONDS:g} s, one paced "
                        "rate (a check that it works, not a measurement)")
    parser.add_argument("--seconds", type=_seconds, metavar="S",
                        help=f"length of each run (default {SECONDS:g}, quick "
                        f"{QUICK_SECONDS:g}; at most 60)")
    parser.add_argument("--reps", type=_reps, metavar="N",
                        help=f"repetitions (default {REPS}, quick {QUICK_REPS})")


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.01 <= value <= 60:
        raise argparse.ArgumentTypeError(f"must be a number of seconds from 0.01 to 60 "
                                         f"(got {text!r})")
    return value


def _reps(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= 100:
        raise argparse.ArgumentTypeError(f"must be an integer from 1 to 100 (got {text!r})")
    return value


def main(args: argparse.Namespace, euid: int | None = None) -> int:
    """``napikit kernel-bench``: run the bench, write ``--out``, print a summary."""
    if (os.geteuid() if euid is None else euid) != 0:
        print(NEEDS_ROOT, file=sys.stderr)
        return 2
    check_writable(args.out)
    doc = bench(args.quick, args.seconds, getattr(args, "reps", None), euid=0,
                progress=lambda s: print(s, file=sys.stderr, flush=True))
    try:
        args.out.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
    except OSError as e:
        raise NapikitError(f"cannot write {args.out}: {e.strerror}") from None
    print(doc["pairs_note"])
    why = (" (no thread_backlog_napi or threadirqs on the kernel command line, not "
           "PREEMPT_RT)" if doc["validates"] == ["softirq-ipi"] else "")
    print("this host validates the policies: " + ", ".join(doc["validates"]) + why)
    print(_format_summary(doc))
    now = {q: v.strip() for q, v in procfs.rps_cpus(ROOT).items()}
    print(f"rps_cpus of lo: {doc['host']['lo_rps_cpus']} before, {now} now; wrote {args.out}")
    return 0
