"""The kernel change's claims (kernel-model.md A.4), reproduced with the default costs.

Each claim is a comparison between runs of the shipped scenarios as they are (only the
policy changes), never a fixed figure, at every CPU count of the study: on ``N`` CPUs a
SEED scenario is ``N/2`` sender/receiver pairs (:func:`napikit.scenarios.at_ncpus`).
"""

from __future__ import annotations

import pytest

from napikit.scenarios import at_ncpus

#: The CPU counts of the study (2 is the scenario as shipped).
NCPUS = [2, 4, 8, 16, 64]

CLASSIC = {"policy": "softirq-ipi", "policy_options": {}}
KSOFTIRQD = {"policy": "ksoftirqd", "policy_options": {}}
THREADS = {"policy": "backlog-threads", "policy_options": {}}
THREADS_NO_FAST_PATH = {"policy": "backlog-threads", "policy_options": {"fast_path": False}}


@pytest.fixture(scope="module")
def outcome(run):
    """``outcome(name, ncpus, policy)``: the (cached) result of a scenario on ``ncpus``."""
    cache = {}

    def get(name: str, ncpus: int, policy: dict):
        key = (name, ncpus, policy["policy"], tuple(sorted(policy["policy_options"].items())))
        if key not in cache:
            cache[key] = run(at_ncpus(name, ncpus).evolve(**policy))
        return cache[key]

    return get


# ----------------------------------------------------------------- claim 1


@pytest.mark.parametrize("ncpus", NCPUS)
def test_threads_without_fast_path_lose_loopback_throughput(outcome, ncpus):
    """SEED-LO: backlog threads without the local fast path deliver under 0.9x softirq-ipi."""
    classic = outcome("seed-lo", ncpus, CLASSIC)
    rfc = outcome("seed-lo", ncpus, THREADS_NO_FAST_PATH)
    assert rfc.delivered_pps < 0.9 * classic.delivered_pps


@pytest.mark.parametrize("ncpus", NCPUS)
def test_threads_without_fast_path_triple_context_switches(outcome, ncpus):
    """SEED-LO: backlog threads without the fast path switch context at least 3x as often."""
    classic = outcome("seed-lo", ncpus, CLASSIC)
    rfc = outcome("seed-lo", ncpus, THREADS_NO_FAST_PATH)
    assert rfc.context_switches >= 3 * classic.context_switches


@pytest.mark.parametrize("ncpus", NCPUS)
def test_threads_without_fast_path_hand_local_work_to_the_thread(outcome, ncpus):
    """SEED-LO: without the fast path the sender's own backlog is polled by its
    backlog thread (thread kicks, backlog-thread CPU time); softirq-ipi uses neither."""
    classic = outcome("seed-lo", ncpus, CLASSIC)
    rfc = outcome("seed-lo", ncpus, THREADS_NO_FAST_PATH)
    assert rfc.thread_kicks > 0 and rfc.cpu_time[0].backlog_thread > 0
    assert classic.thread_kicks == 0 and classic.cpu_time[0].backlog_thread == 0


# ----------------------------------------------------------------- claim 2


@pytest.mark.parametrize("ncpus", NCPUS)
def test_fast_path_restores_loopback_throughput(outcome, ncpus):
    """SEED-LO: backlog threads with the fast path are within 5 % of softirq-ipi."""
    classic = outcome("seed-lo", ncpus, CLASSIC)
    threads = outcome("seed-lo", ncpus, THREADS)
    assert threads.delivered_pps == pytest.approx(classic.delivered_pps, rel=0.05)


@pytest.mark.parametrize("ncpus", NCPUS)
def test_fast_path_takes_the_softirq_path_with_rps_off(outcome, ncpus):
    """SEED-LO: with RPS off and the fast path, backlog threads never wake a thread."""
    threads = outcome("seed-lo", ncpus, THREADS)
    assert threads.thread_kicks == 0
    assert threads.backlog_thread_wakeups == 0
    assert all(t.backlog_thread == 0 for t in threads.cpu_time)


# ----------------------------------------------------------------- claim 3


@pytest.mark.parametrize("ncpus", NCPUS)
def test_rps_ipi_and_threads_land_close(outcome, ncpus):
    """SEED-RPS: softirq-ipi and backlog-threads are within 15 % of each other."""
    classic = outcome("seed-rps", ncpus, CLASSIC)
    threads = outcome("seed-rps", ncpus, THREADS)
    assert classic.delivered_pps == pytest.approx(threads.delivered_pps, rel=0.15)
    assert threads.delivered_pps == pytest.approx(classic.delivered_pps, rel=0.15)


@pytest.mark.parametrize("ncpus", NCPUS)
@pytest.mark.parametrize("variant", [CLASSIC, THREADS], ids=["softirq-ipi", "backlog-threads"])
def test_rps_to_another_cpu_is_slower_than_rps_off(outcome, ncpus, variant):
    """SEED-RPS delivers less than the same policy's SEED-LO figure."""
    assert (
        outcome("seed-rps", ncpus, variant).delivered_pps
        < outcome("seed-lo", ncpus, variant).delivered_pps
    )


@pytest.mark.parametrize("ncpus", NCPUS)
def test_rps_kicks_remote_backlog_by_ipi_or_thread(outcome, ncpus):
    """SEED-RPS: softirq-ipi kicks CPU 1 with IPIs, backlog-threads with thread wake-ups."""
    classic = outcome("seed-rps", ncpus, CLASSIC)
    threads = outcome("seed-rps", ncpus, THREADS)
    assert classic.ipis > 0 and classic.softnet[1].received_rps > 0
    assert classic.thread_kicks == 0
    assert threads.thread_kicks > 0 and threads.ipis == 0
    assert threads.softnet[1].received_rps == 0


# ----------------------------------------------------------------- claim 4


@pytest.mark.parametrize("ncpus", NCPUS)
def test_rt_ksoftirqd_policy_wakes_ksoftirqd(outcome, ncpus):
    """SEED-RT: the ksoftirqd policy wakes ksoftirqd for IPI-triggered backlog work."""
    assert outcome("seed-rt", ncpus, KSOFTIRQD).ksoftirqd_wakeups > 0


@pytest.mark.parametrize("ncpus", NCPUS)
def test_rt_ksoftirqd_policy_polls_the_rps_targets_in_ksoftirqd(outcome, ncpus):
    """SEED-RT: under the ksoftirqd policy each RPS target's backlog runs in ksoftirqd."""
    result = outcome("seed-rt", ncpus, KSOFTIRQD)
    for target in range(1, ncpus, 2):
        assert result.cpu_time[target].ksoftirqd > 0
        assert result.softnet[target].received_rps > 0


@pytest.mark.parametrize("ncpus", NCPUS)
def test_rt_backlog_threads_never_wake_ksoftirqd(outcome, ncpus):
    """SEED-RT: backlog-threads wakes no ksoftirqd and sends no RPS IPI."""
    result = outcome("seed-rt", ncpus, THREADS)
    assert result.ksoftirqd_wakeups == 0
    assert result.ipis == 0
    assert all(t.ksoftirqd == 0 for t in result.cpu_time)


@pytest.mark.parametrize("ncpus", NCPUS)
def test_rt_backlog_threads_poll_the_rps_targets_in_their_threads(outcome, ncpus):
    """SEED-RT: under backlog-threads each RPS target's backlog runs in backlog_napi/N."""
    result = outcome("seed-rt", ncpus, THREADS)
    for target in range(1, ncpus, 2):
        assert result.cpu_time[target].backlog_thread > 0
    assert result.backlog_thread_wakeups > 0


# ----------------------------------------------------------------- where they hold
# napikit.claims moves what changes the answer: relative costs, the offered load, and
# pairs whose flows share CPUs. Each test checks a claim against the runs themselves,
# never a verdict copied from a map.

from napikit import claims as claims_mod  # noqa: E402
from napikit import simulate  # noqa: E402


def _runs(point: claims_mod.Point) -> dict:
    return {key: simulate(config) for key, config in claims_mod.configs(point).items()}


def test_every_claim_holds_at_the_default_point():
    assert all(o.holds for o in claims_mod.evaluate())


def test_the_default_point_is_the_shipped_scenarios():
    """Point() on 2 CPUs runs SEED-LO / SEED-RPS / SEED-RT as shipped, shorter."""
    for kind, name in (("lo", "seed-lo"), ("rps", "seed-rps"), ("rt", "seed-rt")):
        shipped = at_ncpus(name, 2)
        mine = claims_mod.scenario(kind, claims_mod.Point())
        assert mine.evolve(packets=shipped.packets) == shipped


@pytest.mark.parametrize("point", [
    claims_mod.Point(), claims_mod.Point(ipi=0.25), claims_mod.Point(protocol=4.0),
    claims_mod.Point(load=0.5), claims_mod.Point(pairs=2, steering="spread"),
], ids=["default", "ipi-0.25", "protocol-4", "load-0.5", "spread"])
def test_a_verdict_is_what_its_runs_say(point):
    """Each claim's verdict and margin follow from the delivered rates and counters of
    the runs at that point, recomputed here."""
    runs = _runs(point)
    got = {o.claim: o for o in claims_mod.evaluate(point)}
    pps = {k: r.delivered_pps for k, r in runs.items()}
    assert got[1].holds == (pps["lo", "nofast"] < 0.9 * pps["lo", "classic"])
    assert got[2].holds == (abs(pps["lo", "threads"] / pps["lo", "classic"] - 1) <= 0.05)
    apart = max(pps["rps", "threads"] / pps["rps", "classic"],
                pps["rps", "classic"] / pps["rps", "threads"]) - 1
    below = min(1 - pps["rps", "classic"] / pps["lo", "classic"],
                1 - pps["rps", "threads"] / pps["lo", "threads"])
    assert got[3].holds == (apart <= 0.15 and below >= 0.01)
    assert got[3].margin == pytest.approx(min(0.15 - apart, below - 0.01))
    assert got[4].holds == (runs["rt", "ksoftirqd"].ksoftirqd_wakeups > 0
                            and runs["rt", "threads"].ksoftirqd_wakeups == 0)
    for o in got.values():  # the margin is the distance to the threshold, signed
        assert o.holds == (o.margin > 0 if o.claim == 1 else o.margin >= 0)


def test_under_capacity_the_throughput_claims_have_nothing_to_compare():
    """Paced at half its capacity every policy delivers what is offered: the loss that
    claim 1 is about does not exist there, and claim 1 fails."""
    point = claims_mod.Point(load=0.5)
    runs = _runs(point)
    lo = [runs["lo", k].delivered_pps for k in ("classic", "threads", "nofast")]
    assert max(lo) == pytest.approx(min(lo), rel=0.01)
    assert not claims_mod.evaluate(point)[0].holds


def test_shared_steering_sends_every_pairs_flow_to_cpu_1():
    """steering="shared": both pairs' RPS target is CPU 1, so only CPU 1 processes
    RPS work; "own": each pair's receiver CPU does."""
    shared = simulate(claims_mod.scenario("rps", claims_mod.Point(pairs=2, steering="shared"))
                      .evolve(policy="softirq-ipi"))
    own = simulate(claims_mod.scenario("rps", claims_mod.Point(pairs=2))
                   .evolve(policy="softirq-ipi"))
    assert [s.received_rps > 0 for s in shared.softnet] == [False, True, False, False]
    assert [s.received_rps > 0 for s in own.softnet] == [False, True, False, True]


def test_a_map_cell_is_the_point_it_names():
    """claim_map's cell (i, j) is evaluate() at x_values[i], y_values[j]."""
    m = claims_mod.claim_map("ipi", "protocol", (0.25, 1.0), (1.0, 4.0))
    for j, yv in enumerate(m.y_values):
        for i, xv in enumerate(m.x_values):
            assert m.cells[j][i] == claims_mod.evaluate(claims_mod.Point(ipi=xv, protocol=yv))


def test_scaling_a_cost_group_scales_only_its_costs():
    base = claims_mod.CostModel()
    scaled = claims_mod.Point(ipi=2.0).costs(base)
    for name in ("ipi_send_ns", "ipi_latency_ns", "ipi_handler_ns"):
        assert getattr(scaled, name) == 2 * getattr(base, name)
    assert scaled.protocol_rx_ns == base.protocol_rx_ns
    assert scaled.udp_sendmsg_ns == base.udp_sendmsg_ns


def test_host_position_is_each_groups_cost_against_the_base():
    host = claims_mod.CostModel(ipi_send_ns=400, ipi_latency_ns=3000, ipi_handler_ns=600,
                                protocol_rx_ns=250)
    pos = claims_mod.host_position(host)
    assert pos["ipi"] == pytest.approx(2.0) and pos["protocol"] == pytest.approx(0.5)
    assert pos["application"] == pytest.approx(1.0)


@pytest.mark.parametrize("kwargs, field", [
    ({"ipi": 0}, "claims.ipi"), ({"load": 5}, "claims.load"), ({"pairs": 0}, "claims.pairs"),
    ({"steering": "round-robin"}, "claims.steering"),
])
def test_a_bad_point_is_a_config_error_naming_the_field(kwargs, field):
    with pytest.raises(claims_mod.ConfigError) as e:
        claims_mod.Point(**kwargs)
    assert e.value.field == field


def test_cli_claims_writes_the_csv_and_the_map(tmp_path, capsys):
    """napikit claims --quick: one CSV row per cell and claim, a PNG, a summary line
    per map and claim."""
    from napikit import cli

    pytest.importorskip("matplotlib")
    assert cli.main(["claims", "--quick", "--out", str(tmp_path)]) == 0
    rows = (tmp_path / "claims.csv").read_text().splitlines()
    cells = sum(len(claims_mod.QUICK_VALUES[x]) * len(claims_mod.QUICK_VALUES[y])
                for x, y in claims_mod.MAPS)
    assert len(rows) == 1 + 4 * cells
    assert (tmp_path / "claims.png").read_bytes()[:4] == b"\x89PNG"
    assert capsys.readouterr().out.count("holds in") == 4 * len(claims_mod.MAPS)


def test_the_host_is_marked_where_its_costs_are_and_only_on_the_map():
    m = claims_mod.ClaimMap("ipi", "protocol", (0.25, 1.0, 4.0), (0.25, 1.0, 4.0), ())
    assert claims_mod._host_cell(m, {"ipi": 1.0, "protocol": 2.0}) == pytest.approx((1, 1.5))
    assert claims_mod._host_cell(m, {"ipi": 1.0, "protocol": 8.0}) is None
    assert claims_mod._host_cell(m, {"ipi": 0.0, "protocol": 1.0}) is None
