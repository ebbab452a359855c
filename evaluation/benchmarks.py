"""
The benchmarks of evaluate.py: task files, prompts, and the scoring of multiple choice and generation.

A task is one JSONL file per language (docs/protocol.md's format, checked line by line as it is read):
  - multiple choice ("mc"): a context and its choices. The string scored is context + choice (the choice
    carries its separator); a choice's score is the log-likelihood of its tokens after the context. The
    tokens are split as lm-evaluation-harness splits them (encode_pairs): context + choice is encoded as
    one string, so that a script written without spaces gets the tokens training gave it.
    Partial scoring (XWinograd, as lm-evaluation-harness scores it): several "contexts" (the sentence up
    to the blank, filled with each option) and one "continuation" (the rest of the sentence); an option's
    score is the log-likelihood of the continuation after its context.
  - generation ("gen"): a prompt and reference answers. The model decodes greedily until the end of the
    line (plain prompts) or <|im_end|> (ChatML); metrics.py scores the answer against the references.

The scores of a multiple-choice task in one language:
  acc        the pick by log-likelihood of the whole choice is the gold choice (fraction of examples)
  acc_bytes  the pick by log-likelihood per UTF-8 byte of the choice (its text without the separator
             space) is the gold choice: lm-evaluation-harness's acc_bytes (its acc_norm divides by
             characters instead)
  margin     log-likelihood of the gold choice minus that of the best other choice, in nats, averaged
             over the examples: > 0 exactly where acc counts a hit, and it moves before accuracy does
  gold_bpb   bits per byte of the gold choice after its context: its nats summed over the examples,
             / ln 2 / the UTF-8 bytes of its tokens as scored (the separator space included)
  acc_prior  acc of the choices scored without their context (only <|endoftext|> before them): what the
             choices' surface alone gives (a likelier word, a shorter choice), the baseline that acc must
             beat before a model can be said to read the context. Tied choices (identical texts, such as
             the one continuation of partial scoring) share the hit.
  acc_calibrated  the pick by log-likelihood after the context minus log-likelihood alone (the prior
             above) is the gold choice: accuracy with the answer prior taken out, so that a model that
             merely prefers the likelier choice gains nothing (pointwise mutual information, as in
             Holtzman et al. 2021's domain-conditional PMI, with <|endoftext|> as the domain premise)

Batching. Multiple choice runs mc_batch_size examples at a time: the prefix all their contexts share (a
chat's system prompt) once, then the rest of every context, left-padded with a mask; then each context's
keys and values are copied for each of its choices, which run together, right-padded (the KV cache and
padding are evaluation/inference.py's). Generation runs gen_batch_size prompts at a time with
inference.generate_batch, the loop sample.py uses. Examples are sorted by length before they are batched
(little padding) and their results put back in file order; no score depends on the batch size
(tests/test_benchmarks.py checks it against one example at a time).
"""

import json
import math
import os
import random

import numpy as np
import torch
import torch.nn.functional as F

from evaluation import inference, metrics
from pipeline import documents, runtime
from pipeline.chat import ANSWER_SPACE, render_prompt

MC_METRICS = ("acc", "acc_prior", "acc_calibrated", "acc_bytes", "margin", "gold_bpb")
GEN_METRICS = ("exact", "f1", "rouge_l", "chrf", "bleu", "spbleu")


# ---- task files -------------------------------------------------------------------------------------

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
        return (f"example is task={ex['task']!r} lang={ex['lang']!r} kind={ex['kind']!r}; the manifest expects "
                f"{task!r} {lang!r} {kind!r}")
    if kind == "mc" and "contexts" in ex:
        contexts, label = ex["contexts"], ex.get("label")
        if "context" in ex or "choices" in ex:
            return "a partial-scoring example has 'contexts' and 'continuation', not 'context' or 'choices'"
        if not isinstance(contexts, list) or len(contexts) < 2 or not all(isinstance(c, str) and c for c in contexts):
            return "'contexts' must be a list of at least 2 non-empty strings"
        if not isinstance(ex.get("continuation"), str) or not ex["continuation"].strip():
            return "'continuation' must be a non-empty string"
        if not isinstance(label, int) or isinstance(label, bool) or not 0 <= label < len(contexts):
            return f"label {label!r} is out of range for {len(contexts)} contexts (an index 0..{len(contexts) - 1})"
    elif kind == "mc":
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
    manifest = documents.read_manifest(tasks_dir)
    available = manifest.get("tasks", {})
    for name in names:
        if name not in available:
            runtime.fail(f"unknown task '{name}' ({tasks_dir}/manifest.json lists: {', '.join(available) or 'none'})")
    tasks = {}
    for name in names or list(available):
        spec = available[name]
        if spec.get("kind") not in ("mc", "gen"):
            runtime.fail(f"{tasks_dir}/manifest.json: task {name} has kind {spec.get('kind')!r}, "
                         "expected 'mc' or 'gen'")
        files = {lang: path for lang, path in spec["files"].items() if not langs or lang in langs}
        tasks[name] = {"kind": spec["kind"], "metric": spec.get("metric", "acc" if spec["kind"] == "mc" else "f1"),
                       "spbleu": name == "flores",  # FLORES-200's own metric, beside BLEU and chrF
                       "langs": {lang: read_task_file(os.path.join(tasks_dir, path), name, lang, spec["kind"])
                                 for lang, path in files.items()}}
    return tasks


# ---- prompts ----------------------------------------------------------------------------------------

def pick_demos(pool, example, k, seed):
    """k other examples of the pool, fixed by (seed, task, id): parallel languages get the same ones."""
    others = [e for e in pool if e["id"] != example["id"]]
    rng = random.Random(f"{seed}:{example['task']}:{example['id']}")
    return rng.sample(others, min(k, len(others)))


def _delimiter(example, question, answer, spaces):
    # Multiple choice: a choice continues its context as it is (docs/protocol.md: context + choice is the string
    # scored, the separator is in the choice). Generation: answers carry no leading space, so a " " goes
    # between a demonstration's prompt and its answer, as lm-evaluation-harness does; not without spaces.
    if example["kind"] == "mc" or not spaces or question[-1:].isspace() or answer[:1].isspace():
        return ""
    return " "


def _question(e):
    return e["prompt"] if e["kind"] == "gen" else e["contexts"][e["label"]] if "contexts" in e else e["context"]


def _answer(e):
    return e["answers"][0] if e["kind"] == "gen" else e["continuation"] if "contexts" in e else e["choices"][e["label"]]


def plain_prompt(example, demos, spaces):
    """The text of a plain prompt: the demonstrations (question, then its answer), separated by blank
    lines, then the example's question."""
    shots = "".join(_question(d) + _delimiter(d, _question(d), _answer(d), spaces) + _answer(d) + "\n\n" for d in demos)
    return shots + _question(example)


def build_prompt(tok, example, demos, chat, spaces):
    """The ids of a prompt: plain_prompt after <|endoftext|>, or in a chat the demonstrations as earlier
    turns of a ChatML conversation."""
    if chat:  # render puts one space before an assistant's answer, whatever space a plain continuation carries
        turns = [m for d in demos for m in ({"role": "user", "content": _question(d)},
                                            {"role": "assistant", "content": _answer(d).lstrip()})]
        return render_prompt(tok, turns + [{"role": "user", "content": _question(example)}])
    return [tok.eot_id] + tok.encode(plain_prompt(example, demos, spaces))


def choice_texts(example, chat):
    """The text scored for each choice (under partial scoring, the one continuation after each context): an
    assistant's answer starts with the one space chat.render puts before every assistant content."""
    texts = [example["continuation"]] * len(example["contexts"]) if "contexts" in example else example["choices"]
    return [ANSWER_SPACE + c.lstrip() if chat else c for c in texts]


def encode_pairs(tok, context, continuations):
    """(context ids, [continuation ids]) as lm-evaluation-harness encodes a context and its continuations:
    the context's trailing whitespace moves onto each continuation; context + continuation is encoded as
    one string, and the continuation's ids are the ones after as many ids as the context has alone. In a
    script written without spaces a token can span the boundary: encoding a choice apart would give it
    tokens that training, which saw the whole text, never gave it. The context keeps its own ids, so a
    boundary token scored with the choice can repeat the context's last characters, as in the harness."""
    kept = context.rstrip()
    context_ids = tok.encode(kept)
    split = []
    for continuation in continuations:
        ids = tok.encode(context + continuation)[len(context_ids):]
        # a token over the boundary can leave the whole no longer than the context alone: then the
        # continuation has no ids of its own, and is encoded apart (with the moved whitespace)
        split.append(ids or tok.encode(context[len(kept):] + continuation))
    return context_ids, split


def scoring_items(tok, example, demos, chat, spaces):
    """(context ids, [choice ids]) pairs whose log-likelihoods, in order, are the example's choice scores:
    its one context with every choice, or under partial scoring every context with the continuation."""
    texts = choice_texts(example, chat)
    if "contexts" in example:
        return [_scoring_item(tok, {**example, "contexts": [c], "label": 0}, demos, chat, spaces, texts[:1])
                for c in example["contexts"]]
    return [_scoring_item(tok, example, demos, chat, spaces, texts)]


def _scoring_item(tok, example, demos, chat, spaces, texts):
    if chat:  # render encodes an assistant's content apart from the turn's header: training saw these tokens
        return build_prompt(tok, example, demos, chat, spaces), [tok.encode(t) for t in texts]
    context, choices = encode_pairs(tok, plain_prompt(example, demos, spaces), texts)
    return [tok.eot_id] + context, choices


def stop_ids(tok, chat):
    """A chat answer ends at <|im_end|>; a plain one at the end of its line (any token holding a newline)."""
    stops = {tok.eot_id, tok.im_start_id, tok.im_end_id}
    if not chat:
        stops |= {i for i in range(tok.n_vocab) if b"\n" in tok.token_bytes(i)}
    return stops


def answer_budget(example, block_size, most=0):
    """New tokens for one generative answer: twice the UTF-8 bytes of its longest reference, plus two
    (a leading space, and the stop token, which counts). A token holds at least one byte, so every
    vocabulary has room for an answer twice the reference's length; a fixed number of tokens would cut
    the answers of the smaller vocabulary (more tokens per byte) first, and long answers (summaries,
    translations) of every model. At most half the block, so that the prompt keeps the other half; at
    most `most` tokens when it is > 0 (a cheap run)."""
    budget = min(2 * max(len(a.encode("utf-8")) for a in example["answers"]) + 2, block_size // 2)
    return min(budget, most) if most > 0 else budget


# ---- scoring ----------------------------------------------------------------------------------------

@torch.no_grad()
def score_choices(model, contexts, choices, batch_size):
    """Log-likelihood (nats) of every choice after its context: contexts [[ids]], choices [[[ids]]] (the
    choices of each example) -> [[float]]. A context is cut on the left so that it and its longest choice
    fit in the block, as lm-evaluation-harness cuts it; a choice as long as the block raises ValueError."""
    block = model.config.block_size
    for cs in choices:
        if max(len(c) for c in cs) >= block:
            raise ValueError(f"a choice of {max(len(c) for c in cs)} tokens leaves no room for its context in "
                             f"block_size={block}")
    contexts = [ctx[-(block - max(len(c) for c in cs)):] for ctx, cs in zip(contexts, choices)]
    order = sorted(range(len(contexts)), key=lambda e: -len(contexts[e]))  # similar lengths share a batch
    scores = [None] * len(contexts)
    for first in range(0, len(order), batch_size):
        batch = order[first:first + batch_size]
        for e, ll in zip(batch, _score_batch(model, [contexts[e] for e in batch], [choices[e] for e in batch])):
            scores[e] = ll
    return scores


def _score_batch(model, contexts, choices):
    device = model.wte.weight.device
    # every choice of every example, right-padded, after a copy of its context's keys and values
    flat = [c for cs in choices for c in cs]
    n = max(len(c) for c in flat)
    cache, last = inference.prefill(model, contexts, room=n - 1)  # last: [examples, C], predicts each choice's first
    owner = torch.tensor([e for e, cs in enumerate(choices) for _ in cs], device=device)
    targets = torch.tensor([c + [0] * (n - len(c)) for c in flat], device=device)
    counted = torch.tensor([[k < len(c) for k in range(n)] for c in flat], device=device)
    hidden = last[owner][:, None]
    if n > 1:  # token t of a choice predicts token t + 1; its last token predicts nothing we need
        states = inference.last_hidden_state(model, targets[:, :-1], cache.select(owner), counted[:, :-1])
        hidden = torch.cat([hidden, states], dim=1)  # [choices, n, C]
    logits = model.head(hidden[counted]).float()  # only what counts
    token_ll = torch.zeros(counted.shape, device=device)
    token_ll[counted] = -F.cross_entropy(logits, targets[counted], reduction="none")  # log p(token), fused
    ll = token_ll.sum(1).tolist()
    out, k = [], 0
    for cs in choices:
        out.append(ll[k:k + len(cs)])
        k += len(cs)
    return out


def score_alone(model, tok, choice_lists, batch_size):
    """{choice ids (a tuple): log-likelihood after <|endoftext|> alone} of every distinct choice of the
    lists: a choice's score does not depend on its example, so each is scored once (a task whose examples
    share their choices, as NLI's, costs almost nothing), in groups of the choices each list adds."""
    seen, groups = set(), []
    for choices in choice_lists:
        new = [c for c in dict.fromkeys(map(tuple, choices)) if c not in seen]
        seen.update(new)
        groups += [new] if new else []
    scores = score_choices(model, [[tok.eot_id]] * len(groups), [[list(c) for c in group] for group in groups],
                           batch_size)
    return {c: s for group, group_scores in zip(groups, scores) for c, s in zip(group, group_scores)}


def run_multiple_choice(model, tok, examples, pool, cfg, chat, spaces, autocast):
    """({metric: value}, picks) of one task in one language: see the module docstring for the metrics.
    picks[i] = (pick by acc, pick by acc_bytes, pick by acc_calibrated), None for an example whose longest
    choice fills the block."""
    items = [scoring_items(tok, ex, pick_demos(pool, ex, cfg.shots, cfg.seed), chat, spaces) for ex in examples]
    # acc_prior scores the choices after <|endoftext|> alone: it starts every prompt of every task, plain
    # or chat. An answer delimiter would differ by task, and the lab's tasks have none (a choice continues
    # its context's sentence). An empty context: encode_pairs encodes each choice as it stands.
    alone = [encode_pairs(tok, "", choice_texts(ex, chat))[1] for ex in examples]
    longest = [max(len(c) for _, cs in its + [([], choices)] for c in cs) for its, choices in zip(items, alone)]
    fits = [i for i, n in enumerate(longest) if n < model.config.block_size]
    flat = [item for i in fits for item in items[i]]
    with autocast:
        flat_ll = score_choices(model, [ctx for ctx, _ in flat], [cs for _, cs in flat], cfg.mc_batch_size)
        prior_ll = score_alone(model, tok, [alone[i] for i in fits], cfg.mc_batch_size)
    logliks, k = [], 0
    for i in fits:  # each example's choice scores, its items' put back together
        logliks.append([s for ll in flat_ll[k:k + len(items[i])] for s in ll])
        k += len(items[i])
    byte_lengths = tok.token_byte_lengths()
    picks, margins, gold_nats, gold_bytes, prior_hits = [None] * len(examples), [], 0.0, 0, 0.0
    for i, ll in zip(fits, logliks):
        ex, gold = examples[i], examples[i]["label"]
        per_byte = [s / max(1, len(c.strip().encode("utf-8"))) for s, c in zip(ll, choice_texts(ex, chat))]
        prior = [prior_ll[tuple(c)] for c in alone[i]]
        calibrated = [s - p for s, p in zip(ll, prior)]
        picks[i] = (int(np.argmax(ll)), int(np.argmax(per_byte)), int(np.argmax(calibrated)))
        margins.append(ll[gold] - max(s for j, s in enumerate(ll) if j != gold))
        gold_nats -= ll[gold]
        gold_bytes += int(byte_lengths[[c for _, cs in items[i] for c in cs][gold]].sum())
        best = [j for j, s in enumerate(prior) if s == max(prior)]
        prior_hits += (gold in best) / len(best)  # tied choices share the hit
    scored = [(p, ex["label"]) for p, ex in zip(picks, examples) if p is not None]
    if not scored:
        return {metric: None for metric in MC_METRICS}, picks
    return {"acc": sum(p[0] == label for p, label in scored) / len(scored),
            "acc_prior": prior_hits / len(scored),
            "acc_calibrated": sum(p[2] == label for p, label in scored) / len(scored),
            "acc_bytes": sum(p[1] == label for p, label in scored) / len(scored),
            "margin": sum(margins) / len(margins),
            "gold_bpb": gold_nats / math.log(2) / max(1, gold_bytes)}, picks


def run_generation(model, tok, examples, pool, cfg, chat, spaces, autocast, stops, lang, spbleu):
    """({metric: value}, answers) of one generative task in one language (`lang` picks the word metrics'
    normalisation; spbleu adds FLORES-200's spBLEU)."""
    block = model.config.block_size
    budgets = [answer_budget(ex, block, cfg.gen_tokens) for ex in examples]
    prompts = [build_prompt(tok, ex, pick_demos(pool, ex, cfg.shots, cfg.seed), chat, spaces)[-(block - budget):]
               for ex, budget in zip(examples, budgets)]  # a prompt too long loses its start
    order = sorted(range(len(prompts)), key=lambda i: -len(prompts[i]))  # similar lengths share a batch
    outputs = [None] * len(examples)
    specials = (tok.eot_id, tok.im_start_id, tok.im_end_id)
    for first in range(0, len(order), cfg.gen_batch_size):
        batch = order[first:first + cfg.gen_batch_size]
        with autocast:
            new = inference.generate_batch(model, [prompts[i] for i in batch], [budgets[i] for i in batch],
                                           stop_ids=stops)
        for i, ids in zip(batch, new):
            text = tok.decode([t for t in ids if t not in specials])
            outputs[i] = (text if chat else text.split("\n")[0]).strip()  # a plain answer is its first line
    return metrics.score_generations(outputs, [ex["answers"] for ex in examples], spaces, lang, spbleu), outputs


def run_task(model, tok, task, examples, pool, cfg, chat, spaces, autocast, stops, lang):
    """The scores of one task in one language ({metric: value}) and the model's picks or answers."""
    if task["kind"] == "mc":
        return run_multiple_choice(model, tok, examples, pool, cfg, chat, spaces, autocast)
    return run_generation(model, tok, examples, pool, cfg, chat, spaces, autocast, stops, lang, task["spbleu"])
