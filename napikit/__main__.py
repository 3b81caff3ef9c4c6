"""``python -m napikit``: the ``napikit`` command."""

import sys

from napikit.cli import main

sys.exit(main())
