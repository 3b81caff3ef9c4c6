# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False, nonecheck=False
"""napikit's simulation core: per-CPU backlog NAPI, softirq, tasks, one event loop.

One compiled module assembled from ``core/*.pxi`` (one file per kernel concept), so
the parts call each other as plain C functions. All state is C arrays owned by
:class:`Sim`; nothing is allocated per packet or per event, and the queues and the
packet pool grow (doubling) with the packets in flight, not with the configured limits.
See ``docs/kernel-model.md`` for the kernel behaviour each part mirrors.
"""

from cpython.exc cimport PyErr_CheckSignals
from cpython.bytes cimport PyBytes_FromStringAndSize

from napikit.decision cimport (
    CompiledPolicy, ACTION_SOFTIRQ, ACTION_IPI, ACTION_THREAD, ACTION_NONE,
    SOFTIRQ_INLINE, SOFTIRQ_KSOFTIRQD, DECISION_FAILED,
)

include "core/defs.pxi"

cdef enum:
    FLOW_LIMIT_HISTORY = 128   # net/core/dev.h
    NIC_RING = 4096            # device receive ring ahead of a forced-threaded handler
    FIFO_IRQ_PRIO = 50         # sched_set_fifo() of IRQ threads
    STOPPER_PRIO = 99          # the stopper runs above every other task (MAX_RT_PRIO - 1)
    # A csd queued to a polling CPU costs its sender a quarter of an IPI's send: the
    # llist_add and set_nr_if_polling's cmpxchg on the target's flags (two cache lines
    # that move) but no APIC write, the part that traps in a guest (kernel-model.md B.10.1)
    POLLED_KICK_SEND_DIV = 4

#: CPU time buckets, task kinds and task states as results name them.
BUCKET_NAMES = ("hardirq", "softirq", "ksoftirqd", "backlog_thread", "irq_thread",
                "application", "sched", "cpuhp")
TASK_KINDS = ("sender", "receiver", "ksoftirqd", "backlog_napi", "irq_thread",
              "cyclictest", "stopper")
TASK_STATES = ("running", "runnable", "sleeping", "waking", "dead", "parked", "absent")
#: The layout of one record of :meth:`Sim.trace_records` (``struct`` format).
TRACE_RECORD_FORMAT = "=qqqqiiii"
#: Trace record kinds, in core/defs.pxi's TR_* order.
TRACE_KINDS = ("step", "charge", "ipi", "wake", "state", "switch", "backlog")
#: What out-of-line CPU time and interrupts are for, in core/defs.pxi's TW_* order.
TRACE_WHAT = ("other", "nic_irq", "hrtimer_irq", "tick", "ipi_rps", "ipi_wake",
              "ipi_defer", "ipi_send", "csd_queue", "wakeup", "netif_rx", "skb_free",
              "hotplug")
#: A time series row's counters, in core/samples.pxi's S_* order.
SAMPLE_COLUMNS = ("time_ns", "arrived", "delivered", "drops", "ipis", "wakeup_ipis",
                  "thread_kicks", "context_switches")
#: The costs that may be drawn per operation, in the order of core/defs.pxi's K_* slots.
COST_NAMES = ("netif_rx_ns", "nic_irq_ns", "protocol_rx_ns", "udp_sendmsg_ns",
              "udp_recvmsg_ns", "ipi_send_ns", "ipi_latency_ns", "ipi_handler_ns",
              "context_switch_ns", "wakeup_ns", "wakeup_latency_ns", "softirq_entry_ns",
              "hrtimer_irq_ns", "remote_skb_ns", "remote_sock_ns", "recv_block_ns",
              "idle_entry_ns", "idle_exit_poll_ns", "skb_free_ns")
# seeds the draws' stream apart from the arrivals' (the same seed, another stream)
cdef u64 COST_STREAM = 0xC0575EED5EED1234ULL

# The run starts on a machine that has been up a while: CPU min_vruntime is this far
# along, the workload's senders start there (a fork is placed at min_vruntime) and every
# other task has slept since boot, so its first wake-up gets the full sleeper credit
# instead of the artefact of all clocks starting at zero.
cdef i64 UPTIME_NS = 1_000_000_000

# sched_prio_to_weight (kernel/sched/core.c): a task's weight by nice -20..19
_PRIO_TO_WEIGHT = (
    88761, 71755, 56483, 46273, 36291, 29154, 23254, 18705, 14949, 11916,
    9548, 7620, 6100, 4904, 3906, 3121, 2501, 1991, 1586, 1277,
    1024, 820, 655, 526, 423, 335, 272, 215, 172, 137,
    110, 87, 70, 56, 45, 36, 29, 23, 18, 15,
)

# The fields of one switch-log record (Sim.record_switches).
SWITCH_LOG_FIELDS = ("time", "cpu", "prev", "next", "prev_vruntime", "vruntime",
                     "deadline", "avg_vruntime", "prev_vlag", "prev_state")
cdef enum:
    SWITCH_LOG_WIDTH = 10

# The event loop looks for a pending signal (Ctrl-C) once per this many events.
cdef enum:
    SIGNAL_CHECK_EVENTS = 8192


cdef void* checked_calloc(i64 n, size_t size, str what) except NULL:
    """``calloc`` of ``n`` records (at least one), sized in 64 bits; ``MemoryError``
    naming ``what`` (its ``{}`` is ``n``) if that cannot be had."""
    cdef void* p = NULL
    if n < 1:
        n = 1
    if <u64>n <= (<u64>1 << 62) // size:
        p = calloc(<size_t>n, size)
    if p == NULL:
        raise MemoryError("napikit: cannot allocate " + what.format(n))
    return p


def _nomem_message(int what, int who, i64 n):
    """The one line of the ``MemoryError`` that ends a run whose queues cannot grow."""
    thing = {
        NOMEM_PACKETS: "the packet pool ({n} packets)",
        NOMEM_EVENTS: "the event queue ({n} events)",
        NOMEM_BACKLOG: "the backlog of CPU {who} ({n} packets)",
        NOMEM_SOCKET: "the receive queue of socket {who} ({n} packets)",
        NOMEM_NIC_RING: "the device ring of traffic source {who} ({n} packets)",
        NOMEM_RPS_IPI: "the rps_ipi_list of CPU {who} ({n} entries)",
        NOMEM_FLOW_LIMIT: "the flow-limit table of CPU {who} ({n} buckets)",
        NOMEM_DEFER: "the defer list of CPU {who} ({n} packets)",
    }[what]
    return "napikit: cannot allocate " + thing.format(who=who, n=n)


cdef class Sim:
    """One run of the model. Build it from a :class:`napikit.Config` and a decision
    object, call :meth:`run` once, then read :meth:`raw_results`."""

    # configuration, flattened
    cdef int ncpus
    cdef int max_backlog
    cdef int dev_rx_weight
    cdef int netdev_budget
    cdef i64 budget_jiffies
    cdef i64 tick_ns
    cdef int max_softirq_restart
    cdef i64 max_softirq_jiffies
    cdef i64 sched_latency
    cdef i64 sched_min_gran
    cdef i64 sched_wakeup_gran
    cdef int fair_class            # FAIR_EEVDF / FAIR_CFS (KernelParams.scheduler)
    cdef i64 base_slice            # sysctl_sched_base_slice
    cdef bint place_lag, run_to_parity
    cdef bint delay_dequeue        # KernelParams.sched_delay_dequeue, under EEVDF only
    # the switch log (record_switches): what __schedule switched to, for checking a
    # scheduler class against hand-computed schedules
    cdef i64* swlog
    cdef i64 swlog_cap, swlog_n
    cdef bint forced_irqthreads
    cdef bint preempt_rt
    cdef bint ksoftirqd_do_its_job
    cdef bint idle_poll
    cdef bint csd_coalesce         # KernelParams.csd_coalescing (B.10.1)
    cdef int cpuidle               # IDLE_HALT / IDLE_POLL / IDLE_HALTPOLL
    cdef i64 c_idle_exit, haltpoll_ns, c_kick_send
    cdef u64 seed
    cdef i64 c_netif_rx, c_nic_irq, c_protocol_rx, c_udp_sendmsg, c_udp_recvmsg
    cdef i64 c_ipi_send, c_ipi_latency, c_ipi_handler, c_context_switch
    cdef i64 c_wakeup, c_wakeup_latency, c_softirq_entry, c_hrtimer_irq
    cdef i64 c_remote_skb, c_remote_sock, c_recv_block, c_idle_entry, c_idle_exit_poll
    cdef bint loc_on              # a location cost is not zero (B.10.6)
    cdef u32 dist_mask            # costs drawn per operation (Config.cost_distributions)
    cdef bint rx_drawn            # protocol receive or a location cost is drawn
    cdef bint rx_by_packet        # loc_on or rx_drawn: a poll step's cost is per packet
    cdef CostDist dist[K_COUNT]
    cdef u64 cost_rng[4]          # the draws' own stream: a drawn cost moves no arrival
    cdef int rx_n_max             # most packets whose protocol_rx_ns sum is below T_NEVER
    cdef bint has_sockets         # some packets go to a socket (loopback UDP)
    cdef CompiledPolicy policy
    # state
    cdef i64 now
    cdef i64 end_time
    cdef i64 duration_end
    cdef i64 drain_ns
    cdef i64 packets_left
    cdef bint input_open
    cdef i64 input_stop
    # the event queue (core/events.pxi)
    cdef int nev                  # events queued
    cdef i64 ev_seq
    cdef bint ev_cal              # in the calendar (else in the heap)
    cdef Event* heap              # EV_HEAP_MAX
    cdef Event* evs               # the calendar's pool: queued events and free slots
    cdef int cap_ev, ev_free
    cdef EvBucket* ev_bk          # cap_ev / 2 allocated, ev_nb in use
    cdef int ev_nb, ev_shift, ev_cur
    cdef i64 ev_top, ev_steps, ev_tune
    cdef u64 rng[4]
    cdef Cpu* cpus
    cdef Softnet* sd
    cdef Task* tasks
    cdef int ntasks
    cdef int* cpu_tasks
    cdef int* cpu_ntasks
    cdef int max_tasks_per_cpu
    cdef int* ksoftirqd_task
    cdef int* backlog_task
    cdef int* stopper_task
    # CPU hotplug requests, in the order they run (kernel/cpu.c)
    cdef int hp_n
    cdef int hp_next          # the next request to start
    cdef i64* hp_time
    cdef int* hp_cpu
    cdef int* hp_online
    cdef i64* hp_done         # when it completed, -1 not (yet)
    cdef i64* hp_reinjected   # packets dev_cpu_dead re-injected
    # cyclictest-like tasks
    cdef int nct
    cdef i64* ct_period
    cdef i64* ct_work
    cdef Hist* ct_hist
    cdef Source* sources
    cdef int nsources
    cdef Socket* socks
    cdef int nsocks
    cdef Packet* pkts
    cdef int npkts
    cdef int free_pkt
    cdef i64 pkts_in_use
    cdef int* flow_seq
    cdef int* flow_last
    cdef int nflows
    cdef Hist* lat_enqueue
    cdef Hist* lat_send_recv
    # counters
    cdef i64 arrived, delivered, delivered_in_window
    cdef i64 drop_backlog, drop_flow_limit, drop_socket, drop_nic_ring
    cdef i64 coalesced_csds
    cdef i64 ipis, polled_kicks, wakeup_ipis, thread_kicks, backlog_thread_wakeups, ksoftirqd_wakeups
    cdef i64 context_switches, involuntary_switches, rt_idle_softirq_warnings
    cdef i64 reordered, wrong_cpu, events, lost_kicks, reinjected
    cdef i64 stall_timeout
    cdef int watchdog_pending  # events that are no activity: the watchdog's, the sampler's
    # time series (core/samples.pxi)
    cdef i64 sample_interval
    cdef i64* samples
    cdef i64 nsamples, cap_samples, max_samples
    cdef bint samples_truncated
    # the timeline (core/trace.pxi, record_trace)
    cdef bint trace_on, trace_snapped, trace_truncated
    cdef i64 trace_start, trace_end
    cdef TraceRec* trace
    cdef i64 trace_n, trace_cap, trace_max
    cdef i64 trace_seq             # the seq of the event being handled
    cdef i64* trace_irq_until      # per CPU: the end of the last out-of-line slice
    cdef int* trace_backlog_len    # per CPU: the backlog length last recorded
    # a policy fault, or an allocation that failed (nomem_what != 0), ends the run
    cdef bint failed
    cdef readonly object fault
    cdef int nomem_what, nomem_who
    cdef i64 nomem_n
    cdef bint ran
    # preemption model (KernelParams.preempt, core/sched.pxi): PREEMPT_NONE /
    # PREEMPT_VOLUNTARY / PREEMPT_FULL
    cdef int preempt_model
    # deferred skb frees (core/skbfree.pxi; KernelParams.udp_skb_defer_free, skb_defer_max)
    cdef bint udp_defer_free
    cdef int skb_defer_max
    cdef i64 c_skb_free
    cdef Ring* defer_list        # per CPU, NULL when deferral is off
    cdef int* defer_ipi_scheduled
    cdef i64 defer_ipis

    def __cinit__(self):
        self.heap = NULL
        self.evs = NULL
        self.ev_bk = NULL
        self.cpus = NULL
        self.sd = NULL
        self.tasks = NULL
        self.cpu_tasks = NULL
        self.cpu_ntasks = NULL
        self.ksoftirqd_task = NULL
        self.backlog_task = NULL
        self.stopper_task = NULL
        self.hp_time = NULL
        self.hp_cpu = NULL
        self.hp_online = NULL
        self.hp_done = NULL
        self.hp_reinjected = NULL
        self.ct_period = NULL
        self.ct_work = NULL
        self.ct_hist = NULL
        self.hp_n = 0
        self.nct = 0
        self.sources = NULL
        self.socks = NULL
        self.pkts = NULL
        self.flow_seq = NULL
        self.flow_last = NULL
        self.lat_enqueue = NULL
        self.lat_send_recv = NULL
        self.nsources = 0
        self.nsocks = 0
        self.defer_list = NULL
        self.defer_ipi_scheduled = NULL

    def __init__(self, config, CompiledPolicy policy not None):
        from napikit.config import Cyclictest, LoopbackUdp
        k = config.kernel
        c = config.costs
        self.policy = policy
        self.ncpus = config.ncpus
        self.max_backlog = k.netdev_max_backlog
        self.dev_rx_weight = k.dev_rx_weight
        self.netdev_budget = k.netdev_budget
        self.tick_ns = 1_000_000_000 // k.hz
        # usecs_to_jiffies rounds up; msecs_to_jiffies(MAX_SOFTIRQ_TIME) too, min 1
        self.budget_jiffies = max(1, -(-k.budget_usecs * k.hz // 1_000_000))
        self.max_softirq_jiffies = max(1, -(-k.max_softirq_time_ms * k.hz // 1000))
        self.max_softirq_restart = k.max_softirq_restart
        self.sched_latency, self.sched_min_gran, self.sched_wakeup_gran, self.base_slice = \
            k.sched_tunables(config.ncpus)
        self.fair_class = FAIR_EEVDF if k.scheduler == "eevdf" else FAIR_CFS
        self.place_lag = k.sched_place_lag
        self.run_to_parity = k.sched_run_to_parity
        self.delay_dequeue = k.sched_delay_dequeue and self.fair_class == FAIR_EEVDF
        self.preempt_rt = k.preempt_rt
        self.preempt_model = {"none": PREEMPT_NONE, "voluntary": PREEMPT_VOLUNTARY,
                              "full": PREEMPT_FULL}[k.preempt]
        # PREEMPT_RT forces threaded interrupts (force_irqthreads() is constant true)
        self.forced_irqthreads = k.force_irqthreads or policy.force_irqthreads or k.preempt_rt
        self.ksoftirqd_do_its_job = k.let_ksoftirqd_do_its_job
        self.idle_poll = k.idle_poll
        self.csd_coalesce = k.csd_coalescing
        self.cpuidle = {"halt": IDLE_HALT, "poll": IDLE_POLL, "haltpoll": IDLE_HALTPOLL}[k.cpuidle]
        self.c_idle_exit = k.idle_exit_latency_ns
        self.haltpoll_ns = k.haltpoll_ns
        self.seed = config.seed
        self.c_netif_rx = c.netif_rx_ns
        self.c_nic_irq = c.nic_irq_ns
        self.c_protocol_rx = c.protocol_rx_ns
        self.c_udp_sendmsg = c.udp_sendmsg_ns
        self.c_udp_recvmsg = c.udp_recvmsg_ns
        self.c_ipi_send = c.ipi_send_ns
        # a csd to a polling CPU: llist_add and set_nr_if_polling's cmpxchg, no APIC write
        self.c_kick_send = c.ipi_send_ns // POLLED_KICK_SEND_DIV
        self.c_ipi_latency = c.ipi_latency_ns
        self.c_ipi_handler = c.ipi_handler_ns
        self.c_context_switch = c.context_switch_ns
        self.c_wakeup = c.wakeup_ns
        self.c_wakeup_latency = c.wakeup_latency_ns
        self.c_softirq_entry = c.softirq_entry_ns
        self.c_hrtimer_irq = c.hrtimer_irq_ns
        self.c_remote_skb = c.remote_skb_ns
        self.c_remote_sock = c.remote_sock_ns
        self.c_recv_block = c.recv_block_ns
        self.c_idle_entry = c.idle_entry_ns
        self.c_idle_exit_poll = c.idle_exit_poll_ns
        self.loc_on = c.remote_skb_ns > 0 or c.remote_sock_ns > 0
        self.rx_n_max = min(T_NEVER // c.protocol_rx_ns, 2**31 - 1) if c.protocol_rx_ns else 2**31 - 1
        rng_seed(self.rng, config.seed)
        self._setup_costs(config)

        self.now = 0
        self.packets_left = config.packets if config.packets is not None else (1 << 62)
        self.duration_end = config.duration_ns if config.duration_ns is not None else (1 << 62)
        self.drain_ns = config.drain_ns
        self.stall_timeout = config.stall_timeout_ns if config.stall_timeout_ns is not None else 0
        if config.sample_interval_ns is not None:
            self.sample_interval = config.sample_interval_ns
            width = SAMPLE_GLOBALS + self.ncpus * SAMPLE_PER_CPU
            self.max_samples = max(1, SAMPLE_CELLS_MAX // width)
            self.cap_samples = min(self.max_samples, SAMPLE_ROWS_START)
            self.samples = <i64*>checked_calloc(self.cap_samples, width * sizeof(i64),
                                                "the time series ({} rows)")
        self.end_time = (1 << 62)
        self.input_open = 1
        self.input_stop = 0
        if not ev_init(self):
            raise MemoryError(f"napikit: cannot allocate the event queue ({self.cap_ev} events)")
        self.lat_enqueue = <Hist*>checked_calloc(1, sizeof(Hist), "a latency histogram")
        self.lat_send_recv = <Hist*>checked_calloc(1, sizeof(Hist), "a latency histogram")

        self._setup_cpus(k, config.offline_cpus)
        self._setup_hotplug(config.hotplug_sequence)
        # tasks: per-CPU kthreads (of every possible CPU), then the workloads' threads
        specs = []   # (kind, cpu, policy, prio, arg, nice)
        for cpu in range(self.ncpus):
            specs.append((T_KSOFTIRQD, cpu, SCHED_NORMAL, 0, -1, 0))
        if policy.backlog_threads:
            for cpu in range(self.ncpus):
                specs.append((T_BACKLOG_NAPI, cpu, SCHED_NORMAL, 0, -1, 0))
        for cpu in range(self.ncpus):
            specs.append((T_STOPPER, cpu, SCHED_FIFO, STOPPER_PRIO, -1, 0))
        cyclictests = [w for w in config.workloads if isinstance(w, Cyclictest)]
        self._setup_cyclictests(cyclictests)
        for i, w in enumerate(cyclictests):
            specs.append((T_CYCLICTEST, w.cpu, SCHED_FIFO, w.priority, i, 0))
        sources = []  # (kind, cpu, workload, sock, flow_base, nflows)
        socks = []    # (cap, receiver spec index)
        nflows = 0
        sock_cap = max(1, k.rmem_default // k.skb_truesize)
        for w in config.workloads:
            if isinstance(w, LoopbackUdp):
                for snd, rcv in zip(w.senders, w.receivers):
                    socks.append((sock_cap, len(specs)))
                    specs.append((T_RECEIVER, rcv, SCHED_NORMAL, 0, len(socks) - 1, w.nice))
                    sources.append((SRC_LOOPBACK, snd, w, len(socks) - 1, nflows, w.flows))
                    specs.append((T_SENDER, snd, SCHED_NORMAL, 0, len(sources) - 1, w.nice))
                    nflows += w.flows
            elif not isinstance(w, Cyclictest):
                sources.append((SRC_NIC, w.cpu, w, -1, nflows, w.flows))
                if self.forced_irqthreads:
                    specs.append((T_IRQ_THREAD, w.cpu, SCHED_FIFO, FIFO_IRQ_PRIO,
                                  len(sources) - 1, 0))
                nflows += w.flows
        self._setup_tasks(specs, bool(self.hp_n))
        self._setup_sources(sources, socks)
        self.has_sockets = len(socks) > 0
        self.nflows = nflows
        self.flow_seq = <int*>checked_calloc(nflows, sizeof(int), "the per-flow state ({} flows)")
        self.flow_last = <int*>checked_calloc(nflows, sizeof(int), "the per-flow state ({} flows)")
        self._setup_packets()
        self._setup_defer(k, c)
        self._start()

    cdef void _setup_cpus(self, k, offline):
        cdef int cpu, log_b
        self.cpus = <Cpu*>checked_calloc(self.ncpus, sizeof(Cpu), "the per-CPU state ({} CPUs)")
        self.sd = <Softnet*>checked_calloc(self.ncpus, sizeof(Softnet), "the softnet_data ({} CPUs)")
        self.ksoftirqd_task = <int*>checked_calloc(self.ncpus, sizeof(int), "the per-CPU state ({} CPUs)")
        self.backlog_task = <int*>checked_calloc(self.ncpus, sizeof(int), "the per-CPU state ({} CPUs)")
        self.stopper_task = <int*>checked_calloc(self.ncpus, sizeof(int), "the per-CPU state ({} CPUs)")
        fl_cpus = set(k.flow_limit_cpu_bitmap)
        log_b = k.flow_limit_table_len.bit_length() - 1
        for cpu in range(self.ncpus):
            self.cpus[cpu].online = 0 if cpu in offline else 1
            self.cpus[cpu].curr = -1
            self.cpus[cpu].min_vruntime = UPTIME_NS
            self.cpus[cpu].softirq_host_task = -1
            if drawn(self.dist_mask, K_IDLE_ENTRY):   # idle since the start: a first window
                self.cpus[cpu].idle_entry_drawn = cost_draw(self, K_IDLE_ENTRY)
            self.backlog_task[cpu] = -1
            # input_pkt_queue grows up to netdev_max_backlog + 1 (the check is qlen > max)
            if not (ring_init(&self.sd[cpu].input_pkt_queue) and
                    ring_init(&self.sd[cpu].process_queue)):
                raise MemoryError(f"napikit: cannot allocate the backlog of CPU {cpu} "
                                  f"({RING_MIN} packets)")
            self.sd[cpu].napi_weight = self.dev_rx_weight
            self.sd[cpu].step_cost = self.c_protocol_rx
            self.sd[cpu].step_n_max = self.rx_n_max
            # rps_ipi_list (grown when first used) and the flow-limit table (allocated
            # when first used) start empty
            if cpu in fl_cpus:
                self.sd[cpu].fl_on = 1
                self.sd[cpu].fl_log_buckets = log_b

    cdef void _setup_costs(self, config):
        """Lay out ``Config.cost_distributions`` for ``cost_draw`` (core/costs.pxi)."""
        cdef int k, i
        cdef CostDist* d
        rng_seed(self.cost_rng, config.seed ^ COST_STREAM)
        memset(self.dist, 0, sizeof(self.dist))
        caps = config.cost_caps()
        for name, dist in config.cost_distributions.items():
            k = COST_NAMES.index(name)
            mean = getattr(config.costs, name)
            if dist.kind == "constant" or mean == 0:
                continue
            d = &self.dist[k]
            d.cap = caps[name]
            d.mean = mean
            if dist.kind == "exponential":
                d.kind = DIST_EXPONENTIAL
            elif dist.kind == "lognormal":
                d.kind = DIST_LOGNORMAL
                d.sigma = dist.sigma
                d.mu = log(mean) - dist.sigma * dist.sigma / 2
            else:
                d.kind = DIST_EMPIRICAL
                d.n = len(dist.values)
                d.value = <double*>checked_calloc(d.n, sizeof(double), "a cost histogram ({})")
                d.cdf = <double*>checked_calloc(d.n, sizeof(double), "a cost histogram ({})")
                scale = mean / dist.mean
                total = 0.0
                for i in range(d.n):
                    d.value[i] = dist.values[i] * scale
                    total += dist.weights[i]
                    d.cdf[i] = total
            self.dist_mask |= (<u32>1) << k
        self.rx_drawn = (self.dist_mask >> K_PROTOCOL_RX | self.dist_mask >> K_REMOTE_SKB
                         | self.dist_mask >> K_REMOTE_SOCK) & 1
        self.rx_by_packet = self.loc_on or self.rx_drawn

    cdef void _setup_defer(self, k, c):
        cdef int cpu
        self.udp_defer_free = k.udp_skb_defer_free and self.has_sockets
        self.skb_defer_max = k.skb_defer_max
        self.c_skb_free = c.skb_free_ns
        if not self.udp_defer_free:
            return
        self.defer_list = <Ring*>checked_calloc(self.ncpus, sizeof(Ring), "the defer lists ({} CPUs)")
        self.defer_ipi_scheduled = <int*>checked_calloc(self.ncpus, sizeof(int),
                                                        "the defer lists ({} CPUs)")
        for cpu in range(self.ncpus):
            if not ring_init(&self.defer_list[cpu]):
                raise MemoryError(f"napikit: cannot allocate the defer list of CPU {cpu} "
                                  f"({RING_MIN} packets)")

    cdef void _setup_hotplug(self, requests):
        cdef int i
        what = "the hotplug requests ({})"
        self.hp_n = len(requests)
        self.hp_time = <i64*>checked_calloc(self.hp_n, sizeof(i64), what)
        self.hp_cpu = <int*>checked_calloc(self.hp_n, sizeof(int), what)
        self.hp_online = <int*>checked_calloc(self.hp_n, sizeof(int), what)
        self.hp_done = <i64*>checked_calloc(self.hp_n, sizeof(i64), what)
        self.hp_reinjected = <i64*>checked_calloc(self.hp_n, sizeof(i64), what)
        for i, h in enumerate(requests):
            self.hp_time[i] = h.time_ns
            self.hp_cpu[i] = h.cpu
            self.hp_online[i] = h.online
            self.hp_done[i] = -1

    cdef void _setup_cyclictests(self, workloads):
        cdef int i
        what = "the cyclictest state ({} tasks)"
        self.nct = len(workloads)
        self.ct_period = <i64*>checked_calloc(self.nct, sizeof(i64), what)
        self.ct_work = <i64*>checked_calloc(self.nct, sizeof(i64), what)
        self.ct_hist = <Hist*>checked_calloc(self.nct, sizeof(Hist), what)
        for i, w in enumerate(workloads):
            self.ct_period[i] = w.period_ns
            self.ct_work[i] = w.work_ns

    cdef void _setup_tasks(self, specs, bint migrating):
        cdef int i, cpu
        cdef Task* t
        self.ntasks = len(specs)
        self.tasks = <Task*>checked_calloc(self.ntasks, sizeof(Task), "the task table ({} tasks)")
        per_cpu = [0] * self.ncpus
        kthreads = [0] * self.ncpus
        movable = 0
        for spec in specs:
            per_cpu[spec[1]] += 1
            if spec[0] in (T_KSOFTIRQD, T_BACKLOG_NAPI, T_STOPPER):
                kthreads[spec[1]] += 1
            else:
                movable += 1
        # With hotplug, tasks move between CPUs: a CPU keeps its own per-CPU kthreads
        # and may come to hold every task that can move (take_cpu_down).
        per_cpu_max = max(kthreads) + movable if migrating else max(per_cpu)
        if self.ncpus * per_cpu_max > 2**31 - 1:  # an int indexes cpu_tasks
            raise MemoryError(f"napikit: cannot allocate the run queues "
                              f"({self.ncpus * per_cpu_max} entries)")
        self.max_tasks_per_cpu = per_cpu_max
        self.cpu_tasks = <int*>checked_calloc(self.ncpus * self.max_tasks_per_cpu, sizeof(int),
                                              "the run queues ({} entries)")
        self.cpu_ntasks = <int*>checked_calloc(self.ncpus, sizeof(int), "the run queues ({} CPUs)")
        for i, (kind, cpu, pol, prio, arg, nice) in enumerate(specs):
            t = &self.tasks[i]
            t.kind = kind
            t.cpu = cpu
            t.policy = pol
            t.prio = prio
            t.state = TS_SLEEPING
            if kind in (T_KSOFTIRQD, T_BACKLOG_NAPI, T_STOPPER) and not self.cpus[cpu].online:
                t.state = TS_ABSENT  # smpboot creates it when the CPU first comes up
            t.arg = arg
            t.remaining = -1
            t.pkt = -1
            t.switches = 0
            t.vruntime = UPTIME_NS if kind == T_SENDER else 0
            t.weight = _PRIO_TO_WEIGHT[nice + 20]
            t.forked = kind == T_SENDER
            self.cpu_tasks[cpu * self.max_tasks_per_cpu + self.cpu_ntasks[cpu]] = i
            self.cpu_ntasks[cpu] += 1
            if kind == T_KSOFTIRQD:
                self.ksoftirqd_task[cpu] = i
            elif kind == T_BACKLOG_NAPI:
                self.backlog_task[cpu] = i
                if t.state != TS_ABSENT:
                    # backlog_napi_setup: the NAPI is THREADED for good
                    self.sd[cpu].napi_state |= NAPIF_STATE_THREADED
            elif kind == T_STOPPER:
                self.stopper_task[cpu] = i

    cdef void _setup_sources(self, sources, socks):
        cdef int i, j
        cdef Source* src
        cdef double total
        self.nsocks = len(socks)
        self.socks = <Socket*>checked_calloc(self.nsocks, sizeof(Socket), "the sockets ({})")
        for i, (cap, receiver) in enumerate(socks):
            # the queue grows up to cap, the receive buffer in packets
            if not ring_init(&self.socks[i].queue):
                raise MemoryError(f"napikit: cannot allocate the receive queue of socket {i} "
                                  f"({RING_MIN} packets)")
            self.socks[i].cap = cap
            self.socks[i].receiver = receiver
            self.socks[i].wcpu = -1
        self.nsources = len(sources)
        self.sources = <Source*>checked_calloc(self.nsources, sizeof(Source),
                                               "the traffic sources ({})")
        for i, (kind, cpu, w, sock, flow_base, nflows) in enumerate(sources):
            src = &self.sources[i]
            src.kind = kind
            src.cpu = cpu
            src.sock = sock
            src.flow_base = flow_base
            src.nflows = nflows
            src.irq_thread = -1
            src.rps_len = len(w.rps_cpus)
            if src.rps_len:
                src.rps_map = <int*>checked_calloc(src.rps_len, sizeof(int),
                                                   "an rps_cpus map ({} CPUs)")
                for j, c in enumerate(w.rps_cpus):
                    src.rps_map[j] = c
            if kind == SRC_LOOPBACK:
                src.rate = w.rate_pps if w.rate_pps is not None else 0.0
            else:
                src.rate = w.rate_pps
                src.arrival = {"constant": ARR_CONSTANT, "poisson": ARR_POISSON,
                               "bursty": ARR_BURSTY}[w.arrival]
                src.burst = w.burst
                if w.flow_dist == "zipf":
                    src.zipf_cdf = <double*>checked_calloc(nflows, sizeof(double),
                                                           "a Zipf table ({} flows)")
                    total = 0.0
                    for j in range(nflows):
                        total += 1.0 / pow(j + 1.0, w.zipf_s)
                        src.zipf_cdf[j] = total
                    for j in range(nflows):
                        src.zipf_cdf[j] /= total
                # the device ring grows up to NIC_RING entries
                if self.forced_irqthreads and not ring_init(&src.ring):
                    raise MemoryError(f"napikit: cannot allocate the device ring of traffic "
                                      f"source {i} ({RING_MIN} packets)")
        for i in range(self.ntasks):
            if self.tasks[i].kind == T_IRQ_THREAD:
                self.sources[self.tasks[i].arg].irq_thread = i

    cdef void _setup_packets(self):
        # Every packet alive sits in a queue; freed ones are recycled, and the pool
        # doubles when all are in use (pkt_pool_grow).
        cdef int i
        self.npkts = PKT_POOL_MIN
        self.pkts = <Packet*>checked_calloc(self.npkts, sizeof(Packet),
                                            "the packet pool ({} packets)")
        for i in range(self.npkts):
            self.pkts[i].next_free = i + 1
        self.pkts[self.npkts - 1].next_free = -1
        self.free_pkt = 0
        self.pkts_in_use = 0

    cdef void _start(self):
        cdef int i
        cdef Source* src
        for i in range(self.nsources):
            src = &self.sources[i]
            if src.kind == SRC_NIC:
                if src.arrival == ARR_CONSTANT:
                    src.next_t = 1e9 / src.rate
                else:
                    src.next_t = -log(1.0 - rng_u01(self.rng)) * 1e9 * \
                        (src.burst if src.arrival == ARR_BURSTY else 1) / src.rate
                ev_push(self, <i64>src.next_t, EV_NIC, i, 0)
        for i in range(self.ntasks):
            if self.tasks[i].kind == T_SENDER:
                ev_push(self, 0, EV_TIMER, i, 0)
            elif self.tasks[i].kind == T_CYCLICTEST:
                self.tasks[i].next_send = self.ct_period[self.tasks[i].arg]
                ev_push(self, self.tasks[i].next_send, EV_TIMER, i, 0)
        for i in range(self.ncpus):
            if not self.cpus[i].online:
                self.cpus[i].offline_since = 0
        if self.hp_n:
            ev_push(self, self.hp_time[0], EV_HOTPLUG, 0, 0)
        if self.stall_timeout > 0:
            self.watchdog_pending += 1
            ev_push(self, self.stall_timeout // 2, EV_WATCHDOG, 0, 0)
        if self.sample_interval > 0:
            self.watchdog_pending += 1
            ev_push(self, self.sample_interval, EV_SAMPLE, 0, 0)

    def __dealloc__(self):
        cdef int i
        for i in range(K_COUNT):
            free(self.dist[i].value)
            free(self.dist[i].cdf)
        if self.sd != NULL:
            for i in range(self.ncpus):
                free(self.sd[i].input_pkt_queue.buf)
                free(self.sd[i].process_queue.buf)
                free(self.sd[i].rps_ipi_list)
                free(self.sd[i].fl_buckets)
                free(self.sd[i].fl_history)
        if self.sources != NULL:
            for i in range(self.nsources):
                free(self.sources[i].rps_map)
                free(self.sources[i].zipf_cdf)
                free(self.sources[i].ring.buf)
        if self.socks != NULL:
            for i in range(self.nsocks):
                free(self.socks[i].queue.buf)
        if self.defer_list != NULL:
            for i in range(self.ncpus):
                free(self.defer_list[i].buf)
        free(self.defer_list)
        free(self.defer_ipi_scheduled)
        free(self.heap)
        free(self.evs)
        free(self.ev_bk)
        free(self.cpus)
        free(self.sd)
        free(self.tasks)
        free(self.swlog)
        free(self.cpu_tasks)
        free(self.cpu_ntasks)
        free(self.ksoftirqd_task)
        free(self.backlog_task)
        free(self.stopper_task)
        free(self.hp_time)
        free(self.hp_cpu)
        free(self.hp_online)
        free(self.hp_done)
        free(self.hp_reinjected)
        free(self.ct_period)
        free(self.ct_work)
        free(self.ct_hist)
        free(self.sources)
        free(self.socks)
        free(self.pkts)
        free(self.flow_seq)
        free(self.flow_last)
        free(self.lat_enqueue)
        free(self.lat_send_recv)
        free(self.samples)
        free(self.trace)
        free(self.trace_irq_until)
        free(self.trace_backlog_len)

    # ------------------------------------------------------------ the event loop

    def run(self):
        """Run to the end: input stopped and queues drained, or the drain time over.

        Returns ``None``, or the fault (a dict) if the policy misbehaved. Raises
        ``MemoryError`` (one line) if a queue or the packet pool cannot grow, and
        ``KeyboardInterrupt`` (or what a signal handler raised) on a signal."""
        cdef Event e
        if self.ran:
            raise RuntimeError("a Sim runs once")
        self.ran = 1
        while self.nev > self.watchdog_pending and not self.failed:
            if ev_next_time(self) > self.end_time:
                break
            e = ev_pop(self)
            self.now = e.time
            if tracing(self.trace_on):
                self.trace_seq = e.seq
            self.events += 1
            if not (self.events & (SIGNAL_CHECK_EVENTS - 1)):
                PyErr_CheckSignals()  # raises what the handler raised (Ctrl-C)
            if e.kind == EV_STEP:
                step_done(self, e.a, e.b)
            elif e.kind == EV_NIC:
                nic_interrupt(self, e.a)
            elif e.kind == EV_IPI:
                if e.b == self.cpus[e.a].gen:
                    ipi_arrives(self, e.a)
            elif e.kind == EV_WAKE:
                if self.tasks[e.a].state == TS_WAKING:
                    activate(self, e.a)
            elif e.kind == EV_TIMER:
                if self.tasks[e.a].kind == T_CYCLICTEST:
                    hrtimer_interrupt(self, e.a)
                else:
                    wake_up(self, -1, e.a, 0)
            elif e.kind == EV_TICK:
                if e.b == self.cpus[e.a].gen:
                    scheduler_tick(self, e.a)
            elif e.kind == EV_RESCHED:
                if e.b == self.cpus[e.a].gen:
                    resched_event(self, e.a)
            elif e.kind == EV_HOTPLUG:
                cpu_hotplug_start(self, e.a)
            elif e.kind == EV_KICK:
                if e.b == self.cpus[e.a].gen:
                    kick_arrives(self, e.a)
            elif e.kind == EV_WAKE_IPI:
                if self.tasks[e.a].state == TS_WAKING:
                    wakelist_ipi_arrives(self, e.a, e.b)
            elif e.kind == EV_DEFER_IPI:
                defer_ipi_arrives(self, e.a, e.b)
            elif e.kind == EV_SAMPLE:
                self.watchdog_pending -= 1
                self.events -= 1   # the sampler's events are not the model's
                take_sample(self, True)
            else:
                self.watchdog_pending -= 1
                stall_watchdog(self, False)
        if self.nomem_what:
            raise MemoryError(_nomem_message(self.nomem_what, self.nomem_who, self.nomem_n))
        if self.nev > self.watchdog_pending and not self.failed:
            self.now = self.end_time
        elif not self.failed:
            stall_watchdog(self, True)
        self._settle()
        if tracing(self.trace_on) and not self.trace_snapped and self.now >= self.trace_start:
            trace_snapshot(self)
        if self.sample_interval and not self.samples_truncated and (
                self.nsamples == 0 or self.samples[(self.nsamples - 1) * (
                    SAMPLE_GLOBALS + self.ncpus * SAMPLE_PER_CPU)] < self.now):
            take_sample(self, False)   # the last interval, up to the run's end
        return self.fault

    cdef void _settle(self):
        # The run ends when every CPU has done the work it committed to: hard-IRQ time
        # charged at the last instant and steps still under way are counted in full.
        cdef int cpu
        cdef i64 until
        cdef Cpu* c
        for cpu in range(self.ncpus):
            c = &self.cpus[cpu]
            until = c.busy_until
            if c.level != L_NONE:
                if tracing(self.trace_on):
                    trace_step(self, cpu, t_add(c.step_end, c.steal), c.step_dur)
                c.acct[c.bucket] = t_add(c.acct[c.bucket], c.step_dur)
                task_charge(self, cpu, c.level, c.step_dur)
                if t_add(c.step_end, c.steal) > until:
                    until = t_add(c.step_end, c.steal)
                c.level = L_NONE
            if until > self.now:
                self.now = until

    cdef object _task_row(self, int i):
        cdef Task* t = &self.tasks[i]
        if t.kind == T_SENDER:
            name = f"udp-send/{t.arg}"
        elif t.kind == T_RECEIVER:
            name = f"udp-recv/{t.arg}"
        elif t.kind == T_KSOFTIRQD:
            name = f"ksoftirqd/{t.cpu}"
        elif t.kind == T_BACKLOG_NAPI:
            name = f"backlog_napi/{t.cpu}"
        elif t.kind == T_IRQ_THREAD:
            name = f"irq/nic{t.arg}"
        elif t.kind == T_CYCLICTEST:
            name = f"cyclictest/{t.arg}"
        else:
            name = f"migration/{t.cpu}"
        return {"name": name, "kind": TASK_KINDS[t.kind], "cpu": t.cpu,
                "state": TASK_STATES[t.state], "runtime_ns": t.runtime_ns,
                "softirq_ns": t.softirq_ns, "switches": t.switches}

    def record_trace(self, i64 start_ns, i64 end_ns, i64 max_events):
        """Before :meth:`run`: record a timeline (core/trace.pxi) of what happens in
        ``[start_ns, end_ns]``, at most ``max_events`` records; :meth:`trace_records`
        returns it. Recording changes nothing in the run."""
        cdef int i
        if not TRACE_BUILT:
            raise RuntimeError("napikit._core records no trace: napikit._core_traced does")
        if self.ran:
            raise RuntimeError("record_trace comes before run")
        if not 0 <= start_ns <= end_ns or max_events < 1:
            raise ValueError("record_trace: need 0 <= start_ns <= end_ns, max_events >= 1")
        self.trace_start = start_ns
        self.trace_end = end_ns
        self.trace_max = max_events
        self.trace_cap = min(max_events, TRACE_RECORDS_START)
        free(self.trace)
        self.trace = <TraceRec*>checked_calloc(self.trace_cap, sizeof(TraceRec),
                                               "the trace buffer ({} records)")
        if self.trace_irq_until == NULL:
            self.trace_irq_until = <i64*>checked_calloc(self.ncpus, sizeof(i64),
                                                        "the trace ({} CPUs)")
            self.trace_backlog_len = <int*>checked_calloc(self.ncpus, sizeof(int),
                                                          "the trace ({} CPUs)")
        for i in range(self.ncpus):
            self.trace_backlog_len[i] = -1
        self.trace_on = 1

    def trace_records(self):
        """The recorded timeline: ``(records, truncated)``, ``records`` the bytes of the
        C records (``struct`` format :data:`TRACE_RECORD_FORMAT`: ts, dur, id, at,
        kind, cpu, a, b; core/trace.pxi says what each kind's fields hold)."""
        return (PyBytes_FromStringAndSize(<char*>self.trace, self.trace_n * sizeof(TraceRec))
                if self.trace_n else b"", bool(self.trace_truncated))

    def task_names(self):
        """Every task's name as the kernel names its thread, in task order."""
        return [self._task_row(i)["name"] for i in range(self.ntasks)]

    def record_switches(self, i64 n):
        """Before :meth:`run`: log the first ``n`` context switches (``sched_switch``),
        for checking a scheduler class against a schedule computed by hand."""
        if self.ran:
            raise RuntimeError("record_switches comes before run")
        if n < 0:
            raise ValueError("record_switches: n must be at least 0")
        free(self.swlog)
        self.swlog = NULL
        self.swlog_n = 0
        self.swlog_cap = 0
        if n:
            self.swlog = <i64*>checked_calloc(n * SWITCH_LOG_WIDTH, sizeof(i64),
                                              "the switch log ({} entries)")
            self.swlog_cap = n

    def switch_log(self):
        """The switches logged (:meth:`record_switches`), each a dict of
        :data:`SWITCH_LOG_FIELDS`: task indices (-1: idle), times and vruntimes in ns,
        ``prev_state`` a :data:`TASK_STATES` index (-1: idle); task ``i`` is row ``i`` of
        ``raw_results()["tasks"]``."""
        cdef i64 i, j
        return [{SWITCH_LOG_FIELDS[j]: self.swlog[i * SWITCH_LOG_WIDTH + j]
                 for j in range(SWITCH_LOG_WIDTH)} for i in range(self.swlog_n)]

    def raw_results(self):
        """Counters, per-CPU rows and histograms as plain Python values."""
        cdef int cpu, i, b
        cdef i64 queued = 0, busy
        cdef Softnet* sd
        for cpu in range(self.ncpus):
            queued += ring_len(&self.sd[cpu].input_pkt_queue) + ring_len(&self.sd[cpu].process_queue)
        for i in range(self.nsocks):
            queued += ring_len(&self.socks[i].queue)
        for i in range(self.nsources):
            if self.sources[i].irq_thread >= 0:
                queued += ring_len(&self.sources[i].ring)
        for i in range(self.ntasks):
            if self.tasks[i].kind == T_SENDER and self.tasks[i].pkt >= 0:
                queued += 1
        softnet = []
        cpu_time = []
        unpolled = 0
        for cpu in range(self.ncpus):
            sd = &self.sd[cpu]
            softnet.append({
                "cpu": cpu, "online": bool(self.cpus[cpu].online), "processed": sd.processed, "dropped": sd.dropped,
                "time_squeeze": sd.time_squeeze, "received_rps": sd.received_rps,
                "flow_limit_count": sd.flow_limit_count,
                "input_qlen": ring_len(&sd.input_pkt_queue),
                "process_qlen": ring_len(&sd.process_queue),
            })
            # an offline CPU's backlog may keep SCHED_THREADED for its return (B.5.4)
            if self.cpus[cpu].online and (
                    sd.napi_state & (NAPIF_STATE_SCHED | NAPIF_STATE_SCHED_THREADED) or
                    ring_len(&sd.input_pkt_queue) or ring_len(&sd.process_queue)):
                unpolled += 1
            busy = 0
            row = {}
            for b, name in enumerate(BUCKET_NAMES):
                row[name] = self.cpus[cpu].acct[b]
                busy += self.cpus[cpu].acct[b]
            off = self.cpus[cpu].offline_ns
            if not self.cpus[cpu].online:
                off += self.now - self.cpus[cpu].offline_since
            row["offline"] = off
            row["idle"] = max(0, self.now - busy - off)
            cpu_time.append(row)
        return {
            "sim_time_ns": self.now,
            "input_duration_ns": self.input_stop if not self.input_open else self.now,
            "quiescent": self.nev == self.watchdog_pending,
            "events": self.events,
            "arrived": self.arrived,
            "delivered": self.delivered,
            "delivered_in_window": self.delivered_in_window,
            "queued": queued,
            "packets_in_use": self.pkts_in_use,
            "drops": {"backlog": self.drop_backlog, "flow_limit": self.drop_flow_limit,
                      "socket": self.drop_socket, "nic_ring": self.drop_nic_ring},
            "softnet": softnet,
            "cpu_time": cpu_time,
            "latency_enqueue": hist_summary(self.lat_enqueue),
            "latency_send_recv": hist_summary(self.lat_send_recv),
            "cyclictest_latency": [hist_summary(&self.ct_hist[i]) for i in range(self.nct)],
            "tasks": [self._task_row(i) for i in range(self.ntasks)],
            "hotplug": [
                {"cpu": self.hp_cpu[i], "online": bool(self.hp_online[i]),
                 "requested_ns": self.hp_time[i],
                 "done_ns": self.hp_done[i] if self.hp_done[i] >= 0 else None,
                 "reinjected": self.hp_reinjected[i]}
                for i in range(self.hp_n)
            ],
            "reinjected": self.reinjected,
            "ipis": self.ipis,
            "polled_kicks": self.polled_kicks,
            "wakeup_ipis": self.wakeup_ipis,
            "coalesced_csds": self.coalesced_csds,
            "defer_ipis": self.defer_ipis,
            "defer_pending": defer_queued(self),
            "thread_kicks": self.thread_kicks,
            "backlog_thread_wakeups": self.backlog_thread_wakeups,
            "ksoftirqd_wakeups": self.ksoftirqd_wakeups,
            "context_switches": self.context_switches,
            "involuntary_switches": self.involuntary_switches,
            "rt_idle_softirq_warnings": self.rt_idle_softirq_warnings,
            "lost_kicks": self.lost_kicks,
            "reordered": self.reordered,
            "wrong_cpu": self.wrong_cpu,
            "unpolled_backlogs": unpolled if self.nev == self.watchdog_pending else 0,
            "samples": self._samples(),
            "histograms": {
                "enqueue": hist_buckets(self.lat_enqueue),
                "send_recv": hist_buckets(self.lat_send_recv),
                **{f"cyclictest/{i}": hist_buckets(&self.ct_hist[i]) for i in range(self.nct)},
            },
        }

    cdef object _samples(self):
        """The time series as columns of cumulative counters, or None."""
        cdef int w = SAMPLE_GLOBALS + self.ncpus * SAMPLE_PER_CPU
        cdef int cpu, b
        if self.sample_interval == 0:
            return None
        # one copy, then rows to columns at C speed (a row is a CPU's worth of values)
        data = PyBytes_FromStringAndSize(<char*>self.samples,
                                         self.nsamples * w * sizeof(i64))
        columns = list(zip(*memoryview(data).cast("q", (self.nsamples, w)).tolist())) \
            if self.nsamples else [()] * w
        col = lambda k: list(columns[k])
        out = {name: col(k) for k, name in enumerate(SAMPLE_COLUMNS)}
        out["interval_ns"] = self.sample_interval
        out["truncated"] = bool(self.samples_truncated)
        out["cpus"] = []
        for cpu in range(self.ncpus):
            base = SAMPLE_GLOBALS + cpu * SAMPLE_PER_CPU
            per = {"backlog_len": col(base)}
            for b, name in enumerate(BUCKET_NAMES):
                per[name] = col(base + 1 + b)
            out["cpus"].append(per)
        return out


cdef void ipi_arrives(Sim s, int cpu) noexcept:
    """EV_IPI: the csd runs ``rps_trigger_softirq`` in hard-IRQ, then ``irq_exit``. A
    CPU idling in a polling state takes no interrupt: ``flush_smp_call_function_queue``
    runs it from ``do_idle``, followed by ``do_softirq`` (non-RT) or, with forced-threaded
    IRQs, ``do_softirq_post_smp_call_flush``, which warns and wakes ksoftirqd."""
    cdef Cpu* c = &s.cpus[cpu]
    if not c.online:
        return
    rps_trigger_softirq(s, cpu)
    csd_flush(s, cpu)
    if s.idle_poll and c.curr < 0 and c.level == L_NONE and not c.softirq_active:
        cpu_charge(s, cpu, cost_of(s, K_IPI_HANDLER, s.c_ipi_handler), B_SOFTIRQ, TW_IPI_RPS)
        if s.forced_irqthreads:
            s.rt_idle_softirq_warnings += 1
            wakeup_softirqd(s, cpu, B_SOFTIRQ)
        else:
            softirq_start(s, cpu, -1)
        return
    irq_exit(s, cpu, cost_of(s, K_IPI_HANDLER, s.c_ipi_handler), TW_IPI_RPS)


cdef void kick_arrives(Sim s, int cpu) noexcept:
    """EV_KICK: a CPU idling in a polling state sees the csd an RPS kick queued
    (``set_nr_if_polling`` set TIF_NEED_RESCHED instead of sending an IPI): ``do_idle``
    runs ``flush_smp_call_function_queue`` -> ``rps_trigger_softirq`` with no hard-IRQ
    entry or exit, then ``do_softirq`` (non-RT) or, with forced-threaded IRQs,
    ``do_softirq_post_smp_call_flush``, which warns and wakes ksoftirqd. A CPU that
    has left its idle loop meanwhile (an interrupt, a wake-up) takes it as an IPI."""
    cdef Cpu* c = &s.cpus[cpu]
    if not c.online:
        return
    if cpu_idle_state(s, cpu) == CPU_BUSY:
        ipi_arrives(s, cpu)
        return
    rps_trigger_softirq(s, cpu)
    if s.forced_irqthreads:
        s.rt_idle_softirq_warnings += 1
        wakeup_softirqd(s, cpu, B_SOFTIRQ)
    else:
        softirq_start(s, cpu, -1)


cdef void stall_watchdog(Sim s, bint final) noexcept:
    """The stall watchdog (after the kernel's soft-lockup detector and sched_ext's stall
    check): a backlog scheduled and not polled for ``stall_timeout_ns`` ends the run
    with a report. At the end of a drained run (``final``) nothing can poll a backlog
    any more, so one still scheduled is a stall whatever its age."""
    cdef int cpu
    cdef i64 since
    cdef Softnet* sd
    if s.stall_timeout <= 0:
        return
    for cpu in range(s.ncpus):
        sd = &s.sd[cpu]
        if not (sd.napi_state & NAPIF_STATE_SCHED) or not s.cpus[cpu].online:
            continue
        since = sd.sched_at if sd.sched_at > sd.polled_at else sd.polled_at
        if final or s.now - since > s.stall_timeout:
            s.failed = 1
            s.fault = {"kind": "stall", "hook": "napikit_backlog_schedule", "cpu": cpu,
                       "time_ns": s.now, "since_ns": since, "sched_by": sd.sched_by,
                       "action": sd.sched_action, "final": bool(final),
                       "queued": ring_len(&sd.input_pkt_queue) + ring_len(&sd.process_queue)}
            return
    if not final:
        s.watchdog_pending += 1
        ev_push(s, s.now + s.stall_timeout // 2, EV_WATCHDOG, 0, 0)


cdef void out_of_memory(Sim s, int what, int who, i64 n) noexcept:
    """A queue, the packet pool or the event queue could not grow to ``n``: stop the
    run; :meth:`Sim.run` raises ``MemoryError`` naming the first such failure."""
    if not s.nomem_what:
        s.nomem_what = what
        s.nomem_who = who
        s.nomem_n = n
    s.failed = 1


cdef void policy_fault(Sim s, str hook, int cpu, object message) noexcept:
    """A decision was invalid or raised: stop the run and keep what happened."""
    if s.failed:
        return
    s.failed = 1
    s.fault = {"kind": "decision", "hook": hook, "cpu": cpu, "time_ns": s.now, "message": message,
               "error": s.policy.error}


def event_queue_order(ops):
    """Run ``ops`` through the event queue of a bare Sim: an int ``t`` (0 to T_NEVER)
    pushes an event at ``t``, ``None`` pops the earliest. Returns the popped
    ``(time, seq)`` pairs, then those left, popped in turn. For tests of the queue's
    order against a reference; not used by runs."""
    cdef Sim s = Sim.__new__(Sim)
    cdef Event e
    if not ev_init(s):
        raise MemoryError("napikit: cannot allocate the event queue")
    out = []
    for t in ops:
        if t is None:
            if s.nev:
                e = ev_pop(s)
                out.append((e.time, e.seq))
        elif not 0 <= t <= T_NEVER:
            raise ValueError(f"event time {t}: must be from 0 to T_NEVER")
        else:
            ev_push(s, t, EV_STEP, 0, 0)
    while s.nev:
        e = ev_pop(s)
        out.append((e.time, e.seq))
    return out


def hist_bucket(values):
    """The histogram bucket (:func:`hist_index`) of each i64 of ``values``. For tests
    of the bucket edges; not used by runs."""
    return [hist_index(v) for v in values]


def histogram_summary(values):
    """The summary a run reports for a latency histogram holding ``values`` (ns, each
    from 0 to 2**62): count, mean and percentiles as :func:`hist_summary` makes them.
    For tests of the bucket edges; not used by runs."""
    cdef Hist* h = <Hist*>checked_calloc(1, sizeof(Hist), "a histogram")
    try:
        for v in values:
            if not 0 <= v <= (1 << 62):
                raise ValueError(f"histogram value {v}: must be from 0 to 2**62")
            hist_add(h, v)
        return hist_summary(h)
    finally:
        free(h)


include "core/events.pxi"
include "core/rng.pxi"
include "core/costs.pxi"
include "core/metrics.pxi"
include "core/softnet.pxi"
include "core/rps.pxi"
include "core/softirq.pxi"
include "core/sched.pxi"
include "core/fair.pxi"
include "core/eevdf.pxi"
include "core/cfs.pxi"
include "core/workloads.pxi"
include "core/hotplug.pxi"
include "core/skbfree.pxi"
include "core/samples.pxi"
include "core/trace.pxi"
