# Shared definitions of the core: C records, constants, the Sim state.
# Every record is a plain C struct in an array owned by Sim: no Python object exists
# per packet, per task or per event.

from libc.stdlib cimport malloc, calloc, realloc, free
from libc.string cimport memset, memcpy
from libc.math cimport log, pow

ctypedef long long i64
ctypedef unsigned long long u64
ctypedef unsigned int u32

# ---------------------------------------------------------------- the clock
# Times are i64 ns. The configuration keeps every time the run can reach within
# 2**62 (HORIZON_NS): no event after end_time <= 2**62 is ever handled. Sums that can
# grow past it (a CPU's hard-IRQ backlog, a step of 2**31 packets) saturate at
# T_NEVER, later than any end_time, so a saturated step simply never ends.
cdef extern from *:
    """
    #define NAPIKIT_T_NEVER ((long long)((1ULL << 62) + (1ULL << 40)))
    """
    const i64 T_NEVER "NAPIKIT_T_NEVER"


cdef inline i64 t_add(i64 a, i64 b) noexcept nogil:
    """``a + b`` for ``0 <= a, b <= T_NEVER``, saturated at ``T_NEVER`` (added as u64:
    two such values cannot wrap there)."""
    cdef u64 r = <u64>a + <u64>b
    return <i64>r if r < <u64>T_NEVER else T_NEVER

# ---------------------------------------------------------------- NAPI state bits
# include/linux/netdevice.h enum order; the backlog uses these three.
cdef enum:
    NAPIF_STATE_SCHED = 1 << 0
    NAPIF_STATE_THREADED = 1 << 8
    NAPIF_STATE_SCHED_THREADED = 1 << 9

# softirq vectors (kernel/softirq.c order); only NET_RX carries work in the model.
cdef enum:
    NET_RX_SOFTIRQ = 1 << 3

# ---------------------------------------------------------------- CPU time buckets
cdef enum:
    B_HARDIRQ = 0
    B_SOFTIRQ = 1
    B_KSOFTIRQD = 2
    B_BACKLOG_THREAD = 3
    B_IRQ_THREAD = 4
    B_APPLICATION = 5
    B_SCHED = 6
    B_CPUHP = 7       # CPU hotplug work on a surviving CPU (dev_cpu_dead)
    N_BUCKETS = 8

# ---------------------------------------------------------------- events
cdef enum:
    EV_STEP = 0       # the step a CPU is executing ends
    EV_NIC = 1        # a device interrupt fires (a: source)
    EV_IPI = 2        # an RPS IPI reaches its target (a: cpu)
    EV_WAKE = 3       # a remote wake-up lands (a: task)
    EV_TIMER = 4      # a rate-limited sender's hrtimer fires (a: task)
    EV_TICK = 5       # scheduler tick (a: cpu)
    EV_RESCHED = 6    # a CPU acts on need_resched (a: cpu)
    EV_WATCHDOG = 7   # the stall watchdog looks at every backlog
    EV_HOTPLUG = 8    # the next CPU hotplug request is due
    EV_KICK = 9       # an RPS csd queued to a polling idle CPU is seen (a: cpu)
    EV_WAKE_IPI = 10  # the IPI of a wake-up queued on an idle CPU's wakelist (a: task)

cdef struct Event:
    i64 time
    i64 seq
    int kind
    int a
    int b
    int next          # the queue's link (core/events.pxi): the next event of its bucket,
                      # or the next free slot

cdef struct EvBucket:
    i64 time          # the time of its first event; EV_EMPTY when it holds none
    int head          # its first event (a slot of Sim.evs); -1: none

# ---------------------------------------------------------------- trace records
# core/trace.pxi says what each kind's fields hold.
cdef enum:
    TR_STEP = 0
    TR_CHARGE = 1
    TR_IPI = 2
    TR_WAKE = 3
    TR_STATE = 4
    TR_SWITCH = 5
    TR_BACKLOG = 6

# What out-of-line CPU time (cpu_charge) and an interrupt (irq_exit) are for: the
# trace's slice names (napikit.trace.WHAT).
cdef enum:
    TW_OTHER = 0
    TW_NIC_IRQ = 1
    TW_HRTIMER_IRQ = 2
    TW_TICK = 3
    TW_IPI_RPS = 4        # the handler of an RPS IPI (rps_trigger_softirq)
    TW_IPI_WAKE = 5       # ... of a wakelist IPI (sched_ttwu_pending)
    TW_IPI_DEFER = 6      # ... of a deferred-free IPI (trigger_rx_softirq)
    TW_IPI_SEND = 7       # the sender's cost of an IPI
    TW_CSD_QUEUE = 8      # a csd queued with no interrupt (a polling target, or riding)
    TW_WAKEUP = 9         # try_to_wake_up on the waker
    TW_NETIF_RX = 10
    TW_SKB_FREE = 11
    TW_HOTPLUG = 12

cdef enum:
    TRACE_RECORDS_START = 4096   # the buffer starts with room for this many; doubles

cdef struct TraceRec:
    i64 ts
    i64 dur
    i64 id
    i64 at            # when it was recorded (s.now)
    int kind
    int cpu
    int a
    int b

# ---------------------------------------------------------------- packets and queues
cdef struct Packet:
    i64 t_sent        # sendmsg start (loopback) or arrival at the NIC
    i64 t_enq         # netif_rx
    i64 t_done        # protocol receive done (set when a hard IRQ interrupts its step)
    int flow
    int seq
    int target        # CPU whose backlog holds it
    int src           # the source that made it (its RPS map, for re-injection)
    int sock          # receiving socket, -1 for NIC traffic (done at protocol receive)
    int wcpu          # CPU that last wrote the skb: netif_rx's caller (the sender at
                      # udp_sendmsg, the interrupted CPU of a NIC), then protocol receive
    int next_free

cdef struct Ring:     # FIFO of packet indices (sk_buff_head); grows when full
    int* buf
    u32 mask          # capacity - 1 (a power of two minus one), at most RING_MASK_MAX
    u32 head
    u32 tail

cdef enum:
    RING_MIN = 16             # slots a ring starts with
    RING_MASK_MAX = 0x7fffffff  # 2**31 slots: more than the packet pool can hold
    PKT_POOL_MIN = 1024       # packets the pool starts with
    PKT_POOL_MAX = 0x7fffffff # packet indices are int

# What an allocation that failed was for (Sim.nomem_what).
cdef enum:
    NOMEM_PACKETS = 1
    NOMEM_EVENTS = 2
    NOMEM_BACKLOG = 3
    NOMEM_SOCKET = 4
    NOMEM_NIC_RING = 5
    NOMEM_RPS_IPI = 6
    NOMEM_FLOW_LIMIT = 7

# ---------------------------------------------------------------- tasks
cdef enum:
    T_SENDER = 0
    T_RECEIVER = 1
    T_KSOFTIRQD = 2
    T_BACKLOG_NAPI = 3
    T_IRQ_THREAD = 4
    T_CYCLICTEST = 5
    T_STOPPER = 6     # the CPU's stopper thread, migration/N (stop_machine)

cdef enum:
    TS_RUNNING = 0    # current on its CPU
    TS_RUNNABLE = 1   # on the run queue
    TS_SLEEPING = 2
    TS_WAKING = 3     # remote wake-up in flight
    TS_DEAD = 4
    TS_PARKED = 5     # a per-CPU kthread parked while its CPU is (going) offline
    TS_ABSENT = 6     # a per-CPU kthread of a CPU that has never been online

cdef enum:
    SCHED_NORMAL = 0
    SCHED_FIFO = 1

cdef struct Task:
    int kind
    int cpu
    int policy        # SCHED_NORMAL / SCHED_FIFO
    int prio          # SCHED_FIFO priority
    int state
    int pc            # where its state machine resumes
    int bh            # inside local_bh_disable (not preemptible on !RT)
    int sirq_resume   # preempted inside handle_softirqs (PREEMPT_RT): resume its frame
    int arg           # socket (sender/receiver) or source (irq thread)
    i64 vruntime
    i64 weight        # load.weight, scaled down: sched_prio_to_weight[nice + 20]
    i64 deadline      # EEVDF virtual deadline (update_deadline, place_entity)
    i64 vlag          # EEVDF lag kept while it sleeps (update_entity_lag)
    i64 picked_deadline  # deadline when it was last picked (RUN_TO_PARITY; the
                         # kernel stashes it in vlag while the task runs)
    int forked        # its next enqueue is its first (wake_up_new_task, ENQUEUE_INITIAL)
    int delayed       # asleep but still on its CPU's fair queue (se->sched_delayed,
                      # DELAY_DEQUEUE): counted there and in nr_running, never run
    i64 exec_start
    i64 slice_start
    i64 remaining     # rest of a step interrupted by preemption, or -1
    int rem_bucket
    int pkt           # packet in hand (sender), batch size (irq thread), woken in its
                      # blocking path (receiver, RCV_BLOCK: 0 no, 1 yes)
    int poll_work     # process_backlog progress when polling from this task
    int seg_n         # packets of the segment being processed
    int rem_seg       # ``remaining`` is the rest of a poll step of that many packets
    i64 next_send     # rate-limited sender: time of its next sendmsg; cyclictest: expiry
    i64 runtime_ns    # its own steps
    i64 softirq_ns    # softirq steps run while it was current (irq_exit, its bh_enable)
    i64 switches      # times switched out, blocking or preempted (nvcsw + nivcsw)

# ---------------------------------------------------------------- per-CPU state
# cpuidle: the state an idle CPU waits in (KernelParams.cpuidle), and what a kick finds
cdef enum:
    IDLE_HALT = 0
    IDLE_POLL = 1
    IDLE_HALTPOLL = 2

cdef enum:
    CPU_BUSY = 0      # not idle: a kick to it is an interrupt taken at once
    CPU_POLLING = 1   # idle with TIF_POLLING_NRFLAG: a kick needs no interrupt
    CPU_HALTED = 2    # idle and halted: an interrupt, after the exit latency

cdef enum:
    L_NONE = 0
    L_TASK = 1
    L_SOFTIRQ = 2
    L_SWITCH = 3

cdef struct Softnet:          # struct softnet_data
    Ring input_pkt_queue
    Ring process_queue
    int napi_state            # backlog.state
    int napi_weight           # backlog.weight
    int on_poll_list          # backlog on this CPU's poll_list (the only NAPI it can hold)
    int in_net_rx_action
    int in_napi_threaded_poll
    int* rps_ipi_list         # CPUs awaiting an IPI from this one (LIFO); grows
    int rps_ipi_n
    int rps_ipi_cap
    i64 processed
    i64 dropped
    i64 time_squeeze
    i64 received_rps
    i64 flow_limit_count
    i64 input_queue_head
    i64 input_queue_tail
    int batch                 # packets processed since the backlog was last scheduled
    int last_batch            # ... in its previous scheduled period (policy load signal)
    i64 sched_at              # when SCHED was last set (stall watchdog)
    i64 polled_at             # when process_backlog last began
    int sched_by              # CPU whose decision scheduled it
    int sched_action          # and what that decision was
    int fl_on                 # this CPU has a flow-limit table (flow_limit_cpu_bitmap)
    int* fl_history           # skb_flow_limit: FLOW_LIMIT_HISTORY ring
    int fl_head
    int* fl_buckets           # the table, allocated when first used (NULL until then)
    int fl_log_buckets
    i64 step_cost             # protocol_rx per packet of the poll step being run (with
                              # its location costs, B.10.6), the same for its packets
    int step_n_max            # most packets whose step_cost sum is below T_NEVER

cdef struct Cpu:
    int online
    int gen                   # hotplug generation: events of an earlier life are stale
    int going_down            # a hotplug request is taking it offline
    int stopper_waiting       # the stopper waits for tasks to leave BH sections
    int bh_cnt                # tasks on this CPU inside a BH section (softirq_ctrl.cnt)
    i64 offline_since
    i64 offline_ns
    int curr                  # running task, -1 = idle
    int pending               # softirq pending mask
    int need_resched
    int nr_running            # runnable tasks incl. curr
    i64 min_vruntime
    # the step being executed
    int level                 # L_NONE / L_TASK / L_SOFTIRQ / L_SWITCH
    int token
    int bucket
    i64 step_start
    i64 step_dur
    i64 step_end
    i64 steal                 # hard-IRQ time taken out of the running step, not yet
                              # added to step_end
    i64 stolen                # all hard-IRQ time taken out of the running step
    int step_seg              # the running step polls that many packets (0: not a poll)
    int seg_done              # ... of which the first are done and time-stamped
    i64 seg_end               # when the last poll step ended (the rest are done by then)
    i64 busy_until            # hard-IRQ time on a CPU that ran no step
    i64 idle_since            # when its last step ended (with busy_until: idle since)
    i64 idle_entry_drawn      # idle_entry_ns of this idle period, when it is drawn
    int irq_deferred          # an interrupt's irq_exit waits for IRQs to be enabled
    # handle_softirqs frame
    int softirq_active
    int softirq_host_task     # task that called it (bh_enable, ksoftirqd) or -1 (irq_exit)
    int sirq_pc
    int sirq_restart
    i64 sirq_end_jiffies
    # net_rx_action frame
    int nra_budget
    i64 nra_time_limit
    int nra_list
    int nra_repoll
    int nra_work
    int nra_quota
    int seg_n
    int tick_pending
    int resched_pending
    # call_single_queue (kernel/smp.c): an IPI is in flight to it; csds queued before it
    # lands ride on it (__smp_call_single_queue sends one only to an empty queue)
    int csd_pending
    i64 csd_at                # when that IPI lands
    int csd_rps               # RPS csds riding on it
    i64 acct[N_BUCKETS]

# ---------------------------------------------------------------- traffic sources
cdef enum:
    SRC_NIC = 0
    SRC_LOOPBACK = 1

cdef enum:
    ARR_CONSTANT = 0
    ARR_POISSON = 1
    ARR_BURSTY = 2

cdef struct Source:
    int kind
    int cpu                   # NIC: interrupted CPU
    double rate
    double next_t
    int arrival
    int burst
    int flow_base
    int nflows
    double* zipf_cdf          # NULL: uniform
    int* rps_map              # rps_cpus of the receive queue (NULL: RPS off)
    int rps_len
    int sock                  # loopback: the socket it sends to
    int irq_thread            # forced-threaded handler's task, -1 inline
    Ring ring                 # packets waiting for the IRQ thread
    int rr                    # loopback: next flow (round robin)

cdef struct Socket:
    Ring queue
    int cap
    int receiver              # task draining it
    int wcpu                  # CPU that last touched its receive queue and accounting
                              # (__udp_enqueue_schedule_skb, udp_recvmsg); -1: none yet

# latency histogram: log-linear, 64 sub-buckets per power of two (~1.6 % resolution)
cdef enum:
    HIST_SUB = 64
    HIST_N = 64 * 42

cdef struct Hist:
    i64 counts[HIST_N]
    i64 n
    u64 sum_lo        # the sum of all values, 128 bits wide: it cannot wrap
    i64 sum_hi
    i64 max

# ---------------------------------------------------------------- drawn costs
# Config.cost_distributions, core/costs.pxi: one slot per CostModel field that the core
# charges per operation, in CostModel's order (COST_NAMES in _core.pyx).
cdef enum:
    K_NETIF_RX = 0
    K_NIC_IRQ
    K_PROTOCOL_RX
    K_UDP_SENDMSG
    K_UDP_RECVMSG
    K_IPI_SEND
    K_IPI_LATENCY
    K_IPI_HANDLER
    K_CONTEXT_SWITCH
    K_WAKEUP
    K_WAKEUP_LATENCY
    K_SOFTIRQ_ENTRY
    K_HRTIMER_IRQ
    K_REMOTE_SKB
    K_REMOTE_SOCK
    K_RECV_BLOCK
    K_IDLE_ENTRY
    K_IDLE_EXIT_POLL
    K_SKB_FREE
    K_COUNT

cdef enum:
    DIST_CONSTANT = 0
    DIST_EXPONENTIAL = 1
    DIST_LOGNORMAL = 2
    DIST_EMPIRICAL = 3

cdef struct CostDist:
    int kind
    double mean               # exponential: the mean (ns)
    double mu, sigma          # lognormal: of the cost's logarithm
    int n                     # empirical: n values (already scaled to the mean) ...
    double* value
    double* cdf               # ... and their cumulative weights (cdf[n-1] = total)
    i64 cap                   # a draw is truncated here
