"""
Stage 2: adapt a pretrained model to new languages by vocabulary expansion (docs/method.md, "Adaptation").

    python adapt.py config/lab.py --init_from=out/pretrain                 # [AFA]: new token rows + a fresh head learn
    python adapt.py config/lab.py --init_from=out/pretrain --head=keep     # keep-head: the old head rows kept, frozen
    python adapt.py config/lab.py --init_from=out/pretrain --mode=relearn  # [CHEN]: all embeddings + the head relearned
    python adapt.py config/lab.py --init_from=out/pretrain --adapt_tokens=100000  # one sample-efficiency curve point

[AFA]'s recipe: learn new merges on the new languages' text and append them to the vocabulary (32,000 +
16,000), give the head a row per token of the merged vocabulary, and train only the new embedding rows and
the head, on all the new languages together. That is the default, --head=fresh: a new head, every row
drawn afresh and learned. --head=keep keeps the pretrained head rows and freezes them, so the pretraining
languages keep their predictions, and learns only the new tokens' rows; it departs from the paper, and
docs/method.md says how much it changes on the lab. How the new embedding rows start the paper does not say
(emb_init: the measured choice, mean).

The body and the frozen rows are frozen in fact, not by intent (the block "what learns" in main): wte and
lm_head are split into a buffer of frozen rows and a Parameter of learned rows (SplitRows), the body's
parameters get requires_grad off, and the optimizer is given the learned rows and nothing else, so the rest
leaves this stage bit-identical. Gradients still flow through the frozen body down to the new input rows.

What the paper leaves open is an option here (emb_init, head); docs/method.md says what
the lab measurement behind each default found. [CHEN]'s variant (--mode=relearn) keeps the vocabulary
unless --n_new_tokens > 0: it is about relearning embeddings, not about new tokens.
"""

import inspect
import os
import sys
import time
import warnings
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

import tokenizer
from model import GPT, GPTConfig
from pipeline import bpe, build_once, common, documents, loop, runtime
from pipeline.loop import TrainingOptions


@dataclass
class AdaptConfig(TrainingOptions):
    """Stage 2: extend the vocabulary for new languages and learn the new embedding rows and the head."""
    out_dir: str = "out/adapt"  # ckpt.pt, the merged tokenizer.tiktoken, config.json and log.jsonl go here
    init_from: str = ""  # out_dir of a pretraining run (train.py) to adapt; required
    data_dir: str = ""  # a folder with manifest.json; empty = the one the pretraining run used
    langs: list[str] = field(default_factory=list)  # languages to adapt to, mixed equally; empty = the adapting group
    eval_langs: list[str] = field(default_factory=list)  # languages each eval measures; empty = all in the manifest
    mode: str = "expand"  # expand ([AFA]: learn new rows + head) or relearn ([CHEN]: reset every embedding + the head)
    n_new_tokens: int = -1  # merges to learn on adapting text; -1 = 50% of base vocab ([AFA]: 16k on 32k), relearn: 0
    extend_max_bytes: int = 500_000_000  # learn them on an even sample of this much adapting text (0 = all of it)
    # The paper's unknowns (expand only; relearn starts every row and the head from N(0, 0.02)); the lab
    # measurements behind these defaults are in docs/method.md
    emb_init: str = "mean"  # new rows: mean of the base tokens they encode to, or random N(0, 0.02); UNKNOWN in [AFA]
    head: str = "fresh"  # fresh ([AFA]: new head, N(0, 0.02), all learned) or keep (old rows frozen, new rows learned)
    # how much to adapt: the x-axis of [CHEN]'s sample-efficiency curve
    adapt_tokens: int = 500_000  # training tokens seen; steps = adapt_tokens / (batch_size * grad_accum * block_size)
    max_iters: int = 0  # optimizer steps; 0 = from adapt_tokens
    # optimisation (UNKNOWN in [AFA]; AdamW with warm-up + cosine like pretraining; grad_accum and the rest below)
    batch_size: int = 8  # sequences per micro-batch (block_size is the pretrained model's)
    lr: float = 1e-3  # peak learning rate (the lab's tiny model takes 1e-2: config/lab.py)
    # evaluation, checkpoints
    eval_every: int = 50  # measure val bits per byte of each eval language and save a checkpoint every this many steps
    eval_bytes: int = 16384  # UTF-8 bytes of val text per language per evaluation: the same text under every vocabulary


CHOICES = {"mode": ("expand", "relearn"), "emb_init": ("mean", "random"), "head": ("fresh", "keep")}
ROW_SEED_OFFSET = 1_000_003  # see start_rows


# ---- what learns: wte and lm_head split into frozen rows and learned rows ------------------------------

class SplitRows(nn.Module):
    """Stands in for model.wte or model.lm_head while adapting. Rows [:n_frozen] are the buffer `frozen`: no
    gradient, no optimizer state, so they cannot change. Rows [n_frozen:] are the Parameter `learned`, the only
    tensor of this module the optimizer sees. There is deliberately no `weight`: `model.wte.weight` fails
    loudly here instead of handing out a copy that a write would silently go to. `merged()` is that copy,
    the whole matrix, for saving."""

    def __init__(self, weight, n_frozen):
        super().__init__()
        self.register_buffer("frozen", weight[:n_frozen].detach().clone(), persistent=False)
        self.learned = nn.Parameter(weight[n_frozen:].detach().clone())

    def merged(self):
        return torch.cat([self.frozen, self.learned.detach()])


class SplitEmbedding(SplitRows):
    def forward(self, idx):
        return F.embedding(idx, torch.cat([self.frozen, self.learned]) if len(self.frozen) else self.learned)


class SplitHead(SplitRows):
    def forward(self, x):
        # the head as two matmuls: the backward never forms the weight gradient of the frozen rows (with
        # 32,000 frozen rows and 16,000 learned ones that would triple it; docs/method.md, "Adaptation")
        if not len(self.frozen):  # a fresh head or relearn: one matmul, no copy of the logits
            return F.linear(x, self.learned)
        return torch.cat([F.linear(x, self.frozen), F.linear(x, self.learned)], dim=-1)


def freeze(model, n_frozen_emb, n_frozen_head):
    """Freeze the whole model except the rows of wte from n_frozen_emb on and of lm_head from n_frozen_head
    on; returns those learned rows, the only parameters the optimizer gets."""
    for p in model.parameters():
        p.requires_grad_(False)
    model.wte = SplitEmbedding(model.wte.weight, n_frozen_emb)
    model.lm_head = SplitHead(model.lm_head.weight, n_frozen_head)
    return [model.wte.learned, model.lm_head.learned]


def merged_state_dict(model):
    """A plain GPT state_dict of a split model: every other stage loads it with runtime.load_model."""
    state = {k: v for k, v in model.state_dict().items() if not k.startswith(("wte.", "lm_head."))}
    state["wte.weight"] = model.wte.merged()
    state["lm_head.weight"] = model.lm_head.merged()
    return state


def start_rows(model, base_tok, tok, mode, emb_init, head, seed):
    """The surgery before adapting: grow the model to tok's vocabulary and start the rows that will learn."""
    for key, value in (("mode", mode), ("emb_init", emb_init), ("head", head)):
        if value not in CHOICES[key]:  # e.g. a head="old" would silently mean keep
            raise ValueError(f"{key} must be one of {', '.join(CHOICES[key])}, not {value!r}")
    # not `seed` itself: train.py drew the pretraining init from it, and a "fresh" row must not be that one again
    generator = torch.Generator().manual_seed(seed + ROW_SEED_OFFSET)
    if tok.n_vocab > base_tok.n_vocab:
        model.expand_vocab(tok.n_vocab, generator)
    if mode == "expand":
        init_new_rows(model, base_tok, tok, emb_init, head, generator)
    else:  # [CHEN]: forget every token embedding and the head (tied in RoBERTa), keep the body
        model.reset_token_embeddings(generator)
        model.reset_head(generator)


@torch.no_grad()
def init_new_rows(model, base_tok, tok, emb_init, head, generator):
    """Start the rows of the tokens base_tok lacks (model already expanded to tok.n_vocab); under
    head=fresh, every head row."""
    n_old = base_tok.n_vocab
    if emb_init == "mean":
        # a new token starts where the base model would have been after reading its bytes as base tokens:
        # the mean of those tokens' embeddings (N(0, 0.02) otherwise, which expand_vocab already drew)
        old = model.wte.weight[:n_old].clone()
        for i in range(n_old, tok.n_vocab):
            pieces = bpe.encode_bytes(tok.token_bytes(i), base_tok.mergeable_ranks, base_tok._bytes)
            model.wte.weight[i] = old[pieces].mean(0)
    if head == "fresh":  # the paper read literally: a new head of 48,000 rows
        model.reset_head(generator)


def extend_vocabulary(base_tok, train_paths, n_new, max_bytes):
    """The base vocabulary + up to n_new merges learned on the adapting languages' training text: an even,
    seeded sample of max_bytes of it, each language an equal share (as tokenizer.py --max_bytes), or all of it
    if max_bytes is 0 or the text is smaller."""
    docs = documents.corpus_documents(list(train_paths.values()), max_bytes or None)
    with warnings.catch_warnings():  # extend() warns when the text supports fewer merges; we say it ourselves
        warnings.simplefilter("ignore")
        try:
            return tokenizer.extend(base_tok, docs, n_new)
        except ValueError as e:  # the files have text (checked up front): the sample took none of it
            runtime.fail(f"--extend_max_bytes={max_bytes} takes no whole document of the adapting text ({e}); "
                         "raise it, or 0 for all of it")


def cached_vocabulary(base_tok, train_paths, n_new, max_bytes, cache_dir):
    """extend_vocabulary, built once per inputs in cache_dir and reused after: run.sh's expand runs (every
    budget, both head recipes, started at once) all learn the same merges on the same text. The file's name
    is a hash of the inputs: the base vocabulary, each adapting file's path, size and time, n_new, max_bytes
    and the code that reads the text and learns the merges (a change to it builds anew)."""
    inputs = {"base": base_tok.fingerprint(), "n_new": n_new, "max_bytes": max_bytes,
              "text": [[lang, build_once.file_stamp(path)] for lang, path in train_paths.items()],
              "code": [inspect.getsource(module) for module in (tokenizer, bpe, documents)]}
    path = os.path.join(cache_dir, f"merged.{build_once.inputs_key(inputs)}.tiktoken")
    start = time.time()
    tok, reused = build_once.build_once(path, lambda: extend_vocabulary(base_tok, train_paths, n_new, max_bytes),
                                        tokenizer.Tokenizer.load, lambda built, to: built.save(to))
    learned = tok.n_vocab - base_tok.n_vocab
    if reused:
        print(f"merged vocabulary: reused {path} ({learned} new tokens, built before from the same base vocabulary, "
              "adapting text and merges)")
    else:
        print(f"merged vocabulary: learned {learned} new tokens in {time.time() - start:.1f} s -> {path}")
    if learned < n_new:
        print(f"note: the adapting text supports only {learned} of the {n_new} new tokens asked for; learned {learned}")
    return tok


def has_text(path):
    """True if the file holds anything but whitespace (read in chunks: real corpora are large)."""
    with open(path, encoding="utf-8", errors="replace") as f:
        while chunk := f.read(1 << 16):
            if chunk.strip():
                return True
    return False


def eval_spans(tok, val_paths, eval_bytes, block_size):
    """How many tokens of each val file cover its first eval_bytes bytes under `tok`. Bits per byte compares
    vocabularies only on the same text, so evaluations are sized in bytes, not tokens (a byte-level
    language has 5x the tokens of one the vocabulary knows)."""
    token_bytes = tok.token_byte_lengths()
    spans = {}
    for lang, path in val_paths.items():
        covered = np.cumsum(token_bytes[common.token_file(tok, path)])
        spans[lang] = max(int(np.searchsorted(covered, eval_bytes)) + 1, block_size + 1)
    return spans


def evaluate(model, tok, val_paths, spans, groups, langs, block_size, batch_size, device, autocast):
    """val bits per byte of every eval language, the mean of each manifest group, and val_bpb = the mean of
    the adapted languages (the stage's objective)."""
    token_bytes = tok.token_byte_lengths()
    bpb = {lang: common.bits_per_byte(model, common.token_file(tok, path), token_bytes, block_size, batch_size,
                                      device, autocast, max_tokens=spans[lang])[0] for lang, path in val_paths.items()}
    result = {"val_bpb": float(np.mean([bpb[lang] for lang in langs]))}
    for group, members in groups.items():
        present = [bpb[lang] for lang in members if lang in bpb]
        if present:
            result[f"val_bpb_mean_{group}"] = float(np.mean(present))
    result.update({f"val_bpb_{lang}": value for lang, value in bpb.items()})
    return result


def check_config(cfg):
    for key, allowed in CHOICES.items():
        if getattr(cfg, key) not in allowed:
            runtime.fail(f"--{key}={getattr(cfg, key)!r} is not one of {', '.join(allowed)}")
    if cfg.mode == "relearn" and cfg.head == "keep":
        runtime.fail("--head=keep keeps the pretrained head rows, but --mode=relearn relearns the whole head: "
                     "use --head=fresh")
    if cfg.mode == "expand" and cfg.n_new_tokens == 0:
        runtime.fail("--mode=expand needs new tokens: --n_new_tokens > 0, or -1 for 50% of the base vocabulary")
    runtime.require_positive(cfg, "adapt_tokens", "eval_bytes", "batch_size", "grad_accum", "log_every")
    if cfg.n_new_tokens < -1 or min(cfg.max_iters, cfg.eval_every, cfg.extend_max_bytes) < 0:
        runtime.fail("n_new_tokens must be >= -1, and max_iters, eval_every and extend_max_bytes >= 0")
    if not cfg.init_from:
        runtime.fail("--init_from is required: the out_dir of a pretraining run (train.py)")


def load_pretrained(cfg):
    """(model, tokenizer, checkpoint) of the pretraining run to adapt, checked against each other."""
    base_model, base_tok, init_ckpt = runtime.load_model(cfg.init_from)
    if init_ckpt["stage"] != "train":
        runtime.fail(f"{cfg.init_from}/ckpt.pt was written by {init_ckpt['stage']}.py; adapt.py starts from a "
                     f"pretraining run (an out_dir of train.py)")
    return base_model, base_tok, init_ckpt


def find_text(cfg, init_ckpt):
    """The data folder, its manifest, the languages to adapt to, and their train and val files (of the eval
    languages too), each checked to hold text."""
    data_dir = cfg.data_dir or init_ckpt["config"].get("data_dir", "")
    manifest = documents.read_manifest(data_dir)
    langs = cfg.langs or documents.group_languages(data_dir, "adapting")
    eval_langs = cfg.eval_langs or [entry["code"] for entry in manifest["languages"]]
    if not langs:
        runtime.fail(f"no languages to adapt to: {data_dir}/manifest.json has an empty adapting group; pass --langs")
    if len(set(langs)) != len(langs):
        runtime.fail(f"--langs names a language twice: {', '.join(langs)}")
    train_paths = documents.language_files(data_dir, langs, "train")
    if 0 < cfg.extend_max_bytes < len(langs):
        runtime.fail(f"--extend_max_bytes must be 0 (all the text) or at least one byte per language ({len(langs)})")
    val_paths = documents.language_files(data_dir, list(dict.fromkeys(langs + eval_langs)), "val")
    for lang, path in [*train_paths.items(), *val_paths.items()]:
        if not os.path.isfile(path) or not has_text(path):
            runtime.fail(f"language '{lang}' has no text: {path} is {'empty' if os.path.isfile(path) else 'missing'}")
    return data_dir, manifest, langs, train_paths, val_paths


def merged_vocabulary(cfg, data_dir, base_tok, train_paths, n_new, resume_ckpt):
    """The base vocabulary + the new tokens, learned and saved in out_dir by a new run, read by a resumed one."""
    tok_path = os.path.join(cfg.out_dir, "tokenizer.tiktoken")
    if resume_ckpt is None:
        cache_dir = os.path.join(data_dir, "merged_vocab")  # shared by every adaptation of this data folder
        tok = cached_vocabulary(base_tok, train_paths, n_new, cfg.extend_max_bytes, cache_dir) if n_new else base_tok
        tok.save(tok_path)
    else:
        tok = tokenizer.Tokenizer.load(tok_path)
        if tok.n_vocab != resume_ckpt["model_config"]["vocab_size"] or any(
                tok.token_bytes(i) != base_tok.token_bytes(i) for i in range(base_tok.n_vocab)):
            runtime.fail(f"{tok_path} does not match {cfg.out_dir}/ckpt.pt or the base vocabulary of {cfg.init_from}")
    return tok


def resumed_model(cfg, resume_ckpt, base_model, n_frozen_emb, n_frozen_head, device):
    """The model a resumed run left in out_dir, whose frozen part must still be what init_from holds."""
    model = GPT(GPTConfig(**resume_ckpt["model_config"]))
    model.load_state_dict(resume_ckpt["model"])
    model.to(device)
    base_state, state = base_model.state_dict(), model.state_dict()
    same = all(torch.equal(state[k], v) for k, v in base_state.items() if not k.startswith(("wte.", "lm_head.")))
    same = same and torch.equal(state["wte.weight"][:n_frozen_emb], base_state["wte.weight"][:n_frozen_emb])
    same = same and torch.equal(state["lm_head.weight"][:n_frozen_head], base_state["lm_head.weight"][:n_frozen_head])
    if not same:
        runtime.fail(f"{cfg.init_from} changed since {cfg.out_dir} started adapting it; use --overwrite to start again")
    return model


def print_results(base_val, start_val, last_val, out_dir):
    print("\nval bits per byte on the same bytes: pretrained (base vocabulary) | adaptation start | adapted")
    print("| language | pretrained | start | adapted |\n|---|---:|---:|---:|")
    for key in [k for k in last_val if k.startswith("val_bpb_")]:
        print(f"| {key[len('val_bpb_'):]} | {base_val[key]:.4f} | {start_val[key]:.4f} | {last_val[key]:.4f} |")
    print(f"done: adapted languages {base_val['val_bpb']:.4f} -> {last_val['val_bpb']:.4f} bits per byte -> {out_dir}")


def main(argv=None):
    cfg = runtime.parse_config(AdaptConfig, "adapt", argv)
    check_config(cfg)
    runtime.set_deterministic(cfg.deterministic)
    device = runtime.resolve_device(cfg.device)
    autocast = runtime.training_autocast(device, cfg.dtype)

    # ---- the pretrained model and the data, all checked before anything is written -------------------
    base_model, base_tok, init_ckpt = load_pretrained(cfg)  # also checks tokenizer vs checkpoint
    data_dir, manifest, langs, train_paths, val_paths = find_text(cfg, init_ckpt)
    block_size = base_model.config.block_size
    n_old = base_tok.n_vocab
    n_new = cfg.n_new_tokens if cfg.n_new_tokens != -1 else (n_old // 2 if cfg.mode == "expand" else 0)
    resume_ckpt = runtime.prepare_out_dir(cfg.out_dir, cfg, "adapt")
    if resume_ckpt is not None and loop.already_complete(resume_ckpt, cfg.out_dir):
        return resume_ckpt["val_bpb"]

    tok = merged_vocabulary(cfg, data_dir, base_tok, train_paths, n_new, resume_ckpt)
    if tok.n_vocab > n_old:
        print(f"vocabulary {n_old} + {tok.n_vocab - n_old} new tokens = {tok.n_vocab}; "
              "UTF-8 bytes per token on the val text:")
        print(documents.stats_table({"base": base_tok, "merged": tok},
                                     {lang: list(documents.read_documents(val_paths[lang])) for lang in langs}))
    groups = manifest.get("groups", {})
    spans = {"base": eval_spans(base_tok, val_paths, cfg.eval_bytes, block_size),
             "merged": eval_spans(tok, val_paths, cfg.eval_bytes, block_size)}

    def measure(some_model, its_tok, its_spans):
        return evaluate(some_model, its_tok, val_paths, its_spans, groups, langs, block_size, cfg.batch_size, device,
                        autocast)

    # ---- the model: expand, start the new rows, freeze everything else ---------------------------------
    runtime.seed_everything(cfg.seed)
    base_model.to(device)
    n_frozen_emb = n_old if cfg.mode == "expand" else 0
    n_frozen_head = n_old if cfg.head == "keep" else 0
    if resume_ckpt is None:
        base_val = measure(base_model, base_tok, spans["base"])  # the pretrained model on its own vocabulary
        model = base_model  # the surgery happens in place; the frozen tensors are copied, never shared
        start_rows(model, base_tok, tok, cfg.mode, cfg.emb_init, cfg.head, cfg.seed)
    else:
        base_val = resume_ckpt["base_val"]
        model = resumed_model(cfg, resume_ckpt, base_model, n_frozen_emb, n_frozen_head, device)
    del base_model
    n_params = model.num_params()

    # ---- what learns ------------------------------------------------------------------------------------
    # expand: the new embedding rows, and the new head rows (head=keep) or the whole head (fresh);
    # relearn: every embedding row and the whole head. The body gets requires_grad off and the frozen rows
    # become buffers; the optimizer is given the learned rows and nothing else, so weight decay too can only
    # touch them, and everything else leaves this stage bit-identical.
    trainable = freeze(model, n_frozen_emb, n_frozen_head)  # [model.wte.learned, model.lm_head.learned]
    optimizer = torch.optim.AdamW([{"params": trainable, "weight_decay": cfg.weight_decay}], lr=cfg.lr,
                                  betas=(cfg.beta1, cfg.beta2), fused=device.startswith("cuda"))
    start_step, start_val = 0, None
    if resume_ckpt is not None:
        optimizer.load_state_dict(resume_ckpt["optimizer"])
        runtime.set_rng_state(resume_ckpt["rng"])
        start_step, start_val = resume_ckpt["step"], resume_ckpt["start_val"]
    train_model = runtime.compiled(model, cfg.compile, device)  # runs the training forward; `model` is evaluated, saved

    # ---- data: the adapting languages, mixed equally ---------------------------------------------------
    train_tokens = {lang: common.token_file(tok, path) for lang, path in train_paths.items()}
    batches = common.Batches(train_tokens, [1.0] * len(langs), block_size, cfg.seed)
    tokens_per_step = cfg.batch_size * cfg.grad_accum * block_size
    max_iters = cfg.max_iters or max(1, round(cfg.adapt_tokens / tokens_per_step))

    log = runtime.Log(cfg.out_dir, resume_step=start_step if resume_ckpt else None)
    n_learned = sum(p.numel() for p in trainable)
    print(f"adapting {cfg.init_from} to {', '.join(langs)} | mode={cfg.mode} | learning {n_learned / 1e6:.2f}M of "
          f"{n_params / 1e6:.2f}M parameters | {max_iters} steps x {tokens_per_step} tokens | {device}"
          + (f" | resuming at step {start_step}" if start_step else ""))
    steps = loop.Steps("adapt", cfg, start_step, max_iters, device, log, tokens=start_step * tokens_per_step)

    def save(step):
        steps.save(step, merged_state_dict(model), model.config, optimizer, max_iters=max_iters, langs=langs,
                   n_base_vocab=n_old, init_step=init_ckpt["step"], base_val=base_val, start_val=start_val,
                   val_bpb=last_val)

    last_val = None
    for step in steps:
        # ---- evaluation over adaptation tokens: the sample-efficiency curve and the forgetting ----------
        if step == 0 or (cfg.eval_every and step % cfg.eval_every == 0):
            last_val = measure(model, tok, spans["merged"])
            if step == 0:
                start_val = last_val
            steps.evaluated(step, tokens=step * tokens_per_step, **last_val,
                            **({f"base_{k}": v for k, v in base_val.items()} if step == 0 else {}))
            if step > start_step:  # (the step a run resumes at is on disk already)
                save(step)

        lr = common.lr_at(step, max_iters, cfg.lr, cfg.warmup_frac, cfg.min_lr_frac)
        for group in optimizer.param_groups:
            group["lr"] = lr
        train_model.train()
        loss_sum = torch.zeros((), device=device)  # on the device: read only at log steps (steps.done)
        for micro in range(cfg.grad_accum):
            x, y = batches.get(step, micro, cfg.batch_size, device)
            with autocast:
                _, loss = train_model(x, y)
            (loss / cfg.grad_accum).backward()
            loss_sum += loss.detach()
        grad_norm = torch.nn.utils.clip_grad_norm_(trainable, cfg.grad_clip if cfg.grad_clip > 0 else float("inf"))
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

        # ---- the NaN check, the clock and the log line (pipeline/loop.py): loss = the mean micro-batch loss --
        steps.done(step, loss_sum / cfg.grad_accum, tokens_per_step, lr, grad_norm)

    last_val = measure(model, tok, spans["merged"])  # the final evaluation and the complete checkpoint
    steps.evaluated(max_iters, tokens=max_iters * tokens_per_step, **last_val)
    save(max_iters)
    print_results(base_val, start_val, last_val, cfg.out_dir)
    return last_val


if __name__ == "__main__":
    main(sys.argv[1:])
