# Timelines (Sim.record_trace, napikit.trace): what each CPU ran, when, in a bounded C
# buffer of fixed-size records, turned into a Perfetto trace in Python after the run.
# The records change nothing in the run. Only napikit._core_traced (the same source
# built with NAPIKIT_TRACE_BUILD) records: in napikit._core ``tracing`` is the constant
# 0 and the C compiler drops every recording site, so a run without a trace pays
# nothing (in _core_traced each site is a branch, predicted not taken).
#
# Record kinds (TraceRec fields; ``ts`` in ns, ``at`` the time it was recorded, ``id`` -1
# where unused):
#   TR_STEP    a timed step [ts, ts+dur) on ``cpu`` (its span: hard-IRQ time taken
#              out of it included): a = bucket + 256 * level (L_TASK, L_SOFTIRQ,
#              L_SWITCH), b = task (-1: softirq at irq_exit), id = the CPU time it was
#              charged (its span less that IRQ time; counted when it ends, at ``at``)
#   TR_CHARGE  CPU time charged out of line (hard IRQ, an IPI's send cost, a wake-up's
#              ...) [ts, ts+dur) on ``cpu``: a = bucket, b = what (TW_*), id = the seq of
#              the event being handled (an IPI's arrival: the seq of its EV_ event)
#   TR_IPI     an IPI sent by ``cpu`` at ts, leaving at ts+dur: a = target, b = what,
#              id = the seq of the event that lands it
#   TR_WAKE    try_to_wake_up by ``cpu`` (-1: a timer) at ts: a = task
#   TR_STATE   task a's state becomes b at ts (``cpu``: its CPU); the first records of
#              a window give every task's state there
#   TR_SWITCH  __schedule on ``cpu`` at ts switches from task a to task b (-1: idle)
#   TR_BACKLOG ``cpu``'s backlog (input_pkt_queue + process_queue) holds a packets

cdef extern from *:
    """
    #ifdef NAPIKIT_TRACE_BUILD
    #define NAPIKIT_TRACING(on) __builtin_expect((on), 0)
    #define NAPIKIT_TRACE_BUILT 1
    #else
    #define NAPIKIT_TRACING(on) 0
    #define NAPIKIT_TRACE_BUILT 0
    #endif
    """
    bint tracing "NAPIKIT_TRACING"(bint on) noexcept nogil
    const bint TRACE_BUILT "NAPIKIT_TRACE_BUILT"


cdef void trace_rec(Sim s, int kind, i64 ts, i64 dur, int cpu, int a, int b, i64 id) noexcept:
    """Append one record if it overlaps the window or is made in it (out-of-line time
    charged in the window may be drawn past its end), and the buffer has room (else
    the trace is flagged truncated and records nothing more)."""
    cdef TraceRec* r
    cdef TraceRec* grown
    cdef i64 cap
    if s.trace_truncated or ((ts > s.trace_end or ts + dur < s.trace_start) and
                             not s.trace_start <= s.now <= s.trace_end):
        return
    if not s.trace_snapped and s.now >= s.trace_start:
        trace_snapshot(s)
    if s.trace_n == s.trace_cap:
        cap = min(2 * s.trace_cap, s.trace_max)
        grown = NULL
        if cap > s.trace_cap:
            grown = <TraceRec*>realloc(s.trace, <size_t>cap * sizeof(TraceRec))
        if grown == NULL:
            s.trace_truncated = 1   # full, or no memory for more: the trace ends here
            return
        s.trace = grown
        s.trace_cap = cap
    r = &s.trace[s.trace_n]
    s.trace_n += 1
    r.ts = ts
    r.dur = dur
    r.id = id
    r.at = s.now
    r.kind = kind
    r.cpu = cpu
    r.a = a
    r.b = b


cdef void trace_snapshot(Sim s) noexcept:
    """Where the window starts: every task's state and every backlog's length, so that
    the timeline needs nothing from before it."""
    cdef int i
    s.trace_snapped = 1
    for i in range(s.ntasks):
        trace_rec(s, TR_STATE, s.trace_start, 0, s.tasks[i].cpu, i, s.tasks[i].state, -1)
    for i in range(s.ncpus):
        s.trace_backlog_len[i] = -1
        trace_backlog(s, i)


cdef void trace_step(Sim s, int cpu, i64 end, i64 charged) noexcept:
    """The step running on ``cpu`` ends at ``end`` (done, suspended or settled),
    ``charged`` ns of CPU time."""
    cdef Cpu* c = &s.cpus[cpu]
    cdef int task = c.curr
    if c.level == L_SOFTIRQ:
        task = c.softirq_host_task
    trace_rec(s, TR_STEP, c.step_start, end - c.step_start, cpu, c.bucket + 256 * c.level,
              task, charged)


cdef void trace_charge(Sim s, int cpu, i64 ns, int bucket, int what) noexcept:
    """Out-of-line CPU time: drawn from now, after what was charged before it."""
    cdef i64 start = s.now if s.now > s.trace_irq_until[cpu] else s.trace_irq_until[cpu]
    s.trace_irq_until[cpu] = t_add(start, ns)
    trace_rec(s, TR_CHARGE, start, ns, cpu, bucket, what, s.trace_seq)


cdef inline void trace_ipi(Sim s, int cpu, int target, i64 leaves, int what) noexcept:
    """An IPI to ``target`` whose arrival is the event just queued."""
    trace_rec(s, TR_IPI, s.now, leaves - s.now, cpu, target, what, s.ev_seq - 1)


cdef void trace_backlog(Sim s, int cpu) noexcept:
    """The backlog's length, if it changed since the last record."""
    cdef int n = ring_len(&s.sd[cpu].input_pkt_queue) + ring_len(&s.sd[cpu].process_queue)
    if n != s.trace_backlog_len[cpu]:
        s.trace_backlog_len[cpu] = n
        trace_rec(s, TR_BACKLOG, s.now, 0, cpu, n, 0, -1)


cdef inline void task_set_state(Sim s, int ti, int state) noexcept:
    """Every change of a task's state goes through here, so that a trace sees it."""
    if tracing(s.trace_on):
        trace_rec(s, TR_STATE, s.now, 0, s.tasks[ti].cpu, ti, state, -1)
    s.tasks[ti].state = state
