"""Type stub of napikit_plugins/_policies.pyx (compiled): the shipped policies."""

from napikit.decision import CompiledPolicy

class SoftirqIpi(CompiledPolicy):
    def __init__(self) -> None: ...

class Ksoftirqd(CompiledPolicy):
    def __init__(self) -> None: ...

class BacklogThreads(CompiledPolicy):
    @property
    def fast_path(self) -> bool: ...
    def __init__(self, fast_path: bool = True) -> None: ...
