# CPU hotplug: requests run one at a time (kernel/cpu.c, cpu_hotplug_lock); smpboot
# parks and unparks the per-CPU threads (kernel/smpboot.c); the stopper takes the CPU
# down (stop_machine, take_cpu_down); its tasks move (select_fallback_rq), its
# interrupts move (irq_migrate_all_off_this_cpu); dev_cpu_dead re-injects its backlog
# on a surviving CPU (net/core/dev.c). kernel-model.md A.2.10, B.5.4.
#
# Simplifications: bringing a CPU up takes no time; the control CPU, the fallback CPU
# of moved tasks and the new CPU of moved interrupts are all the lowest-numbered online
# CPU, and nothing moves back when the CPU returns (no load balancing is modelled).


cdef int first_online(Sim s) noexcept:
    cdef int cpu
    for cpu in range(s.ncpus):
        if s.cpus[cpu].online:
            return cpu
    return -1


cdef void cpu_hotplug_start(Sim s, int i) noexcept:
    """EV_HOTPLUG: request ``i`` is due (the previous one has completed)."""
    if s.hp_online[i]:
        cpu_up(s, i)
    else:
        cpu_down_start(s, s.hp_cpu[i])


cdef void hotplug_done(Sim s, int i) noexcept:
    """Request ``i`` completed: start the next one when it is due."""
    cdef i64 t
    s.hp_done[i] = s.now
    s.hp_next = i + 1
    if s.hp_next < s.hp_n:
        t = s.hp_time[s.hp_next]
        ev_push(s, t if t > s.now else s.now, EV_HOTPLUG, s.hp_next, 0)


cdef inline int smpboot_thread(Sim s, int cpu, int i) noexcept:
    """The CPU's ``i``-th smpboot thread (0: ksoftirqd, 1: backlog_napi), -1 if none."""
    return s.ksoftirqd_task[cpu] if i == 0 else s.backlog_task[cpu]


cdef inline bint per_cpu_kthread(Sim s, int ti) noexcept:
    cdef int kind = s.tasks[ti].kind
    return kind == T_KSOFTIRQD or kind == T_BACKLOG_NAPI or kind == T_STOPPER


# ---------------------------------------------------------------- going down

cdef void cpu_down_start(Sim s, int cpu) noexcept:
    """``cpu_down`` as far as ``CPUHP_AP_SMPBOOT_THREADS``: ``smpboot_park_threads``
    asks each per-CPU thread to park; a sleeping one parks at once, a busy one at the
    top of its ``smpboot_thread_fn`` loop (a backlog thread first drains its backlog).
    When all are parked the stopper is woken (``stop_machine``). A sleeper DELAY_DEQUEUE
    kept queued leaves the queue first (simplified: the kernel wakes it, and it dequeues
    as it parks)."""
    cdef int i, ti
    s.cpus[cpu].going_down = 1
    for i in range(2):
        ti = smpboot_thread(s, cpu, i)
        if ti >= 0 and s.tasks[ti].state == TS_SLEEPING:
            if s.tasks[ti].delayed:
                dequeue_delayed(s, cpu, ti)
            task_set_state(s, ti, TS_PARKED)
    stop_machine_if_parked(s, cpu)


cdef void kthread_parkme(Sim s, int cpu, int ti) noexcept:
    """``kthread_parkme``: a running per-CPU thread saw ``kthread_should_park``."""
    fair_dequeue(s, cpu, ti, False)   # TASK_PARKED: DEQUEUE_SPECIAL, never delayed
    task_set_state(s, ti, TS_PARKED)
    s.tasks[ti].pc = 0
    s.cpus[cpu].nr_running -= 1
    stop_machine_if_parked(s, cpu)
    schedule(s, cpu)


cdef void stop_machine_if_parked(Sim s, int cpu) noexcept:
    cdef int i, ti
    for i in range(2):
        ti = smpboot_thread(s, cpu, i)
        if ti >= 0 and s.tasks[ti].state != TS_PARKED:
            return
    wake_up(s, -1, s.stopper_task[cpu], 0)


cdef void run_stopper(Sim s, int cpu, int ti) noexcept:
    """``migration/N`` runs ``take_cpu_down`` (SCHED_FIFO 99: it preempts everything at
    the next preemption point). Tasks inside a BH section are pinned (PREEMPT_RT:
    ``migrate_disable``): the stopper waits until the last one leaves it."""
    cdef Cpu* c = &s.cpus[cpu]
    if c.bh_cnt > 0:
        c.stopper_waiting = 1
        task_sleep(s, cpu, ti)
        return
    task_set_state(s, ti, TS_SLEEPING)
    c.nr_running -= 1
    c.curr = -1
    take_cpu_down(s, cpu)


cdef void take_cpu_down(Sim s, int cpu) noexcept:
    """The CPU stops: its tasks move to the fallback CPU (``select_fallback_rq``: a task
    pinned to it alone has its affinity broken, "no longer affine to cpuN") and its
    interrupts move; then ``dev_cpu_dead`` runs on a surviving CPU. Its pending softirq
    bits stay set, as per-CPU data does, and are served when it returns (that also
    ends a ``net_rx_action`` that left ``in_net_rx_action`` set with NET_RX raised)."""
    cdef Cpu* c = &s.cpus[cpu]
    cdef int dest, i, ti, n, kept
    cdef Source* src
    c.online = 0
    c.going_down = 0
    c.gen += 1
    c.csd_pending = 0   # its csd queue is flushed (dev_cpu_dead resets the backlog)
    c.csd_rps = 0
    c.offline_since = s.now
    dest = first_online(s)
    kept = 0
    n = s.cpu_ntasks[cpu]
    for i in range(n):
        ti = s.cpu_tasks[cpu * s.max_tasks_per_cpu + i]
        if per_cpu_kthread(s, ti):
            s.cpu_tasks[cpu * s.max_tasks_per_cpu + kept] = ti
            kept += 1
        else:
            migrate_task(s, ti, cpu, dest)
    s.cpu_ntasks[cpu] = kept
    for i in range(s.nsources):
        src = &s.sources[i]
        if src.kind == SRC_NIC and src.cpu == cpu:
            src.cpu = dest
    c.nr_running = 0
    c.need_resched = 0
    c.level = L_NONE
    c.token += 1
    c.steal = 0
    c.stolen = 0
    c.busy_until = 0
    c.irq_deferred = 0
    c.tick_pending = 0
    c.resched_pending = 0
    dev_cpu_dead(s, cpu, dest)


cdef void migrate_task(Sim s, int ti, int from_cpu, int dest) noexcept:
    """Move a task to ``dest``; a runnable one is enqueued there with its lag kept
    (:func:`fair_migrate`) and may preempt what runs there. A sleeper DELAY_DEQUEUE
    kept queued leaves the dying CPU's queue first, as its pick there would, and moves
    asleep."""
    cdef Task* t = &s.tasks[ti]
    cdef Cpu* d = &s.cpus[dest]
    s.cpu_tasks[dest * s.max_tasks_per_cpu + s.cpu_ntasks[dest]] = ti
    s.cpu_ntasks[dest] += 1
    if t.delayed:
        dequeue_delayed(s, from_cpu, ti)
    if t.state != TS_RUNNABLE:
        t.cpu = dest
        return
    fair_migrate(s, ti, from_cpu, dest)
    d.nr_running += 1
    if d.nr_running >= 2:
        tick_start(s, dest)
    if d.curr < 0 or should_preempt(s, dest, ti):
        d.need_resched = 1
        resched_curr(s, dest)


cdef void dev_cpu_dead(Sim s, int oldcpu, int cpu) noexcept:
    """``dev_cpu_dead(oldcpu)`` on ``cpu``: the dead CPU's backlog leaves its poll list
    with its state reset to THREADED; its pending RPS IPIs are sent from here; every
    packet of its ``process_queue``, then ``input_pkt_queue``, goes through ``netif_rx``
    here again (RPS, ``enqueue_to_backlog``: it may be dropped there, counted). The
    softirqs that raises run as at an interrupt's exit on this CPU.

    Simplification: a backlog scheduled by an IPI not yet delivered (in flight, or
    still on another CPU's ``rps_ipi_list``) is reset too, as the kernel's flush of the
    dying CPU's csd queue would have put it on the poll list; in thread mode a pending
    SCHED_THREADED is kept and served when the CPU returns (B.5.4)."""
    cdef Softnet* old = &s.sd[oldcpu]
    cdef int i, j, k, hp = s.hp_next
    cdef i64 n = ring_len(&old.process_queue) + ring_len(&old.input_pkt_queue)
    old.on_poll_list = 0
    if not (old.napi_state & NAPIF_STATE_SCHED_THREADED):
        old.napi_state &= NAPIF_STATE_THREADED
    for i in range(s.ncpus):
        k = 0
        for j in range(s.sd[i].rps_ipi_n):
            if s.sd[i].rps_ipi_list[j] != oldcpu:
                s.sd[i].rps_ipi_list[k] = s.sd[i].rps_ipi_list[j]
                k += 1
        s.sd[i].rps_ipi_n = k
    if old.rps_ipi_n:
        send_rps_ipis_of(s, oldcpu, cpu, B_CPUHP)
    while ring_len(&old.process_queue) and not s.failed:
        reinject(s, oldcpu, &old.process_queue, cpu)
    while ring_len(&old.input_pkt_queue) and not s.failed:
        reinject(s, oldcpu, &old.input_pkt_queue, cpu)
    s.reinjected += n
    s.hp_reinjected[hp] = n
    if tracing(s.trace_on):
        trace_backlog(s, oldcpu)
    hotplug_done(s, hp)
    if not s.failed:
        irq_exit(s, cpu, 0, TW_HOTPLUG)


cdef void reinject(Sim s, int oldcpu, Ring* q, int cpu) noexcept:
    """One ``netif_rx`` of ``dev_cpu_dead``'s loop, ``rps_input_queue_head_incr``."""
    cdef int idx = ring_pop(q)
    s.sd[oldcpu].input_queue_head += 1
    cpu_charge(s, cpu, cost_of(s, K_NETIF_RX, s.c_netif_rx), B_CPUHP, TW_NETIF_RX)
    netif_rx(s, cpu, idx, &s.sources[s.pkts[idx].src], B_CPUHP)


# ---------------------------------------------------------------- coming up

cdef void cpu_up(Sim s, int i) noexcept:
    """``cpu_up``: the CPU is online with an empty run queue; smpboot creates its
    per-CPU threads if it never was online (``backlog_napi_setup`` marks the backlog
    THREADED) or unparks them; each then runs its loop once (a backlog left
    SCHED_THREADED is polled). Moved tasks and interrupts stay where they went."""
    cdef int cpu = s.hp_cpu[i]
    cdef Cpu* c = &s.cpus[cpu]
    cdef int j, ti
    c.online = 1
    c.offline_ns += s.now - c.offline_since
    c.busy_until = s.now
    if c.min_vruntime < UPTIME_NS:
        c.min_vruntime = UPTIME_NS
    s.sd[cpu].napi_weight = s.dev_rx_weight
    if s.tasks[s.stopper_task[cpu]].state == TS_ABSENT:
        task_set_state(s, s.stopper_task[cpu], TS_SLEEPING)
    for j in range(2):
        ti = smpboot_thread(s, cpu, j)
        if ti < 0:
            continue
        if s.tasks[ti].state == TS_ABSENT and s.tasks[ti].kind == T_BACKLOG_NAPI:
            s.sd[cpu].napi_state |= NAPIF_STATE_THREADED
        # kthread_unpark: woken by its creator, not a softirq or NAPI wake-up
        task_set_state(s, ti, TS_SLEEPING)
        s.tasks[ti].pc = 0
        activate(s, ti)
    hotplug_done(s, i)
