"""
What the three training loops (train.py, adapt.py, finetune.py) share, written once: the options every
training stage has (TrainingOptions), and the plumbing around each optimizer step (Steps): the progress bar,
the NaN check, the clock, the log line and the checkpoint. The three loops call it in the same places: an
evaluation at the top of the step, `steps.done` at the bottom. What a step does (the reset, the learning
rate, the micro-batches, which rows learn) is the method: it stays in each stage's loop, read top to bottom.
"""

import time
from dataclasses import asdict, dataclass

import torch
import torch.distributed as dist
from tqdm import tqdm

from pipeline import runtime


@dataclass
class TrainingOptions:
    """The options train.py, adapt.py and finetune.py share. Each stage's config inherits them and declares
    its own (out_dir, data, model, max_iters, batch_size, lr, eval_every, ...), which --help lists first."""
    # optimisation: AdamW, warm-up + cosine
    grad_accum: int = 1  # micro-batches of batch_size per optimizer step, over all processes (batch_size * grad_accum)
    min_lr_frac: float = 0.1  # the cosine ends at min_lr_frac * lr
    warmup_frac: float = 0.1  # linear warm-up over this fraction of the steps
    weight_decay: float = 0.0  # AdamW weight decay on the learned matrices, never on vectors ([AFA]: 0)
    beta1: float = 0.9  # AdamW beta1
    beta2: float = 0.95  # AdamW beta2
    grad_clip: float = 1.0  # clip the gradient norm of the learned parameters to this (0 = off)
    log_every: int = 10  # write a log line every this many steps
    # runtime
    device: str = "auto"  # auto, cpu, cuda, cuda:N or mps
    dtype: str = "auto"  # auto (bfloat16 on CUDA, float32 elsewhere), float32 or bfloat16 (float16 needs loss scaling)
    compile: str = "auto"  # torch.compile: auto = on for CUDA, off elsewhere; true or false to force
    deterministic: bool = False  # CUDA: bit-identical runs and --resume; slower (deterministic kernels, no autotuning)
    seed: int = 1337  # seeds every draw: the init or the new rows, each reset, the batches, the conversations' order
    resume: bool = False  # continue the run in out_dir exactly where its checkpoint left it
    overwrite: bool = False  # delete the run in out_dir and start again
    progress: bool = True  # show a progress bar


def distributed():
    return dist.is_available() and dist.is_initialized()


def already_complete(ckpt, out_dir, say=True):
    """True (and said) if the checkpoint a run would resume from has done all its steps."""
    total = ckpt.get("max_iters", ckpt["config"]["max_iters"])  # train.py's is its config's
    if ckpt["step"] < total:
        return False
    if say:
        print(f"{out_dir} is already complete ({ckpt['step']} steps)")
    return True


class Steps:
    """The steps start_step .. max_iters - 1 of a training loop (`for step in steps`), and what every loop does
    around its step. Under torchrun every process calls it alike and rank 0, the one given a log, writes."""

    def __init__(self, stage, cfg, start_step, max_iters, device, log, tokens=0, flops_per_token=None,
                 peak_flops=None):
        self.stage, self.cfg, self.start_step, self.max_iters, self.log = stage, cfg, start_step, max_iters, log
        self.bar = tqdm(range(start_step, max_iters), initial=start_step, total=max_iters,
                        disable=not (log and cfg.progress), desc=stage, dynamic_ncols=True)
        # and-ed with isfinite(loss) every step; it stays on the device, read only when a line or a save needs it
        self.finite, self.last_checked = torch.ones((), dtype=torch.bool, device=device), start_step - 1
        self.tokens = tokens  # trained tokens so far: the log's `tokens`
        self.flops_per_token, self.peak_flops = flops_per_token, peak_flops  # MFU, where both are known
        self.restart_clock()

    def __iter__(self):
        return iter(self.bar)

    def restart_clock(self):
        self.t0, self.tokens_timed = time.time(), 0

    def evaluated(self, step, **record):
        """After an evaluation of the model at `step`: its log line; the clock restarts (it is not training time)."""
        self.log.write(step=step, **record)
        self.restart_clock()

    def done(self, step, loss, n_tokens, lr, grad_norm, log_now=False, **extra):
        """After the optimizer step. `loss`, this step's mean loss, stays on the device: reading it (.item()) makes
        the CPU wait for the GPU, so it is read only here at log steps (every log_every, the last, log_now).
        A NaN or inf loss stops the run before anything is saved: it is checked at log steps and right before
        the steps that save a checkpoint (eval_every), and the error names the steps since the last check."""
        self.finite &= torch.isfinite(loss)
        log_step = log_now or step % self.cfg.log_every == 0 or step == self.max_iters - 1
        if log_step or (self.cfg.eval_every and (step + 1) % self.cfg.eval_every == 0):
            if distributed():  # every process stops, or none
                finite_all = self.finite.float()
                dist.all_reduce(finite_all, op=dist.ReduceOp.MIN)
                self.finite = finite_all.bool()
            if not self.finite.item():
                runtime.fail(f"the loss became NaN or inf at a step in {self.last_checked + 1}..{step}; stopped "
                             f"without saving, so {self.cfg.out_dir}/ckpt.pt still holds the last good checkpoint "
                             "(lower lr or raise warmup_frac, then --resume)")
            self.last_checked = step
        self.tokens, self.tokens_timed = self.tokens + n_tokens, self.tokens_timed + n_tokens
        if not log_step:
            return
        if distributed():  # the loss over every process
            dist.all_reduce(loss, op=dist.ReduceOp.AVG)
        if self.log is None:
            return
        tok_per_s = self.tokens_timed / (time.time() - self.t0)  # over the steps since the last line or evaluation
        self.restart_clock()
        record = dict(step=step, loss=loss.item(), lr=lr, tokens=self.tokens, tok_per_s=tok_per_s,
                      grad_norm=grad_norm.item())
        if self.flops_per_token and self.peak_flops:
            record["mfu"] = self.flops_per_token * tok_per_s / self.peak_flops
        self.bar.set_postfix(loss=f"{record['loss']:.3f}", tok_s=f"{tok_per_s:,.0f}",
                             **({"mfu": f"{record['mfu']:.1%}"} if "mfu" in record else {}))
        self.log.write(**record, **extra)

    def save(self, step, model_state, model_config, optimizer, **extra):
        """ckpt.pt of the model after `step` updates: what every stage saves, and the stage's `extra`."""
        runtime.save_checkpoint(self.cfg.out_dir, {
            "stage": self.stage, "step": step, "model": model_state, "model_config": asdict(model_config),
            "optimizer": optimizer.state_dict(), "rng": runtime.rng_state(), "config": asdict(self.cfg), **extra})
