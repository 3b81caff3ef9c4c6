"""The ``napikit`` command: list policies and scenarios, run one, compare policies.

Every deliberate failure (:class:`~napikit.errors.NapikitError`, or a usage error)
is reported as one line, ``napikit: error: <message>``, with exit status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

import attrs

import napikit
from napikit import scenarios
from napikit.config import Config, CostModel, CpuHotplug, Cyclictest, KernelParams, LoopbackUdp
from napikit.errors import ConfigError, NapikitError
from napikit.plugins import registry
from napikit.results import Result
from napikit.simulation import Simulation

#: The classic kernel comes first in ``compare``: the other rows are read against it.
BASELINE = "softirq-ipi"
#: ``compare`` adds this variant whenever ``backlog-threads`` runs: the kernel change's
#: RFC, without the local fast path (the seed story's first claim).
RFC_VARIANT = ("backlog-threads", (("fast_path", False),))

#: Top-level Config fields ``--set`` may change (the policy has its own flags).
_TOP_FIELDS = ("ncpus", "packets", "duration_ns", "drain_ns", "seed", "offline_cpus")
_SECTIONS = {"kernel": KernelParams, "costs": CostModel}


class _UsageError(Exception):
    """A command line argparse rejected."""


class _Parser(argparse.ArgumentParser):
    # argparse would print the usage and exit; napikit reports one line instead.
    def error(self, message: str) -> NoReturn:
        raise _UsageError(message)


# ------------------------------------------------------------------ values


def parse_value(text: str) -> Any:
    """A command-line value: a comma-separated list becomes a tuple of values.

    Each value is ``true``/``false``, ``none``, an int, a float, or else the text as
    given (the field's validator then says what it wants).
    """
    if "," in text:
        return tuple(_scalar(part) for part in text.split(","))
    return _scalar(text)


def _scalar(text: str) -> Any:
    word = text.strip().lower()
    if word in ("true", "false"):
        return word == "true"
    if word in ("none", "null"):
        return None
    for number in (int, float):
        try:
            return number(text)
        except ValueError:
            pass
    return text


def _field_value(current: Any, text: str) -> Any:
    """``text`` parsed for a field whose value is now ``current`` (a tuple stays one)."""
    value = parse_value(text)
    if isinstance(current, tuple) and not isinstance(value, tuple):
        return () if not text.strip() else (value,)
    return value


def _assignment(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE (got {text!r})")
    return key.strip(), value


def option_assignment(text: str) -> tuple[str, Any]:
    """A policy option ``KEY=VALUE``, the value parsed by :func:`parse_value`
    (``napikit run --option`` and the conformance kit's ``--napikit-option``)."""
    key, value = _assignment(text)
    return key, parse_value(value)


def _hotplug(text: str) -> CpuHotplug:
    """``TIME_NS:CPU:online`` or ``TIME_NS:CPU:offline``."""
    parts = text.split(":")
    try:
        time_ns, cpu, state = int(parts[0]), int(parts[1]), parts[2]
        if len(parts) != 3 or state not in ("online", "offline"):
            raise ValueError
    except (ValueError, IndexError):
        raise argparse.ArgumentTypeError(
            f"expected TIME_NS:CPU:online or TIME_NS:CPU:offline (got {text!r})"
        ) from None
    try:
        return CpuHotplug(time_ns=time_ns, cpu=cpu, online=state == "online")
    except ConfigError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _cyclictest(text: str) -> Cyclictest:
    """``CPU[:PERIOD_NS[:PRIORITY]]``."""
    try:
        values = [int(part) for part in text.split(":")]
        if not 1 <= len(values) <= 3:
            raise ValueError
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected CPU[:PERIOD_NS[:PRIORITY]] (got {text!r})"
        ) from None
    try:
        return Cyclictest(**dict(zip(("cpu", "period_ns", "priority"), values, strict=False)))
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
            raw.append(list(_assignment(piece)))
        else:
            raw[-1][1] += "," + piece
    return policy, tuple((key, parse_value(value)) for key, value in raw)


# ------------------------------------------------------------------ overrides


def apply_overrides(config: Config, assignments: Sequence[tuple[str, str]]) -> Config:
    """``config`` with ``FIELD=VALUE`` assignments applied all at once.

    ``FIELD`` is a top-level field, ``kernel.NAME``, ``costs.NAME`` or
    ``workload.NAME`` (every workload having ``NAME``). Cross-field checks (CPU numbers
    against ``ncpus``) see the final configuration, so the order does not matter.
    """
    top: dict[str, Any] = {}
    sections: dict[str, dict[str, Any]] = {name: {} for name in _SECTIONS}
    workload: dict[str, str] = {}
    for key, text in assignments:
        section, _, name = key.partition(".")
        if section in _SECTIONS and name:
            _check_field(key, name, list(attrs.fields_dict(_SECTIONS[section])), f"{section} field")
            sections[section][name] = _field_value(getattr(getattr(config, section), name), text)
        elif section == "workload" and name:
            workload[name] = text
        else:
            allowed = [*_TOP_FIELDS, *(f"{s}.FIELD" for s in _SECTIONS), "workload.FIELD"]
            _check_field(key, key, allowed, "field")
            top[key] = _field_value(getattr(config, key), text)
    for section, changes in sections.items():
        if changes:
            top[section] = attrs.evolve(getattr(config, section), **changes)
    if workload:
        top["workloads"] = _evolve_workloads(config.workloads, workload)
    return config.evolve(**top) if top else config


def _check_field(key: str, name: str, allowed: Sequence[str], what: str) -> None:
    if name not in allowed:
        raise ConfigError(key, f"a known {what}, one of: " + ", ".join(allowed), name)


def _evolve_workloads(workloads: tuple[Any, ...], changes: dict[str, str]) -> tuple[Any, ...]:
    fields = [attrs.fields_dict(type(w)) for w in workloads]
    known = list(dict.fromkeys(name for f in fields for name in f))
    kinds = ", ".join(sorted({type(w).__name__ for w in workloads}))
    for name in changes:
        _check_field(f"workload.{name}", name, known,
                     f"field of this scenario's workloads ({kinds})")
    return tuple(
        attrs.evolve(w, **{
            name: _field_value(getattr(w, name), text)
            for name, text in changes.items() if name in f
        })
        for w, f in zip(workloads, fields, strict=True)
    )


def _configure(config: Config, args: argparse.Namespace) -> Config:
    """The scenario's config with the shorthand flags and ``--set`` applied."""
    shorthands = [
        (name, str(getattr(args, name)))
        for name in ("seed", "packets", "ncpus") if getattr(args, name) is not None
    ]
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
    rows = [["scenario", "description"]]
    rows.extend([s.name, s.description] for s in scenarios.SCENARIOS.values())
    print(_table(rows))
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    scenario = scenarios.get(args.scenario)
    options = dict(args.option)
    config = _configure(scenario.config, args).evolve(policy=args.policy, policy_options=options)
    result = Simulation(config).run()
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


def _cmd_compare(args: argparse.Namespace) -> int:
    rows = _compare_rows(args.policy, args.variant)
    # Every configuration is built and validated before the first run starts.
    plans: dict[str, tuple[scenarios.Scenario, Config, dict[str, Simulation]]] = {}
    for name in args.scenario or scenarios.DEFAULT_COMPARE:
        scenario = scenarios.get(name)
        config = _configure(scenario.config, args)
        sims = {
            label: Simulation(config.evolve(policy=policy, policy_options=dict(options)))
            for label, (policy, options) in rows.items()
        }
        plans[scenario.name] = (scenario, config, sims)
    results = {
        name: {label: sim.run() for label, sim in sims.items()}
        for name, (_, _, sims) in plans.items()
    }
    if args.json:
        doc = {
            name: {label: r.to_dict() for label, r in rs.items()} for name, rs in results.items()
        }
        sys.stdout.write(json.dumps(doc, sort_keys=True, indent=2) + "\n")
        return 0
    blocks = [
        f"{name} ({_extent(config)}): {scenario.description}\n"
        + _compare_table(config, results[name])
        for name, (scenario, config, _) in plans.items()
    ]
    print("\n\n".join(blocks))
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
    group.add_argument("--seed", type=int, help="random seed")
    group.add_argument("--packets", type=int, help="stop input after N packets")
    group.add_argument("--ncpus", type=int, help="number of CPUs")
    group.add_argument(
        "--set", type=_assignment, action="append", default=[], metavar="FIELD=VALUE",
        help="set a Config field: ncpus, packets, duration_ns, drain_ns, seed, "
        "offline_cpus, kernel.NAME (e.g. kernel.preempt_rt=true), costs.NAME, "
        "workload.NAME (every workload with NAME); VALUE is an int, a float, "
        "true/false, none or a comma-separated list (repeatable)",
    )
    group.add_argument(
        "--hotplug", type=_hotplug, action="append", default=[],
        metavar="TIME_NS:CPU:online|offline", help="a CPU hotplug request (repeatable)",
    )
    group.add_argument(
        "--cyclictest", type=_cyclictest, action="append", default=[],
        metavar="CPU[:PERIOD_NS[:PRIORITY]]",
        help="add a cyclictest-like SCHED_FIFO task (default period 1 ms, priority 95)",
    )

    p = commands.add_parser("policies", help="list the installed policies")
    p.set_defaults(func=_cmd_policies)

    p = commands.add_parser("scenarios", help="list the named scenarios")
    p.set_defaults(func=_cmd_scenarios)

    p = commands.add_parser("run", parents=[overrides], help="run one scenario under one policy")
    p.add_argument("--policy", default=BASELINE, help=f"policy name (default {BASELINE})")
    p.add_argument("--scenario", default="seed-lo", help="scenario name (default seed-lo)")
    p.add_argument(
        "--option", type=option_assignment, action="append", default=[], metavar="KEY=VALUE",
        help="a policy option (repeatable)",
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON")
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
    p.add_argument("--json", action="store_true",
                   help="print {scenario: {policy label: result}} as JSON")
    p.set_defaults(func=_cmd_compare)

    # Imported here: the study imports this module's compare lines (BASELINE, RFC_VARIANT).
    from napikit import study

    p = commands.add_parser(
        "study", help="run the SEED scenarios over CPU counts, loads and policies; "
        "write a CSV and plots",
    )
    study.add_arguments(p)
    p.set_defaults(func=study.main)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the ``napikit`` command line; return the exit status."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as e:  # --help and --version: argparse printed them
        return e.code if isinstance(e.code, int) else 0
    except _UsageError as e:
        return _fail(e)
    try:
        return args.func(args)
    except NapikitError as e:
        return _fail(e)


def _fail(error: Exception) -> int:
    print(f"napikit: error: {error}", file=sys.stderr)
    return 2
