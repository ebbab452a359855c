"""
The decoder: Mistral's architecture scaled down, as [AFA] used it (docs/method.md).

RoPE positions, RMSNorm before each sub-layer, a SwiGLU MLP, grouped-query attention, no biases, and an
input embedding (`wte`) that is *not* tied to the output head (`lm_head`). The untying matters here:
active forgetting resets `wte` and the head keeps what it learned.

Besides the network itself this file holds the two pieces of surgery the method needs:
`reset_token_embeddings()` (the forgetting) and `expand_vocab()` (the adaptation to new languages).
A training step runs GPT.forward; generation, KV caches and padded batches are evaluation/inference.py's,
which runs these same modules.
"""

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

INIT_STD = 0.02  # N(0, 0.02) everywhere, and again for every reset ([CHEN]'s value)
LOGITS_CHUNK = 2**26  # the most logits token_nll holds at once: 256 MB in float32


@dataclass
class GPTConfig:
    vocab_size: int = 32000  # real tokens; the embedding and head rows are padded to a multiple of 64
    block_size: int = 1024
    n_layer: int = 12
    n_head: int = 12
    n_kv_head: int = 4  # grouped-query attention: n_head / n_kv_head query heads share one key/value head
    n_embd: int = 768
    mlp_hidden: int = 0  # 0 = 3.5 * n_embd rounded up to a multiple of 64 (Mistral-7B's ratio 14336/4096)
    rope_theta: float = 10000.0
    norm_eps: float = 1e-5

    def __post_init__(self):
        if self.n_embd % self.n_head or (self.n_embd // self.n_head) % 2:
            raise ValueError(f"n_embd={self.n_embd} must split into n_head={self.n_head} heads of even size")
        if self.n_head % self.n_kv_head:
            raise ValueError(f"n_head={self.n_head} must be a multiple of n_kv_head={self.n_kv_head}")
        if self.mlp_hidden == 0:
            self.mlp_hidden = -(-int(3.5 * self.n_embd) // 64) * 64

    @property
    def padded_vocab_size(self):
        # matmuls are fastest when their sizes are multiples of 64; padding rows are never predicted
        return -(-self.vocab_size // 64) * 64


def rope_tables(head_dim, length, theta, device=None):
    """cos and sin of every (position, frequency) pair, shaped to broadcast over [B, T, heads, head_dim/2]."""
    freqs = 1.0 / theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32, device=device) / head_dim)
    angles = torch.outer(torch.arange(length, dtype=torch.float32, device=device), freqs)
    return angles.cos()[None, :, None, :], angles.sin()[None, :, None, :]


def apply_rope(x, cos, sin):
    # rotate each (first half, second half) pair of channels by its position's angle
    x1, x2 = x.chunk(2, dim=-1)
    cos, sin = cos.to(x.dtype), sin.to(x.dtype)
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)


class Attention(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.n_head, self.n_kv_head = config.n_head, config.n_kv_head
        self.head_dim = config.n_embd // config.n_head
        self.wq = nn.Linear(config.n_embd, config.n_head * self.head_dim, bias=False)
        self.wk = nn.Linear(config.n_embd, config.n_kv_head * self.head_dim, bias=False)
        self.wv = nn.Linear(config.n_embd, config.n_kv_head * self.head_dim, bias=False)
        self.wo = nn.Linear(config.n_head * self.head_dim, config.n_embd, bias=False)

    def forward(self, x, cos, sin):
        q, k, v = self.project(x, cos, sin)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=self.n_kv_head != self.n_head)
        return self.wo(y.transpose(1, 2).flatten(2))

    def project(self, x, cos, sin):
        """Queries, keys and values [B, heads, T, head_dim], rotated by their positions' angles
        (evaluation/inference.py reuses this with a KV cache)."""
        B, T, _ = x.shape
        q = self.wq(x).view(B, T, self.n_head, self.head_dim)
        k = self.wk(x).view(B, T, self.n_kv_head, self.head_dim)
        v = self.wv(x).view(B, T, self.n_kv_head, self.head_dim)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        return q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)


class SwiGLU(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.gate = nn.Linear(config.n_embd, config.mlp_hidden, bias=False)
        self.up = nn.Linear(config.n_embd, config.mlp_hidden, bias=False)
        self.down = nn.Linear(config.mlp_hidden, config.n_embd, bias=False)

    def forward(self, x):
        return self.down(F.silu(self.gate(x)) * self.up(x))


class Block(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.attn_norm = nn.RMSNorm(config.n_embd, eps=config.norm_eps)
        self.attn = Attention(config)
        self.mlp_norm = nn.RMSNorm(config.n_embd, eps=config.norm_eps)
        self.mlp = SwiGLU(config)

    def forward(self, x, cos, sin):
        x = x + self.attn(self.attn_norm(x), cos, sin)
        return x + self.mlp(self.mlp_norm(x))


class GPT(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = config
        self.wte = nn.Embedding(config.padded_vocab_size, config.n_embd)
        self.blocks = nn.ModuleList([Block(config) for _ in range(config.n_layer)])
        self.norm = nn.RMSNorm(config.n_embd, eps=config.norm_eps)
        self.lm_head = nn.Linear(config.n_embd, config.padded_vocab_size, bias=False)
        cos, sin = rope_tables(config.n_embd // config.n_head, config.block_size, config.rope_theta)
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)
        self.init_weights()

    # ---- initialisation and the two pieces of surgery -------------------------------------------------

    @torch.no_grad()
    def init_weights(self, generator=None):
        for name, p in self.named_parameters():
            if name.endswith("norm.weight"):
                p.fill_(1.0)
            else:
                # projections that write into the residual stream are scaled down so that its variance
                # does not grow with depth (GPT-2's trick)
                std = (INIT_STD / math.sqrt(2 * self.config.n_layer) if name.endswith(("wo.weight", "down.weight"))
                       else INIT_STD)
                _normal_(p, std, generator)

    @torch.no_grad()
    def reset_token_embeddings(self, generator=None):
        """Active forgetting: fresh N(0, 0.02) input embeddings, the same distribution as at step 0."""
        _normal_(self.wte.weight, INIT_STD, generator)

    @torch.no_grad()
    def reset_head(self, generator=None):
        """[CHEN]'s behaviour: their head is tied to the embeddings, so it was reset with them."""
        _normal_(self.lm_head.weight, INIT_STD, generator)

    @torch.no_grad()
    def expand_vocab(self, new_vocab_size, generator=None):
        """Grow the vocabulary to new_vocab_size tokens, keeping every old row of wte and lm_head.
        New rows start as N(0, 0.02); adapt.py may overwrite them with another initialisation."""
        old = self.config.vocab_size
        if new_vocab_size < old:
            raise ValueError(f"expand_vocab: new size {new_vocab_size} is smaller than the current {old}")
        self.config.vocab_size = new_vocab_size
        for name in ("wte", "lm_head"):
            old_weight = getattr(self, name).weight
            weight = torch.empty(self.config.padded_vocab_size, self.config.n_embd, dtype=old_weight.dtype)
            _normal_(weight, INIT_STD, generator)
            weight[:old] = old_weight[:old].cpu()
            layer = (nn.Embedding(*weight.shape) if name == "wte"
                     else nn.Linear(weight.shape[1], weight.shape[0], bias=False))
            layer.weight = nn.Parameter(weight.to(old_weight.device))
            setattr(self, name, layer)

    # ---- the forward pass -----------------------------------------------------------------------------

    def forward(self, idx, targets=None, loss_mask=None):
        """Logits [B, T, vocab_size] (padding rows dropped, so they take no probability mass) and, given
        targets, the mean next-token loss over the positions that count (target != -1 and loss_mask != 0)."""
        logits = self.head(self.body(idx))
        if targets is None:
            return logits, None
        if loss_mask is not None:
            targets = targets.masked_fill(loss_mask == 0, -1)
        nll = F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), targets.reshape(-1), ignore_index=-1,
                              reduction="sum")
        # a batch in which nothing counts gives loss 0 and zero gradients rather than NaN
        return logits, nll / (targets != -1).sum().clamp(min=1)

    def body(self, idx):
        """The residual stream after the last block, [B, T, C]."""
        T = idx.size(1)
        if T > self.config.block_size:
            raise ValueError(f"sequence of {T} tokens is longer than block_size={self.config.block_size}")
        cos, sin = self.rope_cos[:, :T], self.rope_sin[:, :T]
        x = self.wte(idx)
        for block in self.blocks:
            x = block(x, cos, sin)
        return x

    def head(self, x):
        """Next-token logits [..., vocab_size] of residual states [..., C] (the head's padding rows dropped)."""
        return self.lm_head(self.norm(x))[..., : self.config.vocab_size]

    def token_nll(self, idx, targets):
        """Nats of every target token, [B, T] (0 where target == -1): bits per byte and scoring sum these.
        The logits are made LOGITS_CHUNK values at a time, a stretch of positions, never [B, T, vocab] at once
        (16 x 4,096 positions x a 48k vocabulary would be 12.6 GB in float32, three times over in transients)."""
        x, targets_flat = self.body(idx).flatten(0, 1), targets.reshape(-1)
        rows = max(1, LOGITS_CHUNK // self.config.vocab_size)
        nll = [F.cross_entropy(self.head(x[first:first + rows]).float(), targets_flat[first:first + rows],
                               ignore_index=-1, reduction="none") for first in range(0, len(x), rows)]
        return torch.cat(nll).view_as(targets)

    # ---- accounting ---------------------------------------------------------------------------------

    def num_params(self, non_embedding=False):
        n = sum(p.numel() for p in self.parameters())
        return n - self.wte.weight.numel() if non_embedding else n

    def flops_per_token(self):
        """Training FLOPs per token of a full block: 6 per weight of a matmul (2 forward, 4 backward; the
        embedding is a lookup and the norms are elementwise, neither a matmul) plus the attention's scores and
        values, 12 * n_embd * block_size per layer (the half the causal mask skips included, as PaLM's MFU counts)."""
        c = self.config
        matmul_weights = sum(p.numel() for p in self.parameters() if p.dim() == 2) - self.wte.weight.numel()
        return 6 * matmul_weights + 12 * c.n_layer * c.n_embd * c.block_size


def _normal_(tensor, std, generator=None):
    # draw on the CPU so that one seeded generator gives the same numbers on every device and every rank
    tensor.copy_(torch.empty(tensor.shape, dtype=torch.float32).normal_(0.0, std, generator=generator))
