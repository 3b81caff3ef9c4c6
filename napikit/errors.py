"""Errors napikit reports to its users: always one line, always naming the culprit."""

from __future__ import annotations


class NapikitError(Exception):
    """Base of every error napikit raises on purpose (the CLI prints it and exits 2)."""


#: How much of a wrong value an error shows.
GOT_SHOWN_MAX = 200


class ConfigError(NapikitError, ValueError):
    """A configuration field holds a value napikit cannot run.

    The message names the field, the value given and the values allowed, e.g.
    ``ncpus: must be an integer from 1 to 8192 (got 0)``.
    """

    def __init__(self, field: str, allowed: str, got: object) -> None:
        self.field = field
        self.allowed = allowed
        self.got = got
        shown = repr(got)
        if len(shown) > GOT_SHOWN_MAX:  # a 100,000-entry list is not a one-line error
            shown = shown[:GOT_SHOWN_MAX] + f"... ({len(shown)} characters)"
        super().__init__(f"{field}: must be {allowed} (got {shown})")


class PluginError(NapikitError):
    """A plugin's hook raised: the message names the plugin and the hook."""

    kind = "plugin"

    def __init__(self, plugin: str, hook: str, message: str) -> None:
        self.plugin = plugin
        self.hook = hook
        super().__init__(f"{self.kind} {plugin!r}, hook {hook}: {message}")


class PolicyError(PluginError):
    """A backlog-scheduling policy misbehaved: it raised, or returned an invalid decision.

    The message names the policy, the hook, and where it happened (CPU, simulated time).
    """

    kind = "policy"

    def __init__(self, policy: str, hook: str, message: str) -> None:
        self.policy = policy
        super().__init__(policy, hook, message)


class StallError(PolicyError):
    """The stall watchdog found a backlog scheduled but never polled (a lost kick).

    ``cpu`` is the stalled backlog's CPU and ``time_ns`` when the watchdog fired.
    """

    def __init__(self, policy: str, hook: str, message: str, cpu: int, time_ns: int) -> None:
        self.cpu = cpu
        self.time_ns = time_ns
        super().__init__(policy, hook, message)
