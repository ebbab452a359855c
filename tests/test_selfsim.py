"""selfsim.py: self-similarity and anisotropy against pairwise cosines, words independent of the
tokenizer, and the hidden state of each word's last token."""

import itertools
from contextlib import nullcontext

import numpy as np
import pytest
import torch
from test_evaluate import byte_tokenizer, tiny_model

import tokenizer
from evaluation import selfsim
from evaluation.inference import hidden_states

torch.set_num_threads(1)


def test_self_similarity_of_identical_and_random_vectors():
    same = torch.ones(6, 16)
    sim, aniso = selfsim.self_similarity(same, torch.tensor([0, 0, 0, 1, 1, -1]))
    assert sim == pytest.approx([1.0]) and aniso == pytest.approx([1.0])
    g = torch.Generator().manual_seed(0)
    random_vectors = torch.randn(300, 4096, generator=g)
    sim, aniso = selfsim.self_similarity(random_vectors, torch.arange(300) % 20)
    assert abs(sim[0]) < 0.02 and abs(aniso[0]) < 0.02  # cosines of random vectors ~ N(0, 1/4096)


def test_self_similarity_matches_pairwise_cosines():
    g = torch.Generator().manual_seed(1)
    vectors = torch.randn(3, 14, 5, generator=g)  # 3 layers, 14 occurrences
    # word 3 occurs once: it has no pair, and counts nowhere
    ids = torch.tensor([0, 1, 0, 2, 1, -1, 0, 2, -1, 1, 3, 2, 0, 0])
    sim, aniso = selfsim.self_similarity(vectors, ids)
    cos = lambda u, v: float(u @ v / (u.norm() * v.norm()))
    for layer in range(3):
        v = vectors[layer]
        per_word = [np.mean([cos(v[i], v[j]) for i, j in itertools.combinations(torch.where(ids == w)[0], 2)])
                    for w in (0, 1, 2)]
        assert sim[layer] == pytest.approx(np.mean(per_word))
        # brute force: every pair of different words (types), the mean cosine over their occurrences' pairs,
        # then the mean over type pairs
        per_pair = [np.mean([cos(v[i], v[j]) for i in torch.where(ids == w)[0] for j in torch.where(ids == u)[0]])
                    for w, u in itertools.combinations((0, 1, 2), 2)]
        assert aniso[layer] == pytest.approx(np.mean(per_pair))


def test_the_baseline_pairs_only_different_words():
    # each word's occurrences are one vector, the words orthogonal: raw 1, baseline 0 however frequent a word is
    # (averaging all pairs, same word included, would give the frequent word's 1 a weight of its count squared)
    vectors = torch.eye(3)[torch.tensor([0] * 20 + [1, 1, 2, 2])]
    sim, aniso = selfsim.self_similarity(vectors, torch.tensor([0] * 20 + [1, 1, 2, 2]))
    assert sim == pytest.approx([1.0]) and aniso == pytest.approx([0.0], abs=1e-12)
    sim, aniso = selfsim.self_similarity(torch.ones(4, 3), torch.tensor([0, 0, 0, -1]))
    assert sim == pytest.approx([1.0]) and aniso == [None]  # one word: no pair of different words


def test_words_do_not_depend_on_the_tokenizer():
    assert ([w for w, _ in selfsim.text_words("The cat's hat, the cat.", True)]
            == ["The", "cat", "s", "hat", "the", "cat"])
    # a word keeps its combining marks (Devanagari vowel signs and virama), which Python's re would split off
    assert [w for w, _ in selfsim.text_words("हमुस् नोक्।", True)] == ["हमुस्", "नोक्"]
    # without spaces: grapheme clusters holding a letter ("e" + combining accent is one), punctuation skipped
    assert [w for w, _ in selfsim.text_words("かきe\u0301。か", False)] == ["か", "き", "e\u0301", "か"]
    docs = ["the cat sees the dog. the cat runs", "the dog eats. the cat"]
    byte_tok, bpe = byte_tokenizer(), tokenizer.train(docs * 20, 280)
    one = selfsim.self_sim_sample(docs, [(byte_tok, 64, byte_tok.token_byte_lengths())], 10_000, True, 2)
    both = selfsim.self_sim_sample(docs, [(byte_tok, 64, byte_tok.token_byte_lengths()),
                                          (bpe, 64, bpe.token_byte_lengths())], 10_000, True, 2)
    assert one["words"] == both["words"] == ["cat", "dog", "the"]
    # a short block cuts the documents (for every model alike), and a word the cut may split is dropped
    cut = selfsim.self_sim_sample(docs, [(byte_tok, 12, byte_tok.token_byte_lengths())], 10_000, True, 1)
    assert cut["texts"][0] == "the cat see" and cut["words"] == ["cat", "dog", "the"] and len(cut["word_ids"][0]) == 2


def test_a_word_counts_from_min_count_occurrences_on():
    """the: 5 occurrences, cat: 3, dog: 2, the rest 1. Fails if the threshold is off by one or ignored."""
    docs = ["the cat sees the dog. the cat runs", "the dog eats. the cat"]
    readers = [(byte_tokenizer(), 64, byte_tokenizer().token_byte_lengths())]
    for min_count, words in ((1, ["cat", "dog", "eats", "runs", "sees", "the"]), (3, ["cat", "the"]), (6, [])):
        sample = selfsim.self_sim_sample(docs, readers, 10_000, True, min_count)
        assert sample["words"] == words, min_count
        ids = [i for per_doc in sample["word_ids"] for i in per_doc.tolist()]
        assert len(ids) == 13 and sum(i >= 0 for i in ids) == sum(docs[0].count(w) + docs[1].count(w) for w in words)


@pytest.mark.parametrize("vocab", ["bytes", "bpe"])
def test_language_self_sim_uses_the_last_token_of_each_word(vocab):
    docs = ["the cat sees the dog. the cat runs", "the dog eats. the cat"]
    tok = byte_tokenizer() if vocab == "bytes" else tokenizer.train(docs * 20, 280)  # words of many tokens / of one
    model = tiny_model(tok.n_vocab, seed=4)
    sample = selfsim.self_sim_sample(docs, [(tok, 64, tok.token_byte_lengths())], 10_000, True, 2)
    sims, n = selfsim.language_self_sim(model, tok, sample, 1, "cpu", nullcontext())
    # independently: walk the tokens, note the one where each word's last byte lands, take its hidden states
    vectors, ids = [], []
    for text, word_ids in zip(sample["texts"], sample["word_ids"]):
        tokens = [tok.eot_id] + tok.encode(text)
        with torch.no_grad():
            states = hidden_states(model, torch.tensor([tokens]))
        owner = [k for k, t in enumerate(tokens) for _ in tok.token_bytes(t)]  # byte -> its token
        ends = [len(text[:m.end()].encode()) for m in selfsim.WORD.finditer(text)]
        vectors += [torch.stack([s[0, owner[e - 1]] for s in states]) for e in ends]
        ids += list(word_ids)
    expected_sim, expected_aniso = selfsim.self_similarity(torch.stack(vectors, 1), torch.tensor(ids))
    assert n == len(ids)
    assert sims["self_sim"] == pytest.approx(expected_sim, abs=1e-5)
    assert sims["anisotropy"] == pytest.approx(expected_aniso, abs=1e-5)
