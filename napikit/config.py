"""Configuration of a run: frozen attrs value objects, validated on construction.

Everything a result depends on lives here, so a result's ``config`` (see
:meth:`Config.to_dict`) is enough to rerun it. Defaults are the kernel's
(``docs/kernel-model.md`` B.8); costs are the documented starting points of
A.5 and B.9. Every invalid value raises :class:`~napikit.errors.ConfigError` naming the
field and the values allowed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import attrs
from attrs import field, frozen

from napikit.errors import ConfigError

# --------------------------------------------------------------------- validators


# Upper bounds. Each is the kernel's own limit where it has one, else the widest value
# the core's C types carry with room to add (docs/kernel-model.md, "Bounds").
INT_MAX = 2**31 - 1          # a C int: sysctls declared int in the kernel, ring sizes
U64_MAX = 2**64 - 1          # the seed feeds a 64-bit xoshiro state
NR_CPUS_MAX = 8192           # CONFIG_NR_CPUS on x86_64 with MAXSMP
HZ_MAX = 10_000              # a tick of at least 100 us (Kconfig offers 100 to 1000)
COST_MAX_NS = 10**10         # 10 s for one step of the path
FLOWS_MAX = 2**24            # per-flow state is an array in the core
RATE_MAX_PPS = 10**9         # one packet per simulated nanosecond
NIC_BURST_MAX = 4096         # the NIC ring ahead of a forced-threaded handler
FLOW_LIMIT_TABLE_MAX = 2**20  # buckets of one CPU's sd_flow_limit
SCHED_TUNABLE_MAX_NS = 10**9  # max_sched_granularity_ns (kernel/sched/fair.c, pre-EEVDF)
#: The simulated clock is a signed 64-bit count of ns; every time the run can reach
#: (input, drain, hotplug, timeouts) stays below this, so no sum can wrap.
HORIZON_NS = 2**62
TIME_MAX_NS = 2**61


def _bound(n: int) -> str:
    """``2**64 - 1`` rather than twenty digits; small bounds as they are."""
    if n >= 2**20:
        for k in (n.bit_length() - 1, n.bit_length()):
            if n in (2**k, 2**k - 1):
                return f"2**{k}" + (" - 1" if n == 2**k - 1 else "")
    return str(n)


def _int_in(lo: int, hi: int):
    def check(inst: object, attr: attrs.Attribute, value: object) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            raise ConfigError(
                _name(inst, attr), f"an integer from {_bound(lo)} to {_bound(hi)}", value
            )

    return check


def _number_in(lo: float, hi: float):
    def check(inst: object, attr: attrs.Attribute, value: object) -> None:
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not lo <= value <= hi  # also false for NaN
        ):
            raise ConfigError(_name(inst, attr), f"a number from {lo:g} to {hi:g}", value)

    return check


def _optional(check):
    def inner(inst: object, attr: attrs.Attribute, value: object) -> None:
        if value is not None:
            check(inst, attr, value)

    return inner


def _is_bool(inst: object, attr: attrs.Attribute, value: object) -> None:
    if not isinstance(value, bool):
        raise ConfigError(_name(inst, attr), "true or false", value)


def _one_of(*choices: str):
    def check(inst: object, attr: attrs.Attribute, value: object) -> None:
        if value not in choices:
            raise ConfigError(_name(inst, attr), "one of " + ", ".join(choices), value)

    return check


def _cpu_list(inst: object, attr: attrs.Attribute, value: object) -> None:
    if not isinstance(value, tuple) or not all(
        isinstance(c, int) and not isinstance(c, bool) and 0 <= c < NR_CPUS_MAX for c in value
    ):
        raise ConfigError(
            _name(inst, attr), f"a list of CPU numbers from 0 to {NR_CPUS_MAX - 1}", value
        )
    if len(set(value)) != len(value):
        raise ConfigError(_name(inst, attr), "a list of distinct CPU numbers", value)


def _to_tuple(value: Any) -> Any:
    # A range is converted only when it is small enough to be a valid list at all,
    # so range(10**9) fails validation at once instead of filling memory first.
    if isinstance(value, range) and len(value) > NR_CPUS_MAX:
        return value
    return tuple(value) if isinstance(value, (list, tuple, range)) else value


def _name(inst: object, attr: attrs.Attribute) -> str:
    return f"{_SECTION.get(type(inst).__name__, '')}{attr.name}"


_SECTION = {
    "KernelParams": "kernel.",
    "CostModel": "costs.",
    "LoopbackUdp": "loopback_udp.",
    "NicIrq": "nic_irq.",
    "Cyclictest": "cyclictest.",
    "CpuHotplug": "hotplug.",
    "Config": "",
}

# --------------------------------------------------------------------- kernel


@frozen
class KernelParams:
    """The sysctls and boot options of the simulated kernel; defaults are Linux's.

    ``netdev_budget_usecs`` left at ``None`` means the kernel default ``2 * 10**6 / HZ``
    (``net/core/hotdata.c``); see :attr:`budget_usecs`.
    """

    hz: int = field(default=1000, validator=_int_in(1, HZ_MAX))
    netdev_max_backlog: int = field(default=1000, validator=_int_in(1, INT_MAX))
    dev_weight: int = field(default=64, validator=_int_in(1, INT_MAX))
    dev_weight_rx_bias: int = field(default=1, validator=_int_in(1, INT_MAX))
    netdev_budget: int = field(default=300, validator=_int_in(1, INT_MAX))
    netdev_budget_usecs: int | None = field(
        default=None, validator=_optional(_int_in(1, INT_MAX))
    )
    #: CPUs with a flow-limit table (``net.core.flow_limit_cpu_bitmap``), empty = off.
    flow_limit_cpu_bitmap: tuple[int, ...] = field(
        default=(), converter=_to_tuple, validator=_cpu_list
    )
    flow_limit_table_len: int = field(default=4096, validator=_int_in(1, FLOW_LIMIT_TABLE_MAX))
    #: ``threadirqs`` boot option: device IRQs run in SCHED_FIFO 50 threads and a
    #: softirq raised in hard-IRQ context wakes ksoftirqd (``invoke_softirq``).
    force_irqthreads: bool = field(default=False, validator=_is_bool)
    #: The target idles in a polling state, so a csd needs no interrupt
    #: (``call_function_single_prep_ipi`` / ``set_nr_if_polling``).
    idle_poll: bool = field(default=False, validator=_is_bool)
    #: csd coalescing on ``call_single_queue`` (kernel-model.md B.10.1):
    #: ``__smp_call_single_queue`` sends an IPI only when its ``llist_add`` makes the
    #: target's queue non-empty, so an RPS kick or a ``ttwu_queue_wakelist`` wake-up
    #: queued while an IPI to that CPU is in flight rides on it (no IPI; the raw
    #: ``coalesced_csds`` counter). Off by default: ``Result.ipis`` then counts every RPS
    #: csd, as ``received_rps`` does; on, it counts interrupts (the CAL row).
    csd_coalescing: bool = field(default=False, validator=_is_bool)
    #: The cpuidle state an idle CPU waits in (kernel-model.md B.10.2): ``"halt"``, a
    #: C-state left only by an interrupt (bare metal's default); ``"poll"``, the POLL
    #: state (``idle=poll``), with TIF_POLLING_NRFLAG set, so an RPS kick or a remote
    #: wake-up to it sends no interrupt (``set_nr_if_polling``); ``"haltpoll"``, KVM
    #: guests' haltpoll: it polls for ``haltpoll_ns``, then halts.
    cpuidle: str = field(default="halt", validator=_one_of("halt", "poll", "haltpoll"))
    #: Exit latency of the halted state: the time from an interrupt (an RPS IPI, a
    #: remote wake-up) to a halted CPU until it runs the handler (a C-state's exit, a
    #: VM entry in a guest). 0: a halted CPU wakes at once.
    idle_exit_latency_ns: int = field(default=0, validator=_int_in(0, COST_MAX_NS))
    #: haltpoll's ``guest_halt_poll_ns``: how long an idle CPU polls before it halts.
    haltpoll_ns: int = field(default=200_000, validator=_int_in(0, COST_MAX_NS))
    #: ``MAX_SOFTIRQ_RESTART`` and ``MAX_SOFTIRQ_TIME`` (``kernel/softirq.c``).
    max_softirq_restart: int = field(default=10, validator=_int_in(1, 10**6))
    max_softirq_time_ms: int = field(default=2, validator=_int_in(1, 10**6))
    #: The fair scheduling class (kernel-model.md B.11): ``"eevdf"``, the Earliest
    #: Eligible Virtual Deadline First scheduler of every kernel since 6.6
    #: (``kernel/sched/fair.c`` of 6.10: ``pick_eevdf``, ``place_entity``,
    #: ``update_deadline``, ``check_preempt_wakeup_fair``), or ``"cfs"``, the vruntime
    #: scheduler before it (``check_preempt_tick``, ``wakeup_gran``,
    #: GENTLE_FAIR_SLEEPERS), which the model had before this field existed.
    scheduler: str = field(default="eevdf", validator=_one_of("eevdf", "cfs"))
    #: EEVDF's ``sysctl_sched_base_slice`` (``/sys/kernel/debug/sched/base_slice_ns``):
    #: the request each task's virtual deadline is set from. ``None``: the kernel's
    #: 0.75 ms times ``1 + ilog2(min(ncpus, 8))`` (see :meth:`sched_tunables`).
    sched_base_slice_ns: int | None = field(
        default=None, validator=_optional(_int_in(1, SCHED_TUNABLE_MAX_NS))
    )
    #: EEVDF's ``PLACE_LAG`` feature: a waking task keeps the lag it had when it slept
    #: (``place_entity``); off, it is placed at the average vruntime.
    sched_place_lag: bool = field(default=True, validator=_is_bool)
    #: EEVDF's ``RUN_TO_PARITY`` feature: once picked, a task runs until it is no
    #: longer eligible or has used its slice (``pick_eevdf``); a woken task with an
    #: earlier deadline does not preempt it before.
    sched_run_to_parity: bool = field(default=True, validator=_is_bool)
    #: EEVDF's ``DELAY_DEQUEUE`` feature (Linux 6.12+, with ``DELAY_ZERO``;
    #: kernel-model.md B.10.7): a task that goes to sleep while not eligible stays
    #: queued, counted in V and the load, until it is picked (then it leaves the queue,
    #: a positive lag dropped) or woken (then it is requeued where it is, no placement,
    #: no IPI). Off by default: napikit's kernel is 6.10's EEVDF, which has none
    #: (``napikit validate`` turns it on for a 6.12+ host). No effect under ``"cfs"``.
    sched_delay_dequeue: bool = field(default=False, validator=_is_bool)
    #: CFS tunables (``kernel/sched/fair.c``, pre-EEVDF), used with ``scheduler =
    #: "cfs"``; ``None`` is the kernel default, scaled with the CPU count (see
    #: :meth:`sched_tunables`).
    sched_latency_ns: int | None = field(
        default=None, validator=_optional(_int_in(1, SCHED_TUNABLE_MAX_NS))
    )
    sched_min_granularity_ns: int | None = field(
        default=None, validator=_optional(_int_in(1, SCHED_TUNABLE_MAX_NS))
    )
    sched_wakeup_granularity_ns: int | None = field(
        default=None, validator=_optional(_int_in(0, SCHED_TUNABLE_MAX_NS))
    )
    #: ``CONFIG_PREEMPT_RT`` (kernel-model.md B.6.4): IRQs are force-threaded, BH
    #: sections are preemptible, softirqs raised in a task run in it at its outermost
    #: ``local_bh_enable``, and ``invoke_softirq`` at hard-IRQ exit wakes ksoftirqd unless
    #: a task on that CPU is inside a BH section. Independent of the policy.
    preempt_rt: bool = field(default=False, validator=_is_bool)
    #: The preemption model (``CONFIG_PREEMPT_DYNAMIC``: the ``preempt=`` boot option,
    #: ``sched_dynamic_update`` in ``kernel/sched/core.c``; kernel-model.md B.10.5).
    #: ``"full"``: a task in kernel code is preempted as soon as a reschedule is due
    #: and it is outside a BH section (``preempt_schedule`` at ``preempt_enable``,
    #: ``irqentry_exit_cond_resched`` at interrupt return). ``"voluntary"``: only at
    #: return to user space (``exit_to_user_mode_loop``), when it blocks, at
    #: ``cond_resched()`` (``__cond_resched``) and at ``might_resched()`` points (the
    #: sender's skb allocation in ``udp_sendmsg``, ``might_alloc``). ``"none"``: as
    #: voluntary without the ``might_resched()`` points. A task in user code (the
    #: cyclictest work loop) is preempted at once in every model. The default is
    #: ``"full"``: the model behaved so before this field existed, so results stay
    #: as they were, and ``CONFIG_PREEMPT_RT`` implies it (``preempt_rt`` with another
    #: model is an error).
    preempt: str = field(default="full", validator=_one_of("none", "voluntary", "full"))
    #: "softirq: Let ksoftirqd do its job" (4cd13c21b207, reverted in v6.5 by
    #: d15121be7485, B.6.3): while ksoftirqd is runnable, ``irq_exit`` and
    #: ``local_bh_enable`` leave pending softirqs to it. Off: the behaviour since v6.5.
    let_ksoftirqd_do_its_job: bool = field(default=False, validator=_is_bool)
    #: ``udp_recvmsg`` frees the skb with ``skb_attempt_defer_free``
    #: (``net/core/skbuff.c``; 6.18's "udp: use skb_attempt_defer_free()"): an skb
    #: allocated on another CPU (loopback: the sender's) goes back to that CPU's
    #: ``defer_list``, freed by its ``net_rx_action`` (``skb_defer_free_flush``),
    #: kicked by a csd at half of ``skb_defer_max`` (``kick_defer_list_purge``;
    #: kernel-model.md B.10.4). Off (the default): 6.12's UDP, ``consume_skb`` in
    #: recvmsg, whose cost is part of ``udp_recvmsg_ns``; results are as before the
    #: field. On, each free costs ``CostModel.skb_free_ns`` where it happens.
    udp_skb_defer_free: bool = field(default=False, validator=_is_bool)
    #: ``net.core.skb_defer_max`` (``net_hotdata.sysctl_skb_defer_max``, default 64):
    #: the most skbs on one CPU's defer list; at this many a free is done inline, 0
    #: frees every skb inline. Used only with ``udp_skb_defer_free``.
    skb_defer_max: int = field(default=64, validator=_int_in(0, INT_MAX))
    #: ``net.core.rmem_default``: a UDP socket's receive buffer in bytes.
    rmem_default: int = field(default=212_992, validator=_int_in(1, INT_MAX))
    #: truesize charged to the receive buffer per small UDP skb.
    skb_truesize: int = field(default=768, validator=_int_in(1, INT_MAX))

    def __attrs_post_init__(self) -> None:
        if self.preempt_rt and self.preempt != "full":
            raise ConfigError(
                "kernel.preempt", "full (CONFIG_PREEMPT_RT implies full preemption)",
                self.preempt,
            )
        if self.dev_weight * self.dev_weight_rx_bias > INT_MAX:
            raise ConfigError(
                "kernel.dev_weight_rx_bias",
                f"an integer with dev_weight * dev_weight_rx_bias <= {INT_MAX}",
                self.dev_weight_rx_bias,
            )

    @property
    def budget_usecs(self) -> int:
        """``netdev_budget_usecs`` in force: the kernel default is 2 jiffies."""
        if self.netdev_budget_usecs is not None:
            return self.netdev_budget_usecs
        return 2 * 1_000_000 // self.hz

    def sched_tunables(self, ncpus: int) -> tuple[int, int, int, int]:
        """``(sched_latency, min_granularity, wakeup_granularity, base_slice)`` in ns on
        ``ncpus``.

        Unset ones are the kernel's: 6 ms, 0.75 ms, 1 ms and 0.75 ms times
        ``1 + ilog2(min(ncpus, 8))`` (``get_update_sysctl_factor``, the default
        ``SCHED_TUNABLESCALING_LOG``), so 12 ms, 1.5 ms, 2 ms and 1.5 ms on 2 CPUs.
        """
        factor = 1 + (min(ncpus, 8).bit_length() - 1)
        return (
            self.sched_latency_ns if self.sched_latency_ns is not None else 6_000_000 * factor,
            self.sched_min_granularity_ns
            if self.sched_min_granularity_ns is not None else 750_000 * factor,
            self.sched_wakeup_granularity_ns
            if self.sched_wakeup_granularity_ns is not None else 1_000_000 * factor,
            self.sched_base_slice_ns
            if self.sched_base_slice_ns is not None else 750_000 * factor,
        )

    @property
    def dev_rx_weight(self) -> int:
        """``dev_rx_weight = weight_p * dev_weight_rx_bias`` (``proc_do_dev_weight``)."""
        return self.dev_weight * self.dev_weight_rx_bias


# --------------------------------------------------------------------- costs


def _cost(default: int):
    return field(default=default, validator=_int_in(0, COST_MAX_NS))


@frozen
class CostModel:
    """What each step of the path costs, in simulated nanoseconds.

    Defaults are bare-metal x86 starting points (kernel-model.md A.5, B.9): the loopback
    send path ~1 us (``udp_sendmsg_ns`` + ``netif_rx_ns``); protocol receive 0.5 us (B.9.4
    measured 0.89 us per ``send`` *including* the whole RX softirq); ``recvmsg`` 1 us
    (B.9.4: the receiver, at 1.48 us per datagram, was the slower side); a context switch
    0.5 us (the test robot's +1.1 us per op for one wake-up and two switches, B.9.1, and
    B.9.4's 0.94 us pipe hand-off); IPI delivery 1.5 us; softirq entry/exit tens of ns.
    With these, SEED-LO's softirq path costs ~1.65 us per packet, the robot's base.
    """

    #: ``netif_rx`` -> ``enqueue_to_backlog`` per packet, charged to the caller.
    netif_rx_ns: int = _cost(100)
    #: Hard-IRQ entry, handler and exit of one device interrupt, besides ``netif_rx``.
    nic_irq_ns: int = _cost(300)
    #: ``__netif_receive_skb`` up to the socket (IP + UDP receive) in ``process_backlog``.
    protocol_rx_ns: int = _cost(500)
    #: ``udp_sendmsg`` up to ``dev_queue_xmit`` (process context).
    udp_sendmsg_ns: int = _cost(900)
    #: ``udp_recvmsg`` of one datagram, including the copy to user space.
    udp_recvmsg_ns: int = _cost(1000)
    #: ``smp_call_function_single_async`` on the sending CPU, per IPI.
    ipi_send_ns: int = _cost(200)
    #: From send to the target entering its IPI handler.
    ipi_latency_ns: int = _cost(1500)
    #: Hard-IRQ entry, ``rps_trigger_softirq`` and exit on the target.
    ipi_handler_ns: int = _cost(300)
    #: ``__schedule`` switching to another task (switching to idle is free).
    context_switch_ns: int = _cost(500)
    #: ``try_to_wake_up``, charged to the waker.
    wakeup_ns: int = _cost(200)
    #: From ``try_to_wake_up`` of a task on another CPU to it being runnable there.
    wakeup_latency_ns: int = _cost(2000)
    #: ``handle_softirqs`` entry and exit, per call.
    softirq_entry_ns: int = _cost(50)
    #: Hard-IRQ entry, ``hrtimer_interrupt`` and exit of the timer that wakes a
    #: :class:`Cyclictest` task (the order of a device interrupt's ``nic_irq_ns``).
    hrtimer_irq_ns: int = _cost(300)
    #: Location cost of the skb (kernel-model.md B.10.6): extra for
    #: ``__netif_receive_skb`` (``ip_rcv``, ``udp_rcv``, ``__udp_enqueue_schedule_skb``)
    #: and again for ``udp_recvmsg`` (``skb_copy_datagram_msg``) on a CPU other than the
    #: one that wrote the skb last (the sender at ``udp_sendmsg``/``netif_rx``, the
    #: interrupted CPU of a NIC, then the CPU that ran its protocol receive): its head,
    #: ``skb_shared_info`` and data lines pulled from another CPU's cache. 0 (the default)
    #: keeps costs independent of location; ``napikit calibrate`` measures a host's.
    remote_skb_ns: int = _cost(0)
    #: Location cost of the socket (B.10.6): extra for ``__udp_enqueue_schedule_skb``
    #: and for ``udp_recvmsg`` when another CPU touched the socket's receive queue and
    #: accounting (``sk_receive_queue``, ``sk_rmem_alloc``, ``sk_forward_alloc``) last.
    remote_sock_ns: int = _cost(0)
    #: A ``recvmsg`` that finds the receive queue empty and blocks
    #: (``__skb_wait_for_more_packets``: the failed ``__skb_try_recv_datagram``,
    #: ``prepare_to_wait_exclusive``, ``schedule_timeout``'s dequeue and pick of idle;
    #: once woken, ``finish_wait`` and the retry), charged to the reader before it
    #: sleeps; the switch back in is ``context_switch_ns``. A datagram queued during it
    #: wakes the reader there, with no IPI. 0 (the default): blocking is free;
    #: ``napikit calibrate`` measures a host's.
    recv_block_ns: int = _cost(0)
    #: How long a CPU that has just gone idle still polls: ``do_idle`` runs with
    #: TIF_POLLING_NRFLAG set (``tick_nohz_idle_enter``, the governor's pick) until
    #: ``default_idle_call`` or ``cpuidle_enter`` clears it and halts. An RPS kick or a
    #: remote wake-up in that window needs no interrupt (``set_nr_if_polling``). 0 (the
    #: default): an idle CPU halts at once; ``napikit calibrate`` measures a host's.
    idle_entry_ns: int = _cost(0)
    #: Leaving a polling idle loop once a kick or a wake-up set TIF_NEED_RESCHED:
    #: ``do_idle``'s exit (``tick_nohz_idle_exit`` restarts the tick, a timer
    #: reprogramming that traps in a guest), then ``flush_smp_call_function_queue``
    #: runs the queued csd or wake-up: how much later it takes effect. 0 (the default):
    #: at once.
    idle_exit_poll_ns: int = _cost(0)
    #: Freeing one small skb (``skb_release_all`` + ``kfree_skbmem``: two slab frees
    #: and the socket accounting), charged only with ``kernel.udp_skb_defer_free``:
    #: inline to the reader's CPU, or to the allocating CPU's softirq at
    #: ``skb_defer_free_flush``. 100 ns: a few tens of ns per ``kmem_cache_free``
    #: of a hot object, plus the cache misses of an skb written on another CPU.
    skb_free_ns: int = _cost(100)


#: The shapes a cost may take (:class:`CostDistribution`).
DISTRIBUTION_KINDS = ("constant", "exponential", "lognormal", "empirical")
#: A draw is truncated at this many times its mean (and at ``COST_MAX_NS``).
DRAW_CAP_FACTOR = 1000
LOGNORMAL_SIGMA_MAX = 3.0
EMPIRICAL_BINS_MAX = 4096


def _float_tuple(value: Any) -> Any:
    return tuple(value) if isinstance(value, (list, tuple)) else value


@frozen
class CostDistribution:
    """The shape of one cost around its mean: the :class:`CostModel` field's value is
    the mean, this says how single operations spread around it.

    ``constant`` (every operation costs the mean), ``exponential`` (mean as given),
    ``lognormal`` (``sigma`` is the standard deviation of the cost's logarithm; its
    coefficient of variation is ``sqrt(exp(sigma**2) - 1)``), or ``empirical``: the
    discrete distribution of ``values`` with relative ``weights`` (a histogram, e.g. what
    ``napikit calibrate`` measured), scaled so that its mean is the field's value, so a
    scaled cost keeps its measured shape. Draws come from the run's seeded generator
    (a stream of their own: a distribution on one cost leaves the arrivals as they
    were), are rounded to whole ns and truncated at ``DRAW_CAP_FACTOR`` times the mean
    and at ``COST_MAX_NS``.
    """

    kind: str = field(default="constant", validator=_one_of(*DISTRIBUTION_KINDS))
    sigma: float | None = field(
        default=None, validator=_optional(_number_in(1e-6, LOGNORMAL_SIGMA_MAX))
    )
    values: tuple[float, ...] = field(default=(), converter=_float_tuple)
    weights: tuple[float, ...] = field(default=(), converter=_float_tuple)

    def __attrs_post_init__(self) -> None:
        where = "cost_distributions."
        if (self.kind == "lognormal") != (self.sigma is not None):
            raise ConfigError(
                f"{where}sigma", f"a number from 1e-06 to {LOGNORMAL_SIGMA_MAX:g} for "
                "kind lognormal, and no sigma for the other kinds", self.sigma)
        if self.kind != "empirical":
            if self.values or self.weights:
                raise ConfigError(f"{where}values", "no values or weights unless kind is "
                                  "empirical", self.values or self.weights)
            return
        ok = isinstance(self.values, tuple) and isinstance(self.weights, tuple) and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
            for v in (*self.values, *self.weights))
        if not ok or not 1 <= len(self.values) <= EMPIRICAL_BINS_MAX:
            raise ConfigError(f"{where}values", f"a list of 1 to {EMPIRICAL_BINS_MAX} "
                              "finite numbers", self.values)
        if len(self.weights) != len(self.values):
            raise ConfigError(f"{where}weights", f"{len(self.values)} numbers, one per value",
                              self.weights)
        if any(v < 0 for v in self.values):
            raise ConfigError(f"{where}values", "numbers >= 0", self.values)
        if any(w < 0 for w in self.weights) or not sum(self.weights) > 0:
            raise ConfigError(f"{where}weights", "numbers >= 0, not all 0", self.weights)
        if not self.mean > 0:
            raise ConfigError(f"{where}values", "numbers >= 0 whose weighted mean is above 0",
                              self.values)

    @property
    def mean(self) -> float:
        """The mean of ``values`` weighted by ``weights`` (empirical only)."""
        w = self.weights
        return sum(v * x for v, x in zip(self.values, w, strict=True)) / sum(w)

    def cap(self, mean_ns: int) -> int:
        """The largest cost a draw with mean ``mean_ns`` can take, in ns."""
        if self.kind == "constant":
            return mean_ns
        if self.kind == "empirical":
            m = self.mean
            top = max(self.values) * mean_ns / m if m > 0 else 0
            return min(COST_MAX_NS, math.ceil(top))
        return min(COST_MAX_NS, DRAW_CAP_FACTOR * mean_ns)


def _distributions(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: value[k] for k in sorted(value, key=str)}
    return value


def _check_distributions(inst: object, attr: attrs.Attribute, value: object) -> None:
    names = [a.name for a in attrs.fields(CostModel)]
    if not isinstance(value, dict):
        raise ConfigError("cost_distributions", "a mapping from cost names to "
                          "CostDistribution", value)
    for k, v in value.items():
        if k not in names:
            raise ConfigError("cost_distributions", "keys among " + ", ".join(names), k)
        if not isinstance(v, CostDistribution):
            raise ConfigError(f"cost_distributions.{k}", "a CostDistribution", v)


# --------------------------------------------------------------------- workloads


@frozen
class LoopbackUdp:
    """UDP over the loopback device: sender threads and receiver threads pinned to CPUs.

    Sender ``i`` (on CPU ``senders[i]``) sends to the socket drained by receiver ``i``
    (on CPU ``receivers[i]``), cycling over ``flows`` source ports. ``rate_pps`` is per
    sender; ``None`` is a closed loop (the next ``sendmsg`` starts when the previous
    returns). ``rps_cpus`` is the ``rps_cpus`` mask of ``lo``'s receive queue (empty:
    RPS off, the packet is queued on the sending CPU).
    """

    senders: tuple[int, ...] = field(default=(0,), converter=_to_tuple, validator=_cpu_list)
    receivers: tuple[int, ...] = field(default=(1,), converter=_to_tuple, validator=_cpu_list)
    flows: int = field(default=1, validator=_int_in(1, FLOWS_MAX))
    rate_pps: float | None = field(
        default=None, validator=_optional(_number_in(1, RATE_MAX_PPS))
    )
    rps_cpus: tuple[int, ...] = field(default=(), converter=_to_tuple, validator=_cpu_list)
    #: The nice value of its sender and receiver threads (``setpriority``): their
    #: weight in the fair class, ``sched_prio_to_weight`` (1024 at nice 0, about 1.25x
    #: less per step up).
    nice: int = field(default=0, validator=_int_in(-20, 19))

    def __attrs_post_init__(self) -> None:
        if len(self.senders) != len(self.receivers) or not self.senders:
            raise ConfigError(
                "loopback_udp.receivers", "one receiver CPU per sender CPU", self.receivers
            )


@frozen
class NicIrq:
    """A non-NAPI NIC interrupting ``cpu``; its hard-IRQ handler calls ``netif_rx``.

    ``arrival`` is ``constant`` (evenly spaced), ``poisson`` (exponential gaps) or
    ``bursty`` (Poisson interrupts each carrying ``burst`` packets). Each packet's flow is
    drawn from ``flows`` flows, ``uniform`` or ``zipf`` (exponent ``zipf_s``).
    ``rps_cpus`` is the receive queue's RPS mask (empty: RPS off).
    """

    cpu: int = field(default=0, validator=_int_in(0, NR_CPUS_MAX - 1))
    rate_pps: float = field(default=1_000_000.0, validator=_number_in(1, RATE_MAX_PPS))
    arrival: str = field(default="poisson", validator=_one_of("constant", "poisson", "bursty"))
    burst: int = field(default=16, validator=_int_in(1, NIC_BURST_MAX))
    flows: int = field(default=1024, validator=_int_in(1, FLOWS_MAX))
    flow_dist: str = field(default="uniform", validator=_one_of("uniform", "zipf"))
    zipf_s: float = field(default=1.1, validator=_number_in(0, 100))
    rps_cpus: tuple[int, ...] = field(default=(), converter=_to_tuple, validator=_cpu_list)


@frozen
class Cyclictest:
    """A cyclictest-like SCHED_FIFO thread pinned to ``cpu``: it sleeps until the next
    multiple of ``period_ns`` (``clock_nanosleep(TIMER_ABSTIME)``; an hrtimer interrupt
    wakes it), then runs ``work_ns``. Its wake-up latency, from the timer's expiry to
    the thread running, is reported in :attr:`Result.cyclictest_latency`. Besides the
    input it adds no packet; it stops when the input does.
    """

    cpu: int = field(default=1, validator=_int_in(0, NR_CPUS_MAX - 1))
    period_ns: int = field(default=1_000_000, validator=_int_in(1_000, COST_MAX_NS))
    #: SCHED_FIFO priority, 1-99 (cyclictest ``-p``).
    priority: int = field(default=95, validator=_int_in(1, 99))
    work_ns: int = field(default=1_000, validator=_int_in(0, COST_MAX_NS))

    def __attrs_post_init__(self) -> None:
        # A thread that never sleeps would keep its CPU from everyone else for good.
        if self.work_ns >= self.period_ns:
            raise ConfigError(
                "cyclictest.work_ns", f"an integer below period_ns={self.period_ns}", self.work_ns
            )


Workload = LoopbackUdp | NicIrq | Cyclictest


def _workloads(inst: object, attr: attrs.Attribute, value: object) -> None:
    if (
        not isinstance(value, tuple)
        or not value
        or not all(isinstance(w, (LoopbackUdp, NicIrq, Cyclictest)) for w in value)
        or all(isinstance(w, Cyclictest) for w in value)
    ):
        raise ConfigError(
            "workloads",
            "a list of LoopbackUdp / NicIrq / Cyclictest with at least one traffic source",
            value,
        )


@frozen
class CpuHotplug:
    """Take ``cpu`` offline (``online=False``) or bring it online at ``time_ns``.

    Requests run one at a time, in time order (``cpu_hotplug_lock``). Going offline
    parks the CPU's per-CPU threads, stops the CPU at its next preemption point
    (``stop_machine``), moves its tasks and interrupts to the lowest-numbered online
    CPU, and runs ``dev_cpu_dead`` there (kernel-model.md B.5.4).
    """

    time_ns: int = field(validator=_int_in(0, TIME_MAX_NS))
    cpu: int = field(validator=_int_in(0, NR_CPUS_MAX - 1))
    online: bool = field(validator=_is_bool)


def _hotplug(inst: object, attr: attrs.Attribute, value: object) -> None:
    if (
        not isinstance(value, tuple)
        or len(value) > HOTPLUG_MAX
        or not all(isinstance(h, CpuHotplug) for h in value)
    ):
        raise ConfigError(
            "hotplug", f"a list of at most {HOTPLUG_MAX} CpuHotplug(time_ns, cpu, online)", value
        )


HOTPLUG_MAX = 100_000
#: The types a policy option may hold: they go to files (JSON, TOML) and back unchanged.
OPTION_TYPES = (bool, int, float, str)


def _options(value: Any) -> Any:
    if isinstance(value, Mapping):
        value = tuple(value.items())
    elif isinstance(value, list):
        value = tuple(tuple(p) if isinstance(p, (list, tuple)) else p for p in value)
    if isinstance(value, tuple) and all(
        isinstance(p, tuple) and len(p) == 2 and isinstance(p[0], str) for p in value
    ):
        return tuple(sorted(value))
    return value


def _policy_options(inst: object, attr: attrs.Attribute, value: object) -> None:
    pairs = "a mapping of option names to true/false, numbers or strings"
    if not isinstance(value, tuple) or not all(
        isinstance(p, tuple) and len(p) == 2 and isinstance(p[0], str) for p in value
    ):
        raise ConfigError("policy_options", pairs, value)
    names = [name for name, _ in value]
    if len(set(names)) != len(names):
        raise ConfigError("policy_options", "a mapping with each option named once", names)
    for name, v in value:
        if not isinstance(v, OPTION_TYPES) or (isinstance(v, float) and not math.isfinite(v)):
            raise ConfigError(
                f"policy_options.{name}", "true/false, a finite number or a string", v
            )
        if isinstance(v, int) and not isinstance(v, bool) and not -(2**63) <= v < 2**63:
            raise ConfigError(
                f"policy_options.{name}", "an integer from -2**63 to 2**63 - 1", v
            )


# --------------------------------------------------------------------- the run


@frozen
class Config:
    """One run: topology, kernel, costs, workloads, policy, length and seed.

    Input stops after ``packets`` packets (all sources together) or at ``duration_ns``,
    whichever comes first (at least one must be given); the run then goes on for at most
    ``drain_ns`` so queues can empty, and what is still queued is reported as such.
    """

    ncpus: int = field(default=2, validator=_int_in(1, NR_CPUS_MAX))
    workloads: tuple[Workload, ...] = field(
        factory=lambda: (LoopbackUdp(),), converter=_to_tuple, validator=_workloads
    )
    policy: str = field(default="softirq-ipi")
    #: CPUs that exist but are not online when the run starts; a
    #: :class:`CpuHotplug` request can bring them up.
    offline_cpus: tuple[int, ...] = field(default=(), converter=_to_tuple, validator=_cpu_list)
    #: CPU hotplug requests, run in time order.
    hotplug: tuple[CpuHotplug, ...] = field(
        default=(), converter=_to_tuple, validator=_hotplug
    )
    #: Policy options as sorted ``(name, value)`` pairs (a mapping is accepted).
    policy_options: tuple[tuple[str, Any], ...] = field(
        default=(), converter=_options, validator=_policy_options
    )
    kernel: KernelParams = field(factory=KernelParams)
    costs: CostModel = field(factory=CostModel)
    #: The shape of each cost named here around its mean in :attr:`costs` (costs not
    #: named are constant, the default): ``{"protocol_rx_ns":
    #: CostDistribution("exponential")}``.
    cost_distributions: dict[str, CostDistribution] = field(
        factory=dict, converter=_distributions, validator=_check_distributions, hash=False
    )
    packets: int | None = field(
        default=100_000, validator=_optional(_int_in(1, HORIZON_NS))
    )
    duration_ns: int | None = field(
        default=None, validator=_optional(_int_in(1, TIME_MAX_NS))
    )
    drain_ns: int = field(default=10_000_000, validator=_int_in(0, TIME_MAX_NS))
    #: The stall watchdog: a backlog scheduled and not polled for this long ends the run
    #: with a :class:`~napikit.errors.StallError` (``None``: no watchdog). Like the
    #: kernel's soft-lockup detector it is generous: 1 s of simulated time.
    stall_timeout_ns: int | None = field(
        default=1_000_000_000, validator=_optional(_int_in(1, TIME_MAX_NS))
    )
    #: Record a time series (:attr:`Result.samples`): the counters every this many ns
    #: of simulated time (``None``: none; it changes nothing else in the result).
    sample_interval_ns: int | None = field(
        default=None, validator=_optional(_int_in(1_000, TIME_MAX_NS))
    )
    seed: int = field(default=1, validator=_int_in(0, U64_MAX))

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.policy, str) or not self.policy:
            raise ConfigError("policy", "the name of an installed policy", self.policy)
        if self.packets is None and self.duration_ns is None:
            raise ConfigError("packets", "an integer >= 1 when duration_ns is not set", None)
        if not isinstance(self.kernel, KernelParams):
            raise ConfigError("kernel", "a KernelParams", self.kernel)
        if not isinstance(self.costs, CostModel):
            raise ConfigError("costs", "a CostModel", self.costs)
        allowed = f"CPU numbers < ncpus={self.ncpus}"
        self._check_cpus("kernel.flow_limit_cpu_bitmap", self.kernel.flow_limit_cpu_bitmap, allowed)
        self._check_cpus("offline_cpus", self.offline_cpus, allowed)
        if len(self.offline_cpus) >= self.ncpus:
            raise ConfigError("offline_cpus", "a list leaving at least one CPU online",
                              self.offline_cpus)
        # Threads and interrupts start on CPUs that are online; RPS masks may name any.
        online = f"CPU numbers < ncpus={self.ncpus} not in offline_cpus"
        offline = frozenset(self.offline_cpus)
        for w in self.workloads:
            if isinstance(w, LoopbackUdp):
                for name in ("senders", "receivers"):
                    self._check_cpus(f"loopback_udp.{name}", getattr(w, name), online, offline)
                self._check_cpus("loopback_udp.rps_cpus", w.rps_cpus, allowed)
            elif isinstance(w, NicIrq):
                self._check_cpus("nic_irq.cpu", (w.cpu,), online, offline)
                self._check_cpus("nic_irq.rps_cpus", w.rps_cpus, allowed)
            else:
                self._check_cpus("cyclictest.cpu", (w.cpu,), online, offline)
        flows = sum(w.flows for w in self.workloads if not isinstance(w, Cyclictest))
        if flows > FLOWS_MAX:
            raise ConfigError("workloads", f"flows adding up to at most {FLOWS_MAX}", flows)
        self._check_hotplug()
        self._check_horizon()

    def _check_horizon(self) -> None:
        """The simulated clock must not wrap: bound where the input can end.

        Input ends after ``duration_ns`` or after ``packets``; a packet takes at most the
        slowest source's gap plus every cost of the path once, so that bounds the second.
        """
        if self.duration_ns is not None:
            return
        assert self.packets is not None
        gaps = [
            1e9 / w.rate_pps
            for w in self.workloads
            if not isinstance(w, Cyclictest) and w.rate_pps is not None
        ]
        per_packet = max(gaps, default=0.0) + sum(self.cost_caps().values()) + 1
        limit = int((HORIZON_NS - TIME_MAX_NS) / per_packet)
        if self.packets > limit:
            raise ConfigError(
                "packets",
                f"at most {limit} with these rates and costs, so that the simulated clock "
                "stays below 2**62 ns (or set duration_ns)",
                self.packets,
            )

    def _check_cpus(
        self, name: str, cpus: tuple[int, ...], allowed: str,
        offline: frozenset[int] = frozenset(),
    ) -> None:
        bad = [c for c in cpus if c >= self.ncpus or c in offline]
        if bad:
            raise ConfigError(name, allowed, cpus if len(cpus) > 1 else cpus[0])

    def _check_hotplug(self) -> None:
        """Replay the requests: each must change a CPU's state, and one CPU stays up."""
        online = set(range(self.ncpus)) - set(self.offline_cpus)
        for i, h in sorted(enumerate(self.hotplug), key=lambda ih: ih[1].time_ns):
            name = f"hotplug[{i}]"
            if h.cpu >= self.ncpus:
                raise ConfigError(f"{name}.cpu", f"a CPU number < ncpus={self.ncpus}", h.cpu)
            if h.online == (h.cpu in online):
                state = "online" if h.online else "offline"
                raise ConfigError(
                    f"{name}.online",
                    f"a change of state (CPU {h.cpu} is already {state} at t={h.time_ns} ns)",
                    h.online,
                )
            if not h.online and online == {h.cpu}:
                raise ConfigError(
                    f"{name}.cpu", "a CPU other than the last one online", h.cpu
                )
            (online.add if h.online else online.discard)(h.cpu)

    def cost_caps(self) -> dict[str, int]:
        """Each cost's largest value in one operation: the field, or what its
        distribution's draws are truncated at."""
        caps = attrs.asdict(self.costs)
        for k, d in self.cost_distributions.items():
            caps[k] = d.cap(caps[k])
        return caps

    @property
    def hotplug_sequence(self) -> tuple[CpuHotplug, ...]:
        """The hotplug requests in the order they run: by time, then as given."""
        return tuple(sorted(self.hotplug, key=lambda h: h.time_ns))

    @property
    def options(self) -> dict[str, Any]:
        """The policy options as a dict."""
        return dict(self.policy_options)

    def to_dict(self) -> dict[str, Any]:
        """Every field, nested workloads tagged with their kind: JSON-ready and complete."""

        d = attrs.asdict(self)
        d["workloads"] = [{"kind": type(w).__name__, **attrs.asdict(w)} for w in self.workloads]
        d["hotplug"] = [attrs.asdict(h) for h in self.hotplug]
        d["policy_options"] = dict(self.policy_options)
        return d

    def evolve(self, **changes: Any) -> Config:
        """A copy with ``changes`` applied (``attrs.evolve``)."""
        return attrs.evolve(self, **changes)
