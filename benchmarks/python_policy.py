"""The cost of writing a policy in Python: a pure-Python softirq-ipi against the compiled one.

Both run PERF-A (scenario ``perf-a``, ``napikit/scenarios.py``) in this process; the
compiled policy is the baseline. The script checks that both give the same result
(the JSON without the policy's name) and prints simulated packets per wall-second of
each whole run
(``Simulation(config).run()``), the decisions the Python hooks took, and the slowdown
factor; the target is at most 3x.

Run ``python benchmarks/python_policy.py`` (``--help`` for options). Exits 0 unless
``--check`` is given and the results differ or the slowdown exceeds the target.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time

import napikit
from napikit import Action, hookimpl, scenarios
from napikit.plugins import plugin_manager

SLOWDOWN_TARGET = 3.0


class PySoftirqIpi:
    """softirq-ipi in plain Python: local backlog by softirq, remote by RPS IPI."""

    def __init__(self) -> None:
        self.decisions = 0

    @hookimpl
    def napikit_backlog_schedule(self, this_cpu: int, target_cpu: int) -> Action:
        self.decisions += 1
        return Action.SOFTIRQ if this_cpu == target_cpu else Action.IPI


class _Plugin:
    """Registers the Python twin as policy ``py-softirq-ipi``."""

    def __init__(self) -> None:
        self.policies: list[PySoftirqIpi] = []

    @hookimpl
    def napikit_register_policies(self, registry: napikit.PolicyRegistry) -> None:
        registry.register("py-softirq-ipi", self._make)

    def _make(self) -> PySoftirqIpi:
        policy = PySoftirqIpi()
        self.policies.append(policy)
        return policy


def _comparable(result: napikit.Result) -> str:
    """The result's JSON without what names the policy (the fingerprint hashes the
    configuration, its policy included)."""
    doc = result.to_dict()
    for key in ("policy", "policy_package", "fingerprint"):
        doc.pop(key)
    doc["config"].pop("policy")
    return json.dumps(doc, sort_keys=True)


def _timed(config: napikit.Config, pm: object, repeat: int) -> tuple[float, napikit.Result]:
    best, result = float("inf"), None
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        result = napikit.Simulation(config, plugins=pm).run()
        best = min(best, time.perf_counter() - start)
    assert result is not None
    return best, result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packets", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    args = parser.parse_args(argv)

    plugin = _Plugin()
    pm = plugin_manager()
    pm.register(plugin)
    config = scenarios.get("perf-a").config.evolve(packets=args.packets)

    compiled_s, compiled = _timed(config.evolve(policy="softirq-ipi"), pm, args.repeat)
    python_s, python = _timed(config.evolve(policy="py-softirq-ipi"), pm, args.repeat)
    same = _comparable(compiled) == _comparable(python)
    slowdown = python_s / compiled_s
    decisions = plugin.policies[-1].decisions

    print(f"PERF-A, {args.packets:,} packets, best of {args.repeat}, napikit "
          f"{napikit.__version__}, Python {sys.version.split()[0]}")
    for name, secs in (("softirq-ipi (compiled)", compiled_s),
                       ("py-softirq-ipi (Python hooks)", python_s)):
        print(f"  {name:32s} {secs:7.3f} s  {args.packets / secs:13,.0f} packets/s")
    print(f"  Python hook calls per run: {decisions:,} "
          f"({decisions / args.packets:.2f} per packet)")
    print(f"  identical results: {same}")
    print(f"  slowdown {slowdown:.2f}x (target <= {SLOWDOWN_TARGET:g}x)  "
          f"{'PASS' if slowdown <= SLOWDOWN_TARGET else 'FAIL'}")
    return 1 if args.check and (not same or slowdown > SLOWDOWN_TARGET) else 0


if __name__ == "__main__":
    sys.exit(main())
