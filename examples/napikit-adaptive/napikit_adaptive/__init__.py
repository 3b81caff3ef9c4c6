"""napikit-adaptive: a backlog policy that hands a busy backlog to its thread.

The ``adaptive`` policy runs a CPU's backlog NAPI the classic way while the backlog is
lightly loaded, and hands it to the ``backlog_napi/N`` thread once it is not:

- **INLINE** mode (the classic kernel, ``softirq-ipi``): a local backlog goes on the
  local ``poll_list`` with NET_RX raised (``Action.SOFTIRQ``); a remote one is queued on
  ``rps_ipi_list`` and kicked by an RPS IPI (``Action.IPI``). Short batches are handled
  with no context switch, and the loopback "processed inside ``sendmsg``" path is kept.
- **THREAD** mode (``thread_backlog_napi`` without the local fast path): every request
  wakes the target's ``backlog_napi/N`` (``Action.THREAD``). Long batches then run in a
  schedulable SCHED_NORMAL task (no budget, no ``ksoftirqd`` hand-off, no IPI per
  batch) instead of softirq context stolen from whatever the CPU was running.

The load signal is ``last_batch``: the packets the target's backlog processed in its
previous scheduled period, from being scheduled until ``process_backlog`` completed.
Each target CPU switches INLINE -> THREAD when ``last_batch >= high`` and
THREAD -> INLINE when ``last_batch <= low``; between the two it keeps its mode
(hysteresis), so a load near one threshold does not flip the mode on every kick.

The policy is deterministic (no randomness, no wall-clock time) and keeps its per-run
state in the object the factory returns; napikit calls the factory once per run.
It depends on napikit's public API only.
"""

from __future__ import annotations

from napikit import Action, ConfigError, PolicyOption, hookimpl

__all__ = ["AdaptiveHandoff", "DEFAULT_HIGH", "DEFAULT_LOW", "napikit_register_policies"]

#: Hand the backlog to its thread once a period processed this many packets: half a
#: ``process_backlog`` quota (dev_rx_weight 64), so a backlog that needed a repoll is
#: always handed off.
DEFAULT_HIGH = 32
#: Take it back into softirq once a period processed no more than this many.
DEFAULT_LOW = 8


class AdaptiveHandoff:
    """The ``adaptive`` policy's decision object: one mode per target CPU.

    >>> p = AdaptiveHandoff(high=4, low=1)
    >>> p.napikit_backlog_schedule(this_cpu=0, target_cpu=1, now_ns=0, last_batch=0)
    <Action.IPI: 1>
    >>> p.napikit_backlog_schedule(this_cpu=0, target_cpu=1, now_ns=0, last_batch=5)
    <Action.THREAD: 2>
    >>> p.napikit_backlog_schedule(this_cpu=0, target_cpu=1, now_ns=0, last_batch=2)
    <Action.THREAD: 2>
    >>> p.napikit_backlog_schedule(this_cpu=0, target_cpu=1, now_ns=0, last_batch=1)
    <Action.IPI: 1>
    >>> p.switches
    2
    """

    #: ``backlog_napi/N`` threads exist (``use_backlog_threads()``), so THREAD is valid.
    backlog_threads = True

    def __init__(self, high: int = DEFAULT_HIGH, low: int = DEFAULT_LOW) -> None:
        if high < 1:
            raise ConfigError("policy_options.high", "an integer >= 1", high)
        if low < 0:
            raise ConfigError("policy_options.low", "an integer >= 0", low)
        if low >= high:
            raise ConfigError("policy_options.low", f"an integer below high ({high})", low)
        self.high = high
        self.low = low
        #: Target CPUs whose backlog is in THREAD mode now (the others are INLINE).
        self.threaded: set[int] = set()
        #: Mode changes so far, in both directions, over all CPUs.
        self.switches = 0

    def mode(self, cpu: int) -> str:
        """``"thread"`` or ``"inline"``: the mode of ``cpu``'s backlog now."""
        return "thread" if cpu in self.threaded else "inline"

    @hookimpl
    def napikit_backlog_schedule(
        self, this_cpu: int, target_cpu: int, now_ns: int, last_batch: int
    ) -> Action:
        """Update the target's mode from ``last_batch``, then kick its backlog."""
        threaded = self.threaded
        if target_cpu in threaded:
            if last_batch <= self.low:
                threaded.discard(target_cpu)
                self.switches += 1
                return Action.SOFTIRQ if this_cpu == target_cpu else Action.IPI
            return Action.THREAD
        if last_batch >= self.high:
            threaded.add(target_cpu)
            self.switches += 1
            return Action.THREAD
        return Action.SOFTIRQ if this_cpu == target_cpu else Action.IPI


@hookimpl
def napikit_register_policies(registry) -> None:
    """Register the ``adaptive`` policy."""
    registry.register(
        "adaptive",
        AdaptiveHandoff,
        options=[
            PolicyOption("high", int, DEFAULT_HIGH,
                         "hand the backlog to backlog_napi/N once a period processed >= high"),
            PolicyOption("low", int, DEFAULT_LOW,
                         "take it back to softirq/IPI once a period processed <= low"),
        ],
        description="softirq/IPI while a backlog's batches are short, backlog_napi/N "
        "above a threshold (hysteresis)",
    )
