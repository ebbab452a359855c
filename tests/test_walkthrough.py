"""The README's "One seed by hand" runs as written: the commands of its fenced block, in order, in a temporary
folder. bash expands each command exactly as a student's shell would (braces, line continuations); each is then run
in this process (torch is imported once, not thirteen times), with tests/test_pipeline.py's micro sizes appended for
every key the command leaves to config/lab.py. Nothing is edited into a command; a key the command sets is never
overridden."""

import importlib
import json
import os
import re
import subprocess

import pytest
import torch
from test_pipeline import MICRO

from conftest import ROOT
from pipeline import documents

# run.sh's own micro settings in tests/test_pipeline.py: the lab and the vocabulary as small as conftest's lab_dir
# and test_pipeline's VOCAB, adaptation as test_pipeline's BUDGETS
EXTRA = {"data/lab/prepare.py": ["--mb_per_lang", "0.03", "--examples_per_task", "24", "--progress", "0"],
         "tokenizer.py": ["--vocab_size", "300", "--stats_bytes", "0"], "adapt.py": ["--adapt_tokens=2000"]}


def walkthrough():
    readme = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    section = readme.split("## One seed by hand\n", 1)[1].split("\n## ", 1)[0]
    return re.search(r"```bash\n(.*?)```", section, flags=re.S).group(1)


def expanded_commands(block, cwd):
    """[argv of each `python` command] as bash expands them: a shell function named python writes its arguments
    down instead of running anything."""
    script = 'python() { printf "%s\\0" "$@"; printf "\\1\\0"; }\n' + block
    out = subprocess.run(["bash", "-e", "-c", script], cwd=cwd, capture_output=True, check=True, timeout=60).stdout
    commands, argv = [], []
    for word in out.decode().split("\0")[:-1]:
        if word == "\1":
            commands.append(argv)
            argv = []
        else:
            argv.append(word)
    return commands


def micro(argv):
    """The micro sizes for the keys this command does not set itself."""
    sections = {}
    exec(MICRO, sections)
    given = {a[2:].partition("=")[0] for a in argv if a.startswith("--")}
    stage = os.path.basename(argv[0])[:-3]
    return [f"--{key}={','.join(value) if isinstance(value, list) else value}"
            for key, value in sections.get(stage, {}).items() if key not in given] + EXTRA.get(argv[0], [])


@pytest.fixture
def one_thread():
    """Micro models run fastest on one thread (two spin against each other on a shared machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_the_readme_walkthrough_runs_as_written(tmp_path, monkeypatch, one_thread):
    (tmp_path / "config").symlink_to(os.path.join(ROOT, "config"))  # the commands read config/lab.py
    monkeypatch.chdir(tmp_path)
    commands = expanded_commands(walkthrough(), tmp_path)
    assert [c[0] for c in commands[:3]] == ["data/lab/prepare.py", "tokenizer.py", "train.py"]
    out_dirs = []
    for argv in commands:
        module = importlib.import_module(argv[0][:-3].replace("/", "."))
        module.main(argv[1:] + micro(argv))
        out_dirs += [a.partition("=")[2] for a in argv if a.startswith(("--out_dir=", "--out="))]
    # the vocabulary is learned on exactly the pretraining languages the lab's manifest names
    tok = next(c for c in commands if c[0] == "tokenizer.py")
    inputs = tok[tok.index("--input") + 1:next(i for i, a in enumerate(tok) if a.startswith("--") and i > 2)]
    assert inputs == list(documents.language_files("out/lab", documents.group_languages("out/lab", "pretraining"),
                                                   "train").values())
    # every stage wrote a folder of its own, all of them in the one seed folder report.py reads
    assert len(out_dirs) == len(set(out_dirs)) and all(d.startswith("out/hand/") for d in out_dirs)
    for run in (d for d in out_dirs if not d.endswith(".json")):
        assert os.path.exists(os.path.join(run, "ckpt.pt")), run
    results = json.load(open("out/hand/seed0/results.json"))
    assert list(results["models"]) == ["Baseline", "BA", "AFA", "AFA_splice"]
    report = open("out/hand/report/results.md", encoding="utf-8").read()
    assert "## AFA − BA" in report and "| 500,000 |" in report  # the adaptation table reads the folders' budget
