"""evaluate.py: bits per byte and perplexity, the whole run (tables, results.json) and bad input. Models
here are tiny and random (or built by hand so that their probabilities are known); a mini lab of three
languages is written in-process. tests/test_selfsim.py and tests/test_benchmarks.py use these helpers."""

import json
import math
import os
import shutil
from contextlib import nullcontext
from dataclasses import asdict

import numpy as np
import pytest
import torch

import evaluate
import tokenizer
from conftest import run_script
from model import GPT, GPTConfig
from tokenizer import SPECIAL_TOKENS, Tokenizer

torch.set_num_threads(1)  # tiny models: one thread is fastest, and the machine is shared


def byte_tokenizer(merges=()):
    """256 byte tokens, then the given merges (each the concatenation of earlier tokens), then the specials."""
    ranks = {bytes([i]): i for i in range(256)}
    for m in merges:
        ranks[m] = len(ranks)
    return Tokenizer(ranks, {s: len(ranks) + k for k, s in enumerate(SPECIAL_TOKENS)})


def tiny_model(vocab_size, seed=0, block_size=64):
    torch.manual_seed(seed)
    return GPT(GPTConfig(vocab_size=vocab_size, block_size=block_size, n_layer=2, n_head=2, n_kv_head=1,
                         n_embd=32)).eval()


def save_model(out_dir, model, tok, stage="train"):
    os.makedirs(out_dir, exist_ok=True)
    torch.save({"stage": stage, "step": 1, "model": model.state_dict(), "model_config": asdict(model.config),
                "config": {}}, os.path.join(out_dir, "ckpt.pt"))
    tok.save(os.path.join(out_dir, "tokenizer.tiktoken"))
    return str(out_dir)


def unigram_model(tok, logits):
    """A model whose next-token distribution is softmax(logits) everywhere: every embedding is the same
    vector of ones, no block changes it (zero output projections), and RMSNorm(ones) = ones."""
    model = tiny_model(tok.n_vocab)
    with torch.no_grad():
        model.wte.weight.fill_(1.0)
        for block in model.blocks:
            block.attn.wo.weight.zero_()
            block.mlp.down.weight.zero_()
        model.lm_head.weight.zero_()
        model.lm_head.weight[: tok.n_vocab] = logits[:, None] / model.config.n_embd
    return model


WORDS = {"en": "the cat dog sees eats big red house tree runs".split(), "zz": list("かきくけこさしすせそ"),
         "yy": "kot pies dom lis je widzi duzy".split()}


@pytest.fixture(scope="module")
def mini_lab(tmp_path_factory):
    """Three languages (one per group, one without spaces), held-out text and three small tasks."""
    root = tmp_path_factory.mktemp("mini_lab")
    rng = np.random.default_rng(0)
    spaces = {"en": True, "zz": False, "yy": True}
    sentence = lambda lang: (" " if spaces[lang] else "").join(rng.choice(WORDS[lang], 6)) + "."
    manifest = {"languages": [], "groups": {"pretraining": ["en"], "adapting": ["zz"], "other": ["yy"]}, "tasks": {}}
    for group, lang in zip(("pretraining", "adapting", "other"), WORDS):
        os.makedirs(root / "text" / lang)
        docs = [" ".join(sentence(lang) for _ in range(4)) for _ in range(30)]
        (root / "text" / lang / "val.txt").write_text("\n\n".join(docs) + "\n", encoding="utf-8")
        manifest["languages"].append({"code": lang, "group": group, "spaces": spaces[lang],
                                      "train": f"text/{lang}/val.txt", "val": f"text/{lang}/val.txt"})
    for task, kind, metric in (("t_mc", "mc", "acc"), ("t_qa", "gen", "f1"), ("t_mt", "gen", "chrf")):
        manifest["tasks"][task] = {"kind": kind, "metric": metric, "files": {}}
        os.makedirs(root / "tasks" / task)
        for lang in WORDS:
            lines = []
            for k in range(6):
                ex = {"task": task, "lang": lang, "id": f"{task}-{k}", "kind": kind}
                ex.update({"context": sentence(lang),
                           "choices": [" " * spaces[lang] + sentence(lang) for _ in range(2)], "label": k % 2}
                          if kind == "mc"
                          else {"prompt": sentence(lang), "answers": [sentence(lang)], "metric": metric})
                lines.append(json.dumps(ex, ensure_ascii=False))
            (root / "tasks" / task / f"{lang}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
            manifest["tasks"][task]["files"][lang] = f"tasks/{task}/{lang}.jsonl"
    (root / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    return str(root)


@pytest.fixture(scope="module")
def two_models(mini_lab, tmp_path_factory):
    """Two random models with different vocabularies: bytes only (260) and a BPE trained on the lab (300)."""
    texts = [open(os.path.join(mini_lab, "text", lang, "val.txt"), encoding="utf-8").read() for lang in WORDS]
    bpe = tokenizer.train(texts, 300)
    root = tmp_path_factory.mktemp("models")
    return {"Bytes": save_model(root / "bytes", tiny_model(260, seed=1), byte_tokenizer()),
            "BPE": save_model(root / "bpe", tiny_model(bpe.n_vocab, seed=2, block_size=48), bpe, stage="finetune")}


FAST = ["--device=cpu", "--progress=false", "--max_examples=3", "--gen_tokens=4", "--bpb_bytes=2000",
        "--sim_bytes=1500"]


@pytest.fixture(scope="module")
def results(mini_lab, two_models, tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "results.json"
    models = [f"{name}={path}" for name, path in two_models.items()]
    return evaluate.main(["--models", *models, f"--data_dir={mini_lab}", f"--out={out}", "--shots=1", *FAST])


# ---- bits per byte and perplexity -----------------------------------------------------------------------

def test_perplexity_is_exp_of_the_mean_token_loss(mini_lab):
    tok, model = byte_tokenizer(), tiny_model(260, seed=3, block_size=32)
    path = os.path.join(mini_lab, "text", "en", "val.txt")
    _, ppl, _ = evaluate.language_bpb(model, tok, path, 0, 8, "cpu", nullcontext())
    # independently: the same text as <|endoftext|> + document, cut into windows, through forward()'s loss
    ids = []
    for doc in open(path, encoding="utf-8").read().split("\n\n"):
        if doc.strip():
            ids += [tok.eot_id] + list(doc.encode("utf-8"))  # byte tokenizer: an id is a byte
    n = (len(ids) - 1) // 32
    x = torch.tensor(ids[: n * 32]).view(n, 32)
    y = torch.tensor(ids[1: n * 32 + 1]).view(n, 32)
    with torch.no_grad():
        _, loss = model(x, y.masked_fill(y == tok.eot_id, -1))  # <|endoftext|> holds no text: not scored
    assert ppl == pytest.approx(math.exp(loss.item()), rel=1e-5)


def test_bits_per_byte_of_a_uniform_model(tmp_path):
    tok = byte_tokenizer([b"ab"])  # "abab..." is all 2-byte tokens
    assert tok.encode("abababab") == [256] * 4
    path = tmp_path / "val.txt"
    path.write_text("\n\n".join(["abababab" * 5] * 20) + "\n")
    model = tiny_model(tok.n_vocab, block_size=16)
    with torch.no_grad():
        model.lm_head.weight.zero_()  # every logit 0: every token costs ln V nats
    bpb, ppl, n_bytes = evaluate.language_bpb(model, tok, str(path), 0, 4, "cpu", nullcontext())
    assert bpb == pytest.approx(math.log2(tok.n_vocab) / 2, rel=1e-5)  # log2(V) / (bytes per token)
    assert ppl == pytest.approx(tok.n_vocab, rel=1e-5)
    # a byte budget cuts the text (to whole windows of block_size tokens)
    _, _, cut = evaluate.language_bpb(model, tok, str(path), 100, 4, "cpu", nullcontext())
    assert n_bytes > cut and cut <= 100


# ---- the whole run: tables and results.json -------------------------------------------------------------

def test_overall_leaves_out_the_unseen_script_group():
    group_of = {"en": "pretraining", "qa": "adapting", "qka": "unseen_script"}
    means = evaluate.group_means({"en": 1.0, "qa": 2.0, "qka": 20.0}, group_of,
                                 ["pretraining", "adapting", "unseen_script"])
    assert means == {"pretraining": 1.0, "adapting": 2.0, "unseen_script": 20.0, "overall": 1.5}


def test_results_group_means_and_tables(results):
    groups, group_of = results["groups"], results["languages"]
    assert list(results["models"]) == ["Bytes", "BPE"]
    assert results["models"]["BPE"]["chat"] and not results["models"]["Bytes"]["chat"]  # finetuned -> ChatML
    assert {"bpb", "perplexity", "self_sim", "anisotropy", "self_sim_adjusted", "self_sim/layer2",
            "t_mc/acc", "t_mc/acc_bytes", "t_mc/margin", "t_mc/gold_bpb", "t_qa/f1", "t_qa/rouge_l",
            "t_mt/chrf", "t_mt/bleu", "t_mt/exact"} <= set(results["metrics"])
    for metric, per_model in results["metrics"].items():
        for entry in per_model.values():
            for g in groups:
                values = [v for lang, v in entry["langs"].items() if group_of[lang] == g]
                assert entry["groups"][g] == pytest.approx(np.mean(values))
            paper_groups = [v for lang, v in entry["langs"].items() if group_of[lang] in evaluate.GROUPS]
            assert entry["groups"]["overall"] == pytest.approx(np.mean(paper_groups))
    bpb = results["metrics"]["bpb"]
    table = open(os.path.splitext(results["settings"]["out"])[0] + ".md", encoding="utf-8").read()
    assert (f"| μ_adapting | {bpb['Bytes']['groups']['adapting']:.3f} | {bpb['BPE']['groups']['adapting']:.3f} |"
            in table)
    assert (f"BPE (V={results['models']['BPE']['vocab_size']})" in table and "| zz (adapting) |" in table
            and "layer 2" in table)
    assert json.load(open(results["settings"]["out"]))["metrics"]["bpb"] == bpb
    # per item of a multiple-choice task: right or wrong, their mean the accuracy; labels 0, 1, 0 of 2 choices
    for model, per_task in results["details"].items():
        for lang, entry in per_task["tasks"]["t_mc"].items():
            assert len(entry["correct"]) == 3 and set(entry["correct"]) <= {"0", "1"}
            assert entry["correct"].count("1") / 3 == pytest.approx(
                results["metrics"]["t_mc/acc"][model]["langs"][lang])
            assert (entry["chance"], entry["majority"]) == (pytest.approx(0.5), pytest.approx(2 / 3))
    # the same held-out words for both vocabularies
    details = results["details"]
    assert details["Bytes"]["self_sim_occurrences"] == details["BPE"]["self_sim_occurrences"]


def test_min_count_reaches_self_similarity(mini_lab, two_models, tmp_path, capsys):
    """--min_count is the number of occurrences a word needs to count in self-similarity (the threshold itself:
    tests/test_selfsim.py): above every word's count no word is left, with a warning and no score. Fails if
    evaluate.py ignores --min_count."""
    def words(min_count):
        out = evaluate.main([f"--models=A={two_models['Bytes']}", f"--data_dir={mini_lab}", "--benchmarks=false",
                             "--bpb=false", "--langs=en", f"--min_count={min_count}",
                             f"--out={tmp_path / f'{min_count}.json'}", *FAST])
        return out["details"]["A"]["self_sim_words"]["en"], out["metrics"]
    (some, metrics), (none, no_metrics) = words(2), words(10**6)
    assert some > 0 and "self_sim" in metrics and none == 0 and "self_sim" not in no_metrics
    assert "no word occurs 1000000 times" in capsys.readouterr().err


def test_item_record_counts_the_scored_examples_only():
    examples = [{"choices": ["a", "b"], "label": 1}, {"choices": ["a", "b", "c"], "label": 1},
                {"choices": ["a", "b"], "label": 0}, {"contexts": ["x", "y"], "continuation": "z", "label": 1}]
    # picks: (by acc, by acc_bytes, by acc_calibrated)
    record = evaluate.item_record(examples, [(1, 1, 0), (0, 1, 1), None, (1, 0, 1)])
    # scored: labels 1, 1, 1 (the third example did not fit); always answering 1 scores 3 of 3
    assert record == {"correct": "10-1", "correct_calibrated": "01-1",
                      "chance": pytest.approx((1 / 2 + 1 / 3 + 1 / 2) / 3), "majority": 1.0}
    assert evaluate.item_record(examples[:1], [None]) == {"correct": "-", "correct_calibrated": "-", "chance": 0.0,
                                                          "majority": None}


# ---- bad input ------------------------------------------------------------------------------------------

def fails(args, message):
    with pytest.raises(SystemExit) as e:
        evaluate.main(args + ["--device=cpu", "--progress=false"])
    assert message in str(e.value), str(e.value)


def test_bad_models(two_models, tmp_path):
    fails(["--models", "Baseline"], "should look like NAME=out_dir")
    fails(["--models", "A=x", "A=y"], "given twice")
    shutil.copy(os.path.join(two_models["Bytes"], "ckpt.pt"), tmp_path)
    fails(["--models", f"A={tmp_path}"], "no tokenizer.tiktoken in")
    fails(["--models", f"A={tmp_path / 'nothing'}"], "no ckpt.pt in")


def test_bad_settings():
    fails(["--models", "A=x", "--mc_batch_size=0"], "mc_batch_size and gen_batch_size must be >= 1")
    fails(["--models", "A=x", "--gen_tokens=-1"], "gen_tokens must be >= 0")


def test_bad_data(mini_lab, two_models, tmp_path):
    lab = tmp_path / "lab"
    shutil.copytree(mini_lab, lab)
    model = [f"--models=A={two_models['Bytes']}"]  # one value: parse_config splits it on commas
    fails(model + [f"--data_dir={lab}", "--tasks", "nope"], "unknown task 'nope'")
    task_file = lab / "tasks" / "t_mc" / "en.jsonl"
    lines = task_file.read_text().splitlines()
    task_file.write_text("\n".join([lines[0], "{not json"] + lines[2:]) + "\n")
    fails(model + [f"--data_dir={lab}"], f"{task_file}, line 2: not valid JSON")
    bad = json.loads(lines[0])
    bad["label"] = 5
    task_file.write_text("\n".join([json.dumps(bad)] + lines[1:]) + "\n")
    fails(model + [f"--data_dir={lab}"], f"{task_file}, line 1: label 5 is out of range for 2 choices")
    (lab / "text" / "yy" / "val.txt").write_text("")
    fails(model + [f"--data_dir={lab}", "--benchmarks=false"], "language 'yy' has no held-out text")
    fails(model + [f"--data_dir={lab}", "--benchmarks=false", "--langs", "qq"], "language 'qq' is neither in")


def test_cli_help_and_exit_code(capsys):
    with pytest.raises(SystemExit) as e:
        evaluate.main(["--help"])
    assert e.value.code == 0 and "--max_examples" in capsys.readouterr().out
    result = run_script("evaluate.py", "--models", "Baseline", check=False)
    assert result.returncode != 0 and "NAME=out_dir" in result.stderr


def test_the_lab_end_to_end(lab_dir, pretrained_dir, two_models, tmp_path):
    """A model pretrained on the lab beside one of another vocabulary, on every lab task, in three languages
    (one per group, one of them written without spaces)."""
    tasks = json.load(open(os.path.join(lab_dir, "manifest.json")))["tasks"]
    out = evaluate.main(["--models", f"Lab={pretrained_dir}", f"Bytes={two_models['Bytes']}", f"--data_dir={lab_dir}",
                         f"--out={tmp_path / 'results.json'}", "--langs", "en", "qth", "qlv", "--max_examples=2",
                         "--gen_tokens=4", "--bpb_bytes=1000", "--sim_bytes=3000", "--device=cpu", "--progress=false"])
    assert not out["models"]["Lab"]["chat"]  # a pretrained model gets plain prompts
    for task, spec in tasks.items():
        per_lang = out["metrics"][f"{task}/{spec['metric']}"]["Lab"]["langs"]
        assert set(per_lang) == {"en", "qth", "qlv"} & set(spec["files"])
        assert all(0 <= v <= 1 for v in per_lang.values() if v is not None)  # None: no choice fits in 32 tokens
    assert set(out["metrics"]["bpb"]["Lab"]["groups"]) == {"pretraining", "adapting", "other", "unseen_script",
                                                           "overall"}
    assert all(0 < v < 20 for v in out["metrics"]["bpb"]["Lab"]["langs"].values())
    assert out["details"]["Lab"]["self_sim_occurrences"] == out["details"]["Bytes"]["self_sim_occurrences"]


def english_twice(mini_lab, folder):
    """A task folder whose t_mc has English under its own code and under 'xx'."""
    shutil.copytree(os.path.join(mini_lab, "tasks", "t_mc"), folder / "tasks" / "t_mc")
    lines = (folder / "tasks" / "t_mc" / "en.jsonl").read_text().replace('"lang": "en"', '"lang": "xx"')
    (folder / "tasks" / "t_mc" / "xx.jsonl").write_text(lines)
    files = {"en": "tasks/t_mc/en.jsonl", "xx": "tasks/t_mc/xx.jsonl"}
    manifest = {"tasks": {"t_mc": {"kind": "mc", "metric": "acc", "files": files}}}
    (folder / "manifest.json").write_text(json.dumps(manifest))


def test_benchmarks_from_another_folder(mini_lab, two_models, tmp_path):
    """Real benchmarks come from their own manifest; a language the text manifest lacks counts as 'other'."""
    english_twice(mini_lab, tmp_path)
    out = evaluate.main([f"--models=A={two_models['Bytes']}", f"--data_dir={mini_lab}", f"--tasks_dir={tmp_path}",
                         "--bpb=false", "--self_sim=false", f"--out={tmp_path / 'r.json'}", *FAST])
    assert list(out["metrics"]) == ["t_mc/acc", "t_mc/acc_prior", "t_mc/acc_calibrated", "t_mc/acc_bytes",
                                    "t_mc/margin", "t_mc/gold_bpb"]
    acc = out["metrics"]["t_mc/acc"]["A"]
    assert out["languages"]["xx"] == "other" and acc["groups"]["other"] == acc["langs"]["xx"]
    assert acc["langs"]["xx"] == acc["langs"]["en"]  # the same examples under another code


def test_the_probe(mini_lab, two_models, tmp_path):
    """--probe: results.json's "probe" holds the task, n and each model's retrieval@1 per layer for every
    language but English (evaluation/probe.py); a copy of English under another code is retrieved at 1."""
    english_twice(mini_lab, tmp_path)
    out = evaluate.main([f"--models=A={two_models['Bytes']}", f"--data_dir={mini_lab}", f"--tasks_dir={tmp_path}",
                         "--bpb=false", "--self_sim=false", "--benchmarks=false", "--probe", "--probe_task=t_mc",
                         f"--out={tmp_path / 'r.json'}", *FAST])
    assert out["probe"] == {"task": "t_mc", "n": 3, "models": {"A": {"xx": [1.0] * 3}}}
    assert json.load(open(tmp_path / "r.json"))["probe"] == out["probe"]
