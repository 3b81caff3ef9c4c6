"""Shell completion for ``napikit``: ``napikit completion bash|zsh|tcsh`` prints a script
written by shtab (``pip install 'napikit[completion]'``).

The script completes sub-commands and options, the values of options with a fixed set
(``completion``'s shells, ``validate --scheduler``), policy names after ``--policy``,
scenario names after ``--scenario`` and ``--dump``, and paths after options that take a
file or a directory. The names are those known when the script is written: write it again
after installing a policy package.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator

from napikit import scenarios
from napikit.errors import NapikitError
from napikit.plugins import registry

#: The shells shtab writes scripts for.
SHELLS = ("bash", "zsh", "tcsh")
MISSING = "napikit completion needs shtab: pip install 'napikit[completion]'"

#: Metavars of the options and positionals that name a file or a directory.
_FILES = ("FILE", "FILE.toml", "FILE.png", "RESULT.json", "SWEEP.toml")
_DIRECTORIES = ("DIR",)


def _actions(parser: argparse.ArgumentParser) -> Iterator[argparse.Action]:
    """Every action of ``parser`` and of its sub-commands' parsers."""
    for action in parser._actions:
        yield action
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _actions(sub)


def script(parser: argparse.ArgumentParser, shell: str) -> str:
    """The completion script of ``parser`` (built by :func:`napikit.cli.build_parser`, and
    changed here: build one for this alone) for ``shell``, one of :data:`SHELLS`."""
    try:
        import shtab
    except ImportError:
        raise NapikitError(MISSING) from None
    names = {"--policy": registry().names(), "--scenario": scenarios.names(),
             "--dump": scenarios.names()}
    for action in _actions(parser):
        named = [names[o] for o in action.option_strings if o in names]
        if named:
            # Choices are what shtab completes in every shell. The names are checked
            # where they are used, with a message that lists them, so argparse never
            # gets to see these choices: this parser only writes the script.
            action.choices = named[0]
        elif action.metavar in _FILES:
            action.complete = shtab.FILE  # type: ignore[attr-defined]
        elif action.metavar in _DIRECTORIES:
            action.complete = shtab.DIRECTORY  # type: ignore[attr-defined]
    return str(shtab.complete(parser, shell))
