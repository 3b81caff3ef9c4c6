"""Timelines (napikit/trace.py, core/trace.pxi): recording changes nothing in the run;
the timeline and the Perfetto file written from it agree with the result's counters,
over the whole run and over a window; the file stays within its bound."""

from __future__ import annotations

import collections
from pathlib import Path
from typing import Any

import pytest
from perfetto.protos.perfetto.trace import perfetto_trace_pb2 as pb2

import napikit
from napikit import Config, CpuHotplug, Simulation, TraceOptions, scenarios
from napikit._core import BUCKET_NAMES, Sim
from napikit.cli import main
from napikit.trace import BYTES_PER_RECORD, HEADER_BYTES_PER_TRACK

TrackEvent = pb2.TrackEvent

MS = 1_000_000
#: A sampling interval no cost is a multiple of, so that no event falls on a sample.
ODD_INTERVAL = 250_007


def _config(name: str, policy: dict[str, Any], **changes: Any) -> Config:
    return scenarios.get(name).config.evolve(**{"packets": 8_000, **policy, **changes})


def _traced(config: Config, **options: Any) -> Simulation:
    sim = Simulation(config, trace=TraceOptions(**options))
    sim.run()
    return sim


def _read(path: Path) -> Any:
    trace = pb2.Trace()
    trace.ParseFromString(path.read_bytes())
    return trace


class _File:
    """What a test reads back from a written trace: per track its closed slices
    (begin packet, start, end), its instants, the flows' ends and the counters."""

    def __init__(self, trace: Any) -> None:
        self.names: dict[int, str] = {}
        self.slices: dict[str, list[tuple[Any, int, int]]] = collections.defaultdict(list)
        self.instants: dict[str, list[Any]] = collections.defaultdict(list)
        self.counters: dict[str, list[tuple[int, float]]] = collections.defaultdict(list)
        self.flow_out: collections.Counter[int] = collections.Counter()
        self.flow_in: collections.Counter[int] = collections.Counter()
        self.misnested = 0
        self.last_ts = 0
        self.out_of_order = 0
        open_: dict[int, tuple[Any, int]] = {}
        for p in trace.packet:
            if p.HasField("track_descriptor"):
                self.names[p.track_descriptor.uuid] = p.track_descriptor.name
                continue
            e = p.track_event
            self.out_of_order += p.timestamp < self.last_ts
            self.last_ts = p.timestamp
            name = self.names[e.track_uuid]
            self.flow_out.update(e.flow_ids)
            self.flow_in.update(e.terminating_flow_ids)
            if e.type == TrackEvent.TYPE_SLICE_BEGIN:
                self.misnested += e.track_uuid in open_
                open_[e.track_uuid] = (e, p.timestamp)
            elif e.type == TrackEvent.TYPE_SLICE_END:
                begin, start = open_.pop(e.track_uuid)
                self.slices[name].append((begin, start, p.timestamp))
            elif e.type == TrackEvent.TYPE_INSTANT:
                self.instants[name].append((e, p.timestamp))
            else:
                self.counters[name].append((p.timestamp, e.counter_value))
        self.unclosed = len(open_)

    def cpu_time(self, ncpus: int) -> list[dict[str, int]]:
        """Steps by their ``cpu_ns``, out-of-line time by its length, per bucket."""
        out = [dict.fromkeys(BUCKET_NAMES, 0) for _ in range(ncpus)]
        for track, slices in self.slices.items():
            if not track.startswith("CPU "):
                continue
            cpu = int(track.split()[1])
            for begin, start, end in slices:
                args = {a.name: a for a in begin.debug_annotations}
                bucket = args["bucket"].string_value
                out[cpu][bucket] += args["cpu_ns"].int_value if "cpu_ns" in args else end - start
        return out

    def count(self, prefix: str, *, tracks: str = "CPU ") -> int:
        return sum(1 for track, items in self.instants.items() if track.startswith(tracks)
                   for e, _ in items if e.name.startswith(prefix))


def _result_cpu_time(result: napikit.Result) -> list[dict[str, int]]:
    return [{b: getattr(result.cpu_time[cpu], b) for b in BUCKET_NAMES}
            for cpu in range(len(result.cpu_time))]


def _sample_delta(samples: napikit.Samples, start: int, end: int) -> dict[str, Any]:
    """The counters between the samples taken at ``start`` and ``end``."""
    i, j = samples.time_ns.index(start), samples.time_ns.index(end)
    out: dict[str, Any] = {k: sum(getattr(samples, k)[i + 1:j + 1])
                           for k in ("ipis", "wakeup_ipis", "context_switches")}
    out["cpu_time"] = [{b: sum(c.cpu_time[b][i + 1:j + 1]) for b in BUCKET_NAMES}
                       for c in samples.cpus]
    return out


# ----------------------------------------------------------------- the run is untouched


@pytest.mark.parametrize("name", ["seed-rps", "perf-a", "seed-lo"])
def test_tracing_changes_nothing_in_the_result(name: str, policy: dict) -> None:
    config = _config(name, policy)
    plain = napikit.simulate(config)
    sim = _traced(config)
    assert sim.timeline is not None and len(sim.timeline) > 0
    assert sim.run().to_json() == plain.to_json()


def test_the_plain_core_records_no_trace() -> None:
    sim = Simulation(Config())
    with pytest.raises(RuntimeError, match="_core_traced"):
        Sim(sim.config, sim.decision).record_trace(0, MS, 100)


def test_a_simulation_without_a_trace_has_no_timeline() -> None:
    sim = Simulation(Config(packets=1_000))
    sim.run()
    assert sim.timeline is None


# ----------------------------------------------------------------- the timeline's figures


@pytest.mark.parametrize("name", ["seed-rps", "perf-a", "seed-lo"])
def test_the_whole_run_timeline_adds_up_to_the_result(name: str, policy: dict) -> None:
    sim = _traced(_config(name, policy))
    r, tl = sim.run(), sim.timeline
    assert tl is not None and not tl.truncated
    assert tl.cpu_time() == _result_cpu_time(r)
    counts = tl.counts()
    assert (counts["ipis"], counts["wakeup_ipis"], counts["context_switches"]) == (
        r.ipis, r.wakeup_ipis, r.context_switches)


def test_a_hotplug_run_timeline_adds_up_to_the_result(policy: dict) -> None:
    config = _config("seed-rps-spread", policy, ncpus=4, packets=20_000,
                     hotplug=(CpuHotplug(time_ns=2 * MS, cpu=2, online=False),
                              CpuHotplug(time_ns=5 * MS, cpu=2, online=True)))
    sim = _traced(config)
    r, tl = sim.run(), sim.timeline
    assert tl is not None and r.conserved
    assert tl.cpu_time() == _result_cpu_time(r)
    assert tl.counts()["context_switches"] == r.context_switches


@pytest.mark.parametrize("name", ["seed-rps", "perf-a"])
def test_a_window_counts_what_the_time_series_counts(name: str, policy: dict) -> None:
    start, end = 8 * ODD_INTERVAL, 20 * ODD_INTERVAL
    config = _config(name, policy, packets=20_000, sample_interval_ns=ODD_INTERVAL)
    sim = _traced(config, start_ns=start, end_ns=end)
    r, tl = sim.run(), sim.timeline
    assert r.samples is not None and tl is not None
    want = _sample_delta(r.samples, start, end)
    counts = tl.counts()
    assert counts["ipis"] + counts["wakeup_ipis"] + counts["context_switches"] > 0
    assert {k: counts[k] for k in ("ipis", "wakeup_ipis", "context_switches")} == {
        k: want[k] for k in ("ipis", "wakeup_ipis", "context_switches")}
    assert tl.cpu_time() == want["cpu_time"]


def test_a_window_holds_the_full_trace_clipped_to_it(policy: dict) -> None:
    config = _config("perf-a", policy)
    start, end = MS, 2 * MS
    full = _traced(config).timeline
    part = _traced(config, start_ns=start, end_ns=end).timeline
    assert full is not None and part is not None
    clipped = []
    for s in full.slices():
        lo, hi = max(s.start_ns, start), min(s.start_ns + s.dur_ns, end)
        if hi > lo:
            clipped.append(s._replace(start_ns=lo, dur_ns=hi - lo))
    assert list(part.slices()) == clipped and len(clipped) < len(list(full.slices()))


def test_the_buffer_is_bounded(policy: dict) -> None:
    sim = _traced(_config("perf-a", policy, packets=50_000), max_events=5_000)
    tl = sim.timeline
    assert tl is not None and tl.truncated and len(tl) == 5_000
    assert sim.run().conserved


# ----------------------------------------------------------------- the Perfetto file


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Traces of PERF-A under backlog-threads and softirq-ipi and of SEED-LO: a whole
    run each, and a window of PERF-A against its time series."""
    out: dict[str, Any] = {}
    base = tmp_path_factory.mktemp("traces")
    for label, name, pol in (("threads", "perf-a", "backlog-threads"),
                             ("ipi", "perf-a", "softirq-ipi"),
                             ("ksoftirqd", "seed-rps", "ksoftirqd"),
                             ("lo", "seed-lo", "softirq-ipi")):
        sim = _traced(_config(name, {"policy": pol}))
        path = base / f"{label}.pftrace"
        assert sim.timeline is not None
        size = sim.timeline.write_perfetto(path)
        assert size == path.stat().st_size
        out[label] = (sim.run(), _File(_read(path)), sim)
    start, end = 4 * ODD_INTERVAL, 12 * ODD_INTERVAL
    config = _config("perf-a", {"policy": "backlog-threads"}, sample_interval_ns=ODD_INTERVAL)
    sim = _traced(config, start_ns=start, end_ns=end)
    path = base / "window.pftrace"
    assert sim.timeline is not None
    sim.timeline.write_perfetto(path)
    out["window"] = (sim.run(), _File(_read(path)), (start, end))
    return out


@pytest.mark.parametrize("label", ["threads", "ipi", "ksoftirqd", "lo"])
def test_the_file_is_well_formed(written: dict, label: str) -> None:
    _, f, _ = written[label]
    assert f.misnested == 0 and f.unclosed == 0 and f.out_of_order == 0
    # every flow leaves one slice and ends at one other
    assert set(f.flow_out) == set(f.flow_in)
    assert set(f.flow_out.values()) == {1} and set(f.flow_in.values()) == {1}


@pytest.mark.parametrize("label", ["threads", "ipi", "ksoftirqd", "lo"])
def test_the_file_s_cpu_time_is_the_result_s(written: dict, label: str) -> None:
    r, f, _ = written[label]
    assert f.cpu_time(len(r.cpu_time)) == _result_cpu_time(r)


@pytest.mark.parametrize("label", ["threads", "ipi", "ksoftirqd", "lo"])
def test_the_file_s_ipis_switches_and_wake_ups_are_the_result_s(written: dict,
                                                              label: str) -> None:
    r, f, _ = written[label]
    ipis = f.count("IPI -> CPU")
    flows_from_ipis = sum(1 for t, items in f.instants.items() if t.startswith("CPU ")
                          for e, _ in items if e.name.startswith("IPI ->") and e.flow_ids)
    assert ipis == flows_from_ipis == r.ipis + r.wakeup_ipis + r.defer_ipis
    assert f.count("sched_switch") == r.context_switches
    kthread_wakes = sum(1 for t, items in f.instants.items() for e, _ in items
                        if e.name.startswith(("wake ksoftirqd/", "wake backlog_napi/")))
    # a timer's wake-up has no waker CPU; the kthreads are woken from CPUs
    assert kthread_wakes == r.ksoftirqd_wakeups + r.backlog_thread_wakeups


def test_the_file_names_tasks_as_the_kernel_does(written: dict) -> None:
    for label, comm in (("threads", "backlog_napi/1"), ("ksoftirqd", "ksoftirqd/1"),
                        ("lo", "udp-recv/0")):
        _, f, _ = written[label]
        # a track of its states, and its steps on the CPUs under its name
        assert {s[0].name for s in f.slices[comm]} >= {"Running", "Sleeping"}
        assert any(comm in begin.name for track, items in f.slices.items()
                   if track.startswith("CPU ") for begin, _, _ in items)


def test_the_file_s_backlog_counter_follows_the_queue(written: dict) -> None:
    r, f, _ = written["ipi"]
    values = [v for _, v in f.counters["CPU 1 backlog"]]
    assert values and max(values) > 0
    assert values[-1] == r.softnet[1].backlog_len


def test_a_window_file_agrees_with_the_time_series(written: dict) -> None:
    r, f, (start, end) = written["window"]
    want = _sample_delta(r.samples, start, end)
    stamps = [ts for items in f.slices.values() for _, ts, _ in items] + \
        [ts for items in f.instants.values() for _, ts in items]
    assert min(stamps) >= start and max(stamps) <= end
    assert f.count("sched_switch") == want["context_switches"]
    wake_ipis = sum(1 for t, items in f.instants.items() for e, ts in items
                    if e.name.startswith("IPI ->")
                    and any(a.string_value == "ipi_wake" for a in e.debug_annotations))
    assert wake_ipis == want["wakeup_ipis"] > 0


def test_the_file_stays_within_its_bound(tmp_path: Path) -> None:
    config = _config("perf-a", {"policy": "ksoftirqd"}, packets=200_000)
    sim = _traced(config, max_events=20_000)
    assert sim.timeline is not None and sim.timeline.truncated
    size = sim.timeline.write_perfetto(tmp_path / "long.pftrace")
    tracks = 3 * config.ncpus + len(sim.timeline.tasks)
    assert size <= 20_000 * BYTES_PER_RECORD + tracks * HEADER_BYTES_PER_TRACK


def test_the_same_run_writes_the_same_bytes(tmp_path: Path) -> None:
    config = _config("seed-rps", {"policy": "backlog-threads"})
    for name in ("a", "b"):
        tl = _traced(config, start_ns=MS // 2).timeline
        assert tl is not None
        tl.write_perfetto(tmp_path / name)
    assert (tmp_path / "a").read_bytes() == (tmp_path / "b").read_bytes()


# ----------------------------------------------------------------- options and the CLI


@pytest.mark.parametrize("options, field", [
    ({"start_ns": -1}, "trace.start_ns"), ({"max_events": 0}, "trace.max_events"),
    ({"start_ns": 5, "end_ns": 4}, "trace window"), ({"end_ns": 1.5}, "trace.end_ns"),
])
def test_bad_options_are_one_line_errors(options: dict, field: str) -> None:
    with pytest.raises(napikit.ConfigError, match=f"^{field}: must be"):
        TraceOptions(**options)


def test_run_trace_writes_a_window(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "run.pftrace"
    assert main(["run", "--scenario", "perf-a", "--packets", "5k", "--trace", str(path),
                 "--trace-window", "1ms:2ms"]) == 0
    f = _File(_read(path))
    stamps = [ts for items in f.slices.values() for _, ts, _ in items]
    assert stamps and min(stamps) >= MS and max(stamps) <= 2 * MS
    assert f"bytes in {path}" in capsys.readouterr().err


@pytest.mark.parametrize("window", ["3ms:1ms", "3ms", "x:1ms"])
def test_run_rejects_a_bad_window(window: str, capsys: pytest.CaptureFixture) -> None:
    assert main(["run", "--trace", "t.pftrace", "--trace-window", window]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--trace-window" in err


def test_run_without_perfetto_fails_before_running(monkeypatch: pytest.MonkeyPatch,
                                                   tmp_path: Path,
                                                   capsys: pytest.CaptureFixture) -> None:
    import builtins

    real = builtins.__import__

    def no_perfetto(name: str, *args: Any, **kwargs: Any) -> Any:
        if name.startswith("perfetto"):
            raise ImportError(name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_perfetto)
    assert main(["run", "--trace", str(tmp_path / "t.pftrace")]) == 2
    err = capsys.readouterr()
    assert "napikit[trace]" in err.err and err.err.count("\n") == 1 and not err.out


def test_run_window_without_trace_is_an_error(capsys: pytest.CaptureFixture) -> None:
    assert main(["run", "--trace-window", "1ms:2ms"]) == 2
    assert capsys.readouterr().err == ("napikit: error: --trace-window and --trace-limit "
                                       "need --trace FILE.pftrace\n")


def test_a_truncated_timeline_ends_at_its_last_record(policy: dict) -> None:
    sim = _traced(_config("perf-a", policy, packets=50_000), max_events=2_000)
    tl = sim.timeline
    assert tl is not None and tl.truncated
    last = max(r.at for r in tl.records())
    assert tl.end_ns == last < sim.run().sim_time_ns
