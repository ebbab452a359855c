"""
Do two versions of the code compute the same bits? A micro run of every stage on a tiny lab, recorded once
with each version, then compared: every tensor of every checkpoint with torch.equal (model, optimizer state,
RNG state), every other checkpoint value with ==, every log line but its timings, and results.json.

    python bench/same_bits.py record /tmp/before           # on the old code (git stash, git checkout, ...)
    python bench/same_bits.py record /tmp/after            # on the new code
    python bench/same_bits.py compare /tmp/before /tmp/after

A refactor that claims to change nothing must print "identical" for every run. Each record takes a minute or
two on one CPU thread (OMP_NUM_THREADS=1 is set for the stages: threads change float sums). The lab and the
seeds are development ones (seed 11), never the reported seeds.
"""

import argparse
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

SEED = "--seed=11"
MODEL = ["--n_layer=2", "--n_head=2", "--n_kv_head=1", "--n_embd=32", "--block_size=32", "--batch_size=8",
         "--lr=3e-3", "--eval_tokens=2048"]
QUIET = ["--progress=false", "--device=cpu", SEED]
ADAPT = ["--max_iters=6", "--eval_every=3", "--n_new_tokens=32", "--batch_size=4", "--grad_accum=2", "--lr=1e-2",
         "--eval_bytes=1024", *QUIET]
FINETUNE = ["--max_iters=4", "--eval_every=2", "--val_conversations=8", "--n_samples=1", "--max_new_tokens=8",
            "--lr=1e-3", *QUIET]


def runs(lab, tok, r):
    """(name, script, arguments) of every run, in an order where each run's inputs exist."""
    train = [f"--data_dir={lab}", f"--tokenizer={tok}", *MODEL, "--max_iters=12", "--eval_every=6", "--log_every=1",
             "--grad_accum=2", *QUIET]
    return [
        ("train_standard", "train.py", [*train, "--forget_every=0"]),
        ("train_forgetting", "train.py", [*train, "--forget_every=4"]),
        ("train_episode_lr", "train.py", [*train, "--forget_every=4", "--emb_episode_lr"]),
        ("adapt_expand", "adapt.py", [f"--init_from={r}/train_forgetting", *ADAPT]),
        ("adapt_relearn", "adapt.py", [f"--init_from={r}/train_forgetting", "--mode=relearn", *ADAPT]),
        ("adapt_keephead", "adapt.py", [f"--init_from={r}/train_standard", "--head=keep", *ADAPT]),
        ("finetune_all", "finetune.py", [f"--init_from={r}/adapt_expand", f"--data_dir={lab}", "--batch_size=4",
                                         *FINETUNE]),
        # 4 conversations a step as 2 micro-batches of 2 (recorded before grad_accum meant the same in every
        # stage as --batch_size=4 --grad_accum=2: then batch_size counted a step's conversations)
        ("finetune_accum", "finetune.py", [f"--init_from={r}/train_forgetting", f"--data_dir={lab}",
                                           "--batch_size=2", "--grad_accum=2", *FINETUNE]),
        ("finetune_body", "finetune.py", [f"--init_from={r}/train_standard", f"--data_dir={lab}", "--batch_size=4",
                                          "--train_params=body", *FINETUNE]),
        ("splice", "splice.py", [f"--body_from={r}/finetune_body", f"--embeddings_from={r}/adapt_keephead"]),
        ("evaluate", "evaluate.py", [f"--data_dir={lab}", "--models", f"standard={r}/train_standard",
                                     f"forgetting={r}/train_forgetting", f"adapted={r}/adapt_expand",
                                     f"finetuned={r}/finetune_all", f"spliced={r}/splice", "--max_examples=2",
                                     "--bpb_bytes=512", "--sim_bytes=1024", "--gen_tokens=4", "--progress=false",
                                     "--device=cpu", SEED, f"--out={r}/evaluate/results.json"]),
    ]


def python(*args):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}
    result = subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"python {' '.join(args)} failed:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}")


def record(out):
    from pipeline import documents

    if os.path.exists(out):
        sys.exit(f"{out} exists: record into a new folder")
    lab, tok, r = os.path.join(out, "lab"), os.path.join(out, "tok.tiktoken"), os.path.join(out, "runs")
    python("data/lab/prepare.py", "--out", lab, "--seed", "11", "--mb_per_lang", "0.05", "--examples_per_task", "40",
           "--instructions", "300")
    texts = documents.language_files(lab, documents.group_languages(lab, "pretraining"), "train").values()
    python("tokenizer.py", "train", "--input", *texts, "--vocab_size", "300", "--out", tok)
    for name, script, args in runs(lab, tok, r):
        print(f"{name}: python {script} ...", flush=True)
        if script == "evaluate.py":
            python(script, *args)
        else:
            python(script, f"--out_dir={r}/{name}", *args)


TIMINGS = {"tok_per_s", "mfu", "seconds"}


def differences(a, b, where, tops):
    """Where the nested values a and b differ: tensors and arrays bit for bit, timings skipped, and each
    recording's own folder (in paths) read as the same."""
    import numpy as np
    import torch

    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        same = isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.dtype == b.dtype and np.array_equal(a, b)
        return [] if same else [where]
    if isinstance(a, str) and isinstance(b, str):
        a, b = a.replace(tops[0], "<top>"), b.replace(tops[1], "<top>")
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        same = (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.dtype == b.dtype
                and a.shape == b.shape and torch.equal(a, b))
        return [] if same else [where]
    if isinstance(a, dict) and isinstance(b, dict):
        found = [f"{where}.{k}: only in the {'first' if k in a else 'second'}" for k in set(a) ^ set(b)]
        for k in a.keys() & b.keys():
            if k not in TIMINGS:
                found += differences(a[k], b[k], f"{where}.{k}", tops)
        return found
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)) and len(a) == len(b):
        return [d for k, (x, y) in enumerate(zip(a, b)) for d in differences(x, y, f"{where}[{k}]", tops)]
    return [] if a == b else [f"{where}: {str(a)[:60]} != {str(b)[:60]}"]


def compare(first, second):
    import torch

    names = sorted(os.listdir(os.path.join(first, "runs")))
    tops = (os.path.abspath(first), os.path.abspath(second))
    failed = False
    for name in names:
        found = []
        for file in ("ckpt.pt", "log.jsonl", "results.json", "tokenizer.tiktoken"):
            a, b = (os.path.join(top, "runs", name, file) for top in (first, second))
            if not os.path.exists(a):
                continue
            if not os.path.exists(b):
                found.append(f"{file} missing")
            elif file == "ckpt.pt":
                found += differences(torch.load(a, weights_only=False), torch.load(b, weights_only=False), file,
                                     tops)
            elif file == "log.jsonl":
                lines = [[json.loads(line) for line in open(path)] for path in (a, b)]
                found += differences(*lines, file, tops)
            elif file == "results.json":
                found += differences(*[json.load(open(path)) for path in (a, b)], file, tops)
            elif open(a, "rb").read() != open(b, "rb").read():
                found.append(f"{file} differs")
        failed = failed or bool(found)
        print(f"{name}: " + ("identical" if not found else "DIFFERENT\n  " + "\n  ".join(found[:20])))
    return not failed


def main():
    parser = argparse.ArgumentParser(description=__doc__.strip().split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("record", help="micro runs of every stage into a new folder").add_argument("out")
    both = sub.add_parser("compare", help="compare two recorded folders bit for bit")
    both.add_argument("first")
    both.add_argument("second")
    args = parser.parse_args()
    if args.command == "record":
        record(os.path.abspath(args.out))
    else:
        sys.exit(0 if compare(args.first, args.second) else 1)


if __name__ == "__main__":
    main()
