# A larger lab: the same built-in languages and tasks, 4x the text, a ~3.9M-parameter model and 4x the
# pretraining tokens. Made for one GPU; it also runs on a CPU, in hours rather than minutes (not yet run:
# docs/results.md).
#   CONFIG=lab_gpu bash run.sh    # each seed generates its lab (4 MB of text per language) and runs everything
# It reads config/lab.py first and changes only what grows with the lab.
import os

exec(open(os.path.join(os.path.dirname(__file__), "lab.py")).read())

train.update(
    data_dir="out/lab_gpu", tokenizer="out/tokenizer/lab_gpu.tiktoken",
    n_layer=6, n_head=6, n_kv_head=3, n_embd=192,  # ~3.9M parameters
    max_iters=2000, batch_size=8, lr=2e-3,  # 4.1M tokens: about 1.2 passes over the 16 MB of pretraining text
    forget_every=200,  # 9 resets and a last episode, as in config/lab.py
    eval_every=500,
)
finetune.update(data_dir="out/lab_gpu")
evaluate.update(data_dir="out/lab_gpu")
