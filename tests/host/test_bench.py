"""The compiled helper runs tiny bounded loops without root (loopback UDP and futexes
need no privilege); the numbers themselves are not checked, only their sanity."""

from __future__ import annotations

import os

import pytest

from napikit.host import _bench

CPUS = sorted(os.sched_getaffinity(0))
A = CPUS[0]
B = CPUS[1] if len(CPUS) > 1 else CPUS[0]


def test_udp_flow_is_bounded_by_its_duration() -> None:
    """0.05 s of closed-loop sending: packets flow, and it ends in time."""
    r = _bench.udp_flow(A, B, seconds=0.05)
    assert r["sent"] > 0 and 0 < r["received"] <= r["sent"]
    # the helper's own clock: it stopped sending soon after its 0.05 s
    assert r["sender_cpu_ns"] > 0 and 0.04e9 <= r["send_wall_ns"] < 0.5e9


def test_udp_flow_is_bounded_by_its_packet_cap() -> None:
    """The hard cap stops the sender first."""
    r = _bench.udp_flow(A, A, seconds=1.0, max_packets=200)
    assert r["sent"] + r["send_errors"] == 200


def test_udp_flow_paced() -> None:
    """A paced sender sends about rate x duration."""
    r = _bench.udp_flow(A, B, seconds=0.05, rate_pps=2000)
    assert 90 <= r["sent"] <= 101


def test_udp_drain_and_sync_loops() -> None:
    """The other loops return positive times."""
    d = _bench.udp_drain(A, seconds=0.02)
    assert d["packets"] > 0 and d["recv_ns"] > 0
    p = _bench.futex_pingpong(A, B, seconds=0.02)
    assert p["round_trips"] > 0 and p["wake_calls"] == p["round_trips"]
    assert _bench.futex_pingpong(A, B, busy_target=True, seconds=0.02)["round_trips"] > 0
    assert _bench.futex_wake_empty(A, seconds=0.01) > 0
    assert _bench.yield_ns(A, 2, seconds=0.01) > 0
    assert _bench.cacheline_ns(A, A, local=True, seconds=0.01) > 0
    if B != A:
        assert _bench.cacheline_ns(A, B, seconds=0.01) > 0


def test_bad_duration_and_cpu() -> None:
    """An unbounded duration is refused; a CPU that does not exist is an OSError."""
    with pytest.raises(ValueError):
        _bench.udp_flow(A, B, seconds=0)
    with pytest.raises(OSError):
        _bench.udp_flow(A, 4000, seconds=0.01)


def test_the_calling_thread_is_not_left_pinned() -> None:
    """Loops that pin the calling thread put its affinity back."""
    before = os.sched_getaffinity(0)
    _bench.udp_flow(A, B, seconds=0.01)
    _bench.udp_drain(B, seconds=0.01)
    _bench.futex_pingpong(B, A, seconds=0.01)
    _bench.futex_wake_empty(B, seconds=0.01)
    _bench.cacheline_ns(B, B, local=True, seconds=0.01)
    assert os.sched_getaffinity(0) == before


def test_ipi_tgkill_is_bounded_and_every_signal_is_handled() -> None:
    """The cap stops it; each call waited for its handler, on one CPU and across two."""
    for target in {A, B}:
        r = _bench.ipi_tgkill(A, target, seconds=1.0, max_calls=300)
        assert r["calls"] == 300 and r["handled"] == 300
        assert 0 < r["call_median"] <= r["call_ns"]


def test_ipi_tgkill_restores_the_signal_and_the_mask() -> None:
    """SIGRTMIN+3's action and the calling thread's mask are as they were."""
    import signal

    sig = signal.SIGRTMIN + 3
    before = signal.getsignal(sig)
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, [])
    _bench.ipi_tgkill(A, B, seconds=0.01)
    assert signal.getsignal(sig) == before
    assert signal.pthread_sigmask(signal.SIG_BLOCK, []) == mask


def test_ipi_membarrier_is_bounded_and_matches_gaps_inside_calls() -> None:
    """Across two CPUs the cap stops it; a call is matched to at most one of the target's
    gaps, one that starts after the call began and is longer than the clock loop's
    threshold. How many are matched depends on the host (a busy CPU runs another
    process and gets no IPI), so only the matching's invariants are checked."""
    if B == A:
        with pytest.raises(OSError):
            _bench.ipi_membarrier(A, 4000, seconds=0.01)
        return
    r = _bench.ipi_membarrier(A, B, seconds=0.05, max_calls=2000)
    assert 0 < r["calls"] <= 2000 and r["alone_calls"] > 0
    assert 0 <= r["matched"] <= min(r["calls"], r["gaps"])
    assert r["call_median"] > 0
    if r["matched"]:
        assert r["arrival_median"] >= 0 and r["handler_median"] > 300


def test_ipi_probes_leave_the_thread_unpinned() -> None:
    """Both probes put the caller's affinity back, even when a CPU does not exist."""
    before = os.sched_getaffinity(0)
    _bench.ipi_tgkill(B, A, seconds=0.01)
    with pytest.raises(OSError):
        _bench.ipi_tgkill(A, 4000, seconds=0.01)
    if B != A:
        _bench.ipi_membarrier(B, A, seconds=0.01)
    assert os.sched_getaffinity(0) == before


def test_idle_entry_is_bounded_and_wakes_each_block_once() -> None:
    """The cap stops it across two CPUs; every wake-up ends one block, at most one
    voluntary switch each, and the affinity is put back."""
    before = os.sched_getaffinity(0)
    for delay in (0, 2000):
        r = _bench.idle_entry(A, B, delay, seconds=1.0, max_wakes=200)
        # on one CPU the waker spins until preempted, so the duration may stop it first
        assert r["wakes"] == 200 if B != A else 0 < r["wakes"] <= 200
        assert 0 <= r["b_nvcsw"] <= r["wakes"] + 1 and r["b_cpu_ns"] > 0
        assert 0 <= r["slept"] <= r["wakes"]
        assert (r["wake_median"] > 0) if r["slept"] else r["wake_median"] == -1
    assert os.sched_getaffinity(0) == before
    with pytest.raises(ValueError):
        _bench.idle_entry(A, B, -1)


def test_idle_entry_ends_when_its_stop_races_the_last_wake_up() -> None:
    """Many short calls, each ending right after a wake-up that B may still be acting
    on: B must see the stop, not overwrite it and wait for ever (it used to, about once
    in a few hundred calls; the suite's timeout turns a hang into a failure)."""
    for _ in range(2000):
        r = _bench.idle_entry(A, B, 0, seconds=1.0, max_wakes=3)
        assert 0 < r["wakes"] <= 3


def _check_shape(r: dict, name: str, median: int | None = None) -> None:
    """A probe's histogram: ``HIST_POINTS`` sorted points inside the samples' range,
    bracketing the probe's median (``[]`` and -1 without samples)."""
    h, lo, hi = r[f"{name}_hist"], r[f"{name}_min"], r[f"{name}_max"]
    if not h:
        assert lo == hi == -1
        return
    assert len(h) == _bench.HIST_POINTS == 32
    assert h == sorted(h) and lo <= h[0] and h[-1] <= hi
    if median is not None:
        # the points sit at (k + 0.5) / 32: the 16th and 17th bracket the median
        assert h[15] <= median <= h[16]


def test_per_operation_probes_return_their_samples_shape() -> None:
    """tgkill calls, FUTEX_WAKE calls, membarrier arrivals and handlers, idle-entry
    wake-ups: each probe's histogram is bounded, sorted, within its samples' range and
    consistent with its median."""
    r = _bench.ipi_tgkill(A, B, seconds=1.0, max_calls=200)
    _check_shape(r, "call", r["call_median"])
    assert r["call_hist"]
    p = _bench.futex_pingpong(A, B, busy_target=True, seconds=0.02)
    _check_shape(p, "wake")
    assert p["wake_hist"] and p["wake_min"] <= p["wake_ns"] / p["wake_calls"] <= p["wake_max"]
    w = _bench.idle_entry(A, B, 0, seconds=1.0, max_wakes=100)
    _check_shape(w, "wake", w["wake_median"] if w["slept"] else None)
    if B != A:
        m = _bench.ipi_membarrier(A, B, seconds=0.02, max_calls=500)
        _check_shape(m, "call", m["call_median"])
        _check_shape(m, "arrival", m["arrival_median"] if m["matched"] else None)
        _check_shape(m, "handler", m["handler_median"] if m["matched"] else None)
        assert bool(m["handler_hist"]) == bool(m["matched"])


def test_a_shape_of_fewer_samples_than_points_repeats_them() -> None:
    """3 calls, 32 points: every point is one of the 3 samples."""
    r = _bench.ipi_tgkill(A, A, seconds=1.0, max_calls=3)
    assert r["calls"] == 3
    _check_shape(r, "call", r["call_median"])
    assert len(set(r["call_hist"])) <= 3
