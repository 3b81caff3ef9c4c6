"""The research API: :func:`simulate` and :class:`Simulation`."""

from __future__ import annotations

from typing import Any

import pluggy

import napikit
from napikit._core import Sim
from napikit.config import Config
from napikit.decision import Action, InvalidDecision
from napikit.errors import PolicyError, StallError
from napikit.plugins import (
    PolicyRegistry,
    call_each,
    check_plugins,
    default_manager,
    registry,
)
from napikit.results import Result
from napikit.scenario_file import config_dict, fingerprint_of
from napikit.trace import Timeline, TraceOptions, timeline


class Simulation:
    """One configured run: the policy is resolved and validated on construction.

    >>> sim = Simulation(Config(policy="backlog-threads", packets=10_000))
    >>> result = sim.run()
    >>> result.conserved
    True
    """

    def __init__(self, config: Config, *, plugins: pluggy.PluginManager | None = None,
                 trace: TraceOptions | None = None) -> None:
        if not isinstance(config, Config):
            raise TypeError("Simulation needs a napikit.Config")
        if trace is not None and not isinstance(trace, TraceOptions):
            raise TypeError("Simulation's trace is a napikit.TraceOptions")
        self.config = config
        self.trace = trace
        #: The run's :class:`~napikit.Timeline` once it has run, if ``trace`` asked.
        self.timeline: Timeline | None = None
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
        call_each(pm, "napikit_run_start", config=self.config)
        if self.trace is None:
            sim = Sim(self.config, self.decision)
        else:
            from napikit._core_traced import Sim as TracedSim

            sim = TracedSim(self.config, self.decision)
            sim.record_trace(self.trace.start_ns,
                             self.trace.end_ns if self.trace.end_ns is not None else 2**62,
                             self.trace.max_events)
        fault = sim.run()
        if fault is not None:
            self._raise(fault)
        raw = sim.raw_results()
        if self.trace is not None:
            self.timeline = timeline(sim, self.config.ncpus, raw["sim_time_ns"], self.trace)
        if raw["queued"] != raw["packets_in_use"]:
            # Nothing lost: every packet alive in the pool must sit in some queue.
            raise AssertionError(
                f"napikit bug: {raw['packets_in_use']} packets in use but {raw['queued']} "
                f"queued (policy {self.spec.name!r}, seed {self.config.seed})"
            )
        # The canonical form (Config.to_dict's layout, each value of its declared
        # type), so that a replay of the result rebuilds it byte for byte.
        config = config_dict(self.config)
        self._result = Result.from_raw(
            raw,
            napikit_version=napikit.__version__,
            policy=self.spec.name,
            policy_package=self.spec.package,
            seed=self.config.seed,
            config=config,
            fingerprint=fingerprint_of(config, napikit.__version__),
        )
        call_each(pm, "napikit_run_end", config=self.config, result=self._result)
        return self._result


    def _raise(self, fault: dict[str, Any]) -> None:
        name = self.spec.name
        if fault["kind"] == "stall":
            try:
                decision = Action(fault["action"]).name
            except ValueError:
                decision = str(fault["action"])
            waited = fault["time_ns"] - fault["since_ns"]
            why = (
                "the run ran out of events, so nothing will ever poll it"
                if fault["final"]
                else f"not polled for {waited} ns (stall_timeout_ns="
                f"{self.config.stall_timeout_ns})"
            )
            raise StallError(
                name, fault["hook"],
                f"stall: the backlog of CPU {fault['cpu']}, scheduled at "
                f"t={fault['since_ns']} ns by CPU {fault['sched_by']} with decision "
                f"{decision}, is still scheduled: {why}; {fault['queued']} packets wait "
                f"in it (watchdog at t={fault['time_ns']} ns)",
                fault["cpu"], fault["time_ns"],
            )
        where = f"on CPU {fault['cpu']} at t={fault['time_ns']} ns"
        err = fault["error"]
        if fault["message"]:
            detail = fault["message"]
        elif isinstance(err, InvalidDecision):
            detail = str(err)
        else:
            detail = f"raised {type(err).__name__}: {err}"
        raise PolicyError(name, fault["hook"], f"{detail} ({where})") from err


def simulate(config: Config | None = None, **fields: Any) -> Result:
    """Run one simulation: ``simulate(Config(...))`` or ``simulate(ncpus=4, ...)``.

    Keyword fields override those of ``config`` (or of the default :class:`Config`).
    """
    config = (config or Config()).evolve(**fields) if fields else (config or Config())
    return Simulation(config).run()
