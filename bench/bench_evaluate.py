"""
Speed of the benchmark loops (benchmarks.py): multiple-choice examples per second and generated tokens
per second, one example at a time against batched, on a random model of the lab's size (weights do not
change the speed; a random model never stops early, so generation runs its full length).

    python bench/bench_evaluate.py                                            # the lab model, CPU, one thread
    python bench/bench_evaluate.py --context=8 --choices=2 --choice_tokens=6  # short examples (lab_copa's shape)
    python bench/bench_evaluate.py --dtype=bfloat16                           # autocast as evaluate.py --dtype=bfloat16
    python bench/bench_evaluate.py --device=cuda --n_layer=12 --n_embd=768 --block_size=1024 --vocab=32000

Multiple choice, three ways: `before` is the scoring evaluate.py had before batching (kept below to
measure against: one example per call, its context once, its choices on the context's keys/values);
`batch 1` and `batch N` are benchmarks.score_choices with one example or N examples per forward pass.
Generation: inference.generate one prompt at a time against inference.generate_batch with N prompts.
Contexts and prompts vary in length (half to one and a half times the given length), as a task's do. The
rounds interleave the variants so that a busy machine slows them all alike; the median round is reported.
Last, the attention kernels (torch's profiler names them) that a batched score runs: its choices run
with a padding mask, and a mask must not send grouped-query attention to the math kernel.
"""

import argparse
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F
from torch.profiler import profile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from evaluation import benchmarks, inference  # noqa: E402
from model import GPT, GPTConfig  # noqa: E402
from pipeline import runtime  # noqa: E402


@torch.no_grad()
def score_choices_before(model, context, choices):
    """evaluate.py's multiple-choice scoring before batching: one example per call."""
    device = model.wte.weight.device
    longest = max(len(c) for c in choices)
    context = context[-(model.config.block_size - longest):]
    cache = inference.KVCache(len(model.blocks))
    last = inference.hidden_states(model, torch.tensor([context], device=device), cache)[-1][:, -1:]
    n = len(choices)
    cache.k, cache.v = [k.expand(n, -1, -1, -1) for k in cache.k], [v.expand(n, -1, -1, -1) for v in cache.v]
    ids = torch.tensor([c + [0] * (longest - len(c)) for c in choices], device=device)
    hidden = last.expand(n, -1, -1)
    if longest > 1:
        hidden = torch.cat([hidden, inference.hidden_states(model, ids[:, :-1], cache)[-1]], dim=1)
    logits = inference.logits(model, hidden).float()
    log_probs = F.log_softmax(logits, dim=-1).gather(-1, ids[..., None])[..., 0]
    counted = (torch.arange(longest, device=device)[None]
               < torch.tensor([len(c) for c in choices], device=device)[:, None])
    return (log_probs * counted).sum(1).tolist()


def attention_kernels(fn):
    """The names of the attention kernels (aten::_scaled_dot_product_*) that fn() runs, from torch's
    profiler: e.g. efficient_attention or flash_attention on a GPU, flash_attention_for_cpu on a CPU,
    attention_math where no fused kernel could take the call."""
    with profile() as prof:
        fn()
    return sorted({e.name.removeprefix("aten::_scaled_dot_product_") for e in prof.events()
                   if e.name.startswith("aten::_scaled_dot_product_")})


def main():
    ap = argparse.ArgumentParser(description=__doc__.strip().split("\n")[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="float32", help="float32 (evaluate.py's default on the CPU), bfloat16 or "
                    "float16: autocast, as evaluate.py's --dtype")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (evaluate.py's lab default is 1)")
    ap.add_argument("--n_layer", type=int, default=4)
    ap.add_argument("--n_head", type=int, default=4)
    ap.add_argument("--n_kv_head", type=int, default=2)
    ap.add_argument("--n_embd", type=int, default=128)
    ap.add_argument("--block_size", type=int, default=256)
    ap.add_argument("--vocab", type=int, default=3072, help="the lab's adapted vocabulary: 2,048 + 1,024")
    ap.add_argument("--context", type=int, default=80, help="mean context tokens of a multiple-choice example")
    ap.add_argument("--choices", type=int, default=4, help="choices per example (lab_read has 4)")
    ap.add_argument("--choice_tokens", type=int, default=12, help="tokens per choice")
    ap.add_argument("--examples", type=int, default=64, help="multiple-choice examples per round")
    ap.add_argument("--mc_batch_size", type=int, default=32, help="examples per forward pass "
                    "(evaluate.py's mc_batch_size)")
    ap.add_argument("--prompt", type=int, default=80, help="mean prompt tokens of a generative example")
    ap.add_argument("--new_tokens", type=int, default=32, help="tokens generated per example")
    ap.add_argument("--generations", type=int, default=32, help="generative examples per round")
    ap.add_argument("--gen_batch_size", type=int, default=32, help="prompts per batch (evaluate.py's gen_batch_size)")
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
    about = lambda n: max(1, int(torch.randint(n // 2, n + n // 2 + 1, (1,), generator=g)))  # half to 1.5 times n
    contexts = [ids(about(args.context)) for _ in range(args.examples)]
    choices = [[ids(args.choice_tokens) for _ in range(args.choices)] for _ in range(args.examples)]
    prompts = [ids(about(args.prompt)) for _ in range(args.generations)]

    def mc_before():
        for context, cs in zip(contexts, choices):
            score_choices_before(model, context, cs)

    def generate_alone():
        for prompt in prompts:
            assert len(inference.generate(model, prompt, args.new_tokens)) == args.new_tokens

    def generate_batched():
        for first in range(0, len(prompts), args.gen_batch_size):
            new = inference.generate_batch(model, prompts[first:first + args.gen_batch_size], args.new_tokens)
            assert all(len(n) == args.new_tokens for n in new)

    mc_n = f"multiple choice, batch {args.mc_batch_size}"
    variants = {"multiple choice, before (one per call)": (mc_before, args.examples, "examples/s"),
                "multiple choice, batch 1": (lambda: benchmarks.score_choices(model, contexts, choices, 1),
                                             args.examples, "examples/s"),
                mc_n: (lambda: benchmarks.score_choices(model, contexts, choices, args.mc_batch_size), args.examples,
                       "examples/s"),
                "generation, one prompt at a time": (generate_alone, args.generations * args.new_tokens, "tokens/s"),
                f"generation, batch {args.gen_batch_size}": (generate_batched, args.generations * args.new_tokens,
                                                             "tokens/s")}
    autocast = runtime.autocast_for(args.device, args.dtype)
    for fn, _, _ in variants.values():  # warm-up
        with autocast:
            fn()
    times = {name: [] for name in variants}
    for _ in range(args.rounds):
        for name, (fn, _, _) in variants.items():
            if args.device.startswith("cuda"):
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            with autocast:
                fn()
            if args.device.startswith("cuda"):
                torch.cuda.synchronize()
            times[name].append(time.perf_counter() - t0)
    print(f"model: {model.num_params() / 1e6:.2f}M parameters, {args.n_layer} layers x {args.n_embd}, "
          f"vocab {args.vocab}, {args.device}, {args.dtype}, {torch.get_num_threads()} thread(s); multiple choice: "
          f"~{args.context} context + {args.choices} x {args.choice_tokens} choice tokens; generation: ~{args.prompt} "
          f"prompt + {args.new_tokens} new tokens")
    rate = {name: count / statistics.median(times[name]) for name, (_, count, _) in variants.items()}
    for name, (_, _, unit) in variants.items():
        print(f"{name:42s} {rate[name]:10.1f} {unit}")
    gen_n = f"generation, batch {args.gen_batch_size}"
    print(f"speed-up: multiple choice {rate[mc_n] / rate['multiple choice, before (one per call)']:.1f}x, "
          f"generation {rate[gen_n] / rate['generation, one prompt at a time']:.1f}x")
    with autocast:
        kernels = attention_kernels(lambda: benchmarks.score_choices(model, contexts[:4], choices[:4], 4))
    print(f"attention kernels of a masked batched score: {', '.join(kernels)}")


if __name__ == "__main__":
    main()
