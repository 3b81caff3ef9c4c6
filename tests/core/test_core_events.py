"""The event queue (napikit/core/events.pxi) against a reference written in Python.

The queue must pop events in (time, seq) order, seq the order of the pushes: that order
defines every result. It is a heap for a few events and a calendar queue for more; a
calendar queue is only right if its buckets, the cursor, the year wrap-around, the
re-bucketing and the search after an empty year all keep it, and the moves between the two
must keep it too, so the pushes here are shaped to reach each: bursts of equal times,
spans far wider and far narrower than a bucket, times far in the future, growth past
many doublings, counts crossing the heap's limits, and draining to empty and filling
again.
"""

from __future__ import annotations

import heapq
import random

import pytest

from napikit._core import event_queue_order

T_NEVER = (1 << 62) + (1 << 40)


def reference_order(ops: list[int | None]) -> list[tuple[int, int]]:
    """What event_queue_order must return: a heap of (time, seq), seq counting pushes."""
    heap: list[tuple[int, int]] = []
    out: list[tuple[int, int]] = []
    seq = 0
    for t in ops:
        if t is None:
            if heap:
                out.append(heapq.heappop(heap))
        else:
            heapq.heappush(heap, (t, seq))
            seq += 1
    while heap:
        out.append(heapq.heappop(heap))
    return out


def simulation_like(rng: random.Random, n: int, pending: int, spread: int) -> list[int | None]:
    """A discrete-event run: about ``pending`` events in flight; each pop is followed by
    pushes at the popped time plus a delay (0 to ``spread``), now and then far ahead."""
    ops: list[int | None] = [rng.randrange(spread) for _ in range(pending)]
    now_heap = sorted(t for t in ops if t is not None)
    for _ in range(n):
        ops.append(None)
        now = now_heap.pop(0) if now_heap else 0
        for _ in range(rng.choice((0, 1, 1, 1, 2)) if len(now_heap) > pending // 2 else 2):
            r = rng.random()
            if r < 0.05:
                t = now   # a zero delay: equal times, ordered by seq
            elif r < 0.07:
                t = min(T_NEVER, now + rng.randrange(1 << 22, 1 << 40))   # a tick, a watchdog
            elif r < 0.072:
                t = T_NEVER   # a saturated step
            else:
                t = min(T_NEVER, now + int(rng.expovariate(1 / spread)))   # t_add saturates
            ops.append(t)
            now_heap.append(t)
            now_heap.sort()
    return ops


@pytest.mark.parametrize("pending, spread", [(4, 300), (40, 2000), (1000, 2000),
                                             (3000, 50), (200, 10 ** 9)])
def test_pops_in_time_seq_order_in_simulation_like_runs(pending: int, spread: int) -> None:
    """Runs of a few to a few thousand pending events, dense and sparse."""
    rng = random.Random(pending * 7919 + spread)
    ops = simulation_like(rng, 20000, pending, spread)
    assert event_queue_order(ops) == reference_order(ops)


@pytest.mark.parametrize("seed", range(20))
def test_pops_in_time_seq_order_under_random_pushes_and_pops(seed: int) -> None:
    """Pushes at any time (earlier than the last pop too), pops in between, phases that
    grow the queue past several doublings and drain it to empty."""
    rng = random.Random(seed)
    ops: list[int | None] = []
    for _ in range(rng.randrange(1, 6)):
        width = rng.choice((1, 10, 1000, 10 ** 6, 10 ** 12, T_NEVER))
        base = rng.randrange(0, T_NEVER - width + 1)
        grow = rng.random()
        for _ in range(rng.randrange(1, 3000)):
            if rng.random() < grow:
                ops.append(base + rng.randrange(width + 1))
            else:
                ops.append(None)
        if rng.random() < 0.5:
            ops.extend([None] * 4000)   # drained to empty: the queue fills again after
    assert event_queue_order(ops) == reference_order(ops)


@pytest.mark.parametrize("seed", range(5))
def test_pops_in_order_as_the_count_crosses_the_heaps_limits(seed: int) -> None:
    """Up to 64 events the queue is a heap, above it a calendar, below 16 a heap again:
    a count that wanders between 5 and 90 moves it back and forth many times."""
    rng = random.Random(1000 + seed)
    ops: list[int | None] = []
    now, n = 0, 0
    for _ in range(40):
        target = rng.choice((5, 12, 20, 63, 64, 65, 90))
        while n != target:
            if n < target:
                ops.append(now + rng.randrange(rng.choice((10, 3000, 10 ** 9))))
                n += 1
            else:
                ops.append(None)
                n -= 1
            now += rng.randrange(50)
    assert event_queue_order(ops) == reference_order(ops)


def test_equal_times_pop_in_push_order() -> None:
    """Ties, all at once or interleaved with pops, run in the order they were made."""
    ops: list[int | None] = [5] * 300 + [None] * 100 + [5, 4, 5, 6] * 50 + [T_NEVER] * 3
    assert event_queue_order(ops) == reference_order(ops)


def test_rejects_times_out_of_range() -> None:
    for t in (-1, T_NEVER + 1):
        with pytest.raises(ValueError):
            event_queue_order([t])
