"""napikit: simulate how Linux schedules its per-CPU backlog NAPI, and try policies.

>>> import napikit
>>> r = napikit.simulate(napikit.Config(ncpus=2, policy="softirq-ipi", packets=20_000))
>>> r.conserved
True
"""

__version__ = "0.1.0"

from napikit import scenarios  # noqa: E402
from napikit.config import (  # noqa: E402
    Config,
    CostDistribution,
    CostModel,
    CpuHotplug,
    Cyclictest,
    KernelParams,
    LoopbackUdp,
    NicIrq,
)
from napikit.decision import Action, CompiledPolicy, SoftirqAction  # noqa: E402
from napikit.errors import (  # noqa: E402
    ConfigError,
    NapikitError,
    PluginError,
    PolicyError,
    StallError,
)
from napikit.hookspecs import hookimpl, hookspec  # noqa: E402
from napikit.plugins import PolicyOption, PolicyRegistry, PolicySpec  # noqa: E402
from napikit.results import (  # noqa: E402
    CpuTime,
    Drops,
    Histogram,
    HotplugRecord,
    Latency,
    Result,
    Samples,
    SoftnetStat,
    TaskStat,
)
from napikit.scenario_file import (  # noqa: E402
    Difference,
    ReplayReport,
    canonical_config,
    config_dict,
    config_fingerprint,
    config_from_dict,
    dump_scenario,
    load_scenario,
    loads_scenario,
    replay,
)
from napikit.simulation import Simulation, simulate  # noqa: E402

# napikit.sweep imports pandas and pyarrow only when a sweep runs. The package's
# ``sweep`` is the function; the module is ``sys.modules["napikit.sweep"]``.
from napikit.sweep import load_sweep, sweep, sweep_summary  # noqa: E402
from napikit.trace import Timeline, TraceOptions  # noqa: E402

__all__ = [
    "Action", "CompiledPolicy", "Config", "ConfigError", "CostDistribution", "CostModel",
    "CpuHotplug", "CpuTime", "Cyclictest", "Difference", "Drops", "Histogram",
    "HotplugRecord", "KernelParams", "Latency", "LoopbackUdp", "NapikitError", "NicIrq",
    "PluginError", "PolicyError", "PolicyOption", "PolicyRegistry", "PolicySpec",
    "ReplayReport", "Result", "Samples", "Simulation", "SoftirqAction", "SoftnetStat",
    "StallError", "TaskStat", "Timeline", "TraceOptions", "__version__", "canonical_config",
    "config_dict", "config_fingerprint", "config_from_dict", "dump_scenario", "hookimpl",
    "hookspec", "load_scenario", "load_sweep", "loads_scenario", "replay", "scenarios",
    "simulate", "sweep", "sweep_summary",
]
