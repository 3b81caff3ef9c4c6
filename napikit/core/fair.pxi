# The fair scheduling class (kernel/sched/fair.c) behind one seam: __schedule and the
# enqueue, dequeue, wake-up preemption and tick paths call these, and they call the
# class the modelled kernel has (KernelParams.scheduler): EEVDF (core/eevdf.pxi, Linux
# 6.6 and later) or CFS (core/cfs.pxi, before). kernel-model.md B.10.7.
#
# A CPU's fair run queue is its tasks (cpu_tasks) that are SCHED_NORMAL, on it
# (``cpu``: a task being migrated away is not) and running or runnable, or asleep and
# kept queued by DELAY_DEQUEUE (``delayed``); the running one is ``cfs_rq->curr``. Few
# tasks share a CPU, so the queue is scanned, not a tree.

cdef enum:
    FAIR_EEVDF = 0
    FAIR_CFS = 1
    NICE_0_LOAD = 1024    # scale_load_down(NICE_0_LOAD)


cdef inline bint fair_queued(Sim s, int cpu, int ti) noexcept:
    """``se->on_rq`` for a fair task on ``cpu`` (a delayed sleeper is on it)."""
    cdef Task* t = &s.tasks[ti]
    return t.policy == SCHED_NORMAL and t.cpu == cpu and (
        t.state == TS_RUNNING or t.state == TS_RUNNABLE or t.delayed)


cdef inline i64 calc_delta_fair(i64 delta, Task* t) noexcept:
    """``calc_delta_fair``: ``delta`` of real time in the task's virtual time,
    ``delta * NICE_0_LOAD / weight`` (the kernel's fixed-point ``__calc_delta`` rounds
    a little differently)."""
    if t.weight == NICE_0_LOAD:
        return delta
    return delta * NICE_0_LOAD // t.weight


cdef void update_curr(Sim s, int cpu) noexcept:
    """``update_curr``: charge the running task's time to its vruntime and move
    ``min_vruntime`` forward (``update_min_vruntime``: the smallest vruntime among the
    queued tasks, never backwards; under EEVDF where the queue is next summed,
    :func:`fair_sums`); under EEVDF a task past its deadline gets the next one
    (``update_deadline``)."""
    cdef Cpu* c = &s.cpus[cpu]
    cdef Task* t
    cdef int i, ti
    cdef i64 m
    if c.curr < 0:
        return
    t = &s.tasks[c.curr]
    if s.now > t.exec_start:   # not while the switch to it runs (EEVDF)
        if t.policy == SCHED_NORMAL:
            if s.fair_class == FAIR_EEVDF and not c.tick_pending and t.state == TS_RUNNING:
                lone_ticks(s, t)
            t.vruntime += calc_delta_fair(s.now - t.exec_start, t)
        t.exec_start = s.now
    elif s.fair_class == FAIR_EEVDF:
        return   # delta_exec <= 0
    if s.fair_class == FAIR_EEVDF:
        # min_vruntime moves in fair_sums, where the queue is scanned anyway
        if t.policy == SCHED_NORMAL and t.state == TS_RUNNING:
            update_deadline(s, cpu, c.curr)
        return
    m = -1
    for i in range(s.cpu_ntasks[cpu]):
        ti = s.cpu_tasks[cpu * s.max_tasks_per_cpu + i]
        if fair_queued(s, cpu, ti):
            if m < 0 or s.tasks[ti].vruntime < m:
                m = s.tasks[ti].vruntime
    if m > c.min_vruntime:
        c.min_vruntime = m


cdef void fair_enqueue(Sim s, int cpu, int ti) noexcept:
    """``enqueue_entity``: ``ti`` joins the fair run queue of ``cpu``; called before it
    is counted there (``update_curr`` runs on the queue without it, as the kernel's
    does before ``__enqueue_entity``)."""
    if s.tasks[ti].policy != SCHED_NORMAL:
        return
    if s.fair_class == FAIR_EEVDF:
        update_curr(s, cpu)
        place_entity(s, cpu, ti)
    else:
        cfs_place_entity(s, cpu, ti)


cdef bint fair_dequeue(Sim s, int cpu, int ti, bint sleep) noexcept:
    """``dequeue_entity``, called while ``ti`` is still queued: under EEVDF its lag is
    kept for its next enqueue (``update_entity_lag``). With DELAY_DEQUEUE a task going
    to sleep (``DEQUEUE_SLEEP``; parking and exit are special states, never delayed)
    that is not eligible stays queued instead (``set_delayed``) and True is returned:
    it still counts in nr_running, until it is picked (:func:`fair_pick`) or woken
    (:func:`requeue_delayed_entity`)."""
    cdef i64 avg, load
    if s.fair_class != FAIR_EEVDF or s.tasks[ti].policy != SCHED_NORMAL:
        return False
    update_curr(s, cpu)
    if sleep and s.delay_dequeue:
        fair_sums(s, cpu, -1, &avg, &load, True)
        if not vruntime_eligible(s, cpu, s.tasks[ti].vruntime, avg, load):
            s.tasks[ti].delayed = 1
            return True
    update_entity_lag(s, cpu, ti)
    return False


cdef void fair_migrate(Sim s, int ti, int from_cpu, int dest) noexcept:
    """A runnable task moves from ``from_cpu`` to ``dest`` (``move_queued_task``:
    dequeue there, ``set_task_cpu``, enqueue here); ``t.cpu`` is still ``from_cpu``."""
    cdef Task* t = &s.tasks[ti]
    if t.policy != SCHED_NORMAL:
        t.cpu = dest
        return
    if s.fair_class == FAIR_EEVDF:
        update_entity_lag(s, from_cpu, ti)
        update_curr(s, dest)   # before it is on dest's queue
        t.cpu = dest
        place_entity(s, dest, ti)
    else:
        # migrate_task_rq_fair: the vruntime keeps its distance to min_vruntime
        t.vruntime += s.cpus[dest].min_vruntime - s.cpus[from_cpu].min_vruntime
        t.cpu = dest


cdef bint fair_wakeup_preempt(Sim s, int cpu, int ti) noexcept:
    """``check_preempt_wakeup_fair`` (``check_preempt_wakeup`` before EEVDF): whether
    the fair task ``ti``, just enqueued, preempts the fair task running on ``cpu``."""
    update_curr(s, cpu)
    if s.fair_class == FAIR_CFS:
        return cfs_wakeup_preempt(s, cpu, ti)
    if s.cpus[cpu].need_resched:
        return False   # test_tsk_need_resched(curr): a switch is due already
    return pick_eevdf(s, cpu) == ti


cdef int fair_pick(Sim s, int cpu) noexcept:
    """``pick_task_fair`` -> ``pick_next_entity``: the fair task to run next on ``cpu``,
    or -1. A delayed task picked leaves the queue for real (:func:`dequeue_delayed`)
    and the pick starts again (``goto again``): a queue of delayed tasks only ends
    empty, and the CPU idles."""
    cdef int ti
    if s.fair_class == FAIR_CFS:
        return cfs_pick(s, cpu)
    while True:
        ti = pick_eevdf(s, cpu)
        if ti < 0 or not s.tasks[ti].delayed:
            return ti
        dequeue_delayed(s, cpu, ti)


cdef void fair_set_next(Sim s, int ti) noexcept:
    """``set_next_entity``: ``ti`` becomes the CPU's running task (a switch to it; a
    pick of the task already running does not pass here, as in the kernel's
    ``CONFIG_FAIR_GROUP_SCHED`` path of ``pick_next_task_fair``)."""
    cdef Task* t = &s.tasks[ti]
    t.slice_start = s.now
    t.picked_deadline = t.deadline


cdef void fair_tick(Sim s, int cpu) noexcept:
    """``task_tick_fair`` -> ``entity_tick`` on the running fair task: EEVDF's
    ``update_curr`` (a used-up slice asks for a reschedule there), CFS's
    ``check_preempt_tick``."""
    update_curr(s, cpu)
    if s.fair_class == FAIR_CFS:
        cfs_check_preempt_tick(s, cpu)
