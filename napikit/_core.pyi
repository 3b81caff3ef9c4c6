"""Type stub of napikit/_core.pyx (compiled): the simulation core."""

from collections.abc import Iterable
from typing import Any

from napikit.config import Config
from napikit.decision import CompiledPolicy

#: CPU time buckets, task kinds and task states as results name them.
BUCKET_NAMES: tuple[str, ...]
TASK_KINDS: tuple[str, ...]
TASK_STATES: tuple[str, ...]
COST_NAMES: tuple[str, ...]
SAMPLE_COLUMNS: tuple[str, ...]
#: A trace record's ``struct`` format, its kinds and what out-of-line time is for.
TRACE_RECORD_FORMAT: str
TRACE_KINDS: tuple[str, ...]
TRACE_WHAT: tuple[str, ...]
#: The fields of a switch-log record (:meth:`Sim.switch_log`).
SWITCH_LOG_FIELDS: tuple[str, ...]

def histogram_summary(values: Iterable[int]) -> dict[str, int]:
    """A latency histogram's summary (count, mean, percentiles, max) of ``values``."""

class Sim:
    """One run of the model: build it, call :meth:`run` once, read :meth:`raw_results`."""

    #: The policy fault that ended the run (a dict), else ``None``.
    @property
    def fault(self) -> dict[str, Any] | None: ...
    def __init__(self, config: Config, policy: CompiledPolicy) -> None: ...
    def run(self) -> dict[str, Any] | None:
        """Run to the end; ``None``, or the fault if the policy misbehaved.

        Raises ``MemoryError`` (one line naming what) when a queue or the packet pool
        cannot grow, and ``KeyboardInterrupt`` on Ctrl-C (looked for every 8192 events).
        """
    def record_trace(self, start_ns: int, end_ns: int, max_events: int) -> None:
        """Before :meth:`run`: record a timeline of ``[start_ns, end_ns]``, at most
        ``max_events`` records (napikit._core_traced only; napikit._core raises
        ``RuntimeError``)."""
    def trace_records(self) -> tuple[bytes, bool]:
        """The records (:data:`TRACE_RECORD_FORMAT` each) and whether the buffer filled."""
    def task_names(self) -> list[str]:
        """Every task's name as the kernel names its thread, in task order."""
    def record_switches(self, n: int) -> None:
        """Before :meth:`run`: log the first ``n`` context switches (``sched_switch``),
        for checking a scheduler class against a schedule computed by hand."""
    def switch_log(self) -> list[dict[str, int]]:
        """The switches logged, each a dict of :data:`SWITCH_LOG_FIELDS` (task indices
        as in ``raw_results()["tasks"]``, -1 idle; times and vruntimes in ns)."""
    def raw_results(self) -> dict[str, Any]:
        """Counters, per-CPU rows and histograms as plain Python values."""
