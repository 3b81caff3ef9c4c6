"""The ``adaptive`` policy: found by entry point, decides with hysteresis, and moves the
backlog the way its design predicts (inline while batches are short, to
``backlog_napi/N`` while they are long).

Every comparison runs the same configuration and seed under two policies and checks a
relation the design implies; none measures wall time.
"""

from __future__ import annotations

import json

import pytest
from napikit_adaptive import DEFAULT_HIGH, DEFAULT_LOW, AdaptiveHandoff

import napikit
import napikit.cli
import napikit.plugins
import napikit.scenarios
from napikit import Action, Config, NicIrq


def run(config: Config, policy: str, **options) -> napikit.Result:
    """``config`` run under ``policy`` with ``options``."""
    return napikit.simulate(config.evolve(policy=policy, policy_options=options))


def thread_ns(result: napikit.Result) -> int:
    """CPU time spent in ``backlog_napi/N`` threads, over all CPUs."""
    return sum(t.backlog_thread for t in result.cpu_time)


def nic_rps(rate_pps: float, packets: int = 50_000) -> Config:
    """A non-NAPI NIC interrupting CPU 0, RPS steering every packet to CPU 1."""
    return Config(
        ncpus=2,
        workloads=(NicIrq(cpu=0, rate_pps=rate_pps, arrival="poisson", rps_cpus=(1,)),),
        packets=packets,
    )


#: PERF-A's NIC at a tenth of its rate: 200 kpps spread by RPS over 4 CPUs.
LIGHT = napikit.scenarios.get("perf-a").config.evolve(
    packets=50_000,
    workloads=(NicIrq(cpu=0, rate_pps=200_000, arrival="poisson", flows=1024,
                      rps_cpus=(0, 1, 2, 3)),),
)
#: 1.8 Mpps onto CPU 1, whose protocol receive costs 0.5 us a packet: ~90 % busy.
HEAVY = nic_rps(1_800_000)


# ----------------------------------------------------------------- discovery


def test_found_through_its_entry_point():
    """The installed package provides ``adaptive`` through the napikit entry-point group."""
    spec = napikit.plugins.registry().get("adaptive")
    assert spec.package.startswith("napikit-adaptive")
    assert spec.factory is AdaptiveHandoff


def test_listed_by_napikit_policies(capsys):
    """``napikit policies`` lists adaptive with its package and both options."""
    assert napikit.cli.main(["policies"]) == 0
    out = capsys.readouterr().out
    (row,) = [line for line in out.splitlines() if line.startswith("adaptive ")]
    assert "napikit-adaptive" in row and f"high: int = {DEFAULT_HIGH}" in row
    assert f"low: int = {DEFAULT_LOW}" in out


def test_declares_high_and_low_options():
    """The options are two ints, high above low."""
    options = {o.name: o for o in napikit.plugins.registry().get("adaptive").options}
    assert {n: (o.type, o.default) for n, o in options.items()} == {
        "high": (int, DEFAULT_HIGH), "low": (int, DEFAULT_LOW),
    }
    assert DEFAULT_LOW < DEFAULT_HIGH


# ----------------------------------------------------------------- the decision


def test_switches_with_hysteresis():
    """A target goes to THREAD at ``last_batch >= high`` and back only at ``<= low``."""
    p = AdaptiveHandoff(high=10, low=3)
    decide = lambda batch: p.napikit_backlog_schedule(0, 1, 0, batch)  # noqa: E731
    assert [decide(b) for b in (0, 9, 10, 9, 4, 3, 9)] == [
        Action.IPI, Action.IPI, Action.THREAD, Action.THREAD, Action.THREAD, Action.IPI,
        Action.IPI,
    ]
    assert p.switches == 2


def test_inline_means_softirq_locally_and_ipi_remotely():
    """In INLINE mode a local target gets SOFTIRQ and a remote one IPI; THREAD is THREAD
    for both."""
    p = AdaptiveHandoff(high=10, low=3)
    assert p.napikit_backlog_schedule(2, 2, 0, 0) == Action.SOFTIRQ
    assert p.napikit_backlog_schedule(0, 2, 0, 0) == Action.IPI
    assert p.napikit_backlog_schedule(2, 2, 0, 50) == Action.THREAD
    assert p.napikit_backlog_schedule(0, 2, 0, 50) == Action.THREAD


def test_modes_are_per_target_cpu():
    """A long batch on one CPU's backlog leaves the other CPUs inline."""
    p = AdaptiveHandoff(high=10, low=3)
    p.napikit_backlog_schedule(0, 1, 0, 40)
    assert (p.mode(1), p.mode(2)) == ("thread", "inline")
    assert p.napikit_backlog_schedule(0, 2, 0, 5) == Action.IPI


def test_the_compiled_decision_is_the_hook():
    """napikit's decision object for adaptive decides as the hook does."""
    d = napikit.plugins.registry().get("adaptive").build({"high": 10, "low": 3})
    assert d.backlog_threads
    assert [d.decide_backlog_schedule(0, 1, 0, b) for b in (0, 10, 5, 3)] == [
        Action.IPI, Action.THREAD, Action.THREAD, Action.IPI,
    ]


@pytest.mark.parametrize("options, field", [
    ({"high": 8, "low": 8}, "policy_options.low"),
    ({"high": 4, "low": 9}, "policy_options.low"),
    ({"low": -1}, "policy_options.low"),
    ({"high": 0, "low": 0}, "policy_options.high"),
])
def test_bad_thresholds_are_a_clear_error(options, field):
    """Thresholds that cannot work fail before the run, naming the option."""
    with pytest.raises(napikit.NapikitError, match=field):
        napikit.Simulation(Config(policy="adaptive", policy_options=options))


def test_bad_threshold_on_the_command_line(capsys):
    """``napikit run`` reports a low at or above high as one line, exit status 2."""
    assert napikit.cli.main(["run", "--policy", "adaptive", "--option", "low=40"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "policy_options.low" in err and "40" in err


def test_each_run_starts_from_fresh_state():
    """A run's result does not depend on the runs before it (state is per run)."""
    first = run(HEAVY, "adaptive").to_json()
    run(LIGHT, "adaptive")
    assert run(HEAVY, "adaptive").to_json() == first


# ----------------------------------------------------------------- predicted direction


def test_light_load_stays_on_the_inline_path():
    """At 200 kpps batches stay short: the RPS IPIs of softirq-ipi, no thread wake-ups."""
    classic, adaptive = run(LIGHT, "softirq-ipi"), run(LIGHT, "adaptive")
    assert classic.ipis > 1_000
    assert adaptive.backlog_thread_wakeups <= classic.ipis // 100
    assert adaptive.ipis >= 0.99 * classic.ipis
    assert adaptive.delivered_pps == pytest.approx(classic.delivered_pps, rel=0.001)


def test_heavy_load_hands_off_to_the_thread():
    """At 1.8 Mpps onto one CPU batches are long: backlog_napi/1 does the work and far
    fewer IPIs are sent than by softirq-ipi, with no loss of throughput."""
    classic, adaptive = run(HEAVY, "softirq-ipi"), run(HEAVY, "adaptive")
    assert thread_ns(classic) == 0 and thread_ns(adaptive) > 0
    assert adaptive.backlog_thread_wakeups > 0
    assert adaptive.ipis < classic.ipis / 2
    assert adaptive.delivered_pps >= 0.99 * classic.delivered_pps


def test_keeps_loopback_throughput_that_the_rfc_lost():
    """On SEED-LO the backlog drains inside sendmsg (batches of 1), so adaptive keeps
    softirq-ipi's throughput where backlog-threads without the fast path loses it."""
    config = napikit.scenarios.get("seed-lo").config.evolve(packets=50_000)
    classic, adaptive = run(config, "softirq-ipi"), run(config, "adaptive")
    rfc = run(config, "backlog-threads", fast_path=False)
    assert adaptive.backlog_thread_wakeups == 0 < rfc.backlog_thread_wakeups
    assert adaptive.delivered_pps == classic.delivered_pps
    assert adaptive.delivered_pps > 1.3 * rfc.delivered_pps


def test_threaded_irqs_stop_waking_ksoftirqd():
    """On SEED-RT, IPI-kicked backlog runs are long (ksoftirqd serves them), so adaptive
    hands off after a few and wakes ksoftirqd far less than the ksoftirqd policy."""
    config = napikit.scenarios.get("seed-rt").config.evolve(packets=50_000)
    rt, adaptive = run(config, "ksoftirqd"), run(config, "adaptive")
    assert rt.ksoftirqd_wakeups > 20
    assert adaptive.ksoftirqd_wakeups * 10 < rt.ksoftirqd_wakeups
    assert thread_ns(adaptive) > 0


def test_the_threshold_decides_seed_rps():
    """SEED-RPS backlog runs are a few packets: at the default high adaptive is
    softirq-ipi; with high=2 it hands off and gains backlog-threads' throughput."""
    config = napikit.scenarios.get("seed-rps").config.evolve(packets=50_000)
    classic, threads = run(config, "softirq-ipi"), run(config, "backlog-threads")
    default, eager = run(config, "adaptive"), run(config, "adaptive", high=2, low=1)
    assert (default.ipis, default.delivered_pps) == (classic.ipis, classic.delivered_pps)
    assert eager.ipis < classic.ipis / 10 and thread_ns(eager) > 0
    assert eager.delivered_pps > classic.delivered_pps
    assert eager.delivered_pps == pytest.approx(threads.delivered_pps, rel=0.02)


# ----------------------------------------------------------------- napikit compare


def test_napikit_compare_shows_a_row_for_adaptive(capsys):
    """``napikit compare --policy softirq-ipi --policy adaptive`` prints an adaptive row."""
    argv = ["compare", "--policy", "softirq-ipi", "--policy", "adaptive",
            "--scenario", "seed-lo", "--scenario", "seed-rps", "--packets", "20000"]
    assert napikit.cli.main(argv) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()]
    adaptive = [row for row in rows if row and row[0] == "adaptive"]
    assert len(adaptive) == 2
    assert adaptive[0][2] == "1.00"  # SEED-LO: the same path as softirq-ipi


def test_napikit_compare_json_names_the_package(capsys):
    """``napikit compare --json`` records adaptive's result with its package."""
    argv = ["compare", "--policy", "softirq-ipi", "--policy", "adaptive",
            "--scenario", "seed-lo", "--packets", "5000", "--json"]
    assert napikit.cli.main(argv) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["seed-lo"]["adaptive"]["policy_package"].startswith("napikit-adaptive")
