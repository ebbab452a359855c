"""
Screen one design of the lab (data/lab/prepare.py's cross-lingual channels) on a development seed: make
the lab, pretrain the Baseline (standard pretraining, no forgetting), probe it, and with --gates measure
the positive controls. A development tool (data/lab/README.md, "Cross-lingual channels", has the screen it
made); report.py gates the real runs.

    python bench/lab_screen.py --seed 11 --out out/screen/x [--gates] [--chat] [--train=--n_embd=64]
        -- --parallel 0.05 ...

Everything after `--` goes to data/lab/prepare.py. Seeds 1..99 only: the reported runs use 1337 and up, and
the lab is never tuned on them (docs/method.md, "Statistics"). A stage whose output exists is not run again.

  probe  retrieval@1 of English's lab_read passages and their translations in the Baseline's other
         pretraining languages, per layer (evaluation/probe.py; chance 1/150)
  (i)    the Baseline's English gain from English instruction finetuning
  (ii)   its zero-shot gain in its other pretraining languages (their mean per item)
  (iii)  the ceiling for (ii): the Baseline finetuned on the same instructions translated into those
         languages (instructions/translated), scored in them
Each gain is finetuned minus pretrained acc_calibrated (the choice that the context makes likelier than it
is alone), with plain prompts before and after (--chat adds ChatML beside), paired by item, with its 95%
t-interval over the items. Below the gains, the Baseline's English acc_calibrated beside its answer prior.
"""

import argparse
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from evaluation.results import item_means  # noqa: E402
from evaluation.stats import t_interval  # noqa: E402

TASKS = ["lab_copa", "lab_nli", "lab_cloze", "lab_read"]
ONE_THREAD = {**os.environ, "OMP_NUM_THREADS": "1"}  # two 1-thread runs beat one 2-thread run at this size


def run(log, *args):
    """Run a repository script with this Python, its output appended to log; stop here if it fails."""
    with open(log, "a") as f:
        if subprocess.run([sys.executable, *map(str, args)], cwd=ROOT, stdout=f, stderr=subprocess.STDOUT,
                          env=ONE_THREAD).returncode:
            sys.exit(f"error: {' '.join(map(str, args[:1]))} failed; see {log}")


def gains(results, after, before, langs, task):
    """Per item: after's minus before's correct_calibrated, averaged over langs -> t_interval's (n, mean, ci, p)."""
    return t_interval(item_means([results], task, after, before, tuple(langs)))


def show(stat):
    n, mean, ci, _ = stat
    return f"{mean:+.3f} [{ci[0]:+.3f}, {ci[1]:+.3f}]" if ci else f"{mean:+.3f}"


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    ours, design = (argv[:argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv else (argv, [])
    ap = argparse.ArgumentParser(description="Screen a lab design on a development seed: probe, positive controls.")
    ap.add_argument("--seed", type=int, required=True, help="lab world and training seed, 1..99")
    ap.add_argument("--out", required=True, help="folder for this design's lab, models and results")
    ap.add_argument("--gates", action="store_true", help="also finetune (English, translated) and measure (i)-(iii)")
    ap.add_argument("--chat", action="store_true", help="with --gates, also score the finetuned models with ChatML")
    ap.add_argument("--train", action="append", default=[], help="an option for train.py (the model's size: "
                    "--train=--n_embd=64); repeat for several")
    args = ap.parse_args(ours)
    if not 1 <= args.seed <= 99:
        sys.exit("error: --seed must be a development seed, 1..99 (the reported runs use 1337 and up)")
    out, cfg, seed = Path(args.out).resolve(), ROOT / "config" / "lab.py", f"--seed={args.seed}"
    out.mkdir(parents=True, exist_ok=True)
    log, lab = out / "screen.log", out / "lab"
    if not (lab / "manifest.json").exists():
        run(log, "data/lab/prepare.py", "--seed", args.seed, "--out", lab, "--progress", "0", *design)
    manifest = json.loads((lab / "manifest.json").read_text())
    langs = manifest["instructions_translated"]["langs"]
    tok = out / "tok.tiktoken"
    if not tok.exists():
        texts = [lab / e["train"] for e in manifest["languages"] if e["group"] == "pretraining"]
        run(log, "tokenizer.py", "train", "--input", *texts, "--vocab_size", 2048, "--out", tok)
    # always run: a finished run says it is complete, an interrupted one resumes
    resume = ["--resume=true"] if (out / "base" / "ckpt.pt").exists() else []
    run(log, "train.py", cfg, "--forget_every=0", seed, f"--data_dir={lab}", f"--tokenizer={tok}",
        f"--out_dir={out / 'base'}", "--progress=false", *resume, *args.train)
    common = [cfg, f"--data_dir={lab}", "--bpb=false", "--self_sim=false", "--tasks", *TASKS, "--langs", "en", *langs,
              "--progress=false"]
    if not (out / "probe.json").exists():
        run(log, "evaluate.py", *common, f"--models=base={out / 'base'}", "--benchmarks=false", "--probe",
            f"--out={out / 'probe.json'}")
    probe = json.loads((out / "probe.json").read_text())["probe"]
    print(f"{out.name}: design {json.dumps(manifest['design'])}")
    print(f"probe: retrieval@1 on {probe['task']} (n={probe['n']}, chance {1 / probe['n']:.3f}), layers 0..L")
    for lang, values in probe["models"]["base"].items():
        print(f"  {lang}: " + " ".join(f"{v:.2f}" for v in values))
    if not args.gates:
        return
    translated = manifest["instructions_translated"]
    jobs = [("ft_en", []), ("ft_tr", [f"--data={lab / translated['train']}", f"--val_data={lab / translated['val']}"])]
    with ThreadPoolExecutor(2) as pool:
        runs = [pool.submit(run, out / f"{name}.log", "finetune.py", cfg, seed, f"--data_dir={lab}",
                            f"--init_from={out / 'base'}", f"--out_dir={out / name}", "--progress=false", *extra,
                            *(["--resume=true"] if (out / name / "ckpt.pt").exists() else []))
                for name, extra in jobs]
        for finished in runs:
            finished.result()  # a failed run's exit comes through here
    models = [f"{m}={out / m}" for m in ("base", "ft_en", "ft_tr")]
    if not (out / "plain.json").exists():
        run(log, "evaluate.py", *common, "--models", *models, "--chat=false", "--threads=2",
            f"--out={out / 'plain.json'}")
    if args.chat and not (out / "chat.json").exists():
        run(log, "evaluate.py", *common, "--models", *models[1:], "--chat=true", "--threads=2",
            f"--out={out / 'chat.json'}")
    plain = json.loads((out / "plain.json").read_text())
    metric = lambda m, task, lang, key="acc_calibrated": plain["metrics"][f"{task}/{key}"][m]["langs"][lang]
    print(f"gains in acc_calibrated, plain prompts, paired over {plain['settings']['max_examples']} items; "
          f"(ii) and (iii) over {', '.join(langs)}")
    print("| task | (i) en | (ii) zero-shot | (iii) translated | base en: calibrated / prior / acc |")
    print("|---|---|---|---|---|")
    for task in TASKS:
        print(f"| {task} | {show(gains(plain, 'ft_en', 'base', ['en'], task))} "
              f"| {show(gains(plain, 'ft_en', 'base', langs, task))} "
              f"| {show(gains(plain, 'ft_tr', 'base', langs, task))} "
              f"| {metric('base', task, 'en'):.3f} / {metric('base', task, 'en', 'acc_prior'):.3f} / "
              f"{metric('base', task, 'en', 'acc'):.3f} |")
    for lang in langs:  # a design may open a channel to one language only (--relexify)
        print(f"(ii) in {lang} alone: " + ", ".join(f"{task} {show(gains(plain, 'ft_en', 'base', [lang], task))}"
                                                   for task in TASKS))
    if args.chat:
        chat = json.loads((out / "chat.json").read_text())["metrics"]
        for task in TASKS:
            values = {m: chat[f"{task}/acc_calibrated"][m]["langs"] for m in ("ft_en", "ft_tr")}
            print(f"ChatML {task}: ft_en en {values['ft_en']['en']:.3f}, ft_en others "
                  f"{sum(values['ft_en'][x] for x in langs) / len(langs):.3f}, ft_tr others "
                  f"{sum(values['ft_tr'][x] for x in langs) / len(langs):.3f}")


if __name__ == "__main__":
    main()
