"""
The multilingual benchmarks, converted into the project's benchmark JSONL (docs/protocol.md):

    <out>/tasks/<task>/<lang>.jsonl     one example per line
    <out>/manifest.json                 its "tasks" key: {task: {kind, metric, files: {lang: path}}}
    <out>/benchmarks.json               the same "tasks" fragment on its own

    python data/benchmarks/prepare.py                                  # every task, every language it has
    python data/benchmarks/prepare.py --tasks xcopa,belebele,flores --langs en,fr,sw,th

Prompts follow lm-evaluation-harness (data/benchmarks/README.md has each set's source, revision, split,
licence and prompt). Multiple choice: `context + choices[i]` is exactly the string the harness scores (the
choices carry its separator); XWinograd is scored the other way round, as the harness does: one
`continuation` after each of several `contexts`. Generation: the model continues the prompt; answers are
the references. `--tasks flores` also caches the sentencepiece model of spBLEU where sacrebleu looks for it.
Ids are shared across languages where the set is parallel (example k of XCOPA is "xcopa-k" everywhere).
Downloads are resumable and cached under <out>/raw/benchmarks; a language a set does not have is skipped
with a warning.
"""

import argparse
import csv
import hashlib
import io
import json
import os
import re
import sys
import tarfile
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)
from data.shared import (  # noqa: E402
    LANGUAGES,
    NotFound,
    atomic_open,
    fail,
    fetch,
    hf_files,
    hf_url,
    parse_codes,
    read_parquet,
    update_manifest,
    write_jsonl,
)
from pipeline.documents import flores200_spm  # noqa: E402

# lm-evaluation-harness's per-language words
XCOPA_CONNECTORS = {"et": ("sest", "seetõttu"), "ht": ("poukisa", "donk sa"), "it": ("perché", "quindi"),
                    "id": ("karena", "maka"), "qu": ("imataq", "chaymi"), "sw": ("kwa sababu", "kwa hiyo"),
                    "zh": ("因为", "所以"), "ta": ("காரணமாக", "எனவே"), "th": ("เพราะ", "ดังนั้น"),
                    "tr": ("çünkü", "bu yüzden"), "vi": ("bởi vì", "vì vậy")}  # (cause, effect)
XNLI_WORDS = {"ar": ("صحيح", "نعم", "لذا", "رقم"), "bg": ("правилно", "да", "така", "не"),
              "de": ("richtig", "Ja", "Auch", "Nein"), "el": ("σωστός", "Ναί", "Έτσι", "όχι"),
              "en": ("right", "Yes", "Also", "No"), "es": ("correcto", "Sí", "Asi que", "No"),
              "fr": ("correct", "Oui", "Aussi", "Non"), "hi": ("सही", "हाँ", "इसलिए", "नहीं"),
              "ru": ("правильно", "Да", "Так", "Нет"), "sw": ("sahihi", "Ndiyo", "Hivyo", "Hapana"),
              "th": ("ถูกต้อง", "ใช่", "ดังนั้น", "ไม่"), "tr": ("doğru", "Evet", "Böylece", "Hayır"),
              "ur": ("صحیح", "جی ہاں", "اس لئے", "نہیں"), "vi": ("đúng", "Vâng", "Vì vậy", "Không"),
              "zh": ("正确", "是的", "所以", "不是的")}  # (question word, entailment, neutral, contradiction)
PAWSX_WORDS = {"de": ("richtig", "Ja", "Nein"), "en": ("right", "Yes", "No"), "es": ("verdad", "Sí", "No"),
               "fr": ("n'est-ce pas", "Oui", "Non"), "ja": ("ですね", "はい", "いいえ"), "ko": ("맞죠", "예", "아니요"),
               "zh": ("对吧", "是", "不是")}  # (question word, yes, no)
# the harness's, letter for letter (its Arabic "context" word is "سيا", as in its xquad_ar.yaml)
XQUAD_WORDS = {"en": ("Context", "Question", "Answer"), "ar": ("سيا", "سؤال", "إجابة"),
               "de": ("Kontext", "Frage", "Antwort"), "es": ("Contexto", "Pregunta", "Respuesta"),
               "el": ("Συμφραζόμενα", "Ερώτηση", "Απάντηση"), "hi": ("प्रसंग", "सवाल", "उत्तर"),
               "ro": ("Context", "Întrebare", "Răspuns"), "ru": ("Контекст", "Вопрос", "Ответ"),
               "th": ("บริบท", "คำถาม", "คำตอบ"), "tr": ("Bağlam", "Soru", "Cevap"),
               "vi": ("Bối cảnh", "Câu hỏi", "Trả lời"), "zh": ("语境", "问题", "回答")}
XSTORYCLOZE_LANGS = ["en", "ru", "zh", "es", "ar", "hi", "id", "te", "sw", "eu", "my"]
XWINOGRAD_CODES = {"en": "en", "fr": "fr", "ja": "jp", "pt": "pt", "ru": "ru", "zh": "zh"}
MLQA_LANGS = ["en", "ar", "de", "es", "hi", "vi", "zh"]
XLSUM_NAMES = {"ar": "arabic", "bn": "bengali", "my": "burmese", "zh": "chinese_simplified", "en": "english",
               "fr": "french", "gu": "gujarati", "hi": "hindi", "id": "indonesian", "ja": "japanese", "ko": "korean",
               "mr": "marathi", "fa": "persian", "pt": "portuguese", "ru": "russian", "es": "spanish", "sw": "swahili",
               "ta": "tamil", "te": "telugu", "th": "thai", "tr": "turkish", "uk": "ukrainian", "ur": "urdu",
               "vi": "vietnamese", "am": "amharic", "yo": "yoruba"}
FLORES_CODES = {code: info[3] for code, info in LANGUAGES.items() if info[3]}
BELEBELE_LANGS = [c for c in FLORES_CODES if c != "qu"]  # Belebele covers 122 of FLORES-200's variants

# Sources, each at a fixed revision so that a rerun reads the same data. Git commits were read from the
# repositories; the Hugging Face commits are the ones other projects pin (not checked against the Hub
# from here); "main" marks a set for which we found no commit to verify (README, "Revisions").
XCOPA_COMMIT = "e2e9d7f105a758ee869cd13e0fe251ef93a29840"  # cambridgeltl/xcopa on GitHub, Feb 2021
XQUAD_COMMIT = "7d30520c717524000f0d9d2f9c10a069acd9d285"  # google-deepmind/xquad on GitHub, Nov 2021
BELEBELE_REVISION = "75b399394a9803252cfec289d103de462763db7c"  # the data/<flores code>.jsonl layout
XSTORYCLOZE_REVISION = "main"  # not verified: no commit found to pin
XWINOGRAD_REVISION = "main"  # not verified: no commit found to pin
XLSUM_REVISION = "main"  # not verified: no commit found to pin
XCOPA_URL = f"https://raw.githubusercontent.com/cambridgeltl/xcopa/{XCOPA_COMMIT}/data/{{lang}}/test.{{lang}}.jsonl"
XNLI_URL = "https://dl.fbaipublicfiles.com/XNLI/XNLI-1.0.zip"
PAWSX_URL = "https://storage.googleapis.com/paws/pawsx/x-final.tar.gz"
MLQA_URL = "https://dl.fbaipublicfiles.com/MLQA/MLQA_V1.zip"
XQUAD_URL = f"https://raw.githubusercontent.com/google-deepmind/xquad/{XQUAD_COMMIT}/xquad.{{lang}}.json"
FLORES_URL = "https://dl.fbaipublicfiles.com/nllb/flores200_dataset.tar.gz"


# ---- the two example shapes --------------------------------------------------------------------------

def mc(task, lang, id, context, choices, label):
    if not all(isinstance(c, str) and c.strip() for c in choices) or not 0 <= label < len(choices):
        raise ValueError(f"{task}/{lang} {id}: bad choices {choices!r} or label {label!r}")
    return {"task": task, "lang": lang, "id": id, "kind": "mc", "context": context, "choices": choices, "label": label}


def mc_partial(task, lang, id, contexts, continuation, label):
    """Partial scoring: the same `continuation` after each of the `contexts`; `label` is the right context."""
    if (not all(isinstance(c, str) and c.strip() for c in contexts) or not continuation.strip()
            or not 0 <= label < len(contexts)):
        raise ValueError(f"{task}/{lang} {id}: bad contexts {contexts!r}, continuation {continuation!r} "
                         f"or label {label!r}")
    return {"task": task, "lang": lang, "id": id, "kind": "mc", "contexts": contexts, "continuation": continuation,
            "label": label}


def gen(task, lang, id, prompt, answers, metric):
    answers = list(dict.fromkeys(a.strip() for a in answers if a and a.strip()))  # unique, in order
    if not answers:
        raise ValueError(f"{task}/{lang} {id}: no reference answer")
    return {"task": task, "lang": lang, "id": id, "kind": "gen", "prompt": prompt, "answers": answers, "metric": metric}


# ---- reading raw files -------------------------------------------------------------------------------

def get(raw, url, name):
    return fetch(url, os.path.join(raw, name), desc=name)


def read_jsonl(path, fields):
    with open(path, encoding="utf-8") as f:
        rows = []
        for n, line in enumerate(f, 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except ValueError as e:
                    fail(f"{path}: line {n} is not JSON ({e}); delete the file and run again")
                check_fields(path, n, rows[-1], fields)
    return rows


def read_tsv(text, name, fields, quoting=csv.QUOTE_MINIMAL):
    rows = list(csv.DictReader(io.StringIO(text), delimiter="\t", quoting=quoting))
    for n, row in enumerate(rows, 2):
        check_fields(name, n, row, fields)
    return rows


def check_fields(name, line, row, fields):
    missing = [k for k in fields if k not in row]
    if missing:
        fail(f"{name}: line {line} lacks the fields {missing} (it has {sorted(row)[:12]}); the source changed?")


def read_members(path, suffixes):
    """{suffix: text} for the members of a zip or tar archive whose names end with one of `suffixes`,
    read in one pass. A damaged archive (e.g. cut short) stops with a message naming it."""
    found = {}
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as z:
                for name in z.namelist():
                    hit = next((s for s in suffixes if name.endswith(s) and "__MACOSX" not in name), None)
                    if hit:
                        found[hit] = z.read(name).decode("utf-8")
        else:
            with tarfile.open(path) as t:
                for member in t:
                    hit = next((s for s in suffixes if member.name.endswith(s)), None)
                    if hit and member.isfile():
                        found[hit] = t.extractfile(member).read().decode("utf-8")
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError, UnicodeDecodeError) as e:
        fail(f"{path} is not a readable archive ({type(e).__name__}: {e}): delete it and run again")
    return found


def per_language(task, langs, load):
    """{lang: examples} from load(lang), skipping (with a warning) languages the source lacks (404)."""
    out = {}
    for lang in langs:
        try:
            out[lang] = load(lang)
        except NotFound as e:
            print(f"warning: {task}: no {lang} file at {e} (skipped)")
    return out


# ---- the tasks: each returns {lang: [examples]} ------------------------------------------------------

def xcopa(raw, langs):
    def load(lang):
        rows = read_jsonl(get(raw, XCOPA_URL.format(lang=lang), f"xcopa.{lang}.jsonl"),
                          ("premise", "choice1", "choice2", "question", "label", "idx"))
        cause, effect = XCOPA_CONNECTORS[lang]
        lower = lambda s: s[:1].lower() + s[1:]  # noqa: E731 - the choice continues the premise's sentence
        return [mc("xcopa", lang, f"xcopa-{r['idx']}",
                   r["premise"].strip()[:-1] + " " + (cause if r["question"] == "cause" else effect),  # drop the period
                   [" " + lower(r["choice1"]), " " + lower(r["choice2"])], int(r["label"])) for r in rows]
    return per_language("xcopa", langs, load)


def belebele(raw, langs):
    fields = ("flores_passage", "question", "mc_answer1", "mc_answer2", "mc_answer3", "mc_answer4",
              "correct_answer_num", "link", "question_number")

    def load(lang):
        code = FLORES_CODES[lang]
        rows = read_jsonl(get(raw, hf_url("facebook/belebele", f"data/{code}.jsonl", BELEBELE_REVISION),
                              f"belebele.{code}.jsonl"), fields)
        return [mc("belebele", lang,
                   f"belebele-{hashlib.sha1(r['link'].encode()).hexdigest()[:10]}-{r['question_number']}",
                   f"P: {r['flores_passage']}\nQ: {r['question'].strip()}\nA: {r['mc_answer1']}\nB: {r['mc_answer2']}\n"
                   f"C: {r['mc_answer3']}\nD: {r['mc_answer4']}\nAnswer:",  # ASCII colon: the harness's since July 2024
                   [" A", " B", " C", " D"], int(r["correct_answer_num"]) - 1) for r in rows]
    return per_language("belebele", langs, load)


def xnli(raw, langs):
    path = get(raw, XNLI_URL, "XNLI-1.0.zip")
    text = read_members(path, ["xnli.dev.tsv"]).get("xnli.dev.tsv") or fail(f"{path} has no xnli.dev.tsv")
    rows = read_tsv(text, f"{path}:xnli.dev.tsv", ("language", "gold_label", "sentence1", "sentence2", "pairID"),
                    csv.QUOTE_NONE)
    labels = {"entailment": 0, "neutral": 1, "contradiction": 2}
    out = {}
    for lang in langs:
        question, *answers = XNLI_WORDS[lang]
        out[lang] = [mc("xnli", lang, f"xnli-{r['pairID']}", f"{r['sentence1']}, {question}?",
                        [f" {a}, {r['sentence2']}" for a in answers], labels.get(r["gold_label"], -1))
                     for r in rows if r["language"] == lang]
    return out


def xstorycloze(raw, langs):
    def load(lang):
        name = f"spring2016.val.{lang}.tsv.split_20_80_eval.tsv"
        path = get(raw, hf_url("juletxara/xstory_cloze", name, XSTORYCLOZE_REVISION), f"xstorycloze.{lang}.tsv")
        with open(path, encoding="utf-8", newline="") as f:
            # read as the dataset's own loader does: by position after a header, quoted fields allowed;
            # columns: story id, four sentences, two endings, the right ending (1 or 2)
            rows = list(csv.reader(f, delimiter="\t", quotechar='"', skipinitialspace=True))[1:]
        bad = [n for n, r in enumerate(rows, 2) if r and (len(r) != 8 or r[7].strip() not in ("1", "2"))]
        if bad:
            fail(f"{path}: line {bad[0]} is not 8 tab-separated fields ending in 1 or 2; the source changed?")
        return [mc("xstorycloze", lang, f"xstorycloze-{r[0]}", " ".join(r[1:5]), [" " + r[5], " " + r[6]],
                   int(r[7]) - 1) for r in rows if r]
    return per_language("xstorycloze", langs, load)


def pawsx(raw, langs):
    path = get(raw, PAWSX_URL, "x-final.tar.gz")
    files = read_members(path, [f"/{lang}/test_2k.tsv" for lang in langs])
    out = {}
    for lang in langs:
        text = files.get(f"/{lang}/test_2k.tsv")
        if text is None:
            print(f"warning: pawsx: {path} has no {lang}/test_2k.tsv (skipped)")
            continue
        question, yes, no = PAWSX_WORDS[lang]
        rows = read_tsv(text, f"{path}:{lang}/test_2k.tsv", ("id", "sentence1", "sentence2", "label"), csv.QUOTE_NONE)
        # empty sentences (failed translations) and "NS" placeholders have nothing to judge: dropped
        kept = [r for r in rows if r["sentence1"].strip() not in ("", "NS") and r["sentence2"].strip() not in ("", "NS")
                and r["label"] in ("0", "1")]
        out[lang] = []
        for r in kept:
            first, second = pawsx_sentences(r["sentence1"], r["sentence2"])
            # [No, Yes] so that PAWS's label (1 = paraphrase) indexes the right choice, as in the harness
            out[lang].append(mc("pawsx", lang, f"pawsx-{r['id']}", f"{first}, {question}?",
                                [f" {no}, {second}", f" {yes}, {second}"], int(r["label"])))
    return out


def detokenize(text):
    """Undo PAWS's tokenisation as the harness does: no space before n't, ) . , ' or after (, and none
    on either side of a double quote."""
    for spaced, joined in ((" n't", "n't"), (" )", ")"), ("( ", "("), ('" ', '"'), (' "', '"')):
        text = text.replace(spaced, joined)
    return re.sub(r" (['.,])", r"\1", text)


def pawsx_sentences(first, second):
    """The two sentences as the harness joins them ("<first>, right? Yes, <second>"): detokenised, the
    first without its final . , or ;, the second starting with a lower-case letter."""
    first, second = detokenize(first).strip(), detokenize(second).strip()
    if first.endswith((".", ",", ";")):
        first = first[:-1]
    return first, second[:1].lower() + second[1:]


def xwinograd(raw, langs):
    files = hf_files("Muennighoff/xwinograd", XWINOGRAD_REVISION, recursive=True)

    def load(lang):
        code = XWINOGRAD_CODES[lang]
        # the repo's layout is not fixed (jsonl, later parquet): the test file in a folder or name of this code
        hits = [f for f in files if code in re.split(r"[/._-]", f["path"]) and "test" in f["path"]
                and f["path"].endswith((".jsonl", ".parquet"))]
        if not hits:
            raise NotFound(f"Muennighoff/xwinograd ({code} test file)")
        f = sorted(hits, key=lambda f: not f["path"].endswith(".jsonl"))[0]
        path = fetch(hf_url("Muennighoff/xwinograd", f["path"], XWINOGRAD_REVISION),
                     os.path.join(raw, f"xwinograd.{code}.{f['path'].rsplit('.', 1)[1]}"),
                     size=f["size"], sha256=f["sha256"], desc=f"xwinograd {code}")
        fields = ("sentence", "option1", "option2", "answer")
        rows = read_jsonl(path, fields) if path.endswith(".jsonl") else list(read_parquet(path, fields))
        examples = []
        for k, r in enumerate(rows):
            before, blank, after = r["sentence"].partition("_")
            if not blank:
                fail(f"{path}: row {k + 1} has no '_' to fill in: {r['sentence'][:80]!r}")
            # partial scoring, as the harness: the sentence up to each filled-in option is a context, and
            # what follows the blank (stripped, after the harness's " " separator) is scored after each
            examples.append(mc_partial("xwinograd", lang, f"xwinograd-{code}-{k}",
                                       [before + r["option1"], before + r["option2"]], " " + after.strip(),
                                       int(r["answer"]) - 1))
        return examples
    return per_language("xwinograd", langs, load)


def squad_examples(task, lang, data, prompt):
    """SQuAD-format JSON (MLQA, XQuAD) -> generation examples scored by F1."""
    return [gen(task, lang, f"{task}-{qa['id']}", prompt(paragraph["context"], qa["question"]),
                [a["text"] for a in qa["answers"]], "f1")
            for article in data["data"] for paragraph in article["paragraphs"] for qa in paragraph["qas"]]


def mlqa(raw, langs):
    path = get(raw, MLQA_URL, "MLQA_V1.zip")
    files = read_members(path, [f"test/test-context-{lang}-question-{lang}.json" for lang in langs])
    out = {}
    for lang in langs:
        text = (files.get(f"test/test-context-{lang}-question-{lang}.json")
                or fail(f"{path} has no test file for {lang}"))
        out[lang] = squad_examples("mlqa", lang, json.loads(text),
                                   lambda c, q: f"Context: {c}\n\nQuestion: {q}\n\nAnswer:")
    return out


def xquad(raw, langs):
    def load(lang):
        with open(get(raw, XQUAD_URL.format(lang=lang), f"xquad.{lang}.json"), encoding="utf-8") as f:
            data = json.load(f)
        c, q, a = XQUAD_WORDS[lang]
        return squad_examples("xquad", lang, data,
                              lambda context, question: f"{c}: {context}\n\n{q}: {question}\n\n{a}:")
    return per_language("xquad", langs, load)


def xlsum(raw, langs):
    def load(lang):
        name = XLSUM_NAMES[lang]
        path = get(raw, hf_url("csebuetnlp/xlsum", f"data/{name}_XLSum_v2.0.tar.bz2", XLSUM_REVISION),
                   f"xlsum.{name}.tar.bz2")
        text = (read_members(path, [f"{name}_test.jsonl"]).get(f"{name}_test.jsonl")
                or fail(f"{path} has no {name}_test.jsonl"))
        language = LANGUAGES[lang][0]
        examples = []
        for n, line in enumerate(text.splitlines(), 1):
            if line.strip():
                r = json.loads(line)
                check_fields(f"{path}:{name}_test.jsonl", n, r, ("id", "text", "summary"))
                # the harness's AfroBench XL-Sum prompt 5, with the document in it and no space after "Summary:"
                prompt = f"{language} document: {r['text']}\nSummary:"
                examples.append(gen("xlsum", lang, f"xlsum-{r['id']}", prompt, [r["summary"]], "rouge_l"))
        return examples
    return per_language("xlsum", langs, load)


def flores(raw, langs, shots=4):
    """English -> X, 4-shot like the paper, in the harness's GPT-3 translation prompt; the shots are the
    first sentences of the dev split, the examples the devtest split."""
    path = get(raw, FLORES_URL, "flores200_dataset.tar.gz")
    spm_url, spm_model = flores200_spm()
    if not os.path.exists(spm_model):  # sacrebleu would download it at scoring time; we do it here, once
        try:
            fetch(spm_url, spm_model, desc="FLORES-200 sentencepiece model (spBLEU)")
        except OSError as e:
            fail(f"could not write {spm_model} ({e}); set $SACREBLEU to a writable folder for sacrebleu's files")
    codes = {lang: FLORES_CODES[lang] for lang in langs if lang != "en"}
    wanted = [f"/{split}/{code}.{split}" for code in ["eng_Latn", *codes.values()] for split in ("dev", "devtest")]
    files = read_members(path, wanted)
    missing = [w for w in wanted if w not in files]
    if missing:
        fail(f"{path} lacks {missing[:5]}")
    lines = {w: files[w].rstrip("\n").split("\n") for w in wanted}
    out = {}
    for lang, code in codes.items():
        en_dev, x_dev = lines["/dev/eng_Latn.dev"], lines[f"/dev/{code}.dev"]
        en_test, x_test = lines["/devtest/eng_Latn.devtest"], lines[f"/devtest/{code}.devtest"]
        if len(en_test) != len(x_test) or len(en_dev) != len(x_dev):
            fail(f"{path}: {code} is not line-aligned with English")
        name = LANGUAGES[lang][0]
        context = "".join(f"English phrase: {e}\n{name} phrase: {x}\n\n" for e, x in zip(en_dev[:shots], x_dev[:shots]))
        out[lang] = [gen("flores", lang, f"flores-{k}", f"{context}English phrase: {e}\n{name} phrase:", [x], "bleu")
                     for k, (e, x) in enumerate(zip(en_test, x_test))]
    return out


# name: (build, kind, metric, languages)
TASKS = {
    "xcopa": (xcopa, "mc", "acc", list(XCOPA_CONNECTORS)),
    "belebele": (belebele, "mc", "acc", BELEBELE_LANGS),
    "xnli": (xnli, "mc", "acc", list(XNLI_WORDS)),
    "xstorycloze": (xstorycloze, "mc", "acc", XSTORYCLOZE_LANGS),
    "pawsx": (pawsx, "mc", "acc", list(PAWSX_WORDS)),
    "xwinograd": (xwinograd, "mc", "acc", list(XWINOGRAD_CODES)),
    "mlqa": (mlqa, "gen", "f1", MLQA_LANGS),
    "xquad": (xquad, "gen", "f1", list(XQUAD_WORDS)),
    "xlsum": (xlsum, "gen", "rouge_l", list(XLSUM_NAMES)),
    "flores": (flores, "gen", "bleu", [c for c in FLORES_CODES if c != "en"]),
}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].strip(),
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("--tasks", default=",".join(TASKS), help="comma-separated, from: " + ", ".join(TASKS))
    parser.add_argument("--langs", default="", help="only these languages (default: every language each task has)")
    parser.add_argument("--max_examples", type=int, default=None, help="keep the first N examples per language")
    parser.add_argument("--out", default="out/wikipedia", help="data folder (its manifest.json gets the 'tasks' key)")
    args = parser.parse_args(argv)

    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    unknown = [t for t in tasks if t not in TASKS]
    if unknown or not tasks:
        fail(f"--tasks: unknown task(s) {unknown or [args.tasks]} (known: {', '.join(TASKS)})")
    langs = parse_codes(args.langs, "--langs")
    covered = {lang for t in tasks for lang in TASKS[t][3]}
    not_covered = [lang for lang in langs if lang not in covered]
    if not_covered:
        fail(f"--langs: no chosen task has {not_covered} (they cover {', '.join(sorted(covered))})")
    if args.max_examples is not None and args.max_examples <= 0:
        fail("--max_examples must be positive")

    fragment = {}
    for task in tasks:
        build, kind, metric, task_langs = TASKS[task]
        chosen = [lang for lang in task_langs if not langs or lang in langs]
        if not chosen:
            continue
        print(f"{task}: {', '.join(chosen)}")
        try:
            by_lang = build(os.path.join(args.out, "raw", "benchmarks", task), chosen)
        except (ValueError, KeyError, TypeError, AttributeError) as e:  # a record we cannot read: the source changed
            fail(f"{task}: the source is not in the expected format ({type(e).__name__}: {e})")
        files = {}
        for lang, examples in by_lang.items():
            examples = examples[:args.max_examples] if args.max_examples else examples
            if not examples:
                print(f"warning: {task}: no {lang} examples (skipped)")
                continue
            ids = [e["id"] for e in examples]
            if len(set(ids)) != len(ids):
                fail(f"{task}/{lang}: ids repeat in the source; cannot name examples uniquely")
            files[lang] = f"tasks/{task}/{lang}.jsonl"
            write_jsonl(os.path.join(args.out, files[lang]), examples)
        if not files:
            fail(f"{task}: nothing could be prepared for {', '.join(chosen)}")
        fragment[task] = {"kind": kind, "metric": metric, "files": files}
        print(f"{task}: {len(files)} languages -> {os.path.join(args.out, 'tasks', task)}")

    def update(manifest):
        manifest.setdefault("tasks", {}).update(fragment)

    update_manifest(args.out, update)
    with atomic_open(os.path.join(args.out, "benchmarks.json")) as f:
        json.dump({"tasks": fragment}, f, indent=2, ensure_ascii=False)
    return fragment


if __name__ == "__main__":
    main()
