"""The built-in lab (data/lab): layout, determinism, scripts, parallel tasks, balance, no surface cues,
instruction data disjoint from the benchmarks, and bad input. One small lab is generated per module."""

import json
import os
import random
import re
import subprocess
import sys
import unicodedata
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from data.lab import items, leaks, prepare  # noqa: E402
from data.lab import world as W  # noqa: E402
from data.lab.languages import build_languages  # noqa: E402

SMALL = dict(mb_per_lang=0.02, examples_per_task=40, n_instructions=300)
CLI_SMALL = ["--mb_per_lang", "0.02", "--examples_per_task", "40", "--instructions", "300", "--progress", "0"]

# Unicode blocks of the scripts, written out here (not taken from the generator) to check it independently
RANGES = {"Latin": [(0x41, 0x5A), (0x61, 0x7A)], "Cyrillic": [(0x400, 0x4FF)],
          "Armenian": [(0x530, 0x58F)], "Georgian": [(0x10A0, 0x10FF)], "Devanagari": [(0x900, 0x97F)],
          "Hangul": [(0xAC00, 0xD7A3)], "Thai": [(0xE00, 0xE7F)]}


def run_cli(*args):
    return subprocess.run([sys.executable, "data/lab/prepare.py", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    out = tmp_path_factory.mktemp("lab")
    result = run_cli("--out", str(out), *CLI_SMALL)
    assert result.returncode == 0, result.stderr
    return out


def manifest(lab):
    return json.loads((lab / "manifest.json").read_text(encoding="utf-8"))


def rows(lab, path):
    return [json.loads(line) for line in (lab / path).read_text(encoding="utf-8").splitlines()]


def all_files(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_manifest_languages_and_groups(lab):
    m = manifest(lab)
    langs = {x["code"]: x for x in m["languages"]}
    groups = m["groups"]
    assert list(groups) == ["pretraining", "adapting", "other", "unseen_script"]
    assert groups["pretraining"][0] == "en" and len(groups["pretraining"]) >= 4
    assert len(groups["adapting"]) >= 6 and len(groups["other"]) >= 2 and len(groups["unseen_script"]) >= 2
    assert sorted(sum(groups.values(), [])) == sorted(langs) and len(langs) >= 14
    assert {x["word_order"] for x in langs.values()} == {"SVO", "SOV", "VSO"}
    assert {x["morphology"] for x in langs.values()} == {"isolating", "suffixing"}
    assert len({x["script"] for x in langs.values()} - {"Latin"}) >= 4
    assert any(not x["spaces"] for x in langs.values())
    # as in the paper: most adapting languages share a script with a pretraining language (some are its
    # sisters), a few do not; the never-trained "other" languages share scripts with trained ones; the
    # languages whose script no model is trained on are a group of their own
    pre_scripts = {langs[c]["script"] for c in groups["pretraining"]}
    shared = [c for c in groups["adapting"] if langs[c]["script"] in pre_scripts]
    assert len(groups["adapting"]) / 2 < len(shared) < len(groups["adapting"])
    assert sum(langs[c]["sister_of"] in groups["pretraining"] for c in groups["adapting"]) >= 3
    trained_scripts = pre_scripts | {langs[c]["script"] for c in groups["adapting"]}
    assert all(langs[c]["script"] in trained_scripts for c in groups["other"])
    assert all(langs[c]["script"] not in trained_scripts for c in groups["unseen_script"])
    for x in langs.values():
        for split in ("train", "val"):
            text = (lab / x[split]).read_text(encoding="utf-8")
            docs = text.split("\n\n")
            assert all(d.strip() and "\n\n" not in d for d in docs)
        size = (lab / x["train"]).stat().st_size
        assert 0.02e6 <= size < 0.03e6, (x["code"], size)  # the requested size, give or take a document
    for task, spec in m["tasks"].items():
        assert set(spec["files"]) == set(langs) and all((lab / f).exists() for f in spec["files"].values())


def test_same_seed_same_bytes_and_regeneration_is_idempotent(lab, tmp_path):
    prepare.generate(tmp_path, **SMALL, progress=False)
    first = all_files(tmp_path)
    assert first == all_files(lab)  # in-process and CLI agree byte for byte
    prepare.generate(tmp_path, **SMALL, progress=False)  # into the existing folder
    assert all_files(tmp_path) == first and not list(tmp_path.rglob("*.tmp"))


def test_another_seed_other_lexicons():
    a, b = build_languages(1), build_languages(2)
    assert a[0].names != b[0].names
    for x, y in zip(a[1:], b[1:]):
        assert x.code == y.code
        differ = sum(x.words[c] != y.words[c] for c in x.words)
        # the sister of English keeps English roots; only its sound changes and new words depend on the seed
        assert differ > (0.5 if x.sister == "en" else 0.8) * len(x.words), x.code
    assert W.World(1).home != W.World(2).home


def _check_script(text, script, where):
    for ch in set(text):
        cat = unicodedata.category(ch)
        if ch.isdigit() and ch in "0123456789" and script not in ("Devanagari", "Thai"):
            continue
        if cat[0] in "LMN":
            assert any(lo <= ord(ch) <= hi for lo, hi in RANGES[script]), f"{where}: {ch!r} is not {script}"


def test_scripts_as_declared_and_spaceless_language(lab):
    m = manifest(lab)
    for x in m["languages"]:
        texts = [(lab / x[split]).read_text(encoding="utf-8") for split in ("train", "val")]
        for task, spec in m["tasks"].items():
            for r in rows(lab, spec["files"][x["code"]]):
                texts += [r.get("context", ""), r.get("prompt", ""), *r.get("choices", []), *r.get("answers", [])]
        text = "".join(texts)
        _check_script(text, x["script"], x["code"])
        assert (" " in text) == x["spaces"], x["code"]
        if x["script"] in ("Devanagari", "Thai"):  # numbers are written with the script's own digits
            assert not re.search("[0-9]", text) and re.search(r"\d", text)


def test_every_line_matches_the_schema(lab):
    m = manifest(lab)
    for task, spec in m["tasks"].items():
        assert spec["kind"] in ("mc", "gen")
        for lang, path in spec["files"].items():
            lines = rows(lab, path)
            assert len(lines) == SMALL["examples_per_task"]
            for i, r in enumerate(lines):
                assert (r["task"] == task and r["lang"] == lang and r["id"] == f"{task}-{i}"
                        and r["kind"] == spec["kind"])
                if spec["kind"] == "mc":
                    assert set(r) == {"task", "lang", "id", "kind", "context", "choices", "label"}
                    assert isinstance(r["context"], str) and r["context"]
                    assert len(r["choices"]) >= 2 and len(set(r["choices"])) == len(r["choices"])
                    assert all(isinstance(c, str) and c.strip() for c in r["choices"])
                    assert isinstance(r["label"], int) and 0 <= r["label"] < len(r["choices"])
                else:
                    assert set(r) == {"task", "lang", "id", "kind", "prompt", "answers", "metric"}
                    assert r["metric"] == spec["metric"] and r["prompt"]
                    assert r["answers"] and all(isinstance(a, str) and a.strip() for a in r["answers"])


def test_tasks_are_parallel_and_balanced(lab):
    m = manifest(lab)
    for task, spec in m["tasks"].items():
        per_lang = {lang: rows(lab, path) for lang, path in spec["files"].items()}
        ids = {lang: [r["id"] for r in rs] for lang, rs in per_lang.items()}
        assert len({tuple(v) for v in ids.values()}) == 1, task
        if spec["kind"] == "mc":
            labels = {tuple(r["label"] for r in rs) for rs in per_lang.values()}
            assert len(labels) == 1, task  # the same answer in every language
        if task == "lab_qa":  # a number asked is the same number in every language (int() reads any digits)
            for i, r in enumerate(per_lang["en"]):
                if r["answers"][0].isdigit():
                    assert {int(rs[i]["answers"][0]) for rs in per_lang.values()} == {int(r["answers"][0])}
        for lang, rs in per_lang.items():  # the context ends where the choice starts
            lang_spaces = next(x["spaces"] for x in m["languages"] if x["code"] == lang)
            for r in rs:
                for c in r.get("choices", []):
                    assert c.startswith(" ") == lang_spaces and not c.startswith("  ")


def test_labels_are_balanced_in_every_prefix_and_language(lab):
    """A run evaluates the first n items (evaluate.py --max_examples): however many, the labels' counts
    differ by at most one (prepare.balanced_labels), so always answering one label scores at most 1/k + 1/n."""
    m = manifest(lab)
    for task, spec in m["tasks"].items():
        if spec["kind"] != "mc":
            continue
        for lang, path in spec["files"].items():
            rs = rows(lab, path)
            labels, k = [r["label"] for r in rs], len(rs[0]["choices"])
            for n in range(1, len(labels) + 1):
                counts = np.bincount(labels[:n], minlength=k)
                assert len(counts) == k and counts.max() - counts.min() <= 1, (task, lang, n, counts)
    labels = [item[-1] for item in prepare.eval_items("lab_read", 7, W.World(7), build_languages(7), 8)]
    assert labels[:8] != [0, 1, 2, 3] * 2  # shuffled, not in a fixed order


def _answered_rows(lab, spec, lang, spaces):
    """Every item of a task in a language as its context (or prompt) followed by its right answer; the
    answer follows the prompt after a space in a language written with spaces (the manifest's "spaces")."""
    sep = " " if spaces else ""
    out = []
    for r in rows(lab, spec["files"][lang]):
        if "choices" in r:
            out.append(r["context"] + r["choices"][r["label"]])
        else:
            out += [r["prompt"] + sep + a for a in r["answers"]]
    return out


def test_no_benchmark_item_with_its_answer_is_in_any_training_text(lab):
    """Per task and language: no item's context with its right answer appears verbatim in any text a model
    trains on (every language's train and val text, the instructions)."""
    m = manifest(lab)
    assert not next(x for x in m["languages"] if x["code"] == "qth")["spaces"]
    texts = [(lab / x[split]).read_text(encoding="utf-8") for x in m["languages"] for split in ("train", "val")]
    texts += ["\n".join(x["content"] for c in rows(lab, m[key][split]) for x in c["messages"])
              for key in ("instructions", "instructions_translated") for split in ("train", "val")]
    everything = "\n\n".join(texts)
    spaces = {x["code"]: x["spaces"] for x in m["languages"]}
    for task, spec in m["tasks"].items():
        for lang in spec["files"]:
            for s in _answered_rows(lab, spec, lang, spaces[lang]):
                assert s not in everything, (task, lang, s)


def test_the_text_would_hold_benchmark_items_without_the_filter():
    """The filter is needed: causal rules stated in stories repeat lab_copa items verbatim unless held out."""
    w, langs = W.World(1337), build_languages(1337)
    en = langs[0]
    items = prepare.eval_items("lab_copa", 1337, w, langs, 150)
    held = [s for item in items for s in prepare.answered("lab_copa", en, item)]
    unfiltered = prepare.text_file(random.Random(1), w, en, 300_000, leaks.Verbatim(["\0" * 12]))
    assert any(s in unfiltered for s in held)
    filtered = prepare.text_file(random.Random(1), w, en, 300_000, leaks.Verbatim(held))
    assert not any(s in filtered for s in held)
    verbatim = leaks.Verbatim(["หามุสราน", "Mara dropped the cup, so Mara"])
    assert verbatim.found_in("xxหามุสรานyy") and verbatim.found_in("Then Mara dropped the cup, so Mara cried.")
    assert not verbatim.found_in("mara dropped the cup, so Mara") and not verbatim.found_in("หามุส")


def test_read_options_all_appear_in_the_passage(lab):
    for r in rows(lab, manifest(lab)["tasks"]["lab_read"]["files"]["en"]):
        passage = r["context"].split("\nQuestion:")[0]
        assert all(c.strip() in passage for c in r["choices"])


def test_answers_follow_the_world_and_wrong_ones_are_real_values():
    """The right answer is what the world's repeated facts say; a wrong one is another animal's or shop's
    real value (never a value no fact mentions), so only knowing the world tells them apart."""
    seed = 7
    w, langs = W.World(seed), build_languages(seed)
    en = langs[0]
    homes, diets = set(w.home.values()), set(w.diet.values())
    for item in prepare.eval_items("lab_read", seed, w, langs, 60):
        sents, q, options, label = item
        animal, values = q.subj.ref, (w.home if q.verb == "live" else w.diet)
        assert options[label].ref == values[animal] and {o.ref for o in options} <= set(values.values())
    for item in prepare.eval_items("lab_nli", seed, w, langs, 90):
        premise, hyp, label = item
        person, place = hyp.subj.ref, hyp.args[0][1].ref
        assert {c.subj.ref for c in premise} == {person} and place not in en.text(premise)  # no overlap cue
        assert place in homes  # the question always names some animal's home
        seen = next(c for c in premise if c.verb == "see").args[0][1].ref
        if label == 1:
            assert seen not in w.home  # a thing: nothing says where it was seen
        else:
            assert (place == w.home[seen]) == (label == 0)  # an animal is seen where it lives
    kinds = set()
    for premise, right, wrong in (items.cloze_item(random.Random(i), w) for i in range(200)):
        if right.subj.kind == "noun" and right.verb in ("live", "eat"):
            values = w.home if right.verb == "live" else w.diet
            assert right.args[0][1].ref == values[right.subj.ref] and wrong.args[0][1].ref in (homes | diets)
            kinds.add(right.verb)
        elif right.verb == "buy":
            shop = next(c for c in premise if c.verb == "go").args[0][1].ref
            assert w.shop[right.args[0][1].ref] == shop != w.shop[wrong.args[0][1].ref]
            kinds.add("buy")
    assert kinds == {"live", "eat", "buy"}


# ---- no surface cue: a classifier that sees only length, position and word overlap is at chance ----

def _cue_features(context, choices):
    ctx = set(re.findall(r"\w+", context.lower()))
    out = []
    for c in choices:
        words = re.findall(r"\w+", c.lower())
        overlap = len(set(words) & ctx)
        out.append([len(c), len(words), overlap, overlap / max(1, len(words))])
    return np.array(out, float)


def _cue_accuracy(examples):
    """Conditional logit on cue features + a bias per position, fit on half, accuracy on the other half."""
    X = np.stack([_cue_features(e["context"], e["choices"]) for e in examples])  # [n, k, d]
    n, k, _ = X.shape
    X = (X - X.reshape(-1, X.shape[2]).mean(0)) / (X.reshape(-1, X.shape[2]).std(0) + 1e-9)
    X = np.concatenate([X, np.broadcast_to(np.eye(k), (n, k, k))], axis=2)
    y = np.array([e["label"] for e in examples])
    half = n // 2
    w = np.zeros(X.shape[2])
    for _ in range(300):
        s = X[:half] @ w
        p = np.exp(s - s.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        p[np.arange(half), y[:half]] -= 1
        w -= 0.5 * np.einsum("nk,nkd->d", p, X[:half]) / half
    return float(((X[half:] @ w).argmax(1) == y[half:]).mean())


def test_cue_only_classifier_stays_at_chance():
    w, langs = W.World(7), build_languages(7)
    en = langs[0]
    # English (articles, prepositions) and two languages with case suffixes (other words repeat there)
    chosen = [en] + [x for x in langs if x.morph == "suffixing" and x.sister is None][:2]
    for task in ("lab_copa", "lab_nli", "lab_cloze", "lab_read"):
        items = prepare.eval_items(task, 7, w, langs, 400)
        for lang in chosen:
            examples = [prepare.render(task, lang, item) for item in items]
            k = len(examples[0]["choices"])
            assert _cue_accuracy(examples) < 1 / k + 0.1, (task, lang.code)
        # the classifier does find a cue when one is there: pad every right choice
        planted = [dict(e, choices=[c + " indeed" * (j == e["label"]) for j, c in enumerate(e["choices"])])
                   for e in examples]
        assert _cue_accuracy(planted) > 0.9, task


# ---- instruction data ----------------------------------------------------------------------------

def test_instructions_are_valid_and_disjoint_from_eval(lab):
    m = manifest(lab)
    convs = rows(lab, m["instructions"]["train"]) + rows(lab, m["instructions"]["val"])
    assert len(rows(lab, m["instructions"]["train"])) == SMALL["n_instructions"]
    for c in convs:
        roles = [x["role"] for x in c["messages"]]
        assert roles[0] == "user" and roles[-1] == "assistant" and all(a != b for a, b in zip(roles, roles[1:]))
        assert all(isinstance(x["content"], str) and x["content"].strip() for x in c["messages"])
    text = "\n\n".join(x["content"] for c in convs for x in c["messages"]).lower()
    assert "question:" in text and "tell me a short story" in text and ", so" in text  # the task types are there
    for task in ("lab_copa", "lab_nli", "lab_cloze", "lab_read", "lab_qa"):
        for r in rows(lab, m["tasks"][task]["files"]["en"]):
            ctx = r.get("context", r.get("prompt"))
            snippet = ctx if task == "lab_copa" else ctx.split("\nQuestion:")[0]
            assert snippet.lower() not in text, (task, r["id"])


def _script_of(text):
    return next(s for s, ranges in RANGES.items() for ch in text if any(lo <= ord(ch) <= hi for lo, hi in ranges))


def test_translated_instructions_are_the_english_ones_in_each_language(lab):
    """instructions_translated: as many conversations as the English, the k-th the English k-th in the
    (k mod 3)-th non-English pretraining language (same turns, same task kind, so the same answer length
    class), none holding a benchmark passage of its language."""
    m = manifest(lab)
    spec, langs = m["instructions_translated"], {x["code"]: x for x in m["languages"]}
    assert set(spec) == {"train", "val", "langs"}
    assert spec["langs"] == [c for c in m["groups"]["pretraining"] if c != "en"]
    passages = {code: [r.get("context", r.get("prompt")) for t in m["tasks"].values()
                       for r in rows(lab, t["files"][code])] for code in spec["langs"]}
    for split in ("train", "val"):
        english, translated = rows(lab, m["instructions"][split]), rows(lab, spec[split])
        assert len(english) == len(translated)
        for k, (a, b) in enumerate(zip(english, translated)):
            code = spec["langs"][k % len(spec["langs"])]
            assert [x["role"] for x in a["messages"]] == [x["role"] for x in b["messages"]]
            text = "\n".join(x["content"] for x in b["messages"])
            if langs[code]["script"] != "Latin":
                assert _script_of(text) == langs[code]["script"] and not re.search("[A-Za-z]", text), (k, code)
            assert not re.search(r"\b(the|what|where|story)\b", text.lower()), (k, text)  # no English left
            # a passage is the text before its question line (lab_copa: the whole context)
            assert not any(p.split("\n")[0] in text for p in passages[code] if len(p.split("\n")[0]) > 30)


def test_exercises_only_in_the_languages_asked(tmp_path):
    """exercise_langs: a language outside it never shows the Question/Answer format in its text."""
    prepare.generate(tmp_path, **SMALL, progress=False, design=dict(exercise_langs=["en", "qdv"]))
    langs = {x.code: x for x in build_languages(1337)}
    for x in manifest(tmp_path)["languages"]:
        text = (tmp_path / x["train"]).read_text(encoding="utf-8")
        asked = "\n" + langs[x["code"]].label("question") in text
        assert asked == (x["code"] in ("en", "qdv")), x["code"]


def test_bilingual_documents_say_the_same_twice():
    """parallel: a bilingual document is the English document, then the same one in the language, line
    for line and sentence for sentence; the language's own documents stay whole."""
    w, langs = W.World(3), build_languages(3)
    en, qdv = langs[0], next(x for x in langs if x.code == "qdv")
    nothing = leaks.Verbatim(["\0" * 12])
    docs = prepare.text_file(random.Random(0), w, qdv, 20_000, nothing, False, 1.0, en).strip().split("\n\n")
    for doc in docs:
        lines = doc.split("\n")
        half = len(lines) // 2
        assert len(lines) % 2 == 0 and all(_script_of(x) == "Latin" for x in lines[:half])
        assert all(_script_of(x) == "Devanagari" for x in lines[half:])
        for a, b in zip(lines[:half], lines[half:]):
            assert a.count(".") == b.count("।"), (a, b)
    alone = prepare.text_file(random.Random(0), w, qdv, 20_000, nothing, False, 0.0, en)
    assert not re.search("[A-Za-z]", alone)


def test_code_switching_writes_english_nouns_in_a_copy():
    """code_switch: nouns (never names or other words) become the English word with the language's own
    endings, at the rate asked, in a copy; the language itself still writes its own words."""
    w, langs = W.World(5), build_languages(5)
    qcy = next(x for x in langs if x.code == "qcy")
    sents = [s for i in range(30) for s in story_sentences(w, i)]
    own = qcy.text(sents)
    always = qcy.code_switching(random.Random(0), 1.0).text(sents)
    never = qcy.code_switching(random.Random(0), 0.0).text(sents)
    assert never == own and qcy.text(sents) == own
    latin = [x.lower() for x in re.findall("[A-Za-z]+", always)]
    assert latin and set(latin) <= set(W.NOUNS) and not re.search("[A-Za-z]", own)
    assert all(name in always for name in re.findall(r"\b" + "|".join(qcy.names[:1]) + r"\b", own))
    some = qcy.code_switching(random.Random(0), 0.3).text(sents)
    assert 0.15 < len(re.findall("[A-Za-z]+", some)) / len(latin) < 0.45


def story_sentences(w, i):
    from data.lab.stories import story
    return story(random.Random(i), w)


def test_language_options():
    """word_orders, cognates, latin_names, ascii_digits and english_scaffold change what they say."""
    plain = {x.code: x for x in build_languages(9)}
    changed = {x.code: x for x in build_languages(9, {"qcy": "SVO"}, latin_names=True, ascii_digits=True,
                                                   english_scaffold=True)}
    c = W.clause(W.name(2), "eat", ("obj", W.num("apple", 7)))
    qcy, qcy_svo = plain["qcy"], changed["qcy"]
    assert qcy.order == "SOV" and qcy_svo.order == "SVO" and qcy_svo.words == qcy.words
    verb, obj = qcy_svo.verbs["eat", "past", False], qcy_svo.np(W.num("apple", 7), "obj")
    assert qcy_svo.clause(c).index(verb) < qcy_svo.clause(c).index(obj)
    assert qcy.clause(c).index(verb) > qcy.clause(c).index(qcy.np(W.num("apple", 7), "obj"))
    assert changed["qdv"].names == plain["en"].names and plain["qdv"].names != plain["en"].names
    assert "7" in changed["qdv"].clause(c) and "7" not in plain["qdv"].clause(c)
    question = W.clause(W.name(2), "go", ("dest", W.WHERE), q="wh")
    assert changed["qko"].ask(question).startswith("Question: ") and changed["qko"].ask(question).endswith("\nAnswer:")
    assert "Question" not in plain["qko"].ask(question)
    with_cognates = {x.code: x for x in build_languages(9, cognates={"qla": 0.5})}["qla"]
    english_like = lambda lang: sum(lang.words[c][:3] == c[:3] for c in lang.words) / len(lang.words)
    assert english_like(with_cognates) > 0.2 > 0.05 > english_like(plain["qla"])


def test_relexified_english_is_english_word_for_word():
    """--relexify: the language says exactly what English says, in the same order and forms, each word
    rewritten by one cipher into its own script (a sister of it is still the constructed language's). Fails
    if the cipher maps two letters to one (two English words could merge) or if it changes the grammar."""
    plain = {x.code: x for x in build_languages(9)}
    langs = {x.code: x for x in build_languages(9, relexify=["qcy"])}
    en, qcy = langs["en"], langs["qcy"]
    assert qcy.script == "Cyrillic" and qcy.order == "SVO" and qcy.group == "pretraining"
    assert len(set(qcy.cipher.values())) == 52  # a-z and A-Z, each to its own letter
    rng, w = random.Random(3), W.World(9)
    for _ in range(30):
        sents, question, options, right = items.fact_passage(rng, w)
        text = en.text(sents) + "\n" + en.ask(question) + en.sep + en.np(options[right])
        ours = qcy.text(sents) + "\n" + qcy.ask(question) + qcy.sep + qcy.np(options[right])
        assert ours == text.translate(qcy.cipher)
        _check_script(qcy.text(sents).translate(str.maketrans("", "", "0123456789")), "Cyrillic", "qcy")
    assert langs["qcs"].words == plain["qcs"].words
    assert prepare.lexicon(list(langs.values()))["qcy"]["fox"] == "fox".translate(qcy.cipher)


def test_snippet_matcher():
    s = leaks.Snippets(["Mara dropped the cup, so", "It rained, so", "Tom slept", "Lina"])
    assert s.found_in("Later mara dropped the cup, so the cup broke.")
    assert s.found_in("x\nTom slept.") and s.found_in("Linas") and not s.found_in("Tom sleeps. It rained.")
    assert not leaks.Snippets(["the cup broke, so"]).found_in("The cup broke. So")


# ---- bad input -----------------------------------------------------------------------------------

@pytest.mark.parametrize("args, message", [
    (["--no_such_option", "1"], "unrecognized arguments"),
    (["--mb_per_lang", "0"], "--mb_per_lang must be a positive number"),
    (["--examples_per_task", "-3"], "--examples_per_task must be a positive integer"),
    (["--mb_per_lang", "abc"], "invalid float value"),
    (["--instructions", "0"], "--instructions must be a positive integer"),
    (["--show", "-1"], "--show must be a positive number"),
    (["--parallel", "1.5"], "--parallel must be a share between 0 and 1"),
    (["--exercise_langs", "en,zz"], "--exercise_langs: unknown language(s) zz"),
    (["--word_orders", "qcy=OVS"], "--word_orders: 'qcy=OVS' is not"),
    (["--word_orders", "en=SOV"], "--word_orders: 'en=SOV' is not"),
    (["--cognates", "qcy=0.3"], "--cognates: 'qcy=0.3' is not"),
    (["--relexify", "qdv"], "--relexify: qdv is not"),
    (["--latin_names", "2"], "invalid choice"),
])
def test_bad_options(args, message, tmp_path):
    result = run_cli("--out", str(tmp_path), *args)
    assert result.returncode != 0 and message in result.stderr
    assert not os.listdir(tmp_path)


def test_help_lists_every_option():
    result = run_cli("--help")
    assert result.returncode == 0
    for option in ("--seed", "--out", "--mb_per_lang", "--examples_per_task", "--instructions", "--show",
                   "--exercise_langs", "--parallel", "--code_switch", "--word_orders", "--cognates", "--latin_names",
                   "--ascii_digits", "--english_scaffold", "--relexify"):
        assert option in result.stdout


def test_unwritable_output_folder(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    result = run_cli("--out", str(blocker / "lab"), *CLI_SMALL)
    assert result.returncode != 0 and "cannot write to the output folder" in result.stderr
    assert "Traceback" not in result.stderr


def test_token_share_of_the_lab(lab, capsys):
    """data/lab/token_share.py: a base-token share in [0, 1] for every language outside pretraining, and a
    sister of a pretraining language shares more old tokens than a language in an unseen script."""
    from data.lab import token_share
    token_share.main(["lab", "--data_dir", str(lab), "--vocab_size", "600"])
    lines = [x.split() for x in capsys.readouterr().out.splitlines() if "base-token share" in x]
    share = {x[1]: float(x[4]) for x in lines}
    groups = manifest(lab)["groups"]
    assert set(share) == {c for g, cs in groups.items() if g != "pretraining" for c in cs}
    assert all(0 <= v <= 1 for v in share.values())
    assert share["qcs"] > max(share[c] for c in groups["unseen_script"])
    result = subprocess.run([sys.executable, "data/lab/token_share.py", "lab", "--vocab_size", "10"], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "--vocab_size must be at least 512" in result.stderr
