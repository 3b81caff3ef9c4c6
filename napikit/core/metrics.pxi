# Metrics: fixed-memory latency histograms and CPU-time accounting.

cdef extern from *:
    int __builtin_clzll(unsigned long long) nogil


cdef inline int hist_index(i64 v) noexcept nogil:
    """Log-linear bucket: exact below 128 ns, then 64 buckets per power of two. A value
    of 8 bits or more is cut to its top 7 bits, ``v >> shift`` in [64, 128): ``shift``
    is its bit length less 7, found with one count of leading zeros (a histogram add
    runs per packet; a loop took one step per power of two). 57 = 64 - 7, as HIST_SUB
    is 2**6."""
    cdef int shift
    if v < 2 * HIST_SUB:
        return <int>(v if v > 0 else 0)
    shift = 57 - __builtin_clzll(<u64>v)
    if shift + 1 >= HIST_N // HIST_SUB:
        return HIST_N - 1
    return (shift + 1) * HIST_SUB + <int>((v >> shift) - HIST_SUB)


cdef inline i64 hist_lower(int idx) noexcept nogil:
    cdef int shift
    if idx < 2 * HIST_SUB:
        return idx
    shift = idx // HIST_SUB - 1
    return (<i64>(idx % HIST_SUB + HIST_SUB)) << shift


cdef inline void hist_add(Hist* h, i64 v) noexcept nogil:
    cdef u64 lo = h.sum_lo + <u64>v
    h.counts[hist_index(v)] += 1
    h.n += 1
    # 128-bit sum: the carry out of the low word, and v's sign extended into the high
    h.sum_hi += <i64>(lo < h.sum_lo) - <i64>(v < 0)
    h.sum_lo = lo
    if v > h.max:
        h.max = v


cdef object hist_summary(Hist* h):
    """count, mean and percentiles (bucket midpoints, capped at the exact max)."""
    cdef int i
    cdef i64 cum = 0, need, lo, hi
    total = (<object>h.sum_hi) * 2**64 + h.sum_lo
    mean = abs(total) // h.n if h.n else 0   # C division: rounds toward zero
    out = {"count": h.n, "mean_ns": mean if total >= 0 else -mean, "max_ns": h.max}
    for name, q in (("p50_ns", 500), ("p90_ns", 900), ("p99_ns", 990), ("p999_ns", 999)):
        if h.n == 0:
            out[name] = 0
            continue
        need = (h.n * q + 999) // 1000
        cum = 0
        for i in range(HIST_N):
            cum += h.counts[i]
            if cum >= need:
                break
        lo = hist_lower(i)
        hi = hist_lower(i + 1) if i + 1 < HIST_N else lo
        out[name] = min((lo + hi) // 2 if hi > lo + 1 else lo, h.max)
    return out


cdef object hist_buckets(Hist* h):
    """The histogram itself: ``count``, the exact ``sum_ns`` and ``max_ns``, and its
    non-empty buckets as ``[lower_ns, upper_ns, count]`` (upper exclusive)."""
    cdef int i
    total = (<object>h.sum_hi) * 2**64 + h.sum_lo
    buckets = [[hist_lower(i), hist_lower(i + 1) if i + 1 < HIST_N else hist_lower(i),
                h.counts[i]] for i in range(HIST_N) if h.counts[i]]
    return {"count": h.n, "sum_ns": total, "max_ns": h.max, "buckets": buckets}


cdef inline void account(Sim s, int cpu, int bucket, i64 ns) noexcept:
    s.cpus[cpu].acct[bucket] += ns
