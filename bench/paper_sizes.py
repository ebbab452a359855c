"""
Parameters, memory and disk of every training config, computed from the configs themselves:

    python bench/paper_sizes.py              # a markdown table for the README

Per GPU, with plain DDP (every GPU holds a full replica) and AdamW in fp32:
  weights 4 B/param, gradients 4 B/param, Adam moments 8 B/param;
  activations of one micro-batch (bf16 autocast, flash attention, no recomputation): each block keeps for its
  backward pass about 4.5 * n_embd values per token in attention (norm in/out, q, k + v at the GQA ratio,
  output) and 2 * n_embd + 4 * mlp_hidden in the SwiGLU MLP (norm in/out, gate, up, silu(gate), their
  product): 2 bytes each. The head adds ~10 bytes per vocabulary entry per token (bf16 logits, their fp32
  copy for the loss, and its gradient). This is an estimate within ~20%: measure with bench_train.py --device=cuda.
Disk: the checkpoint (weights + Adam = 12 B/param) and the uint32 token files of the paper's ~10B tokens.
"""

import os
import runpy
import sys

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from model import GPT, GPTConfig  # noqa: E402

CONFIGS = ["gpu_small", "paper_400m", "paper_782m", "paper_1_6b", "paper_2_8b"]
VOCAB = 32000
AFA_TOKENS = 10e9  # [AFA]: ~10B tokens of Wikipedia in 12 languages


def sizes(name):
    train = runpy.run_path(os.path.join(ROOT, "config", f"{name}.py"))["train"]
    config = GPTConfig(vocab_size=VOCAB, block_size=train["block_size"], n_layer=train["n_layer"],
                       n_head=train["n_head"], n_kv_head=train["n_kv_head"], n_embd=train["n_embd"])
    with torch.device("meta"):  # count without allocating
        params = GPT(config).num_params()
    c = config
    per_token_per_layer = 2 * ((4 + 2 * c.n_kv_head / c.n_head) * c.n_embd + 2 * c.n_embd + 4 * c.mlp_hidden)
    tokens = train["batch_size"] * train["block_size"]
    activations = tokens * (c.n_layer * per_token_per_layer + 10 * c.padded_vocab_size)
    states = 16 * params
    return dict(name=name, shape=f"{c.n_layer}x{c.n_embd}, {c.n_head}/{c.n_kv_head} heads, mlp {c.mlp_hidden}",
                params=params, micro=f"{train['batch_size']} x {train['block_size']}", grad_accum=train["grad_accum"],
                states_gb=states / 2**30, act_gb=activations / 2**30, total_gb=(states + activations) / 2**30,
                ckpt_gb=12 * params / 2**30)


def main():
    if len(sys.argv) > 1:
        print(__doc__)
        sys.exit(0 if sys.argv[1] in ("-h", "--help") else 2)
    print("| config | shape | parameters | micro-batch | grad_accum | weights+grads+Adam | activations | per GPU | "
          "checkpoint |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name in CONFIGS:
        s = sizes(name)
        print(f"| {s['name']} | {s['shape']} | {s['params'] / 1e6:,.0f}M | {s['micro']} | {s['grad_accum']} | "
              f"{s['states_gb']:.1f} GiB | {s['act_gb']:.1f} GiB | {s['total_gb']:.1f} GiB | {s['ckpt_gb']:.1f} GiB |")
    print(f"\nTokenized data: {AFA_TOKENS / 1e9:.0f}B tokens x 4 bytes (uint32) = {4 * AFA_TOKENS / 2**30:.0f} GiB, "
          f"plus the UTF-8 text (~{4 * AFA_TOKENS / 2**30:.0f} GiB at ~4 bytes per token).")


if __name__ == "__main__":
    main()
