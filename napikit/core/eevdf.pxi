# EEVDF, the fair class since Linux 6.6 (kernel/sched/fair.c of 6.10): Earliest
# Eligible Virtual Deadline First. Each queued task has a vruntime, a weight and a
# virtual deadline one slice (sysctl_sched_base_slice, in its virtual time) past the
# vruntime it had when it got the slice. The run queue's weighted average vruntime V
# (avg_vruntime) is where every task would be if all had had their exact share; a task
# at or behind V (lag = V - vruntime >= 0) is eligible, and the eligible task with the
# earliest deadline runs. KernelParams.scheduler = "eevdf"; kernel-model.md B.10.7.
#
# Not modelled: DELAY_DEQUEUE (6.12+: a sleeper that is not eligible stays queued
# until its lag is spent), per-task slices (sched_attr.sched_runtime, 6.12+), HRTICK
# (slices end at the tick, its default) and the rbtree's order among equal deadlines
# (here: the task listed first).


cdef i64 avg_vruntime(Sim s, int cpu, int skip, i64* load) noexcept:
    """``avg_vruntime``: the weighted average vruntime V of the queued fair tasks but
    ``skip`` (-1: none), rounded down, in keys relative to ``min_vruntime`` as the
    kernel keeps it (``cfs_rq->avg_vruntime``, ``avg_load``); ``load`` gets the weight
    sum. An empty queue's V is ``min_vruntime``."""
    cdef Cpu* c = &s.cpus[cpu]
    cdef i64 avg = 0, w = 0
    cdef int i, ti
    cdef Task* t
    for i in range(s.cpu_ntasks[cpu]):
        ti = s.cpu_tasks[cpu * s.max_tasks_per_cpu + i]
        if ti != skip and fair_queued(s, cpu, ti):
            t = &s.tasks[ti]
            avg += (t.vruntime - c.min_vruntime) * t.weight
            w += t.weight
    load[0] = w
    if w:
        if avg < 0:
            avg -= w - 1   # div_s64 truncates: round down instead
        avg = avg // w
    return c.min_vruntime + avg


cdef inline bint vruntime_eligible(Sim s, int cpu, i64 vruntime) noexcept:
    """``vruntime_eligible``: ``vruntime`` is at or before V (no division:
    ``avg >= (vruntime - min_vruntime) * load``)."""
    cdef Cpu* c = &s.cpus[cpu]
    cdef i64 avg = 0, w = 0
    cdef int i, ti
    cdef Task* t
    for i in range(s.cpu_ntasks[cpu]):
        ti = s.cpu_tasks[cpu * s.max_tasks_per_cpu + i]
        if fair_queued(s, cpu, ti):
            t = &s.tasks[ti]
            avg += (t.vruntime - c.min_vruntime) * t.weight
            w += t.weight
    return avg >= (vruntime - c.min_vruntime) * w


cdef inline i64 fair_nr_running(Sim s, int cpu) noexcept:
    """``cfs_rq->nr_running``: the queued fair tasks, the running one included."""
    cdef int i, n = 0
    for i in range(s.cpu_ntasks[cpu]):
        if fair_queued(s, cpu, s.cpu_tasks[cpu * s.max_tasks_per_cpu + i]):
            n += 1
    return n


cdef void update_deadline(Sim s, int cpu, int ti) noexcept:
    """``update_deadline``: a task whose vruntime has reached its deadline has used its
    slice: the next deadline is one slice further, and if another task is queued the
    CPU is asked to reschedule (``resched_curr``)."""
    cdef Task* t = &s.tasks[ti]
    cdef Cpu* c = &s.cpus[cpu]
    if t.vruntime < t.deadline:
        return
    t.deadline = t.vruntime + calc_delta_fair(s.base_slice, t)
    if fair_nr_running(s, cpu) > 1 and not c.need_resched:
        c.need_resched = 1
        resched_curr(s, cpu)


cdef inline i64 real_ns(i64 vdelta, Task* t) noexcept:
    """The real time in which ``t`` runs ``vdelta`` of its virtual time (rounded up)."""
    if t.weight == NICE_0_LOAD:
        return vdelta
    return (vdelta * t.weight + NICE_0_LOAD - 1) // NICE_0_LOAD


cdef void lone_ticks(Sim s, Task* t) noexcept:
    """The ticks a task running alone has had since its last ``update_curr``: the model
    keeps the tick only while two tasks compete, but the kernel's tick goes on and its
    ``update_curr`` renews the deadline at each tick past it (no reschedule: nothing
    else is queued). Their effect, computed when the task is next updated: the deadline
    it would have now. The vruntime runs at a constant rate since ``exec_start``."""
    cdef i64 t0 = t.exec_start
    cdef i64 vslice, t1, period, k
    cdef i64 tick = s.tick_ns
    if t.deadline - t.vruntime > calc_delta_fair(s.now - t0, t):
        return   # its deadline is not reached before now
    # the first tick at or after the crossing renews it; then every period ticks
    t1 = t0 + (real_ns(t.deadline - t.vruntime, t) if t.deadline > t.vruntime else 0)
    t1 = (t1 + tick - 1) // tick * tick
    if t1 >= s.now:
        return   # no tick yet: update_deadline renews it now
    vslice = calc_delta_fair(s.base_slice, t)
    period = (real_ns(vslice, t) + tick - 1) // tick * tick
    k = (s.now - 1 - t1) // period
    t1 += k * period
    t.deadline = t.vruntime + calc_delta_fair(t1 - t0, t) + vslice


cdef void update_entity_lag(Sim s, int cpu, int ti) noexcept:
    """``update_entity_lag``: when a task leaves the queue (it sleeps, or moves) its lag
    ``V - vruntime`` is kept, clamped to ``max(2 * slice, TICK_NSEC)`` in its virtual
    time either way."""
    cdef Task* t = &s.tasks[ti]
    cdef i64 load
    cdef i64 lag = avg_vruntime(s, cpu, -1, &load) - t.vruntime
    cdef i64 limit = calc_delta_fair(
        2 * s.base_slice if 2 * s.base_slice > s.tick_ns else s.tick_ns, t)
    if lag > limit:
        lag = limit
    elif lag < -limit:
        lag = -limit
    t.vlag = lag


cdef void place_entity(Sim s, int cpu, int ti) noexcept:
    """``place_entity``: a task joining the queue is placed at V less its kept lag,
    scaled so that adding it leaves V where it was (``PLACE_LAG``: ``lag * (load + w) /
    load``), and its deadline one slice later; a new task (``ENQUEUE_INITIAL``) gets
    half a slice (``PLACE_DEADLINE_INITIAL``)."""
    cdef Task* t = &s.tasks[ti]
    cdef i64 load
    cdef i64 v = avg_vruntime(s, cpu, ti, &load)
    cdef i64 lag = 0
    cdef i64 vslice = calc_delta_fair(s.base_slice, t)
    if s.place_lag and load:
        lag = t.vlag * (load + t.weight)
        # div_s64 truncates towards zero
        lag = lag // load if lag >= 0 else -((-lag) // load)
    t.vruntime = v - lag
    if t.forked:
        t.forked = 0
        vslice //= 2
    t.deadline = t.vruntime + vslice


cdef int pick_eevdf(Sim s, int cpu) noexcept:
    """``pick_eevdf``: the eligible queued task with the earliest deadline (the
    running one included); with ``RUN_TO_PARITY`` the running task while it is
    eligible and still on the slice it was picked with."""
    cdef Cpu* c = &s.cpus[cpu]
    cdef int curr = c.curr
    cdef int best = -1
    cdef int i, ti, n = 0, only = -1
    cdef Task* t
    for i in range(s.cpu_ntasks[cpu]):
        ti = s.cpu_tasks[cpu * s.max_tasks_per_cpu + i]
        if fair_queued(s, cpu, ti):
            n += 1
            only = ti
    if n <= 1:
        return only
    if curr >= 0 and not (s.tasks[curr].policy == SCHED_NORMAL and
                          s.tasks[curr].state == TS_RUNNING and
                          vruntime_eligible(s, cpu, s.tasks[curr].vruntime)):
        curr = -1
    if s.run_to_parity and curr >= 0 and \
            s.tasks[curr].picked_deadline == s.tasks[curr].deadline:
        return curr
    for i in range(s.cpu_ntasks[cpu]):
        ti = s.cpu_tasks[cpu * s.max_tasks_per_cpu + i]
        if ti == c.curr or not fair_queued(s, cpu, ti):
            continue
        t = &s.tasks[ti]
        if (best < 0 or t.deadline < s.tasks[best].deadline) and \
                vruntime_eligible(s, cpu, t.vruntime):
            best = ti
    if best < 0 or (curr >= 0 and s.tasks[curr].deadline < s.tasks[best].deadline):
        best = curr
    if best < 0:
        # cannot happen (the task furthest behind is eligible); never idle with a
        # queue, whatever rounding did
        best = only
    return best
