"""splice.py: the spliced model is the finetuned body with the adapted embeddings and head, bit for bit, and
loads as a chat model; splices that would mix models or lose the chat tokens' rows are refused by name."""

import filecmp
import os

import pytest
import torch

import adapt
import finetune
import splice
from conftest import run_script
from pipeline import runtime

ADAPT = ["--batch_size=8", "--lr=1e-2", "--eval_bytes=2048", "--max_iters=3", "--eval_every=0", "--progress=false",
         "--device=cpu"]
FINETUNE = ["--batch_size=8", "--val_conversations=8", "--n_samples=0", "--max_new_tokens=8", "--max_iters=3",
            "--eval_every=0", "--lr=1e-2", "--progress=false", "--device=cpu"]


@pytest.fixture(scope="module")
def runs(pretrained_dir, forgetting_dir, lab_dir, tmp_path_factory):
    """A body-only and an all-weights finetune of the standard model, and three adaptations."""
    root = tmp_path_factory.mktemp("splice")
    out = {name: str(root / name) for name in ("body", "all", "adapted", "kept", "relearned", "other")}
    for name, params in (("body", "body"), ("all", "all")):
        finetune.main([f"--init_from={pretrained_dir}", f"--data_dir={lab_dir}", f"--out_dir={out[name]}",
                       f"--train_params={params}", *FINETUNE])
    for name, init_from, mode, head in (("adapted", pretrained_dir, "expand", "fresh"),
                                        ("kept", pretrained_dir, "expand", "keep"),
                                        ("relearned", pretrained_dir, "relearn", "fresh"),
                                        ("other", forgetting_dir, "expand", "fresh")):
        adapt.main([f"--init_from={init_from}", f"--out_dir={out[name]}", f"--mode={mode}", f"--head={head}", *ADAPT])
    return out


def test_the_splice_is_the_finetuned_body_with_the_adapted_rows(runs, tmp_path):
    out = str(tmp_path / "spliced")
    splice.main([f"--body_from={runs['body']}", f"--embeddings_from={runs['adapted']}", f"--out_dir={out}"])
    model, tok, ckpt = runtime.load_model(out)
    assert ckpt["stage"] in runtime.CHAT_STAGES  # evaluate.py and sample.py prompt it in ChatML
    body, adapted = runtime.load_checkpoint(runs["body"])["model"], runtime.load_checkpoint(runs["adapted"])["model"]
    for name, tensor in model.state_dict().items():
        source = adapted if name in ("wte.weight", "lm_head.weight") else body
        assert torch.equal(tensor, source[name]), name
    # the body really is the finetuned one: finetuning moved it away from the adapted model's (pretrained) body
    assert not torch.equal(body["blocks.0.attn.wq.weight"], adapted["blocks.0.attn.wq.weight"])
    assert filecmp.cmp(os.path.join(out, "tokenizer.tiktoken"), os.path.join(runs["adapted"], "tokenizer.tiktoken"),
                       shallow=False)
    assert tok.n_vocab > runtime.load_checkpoint(runs["body"])["model_config"]["vocab_size"]
    # a second run leaves a finished splice alone with --resume, and refuses without it
    splice.main([f"--body_from={runs['body']}", f"--embeddings_from={runs['adapted']}", f"--out_dir={out}", "--resume"])
    with pytest.raises(SystemExit, match="already holds a run"):
        splice.main([f"--body_from={runs['body']}", f"--embeddings_from={runs['adapted']}", f"--out_dir={out}"])


def test_a_kept_head_is_the_one_the_body_was_finetuned_through(runs, tmp_path):
    # [CHEN]: the body meets the head rows it was finetuned with; the adaptation adds the new tokens' rows
    out = str(tmp_path / "kept")
    splice.main([f"--body_from={runs['body']}", f"--embeddings_from={runs['kept']}", f"--out_dir={out}"])
    head = runtime.load_checkpoint(out)["model"]["lm_head.weight"]
    kept, body = runtime.load_checkpoint(runs["kept"]), runtime.load_checkpoint(runs["body"])
    n_base = kept["n_base_vocab"]
    assert torch.equal(head, kept["model"]["lm_head.weight"])
    assert torch.equal(head[:n_base], body["model"]["lm_head.weight"]) and head.shape[0] > n_base


@pytest.mark.parametrize("body, embeddings, message", [
    ("all", "adapted", "is not a body-only finetune"),
    ("body", "relearned", "is not an adapt.py --mode=expand run"),
    ("body", "other", "do not share their pretrained embedding rows"),
    ("adapted", "adapted", "is not a body-only finetune"),
])
def test_splices_that_would_mix_models_are_refused_by_name(runs, tmp_path, body, embeddings, message):
    with pytest.raises(SystemExit, match=message) as refused:
        splice.main([f"--body_from={runs[body]}", f"--embeddings_from={runs[embeddings]}",
                     f"--out_dir={tmp_path / 's'}"])
    assert runs[embeddings if "expand" in message else body] in str(refused.value)


def test_the_command_line_explains_itself_and_fails_cleanly(runs, tmp_path, capsys):
    with pytest.raises(SystemExit) as done:
        splice.main(["--help"])
    assert done.value.code == 0 and "--body_from" in capsys.readouterr().out
    bad = run_script("splice.py", f"--body_from={tmp_path / 'missing'}", f"--embeddings_from={runs['adapted']}",
                     f"--out_dir={tmp_path / 's'}", check=False)
    assert bad.returncode == 1 and "error: no checkpoint at" in bad.stderr and "Traceback" not in bad.stderr
    same = run_script("splice.py", f"--body_from={runs['body']}", f"--embeddings_from={runs['adapted']}",
                      f"--out_dir={runs['body']}", check=False)
    assert same.returncode == 1 and "is also an input" in same.stderr
