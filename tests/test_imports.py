"""Imports run one way, on every code path (an import inside a function counts as much as one at the top):
the helpers in pipeline/ and evaluation/ import no top-level script; data preparation reaches neither torch,
the model nor evaluation/; and requirements.txt is exactly what `bash run.sh` imports, the tests and export.py
adding only what requirements-dev.txt lists."""

import ast
import glob
import importlib.metadata
import importlib.util
import os
import re
import subprocess
import sys

from conftest import ROOT

# top-level files that are programs (a __main__ block), not libraries such as model.py
SCRIPTS = {os.path.basename(p)[:-3] for p in glob.glob(os.path.join(ROOT, "*.py"))
           if "__main__" in open(p, encoding="utf-8").read()}


def imports_of(path):
    """The modules one file imports, each as every name it could be (`from pipeline import common` may import
    pipeline or pipeline.common): at the top and inside functions alike."""
    names = set()
    for node in ast.walk(ast.parse(open(path, encoding="utf-8").read())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
    return names


def source_file(name, here):
    """The repository file of a module name imported by a file in the folder `here` (a script's folder is on its
    path: tests/ import conftest, bench/ bench_train), or None: the standard library or a package."""
    for folder in (ROOT, here):
        base = os.path.join(folder, *name.split("."))
        for path in (base + ".py", os.path.join(base, "__init__.py")):
            if os.path.isfile(path):
                return path
    return None


def reached(paths):
    """({repository file: the file that first imported it}, {third-party top-level module: the file that first
    imported it}) of everything the files import, following the repository's own modules."""
    seen, third_party, todo = {p: None for p in paths}, {}, list(paths)
    while todo:
        path = todo.pop()
        here = os.path.dirname(path)
        for name in imports_of(path):
            found, top = source_file(name, here), name.split(".")[0]
            if found and found not in seen:
                seen[found] = path
                todo.append(found)
            elif not (found or os.path.isdir(os.path.join(ROOT, top)) or source_file(top, here)
                      or top in sys.stdlib_module_names):
                third_party.setdefault(top, path)
    return seen, third_party


def chain(seen, path):
    """path <- the file that imported it <- ... <- a root: how a file was reached."""
    links = []
    while path:
        links.append(os.path.relpath(path, ROOT))
        path = seen[path]
    return " <- ".join(links)


def test_helpers_import_no_top_level_script():
    """pipeline/ and evaluation/ are what the scripts share: they never import a script. Fails if, e.g.,
    pipeline/runtime.py imports Tokenizer from tokenizer.py again instead of pipeline/vocabulary.py."""
    helpers = glob.glob(os.path.join(ROOT, "pipeline", "*.py")) + glob.glob(os.path.join(ROOT, "evaluation", "*.py"))
    seen, _ = reached(helpers)
    scripts = [chain(seen, p) for p in seen if os.path.dirname(p) == ROOT and os.path.basename(p)[:-3] in SCRIPTS]
    assert not scripts, scripts


# data preparation and what it shares with the stages: none of it may need torch, the model or evaluation/
DATA_SIDE = sorted(glob.glob(os.path.join(ROOT, "data", "**", "*.py"), recursive=True)) + [
    os.path.join(ROOT, p) for p in ("pipeline/documents.py", "pipeline/chat.py", "pipeline/vocabulary.py",
                                    "tokenizer.py")]
FORBIDDEN = {"torch", "model", "evaluation"}


def test_data_preparation_never_reaches_torch_the_model_or_evaluation():
    """Every data/ script and the helpers it uses, on every code path: first by reading their imports (lazy ones
    included, such as data/wikipedia/prepare.py's --tokenize), then by importing all of them in a fresh
    interpreter, which also catches a package that brings torch. Fails if, e.g., --tokenize imports
    pipeline.common (and so torch) again, or data/benchmarks/prepare.py imports evaluation.metrics."""
    seen, third_party = reached(DATA_SIDE)
    bad = [chain(seen, p) for p in seen if os.path.relpath(p, ROOT).split(os.sep)[0].removesuffix(".py") in FORBIDDEN]
    bad += [f"{m} <- {chain(seen, p)}" for m, p in third_party.items() if m in FORBIDDEN]
    assert not bad, bad
    modules = [os.path.relpath(p, ROOT)[:-3].replace(os.sep, ".").removesuffix(".__init__") for p in seen]
    installed = [m for m in sorted(third_party) if importlib.util.find_spec(m)]  # pyarrow is optional
    code = ("import importlib, sys\n"
            "sys.path.insert(0, sys.argv[1])\n"
            "for name in sys.argv[2:]:\n"
            "    importlib.import_module(name)\n"
            f"    loaded = {{m.split('.')[0] for m in sys.modules}} & {FORBIDDEN!r}\n"
            "    if loaded:\n"
            "        sys.exit(f'importing {name} loads {sorted(loaded)}')\n")
    done = subprocess.run([sys.executable, "-c", code, ROOT, *installed, *modules], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr


def requirement_names(path):
    """The distribution names a requirements file lists (normalised), following its `-r` lines."""
    names = set()
    for line in open(path, encoding="utf-8"):
        line = line.split("#")[0].strip()
        if line.startswith("-r"):
            names |= requirement_names(os.path.join(os.path.dirname(path), line[2:].strip()))
        elif line:
            names.add(normalised(re.match(r"[A-Za-z0-9._-]+", line).group()))
    return names


def normalised(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def distributions(modules):
    """{module: its installed distribution's normalised name}; a module no installed distribution provides is
    named as itself (and then fails the comparison, which is what should happen)."""
    provided = importlib.metadata.packages_distributions()
    return {m: normalised(provided.get(m, [m])[0]) for m in modules}


def test_requirements_are_what_run_sh_imports():
    """requirements.txt lists exactly the packages the scripts run.sh calls import (nothing only the tests or the
    export need); requirements-dev.txt adds what tests/ and export.py import, but for the optional packages of
    real data and lm-evaluation-harness (requirements-data.txt, requirements-eval.txt), whose tests skip without
    them. Fails if pytest or transformers goes back into requirements.txt, or a stage starts importing a package
    no file lists."""
    run_sh = open(os.path.join(ROOT, "run.sh"), encoding="utf-8").read()
    stages = sorted({os.path.join(ROOT, s) for s in re.findall(r"\$PY ([\w/]+\.py)", run_sh)})
    assert {"train", "adapt", "finetune", "evaluate", "report"} <= {os.path.basename(s)[:-3] for s in stages}
    needed = set(distributions(reached(stages)[1]).values())
    assert requirement_names(os.path.join(ROOT, "requirements.txt")) == needed
    extra = glob.glob(os.path.join(ROOT, "tests", "*.py")) + [os.path.join(ROOT, "export.py")]
    listed = set().union(*(requirement_names(os.path.join(ROOT, f"requirements-{kind}.txt"))
                           for kind in ("dev", "data", "eval")))
    missing = {m: d for m, d in distributions(reached(extra)[1]).items() if d not in listed}
    assert not missing, missing
