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
