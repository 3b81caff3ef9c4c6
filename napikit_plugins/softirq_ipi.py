"""Plugin: the classic ``softirq-ipi`` policy."""

from napikit import hookimpl
from napikit_plugins._policies import SoftirqIpi


@hookimpl
def napikit_register_policies(registry):
    registry.register(
        "softirq-ipi",
        SoftirqIpi,
        description="classic: remote backlogs kicked by RPS IPI, NET_RX softirq inline",
    )
