"""
Step time of adaptation (adapt.py) against a full training step of the same model on the same batch.

    python bench/bench_adapt.py                    # the lab model on the CPU
    python bench/bench_adapt.py --device=cuda --n_layer=12 --n_embd=768 --block_size=1024 --vocab=32000 --n_new=16000

Adaptation learns only the new embedding rows and the head, so the optimizer touches a small part of the
model and the body's weight gradients are never formed; the backward pass still runs through the whole
body (the new input rows need their gradient), so a step costs more than a forward. The rounds interleave
the variants so that a busy machine slows them all alike; the median round is reported.
"""

import argparse
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import adapt  # noqa: E402
from model import GPT, GPTConfig  # noqa: E402

VARIANTS = {  # name: (how, rows of wte frozen, rows of lm_head frozen); how = full (nothing frozen), module (adapt.py
    # splits wte and lm_head into frozen and learned rows) or plain (whole wte and lm_head learn, the old rows'
    # gradients zeroed after backward: the alternative adapt.py was measured against, see docs/method.md)
    "full training step": ("full", 0, 0),
    "adapt: new rows + new head rows": ("module", "old", "old"),
    "adapt: new rows + new head rows, plain": ("plain", "old", "old"),
    "adapt: new rows + whole head": ("module", "old", 0),
    "adapt: new rows + whole head, plain": ("plain", "old", 0),
    "relearn: all rows + head": ("module", 0, 0),
}


def make_step(args, variant):
    config = GPTConfig(vocab_size=args.vocab + args.n_new, block_size=args.block_size, n_layer=args.n_layer,
                       n_head=args.n_head, n_kv_head=args.n_kv_head, n_embd=args.n_embd)
    model = GPT(config)
    model.init_weights(torch.Generator().manual_seed(0))
    model.to(args.device)
    total = model.num_params()
    how, n_frozen_emb, n_frozen_head = (args.vocab if n == "old" else n for n in variant)
    if how == "full":
        params = list(model.parameters())
    elif how == "module":
        params = adapt.freeze(model, n_frozen_emb, n_frozen_head)
    else:
        for p in model.parameters():
            p.requires_grad_(False)
        params = [model.wte.weight.requires_grad_(True), model.lm_head.weight.requires_grad_(True)]
    optimizer = torch.optim.AdamW(params, lr=1e-3, fused=args.device.startswith("cuda"))
    g = torch.Generator().manual_seed(1)
    batch = torch.randint(0, config.vocab_size, (args.batch_size, args.block_size + 1), generator=g).to(args.device)
    x, y = batch[:, :-1], batch[:, 1:]

    def step():
        _, loss = model(x, y)
        loss.backward()
        if how == "plain":
            model.wte.weight.grad[:n_frozen_emb] = 0
            model.lm_head.weight.grad[:n_frozen_head] = 0
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()

    return step, sum(p.numel() for p in params), total


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--vocab", type=int, default=2048, help="base vocabulary (old rows)")
    parser.add_argument("--n_new", type=int, default=1024, help="new tokens (default: 50%% of the base)")
    parser.add_argument("--n_layer", type=int, default=4)
    parser.add_argument("--n_head", type=int, default=4)
    parser.add_argument("--n_kv_head", type=int, default=2)
    parser.add_argument("--n_embd", type=int, default=128)
    parser.add_argument("--block_size", type=int, default=256)
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--steps", type=int, default=5, help="timed steps per variant per round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds over all variants (median reported)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    steps = {name: make_step(args, variant) for name, variant in VARIANTS.items()}
    for step, _, _ in steps.values():  # warm-up: allocator, kernels, Adam state
        step()
        step()
    times = {name: [] for name in steps}
    for _ in range(args.rounds):
        for name, (step, _, _) in steps.items():
            t0 = time.perf_counter()
            for _ in range(args.steps):
                step()
            times[name].append((time.perf_counter() - t0) / args.steps)
    tokens = args.batch_size * args.block_size
    full = statistics.median(times["full training step"])
    print(f"{args.n_layer} layers, n_embd {args.n_embd}, vocab {args.vocab} + {args.n_new}, batch {args.batch_size} x "
          f"{args.block_size} tokens, {args.device} ({torch.get_num_threads()} threads), median of {args.rounds} "
          f"rounds of {args.steps} steps")
    print("| variant | learned params | ms/step | tokens/s | time vs full step |\n|---|---:|---:|---:|---:|")
    for name, (_, learned, total) in steps.items():
        t = statistics.median(times[name])
        print(f"| {name} | {learned / 1e6:.2f}M of {total / 1e6:.2f}M | {t * 1e3:.1f} | {tokens / t:,.0f} | "
              f"{t / full:.2f} |")


if __name__ == "__main__":
    main()
