"""Session-wide fixtures: a tiny lab, a tiny base vocabulary and tiny pretrained models, made in-process
once per test session and shared by every stage's tests (each is seconds on a CPU). Beside them what several
test modules share: a fake web for the real-data scripts, and a small synthetic multilingual world of text
with a base tokenizer trained on it."""

import functools
import hashlib
import io
import json
import os
import random
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

# the smallest model that still learns something: used by every stage's tests
TINY_MODEL = ["--n_layer=2", "--n_head=2", "--n_kv_head=1", "--n_embd=32", "--block_size=32", "--batch_size=8",
              "--lr=3e-3", "--eval_tokens=2048", "--progress=false", "--device=cpu"]


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


def lab_texts(lab_dir):
    """The first held-out document of every lab language: every script of the lab."""
    from pipeline import documents

    manifest = documents.read_manifest(lab_dir)
    files = documents.language_files(lab_dir, [entry["code"] for entry in manifest["languages"]], "val")
    return [next(documents.read_documents(path)) for path in files.values()]


# text the lab never writes: odd whitespace, case folding in the contraction rule, other scripts, emoji
EDGE_TEXTS = ["Hello  world!\n\n  x\t\ty \r\n\r\n", "it's I'M don'T we'LL ſ K",
              "\u00a0nbsp\u2003em\u3000ideo\u0085\u2028", "12345 ١٢٣ ½ 3.14", "emoji 😀👍🏽 naïve café", "   ", "x"]


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


# ---- a fake web: url -> bytes, with Range requests and connections that break -------------------
# (the real-data scripts' tests: test_prepare_real.py, test_prepare_benchmarks.py, test_real_pipeline.py)

HF = "https://huggingface.co"


class FakeResponse(io.BytesIO):
    def __init__(self, body, status, headers, break_after=None):
        super().__init__(body)
        self.status, self.headers, self.break_after = status, headers, break_after

    def read(self, n=-1):
        if self.break_after is not None:
            if self.tell() >= self.break_after:
                raise ConnectionResetError("connection reset by peer")
            n = self.break_after - self.tell() if n is None or n < 0 else min(n, self.break_after - self.tell())
        return super().read(n)


class FakeWeb:
    def __init__(self, files):
        self.files, self.requests, self.breaks, self.sent = dict(files), [], {}, []

    def __call__(self, request, timeout=None):
        url, byte_range = request.full_url, request.get_header("Range")
        self.requests.append((url, byte_range))
        self.sent.append(request)
        if url not in self.files:
            raise urllib.error.HTTPError(url, 404, "Not Found", {}, None)
        body = self.files[url]
        start = int(byte_range[len("bytes="):-1]) if byte_range else 0
        headers = {"Content-Length": str(len(body) - start)}
        if start:
            headers["Content-Range"] = f"bytes {start}-{len(body) - 1}/{len(body)}"
        return FakeResponse(body[start:], 206 if start else 200, headers, self.breaks.pop(url, None))

    def fetched(self, fragment):
        return [u for u, _ in self.requests if fragment in u]


def tree(entries):
    """The Hub tree API's answer for a list of (path, bytes)."""
    return json.dumps([{"type": "file", "path": p, "size": len(b), "oid": "0" * 40,
                        "lfs": {"oid": hashlib.sha256(b).hexdigest(), "size": len(b)}} for p, b in entries]).encode()


@pytest.fixture
def web(monkeypatch):
    fake = FakeWeb({})
    monkeypatch.setattr(urllib.request, "urlopen", fake)
    return fake


# ---- a small synthetic multilingual world (test_tokenizer.py, test_tokenizer_cli.py, test_documents.py) --

ALPHABETS = {
    "latin": "abcdefghijklmnopqrstuvwxyzäöü",
    "cyrillic": "абвгдежзийклмнопрстуфхцчшщыэюя",
    "greek": "αβγδεζηθικλμνξοπρστυφχψω",
    "thai": "กขคฆงจฉชซญดตถทธนบปผพฟภมยรลวสหอฮ" + "ะาิีึืุู",  # written without spaces
}


def corpus(script, seed, n_docs, spaces=True, doc_seed=0):
    """Documents in a made-up language: a Zipfian lexicon of syllable words in one script."""
    rng = random.Random(seed)
    syllables = ["".join(rng.choice(ALPHABETS[script]) for _ in range(rng.randint(1, 3))) for _ in range(60)]
    lexicon = ["".join(rng.choice(syllables) for _ in range(rng.randint(1, 4))) for _ in range(800)]
    weights = [1 / (k + 1) for k in range(len(lexicon))]
    rng = random.Random(seed * 1000 + doc_seed)  # other documents, same language
    docs = []
    for _ in range(n_docs):
        sentences = []
        for _ in range(rng.randint(2, 5)):
            s = (" " if spaces else "").join(rng.choices(lexicon, weights, k=rng.randint(4, 12)))
            sentences.append(s[0].upper() + s[1:] + rng.choice([".", "!", "?", ", 42.", " (7)."]))
        docs.append(" ".join(sentences))
    return docs


BASE_VOCAB = 600


@functools.cache
def base_docs():
    """The base vocabulary's text: two languages (made on first use, not by every test session)."""
    return corpus("latin", 1, 300) + corpus("cyrillic", 2, 300)


@functools.cache
def new_docs():
    """The text a vocabulary is extended on: a language of a known script, and two of new scripts."""
    return corpus("latin", 3, 300) + corpus("greek", 4, 200) + corpus("thai", 5, 100, spaces=False)


@pytest.fixture(scope="module")
def base():
    """The base tokenizer, trained on base_docs()."""
    import tokenizer

    return tokenizer.train(base_docs(), BASE_VOCAB)
