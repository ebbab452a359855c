"""
Inference: model.py's network run with a KV cache, on batches of rows of different lengths, and the one
generation loop that sample.py, the benchmarks (benchmarks.py) and finetune.py's samples share.

Training never comes here: GPT.forward is the whole of a training step. This file runs the same weights
through the same sub-modules (a block's norms, Attention.project, wo and the MLP) and adds what inference
needs:
  - a KV cache: the keys and values of the tokens run so far, so that each new token is one position of work;
    allocated once for the whole generation and written in place (growing it by concatenation would copy
    the whole cache at every token: quadratic in the answer's length);
  - padding: rows of different lengths in one batch, left- or right-padded with a mask. Padding is never
    attended to and takes no position, so a real token computes what it would in its row alone (up to
    float rounding);
  - prefill: prompts into a fresh cache, what they all start with (a chat's system prompt) run once;
  - generation: greedy, or sampled with temperature, top-k and top-p; every row stops at its own stop
    ids and budget. The stop checks run on the device: batched generation reads the tokens back every
    CHECK_EVERY steps (then the finished rows leave the batch), streaming once a token, so that the host
    does not wait for a GPU at every step.
"""

import torch
import torch.nn.functional as F


class KVCache:
    """The keys and values of every layer, allocated once for `capacity` positions and written in place
    (k[layer], v[layer]: [B, kv_heads, capacity, head_dim], made at a layer's first write with its keys'
    dtype and device); the first `length` positions hold the tokens run so far. Once a row is padded:
    `real` [B, capacity] (bool: which positions hold tokens) and `next_position` [B] (each row's tokens so
    far: the position its next token takes); None while no row is padded."""

    def __init__(self, n_layer, capacity):
        self.capacity, self.length = capacity, 0
        self.k, self.v = [None] * n_layer, [None] * n_layer
        self.real = self.next_position = None

    def write(self, layer, k, v):
        """Store the keys and values [B, kv_heads, T, head_dim] of T new tokens after the `length` held, and
        return the layer's keys and values so far (views of the cache, nothing copied). The caller checked the
        capacity (make_room) and moves `length` on once every layer is written."""
        if self.k[layer] is None:
            shape = (k.size(0), k.size(1), self.capacity, k.size(3))
            self.k[layer], self.v[layer] = k.new_empty(shape), v.new_empty(shape)
        held, new = self.length, k.size(2)
        self.k[layer].narrow(2, held, new).copy_(k)  # narrow: fewer dispatcher steps than slicing, at every token
        self.v[layer].narrow(2, held, new).copy_(v)
        return self.k[layer].narrow(2, 0, held + new), self.v[layer].narrow(2, 0, held + new)

    def make_room(self, n):
        if self.length + n > self.capacity:
            raise ValueError(f"KV cache full: {self.length} positions held + {n} new > capacity {self.capacity}")

    def select(self, rows):
        """The cache of some rows (a tensor of row indices, repeats allowed), at the same capacity: a finished
        generation leaves the batch, a context's keys and values are copied for each of its choices."""
        def kept(t):  # only the positions held are copied
            if t is None:
                return None
            copy = t.new_empty((len(rows), *t.shape[1:]))
            copy[:, :, :self.length] = t[:, :, :self.length].index_select(0, rows)
            return copy

        out = KVCache(len(self.k), self.capacity)
        out.length, out.k, out.v = self.length, [kept(t) for t in self.k], [kept(t) for t in self.v]
        if self.real is not None:
            out.real, out.next_position = self.real.index_select(0, rows), self.next_position.index_select(0, rows)
        return out


MASKED_GQA_KERNEL = {"cpu"}  # devices whose fused attention kernel takes a mask and grouped heads together


def attention(q, k, v, mask):
    """Attention of queries q [B, heads, T, hd] over keys and values [B, kv_heads, S, hd] (S >= T, the
    last T of them the queries' own). mask [B or 1, 1, T, S] (bool: may query t see key s) or None: then
    causal when there is no earlier key (S == T), else T == 1 and the one query sees every key."""
    B, heads, T, hd = q.shape
    groups = heads // k.size(1)
    if T == 1 and groups > 1:
        # one new token per row (a generation step): the query heads that share a key/value head are that
        # head's queries, [B, kv_heads, groups, hd], so that no kernel needs the cache repeated per query head
        # (a copy of the whole cache at every step) nor grouped-query support
        return F.scaled_dot_product_attention(q.view(B, k.size(1), groups, hd), k, v, attn_mask=mask).view(q.shape)
    if mask is None:
        return F.scaled_dot_product_attention(q, k, v, is_causal=T > 1, enable_gqa=groups > 1)
    if q.device.type not in MASKED_GQA_KERNEL:
        # a GPU's flash kernel takes no mask and its memory-efficient kernel no grouped-query attention: with
        # a mask, each key/value head is repeated for the query heads that share it, so that the memory-
        # efficient kernel runs, not the math one with a full T x S score matrix per head (several new tokens
        # per row: a prefill or a scored choice, once per call, not per generated token)
        k, v = k.repeat_interleave(groups, dim=1), v.repeat_interleave(groups, dim=1)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=q.size(1) != k.size(1))


def block_forward(block, x, cos, sin, cache, layer, mask):
    """model.Block's computation, with the keys and values of the cache's earlier tokens and a mask."""
    q, k, v = block.attn.project(block.attn_norm(x), cos, sin)
    if cache is not None:
        k, v = cache.write(layer, k, v)
    x = x + block.attn.wo(attention(q, k, v, mask).transpose(1, 2).flatten(2))
    return x + block.mlp(block.mlp_norm(x))


def _blocks(model, idx, cos, sin, cache, mask, every_layer):
    """Run the blocks over the embeddings of idx: every layer's hidden states, or only the last."""
    if cache is not None:
        cache.make_room(idx.size(1))
    x = model.wte(idx)
    states = [x] if every_layer else None
    for layer, block in enumerate(model.blocks):
        x = block_forward(block, x, cos, sin, cache, layer, mask)
        if every_layer:
            states.append(x)
    if cache is not None:
        cache.length += idx.size(1)
    return states if every_layer else x


@torch.no_grad()
def hidden_states(model, idx, cache=None, mask=None):
    """The residual stream after the embedding and after every block: n_layer + 1 tensors [B, T, C].

    cache: a KVCache whose rows idx continues (idx's keys and values are written into it), or None.
    mask [B, T] (bool): False marks padding. A cache remembers the mask of the tokens it holds."""
    return _forward(model, idx, cache, mask, every_layer=True)


@torch.no_grad()
def last_hidden_state(model, idx, cache=None, mask=None):
    """hidden_states' last tensor [B, T, C], without keeping the others."""
    return _forward(model, idx, cache, mask, every_layer=False)


def _forward(model, idx, cache, mask, every_layer):
    B, T = idx.shape
    n_past = cache.length if cache is not None else 0
    if mask is None and (cache is None or cache.real is None):  # no padding: one range of positions
        if n_past + T > model.config.block_size:
            raise ValueError(f"sequence of {n_past + T} tokens is longer than block_size={model.config.block_size}")
        cos, sin = model.rope_cos[:, n_past:n_past + T], model.rope_sin[:, n_past:n_past + T]
        attend = None  # causal (no cache), or one new token that sees everything before it
        if n_past and T > 1:  # several new tokens after a cached prefix: causal among themselves
            attend = torch.ones(T, n_past + T, dtype=torch.bool, device=idx.device).tril(diagonal=n_past)[None, None]
        return _blocks(model, idx, cos, sin, cache, attend, every_layer)
    new = torch.ones(B, T, dtype=torch.bool, device=idx.device) if mask is None else mask.bool()
    if cache is None:
        real, start = new, torch.zeros(B, dtype=torch.long, device=idx.device)
    else:
        cache.make_room(T)
        if cache.real is None:  # the first padded call: every token before it is real
            cache.real = torch.ones(B, cache.capacity, dtype=torch.bool, device=idx.device)
            cache.next_position = torch.full((B,), n_past, dtype=torch.long, device=idx.device)
        cache.real[:, n_past:n_past + T] = new
        real, start = cache.real[:, :n_past + T], cache.next_position  # [B, n_past + T]: which keys are tokens
        cache.next_position = start + new.sum(1)
    positions = start[:, None] + (new.cumsum(1) - 1).clamp(min=0)  # a token's position: the tokens before it
    if int(positions.max()) >= model.config.block_size:  # one wait per call, never per generated token
        raise ValueError(f"a row of {int(positions.max()) + 1} tokens is longer than "
                         f"block_size={model.config.block_size}")
    cos, sin = model.rope_cos[0, positions], model.rope_sin[0, positions]  # [B, T, 1, head_dim/2]
    # query t (key n_past + t) sees the real keys up to itself, and always itself: a padding query
    # then has something to attend to (its output is never used) instead of giving NaN
    keys = torch.arange(n_past + T, device=idx.device)[None]
    queries = torch.arange(T, device=idx.device)[:, None] + n_past
    attend = (((keys <= queries) & real[:, None, :]) | (keys == queries))[:, None]  # [B, 1, T, n_past + T]
    return _blocks(model, idx, cos, sin, cache, attend, every_layer)


def _step(model, tokens, cache):
    """One new token per row after the cache (the generation loop's step): the last hidden states [B, C].
    Nothing waits for the device: a row's position is clamped into the block instead of checked, since the
    loop's budgets keep every generating row inside it (a finished row may run on; nothing reads it)."""
    n = cache.length
    if cache.real is None:
        cos, sin, attend = model.rope_cos[:, n:n + 1], model.rope_sin[:, n:n + 1], None
    else:
        cache.make_room(1)
        cache.real[:, n] = True
        positions = cache.next_position.clamp(max=model.config.block_size - 1)[:, None]
        cache.next_position = cache.next_position + 1
        cos, sin = model.rope_cos[0, positions], model.rope_sin[0, positions]
        attend = cache.real[:, None, None, :n + 1]  # [B, 1, 1, n + 1], a view
    return _blocks(model, tokens[:, None], cos, sin, cache, attend, every_layer=False)[:, -1]


@torch.no_grad()
def prefill(model, prompts, room=0):
    """Run prompts (lists of ids) into a fresh cache that has room for `room` more tokens after them:
    (cache, the last hidden state of each [B, C]). What every prompt starts with (<|endoftext|>, a chat's
    system prompt) runs once; the rest of each is left-padded after it, with a mask, so that the last
    column holds every prompt's last token."""
    device = model.wte.weight.device
    shared = shared_prefix(prompts) if len(prompts) > 1 else 0
    rest = [p[shared:] for p in prompts]
    width = max(len(r) for r in rest)
    cache = KVCache(len(model.blocks), shared + width + room)
    if shared:
        last_hidden_state(model, torch.tensor([prompts[0][:shared]], device=device), cache)
        cache = cache.select(torch.zeros(len(prompts), dtype=torch.long, device=device))
    x = torch.tensor([[0] * (width - len(r)) + r for r in rest], dtype=torch.long, device=device)
    mask = (None if all(len(r) == width for r in rest)  # equal lengths: no mask
            else torch.tensor([[k >= width - len(r) for k in range(width)] for r in rest], device=device))
    return cache, last_hidden_state(model, x, cache, mask)[:, -1]


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


CHECK_EVERY = 8  # batched generation reads which rows have stopped every this many tokens (one wait each)


@torch.no_grad()
def _decode(model, prompts, max_new_tokens, temperature, stop_ids, generator, top_k, top_p, check_every):
    """The generation loop. Every row picks a token at every step and the stop checks run on the device; every
    check_every steps (and at the end) one read brings the stretch's tokens to the host, yielded as
    [(prompt index, [its new tokens in the stretch])], and the rows that have stopped leave the batch. A row
    that stops inside a stretch runs on to its end, its tokens dropped: so that no step waits for the device."""
    if not all(prompts):
        raise ValueError("generation: every prompt needs at least one token")
    budgets = max_new_tokens if isinstance(max_new_tokens, (list, tuple)) else [max_new_tokens] * len(prompts)
    budgets = [min(b, model.config.block_size - len(p)) for b, p in zip(budgets, prompts)]
    rows = [r for r, b in enumerate(budgets) if b > 0]  # the prompt of each row still in the batch
    if not rows:
        return
    device, steps = model.wte.weight.device, max(budgets)
    stops = [i for i in stop_ids if 0 <= i < model.config.vocab_size]  # an id outside the vocabulary never comes
    is_stop = torch.zeros(model.config.vocab_size, dtype=torch.bool)
    is_stop[torch.tensor(stops, dtype=torch.long)] = True
    is_stop = is_stop.to(device)
    cache, hidden = prefill(model, [prompts[r] for r in rows], room=steps - 1)  # hidden: each row's last position
    # a row's budget is known here, its stop ids only on the device: `stopped` says which rows picked one
    stopped = torch.zeros(len(rows), dtype=torch.bool, device=device)
    first, picked, stopped_before = 1, [], []  # the stretch since the last read: [B] per step
    for step in range(1, steps + 1):
        tokens = pick_tokens(model.head(hidden), temperature, top_k, top_p, generator)
        picked.append(tokens)
        stopped_before.append(stopped)
        if stops:
            stopped = stopped | is_stop[tokens]
        if step % check_every == 0 or step == steps:
            n = len(picked)
            read = torch.cat([torch.stack(picked, 1), torch.stack(stopped_before + [stopped], 1)], 1).tolist()
            # read [B, 2n + 1]: the one wait for the device. A token counts when its row had not stopped before
            # it and its budget had room for it; a row goes on while neither ended it.
            yield [(r, [t for k, (t, gone) in enumerate(zip(line[:n], line[n:2 * n]), first)
                        if not gone and k <= budgets[r]]) for r, line in zip(rows, read)]
            keep = [i for i, (r, line) in enumerate(zip(rows, read)) if not line[-1] and step < budgets[r]]
            first, picked, stopped_before = step + 1, [], []
            if not keep:
                return
            if len(keep) < len(rows):  # the finished rows leave the batch and the cache
                index = torch.tensor(keep, device=device)
                cache, tokens, stopped = cache.select(index), tokens[index], stopped[index]
                rows = [rows[i] for i in keep]
        hidden = _step(model, tokens, cache)


def generation_steps(model, prompts, max_new_tokens, temperature=0.0, stop_ids=(), generator=None, top_k=0, top_p=1.0):
    """Continue several prompts (lists of ids) together, token by token with a KV cache, yielding at every
    step [(prompt index, new token)] of the rows still generating (one wait for the device per step: for
    streaming; generate_batch waits far less). max_new_tokens: one number for all, or one per prompt. A row
    stops after a stop id (which it yields), at its own budget or when its context is full, and then leaves
    the batch. Prompts of different lengths are left-padded with a mask (prefill), so that every row gets the
    tokens it would get alone. Sampling: see pick_tokens."""
    for stretch in _decode(model, prompts, max_new_tokens, temperature, stop_ids, generator, top_k, top_p, 1):
        yield [(r, new[0]) for r, new in stretch if new]


def generate_batch(model, prompts, max_new_tokens, temperature=0.0, stop_ids=(), generator=None, top_k=0, top_p=1.0):
    """The new ids of every prompt: generation_steps' tokens, read from the device every CHECK_EVERY steps."""
    new = [[] for _ in prompts]
    for stretch in _decode(model, prompts, max_new_tokens, temperature, stop_ids, generator, top_k, top_p,
                           CHECK_EVERY):
        for r, tokens in stretch:
            new[r] += tokens
    return new


def generate(model, prompt, max_new_tokens, temperature=0.0, stop_ids=(), generator=None, top_k=0, top_p=1.0):
    """The new ids of one prompt (list of ids)."""
    return generate_batch(model, [prompt], max_new_tokens, temperature, stop_ids, generator, top_k, top_p)[0]


def stream(model, prompt, max_new_tokens, temperature=0.0, stop_ids=(), generator=None, top_k=0, top_p=1.0):
    """The new ids of one prompt, yielded one at a time as they come (sample.py prints them)."""
    for [(_, token)] in generation_steps(model, [prompt], max_new_tokens, temperature, stop_ids, generator,
                                         top_k, top_p):
        yield token
