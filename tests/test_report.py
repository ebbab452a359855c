"""report.py on fake run folders: recoveries after resets, paired t-intervals with Holm across a table, the chance check."""

import json
import os
import subprocess
import sys

import pytest

import report
from conftest import ROOT


def write_log(folder, records):
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "log.jsonl"), "w") as f:
        f.writelines(json.dumps(r) + "\n" for r in records)


def test_recoveries_count_steps_back_to_the_pre_reset_loss():
    # loss 2.0 until the reset at step 20, then 5.0 falling by 0.25 a step: back at 2.0 after 12 steps
    log = [{"step": s, "loss": 2.0} for s in range(20)]
    log += [{"step": 20 + i, "loss": max(5.0 - 0.25 * i, 1.9), **({"forget": True} if i == 0 else {})} for i in range(30)]
    (reset, steps, censored), = report.recoveries(log, window=1)
    assert (reset, steps, censored) == (20, 12, False)
    # never back before the run ends: censored at the episode length
    log = [{"step": s, "loss": 2.0} for s in range(20)] + [{"step": 20 + i, "loss": 5.0, **({"forget": True} if i == 0 else {})} for i in range(10)]
    assert report.recoveries(log, window=1) == [(20, 10, True)]


def test_adaptation_summary_pairs_standard_and_forgetting_within_each_seed(tmp_path):
    # forgetting is 0.4, 0.5, 0.6 better than standard in the three seeds, while the seeds themselves differ by
    # far more: the unpaired means overlap, the paired differences do not
    seeds = []
    for i, (offset, gain) in enumerate(((0.0, 0.4), (2.0, 0.5), (4.0, 0.6))):
        seed = tmp_path / f"seed{i}"
        for mode in ("relearn", "adapt"):
            for kind, bpb in (("standard", 3.0 + offset), ("forgetting", 3.0 + offset - gain)):
                write_log(seed / f"{mode}_{kind}_1000", [{"step": 0, "val_bpb": 9.0}, {"step": 5, "val_bpb": bpb,
                                                                                        "val_bpb_mean_pretraining": 1.0}])
        (seed / "adapt_standard_1000.log").write_text("run.sh's log of the run: not a run folder\n")
        seeds.append(str(seed))
    summary = report.adaptation_summary(seeds)
    assert set(summary) == {"relearn", "adapt"}  # no keephead runs, no keephead table
    report.plot_adaptation(summary, str(tmp_path / "adaptation.png"))
    assert (tmp_path / "adaptation.png").stat().st_size > 1000
    for mode in ("relearn", "adapt"):
        header, _, row = report.adaptation_table(summary[mode])
        # differences -0.4, -0.5, -0.6: mean -0.5, sd 0.1, interval -0.5 ± 4.3027 * 0.1 / sqrt 3 = -0.5 ± 0.2484;
        # t = -0.5 / (0.1 / sqrt 3) = -8.660 with 2 df: p = 1 - 8.660 / sqrt(2 + 75) = 0.01306; one row, so Holm p = p
        assert row == ("| 1,000 | 5.000 ± 2.000 | 4.500 ± 1.900 | 3 | -0.5000 | [-0.7484, -0.2516] | 0.0131 | 0.0131 "
                       "| yes, forgetting better |")


def test_adaptation_table_corrects_across_budgets():
    # p = 0.01306 (sd 0.1, as above) twice and p = 0.0742 (differences 1, 2, 3): Holm multiplies the two smallest by 3
    # and 2 (0.0392 for both: an adjusted p never falls below the one before it) and the largest by 1
    points = {}
    for tokens, diffs in ((100, (-0.4, -0.5, -0.6)), (200, (0.6, 0.5, 0.4)), (300, (-1.0, -2.0, -3.0))):
        points[tokens] = {"standard": [(5.0, None)] * 3, "forgetting": [(5.0 + d, None) for d in diffs]}
    rows = report.adaptation_table(points)[2:]
    cells = [row.split(" | ") for row in rows]
    assert [c[7] for c in cells] == ["0.0392", "0.0392", "0.0742"]  # Holm: 3 x 0.01306, 2 x 0.01306 -> max, 1 x 0.0742
    assert [c[8].rstrip(" |") for c in cells] == ["yes, forgetting better", "yes, standard better", "no"]


def fake_results(data_dir, accuracy, gold_bpb, groups=("pretraining", "adapting", "other")):
    """A results.json as evaluate.py writes it, for models Baseline, BA, AFA on one 2-choice task."""
    langs = {"en": "pretraining", "qen": "adapting", "qgr": "adapting", "qka": groups[-1]}
    group_values = lambda value: {g: value for g in list(groups) + ["overall"]}
    metrics = {"bpb": {m: {"langs": {}, "groups": group_values(bpb)} for m, bpb in (("Baseline", 3.0), ("BA", 2.0), ("AFA", 1.9))},
               "lab_copa/acc": {m: {"langs": dict.fromkeys(langs, accuracy), "groups": group_values(accuracy)} for m in ("Baseline", "BA", "AFA")},
               "lab_copa/gold_bpb": {m: {"langs": {}, "groups": group_values(v)} for m, v in zip(("Baseline", "BA", "AFA"), gold_bpb)}}
    return {"settings": {"data_dir": str(data_dir), "tasks_dir": "", "max_examples": 10},
            "models": {m: {} for m in ("Baseline", "BA", "AFA")}, "groups": list(groups), "languages": langs,
            "tasks": {"lab_copa": {"kind": "mc", "metric": "acc", "langs": list(langs)}},
            "metrics": metrics,
            "details": {m: {"tasks": {"lab_copa": {lang: {"n": 10} for lang in langs}}} for m in ("Baseline", "BA", "AFA")}}


def write_fake_runs(tmp_path, n_seeds, groups=("pretraining", "adapting", "other")):
    data = tmp_path / "data"
    (data / "tasks").mkdir(parents=True)
    (data / "manifest.json").write_text(json.dumps({"tasks": {"lab_copa": {"kind": "mc", "files": {
        lang: f"tasks/{lang}.jsonl" for lang in ("en", "qen", "qgr", "qka")}}}}))
    for lang in ("en", "qen", "qgr", "qka"):
        (data / "tasks" / f"{lang}.jsonl").write_text("".join(json.dumps({"choices": ["a", "b"], "label": 0}) + "\n" for _ in range(12)))
    runs = tmp_path / "runs"
    for i in range(n_seeds):
        seed = runs / f"seed{i}"
        log = [{"step": s, "loss": 2.0, **({"forget": True} if s == 10 else {})} for s in range(20)]
        for name in ("standard", "forgetting"):
            write_log(seed / f"pretrain_{name}", log)
            write_log(seed / f"adapt_{name}_1000", [{"step": 5, "val_bpb": 2.0 + i + (name == "standard") * (0.1 + 0.01 * i)}])
        # AFA's gold-answer bits per byte below BA's by 0.2, 0.3, 0.4 over the seeds
        (seed / "results.json").write_text(json.dumps(fake_results(data, 0.9, (1.5, 1.2, 1.0 - 0.1 * i), groups)))
    return runs


def run_report(runs, out):
    result = subprocess.run([sys.executable, "report.py", "--runs", str(runs), "--out", str(out)], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    return (out / "results.md").read_text()


def test_report_on_fake_runs(tmp_path):
    md = run_report(write_fake_runs(tmp_path, 3, ("pretraining", "adapting", "other", "unseen_script")), tmp_path / "report")
    # English above chance: 9/10 right, Wilson [0.596, 0.982] > 0.5; the adapting languages pooled: 18/20
    assert "| lab_copa/acc | 0 | 0.900 (9/10) [0.596, 0.982], chance 0.500 | yes | 0.900 (18/20) [0.699, 0.972], chance 0.500 | yes |" in md
    # a group the results name and a metric the report does not know appear without code changes
    assert "| μ_unseen_script |" in md and "### lab_copa/gold_bpb" in md
    # AFA − BA of the gold-answer bits per byte: -0.2, -0.3, -0.4 -> -0.3 ± 4.3027 * 0.1 / sqrt 3, lower is better
    assert "| lab_copa/gold_bpb | μ_adapting | 3 | -0.3000 | [-0.5484, -0.0516] |" in md
    # adaptation: forgetting - standard = -0.10, -0.11, -0.12
    assert "| 1,000 |" in md and "| 3 | -0.1100 | [-0.1348, -0.0852] |" in md
    assert "bit-identical" in md
    for png in ("pretraining_loss.png", "recovery.png", "adaptation.png", "benchmarks.png"):
        assert (tmp_path / "report" / png).stat().st_size > 1000


def test_report_reads_another_results_file(tmp_path):
    """--results adapted.json: the adapted models before finetuning get their own AFA_adapted − BA_adapted table."""
    runs = write_fake_runs(tmp_path, 3)
    for seed in runs.glob("seed*"):
        result = json.loads((seed / "results.json").read_text().replace('"BA"', '"BA_adapted"').replace('"AFA"', '"AFA_adapted"'))
        for per_model in [result["models"], result["details"], *result["metrics"].values()]:
            per_model.pop("Baseline")  # the adapted models only, as the README's command evaluates them
        (seed / "adapted.json").write_text(json.dumps(result))
        (seed / "results.json").unlink()
    result = subprocess.run([sys.executable, "report.py", "--runs", str(runs), "--out", str(tmp_path / "r"), "--results", "adapted.json"],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    md = (tmp_path / "r" / "results.md").read_text()
    assert "## AFA_adapted − BA_adapted" in md and "| lab_copa/gold_bpb | μ_adapting | 3 | -0.3000 | [-0.5484, -0.0516] |" in md
    assert "## AFA − BA" not in md
    assert "| lab_copa/acc | 0 | 0.900 (18/20) [0.699, 0.972], chance 0.500 | yes |" in md  # no Baseline column


def test_report_with_one_seed_tests_nothing(tmp_path):
    md = run_report(write_fake_runs(tmp_path, 1), tmp_path / "report")
    assert "one seed: no test" in md and "yes, AFA better" not in md and "| μ_unseen_script |" not in md


def test_report_refuses_a_folder_without_results(tmp_path):
    result = subprocess.run([sys.executable, "report.py", "--runs", str(tmp_path), "--out", str(tmp_path / "r")], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "no finished run" in result.stderr
    (tmp_path / "seed0").mkdir()
    (tmp_path / "seed0" / "results.json").write_text("{not json")
    result = subprocess.run([sys.executable, "report.py", "--runs", str(tmp_path), "--out", str(tmp_path / "r")], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "results.json is not valid JSON" in result.stderr


def test_above_chance_says_what_it_lacks(tmp_path):
    result = fake_results(tmp_path / "nowhere", 0.7, (1.0, 1.0, 1.0))  # no task files there: chance unknown
    lines = report.above_chance([result])
    assert lines[2].startswith("| lab_copa/acc | 0 | 0.700 (7/10) [0.397, 0.892] | chance unknown |")
    result["details"]["BA"]["tasks"]["lab_copa"]["qgr"].pop("n")  # an older results.json without n
    result["details"]["AFA"]["tasks"]["lab_copa"]["qen"]["chance"] = 0.25  # evaluate.py's own record wins
    result["details"]["AFA"]["tasks"]["lab_copa"]["qgr"]["chance"] = 0.25
    cells = report.above_chance([result])[2].split(" | ")
    assert cells[4] == "no score or n in the results" and cells[6].endswith("chance 0.250") and cells[7] == "yes |"


@pytest.mark.parametrize("metric, lower", [("bpb", True), ("perplexity", True), ("self_sim", True), ("lab_copa/gold_bpb", True),
                                           ("lab_copa/acc", False), ("lab_copa/acc_bytes", False), ("lab_copa/margin", False),
                                           ("self_sim_adjusted", True), ("lab_qa/f1", False)])
def test_lower_is_better(metric, lower):
    assert report.lower_is_better(metric) == lower
