"""
What report.py reads from evaluate.py's results files: the models and language groups, a model's score per
seed, the per-item records paired across models, languages and seeds, chance levels, and estimates with their
95% intervals; and the compact per-item records the report publishes (items.json) to recompute its tests.

One seed's files (results.json: the finetuned models; adapted.json: the models before finetuning; chat.json:
the finetuned models asked in ChatML) are merged into one, their model names being distinct, so that a
difference can pair a model before finetuning with the same model after it.

Items are nested in seeds: every seed of run.sh draws its own lab world (docs/method.md, "Statistics"), so the
unit of every test is a seed: an item-paired difference averaged over the items and the languages of each
seed. With one seed the only interval there is counts the items of that one world.
"""

import json
import statistics
from collections import namedtuple

from evaluation import stats

ENGLISH = "en"  # the language of the instructions
PRIMARY = "acc_calibrated"  # the benchmark endpoint: accuracy with the answer prior taken out (benchmarks.py)
RECORDS = {"acc": "correct", "acc_calibrated": "correct_calibrated"}  # evaluate.py's per-item record of each
RECORD = RECORDS[PRIMARY]

# per_seed: the values the test runs over; mean: their mean; interval: 95% (None without a spread); p: the
# two-sided t-test of mean = 0 (None with one value, nan without a spread); over: "seeds", or "items" of one seed
Estimate = namedtuple("Estimate", "per_seed mean interval p over")


def merge(parts):
    """One seed's results files as one: their models, metrics, details, languages, tasks and probes together."""
    out = {"settings": parts[0].get("settings", {}), "models": {}, "metrics": {}, "details": {}, "languages": {},
           "groups": [], "tasks": {}}
    for part in parts:
        for key in ("models", "details", "languages"):
            out[key].update(part.get(key, {}))
        out["groups"] += [g for g in part.get("groups", []) if g not in out["groups"]]
        for metric, per_model in part["metrics"].items():
            out["metrics"].setdefault(metric, {}).update(per_model)
        for task, spec in part["tasks"].items():
            langs = out["tasks"].setdefault(task, {**spec, "langs": []})["langs"]
            langs += [lang for lang in spec["langs"] if lang not in langs]
        if part.get("probe"):
            probe = out.setdefault("probe", {**part["probe"], "models": {}})
            probe["models"].update(part["probe"]["models"])
    return out


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
    """A model's score in a language group, in one language if `where` is a language code, or the mean over a
    tuple of languages (None if one lacks it)."""
    entry = result["metrics"].get(metric, {}).get(model, {})
    if isinstance(where, tuple):
        found = [entry.get("langs", {}).get(lang) for lang in where]
        return None if None in found or not found else statistics.fmean(found)
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
    """A task's languages in `where`: a language group, one language, or a tuple of languages."""
    langs = result["tasks"].get(task, {}).get("langs", [])
    if isinstance(where, tuple):
        return [lang for lang in langs if lang in where]
    return [lang for lang in langs if where in (lang, result["languages"].get(lang))]


def task_detail(result, model, task, lang):
    return result.get("details", {}).get(model, {}).get("tasks", {}).get(task, {}).get(lang, {})


def paired_items(result, task, first, second=None, where="adapting", record=RECORD):
    """{(language, item): first's correctness minus second's (or first's alone)} over the items both scored in
    the languages of `where`. Item k is the k-th example of every language's file, with the same meaning and
    label in each (the lab's files are parallel, as translated benchmarks are). A language where either model
    lacks the record is left out."""
    out = {}
    for lang in selected_langs(result, task, where):
        a = task_detail(result, first, task, lang).get(record)
        b = task_detail(result, second, task, lang).get(record) if second else "0" * len(a or "")
        for k, (x, y) in enumerate(zip(a or "", b or "")):
            if "-" not in (x, y):
                out[lang, k] = int(x) - int(y)
    return out


def seed_means(results, task, first, second=None, where="adapting", record=RECORD):
    """Per seed: the item-paired difference (or first's accuracy) averaged over the items and the languages, the
    values the test over seeds runs on; a seed without the records is left out."""
    per_seed = [paired_items(r, task, first, second, where, record) for r in results]
    return [statistics.fmean(pairs.values()) for pairs in per_seed if pairs]


def item_means(results, task, first, second=None, where="adapting", record=RECORD):
    """Per item: the paired difference averaged over the languages (and the seeds): its translations are one
    observation, so an interval over these counts items, not items x languages. Within one seed's world."""
    sums, counts = {}, {}
    for r in results:
        for (_, k), d in paired_items(r, task, first, second, where, record).items():
            sums[k], counts[k] = sums.get(k, 0) + d, counts.get(k, 0) + 1
    return [sums[k] / counts[k] for k in sorted(sums)]


def test_over_seeds(values):
    """The Estimate of per-seed values: the paired t-test over seeds (df = seeds − 1)."""
    n, mean, interval, p = stats.t_interval(values)
    return Estimate(values, mean, interval, p, "seeds")


def paired_estimate(results, task, first, second=None, where="adapting", record=RECORD):
    """The Estimate of an item-paired difference (or of first's accuracy): over the seeds when there are two or
    more; over the items of the one seed's world otherwise. None without records."""
    per_seed = seed_means(results, task, first, second, where, record)
    if len(per_seed) != 1:
        return test_over_seeds(per_seed) if per_seed else None
    _, _, interval, p = stats.t_interval(item_means(results, task, first, second, where, record))
    return Estimate(per_seed, per_seed[0], interval, p, "items")


def estimate(results, metric, model, where):
    """(mean over seeds, low, high) of a model's score: the 95% t-interval over seeds, or for an accuracy of
    one seed over its items; low and high None without a spread, an accuracy's interval cut to [0, 1]."""
    values = seed_values(results, metric, model, where=where)
    if not values:
        return None
    task, _, name = metric.partition("/")
    found = paired_estimate(results, task, model, where=where, record=RECORDS[name]) if name in RECORDS else None
    low, high = (found or test_over_seeds(values)).interval or (None, None)
    if name in RECORDS and low is not None:  # an accuracy lies in [0, 1], wherever the normal approximation reaches
        low, high = max(0.0, low), min(1.0, high)
    return statistics.fmean(values), low, high


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


# ---- the published records: what the primary table and the gate are computed from -----------------------

KEPT = ("n", "chance", "majority", RECORD)  # of each task and language's details
KEPT_GROUPS = ("pretraining", "adapting")  # the languages of the gate and the transfer endpoints


def published(merged, models, metrics, seeds, adaptation):
    """items.json's content, what the gate and the primary table read: per seed, of the given models, the per-item
    records of the endpoint (and the chance levels) in the pretraining and adapting languages, and the given
    metrics per language group and in English; the seeds; and the adaptation runs' bits per byte per seed
    (endpoint (a), from the run logs)."""
    def keep(entry):
        return {"groups": entry.get("groups", {}), "langs": {k: v for k, v in entry["langs"].items() if k == ENGLISH}}
    pruned = []
    for r in merged:
        langs = [lang for lang, g in r["languages"].items() if g in KEPT_GROUPS]
        tasks = [t for t, spec in r["tasks"].items() if spec["kind"] == "mc"]
        pruned.append({
            "languages": {lang: r["languages"][lang] for lang in langs}, "groups": list(KEPT_GROUPS),
            "tasks": {t: {**r["tasks"][t], "langs": [lang for lang in r["tasks"][t]["langs"] if lang in langs]}
                      for t in tasks},
            "models": {m: {} for m in models if m in r["models"]},
            "metrics": {metric: {m: keep(e) for m, e in r["metrics"][metric].items() if m in models}
                        for metric in metrics if metric in r["metrics"]},
            "details": {m: {"tasks": {t: {lang: {k: d[k] for k in KEPT if k in d}
                                          for lang, d in r["details"][m]["tasks"].get(t, {}).items() if lang in langs}
                                      for t in tasks}}
                        for m in models if m in r["details"]}})
    return {"seeds": seeds, "results": pruned,
            "adaptation": {mode: {str(tokens): kinds for tokens, kinds in points.items()}
                           for mode, points in adaptation.items()}}


def read_published(path):
    """(merged results per seed, adaptation summary, seeds) from an items.json that published() wrote."""
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    adaptation = {mode: {int(tokens): {kind: [tuple(p) for p in per_seed] for kind, per_seed in kinds.items()}
                         for tokens, kinds in points.items()}
                  for mode, points in data["adaptation"].items()}
    return data["results"], adaptation, data["seeds"]
