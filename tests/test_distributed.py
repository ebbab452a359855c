"""torchrun: 2 processes (gloo, CPU) give the same training as 1 process with the same global batch; on several
nodes each node's first process makes its node's token files."""

import shutil
import subprocess
import sys

import pytest

import train
from conftest import ROOT, TINY_MODEL
from evaluation import runs
from pipeline import documents, runtime


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


@pytest.mark.parametrize("local_rank", [0, 1])
def test_each_nodes_first_process_makes_its_nodes_token_files(local_rank, lab_dir, tokenizer_path, tmp_path,
                                                              monkeypatch):
    """Rank 1 of 2 on a second node that has its own copy of the data folder: its first process (LOCAL_RANK=0)
    tokenizes between the two barriers, after rank 0 and before any process reads; the node's other processes
    only wait. Fails if only global rank 0 tokenizes before the barrier (every process of the second node would
    then find no files after it and tokenize them all at once)."""
    data = shutil.copytree(lab_dir, tmp_path / "node2_data", ignore=shutil.ignore_patterns("*.bin"))
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", str(local_rank))
    monkeypatch.setattr(runtime, "init_distributed", lambda device: (1, 2, "cpu"))
    seen = []  # at each barrier: how many token files this node has; "read": the batches are set up
    monkeypatch.setattr(train.dist, "barrier", lambda: seen.append(len(list(data.rglob("*.bin")))))
    batches = train.common.Batches
    monkeypatch.setattr(train.common, "Batches", lambda *args: (seen.append("read"), batches(*args))[1])
    for name in ("broadcast_object_list", "all_reduce", "destroy_process_group"):
        monkeypatch.setattr(train.dist, name, lambda *args, **kwargs: None)
    monkeypatch.setattr(train, "DistributedDataParallel", lambda model, device_ids=None: model)
    train.main([f"--data_dir={data}", f"--tokenizer={tokenizer_path}", f"--out_dir={tmp_path / 'out'}", *TINY_MODEL,
                "--max_iters=1", "--eval_every=0", "--grad_accum=2"])
    n_files = 2 * len(documents.group_languages(str(data), "pretraining"))  # train and val of each language
    assert seen[:3] == ([0, n_files, "read"] if local_rank == 0 else [0, 0, "read"])


def test_resuming_on_a_node_that_cannot_see_the_checkpoint_says_out_dir_must_be_shared(tokenizer_path, tmp_path,
                                                                                       monkeypatch):
    """Rank 0 resumes, rank 1 (another node) has no ckpt.pt in its out_dir: a clear error, not a traceback."""
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setattr(runtime, "init_distributed", lambda device: (1, 2, "cpu"))
    monkeypatch.setattr(train.dist, "broadcast_object_list", lambda box: box.__setitem__(0, True))  # rank 0 resumes
    with pytest.raises(SystemExit, match="filesystem that every node shares"):
        train.main([f"--tokenizer={tokenizer_path}", f"--out_dir={tmp_path}", *TINY_MODEL, "--grad_accum=2",
                    "--resume"])
