# cython: language_level=3
"""Decision objects: how the core asks a policy what to do.

:class:`CompiledPolicy` carries the kernel's own choices; the shipped policies
subclass it in Cython. :class:`PythonPolicy` adapts a plain Python plugin object whose
decision hooks (``napikit/hookspecs.py``) were resolved once, when the run was set up.
"""

import enum


class Action(enum.IntEnum):
    """What ``napi_schedule_rps`` does with a backlog that needs polling."""

    SOFTIRQ = ACTION_SOFTIRQ
    IPI = ACTION_IPI
    THREAD = ACTION_THREAD
    NONE = ACTION_NONE


class SoftirqAction(enum.IntEnum):
    """What ``invoke_softirq`` does with softirqs pending at hard-IRQ exit."""

    INLINE = SOFTIRQ_INLINE
    KSOFTIRQD = SOFTIRQ_KSOFTIRQD


_ACTIONS = tuple(Action)
_SOFTIRQ_ACTIONS = tuple(SoftirqAction)


class InvalidDecision(ValueError):
    """A Python policy's hook returned something that is not one of its actions."""


cdef class CompiledPolicy:
    """A compiled backlog policy; the base class decides as the kernel's defaults do.

    ``backlog_threads``: per-CPU ``backlog_napi/N`` threads exist
    (``use_backlog_threads()``). ``force_irqthreads``: the policy implies forced-threaded
    device interrupts (``threadirqs``), whatever the kernel parameters say.
    """

    def __init__(self, str name, bint backlog_threads=False, bint force_irqthreads=False):
        self.name = name
        self.backlog_threads = backlog_threads
        self.force_irqthreads = force_irqthreads
        self.error = None

    cdef int backlog_schedule(self, int this_cpu, int target_cpu, long long now_ns,
                              int last_batch) noexcept:
        """``napi_schedule_rps`` in classic mode: local softirq, else RPS IPI."""
        return ACTION_SOFTIRQ if this_cpu == target_cpu else ACTION_IPI

    cdef int softirq_from_hardirq(self, int cpu, bint force_irqthreads, long long now_ns) noexcept:
        """``invoke_softirq``: inline unless interrupts are force-threaded."""
        return SOFTIRQ_KSOFTIRQD if force_irqthreads else SOFTIRQ_INLINE

    def decide_backlog_schedule(self, int this_cpu, int target_cpu, long long now_ns=0,
                                int last_batch=0):
        """Python access to the decision, for tests and conformance checks."""
        r = self.backlog_schedule(this_cpu, target_cpu, now_ns, last_batch)
        if r == DECISION_FAILED:
            raise self.error
        return r

    def decide_softirq_from_hardirq(self, int cpu, bint force_irqthreads, long long now_ns=0):
        """Python access to the decision, for tests and conformance checks."""
        r = self.softirq_from_hardirq(cpu, force_irqthreads, now_ns)
        if r == DECISION_FAILED:
            raise self.error
        return r


cdef class PythonPolicy(CompiledPolicy):
    """Adapter for a policy written in Python against the decision hooks.

    ``schedule`` and ``softirq`` are the hook implementations' functions, resolved once
    per run (or ``None`` where the policy leaves the decision to the kernel). An
    exception, or a result that is not one of the hook's actions (``InvalidDecision``),
    is kept in ``error`` and reported with the policy's name, the hook, the CPU and the
    simulated time.
    """

    cdef object _schedule
    cdef object _softirq
    cdef public object hook_failed

    def __init__(self, str name, schedule, softirq, bint backlog_threads=False,
                 bint force_irqthreads=False):
        CompiledPolicy.__init__(self, name, backlog_threads, force_irqthreads)
        self._schedule = schedule
        self._softirq = softirq
        self.hook_failed = None

    cdef int backlog_schedule(self, int this_cpu, int target_cpu, long long now_ns,
                              int last_batch) noexcept:
        if self._schedule is None:
            return CompiledPolicy.backlog_schedule(self, this_cpu, target_cpu, now_ns, last_batch)
        try:
            r = self._schedule(this_cpu, target_cpu, now_ns, last_batch)
            if r is None:
                return CompiledPolicy.backlog_schedule(self, this_cpu, target_cpu, now_ns,
                                                       last_batch)
            return self._check(r, _ACTIONS)
        except BaseException as e:
            self.error = e
            self.hook_failed = "napikit_backlog_schedule"
            return DECISION_FAILED

    cdef int softirq_from_hardirq(self, int cpu, bint force_irqthreads, long long now_ns) noexcept:
        if self._softirq is None:
            return CompiledPolicy.softirq_from_hardirq(self, cpu, force_irqthreads, now_ns)
        try:
            r = self._softirq(cpu, force_irqthreads, now_ns)
            if r is None:
                return CompiledPolicy.softirq_from_hardirq(self, cpu, force_irqthreads, now_ns)
            return self._check(r, _SOFTIRQ_ACTIONS)
        except BaseException as e:
            self.error = e
            self.hook_failed = "napikit_softirq_from_hardirq"
            return DECISION_FAILED

    cdef int _check(self, object r, object allowed) except? -3:
        # Every value is checked here, so no result can pass for the core's failure
        # sentinel (DECISION_FAILED); the core never sees an invalid Python decision.
        if isinstance(r, bool) or not isinstance(r, int) or r not in allowed:
            kind = type(allowed[0]).__name__
            raise InvalidDecision(
                f"returned {r!r}, not {'an' if kind[0] in 'AEIOU' else 'a'} {kind}; allowed: "
                + ", ".join(f"{kind}.{a.name} ({int(a)})" for a in allowed)
            )
        return r
