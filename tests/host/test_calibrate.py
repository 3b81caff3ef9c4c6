"""calibrate's mapping from measurements to CostModel fields."""

from __future__ import annotations

import pytest

from napikit.config import CostModel
from napikit.host import calibrate
from napikit.host.costfile import FIELDS

#: One repetition's measurements, round numbers.
M = {
    "send_inline_remote_reader": 4000.0, "recv_remote_reader": 3000.0,
    "reader_wakeups_per_packet": 0.1, "send_inline_same_cpu_reader": 4200.0,
    "send_inline_no_reader": 3500.0, "recv_queued": 600.0, "send_rps_remote": 5000.0,
    "rps_kick_extra": 1000.0, "rps_kicks_per_packet": 0.25, "rps_cal_per_kick": 1.0,
    "protocol_rx_on_target": 1300.0,
    "futex_handoff_same_cpu": 2500.0, "futex_handoff_idle_target": 40000.0,
    "futex_handoff_busy_target": 30000.0, "futex_wake_idle_target": 7000.0,
    "futex_wake_busy_target": 5000.0, "futex_wake_no_waiter": 200.0,
    "idle_target_irqs_per_wakeup": 0.75, "kick_finds_target_polling": 0.25,
    "yield_alone": 500.0, "yield_pair": 1500.0, "cacheline_remote": 41.0,
    "cacheline_local": 1.0, "cacheline_transfer": 40.0,
    "membarrier_alone": 150.0, "membarrier_busy_target": 3700.0,
    "ipi_arrival_busy_target": 1650.0, "ipi_handler_busy_target": 2400.0,
    "ipi_matched": 0.98, "tgkill_remote_running": 2500.0, "tgkill_same_cpu": 1100.0,
    "ipi_send_sender": 1400.0, "ipi_flight": 100.0,
}


def test_every_field_has_an_entry_with_a_source() -> None:
    """Each CostModel field is measured or a named default."""
    entries = calibrate.derive([M, M], have_root=True, cross_cpu=True)
    assert list(entries) == list(FIELDS)
    for name, e in entries.items():
        assert e.source, name
        assert e.spread[0] <= e.value <= e.spread[1]
    for name in calibrate.UNMEASURABLE:
        assert entries[name].source.startswith("default:")
        assert entries[name].value == getattr(CostModel(), name)


def test_mapping_with_root() -> None:
    """The documented formulas."""
    e = calibrate.derive([M], have_root=True, cross_cpu=True)
    assert e["context_switch_ns"].value == 1000
    assert e["wakeup_ns"].value == 4800
    assert e["wakeup_latency_ns"].value == 37500
    assert e["ipi_latency_ns"].value == 100
    assert e["udp_recvmsg_ns"].value == 600
    remote_skb = 40 * calibrate.SKB_RX_LINES
    assert e["remote_skb_ns"].value == remote_skb
    assert e["remote_sock_ns"].value == 40 * calibrate.SOCK_RX_LINES
    assert e["protocol_rx_ns"].value == 1300 - remote_skb
    sendmsg = 3500 - (1300 - remote_skb) - CostModel().netif_rx_ns - CostModel().softirq_entry_ns
    assert e["udp_sendmsg_ns"].value == sendmsg
    assert e["ipi_send_ns"].value == 1400
    assert e["ipi_handler_ns"].value == 2400


def test_ipi_costs_come_from_the_ipi_probes() -> None:
    """ipi_send_ns is the tgkill difference, ipi_handler_ns the target's lost time, and
    ipi_latency_ns what is left of the arrival; a negative remainder (the interrupt lands
    before the sender's cost is paid) is 0, not a negative cost."""
    e = calibrate.derive([dict(M, tgkill_remote_running=3100.0)], have_root=True,
                         cross_cpu=True)
    assert e["ipi_send_ns"].value == 2000
    e = calibrate.derive([dict(M, ipi_flight=-400.0)], have_root=True, cross_cpu=True)
    assert e["ipi_latency_ns"].value == 0
    assert e["ipi_handler_ns"].source.startswith("ipi_handler_busy_target")


def test_without_the_ipi_probes_the_futex_proxies_stand_in() -> None:
    """A kernel without membarrier: ipi_send/latency from futexes, the handler a default."""
    probes = ("membarrier", "ipi_", "tgkill")
    m = {k: v for k, v in M.items() if not k.startswith(probes)}
    e = calibrate.derive([m], have_root=True, cross_cpu=True)
    assert e["ipi_send_ns"].value == 2000 and "IPI probes gave no value" in \
        e["ipi_send_ns"].source
    assert e["ipi_latency_ns"].value == 27500
    assert e["ipi_handler_ns"].value == CostModel().ipi_handler_ns
    assert e["ipi_handler_ns"].source.startswith("default:")


def test_location_costs_come_from_the_cache_line_transfer() -> None:
    """remote_skb_ns and remote_sock_ns are cacheline_transfer times the documented line
    counts (7 and 3), not fitted; the inline protocol_rx_ns is the RPS target's less the
    skb's remote lines, so udp_sendmsg_ns (inline send minus it) grows by as much."""
    assert (calibrate.SKB_RX_LINES, calibrate.SOCK_RX_LINES) == (7, 3)
    base = calibrate.derive([dict(M, cacheline_transfer=0.0)], have_root=True, cross_cpu=True)
    e = calibrate.derive([dict(M, cacheline_transfer=40.0)], have_root=True, cross_cpu=True)
    assert (base["remote_skb_ns"].value, base["remote_sock_ns"].value) == (0, 0)
    assert (e["remote_skb_ns"].value, e["remote_sock_ns"].value) == (280, 120)
    assert base["protocol_rx_ns"].value - e["protocol_rx_ns"].value == 280
    assert e["udp_sendmsg_ns"].value - base["udp_sendmsg_ns"].value == 280
    assert e["remote_skb_ns"].source.startswith("cacheline_transfer x 7")
    assert "remote_skb_ns" in e["protocol_rx_ns"].source
    # no second CPU, no transfer measured: the defaults, saying why
    one = {k: v for k, v in M.items() if not k.startswith("cacheline")}
    e = calibrate.derive([one], have_root=False, cross_cpu=False)
    assert e["remote_skb_ns"].source == "default: needs 2 CPUs"
    assert e["remote_skb_ns"].value == CostModel().remote_skb_ns


def test_without_root_protocol_rx_is_a_default() -> None:
    """No RPS run: protocol_rx_ns is the default and says why; the IPI probes need none."""
    m = {k: v for k, v in M.items() if "rps" not in k}
    e = calibrate.derive([m], have_root=False, cross_cpu=True)
    assert e["protocol_rx_ns"].source.startswith("default: needs root")
    assert e["ipi_send_ns"].value == 1400
    assert "no root" in e["udp_sendmsg_ns"].source


def test_one_cpu_host_defaults_cross_cpu_fields() -> None:
    """Without a second CPU the cross-CPU fields are defaults naming why."""
    m = {k: M[k] for k in ("send_inline_no_reader", "recv_queued", "yield_alone",
                           "yield_pair", "futex_wake_no_waiter", "futex_handoff_same_cpu")}
    e = calibrate.derive([m], have_root=False, cross_cpu=False)
    assert e["wakeup_latency_ns"].source == "default: needs 2 CPUs"
    assert e["context_switch_ns"].value == 1000


def test_spread_is_the_range_over_repetitions() -> None:
    """Median value, min-max spread."""
    reps = [dict(M, yield_pair=p) for p in (1400.0, 1500.0, 1900.0)]
    e = calibrate.derive(reps, have_root=True, cross_cpu=True)["context_switch_ns"]
    assert (e.value, e.spread) == (1000, (900, 1400))


def test_summarize_names_what_is_measured() -> None:
    """Each measurement keeps its unit and description."""
    s = calibrate.summarize([M, M])
    assert s["kick_finds_target_polling"]["unit"] == "count"
    assert s["yield_pair"]["median"] == pytest.approx(1500.0)
    assert set(s) <= set(calibrate.MEASUREMENTS)


@pytest.fixture
def fake_bench(monkeypatch: pytest.MonkeyPatch) -> None:
    """The compiled loops replaced by canned numbers (no real measurement)."""
    from napikit.host import _bench

    flow = {"sent": 1000, "received": 900, "sender_cpu_ns": 4_000_000,
            "receiver_cpu_ns": 2_000_000, "receiver_nvcsw": 50}
    monkeypatch.setattr(_bench, "udp_flow", lambda *a, **k: dict(flow))
    monkeypatch.setattr(_bench, "udp_drain", lambda *a, **k: {
        "packets": 1000, "send_ns": 3_500_000, "recv_ns": 600_000, "rounds": 8})
    monkeypatch.setattr(_bench, "yield_ns", lambda cpu, n, **k: 500.0 * n)
    monkeypatch.setattr(_bench, "futex_wake_empty", lambda *a, **k: 200.0)
    monkeypatch.setattr(_bench, "futex_pingpong", lambda a, b, busy_target=False, **k: {
        "round_trips": 100, "wall_ns": 400_000 if a == b else 6_000_000,
        "wake_calls": 100, "wake_ns": 500_000 if busy_target else 700_000})
    monkeypatch.setattr(_bench, "cacheline_ns", lambda a, b, local=False, **k:
                        1.0 if local else 150.0)
    monkeypatch.setattr(_bench, "ipi_membarrier", lambda a, b, **k: {
        "alone_calls": 1000, "alone_ns": 150_000, "calls": 100, "matched": 98,
        "call_median": 3700, "arrival_median": 1650, "handler_median": 2400})
    monkeypatch.setattr(_bench, "ipi_tgkill", lambda a, b, **k: {
        "calls": 100, "call_median": 1100 if a == b else 2500})
    monkeypatch.setattr(_bench, "idle_entry", lambda a, b, d, **k: {
        "wakes": 100, "wall_ns": 2_000_000, "b_nvcsw": 100, "b_cpu_ns": 300_000,
        "slept": 90, "wake_median": 5_000})


def test_calibrate_without_root_on_the_fake_tree(fake_root, fake_bench) -> None:
    """Not root: no RPS run, rps_cpus untouched, protocol_rx_ns a named default."""
    before = (fake_root / "sys/class/net/lo/queues/rx-0/rps_cpus").read_text()
    out = calibrate.calibrate(quick=True, root=fake_root, euid=1000)
    assert (fake_root / "sys/class/net/lo/queues/rx-0/rps_cpus").read_text() == before
    e = out["entries"]
    assert e["protocol_rx_ns"].source.startswith("default: needs root")
    assert e["context_switch_ns"].value == 500
    assert out["host"]["ncpus"] == 2 and len(out["measurements"]) > 10


def test_calibrate_as_root_restores_rps_cpus(fake_root, fake_bench) -> None:
    """Root: the RPS run writes the fake rps_cpus and puts the original back."""
    path = fake_root / "sys/class/net/lo/queues/rx-0/rps_cpus"
    path.write_text("00000000\n")
    out = calibrate.calibrate(quick=True, root=fake_root, euid=0)
    assert path.read_text() == "00000000\n"
    # The recorded counters do not move, so the RPS run counts no kicks and
    # protocol_rx_ns has no finite value; the IPI costs come from their own probes.
    e = out["entries"]
    assert e["ipi_send_ns"].value == 1400 and e["ipi_handler_ns"].value == 2400
    assert e["ipi_latency_ns"].value == 100
    assert e["protocol_rx_ns"].source.startswith("default: its measurements")
    assert "rps_kicks_per_packet" in out["measurements"]


def test_calibrate_without_proc_interrupts(fake_root, fake_bench) -> None:
    """Where /proc/interrupts cannot be read, the polling share is left out, not fatal."""
    (fake_root / "proc/interrupts").unlink()
    out = calibrate.calibrate(quick=True, root=fake_root, euid=1000)
    assert "kick_finds_target_polling" not in out["measurements"]
    assert out["entries"]["wakeup_latency_ns"].value > 0


def test_calibrate_when_membarrier_is_refused(fake_root, fake_bench, monkeypatch) -> None:
    """A kernel without CONFIG_MEMBARRIER (EINVAL): the run goes on, the handler cost is a
    named default and the latency comes from the futex proxy."""
    from napikit.host import _bench

    def refused(*a, **k):
        raise OSError(22, "ipi_membarrier failed")

    monkeypatch.setattr(_bench, "ipi_membarrier", refused)
    out = calibrate.calibrate(quick=True, root=fake_root, euid=1000)
    e = out["entries"]
    assert e["ipi_handler_ns"].source.startswith("default:")
    assert "IPI probes gave no value" in e["ipi_latency_ns"].source
    assert e["ipi_send_ns"].value == 1400
    assert "ipi_flight" not in out["measurements"]


def test_calibrate_ignores_a_membarrier_probe_that_saw_few_ipis(
        fake_root, fake_bench, monkeypatch) -> None:
    """A target that saw under half of the calls' IPIs (a busy host): the share is
    recorded, its timings are not used, and the futex proxies stand in."""
    from napikit.host import _bench

    monkeypatch.setattr(_bench, "ipi_membarrier", lambda a, b, **k: {
        "alone_calls": 1000, "alone_ns": 150_000, "calls": 100, "matched": 34,
        "call_median": 3700, "arrival_median": 1650, "handler_median": 2400})
    out = calibrate.calibrate(quick=True, root=fake_root, euid=1000)
    e = out["entries"]
    assert out["measurements"]["ipi_matched"]["median"] == pytest.approx(0.34)
    assert "ipi_handler_busy_target" not in out["measurements"]
    assert e["ipi_handler_ns"].source.startswith("default:")
    assert "IPI probes gave no value" in e["ipi_latency_ns"].source


def test_calibrate_charges_the_blocked_readers_extra_cpu_to_recv_block(
        fake_root, fake_bench) -> None:
    """The cross-CPU run's reader CPU per datagram (2e6 ns / 900) beyond recv_queued
    (600) and the remote skb (7 lines) and socket (3 lines) of 149 ns each, over its
    50 blocks per 1000 datagrams sent, less the switch back in (yield_pair - alone)."""
    out = calibrate.calibrate(quick=True, root=fake_root, euid=1000)
    per_block = (2_000_000 / 900 - 600 - 149 * 7 - 149 * 3) / (50 / 1000)
    e = out["entries"]["recv_block_ns"]
    assert e.value == round(per_block - 500)
    assert e.source.startswith("(recv_remote_reader - recv_queued")


def test_idle_entry_window_is_where_half_the_wake_ups_need_an_interrupt() -> None:
    """Linear between the probe's delays: 20 % at 1 us and 80 % at 1.5 us cross 50 %
    at 1.25 us; from 0 when the first delay already crosses; the longest delay when
    none does."""
    def shares(*v: float) -> dict[str, float]:
        return {f"idle_entry_irqs_{d}ns": x for d, x in
                zip(calibrate.IDLE_ENTRY_DELAYS, v, strict=True)}

    assert calibrate._idle_window(shares(0.0, 0.2, 0.8, 1.0, 1.0)) == pytest.approx(1250)
    assert calibrate._idle_window(shares(1.0, 1.0, 1.0, 1.0, 1.0)) == pytest.approx(250)
    assert calibrate._idle_window(shares(0.0, 0.1, 0.1, 0.2, 0.3)) == 3000


def test_idle_exit_poll_needs_a_target_that_still_polled(fake_root, fake_bench) -> None:
    """The fake probe's wake-ups (5 us, no interrupt counted: the recorded tree does
    not move) give idle_exit_poll_ns = 5000 - the switch (500) - the bare syscall
    (200); where most needed an interrupt at the shortest delay it is a named default."""
    out = calibrate.calibrate(quick=True, root=fake_root, euid=1000)
    assert out["entries"]["idle_exit_poll_ns"].value == 4300
    assert out["entries"]["idle_entry_ns"].value == 3000
    halted = dict.fromkeys((f"idle_entry_irqs_{d}ns" for d in calibrate.IDLE_ENTRY_DELAYS), 1.0)
    with pytest.raises(ValueError):
        calibrate._idle_exit_poll(halted)


def test_a_rule_is_taken_over_the_repetitions_where_it_applies() -> None:
    """A repetition whose probe did not see what the rule needs (ValueError) is left
    out of the median and the spread; none left is an error."""
    def rule(m: dict[str, float]) -> float:
        if m["x"] < 0:
            raise ValueError("not seen")
        return m["x"]

    reps = [{"x": 100.0}, {"x": -1.0}, {"x": 300.0}, {"x": 200.0}]
    assert calibrate._median(("x", rule), reps) == (200, (100, 300))
    with pytest.raises(ValueError):
        calibrate._median(("x", rule), [{"x": -1.0}])


#: One repetition's per-operation shapes (the probes' 32 quantile points), right-skewed
#: like real call times: a body of small steps and a slow tail.
Q = [float(x) for x in (*range(1000, 1300, 10), 2000, 6000)]
H = {"tgkill_remote_running": [q + 1500 for q in Q], "ipi_handler_busy_target": list(Q),
     "ipi_arrival_busy_target": [q + 600 for q in Q],
     "futex_wake_busy_target": [q + 3900 for q in Q]}


def _mean(points: list[float]) -> float:
    return sum(points) / len(points)


def test_per_operation_fields_carry_their_shape() -> None:
    """The four fields timed per operation get an empirical shape: the probe's points
    less what the formula subtracts (the constants of the same repetition), clamped at
    0; the others stay constant and say why."""
    e = calibrate.derive([M], have_root=True, cross_cpu=True, hists=[H])
    shaped = {n for n, x in e.items() if x.distribution is not None}
    assert shaped == set(calibrate.SHAPES) == {"ipi_send_ns", "ipi_handler_ns",
                                               "ipi_latency_ns", "wakeup_ns"}
    send = e["ipi_send_ns"].distribution
    assert send is not None and send.kind == "empirical" and len(send.values) == 32
    assert list(send.values) == [q + 1500 - 1100 for q in Q] and set(send.weights) == {1.0}
    assert list(e["ipi_handler_ns"].distribution.values) == Q  # type: ignore[union-attr]
    # arrival less membarrier_alone (150) and ipi_send_sender (1400): 1000 + 600 - 1550
    lat = e["ipi_latency_ns"].distribution
    assert lat is not None and lat.values[0] == 50.0
    wake = e["wakeup_ns"].distribution
    assert wake is not None and list(wake.values) == [q + 3900 - 200 for q in Q]
    for name in shaped:
        assert "shape:" in e[name].source and "value = the shape's mean" in e[name].source
    for name, x in e.items():
        if name not in shaped and not x.source.startswith("default:"):
            assert "(constant: " in x.source, name


def test_a_shapes_value_is_its_mean_not_the_median() -> None:
    """Documented: with a shape the field's value is the mean of the draws, so the file
    writes the shape's mean (the core's rescaling is then 1 to within rounding and the
    draws are the measured points); for right-skewed samples it is above the median,
    which the source still names."""
    e = calibrate.derive([M], have_root=True, cross_cpu=True, hists=[H])
    for name in calibrate.SHAPES:
        d = e[name].distribution
        assert d is not None
        assert abs(e[name].value - d.mean) <= 0.5
        median = (d.values[15] + d.values[16]) / 2
        assert e[name].value > median
    # the constant rule would give the median-based 2400 for the handler
    assert e["ipi_handler_ns"].value == round(_mean(Q)) != 2400
    assert "by the formula: 2400 ns" in e["ipi_handler_ns"].source


def test_shapes_merge_by_the_median_repetition() -> None:
    """Over repetitions: the shape of the repetition whose shape's mean is the median,
    its mean the value, the spread the range of the repetitions' means."""
    reps = [dict(M, tgkill_same_cpu=c) for c in (1100.0, 900.0, 1300.0)]
    e = calibrate.derive(reps, have_root=True, cross_cpu=True, hists=[H, H, H])["ipi_send_ns"]
    means = sorted(_mean([q + 1500 - c for q in Q]) for c in (1100.0, 900.0, 1300.0))
    assert e.value == round(means[1])
    assert e.spread == (round(means[0]), round(means[2]))
    assert e.distribution is not None and e.distribution.values[0] == 1000 + 1500 - 1100


def test_no_shape_without_samples_a_fallback_or_a_mean_of_0() -> None:
    """Repetitions without samples keep the constant; so do the futex proxies (a
    difference of two averages) and a shape clamped to all zeros."""
    e = calibrate.derive([M], have_root=True, cross_cpu=True, hists=[{}])
    assert all(x.distribution is None for x in e.values())
    assert e["ipi_send_ns"].value == 1400
    probes = ("membarrier", "ipi_", "tgkill")
    m = {k: v for k, v in M.items() if not k.startswith(probes)}
    e = calibrate.derive([m], have_root=True, cross_cpu=True, hists=[H])
    assert e["ipi_send_ns"].distribution is None and e["ipi_latency_ns"].distribution is None
    assert "(constant: " in e["ipi_send_ns"].source
    assert e["wakeup_ns"].distribution is not None
    e = calibrate.derive([dict(M, membarrier_alone=9000.0)], have_root=True,
                         cross_cpu=True, hists=[H])
    assert e["ipi_latency_ns"].distribution is None


def test_calibrated_shapes_load_back_and_run(
    fake_root, fake_bench, monkeypatch, tmp_path, capsys
) -> None:
    """calibrate with probes that return their samples' shape writes a cost file whose
    shaped entries load back as distributions and that `napikit run --costs` runs."""
    import json

    from napikit import cli
    from napikit.host import _bench, costfile

    tgkill, pingpong = _bench.ipi_tgkill, _bench.futex_pingpong
    monkeypatch.setattr(_bench, "ipi_tgkill", lambda a, b, **k: dict(
        tgkill(a, b, **k), call_hist=[int(q) + (1500 if a != b else 100) for q in Q]))
    monkeypatch.setattr(_bench, "futex_pingpong", lambda a, b, busy_target=False, **k: dict(
        pingpong(a, b, busy_target=busy_target, **k), wake_hist=[int(q) + 4000 for q in Q]))
    out = calibrate.calibrate(quick=True, root=fake_root, euid=1000)
    path = tmp_path / "costs.toml"
    costfile.write(path, out["entries"], out["host"], out["measurements"])
    loaded = costfile.load(path)
    assert set(loaded.distributions) == {"ipi_send_ns", "wakeup_ns"}
    for name, d in loaded.distributions.items():
        assert d.kind == "empirical" and len(d.values) == 32
        assert abs(getattr(loaded.costs, name) - d.mean) <= 0.5
    assert cli.main(["run", "--costs", str(path), "--packets", "500", "--json"]) == 0
    dists = json.loads(capsys.readouterr().out)["config"]["cost_distributions"]
    assert set(dists) == {"ipi_send_ns", "wakeup_ns"}


def test_summarize_keeps_the_median_repetitions_quantiles() -> None:
    """[measurements] keeps a per-operation probe's points, of the median repetition,
    also for probes no field takes a shape from."""
    reps = [dict(M, tgkill_remote_running=v) for v in (2500.0, 2600.0, 2400.0)]
    hists = [{"tgkill_remote_running": [v + q for q in Q], "idle_entry_wake_500ns": Q}
             for v in (0.0, 100.0, -100.0)]
    s = calibrate.summarize(reps, hists)
    assert s["tgkill_remote_running"]["quantiles"] == [round(q) for q in Q]
    assert "quantiles" not in s["yield_pair"]
    assert "idle_entry_wake_500ns" not in s  # points, but no value in these reps
    assert "quantiles" not in calibrate.summarize(reps)["tgkill_remote_running"]
