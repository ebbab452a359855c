"""report.py on fake run folders: recoveries after resets, the positive controls and their gate, the primary
endpoints tested over seeds with Holm across their family, the published per-item records that recompute them,
chance levels, the control, and the exploratory tables."""

import json
import os
import subprocess
import sys

import pytest

import report
from conftest import ROOT
from evaluation import controls, plots, primary, runs, stats
from evaluation import results as res


def write_log(folder, records):
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "log.jsonl"), "w") as f:
        f.writelines(json.dumps(r) + "\n" for r in records)


def test_recoveries_count_steps_back_to_the_pre_reset_loss():
    # loss 2.0 until the reset at step 20, then 5.0 falling by 0.25 a step: back at 2.0 after 12 steps
    log = [{"step": s, "loss": 2.0} for s in range(20)]
    log += [{"step": 20 + i, "loss": max(5.0 - 0.25 * i, 1.9), **({"forget": True} if i == 0 else {})}
            for i in range(30)]
    (reset, steps, censored), = runs.recoveries(log, window=1)
    assert (reset, steps, censored) == (20, 12, False)
    # never back before the run ends: censored at the episode length
    log = ([{"step": s, "loss": 2.0} for s in range(20)]
           + [{"step": 20 + i, "loss": 5.0, **({"forget": True} if i == 0 else {})} for i in range(10)])
    assert runs.recoveries(log, window=1) == [(20, 10, True)]


def test_adaptation_summary_pairs_standard_and_forgetting_within_each_seed(tmp_path):
    # forgetting is 0.4, 0.5, 0.6 better than standard in the three seeds, while the seeds themselves differ by
    # far more: the unpaired means overlap, the paired differences do not
    seeds = []
    for i, (offset, gain) in enumerate(((0.0, 0.4), (2.0, 0.5), (4.0, 0.6))):
        seed = tmp_path / f"seed{i}"
        for mode in ("relearn", "adapt"):
            for kind, bpb in (("standard", 3.0 + offset), ("forgetting", 3.0 + offset - gain)):
                write_log(seed / f"{mode}_{kind}_1000", [{"step": 0, "val_bpb": 9.0},
                                                         {"step": 5, "val_bpb": bpb, "val_bpb_mean_pretraining": 1.0}])
        (seed / "adapt_standard_1000.log").write_text("run.sh's log of the run: not a run folder\n")
        seeds.append(str(seed))
    summary = runs.adaptation_summary(seeds)
    assert set(summary) == {"relearn", "adapt"}  # no keephead runs, no keephead table
    plots.plot_adaptation(summary, runs.ADAPT_MODES, str(tmp_path / "adaptation.png"))
    assert (tmp_path / "adaptation.png").stat().st_size > 1000
    for mode in ("relearn", "adapt"):
        header, _, row = report.adaptation_table(summary[mode])
        # differences -0.4, -0.5, -0.6: mean -0.5, sd 0.1, interval -0.5 ± 4.3027 * 0.1 / sqrt 3 = -0.5 ± 0.2484
        assert row == "| 1,000 | 5.000 ± 2.000 | 4.500 ± 1.900 | 3 | -0.5000 | [-0.7484, -0.2516] |"


def test_primary_table_corrects_across_the_family():
    # p = 0.01306 twice (differences ∓0.4, ∓0.5, ∓0.6: t = 8.660 with 2 df) and p = 0.0742 (differences 1, 2, 3): Holm
    # multiplies the two smallest by 3 and 2 (0.0392 for both: an adjusted p never falls below the one before it), the
    # largest by 1
    rows = [("(a) forgetting − standard, x", [-0.4, -0.5, -0.6], None), ("(b) AFA − BA, y", [0.6, 0.5, 0.4], None),
            ("(b) AFA − BA, z", [1.0, 2.0, 3.0], None)]
    cells = [row.split(" | ") for row in primary.primary_table(rows)[2:]]
    assert cells[0][3] == "-0.4000, -0.5000, -0.6000"  # the values per seed beside every row
    assert ([c[5] for c in cells] == ["0.0131", "0.0131", "0.0742"]
            and [c[6] for c in cells] == ["0.0392", "0.0392", "0.0742"])
    assert [c[7] for c in cells] == ["yes: forgetting lower |", "yes: AFA higher |", "no |"]


def test_primary_table_untestable_left_out_and_uninterpreted_rows():
    rows = [("(c) AFA − BA, t/acc_calibrated, μ_adapting", [1 / 150] * 5, None),  # the same step in every seed
            ("(c) BA − Control, t/acc_calibrated, μ_adapting", [0.19, 0.2, 0.21, 0.2, 0.2], "not interpreted: (ii)"),
            ("(c) BA − Control, u/acc_calibrated, μ_adapting", [0.01, 0.2, 0.3, 0.2, 0.2], "left out: near chance"),
            ("(b) AFA − BA, bpb, μ_adapting", [0.19, 0.2, 0.21, 0.2, 0.2], None), ("(b) AFA − BA, z", [0.1], None)]
    untestable, uninterpreted, left_out, tested, one = [row.split(" | ") for row in primary.primary_table(rows)[2:]]
    assert untestable[4] == "-" and untestable[7] == "no spread: untestable |"  # never p = 0
    # a row whose gate fails is tested and stays in the family, but gets no verdict; a row left out is not tested
    p = stats.t_interval([0.19, 0.2, 0.21, 0.2, 0.2])[3]
    assert float(uninterpreted[5]) == pytest.approx(p, rel=1e-2) and uninterpreted[7] == "not interpreted: (ii) |"
    assert left_out[5:] == ["-", "-", "left out: near chance |"] and left_out[4] != "-"
    # the family: the untestable row (as p = 1), the uninterpreted and the tested row, not the left-out one: 3 x p
    assert float(tested[6]) == pytest.approx(min(1.0, 3 * p), rel=1e-2) and tested[7] == "yes: AFA higher |"
    assert one[7] == "one seed: no test |"


# fake runs: ten items in every language, the same answers in every language of a group; the seeds' own worlds are
# modelled by answers that change with the seed. Pretraining languages en and qcy, adapting qen and qgr, other qka.
LANGS = {"en": "pretraining", "qcy": "pretraining", "qen": "adapting", "qgr": "adapting", "qka": "other"}
GROUPS = ("pretraining", "adapting", "other")


def ones(k, n=10):
    return "1" * k + "0" * (n - k)


# correctness strings per model: (seed i, language) -> string. The Baseline gains 0.2 or 0.3 through finetuning in
# English and in qcy (controls (i) and (ii)), 0.4 or 0.5 when finetuned in qcy itself (the ceiling (iii)); BA − Control
# is 0.2, 0.3, 0.4 over the seeds, AFA − BA 0.1 in every seed (no spread)
CORRECT = {"Baseline_pretrained": lambda i, lang: ones({"en": 5, "qcy": 3}.get(lang, 1)),
           "Baseline": lambda i, lang: ones({"en": 7, "qcy": 5}.get(lang, 1) + i % 2),
           "Baseline_translated": lambda i, lang: ones({"en": 7, "qcy": 7}.get(lang, 1) + i % 2),
           "BA": lambda i, lang: ones(3 + i), "AFA": lambda i, lang: ones(4 + i), "Control": lambda i, lang: ones(1)}
CORRECT |= {f"{m}_adapted": CORRECT[m] for m in ("BA", "AFA", "Control")}
CORRECT |= {f"{m}_chatml": lambda i, lang, m=m: ones(max(0, CORRECT[m](i, lang).count("1") - 1))
            for m in ("Baseline", "BA", "AFA", "Control")}  # ChatML: one item fewer
BPB = {"Baseline": 3.0, "BA": 2.0, "AFA": 1.9, "Control": 4.0, "Baseline_translated": 3.1, "Baseline_pretrained": 2.9,
       "BA_adapted": 1.5, "AFA_adapted": 1.5, "Control_adapted": 3.95}
LEVELS = {"chance": 0.5, "majority": 0.5}  # 2 choices, balanced labels


def fake_results(seed, models, tasks=("lab_copa", "lab_read"), langs=None, correct=None, probe=None):
    """A results file as evaluate.py writes it: the models' records on every task, and the scores they give."""
    langs, correct = langs or LANGS, {**CORRECT, **(correct or {})}

    def entry(per_lang):
        means = {g: [v for lang, v in per_lang.items() if langs[lang] == g or g == "overall"]
                 for g in list(GROUPS) + ["overall"]}
        return {"langs": per_lang, "groups": {g: sum(v) / len(v) if v else None for g, v in means.items()}}
    metrics = {"bpb": {m: entry({lang: BPB.get(m, 2.5) + 0.01 * seed for lang in langs}) for m in models}}
    for task in tasks:
        for name in ("acc", "acc_calibrated"):
            metrics[f"{task}/{name}"] = {m: entry({lang: correct[m](seed, lang).count("1") / 10 for lang in langs})
                                         for m in models}
        metrics[f"{task}/acc_prior"] = {m: entry(dict.fromkeys(langs, 0.5)) for m in models}
    out = {"settings": {"max_examples": 10}, "models": {m: {} for m in models}, "groups": list(GROUPS),
           "languages": langs, "tasks": {t: {"kind": "mc", "metric": "acc", "langs": list(langs)} for t in tasks},
           "metrics": metrics,
           "details": {m: {"tasks": {t: {lang: {"n": 10, "correct": correct[m](seed, lang),
                                                "correct_calibrated": correct[m](seed, lang), **LEVELS}
                                         for lang in langs} for t in tasks}} for m in models}}
    if probe:
        out["probe"] = {"task": "lab_read", "n": 10, "models": probe}
    return out


FINETUNED = ("Baseline", "BA", "AFA", "Control", "Baseline_translated")
BEFORE = ("Baseline_pretrained", "BA_adapted", "AFA_adapted", "Control_adapted")
CHAT = tuple(f"{m}_chatml" for m in ("Baseline", "BA", "AFA", "Control"))


def write_fake_runs(tmp_path, n_seeds, files=None, **kwargs):
    """run.sh's folders: per seed the run logs, results.json, adapted.json and chat.json (files: {name: models})."""
    files = files or {"results.json": FINETUNED, "adapted.json": BEFORE, "chat.json": CHAT}
    run_dir = tmp_path / "runs"
    for i in range(n_seeds):
        seed = run_dir / f"seed{i}"
        log = [{"step": s, "loss": 2.0, **({"forget": True} if s == 10 else {})} for s in range(20)]
        for name in ("standard", "forgetting"):
            write_log(seed / f"pretrain_{name}", log)
            (seed / f"pretrain_{name}" / "config.json").write_text(json.dumps({"seed": 11 + i}))
            write_log(seed / f"adapt_{name}_1000",
                      [{"step": 5, "val_bpb": 2.0 + i + (name == "standard") * (0.1 + 0.01 * i)}])
        for name, models in files.items():
            probe = {"Baseline_pretrained": {"qcy": [0.1, 0.2 + 0.1 * i]}} if name == "adapted.json" else None
            (seed / name).write_text(json.dumps(fake_results(i, models, probe=probe, **kwargs)))
    return run_dir


def run_report(run_dir, out, *extra, capsys=None):
    """report.py in-process (the command line's own main): the page it wrote, or with --from_items what it printed."""
    report.main(["--runs", str(run_dir), "--out", str(out), *extra])
    return capsys.readouterr().out if capsys else (out / "results.md").read_text()


def interval(values, digits=4, sign="+"):
    low, high = stats.t_interval(values)[2]
    return f"[{low:{sign}.{digits}f}, {high:{sign}.{digits}f}]"


def section(md, title):
    return md.split(f"## {title}")[1].split("\n## ")[0]


def test_report_on_fake_runs(tmp_path):
    md = run_report(write_fake_runs(tmp_path, 3), tmp_path / "report", "--command", "SEEDS=3 bash run.sh")
    assert "Made by `SEEDS=3 bash run.sh` with seeds 11, 12, 13, each its own lab world, on " in md
    # the gate: (i) and (ii) gain 0.2, 0.3, 0.2 on both tasks, (iii) 0.4, 0.5, 0.4: all hold
    gate = section(md, "Positive controls")
    assert f"| (ii) | lab_copa | 3 | +0.2333 | +0.2000, +0.3000, +0.2000 | {interval([0.2, 0.3, 0.2])} | yes |" in gate
    assert [line.split("**")[1] for line in gate.splitlines() if line.startswith("- (")] == ["holds"] * 3
    assert "Tasks of the family: lab_copa, lab_read." in gate
    primary = section(md, "Primary endpoints")
    # (a) forgetting − standard = -0.10, -0.11, -0.12; (b) AFA − BA bits per byte -0.10 in every seed: untestable
    assert ("| (a) forgetting − standard, adapting bpb, adapt, 1,000 tokens | 3 | -0.1100 | -0.1000, -0.1100, -0.1200 "
            "| [-0.1348, -0.0852] |" in primary)
    # (c): per seed, the item-paired difference averaged over the items and the adapting languages
    assert ("| (c) BA − Control, lab_copa/acc_calibrated, μ_adapting | 3 | +0.3000 | +0.2000, +0.3000, +0.4000 | "
            "[+0.0516, +0.5484] |" in primary)
    assert "| (c) AFA − BA, lab_read/acc_calibrated, μ_adapting | 3 | +0.1000 | " in primary
    assert "no spread: untestable" in primary and "(d)" not in primary  # no self-similarity in these results
    # before and after finetuning, the same bytes: BA 1.5 -> 2.0 rises by 0.5, more than 0.10; the Control's 0.05 not
    bpb = section(md, "Bits per byte before and after finetuning")
    assert "| BA | μ_adapting | 1.510 | 2.010 | +0.500 | +0.5000, +0.5000, +0.5000 | no |" in bpb
    assert "| Control | μ_adapting | 3.960 | 4.010 | +0.050 | " in bpb and bpb.count("| yes |") == 2
    # ChatML beside the plain prompts: one item fewer in every seed
    chat = section(md, "Plain prompts and ChatML")
    assert "| Baseline, en | 0.733 / 0.633 | 0.733 / 0.633 |" in chat and "| BA, adapting | 0.400 / 0.300 |" in chat
    probe = section(md, "Retrieval probe")
    assert "chance 0.100" in probe and "| Baseline_pretrained | qcy | 0.100 | 0.300 |" in probe
    # the benchmarks: acc_calibrated with its interval over seeds, acc and the prior beside; the translated Baseline
    # read where its instructions were
    bench = section(md, "Benchmarks")
    assert "| task | 1 / choices | majority label | Baseline, en | BA, adapting |" in bench
    assert "Baseline_translated, pretraining, not en |" in bench
    assert f"| lab_copa | 0.500 | 0.500 | 0.733 {interval([0.7, 0.8, 0.7], 3, '')}; acc 0.733; prior 0.500 |" in bench
    assert "| lab_copa/acc_calibrated | μ_adapting | 3 | +0.1000 | " in md  # AFA − BA, exploratory, every metric
    assert "| 1,000 | 3.110 ± 1.010 | 3.000 ± 1.000 | 3 | -0.1100 | [-0.1348, -0.0852] |" in md
    for png in ("pretraining_loss.png", "recovery.png", "adaptation.png", "benchmarks.png"):
        assert (tmp_path / "report" / png).stat().st_size > 1000


def test_the_published_records_recompute_the_gate_and_the_primary_table(tmp_path, capsys):
    """report.py --from_items docs/lab/items.json prints the page's gate and primary table again, from the records
    alone: every line equal."""
    out = tmp_path / "report"
    md = run_report(write_fake_runs(tmp_path, 3), out)
    tested = md.split("## Positive controls")[1].split("## Bits per byte")[0]
    assert os.path.getsize(out / "items.json") < 40_000  # compact: the records of the endpoint's models only
    capsys.readouterr()
    again = run_report(tmp_path / "runs", tmp_path / "unused", "--from_items", str(out / "items.json"), capsys=capsys)
    assert "seeds 11, 12, 13" in again and again.split("## Positive controls")[1].strip() == tested.strip()


def test_a_failing_control_ii_leaves_the_transfer_rows_uninterpreted(tmp_path):
    """English finetuning that does not reach qcy: (ii) fails, the (c) rows print their numbers without a verdict
    ((iii), finetuning in qcy itself, still holds: it is above a zero (ii))."""
    same = {"Baseline": lambda i, lang: ones({"en": 7 + i % 2}.get(lang, 3 if lang == "qcy" else 1))}
    md = run_report(write_fake_runs(tmp_path, 3, correct=same), tmp_path / "report")
    gate = section(md, "Positive controls")
    assert [line.split("**")[1] for line in gate.splitlines() if line.startswith("- (")] == ["holds", "fails", "holds"]
    primary = section(md, "Primary endpoints")
    row = next(line for line in primary.splitlines() if line.startswith("| (c) BA − Control, lab_copa"))
    assert row.endswith("| not interpreted: positive control (ii) fails |") and "[+0.0516, +0.5484]" in row


def test_a_task_the_baseline_does_not_read_in_english_leaves_the_family(tmp_path):
    """A task where the finetuned Baseline's English is at chance in every seed is not tested; the page says why."""
    chance = {m: (lambda i, lang: ones(5)) for m in CORRECT}
    md = run_report(write_fake_runs(tmp_path, 3, tasks=("lab_nli",), correct=chance), tmp_path / "report")
    gate = section(md, "Positive controls")
    assert "Tasks of the family: none. Left out: lab_nli: the Baseline's English acc_calibrated is not above" in gate
    assert "| left out: the Baseline's English acc_calibrated is not above chance (0.500) |" in md


def test_a_seed_is_the_unit_item_paired_differences_averaged_over_items_and_languages():
    """Items paired within a language, averaged over the items both models scored and the languages of the group:
    an item one model did not score (-) drops out of the pair; a language a model was not asked is left out."""
    result = fake_results(0, ("BA", "Control"), tasks=("t",))
    result["details"]["BA"]["tasks"]["t"]["qen"]["correct_calibrated"] = "1-11000000"
    result["details"]["Control"]["tasks"]["t"]["qgr"]["correct_calibrated"] = "0000000011"
    del result["details"]["Control"]["tasks"]["t"]["qka"]
    pairs = res.paired_items(result, "t", "BA", "Control", "adapting")
    assert len(pairs) == 19 and pairs["qen", 0] == 0 and pairs["qgr", 9] == -1
    # qen: 1 - 1, 1 - 0, 1 - 0 over 9 items = 2 / 9; qgr: 3 ones - 2 ones over 10 = 1 / 10
    assert res.seed_means([result], "t", "BA", "Control") == [pytest.approx(3 / 19)]
    assert res.seed_means([result], "t", "BA", "Control", where="qka") == []


def test_one_seed_is_tested_over_the_items_of_its_world():
    """With one seed the gate's interval counts items (of that one world), not items x languages."""
    correct = "11010011101100100111"
    langs = {f"q{k}": "adapting" for k in range(6)}
    result = fake_results(0, ("BA",), tasks=("t",), langs=langs, correct={"BA": lambda i, lang: correct})
    found = res.paired_estimate([result], "t", "BA")
    one_language = [int(c) for c in correct]
    assert found.over == "items" and found.interval == stats.t_interval(one_language)[2]
    mean, low, high = res.estimate([result], "t/acc_calibrated", "BA", "adapting")
    assert (low, high) == found.interval and high - low > 2 * (stats.t_interval(one_language * 6)[2][1] - 0.6)


def estimate(*per_seed):
    return res.test_over_seeds(list(per_seed))


def test_the_gate_rules():
    """(i), (ii): the interval above 0 on at least two tasks; (iii): on at least two tasks above 0 and above (ii)."""
    high, low, none = estimate(0.2, 0.3, 0.2), estimate(-0.1, 0.2, 0.05), estimate(0.5, 0.6, 0.5)
    found = {"(i)": {"a": high, "b": high}, "(ii)": {"a": high, "b": low, "c": high}, "(iii)": {"a": none, "c": high}}
    # (iii) on c is not above (ii)'s mean there
    assert controls.verdicts(found) == {"(i)": True, "(ii)": True, "(iii)": False}
    found["(iii)"]["c"] = none
    assert controls.verdicts(found)["(iii)"] is True
    found["(ii)"]["c"] = low
    assert controls.verdicts(found)["(ii)"] is False
    assert controls.verdicts({"(i)": {}, "(ii)": {}, "(iii)": {}}) == {"(i)": None, "(ii)": None, "(iii)": None}


def test_report_reads_another_results_file(tmp_path):
    """--results adapted.json: the adapted models before finetuning, all exploratory, with the control's differences."""
    md = run_report(write_fake_runs(tmp_path, 3, {"adapted.json": BEFORE}), tmp_path / "r", "--results",
                    "adapted.json")
    assert "## Primary endpoints" not in md and "## AFA_adapted − BA_adapted, every metric (exploratory)" in md
    assert ("| BA_adapted − Control_adapted, lab_copa/acc_calibrated, μ_adapting | 3 | +0.3000 | "
            "+0.2000, +0.3000, +0.4000 | [+0.0516, +0.5484] |" in md)
    assert "| Baseline_pretrained, en | BA_adapted, adapting |" in md
    assert "| lab_copa | 0.500 | 0.500 | 0.500; acc 0.500; prior 0.500 |" in md
    # the run logs are the finetuned models' page's: not drawn or tabulated again here; no items.json
    assert "## Recovery" not in md and "## Adaptation" not in md and "![recovery]" not in md
    assert sorted(os.listdir(tmp_path / "r")) == ["benchmarks.png", "results.md"]


def test_the_control_and_the_prior_are_optional(tmp_path):
    results = [fake_results(i, ("Baseline", "BA", "AFA", "Control")) for i in range(2)]
    panel = report.benchmark_panels(results)[0]
    assert set(panel["bars"]) == {"Baseline", "BA", "AFA"} and panel["control"]["Control"][1] == pytest.approx(0.1)
    assert panel["title"] == "lab_copa (acc_calibrated)" and panel["groups"] == [*GROUPS, "overall"]
    assert [label for label, _ in panel["chance"]] == ["chance: 1 / choices", "chance: majority label"]
    plots.plot_benchmarks([panel], str(tmp_path / "b.png"))
    for r in results:  # older results: no control, no prior, no records
        r["metrics"].pop("lab_copa/acc_prior")
        for per_model in (r["models"], r["details"], *r["metrics"].values()):
            per_model.pop("Control", None)
        for per_lang in r["details"]["BA"]["tasks"]["lab_copa"].values():
            per_lang.pop("correct_calibrated")
    rows = primary.primary_rows(results, {})
    assert [label for label, _, _ in rows if "/acc" in label] == ["(c) AFA − BA, lab_read/acc_calibrated, μ_adapting"]
    assert "prior" not in report.benchmark_table(results)[2] and not report.benchmark_panels(results)[0]["control"]


def test_chance_levels_are_the_records_weighted_and_unknown_without_them():
    result = fake_results(0, ("Baseline",))
    for lang in ("qen", "qgr"):
        result["details"]["Baseline"]["tasks"]["lab_copa"][lang].update(majority=0.9 if lang == "qen" else 0.7)
    assert res.chance_levels(result, "lab_copa", "adapting") == (pytest.approx(0.5), pytest.approx(0.8))
    for detail in result["details"]["Baseline"]["tasks"]["lab_copa"].values():  # a results file without the records
        del detail["chance"], detail["majority"]
    assert res.chance_levels(result, "lab_copa", "adapting") is None
    assert report.benchmark_table([result])[2].startswith("| lab_copa | - | - | 0.700 ")


def test_report_with_one_seed_tests_nothing_and_gates_over_items(tmp_path):
    md = run_report(write_fake_runs(tmp_path, 1), tmp_path / "report")
    assert "one seed: no test" in md and "yes:" not in md and "95% t-interval over the items of its one world" in md
    # seed 0's English gain 0.2 over ten items: 7 right after, 5 before; interval over the items
    assert f"| (i) | lab_copa | 1 | +0.2000 | +0.2000 | {interval([0] * 5 + [1] * 2 + [0] * 3)} |" in md


def test_report_refuses_a_folder_without_results(tmp_path):
    result = subprocess.run([sys.executable, "report.py", "--runs", str(tmp_path), "--out", str(tmp_path / "r")],
                            cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "no finished run" in result.stderr
    (tmp_path / "seed0").mkdir()
    (tmp_path / "seed0" / "results.json").write_text("{not json")
    result = subprocess.run([sys.executable, "report.py", "--runs", str(tmp_path), "--out", str(tmp_path / "r")],
                            cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "results.json is not valid JSON" in result.stderr
