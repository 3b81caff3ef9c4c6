"""The code in napikit's docs/writing-a-policy.md works as shown: its excerpts are
taken from the real files, its Python examples print what the page says, and its
compiled package builds as documented and decides exactly as ``adaptive`` does.

Runs only inside a napikit checkout (where the page is); the build needs Cython,
setuptools and a C compiler in this environment and is skipped without them.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import napikit

DOC = Path(__file__).resolve().parents[3] / "docs" / "writing-a-policy.md"
pytestmark = pytest.mark.skipif(not DOC.is_file(), reason="not inside a napikit checkout")

#: A fenced block, its language, and the line just above it.
_BLOCK = re.compile(r"(?:^|\n)([^\n]*)\n\n?```(\w*)\n(.*?)```", re.S)
#: "`path`:" on its own line labels a file of the compiled example package.
_FILE = re.compile(r"^`((?:napikit_adaptive_c/)?[\w.]+\.(?:pyx|py|toml))`:$")


def blocks() -> list[tuple[str | None, str, str]]:
    """(file label or None, language, code) of every fenced block of the page."""
    text = DOC.read_text() if DOC.is_file() else ""
    out = []
    for m in _BLOCK.finditer(text):
        label = _FILE.match(m.group(1).strip())
        out.append((label.group(1) if label else None, m.group(2), m.group(3)))
    return out


def examples() -> list[tuple[str, str | None]]:
    """The page's complete Python programs (those importing napikit; excerpts do not),
    each with the ``text`` block that shows its output, if one follows."""
    found = []
    all_blocks = blocks()
    for i, (label, lang, code) in enumerate(all_blocks):
        if lang == "python" and label is None and re.search(r"^import napikit\b", code, re.M):
            nxt = all_blocks[i + 1] if i + 1 < len(all_blocks) else None
            found.append((code, nxt[2] if nxt and nxt[1] == "text" else None))
    return found


@pytest.fixture(scope="module")
def compiled_site(tmp_path_factory) -> Path | None:
    """The page's ``napikit-adaptive-c`` package, written from the page and installed as
    documented (``pip install --no-build-isolation``) into a directory of its own;
    ``None`` where it cannot be built here."""
    if shutil.which(os.environ.get("CC", "cc")) is None:
        return None
    try:
        import Cython  # noqa: F401
    except ImportError:
        return None
    src = tmp_path_factory.mktemp("napikit-adaptive-c")
    (src / "napikit_adaptive_c").mkdir()
    for label, _, code in blocks():
        if label:
            (src / label).write_text(code)
    site = tmp_path_factory.mktemp("site")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-build-isolation",
         "--no-deps", "--no-index", "--target", str(site), str(src)],
        check=True, capture_output=True, text=True,
    )
    return site


def test_the_page_has_the_documented_examples():
    """The page holds the compiled package's four files and runnable Python examples."""
    labels = {label for label, _, _ in blocks() if label}
    assert labels == {"pyproject.toml", "setup.py", "napikit_adaptive_c/__init__.py",
                      "napikit_adaptive_c/_policy.pyx"}
    assert len(examples()) >= 4


def _excerpts() -> list[tuple[str, Path]]:
    """(code, the file it is taken from) of every excerpt on the page."""
    example = Path(__file__).resolve().parents[1]  # the source tree, installed or not
    package = example / "napikit_adaptive" / "__init__.py"
    sources = [
        ("class AdaptiveHandoff:", package),
        ('PolicyOption("high", int, DEFAULT_HIGH,', package),
        ('name = "napikit-adaptive"', example / "pyproject.toml"),
        ("cdef class CompiledPolicy:", Path(napikit.__file__).with_name("decision.pxd")),
    ]
    return [(code, path) for _, _, code in blocks() for marker, path in sources
            if marker in code]


def test_excerpts_are_taken_from_the_real_files():
    """Every line of an excerpt (docstrings aside) is a line of the file it quotes."""
    excerpts = _excerpts()
    assert len(excerpts) == 4
    for code, path in excerpts:
        real = {line.strip() for line in path.read_text().splitlines()}
        missing = [line for line in code.splitlines()
                   if line.strip() and not line.strip().startswith('"""')
                   and line.strip() not in real]
        assert not missing, f"not in {path.name}: {missing}"


@pytest.mark.parametrize("index", range(len(examples())))
def test_python_example_runs_as_shown(index, compiled_site, tmp_path):
    """Each Python example runs, and prints what the page shows after it."""
    code, shown = examples()[index]
    env = dict(os.environ)
    if "adaptive-c" in code:
        if compiled_site is None:
            pytest.skip("the compiled example cannot be built here (no Cython or C compiler)")
        env["PYTHONPATH"] = os.pathsep.join(
            [str(compiled_site), *filter(None, [env.get("PYTHONPATH")])]
        )
    # From a neutral directory: in a checkout, `-c` would import the uncompiled source
    # tree's napikit instead of the installed one.
    done = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    if shown is not None:
        assert done.stdout == shown
