"""Type stub of napikit/_core_traced.pyx (compiled): napikit._core with trace recording."""

from napikit._core import Sim as Sim
