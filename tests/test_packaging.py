"""What installing napikit does to pytest runs: its ``pytest11`` plugin loads in every
one, so it must load harmlessly without hypothesis, and napikit's hypothesis profiles
must lengthen every property test, those with their own ``max_examples`` included.

Each check runs pytest in a subprocess, so a blocked module or a loaded profile cannot
leak into this session.
"""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest

import napikit
from napikit.testing import plugin

ROOT = Path(__file__).resolve().parent.parent


def _env(*paths: Path, **changes: str) -> dict[str, str]:
    """This environment, with the napikit this session imported (and ``paths``) first on
    the child's path: run with -P, a child started in the checkout would otherwise
    import the checkout's napikit/, uncompiled unless built in place."""
    path = [str(p) for p in (*paths, Path(napikit.__file__).parent.parent)]
    return {**os.environ, **changes,
            "PYTHONPATH": os.pathsep.join([*path, os.environ.get("PYTHONPATH", "")])}

#: Runs pytest with hypothesis and matplotlib unimportable, as in a project that has
#: napikit but not its test extra. A finder, not None in sys.modules: pytest itself
#: looks installed plugins' modules up. Hypothesis' own pytest plugin, which such a
#: project would not have, is off.
_WITHOUT_HYPOTHESIS = """
import sys

class Blocked:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in ("hypothesis", "matplotlib"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)

sys.meta_path.insert(0, Blocked())
import pytest
sys.exit(pytest.main(["-p", "no:hypothesispytest", *sys.argv[1:]]))
"""


def _pytest(cwd: Path, *args: str, wrapper: str | None = None,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    command = ["-c", wrapper] if wrapper else ["-m", "pytest"]
    return subprocess.run(
        [sys.executable, "-P", *command, "-p", "no:cacheprovider", "--rootdir", str(cwd),
         *args],
        cwd=cwd, capture_output=True, text=True, timeout=300, env=_env(**(env or {})),
    )


def _napikit_entry_point_installed() -> bool:
    return any(ep.value == plugin.__name__ for ep in entry_points(group="pytest11"))


needs_entry_point = pytest.mark.skipif(
    not _napikit_entry_point_installed(),
    reason="napikit is not installed (no pytest11 entry point); pip install . first",
)


@pytest.fixture
def unrelated_project(tmp_path: Path) -> Path:
    """Another project's tests: one test that knows nothing of napikit."""
    (tmp_path / "test_unrelated.py").write_text("def test_sum():\n    assert 1 + 1 == 2\n")
    return tmp_path


@needs_entry_point
def test_unrelated_project_passes_without_hypothesis(unrelated_project: Path) -> None:
    r = _pytest(unrelated_project, wrapper=_WITHOUT_HYPOTHESIS)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "1 passed" in r.stdout


@needs_entry_point
def test_plugin_option_registers_without_hypothesis(unrelated_project: Path) -> None:
    r = _pytest(unrelated_project, "--help", wrapper=_WITHOUT_HYPOTHESIS)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "--napikit-policy" in r.stdout


@needs_entry_point
def test_suite_without_hypothesis_says_so_in_one_line(unrelated_project: Path) -> None:
    r = _pytest(unrelated_project, "--napikit-policy", "softirq-ipi",
                wrapper=_WITHOUT_HYPOTHESIS)
    assert r.returncode == pytest.ExitCode.USAGE_ERROR, r.stdout + r.stderr
    errors = [line for line in r.stderr.splitlines() if "napikit" in line]
    assert errors == ["ERROR: napikit conformance: the suite needs hypothesis "
                      "(pip install 'napikit[test]')"], r.stderr


# ----------------------------------------------------------------- hypothesis profiles

#: A property test with its own count, and a conftest that loads the chosen profile
#: before the module is decorated, as napikit's tests/conftest.py does.
_COUNTED = """
import os
from hypothesis import given, settings, strategies as st
from napikit.testing.profiles import examples

CALLS = []

@settings(max_examples=examples(7))
@given(st.integers())
def test_counted(x):
    CALLS.append(x)

def test_report():
    print("calls", len(CALLS))
"""
_CONFTEST = """
import os
from hypothesis import settings
import napikit.testing.profiles
settings.load_profile(os.environ["HYPOTHESIS_PROFILE"])
"""


def _calls(project: Path, profile: str) -> int:
    r = _pytest(project, "-s", "-q", env={"HYPOTHESIS_PROFILE": profile})
    assert r.returncode == 0, r.stdout + r.stderr
    return int(r.stdout.split("calls ")[1].split()[0])


def test_long_profile_lengthens_a_test_with_its_own_max_examples(tmp_path: Path) -> None:
    (tmp_path / "conftest.py").write_text(_CONFTEST)
    (tmp_path / "test_counted.py").write_text(_COUNTED)
    base, long = _calls(tmp_path, "napikit"), _calls(tmp_path, "napikit-long")
    assert 0 < base <= 7
    assert long > 7 * 5, f"napikit-long ran {long} examples of a max_examples=examples(7) test"


#: Prints each collected property test's example count.
_SHOW_COUNTS = """
def pytest_collection_modifyitems(items):
    seen = set()
    for item in items:
        fn = getattr(item, "function", None)
        inner = getattr(fn, "hypothesis", None)
        if inner is None or fn in seen:
            continue
        seen.add(fn)
        s = fn._hypothesis_internal_use_settings
        print("COUNT", item.nodeid.split("[")[0], s.max_examples)
"""


def _counts(tmp_path: Path, profile: str) -> dict[str, int]:
    (tmp_path / "show_counts.py").write_text(_SHOW_COUNTS)
    r = subprocess.run(
        [sys.executable, "-P", "-m", "pytest", "-p", "no:cacheprovider", "-p", "show_counts",
         "--collect-only", "-q", "--napikit-policy", "softirq-ipi", "tests"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env=_env(tmp_path, HYPOTHESIS_PROFILE=profile),
    )
    assert r.returncode == 0, r.stdout + r.stderr
    counts = {}
    for line in r.stdout.splitlines():
        if line.startswith("COUNT "):
            _, test, n = line.split()
            counts[test] = int(n)
    return counts


def test_long_profile_lengthens_every_property_test(tmp_path: Path) -> None:
    """Under napikit-long every property test of the suite and of napikit's own tests
    runs ten times the examples it runs under napikit."""
    base, long = _counts(tmp_path, "napikit"), _counts(tmp_path, "napikit-long")
    assert len(base) > 20 and base.keys() == long.keys()
    fixed = sorted(t for t in base if long[t] != 10 * base[t])
    assert not fixed, f"not lengthened by napikit-long: {fixed}"


# ----------------------------------------------------------------- package data


def test_the_wheel_carries_the_studys_sweep_file() -> None:
    """``napikit study`` reads napikit/studies/*.toml from the installed package: the
    wheel's package-data patterns take every file there (and only TOML)."""
    import tomllib

    from napikit import study

    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"]["napikit"]
    shipped = {p for pattern in patterns for p in (ROOT / "napikit").glob(pattern)}
    studies = set((ROOT / "napikit" / "studies").iterdir())
    assert ROOT / "napikit" / study.SHIPPED in studies
    assert studies <= shipped
