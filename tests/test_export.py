"""export.py: transformers loads the folder of every stage (pretrained, adapted with an extended vocabulary,
finetuned) and agrees with our model and tokenizer: logits within 1e-4 on text of every lab script, the
same ids, the same greedy tokens, the chat template renders chat.render_prompt's ids over several
turns, every special token is special; bad input stops clearly; lm-evaluation-harness scores an
exported model as evaluate.py does."""

import dataclasses
import json
import os
import shutil
import subprocess
import sys

import pytest
import torch

import adapt
import evaluate
import export
import finetune
import tokenizer
from conftest import EDGE_TEXTS, ROOT, lab_texts, run_script
from evaluation.inference import generate
from pipeline import chat, documents, runtime

transformers = pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def stages(pretrained_dir, lab_dir, tmp_path_factory):
    """A finished run of every training stage: pretrain, adapt (extended vocabulary), finetune of the adapted model."""
    adapted = str(tmp_path_factory.mktemp("adapted"))
    adapt.main([f"--init_from={pretrained_dir}", f"--out_dir={adapted}", "--max_iters=3", "--eval_every=3",
                "--batch_size=4", "--eval_bytes=1024", "--progress=false", "--device=cpu"])
    tuned = str(tmp_path_factory.mktemp("tuned"))
    finetune.main([f"--init_from={adapted}", f"--data_dir={lab_dir}", f"--out_dir={tuned}", "--max_iters=3",
                   "--eval_every=3", "--batch_size=4", "--val_conversations=4", "--n_samples=0", "--max_new_tokens=8",
                   "--progress=false", "--device=cpu"])
    return {"train": pretrained_dir, "adapt": adapted, "finetune": tuned}


@pytest.fixture(scope="module")
def exported(stages, tmp_path_factory):
    root = tmp_path_factory.mktemp("hf")
    return {stage: export.export(path, str(root / stage)) for stage, path in stages.items()}


@pytest.mark.parametrize("stage", ["train", "adapt", "finetune"])
def test_transformers_gives_our_ids_logits_and_greedy_tokens(stage, stages, exported, lab_dir):
    model, tok, ckpt = runtime.load_model(stages[stage])
    model.eval()
    hf_model = transformers.AutoModelForCausalLM.from_pretrained(exported[stage], local_files_only=True).eval()
    hf_tok = transformers.AutoTokenizer.from_pretrained(exported[stage], local_files_only=True)
    assert type(hf_model).__name__ == "LlamaForCausalLM" and hf_model.config.vocab_size == tok.n_vocab
    if stage == "adapt":
        # specials sit mid-vocabulary
        assert tok.n_vocab > ckpt["n_base_vocab"] + 4 and tok.eot_id < ckpt["n_base_vocab"]
    # every document of the lab, train and val, every language: the same ids
    languages = [entry["code"] for entry in documents.read_manifest(lab_dir)["languages"]]
    for split in ("train", "val"):
        for path in documents.language_files(lab_dir, languages, split).values():
            docs = list(documents.read_documents(path))
            assert hf_tok(docs, add_special_tokens=False)["input_ids"] == tok.encode_batch(docs), path
    texts = lab_texts(lab_dir) + EDGE_TEXTS
    block = model.config.block_size
    worst = 0.0
    for text in texts:
        ids = tok.encode(text)
        assert hf_tok(text)["input_ids"] == [tok.eot_id] + ids  # BOS = <|endoftext|>, as our stages prepend
        assert hf_tok.encode(text, add_special_tokens=False) == ids
        assert hf_tok.decode(ids) == tok.decode(ids)
        x = torch.tensor([[tok.eot_id] + ids[: block - 1]])
        with torch.no_grad():
            ours, theirs = model(x)[0], hf_model(x).logits
        assert ours.shape == theirs.shape
        worst = max(worst, (ours - theirs).abs().max().item())
    print(f"\n{stage}: largest |logit difference| over {len(texts)} texts = {worst:.2e}")
    assert worst < 1e-4
    # special tokens spelled inside a text: Hugging Face's default reads them as specials; split_special_tokens
    # gives tokenizer.encode's ids (plain text)
    text = "a <|endoftext|> b <|im_end|>"
    assert hf_tok(text, split_special_tokens=True, add_special_tokens=False)["input_ids"] == tok.encode(text)
    assert hf_tok.encode(text, add_special_tokens=False).count(tok.im_end_id) == 1
    # greedy generation: the same tokens, stopping where we stop
    stops = [tok.im_end_id, tok.eot_id, tok.im_start_id] if stage == "finetune" else [tok.eot_id]
    for text in texts[:4]:
        prompt = [tok.eot_id] + tok.encode(text)[:8]
        ours = generate(model, prompt, 12, stop_ids=set(stops))
        theirs = hf_model.generate(torch.tensor([prompt]), max_new_tokens=12, do_sample=False)[0, len(prompt):].tolist()
        assert theirs == ours


def test_bfloat16_export_holds_our_weights_rounded_and_gives_our_bf16_logits(stages, exported, lab_dir, tmp_path):
    """--dtype=bfloat16: every tensor is ours rounded to bfloat16 (half the folder), transformers loads it in
    bfloat16, and its logits are our model's in bfloat16 within a few bfloat16 steps of the logits' size."""
    from safetensors.torch import load_file

    folder = export.export(stages["adapt"], str(tmp_path / "bf16"), dtype="bfloat16")
    model, tok, _ = runtime.load_model(stages["adapt"])
    ours = {k: v.to(torch.bfloat16) for k, v in export.llama_state_dict(model).items()}
    theirs = load_file(os.path.join(folder, "model.safetensors"))
    assert theirs.keys() == ours.keys() and all(torch.equal(theirs[k], ours[k]) for k in ours)
    size = lambda f: os.path.getsize(os.path.join(f, "model.safetensors"))  # noqa: E731
    assert size(folder) < 0.55 * size(exported["adapt"])
    hf_model = transformers.AutoModelForCausalLM.from_pretrained(folder, local_files_only=True).eval()
    assert hf_model.dtype == torch.bfloat16
    model = model.to(torch.bfloat16).eval()
    for text in lab_texts(lab_dir):
        x = torch.tensor([[tok.eot_id] + tok.encode(text)[:model.config.block_size - 1]])
        with torch.no_grad():
            a, b = model(x)[0].float(), hf_model(x).logits.float()
        assert (a - b).abs().max() <= 4 * torch.finfo(torch.bfloat16).eps * max(1.0, a.abs().max().item())
    with pytest.raises(SystemExit, match="float16.* is not one of"):
        export.main([f"--init_from={stages['train']}", f"--out_dir={tmp_path / 'fp16'}", "--dtype=float16"])


def test_chat_template_renders_render_prompt_ids(stages, exported, lab_dir):
    tok = tokenizer.Tokenizer.load(os.path.join(stages["finetune"], "tokenizer.tiktoken"))
    hf_tok = transformers.AutoTokenizer.from_pretrained(exported["finetune"], local_files_only=True)
    assert (hf_tok.eos_token_id == tok.im_end_id and hf_tok.pad_token_id == tok.pad_id
            and hf_tok.bos_token_id == tok.eot_id)
    conversations = [m for m, _, _ in
                     finetune.read_conversations(os.path.join(lab_dir, "instructions", "val.jsonl"), tok)[0]]
    conversations += [[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi  there \n"},
                       {"role": "assistant", "content": " Hello!"}, {"role": "user", "content": "\tAnd then?"}]]
    for messages in conversations[:20]:
        last_user = max(k for k, m in enumerate(messages) if m["role"] == "user")
        prompt = messages[:last_user + 1]
        assert hf_tok.apply_chat_template(prompt, add_generation_prompt=True, tokenize=True, return_dict=False) == \
            chat.render_prompt(tok, as_sample_feeds_back(prompt))
        if messages[-1]["role"] == "assistant":
            assert hf_tok.apply_chat_template(messages, tokenize=True, return_dict=False) == \
                chat.render(tok, as_sample_feeds_back(messages))[0]
    # a content starting with a line break would encode differently in one piece: refused, not rendered wrong
    with pytest.raises(Exception, match="line break"):
        hf_tok.apply_chat_template([{"role": "user", "content": "\n\nhi"}], add_generation_prompt=True)
    assert not getattr(transformers.AutoTokenizer.from_pretrained(exported["train"], local_files_only=True),
                       "chat_template", None)


def test_one_bos_on_every_documented_chat_path(stages, exported):
    """The template writes <|endoftext|> (as chat templates write their BOS) and tokenizer.json adds one to any
    text tokenized with special tokens (plain prompts start as every stage starts them). docs/protocol.md's
    paths for a chat give one: each is checked here as transformers shows it (vLLM and lm_eval are not
    installed). Fails if the template drops its BOS or the post-processor stops adding one."""
    tok = tokenizer.Tokenizer.load(os.path.join(stages["finetune"], "tokenizer.tiktoken"))
    hf_tok = transformers.AutoTokenizer.from_pretrained(exported["finetune"], local_files_only=True)
    messages = [{"role": "user", "content": "Hello there"}]
    want = chat.render_prompt(tok, messages)
    assert want[0] == tok.eot_id and want.count(tok.eot_id) == 1
    # transformers: apply_chat_template(tokenize=True)
    assert hf_tok.apply_chat_template(messages, add_generation_prompt=True, return_dict=False) == want
    # vLLM LLM.chat, /v1/chat/completions, and /v1/completions with add_special_tokens=false: the rendered text
    # tokenized without special tokens
    rendered = hf_tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    assert hf_tok(rendered, add_special_tokens=False)["input_ids"] == want
    # lm-evaluation-harness >= 0.4.10, --apply_chat_template: a text that starts with the BOS string (bos_token,
    # or bos_token_id decoded) is encoded without special tokens, whatever add_bos_token says
    assert rendered.startswith(hf_tok.bos_token) and rendered.startswith(hf_tok.decode([hf_tok.bos_token_id]))
    # a plain prompt with the defaults (lm_eval's add_bos_token=True, vLLM generate(str)): one BOS
    assert hf_tok("Hello there")["input_ids"] == [tok.eot_id] + tok.encode("Hello there")
    # what docs/protocol.md warns of: a rendered chat tokenized with the defaults gets two
    assert hf_tok(rendered)["input_ids"] == [tok.eot_id] + want


def as_sample_feeds_back(messages):
    """The conversation as sample.py keeps it: every assistant reply stripped before it goes back in."""
    return [dict(m, content=m["content"].strip()) if m["role"] == "assistant" else m for m in messages]


def test_multi_turn_chat_feeds_replies_back_with_one_answer_space(stages, exported):
    """A conversation of several turns, each reply generated by transformers, decoded without its special
    tokens and fed back as it came out: the template's ids are the ids sample.py's loop renders."""
    tok = tokenizer.Tokenizer.load(os.path.join(stages["finetune"], "tokenizer.tiktoken"))
    hf_tok = transformers.AutoTokenizer.from_pretrained(exported["finetune"], local_files_only=True)
    hf_model = transformers.AutoModelForCausalLM.from_pretrained(exported["finetune"], local_files_only=True).eval()
    ours, theirs = [], []  # sample.py's messages, and the messages as a Hugging Face user keeps them
    for turn, question in enumerate(["Is the cat on the mat?", "And the dog?", "Why?"]):
        ours.append({"role": "user", "content": question})
        theirs.append({"role": "user", "content": question})
        prompt = hf_tok.apply_chat_template(theirs, add_generation_prompt=True, tokenize=True, return_dict=False)
        assert prompt == chat.render_prompt(tok, ours), f"turn {turn}"
        with torch.no_grad():
            out = hf_model.generate(torch.tensor([prompt]), max_new_tokens=6, do_sample=False)[0, len(prompt):].tolist()
        reply = hf_tok.decode(out, skip_special_tokens=True)
        reply = reply if reply.strip() else " Yes."  # an untrained model may say nothing: answer for it
        assert not any(name in reply for name in tok.special_tokens)
        ours.append({"role": "assistant", "content": reply.strip()})
        theirs.append({"role": "assistant", "content": reply})
    # the fed-back reply already starts with the answer space: still one space, never two
    theirs[-1]["content"] = " The end.\n"
    ours[-1]["content"] = "The end."
    assert hf_tok.apply_chat_template(theirs, tokenize=True, return_dict=False) == chat.render(tok, ours)[0]
    doubled = chat.render(tok, theirs)[0]  # what the template gave before it stripped the content
    assert hf_tok.apply_chat_template(theirs, tokenize=True, return_dict=False) != doubled
    with pytest.raises(Exception, match="non-empty"):
        hf_tok.apply_chat_template(theirs + [{"role": "user", "content": "  "}], add_generation_prompt=True)


def test_every_special_token_is_registered_as_special(stages, exported):
    """<|endoftext|>, <|im_start|>, <|im_end|> and <|pad|> are special in tokenizer.json and
    tokenizer_config.json alike: transformers lists them all and skip_special_tokens drops them all."""
    for stage in ("train", "finetune"):
        tok = tokenizer.Tokenizer.load(os.path.join(stages[stage], "tokenizer.tiktoken"))
        hf_tok = transformers.AutoTokenizer.from_pretrained(exported[stage], local_files_only=True)
        assert sorted(set(hf_tok.all_special_ids)) == sorted(tok.special_tokens.values()), stage
        with open(os.path.join(exported[stage], "tokenizer.json"), encoding="utf-8") as f:
            added = {t["content"]: t["special"] for t in json.load(f)["added_tokens"]}
        assert added == {name: True for name in tok.special_tokens}
        messages = [{"role": "user", "content": "Hi <there>"}, {"role": "assistant", "content": "Hello."}]
        ids = chat.render(tok, messages)[0] + [tok.pad_id]
        plain = [i for i in ids if i not in tok.special_tokens.values()]
        assert hf_tok.decode(ids, skip_special_tokens=True) == tok.decode(plain)
        assert hf_tok.convert_ids_to_tokens(ids, skip_special_tokens=True) == hf_tok.convert_ids_to_tokens(plain)
        assert "<|im_start|>" in hf_tok.decode(ids)  # kept when asked to keep them


def test_bad_input(stages, exported, tmp_path):
    # an existing folder is never replaced without --overwrite
    with pytest.raises(SystemExit, match="already exists.*--overwrite"):
        export.main([f"--init_from={stages['train']}", f"--out_dir={exported['train']}"])
    export.main([f"--init_from={stages['train']}", f"--out_dir={exported['train']}", "--overwrite"])
    assert os.path.isfile(os.path.join(exported["train"], "model.safetensors"))
    # not the out_dir of a finished stage
    with pytest.raises(SystemExit, match="no ckpt.pt"):
        export.main([f"--init_from={tmp_path}", f"--out_dir={tmp_path / 'hf'}"])
    unfinished = tmp_path / "unfinished"
    shutil.copytree(stages["train"], unfinished)
    ckpt = torch.load(unfinished / "ckpt.pt", weights_only=False)
    ckpt["step"] = 1
    torch.save(ckpt, unfinished / "ckpt.pt")
    with pytest.raises(SystemExit, match="unfinished train run"):
        export.main([f"--init_from={unfinished}", f"--out_dir={tmp_path / 'hf'}"])
    # a vocabulary with a token BPE never produces: no merge list encodes like it, so no export
    model, tok, ckpt = runtime.load_model(stages["train"])
    dead = next(bytes([a, b, c]) for a in b"xyz" for b in b"qjk" for c in b"wvx"
                if bytes([a, b]) not in tok.mergeable_ranks and bytes([b, c]) not in tok.mergeable_ranks)
    bad_tok = tokenizer.Tokenizer({**tok.mergeable_ranks, dead: tok.n_vocab}, tok.special_tokens)
    with pytest.raises(ValueError, match=f"token {tok.n_vocab} .* unreachable"):
        export.hf_tokenizer(bad_tok)
    model.expand_vocab(bad_tok.n_vocab)
    bad = tmp_path / "bad_vocab"
    shutil.copytree(stages["train"], bad)
    ckpt.update(model=model.state_dict(), model_config=dataclasses.asdict(model.config))
    torch.save(ckpt, bad / "ckpt.pt")
    bad_tok.save(str(bad / "tokenizer.tiktoken"))
    with pytest.raises(SystemExit, match="unreachable"):
        export.main([f"--init_from={bad}", f"--out_dir={tmp_path / 'hf'}"])
    assert not os.path.exists(tmp_path / "hf")
    result = run_script("export.py", "--help")
    assert "--init_from" in result.stdout and "--overwrite" in result.stdout
    result = run_script("export.py", "--init_from=/nonexistent", f"--out_dir={tmp_path / 'x'}", check=False)
    assert result.returncode != 0 and "error: no ckpt.pt" in result.stderr and "Traceback" not in result.stderr


def test_lm_eval_scores_like_evaluate(stages, exported, lab_dir, tmp_path):
    """lm-evaluation-harness on the exported model, with config/lm_eval/lab_copa_en.yaml pointed at the
    lab's examples that fit the block, gives evaluate.py's accuracy on the same examples."""
    try:
        import lm_eval  # noqa: F401
    except ImportError:
        pytest.skip("lm_eval is not importable (optional: pip install -r requirements-eval.txt)")
    model, tok, _ = runtime.load_model(stages["train"])
    block = model.config.block_size
    src = os.path.join(lab_dir, "tasks", "lab_copa", "en.jsonl")
    with open(src, encoding="utf-8") as f:
        examples = [json.loads(line) for line in f if line.strip()]
    # both cut a prompt that is too long, but not alike: keep the examples that fit whole
    examples = [e for e in examples
                if 1 + len(tok.encode(e["context"])) + max(len(tok.encode(c)) for c in e["choices"]) <= block]
    assert len(examples) >= 8
    tasks = tmp_path / "tasks"
    os.makedirs(tasks / "lab_copa")
    (tasks / "lab_copa" / "en.jsonl").write_text("".join(json.dumps(e) + "\n" for e in examples), encoding="utf-8")
    (tasks / "manifest.json").write_text(json.dumps({"tasks": {"lab_copa": {"kind": "mc", "metric": "acc",
                                                                            "files": {"en": "lab_copa/en.jsonl"}}}}))
    with open(os.path.join(ROOT, "config", "lm_eval", "lab_copa_en.yaml"), encoding="utf-8") as f:
        yaml = f.read()
    assert "out/lab/tasks/lab_copa/en.jsonl" in yaml
    (tmp_path / "lab_copa_en.yaml").write_text(yaml.replace("out/lab/tasks/lab_copa/en.jsonl",
                                                            str(tasks / "lab_copa" / "en.jsonl")))
    env = {**os.environ, "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "HF_DATASETS_CACHE": str(tmp_path / "cache"), "HF_HOME": str(tmp_path / "hf_home")}
    out = tmp_path / "lm_eval_out"
    result = subprocess.run([sys.executable, "-m", "lm_eval", "--model", "hf", "--model_args",
                             f"pretrained={exported['train']},dtype=float32,add_bos_token=True", "--device", "cpu",
                             "--include_path", str(tmp_path), "--tasks", "lab_copa_en", "--batch_size", "1",
                             "--output_path", str(out)],
                            cwd=tmp_path, capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    found = [os.path.join(d, f) for d, _, files in os.walk(out) for f in files
             if f.startswith("results") and f.endswith(".json")]
    with open(found[0]) as f:
        theirs = json.load(f)["results"]["lab_copa_en"]["acc,none"]
    results = evaluate.main([f"--models=A={stages['train']}", f"--data_dir={lab_dir}", f"--tasks_dir={tasks}",
                             "--langs=en", "--bpb=false", "--self_sim=false", "--max_examples=0", "--device=cpu",
                             "--progress=false", f"--out={tmp_path / 'results.json'}"])
    ours = results["metrics"]["lab_copa/acc"]["A"]["langs"]["en"]
    print(f"\nlab_copa en, {len(examples)} examples: lm_eval acc {theirs:.4f}, evaluate.py acc {ours:.4f}")
    assert theirs == pytest.approx(ours, abs=1e-9)
