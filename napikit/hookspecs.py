"""Hook specifications of napikit, in the order a run meets them.

Plugins are found through the ``napikit`` entry-point group
(``PluginManager.load_setuptools_entrypoints``); unknown ``napikit_*`` hook
implementations fail loudly (``check_pending``). Many policies may be installed; the
registry hook lets each add named policies, and a run is decided by exactly one of them.

The *decision* hooks are called only on the run's selected policy, and only when a
policy is written in plain Python: the shipped policies are compiled
:class:`napikit.decision.CompiledPolicy` objects that the core calls as C functions, so
no pluggy call is made per packet or per event. A Python policy's hook is resolved once
per run, then called once per decision (a backlog scheduled, a softirq raised in
hard-IRQ context), never per packet.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from napikit.config import Config
    from napikit.plugins import PolicyRegistry
    from napikit.results import Result

NAME = "napikit"
hookspec = pluggy.HookspecMarker(NAME)
hookimpl = pluggy.HookimplMarker(NAME)

# ------------------------------------------------------------------ discovery


@hookspec
def napikit_register_policies(registry: PolicyRegistry) -> None:
    """Add this plugin's policies to the registry.

    Called on every plugin when the policy registry is collected (once per process
    for the installed plugins, see :func:`napikit.plugins.registry`).

    :param registry: call ``registry.register(name, factory, options=..., description=...)``
        for each policy; ``factory(**options)`` returns the policy's decision object (a
        :class:`~napikit.decision.CompiledPolicy`, or a plain object implementing the
        decision hooks below).
    :returns: nothing.
    """


# ------------------------------------------------------------------ run lifecycle


@hookspec
def napikit_run_start(config: Config) -> None:
    """Observe the start of a run, after the configuration is validated.

    Called on every installed plugin, once per run, before the first event.

    :param config: the run's configuration.
    :returns: nothing.
    """


@hookspec
def napikit_run_end(config: Config, result: Result) -> None:
    """Observe the end of a run.

    Called on every installed plugin, once per run, after the result is built.

    :param config: the run's configuration.
    :param result: the run's result.
    :returns: nothing.
    """


# ------------------------------------------------------------------ decisions (selected policy)


@hookspec(firstresult=True)
def napikit_backlog_schedule(
    this_cpu: int, target_cpu: int, now_ns: int, last_batch: int
) -> Any:
    """Decide how to kick a backlog NAPI that has just become non-empty.

    Mirrors the choice in ``napi_schedule_rps`` / ``____napi_schedule``
    (``net/core/dev.c``): called from ``enqueue_to_backlog`` when a packet lands on an
    empty ``input_pkt_queue`` whose NAPI was not yet scheduled (SCHED was clear).

    :param this_cpu: the CPU running ``netif_rx`` (the kernel's ``mysd``).
    :param target_cpu: the CPU whose backlog received the packet (RPS target).
    :param now_ns: simulated time.
    :param last_batch: packets the target's backlog processed from the previous time it
        was scheduled until it completed (a load signal for adaptive policies; 0 before
        the first completion). Not a kernel field.
    :returns: a :class:`napikit.Action`: ``SOFTIRQ`` (local target only: add the backlog
        to this CPU's ``poll_list`` and raise NET_RX), ``IPI`` (remote target only: queue
        it on ``rps_ipi_list``; the IPI is sent at the end of ``net_rx_action``) or
        ``THREAD`` (set SCHED_THREADED and wake ``backlog_napi/<target_cpu>``; needs a
        policy with ``backlog_threads``), or ``NONE`` (no kick: the backlog stays
        scheduled and nothing polls it, which models a lost kick; the stall watchdog
        ends such a run). ``None`` leaves the decision to the kernel's default
        (``SOFTIRQ`` local, ``IPI`` remote).
    """


@hookspec(firstresult=True)
def napikit_softirq_from_hardirq(cpu: int, force_irqthreads: bool, now_ns: int) -> Any:
    """Decide where softirqs pending at hard-IRQ exit run.

    Mirrors ``invoke_softirq`` (``kernel/softirq.c``): called at ``irq_exit`` on ``cpu``
    when softirqs are pending and the interrupted context is not already serving them.
    Not called under ``kernel.preempt_rt``, whose ``invoke_softirq`` is fixed (wake
    ksoftirqd unless a task on the CPU is inside a BH section), nor while
    ``kernel.let_ksoftirqd_do_its_job`` leaves the softirqs to a runnable ksoftirqd.

    :param cpu: the CPU leaving hard-IRQ context.
    :param force_irqthreads: whether the kernel runs with forced-threaded IRQs.
    :param now_ns: simulated time.
    :returns: a :class:`napikit.SoftirqAction`: ``INLINE`` (``__do_softirq`` now, on the
        interrupted context's stack) or ``KSOFTIRQD`` (``wakeup_softirqd``). ``None``
        leaves it to the kernel (``KSOFTIRQD`` exactly when ``force_irqthreads``).
    """
