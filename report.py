"""
The report of run.sh: the paper's tables over seeds and the plots that show forgetting at work.

    python report.py --runs out/run/lab --out out/report

Reads the layout run.sh writes (<runs>/seed<S>/{pretrain_*, adapt_*_<tokens>, relearn_*_<tokens>, keephead_*_<tokens>,
finetune_*, splice_*, results.json}) and writes <out>/results.md and four PNGs:
  pretraining_loss.png   loss of standard vs forgetting pretraining, resets marked
  recovery.png           steps each forgetting episode needs to get back to its loss before the reset
  adaptation.png         adapting-language bits per byte vs adaptation tokens, standard vs forgetting pretraining,
                         under [CHEN]'s relearning (its sample-efficiency plot) and [AFA]'s vocabulary expansion
                         (and the keephead variant of it, if run)
  benchmarks.png         benchmark scores per language group for every model the results hold
Every difference is paired within a seed: a t-interval over the seeds per row, and Holm's correction across
the rows of each table (stats.py). Each multiple-choice task is checked against chance first (Wilson interval).
The file is a little over the usual ~450 lines because it holds one idea whole: every table and plot of the
report is read from the same per-seed results, and splitting it would split that reading in two.
"""

import argparse
import glob
import json
import math
import os
import re
import statistics

import matplotlib

matplotlib.use("Agg")  # no display needed
import matplotlib.pyplot as plt  # noqa: E402

from evaluation import stats
from pipeline.runtime import read_log  # noqa: E402

ENGLISH = "en"  # the language of the instructions: the check that a benchmark measures anything
COLORS = {"standard": "tab:blue", "forgetting": "tab:red", "chen": "tab:purple", "Baseline": "tab:gray",
          "BA": "tab:blue", "AFA": "tab:red", "BA_keephead": "tab:cyan", "AFA_keephead": "tab:orange",
          "BA_splice": "tab:green", "AFA_splice": "tab:pink"}


def mean_std(values):
    values = [v for v in values if v is not None]
    if not values:
        return None, None
    return statistics.mean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def fmt(mean, std, digits=3):
    if mean is None:
        return "-"
    return f"{mean:.{digits}f}" + (f" ± {std:.{digits}f}" if std else "")


def smooth(values, window):
    out, total = [], 0.0
    for i, v in enumerate(values):
        total += v
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out


# ---- forgetting dynamics ----------------------------------------------------------------------------

def recoveries(log, window=10):
    """For every reset: the steps until the (smoothed) training loss is back at its level just before the
    reset, and whether it got there before the next reset (else the episode length, marked as censored)."""
    steps = [r["step"] for r in log if "loss" in r]
    losses = smooth([r["loss"] for r in log if "loss" in r], window)
    resets = [r["step"] for r in log if r.get("forget")]
    bounds = resets[1:] + [steps[-1] + 1]
    result = []
    for reset, end in zip(resets, bounds):
        before = [loss for s, loss in zip(steps, losses) if s < reset]
        if not before:
            continue
        target = before[-1]
        back = next((s - reset for s, loss in zip(steps, losses) if reset + window <= s < end and loss <= target), None)
        result.append((reset, back if back is not None else end - reset, back is None))
    return result


def plot_pretraining(seed_dir, path):
    fig, ax = plt.subplots(figsize=(9, 4.5))
    for name in ("standard", "forgetting", "chen"):
        run = os.path.join(seed_dir, f"pretrain_{name}")
        if not os.path.exists(run):
            continue
        log = read_log(run)
        points = [(r["step"], r["loss"]) for r in log if "loss" in r]
        ax.plot([s for s, _ in points], smooth([v for _, v in points], 5), color=COLORS[name], lw=1,
                label={"standard": "standard", "forgetting": "forgetting", "chen": "forgetting + [CHEN] embedding LR"}[name])
        if name == "forgetting":
            for r in log:
                if r.get("forget"):
                    ax.axvline(r["step"], color=COLORS[name], alpha=0.25, lw=0.8)
    ax.set(xlabel="step", ylabel="training loss (nats/token, smoothed)", title="Pretraining: each reset (vertical line) spikes the loss")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_recovery(seed_dirs, path):
    fig, ax = plt.subplots(figsize=(8, 4.5))
    lines = []
    for name, label in (("forgetting", "global cosine schedule"), ("chen", "[CHEN] per-episode embedding LR")):
        per_seed = [recoveries(read_log(os.path.join(d, f"pretrain_{name}"))) for d in seed_dirs if os.path.exists(os.path.join(d, f"pretrain_{name}"))]
        if not per_seed:
            continue
        for i, rec in enumerate(per_seed):
            ax.plot([e + 1 for e in range(len(rec))], [n for _, n, _ in rec], "o-", color=COLORS[name], alpha=0.8 if i == 0 else 0.35,
                    label=label if i == 0 else None)
            ax.plot([e + 1 for e, (_, _, cens) in enumerate(rec) if cens], [n for _, n, cens in rec if cens], "x", color="black", ms=8)
        lines.append((label, per_seed))
    ax.set(xlabel="forgetting episode (reset number)", ylabel="steps to recover the pre-reset loss",
           title="Recovery after each reset (x: not recovered within the episode)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return lines


ADAPT_MODES = {"relearn": "[CHEN] relearn: every embedding reset and relearned",
               "adapt": "[AFA] vocabulary expansion: new rows and the head learned",
               "keephead": "vocabulary expansion keeping the old head rows (frozen): new rows learned"}
RECIPE_KEYS = ("emb_init", "head_rows", "head_init")  # what the paper leaves open (adapt.py)


def adaptation_points(seed_dir, mode, kind):
    """{adaptation tokens: final val bits per byte of (adapting, pretraining) languages} of the runs
    <mode>_<kind>_<tokens> (mode: relearn, adapt or keephead)."""
    points = {}
    for run in glob.glob(os.path.join(seed_dir, f"{mode}_{kind}_*")):
        match = re.search(r"_(\d+)$", run)
        if not match or not os.path.isdir(run):
            continue
        final = [r for r in read_log(run) if "val_bpb" in r][-1]
        points[int(match.group(1))] = (final["val_bpb"], final.get("val_bpb_mean_pretraining"))
    return dict(sorted(points.items()))


def recipe(seed_dirs, mode):
    """The expansion recipe the runs <mode>_* were made with, from their config.json ("" under relearn);
    every recipe found if the runs differ (a folder of old runs beside new ones)."""
    found = set()
    for run in (r for d in seed_dirs for r in glob.glob(os.path.join(d, f"{mode}_*")) if os.path.isdir(r)):
        try:
            with open(os.path.join(run, "config.json"), encoding="utf-8") as f:
                config = json.load(f)
        except (OSError, ValueError):
            found.add("recipe unknown")
            continue
        if config.get("mode") == "expand":
            found.add(", ".join(f"{k}={config.get(k)}" for k in RECIPE_KEYS))
    return " / ".join(sorted(found))


def adaptation_summary(seed_dirs):
    """{mode: {tokens: {kind: [(adapting bpb, pretraining bpb) per seed]}}} over the budgets every seed has
    for both kinds; the lists are in seed order, so standard and forgetting pair up within a seed."""
    summary = {}
    for mode in ADAPT_MODES:
        points = {kind: [adaptation_points(d, mode, kind) for d in seed_dirs] for kind in ("standard", "forgetting")}
        budgets = sorted(set.intersection(*(set(p) for per_seed in points.values() for p in per_seed)))
        if budgets:
            summary[mode] = {b: {kind: [p[b] for p in per_seed] for kind, per_seed in points.items()} for b in budgets}
    return summary


def plot_adaptation(summary, path):
    """Adapting-language bits per byte vs adaptation tokens, standard vs forgetting pretraining, under each
    adaptation recipe; and what [AFA]'s expansion did to the pretraining languages."""
    panels = [(mode, 0, "adapting languages") for mode in summary] + [(m, 1, "pretraining languages") for m in ("adapt",) if m in summary]
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4.5), squeeze=False)
    for ax, (mode, index, what) in zip(axes[0], panels):
        budgets = list(summary[mode])
        for kind in ("standard", "forgetting"):
            stats_ = [mean_std([seed[index] for seed in summary[mode][b][kind]]) for b in budgets]
            ax.errorbar(budgets, [math.nan if m is None else m for m, _ in stats_], yerr=[s or 0 for _, s in stats_], fmt="o-", capsize=3,
                        color=COLORS[kind], label=f"{kind} pretraining")
        ax.set(xscale="log", xlabel="adaptation tokens", ylabel="val bits per byte", title=f"{what}\n{ADAPT_MODES[mode]}")
        ax.title.set_fontsize(9)
        ax.legend(fontsize=8)
    fig.suptitle("Adaptation: sample efficiency of standard vs forgetting pretraining (mean ± std over seeds)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# ---- paired differences over seeds: t-interval per row, Holm across the rows of a table --------------

def lower_is_better(metric):
    """Bits, perplexities, losses and self-similarity: lower is better; scores and accuracies: higher."""
    tail = metric.rsplit("/", 1)[-1]
    return any(word in tail for word in ("bpb", "bits", "perplexity", "loss")) or tail in ("self_sim", "self_sim_adjusted")


def tested(rows, names, alpha=0.05):
    """rows: [(label, [paired difference first − second per seed], lower is better)] -> markdown cells per row:
    n, mean difference, its unadjusted 95% t-interval, p (two-sided), Holm's adjusted p over the rows
    that have a test (n >= 2) and whether the row survives at family-wise alpha (and which of names is better)."""
    results = [stats.paired_t(diffs) for _, diffs, _ in rows]
    family = [i for i, r in enumerate(results) if r[3] is not None]
    adjusted, survives = stats.holm([results[i][3] for i in family], alpha)
    holm_of = dict(zip(family, zip(adjusted, survives)))
    cells = []
    for i, ((label, _, lower), (n, mean, interval, p)) in enumerate(zip(rows, results)):
        if p is None:
            cells.append((label, [str(n), f"{mean:+.4f}", "-", "-", "-", "one seed: no test"]))
            continue
        adj, ok = holm_of[i]
        verdict = f"yes, {names[0] if (mean < 0) == lower else names[1]} better" if ok else "no"
        cells.append((label, [str(n), f"{mean:+.4f}", f"[{interval[0]:+.4f}, {interval[1]:+.4f}]", f"{p:.3g}", f"{adj:.3g}", verdict]))
    return cells


TEST_HEADER = "n | mean | 95% t-interval | p | Holm p | survives Holm (α = .05)?"


def differences(results, first, second):
    """first − second per metric and group, paired within each seed; Holm across all rows of the table."""
    rows = []
    for metric in results[0]["metrics"]:
        if "/layer" in metric or metric.startswith("anisotropy") or metric == "perplexity":
            continue
        for g in group_names(results):
            diffs = []
            for r in results:
                values = r["metrics"].get(metric, {})
                a, b = values.get(first, {}).get("groups", {}).get(g), values.get(second, {}).get("groups", {}).get(g)
                if a is not None and b is not None:
                    diffs.append(a - b)
            if diffs:
                rows.append((f"{metric} | μ_{g}", diffs, lower_is_better(metric)))
    lines = [f"| metric | group | {TEST_HEADER.replace('mean', f'{first} − {second}')} |", "|---|---|---:|---:|---|---:|---:|---|"]
    for label, cells in tested(rows, (first, second)):
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


def adaptation_table(points):
    """forgetting − standard adapting-language bits per byte per budget; Holm across the budgets."""
    lines = [f"| tokens | standard | forgetting | {TEST_HEADER.replace('mean', 'forgetting − standard')} |",
             "|---:|---:|---:|---:|---:|---|---:|---:|---|"]
    rows = [(f"{tokens:,}", [f[0] - s[0] for s, f in zip(kinds["standard"], kinds["forgetting"])], True) for tokens, kinds in points.items()]
    for (label, cells), kinds in zip(tested(rows, ("forgetting", "standard")), points.values()):
        means = [fmt(*mean_std([seed[0] for seed in kinds[kind]])) for kind in ("standard", "forgetting")]
        lines.append(f"| {label} | " + " | ".join(means + cells) + " |")
    return lines


# ---- the paper's tables over seeds ------------------------------------------------------------------

def model_names(results):
    """The models every seed evaluated, in the order of the first seed (Baseline, BA, AFA, then any variant)."""
    return [m for m in results[0]["models"] if all(m in r["models"] for r in results)]


def group_names(results):
    """The language groups of the results (a new group in the manifest appears here), then "overall"."""
    names = []
    for r in results:
        names += [g for g in r.get("groups", []) if g not in names]
        for per_model in r["metrics"].values():
            for values in per_model.values():
                names += [g for g in values.get("groups", {}) if g not in names and g != "overall"]
    return names + ["overall"]


def plot_benchmarks(results, tasks, path):
    models, groups = model_names(results), group_names(results)
    width = 0.8 / len(models)
    fig, axes = plt.subplots(1, len(tasks), figsize=(3.2 * len(tasks), 3.8), squeeze=False)
    for ax, (task, metric) in zip(axes[0], tasks):
        key = f"{task}/{metric}"
        for i, model in enumerate(models):
            stats_ = [mean_std([r["metrics"].get(key, {}).get(model, {}).get("groups", {}).get(g) for r in results]) for g in groups]
            ax.bar([j + width * (i - (len(models) - 1) / 2) for j in range(len(groups))], [m or 0 for m, _ in stats_], width,
                   yerr=[s or 0 for _, s in stats_], color=COLORS.get(model), label=model)
        ax.set_xticks(range(len(groups)), [g[:5] for g in groups])
        ax.set_title(f"{task} ({metric})", fontsize=9)
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def tables(results):
    """Every metric: groups as rows, models as columns, mean ± std over seeds."""
    lines, models = [], model_names(results)
    metrics = [m for m in results[0]["metrics"] if "/layer" not in m and not m.startswith("anisotropy")]
    for metric in metrics:
        lines += [f"### {metric}", "", "| | " + " | ".join(models) + " |", "|---|" + "---:|" * len(models)]
        for g in group_names(results):
            cells = [fmt(*mean_std([r["metrics"][metric].get(m, {}).get("groups", {}).get(g) for r in results]),
                         digits=2 if metric == "perplexity" else 3) for m in models]
            lines.append(f"| μ_{g} | " + " | ".join(cells) + " |")
        lines.append("")
    return lines


# ---- is a benchmark measuring anything? accuracy against chance ------------------------------------

_CHANCE = {}  # (task folder, task, language, max_examples) -> chance, so each task file is read once


def chance_of(result, task, lang):
    """1 / number of choices, averaged over the examples evaluate.py scored (the first max_examples of the
    task file), read from the task files the results name; None if they are not where the results say."""
    settings = result["settings"]
    folder = settings.get("tasks_dir") or settings.get("data_dir", "")
    key = (folder, task, lang, settings.get("max_examples"))
    if key not in _CHANCE:
        try:
            with open(os.path.join(folder, "manifest.json"), encoding="utf-8") as f:
                path = os.path.join(folder, json.load(f)["tasks"][task]["files"][lang])
            with open(path, encoding="utf-8") as f:
                examples = [json.loads(line) for line in f if line.strip()][: settings.get("max_examples") or None]
            _CHANCE[key] = statistics.fmean(1 / len(ex["choices"]) for ex in examples)
        except (OSError, KeyError, ValueError):
            _CHANCE[key] = None
    return _CHANCE[key]


def pooled_accuracy(result, model, task, langs):
    """(correct, n, chance) over the examples of the given languages; None if the results lack n or the score.
    The accuracy is the task's own metric if it is one (acc, acc_bytes, ...), else plain acc."""
    own = result["tasks"][task]["metric"]
    metric = f"{task}/{own if own.startswith('acc') else 'acc'}"
    correct = n = 0
    chance = 0.0
    for lang in langs:
        acc = result["metrics"].get(metric, {}).get(model, {}).get("langs", {}).get(lang)
        detail = result.get("details", {}).get(model, {}).get("tasks", {}).get(task, {}).get(lang, {})
        count = detail.get("n")
        if acc is None or not count:
            return None
        lang_chance = detail.get("chance") or chance_of(result, task, lang)  # recorded by evaluate.py, else from the files
        correct, n = correct + round(acc * count), n + count
        chance = None if chance is None or lang_chance is None else chance + lang_chance * count
    return correct, n, (None if chance is None else chance / n)


def above_chance_cells(pooled):
    if pooled is None:
        return ["no score or n in the results", "-"]
    correct, n, chance = pooled
    low, high = stats.wilson(correct, n)
    verdict = "chance unknown" if chance is None else ("yes" if low > chance else "no")
    chance_text = "" if chance is None else f", chance {chance:.3f}"
    return [f"{correct / n:.3f} ({correct}/{n}) [{low:.3f}, {high:.3f}]{chance_text}", verdict]


def above_chance(results, english=ENGLISH):
    """Per multiple-choice task and seed: Baseline's English accuracy, and every other model's accuracy
    pooled over the adapting languages' examples, each with a 95% Wilson interval on its n examples and
    whether the interval's lower end is above chance."""
    baseline = "Baseline" in model_names(results)  # absent from the adapted models' report (--results)
    models = [m for m in model_names(results) if m != "Baseline"]
    header = ["task", "seed"] + [f"Baseline, {english}", "above chance?"] * baseline
    for m in models:
        header += [f"{m}, adapting (pooled)", "above chance?"]
    lines = ["| " + " | ".join(header) + " |", "|---|---:" + "|---|---" * (baseline + len(models)) + "|"]
    for task, spec in results[0]["tasks"].items():
        if spec["kind"] != "mc":
            continue
        for i, r in enumerate(results):
            adapting = [lang for lang in r["tasks"][task]["langs"] if r["languages"].get(lang) == "adapting"]
            cells = []
            if baseline:
                cells += above_chance_cells(pooled_accuracy(r, "Baseline", task, [english]) if english in r["tasks"][task]["langs"] else None)
            for m in models:
                cells += above_chance_cells(pooled_accuracy(r, m, task, adapting) if adapting else None)
            own = spec["metric"] if spec["metric"].startswith("acc") else "acc"
            lines.append(f"| {task}/{own} | {i} | " + " | ".join(cells) + " |")
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", default="out/run/lab", help="the folder run.sh wrote (seed<S>/ inside)")
    parser.add_argument("--out", default="out/report", help="where results.md and the plots go")
    parser.add_argument("--results", default="results.json", help="each seed's evaluate.py output to report "
                        "(README: Results has a command that writes adapted.json for the adapted models)")
    args = parser.parse_args()
    seed_dirs = sorted(glob.glob(os.path.join(args.runs, "seed*")))
    results_paths = [os.path.join(d, args.results) for d in seed_dirs]
    missing = [p for p in results_paths if not os.path.exists(p)]
    if not seed_dirs or missing:
        raise SystemExit(f"error: no finished run in {args.runs} (missing {missing or 'seed*/'}); run bash run.sh first")
    results = []
    for path in results_paths:
        try:
            with open(path, encoding="utf-8") as f:
                results.append(json.load(f))
        except ValueError as e:
            raise SystemExit(f"error: {path} is not valid JSON ({e}); run evaluate.py again")
    os.makedirs(args.out, exist_ok=True)

    plot_pretraining(seed_dirs[0], os.path.join(args.out, "pretraining_loss.png"))
    recovery = plot_recovery(seed_dirs, os.path.join(args.out, "recovery.png"))
    adaptation = adaptation_summary(seed_dirs)
    if adaptation:
        plot_adaptation(adaptation, os.path.join(args.out, "adaptation.png"))
    tasks = [(t, v["metric"]) for t, v in results[0]["tasks"].items()]
    if tasks:
        plot_benchmarks(results, tasks, os.path.join(args.out, "benchmarks.png"))

    n, models = len(results), model_names(results)
    md = [f"# Results: {', '.join(models)} on {os.path.basename(os.path.normpath(args.runs))} ({n} seed{'s' if n > 1 else ''})", "",
          "Baseline = standard pretraining + finetuning; BA = standard pretraining + adaptation + finetuning; "
          "AFA = forgetting pretraining + adaptation + finetuning (_keephead: adapted keeping the old head rows; "
          "_splice: [CHEN]'s protocol, the body finetuned alone on English, then given the adapted embeddings and head; "
          "_adapted: the adapted model before finetuning, scored with plain prompts). "
          "Mean ± std over seeds. Bits per byte compares across vocabularies; perplexity is per token of each "
          "model's own vocabulary (Baseline's is the smaller one).", "",
          "Reproducibility: these numbers are bit-identical when re-run on the same machine with the same software "
          "and thread counts, not across machines: another CPU or GPU, torch version or thread count changes the "
          "last digits, which can flip a close difference.", ""]
    if tasks:
        md += ["## Does a benchmark measure anything? Accuracy against chance", "",
               "Per seed; 95% Wilson interval on the examples scored; above chance = its lower end above "
               "1 / number of choices. The adapting languages' examples are pooled.", ""] + above_chance(results) + [""]
    md += tables(results)
    for first, second in (("AFA", "BA"), ("AFA_keephead", "BA_keephead"), ("AFA_splice", "BA_splice"),
                          ("AFA_adapted", "BA_adapted")):
        if first in models and second in models:
            md += [f"## {first} − {second}", "",
                   "Paired within each seed; the unadjusted 95% t-interval of the mean difference; p of a two-sided "
                   "paired t-test; Holm's step-down across every row of this table (family-wise α = .05).", ""]
            md += differences(results, first, second) + [""]
    for mode, points in adaptation.items():
        how = recipe(seed_dirs, mode)
        md += [f"## Adaptation, {ADAPT_MODES[mode]}: adapting-language bits per byte", "",
               *([f"Recipe: {how}.", ""] if how else []),
               "Paired within each seed; 95% t-interval; Holm across the budgets of this table.", ""]
        md += adaptation_table(points) + [""]
    md += ["", "## Recovery after each reset (steps back to the pre-reset loss; * = not within the episode)", ""]
    for label, per_seed in recovery:
        for i, rec in enumerate(per_seed):
            md.append(f"- {label}, seed {i}: " + ", ".join(f"{steps}{'*' if c else ''}" for _, steps, c in rec))
    md += ["", "![pretraining](pretraining_loss.png)", "![recovery](recovery.png)"]
    md += ["![adaptation](adaptation.png)"] * bool(adaptation) + ["![benchmarks](benchmarks.png)"] * bool(tasks) + [""]
    with open(os.path.join(args.out, "results.md"), "w", encoding="utf-8") as f:
        f.write("\n".join(md))
    print("\n".join(md))
    print(f"wrote {args.out}/results.md and plots")


if __name__ == "__main__":
    main()
