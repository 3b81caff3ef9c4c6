"""docs/research-workflow.md, every snippet as written: its shell commands run through
the CLI (a redirection to a file kept), its Python in order in one namespace, its
console transcript compared, its sweep files and cost shapes loaded (the scenario file
it shows is tests/test_scenario_file.py's); all in a scratch directory."""

from __future__ import annotations

import contextlib
import io
import re
import shlex
from pathlib import Path
from typing import Any

import matplotlib
import pytest

import napikit
from napikit.cli import build_parser, main
from napikit.sweep import loads_sweep

matplotlib.use("Agg")

DOC = Path(__file__).resolve().parent.parent / "docs" / "research-workflow.md"
#: Commands parsed but not run: the full study takes minutes (tests/test_study.py runs
#: its engine on small grids).
PARSED_ONLY = ("napikit study",)


def _blocks() -> list[tuple[str, str]]:
    """``(language, text)`` of every fenced block, in the document's order."""
    return re.findall(r"```(\w+)\n(.*?)```", DOC.read_text(), re.S)


def _commands(text: str) -> list[tuple[list[str], str | None]]:
    """The shell block's command lines (``\\`` continuations joined, comments off) as
    ``(argv, file its output is redirected to)``."""
    out = []
    for line in text.replace("\\\n", " ").splitlines():
        words = shlex.split(line, comments=True)
        if not words:
            continue
        target = None
        if ">" in words:
            i = words.index(">")
            words, target = words[:i], words[i + 1]
        out.append((words, target))
    return out


def _run(argv: list[str], target: str | None) -> tuple[int, str, str]:
    assert argv[0] == "napikit", argv
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = main(argv[1:])
    if target is not None:
        Path(target).write_text(stdout.getvalue())
    return code, stdout.getvalue(), stderr.getvalue()


@pytest.fixture(scope="module")
def walked(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The document run top to bottom in a scratch directory: each block's outcome
    (``None``: it ran as written, else what went wrong) and the Python namespace."""
    work = tmp_path_factory.mktemp("research-workflow")
    scope: dict[str, Any] = {}
    outcomes: list[tuple[str, str, str | None]] = []
    with contextlib.chdir(work):
        for lang, text in _blocks():
            outcomes.append((lang, text, _walk(lang, text, scope)))
            if lang == "toml" and text.startswith('format = "napikit-sweep/1"'):
                scope["__sweep_file__"] = text
    return {"outcomes": outcomes, "scope": scope, "dir": work}


def _walk(lang: str, text: str, scope: dict[str, Any]) -> str | None:
    if lang == "sh":
        for argv, target in _commands(text):
            if " ".join(argv).startswith(PARSED_ONLY):
                build_parser().parse_args(argv[1:])
                continue
            if argv[1] == "sweep" and not Path(argv[2]).exists():
                # `napikit sweep FILE.toml` runs the sweep file shown just before it
                Path(argv[2]).write_text(scope["__sweep_file__"])
            code, _, err = _run(argv, target)
            if code != 0:
                return f"{' '.join(argv)}: exit {code}: {err}"
    elif lang == "console":
        lines = text.splitlines()
        code, out, err = _run(shlex.split(lines[0].removeprefix("$ ")), None)
        if (out + err).splitlines() != lines[1:]:
            return f"printed {out + err!r}, the document shows {lines[1:]!r}"
    elif lang == "python":
        try:
            exec(compile(text, str(DOC), "exec"), scope)
        except Exception as e:  # the test names the block and the error
            return f"{type(e).__name__}: {e}"
    elif lang == "toml":
        try:
            if text.startswith('format = "napikit-sweep/1"'):
                loads_sweep(text, root=Path.cwd())
            elif text.startswith("[cost_distributions."):
                # a fragment: the cost shapes of a scenario file
                base = napikit.scenarios.get("seed-rps").config
                config = napikit.loads_scenario(napikit.dump_scenario(base) + "\n" + text)
                assert set(config.cost_distributions) == set(re.findall(
                    r"^\[cost_distributions\.(\w+)\]", text, re.M))
        except napikit.NapikitError as e:
            return str(e)
    return None


def _ids() -> list[str]:
    return [f"{n}-{lang}" for n, (lang, _) in enumerate(_blocks())]


@pytest.mark.parametrize("n", range(len(_blocks())), ids=_ids())
def test_the_snippet_runs_as_written(walked: dict[str, Any], n: int) -> None:
    lang, text, outcome = walked["outcomes"][n]
    assert outcome is None, f"block {n} ({lang}) {text[:60]!r}: {outcome}"


def test_the_snippets_made_what_they_say(walked: dict[str, Any]) -> None:
    """The files and values the text names: the dumped scenario, the result, the
    timeline, the sweep's DataFrame and the plot."""
    work, scope = walked["dir"], walked["scope"]
    for name in ("my-rps.toml", "run.json", "perf-a.pftrace", "perf-a-rates.png"):
        assert (work / name).stat().st_size > 0, name
    assert scope["timeline"].start_ns == 1_000_000 and scope["slices"]
    assert len(scope["df"]) == 36 and set(scope["p99"]["n"]) == {3}
