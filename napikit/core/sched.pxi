# CPU execution and tasks: timed steps, hard-IRQ time, the per-CPU scheduler
# (kernel/sched/core.c, fair.c, rt.c), wake-ups and preemption. kernel-model.md A.2.7.
#
# A CPU executes one timed step at a time (a task's work, a softirq's work, or a context
# switch); one EV_STEP event marks its end. Hard-IRQ work does not get a step: it is
# charged at once and pushes back the end of whatever runs (steal), or, on a CPU running
# nothing, the start of the next step (busy_until).

cdef void cpu_charge(Sim s, int cpu, i64 ns, int bucket, int what) noexcept:
    """Charge ``ns`` of CPU time taken out of line (hard IRQ, IPI send, wake-up), for
    ``what`` (TW_*: the trace's name for it; an IPI's handler is traced even if free)."""
    cdef Cpu* c = &s.cpus[cpu]
    if tracing(s.trace_on) and (ns > 0 or TW_IPI_RPS <= what <= TW_IPI_DEFER):
        trace_charge(s, cpu, ns if ns > 0 else 0, bucket, what)
    if ns <= 0:
        return
    c.acct[bucket] = t_add(c.acct[bucket], ns)
    if bucket == B_SOFTIRQ or bucket == B_KSOFTIRQD:
        task_charge(s, cpu, L_SOFTIRQ, ns)
    if c.level != L_NONE:
        if c.step_seg:
            # the packets done so far are not delayed by it
            poll_step_stamp(s, cpu, s.now - c.step_start - c.stolen)
        c.steal = t_add(c.steal, ns)
        c.stolen = t_add(c.stolen, ns)
    else:
        c.busy_until = t_add(c.busy_until if c.busy_until > s.now else s.now, ns)


cdef void start_step(Sim s, int cpu, int level, i64 dur, int bucket) noexcept:
    cdef Cpu* c = &s.cpus[cpu]
    cdef i64 start = c.busy_until if c.busy_until > s.now else s.now
    c.level = level
    c.bucket = bucket
    c.step_start = start
    c.step_dur = dur
    c.step_end = t_add(start, dur)
    c.steal = 0
    c.stolen = 0
    c.step_seg = 0
    c.token += 1
    ev_push(s, c.step_end, EV_STEP, cpu, c.token)


cdef void step_done(Sim s, int cpu, int token) noexcept:
    """EV_STEP: the step ends, unless hard-IRQ time pushed its end back meanwhile."""
    cdef Cpu* c = &s.cpus[cpu]
    cdef int level
    if token != c.token:
        return  # the step was interrupted and rescheduled
    if c.steal:
        c.step_end = t_add(c.step_end, c.steal)
        c.steal = 0
        ev_push(s, c.step_end, EV_STEP, cpu, token)
        return
    if c.step_seg:
        c.seg_end = s.now   # process_backlog_deliver times the packets not yet stamped
        c.step_seg = 0
    if tracing(s.trace_on):
        trace_step(s, cpu, s.now, c.step_dur)
    level = c.level
    c.level = L_NONE
    c.idle_since = s.now
    if drawn(s.dist_mask, K_IDLE_ENTRY):
        c.idle_entry_drawn = cost_draw(s, K_IDLE_ENTRY)
    c.acct[c.bucket] = t_add(c.acct[c.bucket], c.step_dur)
    task_charge(s, cpu, level, c.step_dur)
    if level == L_SOFTIRQ:
        if s.preempt_rt and c.need_resched and c.curr >= 0 and \
                c.softirq_host_task == c.curr:
            # PREEMPT_RT: handle_softirqs in a task is preemptible like the task
            s.tasks[c.curr].sirq_resume = 1
            schedule(s, cpu)
            return
        softirq_continue(s, cpu)
    elif level == L_TASK:
        task_continue(s, cpu, c.curr)
    else:
        switch_done(s, cpu)


cdef void task_charge(Sim s, int cpu, int level, i64 ns) noexcept:
    """Charge time to the task it ran in: a task step to the task; softirq work (steps,
    and the IPIs and wake-ups it sends) to the task whose ``local_bh_enable`` (or
    ksoftirqd loop) runs it, or, at ``irq_exit``, to whichever task was interrupted
    (the "punished" task of the kernel change's argument). Softirq time on an idle CPU
    is charged to no task."""
    cdef Cpu* c = &s.cpus[cpu]
    cdef int ti
    if level == L_TASK:
        if c.curr >= 0:
            s.tasks[c.curr].runtime_ns = t_add(s.tasks[c.curr].runtime_ns, ns)
    elif level == L_SOFTIRQ:
        ti = c.softirq_host_task if c.softirq_host_task >= 0 else c.curr
        if ti >= 0:
            s.tasks[ti].softirq_ns = t_add(s.tasks[ti].softirq_ns, ns)


cdef void suspend_task_step(Sim s, int cpu) noexcept:
    """Interrupt the current task's step (preemption, or a softirq at irq_exit): the
    part not yet done is kept in the task and resumed when it runs again. Under
    PREEMPT_RT the step may be a softirq step of ``handle_softirqs`` running in the
    task: it resumes inside that frame."""
    cdef Cpu* c = &s.cpus[cpu]
    cdef Task* t = &s.tasks[c.curr]
    cdef i64 elapsed = s.now - c.step_start
    cdef i64 irq = c.stolen if c.stolen < elapsed else elapsed
    cdef i64 done = elapsed - irq
    if done > c.step_dur:
        done = c.step_dur
    if done < 0:
        done = 0
    if c.step_seg:
        poll_step_stamp(s, cpu, done)
    if tracing(s.trace_on):
        trace_step(s, cpu, s.now, done)
    t.rem_seg = c.step_seg
    c.step_seg = 0
    t.remaining = c.step_dur - done
    t.rem_bucket = c.bucket
    if c.level == L_SOFTIRQ:
        t.sirq_resume = 1
    c.acct[c.bucket] = t_add(c.acct[c.bucket], done)
    task_charge(s, cpu, c.level, done)
    # now + steal - irq, the IRQ time not yet served (summed so that it cannot wrap)
    c.busy_until = s.now if c.stolen < elapsed else t_add(c.step_start, c.stolen)
    c.steal = 0
    c.stolen = 0
    c.level = L_NONE
    c.token += 1


cdef void return_from_irq(Sim s, int cpu) noexcept:
    """Back from interrupt (and any softirq it ran) to the interrupted context, with the
    kernel's preemption check (``irqentry_exit_cond_resched``, or
    ``exit_to_user_mode_loop`` for user code: :func:`preemptible`)."""
    cdef Cpu* c = &s.cpus[cpu]
    if rt_softirq_preemptible(s, cpu):
        if c.need_resched:
            suspend_task_step(s, cpu)
            schedule(s, cpu)
        return
    if c.level == L_SOFTIRQ or c.level == L_SWITCH or softirq_running(s, cpu):
        return
    if c.curr < 0:
        if c.level == L_NONE and c.nr_running > 0:
            schedule(s, cpu)
        return
    if c.need_resched and preemptible(s, c.curr):
        if c.level == L_TASK:
            suspend_task_step(s, cpu)
        schedule(s, cpu)
    elif c.level == L_NONE:
        resume_task(s, cpu, c.curr)


cdef inline bint softirq_running(Sim s, int cpu) noexcept:
    """``handle_softirqs`` runs on the CPU now: from ``irq_exit``, or in a softirq step
    of the current task. (Under PREEMPT_RT its frame may belong to a task preempted
    inside it, or switched back to and not yet resumed.)"""
    cdef Cpu* c = &s.cpus[cpu]
    if not c.softirq_active:
        return False
    return c.softirq_host_task < 0 or (c.softirq_host_task == c.curr and c.level == L_SOFTIRQ)


cdef inline bint preemptible(Sim s, int ti) noexcept:
    """Whether ``ti`` may be preempted where it is now, at an arbitrary instruction
    (``irqentry_exit_cond_resched`` at interrupt return, the resched IPI): under PREEMPT_RT
    always; else outside BH sections, under ``preempt=full`` in kernel code too, under
    none and voluntary only in user code (``exit_to_user_mode_loop``, see
    :func:`task_in_user`)."""
    if s.preempt_rt:
        return True
    if s.tasks[ti].bh:
        return False
    return s.preempt_model == PREEMPT_FULL or task_in_user(s, ti)


# ---------------------------------------------------------------- preemption models
# KernelParams.preempt (PREEMPT_DYNAMIC's preempt=none|voluntary|full; kernel/sched/
# core.c sched_dynamic_update; kernel-model.md B.10.5). need_resched is set by the
# wake-up (or tick) in every model; what differs is where the switch may happen:
# - full: at once outside BH sections (preemptible), at every preempt_enable
#   (task_continue: local_bh_enable, the end of a task's step);
# - voluntary: at return to user space, blocking, cond_resched() and might_resched();
# - none: at return to user space, blocking and cond_resched() (PREEMPT_DYNAMIC keeps
#   __cond_resched live under none; only preempt_schedule and might_resched are off).
# The explicit points of the task state machines (core/workloads.pxi) are return to
# user space (SND_DONE, RCV_DONE) and cond_resched (ksoftirqd's KSI_AFTER,
# backlog_napi's BN_REPOLL): they act in every model.
cdef enum:
    PREEMPT_NONE = 0
    PREEMPT_VOLUNTARY = 1
    PREEMPT_FULL = 2


cdef inline bint task_in_user(Sim s, int ti) noexcept:
    """The task's steps run user code: only cyclictest's work loop (``work_ns``); the
    senders' and receivers' steps are their system calls, the kthreads kernel code."""
    return s.tasks[ti].kind == T_CYCLICTEST


cdef inline bint preempt_point(Sim s, int ti) noexcept:
    """Whether a reschedule is taken at :func:`task_continue`, the point where a
    task's step has ended or its BH section closed (``preempt_enable`` /
    ``local_bh_enable`` -> ``preempt_check_resched``): under full (and PREEMPT_RT)
    always; under voluntary at the ``might_resched()`` of the sender's skb allocation
    (``udp_sendmsg`` -> ``sock_alloc_send_pskb`` -> ``might_alloc``: the end of its
    ``udp_sendmsg`` step, before the transmit); in user code in every model."""
    cdef Task* t
    if s.preempt_model == PREEMPT_FULL or s.preempt_rt:
        return True
    t = &s.tasks[ti]
    if t.kind == T_CYCLICTEST:
        return True
    return s.preempt_model == PREEMPT_VOLUNTARY and t.kind == T_SENDER and t.pc == SND_XMIT


cdef inline bint rt_softirq_preemptible(Sim s, int cpu) noexcept:
    """PREEMPT_RT: the CPU runs a softirq step of ``handle_softirqs`` in its current
    task (which is just a task in a BH section there), so it may be preempted."""
    cdef Cpu* c = &s.cpus[cpu]
    return s.preempt_rt and c.level == L_SOFTIRQ and c.curr >= 0 and \
        c.softirq_host_task == c.curr


# ---------------------------------------------------------------- wake-ups

cdef void wake_up(Sim s, int waker_cpu, int ti, int bucket) noexcept:
    """``try_to_wake_up``: the waker pays ``wakeup_ns``; a task on this CPU becomes
    runnable at once. ``waker_cpu`` < 0: woken by a timer, at no cost.

    A task on another CPU goes through ``ttwu_queue``. ``ttwu_queue_cond`` (all CPUs
    share a cache here) picks ``ttwu_queue_wakelist`` when the target's run queue is
    empty (``!cpu_rq(cpu)->nr_running``): the wake-up is queued on its wakelist and
    ``__smp_call_single_queue`` -> ``send_call_function_single_ipi`` interrupts it,
    unless it idles polling (``set_nr_if_polling``): then its idle loop runs the
    wakelist (``flush_smp_call_function_queue``) once it has left, ``idle_exit_poll_ns``
    later, no interrupt. The IPI costs the waker ``ipi_send_ns`` more, is counted in ``wakeup_ipis`` (the CAL row of
    ``/proc/interrupts``; ``ipis`` stays the RPS IPIs), lands ``wakeup_latency_ns``
    later (plus the exit latency of a halted CPU) and runs ``sched_ttwu_pending`` in
    hard IRQ there (``ipi_handler_ns``). A target running something is woken by the
    waker itself (``ttwu_do_activate`` on its run queue), runnable ``wakeup_latency_ns``
    later. Simplification: the reschedule IPI that wake-up may need (RES) is not
    modelled apart from that latency.

    A task that DELAY_DEQUEUE kept queued is still on its run queue (``p->on_rq``):
    ``ttwu_runnable`` requeues it at once, from whichever CPU wakes it, under that
    queue's lock: no wakelist, no IPI, no placement (:func:`activate`)."""
    cdef Task* t = &s.tasks[ti]
    cdef Cpu* c
    cdef int state
    cdef i64 at
    if t.state != TS_SLEEPING:
        return
    if tracing(s.trace_on):
        trace_rec(s, TR_WAKE, s.now, 0, waker_cpu, ti, t.cpu, -1)
    if t.kind == T_KSOFTIRQD:
        s.ksoftirqd_wakeups += 1
    elif t.kind == T_BACKLOG_NAPI:
        s.backlog_thread_wakeups += 1
    if waker_cpu >= 0:
        cpu_charge(s, waker_cpu, cost_of(s, K_WAKEUP, s.c_wakeup), bucket, TW_WAKEUP)
    if t.delayed or waker_cpu < 0 or waker_cpu == t.cpu:
        activate(s, ti)
        return
    c = &s.cpus[t.cpu]
    task_set_state(s, ti, TS_WAKING)
    if c.curr >= 0 or c.nr_running > 0:
        ev_push(s, s.now + cost_of(s, K_WAKEUP_LATENCY, s.c_wakeup_latency), EV_WAKE, ti, 0)
        return
    state = cpu_idle_state(s, t.cpu)
    if state == CPU_POLLING:
        ev_push(s, s.now + cost_of(s, K_IDLE_EXIT_POLL, s.c_idle_exit_poll), EV_WAKE, ti, 0)
        return
    if s.csd_coalesce and c.csd_pending and s.now < c.csd_at:
        # an IPI to its call_single_queue is in flight: the wake-up rides on it
        s.coalesced_csds += 1
        cpu_charge(s, waker_cpu, kick_send_cost(s), bucket, TW_CSD_QUEUE)
        ev_push(s, c.csd_at, EV_WAKE_IPI, ti, -2 - t.cpu)
        return
    s.wakeup_ipis += 1
    cpu_charge(s, waker_cpu, cost_of(s, K_IPI_SEND, s.c_ipi_send), bucket, TW_IPI_SEND)
    at = s.now + cost_of(s, K_WAKEUP_LATENCY, s.c_wakeup_latency) + \
        (s.c_idle_exit if state == CPU_HALTED else 0)
    c.csd_pending = 1
    c.csd_at = at
    ev_push(s, at, EV_WAKE_IPI, ti, t.cpu)
    if tracing(s.trace_on):
        trace_ipi(s, waker_cpu, t.cpu, s.now, TW_IPI_WAKE)


cdef void wakelist_ipi_arrives(Sim s, int ti, int cpu) noexcept:
    """EV_WAKE_IPI: the call-function IPI of a wakelist wake-up reaches ``cpu``; its
    hard-IRQ handler runs ``sched_ttwu_pending`` (``ttwu_do_activate``), then
    ``irq_exit``. A task moved off ``cpu`` meanwhile (hotplug: the dying CPU's wakelist
    is flushed) is woken where it is now, with no interrupt. A wake-up that rode on
    another csd's IPI (``cpu`` < -1: queued while that IPI was in flight) is activated
    with no interrupt of its own, after that IPI's handler."""
    activate(s, ti)
    if cpu >= 0 and s.tasks[ti].cpu == cpu and s.cpus[cpu].online:
        csd_flush(s, cpu)
        irq_exit(s, cpu, cost_of(s, K_IPI_HANDLER, s.c_ipi_handler), TW_IPI_WAKE)


cdef void activate(Sim s, int ti) noexcept:
    """``ttwu_do_activate`` + ``wakeup_preempt``: enqueue (the fair class places the
    task: :func:`fair_enqueue`) and preempt the current task if the woken one should
    run first. A delayed task is still queued and counted: ``ttwu_runnable`` requeues
    it (:func:`requeue_delayed_entity`), then the same preemption check."""
    cdef Task* t = &s.tasks[ti]
    cdef int cpu = t.cpu
    cdef Cpu* c = &s.cpus[cpu]
    if t.delayed:
        requeue_delayed_entity(s, cpu, ti)
        task_set_state(s, ti, TS_RUNNABLE)
    else:
        fair_enqueue(s, cpu, ti)   # before it counts: update_curr sees the queue without it
        task_set_state(s, ti, TS_RUNNABLE)
        c.nr_running += 1
        if c.nr_running >= 2:
            tick_start(s, cpu)
    if c.curr < 0 or should_preempt(s, cpu, ti):
        c.need_resched = 1
        resched_curr(s, cpu)


cdef void resched_curr(Sim s, int cpu) noexcept:
    """``resched_curr``: the CPU acts on ``need_resched`` once the code that woke the
    task is done (an idle CPU leaves its idle loop, a busy one takes the resched IPI or
    reaches its next preemption point). Never a switch in the middle of the waker: a
    wake-up from ``enqueue_to_backlog`` must not run the thread before the packet is
    queued."""
    cdef Cpu* c = &s.cpus[cpu]
    if not c.resched_pending:
        c.resched_pending = 1
        ev_push(s, s.now, EV_RESCHED, cpu, c.gen)


cdef void resched_event(Sim s, int cpu) noexcept:
    """EV_RESCHED: switch now if the CPU is idle, or runs a task step that may be
    preempted (outside BH sections and softirqs, in kernel code only under
    ``preempt=full``: :func:`preemptible`); otherwise ``need_resched`` waits for the
    next preemption point the model has."""
    cdef Cpu* c = &s.cpus[cpu]
    c.resched_pending = 0
    if not c.need_resched:
        return
    if rt_softirq_preemptible(s, cpu):
        suspend_task_step(s, cpu)
        schedule(s, cpu)
        return
    if softirq_running(s, cpu):
        return
    if c.curr < 0:
        if c.level == L_NONE:
            schedule(s, cpu)
    elif c.level == L_TASK and preemptible(s, c.curr):
        suspend_task_step(s, cpu)
        schedule(s, cpu)


cdef bint should_preempt(Sim s, int cpu, int ti) noexcept:
    """``wakeup_preempt``: RT beats the fair class, higher RT priority beats lower;
    between fair tasks the class decides (:func:`fair_wakeup_preempt`)."""
    cdef Task* t = &s.tasks[ti]
    cdef Task* cur = &s.tasks[s.cpus[cpu].curr]
    if t.policy == SCHED_FIFO:
        return cur.policy != SCHED_FIFO or t.prio > cur.prio
    if cur.policy == SCHED_FIFO:
        return False
    return fair_wakeup_preempt(s, cpu, ti)


cdef void tick_start(Sim s, int cpu) noexcept:
    """Keep the scheduler tick running while two or more tasks compete (NO_HZ idle)."""
    cdef Cpu* c = &s.cpus[cpu]
    if c.tick_pending:
        return
    c.tick_pending = 1
    ev_push(s, (s.now // s.tick_ns + 1) * s.tick_ns, EV_TICK, cpu, c.gen)


cdef void scheduler_tick(Sim s, int cpu) noexcept:
    """EV_TICK: ``sched_tick`` -> the running fair task's ``task_tick_fair``
    (:func:`fair_tick`), then the tick's ``irq_exit``, which also runs pending softirqs
    (kernel-model.md B.6.3)."""
    cdef Cpu* c = &s.cpus[cpu]
    c.tick_pending = 0
    if c.nr_running < 2 or not c.online:
        return
    if c.curr >= 0 and s.tasks[c.curr].policy == SCHED_NORMAL:
        fair_tick(s, cpu)
    tick_start(s, cpu)
    irq_exit(s, cpu, 0, TW_TICK)


# ---------------------------------------------------------------- __schedule

cdef void schedule(Sim s, int cpu) noexcept:
    """``__schedule``: pick the highest SCHED_FIFO task (ties: the one listed first),
    else what the fair class picks (:func:`fair_pick`, which dequeues the delayed tasks
    it picks); switching to a task costs ``context_switch_ns``, switching to idle
    nothing."""
    cdef Cpu* c = &s.cpus[cpu]
    cdef int prev = c.curr
    cdef int best = -1
    cdef int i, ti, nfair = 0, onefair = -1
    cdef Task* t
    update_curr(s, cpu)
    for i in range(s.cpu_ntasks[cpu]):
        ti = s.cpu_tasks[cpu * s.max_tasks_per_cpu + i]
        t = &s.tasks[ti]
        if t.state != TS_RUNNING and t.state != TS_RUNNABLE and not t.delayed:
            continue
        if t.policy == SCHED_FIFO:
            if best < 0 or t.prio > s.tasks[best].prio:
                best = ti
        elif t.cpu == cpu:
            nfair += 1
            onefair = ti
    if best < 0 and nfair:
        # a lone fair task is what either class picks (a delayed one is dequeued there)
        best = onefair if nfair == 1 and not s.tasks[onefair].delayed else fair_pick(s, cpu)
    c.need_resched = 0
    if best == prev:
        if prev >= 0:
            s.tasks[prev].slice_start = s.now
            resume_task(s, cpu, prev)
        return
    s.context_switches += 1
    if tracing(s.trace_on):
        trace_rec(s, TR_SWITCH, s.now, 0, cpu, prev, best, -1)
    if s.swlog_cap:
        log_switch(s, cpu, prev, best)
    if prev >= 0:
        t = &s.tasks[prev]
        t.switches += 1
        if t.state == TS_RUNNING:
            task_set_state(s, prev, TS_RUNNABLE)
            s.involuntary_switches += 1
    c.curr = best
    if best < 0:
        return
    t = &s.tasks[best]
    task_set_state(s, best, TS_RUNNING)
    # EEVDF: the switch is the scheduler's time, not the task's (a switch dearer than
    # a slice would otherwise use up each slice before the task ran: no progress)
    cdef i64 cs = cost_of(s, K_CONTEXT_SWITCH, s.c_context_switch)
    t.exec_start = s.now + (cs if s.fair_class == FAIR_EEVDF else 0)
    fair_set_next(s, best)
    if cs > 0:
        start_step(s, cpu, L_SWITCH, cs, B_SCHED)
    else:
        switch_done(s, cpu)


cdef void log_switch(Sim s, int cpu, int prev, int next) noexcept:
    """One record of the switch log (:meth:`Sim.record_switches`), while it has room:
    time, CPU, the tasks, the previous task's vruntime, the next one's vruntime and
    deadline, V of the queue the next is picked from, the lag the previous task keeps
    if it sleeps (EEVDF; 0 under CFS) and its state."""
    cdef i64* r
    cdef i64 load
    if s.swlog_n >= s.swlog_cap:
        return
    r = &s.swlog[s.swlog_n * SWITCH_LOG_WIDTH]
    s.swlog_n += 1
    r[0] = s.now
    r[1] = cpu
    r[2] = prev
    r[3] = next
    r[4] = s.tasks[prev].vruntime if prev >= 0 else 0
    r[5] = s.tasks[next].vruntime if next >= 0 else 0
    r[6] = s.tasks[next].deadline if next >= 0 else 0
    r[7] = avg_vruntime(s, cpu, -1, &load, False)   # logging changes nothing
    r[8] = s.tasks[prev].vlag if prev >= 0 else 0
    r[9] = s.tasks[prev].state if prev >= 0 else -1


cdef void switch_done(Sim s, int cpu) noexcept:
    """The switch is over: take an interrupt that waited for IRQs, then run the task."""
    cdef Cpu* c = &s.cpus[cpu]
    if c.irq_deferred:
        c.irq_deferred = 0
        irq_exit(s, cpu, 0, TW_OTHER)
        return
    if c.curr >= 0:
        resume_task(s, cpu, c.curr)


cdef void resume_task(Sim s, int cpu, int ti) noexcept:
    """Continue ``ti``: finish an interrupted step first, else run its state machine."""
    cdef Task* t = &s.tasks[ti]
    cdef i64 rem
    cdef int sirq = t.sirq_resume
    t.sirq_resume = 0
    if t.remaining >= 0:
        rem = t.remaining
        t.remaining = -1
        start_step(s, cpu, L_SOFTIRQ if sirq else L_TASK, rem, t.rem_bucket)
        if t.rem_seg:
            poll_step_resumed(s, cpu, t.rem_seg, rem)
            t.rem_seg = 0
    elif sirq:
        softirq_continue(s, cpu)
    else:
        task_run(s, cpu, ti)


cdef void task_continue(Sim s, int cpu, int ti) noexcept:
    """A preemption point in ``ti`` (``preempt_enable`` after a step or a BH section):
    switch if a reschedule is due and the preemption model takes it here
    (:func:`preempt_point`), else carry on; the state machine's own points (return to
    user space, ``cond_resched``) follow in ``task_run``."""
    if s.cpus[cpu].need_resched and not s.tasks[ti].bh and preempt_point(s, ti):
        schedule(s, cpu)
    else:
        task_run(s, cpu, ti)


cdef void bh_disable(Sim s, int cpu, int ti) noexcept:
    """``local_bh_disable`` of a task's outermost BH section (``softirq_ctrl.cnt``)."""
    s.tasks[ti].bh = 1
    s.cpus[cpu].bh_cnt += 1


cdef void bh_leave(Sim s, int cpu, int ti) noexcept:
    """The task's outermost BH section ends; a CPU going down may now stop."""
    cdef Cpu* c = &s.cpus[cpu]
    s.tasks[ti].bh = 0
    c.bh_cnt -= 1
    if c.bh_cnt == 0 and c.stopper_waiting:
        c.stopper_waiting = 0
        wake_up(s, -1, s.stopper_task[cpu], 0)


cdef void task_sleep(Sim s, int cpu, int ti) noexcept:
    """``set_current_state(TASK_INTERRUPTIBLE); schedule()`` (``__schedule`` ->
    ``block_task``); a task DELAY_DEQUEUE keeps queued stays counted in nr_running."""
    if not fair_dequeue(s, cpu, ti, True):
        s.cpus[cpu].nr_running -= 1
    task_set_state(s, ti, TS_SLEEPING)
    schedule(s, cpu)


cdef void task_exit(Sim s, int cpu, int ti) noexcept:
    fair_dequeue(s, cpu, ti, False)   # TASK_DEAD: DEQUEUE_SPECIAL, never delayed
    task_set_state(s, ti, TS_DEAD)
    s.cpus[cpu].nr_running -= 1
    schedule(s, cpu)
