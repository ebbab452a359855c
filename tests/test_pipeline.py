"""run.sh end to end at a micro size (every stage runs, the control and each variant once, every output
exists, the report has a column per model, a re-run redoes nothing), and how it fails: bad settings, a failing
stage, a signal."""

import json
import os
import signal
import subprocess
import time

import pytest

from conftest import ROOT

MICRO = """
train = dict(n_layer=1, n_head=2, n_kv_head=1, n_embd=32, block_size=64, max_iters=12, batch_size=4,
             forget_every=4, eval_every=6, eval_tokens=1024, progress=False, device="cpu")
adapt = dict(batch_size=4, eval_every=0, eval_bytes=1024, n_new_tokens=32, progress=False, device="cpu")
finetune = dict(max_iters=3, batch_size=4, eval_every=0, val_conversations=8, n_samples=1, max_new_tokens=8,
                progress=False, device="cpu")
evaluate = dict(max_examples=2, bpb_bytes=512, sim_bytes=1024, gen_tokens=4, progress=False, device="cpu",
                langs=["en", "qen", "qth", "qlv", "qka"])  # a language of each group (qth: no spaces)
"""


def stage_calls(calls):
    """The training stages' command lines that a run.sh wrote down, sorted (runs in parallel start in any order)."""
    stages = ("train.py", "adapt.py", "finetune.py", "splice.py")
    return sorted(c for c in calls.read_text().splitlines() if c.partition(" ")[0] in stages)


def test_run_sh_at_micro_size(lab_dir, tmp_path):
    """The default stages (the control among them) and every variant beside them (VARIANTS='keephead splice chen'),
    each once: one adaptation budget; then a dry run of two budgets checks which stages run at which."""
    config = tmp_path / "micro.py"
    config.write_text(MICRO)
    out = tmp_path / "out"
    # python as run.sh calls it, through a wrapper that writes down each call; with DRY set it runs no script
    calls, python = tmp_path / "calls.txt", tmp_path / "python"
    # (a lab it makes for real, at a tiny size)
    python.write_text(f'#!/usr/bin/env bash\necho "$*" >> {calls}\n'
                      f'[[ -n ${{DRY:-}} && $1 == data/lab/prepare.py ]] && exec {os.sys.executable} "$@" '
                      '--mb_per_lang 0.005 --examples_per_task 4\n'
                      f'[[ -n ${{DRY:-}} && $1 == *.py ]] && exit 0\nexec {os.sys.executable} "$@"\n')
    python.chmod(0o755)
    env = {**os.environ, "CONFIG": str(config), "OUT": str(out), "DATA": lab_dir, "VOCAB": "300",
           "BUDGETS": "2000", "VARIANTS": "keephead splice chen", "PYTHON": str(python)}
    result = subprocess.run(["bash", "run.sh"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    seed = out / "run" / "micro" / "seed0"
    stages = ["pretrain_standard", "pretrain_forgetting", "pretrain_chen", "pretrain_none", "adapt_standard_2000",
              "adapt_forgetting_2000", "adapt_none_2000", "relearn_standard_2000", "relearn_forgetting_2000",
              "keephead_standard_2000", "keephead_forgetting_2000", "finetune_Baseline", "finetune_BA", "finetune_AFA",
              "finetune_Control", "finetune_BA_keephead", "finetune_AFA_keephead", "finetune_body_standard",
              "finetune_body_forgetting", "splice_standard", "splice_forgetting",
              "finetune_Baseline_translated"]  # the lab has translated instructions
    for stage in stages:
        for name in (("ckpt.pt", "tokenizer.tiktoken", "config.json")
                     + (() if stage.startswith("splice") else ("log.jsonl",))):
            assert (seed / stage / name).exists(), f"{stage}/{name}"
    assert not (seed / "relearn_none_2000").exists()  # the control is adapted by [AFA]'s recipe only
    # the control: the standard model's shape and seed, never trained, adapted by [AFA]'s recipe, finetuned as BA
    none, standard = (json.loads((seed / run / "config.json").read_text())
                      for run in ("pretrain_none", "pretrain_standard"))
    assert none["max_iters"] == 0 and none["seed"] == standard["seed"] and none["n_embd"] == standard["n_embd"]
    assert json.loads((seed / "adapt_none_2000" / "config.json").read_text())["init_from"].endswith("pretrain_none")
    assert json.loads((seed / "finetune_Control" / "config.json").read_text())["init_from"].endswith("adapt_none_2000")
    # the recipes are passed explicitly: [AFA]'s fresh head of all rows, and the variant's kept (frozen) head rows
    for run, head in (("adapt_forgetting_2000", "fresh"), ("keephead_forgetting_2000", "keep")):
        assert json.loads((seed / run / "config.json").read_text())["head"] == head, run
    # [CHEN]'s protocol: the body finetuned alone from each pretrained model, spliced with its largest adaptation
    for kind in ("standard", "forgetting"):
        assert json.loads((seed / f"finetune_body_{kind}" / "config.json").read_text())["train_params"] == "body"
        spliced = json.loads((seed / f"splice_{kind}" / "config.json").read_text())
        assert (spliced["embeddings_from"].endswith(f"keephead_{kind}_2000")
                and spliced["body_from"].endswith(f"finetune_body_{kind}"))
    report = (out / "report" / "results.md").read_text()
    assert ("| μ_overall |" in report
            and "| | Baseline | Baseline_translated | BA | AFA | Control | BA_keephead | AFA_keephead | BA_splice | "
                "AFA_splice |" in report)
    assert "## Positive controls" in report  # the lab has translated instructions: (iii) is measured
    assert "## AFA − BA" in report and "## AFA_keephead − BA_keephead" in report and "one seed: no test" in report
    assert "## AFA_splice − BA_splice" in report
    made_by = (f"Made by `CONFIG={config} VARIANTS=keephead\\ splice\\ chen BUDGETS=2000 "
               f"DATA={lab_dir} VOCAB=300 bash run.sh`")
    assert made_by in report  # the command as given: the config's path, and no SEEDS (it was not set)
    # accuracy against chance, per task: lab_copa has 2 choices, so guessing scores 1 / 2
    assert "| lab_copa | 0.500 | " in report.split("## Benchmarks")[1]
    # the one budget's row
    for mode in ("[CHEN] relearn", "[AFA] vocabulary expansion", "vocabulary expansion keeping"):
        table = report.split(f"## Adaptation, {mode}")[1].split("##")[0]
        assert "| 2,000 |" in table
    for png in ("pretraining_loss.png", "recovery.png", "adaptation.png", "benchmarks.png"):
        assert (out / "report" / png).stat().st_size > 1000
    # every model asked with plain prompts, before finetuning and after; before: on the multiple-choice tasks in the
    # pretraining and adapting languages, bits per byte on the same bytes, with their own report; the finetuned models
    # again in ChatML beside, on the multiple-choice tasks
    adapted, results, chat = (json.loads((seed / name).read_text()) for name in ("adapted.json", "results.json",
                                                                                  "chat.json"))
    assert list(adapted["models"]) == ["Baseline_pretrained", "BA_adapted", "AFA_adapted", "Control_adapted"]
    assert all(v["kind"] == "mc" for v in adapted["tasks"].values())
    assert {"en", "qcy", "qen"} <= set(adapted["tasks"]["lab_copa"]["langs"])
    assert "qlv" not in adapted["metrics"]["bpb"]["BA_adapted"]["langs"]  # not a pretraining or adapting language
    before, after = adapted["details"]["BA_adapted"]["bpb_bytes"], results["details"]["BA"]["bpb_bytes"]
    both = set(before) & set(after)  # (the micro config evaluates a few languages after finetuning)
    assert both and all(before[lang] == after[lang] for lang in both)  # the same bytes
    assert "## Bits per byte before and after finetuning" in report
    assert not any(m["chat"] for m in (*adapted["models"].values(), *results["models"].values()))
    assert set(results["tasks"]) == set(adapted["tasks"]) == set(chat["tasks"])  # the lab: multiple choice only
    assert list(chat["models"]) == ["Baseline_chatml", "BA_chatml", "AFA_chatml", "Control_chatml"]
    assert all(m["chat"] for m in chat["models"].values()) and "bpb" not in chat["metrics"]
    assert "## AFA_adapted − BA_adapted" in (out / "report" / "adapted" / "results.md").read_text()
    # a re-run calls every stage again with the same arguments, so each finds its run complete (each stage's
    # tests check that it then returns), and evaluates nothing again: the results are newer than every model
    first = stage_calls(calls)
    assert sorted(c.split("--out_dir=")[1].split()[0] for c in first) == sorted(f"{seed}/{stage}" for stage in stages)
    assert all("--resume" in c for c in first)
    calls.write_text("")
    rerun = subprocess.run(["bash", "run.sh"], cwd=ROOT, env={**env, "DRY": "1"}, capture_output=True, text=True,
                           timeout=60)
    assert rerun.returncode == 0, rerun.stdout[-2000:] + rerun.stderr[-2000:]
    assert stage_calls(calls) == first and "evaluate.py" not in calls.read_text()
    finetune_afa = next(c for c in first if f"--out_dir={seed}/finetune_AFA " in c + " ")  # one of them, for real
    again = subprocess.run([os.sys.executable, *finetune_afa.split()], cwd=ROOT, capture_output=True, text=True,
                           timeout=60)
    assert again.returncode == 0 and "finetune_AFA is already complete" in again.stdout, again.stdout + again.stderr
    # two budgets, as a dry run into a new folder (no script runs, so no model exists): adaptation and relearning
    # at each budget, the variants and the finetunings from the largest only, the splice from its keep-head run
    # The lab's translated instructions (positive control (iii)) are in its manifest: the Baseline is finetuned on them
    calls.write_text("")
    translated = tmp_path / "translated"
    translated.mkdir()
    with open(os.path.join(lab_dir, "manifest.json")) as f:
        manifest = json.load(f)
    manifest["instructions_translated"] = {"train": "tr/train.jsonl", "val": "tr/val.jsonl", "langs": ["qcy"]}
    (translated / "manifest.json").write_text(json.dumps(manifest))
    dry = subprocess.run(["bash", "run.sh"], cwd=ROOT, capture_output=True, text=True, timeout=60,
                         env={**env, "DRY": "1", "OUT": str(tmp_path / "dry"), "BUDGETS": "2000 4000",
                              "DATA": str(translated)})
    assert dry.returncode == 0, dry.stdout[-2000:] + dry.stderr[-2000:]
    runs = {}  # run name -> its stage's arguments
    for c in stage_calls(calls):
        args = dict(a[2:].partition("=")[::2] for a in c.split()[1:] if a.startswith("--"))
        runs[os.path.basename(args["out_dir"])] = args
    assert len(runs) == len(stage_calls(calls))  # each run once
    adapted = {f"{mode}_{kind}_{T}" for mode in ("adapt", "relearn") for kind in ("standard", "forgetting")
               for T in (2000, 4000)}
    assert set(runs) == {"pretrain_standard", "pretrain_forgetting", "pretrain_chen", "pretrain_none",
                         "adapt_none_4000", "keephead_standard_4000", "keephead_forgetting_4000", "finetune_Baseline",
                         "finetune_BA", "finetune_AFA", "finetune_Control", "finetune_BA_keephead",
                         "finetune_AFA_keephead", "finetune_body_standard", "finetune_body_forgetting",
                         "splice_standard", "splice_forgetting", "finetune_Baseline_translated"} | adapted
    assert (runs["finetune_Baseline_translated"]["init_from"].endswith("/pretrain_standard")
            and runs["finetune_Baseline_translated"]["data"] == f"{translated}/tr/train.jsonl"
            and runs["finetune_Baseline_translated"]["val_data"] == f"{translated}/tr/val.jsonl")
    for run, args in runs.items():
        if run.startswith(("adapt_", "relearn_", "keephead_")):
            assert args["adapt_tokens"] == run.rsplit("_", 1)[1], run
    assert runs["adapt_none_4000"]["init_from"].endswith("/pretrain_none")  # the control, by run.sh's control()
    for name, init in (("BA", "adapt_standard_4000"), ("AFA", "adapt_forgetting_4000"), ("Control", "adapt_none_4000"),
                       ("BA_keephead", "keephead_standard_4000"), ("AFA_keephead", "keephead_forgetting_4000")):
        assert runs[f"finetune_{name}"]["init_from"].endswith(f"/{init}"), name
    for kind in ("standard", "forgetting"):
        assert runs[f"splice_{kind}"]["embeddings_from"].endswith(f"/keephead_{kind}_4000")
    # without DATA every seed draws its own lab world from its seed, and trains its own base vocabulary on it
    calls.write_text("")
    env.pop("DATA")
    dry = subprocess.run(["bash", "run.sh"], cwd=ROOT, capture_output=True, text=True, timeout=120,
                         env={**env, "DRY": "1", "OUT": str(tmp_path / "worlds"), "SEEDS": "2", "SEED0": "11"})
    assert dry.returncode == 0, dry.stdout[-2000:] + dry.stderr[-2000:]
    worlds = tmp_path / "worlds" / "run" / "micro"
    made = [c.split() for c in calls.read_text().splitlines() if c.startswith(("data/lab/prepare.py", "tokenizer.py"))]
    assert [(c[0], c[c.index("--out") + 1], c[c.index("--seed") + 1] if "--seed" in c else None) for c in made] == [
        ("data/lab/prepare.py", f"{worlds}/seed{i}/lab", str(11 + i)) if k == 0
        else ("tokenizer.py", f"{worlds}/seed{i}/tokenizer.tiktoken", None) for i in (0, 1) for k in (0, 1)]
    for c in stage_calls(calls):
        i = 0 if "/seed0/" in c else 1
        assert f"{worlds}/seed{1 - i}" not in c and (c.startswith("splice.py") or f"--seed={11 + i} " in c), c
        assert c.startswith(("adapt.py", "splice.py")) or f"--data_dir={worlds}/seed{i}/lab" in c, c
        assert not c.startswith("train.py") or f"--tokenizer={worlds}/seed{i}/tokenizer.tiktoken" in c, c


def test_run_sh_stops_when_a_run_fails(lab_dir, tmp_path):
    """A run that fails in the background stops run.sh with a nonzero exit that names it and shows its log."""
    config = tmp_path / "broken.py"
    config.write_text(MICRO.replace("n_embd=32", "n_embd=33"))  # not divisible by n_head: train.py refuses it
    env = {**os.environ, "CONFIG": str(config), "OUT": str(tmp_path / "out"), "DATA": lab_dir, "VOCAB": "300",
           "PYTHON": os.sys.executable}
    result = subprocess.run(["bash", "run.sh"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1, result.stdout[-2000:] + result.stderr[-2000:]
    assert "error: pretrain_standard failed" in result.stderr and "n_embd" in result.stderr
    # nothing ran after it
    assert not (tmp_path / "out" / "run" / "broken" / "seed0" / "adapt_standard_500000").exists()


def test_stopping_run_sh_stops_its_runs(lab_dir, tmp_path):
    """SIGTERM (or Ctrl-C) to run.sh also stops the stages running in the background: no orphans keep training."""
    config = tmp_path / "long.py"
    config.write_text(MICRO.replace("max_iters=12", "max_iters=100000"))
    out = tmp_path / "out"
    env = {**os.environ, "CONFIG": str(config), "OUT": str(out), "DATA": lab_dir, "VOCAB": "300",
           "PYTHON": os.sys.executable, "JOBS": "2"}  # both pretrainings at once, whatever the cores
    # in a session of its own: every process run.sh starts is in it (pgrep -s), and can be ended by its group id
    proc = subprocess.Popen(["bash", "run.sh"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    log = out / "run" / "long" / "seed0" / "pretrain_forgetting" / "log.jsonl"
    try:
        deadline = time.time() + 120
        while not (log.exists() and log.stat().st_size > 0) and time.time() < deadline and proc.poll() is None:
            time.sleep(0.2)
        assert log.exists(), "pretraining never started"
        assert len(session(proc.pid)) >= 3  # run.sh and at least two runs
        proc.send_signal(signal.SIGTERM)  # to run.sh alone
        assert proc.wait(timeout=30) != 0
        deadline = time.time() + 10
        while session(proc.pid) and time.time() < deadline:
            time.sleep(0.2)
        assert session(proc.pid) == [], "processes of run.sh still running"
    finally:  # pass or fail, leave nothing training (a 100,000-step run would outlive the test session)
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # the process group run.sh leads: only what this test started
        except ProcessLookupError:
            pass
        proc.wait()


def session(sid):
    """The ids of the processes still running in session sid."""
    return subprocess.run(["pgrep", "-s", str(sid)], capture_output=True, text=True).stdout.split()


@pytest.mark.parametrize("name, value", [("JOBS", "0"), ("SEEDS", "two"), ("BUDGETS", "1000 5e4"), ("BUDGETS", "-5")])
def test_run_sh_refuses_bad_settings_before_doing_anything(tmp_path, name, value):
    env = {**os.environ, "OUT": str(tmp_path / "out"), name: value}
    result = subprocess.run(["bash", "run.sh"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert (result.returncode == 2 and f"error: {name}:" in result.stderr
            and "not a positive whole number" in result.stderr)
    assert not (tmp_path / "out").exists()


def test_run_sh_refuses_a_lab_made_by_an_older_prepare_py(tmp_path):
    old = tmp_path / "old_lab"
    old.mkdir()
    (old / "manifest.json").write_text(json.dumps({"name": "lab", "version": 1}))
    env = {**os.environ, "OUT": str(tmp_path / "out"), "DATA": str(old), "PYTHON": os.sys.executable}
    result = subprocess.run(["bash", "run.sh"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert (result.returncode == 1 and f"error: {old} was made by lab version 1" in result.stderr
            and "--force" in result.stderr)
    assert not (tmp_path / "out").exists()


def test_run_sh_refuses_unknown_variants(tmp_path):
    env = {**os.environ, "OUT": str(tmp_path / "out"), "VARIANTS": "keephead freshhead"}
    result = subprocess.run(["bash", "run.sh"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "error: VARIANTS: unknown variant 'freshhead'" in result.stderr
    assert not (tmp_path / "out").exists()


def test_run_sh_refuses_unknown_arguments_and_configs(tmp_path):
    result = subprocess.run(["bash", "run.sh", "--forse"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "usage:" in result.stderr
    env = {**os.environ, "CONFIG": "no_such_config", "OUT": str(tmp_path / "out")}
    result = subprocess.run(["bash", "run.sh"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "config/no_such_config.py" in result.stderr
