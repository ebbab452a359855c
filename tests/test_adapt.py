"""adapt.py: what is frozen stays bit-identical, what learns changes, the merged vocabulary keeps the base
ids, relearn mode, adaptation helps the adapting languages, exact resume, and bad input."""

import json
import os
import shutil

import pytest
import torch

import adapt
import tokenizer
from conftest import run_script
from evaluation import runs
from pipeline import common, documents, runtime

KEEP_HEAD = ["--head=keep"]  # the variant whose old head rows stay frozen (the default: a fresh head)
ADAPT = ["--batch_size=8", "--lr=1e-2", "--eval_bytes=2048", "--progress=false", "--device=cpu"]


def run_adapt(init_from, out_dir, *extra):
    return adapt.main([f"--init_from={init_from}", f"--out_dir={out_dir}", *ADAPT, *extra])


def body(state):
    return {k: v for k, v in state.items() if not k.startswith(("wte.", "lm_head."))}


def assert_same_body(a, b):
    body_a, body_b = body(a), body(b)
    assert body_a.keys() == body_b.keys()
    for k in body_a:
        assert torch.equal(body_a[k], body_b[k]), k


def seen_inputs(ckpt, tok, lab_dir):
    """Which token ids were inputs in the batches of an adaptation run (Batches is reproducible)."""
    files = documents.language_files(lab_dir, ckpt["langs"], "train")
    batches = common.Batches({lang: common.token_file(tok, path) for lang, path in files.items()}, [1.0] * len(files),
                             ckpt["model_config"]["block_size"], ckpt["config"]["seed"])
    seen = torch.zeros(tok.n_vocab, dtype=torch.bool)
    for step in range(ckpt["step"]):
        seen[batches.get(step, 0, ckpt["config"]["batch_size"], "cpu")[0].flatten()] = True
    return seen


@pytest.fixture(scope="module")
def expanded(pretrained_dir, tmp_path_factory):
    """The keep-head adaptation (expand, mean init, old head, only new head rows learn): 12 steps."""
    out = tmp_path_factory.mktemp("adapt_expand")
    run_adapt(pretrained_dir, out, "--max_iters=12", "--eval_every=6", *KEEP_HEAD)
    return str(out)


def test_expand_learns_only_new_rows_and_their_head_rows(expanded, pretrained_dir, lab_dir):
    base, base_tok, _ = runtime.load_model(pretrained_dir)
    model, tok, ckpt = runtime.load_model(expanded)  # merged back into a plain GPT every stage can load
    n_old, n_new = base_tok.n_vocab, tok.n_vocab
    assert ckpt["stage"] == "adapt" and n_new == n_old + n_old // 2
    before, after = base.state_dict(), model.state_dict()
    assert_same_body(before, after)
    for name in ("wte.weight", "lm_head.weight"):  # old rows bit-identical (head=keep freezes the head's too)
        assert torch.equal(after[name][:n_old], before[name][:n_old])
    # the start the run had: the same surgery, undone by nothing
    start = runtime.load_model(pretrained_dir)[0]
    adapt.start_rows(start, base_tok, tok, "expand", "mean", "keep", ckpt["config"]["seed"])
    changed_emb = (after["wte.weight"][n_old:n_new] != start.wte.weight[n_old:n_new]).any(1)
    changed_head = (after["lm_head.weight"][n_old:n_new] != start.lm_head.weight[n_old:n_new]).any(1)
    assert changed_head.all()  # every new head row gets a gradient from the softmax
    # an embedding row learns exactly when its token was an input in some batch
    seen = seen_inputs(ckpt, tok, lab_dir)
    assert seen[n_old:].any() and torch.equal(changed_emb, seen[n_old:])
    # only the new rows and the new head rows carry optimizer state
    shapes = sorted(tuple(s["exp_avg"].shape) for s in ckpt["optimizer"]["state"].values())
    padded = model.config.padded_vocab_size
    assert shapes == [(padded - n_old, model.config.n_embd)] * 2


def test_merged_tokenizer_keeps_base_ids(expanded, pretrained_dir):
    base = tokenizer.Tokenizer.load(os.path.join(pretrained_dir, "tokenizer.tiktoken"))
    merged = tokenizer.Tokenizer.load(os.path.join(expanded, "tokenizer.tiktoken"))
    assert merged.n_vocab > base.n_vocab
    assert all(merged.token_bytes(i) == base.token_bytes(i) for i in range(base.n_vocab))
    assert merged.special_tokens == base.special_tokens


def test_log_shows_adapting_languages_improve_and_every_group(expanded, lab_dir):
    evals = [r for r in runs.read_log(expanded) if "val_bpb" in r]
    assert [r["step"] for r in evals] == [0, 6, 12] and [r["tokens"] for r in evals] == [0, 6 * 256, 12 * 256]
    assert evals[-1]["val_bpb"] < evals[0]["val_bpb"]  # val_bpb = mean of the adapted languages
    groups = documents.read_manifest(lab_dir)["groups"]
    # 12 tiny steps on a 30 kB lab: every adapting language but at most one gets better (the unrelated
    # Latin-script one, qtu, may not yet)
    better = [lang for lang in groups["adapting"] if evals[-1][f"val_bpb_{lang}"] < evals[0][f"val_bpb_{lang}"]]
    assert len(better) >= len(groups["adapting"]) - 1, better
    for group, langs in groups.items():
        if langs:
            assert f"val_bpb_mean_{group}" in evals[-1] and f"base_val_bpb_mean_{group}" in evals[0]
            assert all(f"val_bpb_{lang}" in evals[-1] for lang in langs)


def test_a_fresh_head_learns_every_row_and_still_freezes_body_and_old_embeddings(pretrained_dir, tmp_path):
    run_adapt(pretrained_dir, tmp_path, "--max_iters=3", "--eval_every=0", "--head=fresh", "--emb_init=random")
    base, base_tok, _ = runtime.load_model(pretrained_dir)
    model, _, _ = runtime.load_model(str(tmp_path))
    before, after = base.state_dict(), model.state_dict()
    assert_same_body(before, after)
    n_old = base_tok.n_vocab
    assert torch.equal(after["wte.weight"][:n_old], before["wte.weight"][:n_old])
    assert (after["lm_head.weight"][:n_old] != before["lm_head.weight"][:n_old]).any(1).all()
    # where each recipe starts the head: keep = the pretrained rows, fresh = a new draw for every row
    fresh, keep = runtime.load_model(pretrained_dir)[0], runtime.load_model(pretrained_dir)[0]
    tok = tokenizer.Tokenizer.load(os.path.join(str(tmp_path), "tokenizer.tiktoken"))
    adapt.start_rows(fresh, base_tok, tok, "expand", "random", "fresh", 1337)
    adapt.start_rows(keep, base_tok, tok, "expand", "random", "keep", 1337)
    assert torch.equal(keep.lm_head.weight[:n_old], before["lm_head.weight"][:n_old])
    assert (fresh.lm_head.weight[:n_old] != before["lm_head.weight"][:n_old]).any(1).all()


def test_start_rows_refuses_a_recipe_it_does_not_know(pretrained_dir):
    """Only the command line's choices: a head of "old" once meant keep by accident, since only "fresh" was tested
    for. Fails if start_rows stops checking its arguments against adapt.CHOICES."""
    model, tok, _ = runtime.load_model(pretrained_dir)
    for recipe in (("expand", "mean", "old"), ("expand", "zero", "keep"), ("grow", "mean", "keep")):
        with pytest.raises(ValueError, match="must be one of"):
            adapt.start_rows(model, tok, tok, *recipe, 1337)


def test_relearn_changes_every_embedding_and_head_row_and_nothing_else(pretrained_dir, lab_dir, tmp_path):
    run_adapt(pretrained_dir, tmp_path, "--mode=relearn", "--max_iters=3", "--eval_every=0")
    base, base_tok, _ = runtime.load_model(pretrained_dir)
    model, tok, ckpt = runtime.load_model(str(tmp_path))
    assert tok.n_vocab == base_tok.n_vocab  # relearn keeps the vocabulary unless n_new_tokens > 0
    before, after = base.state_dict(), model.state_dict()
    assert_same_body(before, after)
    for name in ("wte.weight", "lm_head.weight"):
        assert (after[name] != before[name]).any(1).all()
    start = runtime.load_model(pretrained_dir)[0]  # the reset it started from has learned too
    adapt.start_rows(start, base_tok, tok, "relearn", "mean", "fresh", 1337)
    assert (after["lm_head.weight"][:tok.n_vocab] != start.lm_head.weight[:tok.n_vocab]).any(1).all()
    changed = (after["wte.weight"][:tok.n_vocab] != start.wte.weight[:tok.n_vocab]).any(1)
    assert torch.equal(changed, seen_inputs(ckpt, tok, lab_dir))


def test_resume_continues_exactly_and_a_complete_run_returns(expanded, pretrained_dir, tmp_path, monkeypatch, capsys):
    real_save = runtime.save_checkpoint

    def save_then_die(out_dir, ckpt):  # a kill right after the step-6 checkpoint
        real_save(out_dir, ckpt)
        raise KeyboardInterrupt

    monkeypatch.setattr(runtime, "save_checkpoint", save_then_die)
    capsys.readouterr()
    with pytest.raises(KeyboardInterrupt):
        run_adapt(pretrained_dir, tmp_path, "--max_iters=12", "--eval_every=6", *KEEP_HEAD)
    # the inputs of `expanded`: its merged vocabulary, built once, is reused (tests/test_merged_vocab.py)
    assert "merged vocabulary: reused" in capsys.readouterr().out
    monkeypatch.setattr(runtime, "save_checkpoint", real_save)
    assert runtime.load_checkpoint(str(tmp_path))["step"] == 6
    run_adapt(pretrained_dir, tmp_path, "--max_iters=12", "--eval_every=6", "--resume", *KEEP_HEAD)
    resumed, reference = runtime.load_checkpoint(str(tmp_path)), runtime.load_checkpoint(expanded)
    for k, v in reference["model"].items():
        assert torch.equal(resumed["model"][k], v), k
    for i, state in reference["optimizer"]["state"].items():
        assert torch.equal(resumed["optimizer"]["state"][i]["exp_avg_sq"], state["exp_avg_sq"])
    strip = lambda log: [{k: v for k, v in r.items() if k != "tok_per_s"} for r in log]
    assert strip(runs.read_log(str(tmp_path))) == strip(runs.read_log(expanded))
    capsys.readouterr()
    run_adapt(pretrained_dir, tmp_path, "--max_iters=12", "--eval_every=6", "--resume", *KEEP_HEAD)
    assert "already complete" in capsys.readouterr().out


def test_more_new_tokens_than_the_text_supports_learns_what_it_can(pretrained_dir, lab_dir, tmp_path, capsys):
    lang = documents.group_languages(lab_dir, "adapting")[0]
    run_adapt(pretrained_dir, tmp_path, "--n_new_tokens=1000000", "--max_iters=1", "--eval_every=0", f"--langs={lang}",
              f"--eval_langs={lang}")
    out = capsys.readouterr().out
    learned = tokenizer.Tokenizer.load(os.path.join(tmp_path, "tokenizer.tiktoken")).n_vocab - \
        tokenizer.Tokenizer.load(os.path.join(pretrained_dir, "tokenizer.tiktoken")).n_vocab
    assert 0 < learned < 1000000 and f"supports only {learned} of the 1000000" in out


def test_bad_inputs(pretrained_dir, expanded, lab_dir, tmp_path):
    def fails(match, *args, init_from=pretrained_dir):
        with pytest.raises(SystemExit, match=match):
            run_adapt(init_from, tmp_path / "out", "--max_iters=1", *args)
        assert not os.path.exists(tmp_path / "out" / "ckpt.pt")

    fails("no checkpoint", init_from=str(tmp_path / "nowhere"))
    fails("--init_from is required", init_from="")
    fails("written by adapt.py", init_from=expanded)
    fails("'xx' is not in", "--langs=xx")
    fails("not one of", "--mode=forget")
    fails("--mode=relearn relearns the whole head", "--mode=relearn", "--head=keep")
    fails("not one of", "--head=old")
    fails("float16 is for evaluation only", "--dtype=float16")
    # a language whose training text is empty
    manifest = documents.read_manifest(lab_dir)
    entry = next(e for e in manifest["languages"] if e["code"] in manifest["groups"]["adapting"])
    data = tmp_path / "data"
    data.mkdir()
    for e in manifest["languages"]:
        e["train"], e["val"] = (os.path.join(lab_dir, e[split]) for split in ("train", "val"))
    (data / "empty.txt").write_text("\n\n")
    entry["train"] = str(data / "empty.txt")
    (data / "manifest.json").write_text(json.dumps(manifest))
    fails(f"'{entry['code']}' has no text", f"--data_dir={data}")
    # a checkpoint whose tokenizer is another vocabulary
    wrong = tmp_path / "wrong"
    shutil.copytree(pretrained_dir, wrong)
    shutil.copy(os.path.join(expanded, "tokenizer.tiktoken"), wrong / "tokenizer.tiktoken")
    fails(r"the tokenizer has \d+ tokens but the model expects", init_from=str(wrong))


def test_sizes_of_zero_are_refused_up_front(pretrained_dir, tmp_path):
    for key in ("batch_size", "grad_accum", "adapt_tokens", "eval_bytes"):
        with pytest.raises(SystemExit, match=f"--{key} must be > 0, got 0"):
            run_adapt(pretrained_dir, tmp_path / key, f"--{key}=0")
        assert not os.path.exists(tmp_path / key)
    for value in ("-1", "1"):  # 0 means all of the text; otherwise at least a byte per language
        with pytest.raises(SystemExit, match="extend_max_bytes"):
            run_adapt(pretrained_dir, tmp_path / "cap", f"--extend_max_bytes={value}")
        assert not os.path.exists(tmp_path / "cap")


def test_split_rows_have_no_weight_to_write_into_by_mistake(pretrained_dir):
    model = runtime.load_model(pretrained_dir)[0]
    n = model.config.vocab_size // 2
    learned = adapt.freeze(model, n, n)
    assert learned == [model.wte.learned, model.lm_head.learned]
    assert [p for p in model.parameters() if p.requires_grad] == learned  # the body learns nothing
    with pytest.raises(AttributeError):
        model.wte.weight  # a write through a copy of the matrix would go nowhere: there is no such copy
    before = model.wte.merged()
    with torch.no_grad():
        model.wte.learned[0] += 1.0  # a write to a learned row is a write to the model
    assert torch.equal(model.wte.merged()[:n], before[:n]) and not torch.equal(model.wte.merged()[n], before[n])


def test_cli_errors_exit_nonzero(tmp_path):
    result = run_script("adapt.py", f"--init_from={tmp_path}/missing", f"--out_dir={tmp_path}/out", check=False)
    assert result.returncode != 0 and "error: no checkpoint" in result.stderr


def test_adam_betas_reach_the_optimizer(pretrained_dir, tmp_path):
    """Fails if adapt.py builds AdamW without betas=(beta1, beta2)."""
    run_adapt(pretrained_dir, tmp_path, "--mode=relearn", "--max_iters=1", "--eval_every=0", "--langs=qen",
              "--eval_langs=qen", "--eval_bytes=256", "--beta1=0.5", "--beta2=0.6")
    groups = runtime.load_checkpoint(str(tmp_path))["optimizer"]["param_groups"]
    assert {tuple(g["betas"]) for g in groups} == {(0.5, 0.6)}

