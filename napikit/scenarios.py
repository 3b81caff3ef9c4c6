"""The named reference scenarios (PERF-A, SEED-LO, ...), ready to run.

Each is a :class:`Scenario` holding a complete :class:`~napikit.config.Config`; the
policy is the run's to choose (``scenario.config.evolve(policy=...)``).
"""

from __future__ import annotations

import attrs
from attrs import frozen

from napikit.config import Config, CostModel, KernelParams, LoopbackUdp, NicIrq
from napikit.errors import ConfigError


@frozen
class Scenario:
    """A named, documented configuration."""

    name: str
    description: str
    config: Config


#: PERF-A's costs: every cost not named by the scenario is 0.
_PERF_A_COSTS = CostModel(
    netif_rx_ns=100, nic_irq_ns=0, protocol_rx_ns=1000, udp_sendmsg_ns=0, udp_recvmsg_ns=0,
    ipi_send_ns=200, ipi_latency_ns=1500, ipi_handler_ns=300, context_switch_ns=0,
    wakeup_ns=0, wakeup_latency_ns=0, softirq_entry_ns=0, hrtimer_irq_ns=0, skb_free_ns=0,
)


def _perf_a(rate_pps: float) -> Config:
    return Config(
        ncpus=4,
        workloads=(NicIrq(cpu=0, rate_pps=rate_pps, arrival="poisson", flows=1024,
                          flow_dist="uniform", rps_cpus=(0, 1, 2, 3)),),
        costs=_PERF_A_COSTS,
        packets=1_000_000,
    )


def _seed(ncpus: int = 2, rps_cpus: tuple[int, ...] = (), flows: int = 1,
          rt: bool = False) -> Config:
    return Config(
        ncpus=ncpus,
        workloads=(LoopbackUdp(senders=(0,), receivers=(1,), flows=flows, rps_cpus=rps_cpus),),
        kernel=KernelParams(preempt_rt=rt),
        packets=200_000,
    )


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario(
            "perf-a",
            "PERF-A: a non-NAPI NIC on CPU 0, Poisson 2 Mpps, 1024 flows spread by RPS over "
            "4 CPUs, 1,000,000 packets (engine speed yardstick)",
            _perf_a(2_000_000.0),
        ),
        Scenario(
            "perf-a-overload",
            "PERF-A at 5 Mpps: CPU 0 is overloaded and about 30 % of packets drop at the "
            "backlog limit",
            _perf_a(5_000_000.0),
        ),
        Scenario(
            "seed-lo",
            "SEED-LO: loopback UDP, RPS off, closed-loop sender on CPU 0, receiver on CPU 1",
            _seed(),
        ),
        Scenario(
            "seed-rps",
            "SEED-RPS: as SEED-LO, with lo's rps_cpus steering the flow to CPU 1",
            _seed(rps_cpus=(1,)),
        ),
        Scenario(
            "seed-rps-spread",
            "SEED-RPS variant: 4 CPUs, 8 flows spread by RPS over all of them",
            _seed(ncpus=4, rps_cpus=(0, 1, 2, 3), flows=8),
        ),
        Scenario(
            "seed-rt",
            "SEED-RT: SEED-RPS on a PREEMPT_RT kernel (forced-threaded interrupts, "
            "preemptible BH sections): count the ksoftirqd wake-ups on the backlog path",
            _seed(rps_cpus=(1,), rt=True),
        ),
    )
}

#: What ``napikit compare`` runs by default: the kernel change's story.
DEFAULT_COMPARE = ("seed-lo", "seed-rps")


#: The scenarios that scale with the CPU count (see :func:`at_ncpus`).
SCALABLE = ("seed-lo", "seed-rps", "seed-rt")


def at_ncpus(name: str, ncpus: int) -> Config:
    """Scenario ``name`` on ``ncpus`` CPUs (even, >= 2), as the study and the claims
    tests run it: SEED-LO, SEED-RPS and SEED-RT get one sender/receiver pair per two
    CPUs (see :func:`scale_pairs`), so each pair is the 2-CPU scenario. Other scenarios
    only change ``ncpus``. On 2 CPUs this is the shipped scenario.
    """
    config = get(name).config
    if name.lower() not in SCALABLE:
        return config.evolve(ncpus=ncpus)
    return scale_pairs(config, ncpus)


def scale_pairs(config: Config, ncpus: int) -> Config:
    """``config``, whose one workload is a :class:`LoopbackUdp` pair (sender on CPU 0,
    receiver on CPU 1), on ``ncpus`` CPUs (even, >= 2) with a copy of the pair per two
    CPUs: sender on CPU ``2i``, receiver on ``2i + 1``; with RPS, pair ``i``'s flow is
    steered to ``2i + 1``. Each pair sends ``config.packets`` packets of its own."""
    if isinstance(ncpus, bool) or not isinstance(ncpus, int) or ncpus < 2 or ncpus % 2:
        raise ConfigError("ncpus", "an even number >= 2 for a SEED scenario", ncpus)
    base = config.workloads[0] if len(config.workloads) == 1 else None
    if not isinstance(base, LoopbackUdp) or config.packets is None:
        raise ConfigError("scale_pairs", "a base whose one workload is a LoopbackUdp pair, "
                          "with a packet count", [type(w).__name__ for w in config.workloads])
    pairs = tuple(
        attrs.evolve(base, senders=(2 * i,), receivers=(2 * i + 1,),
                     rps_cpus=(2 * i + 1,) if base.rps_cpus else ())
        for i in range(ncpus // 2)
    )
    return config.evolve(ncpus=ncpus, workloads=pairs, packets=config.packets * len(pairs))


def names() -> list[str]:
    """The scenario names, in the order of the reference list."""
    return list(SCENARIOS)


def get(name: str) -> Scenario:
    """The scenario called ``name`` (case-insensitive, ``SEED-LO`` = ``seed-lo``)."""
    try:
        return SCENARIOS[name.lower()]
    except (KeyError, AttributeError):
        raise ConfigError("scenario", "one of: " + ", ".join(SCENARIOS), name) from None
