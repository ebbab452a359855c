"""The house style, as a linter keeps it: `ruff check .` with pyproject.toml's rules (lines of at most 120
columns, pyflakes, import order). ruff is a test requirement (requirements-dev.txt), so a missing ruff fails."""

import glob
import os
import subprocess
import sys

from conftest import ROOT


def test_ruff_check_passes():
    """Fails on, e.g., an unused import, a name used before it is defined or an unsorted import block."""
    done = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "."], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]


def test_no_python_line_is_longer_than_120_characters():
    """ruff's E501 lets a line through when it ends in a long URL or string it cannot break; the repository
    has none, so every line fits beside the code. Fails on any line of 121 characters or more."""
    long_lines = []
    for path in glob.glob(os.path.join(ROOT, "**", "*.py"), recursive=True):
        if os.path.relpath(path, ROOT).split(os.sep)[0] in (".venv", "out"):
            continue
        with open(path, encoding="utf-8") as f:
            long_lines += [f"{os.path.relpath(path, ROOT)}:{n}" for n, line in enumerate(f, 1)
                           if len(line.rstrip("\n")) > 120]
    assert not long_lines, long_lines
