# The compiled decision interface between napikit's core and a backlog policy.
# A policy in Cython subclasses CompiledPolicy and overrides the cdef methods;
# the core calls them as C functions (no Python call per decision).

cdef enum:
    # napi_schedule_rps / ____napi_schedule outcomes
    ACTION_SOFTIRQ = 0     # local poll_list + raise NET_RX
    ACTION_IPI = 1         # rps_ipi_list; IPI at the end of net_rx_action
    ACTION_THREAD = 2      # SCHED_THREADED + wake backlog_napi/<target>
    ACTION_NONE = 3        # no kick at all: models a lost kick (the stall watchdog reports it)
    # invoke_softirq outcomes
    SOFTIRQ_INLINE = 0
    SOFTIRQ_KSOFTIRQD = 1
    # returned by a decision that failed; the error is kept in CompiledPolicy.error
    DECISION_FAILED = -2

cdef class CompiledPolicy:
    cdef public str name
    cdef public bint backlog_threads
    cdef public bint force_irqthreads
    cdef public object error
    cdef int backlog_schedule(self, int this_cpu, int target_cpu, long long now_ns,
                              int last_batch) noexcept
    cdef int softirq_from_hardirq(self, int cpu, bint force_irqthreads, long long now_ns) noexcept
