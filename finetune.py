"""
Stage 3: English instruction finetuning in ChatML, the loss on the assistant's tokens only (docs/method.md,
"Finetuning").

    python finetune.py config/lab.py --init_from=out/adapt --out_dir=out/finetune   # [AFA]: the adapted model
    python finetune.py config/lab.py --init_from=out/pretrain --out_dir=out/ft_body --train_params=body  # [CHEN]
    python finetune.py --init_from=out/adapt --data=orca/train.jsonl --val_data=orca/val.jsonl --out_dir=out/ft

Data: JSONL, one conversation a line, {"messages": [{"role": "system"|"user"|"assistant", "content": "..."}, ...]}
(the lab's instructions/{train,val}.jsonl by default; real sets are converted to the same shape).
chat.render turns a conversation into ChatML ids, the paper's system prompt first unless the
conversation brings its own, and a loss mask that is 1 exactly on the assistant's content and its
closing <|im_end|>: the model learns to answer, not to predict the user.

Batches: a step learns from batch_size * grad_accum conversations, in grad_accum micro-batches of batch_size;
each micro-batch's loss is weighted by its share of the step's assistant tokens, so that the update is the one
of a single batch of them all. One conversation per row, padded with <|pad|> after the longest row of the
micro-batch to a multiple of 64 tokens (or to the block); never packed. Padding comes after the conversation
and attention is causal, so it changes nothing a real token sees, and no conversation attends to another
(packing would need a block-diagonal attention mask for that). The multiple of 64 keeps the shapes
torch.compile sees few: a length of its own per batch would recompile the model for every new length.
A conversation longer than block_size + 1 tokens is cut to that length, ids and mask together, and
counted. By default the cut keeps its end (--truncate=left), as evaluate.py cuts a prompt that is too
long: the answer survives, and the model learns to answer from a context cut the way it will be at test
time (the lab's system prompt and a reading passage can fill most of a short block: docs/method.md says
how many answers cutting the end lost). --truncate=right keeps the start, as most SFT code does; a
conversation with no assistant token left in its block is dropped and counted.

Which parameters learn (--train_params):
    all   every weight (the default; [AFA] does not say which parameters it finetunes).
    body  the transformer blocks and norms only; the input embeddings and the output head stay frozen,
          bit for bit. [CHEN]'s recipe: an English finetune that leaves the embedding space alone keeps
          the rows learned for new languages during adaptation aligned with the body. The rows of
          <|im_start|> and <|im_end|> stay as pretraining left them too (never seen there), so the body
          alone must learn to end an answer: on the lab this mode ends at a higher assistant loss.
          splice.py gives such a body, finetuned from a pretrained model, the embeddings and head an
          adaptation of that model learned: [CHEN]'s zero-shot transfer.

After training, a few held-out English prompts are answered greedily (KV cache, stop at <|im_end|>)
through chat.render_prompt, the template evaluation uses; the answers go into log.jsonl.
"""

import json
import math
import os
import sys
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from evaluation.inference import generate
from pipeline import chat, common, documents, loop, runtime
from pipeline.loop import TrainingOptions


@dataclass
class FinetuneConfig(TrainingOptions):
    """Stage 3: finetune a pretrained or adapted model on English instructions (ChatML; loss on the assistant's
    tokens only)."""
    out_dir: str = "out/finetune"  # ckpt.pt, tokenizer.tiktoken, config.json and log.jsonl go here
    init_from: str = "out/pretrain"  # out_dir of train.py or adapt.py: the model and vocabulary to finetune
    data_dir: str = "out/lab"  # a folder with manifest.json whose "instructions" are the default data
    data: str = ""  # training conversations (JSONL); empty = the manifest's instructions train file
    val_data: str = ""  # held-out conversations (JSONL); empty = the manifest's instructions val file
    skip_bad: bool = False  # skip and count bad conversations instead of stopping at the first one
    truncate: str = "left"  # over-long conversations: left keeps the end (as evaluation cuts prompts), right the start
    train_params: str = "all"  # all = every weight; body = embeddings and head frozen ([CHEN])
    # optimisation: AdamW, warm-up + cosine ([AFA]'s settings and why the lab's differ: docs/method.md); a step
    # learns from batch_size * grad_accum conversations (grad_accum and the rest: below)
    epochs: float = 5.0  # passes over the training conversations (fractions allowed; [AFA]: 5)
    max_iters: int = 0  # optimizer steps; 0 = as many as `epochs` needs
    batch_size: int = 16  # conversations per micro-batch ([AFA]: 16 a step)
    lr: float = 1e-6  # peak learning rate ([AFA]'s, for 400M+ models; the lab's tiny one takes 1e-3: config/lab.py)
    # evaluation, checkpoints
    eval_every: int = 50  # measure the val assistant loss (and save a checkpoint) every this many steps
    val_conversations: int = 256  # held-out conversations for the val loss; 0 = all
    n_samples: int = 3  # held-out prompts answered greedily after training (printed and logged)
    max_new_tokens: int = 48  # length limit of those answers (a longer prompt is cut on the left to leave room)


# ---- data: JSONL conversations -> (ids, mask) rows -----------------------------------------------------

def read_conversations(path, tok, skip_bad=False):
    """The conversations of a JSONL file, each checked by rendering it: a list of (messages, ids, mask),
    and the lines skipped as {reason: [line numbers]} (always empty unless skip_bad)."""
    if not os.path.isfile(path):
        runtime.fail(f"instruction file {path} not found")
    conversations, skipped = [], {}
    with open(path, encoding="utf-8", errors="strict") as f:
        try:
            lines = f.read().split("\n")
        except UnicodeDecodeError as e:
            runtime.fail(f"{path} is not UTF-8 text (bad byte at offset {e.start})")
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            messages = _parse_line(line)
            ids, mask = chat.render(tok, messages)
        except ValueError as e:
            if not skip_bad:
                runtime.fail(f"{path}, line {lineno}: {e} (--skip_bad skips and counts such lines)")
            skipped.setdefault(_reason(str(e)), []).append(lineno)
            continue
        conversations.append((messages, ids, mask))
    if not conversations:
        n_bad = sum(len(v) for v in skipped.values())
        runtime.fail(f"{path} holds no usable conversations" + (f" ({n_bad} bad lines skipped)" if n_bad else ""))
    return conversations, skipped


def _parse_line(line):
    try:
        record = json.loads(line)
    except json.JSONDecodeError as e:
        raise ValueError(f"not valid JSON ({e.msg} at column {e.colno})") from None
    if not isinstance(record, dict) or not isinstance(record.get("messages"), list):
        raise ValueError('expected an object {"messages": [{"role": ..., "content": ...}, ...]}')
    return record["messages"]


def _reason(message):
    # group skipped lines by the kind of fault, not by their text ("messages[3]: unknown role 'bot'")
    for kind in ("not valid JSON", "expected an object", "expected a dict", "non-empty list", "unknown role",
                 "content must be", "no assistant message", "system message"):
        if kind in message:
            return kind
    return message


def to_rows(conversations, block_size, truncate="left"):
    """(ids, mask) rows of at most block_size + 1 tokens (a block of inputs and its shifted targets); a
    longer conversation keeps its end (truncate="left") or its start ("right"). Returns the rows, how many
    conversations were cut, and how many were dropped because no assistant token was left in the block."""
    rows, n_truncated, n_dropped = [], 0, 0
    keep = slice(-(block_size + 1), None) if truncate == "left" else slice(0, block_size + 1)
    for _, ids, mask in conversations:
        if len(ids) > block_size + 1:
            n_truncated += 1
            ids, mask = ids[keep], mask[keep]  # cut together: they stay aligned
        if not any(mask[1:]):  # mask[0] is never a target
            n_dropped += 1
            continue
        rows.append((ids, mask))
    return rows, n_truncated, n_dropped


PAD_MULTIPLE = 64  # a batch's length is rounded up to this (at most the block): few shapes to compile


def collate(rows, pad_id, block_size, device="cpu"):
    """Inputs x and targets y [B, L] for rows padded after the longest one, L a multiple of PAD_MULTIPLE or
    block_size; y is -1 wherever the target token is not the assistant's (or is padding), so those positions
    take no loss and send back no gradient."""
    longest = max(len(ids) for ids, _ in rows) - 1  # inputs: every token but the last
    length = min(math.ceil(longest / PAD_MULTIPLE) * PAD_MULTIPLE, block_size) + 1
    ids = torch.full((len(rows), length), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), length), dtype=torch.bool)
    for r, (row_ids, row_mask) in enumerate(rows):
        ids[r, :len(row_ids)] = torch.tensor(row_ids)
        mask[r, :len(row_mask)] = torch.tensor(row_mask, dtype=torch.bool)
    x, y = ids[:, :-1], ids[:, 1:].masked_fill(~mask[:, 1:], -1)
    return x.to(device), y.to(device)


@lru_cache(maxsize=4)
def _epoch_order(n, seed, epoch):
    return np.random.default_rng([seed, epoch]).permutation(n)


def batch_indices(step, batch_size, n, seed):
    """The conversations of batch `step`: every epoch is a fresh seeded shuffle and the epochs are read as
    one stream, so a batch is a pure function of (seed, step) and a resumed run sees exactly the batches
    of an uninterrupted one."""
    return [int(_epoch_order(n, seed, k // n)[k % n]) for k in range(step * batch_size, (step + 1) * batch_size)]


# ---- evaluation ----------------------------------------------------------------------------------------

@torch.no_grad()
def assistant_loss(model, rows, batch_size, pad_id, device, autocast):
    """Mean nats per assistant token (content + <|im_end|>) over the rows."""
    model.eval()
    nats, count = 0.0, 0
    for first in range(0, len(rows), batch_size):
        x, y = collate(rows[first:first + batch_size], pad_id, model.config.block_size, device)
        with autocast:
            nats += model.token_nll(x, y).sum().item()
        count += (y != -1).sum().item()
    return nats / count


def greedy_answers(model, tok, conversations, n, max_new_tokens):
    """Answers to the first n held-out prompts (everything before a conversation's first assistant turn),
    rendered with render_prompt exactly as evaluation renders its prompts."""
    model.eval()
    samples = []
    for messages, _, _ in conversations:
        if len(samples) == n:
            break
        first = next(k for k, m in enumerate(messages) if m["role"] == "assistant")
        if first == 0 or messages[first - 1]["role"] != "user":
            continue  # no user question right before the answer: nothing to prompt with
        # too long a prompt loses its start, as evaluate.py cuts it, leaving room for the answer
        prompt = chat.render_prompt(tok, messages[:first])[-(model.config.block_size - max_new_tokens):]
        new = generate(model, prompt, max_new_tokens, stop_ids=(tok.im_end_id,))
        finished = bool(new) and new[-1] == tok.im_end_id
        samples.append({"prompt": messages[first - 1]["content"], "reference": messages[first]["content"],
                        "answer": tok.decode(new[:-1] if finished else new).strip(), "finished": finished})
    return samples


# ---- the run -------------------------------------------------------------------------------------------

def check_config(cfg):
    if cfg.train_params not in ("all", "body"):
        runtime.fail(f"train_params must be 'all' or 'body', got '{cfg.train_params}'")
    if cfg.truncate not in ("left", "right"):
        runtime.fail(f"truncate must be 'left' or 'right', got '{cfg.truncate}'")
    runtime.require_positive(cfg, "batch_size", "grad_accum", "log_every")
    if (cfg.max_iters < 0 or (cfg.max_iters == 0 and cfg.epochs <= 0)
            or min(cfg.eval_every, cfg.val_conversations, cfg.n_samples) < 0):
        runtime.fail("max_iters > 0 or epochs > 0 is needed, and eval_every, val_conversations and n_samples "
                     "must be >= 0")
    if cfg.data and not cfg.val_data:  # never score a real set on the lab's val file by accident
        runtime.fail("--data needs --val_data too: held-out conversations in the same JSONL format")
    if os.path.abspath(cfg.init_from) == os.path.abspath(cfg.out_dir):
        runtime.fail(f"init_from and out_dir are both {cfg.out_dir}: finetune into a new folder")


def check_resumable(cfg, resume_ckpt):
    """A run saved before grad_accum meant one thing in every stage read batch_size as the conversations of a
    step and split them into grad_accum micro-batches: with the same options it would now learn from
    grad_accum times as many a step. Such a run (grad_accum > 1, no conversations_per_step) is refused."""
    if "conversations_per_step" not in resume_ckpt and cfg.grad_accum > 1:
        b, a = cfg.batch_size, cfg.grad_accum
        runtime.fail(f"cannot resume {cfg.out_dir}: it was saved by an older finetune.py, for which --batch_size={b} "
                     f"--grad_accum={a} meant {b} conversations a step in {a} micro-batches; batch_size now counts "
                     f"the conversations of one micro-batch ({b} x {a} a step). Use --overwrite to start again "
                     f"(--batch_size={b // a} --grad_accum={a} is the old run's update)")


def load_start(cfg, resume_ckpt, device):
    """The model and vocabulary to finetune: a resumed run reads its own out_dir, a new one the earlier stage's.
    Returns (model, tok, the stage that made init_from)."""
    model, tok, loaded = runtime.load_model(cfg.out_dir if resume_ckpt else cfg.init_from, device)
    init_stage = resume_ckpt["init_stage"] if resume_ckpt else loaded["stage"]
    if init_stage not in ("train", "adapt"):
        runtime.fail(f"{cfg.init_from}/ckpt.pt was written by {init_stage}.py; finetune.py starts from a "
                     f"train.py or adapt.py out_dir")
    block_size = model.config.block_size
    if not 0 < cfg.max_new_tokens < block_size:
        runtime.fail(f"max_new_tokens={cfg.max_new_tokens} must be between 1 and block_size - 1 = {block_size - 1}")
    return model, tok, init_stage


def load_conversations(cfg, tok, block_size):
    """The training and held-out conversations as rows of at most a block: (train_rows, val_rows, the val
    conversations, what was cut, dropped and skipped)."""
    train_path, val_path = cfg.data, cfg.val_data
    if not (train_path and val_path):
        instructions = documents.read_manifest(cfg.data_dir).get("instructions")
        if not instructions:
            runtime.fail(f"{cfg.data_dir}/manifest.json has no 'instructions' files; pass --data and --val_data")
        train_path = train_path or os.path.join(cfg.data_dir, instructions["train"])
        val_path = val_path or os.path.join(cfg.data_dir, instructions["val"])
    train_convs, train_skipped = read_conversations(train_path, tok, cfg.skip_bad)
    val_convs, val_skipped = read_conversations(val_path, tok, cfg.skip_bad)
    train_rows, n_truncated, n_dropped = to_rows(train_convs, block_size, cfg.truncate)
    val_rows, val_truncated, val_dropped = to_rows(val_convs[:cfg.val_conversations or None], block_size, cfg.truncate)
    if not train_rows or not val_rows:
        runtime.fail(f"no conversation of {train_path if not train_rows else val_path} has an assistant token inside "
                     f"block_size={block_size}")
    data_stats = dict(n_train=len(train_rows), n_truncated=n_truncated, n_dropped=n_dropped, n_val=len(val_rows),
                      n_val_truncated=val_truncated, n_val_dropped=val_dropped,
                      n_skipped=sum(map(len, train_skipped.values())),
                      n_val_skipped=sum(map(len, val_skipped.values())))
    for path, skipped in ((train_path, train_skipped), (val_path, val_skipped)):
        for reason, lines in skipped.items():  # skipped, never silently
            print(f"skipped {len(lines)} lines of {path} ({reason}): lines {', '.join(map(str, lines[:10]))}"
                  + (" ..." if len(lines) > 10 else ""))
    return train_rows, val_rows, val_convs, data_stats


def main(argv=None):
    cfg = runtime.parse_config(FinetuneConfig, "finetune", argv)
    check_config(cfg)
    runtime.set_deterministic(cfg.deterministic)
    device = runtime.resolve_device(cfg.device)
    autocast = runtime.training_autocast(device, cfg.dtype)
    resume_ckpt = runtime.prepare_out_dir(cfg.out_dir, cfg, "finetune")
    if resume_ckpt is not None and loop.already_complete(resume_ckpt, cfg.out_dir):
        return resume_ckpt["results"]
    if resume_ckpt is not None:
        check_resumable(cfg, resume_ckpt)

    model, tok, init_stage = load_start(cfg, resume_ckpt, device)
    block_size = model.config.block_size
    train_rows, val_rows, val_convs, data_stats = load_conversations(cfg, tok, block_size)
    conversations_per_step = cfg.batch_size * cfg.grad_accum
    max_iters = cfg.max_iters or math.ceil(cfg.epochs * len(train_rows) / conversations_per_step)

    # ---- which parameters learn ------------------------------------------------------------------------
    if cfg.train_params == "body":  # [CHEN]: the embedding space (input rows and output head) stays put
        for p in (model.wte.weight, model.lm_head.weight):
            p.requires_grad_(False)
    trainable = [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": [p for p in trainable if p.dim() >= 2], "weight_decay": cfg.weight_decay},
              {"params": [p for p in trainable if p.dim() < 2], "weight_decay": 0.0}]
    optimizer = torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), fused=device.startswith("cuda"))

    start_step, tokens_seen, val_loss_init = 0, 0, None
    if resume_ckpt is not None:
        optimizer.load_state_dict(resume_ckpt["optimizer"])
        runtime.set_rng_state(resume_ckpt["rng"])
        start_step, tokens_seen, val_loss_init = (resume_ckpt["step"], resume_ckpt["tokens"],
                                                  resume_ckpt["val_loss_init"])
    else:
        runtime.seed_everything(cfg.seed)
        runtime.copy_tokenizer(cfg.init_from, cfg.out_dir)
    train_model = runtime.compiled(model, cfg.compile, device)  # runs the training forward; `model` is evaluated, saved
    log = runtime.Log(cfg.out_dir, resume_step=start_step if resume_ckpt else None)
    if resume_ckpt is None:
        log.write(step=0, **data_stats)
    n_trainable = sum(p.numel() for p in trainable)
    print(f"finetuning {n_trainable / 1e6:.2f}M of {model.num_params() / 1e6:.2f}M parameters ({cfg.train_params}) "
          f"from {cfg.init_from} ({init_stage}) | {device} | {len(train_rows)} conversations, {max_iters} steps | "
          f"{data_stats['n_truncated']} truncated, {data_stats['n_dropped']} dropped at block_size={block_size}"
          + (f" | resuming at step {start_step}" if start_step else ""))
    steps = loop.Steps("finetune", cfg, start_step, max_iters, device, log, tokens=tokens_seen)

    def save(step, results=None):
        steps.save(step, model.state_dict(), model.config, optimizer, max_iters=max_iters, tokens=steps.tokens,
                   val_loss_init=val_loss_init, init_from=cfg.init_from, init_stage=init_stage, results=results,
                   conversations_per_step=conversations_per_step)

    val = lambda: assistant_loss(model, val_rows, cfg.batch_size, tok.pad_id, device, autocast)  # noqa: E731
    for step in steps:
        # ---- val assistant loss and checkpoint of the model after `step` updates (step 0: the "before") ----
        if step == 0 or (cfg.eval_every and step % cfg.eval_every == 0):
            val_loss = val()
            val_loss_init = val_loss if step == 0 else val_loss_init
            steps.evaluated(step, val_loss=val_loss)
            if step > start_step:  # (the step a run resumes at is on disk already)
                save(step)

        lr = common.lr_at(step, max_iters, cfg.lr, cfg.warmup_frac, cfg.min_lr_frac)
        for group in optimizer.param_groups:
            group["lr"] = lr
        train_model.train()
        batch = [train_rows[i] for i in batch_indices(step, conversations_per_step, len(train_rows), cfg.seed)]
        micro_batches = [collate(batch[k:k + cfg.batch_size], tok.pad_id, block_size)
                         for k in range(0, len(batch), cfg.batch_size)]
        step_tokens = sum(int((x != tok.pad_id).sum()) for x, _ in micro_batches)  # padding not counted (on the CPU)
        targets = [int((y != -1).sum()) for _, y in micro_batches]  # assistant tokens per micro-batch
        assistant_tokens = sum(targets)
        loss = 0.0
        for (x, y), n_targets in zip(micro_batches, targets):
            with autocast:  # micro_loss: the mean over its assistant target tokens
                _, micro_loss = train_model(common.to_device(x, device), common.to_device(y, device))
            # weighted by its share of the step's assistant tokens, the micro-batches add up to the mean over
            # all of them: the update of one batch of batch_size * grad_accum conversations
            micro_loss = micro_loss * (n_targets / assistant_tokens)
            micro_loss.backward()
            loss = loss + micro_loss.detach()
        grad_norm = torch.nn.utils.clip_grad_norm_(trainable, cfg.grad_clip if cfg.grad_clip > 0 else float("inf"))
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

        # ---- the NaN check, the clock and the log line (pipeline/loop.py): loss = the step's mean -----------
        steps.done(step, loss, step_tokens, lr, grad_norm, assistant_tokens=assistant_tokens)

    # ---- the final evaluation, greedy answers to held-out prompts, the complete checkpoint ---------------
    val_loss = val()
    samples = greedy_answers(model, tok, val_convs, cfg.n_samples, cfg.max_new_tokens)
    steps.evaluated(max_iters, val_loss=val_loss, samples=samples)
    results = {"val_loss": val_loss, "val_loss_init": val_loss_init, "samples": samples, **data_stats}
    save(max_iters, results)
    for s in samples:
        print(f"\nuser:      {s['prompt']}\nassistant: {s['answer']}\nreference: {s['reference']}")
    print(f"\ndone: val assistant loss {val_loss_init:.4f} -> {val_loss:.4f} -> {cfg.out_dir}")
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
