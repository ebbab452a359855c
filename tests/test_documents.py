"""Tests for pipeline/documents.py: documents streamed from text files and even, seeded samples of them."""
import os
import random
import sys
from collections import Counter

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from conftest import corpus  # noqa: E402
from pipeline import documents as D  # noqa: E402


def whole_file_documents(path):
    """The reference split: the whole text at once."""
    with open(path, encoding="utf-8") as f:
        return [doc for doc in f.read().split("\n\n") if doc.strip()]


@pytest.mark.parametrize("text", [
    "",
    "\n\n\n",
    "one document, no newline at the end",
    "first\n\nsecond\n\n\n\nthird after two blank lines\n\n\n",
    "three newlines\n\n\nkeep the third\n\n \n\nwhitespace-only skipped\n",
    "windows\r\nline ends\r\n\r\nsecond\r\n\r\n\r\n",
    "old mac\r\rline ends\rmixed\r\n\nwith\n\r\nall kinds\r",
    "multibyte ÄÖ 中文 ๑๒ 😀 across chunk edges\n\nпривет мир\n\n",
])
def test_read_documents_streams_exactly_the_whole_file_split(tmp_path, text):
    path = tmp_path / "t.txt"
    path.write_bytes(text.encode("utf-8"))
    want = whole_file_documents(path)
    for chunk_bytes in (1, 2, 3, 5, 1 << 20):  # tiny chunks: documents and "\r\n" span chunk edges
        assert list(D.read_documents(str(path), chunk_bytes)) == want, chunk_bytes


def test_read_documents_random_texts(tmp_path):
    rng, path = random.Random(0), tmp_path / "t.txt"
    for _ in range(200):
        path.write_bytes("".join(rng.choice(["a", "é", " ", "\n", "\r", "\r\n", "中"])
                                 for _ in range(rng.randint(0, 40))).encode("utf-8"))
        want = whole_file_documents(path)
        for chunk_bytes in (1, 3, 64):
            assert list(D.read_documents(str(path), chunk_bytes)) == want
        for budget in (1, 5, 20):  # a sample starts anywhere, in a run of line ends too: still whole documents
            sample = list(D.sample_documents(str(path), budget, seed=rng.randrange(9), chunk_bytes=rng.choice([1, 64])))
            assert not Counter(sample) - Counter(want)


def test_read_documents_bad_files(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"fine text\n\n" + b"x" * 20 + b"\xff more\n")
    with pytest.raises(SystemExit, match=r"bad\.txt is not UTF-8 text \(bad byte at offset 31\)"):
        list(D.read_documents(str(bad), 4))
    with pytest.raises(SystemExit, match="cannot read .*nope.txt"):
        list(D.read_documents(str(tmp_path / "nope.txt")))
    with pytest.raises(ValueError, match="max_bytes must be positive"):
        list(D.sample_documents(str(bad), 0))


def numbered_file(path, n_docs, seed, script="latin"):
    """A file of n_docs documents of Zipfian words (conftest.corpus, in one of its scripts), each starting with
    its number (to see where a sample came from), apart by blank lines of every kind: after three line ends a
    document starts with a line end."""
    rng = random.Random(seed)
    text = "".join(f"{k:05d} {doc}" + rng.choice(["\n\n", "\n\n\n", "\r\n\r\n", "\r\n\r\n\r\n", "\r\r\n\n"])
                   for k, doc in enumerate(corpus(script, seed, n_docs)))
    path.write_bytes(text.encode("utf-8"))
    return whole_file_documents(path)


def test_sample_documents_is_seeded_even_and_within_budget(tmp_path):
    path = tmp_path / "big.txt"
    docs = numbered_file(path, 2000, seed=1)
    budget = os.path.getsize(path) // 10
    sample = list(D.sample_documents(str(path), budget, seed=0, chunk_bytes=512))
    assert sample == list(D.sample_documents(str(path), budget, seed=0))  # the chunk size changes nothing
    assert sample != list(D.sample_documents(str(path), budget, seed=1))
    n_bytes = sum(len(d.encode()) for d in sample)
    assert budget // 2 < n_bytes <= budget
    position = {doc: k for k, doc in enumerate(docs)}
    picked = [position[d] for d in sample]  # KeyError: not a document of the file
    assert picked == sorted(set(picked))  # in file order, none twice
    quarters = Counter(4 * k // len(docs) for k in picked)
    assert min(quarters[q] for q in range(4)) > len(picked) / 8  # from all through the file
    assert list(D.sample_documents(str(path), os.path.getsize(path))) == docs  # the whole file fits
    for budget in (os.path.getsize(path) * 9 // 10, 5000, 1):  # most of the file, a few documents, none
        for seed in range(3):
            sample = list(D.sample_documents(str(path), budget, seed, chunk_bytes=256))
            picked = [position[d] for d in sample]
            assert picked == sorted(set(picked)) and sum(len(d.encode()) for d in sample) <= budget


def test_corpus_documents_gives_each_file_an_equal_share(tmp_path):
    small, big = tmp_path / "small.txt", tmp_path / "big.txt"
    small_docs = numbered_file(small, 300, seed=2, script="greek")
    big_docs = numbered_file(big, 3000, seed=3, script="cyrillic")
    budget = 2 * os.path.getsize(small) // 2  # half the small file from each
    sample = list(D.corpus_documents([str(small), str(big)], budget, seed=5))
    small_set, big_set = set(small_docs), set(big_docs)
    from_small, from_big = [d for d in sample if d in small_set], [d for d in sample if d in big_set]
    assert len(from_small) + len(from_big) == len(sample)
    for part in (from_small, from_big):
        assert budget // 4 < sum(len(d.encode()) for d in part) <= budget // 2
    assert list(D.corpus_documents([str(small), str(big)])) == small_docs + big_docs
