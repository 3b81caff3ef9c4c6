# softirq: handle_softirqs and its callers (irq_exit, local_bh_enable, ksoftirqd),
# with net_rx_action as the NET_RX vector. kernel/softirq.c, net/core/dev.c;
# kernel-model.md B.4.1, B.6.

cdef enum:
    SI_ENTRY_DONE = 0
    NRA_START = 1
    NRA_LOOP = 2
    NRA_SEG = 3
    NRA_SEG_DONE = 4
    NRA_POLLED = 5
    NRA_POST = 6
    SI_PASS_END = 7


cdef inline i64 jiffies(Sim s) noexcept:
    return s.now // s.tick_ns


cdef inline int softirq_bucket(Sim s, int cpu) noexcept:
    cdef int host = s.cpus[cpu].softirq_host_task
    if host >= 0 and s.tasks[host].kind == T_KSOFTIRQD:
        return B_KSOFTIRQD
    return B_SOFTIRQ


cdef void softirq_start(Sim s, int cpu, int host_task) noexcept:
    """``handle_softirqs``: at most ``MAX_SOFTIRQ_RESTART`` passes or ``MAX_SOFTIRQ_TIME``
    (jiffy-granular), then ``wakeup_softirqd``. ``host_task`` is the task whose
    ``local_bh_enable`` (or ksoftirqd loop) runs it, -1 for hard-IRQ exit."""
    cdef Cpu* c = &s.cpus[cpu]
    c.softirq_active = 1
    c.softirq_host_task = host_task
    c.sirq_restart = s.max_softirq_restart
    c.sirq_end_jiffies = jiffies(s) + s.max_softirq_jiffies
    softirq_pass(s, cpu)


cdef void softirq_pass(Sim s, int cpu) noexcept:
    """One pass: snapshot and clear the pending mask, then run the vectors."""
    cdef Cpu* c = &s.cpus[cpu]
    cdef int pending = c.pending
    c.pending = 0
    c.sirq_pc = SI_ENTRY_DONE if pending & NET_RX_SOFTIRQ else SI_PASS_END
    cdef i64 entry = cost_of(s, K_SOFTIRQ_ENTRY, s.c_softirq_entry)
    if entry > 0:
        start_step(s, cpu, L_SOFTIRQ, entry, softirq_bucket(s, cpu))
    else:
        softirq_continue(s, cpu)


cdef void softirq_continue(Sim s, int cpu) noexcept:
    """Runs the softirq frame from ``sirq_pc`` until it starts a timed step or ends.

    NET_RX is ``net_rx_action``: the CPU's ``poll_list`` is spliced to a local list;
    each NAPI is polled at most once per pass (repoll list); a pass ends when the list is
    empty, the budget is spent or the time limit passed (``time_squeeze``); then
    what is left goes back on ``poll_list`` and NET_RX is raised again, and the
    pending RPS IPIs are sent. The only NAPI on a CPU's poll list is its own backlog
    (no NAPI devices are modelled), so the local list is a flag.
    """
    cdef Cpu* c = &s.cpus[cpu]
    cdef Softnet* sd = &s.sd[cpu]
    cdef int bucket = softirq_bucket(s, cpu)
    cdef int n, work
    while True:
        if s.failed:
            return
        if c.sirq_pc == SI_ENTRY_DONE:
            c.nra_budget = s.netdev_budget
            c.nra_time_limit = jiffies(s) + s.budget_jiffies
            c.sirq_pc = NRA_START
        elif c.sirq_pc == NRA_START:
            sd.in_net_rx_action = 1
            c.nra_list = sd.on_poll_list
            sd.on_poll_list = 0
            c.nra_repoll = 0
            c.sirq_pc = NRA_LOOP
        elif c.sirq_pc == NRA_LOOP:
            if s.defer_list != NULL:
                skb_defer_free_flush(s, cpu, bucket)
            if not c.nra_list:
                if not c.nra_repoll:
                    sd.in_net_rx_action = 0
                    if sd.on_poll_list:
                        c.sirq_pc = NRA_START
                        continue
                    if not sd.rps_ipi_n:
                        c.sirq_pc = SI_PASS_END
                        continue
                c.sirq_pc = NRA_POST
                continue
            c.nra_list = 0
            c.nra_work = 0
            c.nra_quota = 0
            # __napi_poll calls ->poll only while SCHED is set
            if sd.napi_state & NAPIF_STATE_SCHED:
                c.nra_quota = process_backlog_begin(s, cpu, bucket)
                c.sirq_pc = NRA_SEG
            else:
                c.sirq_pc = NRA_POLLED
        elif c.sirq_pc == NRA_SEG:
            n = process_backlog_next(s, cpu, c.nra_work, c.nra_quota)
            if n == 0:
                c.sirq_pc = NRA_POLLED
                continue
            c.seg_n = n
            c.sirq_pc = NRA_SEG_DONE
            poll_step_start(s, cpu, L_SOFTIRQ, n, bucket)
            return
        elif c.sirq_pc == NRA_SEG_DONE:
            process_backlog_deliver(s, cpu, c.seg_n, bucket)
            c.nra_work += c.seg_n
            c.sirq_pc = NRA_SEG
        elif c.sirq_pc == NRA_POLLED:
            work = c.nra_work
            if c.nra_quota > 0 and work == c.nra_quota:
                c.nra_repoll = 1
            c.nra_budget -= work
            if c.nra_budget <= 0 or jiffies(s) >= c.nra_time_limit:
                sd.time_squeeze += 1
                c.sirq_pc = NRA_POST
            else:
                c.sirq_pc = NRA_LOOP
        elif c.sirq_pc == NRA_POST:
            if sd.on_poll_list or c.nra_list or c.nra_repoll:
                sd.on_poll_list = 1
                c.pending |= NET_RX_SOFTIRQ
            else:
                sd.in_net_rx_action = 0
            net_rps_send_ipi(s, cpu, bucket)
            c.sirq_pc = SI_PASS_END
        else:  # SI_PASS_END: the restart decision of handle_softirqs
            if c.pending:
                c.sirq_restart -= 1
                if jiffies(s) < c.sirq_end_jiffies and not c.need_resched and c.sirq_restart > 0:
                    softirq_pass(s, cpu)
                    return
                wakeup_softirqd(s, cpu, bucket)
            softirq_finish(s, cpu)
            return


cdef void softirq_finish(Sim s, int cpu) noexcept:
    """Leave ``handle_softirqs``: back to the task that called it, or to the context the
    hard interrupt interrupted."""
    cdef Cpu* c = &s.cpus[cpu]
    cdef int host = c.softirq_host_task
    c.softirq_active = 0
    c.softirq_host_task = -1
    if host >= 0:
        bh_leave(s, cpu, host)
        task_continue(s, cpu, host)
    else:
        return_from_irq(s, cpu)


cdef void wakeup_softirqd(Sim s, int cpu, int bucket) noexcept:
    """``wakeup_softirqd``: wake ``ksoftirqd/N`` (a no-op while it runs)."""
    wake_up(s, cpu, s.ksoftirqd_task[cpu], bucket)


cdef inline bint ksoftirqd_running(Sim s, int cpu) noexcept:
    """``ksoftirqd_running`` of kernels before v6.5 ("softirq: Let ksoftirqd do its
    job"): with that option on (!RT), pending softirqs are left to a runnable ksoftirqd."""
    cdef int state
    if not s.ksoftirqd_do_its_job or s.preempt_rt:
        return False
    state = s.tasks[s.ksoftirqd_task[cpu]].state
    return state == TS_RUNNING or state == TS_RUNNABLE


cdef void local_bh_enable(Sim s, int cpu, int task) noexcept:
    """``__local_bh_enable_ip`` leaving the outermost BH section of ``task``: run pending
    softirqs now (``do_softirq``), in the task and still inside its section (so under
    PREEMPT_RT the per-CPU BH count covers them), then the preemption check."""
    cdef Cpu* c = &s.cpus[cpu]
    if c.pending and not c.softirq_active and not ksoftirqd_running(s, cpu):
        softirq_start(s, cpu, task)
        return
    bh_leave(s, cpu, task)
    task_continue(s, cpu, task)


cdef void irq_exit(Sim s, int cpu, i64 handler_ns, int what) noexcept:
    """A hard interrupt's handler has run (its effects applied at arrival); charge its
    time and do ``irq_exit``: ``invoke_softirq`` if softirqs are pending and the
    interrupted context is not serving them or inside a BH section, then the
    return-from-interrupt preemption check. Under PREEMPT_RT ``invoke_softirq`` never
    runs softirqs: it wakes ksoftirqd unless a task on this CPU is inside a BH section
    (whose ``local_bh_enable`` will run them); the policy is not asked.

    Simplification: a hard-IRQ handler's effects happen at its start; its time delays
    the interrupted context (or the next step on an idle CPU).
    """
    cdef Cpu* c = &s.cpus[cpu]
    cdef int d
    if c.level == L_SWITCH:
        # IRQs are off across the switch: the interrupt is taken when they come back on.
        c.irq_deferred = 1
        cpu_charge(s, cpu, handler_ns, B_HARDIRQ, what)
        return
    if s.preempt_rt:
        if c.pending and c.bh_cnt == 0:
            wakeup_softirqd(s, cpu, B_HARDIRQ)
    elif c.pending and not c.softirq_active and not (c.curr >= 0 and s.tasks[c.curr].bh) \
            and not ksoftirqd_running(s, cpu):
        d = s.policy.softirq_from_hardirq(cpu, s.forced_irqthreads, s.now)
        if d == SOFTIRQ_INLINE:
            if c.level == L_TASK:
                suspend_task_step(s, cpu)
            cpu_charge(s, cpu, handler_ns, B_HARDIRQ, what)
            softirq_start(s, cpu, -1)
            return
        elif d == SOFTIRQ_KSOFTIRQD:
            wakeup_softirqd(s, cpu, B_HARDIRQ)
        elif d == DECISION_FAILED:
            policy_fault(s, "napikit_softirq_from_hardirq", cpu, None)
            return
        else:
            policy_fault(s, "napikit_softirq_from_hardirq", cpu,
                         f"returned {d}; allowed: SoftirqAction.INLINE (0), "
                         "SoftirqAction.KSOFTIRQD (1)")
            return
    cpu_charge(s, cpu, handler_ns, B_HARDIRQ, what)
    return_from_irq(s, cpu)
