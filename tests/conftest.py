"""Shared fixtures of napikit's test suite: policies, scenarios, plugin managers, runs.

Every test compares runs or checks relations a correct model must satisfy; none
hard-codes an outcome of the model, and none measures wall time.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

import attrs
import pytest
from hypothesis import settings
from hypothesis import strategies as st

import napikit
import napikit.plugins
import napikit.scenarios
import napikit.testing.profiles  # registers napikit's hypothesis profiles
from napikit import Config
from napikit.testing import strategies

# ----------------------------------------------------------------- hypothesis profiles

#: napikit.testing.profiles registers "napikit" (deterministic: the same examples every
#: run, no example database), the default here, and "napikit-long" (ten times the
#: examples, randomized). Select one with HYPOTHESIS_PROFILE (tox passes it through).
#: Loaded here, before any test module is decorated, so examples(n) scales with it.
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


# ----------------------------------------------------------------- child processes


@attrs.frozen
class Child:
    """How a test starts ``python -m napikit`` in a child process that imports the napikit
    this session imported. ``-P`` keeps the current directory off the child's path: in a
    checkout it holds napikit/ uncompiled (tox installs a built wheel instead)."""

    python: list[str]
    env: dict[str, str]

    def napikit(self, *args: str) -> list[str]:
        """The command line of ``napikit ARGS``."""
        return [*self.python, "-m", "napikit", *args]


@pytest.fixture(scope="session")
def child() -> Child:
    """A :class:`Child` for this session's napikit."""
    parent = os.path.dirname(os.path.dirname(napikit.__file__))
    path = os.pathsep.join([parent, *filter(None, [os.environ.get("PYTHONPATH")])])
    return Child(python=[sys.executable, "-P"], env={**os.environ, "PYTHONPATH": path})


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
    """A CPU's time at work: neither idle nor offline."""
    return sum(v for k, v in attrs.asdict(cpu_time).items() if k not in ("idle", "offline"))


@pytest.fixture(scope="session")
def busy() -> Callable[[napikit.CpuTime], int]:
    """``busy(cpu_time)``: a CPU's time at work (neither idle nor offline)."""
    return busy_ns


# ----------------------------------------------------------------- fuzzed configurations


@pytest.fixture(scope="session")
def configs() -> Callable[..., st.SearchStrategy[Config]]:
    """``configs(policy, rps=None, traffic=("nic", "loopback"), max_packets=20_000, ...)``:
    a hypothesis strategy of whole runs under ``policy`` (draw it with ``st.data()``);
    see :func:`napikit.testing.strategies.configs`."""
    return strategies.configs
