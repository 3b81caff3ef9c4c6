"""napikit sweep: the file format, cells, rows, resuming and the engines."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import napikit
from napikit.cli import main
from napikit.errors import ConfigError
from napikit.sweep import build_cells, load_sweep, loads_sweep, pool_size, run_cells

SWEEP = """
format = "napikit-sweep/1"
scenario = "seed-rps"
seeds = 2
packets = 2000

[grid]
policy = ["softirq-ipi", "backlog-threads"]
kernel.hz = [250]
"costs.ipi_send_ns" = [100]
"""


def test_import_napikit_imports_no_pandas_pyarrow_or_dask(tmp_path: Path) -> None:
    code = ("import sys, napikit; assert callable(napikit.sweep); "
            "print([m for m in ('pandas', 'pyarrow', 'dask') if m in sys.modules])")
    # run elsewhere: from the repository root "-c" would import its uncompiled source tree
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=tmp_path).stdout
    assert out.strip() == "[]"


def test_file_grid_and_seeds() -> None:
    sweep = loads_sweep(SWEEP)
    assert sweep.grid == (("policy", ("softirq-ipi", "backlog-threads")),
                          ("kernel.hz", (250,)), ("costs.ipi_send_ns", (100,)))
    assert sweep.seeds == (1, 2)
    cells = sweep.cells()
    assert len(cells) == 4
    assert [(c.config.policy, c.seed) for c in cells] == [
        ("softirq-ipi", 1), ("softirq-ipi", 2), ("backlog-threads", 1), ("backlog-threads", 2)]
    assert all(c.config.kernel.hz == 250 and c.config.costs.ipi_send_ns == 100
               and c.config.packets == 2000 for c in cells)
    assert len({c.fingerprint for c in cells}) == 4
    assert cells[0].fingerprint == napikit.config_fingerprint(cells[0].config)


def test_policy_options_workload_and_ncpus() -> None:
    base = napikit.scenarios.get("seed-lo").config.evolve(packets=2000)
    cells = build_cells(base, {"policy": ["backlog-threads"],
                               "policy_options.fast_path": [True, False],
                               "workload.rate_pps": [1e5]}, seeds=[7])
    assert [c.config.options["fast_path"] for c in cells] == [True, False]
    assert all(w.rate_pps == 1e5 for c in cells for w in c.config.workloads)
    assert {c.seed for c in cells} == {7}


def test_inline_base_and_config_file(tmp_path: Path) -> None:
    (tmp_path / "b.toml").write_text(napikit.dump_scenario(napikit.Config(packets=3000)))
    text = 'format = "napikit-sweep/1"\nconfig = "b.toml"\n[grid]\nncpus = [2, 4]\n'
    (tmp_path / "s.toml").write_text(text)
    from napikit.sweep import load_sweep_file

    sweep = load_sweep_file(tmp_path / "s.toml")
    assert sweep.base.packets == 3000 and len(sweep.cells()) == 2
    inline = loads_sweep('format = "napikit-sweep/1"\n[base]\npackets = 4000\n[grid]\n'
                         'ncpus = [2]\n')
    assert inline.base.packets == 4000


@pytest.mark.parametrize(("text", "message"), [
    ('format = "napikit-sweep/1"\nscenario = "seed-lo"\nbogus = 1\n', "bogus"),
    ('format = "x"\nscenario = "seed-lo"\n', "format"),
    ('format = "napikit-sweep/1"\nscenario = "seed-lo"\n[grid]\n"kernel.hz" = [0]\n',
     "grid cell kernel.hz='0'"),
    ('format = "napikit-sweep/1"\nscenario = "seed-lo"\n[grid]\nnope = [1]\n',
     "grid cell nope='1'"),
    ('format = "napikit-sweep/1"\nscenario = "seed-lo"\n[grid]\nncpus = 2\n', "grid.ncpus"),
    ('format = "napikit-sweep/1"\nscenario = "seed-lo"\nseeds = 0\n', "seeds"),
])
def test_bad_files_are_one_line_errors(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as e:
        loads_sweep(text).cells()
    assert message in str(e.value) and "\n" not in str(e.value)


def test_pool_size_rule() -> None:
    assert pool_size(1, 100, 10.0) == 1
    assert pool_size(8, 1, 10.0) == 1
    assert pool_size(8, 5, 0.1) == 1  # 0.5 s of work: not worth a pool
    assert pool_size(8, 5, 1.0) == 5
    assert pool_size(4, 50, 1.0) == 4


def _base() -> napikit.Config:
    return napikit.scenarios.get("seed-rps").config.evolve(packets=2000)


GRID = {"policy": ["softirq-ipi", "backlog-threads"], "kernel.hz": [250, 1000]}


def test_rows_columns_and_flattening() -> None:
    df = napikit.sweep(_base(), {"policy": ["softirq-ipi"]}, seeds=[1, 2])
    assert list(df["cell"]) == [0, 1] and list(df["seed"]) == [1, 2]
    assert list(df.columns[:4]) == ["cell", "grid.policy", "seed", "fingerprint"]
    for col in ("delivered_pps", "drops.backlog", "latency_send_recv.p99_ns",
                "cpu_time.1.softirq", "softnet.0.processed"):
        assert col in df.columns
    assert not any(c.startswith(("config", "tasks", "samples", "histograms"))
                   for c in df.columns)
    r = napikit.simulate(_base().evolve(seed=2))
    assert df["delivered_pps"].iloc[1] == r.delivered_pps
    assert df["fingerprint"].iloc[1] == r.fingerprint


def test_resume_runs_only_missing_cells(tmp_path: Path) -> None:
    cells = build_cells(_base(), GRID, seeds=[1])
    assert len(run_cells(cells, tmp_path)) == 4
    first = load_sweep(tmp_path)
    assert len(list(tmp_path.glob("*.parquet"))) == 4
    assert not list(tmp_path.glob("*.tmp"))
    (tmp_path / f"{cells[2].fingerprint}.parquet").unlink()
    seen: list[tuple[int, int]] = []
    rerun = run_cells(cells, tmp_path, progress=lambda d, t, w: seen.append((d, t)))
    assert [r["cell"] for r in rerun] == [2]
    assert seen == [(3, 4), (4, 4)]
    pd.testing.assert_frame_equal(load_sweep(tmp_path), first)
    assert run_cells(cells, tmp_path) == []


def test_same_frame_serial_pool_and_dask(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                         ) -> None:
    from distributed import Client, LocalCluster

    import napikit.sweep as _  # noqa: F401

    module = sys.modules["napikit.sweep"]
    serial = napikit.sweep(_base(), GRID, seeds=[1])
    monkeypatch.setattr(module, "POOL_STARTUP_S", 0.0)  # force the pool on a tiny grid
    pooled = napikit.sweep(_base(), GRID, seeds=[1], jobs=2, out=tmp_path)
    pd.testing.assert_frame_equal(serial, pooled)
    with LocalCluster(n_workers=2, processes=False, threads_per_worker=1,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        on_dask = napikit.sweep(_base(), GRID, seeds=[1], client=client)
    pd.testing.assert_frame_equal(serial, on_dask)
    assert list(serial["grid.policy"]) == ["softirq-ipi"] * 2 + ["backlog-threads"] * 2


def test_cli_sweep_and_resume(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "s.toml"
    path.write_text(SWEEP)
    out = tmp_path / "out"
    assert main(["sweep", str(path), "--out", str(out), "--jobs", "1", "--quiet"]) == 0
    assert "4 cells, 4 run" in capsys.readouterr().err
    df = load_sweep(out)
    assert len(df) == 4 and list(df["cell"]) == [0, 1, 2, 3]
    assert main(["sweep", str(path), "--out", str(out), "--quiet"]) == 0
    assert "0 run, 4 already" in capsys.readouterr().err
    pd.testing.assert_frame_equal(load_sweep(out), df)


def test_cli_bad_cell_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "s.toml"
    path.write_text(SWEEP.replace("[250]", "[250, 0]"))
    assert main(["sweep", str(path), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "kernel.hz='0'" in err
    assert not (tmp_path / "o").exists()


def test_interrupt_keeps_finished_cells(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                        ) -> None:
    module = sys.modules["napikit.sweep"]
    monkeypatch.setattr(module, "POOL_STARTUP_S", 0.0)
    cells = build_cells(_base(), GRID, seeds=[1])

    def stop(done: int, total: int, what: str) -> None:
        if done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_cells(cells, tmp_path, jobs=2, progress=stop)
    assert len(list(tmp_path.glob("*.parquet"))) == 2
    assert len(run_cells(cells, tmp_path, jobs=2)) == 2
    assert len(load_sweep(tmp_path)) == 4


def test_cli_interrupt_exits_130(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    module = sys.modules["napikit.sweep"]

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(module, "run_cells", interrupted)
    path = tmp_path / "s.toml"
    path.write_text(SWEEP)
    assert main(["sweep", str(path), "--out", str(tmp_path / "o"), "--quiet"]) == 130
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "same command continues" in err


def test_the_docs_sweep_example_loads() -> None:
    """docs/research-workflow.md's sweep file is a valid sweep: 2*2*2*2*2 cells, 3 seeds."""
    doc = (Path(__file__).resolve().parent.parent / "docs" / "research-workflow.md").read_text()
    text = doc.split("## Sweeps", 1)[1].split("```toml\n", 1)[1].split("```", 1)[0]
    cells = loads_sweep(text).cells()
    assert len(cells) == 32 * 3 and cells[0].config.packets == 50000


def test_same_sweep_same_parquet_bytes(tmp_path: Path) -> None:
    cells = build_cells(_base(), {"policy": ["softirq-ipi", "backlog-threads"]}, seeds=[1])
    run_cells(cells, tmp_path / "a")
    run_cells(cells, tmp_path / "b")
    for c in cells:
        name = f"{c.fingerprint}.parquet"
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


# ----------------------------------------------------------------- more keys, two stages

RELATIVE = """
format = "napikit-sweep/1"
packets = 1000
scale_pairs = true
add_workloads = [{ kind = "Cyclictest", cpu = 1, period_ns = 100000 }]

[relative]
field = "workload.rate_pps"
figure = "delivered_pps"
reference = { policy = "softirq-ipi" }

[grid]
scenario = ["seed-lo", "seed-rps"]
ncpus = [4]
policy = ["ksoftirqd", { name = "backlog-threads", options = { fast_path = false } }]
load = [0.5, 2]
"""


def test_grid_scenario_scale_pairs_and_added_workloads() -> None:
    cells = loads_sweep(RELATIVE).references()
    assert [c.config.workloads for c in cells] == [
        (*napikit.scenarios.at_ncpus(s, 4).workloads, napikit.Cyclictest(1, 100_000))
        for s in ("seed-lo", "seed-rps")]
    assert {c.config.packets for c in cells} == {2000}  # 1000 per pair


def test_a_policy_table_sets_the_policy_and_its_options() -> None:
    cell = loads_sweep(RELATIVE).cells()[-1]
    assert (cell.config.policy, cell.config.options) == ("backlog-threads",
                                                         {"fast_path": False})
    assert cell.label().startswith("scenario=seed-rps ncpus=4 policy=backlog-threads "
                                   "fast_path=false load=2.0")


def test_references_are_the_cells_without_load_under_the_reference_values() -> None:
    spec = loads_sweep(RELATIVE)
    refs = spec.references()
    assert [(c.index, c.values) for c in refs] == [
        (0, (("scenario", "seed-lo"), ("ncpus", 4), ("policy", "softirq-ipi"))),
        (1, (("scenario", "seed-rps"), ("ncpus", 4), ("policy", "softirq-ipi")))]
    assert [c.index for c in spec.cells()] == list(range(2, 10))
    assert all(w.rate_pps is None for c in refs for w in c.config.workloads[:2])


def test_a_relative_cell_offers_load_times_its_references_figure() -> None:
    spec = loads_sweep(RELATIVE)
    refs = spec.references()
    figures = {refs[0].fingerprint: 1000.0, refs[1].fingerprint: 3000.0}
    cells = spec.cells(figures)
    last = cells[-1]  # seed-rps, load 2, over its 2 pairs
    assert [w.rate_pps for w in last.config.workloads[:2]] == [3000.0, 3000.0]
    assert last.reference == (("reference.fingerprint", refs[1].fingerprint),
                              ("reference.delivered_pps", 3000.0))
    assert last.fingerprint == napikit.config_fingerprint(last.config)


def test_relative_sweep_runs_references_first_then_resumes(tmp_path: Path) -> None:
    from napikit.sweep import run_sweep

    spec = loads_sweep(RELATIVE)
    rows = run_sweep(spec, tmp_path)
    assert [r["cell"] for r in rows] == list(range(10))
    ref = {r["fingerprint"]: r["delivered_pps"] for r in rows[:2]}
    assert all(r["reference.delivered_pps"] == ref[r["reference.fingerprint"]]
               for r in rows[2:])
    assert len(list(tmp_path.glob("*.parquet"))) == 10
    again: list[tuple[int, int]] = []
    assert run_sweep(spec, tmp_path, progress=lambda d, t, w: again.append((d, t))) == rows
    assert again == [(2, 10), (10, 10)]  # each stage read back whole


def test_relative_rows_are_those_of_the_direct_simulations(tmp_path: Path) -> None:
    from napikit.sweep import run_sweep

    spec = loads_sweep(RELATIVE)
    rows = run_sweep(spec)
    ref = napikit.simulate(spec.references()[1].config)
    assert rows[1]["delivered_pps"] == ref.delivered_pps
    last = spec.cells({c.fingerprint: r["delivered_pps"]
                       for c, r in zip(spec.references(), rows, strict=False)})[-1]
    direct = napikit.simulate(last.config)
    assert [w.rate_pps for w in last.config.workloads[:2]] == [2 * ref.delivered_pps / 2] * 2
    assert rows[-1]["delivered_pps"] == direct.delivered_pps
    assert rows[-1]["fingerprint"] == direct.fingerprint


def test_derived_figures() -> None:
    from napikit.sweep import figures

    r = napikit.simulate(loads_sweep(RELATIVE).references()[1].config)
    f = figures(r)
    assert f["drops.total"] == r.drops.total
    assert f["punished_softirq_ns"] == r.punished_softirq_ns()
    assert [f[f"punished_softirq_ns.{cpu}"] for cpu in range(4)] == [
        r.punished_softirq_ns(cpu) for cpu in range(4)]


@pytest.mark.parametrize(("change", "message"), [
    (("[relative]\n", "[relative]\nbogus = 1\n"), "relative.bogus"),
    (('field = "workload.rate_pps"', 'field = "kernel.hz"'), "relative.field"),
    (('field = "workload.rate_pps"', 'field = "workload.nope"'), "relative.field"),
    (("load = [0.5, 2]", "load = [0, 2]"), "grid.load"),
    (("load = [0.5, 2]", ""), "grid.load"),
    (("scale_pairs = true", "scale_pairs = 1"), "scale_pairs"),
    (("cpu = 1,", "cpu = -1,"), "add_workloads[0].cpu"),
    (("ncpus = [4]", "ncpus = [3]"), "ncpus"),
    (('"ksoftirqd"', '{ name = "ksoftirqd", colour = 1 }'), "policy"),
    (("[grid]\n", 'scenario = "seed-lo"\n[grid]\n'), "scenario"),
])
def test_bad_relative_files_are_one_line_errors(change: tuple[str, str], message: str
                                                ) -> None:
    old, new = change
    assert old in RELATIVE
    with pytest.raises(ConfigError) as e:
        spec = loads_sweep(RELATIVE.replace(old, new))
        spec.references()
        spec.cells()
    assert message in str(e.value) and "\n" not in str(e.value)


def test_load_without_relative_is_refused() -> None:
    with pytest.raises(ConfigError, match="grid.load"):
        build_cells(_base(), {"load": [0.5]})


# ----------------------------------------------------------------- seeds: mean and CI


@pytest.fixture(scope="module")
def three_seeds() -> pd.DataFrame:
    # A drawn receive cost: the seeds then give different figures.
    base = _base().evolve(cost_distributions={
        "protocol_rx_ns": napikit.CostDistribution(kind="exponential")})
    return napikit.sweep(base, {"policy": ["softirq-ipi", "backlog-threads"]}, seeds=3)


def test_summary_is_the_estimate_over_each_cells_seeds(three_seeds: pd.DataFrame) -> None:
    from napikit.confidence import Estimate

    summary = napikit.sweep_summary(three_seeds).set_index(["grid.policy", "figure"])
    for policy in ("softirq-ipi", "backlog-threads"):
        runs = three_seeds[three_seeds["grid.policy"] == policy]
        for figure in ("delivered_pps", "latency_send_recv.p99_ns"):
            e = Estimate.of([float(v) for v in runs[figure]])
            assert e.ci95 > 0
            got = summary.loc[(policy, figure)]
            assert (got["mean"], got["ci95"], got["n"]) == (e.mean, e.ci95, 3)


def test_summary_has_a_row_per_cell_and_figure_in_grid_order(three_seeds: pd.DataFrame
                                                             ) -> None:
    summary = napikit.sweep_summary(three_seeds)
    assert list(summary.columns) == ["grid.policy", "figure", "mean", "ci95", "n"]
    figures = list(summary["figure"].iloc[: len(summary) // 2])
    assert list(summary["grid.policy"]) == (["softirq-ipi"] * len(figures)
                                            + ["backlog-threads"] * len(figures))
    assert "delivered_pps" in figures
    assert not {"cell", "seed", "fingerprint", "policy"} & set(figures)  # no index, no text


def test_one_seed_gives_n_1_and_no_interval() -> None:
    df = napikit.sweep(_base(), {"policy": ["softirq-ipi"]}, seeds=[4])
    row = napikit.sweep_summary(df).set_index("figure").loc["delivered_pps"]
    assert row["n"] == 1 and row["mean"] == df["delivered_pps"].iloc[0]
    assert pd.isna(row["ci95"])


def test_cli_writes_the_summary_with_several_seeds(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "s.toml"
    path.write_text(SWEEP)  # seeds = 2
    out = tmp_path / "out"
    assert main(["sweep", str(path), "--out", str(out), "--jobs", "1", "--quiet"]) == 0
    assert capsys.readouterr().out == f"{out}\n{out / 'summary.csv'}\n"
    written = pd.read_csv(out / "summary.csv")
    pd.testing.assert_frame_equal(written, napikit.sweep_summary(load_sweep(out)),
                                  check_dtype=False)
    assert len(load_sweep(out)) == 4  # the summary is not part of the dataset


def test_cli_writes_no_summary_for_one_seed(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "s.toml"
    path.write_text(SWEEP.replace("seeds = 2", "seeds = [1]"))
    out = tmp_path / "out"
    assert main(["sweep", str(path), "--out", str(out), "--jobs", "1", "--quiet"]) == 0
    assert capsys.readouterr().out == f"{out}\n"
    assert not (out / "summary.csv").exists()


def _doc_block(section: str, lang: str) -> str:
    doc = (Path(__file__).resolve().parent.parent / "docs" / "research-workflow.md").read_text()
    return doc.split(section + "\n", 1)[1].split(f"```{lang}\n", 1)[1].split("```", 1)[0]


def test_the_docs_relative_example_is_4_references_and_24_cells() -> None:
    spec = loads_sweep(_doc_block("### Loads relative to a measured figure", "toml"))
    assert len(spec.references()) == 4 and len(spec.cells()) == 24
    assert [c.config.packets for c in spec.references()] == [20000, 40000] * 2


def test_the_docs_summary_snippet_runs() -> None:
    scope: dict[str, object] = {}
    exec(_doc_block("### Seeds: mean and confidence interval", "python"), scope)
    summary = scope["summary"]
    assert isinstance(summary, pd.DataFrame)
    rows = summary[summary["figure"] == "delivered_pps"]
    assert list(rows["n"]) == [5, 5] and (rows["ci95"] > 0).all()


@pytest.mark.parametrize("figure", ["nope", "policy"])
def test_a_relative_figure_the_references_lack_fails_before_the_grid_runs(
        figure: str, tmp_path: Path) -> None:
    from napikit.sweep import run_sweep

    spec = loads_sweep(RELATIVE.replace('figure = "delivered_pps"', f'figure = "{figure}"'))
    with pytest.raises(ConfigError, match="relative.figure"):
        run_sweep(spec, tmp_path)
    assert len(list(tmp_path.glob("*.parquet"))) == 2  # the references only


def test_a_killed_sweep_rerun_gives_the_uninterrupted_dataset(tmp_path: Path, child) -> None:
    """SIGKILL halfway (no handler runs), then the same command: the dataset is the
    one an uninterrupted sweep writes, file for file and byte for byte."""
    import os
    import signal
    import time

    sweep_file = tmp_path / "sweep.toml"
    sweep_file.write_text(SWEEP.replace("seeds = 2", "seeds = 6").replace(
        "packets = 2000", "packets = 40000"))
    killed, whole = tmp_path / "killed", tmp_path / "whole"
    command = child.napikit("sweep", str(sweep_file), "--out", str(killed), "--jobs", "1",
                            "--quiet")
    proc = subprocess.Popen(command, env=child.env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 120
    while len(list(killed.glob("*.parquet"))) < 3 and time.monotonic() < deadline \
            and proc.poll() is None:
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done = len(list(killed.glob("*.parquet")))
    assert 3 <= done < 12, "the sweep was not killed halfway"
    subprocess.run(command, env=child.env, check=True, capture_output=True)
    subprocess.run(child.napikit("sweep", str(sweep_file), "--out", str(whole), "--quiet"),
                   env=child.env, check=True, capture_output=True)
    files = sorted(p.name for p in whole.glob("*.parquet"))
    assert sorted(p.name for p in killed.glob("*.parquet")) == files and len(files) == 12
    assert not list(killed.glob("*.tmp*"))
    for name in files:
        assert (killed / name).read_bytes() == (whole / name).read_bytes()
    pd.testing.assert_frame_equal(load_sweep(killed), load_sweep(whole))



def test_the_second_stage_sizes_its_pool_from_the_first(monkeypatch: pytest.MonkeyPatch
                                                       ) -> None:
    """A [relative] sweep runs one cell alone (to time it) in its first stage only: the
    second stage's pool is sized from that time and gets every cell of its stage."""
    module = sys.modules["napikit.sweep"]
    pools: list[tuple[int, int]] = []  # (cells given to map_runs, its processes)
    real = module.map_runs

    def record(tasks, jobs):  # type: ignore[no-untyped-def]
        pools.append((len(tasks), jobs))
        return real(tasks, 1)

    monkeypatch.setattr(module, "map_runs", record)
    monkeypatch.setattr(module, "POOL_STARTUP_S", 0.0)  # any time is worth a pool
    spec = loads_sweep("""
format = "napikit-sweep/1"
scenario = "seed-rps"
packets = 2000
[relative]
field = "workload.rate_pps"
figure = "delivered_pps"
reference = { policy = "softirq-ipi" }
[grid]
policy = ["softirq-ipi", "backlog-threads"]
load = [0.5, 1.0]
""")
    rows = module.run_sweep(spec, jobs=2)
    assert len(rows) == 1 + 4
    # stage 1: its one reference cell runs alone; stage 2: all 4 cells on the pool
    assert pools == [(0, 1), (4, 2)]
