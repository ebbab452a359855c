"""
The positive controls docs/method.md declares, the gate they make for the transfer endpoints, and which tasks
may enter the primary family: what the lab must show the Baseline can do before it is asked whether
forgetting helps transfer. Each control is a gain in acc_calibrated (results.PRIMARY), paired by item, every
model scored with plain prompts, finetuned (results.json) and before finetuning (adapted.json) alike:

  (i)   English finetuning:  finetuned Baseline − pretrained Baseline, in English;
  (ii)  zero-shot transfer:  the same difference in the Baseline's other pretraining languages (their mean):
        English finetuning reaching languages the body already reads;
  (iii) its ceiling:         the Baseline finetuned on the same instructions translated into those languages
        (Baseline_translated) − the pretrained Baseline, there.

(i) and (ii) hold when their 95% interval lies above 0 on at least two multiple-choice tasks; (iii) holds when,
on at least two tasks, its interval lies above 0 and its mean above (ii)'s. The transfer endpoints (c) are
interpreted only when (ii) holds: a lab where English finetuning does not reach the languages the Baseline
was pretrained in cannot say whether it reaches adapted ones.
"""

from evaluation import results as res

PRETRAINED, FINETUNED, TRANSLATED = "Baseline_pretrained", "Baseline", "Baseline_translated"
NEEDED = 2  # tasks on which a control must hold


def others(result):
    """The Baseline's pretraining languages other than English (where (ii) and (iii) are read)."""
    return tuple(lang for lang, g in result["languages"].items() if g == "pretraining" and lang != res.ENGLISH)


def controls(merged):
    """{control: {task: Estimate}} of the three controls on every multiple-choice task ({} where not measured)."""
    where = {"(i)": (FINETUNED, res.ENGLISH), "(ii)": (FINETUNED, others(merged[0])),
             "(iii)": (TRANSLATED, others(merged[0]))}
    out = {}
    for control, (model, langs) in where.items():
        found = {task: res.paired_estimate(merged, task, model, PRETRAINED, langs) for task in res.mc_tasks(merged)}
        out[control] = {task: e for task, e in found.items() if e is not None}
    return out


def above_zero(estimate):
    return estimate.interval is not None and estimate.interval[0] > 0


def verdicts(found):
    """{control: True, False or None (not measured)} by the rules of the module docstring."""
    out = {c: sum(map(above_zero, found[c].values())) >= NEEDED if found[c] else None for c in ("(i)", "(ii)")}
    ceiling = [t for t, e in found["(iii)"].items() if above_zero(e) and t in found["(ii)"]
               and e.mean > found["(ii)"][t].mean]
    out["(iii)"] = len(ceiling) >= NEEDED if found["(iii)"] and found["(ii)"] else None
    return out


def reads_in_english(merged, task):
    """Whether a task may enter the primary family, judged on the finetuned Baseline alone, in English: its
    acc_calibrated interval lies above the better chance level (1 / choices, the majority label), and its
    accuracy above the answer prior (acc_prior: the choices scored without their context). (True/False/None
    when not measured, the reason)."""
    found = res.paired_estimate(merged, task, FINETUNED, where=res.ENGLISH)
    levels = res.chance_levels(merged[0], task, res.ENGLISH)
    acc = res.seed_values(merged, f"{task}/acc", FINETUNED, where=res.ENGLISH)
    prior = res.seed_values(merged, f"{task}/acc_prior", FINETUNED, where=res.ENGLISH)
    if found is None or levels is None or not acc or not prior:
        return None, "not measured in the Baseline's English"
    chance = max(levels)
    if found.interval is None or found.interval[0] <= chance:
        return False, f"the Baseline's English {res.PRIMARY} is not above chance ({chance:.3f})"
    if sum(acc) <= sum(prior):
        return False, f"the Baseline's English acc is not above its answer prior ({sum(prior) / len(prior):.3f})"
    return True, ""
