# cython: language_level=3
"""The compiled timed loops of ``napikit calibrate`` and ``napikit kernel-bench``.

Each function releases the GIL, runs one bounded loop in C (``_bench_impl.h``: pthreads
pinned with ``sched_setaffinity``, times from ``CLOCK_MONOTONIC`` and
``CLOCK_THREAD_CPUTIME_ID``), and returns plain numbers. Only 127.0.0.1 is used; every
loop stops at its duration or its cap, whichever comes first.
"""

from libc.stdint cimport int64_t


cdef extern from "_bench_impl.h" nogil:
    enum: NK_HIST

    ctypedef struct nk_hist:
        int64_t n, lo, hi
        int64_t q[32]

    ctypedef struct nk_udp_args:
        int sender_cpu, receiver_cpu, flows, payload
        int64_t duration_ns, max_packets
        double rate_pps
        int rcvbuf

    ctypedef struct nk_udp_result:
        int error, error_step
        int64_t sent, send_errors, received, received_in_window
        int64_t send_wall_ns, send_call_ns, sender_cpu_ns, receiver_cpu_ns
        int64_t receiver_wall_ns, socket_drops
        long sender_nvcsw, sender_nivcsw, receiver_nvcsw, receiver_nivcsw
        int64_t receiver_tid

    ctypedef struct nk_drain_result:
        int error
        int64_t packets, send_ns, recv_ns, rounds

    ctypedef struct nk_pp_result:
        int error
        int64_t round_trips, wall_ns, wake_calls, wake_ns
        long a_nvcsw, b_nvcsw
        nk_hist wake_h

    void nk_udp_flow(const nk_udp_args *a, nk_udp_result *r)
    void nk_udp_drain(int cpu, int batch, int64_t duration_ns, int64_t max_rounds,
                      nk_drain_result *r)
    void nk_futex_pingpong(int cpu_a, int cpu_b, int busy_target, int64_t duration_ns,
                           int64_t max_rt, nk_pp_result *r)
    int64_t nk_futex_wake_empty(int cpu, int64_t duration_ns, int64_t max_calls,
                                int64_t *calls)
    double nk_yield(int cpu, int threads, int64_t duration_ns, int64_t max_calls,
                    int64_t *calls)
    double nk_cacheline(int cpu_a, int cpu_b, int local, int64_t duration_ns,
                        int64_t max_rt, int64_t *handoffs)

    ctypedef struct nk_mb_result:
        int error
        int64_t alone_calls, alone_ns, calls, call_ns, matched, gaps, gap_ns, spin_ns
        int64_t arrival_median, handler_median, back_median, call_median
        nk_hist arrival_h, handler_h, call_h

    ctypedef struct nk_tk_result:
        int error
        int64_t calls, call_ns, call_median, handled
        nk_hist call_h

    void nk_ipi_membarrier(int cpu_a, int cpu_b, int64_t duration_ns, int64_t max_calls,
                           nk_mb_result *r)
    void nk_ipi_tgkill(int cpu_a, int cpu_b, int64_t duration_ns, int64_t max_calls,
                       nk_tk_result *r)

    ctypedef struct nk_ie_result:
        int error
        int64_t wakes, wall_ns
        long b_nvcsw
        int64_t b_cpu_ns, slept, wake_median
        nk_hist wake_h

    void nk_idle_entry(int cpu_a, int cpu_b, int64_t delay_ns, int64_t duration_ns,
                       int64_t max_wakes, nk_ie_result *r)


#: Quantile points in each per-operation histogram (``NK_HIST``).
HIST_POINTS = NK_HIST
assert NK_HIST == 32, "nk_hist's q[] above is declared with 32 points"


cdef dict _hist(str name, nk_hist *h):
    """``name_hist``: the ``NK_HIST`` quantile points of a probe's per-operation samples
    at ``(k + 0.5) / NK_HIST`` (sorted, each a sample; ``[]`` without samples), and
    ``name_min``/``name_max``, the samples' range (-1 without)."""
    if h.n <= 0:
        return {f"{name}_hist": [], f"{name}_min": -1, f"{name}_max": -1}
    return {f"{name}_hist": [h.q[k] for k in range(NK_HIST)], f"{name}_min": h.lo,
            f"{name}_max": h.hi}


_STEPS = {1: "socket", 2: "bind", 3: "pin sender", 4: "pin receiver", 5: "thread"}


def _check_duration(double seconds):
    if not 0 < seconds <= 600:
        raise ValueError(f"duration must be in (0, 600] s (got {seconds})")
    return <int64_t>(seconds * 1e9)


def udp_flow(int sender_cpu, int receiver_cpu, *, int flows=8, int payload=64,
             double seconds=1.0, int64_t max_packets=50_000_000, double rate_pps=0,
             int rcvbuf=0):
    """Send 64-byte datagrams from ``flows`` sockets on ``sender_cpu`` to one socket
    read on ``receiver_cpu`` for ``seconds`` (at most ``max_packets``; ``rate_pps`` 0:
    closed loop). Returns the counters of ``nk_udp_result`` as a dict."""
    cdef nk_udp_args a
    cdef nk_udp_result r
    a.sender_cpu = sender_cpu
    a.receiver_cpu = receiver_cpu
    a.flows = flows
    a.payload = payload
    a.duration_ns = _check_duration(seconds)
    a.max_packets = max_packets
    a.rate_pps = rate_pps
    a.rcvbuf = rcvbuf
    with nogil:
        nk_udp_flow(&a, &r)
    if r.error:
        raise OSError(-r.error, f"udp_flow: {_STEPS.get(r.error_step, '?')} failed")
    return {
        "sent": r.sent, "send_errors": r.send_errors, "received": r.received,
        "received_in_window": r.received_in_window, "send_wall_ns": r.send_wall_ns,
        "send_call_ns": r.send_call_ns, "sender_cpu_ns": r.sender_cpu_ns,
        "receiver_cpu_ns": r.receiver_cpu_ns, "receiver_wall_ns": r.receiver_wall_ns,
        "socket_drops": r.socket_drops, "sender_nvcsw": r.sender_nvcsw,
        "sender_nivcsw": r.sender_nivcsw, "receiver_nvcsw": r.receiver_nvcsw,
        "receiver_nivcsw": r.receiver_nivcsw, "receiver_tid": r.receiver_tid,
    }


def udp_drain(int cpu, *, int batch=128, double seconds=0.5, int64_t max_rounds=1_000_000):
    """On ``cpu``, send ``batch`` datagrams to a socket nobody waits on, then read them
    back; repeat. Returns packets and the time spent in each phase (ns)."""
    cdef nk_drain_result r
    cdef int64_t d = _check_duration(seconds)
    with nogil:
        nk_udp_drain(cpu, batch, d, max_rounds, &r)
    if r.error:
        raise OSError(-r.error, "udp_drain failed")
    return {"packets": r.packets, "send_ns": r.send_ns, "recv_ns": r.recv_ns,
            "rounds": r.rounds}


def futex_pingpong(int cpu_a, int cpu_b, *, bint busy_target=False, double seconds=0.5,
                   int64_t max_round_trips=10_000_000):
    """A futex ping-pong between a thread on ``cpu_a`` and one on ``cpu_b``; with
    ``busy_target`` a ``sched_yield`` spinner shares ``cpu_b``. ``wake_hist``: the
    shape of the timed ``FUTEX_WAKE`` calls (the first 262144), see :func:`_hist`."""
    cdef nk_pp_result r
    cdef int64_t d = _check_duration(seconds)
    with nogil:
        nk_futex_pingpong(cpu_a, cpu_b, busy_target, d, max_round_trips, &r)
    if r.error:
        raise OSError(-r.error, "futex_pingpong failed")
    return {"round_trips": r.round_trips, "wall_ns": r.wall_ns, "wake_calls": r.wake_calls,
            "wake_ns": r.wake_ns, "a_nvcsw": r.a_nvcsw, "b_nvcsw": r.b_nvcsw,
            **_hist("wake", &r.wake_h)}


def futex_wake_empty(int cpu, *, double seconds=0.2, int64_t max_calls=100_000_000):
    """ns per ``FUTEX_WAKE`` system call with no waiter, on ``cpu``."""
    cdef int64_t calls = 0, wall
    cdef int64_t d = _check_duration(seconds)
    with nogil:
        wall = nk_futex_wake_empty(cpu, d, max_calls, &calls)
    if wall < 0 or calls == 0:
        raise OSError(0, "futex_wake_empty failed")
    return wall / calls


def yield_ns(int cpu, int threads, *, double seconds=0.2, int64_t max_calls=100_000_000):
    """ns per ``sched_yield`` with ``threads`` (1 or 2) threads on ``cpu``."""
    cdef int64_t calls = 0
    cdef double ns
    cdef int64_t d = _check_duration(seconds)
    with nogil:
        ns = nk_yield(cpu, threads, d, max_calls, &calls)
    if ns < 0:
        raise OSError(0, "yield_ns failed")
    return ns


def cacheline_ns(int cpu_a, int cpu_b, *, bint local=False, double seconds=0.2,
                 int64_t max_handoffs=1_000_000_000):
    """ns per hand-off of a counter's cache line between ``cpu_a`` and ``cpu_b``
    (``local``: one thread on ``cpu_a`` doing both sides' loads and stores)."""
    cdef int64_t n = 0
    cdef double ns
    cdef int64_t d = _check_duration(seconds)
    with nogil:
        ns = nk_cacheline(cpu_a, cpu_b, local, d, max_handoffs, &n)
    if ns < 0:
        raise OSError(0, "cacheline_ns failed")
    return ns


def ipi_membarrier(int cpu_a, int cpu_b, *, double seconds=0.2, int64_t max_calls=200_000):
    """IPIs from ``cpu_a`` to a busy ``cpu_b``: ``membarrier(PRIVATE_EXPEDITED)`` calls
    while a thread of this process spins on ``cpu_b`` reading the clock. Returns the
    calls alone (no IPI) and with the target, and the medians (ns) of the IPI's arrival
    (call start to the target's interruption), of the interruption itself (handler) and
    of the rest of the call (back); ``arrival_hist``, ``handler_hist`` and ``call_hist``
    are the shapes of the matched arrivals, handlers and of all calls."""
    cdef nk_mb_result r
    cdef int64_t d = _check_duration(seconds)
    with nogil:
        nk_ipi_membarrier(cpu_a, cpu_b, d, max_calls, &r)
    if r.error:
        raise OSError(-r.error, "ipi_membarrier failed (membarrier needs "
                      "CONFIG_MEMBARRIER and 2 online CPUs)")
    return {"alone_calls": r.alone_calls, "alone_ns": r.alone_ns, "calls": r.calls,
            "call_ns": r.call_ns, "matched": r.matched, "gaps": r.gaps, "gap_ns": r.gap_ns,
            "spin_ns": r.spin_ns, "arrival_median": r.arrival_median,
            "handler_median": r.handler_median, "back_median": r.back_median,
            "call_median": r.call_median, **_hist("arrival", &r.arrival_h),
            **_hist("handler", &r.handler_h), **_hist("call", &r.call_h)}


def ipi_tgkill(int cpu_a, int cpu_b, *, double seconds=0.2, int64_t max_calls=200_000):
    """``tgkill`` from ``cpu_a`` of a thread spinning on ``cpu_b`` (another CPU: a
    reschedule IPI per call; the same CPU: none), each call waiting for the handler.
    Returns the calls, their total and median time (ns), their shape (``call_hist``)
    and the signals handled."""
    cdef nk_tk_result r
    cdef int64_t d = _check_duration(seconds)
    with nogil:
        nk_ipi_tgkill(cpu_a, cpu_b, d, max_calls, &r)
    if r.error:
        raise OSError(-r.error, "ipi_tgkill failed")
    return {"calls": r.calls, "call_ns": r.call_ns, "call_median": r.call_median,
            "handled": r.handled, **_hist("call", &r.call_h)}


def idle_entry(int cpu_a, int cpu_b, int64_t delay_ns, *, double seconds=0.05,
               int64_t max_wakes=100_000):
    """A thread on ``cpu_a`` wakes one that blocks in ``FUTEX_WAIT`` on an otherwise idle
    ``cpu_b``, ``delay_ns`` after it began to block, over and over. Returns the
    wake-ups, the wall time, the blocked thread's voluntary switches (the wake-ups that
    found it asleep), its CPU time (ns), the wake-ups it slept through and the median
    time (ns) from the start of such a wake-up to it running again, and their shape
    (``wake_hist``); the caller counts ``cpu_b``'s interrupts around the call."""
    cdef nk_ie_result r
    cdef int64_t d = _check_duration(seconds)
    if delay_ns < 0 or delay_ns > 1_000_000_000:
        raise ValueError("delay_ns must be 0..1e9")
    with nogil:
        nk_idle_entry(cpu_a, cpu_b, delay_ns, d, max_wakes, &r)
    if r.error:
        raise OSError(-r.error, "idle_entry failed")
    return {"wakes": r.wakes, "wall_ns": r.wall_ns, "b_nvcsw": r.b_nvcsw,
            "b_cpu_ns": r.b_cpu_ns, "slept": r.slept, "wake_median": r.wake_median,
            **_hist("wake", &r.wake_h)}
