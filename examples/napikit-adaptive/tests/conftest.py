"""Test set-up of napikit-adaptive: napikit's conformance kit checks ``adaptive``.

The kit (napikit's ``pytest11`` plugin) checks the policy named by
``--napikit-policy NAME`` or, without the option, by ``NAPIKIT_POLICY``; this package's
tests check its own policy unless told otherwise.
"""

import os

os.environ.setdefault("NAPIKIT_POLICY", "adaptive")
