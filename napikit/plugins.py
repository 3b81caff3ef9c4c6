"""Policy discovery and selection: one pluggy manager, a registry, one deciding policy.

Installed plugins are found through the ``napikit`` entry-point group, exactly as the
shipped ``napikit_plugins`` are; each adds named policies through
``napikit_register_policies``. A run selects one by name; :func:`make_decision`
turns it into the compiled decision object the core calls.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from typing import Any

import pluggy
from attrs import field, frozen

from napikit import hookspecs
from napikit.decision import CompiledPolicy, PythonPolicy
from napikit.errors import ConfigError, PluginError, PolicyError


@frozen
class PolicyOption:
    """One option a policy accepts: its name, Python type, default and meaning."""

    name: str
    type: type
    default: Any
    help: str = ""


#: Kernel features a policy may declare it does not support (``unsupported=``); the
#: conformance suite then leaves those configurations out and skips their checks.
FEATURES: dict[str, str] = {
    "force_irqthreads": "forced-threaded IRQs (threadirqs, and PREEMPT_RT)",
    "preempt_rt": "PREEMPT_RT semantics (preemptible BH sections, softirqs in tasks)",
    "hotplug": "CPU hotplug during a run",
    "idle_poll": "IPIs to CPUs idling in a polling state",
    "rps": "RPS steering packets to other CPUs",
    "loopback": "loopback UDP traffic",
    "nic": "traffic from a non-NAPI NIC",
}


def _features(value: Any) -> tuple[str, ...]:
    names = tuple(value)
    unknown = [n for n in names if n not in FEATURES]
    if unknown:
        raise ConfigError("unsupported", "names from: " + ", ".join(FEATURES), unknown)
    return names


@frozen
class PolicySpec:
    """A registered policy: how to build it, where it comes from, what it leaves out."""

    name: str
    factory: Callable[..., Any]
    options: tuple[PolicyOption, ...] = ()
    description: str = ""
    #: ``name version`` of the distribution that provided it, or the plugin's name.
    package: str = field(default="", eq=False)
    #: Names from :data:`FEATURES` this policy does not support.
    unsupported: tuple[str, ...] = field(default=(), converter=_features)

    def build(self, options: Mapping[str, Any]) -> CompiledPolicy:
        """Validate ``options`` and return the run's decision object."""
        known = {o.name: o for o in self.options}
        for key, value in options.items():
            opt = known.get(key)
            if opt is None:
                if not known:
                    raise ConfigError("policy_options", f"empty: {self.name} takes no options", key)
                raise ConfigError("policy_options", "one of: " + ", ".join(sorted(known)), key)
            if not _is_type(value, opt.type):
                raise ConfigError(f"policy_options.{key}", f"a {opt.type.__name__}", value)
        values = {o.name: options.get(o.name, o.default) for o in self.options}
        try:
            obj = self.factory(**values)
        except ConfigError:
            raise  # a factory validating its options names the field itself
        except Exception as e:
            raise PolicyError(self.name, "factory", f"{type(e).__name__}: {e}") from e
        return make_decision(self.name, obj)


def _is_type(value: Any, typ: type) -> bool:
    if typ is bool:
        return isinstance(value, bool)
    if typ in (int, float) and isinstance(value, bool):
        return False
    if typ is float:
        return isinstance(value, (int, float))
    return isinstance(value, typ)


class PolicyRegistry:
    """The registry handed to ``napikit_register_policies``: name -> :class:`PolicySpec`."""

    def __init__(self) -> None:
        self._specs: dict[str, PolicySpec] = {}
        self._package = ""

    def register(
        self,
        name: str,
        factory: Callable[..., Any],
        *,
        options: tuple[PolicyOption, ...] | list[PolicyOption] = (),
        description: str = "",
        unsupported: tuple[str, ...] | list[str] = (),
    ) -> None:
        """Add a policy under ``name`` (names are unique across installed plugins).

        ``unsupported`` names kernel features (keys of :data:`FEATURES`) the policy is
        not meant for; the conformance suite skips them with the reason.
        """
        if name in self._specs:
            raise PolicyError(
                name, "napikit_register_policies",
                f"registered twice (by {self._specs[name].package} and {self._package})",
            )
        self._specs[name] = PolicySpec(
            name, factory, tuple(options), description, self._package, tuple(unsupported)
        )

    def names(self) -> list[str]:
        """The registered policy names, sorted."""
        return sorted(self._specs)

    def get(self, name: str) -> PolicySpec:
        try:
            return self._specs[name]
        except KeyError:
            raise ConfigError("policy", "one of: " + ", ".join(self.names()), name) from None

    def __iter__(self):
        return (self._specs[n] for n in self.names())


def plugin_manager(load_entrypoints: bool = True) -> pluggy.PluginManager:
    """A manager with napikit's hook specifications and every installed plugin."""
    pm = pluggy.PluginManager(hookspecs.NAME)
    pm.add_hookspecs(hookspecs)
    if load_entrypoints:
        pm.load_setuptools_entrypoints(hookspecs.NAME)
    check_plugins(pm)
    return pm


def check_plugins(pm: pluggy.PluginManager) -> None:
    """``check_pending``: a ``napikit_*`` hook no specification knows (a typo) is an
    error naming the plugin, not an implementation silently never called."""
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as e:
        raise PolicyError(pm.get_name(e.plugin) or repr(e.plugin), "registration", str(e)) from e


def registry(pm: pluggy.PluginManager | None = None) -> PolicyRegistry:
    """The policies of every plugin registered with ``pm`` (default: the installed ones,
    collected once per process)."""
    global _REGISTRY
    if pm is None:
        if _REGISTRY is None:
            _REGISTRY = _collect(default_manager())
        return _REGISTRY
    return _collect(pm)


def _collect(pm: pluggy.PluginManager) -> PolicyRegistry:
    dists = {id(plugin): dist for plugin, dist in pm.list_plugin_distinfo()}
    reg = PolicyRegistry()
    # Called implementation by implementation so each policy is tagged with its package.
    for impl in reversed(pm.hook.napikit_register_policies.get_hookimpls()):
        dist = dists.get(id(impl.plugin))
        reg._package = (
            f"{dist.metadata['name']} {dist.version}" if dist is not None else impl.plugin_name
        )
        try:
            impl.function(registry=reg)
        except PolicyError:
            raise
        except Exception as e:
            raise PolicyError(
                impl.plugin_name, "napikit_register_policies", f"{type(e).__name__}: {e}"
            ) from e
    return reg


def call_each(pm: pluggy.PluginManager, hook: str, **kwargs: Any) -> None:
    """Call every implementation of an observation hook, in pluggy's order; one that
    raises ends the call with a :class:`PluginError` naming its plugin and the hook."""
    for impl in reversed(getattr(pm.hook, hook).get_hookimpls()):
        try:
            impl.function(**{a: kwargs[a] for a in impl.argnames})
        except Exception as e:
            raise PluginError(impl.plugin_name, hook, f"raised {type(e).__name__}: {e}") from e


_MANAGER: pluggy.PluginManager | None = None
_REGISTRY: PolicyRegistry | None = None


def default_manager() -> pluggy.PluginManager:
    """The manager of the installed plugins, built once per process."""
    global _MANAGER
    if _MANAGER is None:
        _MANAGER = plugin_manager()
    return _MANAGER


#: The decision hooks and their arguments, in the order the core passes them.
_DECISION_HOOKS = {
    "napikit_backlog_schedule": ("this_cpu", "target_cpu", "now_ns", "last_batch"),
    "napikit_softirq_from_hardirq": ("cpu", "force_irqthreads", "now_ns"),
}


def make_decision(name: str, obj: Any) -> CompiledPolicy:
    """The decision object for a policy factory's product.

    A :class:`CompiledPolicy` is used as it is. Any other object is a Python policy: it
    is registered in a private manager (so misspelt hooks fail ``check_pending``), and
    each decision hook's implementation is resolved here, once per run.
    """
    if isinstance(obj, CompiledPolicy):
        obj.name = name
        return obj
    pm = pluggy.PluginManager(hookspecs.NAME)
    pm.add_hookspecs(hookspecs)
    try:
        pm.register(obj, name=f"policy:{name}")
        pm.check_pending()
    except (pluggy.PluginValidationError, ValueError) as e:
        raise PolicyError(name, "registration", str(e)) from e
    funcs = {}
    for hook, spec_args in _DECISION_HOOKS.items():
        impls = getattr(pm.hook, hook).get_hookimpls()
        funcs[hook] = _positional(impls[-1], spec_args) if impls else None
    return PythonPolicy(
        name,
        funcs["napikit_backlog_schedule"],
        funcs["napikit_softirq_from_hardirq"],
        backlog_threads=bool(getattr(obj, "backlog_threads", False)),
        force_irqthreads=bool(getattr(obj, "force_irqthreads", False)),
    )


def _positional(impl: Any, spec_args: tuple[str, ...]) -> Callable[..., Any]:
    """The implementation as a function of the spec's arguments, positionally.

    pluggy lets an implementation take a subset of the arguments in any order; this
    adapts it once, instead of pluggy matching names on every call.
    """
    fn = impl.function
    if tuple(impl.argnames) == spec_args:
        return fn
    if not impl.argnames:
        return lambda *args: fn()
    pick = operator.itemgetter(*(spec_args.index(a) for a in impl.argnames))
    if len(impl.argnames) == 1:
        return lambda *args: fn(pick(args))
    return lambda *args: fn(*pick(args))
