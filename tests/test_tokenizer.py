"""Tests for tokenizer.py: tiny multi-script corpora made in-process, nothing downloaded."""
import os
import random
import sys
from collections import Counter

import pytest
import regex

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import tokenizer as T  # noqa: E402
from conftest import BASE_VOCAB, EDGE_TEXTS, base_docs, corpus, lab_texts, new_docs  # noqa: E402
from pipeline import bpe  # noqa: E402

# ---- a small synthetic multilingual world (conftest.py: its alphabets, corpus() and texts) ---------
BASE_DOCS, NEW_DOCS = base_docs(), new_docs()
N_NEW = 400


@pytest.fixture(scope="module")
def ext(base):
    return T.extend(base, NEW_DOCS, N_NEW)


def random_text(rng, n):
    """Random Unicode: every plane, emoji sequences, unseen scripts, lone combining marks, odd spaces,
    digits and the spellings of the special tokens."""
    pools = [
        lambda: chr(rng.randrange(0x20, 0x7F)),
        lambda: chr(rng.choice([rng.randrange(0x80, 0xD800), rng.randrange(0xE000, 0x10000)])),  # BMP, no surrogates
        lambda: chr(rng.randrange(0x10000, 0x110000)),  # planes 1-16
        lambda: rng.choice(["😀", "🎉", "👍🏽", "👨‍👩‍👧", "🇯🇵", "🏳️‍🌈"]),
        lambda: chr(rng.randrange(0x300, 0x370)),  # combining marks, usually with nothing to combine with
        lambda: rng.choice(["ქართული", "አማርኛ", "ᐃᓄᒃᑎᑐᑦ", "𓀀𓀁", "日本語の文", "한국어"]),
        lambda: rng.choice([" ", "  ", "\n", "\n\n", "\r\n", "\t", "\u00a0", "\u3000", "\u200b"]),
        lambda: rng.choice(T.SPECIAL_TOKENS + ["<|", "|>", "'s", "'LL"]),
        lambda: rng.choice("0123456789"),
        lambda: rng.choice(NEW_DOCS)[:rng.randint(1, 30)],
    ]
    return "".join(rng.choice(pools)() for _ in range(n))


# ---- base vocabulary ---------------------------------------------------------------------------

def test_train_id_layout(base):
    assert base.n_vocab == BASE_VOCAB
    r = BASE_VOCAB - len(T.SPECIAL_TOKENS)
    assert [base.eot_id, base.im_start_id, base.im_end_id, base.pad_id] == [r, r + 1, r + 2, r + 3]
    assert base.special_tokens == {s: r + k for k, s in enumerate(T.SPECIAL_TOKENS)}
    assert all(base.token_bytes(i) == bytes([i]) for i in range(256))
    assert sorted(base.mergeable_ranks.values()) == list(range(r))
    assert T.unreachable_tokens(base) == []


def test_regex_split_matches_tiktoken(ext):
    # extend() pre-tokenizes with the `regex` module; tiktoken must split text into the same pieces
    rng = random.Random(0)
    split = regex.compile(T.SPLIT_PATTERN)
    for _ in range(200):
        text = random_text(rng, 40)
        assert [i for piece in split.findall(text) for i in ext.encode(piece)] == ext.encode(text)


def test_split_pattern_is_llama3s(lab_dir):
    """llama.cpp's converter knows no pre-tokenizer of ours; the README maps it to "llama-bpe", whose split
    (Llama 3's, as llama.cpp and tokenizer.json write it) cuts every text exactly where ours does."""
    llama3 = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
              r"|\s*[\r\n]+|\s+(?!\S)|\s+")
    probe = ("\n \n\n \n\n\n \t \t\t \t\n  \n   \n    \n     \n🚀 (normal) 😶\u200d🌫️ ✅ 🦙🦙 "
             "3 33 333 3333 33333 3.3 3..3 3...3 កាន់តែពិសេសអាច😁 ?我想在apple工作1314151天～ "
             "------======= нещо на Български ```````\"\"\"\"......!!!!!!?????? "
             "I've been 'told he's there, 'RE you sure? 'We'Ve a'lot \r\n\r\n x")
    texts = lab_texts(lab_dir) + EDGE_TEXTS + [probe]
    for text in texts:
        assert regex.findall(T.SPLIT_PATTERN, text) == regex.findall(llama3, text), text[:60]


# ---- extension -------------------------------------------------------------------------------

def test_extend_keeps_base_ids_and_appends(base, ext):
    assert ext.n_vocab == base.n_vocab + N_NEW
    for b, i in base.mergeable_ranks.items():
        assert ext.mergeable_ranks[b] == i
    assert ext.special_tokens == base.special_tokens
    new_ids = sorted(i for b, i in ext.mergeable_ranks.items() if b not in base.mergeable_ranks)
    assert new_ids == list(range(base.n_vocab, base.n_vocab + N_NEW))
    assert all(ext.token_bytes(i) == base.token_bytes(i) for i in range(base.n_vocab))


def test_every_token_of_extended_vocab_is_reachable(ext):
    assert T.unreachable_tokens(ext) == []


def test_reachability_check_catches_dead_tokens(base):
    # b"xyq" with neither b"xy" nor b"yq" in the vocabulary: BPE never gets there
    ranks = dict(base.mergeable_ranks)
    ranks.pop(b"xy", None), ranks.pop(b"yq", None)
    ranks = {b: k for k, b in enumerate(sorted(ranks, key=ranks.get))}
    ranks[b"xyq"] = len(ranks)
    specials = {s: len(ranks) + k for k, s in enumerate(T.SPECIAL_TOKENS)}
    tok = T.Tokenizer(ranks, specials)
    assert not T.is_reachable(tok, ranks[b"xyq"])
    assert T.unreachable_tokens(tok) == [ranks[b"xyq"]]
    with pytest.raises(ValueError, match="special"):
        T.is_reachable(tok, tok.eot_id)
    with pytest.raises(ValueError, match="1 tokens tiktoken can never produce"):
        T.extend(tok, ["xyq xyq"], 5)  # its pieces would not be in tiktoken's state: refuse


def test_naively_appended_vocabulary_has_dead_tokens_but_extend_has_none(base, ext):
    # What the issue warns about: append an independently trained BPE of the new text to the base.
    naive = dict(base.mergeable_ranks)
    trained = T.train(NEW_DOCS, 256 + len(T.SPECIAL_TOKENS) + N_NEW)
    for b, _ in sorted(trained.mergeable_ranks.items(), key=lambda x: x[1]):
        if b not in naive:
            naive[b] = len(naive) + len(T.SPECIAL_TOKENS)
    naive = T.Tokenizer(naive, base.special_tokens)
    assert len(T.unreachable_tokens(naive)) > 0
    assert T.unreachable_tokens(ext) == []


def reference_extend(base, texts, n_new):
    """Continued BPE the slow, obvious way: re-encode every piece with tiktoken after every merge."""
    pieces = [p for t in texts for p in regex.findall(T.SPLIT_PATTERN, t)]
    ranks = dict(base.mergeable_ranks)
    for k in range(n_new):
        tok = T.Tokenizer(ranks, base.special_tokens)
        counts = Counter(pair for p in pieces for ids in [tok.encode(p)] for pair in zip(ids, ids[1:]))
        a, b = min(counts, key=lambda pair: (-counts[pair], pair))  # most frequent, then lowest ids
        ranks[tok.token_bytes(a) + tok.token_bytes(b)] = base.n_vocab + k
    return T.Tokenizer(ranks, base.special_tokens)


def test_extend_matches_slow_reference(base):
    # with reduplication (lalala, aaaa): a pair that occurs several times in a row in one word
    texts = corpus("greek", 6, 20) + corpus("latin", 7, 20) + corpus("thai", 8, 5, spaces=False)
    texts += ["lalala lala lalalala aaaa aaaaa ab abab ababab хахаха " * 3, "nanana banana nanab " * 4]
    fast, slow = T.extend(base, texts, 60), reference_extend(base, texts, 60)
    assert fast.mergeable_ranks == slow.mergeable_ranks


def test_merge_word_bookkeeping():
    # the incremental pair counts of extend() against a full recount, on words full of repeats
    rng = random.Random(3)
    pairs = lambda w: Counter(w[k:k + 2] for k in range(len(w) - 1))
    for _ in range(2000):
        word, ab = "".join(rng.choice("abc") for _ in range(rng.randint(2, 12))), rng.choice(["ab", "aa", "ba"])
        if ab not in word:
            continue
        out, removed, added = bpe.merge_word(word, ab, "T")
        assert out == word.replace(ab, "T") and ab not in out
        expected = pairs(out)
        expected.subtract(pairs(word))
        got = Counter(added)
        got.subtract(Counter(removed))
        assert {p: d for p, d in expected.items() if d and p != ab} == {p: d for p, d in got.items() if d and p != ab}


def test_extend_again_keeps_ids(ext):
    more = T.extend(ext, corpus("thai", 9, 40, spaces=False), 50)
    assert more.n_vocab == ext.n_vocab + 50
    assert all(more.token_bytes(i) == ext.token_bytes(i) for i in range(ext.n_vocab))
    assert more.special_tokens == ext.special_tokens
    assert T.unreachable_tokens(more) == []


def test_new_language_text_gets_shorter(base, ext):
    held_out = corpus("greek", 4, 30, doc_seed=1) + corpus("thai", 5, 10, spaces=False, doc_seed=1)
    n_base = sum(len(base.encode(d)) for d in held_out)
    n_ext = sum(len(ext.encode(d)) for d in held_out)
    assert n_ext < 0.6 * n_base
    # base merges all rank below the new ones, so no text can get longer
    for d in corpus("cyrillic", 2, 20, doc_seed=1) + held_out:
        assert len(ext.encode(d)) <= len(base.encode(d))


def test_extend_stops_early_when_pairs_run_out(base):
    with pytest.warns(UserWarning, match=r"only \d+ of the 500 new merges"):
        tok = T.extend(base, ["qqzz qqzz zzqq"], 500)
    assert base.n_vocab < tok.n_vocab < base.n_vocab + 500
    assert T.unreachable_tokens(tok) == []
    assert all(len(tok.encode(piece)) == 1 for piece in ["qqzz", " qqzz", " zzqq"])  # nothing left to merge


@pytest.mark.parametrize("n_new", [0, -3, 2.5, True, "5"])
def test_extend_rejects_bad_n_new(base, n_new):
    with pytest.raises(ValueError, match="n_new"):
        T.extend(base, NEW_DOCS[:5], n_new)


@pytest.mark.parametrize("texts", [[], ["", ""]])
def test_empty_corpus_is_an_error(base, texts):
    with pytest.raises(ValueError, match="empty corpus"):
        T.extend(base, texts, 10)
    with pytest.raises(ValueError, match="empty corpus"):
        T.train(texts, 300)


@pytest.mark.parametrize("vocab_size", [0, 259, 100.0, None])
def test_train_rejects_small_vocab(vocab_size):
    with pytest.raises(ValueError, match="vocab_size"):
        T.train(BASE_DOCS[:10], vocab_size)


def test_train_warns_when_text_is_too_small():
    with pytest.warns(UserWarning, match="supports only"):
        tok = T.train(["ab ab ab"], 400)
    assert tok.n_vocab < 400 and T.unreachable_tokens(tok) == []


def test_train_drops_tokens_tiktoken_cannot_reach(monkeypatch):
    # rustbpe merges pairs of ids; should it ever return a repeated byte string or a token that
    # byte-level BPE cannot rebuild, train() must drop it and renumber without gaps.
    class FakeTrainer:
        def train_from_iterator(self, docs, vocab_size, pattern):
            assert pattern == T.SPLIT_PATTERN and list(docs)

        def get_mergeable_ranks(self):
            tokens = [bytes([b]) for b in range(256)] + [b"ab", b"xyz", b"ab", b"abc", b"yz", b"xyz2"]
            return [(b, i) for i, b in enumerate(tokens)]

    import rustbpe
    monkeypatch.setattr(rustbpe, "Tokenizer", FakeTrainer)
    with pytest.warns(UserWarning, match="3 dropped as unreachable"):
        tok = T.train(["abc xyz"], 256 + 6 + len(T.SPECIAL_TOKENS))
    assert [tok.token_bytes(i) for i in range(256, 259)] == [b"ab", b"abc", b"yz"]
    assert tok.eot_id == 259 and T.unreachable_tokens(tok) == []


# ---- encoding, decoding, special tokens --------------------------------------------------------

@pytest.mark.parametrize("which", ["base", "ext"])
def test_round_trip_random_unicode(base, ext, which):
    tok = {"base": base, "ext": ext}[which]
    rng = random.Random(1)
    texts = [random_text(rng, rng.randint(0, 60)) for _ in range(300)]
    for text, ids in zip(texts, tok.encode_batch(texts)):
        assert tok.decode(ids) == text
        assert ids == tok.encode(text)
        assert not set(ids) & set(tok.special_tokens.values())  # special spellings are plain text


def test_decode_invalid_bytes_gives_replacement_chars(ext):
    euro = "€".encode()
    assert ext.decode([euro[0], euro[1]]) == euro[:2].decode("utf-8", "replace") == "\ufffd"
    assert ext.decode([0xFF, ord("a")]) == "\ufffda"
    rng = random.Random(2)
    ordinary = sorted(ext.mergeable_ranks.values())
    for _ in range(200):
        ids = rng.choices(ordinary, k=rng.randint(1, 20))
        expected = b"".join(ext.token_bytes(i) for i in ids).decode("utf-8", errors="replace")
        assert ext.decode(ids) == expected
    with pytest.raises(ValueError, match="outside the vocabulary"):
        ext.decode([ext.n_vocab])
    with pytest.raises(ValueError, match="outside the vocabulary"):
        ext.decode([-1])


def test_special_tokens_and_byte_lengths(base, ext):
    for tok in (base, ext):
        assert tok.encode("<|endoftext|>") == tok.encode("<|endoftext|" + ">")
        assert tok.eot_id not in tok.encode("<|endoftext|>")
        assert tok.decode([tok.im_start_id]) == "<|im_start|>"
        assert tok.token_bytes(tok.pad_id) == b""
        lengths = tok.token_byte_lengths()
        assert lengths.shape == (tok.n_vocab,)
        specials = set(tok.special_tokens.values())
        assert all((lengths[i] == 0) == (i in specials) for i in range(tok.n_vocab))
        text = NEW_DOCS[3] + " 😀 <|im_end|>"
        assert int(lengths[tok.encode(text)].sum()) == len(text.encode())
        with pytest.raises(ValueError):
            tok.token_bytes(tok.n_vocab)


# ---- file format -----------------------------------------------------------------------------

def test_save_load_round_trip(ext, tmp_path):
    path = tmp_path / "sub" / "tokenizer.tiktoken"
    ext.save(path)
    assert os.listdir(path.parent) == ["tokenizer.tiktoken"]  # the temp file was renamed away
    lines = path.read_text().splitlines()
    assert lines[0] == "AA== 0" and lines[-1] == f"!special <|pad|> {ext.pad_id}"
    loaded = T.Tokenizer.load(path)
    assert loaded.mergeable_ranks == ext.mergeable_ranks and loaded.special_tokens == ext.special_tokens
    assert loaded.encode(NEW_DOCS[0]) == ext.encode(NEW_DOCS[0])


def _corrupt(lines, n_base):
    """name -> (edit of the saved lines, expected message, 1-based line named or None)."""
    r = n_base - len(T.SPECIAL_TOKENS)
    return {
        "duplicate bytes": (lambda L: L.__setitem__(300, L[299].split()[0] + " 300"), "duplicate token bytes", 301),
        "gap in ids": (lambda L: L.pop(400), "missing", None),
        "special collides": (lambda L: L.__setitem__(r, "!special <|endoftext|> 7"), "collides", r + 1),
        "bad base64": (lambda L: L.__setitem__(270, "Q$Q= 270"), "bad base64", 271),
        "bad padding": (lambda L: L.__setitem__(270, "QUI 270"), "bad base64", 271),
        "non-canonical base64": (lambda L: L.__setitem__(270, "QR== 270"), "bad base64", 271),
        "one field": (lambda L: L.__setitem__(10, "Cg=="), "malformed", 11),
        "three fields": (lambda L: L.__setitem__(10, "Cg== 10 10"), "malformed", 11),
        "non-integer id": (lambda L: L.__setitem__(10, "Cg== ten"), "malformed", 11),
        "negative id": (lambda L: L.__setitem__(10, "Cg== -10"), "malformed", 11),
        "blank line": (lambda L: L.insert(5, ""), "malformed", 6),
        "bad special line": (lambda L: L.__setitem__(r + 1, "!special <|im_start|>"), "malformed special", r + 2),
        "duplicate special": (lambda L: L.__setitem__(r + 1, f"!special <|endoftext|> {r + 1}"),
                              "already defined", r + 2),
        "missing special": (lambda L: L.pop(), "<\\|pad\\|> missing", None),
        "missing byte token": (lambda L: L.__setitem__(65, "QUFBQUFB 65"), "single-byte tokens are missing", None),
    }


@pytest.mark.parametrize("case", list(_corrupt([], 600)))
def test_loader_rejects_corrupt_files(base, tmp_path, case):
    path = tmp_path / "tok.tiktoken"
    base.save(path)
    lines = path.read_text().splitlines()
    edit, message, line = _corrupt(lines, base.n_vocab)[case]
    edit(lines)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(SystemExit, match=message) as e:
        T.Tokenizer.load(path)
    assert str(e.value).startswith(f"error: {path}: ")
    if line is not None:
        assert f"line {line}:" in str(e.value)


@pytest.mark.parametrize("data, message", [(b"", "empty"), (b"QQ== 0\n\xff\xfe\n", "not UTF-8")])
def test_loader_rejects_empty_and_binary_files(tmp_path, data, message):
    path = tmp_path / "tok.tiktoken"
    path.write_bytes(data)
    with pytest.raises(SystemExit, match=message):
        T.Tokenizer.load(path)


def test_loader_names_a_missing_or_unreadable_file(tmp_path):
    for path, reason in ((tmp_path / "nope.tiktoken", "No such file"), (tmp_path, "Is a directory")):
        with pytest.raises(SystemExit, match=f"error: cannot read tokenizer {path}: {reason}"):
            T.Tokenizer.load(path)
