"""napikit's hypothesis profiles, and example counts that scale with the active one.

``napikit`` (the default of napikit's own tests): 50 examples a test, deterministic
(derandomized, no example database), so a run passes or fails the same way everywhere.
``napikit-long``: ten times as many, randomized, to hunt wider. Importing this module
registers both; napikit's pytest plugin imports it, so ``--hypothesis-profile
napikit-long`` works in any project that has napikit and hypothesis installed.

Hypothesis lets a test's own ``@settings(max_examples=N)`` override the profile, so a
test that sets a count writes ``max_examples=examples(N)`` to keep scaling with it.
The count is read when the test is decorated: load the profile before the test module
is imported (a conftest.py, or ``--hypothesis-profile``).
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings

__all__ = ["BASE_EXAMPLES", "LONG_FACTOR", "examples"]

#: Examples a test runs under the ``napikit`` profile: the count ``examples(n)``'s
#: ``n`` is written against.
BASE_EXAMPLES = 50
#: How many times more ``napikit-long`` runs.
LONG_FACTOR = 10

settings.register_profile(
    "napikit",
    max_examples=BASE_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "napikit-long",
    parent=settings.get_profile("napikit"),
    max_examples=LONG_FACTOR * BASE_EXAMPLES,
    derandomize=False,
)


def examples(n: int) -> int:
    """``n`` examples scaled by the active profile: ``n`` under ``napikit``, ``10 * n``
    under ``napikit-long``; in general ``n * max_examples / BASE_EXAMPLES``, at least 1."""
    # settings() with no arguments is the active profile.
    return max(1, round(n * settings().max_examples / BASE_EXAMPLES))
