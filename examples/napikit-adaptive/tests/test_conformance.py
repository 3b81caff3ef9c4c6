"""napikit's conformance kit, run against the ``adaptive`` policy (see conftest.py)."""

from napikit.testing.suite import *  # noqa: F401,F403
