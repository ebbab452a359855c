"""
The retrieval probe: does a model represent the same passage alike in two languages?

Item k of a benchmark has the same meaning in every language (the lab's items, Belebele's passages), so
n parallel passages are n pairs of translations. Each passage is encoded as a plain prompt
(<|endoftext|> + its text) and its hidden states are mean-pooled at every layer (0 = the embedding output,
then after each block), the leading <|endoftext|> left out: it is the same token in every language and
would make every passage alike. For each language other than English and each layer, retrieval@1 is the
share of English passages whose nearest passage of that language by cosine similarity is their own
translation, averaged with the same the other way round (chance: 1/n).

Each language's vectors are centred (their mean over the n passages taken out) before the cosine: what a
language adds to every passage of it, its own direction, then says nothing, and only what tells passages
apart is compared (Libovický et al. 2020, "On the language neutrality of pre-trained multilingual
representations", who found the same).

    python -m evaluation.probe --model out/pretrain --data_dir out/lab [--task lab_read] [--n 150]
"""

import argparse
import sys

import torch
import torch.nn.functional as F

from evaluation.inference import hidden_states


@torch.no_grad()
def pooled_states(model, tok, texts, batch_size=32):
    """Mean-pooled hidden states of each text at every layer: [n_layer + 1, len(texts), C]. A text longer
    than the block is cut at its end."""
    device, block = model.wte.weight.device, model.config.block_size
    rows = [([tok.eot_id] + tok.encode(t))[:block] for t in texts]
    pooled = []
    for first in range(0, len(rows), batch_size):
        batch = rows[first:first + batch_size]
        width = max(len(r) for r in batch)
        # right padding after a causal decoder's tokens changes nothing before it: no mask is needed
        idx = torch.tensor([r + [tok.eot_id] * (width - len(r)) for r in batch], device=device)
        counted = torch.tensor([[0 < t < len(r) for t in range(width)] for r in batch], device=device)
        weights = (counted / counted.sum(1, keepdim=True)).float()  # [B, T]: the mean over the passage's tokens
        states = torch.stack(hidden_states(model, idx)).float()  # [L, B, T, C]
        pooled.append(torch.einsum("lbtc,bt->lbc", states, weights))
    return torch.cat(pooled, dim=1)


def retrieval_at_1(a, b):
    """a, b [n, C]: item i of a and of b are translations. The share of items whose most cosine-similar
    item of the other side is their own translation, averaged over both directions (a -> b, b -> a)."""
    a, b = F.normalize(a - a.mean(0), dim=-1), F.normalize(b - b.mean(0), dim=-1)
    sim = a @ b.T
    own = torch.arange(len(a), device=a.device)
    return ((sim.argmax(1) == own).float().mean().item() + (sim.argmax(0) == own).float().mean().item()) / 2


def probe(model, tok, passages, reference="en", batch_size=32):
    """{lang: [retrieval@1 of `reference` <-> lang at each layer]} for every language of passages ({lang:
    [texts]}, parallel: the k-th text of every language has one meaning)."""
    n = {len(texts) for texts in passages.values()}
    if len(n) != 1:
        raise ValueError(f"parallel passages must be as many in every language, not {sorted(n)}")
    ref = pooled_states(model, tok, passages[reference], batch_size)
    out = {}
    for lang, texts in passages.items():
        if lang != reference:
            states = pooled_states(model, tok, texts, batch_size)
            out[lang] = [retrieval_at_1(r, s) for r, s in zip(ref, states)]
    return out


def task_passages(tasks, task, n):
    """The first n contexts (or prompts) of a task in each of its languages: {lang: [texts]}."""
    return {lang: [ex.get("context", ex.get("prompt")) for ex in examples[:n or None]]
            for lang, examples in tasks[task]["langs"].items()}


def main(argv=None):
    # imported here: the functions above are what evaluate.py needs, without a command line
    from evaluation.benchmarks import load_tasks
    from pipeline import runtime

    ap = argparse.ArgumentParser(description="Retrieval@1 of English passages' translations, per layer and language "
                                 "(chance 1/n): a screen for cross-lingual alignment.")
    ap.add_argument("--model", required=True, help="an out_dir (ckpt.pt and tokenizer.tiktoken)")
    ap.add_argument("--data_dir", default="out/lab", help="a folder whose manifest.json lists the task")
    ap.add_argument("--task", default="lab_read", help="the task whose contexts are the parallel passages")
    ap.add_argument("--n", type=int, default=150, help="passages per language (the first ones of each file)")
    ap.add_argument("--langs", nargs="*", default=[], help="languages (English always); default: every one")
    args = ap.parse_args(argv)
    langs = sorted(set(args.langs) | {"en"}) if args.langs else []
    tasks = load_tasks(args.data_dir, [args.task], langs)
    passages = task_passages(tasks, args.task, args.n)
    if "en" not in passages:
        runtime.fail(f"task {args.task} has no English file in {args.data_dir}: nothing to retrieve from")
    torch.set_num_threads(1)
    model, tok, _ = runtime.load_model(args.model, "cpu")
    model.eval()
    scores = probe(model, tok, passages)
    n = len(passages["en"])
    print(f"retrieval@1, {args.task}, n={n} (chance {1 / n:.3f}); layer 0 = embeddings")
    print("| lang | " + " | ".join(f"L{i}" for i in range(model.config.n_layer + 1)) + " |")
    for lang, values in scores.items():
        print(f"| {lang} | " + " | ".join(f"{v:.2f}" for v in values) + " |")
    return scores


if __name__ == "__main__":
    main(sys.argv[1:])
