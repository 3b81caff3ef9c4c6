"""The kernel change's claims (kernel-model.md A.4), reproduced with the default costs.

Each claim is a comparison between runs of the shipped scenarios as they are (only the
policy changes), never a fixed figure, at every CPU count of the study: on ``N`` CPUs a
SEED scenario is ``N/2`` sender/receiver pairs (:func:`napikit.scenarios.at_ncpus`).
"""

from __future__ import annotations

import pytest

from napikit.scenarios import at_ncpus

#: The CPU counts of the study (2 is the scenario as shipped).
NCPUS = [2, 4, 8, 16, 64]

CLASSIC = {"policy": "softirq-ipi", "policy_options": {}}
KSOFTIRQD = {"policy": "ksoftirqd", "policy_options": {}}
THREADS = {"policy": "backlog-threads", "policy_options": {}}
THREADS_NO_FAST_PATH = {"policy": "backlog-threads", "policy_options": {"fast_path": False}}


@pytest.fixture(scope="module")
def outcome(run):
    """``outcome(name, ncpus, policy)``: the (cached) result of a scenario on ``ncpus``."""
    cache = {}

    def get(name: str, ncpus: int, policy: dict):
        key = (name, ncpus, policy["policy"], tuple(sorted(policy["policy_options"].items())))
        if key not in cache:
            cache[key] = run(at_ncpus(name, ncpus).evolve(**policy))
        return cache[key]

    return get


# ----------------------------------------------------------------- claim 1


@pytest.mark.parametrize("ncpus", NCPUS)
def test_threads_without_fast_path_lose_loopback_throughput(outcome, ncpus):
    """SEED-LO: backlog threads without the local fast path deliver under 0.9x softirq-ipi."""
    classic = outcome("seed-lo", ncpus, CLASSIC)
    rfc = outcome("seed-lo", ncpus, THREADS_NO_FAST_PATH)
    assert rfc.delivered_pps < 0.9 * classic.delivered_pps


@pytest.mark.parametrize("ncpus", NCPUS)
def test_threads_without_fast_path_triple_context_switches(outcome, ncpus):
    """SEED-LO: backlog threads without the fast path switch context at least 3x as often."""
    classic = outcome("seed-lo", ncpus, CLASSIC)
    rfc = outcome("seed-lo", ncpus, THREADS_NO_FAST_PATH)
    assert rfc.context_switches >= 3 * classic.context_switches


@pytest.mark.parametrize("ncpus", NCPUS)
def test_threads_without_fast_path_hand_local_work_to_the_thread(outcome, ncpus):
    """SEED-LO: without the fast path the sender's own backlog is polled by its
    backlog thread (thread kicks, backlog-thread CPU time); softirq-ipi uses neither."""
    classic = outcome("seed-lo", ncpus, CLASSIC)
    rfc = outcome("seed-lo", ncpus, THREADS_NO_FAST_PATH)
    assert rfc.thread_kicks > 0 and rfc.cpu_time[0].backlog_thread > 0
    assert classic.thread_kicks == 0 and classic.cpu_time[0].backlog_thread == 0


# ----------------------------------------------------------------- claim 2


@pytest.mark.parametrize("ncpus", NCPUS)
def test_fast_path_restores_loopback_throughput(outcome, ncpus):
    """SEED-LO: backlog threads with the fast path are within 5 % of softirq-ipi."""
    classic = outcome("seed-lo", ncpus, CLASSIC)
    threads = outcome("seed-lo", ncpus, THREADS)
    assert threads.delivered_pps == pytest.approx(classic.delivered_pps, rel=0.05)


@pytest.mark.parametrize("ncpus", NCPUS)
def test_fast_path_takes_the_softirq_path_with_rps_off(outcome, ncpus):
    """SEED-LO: with RPS off and the fast path, backlog threads never wake a thread."""
    threads = outcome("seed-lo", ncpus, THREADS)
    assert threads.thread_kicks == 0
    assert threads.backlog_thread_wakeups == 0
    assert all(t.backlog_thread == 0 for t in threads.cpu_time)


# ----------------------------------------------------------------- claim 3


@pytest.mark.parametrize("ncpus", NCPUS)
def test_rps_ipi_and_threads_land_close(outcome, ncpus):
    """SEED-RPS: softirq-ipi and backlog-threads are within 15 % of each other."""
    classic = outcome("seed-rps", ncpus, CLASSIC)
    threads = outcome("seed-rps", ncpus, THREADS)
    assert classic.delivered_pps == pytest.approx(threads.delivered_pps, rel=0.15)
    assert threads.delivered_pps == pytest.approx(classic.delivered_pps, rel=0.15)


@pytest.mark.parametrize("ncpus", NCPUS)
@pytest.mark.parametrize("variant", [CLASSIC, THREADS], ids=["softirq-ipi", "backlog-threads"])
def test_rps_to_another_cpu_is_slower_than_rps_off(outcome, ncpus, variant):
    """SEED-RPS delivers less than the same policy's SEED-LO figure."""
    assert (
        outcome("seed-rps", ncpus, variant).delivered_pps
        < outcome("seed-lo", ncpus, variant).delivered_pps
    )


@pytest.mark.parametrize("ncpus", NCPUS)
def test_rps_kicks_remote_backlog_by_ipi_or_thread(outcome, ncpus):
    """SEED-RPS: softirq-ipi kicks CPU 1 with IPIs, backlog-threads with thread wake-ups."""
    classic = outcome("seed-rps", ncpus, CLASSIC)
    threads = outcome("seed-rps", ncpus, THREADS)
    assert classic.ipis > 0 and classic.softnet[1].received_rps > 0
    assert classic.thread_kicks == 0
    assert threads.thread_kicks > 0 and threads.ipis == 0
    assert threads.softnet[1].received_rps == 0


# ----------------------------------------------------------------- claim 4


@pytest.mark.parametrize("ncpus", NCPUS)
def test_rt_ksoftirqd_policy_wakes_ksoftirqd(outcome, ncpus):
    """SEED-RT: the ksoftirqd policy wakes ksoftirqd for IPI-triggered backlog work."""
    assert outcome("seed-rt", ncpus, KSOFTIRQD).ksoftirqd_wakeups > 0


@pytest.mark.parametrize("ncpus", NCPUS)
def test_rt_ksoftirqd_policy_polls_the_rps_targets_in_ksoftirqd(outcome, ncpus):
    """SEED-RT: under the ksoftirqd policy each RPS target's backlog runs in ksoftirqd."""
    result = outcome("seed-rt", ncpus, KSOFTIRQD)
    for target in range(1, ncpus, 2):
        assert result.cpu_time[target].ksoftirqd > 0
        assert result.softnet[target].received_rps > 0


@pytest.mark.parametrize("ncpus", NCPUS)
def test_rt_backlog_threads_never_wake_ksoftirqd(outcome, ncpus):
    """SEED-RT: backlog-threads wakes no ksoftirqd and sends no RPS IPI."""
    result = outcome("seed-rt", ncpus, THREADS)
    assert result.ksoftirqd_wakeups == 0
    assert result.ipis == 0
    assert all(t.ksoftirqd == 0 for t in result.cpu_time)


@pytest.mark.parametrize("ncpus", NCPUS)
def test_rt_backlog_threads_poll_the_rps_targets_in_their_threads(outcome, ncpus):
    """SEED-RT: under backlog-threads each RPS target's backlog runs in backlog_napi/N."""
    result = outcome("seed-rt", ncpus, THREADS)
    for target in range(1, ncpus, 2):
        assert result.cpu_time[target].backlog_thread > 0
    assert result.backlog_thread_wakeups > 0
