"""
Stage 1: pretraining, with active forgetting when --forget_every K > 0 (docs/method.md, "Pretraining").

    python train.py config/lab.py --forget_every=0        # standard pretraining on the lab
    python train.py config/lab.py                         # active forgetting: config/lab.py resets every 100 steps
    torchrun --standalone --nproc_per_node=8 train.py config/paper_400m.py

The whole method is the block marked "active forgetting" in the loop below: every K steps the token
embeddings are drawn afresh and their Adam state is thrown away, while the body and the head keep
learning. Everything else is an ordinary GPT training loop.

Two papers are cited throughout the code by these tags:
  [AFA]  Aggarwal, Sathe, Sitaram 2024, "Exploring pretraining via active forgetting for improving
         cross lingual transfer for decoder language models", arXiv:2410.16168: the recipe this repo follows
         (decoders, resets every K steps, adaptation by vocabulary expansion, English instruction finetuning).
  [CHEN] Chen et al., NeurIPS 2023, "Improving language plasticity via pretraining with active
         forgetting", arXiv:2307.01163: the method's origin (RoBERTa encoders; embeddings relearned for a
         new language, then spliced onto a body finetuned in English: splice.py).
"""

import os
import sys
from dataclasses import dataclass, field

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from model import GPT, GPTConfig
from pipeline import common, documents, loop, runtime
from pipeline.loop import TrainingOptions
from tokenizer import Tokenizer


@dataclass
class TrainConfig(TrainingOptions):
    """Stage 1: pretrain a decoder on the pretraining languages, with active forgetting if forget_every > 0."""
    out_dir: str = "out/pretrain"  # ckpt.pt, tokenizer.tiktoken, config.json and log.jsonl go here
    data_dir: str = "out/lab"  # a folder with manifest.json: the lab (data/lab/prepare.py) or a prepared corpus
    tokenizer: str = "out/tokenizer/lab.tiktoken"  # the base vocabulary (python tokenizer.py train ...)
    langs: list[str] = field(default_factory=list)  # languages to pretrain on; empty = the manifest's pretraining group
    lang_weights: list[float] = field(default_factory=list)  # sampling weight per language; empty = equal
    # the model (Mistral-style; see model.py)
    n_layer: int = 4  # transformer blocks
    n_head: int = 4  # query heads
    n_kv_head: int = 2  # key/value heads (grouped-query attention)
    n_embd: int = 128  # width of the residual stream
    mlp_hidden: int = 0  # SwiGLU hidden size; 0 = 3.5 * n_embd rounded up to a multiple of 64
    block_size: int = 128  # context length in tokens
    rope_theta: float = 10000.0  # RoPE base
    # optimisation: AdamW, warm-up + cosine (the paper's settings and why the lab's differ: docs/method.md);
    # grad_accum, the schedule's shape and AdamW's settings are shared with the other stages (listed below)
    max_iters: int = 1000  # optimizer steps; 0 saves the initialised model untrained (the never-pretrained control)
    batch_size: int = 32  # sequences per micro-batch on each process (global batch = batch_size * grad_accum)
    lr: float = 1e-4  # peak learning rate ([AFA]'s; the lab's tiny model takes 3e-3: config/lab.py)
    # active forgetting
    forget_every: int = 0  # K: reset the token embeddings every K steps; 0 = standard pretraining
    emb_episode_lr: bool = False  # [CHEN]: replay warm-up + cosine of the embeddings' LR inside every K-step episode
    # evaluation, logging, checkpoints
    eval_every: int = 100  # measure val bits per byte (and save a checkpoint) every this many steps
    eval_tokens: int = 32768  # val tokens per language for each evaluation


# peak dense bf16 tensor-core FLOP/s, for MFU; a GPU not listed gets no MFU rather than a wrong one
PEAK_FLOPS = {"H200": 989e12, "H100 PCIe": 756e12, "H100": 989e12, "A100": 312e12, "L40S": 362e12,
              "A10G": 70e12, "L4": 121e12, "RTX 4090": 165e12, "RTX 3090": 71e12}


def peak_flops(device):
    if not device.startswith("cuda"):
        return None
    name = torch.cuda.get_device_name(device)
    return next((flops for key, flops in PEAK_FLOPS.items() if key in name), None)


def prepare_token_files(tok, paths, master, ddp):
    """Tokenize the text once per machine before any process reads it. Rank 0 goes first; then the first process
    of every other node makes what its node still lacks: nothing where the nodes share a filesystem, every file
    where each node has its own copy of the data folder (at the same path). The others wait, then memory-map."""
    if master:
        for path in paths:
            common.token_file(tok, path)
    if ddp:
        dist.barrier()
        if not master and int(os.environ["LOCAL_RANK"]) == 0:
            for path in paths:
                common.token_file(tok, path)
        dist.barrier()


def check_config(cfg):
    runtime.require_positive(cfg, "batch_size", "grad_accum", "block_size", "n_layer", "n_head", "n_kv_head",
                             "n_embd", "log_every")
    if min(cfg.max_iters, cfg.forget_every, cfg.eval_every, cfg.eval_tokens) < 0:
        runtime.fail("max_iters, forget_every, eval_every and eval_tokens must be >= 0")


def start_processes(cfg):
    """One process per GPU under torchrun, or just this one: (ddp, rank, world_size, device)."""
    ddp = "RANK" in os.environ
    rank, world_size, device = (runtime.init_distributed(cfg.device) if ddp
                                else (0, 1, runtime.resolve_device(cfg.device)))
    if cfg.grad_accum % world_size:
        runtime.fail(f"grad_accum={cfg.grad_accum} must be a multiple of the number of processes ({world_size})")
    return ddp, rank, world_size, device


def open_out_dir(cfg, ddp, master):
    """The checkpoint this run resumes from, or None: rank 0 prepares out_dir and tells the other ranks."""
    resume_ckpt = runtime.prepare_out_dir(cfg.out_dir, cfg, "train") if master else None
    if ddp:
        box = [resume_ckpt is not None]
        dist.broadcast_object_list(box)
        if box[0] and not master:
            if not os.path.isfile(os.path.join(cfg.out_dir, "ckpt.pt")):
                runtime.fail(f"rank {os.environ['RANK']} cannot see {cfg.out_dir}/ckpt.pt, which rank 0 resumes "
                             "from: resuming on several nodes needs out_dir on a filesystem that every node shares")
            resume_ckpt = runtime.load_checkpoint(cfg.out_dir)
    return resume_ckpt


def load_data(cfg, tok, ddp, master):
    """The pretraining languages as memory-mapped uint32 token files: (langs, training batches, val tokens)."""
    langs = cfg.langs or documents.group_languages(cfg.data_dir, "pretraining")
    weights = cfg.lang_weights or [1.0] * len(langs)
    if len(weights) != len(langs) or min(weights) < 0 or sum(weights) <= 0:
        runtime.fail(f"lang_weights needs one non-negative weight per language ({len(langs)}: {', '.join(langs)})")
    files = {split: documents.language_files(cfg.data_dir, langs, split) for split in ("train", "val")}
    prepare_token_files(tok, [path for paths in files.values() for path in paths.values()], master, ddp)
    train_tokens = {lang: common.token_file(tok, path) for lang, path in files["train"].items()}
    val_tokens = {lang: common.token_file(tok, path) for lang, path in files["val"].items()}
    return langs, common.Batches(train_tokens, weights, cfg.block_size, cfg.seed), val_tokens


def build_model(cfg, tok, device):
    """The model, seeded, and its AdamW. The embeddings get a param group of their own (param_groups[2]) so
    that [CHEN]'s per-episode schedule can drive them."""
    runtime.seed_everything(cfg.seed)
    model_config = GPTConfig(vocab_size=tok.n_vocab, block_size=cfg.block_size, n_layer=cfg.n_layer, n_head=cfg.n_head,
                             n_kv_head=cfg.n_kv_head, n_embd=cfg.n_embd, mlp_hidden=cfg.mlp_hidden,
                             rope_theta=cfg.rope_theta)
    model = GPT(model_config)
    model.init_weights(torch.Generator().manual_seed(cfg.seed))
    model.to(device)
    body = [p for p in model.parameters() if p is not model.wte.weight]
    groups = [{"params": [p for p in body if p.dim() >= 2], "weight_decay": cfg.weight_decay},
              {"params": [p for p in body if p.dim() < 2], "weight_decay": 0.0},
              {"params": [model.wte.weight], "weight_decay": cfg.weight_decay}]
    optimizer = torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), fused=device.startswith("cuda"))
    return model, optimizer


def restore(resume_ckpt, cfg, tok, model, optimizer):
    """Where a resumed run left off (model, optimizer, RNG state): (start_step, episode_start)."""
    if resume_ckpt["model_config"]["vocab_size"] != tok.n_vocab:
        runtime.fail(f"{cfg.out_dir}/ckpt.pt has a vocabulary of {resume_ckpt['model_config']['vocab_size']} "
                     f"tokens but {cfg.tokenizer} has {tok.n_vocab}: it is not the tokenizer this run started with")
    model.load_state_dict(resume_ckpt["model"])
    optimizer.load_state_dict(resume_ckpt["optimizer"])
    runtime.set_rng_state(resume_ckpt["rng"])
    return resume_ckpt["step"], resume_ckpt["episode_start"]


def training_forward(model, cfg, device, ddp):
    """What runs the training forward: `model` compiled and/or wrapped for several processes (or `model`
    itself). `model` stays the plain nn.Module that is reset, evaluated and saved."""
    train_model = runtime.compiled(model, cfg.compile, device)
    if ddp:
        device_ids = [torch.device(device).index] if device.startswith("cuda") else None
        train_model = DistributedDataParallel(train_model, device_ids=device_ids)
    return train_model


def validation_bpb(model, val_tokens, token_bytes, cfg, device, autocast):
    """val bits per byte of each pretraining language and their mean."""
    results = {f"val_bpb_{lang}": common.bits_per_byte(model, tokens, token_bytes, cfg.block_size, cfg.batch_size,
                                                       device, autocast, max_tokens=cfg.eval_tokens)[0]
               for lang, tokens in val_tokens.items()}
    return {"val_bpb": sum(results.values()) / len(results), **results}


def main(argv=None):
    cfg = runtime.parse_config(TrainConfig, "train", argv)
    check_config(cfg)
    runtime.set_deterministic(cfg.deterministic)
    ddp, rank, world_size, device = start_processes(cfg)
    master = rank == 0
    accum_per_rank = cfg.grad_accum // world_size
    autocast = runtime.training_autocast(device, cfg.dtype)
    resume_ckpt = open_out_dir(cfg, ddp, master)
    if resume_ckpt is not None and loop.already_complete(resume_ckpt, cfg.out_dir, say=master):
        return resume_ckpt.get("val_bpb")

    tok = Tokenizer.load(cfg.tokenizer)
    langs, batches, val_tokens = load_data(cfg, tok, ddp, master)
    token_bytes = tok.token_byte_lengths()
    model, optimizer = build_model(cfg, tok, device)
    start_step, episode_start = (restore(resume_ckpt, cfg, tok, model, optimizer) if resume_ckpt is not None
                                  else (0, 0))
    train_model = training_forward(model, cfg, device, ddp)
    log = runtime.Log(cfg.out_dir, resume_step=start_step if resume_ckpt else None) if master else None
    if master:
        tok.save(os.path.join(cfg.out_dir, "tokenizer.tiktoken"))
        print(f"pretraining {model.num_params() / 1e6:.2f}M parameters on {', '.join(langs)} | {device} | "
              f"{world_size} process(es) | forget_every={cfg.forget_every}"
              + (f" | resuming at step {start_step}" if start_step else ""))
    tokens_per_step = cfg.batch_size * cfg.grad_accum * cfg.block_size
    peak = peak_flops(device)
    steps = loop.Steps("train", cfg, start_step, cfg.max_iters, device, log, tokens=start_step * tokens_per_step,
                       flops_per_token=model.flops_per_token(), peak_flops=peak * world_size if peak else None)

    def save(step):
        steps.save(step, model.state_dict(), model.config, optimizer, episode_start=episode_start, langs=langs,
                   val_bpb=last_val)

    last_val = None
    for step in steps:
        # ---- evaluation and checkpoint of the model after `step` updates ---------------------------------
        if master and cfg.eval_every and step % cfg.eval_every == 0:
            last_val = validation_bpb(model, val_tokens, token_bytes, cfg, device, autocast)
            steps.evaluated(step, **last_val)
            if step > start_step:  # (the step a run resumes at is on disk already)
                save(step)

        # ---- active forgetting ---------------------------------------------------------------------------
        # Every K steps, but not at step 0 (nothing learned yet) nor at the last step (nothing relearned).
        forget = cfg.forget_every and step % cfg.forget_every == 0 and 0 < step < cfg.max_iters - 1
        if forget:
            # new embeddings: the step-0 init, N(0, 0.02), seeded alike on every GPU and on resume
            model.reset_token_embeddings(torch.Generator().manual_seed(cfg.seed + step))
            # Adam forgets them too: their moments and bias-correction step restart from zero
            optimizer.state[model.wte.weight].clear()
            episode_start = step

        # ---- learning rate: warm-up + cosine; under emb_episode_lr the embeddings replay it per episode ---
        lr = common.lr_at(step, cfg.max_iters, cfg.lr, cfg.warmup_frac, cfg.min_lr_frac)
        for group in optimizer.param_groups:
            group["lr"] = lr
        if cfg.emb_episode_lr and cfg.forget_every:
            # param_groups[2] is the embeddings' group, looked up here: a resume's load_state_dict replaces it
            episode_length = min(cfg.forget_every, cfg.max_iters - episode_start)
            optimizer.param_groups[2]["lr"] = common.lr_at(step - episode_start, episode_length, cfg.lr,
                                                           cfg.warmup_frac, cfg.min_lr_frac)

        # ---- one optimizer step over grad_accum micro-batches ---------------------------------------------
        # The loss stays on the device: reading it (.item()) would make the CPU wait for the GPU every
        # micro-batch. It is read only at log steps, in steps.done.
        train_model.train()
        loss_sum = torch.zeros((), device=device)
        for micro in range(accum_per_rank):
            x, y = batches.get(step, rank * accum_per_rank + micro, cfg.batch_size, device)
            if ddp:  # all-reduce the gradients once, after the last micro-batch
                train_model.require_backward_grad_sync = micro == accum_per_rank - 1
            with autocast:
                _, loss = train_model(x, y)
            (loss / accum_per_rank).backward()
            loss_sum += loss.detach()
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(),
                                                   cfg.grad_clip if cfg.grad_clip > 0 else float("inf"))
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

        # ---- the NaN check, the clock and the log line (pipeline/loop.py); a reset step is always logged ----
        # loss = this step's mean micro-batch loss (over every process)
        steps.done(step, loss_sum / accum_per_rank, tokens_per_step, lr, grad_norm, log_now=forget,
                   **({"forget": True} if forget else {}))

    # the final evaluation and the complete checkpoint; with max_iters=0, the untrained model (the control)
    if master:
        last_val = validation_bpb(model, val_tokens, token_bytes, cfg, device, autocast)
        steps.evaluated(cfg.max_iters, **last_val)
        save(cfg.max_iters)
        print(f"done: val bits per byte {last_val['val_bpb']:.4f} -> {cfg.out_dir}")
    if ddp:
        dist.barrier()
        dist.destroy_process_group()
    return last_val


if __name__ == "__main__":
    main(sys.argv[1:])
