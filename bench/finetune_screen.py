"""
Screen a finetuning protocol on a development seed: what English instruction finetuning does to every
language group's bits per byte (the adapted models' and the Baseline's, before and after, the same bytes
and the same instrument, evaluate.py) and to the Baseline's English task accuracy (plain prompts before
and after, ChatML after beside). docs/method.md ("Finetuning") records what it measured.

    python bench/finetune_screen.py --seed=21 --name=default                  # config/lab.py's finetuning
    python bench/finetune_screen.py --seed=21 --name=lr3e-4 -- --lr=3e-4 --epochs=2
    python bench/finetune_screen.py --seed=21 --name=keep+body --head=keep -- --train_params=body
    python bench/finetune_screen.py --seed=21 --name=default --models Baseline BA AFA Control

Everything after `--` goes to finetune.py for every model. The first run of a seed makes the seed's lab
world (data/lab/prepare.py --seed), its tokenizer, the pretrained models and their adaptations at the largest
budget of run.sh, in --out/seed<N>/ (about 15 minutes on one core); later runs reuse them. Each protocol's
finetunings and evaluations go to --out/seed<N>/<name>/; a rerun skips what is finished.

Development seeds only (1..99): run.sh reports seeds 1337 and up, which are never screened (docs/method.md).
Judge a protocol on the Baseline, the Control and BA, never on AFA against BA: AFA is here only to check
that a bits-per-byte limit holds for it too.

Prints one table per model: bits per byte per language group before (pretrained or adapted) and after
finetuning, and the rise; then the val assistant loss, the finetuning's seconds (wall clock, this
machine's load included), and the Baseline's English gain per task (after minus before, paired by item,
95% t-interval over items; the prior-corrected `correct_calibrated` where evaluate.py records it, else acc).
"""

import argparse
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from evaluation.stats import t_interval  # noqa: E402
from pipeline import documents  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUDGET = 500_000  # run.sh's largest adaptation budget, the one BA, AFA and the Control continue from
MODELS = {"Baseline": "standard", "BA": "standard", "AFA": "forgetting", "Control": "none"}
PRETRAIN_ARGS = {"standard": ["--forget_every=0"], "forgetting": [], "none": ["--max_iters=0"]}


def run(args, log):
    """Run a stage (python args, from the repository root) unless log says it finished; its output appended to
    log, its seconds returned (None when skipped). A failure stops the screen."""
    if os.path.isfile(log) and any(line.startswith("done") or "already complete" in line
                                   for line in open(log, errors="replace")):
        return None
    t0 = time.time()
    with open(log, "a") as f:
        done = subprocess.run([sys.executable, *args], cwd=REPO, stdout=f, stderr=subprocess.STDOUT)
    if done.returncode:
        sys.exit(f"error: {args[0]} failed; the end of {log}:\n" + open(log, errors="replace").read()[-2000:])
    return time.time() - t0


def prepare(seed_dir, seed, config, models, head):
    """The seed's lab world, tokenizer, pretrained models and adaptations (each made once); returns the lab."""
    lab, tok = f"{seed_dir}/lab", f"{seed_dir}/lab.tiktoken"
    if not os.path.isfile(os.path.join(REPO, lab, "manifest.json")):
        run(["data/lab/prepare.py", "--seed", str(seed), "--out", lab], lab + ".log")
    if not os.path.isfile(os.path.join(REPO, tok)):
        paths = documents.language_files(os.path.join(REPO, lab), documents.group_languages(os.path.join(REPO, lab),
                                                                                          "pretraining"), "train")
        paths = [os.path.relpath(p, REPO) for p in paths.values()]
        run(["tokenizer.py", "train", "--input", *paths, "--vocab_size", "2048", "--out", tok], tok + ".log")
    common = [config, f"--seed={seed}", "--resume", "--progress=false"]
    for kind in dict.fromkeys(MODELS[m] for m in models):
        pretrained = f"{seed_dir}/pretrain_{kind}"
        run(["train.py", *common, f"--data_dir={lab}", f"--tokenizer={tok}", f"--out_dir={pretrained}",
             *PRETRAIN_ARGS[kind]], pretrained + ".log")
        if any(MODELS[m] == kind for m in models if m != "Baseline"):
            adapted = f"{seed_dir}/adapt_{kind}_{head}"
            run(["adapt.py", *common, f"--init_from={pretrained}", f"--out_dir={adapted}", f"--adapt_tokens={BUDGET}",
                 "--mode=expand", f"--head={head}"], adapted + ".log")
    return lab


def before_dir(seed_dir, model, head):
    kind = MODELS[model]
    return f"{seed_dir}/pretrain_{kind}" if model == "Baseline" else f"{seed_dir}/adapt_{kind}_{head}"


def evaluate(config, lab, name, model_dir, out, extra):
    """evaluate.py of one model into out, read back (run once: an existing out is read as it is)."""
    if not os.path.isfile(os.path.join(REPO, out)):
        run(["evaluate.py", config, f"--data_dir={lab}", "--models", f"{name}={model_dir}", f"--out={out}",
             "--progress=false", *extra], out + ".log")
    with open(os.path.join(REPO, out)) as f:
        return json.load(f)


def record(results, task, lang="en"):
    """The per-item record of a task: prior-corrected where evaluate.py writes it, else acc."""
    entry = next(iter(results["details"].values()))["tasks"][task][lang]
    key = "correct_calibrated" if "correct_calibrated" in entry else "correct"
    return key, entry[key]


def paired_gain(before, after):
    """after - before over the items both scored: (n, mean, 95% interval or None)."""
    n, mean, interval, _ = t_interval([int(a) - int(b) for b, a in zip(before, after) if "-" not in (a, b)])
    return n, mean, interval


def accuracy(correct):
    scored = [c for c in correct if c != "-"]
    return sum(c == "1" for c in scored) / len(scored)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].strip(),
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="Everything after -- is passed to finetune.py.")
    parser.add_argument("--seed", type=int, required=True, help="a development seed, 1..99 (lab world and training)")
    parser.add_argument("--name", required=True, help="the protocol's name: its folder in the seed's folder")
    parser.add_argument("--head", default="fresh", choices=("fresh", "keep"),
                        help="the adaptation the finetune starts from (adapt.py --head)")
    parser.add_argument("--models", nargs="+", default=["Baseline", "BA", "Control"], choices=list(MODELS))
    parser.add_argument("--config", default="config/lab.py", help="the config file every stage reads")
    parser.add_argument("--dir", default="", help="the seed's folder; default out/finetune_screen/seed<N>")
    argv = sys.argv[1:] if argv is None else argv
    split = argv.index("--") if "--" in argv else len(argv)
    args, finetune_args = parser.parse_args(argv[:split]), argv[split + 1:]
    if not 1 <= args.seed <= 99:
        parser.error("--seed must be a development seed, 1..99: the reported seeds (1337 and up) are never screened")
    # paths relative to the repository root, the same strings on every rerun (a resumed stage compares its config)
    seed_dir = os.path.relpath(os.path.abspath(args.dir or f"out/finetune_screen/seed{args.seed}"), REPO)
    config = os.path.relpath(os.path.abspath(args.config), REPO)
    lab = prepare(seed_dir, args.seed, config, args.models, args.head)
    tasks = [t for t, v in documents.read_manifest(os.path.join(REPO, lab)).get("tasks", {}).items()
             if v.get("kind") == "mc"]
    bpb_only = ["--self_sim=false", "--benchmarks=false"]
    english = ["--bpb=false", "--self_sim=false", "--langs", "en", "--tasks", *tasks]
    protocol_dir = f"{seed_dir}/{args.name}"
    os.makedirs(os.path.join(REPO, protocol_dir), exist_ok=True)
    with open(os.path.join(REPO, protocol_dir, "protocol.json"), "w") as f:
        json.dump({"head": args.head, "finetune_args": finetune_args, "config": config}, f, indent=1)

    rows, english_rows = {}, {}
    for model in args.models:
        before_model = before_dir(seed_dir, model, args.head)
        after_model = f"{protocol_dir}/finetune_{model}"
        seconds = run(["finetune.py", config, f"--seed={args.seed}", f"--data_dir={lab}",
                       f"--init_from={before_model}", f"--out_dir={after_model}", "--resume", "--progress=false",
                       *finetune_args], after_model + ".log")
        if seconds is not None:  # kept beside the run: a rerun that skips the finetuning still reports its time
            with open(os.path.join(REPO, after_model, "seconds.txt"), "w") as f:
                f.write(f"{seconds:.1f}\n")
        seconds = float(open(os.path.join(REPO, after_model, "seconds.txt")).read())
        before = evaluate(config, lab, model, before_model, f"{before_model}.bpb.json", bpb_only)
        after = evaluate(config, lab, model, after_model, f"{after_model}.bpb.json", bpb_only)
        log = [json.loads(line) for line in open(os.path.join(REPO, after_model, "log.jsonl"))]
        val = [r["val_loss"] for r in log if "val_loss" in r]
        rows[model] = {"bpb_before": before["metrics"]["bpb"][model]["groups"],
                       "bpb_after": after["metrics"]["bpb"][model]["groups"],
                       "val_loss": [val[0], val[-1]], "seconds": seconds}
        if model == "Baseline" and tasks:
            plain_before = evaluate(config, lab, model, before_model, f"{before_model}.en_plain.json",
                                    english + ["--chat=false"])
            plain_after, chat_after = (evaluate(config, lab, model, after_model, f"{after_model}.en_{form}.json",
                                                english + [f"--chat={chat}"])
                                       for form, chat in (("plain", "false"), ("chatml", "true")))
            for task in tasks:
                (key, b), (_, a), (_, c) = (record(r, task) for r in (plain_before, plain_after, chat_after))
                n, mean, interval = paired_gain(b, a)
                english_rows[task] = {"measure": key, "n": n, "before": accuracy(b), "after_plain": accuracy(a),
                                      "after_chatml": accuracy(c), "gain": mean, "interval": interval}

    groups = [g for g in next(iter(rows.values()))["bpb_before"] if g != "overall"]
    print(f"\n## {args.name}: seed {args.seed}, adaptation --head={args.head}, finetune.py {' '.join(finetune_args)}\n")
    print("| model | " + " | ".join(f"{g} bpb before -> after" for g in groups) + " | val loss | seconds |")
    print("|---|" + "---:|" * (len(groups) + 2))
    for model, row in rows.items():
        b, a = row["bpb_before"], row["bpb_after"]
        cells = ["-" if b[g] is None else f"{b[g]:.3f} -> {a[g]:.3f} ({a[g] - b[g]:+.3f})" for g in groups]
        print(f"| {model} | " + " | ".join(cells) + f" | {row['val_loss'][0]:.3f} -> {row['val_loss'][1]:.3f} | "
              f"{row['seconds']:.0f} |")
    if english_rows:
        print("\nthe Baseline's English: before (plain prompts), after (plain; ChatML beside); "
              "gain = after plain - before, paired by item, 95% t-interval\n")
        print("| task | measure | before | after | after, ChatML | gain |\n|---|---|---:|---:|---:|---:|")
        for task, r in english_rows.items():
            span = f" [{r['interval'][0]:+.3f}, {r['interval'][1]:+.3f}]" if r["interval"] else ""
            print(f"| {task} | {r['measure']} (n={r['n']}) | {r['before']:.3f} | {r['after_plain']:.3f} | "
                  f"{r['after_chatml']:.3f} | {r['gain']:+.3f}{span} |")
    with open(os.path.join(REPO, protocol_dir, "screen.json"), "w") as f:
        json.dump({"seed": args.seed, "head": args.head, "finetune_args": finetune_args, "models": rows,
                   "english": english_rows}, f, indent=1)


if __name__ == "__main__":
    main()
