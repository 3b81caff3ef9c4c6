# Deferred skb frees: skb_attempt_defer_free (net/core/skbuff.c), kick_defer_list_purge
# and skb_defer_free_flush (net/core/dev.c); kernel-model.md B.3.5, B.10.4.
#
# On with KernelParams.udp_skb_defer_free (6.18's "udp: use skb_attempt_defer_free()"):
# the reader's recvmsg hands an skb allocated on another CPU (loopback: its source's,
# the sender's CPU) back to that CPU's defer_list instead of freeing it. The list is
# freed by that CPU's net_rx_action (or backlog_napi/N after a poll). The accounting is
# decoupled from the pool slot: a deferred packet is delivered when received and leaves
# ``pkts_in_use`` then (so conservation stays exact: delivered, dropped or queued), but
# its slot returns to the free list only at the flush.

cdef enum:
    EV_DEFER_IPI = 11   # a defer csd (kick_defer_list_purge) reaches its CPU (a: cpu, b: gen)
    NOMEM_DEFER = 8     # a defer_list could not grow


cdef void skb_consume(Sim s, int idx) noexcept:
    """The consumer's free of a delivered packet: ``consume_skb`` (NIC traffic, freed
    where protocol receive ends it; loopback with deferral off, whose free is part of
    ``udp_recvmsg_ns``), or ``skb_attempt_defer_free`` in the reader's recvmsg."""
    if not s.udp_defer_free or s.pkts[idx].sock < 0:
        pkt_free(s, idx)
        return
    skb_attempt_defer_free(s, s.tasks[s.socks[s.pkts[idx].sock].receiver].cpu, idx)


cdef void skb_attempt_defer_free(Sim s, int cpu, int idx) noexcept:
    """``skb_attempt_defer_free`` on ``cpu``: an skb allocated here, or on a CPU that is
    offline, or whose CPU's list already holds ``skb_defer_max`` (0: always), is freed
    inline (``skb_free_ns`` to this CPU, in the reader's recvmsg); else it goes on the
    allocating CPU's ``defer_list``, and the free that brings the list to half of
    ``skb_defer_max`` kicks that CPU (``kick_defer_list_purge``).

    Simplification: the allocating CPU is the CPU of the packet's source (the sender's
    CPU when the run started; a sender moved by hotplug is not followed)."""
    cdef int alloc = s.sources[s.pkts[idx].src].cpu
    cdef Ring* dl
    cdef bint kick
    if alloc == cpu or not s.cpus[alloc].online or \
            ring_len(&s.defer_list[alloc]) >= s.skb_defer_max:
        cpu_charge(s, cpu, cost_of(s, K_SKB_FREE, s.c_skb_free), B_APPLICATION, TW_SKB_FREE)
        pkt_free(s, idx)
        return
    dl = &s.defer_list[alloc]
    kick = ring_len(dl) == (s.skb_defer_max >> 1)
    if not ring_push(dl, idx):
        out_of_memory(s, NOMEM_DEFER, alloc, ring_grown(dl))
        pkt_free(s, idx)
        return
    s.pkts_in_use -= 1  # done with, as far as conservation goes; the slot waits
    if kick:
        kick_defer_list_purge(s, cpu, alloc)


cdef void kick_defer_list_purge(Sim s, int cpu, int target) noexcept:
    """``kick_defer_list_purge``: with backlog threads, schedule ``target``'s backlog
    NAPI if SCHED is clear (``__napi_schedule_irqoff``: remote, so its thread is
    woken, SCHED_THREADED set); else, unless one is already in flight
    (``defer_ipi_scheduled``), send the defer csd (``smp_call_function_single_async``):
    ``ipi_send_ns`` to this CPU, counted in ``defer_ipis``, landing ``ipi_latency_ns``
    later (plus the exit latency of a halted CPU). Simplification: a csd to a CPU
    idling in a polling state is sent as an IPI too."""
    cdef Softnet* sd = &s.sd[target]
    cdef int state
    if s.policy.backlog_threads:
        if not (sd.napi_state & NAPIF_STATE_SCHED):
            sd.napi_state |= NAPIF_STATE_SCHED | NAPIF_STATE_SCHED_THREADED
            sd.sched_at = s.now
            wake_up(s, cpu, s.backlog_task[target], B_APPLICATION)
        return
    if s.defer_ipi_scheduled[target]:
        return
    s.defer_ipi_scheduled[target] = 1
    s.defer_ipis += 1
    state = cpu_idle_state(s, target)
    cpu_charge(s, cpu, cost_of(s, K_IPI_SEND, s.c_ipi_send), B_APPLICATION, TW_IPI_SEND)
    ev_push(s, t_add(s.now, cost_of(s, K_IPI_LATENCY, s.c_ipi_latency) +
                     (s.c_idle_exit if state == CPU_HALTED else 0)),
            EV_DEFER_IPI, target, s.cpus[target].gen)
    if tracing(s.trace_on):
        trace_ipi(s, cpu, target, s.now, TW_IPI_DEFER)


cdef void defer_ipi_arrives(Sim s, int cpu, int gen) noexcept:
    """EV_DEFER_IPI: ``trigger_rx_softirq`` in hard IRQ raises NET_RX and clears
    ``defer_ipi_scheduled``; then ``irq_exit``. A CPU that went offline meanwhile takes
    none (its list waits for its return)."""
    s.defer_ipi_scheduled[cpu] = 0
    if gen != s.cpus[cpu].gen or not s.cpus[cpu].online:
        return
    s.cpus[cpu].pending |= NET_RX_SOFTIRQ
    irq_exit(s, cpu, cost_of(s, K_IPI_HANDLER, s.c_ipi_handler), TW_IPI_DEFER)


cdef void skb_defer_free_flush(Sim s, int cpu, int bucket) noexcept:
    """``skb_defer_free_flush``: free every skb on ``cpu``'s defer_list
    (``skb_free_ns`` each, to this CPU in ``bucket``), returning their pool slots.
    Called in each turn of ``net_rx_action``'s loop and after each poll of
    ``napi_threaded_poll_loop``."""
    cdef Ring* dl = &s.defer_list[cpu]
    cdef int n = ring_len(dl)
    cdef int i
    if n == 0:
        return
    while ring_len(dl):
        i = ring_pop(dl)   # back to the free list (pkts_in_use dropped at the defer)
        s.pkts[i].next_free = s.free_pkt
        s.free_pkt = i
    cpu_charge(s, cpu, cost_sum(s, K_SKB_FREE, s.c_skb_free, n), bucket, TW_SKB_FREE)


cdef i64 defer_queued(Sim s) noexcept:
    """Packets on defer lists (delivered, their pool slots not yet returned); not in
    ``queued`` nor ``packets_in_use``."""
    cdef i64 n = 0
    cdef int cpu
    if s.defer_list != NULL:
        for cpu in range(s.ncpus):
            n += ring_len(&s.defer_list[cpu])
    return n
