"""
The report of run.sh: the positive controls that gate the transfer endpoints, the primary endpoints that
docs/method.md declares, tested over seeds and corrected by Holm across their family (evaluation/primary.py,
the controls' rules in evaluation/controls.py); everything else as exploratory intervals without verdicts; and
the plots. The run folders' logs are read by evaluation/runs.py, the results files by evaluation/results.py,
the plots drawn by evaluation/plots.py.

    python report.py --runs out/run/lab --out out/report [--results adapted.json]
    python report.py --from_items docs/lab/items.json     # the gate and the primary table again, from the records

Reads the layout run.sh writes (<runs>/seed<S>/{pretrain_*, adapt_*_<tokens>, relearn_*_<tokens>, keephead_*_<tokens>,
finetune_*, splice_*, results.json, adapted.json, chat.json}) and writes <out>/results.md beside
pretraining_loss.png, recovery.png, adaptation.png and benchmarks.png (a page without the finetuned BA and AFA, such
as adapted.json's: benchmarks.png only; the run logs are reported beside the primary endpoints they feed), and
<out>/items.json: the per-item records and per-seed values the gate and the primary table are computed from. Every
difference is paired within a seed, a benchmark difference within an item too; every test runs over the seeds, each
of which drew its own lab world (docs/method.md, "Statistics").
"""

import argparse
import glob
import json
import os
import platform
import statistics
from importlib.metadata import version

from evaluation import controls, plots, runs, stats
from evaluation import results as res
from evaluation.primary import SELF_SIM, TRANSFER, interval_text, per_seed_text, table_head, tested_sections

VARIANT_PAIRS = (("AFA", "BA"), ("AFA_keephead", "BA_keephead"), ("AFA_splice", "BA_splice"),
                 ("AFA_adapted", "BA_adapted"))
OTHER_FILES = ("adapted.json", "chat.json")  # read beside results.json: before finetuning, and ChatML prompts
PUBLISHED = ("Baseline", "BA", "AFA", "Control", controls.PRETRAINED, controls.TRANSLATED)  # items.json's models


def mean_std(values, digits=3):
    """mean ± std of the values that are there, as text ("-" if none)."""
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.fmean(values):.{digits}f}" + (f" ± {std:.{digits}f}" if std else "")


def adaptation_table(points):
    """Per budget: standard and forgetting adapting-language bits per byte, and forgetting − standard paired
    within each seed with its 95% t-interval (the test is endpoint (a) of the primary table)."""
    lines = table_head(["tokens", "standard", "forgetting", "seeds", "forgetting − standard",
                        "95% interval over seeds"], range(6))
    for tokens, kinds in points.items():
        n, mean, interval, _ = stats.t_interval([f[0] - s[0] for s, f in zip(kinds["standard"], kinds["forgetting"])])
        means = [mean_std([seed[0] for seed in kinds[kind]]) for kind in ("standard", "forgetting")]
        lines.append(f"| {tokens:,} | " + " | ".join(means + [str(n), f"{mean:+.4f}", interval_text(interval)]) + " |")
    return lines


# ---- exploratory: scores and differences with their intervals, no verdicts ---------------------------

def read_in(model, result):
    """Where a model's benchmarks are read: a Baseline knows no adapting language (its English; the Baseline
    finetuned on the translated instructions: the languages they were translated into); the others, adapting."""
    if model.startswith(controls.TRANSLATED):
        return controls.others(result)
    return res.ENGLISH if model.startswith("Baseline") else "adapting"


def where_text(where):
    return "pretraining, not en" if isinstance(where, tuple) else where


def benchmark_table(results):
    """Per multiple-choice task: its chance levels in the adapting languages, and each model's acc_calibrated
    where it is read (read_in), mean over seeds with its 95% interval (over seeds; one seed: over its items), its
    acc and answer prior (the choices scored without their context: what the surface alone gives) beside."""
    models = res.model_names(results)
    lines = table_head(["task", "1 / choices", "majority label"]
                       + [f"{m}, {where_text(read_in(m, results[0]))}" for m in models])
    for task in res.mc_tasks(results):
        levels = res.chance_levels(results[0], task, "adapting")
        cells = ["-", "-"] if levels is None else [f"{level:.3f}" for level in levels]
        for m in models:
            where = read_in(m, results[0])
            found = res.estimate(results, f"{task}/{res.PRIMARY}", m, where)
            beside = [(label, res.seed_values(results, f"{task}/{name}", m, where=where))
                      for label, name in (("acc", "acc"), ("prior", "acc_prior"))]
            cells.append("-" if found is None else f"{found[0]:.3f}"
                         + ("" if found[1] is None else f" {interval_text(found[1:], 3, '')}")
                         + "".join(f"; {name} {statistics.fmean(v):.3f}" for name, v in beside if v))
        lines.append(f"| {task} | " + " | ".join(cells) + " |")
    return lines


def exploratory_table(rows, first_column="endpoint"):
    """rows: [(label, Estimate or None)] -> mean, per seed and the 95% t-interval, no test."""
    lines = table_head([first_column, "seeds", "mean", "per seed", "95% interval"], range(1, 5))
    for label, e in rows:
        if e is not None:  # None: a metric some model lacks in this group (a task without the group's languages)
            over = " (items)" if e.over == "items" else ""
            lines.append(f"| {label} | {len(e.per_seed)} | {e.mean:+.4f} | {per_seed_text(e.per_seed)} | "
                         f"{interval_text(e.interval)}{over} |")
    return lines


def differences(results, first, second):
    """first − second per metric and group, paired within each seed."""
    rows = [(f"{metric} | μ_{g}", res.seed_values(results, metric, first, second, g))
            for metric in results[0]["metrics"] if "/layer" not in metric and metric != "perplexity"
            for g in res.group_names(results)]
    lines = exploratory_table([(label, res.test_over_seeds(v)) for label, v in rows if v], "metric | group")
    return [lines[0], "|---" + lines[1]] + lines[2:]


def tables(results):
    """Every metric: groups as rows, models as columns, mean ± std over seeds."""
    lines, models = [], res.model_names(results)
    for metric in (m for m in results[0]["metrics"] if "/layer" not in m):
        lines += [f"### {metric}", "", *table_head([""] + models, range(1, len(models) + 1))]
        for g in res.group_names(results):
            cells = [mean_std([res.value(r, metric, m, g) for r in results], 2 if metric == "perplexity" else 3)
                     for m in models]
            lines.append(f"| μ_{g} | " + " | ".join(cells) + " |")
        lines.append("")
    return lines


def benchmark_panels(results):
    """What plots.plot_benchmarks draws: per task its endpoint by group (acc_calibrated for multiple choice, where
    measured), the controls as lines, chance levels."""
    models, groups, panels = res.model_names(results), res.group_names(results), []
    for task, spec in results[0]["tasks"].items():
        name = res.PRIMARY if f"{task}/{res.PRIMARY}" in results[0]["metrics"] else spec["metric"]
        levels = res.chance_levels(results[0], task, "adapting") if spec["kind"] == "mc" else None
        panels.append({"title": f"{task} ({name})", "groups": groups,
                       "bars": {m: [res.estimate(results, f"{task}/{name}", m, g) for g in groups]
                                for m in models if not m.startswith("Control")},
                       "control": {m: [(res.estimate(results, f"{task}/{name}", m, g) or [None])[0] for g in groups]
                                   for m in models if m.startswith("Control")},
                       "chance": [] if levels is None
                                 else list(zip(("chance: 1 / choices", "chance: majority label"), levels))})
    return panels


# ---- what finetuning changes, and the probe (exploratory) ------------------------------------------------

BEFORE_AFTER = ((controls.PRETRAINED, "Baseline"), ("BA_adapted", "BA"), ("AFA_adapted", "AFA"),
                ("Control_adapted", "Control"))
RISE = 0.10  # the most finetuning may raise adapting-language bits per byte (issue: finetuning keeps adaptation)


def finetuning_bpb_table(merged):
    """Each model's bits per byte before finetuning (adapted.json) and after (results.json), the same bytes and
    the same tokenizer, per group: the rise and whether it stays within RISE."""
    lines = table_head(["model", "group", "before", "after", "rise", "rise per seed", f"rise ≤ {RISE:.2f}?"],
                       range(2, 6))
    for before, after in BEFORE_AFTER:
        for g in ("adapting", "pretraining"):
            rise = res.seed_values(merged, "bpb", after, before, g)
            if rise:
                means = [statistics.fmean(res.seed_values(merged, "bpb", m, where=g)) for m in (before, after)]
                lines.append(f"| {after} | μ_{g} | {means[0]:.3f} | {means[1]:.3f} | {statistics.fmean(rise):+.3f} | "
                             f"{per_seed_text(rise)} | {'yes' if max(rise) <= RISE else 'no'} |")
    return lines if len(lines) > 2 else []


def format_table(merged):
    """Each finetuned model's acc_calibrated with plain prompts (results.json: the endpoints and the controls)
    and in ChatML, the format it was finetuned in (chat.json, models named <model>_chatml), mean over seeds, over
    the languages both were asked in."""
    tasks, rows = res.mc_tasks(merged), []
    for m in ("Baseline", "BA", "AFA", "Control"):
        for where in [res.ENGLISH, controls.others(merged[0])] if m == "Baseline" else ["adapting"]:
            cells = []
            for task in tasks:
                both = tuple(lang for lang in res.selected_langs(merged[0], task, where)
                             if all(res.task_detail(merged[0], name, task, lang) for name in (m, f"{m}_chatml")))
                plain, chat = (res.seed_means(merged, task, name, where=both) for name in (m, f"{m}_chatml"))
                cells.append(f"{statistics.fmean(plain):.3f} / {statistics.fmean(chat):.3f}" if plain and chat else "-")
            if any(c != "-" for c in cells):
                rows.append(f"| {m}, {where_text(where)} | " + " | ".join(cells) + " |")
    if not rows:
        return []
    return table_head(["model, where"] + [f"{t}: plain / ChatML" for t in tasks], range(1, len(tasks) + 1)) + rows


def probe_table(merged):
    """The retrieval probe (evaluate.py --probe): per model and language, retrieval@1 of the English passages'
    translations at each layer, mean over seeds."""
    probes = [r["probe"] for r in merged if r.get("probe")]
    if len(probes) != len(merged):
        return []
    models = [m for m in probes[0]["models"] if all(m in p["models"] for p in probes)]
    layers = max((len(v) for m in models for v in probes[0]["models"][m].values()), default=0)
    lines = [f"Task {probes[0]['task']}, {probes[0]['n']} passages per language (chance {1 / probes[0]['n']:.3f}); "
             "layer 0 is the embeddings' output.", "",
             *table_head(["model", "language"] + [f"layer {k}" for k in range(layers)], range(2, layers + 2))]
    for m in models:
        for lang in probes[0]["models"][m]:
            per_layer = zip(*(p["models"][m][lang] for p in probes if lang in p["models"][m]))
            lines.append(f"| {m} | {lang} | " + " | ".join(f"{statistics.fmean(v):.3f}" for v in per_layer) + " |")
    return lines


def read_results(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except ValueError as e:
        raise SystemExit(f"error: {path} is not valid JSON ({e}); run evaluate.py again")


def seeds_of(seed_dirs):
    """Each seed folder's training seed (its pretraining's config.json), None where unknown."""
    seeds = []
    for d in seed_dirs:
        path = os.path.join(d, "pretrain_standard", "config.json")
        if os.path.exists(path):
            with open(path) as f:
                seeds.append(json.load(f)["seed"])
        else:
            seeds.append(None)
    return seeds


def provenance(seed_dirs, command):
    """Where the numbers come from: the command, the seeds (each run's config.json) and this machine."""
    seeds = ", ".join(str(s) for s in seeds_of(seed_dirs) if s is not None) or "unknown"
    machine = (f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
               f"torch {version('torch')}")
    made = f"Made by `{command}`" if command else "Made"
    return [f"{made} with seeds {seeds}, each its own lab world, on {machine} (the machine of this report; run.sh "
            "runs the stages and the report on one).", ""]


def read_seeds(seed_dirs, name):
    """Each seed's results file `name`, merged with the files read beside it (OTHER_FILES) where they exist."""
    merged = []
    for d in seed_dirs:
        others = [os.path.join(d, f) for f in OTHER_FILES if f != name]
        merged.append(res.merge([read_results(os.path.join(d, name))]
                                + [read_results(p) for p in others if os.path.exists(p)]))
    return merged


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", default="out/run/lab", help="the folder run.sh wrote (seed<S>/ inside)")
    parser.add_argument("--out", default="out/report", help="where results.md, items.json and the plots go")
    parser.add_argument("--results", default="results.json", help="each seed's evaluate.py output to report "
                        "(run.sh also writes adapted.json: the adapted models before finetuning)")
    parser.add_argument("--command", default="", help="the command that made the runs, written at the top of the page")
    parser.add_argument("--from_items", default="", help="an items.json that a report wrote: print its gate and "
                        "primary table again from the records, and nothing else")
    args = parser.parse_args(argv)
    if args.from_items:
        merged, adaptation, seeds = res.read_published(args.from_items)
        print(f"# The gate and the primary endpoints, recomputed from {args.from_items} (seeds "
              f"{', '.join(map(str, seeds))})\n")
        print("\n".join(tested_sections(merged, adaptation)))
        return
    seed_dirs = sorted(glob.glob(os.path.join(args.runs, "seed*")))
    results_paths = [os.path.join(d, args.results) for d in seed_dirs]
    missing = [p for p in results_paths if not os.path.exists(p)]
    if not seed_dirs or missing:
        raise SystemExit(f"error: no finished run in {args.runs} (missing {missing or 'seed*/'}); "
                         "run bash run.sh first")
    results = [read_results(path) for path in results_paths]
    merged = read_seeds(seed_dirs, args.results) if args.results == "results.json" else results
    os.makedirs(args.out, exist_ok=True)

    # the run logs (pretraining, the resets, adaptation) go on the page of the finetuned BA and AFA, whose primary
    # endpoints they feed; a page of the models before finetuning (adapted.json) holds their evaluation only
    n, models = len(results), res.model_names(results)
    with_logs = {"BA", "AFA"} <= set(models)
    recovery, adaptation = [], {}
    if with_logs:
        recovery, adaptation = runs.recovery_summary(seed_dirs), runs.adaptation_summary(seed_dirs)
        plots.plot_pretraining(seed_dirs[0], os.path.join(args.out, "pretraining_loss.png"))
        plots.plot_recovery(recovery, os.path.join(args.out, "recovery.png"))
    if adaptation:
        plots.plot_adaptation(adaptation, runs.ADAPT_MODES, os.path.join(args.out, "adaptation.png"))
    if results[0]["tasks"]:
        plots.plot_benchmarks(benchmark_panels(results), os.path.join(args.out, "benchmarks.png"))
    tested = tested_sections(merged, adaptation) if with_logs else []
    md = [f"# Results: {', '.join(models)} on {os.path.basename(os.path.normpath(args.runs))} "
          f"({n} seed{'s' if n > 1 else ''})", "",
          "Baseline = standard pretraining + finetuning; BA = standard pretraining + adaptation + finetuning; "
          "AFA = forgetting pretraining + adaptation + finetuning; Control = a body never pretrained (initialised; "
          "frozen while adapted), adapted and finetuned like BA and AFA: what the adaptation and finetuning data teach "
          "by themselves (_keephead: adapted keeping the old head rows; _splice: [CHEN]'s protocol, the body finetuned "
          "alone on English, then given the adapted embeddings and head; _adapted, _pretrained: the model before "
          "finetuning; Baseline_translated: the Baseline finetuned on the instructions translated into its other "
          "pretraining languages). Every model is scored with plain prompts, before finetuning and after it. Bits per "
          "byte compares across vocabularies; perplexity is per token of each model's own vocabulary (Baseline's is "
          "the smaller one).", "",
          *provenance(seed_dirs, args.command),
          "Reproducibility: these numbers are bit-identical when re-run on the same machine with the same software "
          "and thread counts, not across machines: another CPU or GPU, torch version or thread count changes the "
          "last digits, which can flip a close difference.", ""]
    if tested:
        md += tested
        with open(os.path.join(args.out, "items.json"), "w", encoding="utf-8") as f:
            kept = ["bpb", *SELF_SIM] + [f"{t}/{m}" for t in res.mc_tasks(merged) for m in ("acc", "acc_prior")]
            json.dump(res.published(merged, PUBLISHED, kept, seeds_of(seed_dirs), adaptation), f)
    else:
        md += ["These results hold no finetuned BA and AFA: every table below is exploratory (the primary endpoints "
               "are tested in the report of results.json, which also holds the pretraining, reset and adaptation "
               "sections).", ""]
    bpb, chat, probe = finetuning_bpb_table(merged), format_table(merged), probe_table(merged)
    if bpb:
        md += ["## Bits per byte before and after finetuning (exploratory)", "",
               "Each model before finetuning (the pretrained Baseline, the adapted BA, AFA and Control) and after it, "
               f"on the same held-out bytes; the rise through finetuning, which should stay within {RISE:.2f} in "
               "the adapting languages if finetuning keeps what adaptation learned.", "", *bpb, ""]
    if res.mc_tasks(results):
        md += ["## Benchmarks (exploratory)", "",
               f"{res.PRIMARY} (the answer prior taken out), mean over seeds, with its 95% t-interval over seeds (one "
               "seed: over its items, each item's correctness averaged over the languages); acc and the answer prior "
               "(acc_prior: the choices scored without their context) beside. Two chance levels, in the adapting "
               "languages: 1 / choices (guessing) and the majority label (answering the commonest label every time, "
               "higher when the labels are unbalanced).", ""] + benchmark_table(results) + [""]
        pairs = [(first + "_adapted", second + "_adapted") for first, second in TRANSFER]
        adapted = [(f"{a} − {b}, {task}/{res.PRIMARY}, μ_adapting", res.paired_estimate(results, task, a, b))
                   for task in res.mc_tasks(results) for a, b in pairs if {a, b} <= set(models)]
        if adapted:
            md += (["## Accuracy differences before finetuning, paired by item and seed (exploratory)", ""]
                   + exploratory_table(adapted) + [""])
    if chat:
        md += ["## Plain prompts and ChatML (exploratory)", "",
               f"The finetuned models' {res.PRIMARY}, mean over seeds, with plain prompts (every endpoint and control "
               "above) and in ChatML, the format of their finetuning.", "", *chat, ""]
    if probe:
        md += ["## Retrieval probe (exploratory)", "",
               "How often an English passage and its translation are each other's nearest neighbour among the "
               "passages (cosine of mean-pooled hidden states, both directions averaged), per layer, mean over "
               "seeds: cross-lingual alignment for finetuning to ride on.", "", *probe, ""]
    md += tables(results)
    for first, second in VARIANT_PAIRS:
        if first in models and second in models:
            md += [f"## {first} − {second}, every metric (exploratory)", "",
                   "Paired within each seed; the 95% t-interval of the mean difference over seeds.", ""]
            md += differences(results, first, second) + [""]
    for mode, points in adaptation.items():
        how = runs.recipe(seed_dirs, mode)
        md += [f"## Adaptation, {runs.ADAPT_MODES[mode]}: adapting-language bits per byte", "",
               *([f"Recipe: {how}.", ""] if how else [])]
        md += adaptation_table(points) + [""]
    if with_logs:
        md += ["", "## Recovery after each reset (steps back to the pre-reset loss; * = not within the episode)", ""]
        for _, label, per_seed in recovery:
            for i, rec in enumerate(per_seed):
                md.append(f"- {label}, seed {i}: " + ", ".join(f"{steps}{'*' if c else ''}" for _, steps, c in rec))
        md += ["", "![pretraining](pretraining_loss.png)", "![recovery](recovery.png)"]
    md += (["![adaptation](adaptation.png)"] * bool(adaptation)
           + ["![benchmarks](benchmarks.png)"] * bool(results[0]["tasks"]) + [""])
    with open(os.path.join(args.out, "results.md"), "w", encoding="utf-8") as f:
        f.write("\n".join(md))
    print("\n".join(md))
    print(f"wrote {args.out}/results.md and plots")


if __name__ == "__main__":
    main()
