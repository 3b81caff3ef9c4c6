# The event queue: C records ordered by (time, seq). seq is a global counter, so events
# at equal times run in the order they were made (SimPy's tie-break): runs are
# deterministic. Two structures keep that order, each where it is the faster:
#
# - up to EV_HEAP_MAX events, a binary min-heap (Sim.heap, a fixed array): with the few
#   events of a small machine (about 4 pending in PERF-A) its push and pop take two or
#   three steps in one cache line, which nothing with buckets beats;
# - above, a calendar queue (R. Brown, CACM 31(10), 1988), whose push and pop take a few
#   steps whatever the count, where those of a heap walk its ~log2(n) levels (at
#   1,024 CPUs some 1,000 events are pending: ten levels). Time is cut into buckets of
#   2**ev_shift ns; ev_nb of them (a power of two) make a "year", and an event sits in
#   bucket (time >> ev_shift) % ev_nb, of whatever year, in a list sorted by
#   (time, seq). No event is earlier than the start of the cursor's bucket (ev_cur,
#   which ends at ev_top), so the earliest event is the first one of the first bucket,
#   from the cursor on, that falls in that bucket's window of the cursor's year. The
#   buckets double with the count of events (ev_nb >= nev / 2: lists stay short), and
#   the width follows the spacing of the earliest events, measured again when the
#   queue takes more than a few steps per event.
#
# The queue moves to the calendar when a push finds the heap full, and back when pops
# leave fewer than EV_HEAP_MIN events (the gap between the two keeps a count that
# hovers from moving it at every event). Neither structure, nor a move, nor a bucket
# width changes the order: only the cost.
#
# The calendar's records live in one pool (Sim.evs) linked by index: a pop frees a
# slot, a push takes one. The pool doubles when full, and the bucket array with it
# (cap_ev / 2 buckets, the most ev_nb can reach), so nothing else is allocated as
# events come and go.

cdef extern from *:
    """
    #define NAPIKIT_EV_EMPTY ((long long)0x7fffffffffffffffLL)
    """
    const i64 EV_EMPTY "NAPIKIT_EV_EMPTY"   # later than any event (T_NEVER included)

cdef enum:
    EV_HEAP_MAX = 64      # events the heap holds; one more moves the queue to the calendar
    EV_HEAP_MIN = 16      # fewer move it back
    EV_BUCKETS_MIN = 16   # the first year's buckets
    EV_SHIFT_MIN = 6      # the first width: 64 ns
    EV_SHIFT_MAX = 30     # widths up to ~1 s: with ev_nb <= 2**30 a year is at most
                          # 2**60 ns, so the cursor's end cannot overflow past T_NEVER
    EV_SAMPLE_N = 25      # events Brown's width estimate looks at
    EV_STEPS_MAX = 3      # steps per pop (buckets passed, list entries walked) above
                          # which the width is measured again
    EV_TUNE_MIN = 256     # pops between two looks at the steps taken (at least)


cdef bint ev_init(Sim s) noexcept:
    """An empty queue, in the heap; the calendar's pool has room for the heap's events
    and one more, so moving there allocates nothing. False if that cannot be had."""
    cdef int i
    s.cap_ev = 2 * EV_HEAP_MAX
    s.heap = <Event*>malloc(EV_HEAP_MAX * sizeof(Event))
    s.evs = <Event*>malloc(<size_t>s.cap_ev * sizeof(Event))
    s.ev_bk = <EvBucket*>malloc(<size_t>(s.cap_ev // 2) * sizeof(EvBucket))
    if s.heap == NULL or s.evs == NULL or s.ev_bk == NULL:
        return False
    s.ev_cal = False
    for i in range(s.cap_ev):
        s.evs[i].next = i + 1
    s.evs[s.cap_ev - 1].next = -1
    s.ev_free = 0
    s.nev = 0
    s.ev_nb = EV_BUCKETS_MIN
    for i in range(s.ev_nb):
        s.ev_bk[i].time = EV_EMPTY
        s.ev_bk[i].head = -1
    s.ev_shift = EV_SHIFT_MIN
    s.ev_cur = 0
    s.ev_top = <i64>1 << s.ev_shift
    s.ev_steps = 0
    s.ev_tune = EV_TUNE_MIN
    return True


cdef bint ev_grow(Sim s) noexcept:
    """Double the full pool and the bucket array; False, the run stopping with
    ``MemoryError``, if it cannot."""
    cdef i64 cap = 2 * <i64>s.cap_ev
    cdef Event* p = NULL
    cdef EvBucket* bk = NULL
    cdef int i
    if cap <= PKT_POOL_MAX:
        bk = <EvBucket*>realloc(s.ev_bk, <size_t>(cap // 2) * sizeof(EvBucket))
    if bk != NULL:
        s.ev_bk = bk
        p = <Event*>realloc(s.evs, <size_t>cap * sizeof(Event))
    if p == NULL:
        out_of_memory(s, NOMEM_EVENTS, -1, cap)
        return False
    for i in range(s.cap_ev, <int>cap):
        p[i].next = i + 1
    p[cap - 1].next = -1
    s.ev_free = s.cap_ev
    s.evs = p
    s.cap_ev = <int>cap
    return True


cdef inline void ev_link(Sim s, int i, bint newest) noexcept:
    """Put slot ``i`` in its bucket's list, after every event before it in (time, seq).
    ``newest``: its seq is the highest queued (a push), so it goes after every event
    of its time, and the times alone place it."""
    cdef Event* p = s.evs
    cdef i64 t = p[i].time
    cdef i64 seq = p[i].seq
    cdef EvBucket* b = &s.ev_bk[(t >> s.ev_shift) & (s.ev_nb - 1)]
    cdef int j, k
    if t < s.ev_top - (<i64>1 << s.ev_shift):
        # earlier than the cursor's bucket (a run's first events, pushed before any pop:
        # at any time): the cursor moves back to it
        s.ev_cur = <int>((t >> s.ev_shift) & (s.ev_nb - 1))
        s.ev_top = ((t >> s.ev_shift) + 1) << s.ev_shift
    if t < b.time or (not newest and t == b.time and seq < p[b.head].seq):
        p[i].next = b.head
        b.head = i
        b.time = t
        return
    j = b.head
    k = p[j].next
    while k >= 0 and (p[k].time < t or (p[k].time == t and (newest or p[k].seq < seq))):
        j = k
        k = p[k].next
        s.ev_steps += 1
    p[i].next = k
    p[j].next = i


cdef int ev_seek(Sim s) noexcept:
    """The slot of the earliest event when it is not in the cursor's bucket (``nev > 0``):
    the cursor walks on, a bucket at a time; after a year with none, the earliest of the
    buckets' first events (each list is sorted, equal times share a bucket)."""
    cdef EvBucket* bk = s.ev_bk
    cdef int i = s.ev_cur, k, best = 0, mask = s.ev_nb - 1
    cdef i64 w = <i64>1 << s.ev_shift
    cdef i64 top = s.ev_top
    for k in range(s.ev_nb):
        i = (i + 1) & mask
        top += w
        if bk[i].time < top:
            s.ev_cur = i
            s.ev_top = top
            s.ev_steps += k + 1
            return bk[i].head
    for k in range(1, s.ev_nb):
        if bk[k].time < bk[best].time:
            best = k
    s.ev_cur = best
    s.ev_top = ((bk[best].time >> s.ev_shift) + 1) << s.ev_shift
    s.ev_steps += 2 * s.ev_nb
    return bk[best].head


cdef inline int ev_first(Sim s) noexcept:
    """The slot of the earliest event (``nev > 0``); the cursor is left at its bucket."""
    cdef EvBucket* b = &s.ev_bk[s.ev_cur]
    if b.time < s.ev_top:
        return b.head
    return ev_seek(s)


cdef inline int ev_take(Sim s) noexcept:
    """Unlink the earliest event (``nev > 0``) and return its slot, not yet freed."""
    cdef int i = ev_first(s)
    cdef EvBucket* b = &s.ev_bk[s.ev_cur]
    cdef int j = s.evs[i].next
    b.head = j
    b.time = s.evs[j].time if j >= 0 else EV_EMPTY
    s.nev -= 1
    return i


cdef void ev_resize(Sim s, int nb) noexcept:
    """Re-bucket every event into ``nb`` buckets (``nb <= cap_ev / 2``) of a
    width measured as Brown does: three times the mean gap between the first
    EV_SAMPLE_N events, gaps over twice the mean left out; a power of two, so that an
    event's bucket is a shift away."""
    cdef Event* p = s.evs
    cdef i64 times[EV_SAMPLE_N]
    cdef i64 avg, gap, total = 0, lo
    cdef int count = s.nev
    cdef int n = count if count < EV_SAMPLE_N else EV_SAMPLE_N
    cdef int chain = -1, shift = s.ev_shift, i, j, k, cnt = 0
    # the sample: the first n events, taken out in order onto the chain
    for k in range(n):
        i = ev_take(s)
        p[i].next = chain
        chain = i
        times[k] = p[i].time
    if n >= 2:
        avg = (times[n - 1] - times[0]) // (n - 1)
        for k in range(1, n):
            gap = times[k] - times[k - 1]
            if gap - avg <= avg:
                total += gap
                cnt += 1
        avg = total // cnt   # cnt >= 1: some gap is at most the mean
        if avg > (<i64>1 << EV_SHIFT_MAX):
            avg = <i64>1 << EV_SHIFT_MAX
        shift = 0
        while shift < EV_SHIFT_MAX and (<i64>1 << shift) < 3 * avg:
            shift += 1
    lo = times[0] if n else s.ev_top - (<i64>1 << s.ev_shift)
    if nb != s.ev_nb or shift != s.ev_shift:
        # every other event onto the chain too, and the buckets emptied
        for k in range(s.ev_nb):
            i = s.ev_bk[k].head
            while i >= 0:
                j = p[i].next
                p[i].next = chain
                chain = i
                i = j
        s.ev_nb = nb
        s.ev_shift = shift
        for k in range(nb):
            s.ev_bk[k].time = EV_EMPTY
            s.ev_bk[k].head = -1
    # the cursor at the earliest event's bucket (where it was if the queue is empty)
    s.ev_cur = <int>((lo >> shift) & (nb - 1))
    s.ev_top = ((lo >> shift) + 1) << shift
    while chain >= 0:
        j = p[chain].next
        ev_link(s, chain, False)
        chain = j
    s.nev = count
    s.ev_steps = 0


cdef inline bint ev_before(Event* a, Event* b) noexcept nogil:
    return a.time < b.time or (a.time == b.time and a.seq < b.seq)


cdef inline void heap_push(Sim s, Event* e) noexcept:
    """Sift ``e`` up from the heap's end (``nev < EV_HEAP_MAX``)."""
    cdef Event* h = s.heap
    cdef int i = s.nev, parent
    s.nev += 1
    while i > 0:
        parent = (i - 1) >> 1
        if not ev_before(e, &h[parent]):
            break
        h[i] = h[parent]
        i = parent
    h[i] = e[0]


cdef inline Event heap_pop(Sim s) noexcept:
    """Take the heap's top (``nev > 0``), its last event sifted down in its place."""
    cdef Event* h = s.heap
    cdef Event top = h[0]
    cdef Event last
    cdef int i = 0, child, n
    s.nev -= 1
    n = s.nev
    if n > 0:
        last = h[n]
        while True:
            child = 2 * i + 1
            if child >= n:
                break
            if child + 1 < n and ev_before(&h[child + 1], &h[child]):
                child += 1
            if not ev_before(&h[child], &last):
                break
            h[i] = h[child]
            i = child
        h[i] = last
    return top


cdef void ev_to_calendar(Sim s) noexcept:
    """The heap is full: its events into the pool's free slots (it has room for them:
    ev_init, and a pool never shrinks), bucketed at a width measured on them."""
    cdef int k, i, n = s.nev, nb = EV_BUCKETS_MIN
    # the cursor at the earliest (heap[0]), so that no event is before its bucket
    s.ev_cur = <int>((s.heap[0].time >> s.ev_shift) & (s.ev_nb - 1))
    s.ev_top = ((s.heap[0].time >> s.ev_shift) + 1) << s.ev_shift
    for k in range(n):
        i = s.ev_free
        s.ev_free = s.evs[i].next
        s.evs[i] = s.heap[k]
        ev_link(s, i, False)
    while 2 * nb < n:
        nb *= 2
    s.ev_cal = True
    ev_resize(s, nb)
    s.ev_tune = ev_period(s)


cdef void ev_to_heap(Sim s) noexcept:
    """Few events left: they move to the heap in (time, seq) order, which is a heap."""
    cdef int k, i, n = s.nev
    for k in range(n):
        i = ev_take(s)
        s.heap[k] = s.evs[i]
        s.evs[i].next = s.ev_free
        s.ev_free = i
    s.nev = n
    s.ev_cal = False


cdef void ev_push(Sim s, i64 time, int kind, int a, int b) noexcept:
    """Queue an event (dropped, the run stopping, if the pool cannot grow)."""
    cdef int i
    cdef Event* e
    cdef Event new
    if not s.ev_cal:
        if s.nev < EV_HEAP_MAX:
            new.time = time
            new.seq = s.ev_seq
            new.kind = kind
            new.a = a
            new.b = b
            s.ev_seq += 1
            heap_push(s, &new)
            return
        ev_to_calendar(s)
    if s.ev_free < 0 and not ev_grow(s):
        return
    i = s.ev_free
    e = &s.evs[i]
    s.ev_free = e.next
    e.time = time
    e.seq = s.ev_seq
    e.kind = kind
    e.a = a
    e.b = b
    s.ev_seq += 1
    s.nev += 1
    ev_link(s, i, True)
    if s.nev > 2 * s.ev_nb:
        ev_resize(s, 2 * s.ev_nb)


cdef inline i64 ev_period(Sim s) noexcept:
    return 2 * s.ev_nb if 2 * s.ev_nb > EV_TUNE_MIN else EV_TUNE_MIN


cdef inline i64 ev_next_time(Sim s) noexcept:
    """The time of the earliest event (``nev > 0``)."""
    if not s.ev_cal:
        return s.heap[0].time
    return s.evs[ev_first(s)].time


cdef Event cal_pop(Sim s) noexcept:
    """ev_pop in the calendar. Every ``ev_period`` pops (2 * ev_nb, at least
    EV_TUNE_MIN: a re-bucketing costs O(nev) <= O(ev_period)), a queue that took over
    EV_STEPS_MAX steps a pop measures its width again."""
    cdef int i = ev_take(s)
    cdef Event e = s.evs[i]
    s.evs[i].next = s.ev_free
    s.ev_free = i
    s.ev_tune -= 1
    if s.ev_tune == 0:
        if s.ev_steps > EV_STEPS_MAX * ev_period(s):
            ev_resize(s, s.ev_nb)
        s.ev_steps = 0
        s.ev_tune = ev_period(s)
    if s.nev < EV_HEAP_MIN:
        ev_to_heap(s)
    return e


cdef inline Event ev_pop(Sim s) noexcept:
    """Take the earliest event off the queue (``nev > 0``); inline, as the heap's pop
    was, in the run loop."""
    if not s.ev_cal:
        return heap_pop(s)
    return cal_pop(s)
