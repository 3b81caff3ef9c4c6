"""validate on the committed example files, and its bad-input errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import napikit
from napikit import cli
from napikit.errors import ConfigError
from napikit.host import validate
from napikit.host.costfile import load


@pytest.fixture(scope="module")
def comparison() -> dict:
    examples = Path(__file__).parents[2] / "examples" / "host"
    return validate.compare(validate.load_real(examples / "real.json"),
                            load(examples / "costs.toml"), seconds=0.05)


def test_ratio_table_has_the_expected_rows(comparison: dict) -> None:
    """RPS to receiver / all / sender over off, same CPU over other, per-kick rows."""
    labels = [r.what for r in comparison["ratios"]]
    for label, _, _ in validate.RATIOS:
        assert f"delivered_pps {label} [closed]" in labels
        assert f"sent_pps {label} [closed]" in labels
        assert f"delivered_pps {label} [20000pps]" in labels
    assert "packets_per_rps_kick [other/rps-receiver/20000pps]" in labels
    assert "cal_per_rps_kick [other/rps-receiver/20000pps]" in labels


def test_every_configuration_has_every_figure(comparison: dict, examples: Path) -> None:
    """Each configuration of real.json is simulated and compared figure by figure."""
    real = json.loads((examples / "real.json").read_text())
    assert list(comparison["figures"]) == [c["name"] for c in real["configurations"]]
    for rows in comparison["figures"].values():
        assert [r.what for r in rows] == list(validate.FIGURES)


def test_relative_error_and_sign() -> None:
    """(predicted - measured) / measured; ratios agree when on the same side of 1."""
    row = validate.Row("x", 2.0, 1.5, 2.5, 1.5, True)
    assert row.rel_error == pytest.approx(-0.25) and row.sign_agrees
    assert not validate.Row("x", 1.3, 1, 2, 0.7, True).sign_agrees
    assert validate.Row("x", 0.0, 0, 0, 1.0, False).rel_error is None


def test_cli_text_and_json(examples: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The text report starts with the ratios; --json parses."""
    args = ["validate", "--costs", str(examples / "costs.toml"),
            "--real", str(examples / "real.json")]
    assert cli.main(args) == 0
    text = capsys.readouterr().out
    assert "Ratios between configurations" in text and "RPS to receiver / RPS off" in text
    assert cli.main([*args, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["policy"] == "softirq-ipi" and doc["ratios"]


def test_missing_costs_use_defaults_named(
    examples: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A cost file without a field: the default is used and named in the report."""
    costs = tmp_path / "costs.toml"
    costs.write_text('[costs.udp_recvmsg_ns]\nunit = "ns"\nvalue = 600\n')
    assert cli.main(["validate", "--costs", str(costs),
                     "--real", str(examples / "real.json")]) == 0
    line, = [row for row in capsys.readouterr().out.splitlines()
             if row.startswith("costs left at napikit's default")]
    assert "ipi_send_ns" in line and "udp_recvmsg_ns" not in line


def test_plot(examples: Path, tmp_path: Path) -> None:
    """--plot writes a PNG."""
    pytest.importorskip("matplotlib")
    out = tmp_path / "v.png"
    assert cli.main(["validate", "--costs", str(examples / "costs.toml"),
                     "--real", str(examples / "real.json"), "--plot", str(out), "--json"]) == 0
    assert out.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize(("doc", "field"), [
    ({"format": "x"}, "format"),
    ({"format": "napikit-kernel-bench/1"}, "configurations"),
    ({"format": "napikit-kernel-bench/1", "configurations": [{"name": "a"}]},
     "configurations[0].pairs"),
    ({"format": "napikit-kernel-bench/1", "configurations": [
        {"name": "a", "pairs": [[0, 1]], "rps_cpus": [], "rate_pps": None,
         "figures": {"sent_pps": {"median": "1"}}}]}, "configurations[0].figures.sent_pps"),
])
def test_bad_real_file_names_the_field(doc: dict, field: str, tmp_path: Path) -> None:
    """A real.json that is not kernel-bench's: a ConfigError naming the field."""
    path = tmp_path / "real.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(ConfigError) as e:
        validate.load_real(path)
    assert e.value.field == field


def test_cli_bad_real_file_one_line(
    examples: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Not JSON: exit 2, one line."""
    path = tmp_path / "real.json"
    path.write_text("{")
    assert cli.main(["validate", "--costs", str(examples / "costs.toml"),
                     "--real", str(path)]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def _idle_host(**changes: Any) -> dict[str, Any]:
    """The example host's cpuidle facts (haltpoll, guest_halt_poll_ns=0), changed."""
    host: dict[str, Any] = {
        "cpuidle_driver": "haltpoll",
        "haltpoll": {"guest_halt_poll_ns": "0"},
        "cpuidle_states": [{"name": "POLL", "latency_us": 0, "disabled": False},
                           {"name": "haltpoll idle", "latency_us": 1, "disabled": False}],
    }
    host.update(changes)
    return host


def test_haltpoll_that_never_polls_is_halt_with_its_exit_latency() -> None:
    """guest_halt_poll_ns = 0 (the example host): the guest halts at once."""
    assert validate.idle_params(_idle_host()) == {"cpuidle": "halt",
                                                  "idle_exit_latency_ns": 1000}


def test_haltpoll_polls_for_guest_halt_poll_ns() -> None:
    """A polling window becomes haltpoll_ns."""
    params = validate.idle_params(_idle_host(haltpoll={"guest_halt_poll_ns": "200000"}))
    assert params == {"cpuidle": "haltpoll", "haltpoll_ns": 200_000,
                      "idle_exit_latency_ns": 1000}


def test_only_the_poll_state_enabled_is_poll() -> None:
    """idle=poll, or every deeper state disabled: kicks need no interrupt."""
    host = _idle_host(cpuidle_driver="none", cpuidle_states=[
        {"name": "POLL", "latency_us": 0, "disabled": False},
        {"name": "C1", "latency_us": 2, "disabled": True}])
    assert validate.idle_params(host) == {"cpuidle": "poll"}


def test_the_shallowest_deep_state_gives_the_exit_latency() -> None:
    """intel_idle's C1 (2 µs), not C6 (133 µs): a governor picks C1 between packets."""
    host = _idle_host(cpuidle_driver="intel_idle", cpuidle_states=[
        {"name": "POLL", "latency_us": 0, "disabled": False},
        {"name": "C1", "latency_us": 2, "disabled": False},
        {"name": "C6", "latency_us": 133, "disabled": False}])
    assert validate.idle_params(host) == {"cpuidle": "halt", "idle_exit_latency_ns": 2000}


def test_no_cpuidle_facts_keep_the_defaults() -> None:
    """A real.json without cpuidle facts leaves KernelParams' defaults."""
    assert validate.idle_params({}) == {}


@pytest.mark.parametrize(("recorded", "expected"), [
    ("none", {"preempt": "none"}), ("voluntary", {"preempt": "voluntary"}),
    ("full", {"preempt": "full"}), ("rt", {"preempt": "full"}),
    ("lazy", {}), ("dynamic", {}), ("unknown", {}), (None, {}),
])
def test_the_recorded_preemption_model_sets_preempt(recorded, expected) -> None:
    """real.json's ``preempt_model`` is a recorded fact, like HZ: none, voluntary and
    full map to KernelParams.preempt as they are, rt to full (PREEMPT_RT implies it);
    lazy (not modelled) and an unreadable model keep the default."""
    host = {} if recorded is None else {"preempt_model": recorded}
    assert validate.preempt_params(host) == expected
    assert validate.kernel_params(host).preempt == expected.get("preempt", "full")


@pytest.mark.parametrize(("release", "ncpus", "expected"), [
    ("5.15.0-91-generic", 2, {"scheduler": "cfs"}),
    ("6.5.13", 2, {"scheduler": "cfs"}),
    ("6.6.1", 2, {"scheduler": "eevdf", "sched_delay_dequeue": False}),
    ("6.10.0-rt14", 16, {"scheduler": "eevdf", "sched_delay_dequeue": False}),
    ("6.11.9", 2, {"scheduler": "eevdf", "sched_delay_dequeue": False}),
    ("6.12.0", 2, {"scheduler": "eevdf", "sched_delay_dequeue": True}),
    ("6.18.44-fc-v1045", 2, {"scheduler": "eevdf", "sched_delay_dequeue": True,
                             "sched_base_slice_ns": 1_400_000}),
    ("6.15.2", 16, {"scheduler": "eevdf", "sched_delay_dequeue": True,
                    "sched_base_slice_ns": 2_800_000}),
    ("", 2, {}), ("weird", 2, {}),
])
def test_the_kernel_release_sets_the_fair_class(release, ncpus, expected) -> None:
    """CFS before 6.6, EEVDF since, with DELAY_DEQUEUE from 6.12; from 6.15 the base
    slice is 0.70 ms times 1 + ilog2(min(ncpus, 8)); an unreadable release keeps the
    defaults."""
    host = {"kernel_release": release, "ncpus": ncpus}
    assert validate.sched_params(host) == expected
    assert validate.kernel_params(host).scheduler == expected.get("scheduler", "eevdf")


def test_recorded_slice_and_features_win_over_the_release() -> None:
    """Where calibrate could read debugfs, the slice in force and PLACE_LAG /
    RUN_TO_PARITY / DELAY_DEQUEUE are used as recorded."""
    host = {"kernel_release": "6.18.44", "ncpus": 2, "sched_base_slice_ns": 3_000_000,
            "sched_features": {"PLACE_LAG": True, "RUN_TO_PARITY": False,
                               "DELAY_DEQUEUE": False}}
    kernel = validate.kernel_params(host)
    assert kernel.sched_base_slice_ns == 3_000_000
    assert kernel.sched_place_lag and not kernel.sched_run_to_parity
    assert not kernel.sched_delay_dequeue


def test_the_report_names_delay_dequeue(examples: Path) -> None:
    """The example host runs 6.18: its report's kernel line says DELAY_DEQUEUE is
    simulated; a pre-6.12 host's says it is not."""
    real = validate.load_real(examples / "real.json")
    costs = load(examples / "costs.toml")
    cmp = validate.compare(real, costs, seconds=0.01)
    assert cmp["kernel"].sched_delay_dequeue
    assert "(base slice 1400000 ns, DELAY_DEQUEUE)" in validate.report(cmp, "c", "r")
    real["host"] = {**real["host"], "kernel_release": "6.10.3"}
    cmp = validate.compare(real, costs, seconds=0.01)
    assert ", NO_DELAY_DEQUEUE)" in validate.report(cmp, "c", "r")


def test_scheduler_option_overrides_the_hosts(examples: Path) -> None:
    """``validate --scheduler cfs`` simulates CFS on a 6.18 host's files, and says so:
    the reader on its sender's CPU then preempts the sender after every datagram."""
    real = validate.load_real(examples / "real.json")
    costs = load(examples / "costs.toml")
    cfs = validate.compare(real, costs, seconds=0.05, scheduler="cfs")
    eevdf = validate.compare(real, costs, seconds=0.05)
    assert (cfs["kernel"].scheduler, eevdf["kernel"].scheduler) == ("cfs", "eevdf")
    assert "scheduler=cfs" in validate.report(cfs, "c", "r")

    def switches(cmp: dict) -> float:
        rows = cmp["figures"]["same/rps-off/closed"]
        return next(r.predicted for r in rows if r.what == "context_switches_per_sent")
    assert switches(cfs) > 1.5 > switches(eevdf)


def test_predicted_switches_count_the_workload_threads_only() -> None:
    """kernel-bench counts the sender's and the reader's nvcsw + nivcsw; the model's
    figure counts the same threads' switches out, not the switches into them or those
    of the idle task and kthreads (SEED-LO: the reader blocks once per datagram, and
    each block is two switches on its CPU)."""
    config = napikit.scenarios.get("seed-lo").config.evolve(packets=2_000)
    r = napikit.Simulation(config).run()
    threads = sum(t.switches for t in r.tasks if t.kind in ("sender", "receiver"))
    assert 0 < threads < r.context_switches
    assert validate.predicted(r)["context_switches_per_sent"] == threads / r.arrived
