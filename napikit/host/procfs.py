"""Readers of the kernel's counters and settings under ``/proc`` and ``/sys``.

Every reader takes ``root``, the directory that stands for ``/`` (the real one by
default), so tests run them against a fake tree of recorded files. Each docstring names
the kernel code that prints the numbers. A file that is missing or unreadable raises
:class:`HostError` naming it; readers of optional facts return ``None`` instead.
"""

from __future__ import annotations

import gzip
import os
import re
from pathlib import Path

from attrs import frozen

from napikit.errors import NapikitError

ROOT = Path("/")


class HostError(NapikitError):
    """A host file napikit needs could not be read or parsed (the message names it)."""


def _path(root: Path | str, rel: str) -> Path:
    return Path(root) / rel.lstrip("/")


def read_text(root: Path | str, rel: str) -> str:
    """The text of ``/rel`` under ``root``; :class:`HostError` if it cannot be read."""
    path = _path(root, rel)
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise HostError(f"cannot read {path}: {getattr(e, 'strerror', None) or e}") from None


def read_optional(root: Path | str, rel: str) -> str | None:
    """The stripped text of ``/rel`` under ``root``, or ``None`` if it cannot be read."""
    try:
        return _path(root, rel).read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None


def _int(text: str, what: str, base: int = 10) -> int:
    try:
        return int(text, base)
    except ValueError:
        raise HostError(f"{what}: not a number: {text!r}") from None


# ------------------------------------------------------------------ CPU masks


def parse_cpu_list(text: str) -> tuple[int, ...]:
    """``0-3,8`` (``cpulist_parse``, ``/sys/devices/system/cpu/online``) as CPU numbers."""
    cpus: list[int] = []
    for part in text.strip().split(","):
        if not part:
            continue
        lo, _, hi = part.partition("-")
        cpus.extend(range(_int(lo, "cpu list"), _int(hi or lo, "cpu list") + 1))
    return tuple(cpus)


def parse_mask(text: str) -> tuple[int, ...]:
    """A hex CPU mask as ``bitmap_print_to_pagebuf`` writes it (``00000000,00000003``)."""
    digits = text.strip().replace(",", "")
    value = _int(digits or "0", "cpu mask", 16)
    return tuple(i for i in range(value.bit_length()) if value >> i & 1)


def format_mask(cpus: tuple[int, ...] | list[int]) -> str:
    """CPU numbers as a hex mask ``rps_cpus`` accepts (``bitmap_parse``): ``3`` for 0,1."""
    value = 0
    for c in cpus:
        value |= 1 << c
    return f"{value:x}"


# ------------------------------------------------------------------ softnet_stat


@frozen
class SoftnetRow:
    """One CPU's row of ``/proc/net/softnet_stat``."""

    cpu: int
    processed: int
    dropped: int
    time_squeeze: int
    received_rps: int
    flow_limit_count: int


def softnet_stat(root: Path | str = ROOT) -> dict[int, SoftnetRow]:
    """``/proc/net/softnet_stat`` by CPU: ``softnet_seq_show`` in
    ``net/core/net-procfs.c`` prints one ``%08x`` row per online CPU (column 1
    processed, 2 dropped, 3 time_squeeze, 10 received_rps, 11 flow_limit_count, 13 the
    CPU since 5.13; older kernels lack it and rows are in CPU order)."""
    rows: dict[int, SoftnetRow] = {}
    for i, line in enumerate(read_text(root, "/proc/net/softnet_stat").splitlines()):
        f = [_int(x, "softnet_stat", 16) for x in line.split()]
        if len(f) < 11:
            raise HostError(f"softnet_stat: row {i} has {len(f)} fields, expected >= 11")
        cpu = f[12] if len(f) >= 13 else i
        rows[cpu] = SoftnetRow(cpu, f[0], f[1], f[2], f[9], f[10])
    return rows


# ------------------------------------------------------------------ interrupts


def interrupts(root: Path | str = ROOT, names: tuple[str, ...] = ("CAL", "RES")) -> dict[
    str, tuple[int, ...]
]:
    """Per-CPU counts of the named rows of ``/proc/interrupts``: ``show_interrupts``
    (``kernel/irq/proc.c``) and, for the architecture rows, ``arch_show_interrupts``
    (``arch/x86/kernel/irq.c``): CAL counts ``irq_call_count``
    (``sysvec_call_function_single`` and ``_function``), RES ``irq_resched_count``
    (``sysvec_reschedule_ipi``). A row that is absent is all zeros."""
    lines = read_text(root, "/proc/interrupts").splitlines()
    if not lines:
        raise HostError("/proc/interrupts is empty")
    ncpus = len(lines[0].split())
    out = {name: (0,) * ncpus for name in names}
    for line in lines[1:]:
        label, _, rest = line.partition(":")
        label = label.strip()
        if label in names:
            fields = rest.split()[:ncpus]
            out[label] = tuple(_int(x, f"/proc/interrupts {label}") for x in fields)
    return out


def softirqs(root: Path | str = ROOT, name: str = "NET_RX") -> tuple[int, ...]:
    """Per-CPU count of softirq vector ``name`` from ``/proc/softirqs``:
    ``show_softirqs`` (``fs/proc/softirqs.c``) prints ``kstat_softirqs_cpu``, raised
    by ``__raise_softirq_irqoff`` and counted at each run in ``handle_softirqs``."""
    for line in read_text(root, "/proc/softirqs").splitlines():
        label, _, rest = line.partition(":")
        if label.strip() == name:
            return tuple(_int(x, f"/proc/softirqs {name}") for x in rest.split())
    raise HostError(f"/proc/softirqs has no {name} row")


def context_switches(root: Path | str = ROOT) -> int:
    """All context switches since boot: the ``ctxt`` line of ``/proc/stat``
    (``show_stat`` in ``fs/proc/stat.c``, ``nr_context_switches``)."""
    for line in read_text(root, "/proc/stat").splitlines():
        if line.startswith("ctxt "):
            return _int(line.split()[1], "/proc/stat ctxt")
    raise HostError("/proc/stat has no ctxt line")


# ------------------------------------------------------------------ tasks


@frozen
class TaskTimes:
    """A task's CPU time and scheduling counts."""

    comm: str
    utime_ticks: int
    stime_ticks: int
    #: ``/proc/<pid>/schedstat``: time on CPU (ns), waiting (ns), and times scheduled.
    run_ns: int | None
    wait_ns: int | None
    timeslices: int | None


def task_times(pid: int, root: Path | str = ROOT, tid: int | None = None) -> TaskTimes:
    """``/proc/<pid>/stat`` (``do_task_stat`` in ``fs/proc/array.c``: fields 14 utime
    and 15 stime, in USER_HZ ticks) and ``/proc/<pid>/schedstat`` (``proc_pid_schedstat``
    in ``fs/proc/base.c``: ``se.sum_exec_runtime``, ``sched_info.run_delay``,
    ``sched_info.pcount``); ``tid``: that thread's ``task/<tid>`` files."""
    base = f"/proc/{pid}" + (f"/task/{tid}" if tid is not None else "")
    text = read_text(root, f"{base}/stat")
    # comm may hold spaces and parentheses: it ends at the last ')'.
    head, _, tail = text.rpartition(")")
    comm = head.partition("(")[2]
    rest = tail.split()
    if len(rest) < 13:
        raise HostError(f"{base}/stat: too few fields")
    utime, stime = _int(rest[11], "stat utime"), _int(rest[12], "stat stime")
    sched = read_optional(root, f"{base}/schedstat")
    run = wait = slices = None
    if sched:
        parts = sched.split()
        if len(parts) >= 3:
            run, wait, slices = (_int(p, "schedstat") for p in parts[:3])
    return TaskTimes(comm, utime, stime, run, wait, slices)


def task_switches(pid: int, root: Path | str = ROOT, tid: int | None = None) -> tuple[int, int]:
    """``(voluntary, nonvoluntary)`` context switches from ``/proc/<pid>/status``
    (``task_context_switch_counts`` in ``fs/proc/array.c``: ``nvcsw``, ``nivcsw``)."""
    base = f"/proc/{pid}" + (f"/task/{tid}" if tid is not None else "")
    values = {}
    for line in read_text(root, f"{base}/status").splitlines():
        key, _, value = line.partition(":")
        if key in ("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches"):
            values[key] = _int(value.strip(), key)
    return (values.get("voluntary_ctxt_switches", 0),
            values.get("nonvoluntary_ctxt_switches", 0))


_KSOFTIRQD = re.compile(r"ksoftirqd/(\d+)")


def ksoftirqd_pids(root: Path | str = ROOT) -> dict[int, int]:
    """CPU -> pid of ``ksoftirqd/N``, the smpboot threads of ``softirq_threads``
    (``kernel/softirq.c``), found by their ``/proc/<pid>/comm``."""
    found: dict[int, int] = {}
    proc = _path(root, "/proc")
    try:
        entries = list(os.scandir(proc))
    except OSError as e:
        raise HostError(f"cannot list {proc}: {e.strerror}") from None
    for entry in entries:
        if not entry.name.isdigit():
            continue
        comm = read_optional(root, f"/proc/{entry.name}/comm")
        m = _KSOFTIRQD.fullmatch(comm or "")
        if m:
            found[int(m[1])] = int(entry.name)
    return dict(sorted(found.items()))


# ------------------------------------------------------------------ SNMP


def snmp(root: Path | str = ROOT, proto: str = "Udp") -> dict[str, int]:
    """The ``proto`` counters of ``/proc/net/snmp``: ``snmp_seq_show_tcp_udp`` in
    ``net/ipv4/proc.c`` (Udp: ``RcvbufErrors`` counts ``__udp_queue_rcv_skb`` drops at a
    full receive buffer, ``InErrors`` includes them)."""
    lines = [ln for ln in read_text(root, "/proc/net/snmp").splitlines()
             if ln.startswith(proto + ":")]
    if len(lines) < 2:
        raise HostError(f"/proc/net/snmp has no {proto} rows")
    names, values = lines[0].split()[1:], lines[1].split()[1:]
    return {n: _int(v, f"snmp {proto} {n}") for n, v in zip(names, values, strict=False)}


# ------------------------------------------------------------------ RPS and RFS


def rx_queues(root: Path | str = ROOT, dev: str = "lo") -> tuple[str, ...]:
    """The receive queues of ``dev`` (``net/core/net-sysfs.c``, ``rx_queue_add_kobject``)."""
    base = _path(root, f"/sys/class/net/{dev}/queues")
    try:
        names = sorted(p.name for p in base.iterdir() if p.name.startswith("rx-"))
    except OSError as e:
        raise HostError(f"cannot list {base}: {e.strerror}") from None
    return tuple(names)


def rps_cpus(root: Path | str = ROOT, dev: str = "lo") -> dict[str, str]:
    """Queue -> the exact text of its ``rps_cpus`` (``show_rps_map`` in
    ``net/core/net-sysfs.c``), kept verbatim so it can be written back."""
    return {q: read_text(root, f"/sys/class/net/{dev}/queues/{q}/rps_cpus")
            for q in rx_queues(root, dev)}


def write_rps_cpus(queue: str, mask: str, root: Path | str = ROOT, dev: str = "lo") -> None:
    """Write ``mask`` to a queue's ``rps_cpus`` (``store_rps_map``, which needs
    CAP_NET_ADMIN)."""
    path = _path(root, f"/sys/class/net/{dev}/queues/{queue}/rps_cpus")
    try:
        with open(path, "w") as f:
            f.write(mask.strip() + "\n")
    except OSError as e:
        raise HostError(f"cannot write {path}: {e.strerror}") from None


def rps_flow_cnt(root: Path | str = ROOT, dev: str = "lo") -> dict[str, int | None]:
    """Queue -> ``rps_flow_cnt`` (``show_rps_dev_flow_table_cnt``: RFS flow table size)."""
    return {q: _opt_int(read_optional(root, f"/sys/class/net/{dev}/queues/{q}/rps_flow_cnt"))
            for q in rx_queues(root, dev)}


def _opt_int(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


#: The ``net.core`` sysctls that shape the backlog (``net/core/sysctl_net_core.c``).
NET_CORE_SYSCTLS = (
    "netdev_max_backlog", "dev_weight", "dev_weight_rx_bias", "netdev_budget",
    "netdev_budget_usecs", "rps_sock_flow_entries", "rmem_default", "rmem_max",
    "flow_limit_cpu_bitmap", "rps_default_mask",
)


def net_core_sysctls(root: Path | str = ROOT) -> dict[str, str | None]:
    """``/proc/sys/net/core/*`` values of :data:`NET_CORE_SYSCTLS` (``None``: absent)."""
    return {name: read_optional(root, f"/proc/sys/net/core/{name}") for name in NET_CORE_SYSCTLS}


# ------------------------------------------------------------------ CPUs, idle, kernel


def online_cpus(root: Path | str = ROOT) -> tuple[int, ...]:
    """``/sys/devices/system/cpu/online`` (``cpu_online_mask``, ``drivers/base/cpu.c``)."""
    return parse_cpu_list(read_text(root, "/sys/devices/system/cpu/online"))


@frozen
class IdleState:
    """One cpuidle state of a CPU (``drivers/cpuidle/sysfs.c``, ``cpuidle_state_attrs``)."""

    name: str
    latency_us: int | None
    residency_us: int | None
    disabled: bool
    usage: int | None
    time_us: int | None


def cpuidle_driver(root: Path | str = ROOT) -> str | None:
    """``/sys/devices/system/cpu/cpuidle/current_driver`` (``show_current_driver``)."""
    return read_optional(root, "/sys/devices/system/cpu/cpuidle/current_driver")


def cpuidle_governor(root: Path | str = ROOT) -> str | None:
    """The cpuidle governor (``show_current_governor``), ``current_governor`` or ``_ro``."""
    return (read_optional(root, "/sys/devices/system/cpu/cpuidle/current_governor")
            or read_optional(root, "/sys/devices/system/cpu/cpuidle/current_governor_ro"))


def cpuidle_states(cpu: int = 0, root: Path | str = ROOT) -> tuple[IdleState, ...]:
    """The idle states of ``cpu`` (``/sys/devices/system/cpu/cpuN/cpuidle/stateK``)."""
    states = []
    for k in range(64):
        base = f"/sys/devices/system/cpu/cpu{cpu}/cpuidle/state{k}"
        name = read_optional(root, f"{base}/name")
        if name is None:
            break
        states.append(IdleState(
            name=name,
            latency_us=_opt_int(read_optional(root, f"{base}/latency")),
            residency_us=_opt_int(read_optional(root, f"{base}/residency")),
            disabled=read_optional(root, f"{base}/disable") == "1",
            usage=_opt_int(read_optional(root, f"{base}/usage")),
            time_us=_opt_int(read_optional(root, f"{base}/time")),
        ))
    return tuple(states)


def haltpoll_params(root: Path | str = ROOT) -> dict[str, str]:
    """The ``haltpoll`` governor's module parameters (``drivers/cpuidle/governors/
    haltpoll.c``: ``guest_halt_poll_ns`` and its grow/shrink rules)."""
    base = _path(root, "/sys/module/haltpoll/parameters")
    try:
        names = sorted(p.name for p in base.iterdir())
    except OSError:
        return {}
    return {n: read_optional(root, f"/sys/module/haltpoll/parameters/{n}") or "" for n in names}


def cmdline(root: Path | str = ROOT) -> str:
    """The kernel command line: ``/proc/cmdline``, ``cmdline_proc_show`` in
    ``fs/proc/cmdline.c`` (``saved_command_line``)."""
    return read_optional(root, "/proc/cmdline") or ""


def kernel_release(root: Path | str = ROOT) -> str | None:
    """``uname -r``: ``/proc/sys/kernel/osrelease``, ``init_uts_ns.name.release`` through
    ``proc_do_uts_string`` in ``kernel/utsname_sysctl.c``."""
    return read_optional(root, "/proc/sys/kernel/osrelease")


def kernel_version(root: Path | str = ROOT) -> str | None:
    """``uname -v``: ``/proc/sys/kernel/version`` (``kernel/utsname_sysctl.c``; the
    string ``UTS_VERSION`` of ``scripts/mkcompile_h``, e.g. ``#1 SMP PREEMPT_DYNAMIC``)."""
    return read_optional(root, "/proc/sys/kernel/version")


def kernel_config(root: Path | str = ROOT) -> dict[str, str]:
    """``CONFIG_*`` values of ``/proc/config.gz`` (``kernel/configs.c``, IKCONFIG_PROC);
    empty when the kernel does not expose it."""
    path = _path(root, "/proc/config.gz")
    try:
        with gzip.open(path, "rt") as f:
            text = f.read()
    except (OSError, EOFError, UnicodeDecodeError):
        return {}
    out = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.startswith("CONFIG_"):
            out[key] = value
    return out


def sched_base_slice_ns(root: Path | str = ROOT) -> int | None:
    """EEVDF's ``sysctl_sched_base_slice`` in force (already scaled by the CPU count):
    ``/sys/kernel/debug/sched/base_slice_ns`` (``kernel/sched/debug.c``); ``None``
    without debugfs or before EEVDF."""
    return _opt_int(read_optional(root, "/sys/kernel/debug/sched/base_slice_ns"))


def sched_features(root: Path | str = ROOT) -> dict[str, bool]:
    """The scheduler features and whether each is on: ``/sys/kernel/debug/sched/features``
    (``sched_feat_show``: each name, ``NO_`` before those off); empty without debugfs."""
    text = read_optional(root, "/sys/kernel/debug/sched/features") or ""
    return {name.removeprefix("NO_"): not name.startswith("NO_") for name in text.split()}


def hz(root: Path | str = ROOT) -> int | None:
    """The kernel's tick rate, ``CONFIG_HZ`` from ``/proc/config.gz``; ``None`` when
    unknown (``sysconf(_SC_CLK_TCK)`` is USER_HZ, always 100, not HZ)."""
    value = kernel_config(root).get("CONFIG_HZ")
    return _opt_int(value)


_PREEMPT_CONFIG = (
    ("CONFIG_PREEMPT_RT", "rt"), ("CONFIG_PREEMPT_LAZY", "lazy"), ("CONFIG_PREEMPT", "full"),
    ("CONFIG_PREEMPT_VOLUNTARY", "voluntary"), ("CONFIG_PREEMPT_NONE", "none"),
)


def preempt_model(root: Path | str = ROOT) -> tuple[str, str]:
    """``(model, how it was found)``: ``/sys/kernel/debug/sched/preempt`` (the current
    one in parentheses, ``sched_dynamic_show`` in ``kernel/sched/debug.c``); else a
    ``preempt=`` boot option (``setup_preempt_mode``); else the configured default
    (``CONFIG_PREEMPT_*`` in ``/proc/config.gz``); else what ``uname -v`` says."""
    text = read_optional(root, "/sys/kernel/debug/sched/preempt")
    if text:
        m = re.search(r"\((\w+)\)", text)
        if m:
            return m[1], "/sys/kernel/debug/sched/preempt"
    m = re.search(r"(?:^|\s)preempt=(\w+)", cmdline(root))
    if m:
        return m[1], "preempt= on the kernel command line"
    config = kernel_config(root)
    for key, model in _PREEMPT_CONFIG:
        if config.get(key) == "y":
            dynamic = " (PREEMPT_DYNAMIC default)" if config.get("CONFIG_PREEMPT_DYNAMIC") == "y" \
                else ""
            return model, f"{key}=y in /proc/config.gz{dynamic}"
    version = kernel_version(root) or ""
    for word, model in (("PREEMPT_RT", "rt"), ("PREEMPT_LAZY", "lazy"),
                        ("PREEMPT_DYNAMIC", "dynamic"), ("PREEMPT", "full")):
        if word in version.split():
            return model, "uname -v"
    return "unknown", "nothing readable"
