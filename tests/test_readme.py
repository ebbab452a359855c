"""The README quotes train.py's reset block: the quote must be the code, line for line."""

import os
import re
import textwrap

from conftest import ROOT


def test_the_readme_reset_block_is_train_pys_code():
    readme = open(os.path.join(ROOT, "README.md")).read()
    section = readme.split("## The method in the loop", 1)[1]
    quoted = re.search(r"```python\n(.*?)```", section, flags=re.S).group(1)
    quoted_lines = textwrap.dedent(quoted).strip("\n").split("\n")
    assert len(quoted_lines) >= 4, quoted
    train_lines = open(os.path.join(ROOT, "train.py")).read().split("\n")
    first = [i for i, line in enumerate(train_lines) if line.strip() == quoted_lines[0].strip()]
    assert first, f"train.py has no line {quoted_lines[0]!r}"
    start = first[0]
    block = textwrap.dedent("\n".join(train_lines[start:start + len(quoted_lines)])).split("\n")
    assert block == quoted_lines


def test_ci_runs_exactly_the_readmes_test_command():
    readme = open(os.path.join(ROOT, "README.md")).read()
    commands = re.findall(r"```bash\n(python3 -m venv .*)\n```", readme)
    ci = open(os.path.join(ROOT, ".ci", "run")).read().strip().split("\n")[-1]
    assert ci in commands and ci.endswith("python -m pytest -q tests"), (ci, commands)
    # the same install, the test requirements added to the main job's
    assert any(c.endswith("bash run.sh") and c.replace("bash run.sh", "python -m pytest -q tests")
               .replace("-r requirements.txt", "-r requirements-dev.txt") == ci for c in commands)
