"""
What the run folders' logs say, for report.py: the steps each forgetting episode needs to recover its loss,
and the adapting-language bits per byte each adaptation recipe reaches per budget, standard vs forgetting
pretraining, paired within each seed.
"""

import glob
import json
import os
import re


def read_log(out_dir):
    """A run's log.jsonl (runtime.Log writes it): one dict per line."""
    with open(os.path.join(out_dir, "log.jsonl")) as f:
        return [json.loads(line) for line in f if line.strip()]


def smooth(values, window):
    """Running mean over the last `window` values (fewer at the start)."""
    out, total = [], 0.0
    for i, v in enumerate(values):
        total += v
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out


ADAPT_MODES = {"relearn": "[CHEN] relearn: every embedding reset and relearned",
               "adapt": "[AFA] vocabulary expansion: new rows and the head learned",
               "keephead": "vocabulary expansion keeping the old head rows (frozen): new rows learned"}
RECIPE_KEYS = ("emb_init", "head")  # what the paper leaves open (adapt.py)


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


def recovery_summary(seed_dirs):
    """[(run name, label, [recoveries per seed])] of the forgetting runs: the global schedule, and [CHEN]'s if run."""
    found = []
    for name, label in (("forgetting", "global cosine schedule"), ("chen", "[CHEN] per-episode embedding LR")):
        runs = [os.path.join(d, f"pretrain_{name}") for d in seed_dirs
                if os.path.exists(os.path.join(d, f"pretrain_{name}"))]
        if runs:
            found.append((name, label, [recoveries(read_log(run)) for run in runs]))
    return found


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
