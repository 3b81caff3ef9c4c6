"""The backlog-scheduling policies napikit ships, each a plugin found by entry point.

- ``softirq-ipi``: the classic kernel (remote backlogs kicked by RPS IPIs).
- ``ksoftirqd``: forced-threaded IRQs before Linux 6.10 (softirqs raised in hard-IRQ
  context wake ``ksoftirqd/N``).
- ``backlog-threads``: Linux 6.10 ``thread_backlog_napi`` (``backlog_napi/N`` threads,
  with the local fast path unless ``fast_path=False``).
"""
