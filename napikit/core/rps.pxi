# RPS: choosing the target CPU of a packet, and the IPIs that kick a remote backlog in
# the classic kernel. net/core/dev.c, include/net/rps.h; kernel-model.md B.2.2, B.3.3-3.4.

cdef inline int get_rps_cpu(Sim s, Source* src, int flow) noexcept:
    """``get_rps_cpu``: ``rps_map->cpus[reciprocal_scale(hash, len)]`` if online, else -1.

    Simplification: RFS (``rps_sock_flow_table``) is not modelled; RPS only.
    """
    cdef u32 h = flow_hash(s.seed, flow)
    cdef int cpu = src.rps_map[(<u64>h * <u64>src.rps_len) >> 32]
    return cpu if s.cpus[cpu].online else -1


cdef bint rps_ipi_grow(Sim s, int cpu) noexcept:
    """Make room on ``cpu``'s full ``rps_ipi_list`` (it starts empty and doubles);
    False, the run stopping with ``MemoryError``, if it cannot grow."""
    cdef Softnet* sd = &s.sd[cpu]
    cdef i64 cap = 2 * <i64>sd.rps_ipi_cap if sd.rps_ipi_cap > 0 else 4
    cdef int* buf = NULL
    if cap <= PKT_POOL_MAX:
        buf = <int*>realloc(sd.rps_ipi_list, <size_t>cap * sizeof(int))
    if buf == NULL:
        out_of_memory(s, NOMEM_RPS_IPI, cpu, cap)
        return False
    sd.rps_ipi_list = buf
    sd.rps_ipi_cap = <int>cap
    return True


cdef void net_rps_send_ipi(Sim s, int cpu, int bucket) noexcept:
    """``net_rps_send_ipi``: one csd per CPU on ``rps_ipi_list`` (LIFO), if online."""
    send_rps_ipis_of(s, cpu, cpu, bucket)


cdef void send_rps_ipis_of(Sim s, int owner, int cpu, int bucket) noexcept:
    """``net_rps_send_ipi`` of ``owner``'s ``rps_ipi_list``, run on ``cpu`` (they differ
    only when ``dev_cpu_dead`` sends a dead CPU's pending IPIs).

    The loop sends one ``smp_call_function_single_async`` after another: the ``k``-th
    IPI leaves once the sender has spent ``k * ipi_send_ns`` on them, counted from when
    the CPU is free (after hard-IRQ time it owes, such as the ``netif_rx`` of the
    interrupt that queued them), and reaches its target ``ipi_latency_ns`` later.

    ``smp_call_function_single_async`` -> ``__smp_call_single_queue`` sends no interrupt
    to a CPU idling in a polling state (``call_function_single_prep_ipi`` ->
    ``set_nr_if_polling``): the sender pays only the queueing (``ipi_send_ns / 4``), the
    kick is not an IPI (``polled_kicks``) and the target sees it at once (EV_KICK). A
    halted target is interrupted after ``ipi_latency_ns`` plus its exit latency. The
    target's state is the one it has when the kick is queued.

    With ``csd_coalescing`` (B.10.1), as ``__smp_call_single_queue`` sends an IPI only
    when its ``llist_add`` makes the target's ``call_single_queue`` non-empty, a csd queued while an IPI to the target
    is in flight (``csd_pending``: a wakelist wake-up's, ``wake_up``) rides on it,
    costs the sender the queueing only, is no IPI (``coalesced_csds``) and runs when
    that IPI is handled (``csd_flush``)."""
    cdef Softnet* sd = &s.sd[owner]
    cdef Cpu* c = &s.cpus[cpu]
    cdef Cpu* tc
    cdef int i, target, state
    cdef i64 t = c.busy_until if c.level == L_NONE and c.busy_until > s.now else s.now
    cdef i64 at, cost
    for i in range(sd.rps_ipi_n - 1, -1, -1):
        target = sd.rps_ipi_list[i]
        if not s.cpus[target].online:
            continue
        # an IPI still in flight when its target goes offline is stale (gen)
        state = cpu_idle_state(s, target)
        if state == CPU_POLLING:
            s.polled_kicks += 1
            cost = kick_send_cost(s)
            cpu_charge(s, cpu, cost, bucket, TW_CSD_QUEUE)
            t = t_add(t, cost)
            ev_push(s, t_add(t, cost_of(s, K_IDLE_EXIT_POLL, s.c_idle_exit_poll)), EV_KICK,
                    target, s.cpus[target].gen)
            continue
        tc = &s.cpus[target]
        if s.csd_coalesce and tc.csd_pending and t < tc.csd_at:
            s.coalesced_csds += 1
            tc.csd_rps += 1
            cost = kick_send_cost(s)
            cpu_charge(s, cpu, cost, bucket, TW_CSD_QUEUE)
            t = t_add(t, cost)
            continue
        s.ipis += 1
        cost = cost_of(s, K_IPI_SEND, s.c_ipi_send)
        cpu_charge(s, cpu, cost, bucket, TW_IPI_SEND)
        t = t_add(t, cost)
        at = t_add(t, cost_of(s, K_IPI_LATENCY, s.c_ipi_latency) +
                   (s.c_idle_exit if state == CPU_HALTED else 0))
        tc.csd_pending = 1
        tc.csd_at = at
        ev_push(s, at, EV_IPI, target, tc.gen)
        if tracing(s.trace_on):
            trace_ipi(s, cpu, target, t, TW_IPI_RPS)
    sd.rps_ipi_n = 0


cdef void csd_flush(Sim s, int cpu) noexcept:
    """``flush_smp_call_function_queue`` in the handler of the IPI in flight to
    ``cpu`` (``csd_pending``, landing now): the RPS csds that rode on it run
    ``rps_trigger_softirq`` (the wake-ups that rode on it have their own events at this
    instant). A kick taken as an IPI earlier is not that IPI: the queue stays."""
    cdef Cpu* c = &s.cpus[cpu]
    if not c.csd_pending or s.now < c.csd_at:
        return
    c.csd_pending = 0
    while c.csd_rps > 0:
        c.csd_rps -= 1
        rps_trigger_softirq(s, cpu)


cdef int cpu_idle_state(Sim s, int cpu) noexcept:
    """What a kick finds on ``cpu`` now: ``CPU_BUSY`` unless it runs nothing (no task,
    step, softirq, hard-IRQ time or runnable task); then ``CPU_POLLING`` in cpuidle's
    POLL state, in the first ``idle_entry_ns`` of idleness (``do_idle`` runs with
    TIF_POLLING_NRFLAG set until ``default_idle_call`` / ``cpuidle_enter`` clear it to
    halt), or, under haltpoll, for ``haltpoll_ns`` more (``guest_halt_poll_ns``,
    ``drivers/cpuidle/governors/haltpoll.c``); else ``CPU_HALTED``."""
    cdef Cpu* c = &s.cpus[cpu]
    cdef i64 since, poll
    if c.curr >= 0 or c.level != L_NONE or c.softirq_active or c.nr_running > 0 \
            or c.busy_until > s.now:
        return CPU_BUSY
    if s.cpuidle == IDLE_POLL:
        return CPU_POLLING
    poll = (c.idle_entry_drawn if drawn(s.dist_mask, K_IDLE_ENTRY) else s.c_idle_entry) + \
        (s.haltpoll_ns if s.cpuidle == IDLE_HALTPOLL else 0)
    if poll > 0:
        since = c.idle_since if c.idle_since > c.busy_until else c.busy_until
        if s.now - since < poll:
            return CPU_POLLING
    return CPU_HALTED


cdef void rps_trigger_softirq(Sim s, int cpu) noexcept:
    """``rps_trigger_softirq``, the csd handler on the target, in hard-IRQ context."""
    napi_schedule_local(s, cpu)
    s.sd[cpu].received_rps += 1
