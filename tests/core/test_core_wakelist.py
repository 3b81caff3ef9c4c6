"""Remote wake-ups through ``ttwu_queue_wakelist`` (kernel-model.md B.10.3): waking a
task on an idle CPU queues it on that CPU's wakelist and sends a call-function IPI
(``send_call_function_single_ipi``), unless the CPU idles polling."""

from __future__ import annotations

from typing import Any

import attrs

import napikit
from napikit import Config, scenarios
from napikit._core import Sim


def _raw(config: Config) -> dict[str, Any]:
    """The core's raw counters of one run."""
    sim = Sim(config, napikit.Simulation(config).decision)
    assert sim.run() is None
    return sim.raw_results()


def _paced_seed_lo(**kernel) -> Config:
    """SEED-LO with its sender paced at 50 kpps: the reader on CPU 1 has drained its
    socket and sleeps, CPU 1 idle, when each datagram arrives."""
    base = scenarios.get("seed-lo").config
    return base.evolve(packets=2_000,
                       workloads=(attrs.evolve(base.workloads[0], rate_pps=50_000),),
                       kernel=attrs.evolve(base.kernel, **kernel))


def test_waking_a_reader_on_an_idle_cpu_sends_a_wakelist_ipi():
    """Each datagram wakes the reader on idle CPU 1 from CPU 0's softirq: one wakelist
    IPI per wake-up, none of them an RPS IPI; CPU 1's hard-IRQ time is exactly their
    handlers (sched_ttwu_pending), and CPU 0 pays their sends on top of the wake-ups."""
    config = _paced_seed_lo()
    raw = _raw(config)
    c = config.costs
    assert raw["ipis"] == 0
    assert raw["wakeup_ipis"] == 2_000
    assert raw["cpu_time"][1]["hardirq"] == raw["wakeup_ipis"] * c.ipi_handler_ns
    free = _raw(config.evolve(costs=attrs.evolve(c, ipi_send_ns=0)))
    assert _busy(raw, 0) - _busy(free, 0) == 2_000 * c.ipi_send_ns


def _busy(raw: dict[str, Any], cpu: int) -> int:
    return sum(v for k, v in raw["cpu_time"][cpu].items() if k not in ("idle", "offline"))


def test_a_polling_cpu_is_woken_without_an_ipi():
    """With cpuidle="poll" the same wake-ups need no interrupt: no wakelist IPI, no
    hard-IRQ time on CPU 1."""
    raw = _raw(_paced_seed_lo(cpuidle="poll"))
    assert raw["wakeup_ipis"] == 0
    assert raw["cpu_time"][1]["hardirq"] == 0
    assert raw["delivered"] == 2_000


def test_a_busy_cpu_is_woken_without_an_ipi():
    """A target running a task is woken by the waker on its run queue (ttwu_queue_cond
    is false when it runs something): with a closed-loop sender on each CPU, each
    reader's CPU is nearly always running its sender, so few wake-ups need an IPI."""
    base = scenarios.get("seed-lo").config
    busy = base.evolve(packets=2_000, workloads=(
        attrs.evolve(base.workloads[0], senders=(0, 1), receivers=(1, 0)),))
    raw = _raw(busy)
    assert raw["wakeup_ipis"] < raw["delivered"] // 10
