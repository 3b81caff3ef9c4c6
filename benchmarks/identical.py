"""Byte-identical results from two builds of napikit: the same configurations run in
each build's own interpreter, the sha256 of each ``Result.to_json()`` compared.

A change to the core that only makes it faster (issue 12: the event queue, the
histogram index) must leave every result as it was, to the byte. The configurations:
every shipped scenario (``napikit.scenarios.names()``) under every policy variant
(softirq-ipi, ksoftirqd, backlog-threads, backlog-threads with ``fast_path=False``);
the scaling runs of ``benchmarks/scale.py`` (4 to 1,024 CPUs); configurations drawn by
a seeded generator over CPU counts up to 1,024, NIC and loopback workloads, RPS masks,
costs, drawn cost distributions, kernel knobs, cyclictest tasks, CPU hotplug, time
series and duration-bounded runs; and, where hypothesis is installed in this
interpreter, examples of ``napikit.testing.strategies.supported_configs`` (derandomized)
for each policy. Some runs also record a trace (the compiled core's traced build),
whose records are hashed too; a run that raises hashes its error.

This interpreter builds the configurations and writes them as scenario files
(``napikit.scenario_file.dump_scenario``, which loads back equal); each build runs
them in a child started with ``-P`` in a temporary directory, so it imports its own
installed napikit, never a checkout's. ``napikit.__version__`` is in every
``to_json()``: the builds compared must report the same version.

Run ``python benchmarks/identical.py --baseline OTHER_PYTHON`` (``--help`` for
options); it exits 1 if any hash differs.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from typing import Any

import attrs

import napikit
from napikit import (
    Config,
    CostDistribution,
    CostModel,
    CpuHotplug,
    Cyclictest,
    KernelParams,
    LoopbackUdp,
    NicIrq,
    plugins,
    scenarios,
)
from napikit.errors import ConfigError
from napikit.scenario_file import dump_scenario

#: (policy, policy_options, name) of every policy variant compared.
POLICIES: list[tuple[str, dict[str, Any], str]] = [
    ("softirq-ipi", {}, "softirq-ipi"),
    ("ksoftirqd", {}, "ksoftirqd"),
    ("backlog-threads", {}, "backlog-threads"),
    ("backlog-threads", {"fast_path": False}, "backlog-threads-nofast"),
]

#: Runs in each build's interpreter: reads the jobs (a JSON file, argv[1]), prints one
#: hash per job and where its napikit came from.
_CHILD = r"""
import hashlib, json, sys
import napikit, napikit._core
from napikit import Simulation, TraceOptions
from napikit.scenario_file import loads_scenario
with open(sys.argv[1]) as f:
    jobs = json.load(f)
out, raised = [], 0
for job in jobs:
    h = hashlib.sha256()
    try:
        config = loads_scenario(job["scenario"])
        sim = Simulation(config, trace=TraceOptions() if job["trace"] else None)
        h.update(sim.run().to_json().encode())
        if job["trace"]:
            h.update(sim.timeline.data)
    except Exception as e:   # the same error, the same message, is the same result
        h.update(f"error {type(e).__name__}: {e}".encode())
        raised += 1
    out.append(h.hexdigest())
print(json.dumps({"version": napikit.__version__, "core": napikit._core.__file__,
                  "hashes": out, "raised": raised}))
"""


def policy_fields(policy: str, options: dict[str, Any]) -> dict[str, Any]:
    return {"policy": policy, "policy_options": options}


def scenario_jobs() -> list[tuple[str, Config]]:
    return [(f"scenario {name} / {ident}",
             scenarios.get(name).config.evolve(**policy_fields(p, o)))
            for name in scenarios.names() for p, o, ident in POLICIES]


def scale_config(ncpus: int, packets: int) -> Config:
    """benchmarks/scale.py's run: perf-a's costs and kernel, one Poisson NIC of 0.5
    Mpps per CPU, each steering by RPS to the next CPU."""
    return scenarios.get("perf-a").config.evolve(
        ncpus=ncpus, packets=packets, workloads=tuple(
            NicIrq(cpu=i, rate_pps=5e5, arrival="poisson", flows=64, flow_dist="uniform",
                   rps_cpus=((i + 1) % ncpus,)) for i in range(ncpus)))


def scale_jobs(packets: int) -> list[tuple[str, Config]]:
    return [(f"scale {n} CPUs / {ident}",
             scale_config(n, packets).evolve(**policy_fields(p, o)))
            for n in (4, 64, 256, 1024) for p, o, ident in POLICIES]


def _mask(rng: random.Random, ncpus: int) -> tuple[int, ...]:
    r = rng.random()
    if r < 0.3:
        return ()
    if r < 0.5:
        return tuple(range(ncpus))
    return tuple(sorted(rng.sample(range(ncpus), rng.randint(1, min(ncpus, 8)))))


def _distribution(rng: random.Random) -> CostDistribution:
    kind = rng.choice(("constant", "exponential", "lognormal", "empirical"))
    if kind == "lognormal":
        return CostDistribution(kind=kind, sigma=rng.uniform(0.05, 1.5))
    if kind == "empirical":
        n = rng.randint(1, 6)
        return CostDistribution(kind=kind, values=tuple(rng.uniform(1, 500) for _ in range(n)),
                                weights=tuple(rng.uniform(0.1, 1) for _ in range(n)))
    return CostDistribution(kind=kind)


def random_config(rng: random.Random) -> Config:
    """One configuration (it may be refused: the caller draws again)."""
    ncpus = rng.choice((1, 2, 3, 4, 4, 8, 16, 64, 256, 1024))
    workloads: list[Any] = []
    if ncpus >= 64 and rng.random() < 0.5:
        # a NIC per CPU, as at scale: many events pending
        workloads = [NicIrq(cpu=i, rate_pps=rng.choice((1e5, 5e5)), arrival="poisson",
                            flows=rng.choice((1, 64)), rps_cpus=((i + rng.randint(0, 3)) % ncpus,))
                     for i in range(ncpus)]
    else:
        for _ in range(rng.randint(1, 3)):
            if rng.random() < 0.7 or ncpus == 1:
                workloads.append(NicIrq(
                    cpu=rng.randrange(ncpus), rate_pps=rng.choice((1e4, 2e5, 1e6, 2e6, 5e6)),
                    arrival=rng.choice(("constant", "poisson", "bursty")),
                    burst=rng.randint(1, 64), flows=rng.choice((1, 16, 1024)),
                    flow_dist=rng.choice(("uniform", "zipf")), rps_cpus=_mask(rng, ncpus)))
            else:
                n = rng.randint(1, min(3, ncpus))
                workloads.append(LoopbackUdp(
                    senders=tuple(rng.sample(range(ncpus), n)),
                    receivers=tuple(rng.sample(range(ncpus), n)), flows=rng.randint(1, 8),
                    rate_pps=rng.choice((None, 1e5, 1e6)), rps_cpus=_mask(rng, ncpus)))
    if rng.random() < 0.2:
        workloads.append(Cyclictest(cpu=rng.randrange(ncpus),
                                    period_ns=rng.randint(20_000, 1_000_000),
                                    priority=rng.randint(1, 99), work_ns=rng.randint(0, 5_000)))
    kernel = KernelParams(
        hz=rng.choice((100, 250, 1000)), netdev_max_backlog=rng.choice((16, 300, 1000)),
        dev_weight=rng.choice((8, 64)), netdev_budget=rng.choice((50, 300)),
        force_irqthreads=rng.random() < 0.15, idle_poll=rng.random() < 0.15,
        csd_coalescing=rng.random() < 0.3, preempt_rt=rng.random() < 0.15,
        let_ksoftirqd_do_its_job=rng.random() < 0.2,
        udp_skb_defer_free=rng.random() < 0.2,
        scheduler=rng.choice(("eevdf", "eevdf", "cfs")),
        sched_place_lag=rng.random() < 0.8, sched_run_to_parity=rng.random() < 0.8,
        sched_delay_dequeue=rng.random() < 0.4,
        preempt=rng.choice(("none", "voluntary", "full")))
    base = CostModel()
    costs = CostModel(**{a.name: (0 if rng.random() < 0.1 else max(
        0, int(getattr(base, a.name) * rng.uniform(0.2, 3)))) for a in attrs.fields(CostModel)})
    dists = {name: _distribution(rng) for name in rng.sample(
        [a.name for a in attrs.fields(CostModel)], rng.choice((0, 0, 1, 3)))}
    busy = {w.cpu for w in workloads if not isinstance(w, LoopbackUdp)} | {
        c for w in workloads if isinstance(w, LoopbackUdp) for c in w.senders + w.receivers}
    offline: tuple[int, ...] = ()
    hotplug: list[CpuHotplug] = []
    if ncpus >= 2 and ncpus <= 64 and rng.random() < 0.25:
        spare = [c for c in range(ncpus) if c not in busy]
        offline = tuple(sorted(rng.sample(spare, rng.randint(0, len(spare)))))
        online = set(range(ncpus)) - set(offline)
        for t in sorted(rng.randint(0, 20_000_000) for _ in range(rng.randint(1, 6))):
            cpu = rng.choice([c for c in range(ncpus) if c not in online or len(online) > 1])
            up = cpu not in online
            (online.add if up else online.discard)(cpu)
            hotplug.append(CpuHotplug(time_ns=t, cpu=cpu, online=up))
    by_time = rng.random() < 0.15
    p, o, _ = rng.choice(POLICIES)
    return Config(
        ncpus=ncpus, workloads=workloads, kernel=kernel, costs=costs, cost_distributions=dists,
        offline_cpus=offline, hotplug=tuple(hotplug),
        packets=None if by_time else rng.randint(2_000, 30_000),
        duration_ns=rng.randint(1_000_000, 20_000_000) if by_time else None,
        drain_ns=rng.choice((1_000_000, 10_000_000, 2_000_000_000)),
        stall_timeout_ns=rng.choice((None, 1_000_000_000)),
        sample_interval_ns=rng.choice((None, None, 100_000)),
        seed=rng.randrange(2**32), **policy_fields(p, o))


def fuzz_jobs(n: int, seed: int) -> list[tuple[str, Config]]:
    rng = random.Random(seed)
    jobs: list[tuple[str, Config]] = []
    while len(jobs) < n:
        try:
            jobs.append((f"fuzz {len(jobs)} (seed {seed})", random_config(rng)))
        except ConfigError:
            pass   # a combination the configuration refuses: draw again
    return jobs


def _examples(strategy: Any, n: int) -> list[Config]:
    """What a derandomized @given test of ``n`` examples would see, in order."""
    from hypothesis import HealthCheck, given, settings
    found: list[Config] = []

    @settings(max_examples=n, derandomize=True, database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def collect(config: Config) -> None:
        found.append(config)

    collect()
    return found


def hypothesis_jobs(n: int) -> list[tuple[str, Config]]:
    """``n`` derandomized examples of supported_configs per policy variant, half with
    CPU hotplug; none where hypothesis is not installed."""
    try:
        from napikit.testing import strategies
    except ImportError:
        return []
    registry = plugins.registry()
    jobs: list[tuple[str, Config]] = []
    for p, o, ident in POLICIES:
        unsupported = registry.get(p).unsupported
        for require in (None, "hotplug"):
            if require in unsupported:
                continue
            strategy = strategies.supported_configs(policy_fields(p, o), unsupported, require)
            found = _examples(strategy, max(1, n // 2))
            jobs += [(f"hypothesis {ident} {require or ''} {i}", c)
                     for i, c in enumerate(found)]
    return jobs


def run_builds(pythons: dict[str, str], jobs: list[dict[str, Any]]) -> dict[str, Any]:
    """Each build's child, side by side (each is one process, so two take two cores)."""
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as cwd:
        with open(os.path.join(cwd, "jobs.json"), "w") as f:
            json.dump(jobs, f)
        children = {label: subprocess.Popen([python, "-P", "-c", _CHILD, "jobs.json"], cwd=cwd,
                                            text=True, stdout=subprocess.PIPE,
                                            stderr=subprocess.PIPE)
                    for label, python in pythons.items()}
        for label, child in children.items():
            stdout, stderr = child.communicate()
            if child.returncode != 0:
                raise SystemExit(f"{pythons[label]}: the runs failed:\n{stderr}")
            out[label] = json.loads(stdout)
    return out


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", required=True,
                        help="the Python of the other build (e.g. a venv's bin/python)")
    parser.add_argument("--python", default=sys.executable,
                        help="the Python of the build compared with it (default: this one)")
    parser.add_argument("--fuzz", type=int, default=300,
                        help="seeded random configurations (default %(default)s)")
    parser.add_argument("--seed", type=int, default=1, help="their seed (default %(default)s)")
    parser.add_argument("--hypothesis", type=int, default=40,
                        help="hypothesis examples per policy variant (default %(default)s)")
    parser.add_argument("--scale-packets", type=int, default=50_000,
                        help="packets of each scaling run (default %(default)s)")
    parser.add_argument("--json", action="store_true",
                        help="print the figures as one JSON document instead of text")
    args = parser.parse_args()
    if min(args.fuzz, args.hypothesis) < 0 or args.scale_packets < 1:
        parser.error("--fuzz and --hypothesis must be >= 0, --scale-packets >= 1")
    return args


def main() -> int:
    args = parse_args()
    say = (lambda line: None) if args.json else print
    named = (scenario_jobs() + scale_jobs(args.scale_packets)
             + fuzz_jobs(args.fuzz, args.seed) + hypothesis_jobs(args.hypothesis))
    # every seventh run also records a trace (the traced build of the core)
    jobs = [{"name": name, "scenario": dump_scenario(config), "trace": i % 7 == 3}
            for i, (name, config) in enumerate(named)]
    say(f"{len(jobs)} configurations ({sum(j['trace'] for j in jobs)} traced), "
        f"napikit {napikit.__version__}")
    t = time.perf_counter()
    builds = run_builds({"baseline": args.baseline, "new": args.python}, jobs)
    for label, build in builds.items():
        say(f"  {label}: {build['core']} (napikit {build['version']}; "
            f"{build['raised']} runs raised an error, hashed)")
    differ = [j["name"] for j, a, b in zip(jobs, builds["baseline"]["hashes"],
                                          builds["new"]["hashes"], strict=True) if a != b]
    same_version = builds["baseline"]["version"] == builds["new"]["version"]
    ok = not differ and same_version
    say(f"compared {len(jobs)} configurations in {time.perf_counter() - t:.0f} s: "
        f"{len(jobs) - len(differ)} identical, {len(differ)} differ"
        + ("" if same_version else "; the builds report different versions"))
    for name in differ:
        say(f"  DIFFERS: {name}")
    if args.json:
        print(json.dumps({"configurations": len(jobs), "identical": len(jobs) - len(differ),
                          "differ": differ,
                          "builds": {k: {"core": v["core"], "version": v["version"],
                                         "raised": v["raised"]} for k, v in builds.items()},
                          "pass": ok}, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
