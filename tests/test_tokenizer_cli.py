"""Tests for tokenizer.py's command line: train, extend and stats as a user runs them, and their bad inputs."""
import os
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import tokenizer as T  # noqa: E402
from conftest import BASE_VOCAB, base_docs, new_docs  # noqa: E402
from pipeline.documents import corpus_documents, read_documents  # noqa: E402
from test_documents import numbered_file  # noqa: E402

BASE_DOCS, NEW_DOCS = base_docs(), new_docs()  # test_tokenizer.py's texts


def test_cli_train_extend_stats(tmp_path, capsys):
    base_txt, new_txt = tmp_path / "base.txt", tmp_path / "new.txt"
    base_txt.write_text("\n\n".join(BASE_DOCS[:200]) + "\n")
    new_txt.write_text("\n\n".join(NEW_DOCS[300:500]) + "\n")
    base_tok, ext_tok = str(tmp_path / "base.tiktoken"), str(tmp_path / "ext.tiktoken")
    T.main(["train", "--input", str(base_txt), "--vocab_size", "400", "--out", base_tok])
    T.main(["extend", "--base", base_tok, "--input", str(new_txt), "--n_new", "100", "--out", ext_tok])
    assert T.Tokenizer.load(ext_tok).n_vocab == 500
    capsys.readouterr()
    T.main(["stats", "--tokenizer", base_tok, ext_tok, "--input", str(base_txt), str(new_txt)])
    table = capsys.readouterr().out.strip().splitlines()
    assert table[0] == "| input | base.tiktoken (400) | ext.tiktoken (500) |"
    assert [row.split(" | ")[0] for row in table[2:]] == ["| base.txt", "| new.txt", "| all"]
    new_row = [float(x) for x in table[3].strip("| ").split(" | ")[1:]]
    assert new_row[1] > new_row[0]  # more bytes per token for the new language after extension


def test_cli_says_when_the_text_supports_fewer_merges(tmp_path, capsys):
    small, out = tmp_path / "small.txt", str(tmp_path / "small.tiktoken")
    small.write_text("ab ab abc\n\nabc ab\n")
    T.main(["train", "--input", str(small), "--vocab_size", "400", "--out", out])
    err = capsys.readouterr().err
    assert err.startswith("warning: train: the text supports only") and T.Tokenizer.load(out).n_vocab < 400


def test_cli_bad_inputs(base, tmp_path):
    good, empty, corrupt = tmp_path / "good.txt", tmp_path / "empty.txt", tmp_path / "bad.tiktoken"
    good.write_text("some text here\n\nmore text\n")
    empty.write_text("\n\n  \n")
    corrupt.write_text("QQ== 0\nnot a line at all\n")
    tok = str(tmp_path / "base.tiktoken")
    base.save(tok)
    out = str(tmp_path / "out.tiktoken")
    cases = [
        (["train", "--input", str(empty), "--vocab_size", "300", "--out", out], "empty corpus"),
        (["train", "--input", str(good), "--vocab_size", "100", "--out", out], ">= 260"),
        (["train", "--input", str(tmp_path / "nope.txt"), "--vocab_size", "300", "--out", out], "cannot read"),
        (["extend", "--base", tok, "--input", str(good), "--n_new", "0", "--out", out], "must be a positive integer"),
        (["extend", "--base", str(corrupt), "--input", str(good), "--n_new", "5", "--out", out],
         "bad.tiktoken: line 2: malformed line"),
        (["extend", "--base", tok, "--input", str(empty), "--n_new", "5", "--out", out], "empty corpus"),
        (["stats", "--tokenizer", str(corrupt), "--input", str(good)], "line 2"),
    ]
    for argv, message in cases:
        with pytest.raises(SystemExit) as e:
            T.main(argv)
        assert message in str(e.value.code), argv
    assert not os.path.exists(out)


def test_cli_help(capsys):
    for argv in (["train"], ["extend"], ["stats"]):
        with pytest.raises(SystemExit) as e:
            T.main(argv + ["--help"])
        assert e.value.code == 0 and "--input" in capsys.readouterr().out
    script = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tokenizer.py")
    done = subprocess.run([sys.executable, script, "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "usage:" in done.stdout
    done = subprocess.run([sys.executable, script, "train"], capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "required" in done.stderr


def test_cli_train_streams_the_same_vocabulary(tmp_path, capsys):
    path, out = tmp_path / "base.txt", str(tmp_path / "base.tiktoken")
    path.write_text("\n\n".join(BASE_DOCS), encoding="utf-8")
    assert list(read_documents(str(path))) == BASE_DOCS
    T.main(["train", "--input", str(path), "--vocab_size", str(BASE_VOCAB), "--out", out])
    assert T.Tokenizer.load(out).mergeable_ranks == T.train(BASE_DOCS, BASE_VOCAB).mergeable_ranks
    assert "bytes per token on" in capsys.readouterr().out
    T.main(["train", "--input", str(path), "--vocab_size", "300", "--out", out, "--stats_bytes", "0"])
    assert "bytes per token" not in capsys.readouterr().out


def test_cli_max_bytes(tmp_path, capsys):
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    numbered_file(a, 400, seed=4)
    numbered_file(b, 400, seed=5, script="cyrillic")
    budget = (os.path.getsize(a) + os.path.getsize(b)) // 4
    outs = [str(tmp_path / f"{k}.tiktoken") for k in range(3)]
    for out, seed in zip(outs, (0, 0, 1)):
        T.main(["train", "--input", str(a), str(b), "--vocab_size", "500", "--out", out, "--max_bytes", str(budget),
                "--seed", str(seed)])
    first, again, other = (T.Tokenizer.load(out).mergeable_ranks for out in outs)
    assert first == again and first != other
    sample = list(corpus_documents([str(a), str(b)], budget, seed=0))
    assert first == T.train(sample, 500).mergeable_ranks  # trained on exactly that sample
    capsys.readouterr()
    T.main(["stats", "--tokenizer", outs[0], "--input", str(a), str(b), "--max_bytes", "3000"])
    assert len(capsys.readouterr().out.strip().splitlines()) == 5


def test_cli_sampling_bad_inputs(tmp_path):
    good, bad = tmp_path / "good.txt", tmp_path / "bad.txt"
    good.write_text("some text here\n\nmore text\n")
    bad.write_bytes(b"text\n\n\xc3\x28 broken\n")
    out = str(tmp_path / "out.tiktoken")
    train = ["train", "--vocab_size", "300", "--out", out, "--input"]
    cases = [
        (train + [str(good), "--max_bytes", "0"], "--max_bytes must be at least one byte per input file"),
        (train + [str(good), "--max_bytes", "-5"], "--max_bytes must be at least one byte per input file"),
        (train + [str(good), str(good), "--max_bytes", "1"], "--max_bytes must be at least one byte per input file"),
        (train + [str(good), "--stats_bytes", "-1"], "--stats_bytes must be 0"),
        (train + [str(good), str(tmp_path / "nope.txt")], "cannot read"),
        (train + [str(good), str(bad)], "bad.txt is not UTF-8 text (bad byte at offset 6)"),
        (["stats", "--tokenizer", out, "--input", str(good), "--max_bytes", "0"], "--max_bytes must be at least"),
    ]
    for argv, message in cases:
        with pytest.raises(SystemExit) as e:
            T.main(argv)
        assert message in str(e.value.code), argv
    assert not os.path.exists(out)
