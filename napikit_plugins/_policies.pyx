# cython: language_level=3
"""The shipped policies as compiled decision objects (C calls, no pluggy per decision)."""

from napikit.decision cimport (
    CompiledPolicy, ACTION_SOFTIRQ, ACTION_IPI, ACTION_THREAD,
    SOFTIRQ_INLINE, SOFTIRQ_KSOFTIRQD,
)


cdef class SoftirqIpi(CompiledPolicy):
    """Classic (!RT): ``napi_schedule_rps`` queues a remote backlog on ``rps_ipi_list``
    and the IPI is sent when ``net_rx_action`` ends; the local backlog goes on the
    ``poll_list`` with NET_RX raised; ``invoke_softirq`` runs softirqs inline at
    ``irq_exit`` (unless the kernel itself forces IRQ threads)."""

    def __init__(self):
        CompiledPolicy.__init__(self, "softirq-ipi", False, False)


cdef class Ksoftirqd(CompiledPolicy):
    """Forced-threaded IRQs / PREEMPT_RT before 6.10: backlogs are kicked as in the
    classic kernel, but a softirq raised in hard-IRQ context (the RPS IPI handler) wakes
    ``ksoftirqd/N`` (``invoke_softirq`` with ``force_irqthreads()``), and device
    interrupts run in SCHED_FIFO threads."""

    def __init__(self):
        CompiledPolicy.__init__(self, "ksoftirqd", False, True)

    cdef int softirq_from_hardirq(self, int cpu, bint force_irqthreads, long long now_ns) noexcept:
        return SOFTIRQ_KSOFTIRQD


cdef class BacklogThreads(CompiledPolicy):
    """Linux 6.10 ``thread_backlog_napi``: ``____napi_schedule`` wakes the target's
    ``backlog_napi/N`` (SCHED_THREADED) instead of an RPS IPI; a request for the local
    CPU takes the fast path (poll list + local softirq). ``fast_path=False`` wakes the
    own thread too: the RFC that cost loopback UDP throughput."""

    cdef readonly bint fast_path

    def __init__(self, bint fast_path=True):
        CompiledPolicy.__init__(self, "backlog-threads", True, False)
        self.fast_path = fast_path

    cdef int backlog_schedule(self, int this_cpu, int target_cpu, long long now_ns,
                              int last_batch) noexcept:
        if this_cpu == target_cpu and self.fast_path:
            return ACTION_SOFTIRQ
        return ACTION_THREAD
