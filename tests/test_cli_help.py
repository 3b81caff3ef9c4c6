"""What makes the ``napikit`` command pleasant to learn: every ``--help`` ends with
examples that are real command lines, and ``napikit completion`` writes a shell
completion script."""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
from contextlib import redirect_stdout
from pathlib import Path

import pytest

import napikit
from napikit import scenarios
from napikit.cli import build_parser, main
from napikit.completion import MISSING
from napikit.plugins import registry


def _sub_commands() -> list[str]:
    (sub,) = (a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return list(sub.choices)


#: Every sub-command build_parser has, so a new one is checked without being named here.
SUB_COMMANDS = _sub_commands()
#: ``""``: ``napikit --help`` itself.
COMMANDS = ["", *SUB_COMMANDS]


def _help(capsys: pytest.CaptureFixture[str], command: str) -> str:
    assert main([command, "--help"] if command else ["--help"]) == 0
    return capsys.readouterr().out


def _example_lines(capsys: pytest.CaptureFixture[str], command: str) -> list[str]:
    """The command lines of the examples section that ends ``command``'s help."""
    _, _, section = _help(capsys, command).rpartition("\nexamples:\n")
    return [line.strip() for line in section.splitlines() if not line.strip().startswith("#")]


def _argv(line: str) -> list[str]:
    """An example's arguments after ``napikit``, without its shell redirection."""
    words = shlex.split(line)
    assert words[0] == "napikit", line
    return words[1:words.index(">")] if ">" in words else words[1:]


@pytest.mark.parametrize("command", COMMANDS)
def test_help_ends_with_two_to_four_examples(capsys, command):
    """After the last "examples:" heading come only examples, each a comment saying what
    it does and a napikit command line, and nothing else."""
    out = _help(capsys, command)
    assert "\nexamples:\n" in out
    lines = out.rpartition("\nexamples:\n")[2].rstrip("\n").split("\n")
    assert 2 <= len(lines) // 2 <= 4 and len(lines) % 2 == 0
    assert all(why.startswith("  # ") for why in lines[0::2])
    assert all(line.startswith("  napikit ") for line in lines[1::2])


@pytest.mark.parametrize("command", COMMANDS)
def test_every_example_parses(capsys, command):
    """Each example's command line is accepted by the parser (parsed, not run)."""
    for line in _example_lines(capsys, command):
        build_parser().parse_args(_argv(line))


@pytest.mark.parametrize("command", COMMANDS)
def test_examples_name_only_known_policies_and_scenarios(capsys, command):
    """The parser takes any name; the examples use only installed policies and shipped
    scenarios."""
    for line in _example_lines(capsys, command):
        args = build_parser().parse_args(_argv(line))
        for name in ("policy", "scenario", "dump"):
            value = getattr(args, name, None)
            named = value if isinstance(value, list) else [value] if value else []
            known = registry().names() if name == "policy" else scenarios.names()
            assert set(named) <= set(known), line


def test_help_imports_no_optional_library():
    """``napikit --help`` stays fast: it imports neither shtab nor the heavy extras."""
    optional = ("shtab", "pandas", "pyarrow", "dask", "distributed", "matplotlib", "tqdm")
    probe = ("import sys\nfrom napikit.cli import main\nmain(['--help'])\n"
             f"print([m for m in sys.modules if m.partition('.')[0] in {optional!r}])")
    # -P and napikit's own folder on the path: the checkout's napikit/ is uncompiled.
    env = {**os.environ, "PYTHONPATH": str(Path(napikit.__file__).parent.parent)}
    out = subprocess.run([sys.executable, "-P", "-c", probe], capture_output=True, text=True,
                         check=True, env=env).stdout
    assert out.splitlines()[-1] == "[]"


# ------------------------------------------------------------------ completion

#: Sources the script, completes the words given (the last one being typed) with the
#: function the script registered for napikit, and prints the candidates, one a line.
_COMPLETE = """
source "$1"; shift
spec=$(complete -p napikit); fn=${spec#*-F }; fn=${fn%% *}
COMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 )); COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
COMPREPLY=()
"$fn"
printf '%s\\n' "${COMPREPLY[@]}"
"""

needs_bash = pytest.mark.skipif(shutil.which("bash") is None, reason="no bash here")


@pytest.fixture(scope="module")
def complete(tmp_path_factory: pytest.TempPathFactory):
    """Candidates bash offers for the words of a napikit command line."""
    path = tmp_path_factory.mktemp("completion") / "napikit.bash"
    with open(path, "w") as f, redirect_stdout(f):
        assert main(["completion", "bash"]) == 0

    def candidates(*words: str) -> list[str]:
        return subprocess.run(["bash", "-c", _COMPLETE, "bash", str(path), "napikit", *words],
                              capture_output=True, text=True, check=True).stdout.split()

    return candidates


@needs_bash
def test_bash_completes_every_sub_command(complete):
    assert complete("") == SUB_COMMANDS


@needs_bash
def test_bash_completes_only_matching_sub_commands(complete):
    assert complete("co") == ["compare", "completion"]


@needs_bash
@pytest.mark.parametrize("command", ["run", "compare"])
def test_bash_completes_policy_names(complete, command):
    assert complete(command, "--policy", "") == registry().names()


@needs_bash
@pytest.mark.parametrize("words", [("run", "--scenario"), ("compare", "--scenario"),
                                   ("scenarios", "--dump")])
def test_bash_completes_scenario_names(complete, words):
    assert complete(*words, "") == scenarios.names()


@needs_bash
def test_bash_completes_files_after_config(complete, tmp_path, monkeypatch):
    (tmp_path / "my.toml").write_text("")
    monkeypatch.chdir(tmp_path)
    assert complete("run", "--config", "m") == ["my.toml"]


@pytest.mark.parametrize("shell", ["zsh", "tcsh"])
def test_other_shells_scripts_name_every_sub_command(capsys, shell):
    assert main(["completion", shell]) == 0
    out = capsys.readouterr().out
    assert all(command in out for command in SUB_COMMANDS)


def test_completion_without_shtab_is_one_line_exit_2(capsys, monkeypatch):
    """Without shtab: the install hint in one line, status 2, nothing on stdout."""
    monkeypatch.setitem(sys.modules, "shtab", None)  # None: its import raises ImportError
    code = main(["completion", "bash"])
    out, err = capsys.readouterr()
    assert (code, out, err) == (2, "", f"napikit: error: {MISSING}\n")


def test_completion_of_an_unknown_shell_lists_the_shells(capsys):
    code = main(["completion", "fish"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "'bash', 'zsh', 'tcsh'" in err
