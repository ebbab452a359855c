"""bench/gpu_check.py's rows can fail: each verdict (bench/gpu_verdicts.py) fed a broken result fails, and fed
a sound one passes. The logs are built in train.py's log.jsonl format; one test makes a real one."""

import os
import signal
import subprocess
import sys
import time

import pytest

from bench import gpu_check  # as a module path of the repository, so that tests/test_imports.py follows it
from conftest import ROOT, pretrain
from evaluation import runs

verdict = gpu_check.verdict  # bench/gpu_verdicts.py, as gpu_check imported it


def train_log(losses, vals=None):
    """log.jsonl records: a val line (step, val_bpb) where vals has the step, then the step's loss line."""
    records = []
    for step, loss in enumerate(losses):
        if vals and step in vals:
            records.append({"step": step, "val_bpb": vals[step]})
        records.append({"step": step, "loss": loss, "lr": 1e-3, "tok_per_s": 1000.0})
    if vals and len(losses) in vals:
        records.append({"step": len(losses), "val_bpb": vals[len(losses)]})
    return records


def falling(n, start=6.0, rate=0.05):
    return [start * (1 - rate) ** step for step in range(n)]


def test_speed_fails_below_the_floor_and_without_a_peak():
    """Fails if verdict.speed stopped comparing with GPU_MFU_FLOOR, CPU_MFU_FLOOR or TOY_TOKENS_PER_S_FLOOR."""
    for device, shape, floor in (("cuda", "gpu_small", verdict.GPU_MFU_FLOOR), ("cpu", "lab", verdict.CPU_MFU_FLOOR)):
        assert verdict.speed(300_000, floor + 0.05, shape, device)[0]
        assert not verdict.speed(300_000, floor - 0.05, shape, device)[0]  # fast in tokens/s, slow for the device
    ok, what = verdict.speed(300_000, None, "gpu_small", "cuda")  # an unknown GPU: MFU cannot be judged
    assert not ok and "--peak_tflops" in what
    # a GPU at --quick's toy shape: judged in tokens/s, whatever its MFU
    assert verdict.speed(2 * verdict.TOY_TOKENS_PER_S_FLOOR, 0.001, "lab", "cuda:0")[0]
    assert not verdict.speed(verdict.TOY_TOKENS_PER_S_FLOOR / 2, 0.001, "lab", "cuda:0")[0]


def test_the_cpu_peak_is_a_matmul_speed_of_this_process():
    """The CPU form's MFU is against cpu_peak_flops: a positive FLOP/s that a training step of the same thread
    can reach a good part of (fails if it were a constant or counted something else, e.g. wall time x threads)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        peak = gpu_check.cpu_peak_flops(n=128, seconds=0.1)
    finally:
        torch.set_num_threads(threads)
    assert 1e8 < peak < 1e12  # 0.1 to 1,000 GFLOP/s: one core of any CPU that runs torch


def test_reset_forward_fails_when_the_compiled_graph_kept_the_old_embedding():
    assert verdict.reset_forward(changed=0.8, mismatch=2e-7)[0]
    # stale: the compiled logits did not move, so they differ from eager by the whole move
    assert not verdict.reset_forward(changed=0.0, mismatch=0.8)[0]
    assert not verdict.reset_forward(changed=0.8, mismatch=0.5)[0]


def test_loop_reset_fails_for_a_reset_that_does_nothing():
    r = 30
    losses = falling(60)
    jumped = {step: loss + (2.0 if step >= r else 0.0) for step, loss in enumerate(losses)}
    assert verdict.loop_reset(jumped, r)[0]
    assert not verdict.loop_reset(dict(enumerate(losses)), r)[0]  # the loss just kept falling
    assert not verdict.loop_reset({step: 6.0 for step in range(60)}, r)[0]  # nothing learned before the reset
    assert not verdict.loop_reset({0: 6.0, 29: 4.0}, r)[0]  # the step after the reset is not in the log


def resume_case(k=20, n=60):
    vals = {s: 3.0 - s / 100 for s in range(0, n + 1, 10)}
    whole = train_log(falling(n), vals)
    return whole, [dict(r) for r in whole], f"pretraining ... | resuming at step {k}\ndone"


def test_resume_passes_an_exact_resume():
    whole, resumed, stdout = resume_case()
    ok, what = verdict.resume(whole, resumed, stdout, 60)
    assert ok and "resumed at step 20" in what and "bit-identical" in what


@pytest.mark.parametrize("stdout", ["out/x is already complete (60 steps)", "note: --resume: no checkpoint in "
                                    "out/x, starting a new run", "pretraining ... | resuming at step 60",
                                    "pretraining ... | resuming at step 0"])
def test_resume_fails_a_run_that_never_resumed_inside_the_run(stdout):
    whole, resumed, _ = resume_case()
    assert not verdict.resume(whole, resumed, stdout, 60)[0]


def test_resume_fails_a_log_with_repeated_steps_or_other_losses():
    whole, resumed, stdout = resume_case()
    assert not verdict.resume(whole, resumed + [dict(resumed[-1])], stdout, 60)[0]  # a step logged twice
    assert not verdict.resume(whole, [r for r in resumed if r["step"] != 25], stdout, 60)[0]  # one lost
    resumed[40]["loss"] += 1e-6
    assert not verdict.resume(whole, resumed, stdout, 60)[0]  # bit for bit is asked for
    assert verdict.resume(whole, resumed, stdout, 60, tolerance=1e-5)[0]


def test_resume_fails_when_rerun_into_a_finished_run(lab_dir, tokenizer_path, tmp_path, capsys):
    """What gpu_check's resume row once did on a rerun with the same --out: resumed a finished run, which says
    "already complete" and leaves the old log to be compared with itself."""
    import train

    out = pretrain(lab_dir, tokenizer_path, tmp_path / "run", "--max_iters=4", "--eval_every=2", "--log_every=1")
    whole = runs.read_log(out)
    capsys.readouterr()
    train.main([f"--data_dir={lab_dir}", f"--tokenizer={tokenizer_path}", f"--out_dir={out}", "--max_iters=4",
                "--eval_every=2", "--log_every=1", "--resume", "--n_layer=2", "--n_head=2", "--n_kv_head=1",
                "--n_embd=32", "--block_size=32", "--batch_size=8", "--lr=3e-3", "--eval_tokens=2048",
                "--progress=false", "--device=cpu"])
    ok, what = verdict.resume(whole, runs.read_log(out), capsys.readouterr().out, 4)
    assert not ok and "already complete" in what


def test_every_run_starts_in_an_empty_folder(tmp_path, monkeypatch):
    """A rerun with the same --out must not meet the last run's checkpoint (the resume row would kill at once and
    resume a finished run). Fails if fresh() kept what the folder held."""
    monkeypatch.setattr(gpu_check, "OUT", str(tmp_path))
    old = tmp_path / "resume" / "killed"
    old.mkdir(parents=True)
    (old / "ckpt.pt").write_bytes(b"the last run's")
    path = gpu_check.fresh("resume", "killed")
    assert path == str(old) and not os.path.exists(path) and os.path.isdir(tmp_path / "resume")


def test_kernels_fail_on_the_math_kernel_or_batched_scores_that_differ():
    assert verdict.kernels(["efficient_attention"], "cuda", "bfloat16", 0.01)[0]
    assert verdict.kernels(["flash_attention_for_cpu"], "cpu", "float32", 1e-6)[0]
    assert not verdict.kernels(["attention_math"], "cuda", "bfloat16", 0.01)[0]
    assert not verdict.kernels(["efficient_attention", "attention_math"], "cuda:0", "bfloat16", 0.01)[0]
    assert not verdict.kernels([], "cuda", "bfloat16", 0.01)[0]
    assert not verdict.kernels(["flash_attention_for_cpu"], "cpu", "float32", 0.1)[0]


def test_pretraining_and_adaptation_fail_when_nothing_is_learned():
    learned = train_log(falling(20), {0: 3.6, 20: 2.5})
    assert verdict.pretrain(learned)[0] and verdict.adapt(learned)[0]
    flat = train_log(falling(20), {0: 3.6, 20: 3.55})
    assert not verdict.pretrain(flat)[0] and not verdict.adapt(flat)[0]
    assert not verdict.pretrain(train_log(falling(20), {20: 2.0}))[0]  # no start to compare with


def test_recompiles_fail_past_one_or_on_a_failed_run():
    once = "[recompiles] Recompiling function forward ... expected 64, actual 128\n"
    assert verdict.recompiles(0, once)[0]
    assert not verdict.recompiles(0, once * 2)[0]
    assert not verdict.recompiles(1, "Traceback ...\nRuntimeError: boom")[0]


@pytest.mark.parametrize("stdout", ["", "\n", "\ufffd\ufffd\n"])
def test_sampling_fails_when_nothing_is_decoded(stdout):
    assert not verdict.sampling(0, stdout, "")[0]


def test_sampling_passes_decoded_text_and_fails_a_crash():
    assert verdict.sampling(0, " cat sat on the mat\n", "")[0]
    assert not verdict.sampling(1, "", "RuntimeError: CUDA error")[0]


def test_float16_must_be_refused_with_one_error_line():
    assert verdict.float16_refused(1, "error: --dtype=float16 is for evaluation only: ...\n")[0]
    assert not verdict.float16_refused(0, "")[0]  # trained in float16
    assert not verdict.float16_refused(1, "Traceback (most recent call last):\n...\nValueError: float16")[0]


def test_rows_select_groups_and_rows_and_refuse_unknown_names():
    assert gpu_check.selected_rows("speed") == [r for r, (g, _, _) in gpu_check.ROWS.items() if g == "speed"]
    assert gpu_check.selected_rows("sampling,kernels") == ["kernels", "sampling"]  # ROWS' order
    # a name that is a group and a row ("speed", "resume") means the group
    assert gpu_check.selected_rows("resume") == ["resume", "loop_reset", "torchrun"]
    with pytest.raises(SystemExit, match="unknown nope"):
        gpu_check.selected_rows("speed,nope")


def test_the_fixture_tokenizer_needs_no_rustbpe(lab_dir, tmp_path):
    """The check runs on an image without rustbpe: its vocabulary is a committed file that loads and
    round-trips the lab's text with rustbpe unimportable."""
    (tmp_path / "rustbpe.py").write_text("raise ImportError('no rustbpe on this image')\n")
    code = ("import sys, tokenizer; from pipeline import documents; tok = tokenizer.Tokenizer.load(sys.argv[1]); "
            "text = next(documents.read_documents(sys.argv[2])); assert tok.decode(tok.encode(text)) == text; "
            "print(tok.n_vocab)")
    result = subprocess.run([sys.executable, "-c", code, gpu_check.TOKENIZER, os.path.join(lab_dir, "text", "en",
                            "val.txt")], cwd=ROOT, capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}"})
    assert result.returncode == 0, result.stderr
    assert int(result.stdout) == 512


def test_stop_kills_the_workers_a_launcher_started_in_sessions_of_their_own():
    """As torchrun starts its workers: a kill of the launcher alone (or of its process group) would leave the
    worker to finish the run, and the resume row would then find it complete. Fails if stop() killed only
    proc.pid."""
    launcher = ("import subprocess, sys, time; worker = subprocess.Popen([sys.executable, '-c', 'import time; "
                "time.sleep(60)'], start_new_session=True, stdout=subprocess.DEVNULL); print(worker.pid, flush=True); "
                "time.sleep(60)")
    proc = gpu_check.start("-c", launcher)
    worker = int(proc.stdout.readline())
    try:
        gpu_check.stop(proc)
        proc.wait()
        assert not alive(worker)
    finally:
        if alive(worker):
            os.kill(worker, signal.SIGKILL)
        proc.communicate()


def alive(pid, wait=5.0):
    """Whether pid still runs after up to `wait` seconds (a killed process is a zombie until reaped, then gone)."""
    deadline = time.time() + wait
    while time.time() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] in "ZX":
                    return False
        except FileNotFoundError:
            return False
        time.sleep(0.05)
    return True
