"""The procfs and sysfs readers, against the recorded tree."""

from __future__ import annotations

from pathlib import Path

import pytest

from napikit.host import procfs
from napikit.host.procfs import HostError


def test_softnet_stat_has_one_row_per_online_cpu(fake_root: Path) -> None:
    """Rows are keyed by column 13, the CPU; the counters are the hex columns."""
    rows = procfs.softnet_stat(fake_root)
    assert sorted(rows) == [0, 1]
    assert rows[0].processed == 0x1FB1D
    assert rows[1].processed == 0x23C0
    assert rows[1].dropped == rows[1].time_squeeze == rows[1].received_rps == 0


def test_softnet_stat_without_cpu_column_uses_row_order(fake_root: Path) -> None:
    """Before 5.13 the rows have 11 fields and come in CPU order."""
    path = fake_root / "proc/net/softnet_stat"
    path.write_text("00000005 00000001 00000002 0 0 0 0 0 0 00000003 00000000\n" * 2)
    rows = procfs.softnet_stat(fake_root)
    assert rows[1].processed == 5 and rows[1].received_rps == 3


def test_interrupts_reads_cal_and_res_per_cpu(fake_root: Path) -> None:
    """The architecture rows are per CPU, in the header's CPU order."""
    irqs = procfs.interrupts(fake_root)
    assert irqs["RES"] == (9222, 12979)
    assert irqs["CAL"] == (18587, 10199)


def test_interrupts_missing_row_is_zero(fake_root: Path) -> None:
    """A row the architecture lacks reads as zeros."""
    assert procfs.interrupts(fake_root, ("NOSUCH",))["NOSUCH"] == (0, 0)


def test_softirqs_net_rx(fake_root: Path) -> None:
    """NET_RX has one count per CPU."""
    counts = procfs.softirqs(fake_root, "NET_RX")
    assert len(counts) == 2 and all(c >= 0 for c in counts)


def test_softirqs_unknown_vector_is_an_error(fake_root: Path) -> None:
    """An absent vector is a HostError naming it."""
    with pytest.raises(HostError, match="NOPE"):
        procfs.softirqs(fake_root, "NOPE")


def test_ksoftirqd_threads_found_by_comm(fake_root: Path) -> None:
    """ksoftirqd/0 and ksoftirqd/1 are found under /proc/<pid>/comm."""
    pids = procfs.ksoftirqd_pids(fake_root)
    assert sorted(pids) == [0, 1]
    times = procfs.task_times(pids[0], fake_root)
    assert times.comm == "ksoftirqd/0"
    assert times.run_ns is not None and times.timeslices is not None


def test_task_stat_comm_with_spaces_and_parentheses(fake_root: Path) -> None:
    """comm ends at the last ')', whatever it holds."""
    d = fake_root / "proc/999"
    d.mkdir()
    fields = " ".join(["S"] + ["0"] * 10 + ["7", "11"] + ["0"] * 30)
    (d / "stat").write_text(f"999 (a (b) c) {fields}\n")
    t = procfs.task_times(999, fake_root)
    assert (t.comm, t.utime_ticks, t.stime_ticks, t.run_ns) == ("a (b) c", 7, 11, None)


def test_task_switches(fake_root: Path) -> None:
    """voluntary and nonvoluntary switches come from status."""
    pid = procfs.ksoftirqd_pids(fake_root)[0]
    vol, invol = procfs.task_switches(pid, fake_root)
    assert vol >= 0 and invol >= 0


def test_snmp_udp(fake_root: Path) -> None:
    """The Udp header and value lines pair up."""
    udp = procfs.snmp(fake_root)
    assert {"InDatagrams", "RcvbufErrors", "InErrors"} <= set(udp)


def test_context_switches(fake_root: Path) -> None:
    """ctxt of /proc/stat is a count."""
    assert procfs.context_switches(fake_root) > 0


def test_rps_cpus_read_and_write(fake_root: Path) -> None:
    """The text is kept verbatim; a write replaces it."""
    assert procfs.rx_queues(fake_root) == ("rx-0",)
    assert procfs.rps_cpus(fake_root)["rx-0"].strip() == "0"
    procfs.write_rps_cpus("rx-0", "2", fake_root)
    assert procfs.rps_cpus(fake_root)["rx-0"].strip() == "2"
    assert procfs.rps_flow_cnt(fake_root) == {"rx-0": 0}


@pytest.mark.parametrize(("text", "cpus"), [
    ("0", ()), ("1", (0,)), ("3", (0, 1)), ("00000000,00000001", (0,)),
    ("00000001,00000000", (32,)),
])
def test_parse_mask(text: str, cpus: tuple[int, ...]) -> None:
    """Hex masks in 32-bit comma-separated groups."""
    assert procfs.parse_mask(text) == cpus


def test_format_mask_round_trips() -> None:
    """format_mask is parse_mask's inverse."""
    for cpus in [(0,), (1,), (0, 1), (3, 40)]:
        assert procfs.parse_mask(procfs.format_mask(cpus)) == cpus


def test_cpu_list() -> None:
    """Ranges and single CPUs."""
    assert procfs.parse_cpu_list("0-2,5\n") == (0, 1, 2, 5)


def test_online_cpus_and_idle(fake_root: Path) -> None:
    """The recorded host: 2 CPUs, haltpoll with POLL and one halting state."""
    assert procfs.online_cpus(fake_root) == (0, 1)
    assert procfs.cpuidle_driver(fake_root) == "haltpoll"
    names = [s.name for s in procfs.cpuidle_states(0, fake_root)]
    assert names == ["POLL", "haltpoll idle"]
    assert procfs.haltpoll_params(fake_root)["guest_halt_poll_ns"] == "0"


def test_hz_and_preempt_from_config(fake_root: Path) -> None:
    """HZ and the configured preemption model come from /proc/config.gz."""
    assert procfs.hz(fake_root) == 250
    model, source = procfs.preempt_model(fake_root)
    assert model == "none" and "config.gz" in source


def test_preempt_from_debugfs_wins(fake_root: Path) -> None:
    """The current model is the one in parentheses."""
    path = fake_root / "sys/kernel/debug/sched/preempt"
    path.parent.mkdir(parents=True)
    path.write_text("none voluntary (full) lazy\n")
    assert procfs.preempt_model(fake_root)[0] == "full"


def test_eevdf_slice_and_features_from_debugfs(fake_root: Path) -> None:
    """base_slice_ns is the slice in force; features lists each name, NO_ before the
    ones that are off."""
    sched = fake_root / "sys/kernel/debug/sched"
    sched.mkdir(parents=True)
    (sched / "base_slice_ns").write_text("2800000\n")
    (sched / "features").write_text("PLACE_LAG PLACE_DEADLINE_INITIAL NO_RUN_TO_PARITY "
                                     "DELAY_DEQUEUE\n")
    assert procfs.sched_base_slice_ns(fake_root) == 2_800_000
    features = procfs.sched_features(fake_root)
    assert features["PLACE_LAG"] and features["DELAY_DEQUEUE"]
    assert features["RUN_TO_PARITY"] is False


def test_no_debugfs_no_eevdf_facts(fake_root: Path) -> None:
    """Without debugfs (the development guest) neither is known."""
    assert procfs.sched_base_slice_ns(fake_root) is None
    assert procfs.sched_features(fake_root) == {}


def test_preempt_from_command_line(fake_root: Path) -> None:
    """preempt= on the command line overrides the configured default."""
    (fake_root / "proc/cmdline").write_text("quiet preempt=voluntary\n")
    assert procfs.preempt_model(fake_root)[0] == "voluntary"


def test_preempt_from_uname_without_config(fake_root: Path) -> None:
    """Without config.gz, uname -v's words decide."""
    (fake_root / "proc/config.gz").unlink()
    assert procfs.hz(fake_root) is None
    assert procfs.preempt_model(fake_root)[0] == "dynamic"


def test_missing_file_is_one_line_host_error(tmp_path: Path) -> None:
    """An unreadable file is a HostError naming it."""
    with pytest.raises(HostError) as e:
        procfs.softnet_stat(tmp_path)
    assert "softnet_stat" in str(e.value) and "\n" not in str(e.value)
