# Drawn costs (Config.cost_distributions): a cost named there is drawn once per
# operation from the run's cost stream (Sim.cost_rng, seeded from the run's seed), the
# others stay the CostModel's constant. Only the draw is here; each call site says which
# operation one draw is (a poll step of one packet, one IPI, one switch ...).

from libc.math cimport exp, sqrt, cos

cdef extern from *:
    """
    /* the draws are the rare path: keep them out of line, the constant path straight */
    #define NAPIKIT_DRAWN(mask, k) __builtin_expect(((mask) >> (k)) & 1, 0)
    """
    bint drawn "NAPIKIT_DRAWN"(u32 mask, int k) noexcept nogil


cdef double normal01(u64* st) noexcept nogil:
    """A standard normal deviate (Box-Muller; the second deviate is not kept, so every
    draw takes two numbers from the stream whatever came before)."""
    cdef double u1 = rng_u01(st), u2 = rng_u01(st)
    return sqrt(-2.0 * log(1.0 - u1)) * cos(6.283185307179586 * u2)


cdef i64 cost_draw(Sim s, int k) noexcept nogil:
    """One operation's cost ``k`` from its distribution: exponential by inversion,
    lognormal ``exp(mu + sigma * N(0, 1))`` with ``mu = ln(mean) - sigma**2 / 2`` (so the
    mean is the CostModel's), empirical by inverting the cumulative weights (a binary
    search). Rounded to whole ns, truncated at the distribution's cap."""
    cdef CostDist* d = &s.dist[k]
    cdef double x, u
    cdef int lo, hi, mid
    if d.kind == DIST_EXPONENTIAL:
        x = -log(1.0 - rng_u01(s.cost_rng)) * d.mean
    elif d.kind == DIST_LOGNORMAL:
        x = exp(d.mu + d.sigma * normal01(s.cost_rng))
    else:
        u = rng_u01(s.cost_rng) * d.cdf[d.n - 1]
        lo = 0
        hi = d.n - 1
        while lo < hi:   # the first value whose cumulative weight exceeds u
            mid = (lo + hi) >> 1
            if d.cdf[mid] > u:
                hi = mid
            else:
                lo = mid + 1
        x = d.value[lo]
    if x >= <double>d.cap:
        return d.cap
    return <i64>(x + 0.5)


cdef inline i64 cost_of(Sim s, int k, i64 c) noexcept nogil:
    """The cost of one operation: ``c`` (the CostModel's constant) unless cost ``k`` is
    drawn, then one draw."""
    if drawn(s.dist_mask, k):
        return cost_draw(s, k)
    return c


cdef i64 cost_sum(Sim s, int k, i64 c, int n) noexcept nogil:
    """The cost of ``n`` operations at once (a NIC interrupt's ``netif_rx`` calls, a
    batch of skb frees): ``n * c``, or ``n`` draws."""
    cdef i64 total = 0
    cdef int i
    if not drawn(s.dist_mask, k):
        return n * c
    for i in range(n):
        total += cost_draw(s, k)
    return total


cdef inline i64 kick_send_cost(Sim s) noexcept nogil:
    """A csd queued to a polling CPU or riding on an IPI in flight: a quarter of an
    IPI's send (``POLLED_KICK_SEND_DIV``), of a drawn one when ``ipi_send_ns`` is."""
    if drawn(s.dist_mask, K_IPI_SEND):
        return cost_draw(s, K_IPI_SEND) // POLLED_KICK_SEND_DIV
    return s.c_kick_send
