"""What a host is: the facts recorded beside every calibration and kernel-bench run.

:func:`host_facts` gathers them with the readers of :mod:`napikit.host.procfs` into a
plain mapping of strings, integers, booleans, lists and tables: TOML and JSON ready
(a fact that cannot be read is left out, since TOML has no null).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import attrs

from napikit.host import procfs
from napikit.host.procfs import ROOT


def _drop_none(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


def boot_flags(cmdline: str) -> dict[str, bool]:
    """The boot options that pick the backlog's policy: ``threadirqs``
    (``setup_forced_irqthreads``, ``kernel/irq/manage.c``) and ``thread_backlog_napi``
    (``early_param`` in ``net/core/dev.c``, 6.10+)."""
    # Words after "--" are for init, not the kernel.
    words = cmdline.split(" -- ")[0].split()
    return {"threadirqs": "threadirqs" in words,
            "thread_backlog_napi": "thread_backlog_napi" in words}


def validatable_policies(facts: dict[str, Any]) -> list[str]:
    """The napikit policies a kernel with these facts runs, and so can validate: the
    classic ``softirq-ipi`` unless the boot options or PREEMPT_RT say otherwise."""
    if facts.get("preempt_model") == "rt" or facts.get("thread_backlog_napi"):
        return ["backlog-threads"]
    if facts.get("threadirqs"):
        return ["ksoftirqd"]
    return ["softirq-ipi"]


def host_facts(root: Path | str = ROOT) -> dict[str, Any]:
    """The facts of the host under ``root``: CPUs, kernel, HZ, preemption model,
    cpuidle, EEVDF's base slice and scheduler features (with debugfs), RPS/RFS settings
    of ``lo``, ``net.core`` sysctls, the command line."""
    cmdline = procfs.cmdline(root)
    model, model_source = procfs.preempt_model(root)
    try:
        online = list(procfs.online_cpus(root))
    except procfs.HostError:
        online = list(range(os.cpu_count() or 1))
    try:
        rps = {q: v.strip() for q, v in procfs.rps_cpus(root).items()}
        flow_cnt = _drop_none(dict(procfs.rps_flow_cnt(root)))
    except procfs.HostError:
        rps, flow_cnt = {}, {}
    facts: dict[str, Any] = {
        "ncpus": len(online),
        "online_cpus": online,
        "kernel_release": procfs.kernel_release(root),
        "kernel_version": procfs.kernel_version(root),
        "hz": procfs.hz(root),
        "preempt_model": model,
        "preempt_model_source": model_source,
        "cpuidle_driver": procfs.cpuidle_driver(root),
        "cpuidle_governor": procfs.cpuidle_governor(root),
        "cpuidle_states": [
            _drop_none(attrs.asdict(s)) for s in procfs.cpuidle_states(0, root)
        ],
        "haltpoll": procfs.haltpoll_params(root),
        "sched_base_slice_ns": procfs.sched_base_slice_ns(root),
        "sched_features": procfs.sched_features(root) or None,
        "lo_rps_cpus": rps,
        "lo_rps_flow_cnt": flow_cnt,
        "net_core": _drop_none(dict(procfs.net_core_sysctls(root))),
        "cmdline": cmdline,
        **boot_flags(cmdline),
    }
    facts = _drop_none(facts)
    facts["validates"] = validatable_policies(facts)
    return facts
