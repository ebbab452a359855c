# ~142M parameters (GPT-2 small's width and depth, Mistral-style, untied 32k embeddings) on one GPU:
# quick real experiments. python train.py config/gpu_small.py --data_dir=out/wikipedia ...
# Standard pretraining: add --forget_every=0.
dtype = "auto"  # bfloat16 on CUDA
compile = "auto"  # torch.compile on CUDA

train = dict(
    out_dir="out/gpu_small",
    n_layer=12, n_head=12, n_kv_head=4, n_embd=768, block_size=1024,
    batch_size=32, grad_accum=4,  # 128 sequences x 1,024 tokens per step
    max_iters=20000, lr=6e-4, warmup_frac=0.1, weight_decay=0.0,
    forget_every=2000,  # the paper's ratio: 14 resets, the last episode free of them
    eval_every=500, eval_tokens=262144, log_every=20,
)
