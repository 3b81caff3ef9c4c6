"""``napikit study``: the grid it runs, its CSV, its plots and its command line.

A quick study (2 CPUs, 2 loads, a few thousand packets per pair) stands in for the
full one; whichever policies are installed, the study runs them all.
"""

from __future__ import annotations

import csv
import io
import sys
from pathlib import Path

import attrs
import pytest

import napikit
from napikit import cli, scenarios, study
from napikit.errors import ConfigError, NapikitError
from napikit.plugins import registry

PACKETS_PER_PAIR = 3_000
LOADS = (0.75, 1.5)
QUICK = study.Study(ncpus=(2,), loads=LOADS, packets_per_pair=PACKETS_PER_PAIR)


@pytest.fixture(scope="module")
def quick(tmp_path_factory) -> Path:
    """The directory a quick study wrote its CSV and plots to."""
    out = tmp_path_factory.mktemp("study")
    study.run(QUICK, out, jobs=1)
    return out


@pytest.fixture(scope="module")
def rows(quick) -> list[dict[str, str]]:
    with (quick / "study.csv").open(newline="") as f:
        return list(csv.DictReader(f))


def test_every_installed_policy_and_the_rfc_variant_run():
    variants = study.installed_variants()
    assert {v.policy for v in variants} == set(registry().names())
    assert variants[0] == study.Variant(cli.BASELINE)
    rfc = study.Variant(*cli.RFC_VARIANT)
    assert (rfc in variants) == (cli.RFC_VARIANT[0] in registry().names())
    assert rfc.label == "backlog-threads fast_path=False"


def test_one_row_per_scenario_policy_and_load(quick, rows):
    header = (quick / "study.csv").read_text().splitlines()[0]
    assert tuple(header.split(",")) == study.COLUMNS
    keys = [(r["scenario"], r["policy"], float(r["load"])) for r in rows]
    expected = {
        (s, v.label, load)
        for s in scenarios.SCALABLE for v in QUICK.variants for load in LOADS
    }
    assert len(keys) == len(expected) == QUICK.runs() - len(scenarios.SCALABLE)
    assert set(keys) == expected
    assert {r["ncpus"] for r in rows} == {"2"}


def test_same_options_same_bytes_whatever_the_jobs(quick, tmp_path):
    study.run(QUICK, tmp_path / "again", jobs=1, plots=False)
    study.run(QUICK, tmp_path / "parallel", jobs=2, plots=False)
    first = (quick / "study.csv").read_bytes()
    assert (tmp_path / "again" / "study.csv").read_bytes() == first
    assert (tmp_path / "parallel" / "study.csv").read_bytes() == first


def _config(
    r: dict[str, str], rate_pps: float | None, policy: str, options: dict
) -> napikit.Config:
    """The run a row describes, built here from the scenario, not by the study."""
    base = scenarios.at_ncpus(r["scenario"], int(r["ncpus"]))
    pairs = tuple(attrs.evolve(w, rate_pps=rate_pps) for w in base.workloads)
    return base.evolve(
        workloads=(*pairs, napikit.Cyclictest(cpu=1, period_ns=100_000)),
        packets=PACKETS_PER_PAIR * len(pairs),
        policy=policy,
        policy_options=options,
    )


@pytest.mark.parametrize("scenario", scenarios.SCALABLE)
def test_a_row_is_the_direct_simulation_of_its_run(rows, run, scenario):
    # The last variant: the RFC one when backlog-threads is installed.
    variant = QUICK.variants[-1]
    r = next(r for r in rows if r["scenario"] == scenario and r["policy"] == variant.label
             and float(r["load"]) == LOADS[-1])
    closed = run(_config(r, None, cli.BASELINE, {}))
    assert float(r["capacity_pps"]) == closed.delivered_pps
    offered = LOADS[-1] * closed.delivered_pps
    assert float(r["offered_pps"]) == pytest.approx(offered)
    result = run(_config(r, offered / int(r["pairs"]), variant.policy, dict(variant.options)))
    (cyclictest,) = result.cyclictest_latency
    assert {k: r[k] for k in (
        "delivered_pps", "arrived", "delivered", "drops", "latency_p99_ns", "ipis",
        "context_switches", "ksoftirqd_wakeups", "backlog_thread_wakeups",
        "cyclictest_p99_ns", "punished_softirq_cpu1_ns", "punished_softirq_ns",
        "cpu_softirq_ns",
    )} == {k: str(v) for k, v in {
        "delivered_pps": result.delivered_pps, "arrived": result.arrived,
        "delivered": result.delivered, "drops": result.drops.total,
        "latency_p99_ns": result.latency_send_recv.p99_ns, "ipis": result.ipis,
        "context_switches": result.context_switches,
        "ksoftirqd_wakeups": result.ksoftirqd_wakeups,
        "backlog_thread_wakeups": result.backlog_thread_wakeups,
        "cyclictest_p99_ns": cyclictest.p99_ns,
        "punished_softirq_cpu1_ns": result.punished_softirq_ns(1),
        "punished_softirq_ns": result.punished_softirq_ns(),
        "cpu_softirq_ns": sum(t.softirq for t in result.cpu_time),
    }.items()}


def test_rows_are_consistent(rows):
    for r in rows:
        n = {k: float(v) for k, v in r.items() if k not in ("scenario", "policy")}
        assert n["delivered"] <= n["arrived"]
        assert n["delivered"] + n["drops"] == n["arrived"]  # quiescent: nothing queued
        assert n["drops_backlog"] + n["drops_socket"] <= n["drops"]
        assert n["offered_pps"] == pytest.approx(n["load"] * n["capacity_pps"])
        latency = [n[f"latency_{p}_ns"] for p in ("p50", "p90", "p99", "p999", "max")]
        assert latency == sorted(latency) and latency[0] > 0
        cyclictest = [n[f"cyclictest_{p}_ns"] for p in ("p50", "p99", "max")]
        assert cyclictest == sorted(cyclictest) and cyclictest[0] > 0
        assert 0 <= n["punished_softirq_cpu1_ns"] <= n["punished_softirq_ns"]
        cpu = sum(n[f"cpu_{c}_ns"] for c in study.CONTEXTS)
        assert cpu == n["ncpus"] * n["sim_time_ns"]
        assert n["ipis_per_delivered"] == pytest.approx(n["ipis"] / n["delivered"], abs=1e-6)


def test_plots_are_png_files(quick):
    for name in study.PLOTS:
        assert (quick / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name


def test_missing_matplotlib_is_one_line_before_any_run(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib fails
    with pytest.raises(NapikitError, match=r"pip install 'napikit\[study\]'"):
        study.require_matplotlib()
    assert cli.main(["study", "--quick", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err == f"napikit: error: {study.MATPLOTLIB_MISSING}\n"
    assert not (tmp_path / "out").exists()


def test_cli_quick_study_writes_the_csv_and_reports_progress(tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["study", "--quick", "--no-plots", "--jobs", "1", "--packets-per-pair", "1000",
            "--out", str(out)]
    assert cli.main(argv) == 0
    captured = capsys.readouterr()
    assert captured.out == f"{out / 'study.csv'}\n"
    total = study.Study.quick().runs()
    progress = [line for line in captured.err.splitlines() if line.startswith("[")]
    assert len(progress) == total
    assert progress[0].startswith(f"[ 1/{total}] ")
    assert progress[-1].startswith(f"[{total}/{total}] ")
    rows = list(csv.DictReader(io.StringIO((out / "study.csv").read_text())))
    assert {float(r["load"]) for r in rows} == set(study.QUICK[1])
    assert {r["arrived"] for r in rows} == {"1000"}


@pytest.mark.parametrize("option, value", [
    ("--ncpus", "3"), ("--ncpus", "2,x"), ("--ncpus", "0"), ("--loads", "0"),
    ("--loads", "0.5,-1"), ("--loads", "inf"), ("--loads", "fast"), ("--jobs", "0"),
    ("--packets-per-pair", "many"),
])
def test_cli_rejects_a_bad_option_in_one_line(option, value, tmp_path, capsys):
    out = tmp_path / "out"
    assert cli.main(["study", "--no-plots", "--out", str(out), option, value]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith(f"napikit: error: argument {option}: must be ")
    assert repr(value) in err
    assert not out.exists()


@pytest.mark.parametrize("changes", [
    {"ncpus": (3,)}, {"ncpus": ()}, {"loads": (0.0,)}, {"packets_per_pair": 0},
])
def test_study_rejects_a_bad_grid(changes):
    with pytest.raises(ConfigError, match=next(iter(changes))):
        study.Study(**changes)
