"""sample.py: seeded sampling is reproducible (its generator on the model's device), temperature 0 /
top_k=1 / a tiny top_p are the greedy tokens, streamed text is the decoded text even when a character's
bytes are split over tokens, a finetuned checkpoint is prompted in ChatML and chats over stdin keeping the
conversation, bad input stops clearly. The generation loop itself is evaluation/inference.py's (tests in
tests/test_inference.py)."""

import io
import shutil

import pytest
import torch

import finetune
import sample
from conftest import run_script
from evaluation import inference
from pipeline import chat, runtime


@pytest.fixture(scope="module")
def loaded(pretrained_dir):
    model, tok, _ = runtime.load_model(pretrained_dir)
    return model.eval(), tok


@pytest.fixture(scope="module")
def finetuned_dir(pretrained_dir, lab_dir, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("sample_tuned"))
    finetune.main([f"--init_from={pretrained_dir}", f"--data_dir={lab_dir}", f"--out_dir={out}", "--max_iters=3",
                   "--eval_every=3", "--batch_size=4", "--val_conversations=4", "--n_samples=0", "--max_new_tokens=8",
                   "--progress=false", "--device=cpu"])
    return out


def draw(model, prompt, seed, **kw):
    return list(inference.stream(model, prompt, 16, generator=inference.make_generator(model, seed), **kw))


def test_seeded_sampling_is_reproducible_and_greedy_limits_agree(loaded):
    model, tok = loaded
    prompt = [tok.eot_id] + tok.encode("The cat")
    a, b, c = (draw(model, prompt, seed, temperature=1.0) for seed in (1, 1, 2))
    assert a == b and a != c
    assert (draw(model, prompt, 1, temperature=0.9, top_k=20, top_p=0.9)
            == draw(model, prompt, 1, temperature=0.9, top_k=20, top_p=0.9))
    greedy = inference.generate(model, prompt, 16)
    assert draw(model, prompt, 1, temperature=0.0) == greedy
    assert draw(model, prompt, 3, temperature=1.5, top_k=1) == greedy
    assert draw(model, prompt, 4, temperature=1.5, top_p=1e-6) == greedy
    # the context is never overrun: a prompt that fills the block leaves room for one new token only
    full = prompt * model.config.block_size
    assert len(draw(model, full[: model.config.block_size - 1], 1, temperature=1.0)) == 1


def test_main_samples_with_a_generator_on_the_model_device(pretrained_dir, monkeypatch):
    made, make = [], inference.make_generator
    monkeypatch.setattr(inference, "make_generator",
                        lambda model, seed: made.append((model.wte.weight.device, seed)) or make(model, seed))
    texts = []
    for seed in (5, 5, 6):
        out = io.StringIO()
        sample.main([f"--init_from={pretrained_dir}", "--prompt=The cat", "--temperature=1.0", "--max_new_tokens=12",
                     f"--seed={seed}", "--device=cpu"], out=out)
        texts.append(out.getvalue())
    assert made == [(torch.device("cpu"), 5), (torch.device("cpu"), 5), (torch.device("cpu"), 6)]
    assert texts[0] == texts[1] and texts[0] != texts[2]


def test_stream_prints_whole_characters(loaded):
    _, tok = loaded
    text = "naïve 😀 ชาม नमस्ते"
    byte_ids = [tok.mergeable_ranks[bytes([b])] for b in text.encode("utf-8")]  # every multi-byte character split
    for ids in (byte_ids, tok.encode(text), byte_ids[:-1] + [tok.eot_id]):  # the last: a character cut short
        chunks = []

        class Out(io.StringIO):
            def write(self, s):
                chunks.append(s)

        sample.print_stream(tok, iter(ids), Out())
        assert "".join(chunks) == tok.decode([i for i in ids if i != tok.eot_id])  # special tokens print nothing
    assert "\ufffd" not in "".join(chunks[:-1])  # the cut character: only the final flush replaces it


def test_main_prompt_plain_and_chatml(pretrained_dir, finetuned_dir, loaded):
    model, tok = loaded
    out = io.StringIO()
    sample.main([f"--init_from={pretrained_dir}", "--prompt=The cat", "--temperature=0", "--max_new_tokens=10",
                 "--device=cpu"], out=out)
    new = inference.generate(model, [tok.eot_id] + tok.encode("The cat"), 10, stop_ids={tok.eot_id})
    assert out.getvalue() == tok.decode([t for t in new if t != tok.eot_id]) + "\n"
    # a finetuned checkpoint answers in ChatML, the prompt read from stdin
    tuned, tuned_tok, _ = runtime.load_model(finetuned_dir)
    out = io.StringIO()
    sample.main([f"--init_from={finetuned_dir}", "--temperature=0", "--max_new_tokens=10", "--device=cpu"],
                stdin=io.StringIO("What do cats eat?\n"), out=out)
    prompt = chat.render_prompt(tuned_tok, [{"role": "user", "content": "What do cats eat?"}])
    prompt = prompt[-(tuned.config.block_size - 10):]  # the lab's system prompt alone is longer than the block
    stops = {tuned_tok.eot_id, tuned_tok.im_start_id, tuned_tok.im_end_id}
    new = [t for t in inference.generate(tuned.eval(), prompt, 10, stop_ids=stops) if t not in stops]
    assert out.getvalue() == tuned_tok.decode(new) + "\n"


def test_chat_keeps_the_conversation(finetuned_dir, monkeypatch):
    model, tok, _ = runtime.load_model(finetuned_dir)
    model.eval()
    stops = {tok.eot_id, tok.im_start_id, tok.im_end_id}
    prompts, fit = [], sample.fit  # every whole prompt, before it is cut to the block
    monkeypatch.setattr(sample, "fit", lambda prompt, *a: prompts.append(prompt) or fit(prompt, *a))
    out = io.StringIO()
    sample.main([f"--init_from={finetuned_dir}", "--chat", "--temperature=0", "--max_new_tokens=6", "--device=cpu"],
                stdin=io.StringIO("Hello there.\n\nWhat is a cat?\n"), out=out)
    messages, expected = [], ""
    for turn in ("Hello there.", "What is a cat?"):
        messages.append({"role": "user", "content": turn})
        prompt = chat.render_prompt(tok, messages)
        assert prompts[len(messages) // 2] == prompt  # the second prompt holds the first answer
        generated = inference.generate(model, prompt[-(model.config.block_size - 6):], 6, stop_ids=stops)
        reply = tok.decode([t for t in generated if t not in stops])
        expected += reply + "\n"
        if reply.strip():
            messages.append({"role": "assistant", "content": reply.strip()})
    assert out.getvalue() == expected and len(messages) == 4


def test_bad_input(pretrained_dir, tmp_path):
    with pytest.raises(SystemExit, match="no ckpt.pt"):
        sample.main([f"--init_from={tmp_path}", "--prompt=x"])
    unfinished = tmp_path / "unfinished"
    shutil.copytree(pretrained_dir, unfinished)
    ckpt = torch.load(unfinished / "ckpt.pt", weights_only=False)
    ckpt["step"] = 1
    torch.save(ckpt, unfinished / "ckpt.pt")
    with pytest.raises(SystemExit, match="unfinished train run"):
        sample.main([f"--init_from={unfinished}", "--prompt=x"])
    with pytest.raises(SystemExit, match="--chat needs a finetuned model"):
        sample.main([f"--init_from={pretrained_dir}", "--chat", "--device=cpu"], stdin=io.StringIO("hi\n"))
    for bad in ("--top_p=0", "--temperature=-1", "--top_k=-2"):
        with pytest.raises(SystemExit, match="top_p"):
            sample.main([f"--init_from={pretrained_dir}", "--prompt=x", bad])
    with pytest.raises(SystemExit, match="nothing to answer"):
        sample.main([f"--init_from={pretrained_dir}", "--device=cpu"], stdin=io.StringIO("  \n"))
    assert "--top_p" in run_script("sample.py", "--help").stdout
