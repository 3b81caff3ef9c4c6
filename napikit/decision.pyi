"""Type stub of napikit/decision.pyx (compiled): the decision interface."""

import enum
from collections.abc import Callable

class Action(enum.IntEnum):
    """What ``napi_schedule_rps`` does with a backlog that needs polling."""

    SOFTIRQ = 0
    IPI = 1
    THREAD = 2
    NONE = 3

class SoftirqAction(enum.IntEnum):
    """What ``invoke_softirq`` does with softirqs pending at hard-IRQ exit."""

    INLINE = 0
    KSOFTIRQD = 1

class InvalidDecision(ValueError):
    """A Python policy's hook returned something that is not one of its actions."""

class CompiledPolicy:
    """A compiled backlog policy; the base class decides as the kernel's defaults do."""

    name: str
    backlog_threads: bool
    force_irqthreads: bool
    #: The exception of the decision that failed, else ``None``.
    error: BaseException | None
    def __init__(
        self, name: str, backlog_threads: bool = False, force_irqthreads: bool = False
    ) -> None: ...
    def decide_backlog_schedule(
        self, this_cpu: int, target_cpu: int, now_ns: int = 0, last_batch: int = 0
    ) -> int:
        """The backlog decision (an :class:`Action` value) for one call."""
    def decide_softirq_from_hardirq(
        self, cpu: int, force_irqthreads: bool, now_ns: int = 0
    ) -> int:
        """The hard-IRQ-exit decision (a :class:`SoftirqAction` value) for one call."""

class PythonPolicy(CompiledPolicy):
    """Adapter for a policy written in Python against the decision hooks."""

    #: The hook whose implementation failed, else ``None``.
    hook_failed: str | None
    def __init__(
        self,
        name: str,
        schedule: Callable[[int, int, int, int], object] | None,
        softirq: Callable[[int, bool, int], object] | None,
        backlog_threads: bool = False,
        force_irqthreads: bool = False,
    ) -> None: ...
