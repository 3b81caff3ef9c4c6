# The event queue: a binary min-heap of C records ordered by (time, seq).
# seq is a global counter, so events at equal times run in the order they were made
# (SimPy's tie-break): runs are deterministic.

cdef inline bint ev_before(Event* a, Event* b) noexcept nogil:
    return a.time < b.time or (a.time == b.time and a.seq < b.seq)


cdef bint ev_grow(Sim s) noexcept:
    """Double the full heap; False, the run stopping with ``MemoryError``, if it cannot."""
    cdef i64 cap = 2 * <i64>s.cap_ev
    cdef Event* h = NULL
    if cap <= PKT_POOL_MAX:
        h = <Event*>realloc(s.heap, <size_t>cap * sizeof(Event))
    if h == NULL:
        out_of_memory(s, NOMEM_EVENTS, -1, cap)
        return False
    s.heap = h
    s.cap_ev = <int>cap
    return True


cdef void ev_push(Sim s, i64 time, int kind, int a, int b) noexcept:
    """Queue an event (dropped, the run stopping, if the heap cannot grow)."""
    cdef Event* h
    cdef Event e
    cdef int i, parent
    if s.nev == s.cap_ev and not ev_grow(s):
        return
    h = s.heap
    e.time = time
    e.seq = s.ev_seq
    e.kind = kind
    e.a = a
    e.b = b
    s.ev_seq += 1
    i = s.nev
    s.nev += 1
    while i > 0:
        parent = (i - 1) >> 1
        if not ev_before(&e, &h[parent]):
            break
        h[i] = h[parent]
        i = parent
    h[i] = e


cdef Event ev_pop(Sim s) noexcept:
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
