"""Plugins: entry-point discovery, the decision table of the shipped policies, Python
policies deciding exactly as compiled ones, and policy faults reported clearly."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import napikit
import napikit.plugins
from napikit import (
    Action,
    CompiledPolicy,
    Config,
    LoopbackUdp,
    NicIrq,
    PolicyError,
    SoftirqAction,
    hookimpl,
)
from napikit.testing.profiles import examples

SHIPPED = ("softirq-ipi", "ksoftirqd", "backlog-threads")


# ----------------------------------------------------------------- Python policies


class PySoftirqIpi:
    """softirq-ipi in plain Python: SOFTIRQ for the local CPU, IPI for a remote one."""

    @hookimpl
    def napikit_backlog_schedule(self, this_cpu, target_cpu, now_ns):
        return Action.SOFTIRQ if this_cpu == target_cpu else Action.IPI


class PyKsoftirqd(PySoftirqIpi):
    """The ksoftirqd policy in plain Python: forced IRQ threads, softirqs from hard-IRQ
    context go to ksoftirqd."""

    force_irqthreads = True

    @hookimpl
    def napikit_softirq_from_hardirq(self, cpu, force_irqthreads, now_ns):
        return SoftirqAction.KSOFTIRQD


class PyBacklogThreads:
    """backlog-threads (with the fast path) in plain Python."""

    backlog_threads = True

    @hookimpl
    def napikit_backlog_schedule(self, this_cpu, target_cpu, now_ns):
        return Action.SOFTIRQ if this_cpu == target_cpu else Action.THREAD


class PyBacklogThreadsNoFastPath:
    """backlog-threads without the fast path in plain Python: always a thread."""

    backlog_threads = True

    @hookimpl
    def napikit_backlog_schedule(self, this_cpu, target_cpu, now_ns):
        return Action.THREAD


class Recorder:
    """A policy leaving every decision to the kernel (``None``), recording its calls."""

    def __init__(self):
        self.schedule_calls = []
        self.softirq_calls = []

    @hookimpl
    def napikit_backlog_schedule(self, this_cpu, target_cpu, now_ns):
        self.schedule_calls.append((this_cpu, target_cpu, now_ns))
        return None

    @hookimpl
    def napikit_softirq_from_hardirq(self, cpu, force_irqthreads, now_ns):
        self.softirq_calls.append((cpu, force_irqthreads, now_ns))
        return None


def _without_policy(result: napikit.Result) -> dict:
    """The result's JSON without the fields that name the policy (the fingerprint
    hashes the configuration, its policy included)."""
    d = json.loads(result.to_json())
    for key in ("policy", "policy_package", "fingerprint"):
        d.pop(key)
    for key in ("policy", "policy_options"):
        d["config"].pop(key)
    return d


# ----------------------------------------------------------------- discovery


def test_shipped_policies_are_found_through_entry_points():
    """The three shipped policies come from the napikit entry-point group."""
    pm = napikit.plugins.plugin_manager()
    names = napikit.plugins.registry(pm).names()
    assert set(SHIPPED) <= set(names)


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_policy_package_is_napikit(name):
    """Each shipped policy is tagged with its distribution: napikit 0.1.0."""
    spec = napikit.plugins.registry(napikit.plugins.plugin_manager()).get(name)
    assert spec.package == f"napikit {napikit.__version__}" == "napikit 0.1.0"


def test_result_names_the_policy_package(run):
    """A result records the policy and the package that provided it."""
    result = run(Config(policy="ksoftirqd", packets=2_000))
    assert (result.policy, result.policy_package) == ("ksoftirqd", "napikit 0.1.0")


def test_no_entry_points_no_policies():
    """A manager that loads no entry points offers no policy, and says so."""
    pm = napikit.plugins.plugin_manager(load_entrypoints=False)
    with pytest.raises(napikit.ConfigError, match=r"^policy:"):
        napikit.Simulation(Config(), plugins=pm)


def test_backlog_threads_declares_its_fast_path_option():
    """backlog-threads takes one option, fast_path, a bool defaulting to True."""
    spec = napikit.plugins.registry().get("backlog-threads")
    (opt,) = spec.options
    assert (opt.name, opt.type, opt.default) == ("fast_path", bool, True)


def test_a_plugin_policy_is_listed_with_the_plugin_name(with_policy):
    """A policy from a plugin object not installed as a distribution is tagged with
    the plugin's registered name."""
    pm = with_policy("py-classic", PySoftirqIpi)
    spec = napikit.plugins.registry(pm).get("py-classic")
    assert spec.package == "test-plugin-py-classic"


def test_the_same_policy_name_twice_is_an_error(with_policy):
    """Two plugins registering one policy name fail with both named."""
    pm = with_policy("softirq-ipi", PySoftirqIpi)
    with pytest.raises(PolicyError, match="registered twice"):
        napikit.plugins.registry(pm)


# ----------------------------------------------------------------- decision table (A.3)


def _decision(name: str, **options) -> CompiledPolicy:
    return napikit.plugins.registry().get(name).build(options)


@pytest.mark.parametrize("name", ["softirq-ipi", "ksoftirqd"])
def test_ipi_policies_kick_remote_by_ipi_and_local_by_softirq(name):
    """Classic kick: IPI for a remote backlog, local softirq for our own."""
    d = _decision(name)
    assert d.decide_backlog_schedule(0, 1) == Action.IPI
    assert d.decide_backlog_schedule(3, 3) == Action.SOFTIRQ
    assert not d.backlog_threads


def test_softirq_ipi_runs_hardirq_softirqs_inline_unless_forced():
    """softirq-ipi follows invoke_softirq: inline, ksoftirqd only with threadirqs."""
    d = _decision("softirq-ipi")
    assert d.decide_softirq_from_hardirq(0, False) == SoftirqAction.INLINE
    assert d.decide_softirq_from_hardirq(0, True) == SoftirqAction.KSOFTIRQD
    assert not d.force_irqthreads


def test_ksoftirqd_policy_sends_hardirq_softirqs_to_ksoftirqd():
    """The ksoftirqd policy forces IRQ threads and wakes ksoftirqd from hard-IRQ."""
    d = _decision("ksoftirqd")
    assert d.decide_softirq_from_hardirq(0, False) == SoftirqAction.KSOFTIRQD
    assert d.force_irqthreads


def test_backlog_threads_wake_a_thread_for_remote_and_keep_local_fast_path():
    """backlog-threads: THREAD for a remote backlog, SOFTIRQ for the local one."""
    d = _decision("backlog-threads")
    assert d.backlog_threads
    assert d.decide_backlog_schedule(0, 1) == Action.THREAD
    assert d.decide_backlog_schedule(1, 1) == Action.SOFTIRQ


def test_backlog_threads_without_fast_path_wake_the_own_thread_too():
    """backlog-threads with fast_path=False: THREAD for the local backlog as well."""
    d = _decision("backlog-threads", fast_path=False)
    assert d.decide_backlog_schedule(1, 1) == Action.THREAD
    assert d.decide_backlog_schedule(0, 1) == Action.THREAD


# ----------------------------------------------------------------- Python = compiled


@pytest.mark.parametrize("name, packets", [("perf-a", 100_000), ("seed-rps", None),
                                           ("seed-rps-spread", None)])
def test_python_softirq_ipi_matches_the_compiled_one(with_policy, scenario, run, name, packets):
    """A pure-Python softirq-ipi gives byte-identical results to the compiled policy."""
    config = scenario(name) if packets is None else scenario(name, packets=packets)
    compiled = run(config.evolve(policy="softirq-ipi"))
    python = run(config.evolve(policy="py-softirq-ipi"),
                 plugins=with_policy("py-softirq-ipi", PySoftirqIpi))
    assert python.policy == "py-softirq-ipi"
    assert _without_policy(python) == _without_policy(compiled)


@pytest.mark.parametrize("name", ["seed-rps", "seed-rt"])
def test_python_ksoftirqd_matches_the_compiled_one(with_policy, scenario, run, name):
    """A pure-Python ksoftirqd policy gives byte-identical results to the compiled one."""
    config = scenario(name)
    compiled = run(config.evolve(policy="ksoftirqd"))
    python = run(config.evolve(policy="py-ksoftirqd"),
                 plugins=with_policy("py-ksoftirqd", PyKsoftirqd))
    assert _without_policy(python) == _without_policy(compiled)


@pytest.mark.parametrize("name, packets", [("seed-rps-spread", None), ("perf-a", 100_000)])
def test_python_backlog_threads_matches_the_compiled_one(with_policy, scenario, run, name,
                                                         packets):
    """A pure-Python backlog-threads gives byte-identical results to the compiled one."""
    config = scenario(name) if packets is None else scenario(name, packets=packets)
    compiled = run(config.evolve(policy="backlog-threads"))
    python = run(config.evolve(policy="py-threads"),
                 plugins=with_policy("py-threads", PyBacklogThreads))
    assert _without_policy(python) == _without_policy(compiled)


PYTHON_TWINS = [
    ("softirq-ipi", {}, PySoftirqIpi),
    ("ksoftirqd", {}, PyKsoftirqd),
    ("backlog-threads", {}, PyBacklogThreads),
    ("backlog-threads", {"fast_path": False}, PyBacklogThreadsNoFastPath),
]


@pytest.mark.parametrize("name, options, twin", PYTHON_TWINS,
                         ids=["softirq-ipi", "ksoftirqd", "backlog-threads",
                              "backlog-threads-nofast"])
@settings(max_examples=examples(30))
@given(data=st.data())
def test_python_twin_matches_compiled_policy_on_fuzzed_configs(configs, with_policy, run,
                                                               name, options, twin, data):
    """On any configuration, a Python re-implementation of a shipped policy gives the
    compiled policy's result, byte for byte."""
    policy = {"policy": name, "policy_options": options}
    config = data.draw(configs(policy, max_packets=6_000))
    compiled = run(config)
    python = run(config.evolve(policy="py-twin", policy_options={}),
                 plugins=with_policy("py-twin", twin))
    assert _without_policy(python) == _without_policy(compiled)


def test_policy_returning_none_leaves_decisions_to_the_kernel(with_policy, scenario, run):
    """A Python policy returning None everywhere behaves as softirq-ipi (with forced IRQ
    threads, so both hooks are asked)."""
    config = scenario("seed-rps").evolve(kernel=napikit.KernelParams(force_irqthreads=True))
    recorder = Recorder()
    pm = with_policy("recorder", lambda: recorder)
    python = run(config.evolve(policy="recorder"), plugins=pm)
    assert _without_policy(python) == _without_policy(run(config.evolve(policy="softirq-ipi")))
    assert recorder.schedule_calls and recorder.softirq_calls


def test_decision_hooks_are_called_per_decision_not_per_packet(with_policy, scenario, run):
    """Under overload the backlog-schedule hook is called far less than once per packet."""
    recorder = Recorder()
    config = scenario("perf-a-overload", packets=50_000, policy="recorder")
    result = run(config, plugins=with_policy("recorder", lambda: recorder))
    assert 0 < len(recorder.schedule_calls) < result.arrived / 10


def test_hook_arguments_are_what_the_spec_says(with_policy, run):
    """this_cpu is the netif_rx CPU, target_cpu an RPS target, now_ns non-decreasing."""
    recorder = Recorder()
    config = Config(ncpus=4, workloads=[NicIrq(cpu=2, rate_pps=200_000, rps_cpus=[0, 1, 3])],
                    packets=5_000, policy="recorder")
    run(config, plugins=with_policy("recorder", lambda: recorder))
    assert {c[0] for c in recorder.schedule_calls} == {2}
    assert {c[1] for c in recorder.schedule_calls} <= {0, 1, 3}
    times = [c[2] for c in recorder.schedule_calls]
    assert times == sorted(times)


def test_hook_may_take_a_subset_of_arguments_in_any_order(with_policy, run):
    """pluggy lets an implementation name only the arguments it needs, in any order."""
    seen = []

    class Reordered:
        @hookimpl
        def napikit_backlog_schedule(self, target_cpu, this_cpu):
            seen.append((this_cpu, target_cpu))
            return Action.SOFTIRQ if this_cpu == target_cpu else Action.IPI

    config = Config(ncpus=2, workloads=[LoopbackUdp(rps_cpus=[1])], packets=2_000,
                    policy="reordered")
    result = run(config, plugins=with_policy("reordered", Reordered))
    assert seen and set(seen) == {(0, 1)}
    assert result.conserved


def test_ipi_decisions_equal_ipis_sent(with_policy, run):
    """Each IPI decision puts one backlog on rps_ipi_list: one IPI sent per decision."""
    decisions = []

    class Counting(PySoftirqIpi):
        @hookimpl
        def napikit_backlog_schedule(self, this_cpu, target_cpu, now_ns):
            action = super().napikit_backlog_schedule(this_cpu, target_cpu, now_ns)
            decisions.append(action)
            return action

    config = Config(ncpus=4, workloads=[NicIrq(cpu=0, rate_pps=500_000, rps_cpus=[0, 1, 2, 3])],
                    packets=20_000, policy="counting")
    result = run(config, plugins=with_policy("counting", Counting))
    assert result.quiescent
    assert decisions.count(Action.IPI) == result.ipis > 0


def test_thread_decisions_equal_thread_kicks(with_policy, run):
    """Each THREAD decision is one thread kick."""
    decisions = []

    class Counting(PyBacklogThreads):
        @hookimpl
        def napikit_backlog_schedule(self, this_cpu, target_cpu, now_ns):
            action = super().napikit_backlog_schedule(this_cpu, target_cpu, now_ns)
            decisions.append(action)
            return action

    config = Config(ncpus=4, workloads=[NicIrq(cpu=0, rate_pps=500_000, rps_cpus=[1, 2, 3])],
                    packets=20_000, policy="counting")
    result = run(config, plugins=with_policy("counting", Counting))
    assert decisions.count(Action.THREAD) == result.thread_kicks > 0


def test_policy_options_reach_the_factory(with_policy, run):
    """Declared options are validated and passed to the policy's factory."""
    got = {}

    def factory(threshold):
        got["threshold"] = threshold
        return PySoftirqIpi()

    opts = [napikit.PolicyOption("threshold", int, 4, "a number")]
    pm = with_policy("opt", factory, opts)
    run(Config(policy="opt", policy_options={"threshold": 9}, packets=1_000), plugins=pm)
    assert got == {"threshold": 9}
    run(Config(policy="opt", packets=1_000), plugins=pm)
    assert got == {"threshold": 4}
    with pytest.raises(napikit.ConfigError, match=r"^policy_options\.threshold:"):
        napikit.Simulation(Config(policy="opt", policy_options={"threshold": "9"}), plugins=pm)


# ----------------------------------------------------------------- faults


def _rps_config(policy: str, **changes) -> Config:
    """A NIC on CPU 0 whose RPS mask spans CPUs 0 and 1: local and remote decisions."""
    base = Config(ncpus=2, workloads=[NicIrq(cpu=0, rate_pps=100_000, rps_cpus=[0, 1])],
                  packets=2_000, policy=policy)
    return base.evolve(**changes) if changes else base


def _fault(run, config, pm) -> PolicyError:
    with pytest.raises(PolicyError) as info:
        run(config, plugins=pm)
    assert "\n" not in str(info.value)
    return info.value


def test_raising_hook_is_a_policy_error_naming_policy_hook_cpu_and_time(with_policy, run):
    """An exception in a hook is reported with the policy, the hook, CPU and time."""

    class Boom:
        @hookimpl
        def napikit_backlog_schedule(self, this_cpu, target_cpu, now_ns):
            raise RuntimeError("boom")

    err = _fault(run, _rps_config("boom"), with_policy("boom", Boom))
    msg = str(err)
    assert (err.policy, err.hook) == ("boom", "napikit_backlog_schedule")
    assert "'boom'" in msg and "napikit_backlog_schedule" in msg
    assert "RuntimeError" in msg and "boom" in msg
    assert "CPU 0" in msg and "t=" in msg
    assert isinstance(err.__cause__, RuntimeError)


def test_raising_softirq_hook_is_reported_with_its_hook(with_policy, run):
    """An exception in napikit_softirq_from_hardirq names that hook."""

    class Boom(PySoftirqIpi):
        @hookimpl
        def napikit_softirq_from_hardirq(self, cpu, force_irqthreads, now_ns):
            raise KeyError(cpu)

    err = _fault(run, _rps_config("boom"), with_policy("boom", Boom))
    assert err.hook == "napikit_softirq_from_hardirq"
    assert "KeyError" in str(err)


def test_softirq_for_a_remote_cpu_is_rejected(with_policy, run):
    """SOFTIRQ can only be raised on the local CPU."""

    class Bad:
        @hookimpl
        def napikit_backlog_schedule(self, this_cpu, target_cpu, now_ns):
            return Action.SOFTIRQ

    err = _fault(run, _rps_config("bad"), with_policy("bad", Bad))
    assert err.hook == "napikit_backlog_schedule"
    assert "SOFTIRQ" in str(err) and "remote" in str(err)


def test_ipi_for_the_local_cpu_is_rejected(with_policy, run):
    """IPI is for remote CPUs only."""

    class Bad:
        @hookimpl
        def napikit_backlog_schedule(self, this_cpu, target_cpu, now_ns):
            return Action.IPI

    err = _fault(run, _rps_config("bad"), with_policy("bad", Bad))
    assert "IPI" in str(err) and "local" in str(err)


def test_thread_without_backlog_threads_is_rejected(with_policy, run):
    """THREAD needs a policy that has backlog threads."""

    class Bad:
        @hookimpl
        def napikit_backlog_schedule(self, this_cpu, target_cpu, now_ns):
            return Action.THREAD

    err = _fault(run, _rps_config("bad"), with_policy("bad", Bad))
    assert "THREAD" in str(err) and "backlog_threads" in str(err)


@pytest.mark.parametrize("value", ["ipi", 1.0, True, object()])
def test_non_action_result_is_rejected(with_policy, run, value):
    """A result that is not an Action (a string, float, bool, object) is a PolicyError."""

    class Bad:
        @hookimpl
        def napikit_backlog_schedule(self, this_cpu, target_cpu, now_ns):
            return value

    err = _fault(run, _rps_config("bad"), with_policy("bad", Bad))
    assert err.hook == "napikit_backlog_schedule"
    assert "not an Action" in str(err)


def test_out_of_range_action_is_rejected(with_policy, run):
    """An int that is no Action lists the allowed ones."""

    class Bad:
        @hookimpl
        def napikit_backlog_schedule(self, this_cpu, target_cpu, now_ns):
            return 7

    err = _fault(run, _rps_config("bad"), with_policy("bad", Bad))
    assert "7" in str(err) and "Action.SOFTIRQ" in str(err)


def test_out_of_range_softirq_action_is_rejected(with_policy, run):
    """A softirq decision that is no SoftirqAction lists the allowed ones."""

    class Bad(PySoftirqIpi):
        @hookimpl
        def napikit_softirq_from_hardirq(self, cpu, force_irqthreads, now_ns):
            return 5

    err = _fault(run, _rps_config("bad"), with_policy("bad", Bad))
    assert err.hook == "napikit_softirq_from_hardirq" and "SoftirqAction" in str(err)


def test_misspelt_hook_in_a_policy_fails_at_registration(with_policy):
    """A policy implementing napikit_backlog_schedul is refused before any run."""

    class Typo:
        @hookimpl
        def napikit_backlog_schedul(self, this_cpu, target_cpu, now_ns):
            return Action.SOFTIRQ

    with pytest.raises(PolicyError) as info:
        napikit.Simulation(Config(policy="typo"), plugins=with_policy("typo", Typo))
    assert info.value.hook == "registration"
    assert "napikit_backlog_schedul" in str(info.value)


def test_misspelt_hook_argument_fails_at_registration(with_policy):
    """A hook implementation asking for an argument the spec lacks is refused."""

    class Typo:
        @hookimpl
        def napikit_backlog_schedule(self, this_cpu, target):
            return Action.SOFTIRQ

    with pytest.raises(PolicyError, match="registration"):
        napikit.Simulation(Config(policy="typo"), plugins=with_policy("typo", Typo))


def test_misspelt_hook_in_a_plugin_fails_loudly(plugins):
    """A plugin with an unknown napikit_* hook is refused, not silently ignored."""

    class Typo:
        @hookimpl
        def napikit_register_polices(self, registry):
            pass

    with pytest.raises(Exception, match="napikit_register_polices"):
        napikit.Simulation(Config(), plugins=plugins(Typo())).run()


def test_factory_error_is_a_policy_error(with_policy):
    """A factory that raises is reported as the policy's fault."""

    def factory():
        raise ValueError("no such mode")

    with pytest.raises(PolicyError, match="factory") as info:
        napikit.Simulation(Config(policy="broken"), plugins=with_policy("broken", factory))
    assert "no such mode" in str(info.value)


# ----------------------------------------------------------------- observation hooks


class Observer:
    """Counts the run lifecycle hooks it sees."""

    def __init__(self):
        self.starts = []
        self.ends = []

    @hookimpl
    def napikit_run_start(self, config):
        self.starts.append(config)

    @hookimpl
    def napikit_run_end(self, config, result):
        self.ends.append((config, result))


def test_run_hooks_are_called_once_per_run(plugins):
    """napikit_run_start and napikit_run_end are called once per run."""
    observer = Observer()
    pm = plugins(observer)
    config = Config(packets=2_000)
    sim = napikit.Simulation(config, plugins=pm)
    result = sim.run()
    assert len(observer.starts) == 1 and len(observer.ends) == 1
    napikit.Simulation(config.evolve(seed=2), plugins=pm).run()
    assert len(observer.starts) == 2 and len(observer.ends) == 2
    assert observer.starts[0] is config
    assert observer.ends[0] == (config, result)


def test_repeated_run_of_one_simulation_calls_no_hooks_again(plugins):
    """Simulation.run returns its cached result without a second run."""
    observer = Observer()
    sim = napikit.Simulation(Config(packets=2_000), plugins=plugins(observer))
    first = sim.run()
    assert sim.run() is first
    assert len(observer.starts) == len(observer.ends) == 1


def test_run_start_precedes_the_run_and_end_sees_the_result(plugins):
    """run_start gets the config before the run; run_end gets the returned result."""
    events = []

    class Order:
        @hookimpl
        def napikit_run_start(self, config):
            events.append(("start", config.seed))

        @hookimpl
        def napikit_run_end(self, config, result):
            events.append(("end", result.delivered))

    result = napikit.Simulation(Config(packets=2_000, seed=5), plugins=plugins(Order())).run()
    assert events == [("start", 5), ("end", result.delivered)]


@pytest.mark.parametrize("hook", ["napikit_run_start", "napikit_run_end"])
def test_raising_run_hook_is_a_plugin_error_naming_plugin_and_hook(plugins, hook):
    """An observer hook that raises is reported with its plugin's name and the hook,
    as one line, never as the plugin's own exception escaping."""

    class Broken:
        @hookimpl
        def napikit_run_start(self, config):
            if hook == "napikit_run_start":
                raise RuntimeError("boom")

        @hookimpl
        def napikit_run_end(self, config, result):
            raise RuntimeError("boom")

    pm = plugins(Broken())
    name = pm.get_name(next(p for p in pm.get_plugins() if isinstance(p, Broken)))
    with pytest.raises(napikit.PluginError) as info:
        napikit.Simulation(Config(packets=2_000), plugins=pm).run()
    assert str(info.value) == f"plugin {name!r}, hook {hook}: raised RuntimeError: boom"
    assert isinstance(info.value.__cause__, RuntimeError)
