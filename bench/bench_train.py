"""
Speed and memory of pretraining: tokens/s of a training step, the cost of active forgetting,
and the peak memory of a real lab run.

    python bench/bench_train.py                  # CPU: the lab model and a ~10M-parameter model
    python bench/bench_train.py --device=cuda --config=gpu_small --compile --dtype=bfloat16   # GPU + MFU
    python bench/bench_train.py --rss            # also: peak RSS of `train.py config/lab.py` (needs out/lab)

Timings are medians over steps after a warm-up, so compile time and first-touch costs are excluded.
"""

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import train  # noqa: E402
from model import GPT, GPTConfig  # noqa: E402

SHAPES = {  # name: (GPTConfig kwargs, micro-batch)
    "lab": (dict(vocab_size=4096, block_size=128, n_layer=4, n_head=4, n_kv_head=2, n_embd=128), 32),
    "10m": (dict(vocab_size=8192, block_size=256, n_layer=6, n_head=4, n_kv_head=2, n_embd=256), 16),
    "gpu_small": (dict(vocab_size=32000, block_size=1024, n_layer=12, n_head=12, n_kv_head=4, n_embd=768), 32),
}


def bench_steps(name, device, dtype, compile_model, steps, forget_every, overhead_k, clock=time.perf_counter):
    """Time `steps` training steps of shape `name`. clock: wall time by default; bench/gpu_check.py's CPU form
    passes time.process_time, so that other jobs on a shared CPU do not move the number."""
    kwargs, batch_size = SHAPES[name]
    torch.manual_seed(0)
    model = GPT(GPTConfig(**kwargs)).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=device.startswith("cuda"))
    runner = torch.compile(model) if compile_model else model
    device_type = device.split(":")[0]
    autocast = (torch.autocast(device_type, dtype=getattr(torch, dtype)) if dtype != "float32"
                else torch.autocast(device_type, enabled=False))
    x = torch.randint(0, kwargs["vocab_size"], (batch_size, kwargs["block_size"]), device=device)
    times, reset_times = [], []
    for step in range(steps):
        if forget_every and step and step % forget_every == 0:  # the same lines as train.py's loop
            t = clock()
            model.reset_token_embeddings(torch.Generator().manual_seed(step))
            optimizer.state[model.wte.weight].clear()
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            reset_times.append(clock() - t)
        t = clock()
        with autocast:
            _, loss = runner(x, x)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        times.append(clock() - t)
    step_time = statistics.median(times[3:])
    tokens = batch_size * kwargs["block_size"]
    flops = model.flops_per_token() * tokens / step_time
    peak = train.peak_flops(device)
    row = dict(name=name, params=model.num_params() / 1e6, step_ms=1000 * step_time, tok_s=tokens / step_time,
               tflops=flops / 1e12, mfu=flops / peak if peak else None)
    if reset_times:
        # a reset every K steps costs reset_time / (K * step_time) of the run
        row["reset_ms"] = 1000 * statistics.median(reset_times)
        row["forget_overhead"] = statistics.median(reset_times) / (overhead_k * step_time)
    if device.startswith("cuda"):
        row["peak_mem_gb"] = torch.cuda.max_memory_allocated() / 2**30
    return row


def peak_rss_of_lab_run(steps):
    cmd = [sys.executable, "train.py", "config/lab.py", "--out_dir=out/bench_rss", "--overwrite",
           f"--max_iters={steps}", "--eval_every=50", "--progress=false"]
    subprocess.run(cmd, check=True, cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20  # KiB -> GiB


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--config", nargs="+", default=["lab", "10m"], choices=list(SHAPES))
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--forget_every", type=int, default=5, help="reset this often while timing (0 = never)")
    parser.add_argument("--overhead_k", type=int, default=100, help="K for the overhead column (the lab's K)")
    parser.add_argument("--rss", action="store_true", help="also measure the peak RSS of a lab train.py run")
    args = parser.parse_args()
    print(f"device={args.device} dtype={args.dtype} compile={args.compile} torch={torch.__version__} "
          f"threads={torch.get_num_threads()}")
    print(f"| model | params | step ms | tokens/s | TFLOP/s | MFU | reset ms | forgetting overhead at "
          f"K={args.overhead_k} |")
    print("|---|---|---|---|---|---|---|---|")
    for name in args.config:
        r = bench_steps(name, args.device, args.dtype, args.compile, args.steps, args.forget_every, args.overhead_k)
        mfu = f"{r['mfu']:.1%}" if r["mfu"] else "n/a"
        reset = f"{r['reset_ms']:.2f} | {r['forget_overhead']:.3%}" if "reset_ms" in r else "n/a | n/a"
        print(f"| {name} | {r['params']:.1f}M | {r['step_ms']:.1f} | {r['tok_s']:,.0f} | {r['tflops']:.2f} | {mfu} | "
              f"{reset} |" + (f" peak {r['peak_mem_gb']:.1f} GiB" if "peak_mem_gb" in r else ""))
    if args.rss:
        print(f"peak RSS of a 100-step lab pretraining run: {peak_rss_of_lab_run(100):.2f} GiB")


if __name__ == "__main__":
    main()
