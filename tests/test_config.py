"""Configuration: kernel defaults, value semantics, and bad input failing with the field
named in one line (architecture.md: "bad configuration fails before the run starts")."""

from __future__ import annotations

import json

import attrs
import pytest

import napikit
from napikit import (
    Config,
    ConfigError,
    CostModel,
    CpuHotplug,
    Cyclictest,
    KernelParams,
    LoopbackUdp,
    NapikitError,
    NicIrq,
    Simulation,
)


def _error(fn, *args, **kwargs) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        fn(*args, **kwargs)
    message = str(info.value)
    assert "\n" not in message, "a ConfigError is one line"
    return info.value


# ----------------------------------------------------------------- kernel defaults


def test_kernel_defaults_are_linux_defaults():
    """netdev_max_backlog 1000, dev_weight 64, netdev_budget 300 and the kernel's other
    defaults (kernel-model.md B.8)."""
    k = KernelParams()
    assert (k.netdev_max_backlog, k.dev_weight, k.netdev_budget) == (1000, 64, 300)
    assert (k.dev_weight_rx_bias, k.dev_rx_weight) == (1, 64)
    assert (k.flow_limit_table_len, k.flow_limit_cpu_bitmap) == (4096, ())
    assert (k.max_softirq_restart, k.max_softirq_time_ms) == (10, 2)
    assert k.force_irqthreads is False


def test_cpuidle_defaults_keep_a_halted_idle_cpu_that_wakes_at_once():
    """cpuidle defaults to "halt" with no exit latency (an interrupt wakes an idle CPU
    at once, the model before idle states), and haltpoll's window to the kernel's
    guest_halt_poll_ns, 200 us."""
    k = KernelParams()
    assert (k.cpuidle, k.idle_exit_latency_ns, k.haltpoll_ns) == ("halt", 0, 200_000)


def test_preempt_defaults_to_full_the_model_before_the_field():
    """preempt defaults to "full": the core behaved so before preemption models, and
    PREEMPT_RT implies it."""
    assert KernelParams().preempt == "full"
    assert KernelParams(preempt_rt=True).preempt == "full"
    for model in ("none", "voluntary", "full"):
        assert KernelParams(preempt=model).preempt == model


def test_unknown_preempt_model_lists_the_models():
    """preempt names one of PREEMPT_DYNAMIC's three models."""
    msg = str(_error(KernelParams, preempt="lazy"))
    assert msg.startswith("kernel.preempt:") and "none, voluntary, full" in msg


@pytest.mark.parametrize("model", ["none", "voluntary"])
def test_preempt_rt_requires_full_preemption(model):
    """CONFIG_PREEMPT_RT implies full preemption: another model is an error."""
    msg = str(_error(KernelParams, preempt_rt=True, preempt=model))
    assert msg.startswith("kernel.preempt:") and "PREEMPT_RT" in msg


def test_deferred_frees_default_to_6_12_udp_with_the_kernel_sysctl():
    """udp_skb_defer_free is off (6.12's UDP frees inline); skb_defer_max is the
    sysctl's 64 (0 allowed: every free inline); a free costs 100 ns."""
    k = KernelParams()
    assert (k.udp_skb_defer_free, k.skb_defer_max) == (False, 64)
    assert KernelParams(skb_defer_max=0).skb_defer_max == 0
    assert CostModel().skb_free_ns == 100


def test_skb_defer_max_is_a_non_negative_int_sysctl():
    """net.core.skb_defer_max: 0..INT_MAX."""
    assert str(_error(KernelParams, skb_defer_max=-1)).startswith("kernel.skb_defer_max:")
    assert str(_error(KernelParams, skb_defer_max=2**31)).startswith("kernel.skb_defer_max:")


def test_unknown_cpuidle_state_lists_the_states():
    """cpuidle names one of the three modelled idle states."""
    msg = str(_error(KernelParams, cpuidle="mwait"))
    assert msg.startswith("kernel.cpuidle:") and "halt, poll, haltpoll" in msg


@pytest.mark.parametrize("hz, usecs", [(1000, 2000), (250, 8000), (100, 20000)])
def test_budget_usecs_default_is_two_jiffies(hz, usecs):
    """netdev_budget_usecs defaults to 2 * USEC_PER_SEC / HZ (2000 at 1000 Hz, 8000 at 250)."""
    assert KernelParams(hz=hz).budget_usecs == usecs


def test_budget_usecs_set_explicitly_wins():
    """An explicit netdev_budget_usecs is used as it is, whatever HZ."""
    assert KernelParams(hz=250, netdev_budget_usecs=300).budget_usecs == 300


def test_dev_rx_weight_is_weight_times_bias():
    """dev_rx_weight = dev_weight * dev_weight_rx_bias (proc_do_dev_weight)."""
    assert KernelParams(dev_weight=16, dev_weight_rx_bias=3).dev_rx_weight == 48


def test_default_config_is_seed_lo_shaped():
    """The default config is 2 CPUs of loopback UDP from CPU 0 to CPU 1, RPS off,
    under softirq-ipi with the default costs and kernel."""
    c = Config()
    assert c.ncpus == 2 and c.policy == "softirq-ipi"
    assert c.workloads == (LoopbackUdp(senders=(0,), receivers=(1,), rps_cpus=()),)
    assert c.kernel == KernelParams() and c.costs == CostModel()


# ----------------------------------------------------------------- value semantics


def test_config_is_frozen():
    """A Config cannot be changed in place."""
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        Config().ncpus = 4


def test_evolve_returns_a_changed_copy():
    """evolve leaves the original as it was."""
    c = Config()
    d = c.evolve(ncpus=4, seed=7)
    assert (c.ncpus, c.seed) == (2, 1) and (d.ncpus, d.seed) == (4, 7)


def test_evolve_validates_the_new_value():
    """evolve to an invalid value raises ConfigError like construction does."""
    assert str(_error(Config().evolve, ncpus=0)).startswith("ncpus:")


def test_evolve_rechecks_cpu_masks_against_ncpus():
    """Shrinking ncpus below a CPU a workload names is rejected."""
    c = Config(ncpus=4, workloads=[LoopbackUdp(senders=[0], receivers=[3])])
    assert str(_error(c.evolve, ncpus=2)).startswith("loopback_udp.receivers:")


def test_lists_become_tuples():
    """Lists are accepted for CPU lists and workloads and stored as tuples."""
    w = LoopbackUdp(senders=[0, 1], receivers=[2, 3], rps_cpus=[1])
    c = Config(ncpus=4, workloads=[w])
    assert w.senders == (0, 1) and w.rps_cpus == (1,)
    assert isinstance(c.workloads, tuple)


def test_policy_options_are_sorted_pairs():
    """A policy_options mapping is stored as sorted (name, value) pairs."""
    c = Config(policy_options={"b": 1, "a": 2})
    assert c.policy_options == (("a", 2), ("b", 1))
    assert c.options == {"a": 2, "b": 1}


def test_equal_configs_are_equal_and_hash_alike():
    """Configs are values: equal fields, equal and same hash."""
    assert Config(ncpus=3) == Config(ncpus=3)
    assert hash(Config(ncpus=3)) == hash(Config(ncpus=3))


def test_to_dict_is_complete_and_json_ready():
    """to_dict names every field, tags workloads with their kind, and is JSON-ready."""
    c = Config(ncpus=4, workloads=[NicIrq(cpu=1, rps_cpus=[2, 3]), LoopbackUdp()],
               policy="backlog-threads", policy_options={"fast_path": False})
    d = json.loads(json.dumps(c.to_dict()))
    assert set(d) == {a.name for a in attrs.fields(Config)}
    assert [w["kind"] for w in d["workloads"]] == ["NicIrq", "LoopbackUdp"]
    assert d["workloads"][0]["rps_cpus"] == [2, 3]
    assert d["policy_options"] == {"fast_path": False}
    assert set(d["kernel"]) == {a.name for a in attrs.fields(KernelParams)}
    assert set(d["costs"]) == {a.name for a in attrs.fields(CostModel)}


# ----------------------------------------------------------------- bad input


def test_config_error_is_a_value_error_and_a_napikit_error():
    """ConfigError can be caught as ValueError or as NapikitError, and keeps its parts."""
    err = _error(Config, ncpus=0)
    assert isinstance(err, ValueError) and isinstance(err, NapikitError)
    assert (err.field, err.got) == ("ncpus", 0)


@pytest.mark.parametrize("ncpus", [0, -1])
def test_ncpus_below_one_is_rejected(ncpus):
    """ncpus < 1 names the field and the allowed values."""
    msg = str(_error(Config, ncpus=ncpus))
    assert msg.startswith("ncpus:") and "from 1 to 8192" in msg and repr(ncpus) in msg


@pytest.mark.parametrize("ncpus", [True, 2.0, "2", None])
def test_ncpus_must_be_an_integer(ncpus):
    """A bool, float, string or None is not a CPU count."""
    assert str(_error(Config, ncpus=ncpus)).startswith("ncpus:")


@pytest.mark.parametrize("field", ["senders", "receivers", "rps_cpus"])
def test_loopback_cpu_beyond_ncpus_is_rejected(field):
    """A loopback CPU list naming an absent CPU names the list and ncpus."""
    w = {"senders": [0], "receivers": [1], "rps_cpus": []}
    w[field] = [5]
    msg = str(_error(Config, ncpus=2, workloads=[LoopbackUdp(**w)]))
    assert msg.startswith(f"loopback_udp.{field}:")
    assert "ncpus=2" in msg and "5" in msg


def test_nic_cpu_beyond_ncpus_is_rejected():
    """A NIC interrupting an absent CPU names nic_irq.cpu."""
    msg = str(_error(Config, ncpus=2, workloads=[NicIrq(cpu=2)]))
    assert msg.startswith("nic_irq.cpu:") and "ncpus=2" in msg


def test_nic_rps_cpu_beyond_ncpus_is_rejected():
    """A NIC's rps_cpus naming an absent CPU names nic_irq.rps_cpus."""
    msg = str(_error(Config, ncpus=4, workloads=[NicIrq(cpu=0, rps_cpus=[0, 1, 9])]))
    assert msg.startswith("nic_irq.rps_cpus:") and "ncpus=4" in msg


def test_flow_limit_bitmap_beyond_ncpus_is_rejected():
    """flow_limit_cpu_bitmap naming an absent CPU names the kernel field."""
    msg = str(_error(Config, ncpus=2, kernel=KernelParams(flow_limit_cpu_bitmap=[3])))
    assert msg.startswith("kernel.flow_limit_cpu_bitmap:") and "ncpus=2" in msg


@pytest.mark.parametrize("mask", [[-1], [0, 0], ["1"], [True]])
def test_cpu_lists_hold_distinct_cpu_numbers(mask):
    """Negative, repeated, string or bool CPU numbers are rejected."""
    assert str(_error(LoopbackUdp, rps_cpus=mask)).startswith("loopback_udp.rps_cpus:")


def test_senders_and_receivers_pair_up():
    """Each sender needs one receiver."""
    assert str(_error(LoopbackUdp, senders=[0, 1], receivers=[1])).startswith(
        "loopback_udp.receivers:")


@pytest.mark.parametrize("field", [a.name for a in attrs.fields(CostModel)])
def test_negative_cost_is_rejected(field):
    """Every cost names itself when negative: costs.<field>: must be an integer from 0 to ...."""
    msg = str(_error(CostModel, **{field: -1}))
    assert msg.startswith(f"costs.{field}:") and "from 0 to" in msg


def test_fractional_cost_is_rejected():
    """Costs are integer nanoseconds."""
    assert str(_error(CostModel, ipi_send_ns=1.5)).startswith("costs.ipi_send_ns:")


def test_zero_costs_are_allowed():
    """A cost may be 0 (PERF-A sets most of them so)."""
    assert CostModel(**{a.name: 0 for a in attrs.fields(CostModel)}).ipi_send_ns == 0


@pytest.mark.parametrize("rate", [0, -5, 0.5, float("nan"), float("inf")])
def test_nic_rate_must_be_positive_and_finite(rate):
    """A NIC rate below 1 pps, NaN or infinite names nic_irq.rate_pps."""
    assert str(_error(NicIrq, rate_pps=rate)).startswith("nic_irq.rate_pps:")


@pytest.mark.parametrize("rate", [0, -1000, float("nan")])
def test_loopback_rate_must_be_positive(rate):
    """A paced loopback sender needs a rate of at least 1 pps."""
    assert str(_error(LoopbackUdp, rate_pps=rate)).startswith("loopback_udp.rate_pps:")


def test_unknown_arrival_kind_lists_the_kinds():
    """An unknown arrival kind names the field and every allowed kind."""
    msg = str(_error(NicIrq, arrival="uniform"))
    assert msg.startswith("nic_irq.arrival:")
    assert all(kind in msg for kind in ("constant", "poisson", "bursty")) and "'uniform'" in msg


def test_unknown_flow_distribution_lists_the_choices():
    """An unknown flow distribution names the field, uniform and zipf."""
    msg = str(_error(NicIrq, flow_dist="pareto"))
    assert msg.startswith("nic_irq.flow_dist:") and "uniform" in msg and "zipf" in msg


@pytest.mark.parametrize("field, value", [
    ("netdev_max_backlog", 0), ("dev_weight", 0), ("netdev_budget", 0),
    ("netdev_budget_usecs", 0), ("hz", 0), ("flow_limit_table_len", 0),
    ("max_softirq_restart", 0),
])
def test_kernel_parameter_below_minimum_is_rejected(field, value):
    """Kernel parameters below the kernel's minimum name the kernel field."""
    msg = str(_error(KernelParams, **{field: value}))
    assert msg.startswith(f"kernel.{field}:") and "from 1 to" in msg


@pytest.mark.parametrize(
    "field", ["force_irqthreads", "idle_poll", "preempt_rt", "let_ksoftirqd_do_its_job",
              "udp_skb_defer_free"])
def test_kernel_switches_must_be_booleans(field):
    """Boot switches take true or false, not 1 or a string."""
    msg = str(_error(KernelParams, **{field: 1}))
    assert msg.startswith(f"kernel.{field}:") and "true or false" in msg


def test_run_length_must_be_bounded():
    """packets=None needs a duration_ns."""
    assert str(_error(Config, packets=None)).startswith("packets:")


@pytest.mark.parametrize("field, value", [
    ("packets", 0), ("duration_ns", 0), ("drain_ns", -1), ("seed", -1),
])
def test_run_fields_below_minimum_are_rejected(field, value):
    """packets, duration_ns, drain_ns and seed name themselves when out of range."""
    assert str(_error(Config, **{field: value})).startswith(f"{field}:")


@pytest.mark.parametrize("workloads", [[], [object()], "lo"])
def test_workloads_must_be_loopback_or_nic(workloads):
    """workloads must be a non-empty list of LoopbackUdp / NicIrq."""
    msg = str(_error(Config, workloads=workloads))
    assert msg.startswith("workloads:") and "LoopbackUdp" in msg and "NicIrq" in msg


def test_kernel_and_costs_must_have_their_types():
    """A dict is not a KernelParams nor a CostModel."""
    assert str(_error(Config, kernel={"hz": 250})).startswith("kernel:")
    assert str(_error(Config, costs={"ipi_send_ns": 1})).startswith("costs:")


@pytest.mark.parametrize("policy", ["", None, 3])
def test_policy_must_be_a_name(policy):
    """An empty or non-string policy fails at construction."""
    assert str(_error(Config, policy=policy)).startswith("policy:")


def test_unknown_policy_fails_at_simulation_construction():
    """An unknown policy name fails when the Simulation is built, listing every
    installed policy."""
    msg = str(_error(Simulation, Config(policy="softirq-ipy")))
    assert msg.startswith("policy:") and "'softirq-ipy'" in msg
    assert all(p in msg for p in ("softirq-ipi", "ksoftirqd", "backlog-threads"))


def test_wrong_option_type_names_the_option_and_type():
    """fast_path=3 is not a bool: policy_options.fast_path names the expected type."""
    config = Config(policy="backlog-threads", policy_options={"fast_path": 3})
    msg = str(_error(Simulation, config))
    assert msg.startswith("policy_options.fast_path:") and "bool" in msg and "3" in msg


def test_unknown_option_lists_the_known_ones():
    """An unknown option of backlog-threads names itself and lists fast_path."""
    config = Config(policy="backlog-threads", policy_options={"fastpath": True})
    msg = str(_error(Simulation, config))
    assert msg.startswith("policy_options") and "'fastpath'" in msg and "fast_path" in msg


def test_option_for_a_policy_without_options_says_so():
    """Options given to softirq-ipi (which takes none) are rejected and say so."""
    config = Config(policy="softirq-ipi", policy_options={"fast_path": True})
    msg = str(_error(Simulation, config))
    assert msg.startswith("policy_options") and "fast_path" in msg and "no options" in msg


def test_simulate_rejects_bad_overrides():
    """simulate(**fields) validates its overrides like Config does."""
    assert str(_error(napikit.simulate, ncpus=0)).startswith("ncpus:")


# ----------------------------------------------------------------- hotplug and cyclictest


def test_hotplug_requests_replay_in_time_order():
    """hotplug_sequence runs requests by time, ties in the order given."""
    a, b, c = (CpuHotplug(5, 1, False), CpuHotplug(1, 2, False), CpuHotplug(5, 1, True))
    config = Config(ncpus=3, workloads=(LoopbackUdp(senders=(0,), receivers=(0,)),),
                    hotplug=[a, b, c])
    assert config.hotplug_sequence == (b, a, c)


def test_hotplug_cpu_beyond_ncpus_is_rejected():
    """A request names a CPU that exists."""
    msg = str(_error(Config, hotplug=[CpuHotplug(0, 5, False)]))
    assert msg.startswith("hotplug[0].cpu:") and "ncpus=2" in msg


def test_hotplug_request_must_change_the_state():
    """Bringing up an online CPU (or down an offline one) is a mistake, named."""
    msg = str(_error(Config, hotplug=[CpuHotplug(0, 1, True)]))
    assert msg.startswith("hotplug[0].online:") and "already online" in msg
    msg = str(_error(Config, hotplug=[CpuHotplug(0, 1, False), CpuHotplug(9, 1, False)]))
    assert msg.startswith("hotplug[1].online:") and "already offline at t=9" in msg


def test_hotplug_never_takes_the_last_cpu_down():
    """The kernel refuses to offline the last online CPU; so does the config."""
    msg = str(_error(Config, hotplug=[CpuHotplug(0, 1, False), CpuHotplug(1, 0, False)]))
    assert msg.startswith("hotplug[1].cpu:") and "last one online" in msg


def test_hotplug_must_hold_requests():
    """hotplug takes CpuHotplug values."""
    assert str(_error(Config, hotplug=[(0, 1, False)])).startswith("hotplug:")


def test_hotplug_request_fields_are_checked():
    """time_ns and cpu are integers >= 0, online a boolean."""
    assert str(_error(CpuHotplug, -1, 0, True)).startswith("hotplug.time_ns:")
    assert str(_error(CpuHotplug, 0, 0, 1)).startswith("hotplug.online:")


def test_offline_cpus_leave_one_online():
    """offline_cpus cannot hold every CPU."""
    assert str(_error(Config, offline_cpus=[0, 1])).startswith("offline_cpus:")


@pytest.mark.parametrize("workload, field", [
    (LoopbackUdp(senders=(1,), receivers=(0,)), "loopback_udp.senders"),
    (LoopbackUdp(senders=(0,), receivers=(1,)), "loopback_udp.receivers"),
    (NicIrq(cpu=1), "nic_irq.cpu"),
])
def test_workloads_start_on_online_cpus(workload, field):
    """Threads and interrupts start on a CPU that is online at start."""
    msg = str(_error(Config, workloads=[workload], offline_cpus=[1]))
    assert msg.startswith(f"{field}:") and "offline_cpus" in msg


def test_rps_mask_may_name_an_offline_cpu():
    """RPS masks may include CPUs offline at start: get_rps_cpu skips them."""
    config = Config(workloads=[NicIrq(cpu=0, rps_cpus=(0, 1))], offline_cpus=[1])
    assert config.offline_cpus == (1,)


def test_cyclictest_alone_is_not_a_workload():
    """A run needs a traffic source besides cyclictest tasks."""
    msg = str(_error(Config, workloads=[Cyclictest()]))
    assert msg.startswith("workloads:") and "traffic" in msg


@pytest.mark.parametrize("field, value", [
    ("priority", 0), ("priority", 100), ("period_ns", 10), ("work_ns", -1), ("cpu", -1),
])
def test_cyclictest_fields_are_checked(field, value):
    """A cyclictest task's priority is 1-99, its period at least 1 us."""
    assert str(_error(Cyclictest, **{field: value})).startswith(f"cyclictest.{field}:")


def test_cyclictest_cpu_beyond_ncpus_is_rejected():
    """The cyclictest task's CPU exists."""
    msg = str(_error(Config, workloads=[LoopbackUdp(), Cyclictest(cpu=4)]))
    assert msg.startswith("cyclictest.cpu:")


def test_hotplug_in_to_dict_is_json_ready():
    """Hotplug requests are part of the config dict a result records."""
    config = Config(hotplug=[CpuHotplug(7, 1, False)])
    d = config.to_dict()
    assert d["hotplug"] == [{"time_ns": 7, "cpu": 1, "online": False}]
    json.dumps(d)


# ----------------------------------------------------------------- upper bounds

_MAX = napikit.config
#: (class, field, lowest, highest) of every bounded integer field.
_INT_BOUNDS = [
    (KernelParams, "hz", 1, _MAX.HZ_MAX),
    (KernelParams, "netdev_max_backlog", 1, _MAX.INT_MAX),
    (KernelParams, "netdev_budget", 1, _MAX.INT_MAX),
    (KernelParams, "netdev_budget_usecs", 1, _MAX.INT_MAX),
    (KernelParams, "dev_weight", 1, _MAX.INT_MAX),
    (KernelParams, "flow_limit_table_len", 1, _MAX.FLOW_LIMIT_TABLE_MAX),
    (KernelParams, "max_softirq_restart", 1, 10**6),
    (KernelParams, "max_softirq_time_ms", 1, 10**6),
    (KernelParams, "sched_latency_ns", 1, _MAX.SCHED_TUNABLE_MAX_NS),
    (KernelParams, "sched_wakeup_granularity_ns", 0, _MAX.SCHED_TUNABLE_MAX_NS),
    (KernelParams, "rmem_default", 1, _MAX.INT_MAX),
    (KernelParams, "skb_truesize", 1, _MAX.INT_MAX),
    (KernelParams, "idle_exit_latency_ns", 0, _MAX.COST_MAX_NS),
    (KernelParams, "haltpoll_ns", 0, _MAX.COST_MAX_NS),
    (CostModel, "ipi_latency_ns", 0, _MAX.COST_MAX_NS),
    (CostModel, "udp_sendmsg_ns", 0, _MAX.COST_MAX_NS),
    (LoopbackUdp, "flows", 1, _MAX.FLOWS_MAX),
    (NicIrq, "burst", 1, _MAX.NIC_BURST_MAX),
    (NicIrq, "flows", 1, _MAX.FLOWS_MAX),
    (NicIrq, "cpu", 0, _MAX.NR_CPUS_MAX - 1),
    (Cyclictest, "priority", 1, 99),
    (Config, "ncpus", 1, _MAX.NR_CPUS_MAX),
    (Config, "seed", 0, _MAX.U64_MAX),
    (Config, "drain_ns", 0, _MAX.TIME_MAX_NS),
    (Config, "duration_ns", 1, _MAX.TIME_MAX_NS),
    (Config, "stall_timeout_ns", 1, _MAX.TIME_MAX_NS),
]


def _qualified(cls, name: str) -> str:
    return f"{napikit.config._SECTION[cls.__name__]}{name}"


@pytest.mark.parametrize("cls, name, lo, hi", _INT_BOUNDS,
                         ids=[f"{c.__name__}.{n}" for c, n, _, _ in _INT_BOUNDS])
def test_integer_field_above_its_bound_names_the_range(cls, name, lo, hi):
    """One past the upper bound is a one-line error naming the field and the range."""
    msg = str(_error(cls, **{name: hi + 1}))
    assert msg.startswith(f"{_qualified(cls, name)}: must be an integer from {lo} to ")
    assert msg.endswith(f"(got {hi + 1!r})")


@pytest.mark.parametrize("cls, name, lo, hi", _INT_BOUNDS,
                         ids=[f"{c.__name__}.{n}" for c, n, _, _ in _INT_BOUNDS])
def test_integer_field_at_its_bounds_is_accepted(cls, name, lo, hi):
    """Both ends of a documented range are valid values."""
    for value in (lo, hi):
        extra = {
            "drain_ns": {"duration_ns": 1},
            "ncpus": {"workloads": [LoopbackUdp(senders=[0], receivers=[0])]},
        }.get(name, {}) if cls is Config else {}
        assert getattr(cls(**{name: value}, **extra), name) == value


def test_large_bounds_are_written_as_powers_of_two():
    """2**64 - 1 reads better than twenty digits."""
    assert "from 0 to 2**64 - 1 (got" in str(_error(Config, seed=2**64))


@pytest.mark.parametrize("rate", [1e9 + 1, 1e300])
def test_rate_above_one_packet_per_ns_is_rejected(rate):
    """A rate faster than one packet per simulated nanosecond cannot be simulated."""
    assert str(_error(NicIrq, rate_pps=rate)).startswith("nic_irq.rate_pps: must be a number")


def test_weight_times_bias_must_fit_an_int():
    """dev_rx_weight = dev_weight * dev_weight_rx_bias is a C int in the kernel."""
    msg = str(_error(KernelParams, dev_weight=2**16, dev_weight_rx_bias=2**16))
    assert msg.startswith("kernel.dev_weight_rx_bias:")


def test_cyclictest_work_must_leave_time_to_sleep():
    """A cyclictest thread that works its whole period would own its CPU for good."""
    assert str(_error(Cyclictest, period_ns=10_000, work_ns=10_000)).startswith(
        "cyclictest.work_ns:")


def test_flows_over_all_workloads_are_bounded():
    """Per-flow state is one array over every workload's flows."""
    half = napikit.config.FLOWS_MAX // 2 + 1
    msg = str(_error(Config, workloads=[NicIrq(flows=half), NicIrq(flows=half)]))
    assert msg.startswith("workloads: must be flows adding up to at most")


def test_huge_cpu_range_is_rejected_without_building_it():
    """range(10**12) as a CPU list fails at once instead of filling memory."""
    assert str(_error(LoopbackUdp, rps_cpus=range(10**12))).startswith("loopback_udp.rps_cpus:")


def test_packets_that_would_overflow_the_clock_are_rejected():
    """With the costs given, 2**62 packets end past the simulated clock's range."""
    msg = str(_error(Config, packets=2**62))
    assert msg.startswith("packets: must be at most ") and "2**62 ns" in msg


def test_packets_bound_depends_on_the_costs():
    """The packet bound is the horizon over one packet's worst-case time: dearer costs,
    fewer packets."""
    dear = CostModel(udp_sendmsg_ns=napikit.config.COST_MAX_NS)
    Config(packets=10**12)
    assert str(_error(Config, packets=10**12, costs=dear)).startswith("packets:")


def test_packets_bound_does_not_apply_with_a_duration():
    """duration_ns bounds the input itself."""
    assert Config(packets=2**62, duration_ns=10**6).packets == 2**62


@pytest.mark.parametrize("options, field", [
    (5, "policy_options"),
    ("fast_path", "policy_options"),
    ({1: True}, "policy_options"),
    ({"fast_path": [True]}, "policy_options.fast_path"),
    ({"fast_path": {"a": 1}}, "policy_options.fast_path"),
    ({"fast_path": None}, "policy_options.fast_path"),
    ({"x": float("nan")}, "policy_options.x"),
    ({"x": 2**64}, "policy_options.x"),
])
def test_policy_options_are_validated_by_type(options, field):
    """Policy options are names mapped to booleans, finite numbers or strings."""
    assert str(_error(Config, policy_options=options)).startswith(f"{field}: must be")


def test_policy_options_as_a_list_of_pairs_are_accepted():
    """A list of (name, value) pairs is the same as a mapping."""
    assert Config(policy_options=[("b", 1), ("a", 2)]) == Config(policy_options={"a": 2, "b": 1})


def test_location_costs_default_to_zero_and_are_bounded():
    """remote_skb_ns and remote_sock_ns (kernel-model.md B.10.6) default to 0: costs do
    not depend on where data was last written unless asked to; their bound is every
    cost's."""
    assert CostModel().remote_skb_ns == 0 and CostModel().remote_sock_ns == 0
    assert CostModel(remote_skb_ns=120, remote_sock_ns=80).remote_sock_ns == 80
    for name in ("remote_skb_ns", "remote_sock_ns"):
        msg = str(_error(CostModel, **{name: napikit.config.COST_MAX_NS + 1}))
        assert msg.startswith(f"costs.{name}:")


def test_csd_coalescing_is_an_off_by_default_switch():
    """KernelParams.csd_coalescing (kernel-model.md B.10.1): a boolean, off by default."""
    assert KernelParams().csd_coalescing is False
    assert KernelParams(csd_coalescing=True).csd_coalescing is True
    msg = str(_error(KernelParams, csd_coalescing=1))
    assert msg.startswith("kernel.csd_coalescing:") and "true or false" in msg
