"""The conformance kit: every policy of the ``policy`` fixture passes it, and the kit's
pytest plugin selects, collects, skips and refuses as documented.

The suite's tests are imported below (the one-line use a policy package makes), so
they run here for each policy variant; the kit's command line is checked with
``pytester`` in fresh, empty projects.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from napikit import Config, LoopbackUdp, NicIrq
from napikit.plugins import FEATURES
from napikit.testing import PolicyUnderTest, strategies, suite
from napikit.testing.profiles import examples
from napikit.testing.suite import *  # noqa: F401,F403

pytest_plugins = ["pytester"]

#: Tests a full suite run collects: each test once, the feature test once per feature.
SUITE_TESTS = len(suite.__all__) - 1 + len(FEATURES)


@pytest.fixture(scope="session")
def napikit_policy(policy) -> PolicyUnderTest:
    """The kit's policy under test: each variant of the ``policy`` fixture in turn."""
    return PolicyUnderTest.select(policy["policy"], policy["policy_options"])


def test_suite_exports_every_test():
    """``from napikit.testing.suite import *`` brings every test of the suite."""
    assert set(suite.__all__) == {name for name in vars(suite) if name.startswith("test_")}


# ----------------------------------------------------------------- strategies


def _uses(config: Config, feature: str) -> bool:
    """Whether ``config`` uses the :data:`~napikit.plugins.FEATURES` entry ``feature``."""
    kinds = {"nic": NicIrq, "loopback": LoopbackUdp}
    if feature in kinds:
        return any(isinstance(w, kinds[feature]) for w in config.workloads)
    if feature == "rps":
        return any(getattr(w, "rps_cpus", ()) for w in config.workloads)
    if feature == "hotplug":
        return bool(config.hotplug or config.offline_cpus)
    if feature == "force_irqthreads":
        return config.kernel.force_irqthreads or config.kernel.preempt_rt
    return getattr(config.kernel, feature)


@pytest.mark.parametrize("feature", sorted(FEATURES))
@settings(max_examples=examples(30))
@given(data=st.data())
def test_unsupported_feature_is_never_generated(feature, data):
    """A policy's configurations never use a feature it declares unsupported."""
    config = data.draw(strategies.supported_configs({}, unsupported=[feature]))
    assert not _uses(config, feature)


@pytest.mark.parametrize("feature", sorted(FEATURES))
@settings(max_examples=examples(30))
@given(data=st.data())
def test_required_feature_is_always_generated(feature, data):
    """Configurations for a feature's own check always use that feature."""
    config = data.draw(strategies.supported_configs({}, require=feature))
    assert _uses(config, feature)


# ----------------------------------------------------------------- the pytest plugin


@pytest.fixture
def kit(pytester, monkeypatch):
    """``kit(*args)``: pytest with the kit's plugin in an empty project, with no
    NAPIKIT_POLICY from the environment."""
    monkeypatch.delenv("NAPIKIT_POLICY", raising=False)
    return pytester.runpytest


def test_option_alone_collects_and_passes_the_suite(kit):
    """``pytest --napikit-policy NAME`` in a project without tests runs the whole suite."""
    result = kit("--napikit-policy", "ksoftirqd")
    result.assert_outcomes(passed=SUITE_TESTS)
    result.stdout.fnmatch_lines(["napikit conformance: policy ksoftirqd"])


def test_policy_options_reach_the_policy(kit, pytester):
    """``--napikit-option KEY=VALUE`` values are parsed and given to the policy."""
    pytester.makepyfile(test_options="""
        def test_options(napikit_policy):
            assert napikit_policy.options == {"fast_path": False}
            assert napikit_policy.label == "policy 'backlog-threads' (fast_path=False)"
    """)
    result = kit("--napikit-policy", "backlog-threads", "--napikit-option", "fast_path=false",
                 "-k", "test_options")
    result.assert_outcomes(passed=1)


def test_unknown_policy_ends_the_session_listing_installed_ones(kit):
    """A policy name nobody installed is a usage error naming the installed policies."""
    result = kit("--napikit-policy", "no-such-policy")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stdout.fnmatch_lines([
        "*napikit conformance: policy: must be one of: *backlog-threads, ksoftirqd, "
        "softirq-ipi* (got 'no-such-policy')*",
    ])
    assert "Traceback" not in result.stdout.str()


def test_unknown_policy_option_ends_the_session_listing_its_options(kit):
    """An option the policy does not take is a usage error naming the ones it takes."""
    result = kit("--napikit-policy", "backlog-threads", "--napikit-option", "fastpath=1")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stdout.fnmatch_lines(["*policy_options: must be one of: fast_path (got 'fastpath')*"])


def test_option_without_a_value_is_a_usage_error(kit):
    """``--napikit-option`` needs KEY=VALUE."""
    result = kit("--napikit-policy", "backlog-threads", "--napikit-option", "fast_path")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*expected KEY=VALUE (got 'fast_path')*"])


def test_importing_module_takes_the_policy_from_the_environment(kit, pytester, monkeypatch):
    """A module importing the suite checks the policy NAPIKIT_POLICY names."""
    pytester.makepyfile(test_kit="from napikit.testing.suite import *  # noqa")
    monkeypatch.setenv("NAPIKIT_POLICY", "softirq-ipi")
    result = kit("-k", "decision")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["napikit conformance: policy softirq-ipi"])


def test_importing_module_without_a_policy_ends_the_session(kit, pytester):
    """Without ``--napikit-policy`` or NAPIKIT_POLICY the suite says how to pick one."""
    pytester.makepyfile(test_kit="from napikit.testing.suite import *  # noqa")
    result = kit("-k", "decision")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stdout.fnmatch_lines(["*--napikit-policy: must be one of: *softirq-ipi* (got None)*"])


def test_suite_runs_once_beside_a_module_importing_it(kit, pytester):
    """With the option and a module importing the suite, each test is collected once."""
    pytester.makepyfile(test_kit="from napikit.testing.suite import *  # noqa")
    result = kit("--napikit-policy", "softirq-ipi", "--collect-only", "-q")
    ids = [line for line in result.stdout.lines if "::test_" in line]
    assert len(ids) == SUITE_TESTS
    assert all(line.startswith("test_kit.py::") for line in ids)


_NO_FEATURE = """
import napikit, napikit.plugins, pytest

class KernelDefaults:
    "Decides as the kernel does, by leaving every decision to it."

class Plugin:
    @napikit.hookimpl
    def napikit_register_policies(self, registry):
        registry.register("no-{feature}", KernelDefaults, unsupported=["{feature}"])

@pytest.fixture(scope="session")
def napikit_plugins():
    pm = napikit.plugins.plugin_manager()
    pm.register(Plugin())
    return pm
"""


@pytest.mark.parametrize("feature", sorted(FEATURES))
def test_unsupported_feature_is_skipped_with_its_reason(kit, pytester, feature):
    """The check dedicated to a feature the policy declares unsupported skips, saying
    which policy and which feature, and the policy's other checks run."""
    pytester.makeconftest(_NO_FEATURE.format(feature=feature))
    result = kit("--napikit-policy", f"no-{feature}", "-rs", "-k", "feature or remote")
    skipped = 2 if feature == "rps" else 1
    result.assert_outcomes(passed=len(FEATURES) + 1 - skipped, skipped=skipped)
    result.stdout.fnmatch_lines([
        f"SKIPPED * policy no-{feature} does not support {FEATURES[feature]}",
    ])
