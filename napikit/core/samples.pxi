# Time series (Config.sample_interval_ns): every interval the sampler copies the run's
# counters into a bounded C buffer; Python turns them into per-interval figures
# (napikit.results.Samples). Like the watchdog's, its event is no activity: the run
# ends when only they are left, and it moves nothing else.

cdef enum:
    EV_SAMPLE = 12
    # the counters of a row, then SAMPLE_PER_CPU per CPU
    S_TIME = 0
    S_ARRIVED
    S_DELIVERED
    S_DROPS
    S_IPIS
    S_WAKEUP_IPIS
    S_THREAD_KICKS
    S_CONTEXT_SWITCHES
    SAMPLE_GLOBALS
    # per CPU: its backlog's length, then its CPU time by bucket
    SAMPLE_PER_CPU = 1 + N_BUCKETS
    # at most this many values in the buffer (16 MiB; 80,000 rows on 2 CPUs, 56 on
    # 4,096): past it sampling stops, flagged; it starts with room for
    # SAMPLE_ROWS_START rows and doubles
    SAMPLE_CELLS_MAX = 1 << 21
    SAMPLE_ROWS_START = 256


cdef void take_sample(Sim s, bint again) noexcept:
    """EV_SAMPLE: one row of cumulative counters at ``s.now``, and the next sample due
    ``again`` (the run's end takes a last one, of a shorter interval); CPU time is
    counted when the step that spent it ends (``step_done``), as in the totals."""
    cdef int w = SAMPLE_GLOBALS + s.ncpus * SAMPLE_PER_CPU
    cdef i64* row
    cdef i64* c
    cdef int cpu, b
    cdef i64 cap
    cdef i64* grown
    if s.nsamples == s.cap_samples:
        cap = min(2 * s.cap_samples, s.max_samples)
        grown = NULL
        if cap > s.cap_samples:
            grown = <i64*>realloc(s.samples, <size_t>(cap * w) * sizeof(i64))
        if grown == NULL:
            s.samples_truncated = 1   # full, or no memory for more: the series ends here
            return
        s.samples = grown
        s.cap_samples = cap
    row = s.samples + s.nsamples * w
    row[S_TIME] = s.now
    row[S_ARRIVED] = s.arrived
    row[S_DELIVERED] = s.delivered
    row[S_DROPS] = s.drop_backlog + s.drop_flow_limit + s.drop_socket + s.drop_nic_ring
    row[S_IPIS] = s.ipis
    row[S_WAKEUP_IPIS] = s.wakeup_ipis
    row[S_THREAD_KICKS] = s.thread_kicks
    row[S_CONTEXT_SWITCHES] = s.context_switches
    for cpu in range(s.ncpus):
        c = row + SAMPLE_GLOBALS + cpu * SAMPLE_PER_CPU
        c[0] = ring_len(&s.sd[cpu].input_pkt_queue) + ring_len(&s.sd[cpu].process_queue)
        for b in range(N_BUCKETS):
            c[1 + b] = s.cpus[cpu].acct[b]
    s.nsamples += 1
    if not again:
        return
    s.watchdog_pending += 1
    ev_push(s, s.now + s.sample_interval, EV_SAMPLE, 0, 0)
