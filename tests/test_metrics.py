"""metrics.py against values derived by hand from the metrics' definitions, and sacrebleu's README example."""

import pytest

import metrics


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
