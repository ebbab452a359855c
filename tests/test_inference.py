"""evaluation/inference.py: the KV cache and padded batches compute what model.py's forward computes,
batched generation gives each prompt's tokens alone, sampling (top-k, top-p, seeds, the generator's device),
and masked grouped-query attention with k and v expanded to the query heads."""

from unittest import mock

import pytest
import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

from evaluation import inference
from model import GPT, GPTConfig

torch.set_num_threads(1)


def tiny():
    torch.manual_seed(0)
    return GPT(GPTConfig(vocab_size=300, block_size=32, n_layer=2, n_head=4, n_kv_head=2, n_embd=64)).eval()


def test_inference_forward_is_the_training_forward():
    model = tiny()
    idx = torch.randint(0, 300, (2, 20))
    with torch.no_grad():
        logits, _ = model(idx)
    assert torch.equal(model.head(inference.hidden_states(model, idx)[-1]), logits)


def test_generate_with_kv_cache_matches_full_forward():
    model = tiny()
    prompt = torch.randint(0, 300, (7,)).tolist()
    cached = inference.generate(model, prompt, 10)
    ids = list(prompt)
    for _ in range(10):
        with torch.no_grad():
            logits, _ = model(torch.tensor([ids]))
        ids.append(int(logits[0, -1].argmax()))
    assert cached == ids[len(prompt):]
    assert len(inference.generate(model, list(range(30)), 10)) == 2  # stops when the context is full
    with pytest.raises(ValueError, match="every prompt needs at least one token"):
        inference.generate(model, [], 4)


def test_batched_generation_equals_one_prompt_at_a_time():
    """Prompts of different lengths, left-padded in one batch: the same tokens as each prompt alone, also
    when rows stop at different times (stop ids, their own budgets, a full context)."""
    model = tiny()
    g = torch.Generator().manual_seed(3)
    prompts = [torch.randint(0, 300, (n,), generator=g).tolist() for n in (3, 17, 1, 30, 9, 25)]
    stops = {5, 7, 11, 13, 17, 19, 23}
    alone = [inference.generate(model, p, 12, stop_ids=stops) for p in prompts]
    assert inference.generate_batch(model, prompts, 12, stop_ids=stops) == alone
    assert any(len(a) < 12 and a[-1] in stops for a in alone) and any(len(a) == 12 for a in alone)
    assert len(alone[3]) == 2  # 30 + 2 tokens fill the block of 32
    budgets = [1, 12, 5, 12, 3, 7]
    assert inference.generate_batch(model, prompts, budgets) == [inference.generate(model, p, b)
                                                                 for p, b in zip(prompts, budgets)]
    # prompts that start alike (a chat's system prompt): the shared part runs once
    prompts = [prompts[1][:9] + p[:12] for p in prompts] + [prompts[1][:9]]
    assert inference.generate_batch(model, prompts, 8) == [inference.generate(model, p, 8) for p in prompts]
    # sampled: one seeded generator draws each row's tokens in turn, so a batch is reproducible
    draw = lambda: inference.generate_batch(model, prompts[:3], 8, temperature=1.0,  # noqa: E731
                                            generator=inference.make_generator(model, 4))
    assert draw() == draw()


def test_padding_is_invisible_to_real_tokens():
    model = tiny()
    row = torch.randint(0, 300, (1, 9))
    alone = inference.hidden_states(model, row)[-1]
    padded = torch.cat([torch.zeros(1, 4, dtype=torch.long), row], 1)  # left padding
    mask = torch.arange(13)[None] >= 4
    left = inference.hidden_states(model, padded, mask=mask)[-1][:, 4:]
    cache = inference.KVCache(len(model.blocks), 32)  # a cached, padded prefix, then the rest right-padded
    inference.hidden_states(model, padded[:, :8], cache, mask[:, :8])
    rest = inference.hidden_states(model, torch.cat([row[:, 4:], torch.zeros(1, 3, dtype=torch.long)], 1), cache,
                                   torch.arange(8)[None] < 5)[-1][:, :5]
    assert torch.allclose(left, alone, atol=1e-5) and not torch.isnan(left).any()
    assert torch.allclose(rest, alone[:, 4:], atol=1e-5)
    # unpadded rows after a cached prefix: several new tokens at once, causal among themselves
    cache = inference.KVCache(len(model.blocks), 32)
    inference.hidden_states(model, row[:, :3], cache)
    assert torch.allclose(inference.hidden_states(model, row[:, 3:], cache)[-1], alone[:, 3:], atol=1e-5)


def test_the_cache_is_allocated_once_and_written_in_place():
    """Every layer's keys and values live in one tensor per layer, made at the first write for the whole
    capacity: later tokens are written into it (same storage, earlier positions untouched), and the cache
    refuses a write past its capacity instead of growing. Fails if the cache goes back to concatenation."""
    model = tiny()
    row = torch.randint(0, 300, (2, 12))
    cache = inference.KVCache(len(model.blocks), 12)
    inference.hidden_states(model, row[:, :5], cache)
    storage = [(k.data_ptr(), v.data_ptr()) for k, v in zip(cache.k, cache.v)]
    held = cache.k[1][:, :, :5].clone()
    assert cache.length == 5 and cache.k[0].shape == (2, 2, 12, 16)
    last = inference.last_hidden_state(model, row[:, 5:11], cache)
    inference._step(model, row[:, 11], cache)
    assert [(k.data_ptr(), v.data_ptr()) for k, v in zip(cache.k, cache.v)] == storage
    assert torch.equal(cache.k[1][:, :, :5], held) and cache.length == 12
    assert torch.allclose(last, inference.hidden_states(model, row[:, :11])[-1][:, 5:], atol=1e-5)
    with pytest.raises(ValueError, match="KV cache full: 12 positions held \\+ 1 new > capacity 12"):
        inference.hidden_states(model, row[:, :1], cache)
    assert cache.length == 12  # a refused write changes nothing
    # padded rows too; select keeps the capacity and copies only what is held
    cache = inference.KVCache(len(model.blocks), 9)
    inference.hidden_states(model, row[:, :4], cache, torch.tensor([[False, True, True, True]] * 2))
    picked = cache.select(torch.tensor([1, 1, 0]))
    assert picked.capacity == 9 and picked.length == 4 and picked.next_position.tolist() == [3, 3, 3]
    assert torch.equal(picked.k[0][:, :, :4], cache.k[0][[1, 1, 0], :, :4])
    with pytest.raises(ValueError, match="KV cache full"):
        inference.hidden_states(model, row[:, :6], cache)
    # prefill sizes the cache: the prompts (their shared prefix once) and the room asked for
    cache, _ = inference.prefill(model, [[1, 2, 3, 4], [1, 2, 5]], room=7)
    assert cache.capacity == 2 + 2 + 7 and cache.length == 4


def test_batched_generation_waits_for_the_device_once_every_few_tokens(monkeypatch):
    """generate_batch reads from the device once for the prefill's check and then once every CHECK_EVERY
    tokens (its stop checks run on the device); streaming reads once a token. Reads are counted as the
    calls that bring a tensor's values to the host. Fails if the loop reads tokens or stop flags per step."""
    model = tiny()
    prompts = [[5, 6, 7], [8, 9, 10, 11, 12], [13]]  # different lengths: the padded path
    reads = []
    for name in ("tolist", "item", "__int__", "__bool__", "__float__"):
        real = getattr(torch.Tensor, name)
        monkeypatch.setattr(torch.Tensor, name, lambda t, *a, _real=real, _name=name: reads.append(_name)
                            or _real(t, *a))
    monkeypatch.setattr(inference, "CHECK_EVERY", 8)
    new = inference.generate_batch(model, prompts, 20)
    assert len(reads) == 1 + 3 and [len(n) for n in new] == [20] * 3  # 20 tokens: read after 8, 16 and 20
    reads.clear()
    assert len(list(inference.stream(model, prompts[0], 6))) == 6 and len(reads) == 6


def test_top_k_and_top_p_keep_exactly_the_most_likely_tokens():
    # row 0 ~ 0.64, 0.09, 0.24, 0.03; row 1 reversed
    logits = torch.tensor([[3.0, 1.0, 2.0, 0.0], [0.0, 2.0, 1.0, 3.0]])
    seen = lambda **kw: [{t[r] for t in draws} for r in range(2) for draws in  # noqa: E731
                         [[inference.pick_tokens(logits, 1.0, generator=torch.Generator().manual_seed(s),
                                                 **kw).tolist() for s in range(200)]]]
    assert seen(top_k=2) == [{0, 2}, {3, 1}]
    assert seen(top_p=0.8) == [{0, 2}, {3, 1}]  # 0.64 < 0.8: the second most likely is needed to reach it
    assert seen(top_p=0.5) == [{0}, {3}]
    assert seen() == [{0, 1, 2, 3}] * 2
    assert inference.pick_tokens(logits, 0.0).tolist() == [0, 3]  # greedy


def test_the_generator_is_made_on_the_model_device_and_checked():
    """CUDA logits need a CUDA generator (torch.multinomial takes both on one device): make_generator takes
    the model's device, and a generator on another device than the logits is a clear error, not a crash
    inside torch. The same seed gives the same tokens."""
    model = tiny()
    seen, real_generator = [], torch.Generator
    with mock.patch("torch.Generator", side_effect=lambda device: seen.append(device) or real_generator(device)):
        inference.make_generator(model, 1)
    assert seen == [model.wte.weight.device]
    prompt = torch.randint(0, 300, (5,)).tolist()
    a, b, c = (inference.generate(model, prompt, 12, temperature=1.0, generator=inference.make_generator(model, s))
               for s in (1, 1, 2))
    assert a == b and a != c
    elsewhere = mock.Mock(device=torch.device("cuda", 0))
    with pytest.raises(ValueError, match="the generator is on cuda:0 but the logits are on cpu"):
        inference.pick_tokens(torch.zeros(1, 4), 1.0, generator=elsewhere)


def test_masked_grouped_query_attention_expands_k_and_v(monkeypatch):
    """On a GPU, a masked call of several new tokens per row gets k and v repeated for the query heads (no
    enable_gqa, which the memory-efficient kernel lacks); without a mask the grouped call stays. On the CPU,
    whose flash kernel takes a mask and grouped heads together, nothing is copied. Every way gives the grouped
    computation."""
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 4, 5, 16, generator=g), torch.randn(2, 2, 8, 16, generator=g),
               torch.randn(2, 2, 8, 16, generator=g))
    mask = torch.rand(2, 1, 5, 8, generator=g) > 0.3
    mask[..., -1] = True  # every query sees a key
    grouped = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=True)
    real_sdpa, calls = F.scaled_dot_product_attention, []
    spy = lambda q_, k_, v_, **kw: (calls.append((k_.size(1), v_.size(1), kw.get("enable_gqa")))  # noqa: E731
                                    or real_sdpa(q_, k_, v_, **kw))
    monkeypatch.setattr(inference.F, "scaled_dot_product_attention", spy)
    on_cpu = inference.attention(q, k, v, mask)
    monkeypatch.setattr(inference, "MASKED_GQA_KERNEL", set())  # as on a GPU
    expanded = inference.attention(q, k, v, mask)
    causal = inference.attention(q, k[:, :, :5], v[:, :, :5], None)
    assert calls == [(2, 2, True), (4, 4, False), (2, 2, True)]
    assert torch.allclose(on_cpu, grouped, atol=1e-6) and torch.allclose(expanded, grouped, atol=1e-6)
    assert torch.allclose(causal, real_sdpa(q, k[:, :, :5], v[:, :, :5], is_causal=True, enable_gqa=True), atol=1e-6)
    # the CPU's flash kernel alone runs the masked grouped call: the math kernel is not needed there
    monkeypatch.undo()
    with sdpa_kernel([SDPBackend.FLASH_ATTENTION]):
        assert torch.allclose(inference.attention(q, k, v, mask), grouped, atol=1e-5)


@pytest.mark.parametrize("gpu", [False, True])
def test_one_new_token_attends_without_repeating_the_cache(monkeypatch, gpu):
    """A generation step (one query per row) folds the query heads that share a key/value head into that
    head's queries: the kernel gets the cache's kv_heads as they are (nothing repeated, no enable_gqa), on the
    CPU and on a GPU, with a mask or without, and computes what the cache repeated per query head computes.
    Fails if the step goes back to repeat_interleave or to enable_gqa."""
    if gpu:
        monkeypatch.setattr(inference, "MASKED_GQA_KERNEL", set())
    g = torch.Generator().manual_seed(1)
    q, k, v = (torch.randn(3, 6, 1, 16, generator=g), torch.randn(3, 2, 9, 16, generator=g),
               torch.randn(3, 2, 9, 16, generator=g))
    real = torch.rand(3, 9, generator=g) > 0.3
    real[:, -1] = True
    repeated_k, repeated_v = k.repeat_interleave(3, dim=1), v.repeat_interleave(3, dim=1)
    real_sdpa, calls = F.scaled_dot_product_attention, []
    spy = lambda q_, k_, v_, **kw: (calls.append((tuple(q_.shape), k_.size(1), kw.get("enable_gqa", False)))  # noqa
                                    or real_sdpa(q_, k_, v_, **kw))
    monkeypatch.setattr(inference.F, "scaled_dot_product_attention", spy)
    for mask in (None, real[:, None, None, :]):
        out = inference.attention(q, k, v, mask)
        assert torch.allclose(out, real_sdpa(q, repeated_k, repeated_v, attn_mask=mask), atol=1e-6)
    assert calls == [((3, 2, 3, 16), 2, False)] * 2
