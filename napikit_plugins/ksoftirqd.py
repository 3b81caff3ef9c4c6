"""Plugin: the ``ksoftirqd`` policy (forced-threaded IRQs, PREEMPT_RT before 6.10)."""

from napikit import hookimpl
from napikit_plugins._policies import Ksoftirqd


@hookimpl
def napikit_register_policies(registry):
    registry.register(
        "ksoftirqd",
        Ksoftirqd,
        description="threaded IRQs: softirqs raised in hard-IRQ (RPS IPI) wake ksoftirqd",
    )
