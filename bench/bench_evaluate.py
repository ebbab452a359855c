"""
Speed of evaluate.py's two benchmark loops: multiple-choice examples per second and generated tokens per
second, on a random model of the lab's size (weights do not change the speed; a random model never
stops early, so generation runs its full length).

    python bench/bench_evaluate.py                      # the lab model on the CPU, one thread
    python bench/bench_evaluate.py --device=cuda --n_layer=12 --n_embd=768 --block_size=1024 --vocab=32000

Multiple choice is measured two ways: evaluate.score_choices (the context runs once, its keys/values are
shared by all choices, which run as one batch) and, for reference, one forward pass per choice over
context + choice. The rounds interleave the variants so that a busy machine slows them all alike; the
median round is reported.
"""

import argparse
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import evaluate  # noqa: E402
from model import GPT, GPTConfig  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.strip().split("\n")[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (evaluate.py's lab default is 1)")
    ap.add_argument("--n_layer", type=int, default=4)
    ap.add_argument("--n_head", type=int, default=4)
    ap.add_argument("--n_kv_head", type=int, default=2)
    ap.add_argument("--n_embd", type=int, default=128)
    ap.add_argument("--block_size", type=int, default=128)
    ap.add_argument("--vocab", type=int, default=3072, help="the lab's adapted vocabulary: 2,048 + 1,024")
    ap.add_argument("--context", type=int, default=80, help="context tokens of a multiple-choice example")
    ap.add_argument("--choices", type=int, default=4, help="choices per example (lab_read has 4)")
    ap.add_argument("--choice_tokens", type=int, default=12, help="tokens per choice")
    ap.add_argument("--examples", type=int, default=40, help="multiple-choice examples per round")
    ap.add_argument("--prompt", type=int, default=80, help="prompt tokens of a generative example")
    ap.add_argument("--new_tokens", type=int, default=32, help="tokens generated per example (evaluate.py's gen_tokens)")
    ap.add_argument("--generations", type=int, default=8, help="generative examples per round")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)

    config = GPTConfig(vocab_size=args.vocab, block_size=args.block_size, n_layer=args.n_layer, n_head=args.n_head,
                       n_kv_head=args.n_kv_head, n_embd=args.n_embd)
    model = GPT(config).to(args.device).eval()
    model.init_weights(torch.Generator().manual_seed(0))
    g = torch.Generator().manual_seed(1)
    ids = lambda n: torch.randint(0, args.vocab, (n,), generator=g).tolist()
    mc = [(ids(args.context), [ids(args.choice_tokens) for _ in range(args.choices)]) for _ in range(args.examples)]
    prompts = [ids(args.prompt) for _ in range(args.generations)]

    def batched():
        for context, choices in mc:
            evaluate.score_choices(model, context, choices)

    @torch.no_grad()
    def one_pass_per_choice():
        for context, choices in mc:
            for choice in choices:
                seq = torch.tensor([context + choice], device=args.device)
                model.token_nll(seq[:, :-1], seq[:, 1:])[:, len(context) - 1:].sum().item()

    def generate():
        for prompt in prompts:
            assert len(model.generate(prompt, args.new_tokens)) == args.new_tokens

    variants = {"multiple choice, batched (evaluate.py)": (batched, args.examples, "examples/s"),
                "multiple choice, one pass per choice": (one_pass_per_choice, args.examples, "examples/s"),
                "generation, KV cache (model.generate)": (generate, args.generations * args.new_tokens, "tokens/s")}
    for fn, _, _ in variants.values():  # warm-up
        fn()
    times = {name: [] for name in variants}
    for _ in range(args.rounds):
        for name, (fn, _, _) in variants.items():
            if args.device.startswith("cuda"):
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            fn()
            if args.device.startswith("cuda"):
                torch.cuda.synchronize()
            times[name].append(time.perf_counter() - t0)
    print(f"model: {model.num_params() / 1e6:.2f}M parameters, {args.n_layer} layers x {args.n_embd}, vocab {args.vocab}, "
          f"{args.device}, {torch.get_num_threads()} thread(s); multiple choice: {args.context} context + {args.choices} x "
          f"{args.choice_tokens} choice tokens; generation: {args.prompt} prompt + {args.new_tokens} new tokens")
    for name, (_, count, unit) in variants.items():
        seconds = statistics.median(times[name])
        print(f"{name:42s} {count / seconds:10.1f} {unit}")


if __name__ == "__main__":
    main()
