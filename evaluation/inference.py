"""
Inference: model.py's network run with a KV cache, on batches of rows of different lengths, and the one
generation loop that sample.py, the benchmarks (benchmarks.py) and finetune.py's samples share.

Training never comes here: GPT.forward is the whole of a training step. This file runs the same weights
through the same sub-modules (a block's norms, Attention.project, wo and the MLP) and adds what inference
needs:
  - a KV cache: the keys and values of the tokens run so far, so that each new token is one position of work;
  - padding: rows of different lengths in one batch, left- or right-padded with a mask. Padding is never
    attended to and takes no position, so a real token computes what it would in its row alone (up to
    float rounding);
  - prefill: prompts into a fresh cache, what they all start with (a chat's system prompt) run once;
  - generation: greedy, or sampled with temperature, top-k and top-p; every row stops at its own stop
    ids and budget and then leaves the batch.
"""

import torch
import torch.nn.functional as F


class KVCache:
    """The keys and values of every layer for the tokens run so far ([B, kv_heads, length, head_dim] each),
    and which of those positions hold tokens (`real` [B, length] bool; None while no row is padded)."""

    def __init__(self, n_layer):
        self.k, self.v, self.real = [None] * n_layer, [None] * n_layer, None

    @property
    def length(self):
        return 0 if self.k[0] is None else self.k[0].size(2)

    def select(self, rows):
        """The cache of some rows (a tensor of row indices, repeats allowed): a finished generation leaves
        the batch, a context's keys and values are copied for each of its choices."""
        out = KVCache(len(self.k))
        out.k, out.v = [t.index_select(0, rows) for t in self.k], [t.index_select(0, rows) for t in self.v]
        out.real = None if self.real is None else self.real.index_select(0, rows)
        return out


MASKED_GQA_KERNEL = {"cpu"}  # devices whose fused attention kernel takes a mask and grouped heads together


def attention(q, k, v, mask):
    """Attention of queries q [B, heads, T, hd] over keys and values [B, kv_heads, S, hd] (S >= T, the
    last T of them the queries' own). mask [B or 1, 1, T, S] (bool: may query t see key s) or None: then
    causal when there is no earlier key (S == T), else T == 1 and the one query sees every key."""
    if mask is None:
        return F.scaled_dot_product_attention(q, k, v, is_causal=q.size(2) > 1, enable_gqa=q.size(1) != k.size(1))
    if q.device.type not in MASKED_GQA_KERNEL:
        # a GPU's flash kernel takes no mask and its memory-efficient kernel no grouped-query attention: with
        # a mask, each key/value head is repeated for the query heads that share it, so that the memory-
        # efficient kernel runs, not the math one with a full T x S score matrix per head
        groups = q.size(1) // k.size(1)
        k, v = k.repeat_interleave(groups, dim=1), v.repeat_interleave(groups, dim=1)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=q.size(1) != k.size(1))


def block_forward(block, x, cos, sin, cache, layer, mask):
    """model.Block's computation, with the keys and values of the cache's earlier tokens and a mask."""
    q, k, v = block.attn.project(block.attn_norm(x), cos, sin)
    if cache is not None:
        if cache.k[layer] is not None:
            k, v = torch.cat([cache.k[layer], k], dim=2), torch.cat([cache.v[layer], v], dim=2)
        cache.k[layer], cache.v[layer] = k, v
    x = x + block.attn.wo(attention(q, k, v, mask).transpose(1, 2).flatten(2))
    return x + block.mlp(block.mlp_norm(x))


@torch.no_grad()
def hidden_states(model, idx, cache=None, mask=None):
    """The residual stream after the embedding and after every block: n_layer + 1 tensors [B, T, C].

    cache: a KVCache whose rows idx continues (it is extended with idx's keys and values), or None.
    mask [B, T] (bool): False marks padding. A cache remembers the mask of the tokens it holds."""
    B, T = idx.shape
    n_past = cache.length if cache is not None else 0
    if mask is None and (cache is None or cache.real is None):  # no padding: one range of positions
        if n_past + T > model.config.block_size:
            raise ValueError(f"sequence of {n_past + T} tokens is longer than block_size={model.config.block_size}")
        cos, sin = model.rope_cos[:, n_past:n_past + T], model.rope_sin[:, n_past:n_past + T]
        attend = None  # causal (no cache), or one new token that sees everything before it
        if n_past and T > 1:  # several new tokens after a cached prefix: causal among themselves
            attend = torch.ones(T, n_past + T, dtype=torch.bool, device=idx.device).tril(diagonal=n_past)[None, None]
    else:
        real = (cache.real if cache is not None and cache.real is not None
                else torch.ones(B, n_past, dtype=torch.bool, device=idx.device))
        new = torch.ones(B, T, dtype=torch.bool, device=idx.device) if mask is None else mask.bool()
        real = torch.cat([real, new], dim=1)  # [B, n_past + T]: which keys are tokens, which padding
        positions = (real.cumsum(1) - 1).clamp(min=0)[:, n_past:]  # a token's position: the tokens before it
        if int(positions.max()) >= model.config.block_size:
            raise ValueError(f"a row of {int(positions.max()) + 1} tokens is longer than "
                             f"block_size={model.config.block_size}")
        cos, sin = model.rope_cos[0, positions], model.rope_sin[0, positions]  # [B, T, 1, head_dim/2]
        # query t (key n_past + t) sees the real keys up to itself, and always itself: a padding query
        # then has something to attend to (its output is never used) instead of giving NaN
        keys = torch.arange(n_past + T, device=idx.device)[None]
        queries = torch.arange(T, device=idx.device)[:, None] + n_past
        attend = (((keys <= queries) & real[:, None, :]) | (keys == queries))[:, None]  # [B, 1, T, n_past + T]
        if cache is not None:
            cache.real = real
    x = model.wte(idx)
    states = [x]
    for layer, block in enumerate(model.blocks):
        x = block_forward(block, x, cos, sin, cache, layer, attend)
        states.append(x)
    return states


def logits(model, hidden):
    """Next-token logits [..., vocab_size] of hidden states [..., C] (the head's padding rows dropped)."""
    return model.lm_head(model.norm(hidden))[..., : model.config.vocab_size]


@torch.no_grad()
def prefill(model, prompts):
    """Run prompts (lists of ids) into a fresh cache: (cache, the last hidden state of each [B, C]).
    What every prompt starts with (<|endoftext|>, a chat's system prompt) runs once; the rest of each is
    left-padded after it, with a mask, so that the last column holds every prompt's last token."""
    device = model.wte.weight.device
    cache, shared = KVCache(len(model.blocks)), shared_prefix(prompts) if len(prompts) > 1 else 0
    if shared:
        hidden_states(model, torch.tensor([prompts[0][:shared]], device=device), cache)
        cache = cache.select(torch.zeros(len(prompts), dtype=torch.long, device=device))
    rest = [p[shared:] for p in prompts]
    width = max(len(r) for r in rest)
    x = torch.tensor([[0] * (width - len(r)) + r for r in rest], dtype=torch.long, device=device)
    mask = torch.tensor([[k >= width - len(r) for k in range(width)] for r in rest], device=device)
    return cache, hidden_states(model, x, cache, None if mask.all() else mask)[-1][:, -1]  # equal lengths: no mask


def shared_prefix(rows):
    """How many first tokens all rows (lists of ids) share, leaving each row at least one of its own."""
    for k in range(min(len(r) for r in rows) - 1):
        if any(r[k] != rows[0][k] for r in rows):
            return k
    return min(len(r) for r in rows) - 1


# ---- sampling and the generation loop -------------------------------------------------------------------

def make_generator(model, seed):
    """A seeded generator on the model's device: torch.multinomial needs the generator where the logits
    are (a CPU generator with CUDA logits fails)."""
    return torch.Generator(device=model.wte.weight.device).manual_seed(seed)


def pick_tokens(logits, temperature=0.0, top_k=0, top_p=1.0, generator=None):
    """One token id per row of logits [B, vocab]: the argmax when temperature == 0; else logits /
    temperature, then the top_k most likely tokens (0 = all), then the smallest set of those whose
    probabilities reach top_p (1 = all), drawn with the generator (on the logits' device)."""
    if temperature == 0:
        return logits.argmax(-1)
    if generator is not None and generator.device != logits.device:
        raise ValueError(f"the generator is on {generator.device} but the logits are on {logits.device} "
                         "(use make_generator)")
    logits = logits.float() / temperature
    if 0 < top_k < logits.size(-1):
        kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        probs, order = F.softmax(logits, dim=-1).sort(dim=-1, descending=True)
        # drop a token when the tokens ranked above it already reach top_p (the first is always kept)
        drop = probs.cumsum(-1) - probs >= top_p
        logits = logits.masked_fill(drop.scatter(-1, order, drop), float("-inf"))  # back to vocabulary order
    return torch.multinomial(F.softmax(logits, dim=-1), 1, generator=generator)[:, 0]


@torch.no_grad()
def generation_steps(model, prompts, max_new_tokens, temperature=0.0, stop_ids=(), generator=None, top_k=0, top_p=1.0):
    """Continue several prompts (lists of ids) together, token by token with a KV cache, yielding at every
    step [(prompt index, new token)] of the rows still generating. max_new_tokens: one number for all,
    or one per prompt. A row stops after a stop id (which it yields), at its own budget or when its
    context is full, and then leaves the batch. Prompts of different lengths are left-padded with a mask
    (prefill), so that every row gets the tokens it would get alone. Sampling: see pick_tokens."""
    if not all(prompts):
        raise ValueError("generation: every prompt needs at least one token")
    budgets = max_new_tokens if isinstance(max_new_tokens, (list, tuple)) else [max_new_tokens] * len(prompts)
    budgets = [min(b, model.config.block_size - len(p)) for b, p in zip(budgets, prompts)]
    active = [r for r, b in enumerate(budgets) if b > 0]  # the rows still generating, in batch order
    if not active:
        return
    cache, hidden = prefill(model, [prompts[r] for r in active])  # hidden: each row's last position
    for step in range(1, max(budgets) + 1):
        tokens = pick_tokens(logits(model, hidden), temperature, top_k, top_p, generator)
        new = tokens.tolist()
        yield list(zip(active, new))
        keep = [i for i, (r, token) in enumerate(zip(active, new)) if token not in stop_ids and step < budgets[r]]
        if not keep:
            return
        if len(keep) < len(active):  # finished rows leave the batch and the cache
            rows = torch.tensor(keep, device=tokens.device)
            cache, tokens = cache.select(rows), tokens[rows]
        active = [active[i] for i in keep]
        hidden = hidden_states(model, tokens[:, None], cache)[-1][:, -1]


def generate_batch(model, prompts, max_new_tokens, temperature=0.0, stop_ids=(), generator=None, top_k=0, top_p=1.0):
    """The new ids of every prompt: generation_steps, collected."""
    new = [[] for _ in prompts]
    for step in generation_steps(model, prompts, max_new_tokens, temperature, stop_ids, generator, top_k, top_p):
        for r, token in step:
            new[r].append(token)
    return new


def generate(model, prompt, max_new_tokens, temperature=0.0, stop_ids=(), generator=None, top_k=0, top_p=1.0):
    """The new ids of one prompt (list of ids)."""
    return generate_batch(model, [prompt], max_new_tokens, temperature, stop_ids, generator, top_k, top_p)[0]


def stream(model, prompt, max_new_tokens, temperature=0.0, stop_ids=(), generator=None, top_k=0, top_p=1.0):
    """The new ids of one prompt, yielded one at a time as they come (sample.py prints them)."""
    for [(_, token)] in generation_steps(model, [prompt], max_new_tokens, temperature, stop_ids, generator,
                                         top_k, top_p):
        yield token
