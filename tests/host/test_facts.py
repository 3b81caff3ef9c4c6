"""Host facts from the recorded tree."""

from __future__ import annotations

from pathlib import Path

from napikit.host.facts import boot_flags, host_facts, validatable_policies


def test_recorded_host_facts(fake_root: Path) -> None:
    """The recorded host: 2 CPUs, HZ 250, haltpoll, RPS off, classic policy only."""
    f = host_facts(fake_root)
    assert f["ncpus"] == 2 and f["hz"] == 250
    assert f["cpuidle_driver"] == "haltpoll"
    assert f["lo_rps_cpus"] == {"rx-0": "0"}
    assert f["net_core"]["netdev_max_backlog"] == "1000"
    assert f["validates"] == ["softirq-ipi"]
    assert None not in f.values()


def test_boot_flags_ignore_init_arguments() -> None:
    """Words after ' -- ' go to init, not the kernel."""
    assert boot_flags("quiet threadirqs -- thread_backlog_napi") == {
        "threadirqs": True, "thread_backlog_napi": False}


def test_policies_a_kernel_validates() -> None:
    """Boot options and PREEMPT_RT pick the policy."""
    assert validatable_policies({}) == ["softirq-ipi"]
    assert validatable_policies({"threadirqs": True}) == ["ksoftirqd"]
    assert validatable_policies({"thread_backlog_napi": True}) == ["backlog-threads"]
    assert validatable_policies({"preempt_model": "rt"}) == ["backlog-threads"]
