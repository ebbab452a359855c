"""pipeline/loop.py: the options the training stages share are declared once and still explained by each
stage's --help; the plumbing around a step checks for NaN only when it must, names the steps since the last
check, and writes a line every log_every steps."""

import dataclasses
import re
from types import SimpleNamespace

import pytest
import torch

import adapt
import finetune
import train
from pipeline import loop, runtime

STAGES = {"train": train.TrainConfig, "adapt": adapt.AdaptConfig, "finetune": finetune.FinetuneConfig}


def help_options(stage):
    """{key: (default as --help shows it, its text)} from a stage's --help."""
    text = runtime.usage(STAGES[stage], stage)
    return {key: (default, comment) for key, default, comment in re.findall(r"^  --(\w+)=(.*?)  +(\S.*)$", text, re.M)}


@pytest.mark.parametrize("stage", STAGES)
def test_help_lists_every_key_once_with_its_default_and_text_the_shared_ones_last(stage):
    """Fails if runtime.usage or _field_comments stopped reading the class a key is inherited from: the
    shared keys would lose their text or go missing."""
    config_class, text = STAGES[stage], runtime.usage(STAGES[stage], stage)
    options = help_options(stage)
    assert len(re.findall(r"^  --", text, flags=re.M)) == len(options) == len(dataclasses.fields(config_class))
    for f in dataclasses.fields(config_class):
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        assert options[f.name][0] == repr(default), f.name
    shared = {f.name for f in dataclasses.fields(loop.TrainingOptions)}
    heading = text.index("options shared with the other stages")
    assert all((text.index(f"  --{name}=") > heading) == (name in shared) for name in options)


def test_each_stage_keeps_its_own_learning_rate_and_its_text():
    """lr is each stage's own (finetuning's is [AFA]'s 1e-6): three defaults, three texts."""
    lrs = {stage: help_options(stage)["lr"] for stage in STAGES}
    assert len({default for default, _ in lrs.values()}) == len({text for _, text in lrs.values()}) == 3
    assert all(lrs[stage][0] == repr(config_class.lr) for stage, config_class in STAGES.items())


class Lines:
    def __init__(self):
        self.records = []

    def write(self, **record):
        self.records.append(record)


def steps_for(max_iters, log_every, eval_every):
    cfg = SimpleNamespace(log_every=log_every, eval_every=eval_every, progress=False, out_dir="out/x")
    return loop.Steps("train", cfg, 0, max_iters, "cpu", Lines())


def test_a_nan_is_found_at_the_next_log_step_or_before_the_next_save_and_named_by_its_steps():
    """Fails if the check reads `finite` every step (it would stop at step 1, making the GPU wait every step)
    or forgets a step it and-ed in (it would not stop at all)."""
    steps = steps_for(max_iters=10, log_every=5, eval_every=4)  # read at 0 (line), 3 (saves at 4), 5 (line), ...
    one = torch.tensor(1.0)
    for step in steps:
        loss = torch.tensor(float("nan")) if step == 1 else one.clone()
        if step < 3:
            steps.done(step, loss, 10, 1e-3, one)
            continue
        with pytest.raises(SystemExit, match=r"NaN or inf at a step in 1\.\.3; stopped without saving"):
            steps.done(step, loss, 10, 1e-3, one)
        break
    assert [r["step"] for r in steps.log.records] == [0]


def test_lines_every_log_every_steps_the_last_and_when_asked_with_the_tokens_so_far():
    steps = steps_for(max_iters=7, log_every=3, eval_every=0)
    one = torch.tensor(1.0)
    for step in steps:
        steps.done(step, one.clone(), 10, 1e-3, one, log_now=step == 4, **({"forget": True} if step == 4 else {}))
    assert [(r["step"], r["tokens"], r.get("forget")) for r in steps.log.records] == [
        (0, 10, None), (3, 40, None), (4, 50, True), (6, 70, None)]
