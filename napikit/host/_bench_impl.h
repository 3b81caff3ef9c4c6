/*
 * napikit's timed loops on the real host: loopback UDP, futex hand-offs, sched_yield,
 * cache-line ping-pong, IPIs (membarrier, tgkill). Plain C with pthreads, called from _bench.pyx without the GIL,
 * so no Python runs inside a timed loop.
 *
 * Every loop is bounded twice: by a duration (CLOCK_MONOTONIC, read through the vDSO)
 * and by a hard cap on iterations or packets. Every thread pins itself with
 * sched_setaffinity(0, ...) before it starts timing. Only 127.0.0.1 is ever used.
 *
 * Header-only (static functions) so the sdist's `global-exclude *.c` cannot drop it.
 */
#ifndef NAPIKIT_BENCH_IMPL_H
#define NAPIKIT_BENCH_IMPL_H

#define _GNU_SOURCE
#include <errno.h>
#include <linux/membarrier.h>
#include <signal.h>
#include <stdlib.h>
#include <linux/futex.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#ifndef SO_RXQ_OVFL
#define SO_RXQ_OVFL 40
#endif

#define NK_MAX_FLOWS 64

static inline int64_t nk_now(clockid_t c)
{
    struct timespec ts;
    clock_gettime(c, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static inline int64_t nk_mono(void) { return nk_now(CLOCK_MONOTONIC); }
static inline int64_t nk_cpu(void) { return nk_now(CLOCK_THREAD_CPUTIME_ID); }

static int nk_pin(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return sched_setaffinity(0, sizeof(set), &set) ? -errno : 0;
}

/* The calling thread's affinity, so a loop that pins it can put it back: the caller
 * is the Python thread that called in, and must not stay pinned after. */
typedef struct {
    cpu_set_t set;
    int ok;
} nk_affinity;

static void nk_save_affinity(nk_affinity *a)
{
    a->ok = sched_getaffinity(0, sizeof(a->set), &a->set) == 0;
}

static void nk_restore_affinity(const nk_affinity *a)
{
    if (a->ok)
        sched_setaffinity(0, sizeof(a->set), &a->set);
}

static void nk_rusage(long *nvcsw, long *nivcsw)
{
    struct rusage ru;
    if (getrusage(RUSAGE_THREAD, &ru) == 0) {
        *nvcsw = ru.ru_nvcsw;
        *nivcsw = ru.ru_nivcsw;
    } else {
        *nvcsw = *nivcsw = 0;
    }
}

static long nk_futex(int *addr, int op, int val)
{
    return syscall(SYS_futex, addr, op, val, NULL, NULL, 0);
}

/* ------------------------------------------------------------------ sample shapes */

#define NK_HIST 32

/* A probe's per-operation samples, compactly: how many, their min and max, and NK_HIST
 * quantile points at (k + 0.5) / NK_HIST, k = 0 .. NK_HIST-1, each one of the samples
 * (so min <= q[0] <= ... <= q[NK_HIST-1] <= max; q[15] <= the median v[n/2] <= q[16]).
 * Equal weights: the points are the samples' distribution at NK_HIST equal-mass steps. */
typedef struct {
    int64_t n, lo, hi;
    int64_t q[NK_HIST];
} nk_hist;

static int nk_cmp64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Sorts v[0..n) and fills h (n 0: h->n 0, nothing else). */
static void nk_hist_of(int64_t *v, int64_t n, nk_hist *h)
{
    memset(h, 0, sizeof(*h));
    if (n <= 0)
        return;
    qsort(v, (size_t)n, sizeof(*v), nk_cmp64);
    h->n = n;
    h->lo = v[0];
    h->hi = v[n - 1];
    for (int64_t k = 0; k < NK_HIST; k++)
        h->q[k] = v[(2 * k + 1) * n / (2 * NK_HIST)];
}

/* ------------------------------------------------------------------ loopback UDP */

typedef struct {
    int sender_cpu, receiver_cpu;
    int flows;              /* sender sockets, one source port each */
    int payload;            /* bytes per datagram */
    int64_t duration_ns;    /* the sender stops after this long ... */
    int64_t max_packets;    /* ... or after this many packets */
    double rate_pps;        /* 0: closed loop */
    int rcvbuf;             /* SO_RCVBUF of the receiver; 0: the default */
} nk_udp_args;

typedef struct {
    int error;              /* 0, or -errno of the failing set-up step */
    int error_step;         /* 1 socket, 2 bind, 3 pin sender, 4 pin receiver, 5 thread */
    int64_t sent, send_errors, received, received_in_window;
    int64_t send_wall_ns, send_call_ns, sender_cpu_ns, receiver_cpu_ns;
    int64_t receiver_wall_ns;
    int64_t socket_drops;   /* SO_RXQ_OVFL: sk_drops of the receiving socket */
    long sender_nvcsw, sender_nivcsw, receiver_nvcsw, receiver_nivcsw;
    int64_t receiver_tid;
} nk_udp_result;

typedef struct {
    const nk_udp_args *a;
    nk_udp_result *r;
    int fd;
    volatile int ready, done;
    int pin_error;
} nk_udp_shared;

static void *nk_udp_receiver(void *p)
{
    nk_udp_shared *s = p;
    nk_udp_result *r = s->r;
    char buf[2048];
    char ctrl[CMSG_SPACE(sizeof(uint32_t))];
    long v0, i0, v1, i1;
    int64_t c0, t0, hard_end;
    r->receiver_tid = syscall(SYS_gettid);
    s->pin_error = nk_pin(s->a->receiver_cpu);
    if (s->pin_error) {
        __atomic_store_n(&s->ready, -1, __ATOMIC_RELEASE);
        return NULL;
    }
    nk_rusage(&v0, &i0);
    c0 = nk_cpu();
    t0 = nk_mono();
    hard_end = t0 + s->a->duration_ns + 2000000000LL;
    __atomic_store_n(&s->ready, 1, __ATOMIC_RELEASE);
    for (;;) {
        struct iovec iov = {buf, sizeof(buf)};
        struct msghdr m;
        memset(&m, 0, sizeof(m));
        m.msg_iov = &iov;
        m.msg_iovlen = 1;
        m.msg_control = ctrl;
        m.msg_controllen = sizeof(ctrl);
        ssize_t n = recvmsg(s->fd, &m, 0);
        if (n >= 0) {
            r->received++;
            if (!__atomic_load_n(&s->done, __ATOMIC_ACQUIRE))
                r->received_in_window++;
            for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c))
                if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_RXQ_OVFL)
                    r->socket_drops = *(uint32_t *)CMSG_DATA(c);
            if ((r->received & 1023) == 0 && nk_mono() > hard_end)
                break;
            continue;
        }
        /* SO_RCVTIMEO expired (or EINTR): stop once the sender is done and the
         * queue stayed empty for one timeout. */
        if (__atomic_load_n(&s->done, __ATOMIC_ACQUIRE) || nk_mono() > hard_end)
            break;
    }
    r->receiver_cpu_ns = nk_cpu() - c0;
    r->receiver_wall_ns = nk_mono() - t0;
    nk_rusage(&v1, &i1);
    r->receiver_nvcsw = v1 - v0;
    r->receiver_nivcsw = i1 - i0;
    return NULL;
}

static int nk_udp_socket(struct sockaddr_in *addr)
{
    socklen_t len = sizeof(*addr);
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (fd < 0)
        return -errno;
    memset(addr, 0, sizeof(*addr));
    addr->sin_family = AF_INET;
    addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)addr, sizeof(*addr)) ||
        getsockname(fd, (struct sockaddr *)addr, &len)) {
        int e = -errno;
        close(fd);
        return e;
    }
    return fd;
}

/* Sender on sender_cpu, receiver on receiver_cpu, `flows` source sockets -> one
 * receiving socket, all on 127.0.0.1. */
static void nk_udp_flow_pinned(const nk_udp_args *a, nk_udp_result *r)
{
    nk_udp_shared s;
    struct sockaddr_in dst, src;
    int fds[NK_MAX_FLOWS];
    int flows = a->flows < 1 ? 1 : (a->flows > NK_MAX_FLOWS ? NK_MAX_FLOWS : a->flows);
    char payload[2048];
    pthread_t th;
    int one = 1, nf = 0;
    long v0, i0, v1, i1;

    memset(r, 0, sizeof(*r));
    memset(&s, 0, sizeof(s));
    memset(payload, 'n', sizeof(payload));
    s.a = a;
    s.r = r;
    s.fd = nk_udp_socket(&dst);
    if (s.fd < 0) {
        r->error = s.fd;
        r->error_step = 2;
        return;
    }
    struct timeval tv = {0, 20000};
    setsockopt(s.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(s.fd, SOL_SOCKET, SO_RXQ_OVFL, &one, sizeof(one));
    if (a->rcvbuf > 0)
        setsockopt(s.fd, SOL_SOCKET, SO_RCVBUF, &a->rcvbuf, sizeof(a->rcvbuf));
    for (nf = 0; nf < flows; nf++) {
        fds[nf] = nk_udp_socket(&src);
        if (fds[nf] < 0) {
            r->error = fds[nf];
            r->error_step = 1;
            goto out;
        }
    }
    if (pthread_create(&th, NULL, nk_udp_receiver, &s)) {
        r->error = -EAGAIN;
        r->error_step = 5;
        goto out;
    }
    int pin = nk_pin(a->sender_cpu);
    while (__atomic_load_n(&s.ready, __ATOMIC_ACQUIRE) == 0)
        sched_yield();
    if (pin || s.ready < 0) {
        __atomic_store_n(&s.done, 1, __ATOMIC_RELEASE);
        pthread_join(th, NULL);
        r->error = pin ? pin : s.pin_error;
        r->error_step = pin ? 3 : 4;
        goto out;
    }
    /* Paced gaps are tens of us: a 50 us default timer slack would swamp them. */
    int slack = prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0);
    prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);
    int payload_len = a->payload < 1 ? 1 : (a->payload > 1472 ? 1472 : a->payload);
    double gap = a->rate_pps > 0 ? 1e9 / a->rate_pps : 0;
    nk_rusage(&v0, &i0);
    int64_t c0 = nk_cpu(), t0 = nk_mono(), end = t0 + a->duration_ns, now = t0;
    int64_t calls = 0;
    for (int64_t i = 0; i < a->max_packets; i++) {
        if (gap > 0) {
            int64_t due = t0 + (int64_t)(gap * (double)i);
            if (due >= end)
                break;
            now = nk_mono();
            if (due - now > 30000) {
                struct timespec ts = {0, due - now - 20000};
                nanosleep(&ts, NULL);
            }
            while ((now = nk_mono()) < due)
                ;
        } else if ((i & 63) == 0 && (now = nk_mono()) >= end) {
            break;
        }
        if (gap > 0)
            calls -= nk_mono();
        ssize_t n = sendto(fds[i % flows], payload, payload_len, 0,
                           (struct sockaddr *)&dst, sizeof(dst));
        if (gap > 0)
            calls += nk_mono();
        if (n < 0)
            r->send_errors++;
        else
            r->sent++;
    }
    r->sender_cpu_ns = nk_cpu() - c0;
    if (slack > 0)
        prctl(PR_SET_TIMERSLACK, (unsigned long)slack, 0, 0, 0);
    r->send_wall_ns = nk_mono() - t0;
    r->send_call_ns = gap > 0 ? calls : r->send_wall_ns;
    nk_rusage(&v1, &i1);
    r->sender_nvcsw = v1 - v0;
    r->sender_nivcsw = i1 - i0;
    __atomic_store_n(&s.done, 1, __ATOMIC_RELEASE);
    pthread_join(th, NULL);
out:
    for (int i = 0; i < nf; i++)
        close(fds[i]);
    close(s.fd);
}


static void nk_udp_flow(const nk_udp_args *a, nk_udp_result *r)
{
    nk_affinity saved;
    nk_save_affinity(&saved);
    nk_udp_flow_pinned(a, r);
    nk_restore_affinity(&saved);
}

/* Same thread sends `batch` datagrams (RPS off: each is received inline, into the
 * socket, with no reader waiting), then reads them back: the two phases are timed
 * separately. Returns the totals over all rounds. */
typedef struct {
    int error;
    int64_t packets, send_ns, recv_ns, rounds;
} nk_drain_result;

static void nk_udp_drain_pinned(int cpu, int batch, int64_t duration_ns, int64_t max_rounds,
                         nk_drain_result *r)
{
    struct sockaddr_in dst, src;
    char buf[2048];
    memset(r, 0, sizeof(*r));
    memset(buf, 'n', 64);
    if ((r->error = nk_pin(cpu)))
        return;
    int rx = nk_udp_socket(&dst);
    int tx = nk_udp_socket(&src);
    if (rx < 0 || tx < 0) {
        r->error = rx < 0 ? rx : tx;
        if (rx >= 0) close(rx);
        if (tx >= 0) close(tx);
        return;
    }
    int64_t end = nk_mono() + duration_ns;
    while (r->rounds < max_rounds && nk_mono() < end) {
        int sent = 0, got = 0;
        int64_t t0 = nk_mono();
        for (int i = 0; i < batch; i++)
            sent += sendto(tx, buf, 64, 0, (struct sockaddr *)&dst, sizeof(dst)) > 0;
        int64_t t1 = nk_mono();
        for (int i = 0; i < sent; i++)
            got += recv(rx, buf, sizeof(buf), MSG_DONTWAIT) > 0;
        int64_t t2 = nk_mono();
        while (recv(rx, buf, sizeof(buf), MSG_DONTWAIT) > 0)
            ;
        r->send_ns += t1 - t0;
        r->recv_ns += t2 - t1;
        r->packets += got;
        r->rounds++;
    }
    close(rx);
    close(tx);
}


static void nk_udp_drain(int cpu, int batch, int64_t duration_ns, int64_t max_rounds,
                         nk_drain_result *r)
{
    nk_affinity saved;
    nk_save_affinity(&saved);
    nk_udp_drain_pinned(cpu, batch, duration_ns, max_rounds, r);
    nk_restore_affinity(&saved);
}

/* ------------------------------------------------------------------ futex hand-off */

typedef struct {
    int error;
    int64_t round_trips, wall_ns;
    int64_t wake_calls, wake_ns;     /* FUTEX_WAKE system calls of side A, timed */
    long a_nvcsw, b_nvcsw;
    nk_hist wake_h;                  /* those calls' times (the first NK_PP_SAMPLES) */
} nk_pp_result;

#define NK_PP_SAMPLES 262144

typedef struct {
    int cpu_b;
    int64_t duration_ns, max_rt;
    volatile int word;               /* 0: A's turn, 1: B's turn, 2: stop */
    volatile int ready, spin_stop;
    int pin_error;
    long nvcsw;
    int spinner_cpu;
} nk_pp_shared;

/* A peer thread's start: pin to cpu, take its switch counts, then tell the caller it
 * is ready (-1: pinning failed, *pin_error says why). Returns the pin error. */
static int nk_peer_start(int cpu, int *pin_error, volatile int *ready, long *nvcsw,
                         long *nivcsw)
{
    *pin_error = nk_pin(cpu);
    nk_rusage(nvcsw, nivcsw);
    __atomic_store_n(ready, *pin_error ? -1 : 1, __ATOMIC_RELEASE);
    return *pin_error;
}

static void *nk_pp_b(void *p)
{
    nk_pp_shared *s = p;
    long v0, i0, v1, i1;
    if (nk_peer_start(s->cpu_b, &s->pin_error, &s->ready, &v0, &i0))
        return NULL;
    for (;;) {
        int w = __atomic_load_n(&s->word, __ATOMIC_ACQUIRE);
        if (w == 2)
            break;
        if (w == 0) {
            nk_futex((int *)&s->word, FUTEX_WAIT_PRIVATE, 0);
            continue;
        }
        __atomic_store_n(&s->word, 0, __ATOMIC_RELEASE);
        nk_futex((int *)&s->word, FUTEX_WAKE_PRIVATE, 1);
    }
    nk_rusage(&v1, &i1);
    s->nvcsw = v1 - v0;
    return NULL;
}

/* A thread that keeps its CPU busy but yields: the "busy target". */
static void *nk_spinner(void *p)
{
    nk_pp_shared *s = p;
    if (nk_pin(s->spinner_cpu))
        return NULL;
    while (!__atomic_load_n(&s->spin_stop, __ATOMIC_ACQUIRE))
        sched_yield();
    return NULL;
}

/* Futex ping-pong: A (cpu_a) hands the word to B (cpu_b) and waits for it back, both
 * blocking in FUTEX_WAIT. With busy_target, a sched_yield spinner shares cpu_b, so a
 * wake-up of B finds its CPU running (a direct enqueue plus a reschedule IPI) rather
 * than idle (a wakelist IPI, or none if the idle task polls). */
static void nk_futex_pingpong_pinned(int cpu_a, int cpu_b, int busy_target, int64_t duration_ns,
                              int64_t max_rt, nk_pp_result *r)
{
    nk_pp_shared s;
    pthread_t tb, ts;
    long v0, i0, v1, i1;
    int64_t *wake = NULL, cap = max_rt < NK_PP_SAMPLES ? max_rt : NK_PP_SAMPLES, nw = 0;
    memset(r, 0, sizeof(*r));
    memset(&s, 0, sizeof(s));
    s.cpu_b = cpu_b;
    s.spinner_cpu = cpu_b;
    if ((r->error = nk_pin(cpu_a)))
        return;
    if (!(wake = malloc(sizeof(int64_t) * (size_t)(cap > 0 ? cap : 1)))) {
        r->error = -ENOMEM;
        return;
    }
    if (busy_target && pthread_create(&ts, NULL, nk_spinner, &s)) {
        r->error = -EAGAIN;
        free(wake);
        return;
    }
    if (pthread_create(&tb, NULL, nk_pp_b, &s)) {
        r->error = -EAGAIN;
        goto stop_spinner;
    }
    while (__atomic_load_n(&s.ready, __ATOMIC_ACQUIRE) == 0)
        sched_yield();
    if (s.ready < 0) {
        r->error = s.pin_error;
        pthread_join(tb, NULL);
        goto stop_spinner;
    }
    nk_rusage(&v0, &i0);
    int64_t t0 = nk_mono(), end = t0 + duration_ns;
    while (r->round_trips < max_rt) {
        if ((r->round_trips & 15) == 0 && nk_mono() >= end)
            break;
        __atomic_store_n(&s.word, 1, __ATOMIC_RELEASE);
        int64_t w0 = nk_mono();
        nk_futex((int *)&s.word, FUTEX_WAKE_PRIVATE, 1);
        int64_t dw = nk_mono() - w0;
        r->wake_ns += dw;
        r->wake_calls++;
        if (nw < cap)
            wake[nw++] = dw;
        while (__atomic_load_n(&s.word, __ATOMIC_ACQUIRE) == 1)
            nk_futex((int *)&s.word, FUTEX_WAIT_PRIVATE, 1);
        r->round_trips++;
    }
    r->wall_ns = nk_mono() - t0;
    nk_rusage(&v1, &i1);
    r->a_nvcsw = v1 - v0;
    __atomic_store_n(&s.word, 2, __ATOMIC_RELEASE);
    nk_futex((int *)&s.word, FUTEX_WAKE_PRIVATE, 1);
    pthread_join(tb, NULL);
    r->b_nvcsw = s.nvcsw;
    nk_hist_of(wake, nw, &r->wake_h);
stop_spinner:
    if (busy_target) {
        __atomic_store_n(&s.spin_stop, 1, __ATOMIC_RELEASE);
        pthread_join(ts, NULL);
    }
    free(wake);
}


static void nk_futex_pingpong(int cpu_a, int cpu_b, int busy_target, int64_t duration_ns,
                              int64_t max_rt, nk_pp_result *r)
{
    nk_affinity saved;
    nk_save_affinity(&saved);
    nk_futex_pingpong_pinned(cpu_a, cpu_b, busy_target, duration_ns, max_rt, r);
    nk_restore_affinity(&saved);
}

/* FUTEX_WAKE with nobody waiting: the bare system call and futex hash lookup. */
static int64_t nk_futex_wake_empty_pinned(int cpu, int64_t duration_ns, int64_t max_calls,
                                   int64_t *calls)
{
    int word = 0;
    *calls = 0;
    if (nk_pin(cpu))
        return -1;
    int64_t t0 = nk_mono(), end = t0 + duration_ns;
    while (*calls < max_calls) {
        for (int i = 0; i < 64; i++)
            nk_futex(&word, FUTEX_WAKE_PRIVATE, 1);
        *calls += 64;
        if (nk_mono() >= end)
            break;
    }
    return nk_mono() - t0;
}


static int64_t nk_futex_wake_empty(int cpu, int64_t duration_ns, int64_t max_calls,
                                   int64_t *calls)
{
    nk_affinity saved;
    nk_save_affinity(&saved);
    int64_t v = nk_futex_wake_empty_pinned(cpu, duration_ns, max_calls, calls);
    nk_restore_affinity(&saved);
    return v;
}

/* ------------------------------------------------------------------ sched_yield */

typedef struct {
    int cpu;
    int64_t end, max_calls, calls;
    volatile int *go;
} nk_yield_arg;

static void *nk_yielder(void *p)
{
    nk_yield_arg *y = p;
    if (nk_pin(y->cpu))
        return NULL;
    while (!__atomic_load_n(y->go, __ATOMIC_ACQUIRE))
        sched_yield();
    while (y->calls < y->max_calls) {
        for (int i = 0; i < 16; i++)
            sched_yield();
        y->calls += 16;
        if (nk_mono() >= y->end)
            break;
    }
    return NULL;
}

/* `threads` (1 or 2) threads on one CPU calling sched_yield: with two, every call
 * switches to the other thread. Returns ns per call (all threads' calls). */
static double nk_yield(int cpu, int threads, int64_t duration_ns, int64_t max_calls,
                       int64_t *calls_out)
{
    pthread_t th[2];
    nk_yield_arg y[2];
    volatile int go = 0;
    int n = threads < 1 ? 1 : (threads > 2 ? 2 : threads);
    int64_t t0 = nk_mono();
    for (int i = 0; i < n; i++) {
        y[i].cpu = cpu;
        y[i].end = t0 + duration_ns + 50000000LL;
        y[i].max_calls = max_calls;
        y[i].calls = 0;
        y[i].go = &go;
        if (pthread_create(&th[i], NULL, nk_yielder, &y[i])) {
            /* Let the threads already started run out their (bounded) loop. */
            for (int k = 0; k < i; k++)
                y[k].end = 0;
            __atomic_store_n(&go, 1, __ATOMIC_RELEASE);
            for (int k = 0; k < i; k++)
                pthread_join(th[k], NULL);
            return -1;
        }
    }
    struct timespec ts = {0, 20000000};
    nanosleep(&ts, NULL);  /* let both threads pin and reach the start line */
    t0 = nk_mono();
    for (int i = 0; i < n; i++)
        y[i].end = t0 + duration_ns;
    __atomic_store_n(&go, 1, __ATOMIC_RELEASE);
    int64_t calls = 0;
    for (int i = 0; i < n; i++) {
        pthread_join(th[i], NULL);
        calls += y[i].calls;
    }
    int64_t wall = nk_mono() - t0;
    *calls_out = calls;
    return calls ? (double)wall / (double)calls : -1;
}

/* ------------------------------------------------------------------ cache lines */

typedef struct {
    int cpu;
    int parity;
    int64_t max_rt;
    volatile int64_t *line;
    volatile int *stop;
} nk_cl_arg;

static void *nk_cl_peer(void *p)
{
    nk_cl_arg *c = p;
    if (nk_pin(c->cpu)) {
        __atomic_store_n(c->stop, -1, __ATOMIC_RELEASE);
        return NULL;
    }
    for (int64_t i = 0; !__atomic_load_n(c->stop, __ATOMIC_ACQUIRE);) {
        int64_t v = __atomic_load_n(c->line, __ATOMIC_ACQUIRE);
        if ((v & 1) == c->parity) {
            __atomic_store_n(c->line, v + 1, __ATOMIC_RELEASE);
            if (++i >= c->max_rt)
                break;
        }
    }
    return NULL;
}

/* A counter on one cache line handed back and forth: the peer on cpu_b increments odd
 * values, this thread (cpu_a) even ones, so each hand-off moves the line across CPUs.
 * local: this thread does both increments (the same loads and stores, no transfer).
 * Returns ns per hand-off (-1 on error). */
static double nk_cacheline_pinned(int cpu_a, int cpu_b, int local, int64_t duration_ns,
                           int64_t max_rt, int64_t *handoffs)
{
    static volatile int64_t line[16] __attribute__((aligned(128)));
    volatile int stop = 0;
    pthread_t th;
    nk_cl_arg c = {cpu_b, 1, max_rt, &line[0], &stop};
    *handoffs = 0;
    line[0] = 0;
    if (nk_pin(cpu_a))
        return -1;
    if (!local && pthread_create(&th, NULL, nk_cl_peer, &c))
        return -1;
    int64_t t0 = nk_mono(), end = t0 + duration_ns, n = 0;
    while (n < max_rt && stop == 0) {
        int64_t v = __atomic_load_n(&line[0], __ATOMIC_ACQUIRE);
        if (local || (v & 1) == 0) {
            __atomic_store_n(&line[0], v + 1, __ATOMIC_RELEASE);
            n++;
            if ((n & 1023) == 0 && nk_mono() >= end)
                break;
        }
    }
    int64_t wall = nk_mono() - t0;
    int failed = stop < 0;
    __atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
    if (!local)
        pthread_join(th, NULL);
    if (failed)
        return -1;
    /* n of this side's increments; the peer did as many: 2n hand-offs (local: n). */
    *handoffs = local ? n : 2 * n;
    return *handoffs ? (double)wall / (double)*handoffs : -1;
}


static double nk_cacheline(int cpu_a, int cpu_b, int local, int64_t duration_ns,
                           int64_t max_rt, int64_t *handoffs)
{
    nk_affinity saved;
    nk_save_affinity(&saved);
    double v = nk_cacheline_pinned(cpu_a, cpu_b, local, duration_ns, max_rt, handoffs);
    nk_restore_affinity(&saved);
    return v;
}

/* ------------------------------------------------------------------ IPIs */

#define NK_GAP_NS 300        /* a clock loop iteration longer than this was interrupted */

static int64_t nk_median(int64_t *v, int64_t n)
{
    if (n <= 0)
        return -1;
    qsort(v, (size_t)n, sizeof(*v), nk_cmp64);
    return v[n / 2];
}

static long nk_membarrier(int cmd) { return syscall(SYS_membarrier, cmd, 0, 0); }

typedef struct {
    int error;
    int64_t alone_calls, alone_ns;   /* membarrier with no other thread of ours running */
    int64_t calls, call_ns;          /* the same with the spinner running on cpu_b */
    int64_t matched;                 /* calls whose IPI the spinner saw as one gap */
    int64_t gaps, gap_ns;            /* all the spinner's gaps (background included) */
    int64_t spin_ns;                 /* how long the spinner ran */
    int64_t arrival_median, handler_median, back_median, call_median;
    nk_hist arrival_h, handler_h, call_h;   /* the matched arrivals and handlers, all calls */
} nk_mb_result;

typedef struct {
    int cpu;
    volatile int ready, stop;
    int64_t *gs, *ge, ng, max_gaps, spin_ns;
} nk_mb_spin;

/* The target: a thread of this process on cpu_b reading the clock in a tight loop.
 * An interruption shows as one iteration longer than NK_GAP_NS: it starts at the last
 * reading before the interrupt and ends at the first one after it returned. */
static void *nk_mb_spinner(void *p)
{
    nk_mb_spin *s = p;
    if (nk_pin(s->cpu)) {
        __atomic_store_n(&s->ready, -1, __ATOMIC_RELEASE);
        return NULL;
    }
    int64_t t0 = nk_mono(), last = t0;
    __atomic_store_n(&s->ready, 1, __ATOMIC_RELEASE);
    while (!__atomic_load_n(&s->stop, __ATOMIC_ACQUIRE)) {
        int64_t t = nk_mono();
        if (t - last > NK_GAP_NS && s->ng < s->max_gaps) {
            s->gs[s->ng] = last;
            s->ge[s->ng] = t;
            s->ng++;
        }
        last = t;
    }
    s->spin_ns = last - t0;
    return NULL;
}

/* membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) from cpu_a sends an IPI to every other
 * CPU running a thread of this process (membarrier_private_expedited ->
 * smp_call_function_many) and waits for them all to run ipi_mb. With one spinner on
 * cpu_b, each call is one IPI to a busy CPU, and the spinner's clock shows when it
 * arrived (arrival: call start -> gap start) and how long the target was away from its
 * task (handler: the gap, hard-IRQ entry to exit, a guest's VM exits included). The
 * calls are spaced so that each gap belongs to one call. */
static void nk_ipi_membarrier_pinned(int cpu_a, int cpu_b, int64_t duration_ns,
                                     int64_t max_calls, nk_mb_result *r)
{
    nk_mb_spin s;
    pthread_t th;
    int64_t *cs = NULL, *ce = NULL, *arr = NULL, *hand = NULL, *back = NULL, *dur = NULL;
    memset(r, 0, sizeof(*r));
    memset(&s, 0, sizeof(s));
    if (max_calls < 1)
        max_calls = 1;
    if ((r->error = nk_pin(cpu_a)))
        return;
    if (nk_membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED)) {
        r->error = -errno;
        return;
    }
    s.cpu = cpu_b;
    s.max_gaps = 4 * max_calls;
    cs = malloc(sizeof(int64_t) * (size_t)max_calls * 6);
    s.gs = malloc(sizeof(int64_t) * (size_t)s.max_gaps);
    s.ge = malloc(sizeof(int64_t) * (size_t)s.max_gaps);
    if (!cs || !s.gs || !s.ge) {
        r->error = -ENOMEM;
        goto out;
    }
    ce = cs + max_calls;
    arr = ce + max_calls;
    hand = arr + max_calls;
    back = hand + max_calls;
    dur = back + max_calls;
    /* Alone: the same system call with no IPI to send (the bare call, cpumask walk). */
    int64_t t0 = nk_mono(), end = t0 + duration_ns / 4;
    while (r->alone_calls < max_calls) {
        for (int i = 0; i < 64; i++)
            nk_membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED);
        r->alone_calls += 64;
        if (nk_mono() >= end)
            break;
    }
    r->alone_ns = nk_mono() - t0;
    if (pthread_create(&th, NULL, nk_mb_spinner, &s)) {
        r->error = -EAGAIN;
        goto out;
    }
    while (__atomic_load_n(&s.ready, __ATOMIC_ACQUIRE) == 0)
        sched_yield();
    if (s.ready < 0) {
        r->error = -EINVAL;
        pthread_join(th, NULL);
        goto out;
    }
    t0 = nk_mono();
    end = t0 + duration_ns;
    while (r->calls < max_calls) {
        int64_t a = nk_mono();
        if (a >= end)
            break;
        nk_membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED);
        int64_t b = nk_mono();
        cs[r->calls] = a;
        ce[r->calls] = b;
        r->call_ns += b - a;
        r->calls++;
        /* Space the calls: the target returns to its loop before the next IPI. */
        while (nk_mono() - b < 5000)
            ;
    }
    __atomic_store_n(&s.stop, 1, __ATOMIC_RELEASE);
    pthread_join(th, NULL);
    r->gaps = s.ng;
    r->spin_ns = s.spin_ns;
    for (int64_t j = 0; j < s.ng; j++)
        r->gap_ns += s.ge[j] - s.gs[j];
    /* A call's gap starts inside it (the IPI lands while the caller waits) and ends
     * before the call returns (the caller waits for ipi_mb to complete). */
    int64_t j = 0, m = 0;
    for (int64_t i = 0; i < r->calls; i++) {
        dur[i] = ce[i] - cs[i];
        while (j < s.ng && s.gs[j] < cs[i])
            j++;
        if (j < s.ng && s.ge[j] <= ce[i]) {
            arr[m] = s.gs[j] - cs[i];
            hand[m] = s.ge[j] - s.gs[j];
            back[m] = ce[i] - s.ge[j];
            m++;
        }
    }
    r->matched = m;
    r->arrival_median = nk_median(arr, m);
    r->handler_median = nk_median(hand, m);
    r->back_median = nk_median(back, m);
    r->call_median = nk_median(dur, r->calls);
    /* the medians sorted them: the shapes come from the same samples */
    nk_hist_of(arr, m, &r->arrival_h);
    nk_hist_of(hand, m, &r->handler_h);
    nk_hist_of(dur, r->calls, &r->call_h);
out:
    free(cs);
    free(s.gs);
    free(s.ge);
}

static void nk_ipi_membarrier(int cpu_a, int cpu_b, int64_t duration_ns, int64_t max_calls,
                              nk_mb_result *r)
{
    nk_affinity saved;
    nk_save_affinity(&saved);
    nk_ipi_membarrier_pinned(cpu_a, cpu_b, duration_ns, max_calls, r);
    nk_restore_affinity(&saved);
}

typedef struct {
    int error;
    int64_t calls, call_ns, call_median;  /* the tgkill system calls, timed */
    int64_t handled;                      /* signals the target ran its handler for */
    nk_hist call_h;                       /* those calls' times */
} nk_tk_result;

typedef struct {
    int cpu, yield;
    volatile int ready, stop;
    volatile pid_t tid;
} nk_tk_target;

static volatile int64_t nk_tk_hits;

static void nk_tk_handler(int sig)
{
    (void)sig;
    __atomic_add_fetch(&nk_tk_hits, 1, __ATOMIC_RELEASE);
}

static void *nk_tk_spinner(void *p)
{
    nk_tk_target *t = p;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGRTMIN + 3);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
    if (nk_pin(t->cpu)) {
        __atomic_store_n(&t->ready, -1, __ATOMIC_RELEASE);
        return NULL;
    }
    t->tid = (pid_t)syscall(SYS_gettid);
    __atomic_store_n(&t->ready, 1, __ATOMIC_RELEASE);
    while (!__atomic_load_n(&t->stop, __ATOMIC_ACQUIRE))
        if (t->yield)
            sched_yield();
    return NULL;
}

/* tgkill of a thread spinning in user space: on another CPU it is running, so
 * signal_wake_up -> kick_process sends it a reschedule IPI (smp_send_reschedule, a RES
 * interrupt) and the caller pays for sending it; on the caller's own CPU it is
 * runnable but not running, and no IPI is sent. The difference of the two is the cost
 * of sending an IPI to the sender. Each call waits until the handler ran, so every
 * signal meets a target back in its loop. The caller's signal mask and the signal's
 * previous action are restored. */
static void nk_ipi_tgkill_pinned(int cpu_a, int cpu_b, int64_t duration_ns, int64_t max_calls,
                                 nk_tk_result *r)
{
    nk_tk_target t;
    pthread_t th;
    struct sigaction sa, old;
    sigset_t set, oldmask;
    int64_t *dur;
    memset(r, 0, sizeof(*r));
    memset(&t, 0, sizeof(t));
    if (max_calls < 1)
        max_calls = 1;
    if ((r->error = nk_pin(cpu_a)))
        return;
    if (!(dur = malloc(sizeof(int64_t) * (size_t)max_calls))) {
        r->error = -ENOMEM;
        return;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = nk_tk_handler;
    sigemptyset(&sa.sa_mask);
    sigemptyset(&set);
    sigaddset(&set, SIGRTMIN + 3);
    /* Only the target takes the signal: the calling thread blocks it meanwhile. */
    pthread_sigmask(SIG_BLOCK, &set, &oldmask);
    if (sigaction(SIGRTMIN + 3, &sa, &old)) {
        r->error = -errno;
        goto restore_mask;
    }
    __atomic_store_n(&nk_tk_hits, 0, __ATOMIC_RELEASE);
    t.cpu = cpu_b;
    t.yield = cpu_a == cpu_b;
    if (pthread_create(&th, NULL, nk_tk_spinner, &t)) {
        r->error = -EAGAIN;
        goto restore_action;
    }
    while (__atomic_load_n(&t.ready, __ATOMIC_ACQUIRE) == 0)
        sched_yield();
    if (t.ready < 0) {
        r->error = -EINVAL;
        goto join;
    }
    pid_t pid = getpid();
    int64_t t0 = nk_mono(), end = t0 + duration_ns;
    while (r->calls < max_calls && nk_mono() < end) {
        int64_t a = nk_mono();
        syscall(SYS_tgkill, pid, t.tid, SIGRTMIN + 3);
        int64_t b = nk_mono();
        dur[r->calls] = b - a;
        r->call_ns += b - a;
        r->calls++;
        /* Bounded wait for the handler (on one CPU the target needs the CPU to run it). */
        while (__atomic_load_n(&nk_tk_hits, __ATOMIC_ACQUIRE) < r->calls && nk_mono() < end)
            if (t.yield)
                sched_yield();
        int64_t c = nk_mono();
        while (nk_mono() - c < 2000)
            ;
    }
    r->call_median = nk_median(dur, r->calls);
    nk_hist_of(dur, r->calls, &r->call_h);
join:
    __atomic_store_n(&t.stop, 1, __ATOMIC_RELEASE);
    pthread_join(th, NULL);
    r->handled = __atomic_load_n(&nk_tk_hits, __ATOMIC_ACQUIRE);
restore_action:
    sigaction(SIGRTMIN + 3, &old, NULL);
restore_mask:
    pthread_sigmask(SIG_SETMASK, &oldmask, NULL);
    free(dur);
}

static void nk_ipi_tgkill(int cpu_a, int cpu_b, int64_t duration_ns, int64_t max_calls,
                          nk_tk_result *r)
{
    nk_affinity saved;
    nk_save_affinity(&saved);
    nk_ipi_tgkill_pinned(cpu_a, cpu_b, duration_ns, max_calls, r);
    nk_restore_affinity(&saved);
}

/* ------------------------------------------------------------------ idle entry */

typedef struct {
    int error;
    int64_t wakes, wall_ns;
    long b_nvcsw;                    /* B's voluntary switches: the wake-ups that found it asleep */
    int64_t b_cpu_ns;                /* B's CPU time (CLOCK_THREAD_CPUTIME_ID) over the loop */
    int64_t slept;                   /* wake-ups that found B asleep in FUTEX_WAIT */
    int64_t wake_median;             /* median, over those, of A's wake to B running (ns) */
    nk_hist wake_h;                  /* those wake-to-running times */
} nk_ie_result;

typedef struct {
    int cpu_b;
    volatile int word;               /* 0: B waits, 1: B goes, 2: B stops */
    volatile int ready;
    volatile int64_t seq, t_block;   /* B's blocks so far, and when the last one began */
    volatile int64_t t_wake;         /* when A began its last wake-up */
    int64_t *lat, nlat, cap;         /* B's wake latencies, of the wake-ups it slept through */
    int pin_error;
    long nvcsw;
    int64_t cpu_ns;
} nk_ie_shared;

static void *nk_ie_b(void *p)
{
    nk_ie_shared *s = p;
    long v0, i0, v1, i1;
    if (nk_peer_start(s->cpu_b, &s->pin_error, &s->ready, &v0, &i0))
        return NULL;
    int64_t c0 = nk_cpu();
    for (int64_t k = 1;; k++) {
        s->t_block = nk_mono();
        __atomic_store_n(&s->seq, k, __ATOMIC_RELEASE);
        int slept = 0, w, go = 1;
        while ((w = __atomic_load_n(&s->word, __ATOMIC_ACQUIRE)) == 0)
            if (nk_futex((int *)&s->word, FUTEX_WAIT_PRIVATE, 0) == 0)
                slept = 1;
        if (w == 2)
            break;
        if (slept && s->nlat < s->cap)
            s->lat[s->nlat++] = nk_mono() - s->t_wake;
        /* 1 -> 0 only: a plain store could overwrite A's stop, made while B was on its
         * way here, and B would then wait for a wake-up that never comes */
        if (!__atomic_compare_exchange_n(&s->word, &go, 0, 0, __ATOMIC_ACQ_REL,
                                         __ATOMIC_ACQUIRE))
            break;
    }
    s->cpu_ns = nk_cpu() - c0;
    nk_rusage(&v1, &i1);
    s->nvcsw = v1 - v0;
    return NULL;
}

/* The idle entry's polling window: B (cpu_b, otherwise idle) blocks in FUTEX_WAIT; A
 * (cpu_a) spins until delay_ns after B began to block, then wakes it. While cpu_b's
 * idle task still runs do_idle with TIF_POLLING_NRFLAG set (before cpuidle_idle_call
 * clears it and halts), the wake-up needs no interrupt (ttwu_queue_wakelist ->
 * set_nr_if_polling); later it costs a CAL IPI. The caller counts cpu_b's CAL and RES
 * interrupts around the call, one delay per call. */
static void nk_idle_entry_pinned(int cpu_a, int cpu_b, int64_t delay_ns, int64_t duration_ns,
                                 int64_t max_wakes, nk_ie_result *r)
{
    nk_ie_shared s;
    pthread_t tb;
    memset(r, 0, sizeof(*r));
    memset(&s, 0, sizeof(s));
    s.cpu_b = cpu_b;
    s.cap = max_wakes < 1000000 ? max_wakes : 1000000;
    if ((r->error = nk_pin(cpu_a)))
        return;
    if (!(s.lat = malloc(sizeof(int64_t) * (size_t)(s.cap > 0 ? s.cap : 1)))) {
        r->error = -ENOMEM;
        return;
    }
    if (pthread_create(&tb, NULL, nk_ie_b, &s)) {
        r->error = -EAGAIN;
        free(s.lat);
        return;
    }
    while (__atomic_load_n(&s.ready, __ATOMIC_ACQUIRE) == 0)
        sched_yield();
    if (s.ready < 0) {
        r->error = s.pin_error;
        pthread_join(tb, NULL);
        free(s.lat);
        return;
    }
    int64_t t0 = nk_mono(), end = t0 + duration_ns, hard_end = end + 100000000;
    while (r->wakes < max_wakes && nk_mono() < end) {
        int64_t now;
        /* B's next block; a wake-up that B has not yet acted on bounds this by time */
        while (__atomic_load_n(&s.seq, __ATOMIC_ACQUIRE) <= r->wakes)
            if (nk_mono() >= hard_end)
                goto stop;
        int64_t due = s.t_block + delay_ns;
        while ((now = nk_mono()) < due)
            ;
        s.t_wake = now;
        __atomic_store_n(&s.word, 1, __ATOMIC_RELEASE);
        nk_futex((int *)&s.word, FUTEX_WAKE_PRIVATE, 1);
        r->wakes++;
    }
stop:
    r->wall_ns = nk_mono() - t0;
    __atomic_store_n(&s.word, 2, __ATOMIC_RELEASE);
    nk_futex((int *)&s.word, FUTEX_WAKE_PRIVATE, 1);
    pthread_join(tb, NULL);
    r->b_nvcsw = s.nvcsw;
    r->b_cpu_ns = s.cpu_ns;
    r->slept = s.nlat;
    r->wake_median = nk_median(s.lat, s.nlat);
    nk_hist_of(s.lat, s.nlat, &r->wake_h);
    free(s.lat);
}


static void nk_idle_entry(int cpu_a, int cpu_b, int64_t delay_ns, int64_t duration_ns,
                          int64_t max_wakes, nk_ie_result *r)
{
    nk_affinity saved;
    nk_save_affinity(&saved);
    nk_idle_entry_pinned(cpu_a, cpu_b, delay_ns, duration_ns, max_wakes, r);
    nk_restore_affinity(&saved);
}

#endif
