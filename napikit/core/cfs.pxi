# CFS, the fair class before EEVDF (kernel/sched/fair.c up to 6.5): the task with the
# smallest vruntime runs, a woken one preempts when it lags by more than the wake-up
# granularity, a sleeper is placed at most half a latency period behind, and the tick
# ends a slice of sched_latency shared among the runnable. KernelParams.scheduler =
# "cfs"; kernel-model.md B.10.7.

cdef void cfs_place_entity(Sim s, int cpu, int ti) noexcept:
    """``place_entity`` with GENTLE_FAIR_SLEEPERS: a sleeper's vruntime is lifted to
    no more than ``sched_latency / 2`` behind ``min_vruntime``."""
    cdef Task* t = &s.tasks[ti]
    cdef i64 floor_vr = s.cpus[cpu].min_vruntime - s.sched_latency // 2
    if t.vruntime < floor_vr:
        t.vruntime = floor_vr


cdef bint cfs_wakeup_preempt(Sim s, int cpu, int ti) noexcept:
    """``check_preempt_wakeup`` -> ``wakeup_preempt_entity``: the woken task preempts
    when the running one is ahead by more than ``wakeup_gran``, the wake-up granularity
    in the woken task's virtual time."""
    cdef Task* t = &s.tasks[ti]
    cdef Task* cur = &s.tasks[s.cpus[cpu].curr]
    return cur.vruntime - t.vruntime > calc_delta_fair(s.sched_wakeup_gran, t)


cdef int cfs_pick(Sim s, int cpu) noexcept:
    """``__pick_first_entity``: the queued task with the smallest vruntime (ties: the
    one listed first, the older task)."""
    cdef int best = -1
    cdef int i, ti
    for i in range(s.cpu_ntasks[cpu]):
        ti = s.cpu_tasks[cpu * s.max_tasks_per_cpu + i]
        if fair_queued(s, cpu, ti) and (
                best < 0 or s.tasks[ti].vruntime < s.tasks[best].vruntime):
            best = ti
    return best


cdef void cfs_check_preempt_tick(Sim s, int cpu) noexcept:
    """``check_preempt_tick``: the running task has had its ideal slice,
    ``max(sched_latency / nr_running, min_granularity)``."""
    cdef Cpu* c = &s.cpus[cpu]
    cdef i64 ideal = s.sched_latency // c.nr_running
    if ideal < s.sched_min_gran:
        ideal = s.sched_min_gran
    if s.now - s.tasks[c.curr].slice_start >= ideal:
        c.need_resched = 1
