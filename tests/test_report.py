"""report.py on fake run folders: recoveries after resets, the primary endpoints with Holm across their family,
intervals clustered by item, chance levels, the control, and the exploratory tables."""

import json
import os
import subprocess
import sys

import pytest

import report
from conftest import ROOT
from evaluation import plots, runs, stats


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
    cells = [row.split(" | ") for row in report.primary_table(rows)[2:]]
    assert ([c[5] for c in cells] == ["0.0131", "0.0131", "0.0742"]
            and [c[6] for c in cells] == ["0.0392", "0.0392", "0.0742"])
    assert [c[7] for c in cells] == ["yes: forgetting lower |", "yes: AFA higher |", "no |"]


def test_primary_table_untestable_and_item_level_rows():
    rows = [("(c) AFA − BA, t/acc, μ_adapting", [1 / 150] * 5, [1.0] * 30 + [0.0] * 120),  # the same step in every seed
            ("(c) BA − Control, t/acc, μ_adapting", [0.19, 0.2, 0.21, 0.2, 0.2], [1.0] * 3 + [0.0] * 147),
            ("(b) AFA − BA, bpb, μ_adapting", [0.1], None)]
    untestable, weak, one = [row.split(" | ") for row in report.primary_table(rows)[2:]]
    assert untestable[3] == "-" and untestable[4] != "-" and untestable[7] == "no spread: untestable |"  # never p = 0
    # a difference of accuracies must hold over items too: its p is the larger of the two tests' (3 items of 150 here)
    _, _, item_interval, item_p = stats.t_interval([1.0] * 3 + [0.0] * 147)
    assert float(weak[5]) == pytest.approx(item_p, rel=1e-2) and weak[7] == "no |"
    assert weak[4] == f"[{item_interval[0]:+.4f}, {item_interval[1]:+.4f}]"
    # the untestable row stays in the family as p = 1: the weak row's Holm p is 2 x its p
    assert float(weak[6]) == pytest.approx(min(1.0, 2 * item_p), rel=1e-2)
    assert one[7] == "one seed: no test |"


# fake results: ten items, the same answers in every language of a seed; BA − Control = 0.2, 0.3, 0.4 over the seeds,
# AFA − BA = 0.1 in every seed (no spread)
CORRECT = {"Baseline": lambda i: "1111111100", "BA": lambda i: "111" + "1" * i + "0" * (7 - i),
           "AFA": lambda i: "1111" + "1" * i + "0" * (6 - i), "Control": lambda i: "1000000000"}
BPB = {"Baseline": lambda i: 3.0, "BA": lambda i: 2.0, "AFA": lambda i: 1.9 + 0.01 * i, "Control": lambda i: 4.0}
GOLD_BPB = {"Baseline": lambda i: 1.5, "BA": lambda i: 1.2, "AFA": lambda i: 1.0 - 0.1 * i, "Control": lambda i: 2.0}


LEVELS = {"chance": 0.5, "majority": 0.7}  # 2 choices; labels 0 0 0 0 0 0 0 1 1 1: one fixed answer scores 0.7


def fake_results(data_dir, seed, models=("Baseline", "BA", "AFA"), suffix="",
                 groups=("pretraining", "adapting", "other"), langs=None):
    """A results.json as evaluate.py writes it, for the given models on one 2-choice task."""
    langs = langs or {"en": "pretraining", "qen": "adapting", "qgr": "adapting", "qka": groups[-1]}

    def entry(per_lang):
        means = {g: [v for lang, v in per_lang.items() if langs[lang] == g or g == "overall"]
                 for g in list(groups) + ["overall"]}
        return {"langs": per_lang, "groups": {g: sum(v) / len(v) if v else None for g, v in means.items()}}
    metrics = {"bpb": {}, "lab_copa/acc": {}, "lab_copa/gold_bpb": {}}
    for m in models:
        correct = CORRECT[m](seed)
        metrics["bpb"][m + suffix] = entry(dict.fromkeys(langs, BPB[m](seed)))
        metrics["lab_copa/acc"][m + suffix] = entry(dict.fromkeys(langs, correct.count("1") / len(correct)))
        metrics["lab_copa/gold_bpb"][m + suffix] = entry(dict.fromkeys(langs, GOLD_BPB[m](seed)))
    return {"settings": {"data_dir": str(data_dir), "tasks_dir": "", "max_examples": 10},
            "models": {m + suffix: {} for m in models}, "groups": list(groups), "languages": langs,
            "tasks": {"lab_copa": {"kind": "mc", "metric": "acc", "langs": list(langs)}}, "metrics": metrics,
            "details": {m + suffix: {"tasks": {"lab_copa": {lang: {"n": 10, "correct": CORRECT[m](seed), **LEVELS}
                                                            for lang in langs}}}
                        for m in models}}


def write_fake_runs(tmp_path, n_seeds, results_name="results.json", **kwargs):
    data = tmp_path / "data"
    run_dir = tmp_path / "runs"
    for i in range(n_seeds):
        seed = run_dir / f"seed{i}"
        log = [{"step": s, "loss": 2.0, **({"forget": True} if s == 10 else {})} for s in range(20)]
        for name in ("standard", "forgetting"):
            write_log(seed / f"pretrain_{name}", log)
            (seed / f"pretrain_{name}" / "config.json").write_text(json.dumps({"seed": 1337 + i}))
            write_log(seed / f"adapt_{name}_1000",
                      [{"step": 5, "val_bpb": 2.0 + i + (name == "standard") * (0.1 + 0.01 * i)}])
        (seed / results_name).write_text(json.dumps(fake_results(data, i, **kwargs)))
    return run_dir


def run_report(run_dir, out, *extra):
    result = subprocess.run([sys.executable, "report.py", "--runs", str(run_dir), "--out", str(out), *extra], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    return (out / "results.md").read_text()


def interval(values, digits=4, sign="+"):
    low, high = stats.t_interval(values)[2]
    return f"[{low:{sign}.{digits}f}, {high:{sign}.{digits}f}]"


def test_report_on_fake_runs(tmp_path):
    md = run_report(write_fake_runs(tmp_path, 3, models=("Baseline", "BA", "AFA", "Control"),
                                    groups=("pretraining", "adapting", "other", "unseen_script")), tmp_path / "report",
                    "--command", "SEEDS=3 bash run.sh")
    assert "Made by `SEEDS=3 bash run.sh` with seeds 1337, 1338, 1339, on " in md  # what made the page, where
    primary = md.split("## Primary endpoints")[1].split("\n## ")[0]
    # (a) forgetting − standard = -0.10, -0.11, -0.12; (b) AFA − BA bits per byte -0.10, -0.09, -0.08
    assert ("| (a) forgetting − standard, adapting bpb, adapt, 1,000 tokens | 3 | -0.1100 | [-0.1348, -0.0852] | - |"
            in primary)
    assert "| (b) AFA − BA, bpb, μ_adapting | 3 | -0.0900 | [-0.1148, -0.0652] | - |" in primary
    # (c) AFA − BA is 0.1 in every seed: untestable, however small a t-test's p would be
    assert ("| (c) AFA − BA, lab_copa/acc, μ_adapting | 3 | +0.1000 | - |" in primary
            and "no spread: untestable" in primary)
    # BA − Control = 0.2, 0.3, 0.4 over seeds; per item (averaged over the two adapting languages and the seeds):
    items = [0, 1, 1, 2 / 3, 1 / 3, 0, 0, 0, 0, 0]
    assert (f"| (c) BA − Control, lab_copa/acc, μ_adapting | 3 | +0.3000 | [+0.0516, +0.5484] | {interval(items)} |"
            in primary)
    assert "(c) AFA − Control" in primary and "(d)" not in primary  # no self-similarity in these results: no row
    # the benchmarks against both chance levels (the task files' labels: majority 0.7), BA with its interval over items
    ba = [1, 1, 1, 2 / 3, 1 / 3, 0, 0, 0, 0, 0]
    baseline = [1] * 8 + [0] * 2  # in English
    # an accuracy's interval stops at 1
    assert f"| lab_copa/acc | 0.500 | 0.700 | 0.800 [0.498, 1.000] | 0.400 {interval(ba, 3, '')} |" in md
    assert interval(baseline, 3, "") == "[0.498, 1.102]"
    # exploratory: intervals, no verdicts; a group the results name and a metric the report does not know appear
    exploratory = md.split("## AFA − BA, every metric (exploratory)")[1]
    assert ("| lab_copa/gold_bpb | μ_adapting | 3 | -0.3000 | [-0.5484, -0.0516] |" in exploratory
            and "yes" not in exploratory)
    assert "| μ_unseen_script |" in md and "### lab_copa/gold_bpb" in md and "bit-identical" in md
    assert "| 1,000 | 3.110 ± 1.010 | 3.000 ± 1.000 | 3 | -0.1100 | [-0.1348, -0.0852] |" in md
    for png in ("pretraining_loss.png", "recovery.png", "adaptation.png", "benchmarks.png"):
        assert (tmp_path / "report" / png).stat().st_size > 1000


def test_an_accuracy_interval_counts_items_not_translations(tmp_path):
    """Six adapting languages answering every item alike are one language's worth of evidence."""
    correct = "11010011101100100111"
    langs = {f"q{k}": "adapting" for k in range(6)}
    result = fake_results(tmp_path, 0, models=("BA",), langs=langs)
    for lang in langs:
        result["details"]["BA"]["tasks"]["lab_copa"][lang]["correct"] = correct
    result["metrics"]["lab_copa/acc"]["BA"]["groups"]["adapting"] = correct.count("1") / 20
    mean, low, high = report.estimate([result], "lab_copa/acc", "BA", "adapting")
    one_language = [int(c) for c in correct]
    assert (mean, (low, high)) == (pytest.approx(0.6), stats.t_interval(one_language)[2])
    assert high - low > 2 * (stats.t_interval(one_language * 6)[2][1] - 0.6)  # as 120 independent trials: narrower


def test_the_control_and_the_prior_are_shown_and_optional(tmp_path):
    results = [fake_results(tmp_path, i, models=("Baseline", "BA", "AFA", "Control")) for i in range(2)]
    for r in results:
        r["metrics"]["lab_copa/acc_prior"] = {"BA": {"langs": {}, "groups": {"adapting": 0.55}}}
        for per_lang in r["details"]["Baseline"]["tasks"]["lab_copa"].values():
            per_lang.update(chance=0.5, majority=0.6)
    assert "; prior 0.550" in report.benchmark_table(results)[2]
    panel, = report.benchmark_panels(results)
    assert set(panel["bars"]) == {"Baseline", "BA", "AFA"} and panel["control"]["Control"][1] == pytest.approx(0.1)
    assert panel["groups"] == ["pretraining", "adapting", "other", "overall"]  # whole names
    assert [label for label, _ in panel["chance"]] == ["chance: 1 / choices", "chance: majority label"]
    plots.plot_benchmarks([panel], str(tmp_path / "b.png"))
    # older results: no control, no prior, no per-item record
    for r in results:
        r["metrics"].pop("lab_copa/acc_prior")
        for per_model in (r["models"], r["details"], *r["metrics"].values()):
            per_model.pop("Control", None)
        for per_lang in r["details"]["BA"]["tasks"]["lab_copa"].values():
            per_lang.pop("correct")
    rows = report.primary_rows(results, {})
    assert ([label for label, _, _ in rows if "/acc" in label] == ["(c) AFA − BA, lab_copa/acc, μ_adapting"]
            and rows[-1][2] is None)
    assert "prior" not in report.benchmark_table(results)[2] and not report.benchmark_panels(results)[0]["control"]


def test_chance_levels_are_the_records_weighted_and_unknown_without_them(tmp_path):
    result = fake_results(tmp_path, 0)
    for lang in ("qen", "qgr"):
        result["details"]["Baseline"]["tasks"]["lab_copa"][lang].update(
            chance=0.5, majority=0.9 if lang == "qen" else 0.7)
    assert report.chance_levels(result, "lab_copa", "adapting") == (pytest.approx(0.5), pytest.approx(0.8))
    for model in result["details"].values():  # a results file without the records
        for detail in model["tasks"]["lab_copa"].values():
            del detail["chance"], detail["majority"]
    assert report.chance_levels(result, "lab_copa", "adapting") is None
    assert report.benchmark_table([result])[2].startswith("| lab_copa/acc | - | - | 0.800 ")


def test_report_reads_another_results_file(tmp_path):
    """--results adapted.json: the adapted models before finetuning, all exploratory, with the control's differences."""
    md = run_report(write_fake_runs(tmp_path, 3, "adapted.json", models=("BA", "AFA", "Control"), suffix="_adapted"),
                    tmp_path / "r", "--results", "adapted.json")
    assert "## Primary endpoints" not in md and "## AFA_adapted − BA_adapted, every metric (exploratory)" in md
    items = [0, 1, 1, 2 / 3, 1 / 3, 0, 0, 0, 0, 0]
    assert ("| BA_adapted − Control_adapted, lab_copa/acc, μ_adapting | 3 | +0.3000 | [+0.0516, +0.5484] | "
            f"{interval(items)} |" in md)
    assert "| lab_copa/acc | 0.500 | 0.700 | 0.400 " in md  # no Baseline column
    # the run logs are the finetuned models' page's: not drawn or tabulated again here
    assert "## Recovery" not in md and "## Adaptation" not in md and "![recovery]" not in md
    assert sorted(os.listdir(tmp_path / "r")) == ["benchmarks.png", "results.md"]


def test_the_pretrained_baseline_is_read_in_english(tmp_path):
    md = run_report(write_fake_runs(tmp_path, 2, "adapted.json", models=("Baseline", "BA"), suffix="_pretrained"),
                    tmp_path / "r", "--results", "adapted.json")
    # the fake Baseline is right on 8 of its 10 English items (its adapting languages' items differ)
    assert ("| Baseline_pretrained, en | BA_pretrained, adapting |" in md
            and "| lab_copa/acc | 0.500 | 0.700 | 0.800 [" in md)


def test_report_with_one_seed_tests_nothing(tmp_path):
    md = run_report(write_fake_runs(tmp_path, 1), tmp_path / "report")
    assert "one seed: no test" in md and "yes:" not in md and "| μ_unseen_script |" not in md


def test_report_refuses_a_folder_without_results(tmp_path):
    result = subprocess.run([sys.executable, "report.py", "--runs", str(tmp_path), "--out", str(tmp_path / "r")],
                            cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "no finished run" in result.stderr
    (tmp_path / "seed0").mkdir()
    (tmp_path / "seed0" / "results.json").write_text("{not json")
    result = subprocess.run([sys.executable, "report.py", "--runs", str(tmp_path), "--out", str(tmp_path / "r")],
                            cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "results.json is not valid JSON" in result.stderr
