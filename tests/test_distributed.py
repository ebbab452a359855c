"""torchrun: 2 processes (gloo, CPU) give the same training as 1 process with the same global batch."""

import subprocess
import sys

from conftest import ROOT, TINY_MODEL
from evaluation import runs


def test_two_processes_match_one_with_the_same_global_batch(lab_dir, tokenizer_path, tmp_path):
    args = [f"--data_dir={lab_dir}", f"--tokenizer={tokenizer_path}", *TINY_MODEL, "--max_iters=6", "--eval_every=3",
            "--grad_accum=2", "--forget_every=4", "--log_every=1"]
    one, two = str(tmp_path / "one"), str(tmp_path / "two")
    subprocess.run([sys.executable, "train.py", f"--out_dir={one}", *args], cwd=ROOT, check=True, capture_output=True)
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                             "train.py", f"--out_dir={two}", *args], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    log_one, log_two = runs.read_log(one), runs.read_log(two)
    assert [r["step"] for r in log_one] == [r["step"] for r in log_two]
    for a, b in zip(log_one, log_two):
        for key in ("loss", "val_bpb"):
            if key in a:  # the all-reduce sums in another order: equal up to float rounding
                assert abs(a[key] - b[key]) < 1e-4 * max(1.0, abs(a[key])), (a, b)
    assert [r["step"] for r in log_two if r.get("forget")] == [4]
