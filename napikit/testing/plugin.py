"""The conformance kit's pytest plugin (entry point ``pytest11``, name ``napikit``).

``--napikit-policy NAME`` selects the policy and adds the suite to the collection;
``--napikit-option KEY=VALUE`` sets its options (values parsed by
:func:`napikit.overrides.option_assignment`: true/false, none, int, float or text). Without
the option, ``NAPIKIT_POLICY`` names the policy for a test module that imports the
suite. Fixtures: ``napikit_policy`` (a :class:`~napikit.testing.PolicyUnderTest`) and
``napikit_plugins`` (override it to test a policy that is not installed).

pytest loads this plugin in every run where napikit is installed, so it imports
without hypothesis (and matplotlib): only the suite needs hypothesis, and asking for it
without hypothesis ends the session with a one-line usage error. Where hypothesis is
installed, napikit's profiles (:mod:`napikit.testing.profiles`) are registered.
"""

from __future__ import annotations

import os
from pathlib import Path

import pluggy
import pytest

from napikit.errors import NapikitError
from napikit.overrides import option_assignment
from napikit.testing import PolicyUnderTest

try:
    # Registered before hypothesis' own plugin loads --hypothesis-profile.
    import napikit.testing.profiles  # noqa: F401
except ImportError:
    HYPOTHESIS = False
else:
    HYPOTHESIS = True

#: The suite's file, collected whenever ``--napikit-policy`` is given.
SUITE = Path(__file__).with_name("suite.py")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("napikit", "napikit policy conformance kit")
    group.addoption(
        "--napikit-policy", metavar="NAME",
        help="run napikit's policy conformance suite against the policy NAME "
        "(default for a module importing the suite: $NAPIKIT_POLICY)",
    )
    group.addoption(
        "--napikit-option", metavar="KEY=VALUE", action="append", default=[],
        type=option_assignment, help="an option of that policy (repeatable)",
    )


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("napikit_policy"):
        if not HYPOTHESIS:
            raise pytest.UsageError(
                "napikit conformance: the suite needs hypothesis "
                "(pip install 'napikit[test]')"
            )
        config.args.append(str(SUITE))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # A project whose own module imports the suite would otherwise run it twice.
    if not config.getoption("napikit_policy"):
        return
    imported = {
        getattr(item, "function", None) for item in items if item.path != SUITE
    } - {None}
    twice = [item for item in items
             if item.path == SUITE and getattr(item, "function", None) in imported]
    if twice:
        config.hook.pytest_deselected(items=twice)
        items[:] = [item for item in items if item not in twice]


def _selected(config: pytest.Config) -> str | None:
    return config.getoption("napikit_policy") or os.environ.get("NAPIKIT_POLICY")


def pytest_report_header(config: pytest.Config) -> str | None:
    name = _selected(config)
    if not name:
        return None
    options = " ".join(f"{k}={v!r}" for k, v in config.getoption("napikit_option"))
    return f"napikit conformance: policy {name}" + (f" ({options})" if options else "")


@pytest.fixture(scope="session")
def napikit_plugins() -> pluggy.PluginManager | None:
    """The plugin manager the suite finds policies in (``None``: the installed ones);
    override it to check a policy that is not installed."""
    return None


@pytest.fixture(scope="session")
def napikit_policy(
    request: pytest.FixtureRequest, napikit_plugins: pluggy.PluginManager | None
) -> PolicyUnderTest:
    """The policy under test: ``--napikit-policy`` (else ``NAPIKIT_POLICY``) with the
    ``--napikit-option`` values; a wrong name or option ends the session with napikit's
    one-line error."""
    config = request.config
    try:
        return PolicyUnderTest.select(
            _selected(config), dict(config.getoption("napikit_option")), napikit_plugins
        )
    except NapikitError as e:
        pytest.exit(f"napikit conformance: {e}", returncode=pytest.ExitCode.USAGE_ERROR)
