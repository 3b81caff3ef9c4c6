"""Deliberately broken policies: each fault is caught and reported by name.

The engine reports a policy that raises, returns an invalid decision or never polls a
scheduled backlog with the policy's name, the hook, the CPU and the simulated time;
the conformance kit, run against such a policy, fails and says which.
"""

from __future__ import annotations

import inspect
import textwrap

import pytest

import napikit
from napikit import Action, Config, LoopbackUdp, NicIrq, PolicyError, StallError

pytest_plugins = ["pytester"]

#: Every backlog kick is remote: the sender's flow is steered by RPS to CPU 1.
REMOTE = Config(
    ncpus=2,
    workloads=(LoopbackUdp(senders=(0,), receivers=(1,), rps_cpus=(1,)),),
    packets=2_000,
)
#: Every backlog kick is local: RPS off, the packet is queued on the sending CPU 0.
LOCAL = REMOTE.evolve(workloads=(LoopbackUdp(senders=(0,), receivers=(1,)),))
#: A NIC interrupting CPU 1: softirqs are raised in hard-IRQ context there.
NIC = Config(ncpus=2, workloads=(NicIrq(cpu=1),), packets=2_000)


class DropsRemoteKicks:
    """Forgets to kick a backlog on another CPU (``Action.NONE``)."""

    @napikit.hookimpl
    def napikit_backlog_schedule(self, this_cpu, target_cpu):
        return Action.NONE if this_cpu != target_cpu else None


class SoftirqEverywhere:
    """Raises NET_RX on the deciding CPU even for a remote backlog (the wrong CPU)."""

    @napikit.hookimpl
    def napikit_backlog_schedule(self):
        return Action.SOFTIRQ


class IpiEverywhere:
    """Sends an RPS IPI even to its own CPU."""

    @napikit.hookimpl
    def napikit_backlog_schedule(self):
        return Action.IPI


class ThreadsWithoutThreads:
    """Wakes a backlog thread though its decision object has none."""

    @napikit.hookimpl
    def napikit_backlog_schedule(self):
        return Action.THREAD


class Raises:
    """Has a bug: every backlog decision raises."""

    @napikit.hookimpl
    def napikit_backlog_schedule(self):
        raise RuntimeError("policy bug")


class Returns:
    """Returns ``value`` from the backlog decision."""

    def __init__(self, value):
        self.value = value

    @napikit.hookimpl
    def napikit_backlog_schedule(self):
        return self.value


class SoftirqReturns:
    """Returns ``value`` from the hard-IRQ-exit decision."""

    def __init__(self, value):
        self.value = value

    @napikit.hookimpl
    def napikit_softirq_from_hardirq(self):
        return self.value


class SoftirqRaises:
    """Has a bug: every hard-IRQ-exit decision raises."""

    @napikit.hookimpl
    def napikit_softirq_from_hardirq(self):
        raise KeyError("irq")


@pytest.fixture
def run_broken(with_policy):
    """``run_broken(name, factory, config)``: run ``config`` under the policy ``name``
    built by ``factory``, registered beside the installed plugins."""

    def run(name, factory, config):
        pm = with_policy(name, factory)
        return napikit.Simulation(config.evolve(policy=name), plugins=pm).run()

    return run


# ----------------------------------------------------------------- the engine reports


def test_dropped_kick_trips_the_stall_watchdog(run_broken):
    """A backlog never kicked is reported once unpolled for ``stall_timeout_ns``, with
    the policy, the hook, the stalled CPU and the time."""
    with pytest.raises(StallError) as caught:
        run_broken("drops-kicks", DropsRemoteKicks, REMOTE.evolve(stall_timeout_ns=100_000))
    err = caught.value
    assert (err.policy, err.hook, err.cpu) == ("drops-kicks", "napikit_backlog_schedule", 1)
    assert "the backlog of CPU 1" in str(err)
    assert "not polled for" in str(err)
    assert f"watchdog at t={err.time_ns} ns" in str(err)
    assert str(err).startswith("policy 'drops-kicks', hook napikit_backlog_schedule:")


def test_dropped_kick_is_reported_when_the_run_ends(run_broken):
    """A backlog still scheduled when the events run out is reported even before the
    watchdog's timeout (the default 1 s is longer than this run)."""
    with pytest.raises(StallError) as caught:
        run_broken("drops-kicks", DropsRemoteKicks, REMOTE)
    err = caught.value
    assert (err.policy, err.hook, err.cpu) == ("drops-kicks", "napikit_backlog_schedule", 1)
    assert "ran out of events" in str(err)
    assert f"watchdog at t={err.time_ns} ns" in str(err)


def test_softirq_for_a_remote_cpu_is_reported(run_broken):
    """Processing a remote backlog on the deciding CPU is refused, naming both CPUs."""
    with pytest.raises(PolicyError) as caught:
        run_broken("softirq-everywhere", SoftirqEverywhere, REMOTE)
    err = caught.value
    assert type(err) is PolicyError
    assert (err.policy, err.hook) == ("softirq-everywhere", "napikit_backlog_schedule")
    assert "returned SOFTIRQ for remote CPU 1" in str(err)
    assert "(on CPU 0 at t=" in str(err)


def test_ipi_for_the_local_cpu_is_reported(run_broken):
    """An RPS IPI to the deciding CPU itself is refused."""
    with pytest.raises(PolicyError) as caught:
        run_broken("ipi-everywhere", IpiEverywhere, LOCAL)
    assert caught.value.hook == "napikit_backlog_schedule"
    assert "returned IPI for the local CPU" in str(caught.value)
    assert "(on CPU 0 at t=" in str(caught.value)


def test_thread_kick_without_backlog_threads_is_reported(run_broken):
    """A THREAD kick from a decision object without backlog threads is refused."""
    with pytest.raises(PolicyError) as caught:
        run_broken("threads-without-threads", ThreadsWithoutThreads, REMOTE)
    assert "returned THREAD but the policy has no backlog threads" in str(caught.value)
    assert "(on CPU 0 at t=" in str(caught.value)


def test_raising_policy_is_reported_with_its_exception(run_broken):
    """A policy's exception is named in the report and kept as its cause."""
    with pytest.raises(PolicyError) as caught:
        run_broken("raises", Raises, REMOTE)
    err = caught.value
    assert (err.policy, err.hook) == ("raises", "napikit_backlog_schedule")
    assert "raised RuntimeError: policy bug (on CPU 0 at t=" in str(err)
    assert isinstance(err.__cause__, RuntimeError)


# -2 is the core's own failure sentinel: it must not pass for a failure without a cause.
@pytest.mark.parametrize("value", ["fast", 7, -1, -2, 1.5], ids=repr)
def test_invalid_backlog_decision_is_reported(run_broken, value):
    """A backlog decision that is no ``napikit.Action`` is reported with what it was."""
    with pytest.raises(PolicyError) as caught:
        run_broken("returns-garbage", lambda: Returns(value), REMOTE)
    assert caught.value.hook == "napikit_backlog_schedule"
    assert f"returned {value!r}" in str(caught.value)
    assert "(on CPU 0 at t=" in str(caught.value)


@pytest.mark.parametrize("value", [5, "inline"], ids=repr)
def test_invalid_softirq_decision_is_reported(run_broken, value):
    """A hard-IRQ-exit decision that is no ``napikit.SoftirqAction`` is reported with
    the hook and the interrupted CPU."""
    with pytest.raises(PolicyError) as caught:
        run_broken("softirq-garbage", lambda: SoftirqReturns(value), NIC)
    assert caught.value.hook == "napikit_softirq_from_hardirq"
    assert f"returned {value!r}" in str(caught.value)
    assert "(on CPU 1 at t=" in str(caught.value)


def test_raising_softirq_hook_is_reported(run_broken):
    """An exception in ``napikit_softirq_from_hardirq`` is reported with the hook."""
    with pytest.raises(PolicyError) as caught:
        run_broken("softirq-raises", SoftirqRaises, NIC)
    assert caught.value.hook == "napikit_softirq_from_hardirq"
    assert "raised KeyError: 'irq' (on CPU 1 at t=" in str(caught.value)


# ----------------------------------------------------------------- the kit reports


def _kit_conftest(name: str, policy: type) -> str:
    """A conftest that hands the kit a plugin manager with ``policy`` registered as
    ``name`` (the kit's documented way to check a policy that is not installed)."""
    return "\n".join([
        "import napikit, napikit.plugins, pytest",
        "from napikit import Action",
        textwrap.dedent(inspect.getsource(policy)),
        "class Plugin:",
        "    @napikit.hookimpl",
        "    def napikit_register_policies(self, registry):",
        f"        registry.register({name!r}, {policy.__name__})",
        "@pytest.fixture(scope='session')",
        "def napikit_plugins():",
        "    pm = napikit.plugins.plugin_manager()",
        "    pm.register(Plugin())",
        "    return pm",
    ])


@pytest.mark.parametrize(
    "name, policy, contract_test, contract_failure, run_failure",
    [
        ("drops-kicks", DropsRemoteKicks, "test_backlog_decision_never_drops_the_kick",
         "returned NONE (a lost kick) at BacklogCall(this_cpu=0, target_cpu=1,",
         "stall: the backlog of CPU *, scheduled at t=* ns by CPU * with decision NONE"),
        ("softirq-everywhere", SoftirqEverywhere,
         "test_remote_backlog_is_never_kicked_by_a_local_softirq",
         "returned SOFTIRQ for a remote CPU at BacklogCall(this_cpu=0, target_cpu=1,",
         "returned SOFTIRQ for remote CPU *; a softirq can only be raised on the local CPU"),
        ("raises", Raises, "test_backlog_decision_is_an_action",
         "raised RuntimeError: policy bug at BacklogCall(this_cpu=0, target_cpu=0,",
         "raised RuntimeError: policy bug (on CPU * at t=* ns)"),
    ],
    ids=["drops-a-kick", "wrong-cpu", "raises"],
)
def test_kit_fails_a_broken_policy_naming_it(pytester, name, policy, contract_test,
                                            contract_failure, run_failure):
    """The conformance suite fails a broken policy, in its decision contract and in its
    runs, and each failure names the policy and the hook."""
    pytester.makeconftest(_kit_conftest(name, policy))
    # One run test and the contract test that targets the fault keep this short.
    result = pytester.runpytest(
        "--napikit-policy", name, "--tb=short",
        "-k", f"test_every_packet_is_delivered_dropped_or_queued or {contract_test}",
    )
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines([
        f"E * policy {name!r}, hook napikit_backlog_schedule: {contract_failure}*",
    ])
    result.stdout.fnmatch_lines([
        f"E * policy {name!r}, hook napikit_backlog_schedule: {run_failure}*",
    ])
