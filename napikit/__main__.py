"""``python -m napikit``: the ``napikit`` command."""

import sys

try:
    from napikit.cli import main
except KeyboardInterrupt:  # Ctrl-C before main() can answer it: napikit is still loading
    print("napikit: interrupted", file=sys.stderr)
    sys.exit(130)

sys.exit(main())
