"""
The plots of report.py, each drawn from numbers report.py has already read and summarised:
  pretraining_loss.png   loss of standard vs forgetting pretraining, resets marked
  recovery.png           steps each forgetting episode needs to get back to its loss before the reset
  adaptation.png         adapting-language bits per byte vs adaptation tokens, standard vs forgetting pretraining,
                         under each adaptation recipe the run holds
  benchmarks.png         each task's score per language group and model, with 95% intervals, chance and the
                         never-pretrained control as lines
"""

import math
import os
import statistics

import matplotlib

matplotlib.use("Agg")  # no display needed
import matplotlib.pyplot as plt  # noqa: E402

from evaluation.runs import read_log, smooth  # noqa: E402

COLORS = {"standard": "tab:blue", "forgetting": "tab:red", "chen": "tab:purple", "Baseline": "tab:gray",
          "BA": "tab:blue", "AFA": "tab:red", "BA_keephead": "tab:cyan", "AFA_keephead": "tab:orange",
          "BA_splice": "tab:green", "AFA_splice": "tab:pink", "BA_adapted": "tab:blue", "AFA_adapted": "tab:red"}
PRETRAINING_LABELS = {"standard": "standard", "forgetting": "forgetting", "chen": "forgetting + [CHEN] embedding LR"}


def save(fig, path):
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_pretraining(seed_dir, path):
    fig, ax = plt.subplots(figsize=(9, 4.5))
    for name, label in PRETRAINING_LABELS.items():
        run = os.path.join(seed_dir, f"pretrain_{name}")
        if not os.path.exists(run):
            continue
        log = read_log(run)
        points = [(r["step"], r["loss"]) for r in log if "loss" in r]
        ax.plot([s for s, _ in points], smooth([v for _, v in points], 5), color=COLORS[name], lw=1, label=label)
        if name == "forgetting":
            for r in log:
                if r.get("forget"):
                    ax.axvline(r["step"], color=COLORS[name], alpha=0.25, lw=0.8)
    ax.set(xlabel="step", ylabel="training loss (nats/token, smoothed)",
           title="Pretraining: each reset (vertical line) spikes the loss")
    ax.legend()
    save(fig, path)


def plot_recovery(recovery, path):
    """recovery: [(pretraining run name, label, [[(reset step, steps to recover, censored)] per seed])]."""
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for name, label, per_seed in recovery:
        for i, rec in enumerate(per_seed):
            ax.plot([e + 1 for e in range(len(rec))], [n for _, n, _ in rec], "o-", color=COLORS[name],
                    alpha=0.8 if i == 0 else 0.35, label=label if i == 0 else None)
            ax.plot([e + 1 for e, (_, _, cens) in enumerate(rec) if cens], [n for _, n, cens in rec if cens], "x",
                    color="black", ms=8)
    ax.set(xlabel="forgetting episode (reset number)", ylabel="steps to recover the pre-reset loss",
           title="Recovery after each reset (x: not recovered within the episode)")
    ax.legend()
    save(fig, path)


def plot_adaptation(summary, titles, path):
    """summary: runs.adaptation_summary's {mode: {tokens: {kind: [(adapting, pretraining bpb) per seed]}}};
    one panel per mode (adapting languages), and one for what [AFA]'s expansion did to the pretraining languages."""
    panels = ([(mode, 0, "adapting languages") for mode in summary]
              + [(m, 1, "pretraining languages") for m in ("adapt",) if m in summary])
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4.5), squeeze=False)
    for ax, (mode, index, what) in zip(axes[0], panels):
        budgets = list(summary[mode])
        for kind in ("standard", "forgetting"):
            per_budget = [[seed[index] for seed in summary[mode][b][kind] if seed[index] is not None] for b in budgets]
            ax.errorbar(budgets, [statistics.fmean(v) if v else math.nan for v in per_budget],
                        yerr=[statistics.stdev(v) if len(v) > 1 else 0 for v in per_budget], fmt="o-", capsize=3,
                        color=COLORS[kind], label=f"{kind} pretraining")
        ax.set(xscale="log", xlabel="adaptation tokens", ylabel="val bits per byte", title=f"{what}\n{titles[mode]}")
        ax.title.set_fontsize(9)
        ax.legend(fontsize=8)
    fig.suptitle("Adaptation: sample efficiency of standard vs forgetting pretraining (mean ± std over seeds)")
    save(fig, path)


def plot_benchmarks(panels, path):
    """panels: [{"title", "groups": [name], "bars": {model: [(mean, low, high) or None per group]},
    "control": {model: [mean or None per group]}, "chance": [(label, value)]}]: bars with their 95% intervals,
    the controls as a short line across each group, the chance levels as lines across the panel."""
    fig, axes = plt.subplots(1, len(panels), figsize=(max(6.0, 3.6 * len(panels)), 4.2), squeeze=False)
    for ax, panel in zip(axes[0], panels):
        groups, bars = panel["groups"], panel["bars"]
        width = 0.8 / max(1, len(bars))
        for i, (model, estimates) in enumerate(bars.items()):
            x = [j + width * (i - (len(bars) - 1) / 2) for j in range(len(groups))]
            means = [e[0] if e else math.nan for e in estimates]
            errors = [[e[0] - e[1] if e and e[1] is not None else 0 for e in estimates],
                      [e[2] - e[0] if e and e[2] is not None else 0 for e in estimates]]
            ax.bar(x, means, width, yerr=errors, capsize=2, color=COLORS.get(model), label=model)
        for model, values in panel["control"].items():
            drawn = [j for j, v in enumerate(values) if v is not None]
            for j in drawn:
                ax.hlines(values[j], j - 0.45, j + 0.45, colors="black", lw=1.5,
                          label=f"{model} (never pretrained)" if j == drawn[0] else None)
        for (label, value), style in zip(panel["chance"], (":", "--")):
            ax.axhline(value, color="dimgray", ls=style, lw=1, label=label)
        ax.set_xticks(range(len(groups)), groups, rotation=30, ha="right", fontsize=8)
        ax.set_title(panel["title"], fontsize=9)
        ax.legend(fontsize=6)
    fig.suptitle("Benchmarks: mean over seeds, 95% intervals (accuracy: over items)", fontsize=10)
    save(fig, path)
