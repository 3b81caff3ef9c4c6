"""``napikit study``: the grid it runs, its CSV, its plots and its command line.

A quick study (2 CPUs, 2 loads, a few thousand packets per pair) stands in for the
full one; whichever policies are installed, the study runs them all.
"""

from __future__ import annotations

import csv
import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import attrs
import pytest

import napikit
from napikit import cli, scenarios, study
from napikit.errors import ConfigError, NapikitError
from napikit.plugins import registry
from napikit.simulation import simulate as simulate_for_real

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


def test_the_shipped_sweep_file_is_the_study_of_napikits_own_policies():
    """`napikit sweep napikit/studies/seed-story.toml` runs the study's own cells, with
    the policies napikit ships."""
    own = (study.Variant("softirq-ipi"), study.Variant("backlog-threads"),
           study.Variant(*cli.RFC_VARIANT), study.Variant("ksoftirqd"))
    assert study.Study(variants=own).sweep() == study.shipped()
    assert (study.NCPUS, study.LOADS, study.PACKETS_PER_PAIR) == (
        (2, 4, 8, 16, 64), (0.1, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0), 100_000)


def test_a_study_on_dask_writes_the_same_csv(quick, tmp_path):
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, processes=False, threads_per_worker=1,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        study.run(QUICK, tmp_path, plots=False, client=client)
    assert (tmp_path / "study.csv").read_bytes() == (quick / "study.csv").read_bytes()


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


# ----------------------------------------------------------------- long work, nothing lost


def simulations(monkeypatch, limit: int | None = None) -> list[napikit.Config]:
    """The configs the study simulates from now on, in order; with ``limit``, the run
    after the first ``limit`` gets a Ctrl-C."""
    calls: list[napikit.Config] = []

    def simulate(config):
        if len(calls) == limit:
            raise KeyboardInterrupt
        calls.append(config)
        return simulate_for_real(config)

    # The sweeps' engine runs the study; with jobs=1 every run is made in this process.
    monkeypatch.setattr(sys.modules["napikit.sweep"], "simulate", simulate)
    return calls


@pytest.mark.parametrize("out", ["/etc/passwd/x", "/etc/passwd", "/proc/napikit"])
def test_an_unwritable_out_fails_before_any_run(out, monkeypatch, capsys):
    """`--out` on a path that cannot be a writable directory is one line, exit 2."""
    calls = simulations(monkeypatch)
    assert cli.main(["study", "--quick", "--no-plots", "--jobs", "1", "--out", out]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"napikit: error: --out: must be a directory napikit can write "
                          f"to (got {out!r}: ")
    assert err.count("\n") == 1
    assert calls == []


def test_an_interrupted_study_continues_where_it_stopped(quick, tmp_path, monkeypatch):
    """Rerun after a Ctrl-C, a study runs only what was left, and writes the files of a
    study never interrupted."""
    out = tmp_path / "out"
    interrupted = simulations(monkeypatch, limit=10)  # the capacities and 7 grid runs
    with pytest.raises(KeyboardInterrupt):
        study.run(QUICK, out, jobs=1)
    assert not (out / "study.csv").exists()
    rerun = simulations(monkeypatch)
    study.run(QUICK, out, jobs=1)
    assert len(interrupted) + len(rerun) == QUICK.runs()
    assert set(rerun).isdisjoint(interrupted)
    for name in ("study.csv", *study.PLOTS):
        assert (out / name).read_bytes() == (quick / name).read_bytes(), name


def test_another_studys_rows_are_not_mixed_in(tmp_path, monkeypatch):
    """Runs of other options in the same directory stay out of the CSV; only the runs
    both studies make (the capacities) are shared."""
    out = tmp_path / "out"
    simulations(monkeypatch, limit=5)
    with pytest.raises(KeyboardInterrupt):
        study.run(QUICK, out, jobs=1, plots=False)
    other = attrs.evolve(QUICK, loads=(0.5,))
    calls = simulations(monkeypatch)
    study.run(other, out, jobs=1, plots=False)
    assert len(calls) == other.runs() - len(scenarios.SCALABLE)
    study.run(other, tmp_path / "alone", jobs=1, plots=False)
    assert (out / "study.csv").read_bytes() == (tmp_path / "alone" / "study.csv").read_bytes()


def test_a_run_cut_short_in_mid_write_is_run_again(quick, tmp_path, monkeypatch):
    """A kill while a run's file was being written leaves a temporary file, not the
    run's: that run is made again, and only that one."""
    out = tmp_path / "out"
    study.run(QUICK, out, jobs=1, plots=False)
    runs = sorted((out / "runs").glob("*.parquet"))
    torn = runs[4]
    torn.with_name(f".{torn.name}.tmp").write_bytes(torn.read_bytes()[:100])
    torn.unlink()
    calls = simulations(monkeypatch)
    study.run(QUICK, out, jobs=1, plots=False)
    assert len(calls) == 1
    assert sorted((out / "runs").iterdir()) == runs
    assert (out / "study.csv").read_bytes() == (quick / "study.csv").read_bytes()


def test_a_finished_study_keeps_its_runs_as_a_sweep_dataset(quick, rows):
    """Beside its files, the study leaves every run in ``runs/``, which load_sweep
    reads: the capacity runs, then one row per CSV row with every figure."""
    assert sorted(p.name for p in quick.iterdir()) == sorted(["runs", "study.csv",
                                                              *study.PLOTS])
    df = napikit.load_sweep(quick / "runs")
    assert len(df) == QUICK.runs()
    paced = df[df["grid.load"].notna()]
    assert sorted(paced["delivered_pps"]) == sorted(float(r["delivered_pps"]) for r in rows)


def _session(sid: int) -> list[str]:
    """The states of the live (not zombie) processes of session ``sid``."""
    states = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:  # gone meanwhile
            continue
        if int(fields[3]) == sid and fields[0] != "Z":
            states.append(fields[0])
    return states


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_ctrl_c_stops_a_parallel_study_and_its_workers(tmp_path, child):
    """Ctrl-C (SIGINT to the whole process group) ends `study --jobs 2` within 1 s, in
    one line, status 130, and no worker outlives it."""
    # Runs of seconds each: the first one, made in the parent, says the rest are worth
    # a pool (napikit.sweep.pool_size).
    command = child.napikit("study", "--no-plots", "--jobs", "2", "--ncpus", "2",
                            "--loads", "1", "--packets-per-pair", "1e7",
                            "--out", str(tmp_path / "out"))
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, env=child.env, start_new_session=True)
    # Started: the parent, the resource tracker and both workers are alive.
    while len(_session(proc.pid)) < 4 and proc.poll() is None:
        time.sleep(0.1)
    time.sleep(0.5)  # the workers import napikit and start simulating
    os.killpg(proc.pid, signal.SIGINT)
    start = time.monotonic()
    try:
        err = proc.communicate(timeout=10)[1]
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        err = proc.communicate()[1]
    took = time.monotonic() - start
    assert proc.returncode == 130
    *progress, last = err.splitlines()  # the runs finished before it, then one line
    assert last.startswith("napikit: interrupted: the finished runs are kept in ")
    assert all(line.startswith("[") for line in progress)
    assert took < 1
    deadline = time.monotonic() + 5  # the resource tracker sees its parent gone
    while _session(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _session(proc.pid) == []
