"""
The report of run.sh: the paper's tables over seeds and the plots that show forgetting at work.

    python report.py --runs out/run/lab --out out/report

Reads the layout run.sh writes (<runs>/seed<S>/{pretrain_*, adapt_*_<tokens>, relearn_*_<tokens>, finetune_*,
results.json}) and writes <out>/results.md and four PNGs:
  pretraining_loss.png   loss of standard vs forgetting pretraining, resets marked
  recovery.png           steps each forgetting episode needs to get back to its loss before the reset
  adaptation.png         adapting-language bits per byte vs adaptation tokens, standard vs forgetting pretraining,
                         under [CHEN]'s relearning (its sample-efficiency plot) and [AFA]'s vocabulary expansion
  benchmarks.png         benchmark scores per language group for Baseline, BA and AFA
Every difference is paired within a seed and judged against its seed-to-seed spread (beyond 2 x std?).
"""

import argparse
import glob
import json
import os
import re
import statistics

import matplotlib

matplotlib.use("Agg")  # no display needed
import matplotlib.pyplot as plt  # noqa: E402

from runtime import read_log  # noqa: E402

GROUPS = ("pretraining", "adapting", "other", "overall")
MODELS = ("Baseline", "BA", "AFA")
COLORS = {"standard": "tab:blue", "forgetting": "tab:red", "chen": "tab:purple",
          "Baseline": "tab:gray", "BA": "tab:blue", "AFA": "tab:red"}


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
               "adapt": "[AFA] vocabulary expansion: new rows + head learned"}


def adaptation_points(seed_dir, mode, kind):
    """{adaptation tokens: final val bits per byte of (adapting, pretraining) languages} of the runs
    <mode>_<kind>_<tokens> (mode: relearn or adapt = expand)."""
    points = {}
    for run in glob.glob(os.path.join(seed_dir, f"{mode}_{kind}_*")):
        match = re.search(r"_(\d+)$", run)
        if not match or not os.path.isdir(run):
            continue
        final = [r for r in read_log(run) if "val_bpb" in r][-1]
        points[int(match.group(1))] = (final["val_bpb"], final.get("val_bpb_mean_pretraining"))
    return dict(sorted(points.items()))


def plot_adaptation(seed_dirs, path):
    """Adapting-language bits per byte vs adaptation tokens, standard vs forgetting pretraining, under both
    adaptation recipes; and what expansion did to the pretraining languages. Returns, per mode and budget,
    the standard and forgetting bits per byte and their paired difference (each mean, std over seeds)."""
    panels = [("relearn", 0, "adapting languages"), ("adapt", 0, "adapting languages"), ("adapt", 1, "pretraining languages")]
    fig, axes = plt.subplots(1, len(panels), figsize=(15, 4.5))
    summary = {}
    for ax, (mode, index, what) in zip(axes, panels):
        points = {kind: [adaptation_points(d, mode, kind) for d in seed_dirs] for kind in ("standard", "forgetting")}
        budgets = sorted(set.intersection(*(set(p) for per_seed in points.values() for p in per_seed)))
        for kind, per_seed in points.items():
            stats = [mean_std([p[b][index] for p in per_seed]) for b in budgets]
            ax.errorbar(budgets, [m for m, _ in stats], yerr=[s for _, s in stats], fmt="o-", capsize=3,
                        color=COLORS[kind], label=f"{kind} pretraining")
        ax.set(xscale="log", xlabel="adaptation tokens", ylabel="val bits per byte", title=f"{what}\n{ADAPT_MODES[mode]}")
        ax.title.set_fontsize(9)
        ax.legend(fontsize=8)
        if index == 0 and budgets:
            summary[mode] = {b: (mean_std([p[b][0] for p in points["standard"]]), mean_std([p[b][0] for p in points["forgetting"]]),
                                 mean_std([f[b][0] - s[b][0] for s, f in zip(points["standard"], points["forgetting"])]))
                             for b in budgets}
    fig.suptitle("Adaptation: sample efficiency of standard vs forgetting pretraining (mean ± std over seeds)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return summary


def beyond_spread(mean, std, n, lower_is_better=True, names=("forgetting", "standard")):
    """Whether a mean difference (first - second) over n seeds is larger than twice its seed-to-seed std,
    and which of the two is better then."""
    if n < 2:
        return "one seed: no spread"
    if abs(mean) <= 2 * std:
        return "no"
    return f"yes, {names[0]} better" if (mean < 0) == lower_is_better else f"yes, {names[1]} better"


# ---- the paper's tables over seeds ------------------------------------------------------------------

def plot_benchmarks(results, tasks, path):
    fig, axes = plt.subplots(1, len(tasks), figsize=(3.2 * len(tasks), 3.8), squeeze=False)
    for ax, (task, metric) in zip(axes[0], tasks):
        key = f"{task}/{metric}"
        for i, model in enumerate(MODELS):
            stats = [mean_std([r["metrics"].get(key, {}).get(model, {}).get("groups", {}).get(g) for r in results]) for g in GROUPS]
            ax.bar([j + 0.27 * (i - 1) for j in range(len(GROUPS))], [m or 0 for m, _ in stats], 0.27,
                   yerr=[s or 0 for _, s in stats], color=COLORS[model], label=model)
        ax.set_xticks(range(len(GROUPS)), [g[:5] for g in GROUPS])
        ax.set_title(f"{task} ({metric})", fontsize=9)
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def tables(results):
    """Every metric: groups as rows, models as columns, mean ± std over seeds; then AFA − BA against the spread."""
    lines = []
    metrics = [m for m in results[0]["metrics"] if "/layer" not in m and not m.startswith("anisotropy")]
    for metric in metrics:
        lines += [f"### {metric}", "", "| | " + " | ".join(MODELS) + " |", "|---|" + "---:|" * len(MODELS)]
        for g in GROUPS:
            cells = [fmt(*mean_std([r["metrics"][metric].get(m, {}).get("groups", {}).get(g) for r in results]),
                         digits=2 if metric == "perplexity" else 3) for m in MODELS]
            lines.append(f"| μ_{g} | " + " | ".join(cells) + " |")
        lines.append("")
    return lines


def differences(results):
    """AFA − BA per metric and group, and whether it exceeds the seed-to-seed spread (2 × std of the difference)."""
    lines = ["| metric | group | AFA − BA | std over seeds | beyond the spread? |", "|---|---|---:|---:|---|"]
    lower_is_better = ("bpb", "perplexity", "self_sim", "self_sim_adjusted")
    for metric in results[0]["metrics"]:
        if "/layer" in metric or metric.startswith("anisotropy") or metric == "perplexity":
            continue
        for g in GROUPS:
            diffs = []
            for r in results:
                values = r["metrics"][metric]
                a, b = values.get("AFA", {}).get("groups", {}).get(g), values.get("BA", {}).get("groups", {}).get(g)
                if a is not None and b is not None:
                    diffs.append(a - b)
            if not diffs:
                continue
            mean, std = mean_std(diffs)
            verdict = beyond_spread(mean, std, len(diffs), metric in lower_is_better, ("AFA", "BA"))
            lines.append(f"| {metric} | μ_{g} | {mean:+.4f} | {std:.4f} | {verdict} |")
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", default="out/run/lab", help="the folder run.sh wrote (seed<S>/ inside)")
    parser.add_argument("--out", default="out/report", help="where results.md and the plots go")
    args = parser.parse_args()
    seed_dirs = sorted(glob.glob(os.path.join(args.runs, "seed*")))
    results_paths = [os.path.join(d, "results.json") for d in seed_dirs]
    missing = [p for p in results_paths if not os.path.exists(p)]
    if not seed_dirs or missing:
        raise SystemExit(f"error: no finished run in {args.runs} (missing {missing or 'seed*/'}); run bash run.sh first")
    results = [json.load(open(p)) for p in results_paths]
    os.makedirs(args.out, exist_ok=True)

    plot_pretraining(seed_dirs[0], os.path.join(args.out, "pretraining_loss.png"))
    recovery = plot_recovery(seed_dirs, os.path.join(args.out, "recovery.png"))
    adaptation = plot_adaptation(seed_dirs, os.path.join(args.out, "adaptation.png"))
    tasks = [(t, v["metric"]) for t, v in results[0]["tasks"].items()]
    if tasks:
        plot_benchmarks(results, tasks, os.path.join(args.out, "benchmarks.png"))

    n = len(results)
    md = [f"# Results: Baseline, BA and AFA on {os.path.basename(os.path.normpath(args.runs))} ({n} seed{'s' if n > 1 else ''})", "",
          "Baseline = standard pretraining + finetuning; BA = standard pretraining + adaptation + finetuning; "
          "AFA = forgetting pretraining + adaptation + finetuning. Mean ± std over seeds. Bits per byte compares "
          "across vocabularies; perplexity is per token of each model's own vocabulary (Baseline's is the smaller one).", ""]
    md += tables(results)
    md += ["## AFA − BA", ""] + differences(results) + [""]
    for mode, points in adaptation.items():
        md += [f"## Adaptation, {ADAPT_MODES[mode]}: adapting-language bits per byte", "",
               "| tokens | standard | forgetting | forgetting − standard | beyond the spread (2 × std)? |",
               "|---:|---:|---:|---:|---|"]
        for tokens, (standard, forgetting, diff) in points.items():
            spread = f" ± {diff[1]:.3f}" if n > 1 else ""
            md.append(f"| {tokens:,} | {fmt(*standard)} | {fmt(*forgetting)} | {diff[0]:+.3f}{spread} | {beyond_spread(*diff, n)} |")
        md.append("")
    md += ["", "## Recovery after each reset (steps back to the pre-reset loss; * = not within the episode)", ""]
    for label, per_seed in recovery:
        for i, rec in enumerate(per_seed):
            md.append(f"- {label}, seed {i}: " + ", ".join(f"{n}{'*' if c else ''}" for _, n, c in rec))
    md += ["", "![pretraining](pretraining_loss.png)", "![recovery](recovery.png)", "![adaptation](adaptation.png)",
           "![benchmarks](benchmarks.png)", ""]
    with open(os.path.join(args.out, "results.md"), "w", encoding="utf-8") as f:
        f.write("\n".join(md))
    print("\n".join(md))
    print(f"wrote {args.out}/results.md and plots")


if __name__ == "__main__":
    main()
