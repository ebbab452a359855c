# [AFA]'s pretraining at ~400M (docs/method.md): Mistral downscaled. Exact shapes are UNKNOWN in the paper; these
# give 393M parameters with the 32,000-token vocabulary and untied embeddings (count: bench/paper_sizes.py).
# Global batch 128 sequences x 4,096 tokens = batch_size x grad_accum (grad_accum counts every GPU's
# micro-batches, so the global batch stays 128 under torchrun). AdamW, LR 1e-4, weight decay 0, cosine
# with 10% linear warm-up, 150,000 steps, forgetting every 10,000 (14 resets). Standard: --forget_every=0.
dtype = "auto"
compile = "auto"

train = dict(
    out_dir="out/paper_400m",
    data_dir="out/wikipedia",
    tokenizer="out/tokenizer/gpu_small.tiktoken",  # the README's 32,000-token real-data vocabulary (step 2)
    n_layer=24, n_embd=1024, n_head=16, n_kv_head=4, block_size=4096,
    batch_size=8, grad_accum=16,
    max_iters=150000, lr=1e-4, warmup_frac=0.1, min_lr_frac=0.1, weight_decay=0.0,
    forget_every=10000,
    eval_every=1000, eval_tokens=1048576, log_every=10,
)

# adaptation, finetuning and evaluation: the paper's settings are the stages' defaults ([AFA]'s recipe with a
# fresh head, --head=fresh; finetuning LR 1e-6, 5 epochs, batch 16; every benchmark example). What it leaves open (the
# adaptation LR, batch and tokens) is docs/method.md's choice; run.sh passes the budgets it sweeps.
adapt = dict(batch_size=8, grad_accum=4, eval_every=500, eval_bytes=262_144)
finetune = dict(data_dir="out/wikipedia",  # instructions: data/instructions/prepare.py
                eval_every=1000, val_conversations=1000,
                batch_size=8, grad_accum=2)  # the paper's 16 conversations a step, in micro-batches of adapt's size
evaluate = dict(data_dir="out/wikipedia", bpb_bytes=1_048_576, sim_bytes=65_536, mc_batch_size=16, gen_batch_size=16)
