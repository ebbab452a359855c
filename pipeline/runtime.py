"""
The plumbing every stage shares and a reader of the method can skip: the command line and config files,
devices, precision and torch.compile, seeds and RNG state, and out_dir (config.json, ckpt.pt, log.jsonl).
Errors a user can fix go through `fail`, which stops the program with one line instead of a traceback.
The method's own shared pieces (learning-rate schedule, token files, batches, bits per byte) are in common.py,
which data preparation may import: it never reaches the model.
"""

import dataclasses
import datetime
import inspect
import json
import os
import random
import re
import runpy
import shutil
import sys
import typing
from contextlib import nullcontext

import numpy as np
import torch

from model import GPT, GPTConfig
from pipeline import documents
from pipeline.documents import atomic_open, fail  # noqa: F401 (the stages call them as runtime.*)
from pipeline.vocabulary import Tokenizer

STAGES = ("train", "adapt", "finetune", "splice", "evaluate")
# the stages whose models have learned the chat format: prompted in ChatML by default
CHAT_STAGES = ("finetune", "splice")
# keys a config file may set at its top level: they apply to every stage; everything else goes into a
# section named after its stage, e.g. `adapt = dict(max_iters=500)`
COMMON_KEYS = ("device", "dtype", "compile", "deterministic", "seed")
# keys that change how a run executes but not what it computes: a resumed run may differ in them
RUNTIME_KEYS = {"device", "compile", "deterministic", "resume", "overwrite", "log_every", "eval_every", "progress"}
# how a bool may be spelled on the command line or in `compile`, in any case
TRUE_WORDS, FALSE_WORDS = ("1", "true", "yes", "on"), ("0", "false", "no", "off")
# torchrun: how long a process waits for the others (rank 0 may be tokenizing a corpus or writing a checkpoint
# of tens of GB while the rest wait in a barrier; torch's default of 10 minutes would kill the run)
DIST_TIMEOUT = datetime.timedelta(hours=2)


# ---- command line and config files ------------------------------------------------------------------

def parse_config(config_class, stage, argv=None):
    """`python <stage>.py [config/file.py ...] [--key=value | --key value ...]` -> a config_class instance.

    Defaults come from the dataclass, then the config files in order (a later file overrides an earlier one: e.g.
    config/gpu_small.py, then a file that shrinks it for a quick test), then the command line. `--help` lists every key
    with its default and the comment written beside it in the dataclass. Unknown keys and values of the wrong type stop
    the program with a message that names them."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if "-h" in argv or "--help" in argv:
        print(usage(config_class, stage))
        sys.exit(0)
    fields = {f.name: f for f in dataclasses.fields(config_class)}
    types = typing.get_type_hints(config_class)
    values = {}
    while argv and not argv[0].startswith("--"):
        values.update(_read_config_file(argv.pop(0), stage, fields))
    i = 0
    while i < len(argv):
        arg = argv[i]
        if not arg.startswith("--"):
            fail(f"unexpected argument '{arg}' (options look like --key=value; see --help)")
        key, has_value, raw = arg[2:].partition("=")
        if key not in fields:
            fail(f"unknown option --{key} for {stage}.py (see --help)")
        i += 1
        if not has_value:  # --key value [value ...] (several for a list), or a bare --flag meaning true
            raws = []
            while i < len(argv) and not argv[i].startswith("--"):
                raws.append(argv[i])
                i += 1
                if typing.get_origin(types[key]) is not list:
                    break
            if not raws and types[key] is not bool:
                fail(f"option --{key} needs a value")
            raw = raws if typing.get_origin(types[key]) is list else (raws[0] if raws else "true")
        values[key] = raw if key == "compile" else _convert(key, raw, types[key])
    if "compile" in values:
        values["compile"] = _compile_value(values["compile"])
    return config_class(**values)


def usage(config_class, stage):
    """--help: every key with its default and its comment; the stage's own keys first, then those it inherits
    (the training stages' shared options, pipeline/loop.py), each under the name of the class declaring it."""
    comments = _field_comments(config_class)
    lines = [f"usage: python {stage}.py [config/file.py ...] [--key=value ...]", "",
             inspect.cleandoc(config_class.__doc__ or ""), "", "options:"]
    fields = {f.name: f for f in dataclasses.fields(config_class)}
    listed = []
    for cls in config_class.__mro__:  # the stage's class first, then the classes it inherits from
        own = [name for name in vars(cls).get("__annotations__", {}) if name in fields and name not in listed]
        if own and listed:
            lines.append(f"options shared with the other stages ({cls.__module__}.{cls.__name__}):")
        for name in own:
            f = fields[name]
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
            lines.append(f"  --{name}={default!r}".ljust(40) + f"  {comments.get(name, '')}")
        listed += own
    return "\n".join(lines)


def _read_config_file(path, stage, fields):
    if not os.path.isfile(path):
        fail(f"config file {path} not found")
    try:
        namespace = runpy.run_path(path)
    except Exception as e:  # a syntax error in a config file is the user's, say where it is
        fail(f"could not read config file {path}: {type(e).__name__}: {e}")
    values = {}
    for key, value in namespace.items():
        if key.startswith("_") or inspect.ismodule(value) or inspect.isfunction(value) or inspect.isclass(value):
            continue
        if key in STAGES:
            if not isinstance(value, dict):
                fail(f"{path}: '{key}' must be a dict of {key}.py options")
            continue
        if key not in COMMON_KEYS:
            fail(f"{path}: unknown top-level key '{key}' (top level takes {', '.join(COMMON_KEYS)}; "
                  f"put stage options in a section such as train = dict({key}=...))")
        if key in fields:
            values[key] = value
    for key, value in namespace.get(stage, {}).items():
        if key not in fields:
            fail(f"{path}: unknown key '{key}' in {stage} = dict(...)")
        values[key] = value
    return {key: _check_type(path, key, value, fields[key].type) for key, value in values.items()}


def _check_type(path, key, value, expected):
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if key == "compile":  # checked with the command line's value, in parse_config
        return value
    base = typing.get_origin(expected) or expected
    if not isinstance(value, base) or (base is int and isinstance(value, bool)):
        fail(f"{path}: key '{key}' should be {getattr(expected, '__name__', expected)}, got {value!r}")
    return value


def _convert(key, raw, expected):
    try:
        if expected is bool:
            if raw.lower() in TRUE_WORDS:
                return True
            if raw.lower() in FALSE_WORDS:
                return False
            raise ValueError
        if typing.get_origin(expected) is list:
            items = raw if isinstance(raw, list) else [x for x in raw.split(",") if x]
            return [typing.get_args(expected)[0](x) for x in items]
        return expected(raw)
    except ValueError:
        fail(f"option --{key}: '{raw}' is not a valid {getattr(expected, '__name__', expected)}")


def require_positive(config, *keys):
    """Stop with a message naming the option if any of these sizes is not > 0 (a zero batch or block would
    otherwise end in a traceback deep inside torch or numpy)."""
    for key in keys:
        value = getattr(config, key)
        if not value > 0:
            fail(f"--{key} must be > 0, got {value}")


def _field_comments(config_class):
    """The `# comment` written after each field of a config dataclass, or of the class it inherits the field from
    (a field a stage declares again, e.g. with its own default, takes the stage's comment): its help text."""
    comments = {}
    for cls in reversed(config_class.__mro__):
        if dataclasses.is_dataclass(cls):
            try:
                source = inspect.getsource(cls)
            except OSError:
                continue
            comments.update(re.findall(r"^\s+(\w+)\s*:[^#\n]*#\s*(.*)$", source, flags=re.M))
    return comments


# ---- devices, precision, seeds ----------------------------------------------------------------------

# the README's install line for a GPU whose driver is older than the default wheel's CUDA ("Two commands")
OLDER_DRIVER_INSTALL = "pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cu126"


def resolve_device(name):
    if name == "auto":
        if torch.cuda.is_available():
            return "cuda"
        warn_if_gpu_unusable()
        return "mps" if torch.backends.mps.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        fail(f"device={name} was asked for but CUDA is not available (use --device=cpu or auto)"
             + (f"; {unusable_gpu_reason()}" if nvidia_gpu_present() else ""))
    if name not in ("cpu", "mps") and not name.startswith("cuda"):
        fail(f"unknown device '{name}' (auto, cpu, cuda, cuda:N or mps)")
    return name


def nvidia_gpu_present():
    """An NVIDIA driver on this machine (its tool or its kernel module), whether or not this torch can use it."""
    return shutil.which("nvidia-smi") is not None or os.path.exists("/proc/driver/nvidia")


def unusable_gpu_reason():
    if torch.version.cuda is None:
        return f"this torch ({torch.__version__}) is a CPU-only build: install the default (CUDA) build of torch"
    return (f"this torch ({torch.__version__}) is built for CUDA {torch.version.cuda}, which this machine's NVIDIA "
            f"driver may be too old for (nvidia-smi shows the newest CUDA it supports): {OLDER_DRIVER_INSTALL} "
            "(the README's line for older drivers; pick the cuXYZ your driver supports)")


def warn_if_gpu_unusable():
    """device=auto found no usable GPU: if there is an NVIDIA GPU all the same, say so loudly, once, instead of
    training for days on the CPU with only `| cpu |` in a log line to show for it."""
    if nvidia_gpu_present():
        print(f"warning: an NVIDIA GPU is present but torch cannot use it, so this run uses the CPU; "
              f"{unusable_gpu_reason()}", file=sys.stderr, flush=True)


def autocast_for(device, dtype):
    """The autocast context for a dtype name: bf16 on GPUs by default, plain fp32 on the CPU."""
    if dtype == "auto":
        dtype = "bfloat16" if device.startswith("cuda") and torch.cuda.is_bf16_supported() else "float32"
    if dtype not in ("float32", "bfloat16", "float16"):
        fail(f"unknown dtype '{dtype}' (auto, float32, bfloat16 or float16)")
    if dtype == "float32":
        return nullcontext()
    return torch.autocast(device_type=device.split(":")[0], dtype=getattr(torch, dtype))


def _compile_value(value):
    """compile as True, False or "auto", from any bool spelling (nanoGPT users type --compile=False, and a
    config file may say compile = False): the one place its value is read."""
    word = str(value).lower()
    if word == "auto":
        return "auto"
    if word in TRUE_WORDS or word in FALSE_WORDS:
        return word in TRUE_WORDS
    fail(f"compile must be auto, true or false, not '{value}' (any case; also yes/no, on/off, 1/0)")


def compiled(model, compile, device):
    """torch.compile(model) if `compile` (True, False or "auto") asks for it, else the model itself.
    auto = on for CUDA only: on the CPU compiling costs more than it saves."""
    if compile is True or (compile == "auto" and device.startswith("cuda")):
        return torch.compile(model)
    return model


def training_autocast(device, dtype):
    """autocast_for a training loop. float16 is refused: its small gradients underflow to zero unless the
    loss is scaled, which the loops do not do; bfloat16 has float32's range and needs no scaling."""
    if dtype == "float16":
        fail("--dtype=float16 is for evaluation only: training in float16 needs loss scaling, which the "
             "stages do not do; use --dtype=bfloat16 (the CUDA default) or float32")
    return autocast_for(device, dtype)


def set_deterministic(on):
    """--deterministic: the same run on the same GPU gives the same bits, so a resumed run continues an
    uninterrupted one exactly. On the CPU the stages are deterministic anyway. On CUDA it costs speed: the
    embedding backward sorts instead of adding atomically (also under torch.compile), attention may fall
    back from its fastest kernels, compiled kernels are not autotuned, and an op with no deterministic kernel
    stops the run with torch's error naming it."""
    if on:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # read when cuBLAS starts: set before any matmul
    # set either way (a stage run in-process, as in the tests, must not inherit it), but only on a change:
    # the call imports torch.compile's machinery, a second per process
    if torch.are_deterministic_algorithms_enabled() != on:
        torch.use_deterministic_algorithms(on)
    torch.backends.cudnn.deterministic = on
    if on or "torch._inductor.config" in sys.modules:  # imported only when needed: the import takes seconds
        from torch._inductor import config as inductor_config
        # torch.compile: no kernel chosen by timing, which can vary per run. The switch exists from torch 2.10;
        # before it, compiled kernels may still be autotuned, so only an uncompiled run is sure to repeat.
        if hasattr(inductor_config, "deterministic"):
            inductor_config.deterministic = on
        elif on:
            print(f"warning: torch {torch.__version__} has no deterministic mode for torch.compile (torch >= 2.10 "
                  "has): a compiled run may still pick kernels by timing; add --compile=false for bit-identical "
                  "runs", file=sys.stderr, flush=True)


def init_distributed(device_name):
    """Under torchrun: one process per GPU (gloo on CPUs). Returns (rank, world_size, device)."""
    import torch.distributed as dist

    rank, world_size, local_rank = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ["LOCAL_RANK"])
    device = f"cuda:{local_rank}" if torch.cuda.is_available() and device_name != "cpu" else "cpu"
    if device == "cpu" and device_name != "cpu" and local_rank == 0:
        warn_if_gpu_unusable()
    if device.startswith("cuda"):
        torch.cuda.set_device(device)
    dist.init_process_group(backend="nccl" if device.startswith("cuda") else "gloo", timeout=DIST_TIMEOUT)
    return rank, world_size, device


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
        # one state per GPU the run was saved with; a run resumed on fewer GPUs restores the ones it has
        for index, cuda_state in enumerate(state["cuda"][:torch.cuda.device_count()]):
            torch.cuda.set_rng_state(cuda_state, index)


# ---- out_dir: config, checkpoint, log ---------------------------------------------------------------

def prepare_out_dir(out_dir, config, stage):
    """Make out_dir for a new run or check that a resumed one matches. Returns the checkpoint to resume
    from, or None. An existing run is never overwritten by accident."""
    ckpt_path = os.path.join(out_dir, "ckpt.pt")
    config_path = os.path.join(out_dir, "config.json")
    documents.remove_stale_temporaries(out_dir)  # a killed save's is as large as the checkpoint
    exists = os.path.exists(ckpt_path)  # a run that stopped before its first checkpoint has nothing to keep
    if exists and config.overwrite:
        for name in ("ckpt.pt", "config.json", "log.jsonl", "tokenizer.tiktoken"):
            if os.path.exists(os.path.join(out_dir, name)):
                os.remove(os.path.join(out_dir, name))
        exists = False
    if exists and not config.resume:
        fail(f"{out_dir} already holds a run; pass --resume to continue it or --overwrite to start again")
    if config.resume and not exists and not config.overwrite:
        print(f"note: --resume: no checkpoint in {out_dir}, starting a new run")
    os.makedirs(out_dir, exist_ok=True)
    resolved = dataclasses.asdict(config)
    if not exists:
        write_json(config_path, {"stage": stage, **resolved})
        return None
    ckpt = load_checkpoint(out_dir)
    if ckpt.get("stage") != stage:
        fail(f"{ckpt_path} was written by {ckpt.get('stage')}.py, not {stage}.py")
    changed = [k for k in resolved if k not in RUNTIME_KEYS and ckpt["config"].get(k) != resolved[k]]
    if changed:
        diffs = ", ".join(f"{k}: {ckpt['config'].get(k)!r} -> {resolved[k]!r}" for k in changed)
        fail(f"cannot resume {out_dir} with a different config ({diffs}); use --overwrite to start again")
    return ckpt


def save_checkpoint(out_dir, ckpt):
    """Write ckpt.pt atomically (a crash mid-write leaves the previous checkpoint intact), in torch's zip
    format, which load_checkpoint memory-maps."""
    with atomic_open(os.path.join(out_dir, "ckpt.pt"), "wb") as f:
        torch.save(ckpt, f)


def load_checkpoint(out_dir, map_location="cpu"):
    """ckpt.pt, memory-mapped: a tensor is read from disk when it is used, so reading one entry of a
    multi-gigabyte checkpoint is cheap, and N processes resuming one run share the file's pages."""
    path = os.path.join(out_dir, "ckpt.pt")
    if not os.path.isfile(path):
        fail(f"no checkpoint at {path}")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=False, mmap=True)
    except Exception as e:
        fail(f"{path} is truncated or corrupt ({type(e).__name__}: {e})")
    missing = [k for k in ("model", "model_config", "stage", "step", "config")
               if not isinstance(ckpt, dict) or k not in ckpt]
    if missing:
        fail(f"{path} is not a checkpoint of this project (missing {missing})")
    return ckpt


def load_model(out_dir, device="cpu"):
    """The model and tokenizer a stage's out_dir holds, checked against each other."""
    ckpt = load_checkpoint(out_dir)
    tok = Tokenizer.load(os.path.join(out_dir, "tokenizer.tiktoken"))
    config = GPTConfig(**ckpt["model_config"])
    if tok.n_vocab != config.vocab_size:
        fail(f"{out_dir}: the tokenizer has {tok.n_vocab} tokens but the model expects {config.vocab_size}")
    model = GPT(config)
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError as e:
        fail(f"{out_dir}/ckpt.pt does not match its own model config: {e}")
    return model.to(device), tok, ckpt


def load_stage(out_dir, device="cpu"):
    """(model, tokenizer, checkpoint) of the out_dir of a finished stage, or a clear error."""
    for needed in ("ckpt.pt", "tokenizer.tiktoken"):
        if not os.path.isfile(os.path.join(out_dir, needed)):
            fail(f"no {needed} in {out_dir} (is it the out_dir of a finished train.py, adapt.py, finetune.py or "
                 "splice.py run?)")
    model, tok, ckpt = load_model(out_dir, device)
    if ckpt["stage"] not in ("train", "adapt", *CHAT_STAGES):
        fail(f"{out_dir}/ckpt.pt was written by {ckpt['stage']}.py, not by a training stage")
    total = ckpt.get("max_iters", ckpt["config"].get("max_iters"))
    if total is not None and ckpt["step"] < total:
        fail(f"{out_dir} is an unfinished {ckpt['stage']} run (step {ckpt['step']} of {total}); "
             f"finish it with {ckpt['stage']}.py --resume")
    model.eval()
    return model, tok, ckpt


def copy_tokenizer(from_dir, to_dir):
    """The vocabulary a model uses travels with it into the next stage's out_dir, byte for byte."""
    with open(os.path.join(from_dir, "tokenizer.tiktoken"), "rb") as src, \
            atomic_open(os.path.join(to_dir, "tokenizer.tiktoken"), "wb") as dst:
        shutil.copyfileobj(src, dst)


def write_json(path, obj):
    with atomic_open(path) as f:
        json.dump(obj, f, indent=2, default=str)


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
            with atomic_open(self.path) as f:  # killed mid-rewrite, the old log stays whole
                f.writelines(kept)

    def write(self, **record):
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")
