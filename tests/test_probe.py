"""evaluation/probe.py: retrieval@1 of translations from mean-pooled hidden states, and evaluate.py --probe
(tests/test_evaluate.py)."""

import torch
from test_evaluate import byte_tokenizer, tiny_model

from evaluation import probe
from evaluation.inference import hidden_states

torch.set_num_threads(1)

TEXTS = ["the cat sat", "a dog ran far away", "birds sing", "the red house on the hill", "rain"]


def test_retrieval_finds_translations_and_only_them():
    """Identical passages are found; a shifted list (each passage paired with another's translation) is not."""
    a = torch.randn(20, 8, generator=torch.Generator().manual_seed(0))
    assert probe.retrieval_at_1(a, a) == 1.0
    assert probe.retrieval_at_1(a, a.roll(1, dims=0)) == 0.0


def test_a_language_offset_does_not_hide_alignment():
    """Every passage of a language shares a direction of its own (its script, its tokens); centring takes it
    out. Fails without the centring in retrieval_at_1: the offset swamps the cosines."""
    g = torch.Generator().manual_seed(1)
    a = torch.randn(30, 8, generator=g)
    b = a + 0.3 * torch.randn(30, 8, generator=g) + 50 * torch.randn(8, generator=g)
    assert probe.retrieval_at_1(a, b) == 1.0


def test_pooling_is_the_mean_after_endoftext_whatever_the_batch():
    """Each passage's vector is the mean of its own tokens' states (not <|endoftext|>'s, not the padding's),
    the same in a batch of unequal lengths as alone. Fails if the mean starts at position 0 or counts padding."""
    tok, model = byte_tokenizer(), tiny_model(260, seed=3)
    batched = probe.pooled_states(model, tok, TEXTS, batch_size=4)
    assert batched.shape == (model.config.n_layer + 1, len(TEXTS), model.config.n_embd)
    for i, text in enumerate(TEXTS):
        states = hidden_states(model, torch.tensor([[tok.eot_id] + tok.encode(text)]))
        alone = torch.stack([s[0, 1:].mean(0) for s in states])
        torch.testing.assert_close(batched[:, i], alone, atol=1e-5, rtol=1e-5)


def test_probe_per_language_and_layer():
    """A language whose passages are English's, in order, retrieves at 1 in every layer; one whose passages
    are in another order cannot (chance is 1/5, and each is paired with a different passage)."""
    tok, model = byte_tokenizer(), tiny_model(260, seed=4)
    out = probe.probe(model, tok, {"en": TEXTS, "xx": list(TEXTS), "yy": TEXTS[1:] + TEXTS[:1]}, batch_size=2)
    assert set(out) == {"xx", "yy"}
    assert out["xx"] == [1.0] * (model.config.n_layer + 1)
    assert max(out["yy"]) < 1.0


def test_word_states_pool_the_word_tokens_in_context():
    """A word's vector is the mean of its own tokens' states where it occurs (a root counts inside a longer
    word that starts with it, never in the middle of another), averaged over its occurrences. Fails if the
    token spans are off by one or a match inside a word counts."""
    tok, model = byte_tokenizer(), tiny_model(260, seed=5)
    text = "the cat sat\n\nbobcat and cats"
    states = probe.word_states(model, tok, text, {"cat", "sat"})
    first = hidden_states(model, torch.tensor([[tok.eot_id] + tok.encode("the cat sat")]))
    second = hidden_states(model, torch.tensor([[tok.eot_id] + tok.encode("bobcat and cats")]))
    # bytes 4..6 of the first document (tokens 5..7 after <|endoftext|>), 11..13 of the second ("cats")
    want = torch.stack([(a[0, 5:8].mean(0) + b[0, 12:15].mean(0)) / 2 for a, b in zip(first, second)])
    torch.testing.assert_close(states["cat"], want, atol=1e-5, rtol=1e-5)
    assert set(states) == {"cat", "sat"}


def test_word_probe_sees_a_language_the_model_reads_as_english():
    """A language that is English in capitals, for a model whose capital letters' embedding rows are the
    small letters', is English to the model: every word retrieves its English word in the embeddings and
    at every layer. With the rows left random it does not."""
    tok, model = byte_tokenizer(), tiny_model(260, seed=6)
    words = "cat dog fox bird cow pig hen owl bee ant".split()
    text = "\n\n".join(f"the {a} saw a {b} near the {c}" for a, b, c in zip(words, words[3:] + words[:3],
                                                                           words[6:] + words[:6]))
    lexicon = {"en": {w: w for w in words}, "xx": {w: w.upper() for w in words}}
    texts = {"en": text, "xx": text.upper()}
    random_rows = probe.word_probe(model, tok, lexicon, texts)["xx"]
    assert random_rows["n"] == random_rows["n_context"] == len(words) and random_rows["embeddings"] < 1
    with torch.no_grad():
        for c in range(ord("a"), ord("z") + 1):
            model.wte.weight[tok.encode(chr(c).upper())[0]] = model.wte.weight[tok.encode(chr(c))[0]]
    same = probe.word_probe(model, tok, lexicon, texts)["xx"]
    assert same["embeddings"] == 1.0 and same["layers"] == [1.0] * (model.config.n_layer + 1)
