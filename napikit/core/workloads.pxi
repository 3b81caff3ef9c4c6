# Workloads and the kernel threads: each task is a state machine resumed at ``pc``.
# Loopback UDP senders/receivers (kernel-model.md B.7), a non-NAPI NIC (B.2.1),
# ksoftirqd (B.6.2), backlog_napi/N (B.5.2-5.3) and forced-threaded IRQ handlers (B.6.4).

cdef enum:
    SND_START = 0
    SND_XMIT = 1
    SND_RX = 2
    SND_DONE = 3
    RCV_START = 0
    RCV_DONE = 1
    RCV_BLOCK = 2
    KSI_START = 0
    KSI_AFTER = 1
    BN_START = 0
    BN_POLL = 1
    BN_SEG = 2
    BN_SEG_DONE = 3
    BN_POLLED = 4
    BN_REPOLL = 5
    IT_START = 0
    IT_RX = 1
    CT_WOKE = 0
    CT_WORKED = 1


cdef void task_run(Sim s, int cpu, int ti) noexcept:
    cdef int kind = s.tasks[ti].kind
    if s.failed:
        return
    if kind == T_SENDER:
        run_sender(s, cpu, ti)
    elif kind == T_RECEIVER:
        run_receiver(s, cpu, ti)
    elif kind == T_KSOFTIRQD:
        run_ksoftirqd(s, cpu, ti)
    elif kind == T_BACKLOG_NAPI:
        run_backlog_napi(s, cpu, ti)
    elif kind == T_IRQ_THREAD:
        run_irq_thread(s, cpu, ti)
    elif kind == T_CYCLICTEST:
        run_cyclictest(s, cpu, ti)
    else:
        run_stopper(s, cpu, ti)


# ---------------------------------------------------------------- input generation

cdef bint input_available(Sim s) noexcept:
    """Whether a source may make another packet; closes the input when it may not."""
    if s.input_open and (s.packets_left == 0 or s.now >= s.duration_end):
        input_close(s)
    return s.input_open


cdef void input_close(Sim s) noexcept:
    """No more input: the run goes on for at most ``drain_ns`` to empty the queues."""
    if not s.input_open:
        return
    s.input_open = 0
    s.input_stop = s.now
    if s.now + s.drain_ns < s.end_time:
        s.end_time = s.now + s.drain_ns


cdef int make_packet(Sim s, Source* src, int sock) noexcept:
    """A new packet of one of ``src``'s flows (``packets_left`` was checked), or -1 if
    the pool cannot grow (the run is stopping: the caller returns)."""
    cdef int idx = pkt_alloc(s)
    cdef Packet* p
    cdef int k, lo, hi, mid
    cdef double u
    if idx < 0:
        return -1
    p = &s.pkts[idx]
    if src.kind == SRC_LOOPBACK:
        k = src.rr
        src.rr = (src.rr + 1) % src.nflows
    elif src.zipf_cdf == NULL:
        k = <int>(rng_u01(s.rng) * src.nflows)
    else:
        u = rng_u01(s.rng)
        lo = 0
        hi = src.nflows - 1
        while lo < hi:
            mid = (lo + hi) >> 1
            if src.zipf_cdf[mid] < u:
                lo = mid + 1
            else:
                hi = mid
        k = lo
    p.flow = src.flow_base + k
    s.flow_seq[p.flow] += 1
    p.seq = s.flow_seq[p.flow]
    p.t_sent = s.now
    p.t_enq = s.now
    p.target = -1
    p.src = <int>(src - s.sources)
    p.sock = sock
    s.arrived += 1
    s.packets_left -= 1
    if s.packets_left == 0:
        input_close(s)  # the window ends with the last packet made
    return idx


# ---------------------------------------------------------------- loopback UDP

cdef void run_sender(Sim s, int cpu, int ti) noexcept:
    """A UDP sender in a loop of ``sendmsg``: ``udp_sendmsg`` (process context), then
    ``__dev_queue_xmit`` with BH disabled -> ``loopback_xmit`` -> ``__netif_rx``; the
    ``local_bh_enable`` that ends the transmit runs the pending NET_RX in the sender."""
    cdef Task* t = &s.tasks[ti]
    cdef Source* src = &s.sources[t.arg]
    while True:
        if t.pc == SND_START:
            if not input_available(s):
                task_exit(s, cpu, ti)
                return
            if src.rate > 0 and t.next_send > s.now:
                ev_push(s, t.next_send, EV_TIMER, ti, 0)  # clock_nanosleep until then
                task_sleep(s, cpu, ti)
                return
            if src.rate > 0:
                src.next_t += 1e9 / src.rate
                t.next_send = <i64>src.next_t
            t.pkt = make_packet(s, src, src.sock)
            if t.pkt < 0:
                return
            t.pc = SND_XMIT
            start_step(s, cpu, L_TASK, cost_of(s, K_UDP_SENDMSG, s.c_udp_sendmsg), B_APPLICATION)
            return
        elif t.pc == SND_XMIT:
            bh_disable(s, cpu, ti)  # rcu_read_lock_bh() in __dev_queue_xmit
            t.pc = SND_RX
            start_step(s, cpu, L_TASK, cost_of(s, K_NETIF_RX, s.c_netif_rx), B_APPLICATION)
            return
        elif t.pc == SND_RX:
            netif_rx(s, cpu, t.pkt, src, B_APPLICATION)
            t.pkt = -1
            t.pc = SND_DONE
            local_bh_enable(s, cpu, ti)
            return
        else:  # SND_DONE: return to user space, a preemption point
            t.pc = SND_START
            if s.cpus[cpu].need_resched:
                schedule(s, cpu)
                return


cdef inline i64 udp_recvmsg_cost(Sim s, int cpu, Socket* so) noexcept nogil:
    """``udp_recvmsg`` of the datagram at the head of ``so``'s queue on ``cpu``:
    ``udp_recvmsg_ns``, plus ``remote_skb_ns`` when another CPU wrote the skb last
    (``skb_copy_datagram_msg`` reads its data and ``skb_shared_info``, ``__skb_recv_udp``
    and ``skb_consume_udp`` its head), plus ``remote_sock_ns`` when another CPU touched
    the receive queue last (``__skb_try_recv_from_queue`` unlinks under its lock,
    ``udp_rmem_release`` writes ``sk_rmem_alloc`` and ``sk_forward_alloc``). B.10.6."""
    cdef i64 c = cost_of(s, K_UDP_RECVMSG, s.c_udp_recvmsg)
    if not s.loc_on:
        return c
    if s.pkts[so.queue.buf[so.queue.head & so.queue.mask]].wcpu != cpu:
        c += cost_of(s, K_REMOTE_SKB, s.c_remote_skb)
    if so.wcpu >= 0 and so.wcpu != cpu:
        c += cost_of(s, K_REMOTE_SOCK, s.c_remote_sock)
    return c


cdef inline void sock_def_readable(Sim s, int cpu, int ti, int bucket) noexcept:
    """``sock_def_readable`` -> ``wake_up_interruptible_sync_poll`` of reader ``ti``
    after a datagram was queued: a sleeping reader is woken (:func:`wake_up`); one in
    its blocking path (``RCV_BLOCK``: past the re-check, inside ``schedule``) is woken
    there once: the waker pays ``wakeup_ns`` and sends no IPI (the reader's CPU has not
    halted yet), and the reader's ``schedule`` goes to the idle task, which is
    polling, and back ``idle_exit_poll_ns`` later."""
    cdef Task* t = &s.tasks[ti]
    if t.state == TS_SLEEPING:
        wake_up(s, cpu, ti, bucket)
    elif t.pc == RCV_BLOCK and t.pkt == 0:
        t.pkt = 1
        cpu_charge(s, cpu, cost_of(s, K_WAKEUP, s.c_wakeup), bucket, TW_WAKEUP)


cdef void run_receiver(Sim s, int cpu, int ti) noexcept:
    """A UDP receiver: ``udp_recvmsg`` per datagram; blocks on an empty queue.

    Blocking (``__skb_wait_for_more_packets``): ``prepare_to_wait_exclusive``, the
    re-check of the queue, then ``schedule_timeout``. With ``recv_block_ns`` the path
    past the re-check (the dequeue, the pick of idle, the switch; once woken
    ``finish_wait`` and the retry) is a step of the reader's own; a datagram queued
    during it wakes it there (:func:`sock_def_readable`): it switches to the polling
    idle task and back (``idle_exit_poll_ns``, then ``context_switch_ns``) and takes
    it. Without it the reader sleeps at once."""
    cdef Task* t = &s.tasks[ti]
    cdef Socket* so = &s.socks[t.arg]
    while True:
        if t.pc == RCV_BLOCK:
            t.pc = RCV_START
            if t.pkt == 0:
                t.pkt = -1
                task_sleep(s, cpu, ti)
                return
            # woken inside schedule(): it still goes to the idle task, which is
            # polling, and comes back once the idle loop has left
            t.pkt = -1
            task_sleep(s, cpu, ti)
            if s.cpus[cpu].curr >= 0:
                activate(s, ti)  # another task runs here: the wake-up just enqueues it
            else:
                task_set_state(s, ti, TS_WAKING)
                ev_push(s, s.now + cost_of(s, K_IDLE_EXIT_POLL, s.c_idle_exit_poll), EV_WAKE, ti, 0)
            return
        if t.pc == RCV_START:
            if ring_len(&so.queue) == 0:
                if s.c_recv_block > 0:
                    t.pc = RCV_BLOCK
                    t.pkt = 0
                    start_step(s, cpu, L_TASK, cost_of(s, K_RECV_BLOCK, s.c_recv_block),
                               B_APPLICATION)
                    return
                task_sleep(s, cpu, ti)
                return
            t.pc = RCV_DONE
            start_step(s, cpu, L_TASK, udp_recvmsg_cost(s, cpu, so), B_APPLICATION)
            return
        else:
            so.wcpu = cpu   # __skb_recv_udp unlinks it, udp_rmem_release (B.10.6)
            consume(s, ring_pop(&so.queue), s.now)
            t.pc = RCV_START
            if s.cpus[cpu].need_resched:
                schedule(s, cpu)
                return


# ---------------------------------------------------------------- non-NAPI NIC

cdef void nic_interrupt(Sim s, int si) noexcept:
    """EV_NIC: the device interrupts its CPU. Inline: the hard-IRQ handler calls
    ``netif_rx`` per packet, then ``irq_exit``. Forced-threaded (``threadirqs``): the
    primary handler only wakes the SCHED_FIFO 50 IRQ thread; packets wait in the
    device's ring (``NIC_RING`` entries; a full ring drops, counted)."""
    cdef Source* src = &s.sources[si]
    cdef int cpu = src.cpu
    cdef int k, j, idx
    cdef double gap
    if not input_available(s):
        return
    k = src.burst if src.arrival == ARR_BURSTY else 1
    if k > s.packets_left:
        k = <int>s.packets_left
    for j in range(k):
        idx = make_packet(s, src, -1)
        if idx < 0:
            return
        if src.irq_thread >= 0:
            if ring_len(&src.ring) >= NIC_RING:
                s.drop_nic_ring += 1
                pkt_free(s, idx)
            elif not ring_push(&src.ring, idx):
                out_of_memory(s, NOMEM_NIC_RING, si, ring_grown(&src.ring))
                pkt_free(s, idx)
                return
        else:
            netif_rx(s, cpu, idx, src, B_HARDIRQ)
            if s.failed:
                return
    if src.irq_thread >= 0:
        wake_up(s, cpu, src.irq_thread, B_HARDIRQ)
        irq_exit(s, cpu, cost_of(s, K_NIC_IRQ, s.c_nic_irq), TW_NIC_IRQ)
    else:
        irq_exit(s, cpu, cost_of(s, K_NIC_IRQ, s.c_nic_irq) +
                 cost_sum(s, K_NETIF_RX, s.c_netif_rx, k), TW_NIC_IRQ)
    if src.arrival == ARR_CONSTANT:
        gap = 1e9 / src.rate
    else:
        gap = -log(1.0 - rng_u01(s.rng)) * 1e9 * k / src.rate
    src.next_t += gap
    ev_push(s, <i64>src.next_t, EV_NIC, si, 0)


cdef void run_irq_thread(Sim s, int cpu, int ti) noexcept:
    """``irq_thread`` -> ``irq_forced_thread_fn``: the handler runs between
    ``local_bh_disable``/``local_bh_enable``, so the NET_RX it raises runs at the end,
    in this thread. Simplification: one pass takes every packet waiting in the ring."""
    cdef Task* t = &s.tasks[ti]
    cdef Source* src = &s.sources[t.arg]
    cdef int j
    if t.pc == IT_START:
        if ring_len(&src.ring) == 0:
            task_sleep(s, cpu, ti)
            return
        bh_disable(s, cpu, ti)
        t.pkt = ring_len(&src.ring)
        t.pc = IT_RX
        start_step(s, cpu, L_TASK, cost_sum(s, K_NETIF_RX, s.c_netif_rx, t.pkt), B_IRQ_THREAD)
    else:
        for j in range(t.pkt):
            netif_rx(s, cpu, ring_pop(&src.ring), src, B_IRQ_THREAD)
            if s.failed:
                return
        t.pkt = -1
        t.pc = IT_START
        local_bh_enable(s, cpu, ti)


# ---------------------------------------------------------------- kernel threads

cdef void run_ksoftirqd(Sim s, int cpu, int ti) noexcept:
    """``run_ksoftirqd`` under ``smpboot_thread_fn``: while softirqs are pending,
    ``handle_softirqs(true)`` then ``cond_resched``; else sleep."""
    cdef Task* t = &s.tasks[ti]
    if t.pc == KSI_AFTER:
        t.pc = KSI_START
        if s.cpus[cpu].need_resched:
            schedule(s, cpu)
            return
    if s.cpus[cpu].going_down:
        kthread_parkme(s, cpu, ti)
    elif s.cpus[cpu].pending and not s.cpus[cpu].softirq_active:
        # ksoftirqd_run_begin: a BH section under PREEMPT_RT. A frame held by a task
        # preempted inside handle_softirqs (RT) will see what is pending when it resumes.
        t.pc = KSI_AFTER
        bh_disable(s, cpu, ti)
        softirq_start(s, cpu, ti)
    else:
        task_sleep(s, cpu, ti)


cdef void run_backlog_napi(Sim s, int cpu, int ti) noexcept:
    """``backlog_napi/N``: ``smpboot_thread_fn`` sleeps until ``backlog_napi_should_run``
    (SCHED_THREADED set), then ``run_backlog_napi`` -> ``napi_threaded_poll_loop``:
    polls with no budget or time limit; after each poll sends RPS IPIs queued meanwhile
    and calls ``local_bh_enable`` (running softirqs raised meanwhile); ``cond_resched``
    while it must repoll."""
    cdef Task* t = &s.tasks[ti]
    cdef Softnet* sd = &s.sd[cpu]
    cdef int n
    while True:
        if s.failed:
            return
        if t.pc == BN_START:
            if s.cpus[cpu].going_down:
                kthread_parkme(s, cpu, ti)
                return
            if not (sd.napi_state & NAPIF_STATE_SCHED_THREADED):
                task_sleep(s, cpu, ti)
                return
            t.pc = BN_POLL
        elif t.pc == BN_POLL:
            bh_disable(s, cpu, ti)
            sd.in_napi_threaded_poll = 1
            t.poll_work = 0
            t.pkt = 0  # quota
            if sd.napi_state & NAPIF_STATE_SCHED:
                t.pkt = process_backlog_begin(s, cpu, B_BACKLOG_THREAD)
                t.pc = BN_SEG
            else:
                t.pc = BN_POLLED
        elif t.pc == BN_SEG:
            n = process_backlog_next(s, cpu, t.poll_work, t.pkt)
            if n == 0:
                t.pc = BN_POLLED
                continue
            t.seg_n = n
            t.pc = BN_SEG_DONE
            poll_step_start(s, cpu, L_TASK, n, B_BACKLOG_THREAD)
            return
        elif t.pc == BN_SEG_DONE:
            process_backlog_deliver(s, cpu, t.seg_n, B_BACKLOG_THREAD)
            t.poll_work += t.seg_n
            t.pc = BN_SEG
        elif t.pc == BN_POLLED:
            sd.in_napi_threaded_poll = 0
            if s.defer_list != NULL:
                skb_defer_free_flush(s, cpu, B_BACKLOG_THREAD)
            # IPIs queued by hard IRQs during the poll (a policy mixing IPIs and threads)
            if sd.rps_ipi_n:
                net_rps_send_ipi(s, cpu, B_BACKLOG_THREAD)
            t.pc = BN_REPOLL if (t.pkt > 0 and t.poll_work == t.pkt) else BN_START
            t.pkt = -1
            local_bh_enable(s, cpu, ti)
            return
        else:  # BN_REPOLL: cond_resched between polls
            t.pc = BN_POLL
            if s.cpus[cpu].need_resched:
                schedule(s, cpu)
                return


# ---------------------------------------------------------------- cyclictest

cdef void hrtimer_interrupt(Sim s, int ti) noexcept:
    """EV_TIMER of a cyclictest task: the hrtimer interrupt on its CPU wakes it
    (``hrtimer_wakeup``), then ``irq_exit``, which may first run pending softirqs
    inline (!RT): the latency a real-time user sees."""
    cdef Task* t = &s.tasks[ti]
    cdef int cpu = t.cpu
    if not input_available(s):
        task_set_state(s, ti, TS_DEAD)
        return
    wake_up(s, -1, ti, 0)
    irq_exit(s, cpu, cost_of(s, K_HRTIMER_IRQ, s.c_hrtimer_irq), TW_HRTIMER_IRQ)


cdef void run_cyclictest(Sim s, int cpu, int ti) noexcept:
    """cyclictest's loop: ``clock_nanosleep(TIMER_ABSTIME)`` to the next period; on
    wake-up record now minus the expiry, do ``work_ns``, and sleep again. An expiry
    already past returns at once (an overrun, counted with its full latency)."""
    cdef Task* t = &s.tasks[ti]
    while True:
        if t.pc == CT_WOKE:
            hist_add(&s.ct_hist[t.arg], s.now - t.next_send)
            t.pc = CT_WORKED
            if s.ct_work[t.arg] > 0:
                start_step(s, cpu, L_TASK, s.ct_work[t.arg], B_APPLICATION)
                return
        else:
            t.pc = CT_WOKE
            t.next_send += s.ct_period[t.arg]
            if not input_available(s):
                task_exit(s, cpu, ti)
                return
            if t.next_send > s.now:
                ev_push(s, t.next_send, EV_TIMER, ti, 0)
                task_sleep(s, cpu, ti)
                return
