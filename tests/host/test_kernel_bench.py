"""kernel-bench: the plan, the interleaving, and restoring lo on every way out.

Runs use a fake runner against the recorded tree: no root, no real /sys."""

from __future__ import annotations

import signal
import subprocess
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from napikit import cli
from napikit.host import kernel_bench as kb
from napikit.host.kernel_bench import BenchConfig

#: An unusual but valid original text, so the test sees it restored verbatim.
ORIGINAL = "00000000\n"


def _rps(root: Path) -> str:
    return (root / "sys/class/net/lo/queues/rx-0/rps_cpus").read_text()


@pytest.fixture
def lo_root(fake_root: Path) -> Path:
    (fake_root / "sys/class/net/lo/queues/rx-0/rps_cpus").write_text(ORIGINAL)
    return fake_root


def fake_pair(config: BenchConfig, seconds: float) -> list[dict[str, Any]]:
    n = 1000 if config.rate_pps is None else 100
    return [{
        "sent": n, "received": n - 10, "received_in_window": n - 10, "send_errors": 0,
        "send_wall_ns": int(seconds * 1e9), "send_call_ns": 1000 * n,
        "sender_cpu_ns": 2000 * n, "receiver_cpu_ns": 1500 * n, "receiver_wall_ns": 1,
        "socket_drops": 10, "sender_nvcsw": 0, "sender_nivcsw": 1, "receiver_nvcsw": 5,
        "receiver_nivcsw": 0, "receiver_tid": 1,
    } for _ in config.pairs]


def test_plan_on_two_cpus() -> None:
    """One pair; the same-CPU placement runs RPS-to-receiver once (it is the sender)."""
    configs, note = kb.plan((0, 1), (20_000.0,))
    names = [c.name for c in configs]
    assert "one sender/receiver pair" in note and ">= 8" in note
    assert len(names) == len(set(names)) == 14
    assert "other/rps-sender/closed" in names and "same/rps-sender/closed" not in names
    c = next(c for c in configs if c.name == "other/rps-receiver/20000pps")
    assert c.pairs == ((0, 1),) and c.rps_cpus == (1,) and c.rate_pps == 20_000.0
    assert next(c for c in configs if c.name == "other/rps-all/closed").rps_cpus == (0, 1)


def test_plan_on_eight_cpus_runs_several_pairs() -> None:
    """8 CPUs: two pairs at once, senders on the first half."""
    configs, note = kb.plan(tuple(range(8)), ())
    assert "2 sender/receiver pairs" in note
    assert configs[0].pairs == ((0, 4), (1, 5))
    rps_sender = next(c for c in configs if c.name == "other/rps-sender/closed")
    assert rps_sender.rps_cpus == (0, 1)


def test_repetitions_are_interleaved(lo_root: Path) -> None:
    """A B C A B C, with rps_cpus set for each run and restored after."""
    seen: list[tuple[str, str]] = []

    def runner(config: BenchConfig, seconds: float) -> list[dict[str, Any]]:
        seen.append((config.name, _rps(lo_root).strip()))
        return fake_pair(config, seconds)

    configs, _ = kb.plan((0, 1), ())
    configs = configs[:3]
    out = kb.run_bench(configs, 2, 0.01, root=lo_root, runner=runner, settle_s=0)
    assert [s[0] for s in seen] == [c.name for c in configs] * 2
    assert [s[1] for s in seen[:3]] == ["0", "2", "1"]
    assert _rps(lo_root) == ORIGINAL
    fig = out[0]["figures"]["delivered_pps"]
    assert set(fig) == {"median", "min", "max"} and fig["median"] == pytest.approx(99_000)


def test_restores_rps_cpus_on_exception(lo_root: Path) -> None:
    """The runner raises midway, with RPS on: the original text is back."""
    def runner(config: BenchConfig, seconds: float) -> list[dict[str, Any]]:
        if config.rps == "receiver":
            assert _rps(lo_root).strip() == "2"
            raise RuntimeError("bench broke")
        return fake_pair(config, seconds)

    configs, _ = kb.plan((0, 1), ())
    with pytest.raises(RuntimeError, match="bench broke"):
        kb.run_bench(configs, 1, 0.01, root=lo_root, runner=runner, settle_s=0)
    assert _rps(lo_root) == ORIGINAL


CHILD = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from napikit.host import kernel_bench as kb
    root = Path(sys.argv[1])
    def runner(config, seconds):
        if config.rps == "receiver":
            (root / "started").write_text("")
            time.sleep(30)
        return []
    configs, _ = kb.plan((0, 1), ())
    kb.run_bench(configs, 1, 0.01, root=root, runner=runner, settle_s=0)
""")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_restores_rps_cpus_on_signal(lo_root: Path, sig: signal.Signals, child) -> None:
    """A subprocess benching the fake root is interrupted while RPS is on."""
    bench = subprocess.Popen([*child.python, "-c", CHILD, str(lo_root)],
                             stderr=subprocess.PIPE, text=True, env=child.env)
    try:
        for _ in range(6000):  # the child imports napikit: up to a minute on a slow machine
            if (lo_root / "started").exists():
                break
            assert bench.poll() is None, bench.stderr.read() if bench.stderr else ""
            time.sleep(0.01)
        assert _rps(lo_root).strip() == "2"
        bench.send_signal(sig)
        _, err = bench.communicate(timeout=10)
    finally:
        bench.kill()
    assert bench.returncode != 0
    assert "KeyboardInterrupt" in err and "restored" in err
    assert _rps(lo_root) == ORIGINAL


def test_needs_root_one_line_exit_2(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without root: one line, exit 2, nothing written."""
    monkeypatch.setattr(kb.os, "geteuid", lambda: 1000)
    out = tmp_path / "real.json"
    assert cli.main(["kernel-bench", "--quick", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("napikit: kernel-bench needs root") and err.count("\n") == 1
    assert not out.exists()


def test_bench_document(lo_root: Path) -> None:
    """The document: format, facts, the policies it validates, every configuration."""
    doc = kb.bench(quick=True, seconds=0.01, reps=2, root=lo_root, runner=fake_pair, euid=0)
    assert doc["format"] == kb.FORMAT and doc["validates"] == ["softirq-ipi"]
    assert doc["host"]["ncpus"] == 2 and doc["flows"] == 8
    assert len(doc["configurations"]) == 14
    assert all(len(c["runs"]) == 2 for c in doc["configurations"])
    assert _rps(lo_root) == ORIGINAL


@pytest.mark.parametrize("argv", [["--seconds", "0"], ["--seconds", "x"], ["--reps", "0"]])
def test_bad_options_one_line(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """Bad options: exit 2, one line."""
    assert cli.main(["kernel-bench", *argv]) == 2
    assert capsys.readouterr().err.count("\n") == 1
