"""napikit's policy conformance kit: one pytest run tells whether a policy conforms.

Install napikit (with its ``test`` extra) next to the policy's package and run::

    pytest --napikit-policy NAME [--napikit-option KEY=VALUE ...]

The ``pytest11`` entry point loads :mod:`napikit.testing.plugin`, which adds the suite
(:mod:`napikit.testing.suite`) to the collection, so the project needs no test of its
own. Alternatively, in the manner of SQLAlchemy's dialect compliance suite, a policy
package keeps the suite among its tests with a one-line module::

    # tests/test_napikit_conformance.py
    from napikit.testing.suite import *  # noqa: F401,F403

and selects the policy with ``--napikit-policy NAME`` (``addopts`` in its pytest
configuration works too) or ``NAPIKIT_POLICY=NAME``. A policy that is not installed
(under development, or a deliberately broken one) is reached by overriding the
session fixture ``napikit_plugins`` to return a plugin manager that has it
(``napikit.plugins.plugin_manager()`` plus ``pm.register(plugin)``).

The suite runs the engine's invariants over hypothesis-generated configurations
(:mod:`napikit.testing.strategies`) and checks the decision hooks' contract. What a
policy declares in ``unsupported=`` (:data:`napikit.plugins.FEATURES`) is never
generated, and the checks dedicated to it skip with the reason.

This package imports without hypothesis (the plugin loads in every pytest run where
napikit is installed); the suite, the strategies and :mod:`napikit.testing.profiles`
need it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import pluggy
import pytest
from attrs import field, frozen

from napikit import Config, Result, Simulation
from napikit.decision import CompiledPolicy
from napikit.errors import ConfigError, PolicyError
from napikit.plugins import FEATURES, PolicySpec, registry

if TYPE_CHECKING:
    from hypothesis import strategies as st

__all__ = ["PolicyUnderTest"]


@frozen
class PolicyUnderTest:
    """The policy the conformance suite checks (the ``napikit_policy`` fixture's value):
    its name, options, :class:`~napikit.PolicySpec` and plugin manager (``None``: the
    installed plugins)."""

    name: str
    options: Mapping[str, Any]
    spec: PolicySpec = field(repr=False)
    plugins: pluggy.PluginManager | None = field(default=None, eq=False, repr=False)

    @classmethod
    def select(
        cls,
        name: str | None,
        options: Mapping[str, Any] | None = None,
        plugins: pluggy.PluginManager | None = None,
    ) -> PolicyUnderTest:
        """Look ``name`` up and validate ``options``: a :class:`~napikit.ConfigError`
        lists the installed policies (or the policy's options) when one is wrong."""
        reg = registry(plugins)
        if not name:
            raise ConfigError("--napikit-policy", "one of: " + ", ".join(reg.names()), name)
        spec = reg.get(name)
        options = dict(options or {})
        spec.build(options)
        return cls(name, options, spec, plugins)

    @property
    def label(self) -> str:
        """``policy 'NAME'`` with its options, for failure messages."""
        opts = ", ".join(f"{k}={v!r}" for k, v in sorted(self.options.items()))
        return f"policy {self.name!r}" + (f" ({opts})" if opts else "")

    def supports(self, feature: str) -> bool:
        """Whether the policy leaves ``feature`` (a key of ``FEATURES``) supported."""
        return feature not in self.spec.unsupported

    def require(self, feature: str) -> None:
        """Skip the calling test, with the reason, unless the policy supports ``feature``."""
        if not self.supports(feature):
            pytest.skip(f"policy {self.name} does not support {FEATURES[feature]}")

    def configs(
        self, require: str | None = None, max_packets: int = 20_000
    ) -> st.SearchStrategy[Config]:
        """Whole runs under this policy that use only features it supports (and
        ``require``, when given)."""
        from napikit.testing.strategies import supported_configs

        return supported_configs(
            {"policy": self.name, "policy_options": dict(self.options)},
            self.spec.unsupported, require, max_packets,
        )

    def decision(self) -> CompiledPolicy:
        """A fresh decision object, as a run builds one."""
        return self.spec.build(self.options)

    def run(self, config: Config) -> Result:
        """Run ``config``; a policy fault fails the test with napikit's one-line report
        (policy, hook, CPU, simulated time) and the policy's own exception as cause."""
        try:
            return Simulation(config, plugins=self.plugins).run()
        except PolicyError as e:
            raise AssertionError(str(e)) from e.__cause__
