"""
The tested part of the report: the positive controls and the gate they make (controls.py's rules), then the
primary endpoints that docs/method.md declares, each tested over the per-seed values and corrected by Holm across
their family. report.py prints these lines on its page, and again from the published records alone
(report.py --from_items items.json); so do the markdown helpers both pages use.
"""

import math

from evaluation import controls, stats
from evaluation import results as res

TRANSFER = (("AFA", "BA"), ("BA", "Control"), ("AFA", "Control"))  # the accuracy differences of endpoint (c)
SELF_SIM = ("self_sim", "anisotropy", "self_sim_adjusted")  # raw, the baseline of different words, raw - baseline


def interval_text(interval, digits=4, sign="+"):
    return "-" if interval is None else f"[{interval[0]:{sign}.{digits}f}, {interval[1]:{sign}.{digits}f}]"


def per_seed_text(values):
    return ", ".join(f"{v:+.4f}" for v in values)


def table_head(cells, right=()):
    """A markdown header; the columns numbered in `right` are right-aligned."""
    return ["|" + "|".join(f" {c} " if c else " " for c in cells) + "|",
            "|" + "".join("---:|" if i in right else "---|" for i in range(len(cells)))]


# ---- the gate: positive controls, and the tasks the Baseline reads ------------------------------------

CONTROL_NAMES = {"(i)": "English finetuning gain (finetuned − pretrained Baseline, English)",
                 "(ii)": "zero-shot gain (the same, in the Baseline's other pretraining languages)",
                 "(iii)": "its ceiling (Baseline finetuned on the translated instructions − pretrained, there)"}


def gate_section(merged):
    """The positive controls with their verdicts, and the tasks that enter the family: (lines, whether (ii) holds,
    {task: reason it is left out})."""
    found = controls.controls(merged)
    verdict = controls.verdicts(found)
    over = "the items of its one world" if len(merged) == 1 else "seeds"
    lines = ["## Positive controls: the gate of the transfer endpoints (declared in docs/method.md)", "",
             f"Gains in {res.PRIMARY} (the answer prior taken out), paired by item, plain prompts before and after "
             f"finetuning; 95% t-interval over {over}. (i) and (ii) hold when the interval is above 0 on at least "
             f"{controls.NEEDED} multiple-choice tasks, (iii) when it is above 0 and above (ii)'s mean on at least "
             f"{controls.NEEDED}; the transfer endpoints (c) are interpreted only when (ii) holds.", "",
             *table_head(["control", "task", "seeds", "mean", "per seed", "95% interval", "above 0?"], range(2, 6))]
    for control, per_task in found.items():
        for task, e in per_task.items():
            lines.append(f"| {control} | {task} | {len(e.per_seed)} | {e.mean:+.4f} | {per_seed_text(e.per_seed)} | "
                         f"{interval_text(e.interval)} | {'yes' if controls.above_zero(e) else 'no'} |")
    lines.append("")
    for control, holds in verdict.items():
        state = {True: "holds", False: "fails", None: "not measured"}[holds]
        lines.append(f"- {control} {CONTROL_NAMES[control]}: **{state}**")
    left_out = {}
    for task in res.mc_tasks(merged):
        reads, reason = controls.reads_in_english(merged, task)
        if not reads:
            left_out[task] = reason
    family = [t for t in res.mc_tasks(merged) if t not in left_out]
    lines += ["", f"Tasks of the family: {', '.join(family) or 'none'}."
              + "".join(f" Left out: {task}: {reason}." for task, reason in left_out.items()), ""]
    return lines, verdict["(ii)"] is True, left_out


# ---- primary endpoints: tests, Holm across the declared family ----------------------------------------

def primary_rows(merged, adaptation, interpreted=True, left_out=None):
    """The family docs/method.md declares ("Primary endpoints"): [(label, differences per seed, status)]; status
    None (tested), "not interpreted: ..." (tested, in the family, no verdict) or "left out: ..." (not in the
    family). Empty unless the results hold the finetuned BA and AFA: a report of adapted.json is exploratory."""
    models, left_out = res.model_names(merged), left_out or {}
    if not {"BA", "AFA"} <= set(models):
        return []
    rows = [(f"(a) forgetting − standard, adapting bpb, {mode}, {tokens:,} tokens",
             [f[0] - s[0] for s, f in zip(k["standard"], k["forgetting"])], None)
            for mode, points in adaptation.items() for tokens, k in points.items()]
    rows += [(f"(b) AFA − BA, bpb, μ_{g}", res.seed_values(merged, "bpb", "AFA", "BA", g), None)
             for g in ("adapting", "pretraining")]
    gate = None if interpreted else "not interpreted: positive control (ii) fails"
    rows += [(f"(c) {a} − {b}, {task}/{res.PRIMARY}, μ_adapting", res.seed_means(merged, task, a, b),
              f"left out: {left_out[task]}" if task in left_out else gate)
             for task in res.mc_tasks(merged) for a, b in TRANSFER if b in models]
    rows += [(f"(d) AFA − BA, {metric}, μ_{g}", res.seed_values(merged, metric, "AFA", "BA", g), None)
             for metric in SELF_SIM for g in ("adapting", "pretraining")]
    return [row for row in rows if row[1]]


def primary_table(rows, alpha=0.05):
    """Each row's paired t-test over the per-seed values (df = seeds − 1); Holm across the rows of the family
    (every row but those left out of it; an untestable row counts as p = 1)."""
    tests = [(label, seeds, status, stats.t_interval(seeds)) for label, seeds, status in rows]
    family = [i for i, t in enumerate(tests) if t[3][3] is not None and not (t[2] or "").startswith("left out")]
    adjusted, holds = stats.holm([tests[i][3][3] for i in family], alpha)
    holm_of = dict(zip(family, zip(adjusted, holds)))
    lines = table_head(["endpoint", "seeds", "mean", "per seed", "95% interval over seeds", "p", "Holm p",
                        f"holds (α = {alpha:g})?"], range(1, 7))
    for i, (label, seeds, status, (n, mean, interval, p)) in enumerate(tests):
        if i not in holm_of and status:
            verdict = ["-", "-", status]
        elif p is None:
            verdict = ["-", "-", "one seed: no test"]
        elif math.isnan(p):
            verdict = ["-", "-", "no spread: untestable"]
        else:
            first = label.split(") ", 1)[1].split(" − ")[0]
            verdict = [f"{p:.3g}", f"{holm_of[i][0]:.3g}", status or
                       (f"yes: {first} {'higher' if mean > 0 else 'lower'}" if holm_of[i][1] else "no")]
        lines.append("| " + " | ".join([label, str(n), f"{mean:+.4f}", per_seed_text(seeds), interval_text(interval)]
                                       + verdict) + " |")
    return lines


def tested_sections(merged, adaptation):
    """The gate and the primary table: what items.json recomputes (report.py --from_items)."""
    gate, interpreted, left_out = gate_section(merged)
    primary = primary_rows(merged, adaptation, interpreted, left_out)
    if not primary:
        return []
    return gate + ["## Primary endpoints (declared in docs/method.md; Holm across this table)", "",
                   "Paired within each seed; a benchmark difference (c) is paired by item too, and its value per seed "
                   "is the item-paired difference averaged over the items and the adapting languages of that seed's "
                   "world. The 95% t-interval over seeds and a two-sided paired t-test (df = seeds − 1). A difference "
                   "that does not vary over seeds is untestable, never significant. Only a row that holds after "
                   "Holm's correction across this table (family-wise α = .05) is a finding; a row left out of the "
                   "family is not tested, and a transfer row whose gate fails is tested but not interpreted. Every "
                   "other table of this page is exploratory.", "", *primary_table(primary), ""]
