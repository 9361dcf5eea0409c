"""ruff over the whole tree with the settings in pyproject.toml: any finding fails the test in
ruff's own words (file, line, rule, message), so the fix is where the message points."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import ROOT


def test_ruff_finds_nothing_in_the_tree():
    pytest.importorskip("ruff", reason="ruff is not installed: pip install -r requirements-dev.txt")
    done = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "--output-format", "concise", "."],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
