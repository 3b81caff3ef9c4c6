"""The ``napikit`` command: list policies and scenarios, run one, compare policies.

Every deliberate failure (:class:`~napikit.errors.NapikitError`, or a usage error)
is reported as one line, ``napikit: error: <message>``, with exit status 2; ``replay``
exits 1 when the rerun differs from the result it replays.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, NoReturn

import attrs

import napikit
from napikit import scenarios
from napikit.confidence import Estimate
from napikit.config import Config, CpuHotplug, Cyclictest, LoopbackUdp
from napikit.errors import ConfigError, NapikitError
from napikit.overrides import apply_overrides, assignment, policy_options
from napikit.plugins import registry
from napikit.results import Result
from napikit.scenario_file import dump_scenario, load_scenario, replay
from napikit.simulation import Simulation
from napikit.trace import BYTES_PER_RECORD, TraceOptions, require_perfetto
from napikit.trace import MAX_EVENTS as TRACE_MAX_EVENTS

# Below this module, so that the study and the sweeps can use them without importing it.
from napikit.values import BASELINE, RFC_VARIANT, integer
from napikit.values import TIME as TIME  # re-exported: the error texts' allowed values

#: What ``run`` runs without ``--scenario`` or ``--config``.
DEFAULT_SCENARIO = "seed-lo"
#: At most this many differing fields are listed by ``replay`` unless told otherwise.
REPLAY_LIMIT = 20


class _UsageError(Exception):
    """A command line argparse rejected."""


class _Parser(argparse.ArgumentParser):
    # argparse would print the usage and exit; napikit reports one line instead.
    def error(self, message: str) -> NoReturn:
        raise _UsageError(message)


# ------------------------------------------------------------------ argument types


def _integer_flag(text: str) -> int:
    """An argparse type for an integer flag (``--packets 1e7``); argparse names the flag."""
    try:
        return integer(text, "")
    except ConfigError as e:
        raise argparse.ArgumentTypeError(f"must be {e.allowed} (got {text!r})") from None


def _hotplug(text: str) -> CpuHotplug:
    """``TIME_NS:CPU:online`` or ``TIME_NS:CPU:offline``."""
    parts = text.split(":")
    if len(parts) != 3 or parts[2] not in ("online", "offline"):
        raise argparse.ArgumentTypeError(
            f"expected TIME_NS:CPU:online or TIME_NS:CPU:offline (got {text!r})"
        )
    try:
        return CpuHotplug(time_ns=integer(parts[0], "hotplug.time_ns", time=True),
                          cpu=integer(parts[1], "hotplug.cpu"),
                          online=parts[2] == "online")
    except ConfigError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _trace_window(text: str) -> tuple[int, int | None]:
    """``START:END``, ``START:`` (to the run's end) or ``:END``; times with units."""
    parts = text.split(":")
    if len(parts) != 2:
        raise argparse.ArgumentTypeError(f"expected START:END, e.g. 2ms:4ms (got {text!r})")
    try:
        start = integer(parts[0], "trace window start", time=True) if parts[0] else 0
        end = integer(parts[1], "trace window end", time=True) if parts[1] else None
        TraceOptions(start_ns=start, end_ns=end)
    except ConfigError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return start, end


def _cyclictest(text: str) -> Cyclictest:
    """``CPU[:PERIOD_NS[:PRIORITY]]``."""
    parts = text.split(":")
    if not 1 <= len(parts) <= 3:
        raise argparse.ArgumentTypeError(f"expected CPU[:PERIOD_NS[:PRIORITY]] (got {text!r})")
    fields = (("cpu", False), ("period_ns", True), ("priority", False))
    try:
        return Cyclictest(**{
            name: integer(part, f"cyclictest.{name}", time)
            for (name, time), part in zip(fields, parts, strict=False)
        })
    except ConfigError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _variant(text: str) -> tuple[str, tuple[tuple[str, Any], ...]]:
    """``POLICY:key=val[,key=val]``; a piece without ``=`` continues the previous
    value, so list values (``cpus=0,1``) survive the comma split."""
    policy, sep, rest = text.partition(":")
    pieces = rest.split(",")
    if not sep or not policy or "=" not in pieces[0]:
        raise argparse.ArgumentTypeError(
            f"expected POLICY:KEY=VALUE[,KEY=VALUE...] (got {text!r})"
        )
    raw: list[list[str]] = []
    for piece in pieces:
        if "=" in piece:
            raw.append(list(assignment(piece)))
        else:
            raw[-1][1] += "," + piece
    return policy, tuple((key, value) for key, value in raw)


def _configure(config: Config, args: argparse.Namespace) -> Config:
    """The scenario's config with the shorthand flags and ``--set`` applied."""
    shorthands = [
        (name, str(getattr(args, name)))
        for name in ("seed", "packets", "ncpus") if getattr(args, name) is not None
    ]
    if getattr(args, "costs", None) is not None:
        # A calibrated cost file first, so --set costs.NAME still overrides it; the
        # shapes it measured replace those of the same costs.
        from napikit.host.costfile import load

        loaded = load(args.costs)
        config = config.evolve(costs=loaded.costs, cost_distributions={
            **config.cost_distributions, **loaded.distributions})
    config = apply_overrides(config, shorthands + args.set)
    if args.cyclictest or args.hotplug:
        config = config.evolve(workloads=config.workloads + tuple(args.cyclictest),
                               hotplug=config.hotplug + tuple(args.hotplug))
    return config


# ------------------------------------------------------------------ output


def _table(rows: Sequence[Sequence[str]], right: frozenset[int] = frozenset()) -> str:
    """Rows (the first is the header) as aligned columns; ``right``: right-aligned ones."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [
            cell.rjust(width) if i in right else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def _label(policy: str, options: tuple[tuple[str, Any], ...]) -> str:
    if not options:
        return policy
    return f"{policy}[" + ",".join(f"{k}={_show(v)}" for k, v in options) + "]"


def _show(value: Any) -> str:
    return ",".join(map(str, value)) if isinstance(value, tuple) else str(value)


def _compare_table(config: Config, results: dict[str, Result]) -> str:
    loopback = any(isinstance(w, LoopbackUdp) for w in config.workloads)
    which = "send->recv" if loopback else "enqueue->delivery"
    header = ["policy", "delivered/s", "ratio", "drops backlog/socket", "ctx switches",
              "IPIs", "backlog-thread wakeups", "ksoftirqd wakeups", f"p99 {which} (us)",
              "softirq on app tasks (ms)"]
    cyclictests = sum(isinstance(w, Cyclictest) for w in config.workloads)
    header += [f"cyclictest/{i} p99 (us)" for i in range(cyclictests)]
    base = next(iter(results.values())).delivered_pps
    rows = [header]
    for label, r in results.items():
        latency = r.latency_send_recv if loopback else r.latency_enqueue
        drops = f"{r.drops.backlog}/{r.drops.socket}"
        other = r.drops.flow_limit + r.drops.nic_ring
        # Rare, so shown only when they happen; but no drop may go unseen.
        if other:
            drops += f" +{other} other"
        rows.append([
            label,
            f"{r.delivered_pps:,.0f}",
            f"{r.delivered_pps / base:.2f}" if base else "-",
            drops,
            str(r.context_switches),
            str(r.ipis),
            str(r.backlog_thread_wakeups),
            str(r.ksoftirqd_wakeups),
            f"{latency.p99_ns / 1e3:.2f}",
            f"{r.punished_softirq_ns() / 1e6:.3f}",
            *(f"{c.p99_ns / 1e3:.2f}" for c in r.cyclictest_latency),
        ])
    return _table(rows, right=frozenset(range(1, len(header))))


def _extent(config: Config) -> str:
    parts = [f"{config.ncpus} CPUs"]
    if config.packets is not None:
        parts.append(f"{config.packets:,} packets")
    if config.duration_ns is not None:
        parts.append(f"{config.duration_ns / 1e6:g} ms")
    return ", ".join(parts) + f", seed {config.seed}"


# ------------------------------------------------------------------ commands


def _cmd_policies(args: argparse.Namespace) -> int:
    rows = [["policy", "package", "options", "description"]]
    for spec in registry():
        options = [f"{o.name}: {o.type.__name__} = {o.default!r}" for o in spec.options] or ["-"]
        rows.append([spec.name, spec.package, options[0], spec.description])
        rows.extend(["", "", option, ""] for option in options[1:])
    print(_table(rows))
    return 0


def _cmd_scenarios(args: argparse.Namespace) -> int:
    if args.dump is not None:
        scenario = scenarios.get(args.dump)
        sys.stdout.write(dump_scenario(scenario.config, name=scenario.name,
                                       description=scenario.description))
        return 0
    rows = [["scenario", "description"]]
    rows.extend([s.name, s.description] for s in scenarios.SCENARIOS.values())
    print(_table(rows))
    return 0


@contextmanager
def _from_input() -> Iterator[None]:
    """Around building configurations from the command line: a ValueError or
    OverflowError no validator turned into a ConfigError is still the input's fault, so
    it is reported in one line, not as a traceback."""
    try:
        yield
    except NapikitError:
        raise
    except (OverflowError, ValueError) as e:
        raise NapikitError(f"invalid input: {e}") from e


def _cmd_run(args: argparse.Namespace) -> int:
    with _from_input():
        if args.config is not None:
            # The file's policy and options hold unless --policy names another.
            base = load_scenario(args.config)
            policy = args.policy or base.policy
            options = policy_options(policy, args.option)
            if args.policy is None:
                options = {**base.options, **options}
        else:
            base = scenarios.get(args.scenario or DEFAULT_SCENARIO).config
            policy = args.policy or BASELINE
            options = policy_options(policy, args.option)
        config = _configure(base, args).evolve(policy=policy, policy_options=options)
        trace = None
        if args.trace is None and (args.trace_window != (0, None)
                                   or args.trace_limit != TRACE_MAX_EVENTS):
            raise NapikitError("--trace-window and --trace-limit need --trace FILE.pftrace")
        if args.trace is not None:
            require_perfetto()  # before the run, not after it
            start, end = args.trace_window
            trace = TraceOptions(start_ns=start, end_ns=end, max_events=args.trace_limit)
        sim = Simulation(config, trace=trace)
    result = sim.run()
    if sim.timeline is not None:
        size = sim.timeline.write_perfetto(args.trace)
        print(f"napikit: trace: {len(sim.timeline)} records, {size} bytes in {args.trace}"
              + (f" (truncated: the buffer held {args.trace_limit} records)"
                 if sim.timeline.truncated else ""), file=sys.stderr)
    if args.json:
        sys.stdout.write(result.to_json())
    else:
        print(result.summary())
    return 0


def _compare_rows(
    policies: list[str] | None, variants: list[tuple[str, tuple[tuple[str, Any], ...]]]
) -> dict[str, tuple[str, tuple[tuple[str, Any], ...]]]:
    """Label -> (policy, options), in table order."""
    if not policies:
        installed = registry().names()
        policies = sorted(installed, key=lambda name: (name != BASELINE, name))
    rows: dict[str, tuple[str, tuple[tuple[str, Any], ...]]] = {}
    for policy in policies:
        rows.setdefault(policy, (policy, ()))
        if policy == RFC_VARIANT[0]:
            rows.setdefault(_label(*RFC_VARIANT), RFC_VARIANT)
    for policy, options in variants:
        rows.setdefault(_label(policy, options), (policy, options))
    return rows


Plans = dict[str, tuple[scenarios.Scenario, Config, dict[str, Simulation]]]


def _cmd_compare(args: argparse.Namespace) -> int:
    if not 1 <= args.seeds <= 1000:
        raise ConfigError("--seeds", "an integer from 1 to 1000", args.seeds)
    if args.seeds > 1:
        return _compare_seeds(args)
    # Every configuration is built and validated before the first run starts.
    plans: Plans = {}
    with _from_input():
        variants = [(policy, tuple(policy_options(policy, raw).items()))
                    for policy, raw in args.variant]
        rows = _compare_rows(args.policy, variants)
        for name in args.scenario or scenarios.DEFAULT_COMPARE:
            scenario = scenarios.get(name)
            config = _configure(scenario.config, args)
            sims = {
                label: Simulation(config.evolve(policy=policy, policy_options=dict(options)))
                for label, (policy, options) in rows.items()
            }
            plans[scenario.name] = (scenario, config, sims)
    results: dict[str, dict[str, Result]] = {name: {} for name in plans}
    try:
        for name, (_, _, sims) in plans.items():
            for label, sim in sims.items():
                results[name][label] = sim.run()
    except KeyboardInterrupt:
        # Interrupted: the rows finished so far are still worth their minutes.
        _print_compare(args.json, plans, {name: rs for name, rs in results.items() if rs})
        raise
    _print_compare(args.json, plans, results)
    return 0


#: What ``compare --seeds`` estimates: (column, figure of a result, format).
_SEED_FIGURES: tuple[tuple[str, Callable[[Result], float], str], ...] = (
    ("delivered/s", lambda r: r.delivered_pps, ",.0f"),
    ("drops backlog", lambda r: r.drops.backlog, ",.0f"),
    ("drops socket", lambda r: r.drops.socket, ",.0f"),
    ("ctx switches", lambda r: r.context_switches, ",.0f"),
    ("IPIs", lambda r: r.ipis, ",.0f"),
    ("backlog-thread wakeups", lambda r: r.backlog_thread_wakeups, ",.0f"),
    ("ksoftirqd wakeups", lambda r: r.ksoftirqd_wakeups, ",.0f"),
    ("p99 latency (us)", lambda r: (r.latency_send_recv if r.latency_send_recv.count
                                    else r.latency_enqueue).p99_ns / 1e3, ".2f"),
    ("softirq on app tasks (ms)", lambda r: r.punished_softirq_ns() / 1e6, ".3f"),
)


def _compare_seeds(args: argparse.Namespace) -> int:
    """``compare --seeds N``: every row run with N seeds, each figure as an
    :class:`~napikit.confidence.Estimate`."""
    with _from_input():
        variants = [(policy, tuple(policy_options(policy, raw).items()))
                    for policy, raw in args.variant]
        rows = _compare_rows(args.policy, variants)
        plans = {}
        for name in args.scenario or scenarios.DEFAULT_COMPARE:
            scenario = scenarios.get(name)
            config = _configure(scenario.config, args)
            seeds = [config.seed + i for i in range(args.seeds)]
            if seeds[-1] > 2**64 - 1:
                raise ConfigError("--seeds", f"at most {2**64 - config.seed} from seed "
                                  f"{config.seed}", args.seeds)
            plans[scenario.name] = (scenario, config, seeds, {
                label: [Simulation(config.evolve(policy=policy, policy_options=dict(options),
                                                 seed=seed)) for seed in seeds]
                for label, (policy, options) in rows.items()})
    doc: dict[str, Any] = {}
    blocks = []
    for name, (scenario, config, seeds, sims) in plans.items():
        runs = {label: [s.run() for s in ss] for label, ss in sims.items()}
        estimates = {label: {col: Estimate.of([figure(r) for r in rs])
                             for col, figure, _ in _SEED_FIGURES} for label, rs in runs.items()}
        doc[name] = {label: {"seeds": seeds, "results": [r.to_dict() for r in rs],
                             "estimates": {col: attrs.asdict(e)
                                           for col, e in estimates[label].items()}}
                     for label, rs in runs.items()}
        header = ["policy", *(col for col, _, _ in _SEED_FIGURES)]
        table = [header] + [[label, *(estimates[label][col].show(fmt)
                                      for col, _, fmt in _SEED_FIGURES)]
                            for label in runs]
        blocks.append(f"{name} ({_extent(config)}; mean ±95 % CI over {len(seeds)} seeds "
                      f"{seeds[0]}-{seeds[-1]}): {scenario.description}\n"
                      + _table(table, right=frozenset(range(1, len(header)))))
    if args.json:
        sys.stdout.write(json.dumps(doc, sort_keys=True, indent=2) + "\n")
    else:
        print("\n\n".join(blocks))
    return 0


def _cmd_replay(args: argparse.Namespace) -> int:
    if args.limit < 1:
        raise ConfigError("--limit", "an integer >= 1", args.limit)
    with _from_input():
        report = replay(args.result)
    print("\n".join(report.lines(limit=args.limit)))
    return 0 if report.identical else 1


def _print_compare(as_json: bool, plans: Plans, results: dict[str, dict[str, Result]]) -> None:
    if as_json:
        doc = {
            name: {label: r.to_dict() for label, r in rs.items()} for name, rs in results.items()
        }
        sys.stdout.write(json.dumps(doc, sort_keys=True, indent=2) + "\n")
        return
    blocks = [
        f"{name} ({_extent(plans[name][1])}): {plans[name][0].description}\n"
        + _compare_table(plans[name][1], rs)
        for name, rs in results.items()
    ]
    print("\n\n".join(blocks))


# ------------------------------------------------------------------ help

#: What ends each command's ``--help`` (``""``: ``napikit --help``): what an example does,
#: and its command line. The tests parse every line with :func:`build_parser`.
EXAMPLES: dict[str, tuple[tuple[str, str], ...]] = {
    "": (
        ("one run, its summary", "napikit run --scenario seed-rps --policy backlog-threads"),
        ("every policy side by side", "napikit compare --scenario seed-rt"),
        ("a grid of runs (a rerun resumes)", "napikit sweep sweep.toml --out sweep-out"),
        ("tab completion for bash",
         "napikit completion bash > ~/.local/share/bash-completion/completions/napikit"),
    ),
    "policies": (
        ("names, packages and options", "napikit policies"),
        ("run a policy with an option it lists",
         "napikit run --policy backlog-threads --option fast_path=false"),
    ),
    "scenarios": (
        ("names and descriptions", "napikit scenarios"),
        ("a scenario as a file to edit", "napikit scenarios --dump seed-rps > my.toml"),
        ("run the edited file", "napikit run --config my.toml --set kernel.hz=250"),
    ),
    "run": (
        ("a Perfetto timeline of 1-3 ms of the run (open it at ui.perfetto.dev)",
         "napikit run --scenario perf-a --trace perf-a.pftrace --trace-window 1ms:3ms"),
        ("the result as JSON", "napikit run --scenario perf-a --packets 200k --json > run.json"),
        ("CPU 3 goes offline at 2 ms and back at 5 ms",
         "napikit run --scenario perf-a --hotplug 2ms:3:offline --hotplug 5ms:3:online"),
        ("a scenario file under another policy, with a calibrated host's costs",
         "napikit run --config my.toml --policy ksoftirqd --costs costs.toml"),
    ),
    "compare": (
        ("the SEED scenarios under every policy", "napikit compare"),
        ("mean and 95 % confidence interval over 5 seeds",
         "napikit compare --scenario perf-a --seeds 5"),
        ("add a row: a policy with other options",
         "napikit compare --scenario seed-rps --variant backlog-threads:fast_path=false"),
        ("a real-time task's latency on a PREEMPT_RT kernel",
         "napikit compare --scenario seed-rps --cyclictest 1:100us --set kernel.preempt_rt=true"),
    ),
    "replay": (
        ("a result to replay", "napikit run --scenario seed-rps --json > run.json"),
        ("rerun it: exit 0 when byte-identical", "napikit replay run.json"),
        ("exit 1 when not, listing at most 5 differing fields",
         "napikit replay edited.json --limit 5"),
    ),
    "study": (
        ("a small grid", "napikit study --quick --out study-quick"),
        ("the README's study", "napikit study --out docs/study"),
        ("part of the grid, the CSV only", "napikit study --ncpus 2,4 --loads 0.5,1 --no-plots"),
    ),
    "sweep": (
        ("every cell not yet in sweep-out (the same command resumes)",
         "napikit sweep sweep.toml --out sweep-out"),
        ("on 2 processes, without a progress bar",
         "napikit sweep sweep.toml --out sweep-out --jobs 2 --quiet"),
        ("on a Dask LocalCluster", "napikit sweep sweep.toml --out sweep-out --dask local"),
        ("on a Dask cluster",
         "napikit sweep sweep.toml --out sweep-out --dask tcp://scheduler:8786"),
    ),
    "claims": (
        ("3 values per cost axis, 2 per other axis", "napikit claims --quick --out claims-quick"),
        ("the README's maps",
         "napikit claims --out docs/claims --host examples/host/costs.toml"),
        ("around a calibrated host", "napikit claims --costs costs.toml --jobs 2"),
    ),
    "calibrate": (
        ("a check that it works", "napikit calibrate --quick --out quick-costs.toml"),
        ("as root: with the RPS run", "napikit calibrate --out costs.toml"),
    ),
    "kernel-bench": (
        ("as root: a check that it works", "napikit kernel-bench --quick"),
        ("as root: 3 runs of 5 s per configuration",
         "napikit kernel-bench --out real.json --seconds 5 --reps 3"),
    ),
    "validate": (
        ("measured against predicted", "napikit validate --costs costs.toml --real real.json"),
        ("and drawn", "napikit validate --costs costs.toml --real real.json --plot "
         "validation.png"),
        ("under CFS, as JSON",
         "napikit validate --costs costs.toml --real real.json --scheduler cfs --json"),
    ),
    "completion": (
        ("bash (bash-completion loads it)",
         "napikit completion bash > ~/.local/share/bash-completion/completions/napikit"),
        ("zsh: into a directory on $fpath", "napikit completion zsh > ~/.zfunc/_napikit"),
        ("tcsh: then source ~/.napikit.tcsh", "napikit completion tcsh > ~/.napikit.tcsh"),
    ),
}


def _examples(parser: argparse.ArgumentParser, examples: tuple[tuple[str, str], ...]) -> None:
    """End ``parser``'s help with ``examples``, each line as written (not rewrapped)."""
    parser.epilog = "examples:\n" + "\n".join(f"  # {why}\n  {line}" for why, line in examples)
    parser.formatter_class = argparse.RawDescriptionHelpFormatter


def _cmd_completion(args: argparse.Namespace) -> int:
    from napikit.completion import script

    sys.stdout.write(script(build_parser(), args.shell))
    return 0


# ------------------------------------------------------------------ parser


def build_parser() -> argparse.ArgumentParser:
    """The ``napikit`` argument parser."""
    parser = _Parser(
        prog="napikit",
        description="Simulate how Linux schedules its per-CPU backlog NAPI under "
        "different policies.",
    )
    parser.add_argument("--version", action="version", version=f"napikit {napikit.__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    overrides = _Parser(add_help=False)
    group = overrides.add_argument_group("configuration overrides")
    group.add_argument("--seed", type=_integer_flag, help="random seed")
    group.add_argument("--packets", type=_integer_flag,
                       help="stop input after N packets (e.g. 20000, 2k, 1.5M, 1e7)")
    group.add_argument("--ncpus", type=_integer_flag, help="number of CPUs")
    group.add_argument(
        "--set", type=assignment, action="append", default=[], metavar="FIELD=VALUE",
        help="set a Config field: ncpus, packets, duration_ns, drain_ns, seed, "
        "offline_cpus, kernel.NAME (e.g. kernel.preempt_rt=true), costs.NAME, "
        "workload.NAME (every workload with NAME); VALUE is a number (times in ns or "
        "with a unit: 10ms, 1.5us; other numbers with k, M or G: 2k, 1.5M, 1e7), "
        "true/false, none or a comma-separated list (repeatable)",
    )
    group.add_argument(
        "--costs", metavar="FILE",
        help="load the cost model from a TOML file written by napikit calibrate "
        "(--set costs.NAME overrides it)",
    )
    group.add_argument(
        "--hotplug", type=_hotplug, action="append", default=[],
        metavar="TIME_NS:CPU:online|offline",
        help="a CPU hotplug request, e.g. 2ms:3:offline (repeatable)",
    )
    group.add_argument(
        "--cyclictest", type=_cyclictest, action="append", default=[],
        metavar="CPU[:PERIOD_NS[:PRIORITY]]",
        help="add a cyclictest-like SCHED_FIFO task (default period 1 ms, priority 95)",
    )

    p = commands.add_parser("policies", help="list the installed policies")
    p.set_defaults(func=_cmd_policies)

    p = commands.add_parser("scenarios", help="list the named scenarios, or print one as "
                            "a scenario file")
    p.add_argument("--dump", metavar="NAME",
                   help="print scenario NAME as a TOML scenario file (for run --config)")
    p.set_defaults(func=_cmd_scenarios)

    p = commands.add_parser("run", parents=[overrides], help="run one scenario under one policy")
    p.add_argument("--policy", help=f"policy name (default {BASELINE}, or the --config "
                   "file's; a policy named here replaces the file's policy and options)")
    source = p.add_mutually_exclusive_group()
    source.add_argument("--scenario", help=f"scenario name (default {DEFAULT_SCENARIO})")
    source.add_argument("--config", metavar="FILE.toml",
                        help="run the scenario file FILE.toml (napikit scenarios --dump "
                        "NAME writes one); the overrides apply to it as to --scenario")
    p.add_argument(
        "--option", type=assignment, action="append", default=[], metavar="KEY=VALUE",
        help="a policy option (repeatable)",
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--trace", metavar="FILE.pftrace",
                   help="write a Perfetto trace of the run (open it at ui.perfetto.dev; "
                   "needs napikit[trace])")
    p.add_argument("--trace-window", type=_trace_window, default=(0, None),
                   metavar="START:END", help="trace only this part of the run, e.g. 2ms:4ms "
                   "or 2ms: (default: all of it)")
    p.add_argument("--trace-limit", type=_integer_flag, default=TRACE_MAX_EVENTS,
                   metavar="N", help="record at most N events; past them the trace stops, "
                   f"flagged (default {TRACE_MAX_EVENTS:,}; a written trace holds at "
                   f"most {BYTES_PER_RECORD} bytes per event)")
    p.set_defaults(func=_cmd_run)

    p = commands.add_parser(
        "compare", parents=[overrides], help="run scenarios under several policies, side by side"
    )
    p.add_argument(
        "--scenario", action="append",
        help="scenario name (repeatable; default: " + ", ".join(scenarios.DEFAULT_COMPARE) + ")",
    )
    p.add_argument(
        "--policy", action="append",
        help=f"policy name (repeatable; default: every installed policy, {BASELINE} first); "
        f"{_label(*RFC_VARIANT)} is added with {RFC_VARIANT[0]}",
    )
    p.add_argument(
        "--variant", type=_variant, action="append", default=[],
        metavar="POLICY:KEY=VALUE[,KEY=VALUE]", help="also run POLICY with these options",
    )
    p.add_argument("--seeds", type=_integer_flag, default=1, metavar="N",
                   help="run each row with N seeds (the seed, seed+1, ...) and show every "
                   "figure as its mean +- the 95 %% confidence interval")
    p.add_argument("--json", action="store_true",
                   help="print {scenario: {policy label: result}} as JSON (with --seeds: "
                   "{scenario: {policy label: {seeds, results, estimates}}})")
    p.set_defaults(func=_cmd_compare)

    p = commands.add_parser(
        "replay", help="rerun a result JSON from the configuration it holds; exit 1 and "
        "list the differing fields if the new result is not byte-identical",
    )
    p.add_argument("result", metavar="RESULT.json", help="a result written by run --json")
    p.add_argument("--limit", type=_integer_flag, default=REPLAY_LIMIT, metavar="N",
                   help=f"list at most N differing fields (default {REPLAY_LIMIT})")
    p.set_defaults(func=_cmd_replay)

    # Imported when the parser is built, not with this module: the pytest plugin imports it.
    from napikit import claims, study

    # napikit.sweep (the attribute) is the function napikit re-exports, not the module.
    sweep = sys.modules["napikit.sweep"]
    from napikit.host import calibrate, kernel_bench, validate

    # Commands with options of their own: each module adds them and runs the command.
    for name, module, text in (
        ("study", study, "run the SEED scenarios over CPU counts, loads and policies; "
         "write a CSV and plots"),
        ("sweep", sweep, "run a base scenario over a grid of fields and seeds; write each "
         "cell to a Parquet dataset (a rerun resumes)"),
        ("claims", claims, "map where the kernel change's four claims hold over relative "
         "costs, loads and shared CPUs; write a CSV and a PNG"),
        # Ground truth: measure this host, run the real experiment, compare with the model.
        ("calibrate", calibrate, "measure this host's micro-costs; write a cost-model TOML "
         "file"),
        ("kernel-bench", kernel_bench, "run the real loopback-UDP experiment with RPS "
         "(root); write real.json"),
        ("validate", validate, "simulate each kernel-bench configuration with calibrated "
         "costs; print measured against predicted"),
    ):
        p = commands.add_parser(name, help=text)
        module.add_arguments(p)
        p.set_defaults(func=module.main)

    from napikit.completion import SHELLS

    p = commands.add_parser("completion", help="print a shell completion script (needs shtab)")
    p.add_argument("shell", choices=SHELLS, help="the shell to write the script for")
    p.set_defaults(func=_cmd_completion)

    _examples(parser, EXAMPLES[""])
    for name, sub in commands.choices.items():
        if name in EXAMPLES:
            _examples(sub, EXAMPLES[name])
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the ``napikit`` command line; return the exit status.

    Ctrl-C ends it with one line and status 130 (128 + SIGINT); a reader that goes away
    (``napikit run | head -1``) ends it quietly with status 141 (128 + SIGPIPE); a run
    whose queues outgrow the memory there is ends with the core's one line, status 1.
    """
    try:
        return _main(argv)
    except KeyboardInterrupt as e:
        print("napikit: interrupted" + (f": {e}" if str(e) else ""), file=sys.stderr)
        return 130
    except MemoryError as e:
        # The core's message already starts "napikit: cannot allocate ..."; Python's own
        # MemoryError has none.
        print(str(e) if str(e).startswith("napikit: ") else "napikit: out of memory",
              file=sys.stderr)
        return 1
    except BrokenPipeError:
        # Python's recipe: point stdout at devnull, so its flush at exit cannot fail too.
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):  # no file descriptor behind sys.stdout
            pass
        return 141


def _main(argv: list[str] | None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as e:  # --help and --version: argparse printed them
        return e.code if isinstance(e.code, int) else 0
    except _UsageError as e:
        return _fail(e)
    try:
        code = args.func(args)
    except NapikitError as e:
        return _fail(e)
    sys.stdout.flush()  # here, where a broken pipe is caught, not at exit
    return code


def _fail(error: Exception) -> int:
    print(f"napikit: error: {error}", file=sys.stderr)
    return 2
