"""
[CHEN]'s zero-shot transfer: give a body finetuned on English the embeddings and head an adaptation learned.

    python finetune.py config/lab.py --init_from=out/pretrain --out_dir=out/finetune_body --train_params=body
    python adapt.py config/lab.py --init_from=out/pretrain --out_dir=out/adapt --head=keep
    python splice.py --body_from=out/finetune_body --embeddings_from=out/adapt --out_dir=out/spliced

Both runs start from the same pretrained model and change disjoint parts of it. adapt.py learns the new
languages' embedding rows and a head against the pretrained body, which stays frozen. finetune.py
--train_params=body teaches that body English instructions through the pretrained embeddings and head, which
stay frozen. So the finetuned body can be handed the adapted embeddings and head: if what the body learned in
English works through embeddings it never saw in finetuning, the spliced model answers in the new languages.
That is how [CHEN] measure cross-lingual transfer (docs/method.md, "Two finetuning protocols").

The head comes from the adaptation. [CHEN] keep the head the body was finetuned with: an adaptation with
--head=keep learned only the new tokens' head rows, and its old rows are the pretrained ones, the very rows
the body was finetuned through (--train_params=body leaves the head as it was). A fresh head (--head=fresh,
[AFA]'s) was learned whole against the pretrained body and never met the finetuned one: that splice is
allowed, and is the weaker one.

[AFA] instead finetunes the adapted model itself; with its fresh head, which has only seen the adapting
text, that finetune has to rebuild English in the head the adapting languages use. run.sh runs this
protocol beside [AFA]'s with VARIANTS=splice.

What makes a splice valid is checked, not assumed: the body run finetuned only the body, the adaptation
kept the pretrained embedding rows (--mode=expand), and those rows are bit-identical in both checkpoints,
which shows that both runs started from the same pretrained model. [CHEN]'s --mode=relearn is refused: it
relearns every row, <|im_start|> and <|im_end|> too, which the adapting text never holds, so the rows the
finetuned body reads its prompts through would be random.
"""

import os
import sys
from dataclasses import asdict, dataclass

import torch

from pipeline import runtime


@dataclass
class SpliceConfig:
    """[CHEN]'s transfer: a body finetuned on English (train_params=body) with an adapted model's embeddings and
    head."""
    out_dir: str = "out/spliced"  # ckpt.pt (stage splice: ChatML prompts as finetuned), tokenizer.tiktoken, config.json
    body_from: str = "out/finetune_body"  # out_dir of finetune.py --train_params=body, started from a pretraining run
    embeddings_from: str = "out/adapt"  # out_dir of adapt.py --mode=expand, started from the same pretraining run
    resume: bool = False  # an out_dir that already holds this splice is left as it is
    overwrite: bool = False  # replace an out_dir that already holds a run


def check_splice(body, adapted, cfg):
    """Stop with a message naming the folder at fault unless the two checkpoints can be spliced."""
    if body["stage"] != "finetune" or body["config"].get("train_params") != "body":
        runtime.fail(f"{cfg.body_from} is not a body-only finetune (stage {body['stage']}, train_params="
                     f"{body['config'].get('train_params')}): its embeddings and head moved with the body; "
                     f"finetune with --train_params=body")
    if body.get("init_stage") != "train":
        runtime.fail(f"{cfg.body_from} was finetuned from a {body.get('init_stage')}.py out_dir; splice needs the "
                     f"body finetuned straight from the pretraining run the adaptation started from")
    if adapted["stage"] != "adapt" or adapted["config"].get("mode") != "expand":
        runtime.fail(f"{cfg.embeddings_from} is not an adapt.py --mode=expand run (stage {adapted['stage']}, mode "
                     f"{adapted['config'].get('mode')}): relearn retrains every row, the chat tokens' too "
                     "(see splice.py)")
    dims = {k: v for k, v in body["model_config"].items() if k != "vocab_size"}
    other = {k: v for k, v in adapted["model_config"].items() if k != "vocab_size"}
    if dims != other:
        runtime.fail(f"{cfg.body_from} and {cfg.embeddings_from} are different architectures: {dims} vs {other}")
    n_base = adapted["n_base_vocab"]
    if body["model_config"]["vocab_size"] != n_base or not torch.equal(body["model"]["wte.weight"][:n_base],
                                                                      adapted["model"]["wte.weight"][:n_base]):
        runtime.fail(f"{cfg.body_from} and {cfg.embeddings_from} do not share their pretrained embedding rows: "
                     f"they were not both started from the same pretraining run")


def main(argv=None):
    cfg = runtime.parse_config(SpliceConfig, "splice", argv)
    for path in (cfg.body_from, cfg.embeddings_from):
        if os.path.abspath(path) == os.path.abspath(cfg.out_dir):
            runtime.fail(f"out_dir {cfg.out_dir} is also an input: splice into a new folder")
    if runtime.prepare_out_dir(cfg.out_dir, cfg, "splice") is not None:
        print(f"{cfg.out_dir} already holds this splice")
        return
    body, adapted = runtime.load_checkpoint(cfg.body_from), runtime.load_checkpoint(cfg.embeddings_from)
    check_splice(body, adapted, cfg)

    # the splice itself: the finetuned body, and the adaptation's token rows on both sides of it
    state = dict(body["model"])
    state["wte.weight"] = adapted["model"]["wte.weight"]
    state["lm_head.weight"] = adapted["model"]["lm_head.weight"]

    runtime.copy_tokenizer(cfg.embeddings_from, cfg.out_dir)
    runtime.save_checkpoint(cfg.out_dir, {
        "stage": "splice", "step": body["step"], "model": state, "model_config": adapted["model_config"],
        "config": asdict(cfg), "n_base_vocab": adapted["n_base_vocab"], "langs": adapted["langs"]})
    runtime.load_model(cfg.out_dir)  # the result loads as any stage's model does, or this stops here
    print(f"spliced: the body of {cfg.body_from} with the embeddings and head of {cfg.embeddings_from} "
          f"({adapted['model_config']['vocab_size']} tokens, adapted to {', '.join(adapted['langs'])}) "
          f"-> {cfg.out_dir}")


if __name__ == "__main__":
    main(sys.argv[1:])
