"""
The verdicts of bench/gpu_check.py: each row's pass/fail as a small pure function over what its run left
behind (log records, printed output, measured numbers), with the threshold it applies stated beside it.
Kept apart from the runs so that tests/test_gpu_check.py can feed each one a broken result (a run that
never resumes, a sampler that prints nothing, a reset that changes nothing, a speed below the floor) in
milliseconds. Every function returns (ok, what was measured, in words).

The GPU thresholds are reasoned from the hardware's peak and published numbers, not measured here: no GPU
has run this check yet. The CPU ones were measured on the CPU form (`--device=cpu --quick`) on the
development machine (2 cores shared with other jobs) and set with a wide margin below what it showed.
"""

import re

# ---- speed -------------------------------------------------------------------------------------------

# The floor a first GPU run must meet at gpu_small's shape (142M parameters, 32 x 1,024 tokens a micro-batch),
# bf16 autocast + torch.compile + fused AdamW: 25% of the dense bf16 peak (train.PEAK_FLOPS). Published runs
# of GPT-2 small (124M) reach about 40%: llm.c's replication trained 10B tokens in 45 minutes on 8 H100s,
# ~460k tokens/s a GPU at ~0.86 GFLOP a token; nanoGPT's PyTorch trainer, the recipe here, is slower than
# llm.c's hand-written kernels. 25% leaves room for that and for our GQA while still catching what breaks a
# run's speed: no compile, attention on the math kernel, fp32 matmuls, a CPU-GPU sync every step (each of
# these costs 2x or more at this size).
# On an H100 SXM (989 TFLOP/s) at ~0.82 GFLOP a token (model.flops_per_token) it is ~300k tokens/s.
GPU_MFU_FLOOR = 0.25
# The CPU form's floor, at bench_train's "lab" shape (1.9M parameters, 32 x 128 tokens), float32, eager, one
# thread: MFU against that CPU's own peak, measured in the same process as the speed of a 512 x 512 float32
# matmul (cpu_peak_flops in bench/gpu_check.py), both timed in CPU seconds. A ratio of two speeds of the same
# core does not depend on how fast the machine is or how many jobs share it, which an absolute tokens/s floor
# would. Measured on the development machine (2 AMD EPYC cores shared with other jobs, load 5; six runs):
# 77-97 GFLOP/s a matmul, 5,400-5,750 tokens/s = 50-53 GFLOP/s, MFU 52-69%. Floor: 20%, 2.6x below the lowest,
# so load on a shared machine passes and a slowdown of 3.5x or more (a copy or a sync per op, attention on a slow
# path) fails.
CPU_MFU_FLOOR = 0.20
# A GPU given --quick runs the same toy shape, which launches kernels far too small to fill it (MFU ~1%): there
# the floor is in tokens/s, a fifth of what one CPU thread does, so it only catches a GPU that is not used.
TOY_TOKENS_PER_S_FLOOR = 1000


def speed(tok_s, mfu, shape, device):
    """tokens/s and MFU of the timed training steps against the floor for this device and shape; mfu is against
    the GPU's dense bf16 peak on CUDA, against the measured one-thread matmul speed on a CPU."""
    if device.startswith("cuda") and shape != "gpu_small":
        return tok_s >= TOY_TOKENS_PER_S_FLOOR, f"{tok_s:,.0f} tokens/s (floor {TOY_TOKENS_PER_S_FLOOR:,})"
    floor = GPU_MFU_FLOOR if device.startswith("cuda") else CPU_MFU_FLOOR
    if mfu is None:
        return False, (f"{tok_s:,.0f} tokens/s, but no peak FLOP/s is known for this GPU, so MFU (floor "
                       f"{floor:.0%}) cannot be judged: pass --peak_tflops (its dense bf16 peak)")
    return mfu >= floor, f"{tok_s:,.0f} tokens/s, MFU {mfu:.1%} (floor {floor:.0%})"


# ---- a reset under torch.compile ---------------------------------------------------------------------

# A compiled graph that kept a stale copy of the embedding gives the same logits after the reset as before
# it: then `changed` is ~0 and the compiled-vs-eager mismatch is as large as the change. Read right, the
# mismatch is rounding (fp32: ~1e-6 of the change), far below 1% of the change.
FORWARD_MISMATCH_OF_CHANGE = 0.01


def reset_forward(changed, mismatch):
    """changed: max |logits after - before| of the compiled model around a reset; mismatch: max |compiled -
    eager| after it."""
    ok = changed > 0 and mismatch <= FORWARD_MISMATCH_OF_CHANGE * changed
    return ok, (f"logits moved by {changed:.3g} at the reset; compiled vs eager after it {mismatch:.2g} "
                f"(at most {FORWARD_MISMATCH_OF_CHANGE:.0%} of the move)")


# In train.py's loop a reset throws away the embeddings the body learned to read, so the loss right after
# it goes back up by a large part of what the steps before it had gained; a reset the compiled loop never
# saw jumps by ~0 (the loss keeps falling). Measured with the resume rows' runs on the development machine's
# CPU (lab world 11, training seeds 1-5 and 11): the --quick toy (reset at 16) 50-71% of the gain, compiled
# and eager alike; config/lab.py's model (reset at 30, the GPU's run, here eager) 46-149%. Threshold: 15%,
# a third of the smallest.
LOOP_JUMP_OF_GAIN = 0.15


def loop_reset(losses, reset_step):
    """losses: {step: training loss} of a run with a reset at reset_step (the first step taken with the new
    embeddings)."""
    before, after, first = losses.get(reset_step - 1), losses.get(reset_step), losses.get(0)
    if None in (before, after, first):
        return False, f"the log lacks the loss at step 0, {reset_step - 1} or {reset_step}"
    gain, jump = first - before, after - before
    if gain <= 0:
        return False, f"the loss did not fall before the reset ({first:.3f} at step 0, {before:.3f} before it)"
    return jump >= LOOP_JUMP_OF_GAIN * gain, (
        f"loss {first:.2f} at step 0, {before:.2f} before the reset at step {reset_step}, {after:.2f} after: "
        f"the jump is {jump / gain:.0%} of the gain (at least {LOOP_JUMP_OF_GAIN:.0%})")


# ---- resume ------------------------------------------------------------------------------------------

def resumed_at(stdout):
    """The k of the stage's "resuming at step k" line, or None (a new run, or "already complete")."""
    found = re.search(r"resuming at step (\d+)", stdout)
    return int(found.group(1)) if found else None


def resume(whole, resumed, stdout, max_iters, tolerance=0.0):
    """whole, resumed: the log records of an uninterrupted run and of the same run killed and resumed;
    stdout: what the resuming process printed. The resume must start strictly inside the run, the log must
    read as one run (every step once), and every loss and val_bpb must match within `tolerance` (0:
    bit for bit, what --deterministic promises on one device)."""
    k = resumed_at(stdout)
    if k is None:
        said = re.search(r"already complete[^\n]*|starting a new run[^\n]*", stdout)
        return False, f"never resumed ({said.group(0) if said else 'no resuming at step k line'})"
    if not 0 < k < max_iters:
        return False, f"resumed at step {k}, not inside the run (0 < k < {max_iters}): nothing was left to redo"
    for key in ("loss", "val_bpb"):
        a, b = [r["step"] for r in whole if key in r], [r["step"] for r in resumed if key in r]
        if a != b:  # a step logged twice (the log not cut back at the resume) or lost
            return False, (f"the resumed log's {key} steps differ from the uninterrupted run's: "
                           f"{b[:12]}... vs {a[:12]}...")
    values = lambda log: {(key, r["step"]): r[key] for r in log for key in ("loss", "val_bpb") if key in r}
    a, b = values(whole), values(resumed)
    if not any(key == "loss" for key, _ in a):
        return False, "the logs hold no loss"
    diff = max(abs(a[at] - b[at]) for at in a)
    exact = " (bit-identical)" if diff == 0 else ""
    return diff <= tolerance, (f"killed, resumed at step {k} of {max_iters}: max difference over {len(a)} "
                               f"losses and val bpb {diff:.3g}{exact} (allowed {tolerance:.3g})")


# ---- evaluation's attention kernels ------------------------------------------------------------------

# the fused kernels torch's profiler names (aten::_scaled_dot_product_<name>) per device type; "attention_math"
# is the unfused fallback, which materialises a full score matrix per head
FUSED_KERNELS = {"cuda": {"flash_attention", "efficient_attention", "cudnn_attention"},
                 "cpu": {"flash_attention_for_cpu"}}
# batched vs one at a time, summed log-likelihood of a choice: fp32 rounding, or bf16's 8-bit mantissa
# over a few tokens
SCORE_TOLERANCE = {"float32": 1e-3, "bfloat16": 5e-2, "float16": 1e-2}


def kernels(names, device, dtype, batched_vs_alone):
    """names: the attention kernels a masked batched score ran; batched_vs_alone: max |difference| in nats
    between its scores and the same examples scored one at a time."""
    fused = sorted(set(names) & FUSED_KERNELS.get(device.split(":")[0], set()))
    tolerance = SCORE_TOLERANCE[dtype]
    ok = bool(fused) and "attention_math" not in names and batched_vs_alone <= tolerance
    return ok, (f"{dtype}: attention ran {', '.join(names) or 'no kernel seen'} (a fused one needed, no math); "
                f"batched vs alone {batched_vs_alone:.2g} nats (at most {tolerance:g})")


# ---- the larger lab: pretraining, adaptation, finetuning, sampling ------------------------------------

# Measured on the CPU form (--quick: lab_gpu's config with a 2-layer, 64-wide body, 30 steps of 4 x 256 tokens,
# on the check's lab, world 11, training seeds 1, 2, 3 and 11): val bits per byte from 3.69-3.70 (a random
# model: log2 of the 512 ids over ~2.4 bytes a token) to 3.01-3.05, 17-18% lower. The GPU runs lab_gpu's own
# model for 200 steps and falls further. Floor: 10%, which a run that learns nothing (a frozen optimizer, a
# loader serving padding) cannot reach: its val bits per byte stay where they started.
PRETRAIN_FALL = 0.10
# adapt.py's own start (the merged vocabulary, new rows at their mean init, a fresh head) against its end: a
# fresh head alone learns the adapting languages' unigrams in a few steps. Measured on the CPU form with the
# same seeds (16 steps of 8,192 tokens in all): 3.44-3.45 -> 2.67-2.78, 19-23% lower. Floor: 10%.
ADAPT_FALL = 0.10


def _val_fall(log, floor, what):
    vals = [(r["step"], r["val_bpb"]) for r in log if "val_bpb" in r]
    if len(vals) < 2 or vals[0][0] != 0:
        return False, f"{what}: the log needs val bits per byte at step 0 and at the end, has {vals}"
    (_, start), (end_step, end) = vals[0], vals[-1]
    return end <= (1 - floor) * start, (f"{what}: val bits per byte {start:.3f} at step 0 -> {end:.3f} at step "
                                        f"{end_step} ({(start - end) / start:.0%} lower; at least {floor:.0%})")


def pretrain(log):
    """log: train.py's log records of the larger lab's pretraining."""
    return _val_fall(log, PRETRAIN_FALL, "pretraining")


def adapt(log):
    """log: adapt.py's log records (step 0 holds the adaptation's start, the last its end)."""
    return _val_fall(log, ADAPT_FALL, "adaptation")


# finetune.py pads conversations to multiples of 64 tokens; torch.compile sees the first length, then (on a
# second length) marks the sequence dimension dynamic: one recompile, then none
MAX_RECOMPILES = 1


def recompiles(returncode, stderr):
    """finetune.py's run under TORCH_LOGS=recompiles: its exit status and stderr."""
    if returncode != 0:
        return False, f"finetune.py failed: {stderr.strip().splitlines()[-1:]}"
    n = stderr.count("Recompiling function")
    lengths = sorted({int(x) for pair in re.findall(r"expected (\d+), actual (\d+)", stderr) for x in pair})
    return n <= MAX_RECOMPILES, (f"{n} recompile(s)" + (f" (lengths {lengths})" if lengths else "")
                                 + f", at most {MAX_RECOMPILES} (static, then dynamic length)")


def sampling(returncode, stdout, stderr):
    """sample.py's exit status and output: text decoded from the sampled ids, not empty, not only the
    replacement character that undecodable bytes turn into."""
    if returncode != 0:
        return False, f"sample.py failed: {stderr.strip().splitlines()[-1:]}"
    text = stdout.strip()
    ok = bool(text.replace("\ufffd", "").strip())
    return ok, f"{len(text)} characters: {text[:50]!r}" if ok else f"no text decoded (printed {stdout[:40]!r})"


def float16_refused(returncode, stderr):
    """train.py --dtype=float16: it must stop with one `error:` line naming float16, not a traceback."""
    last = stderr.strip().splitlines()[-1] if stderr.strip() else ""
    ok = returncode != 0 and last.startswith("error:") and "float16" in last and "Traceback" not in stderr
    return ok, f"exit {returncode}: {last[:100]}"
