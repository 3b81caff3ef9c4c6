"""``napikit validate``: the model's predictions against a real kernel-bench run.

Each configuration of ``real.json`` (:mod:`napikit.host.kernel_bench`) is simulated
once with a :class:`~napikit.config.LoopbackUdp` workload that mirrors it (the same
sender and receiver CPUs, ``rps_cpus``, 8 flows, the paced rate), the classic
``softirq-ipi`` policy, the host's ``net.core`` sysctls and HZ from the facts recorded
in ``real.json``, and the costs of the cost file. Nothing is fitted to ``real.json``:
its numbers are only compared with. The report puts side by side every figure and
every ratio between configurations, with the relative error of each and whether the
effect has the same sign (for a ratio: whether both are above 1, or both below).
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
from attrs import frozen

from napikit.config import Config, KernelParams, LoopbackUdp
from napikit.errors import ConfigError, NapikitError
from napikit.host.costfile import LoadedCosts, load
from napikit.host.kernel_bench import FORMAT
from napikit.results import Result
from napikit.simulation import Simulation

POLICY = "softirq-ipi"
#: Simulated input time per configuration (the model is deterministic: one run).
SIM_SECONDS = 0.2


# ------------------------------------------------------------------ loading real.json


def load_real(path: Path | str) -> dict[str, Any]:
    """Read and check a kernel-bench file; :class:`ConfigError` names a bad field."""
    try:
        doc = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError) as e:
        raise NapikitError(f"cannot read {path}: {getattr(e, 'strerror', None) or e}") from None
    except json.JSONDecodeError as e:
        raise NapikitError(f"{path}: not JSON: {e}") from None
    if not isinstance(doc, dict):
        raise ConfigError("real", "a JSON object written by napikit kernel-bench", type(doc))
    if doc.get("format") != FORMAT:
        raise ConfigError("format", repr(FORMAT), doc.get("format"))
    configs = doc.get("configurations")
    if not isinstance(configs, list) or not configs:
        raise ConfigError("configurations", "a non-empty list", configs)
    for i, c in enumerate(configs):
        where = f"configurations[{i}]"
        if not isinstance(c, dict):
            raise ConfigError(where, "an object", c)
        for key, ok in (("name", lambda v: isinstance(v, str)),
                        ("pairs", lambda v: isinstance(v, list) and v and all(
                            isinstance(p, list) and len(p) == 2 for p in v)),
                        ("rps_cpus", lambda v: isinstance(v, list)),
                        ("rate_pps", lambda v: v is None or isinstance(v, (int, float))),
                        ("figures", lambda v: isinstance(v, dict))):
            if key not in c or not ok(c[key]):
                raise ConfigError(f"{where}.{key}", "the value kernel-bench writes",
                                  c.get(key))
        for name, fig in c["figures"].items():
            if not (isinstance(fig, dict) and all(
                    isinstance(fig.get(k), (int, float)) and not isinstance(fig.get(k), bool)
                    for k in ("median", "min", "max"))):
                raise ConfigError(f"{where}.figures.{name}", "{median, min, max} numbers", fig)
    host = doc.get("host", {})
    if not isinstance(host, dict):
        raise ConfigError("host", "an object", host)
    return doc


def kernel_params(host: dict[str, Any]) -> KernelParams:
    """The host's HZ and ``net.core`` sysctls (recorded facts, not fitted values)."""
    core = host.get("net_core", {}) if isinstance(host.get("net_core"), dict) else {}

    def get(name: str) -> int | None:
        try:
            return int(core[name])
        except (KeyError, ValueError, TypeError):
            return None

    values: dict[str, Any] = {}
    if isinstance(host.get("hz"), int):
        values["hz"] = host["hz"]
    for name in ("netdev_max_backlog", "dev_weight", "dev_weight_rx_bias", "netdev_budget",
                 "netdev_budget_usecs", "rmem_default"):
        v = get(name)
        if v is not None:
            values[name] = v
    values.update(idle_params(host))
    values.update(preempt_params(host))
    values.update(sched_params(host))
    return KernelParams(**values)


def sched_params(host: dict[str, Any]) -> dict[str, Any]:
    """The fair class of the host's kernel release (``kernel_release``, ``uname -r``):
    CFS before 6.6, EEVDF since, with the base slice of its release: 0.75 ms up to
    6.14, 0.70 ms from 6.15 ("sched/fair: Reduce the default slice"), both scaled by
    ``1 + ilog2(min(ncpus, 8))``; DELAY_DEQUEUE from 6.12 ("sched/fair: Implement
    delayed dequeue", on by default). Where debugfs was readable, the slice in force
    (``sched_base_slice_ns``) and the PLACE_LAG, RUN_TO_PARITY and DELAY_DEQUEUE
    features (``sched_features``) are taken as recorded. An unreadable release: the
    defaults (EEVDF, 0.75 ms, no DELAY_DEQUEUE)."""
    m = re.match(r"(\d+)\.(\d+)", str(host.get("kernel_release", "")))
    if not m:
        return {}
    version = (int(m.group(1)), int(m.group(2)))
    if version < (6, 6):
        return {"scheduler": "cfs"}
    out: dict[str, Any] = {"scheduler": "eevdf", "sched_delay_dequeue": version >= (6, 12)}
    recorded = host.get("sched_base_slice_ns")
    if isinstance(recorded, int) and not isinstance(recorded, bool) and recorded > 0:
        out["sched_base_slice_ns"] = recorded
    elif version >= (6, 15):
        ncpus = host.get("ncpus")
        n = min(max(ncpus, 1), 8) if isinstance(ncpus, int) else 1
        out["sched_base_slice_ns"] = 700_000 * (1 + (n.bit_length() - 1))
    features = host.get("sched_features")
    if isinstance(features, dict):
        for name, field_name in (("PLACE_LAG", "sched_place_lag"),
                                 ("RUN_TO_PARITY", "sched_run_to_parity"),
                                 ("DELAY_DEQUEUE", "sched_delay_dequeue")):
            if isinstance(features.get(name), bool):
                out[field_name] = features[name]
    return out


def preempt_params(host: dict[str, Any]) -> dict[str, Any]:
    """``preempt`` from the host's recorded preemption model (``preempt_model``, read by
    ``napikit.host.procfs.preempt_model``): ``"none"``, ``"voluntary"`` and ``"full"``
    as they are, ``"rt"`` as ``"full"`` (PREEMPT_RT implies it). ``"lazy"`` (6.13's
    PREEMPT_LAZY, not modelled), ``"dynamic"`` or ``"unknown"`` (the model in force was
    not readable): the default."""
    model = host.get("preempt_model")
    if model in ("none", "voluntary", "full"):
        return {"preempt": model}
    if model == "rt":
        return {"preempt": "full"}
    return {}


def idle_params(host: dict[str, Any]) -> dict[str, Any]:
    """``cpuidle``, ``idle_exit_latency_ns`` and ``haltpoll_ns`` from the host's cpuidle
    facts: the driver, ``guest_halt_poll_ns`` of haltpoll (0: it never polls, so it
    halts at once), and the exit latency the driver declares for its shallowest enabled
    state past POLL (``cpuidle_state.exit_latency``, ``state*/latency`` in µs): the one a
    governor picks for the short idle periods between packets. No facts: the defaults."""
    states = [st for st in host.get("cpuidle_states") or []
              if isinstance(st, dict) and not st.get("disabled")]
    deep = [st for st in states if st.get("name") != "POLL"]
    out: dict[str, Any] = {}
    if deep and isinstance(deep[0].get("latency_us"), int):
        out["idle_exit_latency_ns"] = deep[0]["latency_us"] * 1000
    if host.get("cpuidle_driver") == "haltpoll":
        raw = (host.get("haltpoll") or {}).get("guest_halt_poll_ns")
        try:
            poll_ns = int(str(raw))
        except ValueError:  # not recorded: the defaults
            return out
        if poll_ns > 0:
            out.update(cpuidle="haltpoll", haltpoll_ns=poll_ns)
        else:
            out["cpuidle"] = "halt"
    elif states and not deep:
        out["cpuidle"] = "poll"  # only the POLL state is enabled
    elif deep:
        out["cpuidle"] = "halt"
    return out


def sim_config(config: dict[str, Any], ncpus: int, costs: LoadedCosts,
               kernel: KernelParams, seconds: float = SIM_SECONDS) -> Config:
    """The napikit :class:`Config` that mirrors one kernel-bench configuration."""
    pairs = config["pairs"]
    return Config(
        ncpus=ncpus,
        workloads=(LoopbackUdp(
            senders=tuple(p[0] for p in pairs), receivers=tuple(p[1] for p in pairs),
            flows=8 * len(pairs), rate_pps=config["rate_pps"],
            rps_cpus=tuple(config["rps_cpus"]),
        ),),
        policy=POLICY, kernel=kernel, costs=costs.costs,
        cost_distributions=costs.distributions, packets=None, duration_ns=int(seconds * 1e9),
    )


# ------------------------------------------------------------------ predicted figures


def predicted(r: Result) -> dict[str, float]:
    """The model's value of each kernel-bench figure it has."""
    window = r.input_duration_ns / 1e9 or 1e-9
    sent = max(1, r.arrived)
    senders = [t for t in r.tasks if t.kind == "sender"]
    receivers = [t for t in r.tasks if t.kind == "receiver"]
    rx_rps = sum(s.received_rps for s in r.softnet)
    return {
        "sent_pps": r.arrived / window,
        "delivered_pps": r.delivered_pps,
        "socket_drops_per_sent": r.drops.socket / sent,
        "backlog_drops_per_sent": (r.drops.backlog + r.drops.flow_limit) / sent,
        "ipis_cal_per_sent": (r.ipis + r.wakeup_ipis + r.defer_ipis) / sent,
        "received_rps_per_sent": rx_rps / sent,
        "packets_per_rps_kick": r.arrived / rx_rps if rx_rps else 0.0,
        "cal_per_rps_kick": r.ipis / rx_rps if rx_rps else 0.0,
        "time_squeeze_per_sent": sum(s.time_squeeze for s in r.softnet) / sent,
        "sender_ns_per_packet": sum(t.runtime_ns + t.softirq_ns for t in senders) / sent,
        "receiver_cpu_ns_per_delivered":
            sum(t.runtime_ns + t.softirq_ns for t in receivers) / max(1, r.delivered),
        "context_switches_per_sent":
            sum(t.switches for t in senders + receivers) / sent,
        "ksoftirqd_cpu_share":
            sum(c.ksoftirqd for c in r.cpu_time) / max(1, r.sim_time_ns) / len(r.cpu_time),
    }


#: Figures compared, in table order, with what each is.
FIGURES: dict[str, str] = {
    "sent_pps": "datagrams sent per second",
    "delivered_pps": "datagrams received per second while sending",
    "socket_drops_per_sent": "socket receive-buffer drops per datagram sent",
    "backlog_drops_per_sent": "backlog drops (softnet dropped) per datagram sent",
    "ipis_cal_per_sent": "CAL interrupts (model: RPS, wake-up, defer IPIs) per datagram sent",
    "received_rps_per_sent": "softnet received_rps per datagram sent",
    "packets_per_rps_kick": "datagrams per received_rps",
    "cal_per_rps_kick": "CAL interrupts (model: IPIs) per received_rps",
    "time_squeeze_per_sent": "softnet time_squeeze per datagram sent",
    "sender_ns_per_packet": "sender CPU ns per datagram (paced: ns inside sendto)",
    "receiver_cpu_ns_per_delivered": "receiver CPU ns per datagram received",
    "context_switches_per_sent": "switches out of the sender and receiver threads "
    "(nvcsw + nivcsw) per sent",
    "ksoftirqd_cpu_share": "ksoftirqd CPU time, share of all CPUs",
}


@frozen
class Row:
    """One line of the report."""

    what: str
    measured: float
    measured_min: float
    measured_max: float
    predicted: float
    ratio_row: bool

    @property
    def rel_error(self) -> float | None:
        """(predicted - measured) / measured, ``None`` when measured is 0."""
        if self.measured == 0:
            return None
        return (self.predicted - self.measured) / abs(self.measured)

    @property
    def sign_agrees(self) -> bool:
        """Ratios: both on the same side of 1. Figures: both zero, or both non-zero."""
        if self.ratio_row:
            return _side(self.measured) == _side(self.predicted)
        return (abs(self.measured) < 1e-12) == (abs(self.predicted) < 1e-12)

    @property
    def in_range(self) -> bool:
        """The prediction lies within the measured min-max over the repetitions (1 %
        slack, so a measured 1.0002-1.0004 holds a predicted 0.9999)."""
        return self.measured_min * 0.99 - 1e-12 <= self.predicted <= \
            self.measured_max * 1.01 + 1e-12

    def to_dict(self) -> dict[str, Any]:
        return {"what": self.what, "measured": self.measured,
                "measured_range": [self.measured_min, self.measured_max],
                "predicted": self.predicted, "relative_error": self.rel_error,
                "sign_agrees": self.sign_agrees, "in_range": self.in_range}


def _side(x: float, tol: float = 0.02) -> int:
    return 0 if abs(x - 1) <= tol else (1 if x > 1 else -1)


#: Ratios between configurations of the same rate: (label, numerator, denominator).
RATIOS: tuple[tuple[str, str, str], ...] = (
    ("RPS to receiver / RPS off", "other/rps-receiver", "other/rps-off"),
    ("RPS over all / RPS off", "other/rps-all", "other/rps-off"),
    ("RPS to sender / RPS off", "other/rps-sender", "other/rps-off"),
    ("receiver on sender's CPU / on another CPU", "same/rps-off", "other/rps-off"),
)
RATIO_FIGURES = ("delivered_pps", "sent_pps")


def _rate(name: str) -> str:
    return name.rsplit("/", 1)[1]


def compare(real: dict[str, Any], costs: LoadedCosts,
            seconds: float = SIM_SECONDS, scheduler: str | None = None) -> dict[str, Any]:
    """Simulate every configuration; the figure rows, the ratio rows, the defaults.
    ``scheduler`` (``"eevdf"``, ``"cfs"``) overrides the host kernel's fair class."""
    host = real.get("host", {})
    ncpus = max(2, int(host.get("ncpus", 2)),
                1 + max(max(p) for c in real["configurations"] for p in c["pairs"]))
    kernel = kernel_params(host)
    if scheduler is not None:
        kernel = attrs.evolve(kernel, scheduler=scheduler)
    configs = real["configurations"]
    pred: dict[str, dict[str, float]] = {}
    meas: dict[str, dict[str, dict[str, float]]] = {}
    for c in configs:
        result = Simulation(sim_config(c, ncpus, costs, kernel, seconds)).run()
        pred[c["name"]] = predicted(result)
        meas[c["name"]] = c["figures"]
    figure_rows: dict[str, list[Row]] = {}
    for name in pred:
        rows = []
        for fig in FIGURES:
            if fig in meas[name]:
                m = meas[name][fig]
                rows.append(Row(fig, m["median"], m["min"], m["max"], pred[name][fig], False))
        figure_rows[name] = rows
    ratio_rows: list[Row] = []
    rates = list(dict.fromkeys(_rate(c["name"]) for c in configs))
    for rate in rates:
        for label, num, den in RATIOS:
            a, b = f"{num}/{rate}", f"{den}/{rate}"
            if a not in pred or b not in pred:
                continue
            for fig in RATIO_FIGURES:
                if rate != "closed" and fig != "delivered_pps":
                    continue
                ma, mb = meas[a][fig], meas[b][fig]
                if not mb["median"] or not pred[b][fig]:
                    continue
                ratio_rows.append(Row(
                    f"{fig} {label} [{rate}]", ma["median"] / mb["median"],
                    ma["min"] / mb["max"] if mb["max"] else 0.0,
                    ma["max"] / mb["min"] if mb["min"] else math.inf,
                    pred[a][fig] / pred[b][fig], True))
    for c in configs:
        if c["rate_pps"] is None or not c["rps_cpus"]:
            continue
        for fig in ("packets_per_rps_kick", "cal_per_rps_kick"):
            got = meas[c["name"]].get(fig)
            # RPS that never leaves the sender's CPU kicks nothing: no row.
            if got is not None and (got["max"] or pred[c["name"]][fig]):
                ratio_rows.append(Row(f"{fig} [{c['name']}]", got["median"], got["min"],
                                      got["max"], pred[c["name"]][fig], True))
    return {"figures": figure_rows, "ratios": ratio_rows, "defaults": list(costs.defaults),
            "sources": costs.sources, "ncpus": ncpus, "kernel": kernel,
            "validates": real.get("validates", [])}


# ------------------------------------------------------------------ output


def _num(x: float) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-"
    a = abs(x)
    if a >= 1000:
        return f"{x:,.0f}"
    if a >= 10:
        return f"{x:.1f}"
    return f"{x:.3g}"


def _err(row: Row) -> str:
    e = row.rel_error
    return "-" if e is None else f"{e:+.0%}"


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                               for i, (c, w) in enumerate(zip(r, widths, strict=True))).rstrip()
                     for r in rows)


def _rows(rows: list[Row], first: str) -> str:
    out = [[first, "measured", "range", "predicted", "rel. error", "sign", "in range"]]
    for r in rows:
        out.append([r.what, _num(r.measured), f"{_num(r.measured_min)}-{_num(r.measured_max)}",
                    _num(r.predicted), _err(r), "yes" if r.sign_agrees else "NO",
                    "yes" if r.in_range else "no"])
    return _table(out)


def report(cmp: dict[str, Any], costs_path: str, real_path: str) -> str:
    """The text report: ratios first (what the claims are about), then every figure."""
    ratios: list[Row] = cmp["ratios"]
    agree = sum(r.sign_agrees for r in ratios)
    inside = sum(r.in_range for r in ratios)
    lines = [
        f"napikit validate: {costs_path} against {real_path}, policy {POLICY}, "
        f"{cmp['ncpus']} CPUs, HZ {cmp['kernel'].hz}",
        "kernel from the host's facts: preempt={k.preempt}, cpuidle={k.cpuidle}, "
        "idle_exit_latency_ns={k.idle_exit_latency_ns}".format(k=cmp["kernel"])
        + (f", haltpoll_ns={cmp['kernel'].haltpoll_ns}" if cmp["kernel"].cpuidle == "haltpoll"
           else "")
        + ", scheduler={k.scheduler} (base slice {s} ns{d})".format(
            k=cmp["kernel"], s=cmp["kernel"].sched_tunables(cmp["ncpus"])[3],
            d="" if cmp["kernel"].scheduler != "eevdf"
            else ", DELAY_DEQUEUE" if cmp["kernel"].sched_delay_dequeue
            else ", NO_DELAY_DEQUEUE"),
        "costs left at napikit's default (not in the file): "
        + (", ".join(cmp["defaults"]) or "none"),
        "costs the file sets to a default: " + (", ".join(
            n for n, s in cmp["sources"].items() if s.startswith("default:")) or "none"),
        "",
        f"Ratios between configurations: {agree}/{len(ratios)} agree in sign, {inside} "
        "predicted within the measured range",
        "(sign: both above 1, both below, or both within 2 % of 1; range: the ratio of "
        "the measured extremes)",
        _rows(ratios, "ratio"),
    ]
    for name, rows in cmp["figures"].items():
        lines += ["", f"{name}", _rows(rows, "figure")]
    return "\n".join(lines)


def to_json(cmp: dict[str, Any]) -> str:
    doc = {
        "policy": POLICY, "ncpus": cmp["ncpus"], "defaults": cmp["defaults"],
        "scheduler": cmp["kernel"].scheduler, "sources": cmp["sources"],
        "ratios": [r.to_dict() for r in cmp["ratios"]],
        "figures": {n: [r.to_dict() for r in rows] for n, rows in cmp["figures"].items()},
    }
    return json.dumps(doc, indent=1, sort_keys=True) + "\n"


def plot(cmp: dict[str, Any], path: Path) -> None:
    """Measured against predicted, log-log, one point per ratio and per rate figure."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import FuncFormatter, LogLocator, NullLocator
    except ImportError:
        raise NapikitError("--plot needs matplotlib: pip install 'napikit[host]'") from None
    fig, axes = plt.subplots(1, 2, figsize=(11, 5))
    panels: list[tuple[Any, list[Row], str, Callable[[Row], bool]]] = [
        (axes[0], cmp["ratios"], "ratios between configurations", lambda r: True),
        (axes[1], [r for rows in cmp["figures"].values() for r in rows],
         "delivered and sent packets/s", lambda r: r.what in ("delivered_pps", "sent_pps")),
    ]
    for ax, rows, title, keep in panels:
        pts = [(r.measured, r.predicted) for r in rows if keep(r) and r.measured > 0
               and r.predicted > 0]
        if pts:
            xs, ys = zip(*pts, strict=True)
            ax.scatter(xs, ys, s=14)
            lo, hi = min(xs + ys) / 1.5, max(xs + ys) * 1.5
            ax.plot([lo, hi], [lo, hi], lw=0.8, color="grey")
            ax.set(xscale="log", yscale="log", xlim=(lo, hi), ylim=(lo, hi))
            for axis in (ax.xaxis, ax.yaxis):
                axis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
                axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
                axis.set_minor_locator(NullLocator())
        ax.set(title=title, xlabel="measured (median)", ylabel="predicted (napikit)")
    fig.tight_layout()
    try:
        fig.savefig(path, dpi=110)
    except OSError as e:
        raise NapikitError(f"cannot write {path}: {e.strerror}") from None
    finally:
        plt.close(fig)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``napikit validate``."""
    parser.add_argument("--costs", required=True, metavar="FILE",
                        help="cost-model file (napikit calibrate)")
    parser.add_argument("--real", required=True, metavar="FILE",
                        help="kernel-bench results (napikit kernel-bench)")
    parser.add_argument("--json", action="store_true", help="print the comparison as JSON")
    parser.add_argument("--scheduler", choices=("eevdf", "cfs"),
                        help="the fair class to simulate (default: the host kernel's, "
                             "EEVDF since 6.6)")
    parser.add_argument("--plot", type=Path, metavar="FILE.png",
                        help="also draw measured against predicted (needs matplotlib)")


def main(args: argparse.Namespace) -> int:
    """``napikit validate``."""
    costs = load(args.costs)
    real = load_real(args.real)
    cmp = compare(real, costs, scheduler=args.scheduler)
    if args.plot:
        plot(cmp, args.plot)
    sys.stdout.write(to_json(cmp) if args.json else report(cmp, args.costs, args.real) + "\n")
    return 0
