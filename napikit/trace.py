"""Timelines: what each CPU ran, and when, as a Perfetto trace; ``napikit run --trace``.

The compiled core records the run into a bounded buffer of C records (core/trace.pxi)
when asked (``Simulation(config, trace=TraceOptions(...))``): every timed step (a
task's work, a softirq's, a context switch), the CPU time charged out of line (hard
IRQs, an IPI's send cost, a wake-up's), every IPI with the event that lands it, every
``try_to_wake_up``, every change of a task's state, every switch and the backlog
lengths. Recording changes nothing in the run: the result is byte-identical with and
without it. :class:`Timeline` reads the records; :meth:`Timeline.write_perfetto`
writes the trace with the ``perfetto`` package's protobuf classes (``napikit[trace]``):

- per CPU a track ``CPU N`` with one slice per step: the task's name as the kernel
  names its thread (``udp-send/0``, ``ksoftirqd/1``, ``backlog_napi/1``), ``NET_RX``
  for softirq work at ``irq_exit`` and ``NET_RX (ksoftirqd/1)`` for softirq work in a
  task, ``schedule`` for a switch; each annotated with its CPU-time bucket and the CPU
  time it was charged (``cpu_ns``: its span less the hard-IRQ time taken out of it);
  a ``sched_switch`` instant at each switch;
- under it ``CPU N irq``: the out-of-line time, drawn one after another from the
  moment it was charged (the model charges it at once and pushes the step's end back;
  ``__irq_exit_rcu`` and the IPI handlers name the slices);
- under it a counter ``CPU N backlog``: ``input_pkt_queue`` + ``process_queue``;
- per task a track with its states (Running, Runnable, Sleeping, Waking, Parked);
- flows: each IPI from the instant it leaves its sender to its handler on the target,
  each wake-up from the waker's CPU to the woken task's Runnable slice.

Slices are clipped to the window; a slice that began before it starts at its start.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import attrs
from attrs import frozen

from napikit._core import BUCKET_NAMES, TASK_STATES, TRACE_KINDS, TRACE_RECORD_FORMAT, TRACE_WHAT
from napikit.errors import ConfigError, NapikitError

if TYPE_CHECKING:
    from perfetto.protos.perfetto.trace.perfetto_trace_pb2 import TracePacket

#: Records a trace holds at most by default (40 bytes each in memory).
MAX_EVENTS = 1_000_000
#: A written trace is at most this many bytes per record, plus :data:`HEADER_BYTES`
#: (a record becomes at most two packets: a slice's begin and end).
BYTES_PER_RECORD = 200
#: Track descriptors and the first packet, per CPU and per task.
HEADER_BYTES_PER_TRACK = 120

_RECORD = struct.Struct(TRACE_RECORD_FORMAT)
_LEVEL_TASK, _LEVEL_SOFTIRQ, _LEVEL_SWITCH = 1, 2, 3
#: Slice names of out-of-line time, by what it was for (core/defs.pxi TW_*).
WHAT_NAMES = {
    "other": "irq", "nic_irq": "irq: nic", "hrtimer_irq": "irq: hrtimer",
    "tick": "irq: tick", "ipi_rps": "IPI: rps_trigger_softirq",
    "ipi_wake": "IPI: sched_ttwu_pending", "ipi_defer": "IPI: trigger_rx_softirq",
    "ipi_send": "send IPI", "csd_queue": "queue csd", "wakeup": "try_to_wake_up",
    "netif_rx": "netif_rx", "skb_free": "skb free", "hotplug": "dev_cpu_dead",
}
_IPI_HANDLERS = frozenset({"ipi_rps", "ipi_wake", "ipi_defer"})
_STATE_NAMES = {"running": "Running", "runnable": "Runnable", "sleeping": "Sleeping",
                "waking": "Waking", "parked": "Parked"}
_SEQUENCE = 1
# Flow ids: an IPI's is the seq of its arrival event (< 2**62); a wake-up's is above.
_WAKE_FLOW = 1 << 62


def _non_negative(_inst: Any, att: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and (not isinstance(value, int) or isinstance(value, bool)
                              or value < 0):
        raise ConfigError(f"trace.{att.name}", "an integer number of ns >= 0", value)


def _max_events(_inst: Any, att: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 2**31:
        raise ConfigError(f"trace.{att.name}", "an integer from 1 to 2**31", value)


@frozen
class TraceOptions:
    """What to record: the window ``[start_ns, end_ns]`` (``None``: to the run's end)
    and at most ``max_events`` records (past them recording stops, flagged)."""

    start_ns: int = attrs.field(default=0, validator=_non_negative)
    end_ns: int | None = attrs.field(default=None, validator=_non_negative)
    max_events: int = attrs.field(default=MAX_EVENTS, validator=_max_events)

    def __attrs_post_init__(self) -> None:
        if self.end_ns is not None and self.end_ns < self.start_ns:
            raise ConfigError("trace window", "START:END with START <= END",
                              f"{self.start_ns}:{self.end_ns}")


class Record(NamedTuple):
    """One C record (core/trace.pxi says what each kind's fields hold); a step's
    ``a`` is its bucket plus 256 times its level, its ``id`` the CPU time it was
    charged."""

    kind: str
    ts: int
    dur: int
    id: int
    at: int  #: when the core made it
    cpu: int
    a: int
    b: int


class Slice(NamedTuple):
    """A slice on a track, clipped to the window."""

    track: str
    name: str
    start_ns: int
    dur_ns: int
    bucket: str | None = None  #: the CPU-time bucket it was charged to (CPU tracks)


@frozen
class Timeline:
    """A recorded run: its records, the tasks' names, the window, and whether the
    buffer filled (``truncated``: then ``end_ns`` is when the last record was made,
    before the window's end)."""

    ncpus: int
    tasks: tuple[str, ...]
    start_ns: int
    end_ns: int  #: the window's end, at most the run's end
    truncated: bool
    data: bytes = attrs.field(repr=False)

    def __len__(self) -> int:
        return len(self.data) // _RECORD.size

    def records(self) -> Iterator[Record]:
        """The records in the order the core made them."""
        for ts, dur, ident, at, kind, cpu, a, b in _RECORD.iter_unpack(self.data):
            yield Record(TRACE_KINDS[kind], ts, dur, ident, at, cpu, a, b)

    def inside(self, t: int) -> bool:
        """Whether the instant ``t`` is in the window (both ends included)."""
        return self.start_ns <= t <= self.end_ns

    def _clip(self, start: int, dur: int) -> tuple[int, int] | None:
        lo, hi = max(start, self.start_ns), min(start + dur, self.end_ns)
        return (lo, hi - lo) if hi > lo else None

    def slices(self) -> Iterator[Slice]:
        """Steps on ``CPU N`` and out-of-line time on ``CPU N irq``, clipped."""
        for r in self.records():
            if r.kind == "step":
                span = self._clip(r.ts, r.dur)
                if span:
                    yield Slice(f"CPU {r.cpu}", self._step_name(r), *span,
                                BUCKET_NAMES[r.a & 255])
            elif r.kind == "charge":
                span = self._clip(r.ts, r.dur)
                if span:
                    yield Slice(f"CPU {r.cpu} irq", WHAT_NAMES[TRACE_WHAT[r.b]], *span,
                                BUCKET_NAMES[r.a])

    def cpu_time(self) -> list[dict[str, int]]:
        """Per CPU, the CPU time by bucket counted in the window as the result and
        its time series count it: a step's when it ends (less the hard-IRQ time taken
        out of it), out-of-line time when it is charged. Over the whole run it is the
        result's ``cpu_time`` (without idle and offline)."""
        out = [dict.fromkeys(BUCKET_NAMES, 0) for _ in range(self.ncpus)]
        for r in self.records():
            if not self.inside(r.at):
                continue
            if r.kind == "step":
                out[r.cpu][BUCKET_NAMES[r.a & 255]] += r.id
            elif r.kind == "charge":
                out[r.cpu][BUCKET_NAMES[r.a]] += r.dur
        return out

    def counts(self) -> dict[str, int]:
        """Events in the window: IPIs by kind (``ipis``: RPS, as the result counts
        them), wake-ups and context switches."""
        out = {"ipis": 0, "wakeup_ipis": 0, "defer_ipis": 0, "wakeups": 0,
               "context_switches": 0}
        key = {"ipi_rps": "ipis", "ipi_wake": "wakeup_ipis", "ipi_defer": "defer_ipis"}
        for r in self.records():
            if not self.inside(r.at):
                continue
            if r.kind == "ipi":
                out[key[TRACE_WHAT[r.b]]] += 1
            elif r.kind == "wake":
                out["wakeups"] += 1
            elif r.kind == "switch":
                out["context_switches"] += 1
        return out

    def _step_name(self, r: Record) -> str:
        level = r.a >> 8
        if level == _LEVEL_SOFTIRQ:
            # handle_softirqs at irq_exit, or in a task (ksoftirqd's loop, bh_enable)
            return f"NET_RX ({self.tasks[r.b]})" if r.b >= 0 else "NET_RX"
        if level == _LEVEL_SWITCH:
            return "schedule"
        return self.tasks[r.b] if r.b >= 0 else "task"

    def write_perfetto(self, path: str | Path) -> int:
        """Write the timeline as a Perfetto trace (open it at https://ui.perfetto.dev);
        return its size in bytes. Needs the ``perfetto`` package (``napikit[trace]``)."""
        require_perfetto()
        from perfetto.trace_builder.proto_builder import TraceProtoBuilder

        builder = TraceProtoBuilder()
        _Writer(self).write(builder.add_packet)
        data = builder.serialize()
        Path(path).write_bytes(data)
        return len(data)


def require_perfetto() -> None:
    """Fail with one line, before a run, if the trace could not be written."""
    try:
        import perfetto.trace_builder.proto_builder  # noqa: F401
    except ImportError:
        raise NapikitError(
            "writing a trace needs the perfetto package: pip install 'napikit[trace]'"
        ) from None


def timeline(sim: Any, ncpus: int, run_end_ns: int, options: TraceOptions) -> Timeline:
    """The :class:`Timeline` of a :class:`napikit._core.Sim` that has run to
    ``run_end_ns``."""
    data, truncated = sim.trace_records()
    end = run_end_ns if options.end_ns is None else min(run_end_ns, options.end_ns)
    if truncated and data:
        # the records stop at the last one made: the timeline ends there
        end = min(end, _RECORD.unpack_from(data, len(data) - _RECORD.size)[3])
    return Timeline(ncpus=ncpus, tasks=tuple(sim.task_names()),
                    start_ns=options.start_ns, end_ns=max(end, options.start_ns),
                    truncated=truncated, data=data)


# Track uuids: a kind in the high bits, the CPU or task below.
def _cpu_track(cpu: int) -> int:
    return (1 << 32) + cpu


def _irq_track(cpu: int) -> int:
    return (2 << 32) + cpu


def _backlog_track(cpu: int) -> int:
    return (3 << 32) + cpu


def _task_track(task: int) -> int:
    return (4 << 32) + task


# Order of events at one instant: a slice ends before the next begins; instants and
# counters come after the begin, inside the slice that starts there.
_END, _BEGIN, _INSTANT, _COUNTER = 0, 1, 2, 3


class _Writer:
    """Turns a :class:`Timeline` into TracePackets, sorted by time."""

    def __init__(self, tl: Timeline) -> None:
        self.tl = tl
        # (ts, order, n, fields): n keeps equal keys in the order they were made
        self.events: list[tuple[int, int, int, dict[str, Any]]] = []

    def add(self, ts: int, order: int, **fields: Any) -> None:
        self.events.append((ts, order, len(self.events), fields))

    def slice(self, track: int, name: str, start: int, dur: int, *,
              flow_in: int | None = None, **args: Any) -> None:
        self.add(start, _BEGIN, track=track, type="begin", name=name, flow_in=flow_in,
                 args=args)
        self.add(start + dur, _END, track=track, type="end")

    def write(self, new_packet: Callable[[], TracePacket]) -> None:
        """Fill the builder's packets: the track descriptors, then the events."""
        tl = self.tl
        self.descriptors(new_packet)
        records = list(tl.records())
        # the IPIs whose handlers ran in the window end their flows there
        landed = {r.id for r in records if r.kind == "charge"
                  and TRACE_WHAT[r.b] in _IPI_HANDLERS and tl.inside(r.ts)}
        sent = {r.id for r in records if r.kind == "ipi" and r.id in landed
                and tl.inside(r.ts + r.dur)}
        for r in records:
            if r.kind == "step":
                span = tl._clip(r.ts, r.dur)
                if span:
                    args: dict[str, Any] = {"bucket": BUCKET_NAMES[r.a & 255],
                                            "cpu_ns": r.id}
                    if r.a >> 8 == _LEVEL_SOFTIRQ and r.b >= 0:
                        args["task"] = tl.tasks[r.b]
                    self.slice(_cpu_track(r.cpu), tl._step_name(r), *span, **args)
            elif r.kind == "charge":
                self.charge(r, sent)
            elif r.kind == "ipi":
                at = r.ts + r.dur
                if tl.inside(at):
                    self.add(at, _INSTANT, track=_cpu_track(r.cpu), type="instant",
                             name=f"IPI -> CPU {r.a}", flow_out=r.id if r.id in sent else None,
                             args={"kind": TRACE_WHAT[r.b]})
            elif r.kind == "switch":
                if tl.inside(r.ts):
                    self.add(r.ts, _INSTANT, track=_cpu_track(r.cpu), type="instant",
                             name="sched_switch", args={"prev": self.task(r.a),
                                                        "next": self.task(r.b)})
            elif r.kind == "backlog":
                if tl.inside(r.ts):
                    self.add(r.ts, _COUNTER, track=_backlog_track(r.cpu), type="counter",
                             value=r.a)
        self.states(records)
        self.events.sort(key=lambda e: e[:3])
        for ts, _order, _n, fields in self.events:
            self.packet(new_packet(), ts, fields)

    def task(self, i: int) -> str:
        return self.tl.tasks[i] if i >= 0 else "swapper"

    def charge(self, r: Record, sent: set[int]) -> None:
        tl = self.tl
        what = TRACE_WHAT[r.b]
        flow_in = r.id if what in _IPI_HANDLERS and r.id in sent else None
        name = WHAT_NAMES[what]
        if r.dur == 0:
            if tl.inside(r.ts):
                self.add(r.ts, _INSTANT, track=_irq_track(r.cpu), type="instant", name=name,
                         flow_in=flow_in, args={"bucket": BUCKET_NAMES[r.a]})
            return
        span = tl._clip(r.ts, r.dur)
        if span:
            self.slice(_irq_track(r.cpu), name, *span, flow_in=flow_in,
                       bucket=BUCKET_NAMES[r.a])

    def states(self, records: list[Record]) -> None:
        """Each task's states as slices; a wake-up's flow ends at its Runnable."""
        tl = self.tl
        state: dict[int, tuple[str, int, int | None]] = {}  # task -> (state, since, flow)
        waking: dict[int, int] = {}  # task -> flow id of the wake-up not yet landed
        dangling: set[int] = set()   # wake-ups that never made their task runnable
        for n, r in enumerate(records):
            if r.kind == "wake" and r.cpu >= 0 and tl.inside(r.ts):
                flow = _WAKE_FLOW + n
                if r.a in waking:
                    dangling.add(waking[r.a])
                waking[r.a] = flow
                self.add(r.ts, _INSTANT, track=_cpu_track(r.cpu), type="instant",
                         name=f"wake {tl.tasks[r.a]}", flow_out=flow, args={})
            elif r.kind == "state":
                new = TASK_STATES[r.b]
                landed = waking.pop(r.a, None) if new == "runnable" else None
                self.close(state.get(r.a), r.a, r.ts)
                state[r.a] = (new, r.ts, landed)
        for task, current in state.items():
            self.close(current, task, tl.end_ns)
        dangling.update(waking.values())  # not yet runnable when the window ended
        if dangling:
            for e in self.events:
                if e[3].get("flow_out") in dangling:
                    e[3]["flow_out"] = None

    def close(self, current: tuple[str, int, int | None] | None, task: int, end: int) -> None:
        if current is None or current[0] not in _STATE_NAMES:
            return
        name, since, flow = current
        span = self.tl._clip(since, end - since)
        if span:
            self.slice(_task_track(task), _STATE_NAMES[name], *span, flow_in=flow)
        elif flow is not None:
            # a zero-length Runnable: the flow ends on an instant there
            self.add(since, _INSTANT, track=_task_track(task), type="instant",
                     name=_STATE_NAMES[name], flow_in=flow, args={})

    def descriptors(self, new_packet: Callable[[], TracePacket]) -> None:
        tl = self.tl
        tracks: list[tuple[int, str, int | None, bool]] = []
        for cpu in range(tl.ncpus):
            tracks.append((_cpu_track(cpu), f"CPU {cpu}", None, False))
            tracks.append((_irq_track(cpu), f"CPU {cpu} irq", _cpu_track(cpu), False))
            tracks.append((_backlog_track(cpu), f"CPU {cpu} backlog", _cpu_track(cpu), True))
        for i, name in enumerate(tl.tasks):
            tracks.append((_task_track(i), name, None, False))
        for uuid, name, parent, counter in tracks:
            p = new_packet()
            p.trusted_packet_sequence_id = _SEQUENCE
            p.track_descriptor.uuid = uuid
            p.track_descriptor.name = name
            if parent is not None:
                p.track_descriptor.parent_uuid = parent
            if counter:
                p.track_descriptor.counter.SetInParent()

    @staticmethod
    def packet(p: TracePacket, ts: int, fields: dict[str, Any]) -> None:
        p.timestamp = ts
        p.trusted_packet_sequence_id = _SEQUENCE
        ev = p.track_event
        ev.track_uuid = fields["track"]
        kind = fields["type"]
        if kind == "end":
            ev.type = ev.TYPE_SLICE_END
            return
        if kind == "counter":
            ev.type = ev.TYPE_COUNTER
            ev.counter_value = fields["value"]
            return
        ev.type = ev.TYPE_SLICE_BEGIN if kind == "begin" else ev.TYPE_INSTANT
        ev.name = fields["name"]
        if fields.get("flow_in") is not None:
            ev.terminating_flow_ids.append(fields["flow_in"])
        if fields.get("flow_out") is not None:
            ev.flow_ids.append(fields["flow_out"])
        for key, value in fields["args"].items():
            ann = ev.debug_annotations.add()
            ann.name = key
            if isinstance(value, int):
                ann.int_value = value
            else:
                ann.string_value = value
