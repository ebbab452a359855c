"""
The device check: what a GPU must show that the CPU tests cannot, as a verdict in rows. Every row has a
threshold and can fail (bench/gpu_verdicts.py states each and why; tests/test_gpu_check.py feeds each a
broken result). Three groups, each under 5 minutes; run them in this order, all at once (the default) or
one per call with --rows, so that a borrowed GPU's first minutes say the most:

  1. speed   (one process; no lab)  speed: gpu_small's tokens/s and MFU, bf16 + torch.compile, against the
             floor a first run must meet (25% MFU; the CPU form: MFU against the CPU's own one-thread
             matmul speed, at least 20%); compiled_reset: a reset under torch.compile, compiled
             logits against eager; kernels: a masked batched score as evaluate.py runs it (bf16 autocast on
             CUDA) must run a fused attention kernel (flash, efficient or cudnn), never the math one;
             float16: training refuses float16 with one error line.
  2. resume  resume: train.py --deterministic (compiled on CUDA) killed once a checkpoint is on disk,
             resumed, its log against an uninterrupted run's, bit for bit; it starts from empty folders and
             needs "resuming at step k" with 0 < k < the end; loop_reset: that uninterrupted run's reset
             under compile sends the loss back up; torchrun: the same under torchrun with one process
             (DDP; compiled on CUDA), bit for bit.
  3. lab     lab_gpu: config/lab_gpu.py's model pretrained on the check's lab (val bits per byte at least 10%
             below step 0's; its 2,000 steps extrapolated from the time per step) and adapted (at least 10%
             below the adaptation's start); finetune: finetune.py under compile recompiles at most once;
             sampling: sample.py at temperature 0.8 prints decoded, non-empty text.

    bash bench/gpu_check.sh                          # all three groups on CUDA
    bash bench/gpu_check.sh --rows=speed             # one group (or rows: --rows=kernels,sampling)
    bash bench/gpu_check.sh --device=cpu --quick     # the same rows at toy size, one thread a process: tests
                                                     # the script here (2.5-3 min on 2 shared cores)

Ten minutes of a GPU: the cost is compiling, so the check compiles little and in few processes. Estimated
for an H100 from the CPU form's timings and its compile counts (no GPU has run it yet): speed ~2 min (two
compiles in one process: gpu_small and a 2-layer model), resume ~2.5 min (six short lab runs; the first
compile is cold, the others hit torch's compile cache), lab ~4 min (three cold compiles: lab_gpu
pretraining, adaptation and finetuning). What it needs is torch and requirements.txt without rustbpe and
without network: the lab is generated (data/lab/prepare.py), the base vocabulary is the committed
bench/fixtures/lab.tiktoken (512 ids, made by `python tokenizer.py train --input out/lab/text/{en,qcy,qdv,
qla}/train.txt --vocab_size 512` on `python data/lab/prepare.py --seed 11 --mb_per_lang 0.1`). The lab and
every run use development seed 11, never a reported one.

A failed row says why; the script exits 1 after the table. Commands and their output: <out>/commands.log.
"""

import argparse
import functools
import importlib.util
import os
import resource
import shutil
import signal
import subprocess
import sys
import time

import torch

# what the rows import from requirements.txt (not rustbpe: nothing here trains a vocabulary); a preinstalled
# GPU image without network may lack some, and a list beats a traceback
NEEDED = ("numpy", "regex", "tiktoken", "tqdm", "sacrebleu")
MISSING = [name for name in NEEDED if importlib.util.find_spec(name) is None]
if MISSING:
    sys.exit(f"error: missing {', '.join(MISSING)}: pip install them (offline: `pip download` them on a machine "
             "with network, then pip install --no-index --find-links <that folder>)")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "bench"))
import bench_train  # noqa: E402
import gpu_verdicts as verdict  # noqa: E402
from bench_evaluate import attention_kernels  # noqa: E402
from evaluation import runs  # noqa: E402
from evaluation.benchmarks import score_choices  # noqa: E402
from model import GPT, GPTConfig  # noqa: E402
from pipeline import runtime  # noqa: E402

TOKENIZER = os.path.join(ROOT, "bench", "fixtures", "lab.tiktoken")
SEED = 11  # the lab world and every run: a development seed (1..99), never a reported one
# The resume rows' run: config/lab.py's model (1.4M parameters) for 60 steps, a reset at 30, a checkpoint
# every 10 (the kill lands on one inside the run); at --quick a 2-layer toy with the same 1,024 tokens a step
# for 32 steps, so that its six processes fit a few minutes of a shared CPU.
RESUME = {False: dict(steps=60, reset=30, save_every=10, flags=["--eval_tokens=2048"]),
          True: dict(steps=32, reset=16, save_every=4, flags=["--n_layer=2", "--n_head=2", "--n_kv_head=1",
                                                              "--n_embd=64", "--block_size=64", "--batch_size=16",
                                                              "--eval_tokens=512"])}
ARGS = OUT = None  # set by main


# ---- running the project's scripts as a user does ----------------------------------------------------

def run(*args, env=None, check=True, prefix=(), timeout=600):
    """python [prefix] args, in the repository root; its output goes to commands.log. Returns the
    CompletedProcess; raises if it failed and check is set, or ran past timeout (then it is killed)."""
    proc, t = start(*args, env=env, prefix=prefix), time.time()
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except BaseException as e:  # past the timeout, or interrupted: nothing it started may outlive the check
        stop(proc)
        proc.communicate()
        if isinstance(e, subprocess.TimeoutExpired):
            raise RuntimeError(f"{' '.join(args[:1])} still running after {timeout} s: killed") from None
        raise
    log_command(proc.args + [f"({time.time() - t:.1f} s)"], stdout, stderr)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:1])} failed: {stderr.strip().splitlines()[-1:]}")
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


def start(*args, env=None, prefix=()):
    return subprocess.Popen([sys.executable, *prefix, *args], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})})


def stop(proc):
    """SIGKILL a started process and every process under it, by id: torchrun starts its workers in sessions
    of their own, so a kill of its process group would miss them (and they would finish the run)."""
    for pid in reversed(process_tree(proc.pid)):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def process_tree(pid):
    """pid and its descendants, parents first, from /proc (Linux); just pid where /proc cannot be read."""
    children = {}
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else []:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                parent = int(f.read().rsplit(")", 1)[1].split()[1])  # the field after the (command name)
        except (OSError, ValueError, IndexError):
            continue  # a process that just ended
        children.setdefault(parent, []).append(int(entry))
    tree = [pid]
    for p in tree:  # grows while it is read: breadth first
        tree += children.get(p, [])
    return tree


def log_command(command, stdout, stderr):
    with open(os.path.join(OUT, "commands.log"), "a") as f:
        f.write(f"$ {' '.join(command)}\n{stdout}\n{stderr}\n")


def fresh(*parts):
    """An empty folder under OUT: a rerun with the same --out never meets the last run's files."""
    path = os.path.join(OUT, *parts)
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    return path


def device_flags(compile_flag):
    return [f"--device={ARGS.device}", f"--dtype={ARGS.dtype}", f"--compile={compile_flag}", "--progress=false",
            f"--seed={SEED}"]


@functools.cache
def lab():
    """The check's lab: small, generated here (nothing downloaded), a development world."""
    path = fresh("lab")
    run("data/lab/prepare.py", "--seed", str(SEED), "--out", path, "--mb_per_lang", "0.1" if ARGS.quick else "0.3",
        "--examples_per_task", "24")
    return path


# ---- group 1: speed ----------------------------------------------------------------------------------

def row_speed():
    shape = "lab" if ARGS.quick else "gpu_small"
    # on a CPU: one thread timed in CPU seconds, so that other jobs sharing the CPU do not move the number
    cpu = not ARGS.device.startswith("cuda")
    row = bench_train.bench_steps(shape, ARGS.device, ARGS.dtype, ARGS.compile, ARGS.steps, forget_every=5,
                                  overhead_k=1000, clock=time.process_time if cpu else time.perf_counter)
    if cpu:
        peak = cpu_peak_flops()
    else:
        peak = ARGS.peak_tflops * 1e12 if ARGS.peak_tflops else bench_train.train.peak_flops(ARGS.device)
    mfu = row["tflops"] * 1e12 / peak if peak else None
    ok, what = verdict.speed(row["tok_s"], mfu, shape, ARGS.device)
    mem = f", peak memory {row['peak_mem_gb']:.1f} GiB" if "peak_mem_gb" in row else ""
    against = f" per CPU-second, against a {peak / 1e9:.0f} GFLOP/s matmul" if cpu else ""
    return ok, (f"{shape}, {ARGS.dtype}, compile={ARGS.compile}: {what}{against}{mem}, "
                f"a reset {row['reset_ms']:.2f} ms")


def cpu_peak_flops(n=512, seconds=0.5):
    """The CPU's peak for the speed row's MFU: float32 FLOP per CPU-second of an n x n matmul on this process's
    one thread (the training steps' clock and thread count)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b  # warm up
    count, t = 0, time.process_time()
    while time.process_time() - t < seconds:
        a @ b
        count += 1
    return 2 * n**3 * count / (time.process_time() - t)


def row_compiled_reset():
    torch.manual_seed(SEED)
    model = GPT(GPTConfig(vocab_size=512, block_size=64, n_layer=2, n_head=2, n_kv_head=1, n_embd=64)).to(ARGS.device)
    compiled = torch.compile(model)
    x = torch.randint(0, 512, (4, 64), device=ARGS.device)
    with torch.no_grad():
        before = compiled(x)[0].float()
        model.reset_token_embeddings(torch.Generator().manual_seed(SEED))
        after, eager = compiled(x)[0].float(), model(x)[0].float()
    return verdict.reset_forward((after - before).abs().max().item(), (after - eager).abs().max().item())


def row_kernels():
    """evaluate.py's multiple-choice path: fp32 weights under the dtype's autocast, padded rows (a mask), on
    gpu_small's attention shape (12 query heads, 4 key/value heads of 64) with 2 layers."""
    torch.manual_seed(SEED)
    model = GPT(GPTConfig(vocab_size=512, block_size=256, n_layer=2, n_head=12, n_kv_head=4, n_embd=768))
    model = model.to(ARGS.device).eval()
    ids = lambda n: torch.randint(0, 512, (n,)).tolist()
    contexts = [ids(40), ids(7), ids(90)]  # different lengths: padded rows, masked attention
    choices = [[ids(3), ids(11)], [ids(1), ids(6)], [ids(9), ids(2)]]
    with runtime.autocast_for(ARGS.device, ARGS.dtype):
        names = attention_kernels(lambda: score_choices(model, contexts, choices, batch_size=3))
        batched = score_choices(model, contexts, choices, batch_size=3)
        alone = [score_choices(model, [c], [cs], batch_size=1)[0] for c, cs in zip(contexts, choices)]
    diff = max(abs(a - b) for row_a, row_b in zip(batched, alone) for a, b in zip(row_a, row_b))
    return verdict.kernels(names, ARGS.device, ARGS.dtype, diff)


def row_float16():
    result = run("train.py", f"--tokenizer={TOKENIZER}", f"--out_dir={fresh('float16')}", "--max_iters=2",
                 "--dtype=float16", f"--device={ARGS.device}", "--progress=false", check=False)
    return verdict.float16_refused(result.returncode, result.stderr)


# ---- group 2: resume, a reset in the compiled loop, torchrun ------------------------------------------

def killed_and_resumed(name, compile_flag, prefix=()):
    """An uninterrupted run and the same run SIGKILLed once its first checkpoint is on disk, then resumed,
    all in empty folders: (whole's log, resumed's log, what the resuming process printed)."""
    size = RESUME[ARGS.quick]
    common = ["train.py", "config/lab.py", f"--data_dir={lab()}", f"--tokenizer={TOKENIZER}", *size["flags"],
              f"--max_iters={size['steps']}", f"--forget_every={size['reset']}", f"--eval_every={size['save_every']}",
              "--log_every=1", "--deterministic", *device_flags(compile_flag)]
    whole, killed = fresh(name, "whole"), fresh(name, "killed")
    run(*common, f"--out_dir={whole}", prefix=prefix)
    proc = start(*common, f"--out_dir={killed}", prefix=prefix)
    deadline = time.time() + 600
    while not os.path.exists(os.path.join(killed, "ckpt.pt")) and proc.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    if proc.poll() is None:
        stop(proc)
    log_command(proc.args + ["(killed)"], *proc.communicate())
    resumed = run(*common, f"--out_dir={killed}", "--resume", prefix=prefix)
    return runs.read_log(whole), runs.read_log(killed), resumed.stdout


@functools.cache
def resume_runs():
    return killed_and_resumed("resume", ARGS.compile)


def row_resume():
    whole, resumed, stdout = resume_runs()
    ok, what = verdict.resume(whole, resumed, stdout, RESUME[ARGS.quick]["steps"])
    return ok, f"--deterministic, compile={ARGS.compile}: {what}"


def row_loop_reset():
    whole, _, _ = resume_runs()
    ok, what = verdict.loop_reset({r["step"]: r["loss"] for r in whole if "loss" in r}, RESUME[ARGS.quick]["reset"])
    return ok, f"train.py, compile={ARGS.compile}: {what}"


def row_torchrun():
    # the CPU form runs it eager: gloo and inductor's C++ compile would add a minute for what the plain
    # resume row's compile already shows
    compile_flag = ARGS.compile and ARGS.device.startswith("cuda")
    whole, resumed, stdout = killed_and_resumed("torchrun", compile_flag, prefix=(
        "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=1"))
    ok, what = verdict.resume(whole, resumed, stdout, RESUME[ARGS.quick]["steps"])
    backend = "nccl" if ARGS.device.startswith("cuda") else "gloo"
    return ok, f"1 process, DDP ({backend}), compile={compile_flag}: {what}"


# ---- group 3: the larger lab ---------------------------------------------------------------------------

# config/lab_gpu.py's model (3.9M parameters) as it is, 200 steps; at --quick a 2-layer toy that keeps its
# 256-token block (finetune's row needs conversations of several padded lengths), 30 steps
LAB = {False: dict(steps=200, adapt_tokens=20_000, flags=[]),
       True: dict(steps=30, adapt_tokens=8192, flags=["--n_layer=2", "--n_head=2", "--n_kv_head=1", "--n_embd=64",
                                                      "--batch_size=4"])}


@functools.cache
def lab_gpu_pretrain():
    """config/lab_gpu.py pretrained a few steps on the check's lab: val bits per byte at step 0 and at the end."""
    size = LAB[ARGS.quick]
    out = fresh("lab_gpu", "pretrain")
    run("train.py", "config/lab_gpu.py", f"--data_dir={lab()}", f"--tokenizer={TOKENIZER}", f"--out_dir={out}",
        *size["flags"], f"--max_iters={size['steps']}", "--forget_every=0", f"--eval_every={size['steps']}",
        "--eval_tokens=4096", "--log_every=5", *device_flags(ARGS.compile))
    return out


def row_lab_gpu():
    out = lab_gpu_pretrain()
    log = runs.read_log(out)
    ok, pretrained = verdict.pretrain(log)
    adapted = fresh("lab_gpu", "adapt")
    t = time.time()
    tokens = LAB[ARGS.quick]["adapt_tokens"]
    run("adapt.py", "config/lab_gpu.py", f"--init_from={out}", f"--out_dir={adapted}", f"--adapt_tokens={tokens}",
        "--eval_every=0", *device_flags(ARGS.compile))
    adapt_ok, adapted_what = verdict.adapt(runs.read_log(adapted))
    return ok and adapt_ok, (f"{pretrained}{'' if ARGS.quick else full_run_minutes(log)}; adapt.py, {tokens:,} "
                             f"tokens in {time.time() - t:.0f} s: {adapted_what}")


def full_run_minutes(log):
    """config/lab_gpu.py's whole pretraining, extrapolated from the steps timed here (not run)."""
    timed = [r["tok_per_s"] for r in log if "tok_per_s" in r][1:]  # the first line holds the compile
    full = runtime.parse_config(bench_train.train.TrainConfig, "train", [os.path.join(ROOT, "config", "lab_gpu.py")])
    minutes = full.max_iters * full.batch_size * full.grad_accum * full.block_size / (sum(timed) / len(timed)) / 60
    return f"; its {full.max_iters} steps extrapolated, not run: {minutes:.1f} min a pretraining (run.sh: 3 a seed)"


def row_finetune():
    result = run("finetune.py", "config/lab.py", f"--data_dir={lab()}", f"--init_from={lab_gpu_pretrain()}",
                 f"--out_dir={fresh('lab_gpu', 'finetune')}", "--max_iters=12", "--batch_size=4", "--eval_every=0",
                 "--n_samples=1", *device_flags("true"), env={"TORCH_LOGS": "recompiles"}, check=False)
    ok, what = verdict.recompiles(result.returncode, result.stderr)
    return ok, f"12 steps x 4 conversations, compile=true: {what}"


def row_sampling():
    result = run("sample.py", f"--init_from={lab_gpu_pretrain()}", "--prompt=The", "--temperature=0.8", "--top_k=50",
                 "--max_new_tokens=16", f"--device={ARGS.device}", f"--seed={SEED}", check=False)
    ok, what = verdict.sampling(result.returncode, result.stdout, result.stderr)
    return ok, f"sample.py --temperature=0.8 --top_k=50: {what}"


ROWS = {  # name: (group, title, check), in the order they run
    "speed": ("speed", "speed", row_speed),
    "compiled_reset": ("speed", "a reset under torch.compile", row_compiled_reset),
    "kernels": ("speed", "attention kernels of a masked score", row_kernels),
    "float16": ("speed", "float16 training refused", row_float16),
    "resume": ("resume", "resume, --deterministic", row_resume),
    "loop_reset": ("resume", "a reset in the compiled loop", row_loop_reset),
    "torchrun": ("resume", "torchrun, one process", row_torchrun),
    "lab_gpu": ("lab", "lab_gpu pretraining + adapt", row_lab_gpu),
    "finetune": ("lab", "finetune under compile", row_finetune),
    "sampling": ("lab", "sampling, temperature 0.8", row_sampling),
}
GROUPS = list(dict.fromkeys(group for group, _, _ in ROWS.values()))


def cpu_seconds():
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def selected_rows(spec):
    """--rows: row and group names, comma-separated -> the rows to run, in ROWS' order."""
    names = [name for name in spec.split(",") if name]
    unknown = [name for name in names if name not in ROWS and name not in GROUPS]
    if unknown:
        runtime.fail(f"--rows: unknown {', '.join(unknown)} (groups: {', '.join(GROUPS)}; rows: {', '.join(ROWS)})")
    return [row for row, (group, _, _) in ROWS.items() if row in names or group in names]


def main():
    global ARGS, OUT
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda", help="cuda (the point of this script) or cpu (to test it)")
    parser.add_argument("--dtype", default=None, help="default: bfloat16 on cuda, float32 on cpu")
    parser.add_argument("--compile", default="auto", help="torch.compile for the speed, resume, torchrun and lab "
                        "runs: auto (on for CUDA), true or false (compiled_reset and finetune always compile)")
    parser.add_argument("--rows", default=",".join(GROUPS), help=f"groups ({', '.join(GROUPS)}) and/or rows "
                        f"({', '.join(ROWS)}), comma-separated (a name that is both means the group); "
                        "default: every group")
    parser.add_argument("--steps", type=int, default=0, help="timed training steps of the speed row "
                        "(0: 30, or 8 with --quick)")
    parser.add_argument("--peak_tflops", type=float, default=0, help="the GPU's dense bf16 peak, for MFU, where "
                        "train.PEAK_FLOPS does not know the GPU")
    parser.add_argument("--quick", action="store_true", help="toy sizes everywhere (to test the script on a CPU)")
    parser.add_argument("--out", default="out/gpu_check", help="scratch folder: the lab, the runs, commands.log")
    ARGS = parser.parse_args()
    # a SIGTERM (a timeout, a job killed) ends the check through run()'s cleanup: no run outlives it
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    rows = selected_rows(ARGS.rows)
    if ARGS.device.startswith("cuda") and not torch.cuda.is_available():
        runtime.fail("no CUDA device here; this script checks a GPU (use --device=cpu --quick to test it)")
    ARGS.dtype = ARGS.dtype or ("bfloat16" if ARGS.device.startswith("cuda") else "float32")
    ARGS.compile = runtime._compile_value(ARGS.compile)
    ARGS.compile = ARGS.device.startswith("cuda") if ARGS.compile == "auto" else ARGS.compile
    ARGS.steps = ARGS.steps or (8 if ARGS.quick else 30)
    if not ARGS.device.startswith("cuda"):
        torch.set_num_threads(1)  # the speed row's clock (CPU seconds) counts one thread's work
        # and every run one thread: on a CPU shared with other jobs, torch's threads wait on each other at every
        # op (a 30-step lab_gpu run here: 34 s with 2 threads, 7 s with 1, at a load of 6 on 2 cores)
        os.environ.setdefault("OMP_NUM_THREADS", "1")
    OUT = os.path.abspath(ARGS.out)
    os.makedirs(OUT, exist_ok=True)
    open(os.path.join(OUT, "commands.log"), "w").close()
    name = torch.cuda.get_device_name(ARGS.device) if ARGS.device.startswith("cuda") else "cpu"
    print(f"device check: {name}, torch {torch.__version__}, Python {sys.version.split()[0]}, dtype {ARGS.dtype}; "
          f"commands and their output: {OUT}/commands.log", flush=True)

    lines, failed, group_seconds = [], False, {}
    for row in rows:
        group, title, check = ROWS[row]
        t, cpu = time.time(), cpu_seconds()
        try:
            ok, what = check()
        except Exception as e:  # one broken row must not hide the others' results
            ok, what = False, f"{type(e).__name__}: {e}"
        seconds = time.time() - t
        wall, used = group_seconds.get(group, (0, 0))
        group_seconds[group] = (wall + seconds, used + cpu_seconds() - cpu)
        failed |= not ok
        lines.append(f"| {group} | {row}: {title} | {'ok' if ok else 'FAILED'} | {what} | {seconds:.0f} s |")
        print(lines[-1], flush=True)
    print("\n| group | row | result | measured | time |\n|---|---|---|---|---|\n" + "\n".join(lines))
    # CPU seconds (this process and the runs it waited for) say what a group costs whatever else shares the machine
    print("time per group: " + ", ".join(f"{group} {wall / 60:.1f} min ({used / 60:.1f} min of CPU time)"
                                          for group, (wall, used) in group_seconds.items()))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
