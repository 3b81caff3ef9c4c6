# EEVDF, the fair class since Linux 6.6 (kernel/sched/fair.c of 6.10): Earliest
# Eligible Virtual Deadline First. Each queued task has a vruntime, a weight and a
# virtual deadline one slice (sysctl_sched_base_slice, in its virtual time) past the
# vruntime it had when it got the slice. The run queue's weighted average vruntime V
# (avg_vruntime) is where every task would be if all had had their exact share; a task
# at or behind V (lag = V - vruntime >= 0) is eligible, and the eligible task with the
# earliest deadline runs. KernelParams.scheduler = "eevdf"; kernel-model.md B.10.7.
#
# DELAY_DEQUEUE with DELAY_ZERO (6.12+; KernelParams.sched_delay_dequeue, off by
# default as in 6.10): a sleeper that is not eligible stays queued (Task.delayed) until
# it is picked (dequeue_delayed) or woken (requeue_delayed_entity).
#
# Not modelled: per-task slices (sched_attr.sched_runtime, 6.12+), HRTICK (slices end
# at the tick, its default) and the rbtree's order among equal deadlines (here: the
# task listed first).


cdef int fair_sums(Sim s, int cpu, int skip, i64* avg, i64* load, bint advance) noexcept:
    """One pass over the queued fair tasks of ``cpu`` but ``skip`` (-1: none): the
    kernel's ``cfs_rq->avg_vruntime`` (the sum of ``(vruntime - min_vruntime) *
    weight``) into ``avg``, ``avg_load`` (the weight sum) into ``load``; returns how many
    there are (``cfs_rq->nr_running``). With ``advance``, ``min_vruntime`` moves forward
    to the smallest queued vruntime (``update_min_vruntime``; it is only the origin of
    the keys, so when it moves changes nothing else)."""
    cdef Cpu* c = &s.cpus[cpu]
    cdef i64 a = 0, w = 0, m = 0
    cdef int i, ti, n = 0
    cdef Task* t
    for i in range(s.cpu_ntasks[cpu]):
        ti = s.cpu_tasks[cpu * s.max_tasks_per_cpu + i]
        if ti != skip and fair_queued(s, cpu, ti):
            t = &s.tasks[ti]
            a += (t.vruntime - c.min_vruntime) * t.weight
            w += t.weight
            if n == 0 or t.vruntime < m:
                m = t.vruntime
            n += 1
    if advance and skip < 0 and n and m > c.min_vruntime:
        a -= (m - c.min_vruntime) * w   # the keys from the new origin
        c.min_vruntime = m
    avg[0] = a
    load[0] = w
    return n


cdef i64 avg_vruntime(Sim s, int cpu, int skip, i64* load, bint advance) noexcept:
    """``avg_vruntime``: the weighted average vruntime V of the queued fair tasks but
    ``skip`` (-1: none), rounded down, computed from keys relative to ``min_vruntime``
    as the kernel keeps them; ``load`` gets the weight sum. An empty queue's V is
    ``min_vruntime``."""
    cdef i64 avg
    fair_sums(s, cpu, skip, &avg, load, advance)
    if load[0]:
        if avg < 0:
            avg -= load[0] - 1   # div_s64 truncates: round down instead
        avg = avg // load[0]
    return s.cpus[cpu].min_vruntime + avg


cdef inline bint vruntime_eligible(Sim s, int cpu, i64 vruntime, i64 avg, i64 load) noexcept:
    """``vruntime_eligible``: ``vruntime`` is at or before V, from the queue's sums
    (:func:`fair_sums`), without a division: ``avg >= (vruntime - min_vruntime) *
    load``."""
    return avg >= (vruntime - s.cpus[cpu].min_vruntime) * load


cdef void update_deadline(Sim s, int cpu, int ti) noexcept:
    """``update_deadline``: a task whose vruntime has reached its deadline has used its
    slice: the next deadline is one slice further, and if another task is queued the
    CPU is asked to reschedule (``resched_curr``)."""
    cdef Task* t = &s.tasks[ti]
    cdef Cpu* c = &s.cpus[cpu]
    cdef i64 avg, load
    if t.vruntime < t.deadline:
        return
    t.deadline = t.vruntime + calc_delta_fair(s.base_slice, t)
    if fair_sums(s, cpu, -1, &avg, &load, True) > 1 and not c.need_resched:
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
    cdef i64 load, lag, limit
    if s.cpus[cpu].nr_running == 1 and t.cpu == cpu:
        t.vlag = 0   # alone on the queue, it is V
        return
    lag = avg_vruntime(s, cpu, -1, &load, True) - t.vruntime
    limit = calc_delta_fair(2 * s.base_slice if 2 * s.base_slice > s.tick_ns else s.tick_ns, t)
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
    cdef i64 load = 0, v, lag = 0
    cdef i64 vslice = calc_delta_fair(s.base_slice, t)
    if s.cpus[cpu].nr_running == 0:
        v = s.cpus[cpu].min_vruntime   # an empty queue (the task is not counted yet)
    else:
        v = avg_vruntime(s, cpu, ti, &load, True)
    if s.place_lag and load:
        lag = t.vlag * (load + t.weight)
        # div_s64 truncates towards zero
        lag = lag // load if lag >= 0 else -((-lag) // load)
    t.vruntime = v - lag
    if t.forked:
        t.forked = 0
        vslice //= 2
    t.deadline = t.vruntime + vslice


cdef void dequeue_delayed(Sim s, int cpu, int ti) noexcept:
    """``dequeue_entities(DEQUEUE_SLEEP | DEQUEUE_DELAYED)``: a delayed task leaves the
    queue for real (picked, or its CPU going down): ``dequeue_entity`` takes its lag
    while it still counts (``update_entity_lag``), ``finish_delayed_dequeue_entity``
    drops a positive one (``DELAY_ZERO``: it was to leave at the 0-lag point), and
    ``__block_task`` takes it off nr_running."""
    cdef Task* t = &s.tasks[ti]
    update_curr(s, cpu)
    update_entity_lag(s, cpu, ti)
    if t.vlag > 0:
        t.vlag = 0
    t.delayed = 0
    s.cpus[cpu].nr_running -= 1


cdef void requeue_delayed_entity(Sim s, int cpu, int ti) noexcept:
    """``requeue_delayed_entity`` (``enqueue_task(ENQUEUE_DELAYED)`` from
    ``ttwu_runnable``): a delayed task woken is still queued, so it keeps its vruntime
    and deadline (no placement); with ``DELAY_ZERO`` a positive lag it has come to
    while it waited is dropped: it is placed again at V with no lag. As in the kernel
    no ``update_curr`` comes first (the wake-up preemption check does it)."""
    cdef Task* t = &s.tasks[ti]
    update_entity_lag(s, cpu, ti)
    if t.vlag > 0:
        t.vlag = 0
        place_entity(s, cpu, ti)
    t.delayed = 0


cdef int pick_eevdf(Sim s, int cpu) noexcept:
    """``pick_eevdf``: the eligible queued task with the earliest deadline (the
    running one included); with ``RUN_TO_PARITY`` the running task while it is
    eligible and still on the slice it was picked with."""
    cdef Cpu* c = &s.cpus[cpu]
    cdef int curr = c.curr
    cdef int best = -1, first = -1
    cdef int i, ti, n
    cdef i64 avg, load
    cdef Task* t
    n = fair_sums(s, cpu, -1, &avg, &load, True)
    if n == 0:
        return -1
    # curr->on_rq: running, or delayed as it went to sleep (in __schedule's pick)
    if curr >= 0 and not (s.tasks[curr].policy == SCHED_NORMAL and
                          (s.tasks[curr].state == TS_RUNNING or s.tasks[curr].delayed)):
        curr = -1
    if n == 1 and curr >= 0:
        return curr
    if curr >= 0 and not vruntime_eligible(s, cpu, s.tasks[curr].vruntime, avg, load):
        curr = -1
    if s.run_to_parity and curr >= 0 and \
            s.tasks[curr].picked_deadline == s.tasks[curr].deadline:
        return curr
    for i in range(s.cpu_ntasks[cpu]):
        ti = s.cpu_tasks[cpu * s.max_tasks_per_cpu + i]
        if ti == c.curr or not fair_queued(s, cpu, ti):
            continue
        t = &s.tasks[ti]
        if first < 0:
            first = ti
        if n == 1:
            return ti
        if (best < 0 or t.deadline < s.tasks[best].deadline) and \
                vruntime_eligible(s, cpu, t.vruntime, avg, load):
            best = ti
    if best < 0 or (curr >= 0 and s.tasks[curr].deadline < s.tasks[best].deadline):
        best = curr
    if best < 0:
        # cannot happen (the task furthest behind is eligible); never idle with a
        # queue, whatever rounding did
        best = first if first >= 0 else c.curr
    return best
