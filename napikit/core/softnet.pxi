# softnet: the per-CPU backlog (struct softnet_data), its enqueue and poll sides.
# net/core/dev.c; kernel-model.md B.1-B.4.

# ---------------------------------------------------------------- rings (sk_buff_head)
# Rings and the packet pool start small and double when full, so memory follows the
# packets in flight, not netdev_max_backlog or the socket's rcvbuf: those limits are
# the callers' checks of ring_len, as in the kernel.

cdef bint ring_init(Ring* r) noexcept:
    """An empty ring of ``RING_MIN`` slots; False if it cannot be allocated."""
    r.buf = <int*>malloc(RING_MIN * sizeof(int))
    r.mask = RING_MIN - 1
    r.head = 0
    r.tail = 0
    return r.buf != NULL


cdef inline int ring_len(Ring* r) noexcept nogil:
    return <int>(r.tail - r.head)


cdef bint ring_grow(Ring* r) noexcept nogil:
    """Double a full ring, its FIFO order kept; False if it cannot be allocated.

    The slots ``[h, cap)`` hold the oldest entries, ``[0, h)`` the newest: after the
    ``realloc`` the newest are copied to ``[cap, cap + h)``, so ``[h, cap + h)`` is the
    whole queue in order under the new mask."""
    cdef u64 cap = <u64>r.mask + 1
    cdef u32 h = r.head & r.mask
    cdef int* buf
    if r.mask >= RING_MASK_MAX:
        return False
    buf = <int*>realloc(r.buf, <size_t>(2 * cap) * sizeof(int))
    if buf == NULL:
        return False
    memcpy(buf + cap, buf, h * sizeof(int))
    r.buf = buf
    r.mask = <u32>(2 * cap - 1)
    r.head = h
    r.tail = h + <u32>cap
    return True


cdef inline bint ring_push(Ring* r, int v) noexcept nogil:
    """Append ``v``; False (and nothing queued) if a full ring cannot grow."""
    if r.tail - r.head > r.mask and not ring_grow(r):
        return False
    r.buf[r.tail & r.mask] = v
    r.tail += 1
    return True


cdef inline i64 ring_grown(Ring* r) noexcept nogil:
    """The size a full ring would grow to (for the out-of-memory message)."""
    return 2 * (<i64>r.mask + 1)


cdef inline int ring_pop(Ring* r) noexcept nogil:
    cdef int v = r.buf[r.head & r.mask]
    r.head += 1
    return v


# ---------------------------------------------------------------- packet pool

cdef bint pkt_pool_grow(Sim s) noexcept:
    """Double the pool (at most ``PKT_POOL_MAX`` packets) and put the new packets on the
    free list; on failure the run stops with ``MemoryError``. Nothing holds a
    ``Packet*`` across ``pkt_alloc``, so the pool may move."""
    cdef i64 n = s.npkts
    cdef i64 m = 2 * n if n < PKT_POOL_MAX // 2 else PKT_POOL_MAX
    cdef Packet* p = NULL
    cdef int i
    if m > n:
        p = <Packet*>realloc(s.pkts, <size_t>m * sizeof(Packet))
    if p == NULL:
        out_of_memory(s, NOMEM_PACKETS, -1, m if m > n else n + 1)
        return False
    for i in range(<int>n, <int>m):
        p[i].next_free = i + 1
    p[m - 1].next_free = s.free_pkt
    s.free_pkt = <int>n
    s.pkts = p
    s.npkts = <int>m
    return True


cdef inline int pkt_alloc(Sim s) noexcept:
    """A free packet, or -1 when the pool cannot grow (the run is then stopping)."""
    cdef int i
    if s.free_pkt < 0 and not pkt_pool_grow(s):
        return -1
    i = s.free_pkt
    s.free_pkt = s.pkts[i].next_free
    s.pkts_in_use += 1
    return i


cdef inline void pkt_free(Sim s, int i) noexcept:
    s.pkts[i].next_free = s.free_pkt
    s.free_pkt = i
    s.pkts_in_use -= 1


# ---------------------------------------------------------------- enqueue side

cdef void netif_rx(Sim s, int this_cpu, int idx, Source* src, int bucket) noexcept:
    """``netif_rx`` / ``__netif_rx`` -> ``netif_rx_internal``: pick the CPU, enqueue.

    The caller has already charged the ``netif_rx_ns`` cost in its own context.
    """
    cdef Packet* p = &s.pkts[idx]
    cdef int target = this_cpu
    p.t_enq = s.now
    p.wcpu = this_cpu   # built (loopback_xmit, a driver's handler) on the calling CPU
    if src.rps_len > 0:
        target = get_rps_cpu(s, src, p.flow)
        if target < 0:
            target = this_cpu
    enqueue_to_backlog(s, this_cpu, idx, target, bucket)


cdef bint skb_flow_limit(Sim s, int this_cpu, int flow, int qlen) noexcept:
    """``skb_flow_limit``: the enqueueing CPU's table; only from half the backlog up."""
    cdef Softnet* sd = &s.sd[this_cpu]
    cdef int new_flow, old_flow
    if qlen < (s.max_backlog >> 1) or not sd.fl_on:
        return False
    if sd.fl_buckets == NULL and not flow_limit_alloc(s, this_cpu):
        return False
    # hash_32(skb_get_hash(skb), fl->log_buckets)
    new_flow = <int>((flow_hash(s.seed, flow) * <u32>0x61C88647) >> (32 - sd.fl_log_buckets)) \
        if sd.fl_log_buckets > 0 else 0
    old_flow = sd.fl_history[sd.fl_head]
    sd.fl_history[sd.fl_head] = new_flow
    sd.fl_head = (sd.fl_head + 1) & (FLOW_LIMIT_HISTORY - 1)
    if sd.fl_buckets[old_flow]:
        sd.fl_buckets[old_flow] -= 1
    sd.fl_buckets[new_flow] += 1
    if sd.fl_buckets[new_flow] > (FLOW_LIMIT_HISTORY >> 1):
        sd.flow_limit_count += 1
        return True
    return False


cdef bint flow_limit_alloc(Sim s, int cpu) noexcept:
    """The CPU's ``sd_flow_limit`` on first use (zeroed, as the kernel's at the sysctl
    write): a table is only touched above half the backlog, so most never are."""
    cdef Softnet* sd = &s.sd[cpu]
    sd.fl_buckets = <int*>calloc(<size_t>1 << sd.fl_log_buckets, sizeof(int))
    sd.fl_history = <int*>calloc(FLOW_LIMIT_HISTORY, sizeof(int))
    if sd.fl_buckets == NULL or sd.fl_history == NULL:
        free(sd.fl_buckets)
        free(sd.fl_history)
        sd.fl_buckets = NULL
        sd.fl_history = NULL
        out_of_memory(s, NOMEM_FLOW_LIMIT, cpu, (<i64>1) << sd.fl_log_buckets)
        return False
    return True


cdef void enqueue_to_backlog(Sim s, int this_cpu, int idx, int target, int bucket) noexcept:
    """``enqueue_to_backlog``: drop above ``netdev_max_backlog`` or by flow limit, else
    queue on the target's ``input_pkt_queue``; schedule its NAPI only when the queue was
    empty and SCHED was clear. Drops are charged to the target's ``dropped`` counter."""
    cdef Softnet* sd = &s.sd[target]
    cdef int qlen = ring_len(&sd.input_pkt_queue)
    if qlen > s.max_backlog:
        sd.dropped += 1
        s.drop_backlog += 1
        pkt_free(s, idx)
        return
    if skb_flow_limit(s, this_cpu, s.pkts[idx].flow, qlen):
        sd.dropped += 1
        s.drop_flow_limit += 1
        pkt_free(s, idx)
        return
    if qlen == 0 and not (sd.napi_state & NAPIF_STATE_SCHED):
        sd.napi_state |= NAPIF_STATE_SCHED
        sd.sched_at = s.now
        napi_schedule_rps(s, this_cpu, target, bucket)
    s.pkts[idx].target = target
    if not ring_push(&sd.input_pkt_queue, idx):
        out_of_memory(s, NOMEM_BACKLOG, target, ring_grown(&sd.input_pkt_queue))
        pkt_free(s, idx)
        return
    sd.input_queue_tail += 1
    if tracing(s.trace_on):
        trace_backlog(s, target)


# ---------------------------------------------------------------- scheduling decisions

cdef inline void napi_schedule_local(Sim s, int cpu) noexcept:
    """``____napi_schedule`` local path: onto ``poll_list``, raise NET_RX unless
    ``net_rx_action`` is running (it will find the backlog itself)."""
    s.sd[cpu].on_poll_list = 1
    if not s.sd[cpu].in_net_rx_action:
        s.cpus[cpu].pending |= NET_RX_SOFTIRQ


cdef void napi_schedule_rps(Sim s, int this_cpu, int target, int bucket) noexcept:
    """``napi_schedule_rps``: the policy's decision point (kernel-model.md B.3.1-3.2)."""
    cdef Softnet* mysd = &s.sd[this_cpu]
    cdef int act = s.policy.backlog_schedule(this_cpu, target, s.now, s.sd[target].last_batch)
    s.sd[target].sched_by = this_cpu
    s.sd[target].sched_action = act
    if act == ACTION_SOFTIRQ:
        if target != this_cpu:
            policy_fault(s, "napikit_backlog_schedule", this_cpu,
                         f"returned SOFTIRQ for remote CPU {target}; a softirq can only be "
                         "raised on the local CPU (use IPI or THREAD)")
            return
        napi_schedule_local(s, this_cpu)
    elif act == ACTION_IPI:
        if target == this_cpu:
            policy_fault(s, "napikit_backlog_schedule", this_cpu,
                         "returned IPI for the local CPU (use SOFTIRQ or THREAD)")
            return
        # rps_ipi_list; the IPI is sent when net_rx_action ends (net_rps_action_and_irq_enable)
        if mysd.rps_ipi_n == mysd.rps_ipi_cap and not rps_ipi_grow(s, this_cpu):
            return
        mysd.rps_ipi_list[mysd.rps_ipi_n] = target
        mysd.rps_ipi_n += 1
        if not mysd.in_net_rx_action and not mysd.in_napi_threaded_poll:
            s.cpus[this_cpu].pending |= NET_RX_SOFTIRQ
    elif act == ACTION_THREAD:
        if not s.policy.backlog_threads:
            policy_fault(s, "napikit_backlog_schedule", this_cpu,
                         "returned THREAD but the policy has no backlog threads "
                         "(backlog_threads is false)")
            return
        s.sd[target].napi_state |= NAPIF_STATE_SCHED_THREADED
        s.thread_kicks += 1
        wake_up(s, this_cpu, s.backlog_task[target], bucket)
    elif act == ACTION_NONE:
        s.lost_kicks += 1
    elif act == DECISION_FAILED:
        policy_fault(s, "napikit_backlog_schedule", this_cpu, None)
    else:
        policy_fault(s, "napikit_backlog_schedule", this_cpu,
                     f"returned {act}; allowed: Action.SOFTIRQ (0), Action.IPI (1), "
                     "Action.THREAD (2), Action.NONE (3)")


# ---------------------------------------------------------------- poll side

cdef int process_backlog_begin(Sim s, int cpu, int bucket) noexcept:
    """Start of ``process_backlog``: flush pending RPS IPIs, reload the weight.

    Returns the quota, ``napi->weight`` as read before the call."""
    cdef Softnet* sd = &s.sd[cpu]
    cdef int quota = sd.napi_weight
    sd.polled_at = s.now
    if sd.rps_ipi_n:
        net_rps_send_ipi(s, cpu, bucket)
    sd.napi_weight = s.dev_rx_weight
    return quota


cdef int process_backlog_next(Sim s, int cpu, int work, int quota) noexcept:
    """The next run of ``process_backlog``'s loop: how many packets the next poll step
    takes from ``process_queue`` (quota reached, queue empty, or a packet for a socket).

    Returns 0 when the poll is over: ``work == quota`` (still SCHED: repoll), or both
    queues empty, in which case the NAPI completes (state masked to THREADED). When only
    ``process_queue`` is empty the whole ``input_pkt_queue`` is spliced onto it (both
    are rings of indices and ``process_queue`` is empty then, so the splice is a swap).

    A step ends with the first packet bound for a socket: ``__udp_enqueue_schedule_skb``
    queues it and wakes its reader as soon as that packet is done, not when the rest of
    the quota is (the kernel's loop is per packet). Packets that only reach a consumer
    (NIC traffic) share a step; each is time-stamped as done at its own instant.

    With location costs (``loc_on``, B.10.6) a step's packets also share one cost:
    ``location_run`` ends it before the first packet that costs otherwise. With a drawn
    protocol receive (``rx_drawn``) every packet is a step of its own, with its own draw.
    """
    cdef Softnet* sd = &s.sd[cpu]
    cdef Ring tmp
    cdef int avail, j
    if work >= quota:
        return 0
    while True:
        avail = ring_len(&sd.process_queue)
        if avail > 0:
            if avail > quota - work:
                avail = quota - work
            if s.rx_by_packet:
                return location_run(s, cpu, sd, avail)
            if s.has_sockets:
                for j in range(avail):
                    if s.pkts[sd.process_queue.buf[(sd.process_queue.head + <u32>j) &
                                                   sd.process_queue.mask]].sock >= 0:
                        return j + 1
            return avail
        if ring_len(&sd.input_pkt_queue) == 0:
            sd.napi_state &= NAPIF_STATE_THREADED
            sd.last_batch = sd.batch
            sd.batch = 0
            return 0
        tmp = sd.process_queue
        sd.process_queue = sd.input_pkt_queue
        sd.input_pkt_queue = tmp


cdef inline i64 rx_location_cost(Sim s, int cpu, Packet* p, bint draw) noexcept nogil:
    """``__netif_receive_skb`` of ``p`` on ``cpu``: ``protocol_rx_ns``, plus
    ``remote_skb_ns`` when another CPU wrote the skb last (``ip_rcv`` and ``udp_rcv`` read
    its head and ``skb_shared_info``, ``__udp4_lib_lookup_skb`` the headers in its data,
    ``__udp_enqueue_schedule_skb`` writes its ``truesize`` accounting and list pointers),
    plus ``remote_sock_ns`` when another CPU touched the socket's receive queue last
    (``__udp_enqueue_schedule_skb``: ``sk_rmem_alloc``, ``sk_receive_queue`` and its lock,
    ``sk_forward_alloc``, then ``sock_def_readable``'s wait queue). B.10.6. With ``draw``
    each term that applies is one draw (``cost_of``): the packet's own step."""
    cdef i64 c = cost_of(s, K_PROTOCOL_RX, s.c_protocol_rx) if draw else s.c_protocol_rx
    cdef int w
    if p.wcpu != cpu:
        c += cost_of(s, K_REMOTE_SKB, s.c_remote_skb) if draw else s.c_remote_skb
    if p.sock >= 0:
        w = s.socks[p.sock].wcpu
        if w >= 0 and w != cpu:
            c += cost_of(s, K_REMOTE_SOCK, s.c_remote_sock) if draw else s.c_remote_sock
    return c


cdef int location_run(Sim s, int cpu, Softnet* sd, int avail) noexcept:
    """``process_backlog_next`` with location costs: the next step is the run of the
    first ``avail`` packets of ``process_queue`` with the cost of the first (the step's
    packets share ``sd.step_cost``, so each is still time-stamped at its own instant),
    ended after the first packet bound for a socket, as without them. With drawn
    costs the step is the first packet alone, at its own draw."""
    cdef Ring* q = &sd.process_queue
    cdef Packet* p = &s.pkts[q.buf[q.head & q.mask]]
    cdef i64 cost = rx_location_cost(s, cpu, p, s.rx_drawn)
    cdef int j = 1
    if p.sock < 0 and not s.rx_drawn:
        while j < avail:
            p = &s.pkts[q.buf[(q.head + <u32>j) & q.mask]]
            if rx_location_cost(s, cpu, p, False) != cost:
                break
            j += 1
            if p.sock >= 0:
                break
    if cost != sd.step_cost:
        sd.step_cost = cost
        sd.step_n_max = <int>(T_NEVER // cost) if cost > 0 and T_NEVER // cost < 0x7fffffff \
            else 0x7fffffff
    return j


cdef inline i64 protocol_rx_cost(Sim s, int cpu, int n) noexcept:
    """The step that processes ``n`` packets, ``n * step_cost`` (``protocol_rx_ns``
    with its location costs), saturated at ``T_NEVER`` (``2**31`` packets of 10 s would
    not fit an i64): such a step never ends."""
    cdef Softnet* sd = &s.sd[cpu]
    return n * sd.step_cost if n <= sd.step_n_max else T_NEVER


cdef void poll_step_start(Sim s, int cpu, int level, int n, int bucket) noexcept:
    """Start the step in which ``process_backlog`` runs ``__netif_receive_skb`` on the
    ``n`` packets at the head of ``process_queue``; packet ``i`` is done when
    ``(i+1) * protocol_rx_ns`` of the step have run (hard-IRQ time stolen before it
    delays it, time stolen after it does not: ``poll_step_stamp``)."""
    cdef Cpu* c = &s.cpus[cpu]
    start_step(s, cpu, level, protocol_rx_cost(s, cpu, n), bucket)
    c.step_seg = n
    c.seg_done = 0


cdef void poll_step_resumed(Sim s, int cpu, int n, i64 rem) noexcept:
    """The rest (``rem`` ns) of an interrupted poll step of ``n`` packets has just been
    started again: the packets done before the interruption were time-stamped then."""
    cdef Cpu* c = &s.cpus[cpu]
    cdef i64 cost = s.sd[cpu].step_cost
    c.step_seg = n
    if n > s.sd[cpu].step_n_max:
        c.seg_done = 0
    elif cost > 0:
        c.seg_done = <int>((n * cost - rem) // cost)
    else:
        c.seg_done = n


cdef void poll_step_stamp(Sim s, int cpu, i64 prog) noexcept:
    """Time-stamp (``t_done``) the packets of the running poll step done once it has
    worked ``prog`` ns: called before hard-IRQ time is taken out of the step
    (``cpu_charge``: ``now - step_start - stolen``, as IRQ time not yet served has not
    let it move) and when it is interrupted (``suspend_task_step``); the packets done
    after the step's last IRQ are timed back from its end (``seg_end``) by
    ``process_backlog_deliver``. Packet ``j`` was done at ``step_start + (j+1) * protocol_rx_ns +
    stolen``, shifted back by the work of the step's earlier parts (an interrupted
    step resumed): IRQ time taken after it does not delay it."""
    cdef Cpu* c = &s.cpus[cpu]
    cdef Ring* q = &s.sd[cpu].process_queue
    cdef i64 cost = s.sd[cpu].step_cost
    cdef i64 base, k, t0
    cdef int j
    if c.step_seg > s.sd[cpu].step_n_max or prog < 0:
        return  # a saturated step never ends
    if prog > c.step_dur:
        prog = c.step_dur
    base = c.step_seg * cost - c.step_dur
    k = (base + prog) // cost if cost > 0 else c.step_seg
    t0 = c.step_start - base + c.stolen
    for j in range(c.seg_done, <int>k):
        s.pkts[q.buf[(q.head + <u32>j) & q.mask]].t_done = t0 + (j + 1) * cost
    if k > c.seg_done:
        c.seg_done = <int>k


cdef void process_backlog_deliver(Sim s, int cpu, int n, int bucket) noexcept:
    """``__netif_receive_skb`` of the ``n`` packets a poll step has just processed, each
    with the time it was done: ``t_done`` for those ``poll_step_stamp`` stamped, else
    ``(n-1-i) * protocol_rx_ns`` before the step's end (no IRQ came after them)."""
    cdef Softnet* sd = &s.sd[cpu]
    cdef int i, idx
    cdef int stamped = s.cpus[cpu].seg_done
    cdef i64 t
    cdef i64 cost = sd.step_cost
    # the step ended, so n * step_cost did not saturate: no product below wraps
    cdef i64 t_last = s.cpus[cpu].seg_end - (n - 1) * cost
    for i in range(n):
        idx = ring_pop(&sd.process_queue)
        t = s.pkts[idx].t_done if i < stamped else t_last + i * cost
        s.pkts[idx].wcpu = cpu   # protocol receive writes the skb (B.10.6)
        sd.processed += 1
        if s.pkts[idx].target != cpu:
            s.wrong_cpu += 1
        hist_add(s.lat_enqueue, t - s.pkts[idx].t_enq)
        if s.pkts[idx].sock < 0:
            consume(s, idx, t)
        else:
            udp_queue_rcv(s, cpu, idx, bucket)
    sd.input_queue_head += n
    sd.batch += n
    if tracing(s.trace_on):
        trace_backlog(s, cpu)


cdef void consume(Sim s, int idx, i64 t) noexcept:
    """A packet reaches its final consumer: checks per-flow order, counts, frees."""
    cdef Packet* p = &s.pkts[idx]
    if p.seq <= s.flow_last[p.flow]:
        s.reordered += 1
    s.flow_last[p.flow] = p.seq
    s.delivered += 1
    if s.input_open or t <= s.input_stop:
        s.delivered_in_window += 1
    if p.sock >= 0:
        hist_add(s.lat_send_recv, t - p.t_sent)
    skb_consume(s, idx)


cdef void udp_queue_rcv(Sim s, int cpu, int idx, int bucket) noexcept:
    """``__udp_enqueue_schedule_skb``: drop when the receive buffer is full, else queue
    and wake the reader (``sock_def_readable``)."""
    cdef Socket* so = &s.socks[s.pkts[idx].sock]
    if ring_len(&so.queue) >= so.cap:
        s.drop_socket += 1
        pkt_free(s, idx)
        return
    if not ring_push(&so.queue, idx):
        out_of_memory(s, NOMEM_SOCKET, s.pkts[idx].sock, ring_grown(&so.queue))
        pkt_free(s, idx)
        return
    so.wcpu = cpu   # sk_rmem_alloc, sk_receive_queue: written here (B.10.6)
    sock_def_readable(s, cpu, so.receiver, bucket)
