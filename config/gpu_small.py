# ~142M parameters (GPT-2 small's width and depth, Mistral-style, untied 32k embeddings) on one GPU:
# quick real experiments. python train.py config/gpu_small.py --data_dir=out/wikipedia ...
# Standard pretraining: add --forget_every=0.
dtype = "auto"  # bfloat16 on CUDA
compile = "auto"  # torch.compile on CUDA

train = dict(
    out_dir="out/gpu_small",
    data_dir="out/wikipedia", tokenizer="out/tokenizer/gpu_small.tiktoken",
    n_layer=12, n_head=12, n_kv_head=4, n_embd=768, block_size=1024,
    batch_size=32, grad_accum=4,  # 128 sequences x 1,024 tokens per step
    max_iters=15000, lr=6e-4, warmup_frac=0.1, weight_decay=0.0,
    forget_every=1000,  # [AFA]'s ratio (10,000 of 150,000): 14 resets, then a last episode to relearn
    eval_every=500, eval_tokens=262144, log_every=20,
)

# adaptation, finetuning and evaluation: the paper's settings are the stages' defaults ([AFA]'s recipe with a
# fresh head, --head=fresh; finetuning LR 1e-6, 5 epochs, batch 16; every benchmark example). What it leaves open (the
# adaptation LR, batch and tokens) is docs/method.md's choice; run.sh passes the budgets it sweeps.
adapt = dict(batch_size=8, grad_accum=4, eval_every=500, eval_bytes=262_144)
finetune = dict(data_dir="out/wikipedia",  # instructions: data/instructions/prepare.py
                eval_every=1000, val_conversations=1000)
evaluate = dict(data_dir="out/wikipedia", bpb_bytes=1_048_576, sim_bytes=65_536, mc_batch_size=32, gen_batch_size=32)
