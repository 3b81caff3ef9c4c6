"""The ``napikit`` command line, called in-process through ``main``."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import napikit
from napikit import cli
from napikit.cli import main
from napikit.config import Config
from napikit.overrides import apply_overrides
from napikit.plugins import registry

SMALL = ["--packets", "20000"]
ROOT = Path(__file__).resolve().parent.parent


def interrupt_after(monkeypatch: pytest.MonkeyPatch, runs: int) -> None:
    """Let ``runs`` simulations of the CLI finish, then the next one gets a Ctrl-C."""
    real = cli.Simulation.run
    done = []

    def run(self):
        if len(done) == runs:
            raise KeyboardInterrupt
        done.append(self)
        return real(self)

    monkeypatch.setattr(cli.Simulation, "run", run)


def napikit_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_policies_lists_shipped_policies(capsys):
    """`policies` lists the three shipped policies, their package and the fast_path option."""
    code, out, _ = napikit_cli(capsys, "policies")
    assert code == 0
    rows = {line.split()[0]: line for line in out.splitlines()[1:] if line.strip()}
    assert {"softirq-ipi", "ksoftirqd", "backlog-threads"} <= set(rows)
    for name in ("softirq-ipi", "ksoftirqd", "backlog-threads"):
        assert "napikit 0.1.0" in rows[name]
    assert "fast_path: bool = True" in rows["backlog-threads"]


def test_scenarios_lists_named_scenarios(capsys):
    """`scenarios` lists every named scenario with its description."""
    code, out, _ = napikit_cli(capsys, "scenarios")
    assert code == 0
    for name in napikit.scenarios.names():
        assert any(line.startswith(name + " ") for line in out.splitlines())
    assert "SEED-LO: loopback UDP" in out


def test_run_prints_summary(capsys):
    """`run` prints the result's summary for the chosen policy."""
    code, out, err = napikit_cli(capsys, "run", "--policy", "backlog-threads", *SMALL)
    assert (code, err) == (0, "")
    assert out.startswith("policy backlog-threads (napikit 0.1.0), seed 1\n")
    assert "packets: 20000 arrived" in out


def test_run_json_is_deterministic(capsys):
    """`run --json` prints parseable JSON, byte-identical across two runs."""
    argv = ["run", "--scenario", "seed-rps", "--seed", "7", "--json", *SMALL]
    first = napikit_cli(capsys, *argv)[1]
    second = napikit_cli(capsys, *argv)[1]
    assert first == second
    doc = json.loads(first)
    assert (doc["policy"], doc["seed"], doc["arrived"]) == ("softirq-ipi", 7, 20000)


def test_set_nested_fields_reach_the_config(capsys):
    """`--set` changes nested, tuple and workload fields of the config recorded in the JSON."""
    code, out, _ = napikit_cli(
        capsys, "run", "--json", *SMALL,
        "--set", "kernel.netdev_max_backlog=2000",
        "--set", "costs.protocol_rx_ns=400",
        "--set", "kernel.flow_limit_cpu_bitmap=0,1",
        "--set", "workload.rps_cpus=1",
        "--set", "workload.rate_pps=500000",
    )
    assert code == 0
    config = json.loads(out)["config"]
    assert config["kernel"]["netdev_max_backlog"] == 2000
    assert config["costs"]["protocol_rx_ns"] == 400
    assert config["kernel"]["flow_limit_cpu_bitmap"] == [0, 1]
    assert config["workloads"][0]["rps_cpus"] == [1]
    assert config["workloads"][0]["rate_pps"] == 500000


def test_overrides_apply_together(capsys):
    """Overrides are applied at once, so `--ncpus` and CPU lists that need it can go together."""
    code, out, _ = napikit_cli(
        capsys, "run", "--json", *SMALL, "--ncpus", "4",
        "--set", "workload.senders=0,2", "--set", "workload.receivers=1,3",
    )
    assert code == 0
    config = json.loads(out)["config"]
    assert config["ncpus"] == 4
    assert config["workloads"][0]["senders"] == [0, 2]


def test_run_option_reaches_policy(capsys):
    """`--option` passes a parsed policy option to the policy."""
    code, out, _ = napikit_cli(
        capsys, "run", "--policy", "backlog-threads", "--option", "fast_path=false", "--json",
        *SMALL,
    )
    assert code == 0
    assert json.loads(out)["config"]["policy_options"] == {"fast_path": False}


def test_compare_prints_each_policy_and_rfc_variant(capsys):
    """`compare` prints a row per installed policy plus backlog-threads[fast_path=False]."""
    code, out, _ = napikit_cli(capsys, "compare", *SMALL)
    assert code == 0
    for scenario in napikit.scenarios.DEFAULT_COMPARE:
        assert f"{scenario} (" in out
    labels = [line.split()[0] for line in out.splitlines() if line.startswith(
        ("softirq-ipi", "ksoftirqd", "backlog-threads"))]
    expected = ["softirq-ipi", "backlog-threads", "backlog-threads[fast_path=False]", "ksoftirqd"]
    assert labels == expected * len(napikit.scenarios.DEFAULT_COMPARE)


def test_compare_variant_adds_a_row(capsys):
    """`--variant` adds a row for a policy run with the given options."""
    code, out, _ = napikit_cli(
        capsys, "compare", "--scenario", "seed-lo", "--policy", "softirq-ipi",
        "--variant", "backlog-threads:fast_path=false", *SMALL,
    )
    assert code == 0
    rows = [line.split()[0] for line in out.splitlines()[2:]]
    assert rows == ["softirq-ipi", "backlog-threads[fast_path=False]"]


def test_compare_json_is_keyed_by_scenario_and_label(capsys):
    """`compare --json` prints {scenario: {label: result}} with sorted keys."""
    code, out, _ = napikit_cli(
        capsys, "compare", "--json", "--scenario", "seed-rps", "--policy", "backlog-threads",
        *SMALL,
    )
    assert code == 0
    doc = json.loads(out)
    assert list(doc) == ["seed-rps"]
    assert list(doc["seed-rps"]) == ["backlog-threads", "backlog-threads[fast_path=False]"]
    assert doc["seed-rps"]["backlog-threads[fast_path=False]"]["config"]["policy_options"] == {
        "fast_path": False
    }
    assert out == json.dumps(doc, sort_keys=True, indent=2) + "\n"


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["run", "--ncpus", "0"], "ncpus"),
        (["run", "--policy", "nope"], "policy"),
        (["run", "--scenario", "nope"], "scenario"),
        (["run", "--set", "kernel.nope=1"], "kernel.nope"),
        (["run", "--set", "nope=1"], "nope"),
        (["run", "--set", "workload.nope=1"], "workload.nope"),
        (["run", "--policy", "backlog-threads", "--option", "fast_path=3"], "fast_path"),
        (["run", "--set", "workload.rps_cpus=7"], "rps_cpus"),
        (["compare", "--set", "costs.protocol_rx_ns=-1"], "costs.protocol_rx_ns"),
        (["run", "--packets", "many"], "--packets"),
        (["run", "--set", "ncpus"], "--set"),
        (["compare", "--variant", "backlog-threads"], "--variant"),
        (["run", "--packets", "1.5"], "--packets"),
        (["run", "--packets", "1e999"], "--packets"),
        (["run", "--seed", "1e30"], "seed"),
        (["run", "--set", "duration_ns=1.5ns"], "duration_ns"),
        (["run", "--set", "drain_ns=2M"], "drain_ns"),
        (["run", "--set", "workload.rate_pps=fast"], "workload.rate_pps"),
        (["run", "--set", "kernel.netdev_budget=10ms"], "kernel.netdev_budget"),
        (["run", "--set", "packets=" + "9" * 5000], "packets"),
        (["run", "--set", "kernel.flow_limit_cpu_bitmap=0,x"], "kernel.flow_limit_cpu_bitmap"),
    ],
)
def test_bad_input_is_one_line_error(capsys, argv, named):
    """A bad input exits 2 with one stderr line naming the culprit, and no traceback."""
    code, out, err = napikit_cli(capsys, *argv, *SMALL)
    assert code == 2
    assert out == ""
    assert err.startswith("napikit: error: ") and err.endswith("\n")
    assert err.count("\n") == 1
    assert named in err
    assert "Traceback" not in err


def test_unknown_names_list_allowed_values(capsys):
    """An unknown policy name is answered with the installed ones."""
    err = napikit_cli(capsys, "run", "--policy", "nope")[2]
    assert "softirq-ipi" in err and "backlog-threads" in err


def test_version(capsys):
    """`--version` prints napikit's version and exits 0."""
    code, out, _ = napikit_cli(capsys, "--version")
    assert (code, out) == (0, f"napikit {napikit.__version__}\n")


def test_console_script_runs():
    """The console script installed beside this interpreter (else `python -m napikit`) runs."""
    script = shutil.which("napikit", path=os.path.dirname(sys.executable))
    command = [script] if script else [sys.executable, "-m", "napikit"]
    proc = subprocess.run(
        [*command, "policies"], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert "backlog-threads" in proc.stdout and "fast_path" in proc.stdout


# ----------------------------------------------------------------- hotplug, RT, cyclictest


def test_hotplug_flag_adds_a_request(capsys):
    """`--hotplug TIME_NS:CPU:offline` takes a CPU down during the run."""
    code, out, _ = napikit_cli(capsys, "run", "--ncpus", "3", "--hotplug",
                               "1000000:1:offline", "--json", *SMALL)
    assert code == 0
    doc = json.loads(out)
    assert doc["config"]["hotplug"] == [{"time_ns": 1_000_000, "cpu": 1, "online": False}]
    assert doc["hotplug"][0]["done_ns"] is not None


def test_offline_cpus_and_preempt_rt_are_set_fields(capsys):
    """`--set offline_cpus=2 --set kernel.preempt_rt=true` reach the config."""
    code, out, _ = napikit_cli(capsys, "run", "--ncpus", "3", "--set", "offline_cpus=2",
                               "--set", "kernel.preempt_rt=true", "--json", *SMALL)
    assert code == 0
    config = json.loads(out)["config"]
    assert config["offline_cpus"] == [2] and config["kernel"]["preempt_rt"] is True


def test_cyclictest_flag_adds_a_column_to_compare(capsys):
    """`compare --cyclictest 1:100000` reports the task's p99 for every policy."""
    code, out, _ = napikit_cli(capsys, "compare", "--scenario", "seed-rps", "--cyclictest",
                               "1:100000", *SMALL)
    assert code == 0
    header, *rows = [line for line in out.splitlines()[1:] if line.strip()]
    assert header.endswith("cyclictest/0 p99 (us)")
    assert len(rows) >= 4 and all(float(row.split()[-1]) > 0 for row in rows)


@pytest.mark.parametrize("argv, field", [
    (["--hotplug", "5:1:sideways"], "--hotplug"),
    (["--hotplug", "5:9:offline"], "hotplug[0].cpu"),
    (["--cyclictest", "1:100"], "cyclictest.period_ns"),
    (["--cyclictest", "one"], "--cyclictest"),
])
def test_bad_hotplug_or_cyclictest_is_one_line_exit_2(capsys, argv, field):
    """A malformed request names the flag or field, in one line, exit status 2."""
    code, out, err = napikit_cli(capsys, "run", *argv, *SMALL)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and field in err


# ----------------------------------------------------------------- numbers, units


@pytest.mark.parametrize("key, text, value", [
    ("duration_ns", "10ms", 10_000_000),
    ("duration_ns", "1.5us", 1_500),
    ("drain_ns", "3s", 3_000_000_000),
    ("costs.protocol_rx_ns", "100ns", 100),
    ("costs.protocol_rx_ns", "2e3", 2_000),
    ("packets", "1e7", 10_000_000),
    ("packets", "1.5M", 1_500_000),
    ("packets", "2k", 2_000),
    ("kernel.netdev_budget_usecs", "none", None),
    ("workload.rate_pps", "1.5M", 1_500_000.0),
])
def test_values_take_units_and_float_notation(key, text, value):
    """`--set` turns unit suffixes and float notation into the field's exact value."""
    config = apply_overrides(Config(), [(key, text)])
    section, _, name = key.rpartition(".")
    owner = {"": config, "kernel": config.kernel, "costs": config.costs,
             "workload": config.workloads[0]}[section]
    assert getattr(owner, name) == value
    assert type(getattr(owner, name)) is type(value)


def test_count_flags_take_float_notation():
    """`--packets 1e7` and `--seed 2k` are the integers they write."""
    args = cli.build_parser().parse_args(["run", "--packets", "1e7", "--seed", "2k"])
    assert (args.packets, args.seed) == (10_000_000, 2_000)


def test_hotplug_and_cyclictest_times_take_units():
    """`--hotplug 1.5ms:1:offline` and `--cyclictest 1:100us:90` are in ns."""
    assert cli._hotplug("1.5ms:1:offline") == napikit.CpuHotplug(
        time_ns=1_500_000, cpu=1, online=False)
    assert cli._cyclictest("1:100us:90") == napikit.Cyclictest(
        cpu=1, period_ns=100_000, priority=90)


def test_not_integral_time_names_field_and_units(capsys):
    """`1.5ns` for a time field says what a time may be written as."""
    err = napikit_cli(capsys, "run", "--set", "duration_ns=1.5ns")[2]
    assert err == f"napikit: error: duration_ns: must be {cli.TIME} (got '1.5ns')\n"


def test_unexpected_value_error_while_configuring_is_one_line(monkeypatch, capsys):
    """A ValueError or OverflowError no validator caught is still one line, exit 2."""
    def overflow(*args, **kwargs):
        raise OverflowError("Python int too large to convert to C long")

    monkeypatch.setattr(cli, "Simulation", overflow)
    code, out, err = napikit_cli(capsys, "run", *SMALL)
    assert (code, out) == (2, "")
    assert err == "napikit: error: invalid input: Python int too large to convert to C long\n"


# ----------------------------------------------------------------- Ctrl-C, pipes


def test_interrupted_run_is_one_line_status_130(monkeypatch, capsys):
    """Ctrl-C during a run: `napikit: interrupted` on stderr, status 130, no output."""
    interrupt_after(monkeypatch, 0)
    assert napikit_cli(capsys, "run", *SMALL) == (130, "", "napikit: interrupted\n")


def test_interrupted_compare_prints_the_rows_done(monkeypatch, capsys):
    """Ctrl-C during `compare` still prints the rows that finished."""
    interrupt_after(monkeypatch, 2)
    code, out, err = napikit_cli(capsys, "compare", "--scenario", "seed-lo", "--scenario",
                                 "seed-rps", "--policy", "softirq-ipi", "--policy", "ksoftirqd",
                                 *SMALL)
    assert (code, err) == (130, "napikit: interrupted\n")
    rows = [line.split()[0] for line in out.splitlines()[2:]]
    assert out.startswith("seed-lo (") and "seed-rps" not in out
    assert rows == ["softirq-ipi", "ksoftirqd"]


def test_out_of_memory_is_one_line_status_1(capsys, monkeypatch):
    """A run whose queues cannot grow ends with the core's one line, status 1."""
    def run(self):
        raise MemoryError("napikit: cannot allocate the packet pool (8388608 packets)")

    monkeypatch.setattr(cli.Simulation, "run", run)
    code, out, err = napikit_cli(capsys, "run", *SMALL)
    assert (code, out, err) == (1, "", "napikit: cannot allocate the packet pool "
                                       "(8388608 packets)\n")


def _interrupt(command: list[str], env: dict[str, str],
               wait: float) -> tuple[subprocess.Popen, float, str]:
    """Start ``command``, send SIGINT after ``wait`` s; the process, the seconds it took
    to end after the signal (killed after 10 s), and its stderr."""
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, env=env)
    time.sleep(wait)
    proc.send_signal(signal.SIGINT)
    start = time.monotonic()
    try:
        err = proc.communicate(timeout=10)[1]
    except subprocess.TimeoutExpired:
        proc.kill()
        err = proc.communicate()[1]
    return proc, time.monotonic() - start, err


def test_sigint_stops_a_long_run_within_a_second(child):
    """SIGINT ends a 10**12-packet run within 1 s: status 130, one stderr line.

    Needs the core to check for signals while it simulates.
    """
    proc, took, err = _interrupt(child.napikit("run", "--packets", "1000000000000"),
                                 child.env, wait=1.5)
    assert (proc.returncode, err) == (130, "napikit: interrupted\n")
    assert took < 1


def test_sigint_reaches_the_cli_as_one_line(child):
    """A real SIGINT while a (stand-in, Python-level) run waits is one line, status 130."""
    script = ("import time, napikit.cli as c; c.Simulation.run = lambda self: time.sleep(60); "
              "raise SystemExit(c.main(['run']))")
    proc, took, err = _interrupt([*child.python, "-c", script], child.env, wait=1.5)
    assert (proc.returncode, err) == (130, "napikit: interrupted\n")
    assert took < 1


def test_closed_stdout_is_quiet_status_141(child):
    """`napikit run | head -1`: a reader gone before the output is no traceback."""
    read, write = os.pipe()
    os.close(read)  # the reader is gone: every write fails with EPIPE
    proc = subprocess.run(child.napikit("run", *SMALL), stdout=write,
                          stderr=subprocess.PIPE, text=True, env=child.env, timeout=60,
                          check=False)
    os.close(write)
    assert (proc.returncode, proc.stderr) == (141, "")


# ----------------------------------------------------------------- docs quote the CLI

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _quoted_errors() -> list[tuple[str, str, str]]:
    """``(doc, command, line)``: in a fenced block, each ``napikit: ...`` line after a
    ``$ napikit ...`` line is what that command prints on stderr."""
    quotes = []
    for doc in DOCS:
        fenced, command = False, None
        for line in doc.read_text().splitlines():
            line = line.strip()
            if line.startswith("```"):
                fenced, command = not fenced, None
            elif fenced and line.startswith("$ napikit "):
                command = line[2:]
            elif fenced and command and line.startswith("napikit: "):
                quotes.append((doc.name, command, line))
    return quotes


@pytest.mark.parametrize("doc, command, line", _quoted_errors())
def test_docs_quote_the_cli_error_texts(doc, command, line, capsys):
    """An error text the docs quote is what its command prints, with status 2."""
    argv = shlex.split(command)[1:]
    policy = argv[argv.index("--policy") + 1] if "--policy" in argv else None
    if policy is not None and policy not in registry().names():
        pytest.skip(f"{doc}: policy {policy!r} is not installed")
    code, _, err = napikit_cli(capsys, *argv)
    assert (code, err) == (2, line + "\n")


def test_docs_quote_error_texts_only_where_they_are_checked():
    """Every concrete `napikit: error: ...` text in the docs is a checked quote."""
    checked = {line for _, _, line in _quoted_errors()}
    for doc in DOCS:
        for text in re.findall(r"napikit: error: [^`\n]*", doc.read_text()):
            assert text == "napikit: error: ..." or text in checked, (doc.name, text)


# ----------------------------------------------------------------- scenario files, replay

TINY = ["--packets", "5000"]


@pytest.fixture
def dumped(tmp_path, capsys) -> Callable[[str], Path]:
    """``dumped(name)``: the path of scenario ``name`` written by `scenarios --dump`."""

    def dump(name: str) -> Path:
        code, out, err = napikit_cli(capsys, "scenarios", "--dump", name)
        assert (code, err) == (0, "")
        path = tmp_path / f"{name}.toml"
        path.write_text(out)
        return path

    return dump


@pytest.mark.parametrize("name", napikit.scenarios.names())
def test_scenarios_dump_prints_the_scenario_as_a_file(capsys, name):
    """`scenarios --dump NAME` prints TOML that loads as the scenario's Config."""
    code, out, _ = napikit_cli(capsys, "scenarios", "--dump", name)
    assert code == 0
    assert napikit.loads_scenario(out) == napikit.scenarios.get(name).config


@pytest.mark.parametrize("name", napikit.scenarios.names())
@pytest.mark.parametrize("flags", [
    [],
    ["--policy", "backlog-threads", "--option", "fast_path=false"],
    ["--policy", "ksoftirqd", "--seed", "3", "--set", "kernel.netdev_max_backlog=300"],
], ids=["default", "backlog-threads-nofast", "ksoftirqd-overrides"])
def test_run_config_is_byte_identical_to_run_scenario(capsys, dumped, name, flags):
    """`run --config dumped.toml` prints the very bytes of `run --scenario NAME`."""
    by_name = napikit_cli(capsys, "run", "--scenario", name, "--json", *TINY, *flags)
    by_file = napikit_cli(capsys, "run", "--config", str(dumped(name)), "--json", *TINY, *flags)
    assert by_name[0] == 0 and by_file == by_name


def test_run_config_runs_the_files_policy_and_options(capsys, tmp_path):
    """Without --policy, the file's policy and options run; --option adds to them."""
    path = tmp_path / "s.toml"
    path.write_text(napikit.dump_scenario(Config(
        packets=5000, policy="backlog-threads", policy_options={"fast_path": False})))
    doc = json.loads(napikit_cli(capsys, "run", "--config", str(path), "--json")[1])
    assert (doc["policy"], doc["config"]["policy_options"]) == (
        "backlog-threads", {"fast_path": False})
    doc = json.loads(napikit_cli(capsys, "run", "--config", str(path), "--json",
                                 "--option", "fast_path=true")[1])
    assert doc["config"]["policy_options"] == {"fast_path": True}


def test_run_config_policy_replaces_the_files_policy_and_options(capsys, tmp_path):
    """--policy names the policy to run, with only the options given on the line."""
    path = tmp_path / "s.toml"
    path.write_text(napikit.dump_scenario(Config(
        packets=5000, policy="backlog-threads", policy_options={"fast_path": False})))
    doc = json.loads(napikit_cli(capsys, "run", "--config", str(path), "--json",
                                 "--policy", "softirq-ipi")[1])
    assert (doc["policy"], doc["config"]["policy_options"]) == ("softirq-ipi", {})


@pytest.mark.parametrize("text, named", [
    (None, "cannot read scenario file"),
    ("ncpus = = 2\n", "not valid TOML"),
    ('ncpus = 2\n', "format: must be"),
    ('format = "napikit-scenario/1"\ncolour = 1\n', "colour: must be a key of Config"),
    ('format = "napikit-scenario/1"\n[kernel]\nhz = "fast"\n', "kernel.hz: must be an integer"),
    ('format = "napikit-scenario/1"\n[[workloads]]\nkind = "LoopbackUdp"\nrate_pps = 0\n',
     "workloads[0].rate_pps: must be a number"),
    ('format = "napikit-scenario/1"\n[[workloads]]\nrate_pps = 1e5\n', "workloads[0].kind"),
])
def test_a_bad_config_file_is_one_line_exit_2(capsys, tmp_path, text, named):
    """A missing file, bad TOML, an unknown key, a wrong type or a refused value: one
    stderr line naming it, status 2."""
    path = tmp_path / "bad.toml"
    if text is not None:
        path.write_text(text)
    code, out, err = napikit_cli(capsys, "run", "--config", str(path), *TINY)
    assert (code, out) == (2, "")
    assert err.startswith("napikit: error: ") and err.count("\n") == 1
    assert named in err


def test_config_and_scenario_are_mutually_exclusive(capsys, dumped):
    """`--config` with `--scenario` is a usage error."""
    code, out, err = napikit_cli(capsys, "run", "--config", str(dumped("seed-lo")),
                                 "--scenario", "seed-lo")
    assert (code, out) == (2, "")
    assert err == "napikit: error: argument --scenario: not allowed with argument --config\n"


def test_replay_of_a_run_is_identical_exit_0(capsys, tmp_path):
    """`replay` of a `run --json` result: identical, status 0."""
    path = tmp_path / "r.json"
    path.write_text(napikit_cli(capsys, "run", "--scenario", "seed-rps", "--json", *TINY)[1])
    code, out, err = napikit_cli(capsys, "replay", str(path))
    assert (code, err) == (0, "")
    assert out.startswith(f"{path}: identical: ")


def test_replay_of_a_tampered_result_exits_1_naming_the_field(capsys, tmp_path):
    """An edited figure: status 1 and the field with its file and rerun values."""
    path = tmp_path / "r.json"
    doc = json.loads(napikit_cli(capsys, "run", "--json", *TINY)[1])
    ipis = doc["ipis"]
    doc["ipis"] = ipis + 5
    path.write_text(json.dumps(doc, sort_keys=True, indent=2) + "\n")
    code, out, _ = napikit_cli(capsys, "replay", str(path))
    assert code == 1
    assert f"  ipis: {ipis + 5} -> {ipis}\n" in out


def test_replay_of_garbage_is_one_line_exit_2(capsys, tmp_path):
    """A file that is not a napikit result: one line, status 2."""
    path = tmp_path / "r.json"
    path.write_text("{\"hello\": 1}")
    code, out, err = napikit_cli(capsys, "replay", str(path))
    assert (code, out) == (2, "")
    assert err.startswith(f"napikit: error: {path}: not a napikit result") and \
        err.count("\n") == 1


@pytest.mark.parametrize("argv, shown", [
    (["--help"], "replay"),
    (["run", "--help"], "--config FILE.toml"),
    (["scenarios", "--help"], "--dump NAME"),
    (["replay", "--help"], "RESULT.json"),
])
def test_help_shows_scenario_files_and_replay(capsys, argv, shown):
    """The new command and options are in the help texts."""
    code, out, _ = napikit_cli(capsys, *argv)
    assert code == 0 and shown in out


def test_run_set_sample_interval_records_a_time_series(capsys):
    """--set sample_interval_ns=1ms: the JSON result carries the series, one row per
    millisecond of the run."""
    code, out, _ = napikit_cli(capsys, "run", "--packets", "5000", "--json",
                               "--set", "sample_interval_ns=1ms")
    assert code == 0
    d = json.loads(out)
    times = d["samples"]["time_ns"]
    assert times[0] == 1_000_000 and times[-1] == d["sim_time_ns"]
    assert sum(d["samples"]["delivered"]) == d["delivered"]


def test_compare_seeds_reports_mean_and_confidence_per_figure(capsys):
    """compare --seeds 3: each row ran with seeds 1-3; its estimates are the mean and
    the t interval of the three results' figures."""
    code, out, _ = napikit_cli(capsys, "compare", "--scenario", "perf-a", "--seeds", "3",
                               "--packets", "20k", "--policy", "softirq-ipi", "--json")
    assert code == 0
    row = json.loads(out)["perf-a"]["softirq-ipi"]
    assert row["seeds"] == [1, 2, 3]
    assert [r["seed"] for r in row["results"]] == [1, 2, 3]
    pps = [r["delivered_pps"] for r in row["results"]]
    assert len(set(pps)) == 3  # Poisson arrivals: the seed matters
    est = row["estimates"]["delivered/s"]
    assert est["n"] == 3 and est["mean"] == pytest.approx(sum(pps) / 3) and est["ci95"] > 0


def test_compare_seeds_table_says_how_many_seeds(capsys):
    code, out, _ = napikit_cli(capsys, "compare", "--scenario", "perf-a", "--seeds", "2",
                               "--packets", "5k", "--policy", "softirq-ipi")
    assert code == 0 and "mean ±95 % CI over 2 seeds 1-2" in out and " ±" in out


@pytest.mark.parametrize("n", ["0", "1001", "-2"])
def test_compare_seeds_out_of_range_is_one_line(capsys, n):
    code, _, err = napikit_cli(capsys, "compare", "--seeds", n)
    assert code == 2 and err.count("\n") == 1 and "--seeds" in err
