"""The house style, as a linter keeps it: `ruff check .` with pyproject.toml's rules (lines of at most 120
columns, pyflakes, import order). ruff is a test requirement (requirements-dev.txt), so a missing ruff fails."""

import glob
import os
import re
import subprocess
import sys

from conftest import ROOT


def test_ruff_check_passes():
    """Fails on, e.g., an unused import, a name used before it is defined or an unsorted import block."""
    done = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "."], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]


def repository_files(*extensions):
    """The repository's own files with these endings (not a virtual environment or the runs' out/)."""
    for path in glob.glob(os.path.join(ROOT, "**", "*"), recursive=True):
        if path.endswith(extensions) and os.path.relpath(path, ROOT).split(os.sep)[0] not in (".venv", "out"):
            yield path


def test_no_python_line_is_longer_than_120_characters():
    """ruff's E501 lets a line through when it ends in a long URL or string it cannot break; the repository
    has none, so every line fits beside the code. Fails on any line of 121 characters or more."""
    long_lines = []
    for path in repository_files(".py"):
        with open(path, encoding="utf-8") as f:
            long_lines += [f"{os.path.relpath(path, ROOT)}:{n}" for n, line in enumerate(f, 1)
                           if len(line.rstrip("\n")) > 120]
    assert not long_lines, long_lines


def test_the_repository_explains_itself():
    """A clone has no issue tracker of this project: code and docs say what they mean instead of citing an issue by
    number (an upstream project's "PR #3347" names its repository). Fails on, e.g., the issue numbers bench/'s
    docstrings once gave for where they came from."""
    cited = []
    for path in repository_files(".py", ".md", ".sh", ".txt", ".toml"):
        with open(path, encoding="utf-8") as f:
            cited += [f"{os.path.relpath(path, ROOT)}:{n}" for n, line in enumerate(f, 1)
                      if re.search(r"\bissues? ?#?\d", line, flags=re.I)]
    assert not cited, cited
