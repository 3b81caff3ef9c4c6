"""Results: deterministic JSON carrying what produced it, ordered latency percentiles,
and CPU time that adds up to the simulated time."""

from __future__ import annotations

import json

import attrs
import pytest

import napikit
from napikit import Config, LoopbackUdp, NicIrq


@pytest.fixture(scope="module")
def nic_config() -> Config:
    """Poisson NIC traffic spread by RPS over 4 CPUs: the seed changes the outcome."""
    return Config(ncpus=4, workloads=[NicIrq(cpu=0, rate_pps=1_500_000, rps_cpus=[0, 1, 2, 3])],
                  packets=30_000)


def _strip_seed(text: str) -> dict:
    d = json.loads(text)
    d.pop("seed")
    d["config"].pop("seed")
    return d


def test_to_json_is_deterministic(nic_config, run):
    """Two runs of one config give byte-identical JSON."""
    assert run(nic_config).to_json() == run(nic_config).to_json()


def test_to_json_depends_on_the_seed(nic_config, run):
    """Another seed gives another outcome, not only another seed field."""
    a = _strip_seed(run(nic_config).to_json())
    b = _strip_seed(run(nic_config.evolve(seed=2)).to_json())
    assert a != b


def test_json_carries_config_seed_and_version(nic_config, run):
    """The JSON holds the full config, the seed and napikit's version."""
    d = json.loads(run(nic_config.evolve(seed=42)).to_json())
    assert d["config"] == json.loads(json.dumps(nic_config.evolve(seed=42).to_dict()))
    assert d["seed"] == 42 == d["config"]["seed"]
    assert d["napikit_version"] == napikit.__version__
    assert d["policy"] == nic_config.policy


def test_json_config_reruns_to_the_same_result(nic_config, run):
    """Rebuilding the Config from a result's JSON and rerunning reproduces it exactly."""
    first = run(nic_config)
    d = json.loads(first.to_json())["config"]
    kinds = {"NicIrq": NicIrq, "LoopbackUdp": LoopbackUdp}
    workloads = [kinds[w.pop("kind")](**w) for w in d.pop("workloads")]
    config = Config(
        workloads=workloads,
        kernel=napikit.KernelParams(**d.pop("kernel")),
        costs=napikit.CostModel(**d.pop("costs")),
        **d,
    )
    assert config == nic_config
    assert run(config).to_json() == first.to_json()


def test_json_is_the_result_dict(nic_config, run):
    """to_json is to_dict as JSON, keys sorted, ending in a newline."""
    result = run(nic_config)
    text = result.to_json()
    assert text.endswith("\n")
    assert json.loads(text) == json.loads(json.dumps(result.to_dict()))
    assert text == json.dumps(json.loads(text), sort_keys=True, indent=2) + "\n"


@pytest.mark.parametrize("which", ["latency_enqueue", "latency_send_recv"])
def test_latency_percentiles_are_ordered(scenario, run, policy, which):
    """p50 <= p90 <= p99 <= p99.9 <= max for every policy on SEED-RPS-spread."""
    lat = getattr(run(scenario("seed-rps-spread", packets=30_000, **policy)), which)
    assert lat.count > 0
    assert 0 <= lat.p50_ns <= lat.p90_ns <= lat.p99_ns <= lat.p999_ns <= lat.max_ns
    assert lat.mean_ns <= lat.max_ns


def test_percentiles_of_constant_latency_collapse(run, zero_costs):
    """Evenly spaced packets that each wait exactly protocol_rx_ns have p50 == max
    (within the histogram's resolution)."""
    costs = attrs.evolve(zero_costs, protocol_rx_ns=1_000)
    config = Config(ncpus=1, workloads=[NicIrq(cpu=0, rate_pps=10_000, arrival="constant")],
                    costs=costs, packets=2_000)
    lat = run(config).latency_enqueue
    assert lat.count == 2_000
    assert lat.p50_ns == pytest.approx(lat.max_ns, rel=0.02)
    assert lat.mean_ns == pytest.approx(lat.max_ns, rel=0.02)


def test_latency_is_at_least_the_protocol_cost(run, scenario):
    """No packet is delivered faster than its protocol receive (PERF-A: 1000 ns)."""
    config = scenario("perf-a", packets=30_000)
    lat = run(config).latency_enqueue
    floor = config.costs.protocol_rx_ns
    assert lat.p50_ns >= floor * 0.98 and lat.mean_ns >= floor


def test_cpu_time_adds_up_to_the_simulated_time(scenario, run, policy, busy):
    """Per CPU, busy time is at most the simulated time and busy + idle equals it."""
    result = run(scenario("seed-rps-spread", packets=30_000, **policy))
    for t in result.cpu_time:
        assert t.idle >= 0
        assert busy(t) <= result.sim_time_ns
        assert busy(t) + t.idle == result.sim_time_ns


@pytest.mark.parametrize("case", ["saturated-hardirq", "last-wakeup"])
def test_cpu_time_fits_at_the_edges(run, busy, zero_costs, case):
    """CPU time stays within the run when a CPU's hard-IRQ load exceeds 100 % (4 Mpps
    at 0.4 us each) and when out-of-line time (a wake-up) is the last thing charged."""
    if case == "saturated-hardirq":
        config = Config(ncpus=2, policy="backlog-threads", packets=10_000,
                        workloads=[NicIrq(cpu=0, rate_pps=4_000_000, arrival="constant",
                                          rps_cpus=[1])])
    else:
        config = Config(ncpus=2, packets=2_000, costs=attrs.evolve(zero_costs, wakeup_ns=1),
                        workloads=[LoopbackUdp(senders=[0], receivers=[1])])
    result = run(config)
    for cpu, t in enumerate(result.cpu_time):
        assert busy(t) <= result.sim_time_ns, f"cpu {cpu}: {t} in {result.sim_time_ns} ns"


def test_cpu_time_has_one_row_per_cpu(scenario, run):
    """cpu_time and softnet have one row per CPU, in CPU order."""
    result = run(scenario("seed-rps-spread", packets=5_000))
    assert len(result.cpu_time) == len(result.softnet) == 4
    assert [r.cpu for r in result.softnet] == [0, 1, 2, 3]


def test_sim_time_covers_the_input(scenario, run):
    """The run lasts at least as long as the input did."""
    result = run(scenario("perf-a", packets=20_000))
    assert 0 < result.input_duration_ns <= result.sim_time_ns


def test_delivered_pps_is_delivery_over_the_input_window(scenario, run):
    """delivered_pps times the input window never exceeds what was delivered, and is
    close to it when nothing is left behind."""
    result = run(scenario("perf-a", packets=50_000))
    in_window = result.delivered_pps * result.input_duration_ns / 1e9
    assert in_window <= result.delivered + 1
    assert in_window == pytest.approx(result.delivered, rel=0.01)


def test_drops_total_sums_the_reasons(scenario, run):
    """Drops.total is the sum of the four reasons."""
    d = run(scenario("perf-a-overload", packets=30_000)).drops
    assert d.total == d.backlog + d.flow_limit + d.socket + d.nic_ring > 0


def test_result_is_frozen(run):
    """A Result cannot be changed in place."""
    result = run(Config(packets=1_000))
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        result.delivered = 0


def test_summary_reports_the_counts(run):
    """The text summary names the policy and the arrived/delivered counts."""
    result = run(Config(policy="backlog-threads", packets=3_000))
    text = result.summary()
    assert "backlog-threads" in text
    assert f"{result.arrived} arrived" in text and f"{result.delivered} delivered" in text


def test_quiescent_run_reports_unpolled_only_when_drained(scenario, run):
    """A run cut before draining reports no unpolled backlog figure (0) and is not
    quiescent; a drained one is quiescent."""
    config = scenario("perf-a-overload", packets=20_000)
    cut = run(config.evolve(drain_ns=0))
    assert not cut.quiescent and cut.queued > 0 and cut.unpolled_backlogs == 0
    assert run(config).quiescent


def test_result_carries_the_core_ipi_counters():
    """polled_kicks and wakeup_ipis reach the Result as the core counted them: SEED-RPS
    with a polling idle target and a paced sender kicks without interrupts; SEED-LO's
    reader, asleep on an idle CPU, is woken through ttwu_queue_wakelist IPIs."""
    from napikit._core import Sim

    def both(config: Config) -> tuple[napikit.Result, dict]:
        sim = Sim(config, napikit.Simulation(config).decision)
        assert sim.run() is None
        return napikit.simulate(config), sim.raw_results()

    paced = attrs.evolve(napikit.scenarios.get("seed-rps").config.workloads[0],
                         rate_pps=50_000)
    polled = napikit.scenarios.get("seed-rps").config.evolve(
        packets=5_000, workloads=[paced], kernel=napikit.KernelParams(cpuidle="poll"))
    woken = napikit.scenarios.get("seed-lo").config.evolve(packets=5_000)
    for config, counter in ((polled, "polled_kicks"), (woken, "wakeup_ipis")):
        result, raw = both(config)
        assert getattr(result, counter) == raw[counter] > 0


# ----------------------------------------------------------------- histograms


@pytest.mark.parametrize("name", ["seed-rps", "seed-rt", "perf-a"])
def test_each_latency_summary_is_its_histograms(name, scenario, run, policy):
    """Result.histograms hold the buckets behind every Latency: summarised in Python
    they give the core's own figures."""
    r = run(scenario(name, packets=20_000, **policy).evolve(
        workloads=scenario(name).workloads + (napikit.Cyclictest(cpu=1),)))
    assert r.histograms["enqueue"].summary() == r.latency_enqueue
    assert r.histograms["send_recv"].summary() == r.latency_send_recv
    assert r.histograms["cyclictest/0"].summary() == r.cyclictest_latency[0]
    h = r.histograms["enqueue"]
    assert sum(n for _, _, n in h.buckets) == h.count == r.latency_enqueue.count


def test_histograms_of_seeds_merge_into_one_distribution(scenario, run):
    """Merging pools the values: counts, sums and buckets add, the maximum is the
    largest, and each quantile lies between the runs' own."""
    hs = [run(scenario("seed-rps", packets=20_000, seed=s)).histograms["send_recv"]
          for s in (1, 2, 3)]
    merged = napikit.Histogram.merge(hs)
    assert merged.count == sum(h.count for h in hs)
    assert merged.sum_ns == sum(h.sum_ns for h in hs)
    assert merged.max_ns == max(h.max_ns for h in hs)
    for q in (0.5, 0.9, 0.99):
        assert min(h.quantile(q) for h in hs) <= merged.quantile(q) <= max(
            h.quantile(q) for h in hs)
    assert napikit.Histogram.merge([hs[0], hs[0]]).summary().p99_ns == hs[0].quantile(0.99)
