"""Shared fixtures of napikit's test suite: policies, scenarios, plugin managers, runs.

Every test compares runs or checks relations a correct model must satisfy; none
hard-codes an outcome of the model, and none measures wall time.
"""

from __future__ import annotations

import os
from typing import Any, Callable

import attrs
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

import napikit
import napikit.plugins
import napikit.scenarios
from napikit import Config, CostModel, KernelParams, LoopbackUdp, NicIrq

# ----------------------------------------------------------------- hypothesis profiles

#: The default profile is deterministic (same examples every run, no example database)
#: so the suite passes or fails the same way everywhere; "napikit-long" hunts wider.
#: Select one with HYPOTHESIS_PROFILE (tox passes it through).
settings.register_profile(
    "napikit",
    max_examples=50,
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "napikit-long",
    parent=settings.get_profile("napikit"),
    max_examples=500,
    derandomize=False,
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "napikit"))

# ----------------------------------------------------------------- policies

#: Every shipped policy, plus backlog-threads without its local fast path (the RFC).
_ALL_POLICIES: list[tuple[str, dict[str, Any], str]] = [
    ("softirq-ipi", {}, "softirq-ipi"),
    ("ksoftirqd", {}, "ksoftirqd"),
    ("backlog-threads", {}, "backlog-threads"),
    ("backlog-threads", {"fast_path": False}, "backlog-threads-nofast"),
]


def _selected_policies() -> list[tuple[str, dict[str, Any], str]]:
    """The policy variants the ``policy`` fixture runs: all of them, or those of the
    policy named by NAPIKIT_POLICY (tox runs one environment per policy; an installed
    third-party policy named there runs with its default options)."""
    name = os.environ.get("NAPIKIT_POLICY")
    if not name:
        return _ALL_POLICIES
    return [p for p in _ALL_POLICIES if p[0] == name] or [(name, {}, name)]


POLICIES = [(name, options) for name, options, _ in _selected_policies()]
POLICY_IDS = [ident for _, _, ident in _selected_policies()]

#: The cost model with every cost 0.
ZERO_COSTS = napikit.CostModel(**{a.name: 0 for a in attrs.fields(napikit.CostModel)})


@pytest.fixture(scope="session", params=POLICIES, ids=POLICY_IDS)
def policy(request) -> dict[str, Any]:
    """``policy=`` and ``policy_options=`` of one policy variant, for ``Config.evolve``."""
    name, options = request.param
    return {"policy": name, "policy_options": dict(options)}


@pytest.fixture(scope="session")
def zero_costs() -> napikit.CostModel:
    """A cost model in which everything is free."""
    return ZERO_COSTS


# ----------------------------------------------------------------- runs


def run_config(config: napikit.Config, plugins=None) -> napikit.Result:
    """Run ``config`` once (with ``plugins`` as the plugin manager, if given)."""
    return napikit.Simulation(config, plugins=plugins).run()


@pytest.fixture(scope="session")
def run() -> Callable[..., napikit.Result]:
    """``run(config, plugins=None)``: one simulation's result."""
    return run_config


@pytest.fixture(scope="session")
def scenario() -> Callable[..., napikit.Config]:
    """``scenario(name, **changes)``: a shipped scenario's config, evolved by ``changes``."""

    def get(name: str, **changes: Any) -> napikit.Config:
        config = napikit.scenarios.get(name).config
        return config.evolve(**changes) if changes else config

    return get


@pytest.fixture(scope="session")
def plugins() -> Callable[..., Any]:
    """``plugins(*objects, entrypoints=True)``: a plugin manager with the installed
    plugins (unless ``entrypoints=False``) and ``objects`` registered."""

    def make(*objects: Any, entrypoints: bool = True):
        pm = napikit.plugins.plugin_manager(load_entrypoints=entrypoints)
        for obj in objects:
            pm.register(obj)
        return pm

    return make


def policy_plugin(name: str, factory: Callable[..., Any], options=()) -> object:
    """A plugin object that registers one policy ``name`` built by ``factory``."""

    class _Plugin:
        @napikit.hookimpl
        def napikit_register_policies(self, registry):
            registry.register(name, factory, options=list(options), description=name)

    plugin = _Plugin()
    plugin.__name__ = f"test-plugin-{name}"
    return plugin


@pytest.fixture(scope="session")
def with_policy(plugins) -> Callable[..., Any]:
    """``with_policy(name, factory, options=())``: a plugin manager with the installed
    plugins and one more policy."""

    def make(name: str, factory: Callable[..., Any], options=()):
        return plugins(policy_plugin(name, factory, options))

    return make


def busy_ns(cpu_time: napikit.CpuTime) -> int:
    """A CPU's non-idle time."""
    return sum(v for k, v in attrs.asdict(cpu_time).items() if k != "idle")


@pytest.fixture(scope="session")
def busy() -> Callable[[napikit.CpuTime], int]:
    """``busy(cpu_time)``: a CPU's non-idle time."""
    return busy_ns


# ----------------------------------------------------------------- fuzzed configurations

#: Input stops after at most 20k packets; 2 s of simulated drain is plenty to empty
#: every queue, so a run that is not quiescent by then is itself a finding.
GENEROUS_DRAIN_NS = 2_000_000_000


def _cost_values() -> st.SearchStrategy[int]:
    return st.one_of(st.just(0), st.integers(0, 3_000), st.integers(0, 200))


@st.composite
def cost_models(draw) -> CostModel:
    """Random costs: each field 0 (often) or up to a few microseconds."""
    return CostModel(**{a.name: draw(_cost_values()) for a in attrs.fields(CostModel)})


def _cpus(ncpus: int) -> st.SearchStrategy[int]:
    return st.integers(0, ncpus - 1)


def _mask(ncpus: int) -> st.SearchStrategy[list[int]]:
    """A random subset of the CPUs (often empty: RPS off)."""
    return st.one_of(
        st.just([]),
        st.lists(_cpus(ncpus), unique=True, min_size=1, max_size=min(ncpus, 8)),
        st.just(list(range(ncpus))),
    )


@st.composite
def nic_irqs(draw, ncpus: int, rps: bool | None = None) -> NicIrq:
    """A non-NAPI NIC from light load (10 kpps) to far beyond what a CPU can absorb."""
    mask = [] if rps is False else draw(_mask(ncpus))
    if rps and not mask:
        mask = draw(st.lists(_cpus(ncpus), unique=True, min_size=1, max_size=min(ncpus, 8)))
    return NicIrq(
        cpu=draw(_cpus(ncpus)),
        rate_pps=draw(st.one_of(st.floats(10_000, 5_000_000), st.sampled_from([1e5, 1e6, 5e6]))),
        arrival=draw(st.sampled_from(["constant", "poisson", "bursty"])),
        burst=draw(st.integers(1, 64)),
        flows=draw(st.integers(1, 2048)),
        flow_dist=draw(st.sampled_from(["uniform", "zipf"])),
        zipf_s=draw(st.floats(0, 3)),
        rps_cpus=mask,
    )


@st.composite
def loopbacks(draw, ncpus: int, rps: bool | None = None) -> LoopbackUdp:
    """Loopback UDP: 1-3 sender/receiver pairs on random CPUs, closed loop or paced."""
    n = draw(st.integers(1, min(3, ncpus)))
    senders = draw(st.lists(_cpus(ncpus), unique=True, min_size=n, max_size=n))
    receivers = draw(st.lists(_cpus(ncpus), unique=True, min_size=n, max_size=n))
    mask = [] if rps is False else draw(_mask(ncpus))
    if rps and not mask:
        mask = draw(st.lists(_cpus(ncpus), unique=True, min_size=1, max_size=min(ncpus, 8)))
    return LoopbackUdp(
        senders=senders,
        receivers=receivers,
        flows=draw(st.integers(1, 16)),
        rate_pps=draw(st.one_of(st.none(), st.floats(10_000, 2_000_000))),
        rps_cpus=mask,
    )


@st.composite
def kernels(draw, ncpus: int) -> KernelParams:
    """Kernel parameters around and far below the defaults, so queues overflow."""
    return KernelParams(
        hz=draw(st.sampled_from([100, 250, 300, 1000])),
        netdev_max_backlog=draw(st.one_of(st.integers(4, 64), st.integers(4, 1000))),
        dev_weight=draw(st.one_of(st.just(64), st.integers(1, 128))),
        netdev_budget=draw(st.one_of(st.just(300), st.integers(1, 600))),
        netdev_budget_usecs=draw(st.one_of(st.none(), st.integers(1, 8_000))),
        flow_limit_cpu_bitmap=draw(_mask(ncpus)),
        flow_limit_table_len=draw(st.sampled_from([1, 64, 4096])),
        force_irqthreads=draw(st.booleans()),
        idle_poll=draw(st.booleans()),
        max_softirq_restart=draw(st.integers(1, 10)),
        max_softirq_time_ms=draw(st.integers(1, 4)),
        rmem_default=draw(st.one_of(st.just(212_992), st.integers(768, 100_000))),
    )


@st.composite
def config_strategy(draw, policy: dict, rps: bool | None = None, nic_only: bool = False,
            max_packets: int = 20_000) -> Config:
    """A whole run: topology, workloads, kernel, costs and seed; ``rps`` forces RPS on
    (True) or off (False) for every workload."""
    ncpus = draw(st.one_of(st.integers(1, 4), st.integers(1, 64)))
    kinds = st.just("nic") if nic_only else st.sampled_from(["nic", "lo"])
    workloads = [
        draw(nic_irqs(ncpus, rps) if draw(kinds) == "nic" else loopbacks(ncpus, rps))
        for _ in range(draw(st.integers(1, 3)))
    ]
    return Config(
        ncpus=ncpus,
        workloads=workloads,
        kernel=draw(kernels(ncpus)),
        costs=draw(cost_models()),
        packets=draw(st.integers(2_000, max_packets)),
        drain_ns=GENEROUS_DRAIN_NS,
        seed=draw(st.integers(0, 2**32)),
        **policy,
    )


@pytest.fixture(scope="session")
def configs() -> Callable[..., st.SearchStrategy[Config]]:
    """``configs(policy, rps=None, nic_only=False, max_packets=20_000)``: a hypothesis
    strategy of whole runs under ``policy`` (draw it with ``st.data()``)."""
    return config_strategy
