"""napikit's policy conformance suite, run against the ``napikit_policy`` fixture's policy.

``pytest --napikit-policy NAME`` collects this module by itself; a policy package may
instead import it into one of its test modules::

    from napikit.testing.suite import *  # noqa: F401,F403

Runs: the engine's invariants over hypothesis-generated configurations (deterministic:
derandomized, no example database). Decisions: the hook contract over a grid of calls
(8 CPUs, every pair, rising then falling ``last_batch``, time moving forward), made
directly on the policy's decision object. Every failure names the policy; a fault in a
run also names the hook, the CPU and the simulated time.
"""

from __future__ import annotations

from itertools import product
from typing import NamedTuple

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from napikit import Action, Result, SoftirqAction
from napikit.decision import CompiledPolicy
from napikit.plugins import FEATURES
from napikit.testing import PolicyUnderTest
from napikit.testing.profiles import examples

__all__ = [
    "test_backlog_decision_is_an_action",
    "test_backlog_decision_never_drops_the_kick",
    "test_decisions_are_deterministic",
    "test_drained_run_leaves_no_backlog_unpolled",
    "test_drained_run_leaves_nothing_queued",
    "test_each_flow_is_delivered_in_order",
    "test_every_packet_is_delivered_dropped_or_queued",
    "test_local_backlog_is_never_kicked_by_ipi",
    "test_no_kick_is_lost",
    "test_packets_are_processed_on_their_backlog_cpu",
    "test_policy_conforms_with_each_feature",
    "test_remote_backlog_is_never_kicked_by_a_local_softirq",
    "test_run_drains_without_a_stall",
    "test_same_config_twice_gives_identical_json",
    "test_softirq_decision_is_a_softirq_action",
    "test_thread_kick_needs_backlog_threads",
]

#: Deterministic (derandomized, no example database), whatever profile is loaded; the
#: count scales with it (50 under napikit's default profile).
_RUNS = settings(
    max_examples=examples(50),
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    # The explain phase traces every line of each failing case: seconds per failing
    # test, to tell the user which lines of napikit ran.
    phases=[phase for phase in Phase if phase is not Phase.explain],
)

# ----------------------------------------------------------------- run checks


def _run(policy: PolicyUnderTest, data: st.DataObject, require: str | None = None,
         max_packets: int = 20_000) -> Result:
    return policy.run(data.draw(policy.configs(require, max_packets)))


def _check_conserved(policy: PolicyUnderTest, r: Result) -> None:
    assert r.conserved, (
        f"{policy.label}: {r.arrived} packets arrived but {r.delivered} were delivered, "
        f"{r.drops.total} dropped and {r.queued} are still queued"
    )


def _check_in_order(policy: PolicyUnderTest, r: Result) -> None:
    assert r.reordered == 0, (
        f"{policy.label}: {r.reordered} packets overtook an earlier packet of their flow"
    )


def _check_on_their_cpu(policy: PolicyUnderTest, r: Result) -> None:
    assert r.wrong_cpu == 0, (
        f"{policy.label}: {r.wrong_cpu} packets were processed by a CPU other than the "
        "one whose backlog held them"
    )


def _check_no_lost_kick(policy: PolicyUnderTest, r: Result) -> None:
    assert r.lost_kicks == 0, (
        f"{policy.label}: {r.lost_kicks} backlog kicks were dropped (Action.NONE)"
    )


def _check_drained(policy: PolicyUnderTest, r: Result) -> None:
    assert r.quiescent, (
        f"{policy.label}: still busy {r.sim_time_ns - r.input_duration_ns} ns after the "
        f"input stopped, with {r.queued} packets queued"
    )


def _check_nothing_queued(policy: PolicyUnderTest, r: Result) -> None:
    if r.quiescent:
        assert r.queued == 0, f"{policy.label}: {r.queued} packets queued in a drained run"


def _check_no_backlog_unpolled(policy: PolicyUnderTest, r: Result) -> None:
    if r.quiescent:
        assert r.unpolled_backlogs == 0, (
            f"{policy.label}: {r.unpolled_backlogs} backlogs left scheduled or holding "
            "packets with nobody to poll them in a drained run"
        )


@_RUNS
@given(data=st.data())
def test_every_packet_is_delivered_dropped_or_queued(
    napikit_policy: PolicyUnderTest, data: st.DataObject
) -> None:
    """Conservation: arrived == delivered + dropped (any reason) + still queued."""
    _check_conserved(napikit_policy, _run(napikit_policy, data))


@_RUNS
@given(data=st.data())
def test_each_flow_is_delivered_in_order(
    napikit_policy: PolicyUnderTest, data: st.DataObject
) -> None:
    """No packet of a flow overtakes an earlier one of the same flow."""
    _check_in_order(napikit_policy, _run(napikit_policy, data))


@_RUNS
@given(data=st.data())
def test_packets_are_processed_on_their_backlog_cpu(
    napikit_policy: PolicyUnderTest, data: st.DataObject
) -> None:
    """Every packet is processed by the CPU whose backlog it was queued on."""
    _check_on_their_cpu(napikit_policy, _run(napikit_policy, data))


@_RUNS
@given(data=st.data())
def test_no_kick_is_lost(napikit_policy: PolicyUnderTest, data: st.DataObject) -> None:
    """No backlog that became non-empty is left without a kick."""
    _check_no_lost_kick(napikit_policy, _run(napikit_policy, data))


@_RUNS
@given(data=st.data())
def test_run_drains_without_a_stall(
    napikit_policy: PolicyUnderTest, data: st.DataObject
) -> None:
    """Once input stops the run drains within two simulated seconds, and the stall
    watchdog (``stall_timeout_ns``) never finds a scheduled backlog left unpolled."""
    _check_drained(napikit_policy, _run(napikit_policy, data))


@_RUNS
@given(data=st.data())
def test_drained_run_leaves_nothing_queued(
    napikit_policy: PolicyUnderTest, data: st.DataObject
) -> None:
    """A quiescent run has no packet left in any queue."""
    _check_nothing_queued(napikit_policy, _run(napikit_policy, data))


@_RUNS
@given(data=st.data())
def test_drained_run_leaves_no_backlog_unpolled(
    napikit_policy: PolicyUnderTest, data: st.DataObject
) -> None:
    """A quiescent run has no backlog NAPI left scheduled or holding packets."""
    _check_no_backlog_unpolled(napikit_policy, _run(napikit_policy, data))


@settings(_RUNS, max_examples=examples(20))
@given(data=st.data())
def test_same_config_twice_gives_identical_json(
    napikit_policy: PolicyUnderTest, data: st.DataObject
) -> None:
    """A run is a function of its configuration and seed: byte-identical JSON."""
    config = data.draw(napikit_policy.configs(max_packets=8_000))
    first, second = napikit_policy.run(config).to_json(), napikit_policy.run(config).to_json()
    assert first == second, f"{napikit_policy.label}: two runs of one configuration differ"


@pytest.mark.parametrize("feature", sorted(FEATURES))
@_RUNS
@given(data=st.data())
def test_policy_conforms_with_each_feature(
    napikit_policy: PolicyUnderTest, feature: str, data: st.DataObject
) -> None:
    """With the feature in use in every run, the invariants above all hold (but flow
    order across CPU hotplug: ``dev_cpu_dead`` re-injects a dead CPU's packets on
    another backlog, which can deliver them after newer ones, as in the kernel)."""
    napikit_policy.require(feature)
    result = _run(napikit_policy, data, require=feature)
    checks = [_check_conserved, _check_on_their_cpu, _check_no_lost_kick, _check_drained,
              _check_nothing_queued, _check_no_backlog_unpolled]
    if feature != "hotplug":
        checks.append(_check_in_order)
    for check in checks:
        check(napikit_policy, result)


# ----------------------------------------------------------------- decision contract


class BacklogCall(NamedTuple):
    """The arguments of one ``napikit_backlog_schedule`` decision."""

    this_cpu: int
    target_cpu: int
    now_ns: int
    last_batch: int


class SoftirqCall(NamedTuple):
    """The arguments of one ``napikit_softirq_from_hardirq`` decision."""

    cpu: int
    force_irqthreads: bool
    now_ns: int


_CPUS = range(8)
#: Around the quotas a load-aware policy is likely to compare with (dev_rx_weight 64).
_BATCHES = (0, 1, 2, 7, 8, 9, 31, 32, 33, 63, 64, 65, 300, 10_000)
#: Simulated time between two decisions of the grid.
_STEP_NS = 1_000


def _decide(policy: PolicyUnderTest, decision: CompiledPolicy,
            call: BacklogCall | SoftirqCall) -> int:
    """The decision for ``call``; an exception fails the test naming the hook and call."""
    try:
        if isinstance(call, BacklogCall):
            hook = "napikit_backlog_schedule"
            return decision.decide_backlog_schedule(*call)
        hook = "napikit_softirq_from_hardirq"
        return decision.decide_softirq_from_hardirq(*call)
    except Exception as e:
        raise AssertionError(
            f"{policy.label}, hook {hook}: raised {type(e).__name__}: {e} at {call}"
        ) from e


def _backlog_grid(policy: PolicyUnderTest) -> list[BacklogCall]:
    """Every (this, target) pair (only local ones without RPS) for each ``last_batch``,
    rising then falling, so hysteresis in a stateful policy is crossed both ways."""
    pairs = [(a, b) for a, b in product(_CPUS, _CPUS) if a == b or policy.supports("rps")]
    return [
        BacklogCall(this, target, i * _STEP_NS, batch)
        for i, (batch, (this, target)) in enumerate(product(_BATCHES + _BATCHES[::-1], pairs))
    ]


def _backlog_decisions(policy: PolicyUnderTest,
                       decision: CompiledPolicy) -> list[tuple[BacklogCall, int]]:
    return [(call, _decide(policy, decision, call)) for call in _backlog_grid(policy)]


def _culprits(policy: PolicyUnderTest, hook: str, what: str,
              calls: list[BacklogCall] | list[SoftirqCall]) -> str:
    more = f" (and {len(calls) - 1} more calls)" if len(calls) > 1 else ""
    return f"{policy.label}, hook {hook}: {what} at {calls[0]}{more}"


def test_backlog_decision_is_an_action(napikit_policy: PolicyUnderTest) -> None:
    """Every backlog decision is a member of ``napikit.Action``."""
    decisions = _backlog_decisions(napikit_policy, napikit_policy.decision())
    bad = [call for call, action in decisions if action not in set(Action)]
    assert not bad, _culprits(
        napikit_policy, "napikit_backlog_schedule", "returned no napikit.Action", bad
    )


def test_local_backlog_is_never_kicked_by_ipi(napikit_policy: PolicyUnderTest) -> None:
    """A backlog on the deciding CPU is kicked by softirq or thread, never by an IPI."""
    decisions = _backlog_decisions(napikit_policy, napikit_policy.decision())
    bad = [c for c, action in decisions if c.this_cpu == c.target_cpu and action == Action.IPI]
    assert not bad, _culprits(
        napikit_policy, "napikit_backlog_schedule", "returned IPI for the local CPU", bad
    )


def test_remote_backlog_is_never_kicked_by_a_local_softirq(
    napikit_policy: PolicyUnderTest,
) -> None:
    """A backlog on another CPU is kicked by IPI or thread: a softirq raised here would
    process it on the wrong CPU."""
    napikit_policy.require("rps")
    decisions = _backlog_decisions(napikit_policy, napikit_policy.decision())
    bad = [c for c, action in decisions
           if c.this_cpu != c.target_cpu and action == Action.SOFTIRQ]
    assert not bad, _culprits(
        napikit_policy, "napikit_backlog_schedule", "returned SOFTIRQ for a remote CPU", bad
    )


def test_thread_kick_needs_backlog_threads(napikit_policy: PolicyUnderTest) -> None:
    """Only a decision object with ``backlog_threads`` kicks a backlog thread."""
    decision = napikit_policy.decision()
    decisions = _backlog_decisions(napikit_policy, decision)
    bad = [call for call, action in decisions if action == Action.THREAD]
    assert decision.backlog_threads or not bad, _culprits(
        napikit_policy, "napikit_backlog_schedule",
        "returned THREAD but its decision object has no backlog threads", bad,
    )


def test_backlog_decision_never_drops_the_kick(napikit_policy: PolicyUnderTest) -> None:
    """No backlog decision is ``Action.NONE``: a conforming policy loses no kick."""
    decisions = _backlog_decisions(napikit_policy, napikit_policy.decision())
    bad = [call for call, action in decisions if action == Action.NONE]
    assert not bad, _culprits(
        napikit_policy, "napikit_backlog_schedule", "returned NONE (a lost kick)", bad
    )


def _softirq_grid(policy: PolicyUnderTest) -> list[SoftirqCall]:
    forced = (False, True) if policy.supports("force_irqthreads") else (False,)
    return [SoftirqCall(cpu, f, i * _STEP_NS)
            for i, (f, cpu) in enumerate(product(forced, _CPUS))]


def test_softirq_decision_is_a_softirq_action(napikit_policy: PolicyUnderTest) -> None:
    """Every hard-IRQ-exit decision is a member of ``napikit.SoftirqAction``."""
    decision = napikit_policy.decision()
    bad = [call for call in _softirq_grid(napikit_policy)
           if _decide(napikit_policy, decision, call) not in set(SoftirqAction)]
    assert not bad, _culprits(
        napikit_policy, "napikit_softirq_from_hardirq", "returned no napikit.SoftirqAction",
        bad,
    )


@st.composite
def _call_sequences(draw: st.DrawFn,
                    policy: PolicyUnderTest) -> list[BacklogCall | SoftirqCall]:
    """Interleaved calls of both hooks, with time moving forward."""
    cpu = st.integers(0, 15)
    remote = policy.supports("rps")
    forced = st.booleans() if policy.supports("force_irqthreads") else st.just(False)
    calls: list[BacklogCall | SoftirqCall] = []
    now = 0
    for _ in range(draw(st.integers(1, 64))):
        now += draw(st.integers(0, 10_000_000))
        if draw(st.booleans()):
            this = draw(cpu)
            target = draw(cpu) if remote else this
            calls.append(BacklogCall(this, target, now, draw(st.integers(0, 10_000))))
        else:
            calls.append(SoftirqCall(draw(cpu), draw(forced), now))
    return calls


@_RUNS
@given(data=st.data())
def test_decisions_are_deterministic(
    napikit_policy: PolicyUnderTest, data: st.DataObject
) -> None:
    """Two decision objects built alike, asked the same calls, decide alike."""
    calls = data.draw(_call_sequences(napikit_policy))
    first, second = napikit_policy.decision(), napikit_policy.decision()
    a = [_decide(napikit_policy, first, call) for call in calls]
    b = [_decide(napikit_policy, second, call) for call in calls]
    differ = [call for call, x, y in zip(calls, a, b, strict=True) if x != y]
    assert not differ, (
        f"{napikit_policy.label}: two decision objects built with the same options "
        f"decided differently at {differ[0]}"
    )
