"""
Speed and peak memory of the benchmark loops (benchmarks.py), one example at a time against batched.
Multiple-choice examples per second and generated tokens per second on a random model of the lab's or
gpu_small's shape (weights do not change the speed; a random model never stops early, so generation runs
its full length).

    python bench/bench_evaluate.py                                            # the lab model, CPU, one thread
    python bench/bench_evaluate.py --context=8 --choices=2 --choice_tokens=6  # short examples (lab_copa's shape)
    python bench/bench_evaluate.py --dtype=bfloat16                           # autocast as evaluate.py --dtype=bfloat16
    python bench/bench_evaluate.py --shape=gpu_small --parts=batched --new_tokens=256  # gpu_small's generation
    python bench/bench_evaluate.py --shape=gpu_small --device=cuda --dtype=bfloat16

Multiple choice, three ways: `before` is the scoring evaluate.py had before batching (kept below to
measure against: one example per call, its context once, its choices on the context's keys/values);
`batch 1` and `batch N` are benchmarks.score_choices with one example or N examples per forward pass.
Generation: inference.generate one prompt at a time against inference.generate_batch with N prompts
(--ids_out writes the batched token ids, so that two versions of inference.py can be shown to agree; the
generation parts use only generate and generate_batch, so this file runs against older versions too).
Contexts and prompts vary in length (half to one and a half times the given length), as a task's do. The
rounds interleave the variants so that a busy machine slows them all alike; the median round is reported,
by the wall clock and by the process's CPU time (with one thread, the steadier of the two on a shared
machine). Peak memory: the most a variant's first run (also the warm-up) held above what was in use when it
started (CUDA's allocator on a GPU, the peak resident set on Linux). Last, the attention kernels (torch's
profiler names them) that a batched score runs: its choices run with a padding mask, and a mask must not
send grouped-query attention to the math kernel.
"""

import argparse
import json
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
    cache = inference.KVCache(len(model.blocks), len(context) + longest - 1)
    last = inference.last_hidden_state(model, torch.tensor([context], device=device), cache)[:, -1:]
    n = len(choices)
    cache = cache.select(torch.zeros(n, dtype=torch.long, device=device))  # its choices write their own keys
    ids = torch.tensor([c + [0] * (longest - len(c)) for c in choices], device=device)
    hidden = last.expand(n, -1, -1)
    if longest > 1:
        hidden = torch.cat([hidden, inference.last_hidden_state(model, ids[:, :-1], cache)], dim=1)
    logits = model.head(hidden).float()
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


SHAPES = {  # the models evaluate.py runs: the lab's (adapted vocabulary) and config/gpu_small.py's
    "lab": dict(n_layer=4, n_head=4, n_kv_head=2, n_embd=128, block_size=256, vocab=3072),
    "gpu_small": dict(n_layer=12, n_head=12, n_kv_head=4, n_embd=768, block_size=1024, vocab=32000),
}
PARTS = ("mc", "alone", "batched")


def peak_memory_mb(fn, device):
    """The most memory fn() held above what was in use when it started, in MB: CUDA's allocator statistics
    on a GPU; on Linux the peak resident set (VmHWM, reset through /proc/self/clear_refs) on the CPU; None
    where neither is available."""
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        before = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        fn()
        return (torch.cuda.max_memory_allocated() - before) / 2**20
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # the peak resident set starts again from the current one
    except OSError:
        return None
    before = _proc_status_kb("VmRSS")
    fn()
    return (_proc_status_kb("VmHWM") - before) / 1024


def _proc_status_kb(key):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(key + ":"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.strip().split("\n")[0])
    ap.add_argument("--shape", default="lab", choices=SHAPES, help="the model's size (the flags below override it): "
                    + "; ".join(f"{name}: {shape}" for name, shape in SHAPES.items()))
    ap.add_argument("--parts", default=",".join(PARTS), help="what to time, comma-separated: mc (multiple choice), "
                    "alone (generation one prompt at a time), batched (generation, gen_batch_size prompts at once)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="float32", help="float32 (evaluate.py's default on the CPU), bfloat16 or "
                    "float16: autocast, as evaluate.py's --dtype")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (evaluate.py's lab default is 1)")
    for key in SHAPES["lab"]:
        ap.add_argument(f"--{key}", type=int, default=None)
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
    ap.add_argument("--ids_out", default="", help="write the batched generation's token ids here (JSON), to compare "
                    "two versions of the code")
    args = ap.parse_args()
    for key, value in SHAPES[args.shape].items():
        setattr(args, key, value if getattr(args, key) is None else getattr(args, key))
    parts = args.parts.split(",")
    if not parts or set(parts) - set(PARTS):
        ap.error(f"--parts: comma-separated names from {', '.join(PARTS)}")
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
    batched_ids = []

    def mc_before():
        for context, cs in zip(contexts, choices):
            score_choices_before(model, context, cs)

    def generate_alone():
        for prompt in prompts:
            assert len(inference.generate(model, prompt, args.new_tokens)) == args.new_tokens

    def generate_batched():
        batched_ids.clear()
        for first in range(0, len(prompts), args.gen_batch_size):
            batched_ids.extend(inference.generate_batch(model, prompts[first:first + args.gen_batch_size],
                                                        args.new_tokens))
        assert all(len(n) == args.new_tokens for n in batched_ids)

    mc_n = f"multiple choice, batch {args.mc_batch_size}"
    gen_n = f"generation, batch {args.gen_batch_size}"
    variants = {}
    if "mc" in parts:
        variants.update({
            "multiple choice, before (one per call)": (mc_before, args.examples, "examples/s"),
            "multiple choice, batch 1": (lambda: benchmarks.score_choices(model, contexts, choices, 1), args.examples,
                                         "examples/s"),
            mc_n: (lambda: benchmarks.score_choices(model, contexts, choices, args.mc_batch_size), args.examples,
                   "examples/s")})
    if "alone" in parts:
        variants["generation, one prompt at a time"] = (generate_alone, args.generations * args.new_tokens, "tokens/s")
    if "batched" in parts:
        variants[gen_n] = (generate_batched, args.generations * args.new_tokens, "tokens/s")
    autocast = runtime.autocast_for(args.device, args.dtype)

    def run(fn):
        with autocast:
            fn()
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()

    peak = {name: peak_memory_mb(lambda: run(fn), args.device) for name, (fn, _, _) in variants.items()}  # + warm-up
    times, cpu_times = {name: [] for name in variants}, {name: [] for name in variants}
    for _ in range(args.rounds):  # interleaved: a busy machine slows every variant alike
        for name, (fn, _, _) in variants.items():
            t0, cpu0 = time.perf_counter(), time.process_time()
            run(fn)
            times[name].append(time.perf_counter() - t0)
            cpu_times[name].append(time.process_time() - cpu0)
    print(f"model: {args.shape} shape, {model.num_params() / 1e6:.2f}M parameters, {args.n_layer} layers x "
          f"{args.n_embd}, vocab {args.vocab}, {args.device}, {args.dtype}, {torch.get_num_threads()} thread(s); "
          f"multiple choice: ~{args.context} context + {args.choices} x {args.choice_tokens} choice tokens; "
          f"generation: ~{args.prompt} prompt + {args.new_tokens} new tokens; median of {args.rounds} rounds")
    rate = {name: count / statistics.median(times[name]) for name, (_, count, _) in variants.items()}
    print(f"{'':42s} {'wall clock':>21s} {'CPU time':>10s} {'peak memory':>14s}")
    for name, (_, count, unit) in variants.items():
        cpu_rate = count / statistics.median(cpu_times[name])
        memory = "" if peak[name] is None else f"+{peak[name]:.1f} MB"
        print(f"{name:42s} {rate[name]:10.1f} {unit:10s} {cpu_rate:10.1f} {memory:>14s}")
    if "mc" in parts:
        print(f"speed-up: multiple choice {rate[mc_n] / rate['multiple choice, before (one per call)']:.1f}x")
    if "alone" in parts and "batched" in parts:
        print(f"speed-up: generation {rate[gen_n] / rate['generation, one prompt at a time']:.1f}x")
    if args.ids_out and batched_ids:
        with open(args.ids_out, "w") as f:
            json.dump(batched_ids, f)
    if "mc" in parts:
        with autocast:
            kernels = attention_kernels(lambda: benchmarks.score_choices(model, contexts[:4], choices[:4], 4))
        print(f"attention kernels of a masked batched score: {', '.join(kernels)}")


if __name__ == "__main__":
    main()
