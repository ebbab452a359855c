"""
The device check: what a GPU must show that the CPU tests cannot, in one table, in under 5 minutes.

    bash bench/gpu_check.sh                              # on a machine with a CUDA GPU
    bash bench/gpu_check.sh --device=cpu --quick         # the same checks at toy size (tests the script itself)

1. speed: gpu_small's tokens/s, MFU and peak memory, bf16 + torch.compile, with a reset every 10 steps;
2. a reset under torch.compile: the compiled graph must read the new embedding (not a stale copy), both in a
   bare forward pass and in train.py's loop (the loss jumps right after the reset);
3. exact resume on the device: a run stopped and resumed logs the losses of an uninterrupted one;
4. a short lab pipeline: pretraining (standard and forgetting), adaptation, finetuning and evaluation.

Each check prints one row; a failed check says why and the script exits 1 after the table.
"""

import argparse
import json
import os
import subprocess
import sys
import time

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "bench"))
import bench_train  # noqa: E402
from model import GPT, GPTConfig  # noqa: E402


def run(*args, timeout=600):
    """One of the project's scripts as a user runs it; its output goes to the check's log."""
    t = time.time()
    result = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    with open(os.path.join(OUT, "commands.log"), "a") as f:
        f.write(f"$ python {' '.join(args)}\n{result.stdout}\n{result.stderr}\n")
    if result.returncode != 0:
        raise RuntimeError(f"python {' '.join(args)} failed: {result.stderr.strip().splitlines()[-1:]}")
    return time.time() - t


def losses(out_dir):
    with open(os.path.join(out_dir, "log.jsonl")) as f:
        return {r["step"]: r["loss"] for r in map(json.loads, f) if "loss" in r}


def check_speed(args):
    shape = "lab" if args.quick else "gpu_small"
    row = bench_train.bench_steps(shape, args.device, args.dtype, True, args.steps, forget_every=10, overhead_k=1000)
    mem = f", peak {row['peak_mem_gb']:.1f} GiB" if "peak_mem_gb" in row else ""
    mfu = f"{row['mfu']:.1%}" if row["mfu"] else "n/a (no peak FLOP/s known for this device)"
    return True, f"{shape}: {row['tok_s']:,.0f} tokens/s, MFU {mfu}{mem}, reset {row['reset_ms']:.2f} ms"


def check_compiled_reset(args):
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=512, block_size=64, n_layer=2, n_head=2, n_kv_head=1, n_embd=64)).to(args.device)
    compiled = torch.compile(model)
    x = torch.randint(0, 512, (4, 64), device=args.device)
    with torch.no_grad():
        before = compiled(x)[0].float()
        model.reset_token_embeddings(torch.Generator().manual_seed(1))
        after, eager = compiled(x)[0].float(), model(x)[0].float()
    changed = (after - before).abs().max().item()
    mismatch = (after - eager).abs().max().item()
    ok = changed > 1e-3 and mismatch < 1e-3
    return ok, f"forward: logits moved by {changed:.3g} after the reset; compiled vs eager after it: {mismatch:.2g}"


def check_loop_reset(args, lab, tok):
    out = os.path.join(OUT, "reset_loop")
    run("train.py", "config/lab.py", f"--data_dir={lab}", f"--tokenizer={tok}", f"--out_dir={out}", "--overwrite",
        "--max_iters=60", "--forget_every=40", "--eval_every=0", "--log_every=1", "--progress=false",
        f"--device={args.device}", "--compile=true", f"--dtype={args.dtype}")
    loss = losses(out)
    jump = loss[40] - loss[39]  # step 40 is the first step taken with the new embeddings
    return jump > 0.5, f"train.py --compile=true: loss {loss[39]:.2f} before the reset at step 40, {loss[40]:.2f} after"


def check_resume(args, lab, tok):
    common = ["train.py", "config/lab.py", f"--data_dir={lab}", f"--tokenizer={tok}", "--max_iters=40",
              "--forget_every=10", "--eval_every=6", "--log_every=1", "--progress=false", f"--device={args.device}",
              f"--dtype={args.dtype}", f"--compile={args.compile}", "--overwrite"]
    whole, killed = os.path.join(OUT, "resume_whole"), os.path.join(OUT, "resume_killed")
    run(*common, f"--out_dir={whole}")
    # the same run killed (SIGKILL) once its first checkpoint is on disk, then resumed
    proc = subprocess.Popen([sys.executable, *common, f"--out_dir={killed}"], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while not os.path.exists(os.path.join(killed, "ckpt.pt")) and proc.poll() is None:
        time.sleep(0.01)
    proc.kill()
    proc.wait()
    run(*common[:-1], f"--out_dir={killed}", "--resume")
    a, b = losses(whole), losses(killed)
    diff = max(abs(a[s] - b[s]) for s in a)
    return diff == 0, (f"40 steps vs killed and resumed (compile={args.compile}, resets at 10, 20, 30): "
                       f"max loss difference {diff:.3g}" + (" (bit-identical)" if diff == 0 else ""))


def check_pipeline(args, lab, tok):
    base = [f"--device={args.device}", f"--dtype={args.dtype}", "--progress=false", "--overwrite"]
    steps = "--max_iters=60" if args.quick else "--max_iters=400"
    times = {}
    for kind, k in (("standard", 0), ("forgetting", 20 if args.quick else 100)):
        times[f"pretrain {kind}"] = run("train.py", "config/lab.py", f"--data_dir={lab}", f"--tokenizer={tok}", *base, steps,
                                        f"--forget_every={k}", f"--out_dir={OUT}/pretrain_{kind}", "--eval_every=0")
        times[f"adapt {kind}"] = run("adapt.py", "config/lab.py", *base, f"--init_from={OUT}/pretrain_{kind}",
                                     f"--out_dir={OUT}/adapt_{kind}", "--adapt_tokens=20000", "--eval_every=0")
    times["finetune"] = run("finetune.py", "config/lab.py", *base, f"--data_dir={lab}", f"--init_from={OUT}/adapt_forgetting",
                            f"--out_dir={OUT}/finetune", "--max_iters=20")
    times["evaluate"] = run("evaluate.py", "config/lab.py", f"--device={args.device}", "--progress=false", f"--data_dir={lab}",
                            "--models", f"AFA={OUT}/finetune", f"BA={OUT}/adapt_standard", f"--out={OUT}/results.json",
                            "--max_examples=20")
    return True, ", ".join(f"{name} {t:.0f} s" for name, t in times.items())


def main():
    global OUT
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda", help="cuda (the point of this script) or cpu (to test it)")
    parser.add_argument("--dtype", default=None, help="default: bfloat16 on cuda, float32 on cpu")
    parser.add_argument("--compile", default="true", help="torch.compile in the resume check (true or false)")
    parser.add_argument("--steps", type=int, default=30, help="timed training steps of the speed check")
    parser.add_argument("--quick", action="store_true", help="toy sizes everywhere (for testing the script on a CPU)")
    parser.add_argument("--out", default="out/gpu_check", help="scratch folder: the lab, the runs, commands.log")
    args = parser.parse_args()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("error: no CUDA device here; this script checks a GPU (use --device=cpu --quick to test it)")
    args.dtype = args.dtype or ("bfloat16" if args.device.startswith("cuda") else "float32")
    OUT = os.path.abspath(args.out)
    os.makedirs(OUT, exist_ok=True)
    open(os.path.join(OUT, "commands.log"), "w").close()
    name = torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu"
    print(f"device check: {name}, torch {torch.__version__}, dtype {args.dtype}; commands and their output: {OUT}/commands.log")

    lab, tok = os.path.join(OUT, "lab"), os.path.join(OUT, "lab.tiktoken")
    t = time.time()
    run("data/lab/prepare.py", "--out", lab, "--mb_per_lang", "0.1" if args.quick else "0.5")
    texts = [os.path.join(lab, "text", code, "train.txt") for code in json.load(open(f"{lab}/manifest.json"))["groups"]["pretraining"]]
    run("tokenizer.py", "train", "--input", *texts, "--vocab_size", "1024", "--out", tok)
    print(f"(lab and tokenizer: {time.time() - t:.0f} s)")

    checks = [("speed, bf16 + compile", lambda: check_speed(args)),
              ("reset under compile", lambda: check_compiled_reset(args)),
              ("reset in the compiled loop", lambda: check_loop_reset(args, lab, tok)),
              ("exact resume", lambda: check_resume(args, lab, tok)),
              ("short lab pipeline", lambda: check_pipeline(args, lab, tok))]
    rows, failed = [], False
    for title, check in checks:
        t = time.time()
        try:
            ok, what = check()
        except Exception as e:  # one broken check must not hide the others' results
            ok, what = False, f"{type(e).__name__}: {e}"
        failed |= not ok
        rows.append(f"| {title} | {'ok' if ok else 'FAILED'} | {what} | {time.time() - t:.0f} s |")
        print(rows[-1], flush=True)
    print("\n| check | result | measured | time |\n|---|---|---|---|\n" + "\n".join(rows))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
