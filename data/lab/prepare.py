"""
Write the built-in multilingual lab: text in every language, benchmarks in every language, English
instruction data and a manifest (layout in data/lab/README.md).

    python data/lab/prepare.py [--seed 1337] [--out out/lab] [--mb_per_lang 1.0] [--examples_per_task 500]

Same seed -> byte-identical files; another seed -> other words, names and facts. Regenerating into an
existing folder rewrites every file atomically (temp file + rename), so it is idempotent.
"""

import argparse
import json
import math
import random
import re
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tqdm import tqdm

from data.lab import world as W
from data.lab.items import QUESTION_TYPES, cloze_item, copa_pair, fact_passage, nli_item, passage, passage_question
from data.lab.languages import LANGS, build_languages
from data.lab.leaks import Snippets, Verbatim
from data.lab.scripts import CIPHER_LETTERS
from data.lab.stories import story
from pipeline.documents import atomic_open, fail

VERSION = 5  # 5: task exercises in English only (design B of data/lab/README.md), translated instructions, lexicon.json
# task -> (kind, metric, number of choices). No translation task: the lab has no parallel text and the
# instructions no translation, so no model could learn one (data/lab/README.md, Benchmarks)
TASKS = {"lab_copa": ("mc", "acc", 2), "lab_nli": ("mc", "acc", 3), "lab_cloze": ("mc", "acc", 2),
         "lab_read": ("mc", "acc", 4), "lab_qa": ("gen", "f1", 0)}
NLI_WORDS = ["yes", "maybe", "no"]  # label 0 entailed, 1 unknown, 2 contradicted
VAL_FRACTION = 0.08
# What carries meaning across languages, as in real corpora (data/lab/README.md, "Cross-lingual channels");
# the defaults are the design the screen chose. exercise_langs: the languages whose text has exercises
# ("all": every one); parallel: share of bilingual documents (English, then the same in the language);
# code_switch: share of nouns written as the English word; word_orders: {code: order} changed from
# languages.LANGS; cognates: {code: share of its words from English}; latin_names, ascii_digits,
# english_scaffold (Question/Answer): the same in every script; relexify: languages replaced by English
# relexified in their script (languages.Relexified: the instrument's maximal channel, a positive control).
# parallel and code_switch are in the training text of every language but English; held-out text and
# benchmarks are the language alone.
DESIGN = dict(exercise_langs=["en"], parallel=0.0, code_switch=0.0, word_orders={}, cognates={}, latin_names=False,
              ascii_digits=False, english_scaffold=False, relexify=[])


# ---- text: stories, facts and exercises --------------------------------------------------------

def document(rng, w, lang, exercises=True):
    """One document (never a blank line inside): a story, facts, or an exercise with its answers (without
    exercises: stories and facts in the same proportion to each other)."""
    r = rng.random() * (1.0 if exercises else 0.75)
    if r < 0.6:
        return "\n".join(lang.text(story(rng, w)) for _ in range(rng.choice((1, 1, 2))))
    if r < 0.75:
        lines = []
        for x in rng.sample(list(W.ANIMALS), rng.randint(1, 3)):
            facts = w.animal_facts(x)
            rng.shuffle(facts)
            lines.append(lang.text(facts[:rng.randint(2, 4)]))
        if rng.random() < 0.5:
            lines.append(lang.text(w.food_facts(rng.choice(W.CATEGORIES["food"]))))
        return "\n".join(lines)
    if r < 0.825:  # a passage about people and three questions, or facts about animals and one question
        sents, info = passage(rng)
        lines = [lang.text(sents)]
        for qtype in rng.sample(QUESTION_TYPES, 3):
            q, options, right, _ = passage_question(info, qtype, rng.randrange(4))
            lines.append(lang.ask(q) + lang.sep + lang.np(options[right]))
        return "\n".join(lines)
    if r < 0.9:
        sents, question, options, right = fact_passage(rng, w)
        return lang.text(sents) + "\n" + lang.ask(question) + lang.sep + lang.np(options[right])
    label = rng.randrange(3)
    premise, hyp = nli_item(rng, w, label)
    return lang.text(premise) + "\n" + lang.ask(hyp) + lang.sep + lang.word(NLI_WORDS[label])


def text_file(rng, w, lang, n_bytes, held_out, exercises=True, parallel=0.0, en=None):
    """Documents up to n_bytes; one that contains a benchmark item with its answer (`held_out`, a
    Verbatim of them) is dropped, so that no benchmark item is in any text a model trains on. A share
    `parallel` of the documents are bilingual: the document in English (`en`), then the same in lang."""
    docs, size = [], -1  # the file is the documents, a blank line between two, and a final newline
    while size < n_bytes:
        bilingual = parallel and rng.random() < parallel
        state = rng.getstate()
        doc = document(rng, w, lang, exercises)
        if bilingual:  # the same draws again: languages differ in words, never in what is drawn
            rng.setstate(state)
            doc = document(rng, w, en, exercises) + "\n" + doc
        if held_out.found_in(doc):
            continue
        docs.append(doc)
        size += len(doc.encode("utf-8")) + 2
    return "\n\n".join(docs) + "\n"


# ---- benchmarks: meaning items (language-neutral), then one rendering per language ---------------

def _place(right, others, label):
    out = list(others)
    out.insert(label, right)
    return out


def make_items(task, rng, w, labels, langs, drift):
    """Items of a task with the given labels: two for lab_copa (a balanced pair), else one. `drift`
    carries the word-overlap balance from item to item (items._pick); lengths are summed over langs."""
    def length(clause):
        return sum([len(lang.clause(clause)) for lang in langs])
    label = labels[0]
    if task == "lab_copa":
        conj = rng.choice(["so", "because"])
        pair = copa_pair(rng, conj, drift)
        return [(premise, conj, _place(right, [wrong], lab), lab) for (premise, right, wrong), lab in zip(pair, labels)]
    if task == "lab_nli":
        premise, hyp = nli_item(rng, w, label)
        return [(premise, hyp, label)]
    if task == "lab_cloze":
        sents, right, wrong = cloze_item(rng, w, length, drift)
        return [(sents, _place(right, [wrong], label), label)]
    if task == "lab_qa":
        sents, info = passage(rng)
        q, options, right, role = passage_question(info, rng.choice(QUESTION_TYPES), rng.randrange(4))
        return [(sents, q, options[right], role)]
    if task == "lab_read":
        sents, q, options, right = fact_passage(rng, w)
        others = options[:right] + options[right + 1:]
        rng.shuffle(others)
        return [(sents, q, _place(options[right], others, label), label)]
    raise ValueError(f"unknown task {task}")


def render(task, lang, item):
    """An item as one benchmark example (without task/lang/id) in a language."""
    sep = lang.sep
    if task == "lab_copa":
        premise, conj, alts, label = item
        context = lang.cap(lang.clause(premise)) + lang.comma + sep + lang.word(conj)
        return {"context": context, "choices": [sep + lang.clause(c) + lang.period for c in alts], "label": label}
    if task == "lab_nli":
        premise, hyp, label = item
        return {"context": lang.text(premise) + "\n" + lang.ask(hyp),
                "choices": [sep + lang.word(x) for x in NLI_WORDS], "label": label}
    if task == "lab_cloze":
        sents, endings, label = item
        return {"context": lang.text(sents), "choices": [sep + lang.sentence(e) for e in endings], "label": label}
    if task == "lab_read":
        sents, q, options, label = item
        return {"context": lang.text(sents) + "\n" + lang.ask(q), "choices": [sep + lang.np(o) for o in options],
                "label": label}
    sents, q, answer, role = item  # lab_qa
    answers = [lang.np(answer), lang.np(answer, role)]
    return {"prompt": lang.text(sents) + "\n" + lang.ask(q), "answers": sorted(set(answers), key=answers.index)}


def answered(task, lang, item):
    """An item's context with each right answer after it, as an exercise in the text would say it."""
    ex = render(task, lang, item)
    if "choices" in ex:
        return [ex["context"] + ex["choices"][ex["label"]]]
    return [ex["prompt"] + lang.sep + answer for answer in ex["answers"]]


def passage_text(task, lang, item):
    """The text an eval item is about, in a language: what instruction data must never contain."""
    if task == "lab_copa":
        return render(task, lang, item)["context"]
    return lang.text(item[0])


def balanced_labels(rng, n, k):
    """n labels of k choices in shuffled blocks of k (each block holds every label once): the first m
    labels are balanced for every m, as nearly as m allows, so the first items a run evaluates are too."""
    labels = []
    while len(labels) < n:
        block = list(range(k))
        rng.shuffle(block)
        labels += block
    return labels[:n]


def eval_items(task, seed, w, langs, n):
    """n distinct items, with balanced labels for a multiple-choice task (balanced_labels)."""
    en, rng = langs[0], random.Random(f"lab/eval/{seed}/{task}")
    k = TASKS[task][2]
    labels = balanced_labels(rng, n, k) if k else [None] * n
    items, seen, drift = [], set(), [0, 0, 0]
    while len(items) < n:
        batch = make_items(task, rng, w, labels[len(items):len(items) + 2], langs, drift)
        keys = [json.dumps(render(task, en, item)) for item in batch]
        if seen.isdisjoint(keys) and len(set(keys)) == len(keys):  # a copa pair is kept whole or not at all
            seen.update(keys)
            items += batch
    return items


# ---- instruction conversations (benchmark items held out of them by leaks.Snippets) -----------------

# the instruction line in front of a task's prompt (world.PHRASES), or none
PREFIXES = {"lab_copa": [None, "complete", "finish"], "lab_nli": [None, "yes_no_maybe"], "lab_cloze": [None, "ending"],
            "lab_read": [None, "read"], "lab_qa": [None, "answer"]}
INSTRUCTION_KINDS = list(PREFIXES) + ["facts", "story", "math"]


def conversation(rng, w, en, kind):
    """One conversation of a kind in a language (`en`: English, or its translation in another language):
    a task in the benchmark's own format, or a chat. Its draws do not depend on the language."""
    def say(user, assistant):
        return [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]

    def prefix():
        key = rng.choice(PREFIXES[kind])
        return en.phrase(key) + "\n" if key else ""
    if kind == "lab_qa":  # sometimes with a follow-up question about the same text
        sents, info = passage(rng)
        msgs = []
        for i, qtype in enumerate(rng.sample(QUESTION_TYPES, rng.choice((1, 1, 2)))):
            q, options, right, _ = passage_question(info, qtype, rng.randrange(4))
            user = prefix() + en.text(sents) + "\n" + en.ask(q) if i == 0 else en.ask(q)
            msgs += say(user, en.np(options[right]))
        return msgs
    if kind in TASKS:
        item = make_items(kind, rng, w, [rng.randrange(TASKS[kind][2])] * 2, [en], [0, 0, 0])[0]
        ex = render(kind, en, item)
        return say(prefix() + ex["context"], ex["choices"][ex["label"]].strip())
    if kind == "facts":
        x = rng.choice(list(W.ANIMALS))
        which = rng.randrange(3)
        if which == 0:
            q, a = W.clause(W.generic(x), "eat", ("obj", W.WHAT), tense="pres", q="wh"), w.animal_facts(x)[1:2]
        elif which == 1:
            q, a = W.clause(W.generic(x), "live", ("loc", W.WHERE), tense="pres", q="wh"), w.animal_facts(x)[:1]
        else:
            shop = rng.choice(W.SHOPS)
            q = W.clause(W.the(shop), "sell", ("obj", W.WHAT), tense="pres", q="wh")
            a = [W.clause(W.the(shop), "sell", ("obj", W.generic(f)), tense="pres") for f in w.sells[shop]]
        return say(en.sentence(q), en.text(a))
    if kind == "story":
        people = rng.sample(range(W.N_NAMES), rng.choice((1, 2, 3)))
        return say(en.phrase("story") + en.sep + en.names[people[0]] + en.period, en.text(story(rng, w, people)))
    # math: a count story, then how many someone has now
    p, q = rng.sample(range(W.N_NAMES), 2)
    f, n, k = rng.choice(list(W.COUNT_FOODS)), rng.randint(3, 9), rng.randint(1, 9)
    m = rng.randint(1, n - 1)
    sents = [W.clause(W.name(p), "have", ("obj", W.num(f, n))), W.clause(W.name(q), "have", ("obj", W.num(f, k))),
             W.clause(W.name(p), "give", ("obj", W.num(f, m)), ("to", W.name(q)))]
    who, now = (p, n - m) if rng.random() < 0.5 else (q, k + m)
    question = W.clause(W.name(who), "have", ("obj", W.NP("noun", f, "howmany", None, None)), tense="pres", q="wh")
    answer = W.clause(W.name(who), "have", ("obj", W.num(f, now)), tense="pres", adv="now")
    return say(en.text(sents) + " " + en.sentence(question), en.sentence(answer))


def instructions(rng, w, en, n, block, translations):
    """n English conversations and the same n translated, the k-th into the (k mod m)-th of the m
    (language, its block) translations. A conversation is dropped, in both, if either holds a benchmark
    passage of its language (block: a Snippets of them)."""
    convs, translated = [], []
    while len(convs) < n:
        kind = rng.choice(INSTRUCTION_KINDS)
        state = rng.getstate()
        msgs = conversation(rng, w, en, kind)
        lang, lang_block = translations[len(convs) % len(translations)]
        rng.setstate(state)
        msgs_translated = conversation(rng, w, lang, kind)
        if not (block.found_in("\n".join(m["content"] for m in msgs))
                or lang_block.found_in("\n".join(m["content"] for m in msgs_translated))):
            convs.append({"messages": msgs})
            translated.append({"messages": msgs_translated})
    return convs, translated


# ---- writing -------------------------------------------------------------------------------------

def write_atomic(path, text):
    with atomic_open(path) as f:
        f.write(text)


def jsonl(rows):
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


def generate(out, seed=1337, mb_per_lang=1.0, examples_per_task=500, n_instructions=None, progress=True,
             design=None):
    """Write the whole lab under `out`; returns the manifest (a dict). design: DESIGN's keys to change."""
    out = Path(out)
    n_instructions = n_instructions or 10 * examples_per_task
    design = {**DESIGN, **(design or {})}
    w, langs = W.World(seed), languages(seed, design)
    en = langs[0]
    translated_langs = [x for x in langs if x.group == "pretraining" and x is not en]
    manifest = {"name": "lab", "seed": seed, "version": VERSION, "design": design, "languages": [],
                "groups": {g: [x.code for x in langs if x.group == g]
                           for g in ("pretraining", "adapting", "other", "unseen_script")},
                "tasks": {}, "instructions": {"train": "instructions/train.jsonl", "val": "instructions/val.jsonl"},
                "instructions_translated": {"train": "instructions/translated/train.jsonl",
                                            "val": "instructions/translated/val.jsonl",
                                            "langs": [x.code for x in translated_langs]},
                "lexicon": "lexicon.json"}
    items = {task: eval_items(task, seed, w, langs, examples_per_task)
             for task in tqdm(TASKS, desc="tasks", disable=not progress)}
    for task, (kind, metric, _) in TASKS.items():
        files = {}
        for lang in langs:
            rows = [{"task": task, "lang": lang.code, "id": f"{task}-{i}", "kind": kind,
                     **render(task, lang, item)} for i, item in enumerate(items[task])]
            if kind == "gen":
                for r in rows:
                    r["metric"] = metric
            files[lang.code] = f"tasks/{task}/{lang.code}.jsonl"
            write_atomic(out / files[lang.code], jsonl(rows))
        manifest["tasks"][task] = {"kind": kind, "metric": metric, "files": files}
    train_bytes = int(mb_per_lang * 1e6)
    answers = lambda lang: [s for task in TASKS for item in items[task] for s in answered(task, lang, item)]
    english_answers = answers(en)
    for lang in tqdm(langs, desc="text", disable=not progress):
        entry = {"code": lang.code, "name": lang.label_name, "group": lang.group, "script": lang.script,
                 "word_order": lang.order, "morphology": lang.morph, "spaces": lang.spaces,
                 "sister_of": lang.sister, "train": f"text/{lang.code}/train.txt", "val": f"text/{lang.code}/val.txt"}
        exercises = "all" in design["exercise_langs"] or lang.code in design["exercise_langs"]
        channels = lang is not en and (design["parallel"] or design["code_switch"])
        # bilingual documents hold English too: none may hold an English item either
        held_out = Verbatim(answers(lang) + (english_answers if channels and design["parallel"] else []))
        for split, n_bytes in (("train", train_bytes), ("val", max(1, int(train_bytes * VAL_FRACTION)))):
            rng = random.Random(f"lab/text/{seed}/{lang.code}/{split}")
            writer, parallel = lang, 0.0
            if channels and split == "train":
                parallel = design["parallel"]
                if design["code_switch"]:
                    writer = lang.code_switching(random.Random(f"lab/switch/{seed}/{lang.code}"), design["code_switch"])
            write_atomic(out / entry[split], text_file(rng, w, writer, n_bytes, held_out, exercises, parallel, en))
        manifest["languages"].append(entry)
    block = lambda lang: Snippets([passage_text(task, lang, item) for task in TASKS for item in items[task]])
    translations = [(lang, block(lang)) for lang in translated_langs]
    for split, n in (("train", n_instructions), ("val", max(20, n_instructions // 20))):
        rng = random.Random(f"lab/instructions/{seed}/{split}")
        convs, translated = instructions(rng, w, en, n, block(en), translations)
        write_atomic(out / manifest["instructions"][split], jsonl(convs))
        write_atomic(out / manifest["instructions_translated"][split], jsonl(translated))
    write_atomic(out / manifest["lexicon"], json.dumps(lexicon(langs), ensure_ascii=False) + "\n")
    write_atomic(out / "manifest.json", json.dumps(manifest, ensure_ascii=False, indent=1) + "\n")
    return manifest


def lexicon(langs):
    """{lang: {concept: its word}} for every noun, verb and adjective: the lab knows its dictionary exactly
    (the word probe, evaluation/probe.py, reads it)."""
    concepts = list(dict.fromkeys([*W.NOUNS, *W.VERBS, *W.ADJECTIVES]))
    return {lang.code: {c: lang.lexeme(c) for c in concepts} for lang in langs}


def languages(seed, design):
    return build_languages(seed, design["word_orders"], design["cognates"], design.get("relexify", ()),
                           latin_names=design["latin_names"], ascii_digits=design["ascii_digits"],
                           english_scaffold=design["english_scaffold"])


def show(seed, n, design):
    """Print the same few sentences in every language (the table of data/lab/README.md)."""
    w, langs = W.World(seed), languages(seed, design)
    sents = story(random.Random(f"lab/show/{seed}"), w, n_events=n)
    for lang in langs:
        print(f"| {lang.code} | {lang.text(sents)} |")


def design_from(args):
    """DESIGN's values from the command line, each checked."""
    codes = {spec[0] for spec in LANGS}
    langs = [x for x in args.exercise_langs.split(",") if x]
    if not set(langs) <= codes | {"all"}:
        fail(f"--exercise_langs: unknown language(s) {', '.join(sorted(set(langs) - codes - {'all'}))}")
    for key in ("parallel", "code_switch"):
        if not 0 <= getattr(args, key) <= 1:
            fail(f"--{key} must be a share between 0 and 1 (got {getattr(args, key)})")
    orders = dict(x.partition("=")[::2] for x in args.word_orders.split(",") if x)
    for code, order in orders.items():
        if code not in codes - {"en"} or order not in ("SVO", "SOV", "VSO"):
            fail(f"--word_orders: '{code}={order}' is not a constructed language's code = SVO, SOV or VSO")
    cognates = dict(x.partition("=")[::2] for x in args.cognates.split(",") if x)
    latin = {spec[0] for spec in LANGS if spec[3] == "Latin" and spec[7] is None} - {"en"}
    for code, share in cognates.items():
        if code not in latin or not re.fullmatch(r"0?\.\d+|[01]", share):
            fail(f"--cognates: '{code}={share}' is not a Latin-script language without a parent = a share")
        cognates[code] = float(share)
    relexify = [x for x in args.relexify.split(",") if x]
    cipherable = {spec[0] for spec in LANGS if spec[3] in CIPHER_LETTERS} - {"en"}
    if not set(relexify) <= cipherable:
        fail(f"--relexify: {', '.join(sorted(set(relexify) - cipherable))} is not a constructed language in "
             f"{' or '.join(CIPHER_LETTERS)} script")
    return dict(exercise_langs=langs, parallel=args.parallel, code_switch=args.code_switch, word_orders=orders,
                cognates=cognates, latin_names=bool(args.latin_names), ascii_digits=bool(args.ascii_digits),
                english_scaffold=bool(args.english_scaffold), relexify=relexify)


def main(argv=None):
    ap = argparse.ArgumentParser(description="Generate the built-in multilingual lab (text, benchmarks, instructions).")
    ap.add_argument("--seed", type=int, default=1337, help="same seed, same bytes; another seed, another lab")
    ap.add_argument("--out", default="out/lab", help="output folder (created; files in it are rewritten)")
    ap.add_argument("--mb_per_lang", type=float, default=1.0, help="train text per language, in MB (1e6 bytes); "
                    f"val is {VAL_FRACTION * 100:g}%% of it")
    ap.add_argument("--examples_per_task", type=int, default=500, help="examples per task and language")
    ap.add_argument("--instructions", type=int, default=None, help="English instruction conversations "
                    "(default 10 x examples_per_task); val has 1/20 of that (at least 20)")
    ap.add_argument("--show", type=int, default=0, metavar="N", help="only print a story of N events in every language")
    ap.add_argument("--progress", type=int, default=1, help="1: show progress bars")
    d = DESIGN  # the cross-lingual channels (data/lab/README.md, "Cross-lingual channels")
    ap.add_argument("--exercise_langs", default=",".join(d["exercise_langs"]),
                    help="languages whose text has task exercises, comma-separated, or 'all'")
    ap.add_argument("--parallel", type=float, default=d["parallel"], help="share of bilingual documents (English, "
                    "then the same in the language) in every other language's training text")
    ap.add_argument("--code_switch", type=float, default=d["code_switch"], help="share of nouns in every other "
                    "language's training text written as the English word")
    ap.add_argument("--word_orders", default=",".join(f"{k}={v}" for k, v in d["word_orders"].items()),
                    help="word orders changed from languages.py's, e.g. qcy=SVO,qla=SVO")
    ap.add_argument("--cognates", default=",".join(f"{k}={v}" for k, v in d["cognates"].items()),
                    help="share of a Latin-script language's words taken from English, e.g. qla=0.3")
    ap.add_argument("--relexify", default=",".join(d["relexify"]), help="languages replaced by English "
                    "relexified in their script (same grammar, each word ciphered), e.g. qcy: a positive control")
    for key, what in (("latin_names", "person names in Latin letters in every language"),
                      ("ascii_digits", "digits 0-9 in every script"),
                      ("english_scaffold", "the Question:/Answer: words in English in every language")):
        ap.add_argument(f"--{key}", type=int, choices=(0, 1), default=int(d[key]), help=f"1: {what}")
    args = ap.parse_args(argv)
    design = design_from(args)
    if args.show < 0:
        fail(f"--show must be a positive number of events (got {args.show})")
    if args.show:
        return show(args.seed, args.show, design)
    if not (math.isfinite(args.mb_per_lang) and args.mb_per_lang > 0):
        fail(f"--mb_per_lang must be a positive number (got {args.mb_per_lang})")
    for key in ("examples_per_task", "instructions"):
        value = getattr(args, key)
        if value is not None and value <= 0:
            fail(f"--{key} must be a positive integer (got {value})")
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write_test.tmp"
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        fail(f"cannot write to the output folder {out}: {e.strerror or e}")
    manifest = generate(out, args.seed, args.mb_per_lang, args.examples_per_task, args.instructions,
                        bool(args.progress), design)
    print(f"wrote {out}: {len(manifest['languages'])} languages, {len(manifest['tasks'])} tasks, manifest.json")
    return manifest


if __name__ == "__main__":
    main()
