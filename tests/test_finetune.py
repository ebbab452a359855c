"""finetune.py: the loss mask covers exactly the assistant's tokens, truncation keeps ids and mask aligned,
masked positions give no loss and no gradient, a tiny finetune lowers the held-out assistant loss, the
body-only mode leaves embeddings and head bit-identical, resume is exact, and bad data stops clearly."""

import json
import os
from unittest import mock

import pytest
import torch

import finetune
from conftest import run_script
from evaluation import runs
from model import GPT, GPTConfig
from pipeline import chat, common, runtime
from tokenizer import Tokenizer

FAST = ["--batch_size=8", "--val_conversations=16", "--n_samples=2", "--max_new_tokens=8", "--progress=false",
        "--device=cpu"]


def run(pretrained_dir, lab_dir, out_dir, *extra):
    return finetune.main([f"--init_from={pretrained_dir}", f"--data_dir={lab_dir}", f"--out_dir={out_dir}",
                          *FAST, *extra])


def lab_conversations(lab_dir, tok):
    return finetune.read_conversations(os.path.join(lab_dir, "instructions", "train.jsonl"), tok)[0]


def write_jsonl(path, rows):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return str(path)


def test_mask_covers_exactly_the_assistant_tokens_and_their_im_end(pretrained_dir, lab_dir):
    tok = Tokenizer.load(os.path.join(pretrained_dir, "tokenizer.tiktoken"))
    convs = lab_conversations(lab_dir, tok)
    assert any(sum(m["role"] == "assistant" for m in msgs) > 1 for msgs, _, _ in convs)  # multi-turn ones too
    for messages, ids, mask in convs:
        learned = [i for i, m in zip(ids, mask) if m]
        expected = [t for m in messages if m["role"] == "assistant"
                    for t in tok.encode(chat.ANSWER_SPACE + m["content"]) + [tok.im_end_id]]
        assert learned == expected
        # everything else is the prompt: the system prompt, user turns, the headers and the newlines
        others = tok.decode([i for i, m in zip(ids, mask) if not m])
        assert (chat.DEFAULT_SYSTEM_PROMPT in others
                and all(m["content"] in others for m in messages if m["role"] == "user"))
    # the targets a batch trains on are exactly the masked tokens, shifted by one
    rows = [(ids, mask) for _, ids, mask in convs[:5]]
    x, y = finetune.collate(rows, tok.pad_id, block_size=4096)
    assert (x.shape[1] % finetune.PAD_MULTIPLE == 0
            and x.shape[1] - finetune.PAD_MULTIPLE < max(len(ids) for ids, _ in rows) - 1)
    for r, (ids, mask) in enumerate(rows):
        assert x[r, :len(ids) - 1].tolist() == ids[:-1]
        assert y[r][y[r] != -1].tolist() == [t for t, m in zip(ids[1:], mask[1:]) if m]
        assert (y[r, len(ids) - 1:] == -1).all()  # padding is never a target


def test_truncation_keeps_ids_and_mask_aligned_and_is_counted(pretrained_dir, lab_dir):
    tok = Tokenizer.load(os.path.join(pretrained_dir, "tokenizer.tiktoken"))
    convs = lab_conversations(lab_dir, tok)[:40]
    block = 24
    long = [c for c in convs if len(c[1]) > block + 1]
    assert long
    for side in ("left", "right"):
        rows, n_truncated, n_dropped = finetune.to_rows(convs, block, side)
        assert n_truncated == len(long) and len(rows) + n_dropped == len(convs)
        by_row = iter(rows)
        for _, ids, mask in convs:
            cut = slice(-(block + 1), None) if side == "left" else slice(0, block + 1)
            if not any(mask[cut][1:]):
                continue  # dropped: nothing left to learn
            row_ids, row_mask = next(by_row)
            assert len(row_ids) == len(row_mask) == min(len(ids), block + 1)
            assert (row_ids, row_mask) == (ids[cut], mask[cut])  # the same slice of both
    # keeping the start drops the conversations whose answer lies past the block (the lab's long passages)
    assert finetune.to_rows(convs, block, "right")[2] > 0 and finetune.to_rows(convs, block, "left")[2] == 0


def test_masked_positions_give_no_loss_and_no_gradient():
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=50, block_size=16, n_layer=1, n_head=2, n_kv_head=1, n_embd=16))
    short = ([1, 2, 3, 4, 5, 6], [0, 0, 0, 1, 1, 0])
    longer = ([7, 8, 9, 10, 11, 12, 13, 14, 15, 16], [0, 0, 1, 1, 0, 0, 0, 1, 1, 0])
    x, y = finetune.collate([short, longer], pad_id=49, block_size=16)
    assert x.shape == (2, 16)  # padded up to the block, not past it
    logits, loss = model(x, y)
    logits.retain_grad()
    loss.backward()
    # the loss is the mean of -log p(target) over exactly the masked-in targets
    log_probs = torch.log_softmax(logits.detach().float(), -1)
    picked = [-log_probs[r, t, ids[t + 1]] for r, (ids, mask) in enumerate([short, longer])
              for t in range(len(ids) - 1) if mask[t + 1]]
    assert len(picked) == 6 and torch.allclose(loss.detach(), torch.stack(picked).mean())
    counted = y != -1
    assert (logits.grad[~counted] == 0).all() and (logits.grad[counted].abs().sum(-1) > 0).all()
    # what sits at the ignored positions (user tokens, padding) changes neither the loss nor any gradient
    grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()
    x2, y2 = x.clone(), y.clone()
    x2[0, 5:] = 3  # the padding after the short conversation
    y2[~counted] = -1
    _, loss2 = model(x2, y2)
    loss2.backward()
    assert torch.equal(loss, loss2) and all(torch.equal(grads[n], p.grad) for n, p in model.named_parameters())


def test_batches_cover_every_conversation_once_per_epoch():
    seen = [i for step in range(5) for i in finetune.batch_indices(step, 4, 10, seed=3)]
    assert sorted(seen[:10]) == list(range(10)) and sorted(seen[10:20]) == list(range(10)) and seen[:10] != seen[10:20]
    assert finetune.batch_indices(3, 4, 10, seed=3) == seen[12:16]  # a pure function of the step: exact resume


def test_tiny_finetune_lowers_the_heldout_assistant_loss_and_resumes_exactly(pretrained_dir, lab_dir, tmp_path,
                                                                             monkeypatch, capsys):
    args = ["--max_iters=16", "--eval_every=8", "--lr=1e-2"]
    straight = str(tmp_path / "straight")
    results = run(pretrained_dir, lab_dir, straight, *args)
    assert results["val_loss"] < 0.9 * results["val_loss_init"], results
    log = runs.read_log(straight)
    assert log[0]["n_train"] > 0 and "n_truncated" in log[0] and log[0]["n_truncated"] > 0  # block 32: lab overflows
    assert [r["step"] for r in log if "val_loss" in r] == [0, 8, 16]
    assert all(k in r for r in log if "loss" in r for k in ("step", "loss", "lr", "tokens", "tok_per_s"))
    samples = log[-1]["samples"]
    assert len(samples) == 2 and all(s["prompt"] and isinstance(s["answer"], str) for s in samples)
    with open(os.path.join(pretrained_dir, "tokenizer.tiktoken"), "rb") as a, \
            open(os.path.join(straight, "tokenizer.tiktoken"), "rb") as b:
        assert a.read() == b.read()
    ckpt = runtime.load_checkpoint(straight)
    assert ckpt["stage"] == "finetune" and ckpt["step"] == 16
    # stop right after the step-8 checkpoint, as a crash would, then resume: every step bit for bit
    stopped = str(tmp_path / "stopped")
    save = runtime.save_checkpoint

    def save_then_crash(out_dir, state):
        save(out_dir, state)
        raise KeyboardInterrupt

    monkeypatch.setattr(runtime, "save_checkpoint", save_then_crash)
    with pytest.raises(KeyboardInterrupt):
        run(pretrained_dir, lab_dir, stopped, *args)
    monkeypatch.setattr(runtime, "save_checkpoint", save)
    assert runtime.load_checkpoint(stopped)["step"] == 8
    assert run(pretrained_dir, lab_dir, stopped, *args, "--resume") == results
    untimed = lambda records: [{k: v for k, v in r.items() if k != "tok_per_s"} for r in records]  # noqa: E731
    assert untimed(runs.read_log(stopped)) == untimed(log)
    final = runtime.load_checkpoint(stopped)["model"]
    assert all(torch.equal(final[n], ckpt["model"][n]) for n in final)
    # a complete run resumes to nothing
    capsys.readouterr()
    assert run(pretrained_dir, lab_dir, stopped, *args, "--resume") == results
    assert "already complete" in capsys.readouterr().out


def test_compiled_finetuning_compiles_at_most_twice_over_many_lengths(lab_dir, tokenizer_path, tmp_path, monkeypatch):
    """Batches padded to multiples of 64: one graph for the first length, then one with a dynamic length for all
    the others (torch's automatic dynamic shapes), never one per length. Counted with an eager backend: the
    graphs are what torch.compile would compile, without the compile time."""
    from torch._dynamo.testing import CompileCounter

    from conftest import pretrain

    init = pretrain(lab_dir, tokenizer_path, tmp_path / "init", "--block_size=200", "--max_iters=0", "--eval_every=0")
    torch._dynamo.reset()
    counter, real_compile, real_collate, lengths = CompileCounter(), torch.compile, finetune.collate, set()
    monkeypatch.setattr(torch, "compile", lambda model: real_compile(model, backend=counter))
    monkeypatch.setattr(finetune, "collate",
                        lambda *a, **k: (lambda xy: (lengths.add(xy[0].shape[1]), xy)[1])(real_collate(*a, **k)))
    run(init, lab_dir, tmp_path / "compiled", "--max_iters=8", "--eval_every=0", "--n_samples=0", "--batch_size=2",
        "--compile=true")
    torch._dynamo.reset()
    assert len(lengths) > 1 and all(n % finetune.PAD_MULTIPLE == 0 or n == 200 for n in lengths), lengths
    assert 1 <= counter.frame_count <= 2, counter.frame_count


def test_body_only_leaves_embeddings_and_head_bit_identical(pretrained_dir, lab_dir, tmp_path):
    out = str(tmp_path / "body")
    run(pretrained_dir, lab_dir, out, "--max_iters=4", "--eval_every=0", "--lr=1e-2", "--train_params=body")
    before, after = runtime.load_checkpoint(pretrained_dir)["model"], runtime.load_checkpoint(out)["model"]
    for name in before:
        assert torch.equal(before[name], after[name]) == (name in ("wte.weight", "lm_head.weight")), name


def test_bad_conversations_are_named_or_skipped_and_counted(pretrained_dir, lab_dir, tmp_path, capsys):
    tok = Tokenizer.load(os.path.join(pretrained_dir, "tokenizer.tiktoken"))
    good = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}
    bad = {"not valid JSON": '{"messages": [',
           "unknown role": {"messages": [{"role": "bot", "content": "hi"}, {"role": "assistant", "content": "x"}]},
           "no assistant message": {"messages": [{"role": "user", "content": "hi"}]},
           "content must be": {"messages": [{"role": "user", "content": ""}, {"role": "assistant", "content": "x"}]},
           "expected an object": {"msgs": []}}
    for k, (reason, row) in enumerate(bad.items()):
        path = write_jsonl(tmp_path / f"bad{k}.jsonl", [good, "", good, row, good])
        with pytest.raises(SystemExit, match=rf"bad{k}.jsonl, line 4: .*{reason}"):
            finetune.read_conversations(path, tok)
    path = write_jsonl(tmp_path / "mixed.jsonl", [good, *bad.values(), good])
    convs, skipped = finetune.read_conversations(path, tok, skip_bad=True)
    assert len(convs) == 2 and {r: v for r, v in skipped.items()} == {r: [k + 2] for k, r in enumerate(bad)}
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(SystemExit, match="empty.jsonl holds no usable conversations"):
        finetune.read_conversations(str(tmp_path / "empty.jsonl"), tok)
    only_bad = write_jsonl(tmp_path / "only_bad.jsonl", list(bad.values()))
    with pytest.raises(SystemExit, match=r"only_bad.jsonl holds no usable conversations \(5 bad lines skipped\)"):
        finetune.read_conversations(only_bad, tok, skip_bad=True)
    # a run with skip_bad says what it skipped and logs the count
    out = str(tmp_path / "skip")
    val = os.path.join(lab_dir, "instructions", "val.jsonl")
    run(pretrained_dir, lab_dir, out, f"--data={path}", f"--val_data={val}", "--max_iters=1", "--skip_bad")
    assert runs.read_log(out)[0]["n_skipped"] == 5 and "skipped 1 lines of" in capsys.readouterr().out
    # a finetuned model is not a starting point, and a real training set needs its own held-out file
    with pytest.raises(SystemExit, match="written by finetune.py"):
        run(out, lab_dir, tmp_path / "again")
    with pytest.raises(SystemExit, match="--data needs --val_data"):
        run(pretrained_dir, lab_dir, tmp_path / "noval", f"--data={path}")
    # the command line: a clear message and a nonzero exit, never a traceback
    result = run_script("finetune.py", f"--init_from={pretrained_dir}", f"--data={tmp_path / 'bad0.jsonl'}",
                        f"--val_data={val}", f"--out_dir={tmp_path / 'cli'}", *FAST, check=False)
    assert (result.returncode != 0 and "bad0.jsonl, line 4: not valid JSON" in result.stderr
            and "Traceback" not in result.stderr)


def test_a_batch_of_zero_is_refused_up_front(pretrained_dir, lab_dir, tmp_path):
    with pytest.raises(SystemExit, match="--batch_size must be > 0, got 0"):
        run(pretrained_dir, lab_dir, tmp_path / "out", "--batch_size=0")
    assert not os.path.exists(tmp_path / "out")
    with pytest.raises(SystemExit, match="float16 is for evaluation only"):  # no loss scaling: refused, not underflowed
        run(pretrained_dir, lab_dir, tmp_path / "out", "--dtype=float16")
    assert not os.path.exists(tmp_path / "out")


def test_grad_accum_gives_the_update_of_the_whole_batch(pretrained_dir, lab_dir, tmp_path, monkeypatch):
    """8 conversations a step as 4 micro-batches of 2 (each padded to its own longest row) update the
    weights as one batch of 8 does: each micro-batch's mean loss is weighted by its assistant tokens. Fails
    if the micro-batches' losses are averaged unweighted, or if a step takes batch_size conversations only.
    Every micro-batch reaches the device through common.to_device (pinned memory, no blocking copy, on CUDA)."""
    models, copied, to_device = {}, [], common.to_device
    monkeypatch.setattr(common, "to_device", lambda t, device: copied.append(device) or to_device(t, device))
    for batch_size, accum in ((8, 1), (2, 4)):
        run(pretrained_dir, lab_dir, tmp_path / f"accum{accum}", "--max_iters=3", "--eval_every=0", "--n_samples=0",
            "--lr=1e-3", f"--batch_size={batch_size}", f"--grad_accum={accum}")
        models[accum] = runtime.load_checkpoint(str(tmp_path / f"accum{accum}"))["model"]
    assert copied == ["cpu"] * 2 * 3 * (1 + 4)  # x and y of every micro-batch of 3 steps
    before = runtime.load_checkpoint(str(pretrained_dir))["model"]
    moved = max((models[1][k].float() - before[k].float()).abs().max().item() for k in before)
    diff = max((models[1][k].float() - models[4][k].float()).abs().max().item() for k in before)
    assert moved > 1e-3 and diff < 1e-5, (moved, diff)
    tokens = [[r["tokens"] for r in runs.read_log(str(tmp_path / f"accum{a}")) if "loss" in r] for a in (1, 4)]
    assert tokens[0] == tokens[1]  # the same conversations a step


def test_a_run_saved_when_batch_size_counted_a_steps_conversations_is_not_resumed(pretrained_dir, lab_dir, tmp_path,
                                                                                   monkeypatch):
    """finetune.py's grad_accum once split batch_size into micro-batches; it now counts micro-batches of
    batch_size, as in train.py and adapt.py. A checkpoint of the old meaning (no conversations_per_step) with
    grad_accum > 1 would resume with the same options onto twice the batch: refused, saying why. With
    grad_accum = 1 the two meanings are one, and it resumes."""
    args = ["--max_iters=4", "--eval_every=2", "--n_samples=0"]
    for accum, refused in ((2, True), (1, False)):
        out = tmp_path / f"old{accum}"
        save = runtime.save_checkpoint

        def save_as_old_code_did(out_dir, ckpt):
            save(out_dir, {k: v for k, v in ckpt.items() if k != "conversations_per_step"})
            raise KeyboardInterrupt  # stop at the first checkpoint, as a crash would

        monkeypatch.setattr(runtime, "save_checkpoint", save_as_old_code_did)
        with pytest.raises(KeyboardInterrupt):
            run(pretrained_dir, lab_dir, out, *args, "--batch_size=4", f"--grad_accum={accum}")
        monkeypatch.setattr(runtime, "save_checkpoint", save)
        if refused:
            with pytest.raises(SystemExit, match=r"older finetune.py.*--batch_size=2 --grad_accum=2 is the old"):
                run(pretrained_dir, lab_dir, out, *args, "--batch_size=4", f"--grad_accum={accum}", "--resume")
        else:
            run(pretrained_dir, lab_dir, out, *args, "--batch_size=4", "--resume")
            assert runtime.load_checkpoint(str(out))["conversations_per_step"] == 4


def test_adam_betas_reach_the_optimizer(pretrained_dir, lab_dir, tmp_path):
    """Fails if finetune.py builds AdamW without betas=(beta1, beta2)."""
    run(pretrained_dir, lab_dir, tmp_path, "--max_iters=1", "--eval_every=0", "--n_samples=0", "--beta1=0.5",
        "--beta2=0.6")
    groups = runtime.load_checkpoint(str(tmp_path))["optimizer"]["param_groups"]
    assert {tuple(g["betas"]) for g in groups} == {(0.5, 0.6)}


def test_to_device_copies_from_pinned_memory_without_blocking_on_cuda():
    """On CUDA a batch is pinned, then copied with non_blocking=True (the copy overlaps the GPU's work);
    on the CPU it stays as it is. Fails if the pinned, non-blocking copy goes."""
    batch = mock.Mock()
    common.to_device(batch, "cuda:0")
    batch.pin_memory.assert_called_once_with()
    batch.pin_memory.return_value.to.assert_called_once_with("cuda:0", non_blocking=True)
    on_cpu = torch.zeros(2, 3, dtype=torch.long)
    assert common.to_device(on_cpu, "cpu") is on_cpu
