"""
The pieces of the method the stages share: the learning-rate schedule, token files, the batches every training
loop draws, and bits per byte (documents.py reads the data folder's manifest and text). Nothing here trains
anything: each stage's loop stays in its own file, where a reader can follow it top to bottom; a pretraining
step reads train.py's loop, model.py's forward, this file and loop.py's Steps.done. The plumbing (command line, devices,
checkpoints, the log) is in runtime.py, and what every training loop does around its step (the NaN check,
the clock, the log line) in loop.py.
"""

import itertools
import math
import os
from contextlib import nullcontext

import numpy as np
import torch

from pipeline import documents
from pipeline.documents import atomic_open, fail


def lr_at(step, max_iters, lr, warmup_frac, min_lr_frac=0.1):
    """Linear warm-up over the first warmup_frac of the run, then cosine decay to min_lr_frac * lr."""
    warmup = int(warmup_frac * max_iters)
    if step < warmup:
        return lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, max_iters - warmup)
    return lr * (min_lr_frac + (1 - min_lr_frac) * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0))))


# ---- data: token files, batches, bits per byte -----------------------------------------------------

def token_file(tok, txt_path, max_tokens=None):
    """The uint32 token file of a text file, made once per tokenizer and cached beside the text
    (`<txt>.<tokenizer hash>.bin`): every document is preceded by <|endoftext|>."""
    if not os.path.isfile(txt_path):
        fail(f"text file {txt_path} not found")
    bin_path = f"{txt_path}.{tok.fingerprint()}.bin"
    if not os.path.exists(bin_path):
        n_docs = 0
        docs = documents.read_documents(txt_path)
        # a batch of documents at a time: a corpus larger than memory streams through
        with atomic_open(bin_path, "wb") as f:
            while batch := list(itertools.islice(docs, 4096)):
                for doc_ids in tok.encode_batch(batch):
                    np.asarray([tok.eot_id, *doc_ids], dtype=np.uint32).tofile(f)
                n_docs += len(batch)
            if not n_docs:
                fail(f"text file {txt_path} is empty")
    tokens = np.memmap(bin_path, dtype=np.uint32, mode="r")
    return tokens[:max_tokens] if max_tokens else tokens


class Batches:
    """Random windows of block_size + 1 tokens from several token files, mixed with weights.

    Batch (step, micro_step) is a pure function of (seed, step, micro_step): a resumed run sees exactly the
    batches the uninterrupted run would have, and no sampler state needs saving. Under torchrun each process
    asks for micro-steps of its own (train.py), so no two processes draw the same batch."""

    def __init__(self, token_files, weights, block_size, seed):
        for name, tokens in token_files.items():
            if len(tokens) < block_size + 2:
                fail(f"{name}: {len(tokens)} tokens, fewer than block_size + 2 = {block_size + 2}; "
                      f"lower block_size or give it more text")
        self.names = list(token_files)
        self.tokens = [token_files[n] for n in self.names]
        self.weights = torch.tensor([float(w) for w in weights])
        self.block_size, self.seed = block_size, seed

    def get(self, step, micro_step, batch_size, device):
        """Inputs x and targets y [batch_size, block_size] on the device: y is x shifted by one token."""
        seed = np.random.SeedSequence([self.seed, step, micro_step]).generate_state(1)[0]
        g = torch.Generator().manual_seed(int(seed))
        which = torch.multinomial(self.weights, batch_size, replacement=True, generator=g)
        rows = []
        for w in which.tolist():
            tokens = self.tokens[w]
            start = int(torch.randint(len(tokens) - self.block_size - 1, (1,), generator=g))
            rows.append(torch.from_numpy(tokens[start:start + self.block_size + 1].astype(np.int64)))
        batch = to_device(torch.stack(rows), device)  # [B, T + 1]: moved to the device once, then sliced there
        return batch[:, :-1], batch[:, 1:]


def to_device(batch, device):
    """A batch made on the CPU, on the device: on CUDA copied from pinned memory without blocking, so that the
    copy overlaps the GPU's work instead of waiting for it (torch keeps the pinned buffer until it is done)."""
    if device.startswith("cuda"):
        return batch.pin_memory().to(device, non_blocking=True)
    return batch.to(device)


@torch.no_grad()
def bits_per_byte(model, tokens, token_bytes, block_size, batch_size, device, autocast=nullcontext(), max_tokens=None):
    """Bits per byte of a token file: nats summed over the target tokens / ln 2 / their UTF-8 bytes.
    Special tokens (0 bytes) count in neither sum. Non-overlapping windows, so every target counts once.
    Returns (bits per byte, nats per token) - perplexity = exp(nats per token), within one vocabulary."""
    tokens = tokens[:max_tokens] if max_tokens else tokens
    n_windows = (len(tokens) - 1) // block_size
    if n_windows == 0:
        fail(f"{len(tokens)} tokens are too few for one window of block_size={block_size}")
    token_bytes = torch.as_tensor(token_bytes, device=device)
    # nats, bytes, tokens: summed on the device and read once at the end (float64 where the device has it)
    totals = torch.zeros(3, dtype=torch.float32 if device == "mps" else torch.float64, device=device)
    model.eval()
    for first in range(0, n_windows, batch_size):
        rows = range(first, min(first + batch_size, n_windows))
        batch = torch.from_numpy(np.stack([tokens[r * block_size:(r + 1) * block_size + 1].astype(np.int64)
                                           for r in rows])).to(device)
        x, y = batch[:, :-1], batch[:, 1:]
        y_bytes = token_bytes[y]
        y = y.masked_fill(y_bytes == 0, -1)
        with autocast:
            nll = model.token_nll(x, y)
        totals += torch.stack([nll.sum(), y_bytes.sum(), (y != -1).sum()]).to(totals.dtype)
    nats, n_bytes, n_tokens = totals.tolist()  # the one wait for the device
    return nats / math.log(2) / n_bytes, nats / n_tokens

