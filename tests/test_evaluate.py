"""evaluate.py: bits per byte and perplexity, self-similarity, multiple choice and generation, the tables,
and bad input. Models here are tiny and random (or built by hand so that their probabilities are known);
a mini lab of three languages is written in-process."""

import itertools
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
    return GPT(GPTConfig(vocab_size=vocab_size, block_size=block_size, n_layer=2, n_head=2, n_kv_head=1, n_embd=32)).eval()


def save_model(out_dir, model, tok, stage="train"):
    os.makedirs(out_dir, exist_ok=True)
    torch.save({"stage": stage, "step": 1, "model": model.state_dict(), "model_config": asdict(model.config), "config": {}},
               os.path.join(out_dir, "ckpt.pt"))
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
        manifest["languages"].append({"code": lang, "group": group, "spaces": spaces[lang], "train": f"text/{lang}/val.txt",
                                      "val": f"text/{lang}/val.txt"})
    for task, kind, metric in (("t_mc", "mc", "acc"), ("t_qa", "gen", "f1"), ("t_mt", "gen", "chrf")):
        manifest["tasks"][task] = {"kind": kind, "metric": metric, "files": {}}
        os.makedirs(root / "tasks" / task)
        for lang in WORDS:
            lines = []
            for k in range(6):
                ex = {"task": task, "lang": lang, "id": f"{task}-{k}", "kind": kind}
                ex.update({"context": sentence(lang), "choices": [" " * spaces[lang] + sentence(lang) for _ in range(2)], "label": k % 2} if kind == "mc"
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


FAST = ["--device=cpu", "--progress=false", "--max_examples=3", "--gen_tokens=4", "--bpb_bytes=2000", "--sim_bytes=1500"]


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


# ---- self-similarity ------------------------------------------------------------------------------------

def test_self_similarity_of_identical_and_random_vectors():
    same = torch.ones(6, 16)
    sim, aniso = evaluate.self_similarity(same, torch.tensor([0, 0, 0, 1, 1, -1]))
    assert sim == pytest.approx([1.0]) and aniso == pytest.approx([1.0])
    g = torch.Generator().manual_seed(0)
    random_vectors = torch.randn(300, 4096, generator=g)
    sim, aniso = evaluate.self_similarity(random_vectors, torch.arange(300) % 20)
    assert abs(sim[0]) < 0.02 and abs(aniso[0]) < 0.02  # cosines of random vectors ~ N(0, 1/4096)


def test_self_similarity_matches_pairwise_cosines():
    g = torch.Generator().manual_seed(1)
    vectors = torch.randn(3, 12, 5, generator=g)  # 3 layers, 12 occurrences
    ids = torch.tensor([0, 1, 0, 2, 1, -1, 0, 2, -1, 1, 3, 2])  # word 3 occurs once: it has no pair
    sim, aniso = evaluate.self_similarity(vectors, ids)
    cos = lambda u, v: float(u @ v / (u.norm() * v.norm()))
    for layer in range(3):
        per_word = [np.mean([cos(vectors[layer, i], vectors[layer, j]) for i, j in itertools.combinations(torch.where(ids == w)[0], 2)])
                    for w in (0, 1, 2)]
        assert sim[layer] == pytest.approx(np.mean(per_word))
        assert aniso[layer] == pytest.approx(np.mean([cos(vectors[layer, i], vectors[layer, j]) for i, j in itertools.combinations(range(12), 2)]))


def test_words_do_not_depend_on_the_tokenizer():
    assert [w for w, _ in evaluate.text_words("The cat's hat, the cat.", True)] == ["The", "cat", "s", "hat", "the", "cat"]
    # a word keeps its combining marks (Devanagari vowel signs and virama), which Python's re would split off
    assert [w for w, _ in evaluate.text_words("हमुस् नोक्।", True)] == ["हमुस्", "नोक्"]
    # without spaces: grapheme clusters holding a letter ("e" + combining accent is one), punctuation skipped
    assert [w for w, _ in evaluate.text_words("かきe\u0301。か", False)] == ["か", "き", "e\u0301", "か"]
    docs = ["the cat sees the dog. the cat runs", "the dog eats. the cat"]
    byte_tok, bpe = byte_tokenizer(), tokenizer.train(docs * 20, 280)
    one = evaluate.self_sim_sample(docs, [(byte_tok, 64, byte_tok.token_byte_lengths())], 10_000, True, 2)
    both = evaluate.self_sim_sample(docs, [(byte_tok, 64, byte_tok.token_byte_lengths()), (bpe, 64, bpe.token_byte_lengths())], 10_000, True, 2)
    assert one["words"] == both["words"] == ["cat", "dog", "the"]
    # a short block cuts the documents (for every model alike), and a word the cut may split is dropped
    cut = evaluate.self_sim_sample(docs, [(byte_tok, 12, byte_tok.token_byte_lengths())], 10_000, True, 1)
    assert cut["texts"][0] == "the cat see" and cut["words"] == ["cat", "dog", "the"] and len(cut["word_ids"][0]) == 2


@pytest.mark.parametrize("vocab", ["bytes", "bpe"])
def test_language_self_sim_uses_the_last_token_of_each_word(vocab):
    docs = ["the cat sees the dog. the cat runs", "the dog eats. the cat"]
    tok = byte_tokenizer() if vocab == "bytes" else tokenizer.train(docs * 20, 280)  # words of many tokens / of one
    model = tiny_model(tok.n_vocab, seed=4)
    sample = evaluate.self_sim_sample(docs, [(tok, 64, tok.token_byte_lengths())], 10_000, True, 2)
    sims, n = evaluate.language_self_sim(model, tok, sample, 1, "cpu", nullcontext())
    # independently: walk the tokens, note the one where each word's last byte lands, take its hidden states
    vectors, ids = [], []
    for text, word_ids in zip(sample["texts"], sample["word_ids"]):
        tokens = [tok.eot_id] + tok.encode(text)
        with torch.no_grad():
            states = model.hidden_states(torch.tensor([tokens]))
        owner = [k for k, t in enumerate(tokens) for _ in tok.token_bytes(t)]  # byte -> its token
        ends = [len(text[:m.end()].encode()) for m in evaluate.WORD.finditer(text)]
        vectors += [torch.stack([s[0, owner[e - 1]] for s in states]) for e in ends]
        ids += list(word_ids)
    expected_sim, expected_aniso = evaluate.self_similarity(torch.stack(vectors, 1), torch.tensor(ids))
    assert n == len(ids)
    assert sims["self_sim"] == pytest.approx(expected_sim, abs=1e-5)
    assert sims["anisotropy"] == pytest.approx(expected_aniso, abs=1e-5)


# ---- benchmarks -----------------------------------------------------------------------------------------

def test_score_choices_equals_the_full_forward_pass():
    model = tiny_model(260, seed=5)
    context, choices = [256, 10, 20, 30, 40], [[50], [60, 70, 80], [90, 100]]
    got = evaluate.score_choices(model, context, choices)
    for choice, score in zip(choices, got):
        ids = torch.tensor([context + choice])
        with torch.no_grad():
            nll = model.token_nll(ids[:, :-1], ids[:, 1:])[0, len(context) - 1:]
        assert score == pytest.approx(-nll.sum().item(), abs=1e-4)


def test_multiple_choice_picks_the_likelier_choice_and_length_normalisation_can_flip_it():
    tok = byte_tokenizer()
    logits = torch.zeros(tok.n_vocab)
    logits[ord("x")], logits[ord("y")] = 5.0, 6.0
    model = unigram_model(tok, logits)
    log_p = torch.log_softmax(logits, -1)
    # "x" is likelier than "yyyy" (log p(x) > 4 log p(y)) but less likely per byte (log p(x) < log p(y))
    assert log_p[ord("x")] > 4 * log_p[ord("y")] and log_p[ord("x")] < log_p[ord("y")]
    scores = evaluate.score_choices(model, [tok.eot_id] + tok.encode("q"), [tok.encode("x"), tok.encode("yyyy")])
    assert scores == pytest.approx([log_p[ord("x")].item(), 4 * log_p[ord("y")].item()], abs=1e-4)
    task = {"kind": "mc"}
    cfg = evaluate.EvaluateConfig(shots=0)
    for label, expected in ((0, {"acc": 1.0, "acc_norm": 0.0}), (1, {"acc": 0.0, "acc_norm": 1.0})):
        ex = {"task": "t", "lang": "zz", "id": "t-0", "kind": "mc", "context": "q", "choices": ["x", "yyyy"], "label": label}
        got, _ = evaluate.run_task(model, tok, task, [ex], [ex], cfg, False, False, nullcontext(), set())
        assert got == expected


def test_generation_stops_at_the_end_of_the_line():
    tok = byte_tokenizer()
    logits = torch.zeros(tok.n_vocab)
    logits[ord("a")] = 20.0  # greedy: "aaaa..." forever
    model = unigram_model(tok, logits)
    ex = {"task": "t", "lang": "en", "id": "t-0", "kind": "gen", "prompt": "say a", "answers": ["aaaa"], "metric": "exact"}
    cfg = evaluate.EvaluateConfig(gen_tokens=4)
    scores, outputs = evaluate.run_task(model, tok, {"kind": "gen"}, [ex], [ex], cfg, False, True, nullcontext(),
                                        evaluate.stop_ids(tok, False))
    assert outputs == ["aaaa"] and scores["exact"] == 1.0
    logits[ord("\n")] = 30.0  # now a newline comes first: the answer is empty
    scores, outputs = evaluate.run_task(unigram_model(tok, logits), tok, {"kind": "gen"}, [ex], [ex], cfg, False, True,
                                        nullcontext(), evaluate.stop_ids(tok, False))
    assert outputs == [""] and scores["exact"] == 0.0


def test_prompts_few_shot_and_chat():
    tok = byte_tokenizer()
    pool = [{"task": "t", "lang": "en", "id": f"t-{k}", "kind": "mc", "context": f"c{k}", "choices": [" no", " yes"], "label": 1}
            for k in range(5)]
    demos = evaluate.pick_demos(pool, pool[0], 2, seed=7)
    assert len(demos) == 2 and pool[0] not in demos
    parallel = [dict(e, lang="yy") for e in pool]  # the same meanings in another language: the same demonstrations
    assert [d["id"] for d in evaluate.pick_demos(parallel, parallel[0], 2, seed=7)] == [d["id"] for d in demos]
    context = evaluate.build_prompt(tok, pool[0], demos, chat=False, spaces=True)
    assert context[0] == tok.eot_id and tok.decode(context[1:]) == f"{demos[0]['context']} yes\n\n{demos[1]['context']} yes\n\nc0"
    # context + choice is the string scored; an assistant's answer starts without the space
    assert [tok.decode(c) for c in evaluate.choice_ids(tok, pool[0], chat=False)] == [" no", " yes"]
    assert [tok.decode(c) for c in evaluate.choice_ids(tok, pool[0], chat=True)] == ["no", "yes"]
    # a finetuned model: ChatML with the system prompt, demonstrations as earlier turns, answers without a space
    context = evaluate.build_prompt(tok, pool[0], demos[:1], chat=True, spaces=True)
    assert context == tokenizer.render_prompt(tok, [{"role": "user", "content": demos[0]["context"]}, {"role": "assistant", "content": "yes"},
                                                    {"role": "user", "content": "c0"}])
    gen = {"task": "g", "lang": "en", "id": "g-0", "kind": "gen", "prompt": "Q: 2+2?\nAnswer:", "answers": ["4"], "metric": "exact"}
    demo = dict(gen, prompt="Q: 1+1?\nAnswer:", answers=["2"])  # a generative answer gets a space, not without spaces
    assert tok.decode(evaluate.build_prompt(tok, gen, [demo], False, True)[1:]) == "Q: 1+1?\nAnswer: 2\n\nQ: 2+2?\nAnswer:"
    assert tok.decode(evaluate.build_prompt(tok, gen, [demo], False, False)[1:]) == "Q: 1+1?\nAnswer:2\n\nQ: 2+2?\nAnswer:"


# ---- the whole run: tables and results.json -------------------------------------------------------------

def test_results_group_means_and_tables(results):
    groups, group_of = results["groups"], results["languages"]
    assert list(results["models"]) == ["Bytes", "BPE"]
    assert results["models"]["BPE"]["chat"] and not results["models"]["Bytes"]["chat"]  # finetuned -> ChatML
    assert {"bpb", "perplexity", "self_sim", "anisotropy", "self_sim_adjusted", "self_sim/layer2", "t_mc/acc", "t_mc/acc_norm",
            "t_qa/f1", "t_qa/rouge_l", "t_mt/chrf", "t_mt/bleu", "t_mt/exact"} <= set(results["metrics"])
    for metric, per_model in results["metrics"].items():
        for entry in per_model.values():
            for g in groups:
                values = [v for lang, v in entry["langs"].items() if group_of[lang] == g]
                assert entry["groups"][g] == pytest.approx(np.mean(values))
            assert entry["groups"]["overall"] == pytest.approx(np.mean(list(entry["langs"].values())))
    bpb = results["metrics"]["bpb"]
    table = open(os.path.splitext(results["settings"]["out"])[0] + ".md", encoding="utf-8").read()
    assert f"| μ_adapting | {bpb['Bytes']['groups']['adapting']:.3f} | {bpb['BPE']['groups']['adapting']:.3f} |" in table
    assert f"BPE (V={results['models']['BPE']['vocab_size']})" in table and "| zz (adapting) |" in table and "layer 2" in table
    assert json.load(open(results["settings"]["out"]))["metrics"]["bpb"] == bpb
    # the same held-out words for both vocabularies
    details = results["details"]
    assert details["Bytes"]["self_sim_occurrences"] == details["BPE"]["self_sim_occurrences"]


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
                         f"--out={tmp_path / 'results.json'}", "--langs", "en", "qth", "qdm", "--max_examples=2", "--gen_tokens=4",
                         "--bpb_bytes=1000", "--sim_bytes=3000", "--device=cpu", "--progress=false"])
    assert not out["models"]["Lab"]["chat"]  # a pretrained model gets plain prompts
    for task, spec in tasks.items():
        per_lang = out["metrics"][f"{task}/{spec['metric']}"]["Lab"]["langs"]
        assert set(per_lang) == {"en", "qth", "qdm"} & set(spec["files"])
        assert all(0 <= v <= 1 for v in per_lang.values() if v is not None)  # None: no choice fits in 32 tokens
    assert set(out["metrics"]["bpb"]["Lab"]["groups"]) == {"pretraining", "adapting", "other", "overall"}
    assert all(0 < v < 20 for v in out["metrics"]["bpb"]["Lab"]["langs"].values())
    assert out["details"]["Lab"]["self_sim_occurrences"] == out["details"]["Bytes"]["self_sim_occurrences"]


def test_benchmarks_from_another_folder(mini_lab, two_models, tmp_path):
    """Real benchmarks come from their own manifest; a language the text manifest lacks counts as 'other'."""
    shutil.copytree(os.path.join(mini_lab, "tasks", "t_mc"), tmp_path / "tasks" / "t_mc")
    lines = (tmp_path / "tasks" / "t_mc" / "en.jsonl").read_text().replace('"lang": "en"', '"lang": "xx"')
    (tmp_path / "tasks" / "t_mc" / "xx.jsonl").write_text(lines)
    files = {"en": "tasks/t_mc/en.jsonl", "xx": "tasks/t_mc/xx.jsonl"}
    (tmp_path / "manifest.json").write_text(json.dumps({"tasks": {"t_mc": {"kind": "mc", "metric": "acc", "files": files}}}))
    out = evaluate.main([f"--models=A={two_models['Bytes']}", f"--data_dir={mini_lab}", f"--tasks_dir={tmp_path}", "--bpb=false",
                         "--self_sim=false", f"--out={tmp_path / 'r.json'}", *FAST])
    assert list(out["metrics"]) == ["t_mc/acc", "t_mc/acc_norm"]
    acc = out["metrics"]["t_mc/acc"]["A"]
    assert out["languages"]["xx"] == "other" and acc["groups"]["other"] == acc["langs"]["xx"]
    assert acc["langs"]["xx"] == acc["langs"]["en"]  # the same examples under another code
