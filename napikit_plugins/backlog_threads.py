"""Plugin: the ``backlog-threads`` policy (Linux 6.10 ``thread_backlog_napi``)."""

from napikit import hookimpl
from napikit.plugins import PolicyOption
from napikit_plugins._policies import BacklogThreads


@hookimpl
def napikit_register_policies(registry):
    registry.register(
        "backlog-threads",
        BacklogThreads,
        options=[
            PolicyOption(
                "fast_path", bool, True,
                "local requests use the local softirq (False: wake the own thread, the RFC)",
            )
        ],
        description="6.10: remote backlogs wake backlog_napi/N; local fast path",
    )
