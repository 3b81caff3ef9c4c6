"""Fixtures of the host tests: a fake ``/proc`` and ``/sys`` tree recorded from a real
machine (a 2-vCPU KVM guest, Linux 6.18.44, HZ 250, haltpoll), copied per test so a
test may write to it; the committed example files. No test reads the real /proc or
/sys, writes ``rps_cpus`` or needs root."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"
RECORDED = DATA / "root"
EXAMPLES = Path(__file__).parents[2] / "examples" / "host"


@pytest.fixture
def fake_root(tmp_path: Path) -> Path:
    """A writable copy of the recorded tree."""
    root = tmp_path / "root"
    shutil.copytree(RECORDED, root)
    return root


@pytest.fixture
def examples() -> Path:
    """``examples/host``: costs.toml and real.json from ``napikit calibrate --quick`` and
    ``napikit kernel-bench --quick``."""
    return EXAMPLES
