"""model.py: causality, the loss, the two pieces of surgery (reset and expand_vocab) and the accounting;
the KV cache and padding are tests/test_inference.py's."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

import model as model_module
from model import GPT, GPTConfig
from pipeline import common


def tiny(vocab_size=300, **kw):
    torch.manual_seed(0)
    return GPT(GPTConfig(vocab_size=vocab_size, block_size=32, n_layer=2, n_head=4, n_kv_head=2, n_embd=64, **kw))


def test_future_tokens_never_change_past_logits():
    model = tiny()
    idx = torch.randint(0, 300, (2, 20))
    changed = idx.clone()
    changed[:, 12:] = (changed[:, 12:] + 7) % 300
    a, _ = model(idx)
    b, _ = model(changed)
    assert torch.equal(a[:, :12], b[:, :12])
    assert not torch.allclose(a[:, 12:], b[:, 12:])
    with pytest.raises(ValueError, match="longer than block_size=32"):
        model(torch.zeros(1, 33, dtype=torch.long))


def test_padding_rows_take_no_probability_mass():
    """The head has a multiple of 64 rows (for speed); the rows past vocab_size are no token, so whatever they hold
    changes neither the logits nor the loss. Fails if forward computes the loss over the padded logits (or returns
    them)."""
    model = tiny(vocab_size=300)
    assert model.config.padded_vocab_size == 320 and model.lm_head.weight.shape[0] == 320
    idx, targets = torch.randint(0, 300, (1, 8)), torch.randint(0, 300, (1, 8))
    logits, loss = model(idx, targets)
    with torch.no_grad():
        model.lm_head.weight[300:] = torch.randn(20, 64) * 10  # large logits, if they counted
    again, loss_again = model(idx, targets)
    assert logits.shape[-1] == 300 and torch.equal(again, logits) and torch.equal(loss_again, loss)
    assert torch.equal(model.token_nll(idx, targets).mean(), loss)


def test_loss_mask_and_ignored_targets():
    model = tiny()
    idx, targets = torch.randint(0, 300, (2, 10)), torch.randint(0, 300, (2, 10))
    mask = torch.zeros(2, 10, dtype=torch.long)
    mask[:, 5:] = 1
    _, masked = model(idx, targets, loss_mask=mask)
    nll = model.token_nll(idx, targets)
    assert torch.allclose(masked, nll[:, 5:].mean())
    _, nothing = model(idx, targets, loss_mask=torch.zeros_like(mask))
    assert nothing.item() == 0.0  # nothing to learn: no NaN


def test_token_nll_in_chunks_equals_the_whole_logits(monkeypatch):
    """token_nll makes the logits a few positions at a time (LOGITS_CHUNK values): the nats are those of the
    whole [B, T, vocab] logits at once, and so are bits per byte; no chunk holds more positions than its
    share. Fails if token_nll goes back to one head call over every position. (Bit for bit on one thread
    here; with several threads a BLAS may split a matrix of another height differently: the last bit.)"""
    model = tiny().eval()
    idx, targets = torch.randint(0, 300, (3, 20)), torch.randint(0, 300, (3, 20))
    targets[0, :4] = -1
    with torch.no_grad():
        logits, _ = model(idx)
        whole = F.cross_entropy(logits.reshape(-1, 300), targets.reshape(-1), ignore_index=-1, reduction="none")
        tokens = np.random.default_rng(0).integers(0, 300, 200).astype(np.uint32)
        token_bytes = torch.randint(0, 4, (300,), generator=torch.Generator().manual_seed(0))
        bpb_whole = common.bits_per_byte(model, tokens, token_bytes, 16, 4, "cpu")
        monkeypatch.setattr(model_module, "LOGITS_CHUNK", 7 * 300)  # 7 positions a chunk: 60 / 7 leaves a rest
        real_head, rows = model.head, []
        monkeypatch.setattr(model, "head", lambda x: rows.append(x.shape[0]) or real_head(x))
        chunked = model.token_nll(idx, targets)
        assert rows == [7] * 8 + [4]
        torch.testing.assert_close(chunked, whole.view(3, 20), rtol=1e-6, atol=1e-6)
        assert (chunked[0, :4] == 0).all()
        assert common.bits_per_byte(model, tokens, token_bytes, 16, 4, "cpu") == pytest.approx(bpb_whole, rel=1e-6)


def test_reset_token_embeddings_touches_only_the_embedding():
    model = tiny()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.reset_token_embeddings(torch.Generator().manual_seed(1))
    after = model.state_dict()
    for name in before:
        assert torch.equal(before[name], after[name]) == (name != "wte.weight"), name
    assert abs(after["wte.weight"].std().item() - 0.02) < 0.002
    again = tiny()
    again.reset_token_embeddings(torch.Generator().manual_seed(1))
    assert torch.equal(again.wte.weight, model.wte.weight)  # seeded: identical on every rank and on resume


def test_expand_vocab_keeps_old_rows_and_old_token_logits():
    model = tiny(vocab_size=300)
    idx = torch.randint(0, 300, (1, 12))
    old_logits, _ = model(idx)
    old_wte, old_head = model.wte.weight[:300].clone(), model.lm_head.weight[:300].clone()
    model.expand_vocab(420)
    assert model.config.vocab_size == 420 and model.wte.weight.shape[0] == 448
    assert torch.equal(model.wte.weight[:300], old_wte) and torch.equal(model.lm_head.weight[:300], old_head)
    new_logits, _ = model(idx)
    assert new_logits.shape[-1] == 420
    assert torch.allclose(new_logits[..., :300], old_logits, atol=1e-6)


def test_counts():
    model = tiny()
    assert model.num_params() - model.num_params(non_embedding=True) == 320 * 64


@pytest.mark.parametrize("n_kv_head", [4, 2])
def test_flops_per_token_is_what_a_training_step_computes(n_kv_head):
    """flops_per_token (train.py's MFU) against torch's FLOP counter over the forward and backward pass of full
    blocks, attention by its math kernel (whose matmuls the counter sees), grouped-query attention too. Fails if
    flops_per_token drops the attention term, counts the embedding lookup or the norms as matmuls, or forgets the
    backward pass."""
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=300, block_size=32, n_layer=2, n_head=4, n_kv_head=n_kv_head, n_embd=64))
    idx = torch.randint(0, 300, (2, 32))
    with FlopCounterMode(display=False) as counter, sdpa_kernel(SDPBackend.MATH):
        model(idx, idx)[1].backward()
    assert counter.get_total_flops() == model.flops_per_token() * idx.numel()


