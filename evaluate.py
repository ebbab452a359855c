"""
Stage 4: evaluation of several models side by side, in the shape of the paper's tables (docs/method.md).

    python evaluate.py config/lab.py --models Baseline=out/baseline BA=out/ba AFA=out/afa
    python evaluate.py --models A=out/a --tasks lab_copa --shots=4 --out=out/report/results.json

For every model (each with its own tokenizer) and every language of the manifest:
  1. bits per byte on held-out text, and perplexity beside it (named by its vocabulary: perplexities of
     different vocabularies count different tokens and are never compared);
  2. self-similarity per layer (Ethayarajh 2019): raw (self_sim), the anisotropy baseline of pairs of
     different words (anisotropy) and raw minus baseline (self_sim_adjusted); selfsim.py defines each
     and what a word is;
  3. the benchmarks (benchmarks.py): multiple choice by log-likelihood (acc, its answer prior acc_prior,
     acc_bytes, and the continuous margin and gold_bpb), generation by greedy decoding (exact, F1,
     ROUGE-L, chrF, BLEU; see metrics.py);
  4. with --probe, the retrieval probe (probe.py): per layer and language, how often English passages
     and their translations are each other's nearest neighbours; results.json's "probe".
Every number is averaged per language group (μ_pretraining, μ_adapting, μ_other, and any other group of
the manifest, such as the lab's unseen_script) and over the languages of the paper's three groups
(μ_overall), written to results.json, and printed as markdown tables (also written to results.md).
results.json's "details" keep, per model, task and language, each example's output, and for multiple choice
whether each was right ("correct") and two chance levels (item_record): report.py pairs items with them.
"""

import math
import os
import sys
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from tqdm import tqdm

from evaluation import metrics, probe
from evaluation.benchmarks import GEN_METRICS, MC_METRICS, load_tasks, run_task, stop_ids
from evaluation.selfsim import language_self_sim, self_sim_sample
from pipeline import common, documents, runtime
from pipeline.documents import read_documents
from tokenizer import Tokenizer


@dataclass
class EvaluateConfig:
    """Stage 4: bits per byte, perplexity, self-similarity and benchmarks of several models, side by side."""
    models: list[str] = field(default_factory=list)  # NAME=out_dir ... (the columns of every table, in this order)
    data_dir: str = "out/lab"  # manifest.json with the languages, their groups and held-out (val) text
    tasks_dir: str = ""  # folder whose manifest.json lists the benchmarks under "tasks"; empty = data_dir
    langs: list[str] = field(default_factory=list)  # languages to evaluate; empty = all (the manifest's and the tasks')
    tasks: list[str] = field(default_factory=list)  # benchmarks to run; empty = every task of the manifest
    bpb: bool = True  # measure bits per byte and perplexity
    self_sim: bool = True  # measure self-similarity per layer
    benchmarks: bool = True  # run the benchmarks
    probe: bool = False  # the retrieval probe (evaluation/probe.py) on probe_task's first max_examples passages
    probe_task: str = "lab_read"  # its parallel passages: item k has one meaning in every language
    bpb_bytes: int = 16384  # held-out UTF-8 bytes per language for bits per byte (same text for every model); 0 = all
    sim_bytes: int = 8192  # held-out UTF-8 bytes per language sampled for self-similarity
    min_count: int = 4  # self-similarity counts a word that occurs at least this many times in the sample
    max_examples: int = 0  # examples per task and language (the first ones of the file); 0 = all
    shots: int = 0  # demonstrations in each prompt, drawn from other examples of the same task and language
    chat: str = "auto"  # ChatML prompts: auto (finetuned or spliced checkpoints), true or false
    gen_tokens: int = 0  # most new tokens per generative answer; 0 = sized by its reference (benchmarks.answer_budget)
    batch_size: int = 16  # windows per batch for bits per byte and self-similarity
    mc_batch_size: int = 32  # multiple-choice examples per forward pass (all their choices together)
    gen_batch_size: int = 32  # prompts generated together
    out: str = "out/report/results.json"  # results.json; results.md is written beside it
    device: str = "auto"  # auto, cpu, cuda, cuda:N or mps
    dtype: str = "auto"  # auto (bfloat16 on CUDA, float32 elsewhere), float32, bfloat16, float16
    seed: int = 1337  # picks the few-shot demonstrations
    threads: int = 1  # CPU threads (0 = torch's default); 1 is fastest for lab-size models, above all on a busy machine
    progress: bool = True  # show progress bars


GROUPS = ("pretraining", "adapting", "other")  # the paper's language groups; "overall" is their languages


# ---- inputs: models and languages ------------------------------------------------------------------

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


# ---- tables -------------------------------------------------------------------------------------------

def group_means(per_lang, group_of, groups):
    """{group: mean of its languages, ..., "overall": mean of the languages of the paper's three groups};
    None where none has a value. A group of languages in scripts no model has seen (the lab's unseen_script)
    is reported on its own, outside μ_overall: bytes never seen cost more than 8 bits each and would
    swamp the mean of everything else."""
    means = {}
    for g in list(groups) + ["overall"]:
        values = [v for lang, v in per_lang.items() if v is not None
                  and (group_of[lang] == g or g == "overall" and group_of[lang] in GROUPS)]
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
                                                 f"{'ChatML' if v['chat'] else 'plain'} prompts)"
                                                 for m, v in info.items()) + "\n",
           "Perplexity is per token of each model's own vocabulary (V): compare models by bits per byte.\n"]
    if any(t["kind"] == "mc" for t in results["tasks"].values()):
        out.append("Multiple choice: acc picks the likeliest choice, acc_prior the likeliest with no context before "
                   "the choices (what their surface alone gives), acc_calibrated the likeliest after the context "
                   "relative to alone (the prior taken out), acc_bytes the likeliest per UTF-8 byte; margin is "
                   "the gold choice's log-likelihood minus the best other choice's (nats, mean over examples); "
                   "gold_bpb is the bits per byte of the gold choice after its context.\n")
    if "self_sim" in table:
        out.append("Self-similarity (selfsim.py): self_sim is the mean cosine between occurrences of one word, "
                   "anisotropy the baseline, the mean cosine between occurrences of two different words, "
                   "self_sim_adjusted the difference.\n")
    group_rows = [(g, f"μ_{g}") for g in list(groups) + ["overall"]]
    for metric in (m for m in table if "/layer" not in m):
        out.append(markdown_table(metric, group_rows, [(header(metric, m), table[metric][m]["groups"]) for m in models],
                                  digits(metric)))
    out.append("## Per language\n")
    rank = lambda lang: (groups.index(group_of[lang]) if group_of[lang] in groups else len(groups), lang)
    headline = (["bpb", "perplexity", "self_sim", "self_sim_adjusted"]
                + [f"{t}/{v['metric']}" for t, v in results["tasks"].items()])
    for metric in (m for m in headline if m in table):
        langs = sorted({lang for m in models for lang in table[metric][m]["langs"]}, key=rank)
        out.append(markdown_table(metric, [(lang, f"{lang} ({group_of[lang]})") for lang in langs],
                                  [(header(metric, m), table[metric][m]["langs"]) for m in models], digits(metric)))
    if any("/layer" in m for m in table):
        out.append("## Self-similarity per layer (μ_overall; layer 0 is the embedding output)\n")
        for kind in ("self_sim", "anisotropy", "self_sim_adjusted"):
            layers = sorted((int(m.split("/layer")[1]) for m in table if m.startswith(kind + "/layer")))
            columns = [(m, {k: table[f"{kind}/layer{k}"].get(m, {}).get("groups", {}).get("overall") for k in layers})
                       for m in models]
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
    manifest = documents.read_manifest(cfg.data_dir)
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
    for lang, path in documents.language_files(cfg.data_dir, text_langs, "val").items():
        val_docs[lang] = list(read_documents(path)) if os.path.isfile(path) else []
        if not val_docs[lang]:
            runtime.fail(f"language '{lang}' has no held-out text ({path} is missing or empty)")
    spaces = {lang: entries.get(lang, {}).get("spaces") is not False for lang in group_of}  # unknown: with spaces
    return groups, group_of, spaces, text_langs, val_docs


def evaluate_model(name, model, tok, chat, cfg, text_langs, samples, tasks, spaces, device, autocast):
    """Every number of one model: ({metric: {lang: value}}, details)."""
    scores, seconds = {}, {}
    details = {"bpb_bytes": {}, "self_sim_words": {}, "self_sim_occurrences": {}, "tasks": {}, "seconds": seconds}
    put = lambda metric, lang, value: scores.setdefault(metric, {}).__setitem__(lang, value)
    bar = lambda items, what: tqdm(items, desc=f"{name}: {what}", disable=not cfg.progress, dynamic_ncols=True,
                                   leave=False)
    t0 = time.time()
    for lang in bar(text_langs if cfg.bpb else [], "bits per byte"):
        val_path = documents.language_files(cfg.data_dir, [lang], "val")[lang]
        bpb, ppl, details["bpb_bytes"][lang] = language_bpb(model, tok, val_path, cfg.bpb_bytes, cfg.batch_size, device,
                                                            autocast)
        put("bpb", lang, bpb)
        put("perplexity", lang, ppl)
    seconds["bpb"], t0 = time.time() - t0, time.time()
    for lang in bar(text_langs if cfg.self_sim else [], "self-similarity"):
        sims, details["self_sim_occurrences"][lang] = language_self_sim(model, tok, samples[lang], cfg.batch_size,
                                                                        device, autocast)
        details["self_sim_words"][lang] = len(samples[lang]["words"])
        if sims is None:
            print(f"warning: {lang}: no word occurs {cfg.min_count} times in {cfg.sim_bytes} bytes of held-out text, "
                  f"so no self-similarity (raise sim_bytes or lower min_count)", file=sys.stderr)
            continue
        contextual = range(1, len(sims["self_sim"]))  # the headline leaves out layer 0: embeddings see no context
        for metric, key in (("self_sim", "self_sim"), ("anisotropy", "anisotropy"), ("self_sim_adjusted", "adjusted")):
            layers = [sims[key][i] for i in contextual]
            put(metric, lang, None if None in layers else sum(layers) / len(layers))
            for layer, value in enumerate(sims[key]):
                put(f"{metric}/layer{layer}", lang, value)
    seconds["self_sim"], t0 = time.time() - t0, time.time()
    stops = stop_ids(tok, chat) if tasks else set()
    for task_name, task in tasks.items():
        details["tasks"][task_name] = {}
        for lang, pool in bar(list(task["langs"].items()), task_name):
            examples = pool[: cfg.max_examples or None]
            task_scores, outputs = run_task(model, tok, task, examples, pool, cfg, chat, spaces[lang], autocast, stops,
                                            lang)
            for metric, value in task_scores.items():
                put(f"{task_name}/{metric}", lang, value)
            skipped = sum(o is None for o in outputs)
            if skipped:
                print(f"warning: {name}: {task_name} ({lang}): {skipped} of {len(examples)} examples skipped, a choice "
                      f"of block_size={model.config.block_size} tokens or more", file=sys.stderr)
            entry = details["tasks"][task_name][lang] = {"n": len(examples) - skipped, "skipped": skipped,
                                                         "outputs": outputs}
            if task["kind"] == "mc":
                entry.update(item_record(examples, outputs))
        seconds[task_name], t0 = time.time() - t0, time.time()
    return scores, details


def item_record(examples, picks):
    """What the report needs of a multiple-choice task in one language: "correct", one character per example
    in file order (1 right by acc, 0 wrong, - not scored), so that the report can pair items across languages
    and models, and "correct_calibrated", the same by acc_calibrated; and two chance levels over the scored
    examples: "chance", the mean of 1 / choices (guessing), and "majority", the share of the commonest label
    (answering it every time), higher when labels are unbalanced."""
    scored = [ex["label"] for ex, pick in zip(examples, picks) if pick is not None]
    correct = lambda k: "".join("-" if pick is None else str(int(pick[k] == ex["label"]))  # noqa: E731
                                for ex, pick in zip(examples, picks))
    return {"correct": correct(0), "correct_calibrated": correct(2),
            "chance": sum(1 / len(ex.get("choices") or ex["contexts"]) for ex, pick in zip(examples, picks)
                          if pick is not None) / max(1, len(scored)),
            "majority": max(map(scored.count, set(scored))) / len(scored) if scored else None}


def main(argv=None):
    cfg = runtime.parse_config(EvaluateConfig, "evaluate", argv)
    if cfg.chat not in ("auto", "true", "false"):
        runtime.fail(f"chat must be auto, true or false, not '{cfg.chat}'")
    if min(cfg.shots, cfg.max_examples, cfg.bpb_bytes, cfg.sim_bytes, cfg.gen_tokens) < 0 or cfg.min_count < 2:
        runtime.fail("shots, max_examples, bpb_bytes, sim_bytes and gen_tokens must be >= 0, and min_count >= 2")
    if min(cfg.batch_size, cfg.mc_batch_size, cfg.gen_batch_size) < 1:
        runtime.fail("batch_size, mc_batch_size and gen_batch_size must be >= 1")
    model_dirs = parse_models(cfg.models)
    device = runtime.resolve_device(cfg.device)
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    autocast = runtime.autocast_for(device, cfg.dtype)
    # every input is checked before the first model runs: a bad task file fails in seconds, not after an hour
    tasks = load_tasks(cfg.tasks_dir or cfg.data_dir, cfg.tasks, cfg.langs) if cfg.benchmarks else {}
    if any(task["spbleu"] for task in tasks.values()):
        metrics.spbleu_metric()  # the FLORES-200 sentencepiece model must be there before hours of generation
    groups, group_of, spaces, text_langs, val_docs = read_languages(cfg, tasks)
    passages = probe_passages(cfg) if cfg.probe else {}
    readers = []
    for path in model_dirs.values():
        tok, block = Tokenizer.load(os.path.join(path, "tokenizer.tiktoken")), _block_size(path)
        readers.append((tok, block, tok.token_byte_lengths()))
    samples = {lang: self_sim_sample(val_docs[lang], readers, cfg.sim_bytes, spaces[lang], cfg.min_count)
               for lang in text_langs} if cfg.self_sim else {}

    results = {"settings": {**asdict(cfg), "device": device}, "models": {}, "groups": groups, "languages": group_of,
               "tasks": {t: {"kind": v["kind"], "metric": v["metric"], "langs": list(v["langs"])}
                         for t, v in tasks.items()},
               "metrics": {}, "details": {}}
    table = {}  # metric -> model -> {"langs": {lang: value}}
    for name, path in model_dirs.items():
        t0 = time.time()
        model, tok, ckpt = runtime.load_model(path, device)
        model.eval()
        chat = ckpt["stage"] in runtime.CHAT_STAGES if cfg.chat == "auto" else cfg.chat == "true"
        results["models"][name] = {"dir": path, "stage": ckpt["stage"], "step": ckpt["step"], "vocab_size": tok.n_vocab,
                                   "n_layer": model.config.n_layer, "block_size": model.config.block_size, "chat": chat}
        scores, results["details"][name] = evaluate_model(name, model, tok, chat, cfg, text_langs, samples, tasks,
                                                          spaces, device, autocast)
        for metric, per_lang in scores.items():
            table.setdefault(metric, {})[name] = {"langs": per_lang}
        if passages:
            results.setdefault("probe", {"task": cfg.probe_task, "n": len(passages["en"]), "models": {}})
            results["probe"]["models"][name] = probe.probe(model, tok, passages, batch_size=cfg.mc_batch_size)
        print(f"{name}: evaluated in {time.time() - t0:.1f}s "
              f"({', '.join(f'{k} {v:.1f}s' for k, v in results['details'][name]['seconds'].items())})")
        del model

    for metric in sorted(table, key=lambda m: _metric_order(m, tasks)):
        results["metrics"][metric] = {m: {"langs": v["langs"], "groups": group_means(v["langs"], group_of, groups)}
                                      for m, v in table[metric].items()}
    text = report(results)
    runtime.write_json(cfg.out, results)
    md_path = os.path.splitext(cfg.out)[0] + ".md"
    with runtime.atomic_open(md_path) as f:
        f.write(text)
    print(text)
    print(f"wrote {cfg.out} and {md_path}")
    return results


def probe_passages(cfg):
    """{lang: [the probe task's first max_examples contexts]}, English and the languages asked for."""
    langs = sorted(set(cfg.langs) | {"en"}) if cfg.langs else []
    task = load_tasks(cfg.tasks_dir or cfg.data_dir, [cfg.probe_task], langs)
    passages = probe.task_passages(task, cfg.probe_task, cfg.max_examples)
    if "en" not in passages or len(passages) < 2:
        runtime.fail(f"--probe: task {cfg.probe_task} needs English and another language to retrieve from")
    return passages


def _block_size(out_dir):
    # load_checkpoint memory-maps: reading one small entry of a multi-gigabyte checkpoint loads no weights
    return runtime.load_checkpoint(out_dir)["model_config"]["block_size"]


if __name__ == "__main__":
    main(sys.argv[1:])
