"""Per-packet cost as the machine grows: 4, 64, 256 and 1,024 CPUs at 0.5 Mpps per CPU.

Each CPU ``i`` has one Poisson NIC of 0.5 Mpps (64 flows) whose RPS mask steers every
packet to CPU ``(i + 1) mod n``; costs and kernel are PERF-A's. The load per CPU is
constant, so a perfect engine costs the same per packet at every size; what grows is
the state it walks: some ``n`` events pending (at 1,024 CPUs about a thousand), ``n``
backlogs, rings and flow tables. Target (issue 12): at 1,024 CPUs at most 1.4x the
per-packet cost at 4 CPUs.

Each timed run is a child interpreter (``-P``, in a temporary directory: it imports
its own installed napikit) that times ``napikit.simulate(config)`` alone with
``time.process_time()``, after a short run that pays for the imports and the plugin
scan (whose cost depends on what else the environment has installed, not on the core):
CPU ns per simulated packet, best of ``--repeat``. With
``--baseline PYTHON`` another build (e.g. the old core's venv) is timed too, the two
taking turns run by run, and shown side by side. ``--callgrind`` counts instructions
instead (valgrind): a run of ``--packets`` and one of three times as many, the
difference over the packets between them, so start-up and set-up cancel.

Run ``python benchmarks/scale.py`` (``--help`` for options); it exits 0 unless
``--check`` is given and the target is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
from typing import Any

SIZES = (4, 64, 256, 1024)
RATE_PPS = 5e5
TARGET_RATIO = 1.4

#: Runs one configuration in a child: argv ncpus packets; prints CPU s and delivered.
_CHILD = r"""
import json, sys, time
import napikit
from napikit import NicIrq, scenarios
n, packets = int(sys.argv[1]), int(sys.argv[2])
config = scenarios.get("perf-a").config.evolve(ncpus=n, packets=packets, workloads=tuple(
    NicIrq(cpu=i, rate_pps=float(sys.argv[3]), arrival="poisson", flows=64,
           flow_dist="uniform", rps_cpus=((i + 1) % n,)) for i in range(n)))
napikit.simulate(config.evolve(packets=1000))   # imports and the plugin scan, once
t = time.process_time()
result = napikit.simulate(config)
t = time.process_time() - t
assert result.conserved and result.delivered == packets, "run did not complete"
print(json.dumps({"seconds": t, "delivered": result.delivered, "events": result.events}))
"""


def child(python: str, ncpus: int, packets: int, wrap: list[str] | None = None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as cwd:
        done = subprocess.run([*(wrap or []), python, "-P", "-c", _CHILD, str(ncpus),
                               str(packets), str(RATE_PPS)],
                              capture_output=True, text=True, cwd=cwd, check=False)
        if done.returncode != 0:
            raise SystemExit(f"{python}: the run at {ncpus} CPUs failed:\n{done.stderr}")
        out: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
        if wrap:
            with open(os.path.join(cwd, "callgrind.out")) as f:
                out["instructions"] = int(re.search(r"^(?:summary|totals): (\d+)", f.read(),
                                                    re.M).group(1))  # type: ignore[union-attr]
    return out


def timed(builds: dict[str, str], sizes: list[int], packets: int,
          repeat: int) -> dict[str, dict[int, Any]]:
    """ns per packet of each build at each size, best of ``repeat``; the builds take
    turns, run by run, so load on the machine falls on both."""
    best: dict[str, dict[int, Any]] = {label: {} for label in builds}
    for _ in range(repeat):
        for n in sizes:
            for label, python in builds.items():
                r = child(python, n, packets)
                ns = r["seconds"] * 1e9 / r["delivered"]
                prev = best[label].get(n)
                if prev is None or ns < prev["ns_per_packet"]:
                    best[label][n] = {"ns_per_packet": ns, "events_per_packet":
                                      r["events"] / r["delivered"]}
    return best


def counted(builds: dict[str, str], sizes: list[int], packets: int) -> dict[str, dict[int, Any]]:
    """Instructions per packet (callgrind) of each build at each size."""
    out: dict[str, dict[int, Any]] = {label: {} for label in builds}
    wrap = ["valgrind", "--tool=callgrind", "--callgrind-out-file=callgrind.out"]
    for n in sizes:
        for label, python in builds.items():
            a = child(python, n, packets, wrap)["instructions"]
            b = child(python, n, 3 * packets, wrap)["instructions"]
            out[label][n] = {"instructions_per_packet": (b - a) / (2 * packets)}
    return out


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--packets", type=int, default=1_000_000,
                        help="packets per timed run (default %(default)s; with --callgrind, "
                             "the shorter run's, default 200000)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="timed runs per build and size, best kept (default %(default)s)")
    parser.add_argument("--baseline", metavar="PYTHON",
                        help="also time the build of this Python (e.g. the old core's venv)")
    parser.add_argument("--python", default=sys.executable,
                        help="the Python of the build measured (default: this one)")
    parser.add_argument("--callgrind", action="store_true",
                        help="count instructions with valgrind instead of timing")
    parser.add_argument("--cpus", type=int, action="append",
                        help=f"a size to run (repeatable; default {', '.join(map(str, SIZES))}; "
                             f"the ratios are to the first)")
    parser.add_argument("--check", action="store_true", help="exit 1 when the target is missed")
    parser.add_argument("--json", action="store_true",
                        help="print the figures as one JSON document instead of text")
    args = parser.parse_args()
    if args.callgrind and args.packets == parser.get_default("packets"):
        args.packets = 200_000
    if args.packets < 1 or args.repeat < 1 or min(args.cpus or [1]) < 1:
        parser.error("--packets, --repeat and --cpus must be >= 1")
    args.cpus = args.cpus or list(SIZES)
    return args


def main() -> int:
    args = parse_args()
    say = (lambda line: None) if args.json else print
    builds = {"new": args.python}
    if args.baseline:
        builds = {"baseline": args.baseline, **builds}
    key, unit = (("instructions_per_packet", "instr/packet") if args.callgrind
                 else ("ns_per_packet", "ns/packet"))
    sizes = args.cpus
    say(f"scale: {', '.join(map(str, sizes))} CPUs, {RATE_PPS / 1e6:g} Mpps per CPU, "
        f"{args.packets:,} packets" + ("" if args.callgrind else f", best of {args.repeat}")
        + f"; {platform.python_implementation()} {platform.python_version()}, "
        f"{os.cpu_count()} CPUs")
    figures = (counted(builds, sizes, args.packets) if args.callgrind
               else timed(builds, sizes, args.packets, args.repeat))
    for by_size in figures.values():
        for n in sizes:
            by_size[n]["ratio"] = by_size[n][key] / by_size[sizes[0]][key]
    head = "".join(f"{label + ' ' + unit:>24}{'vs ' + str(sizes[0]):>7}" for label in figures)
    say(f"  {'CPUs':>5}{head}" + ("  new/baseline" if args.baseline else ""))
    for n in sizes:
        row = "".join(f"{figures[label][n][key]:>24.1f}{figures[label][n]['ratio']:>6.2f}x"
                      for label in figures)
        if args.baseline:
            row += f"{figures['new'][n][key] / figures['baseline'][n][key]:>13.2f}x"
        say(f"  {n:>5}{row}")
    ratio = figures["new"][sizes[-1]]["ratio"]
    ok = ratio <= TARGET_RATIO
    say(f"new at {sizes[-1]} CPUs: {ratio:.2f}x its cost at {sizes[0]} "
        f"(target <= {TARGET_RATIO}x from {SIZES[0]} to {SIZES[-1]})  {'PASS' if ok else 'FAIL'}")
    if args.json:
        print(json.dumps({"sizes": sizes, "rate_pps_per_cpu": RATE_PPS, "packets": args.packets,
                          "repeat": args.repeat, "unit": unit, "builds": figures,
                          "target_ratio": TARGET_RATIO, "pass": ok}, indent=2))
    return 1 if args.check and not ok else 0


if __name__ == "__main__":
    sys.exit(main())
