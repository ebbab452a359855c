"""metrics.py against values derived by hand from the metrics' definitions (MLQA's normalisation as its
official script defines it), and sacrebleu's README example."""

import io

import pytest
from sacrebleu.metrics import BLEU
from sacrebleu.tokenizers import tokenizer_spm

from evaluation import metrics
from pipeline.documents import flores200_spm


def test_squad_normalisation_f1_and_exact():
    # "The Eiffel Tower!" -> "eiffel tower" (article and punctuation gone); the reference has 4 words:
    # 2 in common, precision 2/2, recall 2/4, F1 = 2 * 1 * 0.5 / 1.5 = 2/3
    assert metrics.f1("The Eiffel Tower!", ["Eiffel tower in Paris"]) == pytest.approx(2 / 3)
    # best over the answers
    assert metrics.f1("The Eiffel Tower!", ["Eiffel tower in Paris", "the eiffel tower"]) == 1.0
    # repeated words are clipped: pred "cat cat cat", ref "cat dog": 1 in common, P = 1/3, R = 1/2, F1 = 0.4
    assert metrics.f1("cat cat cat", ["cat dog"]) == pytest.approx(0.4)
    assert metrics.f1("nothing here", ["cat"]) == 0.0
    assert metrics.exact("  An  Apple. ", ["apple"]) == 1.0
    assert metrics.exact("apple pie", ["apple"]) == 0.0
    # Unicode punctuation is punctuation too (MLQA's normalisation): «…» and the ideographic full stop
    assert metrics.exact("«Ñandú»。", ["ñandú"]) == 1.0


def test_mlqa_normalisation_removes_punctuation_without_a_space():
    assert metrics.normalize("U.S.") == "us" and metrics.normalize("Tom's  car-park!") == "toms carpark"
    assert metrics.exact("the U.S.", ["US"]) == 1.0
    # ASCII symbols count as punctuation too (MLQA adds string.punctuation): "$5+" is "5"
    assert metrics.exact("$5+", ["5"]) == 1.0


@pytest.mark.parametrize("lang, prediction, answer", [
    ("en", "the dog", "a dog"),
    ("de", "der Hund", "einen Hund"),
    ("es", "la casa", "unas casa"),
    ("vi", "những con chó", "con chó"),
    ("ar", "البيت", "بيت"),  # the al- prefix, where it starts a word
])
def test_articles_are_per_language(lang, prediction, answer):
    assert metrics.exact(prediction, [answer], lang=lang) == 1.0


def test_articles_of_one_language_are_words_in_another():
    # "die" is German's article but an English word; "the" is no article in German
    assert metrics.exact("die Katze", ["Katze"], lang="de") == 1.0
    assert metrics.f1("die Katze", ["Katze"], lang="en") == pytest.approx(2 / 3)  # P = 1/2, R = 1
    assert metrics.exact("the Katze", ["Katze"], lang="de") == 0.0
    # Arabic: only a word-initial al- goes (the harness's fix); "المال" keeps the "ال" inside it
    assert metrics.words("المال في البيت", lang="ar") == ["مال", "في", "بيت"]
    # no article list: hi and zh (as in MLQA), languages MLQA does not cover, and the lab's languages
    assert metrics.exact("the cat", ["cat"], lang="hi") == 0.0
    assert metrics.exact("the cat", ["cat"], lang="qen") == 0.0
    assert metrics.exact("the cat", ["cat"]) == 1.0  # no language given: SQuAD's English


def test_chinese_mixed_segmentation():
    # each CJK character is a word; the runs between them are split at whitespace
    assert metrics.words("iPhone手机 很好。", spaces=False, lang="zh") == ["iphone", "手", "机", "很", "好"]
    assert metrics.words("2008年 Beijing Olympics", lang="zh") == ["2008", "年", "beijing", "olympics"]
    # "北京大学" vs "北京": 2 words in common, P = 2/4, R = 2/2, F1 = 2/3
    assert metrics.f1("北京大学", ["北京"], spaces=False, lang="zh") == pytest.approx(2 / 3)
    # "version 2 of iPhone手机" vs "iPhone 手机": 3 in common of 6 and 3, P = 1/2, R = 1, F1 = 2/3
    assert metrics.f1("version 2 of iPhone手机", ["iPhone 手机"], spaces=False, lang="zh") == pytest.approx(2 / 3)


def test_f1_of_two_empty_answers_is_zero_as_in_mlqa():
    # "The" and "a" both normalise to nothing: exact match (equal strings) but no word in common
    assert metrics.exact("The", ["a"]) == 1.0 and metrics.f1("The", ["a"]) == 0.0


def test_f1_counts_characters_for_scripts_without_spaces():
    # "東京都" vs "東京": 2 characters in common, P = 2/3, R = 1, F1 = 2 * (2/3) / (5/3) = 0.8
    assert metrics.f1("東京都", ["東京"], spaces=False) == pytest.approx(0.8)
    # with words, the same strings share nothing
    assert metrics.f1("東京都", ["東京"], spaces=True) == 0.0


def test_rouge_l_is_the_lcs_f_measure():
    # "a b c d" vs "a c e": LCS "a c" = 2, P = 2/4, R = 2/3, F = 2PR/(P+R) = (2/3)/(7/6) = 4/7
    assert metrics.rouge_l("a b c d", ["a c e"]) == pytest.approx(4 / 7)
    # order matters (unlike F1): "b a" vs "a b" have LCS 1 -> P = R = 1/2
    assert metrics.rouge_l("b a", ["a b"]) == pytest.approx(0.5)
    assert metrics.rouge_l("x", ["y"]) == 0.0
    # ROUGE-L keeps articles: "the cat" vs "the dog" -> LCS 1, P = R = 1/2
    assert metrics.rouge_l("the cat", ["the dog"]) == pytest.approx(0.5)
    assert metrics.lcs_length(list("ABCBDAB"), list("BDCABA")) == 4  # the textbook example (CLRS 15.4)


def test_bleu_by_hand():
    # hyp "the cat sat on the mat", ref "the cat sat on a mat", equal lengths so BP = 1.
    # clipped n-gram precisions: 1-grams 5/6, 2-grams 3/5, 3-grams 2/4, 4-grams 1/3
    # BLEU = (5/6 * 3/5 * 2/4 * 1/3) ** (1/4) = (1/12) ** 0.25
    got = metrics.corpus_bleu(["the cat sat on the mat"], [["the cat sat on a mat"]])
    assert got == pytest.approx((1 / 12) ** 0.25, abs=1e-4)


def test_chrf_by_hand():
    # chrF2: character n-grams (n = 1..6, whitespace dropped); precision and recall are averaged over the
    # orders both sides have, then F_beta with beta = 2: F = 5PR / (4P + R).
    # hyp "ab", ref "abc": n=1: P = 2/2, R = 2/3; n=2: P = 1/1, R = 1/2; n>=3: the hypothesis has none.
    # P = 1, R = (2/3 + 1/2) / 2 = 7/12, F = 5 * 7/12 / (4 + 7/12) = 35/55 = 7/11
    assert metrics.corpus_chrf(["ab"], [["abc"]]) == pytest.approx(7 / 11, abs=1e-4)
    # hyp "abc", ref "abd": P = R = (2/3 + 1/2 + 0) / 3 = 7/18 at every order, so F = 7/18
    assert metrics.corpus_chrf(["abc"], [["abd"]]) == pytest.approx(7 / 18, abs=1e-4)


def test_sacrebleu_readme_example_with_two_references_per_sentence():
    # sacrebleu's README: BLEU = 48.53, chrF2 = 59.73 (two reference streams)
    hyps = ["The dog bit the man.", "It wasn't surprising.", "The man had just bitten him."]
    answers = [["The dog bit the man.", "The dog had bit the man."],
               ["It was not unexpected.", "No one was surprised."],
               ["The man bit him first.", "The man had bitten the dog."]]
    assert metrics.corpus_bleu(hyps, answers) == pytest.approx(0.4853, abs=1e-4)
    assert metrics.corpus_chrf(hyps, answers) == pytest.approx(0.5973, abs=1e-4)
    # a different number of answers per example is allowed (the missing ones are skipped)
    answers[0] = answers[0][:1]
    assert 0 < metrics.corpus_bleu(hyps, answers) <= 1


def test_score_generations_gives_every_metric_in_unit_range():
    scores = metrics.score_generations(["the cat", "a dog"], [["the cat"], ["the bird"]])
    assert set(scores) == {"exact", "f1", "rouge_l", "chrf", "bleu"}
    assert scores["exact"] == 0.5 and scores["f1"] == 0.5  # "a dog" vs "the bird": nothing in common
    assert all(0 <= v <= 1 for v in scores.values())
    with pytest.raises(ValueError):
        metrics.score_generations([], [])


def test_spbleu_refuses_to_download_its_model(monkeypatch, tmp_path):
    monkeypatch.setattr(tokenizer_spm, "SACREBLEU_DIR", str(tmp_path))
    with pytest.raises(SystemExit, match="python data/benchmarks/prepare.py --tasks flores"):
        metrics.corpus_spbleu(["a b"], [["a b"]])
    with pytest.raises(SystemExit, match="FLORES-200 sentencepiece model"):
        metrics.score_generations(["a b"], [["a b"]], spbleu=True)
    with pytest.raises(SystemExit, match="--tasks flores"):
        metrics.spbleu_metric()  # the early check evaluate.py can make before a long run
    assert "spbleu" not in metrics.score_generations(["a b"], [["a b"]])


def test_spbleu_is_bleu_over_the_cached_sentencepiece_pieces(monkeypatch, tmp_path):
    spm = pytest.importorskip("sentencepiece")
    monkeypatch.setattr(tokenizer_spm, "SACREBLEU_DIR", str(tmp_path))
    monkeypatch.setattr(tokenizer_spm, "download_file",
                        lambda *a, **k: pytest.fail("sacrebleu tried to download"))
    model = io.BytesIO()  # a tiny model trained here stands in for FLORES-200's
    texts = ["the cat sat on the mat", "a dog ran in the park", "le chat est sur le tapis", "猫在垫子上"] * 30
    spm.SentencePieceTrainer.train(sentence_iterator=iter(texts), model_writer=model, vocab_size=60,
                                   character_coverage=1.0, hard_vocab_limit=False)
    path = flores200_spm()[1]
    (tmp_path / "models").mkdir()
    open(path, "wb").write(model.getvalue())
    pieces = spm.SentencePieceProcessor(model_proto=model.getvalue())
    split = lambda text: " ".join(pieces.encode(text, out_type=str))  # noqa: E731
    hyps, refs = ["the cat sat on a mat", "猫在垫子"], [["the cat sat on the mat"], ["猫在垫子上"]]
    expected = BLEU(tokenize="none").corpus_score([split(h) for h in hyps], [[split(r[0]) for r in refs]]).score / 100
    assert metrics.corpus_spbleu(hyps, refs) == pytest.approx(expected) and 0 < expected < 1
    assert metrics.score_generations(hyps, refs, spbleu=True)["spbleu"] == pytest.approx(expected)
