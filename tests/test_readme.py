"""The README as a student reads it: the reset block it quotes is train.py's code, line for line; CI runs its test
command; the files its commands make are the ones the configs read; its reading list names code that exists. (Its
walkthrough runs in tests/test_walkthrough.py.)"""

import ast
import glob
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


def readme_commands():
    """The commands of the README's bash blocks, a continued line joined to its command."""
    readme = open(os.path.join(ROOT, "README.md")).read()
    blocks = re.findall(r"```bash\n(.*?)```", readme, flags=re.S)
    return [line for block in blocks for line in block.replace("\\\n", " ").split("\n") if line.strip()]


def test_every_configs_tokenizer_is_made_by_a_readme_command():
    """A config's pretraining reads the base vocabulary it names: a README command makes that file, a tokenizer.py
    train or run.sh under a `CONFIG=<name>` the README gives (run.sh writes out/tokenizer/<config>.tiktoken). Fails
    if, e.g., config/paper_400m.py reads out/tokenizer/wikipedia.tiktoken while the real-data steps write
    gpu_small.tiktoken."""
    import train
    from pipeline import runtime

    commands = readme_commands()
    made = {re.search(r"--out (\S+)", c).group(1) for c in commands if c.startswith("python tokenizer.py train")}
    run_sh = open(os.path.join(ROOT, "run.sh")).read()
    assert "TOK=$OUT/tokenizer/$CONFIG.tiktoken" in run_sh  # what the second kind relies on
    readme = open(os.path.join(ROOT, "README.md")).read()
    made |= {f"out/tokenizer/{name}.tiktoken" for name in re.findall(r"(?:^|`)CONFIG=(\w+)[ `]", readme, re.M)}
    for path in sorted(glob.glob(os.path.join(ROOT, "config", "*.py"))):
        tokenizer = runtime.parse_config(train.TrainConfig, "train", [path]).tokenizer
        assert tokenizer in made, (os.path.basename(path), tokenizer, made)


def test_the_reading_order_names_code_that_exists():
    """Each `file.py` of the README's reading list is followed by names defined in it (functions, classes and
    `Class.method`). Fails if a named function is renamed or moved to another file without the list."""
    readme = open(os.path.join(ROOT, "README.md")).read()
    listed = readme.split("Read the code in this order", 1)[1].split("\n\n", 1)[0]
    checked, path = 0, None
    for token in re.findall(r"`([^`]+)`", listed):
        if token.endswith(".py"):
            path = os.path.join(ROOT, token)
            tree = ast.parse(open(path).read())
            defined = {node.name for node in tree.body if isinstance(node, (ast.FunctionDef, ast.ClassDef))}
            defined |= {f"{node.name}.{item.name}" for node in tree.body if isinstance(node, ast.ClassDef)
                        for item in node.body if isinstance(item, ast.FunctionDef)}
        else:
            assert path and token in defined, f"README's reading list: {token} is not defined in {path}"
            checked += 1
    assert checked >= 10
