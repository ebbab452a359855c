"""
What the stage scripts (train.py, adapt.py, finetune.py, evaluate.py) share: their command line and
config files, devices, checkpoints, the log, token files and bits per byte. Nothing here trains anything:
each stage's loop stays in its own file, where a reader can follow it top to bottom.
"""

import dataclasses
import hashlib
import inspect
import json
import math
import os
import random
import re
import runpy
import sys
import typing
from contextlib import nullcontext

import numpy as np
import torch

from model import GPT, GPTConfig
from tokenizer import Tokenizer

STAGES = ("train", "adapt", "finetune", "evaluate")
# keys a config file may set at its top level: they apply to every stage; everything else goes into a
# section named after its stage, e.g. `adapt = dict(max_iters=500)`
COMMON_KEYS = ("device", "dtype", "compile", "seed")
# keys that change how a run executes but not what it computes: a resumed run may differ in them
RUNTIME_KEYS = {"device", "compile", "resume", "overwrite", "log_every", "eval_every", "save_every", "progress"}


# ---- command line and config files ------------------------------------------------------------------

def parse_config(config_class, stage, argv=None):
    """`python <stage>.py [config/file.py] [--key=value | --key value ...]` -> a config_class instance.

    Defaults come from the dataclass, then the config file, then the command line. `--help` lists every
    key with its default and the comment written beside it in the dataclass. Unknown keys and values of
    the wrong type stop the program with a message that names them."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if "-h" in argv or "--help" in argv:
        print(usage(config_class, stage))
        sys.exit(0)
    fields = {f.name: f for f in dataclasses.fields(config_class)}
    types = typing.get_type_hints(config_class)
    values = {}
    if argv and not argv[0].startswith("--"):
        values.update(_read_config_file(argv.pop(0), stage, fields))
    i = 0
    while i < len(argv):
        arg = argv[i]
        if not arg.startswith("--"):
            _fail(f"unexpected argument '{arg}' (options look like --key=value; see --help)")
        key, has_value, raw = arg[2:].partition("=")
        if key not in fields:
            _fail(f"unknown option --{key} for {stage}.py (see --help)")
        i += 1
        if not has_value:  # --key value [value ...] (several for a list), or a bare --flag meaning true
            raws = []
            while i < len(argv) and not argv[i].startswith("--"):
                raws.append(argv[i])
                i += 1
                if typing.get_origin(types[key]) is not list:
                    break
            if not raws and types[key] is not bool:
                _fail(f"option --{key} needs a value")
            raw = raws if typing.get_origin(types[key]) is list else (raws[0] if raws else "true")
        values[key] = _convert(key, raw, types[key])
    return config_class(**values)


def usage(config_class, stage):
    comments = _field_comments(config_class)
    lines = [f"usage: python {stage}.py [config/file.py] [--key=value ...]", "", (config_class.__doc__ or "").strip(), "", "options:"]
    for f in dataclasses.fields(config_class):
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        lines.append(f"  --{f.name}={default!r}".ljust(40) + f"  {comments.get(f.name, '')}")
    return "\n".join(lines)


def _read_config_file(path, stage, fields):
    if not os.path.isfile(path):
        _fail(f"config file {path} not found")
    try:
        namespace = runpy.run_path(path)
    except Exception as e:  # a syntax error in a config file is the user's, say where it is
        _fail(f"could not read config file {path}: {type(e).__name__}: {e}")
    values = {}
    for key, value in namespace.items():
        if key.startswith("_") or inspect.ismodule(value) or inspect.isfunction(value) or inspect.isclass(value):
            continue
        if key in STAGES:
            if not isinstance(value, dict):
                _fail(f"{path}: '{key}' must be a dict of {key}.py options")
            continue
        if key not in COMMON_KEYS:
            _fail(f"{path}: unknown top-level key '{key}' (top level takes {', '.join(COMMON_KEYS)}; "
                  f"put stage options in a section such as train = dict({key}=...))")
        if key in fields:
            values[key] = value
    for key, value in namespace.get(stage, {}).items():
        if key not in fields:
            _fail(f"{path}: unknown key '{key}' in {stage} = dict(...)")
        values[key] = value
    return {key: _check_type(path, key, value, fields[key].type) for key, value in values.items()}


def _check_type(path, key, value, expected):
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    base = typing.get_origin(expected) or expected
    if not isinstance(value, base) or (base is int and isinstance(value, bool)):
        _fail(f"{path}: key '{key}' should be {getattr(expected, '__name__', expected)}, got {value!r}")
    return value


def _convert(key, raw, expected):
    try:
        if expected is bool:
            if raw.lower() in ("1", "true", "yes", "on"):
                return True
            if raw.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if typing.get_origin(expected) is list:
            items = raw if isinstance(raw, list) else [x for x in raw.split(",") if x]
            return [typing.get_args(expected)[0](x) for x in items]
        return expected(raw)
    except ValueError:
        _fail(f"option --{key}: '{raw}' is not a valid {getattr(expected, '__name__', expected)}")


def _field_comments(config_class):
    """The `# comment` written after each field of a config dataclass: its help text."""
    try:
        source = inspect.getsource(config_class)
    except OSError:
        return {}
    return dict(re.findall(r"^\s+(\w+)\s*:[^#\n]*#\s*(.*)$", source, flags=re.M))


def _fail(message):
    raise SystemExit(f"error: {message}")


# ---- devices, precision, seeds ----------------------------------------------------------------------

def resolve_device(name):
    if name == "auto":
        if torch.cuda.is_available():
            return "cuda"
        return "mps" if torch.backends.mps.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        _fail(f"device={name} was asked for but CUDA is not available (use --device=cpu or auto)")
    if name not in ("cpu", "mps") and not name.startswith("cuda"):
        _fail(f"unknown device '{name}' (auto, cpu, cuda, cuda:N or mps)")
    return name


def autocast_for(device, dtype):
    """The autocast context for a dtype name: bf16 on GPUs by default, plain fp32 on the CPU."""
    if dtype == "auto":
        dtype = "bfloat16" if device.startswith("cuda") and torch.cuda.is_bf16_supported() else "float32"
    if dtype not in ("float32", "bfloat16", "float16"):
        _fail(f"unknown dtype '{dtype}' (auto, float32, bfloat16 or float16)")
    if dtype == "float32":
        return nullcontext()
    return torch.autocast(device_type=device.split(":")[0], dtype=getattr(torch, dtype))


def compile_wanted(value, device):
    """torch.compile for a `compile` key: auto = on for CUDA only (on the CPU it costs more than it saves)."""
    if value not in ("auto", "true", "false"):
        _fail(f"compile must be auto, true or false, not '{value}'")
    return value == "true" or (value == "auto" and device.startswith("cuda"))


def seed_everything(seed):
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state():
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state):
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def lr_at(step, max_iters, lr, warmup_frac, min_lr_frac=0.1):
    """Linear warm-up over the first warmup_frac of the run, then cosine decay to min_lr_frac * lr."""
    warmup = int(warmup_frac * max_iters)
    if step < warmup:
        return lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, max_iters - warmup)
    return lr * (min_lr_frac + (1 - min_lr_frac) * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0))))


# ---- out_dir: config, checkpoint, log ---------------------------------------------------------------

def prepare_out_dir(out_dir, config, stage):
    """Make out_dir for a new run or check that a resumed one matches. Returns the checkpoint to resume
    from, or None. An existing run is never overwritten by accident."""
    ckpt_path = os.path.join(out_dir, "ckpt.pt")
    config_path = os.path.join(out_dir, "config.json")
    exists = os.path.exists(ckpt_path)  # a run that stopped before its first checkpoint has nothing to keep
    if exists and config.overwrite:
        for name in ("ckpt.pt", "config.json", "log.jsonl", "tokenizer.tiktoken"):
            if os.path.exists(os.path.join(out_dir, name)):
                os.remove(os.path.join(out_dir, name))
        exists = False
    if exists and not config.resume:
        _fail(f"{out_dir} already holds a run; pass --resume to continue it or --overwrite to start again")
    os.makedirs(out_dir, exist_ok=True)
    resolved = dataclasses.asdict(config)
    if not exists:
        write_json(config_path, {"stage": stage, **resolved})
        return None
    ckpt = load_checkpoint(out_dir)
    if ckpt.get("stage") != stage:
        _fail(f"{ckpt_path} was written by {ckpt.get('stage')}.py, not {stage}.py")
    changed = [k for k in resolved if k not in RUNTIME_KEYS and ckpt["config"].get(k) != resolved[k]]
    if changed:
        diffs = ", ".join(f"{k}: {ckpt['config'].get(k)!r} -> {resolved[k]!r}" for k in changed)
        _fail(f"cannot resume {out_dir} with a different config ({diffs}); use --overwrite to start again")
    return ckpt


def save_checkpoint(out_dir, ckpt):
    """Write ckpt.pt atomically: a crash mid-write leaves the previous checkpoint intact."""
    path = os.path.join(out_dir, "ckpt.pt")
    tmp = path + ".tmp"
    torch.save(ckpt, tmp)
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)


def load_checkpoint(out_dir, map_location="cpu"):
    path = os.path.join(out_dir, "ckpt.pt")
    if not os.path.isfile(path):
        _fail(f"no checkpoint at {path}")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as e:
        _fail(f"{path} is truncated or corrupt ({type(e).__name__}: {e})")
    missing = [k for k in ("model", "model_config", "stage", "step", "config") if k not in ckpt]
    if not isinstance(ckpt, dict) or missing:
        _fail(f"{path} is not a checkpoint of this project (missing {missing})")
    return ckpt


def load_model(out_dir, device="cpu"):
    """The model and tokenizer a stage's out_dir holds, checked against each other."""
    ckpt = load_checkpoint(out_dir)
    tok = load_tokenizer(os.path.join(out_dir, "tokenizer.tiktoken"))
    config = GPTConfig(**ckpt["model_config"])
    if tok.n_vocab != config.vocab_size:
        _fail(f"{out_dir}: the tokenizer has {tok.n_vocab} tokens but the model expects {config.vocab_size}")
    model = GPT(config)
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError as e:
        _fail(f"{out_dir}/ckpt.pt does not match its own model config: {e}")
    return model.to(device), tok, ckpt


def load_tokenizer(path):
    if not os.path.isfile(path):
        _fail(f"no tokenizer at {path}")
    try:
        return Tokenizer.load(path)
    except ValueError as e:
        _fail(str(e))


def write_json(path, obj):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=2, default=str)
    os.replace(tmp, path)


class Log:
    """log.jsonl: one JSON object per line. On resume, lines at or past the resumed step are dropped (the
    resumed run writes them again), so the log reads as if the run had never stopped."""

    def __init__(self, out_dir, resume_step=None):
        self.path = os.path.join(out_dir, "log.jsonl")
        if resume_step is None:
            open(self.path, "w").close()
        elif os.path.exists(self.path):
            with open(self.path) as f:
                kept = [line for line in f if line.strip() and json.loads(line).get("step", 0) < resume_step]
            with open(self.path, "w") as f:
                f.writelines(kept)

    def write(self, **record):
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")


def read_log(out_dir):
    with open(os.path.join(out_dir, "log.jsonl")) as f:
        return [json.loads(line) for line in f if line.strip()]


# ---- data: text manifests, token files, bits per byte -----------------------------------------------

def read_manifest(data_dir):
    path = os.path.join(data_dir, "manifest.json")
    if not os.path.isfile(path):
        _fail(f"no manifest at {path} (generate the lab with: python data/lab/prepare.py --out {data_dir})")
    with open(path) as f:
        return json.load(f)


def language_files(data_dir, langs, split):
    """{lang: path of its split's text file} for the requested languages, checked against the manifest."""
    manifest = read_manifest(data_dir)
    by_code = {entry["code"]: entry for entry in manifest["languages"]}
    paths = {}
    for lang in langs:
        if lang not in by_code:
            _fail(f"language '{lang}' is not in {data_dir}/manifest.json (it has {', '.join(by_code)})")
        paths[lang] = os.path.join(data_dir, by_code[lang][split])
    return paths


def group_languages(data_dir, group):
    groups = read_manifest(data_dir)["groups"]
    if group not in groups:
        _fail(f"no language group '{group}' in {data_dir}/manifest.json (it has {', '.join(groups)})")
    return list(groups[group])


def read_documents(path):
    """The documents of a text file: separated by one blank line (DESIGN/INTERFACES: the text layout)."""
    with open(path, encoding="utf-8") as f:
        return [doc for doc in f.read().split("\n\n") if doc.strip()]


def token_file(tok, txt_path, max_tokens=None):
    """The uint32 token file of a text file, made once per tokenizer and cached beside the text
    (`<txt>.<tokenizer hash>.bin`): every document is preceded by <|endoftext|>."""
    if not os.path.isfile(txt_path):
        _fail(f"text file {txt_path} not found")
    bin_path = f"{txt_path}.{tokenizer_fingerprint(tok)}.bin"
    if not os.path.exists(bin_path):
        docs = read_documents(txt_path)
        if not docs:
            _fail(f"text file {txt_path} is empty")
        ids = []
        for doc_ids in tok.encode_batch(docs):
            ids.append(tok.eot_id)
            ids.extend(doc_ids)
        tmp = f"{bin_path}.{os.getpid()}.tmp"  # parallel runs (run.sh) may cache the same file at once
        np.asarray(ids, dtype=np.uint32).tofile(tmp)
        os.replace(tmp, bin_path)
    tokens = np.memmap(bin_path, dtype=np.uint32, mode="r")
    return tokens[:max_tokens] if max_tokens else tokens


class Batches:
    """Random windows of block_size + 1 tokens from several token files, mixed with weights.

    Batch `step` is a pure function of (seed, step, rank): a resumed run sees exactly the batches the
    uninterrupted run would have, and no sampler state needs saving."""

    def __init__(self, token_files, weights, block_size, seed, rank=0):
        for name, tokens in token_files.items():
            if len(tokens) < block_size + 2:
                _fail(f"{name}: {len(tokens)} tokens, fewer than block_size + 2 = {block_size + 2}; "
                      f"lower block_size or give it more text")
        self.names = list(token_files)
        self.tokens = [token_files[n] for n in self.names]
        self.weights = torch.tensor([float(w) for w in weights])
        self.block_size, self.seed, self.rank = block_size, seed, rank

    def get(self, step, micro_step, batch_size, device):
        seed = np.random.SeedSequence([self.seed, step, micro_step, self.rank]).generate_state(1)[0]
        g = torch.Generator().manual_seed(int(seed))
        which = torch.multinomial(self.weights, batch_size, replacement=True, generator=g)
        rows = []
        for w in which.tolist():
            tokens = self.tokens[w]
            start = int(torch.randint(len(tokens) - self.block_size - 1, (1,), generator=g))
            rows.append(torch.from_numpy(tokens[start:start + self.block_size + 1].astype(np.int64)))
        batch = torch.stack(rows)
        x, y = batch[:, :-1], batch[:, 1:]
        if device.startswith("cuda"):
            return x.pin_memory().to(device, non_blocking=True), y.pin_memory().to(device, non_blocking=True)
        return x.to(device), y.to(device)


@torch.no_grad()
def bits_per_byte(model, tokens, token_bytes, block_size, batch_size, device, autocast=nullcontext(), max_tokens=None):
    """Bits per byte of a token file: nats summed over the target tokens / ln 2 / their UTF-8 bytes.
    Special tokens (0 bytes) count in neither sum. Non-overlapping windows, so every target counts once.
    Returns (bits per byte, nats per token) - perplexity = exp(nats per token), within one vocabulary."""
    tokens = tokens[:max_tokens] if max_tokens else tokens
    n_windows = (len(tokens) - 1) // block_size
    if n_windows == 0:
        _fail(f"{len(tokens)} tokens are too few for one window of block_size={block_size}")
    token_bytes = torch.as_tensor(token_bytes, device=device)
    nats = n_bytes = n_tokens = 0.0
    model.eval()
    for first in range(0, n_windows, batch_size):
        rows = range(first, min(first + batch_size, n_windows))
        batch = torch.from_numpy(np.stack([tokens[r * block_size:(r + 1) * block_size + 1].astype(np.int64) for r in rows])).to(device)
        x, y = batch[:, :-1], batch[:, 1:]
        y_bytes = token_bytes[y]
        y = y.masked_fill(y_bytes == 0, -1)
        with autocast:
            nll = model.token_nll(x, y)
        nats += nll.sum().item()
        n_bytes += y_bytes.sum().item()
        n_tokens += (y != -1).sum().item()
    return nats / math.log(2) / n_bytes, nats / n_tokens


def tokenizer_fingerprint(tok):
    """A short hash of a vocabulary: token files made with another vocabulary are never mixed up."""
    h = hashlib.sha256()
    for i in range(tok.n_vocab):
        b = tok.token_bytes(i)
        h.update(len(b).to_bytes(4, "little") + b)
    return h.hexdigest()[:12]
