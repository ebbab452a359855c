"""Session-wide fixtures: a tiny lab, a tiny base vocabulary and tiny pretrained models, made in-process
once per test session and shared by every stage's tests (each is seconds on a CPU)."""

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

# the smallest model that still learns something: used by every stage's tests
TINY_MODEL = ["--n_layer=2", "--n_head=2", "--n_kv_head=1", "--n_embd=32", "--block_size=32", "--batch_size=8", "--lr=3e-3",
              "--eval_tokens=2048", "--progress=false", "--device=cpu"]


def run_script(*args, check=True):
    """Run one of the project's scripts as a user would; returns the CompletedProcess."""
    result = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=300)
    if check and result.returncode != 0:
        raise AssertionError(f"{args} failed:\n{result.stdout}\n{result.stderr}")
    return result


@pytest.fixture(scope="session")
def lab_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("lab")
    run_script("data/lab/prepare.py", "--out", str(out), "--mb_per_lang", "0.03", "--examples_per_task", "24")
    return str(out)


@pytest.fixture(scope="session")
def tokenizer_path(lab_dir, tmp_path_factory):
    import tokenizer
    from pipeline.documents import group_languages, language_files, read_documents

    texts = []
    for path in language_files(lab_dir, group_languages(lab_dir, "pretraining"), "train").values():
        texts += read_documents(path)
    path = str(tmp_path_factory.mktemp("tok") / "tokenizer.tiktoken")
    tokenizer.train(texts, 512).save(path)
    return path


def pretrain(lab_dir, tokenizer_path, out_dir, *extra):
    import train

    train.main([f"--data_dir={lab_dir}", f"--tokenizer={tokenizer_path}", f"--out_dir={out_dir}", *TINY_MODEL, *extra])
    return str(out_dir)


@pytest.fixture(scope="session")
def pretrained_dir(lab_dir, tokenizer_path, tmp_path_factory):
    """A tiny standard model: 40 steps."""
    return pretrain(lab_dir, tokenizer_path, tmp_path_factory.mktemp("pretrained"), "--max_iters=40", "--eval_every=20")


@pytest.fixture(scope="session")
def forgetting_dir(lab_dir, tokenizer_path, tmp_path_factory):
    """The same tiny model pretrained with a reset every 10 steps."""
    return pretrain(lab_dir, tokenizer_path, tmp_path_factory.mktemp("forgetting"), "--max_iters=40", "--eval_every=20",
                    "--forget_every=10")
