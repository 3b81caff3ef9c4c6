# Seeded randomness owned by the run: xoshiro256** seeded through splitmix64.

cdef inline u64 splitmix64(u64* x) noexcept nogil:
    x[0] += 0x9E3779B97F4A7C15ULL
    cdef u64 z = x[0]
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL
    return z ^ (z >> 31)


cdef inline u64 rotl(u64 x, int k) noexcept nogil:
    return (x << k) | (x >> (64 - k))


cdef inline u64 rng_next(u64* st) noexcept nogil:
    cdef u64 result = rotl(st[1] * 5, 7) * 9
    cdef u64 t = st[1] << 17
    st[2] ^= st[0]
    st[3] ^= st[1]
    st[1] ^= st[2]
    st[0] ^= st[3]
    st[2] ^= t
    st[3] = rotl(st[3], 45)
    return result


cdef inline double rng_u01(u64* st) noexcept nogil:
    return (rng_next(st) >> 11) * (1.0 / 9007199254740992.0)


cdef void rng_seed(u64* st, u64 seed) noexcept nogil:
    cdef u64 x = seed
    cdef int i
    for i in range(4):
        st[i] = splitmix64(&x)


cdef inline u32 flow_hash(u64 seed, int flow) noexcept nogil:
    """skb_get_hash of a flow: a seeded 32-bit mix, never 0 (0 means "no hash")."""
    cdef u64 x = seed ^ (<u64>flow * 0x9E3779B97F4A7C15ULL)
    cdef u32 h = <u32>(splitmix64(&x) >> 32)
    return h if h != 0 else 1
