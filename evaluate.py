"""
Stage 4: evaluation of several models side by side, in the shape of the paper's tables (docs/method.md,
"Evaluation").

    python evaluate.py config/lab.py --models Baseline=out/baseline BA=out/ba AFA=out/afa
    python evaluate.py --models A=out/a --tasks lab_copa --shots=4 --out=out/report/results.json

For every model (each with its own tokenizer) and every language of the manifest:
  1. bits per byte on held-out text, and perplexity beside it (named by its vocabulary: perplexities of
     different vocabularies count different tokens and are never compared);
  2. self-similarity per layer (Ethayarajh 2019), the anisotropy baseline and their difference;
  3. the benchmarks: multiple choice by log-likelihood (acc, acc_norm), generation by greedy decoding
     (exact, F1, ROUGE-L, chrF, BLEU; see metrics.py).
Every number is averaged per language group (μ_pretraining, μ_adapting, μ_other) and over all languages
(μ_overall), written to results.json, and printed as markdown tables (also written to results.md).

What a "word" is for self-similarity. Words are defined on the text, never by a tokenizer, so that
models with different vocabularies are measured on exactly the same occurrences of the same words:
  - a language written with spaces: a maximal run of word characters (regex \\w+, which keeps combining
    marks inside the word, so Devanagari or Thai vowel signs do not split it);
  - a language written without spaces (`spaces: false` in the manifest): a grapheme cluster holding a
    letter or digit - a character as the reader sees it. Without a segmenter there is no tokenizer-free
    word boundary, and characters are the unit such scripts are usually scored in.
  A word's contextual vector is the hidden state at the token holding its last byte: in a causal decoder
  that is the first position that has read the whole word, however many tokens it was cut into.
  A document is cut so that every model reads it within its block (the smallest cut over the models),
  so the word occurrences are the same for all models of one run.
"""

import json
import math
import os
import random
import sys
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import regex
import torch
import torch.nn.functional as F
from tqdm import tqdm

import common
import metrics
import runtime
from tokenizer import render_prompt


@dataclass
class EvaluateConfig:
    """Stage 4: bits per byte, perplexity, self-similarity and benchmarks of several models, side by side."""
    models: list[str] = field(default_factory=list)  # NAME=out_dir ... (the columns of every table, in this order)
    data_dir: str = "out/lab"  # manifest.json with the languages, their groups and held-out (val) text
    tasks_dir: str = ""  # folder whose manifest.json lists the benchmarks under "tasks"; empty = data_dir
    langs: list[str] = field(default_factory=list)  # languages to evaluate; empty = all (the manifest's, and the tasks')
    tasks: list[str] = field(default_factory=list)  # benchmarks to run; empty = every task of the manifest
    bpb: bool = True  # measure bits per byte and perplexity
    self_sim: bool = True  # measure self-similarity per layer
    benchmarks: bool = True  # run the benchmarks
    bpb_bytes: int = 16384  # held-out UTF-8 bytes per language for bits per byte (the same text for every model); 0 = all
    sim_bytes: int = 8192  # held-out UTF-8 bytes per language sampled for self-similarity
    min_count: int = 4  # self-similarity counts a word that occurs at least this many times in the sample
    max_examples: int = 8  # examples per task and language (the first ones of the file); 0 = all
    shots: int = 0  # demonstrations in each prompt, drawn from other examples of the same task and language
    chat: str = "auto"  # ChatML prompts: auto (finetuned checkpoints only), true or false
    gen_tokens: int = 32  # most new tokens per generative answer
    batch_size: int = 16  # windows per batch for bits per byte and self-similarity
    out: str = "out/report/results.json"  # results.json; results.md is written beside it
    device: str = "auto"  # auto, cpu, cuda, cuda:N or mps
    dtype: str = "auto"  # auto (bfloat16 on CUDA, float32 elsewhere), float32, bfloat16, float16
    seed: int = 1337  # picks the few-shot demonstrations
    threads: int = 1  # CPU threads for torch (0 = torch's default); 1 is fastest for lab-size models, most of all on a busy machine
    progress: bool = True  # show progress bars


GROUPS = ("pretraining", "adapting", "other")  # the paper's language groups; "overall" is every language
MC_METRICS = ("acc", "acc_norm")
GEN_METRICS = ("exact", "f1", "rouge_l", "chrf", "bleu")


# ---- inputs: models, languages, tasks ----------------------------------------------------------------

def parse_models(entries):
    """['Baseline=out/a', ...] -> {'Baseline': 'out/a', ...}, each folder checked before any work starts."""
    if not entries:
        runtime.fail("no models to evaluate: pass --models NAME=out_dir [NAME=out_dir ...]")
    models = {}
    for entry in entries:
        name, eq, path = entry.partition("=")
        if not eq or not name or not path:
            runtime.fail(f"--models entry '{entry}' should look like NAME=out_dir (e.g. Baseline=out/baseline)")
        if name in models:
            runtime.fail(f"--models: the name '{name}' is given twice")
        models[name] = path
    for name, path in models.items():
        for needed in ("ckpt.pt", "tokenizer.tiktoken"):
            if not os.path.isfile(os.path.join(path, needed)):
                runtime.fail(f"model {name}: no {needed} in {path} (is it the out_dir of a finished stage?)")
    return models


def read_task_file(path, task, lang, kind):
    """The examples of one JSONL benchmark file, every line checked against docs/protocol.md."""
    if not os.path.isfile(path):
        runtime.fail(f"task {task}: file {path} for language {lang} not found")
    examples = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                ex = json.loads(line)
            except json.JSONDecodeError as e:
                runtime.fail(f"{path}, line {lineno}: not valid JSON ({e.msg})")
            problem = _example_problem(ex, task, lang, kind)
            if problem:
                runtime.fail(f"{path}, line {lineno}: {problem}")
            examples.append(ex)
    if not examples:
        runtime.fail(f"{path}: no examples")
    return examples


def _example_problem(ex, task, lang, kind):
    if not isinstance(ex, dict):
        return "an example must be a JSON object"
    missing = [k for k in ("task", "lang", "id", "kind") if k not in ex]
    if missing:
        return f"missing key(s) {', '.join(missing)}"
    if ex["task"] != task or ex["lang"] != lang or ex["kind"] != kind:
        return f"example is task={ex['task']!r} lang={ex['lang']!r} kind={ex['kind']!r}; the manifest expects {task!r} {lang!r} {kind!r}"
    if kind == "mc":
        choices, label = ex.get("choices"), ex.get("label")
        if not isinstance(ex.get("context"), str):
            return "'context' must be a string"
        if not isinstance(choices, list) or len(choices) < 2 or not all(isinstance(c, str) and c for c in choices):
            return "'choices' must be a list of at least 2 non-empty strings"
        if not isinstance(label, int) or isinstance(label, bool) or not 0 <= label < len(choices):
            return f"label {label!r} is out of range for {len(choices)} choices (an index 0..{len(choices) - 1})"
    else:
        answers = ex.get("answers")
        if not isinstance(ex.get("prompt"), str) or not ex["prompt"]:
            return "'prompt' must be a non-empty string"
        if not isinstance(answers, list) or not answers or not all(isinstance(a, str) for a in answers):
            return "'answers' must be a non-empty list of strings"
        if ex.get("metric") not in GEN_METRICS:
            return f"metric {ex.get('metric')!r} is not one of {', '.join(GEN_METRICS)}"
    return None


def load_tasks(tasks_dir, names, langs):
    """{task: {"kind", "metric", "langs": {lang: [examples]}}} for the requested tasks and languages."""
    manifest = common.read_manifest(tasks_dir)
    available = manifest.get("tasks", {})
    for name in names:
        if name not in available:
            runtime.fail(f"unknown task '{name}' ({tasks_dir}/manifest.json lists: {', '.join(available) or 'none'})")
    tasks = {}
    for name in names or list(available):
        spec = available[name]
        if spec.get("kind") not in ("mc", "gen"):
            runtime.fail(f"{tasks_dir}/manifest.json: task {name} has kind {spec.get('kind')!r}, expected 'mc' or 'gen'")
        files = {lang: path for lang, path in spec["files"].items() if not langs or lang in langs}
        tasks[name] = {"kind": spec["kind"], "metric": spec.get("metric", "acc" if spec["kind"] == "mc" else "f1"),
                       "langs": {lang: read_task_file(os.path.join(tasks_dir, path), name, lang, spec["kind"])
                                 for lang, path in files.items()}}
    return tasks


# ---- bits per byte and perplexity ---------------------------------------------------------------------

def language_bpb(model, tok, val_path, max_bytes, batch_size, device, autocast):
    """(bits per byte, perplexity, bytes scored) on a language's held-out text. The token file is cut
    where it reaches max_bytes of text, so every vocabulary is scored on (nearly) the same text."""
    tokens = common.token_file(tok, val_path)
    byte_lengths = tok.token_byte_lengths()
    block = model.config.block_size
    if max_bytes:
        head = np.asarray(tokens[: 2 * max_bytes + 1])  # enough: every token but <|endoftext|> holds a byte
        tokens = head[: int(np.searchsorted(np.cumsum(byte_lengths[head]), max_bytes)) + 1]
    n_windows = (len(tokens) - 1) // block
    if n_windows == 0:
        runtime.fail(f"{val_path}: {len(tokens)} held-out tokens are fewer than one window of block_size={block}")
    bpb, nats = common.bits_per_byte(model, tokens, byte_lengths, block, batch_size, device, autocast)
    n_bytes = int(byte_lengths[np.asarray(tokens[1:n_windows * block + 1])].sum())
    return bpb, math.exp(nats), n_bytes


# ---- self-similarity ----------------------------------------------------------------------------------

WORD = regex.compile(r"\w+")
GRAPHEME = regex.compile(r"\X")


def text_words(text, spaces):
    """(word, end offset in characters) of every word of a text: see the module docstring."""
    if spaces:
        return [(m.group(), m.end()) for m in WORD.finditer(text)]
    return [(m.group(), m.end()) for m in GRAPHEME.finditer(text) if m.group()[0].isalnum()]


def self_sim_sample(docs, readers, max_bytes, spaces, min_count):
    """The text sample of one language, the same for every model. readers: [(tokenizer, block_size)] of
    all models; each document is cut so that every one of them reads it within one block. Returns
    {"texts", "word_ends" (byte offsets), "word_ids" (index into "words", -1 for a rarer word), "words"}."""
    texts, occurrences, used = [], [], 0
    for doc in docs:
        if used >= max_bytes:
            break
        data = doc.encode("utf-8")
        limit = len(data)
        for tok, block, byte_lengths in readers:  # a model reads <|endoftext|> + block - 1 tokens of it
            limit = min(limit, int(byte_lengths[tok.encode(doc)[: block - 1]].sum()))
        text = data[:limit].decode("utf-8", errors="ignore")
        found = text_words(text, spaces)
        if limit < len(data) and found and found[-1][1] == len(text):
            found.pop()  # the cut may split this word
        ends, position, last = [], 0, 0
        for word, end in found:  # character offsets -> byte offsets, in one pass
            position += len(text[last:end].encode("utf-8"))
            ends.append(position)
            last = end
        texts.append(text)
        occurrences.append(([w for w, _ in found], np.array(ends, dtype=np.int64)))
        used += limit
    counts = {}
    for found, _ in occurrences:
        for w in found:
            counts[w] = counts.get(w, 0) + 1
    words = sorted(w for w, c in counts.items() if c >= min_count)
    index = {w: i for i, w in enumerate(words)}
    word_ids = [np.array([index.get(w, -1) for w in found], dtype=np.int64) for found, _ in occurrences]
    return {"texts": texts, "word_ends": [ends for _, ends in occurrences], "word_ids": word_ids, "words": words}


def similarity_sums(vectors, word_ids, n_words):
    """Sums from which every mean cosine follows: per layer, the sum of the unit vectors of each word and of
    all vectors. vectors [L, N, C]; word_ids [N] (-1 = counts only in the anisotropy baseline)."""
    unit = F.normalize(vectors.double(), dim=-1)
    per_word = torch.zeros(unit.size(0), n_words, unit.size(2), dtype=torch.float64, device=unit.device)
    chosen = word_ids >= 0
    per_word.index_add_(1, word_ids[chosen], unit[:, chosen])
    counts = torch.bincount(word_ids[chosen], minlength=n_words).double()
    return per_word, counts, unit.sum(1), unit.size(1)


def cosine_means(per_word, counts, total, n):
    """(self-similarity, anisotropy) per layer, from similarity_sums (added up over batches).

    For unit vectors u_1..u_n, the sum of cos(u_i, u_j) over ordered pairs i != j is |sum u|^2 - n, so the
    mean over all pairs is (|sum u|^2 - n) / (n (n - 1)): no loop over pairs. Self-similarity is that
    mean within each word, averaged over the words (each word weighs the same, as in Ethayarajh 2019).
    Anisotropy is the same mean over all pairs of vectors of the sample: the expected cosine of two
    random vectors at that layer, computed exactly instead of by sampling pairs."""
    keep = counts >= 2
    if not keep.any() or n < 2:
        return None, None
    pair_sums = per_word[:, keep].pow(2).sum(-1) - counts[keep]
    self_sim = (pair_sums / (counts[keep] * (counts[keep] - 1))).mean(-1)
    anisotropy = (total.pow(2).sum(-1) - n) / (n * (n - 1))
    return self_sim.tolist(), anisotropy.tolist()


def self_similarity(vectors, word_ids):
    """(self-similarity, anisotropy) per layer of vectors [L, N, C] (or [N, C]) of words word_ids [N]."""
    vectors = vectors[None] if vectors.dim() == 2 else vectors
    word_ids = torch.as_tensor(word_ids)
    n_words = int(word_ids.max()) + 1 if (word_ids >= 0).any() else 0
    return cosine_means(*similarity_sums(vectors, word_ids, n_words))


@torch.no_grad()
def language_self_sim(model, tok, sample, batch_size, device, autocast):
    """{"self_sim", "anisotropy", "adjusted"} per layer (0 = the embeddings) on one language's sample."""
    block, byte_lengths = model.config.block_size, tok.token_byte_lengths()
    n_words, sums, n_counted = len(sample["words"]), None, 0
    docs = list(zip(sample["texts"], sample["word_ends"], sample["word_ids"]))
    for first in range(0, len(docs), batch_size):
        rows, rows_b, rows_t, rows_w = [], [], [], []
        for b, (text, ends, ids) in enumerate(docs[first:first + batch_size]):
            tokens = ([tok.eot_id] + tok.encode(text))[:block]
            token_ends = np.cumsum(byte_lengths[tokens])
            position = np.searchsorted(token_ends, ends - 1, side="right")  # the token holding the last byte
            inside = position < len(tokens)  # always, unless re-encoding the cut text grew it past the block
            rows.append(tokens)
            rows_b.append(np.full(inside.sum(), b))
            rows_t.append(position[inside])
            rows_w.append(ids[inside])
        width = max(len(r) for r in rows)
        idx = torch.tensor([r + [tok.eot_id] * (width - len(r)) for r in rows], device=device)  # padding comes last: causal
        b, t = torch.from_numpy(np.concatenate(rows_b)).to(device), torch.from_numpy(np.concatenate(rows_t)).to(device)
        word_ids = torch.from_numpy(np.concatenate(rows_w)).to(device)
        with autocast:
            vectors = torch.stack([state[b, t].float() for state in model.hidden_states(idx)])  # [L, words, C]
        batch_sums = similarity_sums(vectors, word_ids, n_words)
        sums = batch_sums if sums is None else tuple(s + x for s, x in zip(sums, batch_sums))
        n_counted += len(word_ids)
    self_sim, anisotropy = cosine_means(*sums) if sums else (None, None)
    if self_sim is None:
        return None, n_counted
    return {"self_sim": self_sim, "anisotropy": anisotropy,
            "adjusted": [s - a for s, a in zip(self_sim, anisotropy)]}, n_counted


# ---- benchmarks ---------------------------------------------------------------------------------------

def _logits(model, hidden):
    return model.lm_head(model.norm(hidden))[..., : model.config.vocab_size].float()


@torch.no_grad()
def score_choices(model, context, choices):
    """Log-likelihood of each choice (list of ids) after the context (ids): the context runs once and its
    keys/values are shared by all choices, which run together as one batch (right-padded)."""
    device = model.wte.weight.device
    longest = max(len(c) for c in choices)
    if longest >= model.config.block_size:
        raise ValueError(f"a choice of {longest} tokens leaves no room for its context in block_size={model.config.block_size}")
    context = context[-(model.config.block_size - longest):]  # lm-evaluation-harness also cuts on the left
    caches = [{} for _ in model.blocks]
    last = model.hidden_states(torch.tensor([context], device=device), caches)[-1][:, -1:]  # [1, 1, C]
    n = len(choices)
    for cache in caches:  # one copy of the context per choice, without copying memory
        cache["k"], cache["v"] = cache["k"].expand(n, -1, -1, -1), cache["v"].expand(n, -1, -1, -1)
    ids = torch.tensor([c + [0] * (longest - len(c)) for c in choices], device=device)
    hidden = last.expand(n, -1, -1)
    if longest > 1:  # position t predicts token t + 1; the last token of a choice predicts nothing we need
        hidden = torch.cat([hidden, model.hidden_states(ids[:, :-1], caches)[-1]], dim=1)
    log_probs = F.log_softmax(_logits(model, hidden), dim=-1).gather(-1, ids[..., None])[..., 0]  # [n, longest]
    counted = torch.arange(longest, device=device)[None] < torch.tensor([len(c) for c in choices], device=device)[:, None]
    return (log_probs * counted).sum(1).tolist()


def pick_demos(pool, example, k, seed):
    """k other examples of the pool, fixed by (seed, task, id): parallel languages get the same ones."""
    others = [e for e in pool if e["id"] != example["id"]]
    rng = random.Random(f"{seed}:{example['task']}:{example['id']}")
    return rng.sample(others, min(k, len(others)))


def _delimiter(example, question, answer, spaces):
    # Multiple choice: a choice continues its context as it is (docs/protocol.md: context + choice is the
    # string scored, the separator is in the choice). Generation: answers carry no leading space, so a " " goes
    # between a demonstration's prompt and its answer, as lm-evaluation-harness does; not without spaces.
    if example["kind"] == "mc" or not spaces or question[-1:].isspace() or answer[:1].isspace():
        return ""
    return " "


def build_prompt(tok, example, demos, chat, spaces):
    """The ids of a prompt: the demonstrations (question, then its answer), then the example's question.
    Chat: as earlier turns of a ChatML conversation; plain: separated by blank lines, after <|endoftext|>."""
    question = lambda e: e["context"] if e["kind"] == "mc" else e["prompt"]
    answer = lambda e: e["choices"][e["label"]] if e["kind"] == "mc" else e["answers"][0]
    if chat:  # an assistant's answer starts without the space a plain continuation may carry
        turns = [m for d in demos for m in ({"role": "user", "content": question(d)}, {"role": "assistant", "content": answer(d).lstrip()})]
        return render_prompt(tok, turns + [{"role": "user", "content": question(example)}])
    shots = "".join(question(d) + _delimiter(d, question(d), answer(d), spaces) + answer(d) + "\n\n" for d in demos)
    return [tok.eot_id] + tok.encode(shots + question(example))


def choice_ids(tok, example, chat):
    return [tok.encode(c.lstrip() if chat else c) for c in example["choices"]]


def stop_ids(tok, chat):
    """A chat answer ends at <|im_end|>; a plain one at the end of its line (any token holding a newline)."""
    stops = {tok.eot_id, tok.im_start_id, tok.im_end_id}
    if not chat:
        stops |= {i for i in range(tok.n_vocab) if b"\n" in tok.token_bytes(i)}
    return stops


def run_task(model, tok, task, examples, pool, cfg, chat, spaces, autocast, stops):
    """The scores of one task in one language ({metric: value}) and the model's outputs: its picks
    (acc, acc_norm), None for an example whose choice does not fit the block; or its answers."""
    if task["kind"] == "mc":
        picks = []
        for ex in examples:
            context, continuations = build_prompt(tok, ex, pick_demos(pool, ex, cfg.shots, cfg.seed), chat, spaces), choice_ids(tok, ex, chat)
            if max(len(c) for c in continuations) >= model.config.block_size:
                picks.append(None)
                continue
            with autocast:
                scores = score_choices(model, context, continuations)
            # acc_norm: log-likelihood per UTF-8 byte of the choice, as lm-evaluation-harness's acc_bytes
            normed = [s / max(1, len(c.strip().encode("utf-8"))) for s, c in zip(scores, ex["choices"])]
            picks.append((int(np.argmax(scores)), int(np.argmax(normed))))
        scored = [(p, ex["label"]) for p, ex in zip(picks, examples) if p is not None]
        if not scored:
            return {"acc": None, "acc_norm": None}, picks
        return {"acc": sum(p[0] == label for p, label in scored) / len(scored),
                "acc_norm": sum(p[1] == label for p, label in scored) / len(scored)}, picks
    outputs = []
    for ex in examples:
        prompt = build_prompt(tok, ex, pick_demos(pool, ex, cfg.shots, cfg.seed), chat, spaces)
        prompt = prompt[-(model.config.block_size - cfg.gen_tokens):]
        with autocast:
            new = model.generate(prompt, cfg.gen_tokens, stop_ids=stops)
        text = tok.decode([i for i in new if i not in (tok.eot_id, tok.im_start_id, tok.im_end_id)])
        outputs.append((text if chat else text.split("\n")[0]).strip())  # a plain answer is its first line
    return metrics.score_generations(outputs, [ex["answers"] for ex in examples], spaces), outputs


# ---- tables -------------------------------------------------------------------------------------------

def group_means(per_lang, group_of, groups):
    """{group: mean of its languages, ..., "overall": mean of every language}; None where none has a value."""
    means = {}
    for g in list(groups) + ["overall"]:
        values = [v for lang, v in per_lang.items() if v is not None and (g == "overall" or group_of[lang] == g)]
        means[g] = sum(values) / len(values) if values else None
    return means


def markdown_table(title, rows, columns, digits=3):
    """rows: [(key, label)]; columns: [(header, {key: value or None})]."""
    lines = [f"### {title}", "", "| | " + " | ".join(h for h, _ in columns) + " |", "|---|" + "---:|" * len(columns)]
    for key, label in rows:
        cells = ["-" if values.get(key) is None else f"{values[key]:.{digits}f}" for _, values in columns]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def report(results):
    """Markdown: a table per metric (groups as rows, models as columns), per-language tables of the
    headline metrics, and self-similarity per layer."""
    table, info, groups, group_of = results["metrics"], results["models"], results["groups"], results["languages"]
    models = list(info)
    header = lambda metric, m: f"{m} (V={info[m]['vocab_size']})" if metric == "perplexity" else m
    digits = lambda metric: 2 if metric == "perplexity" else 3
    out = ["# Results\n", "Models: " + "; ".join(f"{m} = {v['dir']} ({v['stage']}, V={v['vocab_size']}, "
                                                 f"{'ChatML' if v['chat'] else 'plain'} prompts)" for m, v in info.items()) + "\n",
           "Perplexity is per token of each model's own vocabulary (V): compare models by bits per byte.\n"]
    group_rows = [(g, f"μ_{g}") for g in list(groups) + ["overall"]]
    for metric in (m for m in table if "/layer" not in m):
        out.append(markdown_table(metric, group_rows, [(header(metric, m), table[metric][m]["groups"]) for m in models], digits(metric)))
    out.append("## Per language\n")
    rank = lambda lang: (groups.index(group_of[lang]) if group_of[lang] in groups else len(groups), lang)
    headline = ["bpb", "perplexity", "self_sim", "self_sim_adjusted"] + [f"{t}/{v['metric']}" for t, v in results["tasks"].items()]
    for metric in (m for m in headline if m in table):
        langs = sorted({lang for m in models for lang in table[metric][m]["langs"]}, key=rank)
        out.append(markdown_table(metric, [(lang, f"{lang} ({group_of[lang]})") for lang in langs],
                                  [(header(metric, m), table[metric][m]["langs"]) for m in models], digits(metric)))
    if any("/layer" in m for m in table):
        out.append("## Self-similarity per layer (μ_overall; layer 0 is the embedding output)\n")
        for kind in ("self_sim", "anisotropy", "self_sim_adjusted"):
            layers = sorted((int(m.split("/layer")[1]) for m in table if m.startswith(kind + "/layer")))
            columns = [(m, {k: table[f"{kind}/layer{k}"].get(m, {}).get("groups", {}).get("overall") for k in layers}) for m in models]
            out.append(markdown_table(f"{kind} by layer", [(k, f"layer {k}") for k in layers], columns))
    return "\n".join(out)


def _metric_order(metric, tasks):
    """bpb, perplexity, self-similarity, then each task with its own metric first; layers in number order."""
    head, _, tail = metric.partition("/")
    fixed = ["bpb", "perplexity", "self_sim", "anisotropy", "self_sim_adjusted"]
    if head in fixed:
        return (fixed.index(head), "", 0, int(tail[5:]) if tail else -1)
    return (len(fixed), list(tasks).index(head), tail != tasks[head]["metric"], (MC_METRICS + GEN_METRICS).index(tail))


# ---- the run ------------------------------------------------------------------------------------------

def read_languages(cfg, tasks):
    """(groups, {lang: group}, {lang: written with spaces}, languages with held-out text, {lang: documents})."""
    manifest = common.read_manifest(cfg.data_dir)
    entries = {e["code"]: e for e in manifest["languages"]}
    groups = list(manifest.get("groups") or GROUPS)
    group_of = {lang: g for g, langs in manifest.get("groups", {}).items() for lang in langs}
    group_of.update({code: e["group"] for code, e in entries.items() if "group" in e})
    for lang in list(entries) + [lang for t in tasks.values() for lang in t["langs"]]:
        group_of.setdefault(lang, "other")  # not in any group of the text manifest: never trained on
    if "other" in group_of.values() and "other" not in groups:
        groups.append("other")
    for lang in cfg.langs:
        if lang not in entries and not any(lang in t["langs"] for t in tasks.values()):
            runtime.fail(f"language '{lang}' is neither in {cfg.data_dir}/manifest.json nor in any task")
    text_langs = [lang for lang in (cfg.langs or list(entries)) if lang in entries] if cfg.bpb or cfg.self_sim else []
    val_docs = {}
    for lang, path in common.language_files(cfg.data_dir, text_langs, "val").items():
        val_docs[lang] = common.read_documents(path) if os.path.isfile(path) else []
        if not val_docs[lang]:
            runtime.fail(f"language '{lang}' has no held-out text ({path} is missing or empty)")
    spaces = {lang: entries.get(lang, {}).get("spaces") is not False for lang in group_of}  # unknown: with spaces
    return groups, group_of, spaces, text_langs, val_docs


def evaluate_model(name, model, tok, chat, cfg, text_langs, samples, tasks, spaces, device, autocast):
    """Every number of one model: ({metric: {lang: value}}, details)."""
    scores, seconds = {}, {}
    details = {"bpb_bytes": {}, "self_sim_words": {}, "self_sim_occurrences": {}, "tasks": {}, "seconds": seconds}
    put = lambda metric, lang, value: scores.setdefault(metric, {}).__setitem__(lang, value)
    bar = lambda items, what: tqdm(items, desc=f"{name}: {what}", disable=not cfg.progress, dynamic_ncols=True, leave=False)
    t0 = time.time()
    for lang in bar(text_langs if cfg.bpb else [], "bits per byte"):
        val_path = common.language_files(cfg.data_dir, [lang], "val")[lang]
        bpb, ppl, details["bpb_bytes"][lang] = language_bpb(model, tok, val_path, cfg.bpb_bytes, cfg.batch_size, device, autocast)
        put("bpb", lang, bpb)
        put("perplexity", lang, ppl)
    seconds["bpb"], t0 = time.time() - t0, time.time()
    for lang in bar(text_langs if cfg.self_sim else [], "self-similarity"):
        sims, details["self_sim_occurrences"][lang] = language_self_sim(model, tok, samples[lang], cfg.batch_size, device, autocast)
        details["self_sim_words"][lang] = len(samples[lang]["words"])
        if sims is None:
            print(f"warning: {lang}: no word occurs {cfg.min_count} times in {cfg.sim_bytes} bytes of held-out text, "
                  f"so no self-similarity (raise sim_bytes or lower min_count)", file=sys.stderr)
            continue
        contextual = range(1, len(sims["self_sim"]))  # the headline leaves out layer 0: embeddings see no context
        for metric, key in (("self_sim", "self_sim"), ("anisotropy", "anisotropy"), ("self_sim_adjusted", "adjusted")):
            put(metric, lang, sum(sims[key][i] for i in contextual) / len(contextual))
            for layer, value in enumerate(sims[key]):
                put(f"{metric}/layer{layer}", lang, value)
    seconds["self_sim"], t0 = time.time() - t0, time.time()
    stops = stop_ids(tok, chat) if tasks else set()
    for task_name, task in tasks.items():
        details["tasks"][task_name] = {}
        for lang, pool in bar(list(task["langs"].items()), task_name):
            examples = pool[: cfg.max_examples or None]
            task_scores, outputs = run_task(model, tok, task, examples, pool, cfg, chat, spaces[lang], autocast, stops)
            for metric, value in task_scores.items():
                put(f"{task_name}/{metric}", lang, value)
            skipped = sum(o is None for o in outputs)
            if skipped:
                print(f"warning: {name}: {task_name} ({lang}): {skipped} of {len(examples)} examples skipped, a choice "
                      f"longer than block_size={model.config.block_size} tokens", file=sys.stderr)
            details["tasks"][task_name][lang] = {"n": len(examples) - skipped, "skipped": skipped, "outputs": outputs}
        seconds[task_name], t0 = time.time() - t0, time.time()
    return scores, details


def main(argv=None):
    cfg = runtime.parse_config(EvaluateConfig, "evaluate", argv)
    if cfg.chat not in ("auto", "true", "false"):
        runtime.fail(f"chat must be auto, true or false, not '{cfg.chat}'")
    if min(cfg.shots, cfg.max_examples, cfg.bpb_bytes, cfg.sim_bytes) < 0 or cfg.min_count < 2 or cfg.gen_tokens < 1:
        runtime.fail("shots, max_examples, bpb_bytes and sim_bytes must be >= 0, min_count >= 2 and gen_tokens >= 1")
    model_dirs = parse_models(cfg.models)
    device = runtime.resolve_device(cfg.device)
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    autocast = runtime.autocast_for(device, cfg.dtype)
    # every input is checked before the first model runs: a bad task file fails in seconds, not after an hour
    tasks = load_tasks(cfg.tasks_dir or cfg.data_dir, cfg.tasks, cfg.langs) if cfg.benchmarks else {}
    groups, group_of, spaces, text_langs, val_docs = read_languages(cfg, tasks)
    readers = []
    for name, path in model_dirs.items():
        tok, block = runtime.load_tokenizer(os.path.join(path, "tokenizer.tiktoken")), _block_size(path)
        readers.append((tok, block, tok.token_byte_lengths()))
        if cfg.gen_tokens >= block and any(t["kind"] == "gen" for t in tasks.values()):
            runtime.fail(f"gen_tokens={cfg.gen_tokens} leaves no room for a prompt in model {name}'s block of {block} tokens")
    samples = {lang: self_sim_sample(val_docs[lang], readers, cfg.sim_bytes, spaces[lang], cfg.min_count)
               for lang in text_langs} if cfg.self_sim else {}

    results = {"settings": {**asdict(cfg), "device": device}, "models": {}, "groups": groups, "languages": group_of,
               "tasks": {t: {"kind": v["kind"], "metric": v["metric"], "langs": list(v["langs"])} for t, v in tasks.items()},
               "metrics": {}, "details": {}}
    table = {}  # metric -> model -> {"langs": {lang: value}}
    for name, path in model_dirs.items():
        t0 = time.time()
        model, tok, ckpt = runtime.load_model(path, device)
        model.eval()
        chat = ckpt["stage"] == "finetune" if cfg.chat == "auto" else cfg.chat == "true"
        results["models"][name] = {"dir": path, "stage": ckpt["stage"], "step": ckpt["step"], "vocab_size": tok.n_vocab,
                                   "n_layer": model.config.n_layer, "block_size": model.config.block_size, "chat": chat}
        scores, results["details"][name] = evaluate_model(name, model, tok, chat, cfg, text_langs, samples, tasks, spaces, device, autocast)
        for metric, per_lang in scores.items():
            table.setdefault(metric, {})[name] = {"langs": per_lang}
        print(f"{name}: evaluated in {time.time() - t0:.1f}s ({', '.join(f'{k} {v:.1f}s' for k, v in results['details'][name]['seconds'].items())})")
        del model

    for metric in sorted(table, key=lambda m: _metric_order(m, tasks)):
        results["metrics"][metric] = {m: {"langs": v["langs"], "groups": group_means(v["langs"], group_of, groups)}
                                      for m, v in table[metric].items()}
    text = report(results)
    os.makedirs(os.path.dirname(os.path.abspath(cfg.out)), exist_ok=True)
    runtime.write_json(cfg.out, results)
    md_path = os.path.splitext(cfg.out)[0] + ".md"
    with open(md_path + ".tmp", "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(md_path + ".tmp", md_path)
    print(text)
    print(f"wrote {cfg.out} and {md_path}")
    return results


def _block_size(out_dir):
    # memory-mapped: reading one small entry of a multi-gigabyte checkpoint must not load its weights
    try:
        return torch.load(os.path.join(out_dir, "ckpt.pt"), map_location="cpu", mmap=True, weights_only=False)["model_config"]["block_size"]
    except Exception:
        return runtime.load_checkpoint(out_dir)["model_config"]["block_size"]  # an old format, or a clear error


if __name__ == "__main__":
    main(sys.argv[1:])
