"""
The report of run.sh: the primary endpoints that docs/method.md declares, tested and corrected by Holm across
their family; everything else as exploratory intervals without verdicts; and the plots. The run folders' logs
are read by evaluation/runs.py, the plots drawn by evaluation/plots.py; this file reads the results.json files.

    python report.py --runs out/run/lab --out out/report [--results adapted.json]

Reads the layout run.sh writes (<runs>/seed<S>/{pretrain_*, adapt_*_<tokens>, relearn_*_<tokens>, keephead_*_<tokens>,
finetune_*, splice_*, results.json, adapted.json}) and writes <out>/results.md beside pretraining_loss.png,
recovery.png, adaptation.png and benchmarks.png (a page without the finetuned BA and AFA, such as adapted.json's:
benchmarks.png only; the run logs are reported beside the primary endpoints they feed). Every difference is paired
within a seed; a difference of accuracies is also paired within an item, and an accuracy's interval counts items, not
translations (docs/method.md, "Statistics").
"""

import argparse
import glob
import json
import math
import os
import platform
import statistics
from importlib.metadata import version

from evaluation import plots, runs, stats

ENGLISH = "en"  # the language of the instructions: where Baseline's benchmarks are read
TRANSFER = (("AFA", "BA"), ("BA", "Control"), ("AFA", "Control"))  # the accuracy differences of endpoint (c)
SELF_SIM = ("self_sim", "anisotropy", "self_sim_adjusted")  # raw, the baseline of different words, raw - baseline
VARIANT_PAIRS = (("AFA", "BA"), ("AFA_keephead", "BA_keephead"), ("AFA_splice", "BA_splice"),
                 ("AFA_adapted", "BA_adapted"))


def mean_std(values, digits=3):
    """mean ± std of the values that are there, as text ("-" if none)."""
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.fmean(values):.{digits}f}" + (f" ± {std:.{digits}f}" if std else "")


def interval_text(interval, digits=4, sign="+"):
    return "-" if interval is None else f"[{interval[0]:{sign}.{digits}f}, {interval[1]:{sign}.{digits}f}]"


def table_head(cells, right=()):
    """A markdown header; the columns numbered in `right` are right-aligned."""
    return ["|" + "|".join(f" {c} " if c else " " for c in cells) + "|",
            "|" + "".join("---:|" if i in right else "---|" for i in range(len(cells)))]


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


# ---- the results: values per seed, per item, and chance -------------------------------------------

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


def mc_tasks(results):
    return [task for task, spec in results[0]["tasks"].items() if spec["kind"] == "mc"]


def value(result, metric, model, where):
    """A model's score in a language group, or in one language if `where` is a language code."""
    entry = result["metrics"].get(metric, {}).get(model, {})
    found = entry.get("groups", {}).get(where)
    return found if found is not None else entry.get("langs", {}).get(where)


def seed_values(results, metric, first, second=None, where="adapting"):
    """first's score per seed, or first − second paired within each seed (a seed lacking either is left out)."""
    out = []
    for r in results:
        a, b = value(r, metric, first, where), (value(r, metric, second, where) if second else 0.0)
        if a is not None and b is not None:
            out.append(a - b)
    return out


def selected_langs(result, task, where):
    return [lang for lang in result["tasks"][task]["langs"] if where in (lang, result["languages"].get(lang))]


def task_detail(result, model, task, lang):
    return result.get("details", {}).get(model, {}).get("tasks", {}).get(task, {}).get(lang, {})


def item_scores(results, task, first, second=None, where="adapting"):
    """Per item of a multiple-choice task: first's correctness, or first's minus second's paired within each
    language and seed, averaged over the selected languages and the seeds. Item k is the k-th example of every
    language's file, with the same meaning and label in each (the lab's files are parallel, as translated
    benchmarks are): its translations are one observation, so an interval over these counts items, not
    items x languages. None if a seed lacks evaluate.py's per-item record (an older results.json)."""
    sums, counts = {}, {}
    for r in results:
        for lang in selected_langs(r, task, where):
            a = task_detail(r, first, task, lang).get("correct")
            b = task_detail(r, second, task, lang).get("correct") if second else "0" * len(a or "")
            if a is None or b is None:
                return None
            for k, (x, y) in enumerate(zip(a, b)):
                if "-" not in (x, y):
                    sums[k], counts[k] = sums.get(k, 0) + int(x) - int(y), counts.get(k, 0) + 1
    return [sums[k] / counts[k] for k in sorted(sums)] or None


def chance_levels(result, task, where):
    """(mean 1 / choices, majority-label rate) over the scored examples of the selected languages, weighted by
    their counts; the majority rate is what answering each language's commonest label every time scores, the
    chance to beat when labels are unbalanced. evaluate.py records both; None where a language lacks them."""
    model, totals, n = next(iter(result["models"])), (0.0, 0.0), 0
    for lang in selected_langs(result, task, where):
        detail = task_detail(result, model, task, lang)
        if detail.get("majority") is None or not detail.get("n"):
            return None
        levels = detail["chance"], detail["majority"]
        totals, n = tuple(t + level * detail["n"] for t, level in zip(totals, levels)), n + detail["n"]
    return tuple(t / n for t in totals) if n else None


def estimate(results, metric, model, where):
    """(mean over seeds, low, high): the 95% t-interval over items for an accuracy with per-item records
    (items averaged over languages and seeds), else over seeds; low and high None without a spread."""
    values = seed_values(results, metric, model, where=where)
    if not values:
        return None
    task, _, name = metric.partition("/")
    items = item_scores(results, task, model, where=where) if name == "acc" else None
    low, high = stats.t_interval(items or values)[2] or (None, None)
    if name == "acc" and low is not None:  # an accuracy lies in [0, 1], wherever the normal approximation reaches
        low, high = max(0.0, low), min(1.0, high)
    return statistics.fmean(values), low, high


# ---- primary endpoints: tests, Holm across the declared family ----------------------------------------

def primary_rows(results, adaptation):
    """The family docs/method.md declares ("Primary endpoints"): [(label, differences per seed, per item or
    None)]. Empty unless the results hold the finetuned BA and AFA: a report of adapted.json is exploratory."""
    models = model_names(results)
    if not {"BA", "AFA"} <= set(models):
        return []
    rows = [(f"(a) forgetting − standard, adapting bpb, {mode}, {tokens:,} tokens",
             [f[0] - s[0] for s, f in zip(k["standard"], k["forgetting"])], None)
            for mode, points in adaptation.items() for tokens, k in points.items()]
    rows += [(f"(b) AFA − BA, bpb, μ_{g}", seed_values(results, "bpb", "AFA", "BA", g), None)
             for g in ("adapting", "pretraining")]
    rows += [(f"(c) {a} − {b}, {task}/acc, μ_adapting", seed_values(results, f"{task}/acc", a, b),
              item_scores(results, task, a, b))
             for task in mc_tasks(results) for a, b in TRANSFER if b in models]
    rows += [(f"(d) AFA − BA, {metric}, μ_{g}", seed_values(results, metric, "AFA", "BA", g), None)
             for metric in SELF_SIM for g in ("adapting", "pretraining")]
    return [row for row in rows if row[1]]


def primary_table(rows, alpha=0.05):
    """Each row's paired t-test over seeds; an accuracy difference must also hold over items, so its p is the
    larger of the two tests' (an intersection-union test: it keeps the level of each). Holm across the rows."""
    tests = []
    for label, seeds, items in rows:
        n, mean, seed_interval, p = stats.t_interval(seeds)
        _, _, item_interval, item_p = stats.t_interval(items) if items else (0, 0, None, None)
        if p is not None and item_p is not None:
            p = math.nan if math.isnan(p) or math.isnan(item_p) else max(p, item_p)
        tests.append((label, n, mean, seed_interval, item_interval, p))
    family = [i for i, t in enumerate(tests) if t[5] is not None]
    adjusted, holds = stats.holm([tests[i][5] for i in family], alpha)
    holm_of = dict(zip(family, zip(adjusted, holds)))
    lines = table_head(["endpoint", "seeds", "mean", "95% interval over seeds", "95% interval over items", "p",
                        "Holm p", f"holds (α = {alpha:g})?"], range(1, 7))
    for i, (label, n, mean, seed_interval, item_interval, p) in enumerate(tests):
        if p is None:
            verdict = ["-", "-", "one seed: no test"]
        elif math.isnan(p):
            verdict = ["-", "-", "no spread: untestable"]
        else:
            first = label.split(") ", 1)[1].split(" − ")[0]
            verdict = [f"{p:.3g}", f"{holm_of[i][0]:.3g}",
                       f"yes: {first} {'higher' if mean > 0 else 'lower'}" if holm_of[i][1] else "no"]
        lines.append("| " + " | ".join([label, str(n), f"{mean:+.4f}", interval_text(seed_interval),
                                        interval_text(item_interval)] + verdict) + " |")
    return lines


# ---- exploratory: scores and differences with their intervals, no verdicts ---------------------------

def benchmark_table(results, english=ENGLISH):
    """Per multiple-choice task: its chance levels in the adapting languages, and each model's accuracy there
    (Baseline's in English), mean over seeds with its 95% interval over items; the answer prior (the choices
    scored without their context: what the surface alone gives) beside it when evaluate.py measured one."""
    models = model_names(results)
    lines = table_head(["task", "1 / choices", "majority label"]
                       + [f"{m}, {english if m.startswith('Baseline') else 'adapting'}" for m in models])
    for task in mc_tasks(results):
        levels = chance_levels(results[0], task, "adapting")
        cells = ["-", "-"] if levels is None else [f"{level:.3f}" for level in levels]
        for m in models:  # a Baseline, finetuned or not, knows no adapting language: its English
            where = english if m.startswith("Baseline") else "adapting"
            found, prior = (estimate(results, f"{task}/acc", m, where),
                            seed_values(results, f"{task}/acc_prior", m, where=where))
            cells.append("-" if found is None else f"{found[0]:.3f}"
                         + ("" if found[1] is None else f" {interval_text(found[1:], 3, '')}")
                         + (f"; prior {statistics.fmean(prior):.3f}" if prior else ""))
        lines.append(f"| {task}/acc | " + " | ".join(cells) + " |")
    return lines


def exploratory_table(rows, first_column="endpoint"):
    """rows: [(label, differences per seed, per item or None)] -> mean and 95% t-intervals, no test."""
    with_items = any(items for _, _, items in rows)
    lines = table_head([first_column, "seeds", "mean", "95% interval over seeds"]
                       + ["95% interval over items"] * with_items, range(1, 5))
    for label, seeds, items in rows:
        if not seeds:  # a metric some model lacks in this group (a task without the group's languages)
            continue
        n, mean, interval, _ = stats.t_interval(seeds)
        cells = ([label, str(n), f"{mean:+.4f}", interval_text(interval)]
                 + [interval_text(items and stats.t_interval(items)[2])] * with_items)
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def differences(results, first, second):
    """first − second per metric and group, paired within each seed."""
    rows = [(f"{metric} | μ_{g}", seed_values(results, metric, first, second, g), None)
            for metric in results[0]["metrics"] if "/layer" not in metric and metric != "perplexity"
            for g in group_names(results)]
    lines = exploratory_table([row for row in rows if row[1]], "metric | group")
    return [lines[0], "|---" + lines[1]] + lines[2:]


def tables(results):
    """Every metric: groups as rows, models as columns, mean ± std over seeds."""
    lines, models = [], model_names(results)
    for metric in (m for m in results[0]["metrics"] if "/layer" not in m):
        lines += [f"### {metric}", "", *table_head([""] + models, range(1, len(models) + 1))]
        for g in group_names(results):
            cells = [mean_std([value(r, metric, m, g) for r in results], 2 if metric == "perplexity" else 3)
                     for m in models]
            lines.append(f"| μ_{g} | " + " | ".join(cells) + " |")
        lines.append("")
    return lines


def benchmark_panels(results):
    """What plots.plot_benchmarks draws: per task its own metric by group, the controls as lines, chance levels."""
    models, groups, panels = model_names(results), group_names(results), []
    for task, spec in results[0]["tasks"].items():
        metric = f"{task}/{spec['metric']}"
        levels = chance_levels(results[0], task, "adapting") if spec["kind"] == "mc" else None
        panels.append({"title": f"{task} ({spec['metric']})", "groups": groups,
                       "bars": {m: [estimate(results, metric, m, g) for g in groups]
                                for m in models if not m.startswith("Control")},
                       "control": {m: [(estimate(results, metric, m, g) or [None])[0] for g in groups]
                                   for m in models if m.startswith("Control")},
                       "chance": [] if levels is None
                                 else list(zip(("chance: 1 / choices", "chance: majority label"), levels))})
    return panels


def read_results(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except ValueError as e:
        raise SystemExit(f"error: {path} is not valid JSON ({e}); run evaluate.py again")


def provenance(seed_dirs, command):
    """Where the numbers come from: the command, the seeds (each run's config.json) and this machine."""
    seeds = []
    for d in seed_dirs:
        path = os.path.join(d, "pretrain_standard", "config.json")
        if os.path.exists(path):
            with open(path) as f:
                seeds.append(str(json.load(f)["seed"]))
    seeds = ", ".join(seeds) or "unknown"
    machine = (f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
               f"torch {version('torch')}")
    made = f"Made by `{command}`" if command else "Made"
    return [f"{made} with seeds {seeds}, on {machine} (the machine of this report; run.sh runs the stages and the "
            "report on one).", ""]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", default="out/run/lab", help="the folder run.sh wrote (seed<S>/ inside)")
    parser.add_argument("--out", default="out/report", help="where results.md and the plots go")
    parser.add_argument("--results", default="results.json", help="each seed's evaluate.py output to report "
                        "(run.sh also writes adapted.json: the adapted models before finetuning)")
    parser.add_argument("--command", default="", help="the command that made the runs, written at the top of the page")
    args = parser.parse_args(argv)
    seed_dirs = sorted(glob.glob(os.path.join(args.runs, "seed*")))
    results_paths = [os.path.join(d, args.results) for d in seed_dirs]
    missing = [p for p in results_paths if not os.path.exists(p)]
    if not seed_dirs or missing:
        raise SystemExit(f"error: no finished run in {args.runs} (missing {missing or 'seed*/'}); "
                         "run bash run.sh first")
    results = [read_results(path) for path in results_paths]
    os.makedirs(args.out, exist_ok=True)

    # the run logs (pretraining, the resets, adaptation) go on the page of the finetuned BA and AFA, whose primary
    # endpoints they feed; a page of the models before finetuning (adapted.json) holds their evaluation only
    n, models = len(results), model_names(results)
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
    primary = primary_rows(results, adaptation)
    md = [f"# Results: {', '.join(models)} on {os.path.basename(os.path.normpath(args.runs))} "
          f"({n} seed{'s' if n > 1 else ''})", "",
          "Baseline = standard pretraining + finetuning; BA = standard pretraining + adaptation + finetuning; "
          "AFA = forgetting pretraining + adaptation + finetuning; Control = a body never pretrained (initialised; "
          "frozen while adapted), adapted and finetuned like BA and AFA: what the adaptation and finetuning data teach "
          "by themselves (_keephead: adapted keeping the old head rows; _splice: [CHEN]'s protocol, the body finetuned "
          "alone on English, then given the adapted embeddings and head; _adapted: the adapted model before "
          "finetuning, scored with plain prompts). Bits per byte compares across vocabularies; perplexity is per token "
          "of each model's own vocabulary (Baseline's is the smaller one).", "",
          *provenance(seed_dirs, args.command),
          "Reproducibility: these numbers are bit-identical when re-run on the same machine with the same software "
          "and thread counts, not across machines: another CPU or GPU, torch version or thread count changes the "
          "last digits, which can flip a close difference.", ""]
    if primary:
        md += ["## Primary endpoints (declared in docs/method.md; Holm across this table)", "",
               "Paired within each seed: the 95% t-interval over seeds and a two-sided paired t-test. An accuracy "
               "difference (c) is also paired within each item (averaged over the adapting languages and the seeds): "
               "its interval over items counts items, not translations, and its p is the larger of the two tests'. "
               "A difference that does not vary over seeds is untestable, never significant. Only a row that holds "
               "after Holm's correction across this table (family-wise α = .05) is a finding; every other table "
               "of this page is exploratory.", ""] + primary_table(primary) + [""]
    else:
        md += ["These results hold no finetuned BA and AFA: every table below is exploratory (the primary endpoints "
               "are tested in the report of results.json, which also holds the pretraining, reset and adaptation "
               "sections).", ""]
    if mc_tasks(results):
        md += ["## Benchmarks in the adapting languages (exploratory)", "",
               "Accuracy, mean over seeds, with its 95% t-interval over items (each item's correctness averaged over "
               "the adapting languages and the seeds). Two chance levels: 1 / choices (guessing) and the majority "
               "label (answering the commonest label every time, higher when the labels are unbalanced); prior: the "
               "choices scored without their context.", ""] + benchmark_table(results) + [""]
        pairs = [(first + "_adapted", second + "_adapted") for first, second in TRANSFER]
        adapted = [(f"{a} − {b}, {task}/acc, μ_adapting", seed_values(results, f"{task}/acc", a, b),
                    item_scores(results, task, a, b))
                   for task in mc_tasks(results) for a, b in pairs if {a, b} <= set(models)]
        if adapted:
            md += (["## Accuracy differences before finetuning, paired by item and seed (exploratory)", ""]
                   + exploratory_table(adapted) + [""])
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
