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

The word probe is finer: a lab knows its dictionary exactly (lexicon.json: every noun, verb and adjective
in every language), so for each concept it asks whether English's word and language L's word are each
other's nearest neighbours among all concepts' words (chance 1/n concepts), (a) in the input embeddings
(the mean of the word's token rows) and (b) in context: the mean of the hidden states of the word's
tokens over its first occurrences in the language's held-out text, per layer (a root matches at the
start of a word, so a suffixing language's inflected forms count). Words align before passages do: a
passage is many words, most of them shared structure.

    python -m evaluation.probe --model out/pretrain --data_dir out/lab [--task lab_read] [--n 150] [--words]
"""

import argparse
import re
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


@torch.no_grad()
def word_states(model, tok, text, words, max_seen=20, batch_size=16):
    """For each word of `words` found in `text` (at the start of a word): the mean over its first max_seen
    occurrences of the mean hidden state of the tokens it spans, at every layer -> {word: [n_layer + 1, C]}.
    A document (blank-line separated) longer than the block is cut at its end."""
    device, block = model.wte.weight.device, model.config.block_size
    finder = re.compile(r"(?<!\w)(" + "|".join(map(re.escape, sorted(words, key=len, reverse=True))) + ")")
    sums, seen = {}, {w: 0 for w in words}
    docs = [d for d in text.split("\n\n") if d.strip()]
    for first in range(0, len(docs), batch_size):
        if all(k >= max_seen for k in seen.values()):
            break
        rows = [([tok.eot_id] + tok.encode(d))[:block] for d in docs[first:first + batch_size]]
        width = max(len(r) for r in rows)
        idx = torch.tensor([r + [tok.eot_id] * (width - len(r)) for r in rows], device=device)
        states = torch.stack(hidden_states(model, idx)).float()  # [L, B, T, C]
        for b, (doc, row) in enumerate(zip(docs[first:first + batch_size], rows)):
            ends = torch.tensor([len(tok.token_bytes(t)) for t in row]).cumsum(0).tolist()  # byte end of each token
            for m in finder.finditer(doc):
                word = m.group(1)
                if seen[word] >= max_seen:
                    continue
                start = len(doc[:m.start()].encode("utf-8"))
                end = start + len(word.encode("utf-8"))
                spans = [t for t in range(1, len(row)) if ends[t - 1] < end and ends[t] > start]
                if not spans or ends[-1] < end:  # cut off by the block
                    continue
                vec = states[:, b, spans].mean(1)
                sums[word] = sums.get(word, 0) + vec
                seen[word] += 1
    return {w: sums[w] / seen[w] for w in sums}


def word_probe(model, tok, lexicon, texts, reference="en", max_seen=20):
    """{lang: {"n": concepts compared, "embeddings": retrieval@1, "n_context": ..., "layers": [per layer]}}:
    retrieval@1 of `reference`'s word for each concept among all concepts' words in lang and back (lexicon:
    {lang: {concept: word}}; texts: {lang: held-out text}). Concepts whose words are found in both texts
    are compared in context; every concept whose words differ in the two languages, in the embeddings."""
    rows = model.wte.weight.detach().float()

    def embedding(word):
        return rows[tok.encode(" " + word)].mean(0)  # as the word is written inside a sentence
    ref = lexicon[reference]
    ref_states = word_states(model, tok, texts[reference], set(ref.values()), max_seen)
    out = {}
    for lang, words in lexicon.items():
        if lang == reference or lang not in texts:
            continue
        both = [c for c in ref if c in words and ref[c] != words[c]]  # a shared spelling would match itself
        r = retrieval_at_1(torch.stack([embedding(ref[c]) for c in both]),
                           torch.stack([embedding(words[c]) for c in both]))
        states = word_states(model, tok, texts[lang], {words[c] for c in both}, max_seen)
        found = [c for c in both if ref[c] in ref_states and words[c] in states]
        layers = [retrieval_at_1(a, b) for a, b in zip(torch.stack([ref_states[ref[c]] for c in found], 1),
                                                       torch.stack([states[words[c]] for c in found], 1))]
        out[lang] = {"n": len(both), "embeddings": r, "n_context": len(found), "layers": layers}
    return out


def word_inputs(data_dir, langs):
    """(lexicon, {lang: held-out text}) of a data folder whose manifest lists a "lexicon" (the lab's), for
    langs (English among them), or None: real corpora have no exact dictionary."""
    import json
    import os

    from pipeline import documents
    manifest = documents.read_manifest(data_dir)
    if "lexicon" not in manifest:
        return None
    with open(os.path.join(data_dir, manifest["lexicon"]), encoding="utf-8") as f:
        lexicon = {lang: words for lang, words in json.load(f).items() if lang in langs}
    paths = documents.language_files(data_dir, list(lexicon), "val")
    return lexicon, {lang: open(path, encoding="utf-8").read() for lang, path in paths.items()}


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
    ap.add_argument("--words", action="store_true", help="also the word probe (the data folder's lexicon.json)")
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
    if args.words:
        inputs = word_inputs(args.data_dir, set(passages))
        if inputs is None:
            runtime.fail(f"--words: {args.data_dir}/manifest.json lists no lexicon")
        words = word_probe(model, tok, *inputs)
        print("word retrieval@1 (chance 1/n): input embeddings, then in context at each layer")
        for lang, w in words.items():
            print(f"| {lang} | n={w['n']} emb {w['embeddings']:.2f} | n={w['n_context']} "
                  + " ".join(f"{v:.2f}" for v in w["layers"]) + " |")
        scores = {"passages": scores, "words": words}
    return scores


if __name__ == "__main__":
    main(sys.argv[1:])
