"""The research API: :func:`simulate` and :class:`Simulation`."""

from __future__ import annotations

from typing import Any

import pluggy

import napikit
from napikit._core import Sim
from napikit.config import Config
from napikit.errors import PolicyError
from napikit.plugins import PolicyRegistry, check_plugins, default_manager, registry
from napikit.results import Result


class Simulation:
    """One configured run: the policy is resolved and validated on construction.

    >>> sim = Simulation(Config(policy="backlog-threads", packets=10_000))
    >>> result = sim.run()
    >>> result.conserved
    True
    """

    def __init__(self, config: Config, *, plugins: pluggy.PluginManager | None = None) -> None:
        if not isinstance(config, Config):
            raise TypeError("Simulation needs a napikit.Config")
        self.config = config
        if plugins is not None:
            check_plugins(plugins)
        self._pm = plugins
        reg: PolicyRegistry = registry(plugins)
        self.spec = reg.get(config.policy)
        self.decision = self.spec.build(config.options)
        self._result: Result | None = None

    def run(self) -> Result:
        """Run the model once and return its :class:`~napikit.results.Result`."""
        if self._result is not None:
            return self._result
        pm = self._pm or default_manager()
        pm.hook.napikit_run_start(config=self.config)
        sim = Sim(self.config, self.decision)
        fault = sim.run()
        if fault is not None:
            where = f"on CPU {fault['cpu']} at t={fault['time_ns']} ns"
            err = fault["error"]
            detail = fault["message"] or f"raised {type(err).__name__}: {err}"
            raise PolicyError(self.spec.name, fault["hook"], f"{detail} ({where})") from err
        self._result = Result.from_raw(
            sim.raw_results(),
            napikit_version=napikit.__version__,
            policy=self.spec.name,
            policy_package=self.spec.package,
            seed=self.config.seed,
            config=self.config.to_dict(),
        )
        pm.hook.napikit_run_end(config=self.config, result=self._result)
        return self._result


def simulate(config: Config | None = None, **fields: Any) -> Result:
    """Run one simulation: ``simulate(Config(...))`` or ``simulate(ncpus=4, ...)``.

    Keyword fields override those of ``config`` (or of the default :class:`Config`).
    """
    config = (config or Config()).evolve(**fields) if fields else (config or Config())
    return Simulation(config).run()
