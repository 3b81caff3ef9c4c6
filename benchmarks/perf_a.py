"""PERF-A, napikit's speed and memory yardstick (scenario ``perf-a``, ``napikit/scenarios.py``).

Speed: simulated packets per wall-second of a whole run, ``Simulation(config).run()``
(policy resolution, the event loop and building the Result), best of ``--repeat``
runs, for each installed policy. softirq-ipi is the baseline: it is always run, in
this process, and every other policy is shown as a ratio to it.

Memory: peak RSS (``ru_maxrss``) of one run in a fresh interpreter, for 1,000,000 and
10,000,000 packets under softirq-ipi. The target: 10M packets cost at most 50 MB
(10**6 bytes each) more peak RSS than 1M.

Run ``python benchmarks/perf_a.py`` (``--help`` for options). It exits 0 unless
``--check`` is given and a target is missed: >= 5,000,000 simulated packets/s for
softirq-ipi, and the memory bound.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import napikit
from napikit import plugins, scenarios

BASELINE = "softirq-ipi"
SPEED_TARGET_PPS = 5_000_000
MEMORY_PACKETS = (1_000_000, 10_000_000)
MEMORY_BOUND_BYTES = 50_000_000

Say = Callable[[str], None]

#: Runs in a fresh interpreter; prints ru_maxrss at start and after the run.
_MEMORY_CHILD = """
import resource, sys
floor = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
import napikit
from napikit import scenarios
config = scenarios.get("perf-a").config.evolve(policy=sys.argv[2], packets=int(sys.argv[1]))
result = napikit.Simulation(config).run()
assert result.conserved and result.arrived == int(sys.argv[1]), "run did not complete"
print(floor, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""

#: Linux folds the pre-exec address space's peak RSS into the new program's ru_maxrss,
#: so a child started from this process inherits this process's peak as a floor that
#: can hide its own. A bare interpreter in between starts the measured child with a
#: floor of about one bare interpreter (``Memory.masked`` checks that it did).
_LAUNCHER = "import subprocess, sys; sys.exit(subprocess.run(sys.argv[1:]).returncode)"


@dataclass
class Speed:
    """One policy's timed PERF-A runs (all repeats give the same, seeded, result)."""

    policy: str
    seconds: list[float]
    result: napikit.Result

    @property
    def best(self) -> float:
        return min(self.seconds)

    @property
    def packets_per_s(self) -> float:
        return self.result.arrived / self.best

    @property
    def events_per_s(self) -> float:
        return self.result.events / self.best


@dataclass
class Memory:
    """Peak RSS, in bytes, of one run in a fresh interpreter."""

    packets: int
    peak: int
    floor: int

    @property
    def masked(self) -> bool:
        """True when the peak is no higher than what the child inherited at start."""
        return self.peak <= self.floor


def timed_run(config: napikit.Config) -> tuple[float, napikit.Result]:
    """Wall-seconds of ``Simulation(config).run()``, and its result."""
    gc.collect()
    start = time.perf_counter()
    result = napikit.Simulation(config).run()
    return time.perf_counter() - start, result


def measure_speed(policies: list[str], packets: int, repeat: int) -> list[Speed]:
    """Best-of-``repeat`` timings; repeats interleave policies so drift hits all alike."""
    base = scenarios.get("perf-a").config.evolve(packets=packets)
    seconds: dict[str, list[float]] = {p: [] for p in policies}
    results: dict[str, napikit.Result] = {}
    for _ in range(repeat):
        for policy in policies:
            elapsed, results[policy] = timed_run(base.evolve(policy=policy))
            seconds[policy].append(elapsed)
    return [Speed(p, seconds[p], results[p]) for p in policies]


def measure_memory(packets: int) -> Memory:
    """Peak RSS of one softirq-ipi PERF-A run of ``packets`` in a fresh interpreter."""
    # -P: "-c" would put the working directory first on sys.path, and from the checkout
    # root its uncompiled napikit/ would shadow the napikit this process imported.
    out = subprocess.run(
        [sys.executable, "-c", _LAUNCHER,
         sys.executable, "-P", "-c", _MEMORY_CHILD, str(packets), BASELINE],
        check=True, stdout=subprocess.PIPE, text=True,
    ).stdout
    floor, peak = (int(v) for v in out.split())
    unit = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, else KiB
    return Memory(packets, peak * unit, floor * unit)


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    return {
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "napikit": napikit.__version__,
    }


def shape(result: napikit.Result) -> dict[str, Any]:
    """PERF-A's sanity figures: what the scenario says to expect."""
    return {
        "arrived": result.arrived,
        "delivered": result.delivered,
        "backlog_drop_pct": 100 * result.drops.backlog / result.arrived,
        "ipis": result.ipis,
        "thread_wakeups": result.backlog_thread_wakeups + result.ksoftirqd_wakeups,
        "mean_latency_ns": result.latency_enqueue.mean_ns,
        "cpu_share_pct": [100 * row.processed / result.arrived for row in result.softnet],
        "conserved": result.conserved,
    }


def shape_line(s: dict[str, Any]) -> str:
    share = "/".join(f"{v:.0f}" for v in s["cpu_share_pct"])
    return (
        f"delivered {s['delivered']:,}/{s['arrived']:,}, backlog drops "
        f"{s['backlog_drop_pct']:.1f} %, IPIs {s['ipis']:,}, thread wake-ups "
        f"{s['thread_wakeups']:,}, mean latency {s['mean_latency_ns'] / 1e3:.2f} us, "
        f"cpu share {share} %, conserved {s['conserved']}"
    )


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def parse_args(installed: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--packets", type=int, default=scenarios.get("perf-a").config.packets,
                        help="packets per timed run (default: PERF-A's %(default)s)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="timed runs per policy, best kept (default %(default)s)")
    parser.add_argument("--policy", action="append", choices=installed,
                        help=f"policy to time (repeatable; default all; {BASELINE} always runs)")
    parser.add_argument("--skip-memory", action="store_true", help="skip the peak RSS runs")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--json", action="store_true",
                        help="print the figures as one JSON document instead of text")
    args = parser.parse_args()
    if args.packets < 1 or args.repeat < 1:
        parser.error("--packets and --repeat must be >= 1")
    return args


def report_speed(speeds: list[Speed], say: Say) -> dict[str, Any]:
    """Print the speed table; return its figures."""
    baseline = speeds[0]
    ok = baseline.packets_per_s >= SPEED_TARGET_PPS
    say("\nspeed (whole run: Simulation(config).run()):")
    say(f"  {'policy':<16}{'best s':>8}{'packets/s':>14}{'events/s':>14}{'vs baseline':>13}")
    figures: dict[str, Any] = {}
    for s in speeds:
        ratio = s.packets_per_s / baseline.packets_per_s
        say(f"  {s.policy:<16}{s.best:>8.3f}{s.packets_per_s:>14,.0f}"
            f"{s.events_per_s:>14,.0f}{ratio:>12.2f}x")
        figures[s.policy] = {
            "seconds": s.seconds, "best_s": s.best, "packets_per_s": s.packets_per_s,
            "events": s.result.events, "events_per_s": s.events_per_s,
            "ratio_to_baseline": ratio, "shape": shape(s.result),
        }
    say(f"  {BASELINE}: {baseline.packets_per_s:,.0f} packets/s "
        f"(target >= {SPEED_TARGET_PPS:,})  {verdict(ok)}")
    return {"policies": figures, "target_pps": SPEED_TARGET_PPS, "pass": ok}


def report_memory(say: Say) -> dict[str, Any]:
    """Measure and print peak RSS at 1M and 10M packets; return the figures."""
    runs = [measure_memory(n) for n in MEMORY_PACKETS]
    growth = runs[1].peak - runs[0].peak
    ok = growth <= MEMORY_BOUND_BYTES and not any(m.masked for m in runs)
    say(f"\npeak RSS, {BASELINE}, one fresh interpreter per run:")
    for m in runs:
        note = "  MASKED: no higher than the floor" if m.masked else ""
        say(f"  {m.packets:>11,} packets: {m.peak / 1e6:6.1f} MB "
            f"(inherited floor {m.floor / 1e6:.1f} MB){note}")
    say(f"  10M - 1M: {growth / 1e6:+.1f} MB "
        f"(target <= +{MEMORY_BOUND_BYTES / 1e6:.0f} MB)  {verdict(ok)}")
    return {
        "policy": BASELINE,
        "runs": [{"packets": m.packets, "peak_rss_bytes": m.peak,
                  "inherited_floor_bytes": m.floor} for m in runs],
        "growth_bytes": growth, "bound_bytes": MEMORY_BOUND_BYTES, "pass": ok,
    }


def report_overload(packets: int, say: Say) -> dict[str, Any]:
    """Run perf-a-overload once under the baseline; print and return its shape."""
    config = scenarios.get("perf-a-overload").config.evolve(policy=BASELINE, packets=packets)
    seconds, result = timed_run(config)
    say(f"\nperf-a-overload (5 Mpps), {BASELINE}, one run of {seconds:.3f} s "
        f"(expect ~30 % drops):\n  {shape_line(shape(result))}")
    return {"policy": BASELINE, "seconds": seconds, "shape": shape(result)}


def main() -> int:
    installed = [spec.name for spec in plugins.registry()]
    args = parse_args(installed)
    policies = [BASELINE] + [p for p in (args.policy or installed) if p != BASELINE]
    say: Say = (lambda line: None) if args.json else print
    figures: dict[str, Any] = {"machine": machine(), "packets": args.packets,
                               "repeat": args.repeat}
    say("PERF-A benchmark: " + ", ".join(f"{k} {v}" for k, v in figures["machine"].items()))
    say(f"{args.packets:,} packets per timed run, best of {args.repeat}, baseline {BASELINE}")

    speeds = measure_speed(policies, args.packets, args.repeat)
    figures["speed"] = report_speed(speeds, say)
    if not args.skip_memory:
        figures["memory"] = report_memory(say)
    say("\nshape (PERF-A, 2 Mpps; expect no drops, ~25 % per CPU, mean latency a few us):")
    for s in speeds:
        say(f"  {s.policy:<16}{shape_line(shape(s.result))}")
    figures["overload"] = report_overload(args.packets, say)

    speed_ok = figures["speed"]["pass"]
    memory_ok = figures.get("memory", {"pass": True})["pass"]
    if args.json:
        print(json.dumps(figures, indent=2))
    say(f"\ntargets: speed {verdict(speed_ok)}, memory "
        f"{'skipped' if args.skip_memory else verdict(memory_ok)}")
    return 1 if args.check and not (speed_ok and memory_ok) else 0


if __name__ == "__main__":
    sys.exit(main())
