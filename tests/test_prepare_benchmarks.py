"""data/benchmarks/prepare.py on tiny fixtures in each source's raw format (zip, tar, parquet-free JSONL,
SQuAD-style JSON), served by a fake web (conftest.py's fixture web): nothing touches the network."""

import csv
import io
import json
import os
import tarfile
import zipfile

import pytest
from sacrebleu.tokenizers import tokenizer_spm
from test_prepare_real import benchmarks

from conftest import HF, tree
from pipeline.documents import flores200_spm


def zip_bytes(members):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        for name, text in members.items():
            z.writestr(name, text)
    return buffer.getvalue()


def tar_bytes(members, mode="w:gz"):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=mode) as t:
        for name, text in members.items():
            data = text.encode("utf-8")
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def jsonl(rows):
    return "\n".join(json.dumps(r, ensure_ascii=False) for r in rows).encode("utf-8")


def squad(lang, n):
    return json.dumps({"data": [{"title": "t", "paragraphs": [{"context": f"{lang} context {k}.", "qas": [
        {"id": f"q{k}", "question": f"{lang} question {k}?", "answers": [{"text": f"ans {k}", "answer_start": 0}]}]}
        for k in range(n)]}]}).encode()


def benchmark_web(web):
    """Two or three examples per set in en and zh, in each source's own raw format."""
    f = web.files
    f[benchmarks.XCOPA_URL.format(lang="zh")] = jsonl([
        {"premise": "我的身体在草地上投下了阴影。", "choice1": "太阳正在升起。", "choice2": "草被割了。",
         "question": "cause", "label": 0, "idx": 1},
        {"premise": "女人容忍了朋友的困难行为。", "choice1": "女人知道朋友经历了一段困难时期。",
         "choice2": "女人觉得朋友在利用她。", "question": "effect", "label": 1, "idx": 2}])
    bele = lambda p: {"flores_passage": f"{p} passage", "question": f" {p} question? ",  # noqa: E731
                      "mc_answer1": "a", "mc_answer2": "b", "mc_answer3": "c", "mc_answer4": "d",
                      "correct_answer_num": "3", "link": "https://x/1", "question_number": 1, "dialect": "x"}
    f[f"{HF}/datasets/facebook/belebele/resolve/{benchmarks.BELEBELE_REVISION}/data/zho_Hans.jsonl"] = jsonl(
        [bele("zh")])  # no en file: skipped
    header = ("language\tgold_label\tsentence1_binary_parse\tsentence2_binary_parse\tsentence1_parse\tsentence2_parse"
              "\tsentence1\tsentence2\tpromptID\tpairID\tgenre")
    xnli_rows = [f"{lang}\t{label}\t(\t(\t(\t(\t{lang} \"premise\" {k}\t{lang} hypothesis {k}\t{k}\t{k}\tfiction"
                 for k, label in enumerate(["entailment", "neutral", "contradiction"]) for lang in ("en", "zh", "fr")]
    f[benchmarks.XNLI_URL] = zip_bytes({"XNLI-1.0/xnli.dev.tsv": "\n".join([header] + xnli_rows) + "\n",
                                        "__MACOSX/XNLI-1.0/._xnli.dev.tsv": "junk"})
    story_header = ("InputStoryid\tInputSentence1\tInputSentence2\tInputSentence3\tInputSentence4"
                    "\tRandomFifthSentenceQuiz1\tRandomFifthSentenceQuiz2\tAnswerRightEnding")
    for lang in ("en", "zh"):
        story = io.StringIO()  # quoted where a field needs it, as csv writes TSV
        csv.writer(story, delimiter="\t", lineterminator="\n").writerows(
            [story_header.split("\t")] + [[f"s{k}", f"{lang} one.", f'"Two," said {k}.', "three.", "four.", "good end.",
                                            "bad end.", str(1 + k % 2)] for k in range(3)])
        f[f"{HF}/datasets/juletxara/xstory_cloze/resolve/{benchmarks.XSTORYCLOZE_REVISION}"
          f"/spring2016.val.{lang}.tsv.split_20_80_eval.tsv"] = story.getvalue().encode()
        f[benchmarks.XQUAD_URL.format(lang=lang)] = squad(lang, 3)
    f[benchmarks.PAWSX_URL] = tar_bytes({f"x-final/{lang}/test_2k.tsv": "id\tsentence1\tsentence2\tlabel\n"
                                         f"1\t{lang} a b .\t{lang} b a\t1\n2\t{lang} c\t{lang} d\t0\n"
                                         f"3\t\t{lang} empty\t0\n4\tNS\t{lang} untranslated\t1\n5\t{lang} e\tNS\t0\n"
                                         for lang in ("en", "zh")})
    wino = {"en": jsonl([{"sentence": "The trophy doesn't fit in the case because the _ is too big.",
                          "option1": "trophy", "option2": "case", "answer": "1"}]),
            "zh": jsonl([{"sentence": "_不适合放在箱子里，因为它太大了。", "option1": "奖杯", "option2": "箱子",
                          "answer": "1"}])}
    f[f"{HF}/api/datasets/Muennighoff/xwinograd/tree/{benchmarks.XWINOGRAD_REVISION}?recursive=true"] = tree(
        [("README.md", b"x"), *((f"data/{lang}/test.jsonl", body) for lang, body in wino.items())])
    for lang, body in wino.items():
        f[f"{HF}/datasets/Muennighoff/xwinograd/resolve/{benchmarks.XWINOGRAD_REVISION}/data/{lang}/test.jsonl"] = body
    f[benchmarks.MLQA_URL] = zip_bytes(
        {f"MLQA_V1/test/test-context-{lang}-question-{lang}.json": squad(lang, 2).decode() for lang in ("en", "zh")})
    for lang, name in (("en", "english"), ("zh", "chinese_simplified")):
        f[f"{HF}/datasets/csebuetnlp/xlsum/resolve/{benchmarks.XLSUM_REVISION}"
          f"/data/{name}_XLSum_v2.0.tar.bz2"] = tar_bytes(
            {f"{name}_test.jsonl": jsonl([{"id": f"{lang}-{k}", "url": "u", "title": "t", "summary": f"summary {k}",
                                           "text": f"article {k}"} for k in range(2)]).decode()}, mode="w:bz2")
    lines = lambda tag: "\n".join(f"{tag} sentence {k}" for k in range(6)) + "\n"  # noqa: E731
    f[benchmarks.FLORES_URL] = tar_bytes({f"flores200_dataset/{split}/{code}.{split}": lines(f"{code}-{split}")
                                          for code in ("eng_Latn", "zho_Hans", "fra_Latn")
                                          for split in ("dev", "devtest")})
    f[flores200_spm()[0]] = b"a sentencepiece model"


@pytest.fixture
def sacrebleu_dir(monkeypatch, tmp_path):
    """sacrebleu's folder ($SACREBLEU) in the test's own tmp_path: the real ~/.sacrebleu is never touched."""
    folder = str(tmp_path / "sacrebleu")
    monkeypatch.setattr(tokenizer_spm, "SACREBLEU_DIR", folder)
    return folder


def test_benchmarks_end_to_end(web, sacrebleu_dir, tmp_path, capsys):
    benchmark_web(web)
    out = str(tmp_path / "data")
    fragment = benchmarks.main(["--langs", "en,zh", "--out", out])
    assert "warning: belebele: no en file" in capsys.readouterr().out
    assert (sorted(fragment) == sorted(benchmarks.TASKS)
            and fragment["belebele"]["files"] == {"zh": "tasks/belebele/zh.jsonl"})
    manifest = json.load(open(os.path.join(out, "manifest.json")))
    assert manifest["tasks"] == fragment == json.load(open(os.path.join(out, "benchmarks.json")))["tasks"]
    data = {}
    for task, info in fragment.items():
        assert (info["kind"], info["metric"]) == benchmarks.TASKS[task][1:3]
        for lang, path in info["files"].items():
            rows = [json.loads(line) for line in open(os.path.join(out, path), encoding="utf-8")]
            for r in rows:
                assert (r["task"], r["lang"], r["kind"]) == (task, lang, info["kind"])
                if r["kind"] == "mc" and "contexts" in r:  # partial scoring (XWinograd)
                    assert ("context" not in r and "choices" not in r and isinstance(r["continuation"], str)
                            and r["continuation"])
                    assert isinstance(r["label"], int) and 0 <= r["label"] < len(r["contexts"])
                elif r["kind"] == "mc":
                    assert isinstance(r["context"], str) and all(isinstance(c, str) and c for c in r["choices"])
                    assert isinstance(r["label"], int) and 0 <= r["label"] < len(r["choices"])
                else:
                    assert r["prompt"] and r["answers"] and r["metric"] == info["metric"]
            data[task, lang] = rows
    # parallel sets: the same ids in every language
    for task in ("xnli", "xstorycloze", "pawsx", "mlqa", "xquad", "flores"):
        assert [r["id"] for r in data[task, "zh"]] == [r["id"] for r in data.get((task, "en"), data[task, "zh"])]
    copa = data["xcopa", "zh"]
    assert copa[0]["context"] == "我的身体在草地上投下了阴影 因为" and copa[0]["choices"][0] == " 太阳正在升起。"
    assert copa[1]["context"].endswith(" 所以") and copa[1]["id"] == "xcopa-2" and copa[1]["label"] == 1
    bele = data["belebele", "zh"][0]
    assert bele["context"] == "P: zh passage\nQ: zh question?\nA: a\nB: b\nC: c\nD: d\nAnswer:" and bele["label"] == 2
    nli = data["xnli", "en"]
    assert nli[0]["context"] == 'en "premise" 0, right?' and nli[0]["choices"][1] == " Also, en hypothesis 0"
    assert [r["label"] for r in nli] == [0, 1, 2] and data["xnli", "zh"][0]["context"].endswith(", 正确?")
    story = data["xstorycloze", "en"][1]
    assert (story["context"] == 'en one. "Two," said 1. three. four.' and story["label"] == 1
            and story["id"] == "xstorycloze-s1")
    paws = data["pawsx", "en"]  # the empty and the two "NS" rows are gone
    # final " ." dropped
    assert [r["id"] for r in paws] == ["pawsx-1", "pawsx-2"] and paws[0]["context"] == "en a b, right?"
    assert paws[0]["choices"][paws[0]["label"]] == " Yes, en b a"  # label 1 = paraphrase = "Yes"
    # XWinograd, partial scoring: the sentence up to each option, then the same rest after the harness's " "
    w = data["xwinograd", "en"][0]
    assert w["contexts"] == ["The trophy doesn't fit in the case because the trophy",
                             "The trophy doesn't fit in the case because the case"]
    assert w["continuation"] == " is too big." and w["label"] == 0
    w = data["xwinograd", "zh"][0]
    assert w["contexts"] == ["奖杯", "箱子"] and w["continuation"] == " 不适合放在箱子里，因为它太大了。"
    assert data["mlqa", "zh"][0]["prompt"] == "Context: zh context 0.\n\nQuestion: zh question 0?\n\nAnswer:"
    assert (data["xquad", "zh"][0]["prompt"] == "语境: zh context 0.\n\n问题: zh question 0?\n\n回答:"
            and data["xquad", "en"][0]["answers"] == ["ans 0"])
    assert (data["xlsum", "en"][0]["prompt"] == "English document: article 0\nSummary:"
            and data["xlsum", "zh"][0]["answers"] == ["summary 0"])
    assert data["xlsum", "zh"][0]["prompt"].startswith("Chinese document: ")
    fl = data["flores", "zh"][2]
    assert (fl["prompt"].count("English phrase:") == 5
            and fl["prompt"].endswith("English phrase: eng_Latn-devtest sentence 2\nChinese phrase:"))
    assert fl["answers"] == ["zho_Hans-devtest sentence 2"] and ("flores", "en") not in data
    # the spBLEU model is cached where sacrebleu (and metrics.corpus_spbleu) look for it
    spm_model = flores200_spm()[1]
    assert spm_model.startswith(sacrebleu_dir) and open(spm_model, "rb").read() == b"a sentencepiece model"


def test_pawsx_detokenised_as_the_harness_does():
    assert (benchmarks.detokenize('He said " yes " ( twice ) , did n\'t he \'s .')
            == 'He said"yes"(twice), didn\'t he\'s.')
    first, second = benchmarks.pawsx_sentences(" It was built in 1990 . ", "The house was built in 1990 .")
    assert (first, second) == ("It was built in 1990", "the house was built in 1990.")
    # " ;" is not detokenised, so the space before it stays once the ";" is dropped, as in the harness
    assert benchmarks.pawsx_sentences("Built in 1990 ;", "x")[0] == "Built in 1990 "
    assert benchmarks.pawsx_sentences("1990 年建成。", "这座房子")[0] == "1990 年建成。"  # only . , ; end a sentence


def test_benchmarks_bad_input(web, sacrebleu_dir, tmp_path):
    out = str(tmp_path / "data")
    with pytest.raises(SystemExit, match="unknown task"):
        benchmarks.main(["--tasks", "xcopa,mmlu", "--out", out])
    with pytest.raises(SystemExit, match=r"no chosen task has \['xx'\]"):
        benchmarks.main(["--tasks", "xcopa", "--langs", "zh,xx", "--out", out])
    benchmark_web(web)
    web.files[benchmarks.XNLI_URL] = web.files[benchmarks.XNLI_URL][:-40]  # a zip cut short (but whole as served)
    with pytest.raises(SystemExit, match="XNLI-1.0.zip is not a readable archive"):
        benchmarks.main(["--tasks", "xnli", "--langs", "en", "--out", out])
    assert not os.path.exists(os.path.join(out, "tasks"))
