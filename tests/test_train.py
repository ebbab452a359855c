"""train.py: the resets happen where they should and touch only the embeddings, resume is exact (also
after kill -9 and across a reset), the loss falls, and bad input stops with a clear message."""

import dataclasses
import importlib
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from conftest import ROOT, TINY_MODEL, pretrain, run_script
from evaluation import runs
from model import GPT, GPTConfig
from pipeline import common, runtime


def losses(out_dir):
    return {r["step"]: r["loss"] for r in runs.read_log(out_dir) if "loss" in r}


def test_loss_falls_within_a_few_dozen_steps(pretrained_dir):
    vals = [r["val_bpb"] for r in runs.read_log(pretrained_dir) if "val_bpb" in r]
    assert vals[-1] < 0.9 * vals[0], vals


def test_resets_only_at_multiples_of_k_and_never_at_the_end(forgetting_dir):
    forgets = [r["step"] for r in runs.read_log(forgetting_dir) if r.get("forget")]
    assert forgets == [10, 20, 30]  # 40 steps, K = 10: not at step 0, and no reset is left unrelearned


def test_no_reset_at_the_final_step_or_with_k_zero(lab_dir, tokenizer_path, tmp_path):
    last = pretrain(lab_dir, tokenizer_path, tmp_path / "last", "--max_iters=10", "--forget_every=9", "--eval_every=0")
    assert not any(r.get("forget") for r in runs.read_log(last))
    none = pretrain(lab_dir, tokenizer_path, tmp_path / "none", "--max_iters=10", "--forget_every=0", "--eval_every=0")
    assert not any(r.get("forget") for r in runs.read_log(none))


def test_a_reset_changes_exactly_the_embedding_and_clears_its_adam_state(lab_dir, tokenizer_path, tmp_path):
    # lr = 0: nothing moves but what the reset itself changes
    common_args = ["--max_iters=8", "--eval_every=0", "--lr=0", "--seed=7"]
    plain = pretrain(lab_dir, tokenizer_path, tmp_path / "plain", *common_args)
    forget = pretrain(lab_dir, tokenizer_path, tmp_path / "forget", *common_args, "--forget_every=5")
    a, b = runtime.load_checkpoint(plain), runtime.load_checkpoint(forget)
    for name in a["model"]:
        assert torch.equal(a["model"][name], b["model"][name]) == (name != "wte.weight"), name
    # the new embedding is exactly the seeded N(0, 0.02) draw of step 5: reproducible on every rank and on resume
    fresh = GPT(GPTConfig(**b["model_config"]))
    fresh.reset_token_embeddings(torch.Generator().manual_seed(7 + 5))
    assert torch.equal(fresh.wte.weight, b["model"]["wte.weight"])
    # Adam restarted for the embedding only: its bias-correction counter counts the 3 steps since the reset
    params = [n for n, _ in GPT(GPTConfig(**b["model_config"])).named_parameters()]
    state = b["optimizer"]["state"]
    steps = {params_name: float(state[i]["step"]) for i, params_name in enumerate(_param_order(b, params))}
    assert steps["wte.weight"] == 3
    assert all(s == 8 for n, s in steps.items() if n != "wte.weight")


def _param_order(ckpt, names):
    # the optimizer numbers parameters group by group: the body's matrices, its vectors, then the embedding
    shapes = {n: ckpt["model"][n].dim() for n in names}
    body = [n for n in names if n != "wte.weight"]
    return [n for n in body if shapes[n] >= 2] + [n for n in body if shapes[n] < 2] + ["wte.weight"]


def test_resume_after_kill_9_is_exact_across_a_reset(lab_dir, tokenizer_path, tmp_path, capsys):
    args = [f"--data_dir={lab_dir}", f"--tokenizer={tokenizer_path}", *TINY_MODEL,
            "--max_iters=30", "--forget_every=8", "--eval_every=6"]
    straight = pretrain(lab_dir, tokenizer_path, tmp_path / "straight", *args[2:])
    out = str(tmp_path / "killed")
    proc = subprocess.Popen([sys.executable, "train.py", f"--out_dir={out}", *args], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ckpt = os.path.join(out, "ckpt.pt")
    while not os.path.exists(ckpt) and proc.poll() is None:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = runtime.load_checkpoint(out)["step"]
    assert killed_at < 30, "the run finished before it could be killed"
    pretrain(lab_dir, tokenizer_path, out, *args[2:], "--resume")
    assert losses(out) == losses(straight)  # every step, bit for bit, the resets (8, 16, 24) included
    assert [r["step"] for r in runs.read_log(out) if r.get("forget")] == [8, 16, 24]
    # a finished run resumes to nothing
    pretrain(lab_dir, tokenizer_path, out, *args[2:], "--resume")
    assert "already complete" in capsys.readouterr().out


def test_emb_episode_lr_gives_the_embeddings_the_schedule_of_their_episode(lab_dir, tokenizer_path, tmp_path,
                                                                          monkeypatch):
    # 12 steps, resets at 4 and 8: the last step (11) is step 3 of a 4-step episode for the embeddings
    args = ["--max_iters=12", "--forget_every=4", "--eval_every=6", "--warmup_frac=0.25"]

    def last_lrs(out):
        return [group["lr"] for group in runtime.load_checkpoint(out)["optimizer"]["param_groups"]]

    episodes = pretrain(lab_dir, tokenizer_path, tmp_path / "episodes", *args, "--emb_episode_lr")
    body, vectors, embeddings = last_lrs(episodes)
    assert body == vectors == common.lr_at(11, 12, 3e-3, 0.25)
    assert embeddings == common.lr_at(3, 4, 3e-3, 0.25) != body
    assert last_lrs(pretrain(lab_dir, tokenizer_path, tmp_path / "plain", *args)) == [body] * 3  # one schedule for all
    # stopped after the checkpoint at step 6 and resumed: the same schedule, the same losses
    save = runtime.save_checkpoint

    def save_and_stop_at_6(out_dir, ckpt):
        save(out_dir, ckpt)
        if ckpt["step"] == 6:
            raise KeyboardInterrupt
    monkeypatch.setattr(runtime, "save_checkpoint", save_and_stop_at_6)
    with pytest.raises(KeyboardInterrupt):
        pretrain(lab_dir, tokenizer_path, tmp_path / "resumed", *args, "--emb_episode_lr")
    monkeypatch.setattr(runtime, "save_checkpoint", save)
    resumed = pretrain(lab_dir, tokenizer_path, tmp_path / "resumed", *args, "--emb_episode_lr", "--resume")
    assert last_lrs(resumed) == [body, vectors, embeddings] and losses(resumed) == losses(episodes)


def test_bad_config_keys_and_values_are_named(tmp_path):
    # from the command line: a nonzero exit and a message naming the key
    result = run_script("train.py", "--no_such_key=1", check=False)
    assert result.returncode != 0 and "--no_such_key" in result.stderr
    import train

    with pytest.raises(SystemExit, match="--max_iters.*ten"):
        train.main(["--max_iters=ten"])
    bad = tmp_path / "bad.py"
    bad.write_text("train = dict(n_layers=3)\n")
    with pytest.raises(SystemExit, match=f"{bad}.*n_layers"):
        train.main([str(bad)])
    bad.write_text("train = dict(n_layer='three')\n")
    with pytest.raises(SystemExit, match="n_layer.*three"):
        train.main([str(bad)])
    bad.write_text("lr = 0.1\n")
    with pytest.raises(SystemExit, match="top-level key 'lr'"):
        train.main([str(bad)])
    help_text = run_script("train.py", "--help").stdout
    assert "--forget_every=0" in help_text and "reset the token embeddings every K steps" in help_text


@pytest.mark.parametrize("stage", ["train", "adapt", "finetune", "splice", "evaluate"])
def test_help_describes_every_option(stage, capsys):
    """Every stage's --help lists each option with its default and the comment written beside its field. Fails if
    a field is added without its comment, or a field's comment stops reaching --help (runtime._field_comments reads
    the config class's source: a field declared elsewhere, e.g. in a shared base class, would lose it)."""
    module = importlib.import_module(stage)
    config_class = next(v for v in vars(module).values() if dataclasses.is_dataclass(v) and v.__module__ == stage)
    with pytest.raises(SystemExit) as done:
        module.main(["--help"])
    assert done.value.code == 0
    options = [line.split(None, 1) for line in capsys.readouterr().out.splitlines() if line.startswith("  --")]
    listed = sorted(o[0].split("=")[0] for o in options)
    assert listed == sorted(f"--{f.name}" for f in dataclasses.fields(config_class))
    undescribed = [o[0] for o in options if len(o) < 2]
    assert not undescribed, undescribed


def test_refuses_to_clobber_a_run_and_to_resume_with_another_config(pretrained_dir, lab_dir, tokenizer_path):
    with pytest.raises(SystemExit, match="--resume.*--overwrite"):
        pretrain(lab_dir, tokenizer_path, pretrained_dir, "--max_iters=40", "--eval_every=20")
    with pytest.raises(SystemExit, match="lr: 0.003 -> 0.1"):
        pretrain(lab_dir, tokenizer_path, pretrained_dir, "--max_iters=40", "--eval_every=20", "--lr=0.1", "--resume")


def test_bad_data_and_checkpoints(lab_dir, tokenizer_path, tmp_path):
    def run(out, *extra):
        return pretrain(lab_dir, tokenizer_path, tmp_path / out, "--max_iters=4", "--eval_every=2", *extra)

    with pytest.raises(SystemExit, match="'xx'"):
        run("a", "--langs=xx")
    with pytest.raises(SystemExit, match="manifest.json"):
        run("b", f"--data_dir={tmp_path}")
    with pytest.raises(SystemExit, match="block_size"):
        run("c", "--block_size=100000")
    empty = tmp_path / "empty"
    (empty / "text").mkdir(parents=True)
    (empty / "text" / "e.txt").write_text("")
    languages = [{"code": "e", "train": "text/e.txt", "val": "text/e.txt"}]
    (empty / "manifest.json").write_text(json.dumps({"languages": languages, "groups": {"pretraining": ["e"]}}))
    with pytest.raises(SystemExit, match="e.txt is empty"):
        run("d", f"--data_dir={empty}")
    # a truncated checkpoint: resuming says so instead of a traceback from torch.load
    out = run("trunc")
    path = os.path.join(out, "ckpt.pt")
    data = open(path, "rb").read()
    open(path, "wb").write(data[: len(data) // 2])
    with pytest.raises(SystemExit, match="truncated or corrupt"):
        run("trunc", "--resume")


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(lab_dir, tokenizer_path, tmp_path):
    out = str(tmp_path / "nan")
    with pytest.raises(SystemExit, match="loss became"):
        pretrain(lab_dir, tokenizer_path, out, "--max_iters=60", "--eval_every=1", "--lr=1e9", "--warmup_frac=0",
                 "--grad_clip=0")
    ckpt = runtime.load_checkpoint(out)
    assert all(torch.isfinite(v).all() for v in ckpt["model"].values() if v.is_floating_point())


def test_vocabulary_mismatch_is_caught(pretrained_dir, tmp_path):
    import shutil

    import tokenizer

    copy = tmp_path / "copy"
    shutil.copytree(pretrained_dir, copy)
    tok = tokenizer.Tokenizer.load(str(copy / "tokenizer.tiktoken"))
    tokenizer.extend(tok, ["zyxw vutsr " * 50], 4).save(str(copy / "tokenizer.tiktoken"))
    with pytest.raises(SystemExit, match="tokenizer has"):
        runtime.load_model(str(copy))


def test_sizes_of_zero_are_refused_up_front(lab_dir, tokenizer_path, tmp_path):
    # --batch_size=0 used to end in a traceback from inside bits_per_byte
    for key in ("batch_size", "grad_accum", "block_size", "n_embd"):  # max_iters=0 is the untrained control
        with pytest.raises(SystemExit, match=f"--{key} must be > 0, got 0"):
            pretrain(lab_dir, tokenizer_path, tmp_path / key, f"--{key}=0")
        assert not os.path.exists(tmp_path / key)


def test_resume_without_a_checkpoint_says_it_starts_a_new_run(lab_dir, tokenizer_path, tmp_path, capsys):
    out = tmp_path / "fresh"
    pretrain(lab_dir, tokenizer_path, out, "--max_iters=2", "--eval_every=0", "--resume")
    assert f"note: --resume: no checkpoint in {out}, starting a new run" in capsys.readouterr().out
    assert runtime.load_checkpoint(str(out))["step"] == 2


def test_compile_takes_the_bool_spellings_in_any_case(tmp_path):
    import train

    def compile_of(*argv):
        return runtime.parse_config(train.TrainConfig, "train", list(argv)).compile

    assert compile_of() == "auto" and compile_of("--compile=AUTO") == "auto"
    for word in ("False", "false", "FALSE", "no", "off", "0"):
        assert compile_of(f"--compile={word}") is False, word
    for word in ("True", "true", "Yes", "on", "1"):
        assert compile_of(f"--compile={word}") is True, word
    config = tmp_path / "nanogpt_style.py"
    config.write_text("compile = False\n")  # a bool in a config file, as nanoGPT's configs write it
    assert compile_of(str(config)) is False
    with pytest.raises(SystemExit, match="compile must be auto, true or false, not 'maybe'"):
        compile_of("--compile=maybe")
    # auto compiles on CUDA only (torch.compile is lazy: wrapping compiles nothing yet)
    model = torch.nn.Linear(2, 2)
    assert runtime.compiled(model, "auto", "cpu") is model and runtime.compiled(model, False, "cuda") is model
    for setting, device in (("auto", "cuda"), (True, "cpu")):
        assert (runtime.compiled(model, setting, device) is not model
                and runtime.compiled(model, setting, device)._orig_mod is model)


def test_float16_training_is_refused_and_deterministic_mode_switches_on_and_off(lab_dir, tokenizer_path, tmp_path,
                                                                               monkeypatch):
    with pytest.raises(SystemExit, match="float16 is for evaluation only.*loss scaling"):
        pretrain(lab_dir, tokenizer_path, tmp_path / "f16", "--max_iters=2", "--dtype=float16")
    assert not os.path.exists(tmp_path / "f16" / "ckpt.pt")
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    seen = []
    real = runtime.set_deterministic
    monkeypatch.setattr(runtime, "set_deterministic",
                        lambda on: (real(on), seen.append(torch.are_deterministic_algorithms_enabled())))
    pretrain(lab_dir, tokenizer_path, tmp_path / "det", "--max_iters=2", "--eval_every=0", "--deterministic")
    assert seen == [True] and os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    pretrain(lab_dir, tokenizer_path, tmp_path / "plain", "--max_iters=2", "--eval_every=0")
    assert seen == [True, False] and not torch.are_deterministic_algorithms_enabled()
    # the same run, bit for bit: deterministic mode changes how kernels run, not what they compute on the CPU
    assert losses(tmp_path / "det") == losses(tmp_path / "plain")


def test_cuda_rng_states_restore_onto_fewer_gpus(monkeypatch):
    # a run saved on 4 GPUs and resumed on 2: the states of the GPUs it has are restored, without an IndexError
    restored = {}
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "set_rng_state", lambda state, index: restored.__setitem__(index, state))
    state = {"python": __import__("random").getstate(), "numpy": __import__("numpy").random.get_state(),
             "torch": torch.get_rng_state(), "cuda": [torch.full((8,), k, dtype=torch.uint8) for k in range(4)]}
    runtime.set_rng_state(state)
    assert sorted(restored) == [0, 1] and all(restored[k][0] == k for k in restored)


def test_checkpoints_are_zip_files_read_memory_mapped(pretrained_dir, monkeypatch):
    import zipfile

    assert zipfile.is_zipfile(os.path.join(pretrained_dir, "ckpt.pt"))  # the format torch.load(mmap=True) needs
    calls, real_load = [], torch.load
    monkeypatch.setattr(torch, "load", lambda *args, **kwargs: (calls.append(kwargs), real_load(*args, **kwargs))[1])
    ckpt = runtime.load_checkpoint(pretrained_dir)
    assert calls[0]["mmap"] is True and ckpt["model_config"]["block_size"] == 32


# what may grow with the lab: the data (its folder and vocabulary), the model, the steps, batch and learning rate
# that go with them, and how often it is evaluated; the rest of every stage is the method, the same at both sizes
GROWS = {"data_dir", "tokenizer", "n_layer", "n_head", "n_kv_head", "n_embd", "mlp_hidden", "max_iters", "batch_size",
         "lr", "forget_every", "eval_every", "eval_tokens"}


def test_lab_gpu_config_is_the_lab_grown_in_size_only():
    """config/lab_gpu.py reads config/lab.py, so that the two labs answer the same question at two sizes: only what
    grows with the lab differs, on one data folder for every stage; the resets fall at the same fractions of the run;
    the model is larger. Fails if, e.g., lab_gpu resets every 100 steps of its 2,000 (19 resets, not 9), warms up over
    another fraction, or gives adaptation or finetuning a setting of its own."""
    import adapt
    import evaluate
    import finetune
    import train

    stages = {"train": train.TrainConfig, "adapt": adapt.AdaptConfig, "finetune": finetune.FinetuneConfig,
              "evaluate": evaluate.EvaluateConfig}
    lab, big = ({stage: vars(runtime.parse_config(config_class, stage, [os.path.join(ROOT, "config", name)]))
                 for stage, config_class in stages.items()} for name in ("lab.py", "lab_gpu.py"))
    for stage in stages:
        grew = {k for k in lab[stage] if lab[stage][k] != big[stage][k]}
        assert grew <= (GROWS if stage == "train" else {"data_dir"}), (stage, grew - GROWS)
        if big[stage].get("data_dir"):  # adapt.py's empty data_dir: the pretrained model's
            assert big[stage]["data_dir"] == big["train"]["data_dir"] != lab["train"]["data_dir"], stage
    resets = lambda c: [s / c["max_iters"] for s in range(c["forget_every"], c["max_iters"] - 1, c["forget_every"])]
    assert resets(big["train"]) == resets(lab["train"]) and len(resets(lab["train"])) > 1
    sizes = [GPT(GPTConfig(vocab_size=2048, **{k: c["train"][k] for k in ("n_layer", "n_head", "n_kv_head", "n_embd",
                                                                          "block_size")})).num_params()
             for c in (lab, big)]
    assert sizes[1] > 2 * sizes[0]


def test_max_iters_zero_saves_the_initialised_model_untrained(lab_dir, tokenizer_path, tmp_path):
    """The never-pretrained control: the same shape and seeded init as a pretraining run's step 0."""
    out = pretrain(lab_dir, tokenizer_path, tmp_path / "none", "--max_iters=0", "--eval_every=0")
    ckpt = runtime.load_checkpoint(out)
    assert ckpt["step"] == 0
    trained = runtime.load_checkpoint(pretrain(lab_dir, tokenizer_path, tmp_path / "one", "--max_iters=1",
                                               "--eval_every=0"))
    model = GPT(GPTConfig(**ckpt["model_config"]))
    model.init_weights(torch.Generator().manual_seed(1337))
    assert all(torch.equal(model.state_dict()[k], v) for k, v in ckpt["model"].items())
    assert not torch.equal(trained["model"]["blocks.0.attn.wq.weight"], ckpt["model"]["blocks.0.attn.wq.weight"])


def test_lang_weights_decide_which_language_is_learned(lab_dir, tokenizer_path, tmp_path):
    """Two runs on the same two languages, all the weight on one or the other: each ends with the lower held-out
    bits per byte in the language it was given. Fails if train.py draws the languages equally whatever
    lang_weights says."""
    val = {}
    for weights in ("1,0", "0,1"):
        out = pretrain(lab_dir, tokenizer_path, tmp_path / weights, "--langs=en,qdv", f"--lang_weights={weights}",
                       "--max_iters=8", "--eval_every=0", "--eval_tokens=512")
        val[weights] = runs.read_log(out)[-1]
    assert val["1,0"]["val_bpb_en"] < val["0,1"]["val_bpb_en"]
    assert val["0,1"]["val_bpb_qdv"] < val["1,0"]["val_bpb_qdv"]


def test_adam_betas_reach_the_optimizer(lab_dir, tokenizer_path, tmp_path):
    """--beta1/--beta2 are AdamW's: the checkpoint's optimizer holds them and two steps end elsewhere than with the
    defaults (one step would not: Adam's first step is sign-like, whatever the betas). Fails if train.py builds AdamW
    without betas=(beta1, beta2)."""
    default, given = (runtime.load_checkpoint(pretrain(lab_dir, tokenizer_path, tmp_path / name, "--max_iters=2",
                                                       "--eval_every=0", "--langs=en", "--eval_tokens=256", *extra))
                      for name, extra in (("default", ()), ("given", ("--beta1=0.5", "--beta2=0.6"))))
    assert {tuple(g["betas"]) for g in given["optimizer"]["param_groups"]} == {(0.5, 0.6)}
    assert not torch.equal(given["model"]["blocks.0.attn.wq.weight"], default["model"]["blocks.0.attn.wq.weight"])

