"""
The device check: what a GPU must show that the CPU tests cannot, in one table, in about 5 minutes.

    bash bench/gpu_check.sh                              # on a machine with a CUDA GPU
    bash bench/gpu_check.sh --device=cpu --quick         # the same checks at toy size (tests the script itself)

 1. speed: gpu_small's tokens/s, MFU and peak memory, bf16 + torch.compile, with a reset every 10 steps;
 2. a reset under torch.compile: the compiled graph reads the new embedding (not a stale copy), both in a
    bare forward pass and in train.py's loop (the loss jumps right after the reset);
 3. resume with --deterministic: a run killed and resumed logs bit for bit the losses of an uninterrupted one
    (the README's claim: bit-exact on the CPU always, on CUDA with --deterministic);
 4. float16: training refuses it with a clear message (no loss scaling);
 5. finetuning under torch.compile: conversations of many lengths, padded to multiples of 64, and how many
    times torch recompiled the model for a new shape;
 6. sampling with temperature (sample.py), which draws on the device the logits are on;
 7. a masked batched score (the benchmarks' multiple-choice path) and the attention kernel it ran;
 8. the larger lab (config/lab_gpu.py, the lab offered for one GPU): its pretraining timed for a few steps
    and extrapolated to its 2,000 steps, and an adaptation run from it.

Each check prints one row; a failed check says why and the script exits 1 after the table.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import time

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "bench"))
import bench_train  # noqa: E402
from bench_evaluate import attention_kernels  # noqa: E402
from evaluation import runs  # noqa: E402
from evaluation.benchmarks import score_choices  # noqa: E402
from model import GPT, GPTConfig  # noqa: E402
from pipeline import runtime  # noqa: E402


def run(*args, timeout=600, env=None, check=True):
    """One of the project's scripts as a user runs it; its output goes to the check's log. Returns the
    seconds it took, or the CompletedProcess with check=False."""
    t = time.time()
    result = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                            env={**os.environ, **(env or {})})
    with open(os.path.join(OUT, "commands.log"), "a") as f:
        f.write(f"$ python {' '.join(args)}\n{result.stdout}\n{result.stderr}\n")
    if not check:
        return result
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
              f"--dtype={args.dtype}", f"--compile={args.compile}", "--deterministic", "--overwrite"]
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
    return diff == 0, (f"--deterministic, compile={args.compile}: 40 steps vs killed and resumed (resets at 10, 20, "
                       f"30): max loss difference {diff:.3g}" + (" (bit-identical)" if diff == 0 else ""))


def check_float16(args, lab, tok):
    result = run("train.py", "config/lab.py", f"--data_dir={lab}", f"--tokenizer={tok}", f"--out_dir={OUT}/float16",
                 "--overwrite", "--max_iters=2", "--progress=false", f"--device={args.device}", "--dtype=float16",
                 check=False)
    message = result.stderr.strip().splitlines()[-1] if result.stderr.strip() else ""
    ok = result.returncode == 1 and "float16" in message and "Traceback" not in result.stderr
    return ok, (f"train.py --dtype=float16: refused ({message[:90]})" if ok
                else f"exit {result.returncode}: {message[:120]}")


def check_finetune_compiled(args, lab):
    out = os.path.join(OUT, "finetune_compiled")
    result = run("finetune.py", "config/lab.py", f"--data_dir={lab}", f"--init_from={OUT}/lab_gpu_pretrain",
                 f"--out_dir={out}", "--overwrite", "--max_iters=12", "--batch_size=4", "--eval_every=0",
                 "--n_samples=1", "--progress=false", f"--device={args.device}", f"--dtype={args.dtype}",
                 "--compile=true", env={"TORCH_LOGS": "recompiles"}, check=False)
    if result.returncode != 0:
        return False, f"finetune.py failed: {result.stderr.strip().splitlines()[-1:]}"
    recompiles = result.stderr.count("Recompiling function")
    lengths = sorted({int(n) for pair in re.findall(r"expected (\d+), actual (\d+)", result.stderr) for n in pair})
    return recompiles <= 1, (f"12 steps x 4 conversations, compile=true: {recompiles} recompile(s)"
                             + (f" (lengths {lengths})" if lengths else "")
                             + " - at most 1 expected (static, then dynamic length)")


def check_sampling(args):
    result = run("sample.py", f"--init_from={OUT}/lab_gpu_pretrain", "--prompt=The", "--temperature=0.8", "--top_k=50",
                 "--max_new_tokens=16", f"--device={args.device}", check=False)
    if result.returncode != 0:
        return False, f"sample.py --temperature=0.8 failed: {result.stderr.strip().splitlines()[-1:]}"
    return True, f"sample.py --temperature=0.8 --top_k=50: {result.stdout.strip()[:60]!r}"


def check_masked_score(args):
    model, tok, _ = runtime.load_model(f"{OUT}/lab_gpu_pretrain", args.device)
    model.eval()
    contexts = [tok.encode("The cat sat on the mat because"), tok.encode("A")]  # different lengths: padded rows
    choices = [[tok.encode(" it was warm"), tok.encode(" no")], [tok.encode(" b"), tok.encode(" c d e")]]
    # the backend torch dispatched scaled_dot_product_attention to: flash, efficient, cudnn or math
    kernels = attention_kernels(lambda: score_choices(model, contexts, choices, batch_size=2))
    batched = score_choices(model, contexts, choices, batch_size=2)
    alone = [score_choices(model, [c], [cs], batch_size=1)[0] for c, cs in zip(contexts, choices)]
    diff = max(abs(a - b) for row_a, row_b in zip(batched, alone) for a, b in zip(row_a, row_b))
    ok = diff < (1e-3 if args.device == "cpu" else 5e-2)
    return ok, (f"batched vs one at a time: max difference {diff:.2g} nats; attention ops: "
                f"{', '.join(kernels) or 'none seen'}")


def pretrain_lab_gpu(args, lab, tok):
    """config/lab_gpu.py's model pretrained for a few steps on the check's lab: the time per step, then the
    other checks use the model. The full run (2,000 steps) is extrapolated, and said to be."""
    steps = 10 if args.quick else 200
    out = os.path.join(OUT, "lab_gpu_pretrain")
    seconds = run("train.py", "config/lab_gpu.py", f"--data_dir={lab}", f"--tokenizer={tok}", f"--out_dir={out}",
                  "--overwrite", f"--max_iters={steps}", "--forget_every=50", "--eval_every=0", "--log_every=5",
                  "--progress=false", f"--device={args.device}", f"--dtype={args.dtype}")
    log = [r for r in runs.read_log(out) if "tok_per_s" in r][1:]  # the first line holds the compile
    tok_s = sum(r["tok_per_s"] for r in log) / len(log)
    full = runtime.parse_config(__import__("train").TrainConfig, "train", [os.path.join(ROOT, "config", "lab_gpu.py")])
    full_s = full.max_iters * full.batch_size * full.grad_accum * full.block_size / tok_s
    adapt_s = run("adapt.py", "config/lab_gpu.py", f"--init_from={out}", f"--out_dir={OUT}/lab_gpu_adapt",
                  "--overwrite", "--adapt_tokens=20000", "--eval_every=0", "--progress=false",
                  f"--device={args.device}", f"--dtype={args.dtype}")
    return True, (f"pretraining {steps} steps: {seconds:.0f} s wall (start-up and any compile included), {tok_s:,.0f} "
                  f"tokens/s after the first log line -> its {full.max_iters} steps extrapolated, not run: "
                  f"{full_s / 60:.1f} min per pretraining run (run.sh trains 3 per seed); adapt.py 20,000 tokens "
                  f"{adapt_s:.0f} s")


def main():
    global OUT
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda", help="cuda (the point of this script) or cpu (to test it)")
    parser.add_argument("--dtype", default=None, help="default: bfloat16 on cuda, float32 on cpu")
    parser.add_argument("--compile", default="auto", help="torch.compile in the resume check: "
                        "auto (on for CUDA), true or false")
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
    print(f"device check: {name}, torch {torch.__version__}, dtype {args.dtype}; commands and their output: "
          f"{OUT}/commands.log")

    lab, tok = os.path.join(OUT, "lab"), os.path.join(OUT, "lab.tiktoken")
    t = time.time()
    run("data/lab/prepare.py", "--out", lab, "--mb_per_lang", "0.1" if args.quick else "0.5")
    texts = [os.path.join(lab, "text", code, "train.txt")
             for code in json.load(open(f"{lab}/manifest.json"))["groups"]["pretraining"]]
    run("tokenizer.py", "train", "--input", *texts, "--vocab_size", "1024", "--out", tok)
    print(f"(lab and tokenizer: {time.time() - t:.0f} s)")

    checks = [(f"speed, {args.dtype} + compile", lambda: check_speed(args)),
              ("reset under compile", lambda: check_compiled_reset(args)),
              ("reset in the compiled loop", lambda: check_loop_reset(args, lab, tok)),
              ("resume, --deterministic", lambda: check_resume(args, lab, tok)),
              ("float16 training", lambda: check_float16(args, lab, tok)),
              ("lab_gpu pretraining (extrapolated) + adapt", lambda: pretrain_lab_gpu(args, lab, tok)),
              ("finetune under compile", lambda: check_finetune_compiled(args, lab)),
              ("sampling, temperature 0.8", lambda: check_sampling(args)),
              ("masked batched score", lambda: check_masked_score(args))]
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
