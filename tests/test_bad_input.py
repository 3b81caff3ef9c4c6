"""The bad-input corpus: extreme and wrong inputs to the CLI and the API.

Each case must end in a one-line error (CLI: exit status 2 and one ``napikit:`` line on
stderr; API: a one-line :class:`~napikit.ConfigError`), within 2 s and with memory
bounded: never a crash, a hang, a traceback or a wrong result. The cases span the
classes a user found: C overflows and divisions by zero, unbounded sizes, clocks that
wrap, wrong Python types, unknown names and malformed command lines.

The cases run in a worker process (``python tests/test_bad_input.py FIRST``) with an
address-space limit, so a crash or a hang fails its own test instead of killing pytest.
"Within 2 s" is CPU time, which a loaded CI machine does not inflate; a case still
running after a wall-clock alarm of :data:`HANG_SECONDS` is a hang.
"""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
from typing import Any

import pytest

#: Every case has 2 s of CPU time and the worker at most this much memory in all.
SECONDS = 2
#: Wall-clock seconds after which a case counts as hung.
HANG_SECONDS = 20
ADDRESS_SPACE = 2 * 2**30

# ----------------------------------------------------------------- the corpus

BIG = str(10**30)
#: The first line of a scenario file.
SCENARIO = 'format = "napikit-scenario/1"\n'

#: CLI cases: the arguments after ``napikit``.
CLI: dict[str, list[str]] = {
    # numbers too large for the kernel's limits or the core's C types
    "ncpus-1e9": ["run", "--ncpus", "1000000000"],
    "ncpus-0": ["run", "--ncpus", "0"],
    "ncpus-negative": ["run", "--ncpus", "-4"],
    "ncpus-text": ["run", "--ncpus", "four"],
    "ncpus-fraction": ["run", "--ncpus", "2.5"],
    "packets-0": ["run", "--packets", "0"],
    "packets-negative": ["run", "--packets", "-1"],
    "packets-huge": ["run", "--packets", BIG],
    "packets-2**63": ["run", "--packets", str(2**63)],
    "packets-fraction": ["run", "--packets", "1.5"],
    "packets-nan": ["run", "--packets", "nan"],
    "seed-negative": ["run", "--seed", "-1"],
    "seed-2**64": ["run", "--seed", str(2**64)],
    "seed-huge": ["run", "--seed", BIG],
    "hz-1e9": ["run", "--set", "kernel.hz=1000000000"],
    "hz-0": ["run", "--set", "kernel.hz=0"],
    "hz-fraction": ["run", "--set", "kernel.hz=99.5"],
    "backlog-2**31": ["run", "--set", f"kernel.netdev_max_backlog={2**31}"],
    "backlog-huge": ["run", "--set", f"kernel.netdev_max_backlog={BIG}"],
    "backlog-0": ["run", "--set", "kernel.netdev_max_backlog=0"],
    "dev-weight-2**31": ["run", "--set", f"kernel.dev_weight={2**31}"],
    "dev-weight-times-bias": ["run", "--set", "kernel.dev_weight=65536",
                              "--set", "kernel.dev_weight_rx_bias=65536"],
    "budget-0": ["run", "--set", "kernel.netdev_budget=0"],
    "budget-huge": ["run", "--set", f"kernel.netdev_budget={BIG}"],
    "budget-usecs-huge": ["run", "--set", f"kernel.netdev_budget_usecs={2**40}"],
    "flow-limit-len-huge": ["run", "--set", f"kernel.flow_limit_table_len={2**40}"],
    "flow-limit-cpu-absent": ["run", "--set", "kernel.flow_limit_cpu_bitmap=7"],
    "softirq-restart-huge": ["run", "--set", f"kernel.max_softirq_restart={BIG}"],
    "softirq-time-0": ["run", "--set", "kernel.max_softirq_time_ms=0"],
    "sched-latency-huge": ["run", "--set", f"kernel.sched_latency_ns={2**62}"],
    "wakeup-gran-negative": ["run", "--set", "kernel.sched_wakeup_granularity_ns=-1"],
    "scheduler-unknown": ["run", "--set", "kernel.scheduler=bfs"],
    "base-slice-0": ["run", "--set", "kernel.sched_base_slice_ns=0"],
    "run-to-parity-not-bool": ["run", "--set", "kernel.sched_run_to_parity=sometimes"],
    "rmem-huge": ["run", "--set", f"kernel.rmem_default={2**40}"],
    "truesize-0": ["run", "--set", "kernel.skb_truesize=0"],
    "preempt-rt-maybe": ["run", "--set", "kernel.preempt_rt=maybe"],
    "cost-2**62": ["run", "--set", f"costs.udp_sendmsg_ns={2**62}"],
    "cost-huge": ["run", "--set", f"costs.ipi_latency_ns={BIG}"],
    "cost-negative": ["run", "--set", "costs.netif_rx_ns=-5"],
    "cost-fraction": ["run", "--set", "costs.protocol_rx_ns=0.5"],
    "cost-text": ["run", "--set", "costs.protocol_rx_ns=fast"],
    "cost-inf": ["run", "--set", "costs.protocol_rx_ns=inf"],
    "duration-0": ["run", "--set", "duration_ns=0"],
    "duration-2**63": ["run", "--set", f"duration_ns={2**63}"],
    "drain-negative": ["run", "--set", "drain_ns=-1"],
    "drain-2**62": ["run", "--set", f"drain_ns={2**62}"],
    "no-packets-no-duration": ["run", "--set", "packets=none"],
    "offline-all": ["run", "--set", "offline_cpus=0,1"],
    "offline-absent-cpu": ["run", "--set", "offline_cpus=9"],
    # workloads
    "flows-0": ["run", "--set", "workload.flows=0"],
    "flows-huge": ["run", "--set", f"workload.flows={2**40}"],
    "rate-0": ["run", "--set", "workload.rate_pps=0"],
    "rate-inf": ["run", "--set", "workload.rate_pps=inf"],
    "rate-nan": ["run", "--set", "workload.rate_pps=nan"],
    "rate-1e12": ["run", "--set", "workload.rate_pps=1e12"],
    "senders-absent-cpu": ["run", "--set", "workload.senders=5"],
    "receivers-mismatch": ["run", "--set", "workload.receivers=0,1"],
    "rps-absent-cpu": ["run", "--set", "workload.rps_cpus=0,64"],
    "nice-20": ["run", "--set", "workload.nice=20"],
    "nice-fraction": ["run", "--set", "workload.nice=1.5"],
    "rps-duplicate": ["run", "--set", "workload.rps_cpus=1,1"],
    "workload-unknown-field": ["run", "--set", "workload.colour=red"],
    "nic-burst-huge": ["run", "--scenario", "perf-a", "--set", f"workload.burst={2**31}"],
    "nic-zipf-huge": ["run", "--scenario", "perf-a", "--set", "workload.zipf_s=1e6"],
    "nic-arrival-unknown": ["run", "--scenario", "perf-a", "--set", "workload.arrival=sometimes"],
    "nic-cpu-absent": ["run", "--scenario", "perf-a", "--set", "workload.cpu=99"],
    # hotplug and cyclictest
    "hotplug-malformed": ["run", "--hotplug", "soon"],
    "hotplug-absent-cpu": ["run", "--hotplug", "1000:99:offline"],
    "hotplug-time-2**63": ["run", "--hotplug", f"{2**63}:1:offline"],
    "hotplug-time-huge": ["run", "--hotplug", f"{BIG}:1:offline"],
    "hotplug-cpu-huge": ["run", "--hotplug", f"1000:{BIG}:offline"],
    "hotplug-last-cpu": ["run", "--hotplug", "1000:1:offline", "--hotplug", "2000:0:offline"],
    "hotplug-already-online": ["run", "--hotplug", "1000:1:online"],
    "hotplug-state-unknown": ["run", "--hotplug", "1000:1:sideways"],
    "cyclictest-malformed": ["run", "--cyclictest", "one"],
    "cyclictest-absent-cpu": ["run", "--cyclictest", "7"],
    "cyclictest-period-short": ["run", "--cyclictest", "1:10"],
    "cyclictest-period-huge": ["run", "--cyclictest", f"1:{2**62}"],
    "cyclictest-priority-100": ["run", "--cyclictest", "1:100000:100"],
    "cyclictest-priority-0": ["run", "--cyclictest", "1:100000:0"],
    # names
    "policy-unknown": ["run", "--policy", "nope"],
    "scenario-unknown": ["run", "--scenario", "nope"],
    "option-for-optionless-policy": ["run", "--option", "x=1"],
    "option-unknown": ["run", "--policy", "backlog-threads", "--option", "colour=red"],
    "option-wrong-type": ["run", "--policy", "backlog-threads", "--option", "fast_path=3"],
    "option-malformed": ["run", "--option", "fast_path"],
    "set-unknown-field": ["run", "--set", "colour=red"],
    "set-unknown-section": ["run", "--set", "disk.size=1"],
    "set-kernel-unknown": ["run", "--set", "kernel.nope=1"],
    "set-malformed": ["run", "--set", "ncpus"],
    "set-empty-key": ["run", "--set", "=4"],
    "flag-unknown": ["run", "--frobnicate"],
    "command-unknown": ["frobnicate"],
    "command-missing": [],
    "compare-policy-unknown": ["compare", "--policy", "nope"],
    "compare-scenario-unknown": ["compare", "--scenario", "nope"],
    "compare-variant-malformed": ["compare", "--variant", "backlog-threads"],
    "compare-variant-unknown-option": ["compare", "--variant", "backlog-threads:colour=red"],
    "compare-ncpus-huge": ["compare", "--ncpus", BIG],
    "study-out-under-a-file": ["study", "--quick", "--out", "/etc/passwd/study"],
    "study-ncpus-0": ["study", "--ncpus", "0"],
    "study-loads-negative": ["study", "--loads", "-1"],
    "study-jobs-0": ["study", "--jobs", "0"],
    # scenario files and replay (files that exist on any Linux host, or none)
    "config-missing": ["run", "--config", "/nonexistent/scenario.toml"],
    "config-a-directory": ["run", "--config", "/"],
    "config-not-toml": ["run", "--config", "/etc/passwd"],
    "config-and-scenario": ["run", "--config", "/etc/passwd", "--scenario", "seed-lo"],
    "config-no-file-name": ["run", "--config"],
    "dump-unknown": ["scenarios", "--dump", "nope"],
    "replay-missing": ["replay", "/nonexistent/result.json"],
    "replay-a-directory": ["replay", "/"],
    "replay-not-json": ["replay", "/etc/passwd"],
    "replay-no-file-name": ["replay"],
    "replay-limit-0": ["replay", "--limit", "0", "/etc/passwd"],
}

#: API cases: a constructor and its arguments, nested as ``[NAME, {...}]`` (data: no
#: code runs to build a case beyond the constructors named).
API: dict[str, list[Any]] = {
    "config-ncpus-text": ["Config", {"ncpus": "4"}],
    "config-ncpus-bool": ["Config", {"ncpus": True}],
    "config-ncpus-float": ["Config", {"ncpus": 2.0}],
    "config-ncpus-1e9": ["Config", {"ncpus": 10**9}],
    "config-seed-2**64": ["Config", {"seed": 2**64}],
    "config-seed-float": ["Config", {"seed": 1.5}],
    "config-packets-2**62": ["Config", {"packets": 2**62}],
    "config-packets-none": ["Config", {"packets": None}],
    "config-policy-number": ["Config", {"policy": 5}],
    "config-policy-empty": ["Config", {"policy": ""}],
    "config-policy-options-int": ["Config", {"policy_options": 5}],
    "config-policy-options-text": ["Config", {"policy_options": "fast_path"}],
    "config-policy-options-list-value": ["Config", {"policy_options": {"a": [1]}}],
    "config-policy-options-none-value": ["Config", {"policy_options": {"a": None}}],
    "config-policy-options-int-key": ["Config", {"policy_options": {1: True}}],
    "config-policy-options-nan": ["Config", {"policy_options": {"a": float("nan")}}],
    "config-workloads-int": ["Config", {"workloads": 5}],
    "config-workloads-empty": ["Config", {"workloads": []}],
    "config-workloads-only-cyclictest": ["Config", {"workloads": [["Cyclictest", {}]]}],
    "config-kernel-dict": ["Config", {"kernel": {"hz": 100}}],
    "config-costs-int": ["Config", {"costs": 5}],
    "config-hotplug-int": ["Config", {"hotplug": 5}],
    "config-offline-range-huge": ["Config", {"offline_cpus": ["range", 10**12]}],
    "kernel-hz-1e9": ["KernelParams", {"hz": 10**9}],
    "kernel-backlog-1e18": ["KernelParams", {"netdev_max_backlog": 10**18}],
    "kernel-weight-2**40": ["KernelParams", {"dev_weight": 2**40}],
    "kernel-flow-limit-2**40": ["KernelParams", {"flow_limit_table_len": 2**40}],
    "kernel-bitmap-huge-cpu": ["KernelParams", {"flow_limit_cpu_bitmap": [2**40]}],
    "kernel-preempt-rt-int": ["KernelParams", {"preempt_rt": 1}],
    "costs-2**62": ["CostModel", {"ipi_latency_ns": 2**62}],
    "costs-float": ["CostModel", {"ipi_latency_ns": 1.0}],
    "loopback-rate-inf": ["LoopbackUdp", {"rate_pps": float("inf")}],
    "loopback-senders-negative": ["LoopbackUdp", {"senders": [-1], "receivers": [1]}],
    "loopback-senders-text": ["LoopbackUdp", {"senders": "0", "receivers": "1"}],
    "nic-rate-nan": ["NicIrq", {"rate_pps": float("nan")}],
    "nic-burst-2**31": ["NicIrq", {"burst": 2**31}],
    "nic-flow-dist-unknown": ["NicIrq", {"flow_dist": "pareto"}],
    "cyclictest-work-over-period": ["Cyclictest", {"period_ns": 10_000, "work_ns": 20_000}],
    "hotplug-time-2**63": ["CpuHotplug", {"time_ns": 2**63, "cpu": 1, "online": False}],
    "hotplug-online-text": ["CpuHotplug", {"time_ns": 0, "cpu": 1, "online": "no"}],
    "dist-kind-unknown": ["CostDistribution", {"kind": "pareto"}],
    "dist-lognormal-no-sigma": ["CostDistribution", {"kind": "lognormal"}],
    "dist-sigma-huge": ["CostDistribution", {"kind": "lognormal", "sigma": 1e9}],
    "dist-sigma-nan": ["CostDistribution", {"kind": "lognormal", "sigma": float("nan")}],
    "dist-exponential-with-values": ["CostDistribution", {"kind": "exponential",
                                                          "values": [1.0]}],
    "dist-empirical-empty": ["CostDistribution", {"kind": "empirical"}],
    "dist-empirical-weights-short": ["CostDistribution", {"kind": "empirical",
                                                          "values": [1, 2], "weights": [1]}],
    "dist-empirical-nan": ["CostDistribution", {"kind": "empirical",
                                                "values": [float("nan")], "weights": [1]}],
    "dist-empirical-negative": ["CostDistribution", {"kind": "empirical",
                                                     "values": [-1], "weights": [1]}],
    "dist-empirical-zero-weights": ["CostDistribution", {"kind": "empirical",
                                                         "values": [1], "weights": [0]}],
    "dist-empirical-all-zero": ["CostDistribution", {"kind": "empirical",
                                                     "values": [0, 0], "weights": [1, 1]}],
    "dist-empirical-range-huge": ["CostDistribution", {"kind": "empirical",
                                                       "values": ["range", 10**12]}],
    "config-dist-unknown-cost": ["Config", {"cost_distributions": {
        "colour_ns": ["CostDistribution", {"kind": "exponential"}]}}],
    "config-dist-not-a-distribution": ["Config", {"cost_distributions": {
        "protocol_rx_ns": 5}}],
    "config-dist-not-a-mapping": ["Config", {"cost_distributions": 5}],
    "config-sample-interval-10ns": ["Config", {"sample_interval_ns": 10}],
    "config-sample-interval-text": ["Config", {"sample_interval_ns": "1ms"}],
    "simulate-unknown-policy": ["simulate", {"policy": "nope", "packets": 10}],
    "scenario-no-format": ["loads_scenario", {"text": "ncpus = 2"}],
    "scenario-unknown-key": ["loads_scenario", {"text": SCENARIO + "colour = 1\n"}],
    "scenario-ncpus-1e30": ["loads_scenario", {"text": SCENARIO + f"ncpus = {BIG}\n"}],
    "scenario-seed-2**64": ["loads_scenario", {"text": SCENARIO + f"seed = {2**64}\n"}],
    "scenario-packets-inf": ["loads_scenario", {"text": SCENARIO + "packets = inf\n"}],
    "scenario-kernel-a-number": ["loads_scenario", {"text": SCENARIO + "kernel = 5\n"}],
    "scenario-kind-a-class-name": ["loads_scenario", {
        "text": SCENARIO + '[[workloads]]\nkind = "Config"\n'}],
    "scenario-kind-a-dotted-name": ["loads_scenario", {
        "text": SCENARIO + '[[workloads]]\nkind = "os.system"\n'}],
    "scenario-hotplug-a-table": ["loads_scenario", {
        "text": SCENARIO + "[hotplug]\ntime_ns = 1\n"}],
    "scenario-option-nested": ["loads_scenario", {
        "text": SCENARIO + "[policy_options.a]\nb = 1\n"}],
    "config-dict-workloads-text": ["config_from_dict", {"data": {"workloads": "LoopbackUdp"}}],
    "config-dict-rate-nan": ["config_from_dict", {"data": {"workloads": [
        {"kind": "NicIrq", "rate_pps": float("nan")}]}}],
    "simulate-option-wrong-type": ["simulate", {"policy": "backlog-threads", "packets": 10,
                                                "policy_options": {"fast_path": 3}}],
}


#: Extreme but valid inputs: each runs to the end and conserves packets, within 2 s and
#: the same memory limit (so nothing may be sized by a limit rather than by need).
VALID: dict[str, list[Any]] = {
    "backlog-int-max": ["simulate", {"packets": 2_000, "kernel": ["KernelParams", {
        "netdev_max_backlog": 2**31 - 1}]}],
    "rmem-int-max": ["simulate", {"packets": 2_000, "kernel": ["KernelParams", {
        "rmem_default": 2**31 - 1, "skb_truesize": 1}]}],
    "flow-limit-table-max": ["simulate", {"packets": 2_000, "kernel": ["KernelParams", {
        "flow_limit_table_len": 2**20, "flow_limit_cpu_bitmap": [0, 1]}]}],
    "weight-int-max": ["simulate", {"packets": 2_000, "kernel": ["KernelParams", {
        "dev_weight": 2**31 - 1, "netdev_budget": 2**31 - 1}]}],
    "hz-max": ["simulate", {"packets": 2_000, "kernel": ["KernelParams", {"hz": 10_000}]}],
    "hz-1": ["simulate", {"packets": 2_000, "kernel": ["KernelParams", {"hz": 1}]}],
    "seed-u64-max": ["simulate", {"packets": 2_000, "seed": 2**64 - 1}],
    "costs-max": ["simulate", {"packets": 20, "costs": ["CostModel", {
        "udp_sendmsg_ns": 10**10, "udp_recvmsg_ns": 10**10}]}],
    "drain-max": ["simulate", {"packets": 2_000, "drain_ns": 2**61}],
    "duration-max": ["simulate", {"packets": 2_000, "duration_ns": 2**61}],
    "ncpus-4096": ["simulate", {"ncpus": 4096, "packets": 2_000}],
    "nic-burst-max": ["simulate", {"packets": 20_000, "workloads": [["NicIrq", {
        "burst": 4096, "arrival": "bursty", "rps_cpus": [1]}]]}],
    "nic-rate-max": ["simulate", {"packets": 20_000, "workloads": [["NicIrq", {
        "rate_pps": 1e9, "rps_cpus": [0, 1]}]]}],
    "flows-max": ["simulate", {"packets": 2_000, "workloads": [["NicIrq", {
        "flows": 2**24, "flow_dist": "zipf"}]]}],
    "dist-every-cost-lognormal-widest": ["simulate", {"packets": 2_000, "cost_distributions": {
        name: ["CostDistribution", {"kind": "lognormal", "sigma": 3.0}]
        for name in ("netif_rx_ns", "protocol_rx_ns", "udp_sendmsg_ns", "udp_recvmsg_ns",
                     "ipi_send_ns", "ipi_latency_ns", "context_switch_ns", "wakeup_ns",
                     "wakeup_latency_ns", "softirq_entry_ns")}}],
    "samples-every-us-on-4096-cpus": ["simulate", {"ncpus": 4096, "packets": 2_000,
                                                   "sample_interval_ns": 1_000}],
    "dist-empirical-most-bins": ["simulate", {"packets": 2_000, "cost_distributions": {
        "protocol_rx_ns": ["CostDistribution", {"kind": "empirical",
                                                "values": list(range(4096)),
                                                "weights": [1] * 4096}]}}],
}

# ----------------------------------------------------------------- the worker


def _build(spec: Any) -> Any:
    import napikit

    if isinstance(spec, list) and len(spec) == 2 and isinstance(spec[0], str):
        name, args = spec
        if name == "range":
            return range(args)
        target = getattr(napikit, name)
        return target(**{k: _build(v) for k, v in args.items()})
    if isinstance(spec, list):
        return [_build(v) for v in spec]
    if isinstance(spec, dict):
        return {k: _build(v) for k, v in spec.items()}
    return spec


def _run_case(kind: str, payload: Any) -> dict[str, Any]:
    import contextlib
    import io

    import napikit
    from napikit import cli

    out = {"status": None, "stderr": "", "error": None}
    if kind == "cli":
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            try:
                out["status"] = cli.main(payload)
            except SystemExit as e:
                out["status"] = e.code
        out["stderr"] = err.getvalue()
        return out
    try:
        result = _build(payload)
    except napikit.ConfigError as e:
        out["error"] = ["ConfigError", str(e)]
    else:
        if kind == "valid":
            out["conserved"] = result.conserved
    return out


class _Timeout(Exception):
    pass


def _worker() -> None:
    import resource
    import signal
    import time
    import traceback

    import napikit.cli  # noqa: F401  (imported once, outside every case's 2 s)

    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))

    def alarm(signum: int, frame: Any) -> None:
        raise _Timeout

    signal.signal(signal.SIGALRM, alarm)
    for kind, name, payload in _cases()[int(sys.argv[1]):]:
        print(json.dumps({"start": f"{kind}:{name}"}), flush=True)
        began = time.process_time()
        signal.alarm(HANG_SECONDS)
        try:
            record = _run_case(kind, payload)
        except _Timeout:
            record = {"hang": True}
        except BaseException as e:  # what escaped is the finding
            record = {"escaped": f"{type(e).__name__}: {e}",
                      "traceback": traceback.format_exc(limit=4)}
        finally:
            signal.alarm(0)
        record.update(name=f"{kind}:{name}", seconds=time.process_time() - began)
        print(json.dumps(record, default=repr), flush=True)


# ----------------------------------------------------------------- the checks


def _cases() -> list[tuple[str, str, Any]]:
    return [
        *(("cli", k, v) for k, v in CLI.items()),
        *(("api", k, v) for k, v in API.items()),
        *(("valid", k, v) for k, v in VALID.items()),
    ]


def _lines(stream: Any) -> queue.Queue[str]:
    """The worker's output lines, read by a thread: select() on a buffered text stream
    would miss lines already in its buffer and wait for more that never come."""
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        for line in stream:
            lines.put(line)
        lines.put("")

    threading.Thread(target=pump, daemon=True).start()
    return lines


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory) -> dict[str, dict[str, Any]]:
    """Every case's record. The worker runs the cases from a given index on; a case it
    dies in, or that outlasts the worker's own alarm (a C loop deaf to signals), is
    recorded as such and the next worker starts after it."""
    names = [f"{kind}:{name}" for kind, name, _ in _cases()]
    records: dict[str, dict[str, Any]] = {}
    errors = tmp_path_factory.mktemp("bad-input") / "stderr"
    i = 0
    while i < len(names):
        with open(errors, "w") as err:
            proc = subprocess.Popen([sys.executable, __file__, str(i)], stdout=subprocess.PIPE,
                                    stderr=err, text=True)
        started = None
        lines = _lines(proc.stdout)
        while True:
            # The worker's alarm ends a case after HANG_SECONDS; this is the backstop
            # (it also covers the worker's start-up on a slow machine).
            try:
                line = lines.get(timeout=2 * HANG_SECONDS + 30)
            except queue.Empty:
                proc.kill()
                proc.wait()
                records[started or names[i]] = {"hang": True}
                i = names.index(started or names[i]) + 1
                break
            if not line:
                proc.wait()
                if started is not None:
                    records[started] = {"died": proc.returncode,
                                        "stderr": errors.read_text()[-2000:]}
                    i = names.index(started) + 1
                else:
                    i = len(names)
                break
            row = json.loads(line)
            if "start" in row:
                started = row["start"]
            else:
                records[row["name"]] = row
                started = None
        assert proc.stdout is not None
        proc.stdout.close()
    return records


def _check(record: dict[str, Any] | None) -> dict[str, Any]:
    assert record is not None, "the worker never reached this case"
    for failure in ("died", "hang", "escaped"):
        assert failure not in record, record
    assert record["seconds"] < SECONDS, record
    return record


def test_the_corpus_spans_a_hundred_cases():
    """The issue asks for at least 100 cases over the CLI and the API."""
    assert len(CLI) + len(API) >= 100 and len(CLI) >= 50 and len(API) >= 30


@pytest.mark.parametrize("name", list(CLI))
def test_cli_bad_input_is_one_line_and_exit_2(outcomes, name):
    """Exit status 2, one ``napikit:`` line on stderr, no traceback, within 2 s."""
    record = _check(outcomes.get(f"cli:{name}"))
    assert record["status"] == 2, record
    lines = record["stderr"].splitlines()
    assert len(lines) == 1 and lines[0].startswith("napikit: "), record["stderr"]
    assert "Traceback" not in record["stderr"]


@pytest.mark.parametrize("name", list(API))
def test_api_bad_input_is_a_one_line_config_error(outcomes, name):
    """A one-line ConfigError naming a field, within 2 s, nothing else escaping."""
    record = _check(outcomes.get(f"api:{name}"))
    assert record["error"] is not None, "accepted: no error raised"
    kind, message = record["error"]
    assert kind == "ConfigError" and "\n" not in message and ": must be " in message


@pytest.mark.parametrize("name", list(VALID))
def test_extreme_valid_input_runs_and_conserves_packets(outcomes, name):
    """At the edges of every range a run ends, within 2 s and the memory limit, with
    every packet processed, dropped with a reason, or still queued."""
    record = _check(outcomes.get(f"valid:{name}"))
    assert record["error"] is None and record["conserved"] is True, record


if __name__ == "__main__":
    _worker()
